//! The driver: follows the packet store from a durable checkpoint and writes closed
//! sessions to the session log, exactly once, across crashes.
//!
//! # Exactly once
//!
//! The checkpoint (see [`crate::checkpoint`]) records, after the session log was synced:
//! - `analyzed_to` P: the last packet analyzed;
//! - `log` L: the session log is valid up to here;
//! - `restart` R: the first packet of the oldest flow still open at P (None: nothing open);
//! - `emitted`: the sessions already in the log that a replay from R would meet again
//!   (those whose last packet is at or after R).
//!
//! On start: truncate the log to L (dropping whatever a dead run wrote after its last
//! checkpoint), replay from R. Of the sessions in `emitted`, those that *began* before R
//! cannot be rebuilt from R: their remaining packets (up to their last one) are skipped.
//! Those that began at or after R are rebuilt identically (same first packet, so the same
//! id) and suppressed when emitted again. After P everything is new.
//!
//! Remaining edge cases, honestly: (1) a replay does not see the flows that were skipped,
//! so with a full flow table eviction can pick a different victim than the first run did,
//! and an FTP data channel whose control connection began before R is not linked on
//! replay; (2) a flow already cut by the active timeout is re-based to its current record
//! at checkpoint time (so a days-long connection does not pin R); on replay its
//! continuation is rebuilt from that point, mid-stream, with the same id but without the
//! parser state it had; (3) the files store is not rolled back: objects of a truncated
//! session stay (content addressed, so re-storing them is a no-op); objects written after
//! the last checkpoint are dropped on start and stored again by the replay; (4) more than
//! [`MAX_REPLAY_SESSIONS`] sessions ending inside one replay window: the oldest are
//! forgotten (counted) and could be written twice after a crash.
//!
//! A run without a checkpoint (the first one, or one after a kill -9 or ENOSPC before the
//! first checkpoint, or after the checkpoint was moved away to re-analyze) starts the session
//! log over ([`SessionLogWriter::reset`]): it will write every session again, so whatever
//! is in the log is dropped, and consumers that read any of it rebuild (new generation).
//!
//! # One analyzer per data directory
//!
//! Two analyzers on one data directory would append to one log from two offsets and
//! truncate each other's records. [`Analyzer::open`] first takes an exclusive `flock` on
//! `DATA/analyzer/lock` (holding the pid, released when the process dies) and keeps it for
//! the analyzer's life; a second one is refused with [`AnalyzeError::Busy`] naming the pid.
//!
//! # End of a run
//!
//! `kuroko analyze` reads to the end of the store. When nothing is writing to the store any
//! more (a finished import), every open flow is closed (flag `end_of_input`) so every
//! session is emitted. While a capture is still writing, only flows idle longer than their
//! timeout (relative to the newest packet) are closed; the rest stay open in the
//! checkpoint's restart state and are read again next time, so a later run does not split
//! them.

use crate::checkpoint::{self, Checkpoint, CheckpointError, EmittedSession};
use crate::counters::Counters;
use crate::crashguard::CrashGuard;
use crate::engine::{Emitted, Engine, PacketIn, Settings};
use crate::files::FileStore;
use crate::position::PacketPos;
use crate::source::{PacketSource, SourceError};
use kuroko_model::sessionlog::SessionLogWriter;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often (wall clock) the driver syncs the log and writes a checkpoint.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// A checkpoint that publishes new sessions waits at least this many times as long as the
/// previous checkpoint took, so publishing costs at most a fifth of the analyzer's time.
pub const PUBLISH_COST_FACTOR: u32 = 4;
/// Emitted sessions remembered for a replay (each is ~120 bytes of checkpoint). The
/// window spans from the oldest open flow's start (at most `active_timeout` back, see
/// `Engine::restart_position`) to now; beyond this many sessions the oldest are forgotten
/// and counted in `replay_window_overflow`: after a crash those few could be written twice.
pub const MAX_REPLAY_SESSIONS: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("session log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reconstructed files {path}: {source}")]
    Files {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another analyzer (pid {pid}) is working on {data}; only one may run per data directory (wait for it to finish, or stop it first; `kuroko run` runs one itself)"
    )]
    Busy { data: PathBuf, pid: String },
    #[error("analyzer lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad [analyzer] settings: {0}")]
    Settings(String),
    #[error("stopped without a final checkpoint after {0} packets (crash test)")]
    StoppedForTest(u64),
}

