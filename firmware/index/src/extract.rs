//! Which stored packets belong to which sessions, and their export as a pcap ([`write_sessions_pcap`]:
//! `kuroko pcap --query` and the web console's ダンプデータ download).
//!
//! A session is found again in the store by its 5-tuple (either direction), its outer
//! VLAN when it had one, and its time range `[start, end]`. The time ranges of all
//! matching sessions are merged into a few disjoint windows so that the export touches only
//! the segments (and chunks) that overlap them.
//!
//! Frames are parsed here by hand (Ethernet, up to two VLAN tags, PPPoE sessions, Linux
//! cooked v1/v2, raw IP, BSD NULL/LOOP, IPv4, IPv6 with the common extension headers,
//! TCP/UDP/SCTP ports) with every length checked: stored packets are untrusted bytes. The
//! link types are the pcap numbers the store records per interface.

use kuroko_model::SessionRecord;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most sessions one export may cover: each costs a hash entry, and more than this is no
/// longer "the packets of these sessions" but a time-range export.
pub const MAX_EXPORT_SESSIONS: usize = 200_000;
/// Windows closer than this are merged (scanning a little extra is cheaper than reopening
/// segments for many tiny windows).
pub const MERGE_GAP_NS: u64 = 1_000_000_000;
/// Most IPv6 extension headers skipped before giving up on a packet.
const MAX_IPV6_EXT: usize = 8;

/// Transport protocol number + both endpoints, lower endpoint first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub proto: u8,
    pub a: (IpAddr, u16),
    pub b: (IpAddr, u16),
}

impl FlowKey {
    pub fn new(proto: u8, x: (IpAddr, u16), y: (IpAddr, u16)) -> FlowKey {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        FlowKey { proto, a, b }
    }
}

/// A parsed frame: the flow key and the outer VLAN id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameFlow {
    pub key: FlowKey,
    pub vlan: Option<u16>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads the flow of an Ethernet frame; `None` for non-IP frames and fragments past the
/// first (which carry no ports).
pub fn parse_frame(frame: &[u8]) -> Option<FrameFlow> {
    parse_ether(be16(frame, 12)?, frame.get(14..)?)
}

/// Reads the flow of a frame of pcap link type `linktype` (see [`parse_frame`]).
pub fn parse_link(linktype: u16, frame: &[u8]) -> Option<FrameFlow> {
    let version = |ip: &[u8]| match ip.first()? >> 4 {
        4 => Some(0x0800),
        6 => Some(0x86dd),
        _ => None,
    };
    match linktype {
        1 => parse_frame(frame),
        101 | 228 | 229 => parse_ether(version(frame)?, frame),
        0 | 108 => parse_ether(version(frame.get(4..)?)?, frame.get(4..)?),
        113 => parse_ether(be16(frame, 14)?, frame.get(16..)?),
        276 => parse_ether(be16(frame, 0)?, frame.get(20..)?),
        _ => None,
    }
}

