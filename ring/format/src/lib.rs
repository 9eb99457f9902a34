//! The on-disk format of Kuroko's segment store.
//!
//! This crate only *describes* bytes: fixed `#[repr(C)]` little-endian headers (zerocopy
//! 0.8, unaligned field types so a header can be read at any offset), the layout
//! arithmetic, and checked views over untrusted bytes. It never does I/O and never
//! computes a checksum itself (crc32c lives in `kuroko-ring`); it says which bytes every
//! checksum covers. Other crates and off-box tools (the inspector) read segments through it.
//!
//! `ring/FORMAT.md` walks through the same layout field by field, for people with a hex
//! editor.
//!
//! Invariants:
//! - `#![no_std]`, `#![forbid(unsafe_code)]`: any bytes can be handed to the views, which
//!   check lengths once and then cannot panic.
//! - Every on-disk integer is little-endian.
//! - A format change that old readers cannot read bumps [`FORMAT_VERSION`].
//!
//! # Layout
//!
//! A data directory holds `segments/`, a ring of `slot_count` segment files
//! (`seg-00000.kseg`, …) of exactly `segment_size` bytes each, plus `store.meta`
//! ([`StoreMeta`]), `writer.state` ([`WriterState`]) and the writer's `.lock`.
//!
//! ```text
//! segment file (segment_size bytes, a multiple of chunk_size)
//! ┌──────────────────────────────┬────────────────────────────┬─────┬───────────────┐
//! │ header region                │ chunk 0 (rest of the first │ ... │ chunk n-1     │
//! │ SegmentHeader @0             │ chunk_size bytes)          │     │               │
//! │ ChunkIndexEntry × n @1024    │ block│block│ pad │ block   │     │ block │ zeros │
//! └──────────────────────────────┴────────────────────────────┴─────┴───────────────┘
//! block (4 KiB aligned, never crosses a chunk boundary, at most one chunk long)
//! ┌─────────────────┬──────────────────────────────────────────────────┬───────────┐
//! │ BlockHeader (64)│ RecordHeader (20) data … pad to 4 │ RecordHeader …│ zero pad  │
//! └─────────────────┴──────────────────────────────────────────────────┴───────────┘
//! ```
//!
//! - **Chunks** are the writer's unit of buffering: a `chunk_size` (default 1 MiB) aligned
//!   buffer (anonymous memory registered with io_uring, not a file mapping) written with
//!   O_DIRECT to a fixed file range. Chunk `i` covers `[i * chunk_size, (i+1) *
//!   chunk_size)` of the file, except that chunk 0 starts after the header region.
//! - **Blocks** are the unit of placement. A block starts at a 4 KiB aligned offset inside a
//!   chunk, holds whole records, and carries a crc32c over its header. Its records are
//!   checked in **units** (format 2, [`BLOCK_FLAG_UNITS`]: 16 KiB with 1 MiB chunks), one
//!   crc32c each in a table after the records, so one bad byte costs the records of its
//!   unit, not the block; blocks of format 1 have one crc32c over the whole payload. A block is written once per segment generation and never rewritten. A writer
//!   `flush` closes a partly filled block early (so readers see recent packets); the next
//!   block starts at the next 4 KiB boundary of the same chunk, or at the next chunk when the
//!   next record does not fit.
//! - **Finding the next block**: after the block at offset `o` with on-disk length `l`, the
//!   next block is at `align_up(o + l, 4096)` if a valid header of the same `seq` is there,
//!   else at the start of the next chunk, else the segment ends. A block whose header is
//!   valid but whose payload crc fails is *damaged*: reported and skipped, its length still
//!   tells where the next block is.
//! - **Sequence numbers**: every segment generation has a store-wide `seq` (1, 2, 3, …, in
//!   write order). Each block repeats its segment's `seq`, so stale blocks of an older
//!   generation left in a reused slot are never mistaken for new ones. Retention is by
//!   `seq`, never by packet time.
//! - **Time index**: the sealed header carries one [`ChunkIndexEntry`] per chunk
//!   (first/last packet time, packet and block counts). Each block header repeats the first
//!   and last time of its records, so a time-range read touches only overlapping chunks
//!   and blocks. An open segment has no index yet: readers scan its block headers.
//! - **Flow index**: [`FlowIndexRef`] in the segment header is reserved (all zero in format
//!   version 1) for the analyzer's per-segment flow index. When it is added it lives in a
//!   sidecar file `seg-NNNNN.flow` whose header repeats the segment `seq` (so a stale one is
//!   recognised), and `FlowIndexRef` records its kind, length and crc32c.
//!
//! # Crash safety
//!
//! The header region is rewritten only when a segment is opened (`STATE_OPEN`) and when it
//! is sealed (`STATE_SEALED`, after its blocks are durable). A torn header fails its crc;
//! recovery then trusts the blocks, which carry `seq` and crc themselves. After a crash
//! every sealed segment reads back intact and the open one up to its last valid block.

#![no_std]
#![forbid(unsafe_code)]

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The highest format version this build reads. Bumped on any change old readers cannot
/// read.
///
/// 2: blocks may carry a unit table ([`BLOCK_FLAG_UNITS`]); version 1 readers would take
/// it for records. Version 2 readers read version 1 stores unchanged.
///
/// 3: a segment may hold ring blocks ([`RING_BLOCK_MAGIC`], zero-copy capture). Only
/// segments that may hold them carry version 3 (and [`SEG_FLAG_RING`]), so version 2
/// readers refuse exactly those; everything else is still written as version 2
/// ([`WRITE_VERSION`]).
pub const FORMAT_VERSION: u16 = 3;
/// The version written in `store.meta` and in the headers of segments without ring blocks.
pub const WRITE_VERSION: u16 = 2;
/// The version of a segment header with [`SEG_FLAG_RING`].
pub const SEGMENT_VERSION_RING: u16 = 3;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"KURKSEG1";
/// First 8 bytes of `store.meta`.
pub const STORE_MAGIC: [u8; 8] = *b"KURKSTO1";
/// First 8 bytes of `writer.state`.
pub const WRITER_STATE_MAGIC: [u8; 8] = *b"KURKWST1";
/// First 4 bytes of every block header (`KBLK`).
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"KBLK");
/// First 4 bytes of a ring block's header (`KBLR`).
///
/// A ring block (zero-copy capture, format version 3) holds one TPACKET_V3 ring block as the
/// kernel filled it: the same 64-byte [`BlockHeader`], zero padding to 4 KiB (the header
/// page), then the ring block (its `tpacket_block_desc`, then the `tpacket3_hdr` frames),
/// [`RING_PAYLOAD_OFFSET`] bytes into the payload. Fields that differ from a record block:
/// `records_len` is the ring block's filled length (`blk_len`, the bytes `payload_crc`
/// covers, read by [`RingFrames`]); `payload_len` is [`RING_PAYLOAD_OFFSET`] plus the bytes
/// written (the filled length rounded up to 4 KiB: the tail past `blk_len` is unchecked and
/// never read); `flags`, `unit_shift` and `unit_count` are 0 (one crc for the block);
/// `reserved[0..2]` is the capture interface (LE). The ring block is in the byte order of
/// the host that captured it, little-endian on every supported one.
///
/// A different magic rather than a flag, so that a reader of version 2 does not take the
/// ring block for records: to it the bytes hold no valid block.
pub const RING_BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"KBLR");
/// Where the ring block starts in a ring block's payload: after the 4 KiB header page.
pub const RING_PAYLOAD_OFFSET: usize = ALIGN as usize - BLOCK_HEADER_LEN;
/// A `tp_status` bit of a frame in a stored ring block: the capture put the VLAN tag the
/// kernel had stripped back into the frame, in place (`tp_mac`, `tp_snaplen` and `tp_len`
/// describe the frame as it was on the wire). An unused bit in the kernel's `TP_STATUS_*`.
pub const RING_STATUS_VLAN_RESTORED: u32 = 1 << 27;
/// `TP_STATUS_TS_RAW_HARDWARE`: the frame's time comes from the NIC.
pub const RING_STATUS_TS_HARDWARE: u32 = 1 << 31;

