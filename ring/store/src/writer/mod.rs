//! The segment writer: packets in, sealed segments out.
//!
//! One writer per store (an flock on `segments/.lock`). It owns `queue_depth + 2` chunk
//! buffers (4 KiB aligned, registered with io_uring). Records are copied into the current
//! chunk's buffer; a full block (or a `flush`) is closed (header, crc32c) and its bytes are
//! queued as one O_DIRECT `WRITE_FIXED`. A buffer goes back to the pool when its chunk is
//! complete and its writes finished. A full segment is sealed (its writes finish, then an
//! `fdatasync`, then the SEALED header with the time index) and the writer moves to the
//! next slot, overwriting the oldest segment once the ring is full. With io_uring the seal
//! runs in the background (`Fsync` and the header write are queued as their predecessors
//! complete) while the next segment fills; with the pwrite fallback it is synchronous.
//!
//! Hot path (`append`): no allocation, no lock, no formatting, no syscall except the
//! io_uring submit of a closed block (one per ~1 MiB). Opening a segment (once per
//! segment) queues its OPEN header through io_uring like a block; the slot it will use
//! next is prepared on a helper thread meanwhile (created while the ring is still growing,
//! its page cache dropped before it is overwritten), so `append` does not stall on either.
//! About once a second (checked per chunk and on `flush`, with a vDSO clock read) the
//! counters are republished to `writer.state` for `status`.
//!
//! Fallbacks, each recorded in `writer.state` for `status`: io_uring disabled or failing →
//! synchronous `pwrite`; O_DIRECT refused (tmpfs) → `pwrite` through the page cache;
//! buffers not registrable (RLIMIT_MEMLOCK) → plain io_uring `WRITE`.
//!
//! The kernel reads a closed block's bytes while the writer fills the rest of the same
//! buffer: the writer never touches bytes of a block once it is queued (blocks only grow
//! forward), which is what keeps `AlignedBuf::as_mut_slice` sound next to in-flight I/O.

use crate::error::{AppendError, StoreError};
use crate::fault::Faults;
use crate::layout::{self, IoPreference, Paths, Preallocate, RingGeometry, StoreOptions, now_ns};
use crate::segment::{self, SlotProbe, SlotState};
use crate::sys as os;
use crate::sys::{AlignedBuf, Uring};
use kuroko_ring_format::{
    self as fmt, BLOCK_HEADER_LEN, BlockHeader, ChunkIndexEntry, IfaceEntry, RecordHeader,
    SegmentHeader, UnitEntry, WriterState, align_up, fallback, io_mode, record_len,
};
use std::fs::File;
use std::sync::Arc;

mod lanes;
mod ring;
mod sys;
pub use lanes::{LaneStats, LaneWriter};
pub use ring::{RingAppend, RingBlockMeta};
use std::io;
use zerocopy::IntoBytes;
use zerocopy::little_endian::{U16, U32, U64};

/// What the caller knows about one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordMeta {
    /// ns since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire (≥ the bytes stored).
    pub wire_len: u32,
    pub iface: u16,
    /// `kuroko_ring_format::record_flags`.
    pub flags: u16,
}

/// Counters of one writer (cumulative over the store's life when read from `status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Bytes handed to the disk (blocks, headers not counted).
    pub bytes_written: u64,
    /// Packets on the disk (or queued to it): appended, less those lost to write errors.
    pub packets_written: u64,
    /// Writes and fdatasyncs the disk failed.
    pub write_errors: u64,
    /// Packets lost to disk write errors: those in block writes that failed, and those
    /// `append` refused when it reported a failure ([`AppendError::WriteFailed`]).
    pub packets_lost: u64,
    /// Packets refused because every buffer was in flight (non-blocking mode).
    pub backpressure: u64,
    /// Packets refused because they were too large for a record.
    pub rejected: u64,
    pub segments_sealed: u64,
    /// Times the writer reached its next slot before the helper thread had prepared it
    /// (created it, or extended a used-up sequence reservation) and had to wait for it, or
    /// prepared it itself. Slots are prepared a whole segment ahead and creating one is
    /// metadata only (fallocate), so this stays 0 unless the disk stalls.
    pub prep_waits: u64,
    /// Live backlog (not cumulative): bytes of blocks queued to the disk whose writes have
    /// not completed yet. Always 0 with the synchronous fallbacks (they write in place).
    pub bytes_in_flight: u64,
    /// Live backlog: block writes queued to the disk and not completed yet.
    pub blocks_in_flight: u64,
    /// Live backlog: bytes of records appended but not yet queued to the disk (the open
    /// block; queued when it fills, on `flush`, or at the next chunk).
    pub bytes_buffered: u64,
}

/// Where the writer's thread spent its time outside `append`'s copy (for benchmarks and
/// diagnosis; each is measured once per chunk or segment, never per packet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterTimes {
    /// Blocked waiting for a write to complete (every buffer in flight, or a seal slot).
    pub wait_ns: u64,
    /// Queueing block writes (`io_uring_enter`, or the whole `pwrite` in the fallbacks).
    pub submit_ns: u64,
    /// Opening segments (slot creation when lazy, OPEN header write).
    pub open_ns: u64,
    /// Part of `open_ns` spent waiting for the slot's preparation (see
    /// [`WriterStats::prep_waits`]).
    pub prep_wait_ns: u64,
}

/// How this writer reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoInfo {
    /// `kuroko_ring_format::io_mode`.
    pub mode: u16,
    /// `kuroko_ring_format::fallback` bits.
    pub fallback: u16,
}

struct Cur {
    buf: usize,
    chunk: u32,
    chunk_start: u64,
    chunk_len: usize,
    block_start: usize,
    fill: usize,
    records: u32,
    first_ts: u64,
    last_ts: u64,
    /// The current block's unit table (see `fmt::BLOCK_FLAG_UNITS`): entries
    /// `..unit_next` are filled (crcs at `close_block`).
    unit_shift: u8,
    unit_next: usize,
    units: [UnitEntry; fmt::MAX_UNITS],
}

impl Cur {
    /// Bytes from the current block's payload start to `fill_end` plus the unit table
    /// those records need: what must fit in the chunk.
    fn with_table(&self, fill_end: usize) -> usize {
        let rl = fill_end - self.block_start - BLOCK_HEADER_LEN;
        fill_end + fmt::units_for(rl, self.unit_shift) * fmt::UNIT_ENTRY_LEN
    }

    /// Notes a record starting at payload offset `off` with ordinal `ordinal`.
    fn note_record(&mut self, off: usize, ordinal: u32) {
        let k = off >> self.unit_shift;
        if k >= self.unit_next {
            for e in &mut self.units[self.unit_next..k] {
                *e = NO_RECORD_UNIT;
            }
            self.units[k] = UnitEntry {
                crc: U32::new(0),
                first_record: U32::new(off as u32),
                first_ordinal: U32::new(ordinal),
            };
            self.unit_next = k + 1;
        }
    }
}

const NO_RECORD_UNIT: UnitEntry = UnitEntry {
    crc: U32::new(0),
    first_record: U32::new(fmt::NO_RECORD),
    first_ordinal: U32::new(0),
};

struct OpenSeg {
    slot: u32,
    seq: u64,
    file: File,
    next_block_no: u32,
    index: Vec<ChunkIndexEntry>,
    packets: u64,
    record_bytes: u64,
    first_ts: u64,
    last_ts: u64,
    used_end: u64,
    opened_wall: u64,
    flags: u16,
    damaged: u32,
    ifaces: [IfaceEntry; fmt::MAX_IFACES],
    iface_count: u16,
    /// Block writes of this segment still in flight.
    inflight: u32,
}

impl OpenSeg {
    /// A block of `packets` records did not reach the disk.
    fn mark_failed_write(&mut self, packets: u32) {
        self.flags |= fmt::SEG_FLAG_WRITE_ERROR;
        if packets > 0 {
            self.damaged += 1;
            self.packets = self.packets.saturating_sub(packets.into());
        }
    }
}

/// A full segment whose seal runs in the background (io_uring mode): its writes finish,
/// then an fdatasync, then the SEALED header write. The writer meanwhile fills the next
/// segment; a crash before the header lands leaves the segment OPEN, which recovery seals
/// from its blocks.
struct Sealing {
    seg: OpenSeg,
    stage: SealStage,
}

/// What a background seal waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SealStage {
    Writes,
    Syncing,
    Header,
}

