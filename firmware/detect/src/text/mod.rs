//! Text helpers shared by the rules: host names and URL decoding.

pub mod domain;
pub mod percent;
