//! Kernel and boot hardening of the appliance image: the sysctl values, the kernel command
//! line, what init must not do, and how a USB stick is mounted.
//!
//! Why: the box sits at a customer's site with a serial port, USB ports and a keyboard
//! connector anyone can reach. A BREAK on the serial console (magic SysRq) could reboot it or
//! remount its disks; Ctrl-Alt-Del on any USB keyboard rebooted it; a root that fails to
//! mount dropped to an unauthenticated initramfs shell (no `panic=`); kernel pointers and the
//! kernel log helped an attacker who got code running as the `kuroko` user.
//!
//! This module is the one place that says what the image sets. The image carries the
//! sysctl file ([`sysctl_conf`], `image/rootfs/etc/sysctl.d/90-kuroko.conf`, applied first
//! thing by rcS), the qemu board's command line carries [`KERNEL_CMDLINE`], and inittab has
//! no `ctrlaltdel` action ([`inittab_problems`]); the tests below compare the image's files
//! with this module, so they cannot drift apart.

use std::path::Path;

/// Each sysctl the image sets: key, value, why.
pub const SYSCTLS: &[(&str, &str, &str)] = &[
    (
        "kernel.sysrq",
        "0",
        "no magic SysRq: a BREAK on the serial line must not reboot, sync or remount",
    ),
    (
        "kernel.ctrl-alt-del",
        "0",
        "Ctrl-Alt-Del goes to init as a signal, and init has no action for it",
    ),
    (
        "kernel.panic",
        "10",
        "after a panic, reboot in 10 s (the appliance comes back by itself)",
    ),
    (
        "kernel.panic_on_oops",
        "1",
        "an oops is a panic: no half-working kernel keeps customer data in memory",
    ),
    (
        "kernel.kptr_restrict",
        "2",
        "no kernel addresses in /proc, even for root",
    ),
    (
        "kernel.dmesg_restrict",
        "1",
        "the kernel log only for CAP_SYSLOG",
    ),
    (
        "kernel.yama.ptrace_scope",
        "3",
        "no process may trace another (there is no debugger on the box)",
    ),
    (
        "kernel.perf_event_paranoid",
        "3",
        "no performance events for unprivileged processes",
    ),
    (
        "kernel.unprivileged_bpf_disabled",
        "1",
        "no eBPF for unprivileged processes",
    ),
    ("net.core.bpf_jit_harden", "2", "hardened BPF JIT"),
    (
        "kernel.kexec_load_disabled",
        "1",
        "no other kernel can be loaded at run time",
    ),
    (
        "fs.suid_dumpable",
        "0",
        "no core dump of a process that changed its credentials",
    ),
    (
        "fs.protected_symlinks",
        "1",
        "no symlink games in sticky directories",
    ),
    (
        "fs.protected_hardlinks",
        "1",
        "no hard links to files one cannot write",
    ),
    (
        "fs.protected_fifos",
        "2",
        "no FIFO traps in sticky directories",
    ),
    (
        "fs.protected_regular",
        "2",
        "no file traps in sticky directories",
    ),
];

/// Kernel command line words every appliance boot carries: reboot 10 s after a panic (also
/// the initramfs's own panic, which otherwise drops to a root shell on the console), an
/// oops is a panic, and SysRq off from the first instruction (the sysctl file applies only
/// once rcS runs).
pub const KERNEL_CMDLINE: &str = "panic=10 oops=panic sysctl.kernel.sysrq=0";

/// Mount options for a USB stick (export, certificate of erasure): nothing on it can run
/// or be a device, and no setuid bit counts.
pub const USB_MOUNT_OPTIONS: &str = "nosuid,nodev,noexec,noatime";

/// The sysctl file of the image (`sysctl -p` format), generated from [`SYSCTLS`].
pub fn sysctl_conf() -> String {
    let mut s = String::from(
        "# Kuroko appliance kernel hardening; generated from board/src/hardening.rs\n\
         # (its tests check that this file matches). Applied by rcS with `sysctl -p`.\n",
    );
    for (k, v, why) in SYSCTLS {
        s.push_str(&format!("# {why}\n{k} = {v}\n"));
    }
    s
}

