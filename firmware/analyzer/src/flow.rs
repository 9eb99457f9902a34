//! One flow: its key, orientation, counters and the application state riding on it.

use crate::position::PacketPos;
use crate::reassembly::Stream;
use kuroko_model::session::SessionRecord;
use kuroko_protocols::{DatagramParser, Direction, StreamParser};
use std::net::IpAddr;

/// Direction-independent identity of a flow: the two endpoints in a fixed order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo: (IpAddr, u16),
    pub hi: (IpAddr, u16),
    pub proto: u8,
}

impl FlowKey {
    pub fn new(src: (IpAddr, u16), dst: (IpAddr, u16), proto: u8) -> Self {
        if src <= dst {
            FlowKey {
                lo: src,
                hi: dst,
                proto,
            }
        } else {
            FlowKey {
                lo: dst,
                hi: src,
                proto,
            }
        }
    }

    /// Text form, stable across versions (kept in the checkpoint).
    pub fn text(&self) -> String {
        format!(
            "{}/{}:{}/{}:{}",
            self.proto, self.lo.0, self.lo.1, self.hi.0, self.hi.1
        )
    }
}

/// Timeout class (index of the table's LRU list).
pub const LIST_TCP: usize = 0;
pub const LIST_OTHER: usize = 1;
pub const LIST_CLOSING: usize = 2;

/// TCP state of both directions (index = `Direction::index`).
#[derive(Debug, Default)]
pub struct TcpState {
    pub streams: [Stream; 2],
    pub isn: [Option<u32>; 2],
    pub fin: [bool; 2],
    /// The acknowledgement number that covers each direction's FIN.
    pub fin_ack: [Option<u32>; 2],
    /// The other side acknowledged this direction's FIN.
    pub fin_acked: [bool; 2],
    pub rst: bool,
    /// A SYN ignored inside this connection (direction index, ISN): a SYN-ACK from the
    /// other side acknowledging it means the peer took it as a new connection.
    pub pending_syn: Option<(usize, u32)>,
}

impl TcpState {
    /// Both FINs sent and acknowledged, or a reset: nothing more belongs to this connection.
    pub fn closed(&self) -> bool {
        self.rst || (self.fin_acked[0] && self.fin_acked[1])
    }
}

/// What the bytes kept for identification may cost at most, allocations and their
/// bookkeeping counted ([`crate::reassembly::held_cost`]): beyond it identification decides
/// on what it has. Without it, a flood of 1-byte segments alternating directions would
/// keep ~100 B per payload byte (a chunk each) under a limit that counts only bytes.
pub const PENDING_COST_LIMIT: usize = 4 * crate::app::IDENTIFY_LIMIT;

/// Bytes kept while identification has not decided yet, in arrival order (consecutive
/// bytes of one direction in one chunk).
#[derive(Debug, Default)]
pub struct Pending {
    pub chunks: Vec<(Direction, Vec<u8>)>,
    pub len: [usize; 2],
    pub gaps: Vec<(Direction, u64)>,
    /// What `chunks` costs: each chunk's allocation capacity plus its bookkeeping.
    pub cost: usize,
}

impl Pending {
    /// Keeps `data` (arrived in direction `dir`), appended to the last chunk when that one
    /// is of the same direction.
    pub fn push(&mut self, dir: Direction, data: &[u8]) {
        use crate::reassembly::held_cost;
        self.len[dir.index()] += data.len();
        if let Some((d, last)) = self.chunks.last_mut()
            && *d == dir
        {
            let before = last.capacity();
            last.extend_from_slice(data);
            self.cost = self.cost + last.capacity() - before;
            return;
        }
        let v = data.to_vec();
        self.cost += held_cost(v.capacity());
        self.chunks.push((dir, v));
    }

    /// Identification must decide now: a direction reached the identification limit, or
    /// the kept bytes their cost limit.
    pub fn full(&self, dir: Direction) -> bool {
        self.len[dir.index()] >= crate::app::IDENTIFY_LIMIT || self.cost >= PENDING_COST_LIMIT
    }

