//! LDAP (RFC 4511) over TCP: only what decides whether the rest of the stream is TLS.
//! StartTLS is an ExtendedRequest named `1.3.6.1.4.1.1466.20037`; an ExtendedResponse
//! with the same message id and resultCode 0 hands the stream to TLS (`crate::upgrade`),
//! any other result keeps it plain (flag `ldap_starttls_refused`).
//!
//! Messages are BER: a SEQUENCE holding the message id (INTEGER) and the operation
//! (`[APPLICATION n]`). Bind passwords are never looked at.

pub mod parser;
mod state;

pub use state::LdapParser;
