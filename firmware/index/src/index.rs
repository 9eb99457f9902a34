//! The session index in `DIR/index/`: open, search, count, fetch one session.
//!
//! One tantivy index for all sessions; the log position it has consumed lives in the commit
//! payload (see `ingest`). Readers never block the writer and never take its lock (they
//! open the index through `reader_dir`, which also lets them read a read-only data
//! directory); a search sees the last commit.
//!
//! Rotation policy: the index keeps a session after the segment store has overwritten its
//! packets, because the metadata (who talked to whom, which URL, which mail) is still
//! evidence. Such sessions are *marked*: `Hit::packets_gone` is set when the caller passes
//! the store's oldest segment sequence number and the session's last packet lies before
//! it. The index keeps to its own disk budget by dropping its oldest hours
//! (`ingest::enforce_budget`).
//!
//! How a search runs (each step measured at 10 M sessions, `cargo xtask bench search`):
//! - `A AND B` where `B` is substrings/globs on URL or host and `A` is selective (the
//!   NetRAPTOR CONNECT example): `A`'s candidates, newest first, verified from the fast
//!   columns in growing batches (`strcol::ColumnVerifier`), so a top-100 reads a few hundred
//!   column values, not stored records; other residuals are verified from stored records.
//! - Otherwise the whole plan is compiled (`compile`); a top-N of a query expected to match
//!   many sessions first asks the newest slice of time that should hold them (`newest`).
//! - An index of another schema version is refused with `IndexError::OldSchema` (the
//!   ingester rebuilds it) and a rebuilding one reports `rebuild_progress`.

use crate::compile::compile;
use crate::matcher::glob_match;
use crate::query::Field as QField;
use crate::query::plan::words;
use crate::query::{Plan, Pred, Query};
use crate::schema::FAST_TEXT;
use crate::schema::{Fields, SCHEMA_VERSION, TIME};
use crate::strcol::ColumnVerifier;
use kuroko_model::SessionRecord;
use kuroko_model::sessionlog::LogPos;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::schema::Value as _;
use tantivy::{
    DocAddress, DocId, IndexReader, Order, ReloadPolicy, Searcher, SegmentReader, TantivyDocument,
};

/// Errors of the index. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("session index {path}: {source}")]
    Tantivy {
        path: PathBuf,
        source: tantivy::TantivyError,
    },
    #[error("session index {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "session index {path} has no sessions yet; run `kuroko analyze --data DIR` first (it builds the index)"
    )]
    Missing { path: PathBuf },
    #[error("session index {path}: stored record {address} is damaged: {message}")]
    BadDocument {
        path: PathBuf,
        address: String,
        message: String,
    },
    #[error(
        "session index {path} has schema version {found}; this kuroko uses version {expected}. It is rebuilt from the session log automatically by `kuroko run` or `kuroko analyze` (progress in `kuroko status`); search again when it has started"
    )]
    OldSchema {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("session log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the index stores in each commit: the session-log position it has consumed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Payload {
    pub version: u32,
    pub pos: LogPos,
    /// Sessions in the index after this commit (as counted by the ingester).
    #[serde(default)]
    pub sessions: u64,
    /// Set when this index was rebuilt from the session log because the one before had
    /// another schema: where that index had got to. Alert conditions were already
    /// evaluated on every session up to there, so the rebuild does not raise them again,
    /// and until `pos` reaches it the index is incomplete (searches say so).
    #[serde(default)]
    pub rebuild: Option<RebuildMark>,
    /// Length of the local alert log when this commit was made (see `alerts`).
    #[serde(default)]
    pub alert_log_len: Option<u64>,
    /// Generation of the session log `pos` belongs to (see `kuroko_model::sessionlog`).
    #[serde(default)]
    pub log_generation: u64,
    /// Sessions seen open (provisional records) → the alert conditions that fired on them,
    /// so that a later record of the same session does not fire them again (issue 15).
    /// Committed with the documents, so a crash does not forget or repeat them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub open_alerted: std::collections::BTreeMap<String, Vec<String>>,
    /// Wall-clock time of this commit (ns; 0 in indexes written before it was recorded),
    /// for the index's lag in `kuroko status`.
    #[serde(default)]
    pub committed_at_ns: i64,
}

/// See `Payload::rebuild`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct RebuildMark {
    /// Schema version of the index that was replaced.
    pub from_version: u32,
    /// Log position the replaced index had consumed.
    pub old_pos: LogPos,
}

