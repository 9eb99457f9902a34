//! The live stats page `DIR/stats/capture.stats`: what the capture engine has seen, stored
//! and lost, per interface and per cause, readable by any process without talking to it.
//!
//! The file holds one fixed `#[repr(C)]` layout of 64-bit atomics ([`layout`]): a header
//! (magic, version, pid, start time, heartbeat, state, the store writer's live counters and
//! backlog) and [`MAX_INTERFACES`] interface slots. The capture process maps it read-write
//! and updates it lock-free (each counter is cumulative since the start of the capture and
//! only ever grows; the writer's backlog words are gauges); readers map it
//! read-only with [`StatsReader`] and copy a consistent-enough [`StatsSnapshot`] out (each
//! counter is read atomically; counters are not a transaction, so a sum may lag by the
//! packets of one block).
//!
//! A new capture writes a fresh page beside the old one and renames it into place, so a
//! reader never sees a half-initialised page; readers re-open to follow a new capture.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::shared::{ReadOnlyPage, SharedPage};

pub mod layout {
    //! The on-disk (in-memory) layout, version [`STATS_VERSION`].
    use std::sync::atomic::AtomicU64;
    use zerocopy::{FromBytes, IntoBytes, KnownLayout};

    /// `KRKCAPST` little-endian.
    pub const STATS_MAGIC: u64 = u64::from_le_bytes(*b"KRKCAPST");
    /// 2: the [`Link`] group (link-down and interface-gone intervals, coalesced frames,
    /// offloads, frames left at stop) after the interface slots; the page is 8 KiB.
    pub const STATS_VERSION: u64 = 2;
    /// Interface slots in the page; a capture with more interfaces is refused.
    pub const MAX_INTERFACES: usize = 16;
    /// Bytes of an interface name kept (IFNAMSIZ).
    pub const NAME_LEN: usize = 16;

    pub const STATE_STARTING: u64 = 0;
    pub const STATE_RUNNING: u64 = 1;
    pub const STATE_STOPPED: u64 = 2;
    /// The capture ended on an error (a store failure); see its stderr.
    pub const STATE_FAILED: u64 = 3;

    #[repr(C)]
    #[derive(FromBytes, IntoBytes, KnownLayout)]
    pub struct Header {
        /// Written last when the page is created (Release).
        pub magic: AtomicU64,
        pub version: AtomicU64,
        pub pid: AtomicU64,
        pub interface_count: AtomicU64,
        /// CLOCK_REALTIME ns when the capture started.
        pub started_ns: AtomicU64,
        /// CLOCK_REALTIME ns of the last update by the supervisor (about every 250 ms).
        pub heartbeat_ns: AtomicU64,
        /// `STATE_*`.
        pub state: AtomicU64,
        /// Capture threads running.
        pub threads: AtomicU64,
        /// The store writer's gauges (see [`Writer`]), in what were the first seven
        /// reserved words: pages of older captures have zeros there, which reads as "not
        /// published", and readers that predate them ignore them, so the version stays 1.
        pub writer: Writer,
        pub reserved: [AtomicU64; 1],
    }

    /// What the capture's segment writer has in hand, published by the store sink on the
    /// capture thread about once per ring block (and when idle), never per packet.
    /// One writer per page: captures use one store writer per data directory.
    #[repr(C)]
    #[derive(FromBytes, IntoBytes, KnownLayout)]
    pub struct Writer {
        /// CLOCK_REALTIME ns of the last publication (Release, written last); 0 = the
        /// writer publishes nothing (an older capture, or a sink that is not a store).
        pub updated_ns: AtomicU64,
        /// Bytes handed to the disk since the capture opened the store (with every ring
        /// block; the store's own `writer.state` is republished about once a second).
        pub bytes_written: AtomicU64,
        pub packets_written: AtomicU64,
        /// Bytes of block writes queued to the disk and not completed.
        pub bytes_in_flight: AtomicU64,
        /// Block writes queued to the disk and not completed.
        pub blocks_in_flight: AtomicU64,
        /// Bytes of records appended but not yet queued (the open block).
        pub bytes_buffered: AtomicU64,
        /// Size of the writer's buffer pool in bytes; 0 = unknown.
        pub pool_bytes: AtomicU64,
    }

