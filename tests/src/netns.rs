//! Network namespaces and veth pairs for tests, cleaned up on drop.
//!
//! A small, general API: [`Netns::create`] makes `kt-<tag>-<pid>-<n>` (loopback up),
//! [`veth`] joins two namespaces (or the host and a namespace) with a veth pair,
//! [`Netns::run`] runs a bounded command inside, [`Netns::enter_current_thread`] moves a
//! thread in (for raw sockets a test opens itself), [`Netns::send_frames`] sends raw
//! Ethernet frames from inside with an AF_PACKET socket. Dropping a [`Netns`] kills what
//! still runs in it (by PID, from `ip netns pids`) and deletes it, which also removes its
//! veth ends; a [`Veth`] with a host end deletes that end on drop.

use anyhow::{Context, bail};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Upper bound for one helper command (`ip`, `sysctl`).
const CMD_TIMEOUT_SECS: u32 = 30;

/// Fails with a clear message unless running as root (namespaces and raw sockets need it).
pub fn require_root() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("this test creates network namespaces and raw sockets: run it as root (CI does)");
    }
    Ok(())
}

fn run_checked(ns: &str, argv: &[&str]) -> anyhow::Result<Output> {
    crate::proc::sh_in(ns, argv, CMD_TIMEOUT_SECS)
}

/// A network namespace this process created.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `kt-<tag>-<pid>-<n>` with loopback up.
    pub fn create(tag: &str) -> anyhow::Result<Netns> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        require_root()?;
        let name = format!(
            "kt-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        anyhow::ensure!(name.len() <= 64, "namespace name {name} is too long");
        run_checked("", &["ip", "netns", "add", &name])
            .with_context(|| format!("cannot create network namespace {name}"))?;
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `argv` inside (bounded), failing with its stderr when it fails.
    pub fn run(&self, argv: &[&str]) -> anyhow::Result<Output> {
        run_checked(&self.name, argv)
    }

    /// Turns IPv6 off inside, so interfaces send no router solicitations or DAD probes.
    pub fn disable_ipv6(&self) -> anyhow::Result<()> {
        for key in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            self.run(&["sysctl", "-qw", key])?;
        }
        Ok(())
    }

    /// Moves the calling thread into this namespace (threads it spawns inherit it).
    pub fn enter_current_thread(&self) -> anyhow::Result<()> {
        let path = format!("/run/netns/{}", self.name);
        let f = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
        // SAFETY: `f` is an open namespace file; setns changes only the calling thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            bail!(
                "setns into {}: {}",
                self.name,
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Sends each frame (complete Ethernet frames, VLAN tags included) out of `ifname` with
    /// an AF_PACKET socket from inside the namespace, waiting `gap` after each.
    pub fn send_frames(
        &self,
        ifname: &str,
        frames: &[Vec<u8>],
        gap: Duration,
    ) -> anyhow::Result<()> {
        std::thread::scope(|s| {
            s.spawn(|| -> anyhow::Result<()> {
                self.enter_current_thread()?;
                let sock = RawSender::open(ifname)?;
                for (i, f) in frames.iter().enumerate() {
                    sock.send(f).with_context(|| {
                        format!("sending frame {i} ({} bytes) on {ifname}", f.len())
                    })?;
                    if !gap.is_zero() {
                        std::thread::sleep(gap);
                    }
                }
                Ok(())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the sender thread panicked"))?
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs inside was started by this test: kill it by PID.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
            {
                crate::proc::signal_pid(pid, libc::SIGKILL);
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A veth pair; a host end (namespace `None`) is deleted on drop, namespace ends go with
/// their namespace.
pub struct Veth {
    host_end: Option<String>,
}

impl Drop for Veth {
    fn drop(&mut self) {
        if let Some(n) = &self.host_end {
            let _ = Command::new("ip").args(["link", "del", n]).output();
        }
    }
}

/// Creates veth `a_if` (in `a`, or the host) <-> `b_if` (in `b`, or the host) with `mtu`,
/// both ends up.
pub fn veth(
    a: Option<&Netns>,
    a_if: &str,
    b: Option<&Netns>,
    b_if: &str,
    mtu: u32,
) -> anyhow::Result<Veth> {
    let mtu = mtu.to_string();
    let mut argv = vec!["ip", "link", "add", a_if, "mtu", &mtu];
    if let Some(ns) = a {
        argv.extend(["netns", ns.name()]);
    }
    argv.extend(["type", "veth", "peer", "name", b_if, "mtu", &mtu]);
    if let Some(ns) = b {
        argv.extend(["netns", ns.name()]);
    }
    run_checked("", &argv).with_context(|| format!("cannot create veth {a_if} <-> {b_if}"))?;
    let guard = Veth {
        host_end: match (a, b) {
            (None, _) => Some(a_if.to_string()),
            (_, None) => Some(b_if.to_string()),
            _ => None,
        },
    };
    for (ns, ifname) in [(a, a_if), (b, b_if)] {
        run_checked(
            ns.map_or("", |n| n.name()),
            &["ip", "link", "set", ifname, "up"],
        )?;
    }
    Ok(guard)
}

/// Adds address `cidr` (e.g. `10.0.0.1/24`) to `ifname` in `ns` (or the host).
pub fn set_addr(ns: Option<&Netns>, ifname: &str, cidr: &str) -> anyhow::Result<()> {
    run_checked(
        ns.map_or("", |n| n.name()),
        &["ip", "addr", "add", cidr, "dev", ifname],
    )?;
    Ok(())
}

/// An AF_PACKET socket that sends complete frames out of one interface.
struct RawSender {
    fd: std::os::fd::OwnedFd,
    addr: libc::sockaddr_ll,
}

impl RawSender {
    fn open(ifname: &str) -> anyhow::Result<RawSender> {
        use std::os::fd::FromRawFd;
        let c = std::ffi::CString::new(ifname)?;
        // SAFETY: `c` is NUL-terminated and outlives the call.
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if idx == 0 {
            bail!("no interface {ifname}: {}", std::io::Error::last_os_error());
        }
        // SAFETY: plain socket(2); the result is checked. Protocol 0: send-only.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            bail!("socket(AF_PACKET): {}", std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = idx as i32;
        addr.sll_halen = 6;
        Ok(RawSender { fd, addr })
    }

    fn send(&self, frame: &[u8]) -> anyhow::Result<()> {
        // SAFETY: the buffer and the address are valid for the duration of the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&self.addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n != frame.len() as isize {
            bail!("sendto: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}