/// Background seals at most in progress at once (each needs a header buffer).
const MAX_SEALING: usize = 2;

/// One operation handed to the kernel and not completed yet. Its index in
/// [`InFlight`] is the operation's io_uring `user_data`, so a completion finds exactly what
/// it finishes, and nothing about it lives only in a bit-packed tag.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// Segment `seq`'s OPEN header (`open_buf`; the seal waits for it like a block).
    Open { seq: u64, len: u32 },
    /// A block of `packets` records of segment `seq`: `len` bytes of chunk buffer `buf`,
    /// written at `off`.
    Block {
        seq: u64,
        buf: u16,
        len: u32,
        packets: u32,
        off: u64,
    },
    /// The fdatasync of background seal `seal`.
    Sync { seal: u8 },
    /// The SEALED header of background seal `seal` (`seal_bufs[seal]`).
    Header { seal: u8, len: u32 },
    /// The ring bytes of a ring block of `packets` frames of segment `seq` (its header page
    /// is an `Op::Block` of 0 packets): `len` bytes of caller memory written at `off`;
    /// `token` goes back to the caller at completion.
    RingData {
        seq: u64,
        len: u32,
        packets: u32,
        off: u64,
        token: u64,
    },
}

/// The operations the kernel holds, by `user_data`. An entry is added before the
/// operation is queued and removed only by its completion (or when queueing it failed),
/// so no error path can forget an operation whose buffer the kernel still reads.
struct InFlight {
    ops: Vec<Option<Op>>,
    free: Vec<u32>,
}

impl InFlight {
    fn with_capacity(n: usize) -> InFlight {
        InFlight {
            ops: vec![None; n],
            free: (0..n as u32).rev().collect(),
        }
    }
    /// Reserves a `user_data` for `op` (grows only past the high-water mark).
    fn insert(&mut self, op: Op) -> u64 {
        match self.free.pop() {
            Some(i) => {
                self.ops[i as usize] = Some(op);
                u64::from(i)
            }
            None => {
                self.ops.push(Some(op));
                (self.ops.len() - 1) as u64
            }
        }
    }
    /// The operation `user_data` stood for; `None` for an unknown or finished one.
    fn remove(&mut self, user_data: u64) -> Option<Op> {
        let op = self.ops.get_mut(user_data as usize)?.take()?;
        self.free.push(user_data as u32);
        Some(op)
    }
}

/// A generation whose OPEN header and first block did not reach the disk before a power
/// cut is invisible to recovery, yet some of its later blocks may have; its `seq` must never
/// be used again, or a scan of the new generation could walk into those stale blocks. So
/// the writer uses a `seq` only once it is below the reservation recorded durably in
/// `store.meta`, which it extends by this many numbers at a time (on the helper thread,
/// ahead of need), and a new writer starts at the reservation.
const SEQ_BATCH: u64 = 64;

/// Stores made before the reservation existed: numbers skipped after the newest visible
/// one (at most the open segment and `MAX_SEALING` being sealed can be invisible, since a
/// seal's fdatasync makes the first block durable).
const SEQ_GAP: u64 = 1 + MAX_SEALING as u64;

/// How often a running writer publishes its counters to `writer.state` (for `status`).
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

enum Io {
    Uring(Box<Uring>),
    Sync,
}

/// Test seam for power-cut tests: when a writer is opened with [`SegmentWriter::open_traced`]
/// it logs every write and fdatasync it queues, with its bytes, and every completion, in
/// order. Production writers carry `None` (checked once per block write, never per packet).
#[doc(hidden)]
#[derive(Clone, Default, Debug)]
pub struct IoTrace(pub std::sync::Arc<std::sync::Mutex<TraceLog>>);

#[doc(hidden)]
#[derive(Default, Debug)]
pub struct TraceLog {
    pub ops: Vec<TraceOp>,
    next_id: u64,
    pending: std::collections::HashMap<u64, std::collections::VecDeque<u64>>,
}

#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceOp {
    /// A write of `data` to slot file `slot` at `off` was queued.
    Write {
        id: u64,
        slot: u32,
        off: u64,
        data: Vec<u8>,
    },
    /// An fdatasync of slot file `slot` was queued.
    Sync { id: u64, slot: u32 },
    /// Operation `id` completed.
    Done { id: u64 },
    /// The sequence-number reservation in `store.meta` is now durably this.
    Reserve(u64),
    /// A marker the test adds (e.g. "`sync` returned after packet n").
    Mark(u64),
}

impl IoTrace {
    fn log(&self, op: impl FnOnce(u64) -> TraceOp, user_data: Option<u64>) {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let id = l.next_id;
        l.next_id += 1;
        let op = op(id);
        l.ops.push(op);
        match user_data {
            Some(ud) => l.pending.entry(ud).or_default().push_back(id),
            None => l.ops.push(TraceOp::Done { id }),
        }
    }
    fn write(&self, slot: u32, off: u64, data: &[u8], user_data: Option<u64>) {
        self.log(
            |id| TraceOp::Write {
                id,
                slot,
                off,
                data: data.to_vec(),
            },
            user_data,
        );
    }
    fn sync(&self, slot: u32, user_data: Option<u64>) {
        self.log(|id| TraceOp::Sync { id, slot }, user_data);
    }
    fn done(&self, user_data: u64) {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = l.pending.get_mut(&user_data).and_then(|q| q.pop_front()) {
            l.ops.push(TraceOp::Done { id });
        }
    }
    /// Adds a marker.
    pub fn mark(&self, v: u64) {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        l.ops.push(TraceOp::Mark(v));
    }
}

/// Synchronous write (the fallbacks, headers at open/close/recovery), traced.
fn pwrite_traced(
    (trace, faults): (&Option<IoTrace>, &Option<Arc<Faults>>),
    slot: u32,
    file: &File,
    buf: &[u8],
    off: u64,
) -> io::Result<()> {
    let r = match faults.as_ref().and_then(|f| f.write()) {
        Some(e) => Err(e),
        None => os::pwrite_all(file, buf, off),
    };
    if let Some(t) = trace
        && r.is_ok()
    {
        t.write(slot, off, buf, None);
    }
    r
}

/// Synchronous fdatasync, traced.
fn datasync_traced(
    (trace, faults): (&Option<IoTrace>, &Option<Arc<Faults>>),
    slot: u32,
    file: &File,
) -> io::Result<()> {
    let r = match faults.as_ref().and_then(|f| f.sync()) {
        Some(e) => Err(e),
        None => os::datasync(file),
    };
    if let Some(t) = trace
        && r.is_ok()
    {
        t.sync(slot, None);
    }
    r
}

/// A slot prepared in the background for the next segment (created when the ring is still
/// growing, its page cache dropped when it is overwritten), and the sequence-number
/// reservation it extended, if it did.
type Prep = (
    u32,
    std::thread::JoinHandle<Result<Option<u64>, StoreError>>,
);

/// Appends packets to the store. See the module docs.
pub struct SegmentWriter {
    // Field order matters: `io` (the ring) is dropped before `bufs`.
    io: Io,
    bufs: Vec<AlignedBuf>,
    inflight: Vec<u32>,
    current: Vec<bool>,
    free: Vec<u16>,
    header_buf: AlignedBuf,
    /// The OPEN header of the newest segment, queued through io_uring.
    open_buf: AlignedBuf,
    open_busy: bool,
    seal_bufs: Vec<AlignedBuf>,
    sealing: Vec<Option<Sealing>>,
    completions: Vec<os::Completion>,
    /// Every operation the kernel holds (see [`InFlight`]).
    ops: InFlight,
    /// A write failure not reported to the caller of `append` yet.
    unreported: Option<io::Error>,
    paths: Paths,
    ring: RingGeometry,
    direct: bool,
    info: IoInfo,
    nonblocking: bool,
    cur: Option<Cur>,
    seg: Option<OpenSeg>,
    next_chunk: u32,
    resume_at: usize,
    next_slot: u32,
    next_seq: u64,
    ifaces: [IfaceEntry; fmt::MAX_IFACES],
    iface_count: u16,
    stats: WriterStats,
    times: WriterTimes,
    base: WriterStats,
    started_wall: u64,
    last_error: Option<io::Error>,
    max_caplen: u32,
    closed: bool,
    recovery: RecoveryReport,
    trace: Option<IoTrace>,
    /// Test seam: injected disk faults (see `fault`); `None` in production.
    faults: Option<Arc<Faults>>,
    prep: Option<Prep>,
    /// Sequence numbers below this are durably reserved (`store.meta`).
    seq_reserved: u64,
    last_publish: std::time::Instant,
    /// Split into lanes: segments opened from now on carry `SEG_FLAG_LANES`.
    lanes: bool,
    /// Ring blocks accepted: segments opened from now on carry `SEG_FLAG_RING`.
    ring_blocks: bool,
    /// Tokens of ring blocks whose writes completed (true) or failed (false), for the
    /// caller to take ([`SegmentWriter::take_ring_done`]).
    ring_done: Vec<(u64, bool)>,
    /// Caller memory registered as fixed buffers (`register_ring_memory`): (start, length,
    /// buffer index).
    ring_regions: Vec<(usize, usize, u16)>,
    _lock: File,
}