/// Block flag: the payload is the records (`records_len` bytes) followed by a unit table,
/// [`UnitEntry`] × `unit_count`: one crc32c per `1 << unit_shift` bytes of records, so
/// that one bad byte costs the records covering that unit, not the whole block.
/// `payload_crc` then covers the unit table only (each unit's crc covers its records).
pub const BLOCK_FLAG_UNITS: u16 = 1;
/// At most this many units per block (a reader keeps the damaged ones in a `u64`).
pub const MAX_UNITS: usize = 64;
/// Smallest unit: 4 KiB of records.
pub const MIN_UNIT_SHIFT: u8 = 12;
/// `UnitEntry::first_record` of a unit in which no record starts (one long record covers
/// it).
pub const NO_RECORD: u32 = u32::MAX;

/// Alignment of blocks, chunks and the header region (the O_DIRECT unit of every disk we
/// support: 4 KiB logical or physical sectors).
pub const ALIGN: u64 = 4096;
/// Records are padded to this many bytes.
pub const RECORD_ALIGN: usize = 4;
/// Where the chunk index starts inside the header region.
pub const CHUNK_INDEX_OFFSET: u64 = 1024;
/// Most interfaces one segment header can name.
pub const MAX_IFACES: usize = 8;
/// Largest captured length a record may carry (the largest snaplen the capture accepts).
pub const MAX_CAPLEN: u32 = 262_144;
/// Smallest and largest chunk sizes (powers of two).
pub const MIN_CHUNK_SIZE: u64 = 64 * 1024;
pub const MAX_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Segment files are at most 2 GiB so that every offset in one, the end of its last block
/// included, fits `Position::offset` (a `u32`). At exactly 4 GiB the end of a full
/// segment wrapped to 0 (`head()`, lag and stored `ScanReport::next` went wrong).
pub const MAX_SEGMENT_SIZE: u64 = 1 << 31;

/// Segment states (`SegmentHeader::state`).
pub const STATE_FREE: u16 = 0;
/// Being written: trust only blocks, scanned from the start.
pub const STATE_OPEN: u16 = 1;
/// Complete: header counts, time range and chunk index are final.
pub const STATE_SEALED: u16 = 2;

/// `SegmentHeader::flags`: sealed by recovery after a crash, not by its writer.
pub const SEG_FLAG_RECOVERED: u16 = 1;
/// `SegmentHeader::flags` of an OPEN segment: its writer closed cleanly and `used_bytes` is
/// exactly where its last block ends, so the next writer may append in place. A writer
/// clears it (synchronously) before it appends; a crash therefore never leaves it set
/// over blocks it does not account for.
pub const SEG_FLAG_CLEAN_CLOSE: u16 = 2;
/// `SegmentHeader::flags`: the disk failed a write or an fdatasync of this segment while
/// its writer ran. Its header is not a promise that every block it counts is on the disk:
/// the blocks whose writes failed are counted in `damaged_blocks` (and their packets not in
/// `packets`), and after a failed fdatasync any block may be missing. Readers report the
/// segment as damaged; each block is still checked by its crc as always.
pub const SEG_FLAG_WRITE_ERROR: u16 = 4;
/// `SegmentHeader::flags`: written through lanes (several capture threads): its blocks
/// interleave by lane, each block in time order, the segment not (readers that need time
/// order merge by timestamp, as `export_pcap` does).
pub const SEG_FLAG_LANES: u16 = 8;
/// `SegmentHeader::flags`: the segment may hold ring blocks ([`RING_BLOCK_MAGIC`]); its
/// header is [`SEGMENT_VERSION_RING`], which version 2 readers refuse.
pub const SEG_FLAG_RING: u16 = 16;

/// `RecordHeader::flags` bits. The store keeps them opaque; these are the ones defined.
pub mod record_flags {
    /// A VLAN tag stripped by the NIC was put back into the frame by the capture.
    pub const VLAN_RESTORED: u16 = 1 << 0;
    /// The timestamp comes from the NIC's hardware clock.
    pub const TS_HARDWARE: u16 = 1 << 1;
    /// The packet was imported from a file, not captured live.
    pub const IMPORTED: u16 = 1 << 2;
}

/// Link types (the pcap LINKTYPE_ numbers) the store knows by name. Live capture writes
/// Ethernet; `kuroko import` also stores the others below, each packet exported again with
/// its own link type.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// BSD loopback: a 4-byte address family in the capturing host's byte order.
pub const LINKTYPE_NULL: u16 = 0;
/// Raw IP (v4 or v6, from the version nibble).
pub const LINKTYPE_RAW: u16 = 101;
/// OpenBSD loopback: a 4-byte address family in network byte order.
pub const LINKTYPE_LOOP: u16 = 108;
/// Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10, or `-y LINUX_SLL`).
pub const LINKTYPE_LINUX_SLL: u16 = 113;
/// Raw IPv4.
pub const LINKTYPE_IPV4: u16 = 228;
/// Raw IPv6.
pub const LINKTYPE_IPV6: u16 = 229;
/// Linux cooked capture v2 (`tcpdump -i any` since libpcap 1.10).
pub const LINKTYPE_LINUX_SLL2: u16 = 276;
/// Every link type the store takes and the analyzer decodes.
pub const STORED_LINKTYPES: [u16; 8] = [
    LINKTYPE_ETHERNET,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_LOOP,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL2,
];