/// A rebuild in progress, for `status` and for a note next to search results.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RebuildProgress {
    pub from_version: u32,
    pub to_version: u32,
    /// Sessions indexed so far.
    pub sessions: u64,
    /// Bytes of the session log consumed, and to consume until the rebuild has caught up.
    pub log_bytes_done: u64,
    pub log_bytes_total: u64,
}

impl RebuildProgress {
    pub fn percent(&self) -> f64 {
        if self.log_bytes_total == 0 {
            100.0
        } else {
            (self.log_bytes_done as f64 * 100.0 / self.log_bytes_total as f64).min(100.0)
        }
    }
}

impl std::fmt::Display for RebuildProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the session index is being rebuilt from the session log for a new index format (schema {} -> {}): {} sessions so far, {:.0} % of the log",
            self.from_version,
            self.to_version,
            self.sessions,
            self.percent()
        )
    }
}

/// Bytes of the session log in `log_dir` before `pos` (files already pruned do not count).
pub fn log_bytes_before(log_dir: &Path, pos: LogPos) -> u64 {
    let files = kuroko_model::sessionlog::list_files(log_dir).unwrap_or_default();
    let mut total = 0;
    for n in files {
        if n > pos.file {
            break;
        }
        let len = std::fs::metadata(log_dir.join(format!("{n:08}.jsonl")))
            .map(|m| m.len())
            .unwrap_or(0);
        total += if n == pos.file {
            pos.offset.min(len)
        } else {
            len
        };
    }
    total
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub record: SessionRecord,
    /// The segment store no longer holds this session's packets.
    pub packets_gone: bool,
}

pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

/// An open index for searching.
pub struct Index {
    pub(crate) path: PathBuf,
    pub(crate) index: tantivy::Index,
    pub(crate) fields: Fields,
    reader: IndexReader,
}

impl Index {
    /// Opens `DIR/index` for searching. An index that was never built is an error that says
    /// how to build it.
    pub fn open(data_dir: &Path) -> Result<Index, IndexError> {
        let path = index_dir(data_dir);
        if !path.join("meta.json").exists() {
            return Err(IndexError::Missing { path });
        }
        // Through `ReaderDirectory`: a reader works on a read-only data directory.
        let index =
            match crate::reader_dir::ReaderDirectory::open(&path).and_then(tantivy::Index::open) {
                Ok(i) => i,
                // An index of a future or much older tantivy, or a half-replaced directory:
                // the ingester rebuilds it; say so instead of tantivy's message.
                Err(_) => {
                    return Err(IndexError::OldSchema {
                        path,
                        found: 0,
                        expected: SCHEMA_VERSION,
                    });
                }
            };
        let metas = index.load_metas().map_err(|source| IndexError::Tantivy {
            path: path.clone(),
            source,
        })?;
        let found = stored_version(metas.payload.as_deref());
        if index.schema() != Fields::build().schema || found.is_some_and(|v| v != SCHEMA_VERSION) {
            return Err(IndexError::OldSchema {
                path,
                found: found.unwrap_or(0),
                expected: SCHEMA_VERSION,
            });
        }
        Self::from_tantivy(path, index)
    }

    /// The rebuild in progress, if this index is being rebuilt from the session log.
    pub fn rebuild_progress(&self, data_dir: &Path) -> Result<Option<RebuildProgress>, IndexError> {
        let p = self.payload()?;
        Ok(rebuild_progress(data_dir, &p))
    }

