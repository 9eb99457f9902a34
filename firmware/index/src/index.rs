//! The session index in `DIR/index/`: open, search, count, fetch one session.
//!
//! One tantivy index for all sessions; the log position it has consumed lives in the commit
//! payload (see `ingest`). Readers never block the writer; a search sees the last commit.
//!
//! Rotation policy: the index keeps a session after the segment store has overwritten its
//! packets, because the metadata (who talked to whom, which URL, which mail) is still
//! evidence. Such sessions are *marked*: `Hit::packets_gone` is set when the caller passes
//! the store's oldest segment sequence number and the session's last packet lies before
//! it. The index keeps to its own disk budget by dropping its oldest hours
//! (`ingest::enforce_budget`).

use crate::compile::compile;
use crate::query::{Plan, Pred, Query};
use crate::schema::{Fields, SCHEMA_VERSION, TIME};
use kuroko_model::SessionRecord;
use kuroko_model::sessionlog::LogPos;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tantivy::collector::{Count, TopDocs};
use tantivy::schema::Value as _;
use tantivy::{DocAddress, IndexReader, Order, ReloadPolicy, Searcher, TantivyDocument};

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
    #[error("session log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the index stores in each commit: the session-log position it has consumed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Payload {
    pub version: u32,
    pub pos: LogPos,
    /// Sessions in the index after this commit (as counted by the ingester).
    #[serde(default)]
    pub sessions: u64,
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
        let index = tantivy::Index::open_in_dir(&path).map_err(|source| IndexError::Tantivy {
            path: path.clone(),
            source,
        })?;
        Self::from_tantivy(path, index)
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
        let searcher = self.searcher();
        if let Some(cheap) = residual_split(&q.plan) {
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
        let top = searcher
            .search(
                &tq,
                &TopDocs::with_limit(limit).order_by_fast_field::<i64>(TIME, Order::Desc),
            )
            .map_err(|e| self.terr(e))?;
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

    /// How many sessions match `q`.
    pub fn count(&self, q: &Query) -> Result<u64, IndexError> {
        let searcher = self.searcher();
        if let Some(cheap) = residual_split(&q.plan) {
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

/// Most candidates a top-N search verifies with the record matcher (it stops at N hits).
pub const RESIDUAL_MAX_CANDIDATES: usize = 200_000;
/// Most stored records a top-N search reads to verify candidates before it lets the index
/// answer instead (each read costs a block decompression).
pub const RESIDUAL_MAX_LOADS: usize = 500;
/// Most candidates a count verifies (each costs a stored-record read).
pub const RESIDUAL_MAX_COUNT: usize = 2_000;

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
/// cheap parts (a superset of the answer, to be verified with the matcher).
fn residual_split(p: &Plan) -> Option<Plan> {
    let Plan::And(parts) = p else {
        return None;
    };
    let cheap: Vec<Plan> = parts.iter().filter(|x| !expensive(x)).cloned().collect();
    if cheap.is_empty() || cheap.len() == parts.len() {
        return None;
    }
    Some(Plan::And(cheap))
}

pub(crate) fn read_payload(p: Option<&str>) -> Payload {
    p.and_then(|s| serde_json::from_str::<Payload>(s).ok())
        .filter(|p| p.version == SCHEMA_VERSION)
        .unwrap_or(Payload {
            version: SCHEMA_VERSION,
            pos: LogPos::default(),
            sessions: 0,
        })
}
