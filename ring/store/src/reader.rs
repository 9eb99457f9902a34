//! The reader: segments read into memory, packets handed out without copying them again.
//!
//! A reader takes no lock and may run while the writer writes. It lists the ring from the
//! slot headers (sealed segments) and a walk over block headers (the open segment, up to
//! its last complete block), then reads segments (O_DIRECT into one reused buffer for
//! scans; only the chunks a time range needs for `scan_time`). Nothing is memory-mapped:
//! a sector the disk cannot read would kill a process that touches it through a mapping
//! (SIGBUS), and the analyzer with it at every restart; read, it is zeroed and reported as
//! damage like any corrupt block. Every block's `seq`, header crc
//! and payload crc are checked before a packet from it is returned: a torn, unsealed or
//! corrupt block is never returned; it is reported as [`Damage`] (segment and offset) and
//! skipped, and the rest stays readable. A segment the writer overwrote while it was being
//! read is reported as lost, not as damage.

use crate::error::StoreError;
use crate::layout::{self, Paths, RingGeometry};
use crate::open_read::OpenRead;
use crate::segment::{self, BlockEvent, BlockScan, SlotState};
use crate::sys::{AlignedBuf, read_what_can_be_read};
use kuroko_ring_format::{self as fmt, ChunkIndexEntry, Geometry, IfaceEntry, Records};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// A durable place in the store: the packet `record` (0-based) of the block at byte
/// `offset` of the segment with sequence number `seq`.
///
/// Stable for as long as that segment is not overwritten; ordered like the write order.
/// `Position::ORIGIN` means "the oldest packet still stored". Serialises with serde, or as
/// text `seq:offset:record` (`Display` / `FromStr`), or as 16 bytes (`to_bytes`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    pub seq: u64,
    pub offset: u32,
    pub record: u32,
}

impl Position {
    pub const ORIGIN: Position = Position {
        seq: 0,
        offset: 0,
        record: 0,
    };

    /// The position of the packet after this one (resume here after processing this one).
    pub fn next(self) -> Position {
        Position {
            record: self.record + 1,
            ..self
        }
    }

    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..12].copy_from_slice(&self.offset.to_le_bytes());
        b[12..].copy_from_slice(&self.record.to_le_bytes());
        b
    }

    pub fn from_bytes(b: [u8; 16]) -> Position {
        Position {
            seq: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            offset: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
            record: u32::from_le_bytes(b[12..].try_into().expect("4 bytes")),
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.seq, self.offset, self.record)
    }
}

impl std::str::FromStr for Position {
    type Err = String;
    fn from_str(s: &str) -> Result<Position, String> {
        let mut it = s.trim().split(':');
        let bad = || format!("`{s}` is not a store position (seq:offset:record)");
        let mut next = || it.next().ok_or_else(bad);
        let seq = next()?.parse().map_err(|_| bad())?;
        let offset = next()?.parse().map_err(|_| bad())?;
        let record = next()?.parse().map_err(|_| bad())?;
        Ok(Position {
            seq,
            offset,
            record,
        })
    }
}

/// One stored packet, borrowed from the segment's bytes in memory.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    pub ts_ns: u64,
    pub iface: u16,
    /// pcap link type of `iface` as the packet's segment names it (Ethernet when the
    /// segment does not name the interface): `data` starts with that link header.
    pub linktype: u16,
    pub wire_len: u32,
    pub flags: u16,
    pub data: &'a [u8],
    pub pos: Position,
}

/// What is wrong at one place of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DamageKind {
    /// A block whose payload fails its crc32c: its packets are skipped.
    PayloadChecksum,
    /// Units of a block's records that fail their crc32c (format version 2, see
    /// `BLOCK_FLAG_UNITS` in FORMAT.md): the packets touching them are skipped, the rest of
    /// the block is read.
    UnitChecksum,
    /// Bytes inside a sealed segment's used area with no valid block header.
    BlockHeader,
    /// A record inside a block that passed its checksum runs past the block (a writer bug
    /// or a crc collision); the rest of that block is skipped.
    MalformedRecord,
}

/// A damaged place: which segment file, where, how many bytes were skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub file: PathBuf,
    pub slot: u32,
    pub seq: u64,
    pub offset: u64,
    pub len: u64,
    pub kind: DamageKind,
    /// Packets skipped there, when the place says (a block header that is intact); 0 for
    /// bytes without a valid block header (unknown).
    pub packets: u64,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            DamageKind::PayloadChecksum => "block fails its checksum",
            DamageKind::UnitChecksum => "part of a block fails its checksum",
            DamageKind::BlockHeader => "no valid block header",
            DamageKind::MalformedRecord => "malformed record",
        };
        write!(
            f,
            "{} (segment seq {}): {what} at offset {} ({} bytes skipped",
            self.file.display(),
            self.seq,
            self.offset,
            self.len
        )?;
        if self.packets > 0 {
            write!(f, ", {} packets lost", self.packets)?;
        }
        f.write_str(")")
    }
}

/// One segment of the ring as the reader sees it.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentInfo {
    pub slot: u32,
    pub seq: u64,
    /// Still being written (or left open by a writer that stopped).
    pub open: bool,
    /// Sealed by recovery after a crash.
    pub recovered: bool,
    /// The disk failed a write or fdatasync of this segment (`SEG_FLAG_WRITE_ERROR`): its
    /// failed blocks are in `damaged_blocks`, and after a failed fdatasync any block may be
    /// missing. A damaged segment.
    pub write_error: bool,
    /// Written through lanes (`SEG_FLAG_LANES`): blocks in time order, the segment not.
    pub lanes: bool,
    pub packets: u64,
    /// ns; 0 when the segment holds no packet.
    pub first_ts: u64,
    pub last_ts: u64,
    pub record_bytes: u64,
    /// Offset just past the last block.
    pub used_bytes: u64,
    pub blocks: u32,
    pub damaged_blocks: u32,
    pub opened_wall_ns: u64,
    pub sealed_wall_ns: u64,
    #[serde(skip)]
    pub ifaces: Vec<IfaceEntry>,
    /// The chunk (time) index of a sealed segment.
    #[serde(skip)]
    pub index: Option<Vec<ChunkIndexEntry>>,
}

