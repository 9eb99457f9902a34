//! `cargo xtask qemu`: boots the appliance image on the qemu board.
//!
//! The board (`board/profiles/qemu.toml`): virtio disks vda (root slot A, mounted read-only),
//! vdb (config), vdc (data), vdd (root slot B, written by `update`); eth1 capture on a tap device in a network namespace `kq-<pid>` ("the wire").
//! The wire's bridge forwards every frame to every port (ageing time 0, like a hub or a
//! mirror port), and two more namespaces hang on it as hosts: `kq-<pid>-a` (10.99.0.1) and
//! `kq-<pid>-b` (10.99.0.2), so traffic between them is what the capture NIC sees. eth0
//! management is on a second tap in the same namespace, bridged to the management LAN: a
//! host namespace `kq-<pid>-m` (192.168.77.2/24) where a test can run what the customer's
//! LAN holds (the qemu test runs a rogue DHCP server there). Nothing on that LAN answers
//! DHCP unless a test starts a server. The serial console (ttyS0) is on stdio; the kernel is
//! booted directly (`-kernel/-initrd/-append`). Everything made here is removed on exit
//! (Drop guards: qemu killed by PID, namespaces deleted, which deletes their links).

use crate::image;
use crate::util::root;
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The capture wire's addresses (the two host namespaces on it).
pub const HOST_A: &str = "10.99.0.1";
pub const HOST_B: &str = "10.99.0.2";
/// The management LAN's host namespace (`kq-<pid>-m`) holds this address, on 192.168.77.0/24.
pub const MGMT_LAN_HOST: &str = "192.168.77.2";
/// The management NIC's MAC (`-device virtio-net-pci,netdev=mgmt`).
pub const MGMT_MAC: &str = "52:54:00:6b:00:01";
/// The line the image's `kuroko-run` wrapper writes to the console once capture holds the store.
pub const CAPTURING_MARK: &str = "kuroko-run: capturing";

#[derive(clap::Args)]
pub struct Args {
    /// The directory `cargo xtask image` wrote.
    #[arg(long, default_value = "target/image")]
    pub image: PathBuf,
    /// Write this kuroko.toml onto the config disk when it is blank (first boot captures at once).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Start with blank config and data disks (the appliance's state is lost).
    #[arg(long)]
    pub fresh_disks: bool,
    /// Power the VM off once it reports capturing (prints the boot-to-capturing time).
    #[arg(long)]
    pub exit_when_capturing: bool,
    /// Accelerator: `kvm`, `tcg` (emulation), or `auto`: KVM when /dev/kvm exists and can run
    /// the image's kernel (not on a PVM host, see [`kvm_unusable`]), falling back to TCG when
    /// the kernel prints nothing within KVM_BOOT_PROBE_SECS.
    #[arg(long, default_value = "auto")]
    pub accel: Accel,
    /// Power the VM off after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

/// How long `--accel auto` waits for the guest kernel's first line under KVM.
pub const KVM_BOOT_PROBE_SECS: u64 = 30;
/// The guest kernel's first console line.
pub const KERNEL_MARK: &str = "Linux version";

/// Why KVM cannot run the image in `dir` on this host, or `None` when it should.
///
/// Some cloud VMs offer nested virtualisation through PVM (pagetable-based virtual machine,
/// the `kvm_pvm` module, no `kvm_intel`/`kvm_amd` and no vmx/svm CPU flag): /dev/kvm exists,
/// but the guest runs in the host's user mode and only a kernel built as a PVM guest
/// (`CONFIG_PVM_GUEST`) boots at native speed. A stock kernel is emulated instruction by
/// instruction from its first privileged one: measured on such a host, Debian's kernel was
/// still in its decompressor after 5 minutes (TCG reaches the login prompt in ~30 s).
pub fn kvm_unusable(dir: &Path) -> Option<String> {
    if !Path::new("/dev/kvm").exists() {
        return Some("no /dev/kvm".into());
    }
    let module = |m: &str| Path::new("/sys/module").join(m).exists();
    // For testing the 30 s probe and TCG fallback on a PVM host.
    let skip_check = std::env::var_os("KUROKO_QEMU_SKIP_PVM_CHECK").is_some();
    if !skip_check && module("kvm_pvm") && !module("kvm_intel") && !module("kvm_amd") {
        let pvm_guest = kernel_config(dir).is_some_and(|c| {
            c.lines()
                .any(|l| l.trim() == "CONFIG_PVM_GUEST=y" || l.trim() == "CONFIG_PVM_GUEST=m")
        });
        if !pvm_guest {
            return Some(
                "this host's KVM is PVM (kvm_pvm loaded, no kvm_intel/kvm_amd): it runs only \
                 kernels built as PVM guests (CONFIG_PVM_GUEST), and the image's Debian kernel \
                 is not one"
                    .into(),
            );
        }
    }
    None
}

/// The image kernel's build config (`rootfs/boot/config-*` next to the image).
fn kernel_config(dir: &Path) -> Option<String> {
    let boot = dir.join("rootfs/boot");
    std::fs::read_dir(&boot)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("config-"))
        .and_then(|e| std::fs::read_to_string(e.path()).ok())
}

