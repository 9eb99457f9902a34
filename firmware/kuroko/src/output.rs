//! The one way a command writes a file the user named (`pcap -w OUT`, `report --out FILE`,
//! `report --pdf FILE`).
//!
//! What the user named decides how it is written:
//! - `-`: standard output.
//! - a symbolic link: followed to its target (relative links resolve against the link's
//!   directory, chains are followed), and the target is treated by its kind below; the link
//!   itself is never replaced.
//! - a device, a FIFO or a socket (`/dev/null`, `/dev/full`, `mkfifo` into Wireshark):
//!   written through as it is. Renaming a temp file over it would have replaced
//!   `/dev/full` with a regular file.
//! - a regular file or a name that does not exist yet: written to a hidden temp file
//!   beside it, flushed to disk, then renamed over it (readers see the old file or the
//!   whole new one, never half of one). An existing file's permission bits are kept. A
//!   failed or abandoned write removes the temp file and leaves the old file as it was.
//!
//! Every write error, including the last flush (ENOSPC on `/dev/full` shows only there),
//! comes back as an error that names the file: a command never exits 0 on a short file.

use anyhow::{Context, bail};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Most symbolic links followed before the name is refused (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// An output being written; [`Output::finish`] completes it.
pub struct Output {
    /// What the user typed, for messages.
    shown: PathBuf,
    kind: Kind,
}

enum Kind {
    Stdout(io::BufWriter<io::StdoutLock<'static>>),
    /// A device, FIFO or socket, written in place.
    Through(io::BufWriter<File>),
    /// A regular file: `tmp` renamed to `target` by `finish`.
    Replace {
        file: Option<io::BufWriter<File>>,
        tmp: PathBuf,
        target: PathBuf,
    },
}

/// Follows `path` through symbolic links to the name that will really be written.
fn resolve(path: &Path) -> anyhow::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p)
                    .with_context(|| format!("cannot read the symbolic link {}", p.display()))?;
                p = match p.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(p),
        }
    }
    bail!(
        "{}: more than {MAX_SYMLINKS} symbolic links in a row (a loop?); name the file itself",
        path.display()
    )
}

impl Output {
    /// Opens `path` (or `-`) for writing, as the module doc says.
    pub fn create(path: &Path) -> anyhow::Result<Output> {
        let shown = path.to_path_buf();
        if path.as_os_str() == "-" {
            let out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
            return Ok(Output {
                shown,
                kind: Kind::Stdout(out),
            });
        }
        let target = resolve(path)?;
        let existing = match std::fs::metadata(&target) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot look at {}", target.display()));
            }
        };
        if let Some(m) = &existing {
            let ft = m.file_type();
            if ft.is_dir() {
                bail!(
                    "{} is a directory; name a file to write (e.g. {}/out.pcap)",
                    path.display(),
                    path.display()
                );
            }
            if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket() {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .with_context(|| format!("cannot open {} for writing", path.display()))?;
                return Ok(Output {
                    shown,
                    kind: Kind::Through(io::BufWriter::with_capacity(1 << 20, file)),
                });
            }
        }
        let name = target
            .file_name()
            .with_context(|| format!("{} does not name a file", path.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.part", std::process::id()));
        let tmp = target.with_file_name(tmp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        if let Some(m) = &existing {
            // Keep the mode of the file being replaced (best effort: the data matter more).
            let _ = file.set_permissions(m.permissions());
        }
        Ok(Output {
            shown,
            kind: Kind::Replace {
                file: Some(io::BufWriter::with_capacity(1 << 20, file)),
                tmp,
                target,
            },
        })
    }

    /// Flushes everything; for a regular file also syncs it and renames it into place.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let shown = self.shown.clone();
        let ctx = || format!("writing {}", shown.display());
        match &mut self.kind {
            Kind::Stdout(w) => w.flush().with_context(ctx),
            Kind::Through(w) => w.flush().with_context(ctx),
            Kind::Replace { file, tmp, target } => {
                let w = file.take().context("output already finished")?;
                let f = w
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(ctx)?;
                f.sync_all().with_context(ctx)?;
                drop(f);
                std::fs::rename(&*tmp, &*target).with_context(|| {
                    format!("cannot rename {} to {}", tmp.display(), target.display())
                })?;
                if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
                    && let Ok(d) = File::open(dir)
                {
                    let _ = d.sync_all();
                }
                // Renamed: nothing left for Drop to remove.
                tmp.clear();
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.kind {
            Kind::Stdout(w) => w.write(buf),
            Kind::Through(w) => w.write(buf),
            Kind::Replace { file: Some(w), .. } => w.write(buf),
            Kind::Replace { file: None, .. } => Err(io::Error::other("output already finished")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            Kind::Stdout(w) => w.flush(),
            Kind::Through(w) => w.flush(),
            Kind::Replace { file: Some(w), .. } => w.flush(),
            Kind::Replace { file: None, .. } => Ok(()),
        }
    }
}

impl Drop for Output {
    /// An output dropped without `finish` (an error on the way) leaves no temp file behind.
    fn drop(&mut self) {
        if let Kind::Replace { file, tmp, .. } = &mut self.kind
            && !tmp.as_os_str().is_empty()
        {
            drop(file.take());
            let _ = std::fs::remove_file(&*tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all(path: &Path, data: &[u8]) -> anyhow::Result<()> {
        let mut o = Output::create(path)?;
        o.write_all(data)?;
        o.finish()
    }

    #[test]
    fn regular_file_is_replaced_whole_and_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.pcap");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_all(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left beside the output");
    }

    #[test]
    fn abandoned_output_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.html");
        std::fs::write(&p, b"old").unwrap();
        let mut o = Output::create(&p).unwrap();
        o.write_all(b"half").unwrap();
        drop(o);
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn relative_symlink_chain_writes_the_target_and_keeps_the_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("sub/real.pcap", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        write_all(&dir.path().join("b"), b"data").unwrap();
        assert!(
            std::fs::symlink_metadata(dir.path().join("b"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read(dir.path().join("sub/real.pcap")).unwrap(),
            b"data"
        );
    }

    #[test]
    fn symlink_loop_and_directory_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("y", dir.path().join("x")).unwrap();
        std::os::unix::fs::symlink("x", dir.path().join("y")).unwrap();
        let e = Output::create(&dir.path().join("x")).err().unwrap();
        assert!(e.to_string().contains("symbolic links"), "{e}");
        let e = Output::create(dir.path()).err().unwrap();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn dev_full_is_written_through_and_the_error_reaches_the_caller() {
        let e = write_all(Path::new("/dev/full"), &[0u8; 4096]).unwrap_err();
        assert!(format!("{e:#}").contains("/dev/full"), "{e:#}");
        assert!(
            std::fs::metadata("/dev/full")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
}
