//! One segment: building its header, probing a slot's state, scanning its blocks.
//!
//! The scanner is shared by the reader, the writer's recovery and the inspector, so that
//! all three agree on which blocks exist. It works on untrusted bytes (a segment read while
//! the writer may be overwriting it): every block is checked (magic, header crc, `seq`,
//! bounds, increasing block number) before anything in it is used.

use crate::layout::{Paths, RingGeometry};
use kuroko_ring_format::{
    self as fmt, BLOCK_HEADER_LEN, BlockHeader, ChunkIndexEntry, FlowIndexRef, Geometry,
    IfaceEntry, SegmentHeader,
};
use std::fs::File;
use std::os::unix::fs::FileExt;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, IntoBytes};

/// A new slot's header: FREE, no sequence number.
pub fn free_header(ring: &RingGeometry, slot: u32) -> SegmentHeader {
    let mut h = empty_header(&ring.geometry, slot);
    seal_crc(&mut h);
    h
}

pub(crate) fn empty_header(g: &Geometry, slot: u32) -> SegmentHeader {
    SegmentHeader {
        magic: fmt::SEGMENT_MAGIC,
        version: U16::new(fmt::WRITE_VERSION),
        header_len: U16::new(fmt::SEGMENT_HEADER_LEN as u16),
        state: U16::new(fmt::STATE_FREE),
        flags: U16::new(0),
        seq: U64::new(0),
        slot: U32::new(slot),
        chunk_size: U32::new(g.chunk_size as u32),
        segment_size: U64::new(g.segment_size),
        region_len: U32::new(g.region_len as u32),
        chunk_count: U32::new(g.chunk_count),
        first_ts: U64::new(0),
        last_ts: U64::new(0),
        packets: U64::new(0),
        record_bytes: U64::new(0),
        used_bytes: U64::new(0),
        blocks: U32::new(0),
        damaged_blocks: U32::new(0),
        opened_wall_ns: U64::new(0),
        sealed_wall_ns: U64::new(0),
        iface_count: U16::new(0),
        reserved0: U16::new(0),
        index_crc: U32::new(0),
        ifaces: [IfaceEntry::default(); fmt::MAX_IFACES],
        flow_index: FlowIndexRef::default(),
        reserved: [0; 60],
        header_crc: U32::new(0),
    }
}

/// Sets `header_crc`.
pub fn seal_crc(h: &mut SegmentHeader) {
    h.header_crc = U32::new(crc32c::crc32c(h.crc_input()));
}

/// Checks magic, version, crc and geometry of a segment header.
pub fn header_ok(h: &SegmentHeader, g: &Geometry) -> bool {
    h.magic == fmt::SEGMENT_MAGIC
        && h.version.get() <= fmt::FORMAT_VERSION
        && crc32c::crc32c(h.crc_input()) == h.header_crc.get()
        && h.segment_size.get() == g.segment_size
        && h.chunk_size.get() as u64 == g.chunk_size
        && h.region_len.get() as u64 == g.region_len
}

/// Validates the block header at `off` for segment generation `seq`.
pub fn block_at<'a>(seg: &'a [u8], g: &Geometry, off: u64, seq: u64) -> Option<&'a BlockHeader> {
    let chunk_end = g.chunk_range(g.chunk_of(off)).1.min(seg.len() as u64);
    if !off.is_multiple_of(fmt::ALIGN) || off + BLOCK_HEADER_LEN as u64 > chunk_end {
        return None;
    }
    let h = fmt::block_header(&seg[off as usize..])?;
    if (h.magic.get() != fmt::BLOCK_MAGIC && h.magic.get() != fmt::RING_BLOCK_MAGIC)
        || h.header_len.get() as usize != BLOCK_HEADER_LEN
        || h.seq.get() != seq
        || off + h.disk_len() > chunk_end
        || crc32c::crc32c(h.crc_input()) != h.header_crc.get()
    {
        return None;
    }
    Some(h)
}

