//! Crash-loop guard: no input may make the analyzer die, restart from its checkpoint,
//! replay the same packets and die again forever.
//!
//! Why: after a crash (a parser bug, the OOM killer) the analyzer resumes from its last
//! checkpoint and replays deterministically, so a packet that killed it once kills it at
//! the same place every time, and from then on nothing is analyzed while the store fills.
//!
//! How: `DATA/analyzer/attempt` (small JSON, rewritten in place without fsync: a crash of
//! the process keeps the page cache) records the checkpoint this run started from and how
//! far it got, as the ordinal of the packet it last *reached* (packets of this run, counted
//! from the checkpoint's restart position, so a replay counts identically), sampled at
//! ordinals 1, 2, 4, …, 256 and then every [`SAMPLE_EVERY`]. An orderly end (success or an
//! error return) removes the file. When a run starts and finds the file, the previous run
//! died; if it died after the same checkpoint at the same sample point as the one before
//! it, that is one more consecutive death there. After [`MAX_DEATHS`] of them the packets
//! between that sample point and the next are skipped, once, and counted
//! (`crash_loop_skips`, `packets_skipped_after_crashes`): a small, counted gap instead of
//! a dead analyzer. Deaths at different places (an operator's kill -9, a power cut) never
//! add up, and neither do deaths while the run had read everything stored and was waiting
//! for more (`idle`): no packet was being analyzed, so none can be to blame. Without that,
//! three kill -9s of a caught-up `analyze --follow` (a supervisor's restarts, an operator)
//! skipped the next packets to arrive.

use crate::position::PacketPos;
use serde::{Deserialize, Serialize};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Consecutive deaths at one place before its packets are skipped.
pub const MAX_DEATHS: u32 = 3;
/// Sample spacing of the reached ordinal past the first 256 packets.
pub const SAMPLE_EVERY: u64 = 256;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Attempt {
    /// The checkpoint's `analyzed_to` this run started from.
    key: Option<PacketPos>,
    /// Last sample point reached by this run.
    reached: Option<u64>,
    /// Where the previous runs died (their last sample point) and how many in a row.
    died_at: Option<u64>,
    deaths: u32,
    /// This run had read everything stored and was waiting for more.
    idle: bool,
}

/// The next sample point after ordinal `n`.
fn next_sample(n: u64) -> u64 {
    if n < SAMPLE_EVERY {
        (n * 2).max(1)
    } else {
        n + SAMPLE_EVERY
    }
}

fn is_sample(n: u64) -> bool {
    n > 0 && ((n <= SAMPLE_EVERY && n.is_power_of_two()) || n.is_multiple_of(SAMPLE_EVERY))
}

pub fn path(data: &Path) -> PathBuf {
    data.join("analyzer").join("attempt")
}

/// One run's guard (see the module docs).
pub struct CrashGuard {
    path: PathBuf,
    file: std::fs::File,
    state: Attempt,
    /// Ordinals (exclusive start, inclusive end) this run skips.
    skip: Option<(u64, u64)>,
}