    /// Counters of one interface; all cumulative since the capture started.
    #[repr(C)]
    #[derive(FromBytes, IntoBytes, KnownLayout)]
    pub struct Interface {
        /// The name, NUL padded, as two little-endian words.
        pub name: [AtomicU64; 2],
        pub ifindex: AtomicU64,
        /// 1 when the carrier is up (`/sys/class/net/IF/carrier`).
        pub link_up: AtomicU64,
        /// 1 when the NIC timestamps received packets in hardware.
        pub hardware_timestamps: AtomicU64,
        /// Packets stored (handed to the segment store).
        pub packets: AtomicU64,
        /// Their length on the wire (with re-inserted VLAN tags).
        pub bytes: AtomicU64,
        /// Bytes stored (captured bytes + tags): copied from the ring into the store's
        /// buffers, or written from the ring itself (`zero_copy_bytes` of them).
        pub stored_bytes: AtomicU64,
        /// The kernel could not put a packet into the ring (`tp_drops`).
        pub kernel_ring_drops: AtomicU64,
        /// Times the ring was full and frozen (`tp_freeze_q_cnt`).
        pub kernel_ring_freezes: AtomicU64,
        /// NIC counters since the start (`rx_dropped`, `rx_missed_errors`, `rx_fifo_errors`).
        pub nic_rx_dropped: AtomicU64,
        pub nic_rx_missed: AtomicU64,
        pub nic_rx_fifo: AtomicU64,
        /// Packets lost because the store could not keep up: refused frames counted at the
        /// end of a capture, and ring overflows while the store held the capture back.
        pub backpressure_drops: AtomicU64,
        /// Wire bytes of the backpressure drops whose frames the capture saw (ring
        /// overflows have no known size).
        pub backpressure_bytes: AtomicU64,
        /// Packets stored shorter than on the wire (snaplen or ring block too small).
        pub truncated_packets: AtomicU64,
        /// Blocks whose frame chain was inconsistent (rest of the block skipped).
        pub malformed_blocks: AtomicU64,
        /// Timestamp of the last stored packet (ns since the epoch).
        pub last_packet_ns: AtomicU64,
        /// Times the kernel ring's fill rose to the high-water mark
        /// ([`crate::engine::RING_HIGH_WATER_PCT`] of its blocks retired to us and not
        /// handed back): the capture was close to losing frames, whether or not it then
        /// did. Counted on the rise (again only after the fill fell below half). In what
        /// were reserved words: older pages read 0.
        pub ring_near_loss: AtomicU64,
        /// The highest fill seen, in percent of the ring's blocks (gauge).
        pub ring_peak_fill_pct: AtomicU64,
        /// Ring blocks written to the store from the ring's memory (zero-copy), and the
        /// bytes of their frames (part of `stored_bytes`, never copied in user space). In
        /// what were reserved words: older pages read 0.
        pub zero_copy_blocks: AtomicU64,
        pub zero_copy_bytes: AtomicU64,
        pub reserved: [AtomicU64; 2],
    }

    /// Packets the capture handed to the store that the disk then failed to write
    /// (published by the store sink with the writer's gauges). Right after the interface
    /// slots, in what was unused space of the version-1 page: pages of older captures read
    /// zeros there ("none").
    #[repr(C)]
    #[derive(FromBytes, IntoBytes, KnownLayout)]
    pub struct DiskErrors {
        /// Writes and fdatasyncs the disk failed since the capture opened the store.
        pub write_errors: AtomicU64,
        /// Packets lost to them (counted as stored when appended; not on the disk).
        pub lost_packets: AtomicU64,
        /// errno of the last failure (0: none).
        pub last_errno: AtomicU64,
        pub reserved: [AtomicU64; 5],
    }

    /// Link faults and frame-shape checks of one interface (version 2): what the capture
    /// could not see, and when. Written by the supervisor's tick, except `coalesced_frames`,
    /// `socket_errors` (capture thread) and `unread_at_stop` (end of capture).
    /// Intervals: `*_since_ns` is the CLOCK_REALTIME start of the open interval (0 = none
    /// open), `*_ns` the summed length of the closed ones, `*_events` how many started.
    #[repr(C)]
    #[derive(FromBytes, IntoBytes, KnownLayout)]
    pub struct Link {
        /// The interface exists but is down (admin down or no carrier).
        pub down_since_ns: AtomicU64,
        pub down_ns: AtomicU64,
        pub down_events: AtomicU64,
        /// No interface of that name (deleted; a re-plugged USB NIC before it is back).
        pub gone_since_ns: AtomicU64,
        pub gone_ns: AtomicU64,
        pub gone_events: AtomicU64,
        /// Times the sockets were bound again to a re-created interface (new ifindex).
        pub rebinds: AtomicU64,
        /// Socket errors the capture thread cleared (the kernel reports ENETDOWN when the
        /// link goes down or the interface goes away, even between two ticks).
        pub socket_errors: AtomicU64,
        /// CLOCK_REALTIME ns of the last cleared socket error.
        pub last_socket_error_ns: AtomicU64,
        /// Frames longer than `frame_limit`: merged by an offload (GRO/LRO/TSO), not the
        /// wire's frames. Stored as they came, counted, and raised as an alarm.
        pub coalesced_frames: AtomicU64,
        /// The longest frame the wire can carry: MTU + Ethernet header + two VLAN tags
        /// (gauge; 0 = unknown, no check).
        pub frame_limit: AtomicU64,
        /// Merging offloads still on after start-up tried to switch them off
        /// (`sys::ethtool::OFFLOAD_*` bits; gauge).
        pub offloads_on: AtomicU64,
        /// Frames the kernel had put into the ring that were not read when the capture
        /// ended (the block the kernel was filling) while the store could take them; with
        /// a stalled store they count as `backpressure_drops` instead.
        pub unread_at_stop: AtomicU64,
        /// Frames the kernel handed to this interface's sockets, into the ring or dropped
        /// for want of room (`tp_packets`, summed). Every one of them is in `packets`,
        /// `kernel_ring_drops`, `backpressure_drops` or `unread_at_stop` (less a block's
        /// worth while running; exactly once the capture stopped, unless `--count` ended it).
        pub ring_frames: AtomicU64,
        /// Frames an interface re-created under the same name received before the capture
        /// bound to it (its kernel `rx_packets` read just before each re-bind, summed): the
        /// capture never saw them, they are lost. In what was the first reserved word:
        /// older pages read 0.
        pub missed_before_rebind: AtomicU64,
        pub reserved: [AtomicU64; 1],
    }

