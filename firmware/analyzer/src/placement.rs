//! Where and at what priority the analyzer runs while a capture writes to the store: the
//! CPU guarantee behind issue 15's 2-second time-to-query.
//!
//! Why not SCHED_IDLE (the policy before issue 15): an idle-class task gets CPU only when
//! no other task wants it, so one normal-priority task on its core (a web search, a build,
//! a shared core) leaves it ~0.3 % (weight 3 against 1024) and the analyzer falls minutes
//! behind. What capture needs is not that the analyzer starves, only that it never takes
//! the capture's CPU. So, by default (`[analyzer] cpu_priority = "nice"`):
//!
//! - **Off the capture cores.** The analyzer's affinity is `[analyzer] cores`, or every
//!   core it may use but `[capture] cores` (the board profile's dedicated cores). On a
//!   box with dedicated capture cores it cannot run on them at all, whatever its priority.
//! - **Normal scheduling at nice 10** (`[analyzer] nice`): against one busy nice-0 task
//!   on its core it gets weight 110 against 1024, about a tenth of the core, instead of
//!   nothing; an idle core is all its own as before. Where the capture is not pinned (a
//!   development box) the same weights give capture ≥ 90 % of a core it shares with a busy
//!   analyzer, and a capture thread waking from poll preempts it; `[capture] realtime`
//!   (SCHED_FIFO) makes that absolute.
//! - **Lowest best-effort I/O priority** (class 2, level 7) instead of the idle class, for
//!   the same reason on the disk.
//!
//! `cpu_priority = "idle"` keeps the old policy. The nice value is never lowered below
//! what the process was started with (an analyzer started under `nice -n 19` stays there),
//! and nothing here needs a privilege: raising one's own nice and narrowing one's affinity
//! are always allowed. The syscalls are in [`crate::sys`].

use kuroko_model::config::Config;

/// `[analyzer] nice` by default.
pub const DEFAULT_NICE: i32 = 10;

/// How the analyzer is scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuPolicy {
    /// SCHED_OTHER at this nice value (never below the one started with), best-effort I/O
    /// at the lowest level.
    Nice(i32),
    /// SCHED_IDLE and idle I/O: only CPU and disk time nobody else wants.
    Idle,
    /// The scheduling class inherited, nice at least this, the lowest best-effort I/O
    /// level unless the idle I/O class was inherited (a child of the analyzer).
    Lower(i32),
}

/// Priority and cores of the analyzer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub policy: CpuPolicy,
    /// Cores to run on (empty: those the process may use now).
    pub cores: Vec<usize>,
    /// Cores never to run on: the capture's.
    pub avoid: Vec<usize>,
}

impl Placement {
    /// The placement `config` asks for (`[analyzer] cpu_priority`, `nice`, `cores`, and
    /// `[capture] cores` to stay off). Values the config check refuses are taken as the
    /// defaults here.
    pub fn from_config(config: &Config) -> Placement {
        let a = &config.analyzer;
        Placement {
            policy: if a.cpu_priority == "idle" {
                CpuPolicy::Idle
            } else {
                CpuPolicy::Nice(a.nice.clamp(0, 19))
            },
            cores: a.cores.clone(),
            avoid: config.capture.cores.clone(),
        }
    }

    /// Lower priority only, on the cores inherited (the content worker, a child of the
    /// analyzer or of `kuroko content`).
    pub fn lower(nice: i32) -> Placement {
        Placement {
            policy: CpuPolicy::Lower(nice),
            cores: Vec::new(),
            avoid: Vec::new(),
        }
    }

    /// The cores to pin to, given those the process may use now (`allowed`): `None` when
    /// the affinity stays as it is. `Err` when every candidate core is a capture core
    /// (the affinity then stays as it is, and that is reported).
    pub fn affinity(&self, allowed: &[usize]) -> Result<Option<Vec<usize>>, String> {
        if self.cores.is_empty() && self.avoid.is_empty() {
            return Ok(None);
        }
        let base: &[usize] = if self.cores.is_empty() {
            allowed
        } else {
            &self.cores
        };
        let set: Vec<usize> = base
            .iter()
            .copied()
            .filter(|c| !self.avoid.contains(c))
            .collect();
        if set.is_empty() {
            return Err(format!(
                "every core of {base:?} is a capture core ({:?}); the analyzer is not pinned",
                self.avoid
            ));
        }
        if self.cores.is_empty() && set.len() == allowed.len() {
            return Ok(None);
        }
        Ok(Some(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_nice_10_off_the_capture_cores() {
        let mut c = Config::default();
        assert_eq!(
            Placement::from_config(&c).policy,
            CpuPolicy::Nice(DEFAULT_NICE)
        );
        c.capture.cores = vec![1];
        let p = Placement::from_config(&c);
        assert_eq!(p.affinity(&[0, 1, 2, 3]), Ok(Some(vec![0, 2, 3])));
        // Nothing to avoid among the allowed cores: left as it is.
        assert_eq!(p.affinity(&[0, 2]), Ok(None));
        // Only capture cores allowed: reported, not pinned onto them.
        assert!(p.affinity(&[1]).is_err());
        c.analyzer.cores = vec![2];
        assert_eq!(
            Placement::from_config(&c).affinity(&[0, 1, 2, 3]),
            Ok(Some(vec![2]))
        );
        c.analyzer.cpu_priority = "idle".into();
        assert_eq!(Placement::from_config(&c).policy, CpuPolicy::Idle);
        assert_eq!(Placement::lower(10).affinity(&[0, 1]), Ok(None));
    }
}
