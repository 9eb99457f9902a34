//! What `kuroko status` shows about the store: disk use, retention window, write counters,
//! and how the writer reaches the disk (with its fallbacks).

use crate::error::StoreError;
use crate::layout::{self, META_RESERVE};
use crate::reader::StoreReader;
use kuroko_ring_format::{fallback, io_mode};
use serde::Serialize;
use std::path::Path;

/// The store section of `status` (times in ns since the Unix epoch; the binary renders them).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StoreStatus {
    pub segment_size: u64,
    pub chunk_size: u64,
    pub budget_bytes: u64,
    /// Slot files the ring may have (`(budget - META_RESERVE) / segment_size`).
    pub segments_total: u32,
    /// Slots holding packets.
    pub segments_used: u32,
    pub segments_free: u32,
    pub segments_open: u32,
    /// Segments sealed by crash recovery.
    pub segments_recovered: u32,
    /// Bytes of segment files on disk now (slots are created lazily) plus metadata.
    pub disk_bytes: u64,
    /// Bytes of records stored now.
    pub stored_bytes: u64,
    pub stored_packets: u64,
    /// Share of the ring's slots that hold data (0–100).
    pub fill_percent: f64,
    /// The retention window: oldest and newest stored packet times (ns).
    pub oldest_packet_ns: Option<u64>,
    pub newest_packet_ns: Option<u64>,
    pub retention_seconds: Option<f64>,
    /// Bytes per second of wall-clock time over the most recent segments.
    pub write_rate_bytes_per_sec: Option<f64>,
    /// Since the store was created.
    pub bytes_written: u64,
    pub packets_written: u64,
    pub write_errors: u64,
    pub backpressure_drops: u64,
    pub rejected_packets: u64,
    pub damaged_blocks: u64,
    /// Packets lost to disk write errors (failed block writes; see `WriterStats`).
    pub write_error_packets: u64,
    /// Segments with damage: blocks that fail their checks, or writes the disk failed.
    pub damaged_segments: u32,
    /// Slots whose header cannot be read (an unreadable sector): damaged, contents unknown.
    pub damaged_slots: u32,
    /// `uring+direct`, `pwrite+direct`, `pwrite+buffered`, or `none` (never written).
    pub io_mode: String,
    /// Why the writer is not on io_uring + O_DIRECT (empty when it is).
    pub io_fallbacks: Vec<String>,
    /// Packets in the damaged places readers found in sealed segments (where the place
    /// says how many; see [`crate::damage_log`]). Not in `write_error_packets`.
    pub damaged_packets: u64,
    /// The pid of a writer that holds the store now.
    pub writer_pid: Option<u32>,
    pub last_write_wall_ns: Option<u64>,
    /// Whether the counters above (from `writer.state`) are current.
    pub writer_state: WriterStateHealth,
    /// Why they may not be (empty when they are).
    pub writer_state_detail: String,
    /// The pid `writer.state` names (0: written by a writer that closed).
    pub writer_state_pid: u32,
    /// The background scrub's progress (`segments/scrub.state`, see [`crate::scrub`]);
    /// `None` when no scrub ever ran on this store.
    pub scrub: Option<crate::scrub::ScrubState>,
    /// The scrub is on and the oldest sealed segment it has not checked since it was
    /// sealed waited longer than its bound ([`crate::scrub::overdue`]; the `scrub_behind`
    /// alarm).
    pub scrub_overdue: Option<crate::scrub::Behind>,
}

/// How far `status` can trust the writer's counters (`writer.state`, rewritten by the
/// writer about once a second and when it closes). A disk that refuses writes refuses
/// this file too, so its counters can stop short of the failures: every state but `none`,
/// `live` and `closed` raises the `store_counters_stale` alarm.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WriterStateHealth {
    /// No writer ever ran (no state, no segment).
    None,
    /// A writer holds the store and published within [`STATE_STALE_NS`].
    Live,
    /// The last writer closed cleanly and wrote its final counters.
    Closed,
    /// A writer holds the store but its state is older than [`STATE_STALE_NS`]: it cannot
    /// write `writer.state` (a failing disk) or is stuck.
    Stale,
    /// The last writer stopped without writing its final counters: it was killed, or the
    /// disk refused its last state (failures after it are not counted here).
    NotClosed,
    /// Segments exist but `writer.state` does not, or fails its checksum.
    Missing,
}

/// A running writer's state older than this is stale (it republishes every second).
pub const STATE_STALE_NS: u64 = 10_000_000_000;

/// Computes the store's status.
pub fn store_status(data: &Path) -> Result<StoreStatus, StoreError> {
    let reader = StoreReader::open(data)?;
    Ok(status_of(&reader))
}

