//! The background scrub: sealed segments re-read and checked at a bounded rate.
//!
//! Damage that appears in a sealed segment after it was read (a flipped bit, a sector the
//! disk can no longer read) is otherwise found only when something reads that segment
//! again, perhaps a week later in front of the customer. The scrub reads every sealed
//! segment of the ring again, oldest first, checks every block and unit checksum through
//! the same code as any reader ([`StoreReader::verify_segment`]) and records what it finds
//! in `segments/damage.tsv` exactly as readers do (once per place), so `kuroko status`
//! counts it and raises the `damaged_slots` alarm with no reader involved.
//!
//! It must never compete with capture: it runs on its own thread at SCHED_IDLE with the
//! idle I/O class ([`crate::sys::idle_priority_this_thread`]), reads with O_DIRECT (the
//! page cache stays the analyzer's), one segment-sized buffer at most, released after each
//! segment, and at most `rate` bytes per second (`[storage] scrub_rate`, MB/s; 0 = off).
//!
//! A *pass* covers the sealed segments that exist when it starts (up to the newest one
//! then; segments sealed later are the next pass's), so a ring of `B` bytes is covered in
//! about `B / rate` whatever the write rate; segments the writer overwrites before the
//! scrub reaches them are skipped (they are gone). A new pass starts [`PASS_INTERVAL`]
//! after the previous one started, or at once when a pass took longer. Progress is kept
//! in `segments/scrub.state` (rewritten atomically after every segment, and at least every
//! [`HEARTBEAT`] while idle or reading slowly) so a restart resumes at the segment it was
//! at; `kuroko status` shows it ([`ScrubState`]).
//!
//! A scrub that has fallen far behind is an alarm (`scrub_behind`), not a figure to be
//! read: [`overdue`] when the oldest sealed segment not checked since it was sealed has
//! waited longer than the bound (`[storage] scrub_overdue`, by default
//! [`auto_bound_secs`]: two passes at the rate plus the pass interval and a day), and
//! [`stalled`] when the process that runs the scrub still holds the analyzer's lock but the
//! scrub has not rewritten its state for [`STALL_AFTER`] (its thread died or is stuck).

use crate::error::StoreError;
use crate::layout::{Paths, now_ns};
use crate::reader::StoreReader;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A new pass starts no sooner than this after the previous pass started (a small ring
/// is not read over and over; a large one is read continuously at the rate).
pub const PASS_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// The default `[storage] scrub_rate` in MB/s: a 2 TB ring in about 2.9 days, a small
/// share of any disk the appliance records on.
pub const DEFAULT_RATE_MB_S: f64 = 8.0;

/// The scrub rewrites its state at least this often while it runs (idle, or pacing a
/// slow read): its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

/// A scrub whose process still runs but whose state is older than this is stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(15 * 60);

/// The scrub's progress, as kept in `segments/scrub.state` (times in ns since the epoch;
/// 0 = never).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScrubState {
    /// The configured rate (bytes per second) of the scrub that wrote this.
    pub rate_bytes_per_sec: u64,
    /// When the pass under way started (0: none under way).
    pub pass_started_wall_ns: u64,
    /// The newest sealed segment when it started: the pass ends after it.
    pub pass_end_seq: u64,
    /// The position: segments below this sequence number are done in this pass.
    pub next_seq: u64,
    /// Segments checked and bytes read in the pass under way.
    pub pass_segments: u64,
    pub pass_bytes: u64,
    /// When the last full pass started and ended.
    pub last_pass_started_wall_ns: u64,
    pub last_full_pass_wall_ns: u64,
    /// Full passes done, segments checked, bytes read and damaged places found since the
    /// data directory was created.
    pub passes: u64,
    pub segments_checked: u64,
    pub bytes_checked: u64,
    pub damage_found: u64,
    /// When the scrub last wrote this (after every segment, and every [`HEARTBEAT`]).
    pub updated_wall_ns: u64,
    /// The newest segment the last full pass covered (0: none, or a state written before
    /// this was kept).
    pub last_pass_end_seq: u64,
    /// The pid of the process running the scrub (0: none; the scrub is off when
    /// `rate_bytes_per_sec` is 0).
    pub pid: u64,
    /// `[storage] scrub_overdue` in seconds (0: automatic, [`auto_bound_secs`]).
    pub overdue_after_secs: u64,
}

