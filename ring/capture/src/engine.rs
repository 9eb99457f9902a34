//! The capture engine: rings, capture threads, the supervisor's bookkeeping.
//!
//! Start-up (privileged, may allocate): compile the filter, open one TPACKET_V3 socket per
//! (interface × thread), create the sinks, create the stats page, spawn the capture threads
//! (each pins itself, optionally goes SCHED_FIFO, then drops its capabilities), lock memory,
//! and drop the calling thread's capabilities.
//!
//! Hot path (each capture thread, until stopped): take the next retired block of each of its
//! rings, rebuild each frame as it was on the wire, append it to the sink (one copy), hand the
//! block back, add the block's counters to the stats page. No allocation, no lock, no
//! formatting, no log: a fatal sink error ends the thread and is turned into text only then.
//! Idle: reap writes, flush a partly filled buffer after [`FLUSH_IDLE_NS`] without packets
//! or [`FLUSH_MAX_AGE_NS`] after its first unwritten packet, poll(2) the rings.
//!
//! The supervisor (the caller's thread) calls [`Capture::tick`] a few times a second: NIC
//! counters, link state, heartbeat; and decides when to stop (signal, duration, count).
//!
//! Link faults: a link that goes down, or an interface deleted and re-created, leaves an
//! error (ENETDOWN) on the capture socket; the capture thread clears it in its poll
//! (`sys::packet::wait_any`) and keeps sleeping in poll, never spinning. The supervisor asks
//! the socket every tick what became of its interface ([`RingControl::link`]): down
//! intervals and gone intervals go to the stats page (`layout::Link`), and an interface back
//! under the same name with a new ifindex gets the same sockets bound to it again
//! ([`RingControl::rebind`], which needs no capability: see there why).
//!
//! Loss accounting: every frame the kernel put into a ring is stored or counted by cause.
//! Ring overflows count as `kernel_ring` only while the capture kept up; while the store
//! refused frames or held the capture thread in a call for [`STORE_BLOCKED_NS`] or more
//! (a seal waiting on fdatasync, a state file rewrite), and until the ring is drained again
//! afterwards, they are the store's `backpressure`. At the end each socket is unhooked and
//! what the kernel delivered but nobody read (the block it was still filling) is counted.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use crate::filter::{self, FilterError};
use crate::frame::{self, VLAN_TAG_LEN};
use crate::gaps::{GapJournal, GapKind};
use crate::nic::{self, NicTotals};
use crate::sink::{Appended, PacketMeta, RecordSink};
use crate::stats::{self, StatsPage, StatsReader, StatsSnapshot, add, layout};
use crate::sys::SysError;
use crate::sys::ethtool;
use crate::sys::packet::{Fanout, LinkState, RingControl, RingOptions, RxRing};
use crate::sys::process;

/// A partly filled store buffer is written out after this long without packets, so
/// recent traffic becomes readable within seconds even on a quiet link.
pub const FLUSH_IDLE_NS: u64 = 1_000_000_000;
/// ... and at the latest this long after its first unwritten packet: a slow trickle (an
/// interactive SSH session, a packet every second) never leaves the link idle for
/// [`FLUSH_IDLE_NS`], and would otherwise wait for the buffer to fill (it reached the
/// store 14 s late). Flushing closes a partly filled block, a few KiB at most.
pub const FLUSH_MAX_AGE_NS: u64 = 2_000_000_000;
/// How long a capture thread sleeps in poll(2) when no block is ready.
pub const POLL_TIMEOUT_MS: i32 = 50;
/// How often a capture thread reads its sockets' kernel counters.
pub const KERNEL_STATS_EVERY_NS: u64 = 200_000_000;
/// Rings one capture thread may serve (its poll set lives on the stack).
pub const MAX_RINGS_PER_THREAD: usize = crate::sys::packet::MAX_WAIT_RINGS;
/// Smallest and largest ring block (the kernel wants page multiples; a block must hold a
/// jumbo frame).
pub const MIN_BLOCK_SIZE: u64 = 64 << 10;
pub const MAX_BLOCK_SIZE: u64 = 64 << 20;
/// Fewest blocks in a ring: below that the kernel freezes on every retire.
pub const MIN_BLOCKS: u64 = 4;

/// What to capture and how. The `kuroko` binary fills it from `[capture]`.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    pub interfaces: Vec<String>,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Bytes of kernel ring per socket.
    pub ring_size: u64,
    pub block_size: u64,
    /// Sockets (and capture threads, when the store takes several writers) per interface,
    /// joined by PACKET_FANOUT (flow hash, both directions of a flow on one socket).
    pub threads_per_interface: u32,
    /// Cores for the capture threads, in order; empty = unpinned.
    pub cores: Vec<usize>,
    /// SCHED_FIFO for the capture threads.
    pub realtime: bool,
    /// tcpdump syntax, empty = everything.
    pub filter: String,
    /// Block retire timeout (ms).
    pub retire_ms: u32,
    pub hardware_timestamps: bool,
    pub promiscuous: bool,
    /// mlockall(MCL_CURRENT) after start-up.
    pub lock_memory: bool,
    /// Drop every capability once the sockets are open.
    pub drop_privileges: bool,
    /// Switch off GRO, LRO, TSO and GSO on the capture interfaces at start (needs
    /// CAP_NET_ADMIN); what stays on is shown in the stats page either way.
    pub disable_offloads: bool,
    /// Stop after this many stored packets.
    pub count: Option<u64>,
    /// How many independent sinks the store can provide. With 1, one capture thread serves
    /// every socket (the sockets of one interface still fan out, which spreads the kernel's
    /// work but not ours).
    pub max_writers: usize,
    /// Zero-copy capture (`[capture] zero_copy`): whole ring blocks written to the store
    /// from the ring's memory (see `sys::zc`) instead of each frame copied into the store's
    /// buffers. Needs a sink that takes ring blocks (the store's writer; not lanes, not a
    /// rate limit); the ring block size is then at most what fits a store chunk.
    pub zero_copy: ZeroCopy,
}

