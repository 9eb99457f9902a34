//! `cargo xtask qemu-test`: the appliance end to end on the qemu board.
//!
//! Builds the image (cached base), boots it with blank config and data disks and the serial
//! console on a unix socket, drives `kuroko setup` over it (first-boot password, capture
//! port, internal networks, self-test: the children's uid, capabilities, NoNewPrivs and
//! seccomp and the file modes under /data and /config read back on the running box),
//! waits until the appliance reports capturing, runs a
//! Telnet session between the two host namespaces on the capture wire, lets the analyzer
//! catch up, reads `findings` over the serial console (the `telnet_use` finding must be
//! listed), powers the VM off hard (qemu killed) and checks the disks as a thief would: the
//! data disk is LUKS2 ciphertext without the Telnet session's text anywhere, its key on the
//! config disk (read with `debugfs`, no mount); boots again, opens the encrypted disk and
//! finds the store and the finding intact. On that second boot a USB stick (a FAT image on
//! qemu's xHCI `usb-storage`) is plugged in: `export` writes the findings bundle to it,
//! encrypted to the consultant's age recipient set at the first boot, and `decommission`
//! erases the box and writes the certificate of erasure to it. Then, with the VM off: the
//! bundle on the stick decrypts with the consultant's key (and the stick holds no plaintext
//! of the Telnet session), the certificate says the data disk was crypto-erased, the data
//! disk's LUKS2 header has no keyslot left and the config disk no key and no config.
//! A third, short boot checks the NVMe SMART / Health log path on qemu's emulated NVMe drive
//! ([`nvme_health`]).
//! `cargo xtask test` runs it after the workspace tests (CI does); the boot times it measured
//! are printed at the end and written to `<image>/QEMU-TEST`.

mod update;

use crate::qemu::{self, HOST_B, ImageFiles, Vm, Wire};
use crate::util::root;
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bounds on each wait (TCG emulation on a shared 2-core host is slow).
const BOOT_SECS: u64 = 240;
const PROMPT_SECS: u64 = 60;
const CAPTURING_SECS: u64 = 120;
/// Time the analyzer gets to turn the Telnet session into a finding before the power-off.
const ANALYZE_SECS: u64 = 45;
const PASSWORD: &str = "qemu-test-technician";
/// Typed in the Telnet session on the capture wire: stored by the box, never readable on
/// its data disk without the key.
const TELNET_MARK: &str = "kuroko-telnet-test";
/// The LUKS2 header's magic at offset 0 of an encrypted disk.
const LUKS_MAGIC: &[u8] = b"LUKS\xba\xbe";
/// Export and decommission over TCG (software AES, overwriting every stored byte).
const ERASE_SECS: u64 = 600;
/// The consultant's USB stick: a FAT file system on the whole device, as many sticks are.
const USB_STICK_BYTES: u64 = 64 << 20;

#[derive(clap::Args)]
pub struct Args {
    /// Where the image is built and booted from.
    #[arg(long, default_value = "target/image-test")]
    pub image: PathBuf,
    /// Accelerator, as for `cargo xtask qemu`.
    #[arg(long, default_value = "auto")]
    pub accel: qemu::Accel,
    /// Only the NVMe health boot, after the image build (for working on it; CI runs all).
    #[arg(long)]
    pub nvme_only: bool,
    /// Configure the management port for DHCP (`set address dhcp`) instead of the static
    /// address: the rogue DHCP server then moves the box, and the test must fail on it
    /// (for seeing that the check can fail; CI runs without it).
    #[arg(long)]
    pub management_dhcp: bool,
    /// Only the A/B update boots, after the image build (for working on them; CI runs all).
    #[arg(long)]
    pub update_only: bool,
    /// Boot the update test with `kuroko.rollback=off`: the initramfs keeps booting the
    /// broken slot, and the test must fail on it (to see that the rollback check can fail).
    #[arg(long)]
    pub break_rollback: bool,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            image: PathBuf::from("target/image-test"),
            accel: qemu::Accel::Auto,
            nvme_only: false,
            management_dhcp: false,
            update_only: false,
            break_rollback: false,
        }
    }
}

/// The serial console: everything read so far, and the socket to write to.
struct Serial {
    seen: Arc<Mutex<String>>,
    out: UnixStream,
    /// Where in `seen` the next `expect` starts looking.
    mark: usize,
}

