//! Everything the setup shell does to the machine, behind one trait.
//!
//! The real implementation runs `ip`, `date` and the `kuroko` binary; tests use
//! [`Recorder`], which keeps a list of what would have been done, so a test of the shell
//! never changes the host's addresses or clock.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub trait System {
    /// Sets the management address (CIDR) and default gateway; returns what was done.
    fn set_address(
        &mut self,
        iface: &str,
        cidr: &str,
        gateway: Option<&str>,
    ) -> Result<String, String>;
    /// Sets the system clock (UTC seconds).
    fn set_clock(&mut self, unix_secs: i64) -> Result<String, String>;
    /// Starts (or stops, with no servers) time synchronisation.
    fn set_ntp(&mut self, servers: &[String]) -> Result<String, String>;
    /// Received packets of an interface (from its statistics).
    fn rx_packets(&self, iface: &str) -> Option<u64>;
    /// The addresses an interface holds now (`10.0.2.15/24`, `fe80::1/64`): `show ports`
    /// shows them, so the technician (and the qemu test) can see a capture port holds none.
    fn addresses(&self, iface: &str) -> Vec<String>;
    /// The default routes (IPv4 and IPv6) now: the interface each goes through and its
    /// gateway (`show ports` shows both, so the technician, and the qemu test, can see the
    /// management port kept its configured gateway).
    fn default_routes(&self) -> Vec<DefaultRoute>;
    /// Erases everything inside the data directory irrecoverably (overwritten, then
    /// removed: [`crate::erase`]), after stopping what writes into it (the
    /// damaged-credential recovery and factory reset).
    fn erase_data(&mut self, dir: &std::path::Path) -> Result<String, String>;
    /// Runs the `kuroko` binary with these arguments; returns its output.
    fn kuroko(&mut self, args: &[String]) -> Result<String, String>;
    /// Runs the `kuroko` binary on the shell's own terminal (its progress display shows
    /// as it goes: `decommission`).
    fn kuroko_live(&mut self, args: &[String]) -> Result<(), String>;
    fn sleep(&mut self, d: Duration);
    /// Seconds since the epoch.
    fn now(&self) -> i64;
    /// Mounts the block device `dev` on `dir` (made when missing) with `options`.
    fn mount(
        &mut self,
        dev: &std::path::Path,
        dir: &std::path::Path,
        options: &str,
    ) -> Result<String, String>;
    /// Flushes everything to the disks (`sync`), then unmounts `dir`.
    fn unmount(&mut self, dir: &std::path::Path) -> Result<String, String>;
    /// Restarts the box through init (rcK syncs and unmounts): `reboot`, after `update`.
    fn reboot(&mut self) -> Result<String, String> {
        Err("reboot is not supported here".into())
    }
    /// The children of `kuroko run` running now, as `/proc` shows them (`selftest`).
    fn kuroko_children(&self) -> Vec<crate::privcheck::Child> {
        Vec::new()
    }
}

/// The machine itself.
pub struct RealSystem {
    pub kuroko_exe: PathBuf,
    pub sys_root: PathBuf,
    /// Where the running ntpd's PID is kept (`/run/kuroko-ntpd.pid`): `set ntp` stops that
    /// one process (and only it) before it starts the next, so there is never more than one.
    pub ntpd_pidfile: PathBuf,
    /// The NTP daemon's argv before the `-p SERVER`s; it must stay in the foreground (`-n`)
    /// so the PID is its own.
    pub ntpd: Vec<String>,
}

impl RealSystem {
    /// The appliance's defaults: busybox ntpd, its PID in /run.
    pub fn new(kuroko_exe: PathBuf, sys_root: PathBuf) -> RealSystem {
        RealSystem {
            kuroko_exe,
            sys_root,
            ntpd_pidfile: PathBuf::from("/run/kuroko-ntpd.pid"),
            ntpd: vec!["busybox".into(), "ntpd".into(), "-n".into()],
        }
    }

