//! The segment store as a [`RecordSink`]: `kuroko_ring::SegmentWriter` in non-blocking mode.
//!
//! `append` copies the frame's parts into the store's aligned chunk buffer (the one copy of
//! the capture path) behind a ~20-byte record header; when every buffer is in flight the
//! store answers `Backpressure` and the engine counts the packet under that cause.
//!
//! [`StoreSink::publishing_to`] publishes the writer's live counters and backlog on the
//! capture's stats page ([`crate::stats::layout::Writer`]): after every
//! [`PUBLISH_EVERY_BYTES`] of records appended (about one ring block), on every `poll` and
//! `flush` (the engine's idle and stalled paths) and at close. Never per packet: the hot
//! path only adds the record's length to a counter.
//!
//! A disk that fails a write (or an fdatasync) stops the capture, loudly: the writer
//! reports the failure at the next `append` ([`AppendError::WriteFailed`]); the sink
//! publishes the disk-error counters (the stats page's disk group: failed writes, packets
//! lost) and returns the error, so the capture ends in state `failed` with the error on
//! stderr, and `kuroko run` restarts it with its back-off. A disk that recovered takes the
//! restarted capture; a dead one fails it again at once (the store's open writes headers).
//! Chosen over carrying on because a disk that failed once is not trusted to hold
//! evidence, and a capture that keeps "storing" into it would look healthy.
//!
//! [`StoreSink::with_rate_limit`] caps the bytes the sink accepts per second (a token bucket
//! refilled from the monotonic clock; no allocation, no syscall beyond the vDSO clock).
//! Packets above the cap are refused as backpressure, exactly as a disk that slow would
//! make the store refuse them. It exists to test and demonstrate loss accounting on
//! machines whose disks are faster than any traffic they can generate, and can also spare
//! a flash disk's endurance.

use kuroko_ring::format::record_flags;
use kuroko_ring::{
    AppendError, LaneWriter, RecordMeta, RingAppend, SegmentWriter, StoreError, WriterStats,
};

use crate::sink::{Appended, PacketMeta, RecordSink};
use crate::stats::{DiskErrorCounts, WriterGauges, WriterPublisher};
use crate::sys::process::monotonic_ns;

/// A token bucket of bytes.
struct RateLimit {
    bytes_per_sec: u64,
    tokens: u64,
    burst: u64,
    last_ns: u64,
}