/// One capture interface named in a segment header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct IfaceEntry {
    /// The id records carry in `RecordHeader::iface`.
    pub id: U16,
    /// pcap LINKTYPE_ number.
    pub linktype: U16,
    pub snaplen: U32,
    /// Interface name, NUL padded (e.g. `eth1`, or the pcap file's interface name).
    pub name: [u8; 24],
}

/// Reserved for the analyzer's flow index (all zero in format version 1).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct FlowIndexRef {
    /// 0 = none.
    pub kind: U32,
    pub flags: U32,
    pub len: U64,
    pub crc32c: U32,
    pub reserved: [u8; 12],
}

/// The fixed header at offset 0 of every segment file.
///
/// `header_crc` is crc32c over every byte of this struct before it.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct SegmentHeader {
    pub magic: [u8; 8],
    pub version: U16,
    /// `size_of::<SegmentHeader>()` as written.
    pub header_len: U16,
    /// `STATE_FREE`, `STATE_OPEN` or `STATE_SEALED`.
    pub state: U16,
    pub flags: U16,
    /// Store-wide write sequence number of this generation (0 when free).
    pub seq: U64,
    /// Slot (file) number in the ring.
    pub slot: U32,
    pub chunk_size: U32,
    pub segment_size: U64,
    /// Bytes of the header region; chunk 0's data starts here.
    pub region_len: U32,
    /// Entries in the chunk index (= chunks in the segment).
    pub chunk_count: U32,
    /// Packet times, ns since the Unix epoch (0 when no packet).
    pub first_ts: U64,
    pub last_ts: U64,
    pub packets: U64,
    /// Bytes of records (headers + padded data).
    pub record_bytes: U64,
    /// Bytes of the segment that blocks occupy (the sealed fill level).
    pub used_bytes: U64,
    pub blocks: U32,
    /// Blocks found damaged when recovery sealed the segment.
    pub damaged_blocks: U32,
    /// Wall-clock times the writer opened and sealed this generation (ns).
    pub opened_wall_ns: U64,
    pub sealed_wall_ns: U64,
    pub iface_count: U16,
    pub reserved0: U16,
    /// crc32c of the chunk index entries (sealed segments only).
    pub index_crc: U32,
    pub ifaces: [IfaceEntry; MAX_IFACES],
    pub flow_index: FlowIndexRef,
    pub reserved: [u8; 60],
    pub header_crc: U32,
}

/// Per-chunk time index entry, `chunk_count` of them at [`CHUNK_INDEX_OFFSET`].
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct ChunkIndexEntry {
    pub first_ts: U64,
    pub last_ts: U64,
    pub packets: U32,
    pub blocks: U32,
    /// Bytes of the chunk that blocks occupy, from the chunk's data start.
    pub used: U32,
    pub reserved: U32,
}

/// The header at the start of every block.
///
/// `header_crc` is crc32c over the 60 bytes before it; `payload_crc` is crc32c over the
/// `payload_len` bytes of records that follow the header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockHeader {
    pub magic: U32,
    pub header_len: U16,
    pub flags: U16,
    pub record_count: U32,
    pub seq: U64,
    /// Ordinal of the block in its segment (0, 1, 2, …).
    pub block_no: U32,
    pub payload_len: U32,
    pub first_ts: U64,
    pub last_ts: U64,
    pub payload_crc: U32,
    /// With [`BLOCK_FLAG_UNITS`]: bytes of records at the start of the payload (the unit
    /// table follows them). 0 in blocks without the flag (format version 1).
    pub records_len: U32,
    /// With [`BLOCK_FLAG_UNITS`]: log2 of the unit size, and the number of units
    /// (`ceil(records_len / unit size)`, at most [`MAX_UNITS`]).
    pub unit_shift: u8,
    pub unit_count: u8,
    pub reserved: [u8; 6],
    pub header_crc: U32,
}

/// One unit of a block's records (see [`BLOCK_FLAG_UNITS`]).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct UnitEntry {
    /// crc32c of the unit's bytes of records.
    pub crc: U32,
    /// Payload offset of the first record that starts in this unit, or [`NO_RECORD`].
    pub first_record: U32,
    /// Ordinal (0, 1, …) of that record in the block.
    pub first_ordinal: U32,
}

/// Bytes of one [`UnitEntry`].
pub const UNIT_ENTRY_LEN: usize = core::mem::size_of::<UnitEntry>();

/// The unit size (log2) a writer uses for blocks in chunks of `chunk_size` bytes: the
/// smallest that keeps a chunk-long block within [`MAX_UNITS`] units (16 KiB for 1 MiB
/// chunks).
pub const fn unit_shift_for(chunk_size: u64) -> u8 {
    let log = 63 - chunk_size.leading_zeros() as u8;
    let s = log.saturating_sub(6);
    if s < MIN_UNIT_SHIFT {
        MIN_UNIT_SHIFT
    } else {
        s
    }
}

/// Units covering `records_len` bytes.
pub const fn units_for(records_len: usize, shift: u8) -> usize {
    (records_len + (1 << shift) - 1) >> shift
}

/// The header of every packet record.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct RecordHeader {
    /// ns since the Unix epoch.
    pub ts_ns: U64,
    /// Bytes of packet data stored (may be less than `wire_len` after a snaplen).
    pub cap_len: U32,
    /// Length of the frame on the wire.
    pub wire_len: U32,
    /// Interface id (see `SegmentHeader::ifaces`).
    pub iface: U16,
    /// [`record_flags`].
    pub flags: U16,
}

/// `store.meta`: the ring's geometry, written when the store is created, and the writer's
/// sequence-number reservation, rewritten (atomically) every few dozen segments.
/// `crc` is crc32c over the bytes before it.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct StoreMeta {
    pub magic: [u8; 8],
    pub version: U16,
    pub reserved0: [u8; 6],
    pub segment_size: U64,
    pub chunk_size: U32,
    pub slot_count: U32,
    /// The budget the ring was sized from (bytes).
    pub budget: U64,
    pub created_wall_ns: U64,
    /// Sequence numbers below this may have been used; a writer starts at or above it and
    /// uses a number only once it is below the value on disk. 0: not recorded (a store made
    /// before this field; the writer then skips a few numbers after the newest it sees).
    pub seq_reserved: U64,
    /// The first sequence number of this store, drawn at random when it was created (a
    /// multiple of 2^32 below 2^53). A header or block with a lower `seq` is not this
    /// store's: stale bytes of an earlier store on the same disk, never taken for data. 0: a
    /// store made before this field (its numbers start at 1).
    pub seq_base: U64,
    pub reserved: [u8; 28],
    pub crc: U32,
}