    /// Stops the ntpd recorded in the PID file, if it still runs and still is an ntpd (a
    /// recycled PID belongs to someone else and is left alone).
    fn stop_ntpd(&self) -> Result<(), String> {
        let Ok(text) = std::fs::read_to_string(&self.ntpd_pidfile) else {
            return Ok(());
        };
        let _ = std::fs::remove_file(&self.ntpd_pidfile);
        let Ok(pid) = text.trim().parse::<i32>() else {
            return Ok(());
        };
        if pid <= 1 {
            return Ok(());
        }
        // Right after a spawn the child may be between exec's release of its parent and
        // the setup of its new argv: its cmdline reads empty for a moment. Read again then.
        let mut cmdline = Vec::new();
        for _ in 0..100 {
            cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !cmdline.is_empty() || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !String::from_utf8_lossy(&cmdline).contains("ntpd") {
            return Ok(());
        }
        let pid = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(|e| format!("cannot stop ntpd (pid {pid}): {e}"))?;
        // Wait until it is gone (reaped when it is our child; when it is not, or SIGCHLD is
        // ignored and the kernel reaps it, until its PID no longer answers); SIGKILL after
        // 2 s. Bounded: 4 s in all. So no second ntpd ever starts beside this one.
        use nix::errno::Errno;
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let mut deadline = std::time::Instant::now() + Duration::from_secs(2);
        let mut killed = false;
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(_) => break,
                Err(_) => {
                    if nix::sys::signal::kill(pid, None) == Err(Errno::ESRCH) {
                        break;
                    }
                }
            }
            if std::time::Instant::now() >= deadline {
                if killed {
                    return Err(format!("ntpd (pid {pid}) does not stop"));
                }
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                killed = true;
                deadline += Duration::from_secs(2);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{shown} failed: {}", text.trim()))
    }
}

impl System for RealSystem {
    fn mount(
        &mut self,
        dev: &std::path::Path,
        dir: &std::path::Path,
        options: &str,
    ) -> Result<String, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        run(Command::new("mount")
            .arg("-o")
            .arg(options)
            .arg(dev)
            .arg(dir))
    }
    fn unmount(&mut self, dir: &std::path::Path) -> Result<String, String> {
        run(&mut Command::new("sync"))?;
        run(Command::new("umount").arg(dir))
    }
    fn reboot(&mut self) -> Result<String, String> {
        run(&mut Command::new("sync"))?;
        run(Command::new("busybox").arg("reboot"))
    }
    fn kuroko_children(&self) -> Vec<crate::privcheck::Child> {
        crate::privcheck::scan(std::path::Path::new("/proc"))
    }
    fn set_address(
        &mut self,
        iface: &str,
        cidr: &str,
        gateway: Option<&str>,
    ) -> Result<String, String> {
        run(Command::new("ip").args(["addr", "flush", "dev", iface]))?;
        run(Command::new("ip").args(["addr", "add", cidr, "dev", iface]))?;
        run(Command::new("ip").args(["link", "set", iface, "up"]))?;
        if let Some(gw) = gateway {
            run(Command::new("ip").args(["route", "replace", "default", "via", gw, "dev", iface]))?;
        }
        Ok(format!(
            "{iface} {cidr}{}",
            gateway.map(|g| format!(" via {g}")).unwrap_or_default()
        ))
    }

    fn set_clock(&mut self, unix_secs: i64) -> Result<String, String> {
        run(Command::new("date").args(["-u", "-s", &format!("@{unix_secs}")]))
    }

    fn set_ntp(&mut self, servers: &[String]) -> Result<String, String> {
        // One ntpd at a time: the previous one (tracked by PID, no pkill on the image) goes
        // before the next starts.
        self.stop_ntpd()?;
        if servers.is_empty() {
            return Ok("time synchronisation off".into());
        }
        let (prog, pre) = self.ntpd.split_first().ok_or("no ntpd command")?;
        let mut c = Command::new(prog);
        c.args(pre);
        for s in servers {
            c.args(["-p", s]);
        }
        let child = c
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {prog}: {e}"))?;
        std::fs::write(&self.ntpd_pidfile, format!("{}\n", child.id())).map_err(|e| {
            format!(
                "ntpd started (pid {}) but {} cannot be written: {e}",
                child.id(),
                self.ntpd_pidfile.display()
            )
        })?;
        Ok(format!("ntpd started with {}", servers.join(", ")))
    }

