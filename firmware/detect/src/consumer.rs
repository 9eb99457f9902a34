//! The session-log consumer: reads `DIR/sessions/` from the position stored with the
//! findings, feeds the engine, and commits findings + position together every
//! `BATCH_RECORDS` records and at the end. Between batches the reputation lists are
//! re-checked (reloaded when a file changed), so a long-running appliance picks up new
//! lists without a restart.
//!
//! Before reading, the stored position is checked against the log
//! (`sessionlog::check_cursor`): when the log does not hold it any more (started over, or
//! cut back below it), the findings are rebuilt from the log's start rather than waiting
//! for positions that will never hold new records.
//!
//! `run_pending` is the one call for `kuroko analyze`; `Detector` keeps the engine alive
//! between calls for `kuroko run`.

use crate::engine::Engine;
use crate::error::DetectError;
use crate::site_file::SiteFile;
use crate::store::{self, FORMAT, StoredState};
use kuroko_model::Timestamp;
use kuroko_model::config::Config;
use kuroko_model::finding::{Finding, Lang};
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use std::path::{Path, PathBuf};

/// Records per commit: bounds what a crash makes the consumer re-read (a few seconds of
/// work) while keeping fsyncs rare.
pub const BATCH_RECORDS: usize = 20_000;
/// Intel reload errors kept in a summary.
const MAX_REPORTED_ERRORS: usize = 8;

/// What one catch-up did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub from: LogPos,
    pub to: LogPos,
    pub sessions: u64,
    /// Log lines that were not session records (counted and skipped).
    pub bad_records: u64,
    pub commits: u64,
    /// Findings after the run, and how many of them are new.
    pub findings: usize,
    pub new_findings: usize,
    pub intel_reloads: u64,
    /// Reputation lists that could not be reloaded (the old lists stay in use).
    pub intel_errors: Vec<String>,
    /// The stored position was not in the session log any more: why (the findings were
    /// rebuilt from the log's start).
    pub restarted: Option<String>,
}

/// The engine with its log position and data directory.
pub struct Detector {
    data_dir: PathBuf,
    /// Exclusive lock on `DIR/findings/lock` for the detector's lifetime: one writer.
    _lock: std::fs::File,
    engine: Engine,
    pos: LogPos,
    /// Generation of the session log `pos` belongs to.
    log_generation: u64,
    config: Config,
    batch: usize,
}

impl Detector {
    /// Loads the stored findings (if any) and builds the engine from the config.
    pub fn open(data_dir: &Path, config: &Config) -> Result<Detector, DetectError> {
        let lock = store::lock(data_dir)?;
        let mut engine = Engine::new(config)?.with_files_dir(data_dir.join("files"));
        let mut pos = LogPos::default();
        let mut log_generation = 0;
        if let Some(state) = store::load(data_dir)? {
            pos = state.pos;
            log_generation = state.log_generation;
            engine.restore(state.engine);
        }
        Ok(Detector {
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
            engine,
            pos,
            log_generation,
            config: config.clone(),
            batch: BATCH_RECORDS,
        })
    }

