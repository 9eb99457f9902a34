//! DNS over UDP (also LLMNR, same wire format; mDNS in [`crate::mdns`] fills the same fields) and over TCP (2-byte length
//! prefix): query name and type, response code, answers as text.
//!
//! `parser` decodes one message (name compression with loop protection); `state` keeps
//! the per-flow fields: the first query at the top level, further ones in `more_queries`.

pub mod parser;
pub(crate) mod state;

pub use state::{DnsDatagramParser, DnsStreamParser};