/// When the capture writes ring blocks as they are (see [`CaptureOptions::zero_copy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Never: every frame is copied into the store's records.
    Off,
    /// Always when the sink takes ring blocks (`start` fails when it cannot).
    On,
    /// Blocks whose frames average at least [`ZERO_COPY_AUTO_MIN_FRAME`] ring bytes go
    /// as they are, smaller ones are copied (denser on disk, and cheaper: see there).
    Auto,
}

/// `zero_copy = auto`: the smallest average ring bytes per frame (`blk_len / num_pkts`:
/// the frame plus its 82-byte ring header and alignment) of a block written as it is.
pub const ZERO_COPY_AUTO_MIN_FRAME: usize = 512;

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            interfaces: Vec::new(),
            snaplen: 65535,
            ring_size: 64 << 20,
            block_size: 1 << 20,
            threads_per_interface: 1,
            cores: Vec::new(),
            realtime: false,
            filter: String::new(),
            retire_ms: 50,
            hardware_timestamps: true,
            promiscuous: true,
            lock_memory: true,
            drop_privileges: true,
            disable_offloads: true,
            count: None,
            max_writers: 1,
            zero_copy: ZeroCopy::Off,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no capture interface given; pass --iface IF or set [capture] interfaces")]
    NoInterface,
    #[error("bad capture option `{key}`: {message}")]
    Option { key: &'static str, message: String },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("capture on {iface}: {source}")]
    Socket { iface: String, source: SysError },
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error(transparent)]
    Stats(#[from] stats::StatsError),
    #[error("cannot open the store for capture thread {thread}: {message}")]
    Sink { thread: usize, message: String },
    #[error("capture thread {thread} failed: {message}")]
    Thread { thread: usize, message: String },
}

struct Shared {
    stats: StatsPage,
    stop: AtomicBool,
    /// A thread ended on an error.
    failed: AtomicBool,
    limit: Option<u64>,
    claimed: AtomicU64,
}

/// What the supervisor keeps per capture interface.
struct Interface {
    name: String,
    nic: NicTotals,
    /// Handles on this interface's sockets (duplicates of the capture threads' fds).
    controls: Vec<RingControl>,
    /// The ifindex the sockets are bound to.
    ifindex: u32,
    promiscuous: bool,
    /// CLOCK_REALTIME ns when the sockets were last bound.
    bound_ns: u64,
    /// Why the last rebind failed (the interface stays counted as gone meanwhile).
    rebind_error: Option<String>,
    /// Where closed down/gone intervals are recorded one by one.
    journal: GapJournal,
}

/// The longest frame an Ethernet link of this MTU carries: MTU + header + two VLAN tags
/// (QinQ). Anything longer was merged by an offload.
pub const LINK_HEADROOM: u64 = 14 + 2 * VLAN_TAG_LEN as u64;

/// A running capture.
pub struct Capture {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<Result<(), String>>>,
    interfaces: std::sync::Mutex<Vec<Interface>>,
    /// The rings are locked in memory (MAP_LOCKED or mlockall).
    pub memory_locked: bool,
}

/// One socket a thread serves.
struct RingSlot {
    ring: RxRing,
    iface: u16,
    /// Zero-copy tokens of this ring's blocks: `token_base | block index` (the ring's
    /// position in its thread's list, shifted up 32 bits).
    token_base: u64,
    /// Zero-copy: 0 = off; else the smallest average ring bytes per frame of a block
    /// written as it is (1 = every block).
    zc_min_frame: usize,
    /// Frames of the current (held) block already stored or counted.
    done: usize,
    /// Frames the kernel put into this ring (`tp_packets - tp_drops`, summed).
    ring_in: u64,
    /// Frames of this ring stored or counted by us.
    handled: u64,
    /// The fill is at or above the high-water mark (until it falls below half).
    near_loss: bool,
}

/// The kernel ring is "near loss" when this share of its blocks (percent) is retired to
/// the capture and not handed back: a few more blocks' worth of frames and the kernel drops.
pub const RING_HIGH_WATER_PCT: usize = 80;

/// Notes the fill of `slot`'s ring on the stats page: a rise to the high-water mark counts
/// once as `ring_near_loss` (an early warning, before any frame is lost), and the peak.
/// Called once per ring per turn of the hot loop: a few status-word reads.
fn note_fill(slot: &mut RingSlot, shared: &Shared) {
    let total = slot.ring.block_count();
    // Blocks held by zero-copy writes in flight are as unavailable to the kernel as
    // retired ones.
    let ready = slot.ring.ready_blocks() + slot.ring.held_blocks();
    let pct = ready * 100 / total.max(1);
    let i = shared.stats.interface(slot.iface as usize);
    if pct as u64 > i.ring_peak_fill_pct.load(Ordering::Relaxed) {
        i.ring_peak_fill_pct
            .fetch_max(pct as u64, Ordering::Relaxed);
    }
    if !slot.near_loss && pct >= RING_HIGH_WATER_PCT {
        slot.near_loss = true;
        add(&i.ring_near_loss, 1);
    } else if slot.near_loss && pct < 50 {
        slot.near_loss = false;
    }
}

thread_local! {
    static IN_HOT_PATH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True on a capture thread while it runs its hot loop. For allocation-counting tests.
pub fn in_hot_path() -> bool {
    IN_HOT_PATH.with(|c| c.get())
}

fn check(opts: &CaptureOptions) -> Result<(u64, usize), CaptureError> {
    if opts.interfaces.is_empty() {
        return Err(CaptureError::NoInterface);
    }
    let bs = opts.block_size;
    if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs) || !bs.is_multiple_of(4096) {
        return Err(CaptureError::Option {
            key: "capture.block_size",
            message: format!("{bs} bytes: must be a multiple of 4 KiB between 64 KiB and 64 MiB"),
        });
    }
    let blocks = opts.ring_size / bs;
    if blocks < MIN_BLOCKS {
        return Err(CaptureError::Option {
            key: "capture.ring_size",
            message: format!(
                "{} bytes holds {blocks} blocks of {bs}; at least {MIN_BLOCKS} are needed",
                opts.ring_size
            ),
        });
    }
    if opts.threads_per_interface == 0 || opts.threads_per_interface > 64 {
        return Err(CaptureError::Option {
            key: "capture.threads_per_interface",
            message: "must be 1..=64".into(),
        });
    }
    let sockets = opts.interfaces.len() * opts.threads_per_interface as usize;
    let threads = sockets.min(opts.max_writers.max(1));
    if sockets.div_ceil(threads) > MAX_RINGS_PER_THREAD {
        return Err(CaptureError::Option {
            key: "capture.interfaces",
            message: format!(
                "{sockets} sockets on {threads} thread(s): at most {MAX_RINGS_PER_THREAD} per thread"
            ),
        });
    }
    if opts.interfaces.len() > stats::MAX_INTERFACES {
        return Err(CaptureError::Option {
            key: "capture.interfaces",
            message: format!("at most {} interfaces", stats::MAX_INTERFACES),
        });
    }
    Ok((blocks, threads))
}