impl Serial {
    fn connect(path: &Path) -> anyhow::Result<Serial> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("no serial socket {}", path.display()));
                }
            }
        };
        let seen = Arc::new(Mutex::new(String::new()));
        let (mut r, s2) = (stream.try_clone()?, seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdout = std::io::stdout();
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = stdout.write_all(&buf[..n]);
                let _ = stdout.flush();
                if let Ok(mut s) = s2.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Ok(Serial {
            seen,
            out: stream,
            mark: 0,
        })
    }

    /// Waits for `what` after the last match; returns the text up to and including it.
    fn expect(&mut self, what: &str, secs: u64) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            {
                let s = self
                    .seen
                    .lock()
                    .map_err(|_| anyhow::anyhow!("serial reader died"))?;
                if let Some(i) = s[self.mark..].find(what) {
                    let end = self.mark + i + what.len();
                    let text = s[self.mark..end].to_string();
                    self.mark = end;
                    return Ok(text);
                }
            }
            if Instant::now() >= deadline {
                bail!("serial console: no `{what}` within {secs} s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\r")?;
        Ok(())
    }

    /// Sends a shell command and returns its output up to the next prompt.
    fn command(&mut self, line: &str, secs: u64) -> anyhow::Result<String> {
        self.send(line)?;
        self.expect("kuroko> ", secs)
    }

    /// Claims a fresh box at the `setup token: ` prompt: the label's token, then the
    /// technician password twice, up to the shell's prompt.
    fn claim(&mut self, token: &str) -> anyhow::Result<()> {
        self.send(token)?;
        self.expect("new password: ", PROMPT_SECS)?;
        self.send(PASSWORD)?;
        self.expect("again: ", PROMPT_SECS)?;
        self.send(PASSWORD)?;
        self.expect("kuroko> ", PROMPT_SECS)?;
        Ok(())
    }
}

/// A process in a host namespace, killed by PID on drop.
struct NsProcess(Child);

