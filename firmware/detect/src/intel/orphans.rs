//! Re-checking the stored files whose session has left the session log.
//!
//! The files store (`DATA/files/`) and the session log are kept apart: the log can lose
//! old sessions (started over by the analyzer after its packets wrapped out of the store,
//! or pruned whole files at a time) while their reconstructed files stay within the files
//! budget. A re-check that walked only the log would never look at those files: an intel
//! file hash or a YARA rule that arrives later would be silently blind to them.
//!
//! So every re-check (intel: [`super::retro::Recheck`], YARA:
//! [`super::yara_retro::YaraRecheck`]) ends with a pass over `files/objects.log`: an
//! object no session record of the log carries (`files[].sha256`, `ftp.files[].sha256`)
//! is an *orphan*, checked on what the files store knows of it ([`ObjectMeta`]: name,
//! kind, direction, size, the id of the session that first carried it) and the time its
//! bytes file was written (the time it was stored). Its hits are findings with no client
//! or server (those were in the session record), saying so.
//!
//! Bounds and exactly-once:
//! - The pass covers the objects stored before the re-check was queued
//!   ([`objects_end`]: the last record of `objects.log` then); later ones were scanned or
//!   tagged live, through the sessions that carry them.
//! - Its cursor ([`ObjectsPass::after`], the digest of the last object checked) rides in
//!   the re-check, committed with the findings. Eviction drops the oldest records of
//!   `objects.log` first, so a cursor whose object was evicted means every remaining
//!   record comes after it.
//! - An orphan is counted under the id of the session that first carried it, in the same
//!   `Counted` sets as sessions: a file counted live while its session was in the log is
//!   not counted again.
//!
//! What it cannot tell: a session still open when the pass runs (its record not yet in the
//! log) carrying an object stored before the re-check was queued; its file is taken for
//! an orphan. Such a session is live and hours long; the pass runs right after the log
//! pass.

use kuroko_model::objects::{self, ObjectMeta};
use kuroko_model::session::{Endpoint, FileRef};
use kuroko_model::sessionlog;
use kuroko_model::{SessionRecord, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Progress of the pass over the stored objects, after the re-check's log pass.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ObjectsPass {
    /// Digest of the last object checked ("" before the first).
    #[serde(default)]
    pub after: String,
    /// Objects of `objects.log` looked at.
    #[serde(default)]
    pub objects_checked: u64,
    /// Those no session of the log carries.
    #[serde(default)]
    pub orphans: u64,
    /// Orphans that matched.
    #[serde(default)]
    pub orphans_with_hits: u64,
}

/// The digest of the last record of `files/objects.log` ("" when there is none): where
/// the pass of a re-check queued now ends.
pub fn objects_end(files_dir: &Path) -> String {
    read_log(files_dir)
        .last()
        .map(|m| m.sha256.clone())
        .unwrap_or_default()
}

/// The records of `files/objects.log`, oldest first (torn or damaged lines skipped).
pub fn read_log(files_dir: &Path) -> Vec<ObjectMeta> {
    let Ok(log) = std::fs::read(files_dir.join(objects::LOG)) else {
        return Vec::new();
    };
    objects::lines(&log)
        .filter_map(|(_, l)| objects::decode_line(l).ok())
        .collect()
}

/// The next objects to check: at most `max` records after `pass.after`, up to and
/// including the one named `end`; `finished` when that one is among them (or gone).
pub struct Slice {
    pub objects: Vec<ObjectMeta>,
    pub finished: bool,
}

pub fn next_slice(files_dir: &Path, after: &str, end: &str, max: usize) -> Slice {
    if end.is_empty() {
        return Slice {
            objects: Vec::new(),
            finished: true,
        };
    }
    let log = read_log(files_dir);
    // The end evicted: so was everything before it, and what is left is newer.
    let Some(last) = log.iter().position(|m| m.sha256 == end) else {
        return Slice {
            objects: Vec::new(),
            finished: true,
        };
    };
    let first = if after.is_empty() {
        0
    } else {
        // The cursor evicted: everything left is newer than it.
        log.iter()
            .position(|m| m.sha256 == after)
            .map_or(0, |i| i + 1)
    };
    if first > last {
        return Slice {
            objects: Vec::new(),
            finished: true,
        };
    }
    let stop = last.min(first + max.max(1) - 1);
    Slice {
        objects: log[first..=stop].to_vec(),
        finished: stop == last,
    }
}