/// Progress, for a terminal display.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub packets: u64,
    pub bytes: u64,
    pub sessions: u64,
    pub open_flows: usize,
}

/// How a run behaves.
pub struct RunOptions<'a> {
    /// Close every open flow at the end even if a writer is active.
    pub close_all_at_end: Option<bool>,
    /// Wall-clock checkpoint interval.
    pub checkpoint_interval: Duration,
    /// Also checkpoint every N packets (tests use this to crash between checkpoints).
    pub checkpoint_every_packets: Option<u64>,
    /// Abort the process (like kill -9) after this many packets: crash tests only.
    pub abort_after_packets: Option<u64>,
    /// Abort the process whenever the packet at this position is analyzed (a "poison"
    /// packet that crashes every run): crash-loop tests only.
    pub abort_at: Option<PacketPos>,
    /// Return [`AnalyzeError::StoppedForTest`] after this many packets, without the final
    /// checkpoint (an in-process crash for library tests).
    pub stop_without_checkpoint_after: Option<u64>,
    /// Publish new sessions every `[analyzer] publish_interval` also while reading (follow
    /// mode); a one-shot run publishes at its checkpoints only.
    pub publish: bool,
    pub progress: Option<&'a mut dyn FnMut(Progress)>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            close_all_at_end: None,
            checkpoint_interval: CHECKPOINT_INTERVAL,
            checkpoint_every_packets: None,
            abort_after_packets: None,
            abort_at: None,
            stop_without_checkpoint_after: None,
            publish: false,
            progress: None,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Packets read in this run (including replayed ones).
    pub packets: u64,
    pub bytes: u64,
    pub sessions_written: u64,
    pub open_flows_kept: usize,
    pub counters: Counters,
    pub elapsed: Duration,
    /// Capture time between the newest stored packet and the last analyzed one.
    pub lag_ns: i64,
}

struct State {
    log: SessionLogWriter,
    log_dir: PathBuf,
    suppress: HashSet<String>,
    recent: VecDeque<EmittedSession>,
    written: u64,
    replay_overflow: u64,
    error: Option<AnalyzeError>,
    /// Intel packs of the data directory: records carry their `intel` hits.
    intel: kuroko_detect::intel::live::LiveIntel,
}

impl State {
    fn emit(&mut self, mut e: Emitted, counters_suppressed: &mut u64) {
        if self.error.is_some() {
            return;
        }
        self.intel.tag(&mut e.record);
        if self.suppress.remove(&e.record.id) {
            *counters_suppressed += 1;
            return;
        }
        if !self.append(&e.record) {
            return;
        }
        if self.recent.len() >= MAX_REPLAY_SESSIONS {
            self.recent.pop_front();
            self.replay_overflow += 1;
        }
        self.recent.push_back(EmittedSession {
            id: e.record.id,
            key: e.key,
            first: e.first,
            last: e.last,
            closed_ts: e.closed_ts,
        });
    }
}

impl State {
    /// Appends a record to the session log; on failure keeps the error (the run stops
    /// with it) and returns false.
    fn append(&mut self, record: &kuroko_model::SessionRecord) -> bool {
        if let Err(source) = self.log.append(record) {
            self.error = Some(AnalyzeError::Log {
                path: self.log_dir.clone(),
                source,
            });
            return false;
        }
        self.written += 1;
        true
    }

    /// A provisional (`open`) record: written and published like any record, but outside
    /// the exactly-once bookkeeping (a replay may write it again: consumers replace records
    /// by id). Never after the final record of its session: a replay that will suppress the
    /// final one suppresses its provisional ones too.
    fn emit_provisional(&mut self, mut e: Emitted) {
        if self.error.is_none() && !self.suppress.contains(&e.record.id) {
            self.intel.tag(&mut e.record);
            self.append(&e.record);
        }
    }
}

/// A running analyzer: the engine, the session log and the exactly-once bookkeeping,
/// kept between reads so that `follow` does not replay on every poll.
pub struct Analyzer {
    /// The data directory's analyzer lock, held for the analyzer's life.
    _lock: std::fs::File,
    guard: CrashGuard,
    data: PathBuf,
    engine: Engine,
    st: State,
    /// Where the next read starts.
    next: PacketPos,
    last_pos: Option<PacketPos>,
    last_ts: i64,
    suppressed: u64,
    last_checkpoint: Instant,
    /// How long the last checkpoint took (stretches the publish interval).
    checkpoint_cost: Duration,
    /// `[analyzer] publish_interval`: new sessions are published at most this often.
    publish_interval: Duration,
    /// `st.written` at the last checkpoint: anything above it waits to be published.
    written_at_checkpoint: u64,
    /// Last scan for provisional records (follow mode).
    last_provisional: Instant,
    started: Instant,
    packets: u64,
    bytes: u64,
}

