//! The index and the record matcher against hand-made sessions with expected results
//! written out by hand, and against each other on thousands of synthetic sessions.

mod common;

use common::*;
use kuroko_index::{Index, Query, ingest_pending};
use kuroko_model::SessionRecord;
use kuroko_model::config::Config;

fn ids(v: &[SessionRecord]) -> Vec<String> {
    let mut x: Vec<String> = v.iter().map(|r| r.id.clone()).collect();
    x.sort();
    x
}

fn setup(recs: &[SessionRecord]) -> (tempfile::TempDir, Index) {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), recs);
    let mut cfg = Config::default();
    cfg.alerts.no_defaults = true;
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    assert_eq!(s.indexed, recs.len() as u64);
    let idx = Index::open(dir.path()).unwrap();
    (dir, idx)
}

/// (query, the ids it must find) — the expectations are read off the hand-made sessions.
const CASES: &[(&str, &[&str])] = &[
    (
        r#"(protocol:http OR protocol:https) AND NOT(url:(":443" ":80")) AND (method:CONNECT)"#,
        &["h1", "h5"],
    ),
    ("method:CONNECT", &["h1", "h2", "h3", "h5", "h7"]),
    // NetRAPTOR's substring semantics: ":8080" contains ":80"
    (r#"url:":80""#, &["h3", "h7"]),
    ("method:connect -status:200", &["h1", "h7"]),
    (r#"url:":443""#, &["h2", "h6"]),
    ("protocol:https", &["t1"]),
    ("protocol:ssl", &["t1", "t2"]),
    ("host:example.com", &["h2", "h3", "h4", "h6", "t1"]),
    (r#"host:"www.example.com""#, &["h2", "h4", "t1"]),
    ("host:*.example.net", &["h5", "h7"]),
    ("host:www.example.co?", &["h2", "h4", "t1"]),
    ("sni:v6.example.org", &["t2"]),
    ("server:2001:db8::/32", &["t2"]),
    ("server:93.184.216.0/24 AND port:443", &["t1"]),
    (
        "client:10.0.0.0/8 AND NOT protocol:http",
        &["t1", "t2", "m1", "m2"],
    ),
    ("ip:192.168.1.25", &["m1", "m2"]),
    ("bytes:>100MB", &["t1"]),
    ("bytes_up:>=150000000 bytes_up:<=150MB", &["t1"]),
    ("status:[400 TO 499]", &["h1", "h6", "h7"]),
    ("status:{401 TO 499}", &["h1", "h7"]),
    ("vlan:20", &["t2"]),
    ("subject:quarterly", &["m1"]),
    (r#"subject:"quarterly report""#, &["m1"]),
    (r#"subject:"パスワード""#, &["m2"]),
    ("to:bob@example.co.jp", &["m1", "m2"]),
    ("from:evil.example", &["m2"]),
    ("mtalk", &["h1"]),
    ("proxy.example.net", &["h7"]),
    ("203.0.113.7", &["h1", "h2", "h3", "h4", "h5", "h6", "h7"]),
    ("query:next", &["h6"]),
    ("time:[2026-11-21T09:00:09+09:00 TO *]", &["m1", "m2", "h7"]),
    (
        "time:{2026-11-21T00:00:01Z TO 2026-11-21T00:00:03Z}",
        &["h2"],
    ),
    (
        "*",
        &[
            "h1", "h2", "h3", "h4", "h5", "h6", "h7", "t1", "t2", "m1", "m2",
        ],
    ),
    ("NOT *", &[]),
];

#[test]
fn hand_made_sessions_give_the_expected_results() {
    let recs = handmade();
    let (_dir, idx) = setup(&recs);
    for (q, want) in CASES {
        let query = Query::parse(q).unwrap_or_else(|e| panic!("{e}"));
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        let from_index = ids(&idx.search(&query, 100).unwrap());
        assert_eq!(from_index, want, "index: {q}");
        assert_eq!(idx.count(&query).unwrap(), want.len() as u64, "count: {q}");
        let matched: Vec<SessionRecord> =
            recs.iter().filter(|r| query.matches(r)).cloned().collect();
        assert_eq!(ids(&matched), want, "matcher: {q}");
    }
}

#[test]
fn results_are_newest_first_and_round_trip_the_record() {
    let recs = handmade();
    let (_dir, idx) = setup(&recs);
    let got = idx.search(&Query::parse("*").unwrap(), 3).unwrap();
    let want: Vec<&SessionRecord> = recs.iter().rev().take(3).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
    assert_eq!(idx.get("t2").unwrap().as_ref(), Some(&recs[7]));
    assert_eq!(idx.get("nope").unwrap(), None);
}

#[test]
fn index_and_matcher_agree_on_synthetic_sessions() {
    let recs: Vec<SessionRecord> = (0..3000)
        .map(|i| kuroko_index::synth::session(i, T0, 60_000_000_000))
        .collect();
    let (_dir, idx) = setup(&recs);
    let queries = [
        r#"(protocol:http OR protocol:https) AND NOT(url:(":443" ":80")) AND (method:CONNECT)"#,
        "protocol:tls AND NOT port:443",
        "client:10.1.0.0/16 AND server_port:53",
        "host:google*",
        "host:cloud OR sni:api",
        r#"subject:"quarterly report""#,
        "bytes:>1MB AND protocol:(ftp smtp)",
        "time:[2026-11-21T12:00:00Z TO 2026-11-22T00:00:00Z} AND protocol:dns",
        "status:[400 TO 599]",
        "version:*openssh_7*",
        "user_agent:curl",
        "user:user1?",
        "attachment:*.pdf",
        "mac:00:1b:21:0?:*",
        "query:id",
        "-protocol:tls -protocol:dns",
        "server:192.168.0.0/16 OR bytes_down:<100",
        "packets:[10 TO 20]",
        "ja3:*abc*",
        "google",
        "protocol:http AND url:*.html",
        r#"protocol:smtp AND subject:"report""#,
        r#"method:CONNECT AND NOT url:":443""#,
        "client:10.1.0.0/16 AND host:*cloud*",
    ];
    for q in queries {
        let query = Query::parse(q).unwrap();
        let want: Vec<SessionRecord> = recs.iter().filter(|r| query.matches(r)).cloned().collect();
        let got = idx.search(&query, recs.len()).unwrap();
        assert_eq!(ids(&got), ids(&want), "{q}");
        assert_eq!(idx.count(&query).unwrap(), want.len() as u64, "count {q}");
        // newest first, also when the matcher verifies candidates
        let top = idx.search(&query, 5).unwrap();
        let mut newest = want.clone();
        newest.sort_by_key(|r| std::cmp::Reverse(r.start));
        assert_eq!(ids(&top), ids(&newest[..newest.len().min(5)]), "top 5 {q}");
        assert!(
            !want.is_empty() || q.contains("NOT"),
            "query matches nothing, so it tests nothing: {q}"
        );
    }
}

#[test]
fn ingest_is_exactly_once_and_replaces_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.alerts.no_defaults = true;
    let recs = handmade();
    write_log(dir.path(), &recs[..4]);
    assert_eq!(ingest_pending(dir.path(), &cfg).unwrap().indexed, 4);
    // nothing new: nothing indexed
    assert_eq!(ingest_pending(dir.path(), &cfg).unwrap().indexed, 0);
    write_log(dir.path(), &recs[4..]);
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    assert_eq!(s.indexed, 7);
    // the analyzer re-emits h1 with a new status: the index keeps one h1, the new one
    let mut again = recs[0].clone();
    again.http.as_mut().unwrap().status = Some(500);
    write_log(dir.path(), &[again.clone()]);
    ingest_pending(dir.path(), &cfg).unwrap();
    let idx = Index::open(dir.path()).unwrap();
    assert_eq!(idx.len(), 11);
    assert_eq!(idx.get("h1").unwrap(), Some(again));
    // a damaged line is counted and skipped
    use std::io::Write;
    let files = kuroko_model::sessionlog::list_files(&dir.path().join("sessions")).unwrap();
    let last = dir
        .path()
        .join("sessions")
        .join(format!("{:08}.jsonl", files.last().unwrap()));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap()
        .write_all(b"{not json}\n")
        .unwrap();
    write_log(
        dir.path(),
        &[http("h9", T0, "GET", "a.example", "a.example/", 200)],
    );
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    assert_eq!((s.indexed, s.bad_records), (1, 1));
}

#[test]
fn sessions_whose_packets_are_gone_are_marked() {
    let mut recs = handmade();
    for (i, r) in recs.iter_mut().enumerate() {
        r.span.first_segment = i as u64;
        r.span.last_segment = i as u64;
    }
    let (_dir, idx) = setup(&recs);
    let hits = idx.search_hits(&Query::all(), 100, Some(5)).unwrap();
    let gone: Vec<&str> = hits
        .iter()
        .filter(|h| h.packets_gone)
        .map(|h| h.record.id.as_str())
        .collect();
    let mut gone = gone;
    gone.sort();
    assert_eq!(gone, vec!["h1", "h2", "h3", "h4", "h5"]);
}

#[test]
fn over_budget_the_oldest_hours_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut ing = kuroko_index::Ingester::open(dir.path()).unwrap();
    // 2000 sessions, one every 36 s: 20 hours
    for i in 0..2000u64 {
        let r = kuroko_index::synth::session(i, T0, 36_000_000_000);
        ing.add(
            kuroko_model::sessionlog::LogPos {
                file: 0,
                offset: i + 1,
            },
            &r,
        )
        .unwrap();
    }
    ing.commit().unwrap();
    let size = kuroko_index::budget::dir_size(&dir.path().join("index"));
    let dropped = kuroko_index::budget::enforce_budget(&mut ing, size / 2).unwrap();
    assert!((500..2000).contains(&dropped), "dropped {dropped}");
    assert_eq!(
        dropped % 100,
        0,
        "whole hours (100 sessions each) are dropped"
    );
    let left = ing.index.len();
    assert_eq!(left, 2000 - dropped);
    // what is left is the newest: its oldest session starts where the dropped hours end
    let oldest_left = ing
        .index
        .search(&Query::all(), 2000)
        .unwrap()
        .into_iter()
        .map(|r| r.start.nanos())
        .min()
        .unwrap();
    assert_eq!(oldest_left, T0 + dropped as i64 * 36_000_000_000);
    // under budget: nothing happens
    assert_eq!(
        kuroko_index::budget::enforce_budget(&mut ing, u64::MAX).unwrap(),
        0
    );
}

#[test]
fn aggregations_match_sums_over_the_records() {
    use kuroko_index::aggregate::{self, Direction};
    use std::collections::BTreeMap;
    let recs: Vec<SessionRecord> = (0..1500)
        .map(|i| kuroko_index::synth::session(i, T0, 120_000_000_000))
        .collect();
    let (_dir, idx) = setup(&recs);
    let q = Query::parse("NOT protocol:udp").unwrap();
    let chosen: Vec<&SessionRecord> = recs.iter().filter(|r| r.protocol != "udp").collect();

    // by protocol and hour
    let mut want: BTreeMap<(i64, String), (u64, u64, u64)> = BTreeMap::new();
    for r in &chosen {
        let h = r.start.nanos() / 3_600_000_000_000 * 3_600_000_000_000;
        let e = want.entry((h, r.protocol.clone())).or_default();
        e.0 += 1;
        e.1 += r.bytes_up;
        e.2 += r.bytes_down;
    }
    let got: BTreeMap<(i64, String), (u64, u64, u64)> = aggregate::by_protocol_hour(&idx, &q)
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                (r.hour.nanos(), r.protocol),
                (r.sessions, r.bytes_up, r.bytes_down),
            )
        })
        .collect();
    assert_eq!(got, want);

    // top talkers: bytes sent/received per address in either role
    let mut per: BTreeMap<std::net::IpAddr, (u64, u64, u64)> = BTreeMap::new();
    for r in &chosen {
        let c = per.entry(r.client.ip).or_default();
        c.0 += 1;
        c.1 += r.bytes_up;
        c.2 += r.bytes_down;
        let s = per.entry(r.server.ip).or_default();
        s.0 += 1;
        s.1 += r.bytes_down;
        s.2 += r.bytes_up;
    }
    let internal = kuroko_model::config::Config::default().site.internal_nets();
    let top = aggregate::top_talkers(&idx, &q, 5, &internal).unwrap();
    assert_eq!(top.len(), 5);
    let mut best: Vec<(u64, std::net::IpAddr)> =
        per.iter().map(|(ip, v)| (v.1 + v.2, *ip)).collect();
    best.sort_by(|a, b| b.cmp(a));
    assert_eq!(top[0].ip, best[0].1);
    for t in &top {
        let v = per[&t.ip];
        assert_eq!((t.sessions, t.bytes_sent, t.bytes_received), v, "{}", t.ip);
        assert_eq!(t.internal, internal.iter().any(|n| n.contains(&t.ip)));
    }

    // top sources and destinations: each side on its own
    for (side, as_client) in [
        (aggregate::Side::Source, true),
        (aggregate::Side::Destination, false),
    ] {
        let mut per: BTreeMap<std::net::IpAddr, (u64, u64, u64)> = BTreeMap::new();
        for r in &chosen {
            let (ip, sent, recv) = if as_client {
                (r.client.ip, r.bytes_up, r.bytes_down)
            } else {
                (r.server.ip, r.bytes_down, r.bytes_up)
            };
            let e = per.entry(ip).or_default();
            e.0 += 1;
            e.1 += sent;
            e.2 += recv;
        }
        let top = aggregate::top_by_side(&idx, &q, usize::MAX, &internal, side).unwrap();
        assert_eq!(top.len(), per.len(), "{side:?}");
        for t in &top {
            assert_eq!(
                (t.sessions, t.bytes_sent, t.bytes_received),
                per[&t.ip],
                "{side:?} {}",
                t.ip
            );
        }
    }
    // top domains: sessions per host name
    let mut hosts: BTreeMap<String, u64> = BTreeMap::new();
    for r in &chosen {
        if let Some(h) = r.host().filter(|h| !h.is_empty()) {
            *hosts.entry(h.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let domains = aggregate::top_domains(&idx, &q, usize::MAX).unwrap();
    assert_eq!(domains.len(), hosts.len());
    for d in &domains {
        assert_eq!(d.sessions, hosts[&d.domain], "{}", d.domain);
    }

    // transfers by protocol and direction
    let mut dirs: BTreeMap<(String, Direction), (u64, u64, u64)> = BTreeMap::new();
    for r in &chosen {
        let ci = internal.iter().any(|n| n.contains(&r.client.ip));
        let si = internal.iter().any(|n| n.contains(&r.server.ip));
        let d = match (ci, si) {
            (true, false) => Direction::Outbound,
            (false, true) => Direction::Inbound,
            (true, true) => Direction::Internal,
            (false, false) => Direction::External,
        };
        let e = dirs.entry((r.protocol.clone(), d)).or_default();
        e.0 += 1;
        e.1 += r.bytes_up;
        e.2 += r.bytes_down;
    }
    let got: BTreeMap<(String, Direction), (u64, u64, u64)> =
        aggregate::transfers(&idx, &q, &internal)
            .unwrap()
            .into_iter()
            .map(|t| {
                (
                    (t.protocol, t.direction),
                    (t.sessions, t.bytes_up, t.bytes_down),
                )
            })
            .collect();
    assert_eq!(got, dirs);
    assert!(
        dirs.keys().any(|k| k.1 == Direction::Internal)
            && dirs.keys().any(|k| k.1 == Direction::Outbound)
    );
}