    pub(crate) fn from_tantivy(path: PathBuf, index: tantivy::Index) -> Result<Index, IndexError> {
        Fields::register_tokenizers(&index);
        let fields = Fields::build();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|source| IndexError::Tantivy {
                path: path.clone(),
                source,
            })?;
        Ok(Index {
            path,
            index,
            fields,
            reader,
        })
    }

    fn terr(&self, source: tantivy::TantivyError) -> IndexError {
        IndexError::Tantivy {
            path: self.path.clone(),
            source,
        }
    }

    /// Picks up the latest commit.
    pub fn reload(&self) -> Result<(), IndexError> {
        self.reader.reload().map_err(|e| self.terr(e))
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// The payload of the last commit (log position consumed).
    pub fn payload(&self) -> Result<Payload, IndexError> {
        let metas = self.index.load_metas().map_err(|e| self.terr(e))?;
        Ok(read_payload(metas.payload.as_deref()))
    }

    /// `q` with its `body:` / `content:` terms replaced by the sessions they match in the
    /// content index beside this index (`crate::content::resolve`), and notes for the user
    /// (too many matches, no content index yet). Searches and counts do this themselves;
    /// callers that compile plans on their own (aggregations) call it first.
    pub fn resolve_content(&self, q: &Query) -> Result<(Query, Vec<String>), IndexError> {
        let mut notes = Vec::new();
        if !crate::content::has_content(&q.plan) {
            return Ok((q.clone(), notes));
        }
        let data_dir = self.path.parent().unwrap_or(Path::new("."));
        let content = crate::content::ContentIndex::open(data_dir)?;
        let plan = crate::content::resolve(&q.plan, content.as_ref(), &mut notes)?;
        Ok((
            Query {
                expr: q.expr.clone(),
                plan,
            },
            notes,
        ))
    }

    /// Sessions matching `q`, newest first, at most `limit`.
    pub fn search(&self, q: &Query, limit: usize) -> Result<Vec<SessionRecord>, IndexError> {
        Ok(self
            .search_hits(q, limit, None)?
            .into_iter()
            .map(|h| h.record)
            .collect())
    }

    /// Like `search`, marking sessions whose packets are gone from the store (its oldest
    /// segment sequence number is `oldest_segment`).
    pub fn search_hits(
        &self,
        q: &Query,
        limit: usize,
        oldest_segment: Option<u64>,
    ) -> Result<Vec<Hit>, IndexError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let resolved;
        let q = if crate::content::has_content(&q.plan) {
            resolved = self.resolve_content(q)?.0;
            &resolved
        } else {
            q
        };
        let searcher = self.searcher();
        if let Some((cheap, residual)) = residual_split(&q.plan)
            && column_verifiable(&residual)
        {
            // Substring/glob terms on fast text columns next to a selective term: verify
            // the candidates of the selective part, newest first, from the columns.
            let cq = compile(&cheap, &self.fields, &searcher).map_err(|e| self.terr(e))?;
            let mut cands = searcher.search(&cq, &TimedDocs).map_err(|e| self.terr(e))?;
            if cands.len() <= RESIDUAL_MAX_CANDIDATES {
                cands.sort_unstable_by(|a, b| b.cmp(a));
                let mut out = Vec::new();
                let mut batch = 256usize;
                let mut at = 0;
                while at < cands.len() && out.len() < limit {
                    let end = (at + batch).min(cands.len());
                    for addr in self.verify_columns(&searcher, &residual, &cands[at..end])? {
                        let record = self.record_at(&searcher, addr)?;
                        let packets_gone =
                            oldest_segment.is_some_and(|o| record.span.last_segment < o);
                        out.push(Hit {
                            record,
                            packets_gone,
                        });
                        if out.len() == limit {
                            break;
                        }
                    }
                    at = end;
                    batch = batch.saturating_mul(4);
                }
                return Ok(out);
            }
        }
        if let Some((cheap, _)) = residual_split(&q.plan) {
            // Substring/glob terms next to a selective term: verify the few candidates of
            // the selective part with the record matcher instead of running the automaton
            // over the whole term dictionary.
            let cq = compile(&cheap, &self.fields, &searcher).map_err(|e| self.terr(e))?;
            let candidates = searcher.search(&cq, &Count).map_err(|e| self.terr(e))?;
            if candidates <= RESIDUAL_MAX_CANDIDATES {
                let top = searcher
                    .search(
                        &cq,
                        &TopDocs::with_limit(candidates.max(1))
                            .order_by_fast_field::<i64>(TIME, Order::Desc),
                    )
                    .map_err(|e| self.terr(e))?;
                let mut out = Vec::new();
                let mut exhausted = true;
                for (loads, (_, addr)) in top.into_iter().enumerate() {
                    if loads >= RESIDUAL_MAX_LOADS {
                        // Few candidates match: the index answers faster after all.
                        exhausted = false;
                        break;
                    }
                    let record = self.record_at(&searcher, addr)?;
                    if crate::matcher::eval(&q.plan, &record) {
                        let packets_gone =
                            oldest_segment.is_some_and(|o| record.span.last_segment < o);
                        out.push(Hit {
                            record,
                            packets_gone,
                        });
                        if out.len() == limit {
                            break;
                        }
                    }
                }
                if exhausted || out.len() == limit {
                    return Ok(out);
                }
            }
        }
        let tq = compile(&q.plan, &self.fields, &searcher).map_err(|e| self.terr(e))?;
        let top = if windowable(&q.plan) {
            self.newest(&searcher, tq, limit)?
        } else {
            searcher
                .search(
                    &tq,
                    &TopDocs::with_limit(limit).order_by_fast_field::<i64>(TIME, Order::Desc),
                )
                .map_err(|e| self.terr(e))?
        };
        let mut out = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let record = self.record_at(&searcher, addr)?;
            let packets_gone = oldest_segment.is_some_and(|o| record.span.last_segment < o);
            out.push(Hit {
                record,
                packets_gone,
            });
        }
        Ok(out)
    }

    /// The `limit` newest documents matching `tq`. A query expected to match many sessions
    /// is asked first for the newest slice of the time span that should hold about twice
    /// `limit` of them, then for 8 times more, until a slice holds `limit` hits (then no
    /// older session can be among the newest `limit`) or it covers everything: the
    /// intersection with a short time range is far cheaper than ordering every match.
    fn newest(
        &self,
        searcher: &Searcher,
        tq: Box<dyn tantivy::query::Query>,
        limit: usize,
    ) -> Result<Vec<(Option<i64>, DocAddress)>, IndexError> {
        let order = || TopDocs::with_limit(limit).order_by_fast_field::<i64>(TIME, Order::Desc);
        let bounds = searcher.segment_readers().iter().try_fold(
            None::<(i64, i64)>,
            |acc, r| -> tantivy::Result<_> {
                if r.num_docs() == 0 {
                    return Ok(acc);
                }
                let c = r.fast_fields().i64(TIME)?;
                let (lo, hi) = (c.min_value(), c.max_value());
                Ok(Some(match acc {
                    Some((a, b)) => (a.min(lo), b.max(hi)),
                    None => (lo, hi),
                }))
            },
        );
        let bounds = bounds.map_err(|e| self.terr(e))?;
        // Matches the scorers expect (cheap for terms, unions and intersections).
        let weight = tq
            .weight(tantivy::query::EnableScoring::disabled_from_searcher(
                searcher,
            ))
            .map_err(|e| self.terr(e))?;
        let mut expected = 0u64;
        for r in searcher.segment_readers() {
            let sc = weight.scorer(r, 1.0).map_err(|e| self.terr(e))?;
            expected += u64::from(sc.size_hint());
        }
        if let Some((lo, hi)) = bounds
            && limit <= NEWEST_FIRST_MAX_LIMIT
            && expected >= NEWEST_FIRST_MIN_RATIO * limit as u64
        {
            let span = (hi as i128 - lo as i128).max(1);
            // A slice expected to hold about twice `limit`, if matches are spread evenly.
            let mut width = (span * 2 * limit as i128 / i128::from(expected.max(1) as i64)).max(1);
            while width < span {
                let from = (hi as i128 - width) as i64;
                let windowed = tantivy::query::BooleanQuery::new(vec![
                    (tantivy::query::Occur::Must, tq.box_clone()),
                    (
                        tantivy::query::Occur::Must,
                        Box::new(tantivy::query::RangeQuery::new(
                            std::ops::Bound::Included(tantivy::Term::from_field_i64(
                                self.fields.time,
                                from,
                            )),
                            std::ops::Bound::Unbounded,
                        )),
                    ),
                ]);
                let top = searcher
                    .search(&windowed, &order())
                    .map_err(|e| self.terr(e))?;
                if top.len() >= limit {
                    return Ok(top);
                }
                width = width.saturating_mul(8);
            }
        }
        searcher.search(&tq, &order()).map_err(|e| self.terr(e))
    }

    /// How many sessions match `q`.
    pub fn count(&self, q: &Query) -> Result<u64, IndexError> {
        let resolved;
        let q = if crate::content::has_content(&q.plan) {
            resolved = self.resolve_content(q)?.0;
            &resolved
        } else {
            q
        };
        let searcher = self.searcher();
        if let Some((cheap, residual)) = residual_split(&q.plan)
            && column_verifiable(&residual)
        {
            let cq = compile(&cheap, &self.fields, &searcher).map_err(|e| self.terr(e))?;
            let cands = searcher.search(&cq, &TimedDocs).map_err(|e| self.terr(e))?;
            if cands.len() <= RESIDUAL_MAX_CANDIDATES {
                return Ok(self.verify_columns(&searcher, &residual, &cands)?.len() as u64);
            }
        }
        if let Some((cheap, _)) = residual_split(&q.plan) {
            let cq = compile(&cheap, &self.fields, &searcher).map_err(|e| self.terr(e))?;
            let candidates = searcher.search(&cq, &Count).map_err(|e| self.terr(e))?;
            if candidates <= RESIDUAL_MAX_COUNT {
                let docs = searcher
                    .search(&cq, &tantivy::collector::DocSetCollector)
                    .map_err(|e| self.terr(e))?;
                let mut n = 0;
                for addr in docs {
                    if crate::matcher::eval(&q.plan, &self.record_at(&searcher, addr)?) {
                        n += 1;
                    }
                }
                return Ok(n);
            }
        }
        let tq = compile(&q.plan, &self.fields, &searcher).map_err(|e| self.terr(e))?;
        let n = searcher.search(&tq, &Count).map_err(|e| self.terr(e))?;
        Ok(n as u64)
    }

    /// The session with this id.
    pub fn get(&self, id: &str) -> Result<Option<SessionRecord>, IndexError> {
        let q = Query {
            expr: crate::query::Expr::Term {
                field: Some(crate::query::Field::Id),
                value: crate::query::Value::Phrase(id.to_string()),
            },
            plan: crate::query::Plan::Pred(crate::query::Pred::Eq(
                crate::query::Field::Id,
                id.to_lowercase(),
            )),
        };
        Ok(self.search(&q, 1)?.into_iter().next())
    }

    /// Total sessions in the index.
    pub fn len(&self) -> u64 {
        self.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The candidates (time, address) whose fast text columns satisfy `residual`, in the
    /// order given.
    fn verify_columns(
        &self,
        searcher: &Searcher,
        residual: &Plan,
        cands: &[(i64, DocAddress)],
    ) -> Result<Vec<DocAddress>, IndexError> {
        let mut fields = Vec::new();
        plan_fields(residual, &mut fields);
        let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
        let mut by_segment: std::collections::BTreeMap<u32, Vec<DocId>> = Default::default();
        for (_, a) in cands {
            by_segment.entry(a.segment_ord).or_default().push(a.doc_id);
        }
        let mut verifiers = std::collections::HashMap::new();
        for (seg, mut docs) in by_segment {
            docs.sort_unstable();
            let reader = searcher.segment_reader(seg);
            let v = ColumnVerifier::load(reader, &names, &docs).map_err(|e| self.terr(e))?;
            verifiers.insert(seg, v);
        }
        Ok(cands
            .iter()
            .filter(|(_, a)| {
                verifiers.get(&a.segment_ord).is_some_and(|v| {
                    eval_columns(residual, &|f| v.get(f.name(), a.doc_id)).unwrap_or(false)
                })
            })
            .map(|(_, a)| *a)
            .collect())
    }

    pub(crate) fn record_at(
        &self,
        searcher: &Searcher,
        addr: DocAddress,
    ) -> Result<SessionRecord, IndexError> {
        let doc: TantivyDocument = searcher.doc(addr).map_err(|e| self.terr(e))?;
        let bad = |message: String| IndexError::BadDocument {
            path: self.path.clone(),
            address: format!("{}/{}", addr.segment_ord, addr.doc_id),
            message,
        };
        let bytes = doc
            .get_first(self.fields.doc)
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| bad("no stored record".into()))?;
        serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))
    }
}

