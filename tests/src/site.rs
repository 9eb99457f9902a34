//! The test site: an office network in network namespaces, with a switch mirror port.
//!
//! Kuroko sits on a switch's SPAN port, so the site is built like one: a Linux bridge in its
//! own namespace ("the switch"), one namespace per host attached by a veth pair, and on every
//! switch port a `tc` match-everything filter (matchall, or u32 on kernels without it) that mirrors the frames *entering* the switch to a
//! veth pair (`mir0` → `mir1`). Mirroring ingress only means every frame is seen exactly
//! once on `mir1`, whichever ports it leaves by (flooded frames included) — the test
//! `site_mirror_sees_every_frame_once` checks that.
//!
//! All hosts share one L2 segment and have on-link routes (`default dev eth0`), so inside,
//! VPN-pool and "outside" addresses talk directly without a router. Outside hosts use
//! documentation addresses (203.0.113.0/24, 198.51.100.0/24, 192.0.2.0/24) that exist only
//! inside these namespaces: nothing here ever leaves the machine. Offloads are off on every
//! veth so the mirror carries wire-sized frames (≤ 1514 bytes) as a real SPAN port does.
//!
//! Names are unique per site (`kt-<pid>-<n>-<host>`). Dropping the `Site` kills whatever
//! still runs in its namespaces (by PID, from `ip netns pids`) and deletes them, also when a
//! test panics.

use crate::proc::{Server, check, run_in, sh_in, signal_pid, wait_until};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// One host of the site: its short name and its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: &'static str,
    pub ip: &'static str,
}

/// An office PC.
pub const PC: Host = Host {
    name: "pc",
    ip: "10.10.1.10",
};
/// A second office PC (internal → internal traffic).
pub const PC2: Host = Host {
    name: "pc2",
    ip: "10.10.1.11",
};
/// File server: FTP, Telnet, WinRM, internal HTTP uploads.
pub const FILES: Host = Host {
    name: "files",
    ip: "10.10.2.20",
};
/// Mail server (SMTP).
pub const MAIL: Host = Host {
    name: "mail",
    ip: "10.10.2.25",
};
/// Forward proxy (HTTP CONNECT on 3128).
pub const PROXY: Host = Host {
    name: "proxy",
    ip: "10.10.2.31",
};
/// Oracle database server (TNS listener on 1521).
pub const DB: Host = Host {
    name: "db",
    ip: "10.10.2.15",
};
/// DNS server (dnsmasq).
pub const DNS: Host = Host {
    name: "dns",
    ip: "10.10.2.53",
};
/// Public-facing web server / SSL-VPN gateway (reachable from outside).
pub const GATEWAY: Host = Host {
    name: "gw",
    ip: "10.10.2.80",
};
/// A remote worker's address from the VPN client pool.
pub const VPN: Host = Host {
    name: "vpn",
    ip: "10.8.0.5",
};
/// An outside server (web, TLS, FTP, SSH, "streaming" site).
pub const EXT: Host = Host {
    name: "ext",
    ip: "203.0.113.10",
};
/// An outside SSH server that is on the allow list.
pub const EXT_ALLOWED: Host = Host {
    name: "extok",
    ip: "198.51.100.22",
};
/// An outside attacker / phishing sender.
pub const ATTACKER: Host = Host {
    name: "attacker",
    ip: "198.51.100.66",
};
/// An outside server on the reputation list.
pub const BAD: Host = Host {
    name: "bad",
    ip: "192.0.2.66",
};

/// Every host, in the order their switch ports are numbered.
pub const HOSTS: [Host; 13] = [
    PC,
    PC2,
    FILES,
    MAIL,
    PROXY,
    DB,
    DNS,
    GATEWAY,
    VPN,
    EXT,
    EXT_ALLOWED,
    ATTACKER,
    BAD,
];

/// Internal networks of the site (for the Kuroko config).
pub const INTERNAL_NETWORKS: [&str; 2] = ["10.10.0.0/16", "10.8.0.0/24"];
/// The VPN client address pool.
pub const VPN_POOL: &str = "10.8.0.0/24";

/// The interface in the switch namespace that carries the mirror (capture here).
pub const MIRROR_IFACE: &str = "mir1";

static SITE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running site. See the module docs.
pub struct Site {
    prefix: String,
    switch_ns: String,
    created: Vec<String>,
    work: PathBuf,
    keep_work: bool,
}

impl Site {
    /// Builds the whole site: switch, mirror port and every host of [`HOSTS`].
    pub fn new() -> anyhow::Result<Site> {
        require_root_and_tools()?;
        sweep_dead_sites();
        let n = SITE_COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("kt-{}-{n}", std::process::id());
        let work = std::env::temp_dir().join(format!("{prefix}-work"));
        std::fs::create_dir_all(&work)
            .with_context(|| format!("cannot create {}", work.display()))?;
        let mut site = Site {
            switch_ns: format!("{prefix}-sw"),
            prefix,
            created: Vec::new(),
            work,
            keep_work: false,
        };
        site.build()
            .context("cannot build the test site (network namespaces)")?;
        Ok(site)
    }