impl SegmentInfo {
    /// The link type the segment names for interface `iface`; Ethernet when it names none
    /// (live capture is Ethernet; stores from before link types were recorded).
    pub fn linktype_of(&self, iface: u16) -> u16 {
        self.ifaces
            .iter()
            .find(|i| i.id.get() == iface)
            .map_or(fmt::LINKTYPE_ETHERNET, |i| i.linktype.get())
    }

    /// Whether the segment may hold a packet with a time in `[from, to)`.
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.packets > 0 && self.first_ts < to && self.last_ts >= from
    }
}

/// A segment a scan read although the disk failed a write or fdatasync of it
/// (`SEG_FLAG_WRITE_ERROR`, [`SegmentInfo::write_error`]). Its blocks that read back intact
/// are handed out, but after a failed fdatasync nothing says they reached the disk's
/// stable storage: they may not survive a power cut, and blocks may be missing. Consumers
/// that promise completeness (a pcap export) must say so, as they do for [`Damage`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WriteErrorSegment {
    pub file: PathBuf,
    pub slot: u32,
    pub seq: u64,
    /// The segment's packet times (ns), as its header or walk says.
    pub first_ts: u64,
    pub last_ts: u64,
    /// Packets this scan handed out from it.
    pub packets_read: u64,
    /// Blocks its writer knew were lost (failed writes; 0 when only an fdatasync failed).
    pub damaged_blocks: u32,
}

impl std::fmt::Display for WriteErrorSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (segment seq {}): the disk failed a write or fdatasync of this segment",
            self.file.display(),
            self.seq
        )?;
        if self.damaged_blocks > 0 {
            write!(f, " ({} blocks lost)", self.damaged_blocks)?;
        }
        write!(
            f,
            "; its {} packets read may not survive a power cut",
            self.packets_read
        )
    }
}

/// Bytes [`StoreReader::verify_segment`] reads at a time (and hands to its pacer).
pub const VERIFY_PIECE: u64 = 1 << 20;

/// What [`StoreReader::verify_segment`] found in one sealed segment.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Bytes read.
    pub bytes: u64,
    /// Packets whose checksums passed.
    pub packets: u64,
    /// Bytes the disk could not read (zeroed; they show up as damage).
    pub unreadable_bytes: u64,
    /// Damaged places (recorded in `segments/damage.tsv`).
    pub damage: Vec<Damage>,
    /// The writer overwrote the segment while it was read: nothing recorded.
    pub overwritten: bool,
}

/// The result of a scan.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    /// Packets handed to the callback.
    pub packets: u64,
    /// Where to resume: after the last packet handed out (or where the store ends).
    pub next: Position,
    pub damage: Vec<Damage>,
    /// Segments that were overwritten before they could be read (the starting position
    /// was too old, or the writer overtook the scan). Counted from sequence numbers, so it
    /// is an upper bound: after a crash the next writer skips the numbers it had reserved
    /// (see `store.meta` in FORMAT.md), and skipped numbers count here too.
    pub lost_segments: u64,
    /// The callback asked to stop.
    pub stopped: bool,
    /// Segments read whose writes or fdatasyncs the disk failed (see
    /// [`WriteErrorSegment`]), once each, in read order.
    pub write_error_segments: Vec<WriteErrorSegment>,
}

impl ScanReport {
    /// Notes that `packets` were read from segment `info` (a no-op unless the disk failed
    /// a write or fdatasync of it).
    fn note_segment(&mut self, info: &SegmentInfo, path: &Path, packets: u64) {
        if !info.write_error {
            return;
        }
        if let Some(w) = self
            .write_error_segments
            .iter_mut()
            .find(|w| w.seq == info.seq)
        {
            w.packets_read += packets;
            return;
        }
        self.write_error_segments.push(WriteErrorSegment {
            file: path.to_path_buf(),
            slot: info.slot,
            seq: info.seq,
            first_ts: info.first_ts,
            last_ts: info.last_ts,
            packets_read: packets,
            damaged_blocks: info.damaged_blocks,
        });
    }
}

/// Reads the store in a data directory.
pub struct StoreReader {
    paths: Paths,
    ring: RingGeometry,
    segments: Vec<SegmentInfo>,
    /// The buffer [`StoreReader::scan`] reads sealed segments into, kept between segments.
    scan_buf: std::sync::Mutex<Option<AlignedBuf>>,
    /// The open segment as read by the last `refresh` (see `open_read`).
    open_read: std::sync::Mutex<Option<OpenRead>>,
    /// Slots whose header cannot be read (see [`StoreReader::damaged_slots`]).
    unreadable: Vec<u32>,
    /// Segment bytes read by `map` and the time-range scans (see
    /// [`StoreReader::chunk_bytes_read`]).
    chunk_reads: std::sync::atomic::AtomicU64,
}

impl StoreReader {
    /// Opens the store in data directory `data` (fails with `NotAStore` if there is none).
    pub fn open(data: &Path) -> Result<StoreReader, StoreError> {
        let (paths, ring) = layout::open_existing(data)?;
        let mut r = StoreReader {
            paths,
            ring,
            segments: Vec::new(),
            scan_buf: std::sync::Mutex::new(None),
            open_read: std::sync::Mutex::new(None),
            unreadable: Vec::new(),
            chunk_reads: std::sync::atomic::AtomicU64::new(0),
        };
        r.refresh()?;
        Ok(r)
    }

    pub fn ring(&self) -> &RingGeometry {
        &self.ring
    }

