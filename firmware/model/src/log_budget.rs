//! Keeping append-only logs within a budget: the children's logs (`DIR/logs/*.log`) and
//! the local alert log (`DIR/alerts/alerts.jsonl`, which records its rotations itself:
//! [`rotate_if_over_with`]). One rotation for every log on `/data`.
//!
//! `kuroko run` hands each child an O_APPEND log file as stdout and stderr; a child that
//! runs for weeks (or one that complains about every packet) would fill `/data` with it.
//! The supervisor checks each log every few seconds: past [`MAX_LOG_BYTES`] the content
//! moves to `NAME.1` (replacing the previous one) and the file is cut to zero. Because the
//! child writes with O_APPEND, its next line lands at the new end: nothing to reopen, and
//! a log never takes more than twice the budget. Lines written between the copy and the
//! cut are lost (logrotate's copytruncate has the same window); the log is diagnostics,
//! the data itself never goes through it.

use std::path::{Path, PathBuf};

/// Largest size of one child log before it is rotated.
pub const MAX_LOG_BYTES: u64 = 8 << 20;

/// The one older generation of `path` (`NAME.1`).
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".1");
    path.with_file_name(name)
}

/// Rotates `path` when it holds more than `max` bytes; returns whether it did.
pub fn rotate_if_over(path: &Path, max: u64) -> std::io::Result<bool> {
    rotate_if_over_with(path, max, |_| Ok(()))
}

/// [`rotate_if_over`], calling `before_cut(bytes)` once the content is safely in `NAME.1`
/// (synced) and before the file is cut to zero: a log whose readers keep offsets into it
/// records there that `bytes` moved away. An error from it leaves the file uncut.
pub fn rotate_if_over_with(
    path: &Path,
    max: u64,
    before_cut: impl FnOnce(u64) -> std::io::Result<()>,
) -> std::io::Result<bool> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max {
        return Ok(false);
    }
    let old = rotated(path);
    std::fs::copy(path, &old)?;
    std::fs::File::open(&old)?.sync_all()?;
    before_cut(len)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(0)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_appending_writer_keeps_writing_after_the_cut_and_the_total_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("analyzer.log");
        let mut child = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let line = [b'x'; 99];
        for round in 0..50 {
            for _ in 0..10 {
                child.write_all(&line).unwrap();
                child.write_all(b"\n").unwrap();
            }
            rotate_if_over(&log, 2000).unwrap();
            let total = std::fs::metadata(&log).unwrap().len()
                + std::fs::metadata(rotated(&log))
                    .map(|m| m.len())
                    .unwrap_or(0);
            assert!(total <= 2 * 2000 + 1000, "round {round}: {total} bytes");
        }
        child.write_all(b"last\n").unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.ends_with("last\n"));
        assert!(
            !text.starts_with('\0'),
            "the cut left a hole before the next line"
        );
        assert!(!rotate_if_over(&dir.path().join("missing.log"), 1).unwrap());
    }
}
