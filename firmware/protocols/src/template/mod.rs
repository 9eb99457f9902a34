//! Template for the next protocol: copy this folder to `src/<proto>/`, rename
//! `TemplateParser`, fill `parser.rs` (pure decoding of one message) and `state.rs` (the
//! per-session machine), then:
//! 1. register it in `stream_parser` / `datagram_parser` (lib.rs) under its label;
//! 2. teach `identify` its signature (and `ports` its port);
//! 3. add real transcripts to `fuzz/corpus/<proto>/` (`fuzz/pcap2transcript.py`), a
//!    target name in `fuzz::TARGETS`, tests with `testutil::run_all_cuts`;
//! 4. every limit a named constant, every anomaly a `rec.flag("malformed:<proto>")`;
//! 5. if the protocol can switch to another midway (STARTTLS, CONNECT, an upgrade
//!    request): when the *server accepts*, stop parsing, keep a
//!    [`crate::upgrade::Upgrade`] with every byte after the switch point you were already
//!    given, return it from `StreamParser::take_upgrade`, and register the parser with
//!    `upgrade::layered(...)` in `stream_parser`. The wrapper records the `tunnel`, finds
//!    out what the stream now carries and feeds that parser (see `crate::upgrade`, and
//!    `mail::smtp` / `postgres` for a line-based and a binary example). Hold the client's
//!    bytes between the request and the answer (`upgrade::AwaitingAnswer` for line-based
//!    protocols): a refusal means they are still your protocol.
//!
//! It compiles and is tested so that it stays a working starting point: this skeleton
//! parses a line-based protocol and records its first line as a flag-free session.

pub mod parser;
mod state;

pub use state::TemplateParser;
