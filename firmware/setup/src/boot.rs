//! The network at boot: `[management]` applied, every other NIC silenced.
//!
//! `kuroko setup --boot` (run once by the image's rcS, before any NIC is up) turns the
//! config into steps with [`plan`] and applies them. Which NIC manages: `[management]
//! interface`, else the board profile's management NIC; every other NIC (capture ports and
//! unused ones) is silenced with [`kuroko_board::capture_port`] and brought up, so the
//! technician still sees which has a link. The management NIC gets exactly what the config
//! says: a static address and gateway, DHCP only when `address = "dhcp"`, or no address at
//! all (serial console only) — a rogue DHCP server on the LAN cannot move a statically
//! configured box. IPv6 stays off on it (no Router Advertisement can add a route); NTP
//! servers are started through [`crate::System::set_ntp`], the same path `set ntp` takes.

use crate::System;
use kuroko_board::capture_port::{self, Step};
use kuroko_board::{Hardware, Profile};
use kuroko_model::config::Config;
use std::path::Path;

/// The udhcpc hook in the image (address, default route, /run/resolv.conf).
pub const UDHCPC_HOOK: &str = "/usr/local/sbin/kuroko-udhcpc";

/// `[management] address` value that asks for DHCP.
pub const DHCP: &str = "dhcp";

/// What the boot does to the network, before anything is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The management NIC, when one is known and present.
    pub management: Option<String>,
    /// Steps in order (silence, then addresses, then up).
    pub steps: Vec<Step>,
    /// NTP servers to start (empty: none).
    pub ntp: Vec<String>,
    /// Things the technician should know (shown on the console at boot).
    pub notes: Vec<String>,
}

fn cmd(argv: &[&str]) -> Step {
    Step::Command(argv.iter().map(|s| s.to_string()).collect())
}

/// The config → steps translation. `profile_management`: the board profile's management
/// NIC; `nics`: the NICs present (without `lo`).
pub fn plan(config: &Config, profile_management: Option<&str>, nics: &[String]) -> Plan {
    let m = &config.management;
    let mut notes = Vec::new();
    let wanted = if m.interface.trim().is_empty() {
        profile_management.map(str::to_string)
    } else {
        Some(m.interface.trim().to_string())
    };
    let management = match wanted {
        Some(w) if config.capture.interfaces.contains(&w) => {
            notes.push(format!(
                "{w} is both the management port and a capture port: it is used for capture only (set management or set capture to fix)"
            ));
            None
        }
        Some(w) if nics.contains(&w) => Some(w),
        Some(w) => {
            notes.push(format!(
                "management port {w} not found: no management network"
            ));
            None
        }
        None => None,
    };
    let mut steps = vec![cmd(&["ip", "link", "set", "dev", "lo", "up"])];
    for n in nics {
        if Some(n) == management.as_ref() {
            continue;
        }
        match capture_port::plan(n, true) {
            Ok(s) => steps.extend(s),
            Err(capture_port::PlanError::Loopback) => {}
            Err(e) => notes.push(format!("NIC left down: {e}")),
        }
    }
    if let Some(mg) = &management {
        let v6 = |k: &str, value: &'static str| Step::Sysctl {
            key: format!("net/ipv6/conf/{mg}/{k}"),
            value,
            optional: true,
        };
        steps.extend([
            v6("accept_ra", "0"),
            v6("autoconf", "0"),
            v6("disable_ipv6", "1"),
        ]);
        steps.push(cmd(&["ip", "addr", "flush", "dev", mg]));
        let address = m.address.trim();
        if address.eq_ignore_ascii_case(DHCP) {
            steps.push(cmd(&["ip", "link", "set", "dev", mg, "up"]));
            steps.push(cmd(&[
                "busybox",
                "udhcpc",
                "-i",
                mg,
                "-b",
                "-t",
                "5",
                "-s",
                UDHCPC_HOOK,
            ]));
        } else if !address.is_empty() {
            steps.push(cmd(&["ip", "addr", "add", address, "dev", mg]));
            steps.push(cmd(&["ip", "link", "set", "dev", mg, "up"]));
            let gw = m.gateway.trim();
            if !gw.is_empty() {
                steps.push(cmd(&[
                    "ip", "route", "replace", "default", "via", gw, "dev", mg,
                ]));
            }
        } else {
            steps.push(cmd(&["ip", "link", "set", "dev", mg, "up"]));
            notes.push(format!(
                "management port {mg} has no address (set address CIDR [GW] or set address dhcp)"
            ));
        }
    }
    Plan {
        management,
        steps,
        ntp: m.ntp.clone(),
        notes,
    }
}

/// The board profile `[management] board` names: a shipped name or a file (`None`: unset).
pub fn load_profile(board: &str) -> Option<Result<Profile, String>> {
    let b = board.trim();
    if b.is_empty() {
        return None;
    }
    Some(match kuroko_board::shipped(b) {
        Some(r) => r.map_err(|e| e.to_string()),
        None => Profile::load(Path::new(b)).map_err(|e| e.to_string()),
    })
}

