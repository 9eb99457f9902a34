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
//! Evicted objects are not unlinked: their files are emptied (truncated to 0, so the
//! budget holds on disk) and moved to `files/spare/`, and the next objects are written into
//! them and renamed into place. On an ext4 without a journal (this project's dev VM and
//! any such data disk), every new inode is allocated by scanning past each inode of its
//! group deleted in the last 60 s (360 s while its inode-table block is dirty: ext4
//! `find_inode_bit` → `recently_deleted`); with the budget full, the analyzer deleted and
//! created ~3000 inodes per GB of traffic and a fifth of its CPU went into that scan.
//! Reusing the inodes keeps the churn at zero once the budget is full. At most
//! [`MAX_SPARES`] empty files wait; beyond that, evicted files are unlinked.
//!
//! Durability without an fsync per object: objects are written (tmp + rename) and their
//! `order.log` lines kept in memory, without syncing. [`FileStore::sync`] (called by the
//! driver right before each checkpoint, and before each rewrite of the list) appends the
//! lines, makes everything durable in one `syncfs(2)` of the files directory's file system
//! (objects, metadata, renames, spares), then records the synced length of `order.log` in
//! `order.synced`. One syncfs instead of an open + fdatasync per object and an fsync per
//! directory: each fdatasync wrote its inode's table block on its own and, on ext4, flushed
//! the disk's write cache, thousands of times per checkpoint. syncfs does not flush the
//! cache after the metadata it writes last on an ext4 without a journal, so the log's
//! fdatasync follows it (ext4 flushes the device on every fsync; the flush covers all
//! completed writes) before the mark names anything durable.
//!
//! On start, only objects listed before the synced length are kept. Those listed after it,
//! and any object file not listed at all (a crash after its rename, before its line was
//! written or synced; a `.tmp` left by a crash mid-write), may be torn: they are deleted,
//! and the replay from the checkpoint stores them again. So the files on disk are exactly
//! the objects the list counts, and a replay never takes a torn leftover for a stored
//! object (a put finds its name free).

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

const ORDER_LOG: &str = "order.log";
const ORDER_SYNCED: &str = "order.synced";
/// Emptied files of evicted objects, reused for new ones (see the module docs).
const SPARE_DIR: &str = "spare";
/// Empty files kept for reuse at most (each is an inode and nothing else).
pub const MAX_SPARES: usize = 8192;

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
    /// YARA rules that matched when it was stored.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub yara: &'a [String],
}

