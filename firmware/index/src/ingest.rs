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

use crate::index::{Index, IndexError, Payload, index_dir, read_payload};
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
/// Longest time between commits while there is something to commit.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(3);
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
}

fn settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::Zstd(ZstdCompressor {
            compression_level: Some(3),
        }),
        docstore_blocksize: 64 << 10,
        ..IndexSettings::default()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> IndexError + '_ {
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

/// Opens `path` as an index of the current schema, creating (or, for another schema
/// version, rebuilding) it. Returns whether it was rebuilt.
fn open_or_create(path: &Path) -> Result<(tantivy::Index, bool), IndexError> {
    let schema = Fields::build().schema;
    let mut rebuilt = false;
    if path.join("meta.json").exists() {
        let idx = tantivy::Index::open_in_dir(path).map_err(t_err(path))?;
        let payload = read_payload(idx.load_metas().map_err(t_err(path))?.payload.as_deref());
        if idx.schema() == schema && payload.version == SCHEMA_VERSION {
            return Ok((idx, false));
        }
        drop(idx);
        std::fs::remove_dir_all(path).map_err(io_err(path))?;
        rebuilt = true;
    }
    std::fs::create_dir_all(path).map_err(io_err(path))?;
    let idx = tantivy::Index::builder()
        .schema(schema)
        .settings(settings())
        .create_in_dir(path)
        .map_err(t_err(path))?;
    Ok((idx, rebuilt))
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
        let pos = index.payload()?.pos;
        Ok(Ingester {
            index,
            writer,
            pos,
            uncommitted: 0,
            last_commit: Instant::now(),
            rebuilt,
        })
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
            || (self.uncommitted > 0 && self.last_commit.elapsed() >= COMMIT_INTERVAL)
    }

    /// Commits the documents and the log position together.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        let path = self.index.path.clone();
        let payload = Payload {
            version: SCHEMA_VERSION,
            pos: self.pos,
            sessions: 0,
        };
        let text = serde_json::to_string(&payload).unwrap_or_default();
        let mut prepared = self.writer.prepare_commit().map_err(t_err(&path))?;
        prepared.set_payload(&text);
        prepared.commit().map_err(t_err(&path))?;
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
    let mut ing = Ingester::open(data_dir)?;
    let mut alerts = crate::alerts::AlertEngine::new(data_dir, config);
    let log_dir = data_dir.join("sessions");
    let mut summary = IngestSummary {
        rebuilt: ing.rebuilt,
        ..Default::default()
    };
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
    for item in iter {
        match item {
            Ok((pos, rec)) => {
                ing.add(pos, &rec)?;
                summary.indexed += 1;
                alerts.on_session(&rec);
                if ing.commit_due() {
                    ing.commit()?;
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
    if summary.indexed > 0 || summary.bad_records > 0 || summary.rebuilt {
        ing.commit()?;
    }
    crate::budget::enforce(&mut ing, config)?;
    let delivered = alerts.finish();
    summary.alerts = delivered.hits;
    summary.alert_delivery_failures = delivered.failures;
    summary.position = ing.position();
    Ok(summary)
}