/// `newest` slices only when the scorers expect at least this many times `limit` matches.
const NEWEST_FIRST_MIN_RATIO: u64 = 20;
/// Above this many results `newest` orders every match at once.
const NEWEST_FIRST_MAX_LIMIT: usize = 10_000;

/// Most candidates a top-N search verifies with the record matcher (it stops at N hits).
pub const RESIDUAL_MAX_CANDIDATES: usize = 200_000;
/// Most stored records a top-N search reads to verify candidates before it lets the index
/// answer instead (each read costs a block decompression).
pub const RESIDUAL_MAX_LOADS: usize = 500;
/// Most candidates a count verifies (each costs a stored-record read).
pub const RESIDUAL_MAX_COUNT: usize = 2_000;

/// Whether `newest` may slice the time span for this plan: not when it has its own time
/// range (slices outside it find nothing) nor substring/glob terms (their scorers do their
/// work when built, once per slice).
fn windowable(p: &Plan) -> bool {
    match p {
        Plan::Pred(Pred::Time(..)) => false,
        Plan::Pred(_) | Plan::All | Plan::Nothing => !expensive(p),
        Plan::And(v) | Plan::Or(v) => v.iter().all(windowable),
        Plan::Not(x) => windowable(x),
    }
}

/// Whether a plan holds a predicate that runs an automaton over a term dictionary.
fn expensive(p: &Plan) -> bool {
    match p {
        Plan::Pred(Pred::Contains(..) | Pred::Glob(..)) => true,
        Plan::And(v) | Plan::Or(v) => v.iter().any(expensive),
        Plan::Not(x) => expensive(x),
        _ => false,
    }
}