const FIELDS: &[&str] = &[
    "rate_bytes_per_sec",
    "pass_started_wall_ns",
    "pass_end_seq",
    "next_seq",
    "pass_segments",
    "pass_bytes",
    "last_pass_started_wall_ns",
    "last_full_pass_wall_ns",
    "passes",
    "segments_checked",
    "bytes_checked",
    "damage_found",
    "updated_wall_ns",
    "last_pass_end_seq",
    "pid",
    "overdue_after_secs",
];

impl ScrubState {
    fn fields_mut(&mut self) -> [&mut u64; 16] {
        [
            &mut self.rate_bytes_per_sec,
            &mut self.pass_started_wall_ns,
            &mut self.pass_end_seq,
            &mut self.next_seq,
            &mut self.pass_segments,
            &mut self.pass_bytes,
            &mut self.last_pass_started_wall_ns,
            &mut self.last_full_pass_wall_ns,
            &mut self.passes,
            &mut self.segments_checked,
            &mut self.bytes_checked,
            &mut self.damage_found,
            &mut self.updated_wall_ns,
            &mut self.last_pass_end_seq,
            &mut self.pid,
            &mut self.overdue_after_secs,
        ]
    }

    /// `key value` lines; unknown keys and lines that do not parse are ignored.
    fn parse(text: &str) -> ScrubState {
        let mut st = ScrubState::default();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(k), Some(v)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            if let Some(i) = FIELDS.iter().position(|f| *f == k) {
                *st.fields_mut()[i] = v;
            }
        }
        st
    }

    fn text(&self) -> String {
        let mut me = self.clone();
        FIELDS
            .iter()
            .zip(me.fields_mut())
            .map(|(k, v)| format!("{k} {v}\n"))
            .collect()
    }
}

pub fn path(paths: &Paths) -> PathBuf {
    paths.segments.join("scrub.state")
}

/// The scrub's last saved progress in data directory `data` (`None`: it never ran).
pub fn load_state(data: &Path) -> Option<ScrubState> {
    load(&Paths::new(data))
}

pub(crate) fn load(paths: &Paths) -> Option<ScrubState> {
    std::fs::read_to_string(path(paths))
        .ok()
        .map(|t| ScrubState::parse(&t))
}

/// Best effort (a read-only data directory keeps no progress): written beside and
/// renamed over, so a crash leaves the old or the new state.
fn save(paths: &Paths, st: &ScrubState) {
    let p = path(paths);
    let tmp = p.with_extension("state.tmp");
    if std::fs::write(&tmp, st.text()).is_ok() {
        let _ = std::fs::rename(&tmp, &p);
    }
}

/// What one [`Scrubber::step`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Checked the segment with this sequence number: damaged places found there.
    Checked { seq: u64, bytes: u64, damage: usize },
    /// A pass ended (every segment it covers checked or overwritten).
    PassDone,
    /// Nothing to do until this much later (no sealed segment yet, or the next pass is
    /// not due).
    Idle(Duration),
    /// `stop` was set.
    Stopped,
}

/// Paces reads at a rate: a read that follows `n` bytes starts no earlier than
/// `n / rate` seconds after the start (sleeping in short slices so that a stop is seen
/// within ~100 ms). Spans segments; restarted after the scrub was idle.
struct Pacer {
    rate: u64,
    start: Instant,
    bytes: u64,
}

