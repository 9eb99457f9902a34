//! Test seam: disk faults injected into the store's I/O layer.
//!
//! Device-mapper is not available to the tests, and a disk that fails on demand is hard to
//! come by, so the fault suite registers a [`Faults`] plan for a data directory and the
//! store's I/O layer consults it at the few places where the kernel answers: the result of
//! a write or fdatasync (io_uring completion or synchronous call), the `io_uring_enter`
//! that submits queued operations, and the read of a slot's header. Production stores have
//! no plan: a writer looks its plan up once when it opens, and readers test one relaxed
//! atomic before a header read, so the seam costs nothing per packet.
//!
//! Not for production use (hidden from the docs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The faults planned for one data directory. Counts are consumed as faults fire.
#[derive(Debug, Default)]
pub struct Faults {
    /// Writes (blocks and headers) that complete normally before the next one fails.
    pub writes_ok_first: AtomicU64,
    /// Writes that then fail (`u32::MAX`: every one from then on, a dead disk).
    pub write_failures: AtomicU32,
    /// fdatasyncs that fail (`u32::MAX`: every one).
    pub sync_failures: AtomicU32,
    /// `io_uring_enter` calls that fail right after an operation was queued.
    pub submit_failures: AtomicU32,
    /// The errno the failures report (EIO when 0).
    pub errno: AtomicI32,
    /// Slots whose header sector cannot be read (bit n: slot n, slots 0..64).
    pub unreadable_headers: AtomicU64,
    /// Faults that fired, all kinds together.
    pub fired: AtomicU64,
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match n {
            0 => None,
            u32::MAX => Some(u32::MAX),
            n => Some(n - 1),
        })
        .is_ok()
}

impl Faults {
    fn err(&self) -> std::io::Error {
        self.fired.fetch_add(1, Ordering::Relaxed);
        let e = self.errno.load(Ordering::Relaxed);
        std::io::Error::from_raw_os_error(if e == 0 { libc::EIO } else { e })
    }
    /// Whether the next write fails (and the error it fails with).
    pub(crate) fn write(&self) -> Option<std::io::Error> {
        let skip = self
            .writes_ok_first
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if skip.is_ok() {
            return None;
        }
        take(&self.write_failures).then(|| self.err())
    }
    pub(crate) fn sync(&self) -> Option<std::io::Error> {
        take(&self.sync_failures).then(|| self.err())
    }
    pub(crate) fn submit(&self) -> Option<std::io::Error> {
        take(&self.submit_failures).then(|| self.err())
    }
    pub(crate) fn header_read(&self, slot: u32) -> Option<std::io::Error> {
        (slot < 64 && self.unreadable_headers.load(Ordering::Relaxed) & (1 << slot) != 0)
            .then(|| self.err())
    }
}

static ANY: AtomicBool = AtomicBool::new(false);
static PLANS: Mutex<Vec<(PathBuf, Arc<Faults>)>> = Mutex::new(Vec::new());

/// Registers (or returns the registered) fault plan of data directory `data`. Writers
/// opened on `data` from now on, and every header read under it, follow the plan.
pub fn inject(data: &Path) -> Arc<Faults> {
    let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    ANY.store(true, Ordering::Release);
    if let Some((_, f)) = plans.iter().find(|(p, _)| p == data) {
        return f.clone();
    }
    let f = Arc::new(Faults::default());
    plans.push((data.to_path_buf(), f.clone()));
    f
}

/// Removes the plan of `data`.
pub fn clear(data: &Path) {
    let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    plans.retain(|(p, _)| p != data);
}

/// The plan of `data`, if a test registered one.
pub(crate) fn lookup(data: &Path) -> Option<Arc<Faults>> {
    if !ANY.load(Ordering::Acquire) {
        return None;
    }
    let plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    plans
        .iter()
        .find(|(p, _)| p == data)
        .map(|(_, f)| f.clone())
}
