//! Measuring the disk itself: the raw O_DIRECT sequential write speed that the store's
//! benchmark puts its own numbers beside (same file system, same run).

use crate::sys::{self, AlignedBuf, Uring};
use std::io;
use std::path::Path;
use std::time::Instant;

/// One raw write measurement.
#[derive(Clone, Copy, Debug)]
pub struct RawWrite {
    pub bytes: u64,
    pub secs: f64,
    /// Whether io_uring + O_DIRECT was used (else synchronous pwrite, as the store would).
    pub uring_direct: bool,
}

impl RawWrite {
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.secs
    }
}

/// How a file is given its blocks before it is overwritten with O_DIRECT writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prealloc {
    /// fallocate, then every byte written with zeros (written extents).
    ZeroFill,
    /// fallocate only (unwritten extents, which read as zeros): metadata only.
    Fallocate,
    /// fallocate, then `FALLOC_FL_ZERO_RANGE` (unwritten extents again on ext4/XFS).
    ZeroRange,
}

impl Prealloc {
    pub fn name(self) -> &'static str {
        match self {
            Prealloc::ZeroFill => "zero-fill",
            Prealloc::Fallocate => "fallocate",
            Prealloc::ZeroRange => "zero-range",
        }
    }
}

/// Creates `path` at `bytes` (rounded up to 1 MiB) prepared as a slot file the store makes
/// (fallocate only), synced and dropped from the page cache, so that [`raw_write_speed`]
/// writes into the same kind of extents as the store's writer does.
pub fn prepare_raw_file(path: &Path, bytes: u64) -> io::Result<()> {
    prepare_raw_file_as(path, bytes, Prealloc::Fallocate)
}

/// [`prepare_raw_file`] with a chosen preparation (for the preallocation measurement).
pub fn prepare_raw_file_as(path: &Path, bytes: u64, how: Prealloc) -> io::Result<()> {
    let bytes = bytes.div_ceil(1 << 20) << 20;
    let f = std::fs::File::create(path)?;
    sys::fallocate(&f, bytes)?;
    f.set_len(bytes)?;
    match how {
        Prealloc::Fallocate => {}
        Prealloc::ZeroRange => {
            if !sys::zero_range(&f, bytes)? {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "FALLOC_FL_ZERO_RANGE is not supported here",
                ));
            }
        }
        Prealloc::ZeroFill => {
            let zeros = vec![0u8; 1 << 20];
            let mut off = 0;
            while off < bytes {
                let n = (bytes - off).min(zeros.len() as u64) as usize;
                sys::pwrite_all(&f, &zeros[..n], off)?;
                off += n as u64;
            }
        }
    }
    f.sync_all()?;
    sys::drop_cache(&f)
}

/// Drops the page cache of every file directly in `dir` (after syncing it), so a
/// measurement does not pay for invalidating pages an earlier step left cached.
pub fn drop_cache(dir: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            let f = std::fs::File::open(e.path())?;
            f.sync_all()?;
            sys::drop_cache(&f)?;
        }
    }
    Ok(())
}

/// Times overwriting the first `bytes` of `path` (made by [`prepare_raw_file`])
/// sequentially in `chunk`-sized O_DIRECT writes with `queue_depth` in flight, plus the
/// final fdatasync.
pub fn raw_write_speed(
    path: &Path,
    bytes: u64,
    chunk: usize,
    queue_depth: usize,
) -> io::Result<RawWrite> {
    let bytes = bytes.div_ceil(chunk as u64) * chunk as u64;
    if std::fs::metadata(path)?.len() < bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the raw file is smaller than the bytes to write",
        ));
    }
    let (file, direct) = sys::open_for_write(path, true)?;
    let bufs: Vec<AlignedBuf> = (0..queue_depth)
        .map(|i| {
            let mut b = AlignedBuf::new(chunk);
            b.as_mut_slice().fill(i as u8 ^ 0x5a);
            b
        })
        .collect();
    let uring = if direct && sys::uring_allowed() {
        Uring::new((queue_depth * 2) as u32, &bufs).ok()
    } else {
        None
    };
    let start = Instant::now();
    let uring_direct = uring.is_some();
    match uring {
        Some(mut u) => sys::uring_write_all(&mut u, &file, &bufs, bytes)?,
        None => {
            let mut off = 0u64;
            while off < bytes {
                sys::pwrite_all(&file, bufs[0].as_slice(), off)?;
                off += chunk as u64;
            }
        }
    }
    sys::datasync(&file)?;
    Ok(RawWrite {
        bytes,
        secs: start.elapsed().as_secs_f64(),
        uring_direct,
    })
}
