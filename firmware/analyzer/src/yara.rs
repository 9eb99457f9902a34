//! YARA on reconstructed objects, in the analyzer's own path: every object the parsers
//! hand to the store (HTTP bodies, FTP transfers, mails, attachments) is scanned before it
//! is stored, so its matches go into the object's metadata (`files/…json`) and the
//! session's `FileRef.yara` at once; the index (`yara:`) and the detection rule
//! `yara_match` read them from the session record like any other field, and the
//! exactly-once replay of the session log covers them too.
//!
//! Why here and not a consumer of its own: the analyzer already runs at idle CPU and I/O
//! priority and holds the bytes in memory; a consumer would read every object back from
//! disk. The cost is bounded per object by `[intel] yara_max_file_size` and
//! `yara_timeout`, and the same content is scanned once (the scanner caches by digest).
//!
//! Counted ([`crate::Counters`]): `yara_scanned`, `yara_cached`, `yara_matched_files`,
//! `yara_too_large`, `yara_timeouts`, `yara_errors`.

use crate::Counters;
use kuroko_model::session::FileRef;
use kuroko_yara::{Outcome, Scanner};

/// What the scan of one object found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Names of the rules that matched, in rule order.
    pub rules: Vec<String>,
    /// The highest level their metadata ask for.
    pub level: Option<char>,
}

impl Verdict {
    /// Writes the verdict on the session's entry for the object.
    pub fn apply(self, file: &mut FileRef) {
        file.yara = self.rules;
        file.yara_level = self.level.map(|c| c.to_string());
    }
}

/// Scans `bytes` (digest `sha256`), picking up changed rule files first, and counts
/// what happened.
pub fn scan(scanner: &mut Scanner, counters: &mut Counters, sha256: &str, bytes: &[u8]) -> Verdict {
    scanner.refresh();
    match scanner.scan(sha256, bytes) {
        Outcome::NoRules => Verdict::default(),
        Outcome::TooLarge => {
            counters.yara_too_large += 1;
            Verdict::default()
        }
        Outcome::Timeout => {
            counters.yara_timeouts += 1;
            Verdict::default()
        }
        Outcome::Failed(_) => {
            counters.yara_errors += 1;
            Verdict::default()
        }
        Outcome::Scanned { matches, cached } => {
            if cached {
                counters.yara_cached += 1;
            } else {
                counters.yara_scanned += 1;
            }
            if !matches.is_empty() {
                counters.yara_matched_files += 1;
            }
            Verdict {
                rules: matches.iter().map(|m| m.rule.clone()).collect(),
                // 'A' is the highest level and the smallest char.
                level: matches.iter().filter_map(|m| m.level).min(),
            }
        }
    }
}

/// The scanner for a data directory and configuration: the `[intel] yara_rules` files and
/// the packs' `DATA/intel/*/yara/`; `None` when neither holds a rule file, so an
/// installation without YARA pays nothing (the packs are looked at again when the
/// analyzer starts).
pub fn scanner_for(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
) -> Result<Option<Scanner>, String> {
    let limits = kuroko_yara::Limits {
        max_bytes: config
            .intel
            .yara_max_file_size_bytes()
            .map_err(|m| format!("intel.yara_max_file_size: {m}"))?,
        timeout_secs: config
            .intel
            .yara_timeout_secs()
            .map_err(|m| format!("intel.yara_timeout: {m}"))?,
    };
    let files =
        kuroko_yara::rule_files(&config.intel.yara_rules, Some(data)).map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(Scanner::new(
        config.intel.yara_rules.clone(),
        Some(data.to_path_buf()),
        limits,
    )))
}
