//! The session-log consumer: exactly-once across crashes and restarts, and reputation
//! lists reloaded between batches without a restart.

mod common;

use common::*;
use kuroko_detect::{Detector, load_findings, run_pending};
use kuroko_model::Timestamp;
use kuroko_model::config::Config;
use kuroko_model::finding::Lang;
use kuroko_model::sessionlog::SessionLogWriter;
use std::path::Path;

fn append(data: &Path, records: &[kuroko_model::SessionRecord]) {
    let mut w = SessionLogWriter::open(&data.join("sessions")).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
    w.sync().unwrap();
}

fn telnets(from: usize, to: usize) -> Vec<kuroko_model::SessionRecord> {
    (from..to)
        .map(|i| {
            telnet(
                &format!("tn{i}"),
                "10.0.0.5",
                "10.0.3.1",
                Timestamp(office_hours().nanos() + i as i64 * 1_000_000_000),
            )
        })
        .collect()
}

fn telnet_count(data: &Path) -> u64 {
    load_findings(data, &Config::default(), Lang::En)
        .unwrap()
        .iter()
        .filter(|f| f.rule == "telnet_use")
        .map(|f| f.count)
        .sum()
}

#[test]
fn a_crash_between_batches_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    append(data, &telnets(0, 10));
    // Commit every 4 records, "crash" after 6: the first batch (4) is committed, the
    // next 2 records are lost with the process.
    let mut d = Detector::open(data, &Config::default())
        .unwrap()
        .with_batch(4);
    d.catch_up_then_crash(6).unwrap();
    drop(d);
    assert_eq!(telnet_count(data), 4, "only the committed batch is on disk");
    // Restart: reads on from the stored position.
    let s = run_pending(data, &Config::default()).unwrap();
    assert_eq!(
        s.sessions, 6,
        "the 6 records after the committed position, once each"
    );
    assert_eq!(telnet_count(data), 10);
    // Nothing new: nothing read, nothing changed.
    let s = run_pending(data, &Config::default()).unwrap();
    assert_eq!((s.sessions, s.new_findings), (0, 0));
    assert_eq!(telnet_count(data), 10);
    // The log grows; the next run takes only the new records.
    append(data, &telnets(10, 13));
    let s = run_pending(data, &Config::default()).unwrap();
    assert_eq!(s.sessions, 3);
    assert_eq!(telnet_count(data), 13);
    let f = load_findings(data, &Config::default(), Lang::Ja).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].evidence.len(), 13);
}

#[test]
fn an_empty_or_missing_log_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = run_pending(dir.path(), &Config::default()).unwrap();
    assert_eq!((s.sessions, s.findings), (0, 0));
    assert!(
        load_findings(dir.path(), &Config::default(), Lang::En)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn damaged_log_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    append(data, &telnets(0, 2));
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("sessions/00000000.jsonl"))
            .unwrap();
        f.write_all(b"{\"id\": \"broken\"}\n").unwrap();
    }
    append(data, &telnets(2, 3));
    let s = run_pending(data, &Config::default()).unwrap();
    assert_eq!((s.sessions, s.bad_records), (3, 1));
    assert_eq!(telnet_count(data), 3);
}

#[test]
fn reputation_lists_reload_between_batches_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let list = dir.path().join("drop.txt");
    std::fs::write(&list, "; Spamhaus DROP\n192.0.2.0/24 ; SBL1\n").unwrap();
    let mut c = Config::default();
    c.intel.reputation_lists = vec![list.clone()];
    let attempt =
        |id: &str, src: &str| session(id, "tcp", src, 40_000, "10.0.0.80", 22, office_hours());

    let mut d = Detector::open(&data, &c).unwrap();
    append(&data, &[attempt("a1", "203.0.113.66")]);
    d.catch_up().unwrap();
    assert!(d.engine().findings(Lang::En).is_empty(), "not listed yet");

    // The list is updated on disk (new size, so visible within one mtime tick).
    std::fs::write(
        &list,
        "; Spamhaus DROP\n192.0.2.0/24 ; SBL1\n203.0.113.0/24 ; SBL777\n",
    )
    .unwrap();
    append(&data, &[attempt("a2", "203.0.113.66")]);
    let s = d.catch_up().unwrap();
    assert_eq!(s.intel_reloads, 1);
    let f = d.engine().findings(Lang::En);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "bad_reputation_ip");
    assert_eq!(f[0].client.as_deref(), Some("203.0.113.66"));
    assert_eq!(f[0].evidence, vec!["a2".to_string()]);
    assert!(f[0].signals.iter().any(|s| s.contains("SBL777 (drop.txt)")));

    // A broken update keeps the old lists and says so.
    std::fs::remove_file(&list).unwrap();
    append(&data, &[attempt("a3", "203.0.113.66")]);
    let s = d.catch_up().unwrap();
    assert_eq!(s.intel_errors.len(), 1);
    assert!(
        s.intel_errors[0].contains("intel.reputation_lists")
            && s.intel_errors[0].contains("drop.txt"),
        "{:?}",
        s.intel_errors
    );
    assert_eq!(d.engine().findings(Lang::En)[0].count, 2);

    // At start-up a missing list is an error naming the key and the file.
    drop(d);
    let e = Detector::open(&data, &c).err().unwrap().to_string();
    assert!(
        e.contains("intel.reputation_lists") && e.contains("drop.txt"),
        "{e}"
    );
}

