//! The reconstruction store `DATA/files/`: objects carried by HTTP, FTP and mail, stored
//! content-addressed by SHA-256. This is its only writer; readers use
//! [`kuroko_model::objects::Objects`], which also documents the layout: `files/ab/cdef….bin`
//! (whole mails: `.eml`), one metadata record per object in the append-only
//! `files/objects.log` (checksummed lines, insertion order) and its durable length in
//! `files/objects.synced`.
//!
//! Cost per new object: its bytes file and nothing else on the write path. The file is
//! created under its final name (`O_CREAT|O_EXCL`, or a spare renamed to it with
//! `RENAME_NOREPLACE`; either fails when the content is already stored, which is the
//! deduplication test), written and closed: 3–4 system calls. The metadata record is
//! appended to an in-memory buffer and written with the others at the next sync. (Before:
//! a `.json` file beside each object and a tmp + rename for both, ≈ 13 calls per object.)
//! Measured with `cargo xtask bench analyze --files-gb 0.3 --files-baseline OLD` (9383
//! objects, load average ≈ 20 on the shared 2-core VM, one run): 1.86 CPU-s (0.75 sys)
//! against the per-object `.json` build's 2.17 (1.07 sys) on the same input, tshark 19.44:
//! 10.5× tshark instead of 9.0×. Packing small objects into append files was not measured.
//! Writing under the final name is safe because nothing names an object before the sync
//! that makes it durable: the session records that carry its digest are published after
//! that sync, and a crash before it deletes the object on the next start (below). The one
//! exception: an object evicted and carried again later is rewritten under its old name,
//! where a reader of an older session may see it short until its write completes.
//!
//! Budget: `[storage] files_budget`. When the total exceeds the budget the oldest objects
//! are deleted first (down to 90 %) and the log is rewritten without their records (tmp +
//! rename; they are its first lines). Evicted objects are not unlinked: their files are
//! emptied (truncated to 0, so the budget holds on disk) and moved to `files/spare/`, and
//! the next objects are written into them. On an ext4 without a journal (this project's
//! dev VM and any such data disk), every new inode is allocated by scanning past each inode
//! of its group deleted in the last 60 s (360 s while its inode-table block is dirty: ext4
//! `find_inode_bit` → `recently_deleted`); with the budget full, the analyzer deleted and
//! created ~3000 inodes per GB of traffic and a fifth of its CPU went into that scan.
//! Reusing the inodes keeps the churn at zero once the budget is full. At most
//! [`MAX_SPARES`] empty files wait; beyond that, evicted files are unlinked.
//!
//! Durability without an fsync per object: [`FileStore::sync`] (called by the driver right
//! before each checkpoint, and before each rewrite of the log) appends the pending records,
//! makes everything durable in one `syncfs(2)` of the files directory's file system
//! (objects, log, renames, spares), then records the synced length of `objects.log` in
//! `objects.synced`. One syncfs instead of an open + fdatasync per object and an fsync per
//! directory: each fdatasync wrote its inode's table block on its own and, on ext4, flushed
//! the disk's write cache, thousands of times per checkpoint. syncfs does not flush the
//! cache after the metadata it writes last on an ext4 without a journal, so the log's
//! fdatasync follows it (ext4 flushes the device on every fsync; the flush covers all
//! completed writes) before the mark names anything durable.
//!
//! On start, exactly the objects whose records lie before the synced length are kept (the
//! same exactly-once rule as the session log: the replay from the checkpoint stores the
//! others again). Records past it, and a torn last line, are dropped and their objects
//! deleted; a record before it whose checksum fails is damage. Both are counted
//! ([`Opened`]; the analyzer's `files_log_torn` and `files_log_damaged` counters). Any
//! object file not listed (a crash after its write, before its record was synced; a
//! `.tmp` of the older layout; the older layout's `.json` metadata) is deleted. So the
//! files on disk are exactly the objects the log lists, and a replay never takes a torn
//! leftover for a stored object (a put finds its name free).
//!
//! An older data directory (per-object `.json`, `order.log`) is migrated once on start:
//! its synced objects keep their bytes files, their metadata goes into `objects.log`, the
//! `.json` files and `order.log` are deleted, and [`Opened::migrated`] says how many.

