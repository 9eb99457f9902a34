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
use kuroko_model::config::Config;
use kuroko_model::finding::{Finding, Lang};
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use kuroko_model::{SessionRecord, Timestamp};
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
    /// Sessions of the past re-checked against new intel in this run, and how many of
    /// them matched (`crate::intel::retro`).
    pub retro_sessions: u64,
    pub retro_hits: u64,
    /// Sessions whose stored files a YARA re-check scanned again in this run, and how many
    /// of them matched a new rule (`crate::intel::yara_retro`).
    pub yara_retro_sessions: u64,
    pub yara_retro_hits: u64,
    /// Stored objects a re-check (intel or YARA) looked at in its pass over
    /// `files/objects.log`, those no session of the log carries any more, and those of
    /// them that matched (`crate::intel::orphans`).
    pub retro_objects: u64,
    pub retro_orphans: u64,
    pub retro_orphan_hits: u64,
    /// Re-checks (intel and YARA) still queued after this run (the appliance goes on at
    /// idle).
    pub retro_pending: usize,
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
    /// Records a re-check of the past may read per `catch_up` (`None`: to the end).
    retro_budget: Option<usize>,
    /// The matcher of the re-check at the head of the queue, by its generation.
    retro_matcher: Option<(u64, std::sync::Arc<crate::intel::matcher::Matcher>)>,
    /// The YARA rule set re-checks of stored files scan with (the newest that compiled).
    yara_rules: Option<crate::intel::yara_retro::RetroRules>,
    /// The fingerprint of a rule set that did not compile (not compiled again until it
    /// changes; the analyzer says so in `status`).
    yara_failed: Option<String>,
    /// The digests of the objects the session log's records carry, while a re-check's
    /// pass over the stored objects runs (`crate::intel::orphans::carried_digests`; built
    /// again after a restart).
    carried: Option<(String, std::collections::HashSet<u64>)>,
}

impl Detector {
    /// Loads the stored findings (if any) and builds the engine from the config.
    pub fn open(data_dir: &Path, config: &Config) -> Result<Detector, DetectError> {
        let lock = store::lock(data_dir)?;
        let mut engine = Engine::new(config)?.with_files_dir(data_dir.join("files"));
        let mut pos = LogPos::default();
        let mut log_generation = 0;
        let mut migrated = false;
        if let Some(mut state) = store::load(data_dir)? {
            pos = state.pos;
            log_generation = state.log_generation;
            // Findings of older firmware: their volume counted once, from the session log.
            let m = crate::aggregate::fill_missing_volumes(
                &mut state.engine.aggregates,
                &data_dir.join("sessions"),
            );
            if m != Default::default() {
                eprintln!(
                    "kuroko detect: findings stored by older firmware had no volume: counted from the session log for {}, unknown for {} (sessions no longer in the log or beyond the evidence kept)",
                    m.counted, m.unknown
                );
                migrated = true;
            }
            engine.restore(state.engine);
        }
        if let Err(e) = engine.load_intel_packs(data_dir) {
            eprintln!("kuroko detect: intel packs not loaded: {e}");
        }
        let d = Detector {
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
            engine,
            pos,
            log_generation,
            config: config.clone(),
            batch: BATCH_RECORDS,
            retro_budget: None,
            retro_matcher: None,
            yara_rules: None,
            yara_failed: None,
            carried: None,
        };
        if migrated {
            d.commit()?;
        }
        Ok(d)
    }

    /// Commits every `n` records instead of `BATCH_RECORDS` (tests, small devices).
    pub fn with_batch(mut self, n: usize) -> Detector {
        self.batch = n.max(1);
        self
    }