/// For `A AND B AND …` where some parts are substring/glob terms and others are not: the
/// cheap parts (a superset of the answer) and the expensive rest (to be verified).
fn residual_split(p: &Plan) -> Option<(Plan, Plan)> {
    let Plan::And(parts) = p else {
        return None;
    };
    let (rest, cheap): (Vec<Plan>, Vec<Plan>) = parts.iter().cloned().partition(expensive);
    if cheap.is_empty() || rest.is_empty() {
        return None;
    }
    Some((Plan::And(cheap), Plan::And(rest)))
}

/// Whether every predicate of `p` is on a field with a fast text column.
fn column_verifiable(p: &Plan) -> bool {
    match p {
        Plan::All | Plan::Nothing => true,
        Plan::And(v) | Plan::Or(v) => v.iter().all(column_verifiable),
        Plan::Not(x) => column_verifiable(x),
        Plan::Pred(
            Pred::Eq(f, _) | Pred::Contains(f, _) | Pred::Glob(f, _) | Pred::Words(f, _),
        ) => FAST_TEXT.contains(f),
        Plan::Pred(_) => false,
    }
}

fn plan_fields(p: &Plan, out: &mut Vec<QField>) {
    match p {
        Plan::And(v) | Plan::Or(v) => v.iter().for_each(|x| plan_fields(x, out)),
        Plan::Not(x) => plan_fields(x, out),
        Plan::Pred(
            Pred::Eq(f, _) | Pred::Contains(f, _) | Pred::Glob(f, _) | Pred::Words(f, _),
        ) if !out.contains(f) => out.push(*f),
        _ => {}
    }
}