/// Whether to start under KVM for `accel`, saying why not when `auto` picks TCG.
pub fn use_kvm(accel: Accel, dir: &Path) -> bool {
    match accel {
        Accel::Kvm => true,
        Accel::Tcg => false,
        Accel::Auto => match kvm_unusable(dir) {
            None => true,
            Some(why) => {
                eprintln!("qemu: TCG emulation: {why}");
                false
            }
        },
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// Deletes the namespaces on drop (their veths, bridges and taps go with them).
pub struct Wire {
    /// The namespace qemu runs in, with both taps and both bridges.
    pub ns: String,
    /// The capture NIC's tap (eth1), on the wire's bridge `kqbr0`.
    pub tap: String,
    /// The capture wire's two hosts.
    pub hosts: [String; 2],
    /// The management NIC's tap (eth0), on the management LAN's bridge `kqbr1`.
    pub mgmt_tap: String,
    /// The management LAN's host namespace (its `eth0` holds [`MGMT_LAN_HOST`]).
    pub mgmt_host: String,
}

impl Wire {
    pub fn create() -> anyhow::Result<Wire> {
        sweep_stale_wires();
        let pid = std::process::id();
        let ns = format!("kq-{pid}");
        let wire = Wire {
            ns: ns.clone(),
            tap: "kqtap0".into(),
            hosts: [format!("{ns}-a"), format!("{ns}-b")],
            mgmt_tap: "kqtap1".into(),
            mgmt_host: format!("{ns}-m"),
        };
        // From here on, Drop cleans up whatever part was made.
        ip(&["netns", "add", &wire.ns])?;
        for h in wire.hosts.iter().chain([&wire.mgmt_host]) {
            ip(&["netns", "add", h])?;
        }
        let inns = |args: &[&str]| -> anyhow::Result<()> {
            let mut v = vec!["-n", &wire.ns];
            v.extend_from_slice(args);
            ip(&v)
        };
        inns(&["link", "set", "lo", "up"])?;
        inns(&[
            "link",
            "add",
            "kqbr0",
            "type",
            "bridge",
            "ageing_time",
            "0",
            "stp_state",
            "0",
        ])?;
        inns(&["tuntap", "add", "dev", &wire.tap, "mode", "tap"])?;
        inns(&["link", "set", &wire.tap, "master", "kqbr0"])?;
        inns(&["link", "set", &wire.tap, "up"])?;
        for (i, (h, addr)) in wire.hosts.iter().zip([HOST_A, HOST_B]).enumerate() {
            let port = format!("kqp{i}");
            inns(&[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", h,
            ])?;
            inns(&["link", "set", &port, "master", "kqbr0"])?;
            inns(&["link", "set", &port, "up"])?;
            ip(&["-n", h, "link", "set", "lo", "up"])?;
            ip(&["-n", h, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            ip(&["-n", h, "link", "set", "eth0", "up"])?;
        }
        inns(&["link", "set", "kqbr0", "up"])?;
        // The management LAN: the eth0 tap and the LAN's host on a bridge of their own.
        inns(&["link", "add", "kqbr1", "type", "bridge", "stp_state", "0"])?;
        inns(&["tuntap", "add", "dev", &wire.mgmt_tap, "mode", "tap"])?;
        inns(&["link", "set", &wire.mgmt_tap, "master", "kqbr1"])?;
        inns(&["link", "set", &wire.mgmt_tap, "up"])?;
        let m = &wire.mgmt_host;
        inns(&[
            "link", "add", "kqm0", "type", "veth", "peer", "name", "eth0", "netns", m,
        ])?;
        inns(&["link", "set", "kqm0", "master", "kqbr1"])?;
        inns(&["link", "set", "kqm0", "up"])?;
        ip(&["-n", m, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            m,
            "addr",
            "add",
            &format!("{MGMT_LAN_HOST}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", m, "link", "set", "eth0", "up"])?;
        inns(&["link", "set", "kqbr1", "up"])?;
        Ok(wire)
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.mgmt_host, &self.ns]) {
            delete_netns(ns);
        }
    }
}

/// Kills what still runs in a namespace of ours (qemu, telnetd: started by this xtask in
/// it), by PID, then deletes the namespace, which deletes its links.
fn delete_netns(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if pid.parse::<u32>().is_ok_and(|p| p != std::process::id()) {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(Stdio::null())
        .status();
}

/// Removes the wires an earlier run left when it was killed before its Drop ran (SIGKILL,
/// a CI timeout): namespaces named `kq-<pid>`, `kq-<pid>-a`, `kq-<pid>-b`, `kq-<pid>-m`
/// whose `<pid>` no longer exists, with the processes (qemu, dnsmasq) still running in them.
fn sweep_stale_wires() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix("kq-") else {
            continue;
        };
        let pid = rest
            .strip_suffix("-a")
            .or_else(|| rest.strip_suffix("-b"))
            .or_else(|| rest.strip_suffix("-m"))
            .unwrap_or(rest);
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            eprintln!("qemu: removing the stale wire namespace {name} (its xtask {pid} is gone)");
            delete_netns(name);
        }
    }
}

pub(crate) fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run ip (apt-get install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Kills qemu by PID on drop (a hard power-off) and reaps it.
pub struct Vm {
    pub child: Child,
    pub started: Instant,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The image files qemu needs, checked.
pub struct ImageFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub root: PathBuf,
    pub config: PathBuf,
    pub data: PathBuf,
    /// Root slot B (vdd, added last so vdb/vdc stay config/data): written by `update`.
    pub slot_b: PathBuf,
    /// `-no-reboot` (default): a reboot or panic ends qemu. Off for the update boots, where
    /// a reboot must boot the board again as real hardware would.
    pub exit_on_reboot: bool,
    /// Appended to the kernel command line (the qemu-test's `--break-rollback`).
    pub cmdline_extra: String,
}

impl ImageFiles {
    pub fn at(dir: &Path) -> anyhow::Result<ImageFiles> {
        let f = ImageFiles {
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.img"),
            root: dir.join("root.img"),
            config: dir.join("config.img"),
            data: dir.join("data.img"),
            slot_b: dir.join("root-b.img"),
            exit_on_reboot: true,
            cmdline_extra: String::new(),
        };
        for p in [&f.kernel, &f.initrd, &f.root, &f.slot_b] {
            if !p.is_file() {
                bail!(
                    "{} is missing: build the image first with `cargo xtask image --out {}`",
                    p.display(),
                    dir.display()
                );
            }
        }
        Ok(f)
    }
}

/// The board's kernel command line. panic=10 oops=panic sysctl.kernel.sysrq=0:
/// board/src/hardening.rs (its test reads this line). root= is slot A; the initramfs
/// (`kuroko-slot`) picks the slot to boot from the boot state on the config disk.
const KERNEL_CMDLINE: &str = "console=ttyS0,115200 root=/dev/vda ro rootfstype=ext4 net.ifnames=0 panic=10 oops=panic sysctl.kernel.sysrq=0 kuroko.slot_a=/dev/vda kuroko.slot_b=/dev/vdd";

/// The qemu command line for the board; `serial` is `mon:stdio` or a chardev spec.
pub fn qemu_command(img: &ImageFiles, wire: &Wire, serial: &str, kvm: bool) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &wire.ns, "qemu-system-x86_64"]);
    if kvm {
        c.arg("-enable-kvm");
    }
    let drive = |p: &Path, extra: &str| format!("file={},if=virtio,format=raw{extra}", p.display());
    c.args(["-m", "1024", "-smp", "2", "-nographic"]);
    if img.exit_on_reboot {
        c.arg("-no-reboot");
    }
    c.args(["-serial", serial, "-monitor", "none"])
        .arg("-kernel")
        .arg(&img.kernel)
        .arg("-initrd")
        .arg(&img.initrd)
        .args([
            "-append",
            format!("{KERNEL_CMDLINE} {}", img.cmdline_extra).trim_end(),
        ])
        // Both slots writable: `update` writes the one not running (the running root is
        // mounted read-only by the kernel, and `update` refuses to write the mounted root).
        .args(["-drive", &drive(&img.root, "")])
        .args(["-drive", &drive(&img.config, "")])
        .args(["-drive", &drive(&img.data, "")])
        .args(["-drive", &drive(&img.slot_b, "")])
        .args(["-device", "i6300esb", "-action", "watchdog=reset"])
        // eth0: management, the tap on the management LAN.
        .args([
            "-netdev",
            &format!(
                "tap,id=mgmt,ifname={},script=no,downscript=no",
                wire.mgmt_tap
            ),
        ])
        .args([
            "-device",
            &format!("virtio-net-pci,netdev=mgmt,mac={MGMT_MAC},romfile="),
        ])
        // eth1: capture, the tap on the wire.
        .args([
            "-netdev",
            &format!("tap,id=cap,ifname={},script=no,downscript=no", wire.tap),
        ])
        .args([
            "-device",
            "virtio-net-pci,netdev=cap,mac=52:54:00:6b:00:02,romfile=",
        ]);
    c
}