    fn add_ns(&mut self, name: &str) -> anyhow::Result<()> {
        sh_in("", &["ip", "netns", "add", name], 10)?;
        self.created.push(name.to_string());
        // `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc: the site's hosts use the
        // site's DNS server, never the machine's (whose address does not exist here).
        let etc = netns_etc(name);
        std::fs::create_dir_all(&etc)
            .with_context(|| format!("cannot create {}", etc.display()))?;
        std::fs::write(
            etc.join("resolv.conf"),
            format!("nameserver {}\noptions timeout:1 attempts:1\n", DNS.ip),
        )?;
        // The machine's own name (tools look it up for HELO lines and prompts) is local.
        let me = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        std::fs::write(
            etc.join("hosts"),
            format!("127.0.0.1 localhost\n127.0.1.1 {}\n", me.trim()),
        )?;
        Ok(())
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let sw = self.switch_ns.clone();
        self.add_ns(&sw)?;
        let mut switch_script = String::from(
            "set -e\n\
             sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1\n\
             ip link set lo up\n\
             ip link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n\
             ip link set br0 up\n\
             ip link add mir0 type veth peer name mir1\n\
             ethtool -K mir0 tso off gso off gro off tx off >/dev/null 2>&1 || true\n\
             ethtool -K mir1 tso off gso off gro off tx off >/dev/null 2>&1 || true\n\
             ip link set mir0 up\n\
             ip link set mir1 up\n",
        );
        for (i, host) in HOSTS.iter().enumerate() {
            let ns = self.ns(*host);
            self.add_ns(&ns)?;
            let port = format!("p{i}");
            sh_in(
                "",
                &[
                    "ip",
                    "link",
                    "add",
                    "eth0",
                    "address",
                    &mac_of(host.ip),
                    "netns",
                    &ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &port,
                    "netns",
                    &sw,
                ],
                10,
            )?;
            let host_script = format!(
                "set -e\n\
                 sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1\n\
                 ip link set lo up\n\
                 ethtool -K eth0 tso off gso off gro off tx off >/dev/null 2>&1 || true\n\
                 ip addr add {ip}/32 dev eth0\n\
                 ip link set eth0 up\n\
                 ip route add default dev eth0\n",
                ip = host.ip
            );
            sh_in(&ns, &["sh", "-c", &host_script], 20)
                .with_context(|| format!("cannot set up host {}", host.name))?;
            switch_script.push_str(&format!(
                "ethtool -K {port} tso off gso off gro off tx off >/dev/null 2>&1 || true\n\
                 ip link set {port} master br0\n\
                 ip link set {port} up\n\
                 tc qdisc add dev {port} clsact\n\
                 tc filter add dev {port} ingress matchall action mirred egress mirror dev mir0 2>/dev/null \
                 || tc filter add dev {port} ingress protocol all u32 match u32 0 0 action mirred egress mirror dev mir0\n"
            ));
        }
        sh_in(&sw, &["sh", "-c", &switch_script], 30).context("cannot set up the switch")?;
        // Frames are only forwarded once every port has reached the forwarding state.
        let ports = HOSTS.len();
        wait_until(
            "the switch ports to forward",
            Duration::from_secs(20),
            || {
                run_in(&sw, &["bridge", "link", "show"], 5)
                    .map(|o| {
                        String::from_utf8_lossy(&o.stdout)
                            .lines()
                            .filter(|l| l.contains("state forwarding"))
                            .count()
                            == ports
                    })
                    .unwrap_or(false)
            },
        )?;
        Ok(())
    }

    /// Deletes the mirror port's veth pair and makes it anew, as a re-plugged NIC or a
    /// driver reset does (same name, new ifindex), then points every switch port's mirror
    /// at the new `mir0` again. `mir1` is left down: the caller brings it up (a capture
    /// counts what it receives before the capture re-binds as `missed_before_rebind`).
    pub fn recreate_mirror(&self) -> anyhow::Result<()> {
        let mut script = String::from(
            "set -e\n\
             ip link del mir1 2>/dev/null || true\n\
             ip link add mir0 type veth peer name mir1\n\
             ethtool -K mir0 tso off gso off gro off tx off >/dev/null 2>&1 || true\n\
             ethtool -K mir1 tso off gso off gro off tx off >/dev/null 2>&1 || true\n\
             ip link set mir0 up\n",
        );
        for i in 0..HOSTS.len() {
            let port = format!("p{i}");
            script.push_str(&format!(
                "tc filter del dev {port} ingress 2>/dev/null || true\n\
                 tc filter add dev {port} ingress matchall action mirred egress mirror dev mir0 2>/dev/null \
                 || tc filter add dev {port} ingress protocol all u32 match u32 0 0 action mirred egress mirror dev mir0\n"
            ));
        }
        sh_in(&self.switch_ns, &["sh", "-c", &script], 30)
            .context("cannot re-create the mirror port")
            .map(drop)
    }