    #[repr(C)]
    #[derive(FromBytes, IntoBytes, KnownLayout)]
    pub struct Page {
        pub header: Header,
        pub interfaces: [Interface; MAX_INTERFACES],
        /// Disk write errors (see [`DiskErrors`]).
        pub disk: DiskErrors,
        /// Version 2: one [`Link`] group per interface slot.
        pub links: [Link; MAX_INTERFACES],
    }

    /// The file is two pages of 4 KiB.
    pub const PAGE_FILE_LEN: usize = 8192;
    const _: () = assert!(size_of::<Page>() <= PAGE_FILE_LEN);
    const _: () = assert!(size_of::<Header>() == 16 * 8);
    const _: () = assert!(size_of::<Writer>() == 7 * 8);
    const _: () = assert!(size_of::<DiskErrors>() == 8 * 8);
    const _: () = assert!(std::mem::offset_of!(Header, writer) == 8 * 8);
    const _: () = assert!(size_of::<Interface>() == 24 * 8);
    const _: () = assert!(size_of::<Link>() == 16 * 8);
}

pub use layout::MAX_INTERFACES;
use layout::{Interface, Link, Page};

/// Stats page errors.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot map {path}: {source}")]
    Map {
        path: PathBuf,
        source: crate::sys::SysError,
    },
    #[error("{path} is not a capture stats page (bad magic); is another program writing there?")]
    BadMagic { path: PathBuf },
    #[error(
        "{path} has layout version {found}, this build reads {expected}: a different kuroko version wrote it; restart the capture with this one (or read it with the matching kuroko)"
    )]
    Version {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("{count} capture interfaces, at most {max} fit the stats page")]
    TooManyInterfaces { count: usize, max: usize },
    #[error("no capture has run in {dir} yet (no {path})")]
    Missing { dir: PathBuf, path: PathBuf },
}

/// Path of the stats page in a data directory.
pub fn page_path(data_dir: &Path) -> PathBuf {
    data_dir.join("stats").join("capture.stats")
}

fn name_words(name: &str) -> [u64; 2] {
    let mut b = [0u8; layout::NAME_LEN];
    for (d, s) in b.iter_mut().zip(name.bytes().take(layout::NAME_LEN)) {
        *d = s;
    }
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&b[..8]);
    hi.copy_from_slice(&b[8..]);
    [u64::from_le_bytes(lo), u64::from_le_bytes(hi)]
}