/// `p` on the lower-cased column values `get(field)` (as the record matcher would answer
/// on the record); `None` for a predicate the columns cannot answer.
fn eval_columns<'a>(p: &Plan, get: &dyn Fn(QField) -> &'a [String]) -> Option<bool> {
    Some(match p {
        Plan::All => true,
        Plan::Nothing => false,
        Plan::And(v) => {
            for x in v {
                if !eval_columns(x, get)? {
                    return Some(false);
                }
            }
            true
        }
        Plan::Or(v) => {
            for x in v {
                if eval_columns(x, get)? {
                    return Some(true);
                }
            }
            false
        }
        Plan::Not(x) => !eval_columns(x, get)?,
        Plan::Pred(Pred::Eq(f, v)) => get(*f).iter().any(|x| x == v),
        Plan::Pred(Pred::Contains(f, v)) => get(*f).iter().any(|x| x.contains(v.as_str())),
        Plan::Pred(Pred::Glob(f, g)) => get(*f).iter().any(|x| glob_match(g, x)),
        Plan::Pred(Pred::Words(f, toks)) => {
            let have: Vec<String> = get(*f).iter().flat_map(|x| words(x)).collect();
            toks.iter().all(|t| have.contains(t))
        }
        Plan::Pred(_) => return None,
    })
}