    /// Re-checks of the past read at most `n` records per `catch_up` (the running
    /// appliance: live records first, the past at idle).
    pub fn with_retro_budget(mut self, n: usize) -> Detector {
        self.retro_budget = Some(n.max(1));
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
        if let Err(e) = self.engine.load_intel_packs(&self.data_dir) {
            eprintln!("kuroko detect: intel packs not loaded: {e}");
        }
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
        self.retro(&mut summary, crash_after)?;
        let p = self.engine.intel_progress();
        summary.retro_pending = p.queue.len() + p.yara.queue.len();
        summary.to = self.pos;
        summary.findings = self.engine.aggregates().count();
        summary.new_findings = self
            .engine
            .aggregates()
            .filter(|a| !before.contains(&a.id()))
            .count();
        Ok(summary)
    }

    /// Takes new intel updates (`DATA/intel/state.json`) into account: reloads the live
    /// matcher and queues a re-check of everything read so far against the packs the
    /// update brought (all packs for `kuroko intel recheck`).
    fn refresh_packs(&mut self, summary: &mut Summary) {
        let st = match crate::intel::packs::state(&self.data_dir) {
            Ok(st) => st,
            Err(e) => {
                if summary.intel_errors.len() < MAX_REPORTED_ERRORS {
                    summary.intel_errors.push(e);
                }
                return;
            }
        };
        let seen = self.engine.intel_progress().seen_generation;
        if st.generation <= seen {
            return;
        }
        if let Err(e) = self.engine.load_intel_packs(&self.data_dir) {
            if summary.intel_errors.len() < MAX_REPORTED_ERRORS {
                summary.intel_errors.push(e);
            }
            return;
        }
        summary.intel_reloads += 1;
        let end = self.pos;
        // Stored objects whose session has left the log are re-checked too, even when no
        // session has been read yet (findings rebuilt after the log started over).
        let objects_end = crate::intel::orphans::objects_end(&self.data_dir.join("files"));
        let p = self.engine.intel_progress_mut();
        for u in st.updates.iter().filter(|u| u.generation > seen) {
            if u.what == "remove" || (end == LogPos::default() && objects_end.is_empty()) {
                continue;
            }
            p.queue.push(crate::intel::retro::Recheck {
                generation: u.generation,
                date: u.date.clone(),
                packs: u.packs.clone(),
                pos: LogPos::default(),
                end,
                sessions_checked: 0,
                sessions_with_hits: 0,
                objects_end: objects_end.clone(),
                objects: None,
            });
        }
        p.seen_generation = st.generation;
    }

    /// Works through the queued re-checks (at most `retro_budget` records), committing
    /// the findings with the re-check's cursor every batch: exactly-once across crashes.
    /// `crash_after` stops without committing the partial batch (durability tests).
    fn retro(
        &mut self,
        summary: &mut Summary,
        crash_after: Option<usize>,
    ) -> Result<(), DetectError> {
        let mut budget = self.retro_budget.unwrap_or(usize::MAX);
        let mut read = 0usize;
        if self.retro_intel(summary, crash_after, &mut budget, &mut read)? {
            self.retro_yara(summary, crash_after, &mut budget, &mut read)?;
        }
        Ok(())
    }

