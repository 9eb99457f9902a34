//! The analyzer's YARA scanner: the compiled set, its limits, a cache by content digest
//! (the same file carried again is not scanned again), and the recompilation when the
//! rule files change.
//!
//! The set's state is written to `DATA/yara/state.json` ([`State`]) whenever it is
//! compiled, so `kuroko status` can say which files are in force and whether the last
//! change failed (then the last good set stays in force, and the error names the file and
//! line).

use crate::sources::{fingerprint, rule_files};
use crate::{Match, Rules, ScanError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the rule files are looked at for changes (wall clock; a stat per file).
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);
/// Digests whose result is remembered; the cache is emptied when full (results are cheap
/// to recompute, memory is not unbounded).
pub const CACHE_ENTRIES: usize = 16_384;
/// State file under the data directory.
pub const STATE_FILE: &str = "yara/state.json";

/// Per-file limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files larger than this are not scanned (counted).
    pub max_bytes: u64,
    /// A scan stops after this many seconds (counted); libyara's granularity is a second.
    pub timeout_secs: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 32 << 20,
            timeout_secs: 5,
        }
    }
}

/// What `status` shows about the rule set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Rule files of the set in force.
    pub files: Vec<PathBuf>,
    /// Wall-clock time the set in force was compiled (RFC 3339 UTC), if any.
    pub compiled_at: Option<String>,
    /// Compilations so far in this process (each change of the rule files is one).
    pub generation: u64,
    /// The last compilation's errors (`file:line: message`); the set in force is then
    /// the last good one (or none).
    pub error: Option<String>,
}

/// Result of scanning one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No rule set in force (none configured, or none ever compiled).
    NoRules,
    /// Larger than [`Limits::max_bytes`]; not scanned.
    TooLarge,
    /// Stopped at [`Limits::timeout_secs`].
    Timeout,
    /// libyara failed (error code).
    Failed(i32),
    /// Scanned (possibly from the cache): the rules that matched.
    Scanned { matches: Arc<[Match]>, cached: bool },
}

/// See the module docs.
#[derive(Debug)]
pub struct Scanner {
    configured: Vec<PathBuf>,
    data: Option<PathBuf>,
    limits: Limits,
    rules: Option<Arc<Rules>>,
    fingerprint: String,
    last_check: Instant,
    state: State,
    cache: HashMap<String, Arc<[Match]>>,
}

impl Scanner {
    /// Compiles the configured files and the packs of `data` now. A set that fails to
    /// compile leaves the scanner without rules and the error in [`Scanner::state`].
    pub fn new(configured: Vec<PathBuf>, data: Option<PathBuf>, limits: Limits) -> Scanner {
        let mut s = Scanner {
            configured,
            data,
            limits,
            rules: None,
            fingerprint: String::new(),
            last_check: Instant::now(),
            state: State::default(),
            cache: HashMap::new(),
        };
        s.reload();
        s
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether a rule set is in force.
    pub fn has_rules(&self) -> bool {
        self.rules.is_some()
    }

    /// Recompiles if the rule files changed since the last look (at most every
    /// [`RELOAD_CHECK`]). Returns whether a new set came into force.
    pub fn refresh(&mut self) -> bool {
        if self.last_check.elapsed() < RELOAD_CHECK {
            return false;
        }
        self.reload()
    }

    /// Looks at the rule files now and recompiles when they changed.
    pub fn reload(&mut self) -> bool {
        self.last_check = Instant::now();
        let files = match rule_files(&self.configured, self.data.as_deref()) {
            Ok(f) => f,
            Err(e) => {
                let msg = e.to_string();
                if self.state.error.as_deref() != Some(&msg) {
                    self.state.error = Some(msg);
                    self.fingerprint.clear();
                    self.write_state();
                }
                return false;
            }
        };
        let fp = fingerprint(&files);
        if fp == self.fingerprint {
            return false;
        }
        self.fingerprint = fp;
        self.state.generation += 1;
        if files.is_empty() {
            let changed = self.rules.is_some() || self.state.error.is_some();
            self.rules = None;
            self.cache.clear();
            self.state.files.clear();
            self.state.error = None;
            self.state.compiled_at = None;
            if changed {
                self.write_state();
            }
            return changed;
        }
        let result = crate::compile(&files);
        let took = match result {
            Ok(rules) => {
                self.rules = Some(Arc::new(rules));
                self.cache.clear();
                self.state.files = files;
                self.state.error = None;
                self.state.compiled_at = Some(now_rfc3339());
                true
            }
            Err(e) => {
                self.state.error = Some(e.to_string());
                false
            }
        };
        self.write_state();
        took
    }

    /// Scans one object whose SHA-256 (hex) is `sha256`.
    pub fn scan(&mut self, sha256: &str, bytes: &[u8]) -> Outcome {
        let Some(rules) = self.rules.clone() else {
            return Outcome::NoRules;
        };
        if let Some(m) = self.cache.get(sha256) {
            return Outcome::Scanned {
                matches: m.clone(),
                cached: true,
            };
        }
        if bytes.len() as u64 > self.limits.max_bytes {
            return Outcome::TooLarge;
        }
        match rules.scan(bytes, self.limits.timeout_secs) {
            Ok(m) => {
                let m: Arc<[Match]> = m.into();
                if self.cache.len() >= CACHE_ENTRIES {
                    self.cache.clear();
                }
                self.cache.insert(sha256.to_string(), m.clone());
                Outcome::Scanned {
                    matches: m,
                    cached: false,
                }
            }
            Err(ScanError::Timeout) => Outcome::Timeout,
            Err(ScanError::Failed(rc)) => Outcome::Failed(rc),
        }
    }

    fn write_state(&self) {
        let Some(data) = &self.data else {
            return;
        };
        let path = data.join(STATE_FILE);
        // Best effort: status is informative; a read-only data directory has no state.
        let _ = write_atomic(
            &path,
            &serde_json::to_vec_pretty(&self.state).unwrap_or_default(),
        );
    }
}

/// Reads `DATA/yara/state.json` (for `status`).
pub fn read_state(data: &Path) -> Option<State> {
    let text = std::fs::read(data.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's days → (year, month, day) (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
