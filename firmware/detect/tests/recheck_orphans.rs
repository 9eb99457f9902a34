//! Re-checks find the stored files whose session has left the session log.
//!
//! The files store keeps objects within its own budget; the session log can lose their
//! sessions first (here: the analyzer started the log over, as it does when it re-analyzes
//! a packet store whose oldest packets have wrapped out, so the sessions of those packets
//! are not written again). A file hash or a YARA rule that arrives afterwards must still
//! find such a file, from its own metadata in `files/objects.log`, and say that its session
//! is gone; before, a re-check walked the session log only and skipped the file silently.

mod common;

use common::*;
use kuroko_detect::intel::packs;
use kuroko_detect::{Detector, load_findings, run_pending};
use kuroko_model::config::Config;
use kuroko_model::finding::{Finding, Lang};
use kuroko_model::objects::{self, ObjectMeta};
use kuroko_model::session::FileRef;
use kuroko_model::sessionlog::SessionLogWriter;
use kuroko_model::{SessionRecord, Timestamp};
use sha2::Digest;
use std::path::Path;

const MARK: &[u8] = b"KUROKO-ORPHAN-MARK-5e1d";
const RULES: &str = r#"
rule Kuroko_Orphan_Test {
  meta:
    kuroko_level = "A"
  strings:
    $m = "KUROKO-ORPHAN-MARK-5e1d"
  condition:
    $m
}
"#;

/// Stores `bytes` in `DATA/files/` as the analyzer does (bytes file + `objects.log`
/// record, first carried by `session`), the bytes file dated `stored`; returns its digest.
fn store_object(data: &Path, bytes: &[u8], name: &str, session: &str, stored: Timestamp) -> String {
    let files = data.join("files");
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    let path = objects::object_path(&files, &sha, "bin");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(stored.nanos() as u64);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let meta = ObjectMeta {
        sha256: sha.clone(),
        ext: "bin".into(),
        size: bytes.len() as u64,
        name: Some(name.into()),
        content_type: Some("application/octet-stream".into()),
        direction: "download".into(),
        session: session.into(),
        kind: "http-body".into(),
        ..Default::default()
    };
    let mut line = Vec::new();
    objects::encode_line(&serde_json::to_vec(&meta).unwrap(), &mut line);
    use std::io::Write;
    std::fs::File::options()
        .create(true)
        .append(true)
        .open(files.join(objects::LOG))
        .unwrap()
        .write_all(&line)
        .unwrap();
    sha
}

/// A web download carrying the stored object `sha`.
fn download(id: &str, server: &str, sha: &str, name: &str, t: Timestamp) -> SessionRecord {
    let mut s = session(id, "http", "10.0.0.5", 40000, server, 80, t);
    s.files.push(FileRef {
        sha256: sha.into(),
        name: Some(name.into()),
        bytes: 100,
        direction: "download".into(),
        kind: "http-body".into(),
        ..Default::default()
    });
    s
}

fn append(data: &Path, records: &[SessionRecord]) {
    let mut w = SessionLogWriter::open(&data.join("sessions")).unwrap();
    for r in records {
        w.append(r).unwrap();
    }
    // As the analyzer's checkpoint does (a log started over publishes its empty start).
    let end = w.sync().unwrap();
    w.publish(end).unwrap();
}

/// The analyzer starts the log over: the old sessions are gone from it.
fn start_log_over(data: &Path) {
    let mut w = SessionLogWriter::open(&data.join("sessions")).unwrap();
    w.reset().unwrap();
}

fn findings(data: &Path, config: &Config, rule: &str) -> Vec<Finding> {
    load_findings(data, config, Lang::En)
        .unwrap()
        .into_iter()
        .filter(|f| f.rule == rule)
        .collect()
}

fn payload(seed: u8, marked: bool) -> Vec<u8> {
    let mut v: Vec<u8> = (0..4096u32)
        .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
        .collect();
    if marked {
        v[2000..2000 + MARK.len()].copy_from_slice(MARK);
    }
    v
}