impl Analyzer {
    /// Opens the analyzer state of `data`: truncates the session log to the checkpoint and
    /// prepares the replay (see the module docs).
    pub fn open(
        data: &Path,
        config: &kuroko_model::config::Config,
    ) -> Result<Analyzer, AnalyzeError> {
        let settings = Settings::from_config(config).map_err(AnalyzeError::Settings)?;
        let publish_interval = Duration::from_millis(
            kuroko_model::units::parse_duration_ms(&config.analyzer.publish_interval)
                .map_err(|e| AnalyzeError::Settings(format!("publish_interval: {e}")))?,
        );
        // Before anything of the analyzer's state is touched (the files store cleans up on
        // open, the log is truncated).
        let lock = lock(data)?;
        let files_dir = data.join("files");
        let budget = config
            .storage
            .files_budget_bytes()
            .map_err(AnalyzeError::Settings)?;
        let files = FileStore::open(&files_dir, budget).map_err(|source| AnalyzeError::Files {
            path: files_dir,
            source,
        })?;
        let log_dir = data.join("sessions");
        let log_err = |source| AnalyzeError::Log {
            path: log_dir.clone(),
            source,
        };
        let mut log = SessionLogWriter::open(&log_dir).map_err(log_err)?;
        let cp = checkpoint::load(data)?;
        let opened = files.opened().clone();
        let mut engine = Engine::new(settings, Some(files));
        engine.set_yara(crate::yara::scanner_for(data, config).map_err(AnalyzeError::Settings)?);
        let mut suppress = HashSet::new();
        let mut next = PacketPos::default();
        let mut recent = VecDeque::new();
        if cp.is_none() {
            log.reset().map_err(log_err)?;
        }
        if let Some(cp) = &cp {
            log.truncate(cp.log).map_err(log_err)?;
            engine.counters = cp.counters.clone();
            next = match (cp.restart, cp.analyzed_to) {
                (Some(r), _) => r,
                (None, Some(p)) => PacketPos::new(p.seq, p.block, p.idx + 1),
                (None, None) => PacketPos::default(),
            };
            let mut skip: HashMap<String, PacketPos> = HashMap::new();
            for e in &cp.emitted {
                if e.first < next {
                    let last = skip.entry(e.key.clone()).or_insert(e.last);
                    *last = (*last).max(e.last);
                    // Not rebuilt by the replay: its late packets must still be late.
                    if let Some(ts) = e.closed_ts {
                        engine.remember_closed(e.key.clone(), ts);
                    }
                } else {
                    suppress.insert(e.id.clone());
                }
                recent.push_back(e.clone());
            }
            if let Some(p) = cp.analyzed_to {
                engine.set_replay_skip(skip, p);
            }
        }
        engine.counters.files_log_torn += opened.torn;
        engine.counters.files_log_damaged += opened.damaged;
        if opened.damaged > 0 {
            eprintln!(
                "kuroko analyze: {}: {} damaged records in files/{} (their objects were dropped; counted as files_log_damaged)",
                data.display(),
                opened.damaged,
                kuroko_model::objects::LOG
            );
        }
        let guard =
            CrashGuard::open(data, cp.as_ref().and_then(|c| c.analyzed_to)).map_err(|source| {
                AnalyzeError::Lock {
                    path: crate::crashguard::path(data),
                    source,
                }
            })?;
        if let Some((a, b)) = guard.skip_range() {
            engine.counters.crash_loop_skips += 1;
            eprintln!(
                "kuroko analyze: the analyzer died {} times in a row at packet {a} after its checkpoint; skipping packets {}..={b} (counted)",
                crate::crashguard::MAX_DEATHS,
                a + 1
            );
        }
        let st = State {
            intel: kuroko_detect::intel::live::LiveIntel::new(data),
            log,
            log_dir,
            suppress,
            recent,
            written: 0,
            replay_overflow: 0,
            error: None,
        };
        Ok(Analyzer {
            _lock: lock,
            guard,
            data: data.to_path_buf(),
            engine,
            st,
            next,
            last_pos: cp.as_ref().and_then(|c| c.analyzed_to),
            last_ts: cp.as_ref().map_or(0, |c| c.analyzed_ts_ns),
            suppressed: 0,
            last_checkpoint: Instant::now(),
            checkpoint_cost: Duration::ZERO,
            publish_interval,
            written_at_checkpoint: 0,
            last_provisional: Instant::now(),
            started: Instant::now(),
            packets: 0,
            bytes: 0,
        })
    }

