//! OS glue: aligned buffers, io_uring, O_DIRECT, fallocate, flock, statvfs, reads that
//! survive media errors.
//!
//! All of the crate's `unsafe` lives here, each block with the invariant it relies on.
//! Everything above this module sees safe types: [`AlignedBuf`], [`Uring`].

#![allow(unsafe_code)]

use std::alloc::Layout;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::ptr::NonNull;

/// Alignment of every I/O buffer (O_DIRECT wants the logical block size; 4 KiB covers all
/// disks we support).
pub const BUF_ALIGN: usize = 4096;

/// A zeroed, 4 KiB aligned buffer that never moves (its address is registered with
/// io_uring and must stay valid while writes are in flight): an anonymous memory mapping.
///
/// A mapping rather than the heap because the aligned heap path (`alloc_zeroed` with an
/// alignment above 16) zero-fills with memset, which makes every page resident at once:
/// a reader's segment-sized (64 MiB) buffer for a segment that is a tenth full would cost
/// 64 MiB of RSS. Mapped pages are zero until touched and resident only once touched
/// ([`AlignedBuf::lazy`]); the writer's pool is populated up front ([`AlignedBuf::new`]) so
/// the first round of appends takes no page faults.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// A buffer whose pages are made resident now (the writer's buffers).
    pub fn new(len: usize) -> AlignedBuf {
        Self::map(len, libc::MAP_POPULATE)
    }

    /// A buffer whose pages become resident only when touched (read buffers sized for a
    /// whole segment, of which a read may fill a part).
    pub fn lazy(len: usize) -> AlignedBuf {
        Self::map(len, 0)
    }

    fn map(len: usize, extra_flags: libc::c_int) -> AlignedBuf {
        assert!(
            len > 0 && len.is_multiple_of(BUF_ALIGN),
            "buffer length must be a 4 KiB multiple"
        );
        // SAFETY: a fresh private anonymous mapping: no address hint, no file; the kernel
        // returns page-aligned (4 KiB) zero-filled memory owned by nobody else, or
        // MAP_FAILED.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            let layout = Layout::from_size_align(len, BUF_ALIGN).expect("valid layout");
            std::alloc::handle_alloc_error(layout);
        }
        let ptr = NonNull::new(raw.cast::<u8>()).expect("mmap never returns null here");
        AlignedBuf { ptr, len }
    }
    /// A buffer of no bytes that maps nothing: the place-holder left in the writer's pool
    /// while a lane owns that buffer (see `writer::lanes`). Allocates nothing.
    pub fn empty() -> AlignedBuf {
        AlignedBuf {
            ptr: NonNull::dangling(),
            len: 0,
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr points at `len` initialised bytes we own (an anonymous mapping reads
        // as zeros until written).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` guarantees exclusive access from Rust. The
        // kernel may be reading *other* ranges of this buffer for in-flight writes; the
        // writer never hands out ranges that overlap an in-flight write (see writer.rs).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
    fn iovec(&self) -> libc::iovec {
        libc::iovec {
            iov_base: self.ptr.as_ptr().cast(),
            iov_len: self.len,
        }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.len == 0 {
            // `empty()`: nothing was mapped.
            return;
        }
        // SAFETY: the mapping made in `map` with this length, unmapped once; nothing
        // borrows it any more (`&mut self`), and the writer drops its io_uring ring (which
        // may still read the buffers) before them.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Opens a file for reading, with O_DIRECT when wanted and the file system takes it (reads
/// then need 4 KiB aligned buffers, offsets and lengths). Some file systems accept the flag
/// at open and refuse the reads (EINVAL); a 4 KiB probe read tells, so that a caller never
/// mistakes every read failing for an unreadable disk.
pub fn open_for_read(path: &Path, want_direct: bool) -> io::Result<File> {
    if want_direct
        && let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
    {
        let mut probe = AlignedBuf::lazy(BUF_ALIGN);
        match f.read_exact_at(probe.as_mut_slice(), 0) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            // Read, or failed otherwise (a media error is the caller's to handle).
            _ => return Ok(f),
        }
    }
    File::open(path)
}

/// Opens a segment file for writing, with O_DIRECT unless refused or not wanted.
/// Returns the file and whether O_DIRECT is on.
pub fn open_for_write(path: &Path, want_direct: bool) -> io::Result<(File, bool)> {
    if want_direct {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    let f = OpenOptions::new().read(true).write(true).open(path)?;
    Ok((f, false))
}

/// Reserves `len` bytes for `file` (fallocate, mode 0). File systems without fallocate
/// (EOPNOTSUPP) are accepted: the file is then sparse and its blocks are allocated as the
/// writer first writes them.
pub fn fallocate(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a valid descriptor; no memory is passed.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
        return Ok(());
    }
    Err(e)
}

/// Zeroes `[0, len)` of `file` with `FALLOC_FL_ZERO_RANGE`: on ext4 and XFS a metadata-only
/// operation (the range becomes unwritten extents, which read as zeros). `Ok(false)` when the
/// file system does not support it (the caller then writes zeros itself).
pub fn zero_range(file: &File, len: u64) -> io::Result<bool> {
    // SAFETY: plain syscall on a valid descriptor; no memory is passed.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_ZERO_RANGE,
            0,
            len as libc::off_t,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(false),
        _ => Err(e),
    }
}

/// Drops the clean page-cache pages of `file` (`POSIX_FADV_DONTNEED`).
pub fn drop_cache(file: &File) -> io::Result<()> {
    // SAFETY: plain syscall on a valid descriptor; no memory is passed.
    let r = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// Puts the calling thread (not the process) in the background: SCHED_IDLE CPU policy and
/// the idle I/O class, so it runs and reaches the disk only when nothing else wants to
/// (the background scrub, `crate::scrub`). Returns what could not be applied (readable
/// reasons); the caller decides whether to run anyway.
pub fn idle_priority_this_thread() -> Vec<String> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_IDLE: libc::c_int = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
    let mut problems = Vec::new();
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` (an initialised struct on our stack); pid 0
    // is the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        problems.push(format!("SCHED_IDLE: {}", io::Error::last_os_error()));
    }
    // SAFETY: a plain syscall with integer arguments; who = 0 is the calling thread.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        )
    };
    if rc != 0 {
        problems.push(format!("idle I/O priority: {}", io::Error::last_os_error()));
    }
    problems
}

/// `fdatasync`.
pub fn datasync(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Exclusive, non-blocking `flock`. `Ok(false)` when another process holds it.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: plain syscall on a valid descriptor.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Total size in bytes of the file system holding `path`.
pub fn filesystem_size(path: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    Ok(st.blocks() as u64 * st.fragment_size() as u64)
}

/// Whether the kernel allows io_uring for this process
/// (`/proc/sys/kernel/io_uring_disabled`: 0 = yes, 1 = only for a group, 2 = no).
pub fn uring_allowed() -> bool {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        Ok(s) => s.trim() == "0",
        // Older kernels have no knob: io_uring is available if the kernel has it at all.
        Err(_) => true,
    }
}

/// Positional write of a whole buffer (the synchronous fallback).
pub fn pwrite_all(file: &File, buf: &[u8], off: u64) -> io::Result<()> {
    file.write_all_at(buf, off)
}

/// One io_uring instance with a set of registered (or plain) buffers.
pub struct Uring {
    ring: io_uring::IoUring,
    fixed: bool,
    in_flight: u32,
    /// Entries are in the submission queue that no `io_uring_enter` took yet.
    unsubmitted: bool,
    /// Test seam (see `fault`).
    pub(crate) faults: Option<std::sync::Arc<crate::fault::Faults>>,
}

/// A finished write: (`user_data`, result as returned by the kernel).
pub type Completion = (u64, i32);

impl Uring {
    /// Sets up a ring with `entries` submission slots and registers `bufs`. When buffer
    /// registration fails (RLIMIT_MEMLOCK), the ring still works with plain `WRITE`.
    pub fn new(entries: u32, bufs: &[AlignedBuf]) -> io::Result<Uring> {
        let ring = io_uring::IoUring::new(entries)?;
        let iovecs: Vec<libc::iovec> = bufs.iter().map(AlignedBuf::iovec).collect();
        // SAFETY: every iovec points at an AlignedBuf that the writer owns for as long as
        // the ring lives (the writer drops the ring before the buffers: field order and an
        // explicit drain in `Drop`), and the buffers never move.
        let fixed = unsafe { ring.submitter().register_buffers(&iovecs) }.is_ok();
        Ok(Uring {
            ring,
            fixed,
            in_flight: 0,
            unsubmitted: false,
            faults: None,
        })
    }

    pub fn buffers_registered(&self) -> bool {
        self.fixed
    }

    /// Registers `bufs` (indexes 0..) and then the caller's regions `extra` (indexes
    /// `bufs.len()`..) as the fixed buffers, replacing the registration. Only with nothing
    /// in flight (the kernel refuses otherwise). On failure the registration of `bufs`
    /// alone is restored (or none, as before).
    ///
    /// # Safety
    ///
    /// Every `extra` region is readable memory that stays mapped for as long as it is
    /// registered (until the next call or the ring is dropped). (Registration pins the
    /// pages: a region unmapped while registered is not freed, only stale.)
    pub unsafe fn register_with(
        &mut self,
        bufs: &[AlignedBuf],
        extra: &[(*const u8, usize)],
    ) -> io::Result<()> {
        if self.fixed {
            self.ring.submitter().unregister_buffers()?;
            self.fixed = false;
        }
        let mut iovecs: Vec<libc::iovec> = bufs.iter().map(AlignedBuf::iovec).collect();
        iovecs.extend(extra.iter().map(|&(p, len)| libc::iovec {
            iov_base: p.cast_mut().cast(),
            iov_len: len,
        }));
        // SAFETY: `bufs` as in `new`; `extra` is the caller's contract.
        match unsafe { self.ring.submitter().register_buffers(&iovecs) } {
            Ok(()) => {
                self.fixed = true;
                Ok(())
            }
            Err(e) => {
                let own: Vec<libc::iovec> = bufs.iter().map(AlignedBuf::iovec).collect();
                // SAFETY: as in `new`.
                self.fixed = unsafe { self.ring.submitter().register_buffers(&own) }.is_ok();
                Err(e)
            }
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Queues a write of `buf[range]` (buffer number `index`) to `file` at `off`.
    ///
    /// `Ok` means the write is queued: its completion (with `user_data`) will be reaped
    /// exactly once, even when the `io_uring_enter` that follows the queueing fails (the
    /// entry stays in the submission queue and goes with the next submit). `Err` means it
    /// was not queued: the kernel never sees it.
    ///
    /// # Safety
    ///
    /// After `Ok`, the kernel reads `buf[range]` until the completion is reaped: the caller
    /// must neither write those bytes nor free or reuse `buf` for anything that writes them
    /// before [`Uring::reap`] or [`Uring::wait_one`] handed out that completion, and must
    /// keep `file` open until then.
    pub unsafe fn write(
        &mut self,
        file: &File,
        (index, buf): (u16, &AlignedBuf),
        range: std::ops::Range<usize>,
        off: u64,
        user_data: u64,
    ) -> io::Result<()> {
        let (start, end) = (range.start, range.end);
        assert!(start <= end && end <= buf.len());
        let fd = io_uring::types::Fd(file.as_raw_fd());
        // SAFETY: start..end lies within the buffer (asserted above).
        let ptr = unsafe { buf.as_ptr().add(start) };
        let len = (end - start) as u32;
        let entry = if self.fixed {
            io_uring::opcode::WriteFixed::new(fd, ptr, len, index)
                .offset(off)
                .build()
        } else {
            io_uring::opcode::Write::new(fd, ptr, len)
                .offset(off)
                .build()
        }
        .user_data(user_data);
        // SAFETY: the caller keeps the bytes and the descriptor (this function's contract).
        unsafe { self.push(&entry) }
    }

    /// Queues a plain write of `len` bytes at `ptr` (memory the writer does not own: a
    /// packet ring block) to `file` at `off`. `Ok` and `Err` as for [`Uring::write`].
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` is readable memory that nobody writes, unmaps or frees (and `file`
    /// stays open) until the completion with `user_data` is reaped.
    pub unsafe fn write_raw(
        &mut self,
        file: &File,
        ptr: *const u8,
        len: u32,
        fixed: Option<u16>,
        off: u64,
        user_data: u64,
    ) -> io::Result<()> {
        let fd = io_uring::types::Fd(file.as_raw_fd());
        // `fixed`: the bytes lie in registered buffer `index` (`register_with`): no page
        // pinning per write.
        let entry = match fixed {
            Some(index) if self.fixed => io_uring::opcode::WriteFixed::new(fd, ptr, len, index)
                .offset(off)
                .build(),
            _ => io_uring::opcode::Write::new(fd, ptr, len)
                .offset(off)
                .build(),
        }
        .user_data(user_data);
        // SAFETY: the caller keeps the bytes and the descriptor (this function's contract).
        unsafe { self.push(&entry) }
    }

    /// Queues an `fdatasync` of `file` (runs in the kernel's worker, never blocks us).
    /// `Ok` and `Err` as for [`Uring::write`]. The caller keeps `file` open until the
    /// completion is reaped (a closed descriptor fails the sync, nothing worse).
    pub fn datasync(&mut self, file: &File, user_data: u64) -> io::Result<()> {
        let fd = io_uring::types::Fd(file.as_raw_fd());
        let entry = io_uring::opcode::Fsync::new(fd)
            .flags(io_uring::types::FsyncFlags::DATASYNC)
            .build()
            .user_data(user_data);
        // SAFETY: an fsync refers to no memory.
        unsafe { self.push(&entry) }
    }

    /// Queues a plain (unregistered) write of a whole buffer. `Ok` and `Err` as for
    /// [`Uring::write`].
    ///
    /// # Safety
    ///
    /// After `Ok`, the caller must not write, free or reuse `buf` (nor close `file`) until
    /// the completion with `user_data` is reaped.
    pub unsafe fn write_buf(
        &mut self,
        file: &File,
        buf: &AlignedBuf,
        off: u64,
        user_data: u64,
    ) -> io::Result<()> {
        let fd = io_uring::types::Fd(file.as_raw_fd());
        let entry = io_uring::opcode::Write::new(fd, buf.as_ptr(), buf.len() as u32)
            .offset(off)
            .build()
            .user_data(user_data);
        // SAFETY: the caller keeps the buffer and the descriptor (this function's contract).
        unsafe { self.push(&entry) }
    }

    /// Puts `entry` in the submission queue and submits it. Once the entry is in the queue
    /// it is in flight whatever `io_uring_enter` answers: a failed submit leaves it queued
    /// (retried by the next submit, `reap` or `wait_one`), so this returns `Ok` then; `Err`
    /// only when the queue was full and could not be drained, with the entry not queued.
    ///
    /// # Safety
    ///
    /// The memory and descriptor `entry` refers to stay valid and untouched until its
    /// completion is reaped.
    unsafe fn push(&mut self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller's contract.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                break;
            }
            self.submit()?;
        }
        self.in_flight += 1;
        self.unsubmitted = true;
        // Queued: a failure to submit now is retried later, never reported as "not queued".
        let _ = self.submit();
        Ok(())
    }

    /// Submits what is queued (`io_uring_enter`).
    fn submit(&mut self) -> io::Result<()> {
        if let Some(e) = self.faults.as_ref().and_then(|f| f.submit()) {
            return Err(e);
        }
        self.ring.submit()?;
        self.unsubmitted = false;
        Ok(())
    }

    /// Reaps finished writes without waiting (first submitting entries whose submit
    /// failed).
    pub fn reap(&mut self, mut f: impl FnMut(Completion)) {
        if self.unsubmitted {
            let _ = self.submit();
        }
        for cqe in self.ring.completion() {
            self.in_flight -= 1;
            f((cqe.user_data(), cqe.result()));
        }
    }

    /// Waits until at least one write finished (if any is in flight), then reaps. A
    /// submit the kernel refuses for now (EAGAIN, EBUSY: completion queue full) is retried
    /// after reaping; other errors are returned.
    pub fn wait_one(&mut self, f: impl FnMut(Completion)) -> io::Result<()> {
        let mut retries = 0u32;
        while self.in_flight > 0 {
            let r = match self.faults.as_ref().and_then(|f| f.submit()) {
                Some(e) => Err(e),
                None => self.ring.submit_and_wait(1).map(|_| ()),
            };
            match r {
                Ok(()) => {
                    self.unsubmitted = false;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY))
                        && retries < 1000 =>
                {
                    retries += 1;
                    if !self.ring.completion().is_empty() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => return Err(e),
            }
        }
        self.reap(f);
        Ok(())
    }
}

/// Writes `bytes` to `file` from offset 0, cycling through `bufs` (each written whole, as
/// many at a time as there are buffers), and waits for every write (the raw write speed
/// measurement). The buffers are borrowed, so nothing writes them meanwhile, and every
/// queued write is waited for before this returns, on write errors too.
pub fn uring_write_all(
    u: &mut Uring,
    file: &File,
    bufs: &[AlignedBuf],
    bytes: u64,
) -> io::Result<()> {
    let mut free: Vec<usize> = (0..bufs.len()).collect();
    let mut err = None;
    let mut off = 0u64;
    while (off < bytes && err.is_none()) || u.in_flight() > 0 {
        if off < bytes
            && err.is_none()
            && let Some(b) = free.pop()
        {
            let len = bufs[b].len();
            // SAFETY: `bufs` is borrowed immutably for the whole function, and the loop
            // only ends when nothing is in flight.
            if let Err(e) = unsafe { u.write(file, (b as u16, &bufs[b]), 0..len, off, b as u64) } {
                err = Some(e);
            }
            off += len as u64;
            continue;
        }
        let r = u.wait_one(|(ud, res)| {
            let want = bufs.get(ud as usize).map_or(0, |b| b.len() as i32);
            if res != want && err.is_none() {
                err = Some(if res < 0 {
                    io::Error::from_raw_os_error(-res)
                } else {
                    io::Error::new(io::ErrorKind::WriteZero, "short write")
                });
            }
            free.push(ud as usize);
        });
        // Cannot wait any more: the caller drops the ring (which cancels what is in
        // flight; O_DIRECT pins the pages it reads) before the buffers.
        r?;
    }
    err.map_or(Ok(()), Err)
}

/// Whether nobody holds an exclusive `flock` on `file` (takes and drops a shared lock).
pub fn try_lock_shared_probe(file: &File) -> bool {
    // SAFETY: plain syscalls on a valid descriptor.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if r == 0 {
        // SAFETY: as above.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        true
    } else {
        false
    }
}