/// What recovery found and did when the writer opened the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Open segments that were sealed by recovery (their writer did not close cleanly).
    pub sealed_slots: Vec<u32>,
    /// Blocks with a bad checksum found in those segments.
    pub damaged_blocks: u32,
    /// The open segment was closed cleanly and is appended to in place.
    pub resumed_in_place: bool,
}

impl SegmentWriter {
    /// Opens (creating if needed) the store in data directory `data` for writing: takes the
    /// writer lock, recovers after a crash, and sets up I/O.
    pub fn open(data: &std::path::Path, opts: &StoreOptions) -> Result<SegmentWriter, StoreError> {
        Self::open_inner(data, opts, None)
    }

    /// [`SegmentWriter::open`] with every write and fdatasync logged to `trace` (power-cut
    /// tests). Not for production use.
    #[doc(hidden)]
    pub fn open_traced(
        data: &std::path::Path,
        opts: &StoreOptions,
        trace: IoTrace,
    ) -> Result<SegmentWriter, StoreError> {
        Self::open_inner(data, opts, Some(trace))
    }

    fn open_inner(
        data: &std::path::Path,
        opts: &StoreOptions,
        trace: Option<IoTrace>,
    ) -> Result<SegmentWriter, StoreError> {
        let (paths, ring) = layout::create_or_open(data, opts)?;
        let lock = layout::lock_writer(&paths)?;
        if opts.preallocate == Preallocate::All {
            layout::format_missing_slots(&paths, &ring)?;
        }
        let g = ring.geometry;
        let nbufs = (opts.queue_depth.clamp(1, 64) + 2) as usize;
        let bufs: Vec<AlignedBuf> = (0..nbufs)
            .map(|_| AlignedBuf::new(g.chunk_size as usize))
            .collect();

        // Decide how to reach the disk.
        let mut fb = 0u16;
        let want_direct = opts.io != IoPreference::Buffered;
        let direct = want_direct && probe_direct(&paths);
        if !want_direct {
            fb |= fallback::FORCED;
        } else if !direct {
            fb |= fallback::DIRECT_REFUSED;
        }
        let io = if opts.io == IoPreference::Auto && direct {
            match os::uring_allowed().then(|| Uring::new((nbufs * 4) as u32, &bufs)) {
                Some(Ok(u)) => {
                    if !u.buffers_registered() {
                        fb |= fallback::BUFFERS_NOT_REGISTERED;
                    }
                    Io::Uring(Box::new(u))
                }
                _ => {
                    fb |= fallback::URING_UNAVAILABLE;
                    Io::Sync
                }
            }
        } else {
            if opts.io != IoPreference::Auto {
                fb |= fallback::FORCED;
            }
            Io::Sync
        };
        let mode = match (&io, direct) {
            (Io::Uring(_), _) => io_mode::URING_DIRECT,
            (Io::Sync, true) => io_mode::PWRITE_DIRECT,
            (Io::Sync, false) => io_mode::PWRITE_BUFFERED,
        };
        let base = layout::read_writer_state(&paths)
            .map(|s| WriterStats {
                bytes_written: s.bytes_written.get(),
                packets_written: s.packets_written.get(),
                write_errors: s.write_errors.get(),
                packets_lost: s.packets_lost.get(),
                backpressure: s.backpressure.get(),
                rejected: s.rejected.get(),
                ..Default::default()
            })
            .unwrap_or_default();
        let faults = crate::fault::lookup(data);
        let mut io = io;
        if let Io::Uring(u) = &mut io {
            u.faults = faults.clone();
        }
        let mut w = SegmentWriter {
            io,
            inflight: vec![0; nbufs],
            current: vec![false; nbufs],
            free: (0..nbufs as u16).rev().collect(),
            bufs,
            header_buf: AlignedBuf::new(g.region_len as usize),
            open_buf: AlignedBuf::new(g.region_len as usize),
            open_busy: false,
            seal_bufs: (0..MAX_SEALING)
                .map(|_| AlignedBuf::new(g.region_len as usize))
                .collect(),
            sealing: (0..MAX_SEALING).map(|_| None).collect(),
            completions: Vec::with_capacity(nbufs * 8 + 64),
            ops: InFlight::with_capacity(nbufs * 8 + 2 * MAX_SEALING + 2),
            unreported: None,
            paths,
            ring,
            direct,
            info: IoInfo { mode, fallback: fb },
            nonblocking: opts.nonblocking,
            cur: None,
            seg: None,
            next_chunk: 0,
            resume_at: 0,
            next_slot: 0,
            next_seq: 1,
            ifaces: [IfaceEntry::default(); fmt::MAX_IFACES],
            iface_count: 0,
            stats: WriterStats::default(),
            times: WriterTimes::default(),
            base,
            started_wall: now_ns(),
            last_error: None,
            max_caplen: g.max_caplen(),
            closed: false,
            recovery: RecoveryReport::default(),
            trace,
            faults,
            prep: None,
            seq_reserved: 0,
            last_publish: std::time::Instant::now(),
            lanes: false,
            ring_blocks: false,
            ring_done: Vec::with_capacity(256),
            ring_regions: Vec::new(),
            _lock: lock,
        };
        w.recovery = w.recover()?;
        let reserved = layout::read_seq_reserved(&w.paths)?;
        w.next_seq = if reserved == 0 {
            w.next_seq + SEQ_GAP
        } else {
            w.next_seq.max(reserved)
        };
        w.reserve_seqs(w.next_seq + SEQ_BATCH)?;
        // The first slot is made here, before anything is appended, so no append waits for
        // it (each later one is prepared while the previous segment fills).
        let first = w.paths.slot(w.next_slot);
        if w.seg.is_none() && !first.exists() {
            layout::format_slot(&w.paths, &w.ring, w.next_slot)?;
        }
        // `writer.state` names this writer from now on, not the last one's clean close: a
        // writer killed (or whose disk fails) before its first publication is then seen as
        // not closed, by `status` and by the next writer's recovery (which waits for
        // in-flight writes to settle).
        w.write_state();
        Ok(w)
    }

    /// The ring's geometry (from `store.meta`, which wins over the options of later opens).
    pub fn ring(&self) -> &RingGeometry {
        &self.ring
    }

    pub fn io_info(&self) -> IoInfo {
        self.info
    }

    /// Counters of this writer since it was opened, plus its live backlog
    /// (`bytes_in_flight`, `blocks_in_flight`, `bytes_buffered`). Cheap: no syscall, no
    /// allocation (the capture thread calls it once per ring block).
    pub fn stats(&self) -> WriterStats {
        let mut s = self.stats;
        s.bytes_buffered = match &self.cur {
            Some(c) if c.records > 0 => (c.fill - c.block_start - BLOCK_HEADER_LEN) as u64,
            _ => 0,
        };
        s
    }

    /// Where the writer's time went (see [`WriterTimes`]).
    pub fn times(&self) -> WriterTimes {
        self.times
    }

    /// Largest packet (`parts` summed) one record can hold.
    pub fn max_caplen(&self) -> u32 {
        self.max_caplen
    }

    /// Bytes of the aligned buffers appends are copied into (queue depth + 2 chunks): the
    /// most the writer can hold that is not on the disk yet.
    pub fn buffer_pool_bytes(&self) -> u64 {
        self.bufs.len() as u64 * self.ring.geometry.chunk_size
    }

    /// The capture interfaces named so far (see [`SegmentWriter::set_interfaces`]).
    pub fn interfaces(&self) -> &[IfaceEntry] {
        &self.ifaces[..usize::from(self.iface_count).min(fmt::MAX_IFACES)]
    }