/// `writer.state`: counters the writer publishes for `status` (rewritten on every seal,
/// flush and close). `crc` is crc32c over the bytes before it.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct WriterState {
    pub magic: [u8; 8],
    /// [`io_mode`] of the last writer.
    pub io_mode: U16,
    /// [`fallback`] reasons, a bit set.
    pub fallback: U16,
    pub pid: U32,
    pub updated_wall_ns: U64,
    pub started_wall_ns: U64,
    /// Since the store was created.
    pub bytes_written: U64,
    pub packets_written: U64,
    pub write_errors: U64,
    pub backpressure: U64,
    pub rejected: U64,
    /// Packets lost to disk write errors (in failed block writes, or refused by `append`
    /// when it reported one). In what were reserved bytes: older files read 0.
    pub packets_lost: U64,
    pub reserved: [u8; 44],
    pub crc: U32,
}

/// How the writer reaches the disk.
pub mod io_mode {
    pub const UNKNOWN: u16 = 0;
    /// io_uring `WRITE_FIXED` on an O_DIRECT file: the normal mode.
    pub const URING_DIRECT: u16 = 1;
    /// Synchronous `pwrite` on an O_DIRECT file (io_uring unavailable).
    pub const PWRITE_DIRECT: u16 = 2;
    /// `pwrite` through the page cache (O_DIRECT refused, e.g. tmpfs).
    pub const PWRITE_BUFFERED: u16 = 3;
}

/// Why the writer is not in [`io_mode::URING_DIRECT`] (bits).
pub mod fallback {
    /// `/proc/sys/kernel/io_uring_disabled` forbids io_uring, or setup failed.
    pub const URING_UNAVAILABLE: u16 = 1 << 0;
    /// The file system refused O_DIRECT.
    pub const DIRECT_REFUSED: u16 = 1 << 1;
    /// `register_buffers` failed (RLIMIT_MEMLOCK); plain `WRITE` is used.
    pub const BUFFERS_NOT_REGISTERED: u16 = 1 << 2;
    /// Asked for by the options.
    pub const FORCED: u16 = 1 << 3;
}

pub const SEGMENT_HEADER_LEN: usize = core::mem::size_of::<SegmentHeader>();
pub const BLOCK_HEADER_LEN: usize = core::mem::size_of::<BlockHeader>();
pub const RECORD_HEADER_LEN: usize = core::mem::size_of::<RecordHeader>();
pub const CHUNK_INDEX_ENTRY_LEN: usize = core::mem::size_of::<ChunkIndexEntry>();
pub const STORE_META_LEN: usize = core::mem::size_of::<StoreMeta>();
pub const WRITER_STATE_LEN: usize = core::mem::size_of::<WriterState>();

const _: () = assert!(BLOCK_HEADER_LEN == 64);
const _: () = assert!(RECORD_HEADER_LEN == 20);
const _: () = assert!(CHUNK_INDEX_ENTRY_LEN == 32);
const _: () = assert!(SEGMENT_HEADER_LEN == 472);
const _: () = assert!(BLOCK_HEADER_LEN == 64);
const _: () = assert!(UNIT_ENTRY_LEN == 12);
const _: () = assert!(SEGMENT_HEADER_LEN <= CHUNK_INDEX_OFFSET as usize);
const _: () = assert!(STORE_META_LEN == 96);
const _: () = assert!(WRITER_STATE_LEN == 128);

/// Rounds `v` up to a multiple of `a` (a power of two).
pub const fn align_up(v: u64, a: u64) -> u64 {
    (v + a - 1) & !(a - 1)
}

/// On-disk bytes of a record with `cap_len` bytes of data.
pub const fn record_len(cap_len: u32) -> usize {
    RECORD_HEADER_LEN + ((cap_len as usize + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1))
}

/// The geometry of one segment file, derived from its size and chunk size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub segment_size: u64,
    pub chunk_size: u64,
    pub chunk_count: u32,
    /// Header region length: chunk 0's data starts here.
    pub region_len: u64,
}

/// Why a geometry is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometryError {
    ChunkSizeNotPowerOfTwo,
    ChunkSizeOutOfRange,
    SegmentSizeNotMultipleOfChunk,
    SegmentTooSmall,
    SegmentTooLarge,
}

impl core::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            GeometryError::ChunkSizeNotPowerOfTwo => "the chunk size must be a power of two",
            GeometryError::ChunkSizeOutOfRange => "the chunk size must be between 64KiB and 16MiB",
            GeometryError::SegmentSizeNotMultipleOfChunk => {
                "the segment size must be a multiple of the chunk size"
            }
            GeometryError::SegmentTooSmall => "a segment must hold at least two chunks",
            GeometryError::SegmentTooLarge => "a segment must be at most 2GiB",
        })
    }
}

impl Geometry {
    pub fn new(segment_size: u64, chunk_size: u64) -> Result<Geometry, GeometryError> {
        if !chunk_size.is_power_of_two() {
            return Err(GeometryError::ChunkSizeNotPowerOfTwo);
        }
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(GeometryError::ChunkSizeOutOfRange);
        }
        if !segment_size.is_multiple_of(chunk_size) {
            return Err(GeometryError::SegmentSizeNotMultipleOfChunk);
        }
        if segment_size > MAX_SEGMENT_SIZE {
            return Err(GeometryError::SegmentTooLarge);
        }
        let chunks = segment_size / chunk_size;
        if chunks < 2 {
            return Err(GeometryError::SegmentTooSmall);
        }
        let region_len = align_up(
            CHUNK_INDEX_OFFSET + chunks * CHUNK_INDEX_ENTRY_LEN as u64,
            ALIGN,
        );
        if region_len + ALIGN > chunk_size {
            // The index would swallow chunk 0 (only with huge segments and tiny chunks).
            return Err(GeometryError::SegmentTooLarge);
        }
        Ok(Geometry {
            segment_size,
            chunk_size,
            chunk_count: chunks as u32,
            region_len,
        })
    }

    /// File range `[start, end)` of chunk `i`'s data.
    pub fn chunk_range(&self, i: u32) -> (u64, u64) {
        let start = if i == 0 {
            self.region_len
        } else {
            i as u64 * self.chunk_size
        };
        (start, (i as u64 + 1) * self.chunk_size)
    }

    /// The chunk holding file offset `off`.
    pub fn chunk_of(&self, off: u64) -> u32 {
        (off / self.chunk_size) as u32
    }

    /// Largest captured length one record can carry in this geometry.
    pub fn max_caplen(&self) -> u32 {
        let room = self.chunk_size
            - self.region_len
            - BLOCK_HEADER_LEN as u64
            - RECORD_HEADER_LEN as u64
            - (MAX_UNITS * UNIT_ENTRY_LEN) as u64;
        (room.min(MAX_CAPLEN as u64) as u32) & !(RECORD_ALIGN as u32 - 1)
    }
}