/// What the scanner found at one place.
#[derive(Debug)]
pub enum BlockEvent<'a> {
    /// A complete block whose payload checksum matches.
    Valid(ScannedBlock<'a>),
    /// A block whose header is intact but whose payload fails its checksum (a block
    /// without a unit table, or whose unit table fails its own): all its records are lost.
    BadPayload(ScannedBlock<'a>),
    /// A block some of whose units fail their checksum (bit `k` of `bad_units` for unit
    /// `k`): its records outside them are intact ([`ScannedBlock::records`] yields them).
    Partial {
        block: ScannedBlock<'a>,
        bad_units: u64,
    },
    /// Bytes of a sealed segment's used area that hold no valid block header.
    BadHeader { offset: u64, len: u64 },
}

#[derive(Debug, Clone, Copy)]
pub struct ScannedBlock<'a> {
    pub offset: u64,
    pub header: &'a BlockHeader,
    /// The records part of the payload (without the unit table); for a ring block, its
    /// filled ring bytes.
    pub payload: &'a [u8],
    /// The block's unit table (empty in blocks of format version 1).
    pub units: &'a [fmt::UnitEntry],
}

impl<'a> ScannedBlock<'a> {
    /// The records that passed their checksum: all of them in a valid block, those outside
    /// the damaged units of a partly damaged one.
    pub fn records(&self, bad_units: u64) -> fmt::Records<'a> {
        if self.header.is_ring() {
            fmt::Records::ring(self.payload, self.header.ring_iface())
        } else if bad_units == 0 {
            fmt::Records::new(self.payload)
        } else {
            fmt::Records::salvage(self.payload, self.units, self.header.unit_shift, bad_units)
        }
    }

    /// Records of a partly damaged block that are intact.
    pub fn salvaged(&self, bad_units: u64) -> u32 {
        self.records(bad_units).filter(|r| r.is_ok()).count() as u32
    }

    /// Where the damaged units lie: (payload offset of the first, bytes from there to the
    /// end of the last).
    pub fn bad_range(&self, bad_units: u64) -> (u64, u64) {
        if bad_units == 0 {
            return (0, 0);
        }
        let shift = self.header.unit_shift as u32;
        let first = bad_units.trailing_zeros() as u64;
        let last = 63 - bad_units.leading_zeros() as u64;
        let from = first << shift;
        let to = ((last + 1) << shift).min(self.payload.len() as u64);
        (from, to.saturating_sub(from))
    }
}

/// Iterates the blocks of one segment generation.
///
/// With a chunk index (sealed segments) it walks exactly the used part of every chunk and
/// reports bytes there that hold no valid block. Without one (open segments) the segment
/// ends at the first place where neither the next 4 KiB boundary nor the next chunk start
/// holds a valid block of this generation.
pub struct BlockScan<'a> {
    seg: &'a [u8],
    g: Geometry,
    seq: u64,
    index: Option<&'a [ChunkIndexEntry]>,
    next: Option<u64>,
    last_no: Option<u32>,
    stop_chunk: u32,
    /// Blocks known intact and the time range outside which blocks are stepped over
    /// unchecked (see [`BlockScan::trusting`]).
    trusted: Option<(&'a std::collections::HashSet<u64>, u64, u64)>,
}

impl<'a> BlockScan<'a> {
    pub fn new(seg: &'a [u8], g: Geometry, seq: u64, index: Option<&'a [ChunkIndexEntry]>) -> Self {
        BlockScan {
            seg,
            g,
            seq,
            index: index.filter(|i| i.len() == g.chunk_count as usize),
            next: Some(g.region_len),
            last_no: None,
            stop_chunk: g.chunk_count,
            trusted: None,
        }
    }

    /// Blocks at the offsets in `verified` are taken as intact without checking their
    /// payload (they passed in these same bytes before), and blocks whose header (always
    /// checked) says they hold no packet in `[from, to)` are stepped over without checking
    /// their payload and without being reported. For repeated time-range reads of bytes
    /// kept in memory ([`crate::reader::StoreReader::scan_time_cached`]).
    pub fn trusting(
        mut self,
        verified: &'a std::collections::HashSet<u64>,
        from: u64,
        to: u64,
    ) -> Self {
        self.trusted = Some((verified, from, to));
        self
    }