    pub fn joined(&self, dir: Direction) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len[dir.index()]);
        for (d, c) in &self.chunks {
            if *d == dir {
                v.extend_from_slice(c);
            }
        }
        v
    }
}

/// The data channel of an FTP transfer: bytes collected up to the object limit.
#[derive(Debug, Default)]
pub struct FtpData {
    pub file_name: Option<String>,
    pub direction: Option<Direction>,
    pub bytes: [Vec<u8>; 2],
    pub total: [u64; 2],
    pub truncated: bool,
    pub gap: bool,
}

pub enum App {
    /// TCP: waiting for identification.
    Undecided(Pending),
    Stream(Box<dyn StreamParser>),
    Datagram(Box<dyn DatagramParser>),
    FtpData(Box<FtpData>),
    /// Nothing (more) to parse.
    None,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            App::Undecided(_) => "Undecided",
            App::Stream(_) => "Stream",
            App::Datagram(_) => "Datagram",
            App::FtpData(_) => "FtpData",
            App::None => "None",
        })
    }
}

#[derive(Debug)]
pub struct Flow {
    pub key: FlowKey,
    /// The client endpoint (the other one is the server).
    pub client: (IpAddr, u16),
    pub rec: SessionRecord,
    /// Where this flow's state began (before any active-timeout cut).
    pub origin: PacketPos,
    /// First and last packet of the current record.
    pub first: PacketPos,
    pub last: PacketPos,
    pub last_ts: i64,
    pub list: usize,
    pub tcp: Option<Box<TcpState>>,
    pub app: App,
    /// On a data channel opened from an expectation: the control session it belongs to.
    pub control: Option<ControlLink>,
    /// Gap bytes already reported on records cut off this flow (active timeout).
    pub missing_reported: u64,
    /// When the last provisional (`open`) record of this flow was emitted (ns; `None`: not
    /// yet), and its packet count then.
    pub provisional_at: Option<i64>,
    pub provisional_packets: u64,
}

/// The control session of an FTP data channel (and the expectation's address).
#[derive(Debug, Clone)]
pub struct ControlLink {
    pub slot: u32,
    pub session: String,
    pub expected: (IpAddr, u16),
}

impl Flow {
    /// What this flow's buffers hold now, at their real cost (allocation capacity and
    /// bookkeeping, not length): out-of-order segments of both directions, the bytes kept
    /// for identification, a data channel's bytes. Parsers' own buffers are not in it.
    pub fn buffer_cost(&self) -> usize {
        let held: usize = self
            .tcp
            .as_ref()
            .map_or(0, |t| t.streams.iter().map(|s| s.held_bytes()).sum());
        held + match &self.app {
            App::Undecided(p) => p.cost,
            App::FtpData(d) => d.bytes.iter().map(Vec::capacity).sum(),
            _ => 0,
        }
    }

    pub fn direction_of(&self, src: (IpAddr, u16)) -> Direction {
        if src == self.client {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_bytes_count_their_allocations_and_a_flood_of_tiny_chunks_decides_early() {
        let mut p = Pending::default();
        p.push(Direction::ToServer, b"GET ");
        p.push(Direction::ToServer, b"/ HTTP/1.1");
        assert_eq!(p.chunks.len(), 1, "one direction in a row is one chunk");
        assert!(p.cost >= crate::reassembly::held_cost(14));
        assert_eq!(p.joined(Direction::ToServer), b"GET / HTTP/1.1");
        // 1-byte chunks alternating directions: far below the identification limit in
        // bytes, but their bookkeeping reaches the cost limit.
        let mut p = Pending::default();
        let mut n = 0;
        while !p.full(Direction::ToServer) {
            p.push(Direction::ToServer, b"a");
            p.push(Direction::ToClient, b"b");
            n += 1;
        }
        assert!(p.len[0] < crate::app::IDENTIFY_LIMIT / 10, "{n} pairs");
        assert!(p.cost >= PENDING_COST_LIMIT);
    }
}