impl BlockHeader {
    /// Bytes the block occupies on disk (header + payload, padded to [`ALIGN`]).
    pub fn disk_len(&self) -> u64 {
        align_up(
            BLOCK_HEADER_LEN as u64 + self.payload_len.get() as u64,
            ALIGN,
        )
    }
    /// The bytes `header_crc` covers.
    pub fn crc_input(&self) -> &[u8] {
        &self.as_bytes()[..BLOCK_HEADER_LEN - 4]
    }
    /// Whether the block carries a unit table ([`BLOCK_FLAG_UNITS`]).
    pub fn has_units(&self) -> bool {
        self.flags.get() & BLOCK_FLAG_UNITS != 0 && !self.is_ring()
    }
    /// Whether this is a ring block ([`RING_BLOCK_MAGIC`]).
    pub fn is_ring(&self) -> bool {
        self.magic.get() == RING_BLOCK_MAGIC
    }
    /// A ring block's capture interface.
    pub fn ring_iface(&self) -> u16 {
        u16::from_le_bytes([self.reserved[0], self.reserved[1]])
    }
    /// A ring block's filled ring bytes in `payload` (the block's `payload_len` bytes):
    /// `None` for a record block, or when the header does not add up.
    pub fn ring_bytes<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        if !self.is_ring() {
            return None;
        }
        let n = self.records_len.get() as usize;
        let end = RING_PAYLOAD_OFFSET.checked_add(n)?;
        if end > self.payload_len.get() as usize {
            return None;
        }
        payload.get(RING_PAYLOAD_OFFSET..end)
    }
    /// Bytes of records at the start of the payload (the whole payload in a block without
    /// a unit table; a ring block's filled ring bytes, see [`BlockHeader::ring_bytes`]).
    pub fn records_len(&self) -> usize {
        let p = self.payload_len.get() as usize;
        if self.is_ring() {
            (self.records_len.get() as usize).min(p.saturating_sub(RING_PAYLOAD_OFFSET))
        } else if self.has_units() {
            (self.records_len.get() as usize).min(p)
        } else {
            p
        }
    }
    /// The unit table at the end of `payload` (the block's `payload_len` bytes), when the
    /// header describes a consistent one: `None` for a block without units or with a
    /// table that does not add up (then the block is damaged as a whole).
    pub fn unit_table<'a>(&self, payload: &'a [u8]) -> Option<&'a [UnitEntry]> {
        if !self.has_units() {
            return None;
        }
        let shift = self.unit_shift;
        let n = self.unit_count as usize;
        let rl = self.records_len.get() as usize;
        if !(MIN_UNIT_SHIFT..=24).contains(&shift)
            || n > MAX_UNITS
            || units_for(rl, shift) != n
            || rl + n * UNIT_ENTRY_LEN != self.payload_len.get() as usize
        {
            return None;
        }
        let bytes = payload.get(rl..rl + n * UNIT_ENTRY_LEN)?;
        <[UnitEntry]>::ref_from_bytes(bytes).ok()
    }
}

impl SegmentHeader {
    /// The bytes `header_crc` covers.
    pub fn crc_input(&self) -> &[u8] {
        &self.as_bytes()[..SEGMENT_HEADER_LEN - 4]
    }
    pub fn ifaces(&self) -> &[IfaceEntry] {
        let n = (self.iface_count.get() as usize).min(MAX_IFACES);
        &self.ifaces[..n]
    }
}

impl StoreMeta {
    pub fn crc_input(&self) -> &[u8] {
        &self.as_bytes()[..STORE_META_LEN - 4]
    }
}

impl WriterState {
    pub fn crc_input(&self) -> &[u8] {
        &self.as_bytes()[..WRITER_STATE_LEN - 4]
    }
}

impl IfaceEntry {
    /// The name up to its first NUL, if it is UTF-8.
    pub fn name(&self) -> &str {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..end]).unwrap_or("?")
    }
    pub fn new(id: u16, linktype: u16, snaplen: u32, name: &str) -> IfaceEntry {
        let mut n = [0u8; 24];
        let bytes = name.as_bytes();
        let len = bytes.len().min(n.len());
        n[..len].copy_from_slice(&bytes[..len]);
        IfaceEntry {
            id: U16::new(id),
            linktype: U16::new(linktype),
            snaplen: U32::new(snaplen),
            name: n,
        }
    }
}

/// Reads a block header from the start of `bytes` (no checksum check).
pub fn block_header(bytes: &[u8]) -> Option<&BlockHeader> {
    BlockHeader::ref_from_prefix(bytes).ok().map(|(h, _)| h)
}

/// Reads a segment header from the start of `bytes` (no checksum check).
pub fn segment_header(bytes: &[u8]) -> Option<&SegmentHeader> {
    SegmentHeader::ref_from_prefix(bytes).ok().map(|(h, _)| h)
}

/// The chunk index entries of a header region (`region` starts at file offset 0).
pub fn chunk_index(region: &[u8], chunk_count: u32) -> Option<&[ChunkIndexEntry]> {
    let start = CHUNK_INDEX_OFFSET as usize;
    let len = chunk_count as usize * CHUNK_INDEX_ENTRY_LEN;
    let bytes = region.get(start..start.checked_add(len)?)?;
    <[ChunkIndexEntry]>::ref_from_bytes(bytes).ok()
}

/// One record inside a block payload.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// The record's header (for a frame of a ring block, made from its `tpacket3_hdr`).
    pub header: RecordHeader,
    pub data: &'a [u8],
    /// Offset of the record header inside the payload.
    pub offset: u32,
    /// Ordinal of the record in its block (0, 1, …; records lost to a damaged unit keep
    /// their numbers, so positions stay valid).
    pub ordinal: u32,
}

/// A record whose length runs past the payload: the payload is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedRecord {
    pub offset: u32,
}

/// Iterates the records of a block payload (its records part, see
/// [`BlockHeader::records_len`]). Stops (yielding one `Err`) at the first record that does
/// not fit; a payload whose crc matched never has one, but the inspector looks at damaged
/// blocks too.
///
/// [`Records::salvage`] walks a block some of whose units failed their crc: it yields only
/// records all of whose bytes lie in good units, and after a damaged unit resumes at the
/// first record the unit table names in a later good unit.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    /// A ring block's frames instead of records.
    ring: Option<RingFrames<'a>>,
    payload: &'a [u8],
    pos: usize,
    failed: bool,
    ordinal: u32,
    units: &'a [UnitEntry],
    shift: u8,
    bad: u64,
}

impl<'a> Records<'a> {
    pub fn new(payload: &'a [u8]) -> Self {
        Records {
            ring: None,
            payload,
            pos: 0,
            failed: false,
            ordinal: 0,
            units: &[],
            shift: MIN_UNIT_SHIFT,
            bad: 0,
        }
    }