/// The digests (64-bit FNV-1a of the lower-case hex SHA-256) of every object a record of
/// the session log names, final or provisional: any `sha256` or `eml_sha256` value in it
/// (`files[]`, `ftp.files[]`, mail attachments and whole messages, beyond the cap of
/// `files[]` too; certificate digests come along and are harmless). Reads the log's files
/// directly and parses only the lines that name a digest (most records carry no file).
pub fn carried_digests(log_dir: &Path) -> std::io::Result<HashSet<u64>> {
    fn walk(v: &serde_json::Value, out: &mut HashSet<u64>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(s) if k == "sha256" || k == "eml_sha256" => {
                            out.insert(digest_key(s));
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = HashSet::new();
    let needle = b"sha256\"";
    for n in sessionlog::list_files(log_dir)? {
        let f = match std::fs::File::open(sessionlog::file_path(log_dir, n)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut r = BufReader::with_capacity(1 << 20, f);
        let mut line = Vec::new();
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if !line.windows(needle.len()).any(|w| w == needle) {
                continue;
            }
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) {
                walk(&v, &mut out);
            }
        }
    }
    Ok(out)
}

/// Where [`carried`] keeps the set between the slices of a pass (`kuroko run` opens the
/// detections afresh for each slice; reading a week of session log again for each would
/// cost more than the pass). A cache: rebuilt when missing, damaged or of another pass.
pub const CARRIED_FILE: &str = "findings/orphans-carried.bin";

/// [`carried_digests`] of the pass named `key`, from [`CARRIED_FILE`] when it holds that
/// pass's set, else read from the log and kept there.
pub fn carried(data_dir: &Path, key: &str) -> std::io::Result<HashSet<u64>> {
    let path = data_dir.join(CARRIED_FILE);
    if let Ok(bytes) = std::fs::read(&path)
        && let Some(nl) = bytes.iter().position(|&b| b == b'\n')
        && &bytes[..nl] == key.as_bytes()
        && (bytes.len() - nl - 1) % 8 == 0
    {
        return Ok(bytes[nl + 1..]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect());
    }
    let set = carried_digests(&data_dir.join("sessions"))?;
    let mut out = Vec::with_capacity(key.len() + 1 + set.len() * 8);
    out.extend_from_slice(key.as_bytes());
    out.push(b'\n');
    for d in &set {
        out.extend_from_slice(&d.to_le_bytes());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("bin.tmp");
    std::fs::write(&tmp, &out)?;
    std::fs::rename(&tmp, &path)?;
    Ok(set)
}

/// Drops [`CARRIED_FILE`] (its pass is done).
pub fn forget_carried(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(CARRIED_FILE));
}

/// The key of a digest in [`carried_digests`].
pub fn digest_key(sha256: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sha256.bytes() {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The id an orphan is counted and shown under: the session that first carried it, or
/// `object:<sha256>` when the store did not record one.
pub fn orphan_id(m: &ObjectMeta) -> String {
    if m.session.is_empty() {
        format!("object:{}", m.sha256)
    } else {
        m.session.clone()
    }
}

/// A stand-in session record for an orphan, built from what the files store knows: the
/// first carrier's id, the time the object's bytes were written, no addresses (0.0.0.0,
/// shown nowhere: the hits have no client or server), and the one file.
pub fn orphan_record(files_dir: &Path, m: &ObjectMeta) -> SessionRecord {
    let t = objects::Objects::at(files_dir)
        .path(&m.sha256)
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|md| md.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Timestamp(d.as_nanos() as i64))
        .unwrap_or_default();
    let none = Endpoint::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let mut s = SessionRecord::new(orphan_id(m), t, "", none.clone(), none);
    s.end = t;
    s.files.push(FileRef {
        sha256: m.sha256.clone(),
        name: m.name.clone(),
        content_type: m.content_type.clone(),
        bytes: m.size,
        direction: m.direction.clone(),
        kind: m.kind.clone(),
        partial: m.partial,
        ..Default::default()
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(sha: &str) -> ObjectMeta {
        ObjectMeta {
            sha256: sha.into(),
            ext: "bin".into(),
            size: 1,
            ..Default::default()
        }
    }

    #[test]
    fn every_digest_a_record_names_is_carried_wherever_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c, d, e) = (
            "a".repeat(64),
            "b".repeat(64),
            "c".repeat(64),
            "d".repeat(64),
            "e".repeat(64),
        );
        let lines = [
            format!(r#"{{"id":"1","files":[{{"sha256":"{a}","kind":"http-body"}}]}}"#),
            format!(
                r#"{{"id":"2","ftp":{{"files":[{{"name":"x","sha256":"{}"}}]}}}}"#,
                b.to_uppercase()
            ),
            format!(
                r#"{{"id":"3","mail":{{"eml_sha256":"{c}","messages":[{{"attachments":[{{"name":"y","sha256":"{d}"}}]}}]}}}}"#
            ),
            r#"{"id":"4","protocol":"dns"}"#.to_string(),
            format!(r#"{{"id":"5","files":[{{"sha256":"{e}""#), // torn, not a record
        ];
        std::fs::write(sessionlog::file_path(dir.path(), 0), lines.join("\n")).unwrap();
        let got = carried_digests(dir.path()).unwrap();
        for x in [&a, &b, &c, &d] {
            assert!(got.contains(&digest_key(x)), "{x}");
        }
        assert!(!got.contains(&digest_key(&e)));
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn the_carried_set_is_kept_for_its_pass_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sessions");
        std::fs::create_dir_all(&log).unwrap();
        let line = |sha: &str| format!("{{\"id\":\"1\",\"files\":[{{\"sha256\":\"{sha}\"}}]}}\n");
        std::fs::write(sessionlog::file_path(&log, 0), line(&"a".repeat(64))).unwrap();
        let first = carried(dir.path(), "pass 1").unwrap();
        assert!(first.contains(&digest_key(&"a".repeat(64))));
        // The log changes: the same pass keeps its set, another one reads the log again.
        std::fs::write(sessionlog::file_path(&log, 0), line(&"b".repeat(64))).unwrap();
        assert_eq!(carried(dir.path(), "pass 1").unwrap(), first);
        let second = carried(dir.path(), "pass 2").unwrap();
        assert!(second.contains(&digest_key(&"b".repeat(64))) && second.len() == 1);
        forget_carried(dir.path());
        assert!(!dir.path().join(CARRIED_FILE).exists());
    }

    #[test]
    fn slices_follow_the_cursor_stop_at_the_end_and_survive_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let shas: Vec<String> = (0..6).map(|i| format!("{i:x}").repeat(64)).collect();
        let write = |from: usize| {
            let mut log = Vec::new();
            for s in &shas[from..] {
                objects::encode_line(&serde_json::to_vec(&meta(s)).unwrap(), &mut log);
            }
            std::fs::write(dir.path().join(objects::LOG), log).unwrap();
        };
        write(0);
        assert_eq!(objects_end(dir.path()), shas[5]);
        let names = |s: &Slice| {
            s.objects
                .iter()
                .map(|m| m.sha256.clone())
                .collect::<Vec<_>>()
        };
        // The end is object 3: objects 0–3, two at a time.
        let a = next_slice(dir.path(), "", &shas[3], 2);
        assert_eq!((names(&a), a.finished), (shas[0..2].to_vec(), false));
        let b = next_slice(dir.path(), &shas[1], &shas[3], 2);
        assert_eq!((names(&b), b.finished), (shas[2..4].to_vec(), true));
        // Eviction dropped objects 0–2, the cursor among them: on from what is left.
        write(3);
        let c = next_slice(dir.path(), &shas[1], &shas[4], 9);
        assert_eq!((names(&c), c.finished), (shas[3..5].to_vec(), true));
        // The end itself evicted: nothing of the pass is left.
        write(5);
        assert!(next_slice(dir.path(), "", &shas[4], 9).finished);
        assert!(next_slice(dir.path(), "", "", 9).objects.is_empty());
    }
}
