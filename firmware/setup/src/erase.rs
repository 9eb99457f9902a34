//! Decommission: destroy a customer's data irrecoverably before the box leaves the site,
//! and say so in a certificate of erasure.
//!
//! Why: after a diagnosis the appliance travels by courier with a week of a customer's
//! traffic on its data disk. Deleting files (what `rm -rf` or a factory reset does) only
//! frees their blocks: every payload byte stays on the disk and a raw read of it shows
//! them. This module is the one erasure mechanism of the project: `kuroko decommission`,
//! the setup shell's `decommission` and the damaged-credential recovery all call it.
//!
//! How (plain, unencrypted data, NIST SP 800-88 "Clear"): every regular file under the data
//! directory (segments, session log, index, files, mails, evidence, web users and audit
//! log, logs) and the config's own files (configuration, technician credential and its
//! back-off, the consultant's recipient) is overwritten in place with zeros where it holds
//! data (holes are skipped with `SEEK_DATA`/`SEEK_HOLE`), synced, read back (sampled for
//! large files), then unlinked. When the data directory is a file system of its own, its
//! free space is then filled with zeros too: files replaced by a rename (merged index
//! segments, rewritten logs) left their older versions in freed blocks. `fstrim` then tells
//! an SSD that the blocks are free. Time is proportional to the bytes recorded plus the
//! free space (a full multi-TB ring takes as long as writing it
//! once): the fast path for such disks is crypto-erase of an encrypted data disk (see
//! `docs/SECURITY.md`), which this module reports as missing when the data is not on one.
//!
//! Never: follow a symbolic link out of the tree, erase before the certificate's directory
//! was proven writable, or erase while a capture or analyzer still writes (their locks are
//! taken first).

use serde_json::json;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Zeros written per call (and read back per call when verifying).
const CHUNK: usize = 1 << 20;
/// Bytes written to one file between two `fdatasync`s: keeps dirty page cache bounded on a
/// multi-TB segment file.
const SYNC_EVERY: u64 = 256 << 20;
/// Files up to this size are read back whole after the overwrite; larger ones are sampled
/// (one chunk every [`VERIFY_STRIDE`]), so verification costs a small fraction of the
/// overwrite on a full ring.
const VERIFY_WHOLE_MAX: u64 = 64 << 20;
const VERIFY_STRIDE: u64 = 64 << 20;
/// How long to wait for a stopped capture/analyzer to release its lock.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// The files next to the configuration that hold secrets or customer details.
/// `data.key` is the appliance's data-disk key (image rcS): erased with the config, after
/// the crypto-erase below has destroyed the disk's keyslots.
pub const CONFIG_SIDE_FILES: &[&str] = &[
    "technician.hash",
    "technician.backoff",
    "consultant.age",
    "data.key",
];

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(
        "{what} is in use by process {pid} ({lock}); stop `kuroko run` first, or pass --stop to stop it"
    )]
    Busy {
        what: &'static str,
        pid: String,
        lock: PathBuf,
    },
    #[error(
        "process {pid} still holds {lock} {secs} s after it was asked to stop; nothing was erased"
    )]
    StillBusy {
        pid: String,
        lock: PathBuf,
        secs: u64,
    },
    #[error(
        "the certificate cannot be written to {dir}: {source}; nothing was erased (mount the USB stick read-write, or pass --to DIR)"
    )]
    CertificateDir { dir: PathBuf, source: io::Error },
    #[error(
        "the certificate directory {0} is inside the data directory, which is about to be erased; pass a directory on the USB stick"
    )]
    CertificateInsideData(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path}: {nonzero} bytes still not zero after the overwrite (the disk did not keep the write); the data may still be readable"
    )]
    VerifyFailed { path: PathBuf, nonzero: u64 },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EraseError + '_ {
    move |source| EraseError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What to erase and where the certificate goes.
