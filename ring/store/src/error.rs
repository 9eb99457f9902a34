//! Errors of the store. Messages say what was wrong and what to do about it.

use std::path::{Path, PathBuf};

/// Opening, creating, reading or writing the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} holds no segment store (no segments/store.meta); import or capture into it first"
    )]
    NotAStore { path: PathBuf },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("another writer (pid {holder}) is using the store in {path}; stop it first")]
    Locked { path: PathBuf, holder: String },
    #[error("bad store options: {message}")]
    Options { message: String },
    #[error("{count} write(s) to the store failed; last error: {last}")]
    WriteFailed { count: u64, last: std::io::Error },
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Why one `append` did not store its packet. Recoverable: the caller counts it and goes on.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Every write buffer is in flight (non-blocking mode): the packet was not stored.
    #[error("all write buffers are in flight")]
    Backpressure,
    /// The packet is longer than one record can hold (see `SegmentWriter::max_caplen`).
    #[error("packet of {len} bytes is longer than the store's limit of {max}")]
    TooLarge { len: usize, max: u32 },
    /// The disk failed writes or fdatasyncs (`errors` so far; `lost` packets lost to them
    /// so far, this one included: it was not stored). Reported once per failure; the
    /// writer stays usable and the caller decides whether to go on.
    #[error(
        "the disk failed {errors} write(s) to the store ({lost} packets lost so far); last error: {last}; check the disk and `kuroko status`"
    )]
    WriteFailed {
        errors: u64,
        lost: u64,
        last: std::io::Error,
    },
    /// Opening, sealing or formatting a segment failed; the writer is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
}
