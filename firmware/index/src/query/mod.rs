//! The query language of `shared/CONTRACT.md` (Lucene/NetRAPTOR style).
//!
//! Text → `lexer` → `parser` → `ast::Expr` (prints back to text) → `plan::Plan` (what it
//! means). We never hand user text to tantivy's own `QueryParser`: it rejects `NOT(` and
//! silently matches nothing for `AND NOT (…)` (`shared/research/crates.md` §6).
//!
//! Limits on hostile input are the constants below; each error carries the column.

pub mod ast;
pub mod fields;
pub mod lexer;
pub mod local;
pub mod parser;
pub mod plan;
pub mod resolve;

pub use ast::{Expr, Value};
pub use fields::{Field, Kind};
pub use plan::{Plan, Pred};

use std::fmt;

/// Longest query accepted, in bytes: far more than any hand-typed query, small enough that
/// parsing and planning stay instant.
pub const MAX_QUERY_LEN: usize = 4096;
/// Deepest nesting of parentheses and NOTs (recursion depth of the parser and matcher).
pub const MAX_DEPTH: usize = 32;
/// Most terms (field values) in one query: each becomes one or more index lookups.
pub const MAX_TERMS: usize = 256;
/// Most wildcards in one value: each `*` multiplies the automaton's work on the term
/// dictionary.
pub const MAX_WILDCARDS: usize = 16;

/// A malformed query, with the column (1-based, in characters) where it went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct QueryError {
    pub column: usize,
    pub message: String,
    pub query: String,
}

impl QueryError {
    pub fn new(query: &str, byte_offset: usize, message: String) -> Self {
        let off = byte_offset.min(query.len());
        let column = query.char_indices().take_while(|(i, _)| *i < off).count() + 1;
        QueryError {
            column,
            message,
            query: query.to_string(),
        }
    }
}

impl fmt::Display for QueryError {
    /// `query error at column 7: …`, then the query and a caret under the column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "query error at column {}: {}", self.column, self.message)?;
        let shown: String = self
            .query
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        writeln!(f, "  {shown}")?;
        write!(f, "  {}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

/// A parsed and lowered query.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub expr: Expr,
    pub plan: Plan,
}

impl Query {
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let expr = parser::parse(text)?;
        let plan = Plan::from_expr(&expr).map_err(|e| QueryError::new(text, 0, e.to_string()))?;
        Ok(Query { expr, plan })
    }

    /// Parses with the site's time: local times without an offset are in `site.tz`,
    /// `time:business` / `time:night` are the site's business hours / the rest
    /// (see [`local`]).
    pub fn parse_local(text: &str, site: &local::SiteTime) -> Result<Query, QueryError> {
        let expr = parser::parse_with(text, Some(site))?;
        let expr = local::localize(&expr, site);
        let plan = Plan::from_expr(&expr).map_err(|e| QueryError::new(text, 0, e.to_string()))?;
        Ok(Query { expr, plan })
    }

    /// Every session.
    pub fn all() -> Query {
        Query {
            expr: Expr::All,
            plan: Plan::All,
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl std::str::FromStr for Query {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Query::parse(s)
    }
}

#[cfg(test)]
mod tests;
