//! The capture port as an attacker on the mirrored network sees it (issue 21, "invisible on
//! the wire"), frame by frame, on the booted appliance in qemu.
//!
//! Host A on the capture wire sends what would make a normal Linux port speak or take an
//! address: a Router Advertisement with an autonomous prefix and a default route, ARP
//! requests for the management address and for an address on the wire, pings (unicast to
//! the port's MAC, and broadcast), a Neighbor Solicitation and an all-nodes echo request
//! for the port's link-local address, and a DHCP offer to its MAC. Meanwhile tcpdump on the
//! tap (the VM side of the wire) records every frame whose source is the capture port's
//! MAC. The proof is that none is recorded while the frames sent are seen going to the VM
//! (the same capture, other direction: the probe reached it), and that `show ports` on the
//! serial console still shows the capture port holding no address and no default route.
//!
//! Scapy runs with Debian's /usr/bin/python3 (the one `.ci/pip.txt` installs into).

use crate::qemu::{HOST_A, Wire};
use anyhow::{Context, bail};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The capture NIC's MAC (`xtask/src/qemu.rs`, `-device virtio-net-pci,netdev=cap`).
pub const CAPTURE_MAC: &str = "52:54:00:6b:00:02";
/// The box's management address (static, set at the first boot's setup before the probe):
/// an ARP request for it arriving on the capture port must get no answer from there.
const MGMT_ADDR: &str = "192.168.77.10";

/// The frames, each sent 3 times, 0.2 s apart (the script prints how many it sent).
const SEND: &str = r#"
import sys, time
from scapy.all import (Ether, ARP, IP, ICMP, UDP, BOOTP, DHCP, IPv6, ICMPv6ND_RA,
    ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr, ICMPv6ND_NS, ICMPv6EchoRequest, sendp,
    get_if_hwaddr)
vm, mgmt, me = sys.argv[1], sys.argv[2], sys.argv[3]
src = get_if_hwaddr("eth0")
ll = "fe80::5054:ff:fe6b:2"
frames = [
    Ether(src=src, dst="33:33:00:00:00:01") / IPv6(src="fe80::1", dst="ff02::1", hlim=255)
    / ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=src)
    / ICMPv6NDOptPrefixInfo(prefix="2001:db8:99::", prefixlen=64, L=1, A=1,
                            validlifetime=86400, preferredlifetime=14400),
    Ether(src=src, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=src, psrc=me, pdst=mgmt),
    Ether(src=src, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=src, psrc=me, pdst="10.99.0.77"),
    Ether(src=src, dst=vm) / IP(src=me, dst=mgmt) / ICMP(),
    Ether(src=src, dst="ff:ff:ff:ff:ff:ff") / IP(src=me, dst="255.255.255.255") / ICMP(),
    Ether(src=src, dst="33:33:ff:6b:00:02") / IPv6(src="fe80::1", dst="ff02::1:ff6b:2", hlim=255)
    / ICMPv6ND_NS(tgt=ll) / ICMPv6NDOptSrcLLAddr(lladdr=src),
    Ether(src=src, dst="33:33:00:00:00:01") / IPv6(src="fe80::1", dst="ff02::1") / ICMPv6EchoRequest(),
    Ether(src=src, dst=vm) / IP(src=me, dst="255.255.255.255") / UDP(sport=67, dport=68)
    / BOOTP(op=2, yiaddr="10.99.0.200", siaddr=me, chaddr=bytes.fromhex(vm.replace(":", "")))
    / DHCP(options=[("message-type", "offer"), ("server_id", me), ("router", me),
                    ("subnet_mask", "255.255.255.0"), ("lease_time", 3600), "end"]),
]
n = 0
for _ in range(3):
    for f in frames:
        sendp(f, iface="eth0", verbose=False)
        n += 1
    time.sleep(0.2)
print(n)
"#;

/// What the probe saw.
pub struct Probe {
    /// Frames the probe sent.
    pub sent: u32,
    /// Frames on the tap going to the VM (the probe's and the wire's): the probe reached it.
    pub toward_vm: u32,
    /// Frames on the tap whose source is the capture port (must be 0).
    pub from_port: u32,
}

/// Sends the probe from host A and records the tap meanwhile; `settle` is how long the
/// recording goes on after the last frame (time for a delayed answer: DAD, a DHCP request,
/// a router solicitation after the RA).
pub fn probe(wire: &Wire, work: &std::path::Path, settle: Duration) -> anyhow::Result<Probe> {
    let pcap = work.join("capture-port-probe.pcap");
    let _ = std::fs::remove_file(&pcap);
    let mut dump = Command::new("ip")
        .args([
            "netns", "exec", &wire.ns, "tcpdump", "-n", "-U", "-i", &wire.tap, "-w",
        ])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start tcpdump on the tap")?;
    std::thread::sleep(Duration::from_secs(2));
    let sent = Command::new("ip")
        .args(["netns", "exec", &wire.hosts[0]])
        .args([
            kuroko_tests::scenarios::PYTHON,
            "-c",
            SEND,
            CAPTURE_MAC,
            MGMT_ADDR,
            HOST_A,
        ])
        .output()
        .context("cannot run the probe's scapy script")?;
    std::thread::sleep(settle);
    // SIGINT lets tcpdump flush; the process is ours (spawned above).
    let _ = Command::new("kill")
        .args(["-INT", &dump.id().to_string()])
        .status();
    let _ = dump.wait();
    if !sent.status.success() {
        bail!(
            "the probe's scapy script failed: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }
    let sent: u32 = String::from_utf8_lossy(&sent.stdout)
        .trim()
        .parse()
        .context("the probe's scapy script printed no count")?;
    let count = |filter: &str| -> anyhow::Result<u32> {
        let out = Command::new("tcpdump")
            .args(["-n", "-r"])
            .arg(&pcap)
            .arg(filter)
            .stderr(Stdio::null())
            .output()
            .context("cannot read the probe's pcap with tcpdump")?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().count() as u32)
    };
    let from_port = count(&format!("ether src {CAPTURE_MAC}"))?;
    let toward_vm = count(&format!("not ether src {CAPTURE_MAC}"))?;
    if from_port > 0 {
        let out = Command::new("tcpdump")
            .args(["-n", "-e", "-r"])
            .arg(&pcap)
            .arg(format!("ether src {CAPTURE_MAC}"))
            .output()?;
        bail!(
            "the capture port sent {from_port} frame(s) onto the wire it only listens to:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(Probe {
        sent,
        toward_vm,
        from_port,
    })
}

/// The line under `name` in `show ports` output (what the port holds), if any.
pub fn held_by(show_ports: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = show_ports.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim_start().starts_with(name) && l.contains("link"))?;
    lines.get(i + 1).map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::held_by;

    #[test]
    fn the_line_under_a_port_is_what_it_holds() {
        let out = "show ports\r\n  eth0         management  link up\r\n               10.0.2.15/24, default route\r\n  eth1         capture     link up\r\n               no address\r\nkuroko> ";
        assert_eq!(
            held_by(out, "eth0").as_deref(),
            Some("10.0.2.15/24, default route")
        );
        assert_eq!(held_by(out, "eth1").as_deref(), Some("no address"));
        assert_eq!(held_by(out, "eth9"), None);
    }
}