impl Pacer {
    fn new(rate: u64) -> Pacer {
        Pacer {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// `beat` is called between sleeps (the scrub's heartbeat while it paces).
    fn take(&mut self, n: u64, stop: &AtomicBool, mut beat: impl FnMut()) -> ControlFlow<()> {
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate.max(1) as f64);
        self.bytes += n;
        loop {
            if stop.load(Ordering::Relaxed) {
                return ControlFlow::Break(());
            }
            beat();
            let elapsed = self.start.elapsed();
            if elapsed >= due {
                return ControlFlow::Continue(());
            }
            std::thread::sleep((due - elapsed).min(Duration::from_millis(100)));
        }
    }
}

/// The scrub of one data directory (one at a time: the analyzer runs it, and there is
/// one analyzer per data directory).
pub struct Scrubber {
    reader: StoreReader,
    paths: Paths,
    pacer: Pacer,
    state: ScrubState,
    interval: Duration,
}

impl Scrubber {
    /// A scrub of the store in `data` reading at most `rate_bytes_per_sec`, resuming
    /// where the last one stopped.
    pub fn open(data: &Path, rate_bytes_per_sec: u64) -> Result<Scrubber, StoreError> {
        let reader = StoreReader::open(data)?;
        let paths = Paths::new(data);
        let mut state = load(&paths).unwrap_or_default();
        state.rate_bytes_per_sec = rate_bytes_per_sec;
        state.pid = u64::from(std::process::id());
        state.updated_wall_ns = now_ns();
        save(&paths, &state);
        Ok(Scrubber {
            reader,
            paths,
            pacer: Pacer::new(rate_bytes_per_sec),
            state,
            interval: PASS_INTERVAL,
        })
    }

    /// Sets the bound after which an unchecked sealed segment raises `scrub_behind`
    /// (`[storage] scrub_overdue` in seconds; 0: [`auto_bound_secs`]). Kept in the state,
    /// where `status` reads it.
    pub fn with_overdue_after(mut self, secs: u64) -> Scrubber {
        self.state.overdue_after_secs = secs;
        save(&self.paths, &self.state);
        self
    }

    /// Sets the least time between pass starts (tests; [`PASS_INTERVAL`] by default).
    pub fn with_pass_interval(mut self, interval: Duration) -> Scrubber {
        self.interval = interval;
        self
    }

    pub fn state(&self) -> &ScrubState {
        &self.state
    }

    /// Checks the next segment of the pass under way (starting a pass when one is due),
    /// at the rate; returns early with [`Step::Stopped`] when `stop` is set.
    pub fn step(&mut self, stop: &AtomicBool) -> Result<Step, StoreError> {
        if stop.load(Ordering::Relaxed) {
            return Ok(Step::Stopped);
        }
        self.reader.refresh()?;
        let newest_sealed = self
            .reader
            .segments()
            .iter()
            .filter(|s| !s.open)
            .map(|s| s.seq)
            .max();
        let now = now_ns();
        if self.state.pass_started_wall_ns == 0 {
            let Some(end) = newest_sealed else {
                return Ok(Step::Idle(Duration::from_secs(1)));
            };
            let next_due = self
                .state
                .last_pass_started_wall_ns
                .saturating_add(self.interval.as_nanos() as u64);
            if self.state.passes > 0 && now < next_due {
                let wait = Duration::from_nanos(next_due - now).min(Duration::from_secs(60));
                return Ok(Step::Idle(wait));
            }
            self.state.pass_started_wall_ns = now;
            self.state.pass_end_seq = end;
            self.state.next_seq = 0;
            self.state.pass_segments = 0;
            self.state.pass_bytes = 0;
        }
        let next = self
            .reader
            .segments()
            .iter()
            .find(|s| !s.open && s.seq >= self.state.next_seq && s.seq <= self.state.pass_end_seq)
            .cloned();
        let Some(info) = next else {
            // Every segment of the pass checked (or overwritten before its turn).
            let st = &mut self.state;
            st.last_pass_started_wall_ns = st.pass_started_wall_ns;
            st.last_full_pass_wall_ns = now;
            st.last_pass_end_seq = st.pass_end_seq;
            st.passes += 1;
            st.pass_started_wall_ns = 0;
            st.updated_wall_ns = now;
            save(&self.paths, st);
            return Ok(Step::PassDone);
        };
        let (pacer, paths, state) = (&mut self.pacer, &self.paths, &mut self.state);
        let Some(rep) = self.reader.verify_segment(&info, |n| {
            // A slow rate paces one segment for long: the heartbeat goes on meanwhile.
            pacer.take(n, stop, || heartbeat(paths, state))
        })?
        else {
            self.state.updated_wall_ns = now_ns();
            save(&self.paths, &self.state);
            return Ok(Step::Stopped);
        };
        let st = &mut self.state;
        st.next_seq = info.seq + 1;
        st.pass_segments += 1;
        st.pass_bytes += rep.bytes;
        st.segments_checked += 1;
        st.bytes_checked += rep.bytes;
        st.damage_found += rep.damage.len() as u64;
        st.updated_wall_ns = now_ns();
        save(&self.paths, st);
        Ok(Step::Checked {
            seq: info.seq,
            bytes: rep.bytes,
            damage: rep.damage.len(),
        })
    }