    /// `take`, unless `trusting` says to step over the block: then `None`, the walk moved
    /// past it.
    fn take_in_range(&mut self, off: u64, h: &'a BlockHeader) -> Option<BlockEvent<'a>> {
        if let Some((_, from, to)) = self.trusted
            && (h.record_count.get() == 0 || h.first_ts.get() >= to || h.last_ts.get() < from)
        {
            self.last_no = Some(h.block_no.get());
            self.next = Some(off + h.disk_len());
            return None;
        }
        Some(self.take(off, h))
    }

    /// Starts the walk at chunk `c`'s first block (every chunk that holds blocks has one at
    /// its start) and ends it after chunk `last` (inclusive).
    pub fn chunks(mut self, first: u32, last: u32) -> Self {
        self.next = (first < self.g.chunk_count).then(|| self.g.chunk_range(first).0);
        self.stop_chunk = last.saturating_add(1).min(self.g.chunk_count);
        self
    }

    /// Starts the walk at the block at `off` (a position from an earlier walk).
    pub fn from_offset(mut self, off: u64) -> Self {
        self.next = Some(off);
        self
    }

    fn valid(&self, off: u64) -> Option<&'a BlockHeader> {
        let h = block_at(self.seg, &self.g, off, self.seq)?;
        if let Some(last) = self.last_no
            && h.block_no.get() <= last
        {
            return None;
        }
        Some(h)
    }

    fn take(&mut self, off: u64, h: &'a BlockHeader) -> BlockEvent<'a> {
        self.last_no = Some(h.block_no.get());
        self.next = Some(off + h.disk_len());
        let known = self.trusted.is_some_and(|(v, _, _)| v.contains(&off));
        let start = off as usize + BLOCK_HEADER_LEN;
        let payload = &self.seg[start..start + h.payload_len.get() as usize];
        if h.is_ring() {
            // One crc over the filled ring bytes (read in place, never copied).
            let ring = h.ring_bytes(payload);
            let b = ScannedBlock {
                offset: off,
                header: h,
                payload: ring.unwrap_or(&[]),
                units: &[],
            };
            return match ring {
                Some(r) if known || crate::crc::crc32c(r) == h.payload_crc.get() => {
                    BlockEvent::Valid(b)
                }
                _ => BlockEvent::BadPayload(b),
            };
        }
        let mut b = ScannedBlock {
            offset: off,
            header: h,
            payload: &payload[..h.records_len()],
            units: &[],
        };
        if !h.has_units() {
            return if known || crate::crc::crc32c(payload) == h.payload_crc.get() {
                BlockEvent::Valid(b)
            } else {
                BlockEvent::BadPayload(b)
            };
        }
        let Some(units) = h
            .unit_table(payload)
            .filter(|t| known || crc32c::crc32c(t.as_bytes()) == h.payload_crc.get())
        else {
            return BlockEvent::BadPayload(b);
        };
        b.units = units;
        if known {
            return BlockEvent::Valid(b);
        }
        let shift = h.unit_shift as usize;
        let mut bad = 0u64;
        for (k, e) in units.iter().enumerate() {
            let a = k << shift;
            let z = (a + (1 << shift)).min(b.payload.len());
            if crate::crc::crc32c(&b.payload[a..z]) != e.crc.get() {
                bad |= 1 << k;
            }
        }
        if bad == 0 {
            BlockEvent::Valid(b)
        } else {
            BlockEvent::Partial {
                block: b,
                bad_units: bad,
            }
        }
    }

    fn next_chunk_start(&self, off: u64) -> Option<u64> {
        let c = self.g.chunk_of(off) + 1;
        (c < self.stop_chunk).then(|| self.g.chunk_range(c).0)
    }
}

impl<'a> Iterator for BlockScan<'a> {
    type Item = BlockEvent<'a>;