/// Every matching document with its start time.
struct TimedDocs;

struct TimedSegment {
    ord: u32,
    time: tantivy::columnar::Column<i64>,
    out: Vec<(i64, DocAddress)>,
}

impl Collector for TimedDocs {
    type Fruit = Vec<(i64, DocAddress)>;
    type Child = TimedSegment;

    fn for_segment(&self, ord: u32, reader: &SegmentReader) -> tantivy::Result<TimedSegment> {
        Ok(TimedSegment {
            ord,
            time: reader.fast_fields().i64(TIME)?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<Vec<(i64, DocAddress)>>,
    ) -> tantivy::Result<Vec<(i64, DocAddress)>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for TimedSegment {
    type Fruit = Vec<(i64, DocAddress)>;

    fn collect(&mut self, doc: DocId, _: tantivy::Score) {
        let t = self.time.first(doc).unwrap_or(i64::MIN);
        self.out.push((t, DocAddress::new(self.ord, doc)));
    }

    fn harvest(self) -> Vec<(i64, DocAddress)> {
        self.out
    }
}

pub(crate) fn read_payload(p: Option<&str>) -> Payload {
    p.and_then(|s| serde_json::from_str::<Payload>(s).ok())
        .filter(|p| p.version == SCHEMA_VERSION)
        .unwrap_or(Payload {
            version: SCHEMA_VERSION,
            ..Payload::default()
        })
}

/// The schema version and log position a commit payload records, whatever its version
/// (`None` when there is no readable payload: an index that never committed).
pub(crate) fn stored_version(p: Option<&str>) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(p?).ok()?;
    v.get("version")?.as_u64().map(|x| x as u32)
}

/// The log position an index of any version had consumed (for the rebuild mark).
pub(crate) fn stored_pos(p: Option<&str>) -> Option<LogPos> {
    let v: serde_json::Value = serde_json::from_str(p?).ok()?;
    serde_json::from_value(v.get("pos")?.clone()).ok()
}

pub(crate) fn rebuild_progress(data_dir: &Path, p: &Payload) -> Option<RebuildProgress> {
    let mark = p.rebuild?;
    if p.pos >= mark.old_pos {
        return None;
    }
    let log = data_dir.join("sessions");
    Some(RebuildProgress {
        from_version: mark.from_version,
        to_version: SCHEMA_VERSION,
        sessions: p.sessions,
        log_bytes_done: log_bytes_before(&log, p.pos),
        log_bytes_total: log_bytes_before(&log, mark.old_pos),
    })
}