/// Reads the config (a missing one is the fresh box's empty config), plans and applies;
/// returns the lines to show on the console (notes and every step that failed).
pub fn apply(config_path: &Path, sys_root: &Path, system: &mut dyn System) -> Vec<String> {
    let mut lines = Vec::new();
    let config = if config_path.exists() {
        Config::load(config_path).unwrap_or_else(|e| {
            lines.push(format!(
                "{e}; the network starts as on a fresh box (no management address)"
            ));
            Config::default()
        })
    } else {
        Config::default()
    };
    let profile = match load_profile(&config.management.board) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            lines.push(e);
            None
        }
        None => None,
    };
    let profile_mgmt = profile
        .as_ref()
        .and_then(|p| p.management_nic())
        .map(|n| n.name.clone());
    let nics: Vec<String> = Hardware::from_sys(sys_root)
        .nics
        .into_iter()
        .map(|n| n.name)
        .filter(|n| n != "lo")
        .collect();
    let p = plan(&config, profile_mgmt.as_deref(), &nics);
    lines.extend(p.notes.iter().cloned());
    for f in capture_port::sys::apply(&p.steps) {
        lines.push(format!("failed: {f}"));
    }
    if !p.ntp.is_empty()
        && let Err(e) = system.set_ntp(&p.ntp)
    {
        lines.push(format!("NTP not started: {e}"));
    }
    // rcS applied the kernel hardening before the disks; say on the console what the
    // kernel did not take (only on the real /sys: tests pass a fake tree).
    if sys_root == Path::new("/sys") {
        for d in kuroko_board::hardening::sysctl_differences(Path::new("/proc/sys")) {
            lines.push(format!("kernel hardening not in force: {d}"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| s.to_string()).collect()
    }
    fn nics() -> Vec<String> {
        vec!["eth0".into(), "eth1".into(), "eth2".into()]
    }

    #[test]
    fn a_static_address_is_applied_and_no_dhcp_client_runs() {
        let mut c = Config::default();
        c.management.interface = "eth0".into();
        c.management.address = "192.0.2.10/24".into();
        c.management.gateway = "192.0.2.1".into();
        c.management.ntp = vec!["192.0.2.123".into()];
        c.capture.interfaces = vec!["eth1".into()];
        let p = plan(&c, Some("eth0"), &nics());
        let t = text(&p);
        assert_eq!(p.management.as_deref(), Some("eth0"));
        for want in [
            "ip addr add 192.0.2.10/24 dev eth0",
            "ip route replace default via 192.0.2.1 dev eth0",
            "sysctl net/ipv6/conf/eth0/accept_ra=0",
        ] {
            assert!(t.iter().any(|s| s == want), "missing {want}: {t:#?}");
        }
        assert!(!t.iter().any(|s| s.contains("udhcpc")), "{t:#?}");
        assert_eq!(p.ntp, vec!["192.0.2.123".to_string()]);
        // The capture port and the unused port are silenced before they go up; the
        // management port is not.
        for n in ["eth1", "eth2"] {
            let drop = t
                .iter()
                .position(|s| s.starts_with(&format!("tc filter replace dev {n} egress")))
                .unwrap();
            let up = t
                .iter()
                .position(|s| s == &format!("ip link set dev {n} up"))
                .unwrap();
            assert!(drop < up, "{n}: {t:#?}");
        }
        assert!(!t.iter().any(|s| s.contains("dev eth0 arp off")));
        // Addresses before the route, flush before the address.
        let pos = |s: &str| t.iter().position(|x| x == s).unwrap();
        assert!(pos("ip addr flush dev eth0") < pos("ip addr add 192.0.2.10/24 dev eth0"));
    }

    #[test]
    fn dhcp_only_when_configured_and_only_on_the_management_port() {
        let mut c = Config::default();
        c.management.address = "dhcp".into();
        let p = plan(&c, Some("eth0"), &nics());
        let t = text(&p);
        let dhcp: Vec<_> = t.iter().filter(|s| s.contains("udhcpc")).collect();
        assert_eq!(
            dhcp,
            vec!["busybox udhcpc -i eth0 -b -t 5 -s /usr/local/sbin/kuroko-udhcpc"]
        );
        // Nothing configured: no DHCP anywhere, the port just comes up without an address.
        let p = plan(&Config::default(), Some("eth0"), &nics());
        assert!(!text(&p).iter().any(|s| s.contains("udhcpc")));
        assert!(p.notes.iter().any(|n| n.contains("has no address")));
    }

    #[test]
    fn a_management_port_that_is_also_captured_or_missing_gets_no_address() {
        let mut c = Config::default();
        c.management.interface = "eth1".into();
        c.management.address = "dhcp".into();
        c.capture.interfaces = vec!["eth1".into()];
        let p = plan(&c, Some("eth0"), &nics());
        assert_eq!(p.management, None);
        assert!(!text(&p).iter().any(|s| s.contains("udhcpc")));
        assert!(
            text(&p)
                .iter()
                .any(|s| s == "ip link set dev eth1 arp off multicast off")
        );
        c.management.interface = "eth9".into();
        c.capture.interfaces.clear();
        let p = plan(&c, None, &nics());
        assert_eq!(p.management, None);
        assert!(p.notes[0].contains("eth9 not found"));
        // No management port at all: every NIC is silenced.
        let p = plan(&Config::default(), None, &nics());
        for n in nics() {
            assert!(
                text(&p)
                    .iter()
                    .any(|s| s == &format!("ip addr flush dev {n}"))
            );
            assert!(
                text(&p)
                    .iter()
                    .any(|s| s.starts_with(&format!("tc qdisc replace dev {n}")))
            );
        }
    }
}
