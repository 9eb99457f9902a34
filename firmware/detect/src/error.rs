//! Errors of the detection crate. Each names what was wrong and what to do; config-related
//! ones name the config key and the file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A config value the model crate accepted but a rule cannot use.
    #[error("`{key}`: {message}")]
    Config { key: String, message: String },
    /// An intel file (reputation list, category list) named in the config cannot be read.
    #[error("`{key}`: cannot read {path}: {source}; fix the path or remove it from the list")]
    IntelRead {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// An intel file has no usable entry at all (probably the wrong file).
    #[error(
        "`{key}`: {path} has no usable entry ({bad_lines} lines could not be read); expected one CIDR or address a line, e.g. `192.0.2.0/24 ; SBL123`"
    )]
    IntelEmpty {
        key: String,
        path: PathBuf,
        bad_lines: u64,
    },
    /// The findings store cannot be read or written.
    #[error("findings store {path}: {message}")]
    Store { path: PathBuf, message: String },
    #[error("findings store {path}: {source}")]
    StoreIo {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process holds the findings store.
    #[error(
        "findings store {path} is being updated by another process (kuroko run or analyze); wait for it or stop it first"
    )]
    Busy { path: PathBuf },
    /// The session log cannot be read.
    #[error("session log {path}: {source}")]
    SessionLog {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `DIR/site.toml` is malformed or names no rule / finding.
    #[error(transparent)]
    SiteFile(#[from] crate::site_file::SiteFileError),
}