    /// Names the capture interfaces (recorded in every segment header sealed from now on).
    /// At most `MAX_IFACES`; more are ignored.
    pub fn set_interfaces(&mut self, ifaces: &[IfaceEntry]) {
        let n = ifaces.len().min(fmt::MAX_IFACES);
        self.ifaces[..n].copy_from_slice(&ifaces[..n]);
        self.iface_count = n as u16;
        if let Some(seg) = &mut self.seg {
            seg.ifaces = self.ifaces;
            seg.iface_count = self.iface_count;
        }
    }

    /// What recovery found when this writer opened the store.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Appends one packet whose bytes are the concatenation of `parts`.
    ///
    /// Never allocates. In blocking mode it waits for a buffer when all are in flight; in
    /// non-blocking mode it returns [`AppendError::Backpressure`] instead (the packet is not
    /// stored and the caller counts it).
    ///
    /// A write or fdatasync the disk failed since the last call is reported here, once:
    /// [`AppendError::WriteFailed`], with this packet refused (and counted lost, like the
    /// packets of the failed writes). The writer stays usable: the caller decides whether
    /// to go on (a disk that recovers) or stop.
    pub fn append(&mut self, meta: &RecordMeta, parts: &[&[u8]]) -> Result<(), AppendError> {
        if let Some(last) = self.unreported.take() {
            self.stats.packets_lost += 1;
            return Err(AppendError::WriteFailed {
                errors: self.stats.write_errors,
                lost: self.stats.packets_lost,
                last,
            });
        }
        let cap: usize = parts.iter().map(|p| p.len()).sum();
        if cap > self.max_caplen as usize {
            self.stats.rejected += 1;
            return Err(AppendError::TooLarge {
                len: cap,
                max: self.max_caplen,
            });
        }
        let need = record_len(cap as u32);
        loop {
            let Some(c) = &self.cur else {
                self.start_chunk()?;
                continue;
            };
            if c.with_table(c.fill + need) <= c.chunk_len {
                break;
            }
            self.close_block();
            let c = self.cur.as_ref().expect("current chunk");
            if c.with_table(c.block_start + BLOCK_HEADER_LEN + need) > c.chunk_len {
                self.finish_chunk()?;
            }
        }
        let c = self.cur.as_mut().expect("current chunk");
        c.note_record(c.fill - c.block_start - BLOCK_HEADER_LEN, c.records);
        let buf = self.bufs[c.buf].as_mut_slice();
        c.fill = put_record(buf, c.fill, need, cap, meta, parts);
        widen_span(&mut c.first_ts, &mut c.last_ts, c.records, meta.ts_ns);
        c.records += 1;
        self.stats.packets_written += 1;
        Ok(())
    }

    /// Reaps finished writes without waiting (call it regularly from a busy loop), and
    /// republishes the counters for `status` once a second: an idle writer's `writer.state`
    /// stays current, so a state that stops changing while its writer runs means the disk
    /// refuses it (`status` calls it stale).
    pub fn poll(&mut self) {
        self.maybe_publish();
        let Io::Uring(u) = &mut self.io else {
            return;
        };
        let done = &mut self.completions;
        u.reap(|c| done.push(c));
        self.process_completions();
    }

    fn process_completions(&mut self) {
        let mut i = 0;
        while i < self.completions.len() {
            let c = self.completions[i];
            self.complete(c);
            i += 1;
        }
        self.completions.clear();
        self.advance_sealing();
    }

    /// Counts a failed write or fdatasync that lost `packets` packets, and keeps the error
    /// for the next `append` (reported once) and for `sync`/`close`.
    fn io_failed(&mut self, e: io::Error, packets: u32) {
        self.stats.write_errors += 1;
        self.stats.packets_lost += u64::from(packets);
        self.stats.packets_written = self.stats.packets_written.saturating_sub(packets.into());
        let copy = match e.raw_os_error() {
            Some(n) => io::Error::from_raw_os_error(n),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        self.unreported = Some(copy);
        self.last_error = Some(e);
    }

    /// The completion state machine. Per operation:
    /// - `Open`, `Block`: the segment's writes in flight go down by one (a failure marks the
    ///   segment and loses the block's packets); a block's buffer is released when its last
    ///   write completed and the writer moved on to another chunk.
    /// - a background seal goes `Writes` (its writes all completed: `advance_sealing`
    ///   queues the fdatasync) → `Syncing` (`Sync` completed: queue the SEALED header,
    ///   marked when the fdatasync failed) → `Header` (`Header` completed: done).
    fn complete(&mut self, (ud, res): os::Completion) {
        let Some(op) = self.ops.remove(ud) else {
            return;
        };
        if let Some(t) = &self.trace {
            t.done(ud);
        }
        let injected = self.faults.as_ref().and_then(|f| match op {
            Op::Sync { .. } => f.sync(),
            _ => f.write(),
        });
        if injected.is_some()
            && let Op::Block { seq, off, len, .. } | Op::RingData { seq, off, len, .. } = op
        {
            self.clobber_injected(seq, off, len);
        }
        let res = injected.map_or(res, |e| -e.raw_os_error().unwrap_or(libc::EIO));
        let expected = match op {
            Op::Open { len, .. }
            | Op::Block { len, .. }
            | Op::Header { len, .. }
            | Op::RingData { len, .. } => len as i32,
            Op::Sync { .. } => 0,
        };
        let error = if res < 0 {
            Some(io::Error::from_raw_os_error(-res))
        } else if res != expected {
            Some(io::Error::new(io::ErrorKind::WriteZero, "short write"))
        } else {
            None
        };
        let failed = error.is_some();
        let mut lost = 0;
        match op {
            Op::Open { seq, .. } => {
                self.open_busy = false;
                self.seg_write_done(seq, failed, 0);
            }
            Op::Block {
                seq,
                buf,
                len,
                packets,
                ..
            } => {
                self.stats.blocks_in_flight = self.stats.blocks_in_flight.saturating_sub(1);
                self.stats.bytes_in_flight = self.stats.bytes_in_flight.saturating_sub(len.into());
                self.inflight[buf as usize] -= 1;
                self.release_if_idle(buf as usize);
                self.seg_write_done(seq, failed, packets);
                lost = if failed { packets } else { 0 };
            }
            Op::RingData {
                seq,
                len,
                packets,
                token,
                ..
            } => {
                self.stats.bytes_in_flight = self.stats.bytes_in_flight.saturating_sub(len.into());
                self.seg_write_done(seq, failed, packets);
                self.ring_done.push((token, !failed));
                lost = if failed { packets } else { 0 };
            }
            Op::Sync { seal } => {
                if let Some(s) = self.sealing[seal as usize].as_mut() {
                    if failed {
                        s.seg.flags |= fmt::SEG_FLAG_WRITE_ERROR;
                    }
                    s.stage = SealStage::Header;
                }
                self.queue_seal_header(seal as usize);
            }
            Op::Header { seal, .. } => {
                // A failed header leaves the segment OPEN on the disk: recovery seals it
                // from its blocks.
                self.sealing[seal as usize] = None;
                if !failed {
                    self.stats.segments_sealed += 1;
                }
            }
        }
        if let Some(e) = error {
            self.io_failed(e, lost);
        }
    }

    /// Test seam: a write the fault plan failed did reach the disk; zero it there, as a
    /// write that really failed leaves no valid block.
    #[cold]
    fn clobber_injected(&self, seq: u64, off: u64, len: u32) {
        let file = match self.seg.as_ref().filter(|s| s.seq == seq) {
            Some(s) => &s.file,
            None => match self.sealing.iter().flatten().find(|s| s.seg.seq == seq) {
                Some(s) => &s.seg.file,
                None => return,
            },
        };
        let zeros = AlignedBuf::new(len as usize);
        let _ = os::pwrite_all(file, zeros.as_slice(), off);
    }

    /// Puts buffer `b` back on the free list if no write of it is in flight and it is not
    /// the current chunk's. Never twice: the free list holds each buffer at most once.
    fn release_if_idle(&mut self, b: usize) {
        if self.inflight[b] == 0 && !self.current[b] && !self.free.contains(&(b as u16)) {
            self.free.push(b as u16);
        }
    }

    /// One write of segment `seq` (open or being sealed) completed; a failed one marks the
    /// segment: a damaged block whose `packets` are not in the segment's count.
    fn seg_write_done(&mut self, seq: u64, failed: bool, packets: u32) {
        let seg = match self.seg.as_mut().filter(|s| s.seq == seq) {
            Some(seg) => Some(seg),
            None => self
                .sealing
                .iter_mut()
                .flatten()
                .find(|s| s.seg.seq == seq)
                .map(|s| &mut s.seg),
        };
        if let Some(seg) = seg {
            seg.inflight = seg.inflight.saturating_sub(1);
            if failed {
                seg.mark_failed_write(packets);
            }
        }
    }

    /// Starts the fdatasync of background seals whose writes all finished.
    fn advance_sealing(&mut self) {
        for i in 0..self.sealing.len() {
            let ready = matches!(&self.sealing[i], Some(s) if s.stage == SealStage::Writes && s.seg.inflight == 0);
            if !ready {
                continue;
            }
            let Io::Uring(u) = &mut self.io else { return };
            let s = self.sealing[i].as_mut().expect("checked");
            s.stage = SealStage::Syncing;
            let ud = self.ops.insert(Op::Sync { seal: i as u8 });
            match u.datasync(&s.seg.file, ud) {
                Ok(()) => {
                    if let Some(t) = &self.trace {
                        t.sync(s.seg.slot, Some(ud));
                    }
                }
                Err(e) => {
                    // Not queued: no seal; the segment stays OPEN on the disk and
                    // recovery seals it from its blocks.
                    self.ops.remove(ud);
                    self.sealing[i] = None;
                    self.io_failed(e, 0);
                }
            }
        }
    }

    /// Queues the SEALED header of background seal `i` (its fdatasync completed).
    fn queue_seal_header(&mut self, i: usize) {
        let g = self.ring.geometry;
        let Some(s) = self.sealing[i].as_mut() else {
            return;
        };
        fill_header(
            self.seal_bufs[i].as_mut_slice(),
            &g,
            &s.seg,
            fmt::STATE_SEALED,
            0,
            &(s.seg.ifaces, s.seg.iface_count),
        );
        self.submit_seal_header(i);
    }

    /// Closes the partly filled block and queues its write, so readers see the packets
    /// appended so far once it lands (typically within milliseconds). Does not wait.
    pub fn flush(&mut self) {
        self.close_block();
        self.poll();
        self.maybe_publish();
    }

    /// Publishes the counters for `status` if the last publication is a second old (a clock
    /// read from the vDSO otherwise: no syscall).
    fn maybe_publish(&mut self) {
        if self.last_publish.elapsed() >= PUBLISH_EVERY {
            self.write_state();
        }
    }

    /// `flush`, then waits until every queued write finished and calls fdatasync: every
    /// packet appended so far survives a crash or power cut once this returns.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.flush();
        self.wait_idle()?;
        if let Some(seg) = &mut self.seg
            && let Err(e) = datasync_traced((&self.trace, &self.faults), seg.slot, &seg.file)
        {
            seg.flags |= fmt::SEG_FLAG_WRITE_ERROR;
            let err = StoreError::io(&self.paths.slot(seg.slot), e);
            self.stats.write_errors += 1;
            self.write_state();
            return Err(err);
        }
        self.write_state();
        self.check_errors()
    }

