//! Community ID flow hashing, version 1 (<https://github.com/corelight/community-id-spec>).
//!
//! Zeek, Suricata, Arkime and Security Onion put this value on their records of a flow, so
//! a Kuroko session can be joined with theirs. The value is computed from a session's first
//! packet: `1:` + base64(SHA-1(seed, address pair, protocol, 0, port pair)), the endpoints
//! ordered so that both directions hash alike. ICMP and ICMPv6 have no ports: the type and
//! code stand in for them, and a request/reply type pair maps to (type, counterpart type) so
//! an echo and its reply get the same value; types without a counterpart are one-way and
//! keep the packet's own direction. Protocols without ports hash without them.

use base64::Engine as _;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// The seed everyone uses unless configured otherwise (Zeek, Suricata default).
pub const DEFAULT_SEED: u16 = 0;

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const SCTP: u8 = 132;

/// The counterpart of an ICMPv4 type that has one (echo, timestamp, info, router, mask).
fn icmp4_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        9 => 10,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// The counterpart of an ICMPv6 type that has one (echo, MLD, router and neighbor
/// discovery, who-are-you, home agent address discovery).
fn icmp6_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        128 => 129,
        129 => 128,
        130 => 131,
        131 => 130,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

/// What a flow's first packet says about its ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ports {
    /// TCP, UDP, SCTP.
    Ports(u16, u16),
    /// ICMP or ICMPv6 type and code.
    Icmp { icmp_type: u8, code: u8 },
    /// A protocol without ports.
    None,
}

/// The community_id v1 of a flow whose first packet went `src` → `dst`.
pub fn community_id(seed: u16, src: IpAddr, dst: IpAddr, proto: u8, ports: Ports) -> String {
    let (mut sport, mut dport, one_way, has_ports) = match ports {
        Ports::Ports(s, d) if matches!(proto, TCP | UDP | SCTP) => (s, d, false, true),
        Ports::Icmp { icmp_type, code } if matches!(proto, ICMP | ICMPV6) => {
            let counterpart = if proto == ICMP {
                icmp4_counterpart(icmp_type)
            } else {
                icmp6_counterpart(icmp_type)
            };
            match counterpart {
                Some(c) => (u16::from(icmp_type), u16::from(c), false, true),
                None => (u16::from(icmp_type), u16::from(code), true, true),
            }
        }
        _ => (0, 0, true, false),
    };
    let (mut a, mut b) = (addr_bytes(src), addr_bytes(dst));
    let ordered = a < b || (a == b && sport <= dport);
    if !one_way && !ordered {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut sport, &mut dport);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&a);
    h.update(&b);
    h.update([proto, 0]);
    if has_ports {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    let digest = h.finalize();
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Values from the spec's baseline (community-id-spec/baseline/baseline_deflt.json),
    /// which the reference Python package also produces; the integration test checks many
    /// more tuples against that package itself.
    #[test]
    fn spec_baseline_values() {
        let tcp = community_id(
            0,
            ip("128.232.110.120"),
            ip("66.35.250.204"),
            6,
            Ports::Ports(34855, 80),
        );
        assert_eq!(tcp, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // Both directions alike.
        let back = community_id(
            0,
            ip("66.35.250.204"),
            ip("128.232.110.120"),
            6,
            Ports::Ports(80, 34855),
        );
        assert_eq!(back, tcp);
        let echo = community_id(
            0,
            ip("192.168.0.89"),
            ip("192.168.0.1"),
            1,
            Ports::Icmp {
                icmp_type: 8,
                code: 0,
            },
        );
        assert_eq!(echo, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        let reply = community_id(
            0,
            ip("192.168.0.1"),
            ip("192.168.0.89"),
            1,
            Ports::Icmp {
                icmp_type: 0,
                code: 0,
            },
        );
        assert_eq!(reply, echo);
    }
}
