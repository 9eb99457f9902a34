//! Intel packs: every publisher's format read from a file written the way the publisher
//! writes it (header comments included), malformed lines counted with file:line,
//! provenance kept, atomic replacement, matching, and the re-check of the past:
//! exactly-once across a crash.

mod common;

use common::*;
use kuroko_detect::intel::matcher::Matcher;
use kuroko_detect::intel::packs;
use kuroko_detect::{Detector, load_findings, run_pending};
use kuroko_model::config::Config;
use kuroko_model::finding::Lang;
use kuroko_model::session::*;
use kuroko_model::sessionlog::SessionLogWriter;
use kuroko_model::{SessionRecord, Timestamp};
use std::path::Path;

const SSLBL: &str = "################################################################
# abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints) #
# Last updated: 2026-12-06 08:00:10 UTC                        #
#                                                              #
# Terms Of Use: https://sslbl.abuse.ch/blacklist/              #
# For questions please contact sslbl [at] abuse.ch             #
################################################################
#
# Listingdate,SHA1,Listingreason
2026-12-05 10:20:28,1111111111111111111111111111111111111111,AsyncRAT C&C
2026-12-05 10:20:29,not-a-sha1,Broken
";

const JA3: &str = "################################################################
# abuse.ch SSLBL JA3 Fingerprint Blacklist (CSV)               #
# Last updated: 2026-12-06 08:00:10 UTC                        #
#                                                              #
# Terms Of Use: https://sslbl.abuse.ch/blacklist/              #
# For questions please contact sslbl [at] abuse.ch             #
################################################################
#
# ja3_md5,Firstseen,Lastseen,Listingreason
b386946a5a44d1ddcc843bc75336dfce,2017-07-14 18:08:15,2019-07-27 20:42:54,Dridex
";

const FEODO: &str = "################################################################
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #
# Last updated: 2026-12-06 08:05:04 UTC                        #
#                                                              #
# Terms Of Use: https://feodotracker.abuse.ch/blocklist/       #
# For questions please contact feodotracker [at] abuse.ch      #
################################################################
#
# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"
\"2026-11-17 07:44:46\",\"198.51.100.7\",\"443\",\"online\",\"2026-12-06\",\"Dridex\"
\"2026-11-17 07:44:46\",\"198.51.100.300\",\"443\",\"online\",\"2026-12-06\",\"Dridex\"
# Number of entries: 2
";

const URLHAUS: &str = "################################################################
# abuse.ch URLhaus Database Dump (CSV - recent URLs only)      #
# Last updated: 2026-12-06 08:02:05 UTC                        #
#                                                              #
# Terms Of Use: https://urlhaus.abuse.ch/api/                  #
# For questions please contact urlhaus [at] abuse.ch           #
################################################################
#
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter
\"2748391\",\"2026-12-06 08:01:07\",\"http://evil.example/bins/x86\",\"online\",\"2026-12-06 08:01:07\",\"malware_download\",\"elf,mirai\",\"https://urlhaus.abuse.ch/url/2748391/\",\"geenensp\"
\"2748392\",\"2026-12-06 08:01:07\"
";

const THREATFOX: &str = "################################################################
# ThreatFox IOCs: full data dump (CSV)                         #
# Last updated: 2026-12-06 10:00:00 UTC                        #
#                                                              #
# Terms Of Use: https://threatfox.abuse.ch/api/                #
# For questions please contact threatfox [at] abuse.ch         #
################################################################
#
# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"
\"2026-12-01 00:00:00\", \"1\", \"203.0.113.50:8443\", \"ip:port\", \"botnet_cc\", \"win.cobalt_strike\", \"None\", \"Cobalt Strike\", \"\", \"100\", \"\", \"\", \"0\", \"x\"
\"2026-12-01 00:00:00\", \"2\", \"c2.bad.example\", \"domain\", \"botnet_cc\", \"win.qakbot\", \"None\", \"QakBot\", \"\", \"75\", \"\", \"\", \"0\", \"x\"
\"2026-12-01 00:00:00\", \"3\", \"d41d8cd98f00b204e9800998ecf8427e\", \"md5_hash\", \"payload\", \"\", \"\", \"X\", \"\", \"50\", \"\", \"\", \"0\", \"x\"
\"2026-12-01 00:00:00\", \"4\", \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\", \"sha256_hash\", \"payload\", \"\", \"\", \"X\", \"\", \"50\", \"\", \"\", \"0\", \"x\"
\"2026-12-01 00:00:00\", \"5\", \"abc\", \"sha3_384_hash\", \"payload\", \"\", \"\", \"X\", \"\", \"50\", \"\", \"\", \"0\", \"x\"
";

