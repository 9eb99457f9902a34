//! Does a captured frame belong to one of these sessions? Used to cut a finding's evidence
//! pcap out of the segment store when detections did not keep one (`DIR/evidence/`).
//!
//! Matches by addresses and ports in either direction (plus the session's time window,
//! applied by the caller's time-ranged scan). Parses Ethernet with up to two VLAN tags,
//! IPv4 and IPv6 (no extension-header walk beyond the first next-header), TCP and UDP;
//! anything it cannot parse does not match. Never panics on short frames.

use kuroko_model::SessionRecord;
use std::net::IpAddr;

/// Addresses and ports of a frame: (src ip, dst ip, src port, dst port).
pub fn tuple(frame: &[u8]) -> Option<(IpAddr, IpAddr, u16, u16)> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    off += 2;
    for _ in 0..2 {
        if ethertype == 0x8100 || ethertype == 0x88a8 {
            ethertype = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]);
            off += 4;
        }
    }
    let ip = frame.get(off..)?;
    let (src, dst, proto, l4) = match ethertype {
        0x0800 => {
            let ihl = ((*ip.first()? & 0x0f) as usize) * 4;
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (
                IpAddr::from(s),
                IpAddr::from(d),
                *ip.get(9)?,
                ip.get(ihl..)?,
            )
        }
        0x86dd => {
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), *ip.get(6)?, ip.get(40..)?)
        }
        _ => return None,
    };
    let (sp, dp) = match proto {
        6 | 17 => (
            u16::from_be_bytes([*l4.first()?, *l4.get(1)?]),
            u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]),
        ),
        _ => (0, 0),
    };
    Some((src, dst, sp, dp))
}

/// Whether the frame is part of any of the sessions.
pub fn matches_any(frame: &[u8], sessions: &[&SessionRecord]) -> bool {
    let Some((s, d, sp, dp)) = tuple(frame) else {
        return false;
    };
    sessions.iter().any(|r| {
        let (c, v) = (&r.client, &r.server);
        (s == c.ip && d == v.ip && sp == c.port && dp == v.port)
            || (s == v.ip && d == c.ip && sp == v.port && dp == c.port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::session::Endpoint;

    fn frame(vlan: bool) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 192, 0, 2, 7,
        ];
        ip.extend_from_slice(&[0xc3, 0x50, 0x00, 0x17]); // 50000 → 23
        ip.extend_from_slice(&[0u8; 16]);
        f.extend_from_slice(&ip);
        f
    }

    #[test]
    fn matches_both_directions_with_vlan_and_rejects_short_frames() {
        let s = SessionRecord::new(
            "s".into(),
            kuroko_model::Timestamp(0),
            "tcp",
            Endpoint::new("10.0.0.1".parse().unwrap(), 50000),
            Endpoint::new("192.0.2.7".parse().unwrap(), 23),
        );
        assert!(matches_any(&frame(false), &[&s]));
        assert!(matches_any(&frame(true), &[&s]));
        let mut other = s.clone();
        other.server.port = 22;
        assert!(!matches_any(&frame(false), &[&other]));
        for n in 0..frame(false).len() {
            let _ = matches_any(&frame(false)[..n], &[&s]);
        }
        assert!(!matches_any(&frame(false)[..30], &[&s]));
    }
}
