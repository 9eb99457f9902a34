//! TLS (any port): ClientHello (SNI, offered version, ALPN, JA3, JA4), ServerHello
//! (negotiated version and cipher), and the server certificate's subject and issuer
//! where it is still in the clear (TLS ≤ 1.2).
//!
//! Records are reassembled and handshake messages defragmented here (a ClientHello with
//! post-quantum key shares spans several records); tls-parser decodes the messages. A
//! direction stops being parsed at ChangeCipherSpec or the first encrypted record, so the
//! bulk of a TLS session costs nothing.

pub mod cert;
pub mod parser;
mod state;
#[cfg(test)]
pub(crate) mod tests;

pub use state::TlsParser;
