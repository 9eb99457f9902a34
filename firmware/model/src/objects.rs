//! The reconstructed-objects store `DATA/files/` as every reader sees it: where an object's
//! bytes are, and its metadata. The analyzer (`kuroko_analyzer::files`) is the only writer;
//! every reader (search detail, content extraction, detections, intel re-checks, report and
//! export bundle, tests) goes through [`Objects`] so that the layout is known in one place.
//!
//! Layout:
//! - `files/ab/cdef….bin` — the object's bytes, named by its SHA-256 (`.eml` for whole
//!   mails); the same content carried twice is stored once.
//! - `files/objects.log` — one metadata record per stored object, in insertion order
//!   (oldest first, the order eviction follows): `<crc32c of the JSON, 8 hex> <JSON>\n`,
//!   the JSON an [`ObjectMeta`] (digest, extension, size, name, content type, direction,
//!   session of the first carrier, kind, partial, YARA rules). Appended at each analyzer
//!   checkpoint; rewritten (tmp + rename) when eviction drops its oldest records.
//! - `files/objects.synced` — the length of `objects.log` made durable by the last
//!   checkpoint; records past it may be torn and are dropped by the analyzer's next start
//!   (the replay stores their objects again).
//! - `files/spare/` — emptied files of evicted objects, reused for new ones.
//!
//! Older data directories held a pretty-printed `ab/cdef….json` beside each object and an
//! `order.log` of `<sha256> <ext> <bytes>` lines: the analyzer migrates them once on start
//! (saying so on stderr); until then [`Objects::meta`] reads the `.json` beside the object.

use serde::{Deserialize, Serialize};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

/// The metadata log (see the module docs).
pub const LOG: &str = "objects.log";
/// The durable length of [`LOG`].
pub const SYNCED: &str = "objects.synced";
/// The older layout's insertion-order list and its durable length.
pub const LEGACY_LOG: &str = "order.log";
pub const LEGACY_SYNCED: &str = "order.synced";
/// Extensions an object's bytes file may have: `.bin`, `.eml` for whole mails.
pub const EXTENSIONS: [&str; 2] = ["bin", "eml"];

/// One record of `objects.log`: what the analyzer knew when it stored the object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub sha256: String,
    /// `bin` or `eml`.
    pub ext: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `upload`, `download` or empty.
    #[serde(default)]
    pub direction: String,
    /// Id of the first session that carried it.
    #[serde(default)]
    pub session: String,
    /// `http-body`, `ftp`, `mail`, `attachment`, `mail-body`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub partial: bool,
    /// YARA rules that matched when it was stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub yara: Vec<String>,
}

/// Appends the log line of a record whose JSON (one line, no newline) is `json`.
pub fn encode_line(json: &[u8], out: &mut Vec<u8>) {
    let crc = crc32c::crc32c(json);
    out.extend_from_slice(format!("{crc:08x} ").as_bytes());
    out.extend_from_slice(json);
    out.push(b'\n');
}

/// Why a line of `objects.log` was not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// No newline: the last line, cut by a crash mid-append.
    Unterminated,
    /// The checksum does not match or the JSON is not a record: torn or damaged.
    Bad,
}

/// The record of one log line (`line` with its newline, as [`lines`] gives it).
pub fn decode_line(line: &[u8]) -> Result<ObjectMeta, LineError> {
    let Some(body) = line.strip_suffix(b"\n") else {
        return Err(LineError::Unterminated);
    };
    if body.len() < 9 || body[8] != b' ' {
        return Err(LineError::Bad);
    }
    let crc = std::str::from_utf8(&body[..8])
        .ok()
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or(LineError::Bad)?;
    let json = &body[9..];
    if crc32c::crc32c(json) != crc {
        return Err(LineError::Bad);
    }
    let meta: ObjectMeta = serde_json::from_slice(json).map_err(|_| LineError::Bad)?;
    if !is_sha256(&meta.sha256) || !EXTENSIONS.contains(&meta.ext.as_str()) {
        return Err(LineError::Bad);
    }
    Ok(meta)
}

/// The lines of a log with their byte offsets (each with its newline; the last may lack it).
pub fn lines(log: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut offset = 0u64;
    log.split_inclusive(|&b| b == b'\n').map(move |l| {
        let start = offset;
        offset += l.len() as u64;
        (start, l)
    })
}

/// A lower-case hex SHA-256: the only names objects have (never build paths from other text).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where the object `sha256` with extension `ext` lives under `files_dir` (whether or not
/// it is there). `sha256` must pass [`is_sha256`].
pub fn object_path(files_dir: &Path, sha256: &str, ext: &str) -> PathBuf {
    let (a, b) = sha256.split_at(2.min(sha256.len()));
    files_dir.join(a).join(format!("{b}.{ext}"))
}

/// Read-only view of `DATA/files/`.
#[derive(Clone, Debug)]
pub struct Objects {
    root: PathBuf,
}

impl Objects {
    /// The objects of the data directory `data_dir`.
    pub fn new(data_dir: &Path) -> Objects {
        Objects {
            root: data_dir.join("files"),
        }
    }

