//! The segment store as a [`RecordSink`]: `kuroko_ring::SegmentWriter` in non-blocking mode.
//!
//! `append` copies the frame's parts into the store's aligned chunk buffer (the one copy of
//! the capture path) behind a ~20-byte record header; when every buffer is in flight the
//! store answers `Backpressure` and the engine counts the packet under that cause.
//!
//! [`StoreSink::with_rate_limit`] caps the bytes the sink accepts per second (a token bucket
//! refilled from the monotonic clock; no allocation, no syscall beyond the vDSO clock).
//! Packets above the cap are refused as backpressure, exactly as a disk that slow would
//! make the store refuse them. It exists to test and demonstrate loss accounting on
//! machines whose disks are faster than any traffic they can generate, and can also spare
//! a flash disk's endurance.

use kuroko_ring::format::record_flags;
use kuroko_ring::{AppendError, RecordMeta, SegmentWriter, StoreError, WriterStats};

use crate::sink::{Appended, PacketMeta, RecordSink};
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

/// A segment writer feeding on captured frames.
pub struct StoreSink {
    writer: Option<SegmentWriter>,
    limit: Option<RateLimit>,
    /// Counters of the writer when it was closed.
    pub final_stats: Option<WriterStats>,
}

impl StoreSink {
    /// `writer` should be opened with `StoreOptions { nonblocking: true, .. }`.
    pub fn new(writer: SegmentWriter) -> StoreSink {
        StoreSink {
            writer: Some(writer),
            limit: None,
            final_stats: None,
        }
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

    fn writer(&mut self) -> Result<&mut SegmentWriter, StoreError> {
        self.writer.as_mut().ok_or(StoreError::Options {
            message: "the capture's store writer is already closed".into(),
        })
    }
}

impl RecordSink for StoreSink {
    type Error = StoreError;

    fn append(&mut self, meta: &PacketMeta, parts: &[&[u8]]) -> Result<Appended, StoreError> {
        if let Some(l) = &mut self.limit {
            let len: usize = parts.iter().map(|p| p.len()).sum();
            if !l.take(len as u64) {
                return Ok(Appended::Backpressure);
            }
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
            Ok(()) => Ok(Appended::Stored),
            Err(AppendError::Backpressure) => Ok(Appended::Backpressure),
            Err(AppendError::TooLarge { max, .. }) => Ok(Appended::TooLarge { max }),
            Err(AppendError::Store(e)) => Err(e),
        }
    }

    fn poll(&mut self) -> Result<(), StoreError> {
        self.writer()?.poll();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.writer()?.flush();
        Ok(())
    }

    fn close(&mut self) -> Result<(), StoreError> {
        if let Some(w) = self.writer.take() {
            self.final_stats = Some(w.close()?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
