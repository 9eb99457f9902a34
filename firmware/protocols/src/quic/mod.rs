//! QUIC (UDP, usually 443): the TLS ClientHello inside the client's Initial packets —
//! SNI, ALPN, JA3 and JA4 (`q…`) — and the ServerHello inside the server's (negotiated
//! cipher). Initial packets are protected with keys anyone can derive from the client's
//! Destination Connection ID (RFC 9001 5.2), so an observer can read them; everything
//! after the Initials is not readable and not tried. QUIC v1 only.

pub mod parser;
mod state;

pub use state::QuicParser;
