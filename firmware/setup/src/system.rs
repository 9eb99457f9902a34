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
    /// Runs the `kuroko` binary with these arguments; returns its output.
    fn kuroko(&mut self, args: &[String]) -> Result<String, String>;
    fn sleep(&mut self, d: Duration);
    /// Seconds since the epoch.
    fn now(&self) -> i64;
}

/// The machine itself.
pub struct RealSystem {
    pub kuroko_exe: PathBuf,
    pub sys_root: PathBuf,
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
        // busybox ntpd on the appliance image; restarted with the new servers.
        let _ = run(Command::new("pkill").args(["-x", "ntpd"]));
        if servers.is_empty() {
            return Ok("time synchronisation off".into());
        }
        let mut c = Command::new("busybox");
        c.arg("ntpd");
        for s in servers {
            c.args(["-p", s]);
        }
        run(&mut c).map(|_| format!("ntpd started with {}", servers.join(", ")))
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

    fn kuroko(&mut self, args: &[String]) -> Result<String, String> {
        run(Command::new(&self.kuroko_exe).args(args))
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

/// Records actions instead of doing them (tests).
#[derive(Default)]
pub struct Recorder {
    pub actions: Vec<String>,
    /// rx_packets answers, consumed in order per interface.
    pub rx: std::collections::BTreeMap<String, Vec<u64>>,
    pub clock: i64,
}

impl System for Recorder {
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
}