/// The flow of what follows an ethertype: VLAN tags, a PPPoE session header, then IP.
fn parse_ether(mut ethertype: u16, frame: &[u8]) -> Option<FrameFlow> {
    let mut off = 0;
    let mut vlan = None;
    for _ in 0..2 {
        if ethertype == 0x8100 || ethertype == 0x88a8 {
            let tci = be16(frame, off)?;
            if vlan.is_none() {
                vlan = Some(tci & 0x0fff);
            }
            ethertype = be16(frame, off + 2)?;
            off += 4;
        }
    }
    if ethertype == 0x8864 && frame.get(off..off + 2)? == [0x11, 0] {
        ethertype = match be16(frame, off + 6)? {
            0x0021 => 0x0800,
            0x0057 => 0x86dd,
            _ => return None,
        };
        off += 8;
    }
    let ip = frame.get(off..)?;
    let (proto, src, dst, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(*ip.first()? & 0x0f) * 4;
            if ihl < 20 || ip.len() < ihl {
                return None;
            }
            let frag = be16(ip, 6)? & 0x1fff;
            let proto = ip[9];
            let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
            let l4 = if frag == 0 { ip.get(ihl..) } else { None };
            (proto, src, dst, l4)
        }
        0x86dd => {
            if ip.len() < 40 {
                return None;
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            dst.copy_from_slice(&ip[24..40]);
            let mut next = ip[6];
            let mut at = 40;
            let mut first_fragment = true;
            for _ in 0..MAX_IPV6_EXT {
                match next {
                    0 | 43 | 60 => {
                        next = *ip.get(at)?;
                        at += (usize::from(*ip.get(at + 1)?) + 1) * 8;
                    }
                    44 => {
                        next = *ip.get(at)?;
                        first_fragment = be16(ip, at + 2)? & 0xfff8 == 0;
                        at += 8;
                    }
                    _ => break,
                }
            }
            let l4 = if first_fragment { ip.get(at..) } else { None };
            (
                next,
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                l4,
            )
        }
        _ => return None,
    };
    let (sp, dp) = match (proto, l4) {
        (6 | 17 | 132, Some(l4)) => (be16(l4, 0)?, be16(l4, 2)?),
        (6 | 17 | 132, None) => return None,
        _ => (0, 0),
    };
    Some(FrameFlow {
        key: FlowKey::new(proto, (src, sp), (dst, dp)),
        vlan,
    })
}

/// The IP protocol number of a session's `transport`.
pub fn transport_number(t: &str) -> Option<u8> {
    match t {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "icmpv6" => Some(58),
        "sctp" => Some(132),
        "gre" => Some(47),
        "esp" => Some(50),
        other => other.strip_prefix("ip-").and_then(|n| n.parse().ok()),
    }
}

struct Window {
    from: u64,
    to: u64,
    vlan: Option<u16>,
}

/// The packets of a set of sessions.
pub struct SessionPackets {
    flows: HashMap<FlowKey, Vec<Window>>,
    windows: Vec<(u64, u64)>,
}

impl SessionPackets {
    pub fn new(sessions: &[SessionRecord]) -> SessionPackets {
        let mut flows: HashMap<FlowKey, Vec<Window>> = HashMap::new();
        let mut spans: Vec<(u64, u64)> = Vec::with_capacity(sessions.len());
        for s in sessions {
            let Some(proto) = transport_number(&s.transport) else {
                continue;
            };
            let (cp, sp) = if matches!(proto, 6 | 17 | 132) {
                (s.client.port, s.server.port)
            } else {
                (0, 0)
            };
            let from = s.start.nanos().max(0) as u64;
            let to = (s.end.nanos().max(0) as u64).max(from).saturating_add(1);
            flows
                .entry(FlowKey::new(proto, (s.client.ip, cp), (s.server.ip, sp)))
                .or_default()
                .push(Window {
                    from,
                    to,
                    vlan: s.vlan,
                });
            spans.push((from, to));
        }
        spans.sort_unstable();
        let mut windows: Vec<(u64, u64)> = Vec::new();
        for (f, t) in spans {
            match windows.last_mut() {
                Some(last) if f <= last.1.saturating_add(MERGE_GAP_NS) => last.1 = last.1.max(t),
                _ => windows.push((f, t)),
            }
        }
        SessionPackets { flows, windows }
    }

    /// Disjoint `[from, to)` time windows (ns) that hold every packet of the sessions,
    /// ascending.
    pub fn windows(&self) -> &[(u64, u64)] {
        &self.windows
    }

    /// Whether the Ethernet frame stored at `ts_ns` belongs to one of the sessions.
    pub fn matches(&self, ts_ns: u64, frame: &[u8]) -> bool {
        self.matches_link(ts_ns, 1, frame)
    }

