//! Lanes: several capture threads appending to one store, with no lock per packet.
//!
//! Why: one thread copying every packet into the store's buffers (and crc-ing each closed
//! block) is the capture's limit at large frames. With lanes, each thread fills whole
//! blocks on its own: [`SegmentWriter::into_lanes`] turns a writer into `n`
//! [`LaneWriter`]s. A lane borrows one of the writer's chunk buffers (the ones registered
//! with io_uring), copies records into it and computes the payload crc on its own thread,
//! exactly as [`SegmentWriter::append`] does; only a *closed* block goes to the shared
//! writer, which places it (the next 4 KiB boundary of the open segment's current chunk
//! where it fits, else the next chunk, sealing and opening segments as usual), writes its
//! header (`seq`, `block_no`, header crc: 64 bytes) and queues the write from the lane's
//! buffer (no further copy). The buffer comes back to the pool when the write completes.
//!
//! The shared writer sits behind a mutex that a lane takes once per block (about 1 MiB of
//! records: every ~700 frames of 1500 B, ~12,000 of 64 B), and on the hot path only with
//! `try_lock`: a lane that finds it busy keeps its closed block (`ready`) and goes on
//! filling a spare buffer; only when it has neither does it answer
//! [`AppendError::Backpressure`] (counted by the caller, as a full pool is for one writer).
//! So a lane never waits for another lane, nor for a seal another lane is running.
//!
//! What readers see: the format is unchanged. Blocks of different lanes interleave in a
//! segment, each block in its lane's time order; segments, retention, recovery and
//! positions are those of one writer (there is still one open segment). A block spans the
//! time it took its lane to fill it, so packets of two lanes are in time order only block
//! by block: consumers that need strict time order (pcap export) merge by timestamp
//! (`pcap::export_pcap`). Capture keeps each flow on one lane (PACKET_FANOUT by flow
//! hash), so a flow's packets stay in order.
//!
//! Limits: lanes are non-blocking only (capture's mode); a lane's block holds at most
//! `chunk_size − region_len` bytes, so it fits any chunk, the first one included (a chunk
//! other than the first then has that much slack at its end: 4 KiB of 1 MiB by default).

use super::{
    BlockDone, Io, SegmentWriter, WriterStats, account_block, finish_block, put_record, widen_span,
};
use crate::error::{AppendError, StoreError};
use crate::sys::AlignedBuf;
use kuroko_ring_format::{self as fmt, BLOCK_HEADER_LEN, align_up, record_len};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

/// The writer the lanes share.
struct Hub {
    w: Option<SegmentWriter>,
    /// Lanes not closed yet; the last one to close closes the writer.
    open_lanes: usize,
}

/// A block a lane fills in one of the writer's buffers (number `bi`, taken out of the
/// pool while the lane holds it).
struct LaneBlock {
    bi: usize,
    buf: AlignedBuf,
    /// End of the records so far (the block header takes the first 64 bytes).
    fill: usize,
    records: u32,
    first_ts: u64,
    last_ts: u64,
    /// CRC-32C of the payload once the block is closed (computed by the lane's thread,
    /// outside the shared writer's lock).
    crc: Option<u32>,
}

impl LaneBlock {
    fn fits(&self, need: usize, cap: usize) -> bool {
        self.crc.is_none() && self.fill + need <= cap
    }

    /// No more records: its payload crc, on the lane's own thread.
    fn close(&mut self) {
        if self.crc.is_none() {
            self.crc = Some(crate::crc::crc32c(
                &self.buf.as_slice()[BLOCK_HEADER_LEN..self.fill],
            ));
        }
    }
}

/// Counters of one lane (the shared writer's are in [`WriterStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Packets copied into this lane's blocks.
    pub packets: u64,
    /// Packets refused because the lane had no buffer left (see the module docs).
    pub backpressure: u64,
    /// Packets refused as too large for a record.
    pub rejected: u64,
    /// Blocks this lane handed to the writer.
    pub blocks: u64,
    /// Times the shared writer was busy when the lane tried to hand a block over.
    pub hub_busy: u64,
}

/// One thread's way into a store shared with other lanes. See the module docs.
pub struct LaneWriter {
    hub: Arc<Mutex<Hub>>,
    lane: u16,
    cur: Option<LaneBlock>,
    /// A closed block waiting for the shared writer.
    ready: Option<LaneBlock>,
    /// An empty buffer to go on with while `ready` waits.
    spare: Option<(usize, AlignedBuf)>,
    /// Bytes a block may take (header included): `chunk_size − region_len`.
    cap: usize,
    max_caplen: u32,
    pool_bytes: u64,
    stats: LaneStats,
    /// Backpressure not yet added to the writer's counters.
    unreported_bp: u64,
    closed: bool,
}

