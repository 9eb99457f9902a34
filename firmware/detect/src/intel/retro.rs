//! Retro-hunt bookkeeping: which intel updates the findings have seen, and the re-checks
//! of the past still to do, each with its own cursor in the session log.
//!
//! This state rides in the engine state ([`crate::EngineState::intel`]), so it is
//! committed in the same atomically replaced file as the findings it produced: a re-check
//! killed mid-way resumes from its last commit and counts no session twice, like the live
//! consumer (`crate::consumer`).

use kuroko_model::sessionlog::LogPos;
use serde::{Deserialize, Serialize};

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
    /// The YARA rule set taken into account and the re-checks of stored files it queued
    /// (`crate::intel::yara_retro`).
    #[serde(default)]
    pub yara: super::yara_retro::YaraProgress,
}
