//! An index of an older schema is rebuilt from the session log (search says what is going
//! on instead of failing with tantivy's message, alerts are not raised again for sessions
//! the old index had seen), and the local alert log is exactly-once across a crash.

mod common;

use common::*;
use kuroko_index::alerts::{self, Alert, AlertEngine};
use kuroko_index::synth::session;
use kuroko_index::{Index, IndexError, Ingester, Query, ingest_pending};
use kuroko_model::SessionRecord;
use kuroko_model::config::Config;
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use std::collections::HashSet;
use std::path::Path;
use tantivy::schema::{STORED, STRING, Schema};

const STEP: i64 = 1_000_000_000;

fn sessions(from: u64, to: u64) -> Vec<SessionRecord> {
    (from..to).map(|i| session(i, T0, STEP)).collect()
}

/// What the shipped CONNECT condition raises on `recs`, by the record matcher.
fn connect_hits(recs: &[SessionRecord]) -> Vec<String> {
    let q = Query::parse(alerts::DEFAULTS[0].1).unwrap();
    recs.iter()
        .filter(|r| q.matches(r))
        .map(|r| r.id.clone())
        .collect()
}

fn alert_log(data: &Path) -> Vec<Alert> {
    let text = std::fs::read_to_string(alerts::log_path(data)).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("alert line"))
        .collect()
}

fn log_end(data: &Path) -> LogPos {
    SessionLogReader::open(&data.join("sessions"))
        .unwrap()
        .end()
        .unwrap()
}

/// An index as an older kuroko left it: another schema, payload version 1, having consumed
/// the log up to `pos`.
fn write_old_index(data: &Path, pos: LogPos, sessions: u64) {
    let dir = data.join("index");
    std::fs::create_dir_all(&dir).unwrap();
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED);
    let url = b.add_text_field("url", STRING);
    let idx = tantivy::Index::create_in_dir(&dir, b.build()).unwrap();
    let mut w: tantivy::IndexWriter = idx.writer(15_000_000).unwrap();
    let mut d = tantivy::TantivyDocument::default();
    d.add_text(id, "old");
    d.add_text(url, "example.com/");
    w.add_document(d).unwrap();
    let mut prepared = w.prepare_commit().unwrap();
    prepared.set_payload(
        &serde_json::json!({"version": 1, "pos": pos, "sessions": sessions}).to_string(),
    );
    prepared.commit().unwrap();
}