const DROP: &str = "; Spamhaus DROP List 2026/12/06 - (c) 2026 The Spamhaus Project SLU
; https://www.spamhaus.org/drop/drop.txt
; Last-Modified: Sun, 06 Dec 2026 06:51:38 GMT
; Expires: Mon, 07 Dec 2026 08:42:22 GMT
1.10.16.0/20 ; SBL256894
192.0.2.0/24 ; SBL1
";

const EDROP: &str = "; Spamhaus EDROP List 2026/12/06 - (c) 2026 The Spamhaus Project SLU
; https://www.spamhaus.org/drop/edrop.txt
; Last-Modified: Sun, 06 Dec 2026 06:51:38 GMT
; Expires: Mon, 07 Dec 2026 08:42:22 GMT
5.134.128.0/19 ; SBL270738
";

const DROPV6: &str =
    "; Spamhaus IPv6 DROP List (DROPv6) 2026/12/06 - (c) 2026 The Spamhaus Project SLU
; https://www.spamhaus.org/drop/dropv6.txt
; Last-Modified: Sun, 06 Dec 2026 06:51:38 GMT
; Expires: Mon, 07 Dec 2026 08:42:22 GMT
2001:db8:bad::/48 ; SBL303895
2001:db8:zz::/48 ; SBL1
";

const ZEEK: &str = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc
198.51.100.9\tIntel::ADDR\tcert-jp\tC2 server
phish.example\tIntel::DOMAIN\tcert-jp\tphishing
bad.example/login.php\tIntel::URL\tcert-jp\t-
2222222222222222222222222222222222222222222222222222222222222222\tIntel::CERT_HASH\tcert-jp\t-
alice@example.com\tIntel::EMAIL\tcert-jp\t-
x\tIntel::NOPE
";

const PLAIN: &str = "# our own list
evil-cdn.example
# a comment
not a domain at all
";

const PACK_TOML: &str = "name = \"custx\"
[[file]]
path = \"lists/domains.txt\"
format = \"plain\"
kind = \"domain\"
feed = \"customer\"
";

