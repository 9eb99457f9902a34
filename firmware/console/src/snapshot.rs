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
    /// Alarms to show: latched (not acknowledged) first, then acknowledged ones still
    /// active (see [`crate::alarms`]).
    pub alarms: Vec<crate::alarms::AlarmState>,
    /// Problems the source met while gathering (missing stats page, unreadable store, …).
    pub warnings: Vec<String>,
    /// The web console's address and certificate fingerprint, on Health: the technician
    /// reads them to the analysts, who compare the fingerprint with their browser's.
    pub web: Option<WebConsole>,
    /// The sessions still open (issue 15), for the 通信中 screen.
    pub open: OpenSessions,
    /// The asset inventory (issue 20): internal hosts, worst-judged first.
    pub assets: Vec<AssetRow>,
}

/// Sessions still in progress: their latest provisional (`open`) records, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenSessions {
    /// How many are open (more than `sessions` holds when the list was cut).
    pub total: Option<u64>,
    pub sessions: Vec<SessionRecord>,
    /// Why the list could not be read (no index yet, …).
    pub error: Option<String>,
}

/// One internal host of the asset inventory as the console shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssetRow {
    pub ip: String,
    /// In `[site] vpn_pools` (a remote user's address): shown `(VPN)`.
    pub vpn: bool,
    /// The first name the host was seen under (DHCP, NetBIOS, DNS, HTTP Host, SNI).
    pub name: Option<String>,
    /// Ports it answered on: `22/tcp ssh`; a port only announced over mDNS is marked:
    /// `631/tcp ipp (mDNS)`.
    pub services: Vec<String>,
    /// Server software it announced, worst verdict first.
    pub software: Vec<AssetSoftware>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssetSoftware {
    pub text: String,
    /// `vulnerable`, `unknown`, or None when no advisory applies.
    pub verdict: Option<String>,
    /// CVE ids of the advisories behind the verdict.
    pub cves: Vec<String>,
}