/// Writes `config` as `kuroko.toml` onto the config disk when the disk is blank.
pub fn seed_config(disk: &Path, config: &Path) -> anyhow::Result<bool> {
    if !is_blank(disk)? {
        return Ok(false);
    }
    let dir = root().join("target/image-cache/config-seed");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(config, dir.join("kuroko.toml"))
        .with_context(|| format!("cannot read {}", config.display()))?;
    let size = std::fs::metadata(disk)?.len();
    crate::util::run(
        Command::new("mke2fs")
            .args([
                "-q",
                "-F",
                "-t",
                "ext4",
                "-m",
                "0",
                "-L",
                "kuroko-config",
                "-d",
            ])
            .arg(&dir)
            .arg(disk)
            .arg(format!("{}k", size / 1024)),
    )?;
    // mke2fs -d may leave the file shorter than the disk; keep the disk's size.
    std::fs::OpenOptions::new()
        .write(true)
        .open(disk)?
        .set_len(size)?;
    Ok(true)
}

fn is_blank(disk: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(disk).with_context(|| format!("cannot open {}", disk.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let n = f.read(&mut buf)?;
    Ok(buf[..n].iter().all(|&b| b == 0))
}

pub fn run_qemu(args: Args) -> anyhow::Result<()> {
    if !crate::util::is_root() {
        bail!("`cargo xtask qemu` needs root (network namespaces and a tap device)");
    }
    if image::which("qemu-system-x86_64").is_none() {
        bail!("qemu-system-x86_64 is missing: apt-get install -y qemu-system-x86");
    }
    let dir = root().join(&args.image);
    let img = ImageFiles::at(&dir)?;
    if args.fresh_disks || !img.data.exists() {
        image::blank_disk(&img.data, image::DATA_DISK_BYTES)?;
    }
    if args.fresh_disks || !img.config.exists() {
        // A new config disk is a newly provisioned unit: a new setup token on its label.
        image::blank_disk(&img.config, image::CONFIG_DISK_BYTES)?;
        let cfg = args.config.as_ref().map(|c| root().join(c));
        image::provision_config_disk(
            &image::release_kuroko(),
            &img.config,
            &dir.join(image::LABEL_FILE),
            cfg.as_deref(),
        )?;
        eprintln!(
            "qemu: new config disk; its setup token is in {}",
            dir.join(image::LABEL_FILE).display()
        );
        if let Some(c) = &args.config {
            eprintln!("qemu: wrote {} onto the new config disk", c.display());
        }
    } else if let Some(cfg) = &args.config {
        if seed_config(&img.config, &root().join(cfg))? {
            eprintln!("qemu: wrote {} onto the blank config disk", cfg.display());
        } else {
            eprintln!("qemu: the config disk is not blank; --config ignored (use --fresh-disks)");
        }
    }
    let wire = Wire::create().context("cannot make the capture wire")?;
    eprintln!(
        "qemu: capture wire in netns {ns}: hosts {a} (netns {na}) and {b} (netns {nb}); e.g.\n\
         \x20 ip netns exec {nb} busybox telnetd -F -p 23 -l /bin/sh &\n\
         \x20 ip netns exec {na} telnet {b}\n\
         management LAN (eth0): netns {nm} holds {m}/24 (no DHCP server unless you start one)\n\
         serial console below (Ctrl-A X quits qemu)",
        ns = wire.ns,
        a = HOST_A,
        b = HOST_B,
        na = wire.hosts[0],
        nb = wire.hosts[1],
        nm = wire.mgmt_host,
        m = MGMT_LAN_HOST,
    );
    let mut kvm = use_kvm(args.accel, &dir);
    let (boot_to_capturing, vm) = loop {
        eprintln!(
            "qemu: starting ({})",
            if kvm { "KVM" } else { "TCG emulation" }
        );
        match boot(&img, &wire, kvm, &args)? {
            // Only returned under `--accel auto` with KVM: the next try is TCG.
            Boot::KernelSilent => {
                eprintln!(
                    "\r\nqemu: no kernel output in {KVM_BOOT_PROBE_SECS} s under KVM (nested KVM?); \
                     retrying with TCG emulation (--accel tcg skips this probe)"
                );
                kvm = false;
            }
            Boot::Done(d, vm) => break (d, vm),
        }
    };
    drop(vm);
    drop(wire);
    if let Some(d) = boot_to_capturing {
        println!("boot to capturing: {:.1} s", d.as_secs_f64());
    }
    if args.exit_when_capturing && boot_to_capturing.is_none() {
        bail!("the appliance never reported capturing");
    }
    Ok(())
}

enum Boot {
    /// `--accel auto` under KVM: the kernel said nothing in time (the VM is already killed).
    KernelSilent,
    /// The VM ran until the end asked for; the boot-to-capturing time if it got there.
    Done(Option<Duration>, Vm),
}

enum Console {
    Kernel,
    Capturing(Duration),
}

/// Starts qemu, copies its console to stdout and waits for the end `args` asks for.
fn boot(img: &ImageFiles, wire: &Wire, kvm: bool, args: &Args) -> anyhow::Result<Boot> {
    let mut cmd = qemu_command(img, wire, "mon:stdio", kvm);
    cmd.stdout(Stdio::piped());
    let child = cmd.spawn().context("cannot start qemu")?;
    let mut vm = Vm {
        child,
        started: Instant::now(),
    };
    let stdout = vm.child.stdout.take().expect("piped");
    // The console goes to our stdout; a reader thread reports the lines that matter.
    let (tx, rx) = std::sync::mpsc::channel::<Console>();
    let started = vm.started;
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut out = std::io::stdout();
        while r.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let _ = out.write_all(&line);
            let _ = out.flush();
            let text = String::from_utf8_lossy(&line);
            if text.contains(KERNEL_MARK) {
                let _ = tx.send(Console::Kernel);
            }
            if text.contains(CAPTURING_MARK) {
                let _ = tx.send(Console::Capturing(started.elapsed()));
            }
            line.clear();
        }
    });
    let probe = (args.accel == Accel::Auto && kvm)
        .then(|| started + Duration::from_secs(KVM_BOOT_PROBE_SECS));
    let deadline = args.timeout.map(|s| started + Duration::from_secs(s));
    let mut kernel_seen = false;
    let mut boot_to_capturing = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Console::Kernel) => kernel_seen = true,
            Ok(Console::Capturing(d)) => {
                boot_to_capturing.get_or_insert(d);
                eprintln!(
                    "\r\nqemu: boot to capturing: {:.1} s from qemu start",
                    d.as_secs_f64()
                );
                if args.exit_when_capturing {
                    break;
                }
            }
            Err(_) => {}
        }
        if !kernel_seen && probe.is_some_and(|p| Instant::now() >= p) {
            drop(vm);
            return Ok(Boot::KernelSilent);
        }
        if let Some(status) = vm.child.try_wait()? {
            eprintln!("qemu: exited ({status})");
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            eprintln!("\r\nqemu: --timeout reached, powering off");
            break;
        }
    }
    Ok(Boot::Done(boot_to_capturing, vm))
}