    /// Flushes, waits for every write, and leaves the open segment marked as cleanly closed
    /// (the next writer appends to it in place). Returns the counters of this writer.
    ///
    /// A failed fdatasync or header write here is a failed write like any other: counted
    /// (`write_errors`, in `writer.state` when the disk takes it), the segment marked
    /// `SEG_FLAG_WRITE_ERROR` (in its header, when the disk takes that), and returned as
    /// [`StoreError::WriteFailed`].
    pub fn close(mut self) -> Result<WriterStats, StoreError> {
        self.flush();
        self.wait_idle()?;
        if let Some(c) = self.cur.take() {
            self.current[c.buf] = false;
        }
        if let Some(seg) = &mut self.seg {
            if let Err(e) = datasync_traced((&self.trace, &self.faults), seg.slot, &seg.file) {
                seg.flags |= fmt::SEG_FLAG_WRITE_ERROR;
                self.io_failed(e, 0);
            }
            match self.write_header(fmt::STATE_OPEN, fmt::SEG_FLAG_CLEAN_CLOSE) {
                Ok(()) => {}
                Err(StoreError::Io { source, .. }) => self.io_failed(source, 0),
                Err(e) => return Err(e),
            }
        }
        // Every generation so far is durable and visible now: hand the next writer the exact
        // next number, so a clean restart skips none (only a crash leaves a gap).
        if let Some((_, h)) = self.prep.take() {
            self.join_prep(h)?;
        }
        if self.next_seq < self.seq_reserved {
            self.reserve_seqs(self.next_seq)?;
        }
        self.closed = true;
        self.write_state();
        self.check_errors()?;
        Ok(self.stats)
    }

    fn check_errors(&mut self) -> Result<(), StoreError> {
        match self.last_error.take() {
            Some(last) => Err(StoreError::WriteFailed {
                count: self.stats.write_errors,
                last,
            }),
            None => Ok(()),
        }
    }

    // ---- blocks and chunks ----

    fn close_block(&mut self) {
        let Some(c) = self.cur.as_mut() else {
            return;
        };
        if c.records == 0 {
            return;
        }
        let seg = self
            .seg
            .as_mut()
            .expect("a current chunk implies an open segment");
        let buf = self.bufs[c.buf].as_mut_slice();
        let payload_start = c.block_start + BLOCK_HEADER_LEN;
        let records_len = c.fill - payload_start;
        // One crc per unit of records (one bad byte then costs the records of its unit,
        // not the block), then the unit table after the records, covered by payload_crc.
        // The same one pass over the closed block, which was just written and is mostly
        // still in this core's L2. Extending the crc per record right after each copy was
        // measured slower (1500 B frames written by another core, copy + crc per packet,
        // medians: here 275 ns; per record over the source 310 ns, over the destination
        // 350 ns, which waits for the lines the copy is still filling): short crc32c calls
        // cost more than the cache misses they avoid; a unit is 4–256 KiB. `crc` folds
        // with VPCLMULQDQ where the CPU has it (about twice the crate's speed).
        let shift = c.unit_shift;
        let n = fmt::units_for(records_len, shift);
        let next = c.unit_next.min(n);
        for e in &mut c.units[next..n] {
            *e = NO_RECORD_UNIT;
        }
        for (k, e) in c.units[..n].iter_mut().enumerate() {
            let a = payload_start + (k << shift);
            let b = (a + (1 << shift)).min(c.fill);
            e.crc = U32::new(crate::crc::crc32c(&buf[a..b]));
        }
        let table = c.units[..n].as_bytes();
        buf[c.fill..c.fill + table.len()].copy_from_slice(table);
        let table_crc = crc32c::crc32c(table);
        c.fill += table.len();
        let block = BlockDone {
            records: c.records,
            payload_len: (c.fill - payload_start) as u32,
            first_ts: c.first_ts,
            last_ts: c.last_ts,
            payload_crc: table_crc,
            units: Some(Units {
                records_len: records_len as u32,
                shift,
                count: n as u8,
            }),
        };
        let end = finish_block(&mut buf[c.block_start..c.chunk_len], seg, &block) + c.block_start;
        let off = c.chunk_start + c.block_start as u64;
        let written = account_block(seg, c.chunk, c.chunk_start, c.block_start, end, &block);
        self.stats.bytes_written += written;

        let (start, bi, packets) = (c.block_start, c.buf, c.records);
        c.block_start = end;
        c.fill = end + BLOCK_HEADER_LEN;
        c.records = 0;
        c.unit_next = 0;
        let t0 = std::time::Instant::now();
        let r = match &self.io {
            Io::Uring(_) => self.submit_block(bi, start..end, off, packets),
            Io::Sync => pwrite_traced(
                (&self.trace, &self.faults),
                seg.slot,
                &seg.file,
                &self.bufs[bi].as_slice()[start..end],
                off,
            ),
        };
        self.times.submit_ns += t0.elapsed().as_nanos() as u64;
        if let Err(e) = r {
            // Not on the disk (written and failed, or never queued): the block's packets
            // are lost, the segment is marked.
            if let Some(seg) = &mut self.seg {
                seg.mark_failed_write(packets);
            }
            self.io_failed(e, packets);
        }
    }

    fn finish_chunk(&mut self) -> Result<(), StoreError> {
        let c = self.cur.take().expect("current chunk");
        self.current[c.buf] = false;
        self.release_if_idle(c.buf);
        self.next_chunk = c.chunk + 1;
        self.resume_at = 0;
        if self.next_chunk >= self.ring.geometry.chunk_count {
            self.seal_segment()?;
        }
        Ok(())
    }