#[derive(Clone, Debug)]
pub struct Plan {
    pub data: PathBuf,
    /// The configuration file; it and [`CONFIG_SIDE_FILES`] beside it are erased too.
    pub config: Option<PathBuf>,
    /// The technician credential when it is not beside the config.
    pub credential: Option<PathBuf>,
    /// Where the certificate of erasure goes (the USB stick); `None` for the recovery
    /// of a damaged credential and factory reset, which write none.
    pub certificate_dir: Option<PathBuf>,
    /// Ask a running capture/analyzer (and the `kuroko run` that supervises it) to stop.
    pub stop_running: bool,
    /// Also overwrite the file system's free space (a file of zeros until the disk is
    /// full): earlier versions of files that were replaced by a rename (index segments
    /// merged away, rewritten logs) live in freed blocks no file names any more. `None`:
    /// when the data directory is a file system of its own (the appliance's `/data`).
    pub wipe_free_space: Option<bool>,
}

/// Progress of the overwrite, for a display.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Bytes and files per kind of data, for the certificate.
#[derive(Clone, Debug, Default)]
struct Tally {
    files: u64,
    bytes: u64,
}

/// What was done, as written into the certificate.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The certificate and its SHA-256, when one was asked for.
    pub certificate: Option<(PathBuf, String)>,
    pub files: u64,
    pub bytes: u64,
}

/// A file to erase and the kind of data it holds.
struct Item {
    path: PathBuf,
    class: String,
    len: u64,
}

/// The kind of data a file under the data directory holds: its top-level directory
/// (`segments`, `sessions`, `index`, `files`, `mails`, `web`, …).
fn class_of(data: &Path, path: &Path) -> String {
    path.strip_prefix(data)
        .ok()
        .and_then(|rel| {
            let mut c = rel.components();
            let first = c.next()?;
            // A file directly in the data dir is its own class.
            if c.next().is_none() {
                return Some("top".to_string());
            }
            Some(first.as_os_str().to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "other".into())
}

/// Every regular file under `dir` (symbolic links are not followed: they are removed as
/// links), depth first; directories in `dirs` (deepest last).
fn walk(dir: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) -> Result<(), EraseError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for e in rd {
        let e = e.map_err(io_err(dir))?;
        let p = e.path();
        let t = e.file_type().map_err(io_err(&p))?;
        if t.is_dir() {
            dirs.push(p.clone());
            walk(&p, files, dirs)?;
        } else if t.is_file() {
            files.push(p);
        } else {
            // Links, sockets, FIFOs: no data of their own; removed with their directory.
        }
    }
    Ok(())
}

/// Whether `lock` is held by another process; if so, the pid written in it.
fn lock_holder(lock: &Path) -> Option<String> {
    let f = File::options().read(true).write(true).open(lock).ok()?;
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(_unlocked_on_drop) => None,
        Err((_, _)) => Some(
            std::fs::read_to_string(lock)
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
    }
}

/// The process to ask to stop for a lock holder: its parent when that is the `kuroko run`
/// supervisor (it would restart a child it lost), else the holder itself.
fn process_to_stop(pid: i32) -> i32 {
    let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
        });
    if let Some(pp) = ppid.filter(|&p| p > 1) {
        let cmd = std::fs::read(format!("/proc/{pp}/cmdline")).unwrap_or_default();
        let argv: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        let is_kuroko_run = argv.first().is_some_and(|a| a.ends_with(b"kuroko"))
            && argv.get(1).is_some_and(|a| *a == b"run");
        if is_kuroko_run {
            return pp;
        }
    }
    pid
}