/// Bytes read at a time after a whole read failed, then 4 KiB within a piece that fails.
const RETRY_PIECE: usize = 64 * 1024;

/// Fills `dst` (file bytes from offset `at`, 4 KiB aligned) with `read_at`: in one read, or
/// if that fails piece by piece, zeroing the 4 KiB units that cannot be read (a disk's media error, EIO). Returns the
/// bytes zeroed. Readers use this instead of a memory map for store data: an unreadable
/// page of a mapping kills the process with SIGBUS; a zeroed unit fails its block's
/// checksum and is reported as damage at its offset.
pub fn read_what_can_be_read(
    dst: &mut [u8],
    at: u64,
    mut read_at: impl FnMut(&mut [u8], u64) -> std::io::Result<()>,
) -> u64 {
    if read_at(dst, at).is_ok() {
        return 0;
    }
    let mut lost = 0;
    for (i, piece) in dst.chunks_mut(RETRY_PIECE).enumerate() {
        let off = at + (i * RETRY_PIECE) as u64;
        if read_at(piece, off).is_ok() {
            continue;
        }
        for (j, unit) in piece.chunks_mut(4096).enumerate() {
            if read_at(unit, off + (j * 4096) as u64).is_err() {
                unit.fill(0);
                lost += unit.len() as u64;
            }
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_units_are_zeroed_and_the_rest_is_read() {
        // A 300 KiB range from offset 8 KiB; the disk cannot read two 4 KiB units.
        let disk: Vec<u8> = (0..400 * 1024).map(|i| (i % 251) as u8 + 1).collect();
        let bad = [8 * 1024 + 72 * 1024, 8 * 1024 + 200 * 1024];
        let mut calls = 0;
        let mut dst = vec![0xffu8; 300 * 1024];
        let lost = read_what_can_be_read(&mut dst, 8 * 1024, |b, off| {
            calls += 1;
            let (s, e) = (off as usize, off as usize + b.len());
            if bad.iter().any(|&x| x < e && x + 4096 > s) {
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            b.copy_from_slice(&disk[s..e]);
            Ok(())
        });
        assert_eq!(lost, 2 * 4096);
        for (i, &v) in dst.iter().enumerate() {
            let off = 8 * 1024 + i;
            let unreadable = bad.iter().any(|&x| off >= x && off < x + 4096);
            assert_eq!(v, if unreadable { 0 } else { disk[off] }, "byte at {off}");
        }
        // The whole range, then 5 pieces of 64 KiB (the last short), 2 of them retried in
        // 16 units of 4 KiB.
        assert_eq!(calls, 1 + 5 + 2 * 16);
    }
}