    /// Runs on the calling thread until `stop` is set: first puts the thread in the
    /// background (SCHED_IDLE, idle I/O class; what could not be applied goes to `note`,
    /// and the scrub runs anyway: its rate still bounds it), then steps, sleeping while
    /// idle (in slices, watching `stop`). A store error (a slot unreadable for a moment)
    /// goes to `note` and is retried after a pause.
    pub fn run(&mut self, stop: &AtomicBool, mut note: impl FnMut(&str)) {
        for problem in crate::sys::idle_priority_this_thread() {
            note(&format!("scrub at normal priority: {problem}"));
        }
        while !stop.load(Ordering::Relaxed) {
            let wait = match self.step(stop) {
                Ok(Step::Checked { .. }) | Ok(Step::PassDone) => Duration::ZERO,
                Ok(Step::Idle(d)) => {
                    // The time idle is not credit for a burst afterwards.
                    self.pacer = Pacer::new(self.pacer.rate);
                    self.heartbeat();
                    d.min(HEARTBEAT)
                }
                Ok(Step::Stopped) => break,
                Err(e) => {
                    note(&format!("scrub: {e}"));
                    Duration::from_secs(10)
                }
            };
            let t0 = Instant::now();
            while t0.elapsed() < wait && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100).min(wait - t0.elapsed()));
            }
        }
    }
}

impl Scrubber {
    fn heartbeat(&mut self) {
        heartbeat(&self.paths, &mut self.state);
    }
}

/// Rewrites the state when its last write is [`HEARTBEAT`] old (also while one slow
/// segment is paced, so `stalled` never mistakes a long read for a dead scrub).
fn heartbeat(paths: &Paths, state: &mut ScrubState) {
    let now = now_ns();
    if now.saturating_sub(state.updated_wall_ns) >= HEARTBEAT.as_nanos() as u64 {
        state.updated_wall_ns = now;
        save(paths, state);
    }
}

/// Records that the scrub of `data` is off (`[storage] scrub_rate = 0`) for `status`, so
/// that the progress of an earlier scrub raises no alarm. Best effort; nothing when the
/// scrub never ran.
pub fn record_off(data: &Path) {
    let paths = Paths::new(data);
    if let Some(mut st) = load(&paths) {
        st.rate_bytes_per_sec = 0;
        st.pid = 0;
        st.pass_started_wall_ns = 0;
        st.updated_wall_ns = now_ns();
        save(&paths, &st);
    }
}

/// Why the scrub is behind: the `scrub_behind` alarm.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Behind {
    /// Segment `seq`, sealed at `sealed_wall_ns`, the oldest not checked since it was
    /// sealed, has waited `waited_secs`, longer than `bound_secs`.
    Overdue {
        seq: u64,
        sealed_wall_ns: u64,
        waited_secs: u64,
        bound_secs: u64,
        /// Full passes done so far (a new one ends this occurrence).
        passes: u64,
    },
    /// Process `pid` still runs the analyzer but its scrub has not written its state for
    /// `secs` (since `updated_wall_ns`): the scrub thread died or is stuck.
    Stalled {
        pid: u64,
        updated_wall_ns: u64,
        secs: u64,
    },
}

/// The automatic `scrub_overdue` for a ring of `budget` bytes read at `rate` bytes/s: a
/// segment sealed just after a pass started waits for that pass, the pass interval and
/// the next pass, so two passes plus [`PASS_INTERVAL`], plus a day of slack (the scrub
/// runs at idle priority and yields to a busy analyzer).
pub fn auto_bound_secs(budget: u64, rate: u64) -> u64 {
    (2 * budget / rate.max(1))
        .saturating_add(PASS_INTERVAL.as_secs())
        .saturating_add(86_400)
}

