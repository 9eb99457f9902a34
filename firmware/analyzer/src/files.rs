//! The reconstruction store `DATA/files/`: objects carried by HTTP, FTP and mail, stored
//! content-addressed by SHA-256.
//!
//! Layout: `files/ab/cdef….bin` (whole mails: `.eml`) with `files/ab/cdef….json` beside it
//! holding the metadata of the first session that carried it (name, type, size,
//! direction, session id, kind). The same content carried twice is stored once.
//!
//! Budget: `[storage] files_budget`. `files/order.log` lists stored objects in insertion
//! order (`<sha256> <ext> <bytes>` a line); when the total exceeds the budget the oldest
//! objects are deleted first and the log is rewritten (tmp + rename). A crash between
//! deleting an object and rewriting the log leaves a line naming a missing file, which is
//! skipped on the next start.
//!
//! Durability without an fsync per object: objects are written (tmp + rename) and listed
//! in `order.log` without syncing; [`FileStore::sync`] (called by the driver right before
//! each checkpoint) fsyncs them, the log and the directories, then records the synced
//! length of `order.log` in `order.synced`. On start, objects listed after that length may
//! be torn by a crash: they are deleted (the replay from the checkpoint stores them again).

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const ORDER_LOG: &str = "order.log";
const ORDER_SYNCED: &str = "order.synced";

/// What is written beside each object.
#[derive(Serialize, Debug, Clone)]
pub struct ObjectRecord<'a> {
    pub sha256: &'a str,
    pub name: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub size: u64,
    pub direction: &'a str,
    pub session: &'a str,
    pub kind: &'a str,
    pub partial: bool,
}

#[derive(Debug)]
struct Entry {
    sha: String,
    ext: String,
    bytes: u64,
}

/// The store. Not shared between processes: the analyzer is its only writer.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    budget: u64,
    used: u64,
    order: VecDeque<Entry>,
    log: File,
    /// Bytes of `order.log` written so far.
    log_len: u64,
    /// Objects written since the last [`FileStore::sync`].
    unsynced: Vec<PathBuf>,
}

/// Outcome of a `put`.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    Stored { evicted: u64 },
    AlreadyPresent,
}

