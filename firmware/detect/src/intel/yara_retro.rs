//! Re-checking the stored files when the YARA rules change (`kuroko yara recheck`, and by
//! itself when a rule file of `[intel] yara_rules` or of an intel pack changes).
//!
//! The analyzer scans each object once, with the rules in force when it stored it; a rule
//! that arrives on day 9 says nothing about the files of days 1–8 unless they are scanned
//! again. The detections notice a change of the rule set (a digest of the rule files'
//! names and contents, [`fingerprint`]), compile it, and queue a re-check of every session
//! already read ([`YaraRecheck`]): its files are read back from `DATA/files/` and scanned,
//! and a file that matches a rule the change brought makes a `yara_match` hit with the
//! session's own times and a signal saying it was found on a re-check of that date.
//!
//! Exactly once:
//! - The queue and its cursor ride in the engine state ([`crate::EngineState::intel`]), so
//!   they are committed with the findings they made in one atomically replaced file: a
//!   re-check killed at any point resumes from its last commit and counts nothing twice.
//! - A session whose record already carries YARA matches was counted by the live rule
//!   (`rules::yara`); the re-check leaves it alone.
//! - After a change, only the rules that were not in the previous set count
//!   ([`YaraRecheck::new_rules`]); a rule edited under the same name is not re-checked
//!   (give it a new name, or run `kuroko yara recheck`, which counts every rule for
//!   sessions not yet evidence of their finding).

use kuroko_model::SessionRecord;
use kuroko_model::sessionlog::LogPos;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `DATA/yara/recheck.json`: the hand re-checks asked for (`kuroko yara recheck`).
pub const REQUEST_FILE: &str = "yara/recheck.json";
/// Scan results remembered per re-check, by content digest (the same object carried by
/// many sessions is read and scanned once); emptied when full.
const CACHE_ENTRIES: usize = 16_384;

/// One re-check of the sessions read so far against the YARA rules.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct YaraRecheck {
    /// When the change was taken (RFC 3339), quoted in the findings it makes.
    pub date: String,
    /// `rules changed` or `requested` (by `kuroko yara recheck`).
    pub reason: String,
    /// The rules that count (those the change brought); empty: every rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_rules: Vec<String>,
    /// Next record to check.
    pub pos: LogPos,
    /// First record not to check (read live, scanned by the analyzer with the new rules).
    pub end: LogPos,
    pub sessions_checked: u64,
    pub files_scanned: u64,
    /// Stored objects the re-check could not read any more (evicted by the files budget).
    #[serde(default)]
    pub files_missing: u64,
    pub sessions_with_hits: u64,
    /// The last object of `files/objects.log` when the re-check was queued (as
    /// `crate::intel::retro::Recheck::objects_end`).
    #[serde(default)]
    pub objects_end: String,
    /// The pass over the stored objects whose session has left the log
    /// (`crate::intel::orphans`), once the log pass is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<super::orphans::ObjectsPass>,
}

/// What the findings know about the YARA rules.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct YaraProgress {
    /// [`fingerprint`] of the rule set last taken into account ("" before the first).
    #[serde(default)]
    pub fingerprint: String,
    /// The rule names of that set.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The last hand re-check request taken (`DATA/yara/recheck.json`).
    #[serde(default)]
    pub request: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<YaraRecheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_done: Option<YaraRecheck>,
}

/// A digest of the rule files' names and contents (not their times: copying the same
/// rules again is no change).
pub fn fingerprint(files: &[PathBuf]) -> Result<String, String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| format!("YARA rule file {}: {e}", f.display()))?;
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(if files.is_empty() {
        String::new()
    } else {
        hex::encode(h.finalize())
    })
}

/// A hand re-check request: its number and date.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Request {
    pub request: u64,
    pub date: String,
}

