//! Following the session log into the index, exactly once.
//!
//! The log position consumed is written in the same tantivy commit as the documents (the
//! commit payload), so after a crash the index resumes from the position of its last
//! commit and every record after it is indexed once. A session id that is indexed again
//! (the analyzer re-emitting a session after its own crash) replaces the earlier document
//! (`delete_term` on the id, then add, in one commit).
//!
//! Commits happen every `COMMIT_EVERY` documents and every `COMMIT_INTERVAL`, so in the
//! continuous mode a new session is searchable within seconds.
//!
//! A cursor the log does not hold any more (the log was started over: another generation;
//! or the position is past the log's readable end) makes the ingester drop every document
//! and index the log again from its start (`sessionlog::check_cursor`), instead of waiting
//! for positions that will never hold new records while `status` reports it up to date.
//!
//! Schema changes: an appliance updated to a kuroko whose `SCHEMA_VERSION` (or schema)
//! differs holds an index it cannot query. The ingester replaces it with an empty index of
//! the current schema whose payload carries a `RebuildMark` (the old version and log
//! position), then re-reads the session log from its start, committing as usual, so a
//! crash mid-rebuild resumes. Alert conditions are not evaluated again on sessions up to
//! the old position (they were, by the old index's run). Progress goes to stderr (the
//! `kuroko run` log) at every commit, and to `kuroko status` and `kuroko search` through
//! `Index::rebuild_progress`; `Index::open` on the old index says what is happening rather
//! than failing with tantivy's schema error. Searches during the rebuild see the sessions
//! indexed so far (oldest first) and are told so.

use crate::index::{
    Index, IndexError, Payload, RebuildMark, index_dir, rebuild_progress, stored_pos,
    stored_version,
};
use crate::query::Field as QField;
use crate::schema::{Fields, SCHEMA_VERSION};
use kuroko_model::SessionRecord;
use kuroko_model::config::Config;
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tantivy::indexer::LogMergePolicy;
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{IndexSettings, IndexWriter, TantivyDocument, Term};

/// Documents between two commits during a catch-up run (bounds what a crash re-indexes).
pub const COMMIT_EVERY: u64 = 100_000;
/// Longest time between commits while there is something to commit (by default; see
/// [`set_commit_interval`]).
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(3);

/// This process's commit interval in ms ([`COMMIT_INTERVAL`] unless set).
static COMMIT_INTERVAL_MS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(COMMIT_INTERVAL.as_millis() as u64);

/// Sets the longest time between commits for every ingester of this process (the session
/// index's and the content index's, [`crate::content::ingest`]): for
/// `kuroko analyze --checkpoint-interval` under callgrind (50× slower), where commits by the
/// wall clock would follow the machine's load, and with them tantivy's merges (the same
/// build counted 1.7 G or 4.2 G instructions of merging in two runs of one input).
pub fn set_commit_interval(d: Duration) {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    COMMIT_INTERVAL_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn commit_interval() -> Duration {
    Duration::from_millis(COMMIT_INTERVAL_MS.load(std::sync::atomic::Ordering::Relaxed))
}
/// Memory the tantivy writer may buffer before it flushes a segment.
pub const WRITER_MEMORY: usize = 96 << 20;
/// Share of deleted documents in a segment above which merges reclaim them.
const DELETED_RATIO_BEFORE_MERGE: f32 = 0.2;

/// What one ingest run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestSummary {
    /// Sessions added to the index.
    pub indexed: u64,
    /// Log lines that were not session records (damage), skipped.
    pub bad_records: u64,
    /// Log position consumed (committed).
    pub position: LogPos,
    /// The index had another schema version and was rebuilt from the log.
    pub rebuilt: bool,
    /// The index's cursor was not in the session log any more (see the module docs): why.
    /// Every document was dropped and the log indexed again from its start.
    pub restarted: Option<String>,
    /// Alert hits raised while indexing.
    pub alerts: u64,
    /// Alert deliveries (syslog, mail) that failed and wait for a retry.
    pub alert_delivery_failures: u64,
}

/// The index writer side.
pub struct Ingester {
    pub index: Index,
    writer: IndexWriter<TantivyDocument>,
    pos: LogPos,
    uncommitted: u64,
    last_commit: Instant,
    pub rebuilt: bool,
    /// Sessions added over the index's life (as the payload counts them).
    sessions: u64,
    /// The rebuild mark this index carries (kept in every commit).
    rebuild: Option<RebuildMark>,
    /// Generation of the session log `pos` belongs to.
    log_generation: u64,
    data_dir: PathBuf,
    committed_alert_log_len: Option<u64>,
    /// See `Payload::open_alerted`.
    open_alerted: std::collections::BTreeMap<String, Vec<String>>,
}