impl CrashGuard {
    /// Starts a run from the checkpoint whose `analyzed_to` is `key`.
    pub fn open(data: &Path, key: Option<PacketPos>) -> io::Result<CrashGuard> {
        let path = path(data);
        let prev: Option<Attempt> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut state = Attempt {
            key,
            ..Attempt::default()
        };
        if let Some(prev) = prev.filter(|p| p.key == key) {
            // The previous run from this same checkpoint died.
            state.died_at = prev.died_at;
            state.deaths = prev.deaths;
            if let Some(r) = prev.reached.filter(|_| !prev.idle) {
                if prev.died_at == Some(r) {
                    state.deaths += 1;
                } else {
                    state.died_at = Some(r);
                    state.deaths = 1;
                }
            }
        }
        let skip = match state.died_at {
            Some(r) if state.deaths >= MAX_DEATHS => Some((r, next_sample(r))),
            _ => None,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let g = CrashGuard {
            path,
            file,
            state,
            skip,
        };
        g.save()?;
        Ok(g)
    }

    /// The ordinal range (exclusive, inclusive) this run skips, if a crash loop was found.
    pub fn skip_range(&self) -> Option<(u64, u64)> {
        self.skip
    }

    /// Packet number `n` (1-based, of this run) is about to be analyzed. Returns whether
    /// to skip it.
    pub fn on_packet(&mut self, n: u64) -> bool {
        if is_sample(n) || self.state.idle {
            // The first packet after an idle spell is where a death would now be: the
            // place is set just before it, so that a skip from there covers it.
            let at = if is_sample(n) { n } else { n - 1 };
            self.state.idle = false;
            self.state.reached = Some(at.max(self.state.reached.unwrap_or(0)));
            // Best effort: a failed write only weakens the guard.
            let _ = self.save();
        }
        self.skip.is_some_and(|(a, b)| n > a && n <= b)
    }

    /// The run has read everything stored and waits for more: a death from here until the
    /// next packet is not the input's fault (written once per idle spell).
    pub fn idle(&mut self) {
        if !self.state.idle {
            self.state.idle = true;
            let _ = self.save();
        }
    }

    /// A checkpoint at `key` was written: deaths before it no longer matter.
    pub fn checkpointed(&mut self, key: Option<PacketPos>) {
        self.state = Attempt {
            key,
            ..Attempt::default()
        };
        let _ = self.save();
    }

    fn save(&self) -> io::Result<()> {
        let mut body = serde_json::to_vec(&self.state).map_err(io::Error::other)?;
        body.push(b'\n');
        self.file.write_all_at(&body, 0)?;
        self.file.set_len(body.len() as u64)
    }

    /// An orderly end: the next run does not count this one as a death.
    pub fn finish(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn die_at(data: &Path, key: Option<PacketPos>, n: u64) -> Option<(u64, u64)> {
        let mut g = CrashGuard::open(data, key).unwrap();
        let skip = g.skip_range();
        for i in 1..=n {
            g.on_packet(i);
        }
        skip
    }

    #[test]
    fn deaths_while_waiting_for_input_never_skip_packets() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let k = Some(PacketPos::new(1, 2, 3));
        // Caught up after 64 packets and killed while waiting, again and again (what a
        // supervisor's or an operator's kill -9 of a quiet `analyze --follow` does).
        for _ in 0..5 {
            let mut g = CrashGuard::open(d, k).unwrap();
            assert_eq!(g.skip_range(), None);
            for i in 1..=64 {
                g.on_packet(i);
            }
            g.idle();
        }
        // Dying while analyzing still counts: a packet after the idle spell is the place.
        for _ in 0..MAX_DEATHS {
            let mut g = CrashGuard::open(d, k).unwrap();
            for i in 1..=64 {
                g.on_packet(i);
            }
            g.idle();
            g.on_packet(65);
        }
        assert_eq!(
            CrashGuard::open(d, k).unwrap().skip_range(),
            Some((64, 128))
        );
    }

    #[test]
    fn only_repeated_deaths_at_one_place_skip_and_only_that_place() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let k = Some(PacketPos::new(1, 2, 3));
        // Deaths at different places never add up.
        assert_eq!(die_at(d, k, 1000), None);
        assert_eq!(die_at(d, k, 5000), None);
        assert_eq!(die_at(d, k, 1000), None);
        assert_eq!(die_at(d, k, 1001), None);
        assert_eq!(die_at(d, k, 1002), None);
        // 1000, 1001 and 1002 all last reached 768: three in a row there.
        assert_eq!(die_at(d, k, 1003), Some((768, 1024)));
        // A new checkpoint forgets them; an orderly end removes the file.
        let g = CrashGuard::open(d, Some(PacketPos::new(9, 0, 0))).unwrap();
        assert_eq!(g.skip_range(), None);
        g.finish();
        assert!(!path(d).exists());
        // Early deaths are localised by the doubling samples.
        for _ in 0..MAX_DEATHS {
            assert_eq!(die_at(d, None, 5), None);
        }
        assert_eq!(die_at(d, None, 5), Some((4, 8)));
    }
}