impl AssetRow {
    /// The worst verdict of its software: 2 vulnerable, 1 unknown, 0 none.
    pub fn worst(&self) -> u8 {
        self.software
            .iter()
            .map(|s| match s.verdict.as_deref() {
                Some("vulnerable") => 2,
                Some(_) => 1,
                None => 0,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Where the web console (`kuroko web`) answers and its certificate's fingerprint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebConsole {
    /// `https://ADDR:PORT/`.
    pub url: String,
    /// SHA-256 of the certificate, `AB:CD:…` (32 bytes); `None` before the first start.
    pub fingerprint: Option<String>,
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
    /// What the store writer holds that is not on the disk yet; `None` when the capture
    /// does not publish it.
    pub writer_backlog: Option<WriterBacklog>,
    /// How the store writes (`io_uring O_DIRECT`, or a fallback and why).
    pub write_mode: Option<String>,
}

/// The store writer's backlog as the capture last published it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriterBacklog {
    /// Bytes of block writes queued to the disk and not completed.
    pub bytes_in_flight: u64,
    pub blocks_in_flight: u64,
    /// Bytes appended into the open block, not queued yet.
    pub bytes_buffered: u64,
    /// Size of the writer's buffer pool, when known.
    pub pool_bytes: Option<u64>,
    /// Seconds since the capture published these (they are stale when it stops
    /// publishing, e.g. a capture thread stuck in a write).
    pub age_s: f64,
}

impl WriterBacklog {
    pub fn bytes(&self) -> u64 {
        self.bytes_in_flight.saturating_add(self.bytes_buffered)
    }
    /// Share of the buffer pool the backlog takes (0..=1), when the pool size is known.
    pub fn pool_fraction(&self) -> Option<f64> {
        self.pool_bytes
            .filter(|p| *p > 0)
            .map(|p| (self.bytes() as f64 / p as f64).min(1.0))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct InterfaceHealth {
    pub name: String,
    /// `None` when the link state is unknown.
    pub link_up: Option<bool>,
    /// The interface is gone (deleted, unplugged): nothing is captured from it until it
    /// is back.
    pub gone: bool,
    /// Frames longer than the wire carries (merged by an offload), cumulative.
    pub coalesced: u64,
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
    /// Received by a re-created interface before capture re-bound to it.
    pub before_rebind: u64,
    /// Frames cut at the snap length (stored, but not whole).
    pub truncated: u64,
}

impl Drops {
    /// Packets lost (truncation keeps the packet, so it is not a loss).
    pub fn lost(&self) -> u64 {
        self.kernel + self.nic + self.backpressure + self.before_rebind
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
    /// Bytes written by the store: the capture's live counter (since the capture started,
    /// bytes queued to the disk plus the open block) when `bytes_written_live`, else the
    /// store's own counter (since it was created, republished about once a second). Only
    /// differences are shown (the write rate).
    pub bytes_written: u64,
    pub bytes_written_live: bool,
    pub evidence_used: u64,
    pub evidence_budget: u64,
    pub files_used: u64,
    pub files_budget: u64,
    /// File system of the data directory.
    pub fs_free: u64,
    pub fs_total: u64,
    /// Health of the disks under the data directory, as far as the board exposes it.
    pub health: DataDisksHealth,
}

/// The data directory's file system and the disks under it. `None` fields are not exposed
/// by this machine and are shown as such, never guessed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataDisksHealth {
    /// Block device of the file system (`sda2`, `dm-0`, `vda`).
    pub device: Option<String>,
    pub fs_type: Option<String>,
    /// Errors the file system recorded (ext4 `errors_count`).
    pub fs_errors: Option<u64>,
    pub disks: Vec<DiskHealth>,
    /// Why there are no disks (tmpfs, not found).
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskHealth {
    pub name: String,
    pub model: Option<String>,
    pub size_bytes: Option<u64>,
    pub rotational: Option<bool>,
    pub read_only: Option<bool>,
    /// Device state as the kernel says (`running`, `live`, `offline`).
    pub state: Option<String>,
    /// Whether `state` is one of a working device.
    pub state_ok: Option<bool>,
    pub io_errors: Option<u64>,
    pub io_timeouts: Option<u64>,
    pub temperature_c: Option<f64>,
    /// Requests in the device queue.
    pub in_flight: Option<u64>,
    /// Share of the last interval the disk was busy (0..=1).
    pub utilization: Option<f64>,
    /// The NVMe SMART / Health log; `None` when the disk is not NVMe or the log could not
    /// be read.
    pub nvme: Option<NvmeHealth>,
}

impl DiskHealth {
    /// Something exposed needs looking at.
    pub fn has_problem(&self) -> bool {
        self.state_ok == Some(false)
            || self.io_errors.is_some_and(|n| n > 0)
            || self.io_timeouts.is_some_and(|n| n > 0)
            || self.read_only == Some(true)
            || self.nvme.as_ref().is_some_and(NvmeHealth::has_problem)
    }
}

/// What an NVMe drive's SMART / Health log says about its wear and errors. Counters wider
/// than 64 bits in the log are saturated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NvmeHealth {
    /// Critical warning bits: 0 spare below threshold, 1 temperature, 2 reliability
    /// degraded, 3 read-only, 4 volatile memory backup failed, 5 persistent memory region
    /// read-only.
    pub critical_warning: u8,
    /// Percent of spare capacity left, and the level that raises a warning.
    pub available_spare: u8,
    pub spare_threshold: u8,
    /// Percent of rated life used (may exceed 100).
    pub percentage_used: u8,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub power_cycles: u64,
    pub power_on_hours: u64,
    pub unsafe_shutdowns: u64,
    pub media_errors: u64,
    pub error_log_entries: u64,
}

/// Percent of rated life used from which the wear is shown as a problem.
pub const NVME_WEAR_WARN_PERCENT: u8 = 90;

impl NvmeHealth {
    pub fn has_problem(&self) -> bool {
        self.critical_warning != 0
            || self.percentage_used >= NVME_WEAR_WARN_PERCENT
            || self.media_errors > 0
    }
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
    /// The passage whose content matched a `body:` / `content:` phrase, by session id:
    /// (file or part name, passage with the match between `[` and `]`).
    pub snippets: std::collections::BTreeMap<String, (String, String)>,
}
