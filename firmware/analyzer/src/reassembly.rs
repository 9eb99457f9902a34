//! TCP stream reassembly for one direction of one connection.
//!
//! Sequence numbers are 32 bits and wrap; we map each to a 64-bit stream offset relative
//! to the next expected byte (the signed 32-bit distance), so wraparound needs no special
//! case. In-order bytes go straight to the caller; segments ahead of the next expected
//! byte wait in a buffer capped at `limit` bytes (the `[analyzer] stream_buffer` setting).
//! When the buffer is full, or the stream ends with holes, the hole becomes a *gap*: its
//! length is reported to the parser (`on_gap`) and on the session (`missing_bytes`, flag
//! `gap`), and the bytes after it are delivered. Bytes are never invented.
//!
//! Memory: what a held segment costs is counted, not only its payload: its allocation's
//! capacity (not its length), plus the bookkeeping of a heap allocation and an entry in
//! the ordered map ([`HELD_SEGMENT_OVERHEAD`]), so a flood of 1-byte segments fills the
//! buffer (and the engine's global budget) at ~97 B a segment, not 1 B. `limit` and
//! [`Stream::held_bytes`] are in these cost units.
//!
//! Overlaps, and the policy that resolves them ([`OverlapPolicy`], `[analyzer]
//! tcp_overlap_policy`). What an analyzer believes a stream said must be what the
//! protected host's application read, or an attacker can show the analyzer one thing and
//! the host another (the classic IDS evasion). Bytes already delivered in order are final
//! in every policy, as in every receiving stack (once in the receive queue, a
//! retransmission cannot change them). For bytes not yet delivered (held out of order):
//!
//! - `linux` (default) does what Linux's `tcp_data_queue_ofo` does: a segment that lies
//!   inside one held segment starting at or before it is dropped; otherwise it is held,
//!   and held segments starting at or after it that it covers entirely are dropped (so a
//!   later, longer segment with the same start replaces the earlier one). Delivery walks
//!   the held segments by start, each giving only the bytes past what is delivered: where
//!   held segments overlap, the one starting lowest wins. A segment that arrives in order
//!   wins over held bytes it overlaps (Linux queues it and then trims its out-of-order
//!   queue).
//! - `first`: the bytes that arrived first win (old BSD-style stacks, Windows).
//! - `last`: the bytes that arrived last win.
//!
//! Every segment that overlaps delivered or held bytes is counted once
//! (`StreamStats::overlaps`); when the overlapping bytes differed from the held bytes they
//! compete with, it is also counted in `overlap_conflicts` (the engine flags the session
//! `overlap_conflict`: the policy decided what the session says). Delivered bytes are not
//! kept, so a conflicting retransmission of delivered data is counted as an overlap but
//! cannot be compared. A pure retransmission (all bytes already delivered) is counted as a
//! retransmission and dropped.

use std::collections::BTreeMap;

/// How overlapping bytes not yet delivered resolve (`[analyzer] tcp_overlap_policy`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum OverlapPolicy {
    /// As Linux's receive path (see the module docs).
    #[default]
    Linux,
    /// The bytes that arrived first win.
    First,
    /// The bytes that arrived last win.
    Last,
}

impl OverlapPolicy {
    /// The config value: `linux`, `first` or `last`.
    pub fn parse(v: &str) -> Result<OverlapPolicy, String> {
        match v {
            "linux" => Ok(OverlapPolicy::Linux),
            "first" => Ok(OverlapPolicy::First),
            "last" => Ok(OverlapPolicy::Last),
            other => Err(format!(
                "`{other}` is not a TCP overlap policy; use linux (what Linux hosts see), first or last"
            )),
        }
    }
}

/// Bookkeeping of one held segment beyond its payload: its `Vec` header (24 B) and key
/// (8 B) in a B-tree node that is on average about two thirds full (node headers and
/// edges: ~24 B more per entry), and the allocator's header and 16-byte rounding of the
/// payload's allocation (~16-24 B). Rounded up to stay on the safe side.
pub const HELD_SEGMENT_OVERHEAD: usize = 96;

/// What holding a segment whose allocation has room for `capacity` bytes costs.
pub const fn held_cost(capacity: usize) -> usize {
    capacity + HELD_SEGMENT_OVERHEAD
}

