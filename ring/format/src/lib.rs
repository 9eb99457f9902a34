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
//! - **Blocks** are the unit of integrity. A block starts at a 4 KiB aligned offset inside a
//!   chunk, holds whole records, and carries two crc32c: one over its header, one over its
//!   payload. A block is written once per segment generation and never rewritten. A writer
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

/// Bumped on any change old readers cannot read.
pub const FORMAT_VERSION: u16 = 1;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"KURKSEG1";
/// First 8 bytes of `store.meta`.
pub const STORE_MAGIC: [u8; 8] = *b"KURKSTO1";
/// First 8 bytes of `writer.state`.
pub const WRITER_STATE_MAGIC: [u8; 8] = *b"KURKWST1";
/// First 4 bytes of every block header (`KBLK`).
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"KBLK");

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
    pub reserved: [u8; 12],
    pub header_crc: U32,
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
        let room =
            self.chunk_size - self.region_len - BLOCK_HEADER_LEN as u64 - RECORD_HEADER_LEN as u64;
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
    pub header: &'a RecordHeader,
    pub data: &'a [u8],
    /// Offset of the record header inside the payload.
    pub offset: u32,
}

/// A record whose length runs past the payload: the payload is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedRecord {
    pub offset: u32,
}

/// Iterates the records of a block payload. Stops (yielding one `Err`) at the first record
/// that does not fit; a payload whose crc matched never has one, but the inspector looks
/// at damaged blocks too.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    payload: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Records<'a> {
    pub fn new(payload: &'a [u8]) -> Self {
        Records {
            payload,
            pos: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, MalformedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.payload.len() {
            return None;
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
        Some(Ok(Record {
            header,
            data: &after[..cap as usize],
            offset,
        }))
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
