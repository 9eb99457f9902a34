//! A rogue DHCP server on the management LAN, and what the management port sends there
//! (issue 21: "a rogue DHCP server on the LAN moved a statically configured box to its own
//! gateway and DNS").
//!
//! dnsmasq runs in the management LAN's host namespace (`kq-<pid>-m`, see
//! [`crate::qemu::Wire`]) and offers every client an address of its own range, itself as
//! the gateway and itself as the DNS server. tcpdump records the management NIC's tap from
//! before the first boot until the test calls [`Rogue::finish`]. Once the VM runs, a
//! client on the same bridge (a veth in the wire's namespace, busybox udhcpc asking for
//! broadcast replies) takes a lease from the rogue: so the rogue is proved to answer, and
//! its offer and ack reach the VM's tap (the recording shows them). The test then requires
//! that no DHCP frame (UDP port 67 or 68) left the management NIC's MAC in either boot, and
//! reads `show ports` for the management port's address and gateway.

use crate::qemu::{MGMT_LAN_HOST, MGMT_MAC, Wire};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The box's static management address and gateway, set at the first boot's setup.
pub const BOX_ADDRESS: &str = "192.168.77.10/24";
pub const BOX_GATEWAY: &str = "192.168.77.1";
/// The rogue's pool (it names itself, [`MGMT_LAN_HOST`], as gateway and DNS server).
const ROGUE_RANGE: &str = "192.168.77.200,192.168.77.209,255.255.255.0,1h";
/// The client that checks the rogue answers: a veth in the wire's namespace on `kqbr1`.
const CLIENT: &str = "kqmc0";
const CLIENT_PORT: &str = "kqmc1";
/// The udhcpc script of that client: prints what it was offered and changes nothing.
const CLIENT_SCRIPT: &str = "#!/bin/sh\n[ \"$1\" = bound ] && echo \"ROGUE-LEASE ip=$ip router=$router dns=$dns\"\nexit 0\n";

/// The rogue server and the recording of the management tap; both killed by PID on drop.
pub struct Rogue {
    dnsmasq: Child,
    dump: Option<Child>,
    pcap: PathBuf,
    /// What the rogue gave the checking client (`ip=… router=… dns=…`).
    pub lease: String,
}