impl Capture {
    /// Opens everything and starts the capture threads. `make_sink(i)` is called once per
    /// capture thread, on the caller's thread, before privileges are dropped.
    pub fn start<S, F, E>(
        opts: &CaptureOptions,
        data_dir: &Path,
        mut make_sink: F,
    ) -> Result<Capture, CaptureError>
    where
        S: RecordSink + 'static,
        F: FnMut(usize) -> Result<S, E>,
        E: std::fmt::Display,
    {
        let (mut blocks, nthreads) = check(opts)?;

        // Sinks, one per thread (before the sockets: zero-copy sizes the ring blocks by
        // what the store takes).
        let mut sinks = Vec::with_capacity(nthreads);
        for t in 0..nthreads {
            sinks.push(make_sink(t).map_err(|e| CaptureError::Sink {
                thread: t,
                message: e.to_string(),
            })?);
        }
        let mut block_size = opts.block_size;
        let mut zc_min_frame = 0;
        if opts.zero_copy != ZeroCopy::Off {
            let max = sinks
                .iter_mut()
                .map(|s| s.enable_ring_blocks())
                .min()
                .unwrap_or(0) as u64;
            if max >= MIN_BLOCK_SIZE {
                // As large as fits a store chunk with its header page (1016 KiB with 1 MiB
                // chunks: a power of two would leave half of every chunk unused, one
                // 516 KiB block per 1 MiB chunk), at most the configured size. The kernel
                // takes any page multiple (it allocates a power of two of pages per block
                // either way).
                block_size = block_size.min(max / 4096 * 4096);
                blocks = opts.ring_size / block_size;
                zc_min_frame = match opts.zero_copy {
                    ZeroCopy::On => 1,
                    _ => ZERO_COPY_AUTO_MIN_FRAME,
                };
            } else if opts.zero_copy == ZeroCopy::On {
                return Err(CaptureError::Option {
                    key: "capture.zero_copy",
                    message: "`on`, but the store cannot take ring blocks here (several capture threads write through lanes, or a rate limit is set); use `auto` or `off`".into(),
                });
            }
        }

        // Sockets: for each interface, threads_per_interface sockets in one fanout group.
        let mut slots: Vec<RingSlot> = Vec::new();
        let mut names = Vec::new();
        let mut hw = Vec::new();
        let mut supervised = Vec::new();
        let mut offloads_on = Vec::new();
        for (i, name) in opts.interfaces.iter().enumerate() {
            let mut controls = Vec::new();
            let sock_err = |source| CaptureError::Socket {
                iface: name.clone(),
                source,
            };
            let ifindex = crate::sys::packet::ifindex(name).map_err(sock_err)?;
            names.push((name.clone(), ifindex));
            // Per interface: the program reads a stripped VLAN tag from skb metadata
            // (see `filter`), which tcpdump emits only when compiling for a live interface.
            let program = filter::compile(&opts.filter, opts.snaplen, Some(name))?;
            let mut fanout = if opts.threads_per_interface > 1 {
                Some(Fanout::NewGroup)
            } else {
                None
            };
            let mut any_hw = false;
            for _ in 0..opts.threads_per_interface {
                let ro = RingOptions {
                    ifindex,
                    block_size: block_size as usize,
                    block_count: blocks as usize,
                    retire_ms: opts.retire_ms,
                    fanout,
                    filter: program.clone(),
                    hardware_timestamps: opts.hardware_timestamps,
                    promiscuous: opts.promiscuous,
                };
                let ring = RxRing::open(name, &ro).map_err(sock_err)?;
                if let Some(Fanout::NewGroup) = fanout {
                    fanout = Some(Fanout::Join(ring.fanout_id().map_err(sock_err)?));
                }
                any_hw |= ring.hardware_timestamps;
                controls.push(ring.control().map_err(sock_err)?);
                slots.push(RingSlot {
                    ring,
                    iface: i as u16,
                    token_base: 0,
                    zc_min_frame,
                    done: 0,
                    ring_in: 0,
                    handled: 0,
                    near_loss: false,
                });
            }
            hw.push(any_hw);
            let offloads = match controls.first() {
                Some(c) if opts.disable_offloads => {
                    ethtool::disable_merging_offloads(c.raw_fd(), name)
                }
                Some(c) => ethtool::merging_offloads(c.raw_fd(), name),
                None => ethtool::OFFLOAD_UNKNOWN,
            };
            supervised.push(Interface {
                name: name.clone(),
                nic: NicTotals::new(nic::read_counters(name)),
                controls,
                ifindex,
                promiscuous: opts.promiscuous,
                bound_ns: process::realtime_ns(),
                rebind_error: None,
                journal: GapJournal::new(data_dir),
            });
            offloads_on.push(offloads);
        }
        let memory_locked_rings = slots.iter().all(|s| s.ring.locked);

        let page = StatsPage::create(data_dir, &names)?;
        for (i, h) in hw.iter().enumerate() {
            page.interface(i)
                .hardware_timestamps
                .store(u64::from(*h), Ordering::Relaxed);
            page.link(i)
                .offloads_on
                .store(offloads_on[i], Ordering::Relaxed);
        }
        // Link state (and the frame limit) before the first packet: a link already down
        // at start opens its down interval now.
        for (i, itf) in supervised.iter_mut().enumerate() {
            supervise_link(&page, i, itf, process::realtime_ns(), false);
        }
        let interfaces = std::sync::Mutex::new(supervised);
        let shared = Arc::new(Shared {
            stats: page,
            stop: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            limit: opts.count,
            claimed: AtomicU64::new(0),
        });

        // Deal the sockets to the threads round-robin.
        let mut per_thread: Vec<Vec<RingSlot>> = (0..nthreads).map(|_| Vec::new()).collect();
        for (k, mut s) in slots.into_iter().enumerate() {
            s.token_base = ((k / nthreads) as u64) << 32;
            per_thread[k % nthreads].push(s);
        }

        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let mut threads = Vec::with_capacity(nthreads);
        for (t, (rings, sink)) in per_thread.into_iter().zip(sinks).enumerate() {
            let shared = Arc::clone(&shared);
            let ready = ready_tx.clone();
            let core = opts.cores.get(t).copied();
            let realtime = opts.realtime;
            let drop_privs = opts.drop_privileges;
            let drain_ns = u64::from(opts.retire_ms) * 2_000_000 + 20_000_000;
            let h = std::thread::Builder::new()
                .name(format!("kuroko-cap{t}"))
                .spawn(move || {
                    let setup = (|| -> Result<(), SysError> {
                        if let Some(c) = core {
                            process::pin_current_thread(c)?;
                        }
                        if realtime {
                            process::set_realtime(REALTIME_PRIORITY)?;
                        }
                        if drop_privs {
                            process::drop_all_capabilities()?;
                        }
                        Ok(())
                    })();
                    let ok = setup.is_ok();
                    let _ = ready.send(setup.map_err(|e| e.to_string()));
                    if !ok {
                        return Err("set-up failed".to_string());
                    }
                    capture_thread(rings, sink, &shared, drain_ns)
                })
                .map_err(|e| CaptureError::Thread {
                    thread: t,
                    message: format!("cannot spawn: {e}"),
                })?;
            threads.push(h);
        }
        drop(ready_tx);
        let mut capture = Capture {
            shared,
            threads,
            interfaces,
            memory_locked: memory_locked_rings,
        };
        for t in 0..nthreads {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(message)) => {
                    capture.abort();
                    return Err(CaptureError::Thread { thread: t, message });
                }
                Err(_) => {
                    capture.abort();
                    return Err(CaptureError::Thread {
                        thread: t,
                        message: "exited during set-up".into(),
                    });
                }
            }
        }
        if opts.lock_memory {
            capture.memory_locked = process::lock_current_memory().is_ok() || memory_locked_rings;
        }
        if opts.drop_privileges {
            process::drop_all_capabilities()?;
        }
        capture.shared.stats.set_threads(nthreads as u64);
        capture.shared.stats.set_state(layout::STATE_RUNNING);
        capture.shared.stats.heartbeat();
        Ok(capture)
    }

    fn abort(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        self.shared.stats.set_state(layout::STATE_FAILED);
    }

    /// Supervisor bookkeeping: NIC counters, link state (down and gone intervals, rebind
    /// to a re-created interface), heartbeat. Call a few times a second.
    pub fn tick(&self) {
        let mut ifs = self
            .interfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = process::realtime_ns();
        // Threads that end unhook their sockets themselves: not a deleted interface.
        let ending = self.finished();
        for (i, itf) in ifs.iter_mut().enumerate() {
            let slot = self.shared.stats.interface(i);
            let d = itf.nic.update(nic::read_counters(&itf.name));
            slot.nic_rx_dropped.store(d.rx_dropped, Ordering::Relaxed);
            slot.nic_rx_missed.store(d.rx_missed, Ordering::Relaxed);
            slot.nic_rx_fifo.store(d.rx_fifo, Ordering::Relaxed);
            supervise_link(&self.shared.stats, i, itf, now, ending);
        }
        self.shared.stats.heartbeat();
    }

    /// Why a re-created interface could not be captured again, per interface name.
    pub fn rebind_errors(&self) -> Vec<(String, String)> {
        let ifs = self
            .interfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ifs.iter()
            .filter_map(|i| Some((i.name.clone(), i.rebind_error.clone()?)))
            .collect()
    }

    /// Closes the open down/gone intervals at the end of the capture, so their totals
    /// are final (the `link_up` word keeps the last state seen).
    fn close_intervals(&self) {
        let ifs = self
            .interfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = process::realtime_ns();
        for (i, itf) in ifs.iter().enumerate() {
            let l = self.shared.stats.link(i);
            close_down(l, itf, now);
            close_gone(l, itf, now, 0);
        }
    }

    /// The capture should end: the packet count was reached or a thread failed.
    pub fn finished(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire) || self.shared.failed.load(Ordering::Acquire)
    }

    pub fn stats_path(&self) -> &Path {
        self.shared.stats.path()
    }

    /// Stops the threads (each drains its ready blocks, flushes and closes its sink), takes
    /// the final counters and marks the page stopped.
    pub fn stop(mut self) -> Result<StatsSnapshot, CaptureError> {
        self.shared.stop.store(true, Ordering::Release);
        let mut first_err = None;
        for (t, h) in self.threads.drain(..).enumerate() {
            let r = h.join().unwrap_or_else(|_| Err("panicked".to_string()));
            if let Err(message) = r {
                first_err.get_or_insert(CaptureError::Thread { thread: t, message });
            }
        }
        self.tick();
        self.close_intervals();
        self.shared.stats.set_state(if first_err.is_some() {
            layout::STATE_FAILED
        } else {
            layout::STATE_STOPPED
        });
        if let Some(e) = first_err {
            return Err(e);
        }
        let dir = self
            .shared
            .stats
            .path()
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        Ok(StatsReader::open(dir)?.snapshot())
    }
}