impl Drop for NsProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !crate::util::is_root() {
        bail!("`cargo xtask qemu-test` needs root (network namespaces, tap, debootstrap)");
    }
    crate::image::run_image(crate::image::Args {
        fresh_disks: true,
        ..crate::image::Args::at(args.image.clone())
    })?;
    let dir = root().join(&args.image);
    let img = ImageFiles::at(&dir)?;
    if args.nvme_only {
        let kvm = qemu::use_kvm(args.accel, &dir);
        println!("{}", nvme_health(&img, &dir, kvm)?);
        return Ok(());
    }
    let wire = Wire::create().context("cannot make the capture wire")?;
    if args.update_only {
        let kvm = qemu::use_kvm(args.accel, &dir);
        println!("{}", update::run(&dir, &wire, kvm, args.break_rollback)?);
        return Ok(());
    }
    // The rogue DHCP server on the management LAN, and the recording of the management
    // tap, from before the first boot to after the second.
    let rogue_started = Instant::now();
    let mut rogue = crate::rogue_dhcp::Rogue::start(&wire, &dir)?;
    let mut rogue_secs = rogue_started.elapsed().as_secs_f64();
    let sock = dir.join("serial.sock");
    let mut kvm = qemu::use_kvm(args.accel, &dir);
    let (vm, mut con) = start_probed(&img, &wire, &sock, &mut kvm, args.accel)?;
    let started = vm.started;
    let rogue_started = Instant::now();
    rogue.check_answers(&wire, &dir)?;
    rogue_secs += rogue_started.elapsed().as_secs_f64();
    eprintln!(
        "\nqemu-test: the rogue DHCP server on the management LAN answers ({})",
        rogue.lease
    );
    let mut times = Times {
        accel: if kvm { "KVM" } else { "TCG emulation" },
        ..Times::default()
    };

    // First boot: the box is claimed with the setup token from its label (a wrong one is
    // refused), the technician chooses the password, then configures the capture.
    // The consultant's age key pair: the box gets the recipient at setup; only the key
    // decrypts the bundle it writes to the stick.
    let consultant = Consultant::new(&dir)?;
    let label = std::fs::read_to_string(dir.join(crate::image::LABEL_FILE))
        .context("the image build wrote no label with the setup token")?;
    let token = label
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    con.expect("setup token: ", BOOT_SECS)?;
    times.first_prompt = started.elapsed().as_secs_f64();
    con.send("WRONG-TOKEN")?;
    con.expect("Wrong setup token.", PROMPT_SECS)?;
    con.expect("setup token: ", PROMPT_SECS)?;
    con.claim(&token)?;
    let before_set = con.mark;
    let mut transcript = String::new();
    let address = if args.management_dhcp {
        "set address dhcp".to_string()
    } else {
        format!(
            "set address {} {}",
            crate::rogue_dhcp::BOX_ADDRESS,
            crate::rogue_dhcp::BOX_GATEWAY
        )
    };
    for c in [
        "set board qemu",
        "set management eth0",
        &address,
        "set capture eth1",
        "set internal 10.99.0.0/24",
        &format!("set recipient {}", consultant.recipient),
        "show config",
    ] {
        transcript.push_str(&con.command(c, PROMPT_SECS)?);
    }
    if !transcript.contains("eth1") {
        bail!("the config does not name eth1 after `set capture eth1`:\n{transcript}");
    }
    // The capturing line may come while the commands above still run: look from before them.
    let after_set = con.mark;
    con.mark = before_set;
    con.expect(qemu::CAPTURING_MARK, CAPTURING_SECS)
        .context("the appliance did not start capturing after `set capture eth1`")?;
    times.first_capturing = started.elapsed().as_secs_f64();
    times.first_uptime = con
        .expect(" s)", PROMPT_SECS)
        .ok()
        .and_then(|t| uptime_of(&t));
    con.mark = con.mark.max(after_set);
    eprintln!(
        "\nqemu-test: capturing {:.1} s after qemu start",
        times.first_capturing
    );
    let selftest = con.command("selftest 5", PROMPT_SECS)?;
    // The running box as an auditor sees it (`kuroko_setup::privcheck`): capture and the
    // analyzer not root, no capability beyond capture's four, NoNewPrivs, a seccomp
    // filter; no file under /data or /config open to others.
    for want in [
        "ok   privilege capture",
        "ok   privilege analyze",
        "ok   file modes",
    ] {
        if !selftest.contains(want) {
            bail!("the self-test on the running box does not say `{want}`:\n{selftest}");
        }
    }
    if selftest.contains("FAIL privilege") || selftest.contains("FAIL file modes") {
        bail!("the running box holds more than it should:\n{selftest}");
    }

    // The capture port as an attacker on the mirrored wire sees it: RA, ARP, pings, NS and
    // a DHCP offer get no frame back, and give it no address or route.
    let probe = crate::capture_port_probe::probe(&wire, &dir, Duration::from_secs(6))?;
    if probe.toward_vm < probe.sent {
        bail!(
            "the probe sent {} frames but only {} reached the tap: the test proves nothing",
            probe.sent,
            probe.toward_vm
        );
    }
    let ports = con.command("show ports", PROMPT_SECS)?;
    match crate::capture_port_probe::held_by(&ports, "eth1") {
        Some(h) if h == "no address" => {}
        other => bail!(
            "after the probe the capture port eth1 holds {other:?} (want \"no address\", no route):\n{ports}"
        ),
    }
    println!(
        "\nqemu-test: the capture port sent {} frames for the {} hostile ones it got (RA, ARP, \
         pings, NS, DHCP offer) and holds no address or route (`show ports`)",
        probe.from_port, probe.sent
    );

    // A Telnet session across the wire: busybox telnetd in host B, the telnet client in A.
    let _server = NsProcess(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &wire.hosts[1],
                "busybox",
                "telnetd",
                "-F",
                "-p",
                "23",
            ])
            .args(["-l", "/bin/sh"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start busybox telnetd in the server namespace")?,
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut client = Command::new("ip")
        .args(["netns", "exec", &wire.hosts[0], "telnet", HOST_B, "23"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start telnet in the client namespace")?;
    {
        let mut w = client.stdin.take().expect("piped");
        std::thread::sleep(Duration::from_secs(2));
        w.write_all(format!("echo {TELNET_MARK}\n").as_bytes())?;
        std::thread::sleep(Duration::from_secs(2));
        w.write_all(b"exit\n")?;
        std::thread::sleep(Duration::from_secs(2));
    }
    let client = NsProcess(client);
    drop(client);
    eprintln!("\nqemu-test: telnet session sent; {ANALYZE_SECS} s for the analyzer");
    std::thread::sleep(Duration::from_secs(ANALYZE_SECS));

    // The technician's view: `findings` over the serial console.
    let listed = con.command("findings", PROMPT_SECS)?;
    if !listed.contains("telnet_use") {
        bail!("`findings` over the serial console does not list telnet_use:\n{listed}");
    }
    println!("\nqemu-test: `findings` over the serial console lists telnet_use");

    // Hard power-off, then the disks as a thief would read them: the data disk is LUKS2
    // ciphertext (no trace of the Telnet session the box just stored and judged), its key is
    // on the config disk. Whether the findings survived the power-off, the next boot shows.
    drop(con);
    drop(vm);
    check_encrypted_at_rest(&img).with_context(|| format!("(self-test said:\n{selftest})"))?;
    println!(
        "\nqemu-test: after a hard power-off the data disk is LUKS2 and holds no `{TELNET_MARK}` \
         (which `findings` showed the box had stored)"
    );

    // Second boot on the same disks, with the consultant's stick plugged in: the technician
    // logs in, the store is still there and capture resumes; the finding is still listed.
    let stick = UsbStick::blank(&dir)?;
    let (vm, mut con) = start_with(&img, &wire, &sock, kvm, &stick.qemu_args())?;
    let started = vm.started;
    con.expect("password: ", BOOT_SECS)?;
    times.second_prompt = started.elapsed().as_secs_f64();
    con.send(PASSWORD)?;
    con.expect("kuroko> ", PROMPT_SECS)?;
    let before = con.mark;
    con.expect(qemu::CAPTURING_MARK, CAPTURING_SECS)
        .context("no capturing after the second boot")?;
    times.second_capturing = started.elapsed().as_secs_f64();
    times.second_uptime = con
        .expect(" s)", PROMPT_SECS)
        .ok()
        .and_then(|t| uptime_of(&t));
    con.mark = con.mark.max(before);
    // The management port after a boot with the rogue DHCP server on its LAN: it holds the
    // static address and gateway set at the first boot, and asked nobody for a lease.
    let rogue_started = Instant::now();
    let ports = con.command("show ports", PROMPT_SECS)?;
    let held = crate::capture_port_probe::held_by(&ports, "eth0");
    // Both checks run, and a failure names both, so a run that fails says all it saw.
    let port = crate::rogue_dhcp::check_management_port(held.as_deref());
    let frames = rogue.finish();
    drop(rogue);
    let seen = match (port, frames) {
        (Ok(()), Ok(seen)) => seen,
        (port, frames) => bail!(
            "the rogue DHCP server on the management LAN:\n- {}\n- {}\n`show ports` on the \
             second boot:\n{ports}",
            port.err()
                .map_or("show ports: as configured".into(), |e| e.to_string()),
            frames
                .err()
                .map_or("no DHCP frame from the management port".into(), |e| e
                    .to_string()),
        ),
    };
    times.rogue = Some(rogue_secs + rogue_started.elapsed().as_secs_f64());
    println!(
        "qemu-test: with a rogue DHCP server on the management LAN, the management port holds \
         its static address and gateway after the boot (`show ports`: {}) and sent no DHCP \
         frame in two boots ({} frames from it in all; {} of the rogue's DHCP answers reached it)",
        held.unwrap_or_default(),
        seen.from_box,
        seen.rogue_to_vm
    );
    let status = con.command("status", PROMPT_SECS)?;
    if !status.contains("running (pid") {
        bail!("after the second boot `status` shows no running capture writer:\n{status}");
    }
    let listed = con.command("findings", PROMPT_SECS)?;
    if !listed.contains("telnet_use") {
        bail!("after the second boot `findings` does not list telnet_use:\n{listed}");
    }
    println!(
        "qemu-test: second boot opened the encrypted data disk and captured again after {:.1} s \
         (store intact, writer running, telnet_use still listed)",
        times.second_capturing
    );
    // Before the box leaves the site: the bundle to the consultant's stick, then
    // decommission with the certificate on the same stick.
    let key_before = debugfs_cat_bytes(&img.config, "/data.key")?;
    let started_erase = Instant::now();
    let exported = con.command("export", ERASE_SECS)?;
    if !exported.contains(", encrypted)") || !exported.contains("can be removed") {
        bail!(
            "`export` did not write an encrypted bundle to the USB stick and unmount it:\n{exported}"
        );
    }
    con.send("decommission")?;
    con.expect("type DECOMMISSION to erase: ", PROMPT_SECS)?;
    con.send("DECOMMISSION")?;
    let erased = con
        .expect("Power it off.", ERASE_SECS)
        .context("`decommission` on the serial console did not finish")?;
    if !erased.contains("can be removed") {
        bail!("`decommission` did not unmount the stick:\n{erased}");
    }
    times.erase = Some(started_erase.elapsed().as_secs_f64());
    drop(con);
    drop(vm);
    drop(wire);
    check_decommissioned(&img, &stick, &consultant, &key_before)?;
    println!(
        "qemu-test: export + decommission took {:.1} s; the bundle on the stick decrypts with the \
         consultant's key only; the certificate says crypto-erased; the data disk has no \
         keyslot, the config disk no key and no config",
        times.erase.unwrap_or_default()
    );
    // The first boots showed whether KVM works here; the NVMe boot takes the same road.
    times.nvme = Some(nvme_health(&img, &dir, kvm)?);
    // The A/B update: a tampered bundle refused, a good one booted, a broken one rolled back.
    let wire = Wire::create().context("cannot make the network for the update boots")?;
    times.update = Some(update::run(&dir, &wire, kvm, args.break_rollback)?);
    drop(wire);
    let summary = times.summary();
    print!("{summary}");
    std::fs::write(dir.join("QEMU-TEST"), &summary)
        .with_context(|| format!("cannot write {}", dir.join("QEMU-TEST").display()))?;
    Ok(())
}

/// Boot times measured by the test, in seconds.
#[derive(Default)]
struct Times {
    accel: &'static str,
    /// qemu start to the first-boot password prompt on the serial console.
    first_prompt: f64,
    /// qemu start to capturing on the first boot (includes the technician's setup commands).
    first_capturing: f64,
    /// The guest's uptime in the capturing line of the first boot.
    first_uptime: Option<f64>,
    second_prompt: f64,
    /// qemu start to capturing after the hard power-off (capture resumes by itself).
    second_capturing: f64,
    second_uptime: Option<f64>,
    /// What the rogue DHCP check adds: starting the server and the recording, the client's
    /// lease from it, `show ports` and reading the recording.
    rogue: Option<f64>,
    /// `export` to the stick plus `decommission`, on the second boot.
    erase: Option<f64>,
    /// What the NVMe health boot found, and how long it took.
    nvme: Option<String>,
    /// The A/B update boots' times.
    update: Option<String>,
}

impl Times {
    fn summary(&self) -> String {
        let up = |u: Option<f64>| u.map_or("?".to_string(), |u| format!("{u:.1}"));
        format!(
            "qemu-test boot times ({}), seconds from qemu start (guest uptime):\n\
             \x20 first boot:  login prompt {:.1}; capturing {:.1} ({}), after the setup commands\n\
             \x20 second boot after a hard power-off: login prompt {:.1}; capturing {:.1} ({})\n",
            self.accel,
            self.first_prompt,
            self.first_capturing,
            up(self.first_uptime),
            self.second_prompt,
            self.second_capturing,
            up(self.second_uptime),
        ) + &self.rogue.map_or(String::new(), |r| {
            format!("  rogue DHCP on the management LAN (start, client lease, show ports, pcap): {r:.1}\n")
        }) + &self.erase.map_or(String::new(), |e| {
            format!("  export to the USB stick + decommission: {e:.1}\n")
        }) + &self
            .nvme
            .as_ref()
            .map_or(String::new(), |n| format!("  {n}\n"))
            + &self
                .update
                .as_ref()
                .map_or(String::new(), |u| format!("  {u}\n"))
    }
}

/// Size of the blank NVMe drive of the health boot.
const NVME_DISK_BYTES: u64 = 64 << 20;
/// qemu's NVMe device reports this composite temperature (323 K) unless told otherwise.
const QEMU_NVME_TEMPERATURE_C: f64 = 49.85;

/// The NVMe SMART / Health log read on emulated hardware through the real admin ioctl.
///
/// The appliance's data disk is virtio (`vdc`, fixed by the image's `rcS` and the qemu board
/// profile), which has no SMART log, and the setup shell shows status for that disk only. So
/// this boot attaches a small blank ext4 NVMe drive (qemu's `nvme` device answers Get Log
/// Page 0x02), starts the image's kernel with a plain shell as init (no appliance
/// services), loads the driver, mounts the drive and runs the image's own `kuroko status
/// --format json` with the data directory on it. The disks section must name the NVMe
/// namespace with its log (qemu's 323 K composite temperature, data read by the mount) and
/// no error. Returns a line for the summary.
fn nvme_health(img: &ImageFiles, dir: &Path, kvm: bool) -> anyhow::Result<String> {
    let disk = dir.join("nvme.img");
    let _ = std::fs::remove_file(&disk);
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(NVME_DISK_BYTES))
        .with_context(|| format!("cannot make {}", disk.display()))?;
    crate::util::run(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-m", "0"])
            .arg(&disk),
    )?;
    let sock = dir.join("nvme-serial.sock");
    let _ = std::fs::remove_file(&sock);
    let mut cmd = Command::new("qemu-system-x86_64");
    if kvm {
        cmd.arg("-enable-kvm");
    }
    cmd.args(["-m", "512", "-smp", "1", "-nographic", "-no-reboot"])
        .args([
            "-serial",
            &format!("unix:{},server=on,wait=off", sock.display()),
            "-monitor",
            "none",
            "-nic",
            "none",
        ])
        .arg("-kernel")
        .arg(&img.kernel)
        .arg("-initrd")
        .arg(&img.initrd)
        .args([
            "-append",
            "console=ttyS0,115200 root=/dev/vda ro rootfstype=ext4 init=/bin/sh panic=5",
        ])
        .args([
            "-drive",
            &format!(
                "file={},if=virtio,format=raw,readonly=on",
                img.root.display()
            ),
        ])
        .args([
            "-drive",
            &format!("file={},if=none,id=nvm,format=raw", disk.display()),
        ])
        .args(["-device", "nvme,serial=KUROKO01,drive=nvm"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let vm = Vm {
        child: cmd.spawn().context("cannot start qemu")?,
        started: Instant::now(),
    };
    let mut con = Serial::connect(&sock)?;
    let result = nvme_health_session(&mut con);
    let secs = vm.started.elapsed().as_secs_f64();
    drop(con);
    drop(vm);
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(&disk);
    let found = result?;
    println!("\nqemu-test: NVMe SMART log read on qemu's NVMe drive: {found}");
    Ok(format!("NVMe health boot: {secs:.1} s; {found}"))
}

/// The shell side of [`nvme_health`]. Each command ends by echoing a marker made by shell
/// arithmetic, so the echo of the typed line never matches it.
fn nvme_health_session(con: &mut Serial) -> anyhow::Result<String> {
    con.expect("# ", BOOT_SECS)
        .context("no shell prompt from init=/bin/sh")?;
    con.send(
        "dmesg -n 1; mount -t proc proc /proc; mount -t sysfs sys /sys; \
         mount -t devtmpfs dev /dev; modprobe nvme; i=0; \
         while [ ! -b /dev/nvme0n1 ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done; \
         mount -t ext4 /dev/nvme0n1 /mnt && echo MOUNTED-$((6*7))",
    )?;
    con.expect("MOUNTED-42", PROMPT_SECS)
        .context("the NVMe drive did not appear or did not mount")?;
    con.send("echo BEGIN-$((6*7)); /usr/local/bin/kuroko status --data /mnt --format json; echo END-$((6*7))")?;
    con.expect("BEGIN-42", PROMPT_SECS)?;
    let out = con.expect("END-42", PROMPT_SECS)?;
    let json = match (out.find('{'), out.rfind('}')) {
        (Some(a), Some(b)) if a < b => &out[a..=b],
        _ => bail!("`kuroko status --format json` printed no JSON:\n{out}"),
    };
    let status: serde_json::Value = serde_json::from_str(json)
        .with_context(|| format!("`kuroko status --format json` is not JSON:\n{json}"))?;
    check_nvme_status(&status)
}

/// What `kuroko status` must say about qemu's NVMe drive; a summary of it.
fn check_nvme_status(status: &serde_json::Value) -> anyhow::Result<String> {
    let disks = &status["disks"];
    let d = disks["disks"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == "nvme0n1"))
        .with_context(|| format!("no nvme0n1 under the data directory in status: {disks}"))?;
    let smart = &d["nvme_smart"];
    if !smart.is_object() {
        bail!(
            "no NVMe SMART log for nvme0n1 (error: {}): {d}",
            d["nvme_smart_error"]
        );
    }
    let num = |k: &str| {
        smart[k]
            .as_f64()
            .with_context(|| format!("nvme_smart.{k} is not a number: {smart}"))
    };
    let temp = num("temperature_c")?;
    if (temp - QEMU_NVME_TEMPERATURE_C).abs() > 0.01 {
        bail!("composite temperature {temp} °C, qemu reports {QEMU_NVME_TEMPERATURE_C}: {smart}");
    }
    if smart["critical_warning"] != 0 || num("media_errors")? != 0.0 {
        bail!("qemu's fresh drive shows a warning or media errors: {smart}");
    }
    let read = num("bytes_read")?;
    if read <= 0.0 {
        bail!("no data read counted although the drive was just mounted: {smart}");
    }
    for k in [
        "percentage_used",
        "available_spare_pct",
        "power_on_hours",
        "unsafe_shutdowns",
        "bytes_written",
    ] {
        num(k)?;
    }
    if !d["nvme_smart_error"].is_null() {
        bail!("a log and an error at once: {d}");
    }
    Ok(format!(
        "temperature {temp} °C, {read} bytes read, {} written, wear {}% used, media errors 0",
        smart["bytes_written"], smart["percentage_used"]
    ))
}

/// The uptime in the text up to the end of a `kuroko-run: capturing (uptime N s)` line.
fn uptime_of(text: &str) -> Option<f64> {
    let i = text.rfind("uptime ")?;
    text[i + "uptime ".len()..]
        .trim_end_matches(" s)")
        .trim()
        .parse()
        .ok()
}

/// [`start`], and under `--accel auto` with KVM, a restart under TCG when the kernel prints
/// nothing within [`qemu::KVM_BOOT_PROBE_SECS`] (a nested KVM that does not work, which
/// [`qemu::kvm_unusable`] did not recognise).
fn start_probed(
    img: &ImageFiles,
    wire: &Wire,
    sock: &Path,
    kvm: &mut bool,
    accel: qemu::Accel,
) -> anyhow::Result<(Vm, Serial)> {
    let (vm, mut con) = start(img, wire, sock, *kvm)?;
    if !(*kvm && accel == qemu::Accel::Auto) {
        return Ok((vm, con));
    }
    if con
        .expect(qemu::KERNEL_MARK, qemu::KVM_BOOT_PROBE_SECS)
        .is_ok()
    {
        return Ok((vm, con));
    }
    eprintln!(
        "\nqemu-test: no kernel output in {} s under KVM; retrying with TCG emulation",
        qemu::KVM_BOOT_PROBE_SECS
    );
    drop(con);
    drop(vm);
    *kvm = false;
    start(img, wire, sock, false)
}

/// Starts qemu with the serial console on `sock` and connects to it.
fn start(img: &ImageFiles, wire: &Wire, sock: &Path, kvm: bool) -> anyhow::Result<(Vm, Serial)> {
    start_with(img, wire, sock, kvm, &[])
}

/// [`start`] with more devices (`extra`: qemu arguments).
fn start_with(
    img: &ImageFiles,
    wire: &Wire,
    sock: &Path,
    kvm: bool,
    extra: &[String],
) -> anyhow::Result<(Vm, Serial)> {
    let _ = std::fs::remove_file(sock);
    let serial_spec = format!("unix:{},server=on,wait=off", sock.display());
    let mut cmd = qemu::qemu_command(img, wire, &serial_spec, kvm);
    cmd.args(extra);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let vm = Vm {
        child: cmd.spawn().context("cannot start qemu")?,
        started: Instant::now(),
    };
    let con = Serial::connect(sock)?;
    Ok((vm, con))
}

/// The data disk is LUKS2 and holds no [`TELNET_MARK`] anywhere in its raw sectors; the
/// config disk holds its 64-byte key (`/data.key`, read with debugfs without mounting).
fn check_encrypted_at_rest(img: &ImageFiles) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(&img.data)
        .with_context(|| format!("cannot open {}", img.data.display()))?;
    let mut head = [0u8; 6];
    f.read_exact(&mut head)?;
    if head != LUKS_MAGIC {
        bail!(
            "the data disk {} is not LUKS2 (starts with {head:02x?})",
            img.data.display()
        );
    }
    if let Some(at) = find_in_file(&img.data, TELNET_MARK.as_bytes())? {
        bail!(
            "`{TELNET_MARK}` is readable at byte {at} of the encrypted data disk {}",
            img.data.display()
        );
    }
    let key = debugfs_cat_bytes(&img.config, "/data.key")?;
    if key.len() != 64 {
        bail!(
            "/data.key on the config disk has {} bytes, not 64",
            key.len()
        );
    }
    Ok(())
}

/// The consultant's age identity, made on the host for the run.
struct Consultant {
    /// The identity file (`AGE-SECRET-KEY-…`).
    key: PathBuf,
    /// Its recipient (`age1…`), given to the box at setup.
    recipient: String,
}

impl Consultant {
    fn new(dir: &Path) -> anyhow::Result<Consultant> {
        let key = dir.join("consultant.key");
        let _ = std::fs::remove_file(&key);
        crate::util::run(Command::new("age-keygen").arg("-o").arg(&key))?;
        let text = std::fs::read_to_string(&key)?;
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .context("age-keygen wrote no public key line")?
            .trim()
            .to_string();
        Ok(Consultant { key, recipient })
    }
}

/// A blank USB stick image (FAT on the whole device), plugged into qemu's xHCI controller.
struct UsbStick {
    img: PathBuf,
}

impl UsbStick {
    fn blank(dir: &Path) -> anyhow::Result<UsbStick> {
        UsbStick::blank_sized(dir, USB_STICK_BYTES)
    }

    fn blank_sized(dir: &Path, size: u64) -> anyhow::Result<UsbStick> {
        let img = dir.join("usb-stick.img");
        let _ = std::fs::remove_file(&img);
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(size))
            .with_context(|| format!("cannot make {}", img.display()))?;
        crate::util::run(
            Command::new("mkfs.vfat")
                .args(["-n", "CONSULTANT"])
                .arg(&img),
        )?;
        Ok(UsbStick { img })
    }

    fn qemu_args(&self) -> Vec<String> {
        [
            "-device",
            "qemu-xhci,id=xhci",
            "-drive",
            &format!("if=none,id=stick,format=raw,file={}", self.img.display()),
            "-device",
            "usb-storage,bus=xhci.0,drive=stick,removable=on",
        ]
        .map(String::from)
        .to_vec()
    }

    /// The stick's files (path, bytes), read with mtools without mounting.
    fn files(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let out = Command::new("mdir")
            .args(["-/", "-b", "-i"])
            .arg(&self.img)
            .arg("::/")
            .output()
            .context("cannot run mdir (mtools)")?;
        let mut files = Vec::new();
        for name in String::from_utf8_lossy(&out.stdout).lines() {
            let name = name.trim();
            if name.is_empty() || name.ends_with('/') {
                continue;
            }
            let bytes = Command::new("mtype")
                .arg("-i")
                .arg(&self.img)
                .arg(name)
                .output()
                .context("cannot run mtype (mtools)")?
                .stdout;
            files.push((name.trim_start_matches("::").to_string(), bytes));
        }
        Ok(files)
    }
}

/// After `export` and `decommission`, with the VM off: the stick holds the encrypted bundle
/// (it decrypts with the consultant's key and holds the findings; no Telnet text in clear
/// anywhere on the stick) and the certificate of erasure (crypto-erase done); the data disk
/// is LUKS2 with no keyslot and no Telnet text; the config disk holds neither the key it
/// held before nor a config.
fn check_decommissioned(
    img: &ImageFiles,
    stick: &UsbStick,
    consultant: &Consultant,
    key_before: &[u8],
) -> anyhow::Result<()> {
    let files = stick.files()?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(at) = find_in_file(&stick.img, TELNET_MARK.as_bytes())? {
        bail!("`{TELNET_MARK}` is readable at byte {at} of the USB stick ({names:?})");
    }
    let bundle = files
        .iter()
        .find(|(n, _)| n.ends_with(".age"))
        .with_context(|| format!("no encrypted bundle (*.age) on the stick: {names:?}"))?;
    // Through a file: age writes the whole plaintext while it reads, so feeding it on a pipe
    // and reading only at the end deadlocks once both pipes are full.
    let sealed = stick.img.with_extension("bundle.tar.age");
    std::fs::write(&sealed, &bundle.1)?;
    let plain = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&consultant.key)
        .arg(&sealed)
        .output()
        .context("cannot run age")?;
    if !plain.status.success() || plain.stdout.is_empty() {
        bail!(
            "the bundle {} does not decrypt with the consultant's key: {}",
            bundle.0,
            String::from_utf8_lossy(&plain.stderr)
        );
    }
    if find_bytes(&plain.stdout, b"telnet_use").is_none() {
        bail!(
            "the decrypted bundle {} ({} bytes) does not hold the telnet_use finding",
            bundle.0,
            plain.stdout.len()
        );
    }
    let (cert_name, cert) = files
        .iter()
        .find(|(n, _)| n.contains("kuroko-erasure-") && n.ends_with(".json"))
        .with_context(|| format!("no certificate of erasure on the stick: {names:?}"))?;
    let cert: serde_json::Value = serde_json::from_slice(cert)
        .with_context(|| format!("the certificate {cert_name} is not JSON"))?;
    if cert["method"] != "overwrite and crypto-erase" {
        bail!(
            "the certificate {cert_name} does not say the data disk was crypto-erased:\n{cert:#}"
        );
    }
    let mut head = vec![0u8; 64 << 10];
    std::fs::File::open(&img.data)?.read_exact(&mut head)?;
    if !head.starts_with(LUKS_MAGIC) {
        bail!("the data disk is no longer LUKS2 after decommission");
    }
    let json = luks2_json(&head).context("no LUKS2 JSON header on the data disk")?;
    let slots = json["keyslots"].as_object().map_or(0, |o| o.len());
    if slots != 0 {
        bail!("the data disk's LUKS2 header still has {slots} keyslot(s) after decommission");
    }
    if let Some(at) = find_in_file(&img.data, TELNET_MARK.as_bytes())? {
        bail!("`{TELNET_MARK}` is readable at byte {at} of the data disk after decommission");
    }
    if find_in_file(&img.config, key_before)?.is_some() {
        bail!("the data disk's key is still on the config disk after decommission");
    }
    if let Ok(c) = debugfs_cat_bytes(&img.config, "/kuroko.toml")
        && !c.is_empty()
    {
        bail!("/kuroko.toml is still on the config disk after decommission");
    }
    Ok(())
}