/// When the scrub `st` (of a ring of `budget` bytes) is overdue at `now` (ns): the oldest
/// sealed segment of `segments` that no pass has checked since it was sealed waited longer
/// than the bound. `None` when the scrub is off (rate 0) or keeps up.
pub fn overdue(
    segments: &[crate::reader::SegmentInfo],
    st: &ScrubState,
    budget: u64,
    now: u64,
) -> Option<Behind> {
    if st.rate_bytes_per_sec == 0 {
        return None;
    }
    let bound = match st.overdue_after_secs {
        0 => auto_bound_secs(budget, st.rate_bytes_per_sec),
        b => b,
    };
    let checked = |s: &crate::reader::SegmentInfo| {
        // By the pass under way (it goes in sequence order up to its end) ...
        let this_pass =
            st.pass_started_wall_ns > 0 && s.seq < st.next_seq && s.seq <= st.pass_end_seq;
        // ... or by the last full pass (which covered every segment sealed when it began;
        // a state written before `last_pass_end_seq` was kept: by the sealing time).
        let last_pass = st.passes > 0
            && if st.last_pass_end_seq > 0 {
                s.seq <= st.last_pass_end_seq
            } else {
                s.sealed_wall_ns <= st.last_pass_started_wall_ns
            };
        this_pass || last_pass
    };
    let oldest = segments
        .iter()
        .filter(|s| !s.open && s.sealed_wall_ns > 0 && !checked(s))
        .min_by_key(|s| s.sealed_wall_ns)?;
    let waited = now.saturating_sub(oldest.sealed_wall_ns) / 1_000_000_000;
    (waited > bound).then_some(Behind::Overdue {
        seq: oldest.seq,
        sealed_wall_ns: oldest.sealed_wall_ns,
        waited_secs: waited,
        bound_secs: bound,
        passes: st.passes,
    })
}

/// When the scrub `st` is stalled at `now` (ns): `holder`, the pid holding the analyzer's
/// lock now, is the process that runs the scrub, and the scrub has not rewritten its state
/// for [`STALL_AFTER`] (it does every [`HEARTBEAT`] at least).
pub fn stalled(st: &ScrubState, holder: Option<u32>, now: u64) -> Option<Behind> {
    let holder = u64::from(holder?);
    if st.rate_bytes_per_sec == 0 || st.pid == 0 || st.pid != holder {
        return None;
    }
    let secs = now.saturating_sub(st.updated_wall_ns) / 1_000_000_000;
    (secs > STALL_AFTER.as_secs()).then_some(Behind::Stalled {
        pid: st.pid,
        updated_wall_ns: st.updated_wall_ns,
        secs,
    })
}

