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
use std::sync::atomic::{AtomicU64, Ordering};

use zerocopy::{FromBytes, IntoBytes, KnownLayout};

use super::SysError;

/// Implemented only for `#[repr(C)]` structs whose every field is an atomic integer (or an
/// array/struct of such).
///
/// # Safety
/// The implementor must consist of atomics only, so that shared access from several
/// threads and processes is free of data races.
pub unsafe trait AtomicPage: FromBytes + IntoBytes + KnownLayout + Sync + Sized {}

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

    fn check_len(file: &File) -> Result<(), SysError> {
        check_len::<T>(file)
    }

    pub fn get(&self) -> &T {
        // SAFETY: the mapping is at least size_of::<T>() bytes (checked when mapped) and page
        // aligned (≥ align_of::<T>()); T is FromBytes, so any contents are a valid T; T is
        // made of atomics only (AtomicPage contract), so shared references and concurrent
        // updates through other mappings are race-free; the reference lives no longer than
        // `self`, which keeps the mapping writable.
        unsafe { &*self.map.as_ptr().cast::<T>() }
    }
}

/// A read-only mapping of a file holding one `T` at offset 0, for processes that watch a
/// page another process writes.
///
/// It hands out no reference into the mapping: a `&T` would offer `store` and `fetch_add`
/// on memory mapped without PROT_WRITE (a SIGSEGV in the reader). [`ReadOnlyPage::load`]
/// copies every word out with an atomic load into a `T` of the caller's own.
pub struct ReadOnlyPage<T: AtomicPage> {
    map: MmapRaw,
    _t: PhantomData<T>,
}

impl<T: AtomicPage> ReadOnlyPage<T> {
    /// Maps the first `size_of::<T>()` bytes of `file` read-only.
    pub fn map(file: &File) -> Result<Self, SysError> {
        check_len::<T>(file)?;
        let map = MmapOptions::new()
            .len(size_of::<T>())
            .map_raw_read_only(file)
            .map_err(|source| SysError::Os {
                what: "mmap of the stats page",
                source,
            })?;
        Ok(ReadOnlyPage {
            map,
            _t: PhantomData,
        })
    }

    /// A copy of the page: each 64-bit word read atomically (Acquire), in order.
    pub fn load(&self) -> T {
        let words = size_of::<T>() / 8;
        let mut out = T::new_zeroed();
        let base = self.map.as_ptr().cast::<AtomicU64>();
        for (k, dst) in out
            .as_mut_bytes()
            .chunks_exact_mut(8)
            .take(words)
            .enumerate()
        {
            // SAFETY: `k < size_of::<T>() / 8`, so the word lies inside the mapping, which
            // is page aligned; T is made of AtomicU64 only (AtomicPage contract), so every
            // aligned word is an AtomicU64 that writers update atomically. A load does not
            // write, which a read-only mapping allows.
            let v = unsafe { (*base.add(k)).load(Ordering::Acquire) };
            dst.copy_from_slice(&v.to_ne_bytes());
        }
        out
    }
}

fn check_len<T>(file: &File) -> Result<(), SysError> {
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

// SAFETY: `stats::layout::{Header, Interface, Page}` are #[repr(C)] structs of AtomicU64
// (and arrays of them) only.
unsafe impl AtomicPage for crate::stats::layout::Page {}
// SAFETY: as above: `Header` (and the `Writer` inside it) are AtomicU64 only.
unsafe impl AtomicPage for crate::stats::layout::Header {}