    pub fn data_dir(&self) -> &Path {
        &self.paths.data
    }

    pub(crate) fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Re-reads what can have changed since the last call (call it to see new packets).
    ///
    /// The writer fills slots in ring order, so after the first call only these are probed
    /// (header + first block header, two small reads): every segment that was open, and the
    /// slots from the newest one onwards up to the first whose sealed generation (or empty
    /// state) is unchanged: the writer has not reached it. A writer that went round the
    /// whole ring changed every slot, so the walk then probes them all. Sealed segments
    /// seen before keep their header and index. Open segments are walked again.
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        let g = self.ring.geometry;
        let n = self.ring.slot_count;
        let paths = self.paths.clone();
        let ring = self.ring;
        let open_read = &self.open_read;
        let read_slot = |p: &segment::SlotProbe| -> Result<Option<SegmentInfo>, StoreError> {
            let slot = p.slot;
            let path = paths.slot(slot);
            let info = match p.state {
                SlotState::Missing | SlotState::Free | SlotState::Damaged => None,
                SlotState::Sealed => {
                    let h = p.header.expect("sealed implies a valid header");
                    let index = read_index(&path, &g, &h);
                    Some(SegmentInfo {
                        slot,
                        seq: p.seq,
                        open: false,
                        recovered: h.flags.get() & fmt::SEG_FLAG_RECOVERED != 0,
                        write_error: h.flags.get() & fmt::SEG_FLAG_WRITE_ERROR != 0,
                        lanes: h.flags.get() & fmt::SEG_FLAG_LANES != 0,
                        packets: h.packets.get(),
                        first_ts: h.first_ts.get(),
                        last_ts: h.last_ts.get(),
                        record_bytes: h.record_bytes.get(),
                        used_bytes: h.used_bytes.get(),
                        blocks: h.blocks.get(),
                        damaged_blocks: h.damaged_blocks.get(),
                        opened_wall_ns: h.opened_wall_ns.get(),
                        sealed_wall_ns: h.sealed_wall_ns.get(),
                        ifaces: h.ifaces().to_vec(),
                        index,
                    })
                }
                SlotState::Open => {
                    let cached = open_read.lock().ok().and_then(|mut c| c.take());
                    let read = OpenRead::refresh(cached, &path, &g, slot, p.seq)
                        .map_err(|e| StoreError::io(&path, e))?;
                    let t = segment::totals(read.bytes(), &g, p.seq);
                    if let Ok(mut c) = open_read.lock() {
                        *c = Some(read);
                    }
                    Some(SegmentInfo {
                        slot,
                        seq: p.seq,
                        open: true,
                        recovered: false,
                        write_error: p
                            .header
                            .is_some_and(|h| h.flags.get() & fmt::SEG_FLAG_WRITE_ERROR != 0),
                        lanes: p
                            .header
                            .is_some_and(|h| h.flags.get() & fmt::SEG_FLAG_LANES != 0),
                        packets: t.packets,
                        first_ts: t.first_ts,
                        last_ts: t.last_ts,
                        record_bytes: t.record_bytes,
                        used_bytes: t.end,
                        blocks: t.blocks,
                        damaged_blocks: t.damaged_blocks,
                        opened_wall_ns: p.header.map_or(0, |h| h.opened_wall_ns.get()),
                        sealed_wall_ns: 0,
                        ifaces: p.header.map(|h| h.ifaces().to_vec()).unwrap_or_default(),
                        index: None,
                    })
                }
            };
            Ok(info)
        };
        // The previous view, per slot: the cache.
        let mut by_slot: Vec<Option<SegmentInfo>> = (0..n).map(|_| None).collect();
        let newest = self.segments.last().map(|s| s.slot);
        let had_view = newest.is_some();
        for s in std::mem::take(&mut self.segments) {
            if let Some(e) = by_slot.get_mut(s.slot as usize) {
                *e = Some(s);
            }
        }
        // Probes `slot`; re-reads it unless it holds the same sealed generation (or is
        // still empty). Returns whether it was unchanged.
        let mut unreadable = std::mem::take(&mut self.unreadable);
        let mut probe_slot = |slot: u32, by_slot: &mut Vec<Option<SegmentInfo>>| {
            let p = segment::probe(&paths, &ring, slot);
            unreadable.retain(|&s| s != slot);
            if p.state == SlotState::Damaged {
                unreadable.push(slot);
            }
            let unchanged = match (&by_slot[slot as usize], p.state) {
                (Some(c), SlotState::Sealed) => !c.open && c.seq == p.seq,
                (None, SlotState::Missing | SlotState::Free) => true,
                _ => false,
            };
            if !unchanged {
                by_slot[slot as usize] = read_slot(&p)?;
            }
            Ok::<bool, StoreError>(unchanged)
        };
        match newest {
            Some(start) if had_view => {
                let open: Vec<u32> = by_slot
                    .iter()
                    .flatten()
                    .filter(|s| s.open)
                    .map(|s| s.slot)
                    .collect();
                let mut probed = vec![false; n as usize];
                for slot in open {
                    probe_slot(slot, &mut by_slot)?;
                    probed[slot as usize] = true;
                }
                for k in 0..n {
                    let slot = (start + k) % n;
                    if probed[slot as usize] {
                        continue;
                    }
                    probed[slot as usize] = true;
                    if probe_slot(slot, &mut by_slot)? && slot != start {
                        break;
                    }
                }
            }
            _ => {
                for slot in 0..n {
                    probe_slot(slot, &mut by_slot)?;
                }
            }
        }
        let mut segs: Vec<SegmentInfo> = by_slot.into_iter().flatten().collect();
        segs.sort_by_key(|s| s.seq);
        self.segments = segs;
        unreadable.sort_unstable();
        self.unreadable = unreadable;
        Ok(())
    }

    /// Slots whose header (or first block header) could not be read at the last `refresh`
    /// (an unreadable sector): damaged, whatever they held is not in [`Self::segments`].
    pub fn damaged_slots(&self) -> &[u32] {
        &self.unreadable
    }

    /// Segments holding data, oldest (lowest `seq`) first.
    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// Just past the newest readable packet: the writer's head as far as readers can see.
    /// `lag(pos)` measures how far a consumer at `pos` is behind it.
    pub fn head(&self) -> Position {
        match self.segments.last() {
            Some(s) => Position {
                seq: s.seq,
                offset: s.used_bytes as u32,
                record: 0,
            },
            None => Position::ORIGIN,
        }
    }

    /// Bytes of stored records between `pos` and the head (approximate inside a segment:
    /// counted in whole blocks).
    pub fn lag_bytes(&self, pos: Position) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.seq >= pos.seq)
            .map(|s| {
                if s.seq == pos.seq {
                    s.used_bytes.saturating_sub(pos.offset as u64)
                } else {
                    s.used_bytes
                }
            })
            .sum()
    }

    /// Segment bytes this reader has read through [`StoreReader::map`],
    /// [`StoreReader::scan_time`] and [`StoreReader::scan_time_cached`] (not the sequential
    /// [`StoreReader::scan`]): what a time-range export costs in reads.
    pub fn chunk_bytes_read(&self) -> u64 {
        self.chunk_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One segment's used bytes (as of the last `refresh`), read into memory.
    ///
    /// Read, not memory-mapped: a sector the disk cannot read would kill the process with
    /// SIGBUS when a mapping touches it (and the analyzer again at every restart). Here it
    /// is zeroed instead, fails its block checksums, and shows up as damage at its offset
    /// while the rest of the segment reads normally.
    pub fn map(&self, info: &SegmentInfo) -> Result<SegmentMap, StoreError> {
        self.read_segment(info, None)
    }

    /// [`StoreReader::map`] of only chunks `chunks` (the rest of the buffer stays zeroed and
    /// must not be walked).
    fn read_segment(
        &self,
        info: &SegmentInfo,
        chunks: Option<&[u32]>,
    ) -> Result<SegmentMap, StoreError> {
        let mut map = self.empty_map(info);
        self.fill(&mut map, chunks)?;
        Ok(map)
    }

    /// A zeroed, segment-sized map of `info` with nothing read into it yet.
    fn empty_map(&self, info: &SegmentInfo) -> SegmentMap {
        let g = self.ring.geometry;
        SegmentMap {
            info: info.clone(),
            geometry: g,
            path: self.paths.slot(info.slot),
            map: Backing {
                buf: AlignedBuf::lazy(g.segment_size as usize),
                len: info.used_bytes.min(g.segment_size) as usize,
            },
        }
    }

    /// Reads chunks `chunks` (all of the used part when `None`) of `map`'s segment into
    /// `map`. What cannot be read stays zeroed (see [`StoreReader::map`]).
    fn fill(&self, map: &mut SegmentMap, chunks: Option<&[u32]>) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let g = self.ring.geometry;
        let file = File::open(&map.path).map_err(|e| StoreError::io(&map.path, e))?;
        let len = map.map.len as u64;
        let ranges: Vec<(u64, u64)> = match chunks {
            None => vec![(0, len)],
            Some(cs) => cs
                .iter()
                .map(|&c| {
                    let (start, end) = g.chunk_range(c);
                    (start, end.min(len))
                })
                .filter(|(start, end)| start < end)
                .collect(),
        };
        for (start, end) in ranges {
            read_what_can_be_read(
                &mut map.map.buf.as_mut_slice()[start as usize..end as usize],
                start,
                |b, off| file.read_exact_at(b, off),
            );
            self.chunk_reads
                .fetch_add(end - start, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// A sealed segment for a sequential scan: its used part read with O_DIRECT into the
    /// reader's reusable aligned buffer. Pages of a memory map are faulted in from disk
    /// one readahead window at a time, each into a freshly allocated page-cache page; the
    /// first code to touch them (the block checksum) pays for it, several times the
    /// checksum itself. Reading straight into one buffer skips the page cache (the
    /// writer's O_DIRECT writes never fill it anyway). The open segment is read up to its
    /// end as of the last `refresh` (blocks still in flight fail their checksum and end
    /// the walk there). File systems that refuse O_DIRECT (tmpfs) are read through the page
    /// cache ([`StoreReader::map`]).
    ///
    /// Only bytes from `start` (the block the scan resumes at) are read: a reader that
    /// follows the open segment reads what is new, not the whole segment again. The walk
    /// never looks before `start`.
    fn read_for_scan(&self, info: &SegmentInfo, start: u64) -> Result<SegmentMap, StoreError> {
        use std::os::unix::fs::{FileExt, OpenOptionsExt};
        let size = self.ring.geometry.segment_size;
        let len = info
            .used_bytes
            .div_ceil(4096)
            .saturating_mul(4096)
            .min(size);
        if len == 0 || usize::try_from(size).is_err() {
            return self.map(info);
        }
        let path = self.paths.slot(info.slot);
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
        else {
            return self.map(info);
        };
        let cached = self.scan_buf.lock().ok().and_then(|mut b| b.take());
        let mut buf = match cached {
            Some(b) if b.len() as u64 == size => b,
            _ => AlignedBuf::lazy(size as usize),
        };
        let from = (start / 4096 * 4096).min(len);
        let dst = &mut buf.as_mut_slice()[from as usize..len as usize];
        match file.read_exact_at(dst, from) {
            Ok(()) => {}
            // O_DIRECT refused for this read (alignment the file system wants).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.recycle_buf(buf);
                return self.map(info);
            }
            // A media error (EIO) or a short read: read what can be read; what cannot stays
            // zeroed, fails its block checksums and is reported as damage (see `map`).
            Err(_) => {
                read_what_can_be_read(dst, from, |b, off| file.read_exact_at(b, off));
            }
        }
        Ok(SegmentMap {
            info: info.clone(),
            geometry: self.ring.geometry,
            path,
            map: Backing {
                buf,
                len: len as usize,
            },
        })
    }

    /// Gives a scan's buffer back for the next segment.
    fn recycle(&self, map: SegmentMap) {
        self.recycle_buf(map.map.buf);
    }

    fn recycle_buf(&self, buf: AlignedBuf) {
        if let Ok(mut b) = self.scan_buf.lock() {
            *b = Some(buf);
        }
    }

    /// Hands every packet from `from` on (in write order) to `f`, until the end of the
    /// store or until `f` breaks.
    pub fn scan(
        &self,
        from: Position,
        mut f: impl FnMut(&PacketView<'_>) -> ControlFlow<()>,
    ) -> Result<ScanReport, StoreError> {
        let mut report = ScanReport {
            next: from,
            ..Default::default()
        };
        let Some(oldest) = self.segments.first() else {
            return Ok(report);
        };
        let mut from = from;
        if from.seq < oldest.seq {
            if from.seq != 0 {
                report.lost_segments = oldest.seq - from.seq;
            }
            from = Position {
                seq: oldest.seq,
                offset: 0,
                record: 0,
            };
        }
        report.next = from;
        for info in self.segments.iter().filter(|s| s.seq >= from.seq) {
            let start = (info.seq == from.seq).then_some(from);
            let map = self.read_for_scan(info, start.map_or(0, |p| u64::from(p.offset)))?;
            let mut it = map.packets(start);
            let mut last = None;
            let mut stop = false;
            let mut here = 0u64;
            for p in it.by_ref() {
                report.packets += 1;
                here += 1;
                last = Some(p.pos);
                if f(&p).is_break() {
                    stop = true;
                    break;
                }
            }
            let end = it.end_position();
            let damage = it.into_damage();
            report.note_segment(info, map.path(), here);
            self.recycle(map);
            if !damage.is_empty() && self.overwritten(info) {
                report.lost_segments += 1;
            } else {
                self.record_damage(info, &damage);
                report.damage.extend(damage);
            }
            report.next = match (stop, last) {
                (true, Some(p)) => p.next(),
                _ => end,
            };
            if stop {
                report.stopped = true;
                break;
            }
        }
        Ok(report)
    }

    /// Hands every packet with a time in `[from_ns, to_ns)` to `f`, in write order,
    /// touching only the segments, chunks and blocks whose time range overlaps.
    pub fn scan_time(
        &self,
        from_ns: u64,
        to_ns: u64,
        mut f: impl FnMut(&PacketView<'_>) -> ControlFlow<()>,
    ) -> Result<ScanReport, StoreError> {
        let mut report = ScanReport::default();
        for info in self.segments.iter().filter(|s| s.overlaps(from_ns, to_ns)) {
            // Only the chunks `packets_in` will visit (those of a sealed segment's index
            // that overlap the range), or all of an open segment.
            let chunks: Option<Vec<u32>> = info.index.as_ref().map(|index| {
                index
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| chunk_overlaps(e, from_ns, to_ns))
                    .map(|(i, _)| i as u32)
                    .collect()
            });
            let map = self.read_segment(info, chunks.as_deref())?;
            let mut it = map.packets_in(from_ns, to_ns);
            let stop = self.hand_out(&mut report, info, map.path(), &mut it, &mut f);
            self.note_damage(&mut report, info, it.into_damage());
            if stop {
                report.stopped = true;
                break;
            }
        }
        Ok(report)
    }

    /// The packets of one segment's iterator to `f` (a scan's inner loop), counted in
    /// `report`; true when `f` asked to stop.
    fn hand_out(
        &self,
        report: &mut ScanReport,
        info: &SegmentInfo,
        path: &Path,
        it: &mut Packets<'_>,
        f: &mut impl FnMut(&PacketView<'_>) -> ControlFlow<()>,
    ) -> bool {
        let mut here = 0u64;
        let mut stop = false;
        for p in it.by_ref() {
            report.packets += 1;
            here += 1;
            report.next = p.pos.next();
            if f(&p).is_break() {
                stop = true;
                break;
            }
        }
        report.note_segment(info, path, here);
        stop
    }

    /// Damage a scan met in segment `info`: recorded and reported, unless the writer
    /// overwrote the segment meanwhile (then the segment counts as lost to the wrap).
    fn note_damage(&self, report: &mut ScanReport, info: &SegmentInfo, damage: Vec<Damage>) {
        if !damage.is_empty() && self.overwritten(info) {
            report.lost_segments += 1;
        } else {
            self.record_damage(info, &damage);
            report.damage.extend(damage);
        }
    }

    /// [`StoreReader::scan_time`] for many ranges in a row (the evidence export: one range
    /// per evidence session): the same packets in the same order, the same damage, but the
    /// chunks read stay in `cache` for the next call, a block whose checksums passed once
    /// is not checksummed again while it stays there, and a block whose header (itself
    /// checked) puts all its packets outside the range is stepped over without checking
    /// its payload. So a pass over many overlapping ranges reads and checks each block at
    /// most once while it stays cached, instead of once per range.
    ///
    /// A block whose payload fails its checksum is not remembered: every range that needs
    /// it meets (and reports) the damage again, as `scan_time` does. Damage in a block
    /// outside the range is not looked for (`scan_time` reports damage anywhere in the
    /// chunks it reads).
    pub fn scan_time_cached(
        &self,
        cache: &mut TimeScanCache,
        from_ns: u64,
        to_ns: u64,
        mut f: impl FnMut(&PacketView<'_>) -> ControlFlow<()>,
    ) -> Result<ScanReport, StoreError> {
        let mut report = ScanReport::default();
        for info in self.segments.iter().filter(|s| s.overlaps(from_ns, to_ns)) {
            let k = cache.entry(self, info, from_ns, to_ns)?;
            let seg = &cache.segs[k];
            let mut it = seg.map.packets_in(from_ns, to_ns).trusting(&seg.verified);
            let stop = self.hand_out(&mut report, info, &seg.map.path, &mut it, &mut f);
            let checked = std::mem::take(&mut it.checked);
            let damage = it.into_damage();
            cache.blocks_checked += checked.len() as u64;
            cache.segs[k].verified.extend(checked);
            self.note_damage(&mut report, info, damage);
            if stop {
                report.stopped = true;
                break;
            }
        }
        Ok(report)
    }

    /// Reads sealed segment `info` in pieces of [`VERIFY_PIECE`] bytes (O_DIRECT where the
    /// file system takes it, so the page cache of the capture and the analyzer is left
    /// alone; otherwise buffered and the pages dropped after), calling `pace` with the
    /// bytes of each piece before it is read, then checks every block and unit checksum as
    /// a scan does and records what it finds in `segments/damage.tsv` exactly as a scan
    /// does (once per place). The background scrub ([`crate::scrub`]) runs on this.
    ///
    /// `pace` returning `Break` abandons the segment (`Ok(None)`). A segment the writer
    /// overwrote meanwhile is reported `overwritten`, its damage not recorded.
    pub fn verify_segment(
        &self,
        info: &SegmentInfo,
        mut pace: impl FnMut(u64) -> ControlFlow<()>,
    ) -> Result<Option<VerifyReport>, StoreError> {
        use std::os::unix::fs::FileExt;
        let size = self.ring.geometry.segment_size;
        let len = info
            .used_bytes
            .div_ceil(4096)
            .saturating_mul(4096)
            .min(size);
        let path = self.paths.slot(info.slot);
        let mut report = VerifyReport {
            bytes: len,
            ..Default::default()
        };
        if info.open || len == 0 || usize::try_from(size).is_err() {
            return Ok(Some(report));
        }
        let file = crate::sys::open_for_read(&path, true).map_err(|e| StoreError::io(&path, e))?;
        let mut buf = AlignedBuf::lazy(size as usize);
        let mut at = 0u64;
        while at < len {
            let end = (at + VERIFY_PIECE).min(len);
            if pace(end - at).is_break() {
                return Ok(None);
            }
            let dst = &mut buf.as_mut_slice()[at as usize..end as usize];
            report.unreadable_bytes +=
                read_what_can_be_read(dst, at, |b, off| file.read_exact_at(b, off));
            at = end;
        }
        // Buffered (a file system without O_DIRECT): leave no pages behind.
        let _ = crate::sys::drop_cache(&file);
        let map = SegmentMap {
            info: info.clone(),
            geometry: self.ring.geometry,
            path,
            map: Backing {
                buf,
                len: len as usize,
            },
        };
        let mut it = map.packets(None);
        report.packets = it.by_ref().count() as u64;
        let damage = it.into_damage();
        if !damage.is_empty() && self.overwritten(info) {
            report.overwritten = true;
        } else {
            self.record_damage(info, &damage);
            report.damage = damage;
        }
        Ok(Some(report))
    }

    /// Keeps damage found in a sealed segment for `status` (see [`crate::damage_log`]):
    /// its header cannot say so. The open segment's damage is counted by `refresh`'s walk.
    fn record_damage(&self, info: &SegmentInfo, damage: &[Damage]) {
        if info.open || damage.is_empty() {
            return;
        }
        let oldest = self.segments.first().map_or(0, |s| s.seq);
        crate::damage_log::record(&self.paths, damage, oldest);
    }

    /// Whether the slot of `info` now holds another generation.
    fn overwritten(&self, info: &SegmentInfo) -> bool {
        segment::probe(&self.paths, &self.ring, info.slot).seq != info.seq
    }
}

/// Segments read by [`StoreReader::scan_time_cached`], kept for the next range: the chunks
/// read so far and which of their blocks passed their checksums. Holds at most about
/// `limit` bytes of read chunks (least recently used segments go first; the segment in use
/// is always kept). Use one cache with one reader: a segment is known by its sequence
/// number, and the store never reuses one.
pub struct TimeScanCache {
    limit: u64,
    bytes: u64,
    tick: u64,
    segs: Vec<CachedSegment>,
    blocks_checked: u64,
}

struct CachedSegment {
    seq: u64,
    map: SegmentMap,
    /// Chunks read (sealed segments); an open segment is read whole at once.
    loaded: Vec<bool>,
    bytes: u64,
    /// Offsets of blocks whose checksums passed in `map`'s bytes.
    verified: std::collections::HashSet<u64>,
    used: u64,
}

impl TimeScanCache {
    /// A cache keeping about `limit` bytes of read chunks.
    pub fn new(limit: u64) -> TimeScanCache {
        TimeScanCache {
            limit,
            bytes: 0,
            tick: 0,
            segs: Vec::new(),
            blocks_checked: 0,
        }
    }

    /// Bytes of chunks held now.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Blocks whose checksums passed, counted once each time one was checked (a block
    /// dropped from the cache and read again counts again).
    pub fn blocks_checked(&self) -> u64 {
        self.blocks_checked
    }

    /// The index in `segs` of segment `info`, with every chunk overlapping
    /// `[from_ns, to_ns)` read (all of an open segment).
    fn entry(
        &mut self,
        reader: &StoreReader,
        info: &SegmentInfo,
        from_ns: u64,
        to_ns: u64,
    ) -> Result<usize, StoreError> {
        self.tick += 1;
        let k = match self.segs.iter().position(|s| s.seq == info.seq) {
            Some(k) => k,
            None => {
                let chunks = reader.ring.geometry.chunk_count as usize;
                self.segs.push(CachedSegment {
                    seq: info.seq,
                    map: reader.empty_map(info),
                    loaded: vec![false; if info.index.is_some() { chunks } else { 1 }],
                    bytes: 0,
                    verified: Default::default(),
                    used: 0,
                });
                self.segs.len() - 1
            }
        };
        self.segs[k].used = self.tick;
        let seg = &mut self.segs[k];
        let g = reader.ring.geometry;
        let len = seg.map.map.len as u64;
        let added = match info.index.as_ref() {
            None if !seg.loaded[0] => {
                reader.fill(&mut seg.map, None)?;
                seg.loaded[0] = true;
                len
            }
            None => 0,
            Some(index) => {
                let want: Vec<u32> = index
                    .iter()
                    .enumerate()
                    .filter(|(i, e)| !seg.loaded[*i] && chunk_overlaps(e, from_ns, to_ns))
                    .map(|(i, _)| i as u32)
                    .collect();
                reader.fill(&mut seg.map, Some(&want))?;
                want.iter()
                    .map(|&c| {
                        seg.loaded[c as usize] = true;
                        let (start, end) = g.chunk_range(c);
                        end.min(len).saturating_sub(start)
                    })
                    .sum()
            }
        };
        seg.bytes += added;
        self.bytes += added;
        // Over the limit: drop the least recently used other segments.
        let mut k = k;
        while self.bytes > self.limit {
            let Some((j, _)) = self
                .segs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .min_by_key(|(_, s)| s.used)
            else {
                break;
            };
            let gone = self.segs.remove(j);
            self.bytes -= gone.bytes;
            if j < k {
                k -= 1;
            }
        }
        Ok(k)
    }
}

fn read_index(path: &Path, g: &Geometry, h: &fmt::SegmentHeader) -> Option<Vec<ChunkIndexEntry>> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path).ok()?;
    let mut region = vec![0u8; g.region_len as usize];
    file.read_exact_at(&mut region, 0).ok()?;
    let index = fmt::chunk_index(&region, g.chunk_count)?;
    if segment::index_crc(index) != h.index_crc.get() {
        return None;
    }
    Some(index.to_vec())
}

/// One segment's bytes in memory (read, not mapped: see [`StoreReader::map`]).
pub struct SegmentMap {
    info: SegmentInfo,
    geometry: Geometry,
    path: PathBuf,
    map: Backing,
}

/// Whether a chunk holds packets with a time in `[from, to)`.
fn chunk_overlaps(e: &ChunkIndexEntry, from: u64, to: u64) -> bool {
    e.packets.get() > 0 && e.first_ts.get() < to && e.last_ts.get() >= from
}

/// A segment's bytes: the first `len` bytes of a segment-sized buffer they were read into
/// (the rest of the segment is unused).
struct Backing {
    buf: AlignedBuf,
    len: usize,
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        &self.buf.as_slice()[..self.len]
    }
}

impl SegmentMap {
    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw bytes of the segment file (for the inspector).
    pub fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// Every block of this generation (valid or damaged), in order.
    pub fn blocks(&self) -> BlockScan<'_> {
        BlockScan::new(
            self.map.bytes(),
            self.geometry,
            self.info.seq,
            self.info.index.as_deref(),
        )
    }

    /// Packets from `start` on (the whole segment when `None`).
    pub fn packets(&self, start: Option<Position>) -> Packets<'_> {
        let mut scan = self.blocks();
        let mut skip = 0;
        let mut start_off = None;
        if let Some(p) = start
            && p.offset != 0
        {
            scan = scan.from_offset(p.offset as u64);
            skip = p.record;
            start_off = Some(p.offset as u64);
        }
        Packets::new(self, scan, skip, start_off, 0, u64::MAX)
    }

    /// Packets with a time in `[from, to)`: only chunks (sealed segments) and blocks whose
    /// time range overlaps are read.
    pub fn packets_in(&self, from: u64, to: u64) -> Packets<'_> {
        Packets::new(self, self.blocks(), 0, None, from, to)
    }
}

