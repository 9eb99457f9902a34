//! PostgreSQL (frontend/backend protocol 3): only what decides whether the rest of the
//! stream is TLS. A client that wants TLS sends an 8-byte `SSLRequest` before anything
//! else; the server answers one byte, `S` (TLS follows, handed to `crate::upgrade`) or
//! `N` (plain, flag `postgresql_ssl_refused`). `GSSENCRequest` answered `G` is GSSAPI
//! encryption, which stays opaque (flag `postgresql_gssenc`).

mod state;

pub use state::PostgresParser;