/// What a call produced, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(std::borrow::Cow<'a, [u8]>),
    Gap(u64),
}

/// Events worth counting.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamStats {
    pub retransmissions: u64,
    /// Segments that overlapped bytes already delivered or held (each counted once).
    pub overlaps: u64,
    /// Of those, segments whose overlapping bytes differed from the held bytes.
    pub overlap_conflicts: u64,
    pub gaps: u64,
    pub missing_bytes: u64,
    /// Out-of-order segments that did not fit in the buffer and forced a gap.
    pub ooo_dropped: u64,
}

#[derive(Debug, Default)]
pub struct Stream {
    /// Sequence number of the next expected byte (valid when `started`).
    next_seq: u32,
    /// Stream offset of `next_seq`.
    next_off: u64,
    started: bool,
    /// Held segments by stream offset. Under `linux` they may overlap (never one inside
    /// another, so their ends grow with their starts); under `first` and `last` they never
    /// overlap.
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    pub stats: StreamStats,
}

impl Stream {
    /// Memory held by out-of-order segments right now (allocation plus bookkeeping, see
    /// [`held_cost`]).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The SYN (or SYN-ACK) of this direction: data starts at `isn + 1`.
    pub fn on_syn(&mut self, isn: u32) {
        if !self.started {
            self.next_seq = isn.wrapping_add(1);
            self.started = true;
        }
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// Would the receiver of this direction accept a reset with sequence number `seq`?
    /// Linux (RFC 5961 §3.2) takes a RST only at exactly the next expected sequence number
    /// and answers any other in-window RST with a challenge ACK. Where this stream has a
    /// hole (bytes held behind it), the host may be ahead of us: anything up to the end of
    /// the held bytes is taken.
    pub fn accepts_rst(&self, seq: u32) -> bool {
        if !self.started {
            return true;
        }
        let rel = seq.wrapping_sub(self.next_seq) as i32 as i64;
        if rel == 0 {
            return true;
        }
        let ahead = self.held.iter().next_back().map_or(0, |(s, v)| {
            (s + v.len() as u64).saturating_sub(self.next_off)
        });
        rel > 0 && rel as u64 <= ahead
    }

    /// One segment's payload. Calls `out` with in-order data and gaps.
    pub fn segment<'a>(
        &mut self,
        seq: u32,
        data: &'a [u8],
        limit: usize,
        policy: OverlapPolicy,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if data.is_empty() {
            return;
        }
        if !self.started {
            // Mid-stream pick-up: the first data we see defines the start.
            self.next_seq = seq;
            self.started = true;
        }
        let rel = seq.wrapping_sub(self.next_seq) as i32 as i64;
        let start = self.next_off as i64 + rel;
        let end = start + data.len() as i64;
        let next = self.next_off as i64;
        if end <= next {
            self.stats.retransmissions += 1;
            return;
        }
        // Bytes already delivered are final: keep only the new tail.
        let mut overlapped = start < next;
        let (start, data) = if start < next {
            (self.next_off, &data[(next - start) as usize..])
        } else {
            (start as u64, data)
        };
        let (held_overlap, conflict) = self.compare_held(start, data);
        overlapped |= held_overlap;
        if overlapped {
            self.stats.overlaps += 1;
        }
        if conflict {
            self.stats.overlap_conflicts += 1;
        }
        if start == self.next_off {
            if policy == OverlapPolicy::First && held_overlap {
                // The held bytes came first: only the holes between them are new.
                self.insert_first(start, data);
            } else {
                self.deliver(data, out);
            }
            self.drain(out);
            return;
        }
        // Ahead of the stream: hold it, making room by declaring gaps if needed.
        while self.held_bytes + held_cost(data.len()) > limit && !self.held.is_empty() {
            self.stats.ooo_dropped += 1;
            self.skip_to_first_held(out);
            self.drain(out);
        }
        if start <= self.next_off {
            // Skipping moved us up to or past part of this segment.
            let skip = (self.next_off - start) as usize;
            if skip < data.len() {
                self.deliver(&data[skip..], out);
                self.drain(out);
            }
            return;
        }
        if held_cost(data.len()) > limit {
            // Cannot be held at all: the hole before it is lost.
            self.gap(start - self.next_off, out);
            self.deliver(data, out);
            self.drain(out);
            return;
        }
        match policy {
            OverlapPolicy::Linux => self.insert_linux(start, data),
            OverlapPolicy::First => self.insert_first(start, data),
            OverlapPolicy::Last => self.insert_last(start, data),
        }
        // Splitting around held bytes (`first`, `last`) can add pieces, each with its
        // bookkeeping: the limit holds after the insertion too.
        while self.held_bytes > limit && !self.held.is_empty() {
            self.stats.ooo_dropped += 1;
            self.skip_to_first_held(out);
            self.drain(out);
        }
    }

