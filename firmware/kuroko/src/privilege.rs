//! Least privilege for the children of `kuroko run`.
//!
//! The analyzer runs every protocol parser over hostile bytes; it must not hold root. Each
//! child `kuroko run` starts is set up between fork and exec ([`Policy`], applied by
//! [`sys::apply`] in `pre_exec`): the capability bounding set cut to what it keeps, no
//! supplementary groups, the dedicated user's gid and uid (`kuroko` on the appliance,
//! `--user` elsewhere), only the capabilities it needs (raised as ambient so they survive
//! the exec of the `kuroko` binary; capture needs CAP_NET_RAW for its sockets, CAP_NET_ADMIN
//! to silence the port, CAP_IPC_LOCK and CAP_SYS_NICE for a locked ring and SCHED_FIFO, and
//! drops them itself once started), PR_SET_NO_NEW_PRIVS, and a seccomp filter
//! ([`seccomp_filter`]) that refuses with EPERM what no part of Kuroko uses and an attacker
//! would want (ptrace, mount, module loading, kexec, namespaces, bpf, keyrings, clock and
//! host changes, reboot, …) and kills a process that uses another syscall ABI.
//!
//! Writes are confined with Landlock ([`WriteScope`]): a child may create, change, rename
//! or remove files only beneath its data directory and the temporary directory (capture
//! also writes its ports' sysctls under `/proc/sys/net`), and write `/dev/null`. A parser
//! that an attacker's packet took over cannot rewrite `/config` (the disk key, the
//! technician's credential, the update state), a USB stick, or a device node, whatever the
//! file modes say. Reads are not confined (the analyzer reads the config, intel packs, CA
//! certificates, YARA rules wherever they are). The ruleset is built by `kuroko run` before
//! the fork and enforced in the child with the rest of the policy; a kernel without
//! Landlock runs the children without it and `kuroko run` says so on its stderr.

use anyhow::{Context, bail};

/// Capability numbers (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_IPC_LOCK: u32 = 14;
pub const CAP_SYS_NICE: u32 = 23;

/// The capabilities `kuroko capture` starts with (it drops them after start-up).
pub const CAPTURE_CAPS: &[u32] = &[CAP_NET_RAW, CAP_NET_ADMIN, CAP_IPC_LOCK, CAP_SYS_NICE];

/// Every `kuroko` process holds customer traffic in its memory (packets, reassembled
/// files, passwords seen on the wire): none may leave a core file on a disk or the
/// root's file system, and none is dumpable (no ptrace attach by a process of the same
/// user, `/proc/PID/mem`, `environ`, `fd` owned by root). Called first in `main`; the
/// kernel resets the dumpable flag at exec and at a uid change, so every process (each
/// child of `kuroko run` too) sets it again itself.
pub fn no_core_dumps() {
    use nix::sys::resource::{Resource, setrlimit};
    // Failures are ignored: both only lower what the process may do, and an old kernel
    // without them is no reason not to capture.
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    let _ = nix::sys::prctl::set_dumpable(false);
}

/// The user children run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Looks `name` up in the user database.
pub fn lookup(name: &str) -> anyhow::Result<Option<Identity>> {
    let u = nix::unistd::User::from_name(name)
        .with_context(|| format!("cannot look up user `{name}`"))?;
    Ok(u.map(|u| Identity {
        name: name.to_string(),
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    }))
}

/// Who the children run as: `user` when it exists; when it does not, root only with
/// `allow_root` (outside the appliance), otherwise a clear error. `None` when this process
/// is not root (a developer's run: nothing to switch to).
pub fn resolve(user: &str, allow_root: bool) -> anyhow::Result<Option<Identity>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match lookup(user)? {
        Some(id) => Ok(Some(id)),
        None if allow_root => {
            eprintln!(
                "kuroko run: warning: user `{user}` does not exist; the children run as root (without capabilities) because --allow-root-children was given"
            );
            Ok(Some(Identity {
                name: "root".into(),
                uid: 0,
                gid: 0,
            }))
        }
        None => bail!(
            "user `{user}` does not exist: the analyzer must not run as root. Create it (`useradd --system --no-create-home {user}`; the appliance image has it), pass --user NAME for another unprivileged user, or --allow-root-children to run the children as root without capabilities (not on an appliance)"
        ),
    }
}

