//! Ring blocks (zero-copy capture, format version 3): a TPACKET_V3 block written to the
//! disk from the packet ring's own memory, with the store's block header in a 4 KiB header
//! page in front of it (see `kuroko_ring_format::RING_BLOCK_MAGIC`).
//!
//! The writer places a ring block like any block (next 4 KiB boundary of the current
//! chunk where `4 KiB + the filled bytes rounded up to 4 KiB` fit, else the next chunk),
//! fills the header page in the current chunk's buffer and queues two writes: the header
//! page (a registered-buffer write like every block) and the ring bytes (a plain O_DIRECT
//! write from the caller's memory: the kernel pins the ring pages for the write, no byte is
//! copied in user space). The only pass over the ring bytes in user space is the crc32c,
//! which reads them. The caller gets the block's token back once the write of the ring
//! bytes completed ([`SegmentWriter::take_ring_done`]) and only then may hand the block
//! back to the kernel.
//!
//! Torn states need nothing new from recovery: a header page without its ring bytes fails
//! the payload crc (a damaged block), ring bytes without their header page are no block.

use super::{SegmentWriter, Units, account_block, pwrite_traced};
use crate::error::AppendError;
use kuroko_ring_format::{self as fmt, BLOCK_HEADER_LEN, BlockHeader, align_up};
use zerocopy::IntoBytes;
use zerocopy::little_endian::{U16, U32, U64};

/// What the caller knows about a ring block it hands to the writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingBlockMeta {
    /// Bytes of the block the kernel filled (`blk_len`, descriptor included).
    pub filled: u32,
    /// Frames in the block (`num_pkts`).
    pub packets: u32,
    /// Earliest and latest frame time, ns since the epoch.
    pub first_ts: u64,
    pub last_ts: u64,
    /// Capture interface of every frame of the block.
    pub iface: u16,
    /// Handed back by [`SegmentWriter::take_ring_done`] when the block's memory is free.
    pub token: u64,
}

/// What [`SegmentWriter::append_ring_block`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingAppend {
    /// Queued (or written, with the synchronous fallback): the token comes back through
    /// [`SegmentWriter::take_ring_done`].
    Queued,
    /// No buffer for the header page (non-blocking mode): keep the block, try again.
    Backpressure,
    /// Not taken as a ring block (ring blocks not enabled, the open segment was opened
    /// without them, the block too large for a chunk, memory not 4 KiB aligned): store its
    /// frames as records instead.
    Refused,
}

impl SegmentWriter {
    /// Accepts ring blocks from now on: segments opened from now on carry `SEG_FLAG_RING`
    /// and format version 3 (a segment already open is finished with records).
    pub fn enable_ring_blocks(&mut self) {
        self.ring_blocks = true;
    }

    /// The largest ring block (in bytes of ring memory written, the filled bytes rounded up
    /// to 4 KiB) that fits a chunk with its header page, the first chunk included.
    pub fn max_ring_block(&self) -> usize {
        let g = self.ring.geometry;
        (g.chunk_size - g.region_len - fmt::ALIGN) as usize
    }

    /// Ring blocks whose writes finished since the last call: `(token, ok)`. `ok == false`:
    /// the write failed (counted like a failed block write); the memory is free either way.
    pub fn take_ring_done(&mut self, mut f: impl FnMut(u64, bool)) {
        for (t, ok) in self.ring_done.drain(..) {
            f(t, ok);
        }
    }

