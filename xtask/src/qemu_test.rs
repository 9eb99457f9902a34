//! `cargo xtask qemu-test`: the appliance end to end on the qemu board.
//!
//! Builds the image (cached base), boots it with blank config and data disks and the serial
//! console on a unix socket, drives `kuroko setup` over it (first-boot password, capture
//! port, internal networks, self-test), waits until the appliance reports capturing, runs a
//! Telnet session between the two host namespaces on the capture wire, lets the analyzer
//! catch up, reads `findings` over the serial console (the `telnet_use` finding must be
//! listed), powers the VM off hard (qemu killed) and checks the findings store on the data
//! disk with `debugfs` (no mount); boots again and finds the store and the finding intact.
//! `cargo xtask test` runs it after the workspace tests (CI does); the boot times it measured
//! are printed at the end and written to `<image>/QEMU-TEST`.

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

#[derive(clap::Args)]
pub struct Args {
    /// Where the image is built and booted from.
    #[arg(long, default_value = "target/image-test")]
    pub image: PathBuf,
    /// Accelerator, as for `cargo xtask qemu`.
    #[arg(long, default_value = "auto")]
    pub accel: qemu::Accel,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            image: PathBuf::from("target/image-test"),
            accel: qemu::Accel::Auto,
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
    let wire = Wire::create().context("cannot make the capture wire")?;
    let sock = dir.join("serial.sock");
    let mut kvm = qemu::use_kvm(args.accel, &dir);
    let (vm, mut con) = start_probed(&img, &wire, &sock, &mut kvm, args.accel)?;
    let started = vm.started;
    let mut times = Times {
        accel: if kvm { "KVM" } else { "TCG emulation" },
        ..Times::default()
    };

    // First boot: the technician chooses the password, then configures the capture.
    con.expect("new password: ", BOOT_SECS)?;
    times.first_prompt = started.elapsed().as_secs_f64();
    con.send(PASSWORD)?;
    con.expect("again: ", PROMPT_SECS)?;
    con.send(PASSWORD)?;
    con.expect("kuroko> ", PROMPT_SECS)?;
    let before_set = con.mark;
    let mut transcript = String::new();
    for c in [
        "set board qemu",
        "set capture eth1",
        "set internal 10.99.0.0/24",
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
        w.write_all(b"echo kuroko-telnet-test\n")?;
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

    // Hard power-off, then the findings from the data disk without mounting it.
    drop(con);
    drop(vm);
    let state = debugfs_cat(&img.data, "/findings/state.json")?;
    if !state.contains("telnet_use") {
        bail!(
            "no telnet_use finding in /findings/state.json on the data disk after the power-off \
             (self-test said:\n{selftest})"
        );
    }
    println!(
        "\nqemu-test: telnet_use found in /findings/state.json on the data disk after a hard power-off"
    );

    // Second boot on the same disks: the technician logs in, the store is still there and
    // capture resumes; the finding is still on the disk after another hard power-off.
    let (vm, mut con) = start(&img, &wire, &sock, kvm)?;
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
    let status = con.command("status", PROMPT_SECS)?;
    if !status.contains("running (pid") {
        bail!("after the second boot `status` shows no running capture writer:\n{status}");
    }
    let listed = con.command("findings", PROMPT_SECS)?;
    if !listed.contains("telnet_use") {
        bail!("after the second boot `findings` does not list telnet_use:\n{listed}");
    }
    drop(con);
    drop(vm);
    let state = debugfs_cat(&img.data, "/findings/state.json")?;
    drop(wire);
    if !state.contains("telnet_use") {
        bail!("the telnet_use finding is gone after the second boot and power-off");
    }
    println!(
        "qemu-test: second boot captured again after {:.1} s (store intact, writer running); \
         telnet_use still on the data disk after the second power-off",
        times.second_capturing
    );
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
        )
    }
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
    let _ = std::fs::remove_file(sock);
    let serial_spec = format!("unix:{},server=on,wait=off", sock.display());
    let mut cmd = qemu::qemu_command(img, wire, &serial_spec, kvm);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let vm = Vm {
        child: cmd.spawn().context("cannot start qemu")?,
        started: Instant::now(),
    };
    let con = Serial::connect(sock)?;
    Ok((vm, con))
}

/// Reads a file from the ext4 disk image without mounting it. After a hard power-off the
/// journal holds the latest metadata, so a sparse copy gets `e2fsck -fy` first (it replays
/// the journal, as the appliance's next boot would) and debugfs reads the copy.
fn debugfs_cat(disk: &Path, path: &str) -> anyhow::Result<String> {
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
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::uptime_of;

    #[test]
    fn uptime_from_the_capturing_line() {
        assert_eq!(uptime_of(" (uptime 55.62 s)"), Some(55.62));
        assert_eq!(uptime_of("kuroko-run: capturing (uptime 7 s)"), Some(7.0));
        assert_eq!(uptime_of(" (uptime soon s)"), None);
        assert_eq!(uptime_of("no such line s)"), None);
    }
}