/// Where a child may write (Landlock).
#[derive(Clone, Debug, Default)]
pub struct WriteScope {
    /// Every write-class access (create, write, truncate, rename, link, remove) beneath
    /// these directories. A missing directory is left out.
    pub dirs: Vec<std::path::PathBuf>,
    /// Writing (not creating or removing) these files (`/dev/null`).
    pub files: Vec<std::path::PathBuf>,
}

impl WriteScope {
    /// A child of `kuroko run`: its data directory, the temporary directory, `/dev/null`.
    pub fn child(data: &std::path::Path) -> WriteScope {
        WriteScope {
            dirs: vec![data.to_path_buf(), std::env::temp_dir()],
            files: vec!["/dev/null".into()],
        }
    }

    /// Capture's: a child's, and its ports' sysctls (`/proc/sys/net`, see
    /// `kuroko_board::capture_port`).
    pub fn capture(data: &std::path::Path) -> WriteScope {
        let mut s = WriteScope::child(data);
        s.dirs.push("/proc/sys/net".into());
        s
    }
}

/// What one child is allowed.
pub struct Policy {
    /// Switch to this user (None: keep the current one).
    pub identity: Option<Identity>,
    /// Capabilities kept (permitted, effective, inheritable, ambient, bounding).
    pub caps: u64,
    pub filter: Vec<libc::sock_filter>,
    /// The Landlock ruleset enforcing the [`WriteScope`], or why there is none (a kernel
    /// without Landlock): the child then runs without it.
    pub writes: Result<std::os::fd::OwnedFd, String>,
}

impl Policy {
    pub fn new(identity: Option<Identity>, caps: &[u32], scope: &WriteScope) -> Policy {
        Policy {
            identity,
            caps: caps.iter().fold(0u64, |m, c| m | (1u64 << c)),
            filter: seccomp_filter(),
            writes: sys::write_ruleset(scope),
        }
    }
}

/// Gives `dir` and everything under it to `id` (files kuroko created as root before, or
/// by a capture that ran as root), so the unprivileged children can use them.
pub fn give_tree(dir: &std::path::Path, id: &Identity) -> anyhow::Result<()> {
    let own = |p: &std::path::Path| {
        std::os::unix::fs::lchown(p, Some(id.uid), Some(id.gid))
            .with_context(|| format!("cannot give {} to user {}", p.display(), id.name))
    };
    own(dir)?;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let e = e?;
            let p = e.path();
            own(&p)?;
            if e.file_type()?.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(())
}

/// System calls no part of Kuroko makes, refused with EPERM.
fn denied_syscalls() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_setns,
        libc::SYS_unshare,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_quotactl,
        libc::SYS_fanotify_init,
        libc::SYS_lookup_dcookie,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fsconfig,
        libc::SYS_fspick,
        libc::SYS_mknodat,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_mknod,
        libc::SYS_uselib,
        libc::SYS_nfsservctl,
        libc::SYS_vhangup,
    ]);
    v
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
/// x32 system calls carry this bit on x86_64: another ABI, refused as a whole.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The classic-BPF seccomp program: check the architecture (kill on another), refuse
/// x32 calls, EPERM for [`denied_syscalls`], allow the rest.
pub fn seccomp_filter() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ld = BPF_LD | BPF_W | BPF_ABS;
    let mut f = vec![
        stmt(ld, 4), // seccomp_data.arch
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        stmt(ld, 0), // seccomp_data.nr
        jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    ];
    for nr in denied_syscalls() {
        f.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 1));
        f.push(stmt(
            BPF_RET | BPF_K,
            SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ));
    }
    f.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    f
}

/// Applying a [`Policy`] in the child between fork and exec.
pub mod sys {
    use super::Policy;
    use kuroko_capture::sys::process as caps;
    use std::sync::Arc;

    /// Highest capability number raised as ambient.
    const MAX_CAPABILITY: u32 = 63;

    // Landlock (linux/landlock.h). The structs are declared here, at their first ABI's
    // size: the kernel accepts a shorter `landlock_ruleset_attr` and treats what is missing
    // (network rights, scopes) as not handled.
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_uint = 1;
    const FS_WRITE_FILE: u64 = 1 << 1;
    const FS_REMOVE_DIR: u64 = 1 << 4;
    const FS_REMOVE_FILE: u64 = 1 << 5;
    const FS_MAKE_CHAR: u64 = 1 << 6;
    const FS_MAKE_DIR: u64 = 1 << 7;
    const FS_MAKE_REG: u64 = 1 << 8;
    const FS_MAKE_SOCK: u64 = 1 << 9;
    const FS_MAKE_FIFO: u64 = 1 << 10;
    const FS_MAKE_BLOCK: u64 = 1 << 11;
    const FS_MAKE_SYM: u64 = 1 << 12;
    /// ABI 2: renames and links between directories.
    const FS_REFER: u64 = 1 << 13;
    /// ABI 3: truncate(2), ftruncate(2) and O_TRUNC.
    const FS_TRUNCATE: u64 = 1 << 14;

