//! Making a capture port invisible on the wire.
//!
//! A capture NIC sits on the customer's mirror port: the appliance must only listen there.
//! Left to its defaults, Linux makes an up interface talk: IPv6 duplicate-address probes,
//! MLD reports and Router Solicitations at link-up, an address and a default route from any
//! Router Advertisement, ARP answers for every local address (arp_ignore=0), replies to
//! pings. [`plan`] lists, for one interface, everything that turns that off, in the order
//! it must happen (all of it before the link goes up): IPv6 and its autoconfiguration off,
//! strict ARP and reverse-path filtering, `arp off` and `multicast off` on the link, every
//! address and route flushed, and an egress drop (tc clsact + matchall drop) so that
//! nothing the kernel might still want to send leaves the port. AF_PACKET capture is not
//! affected: it reads below all of this (the socket asks for promiscuous mode itself).
//!
//! [`isolate`] applies a plan with the tools of the image (`ip`, `tc` from iproute2; the
//! sysctls through `/proc/sys`). `kuroko capture` calls it once before it opens its
//! sockets, and `kuroko setup --boot` for every non-management NIC before bringing it up.
//! A step that cannot be applied is reported back by name (never silently skipped); the
//! caller decides whether capture still starts (it does, and says so on stderr: losing the
//! capture would be worse than an audible gap in the isolation).

use std::fmt;

/// One thing to change on the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write `value` to `/proc/sys/<key with dots as slashes>`. `optional`: the key may be
    /// missing (IPv6 compiled out or disabled at boot: then there is nothing to turn off).
    Sysctl {
        key: String,
        value: &'static str,
        optional: bool,
    },
    /// Run this command (argv[0] looked up in PATH).
    Command(Vec<String>),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Sysctl { key, value, .. } => write!(f, "sysctl {key}={value}"),
            Step::Command(argv) => write!(f, "{}", argv.join(" ")),
        }
    }
}

/// What can be wrong with a request before anything is changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(
        "`{0}` is not an interface name (1 to 15 characters, no `/`, `.` alone, spaces or control characters)"
    )]
    BadName(String),
    #[error(
        "`lo` is the loopback interface: it is never silenced (capture on it reads local traffic only)"
    )]
    Loopback,
}

/// Linux interface names: 1..=15 bytes, no `/`, whitespace or `:`; `.` and `..` are not
/// names. Checked because the name becomes a path under /proc/sys and a command argument.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
}

/// Everything that makes `iface` silent, in order. `bring_up`: end with the link up (what
/// `kuroko capture` and the boot want); otherwise the link state is left as it is.
pub fn plan(iface: &str, bring_up: bool) -> Result<Vec<Step>, PlanError> {
    if !valid_ifname(iface) {
        return Err(PlanError::BadName(iface.to_string()));
    }
    if iface == "lo" {
        return Err(PlanError::Loopback);
    }
    // A sysctl key with a `.` in the interface name needs `/` there: sysctl(8) would split
    // on it. Keys here are used as paths directly, so the name stays as it is.
    let v6 = |k: &str, value: &'static str| Step::Sysctl {
        key: format!("net/ipv6/conf/{iface}/{k}"),
        value,
        optional: true,
    };
    let v4 = |k: &str, value: &'static str| Step::Sysctl {
        key: format!("net/ipv4/conf/{iface}/{k}"),
        value,
        optional: false,
    };
    let cmd = |argv: &[&str]| Step::Command(argv.iter().map(|s| s.to_string()).collect());
    let mut steps = vec![
        // Autoconfiguration off first, then IPv6 itself (which also drops its link-local
        // address and stops DAD, MLD and router solicitations).
        v6("accept_ra", "0"),
        v6("autoconf", "0"),
        v6("accept_dad", "0"),
        v6("router_solicitations", "0"),
        v6("disable_ipv6", "1"),
        // 8: reply to no ARP request at all; 2: never announce a local address from here;
        // 1: strict reverse-path filter (drop what would not be routed back out here).
        v4("arp_ignore", "8"),
        v4("arp_announce", "2"),
        v4("rp_filter", "1"),
        v4("accept_redirects", "0"),
        v4("accept_source_route", "0"),
        v4("send_redirects", "0"),
        cmd(&[
            "ip",
            "link",
            "set",
            "dev",
            iface,
            "arp",
            "off",
            "multicast",
            "off",
        ]),
        cmd(&["ip", "addr", "flush", "dev", iface]),
        cmd(&["ip", "route", "flush", "dev", iface]),
        // Nothing leaves: an egress drop of every frame on the port's clsact hook.
        cmd(&["tc", "qdisc", "replace", "dev", iface, "clsact"]),
        cmd(&[
            "tc", "filter", "replace", "dev", iface, "egress", "pref", "1", "handle", "1",
            "matchall", "action", "drop",
        ]),
    ];
    if bring_up {
        steps.push(cmd(&["ip", "link", "set", "dev", iface, "up"]));
    }
    Ok(steps)
}