/// The rate in bytes per second for `[storage] scrub_rate` in MB/s (0 or less: off).
pub fn rate_from_mb_s(mb_s: f64) -> u64 {
    if mb_s.is_finite() && mb_s > 0.0 {
        (mb_s * 1e6) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_ignores_junk() {
        let st = ScrubState {
            rate_bytes_per_sec: 8_000_000,
            pass_started_wall_ns: 1,
            pass_end_seq: 7,
            next_seq: 5,
            pass_segments: 3,
            pass_bytes: 4,
            last_pass_started_wall_ns: 9,
            last_full_pass_wall_ns: 10,
            passes: 2,
            segments_checked: 11,
            bytes_checked: 12,
            damage_found: 13,
            updated_wall_ns: 14,
            last_pass_end_seq: 15,
            pid: 16,
            overdue_after_secs: 17,
        };
        assert_eq!(ScrubState::parse(&st.text()), st);
        let junk = format!("{}garbage\nnext_seq x\nunknown 5\n", st.text());
        assert_eq!(ScrubState::parse(&junk), st);
        assert_eq!(ScrubState::parse(""), ScrubState::default());
    }

    fn seg(seq: u64, sealed_s: u64) -> crate::reader::SegmentInfo {
        crate::reader::SegmentInfo {
            slot: seq as u32,
            seq,
            open: false,
            recovered: false,
            write_error: false,
            lanes: false,
            packets: 1,
            first_ts: 1,
            last_ts: 2,
            record_bytes: 1,
            used_bytes: 1,
            blocks: 1,
            damaged_blocks: 0,
            opened_wall_ns: sealed_s * 1_000_000_000,
            sealed_wall_ns: sealed_s * 1_000_000_000,
            ifaces: Vec::new(),
            index: None,
        }
    }

    #[test]
    fn overdue_names_the_oldest_segment_no_pass_checked_since_it_was_sealed() {
        let segs: Vec<_> = (1..=4).map(|q| seg(q, q * 10)).collect();
        let now = 100 * 1_000_000_000;
        // The last full pass covered 1..=2; the pass under way (to 4) has done 3.
        let st = ScrubState {
            rate_bytes_per_sec: 1,
            overdue_after_secs: 5,
            passes: 1,
            last_pass_end_seq: 2,
            pass_started_wall_ns: 45 * 1_000_000_000,
            pass_end_seq: 4,
            next_seq: 4,
            ..Default::default()
        };
        match overdue(&segs, &st, 1 << 20, now) {
            Some(Behind::Overdue {
                seq: 4,
                waited_secs: 60,
                bound_secs: 5,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // Every segment checked: keeps up.
        let done = ScrubState {
            next_seq: 5,
            ..st.clone()
        };
        assert_eq!(overdue(&segs, &done, 1 << 20, now), None);
        // Within its bound: no alarm.
        let lax = ScrubState {
            overdue_after_secs: 61,
            ..st.clone()
        };
        assert_eq!(overdue(&segs, &lax, 1 << 20, now), None);
        // Off: never.
        let off = ScrubState {
            rate_bytes_per_sec: 0,
            ..st.clone()
        };
        assert_eq!(overdue(&segs, &off, 1 << 20, now), None);
        // A state from before `last_pass_end_seq`: the last pass covered what was sealed
        // when it started (25 s: segments 1 and 2).
        let old = ScrubState {
            last_pass_end_seq: 0,
            last_pass_started_wall_ns: 25 * 1_000_000_000,
            pass_started_wall_ns: 0,
            ..st.clone()
        };
        assert!(matches!(
            overdue(&segs, &old, 1 << 20, now),
            Some(Behind::Overdue { seq: 3, .. })
        ));
        // Automatic bound: two passes of the ring, the pass interval and a day.
        let auto = ScrubState {
            overdue_after_secs: 0,
            ..st
        };
        assert_eq!(overdue(&segs, &auto, 1 << 20, now), None);
        assert_eq!(
            auto_bound_secs(2_000_000_000_000, 8_000_000),
            500_000 + 6 * 3600 + 86_400
        );
    }

    #[test]
    fn stalled_only_while_its_own_analyzer_holds_the_lock() {
        let now = 10_000 * 1_000_000_000;
        let st = ScrubState {
            rate_bytes_per_sec: 8_000_000,
            pid: 77,
            updated_wall_ns: now - 3600 * 1_000_000_000,
            ..Default::default()
        };
        assert!(matches!(
            stalled(&st, Some(77), now),
            Some(Behind::Stalled {
                pid: 77,
                secs: 3600,
                ..
            })
        ));
        assert_eq!(stalled(&st, None, now), None, "no analyzer runs");
        assert_eq!(stalled(&st, Some(78), now), None, "another analyzer");
        let fresh = ScrubState {
            updated_wall_ns: now - 60 * 1_000_000_000,
            ..st.clone()
        };
        assert_eq!(stalled(&fresh, Some(77), now), None);
        let off = ScrubState {
            rate_bytes_per_sec: 0,
            ..st
        };
        assert_eq!(stalled(&off, Some(77), now), None);
    }

    #[test]
    fn rates() {
        assert_eq!(rate_from_mb_s(8.0), 8_000_000);
        assert_eq!(rate_from_mb_s(0.0), 0);
        assert_eq!(rate_from_mb_s(-1.0), 0);
        assert_eq!(rate_from_mb_s(f64::NAN), 0);
    }
}