    /// Whether the frame of link type `linktype` stored at `ts_ns` belongs to one of the
    /// sessions.
    pub fn matches_link(&self, ts_ns: u64, linktype: u16, frame: &[u8]) -> bool {
        let Some(ff) = parse_link(linktype, frame) else {
            return false;
        };
        self.flows.get(&ff.key).is_some_and(|ws| {
            ws.iter()
                .any(|w| w.from <= ts_ns && ts_ns < w.to && (w.vlan.is_none() || w.vlan == ff.vlan))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::Timestamp;
    use kuroko_model::session::Endpoint;

    /// Ethernet (+ optional VLAN) / IPv4 / TCP header bytes, written out field by field.
    fn v4_tcp(vlan: Option<u16>, src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if let Some(v) = vlan {
            f.extend([0x81, 0x00]);
            f.extend(v.to_be_bytes());
        }
        f.extend([0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip.extend(src);
        ip.extend(dst);
        f.extend(ip);
        f.extend(sp.to_be_bytes());
        f.extend(dp.to_be_bytes());
        f.extend([0u8; 16]);
        f
    }

    fn v6_udp(src: Ipv6Addr, sp: u16, dst: Ipv6Addr, dp: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x86, 0xdd]);
        // version/class/flow, payload length 8, next header: hop-by-hop (0)
        f.extend([0x60, 0, 0, 0, 0, 16, 0, 64]);
        f.extend(src.octets());
        f.extend(dst.octets());
        // hop-by-hop header: next = UDP (17), length 0 (8 bytes)
        f.extend([17, 0, 0, 0, 0, 0, 0, 0]);
        f.extend(sp.to_be_bytes());
        f.extend(dp.to_be_bytes());
        f.extend([0, 8, 0, 0]);
        f
    }

    #[test]
    fn frames_parse_to_flow_keys_in_either_direction() {
        let a = v4_tcp(Some(20), [10, 0, 0, 1], 40000, [93, 184, 216, 34], 443);
        let b = v4_tcp(Some(20), [93, 184, 216, 34], 443, [10, 0, 0, 1], 40000);
        let fa = parse_frame(&a).unwrap();
        assert_eq!(fa.vlan, Some(20));
        assert_eq!(fa.key, parse_frame(&b).unwrap().key);
        assert_eq!(fa.key.proto, 6);
        let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::53".parse().unwrap();
        let f = parse_frame(&v6_udp(s, 5353, d, 53)).unwrap();
        assert_eq!(
            f.key,
            FlowKey::new(17, (IpAddr::V6(s), 5353), (IpAddr::V6(d), 53))
        );
        // truncated and non-IP frames are not errors, just no flow
        assert_eq!(parse_frame(&a[..20]), None);
        assert_eq!(parse_frame(&[0u8; 14]), None);
        assert_eq!(parse_frame(&[]), None);
    }

    #[test]
    fn packets_match_their_session_by_tuple_vlan_and_time() {
        let mut s = SessionRecord::new(
            "x".into(),
            Timestamp(1_000),
            "tcp",
            Endpoint::new("10.0.0.1".parse().unwrap(), 40000),
            Endpoint::new("93.184.216.34".parse().unwrap(), 443),
        );
        s.end = Timestamp(2_000);
        s.vlan = Some(20);
        let later = {
            let mut t = s.clone();
            t.start = Timestamp(5_000_000_000);
            t.end = Timestamp(5_000_000_100);
            t
        };
        let sp = SessionPackets::new(&[s, later]);
        assert_eq!(
            sp.windows(),
            &[(1_000, 2_001), (5_000_000_000, 5_000_000_101)]
        );
        let pkt = v4_tcp(Some(20), [93, 184, 216, 34], 443, [10, 0, 0, 1], 40000);
        assert!(sp.matches(1_500, &pkt));
        assert!(sp.matches(2_000, &pkt));
        assert!(!sp.matches(2_001, &pkt), "after the session ended");
        assert!(
            !sp.matches(
                1_500,
                &v4_tcp(Some(21), [93, 184, 216, 34], 443, [10, 0, 0, 1], 40000)
            ),
            "other VLAN"
        );
        assert!(
            !sp.matches(
                1_500,
                &v4_tcp(Some(20), [93, 184, 216, 34], 443, [10, 0, 0, 1], 40001)
            ),
            "other port"
        );
    }
}

/// What [`write_sessions_pcap`] wrote and what it had to skip.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PcapExport {
    pub packets: u64,
    pub bytes: u64,
    /// Damaged places in the store that were skipped.
    pub damaged: usize,
    /// Segments overwritten by the writer before they could be read.
    pub lost_segments: u64,
    /// Segments read whose writes or fdatasyncs the disk failed (once each): their packets
    /// may not survive a power cut (see `kuroko_ring::WriteErrorSegment`).
    pub write_error_segments: Vec<kuroko_ring::WriteErrorSegment>,
}

/// Packet bytes held for sorting before a batch is written.
pub const SORT_BATCH_BYTES: usize = 64 << 20;

/// Writes the stored packets of `sessions` inside `[from, to)` (ns) to `out`, in time
/// order, each with its own link type: a classic pcap (nanosecond timestamps) when the
/// windows hold one link type, a pcapng when they mix several.
///
/// Only the segments overlapping the sessions' merged time windows are read. Packets are
/// matched by 5-tuple (+ VLAN) inside each session's `[start, end]`; within a window they
/// are sorted by time before writing (several capture threads may interleave), in batches
/// of at most [`SORT_BATCH_BYTES`].
pub fn write_sessions_pcap<W: std::io::Write>(
    reader: &kuroko_ring::StoreReader,
    sessions: &[SessionRecord],
    from: u64,
    to: u64,
    out: W,
) -> Result<PcapExport, PcapExportError> {
    let wanted = SessionPackets::new(sessions);
    let mut linktypes: Vec<u16> = wanted
        .windows()
        .iter()
        .flat_map(|&(wf, wt)| kuroko_ring::pcap::linktypes_in(reader, wf.max(from), wt.min(to)))
        .collect();
    linktypes.sort_unstable();
    linktypes.dedup();
    let mut w = kuroko_ring::pcap::ExportWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, out),
        &linktypes,
    )?;
    let mut rep = PcapExport::default();
    for &(wf, wt) in wanted.windows() {
        let (wf, wt) = (wf.max(from), wt.min(to));
        if wf >= wt {
            continue;
        }
        let mut batch: Vec<(u64, u32, u16, Vec<u8>)> = Vec::new();
        let mut held = 0usize;
        let mut err = None;
        let flush = |batch: &mut Vec<(u64, u32, u16, Vec<u8>)>,
                     w: &mut kuroko_ring::pcap::ExportWriter<_>| {
            batch.sort_by_key(|p| p.0);
            for (ts, wire, linktype, data) in batch.drain(..) {
                w.write(ts, wire, linktype, &data)?;
            }
            std::io::Result::Ok(())
        };
        let scan = reader.scan_time(wf, wt, |p| {
            if wanted.matches_link(p.ts_ns, p.linktype, p.data) {
                rep.packets += 1;
                rep.bytes += p.data.len() as u64;
                held += p.data.len();
                batch.push((p.ts_ns, p.wire_len, p.linktype, p.data.to_vec()));
                if held >= SORT_BATCH_BYTES {
                    held = 0;
                    if let Err(e) = flush(&mut batch, &mut w) {
                        err = Some(e);
                        return std::ops::ControlFlow::Break(());
                    }
                }
            }
            std::ops::ControlFlow::Continue(())
        })?;
        if let Some(e) = err {
            return Err(e.into());
        }
        flush(&mut batch, &mut w)?;
        rep.damaged += scan.damage.len();
        rep.lost_segments += scan.lost_segments;
        for w in scan.write_error_segments {
            match rep.write_error_segments.iter_mut().find(|o| o.seq == w.seq) {
                Some(o) => o.packets_read += w.packets_read,
                None => rep.write_error_segments.push(w),
            }
        }
    }
    use std::io::Write;
    w.into_inner().flush()?;
    Ok(rep)
}

#[derive(Debug, thiserror::Error)]
pub enum PcapExportError {
    #[error("writing the pcap: {0}")]
    Write(#[from] std::io::Error),
    #[error("reading the store: {0}")]
    Store(#[from] kuroko_ring::StoreError),
}
