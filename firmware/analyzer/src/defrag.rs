//! Bounded IP fragment reassembly (IPv4 and IPv6).
//!
//! Fragments are rare on healthy networks and a favourite of evasion and denial of service,
//! so everything here is capped: at most [`MAX_PENDING_DATAGRAMS`] datagrams in progress,
//! each at most [`MAX_DATAGRAM_LEN`] bytes and [`MAX_FRAGMENTS_PER_DATAGRAM`] pieces, kept at
//! most [`FRAGMENT_TIMEOUT_NS`]. Whatever is given up is counted by the caller
//! (`ip_fragments_dropped`).
//!
//! Overlaps are resolved the way the protected hosts resolve them, so that the session says
//! what the host received: Linux (since 4.19, for IPv4 and IPv6) and RFC 5722 drop the whole
//! datagram when a fragment overlaps one already held, and drop only the fragment when it
//! is an exact duplicate (same offset and length: a retransmission). Overlaps are counted
//! apart ([`FragOutcome::Overlap`], `ip_fragment_overlaps`): they are an evasion signature.
//! A first-wins merge would have handed the analyzer a datagram the host never accepted.
//!
//! Expiry does not walk the table: datagrams are queued in arrival order with their start
//! time and only the queue's head is looked at, so a fragment costs O(1) amortized whatever
//! the table holds (before, every fragment scanned all pending datagrams).

use std::collections::{HashMap, VecDeque};
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
    /// Each fragment's own range (overlap and duplicate checks).
    pieces_at: Vec<(usize, usize)>,
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
    /// The fragment overlapped one already held: the datagram is dropped as Linux and
    /// RFC 5722 drop it; `n` fragments (this one included) were given up.
    Overlap(u64),
    /// An exact duplicate of a fragment already held: ignored, the datagram goes on.
    Duplicate,
}

/// The reassembly table.
#[derive(Debug, Default)]
pub struct Defragmenter {
    pending: HashMap<Key, Pending>,
    /// Datagrams in arrival order with their start time, for expiry and eviction without
    /// a scan; an entry whose datagram is gone (or was started again) is skipped.
    order: VecDeque<(i64, Key)>,
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
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= MAX_PENDING_DATAGRAMS {
                // Drop the oldest datagram in progress (the queue's first live entry).
                while let Some((t, old)) = self.order.pop_front() {
                    if self.pending.get(&old).is_some_and(|p| p.first_ts == t) {
                        evicted = self.pending.remove(&old).map_or(0, |p| p.pieces as u64);
                        break;
                    }
                }
            }
            self.order.push_back((ts_ns, key));
            if self.order.len() > 4 * MAX_PENDING_DATAGRAMS {
                // Entries of completed datagrams: compacted now and then (amortized O(1)).
                let pending = &self.pending;
                self.order
                    .retain(|(t, k)| pending.get(k).is_some_and(|p| p.first_ts == *t));
            }
        }
        let p = self.pending.entry(key).or_insert_with(|| Pending {
            first_ts: ts_ns,
            buf: Vec::new(),
            have: Vec::new(),
            pieces_at: Vec::new(),
            pieces: 0,
            total: None,
        });
        if p.pieces_at.contains(&(f.offset, end)) {
            return (FragOutcome::Duplicate, expired + evicted);
        }
        if p.pieces_at.iter().any(|&(a, b)| a < end && f.offset < b) {
            let lost = p.pieces as u64 + 1;
            self.pending.remove(&key);
            return (FragOutcome::Overlap(lost), expired + evicted);
        }
        p.pieces_at.push((f.offset, end));
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
        // No overlap (checked above): the fragment's bytes go in as they are.
        p.buf[f.offset..end].copy_from_slice(f.data);
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(p.have.len() + 1);
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

    /// Drops datagrams older than the timeout; returns the fragments given up. Looks only
    /// at the head of the arrival queue (packet times that go backwards a little leave an
    /// entry behind a younger one for that long: it expires when the head does).
    pub fn expire(&mut self, now_ns: i64) -> u64 {
        let mut lost = 0;
        while let Some(&(t, key)) = self.order.front() {
            if now_ns.saturating_sub(t) <= FRAGMENT_TIMEOUT_NS {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&key).is_some_and(|p| p.first_ts == t) {
                lost += self.pending.remove(&key).map_or(0, |p| p.pieces as u64);
            }
        }
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
    fn an_overlapping_fragment_drops_the_datagram_as_linux_does() {
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
        // Overlaps both neighbours: before, first-wins made "AAAAAAAABBBBBBBBCCCCCCCC" of
        // it, a datagram the host never accepted. Now the datagram is gone, counted.
        let (out, _) = d.add(2, a, b, &frag(4, true, b"BBBBBBBBBBBBBBBB"));
        assert_eq!(out, FragOutcome::Overlap(3));
        assert_eq!(d.pending(), 0);
        // Later fragments of that id start a new datagram, which completes if whole.
        assert_eq!(
            d.add(3, a, b, &frag(0, true, b"XXXXXXXX")).0,
            FragOutcome::Held
        );
        // An exact duplicate (a retransmission) is ignored, the datagram goes on.
        assert_eq!(
            d.add(4, a, b, &frag(0, true, b"XXXXXXXX")).0,
            FragOutcome::Duplicate
        );
        assert_eq!(
            d.add(5, a, b, &frag(8, false, b"YYYY")).0,
            FragOutcome::Complete(b"XXXXXXXXYYYY".to_vec())
        );
    }

    #[test]
    fn expiry_and_eviction_take_the_oldest_without_a_scan() {
        let mut d = Defragmenter::new();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let f = |id: u32| Fragment {
            id,
            offset: 0,
            more: true,
            proto: 17,
            data: b"AAAAAAAA",
        };
        // A full table: the next new datagram evicts the oldest (id 0) only.
        for id in 0..MAX_PENDING_DATAGRAMS as u32 {
            assert_eq!(d.add(i64::from(id), a, b, &f(id)), (FragOutcome::Held, 0));
        }
        let (out, lost) = d.add(5_000, a, b, &f(99_999));
        assert_eq!((out, lost), (FragOutcome::Held, 1));
        assert_eq!(d.pending(), MAX_PENDING_DATAGRAMS);
        // Completed datagrams leave queue entries behind: many of them stay bounded.
        for id in 200_000..220_000u32 {
            let g = Fragment {
                more: false,
                ..f(id)
            };
            let _ = d.add(6_000, a, b, &f(id));
            let _ = d.add(6_000, a, b, &Fragment { offset: 8, ..g });
        }
        assert!(
            d.order.len() <= 4 * MAX_PENDING_DATAGRAMS + 1,
            "{}",
            d.order.len()
        );
        // Time passes: everything held expires, each counted once.
        let held = d.pending() as u64;
        assert_eq!(d.expire(6_000 + FRAGMENT_TIMEOUT_NS + 1), held);
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
