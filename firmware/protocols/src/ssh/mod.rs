//! SSH: the version banners of both sides (`SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`).
//!
//! RFC 4253 4.2 lets the server send other lines before its version line; they are
//! skipped (up to a limit). After the banner the stream is binary packets and, soon,
//! encrypted: the direction stops being parsed.

mod state;

pub use state::SshParser;