fn words_name(w: [u64; 2]) -> String {
    let mut b = Vec::with_capacity(layout::NAME_LEN);
    b.extend_from_slice(&w[0].to_le_bytes());
    b.extend_from_slice(&w[1].to_le_bytes());
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The writer side: owned by the capture process.
pub struct StatsPage {
    page: SharedPage<Page>,
    path: PathBuf,
}

impl StatsPage {
    /// Creates `DIR/stats/capture.stats` for these interfaces (name, ifindex), replacing a
    /// previous page atomically.
    pub fn create(data_dir: &Path, interfaces: &[(String, u32)]) -> Result<StatsPage, StatsError> {
        if interfaces.len() > MAX_INTERFACES {
            return Err(StatsError::TooManyInterfaces {
                count: interfaces.len(),
                max: MAX_INTERFACES,
            });
        }
        let dir = data_dir.join("stats");
        std::fs::create_dir_all(&dir).map_err(|source| StatsError::Io {
            what: "create directory",
            path: dir.clone(),
            source,
        })?;
        let path = page_path(data_dir);
        let tmp = dir.join(format!(".capture.stats.{}", std::process::id()));
        let io = |what, source| StatsError::Io {
            what,
            path: tmp.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io("create", e))?;
        file.write_all(&[0u8; layout::PAGE_FILE_LEN])
            .map_err(|e| io("write", e))?;
        let page = SharedPage::<Page>::map_rw(&file).map_err(|source| StatsError::Map {
            path: tmp.clone(),
            source,
        })?;
        {
            let p = page.get();
            let h = &p.header;
            h.version.store(layout::STATS_VERSION, Ordering::Relaxed);
            h.pid
                .store(u64::from(std::process::id()), Ordering::Relaxed);
            h.interface_count
                .store(interfaces.len() as u64, Ordering::Relaxed);
            let now = crate::sys::process::realtime_ns();
            h.started_ns.store(now, Ordering::Relaxed);
            h.heartbeat_ns.store(now, Ordering::Relaxed);
            h.state.store(layout::STATE_STARTING, Ordering::Relaxed);
            for (slot, (name, idx)) in p.interfaces.iter().zip(interfaces) {
                let w = name_words(name);
                slot.name[0].store(w[0], Ordering::Relaxed);
                slot.name[1].store(w[1], Ordering::Relaxed);
                slot.ifindex.store(u64::from(*idx), Ordering::Relaxed);
            }
            h.magic.store(layout::STATS_MAGIC, Ordering::Release);
        }
        std::fs::rename(&tmp, &path).map_err(|source| StatsError::Io {
            what: "rename into place",
            path: path.clone(),
            source,
        })?;
        Ok(StatsPage { page, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters of interface slot `i` (panics never: out of range gives the last slot,
    /// which callers avoid by construction).
    pub fn interface(&self, i: usize) -> &Interface {
        let p = self.page.get();
        &p.interfaces[i.min(MAX_INTERFACES - 1)]
    }

    /// Link-fault counters of interface slot `i` (same clamping as [`Self::interface`]).
    pub fn link(&self, i: usize) -> &Link {
        let p = self.page.get();
        &p.links[i.min(MAX_INTERFACES - 1)]
    }

    pub fn set_state(&self, state: u64) {
        self.page.get().header.state.store(state, Ordering::Release);
    }
    pub fn set_threads(&self, n: u64) {
        self.page.get().header.threads.store(n, Ordering::Relaxed);
    }
    pub fn heartbeat(&self) {
        self.page
            .get()
            .header
            .heartbeat_ns
            .store(crate::sys::process::realtime_ns(), Ordering::Release);
    }
}

/// The store sink's handle on the writer gauges of its own capture's page.
///
/// The engine creates the sinks before the page, so the publisher attaches lazily: to
/// the page at `DIR/stats/capture.stats` written by this process after the publisher was
/// made (an older page of an earlier capture is left alone), retrying at most once a
/// second until it appears. Attaching opens and maps a file (no heap allocation);
/// publishing is a few relaxed stores.
pub struct WriterPublisher {
    path: PathBuf,
    created_ns: u64,
    page: Option<SharedPage<Page>>,
    next_try_ns: u64,
}

/// How often a publisher without a page looks for it again.
const ATTACH_RETRY_NS: u64 = 1_000_000_000;

impl WriterPublisher {
    pub fn new(data_dir: &Path) -> WriterPublisher {
        WriterPublisher {
            path: page_path(data_dir),
            created_ns: crate::sys::process::realtime_ns(),
            page: None,
            next_try_ns: 0,
        }
    }

    /// Whether the page was found (for tests and diagnostics).
    pub fn attached(&self) -> bool {
        self.page.is_some()
    }

    fn attach(&mut self, now_ns: u64) {
        if now_ns < self.next_try_ns {
            return;
        }
        self.next_try_ns = now_ns.saturating_add(ATTACH_RETRY_NS);
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&self.path) else {
            return;
        };
        let Ok(page) = SharedPage::<Page>::map_rw(&file) else {
            return;
        };
        let h = &page.get().header;
        if h.magic.load(Ordering::Acquire) == layout::STATS_MAGIC
            && h.version.load(Ordering::Relaxed) == layout::STATS_VERSION
            && h.pid.load(Ordering::Relaxed) == u64::from(std::process::id())
            && h.started_ns.load(Ordering::Relaxed) >= self.created_ns
        {
            self.page = Some(page);
        }
    }

    /// Publishes the disk write errors (the store sink, with the writer's gauges).
    pub fn publish_disk_errors(&mut self, d: &DiskErrorCounts) {
        if self.page.is_none() {
            self.attach(crate::sys::process::realtime_ns());
        }
        let Some(page) = &self.page else {
            return;
        };
        let p = &page.get().disk;
        p.write_errors.store(d.write_errors, Ordering::Relaxed);
        p.lost_packets.store(d.lost_packets, Ordering::Relaxed);
        p.last_errno.store(d.last_errno, Ordering::Relaxed);
    }

    /// Publishes the writer's figures (`pool_bytes` 0 = unknown).
    pub fn publish(&mut self, g: &WriterGauges) {
        let now = crate::sys::process::realtime_ns();
        if self.page.is_none() {
            self.attach(now);
        }
        let Some(page) = &self.page else {
            return;
        };
        let w = &page.get().header.writer;
        w.bytes_written.store(g.bytes_written, Ordering::Relaxed);
        w.packets_written
            .store(g.packets_written, Ordering::Relaxed);
        w.bytes_in_flight
            .store(g.bytes_in_flight, Ordering::Relaxed);
        w.blocks_in_flight
            .store(g.blocks_in_flight, Ordering::Relaxed);
        w.bytes_buffered.store(g.bytes_buffered, Ordering::Relaxed);
        w.pool_bytes
            .store(g.pool_bytes.unwrap_or(0), Ordering::Relaxed);
        w.updated_ns.store(now.max(1), Ordering::Release);
    }
}

/// Adds `v` to a counter (no-op for 0, to spare the cache line).
#[inline]
pub(crate) fn add(c: &AtomicU64, v: u64) {
    if v != 0 {
        c.fetch_add(v, Ordering::Relaxed);
    }
}

/// Drops of one interface, by cause.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Ring full: the kernel could not copy the packet into the ring.
    pub kernel_ring: u64,
    /// `rx_dropped` since the start. NOT part of [`Drops::total`]: Linux adds to it every
    /// frame the host's stack discards for lack of a protocol handler (LLDP, STP, QinQ
    /// without a VLAN device, …) *after* the capture socket got its copy, so on a mirror
    /// port it grows with traffic that was captured. Shown for diagnosis only.
    pub nic_dropped: u64,
    /// NIC ran out of receive descriptors (`rx_missed_errors`).
    pub nic_missed: u64,
    /// NIC FIFO overruns (`rx_fifo_errors`).
    pub nic_fifo: u64,
    /// The segment store could not keep up (it refused frames, or held the capture thread
    /// while the ring overflowed).
    pub backpressure: u64,
    /// Delivered into the ring by the kernel but not read when the capture ended (the
    /// block the kernel was still filling), with the store able to take them.
    pub unread_at_stop: u64,
    /// Received by an interface re-created under the same name before the capture bound
    /// to it (the new interface's `rx_packets` at the re-bind).
    pub missed_before_rebind: u64,
}

impl Drops {
    /// Packets lost by the capture: ring, NIC (missed, FIFO), store backpressure, left in
    /// the ring at stop, and received by a re-created interface before the re-bind.
    pub fn total(&self) -> u64 {
        self.kernel_ring
            + self.nic_missed
            + self.nic_fifo
            + self.backpressure
            + self.unread_at_stop
            + self.missed_before_rebind
    }
}

/// One interface's counters, copied out of the page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    pub name: String,
    pub ifindex: u32,
    pub link_up: bool,
    pub hardware_timestamps: bool,
    pub packets: u64,
    pub bytes: u64,
    pub stored_bytes: u64,
    pub drops: Drops,
    pub backpressure_bytes: u64,
    pub kernel_ring_freezes: u64,
    /// See [`layout::Interface::ring_near_loss`].
    pub ring_near_loss: u64,
    pub ring_peak_fill_pct: u64,
    /// See [`layout::Interface::zero_copy_blocks`].
    pub zero_copy_blocks: u64,
    pub zero_copy_bytes: u64,
    pub truncated_packets: u64,
    pub malformed_blocks: u64,
    pub last_packet_ns: u64,
    pub link: LinkFaults,
}

/// Link faults of one interface, copied out of the page (layout [`layout::Link`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// Start of the open link-down interval (CLOCK_REALTIME ns), if the link is down now.
    pub down_since_ns: Option<u64>,
    /// Length of the closed link-down intervals.
    pub down_ns: u64,
    pub down_events: u64,
    /// Start of the open interface-gone interval, if the interface is gone now.
    pub gone_since_ns: Option<u64>,
    pub gone_ns: u64,
    pub gone_events: u64,
    pub rebinds: u64,
    pub socket_errors: u64,
    pub coalesced_frames: u64,
    /// MTU + link headers; 0 = unknown.
    pub frame_limit: u64,
    /// `sys::ethtool::OFFLOAD_*` bits still on.
    pub offloads_on: u64,
    pub unread_at_stop: u64,
    pub ring_frames: u64,
}

impl LinkFaults {
    /// The capture cannot see this interface now (down or gone).
    pub fn blind(&self) -> bool {
        self.down_since_ns.is_some() || self.gone_since_ns.is_some()
    }
    /// Nanoseconds down, the open interval counted up to `now_ns`.
    pub fn down_total_ns(&self, now_ns: u64) -> u64 {
        self.down_ns + self.down_since_ns.map_or(0, |s| now_ns.saturating_sub(s))
    }
    /// Nanoseconds gone, the open interval counted up to `now_ns`.
    pub fn gone_total_ns(&self, now_ns: u64) -> u64 {
        self.gone_ns + self.gone_since_ns.map_or(0, |s| now_ns.saturating_sub(s))
    }
}

/// Whether the capture that wrote the page is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureState {
    Starting,
    Running,
    Stopped,
    Failed,
    Unknown(u64),
}