    fn next(&mut self) -> Option<BlockEvent<'a>> {
        loop {
            let off = self.next?;
            if off >= self.g.segment_size || self.g.chunk_of(off) >= self.stop_chunk {
                self.next = None;
                return None;
            }
            let c = self.g.chunk_of(off);
            let (cstart, _) = self.g.chunk_range(c);
            if let Some(index) = self.index {
                let used_end = cstart + index[c as usize].used.get() as u64;
                if off >= used_end {
                    self.next = self.next_chunk_start(off);
                    continue;
                }
                if let Some(h) = self.valid(off) {
                    match self.take_in_range(off, h) {
                        Some(ev) => return Some(ev),
                        None => continue,
                    }
                }
                // Damage inside the used area: find the next valid block of this chunk.
                let mut p = off + fmt::ALIGN;
                while p < used_end && self.valid(p).is_none() {
                    p += fmt::ALIGN;
                }
                let end = p.min(used_end);
                self.next = Some(end);
                return Some(BlockEvent::BadHeader {
                    offset: off,
                    len: end - off,
                });
            }
            if let Some(h) = self.valid(off) {
                match self.take_in_range(off, h) {
                    Some(ev) => return Some(ev),
                    None => continue,
                }
            }
            if off == cstart {
                self.next = None;
                return None;
            }
            let Some(n) = self.next_chunk_start(off) else {
                self.next = None;
                return None;
            };
            match self.valid(n) {
                Some(h) => match self.take_in_range(n, h) {
                    Some(ev) => return Some(ev),
                    None => continue,
                },
                None => {
                    self.next = None;
                    return None;
                }
            }
        }
    }
}

/// The state of one slot, from its header and first block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// No file yet (lazy preallocation).
    Missing,
    /// Formatted, never written.
    Free,
    Open,
    Sealed,
    /// Damaged: the header or first block header cannot be read (an unreadable sector, a
    /// file that cannot be opened), or the header fails its checks with no valid block
    /// behind it. Whatever the slot held is unknown. Reported and skipped, never fatal for
    /// the rest of the ring, never counted as free; the writer overwrites it when the ring
    /// comes round to it.
    Damaged,
}

#[derive(Clone, Copy, Debug)]
pub struct SlotProbe {
    pub slot: u32,
    pub state: SlotState,
    pub seq: u64,
    /// The header when it passed its checks and describes generation `seq`.
    pub header: Option<SegmentHeader>,
    /// The header failed its checks (torn write or corruption).
    pub header_damaged: bool,
}

/// Reads a slot's header and first block header (two small preads). A slot that cannot be
/// read is [`SlotState::Damaged`], not an error: one bad sector must not take the whole
/// ring down (the writer at every start, every reader).
pub fn probe(paths: &Paths, ring: &RingGeometry, slot: u32) -> SlotProbe {
    match probe_inner(paths, ring, slot) {
        Ok(p) => p,
        Err(_) => SlotProbe {
            slot,
            state: SlotState::Damaged,
            seq: 0,
            header: None,
            header_damaged: true,
        },
    }
}

fn probe_inner(paths: &Paths, ring: &RingGeometry, slot: u32) -> std::io::Result<SlotProbe> {
    let g = &ring.geometry;
    let mut probe = SlotProbe {
        slot,
        state: SlotState::Missing,
        seq: 0,
        header: None,
        header_damaged: false,
    };
    let file = match File::open(paths.slot(slot)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(probe),
        Err(e) => return Err(e),
    };
    let mut hbuf = [0u8; fmt::SEGMENT_HEADER_LEN];
    if let Some(e) = crate::fault::lookup(&paths.data).and_then(|f| f.header_read(slot)) {
        return Err(e);
    }
    file.read_exact_at(&mut hbuf, 0)?;
    // The first block header sits at region_len; read it into a buffer shaped like a
    // segment prefix so `block_at` can check it in place.
    let mut bbuf = vec![0u8; g.region_len as usize + BLOCK_HEADER_LEN];
    file.read_exact_at(&mut bbuf[g.region_len as usize..], g.region_len)?;
    let header = SegmentHeader::read_from_bytes(&hbuf).ok();
    // All zeros: a header never written (a slot file created by a preparation that a crash
    // cut short before its sync), not a damaged one.
    let never_written = hbuf.iter().all(|&b| b == 0);
    let header = header.filter(|h| {
        let ok = header_ok(h, g);
        probe.header_damaged = !ok && !never_written;
        ok
    });
    // A header or first block numbered outside the store's band is not this store's (stale
    // bytes of an earlier store, see `layout::random_seq_base`): the slot is FREE to us.
    let ours = |s: u64| ring.owns_seq(s);
    let header = header.filter(|h| h.state.get() == fmt::STATE_FREE || ours(h.seq.get()));
    let first_seq = fmt::block_header(&bbuf[g.region_len as usize..])
        .map(|b| b.seq.get())
        .filter(|&s| s != 0 && ours(s) && block_at(&bbuf, g, g.region_len, s).is_some());
    match (header, first_seq) {
        (Some(h), Some(bs)) if bs > h.seq.get() => {
            // The writer's OPEN header never reached the disk but its blocks did.
            probe.state = SlotState::Open;
            probe.seq = bs;
        }
        (Some(h), _) => {
            probe.seq = h.seq.get();
            probe.state = match h.state.get() {
                fmt::STATE_OPEN => SlotState::Open,
                fmt::STATE_SEALED => SlotState::Sealed,
                _ => SlotState::Free,
            };
            if probe.state != SlotState::Free {
                probe.header = Some(h);
            }
        }
        (None, Some(bs)) => {
            probe.state = SlotState::Open;
            probe.seq = bs;
        }
        // A header that fails its checks is not a free slot: it may have described a
        // segment (a flipped bit in a sealed header). Only a header that passes them says
        // FREE (a formatted slot).
        (None, None) if probe.header_damaged => probe.state = SlotState::Damaged,
        (None, None) => probe.state = SlotState::Free,
    }
    Ok(probe)
}