    fn addresses(&self, iface: &str) -> Vec<String> {
        let Ok(all) = nix::ifaddrs::getifaddrs() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in all.filter(|a| a.interface_name == iface) {
            let (Some(addr), mask) = (a.address, a.netmask) else {
                continue;
            };
            if let Some(v4) = addr.as_sockaddr_in() {
                let bits = mask
                    .as_ref()
                    .and_then(|m| m.as_sockaddr_in())
                    .map_or(32, |m| m.ip().to_bits().count_ones());
                out.push(format!("{}/{bits}", v4.ip()));
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                let bits = mask
                    .as_ref()
                    .and_then(|m| m.as_sockaddr_in6())
                    .map_or(128, |m| m.ip().to_bits().count_ones());
                out.push(format!("{}/{bits}", v6.ip()));
            }
        }
        out
    }

    fn default_routes(&self) -> Vec<DefaultRoute> {
        let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
        default_routes(&v4, &v6)
    }

    fn rx_packets(&self, iface: &str) -> Option<u64> {
        std::fs::read_to_string(
            self.sys_root
                .join("class/net")
                .join(iface)
                .join("statistics/rx_packets"),
        )
        .ok()?
        .trim()
        .parse()
        .ok()
    }

    fn erase_data(&mut self, dir: &std::path::Path) -> Result<String, String> {
        let plan = crate::erase::Plan {
            data: dir.to_path_buf(),
            config: None,
            credential: None,
            certificate_dir: None,
            stop_running: true,
            wipe_free_space: None,
        };
        let o = crate::erase::decommission(&plan, &mut |_| {}).map_err(|e| e.to_string())?;
        Ok(format!(
            "{} files overwritten ({} bytes) and removed in {}",
            o.files,
            o.bytes,
            dir.display()
        ))
    }

    fn kuroko(&mut self, args: &[String]) -> Result<String, String> {
        run(Command::new(&self.kuroko_exe).args(args))
    }

    fn kuroko_live(&mut self, args: &[String]) -> Result<(), String> {
        let status = Command::new(&self.kuroko_exe)
            .args(args)
            .status()
            .map_err(|e| format!("kuroko {}: {e}", args.join(" ")))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "kuroko {} failed ({status})",
                args.first().cloned().unwrap_or_default()
            ))
        }
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A default route: the interface it goes through and its gateway (`None`: on-link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    pub iface: String,
    pub via: Option<std::net::IpAddr>,
}

impl DefaultRoute {
    pub fn new(iface: &str, via: Option<&str>) -> DefaultRoute {
        DefaultRoute {
            iface: iface.to_string(),
            via: via.and_then(|v| v.parse().ok()),
        }
    }
}

/// The default routes in `/proc/net/route` (IPv4: destination and mask `00000000`; the
/// gateway is the address's bytes as a native-endian hex word) and `/proc/net/ipv6_route`
/// (IPv6: `::/0`; the next hop in network order), each (interface, gateway) once, in order.
/// Unreadable lines are skipped.
pub fn default_routes(proc_route: &str, proc_ipv6_route: &str) -> Vec<DefaultRoute> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut out: Vec<DefaultRoute> = Vec::new();
    let mut add = |iface: &str, via: Option<IpAddr>| {
        let r = DefaultRoute {
            iface: iface.to_string(),
            via: via.filter(|v| !v.is_unspecified()),
        };
        if iface != "lo" && !out.contains(&r) {
            out.push(r);
        }
    };
    for line in proc_route.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags RefCnt Use Metric Mask …
        if f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" {
            let via = u32::from_str_radix(f[2], 16)
                .ok()
                .map(|g| IpAddr::V4(Ipv4Addr::from(g.to_ne_bytes())));
            add(f[0], via);
        }
    }
    for line in proc_ipv6_route.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // dest dest_len src src_len next_hop metric refcnt use flags iface
        if f.len() == 10 && f[0].bytes().all(|b| b == b'0') && f[1] == "00" {
            let via = u128::from_str_radix(f[4], 16)
                .ok()
                .map(|g| IpAddr::V6(Ipv6Addr::from(g)));
            add(f[9], via);
        }
    }
    out
}

/// Records actions instead of doing them (tests).
#[derive(Default)]
pub struct Recorder {
    pub actions: Vec<String>,
    /// `addresses` answers per interface.
    pub addrs: std::collections::BTreeMap<String, Vec<String>>,
    /// `default_routes` answer.
    pub default_routes: Vec<DefaultRoute>,
    /// rx_packets answers, consumed in order per interface.
    pub rx: std::collections::BTreeMap<String, Vec<u64>>,
    pub clock: i64,
    /// `kuroko_children` answer.
    pub children: Vec<crate::privcheck::Child>,
}