    /// The records of `payload` outside the units whose bit is set in `bad` (unit `k` covers
    /// `[k << shift, (k + 1) << shift)`; `units` is the block's unit table).
    pub fn salvage(payload: &'a [u8], units: &'a [UnitEntry], shift: u8, bad: u64) -> Self {
        Records {
            units,
            shift,
            bad,
            ..Records::new(payload)
        }
    }

    /// The frames of a ring block (`ring`: its filled bytes, see
    /// [`BlockHeader::ring_bytes`]) as records of interface `iface`.
    pub fn ring(ring: &'a [u8], iface: u16) -> Self {
        Records {
            ring: Some(RingFrames::new(ring, iface)),
            ..Records::new(&[])
        }
    }

    /// Whether any byte of `[from, to)` lies in a damaged unit.
    fn touches_bad(&self, from: usize, to: usize) -> bool {
        if self.bad == 0 || to <= from {
            return false;
        }
        let (a, b) = (from >> self.shift, (to - 1) >> self.shift);
        (a..=b).any(|k| k >= 64 || self.bad & (1 << k) != 0)
    }

    /// Moves to the first record the unit table names after the unit holding `pos`, in a
    /// good unit; false when there is none.
    fn resync(&mut self) -> bool {
        let mut k = (self.pos >> self.shift) + 1;
        while k < self.units.len() {
            let e = &self.units[k];
            let start = k << self.shift;
            let first = e.first_record.get();
            if self.bad & (1 << k) == 0 && first != NO_RECORD {
                let first = first as usize;
                if first < start.max(self.pos + 1) || first >= start + (1 << self.shift) {
                    return false;
                }
                self.pos = first;
                self.ordinal = e.first_ordinal.get();
                return true;
            }
            k += 1;
        }
        false
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, MalformedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(r) = &mut self.ring {
            return r.next();
        }
        loop {
            if self.failed || self.pos >= self.payload.len() {
                return None;
            }
            let end = (self.pos + RECORD_HEADER_LEN).min(self.payload.len());
            if self.touches_bad(self.pos, end) {
                if !self.resync() {
                    self.pos = self.payload.len();
                }
                continue;
            }
            if self.bad != 0
                && let Ok((header, _)) = RecordHeader::ref_from_prefix(&self.payload[self.pos..])
            {
                let len = record_len(header.cap_len.get());
                if header.cap_len.get() <= MAX_CAPLEN && self.touches_bad(self.pos, self.pos + len)
                {
                    // The header is intact (its unit passed), so its length is right:
                    // this record is lost, the next one starts after it.
                    self.pos += len;
                    self.ordinal += 1;
                    continue;
                }
            }
            break;
        }
        let offset = self.pos as u32;
        let rest = &self.payload[self.pos..];
        let Ok((header, after)) = RecordHeader::ref_from_prefix(rest) else {
            self.failed = true;
            return Some(Err(MalformedRecord { offset }));
        };
        let cap = header.cap_len.get();
        let padded = record_len(cap) - RECORD_HEADER_LEN;
        if cap > MAX_CAPLEN || padded > after.len() {
            self.failed = true;
            return Some(Err(MalformedRecord { offset }));
        }
        self.pos += RECORD_HEADER_LEN + padded;
        let ordinal = self.ordinal;
        self.ordinal += 1;
        Some(Ok(Record {
            header: *header,
            data: &after[..cap as usize],
            offset,
            ordinal,
        }))
    }
}

/// Byte offsets of the kernel's TPACKET_V3 structures a ring block holds (`linux/if_packet.h`;
/// checked against libc's definitions by the capture's tests).
pub mod tpacket {
    /// `tpacket_block_desc`: `version u32, offset_to_priv u32, hdr.bh1 {block_status u32,
    /// num_pkts u32, offset_to_first_pkt u32, blk_len u32, seq_num u64, ts_first_pkt
    /// {sec u32, nsec u32}, ts_last_pkt}`.
    pub const DESC_BLOCK_STATUS: usize = 8;
    pub const DESC_NUM_PKTS: usize = 12;
    pub const DESC_FIRST_PKT: usize = 16;
    pub const DESC_BLK_LEN: usize = 20;
    pub const DESC_LEN: usize = 48;
    /// `tpacket3_hdr`.
    pub const NEXT_OFFSET: usize = 0;
    pub const SEC: usize = 4;
    pub const NSEC: usize = 8;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const VLAN_TCI: usize = 32;
    pub const VLAN_TPID: usize = 36;
    pub const HDR_LEN: usize = 48;
}

fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// The frames of a stored ring block, as records (see [`RING_BLOCK_MAGIC`]): the
/// `tp_next_offset` chain from `offset_to_first_pkt`, `num_pkts` frames. `Record::offset`
/// is the frame's offset in the ring block; the header is made from the `tpacket3_hdr`
/// (time, `tp_snaplen`, `tp_len`, the block's interface, [`record_flags::VLAN_RESTORED`]
/// and [`record_flags::TS_HARDWARE`] from `tp_status`). Stops with one `Err` at a frame
/// that points outside the block.
#[derive(Clone, Debug)]
pub struct RingFrames<'a> {
    ring: &'a [u8],
    iface: u16,
    remaining: u32,
    pos: usize,
    ordinal: u32,
    failed: bool,
}

impl<'a> RingFrames<'a> {
    pub fn new(ring: &'a [u8], iface: u16) -> Self {
        let num = rd_u32(ring, tpacket::DESC_NUM_PKTS);
        let first = rd_u32(ring, tpacket::DESC_FIRST_PKT);
        let blk_len = rd_u32(ring, tpacket::DESC_BLK_LEN);
        let (ring, remaining, pos, failed) = match (num, first, blk_len) {
            (Some(n), Some(f), Some(l)) => {
                (&ring[..(l as usize).min(ring.len())], n, f as usize, false)
            }
            _ => (ring, 0, 0, true),
        };
        RingFrames {
            ring,
            iface,
            remaining,
            pos,
            ordinal: 0,
            failed,
        }
    }

