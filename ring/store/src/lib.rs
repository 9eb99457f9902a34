//! `kuroko-ring`: Kuroko's segment store.
//!
//! Every packet that reaches the box goes into a preallocated ring of fixed-size segment
//! files in `DATA/segments/` (format: the `kuroko-ring-format` crate, which documents
//! every byte). This crate writes them (io_uring + O_DIRECT, with clean fallbacks), reads
//! them (read into memory, never mapped, so a disk's media error is damage and not SIGBUS), recovers after a crash, and converts
//! from pcap/pcapng and to pcap. It knows nothing about protocols.
//!
//! # API
//!
//! Writing (one writer per store; a second gets [`StoreError::Locked`]):
//!
//! ```no_run
//! use kuroko_ring::{SegmentWriter, StoreOptions, RecordMeta, AppendError};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let opts = StoreOptions { budget: 2 << 30, segment_size: 64 << 20, nonblocking: true, ..Default::default() };
//! let mut w = SegmentWriter::open("/data".as_ref(), &opts)?;   // creates, locks, recovers
//! let (dst_src, rest): (&[u8], &[u8]) = (&[0; 12], &[0; 50]);
//! let vlan = [0x81, 0x00, 0x00, 0x0a];
//! let meta = RecordMeta { ts_ns: 1, wire_len: 66, iface: 0, flags: 0 };
//! match w.append(&meta, &[dst_src, &vlan, rest]) {   // parts are concatenated
//!     Ok(()) => {}
//!     Err(AppendError::Backpressure) => { /* count a drop */ }
//!     Err(e) => return Err(e.into()),
//! }
//! w.poll();    // reap finished writes (non-blocking); call it from the capture loop
//! w.flush();   // at least once a second: readers see everything appended so far
//! w.sync()?;   // flush + wait + fdatasync (durable)
//! w.close()?;  // clean close; the next writer appends to the open segment in place
//! # Ok(()) }
//! ```
//!
//! - [`SegmentWriter::append`]`(&mut self, &RecordMeta, &[&[u8]]) -> Result<(), AppendError>`:
//!   no allocation, lock or syscall per packet (one io_uring submit per ~1 MiB block).
//!   With `StoreOptions::nonblocking` a full buffer pool returns
//!   [`AppendError::Backpressure`]; otherwise it waits. Opening and sealing a segment
//!   (once per `segment_size`) queue their header writes and the `fdatasync` through
//!   io_uring (synchronous only in the pwrite fallbacks); the next slot is prepared on a
//!   helper thread. Counters reach `writer.state` (`status`) about once a second.
//! - [`SegmentWriter::into_lanes`]`(n)` splits the writer for `n` appending threads
//!   ([`LaneWriter`]: `append`, `poll`, `flush`, `close`; non-blocking; a lock per ~1 MiB
//!   block, never per packet; see `writer::lanes`).
//! - [`SegmentWriter::set_interfaces`] names capture interfaces (id, link type, snaplen,
//!   name) in the segment headers; [`SegmentWriter::stats`] (cumulative counters plus the
//!   live backlog `bytes_in_flight` / `blocks_in_flight` / `bytes_buffered`; no syscall),
//!   [`SegmentWriter::io_info`],
//!   [`SegmentWriter::recovery`], [`SegmentWriter::max_caplen`].
//!
//! Reading (no lock; may run beside the writer; sees the open segment up to its last
//! complete block after [`StoreReader::refresh`]):
//!
//! ```no_run
//! use kuroko_ring::{StoreReader, Position};
//! use std::ops::ControlFlow;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let reader = StoreReader::open("/data".as_ref())?;
//! let saved: Position = "0:0:0".parse()?;            // or Position::ORIGIN
//! let report = reader.scan(saved, |p| {               // p: &PacketView (zero-copy)
//!     let _ = (p.ts_ns, p.iface, p.wire_len, p.flags, p.data, p.pos);
//!     ControlFlow::Continue(())
//! })?;
//! let resume_at = report.next;                        // store it durably
//! let lost = report.lost_segments;                    // > 0: the position was overwritten
//! let lag = reader.lag_bytes(resume_at);              // vs reader.head()
//! # let _ = (lost, lag); Ok(()) }
//! ```
//!
//! - [`StoreReader::segments`] (oldest first, [`SegmentInfo`]: seq, slot, open, packets,
//!   first/last ts…), [`StoreReader::map`] → [`SegmentMap::packets`] /
//!   [`SegmentMap::packets_in`] iterators of [`PacketView`] for per-segment loops,
//!   [`StoreReader::scan_time`]`(from_ns, to_ns, f)` touching only overlapping
//!   segments, chunks and blocks, [`StoreReader::scan_time_cached`] for many ranges in one
//!   pass (a [`TimeScanCache`] keeps the chunks read and which blocks passed their
//!   checksums), [`StoreReader::head`], [`StoreReader::lag_bytes`].
//! - Damage (bad checksum, torn block) is never returned as packets: it comes back as
//!   [`Damage`] entries (segment file, seq, offset, length) and the scan goes on.
//!
//! Files and status:
//! - [`pcap::import`]`(&mut writer, bytes, iface_base, name, progress)`,
//!   [`pcap::PcapReader`] (pcap/pcapng, µs/ns, Ethernet only, truncation reported),
//!   [`pcap::export_pcap`]`(&reader, from_ns, to_ns, filter, out)`.
//! - [`status::store_status`]`(data_dir) -> StoreStatus` (serde-serialisable).
//!
//! # Invariants
//!
//! - The ring never takes more than its budget: `slot_count = (budget - META_RESERVE) /
//!   segment_size`; slot files are created at full size when first used (or all at once
//!   with [`Preallocate::All`]) and never grow.
//! - Retention follows write sequence numbers, never packet timestamps.
//! - A reader never returns bytes from a block whose `seq`, header crc or payload crc does
//!   not match; bytes the disk cannot read are zeroed, so they fail those checks too.
//! - After kill -9 or power loss, [`SegmentWriter::open`] seals segments left open from
//!   their valid blocks (well under a second per segment: about 80 ms for a full 64 MiB one),
//!   so no separate repair tool exists. Everything `sync`ed (and every sealed segment) is
//!   intact.
//!
//! # Must never
//!
//! Depend on protocol crates; allocate, lock or log per packet on the write path; return
//! an unchecked byte to a reader.