/// The status of an open reader (refresh it first to see the latest).
pub fn status_of(reader: &StoreReader) -> StoreStatus {
    let ring = reader.ring();
    let paths = reader.paths();
    let segs = reader.segments();
    let g = ring.geometry;
    let with_packets: Vec<_> = segs.iter().filter(|s| s.packets > 0).collect();
    let oldest = with_packets.iter().map(|s| s.first_ts).min();
    let newest = with_packets.iter().map(|s| s.last_ts).max();
    let files = (0..ring.slot_count)
        .filter(|&s| paths.slot(s).exists())
        .count() as u64;
    let ws = layout::read_writer_state(paths);
    let recent: Vec<_> = segs.iter().rev().take(8).collect();
    let rate = match (recent.last(), recent.first()) {
        (Some(first), Some(last)) => {
            // An open segment was last written when the writer last published its state.
            let end = if last.open {
                ws.map_or(0, |w| w.updated_wall_ns.get())
            } else {
                last.sealed_wall_ns
            };
            let span = end.saturating_sub(first.opened_wall_ns) as f64 / 1e9;
            let bytes: u64 = recent.iter().map(|s| s.used_bytes).sum();
            (span > 0.0 && first.opened_wall_ns > 0).then(|| bytes as f64 / span)
        }
        _ => None,
    };
    let mode = match ws.map(|w| w.io_mode.get()) {
        Some(io_mode::URING_DIRECT) => "uring+direct",
        Some(io_mode::PWRITE_DIRECT) => "pwrite+direct",
        Some(io_mode::PWRITE_BUFFERED) => "pwrite+buffered",
        _ => "none",
    };
    let fb = ws.map_or(0, |w| w.fallback.get());
    let mut fallbacks = Vec::new();
    for (bit, text) in [
        (
            fallback::URING_UNAVAILABLE,
            "io_uring unavailable (disabled or failed): synchronous pwrite",
        ),
        (
            fallback::DIRECT_REFUSED,
            "the file system refused O_DIRECT: writes go through the page cache",
        ),
        (
            fallback::BUFFERS_NOT_REGISTERED,
            "io_uring buffers not registered (RLIMIT_MEMLOCK): plain writes",
        ),
        (fallback::FORCED, "forced by the store options"),
    ] {
        if fb & bit != 0 {
            fallbacks.push(text.to_string());
        }
    }
    let used = segs.len() as u32;
    let damage = segment_damage(reader);
    let damaged_blocks: u64 = damage.iter().map(|d| d.damaged_blocks).sum();
    let damaged_packets: u64 = damage.iter().map(|d| d.damaged_packets).sum();
    let damaged_segments = damage.len() as u32;
    let scrub = crate::scrub::load(paths);
    let pid = writer_pid(paths);
    let (health, detail) = state_health(paths, ws.as_ref(), pid, !segs.is_empty() || files > 0);
    // Each segment marked by a failed write is at least one failed write, whatever the
    // state file (perhaps on the same failing disk) says.
    let marked = segs.iter().filter(|s| s.write_error).count() as u64;
    StoreStatus {
        segment_size: g.segment_size,
        chunk_size: g.chunk_size,
        budget_bytes: ring.budget,
        segments_total: ring.slot_count,
        segments_used: used,
        // An unreadable slot is damaged, not free.
        segments_free: ring
            .slot_count
            .saturating_sub(used + reader.damaged_slots().len() as u32),
        segments_open: segs.iter().filter(|s| s.open).count() as u32,
        segments_recovered: segs.iter().filter(|s| s.recovered).count() as u32,
        disk_bytes: files * g.segment_size + META_RESERVE.min(ring.budget),
        stored_bytes: segs.iter().map(|s| s.record_bytes).sum(),
        stored_packets: segs.iter().map(|s| s.packets).sum(),
        fill_percent: used as f64 * 100.0 / ring.slot_count.max(1) as f64,
        oldest_packet_ns: oldest,
        newest_packet_ns: newest,
        retention_seconds: oldest
            .zip(newest)
            .map(|(o, n)| n.saturating_sub(o) as f64 / 1e9),
        write_rate_bytes_per_sec: rate,
        bytes_written: ws.map_or(0, |w| w.bytes_written.get()),
        packets_written: ws.map_or(0, |w| w.packets_written.get()),
        write_errors: ws.map_or(0, |w| w.write_errors.get()).max(marked),
        backpressure_drops: ws.map_or(0, |w| w.backpressure.get()),
        rejected_packets: ws.map_or(0, |w| w.rejected.get()),
        damaged_blocks,
        write_error_packets: ws.map_or(0, |w| w.packets_lost.get()),
        damaged_segments,
        damaged_slots: reader.damaged_slots().len() as u32,
        io_mode: mode.to_string(),
        io_fallbacks: fallbacks,
        damaged_packets,
        writer_pid: pid,
        last_write_wall_ns: ws.map(|w| w.updated_wall_ns.get()),
        writer_state: health,
        writer_state_detail: detail,
        writer_state_pid: ws.map_or(0, |w| w.pid.get()),
        scrub_overdue: scrub
            .as_ref()
            .and_then(|sc| crate::scrub::overdue(segs, sc, ring.budget, now_ns())),
        scrub,
    }
}

