//! Following the session log into the content index, exactly once.
//!
//! The same mechanism as the session index (`crate::ingest`): the log position consumed,
//! the log generation and the counters are the payload of the tantivy commit that holds
//! the documents, so a crash re-extracts only what was not committed; a session id seen
//! again (the analyzer re-emitting a session after its own crash) replaces its earlier
//! documents; a cursor the log no longer holds drops everything and starts over.
//!
//! Per record: every reconstructed object it names (`files`), except whole mails (their
//! bodies and attachments are objects of their own), is read from `DIR/files/` and handed
//! to `kuroko_content::extract` with the per-object limits; its texts become documents.
//! An object the files budget already evicted is counted as `missing`. The kuroko binary
//! extracts in a worker process (`ingest_pending_with`, `kuroko_content::worker`): an
//! object that makes it hang is killed (`killed`), one that kills it (`crashed`) is
//! counted, and the next object gets a new worker.
//!
//! Budget: `[content] budget`. Past it, the documents of the oldest sessions are deleted
//! (the oldest share that brings the live size to 90 % of the budget) and the cut-off is
//! recorded (`dropped_before`) for `status`.

use super::{
    CONTENT_VERSION, ContentCounters, ContentFields, ContentIndex, ContentPayload, content_dir,
    read_payload, terr,
};
use crate::index::IndexError;
use kuroko_content::worker::{Worker, WorkerCommand};
use kuroko_content::{Extracted, Failure, Limits, Object};
use kuroko_model::SessionRecord;
use kuroko_model::config::Config;
use kuroko_model::sessionlog::{CursorCheck, LogPos, SessionLogReader, check_cursor};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tantivy::{IndexWriter, TantivyDocument, Term};

/// Texts between two commits.
const COMMIT_EVERY: u64 = 20_000;
const WRITER_MEMORY: usize = 48 << 20;
/// After dropping, aim for this share of the budget.
const REFILL_TARGET: f64 = 0.9;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContentSummary {
    pub sessions: u64,
    pub texts: u64,
    pub failures: u64,
    pub position: LogPos,
    /// Documents dropped for the budget.
    pub dropped: u64,
    pub restarted: Option<String>,
}

pub struct ContentIngester {
    pub index: ContentIndex,
    writer: IndexWriter<TantivyDocument>,
    payload: ContentPayload,
    uncommitted: u64,
    last_commit: Instant,
    data_dir: PathBuf,
    limits: Limits,
    /// The extraction worker process, when the caller gave one (`set_worker`).
    worker: Option<Worker>,
}

use crate::ingest::{io_err, settings};

/// Opens `path`, creating it; one of another schema or version is replaced by an empty one
/// (re-extracted from the log: the content index holds nothing the log and files do not).
fn open_or_create(path: &Path) -> Result<tantivy::Index, IndexError> {
    let schema = ContentFields::build().schema;
    if path.join("meta.json").exists() {
        if let Ok(idx) = tantivy::Index::open_in_dir(path) {
            let metas = idx.load_metas().map_err(terr(path))?;
            let p = read_payload(metas.payload.as_deref());
            if idx.schema() == schema && (p.version == CONTENT_VERSION || p.version == 0) {
                return Ok(idx);
            }
        }
        eprintln!(
            "kuroko content: {} has another format; extracting the content again from the session log",
            path.display()
        );
        std::fs::remove_dir_all(path).map_err(io_err(path))?;
    }
    std::fs::create_dir_all(path).map_err(io_err(path))?;
    tantivy::Index::builder()
        .schema(schema)
        .settings(settings())
        .create_in_dir(path)
        .map_err(terr(path))
}

impl ContentIngester {
    pub fn open(data_dir: &Path, limits: Limits) -> Result<ContentIngester, IndexError> {
        let path = content_dir(data_dir);
        let tindex = open_or_create(&path)?;
        let index = ContentIndex::from_tantivy(path.clone(), tindex)?;
        let writer = index
            .index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(terr(&path))?;
        let mut payload = index.payload()?;
        payload.version = CONTENT_VERSION;
        Ok(ContentIngester {
            index,
            writer,
            payload,
            uncommitted: 0,
            last_commit: Instant::now(),
            data_dir: data_dir.to_path_buf(),
            limits,
            worker: None,
        })
    }

    pub fn position(&self) -> LogPos {
        self.payload.pos
    }

    pub fn counters(&self) -> &ContentCounters {
        &self.payload.counters
    }

    /// See `crate::ingest::Ingester::revalidate_cursor`.
    pub fn revalidate_cursor(&mut self) -> Result<Option<String>, IndexError> {
        let log_dir = self.data_dir.join("sessions");
        let check = check_cursor(&log_dir, self.payload.pos, self.payload.log_generation).map_err(
            |source| IndexError::Log {
                path: log_dir.clone(),
                source,
            },
        )?;
        let CursorCheck::Rebuild { generation, reason } = check else {
            return Ok(None);
        };
        self.writer
            .delete_all_documents()
            .map_err(terr(&self.index.path))?;
        self.payload = ContentPayload {
            version: CONTENT_VERSION,
            log_generation: generation,
            ..ContentPayload::default()
        };
        self.uncommitted += 1;
        Ok(Some(reason))
    }