/// Totals of a walk over a segment's blocks (what an open segment's header would say).
#[derive(Clone, Debug, Default)]
pub struct SegmentTotals {
    pub blocks: u32,
    pub damaged_blocks: u32,
    pub packets: u64,
    pub record_bytes: u64,
    pub first_ts: u64,
    pub last_ts: u64,
    /// Offset just past the last block (4 KiB aligned), `region_len` when empty.
    pub end: u64,
    pub last_block_no: Option<u32>,
    /// Per chunk: (first_ts, last_ts, packets, blocks, used).
    pub chunks: Vec<ChunkIndexEntry>,
}

/// Walks every block header of an open segment (payloads are crc-checked too, so the
/// totals count only packets a reader will return).
pub fn totals(seg: &[u8], g: &Geometry, seq: u64) -> SegmentTotals {
    let mut t = SegmentTotals {
        end: g.region_len,
        chunks: vec![ChunkIndexEntry::default(); g.chunk_count as usize],
        ..Default::default()
    };
    for ev in BlockScan::new(seg, *g, seq, None) {
        // Packets a reader returns: all of a valid block, the intact ones of a partly
        // damaged one (which counts as damaged), none of a bad one.
        let (b, n, ok) = match ev {
            BlockEvent::Valid(b) => (b, b.header.record_count.get() as u64, true),
            BlockEvent::Partial { block, bad_units } => {
                (block, block.salvaged(bad_units) as u64, false)
            }
            BlockEvent::BadPayload(b) => (b, 0, false),
            BlockEvent::BadHeader { .. } => continue,
        };
        let h = b.header;
        t.blocks += 1;
        t.last_block_no = Some(h.block_no.get());
        t.end = b.offset + h.disk_len();
        let c = g.chunk_of(b.offset);
        let e = &mut t.chunks[c as usize];
        e.blocks = U32::new(e.blocks.get() + 1);
        e.used = U32::new((t.end - g.chunk_range(c).0) as u32);
        if !ok {
            t.damaged_blocks += 1;
        }
        if n == 0 {
            continue;
        }
        let (f, l) = (h.first_ts.get(), h.last_ts.get());
        if t.packets == 0 {
            t.first_ts = f;
        }
        t.first_ts = t.first_ts.min(f);
        t.last_ts = t.last_ts.max(l);
        t.packets += n;
        t.record_bytes += h.records_len() as u64;
        if e.packets.get() == 0 {
            e.first_ts = U64::new(f);
        }
        e.first_ts = U64::new(e.first_ts.get().min(f));
        e.last_ts = U64::new(e.last_ts.get().max(l));
        e.packets = U32::new(e.packets.get() + n as u32);
    }
    t
}

/// Crc of a chunk index as stored in `SegmentHeader::index_crc`.
pub fn index_crc(index: &[ChunkIndexEntry]) -> u32 {
    crc32c::crc32c(index.as_bytes())
}