    #[repr(C)]
    struct RulesetAttr {
        handled_access_fs: u64,
    }

    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }

    /// The write-class rights this kernel's Landlock ABI knows (every one is handled:
    /// denied unless a rule allows it), or why there is no Landlock.
    fn write_rights() -> Result<u64, String> {
        // SAFETY: with a null attribute, size 0 and the VERSION flag the call only returns
        // the ABI version; nothing is read or written.
        let abi = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                LANDLOCK_CREATE_RULESET_VERSION,
            )
        };
        if abi < 1 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENOSYS) => "the kernel has no Landlock".to_string(),
                Some(libc::EOPNOTSUPP) => "Landlock is disabled at boot (lsm=)".to_string(),
                _ => format!("Landlock: {e}"),
            });
        }
        let mut rights = FS_WRITE_FILE
            | FS_REMOVE_DIR
            | FS_REMOVE_FILE
            | FS_MAKE_CHAR
            | FS_MAKE_DIR
            | FS_MAKE_REG
            | FS_MAKE_SOCK
            | FS_MAKE_FIFO
            | FS_MAKE_BLOCK
            | FS_MAKE_SYM;
        if abi >= 2 {
            rights |= FS_REFER;
        }
        if abi >= 3 {
            rights |= FS_TRUNCATE;
        }
        Ok(rights)
    }

    /// A Landlock ruleset that allows writes only where `scope` says (made in the parent;
    /// the child enforces it in [`apply`]). Its descriptor is close-on-exec.
    pub fn write_ruleset(scope: &super::WriteScope) -> Result<std::os::fd::OwnedFd, String> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::fs::OpenOptionsExt;
        let rights = write_rights()?;
        let attr = RulesetAttr {
            handled_access_fs: rights,
        };
        // SAFETY: `attr` is a valid landlock_ruleset_attr prefix of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                std::mem::size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if fd < 0 {
            return Err(format!(
                "cannot create a Landlock ruleset: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let file_rights = rights & (FS_WRITE_FILE | FS_TRUNCATE);
        let rules = scope
            .dirs
            .iter()
            .map(|d| (d, rights))
            .chain(scope.files.iter().map(|f| (f, file_rights)));
        for (path, allowed) in rules {
            let target = match std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                .open(path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("Landlock: cannot open {}: {e}", path.display())),
            };
            let rule = PathBeneathAttr {
                allowed_access: allowed,
                parent_fd: target.as_raw_fd(),
            };
            // SAFETY: `rule` is a landlock_path_beneath_attr; `target` stays open for the
            // call (the kernel takes its own reference).
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset.as_raw_fd(),
                    LANDLOCK_RULE_PATH_BENEATH,
                    &rule as *const PathBeneathAttr,
                    0u32,
                )
            };
            if rc < 0 {
                return Err(format!(
                    "Landlock: cannot allow writes to {}: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                ));
            }
        }
        Ok(ruleset)
    }

    /// Makes `cmd`'s child drop to `policy` before it executes.
    pub fn confine(cmd: &mut std::process::Command, policy: Arc<Policy>) {
        use std::os::unix::process::CommandExt;
        // SAFETY: `apply` only makes system calls (no allocation, no locks), as pre_exec
        // requires; the closure owns `policy`, which outlives the call.
        unsafe {
            cmd.pre_exec(move || apply(&policy));
        }
    }

    fn check(rc: libc::c_long) -> std::io::Result<()> {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Drops to `policy` in the calling (single-threaded, just forked) process.
    ///
    /// # Safety
    /// Only between fork and exec (`CommandExt::pre_exec`): it must not allocate, and it
    /// changes the credentials of the whole process. `policy` must outlive the call (it
    /// is borrowed, the kernel copies the filter during the prctl).
    pub unsafe fn apply(policy: &Policy) -> std::io::Result<()> {
        let is_root = {
            // SAFETY: geteuid has no preconditions.
            unsafe { libc::geteuid() == 0 }
        };
        if is_root {
            caps::drop_bounding_except(policy.caps);
        }
        if let Some(id) = &policy.identity {
            // SAFETY: integer arguments only.
            check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) }.into())?;
            // SAFETY: a zero-length list with a null pointer is valid for setgroups.
            check(unsafe { libc::setgroups(0, std::ptr::null()) }.into())?;
            // SAFETY: integer arguments only.
            check(unsafe { libc::setresgid(id.gid, id.gid, id.gid) }.into())?;
            // SAFETY: integer arguments only.
            check(unsafe { libc::setresuid(id.uid, id.uid, id.uid) }.into())?;
        }
        caps::set_capabilities(policy.caps)?;
        for cap in 0..=MAX_CAPABILITY {
            if policy.caps & (1u64 << cap) != 0 {
                // SAFETY: integer arguments only.
                let rc = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        cap as libc::c_ulong,
                        0,
                        0,
                    )
                };
                check(rc.into())?;
            }
        }
        // SAFETY: integer arguments only.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())?;
        if let Ok(ruleset) = &policy.writes {
            use std::os::fd::AsRawFd;
            // SAFETY: integer arguments only; the ruleset descriptor is open (owned by
            // `policy`, closed at exec).
            check(unsafe {
                libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32)
            })?;
        }
        let prog = libc::sock_fprog {
            len: policy.filter.len() as u16,
            filter: policy.filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `policy.filter`, alive for the call; the kernel copies it.
        check(
            unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                    &prog as *const libc::sock_fprog,
                    0,
                    0,
                )
            }
            .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_checks_the_architecture_first_and_ends_in_allow() {
        let f = seccomp_filter();
        assert_eq!(f[0].k, 4, "loads the arch");
        assert_eq!(f[1].k, AUDIT_ARCH);
        assert_eq!(f[2].k, SECCOMP_RET_KILL_PROCESS);
        assert_eq!(f.last().unwrap().k, SECCOMP_RET_ALLOW);
        assert!(f.len() < 4096, "BPF_MAXINSNS");
        // Every denied number is followed by an EPERM return.
        let denied = denied_syscalls();
        assert!(denied.contains(&libc::SYS_ptrace) && denied.contains(&libc::SYS_mount));
        for (i, ins) in f.iter().enumerate().skip(6).step_by(2).take(denied.len()) {
            assert_eq!(ins.k, denied[(i - 6) / 2] as u32);
            assert_eq!(f[i + 1].k, SECCOMP_RET_ERRNO | libc::EPERM as u32);
        }
    }

    /// A confined child (as `kuroko run` starts them) writes beneath its data directory and
    /// nowhere else: not a file in another directory (the config disk, a USB stick), not
    /// over an existing file there, not a rename out of the data directory.
    #[test]
    fn a_confined_child_writes_beneath_its_data_directory_and_nowhere_else() {
        let data = tempfile::tempdir().unwrap();
        let config = tempfile::tempdir().unwrap();
        std::fs::write(config.path().join("technician.hash"), "old").unwrap();
        let scope = WriteScope {
            dirs: vec![data.path().to_path_buf()],
            files: vec!["/dev/null".into()],
        };
        let policy = Policy::new(None, &[], &scope);
        if let Err(why) = &policy.writes {
            // Only a kernel without Landlock (CI's and the image's have it).
            eprintln!("skipped: {why}");
            return;
        }
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(
                "echo in > \"$1/in\"; echo x > \"$1/moved\"; echo > /dev/null || exit 9; \
                 echo new > \"$2/new\"; echo over > \"$2/technician.hash\"; \
                 mv \"$1/moved\" \"$2/moved\"; mkdir \"$2/d\"; exit 0",
            )
            .arg("sh")
            .arg(data.path())
            .arg(config.path());
        sys::confine(&mut cmd, std::sync::Arc::new(policy));
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(data.path().join("in")).unwrap(),
            "in\n"
        );
        assert!(
            data.path().join("moved").exists(),
            "the rename out was refused"
        );
        let c = config.path();
        assert!(!c.join("new").exists() && !c.join("moved").exists() && !c.join("d").exists());
        assert_eq!(
            std::fs::read_to_string(c.join("technician.hash")).unwrap(),
            "old"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Permission denied"), "{err}");
    }

    #[test]
    fn a_missing_user_is_an_error_unless_root_is_allowed() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let e = resolve("kuroko-no-such-user", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not exist") && e.contains("--allow-root-children"),
            "{e}"
        );
        assert_eq!(
            resolve("kuroko-no-such-user", true).unwrap().unwrap().uid,
            0
        );
        assert_eq!(resolve("root", false).unwrap().unwrap().uid, 0);
    }
}