/// Iterator over the packets of one segment in memory. Damage met on the way is collected
/// (see [`Packets::into_damage`]).
pub struct Packets<'a> {
    seg: &'a SegmentMap,
    scan: BlockScan<'a>,
    /// (offset, on-disk length, records, index of the next record) of the current block.
    /// The block being read: offset, disk length, its (intact) records, the ordinal below
    /// which records are skipped (a scan resuming inside the block).
    block: Option<(u64, u64, Records<'a>, u32)>,
    skip: u32,
    skip_at: Option<u64>,
    from: u64,
    to: u64,
    /// Chunks to visit for a time range on a sealed segment; `None` = follow the scan.
    chunks: Option<std::vec::IntoIter<u32>>,
    damage: Vec<Damage>,
    end: Position,
    /// Blocks known to pass their checksums (see [`Packets::trusting`]).
    trusted: Option<&'a std::collections::HashSet<u64>>,
    /// Offsets of the blocks whose checksums this iterator checked and found intact.
    checked: Vec<u64>,
}

impl<'a> Packets<'a> {
    fn new(
        seg: &'a SegmentMap,
        scan: BlockScan<'a>,
        skip: u32,
        skip_at: Option<u64>,
        from: u64,
        to: u64,
    ) -> Self {
        let ranged = from != 0 || to != u64::MAX;
        let chunks = match (&seg.info.index, ranged) {
            (Some(index), true) => Some(
                index
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| chunk_overlaps(e, from, to))
                    .map(|(i, _)| i as u32)
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
            _ => None,
        };
        let mut p = Packets {
            seg,
            scan,
            block: None,
            skip,
            skip_at,
            from,
            to,
            chunks,
            damage: Vec::new(),
            end: Position {
                seq: seg.info.seq,
                offset: skip_at.unwrap_or(0) as u32,
                record: skip,
            },
            trusted: None,
            checked: Vec::new(),
        };
        if p.chunks.is_some() {
            p.scan = p.next_chunk_scan().unwrap_or_else(|| p.empty_scan());
        }
        p
    }

