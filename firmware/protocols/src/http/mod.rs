//! HTTP/1.x (and WinRM, which is HTTP to `/wsman` on 5985/5986).
//!
//! `parser` holds the pure pieces (heads, URL forms, chunked bodies, content decoding,
//! titles, multipart), `state` the per-session machine that pairs pipelined requests with
//! their responses and reconstructs bodies as objects.
//!
//! What it fills: `rec.http` (first transaction at the top level, all of them in
//! `transactions`), objects of kind `http-body` for every non-empty request and response
//! body (multipart/form-data uploads: one object per file part). After a 2xx answer to
//! `CONNECT`, or a `101 Switching Protocols`, the stream is opaque and parsing stops.

pub mod parser;
mod state;
#[cfg(test)]
mod tests;

pub use state::HttpParser;
