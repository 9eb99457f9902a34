//! The records every part of the firmware agrees on.
//!
//! Session records (what the analyzer emits), finding records (what detections emit) and the
//! configuration file are the interfaces that scripts, tests and users rely on
//! (`shared/CONTRACT.md`). They live in this small crate so that the analyzer, detections,
//! search, console and report all speak the same types and none depends on another's
//! internals.
//!
//! Invariants: serialising a record gives exactly the JSON keys of the contract (extra keys
//! are allowed, required keys are never skipped); parsing a config never panics and every
//! error names the file, the line and the key.

#![forbid(unsafe_code)]

pub mod certs;
pub mod config;
pub mod csv_cell;
pub mod finding;
pub mod log_budget;
pub mod objects;
pub mod session;
pub mod sessionlog;
pub mod time;
pub mod units;

pub use finding::{Category, Finding, Risk};
pub use session::SessionRecord;
pub use time::Timestamp;