/// A copy of the stats page at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub pid: u32,
    pub started_ns: u64,
    pub heartbeat_ns: u64,
    pub state: CaptureState,
    pub threads: u64,
    pub interfaces: Vec<InterfaceStats>,
    /// The store writer's gauges; `None` when the capture's sink does not publish them
    /// (pages written before they existed).
    pub writer: Option<WriterGauges>,
    /// Disk write errors of the store (zeros when none, or on older pages).
    pub disk_errors: DiskErrorCounts,
}

/// Disk write errors as published on the page (see [`layout::DiskErrors`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskErrorCounts {
    pub write_errors: u64,
    /// Packets lost to them: counted as stored by the interfaces, not on the disk.
    pub lost_packets: u64,
    pub last_errno: u64,
}

/// The store writer's live counters and backlog, as published on the page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterGauges {
    /// CLOCK_REALTIME ns of the publication (about once per ring block and when idle;
    /// older than the heartbeat when the capture thread is stuck in a write).
    pub updated_ns: u64,
    /// Since the capture opened the store.
    pub bytes_written: u64,
    pub packets_written: u64,
    pub bytes_in_flight: u64,
    pub blocks_in_flight: u64,
    pub bytes_buffered: u64,
    /// Size of the writer's buffer pool, when the writer says.
    pub pool_bytes: Option<u64>,
}