use kuroko_model::objects::{
    self as layout, LEGACY_LOG, LEGACY_SYNCED, LOG, ObjectMeta, SYNCED, decode_line, encode_line,
    object_path,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Emptied files of evicted objects, reused for new ones (see the module docs).
const SPARE_DIR: &str = "spare";
/// Empty files kept for reuse at most (each is an inode and nothing else).
pub const MAX_SPARES: usize = 8192;

/// The metadata record written for each object (borrowed form of
/// [`kuroko_model::objects::ObjectMeta`]; `sha256`, `ext` and `size` are filled by the
/// store).
#[derive(Serialize, Debug, Clone)]
pub struct ObjectRecord<'a> {
    pub sha256: &'a str,
    pub ext: &'a str,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<&'a str>,
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
    /// Offset of its record in `objects.log`.
    offset: u64,
}

/// What opening the store found (see the module docs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Objects kept.
    pub objects: u64,
    /// Records past the synced length or cut short (a crash before the sync): dropped.
    pub torn: u64,
    /// Records before the synced length whose checksum or content is wrong: dropped.
    pub damaged: u64,
    /// Objects taken over from the older per-object `.json` layout on this start.
    pub migrated: Option<u64>,
}

/// The store. Not shared between processes: the analyzer is its only writer.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    budget: u64,
    used: u64,
    order: VecDeque<Entry>,
    log: File,
    /// Bytes of `objects.log` written so far (including `pending`).
    log_len: u64,
    /// Records of objects stored since the last sync, appended by the sync.
    pending: Vec<u8>,
    /// Scratch buffer for one record's JSON.
    json: Vec<u8>,
    /// The files directory, kept open for `syncfs` (its writeback errors are reported to
    /// file descriptors opened before them).
    dir_fd: File,
    /// Object subdirectories (`ab/`) known to exist, by their first digest byte.
    made_dirs: [bool; 256],
    /// Something changed since the last sync (objects, renames to and from `spare/`).
    dirty: bool,
    /// Empty files in `spare/`, to be renamed into place and written.
    spares: Vec<PathBuf>,
    /// Name of the next file moved to `spare/`.
    next_spare: u64,
    /// Spares retired in this eviction round, emptied once the round's renames are durable.
    to_empty: Vec<PathBuf>,
    opened: Opened,
}

/// Outcome of a `put`.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    Stored { evicted: u64 },
    AlreadyPresent,
}