fn write_pack(dir: &Path) {
    for (name, text) in [
        ("sslblacklist.csv", SSLBL),
        ("ja3_fingerprints.csv", JA3),
        ("ipblocklist.csv", FEODO),
        ("csv.txt", URLHAUS),
        ("full.csv", THREATFOX),
        ("drop.txt", DROP),
        ("edrop.txt", EDROP),
        ("dropv6.txt", DROPV6),
        ("zeek/intel.dat", ZEEK),
        ("lists/domains.txt", PLAIN),
        ("pack.toml", PACK_TOML),
        ("yara/test.yar", "rule T { condition: true }\n"),
        ("README.md", "what this pack is\n"),
    ] {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

#[test]
fn every_publisher_format_is_read_and_every_malformed_line_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_pack(&src);
    let data = dir.path().join("data");
    let s = packs::import(&data, &src, None).unwrap();
    let p = &s.pack;
    assert_eq!(p.name, "custx");
    let file = |n: &str| {
        p.files
            .iter()
            .find(|f| f.path == n)
            .unwrap_or_else(|| panic!("{n}: {p:#?}"))
    };
    let expect = [
        ("sslblacklist.csv", "sslbl", "sslbl", 1, 1),
        ("ja3_fingerprints.csv", "sslbl_ja3", "sslbl_ja3", 1, 0),
        ("ipblocklist.csv", "feodo", "feodo", 1, 1),
        ("csv.txt", "urlhaus", "urlhaus", 1, 1),
        ("full.csv", "threatfox", "threatfox", 4, 0),
        ("drop.txt", "spamhaus_drop", "spamhaus_drop", 2, 0),
        ("edrop.txt", "spamhaus_edrop", "spamhaus_edrop", 1, 0),
        ("dropv6.txt", "spamhaus_dropv6", "spamhaus_dropv6", 1, 1),
        ("zeek/intel.dat", "zeek", "intel", 4, 1),
        ("lists/domains.txt", "plain:domain", "customer", 1, 1),
    ];
    for (name, format, feed, n, bad) in expect {
        let f = file(name);
        assert_eq!(
            (
                f.format.as_str(),
                f.feed.as_str(),
                f.indicators,
                f.bad_lines
            ),
            (format, feed, n, bad),
            "{name}: {f:#?}"
        );
        assert_eq!(f.sha256.len(), 64);
        assert!(!f.date.is_empty(), "{name}: a date");
    }
    // Line numbers as in the files (1-based, header comments counted).
    assert_eq!(
        file("sslblacklist.csv").bad[0],
        "sslblacklist.csv:11: `not-a-sha1` is not a SHA-1 (40 hex digits)"
    );
    assert!(
        file("ipblocklist.csv").bad[0].starts_with("ipblocklist.csv:11: "),
        "{:?}",
        file("ipblocklist.csv").bad
    );
    assert!(
        file("csv.txt").bad[0].starts_with("csv.txt:11: fewer columns"),
        "{:?}",
        file("csv.txt").bad
    );
    assert!(file("dropv6.txt").bad[0].starts_with("dropv6.txt:6: "));
    assert!(file("zeek/intel.dat").bad[0].starts_with("zeek/intel.dat:7: "));
    assert!(file("lists/domains.txt").bad[0].starts_with("lists/domains.txt:4: "));
    assert_eq!(file("full.csv").unsupported, 1, "sha3_384_hash");
    assert_eq!(file("zeek/intel.dat").unsupported, 1, "Intel::EMAIL");
    assert_eq!(file("sslblacklist.csv").date, "2026-12-06 08:00:10 UTC");
    assert_eq!(file("drop.txt").date, "Sun, 06 Dec 2026 06:51:38 GMT");
    assert_eq!(p.unrecognised, vec!["README.md".to_string()]);
    assert_eq!(p.yara_files, vec!["test.yar".to_string()]);
    assert!(
        p.yara_dir().join("test.yar").is_file(),
        "YARA rules kept for the scanner"
    );
    assert_eq!(p.indicators, 17);
    assert_eq!(p.bad_lines, 6);

    // Matching, by kind.
    let m = Matcher::load(&data).unwrap();
    assert_eq!(m.len(), 17);
    let t = office_hours();
    let feeds = |s: &SessionRecord| -> Vec<String> {
        m.match_session(s)
            .into_iter()
            .map(|h| format!("{}:{}:{}", h.feed, h.kind, h.indicator))
            .collect()
    };
    let mut c2 = session("a", "tls", "10.0.0.5", 40000, "198.51.100.7", 443, t);
    c2.tls = Some(Tls {
        sni: Some("www.c2.bad.example".into()),
        ja3: Some("B386946A5A44D1DDCC843BC75336DFCE".into()),
        certs: vec![Cert {
            sha1: "1111111111111111111111111111111111111111".into(),
            sha256: "2222222222222222222222222222222222222222222222222222222222222222".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    assert_eq!(
        feeds(&c2),
        vec![
            "feodo:address:198.51.100.7",
            "intel:cert_sha256:2222222222222222222222222222222222222222222222222222222222222222",
            "sslbl:cert_sha1:1111111111111111111111111111111111111111",
            "sslbl_ja3:ja3:b386946a5a44d1ddcc843bc75336dfce",
            "threatfox:domain:c2.bad.example",
        ]
    );
    let mut w = web(
        "b",
        "10.0.0.5",
        "93.184.216.34",
        "evil.example",
        "/bins/x86",
        t,
    );
    w.files.push(FileRef {
        sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        ..Default::default()
    });
    assert_eq!(
        feeds(&w),
        vec![
            "threatfox:file_sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "urlhaus:url:evil.example/bins/x86",
        ]
    );
    assert_eq!(
        feeds(&session(
            "c",
            "tcp",
            "10.0.0.5",
            4000,
            "203.0.113.50",
            8443,
            t
        )),
        vec!["threatfox:addr_port:203.0.113.50:8443"]
    );
    assert!(
        feeds(&session(
            "c",
            "tcp",
            "10.0.0.5",
            4000,
            "203.0.113.50",
            443,
            t
        ))
        .is_empty(),
        "another port"
    );
    assert_eq!(
        feeds(&session("d", "tcp", "1.10.20.1", 4000, "10.0.0.5", 22, t)),
        vec!["spamhaus_drop:cidr:1.10.16.0/20"]
    );
    assert_eq!(
        feeds(&session(
            "e",
            "tcp",
            "10.0.0.5",
            4000,
            "2001:db8:bad:1::5",
            22,
            t
        )),
        vec!["spamhaus_dropv6:cidr:2001:db8:bad::/48"]
    );
    assert_eq!(
        feeds(&dns("f", "10.0.0.5", "10.0.0.53", "login.phish.example", t)),
        vec!["intel:domain:phish.example"]
    );
    assert_eq!(
        feeds(&dns("g", "10.0.0.5", "10.0.0.53", "evil-cdn.example", t)),
        vec!["customer:domain:evil-cdn.example"]
    );
    // The negative twin: nothing listed.
    let mut clean = c2.clone();
    clean.server.ip = "93.184.216.34".parse().unwrap();
    clean.tls = Some(Tls {
        sni: Some("example.com".into()),
        ..Default::default()
    });
    assert!(feeds(&clean).is_empty());
    assert!(
        feeds(&dns("h", "10.0.0.5", "10.0.0.53", "notphish.example", t)).is_empty(),
        "a suffix is not a subdomain"
    );

    // list shows it; remove takes it away.
    assert_eq!(packs::list(&data).unwrap().len(), 1);
    packs::remove(&data, "custx").unwrap();
    assert!(packs::list(&data).unwrap().is_empty());
    let e = packs::remove(&data, "custx").unwrap_err();
    assert!(e.contains("no intel pack `custx`"), "{e}");
}

#[test]
fn a_crash_between_the_renames_of_a_replacement_leaves_the_old_pack() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let src = dir.path().join("p1");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("drop.txt"), DROP).unwrap();
    packs::import(&data, &src, Some("p")).unwrap();
    // What a crash after `rename(live, .old-p-PID)` and a half-written staging dir leave.
    let intel = data.join("intel");
    std::fs::rename(intel.join("p"), intel.join(".old-p-4242")).unwrap();
    std::fs::create_dir_all(intel.join(".staging-p-4242/src")).unwrap();
    std::fs::write(
        intel.join(".staging-p-4242/indicators.tsv"),
        "cidr\t10.0.0.0/8\tx\t\n",
    )
    .unwrap();
    // Readers still see the old pack.
    let l = packs::list(&data).unwrap();
    assert_eq!((l.len(), l[0].indicators), (1, 2));
    assert_eq!(Matcher::load(&data).unwrap().len(), 2);
    // The next change recovers it first, then replaces it for real.
    std::fs::write(src.join("edrop.txt"), EDROP).unwrap();
    let s = packs::import(&data, &src, Some("p")).unwrap();
    assert_eq!(s.replaced, Some(2));
    assert_eq!(s.pack.indicators, 3);
    let names: Vec<String> = std::fs::read_dir(&intel)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "no leftovers: {names:?}");
    // A pack without anything usable is refused, and the installed one stays.
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "hello\n").unwrap();
    let e = packs::import(&data, &junk, Some("p")).unwrap_err();
    assert!(
        e.contains("no indicator") && e.contains("notes.txt") && e.contains("pack.toml"),
        "{e}"
    );
    assert_eq!(packs::list(&data).unwrap()[0].indicators, 3);
}

fn append(data: &Path, records: &[SessionRecord]) {
    let mut w = SessionLogWriter::open(&data.join("sessions")).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
    w.sync().unwrap();
}

fn intel_count(data: &Path) -> (u64, Vec<String>) {
    let f = load_findings(data, &Config::default(), Lang::En).unwrap();
    let i: Vec<_> = f.iter().filter(|f| f.rule == "intel_match").collect();
    (
        i.iter().map(|f| f.count).sum(),
        i.iter().flat_map(|f| f.signals.clone()).collect(),
    )
}

#[test]
fn a_recheck_after_an_import_finds_the_past_once_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t0 = Timestamp(office_hours().nanos() - 86_400_000_000_000);
    // Day 1: 10 sessions to the C2 among 30, analyzed with no intel.
    let recs: Vec<SessionRecord> = (0..30)
        .map(|i| {
            let server = if i % 3 == 0 {
                "198.51.100.7"
            } else {
                "93.184.216.34"
            };
            let mut s = session(
                &format!("s{i}"),
                "tcp",
                "10.0.0.5",
                40000 + i as u16,
                server,
                443,
                Timestamp(t0.nanos() + i * 1_000_000_000),
            );
            s.bytes_up = 100;
            s
        })
        .collect();
    append(&data, &recs);
    run_pending(&data, &Config::default()).unwrap();
    assert_eq!(intel_count(&data).0, 0);
    // Day 9: Feodo's list arrives.
    let src = dir.path().join("p");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ipblocklist.csv"), FEODO).unwrap();
    let imp = packs::import(&data, &src, Some("abuse")).unwrap();
    // The re-check commits every 4 records; the process dies after 6.
    let mut d = Detector::open(&data, &Config::default())
        .unwrap()
        .with_batch(4);
    d.catch_up_then_crash(6).unwrap();
    drop(d);
    let (n, _) = intel_count(&data);
    assert!(n > 0 && n < 10, "only the committed batch: {n}");
    let s = run_pending(&data, &Config::default()).unwrap();
    assert_eq!(s.retro_pending, 0);
    let (n, signals) = intel_count(&data);
    assert_eq!(n, 10, "every C2 session once, none twice");
    assert!(
        signals.iter().any(|s| s
            == &format!(
                "found on a re-check after the intel update of {}",
                imp.update.date
            )),
        "{signals:?}"
    );
    assert!(
        signals.iter().any(|s| s.contains("feed `feodo`")),
        "{signals:?}"
    );
    let f = load_findings(&data, &Config::default(), Lang::En).unwrap();
    let f = f.iter().find(|f| f.rule == "intel_match").unwrap();
    assert_eq!(f.first_seen, recs[0].start, "the original session time");
    // Nothing more on the next run; new sessions are matched live.
    let s = run_pending(&data, &Config::default()).unwrap();
    assert_eq!(s.retro_sessions, 0);
    append(
        &data,
        &[session(
            "new",
            "tcp",
            "10.0.0.6",
            1,
            "198.51.100.7",
            443,
            office_hours(),
        )],
    );
    run_pending(&data, &Config::default()).unwrap();
    assert_eq!(intel_count(&data).0, 11);
    // A hand re-check against every pack counts nothing twice.
    packs::request_recheck(&data).unwrap();
    let s = run_pending(&data, &Config::default()).unwrap();
    assert_eq!(s.retro_sessions, 31);
    assert_eq!(intel_count(&data).0, 11);
}

