//! Retro-hunt bookkeeping: which intel updates the findings have seen, and the re-checks
//! of the past still to do, each with its own cursor in the session log.
//!
//! This state rides in the engine state ([`crate::EngineState::intel`]), so it is
//! committed in the same atomically replaced file as the findings it produced: a re-check
//! killed mid-way resumes from its last commit and counts no session twice, like the live
//! consumer (`crate::consumer`).

use kuroko_model::sessionlog::LogPos;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Sessions remembered per rule in [`Counted`]; beyond it, a re-check falls back on the
/// finding's evidence (the first 32 sessions) and the overflow is counted.
pub const MAX_COUNTED: usize = 200_000;

/// One re-check: the sessions of the log before `end` (what had been read when the intel
/// changed) against the packs of one update.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Recheck {
    /// The `DATA/intel/state.json` generation of the update.
    pub generation: u64,
    /// Its date (RFC 3339), quoted in the findings it makes.
    pub date: String,
    pub packs: Vec<String>,
    /// Next record to check.
    pub pos: LogPos,
    /// First record not to check (read live with the new intel).
    pub end: LogPos,
    pub sessions_checked: u64,
    pub sessions_with_hits: u64,
    /// The last object of `files/objects.log` when the re-check was queued: the pass over
    /// the stored objects whose session has left the log ends there
    /// (`crate::intel::orphans`).
    #[serde(default)]
    pub objects_end: String,
    /// That pass, once the log pass is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<super::orphans::ObjectsPass>,
}

/// What the findings know about the intel.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IntelProgress {
    /// The last intel generation taken into account (live matcher reloaded, re-check queued).
    pub seen_generation: u64,
    /// Re-checks still to do, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<Recheck>,
    /// The last finished re-check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_done: Option<Recheck>,
    /// Sessions that matched an indicator live.
    #[serde(default)]
    pub live_sessions_with_hits: u64,
    /// The sessions already counted in `intel_match` and `yara_match` findings.
    #[serde(default)]
    pub counted: Counted,
    /// The YARA rule set taken into account and the re-checks of stored files it queued
    /// (`crate::intel::yara_retro`).
    #[serde(default)]
    pub yara: super::yara_retro::YaraProgress,
}

/// The sessions counted in the findings a re-check can make again (`intel_match`,
/// `yara_match`), live or by an earlier re-check, by a 64-bit FNV-1a of the session id.
///
/// A re-check of every pack or every rule finds again what was counted before; a finding
/// keeps only its first 32 evidence sessions, so "already counted" cannot be read from it
/// (a client with 300 sessions to a C2 was counted 300 + 268 times by a second re-check).
/// Eight bytes per matched session, committed with the findings; at [`MAX_COUNTED`] per
/// rule the oldest are not dropped but new ones are not remembered (`overflow`), and the
/// evidence check is what is left for those.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Counted {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub intel: BTreeSet<u64>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub yara: BTreeSet<u64>,
    /// Sessions not remembered because a set was full.
    #[serde(default)]
    pub overflow: u64,
}

/// Which of the [`Counted`] sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountedRule {
    Intel,
    Yara,
}

impl Counted {
    fn set(&mut self, rule: CountedRule) -> &mut BTreeSet<u64> {
        match rule {
            CountedRule::Intel => &mut self.intel,
            CountedRule::Yara => &mut self.yara,
        }
    }

    pub fn insert(&mut self, rule: CountedRule, session: &str) {
        let set = self.set(rule);
        if set.len() >= MAX_COUNTED {
            self.overflow += 1;
        } else {
            set.insert(fnv1a(session));
        }
    }

    pub fn contains(&self, rule: CountedRule, session: &str) -> bool {
        let set = match rule {
            CountedRule::Intel => &self.intel,
            CountedRule::Yara => &self.yara,
        };
        set.contains(&fnv1a(session))
    }
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
