//! The writer's hand-offs to the kernel: the only places where it gives io_uring a buffer
//! to read. Each records the operation in [`InFlight`] before queueing it and, once it is
//! queued, the state that keeps its bytes untouched until the completion is reaped (a
//! buffer's `inflight` count, `open_busy`, a listed seal). `Err` from the queueing means
//! the kernel never got the operation (see `Uring::write`), and only then is it forgotten.

#![allow(unsafe_code)]

use super::{Io, Op, SegmentWriter};
use crate::error::StoreError;
use std::io;

impl SegmentWriter {
    /// Queues the write of `bufs[bi][range]` (a closed block of `packets` records of the
    /// open segment) at `off` in its file.
    pub(super) fn submit_block(
        &mut self,
        bi: usize,
        range: std::ops::Range<usize>,
        off: u64,
        packets: u32,
    ) -> io::Result<()> {
        let Io::Uring(u) = &mut self.io else {
            unreachable!("the caller checked for io_uring")
        };
        let seg = self.seg.as_mut().expect("a block implies an open segment");
        let len = (range.end - range.start) as u32;
        let ud = self.ops.insert(Op::Block {
            seq: seg.seq,
            buf: bi as u16,
            len,
            packets,
            off,
        });
        // SAFETY: the block's bytes are never written again while the kernel reads them:
        // the writer fills a chunk buffer only forward of its `block_start`, which the
        // caller moved past this block, and the buffer returns to the free list (to be
        // refilled) only when `inflight[bi]`, raised below, is back to 0, that is once
        // this write's completion was reaped (`complete`). The buffers and the segment's
        // file outlive every write in flight (`Drop` drains the ring, and the ring field is
        // dropped before the buffers).
        let r = unsafe {
            u.write(
                &seg.file,
                (bi as u16, &self.bufs[bi]),
                range.clone(),
                off,
                ud,
            )
        };
        match r {
            Ok(()) => {
                self.inflight[bi] += 1;
                seg.inflight += 1;
                self.stats.blocks_in_flight += 1;
                self.stats.bytes_in_flight += u64::from(len);
                if let Some(t) = &self.trace {
                    t.write(seg.slot, off, &self.bufs[bi].as_slice()[range], Some(ud));
                }
                Ok(())
            }
            Err(e) => {
                self.ops.remove(ud);
                Err(e)
            }
        }
    }

    /// Queues the OPEN header in `open_buf` (filled by the caller) for the open segment.
    pub(super) fn submit_open_header(&mut self) -> Result<(), StoreError> {
        let g = self.ring.geometry;
        let seg = self.seg.as_mut().expect("open segment");
        let ud = self.ops.insert(Op::Open {
            seq: seg.seq,
            len: g.region_len as u32,
        });
        let Io::Uring(u) = &mut self.io else {
            unreachable!("the caller checked for io_uring")
        };
        // SAFETY: `open_buf` is filled only by `queue_open_header`, after `open_busy`
        // (set below until this write's completion is reaped) went false. The writer owns
        // the buffer and keeps the file open (in `seg`, then in its seal) for longer than
        // the write is in flight.
        match unsafe { u.write_buf(&seg.file, &self.open_buf, 0, ud) } {
            Ok(()) => {
                self.open_busy = true;
                seg.inflight += 1;
                if let Some(t) = &self.trace {
                    t.write(seg.slot, 0, self.open_buf.as_slice(), Some(ud));
                }
                Ok(())
            }
            Err(e) => {
                self.ops.remove(ud);
                Err(StoreError::io(&self.paths.slot(seg.slot), e))
            }
        }
    }

    /// Queues the SEALED header in `seal_bufs[i]` (filled by the caller) of seal `i`.
    pub(super) fn submit_seal_header(&mut self, i: usize) {
        let g = self.ring.geometry;
        let ud = self.ops.insert(Op::Header {
            seal: i as u8,
            len: g.region_len as u32,
        });
        let (Io::Uring(u), Some(s)) = (&mut self.io, self.sealing[i].as_mut()) else {
            self.ops.remove(ud);
            return;
        };
        // SAFETY: `seal_bufs[i]` is filled only for seal `i`, at the completion of its
        // fdatasync (once per seal), and the seal stays listed, its file open, until this
        // write's completion is reaped (`Op::Header` clears it). A new seal takes slot `i`
        // only once it is clear. The writer owns the buffer for longer than the ring.
        match unsafe { u.write_buf(&s.seg.file, &self.seal_bufs[i], 0, ud) } {
            Ok(()) => {
                if let Some(t) = &self.trace {
                    t.write(s.seg.slot, 0, self.seal_bufs[i].as_slice(), Some(ud));
                }
            }
            Err(e) => {
                self.ops.remove(ud);
                self.sealing[i] = None;
                self.io_failed(e, 0);
            }
        }
    }
}