    fn start_chunk(&mut self) -> Result<(), AppendError> {
        // Once per chunk: reap finished writes (no syscall) so seals move on, and keep the
        // counters `status` shows current.
        self.poll();
        self.maybe_publish();
        let b = match self.free.pop() {
            Some(b) => b,
            None if self.nonblocking => {
                self.stats.backpressure += 1;
                return Err(AppendError::Backpressure);
            }
            None => loop {
                self.wait_one()?;
                if let Some(b) = self.free.pop() {
                    break b;
                }
            },
        } as usize;
        if self.seg.is_none()
            && let Err(e) = {
                let t0 = std::time::Instant::now();
                let r = self.open_next_segment();
                self.times.open_ns += t0.elapsed().as_nanos() as u64;
                r
            }
        {
            self.free.push(b as u16);
            return Err(e.into());
        }
        let g = &self.ring.geometry;
        let (start, end) = g.chunk_range(self.next_chunk);
        let len = (end - start) as usize;
        let at = self.resume_at;
        self.current[b] = true;
        self.cur = Some(Cur {
            buf: b,
            chunk: self.next_chunk,
            chunk_start: start,
            chunk_len: len,
            block_start: at,
            fill: at + BLOCK_HEADER_LEN,
            records: 0,
            first_ts: 0,
            last_ts: 0,
            unit_shift: fmt::unit_shift_for(g.chunk_size),
            unit_next: 0,
            units: [NO_RECORD_UNIT; fmt::MAX_UNITS],
        });
        Ok(())
    }

    fn wait_one(&mut self) -> Result<(), StoreError> {
        let Io::Uring(u) = &mut self.io else {
            return Ok(());
        };
        let done = &mut self.completions;
        let t0 = std::time::Instant::now();
        let r = u.wait_one(|c| done.push(c));
        self.times.wait_ns += t0.elapsed().as_nanos() as u64;
        self.process_completions();
        r.map_err(|e| StoreError::io(&self.paths.segments, e))
    }

    /// Waits until no write is in flight and every background seal is done.
    fn wait_idle(&mut self) -> Result<(), StoreError> {
        loop {
            self.advance_sealing();
            let busy = matches!(&self.io, Io::Uring(u) if u.in_flight() > 0);
            if !busy {
                // Nothing in flight: a seal still listed can make no progress.
                self.sealing.iter_mut().for_each(|s| *s = None);
                return Ok(());
            }
            self.wait_one()?;
        }
    }

    // ---- segments ----

    fn open_next_segment(&mut self) -> Result<(), StoreError> {
        let slot = self.next_slot;
        let path = self.paths.slot(slot);
        // The slot was prepared in the background while the previous segment filled. Wait
        // for the helper only if it is creating this slot or extending a reservation that is
        // used up; dropping a page cache or reserving ahead may finish in its own time.
        let t0 = std::time::Instant::now();
        let mut waited = false;
        if let Some((pslot, h)) = self.prep.take() {
            let must_wait = self.next_seq >= self.seq_reserved || !path.exists();
            if !h.is_finished() && !must_wait {
                self.prep = Some((pslot, h));
            } else {
                waited = !h.is_finished();
                self.join_prep(h)?;
            }
        }
        if !path.exists() {
            waited = true;
            layout::format_slot(&self.paths, &self.ring, slot)?;
        }
        if self.next_seq >= self.seq_reserved {
            // The helper thread did not get to it (or there is none): extend it here.
            waited = true;
            self.reserve_seqs(self.next_seq + SEQ_BATCH)?;
        }
        if waited {
            self.stats.prep_waits += 1;
            self.times.prep_wait_ns += t0.elapsed().as_nanos() as u64;
        }
        let (file, _) =
            os::open_for_write(&path, self.direct).map_err(|e| StoreError::io(&path, e))?;
        let g = self.ring.geometry;
        self.seg = Some(OpenSeg {
            slot,
            seq: self.next_seq,
            file,
            next_block_no: 0,
            index: vec![ChunkIndexEntry::default(); g.chunk_count as usize],
            packets: 0,
            record_bytes: 0,
            first_ts: 0,
            last_ts: 0,
            used_end: g.region_len,
            opened_wall: now_ns(),
            flags: if self.lanes { fmt::SEG_FLAG_LANES } else { 0 }
                | if self.ring_blocks {
                    fmt::SEG_FLAG_RING
                } else {
                    0
                },
            damaged: 0,
            ifaces: self.ifaces,
            iface_count: self.iface_count,
            inflight: 0,
        });
        self.next_slot = (slot + 1) % self.ring.slot_count;
        self.next_seq += 1;
        self.next_chunk = 0;
        self.resume_at = 0;
        self.prepare(self.next_slot);
        if matches!(self.io, Io::Uring(_)) {
            self.queue_open_header()
        } else {
            self.write_header_counted(fmt::STATE_OPEN);
            Ok(())
        }
    }

    fn join_prep(
        &mut self,
        h: std::thread::JoinHandle<Result<Option<u64>, StoreError>>,
    ) -> Result<(), StoreError> {
        match h.join() {
            Ok(r) => {
                if let Some(reserved) = r? {
                    self.seq_reserved = self.seq_reserved.max(reserved);
                }
                Ok(())
            }
            Err(_) => Err(StoreError::io(
                &self.paths.segments,
                io::Error::other("the slot preparation thread panicked"),
            )),
        }
    }

    /// Prepares slot `slot` for the next segment on a helper thread: creates it while the
    /// ring is still growing (lazy preallocation), or drops its page cache before it is
    /// overwritten (O_DIRECT writes over cached pages must invalidate them, which io_uring
    /// punts to a worker thread).
    fn prepare(&mut self, slot: u32) {
        if self.trace.is_some() || self.prep.is_some() {
            return;
        }
        let (paths, ring) = (self.paths.clone(), self.ring);
        let reserve = (self.next_seq + SEQ_BATCH / 2 >= self.seq_reserved)
            .then_some(self.next_seq + SEQ_BATCH);
        let h = std::thread::Builder::new()
            .name("kuroko-slot-prep".into())
            .spawn(move || {
                let path = paths.slot(slot);
                match File::open(&path) {
                    Ok(f) => {
                        let _ = os::drop_cache(&f);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        layout::format_slot(&paths, &ring, slot)?;
                    }
                    Err(e) => return Err(StoreError::io(&path, e)),
                }
                if let Some(r) = reserve {
                    layout::write_meta_with(&paths, &ring, r)?;
                }
                Ok(reserve)
            });
        // Without a thread the slot is prepared synchronously when it is reached.
        self.prep = h.ok().map(|h| (slot, h));
    }

    /// Makes sequence numbers below `upto` usable (durably, before any of them is used).
    fn reserve_seqs(&mut self, upto: u64) -> Result<(), StoreError> {
        layout::write_meta_with(&self.paths, &self.ring, upto)?;
        self.seq_reserved = upto;
        if let Some(t) = &self.trace {
            t.0.lock()
                .unwrap_or_else(|e| e.into_inner())
                .ops
                .push(TraceOp::Reserve(upto));
        }
        Ok(())
    }

    /// Queues the open segment's OPEN header through io_uring (the blocks that follow do not
    /// wait for it: they carry the segment's `seq`, and recovery recognises a generation
    /// from its first block as well as from its header). The seal waits for it like a block.
    fn queue_open_header(&mut self) -> Result<(), StoreError> {
        while self.open_busy {
            self.wait_one()?;
            if !matches!(&self.io, Io::Uring(u) if u.in_flight() > 0) {
                self.open_busy = false;
            }
        }
        let g = self.ring.geometry;
        let seg = self.seg.as_mut().expect("open segment");
        fill_header(
            self.open_buf.as_mut_slice(),
            &g,
            seg,
            fmt::STATE_OPEN,
            0,
            &(seg.ifaces, seg.iface_count),
        );
        self.submit_open_header()
    }