/// The last request (`request` 0 when none was ever made).
pub fn requested(data: &Path) -> Request {
    std::fs::read(data.join(REQUEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Asks the detections to re-check every stored file against every rule (written
/// atomically; the detections take it at their next batch).
pub fn request_recheck(data: &Path) -> Result<Request, String> {
    let path = data.join(REQUEST_FILE);
    let r = Request {
        request: requested(data).request + 1,
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path.parent().expect("REQUEST_FILE has a directory");
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&r).unwrap_or_default()).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(r)
}

/// The compiled set a re-check scans with, its limits and a digest cache.
pub struct RetroRules {
    pub fingerprint: String,
    rules: kuroko_yara::Rules,
    limits: kuroko_yara::Limits,
    cache: HashMap<String, Option<Vec<kuroko_yara::Match>>>,
}

/// What re-scanning one session's files found.
#[derive(Default)]
pub struct SessionScan {
    pub files_scanned: u64,
    pub files_missing: u64,
    /// The record with `files[].yara` / `yara_level` set to the counted matches; `None`
    /// when nothing counted matched.
    pub matched: Option<SessionRecord>,
}

impl RetroRules {
    pub fn new(
        fingerprint: String,
        rules: kuroko_yara::Rules,
        config: &kuroko_model::config::Config,
    ) -> RetroRules {
        let d = kuroko_yara::Limits::default();
        let limits = kuroko_yara::Limits {
            max_bytes: config
                .intel
                .yara_max_file_size_bytes()
                .unwrap_or(d.max_bytes),
            timeout_secs: config.intel.yara_timeout_secs().unwrap_or(d.timeout_secs),
        };
        RetroRules {
            fingerprint,
            rules,
            limits,
            cache: HashMap::new(),
        }
    }

    /// Scans one stored object (an orphan, `crate::intel::orphans`): the matches of
    /// `counted` rules (every rule when empty); `None` when its bytes are gone.
    pub fn scan_object(
        &mut self,
        sha256: &str,
        files_dir: &Path,
        counted: &[String],
    ) -> Option<Vec<kuroko_yara::Match>> {
        let matches = match self.cache.get(sha256) {
            Some(m) => m.clone(),
            None => {
                let bytes = super::matcher::object_path(files_dir, sha256)
                    .and_then(|p| std::fs::read(p).ok())?;
                let m = if bytes.len() as u64 > self.limits.max_bytes {
                    None
                } else {
                    self.rules.scan(&bytes, self.limits.timeout_secs).ok()
                };
                if self.cache.len() >= CACHE_ENTRIES {
                    self.cache.clear();
                }
                self.cache.insert(sha256.to_string(), m.clone());
                m
            }
        };
        Some(
            matches
                .unwrap_or_default()
                .into_iter()
                .filter(|m| counted.is_empty() || counted.binary_search(&m.rule).is_ok())
                .collect(),
        )
    }

    /// Scans the stored objects of `s` (from `files_dir`), keeping the matches of
    /// `counted` rules (every rule when empty).
    pub fn scan_session(
        &mut self,
        s: &SessionRecord,
        files_dir: &Path,
        counted: &[String],
    ) -> SessionScan {
        let mut out = SessionScan::default();
        let mut rec: Option<SessionRecord> = None;
        for (i, f) in s.files.iter().enumerate() {
            let matches = match self.cache.get(&f.sha256) {
                Some(m) => m.clone(),
                None => {
                    let m = match super::matcher::object_path(files_dir, &f.sha256)
                        .and_then(|p| std::fs::read(p).ok())
                    {
                        None => {
                            out.files_missing += 1;
                            continue;
                        }
                        Some(bytes) if bytes.len() as u64 > self.limits.max_bytes => None,
                        Some(bytes) => {
                            out.files_scanned += 1;
                            self.rules.scan(&bytes, self.limits.timeout_secs).ok()
                        }
                    };
                    if self.cache.len() >= CACHE_ENTRIES {
                        self.cache.clear();
                    }
                    self.cache.insert(f.sha256.clone(), m.clone());
                    m
                }
            };
            let kept: Vec<_> = matches
                .unwrap_or_default()
                .into_iter()
                .filter(|m| counted.is_empty() || counted.binary_search(&m.rule).is_ok())
                .collect();
            if kept.is_empty() {
                continue;
            }
            let r = rec.get_or_insert_with(|| s.clone());
            r.files[i].yara = kept.iter().map(|m| m.rule.clone()).collect();
            // 'A' is the highest level and the smallest char.
            r.files[i].yara_level = kept.iter().filter_map(|m| m.level).min().map(String::from);
        }
        out.matched = rec;
        out
    }
}