/// The synced length recorded in `name`, 0 when absent or unreadable.
fn synced_len(dir: &Path, name: &str) -> u64 {
    fs::read_to_string(dir.join(name))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn read_or_empty(path: &Path) -> io::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Records of the older layout's `order.log` (synced part only) with their `.json`
/// metadata; objects whose `.json` is gone get what the list says.
fn legacy_records(dir: &Path) -> io::Result<Vec<ObjectMeta>> {
    let synced = synced_len(dir, LEGACY_SYNCED);
    let text = read_or_empty(&dir.join(LEGACY_LOG))?;
    let mut out = Vec::new();
    for (start, line) in layout::lines(&text) {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if start >= synced || !line.ends_with('\n') {
            continue; // not durable: the replay stores it again
        }
        let mut it = line.trim_end().split(' ');
        let (Some(sha), Some(ext), Some(bytes)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Ok(bytes) = bytes.parse::<u64>() else {
            continue;
        };
        if !layout::is_sha256(sha) || !layout::EXTENSIONS.contains(&ext) {
            continue;
        }
        let path = object_path(dir, sha, ext);
        let json = fs::read(object_path(dir, sha, "json")).unwrap_or_default();
        let mut meta = layout::legacy_meta(&json, sha, Some(&path)).unwrap_or_default();
        meta.sha256 = sha.to_string();
        meta.ext = ext.to_string();
        meta.size = bytes;
        out.push(meta);
    }
    Ok(out)
}

impl FileStore {
    /// Opens (creating) `dir` with a byte budget.
    pub fn open(dir: &Path, budget: u64) -> io::Result<FileStore> {
        fs::create_dir_all(dir)?;
        let mut opened = Opened::default();
        let log_path = dir.join(LOG);
        // Records to keep, as log lines, in order.
        let mut kept_lines: Vec<(ObjectMeta, Vec<u8>)> = Vec::new();
        if !log_path.exists() && dir.join(LEGACY_LOG).exists() {
            let records = legacy_records(dir)?;
            opened.migrated = Some(records.len() as u64);
            for meta in records {
                let mut line = Vec::new();
                encode_line(
                    &serde_json::to_vec(&meta).map_err(io::Error::other)?,
                    &mut line,
                );
                kept_lines.push((meta, line));
            }
        } else {
            let synced = synced_len(dir, SYNCED);
            let text = read_or_empty(&log_path)?;
            for (start, line) in layout::lines(&text) {
                match decode_line(line) {
                    Ok(meta) if start < synced => kept_lines.push((meta, line.to_vec())),
                    Ok(meta) => {
                        // Written after the last sync: may be torn; the replay stores it
                        // again.
                        opened.torn += 1;
                        let _ = fs::remove_file(object_path(dir, &meta.sha256, &meta.ext));
                    }
                    Err(_) if start >= synced => opened.torn += 1,
                    // Its object, unlisted now, goes in the sweep below.
                    Err(_) => opened.damaged += 1,
                }
            }
        }
        let mut order = VecDeque::new();
        let mut used = 0;
        let mut kept: HashSet<String> = HashSet::new();
        let mut new_log = Vec::new();
        for (meta, line) in kept_lines {
            let name = format!("{}.{}", meta.sha256, meta.ext);
            if kept.contains(&name) || !object_path(dir, &meta.sha256, &meta.ext).is_file() {
                continue; // listed twice, or deleted by a crash mid-eviction
            }
            kept.insert(name);
            used += meta.size;
            order.push_back(Entry {
                sha: meta.sha256,
                ext: meta.ext,
                bytes: meta.size,
                offset: new_log.len() as u64,
            });
            new_log.extend_from_slice(&line);
        }
        opened.objects = order.len() as u64;
        let (spares, next_spare) = open_spares(&dir.join(SPARE_DIR))?;
        let made_dirs = sweep_unlisted(dir, &kept)?;
        // Start from a clean, synced log holding exactly the objects we keep.
        write_durably(dir, LOG, &new_log)?;
        let log = OpenOptions::new().append(true).open(&log_path)?;
        let dir_fd = File::open(dir)?;
        let store = FileStore {
            dir: dir.to_path_buf(),
            budget,
            used,
            order,
            log,
            log_len: new_log.len() as u64,
            pending: Vec::new(),
            json: Vec::new(),
            dir_fd,
            made_dirs,
            dirty: false,
            spares,
            next_spare,
            to_empty: Vec::new(),
            opened,
        };
        store.write_synced_mark()?;
        if let Some(n) = store.opened.migrated {
            // Only now that the new log and its mark are durable.
            let _ = fs::remove_file(dir.join(LEGACY_LOG));
            let _ = fs::remove_file(dir.join(LEGACY_SYNCED));
            eprintln!(
                "kuroko: {}: migrated {n} reconstructed objects from the per-object .json layout \
                 to {LOG} (once; older Kuroko versions cannot read this directory's metadata)",
                dir.display()
            );
        }
        Ok(store)
    }

    /// What the last open found.
    pub fn opened(&self) -> &Opened {
        &self.opened
    }

    /// Makes every object stored so far durable (see the module docs).
    pub fn sync(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if !self.pending.is_empty() {
            self.log.write_all(&self.pending)?;
            self.pending.clear();
        }
        // Objects, the log and every rename (a name moved to or from `spare/` must not
        // survive a crash beside its new name: a reused inode would then show through an
        // evicted object's old name), all in one call.
        nix::unistd::syncfs(&self.dir_fd).map_err(io::Error::from)?;
        // After syncfs: on ext4 this flushes the device's write cache over everything
        // syncfs wrote (see the module docs).
        self.log.sync_data()?;
        self.dirty = false;
        self.write_synced_mark()
    }

    fn write_synced_mark(&self) -> io::Result<()> {
        write_durably(&self.dir, SYNCED, self.log_len.to_string().as_bytes())
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
        if !layout::is_sha256(&sha) || !layout::EXTENSIONS.contains(&ext) {
            return Err(io::Error::other(
                "not a SHA-256 digest and a known extension",
            ));
        }
        let path = object_path(&self.dir, &sha, ext);
        let first = usize::from(u8::from_str_radix(&sha[..2], 16).unwrap_or(0));
        if !self.made_dirs[first] {
            fs::create_dir_all(path.parent().unwrap_or(&self.dir))?;
            self.made_dirs[first] = true;
        }
        if bytes.len() as u64 > self.budget {
            return if path.exists() {
                Ok((sha, Put::AlreadyPresent))
            } else {
                Err(io::Error::other(
                    "object larger than the whole files budget",
                ))
            };
        }
        let meta = ObjectRecord {
            sha256: &sha,
            ext,
            size: bytes.len() as u64,
            ..meta
        };
        self.json.clear();
        serde_json::to_writer(&mut self.json, &meta).map_err(io::Error::other)?;
        if !self.write_new(&path, bytes)? {
            return Ok((sha, Put::AlreadyPresent));
        }
        self.dirty = true;
        let before = self.pending.len();
        encode_line(&self.json, &mut self.pending);
        let offset = self.log_len;
        self.log_len += (self.pending.len() - before) as u64;
        self.used += bytes.len() as u64;
        self.order.push_back(Entry {
            sha: sha.clone(),
            ext: ext.to_string(),
            bytes: bytes.len() as u64,
            offset,
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
            match self.retire(&p) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            self.used = self.used.saturating_sub(e.bytes);
            evicted += 1;
        }
        // Syncs the directories of the moved files before the new log names them gone.
        self.rewrite_log()?;
        for spare in std::mem::take(&mut self.to_empty) {
            nix::unistd::truncate(&spare, 0).map_err(io::Error::from)?;
        }
        Ok(evicted)
    }

    /// Writes `bytes` as `path`, a new name: into a spare file renamed to it when there is
    /// one, else a new file. `false` when `path` exists already (the content is stored).
    fn write_new(&mut self, path: &Path, bytes: &[u8]) -> io::Result<bool> {
        let mut f = loop {
            let Some(spare) = self.spares.pop() else {
                match OpenOptions::new().write(true).create_new(true).open(path) {
                    Ok(f) => break f,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                    Err(e) => return Err(e),
                }
            };
            match crate::sys::rename_noreplace(&spare, path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    self.spares.push(spare);
                    return Ok(false);
                }
                Err(_) => continue, // a spare gone missing: try the next, or a new file
            }
            // Spares are empty already (emptied after their eviction round, or on open);
            // O_TRUNC costs nothing then and keeps a stale byte from ever surviving.
            match OpenOptions::new().write(true).truncate(true).open(path) {
                Ok(f) => break f,
                Err(e) => {
                    let _ = fs::remove_file(path);
                    return Err(e);
                }
            }
        };
        if let Err(e) = f.write_all(bytes) {
            drop(f);
            // Not listed, so not counted: it must not stay (a later put of the same content
            // would take it for stored).
            let _ = fs::remove_file(path);
            return Err(e);
        }
        Ok(true)
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

    /// Rewrites `objects.log` without the records of evicted objects (its first lines).
    fn rewrite_log(&mut self) -> io::Result<()> {
        // Objects listed must be durable before the log that names them is; after this the
        // whole log is on disk (nothing pending).
        self.sync()?;
        let cut = self.order.front().map_or(self.log_len, |e| e.offset);
        let old = fs::read(self.dir.join(LOG))?;
        let rest = old.get(cut as usize..).unwrap_or_default();
        write_durably(&self.dir, LOG, rest)?;
        self.log = OpenOptions::new().append(true).open(self.dir.join(LOG))?;
        self.log_len = rest.len() as u64;
        for e in &mut self.order {
            e.offset -= cut;
        }
        self.write_synced_mark()
    }
}

/// Replaces `dir/name` with `bytes`: tmp, fsync, rename, fsync of the directory.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
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
/// `<sha256>.<ext>`): objects a crash left unlisted or unsynced, `.tmp` files and `.json`
/// metadata of the older layout (see the module docs). Returns which subdirectories exist.
fn sweep_unlisted(dir: &Path, kept: &HashSet<String>) -> io::Result<[bool; 256]> {
    let mut made = [false; 256];
    for e in fs::read_dir(dir)? {
        let e = e?;
        let Some(prefix) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Ok(first) = u8::from_str_radix(&prefix, 16) else {
            continue; // objects.log, spare/, …
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
            let keep = name
                .to_str()
                .is_some_and(|n| kept.contains(&format!("{prefix}{n}")));
            if !keep && f.file_type()?.is_file() {
                fs::remove_file(f.path())?;
            }
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ObjectRecord<'static> {
        ObjectRecord {
            sha256: "",
            ext: "",
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
        assert!(
            !p1.with_extension("json").exists(),
            "no file beside the object"
        );
        s.sync().unwrap();
        let m = kuroko_model::objects::Objects::at(dir.path())
            .meta(&sha1)
            .unwrap();
        assert_eq!(
            (m.size, m.name.as_deref(), m.ext.as_str()),
            (100, Some("a.txt"), "bin")
        );
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
            if !spare_inodes.is_empty() {
                // The object went into an evicted object's file.
                assert!(spare_inodes.contains(&ino(&bin)), "object {i}: a new inode");
            }
            inodes.insert(ino(&bin));
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
        // 391 objects went through at most ~30 live objects' files.
        assert!(inodes.len() < 50, "{} inodes for 391 objects", inodes.len());

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

    #[test]
    fn a_torn_or_damaged_log_is_counted_and_never_lists_a_torn_object() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), 1 << 20).unwrap();
        let (x, _) = s.put(&content(1, 500), "bin", meta()).unwrap();
        let (y, _) = s.put(&content(2, 500), "bin", meta()).unwrap();
        s.sync().unwrap();
        let mark = fs::read(dir.path().join(SYNCED)).unwrap();
        let (z, _) = s.put(&content(3, 500), "bin", meta()).unwrap();
        let (w, _) = s.put(&content(4, 500), "eml", meta()).unwrap();
        s.sync().unwrap();
        drop(s);
        // A power cut in the second sync: the log reached the disk, one record of it cut
        // short, the mark did not; z's object torn. And one bit of y's record flipped.
        fs::write(dir.path().join(SYNCED), &mark).unwrap();
        let log_path = dir.path().join(LOG);
        let mut log = fs::read(&log_path).unwrap();
        log.truncate(log.len() - 40);
        let y_at = log.windows(64).position(|w| w == y.as_bytes()).unwrap();
        log[y_at + 70] ^= 0x04;
        fs::write(&log_path, &log).unwrap();
        let zp = object_path(dir.path(), &z, "bin");
        fs::write(&zp, &content(3, 500)[..100]).unwrap();

        let s = FileStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            s.opened(),
            &Opened {
                objects: 1,
                torn: 2,
                damaged: 1,
                migrated: None
            }
        );
        assert_eq!(s.used(), 500);
        assert!(object_path(dir.path(), &x, "bin").exists());
        for (gone, ext) in [(&y, "bin"), (&z, "bin"), (&w, "eml")] {
            assert!(!object_path(dir.path(), gone, ext).exists(), "{gone} kept");
        }
        // The log holds exactly the kept record, synced.
        let log = fs::read(&log_path).unwrap();
        let recs: Vec<_> = kuroko_model::objects::lines(&log)
            .map(|(_, l)| decode_line(l).unwrap().sha256)
            .collect();
        assert_eq!(recs, vec![x.clone()]);
        assert_eq!(synced_len(dir.path(), SYNCED), log.len() as u64);
        drop(s);
        // A replay stores the dropped ones again.
        let mut s = FileStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.opened().torn + s.opened().damaged, 0);
        assert_eq!(
            s.put(&content(3, 500), "bin", meta()).unwrap().1,
            Put::Stored { evicted: 0 }
        );
        assert_eq!(fs::read(&zp).unwrap(), content(3, 500));
    }

    #[test]
    fn an_older_per_object_json_store_is_migrated_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // The older layout: objects, a pretty `.json` beside each, `order.log` with one
        // line past its synced length (a crash before the sync).
        let mut order = String::new();
        let mut shas = Vec::new();
        for i in 0..3u32 {
            let bytes = content(10 + i, 300);
            let sha = digest(&bytes);
            let ext = if i == 1 { "eml" } else { "bin" };
            let p = object_path(d, &sha, ext);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, &bytes).unwrap();
            let json = format!(
                "{{\n  \"sha256\": \"{sha}\",\n  \"name\": \"f{i}\",\n  \"content_type\": null,\n  \"size\": 300,\n  \"direction\": \"download\",\n  \"session\": \"s{i}\",\n  \"kind\": \"http-body\",\n  \"partial\": false\n}}"
            );
            fs::write(p.with_extension("json"), json).unwrap();
            if i == 2 {
                fs::write(d.join(LEGACY_SYNCED), order.len().to_string()).unwrap();
            }
            order.push_str(&format!("{sha} {ext} 300\n"));
            shas.push((sha, ext));
        }
        fs::write(d.join(LEGACY_LOG), &order).unwrap();

        let mut s = FileStore::open(d, 1 << 20).unwrap();
        assert_eq!(s.opened().migrated, Some(2));
        assert_eq!(s.used(), 600);
        assert!(!d.join(LEGACY_LOG).exists() && !d.join(LEGACY_SYNCED).exists());
        let o = kuroko_model::objects::Objects::at(d);
        for (i, (sha, ext)) in shas.iter().enumerate() {
            let json = object_path(d, sha, "json");
            assert!(!json.exists(), "{} left", json.display());
            if i == 2 {
                assert!(
                    o.path(sha).is_none(),
                    "an unsynced object is not taken over"
                );
                continue;
            }
            let m = o.meta(sha).unwrap();
            assert_eq!(m.ext, *ext);
            assert_eq!(m.name.as_deref(), Some(format!("f{i}").as_str()));
            assert_eq!(m.session, format!("s{i}"));
            assert_eq!(
                o.read(sha, 1000).unwrap(),
                Some(content(10 + i as u32, 300))
            );
        }
        assert_eq!(
            s.put(&content(10, 300), "bin", meta()).unwrap().1,
            Put::AlreadyPresent
        );
        drop(s);
        let s = FileStore::open(d, 1 << 20).unwrap();
        assert_eq!(s.opened().migrated, None, "once");
        assert_eq!(s.opened().objects, 2);
    }
}