impl SegmentWriter {
    /// Splits this writer into `n` lanes (n ≥ 1), one per appending thread. A block the
    /// writer had open is closed first; the next block goes after it.
    pub fn into_lanes(mut self, n: usize) -> Vec<LaneWriter> {
        self.close_block();
        self.lanes = true;
        if let Some(seg) = &mut self.seg {
            seg.flags |= fmt::SEG_FLAG_LANES;
        }
        if let Some(c) = self.cur.take() {
            self.current[c.buf] = false;
            self.release_if_idle(c.buf);
            self.next_chunk = c.chunk;
            self.resume_at = c.block_start;
        }
        let g = self.ring.geometry;
        let cap = (g.chunk_size - g.region_len) as usize;
        let max_caplen = self
            .max_caplen
            .min((cap - BLOCK_HEADER_LEN - fmt::RECORD_HEADER_LEN) as u32);
        let n = n.max(1);
        let pool_bytes = self.buffer_pool_bytes();
        let hub = Arc::new(Mutex::new(Hub {
            w: Some(self),
            open_lanes: n,
        }));
        (0..n)
            .map(|lane| LaneWriter {
                hub: Arc::clone(&hub),
                lane: lane as u16,
                cur: None,
                ready: None,
                spare: None,
                cap,
                max_caplen,
                pool_bytes,
                stats: LaneStats::default(),
                unreported_bp: 0,
                closed: false,
            })
            .collect()
    }

    /// Lends a free buffer to a lane (taken out of the pool until it comes back).
    fn lend_buf(&mut self) -> Option<(usize, AlignedBuf)> {
        let b = self.free.pop()? as usize;
        self.current[b] = true;
        Some((b, std::mem::replace(&mut self.bufs[b], AlignedBuf::empty())))
    }

    /// A lent buffer comes back unused.
    fn return_buf(&mut self, (b, buf): (usize, AlignedBuf)) {
        self.bufs[b] = buf;
        self.current[b] = false;
        self.release_if_idle(b);
    }

    /// Places a lane's closed block in the open segment and queues its write (see the
    /// module docs). The buffer is back in the pool once the write completed.
    fn place_block(&mut self, blk: LaneBlock) -> Result<(), StoreError> {
        let bi = blk.bi;
        self.bufs[bi] = blk.buf;
        self.current[bi] = false;
        let b = BlockDone {
            records: blk.records,
            payload_len: (blk.fill - BLOCK_HEADER_LEN) as u32,
            first_ts: blk.first_ts,
            last_ts: blk.last_ts,
            payload_crc: match blk.crc {
                Some(c) => c,
                None => crate::crc::crc32c(&self.bufs[bi].as_slice()[BLOCK_HEADER_LEN..blk.fill]),
            },
            // One crc over the payload (format 1 blocks): a lane's block is read whole.
            units: None,
        };
        let need = align_up(blk.fill as u64, fmt::ALIGN) as usize;
        let g = self.ring.geometry;
        let placed = loop {
            if self.seg.is_none() {
                let t0 = std::time::Instant::now();
                let r = self.open_next_segment();
                self.times.open_ns += t0.elapsed().as_nanos() as u64;
                if let Err(e) = r {
                    break Err(e);
                }
            }
            let (start, end) = g.chunk_range(self.next_chunk);
            if self.resume_at + need <= (end - start) as usize {
                break Ok(start);
            }
            self.next_chunk += 1;
            self.resume_at = 0;
            if self.next_chunk >= g.chunk_count
                && let Err(e) = self.seal_segment()
            {
                break Err(e);
            }
        };
        let chunk_start = match placed {
            Ok(s) => s,
            Err(e) => {
                self.stats.packets_lost += u64::from(blk.records);
                self.release_if_idle(bi);
                return Err(e);
            }
        };
        let seg = self.seg.as_mut().expect("placed in the open segment");
        let at = self.resume_at;
        let end = finish_block(&mut self.bufs[bi].as_mut_slice()[..need], seg, &b);
        let written = account_block(seg, self.next_chunk, chunk_start, at, at + end, &b);
        self.stats.bytes_written += written;
        self.stats.packets_written += u64::from(b.records);
        self.resume_at = at + end;
        let off = chunk_start + at as u64;
        let t0 = std::time::Instant::now();
        let r = match &self.io {
            Io::Uring(_) => self.submit_block(bi, 0..end, off, b.records),
            Io::Sync => super::pwrite_traced(
                (&self.trace, &self.faults),
                seg.slot,
                &seg.file,
                &self.bufs[bi].as_slice()[..end],
                off,
            ),
        };
        self.times.submit_ns += t0.elapsed().as_nanos() as u64;
        if let Err(e) = r {
            if let Some(seg) = &mut self.seg {
                seg.mark_failed_write(b.records);
            }
            self.io_failed(e, b.records);
        }
        self.release_if_idle(bi);
        self.maybe_publish();
        Ok(())
    }
}