    /// Places a ring block of `bytes` (see [`SegmentWriter::append_ring_block`]): its header
    /// page filled in the current chunk's buffer, accounted in the segment, ready for the
    /// two writes. `Err(Ok(_))`: not placed, for the reason given.
    pub(super) fn place_ring_block(
        &mut self,
        bytes: &[u8],
        m: &RingBlockMeta,
    ) -> Result<Placed, Result<RingAppend, AppendError>> {
        if let Some(last) = self.unreported.take() {
            self.stats.packets_lost += u64::from(m.packets);
            return Err(Err(AppendError::WriteFailed {
                errors: self.stats.write_errors,
                lost: self.stats.packets_lost,
                last,
            }));
        }
        let written = align_up(u64::from(m.filled), fmt::ALIGN) as usize;
        let refuse = !self.ring_blocks
            || m.packets == 0
            || (m.filled as usize) < fmt::tpacket::DESC_LEN
            || written > bytes.len()
            || written > self.max_ring_block()
            || !(bytes.as_ptr() as usize).is_multiple_of(fmt::ALIGN as usize)
            || self
                .seg
                .as_ref()
                .is_some_and(|s| s.flags & fmt::SEG_FLAG_RING == 0);
        if refuse {
            return Err(Ok(RingAppend::Refused));
        }
        let need = fmt::ALIGN as usize + written;
        self.close_block();
        loop {
            let Some(c) = &self.cur else {
                match self.start_chunk() {
                    Ok(()) => continue,
                    Err(AppendError::Backpressure) => return Err(Ok(RingAppend::Backpressure)),
                    Err(e) => return Err(Err(e)),
                }
            };
            if c.block_start + need <= c.chunk_len {
                break;
            }
            self.finish_chunk().map_err(|e| Err(e.into()))?;
        }
        let filled = m.filled as usize;
        // The one pass over the ring bytes in user space: it reads them, copies nothing.
        let crc = crate::crc::crc32c(&bytes[..filled]);
        let c = self.cur.as_mut().expect("current chunk");
        let seg = self
            .seg
            .as_mut()
            .expect("a current chunk implies an open segment");
        let payload_len = (fmt::RING_PAYLOAD_OFFSET + written) as u32;
        let mut reserved = [0u8; 6];
        reserved[..2].copy_from_slice(&m.iface.to_le_bytes());
        let mut h = BlockHeader {
            magic: U32::new(fmt::RING_BLOCK_MAGIC),
            header_len: U16::new(BLOCK_HEADER_LEN as u16),
            flags: U16::new(0),
            record_count: U32::new(m.packets),
            seq: U64::new(seg.seq),
            block_no: U32::new(seg.next_block_no),
            payload_len: U32::new(payload_len),
            first_ts: U64::new(m.first_ts),
            last_ts: U64::new(m.last_ts),
            payload_crc: U32::new(crc),
            records_len: U32::new(m.filled),
            unit_shift: 0,
            unit_count: 0,
            reserved,
            header_crc: U32::new(0),
        };
        h.header_crc = U32::new(crc32c::crc32c(h.crc_input()));
        let start = c.block_start;
        let page = start + fmt::ALIGN as usize;
        let buf = self.bufs[c.buf].as_mut_slice();
        buf[start..start + BLOCK_HEADER_LEN].copy_from_slice(h.as_bytes());
        buf[start + BLOCK_HEADER_LEN..page].fill(0);
        let done = super::BlockDone {
            records: m.packets,
            payload_len,
            first_ts: m.first_ts,
            last_ts: m.last_ts,
            payload_crc: crc,
            // Only for the segment's record byte count: the filled ring bytes.
            units: Some(Units {
                records_len: m.filled,
                shift: 0,
                count: 0,
            }),
        };
        let end = start + need;
        self.stats.bytes_written += account_block(seg, c.chunk, c.chunk_start, start, end, &done);
        self.stats.packets_written += u64::from(m.packets);
        let placed = Placed {
            buf: c.buf,
            page: start..page,
            off: c.chunk_start + start as u64,
            written,
        };
        c.block_start = end;
        c.fill = end + BLOCK_HEADER_LEN;
        c.records = 0;
        c.unit_next = 0;
        Ok(placed)
    }

    /// The synchronous fallback's writes of a placed ring block (ring bytes first, as with
    /// io_uring).
    pub(super) fn pwrite_ring_block(&mut self, p: &Placed, ring: &[u8]) -> std::io::Result<()> {
        let seg = self.seg.as_ref().expect("open segment");
        let w = (&self.trace, &self.faults);
        pwrite_traced(w, seg.slot, &seg.file, ring, p.off + fmt::ALIGN)?;
        let page = &self.bufs[p.buf].as_slice()[p.page.clone()];
        pwrite_traced(w, seg.slot, &seg.file, page, p.off)
    }

    /// A placed ring block did not reach the disk (a write failed or was never queued):
    /// its packets are lost. With `free`, its memory is free at once (the ring bytes are
    /// not in flight); otherwise their completion hands the token back.
    pub(super) fn ring_block_failed(&mut self, e: std::io::Error, m: &RingBlockMeta, free: bool) {
        if let Some(seg) = &mut self.seg {
            seg.mark_failed_write(m.packets);
        }
        if free {
            self.ring_done.push((m.token, false));
        }
        self.io_failed(e, m.packets);
    }
}

/// Where a ring block went: its header page (`bufs[buf][page]`, at `off` in the file) and
/// the ring bytes to write after it.
pub(super) struct Placed {
    pub buf: usize,
    pub page: std::ops::Range<usize>,
    pub off: u64,
    /// Bytes of ring memory to write (the filled bytes rounded up to 4 KiB).
    pub written: usize,
}