impl WriterGauges {
    /// Bytes accepted from the capture and not yet on the disk.
    pub fn backlog_bytes(&self) -> u64 {
        self.bytes_in_flight.saturating_add(self.bytes_buffered)
    }
    /// The backlog as a share of the buffer pool (0..=1), when the pool size is known.
    pub fn pool_fraction(&self) -> Option<f64> {
        self.pool_bytes
            .filter(|p| *p > 0)
            .map(|p| (self.backlog_bytes() as f64 / p as f64).min(1.0))
    }
}

/// Heartbeats older than this mean the capture process is gone (it updates every 250 ms).
pub const STALE_AFTER_NS: u64 = 3_000_000_000;

impl StatsSnapshot {
    /// Running and heartbeating recently (`now_ns` = CLOCK_REALTIME).
    pub fn is_live(&self, now_ns: u64) -> bool {
        matches!(self.state, CaptureState::Running | CaptureState::Starting)
            && now_ns.saturating_sub(self.heartbeat_ns) < STALE_AFTER_NS
    }
    pub fn total_packets(&self) -> u64 {
        self.interfaces.iter().map(|i| i.packets).sum()
    }
    pub fn total_drops(&self) -> Drops {
        let mut d = Drops::default();
        for i in &self.interfaces {
            d.kernel_ring += i.drops.kernel_ring;
            d.nic_dropped += i.drops.nic_dropped;
            d.nic_missed += i.drops.nic_missed;
            d.nic_fifo += i.drops.nic_fifo;
            d.backpressure += i.drops.backpressure;
            d.unread_at_stop += i.drops.unread_at_stop;
            d.missed_before_rebind += i.drops.missed_before_rebind;
        }
        d
    }
}

/// Read-only view of a capture's stats page, for the console and `kuroko status`.
pub struct StatsReader {
    page: ReadOnlyPage<Page>,
    path: PathBuf,
}