/// Makes sure nothing writes into `data` any more: the segment writer's and the analyzer's
/// locks must be free (after asking their holders to stop when `stop` is set).
fn quiesce(data: &Path, stop: bool) -> Result<(), EraseError> {
    for (what, lock) in [
        ("the packet store", data.join("segments").join(".lock")),
        ("the analyzer", data.join("analyzer").join("lock")),
    ] {
        let Some(pid) = lock_holder(&lock) else {
            continue;
        };
        if !stop {
            return Err(EraseError::Busy { what, pid, lock });
        }
        if let Ok(n) = pid.parse::<i32>() {
            let target = process_to_stop(n);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(target),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let start = Instant::now();
        while lock_holder(&lock).is_some() {
            if start.elapsed() > STOP_WAIT {
                return Err(EraseError::StillBusy {
                    pid,
                    lock,
                    secs: STOP_WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// The data ranges of `f` (`SEEK_DATA`/`SEEK_HOLE`); the whole file where the file system
/// cannot say.
fn data_ranges(f: &File, len: u64) -> Vec<(u64, u64)> {
    use nix::unistd::{Whence, lseek};
    let mut out = Vec::new();
    let mut off: u64 = 0;
    while off < len {
        let start = match lseek(f, off as i64, Whence::SeekData) {
            Ok(p) => p as u64,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(_) => return vec![(0, len)],
        };
        let end = match lseek(f, start as i64, Whence::SeekHole) {
            Ok(p) => (p as u64).min(len),
            Err(_) => len,
        };
        if end <= start {
            break;
        }
        out.push((start, end));
        off = end;
    }
    out
}

/// Overwrites every data byte of `path` with zeros, syncs, and reads it back (whole or
/// sampled). `on_bytes` is called with each chunk written.
fn overwrite(path: &Path, on_bytes: &mut dyn FnMut(u64)) -> Result<u64, EraseError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let ranges = data_ranges(&f, len);
    let zeros = vec![0u8; CHUNK];
    let mut since_sync = 0u64;
    let mut written = 0u64;
    for &(start, end) in &ranges {
        let mut off = start;
        while off < end {
            let n = (end - off).min(CHUNK as u64) as usize;
            f.write_all_at(&zeros[..n], off).map_err(io_err(path))?;
            off += n as u64;
            written += n as u64;
            since_sync += n as u64;
            on_bytes(n as u64);
            if since_sync >= SYNC_EVERY {
                f.sync_data().map_err(io_err(path))?;
                since_sync = 0;
            }
        }
    }
    f.sync_data().map_err(io_err(path))?;
    verify_zero(path, &f, &ranges, len)?;
    Ok(written)
}

/// Reads back what was overwritten: every byte of a small file, one chunk in every
/// [`VERIFY_STRIDE`] of a large one. The page cache holds what was just written, so this
/// checks the file system kept the writes in place; it is not a read of the platter.
fn verify_zero(path: &Path, f: &File, ranges: &[(u64, u64)], len: u64) -> Result<(), EraseError> {
    let mut buf = vec![0u8; CHUNK];
    let mut nonzero = 0u64;
    let stride = if len <= VERIFY_WHOLE_MAX {
        CHUNK as u64
    } else {
        VERIFY_STRIDE
    };
    for &(start, end) in ranges {
        let mut off = start;
        while off < end {
            let n = (end - off).min(CHUNK as u64) as usize;
            f.read_exact_at(&mut buf[..n], off).map_err(io_err(path))?;
            nonzero += buf[..n].iter().filter(|&&b| b != 0).count() as u64;
            off += stride.max(n as u64);
        }
    }
    if nonzero > 0 {
        return Err(EraseError::VerifyFailed {
            path: path.to_path_buf(),
            nonzero,
        });
    }
    Ok(())
}

/// Fills the free space of the file system holding `data` with zeros (one file, written
/// until the disk is full, synced, removed); the bytes written.
fn wipe_free_space(
    data: &Path,
    p: &mut Progress,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, EraseError> {
    let path = data.join(".kuroko-free-space-wipe");
    if let Ok(st) = nix::sys::statvfs::statvfs(data) {
        p.bytes_total += st.blocks_free() * st.fragment_size();
        progress(*p);
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let zeros = vec![0u8; CHUNK];
    let mut written = 0u64;
    let mut since_sync = 0u64;
    loop {
        match f.write(&zeros) {
            Ok(0) => break,
            Ok(n) => {
                written += n as u64;
                since_sync += n as u64;
                p.bytes_done += n as u64;
                progress(*p);
                if since_sync >= SYNC_EVERY {
                    // ENOSPC can also surface here, once the last blocks are allocated.
                    if f.sync_data().is_err() {
                        break;
                    }
                    since_sync = 0;
                }
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(io_err(&path)(e));
            }
        }
    }
    let _ = f.sync_data();
    drop(f);
    std::fs::remove_file(&path).map_err(io_err(&path))?;
    Ok(written)
}

/// Whether `dir` is the root of a file system (its parent is on another device).
fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.join("..");
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev() || a.ino() == b.ino(),
        _ => false,
    }
}

/// Proves `dir` takes a file (create, write, sync, remove) before anything is erased.
fn check_writable(dir: &Path) -> Result<(), EraseError> {
    let probe = dir.join(".kuroko-erasure-probe");
    let r = (|| -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = File::create(&probe)?;
        f.write_all(b"probe")?;
        f.sync_all()?;
        std::fs::remove_file(&probe)
    })();
    r.map_err(|source| EraseError::CertificateDir {
        dir: dir.to_path_buf(),
        source,
    })
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `s` with only letters, digits, `-` and `_` (a file name from the host name).
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// The board's serial number where the firmware exposes it (DMI), for the certificate.
fn board_serial() -> Option<String> {
    let s = std::fs::read_to_string("/sys/class/dmi/id/product_serial").ok()?;
    let s = kuroko_board::sysfs_text::clean(&s);
    (!s.is_empty()).then_some(s)
}

/// The files of the plan, classified, with their sizes.
fn inventory(plan: &Plan) -> Result<(Vec<Item>, Vec<PathBuf>), EraseError> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    walk(&plan.data, &mut files, &mut dirs)?;
    // The configuration goes first: once it is gone the appliance's supervisor
    // (`kuroko-run`, respawned by init) has no capture to start, so nothing begins writing
    // into the data while it is erased (`kuroko run` stopped by `--stop` is restarted by it
    // 5 s later while a config names capture interfaces).
    let mut items = Vec::new();
    let mut config_files = Vec::new();
    if let Some(c) = &plan.config {
        config_files.push(c.clone());
        if let Some(dir) = c.parent() {
            config_files.extend(CONFIG_SIDE_FILES.iter().map(|n| dir.join(n)));
        }
    }
    if let Some(c) = &plan.credential {
        config_files.push(c.clone());
        config_files.push(crate::backoff::path_for(c));
    }
    config_files.sort();
    config_files.dedup();
    for p in config_files {
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            items.push(Item {
                path: p,
                class: "config".into(),
                len: 0,
            });
        }
    }
    items.extend(files.into_iter().map(|p| Item {
        class: class_of(&plan.data, &p),
        len: 0,
        path: p,
    }));
    for it in &mut items {
        it.len = std::fs::symlink_metadata(&it.path)
            .map_err(io_err(&it.path))?
            .len();
    }
    Ok((items, dirs))
}

/// Erases everything the plan names and writes the certificate. `progress` is called
/// often (after every chunk); the caller decides how often to draw.
pub fn decommission(
    plan: &Plan,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, EraseError> {
    let started = kuroko_model::Timestamp::now();
    if let Some(cert_dir) = &plan.certificate_dir {
        // Created by the check, so both paths resolve (links, `..`) before they are compared.
        check_writable(cert_dir)?;
        let data_abs = std::fs::canonicalize(&plan.data).unwrap_or_else(|_| plan.data.clone());
        let cert_abs = std::fs::canonicalize(cert_dir).unwrap_or_else(|_| cert_dir.clone());
        if cert_abs.starts_with(&data_abs) {
            return Err(EraseError::CertificateInsideData(cert_dir.clone()));
        }
    }
    quiesce(&plan.data, plan.stop_running)?;
    let encrypted = crate::crypt::data_device(&plan.data);

    let (items, mut dirs) = inventory(plan)?;
    let mut p = Progress {
        files_total: items.len() as u64,
        bytes_total: items.iter().map(|i| i.len).sum(),
        ..Progress::default()
    };
    progress(p);
    let mut tally: std::collections::BTreeMap<String, Tally> = Default::default();
    for it in &items {
        let written = overwrite(&it.path, &mut |n| {
            p.bytes_done += n;
            progress(p);
        })?;
        std::fs::remove_file(&it.path).map_err(io_err(&it.path))?;
        let t = tally.entry(it.class.clone()).or_default();
        t.files += 1;
        t.bytes += written;
        p.files_done += 1;
        progress(p);
    }
    // Directories (deepest first), then what is left (links, FIFOs) with them.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    // e2fsck's own directory at the root of a file system stays (emptied).
    let lost_found = plan.data.join("lost+found");
    for d in dirs.iter().filter(|d| **d != lost_found) {
        if let Err(e) = std::fs::remove_dir_all(d)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(io_err(d)(e));
        }
    }
    if let Ok(rd) = std::fs::read_dir(&plan.data) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    // Tell an SSD the blocks are free (best effort: not every file system or disk can).
    // Only when the data directory is a file system of its own (the appliance's `/data`):
    // trimming a shared root file system is not this command's business.
    let trim = is_mount_point(&plan.data)
        && std::process::Command::new("fstrim")
            .arg(&plan.data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    // On an encrypted data disk the keyslots go: every sector, the freed blocks of replaced
    // files included, is then ciphertext under a key that exists nowhere.
    let crypto = encrypted.as_ref().map(crate::crypt::crypto_erase);
    let crypto_done = matches!(crypto, Some(Ok(_)));
    let wiped_free = if plan
        .wipe_free_space
        .unwrap_or_else(|| is_mount_point(&plan.data) && !crypto_done)
    {
        Some(wipe_free_space(&plan.data, &mut p, progress)?)
    } else {
        None
    };
    let finished = kuroko_model::Timestamp::now();

    let erased: serde_json::Map<String, serde_json::Value> = tally
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                json!({"files": t.files, "bytes_overwritten": t.bytes}),
            )
        })
        .collect();
    let files: u64 = tally.values().map(|t| t.files).sum();
    let bytes: u64 = tally.values().map(|t| t.bytes).sum();
    let Some(cert_dir) = &plan.certificate_dir else {
        return Ok(Outcome {
            certificate: None,
            files,
            bytes,
        });
    };
    let body = json!({
        "certificate": "kuroko certificate of erasure, version 1",
        "host": hostname(),
        "board_serial": board_serial(),
        "kuroko_version": env!("CARGO_PKG_VERSION"),
        "started": started.to_rfc3339(),
        "finished": finished.to_rfc3339(),
        "data_dir": plan.data.display().to_string(),
        "config": plan.config.as_ref().map(|c| c.display().to_string()),
        "method": if crypto_done { "overwrite and crypto-erase" } else { "overwrite" },
        "method_detail": "every data byte of every file overwritten once with zeros (holes skipped), fdatasync, read back (whole up to 64 MiB, one MiB in every 64 MiB above), then unlinked; NIST SP 800-88 Rev. 1 Clear",
        "crypto_erase": match &crypto {
            Some(Ok(done)) => done.clone(),
            Some(Err(why)) => format!("FAILED: {why}"),
            None => "not possible: the data directory is not on an encrypted disk".into(),
        },
        "free_space_overwritten": match wiped_free {
            Some(b) => json!(b),
            None if crypto_done => json!("no: not needed after the crypto-erase (freed blocks are ciphertext under the destroyed key)"),
            None => json!("no: the data directory is not a file system of its own (freed blocks of replaced files were not overwritten)"),
        },
        "discard": if trim { "fstrim done" } else { "no fstrim (not a file system of its own, or the disk refused it); the blocks were overwritten" },
        "erased": erased,
        "files": files,
        "bytes_overwritten": bytes,
        "verified": "every overwritten file read back as zeros",
    });
    let text = serde_json::to_string_pretty(&body).unwrap_or_default() + "\n";
    let sha = hex::encode(Sha256::digest(text.as_bytes()));
    let stamp = finished.to_rfc3339().replace([':', '.'], "-");
    let name = format!("kuroko-erasure-{}-{stamp}.json", file_safe(&hostname()));
    let path = cert_dir.join(&name);
    let write = (|| -> io::Result<()> {
        let mut f = File::create(&path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        let mut s = File::create(cert_dir.join(format!("{name}.sha256")))?;
        // `sha256sum -c` reads this.
        s.write_all(format!("{sha}  {name}\n").as_bytes())?;
        s.sync_all()?;
        File::open(cert_dir)?.sync_all()
    })();
    write.map_err(io_err(&path))?;
    Ok(Outcome {
        certificate: Some((path, sha)),
        files,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_zeroed_and_removed_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let outside = tmp.path().join("outside.txt");
        std::fs::write(&outside, b"keep me").unwrap();
        std::fs::create_dir_all(data.join("sessions/2026")).unwrap();
        std::fs::write(data.join("sessions/2026/a.jsonl"), vec![7u8; 3 << 20]).unwrap();
        std::fs::write(data.join("top.txt"), b"secret").unwrap();
        std::os::unix::fs::symlink(&outside, data.join("sessions/link")).unwrap();
        // A sparse file: only its data is written.
        let sparse = File::create(data.join("sparse.kseg")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        sparse.write_all_at(b"payload", 512 << 20).unwrap();
        drop(sparse);
        let cert = tmp.path().join("stick");
        let plan = Plan {
            data: data.clone(),
            config: None,
            credential: None,
            certificate_dir: Some(cert.clone()),
            stop_running: false,
            wipe_free_space: Some(false),
        };
        let mut last = Progress::default();
        let o = decommission(&plan, &mut |p| last = p).unwrap();
        assert_eq!(o.files, 3);
        assert!(o.bytes < 8 << 20, "holes were written: {}", o.bytes);
        assert_eq!(last.files_done, 3);
        assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
        let (path, sha) = o.certificate.unwrap();
        let text = std::fs::read(&path).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&text)), sha);
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["erased"]["sessions"]["files"], 1);
        assert_eq!(v["erased"]["top"]["files"], 2);
    }

    /// The config is erased before any data file: with it gone, the appliance's supervisor
    /// cannot restart capture into the data being erased (it did after 5 s, before).
    #[test]
    fn the_configuration_is_erased_before_the_data() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("segments")).unwrap();
        std::fs::write(data.join("segments/0.kseg"), vec![1u8; 1 << 20]).unwrap();
        std::fs::write(data.join("a"), b"secret").unwrap();
        let config = tmp.path().join("kuroko.toml");
        std::fs::write(&config, b"[capture]\ninterfaces = [\"eth1\"]\n").unwrap();
        std::fs::write(tmp.path().join("data.key"), [9u8; 64]).unwrap();
        let plan = Plan {
            data: data.clone(),
            config: Some(config.clone()),
            credential: None,
            certificate_dir: None,
            stop_running: false,
            wipe_free_space: Some(false),
        };
        let mut config_left_while_data_erased = false;
        let o = decommission(&plan, &mut |p| {
            // Past the config files' bytes, data is being overwritten.
            if p.bytes_done > 200 && config.exists() {
                config_left_while_data_erased = true;
            }
        })
        .unwrap();
        assert_eq!(o.files, 4);
        assert!(!config_left_while_data_erased);
        assert!(!config.exists() && !tmp.path().join("data.key").exists());
    }

    #[test]
    fn an_unwritable_certificate_place_stops_before_anything_is_erased() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("x"), b"secret").unwrap();
        let not_a_dir = tmp.path().join("file");
        std::fs::write(&not_a_dir, b"").unwrap();
        for cert in [not_a_dir.join("sub"), data.join("inside")] {
            let plan = Plan {
                data: data.clone(),
                config: None,
                credential: None,
                certificate_dir: Some(cert),
                stop_running: false,
                wipe_free_space: Some(false),
            };
            assert!(decommission(&plan, &mut |_| {}).is_err());
            assert_eq!(std::fs::read(data.join("x")).unwrap(), b"secret");
        }
    }
}