impl Drop for Rogue {
    fn drop(&mut self) {
        let _ = self.dnsmasq.kill();
        let _ = self.dnsmasq.wait();
        if let Some(d) = &mut self.dump {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

/// What the management tap saw.
pub struct Seen {
    /// Frames from the management NIC (any).
    pub from_box: u32,
    /// DHCP frames from the rogue toward the VM's tap (its offer and ack to the client).
    pub rogue_to_vm: u32,
}

impl Rogue {
    /// Starts the recording and the rogue, and proves the rogue answers on the LAN.
    pub fn start(wire: &Wire, work: &Path) -> anyhow::Result<Rogue> {
        let pcap = work.join("management-lan.pcap");
        let _ = std::fs::remove_file(&pcap);
        let leases = work.join("rogue-dhcp.leases");
        let _ = std::fs::remove_file(&leases);
        let dump = Command::new("ip")
            .args(["netns", "exec", &wire.ns, "tcpdump", "-n", "-U", "-i"])
            .arg(&wire.mgmt_tap)
            .arg("-w")
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start tcpdump on the management tap")?;
        let dnsmasq = Command::new("ip")
            .args(["netns", "exec", &wire.mgmt_host, "dnsmasq"])
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                "--interface=eth0",
                "--bind-interfaces",
                "--user=root",
                "--log-facility=-",
                "--dhcp-authoritative",
                &format!("--dhcp-range={ROGUE_RANGE}"),
                &format!("--dhcp-option=option:router,{MGMT_LAN_HOST}"),
                &format!("--dhcp-option=option:dns-server,{MGMT_LAN_HOST}"),
            ])
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .arg(format!(
                "--pid-file={}",
                work.join("rogue-dhcp.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dnsmasq (apt-get install dnsmasq) in the management LAN")?;
        Ok(Rogue {
            dnsmasq,
            dump: Some(dump),
            pcap,
            lease: String::new(),
        })
    }

    /// Proves the rogue answers: a client on the LAN takes a lease from it. Called once
    /// qemu runs (before, the tap has no carrier and the bridge sends it nothing, so the
    /// rogue's answers would not be seen reaching the VM).
    pub fn check_answers(&mut self, wire: &Wire, work: &Path) -> anyhow::Result<()> {
        self.lease = check_rogue_answers(wire, work)?;
        Ok(())
    }

    /// Stops the recording and reads it: fails when a DHCP frame left the management
    /// NIC, or when none of the rogue's answers reached the VM's tap (then the test would
    /// prove nothing).
    pub fn finish(&mut self) -> anyhow::Result<Seen> {
        if let Some(mut d) = self.dump.take() {
            // SIGINT lets tcpdump flush; the process is ours (spawned in `start`).
            let _ = Command::new("kill")
                .args(["-INT", &d.id().to_string()])
                .status();
            let _ = d.wait();
        }
        let dhcp_from_box = frames(
            &self.pcap,
            &format!("ether src {MGMT_MAC} and udp and (port 67 or port 68)"),
        )?;
        if !dhcp_from_box.is_empty() {
            bail!(
                "{} DHCP frame(s) left the management port ({MGMT_MAC}), although its address \
                 is static:\n{}",
                dhcp_from_box.len(),
                dhcp_from_box.join("\n")
            );
        }
        let seen = Seen {
            from_box: frames(&self.pcap, &format!("ether src {MGMT_MAC}"))?.len() as u32,
            rogue_to_vm: frames(
                &self.pcap,
                &format!("not ether src {MGMT_MAC} and udp src port 67"),
            )?
            .len() as u32,
        };
        if seen.rogue_to_vm == 0 {
            bail!(
                "none of the rogue DHCP server's answers reached the VM's tap: the test proves nothing"
            );
        }
        Ok(seen)
    }
}

/// The frames of `pcap` that match `filter`, one line each (`tcpdump -e`).
fn frames(pcap: &Path, filter: &str) -> anyhow::Result<Vec<String>> {
    let out = Command::new("tcpdump")
        .args(["-n", "-e", "-r"])
        .arg(pcap)
        .arg(filter)
        .stderr(Stdio::null())
        .output()
        .context("cannot read the management LAN's pcap with tcpdump")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// A DHCP client on the management LAN's bridge takes a lease from the rogue (broadcast
/// replies, so they also reach the VM's tap); returns what it was given, which must name
/// the rogue as gateway and DNS. The client's veth is deleted afterwards.
fn check_rogue_answers(wire: &Wire, work: &Path) -> anyhow::Result<String> {
    let inns = |args: &[&str]| -> anyhow::Result<()> {
        let mut v = vec!["-n", &wire.ns];
        v.extend_from_slice(args);
        crate::qemu::ip(&v)
    };
    inns(&[
        "link",
        "add",
        CLIENT,
        "type",
        "veth",
        "peer",
        "name",
        CLIENT_PORT,
    ])?;
    inns(&["link", "set", CLIENT_PORT, "master", "kqbr1"])?;
    inns(&["link", "set", CLIENT_PORT, "up"])?;
    inns(&["link", "set", CLIENT, "up"])?;
    let script = work.join("rogue-check.sh");
    std::fs::write(&script, CLIENT_SCRIPT)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))?;
    let out = Command::new("ip")
        .args(["netns", "exec", &wire.ns, "busybox", "udhcpc"])
        .args([
            "-f", "-q", "-n", "-B", "-t", "5", "-T", "2", "-i", CLIENT, "-s",
        ])
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .context("cannot run busybox udhcpc (apt-get install busybox-static)");
    let _ = inns(&["link", "del", CLIENT]);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lease = text
        .lines()
        .find_map(|l| l.strip_prefix("ROGUE-LEASE "))
        .map(str::to_string)
        .with_context(|| {
            format!(
                "the rogue DHCP server gave a client on the management LAN no lease: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    if !lease.contains(&format!("router={MGMT_LAN_HOST}"))
        || !lease.contains(&format!("dns={MGMT_LAN_HOST}"))
    {
        bail!("the rogue DHCP server did not offer itself as gateway and DNS: {lease}");
    }
    Ok(lease)
}

/// `show ports`' line for the management port must be exactly the static address and its
/// gateway: not the rogue's address, not the rogue as gateway, and nothing besides.
pub fn check_management_port(held: Option<&str>) -> anyhow::Result<()> {
    let want = format!("{BOX_ADDRESS}, default route via {BOX_GATEWAY}");
    match held {
        Some(h) if h == want => Ok(()),
        other => bail!(
            "after the boot the management port eth0 holds {other:?}, want {want:?} (the \
             static `[management]`; the rogue DHCP server offers 192.168.77.200-209 with \
             gateway and DNS {MGMT_LAN_HOST})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::check_management_port;

    #[test]
    fn only_the_static_address_and_gateway_pass() {
        assert!(
            check_management_port(Some("192.168.77.10/24, default route via 192.168.77.1")).is_ok()
        );
        for bad in [
            "192.168.77.200/24, default route via 192.168.77.2",
            "192.168.77.10/24 192.168.77.200/24, default route via 192.168.77.1",
            "192.168.77.10/24, default route via 192.168.77.1, default route via 192.168.77.2",
            "192.168.77.10/24",
            "no address",
        ] {
            assert!(check_management_port(Some(bad)).is_err(), "{bad}");
        }
        assert!(check_management_port(None).is_err());
    }
}
