//! OS glue: the analyzer's priority and cores beside a capture ([`crate::placement`] says
//! which and why: normal scheduling at nice 10 off the capture cores by default, SCHED_IDLE
//! on request), and the thread CPU clock and pinning its test measures with.

#![allow(unsafe_code)]

use crate::placement::{CpuPolicy, Placement};
use std::io;
use std::time::Duration;

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, CLASS << 13 | level)`.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_BE: libc::c_int = 2;
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
/// The lowest best-effort level.
const IOPRIO_BE_LOWEST: libc::c_int = 7;

/// Applies `p` to the calling thread (threads it starts afterwards inherit it; call it
/// before starting any). Returns what could not be applied (each item a readable reason);
/// never fails hard, because analysis at normal priority is still better than none.
pub fn become_background(p: &Placement) -> Vec<String> {
    let mut problems = Vec::new();
    let be_lowest = (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | IOPRIO_BE_LOWEST;
    let (class, nice_at_least, ioprio) = match p.policy {
        CpuPolicy::Idle => (
            Some(libc::SCHED_IDLE),
            None,
            Some(IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT),
        ),
        CpuPolicy::Nice(n) => (Some(libc::SCHED_OTHER), Some(n), Some(be_lowest)),
        // The class and an idle I/O class are inherited; the rest is lowered.
        CpuPolicy::Lower(n) => (
            None,
            Some(n),
            (io_class() != IOPRIO_CLASS_IDLE).then_some(be_lowest),
        ),
    };
    if let Some(class) = class {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param` (a valid, initialised struct on our
        // stack) and changes only the calling thread's policy (pid 0).
        let rc = unsafe { libc::sched_setscheduler(0, class, &param) };
        if rc != 0 {
            problems.push(format!(
                "scheduling class {}: {}",
                if class == libc::SCHED_IDLE {
                    "SCHED_IDLE"
                } else {
                    "SCHED_OTHER"
                },
                io::Error::last_os_error()
            ));
        }
    }
    if let Some(n) = nice_at_least
        && nice() < n
        && let Err(e) = set_nice(n)
    {
        problems.push(format!("nice {n}: {e}"));
    }
    if let Some(ioprio) = ioprio {
        // SAFETY: a plain syscall with integer arguments; it touches no memory of ours.
        let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) };
        if rc != 0 {
            problems.push(format!("I/O priority: {}", io::Error::last_os_error()));
        }
    }
    match current_affinity().map(|allowed| p.affinity(&allowed)) {
        Ok(Ok(Some(cores))) => {
            if let Err(e) = pin_current_thread(&cores) {
                problems.push(format!("pinning to cores {cores:?}: {e}"));
            }
        }
        Ok(Ok(None)) => {}
        Ok(Err(why)) => problems.push(why),
        Err(e) => problems.push(format!("reading the CPU affinity: {e}")),
    }
    problems
}

/// The calling thread's I/O priority class (0 when none was set, or on error).
fn io_class() -> libc::c_int {
    // SAFETY: a plain syscall with integer arguments; it touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) };
    if rc < 0 {
        0
    } else {
        (rc as libc::c_int) >> IOPRIO_CLASS_SHIFT
    }
}

/// The calling thread's nice value.
pub fn nice() -> i32 {
    // SAFETY: getpriority takes integers; -1 is also a valid nice value, so errno is
    // cleared first and checked after (an error is taken as nice 0).
    unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, 0);
        if n == -1 && *libc::__errno_location() != 0 {
            0
        } else {
            n
        }
    }
}

/// Sets the calling thread's nice value (Linux keeps it per thread). Lowering it needs
/// CAP_SYS_NICE.
pub fn set_nice(n: i32) -> io::Result<()> {
    // SAFETY: a plain syscall with integer arguments on the calling thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The cores the calling thread may run on.
pub fn current_affinity() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most the size we pass into `set`.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, so CPU_ISSET reads inside `set`.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `cores`.
pub fn pin_current_thread(cores: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cores {
        if c < libc::CPU_SETSIZE as usize {
            // SAFETY: `c` is below CPU_SETSIZE, so CPU_SET stays inside `set`.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    // SAFETY: passes a pointer to an initialised cpu_set_t of the size we give.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which lives on our stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// `renameat2(from, to, RENAME_NOREPLACE)`: fails with `AlreadyExists` instead of replacing
/// `to` (the files store's deduplication test when it reuses a spare file).
pub fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(from.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both pointers are NUL-terminated strings that live until the call returns;
    // the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