    fn frame(&self) -> Option<(Record<'a>, usize)> {
        let h = self
            .ring
            .get(self.pos..self.pos.checked_add(tpacket::HDR_LEN)?)?;
        let snap = rd_u32(h, tpacket::SNAPLEN)?;
        let mac = rd_u16(h, tpacket::MAC)? as usize;
        let status = rd_u32(h, tpacket::STATUS)?;
        let start = self.pos.checked_add(mac)?;
        if snap > MAX_CAPLEN || mac < tpacket::HDR_LEN {
            return None;
        }
        let data = self.ring.get(start..start.checked_add(snap as usize)?)?;
        let ts = u64::from(rd_u32(h, tpacket::SEC)?) * 1_000_000_000
            + u64::from(rd_u32(h, tpacket::NSEC)?);
        let mut flags = 0;
        if status & RING_STATUS_VLAN_RESTORED != 0 {
            flags |= record_flags::VLAN_RESTORED;
        }
        if status & RING_STATUS_TS_HARDWARE != 0 {
            flags |= record_flags::TS_HARDWARE;
        }
        let header = RecordHeader {
            ts_ns: U64::new(ts),
            cap_len: U32::new(snap),
            wire_len: U32::new(rd_u32(h, tpacket::LEN)?.max(snap)),
            iface: U16::new(self.iface),
            flags: U16::new(flags),
        };
        let rec = Record {
            header,
            data,
            offset: self.pos as u32,
            ordinal: self.ordinal,
        };
        Some((rec, rd_u32(h, tpacket::NEXT_OFFSET)? as usize))
    }
}

impl<'a> Iterator for RingFrames<'a> {
    type Item = Result<Record<'a>, MalformedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.remaining == 0 {
            return None;
        }
        match self.frame() {
            Some((rec, next)) => {
                self.remaining -= 1;
                self.ordinal += 1;
                if self.remaining > 0 {
                    if next == 0 {
                        // The next frame has nowhere to be: reported at the next call.
                        self.pos = usize::MAX;
                    } else {
                        self.pos = self.pos.saturating_add(next);
                    }
                }
                Some(Ok(rec))
            }
            None => {
                self.failed = true;
                Some(Err(MalformedRecord {
                    offset: self.pos.min(u32::MAX as usize) as u32,
                }))
            }
        }
    }
}

/// Builds TPACKET_V3 ring blocks the way the kernel lays them out (for tests of readers
/// and writers without a packet socket).
#[doc(hidden)]
pub mod testing {
    use super::tpacket as t;

