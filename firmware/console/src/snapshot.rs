//! What the console shows, as plain data.
//!
//! A [`Snapshot`] is gathered by a [`crate::source::Source`] once a tick. Counters are
//! cumulative (as the stats page keeps them); the app turns successive snapshots into rates
//! and sparkline history, so sources stay simple and a missed tick loses nothing.

use kuroko_model::Finding;
use kuroko_model::Timestamp;
use kuroko_model::session::SessionRecord;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// When the source gathered this (wall clock).
    pub taken_at: Timestamp,
    pub site: String,
    pub capture: CaptureHealth,
    pub analyzer: AnalyzerHealth,
    pub disk: DiskInfo,
    /// Highest risk first.
    pub findings: Vec<Finding>,
    pub alerts: AlertsInfo,
    /// Problems the source met while gathering (missing stats page, unreadable store, …).
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaptureHealth {
    /// Whether a capture process is publishing (its heartbeat is recent).
    pub running: bool,
    /// Seconds since the stats page was last updated, if there is one.
    pub heartbeat_age_s: Option<f64>,
    pub interfaces: Vec<InterfaceHealth>,
    /// Capture cores and their load in percent.
    pub core_load: Vec<(usize, f32)>,
    /// Store blocks waiting to be written.
    pub writer_backlog: Option<u64>,
    /// How the store writes (`io_uring O_DIRECT`, or a fallback and why).
    pub write_mode: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct InterfaceHealth {
    pub name: String,
    /// `None` when the link state is unknown.
    pub link_up: Option<bool>,
    /// Cumulative since capture start.
    pub packets: u64,
    pub bytes: u64,
    pub drops: Drops,
}

/// Cumulative packet losses by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// The kernel ring was full.
    pub kernel: u64,
    /// The NIC dropped (from /sys statistics).
    pub nic: u64,
    /// The store could not keep up.
    pub backpressure: u64,
    /// Frames cut at the snap length (stored, but not whole).
    pub truncated: u64,
}

impl Drops {
    /// Packets lost (truncation keeps the packet, so it is not a loss).
    pub fn lost(&self) -> u64 {
        self.kernel + self.nic + self.backpressure
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnalyzerHealth {
    pub running: bool,
    /// Bytes of stored packets not analyzed yet.
    pub lag_bytes: Option<u64>,
    /// Capture time of the newest stored packet minus that of the newest analyzed one.
    pub lag_s: Option<f64>,
    pub sessions: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskInfo {
    /// Bytes of the segment ring holding packets, and its budget.
    pub ring_used: u64,
    pub ring_budget: u64,
    pub segments_used: u64,
    pub segments_total: u64,
    /// Oldest and newest stored packet: the retention window.
    pub oldest: Option<Timestamp>,
    pub newest: Option<Timestamp>,
    /// Bytes written to the store since it was created.
    pub bytes_written: u64,
    pub evidence_used: u64,
    pub evidence_budget: u64,
    pub files_used: u64,
    pub files_budget: u64,
    /// File system of the data directory.
    pub fs_free: u64,
    pub fs_total: u64,
    /// Per-disk health where the board exposes it (`sda: ok`, `nvme0n1: 3% worn`).
    pub disks: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertsInfo {
    pub conditions: Vec<AlertCondition>,
    /// Newest first.
    pub recent: Vec<AlertHit>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertCondition {
    pub name: String,
    pub severity: String,
    pub query: String,
    pub comment: String,
    pub hits: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertHit {
    pub time: Timestamp,
    pub condition: String,
    pub severity: String,
    pub session_id: String,
    pub summary: String,
}

/// What a search returns to the console.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchResult {
    pub query: String,
    pub total: Option<u64>,
    pub sessions: Vec<SessionRecord>,
}
