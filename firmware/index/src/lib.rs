//! Kuroko's session search: the query language, the session index, result rendering,
//! aggregations and alert conditions.
//!
//! - `query`: the Lucene/NetRAPTOR-style language of `shared/CONTRACT.md`, parsed by our own
//!   grammar into an AST that prints back to the same query, and lowered into a `Plan` that
//!   holds the semantics (field kinds, substring/word/glob rules, aliases: see `query::plan`).
//! - `values`: which values of a `SessionRecord` each field holds (shared by index and
//!   matcher); `matcher`: a `Plan` evaluated on one record (alert conditions).
//! - `schema`, `compile`, `index`: the tantivy index in `DIR/index/` and searches on it;
//!   `strcol`: substrings and globs on URL and host answered from their fast columns, and
//!   the candidates of a selective query verified from those columns;
//!   `ingest`: following the session log into it (`ingest_pending`, exactly once; an
//!   index of another schema version is rebuilt from the log, see `ingest`);
//!   `budget`: dropping the oldest hours past `[storage] index_budget`.
//! - `content`: the content index in `DIR/content/` (text of mail bodies, attachments, web
//!   and FTP transfers), fed from the session log like the session index; `body:` and
//!   `content:` terms are resolved there into session ids (`Index::resolve_content`).
//! - `files`: the file search (`kuroko search --files`), each reconstructed file judged
//!   alone against the query, with its session.
//! - `aggregate`: by protocol per hour, top talkers, transfers (fast columns only);
//!   `render`: the result table, CSV, JSONL, the detail view; `extract`: the packets of
//!   sessions, for `kuroko pcap --query`; `alerts`: saved searches delivered to the alert
//!   log, syslog and mail; `synth`: deterministic sessions for tests and the benchmark.
//!
//! Invariants: the index and the record matcher give the same answer for every query
//! (both consume the same `Plan` and the same field values; tests check that they agree);
//! the index consumes the session log exactly once (its log position is committed in the
//! same tantivy commit as the documents).
//!
//! Must never: hand user text to tantivy's `QueryParser` (it rejects `NOT(` and silently
//! matches nothing for `AND NOT (…)`); panic on a bad query or a bad record; block
//! ingestion for long on a slow mail or syslog server.

#![forbid(unsafe_code)]

pub mod aggregate;
pub mod alerts;
pub mod budget;
pub mod compile;
pub mod content;
pub mod extract;
pub mod files;
pub mod index;
pub mod ingest;
pub mod matcher;
pub mod query;
mod reader_dir;
pub mod render;
pub mod schema;
pub mod strcol;
pub mod synth;
pub mod values;

pub use index::{Hit, Index, IndexError, RebuildProgress};
/// The same as `ingest_pending` (the name `kuroko analyze` was sketched with).
pub use ingest::ingest_pending as catch_up;
pub use ingest::{IngestSummary, Ingester, ingest_pending, ingest_pending_within};
pub use query::{Query, QueryError};
/// Re-exported so callers can match on index errors.
pub use tantivy;