    /// One frame to put in a block.
    #[derive(Clone, Copy, Debug)]
    pub struct Frame<'a> {
        pub ts_ns: u64,
        pub data: &'a [u8],
        pub wire_len: u32,
        pub status: u32,
    }

    /// Where the kernel puts the MAC header of a frame (`tpacket_rcv` for a SOCK_RAW
    /// socket and a 14-byte link header: `TPACKET_ALIGN(68 + 16) - 14`).
    pub const MAC_OFFSET: usize = 82;

    /// Lays `frames` out in `buf` as the kernel fills a TPACKET_V3 block (descriptor,
    /// frames at 16-byte aligned offsets); returns `blk_len`, or `None` if they do not fit.
    pub fn ring_block(buf: &mut [u8], frames: &[Frame<'_>]) -> Option<usize> {
        buf.fill(0);
        let put = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let mut off = t::DESC_LEN;
        let mut prev: Option<usize> = None;
        for f in frames {
            let end = off + MAC_OFFSET + f.data.len();
            if end > buf.len() {
                return None;
            }
            if let Some(p) = prev {
                put(buf, p + t::NEXT_OFFSET, (off - p) as u32);
            }
            put(buf, off + t::SEC, (f.ts_ns / 1_000_000_000) as u32);
            put(buf, off + t::NSEC, (f.ts_ns % 1_000_000_000) as u32);
            put(buf, off + t::SNAPLEN, f.data.len() as u32);
            put(buf, off + t::LEN, f.wire_len);
            put(buf, off + t::STATUS, f.status | 1);
            buf[off + t::MAC..off + t::MAC + 2].copy_from_slice(&(MAC_OFFSET as u16).to_le_bytes());
            buf[off + MAC_OFFSET..end].copy_from_slice(f.data);
            prev = Some(off);
            off = (end + 15) & !15;
        }
        let blk_len = prev.map_or(t::DESC_LEN, |_| off);
        put(buf, 0, 1);
        put(buf, t::DESC_BLOCK_STATUS, 1);
        put(buf, t::DESC_NUM_PKTS, frames.len() as u32);
        put(buf, t::DESC_FIRST_PKT, t::DESC_LEN as u32);
        put(buf, t::DESC_BLK_LEN, blk_len as u32);
        Some(blk_len)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn geometry_of_the_default_ring() {
        let g = Geometry::new(64 << 20, 1 << 20).unwrap();
        assert_eq!(g.chunk_count, 64);
        assert_eq!(g.region_len, 4096);
        assert_eq!(g.chunk_range(0), (4096, 1 << 20));
        assert_eq!(g.chunk_range(63), (63 << 20, 64 << 20));
        assert_eq!(g.chunk_of((5 << 20) + 7), 5);
        assert!(g.max_caplen() >= 65535);
        assert_eq!(
            Geometry::new(64 << 20, 3 << 20),
            Err(GeometryError::ChunkSizeNotPowerOfTwo)
        );
        assert_eq!(
            Geometry::new((64 << 20) + 4096, 1 << 20),
            Err(GeometryError::SegmentSizeNotMultipleOfChunk)
        );
        assert_eq!(
            Geometry::new(1 << 20, 1 << 20),
            Err(GeometryError::SegmentTooSmall)
        );
        // 2 GiB of 64 KiB chunks: the index (32768 × 32 B) would not fit in chunk 0.
        assert!(Geometry::new(1 << 31, 1 << 16).is_err());
        assert!(Geometry::new(1 << 31, 1 << 20).is_ok());
        // Past 2 GiB an offset no longer fits a u32 position (4 GiB wrapped to 0).
        assert_eq!(
            Geometry::new(1 << 32, 1 << 20),
            Err(GeometryError::SegmentTooLarge)
        );
        assert_eq!(
            Geometry::new((1 << 31) + (1 << 20), 1 << 20),
            Err(GeometryError::SegmentTooLarge)
        );
    }

    #[test]
    fn record_lengths_are_compact() {
        // 64-byte packet: 20-byte header + 64 bytes = 84 on disk (pcap: 16 + 64 = 80).
        assert_eq!(record_len(64), 84);
        assert_eq!(record_len(61), 84);
        assert_eq!(record_len(0), 20);
        assert_eq!(record_len(1514), 1536);
    }

    #[test]
    fn records_round_trip_and_reject_overruns() {
        let mut buf = [0u8; 128];
        let h = RecordHeader {
            ts_ns: U64::new(42),
            cap_len: U32::new(5),
            wire_len: U32::new(60),
            iface: U16::new(3),
            flags: U16::new(record_flags::IMPORTED),
        };
        buf[..20].copy_from_slice(h.as_bytes());
        buf[20..25].copy_from_slice(b"hello");
        let h2 = RecordHeader {
            cap_len: U32::new(2),
            ..h
        };
        buf[28..48].copy_from_slice(h2.as_bytes());
        buf[48..50].copy_from_slice(b"ok");
        let recs: Vec<_> = Records::new(&buf[..52]).collect();
        assert_eq!(recs.len(), 2);
        let r0 = recs[0].unwrap();
        assert_eq!(r0.data, b"hello");
        assert_eq!(r0.header.wire_len.get(), 60);
        assert_eq!(recs[1].unwrap().data, b"ok");
        assert_eq!(recs[1].unwrap().offset, 28);
        // Cut the second record's data: malformed, and iteration stops.
        let recs: Vec<_> = Records::new(&buf[..49]).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].unwrap_err(), MalformedRecord { offset: 28 });
        // Garbage lengths never panic.
        let junk = [0xffu8; 64];
        assert!(Records::new(&junk).next().unwrap().is_err());
    }

    /// A payload of `n` records of `cap` bytes and its unit table (what the writer builds).
    fn payload_with_units(n: u32, cap: u32, shift: u8) -> (Vec<u8>, Vec<UnitEntry>) {
        let mut p = Vec::new();
        let mut units: Vec<UnitEntry> = Vec::new();
        for i in 0..n {
            let off = p.len();
            let k = off >> shift;
            while units.len() <= k {
                let first = units.len() == k;
                units.push(UnitEntry {
                    crc: U32::new(0),
                    first_record: U32::new(if first { off as u32 } else { NO_RECORD }),
                    first_ordinal: U32::new(if first { i } else { 0 }),
                });
            }
            let h = RecordHeader {
                ts_ns: U64::new(i as u64),
                cap_len: U32::new(cap),
                ..Default::default()
            };
            p.extend_from_slice(h.as_bytes());
            p.resize(off + record_len(cap), i as u8);
        }
        while units.len() < units_for(p.len(), shift) {
            units.push(UnitEntry {
                first_record: U32::new(NO_RECORD),
                ..Default::default()
            });
        }
        (p, units)
    }

    #[test]
    fn salvage_skips_only_the_records_touching_a_damaged_unit() {
        // 4 KiB units, 100-byte records (+20 header = 120): unit 1 = bytes 4096..8192.
        let (p, units) = payload_with_units(200, 100, 12);
        assert_eq!(units.len(), units_for(200 * 120, 12));
        let all: Vec<u32> = Records::salvage(&p, &units, 12, 0)
            .map(|r| r.unwrap().ordinal)
            .collect();
        assert_eq!(all, (0..200).collect::<Vec<_>>());
        let got: Vec<u32> = Records::salvage(&p, &units, 12, 1 << 1)
            .map(|r| r.unwrap().ordinal)
            .collect();
        // Records 34 (4080..4200) through 68 (8160..8280) touch unit 1.
        let lost: Vec<u32> = (0..200).filter(|i| !got.contains(i)).collect();
        assert_eq!(lost, (34..=68).collect::<Vec<_>>());
        for r in Records::salvage(&p, &units, 12, 1 << 1) {
            let r = r.unwrap();
            assert_eq!(r.header.ts_ns.get(), r.ordinal as u64);
        }
        // The first and last units.
        let last = (units.len() - 1) as u32;
        let got = Records::salvage(&p, &units, 12, 1 | (1 << last)).count();
        assert!(got > 100 && got < 200, "{got}");
        // Records longer than a unit: a unit without a record start is skipped over.
        let (p, units) = payload_with_units(10, 9000, 12);
        assert!(units.iter().any(|u| u.first_record.get() == NO_RECORD));
        let got: Vec<u32> = Records::salvage(&p, &units, 12, 1 << 5)
            .map(|r| r.unwrap().ordinal)
            .collect();
        // Unit 5 (20480..24576) lies in record 2 (18040..27060).
        assert_eq!(got, [0, 1, 3, 4, 5, 6, 7, 8, 9]);
        // Every unit bad: nothing, no panic.
        assert_eq!(Records::salvage(&p, &units, 12, u64::MAX).count(), 0);
    }

    #[test]
    fn unit_shift_keeps_a_chunk_within_max_units() {
        assert_eq!(unit_shift_for(1 << 20), 14);
        assert_eq!(unit_shift_for(64 << 10), MIN_UNIT_SHIFT);
        assert_eq!(unit_shift_for(16 << 20), 18);
        for c in [64 << 10, 1 << 20, 16 << 20] {
            assert!(units_for(c as usize, unit_shift_for(c)) <= MAX_UNITS);
        }
    }

    #[test]
    fn ring_frames_are_read_as_records_and_bad_chains_stop() {
        let a = [1u8; 60];
        let b = [2u8; 1500];
        let frames = [
            testing::Frame {
                ts_ns: 5_000_000_007,
                data: &a,
                wire_len: 60,
                status: 0,
            },
            testing::Frame {
                ts_ns: 6_000_000_000,
                data: &b,
                wire_len: 1600,
                status: RING_STATUS_VLAN_RESTORED | RING_STATUS_TS_HARDWARE,
            },
        ];
        let mut buf = [0u8; 4096];
        let len = testing::ring_block(&mut buf, &frames).unwrap();
        let recs: Vec<_> = Records::ring(&buf[..len], 3).map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].data, &a);
        assert_eq!(recs[0].header.ts_ns.get(), 5_000_000_007);
        assert_eq!(recs[0].header.iface.get(), 3);
        assert_eq!(recs[0].header.flags.get(), 0);
        assert_eq!(recs[1].data, &b);
        assert_eq!(recs[1].ordinal, 1);
        assert_eq!(recs[1].header.wire_len.get(), 1600);
        assert_eq!(
            recs[1].header.flags.get(),
            record_flags::VLAN_RESTORED | record_flags::TS_HARDWARE
        );
        // Cut short: the second frame points outside; one error, then the end.
        let r: Vec<_> = Records::ring(&buf[..200], 3).collect();
        assert!(r[0].is_ok() && r[1].is_err() && r.len() == 2);
        // A zero next offset with frames left.
        buf[tpacket::DESC_LEN..tpacket::DESC_LEN + 4].fill(0);
        let r: Vec<_> = Records::ring(&buf[..len], 3).collect();
        assert!(r[0].is_ok() && r[1].is_err() && r.len() == 2);
        // Garbage never panics.
        assert!(Records::ring(&[0xff; 300], 0).count() <= 2);
        assert_eq!(Records::ring(&[0; 10], 0).count(), 0);
    }

    #[test]
    fn header_views_check_length() {
        assert!(block_header(&[0u8; 63]).is_none());
        assert!(block_header(&[0u8; 64]).is_some());
        assert!(segment_header(&[0u8; 16]).is_none());
        let region = [0u8; 4096];
        assert_eq!(chunk_index(&region, 64).unwrap().len(), 64);
        assert!(chunk_index(&region, 200).is_none());
        let e = IfaceEntry::new(1, LINKTYPE_ETHERNET, 65535, "eth1");
        assert_eq!(e.name(), "eth1");
    }
}