    /// Extracts in worker processes started by `cmd` (`kuroko_content::worker`) instead
    /// of in this process.
    pub fn set_worker(&mut self, cmd: WorkerCommand) {
        self.worker = Some(Worker::new(cmd));
    }

    /// The texts of one object: in the worker process when there is one; in this process
    /// when there is none or none can be started (said once on stderr: extraction at
    /// the in-process limits is better than none).
    fn extract(&mut self, obj: Object<'_>, bytes: &[u8]) -> Result<Extracted, Failure> {
        if let Some(w) = &mut self.worker {
            match w.extract(obj, bytes, &self.limits) {
                Ok(r) => return r,
                Err(e) => {
                    eprintln!(
                        "kuroko content: the extraction worker cannot start ({e}); extracting in the analyzer"
                    );
                    self.worker = None;
                }
            }
        }
        kuroko_content::extract(obj, bytes, &self.limits)
    }

    /// Extracts and adds the objects of one session read from the log ending at `pos`;
    /// returns the texts added.
    pub fn add(&mut self, pos: LogPos, r: &SessionRecord) -> Result<u64, IndexError> {
        let f = self.index.fields.clone();
        self.writer
            .delete_term(Term::from_field_text(f.session, &r.id));
        let mut added = 0;
        let mut seen: Vec<&str> = Vec::new();
        for file in &r.files {
            if file.kind == "mail" || seen.contains(&file.sha256.as_str()) {
                continue;
            }
            seen.push(&file.sha256);
            let Some(bytes) = read_object(&self.data_dir, &file.sha256) else {
                self.payload.counters.missing += 1;
                continue;
            };
            let obj = Object {
                kind: &file.kind,
                content_type: file.content_type.as_deref(),
                name: file.name.as_deref(),
            };
            match self.extract(obj, &bytes) {
                Ok(e) => {
                    let c = &mut self.payload.counters;
                    if e.skipped && e.texts.is_empty() {
                        c.skipped += 1;
                        continue;
                    }
                    c.objects += 1;
                    c.truncated += u64::from(e.truncated);
                    for t in e.texts {
                        let mut d = TantivyDocument::default();
                        d.add_text(f.session, &r.id);
                        d.add_text(f.sha256, &file.sha256);
                        d.add_text(f.kind, &file.kind);
                        d.add_text(f.part, t.part.name());
                        let name = match (&file.name, &t.inner_name) {
                            (Some(n), Some(i)) => Some(format!("{n}/{i}")),
                            (n, i) => n.clone().or_else(|| i.clone()),
                        };
                        if let Some(n) = name {
                            d.add_text(f.name, &n);
                        }
                        d.add_i64(f.time, r.start.nanos());
                        c.text_bytes += t.text.len() as u64;
                        d.add_text(f.text, &t.text);
                        self.writer
                            .add_document(d)
                            .map_err(terr(&self.index.path))?;
                        c.texts += 1;
                        added += 1;
                    }
                }
                Err(failure) => {
                    *self
                        .payload
                        .counters
                        .failures
                        .entry(failure.name().to_string())
                        .or_default() += 1;
                }
            }
        }
        self.payload.pos = pos;
        self.uncommitted += 1 + added;
        Ok(added)
    }

    pub fn skip_to(&mut self, pos: LogPos) {
        if pos > self.payload.pos {
            self.payload.pos = pos;
            self.uncommitted += 1;
        }
    }

    pub fn commit_due(&self) -> bool {
        self.uncommitted >= COMMIT_EVERY
            || (self.uncommitted > 0
                && self.last_commit.elapsed() >= crate::ingest::commit_interval())
    }

    pub fn commit(&mut self) -> Result<(), IndexError> {
        let path = self.index.path.clone();
        let text = serde_json::to_string(&self.payload).unwrap_or_default();
        let mut prepared = self.writer.prepare_commit().map_err(terr(&path))?;
        prepared.set_payload(&text);
        prepared.commit().map_err(terr(&path))?;
        self.uncommitted = 0;
        self.last_commit = Instant::now();
        self.index.reload()
    }