impl SegmentWriter {
    /// Registers caller memory (packet ring mappings) with the writer's io_uring as fixed
    /// buffers, after its own: ring blocks in them are then written with `WRITE_FIXED`
    /// (the kernel pinned their pages once, here) instead of a plain write that pins the
    /// pages of every block. Waits until nothing is in flight. Returns whether the kernel
    /// took them (otherwise ring blocks are written plainly, as before).
    ///
    /// # Safety
    ///
    /// Every region stays mapped for as long as the writer lives (the capture drops its
    /// sinks before its rings). A region unmapped earlier is not freed while registered
    /// (the kernel holds its pages), but later writes from it would store stale bytes.
    pub unsafe fn register_ring_memory(&mut self, regions: &[(*const u8, usize)]) -> bool {
        if self.wait_idle().is_err() {
            return false;
        }
        let Io::Uring(u) = &mut self.io else {
            return false;
        };
        // SAFETY: the caller's contract; nothing is in flight (waited above).
        let ok = unsafe { u.register_with(&self.bufs, regions) }.is_ok();
        self.ring_regions.clear();
        if ok {
            let base = self.bufs.len();
            for (k, &(p, len)) in regions.iter().enumerate() {
                self.ring_regions.push((p as usize, len, (base + k) as u16));
            }
        }
        ok
    }

    /// Stores a TPACKET_V3 ring block from `bytes` (the block's memory from its descriptor
    /// on; at least the filled length rounded up to 4 KiB) as a ring block (see
    /// `writer::ring`). Never allocates. A write failure since the last call is reported
    /// here once, as [`SegmentWriter::append`] does, with this block refused (its packets
    /// counted lost).
    ///
    /// # Safety
    ///
    /// After [`super::RingAppend::Queued`], the kernel reads `bytes[..align4K(m.filled)]`
    /// until [`SegmentWriter::take_ring_done`] hands back `m.token`: the caller must
    /// neither write nor unmap that memory before then. (`close`, `sync` and drop wait for
    /// every write, so the token is back when they return.)
    pub unsafe fn append_ring_block(
        &mut self,
        bytes: &[u8],
        m: &super::RingBlockMeta,
    ) -> Result<super::RingAppend, crate::error::AppendError> {
        let p = match self.place_ring_block(bytes, m) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let ring = &bytes[..p.written];
        let t0 = std::time::Instant::now();
        // The ring bytes first, then the header page: a writer killed between the two
        // leaves ring bytes without a header (no block: the walk ends there), never a
        // header whose payload is missing (a damaged block).
        match &self.io {
            Io::Uring(_) => {
                // SAFETY: the caller keeps `ring` untouched until the token comes back,
                // which `complete` hands back only at this write's completion.
                match unsafe { self.submit_ring_data(ring, p.off + 4096, m) } {
                    Err(e) => self.ring_block_failed(e, m, true),
                    Ok(()) => {
                        if let Err(e) = self.submit_block(p.buf, p.page.clone(), p.off, 0) {
                            // The ring bytes are in flight: their token comes back at
                            // their completion; the block is lost all the same.
                            self.ring_block_failed(e, m, false);
                        }
                    }
                }
            }
            Io::Sync => match self.pwrite_ring_block(&p, ring) {
                Ok(()) => self.ring_done.push((m.token, true)),
                Err(e) => self.ring_block_failed(e, m, true),
            },
        }
        self.times.submit_ns += t0.elapsed().as_nanos() as u64;
        Ok(super::RingAppend::Queued)
    }

    /// Queues the write of a ring block's ring bytes `ring` (caller memory) at `off` in
    /// the open segment's file.
    ///
    /// # Safety
    ///
    /// `ring` stays untouched and mapped until this write's completion is reaped (the
    /// caller's contract of `append_ring_block`: it waits for the token, which `complete`
    /// hands back only then).
    pub(super) unsafe fn submit_ring_data(
        &mut self,
        ring: &[u8],
        off: u64,
        m: &super::RingBlockMeta,
    ) -> io::Result<()> {
        let Io::Uring(u) = &mut self.io else {
            unreachable!("the caller checked for io_uring")
        };
        let seg = self.seg.as_mut().expect("a block implies an open segment");
        let len = ring.len() as u32;
        let ud = self.ops.insert(Op::RingData {
            seq: seg.seq,
            len,
            packets: m.packets,
            off,
            token: m.token,
        });
        // A registered ring region holding the bytes: a fixed write (no pinning per write).
        let p = ring.as_ptr() as usize;
        let fixed = self
            .ring_regions
            .iter()
            .find(|r| p >= r.0 && p + ring.len() <= r.0 + r.1)
            .map(|r| r.2);
        // SAFETY: the caller keeps `ring` untouched until the completion of `ud` is reaped
        // (this function's contract); the segment's file outlives every write in flight
        // (`Drop` drains the ring); a fixed write's bytes lie in the registered region.
        match unsafe { u.write_raw(&seg.file, ring.as_ptr(), len, fixed, off, ud) } {
            Ok(()) => {
                seg.inflight += 1;
                self.stats.bytes_in_flight += u64::from(len);
                if let Some(t) = &self.trace {
                    t.write(seg.slot, off, ring, Some(ud));
                }
                Ok(())
            }
            Err(e) => {
                self.ops.remove(ud);
                Err(e)
            }
        }
    }
}