/// What is wrong with an inittab for the appliance: a `ctrlaltdel` action (a USB keyboard
/// would reboot the box), and any action that starts a login shell.
pub fn inittab_problems(inittab: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in inittab.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.splitn(4, ':').collect();
        let action = fields.get(2).copied().unwrap_or("");
        let process = fields.get(3).copied().unwrap_or("");
        if action == "ctrlaltdel" {
            out.push(format!("line {}: a ctrlaltdel action ({line})", n + 1));
        }
        if ["getty", "/bin/sh", "/bin/login", "-/bin/sh"]
            .iter()
            .any(|p| process.contains(p))
        {
            out.push(format!("line {}: a login or shell ({line})", n + 1));
        }
    }
    out
}

/// The words of [`KERNEL_CMDLINE`] missing from `cmdline`.
pub fn cmdline_missing(cmdline: &str) -> Vec<&'static str> {
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    KERNEL_CMDLINE
        .split_whitespace()
        .filter(|w| !words.contains(w))
        .collect()
}

/// Reads each of [`SYSCTLS`] from a `/proc/sys` tree; the ones whose value differs (or that
/// cannot be read), as `key = found (want value)`.
pub fn sysctl_differences(proc_sys: &Path) -> Vec<String> {
    SYSCTLS
        .iter()
        .filter_map(|(k, v, _)| {
            let path = proc_sys.join(k.replace('.', "/"));
            match std::fs::read_to_string(&path) {
                Ok(found) if found.trim() == *v => None,
                Ok(found) => Some(format!("{k} = {} (want {v})", found.trim())),
                Err(e) => Some(format!("{k}: {e} (want {v})")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_file(rel: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn the_image_sysctl_file_is_the_generated_one() {
        assert_eq!(
            image_file("image/rootfs/etc/sysctl.d/90-kuroko.conf"),
            sysctl_conf(),
            "regenerate image/rootfs/etc/sysctl.d/90-kuroko.conf from board/src/hardening.rs"
        );
        let conf = sysctl_conf();
        for want in [
            "kernel.sysrq = 0",
            "kernel.panic = 10",
            "kernel.panic_on_oops = 1",
            "kernel.kptr_restrict = 2",
            "kernel.dmesg_restrict = 1",
            "kernel.yama.ptrace_scope = 3",
            "fs.suid_dumpable = 0",
        ] {
            assert!(conf.lines().any(|l| l == want), "{want}");
        }
    }

    #[test]
    fn rcs_applies_the_sysctl_file_before_the_disks_and_the_network() {
        let rcs = image_file("image/rootfs/etc/init.d/rcS");
        let at = rcs
            .find("sysctl -q -p /etc/sysctl.d/90-kuroko.conf")
            .expect("rcS applies the sysctl file");
        assert!(at < rcs.find("prepare_disk vdb").unwrap());
        assert!(at < rcs.find("kuroko setup --boot").unwrap());
    }

    #[test]
    fn the_image_inittab_has_no_ctrlaltdel_and_no_shell() {
        assert_eq!(
            inittab_problems(&image_file("image/rootfs/etc/inittab")),
            Vec::<String>::new()
        );
        // The check itself catches what was there before.
        let old = "::sysinit:/etc/init.d/rcS\n::ctrlaltdel:/bin/busybox reboot\nttyS0::respawn:/sbin/getty -L ttyS0 115200\n";
        assert_eq!(
            inittab_problems(old).len(),
            2,
            "{:?}",
            inittab_problems(old)
        );
    }

    #[test]
    fn the_qemu_board_boots_with_the_hardening_words() {
        let qemu = image_file("xtask/src/qemu.rs");
        let line = qemu
            .lines()
            .find(|l| l.contains("console=ttyS0") && l.contains("root=/dev/vda"))
            .expect("the qemu board's -append line");
        let quoted = line.split('"').nth(1).unwrap_or("");
        assert_eq!(cmdline_missing(quoted), Vec::<&str>::new(), "{line}");
        assert_eq!(
            cmdline_missing("console=ttyS0 panic=5"),
            vec!["panic=10", "oops=panic", "sysctl.kernel.sysrq=0"]
        );
    }

    #[test]
    fn differences_are_read_from_a_proc_sys_tree() {
        let tmp = tempfile::tempdir().unwrap();
        for (k, v, _) in SYSCTLS {
            let p = tmp.path().join(k.replace('.', "/"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("{v}\n")).unwrap();
        }
        assert!(sysctl_differences(tmp.path()).is_empty());
        std::fs::write(tmp.path().join("kernel/sysrq"), "438\n").unwrap();
        assert_eq!(
            sysctl_differences(tmp.path()),
            vec!["kernel.sysrq = 438 (want 0)"]
        );
    }
}