/// Open sessions whose fired alert conditions are remembered at most (the oldest are
/// forgotten: their final record could fire once more).
pub const MAX_OPEN_ALERTED: usize = 10_000;

/// The tantivy settings of Kuroko's indexes (the session index and the content index).
pub(crate) fn settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(3),
        }),
        docstore_blocksize: 64 << 10,
        ..IndexSettings::default()
    }
}

/// An I/O error on `path` as an [`IndexError`].
pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn t_err(path: &Path) -> impl Fn(tantivy::TantivyError) -> IndexError + '_ {
    move |source| IndexError::Tantivy {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens `path` as an index of the current schema, creating it, or, when it holds another
/// schema version, replacing it with an empty index of the current one that carries a
/// `RebuildMark` (so the caller re-reads the session log from its start without raising
/// alerts again). Returns whether it was replaced.
///
/// The replacement is built beside the old index (`index.rebuild`), committed with its
/// mark, and renamed into place, so a crash at any point leaves either the old index (and
/// the next open starts over) or the marked new one (and the rebuild resumes).
fn open_or_create(path: &Path) -> Result<(tantivy::Index, bool), IndexError> {
    let schema = Fields::build().schema;
    let side = path.with_extension("rebuild");
    if !path.join("meta.json").exists() && side.join("meta.json").exists() {
        // Crashed between removing the old index and renaming the new one into place.
        let _ = std::fs::remove_dir_all(path);
        std::fs::rename(&side, path).map_err(io_err(path))?;
    }
    let mut mark = None;
    if path.join("meta.json").exists() {
        let opened = tantivy::Index::open_in_dir(path);
        let (same, old_version, old_pos) = match &opened {
            Ok(idx) => {
                let metas = idx.load_metas().map_err(t_err(path))?;
                let text = metas.payload.as_deref();
                let version = stored_version(text);
                let same = idx.schema() == schema && version.is_none_or(|v| v == SCHEMA_VERSION);
                (same, version.unwrap_or(0), stored_pos(text))
            }
            Err(_) => (false, 0, None),
        };
        if same {
            return Ok((opened.map_err(t_err(path))?, false));
        }
        drop(opened);
        mark = Some(RebuildMark {
            from_version: old_version,
            old_pos: old_pos.unwrap_or_default(),
        });
    }
    let Some(mark) = mark else {
        std::fs::create_dir_all(path).map_err(io_err(path))?;
        let idx = tantivy::Index::builder()
            .schema(schema)
            .settings(settings())
            .create_in_dir(path)
            .map_err(t_err(path))?;
        return Ok((idx, false));
    };
    eprintln!(
        "kuroko index: {} has schema version {}, this kuroko uses {}; rebuilding it from the session log",
        path.display(),
        mark.from_version,
        SCHEMA_VERSION
    );
    let _ = std::fs::remove_dir_all(&side);
    std::fs::create_dir_all(&side).map_err(io_err(&side))?;
    {
        let idx = tantivy::Index::builder()
            .schema(schema)
            .settings(settings())
            .create_in_dir(&side)
            .map_err(t_err(&side))?;
        let mut w: IndexWriter<TantivyDocument> = idx
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(t_err(&side))?;
        let payload = Payload {
            version: SCHEMA_VERSION,
            rebuild: Some(mark),
            ..Payload::default()
        };
        let mut prepared = w.prepare_commit().map_err(t_err(&side))?;
        prepared.set_payload(&serde_json::to_string(&payload).unwrap_or_default());
        prepared.commit().map_err(t_err(&side))?;
        w.wait_merging_threads().map_err(t_err(&side))?;
    }
    std::fs::remove_dir_all(path).map_err(io_err(path))?;
    std::fs::rename(&side, path).map_err(io_err(path))?;
    let idx = tantivy::Index::open_in_dir(path).map_err(t_err(path))?;
    Ok((idx, true))
}

impl Ingester {
    /// Opens (or creates) `DIR/index` for writing. Only one writer may be open at a time.
    pub fn open(data_dir: &Path) -> Result<Ingester, IndexError> {
        let path: PathBuf = index_dir(data_dir);
        let (tindex, rebuilt) = open_or_create(&path)?;
        let index = Index::from_tantivy(path.clone(), tindex)?;
        let writer: IndexWriter<TantivyDocument> = index
            .index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(t_err(&path))?;
        let mut policy = LogMergePolicy::default();
        policy.set_del_docs_ratio_before_merge(DELETED_RATIO_BEFORE_MERGE);
        writer.set_merge_policy(Box::new(policy));
        let payload = index.payload()?;
        Ok(Ingester {
            index,
            writer,
            pos: payload.pos,
            uncommitted: 0,
            last_commit: Instant::now(),
            rebuilt,
            sessions: payload.sessions,
            rebuild: payload.rebuild,
            log_generation: payload.log_generation,
            data_dir: data_dir.to_path_buf(),
            committed_alert_log_len: payload.alert_log_len,
            open_alerted: payload.open_alerted,
        })
    }

    /// Whether alert conditions were already evaluated on the record ending at `pos` (by
    /// the index this one replaced).
    pub fn alerted_before(&self, pos: LogPos) -> bool {
        self.rebuild.is_some_and(|m| pos <= m.old_pos)
    }

    /// The payload the next commit writes.
    fn next_payload(&self) -> Payload {
        Payload {
            version: SCHEMA_VERSION,
            pos: self.pos,
            sessions: self.sessions,
            rebuild: self.rebuild,
            alert_log_len: Some(crate::alerts::log_len(&self.data_dir)),
            log_generation: self.log_generation,
            open_alerted: self.open_alerted.clone(),
            committed_at_ns: kuroko_model::Timestamp::now().nanos(),
        }
    }

    /// Alert conditions on one record, once per session: a provisional (`open`) record
    /// remembers what fired, a later record of the same session fires only the rest.
    pub fn alert(&mut self, alerts: &mut crate::alerts::AlertEngine, r: &SessionRecord) {
        let fired = if r.open {
            self.open_alerted.get(&r.id).cloned().unwrap_or_default()
        } else {
            self.open_alerted.remove(&r.id).unwrap_or_default()
        };
        let now = alerts.on_session_except(r, &fired);
        if r.open && !now.is_empty() {
            if !self.open_alerted.contains_key(&r.id) && self.open_alerted.len() >= MAX_OPEN_ALERTED
            {
                self.open_alerted.pop_first();
            }
            self.open_alerted
                .entry(r.id.clone())
                .or_default()
                .extend(now);
        }
    }

    /// Re-validates the cursor against the session log (see the module docs); when the
    /// log does not hold it any more, drops every document and rewinds to the log's start.
    /// Returns why it restarted, if it did.
    pub fn revalidate_cursor(&mut self) -> Result<Option<String>, IndexError> {
        use kuroko_model::sessionlog::{CursorCheck, check_cursor};
        let log_dir = self.data_dir.join("sessions");
        let check = check_cursor(&log_dir, self.pos, self.log_generation).map_err(|source| {
            IndexError::Log {
                path: log_dir.clone(),
                source,
            }
        })?;
        let CursorCheck::Rebuild { generation, reason } = check else {
            return Ok(None);
        };
        let path = self.index.path.clone();
        self.writer.delete_all_documents().map_err(t_err(&path))?;
        self.pos = LogPos::default();
        self.sessions = 0;
        self.rebuild = None;
        self.open_alerted.clear();
        self.log_generation = generation;
        self.uncommitted += 1;
        Ok(Some(reason))
    }

    /// The alert log length of the last commit, if it recorded one.
    pub fn committed_alert_log_len(&self) -> Option<u64> {
        self.committed_alert_log_len
    }

    /// The log position committed or pending commit.
    pub fn position(&self) -> LogPos {
        self.pos
    }

    /// Adds (or replaces, by id) one session read from the log ending at `pos`.
    pub fn add(&mut self, pos: LogPos, r: &SessionRecord) -> Result<(), IndexError> {
        let path = self.index.path.clone();
        let doc = self
            .index
            .fields
            .document(r)
            .map_err(|e| IndexError::BadDocument {
                path: path.clone(),
                address: r.id.clone(),
                message: e.to_string(),
            })?;
        if let Some(id) = self.index.fields.raw(QField::Id) {
            self.writer
                .delete_term(Term::from_field_text(id, &r.id.to_lowercase()));
        }
        self.writer.add_document(doc).map_err(t_err(&path))?;
        self.pos = pos;
        self.uncommitted += 1;
        // A session counts once: at its final record (its provisional ones are replaced).
        if !r.open {
            self.sessions += 1;
        }
        Ok(())
    }

    /// Records that the log was consumed up to `pos` without a document (a damaged line).
    pub fn skip_to(&mut self, pos: LogPos) {
        if pos > self.pos {
            self.pos = pos;
            self.uncommitted += 1;
        }
    }

    /// Whether a commit is due (by count or time).
    pub fn commit_due(&self) -> bool {
        self.uncommitted >= COMMIT_EVERY
            || (self.uncommitted > 0 && self.last_commit.elapsed() >= commit_interval())
    }

    /// Commits the documents and the log position together.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        let path = self.index.path.clone();
        let payload = self.next_payload();
        let text = serde_json::to_string(&payload).unwrap_or_default();
        let mut prepared = self.writer.prepare_commit().map_err(t_err(&path))?;
        prepared.set_payload(&text);
        prepared.commit().map_err(t_err(&path))?;
        self.committed_alert_log_len = payload.alert_log_len;
        self.uncommitted = 0;
        self.last_commit = Instant::now();
        self.index.reload()?;
        Ok(())
    }

    /// Deletes every session whose start is before `before_ns` (budget enforcement).
    pub fn delete_before(&mut self, before_ns: i64) -> Result<(), IndexError> {
        let path = self.index.path.clone();
        let q = tantivy::query::RangeQuery::new(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(Term::from_field_i64(self.index.fields.time, before_ns)),
        );
        self.writer
            .delete_query(Box::new(q))
            .map_err(t_err(&path))?;
        self.uncommitted += 1;
        Ok(())
    }

    /// Waits for background merges (tests and benchmarks measure the settled size).
    pub fn wait_merges(self) -> Result<(), IndexError> {
        let path = self.index.path.clone();
        self.writer.wait_merging_threads().map_err(t_err(&path))
    }
}