#[test]
fn vpn_windows_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut c = Config::default();
    c.site.vpn_pools = vec!["10.200.0.0/24".into()];
    let upload = |id: &str, mb: u64, min: i64| {
        let mut s = session(
            id,
            "https",
            "10.200.0.9",
            40_000,
            "10.0.0.30",
            443,
            Timestamp(office_hours().nanos() + min * 60_000_000_000),
        );
        s.bytes_up = mb * 1_000_000;
        s
    };
    append(data, &[upload("u1", 60, 0)]);
    assert_eq!(run_pending(data, &c).unwrap().findings, 0);
    append(data, &[upload("u2", 50, 10)]);
    run_pending(data, &c).unwrap();
    let f = load_findings(data, &c, Lang::En).unwrap();
    assert_eq!(f.len(), 1, "60 MB + 50 MB across two runs reach 100 MB");
    assert_eq!(f[0].rule, "vpn_large_upload");
    assert_eq!(f[0].client.as_deref(), Some("10.200.0.9"));
    assert_eq!(f[0].evidence, vec!["u2".to_string(), "u1".to_string()]);
    assert!(
        f[0].signals
            .iter()
            .any(|s| s.contains("110.0 MB (110000000 bytes")),
        "{:?}",
        f[0].signals
    );
}

/// `DIR/findings/state.json` as older firmware wrote it: no volume in the aggregates, none
/// in their evidence.
fn strip_volumes(data: &Path) {
    let path = data.join("findings/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for a in state["engine"]["aggregates"].as_array_mut().unwrap() {
        let a = a.as_object_mut().unwrap();
        for k in [
            "bytes_up",
            "bytes_down",
            "packets_up",
            "packets_down",
            "volume_state",
        ] {
            a.remove(k);
        }
        for e in a["evidence"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("volume");
        }
    }
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
}

fn telnet_volume(data: &Path) -> kuroko_model::finding::Volume {
    let f = load_findings(data, &Config::default(), Lang::En).unwrap();
    f.iter().find(|f| f.rule == "telnet_use").unwrap().volume
}

#[test]
fn findings_stored_by_older_firmware_get_their_volume_from_the_session_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut sessions = telnets(0, 3);
    for (i, s) in sessions.iter_mut().enumerate() {
        s.bytes_up = 100 * (i as u64 + 1);
        s.bytes_down = 1_000;
        s.packets_up = 3;
        s.packets_down = 4;
    }
    append(data, &sessions);
    run_pending(data, &Config::default()).unwrap();
    let counted = telnet_volume(data);
    assert_eq!(
        (counted.bytes_up, counted.bytes_down, counted.packets_up),
        (600, 3_000, 9)
    );
    // The same state in the old shape: read, the volume is counted from the log (it read
    // 0 before).
    strip_volumes(data);
    assert_eq!(telnet_volume(data), counted, "counted when read");
    // The next analysis migrates the store once: the volume is in the file afterwards.
    run_pending(data, &Config::default()).unwrap();
    let state = std::fs::read_to_string(data.join("findings/state.json")).unwrap();
    assert!(state.contains("\"volume_state\":\"counted\""), "{state}");
    assert_eq!(telnet_volume(data), counted);

    // Old shape again, and the sessions gone from the log: unknown, never 0.
    strip_volumes(data);
    std::fs::remove_dir_all(data.join("sessions")).unwrap();
    let v = telnet_volume(data);
    assert!(v.unknown, "{v:?}");
    assert!(v.describe(Lang::En).starts_with("unknown"), "{v:?}");
    assert!(v.describe(Lang::Ja).starts_with("不明"), "{v:?}");
    let json = serde_json::to_value(v).unwrap();
    assert_eq!(json["unknown"], true, "{json}");
}