/// Opens an interval at `now` unless one is open; counts the event.
fn open_interval(since: &AtomicU64, events: &AtomicU64, now: u64) {
    if since
        .compare_exchange(0, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Closes the open interval, if any, adding its length to `total`; returns its start.
fn close_interval(since: &AtomicU64, total: &AtomicU64, now: u64) -> Option<u64> {
    let s = since.swap(0, Ordering::Relaxed);
    if s != 0 {
        total.fetch_add(now.saturating_sub(s), Ordering::Relaxed);
        return Some(s);
    }
    None
}

/// Closes the down interval of an interface and journals it.
fn close_down(l: &layout::Link, itf: &Interface, now: u64) {
    if let Some(start) = close_interval(&l.down_since_ns, &l.down_ns, now) {
        itf.journal.record(GapKind::Down, &itf.name, start, now, 0);
    }
}

/// Closes the gone interval of an interface and journals it with the frames the new
/// interface received before the re-bind that closed it.
fn close_gone(l: &layout::Link, itf: &Interface, now: u64, missed: u64) {
    if let Some(start) = close_interval(&l.gone_since_ns, &l.gone_ns, now) {
        itf.journal
            .record(GapKind::Gone, &itf.name, start, now, missed);
    }
}

/// One look at interface slot `i`: gone, down or up; rebinds the sockets to an interface
/// re-created under the same name; keeps the frame limit current. `ending`: the capture
/// threads are unhooking their sockets (an unbound socket then means nothing).
fn supervise_link(page: &StatsPage, i: usize, itf: &mut Interface, now: u64, ending: bool) {
    let slot = page.interface(i);
    let l = page.link(i);
    let Some(ctl) = itf.controls.first() else {
        return;
    };
    let (ifindex, up, mtu) = match ctl.link(&itf.name) {
        Ok(LinkState::Present { ifindex, up, mtu }) => (ifindex, up, mtu),
        Ok(LinkState::Gone) => {
            close_down(l, itf, now);
            open_interval(&l.gone_since_ns, &l.gone_events, now);
            slot.link_up.store(0, Ordering::Relaxed);
            return;
        }
        // Cannot ask (never seen on Linux for an open socket): report the link as down.
        Err(_) => (itf.ifindex, false, 0),
    };
    // Deleted and re-created under the same name: a new ifindex, or the same one with the
    // socket unhooked by the deletion (an interface moved in from another namespace keeps
    // its number).
    let mut missed_now = 0;
    if ifindex != itf.ifindex || (!ending && ctl.bound_ifindex() != Some(ifindex)) {
        // If no tick saw it gone (both happened between two ticks), the gap started at
        // the socket's ENETDOWN.
        if l.gone_since_ns.load(Ordering::Relaxed) == 0 {
            let err_at = l.last_socket_error_ns.load(Ordering::Relaxed);
            let start = if err_at > itf.bound_ns { err_at } else { now };
            close_down(l, itf, start);
            open_interval(&l.gone_since_ns, &l.gone_events, start);
        }
        // What the new interface received so far reached no capture socket: read just
        // before the bind, so every frame is either in it or delivered to the sockets
        // (short of one in flight at that very moment).
        let missed = nic::rx_packets(&itf.name).unwrap_or(0);
        let rebound = itf
            .controls
            .iter()
            .try_for_each(|c| c.rebind(ifindex, itf.promiscuous));
        if let Err(e) = rebound {
            itf.rebind_error = Some(format!(
                "cannot capture on {} again (ifindex {ifindex}): {e}",
                itf.name
            ));
            slot.link_up.store(0, Ordering::Relaxed);
            return;
        }
        itf.rebind_error = None;
        itf.ifindex = ifindex;
        itf.bound_ns = now;
        slot.ifindex.store(u64::from(ifindex), Ordering::Relaxed);
        l.rebinds.fetch_add(1, Ordering::Relaxed);
        add(&l.missed_before_rebind, missed);
        missed_now = missed;
        // Offloads of the new interface: only read (switching needs CAP_NET_ADMIN, gone
        // by now); frames they merge are counted as coalesced.
        l.offloads_on.store(
            ethtool::merging_offloads(ctl.raw_fd(), &itf.name),
            Ordering::Relaxed,
        );
    }
    close_gone(l, itf, now, missed_now);
    if mtu != 0 {
        l.frame_limit
            .store(u64::from(mtu) + LINK_HEADROOM, Ordering::Relaxed);
    }
    if up {
        close_down(l, itf, now);
    } else {
        open_interval(&l.down_since_ns, &l.down_events, now);
    }
    slot.link_up.store(u64::from(up), Ordering::Relaxed);
}

/// SCHED_FIFO priority of capture threads (above ordinary threads, below the kernel's own
/// real-time threads at 50+).
pub const REALTIME_PRIORITY: i32 = 20;

/// Counters of one block, added to the page once per block.
#[derive(Default)]
struct BlockCounters {
    packets: u64,
    bytes: u64,
    stored: u64,
    bp_drops: u64,
    bp_bytes: u64,
    truncated: u64,
    malformed: u64,
    coalesced: u64,
    last_ns: u64,
}

impl BlockCounters {
    fn publish(&self, slot: &layout::Interface, link: &layout::Link) {
        add(&link.coalesced_frames, self.coalesced);
        add(&slot.packets, self.packets);
        add(&slot.bytes, self.bytes);
        add(&slot.stored_bytes, self.stored);
        add(&slot.backpressure_drops, self.bp_drops);
        add(&slot.backpressure_bytes, self.bp_bytes);
        add(&slot.truncated_packets, self.truncated);
        add(&slot.malformed_blocks, self.malformed);
        if self.last_ns != 0 {
            slot.last_packet_ns
                .fetch_max(self.last_ns, Ordering::Relaxed);
        }
    }
}

/// `parts` cut to `max` bytes in total (for a store that refuses longer records).
fn cut<'a>(parts: &[&'a [u8]], max: usize, out: &mut [&'a [u8]; 3]) -> usize {
    let mut left = max;
    let mut n = 0;
    for p in parts.iter().take(3) {
        if left == 0 {
            break;
        }
        let take = p.len().min(left);
        out[n] = &p[..take];
        n += 1;
        left -= take;
    }
    n
}

/// What one look at a ring's current block did.
enum Drained {
    /// No block ready.
    Empty,
    /// Every frame of the block stored or counted; the block went back to the kernel.
    Consumed { limit_hit: bool },
    /// The store refused a frame (buffers in flight): the block stays ours, the rest of
    /// the ring buffers new traffic, and the next look resumes at the refused frame.
    Stalled,
}

/// Handles the frames of `slot`'s current block from `slot.done` on. With `discard`, the
/// frames are not stored but counted as backpressure drops (the final pass of a capture
/// whose store never came back).
fn drain_block<S: RecordSink>(
    slot: &mut RingSlot,
    sink: &mut S,
    shared: &Shared,
    discard: bool,
) -> Result<Drained, S::Error> {
    // 0 = unknown: no check.
    let frame_limit = match shared
        .stats
        .link(slot.iface as usize)
        .frame_limit
        .load(Ordering::Relaxed)
    {
        0 => u64::MAX,
        l => l,
    };
    if slot.zc_min_frame > 0 && slot.done == 0 && !discard && shared.limit.is_none() {
        // `None`: left to the copying path below.
        if let Some(d) = zero_copy_block(slot, sink, shared, frame_limit)? {
            return Ok(d);
        }
    }
    let Some(block) = slot.ring.current_block() else {
        return Ok(Drained::Empty);
    };
    let mut c = BlockCounters::default();
    let mut limit_hit = false;
    let mut stalled = false;
    let mut frames = block.frames();
    for raw in frames.by_ref().skip(slot.done) {
        let mut tag = [0u8; VLAN_TAG_LEN];
        let wf = frame::rebuild(&raw, &mut tag);
        let coalesced = u64::from(wf.wire_len) > frame_limit;
        if discard {
            slot.handled += 1;
            c.bp_drops += 1;
            c.bp_bytes += u64::from(wf.wire_len);
            slot.done += 1;
            continue;
        }
        if let Some(limit) = shared.limit
            && shared.claimed.fetch_add(1, Ordering::Relaxed) >= limit
        {
            limit_hit = true;
            break;
        }
        let meta = PacketMeta {
            ts_ns: wf.ts_ns,
            interface: slot.iface,
            wire_len: wf.wire_len,
            hardware_timestamp: wf.hardware_timestamp,
            vlan_restored: wf.vlan_restored(),
        };
        let mut stored_len = wf.stored_len as u64;
        let mut truncated = wf.truncated();
        let mut outcome = sink.append(&meta, wf.parts())?;
        if outcome == Appended::Backpressure {
            // Reap finished writes once and retry; never wait here.
            sink.poll()?;
            outcome = sink.append(&meta, wf.parts())?;
        }
        if let Appended::TooLarge { max } = outcome {
            let mut short: [&[u8]; 3] = [&[]; 3];
            let n = cut(wf.parts(), max as usize, &mut short);
            stored_len = stored_len.min(u64::from(max));
            truncated = true;
            outcome = sink.append(&meta, &short[..n])?;
        }
        match outcome {
            Appended::Stored => {
                slot.handled += 1;
                c.coalesced += u64::from(coalesced);
                c.packets += 1;
                c.bytes += u64::from(wf.wire_len);
                c.stored += stored_len;
                c.truncated += u64::from(truncated);
                c.last_ns = c.last_ns.max(wf.ts_ns);
                slot.done += 1;
            }
            Appended::Backpressure => {
                if shared.limit.is_some() {
                    shared.claimed.fetch_sub(1, Ordering::Relaxed);
                }
                stalled = true;
                break;
            }
            Appended::TooLarge { .. } => {
                // Even the cut frame was refused: nothing more can be done for it.
                slot.handled += 1;
                c.bp_drops += 1;
                c.bp_bytes += u64::from(wf.wire_len);
                slot.done += 1;
            }
        }
    }
    let finished = !stalled && !limit_hit;
    if finished {
        c.malformed += u64::from(frames.malformed());
    }
    c.publish(
        shared.stats.interface(slot.iface as usize),
        shared.stats.link(slot.iface as usize),
    );
    if stalled {
        return Ok(Drained::Stalled);
    }
    block.consume();
    slot.done = 0;
    if limit_hit {
        shared.stop.store(true, Ordering::Release);
    }
    Ok(Drained::Consumed { limit_hit })
}

/// Tries to store the ring's current block as it is (zero-copy, see `sys::zc`). `None`:
/// the block is left to the copying path (too small on average, unfit, or refused by the
/// sink). A queued block is held (not handed back) until [`release_done`] sees its token.
fn zero_copy_block<S: RecordSink>(
    slot: &mut RingSlot,
    sink: &mut S,
    shared: &Shared,
    frame_limit: u64,
) -> Result<Option<Drained>, S::Error> {
    use crate::sys::zc;
    let b = match zc::take(
        &mut slot.ring,
        slot.iface,
        slot.token_base,
        slot.zc_min_frame,
        frame_limit,
    ) {
        Ok(b) => b,
        Err(zc::Skip::Empty) => return Ok(Some(Drained::Empty)),
        Err(zc::Skip::Small | zc::Skip::Unfit) => return Ok(None),
    };
    let mut r = sink.store_ring_block(&b)?;
    if r == kuroko_ring::RingAppend::Backpressure {
        // Reap finished writes once and retry; never wait here. (The blocks they free go
        // back to the kernel at the hot loop's next turn.)
        sink.poll()?;
        r = sink.store_ring_block(&b)?;
    }
    match r {
        kuroko_ring::RingAppend::Queued => {}
        kuroko_ring::RingAppend::Backpressure => return Ok(Some(Drained::Stalled)),
        kuroko_ring::RingAppend::Refused => return Ok(None),
    }
    let w = b.walk;
    slot.ring.hold_current();
    slot.handled += w.packets;
    let c = BlockCounters {
        packets: w.packets,
        bytes: w.bytes,
        stored: w.stored,
        truncated: w.truncated,
        coalesced: w.coalesced,
        last_ns: w.last_ns,
        ..BlockCounters::default()
    };
    let i = shared.stats.interface(slot.iface as usize);
    c.publish(i, shared.stats.link(slot.iface as usize));
    add(&i.zero_copy_blocks, 1);
    add(&i.zero_copy_bytes, w.stored);
    Ok(Some(Drained::Consumed { limit_hit: false }))
}

/// Hands back to the kernel the ring blocks whose zero-copy writes completed.
fn release_done<S: RecordSink>(rings: &mut [RingSlot], sink: &mut S) {
    sink.take_ring_done(&mut |t| {
        if let Some(s) = rings.get_mut((t >> 32) as usize) {
            s.ring.release((t & 0xffff_ffff) as usize);
        }
    });
}

/// Adds the kernel's counters since the last read. Ring drops in a period during which
/// the store held us back (a block kept because the store refused) are the store's
/// doing and are counted as backpressure; otherwise the capture thread was too slow.
fn take_kernel_stats(rings: &mut [RingSlot], shared: &Shared, store_stalled: bool) {
    for s in rings {
        if let Ok(k) = s.ring.take_stats() {
            s.ring_in += k.packets.saturating_sub(k.drops);
            add(&shared.stats.link(s.iface as usize).ring_frames, k.packets);
            let slot = shared.stats.interface(s.iface as usize);
            if store_stalled {
                add(&slot.backpressure_drops, k.drops);
            } else {
                add(&slot.kernel_ring_drops, k.drops);
            }
            add(&slot.kernel_ring_freezes, k.freeze_q);
        }
    }
}

/// How long a thread whose store refused a frame sleeps before it looks again.
pub const STALL_SLEEP: std::time::Duration = std::time::Duration::from_micros(200);
/// At the end of a capture, how long to wait for a store that still refuses before the
/// frames left in the ring are counted as backpressure drops.
pub const STOP_STALL_GRACE_NS: u64 = 2_000_000_000;

/// The hot loop's view of who is to blame for ring overflows, carried across turns.
#[derive(Default)]
struct Blame {
    /// In the current kernel-stats period the store refused a frame, held the thread in a
    /// call for [`STORE_BLOCKED_NS`] or more, or the ring was still full from that.
    store_window: bool,
    /// The store held the thread back and the rings have not been empty since.
    catching_up: bool,
    /// The loop ended on a store that still refused frames.
    stalled_at_stop: bool,
}

/// A store call (a block's appends, a poll, a flush) that keeps the capture thread this
/// long is the store holding it back: copying a 1 MiB ring block into the store's buffers
/// takes well under a millisecond. (A capture thread starved of its core inside such a
/// call is counted the same way; on the appliance the capture cores are its own.)
pub const STORE_BLOCKED_NS: u64 = 20_000_000;

/// Runs `f`, a call into the store; notes in `held` when it kept us [`STORE_BLOCKED_NS`].
#[inline]
fn store_call<T>(held: &mut bool, f: impl FnOnce() -> T) -> T {
    let t0 = process::monotonic_ns();
    let r = f();
    if process::monotonic_ns().saturating_sub(t0) >= STORE_BLOCKED_NS {
        *held = true;
    }
    r
}

fn hot_loop<S: RecordSink>(
    rings: &mut [RingSlot],
    sink: &mut S,
    shared: &Shared,
    drain_ns: u64,
    blame: &mut Blame,
) -> Result<(), S::Error> {
    let mut last_kstats = process::monotonic_ns();
    let mut last_data = last_kstats;
    let mut dirty = false;
    // When the buffer got its oldest unwritten packet (the turn it became dirty).
    let mut dirty_since = last_kstats;
    // When a stop is requested, the block the kernel is filling is retired only after the
    // retire timeout: keep polling that long so its packets are stored, not lost.
    let mut stop_at: Option<u64> = None;
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let mut progressed = false;
        let mut stalled = false;
        let mut held = false;
        let was_dirty = dirty;
        // Every ring was read up to a block the kernel still fills.
        let mut all_empty = true;
        release_done(rings, sink);
        // Zero-copy writes in flight hold half a ring or more: the disk is what holds the
        // kernel back (ring overflows now are the store's).
        let mut disk_held = false;
        for slot in rings.iter_mut() {
            disk_held |= slot.ring.held_blocks() * 2 >= slot.ring.block_count();
            // At most one ring's worth of blocks per turn, so one busy ring cannot starve
            // the others, and a stop is seen within a ring's worth of work.
            let mut reached_empty = false;
            note_fill(slot, shared);
            for _ in 0..slot.ring.block_count() {
                match store_call(&mut held, || drain_block(slot, sink, shared, false))? {
                    Drained::Empty => {
                        reached_empty = true;
                        break;
                    }
                    Drained::Consumed { limit_hit } => {
                        progressed = true;
                        dirty = true;
                        if limit_hit {
                            return Ok(());
                        }
                    }
                    Drained::Stalled => {
                        stalled = true;
                        dirty = true;
                        break;
                    }
                }
            }
            all_empty &= reached_empty;
        }
        let now = process::monotonic_ns();
        if progressed {
            last_data = now;
        }
        if dirty && !was_dirty {
            dirty_since = now;
        }
        if stalled || held {
            blame.catching_up = true;
        } else if all_empty {
            // Every ring is empty: the capture has caught up with what the store held back.
            blame.catching_up = false;
        }
        blame.store_window |= stalled || held || blame.catching_up || disk_held;
        if now.saturating_sub(last_kstats) >= KERNEL_STATS_EVERY_NS {
            take_kernel_stats(rings, shared, blame.store_window);
            blame.store_window = stalled || blame.catching_up;
            last_kstats = now;
        }
        if stalled {
            store_call(&mut blame.catching_up, || sink.poll())?;
            if stopping {
                let deadline = *stop_at.get_or_insert(now + drain_ns + STOP_STALL_GRACE_NS);
                if now >= deadline {
                    blame.stalled_at_stop = true;
                    for slot in rings.iter_mut() {
                        for _ in 0..slot.ring.block_count() {
                            if let Drained::Empty = drain_block(slot, sink, shared, true)? {
                                break;
                            }
                        }
                    }
                    return Ok(());
                }
            }
            std::thread::sleep(STALL_SLEEP);
            continue;
        }
        if !progressed {
            if stopping {
                let deadline = *stop_at.get_or_insert(now + drain_ns);
                if now >= deadline {
                    return Ok(());
                }
            }
            let mut held = false;
            store_call(&mut held, || sink.poll())?;
            if dirty
                && (now.saturating_sub(last_data) >= FLUSH_IDLE_NS
                    || now.saturating_sub(dirty_since) >= FLUSH_MAX_AGE_NS)
            {
                store_call(&mut held, || sink.flush())?;
                dirty = false;
            }
            if held {
                blame.catching_up = true;
                blame.store_window = true;
                continue;
            }
            // Blocks held by zero-copy writes come back when the writes complete, which
            // poll(2) on the sockets does not see: look again soon.
            let timeout = if rings.iter().any(|s| s.ring.held_blocks() > 0) {
                1
            } else {
                POLL_TIMEOUT_MS
            };
            let errored = crate::sys::packet::wait_any(rings.iter().map(|s| &s.ring), timeout);
            if errored != 0 {
                note_socket_errors(rings, shared, errored);
            }
        }
    }
}