    /// The namespace of `host`.
    pub fn ns(&self, host: Host) -> String {
        format!("{}-{}", self.prefix, host.name)
    }

    /// The switch namespace (where [`MIRROR_IFACE`] lives).
    pub fn switch_ns(&self) -> &str {
        &self.switch_ns
    }

    /// A scratch directory for this site (configs, keys, served files, logs).
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// Keep the work directory after the site is dropped (for debugging a failure).
    pub fn keep_work_dir(&mut self) {
        self.keep_work = true;
    }

    /// Runs a command on `host`; returns its output whatever the exit status.
    pub fn run(
        &self,
        host: Host,
        argv: &[&str],
        timeout_secs: u32,
    ) -> anyhow::Result<std::process::Output> {
        run_in(&self.ns(host), argv, timeout_secs)
    }

    /// Runs a command on `host` and fails (with its stderr) unless it exits with 0.
    pub fn sh(
        &self,
        host: Host,
        argv: &[&str],
        timeout_secs: u32,
    ) -> anyhow::Result<std::process::Output> {
        check(
            &format!("{argv:?} on {}", host.name),
            run_in(&self.ns(host), argv, timeout_secs)?,
        )
    }

    /// Starts a server process on `host`, logging to `<work>/<name>.log`.
    pub fn spawn(&self, host: Host, name: &str, argv: &[&str]) -> anyhow::Result<Server> {
        let log = self.work.join(format!("{name}.log"));
        Server::spawn(name, &self.ns(host), argv, &log)
    }

    /// Starts a server on `host` and waits until it listens on `port` (`tcp` or `udp`).
    pub fn serve(
        &self,
        host: Host,
        name: &str,
        proto: &str,
        port: u16,
        argv: &[&str],
    ) -> anyhow::Result<Server> {
        let mut server = self.spawn(host, name, argv)?;
        let ns = self.ns(host);
        let flag = if proto == "udp" { "-Hlun" } else { "-Hltn" };
        let filter = format!("sport = :{port}");
        let listening = wait_until(
            &format!("{name} to listen on {}:{port}/{proto}", host.ip),
            Duration::from_secs(15),
            || {
                if server.ensure_running().is_err() {
                    return true;
                }
                run_in(&ns, &["ss", flag, &filter], 5)
                    .map(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
                    .unwrap_or(false)
            },
        );
        server.ensure_running()?;
        listening.with_context(|| format!("{name} log:\n{}", server.log_text()))?;
        Ok(server)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Whatever still runs in our namespaces was started by us (they are ours alone).
        for ns in &self.created {
            if let Ok(out) = run_in("", &["ip", "netns", "pids", ns], 5) {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<u32>() {
                        signal_pid(pid, libc::SIGKILL);
                    }
                }
            }
        }
        for ns in self.created.iter().rev() {
            let _ = run_in("", &["ip", "netns", "del", ns], 5);
            let _ = std::fs::remove_dir_all(netns_etc(ns));
        }
        if !self.keep_work {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

/// Removes sites left behind by test processes that were killed (SIGKILL, or a timeout's
/// SIGTERM, skip every destructor): namespaces named `kt-<pid>-…` whose process is gone,
/// with whatever that run left running inside them.
fn sweep_dead_sites() {
    let Ok(out) = run_in("", &["ip", "netns", "list"], 10) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = ns
            .strip_prefix("kt-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(pids) = run_in("", &["ip", "netns", "pids", ns], 5) {
            for p in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                if let Ok(p) = p.parse::<u32>() {
                    signal_pid(p, libc::SIGKILL);
                }
            }
        }
        let _ = run_in("", &["ip", "netns", "del", ns], 5);
        let _ = std::fs::remove_dir_all(netns_etc(ns));
    }
}

/// The per-namespace configuration directory `ip netns exec` mounts over /etc files.
fn netns_etc(ns: &str) -> PathBuf {
    Path::new("/etc/netns").join(ns)
}

/// A locally administered MAC that shows the host's address (`02:00:` + the IPv4 bytes).
pub fn mac_of(ip: &str) -> String {
    let b: Vec<u8> = ip.split('.').filter_map(|p| p.parse().ok()).collect();
    format!(
        "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
        b.get(2).copied().unwrap_or(0),
        b.get(3).copied().unwrap_or(0)
    )
}

/// The site needs root (namespaces, raw sockets) and the tools of `.ci/packages.txt`.
pub fn require_root_and_tools() -> anyhow::Result<()> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!(
            "the test site needs root (network namespaces, raw sockets): run the tests as root \
             (CI does), e.g. `sudo -E cargo test -p kuroko-tests`"
        );
    }
    let mut missing = Vec::new();
    for tool in ["ip", "tc", "tcpdump", "tshark", "ss", "timeout"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            missing.push(tool);
        }
    }
    if !missing.is_empty() {
        bail!(
            "the test site needs {} on PATH: install the packages of .ci/packages.txt \
             (`cargo xtask deps`)",
            missing.join(", ")
        );
    }
    Ok(())
}