#![deny(unsafe_code)]

pub mod crc;
pub mod damage_log;
pub mod disk;
pub mod error;
#[doc(hidden)]
pub mod fault;
pub mod layout;
mod open_read;
pub mod pcap;
pub mod reader;
pub mod scrub;
pub mod segment;
pub mod status;
mod sys;
pub mod writer;

pub use error::{AppendError, StoreError};
pub use layout::{IoPreference, META_RESERVE, Preallocate, RingGeometry, StoreOptions};
pub use reader::{
    Damage, DamageKind, PacketView, Packets, Position, ScanReport, SegmentInfo, SegmentMap,
    StoreReader, TimeScanCache, VerifyReport, WriteErrorSegment,
};
pub use status::{SegmentDamage, StoreStatus, WriterStateHealth, segment_damage, store_status};
pub use writer::{
    IoInfo, LaneStats, LaneWriter, RecordMeta, RecoveryReport, RingAppend, RingBlockMeta,
    SegmentWriter, WriterStats, WriterTimes,
};

/// The on-disk format crate, re-exported for users of the store.
pub use kuroko_ring_format as format;

/// Filesystem size in bytes of the file system holding `path` (or its nearest existing
/// ancestor), for budgets given as a percentage.
pub fn filesystem_size(path: &std::path::Path) -> std::io::Result<u64> {
    let mut p = path;
    loop {
        if p.exists() {
            return sys::filesystem_size(p);
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => return sys::filesystem_size(std::path::Path::new(".")),
        }
    }
}