    /// Drops the oldest content past `budget` bytes (see the module docs); returns the
    /// documents dropped.
    pub fn enforce_budget(&mut self, budget: u64) -> Result<u64, IndexError> {
        let size = crate::budget::dir_size(&self.index.path);
        let searcher = self.index.reader.searcher();
        let alive: u64 = searcher.num_docs();
        let all: u64 = searcher
            .segment_readers()
            .iter()
            .map(|s| u64::from(s.max_doc()))
            .sum();
        if alive == 0 || all == 0 {
            return Ok(0);
        }
        // Deleted documents take space until merges reclaim it: count only the live share.
        let live_size = (size as f64 * alive as f64 / all as f64) as u64;
        if live_size <= budget {
            return Ok(0);
        }
        let keep = ((budget as f64 * REFILL_TARGET / live_size as f64) * alive as f64) as u64;
        let mut times = Vec::with_capacity(alive as usize);
        for seg in searcher.segment_readers() {
            let col = seg
                .fast_fields()
                .i64("time")
                .map_err(terr(&self.index.path))?;
            let bits = seg.alive_bitset();
            for doc in 0..seg.max_doc() {
                if bits.is_some_and(|b| !b.is_alive(doc)) {
                    continue;
                }
                if let Some(t) = col.first(doc) {
                    times.push(t);
                }
            }
        }
        if times.is_empty() {
            return Ok(0);
        }
        times.sort_unstable();
        let drop_n = (times.len() as u64).saturating_sub(keep).max(1) as usize;
        let Some(&cut) = times.get(drop_n.min(times.len()) - 1) else {
            return Ok(0);
        };
        let cutoff = cut.saturating_add(1);
        let q = tantivy::query::RangeQuery::new(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(Term::from_field_i64(self.index.fields.time, cutoff)),
        );
        self.writer
            .delete_query(Box::new(q))
            .map_err(terr(&self.index.path))?;
        self.payload.dropped_before =
            Some(cutoff.max(self.payload.dropped_before.unwrap_or(i64::MIN)));
        self.commit()?;
        Ok(times.iter().filter(|&&t| t < cutoff).count() as u64)
    }

    /// Waits for background merges (tests and benchmarks measure the settled size).
    pub fn wait_merges(self) -> Result<(), IndexError> {
        let path = self.index.path.clone();
        self.writer.wait_merging_threads().map_err(terr(&path))
    }
}

/// The bytes of a stored object (`.bin`, or `.eml` for whole mails); `None` when evicted.
fn read_object(data_dir: &Path, sha256: &str) -> Option<Vec<u8>> {
    kuroko_model::objects::Objects::new(data_dir)
        .read(sha256, u64::MAX)
        .ok()
        .flatten()
}

/// The content budget of `config` (`[content] budget`).
pub fn content_budget(config: &Config) -> u64 {
    config
        .content
        .budget_bytes()
        .unwrap_or(kuroko_model::config::DEFAULT_CONTENT_BUDGET)
}

/// Extracts the content of every session the log holds beyond the content index's
/// committed position, then enforces the budget. `kuroko analyze` and `kuroko run` call
/// this beside `crate::ingest_pending`.
pub fn ingest_pending(data_dir: &Path, config: &Config) -> Result<ContentSummary, IndexError> {
    ingest_pending_with(data_dir, config, None)
}

/// `ingest_pending`, extracting in worker processes started by `worker` when given (the
/// kuroko binary passes itself, `kuroko content-worker`).
pub fn ingest_pending_with(
    data_dir: &Path,
    config: &Config,
    worker: Option<WorkerCommand>,
) -> Result<ContentSummary, IndexError> {
    let mut summary = ContentSummary::default();
    if !config.content.enabled {
        return Ok(summary);
    }
    let limits = Limits {
        time: config
            .content
            .time_limit()
            .unwrap_or(Limits::default().time),
        ..Limits::default()
    };
    let mut ing = ContentIngester::open(data_dir, limits)?;
    if let Some(cmd) = worker {
        ing.set_worker(cmd);
    }
    if let Some(reason) = ing.revalidate_cursor()? {
        eprintln!("kuroko content: {reason}; extracting the session log again from its start");
        summary.restarted = Some(reason);
    }
    let log_dir = data_dir.join("sessions");
    let log_err = |source| IndexError::Log {
        path: log_dir.clone(),
        source,
    };
    let reader = SessionLogReader::open(&log_dir).map_err(log_err)?;
    let failures_before: u64 = ing.counters().failures.values().sum();
    for item in reader.read_from(ing.position()).map_err(log_err)? {
        match item {
            Ok((pos, rec)) => {
                summary.texts += ing.add(pos, &rec)?;
                summary.sessions += 1;
                if ing.commit_due() {
                    ing.commit()?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {}
            Err(source) => {
                ing.commit()?;
                return Err(IndexError::Log {
                    path: log_dir,
                    source,
                });
            }
        }
    }
    if ing.uncommitted > 0 {
        ing.commit()?;
    }
    summary.dropped = ing.enforce_budget(content_budget(config))?;
    summary.failures = ing
        .counters()
        .failures
        .values()
        .sum::<u64>()
        .saturating_sub(failures_before);
    summary.position = ing.position();
    Ok(summary)
}

/// Failure causes with a count, for `status` (every cause, zero included).
pub fn failure_counts(c: &ContentCounters) -> Vec<(&'static str, u64)> {
    Failure::ALL
        .iter()
        .map(|f| (f.name(), c.failures.get(f.name()).copied().unwrap_or(0)))
        .collect()
}