/// The JSON area of a LUKS2 header (after the 4096-byte binary header, NUL-padded).
fn luks2_json(head: &[u8]) -> Option<serde_json::Value> {
    let area = head.get(4096..)?;
    let end = area.iter().position(|&b| b == 0).unwrap_or(area.len());
    serde_json::from_slice(&area[..end]).ok()
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The offset of the first `needle` in the file (read in 8 MiB pieces, overlapping by the
/// needle's length so a match across two pieces is found).
fn find_in_file(path: &Path, needle: &[u8]) -> anyhow::Result<Option<u64>> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; 8 << 20];
    let (mut keep, mut base) = (0usize, 0u64);
    loop {
        let n = f.read(&mut buf[keep..])?;
        if n == 0 {
            return Ok(None);
        }
        let end = keep + n;
        if let Some(i) = buf[..end].windows(needle.len()).position(|w| w == needle) {
            return Ok(Some(base + i as u64));
        }
        let tail = (needle.len() - 1).min(end);
        buf.copy_within(end - tail..end, 0);
        base += (end - tail) as u64;
        keep = tail;
    }
}

/// Reads a file from the ext4 disk image without mounting it. After a hard power-off the
/// journal holds the latest metadata, so a sparse copy gets `e2fsck -fy` first (it replays
/// the journal, as the appliance's next boot would) and debugfs reads the copy.
fn debugfs_cat_bytes(disk: &Path, path: &str) -> anyhow::Result<Vec<u8>> {
    let copy = disk.with_extension("check.img");
    crate::util::run(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(disk)
            .arg(&copy),
    )?;
    let fsck = Command::new("e2fsck")
        .arg("-fy")
        .arg(&copy)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run e2fsck (apt-get install e2fsprogs)")?;
    let out = Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(&copy)
        .stderr(Stdio::null())
        .output()
        .context("cannot run debugfs (apt-get install e2fsprogs)");
    let _ = std::fs::remove_file(&copy);
    let out = out?;
    // e2fsck: 0 clean, 1 fixed, 2 fixed (reboot); 4 and up: errors left.
    if fsck.code().is_none_or(|c| c >= 4) {
        bail!(
            "e2fsck found errors it could not fix on a copy of {} ({fsck})",
            disk.display()
        );
    }
    if !out.status.success() || out.stdout.is_empty() {
        bail!("cannot read {path} from {} with debugfs", disk.display());
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::{check_nvme_status, uptime_of};

    #[test]
    fn nvme_status_checks() {
        let good = serde_json::json!({"disks": {"disks": [
            {"name": "nvme0n1", "nvme_smart_error": null, "nvme_smart": {
                "temperature_c": 49.85, "critical_warning": 0, "media_errors": 0,
                "bytes_read": 21504000, "bytes_written": 512000, "percentage_used": 0,
                "available_spare_pct": 0, "power_on_hours": 0, "unsafe_shutdowns": 0}}]}});
        let s = check_nvme_status(&good).unwrap();
        assert!(s.contains("temperature 49.85"), "{s}");
        let mut no_log = good.clone();
        no_log["disks"]["disks"][0]["nvme_smart"] = serde_json::Value::Null;
        no_log["disks"]["disks"][0]["nvme_smart_error"] = "/dev/nvme0: Permission denied".into();
        let e = check_nvme_status(&no_log).unwrap_err().to_string();
        assert!(e.contains("Permission denied"), "{e}");
        let mut hot = good.clone();
        hot["disks"]["disks"][0]["nvme_smart"]["temperature_c"] = 0.0.into();
        assert!(check_nvme_status(&hot).is_err());
        let mut unread = good.clone();
        unread["disks"]["disks"][0]["nvme_smart"]["bytes_read"] = 0.into();
        assert!(check_nvme_status(&unread).is_err());
        let virtio = serde_json::json!({"disks": {"disks": [{"name": "vdc"}]}});
        assert!(check_nvme_status(&virtio).is_err());
    }

    #[test]
    fn a_needle_is_found_anywhere_in_a_disk_image_even_across_pieces() {
        use super::find_in_file;
        let p = std::env::temp_dir().join(format!("kuroko-find-{}.img", std::process::id()));
        let needle = b"kuroko-telnet-test";
        for at in [0usize, 100, (8 << 20) - 5, (8 << 20) * 2 + 3] {
            let mut v = vec![0u8; (8 << 20) * 3];
            v[at..at + needle.len()].copy_from_slice(needle);
            std::fs::write(&p, &v).unwrap();
            assert_eq!(
                find_in_file(&p, needle).unwrap(),
                Some(at as u64),
                "at {at}"
            );
        }
        std::fs::write(&p, vec![7u8; 9 << 20]).unwrap();
        assert_eq!(find_in_file(&p, needle).unwrap(), None);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn uptime_from_the_capturing_line() {
        assert_eq!(uptime_of(" (uptime 55.62 s)"), Some(55.62));
        assert_eq!(uptime_of("kuroko-run: capturing (uptime 7 s)"), Some(7.0));
        assert_eq!(uptime_of(" (uptime soon s)"), None);
        assert_eq!(uptime_of("no such line s)"), None);
    }
}
