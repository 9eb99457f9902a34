//! Per-thread and per-process set-up of the capture path: CPU affinity, real-time
//! scheduling, locked memory, and giving up privileges once the sockets are open.
//!
//! Capabilities are per *thread* on Linux (capset(2) and PR_CAPBSET_DROP change the calling
//! thread only), so every thread that held them calls [`drop_all_capabilities`] itself once
//! its privileged set-up is done; threads created afterwards inherit the empty sets.

use super::SysError;

fn os(what: &'static str) -> SysError {
    SysError::Os {
        what,
        source: std::io::Error::last_os_error(),
    }
}

/// Pins the calling thread to `core`.
pub fn pin_current_thread(core: usize) -> Result<(), SysError> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if core >= libc::CPU_SETSIZE as usize {
        return Err(SysError::Os {
            what: "pin capture thread",
            source: std::io::Error::other(format!("core {core} is beyond CPU_SETSIZE")),
        });
    }
    // SAFETY: `core < CPU_SETSIZE` (checked above), so the bit is inside `set`.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 = the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(os("sched_setaffinity (is the core online?)"));
    }
    Ok(())
}

/// Makes the calling thread SCHED_FIFO at `priority` (needs CAP_SYS_NICE).
pub fn set_realtime(priority: i32) -> Result<(), SysError> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: valid sched_param; 0 = the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc != 0 {
        return Err(os("sched_setscheduler(SCHED_FIFO) (needs CAP_SYS_NICE)"));
    }
    Ok(())
}

/// Locks every page mapped now (rings, buffer pools, stacks) so the hot path never faults.
/// Only MCL_CURRENT: with MCL_FUTURE, mappings made after the capabilities are gone would
/// fail once RLIMIT_MEMLOCK is reached.
pub fn lock_current_memory() -> Result<(), SysError> {
    // SAFETY: mlockall has no memory-safety preconditions.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT) };
    if rc != 0 {
        return Err(os(
            "mlockall (needs CAP_IPC_LOCK or a large RLIMIT_MEMLOCK)",
        ));
    }
    Ok(())
}

/// Highest capability number we try to drop from the bounding set (the kernel has 0..=40
/// today; unknown numbers return EINVAL and are skipped).
const MAX_CAPABILITY: u32 = 63;

// The one copy of the capability syscall structs in the project (`kuroko run`'s child
// set-up in firmware/kuroko/src/privilege.rs uses the functions below).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Removes from the calling thread's bounding set every capability not in `keep` (bit n =
/// capability n), so an exec cannot regain them. Needs CAP_SETPCAP (root). Makes only
/// system calls, no allocation: usable between fork and exec.
pub fn drop_bounding_except(keep: u64) {
    for cap in 0..=MAX_CAPABILITY {
        if keep & (1u64 << cap) == 0 {
            // SAFETY: prctl with integer arguments only; EINVAL for unknown caps is ignored.
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        }
    }
}

/// Sets the calling thread's effective, permitted and inheritable capabilities to `caps`
/// (bit n = capability n) with capset(2). Makes only system calls, no allocation: usable
/// between fork and exec.
pub fn set_capabilities(caps: u64) -> std::io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let (lo, hi) = (caps as u32, (caps >> 32) as u32);
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: lo,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: hi,
        },
    ];
    // SAFETY: capset reads a v3 header and two data structs, which live on this stack.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Drops every capability of the calling thread: the bounding set (so nothing can be
/// regained through exec), then effective, permitted and inheritable. Also sets
/// PR_SET_NO_NEW_PRIVS.
pub fn drop_all_capabilities() -> Result<(), SysError> {
    drop_bounding_except(0);
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    set_capabilities(0).map_err(|source| SysError::Os {
        what: "capset (drop capabilities)",
        source,
    })
}

/// The calling thread's effective capability mask (bits 0..63), from capget.
pub fn effective_capabilities() -> Result<u64, SysError> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget writes two data structs, which we provide.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(os("capget"));
    }
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

/// CLOCK_REALTIME in nanoseconds (vDSO, no allocation, usable on the hot path).
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is valid for writes.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

static STOP_SIGNAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    STOP_SIGNAL.store(true, std::sync::atomic::Ordering::Release);
}

/// Makes SIGINT and SIGTERM set a flag (see [`stop_requested`]) instead of killing the
/// process, so a capture can flush and seal before it exits.
pub fn install_stop_signals() -> Result<(), SysError> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is valid; we set a handler that only performs an
        // atomic store (async-signal-safe) and an empty mask.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_stop_signal as *const () as usize;
        // SAFETY: `sa.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: valid sigaction struct; the old action is not needed.
        let rc = unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(os("sigaction"));
        }
    }
    Ok(())
}

/// SIGINT or SIGTERM arrived since [`install_stop_signals`].
pub fn stop_requested() -> bool {
    STOP_SIGNAL.load(std::sync::atomic::Ordering::Acquire)
}