/// The running appliance (`kuroko run` → `analyze --follow`) catches up with
/// `run_pending_slice`: a re-check of a big store goes on in slices of
/// `FOLLOW_RETRO_SLICE` records, and a live session that arrives in the middle of it is a
/// finding at the next catch-up, long before the re-check ends. Before, the follow loop
/// called `run_pending`, which read the whole re-check in one call.
#[test]
fn live_findings_keep_arriving_while_a_long_recheck_runs_in_slices() {
    use kuroko_detect::{FOLLOW_RETRO_SLICE, run_pending_slice};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t0 = Timestamp(office_hours().nanos() - 86_400_000_000_000);
    let n = FOLLOW_RETRO_SLICE * 5 / 2;
    let recs: Vec<SessionRecord> = (0..n)
        .map(|i| {
            let server = if i % 1000 == 0 {
                "198.51.100.7"
            } else {
                "93.184.216.34"
            };
            session(
                &format!("s{i}"),
                "tcp",
                "10.0.0.5",
                (i % 60_000) as u16 + 1,
                server,
                443,
                Timestamp(t0.nanos() + i as i64 * 1_000_000),
            )
        })
        .collect();
    append(&data, &recs);
    run_pending(&data, &Config::default()).unwrap();
    let src = dir.path().join("p");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ipblocklist.csv"), FEODO).unwrap();
    packs::import(&data, &src, Some("abuse")).unwrap();
    let live_c2 = |d: &Path| {
        load_findings(d, &Config::default(), Lang::En)
            .unwrap()
            .iter()
            .any(|f| f.rule == "intel_match" && f.client.as_deref() == Some("10.0.0.66"))
    };
    // First slice: part of the past, the re-check still pending.
    let s = run_pending_slice(&data, &Config::default()).unwrap();
    assert_eq!(s.retro_sessions, FOLLOW_RETRO_SLICE as u64);
    assert_eq!(s.retro_pending, 1);
    // A host of ours reaches the C2 now: a finding at the very next catch-up.
    append(
        &data,
        &[session(
            "live",
            "tcp",
            "10.0.0.66",
            5555,
            "198.51.100.7",
            443,
            office_hours(),
        )],
    );
    let s = run_pending_slice(&data, &Config::default()).unwrap();
    assert_eq!(s.sessions, 1);
    assert!(live_c2(&data), "the live finding is there");
    assert_eq!(s.retro_pending, 1, "while the re-check goes on");
    let mut calls = 2;
    loop {
        calls += 1;
        if run_pending_slice(&data, &Config::default())
            .unwrap()
            .retro_pending
            == 0
        {
            break;
        }
        assert!(calls < 10, "the re-check ends");
    }
    assert_eq!(calls, 3, "{n} records in slices of {FOLLOW_RETRO_SLICE}");
    assert_eq!(intel_count(&data).0, n.div_ceil(1000) as u64 + 1);
}