impl RateLimit {
    fn take(&mut self, n: u64) -> bool {
        let now = monotonic_ns();
        let elapsed = now.saturating_sub(self.last_ns);
        if elapsed > 0 {
            let add = (u128::from(elapsed) * u128::from(self.bytes_per_sec) / 1_000_000_000) as u64;
            if add > 0 {
                self.tokens = (self.tokens + add).min(self.burst);
                self.last_ns = now;
            }
        }
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// Record bytes appended between two publications of the writer's gauges: the capture's
/// default ring block (1 MiB), so at most a few publications per block.
pub const PUBLISH_EVERY_BYTES: u64 = 1 << 20;

/// Where a sink's records go: the store's one writer, or one lane of it (capture with
/// several threads: `kuroko_ring::LaneWriter`).
// One per capture thread, never moved on the hot path: the size difference costs nothing,
// a box would cost an indirection per packet.
#[allow(clippy::large_enum_variant)]
enum Target {
    Writer(SegmentWriter),
    Lane(LaneWriter),
}

impl Target {
    fn append(&mut self, rec: &RecordMeta, parts: &[&[u8]]) -> Result<(), AppendError> {
        match self {
            Target::Writer(w) => w.append(rec, parts),
            Target::Lane(l) => l.append(rec, parts),
        }
    }

    fn stats(&self) -> Option<WriterStats> {
        match self {
            Target::Writer(w) => Some(w.stats()),
            Target::Lane(l) => l.stats(),
        }
    }

    fn poll(&mut self) -> Result<(), StoreError> {
        match self {
            Target::Writer(w) => {
                w.poll();
                Ok(())
            }
            Target::Lane(l) => l.poll(),
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        match self {
            Target::Writer(w) => {
                w.flush();
                Ok(())
            }
            Target::Lane(l) => l.flush(),
        }
    }

    fn pool_bytes(&self) -> Option<u64> {
        let b = match self {
            Target::Writer(w) => w.buffer_pool_bytes(),
            Target::Lane(l) => l.buffer_pool_bytes(),
        };
        Some(b).filter(|b| *b > 0)
    }

    /// The final counters: the writer's, or for a lane the shared writer's when this lane
    /// closed it last, else the counters as this lane last saw them.
    fn close(self) -> Result<WriterStats, StoreError> {
        match self {
            Target::Writer(w) => w.close(),
            Target::Lane(l) => {
                let seen = l.stats().unwrap_or_default();
                Ok(l.close()?.unwrap_or(seen))
            }
        }
    }
}

/// A segment writer (or one of its lanes) feeding on captured frames.
pub struct StoreSink {
    writer: Option<Target>,
    limit: Option<RateLimit>,
    /// Counters of the writer when it was closed.
    pub final_stats: Option<WriterStats>,
    gauges: Option<WriterPublisher>,
    /// Record bytes appended since the last publication.
    unpublished: u64,
    /// errno of the last disk write error reported (0: none).
    last_errno: u64,
}

impl StoreSink {
    /// `writer` should be opened with `StoreOptions { nonblocking: true, .. }`.
    pub fn new(writer: SegmentWriter) -> StoreSink {
        Self::with_target(Target::Writer(writer))
    }

    /// One lane of a writer shared by several capture threads
    /// (`SegmentWriter::into_lanes`; the writer opened non-blocking).
    pub fn lane(lane: LaneWriter) -> StoreSink {
        Self::with_target(Target::Lane(lane))
    }

    fn with_target(writer: Target) -> StoreSink {
        StoreSink {
            writer: Some(writer),
            limit: None,
            final_stats: None,
            gauges: None,
            unpublished: 0,
            last_errno: 0,
        }
    }

    /// Publishes the writer's live counters and backlog on the stats page of the capture
    /// (in this process) writing to `data_dir`.
    pub fn publishing_to(mut self, data_dir: &std::path::Path) -> StoreSink {
        self.gauges = Some(WriterPublisher::new(data_dir));
        self
    }

    fn publish(&mut self) {
        self.unpublished = 0;
        let (Some(p), Some(w)) = (&mut self.gauges, &self.writer) else {
            return;
        };
        // A lane whose shared writer is busy publishes next time.
        let Some(s) = w.stats() else {
            return;
        };
        let mut g = gauges(&s);
        g.pool_bytes = w.pool_bytes();
        p.publish(&g);
        p.publish_disk_errors(&disk_errors(&s, self.last_errno));
    }

    /// Accepts at most `bytes_per_sec` of record bytes per second (burst: 1/10 s worth).
    pub fn with_rate_limit(mut self, bytes_per_sec: u64) -> StoreSink {
        let burst = (bytes_per_sec / 10).max(65_536);
        self.limit = Some(RateLimit {
            bytes_per_sec,
            tokens: burst,
            burst,
            last_ns: monotonic_ns(),
        });
        self
    }

    fn writer(&mut self) -> Result<&mut Target, StoreError> {
        // `ok_or_else`: the error (a String) must not be built on every packet.
        self.writer.as_mut().ok_or_else(|| StoreError::Options {
            message: "the capture's store writer is already closed".into(),
        })
    }
}

impl RecordSink for StoreSink {
    type Error = StoreError;

    fn append(&mut self, meta: &PacketMeta, parts: &[&[u8]]) -> Result<Appended, StoreError> {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if let Some(l) = &mut self.limit
            && !l.take(len)
        {
            return Ok(Appended::Backpressure);
        }
        let mut flags = 0;
        if meta.vlan_restored {
            flags |= record_flags::VLAN_RESTORED;
        }
        if meta.hardware_timestamp {
            flags |= record_flags::TS_HARDWARE;
        }
        let rec = RecordMeta {
            ts_ns: meta.ts_ns,
            wire_len: meta.wire_len,
            iface: meta.interface,
            flags,
        };
        match self.writer()?.append(&rec, parts) {
            Ok(()) => {
                self.unpublished += len;
                if self.unpublished >= PUBLISH_EVERY_BYTES {
                    self.publish();
                }
                Ok(Appended::Stored)
            }
            Err(AppendError::Backpressure) => Ok(Appended::Backpressure),
            Err(AppendError::TooLarge { max, .. }) => Ok(Appended::TooLarge { max }),
            Err(AppendError::Store(e)) => Err(e),
            // See the module docs: the capture stops, the counters say what was lost.
            Err(AppendError::WriteFailed { errors, last, .. }) => {
                self.last_errno = last.raw_os_error().map_or(0, |e| e as u64);
                self.publish();
                Err(StoreError::WriteFailed {
                    count: errors,
                    last,
                })
            }
        }
    }

    fn poll(&mut self) -> Result<(), StoreError> {
        self.writer()?.poll()?;
        self.publish();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.writer()?.flush()?;
        self.publish();
        Ok(())
    }

    fn enable_ring_blocks(&mut self) -> usize {
        match &mut self.writer {
            Some(Target::Writer(w)) if self.limit.is_none() => {
                w.enable_ring_blocks();
                w.max_ring_block()
            }
            // Lanes copy (their blocks are assembled per thread); a rate limit counts
            // records.
            _ => 0,
        }
    }

    fn store_ring_block(
        &mut self,
        block: &crate::sys::zc::HeldBlock,
    ) -> Result<RingAppend, StoreError> {
        let Some(Target::Writer(w)) = &mut self.writer else {
            return Ok(RingAppend::Refused);
        };
        match crate::sys::zc::store(w, block) {
            Ok(r) => {
                if r == RingAppend::Queued {
                    self.unpublished += block.walk.stored;
                    if self.unpublished >= PUBLISH_EVERY_BYTES {
                        self.publish();
                    }
                }
                Ok(r)
            }
            Err(AppendError::Backpressure) => Ok(RingAppend::Backpressure),
            Err(AppendError::TooLarge { .. }) => Ok(RingAppend::Refused),
            Err(AppendError::Store(e)) => Err(e),
            Err(AppendError::WriteFailed { errors, last, .. }) => {
                self.last_errno = last.raw_os_error().map_or(0, |e| e as u64);
                self.publish();
                Err(StoreError::WriteFailed {
                    count: errors,
                    last,
                })
            }
        }
    }

    fn register_rings(&mut self, rings: &[&crate::sys::packet::RxRing]) -> bool {
        match &mut self.writer {
            Some(Target::Writer(w)) => crate::sys::zc::register_rings(w, rings),
            _ => false,
        }
    }

    fn take_ring_done(&mut self, f: &mut dyn FnMut(u64)) {
        if let Some(Target::Writer(w)) = &mut self.writer {
            w.take_ring_done(|t, _| f(t));
        }
    }

    fn close(&mut self) -> Result<(), StoreError> {
        if let Some(w) = self.writer.take() {
            let pool = w.pool_bytes();
            let last = w.close()?;
            if let Some(p) = &mut self.gauges {
                // Everything is on the disk now: the backlog is empty.
                let mut g = gauges(&last);
                (g.bytes_in_flight, g.blocks_in_flight, g.bytes_buffered) = (0, 0, 0);
                g.pool_bytes = pool;
                p.publish(&g);
            }
            self.final_stats = Some(last);
        }
        Ok(())
    }
}

/// The page's figures from the writer's.
fn gauges(s: &WriterStats) -> WriterGauges {
    WriterGauges {
        updated_ns: 0,
        bytes_written: s.bytes_written,
        packets_written: s.packets_written,
        bytes_in_flight: s.bytes_in_flight,
        blocks_in_flight: s.blocks_in_flight,
        bytes_buffered: s.bytes_buffered,
        pool_bytes: None,
    }
}

/// The page's disk-error group from the writer's counters.
fn disk_errors(s: &WriterStats, last_errno: u64) -> DiskErrorCounts {
    DiskErrorCounts {
        write_errors: s.write_errors,
        lost_packets: s.packets_lost,
        last_errno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{StatsPage, StatsReader};

    fn meta(i: u64) -> PacketMeta {
        PacketMeta {
            ts_ns: 1_000_000_000 + i,
            interface: 0,
            wire_len: 1000,
            hardware_timestamp: false,
            vlan_restored: false,
        }
    }

    #[test]
    fn the_writer_gauges_reach_the_stats_page() {
        let dir = tempfile::tempdir().unwrap();
        let opts = kuroko_ring::StoreOptions {
            budget: 8 * 1024 * 1024 + kuroko_ring::META_RESERVE,
            segment_size: 1024 * 1024,
            chunk_size: 256 * 1024,
            nonblocking: true,
            ..Default::default()
        };
        let w = SegmentWriter::open(dir.path(), &opts).unwrap();
        // As the engine does it: the sink first, then the page.
        let mut sink = StoreSink::new(w).publishing_to(dir.path());
        let _page = StatsPage::create(dir.path(), &[("eth0".into(), 2)]).unwrap();
        let reader = StatsReader::open(dir.path()).unwrap();
        let frame = [0x5au8; 1000];
        let mut stored = 0u64;
        // Fewer bytes than PUBLISH_EVERY_BYTES: nothing is published by appends alone.
        for i in 0..100 {
            if sink.append(&meta(i), &[&frame]).unwrap() == Appended::Stored {
                stored += 1;
            }
        }
        assert_eq!(reader.snapshot().writer, None);
        sink.poll().unwrap();
        let g = reader.snapshot().writer.expect("published on poll");
        assert_eq!(g.packets_written, stored);
        assert!(
            g.bytes_buffered + g.bytes_written > 0,
            "{g:?}: 100 records are buffered or written"
        );
        // Past PUBLISH_EVERY_BYTES, appends publish on their own.
        let before = g.packets_written;
        let mut n = 0;
        while n < 2 * PUBLISH_EVERY_BYTES / 1000 {
            if sink.append(&meta(1000 + n), &[&frame]).unwrap() == Appended::Stored {
                stored += 1;
            } else {
                sink.poll().unwrap();
            }
            n += 1;
        }
        let g = reader.snapshot().writer.unwrap();
        assert!(g.packets_written > before, "{g:?}");
        assert!(g.packets_written <= stored);
        sink.close().unwrap();
        let last = reader.snapshot().writer.unwrap();
        let fin = sink.final_stats.unwrap();
        assert_eq!(last.packets_written, stored);
        assert_eq!(last.bytes_written, fin.bytes_written);
        assert_eq!(last.backlog_bytes(), 0);
        assert_eq!(last.blocks_in_flight, 0);
        // Queue depth + 2 chunks of 256 KiB.
        let pool = last.pool_bytes.unwrap();
        assert!(
            pool >= 3 * 256 * 1024 && pool.is_multiple_of(256 * 1024),
            "{pool}"
        );
        assert_eq!(g.pool_bytes, Some(pool));
    }

    #[test]
    fn rate_limit_refuses_beyond_the_burst() {
        let mut l = RateLimit {
            bytes_per_sec: 1,
            tokens: 1000,
            burst: 1000,
            last_ns: monotonic_ns(),
        };
        assert!(l.take(600));
        assert!(l.take(400));
        assert!(!l.take(10));
    }
}
