//! The reconstruction store `DATA/files/`: objects carried by HTTP, FTP and mail, stored
//! content-addressed by SHA-256.
//!
//! Layout: `files/ab/cdef….bin` (whole mails: `.eml`) with `files/ab/cdef….json` beside it
//! holding the metadata of the first session that carried it (name, type, size,
//! direction, session id, kind). The same content carried twice is stored once.
//!
//! Budget: `[storage] files_budget`. `files/order.log` lists stored objects in insertion
//! order (`<sha256> <ext> <bytes>` a line, appended and fsynced with the object); when the
//! total exceeds the budget the oldest objects are deleted first and the log is rewritten
//! (tmp + rename). A crash between deleting an object and rewriting the log leaves a line
//! naming a missing file, which is skipped on the next start.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

const ORDER_LOG: &str = "order.log";

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
        if let Ok(f) = File::open(&log_path) {
            for line in io::BufReader::new(f).lines() {
                let line = line?;
                let mut it = line.split(' ');
                let (Some(sha), Some(ext), Some(bytes)) = (it.next(), it.next(), it.next()) else {
                    continue; // a torn last line
                };
                let Ok(bytes) = bytes.parse::<u64>() else {
                    continue;
                };
                if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    continue;
                }
                let e = Entry {
                    sha: sha.to_string(),
                    ext: ext.to_string(),
                    bytes,
                };
                if object_path(dir, &e.sha, &e.ext).exists() {
                    used += bytes;
                    order.push_back(e);
                }
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
            budget,
            used,
            order,
            log,
        })
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
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()?;
        }
        fs::rename(&tmp, &path)?;
        let meta = ObjectRecord {
            sha256: &sha,
            size: bytes.len() as u64,
            ..meta
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
        fs::write(path.with_extension("json"), json)?;
        writeln!(self.log, "{sha} {ext} {}", bytes.len())?;
        self.log.sync_data()?;
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
        {
            let mut f = io::BufWriter::new(File::create(&tmp)?);
            for e in &self.order {
                writeln!(f, "{} {} {}", e.sha, e.ext, e.bytes)?;
            }
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.log = OpenOptions::new().append(true).open(&path)?;
        Ok(())
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
        let s = FileStore::open(dir.path(), 250).unwrap();
        assert_eq!(s.used(), 200);
    }
}