impl System for Recorder {
    fn mount(
        &mut self,
        dev: &std::path::Path,
        dir: &std::path::Path,
        options: &str,
    ) -> Result<String, String> {
        self.actions.push(format!(
            "mount {} {} {options}",
            dev.display(),
            dir.display()
        ));
        Ok(String::new())
    }
    fn unmount(&mut self, dir: &std::path::Path) -> Result<String, String> {
        self.actions.push(format!("umount {}", dir.display()));
        Ok(String::new())
    }
    fn set_address(
        &mut self,
        iface: &str,
        cidr: &str,
        gateway: Option<&str>,
    ) -> Result<String, String> {
        self.actions
            .push(format!("address {iface} {cidr} {}", gateway.unwrap_or("-")));
        Ok(format!("{iface} {cidr}"))
    }
    fn set_clock(&mut self, unix_secs: i64) -> Result<String, String> {
        self.actions.push(format!("clock {unix_secs}"));
        self.clock = unix_secs;
        Ok(String::new())
    }
    fn set_ntp(&mut self, servers: &[String]) -> Result<String, String> {
        self.actions.push(format!("ntp {}", servers.join(",")));
        Ok(String::new())
    }
    fn rx_packets(&self, iface: &str) -> Option<u64> {
        self.rx.get(iface).and_then(|v| v.first().copied())
    }
    fn addresses(&self, iface: &str) -> Vec<String> {
        self.addrs.get(iface).cloned().unwrap_or_default()
    }
    fn default_routes(&self) -> Vec<DefaultRoute> {
        self.default_routes.clone()
    }
    fn erase_data(&mut self, dir: &std::path::Path) -> Result<String, String> {
        self.actions.push(format!("erase {}", dir.display()));
        Ok(String::new())
    }
    fn kuroko_live(&mut self, args: &[String]) -> Result<(), String> {
        self.actions.push(format!("kuroko {}", args.join(" ")));
        Ok(())
    }
    fn kuroko(&mut self, args: &[String]) -> Result<String, String> {
        self.actions.push(format!("kuroko {}", args.join(" ")));
        Ok(format!(
            "ran kuroko {}\n",
            args.first().cloned().unwrap_or_default()
        ))
    }
    fn sleep(&mut self, d: Duration) {
        self.actions.push(format!("sleep {}", d.as_secs()));
        for v in self.rx.values_mut() {
            if v.len() > 1 {
                v.remove(0);
            }
        }
    }
    fn now(&self) -> i64 {
        self.clock
    }
    fn kuroko_children(&self) -> Vec<crate::privcheck::Child> {
        self.children.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routes_of_both_families_are_found_and_others_are_not() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  eth1\t00000000\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n";
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth1\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        let r = |i: &str, via: Option<&str>| DefaultRoute::new(i, via);
        assert_eq!(
            default_routes(v4, v6),
            vec![r("eth0", Some("10.0.2.2")), r("eth1", Some("fe80::1"))]
        );
        assert_eq!(default_routes(v4, ""), vec![r("eth0", Some("10.0.2.2"))]);
        assert!(default_routes("", "garbage\n").is_empty());
        // On-link (no gateway): the route, without a `via`.
        let onlink = "Iface\tDestination\tGateway\n                      ppp0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_routes(onlink, ""), vec![r("ppp0", None)]);
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    #[test]
    fn set_ntp_keeps_exactly_one_ntpd_and_stops_it_when_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-ntpd");
        std::fs::write(&fake, "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let mut s = RealSystem::new("kuroko".into(), "/sys".into());
        s.ntpd_pidfile = dir.path().join("ntpd.pid");
        s.ntpd = vec![fake.display().to_string()];
        let pid = |s: &RealSystem| -> i32 {
            std::fs::read_to_string(&s.ntpd_pidfile)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        s.set_ntp(&["192.0.2.1".into()]).unwrap();
        let first = pid(&s);
        assert!(alive(first));
        s.set_ntp(&["192.0.2.2".into()]).unwrap();
        let second = pid(&s);
        assert_ne!(first, second);
        assert!(!alive(first), "the first ntpd still runs beside the second");
        assert!(alive(second));
        assert_eq!(s.set_ntp(&[]).unwrap(), "time synchronisation off");
        assert!(!alive(second), "ntpd still runs after `set ntp off`");
        assert!(!s.ntpd_pidfile.exists());
    }
}