impl FileStore {
    /// Opens (creating) `dir` with a byte budget.
    pub fn open(dir: &Path, budget: u64) -> io::Result<FileStore> {
        fs::create_dir_all(dir)?;
        let mut order = VecDeque::new();
        let mut used = 0;
        let log_path = dir.join(ORDER_LOG);
        let synced: u64 = fs::read_to_string(dir.join(ORDER_SYNCED))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let text = match fs::read(&log_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut offset = 0u64;
        for line in text.split_inclusive(|&b| b == b'\n') {
            let start = offset;
            offset += line.len() as u64;
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let mut it = line.trim_end().split(' ');
            let (Some(sha), Some(ext), Some(bytes)) = (it.next(), it.next(), it.next()) else {
                continue; // a torn last line
            };
            let Ok(bytes) = bytes.parse::<u64>() else {
                continue;
            };
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) || ext.contains('/') {
                continue;
            }
            let path = object_path(dir, sha, ext);
            if start >= synced || !line.ends_with('\n') {
                // Written after the last sync: may be torn; the replay stores it again.
                let _ = fs::remove_file(path.with_extension("json"));
                let _ = fs::remove_file(&path);
                continue;
            }
            if path.exists() {
                used += bytes;
                order.push_back(Entry {
                    sha: sha.to_string(),
                    ext: ext.to_string(),
                    bytes,
                });
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut store = FileStore {
            dir: dir.to_path_buf(),
            budget,
            used,
            order,
            log,
            log_len: 0,
            unsynced: Vec::new(),
        };
        // Start from a clean, synced log holding exactly the objects we keep.
        store.rewrite_log()?;
        Ok(store)
    }

    /// Makes every object stored so far durable (see the module docs).
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced.is_empty() {
            return Ok(());
        }
        let mut dirs = std::collections::BTreeSet::new();
        for p in self.unsynced.drain(..) {
            if let Ok(f) = File::open(&p) {
                f.sync_data()?;
            }
            if let Some(d) = p.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        for d in dirs {
            File::open(&d)?.sync_all()?;
        }
        self.log.sync_data()?;
        self.write_synced_mark()
    }

    fn write_synced_mark(&self) -> io::Result<()> {
        let tmp = self.dir.join("order.synced.tmp");
        {
            let mut f = File::create(&tmp)?;
            write!(f, "{}", self.log_len)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(ORDER_SYNCED))?;
        File::open(&self.dir)?.sync_all()
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the object with this digest lives (`.bin` or `.eml`).
    pub fn path_of(&self, sha256: &str, ext: &str) -> PathBuf {
        object_path(&self.dir, sha256, ext)
    }

    /// Stores `bytes` (if not present) with its metadata; returns the digest.
    pub fn put(
        &mut self,
        bytes: &[u8],
        ext: &str,
        meta: ObjectRecord<'_>,
    ) -> io::Result<(String, Put)> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = object_path(&self.dir, &sha, ext);
        if path.exists() {
            return Ok((sha, Put::AlreadyPresent));
        }
        if bytes.len() as u64 > self.budget {
            return Err(io::Error::other(
                "object larger than the whole files budget",
            ));
        }
        let parent = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent)?;
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, &path)?;
        let meta = ObjectRecord {
            sha256: &sha,
            size: bytes.len() as u64,
            ..meta
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
        fs::write(path.with_extension("json"), json)?;
        let line = format!("{sha} {ext} {}\n", bytes.len());
        self.log.write_all(line.as_bytes())?;
        self.log_len += line.len() as u64;
        self.unsynced.push(path.clone());
        self.used += bytes.len() as u64;
        self.order.push_back(Entry {
            sha: sha.clone(),
            ext: ext.to_string(),
            bytes: bytes.len() as u64,
        });
        let evicted = self.enforce_budget()?;
        Ok((sha, Put::Stored { evicted }))
    }

    /// Deletes oldest objects until the store fits its budget; returns how many.
    fn enforce_budget(&mut self) -> io::Result<u64> {
        if self.used <= self.budget {
            return Ok(0);
        }
        // Free down to 90% so that the log is not rewritten for every new object.
        let target = self.budget / 10 * 9;
        let mut evicted = 0;
        while self.used > target {
            let Some(e) = self.order.pop_front() else {
                break;
            };
            let p = object_path(&self.dir, &e.sha, &e.ext);
            let _ = fs::remove_file(p.with_extension("json"));
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            self.used = self.used.saturating_sub(e.bytes);
            evicted += 1;
        }
        self.rewrite_log()?;
        Ok(evicted)
    }

    fn rewrite_log(&mut self) -> io::Result<()> {
        let path = self.dir.join(ORDER_LOG);
        let tmp = self.dir.join("order.log.tmp");
        // Objects listed must be durable before the list that names them is.
        self.sync()?;
        let mut len = 0u64;
        {
            let mut f = io::BufWriter::new(File::create(&tmp)?);
            for e in &self.order {
                let line = format!("{} {} {}\n", e.sha, e.ext, e.bytes);
                len += line.len() as u64;
                f.write_all(line.as_bytes())?;
            }
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.log = OpenOptions::new().append(true).open(&path)?;
        self.log_len = len;
        self.write_synced_mark()
    }
}

fn object_path(dir: &Path, sha: &str, ext: &str) -> PathBuf {
    let (a, b) = sha.split_at(2.min(sha.len()));
    dir.join(a).join(format!("{b}.{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ObjectRecord<'static> {
        ObjectRecord {
            sha256: "",
            name: Some("a.txt"),
            content_type: None,
            size: 0,
            direction: "download",
            session: "0-0-0",
            kind: "http-body",
            partial: false,
        }
    }

    #[test]
    fn stores_by_digest_dedups_and_evicts_oldest_over_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), 250).unwrap();
        let (sha1, put) = s.put(&[1u8; 100], "bin", meta()).unwrap();
        assert_eq!(put, Put::Stored { evicted: 0 });
        assert_eq!(sha1, hex::encode(Sha256::digest([1u8; 100])));
        let p1 = s.path_of(&sha1, "bin");
        assert_eq!(fs::read(&p1).unwrap(), vec![1u8; 100]);
        assert!(p1.with_extension("json").exists());
        assert_eq!(
            s.put(&[1u8; 100], "bin", meta()).unwrap().1,
            Put::AlreadyPresent
        );
        s.put(&[2u8; 100], "bin", meta()).unwrap();
        let (_, put) = s.put(&[3u8; 100], "eml", meta()).unwrap();
        assert_eq!(put, Put::Stored { evicted: 1 });
        assert!(!p1.exists(), "the oldest object goes first");
        assert_eq!(s.used(), 200);
        drop(s);
        // The order survives a restart.
        let mut s = FileStore::open(dir.path(), 250).unwrap();
        assert_eq!(s.used(), 200);
        // An object not synced before a crash is dropped on the next start; a synced one stays.
        let (lost, _) = s.put(&[4u8; 10], "bin", meta()).unwrap();
        drop(s);
        let mut s = FileStore::open(dir.path(), 250).unwrap();
        assert_eq!(s.used(), 200);
        assert!(!s.path_of(&lost, "bin").exists());
        let (kept, _) = s.put(&[4u8; 10], "bin", meta()).unwrap();
        s.sync().unwrap();
        drop(s);
        let s = FileStore::open(dir.path(), 250).unwrap();
        assert_eq!(s.used(), 210);
        assert!(s.path_of(&kept, "bin").exists());
    }
}
