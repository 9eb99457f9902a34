//! The leaf certificate judgment `weak_tls` uses: `kuroko_model::certs`, re-exported here
//! for the rule authors (one function shared with the report's §3.7 and `kuroko search`).

pub use kuroko_model::certs::*;