    /// Held segments that overlap `[start, end)`, as (start, end), by start.
    fn overlapping(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = Vec::new();
        // Segments starting at or before `start`: their ends grow with their starts, so
        // the ones reaching past `start` are the last few.
        for (&s, d) in self.held.range(..=start).rev() {
            let e = s + d.len() as u64;
            if e <= start {
                break;
            }
            v.push((s, e));
        }
        v.reverse();
        for (&s, d) in self.held.range(start + 1..end) {
            v.push((s, s + d.len() as u64));
        }
        v
    }

    /// Does `data` at `start` overlap held bytes, and do the bytes it overlaps (the ones
    /// delivery would take: lowest start first) differ from it?
    fn compare_held(&self, start: u64, data: &[u8]) -> (bool, bool) {
        if self.held.is_empty() {
            return (false, false);
        }
        let end = start + data.len() as u64;
        let segs = self.overlapping(start, end);
        if segs.is_empty() {
            return (false, false);
        }
        let mut pos = start;
        let mut conflict = false;
        for (s, e) in segs {
            let from = pos.max(s);
            let to = e.min(end);
            if from < to
                && let Some(held) = self.held.get(&s)
            {
                let theirs = &held[(from - s) as usize..(to - s) as usize];
                let ours = &data[(from - start) as usize..(to - start) as usize];
                conflict |= theirs != ours;
            }
            pos = pos.max(e);
        }
        (true, conflict)
    }

    fn put(&mut self, start: u64, data: Vec<u8>) {
        self.held_bytes += held_cost(data.capacity());
        if let Some(old) = self.held.insert(start, data) {
            self.held_bytes -= held_cost(old.capacity());
        }
    }

    fn take(&mut self, start: u64) -> Option<Vec<u8>> {
        let v = self.held.remove(&start)?;
        self.held_bytes -= held_cost(v.capacity());
        Some(v)
    }

    /// `linux`: see the module docs.
    fn insert_linux(&mut self, start: u64, data: &[u8]) {
        let end = start + data.len() as u64;
        if let Some((&s, d)) = self.held.range(..=start).next_back()
            && s + d.len() as u64 >= end
        {
            // All its bytes are in a held segment that starts no later: dropped.
            return;
        }
        let covered: Vec<u64> = self
            .held
            .range(start..)
            .take_while(|(s, d)| **s + d.len() as u64 <= end)
            .map(|(s, _)| *s)
            .collect();
        for s in covered {
            self.take(s);
        }
        self.put(start, data.to_vec());
    }

    /// `first`: only the parts of `data` no held segment covers are held.
    fn insert_first(&mut self, start: u64, data: &[u8]) {
        let end = start + data.len() as u64;
        let mut pos = start;
        let mut pieces = Vec::new();
        for (s, e) in self.overlapping(start, end) {
            if s > pos {
                pieces.push((pos, s.min(end)));
            }
            pos = pos.max(e);
            if pos >= end {
                break;
            }
        }
        if pos < end {
            pieces.push((pos, end));
        }
        for (s, e) in pieces {
            self.put(s, data[(s - start) as usize..(e - start) as usize].to_vec());
        }
    }

    /// `last`: held bytes under `data` are cut away, then `data` is held.
    fn insert_last(&mut self, start: u64, data: &[u8]) {
        let end = start + data.len() as u64;
        for (s, e) in self.overlapping(start, end) {
            let Some(old) = self.take(s) else {
                continue;
            };
            if s < start {
                self.put(s, old[..(start - s) as usize].to_vec());
            }
            if e > end {
                self.put(end, old[(end - s) as usize..].to_vec());
            }
        }
        self.put(start, data.to_vec());
    }

