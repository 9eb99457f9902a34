//! Template for the next protocol: copy this folder to `src/<proto>/`, rename
//! `TemplateParser`, fill `parser.rs` (pure decoding of one message) and `state.rs` (the
//! per-session machine), then:
//! 1. register it in `stream_parser` / `datagram_parser` (lib.rs) under its label;
//! 2. teach `identify` its signature (and `ports` its port);
//! 3. add real transcripts to `fuzz/corpus/<proto>/` (`fuzz/pcap2transcript.py`), a
//!    target name in `fuzz::TARGETS`, tests with `testutil::run_all_cuts`;
//! 4. every limit a named constant, every anomaly a `rec.flag("malformed:<proto>")`.
//!
//! It compiles and is tested so that it stays a working starting point: this skeleton
//! parses a line-based protocol and records its first line as a flag-free session.

pub mod parser;
mod state;

pub use state::TemplateParser;