impl StatsReader {
    /// Maps `DIR/stats/capture.stats` read-only and checks its magic and version.
    pub fn open(data_dir: &Path) -> Result<StatsReader, StatsError> {
        let path = page_path(data_dir);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StatsError::Missing {
                    dir: data_dir.to_path_buf(),
                    path,
                });
            }
            Err(source) => {
                return Err(StatsError::Io {
                    what: "open",
                    path,
                    source,
                });
            }
        };
        // The version words come first: check them before asking for the whole v2 size,
        // so a page of an older layout is named as such, not as a short file.
        let head =
            ReadOnlyPage::<layout::Header>::map(&file).map_err(|source| StatsError::Map {
                path: path.clone(),
                source,
            })?;
        let h = head.load();
        if h.magic.load(Ordering::Acquire) != layout::STATS_MAGIC {
            return Err(StatsError::BadMagic { path });
        }
        let v = h.version.load(Ordering::Relaxed);
        if v != layout::STATS_VERSION {
            return Err(StatsError::Version {
                path,
                found: v,
                expected: layout::STATS_VERSION,
            });
        }
        let page = ReadOnlyPage::<Page>::map(&file).map_err(|source| StatsError::Map {
            path: path.clone(),
            source,
        })?;
        Ok(StatsReader { page, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the counters out.
    pub fn snapshot(&self) -> StatsSnapshot {
        let p = self.page.load();
        let p = &p;
        let h = &p.header;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let n = (ld(&h.interface_count) as usize).min(MAX_INTERFACES);
        let interfaces = p.interfaces[..n]
            .iter()
            .zip(&p.links)
            .map(|(i, l)| InterfaceStats {
                name: words_name([ld(&i.name[0]), ld(&i.name[1])]),
                ifindex: ld(&i.ifindex) as u32,
                link_up: ld(&i.link_up) != 0,
                hardware_timestamps: ld(&i.hardware_timestamps) != 0,
                packets: ld(&i.packets),
                bytes: ld(&i.bytes),
                stored_bytes: ld(&i.stored_bytes),
                drops: Drops {
                    kernel_ring: ld(&i.kernel_ring_drops),
                    nic_dropped: ld(&i.nic_rx_dropped),
                    nic_missed: ld(&i.nic_rx_missed),
                    nic_fifo: ld(&i.nic_rx_fifo),
                    backpressure: ld(&i.backpressure_drops),
                    unread_at_stop: ld(&l.unread_at_stop),
                    missed_before_rebind: ld(&l.missed_before_rebind),
                },
                backpressure_bytes: ld(&i.backpressure_bytes),
                kernel_ring_freezes: ld(&i.kernel_ring_freezes),
                ring_near_loss: ld(&i.ring_near_loss),
                ring_peak_fill_pct: ld(&i.ring_peak_fill_pct),
                zero_copy_blocks: ld(&i.zero_copy_blocks),
                zero_copy_bytes: ld(&i.zero_copy_bytes),
                truncated_packets: ld(&i.truncated_packets),
                malformed_blocks: ld(&i.malformed_blocks),
                last_packet_ns: ld(&i.last_packet_ns),
                link: LinkFaults {
                    down_since_ns: Some(ld(&l.down_since_ns)).filter(|t| *t != 0),
                    down_ns: ld(&l.down_ns),
                    down_events: ld(&l.down_events),
                    gone_since_ns: Some(ld(&l.gone_since_ns)).filter(|t| *t != 0),
                    gone_ns: ld(&l.gone_ns),
                    gone_events: ld(&l.gone_events),
                    rebinds: ld(&l.rebinds),
                    socket_errors: ld(&l.socket_errors),
                    coalesced_frames: ld(&l.coalesced_frames),
                    frame_limit: ld(&l.frame_limit),
                    offloads_on: ld(&l.offloads_on),
                    unread_at_stop: ld(&l.unread_at_stop),
                    ring_frames: ld(&l.ring_frames),
                },
            })
            .collect();
        let state = match h.state.load(Ordering::Acquire) {
            layout::STATE_STARTING => CaptureState::Starting,
            layout::STATE_RUNNING => CaptureState::Running,
            layout::STATE_STOPPED => CaptureState::Stopped,
            layout::STATE_FAILED => CaptureState::Failed,
            other => CaptureState::Unknown(other),
        };
        let w = &h.writer;
        let updated_ns = w.updated_ns.load(Ordering::Acquire);
        let writer = (updated_ns != 0).then(|| WriterGauges {
            updated_ns,
            bytes_written: ld(&w.bytes_written),
            packets_written: ld(&w.packets_written),
            bytes_in_flight: ld(&w.bytes_in_flight),
            blocks_in_flight: ld(&w.blocks_in_flight),
            bytes_buffered: ld(&w.bytes_buffered),
            pool_bytes: Some(ld(&w.pool_bytes)).filter(|p| *p != 0),
        });
        StatsSnapshot {
            pid: ld(&h.pid) as u32,
            started_ns: ld(&h.started_ns),
            heartbeat_ns: ld(&h.heartbeat_ns),
            state,
            threads: ld(&h.threads),
            interfaces,
            writer,
            disk_errors: DiskErrorCounts {
                write_errors: ld(&p.disk.write_errors),
                lost_packets: ld(&p.disk.lost_packets),
                last_errno: ld(&p.disk.last_errno),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_updates_are_seen_by_a_reader_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = StatsPage::create(
            dir.path(),
            &[("eth7".into(), 7), ("mirror-long-nam".into(), 9)],
        )
        .unwrap();
        let r = StatsReader::open(dir.path()).unwrap();
        let s0 = r.snapshot();
        assert_eq!(s0.state, CaptureState::Starting);
        assert_eq!(s0.interfaces.len(), 2);
        assert_eq!(s0.interfaces[0].name, "eth7");
        assert_eq!(s0.interfaces[1].name, "mirror-long-nam");
        assert_eq!(s0.interfaces[1].ifindex, 9);
        assert_eq!(s0.pid, std::process::id());

        add(&w.interface(1).packets, 5);
        add(&w.interface(1).backpressure_drops, 3);
        add(&w.interface(0).kernel_ring_drops, 2);
        w.set_state(layout::STATE_RUNNING);
        let s1 = r.snapshot();
        assert_eq!(s1.state, CaptureState::Running);
        assert_eq!(s1.interfaces[1].packets, 5);
        assert_eq!(s1.total_drops().backpressure, 3);
        assert_eq!(s1.total_drops().kernel_ring, 2);
        assert_eq!(s1.total_drops().total(), 5);
        add(&w.interface(0).nic_rx_dropped, 7);
        assert_eq!(
            r.snapshot().total_drops().total(),
            5,
            "rx_dropped is not a capture loss"
        );
        assert!(s1.is_live(crate::sys::process::realtime_ns()));
        assert!(!s1.is_live(s1.heartbeat_ns + STALE_AFTER_NS + 1));
    }

    #[test]
    fn layout_words_stay_where_older_readers_expect_them() {
        use layout::{Header, Interface, Page, Writer};
        use std::mem::offset_of;
        // Version-1 words before the writer gauges, and the interface slots, unchanged.
        assert_eq!(offset_of!(Header, magic), 0);
        assert_eq!(offset_of!(Header, threads), 7 * 8);
        assert_eq!(offset_of!(Header, writer), 8 * 8);
        assert_eq!(offset_of!(Writer, updated_ns), 0);
        assert_eq!(offset_of!(Writer, pool_bytes), 6 * 8);
        assert_eq!(offset_of!(Header, reserved), 15 * 8);
        assert_eq!(offset_of!(Page, interfaces), 16 * 8);
        assert_eq!(offset_of!(Interface, last_packet_ns), 17 * 8);
        assert_eq!(offset_of!(Page, disk), 16 * 8 + MAX_INTERFACES * 24 * 8);
        assert_eq!(
            offset_of!(Page, links),
            16 * 8 + MAX_INTERFACES * 24 * 8 + 8 * 8
        );
        assert_eq!(layout::STATS_VERSION, 2);
    }

    #[test]
    fn a_page_without_writer_gauges_reads_as_not_published() {
        // What a capture built before the gauges leaves: zeros in those words.
        let dir = tempfile::tempdir().unwrap();
        let _w = StatsPage::create(dir.path(), &[("eth0".into(), 2)]).unwrap();
        let s = StatsReader::open(dir.path()).unwrap().snapshot();
        assert_eq!(s.writer, None);
    }

    #[test]
    fn publisher_attaches_to_its_own_new_page_only() {
        let dir = tempfile::tempdir().unwrap();
        // A page from an earlier capture of this process: not ours.
        let old = StatsPage::create(dir.path(), &[("eth0".into(), 2)]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let mut p = WriterPublisher::new(dir.path());
        let g = WriterGauges {
            updated_ns: 0,
            bytes_written: 4096,
            packets_written: 3,
            bytes_in_flight: 8192,
            blocks_in_flight: 2,
            bytes_buffered: 100,
            pool_bytes: Some(65536),
        };
        p.publish(&g);
        assert!(!p.attached());
        drop(old);
        assert_eq!(
            StatsReader::open(dir.path()).unwrap().snapshot().writer,
            None
        );
        // The capture's page appears; the next try (a second later) finds it.
        let _page = StatsPage::create(dir.path(), &[("eth0".into(), 2)]).unwrap();
        p.next_try_ns = 0;
        p.publish(&g);
        assert!(p.attached());
        let got = StatsReader::open(dir.path())
            .unwrap()
            .snapshot()
            .writer
            .unwrap();
        assert!(got.updated_ns > 0);
        assert_eq!(
            got,
            WriterGauges {
                updated_ns: got.updated_ns,
                ..g
            }
        );
        assert_eq!(got.backlog_bytes(), 8292);
        assert_eq!(got.pool_fraction(), Some(8292.0 / 65536.0));
        // A pool of unknown size reads as None, not 0.
        p.publish(&WriterGauges {
            pool_bytes: None,
            ..g
        });
        let got = StatsReader::open(dir.path())
            .unwrap()
            .snapshot()
            .writer
            .unwrap();
        assert_eq!((got.pool_bytes, got.pool_fraction()), (None, None));
    }

    #[test]
    fn reader_rejects_a_missing_or_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            StatsReader::open(dir.path()),
            Err(StatsError::Missing { .. })
        ));
        std::fs::create_dir_all(dir.path().join("stats")).unwrap();
        std::fs::write(page_path(dir.path()), vec![0xabu8; layout::PAGE_FILE_LEN]).unwrap();
        assert!(matches!(
            StatsReader::open(dir.path()),
            Err(StatsError::BadMagic { .. })
        ));
        std::fs::write(page_path(dir.path()), b"short").unwrap();
        assert!(matches!(
            StatsReader::open(dir.path()),
            Err(StatsError::Map { .. })
        ));
    }

    #[test]
    fn a_version_1_page_is_named_as_such_not_as_a_short_file() {
        // What a capture built before the link group leaves: 4 KiB, version 1.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("stats")).unwrap();
        let mut v1 = vec![0u8; 4096];
        v1[..8].copy_from_slice(&layout::STATS_MAGIC.to_le_bytes());
        v1[8..16].copy_from_slice(&1u64.to_le_bytes());
        std::fs::write(page_path(dir.path()), v1).unwrap();
        assert!(matches!(
            StatsReader::open(dir.path()),
            Err(StatsError::Version {
                found: 1,
                expected: 2,
                ..
            })
        ));
    }

    #[test]
    fn link_fault_words_reach_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let w = StatsPage::create(dir.path(), &[("eth1".into(), 3)]).unwrap();
        let l = w.link(0);
        l.gone_since_ns.store(5_000_000_000, Ordering::Relaxed);
        l.gone_events.store(1, Ordering::Relaxed);
        l.down_ns.store(2_000_000_000, Ordering::Relaxed);
        l.coalesced_frames.store(95, Ordering::Relaxed);
        l.unread_at_stop.store(4, Ordering::Relaxed);
        let s = StatsReader::open(dir.path()).unwrap().snapshot();
        let f = &s.interfaces[0].link;
        assert!(f.blind());
        assert_eq!(f.gone_total_ns(6_000_000_000), 1_000_000_000);
        assert_eq!(f.down_total_ns(6_000_000_000), 2_000_000_000);
        assert_eq!(f.coalesced_frames, 95);
        assert_eq!(s.total_drops().unread_at_stop, 4);
        assert_eq!(
            s.total_drops().total(),
            4,
            "frames unread at stop are a loss"
        );
    }

    #[test]
    fn too_many_interfaces_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let many: Vec<(String, u32)> = (0..=MAX_INTERFACES)
            .map(|i| (format!("e{i}"), i as u32))
            .collect();
        assert!(matches!(
            StatsPage::create(dir.path(), &many),
            Err(StatsError::TooManyInterfaces { .. })
        ));
    }
}