/// Day 1: an orphan-to-be (`payload.exe`, session 1-0-0) and a file whose session stays
/// (`kept.bin`, carried again by 3-0-0 after the log starts over). Returns the digests
/// (orphan, kept) and the time the orphan was stored.
fn day_one(data: &Path, config: &Config, marked: bool) -> (String, String, Timestamp) {
    let t0 = Timestamp(office_hours().nanos() - 8 * 86_400_000_000_000);
    let orphan = store_object(data, &payload(7, marked), "payload.exe", "1-0-0", t0);
    let kept = store_object(data, &payload(9, marked), "kept.bin", "2-0-0", t0);
    append(
        data,
        &[
            download("1-0-0", "203.0.113.9", &orphan, "payload.exe", t0),
            download("2-0-0", "198.51.100.20", &kept, "kept.bin", t0),
        ],
    );
    run_pending(data, config).unwrap();
    // The log starts over; only the second file's transfer is in it again.
    start_log_over(data);
    let t1 = Timestamp(office_hours().nanos() - 86_400_000_000_000);
    append(
        data,
        &[
            download("3-0-0", "198.51.100.20", &kept, "kept.bin", t1),
            session(
                "4-0-0",
                "https",
                "10.0.0.6",
                40001,
                "93.184.216.34",
                443,
                t1,
            ),
        ],
    );
    let s = run_pending(data, config).unwrap();
    assert!(s.restarted.is_some(), "the findings were rebuilt: {s:?}");
    (orphan, kept, t0)
}

#[test]
fn an_intel_file_hash_finds_a_stored_file_whose_session_left_the_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = Config::default();
    let (orphan, kept, stored) = day_one(&data, &config, false);
    // Day 9: a feed lists both files' SHA-256.
    let src = dir.path().join("pack");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hashes.txt"), format!("{orphan}\n{kept}\n")).unwrap();
    std::fs::write(
        src.join("pack.toml"),
        "name = \"hashes\"\n[[file]]\npath = \"hashes.txt\"\nformat = \"plain\"\nkind = \"file_sha256\"\nfeed = \"malware-hashes\"\n",
    )
    .unwrap();
    let imp = packs::import(&data, &src, Some("hashes")).unwrap();
    let s = run_pending(&data, &config).unwrap();
    assert_eq!(s.retro_pending, 0);
    assert_eq!(
        (s.retro_objects, s.retro_orphans, s.retro_orphan_hits),
        (2, 1, 1),
        "{s:?}"
    );
    let f = findings(&data, &config, "intel_match");
    // The file still carried by a session: its pair's finding, as before.
    let pair = f
        .iter()
        .find(|f| f.server.as_deref() == Some("198.51.100.20"))
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!(pair.count, 1);
    // The orphan: a finding of its own, from the files store's metadata.
    let o = f
        .iter()
        .find(|f| f.client.is_none() && f.server.is_none())
        .unwrap_or_else(|| panic!("the orphan file's finding: {f:#?}"));
    assert_eq!(o.count, 1, "{o:#?}");
    assert_eq!(o.first_seen, stored, "the time the file was stored");
    let signals = o.signals.join("\n");
    for want in [
        format!("`{orphan}`"),
        "feed `malware-hashes`".to_string(),
        format!(
            "found on a re-check after the intel update of {}",
            imp.update.date
        ),
        format!(
            "stored file `payload.exe` (4096 bytes, `http-body`, `download`, sha256:{orphan}): the session `1-0-0` that carried it has left the session log"
        ),
    ] {
        assert!(signals.contains(&want), "{want}\n in {signals}");
    }
    assert!(o.evidence.iter().any(|e| e == "1-0-0"), "{:?}", o.evidence);
    // Nothing twice: the next run, and a hand re-check of every pack.
    run_pending(&data, &config).unwrap();
    packs::request_recheck(&data).unwrap();
    let s = run_pending(&data, &config).unwrap();
    assert_eq!(s.retro_orphans, 1);
    let f = findings(&data, &config, "intel_match");
    assert_eq!(f.iter().map(|f| f.count).sum::<u64>(), 2, "{f:#?}");
}