/// Indexes every session the log holds beyond the index's committed position, evaluates
/// the alert conditions of `config` on each new session, then commits. This is what
/// `kuroko analyze` calls after the analyzer, and what `kuroko run` calls every few seconds.
pub fn ingest_pending(data_dir: &Path, config: &Config) -> Result<IngestSummary, IndexError> {
    ingest_pending_within(data_dir, config, None)
}

/// Like `ingest_pending`, but while the index is being rebuilt (after a schema change) it
/// stops after `rebuild_budget` and commits; the next call resumes. `kuroko search` uses
/// this so that a search during a rebuild answers from what is indexed instead of waiting
/// for the whole log.
pub fn ingest_pending_within(
    data_dir: &Path,
    config: &Config,
    rebuild_budget: Option<Duration>,
) -> Result<IngestSummary, IndexError> {
    let started = Instant::now();
    let mut ing = Ingester::open(data_dir)?;
    if let Some(len) = ing.committed_alert_log_len() {
        // Hits of a run that crashed before its commit are raised again below.
        let _ = crate::alerts::truncate_uncommitted(data_dir, len);
    }
    let mut alerts = crate::alerts::AlertEngine::new(data_dir, config);
    let log_dir = data_dir.join("sessions");
    let mut summary = IngestSummary {
        rebuilt: ing.rebuilt,
        ..Default::default()
    };
    if let Some(reason) = ing.revalidate_cursor()? {
        eprintln!("kuroko index: {reason}; indexing the session log again from its start");
        summary.restarted = Some(reason);
    }
    let reader = SessionLogReader::open(&log_dir).map_err(|source| IndexError::Log {
        path: log_dir.clone(),
        source,
    })?;
    let iter = reader
        .read_from(ing.position())
        .map_err(|source| IndexError::Log {
            path: log_dir.clone(),
            source,
        })?;
    let mut rebuilding = rebuild_progress(data_dir, &ing.next_payload()).is_some();
    for item in iter {
        match item {
            Ok((pos, rec)) => {
                ing.add(pos, &rec)?;
                summary.indexed += 1;
                if !ing.alerted_before(pos) {
                    ing.alert(&mut alerts, &rec);
                }
                if ing.commit_due() {
                    ing.commit()?;
                    if rebuilding {
                        match rebuild_progress(data_dir, &ing.next_payload()) {
                            Some(p) => {
                                eprintln!("kuroko index: {p}");
                                if rebuild_budget.is_some_and(|b| started.elapsed() >= b) {
                                    break;
                                }
                            }
                            None => {
                                eprintln!(
                                    "kuroko index: rebuild finished ({} sessions)",
                                    ing.sessions
                                );
                                rebuilding = false;
                            }
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => summary.bad_records += 1,
            Err(source) => {
                // Keep what was read so far; the next run resumes after it.
                ing.commit()?;
                return Err(IndexError::Log {
                    path: log_dir,
                    source,
                });
            }
        }
    }
    if summary.indexed > 0
        || summary.bad_records > 0
        || summary.rebuilt
        || summary.restarted.is_some()
    {
        ing.commit()?;
    }
    if rebuilding && rebuild_progress(data_dir, &ing.next_payload()).is_none() {
        eprintln!("kuroko index: rebuild finished ({} sessions)", ing.sessions);
    }
    crate::budget::enforce(&mut ing, config)?;
    let delivered = alerts.finish();
    summary.alerts = delivered.hits;
    summary.alert_delivery_failures = delivered.failures;
    summary.position = ing.position();
    Ok(summary)
}