    /// Reads every packet `source` has after what was analyzed; returns how many.
    pub fn catch_up(
        &mut self,
        source: &mut dyn PacketSource,
        opts: &mut RunOptions<'_>,
    ) -> Result<u64, AnalyzeError> {
        let before = self.packets;
        let Analyzer {
            data,
            engine,
            st,
            last_pos,
            last_ts,
            suppressed,
            last_checkpoint,
            checkpoint_cost,
            written_at_checkpoint,
            packets,
            bytes,
            guard,
            ..
        } = self;
        let publish_every = self
            .publish_interval
            .max(*checkpoint_cost * PUBLISH_COST_FACTOR);
        let mut progress_at = Instant::now();
        source.visit(self.next, &mut |p| {
            *packets += 1;
            *bytes += p.data.len() as u64;
            let pin = PacketIn {
                pos: p.pos,
                ts_ns: p.ts_ns,
                iface: p.iface,
                linktype: p.linktype,
                data: p.data,
            };
            if guard.on_packet(*packets) {
                engine.counters.packets_skipped_after_crashes += 1;
            } else {
                if opts.abort_at == Some(p.pos) {
                    // Crash-loop test: this packet kills every run that analyzes it.
                    std::process::abort();
                }
                engine.packet(pin, &mut |e| st.emit(e, suppressed));
            }
            if st.error.is_some() {
                return ControlFlow::Break(());
            }
            if last_pos.is_none_or(|l| p.pos > l) {
                *last_pos = Some(p.pos);
                *last_ts = p.ts_ns;
            }
            let due = opts
                .checkpoint_every_packets
                .is_some_and(|n| n > 0 && packets.is_multiple_of(n))
                || (packets.is_multiple_of(4096)
                    && (last_checkpoint.elapsed() >= opts.checkpoint_interval
                        || (opts.publish
                            && st.written > *written_at_checkpoint
                            && last_checkpoint.elapsed() >= publish_every)));
            if due {
                engine.counters.sessions_suppressed_on_replay += std::mem::take(suppressed);
                let t = Instant::now();
                if let Err(e) = write_checkpoint(data, engine, st, *last_pos, *last_ts) {
                    st.error = Some(e);
                    return ControlFlow::Break(());
                }
                guard.checkpointed(*last_pos);
                *last_checkpoint = Instant::now();
                *checkpoint_cost = t.elapsed();
                *written_at_checkpoint = st.written;
            }
            if opts.abort_after_packets.is_some_and(|n| *packets >= n) {
                // Crash test: die like kill -9, without flushing anything.
                std::process::abort();
            }
            if opts
                .stop_without_checkpoint_after
                .is_some_and(|n| *packets >= n)
            {
                st.error = Some(AnalyzeError::StoppedForTest(*packets));
                return ControlFlow::Break(());
            }
            if let Some(cb) = opts.progress.as_mut()
                && packets.is_multiple_of(65536)
                && progress_at.elapsed() >= Duration::from_millis(500)
            {
                progress_at = Instant::now();
                cb(Progress {
                    packets: *packets,
                    bytes: *bytes,
                    sessions: st.written,
                    open_flows: engine.open_flows(),
                });
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = self.st.error.take() {
            return Err(e);
        }
        if let Some(p) = self.last_pos {
            self.next = PacketPos::new(p.seq, p.block, p.idx + 1);
        }
        Ok(self.packets - before)
    }

    /// Closes flows idle longer than their timeout at `now_ns` (follow mode uses the wall
    /// clock when no packets come, so sessions end even when traffic stops).
    pub fn expire_at(&mut self, now_ns: i64) -> Result<(), AnalyzeError> {
        let Analyzer {
            engine,
            st,
            suppressed,
            ..
        } = self;
        engine.expire_at(now_ns, &mut |e| st.emit(e, suppressed));
        self.st.error.take().map_or(Ok(()), Err)
    }

    /// Provisional records of the flows open long enough at `now_ns` (wall clock, follow
    /// mode), see [`Engine::provisional`].
    pub fn provisional_at(&mut self, now_ns: i64) -> Result<u64, AnalyzeError> {
        let Analyzer { engine, st, .. } = self;
        let n = engine.provisional(now_ns, &mut |e| st.emit_provisional(e));
        self.st.error.take().map_or(Ok(n), Err)
    }

    /// End of the readable input: close every flow (`close_all`) or only the idle ones,
    /// then checkpoint.
    pub fn end_of_input(&mut self, close_all: bool) -> Result<(), AnalyzeError> {
        let Analyzer {
            engine,
            st,
            suppressed,
            ..
        } = self;
        if close_all {
            engine.close_all("end_of_input", &mut |e| st.emit(e, suppressed));
        } else {
            let now = engine.now();
            engine.expire_at(now, &mut |e| st.emit(e, suppressed));
        }
        if let Some(e) = self.st.error.take() {
            return Err(e);
        }
        self.checkpoint()
    }

    /// Whether sessions wait to be published and the publish interval (stretched by the
    /// cost of the last checkpoint) has passed.
    pub fn publish_due(&self) -> bool {
        self.st.written > self.written_at_checkpoint
            && self.last_checkpoint.elapsed()
                >= self
                    .publish_interval
                    .max(self.checkpoint_cost * PUBLISH_COST_FACTOR)
    }

    /// Syncs the session log and writes the checkpoint (which publishes the log's end).
    pub fn checkpoint(&mut self) -> Result<(), AnalyzeError> {
        self.engine.counters.sessions_suppressed_on_replay += std::mem::take(&mut self.suppressed);
        let t = Instant::now();
        write_checkpoint(
            &self.data,
            &mut self.engine,
            &mut self.st,
            self.last_pos,
            self.last_ts,
        )?;
        self.guard.checkpointed(self.last_pos);
        self.last_checkpoint = Instant::now();
        self.checkpoint_cost = t.elapsed();
        self.written_at_checkpoint = self.st.written;
        Ok(())
    }

    pub fn counters(&self) -> &Counters {
        &self.engine.counters
    }

    pub fn progress(&self) -> Progress {
        Progress {
            packets: self.packets,
            bytes: self.bytes,
            sessions: self.st.written,
            open_flows: self.engine.open_flows(),
        }
    }

    fn summary(&self, source: &mut dyn PacketSource) -> Result<Summary, AnalyzeError> {
        let head_ts = source.head()?.map_or(self.last_ts, |(_, ts)| ts);
        Ok(Summary {
            packets: self.packets,
            bytes: self.bytes,
            sessions_written: self.st.written,
            open_flows_kept: self.engine.open_flows(),
            counters: self.engine.counters.clone(),
            elapsed: self.started.elapsed(),
            lag_ns: head_ts.saturating_sub(self.last_ts).max(0),
        })
    }
}

impl Drop for Analyzer {
    fn drop(&mut self) {
        // An orderly end (also an error return) is not a death for the crash-loop guard;
        // a panic is (it may be the input's fault).
        if !std::thread::panicking() {
            self.guard.finish();
        }
    }
}

/// Analyzes `source` from the checkpoint in `data` to its readable end (`kuroko analyze`).
pub fn run(
    data: &Path,
    config: &kuroko_model::config::Config,
    source: &mut dyn PacketSource,
    mut opts: RunOptions<'_>,
) -> Result<Summary, AnalyzeError> {
    let mut a = Analyzer::open(data, config)?;
    a.catch_up(source, &mut opts)?;
    let close_all = opts
        .close_all_at_end
        .unwrap_or_else(|| !source.writer_active());
    a.end_of_input(close_all)?;
    if let Some(cb) = opts.progress.as_mut() {
        cb(a.progress());
    }
    a.summary(source)
}

/// How often `follow` looks for flows that need a provisional record.
pub const PROVISIONAL_SCAN: Duration = Duration::from_secs(1);
/// How long `follow` waits when the store has nothing new (a session's last packets are
/// read at most this long after the capture stored them).
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// In follow mode, idle timeouts use the wall clock minus this margin when no packets come
/// (capture timestamps trail the wall clock by the capture ring's flush interval).
pub const FOLLOW_CLOCK_MARGIN_NS: i64 = 5_000_000_000;

/// Packets newer than this (against the wall clock) count as live traffic.
pub const FOLLOW_LIVE_WINDOW_NS: i64 = 600_000_000_000;

/// Follows the store continuously (`kuroko run`) until `stop` is set: reads what is new,
/// checkpoints every interval, ends idle sessions by the wall clock when traffic stops.
/// On stop, writes a final checkpoint and keeps open flows for the next start.
pub fn follow(
    data: &Path,
    config: &kuroko_model::config::Config,
    source: &mut dyn PacketSource,
    stop: &std::sync::atomic::AtomicBool,
    mut opts: RunOptions<'_>,
) -> Result<Summary, AnalyzeError> {
    let mut a = Analyzer::open(data, config)?;
    opts.publish = true;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let n = a.catch_up(source, &mut opts)?;
        // `catch_up` read everything stored so far, so the wall clock minus the capture's
        // flush margin is a safe "now" for idle timeouts — also when a trickle of packets
        // (ARP, neighbour discovery) keeps `n` above zero on an otherwise quiet link.
        // Only for live traffic: an old pcap being imported must keep packet time.
        let wall = kuroko_model::Timestamp::now().nanos();
        if wall.saturating_sub(a.engine.now()) < FOLLOW_LIVE_WINDOW_NS {
            a.expire_at(wall.saturating_sub(FOLLOW_CLOCK_MARGIN_NS))?;
            if a.last_provisional.elapsed() >= PROVISIONAL_SCAN {
                a.last_provisional = Instant::now();
                a.provisional_at(wall)?;
            }
        }
        // Sessions closed by what was just read are published promptly; the consumers
        // (index, detections, alerts) wake on the publication.
        if a.publish_due() {
            a.checkpoint()?;
        }
        if n == 0 {
            if a.last_checkpoint.elapsed() >= opts.checkpoint_interval {
                a.checkpoint()?;
            }
            // Caught up: a kill from here on is not a packet's fault (crashguard).
            a.guard.idle();
            std::thread::sleep(FOLLOW_POLL);
        }
    }
    a.end_of_input(false)?;
    a.summary(source)
}

fn write_checkpoint(
    data: &Path,
    engine: &mut Engine,
    st: &mut State,
    analyzed_to: Option<PacketPos>,
    analyzed_ts_ns: i64,
) -> Result<(), AnalyzeError> {
    engine.counters.replay_window_overflow += std::mem::take(&mut st.replay_overflow);
    // Objects first: a session in the synced log never names an object that is not durable.
    engine.sync_files().map_err(|source| AnalyzeError::Files {
        path: data.join("files"),
        source,
    })?;
    let log = st.log.sync().map_err(|source| AnalyzeError::Log {
        path: st.log_dir.clone(),
        source,
    })?;
    let restart = engine.restart_position();
    // Sessions a replay from `restart` would meet: those whose last packet is at or after
    // it; and flows closed by FIN/RST whose late packets may still come (so that a replay
    // drops them as the first run does).
    let late_since = analyzed_ts_ns.saturating_sub(crate::engine::LATE_WINDOW_NS);
    st.recent.retain(|e| {
        restart.is_some_and(|r| e.last >= r) || e.closed_ts.is_some_and(|t| t >= late_since)
    });
    let cp = Checkpoint {
        version: checkpoint::CHECKPOINT_VERSION,
        analyzed_to,
        analyzed_ts_ns,
        log,
        restart,
        emitted: st.recent.iter().cloned().collect(),
        counters: engine.counters.clone(),
        written_at_ns: kuroko_model::Timestamp::now().nanos(),
    };
    checkpoint::store(data, &cp)?;
    // Only now may consumers read up to `log`: it will never be truncated again.
    st.log.publish(log).map_err(|source| AnalyzeError::Log {
        path: st.log_dir.clone(),
        source,
    })?;
    Ok(())
}

/// `DATA/analyzer/lock`.
pub fn lock_path(data: &Path) -> PathBuf {
    data.join("analyzer").join("lock")
}

/// Takes the data directory's analyzer lock (an exclusive `flock`, released when the file
/// is closed or the process dies) and writes our pid into it.
pub fn lock(data: &Path) -> Result<std::fs::File, AnalyzeError> {
    use std::io::{Read, Write};
    let path = lock_path(data);
    let err = |source| AnalyzeError::Lock {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(path.parent().unwrap_or(data)).map_err(err)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(err)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(AnalyzeError::Busy {
                data: data.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.into()
                },
            });
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(err(source)),
    }
    f.set_len(0).map_err(err)?;
    f.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(err)?;
    Ok(f)
}

/// Lag and counters for `kuroko status`: reads the checkpoint only.
pub fn status(data: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    checkpoint::load(data)
}
