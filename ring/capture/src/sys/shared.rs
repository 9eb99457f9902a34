//! A typed view of a small file mapped `MAP_SHARED`, whose fields are atomics.
//!
//! zerocopy cannot hand out `&T` for a type with interior mutability (no `Immutable`), so
//! the one cast lives here. Soundness rests on the bounds of [`AtomicPage`]: the type is
//! valid for every bit pattern (`FromBytes`), has a fixed C layout (`KnownLayout`, checked
//! size), and is made only of atomics (the marker trait is implemented only for such types
//! in `stats::layout`), so concurrent writers in other processes can only be observed
//! through atomic operations.

use std::fs::File;
use std::marker::PhantomData;

use memmap2::{MmapOptions, MmapRaw};
use zerocopy::{FromBytes, KnownLayout};

use super::SysError;

/// Implemented only for `#[repr(C)]` structs whose every field is an atomic integer (or an
/// array/struct of such).
///
/// # Safety
/// The implementor must consist of atomics only, so that shared access from several
/// threads and processes is free of data races.
pub unsafe trait AtomicPage: FromBytes + KnownLayout + Sync + Sized {}

/// A mapping of a file holding one `T` at offset 0.
pub struct SharedPage<T: AtomicPage> {
    map: MmapRaw,
    _t: PhantomData<T>,
}

impl<T: AtomicPage> SharedPage<T> {
    /// Maps `file` read-write. The file must already be at least `size_of::<T>()` long.
    pub fn map_rw(file: &File) -> Result<Self, SysError> {
        Self::check_len(file)?;
        let map = MmapOptions::new()
            .len(size_of::<T>())
            .map_raw(file)
            .map_err(|source| SysError::Os {
                what: "mmap of the stats page",
                source,
            })?;
        Ok(SharedPage {
            map,
            _t: PhantomData,
        })
    }

    /// Maps `file` read-only (for other processes that watch the page).
    pub fn map_ro(file: &File) -> Result<Self, SysError> {
        Self::check_len(file)?;
        let map = MmapOptions::new()
            .len(size_of::<T>())
            .map_raw_read_only(file)
            .map_err(|source| SysError::Os {
                what: "mmap of the stats page",
                source,
            })?;
        Ok(SharedPage {
            map,
            _t: PhantomData,
        })
    }

    fn check_len(file: &File) -> Result<(), SysError> {
        let len = file
            .metadata()
            .map_err(|source| SysError::Os {
                what: "stat of the stats page",
                source,
            })?
            .len();
        if len < size_of::<T>() as u64 {
            return Err(SysError::Os {
                what: "stats page",
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("file is {len} bytes, expected at least {}", size_of::<T>()),
                ),
            });
        }
        Ok(())
    }

    pub fn get(&self) -> &T {
        // SAFETY: the mapping is at least size_of::<T>() bytes (checked when mapped) and page
        // aligned (≥ align_of::<T>()); T is FromBytes, so any contents are a valid T; T is
        // made of atomics only (AtomicPage contract), so shared references and concurrent
        // updates through other mappings are race-free; the reference lives no longer than
        // `self`, which keeps the mapping. Atomic loads on a read-only mapping are allowed
        // for lock-free atomics of at most pointer width (u64 on our targets).
        unsafe { &*self.map.as_ptr().cast::<T>() }
    }
}

// SAFETY: `stats::layout::{Header, Interface, Page}` are #[repr(C)] structs of AtomicU64
// (and arrays of them) only.
unsafe impl AtomicPage for crate::stats::layout::Page {}