    /// The objects of a files directory itself (`DATA/files`).
    pub fn at(files_dir: &Path) -> Objects {
        Objects {
            root: files_dir.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The stored bytes file of `sha256` (any case; `.bin`, else `.eml`), if present.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        self.path_with(sha256, &EXTENSIONS)
    }

    /// [`Objects::path`] trying the extensions in the order given.
    pub fn path_with(&self, sha256: &str, exts: &[&str]) -> Option<PathBuf> {
        let sha = sha256.to_ascii_lowercase();
        if !is_sha256(&sha) {
            return None;
        }
        exts.iter()
            .map(|ext| object_path(&self.root, &sha, ext))
            .find(|p| p.is_file())
    }

    /// The object's bytes, at most `max` of them (`None`: not stored, e.g. evicted).
    pub fn read(&self, sha256: &str, max: u64) -> io::Result<Option<Vec<u8>>> {
        let Some(p) = self.path(sha256) else {
            return Ok(None);
        };
        let f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        f.take(max).read_to_end(&mut out)?;
        Ok(Some(out))
    }

    /// The analyzer's metadata of a stored object: its record in `objects.log`, or the
    /// older layout's `.json` beside the object (a data directory not yet migrated).
    pub fn meta(&self, sha256: &str) -> Option<ObjectMeta> {
        let sha = sha256.to_ascii_lowercase();
        if !is_sha256(&sha) {
            return None;
        }
        if let Ok(log) = std::fs::read(self.root.join(LOG)) {
            let found = lines(&log)
                .filter_map(|(_, l)| decode_line(l).ok())
                .find(|m| m.sha256 == sha);
            if found.is_some() {
                return found;
            }
        }
        let text = std::fs::read(object_path(&self.root, &sha, "json")).ok()?;
        legacy_meta(&text, &sha, self.path(&sha).as_deref())
    }
}

/// A record from the older layout's per-object `.json` (`ext` from the object's file name;
/// the size from the JSON, else the file's length).
pub fn legacy_meta(json: &[u8], sha256: &str, object: Option<&Path>) -> Option<ObjectMeta> {
    #[derive(Deserialize)]
    struct Legacy {
        name: Option<String>,
        content_type: Option<String>,
        size: Option<u64>,
        #[serde(default)]
        direction: String,
        #[serde(default)]
        session: String,
        #[serde(default)]
        kind: String,
        #[serde(default)]
        partial: bool,
        #[serde(default)]
        yara: Vec<String>,
    }
    let l: Legacy = serde_json::from_slice(json).ok()?;
    let ext = object
        .and_then(|p| p.extension())
        .and_then(|x| x.to_str())
        .unwrap_or("bin")
        .to_string();
    let size = l
        .size
        .or_else(|| {
            object
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
        })
        .unwrap_or(0);
    Some(ObjectMeta {
        sha256: sha256.to_string(),
        ext,
        size,
        name: l.name,
        content_type: l.content_type,
        direction: l.direction,
        session: l.session,
        kind: l.kind,
        partial: l.partial,
        yara: l.yara,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(sha: &str) -> ObjectMeta {
        ObjectMeta {
            sha256: sha.into(),
            ext: "bin".into(),
            size: 3,
            name: Some("a b\n\"c\".txt".into()),
            kind: "http-body".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_line_round_trips_and_any_flipped_byte_or_cut_is_refused() {
        let sha = "ab".repeat(32);
        let mut line = Vec::new();
        encode_line(&serde_json::to_vec(&meta(&sha)).unwrap(), &mut line);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(decode_line(&line), Ok(meta(&sha)));
        for i in 0..line.len() - 1 {
            let mut bad = line.clone();
            bad[i] ^= 0x01;
            assert!(decode_line(&bad).is_err(), "byte {i} flipped");
        }
        for cut in 0..line.len() {
            assert!(decode_line(&line[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn readers_find_bytes_and_metadata_in_both_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files");
        let new = "0a".repeat(32);
        let old = "0b".repeat(32);
        std::fs::create_dir_all(files.join("0a")).unwrap();
        std::fs::create_dir_all(files.join("0b")).unwrap();
        std::fs::write(object_path(&files, &new, "bin"), b"new").unwrap();
        std::fs::write(object_path(&files, &old, "eml"), b"old mail").unwrap();
        std::fs::write(
            object_path(&files, &old, "json"),
            br#"{"sha256":"x","name":"m.eml","size":8,"kind":"mail","yara":["R"]}"#,
        )
        .unwrap();
        let mut log = Vec::new();
        encode_line(&serde_json::to_vec(&meta(&new)).unwrap(), &mut log);
        log.extend_from_slice(b"0000"); // a torn tail
        std::fs::write(files.join(LOG), &log).unwrap();

        let o = Objects::new(dir.path());
        assert_eq!(o.read(&new, 2).unwrap(), Some(b"ne".to_vec()));
        assert_eq!(
            o.read(&new.to_uppercase(), 99).unwrap(),
            Some(b"new".to_vec())
        );
        assert_eq!(o.meta(&new), Some(meta(&new)));
        let m = o.meta(&old).unwrap();
        assert_eq!(
            (m.ext.as_str(), m.size, m.yara),
            ("eml", 8, vec!["R".into()])
        );
        assert!(o.path(&"0c".repeat(32)).is_none());
        assert!(o.path("../../etc/passwd").is_none());
        assert_eq!(o.read(&"0c".repeat(32), 9).unwrap(), None);
    }
}