    /// Commits every `n` records instead of `BATCH_RECORDS` (tests, small devices).
    pub fn with_batch(mut self, n: usize) -> Detector {
        self.batch = n.max(1);
        self
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
    pub fn position(&self) -> LogPos {
        self.pos
    }

    /// Reads the session log from the stored position to its end, committing as it goes.
    pub fn catch_up(&mut self) -> Result<Summary, DetectError> {
        self.catch_up_inner(None)
    }

    /// Like `catch_up`, but stops after `limit` records *without* committing the partial
    /// batch: what a crash at that point would leave behind. For durability tests.
    pub fn catch_up_then_crash(&mut self, limit: usize) -> Result<Summary, DetectError> {
        self.catch_up_inner(Some(limit))
    }

    /// Re-validates the stored position against the session log; when the log does not
    /// hold it any more, starts the findings over from the log's start. Returns why.
    fn revalidate_cursor(&mut self) -> Result<Option<String>, DetectError> {
        use kuroko_model::sessionlog::{CursorCheck, check_cursor};
        let log_dir = self.data_dir.join("sessions");
        let check = check_cursor(&log_dir, self.pos, self.log_generation).map_err(|source| {
            DetectError::SessionLog {
                path: log_dir.clone(),
                source,
            }
        })?;
        let CursorCheck::Rebuild { generation, reason } = check else {
            return Ok(None);
        };
        self.engine = Engine::new(&self.config)?.with_files_dir(self.data_dir.join("files"));
        self.pos = LogPos::default();
        self.log_generation = generation;
        Ok(Some(reason))
    }

    fn catch_up_inner(&mut self, crash_after: Option<usize>) -> Result<Summary, DetectError> {
        let before: std::collections::BTreeSet<String> =
            self.engine.aggregates().map(|a| a.id()).collect();
        let restarted = self.revalidate_cursor()?;
        if let Some(reason) = &restarted {
            eprintln!("kuroko detect: {reason}; rebuilding the findings from the log's start");
        }
        let mut summary = Summary {
            from: self.pos,
            to: self.pos,
            restarted,
            ..Summary::default()
        };
        self.refresh(&mut summary);
        let log_dir = self.data_dir.join("sessions");
        let log_err = |source| DetectError::SessionLog {
            path: log_dir.clone(),
            source,
        };
        let reader = SessionLogReader::open(&log_dir).map_err(log_err)?;
        let mut in_batch = 0usize;
        for (seen, item) in reader.read_from(self.pos).map_err(log_err)?.enumerate() {
            if crash_after.is_some_and(|n| seen >= n) {
                return Ok(summary);
            }
            match item {
                Ok((pos, record)) => {
                    self.engine.observe(&record);
                    self.pos = pos;
                    summary.sessions += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => summary.bad_records += 1,
                Err(e) => return Err(log_err(e)),
            }
            in_batch += 1;
            if in_batch >= self.batch {
                self.commit()?;
                summary.commits += 1;
                in_batch = 0;
                self.refresh(&mut summary);
            }
        }
        if in_batch > 0 || summary.restarted.is_some() || store::load(&self.data_dir)?.is_none() {
            self.commit()?;
            summary.commits += 1;
        }
        summary.to = self.pos;
        summary.findings = self.engine.aggregates().count();
        summary.new_findings = self
            .engine
            .aggregates()
            .filter(|a| !before.contains(&a.id()))
            .count();
        Ok(summary)
    }

    fn refresh(&mut self, summary: &mut Summary) {
        match self.engine.refresh_intel() {
            Ok(true) => summary.intel_reloads += 1,
            Ok(false) => {}
            Err(e) => {
                if summary.intel_errors.len() < MAX_REPORTED_ERRORS {
                    summary.intel_errors.push(e.to_string());
                }
            }
        }
    }

    fn commit(&self) -> Result<(), DetectError> {
        store::commit(
            &self.data_dir,
            &StoredState {
                format: FORMAT,
                pos: self.pos,
                committed_at: Timestamp::now(),
                engine: self.engine.state(),
                log_generation: self.log_generation,
            },
        )
    }
}

/// Reads the session log of `data_dir` from the position stored with the findings to the
/// end, updates the findings and commits them with the new position. Exactly-once across
/// crashes and restarts. This is what `kuroko analyze` calls after the analyzer.
pub fn run_pending(data_dir: &Path, config: &Config) -> Result<Summary, DetectError> {
    Detector::open(data_dir, config)?.catch_up()
}

/// The stored findings of `data_dir`, rendered in `lang` with the config's overrides and
/// those of `DIR/site.toml` applied (see [`crate::overrides`]), highest risk first. Every
/// reader of a finding's grade goes through here. Does not read intel files, so it works
/// even when a list named in the config is missing. Empty when nothing was analyzed yet.
/// A site file that does not parse, or whose overrides / notes name no rule or finding,
/// is an error naming the file, line and key.
pub fn load_findings(
    data_dir: &Path,
    config: &Config,
    lang: Lang,
) -> Result<Vec<Finding>, DetectError> {
    let site = SiteFile::load_if_present(data_dir)?;
    load_findings_with(data_dir, config, site.as_ref(), lang)
}

/// [`load_findings`] with the site file the caller read (`None`: the configuration's
/// overrides only), e.g. to still show findings while `site.toml` does not parse.
pub fn load_findings_with(
    data_dir: &Path,
    config: &Config,
    site: Option<&SiteFile>,
    lang: Lang,
) -> Result<Vec<Finding>, DetectError> {
    let Some(state) = store::load(data_dir)? else {
        return Ok(Vec::new());
    };
    let mut findings = crate::render::findings(
        state.engine.aggregates.iter(),
        &config.detect.overrides,
        lang,
    );
    crate::overrides::apply_all(&mut findings, &config.detect.overrides, site, lang)?;
    Ok(findings)
}

/// The stored aggregates (with the evidence sessions' 5-tuples, time ranges and segment
/// spans), for evidence export.
pub fn load_aggregates(data_dir: &Path) -> Result<Vec<crate::aggregate::Aggregate>, DetectError> {
    Ok(store::load(data_dir)?
        .map(|s| s.engine.aggregates)
        .unwrap_or_default())
}

/// The stored asset inventory of `data_dir` (empty when nothing was analyzed yet); show it
/// with [`crate::assets::view::view`].
pub fn load_assets(data_dir: &Path) -> Result<crate::assets::Inventory, DetectError> {
    Ok(store::load(data_dir)?
        .map(|s| s.engine.assets)
        .unwrap_or_default())
}