/// A segment of the ring with damage: blocks that fail their checks (counted by its
/// writer in its header, or found by a reader or the scrub later, `segments/damage.tsv`),
/// or a write or fdatasync the disk failed (`SEG_FLAG_WRITE_ERROR`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentDamage {
    pub file: std::path::PathBuf,
    pub slot: u32,
    pub seq: u64,
    /// The segment's packet times (ns).
    pub first_ts: u64,
    pub last_ts: u64,
    pub write_error: bool,
    pub damaged_blocks: u64,
    /// Packets in the damaged places found after sealing, where the place says.
    pub damaged_packets: u64,
}

impl SegmentDamage {
    /// Whether the segment may hold packets with a time in `[from, to)`. (Slots with an
    /// unreadable header are not segments: their times are unknown,
    /// [`StoreReader::damaged_slots`].)
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.first_ts < to && self.last_ts >= from
    }
}

impl std::fmt::Display for SegmentDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (segment seq {}):", self.file.display(), self.seq)?;
        if self.damaged_blocks > 0 {
            write!(f, " {} damaged block(s)", self.damaged_blocks)?;
            if self.damaged_packets > 0 {
                write!(f, " ({} packets lost)", self.damaged_packets)?;
            }
            if self.write_error {
                f.write_str(";")?;
            }
        }
        if self.write_error {
            f.write_str(" the disk failed a write or fdatasync of this segment: its packets may not survive a power cut")?;
        }
        Ok(())
    }
}

/// Every damaged segment of the ring now, oldest first: what `status` counts as
/// `damaged_segments` (and its blocks and packets), and what an export checks a time range
/// against ([`SegmentDamage::overlaps`]).
pub fn segment_damage(reader: &StoreReader) -> Vec<SegmentDamage> {
    // Damage readers found in sealed segments after they were sealed (a header counts
    // only what its writer knew: failed writes, whose places read as "no block header").
    let found = crate::damage_log::load(reader.paths());
    let mut out = Vec::new();
    for s in reader.segments() {
        let mut blocks = u64::from(s.damaged_blocks);
        let mut packets = 0u64;
        if !s.open {
            let here = found.iter().filter(|e| e.seq == s.seq && e.slot == s.slot);
            let (mut headers, mut other) = (0u64, 0u64);
            for e in here {
                if e.kind == crate::reader::DamageKind::BlockHeader {
                    headers += 1;
                } else {
                    other += 1;
                }
                packets += e.packets;
            }
            blocks += other + headers.saturating_sub(u64::from(s.damaged_blocks));
        }
        if blocks > 0 || s.write_error || packets > 0 {
            out.push(SegmentDamage {
                file: reader.paths().slot(s.slot),
                slot: s.slot,
                seq: s.seq,
                first_ts: s.first_ts,
                last_ts: s.last_ts,
                write_error: s.write_error,
                damaged_blocks: blocks,
                damaged_packets: packets,
            });
        }
    }
    out
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// See [`WriterStateHealth`]. `holder`: the pid holding the store's lock now.
fn state_health(
    paths: &layout::Paths,
    ws: Option<&kuroko_ring_format::WriterState>,
    holder: Option<u32>,
    has_data: bool,
) -> (WriterStateHealth, String) {
    let Some(w) = ws else {
        if !has_data && !paths.writer_state().exists() {
            return (WriterStateHealth::None, String::new());
        }
        return (
            WriterStateHealth::Missing,
            format!(
                "{} is missing or fails its checksum: the write counters are unknown",
                paths.writer_state().display()
            ),
        );
    };
    let pid = w.pid.get();
    let age_s = now_ns().saturating_sub(w.updated_wall_ns.get()) as f64 / 1e9;
    match (pid, holder) {
        (0, _) => (WriterStateHealth::Closed, String::new()),
        (_, Some(h)) if h == pid => {
            if age_s * 1e9 > STATE_STALE_NS as f64 {
                (
                    WriterStateHealth::Stale,
                    format!(
                        "writer pid {pid} last wrote its counters {age_s:.0} s ago (it does every second): the disk refuses writes, or the writer is stuck"
                    ),
                )
            } else {
                (WriterStateHealth::Live, String::new())
            }
        }
        _ => (
            WriterStateHealth::NotClosed,
            format!(
                "writer pid {pid} stopped without writing its final counters (last written {age_s:.0} s ago): it was killed, or the disk refused them; write errors after that are not counted here"
            ),
        ),
    }
}

/// The pid in the lock file, if a process holds the lock now.
fn writer_pid(paths: &layout::Paths) -> Option<u32> {
    let file = std::fs::File::open(paths.lock()).ok()?;
    if crate::sys::try_lock_shared_probe(&file) {
        return None;
    }
    std::fs::read_to_string(paths.lock())
        .ok()?
        .trim()
        .parse()
        .ok()
}