/// Counts the socket errors `wait_any` cleared (bit k = ring k): the link went down or the
/// interface went away; the supervisor turns that into down/gone intervals.
fn note_socket_errors(rings: &[RingSlot], shared: &Shared, errored: u32) {
    let now = process::realtime_ns();
    for (k, s) in rings.iter().enumerate().take(32) {
        if errored & (1 << k) != 0 {
            let l = shared.stats.link(s.iface as usize);
            l.socket_errors.fetch_add(1, Ordering::Relaxed);
            l.last_socket_error_ns.store(now, Ordering::Relaxed);
        }
    }
}

/// The end of a capture thread: unhook the sockets so nothing more arrives, store what the
/// kernel retired meanwhile (or count it, when the store still refuses), then count what
/// the kernel delivered into each ring but nobody read: the block it was still filling.
/// Unless the packet count was reached (those are beyond what was asked for), they go to
/// `backpressure` when the store was what kept them from being stored, otherwise to
/// `unread_at_stop`. Afterwards every frame the kernel put into a ring is accounted for.
fn finish_rings<S: RecordSink>(
    rings: &mut [RingSlot],
    sink: &mut S,
    shared: &Shared,
    blame: &mut Blame,
    clean: bool,
) -> Result<(), S::Error> {
    for s in rings.iter() {
        let _ = s.ring.detach();
    }
    let limit_hit = shared
        .limit
        .is_some_and(|l| shared.claimed.load(Ordering::Relaxed) >= l);
    if clean && !limit_hit {
        release_done(rings, sink);
        for slot in rings.iter_mut() {
            for _ in 0..slot.ring.block_count() {
                let discard = blame.stalled_at_stop;
                match drain_block(slot, sink, shared, discard)? {
                    Drained::Empty | Drained::Consumed { limit_hit: true } => break,
                    Drained::Consumed { .. } => {}
                    Drained::Stalled => blame.stalled_at_stop = true,
                }
            }
        }
    }
    take_kernel_stats(rings, shared, blame.store_window || blame.stalled_at_stop);
    if limit_hit {
        return Ok(());
    }
    for s in rings.iter() {
        let unread = s.ring_in.saturating_sub(s.handled);
        if blame.stalled_at_stop {
            add(
                &shared.stats.interface(s.iface as usize).backpressure_drops,
                unread,
            );
        } else {
            add(&shared.stats.link(s.iface as usize).unread_at_stop, unread);
        }
    }
    Ok(())
}