/// SHA-256 (hex) of an object: its name in the store.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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
    /// Bytes of `order.log` written so far (including `pending`).
    log_len: u64,
    /// `order.log` lines of objects stored since the last sync, appended by the sync.
    pending: String,
    /// The files directory, kept open for `syncfs` (its writeback errors are reported to
    /// file descriptors opened before them).
    dir_fd: File,
    /// Object subdirectories (`ab/`) known to exist, by their first digest byte.
    made_dirs: [bool; 256],
    /// Something changed since the last sync (objects, renames to and from `spare/`).
    dirty: bool,
    /// Empty files in `spare/`, to be written and renamed into place.
    spares: Vec<PathBuf>,
    /// Name of the next file moved to `spare/`.
    next_spare: u64,
    /// Spares retired in this eviction round, emptied once the round's renames are durable.
    to_empty: Vec<PathBuf>,
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
        let mut kept: HashSet<String> = HashSet::new();
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
            if path.exists() && kept.insert(format!("{sha}.{ext}")) {
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
        let (spares, next_spare) = open_spares(&dir.join(SPARE_DIR))?;
        let made_dirs = sweep_unlisted(dir, &kept)?;
        let dir_fd = File::open(dir)?;
        let mut store = FileStore {
            dir: dir.to_path_buf(),
            budget,
            used,
            order,
            log,
            log_len: 0,
            pending: String::new(),
            dir_fd,
            made_dirs,
            dirty: false,
            spares,
            next_spare,
            to_empty: Vec::new(),
        };
        // Start from a clean, synced log holding exactly the objects we keep.
        store.rewrite_log()?;
        Ok(store)
    }

    /// Makes every object stored so far durable (see the module docs).
    pub fn sync(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if !self.pending.is_empty() {
            self.log.write_all(self.pending.as_bytes())?;
            self.pending.clear();
        }
        // Objects, metadata, the log and every rename (a name moved to or from `spare/`
        // must not survive a crash beside its new name: a reused inode would then show
        // through an evicted object's old name), all in one call.
        nix::unistd::syncfs(&self.dir_fd).map_err(io::Error::from)?;
        // After syncfs: on ext4 this flushes the device's write cache over everything
        // syncfs wrote (see the module docs).
        self.log.sync_data()?;
        self.dirty = false;
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
        self.put_digest(digest(bytes), bytes, ext, meta)
    }

    /// [`FileStore::put`] with the digest already computed (`sha` must be [`digest`] of
    /// `bytes`).
    pub fn put_digest(
        &mut self,
        sha: String,
        bytes: &[u8],
        ext: &str,
        meta: ObjectRecord<'_>,
    ) -> io::Result<(String, Put)> {
        let path = object_path(&self.dir, &sha, ext);
        if path.exists() {
            return Ok((sha, Put::AlreadyPresent));
        }
        if bytes.len() as u64 > self.budget {
            return Err(io::Error::other(
                "object larger than the whole files budget",
            ));
        }
        let first = usize::from(u8::from_str_radix(&sha[..2], 16).unwrap_or(0));
        if !self.made_dirs[first] {
            fs::create_dir_all(path.parent().unwrap_or(&self.dir))?;
            self.made_dirs[first] = true;
        }
        self.dirty = true;
        self.write_new(&path, bytes)?;
        let meta = ObjectRecord {
            sha256: &sha,
            size: bytes.len() as u64,
            ..meta
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other);
        if let Err(e) = json.and_then(|j| self.write_new(&path.with_extension("json"), &j)) {
            // Not listed, so not counted: it must not stay (a later put of the same content
            // would find it and skip its metadata).
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        let before = self.pending.len();
        let _ = writeln!(self.pending, "{sha} {ext} {}", bytes.len());
        self.log_len += (self.pending.len() - before) as u64;
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
            let _ = self.retire(&p.with_extension("json"));
            match self.retire(&p) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            self.used = self.used.saturating_sub(e.bytes);
            evicted += 1;
        }
        // Syncs the directories of the moved files before the new list names them gone.
        self.rewrite_log()?;
        for spare in std::mem::take(&mut self.to_empty) {
            nix::unistd::truncate(&spare, 0).map_err(io::Error::from)?;
        }
        Ok(evicted)
    }

    /// Writes `bytes` as `path` (a new name): into a spare file when there is one, else a
    /// new `.tmp` file, then renamed into place, so a reader never sees half an object.
    fn write_new(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let (tmp, mut f) = match self.spares.pop() {
            // Spares are empty already (emptied after their eviction round, or on open);
            // O_TRUNC costs nothing then and keeps a stale byte from ever surviving.
            Some(spare) => match OpenOptions::new().write(true).truncate(true).open(&spare) {
                Ok(f) => (spare, f),
                Err(_) => fresh_tmp(path)?,
            },
            None => fresh_tmp(path)?,
        };
        if let Err(e) = f.write_all(bytes) {
            drop(f);
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        drop(f);
        fs::rename(&tmp, path)
    }

    /// Takes an evicted file out of the store: emptied and kept for reuse, or unlinked
    /// when enough spares wait.
    fn retire(&mut self, path: &Path) -> io::Result<()> {
        if self.spares.len() >= MAX_SPARES {
            return fs::remove_file(path);
        }
        // Emptied only after the rename is durable (`enforce_budget`): emptied before, a
        // crash could leave the object's name on an empty file. A crash in between leaves
        // a spare with content, emptied on the next open.
        let spare = self
            .dir
            .join(SPARE_DIR)
            .join(format!("{:08}", self.next_spare));
        self.next_spare += 1;
        fs::rename(path, &spare)?;
        self.dirty = true;
        self.spares.push(spare.clone());
        self.to_empty.push(spare);
        Ok(())
    }

    /// Empty files waiting for reuse.
    pub fn spares(&self) -> usize {
        self.spares.len()
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
        self.pending.clear();
        self.write_synced_mark()
    }
}

/// A new temporary file beside `path`.
fn fresh_tmp(path: &Path) -> io::Result<(PathBuf, File)> {
    let tmp = path.with_extension("tmp");
    let f = File::create(&tmp)?;
    Ok((tmp, f))
}

/// Lists (creating) the spare directory; empties files a crash left with content and
/// unlinks those beyond [`MAX_SPARES`]. Returns them and the next free name.
fn open_spares(dir: &Path) -> io::Result<(Vec<PathBuf>, u64)> {
    fs::create_dir_all(dir)?;
    let mut spares = Vec::new();
    let mut next = 0u64;
    for e in fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let n = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok());
        let Some(n) = n else {
            let _ = fs::remove_file(&path); // not ours (a torn name cannot happen: renames)
            continue;
        };
        next = next.max(n + 1);
        if spares.len() >= MAX_SPARES {
            let _ = fs::remove_file(&path);
            continue;
        }
        if e.metadata()?.len() > 0 {
            nix::unistd::truncate(&path, 0).map_err(io::Error::from)?;
        }
        spares.push(path);
    }
    Ok((spares, next))
}

