//! YARA for Kuroko: compiles the site's rule files and the intel packs' ones, and scans
//! reconstructed files (HTTP bodies, FTP transfers, mails and their attachments) with them.
//!
//! Engine: libyara 4.2 (Debian's `libyara-dev`), linked statically through a dozen
//! hand-declared functions ([`sys`]), so the binary needs only libc/libm at run time (the
//! appliance image gains no package). Measured on the 2-core build box (`docs/YARA.md`):
//! `yara-x` 1.22 pulls wasmtime and cranelift (154 crates, 306 CPU-seconds of cold dev
//! build); this crate builds in seconds. The `yara` crate (yara-rust) needs bindgen
//! (libclang) for 4.2, or ships bindings for 4.5.5 only, whose layouts 4.2 does not share.
//!
//! Invariants:
//! - A rule set that does not compile is never half used: [`compile`] returns every error
//!   with its file and line, and the caller keeps the last good set ([`scanner`]).
//! - A scan is bounded: files over the size limit are not scanned and a scan stops at
//!   the time limit (libyara's timeout, whole seconds); both are counted by the caller.
//! - Callbacks from libyara never unwind (they only push to a `Vec`).
//!
//! Must never: download rules, or run a rule's external modules on anything but the
//! bytes handed to [`Rules::scan`].

#![deny(unsafe_code)]

pub mod levels;
pub mod scanner;
pub mod sources;
pub mod sys;

use std::fmt;
use std::path::PathBuf;

pub use levels::level_of;
pub use scanner::{Limits, Outcome, Scanner, State};
pub use sources::{RULE_EXTENSIONS, rule_files};
pub use sys::{Rules, compile};

/// One error of a rule file, as libyara reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompileError {
    pub file: PathBuf,
    pub line: u32,
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Every error of a compilation (libyara goes on after the first one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileErrors(pub Vec<CompileError>);

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        f.write_str(" (fix the rule file or remove it; the YARA rules are not compiled)")
    }
}

impl std::error::Error for CompileErrors {}

/// A rule that matched, with the level its metadata asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub rule: String,
    /// `A`–`E` from `kuroko_level` or `severity` ([`levels`]).
    pub level: Option<char>,
}

/// Why a scan did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("the scan took longer than the time limit")]
    Timeout,
    #[error("libyara failed with error {0}")]
    Failed(i32),
}

#[cfg(test)]
mod tests;
