//! Bounded IP fragment reassembly (IPv4 and IPv6).
//!
//! Fragments are rare on healthy networks and a favourite of evasion and denial of service,
//! so everything here is capped: at most [`MAX_PENDING_DATAGRAMS`] datagrams in progress,
//! each at most [`MAX_DATAGRAM_LEN`] bytes and [`MAX_FRAGMENTS_PER_DATAGRAM`] pieces, kept at
//! most [`FRAGMENT_TIMEOUT_NS`]. Overlapping fragments keep the bytes that arrived first (the
//! same first-wins rule as TCP). Whatever is given up is counted by the caller
//! (`ip_fragments_dropped`).

use std::collections::HashMap;
use std::net::IpAddr;

/// Datagrams being reassembled at once; the oldest is dropped beyond it.
pub const MAX_PENDING_DATAGRAMS: usize = 1024;
/// Largest reassembled datagram (IPv4's own limit; IPv6 jumbograms are not fragmented).
pub const MAX_DATAGRAM_LEN: usize = 65_535;
/// Pieces per datagram (a 64 KiB datagram in 8-byte fragments would be 8192).
pub const MAX_FRAGMENTS_PER_DATAGRAM: usize = 128;
/// How long an incomplete datagram waits for its missing pieces (RFC 791 suggests 15 s,
/// Linux uses 30 s).
pub const FRAGMENT_TIMEOUT_NS: i64 = 30_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Debug)]
struct Pending {
    first_ts: i64,
    buf: Vec<u8>,
    /// Byte ranges received, sorted and merged.
    have: Vec<(usize, usize)>,
    pieces: usize,
    total: Option<usize>,
}

/// What happened to one fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum FragOutcome {
    /// Kept; the datagram is not complete yet.
    Held,
    /// The datagram is complete: its upper-layer payload.
    Complete(Vec<u8>),
    /// Dropped (over a limit, inconsistent); `n` fragments were given up with it.
    Dropped(u64),
}

/// The reassembly table.
#[derive(Debug, Default)]
pub struct Defragmenter {
    pending: HashMap<Key, Pending>,
}

impl Defragmenter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds one fragment seen at `ts_ns`. Returns how many older fragments were given up
    /// as a side effect (timeouts, table full) in the second value.
    pub fn add(
        &mut self,
        ts_ns: i64,
        src: IpAddr,
        dst: IpAddr,
        f: &crate::decode::Fragment<'_>,
    ) -> (FragOutcome, u64) {
        let expired = self.expire(ts_ns);
        let key = Key {
            src,
            dst,
            id: f.id,
            proto: f.proto,
        };
        let end = f.offset.saturating_add(f.data.len());
        if end > MAX_DATAGRAM_LEN {
            let lost = self.pending.remove(&key).map_or(0, |p| p.pieces as u64);
            return (FragOutcome::Dropped(lost + 1), expired);
        }
        let mut evicted = 0;
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING_DATAGRAMS {
            // Drop the oldest datagram in progress.
            if let Some(old) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.first_ts)
                .map(|(k, _)| *k)
                && let Some(p) = self.pending.remove(&old)
            {
                evicted = p.pieces as u64;
            }
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            first_ts: ts_ns,
            buf: Vec::new(),
            have: Vec::new(),
            pieces: 0,
            total: None,
        });
        p.pieces += 1;
        if p.pieces > MAX_FRAGMENTS_PER_DATAGRAM {
            let lost = p.pieces as u64;
            self.pending.remove(&key);
            return (FragOutcome::Dropped(lost), expired + evicted);
        }
        if !f.more {
            match p.total {
                Some(t) if t != end => {
                    let lost = p.pieces as u64;
                    self.pending.remove(&key);
                    return (FragOutcome::Dropped(lost), expired + evicted);
                }
                _ => p.total = Some(end),
            }
        }
        if p.buf.len() < end {
            p.buf.resize(end, 0);
        }
        // First wins: copy only the parts of [offset, end) not already held.
        let mut cursor = f.offset;
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(p.have.len() + 1);
        for &(a, b) in &p.have {
            if cursor < end && a > cursor {
                let stop = a.min(end);
                p.buf[cursor..stop].copy_from_slice(&f.data[cursor - f.offset..stop - f.offset]);
            }
            if b > cursor {
                cursor = cursor.max(b);
            }
        }
        if cursor < end {
            p.buf[cursor..end].copy_from_slice(&f.data[cursor - f.offset..]);
        }
        // Merge the range into `have`.
        let mut ranges = p.have.clone();
        ranges.push((f.offset, end));
        ranges.sort_unstable();
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        p.have = merged;
        if let Some(total) = p.total
            && p.have.len() == 1
            && p.have[0] == (0, total)
        {
            let mut done = self.pending.remove(&key).map(|p| p.buf).unwrap_or_default();
            done.truncate(total);
            return (FragOutcome::Complete(done), expired + evicted);
        }
        (FragOutcome::Held, expired + evicted)
    }

    /// Drops datagrams older than the timeout; returns the fragments given up.
    pub fn expire(&mut self, now_ns: i64) -> u64 {
        let mut lost = 0;
        self.pending.retain(|_, p| {
            let keep = now_ns.saturating_sub(p.first_ts) <= FRAGMENT_TIMEOUT_NS;
            if !keep {
                lost += p.pieces as u64;
            }
            keep
        });
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Fragment;

    fn frag(offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            id: 7,
            offset,
            more,
            proto: 17,
            data,
        }
    }

    #[test]
    fn out_of_order_overlapping_fragments_reassemble_first_wins() {
        let mut d = Defragmenter::new();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(
            d.add(0, a, b, &frag(16, false, b"CCCCCCCC")).0,
            FragOutcome::Held
        );
        assert_eq!(
            d.add(1, a, b, &frag(0, true, b"AAAAAAAA")).0,
            FragOutcome::Held
        );
        // Overlaps both neighbours: the first copies (A and C) win there.
        let (out, _) = d.add(2, a, b, &frag(4, true, b"BBBBBBBBBBBBBBBB"));
        assert_eq!(
            out,
            FragOutcome::Complete(b"AAAAAAAABBBBBBBBCCCCCCCC".to_vec())
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn incomplete_datagrams_time_out_and_are_counted() {
        let mut d = Defragmenter::new();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        d.add(0, a, b, &frag(0, true, b"AAAAAAAA"));
        assert_eq!(d.expire(FRAGMENT_TIMEOUT_NS + 1), 1);
        assert_eq!(d.pending(), 0);
        let (out, _) = d.add(0, a, b, &frag(MAX_DATAGRAM_LEN, false, b"x"));
        assert_eq!(out, FragOutcome::Dropped(1));
    }
}