/// A step that could not be applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub step: String,
    pub error: String,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.error)
    }
}

/// Applies [`plan`] for `iface`; returns the steps that failed (empty: the port is silent).
/// Every step is tried even when one before it failed: each one closes a leak of its own.
pub fn isolate(iface: &str, bring_up: bool) -> Result<Vec<Failed>, PlanError> {
    let steps = plan(iface, bring_up)?;
    Ok(sys::apply(&steps))
}

/// Applying steps to the running system.
pub mod sys {
    use super::{Failed, Step};
    use std::path::Path;
    use std::process::{Command, Stdio};

    /// Runs every step; returns the ones that failed.
    pub fn apply(steps: &[Step]) -> Vec<Failed> {
        steps
            .iter()
            .filter_map(|s| {
                apply_one(s).err().map(|error| Failed {
                    step: s.to_string(),
                    error,
                })
            })
            .collect()
    }

    fn apply_one(step: &Step) -> Result<(), String> {
        match step {
            Step::Sysctl {
                key,
                value,
                optional,
            } => {
                let path = Path::new("/proc/sys").join(key);
                if *optional && !path.exists() {
                    return Ok(());
                }
                std::fs::write(&path, value).map_err(|e| format!("{}: {e}", path.display()))
            }
            Step::Command(argv) => {
                let out = Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "{} ({})",
                        String::from_utf8_lossy(&out.stderr).trim(),
                        out.status
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leak_is_closed_before_the_link_goes_up() {
        let steps = plan("eth1", true).unwrap();
        let text: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        for want in [
            "sysctl net/ipv6/conf/eth1/disable_ipv6=1",
            "sysctl net/ipv6/conf/eth1/accept_ra=0",
            "sysctl net/ipv6/conf/eth1/autoconf=0",
            "sysctl net/ipv4/conf/eth1/arp_ignore=8",
            "sysctl net/ipv4/conf/eth1/arp_announce=2",
            "sysctl net/ipv4/conf/eth1/rp_filter=1",
            "ip link set dev eth1 arp off multicast off",
            "ip addr flush dev eth1",
            "tc filter replace dev eth1 egress pref 1 handle 1 matchall action drop",
        ] {
            assert!(text.iter().any(|t| t == want), "missing {want}: {text:#?}");
        }
        assert_eq!(
            text.last().unwrap(),
            "ip link set dev eth1 up",
            "up comes last"
        );
        // RA off before IPv6 is turned off (and long before up).
        let pos = |s: &str| text.iter().position(|t| t.contains(s)).unwrap();
        assert!(pos("accept_ra") < pos("disable_ipv6"));
        assert!(
            !plan("eth1", false)
                .unwrap()
                .iter()
                .any(|s| s.to_string().ends_with(" up"))
        );
    }

    #[test]
    fn hostile_names_are_refused_before_anything_runs() {
        for bad in [
            "",
            "..",
            "a/b",
            "-x",
            "eth 1",
            "0123456789abcdef",
            "e\u{1b}",
        ] {
            assert_eq!(
                plan(bad, true),
                Err(PlanError::BadName(bad.into())),
                "{bad:?}"
            );
        }
        assert!(plan("enp3s0.100", true).is_ok());
        assert_eq!(plan("lo", true), Err(PlanError::Loopback));
    }
}