#[test]
fn an_old_schema_index_is_rebuilt_from_the_log_without_raising_alerts_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let old = sessions(0, 4000);
    write_log(data, &old);
    let old_end = log_end(data);
    write_old_index(data, old_end, old.len() as u64);

    // Search before anything rebuilt it: a clear error, not tantivy's.
    let err = Index::open(data).err().expect("old index refused");
    assert!(
        matches!(
            err,
            IndexError::OldSchema {
                found: 1,
                expected: kuroko_index::schema::SCHEMA_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("rebuilt from the session log"), "{msg}");

    // The ingester swaps in an empty index of the current schema that carries the mark;
    // stop it there (as a crash right after the swap would).
    drop(Ingester::open(data).unwrap());
    let index = Index::open(data).unwrap();
    let p = index.rebuild_progress(data).unwrap().expect("rebuilding");
    assert_eq!(
        (p.from_version, p.to_version, p.sessions),
        (1, kuroko_index::schema::SCHEMA_VERSION, 0)
    );
    assert_eq!(p.log_bytes_done, 0);
    assert_eq!(
        p.log_bytes_total,
        std::fs::metadata(data.join("sessions/00000000.jsonl"))
            .unwrap()
            .len()
    );
    assert_eq!(index.len(), 0);
    drop(index);

    // Half of the log indexed and committed, then another "crash".
    {
        let mut ing = Ingester::open(data).unwrap();
        assert!(!ing.rebuilt, "the swap happens once");
        let reader = SessionLogReader::open(&data.join("sessions")).unwrap();
        for item in reader.read_from(LogPos::default()).unwrap().take(2000) {
            let (pos, rec) = item.unwrap();
            ing.add(pos, &rec).unwrap();
        }
        ing.commit().unwrap();
    }
    let index = Index::open(data).unwrap();
    let p = index
        .rebuild_progress(data)
        .unwrap()
        .expect("still rebuilding");
    assert_eq!(p.sessions, 2000);
    assert!(
        (40.0..60.0).contains(&p.percent()),
        "half the log: {}",
        p.percent()
    );
    // Searching mid-rebuild answers from what is there.
    assert_eq!(index.count(&Query::parse("*").unwrap()).unwrap(), 2000);
    drop(index);

    // New sessions arrive after the upgrade; the rebuild finishes and catches up.
    let new = sessions(4000, 6000);
    write_log(data, &new);
    let mut cfg = Config::default();
    cfg.alerts.no_defaults = false;
    let s = ingest_pending(data, &cfg).unwrap();
    assert_eq!(s.indexed, 4000);
    let index = Index::open(data).unwrap();
    assert_eq!(index.rebuild_progress(data).unwrap(), None);
    assert_eq!(index.len(), 6000);

    // Every query agrees with the matcher on the rebuilt index (fast URL column included).
    let all: Vec<SessionRecord> = old.iter().chain(&new).cloned().collect();
    for q in [
        r#"url:":5228""#,
        r#"url:"/google/""#,
        "url:*.html",
        r#"host:"office1""#,
        alerts::DEFAULTS[0].1,
        "protocol:https AND port:443",
    ] {
        let query = Query::parse(q).unwrap();
        let want = all.iter().filter(|r| query.matches(r)).count() as u64;
        assert!(want > 0, "{q} matches something");
        assert_eq!(index.count(&query).unwrap(), want, "{q}");
        let top = index.search(&query, 10_000).unwrap();
        assert_eq!(top.len() as u64, want, "{q}");
    }

    // Newest first with a small limit (the time-sliced path for frequent matches, the
    // plain one for rare ones): the same sessions as sorting the matcher's answer.
    for q in [
        "protocol:tls",
        "protocol:dns OR protocol:http",
        "client:10.0.0.0/16 AND port:443",
        "method:CONNECT",
        "*",
    ] {
        let query = Query::parse(q).unwrap();
        let mut want: Vec<&SessionRecord> = all.iter().filter(|r| query.matches(r)).collect();
        want.sort_by_key(|r| std::cmp::Reverse(r.start));
        for limit in [1, 10, 100] {
            let got: Vec<String> = index
                .search(&query, limit)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            let want: Vec<String> = want.iter().take(limit).map(|r| r.id.clone()).collect();
            assert_eq!(got, want, "{q} limit {limit}");
        }
    }

    // Alerts: only the sessions the old index had not seen.
    let want = connect_hits(&new);
    assert!(!want.is_empty() && !connect_hits(&old).is_empty());
    assert_eq!(s.alerts, want.len() as u64);
    let got: Vec<String> = alert_log(data).into_iter().map(|a| a.session.id).collect();
    assert_eq!(got, want);
}

#[test]
fn the_local_alert_log_is_exactly_once_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut cfg = Config::default();
    cfg.alerts.no_defaults = false;
    let first = sessions(0, 3000);
    write_log(data, &first);
    ingest_pending(data, &cfg).unwrap();
    assert_eq!(alert_log(data).len(), connect_hits(&first).len());

    // A run indexes and alerts on more sessions, then dies before its commit.
    let second = sessions(3000, 6000);
    write_log(data, &second);
    {
        let mut ing = Ingester::open(data).unwrap();
        let mut engine = AlertEngine::new(data, &cfg);
        let reader = SessionLogReader::open(&data.join("sessions")).unwrap();
        for item in reader.read_from(ing.position()).unwrap() {
            let (pos, rec) = item.unwrap();
            ing.add(pos, &rec).unwrap();
            engine.on_session(&rec);
        }
        // No commit, no finish: the process is gone.
    }
    let all: Vec<SessionRecord> = first.iter().chain(&second).cloned().collect();
    let want = connect_hits(&all);
    assert!(
        alert_log(data).len() > connect_hits(&first).len(),
        "the crashed run had written alerts"
    );

    // The next run indexes the uncommitted sessions again, and alerts on them once.
    let s = ingest_pending(data, &cfg).unwrap();
    assert_eq!(s.indexed, 3000);
    let log = alert_log(data);
    let ids: Vec<String> = log.iter().map(|a| a.id.clone()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no alert twice: {ids:?}");
    let sessions: Vec<String> = log.into_iter().map(|a| a.session.id).collect();
    assert_eq!(sessions, want);
    assert_eq!(Index::open(data).unwrap().len(), 6000);
}
