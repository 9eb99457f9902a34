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
//! Memory: what a held segment costs is counted, not only its payload: each one is a heap
//! allocation plus an entry in the ordered map ([`HELD_SEGMENT_OVERHEAD`]), so a flood of
//! 1-byte segments fills the buffer (and the engine's global budget) at ~97 B a segment,
//! not 1 B. `limit` and [`Stream::held_bytes`] are in these cost units.
//!
//! Overlaps: the bytes that arrived first win (what a receiving stack would usually have
//! accepted); the overlap is counted. A pure retransmission (all bytes already delivered)
//! is counted as a retransmission and dropped.

use std::collections::BTreeMap;

/// Bookkeeping of one held segment beyond its payload: its `Vec` header (24 B) and key
/// (8 B) in a B-tree node that is on average about two thirds full (node headers and
/// edges: ~24 B more per entry), and the allocator's header and 16-byte rounding of the
/// payload's allocation (~16-24 B). Rounded up to stay on the safe side.
pub const HELD_SEGMENT_OVERHEAD: usize = 96;

/// What holding a segment of `len` bytes costs.
pub const fn held_cost(len: usize) -> usize {
    len + HELD_SEGMENT_OVERHEAD
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
    pub overlaps: u64,
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
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    pub stats: StreamStats,
}

impl Stream {
    /// Memory held by out-of-order segments right now (payload plus bookkeeping, see
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

    /// One segment's payload. Calls `out` with in-order data and gaps.
    pub fn segment<'a>(
        &mut self,
        seq: u32,
        data: &'a [u8],
        limit: usize,
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
        if start < next {
            // Partly old: deliver only the new tail.
            self.stats.overlaps += 1;
            let skip = (next - start) as usize;
            self.deliver(&data[skip..], out);
            self.drain(out);
            return;
        }
        if start == next {
            self.deliver(data, out);
            self.drain(out);
            return;
        }
        // Ahead of the stream: hold it, making room by declaring gaps if needed.
        let start = start as u64;
        while self.held_bytes + held_cost(data.len()) > limit && !self.held.is_empty() {
            self.stats.ooo_dropped += 1;
            self.skip_to_first_held(out);
            self.drain(out);
        }
        if start < self.next_off {
            // Skipping moved us past part of this segment.
            let skip = (self.next_off - start) as usize;
            if skip >= data.len() {
                self.stats.retransmissions += 1;
                return;
            }
            self.stats.overlaps += 1;
            self.deliver(&data[skip..], out);
            self.drain(out);
            return;
        }
        if start == self.next_off {
            self.deliver(data, out);
            self.drain(out);
            return;
        }
        if held_cost(data.len()) > limit {
            // Cannot be held at all: the hole before it is lost.
            self.gap(start - self.next_off, out);
            self.deliver(data, out);
            self.drain(out);
            return;
        }
        match self.held.get(&start) {
            Some(existing) if existing.len() >= data.len() => self.stats.overlaps += 1,
            Some(existing) => {
                // Same start, longer: keep the first bytes, add the new tail.
                self.stats.overlaps += 1;
                let mut v = Vec::with_capacity(data.len());
                v.extend_from_slice(existing);
                v.extend_from_slice(&data[existing.len()..]);
                self.held_bytes += data.len() - existing.len();
                self.held.insert(start, v);
            }
            None => {
                self.held_bytes += held_cost(data.len());
                self.held.insert(start, data.to_vec());
            }
        }
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
        while let Some((&start, _)) = self.held.iter().next() {
            if start > self.next_off {
                break;
            }
            let Some(data) = self.held.remove(&start) else {
                break;
            };
            self.held_bytes -= held_cost(data.len());
            let end = start + data.len() as u64;
            if end <= self.next_off {
                self.stats.overlaps += 1;
                continue;
            }
            let skip = (self.next_off - start) as usize;
            if skip > 0 {
                self.stats.overlaps += 1;
            }
            self.next_off += (data.len() - skip) as u64;
            self.next_seq = self.next_seq.wrapping_add((data.len() - skip) as u32);
            out(Chunk::Data(std::borrow::Cow::Owned(data[skip..].to_vec())));
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
        s.segment(seq, data, limit, &mut |c| match c {
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
}