fn closed_error() -> StoreError {
    StoreError::Options {
        message: "the store's lanes are already closed".into(),
    }
}

impl LaneWriter {
    /// This lane's number (0-based).
    pub fn lane(&self) -> u16 {
        self.lane
    }

    /// Counters of this lane.
    pub fn lane_stats(&self) -> LaneStats {
        self.stats
    }

    /// Largest packet one record of a lane can hold.
    pub fn max_caplen(&self) -> u32 {
        self.max_caplen
    }

    /// Counters of the shared writer (packets placed in the store by every lane), plus
    /// this lane's records not handed over yet in `bytes_buffered`. Takes the shared
    /// writer's lock only if it is free; `None` when it is busy.
    pub fn stats(&self) -> Option<WriterStats> {
        let hub = match self.hub.try_lock() {
            Ok(h) => h,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let mut s = hub.w.as_ref()?.stats();
        s.bytes_buffered = [&self.cur, &self.ready]
            .into_iter()
            .flatten()
            .map(|b| (b.fill - BLOCK_HEADER_LEN) as u64)
            .sum();
        Some(s)
    }

    /// Bytes of the shared writer's buffer pool.
    pub fn buffer_pool_bytes(&self) -> u64 {
        self.pool_bytes
    }

    /// Appends one packet (the concatenation of `parts`) to this lane's block. Never
    /// allocates, never waits: see the module docs for when it answers backpressure.
    pub fn append(&mut self, meta: &super::RecordMeta, parts: &[&[u8]]) -> Result<(), AppendError> {
        let cap: usize = parts.iter().map(|p| p.len()).sum();
        if cap > self.max_caplen as usize {
            self.stats.rejected += 1;
            return Err(AppendError::TooLarge {
                len: cap,
                max: self.max_caplen,
            });
        }
        let need = record_len(cap as u32);
        if !self.cur.as_ref().is_some_and(|c| c.fits(need, self.cap)) {
            self.rotate(need)?;
        }
        let c = self.cur.as_mut().expect("rotate left a block with room");
        c.fill = put_record(c.buf.as_mut_slice(), c.fill, need, cap, meta, parts);
        widen_span(&mut c.first_ts, &mut c.last_ts, c.records, meta.ts_ns);
        c.records += 1;
        self.stats.packets += 1;
        Ok(())
    }

    /// The current block cannot take `need` more bytes (or there is none): close it, go on
    /// in the spare buffer, and hand blocks over if the shared writer is free.
    fn rotate(&mut self, need: usize) -> Result<(), AppendError> {
        if let Some(mut c) = self.cur.take() {
            if c.records == 0 {
                // Empty yet too small cannot happen (max_caplen); keep it as the spare.
                self.spare.get_or_insert((c.bi, c.buf));
            } else {
                c.close();
                if self.ready.is_none() {
                    self.ready = Some(c);
                } else {
                    self.cur = Some(c);
                }
            }
        }
        if self.cur.is_none() {
            self.cur = self.spare.take().map(fresh);
        }
        // A clone of the handle (one atomic add per block), so the guard does not borrow
        // `self`.
        let hub = Arc::clone(&self.hub);
        match hub.try_lock() {
            Ok(hub) => self.visit(hub)?,
            Err(TryLockError::Poisoned(p)) => self.visit(p.into_inner())?,
            Err(TryLockError::WouldBlock) => self.stats.hub_busy += 1,
        }
        if self.cur.as_ref().is_some_and(|c| c.fits(need, self.cap)) {
            return Ok(());
        }
        self.stats.backpressure += 1;
        self.unreported_bp += 1;
        Err(AppendError::Backpressure)
    }

    /// With the shared writer: reap finished writes, place the blocks waiting (the
    /// current one too if it is closed), refill the current block
    /// and the spare from the pool, and report a write failure once.
    fn visit(&mut self, mut hub: MutexGuard<'_, Hub>) -> Result<(), AppendError> {
        let Some(w) = hub.w.as_mut() else {
            return Err(AppendError::Store(closed_error()));
        };
        w.poll();
        w.stats.backpressure += std::mem::take(&mut self.unreported_bp);
        let mut placed = Ok(());
        if let Some(r) = self.ready.take() {
            self.stats.blocks += 1;
            placed = w.place_block(r);
        }
        if placed.is_ok()
            && let Some(c) = self.cur.take_if(|c| c.crc.is_some())
        {
            self.stats.blocks += 1;
            placed = w.place_block(c);
        }
        if self.cur.is_none() {
            self.cur = self.spare.take().or_else(|| w.lend_buf()).map(fresh);
        }
        if self.spare.is_none() {
            self.spare = w.lend_buf();
        }
        placed.map_err(AppendError::Store)?;
        if let Some(last) = w.unreported.take() {
            w.stats.packets_lost += 1;
            return Err(AppendError::WriteFailed {
                errors: w.stats.write_errors,
                lost: w.stats.packets_lost,
                last,
            });
        }
        Ok(())
    }

    /// Reaps finished writes and hands over a waiting block, if the shared writer is free
    /// (never waits). Call it regularly, and after a backpressure answer before retrying.
    pub fn poll(&mut self) -> Result<(), StoreError> {
        let hub = Arc::clone(&self.hub);
        match hub.try_lock() {
            Ok(hub) => self.visit_quiet(hub),
            Err(TryLockError::Poisoned(p)) => self.visit_quiet(p.into_inner()),
            Err(TryLockError::WouldBlock) => {
                self.stats.hub_busy += 1;
                Ok(())
            }
        }
    }

    fn visit_quiet(&mut self, hub: MutexGuard<'_, Hub>) -> Result<(), StoreError> {
        match self.visit(hub) {
            Ok(()) | Err(AppendError::Backpressure | AppendError::TooLarge { .. }) => Ok(()),
            Err(AppendError::Store(e)) => Err(e),
            Err(AppendError::WriteFailed { errors, last, .. }) => Err(StoreError::WriteFailed {
                count: errors,
                last,
            }),
        }
    }

    /// Closes this lane's partly filled block and queues it (waiting for the shared writer
    /// if another lane holds it), so readers see what was appended so far.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(c) = self.cur.as_mut().filter(|c| c.records > 0) {
            c.close();
        }
        let hub = self.hub.clone();
        let mut hub = hub
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(w) = hub.w.as_mut() else {
            return Err(closed_error());
        };
        w.poll();
        w.stats.backpressure += std::mem::take(&mut self.unreported_bp);
        if let Some(r) = self.ready.take() {
            self.stats.blocks += 1;
            w.place_block(r)?;
        }
        if let Some(c) = self.cur.take() {
            if c.records > 0 {
                self.stats.blocks += 1;
                w.place_block(c)?;
            } else {
                self.cur = Some(c);
            }
        }
        w.flush();
        Ok(())
    }

    /// Flushes this lane and gives its buffers back. The last lane to close closes the
    /// shared writer (cleanly, as [`SegmentWriter::close`]) and gets its final counters.
    pub fn close(mut self) -> Result<Option<WriterStats>, StoreError> {
        let flushed = self.flush();
        let r = self.release();
        flushed?;
        r
    }

    fn release(&mut self) -> Result<Option<WriterStats>, StoreError> {
        if self.closed {
            return Ok(None);
        }
        self.closed = true;
        let hub = self.hub.clone();
        let mut hub = hub
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut blocks = [self.ready.take(), self.cur.take()];
        if let Some(w) = hub.w.as_mut() {
            for b in blocks.iter_mut().filter_map(Option::take) {
                w.return_buf((b.bi, b.buf));
            }
            if let Some(s) = self.spare.take() {
                w.return_buf(s);
            }
        }
        hub.open_lanes = hub.open_lanes.saturating_sub(1);
        if hub.open_lanes > 0 {
            return Ok(None);
        }
        match hub.w.take() {
            Some(w) => w.close().map(Some),
            None => Ok(None),
        }
    }
}

/// An empty block in buffer `bi`.
fn fresh((bi, buf): (usize, AlignedBuf)) -> LaneBlock {
    LaneBlock {
        bi,
        buf,
        fill: BLOCK_HEADER_LEN,
        records: 0,
        first_ts: 0,
        last_ts: 0,
        crc: None,
    }
}

impl Drop for LaneWriter {
    /// A lane dropped without `close` (its thread failed) gives its buffers back, unwritten;
    /// the last one drops the writer without a clean close (the next open recovers).
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let hub = self.hub.clone();
        let mut hub = hub
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = hub.w.as_mut() {
            for b in [self.ready.take(), self.cur.take()].into_iter().flatten() {
                w.return_buf((b.bi, b.buf));
            }
            if let Some(s) = self.spare.take() {
                w.return_buf(s);
            }
        }
        hub.open_lanes = hub.open_lanes.saturating_sub(1);
        if hub.open_lanes == 0 {
            hub.w.take();
        }
    }
}
