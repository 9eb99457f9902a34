//! Text helpers shared by the rules: host names, URL decoding, archive listings.

pub mod domain;
pub mod percent;
pub mod zip;