    fn seal_segment(&mut self) -> Result<(), StoreError> {
        if matches!(self.io, Io::Uring(_)) && self.seg.is_some() {
            // In the background: wait only if both seal slots are busy (a whole segment
            // written during one fdatasync).
            let slot = loop {
                if let Some(i) = self.sealing.iter().position(Option::is_none) {
                    break i;
                }
                self.wait_one()?;
            };
            let seg = self.seg.take().expect("checked");
            self.sealing[slot] = Some(Sealing {
                seg,
                stage: SealStage::Writes,
            });
            self.advance_sealing();
            self.next_chunk = 0;
            self.resume_at = 0;
            self.write_state();
            return Ok(());
        }
        self.wait_idle()?;
        let Some(seg) = &self.seg else {
            return Ok(());
        };
        // A failed fdatasync is counted and marked in the header (never a good seal); the
        // writer goes on with the next segment.
        if let Err(e) = datasync_traced((&self.trace, &self.faults), seg.slot, &seg.file) {
            if let Some(seg) = &mut self.seg {
                seg.flags |= fmt::SEG_FLAG_WRITE_ERROR;
            }
            self.io_failed(e, 0);
        }
        self.write_header_counted(fmt::STATE_SEALED);
        self.seg = None;
        self.next_chunk = 0;
        self.resume_at = 0;
        self.stats.segments_sealed += 1;
        self.write_state();
        Ok(())
    }

    /// [`Self::write_header`] while the writer runs: a failure is counted and marks the
    /// segment (see `SEG_FLAG_WRITE_ERROR`), and the writer goes on. Its blocks carry the
    /// segment's `seq`, so recovery finds them even under a stale header.
    fn write_header_counted(&mut self, state: u16) {
        if let Err(StoreError::Io { source, .. }) = self.write_header(state, 0) {
            if let Some(seg) = &mut self.seg {
                seg.flags |= fmt::SEG_FLAG_WRITE_ERROR;
            }
            self.io_failed(source, 0);
        }
    }

    /// Writes the open segment's header region (synchronously).
    fn write_header(&mut self, state: u16, extra_flags: u16) -> Result<(), StoreError> {
        let seg = self.seg.as_ref().expect("open segment");
        let g = self.ring.geometry;
        let ifaces = (seg.ifaces, seg.iface_count);
        fill_header(
            self.header_buf.as_mut_slice(),
            &g,
            seg,
            state,
            extra_flags,
            &ifaces,
        );
        pwrite_traced(
            (&self.trace, &self.faults),
            seg.slot,
            &seg.file,
            self.header_buf.as_slice(),
            0,
        )
        .map_err(|e| StoreError::io(&self.paths.slot(seg.slot), e))
    }

    /// Publishes the counters for `status` (best effort: they are not data).
    fn write_state(&mut self) {
        let s = self.stats;
        let b = self.base;
        let mut st = WriterState {
            magic: fmt::WRITER_STATE_MAGIC,
            io_mode: U16::new(self.info.mode),
            fallback: U16::new(self.info.fallback),
            pid: U32::new(if self.closed { 0 } else { std::process::id() }),
            updated_wall_ns: U64::new(now_ns()),
            started_wall_ns: U64::new(self.started_wall),
            bytes_written: U64::new(b.bytes_written + s.bytes_written),
            packets_written: U64::new(b.packets_written + s.packets_written),
            packets_lost: U64::new(b.packets_lost + s.packets_lost),
            write_errors: U64::new(b.write_errors + s.write_errors),
            backpressure: U64::new(b.backpressure + s.backpressure),
            rejected: U64::new(b.rejected + s.rejected),
            reserved: [0; 44],
            crc: U32::new(0),
        };
        let _ = layout::write_writer_state(&self.paths, &mut st);
        self.last_publish = std::time::Instant::now();
    }

    // ---- recovery ----

    /// Finds where the ring stands: seals segments left open by a crash (from their valid
    /// blocks), or resumes a cleanly closed open segment in place.
    fn recover(&mut self) -> Result<RecoveryReport, StoreError> {
        let mut report = RecoveryReport::default();
        // The last writer did not close (killed, or the power went): its last writes may
        // still be landing. Walk the slots only once they have (see `settle_writes`).
        if layout::read_writer_state(&self.paths).is_some_and(|s| s.pid.get() != 0) {
            layout::settle_writes(&self.paths, &self.ring)?;
        }
        let mut probes: Vec<SlotProbe> = Vec::with_capacity(self.ring.slot_count as usize);
        for slot in 0..self.ring.slot_count {
            // An unreadable slot is skipped (reported by readers); it is overwritten when
            // the ring comes round to it.
            probes.push(segment::probe(&self.paths, &self.ring, slot));
        }
        let newest = probes
            .iter()
            .filter(|p| matches!(p.state, SlotState::Open | SlotState::Sealed))
            .max_by_key(|p| p.seq)
            .copied();
        let Some(newest) = newest else {
            return Ok(report);
        };
        // Raised to the durable reservation by the caller.
        self.next_seq = newest.seq + 1;
        self.next_slot = (newest.slot + 1) % self.ring.slot_count;
        for p in probes.iter().filter(|p| p.state == SlotState::Open) {
            let clean = p
                .header
                .is_some_and(|h| h.flags.get() & fmt::SEG_FLAG_CLEAN_CLOSE != 0);
            let resume = p.slot == newest.slot && clean;
            let seg = self.load_open(p)?;
            if resume && Some(seg.0.used_end) == p.header.map(|h| h.used_bytes.get()) {
                if self.iface_count == 0 {
                    self.ifaces = seg.0.ifaces;
                    self.iface_count = seg.0.iface_count;
                }
                self.resume(seg)?;
                report.resumed_in_place = true;
            } else {
                report.damaged_blocks += self.seal_recovered(seg)?;
                report.sealed_slots.push(p.slot);
            }
        }
        Ok(report)
    }

    /// Rebuilds an open segment's state from its blocks.
    fn load_open(&self, p: &SlotProbe) -> Result<(OpenSeg, u32), StoreError> {
        let path = self.paths.slot(p.slot);
        let g = self.ring.geometry;
        let (file, _) =
            os::open_for_write(&path, self.direct).map_err(|e| StoreError::io(&path, e))?;
        // Read, not mapped: an unreadable sector would kill the writer with SIGBUS at every
        // start (a capture that never comes back); here it becomes a damaged block.
        let rfile = os::open_for_read(&path, self.direct).map_err(|e| StoreError::io(&path, e))?;
        let mut bytes = AlignedBuf::lazy(g.segment_size as usize);
        os::read_what_can_be_read(bytes.as_mut_slice(), 0, |b, off| {
            std::os::unix::fs::FileExt::read_exact_at(&rfile, b, off)
        });
        let t = segment::totals(bytes.as_slice(), &g, p.seq);
        // Keep the interfaces the previous writer named.
        let (ifaces, iface_count) = match &p.header {
            Some(h) => (h.ifaces, h.iface_count.get().min(fmt::MAX_IFACES as u16)),
            None => ([IfaceEntry::default(); fmt::MAX_IFACES], 0),
        };
        Ok((
            OpenSeg {
                slot: p.slot,
                seq: p.seq,
                file,
                next_block_no: t.last_block_no.map_or(0, |n| n + 1),
                index: t.chunks,
                packets: t.packets,
                record_bytes: t.record_bytes,
                first_ts: t.first_ts,
                last_ts: t.last_ts,
                used_end: t.end,
                opened_wall: p.header.map_or(0, |h| h.opened_wall_ns.get()),
                // Written through lanes stays known after recovery (export merges it).
                // So does holding ring blocks (the header stays version 3).
                flags: p.header.map_or(0, |h| {
                    h.flags.get() & (fmt::SEG_FLAG_LANES | fmt::SEG_FLAG_RING)
                }),
                damaged: t.damaged_blocks,
                ifaces,
                iface_count,
                inflight: 0,
            },
            t.damaged_blocks,
        ))
    }

    fn seal_recovered(&mut self, (mut seg, damaged): (OpenSeg, u32)) -> Result<u32, StoreError> {
        seg.flags |= fmt::SEG_FLAG_RECOVERED;
        let path = self.paths.slot(seg.slot);
        self.seg = Some(seg);
        self.write_header(fmt::STATE_SEALED, 0)?;
        let seg = self.seg.take().expect("just set");
        datasync_traced((&self.trace, &self.faults), seg.slot, &seg.file)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(damaged)
    }