#[test]
fn a_yara_rule_added_later_finds_a_stored_file_whose_session_left_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = Config::default();
    let (orphan, _kept, stored) = day_one(&data, &config, true);
    // Day 9: a rule for the marker both files carry.
    let rules = dir.path().join("rules.yar");
    std::fs::write(&rules, RULES).unwrap();
    config.intel.yara_rules = vec![rules];
    let s = run_pending(&data, &config).unwrap();
    assert_eq!(s.retro_pending, 0);
    assert_eq!(
        s.yara_retro_hits, 1,
        "the kept file, through its session: {s:?}"
    );
    assert_eq!((s.retro_orphans, s.retro_orphan_hits), (1, 1), "{s:?}");
    let f = findings(&data, &config, "yara_match");
    assert_eq!(f.len(), 2, "{f:#?}");
    let o = f
        .iter()
        .find(|f| f.client.is_none())
        .unwrap_or_else(|| panic!("the orphan file's finding: {f:#?}"));
    assert_eq!(o.count, 1);
    assert_eq!(o.first_seen, stored);
    assert_eq!(
        o.risk,
        kuroko_model::finding::Risk::A,
        "the rule's kuroko_level"
    );
    let signals = o.signals.join("\n");
    assert!(
        signals.contains(
            "file `payload.exe` (4096 bytes, `http-body`) matched YARA rules `Kuroko_Orphan_Test`"
        ) && signals.contains("found on a re-check of the stored files")
            && signals.contains(&format!(
                "sha256:{orphan}): the session `1-0-0` that carried it has left the session log"
            )),
        "{signals}"
    );
    // A hand re-check counts nothing twice.
    kuroko_detect::intel::yara_retro::request_recheck(&data).unwrap();
    run_pending(&data, &config).unwrap();
    let f = findings(&data, &config, "yara_match");
    assert_eq!(f.iter().map(|f| f.count).sum::<u64>(), 2, "{f:#?}");
}

#[test]
fn a_crash_in_the_middle_of_the_objects_pass_counts_each_orphan_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = Config::default();
    let t0 = Timestamp(office_hours().nanos() - 8 * 86_400_000_000_000);
    let shas: Vec<String> = (0..7u8)
        .map(|i| {
            store_object(
                &data,
                &payload(11 + 2 * i, false),
                &format!("f{i}.bin"),
                &format!("{i:x}-1-0"),
                t0,
            )
        })
        .collect();
    // None of their sessions is in the log any more.
    append(
        &data,
        &[session(
            "9-0-0",
            "https",
            "10.0.0.6",
            40001,
            "93.184.216.34",
            443,
            t0,
        )],
    );
    start_log_over(&data);
    append(
        &data,
        &[session(
            "a-0-0",
            "https",
            "10.0.0.6",
            40002,
            "93.184.216.34",
            443,
            t0,
        )],
    );
    run_pending(&data, &config).unwrap();
    let src = dir.path().join("pack");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hashes.txt"), shas.join("\n")).unwrap();
    std::fs::write(
        src.join("pack.toml"),
        "name = \"hashes\"\n[[file]]\npath = \"hashes.txt\"\nformat = \"plain\"\nkind = \"file_sha256\"\nfeed = \"malware-hashes\"\n",
    )
    .unwrap();
    packs::import(&data, &src, Some("hashes")).unwrap();
    // Two objects per commit; the process dies after five.
    let mut d = Detector::open(&data, &config).unwrap().with_batch(2);
    d.catch_up_then_crash(5).unwrap();
    drop(d);
    let n: u64 = findings(&data, &config, "intel_match")
        .iter()
        .map(|f| f.count)
        .sum();
    assert!(n > 0 && n < 7, "only the committed slices: {n}");
    let s = run_pending(&data, &config).unwrap();
    assert_eq!(s.retro_pending, 0);
    let f = findings(&data, &config, "intel_match");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].count, 7, "every orphan once, none twice");
}