    /// End of the stream (FIN, RST, timeout): whatever is held is delivered behind gaps.
    pub fn finish(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        while !self.held.is_empty() {
            self.skip_to_first_held(out);
            self.drain(out);
        }
    }

    fn deliver(&mut self, data: &[u8], out: &mut dyn FnMut(Chunk<'_>)) {
        self.next_off += data.len() as u64;
        self.next_seq = self.next_seq.wrapping_add(data.len() as u32);
        out(Chunk::Data(std::borrow::Cow::Borrowed(data)));
    }

    fn gap(&mut self, len: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        if len == 0 {
            return;
        }
        self.stats.gaps += 1;
        self.stats.missing_bytes += len;
        self.next_off += len;
        self.next_seq = self.next_seq.wrapping_add(len as u32);
        out(Chunk::Gap(len));
    }

    fn skip_to_first_held(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        if let Some((&first, _)) = self.held.iter().next()
            && first > self.next_off
        {
            self.gap(first - self.next_off, out);
        }
    }

    /// Delivers held segments that have become in order.
    fn drain(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        // Overlaps among held segments were counted when they arrived: here the one
        // starting lowest gives its bytes and the rest only what lies beyond.
        while let Some((&start, _)) = self.held.iter().next() {
            if start > self.next_off {
                break;
            }
            let Some(mut data) = self.take(start) else {
                break;
            };
            let end = start + data.len() as u64;
            if end <= self.next_off {
                continue;
            }
            let skip = (self.next_off - start) as usize;
            if skip > 0 {
                data.drain(..skip);
            }
            self.next_off += data.len() as u64;
            self.next_seq = self.next_seq.wrapping_add(data.len() as u32);
            out(Chunk::Data(std::borrow::Cow::Owned(data)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        s: &mut Stream,
        seq: u32,
        data: &[u8],
        limit: usize,
        got: &mut Vec<u8>,
        gaps: &mut Vec<u64>,
    ) {
        s.segment(seq, data, limit, OverlapPolicy::Linux, &mut |c| match c {
            Chunk::Data(d) => got.extend_from_slice(&d),
            Chunk::Gap(n) => gaps.push(n),
        });
    }

    #[test]
    fn reorders_drops_retransmits_and_wraps() {
        let mut s = Stream::default();
        let isn = u32::MAX - 3; // data starts 3 bytes before the wrap
        s.on_syn(isn);
        let (mut got, mut gaps) = (Vec::new(), Vec::new());
        let base = isn.wrapping_add(1);
        run(
            &mut s,
            base.wrapping_add(5),
            b"FGHIJ",
            1000,
            &mut got,
            &mut gaps,
        );
        assert!(got.is_empty());
        run(&mut s, base, b"ABCDE", 1000, &mut got, &mut gaps);
        run(&mut s, base, b"ABC", 1000, &mut got, &mut gaps); // retransmission
        run(
            &mut s,
            base.wrapping_add(8),
            b"XXKL",
            1000,
            &mut got,
            &mut gaps,
        ); // overlap: first wins
        assert_eq!(got, b"ABCDEFGHIJKL");
        assert!(gaps.is_empty());
        assert_eq!(s.stats.retransmissions, 1);
        assert_eq!(s.stats.overlaps, 1);
    }

    #[test]
    fn full_buffer_and_end_turn_holes_into_counted_gaps() {
        let mut s = Stream::default();
        s.on_syn(1000);
        let (mut got, mut gaps) = (Vec::new(), Vec::new());
        // Room for one held segment of up to 4 bytes (limits count the bookkeeping too).
        let limit = held_cost(4);
        run(&mut s, 1001, b"AB", limit, &mut got, &mut gaps);
        run(&mut s, 1005, b"EFG", limit, &mut got, &mut gaps); // hole CD, held
        run(&mut s, 1010, b"JK", limit, &mut got, &mut gaps); // does not fit: CD becomes a gap
        assert_eq!(got, b"ABEFG");
        assert_eq!(gaps, vec![2]);
        s.finish(&mut |c| match c {
            Chunk::Data(d) => got.extend_from_slice(&d),
            Chunk::Gap(n) => gaps.push(n),
        });
        assert_eq!(got, b"ABEFGJK");
        assert_eq!(gaps, vec![2, 2]);
        assert_eq!(s.stats.missing_bytes, 4);
        assert_eq!(s.stats.ooo_dropped, 1);
        assert_eq!(s.held_bytes(), 0);
    }

    /// Sends `segs` (offset from the first data byte, bytes) after a SYN, then fills
    /// `0..fill_to` with `.` (arriving last, in order), and returns what was delivered
    /// and the stats.
    fn replay(
        policy: OverlapPolicy,
        segs: &[(u32, &[u8])],
        fill_to: usize,
    ) -> (String, StreamStats) {
        let mut s = Stream::default();
        s.on_syn(99);
        let mut got = Vec::new();
        let mut sink = |c: Chunk<'_>| match c {
            Chunk::Data(d) => got.extend_from_slice(&d),
            Chunk::Gap(_) => panic!("no gap expected"),
        };
        for (off, d) in segs {
            s.segment(100 + off, d, 1 << 20, policy, &mut sink);
        }
        s.segment(100, &vec![b'.'; fill_to], 1 << 20, policy, &mut sink);
        assert_eq!(s.held_bytes(), 0);
        (String::from_utf8(got).unwrap(), s.stats)
    }

    #[test]
    fn linux_policy_resolves_out_of_order_overlaps_like_tcp_data_queue_ofo() {
        use OverlapPolicy::Linux;
        // Same start, longer: the later segment replaces the earlier one.
        let (got, st) = replay(Linux, &[(4, b"1111"), (4, b"22222222")], 4);
        assert_eq!(got, "....22222222");
        assert_eq!((st.overlaps, st.overlap_conflicts), (1, 1));
        // Same start, same length or shorter: the held one stays.
        assert_eq!(
            replay(Linux, &[(4, b"1111"), (4, b"2222")], 4).0,
            "....1111"
        );
        assert_eq!(replay(Linux, &[(4, b"1111"), (4, b"22")], 4).0, "....1111");
        // Starts earlier and covers it: the lowest start wins.
        assert_eq!(
            replay(Linux, &[(6, b"11"), (4, b"222222")], 4).0,
            "....222222"
        );
        // Starts later and reaches further: the held bytes win where they overlap.
        assert_eq!(
            replay(Linux, &[(4, b"1111"), (6, b"222222")], 4).0,
            "....11112222"
        );
        // Inside a held segment: dropped.
        assert_eq!(
            replay(Linux, &[(4, b"11111111"), (6, b"22")], 4).0,
            "....11111111"
        );
        // Starts earlier, ends inside: its bytes first, then the held tail.
        assert_eq!(
            replay(Linux, &[(6, b"1111"), (4, b"2222")], 4).0,
            "....222211"
        );
        // In order over held bytes: the in-order segment wins.
        let (got, st) = replay(Linux, &[(4, b"1111")], 10);
        assert_eq!(got, "..........");
        assert_eq!((st.overlaps, st.overlap_conflicts), (1, 1));
        // Same bytes again: an overlap, not a conflict.
        let (got, st) = replay(Linux, &[(4, b"1111"), (4, b"1111")], 4);
        assert_eq!(got, "....1111");
        assert_eq!((st.overlaps, st.overlap_conflicts), (1, 0));
        // A chain of partial overlaps: lowest start wins byte by byte.
        let (got, _) = replay(
            Linux,
            &[(4, b"1111"), (6, b"2222"), (8, b"3333"), (5, b"44")],
            4,
        );
        assert_eq!(got, "....11112233");
    }

    #[test]
    fn first_and_last_policies() {
        use OverlapPolicy::{First, Last};
        let segs: &[(u32, &[u8])] = &[(4, b"1111"), (2, b"22222222"), (8, b"3333")];
        assert_eq!(replay(First, segs, 2).0, "..2211112233");
        assert_eq!(replay(Last, segs, 2).0, "..2222223333");
        // In order over held bytes: first keeps the held bytes, last takes the new.
        assert_eq!(replay(First, &[(4, b"1111")], 10).0, "....1111..");
        assert_eq!(replay(Last, &[(4, b"1111")], 10).0, "..........");
        let (got, st) = replay(Last, &[(4, b"1111"), (4, b"22")], 4);
        assert_eq!(got, "....2211");
        assert_eq!((st.overlaps, st.overlap_conflicts), (1, 1));
    }

    #[test]
    fn held_cost_follows_the_allocation_and_rst_needs_the_exact_sequence_number() {
        let mut s = Stream::default();
        s.on_syn(0);
        let mut sink = |_: Chunk<'_>| {};
        s.segment(11, b"abcd", 1 << 20, OverlapPolicy::Linux, &mut sink);
        assert_eq!(s.held_bytes(), held_cost(4));
        s.segment(11, b"abcdefgh", 1 << 20, OverlapPolicy::Linux, &mut sink);
        assert_eq!(s.held_bytes(), held_cost(8));
        assert!(s.accepts_rst(1));
        assert!(!s.accepts_rst(0));
        assert!(s.accepts_rst(19), "up to the end of the held bytes");
        assert!(!s.accepts_rst(20));
        assert!(!s.accepts_rst(1 << 31));
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Fuzz of the reassembly state machine under every policy: random pieces of a stream
    /// (reordered, overlapping, duplicated, across the sequence wrap; some with other bytes
    /// over the same positions; a buffer limit sometimes too small). Nothing may panic; the
    /// held-memory count must equal what is held; every byte position up to the end is
    /// delivered or reported in a gap, once; and when no piece contradicts another, every
    /// policy delivers exactly the original stream, with no conflict counted.
    /// `KUROKO_FUZZ_ITERS` sets the number of streams (default 3 000; the report of issue
    /// 14 names a run with 1 000 000 in release).
    #[test]
    fn random_overlapping_pieces_keep_every_invariant_under_every_policy() {
        let iters: u64 = std::env::var("KUROKO_FUZZ_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3_000);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let policies = [
            OverlapPolicy::Linux,
            OverlapPolicy::First,
            OverlapPolicy::Last,
        ];
        for i in 0..iters {
            let policy = policies[(i % 3) as usize];
            let len = 1 + rng.below(600) as usize;
            let source: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let conflicting = rng.below(3) == 0;
            let small = rng.below(4) == 0;
            let limit = if small {
                held_cost(1 + rng.below(64) as usize) * (1 + rng.below(4) as usize)
            } else {
                1 << 20
            };
            let isn = rng.next() as u32;
            let mut s = Stream::default();
            s.on_syn(isn);
            let mut got = Vec::new();
            let mut gaps = 0u64;
            let mut sink = |c: Chunk<'_>| match c {
                Chunk::Data(d) => got.extend_from_slice(&d),
                Chunk::Gap(n) => gaps += n,
            };
            // Pieces that cover the stream, then extra overlapping ones, shuffled.
            let mut pieces: Vec<(usize, Vec<u8>)> = Vec::new();
            let mut at = 0;
            while at < len {
                let n = (1 + rng.below(80) as usize).min(len - at);
                pieces.push((at, source[at..at + n].to_vec()));
                at += n;
            }
            for _ in 0..rng.below(12) {
                let a = rng.below(len as u64) as usize;
                let n = (1 + rng.below(60) as usize).min(len - a);
                let mut d = source[a..a + n].to_vec();
                if conflicting {
                    for b in &mut d {
                        if rng.below(2) == 0 {
                            *b = b.wrapping_add(1);
                        }
                    }
                }
                pieces.push((a, d));
            }
            for k in (1..pieces.len()).rev() {
                let j = rng.below(k as u64 + 1) as usize;
                pieces.swap(k, j);
            }
            for (off, d) in &pieces {
                let seq = isn.wrapping_add(1).wrapping_add(*off as u32);
                s.segment(seq, d, limit, policy, &mut sink);
                let held: usize = s.held.values().map(|v| held_cost(v.capacity())).sum();
                assert_eq!(s.held_bytes(), held, "stream {i}");
                assert!(s.held_bytes() <= limit.max(held_cost(80)), "stream {i}");
            }
            s.finish(&mut sink);
            assert_eq!(s.held_bytes(), 0);
            assert_eq!(got.len() as u64 + gaps, len as u64, "stream {i} {policy:?}");
            if !conflicting && !small {
                assert_eq!(got, source, "stream {i} {policy:?}");
                assert_eq!(s.stats.overlap_conflicts, 0, "stream {i}");
            }
        }
    }
}