fn capture_thread<S: RecordSink>(
    mut rings: Vec<RingSlot>,
    mut sink: S,
    shared: &Shared,
    drain_ns: u64,
) -> Result<(), String> {
    let mut blame = Blame::default();
    if rings.iter().any(|s| s.zc_min_frame > 0) {
        // Zero-copy: the rings' pages pinned once for the writer's fixed writes (plain
        // writes from the ring otherwise, which pin every block's pages).
        let refs: Vec<&RxRing> = rings.iter().map(|s| &s.ring).collect();
        sink.register_rings(&refs);
    }
    IN_HOT_PATH.with(|c| c.set(true));
    let r = hot_loop(&mut rings, &mut sink, shared, drain_ns, &mut blame);
    IN_HOT_PATH.with(|c| c.set(false));
    let r = r.and_then(|()| finish_rings(&mut rings, &mut sink, shared, &mut blame, true));
    let closed = sink.close();
    let result = match (r, closed) {
        (Err(e), _) => Err(format!("store write failed: {e}")),
        (Ok(()), Err(e)) => Err(format!("closing the store failed: {e}")),
        (Ok(()), Ok(())) => Ok(()),
    };
    if result.is_err() {
        shared.failed.store(true, Ordering::Release);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_the_first_bytes_across_parts() {
        let a = [1u8; 12];
        let b = [2u8; 4];
        let c = [3u8; 100];
        let mut out: [&[u8]; 3] = [&[]; 3];
        let n = cut(&[&a, &b, &c], 20, &mut out);
        assert_eq!(n, 3);
        assert_eq!(out[..n].concat(), [&a[..], &b[..], &c[..4]].concat());
        let n = cut(&[&a, &b, &c], 10, &mut out);
        assert_eq!(out[..n].concat(), a[..10].to_vec());
    }

    #[test]
    fn options_are_checked() {
        let mut o = CaptureOptions::default();
        assert!(matches!(check(&o), Err(CaptureError::NoInterface)));
        o.interfaces = vec!["eth0".into()];
        assert_eq!(check(&o).unwrap(), (64, 1));
        o.block_size = 1000;
        assert!(matches!(
            check(&o),
            Err(CaptureError::Option {
                key: "capture.block_size",
                ..
            })
        ));
        o.block_size = 1 << 20;
        o.ring_size = 2 << 20;
        assert!(matches!(
            check(&o),
            Err(CaptureError::Option {
                key: "capture.ring_size",
                ..
            })
        ));
        o.ring_size = 64 << 20;
        o.threads_per_interface = 2;
        o.max_writers = 4;
        assert_eq!(check(&o).unwrap(), (64, 2));
    }
}
