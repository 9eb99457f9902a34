//! OS glue: run the analyzer as a background job (SCHED_IDLE CPU policy, idle I/O
//! priority, optional pinning to `[analyzer] cores`) so that capture never waits for it.

#![allow(unsafe_code)]

use std::io;

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << 13)`.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_IDLE: libc::c_int = 3;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;

/// Lowers this process's CPU and I/O priority and pins it to `cores` (if any).
/// Returns what could not be applied (each item a readable reason); never fails hard,
/// because analysis at normal priority is still better than none.
pub fn become_background(cores: &[usize]) -> Vec<String> {
    let mut problems = Vec::new();
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` (a valid, initialised struct on our stack)
    // and changes only the calling thread's policy (pid 0).
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        problems.push(format!("SCHED_IDLE: {}", io::Error::last_os_error()));
    }
    // SAFETY: a plain syscall with integer arguments; it touches no memory of ours.
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
    if !cores.is_empty() {
        // SAFETY: cpu_set_t is a plain bit array for which all-zero is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cores {
            if c < libc::CPU_SETSIZE as usize {
                // SAFETY: `c` is below CPU_SETSIZE, so CPU_SET stays inside `set`.
                unsafe { libc::CPU_SET(c, &mut set) };
            }
        }
        // SAFETY: passes a pointer to an initialised cpu_set_t of the size we give.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            problems.push(format!(
                "pinning to cores {cores:?}: {}",
                io::Error::last_os_error()
            ));
        }
    }
    problems
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