/// Deletes every file in the object subdirectories that is not a kept object (`kept`:
/// `<sha256>.<ext>`) or the metadata of one: objects a crash left unlisted or unsynced, and
/// `.tmp` files of a write a crash cut short (see the module docs). Returns which
/// subdirectories exist.
fn sweep_unlisted(dir: &Path, kept: &HashSet<String>) -> io::Result<[bool; 256]> {
    let kept_json: HashSet<&str> = kept
        .iter()
        .filter_map(|k| k.split_once('.').map(|x| x.0))
        .collect();
    let mut made = [false; 256];
    for e in fs::read_dir(dir)? {
        let e = e?;
        let Some(prefix) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(first) = u8::from_str_radix(&prefix, 16) else {
            continue; // order.log, spare/, …
        };
        if prefix.len() != 2 || prefix.bytes().any(|b| b.is_ascii_uppercase()) {
            continue;
        }
        if !e.file_type()?.is_dir() {
            continue;
        }
        made[usize::from(first)] = true;
        for f in fs::read_dir(e.path())? {
            let f = f?;
            let name = f.file_name();
            let keep = name.to_str().is_some_and(|n| {
                let full = format!("{prefix}{n}");
                match full.split_once('.') {
                    Some((sha, "json")) => kept_json.contains(sha),
                    Some(_) => kept.contains(&full),
                    None => false,
                }
            });
            if !keep && f.file_type()?.is_file() {
                fs::remove_file(f.path())?;
            }
        }
    }
    Ok(made)
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
            yara: &[],
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

    fn ino(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(p).unwrap().ino()
    }

    /// Regular files under `files/` (objects, metadata, spares), with their sizes.
    fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                let len = fs::metadata(&p).unwrap().len();
                out.push((p, len));
            }
        }
        out
    }

    fn content(i: u32, len: usize) -> Vec<u8> {
        (0..len)
            .map(|k| (i as usize * 31 + k * 7) as u8 ^ (i >> 8) as u8)
            .collect()
    }

    #[test]
    fn a_full_budget_reuses_evicted_files_instead_of_new_inodes() {
        let dir = tempfile::tempdir().unwrap();
        let budget = 10_000;
        let mut s = FileStore::open(dir.path(), budget).unwrap();
        // Large objects first, so that later smaller ones land in files that held more.
        for i in 0..9 {
            s.put(&content(i, 1000), "bin", meta()).unwrap();
        }
        assert_eq!(s.spares(), 0);
        let mut inodes = std::collections::HashSet::new();
        let mut evicted_total = 0;
        for i in 9..400u32 {
            let spare_inodes: std::collections::HashSet<u64> =
                fs::read_dir(dir.path().join("spare"))
                    .unwrap()
                    .map(|e| ino(&e.unwrap().path()))
                    .collect();
            let bytes = content(i, 300 + (i as usize * 37) % 500);
            let (sha, put) = s.put(&bytes, "bin", meta()).unwrap();
            let Put::Stored { evicted } = put else {
                panic!("distinct content must be stored")
            };
            evicted_total += evicted;
            let bin = s.path_of(&sha, "bin");
            // Byte-identical, even when written into a file that held a larger object.
            assert_eq!(fs::read(&bin).unwrap(), bytes, "object {i}");
            let json: serde_json::Value =
                serde_json::from_slice(&fs::read(bin.with_extension("json")).unwrap()).unwrap();
            assert_eq!(json["sha256"], sha.as_str());
            assert_eq!(json["size"], bytes.len() as u64);
            if spare_inodes.len() >= 2 {
                // The object and its metadata went into evicted objects' files.
                assert!(spare_inodes.contains(&ino(&bin)), "object {i}: a new inode");
                assert!(spare_inodes.contains(&ino(&bin.with_extension("json"))));
            }
            inodes.insert(ino(&bin));
            inodes.insert(ino(&bin.with_extension("json")));
            // The budget holds on disk: spares are empty, objects within the budget.
            let files = files_under(dir.path());
            let object_bytes: u64 = files
                .iter()
                .filter(|(p, _)| p.extension().is_some_and(|x| x == "bin"))
                .map(|x| x.1)
                .sum();
            assert!(object_bytes <= budget, "{object_bytes} > {budget}");
            assert_eq!(object_bytes, s.used());
            for (p, len) in &files {
                if p.parent().is_some_and(|d| d.ends_with("spare")) {
                    assert_eq!(*len, 0, "{} holds evicted bytes", p.display());
                }
            }
        }
        assert!(
            evicted_total > 300,
            "the budget must have turned over: {evicted_total}"
        );
        // 391 objects and their metadata went through at most ~30 live objects' files.
        assert!(
            inodes.len() < 100,
            "{} inodes for 391 objects",
            inodes.len()
        );

        // A crash between an eviction's rename and its emptying: the spare still has
        // content. The next open empties it and reuses it; objects survive intact.
        drop(s);
        let leftover = dir.path().join("spare").join("99999999");
        fs::write(&leftover, [7u8; 4096]).unwrap();
        let mut s = FileStore::open(dir.path(), budget).unwrap();
        assert_eq!(fs::metadata(&leftover).unwrap().len(), 0);
        let used = s.used();
        assert!(used > 0 && used <= budget);
        let (sha, _) = s.put(&content(5000, 10), "bin", meta()).unwrap();
        assert_eq!(fs::read(s.path_of(&sha, "bin")).unwrap(), content(5000, 10));
    }
}