    /// For a time range ([`SegmentMap::packets_in`]): blocks at the offsets in `verified`
    /// passed their checksums in these same bytes before and are not checked again, and
    /// blocks whose (checked) header puts every packet outside the range are stepped over
    /// unchecked. The offsets of blocks checked and found intact here are kept in
    /// `checked` for the caller's set.
    fn trusting(mut self, verified: &'a std::collections::HashSet<u64>) -> Self {
        self.trusted = Some(verified);
        self.scan = self.scan.trusting(verified, self.from, self.to);
        self
    }

    fn empty_scan(&self) -> BlockScan<'a> {
        let g = self.seg.geometry;
        BlockScan::new(self.seg.map.bytes(), g, self.seg.info.seq, None).chunks(g.chunk_count, 0)
    }

    fn next_chunk_scan(&mut self) -> Option<BlockScan<'a>> {
        let c = self.chunks.as_mut()?.next()?;
        let scan = BlockScan::new(
            self.seg.map.bytes(),
            self.seg.geometry,
            self.seg.info.seq,
            self.seg.info.index.as_deref(),
        )
        .chunks(c, c);
        Some(match self.trusted {
            Some(v) => scan.trusting(v, self.from, self.to),
            None => scan,
        })
    }

    /// Where a scan that consumed this iterator should resume.
    pub fn end_position(&self) -> Position {
        self.end
    }

    /// The damage met so far.
    pub fn into_damage(self) -> Vec<Damage> {
        self.damage
    }

    fn damaged(&mut self, offset: u64, len: u64, kind: DamageKind, packets: u64) {
        self.damage.push(Damage {
            file: self.seg.path.clone(),
            slot: self.seg.info.slot,
            seq: self.seg.info.seq,
            offset,
            len,
            kind,
            packets,
        });
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = PacketView<'a>;

    fn next(&mut self) -> Option<PacketView<'a>> {
        loop {
            if let Some((off, len, records, skip)) = &mut self.block {
                match records.next() {
                    Some(Ok(r)) => {
                        if r.ordinal < *skip {
                            continue;
                        }
                        let i = r.ordinal;
                        let ts = r.header.ts_ns.get();
                        let pos = Position {
                            seq: self.seg.info.seq,
                            offset: *off as u32,
                            record: i,
                        };
                        self.end = pos.next();
                        if ts < self.from || ts >= self.to {
                            continue;
                        }
                        let iface = r.header.iface.get();
                        return Some(PacketView {
                            ts_ns: ts,
                            iface,
                            linktype: self.seg.info.linktype_of(iface),
                            wire_len: r.header.wire_len.get(),
                            flags: r.header.flags.get(),
                            data: r.data,
                            pos,
                        });
                    }
                    Some(Err(m)) => {
                        // Record offsets are in the payload; a ring block's frame offsets
                        // in the ring bytes after the 4 KiB header page.
                        let base = match fmt::block_header(&self.seg.map.bytes()[*off as usize..]) {
                            Some(h) if h.is_ring() => fmt::ALIGN,
                            _ => fmt::BLOCK_HEADER_LEN as u64,
                        };
                        let at = *off + base + m.offset as u64;
                        self.block = None;
                        self.damaged(at, 0, DamageKind::MalformedRecord, 0);
                        continue;
                    }
                    None => {
                        // Block done: resume after it.
                        self.end = Position {
                            seq: self.seg.info.seq,
                            offset: (*off + *len) as u32,
                            record: 0,
                        };
                        self.block = None;
                        continue;
                    }
                }
            }
            let ev = match self.scan.next() {
                Some(ev) => ev,
                None => {
                    let next = self.next_chunk_scan()?;
                    self.scan = next;
                    continue;
                }
            };
            let (b, bad_units) = match ev {
                BlockEvent::Valid(b) => {
                    if self.trusted.is_some_and(|t| !t.contains(&b.offset)) {
                        self.checked.push(b.offset);
                    }
                    (b, 0)
                }
                BlockEvent::Partial { block, bad_units } => {
                    // Reported once: not again by a scan resuming inside the block.
                    if self.skip_at != Some(block.offset) {
                        let h = block.header;
                        let lost = h.record_count.get() - block.salvaged(bad_units);
                        let (from, len) = block.bad_range(bad_units);
                        let at = block.offset + fmt::BLOCK_HEADER_LEN as u64 + from;
                        self.damaged(at, len, DamageKind::UnitChecksum, lost as u64);
                    }
                    (block, bad_units)
                }
                BlockEvent::BadPayload(b) => {
                    self.skip_at = None;
                    let len = b.header.disk_len();
                    let n = b.header.record_count.get() as u64;
                    self.damaged(b.offset, len, DamageKind::PayloadChecksum, n);
                    continue;
                }
                BlockEvent::BadHeader { offset, len } => {
                    self.skip_at = None;
                    self.damaged(offset, len, DamageKind::BlockHeader, 0);
                    continue;
                }
            };
            let h = b.header;
            self.end = Position {
                seq: self.seg.info.seq,
                offset: (b.offset + h.disk_len()) as u32,
                record: 0,
            };
            if h.record_count.get() == 0
                || h.first_ts.get() >= self.to
                || h.last_ts.get() < self.from
            {
                continue;
            }
            let records = b.records(bad_units);
            let skip = if self.skip_at == Some(b.offset) {
                self.skip
            } else {
                0
            };
            self.skip_at = None;
            self.block = Some((b.offset, h.disk_len(), records, skip));
        }
    }
}

/// A one-line summary of a list of damages (for messages).
pub fn describe_damage(damage: &[Damage]) -> String {
    let mut s = String::new();
    for (i, d) in damage.iter().take(3).enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        let _ = write!(s, "{d}");
    }
    if damage.len() > 3 {
        let _ = write!(s, "; and {} more", damage.len() - 3);
    }
    s
}