    /// The intel re-checks; `Ok(false)` when `crash_after` stopped them.
    fn retro_intel(
        &mut self,
        summary: &mut Summary,
        crash_after: Option<usize>,
        budget: &mut usize,
        read: &mut usize,
    ) -> Result<bool, DetectError> {
        let log_dir = self.data_dir.join("sessions");
        let log_err = |source| DetectError::SessionLog {
            path: log_dir.clone(),
            source,
        };
        while let Some(r) = self.engine.intel_progress().queue.first().cloned() {
            if *budget == 0 {
                return Ok(true);
            }
            if self.retro_matcher.as_ref().map(|(g, _)| *g) != Some(r.generation) {
                let packs: Vec<_> = crate::intel::packs::list(&self.data_dir)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| r.packs.contains(&p.name))
                    .collect();
                let m =
                    crate::intel::matcher::Matcher::load_packs_shared(&packs).unwrap_or_else(|e| {
                        if summary.intel_errors.len() < MAX_REPORTED_ERRORS {
                            summary.intel_errors.push(e);
                        }
                        Default::default()
                    });
                self.retro_matcher = Some((r.generation, m));
            }
            if let Some(pass) = r.objects.clone() {
                if !self.intel_orphans(&r, pass, summary, crash_after, budget, read)? {
                    return Ok(false);
                }
                continue;
            }
            let mut cur = r.pos;
            let (mut checked, mut with_hits) = (0u64, 0u64);
            let mut finished = true;
            let reader = SessionLogReader::open(&log_dir).map_err(log_err)?;
            let files_dir = self.data_dir.join("files");
            let m = &self.retro_matcher.as_ref().expect("set above").1;
            let mut found: Vec<(
                kuroko_model::SessionRecord,
                Vec<kuroko_model::session::IntelHit>,
            )> = Vec::new();
            for (in_batch, item) in reader.read_from(cur).map_err(log_err)?.enumerate() {
                if cur >= r.end {
                    break;
                }
                if crash_after.is_some_and(|n| *read >= n) {
                    return Ok(false);
                }
                if *budget == 0 || in_batch >= self.batch {
                    finished = false;
                    break;
                }
                *read += 1;
                *budget -= 1;
                match item {
                    Ok((pos, record)) => {
                        cur = pos;
                        if record.open {
                            continue;
                        }
                        checked += 1;
                        let mut hits = m.match_session(&record);
                        hits.extend(m.match_file_digests(&record, &files_dir));
                        if !hits.is_empty() {
                            with_hits += 1;
                            found.push((record, hits));
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {}
                    Err(e) => return Err(log_err(e)),
                }
            }
            for (record, hits) in &found {
                if !self.already_counted(record) {
                    self.engine.observe_retro(record, hits, &r.date);
                }
            }
            summary.retro_sessions += checked;
            summary.retro_hits += with_hits;
            let p = self.engine.intel_progress_mut();
            let head = &mut p.queue[0];
            head.pos = cur;
            head.sessions_checked += checked;
            head.sessions_with_hits += with_hits;
            if finished {
                // On to the stored objects whose session has left the log.
                head.objects = Some(Default::default());
            }
            self.commit()?;
            summary.commits += 1;
        }
        Ok(true)
    }

    /// Takes a change of the YARA rule set (or a `kuroko yara recheck` request) into
    /// account: compiles the new set and queues a re-check of the stored files of every
    /// session read so far (`crate::intel::yara_retro`).
    fn refresh_yara(&mut self, summary: &mut Summary) {
        use crate::intel::yara_retro::{self, RetroRules, YaraRecheck};
        let report = |summary: &mut Summary, e: String| {
            if summary.intel_errors.len() < MAX_REPORTED_ERRORS {
                summary.intel_errors.push(e);
            }
        };
        let files =
            match kuroko_yara::rule_files(&self.config.intel.yara_rules, Some(&self.data_dir)) {
                Ok(f) => f,
                Err(e) => return report(summary, format!("YARA rules: {e}")),
            };
        let fp = match yara_retro::fingerprint(&files) {
            Ok(fp) => fp,
            Err(e) => return report(summary, e),
        };
        let req = yara_retro::requested(&self.data_dir);
        let p = &self.engine.intel_progress().yara;
        let asked = req.request > p.request;
        if fp == p.fingerprint && !asked {
            if self.yara_rules.is_none() && !fp.is_empty() && !p.queue.is_empty() {
                // A re-check resumed after a restart: compile the set again.
                match kuroko_yara::compile(&files) {
                    Ok(r) => self.yara_rules = Some(RetroRules::new(fp, r, &self.config)),
                    Err(e) => report(summary, format!("YARA rules: {e}")),
                }
            }
            return;
        }
        if self.yara_failed.as_deref() == Some(fp.as_str()) && !asked {
            return;
        }
        let rules = if files.is_empty() {
            None
        } else {
            match kuroko_yara::compile(&files) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.yara_failed = Some(fp);
                    return report(summary, format!("YARA rules: {e}"));
                }
            }
        };
        self.yara_failed = None;
        let names = rules.as_ref().map(|r| r.names()).unwrap_or_default();
        // Everything the analyzer has published so far may have been scanned with the old
        // set: the re-check goes to the log's end now, not just to what was read.
        let log_end = SessionLogReader::open(&self.data_dir.join("sessions"))
            .and_then(|r| r.end())
            .unwrap_or_default();
        let end = self.pos.max(log_end);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let objects_end = crate::intel::orphans::objects_end(&self.data_dir.join("files"));
        let nothing_read = self.pos == LogPos::default();
        let p = &mut self.engine.intel_progress_mut().yara;
        // Nothing read yet (a first run, or findings rebuilt): the sessions will be read
        // live; the analyzer scanned them with the set it had, taken to be this one. The
        // stored objects no session of the log carries any more are re-checked still
        // (`crate::intel::orphans`): the re-check starts at the log's end.
        if (!nothing_read || !objects_end.is_empty()) && rules.is_some() {
            let new_rules: Vec<String> = names
                .iter()
                .filter(|n| p.rules.binary_search(n).is_err())
                .cloned()
                .collect();
            let entry = |date: String, reason: &str, new_rules: Vec<String>| YaraRecheck {
                date,
                reason: reason.into(),
                new_rules,
                pos: if nothing_read { end } else { LogPos::default() },
                end,
                objects_end: objects_end.clone(),
                ..Default::default()
            };
            if asked {
                p.queue
                    .push(entry(req.date.clone(), "requested", Vec::new()));
            } else if !new_rules.is_empty() {
                p.queue.push(entry(now, "rules changed", new_rules));
            }
        }
        p.fingerprint = fp.clone();
        p.rules = names;
        p.request = p.request.max(req.request);
        summary.intel_reloads += 1;
        self.yara_rules = rules.map(|r| RetroRules::new(fp, r, &self.config));
    }

    /// Works through the queued YARA re-checks like [`Self::retro_intel`]: the stored files
    /// of each session are scanned again, matches of the rules the change brought become
    /// `yara_match` hits, and the cursor is committed with them every batch.
    fn retro_yara(
        &mut self,
        summary: &mut Summary,
        crash_after: Option<usize>,
        budget: &mut usize,
        read: &mut usize,
    ) -> Result<(), DetectError> {
        let log_dir = self.data_dir.join("sessions");
        let log_err = |source| DetectError::SessionLog {
            path: log_dir.clone(),
            source,
        };
        let files_dir = self.data_dir.join("files");
        while let Some(r) = self.engine.intel_progress().yara.queue.first().cloned() {
            if *budget == 0 {
                return Ok(());
            }
            if let Some(pass) = r.objects.clone() {
                if !self.yara_orphans(&r, pass, summary, crash_after, budget, read)? {
                    return Ok(());
                }
                continue;
            }
            let mut cur = r.pos;
            let (mut checked, mut scanned, mut missing, mut with_hits) = (0u64, 0, 0, 0);
            let mut finished = true;
            let mut found: Vec<SessionRecord> = Vec::new();
            let reader = SessionLogReader::open(&log_dir).map_err(log_err)?;
            for (in_batch, item) in reader.read_from(cur).map_err(log_err)?.enumerate() {
                if cur >= r.end {
                    break;
                }
                if crash_after.is_some_and(|n| *read >= n) {
                    return Ok(());
                }
                if *budget == 0 || in_batch >= self.batch {
                    finished = false;
                    break;
                }
                *read += 1;
                *budget -= 1;
                match item {
                    Ok((pos, record)) => {
                        cur = pos;
                        if record.open || record.files.is_empty() {
                            continue;
                        }
                        checked += 1;
                        // Counted by the live rule already.
                        if record.files.iter().any(|f| !f.yara.is_empty()) {
                            continue;
                        }
                        let Some(rules) = self.yara_rules.as_mut() else {
                            continue;
                        };
                        let scan = rules.scan_session(&record, &files_dir, &r.new_rules);
                        scanned += scan.files_scanned;
                        missing += scan.files_missing;
                        if let Some(m) = scan.matched {
                            with_hits += 1;
                            found.push(m);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {}
                    Err(e) => return Err(log_err(e)),
                }
            }
            for record in &found {
                if !self.already_counted_by(crate::catalog::RuleId::YaraMatch, record) {
                    self.engine.observe_retro_yara(record, &r.date);
                }
            }
            summary.yara_retro_sessions += checked;
            summary.yara_retro_hits += with_hits;
            let p = &mut self.engine.intel_progress_mut().yara;
            let head = &mut p.queue[0];
            head.pos = cur;
            head.sessions_checked += checked;
            head.files_scanned += scanned;
            head.files_missing += missing;
            head.sessions_with_hits += with_hits;
            if finished {
                // On to the stored objects whose session has left the log.
                head.objects = Some(Default::default());
            }
            self.commit()?;
            summary.commits += 1;
        }
        Ok(())
    }

    /// The digests the session log's records carry, for the pass `key` (read from the log
    /// once per pass: `crate::intel::orphans::carried`).
    fn carried(&mut self, key: &str) -> Result<(), DetectError> {
        if self.carried.as_ref().is_none_or(|(k, _)| k != key) {
            let set = crate::intel::orphans::carried(&self.data_dir, key).map_err(|source| {
                DetectError::SessionLog {
                    path: self.data_dir.join("sessions"),
                    source,
                }
            })?;
            self.carried = Some((key.to_string(), set));
        }
        Ok(())
    }

    /// A pass over the objects is done: its carried set goes.
    fn forget_carried(&mut self) {
        self.carried = None;
        crate::intel::orphans::forget_carried(&self.data_dir);
    }

    /// The next objects of a re-check's pass over `files/objects.log` (at most one batch
    /// and the budget) that no session of the log carries, and whether the pass is done
    /// with them; `None` when `crash_after` stopped the pass (nothing committed).
    #[allow(clippy::type_complexity)]
    fn orphan_slice(
        &mut self,
        pass: &mut crate::intel::orphans::ObjectsPass,
        key: &str,
        end: &str,
        crash_after: Option<usize>,
        budget: &mut usize,
        read: &mut usize,
    ) -> Result<Option<(Vec<kuroko_model::objects::ObjectMeta>, bool)>, DetectError> {
        use crate::intel::orphans;
        let files_dir = self.data_dir.join("files");
        let slice = orphans::next_slice(&files_dir, &pass.after, end, (*budget).min(self.batch));
        let mut out = Vec::new();
        if !slice.objects.is_empty() {
            self.carried(key)?;
        }
        let carried = self.carried.as_ref().map(|(_, c)| c);
        for m in slice.objects {
            if crash_after.is_some_and(|n| *read >= n) {
                return Ok(None);
            }
            *read += 1;
            *budget = budget.saturating_sub(1);
            pass.after = m.sha256.clone();
            pass.objects_checked += 1;
            if carried.is_some_and(|c| c.contains(&orphans::digest_key(&m.sha256))) {
                continue;
            }
            pass.orphans += 1;
            out.push(m);
        }
        Ok(Some((out, slice.finished)))
    }

    /// One slice of an intel re-check's pass over the stored objects whose session has
    /// left the log (`crate::intel::orphans`); `Ok(false)` when `crash_after` stopped it.
    fn intel_orphans(
        &mut self,
        r: &crate::intel::retro::Recheck,
        mut pass: crate::intel::orphans::ObjectsPass,
        summary: &mut Summary,
        crash_after: Option<usize>,
        budget: &mut usize,
        read: &mut usize,
    ) -> Result<bool, DetectError> {
        use crate::intel::orphans;
        use crate::intel::retro::CountedRule;
        let before = (pass.objects_checked, pass.orphans);
        let key = format!("intel {} {}", r.generation, r.objects_end);
        let Some((objects, finished)) =
            self.orphan_slice(&mut pass, &key, &r.objects_end, crash_after, budget, read)?
        else {
            return Ok(false);
        };
        let files_dir = self.data_dir.join("files");
        let mut found = Vec::new();
        if let Some((_, m)) = &self.retro_matcher {
            for o in &objects {
                let hits = m.match_object(&o.sha256, &files_dir);
                if !hits.is_empty() {
                    found.push((orphans::orphan_record(&files_dir, o), hits));
                }
            }
        }
        pass.orphans_with_hits += found.len() as u64;
        summary.retro_orphan_hits += found.len() as u64;
        for (rec, hits) in &found {
            let counted = self
                .engine
                .intel_progress()
                .counted
                .contains(CountedRule::Intel, &rec.id);
            if !counted {
                self.engine.observe_retro_orphan(
                    crate::catalog::RuleId::IntelMatch,
                    rec,
                    hits,
                    &r.date,
                );
            }
        }
        summary.retro_objects += pass.objects_checked - before.0;
        summary.retro_orphans += pass.orphans - before.1;
        let p = self.engine.intel_progress_mut();
        if finished {
            let mut done = p.queue.remove(0);
            done.objects = Some(pass);
            p.last_done = Some(done);
            self.retro_matcher = None;
            self.forget_carried();
        } else {
            p.queue[0].objects = Some(pass);
        }
        self.commit()?;
        summary.commits += 1;
        Ok(true)
    }

    /// One slice of a YARA re-check's pass over the stored objects whose session has left
    /// the log; `Ok(false)` when `crash_after` stopped it.
    fn yara_orphans(
        &mut self,
        r: &crate::intel::yara_retro::YaraRecheck,
        mut pass: crate::intel::orphans::ObjectsPass,
        summary: &mut Summary,
        crash_after: Option<usize>,
        budget: &mut usize,
        read: &mut usize,
    ) -> Result<bool, DetectError> {
        use crate::intel::orphans;
        use crate::intel::retro::CountedRule;
        let before = (pass.objects_checked, pass.orphans);
        let key = format!("yara {} {} {}", r.date, r.reason, r.objects_end);
        let Some((objects, finished)) =
            self.orphan_slice(&mut pass, &key, &r.objects_end, crash_after, budget, read)?
        else {
            return Ok(false);
        };
        let files_dir = self.data_dir.join("files");
        let mut found = Vec::new();
        if let Some(rules) = self.yara_rules.as_mut() {
            for o in &objects {
                // Matched when it was stored: counted by the live rule then.
                if !o.yara.is_empty() {
                    continue;
                }
                let Some(kept) = rules.scan_object(&o.sha256, &files_dir, &r.new_rules) else {
                    continue;
                };
                if kept.is_empty() {
                    continue;
                }
                let mut rec = orphans::orphan_record(&files_dir, o);
                rec.files[0].yara = kept.iter().map(|m| m.rule.clone()).collect();
                rec.files[0].yara_level =
                    kept.iter().filter_map(|m| m.level).min().map(String::from);
                found.push(rec);
            }
        }
        pass.orphans_with_hits += found.len() as u64;
        summary.retro_orphan_hits += found.len() as u64;
        for rec in &found {
            let counted = self
                .engine
                .intel_progress()
                .counted
                .contains(CountedRule::Yara, &rec.id);
            if !counted {
                self.engine.observe_retro_orphan(
                    crate::catalog::RuleId::YaraMatch,
                    rec,
                    &[],
                    &r.date,
                );
            }
        }
        summary.retro_objects += pass.objects_checked - before.0;
        summary.retro_orphans += pass.orphans - before.1;
        let p = &mut self.engine.intel_progress_mut().yara;
        if finished {
            let mut done = p.queue.remove(0);
            done.objects = Some(pass);
            p.last_done = Some(done);
            self.forget_carried();
        } else {
            p.queue[0].objects = Some(pass);
        }
        self.commit()?;
        summary.commits += 1;
        Ok(true)
    }

    /// Whether the session is already evidence of its `intel_match` finding (a re-check
    /// of all packs must not count what the live matcher counted).
    fn already_counted(&self, s: &kuroko_model::SessionRecord) -> bool {
        self.already_counted_by(crate::catalog::RuleId::IntelMatch, s)
    }

    /// Whether the session was already counted in its finding of `rule` (live or by an
    /// earlier re-check: `intel::retro::Counted`, then the finding's evidence for sessions
    /// counted before it existed or beyond its size).
    fn already_counted_by(&self, rule: crate::catalog::RuleId, s: &SessionRecord) -> bool {
        use crate::intel::retro::CountedRule;
        let set = match rule {
            crate::catalog::RuleId::YaraMatch => CountedRule::Yara,
            _ => CountedRule::Intel,
        };
        if self.engine.intel_progress().counted.contains(set, &s.id) {
            return true;
        }
        self.engine.aggregates().any(|a| {
            a.rule == rule.as_str()
                && a.client == Some(s.client.ip)
                && a.server == Some(s.server.ip)
                && a.evidence.iter().any(|e| e.session == s.id)
        })
    }

    fn refresh(&mut self, summary: &mut Summary) {
        self.refresh_packs(summary);
        self.refresh_yara(summary);
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

/// Records of the past a re-check reads per catch-up of the running appliance
/// ([`run_pending_slice`]): about one commit's worth, a few seconds at most, so the live
/// records that arrived meanwhile are read before the next slice.
pub const FOLLOW_RETRO_SLICE: usize = BATCH_RECORDS;

/// [`run_pending`] for the running appliance (`kuroko run`, `analyze --follow`): the live
/// records first, to the end of the log, then at most [`FOLLOW_RETRO_SLICE`] records of a
/// re-check of the past (intel or YARA). A re-check of a big store thus goes on in slices
/// across catch-ups and never holds back the live findings; `Summary::retro_pending` says
/// whether more is left (the caller comes back without waiting for new records).
pub fn run_pending_slice(data_dir: &Path, config: &Config) -> Result<Summary, DetectError> {
    Detector::open(data_dir, config)?
        .with_retro_budget(FOLLOW_RETRO_SLICE)
        .catch_up()
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
    let Some(mut aggregates) = store::load_aggregates(data_dir)? else {
        return Ok(Vec::new());
    };
    // Stored by older firmware and not analyzed since: the volume counted when read.
    crate::aggregate::fill_missing_volumes(&mut aggregates, &data_dir.join("sessions"));
    let mut findings = crate::render::findings(aggregates.iter(), &config.detect.overrides, lang);
    crate::overrides::apply_all(&mut findings, &config.detect.overrides, site, lang)?;
    Ok(findings)
}

/// The stored aggregates (with the evidence sessions' 5-tuples, time ranges and segment
/// spans), for evidence export.
pub fn load_aggregates(data_dir: &Path) -> Result<Vec<crate::aggregate::Aggregate>, DetectError> {
    Ok(store::load_aggregates(data_dir)?.unwrap_or_default())
}

/// The stored asset inventory of `data_dir` (empty when nothing was analyzed yet); show it
/// with [`crate::assets::view::view`].
pub fn load_assets(data_dir: &Path) -> Result<crate::assets::Inventory, DetectError> {
    Ok(store::load(data_dir)?
        .map(|s| s.engine.assets)
        .unwrap_or_default())
}