    fn resume(&mut self, (seg, _): (OpenSeg, u32)) -> Result<(), StoreError> {
        let g = self.ring.geometry;
        let end = seg.used_end;
        self.seg = Some(seg);
        // Clear the clean-close mark before appending (see SEG_FLAG_CLEAN_CLOSE).
        self.write_header(fmt::STATE_OPEN, 0)?;
        let seg = self.seg.as_ref().expect("just set");
        datasync_traced((&self.trace, &self.faults), seg.slot, &seg.file)
            .map_err(|e| StoreError::io(&self.paths.slot(seg.slot), e))?;
        let c = g.chunk_of(end);
        if c >= g.chunk_count {
            return self.seal_segment();
        }
        let (cstart, _) = g.chunk_range(c);
        if end < cstart {
            // Empty segment: start at chunk 0's data start.
            self.next_chunk = 0;
            self.resume_at = 0;
        } else {
            self.next_chunk = c;
            self.resume_at = (end - cstart) as usize;
        }
        Ok(())
    }
}

/// Lays out a segment's header region (header + chunk index) in `buf`.
/// What a closed block holds, for its header and its segment's accounting.
struct BlockDone {
    records: u32,
    /// Bytes of records (the block without its header and padding).
    payload_len: u32,
    first_ts: u64,
    last_ts: u64,
    /// CRC-32C of the payload (computed by whoever filled it: the writer, or a lane);
    /// with units, of the unit table only (each unit has its own crc in it).
    payload_crc: u32,
    /// The per-unit checksums of format 2 (`BLOCK_FLAG_UNITS`), when the block has them.
    /// Lanes close blocks with one crc over the payload (the version 1 layout, which
    /// readers of format 2 read as before).
    units: Option<Units>,
}

/// A block's unit table, as its header describes it.
#[derive(Clone, Copy)]
struct Units {
    /// Bytes of records at the start of the payload (the table follows them).
    records_len: u32,
    /// log2 of the unit size.
    shift: u8,
    count: u8,
}

/// Writes the header of the block that starts at `buf[0]` (its records follow the header)
/// as the next block of `seg`, zeroes the padding up to the next 4 KiB boundary (at most
/// `buf.len()`), and returns the block's end (its length on disk).
fn finish_block(buf: &mut [u8], seg: &OpenSeg, b: &BlockDone) -> usize {
    let payload_len = b.payload_len as usize;
    let fill = BLOCK_HEADER_LEN + payload_len;
    let mut h = BlockHeader {
        magic: U32::new(fmt::BLOCK_MAGIC),
        header_len: U16::new(BLOCK_HEADER_LEN as u16),
        flags: U16::new(if b.units.is_some() {
            fmt::BLOCK_FLAG_UNITS
        } else {
            0
        }),
        record_count: U32::new(b.records),
        seq: U64::new(seg.seq),
        block_no: U32::new(seg.next_block_no),
        payload_len: U32::new(payload_len as u32),
        first_ts: U64::new(b.first_ts),
        last_ts: U64::new(b.last_ts),
        payload_crc: U32::new(b.payload_crc),
        records_len: U32::new(b.units.map_or(0, |u| u.records_len)),
        unit_shift: b.units.map_or(0, |u| u.shift),
        unit_count: b.units.map_or(0, |u| u.count),
        reserved: [0; 6],
        header_crc: U32::new(0),
    };
    h.header_crc = U32::new(crc32c::crc32c(h.crc_input()));
    buf[..BLOCK_HEADER_LEN].copy_from_slice(h.as_bytes());
    let end = (align_up(fill as u64, fmt::ALIGN) as usize).min(buf.len());
    buf[fill..end].fill(0);
    end
}

/// Accounts for a block of `seg` written in chunk `chunk` (which starts at `chunk_start`
/// in the file) from `start` to `end` (chunk-relative): its chunk's index entry, the
/// segment's totals, the next block number. Returns the bytes it takes on disk.
fn account_block(
    seg: &mut OpenSeg,
    chunk: u32,
    chunk_start: u64,
    start: usize,
    end: usize,
    b: &BlockDone,
) -> u64 {
    let e = &mut seg.index[chunk as usize];
    if e.packets.get() == 0 {
        e.first_ts = U64::new(b.first_ts);
        e.last_ts = U64::new(b.last_ts);
    }
    e.first_ts = U64::new(e.first_ts.get().min(b.first_ts));
    e.last_ts = U64::new(e.last_ts.get().max(b.last_ts));
    e.packets = U32::new(e.packets.get() + b.records);
    e.blocks = U32::new(e.blocks.get() + 1);
    e.used = U32::new(end as u32);
    if seg.packets == 0 {
        seg.first_ts = b.first_ts;
        seg.last_ts = b.last_ts;
    }
    seg.first_ts = seg.first_ts.min(b.first_ts);
    seg.last_ts = seg.last_ts.max(b.last_ts);
    seg.packets += u64::from(b.records);
    seg.record_bytes += u64::from(b.units.map_or(b.payload_len, |u| u.records_len));
    seg.next_block_no += 1;
    seg.used_end = chunk_start + end as u64;
    (end - start) as u64
}

/// Writes one record at `buf[at..]`: its header, the packet's bytes (the concatenation of
/// `parts`, `cap` bytes), zeros up to `need` (the record's aligned length). Returns where
/// the record ends. The one record layout of the writer and its lanes.
#[inline]
fn put_record(
    buf: &mut [u8],
    at: usize,
    need: usize,
    cap: usize,
    meta: &RecordMeta,
    parts: &[&[u8]],
) -> usize {
    let header = RecordHeader {
        ts_ns: U64::new(meta.ts_ns),
        cap_len: U32::new(cap as u32),
        wire_len: U32::new(meta.wire_len.max(cap as u32)),
        iface: U16::new(meta.iface),
        flags: U16::new(meta.flags),
    };
    let mut p_at = at + fmt::RECORD_HEADER_LEN;
    buf[at..p_at].copy_from_slice(header.as_bytes());
    for p in parts {
        buf[p_at..p_at + p.len()].copy_from_slice(p);
        p_at += p.len();
    }
    let end = at + need;
    buf[p_at..end].fill(0);
    end
}

/// Widens a block's time span `[first, last]` (of `records` records so far) by `ts`.
#[inline]
fn widen_span(first: &mut u64, last: &mut u64, records: u32, ts: u64) {
    if records == 0 {
        (*first, *last) = (ts, ts);
    } else {
        *first = (*first).min(ts);
        *last = (*last).max(ts);
    }
}

fn fill_header(
    buf: &mut [u8],
    g: &kuroko_ring_format::Geometry,
    seg: &OpenSeg,
    state: u16,
    extra_flags: u16,
    (ifaces, iface_count): &([IfaceEntry; fmt::MAX_IFACES], u16),
) {
    let mut h: SegmentHeader = segment::empty_header(g, seg.slot);
    h.state = U16::new(state);
    h.flags = U16::new(seg.flags | extra_flags);
    h.seq = U64::new(seg.seq);
    h.first_ts = U64::new(seg.first_ts);
    h.last_ts = U64::new(seg.last_ts);
    h.packets = U64::new(seg.packets);
    h.record_bytes = U64::new(seg.record_bytes);
    h.used_bytes = U64::new(seg.used_end);
    h.blocks = U32::new(seg.next_block_no);
    h.opened_wall_ns = U64::new(seg.opened_wall);
    if state == fmt::STATE_SEALED {
        h.sealed_wall_ns = U64::new(now_ns());
    }
    h.iface_count = U16::new(*iface_count);
    h.ifaces = *ifaces;
    h.damaged_blocks = U32::new(seg.damaged);
    h.index_crc = U32::new(segment::index_crc(&seg.index));
    if h.flags.get() & fmt::SEG_FLAG_RING != 0 {
        h.version = U16::new(fmt::SEGMENT_VERSION_RING);
    }
    segment::seal_crc(&mut h);
    buf.fill(0);
    buf[..fmt::SEGMENT_HEADER_LEN].copy_from_slice(h.as_bytes());
    let ix = fmt::CHUNK_INDEX_OFFSET as usize;
    let bytes = seg.index.as_bytes();
    buf[ix..ix + bytes.len()].copy_from_slice(bytes);
}

/// Whether the file system of the store takes O_DIRECT (tmpfs does not).
fn probe_direct(paths: &Paths) -> bool {
    os::open_for_write(&paths.meta(), true)
        .map(|(_, direct)| direct)
        .unwrap_or(false)
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        // Never free buffers the kernel may still be reading.
        let _ = self.wait_idle();
        // Nor release the lock while a slot is being created.
        if let Some((_, h)) = self.prep.take() {
            let _ = h.join();
        }
    }
}