#[test]
fn the_same_packs_are_loaded_once_per_process_and_a_replacement_loads_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let src = dir.path().join("p1");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("drop.txt"), DROP).unwrap();
    packs::import(&data, &src, Some("p")).unwrap();
    // The analyzer's tagging, the engine and the re-check each ask for the packs: one copy.
    let a = Matcher::load_shared(&data).unwrap();
    let b = Matcher::load_shared(&data).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&a, &b),
        "two loads of the same packs"
    );
    let l = packs::list(&data).unwrap();
    let c = Matcher::load_packs_shared(&l).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&a, &c),
        "the re-check's load of the same packs"
    );
    // (The last load is also kept when no one holds it, for `kuroko analyze`, which drops
    // the tagging's copy before the detections ask; other tests of this binary load packs
    // in parallel, so that is not asserted here.)
    drop((b, c));
    let d = a;
    assert_eq!(d.len(), 2);
    // A replacement is a new generation: loaded again, with its own indicators.
    std::fs::write(src.join("edrop.txt"), EDROP).unwrap();
    packs::import(&data, &src, Some("p")).unwrap();
    let e = Matcher::load_shared(&data).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&d, &e));
    assert_eq!((d.len(), e.len()), (2, 3));
    // An empty set of packs is its own (empty) matcher.
    assert!(Matcher::load_packs_shared(&[]).unwrap().is_empty());
}
