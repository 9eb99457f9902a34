//! Kuroko's session search: the query language, the session index, result rendering,
//! aggregations and alert conditions.
//!
//! - `query`: the Lucene/NetRAPTOR-style language of `shared/CONTRACT.md`, parsed by our own
//!   grammar into an AST and lowered into a `Plan` that holds the semantics.
//! - `values`: which values of a `SessionRecord` each field holds (shared by index and
//!   matcher).
//! - `matcher`: a `Plan` evaluated on one record (alert conditions).
//!
//! Invariants: the index and the record matcher give the same answer for every query
//! (both consume the same `Plan` and the same field values; tests check that they agree);
//! the index consumes the session log exactly once (its log position is committed in the
//! same tantivy commit as the documents).
//!
//! Must never: hand user text to tantivy's `QueryParser`; panic on a bad query or a bad
//! record; block ingestion on a slow mail or syslog server.

#![forbid(unsafe_code)]

pub mod aggregate;
pub mod alerts;
pub mod budget;
pub mod compile;
pub mod extract;
pub mod index;
pub mod ingest;
pub mod matcher;
pub mod query;
pub mod render;
pub mod schema;
pub mod synth;
pub mod values;

pub use index::{Hit, Index, IndexError};
/// The same as `ingest_pending` (the name `kuroko analyze` was sketched with).
pub use ingest::ingest_pending as catch_up;
pub use ingest::{IngestSummary, Ingester, ingest_pending};
pub use query::{Query, QueryError};
/// Re-exported so callers can match on index errors.
pub use tantivy;
