//! The report crate's errors: each says what was wrong and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    SiteFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "no Japanese font for the PDF: none of {tried} exists; install the Debian package \
         fonts-ipaexfont-gothic (apt-get install fonts-ipaexfont-gothic) or pass a font file"
    )]
    FontMissing { tried: String },
    #[error("the font {path} cannot be used for the PDF: {message}")]
    FontUnusable { path: PathBuf, message: String },
    #[error("writing the PDF failed: {0}")]
    Pdf(String),
    #[error("{0}")]
    Export(String),
    #[error("bad input {what}: {message}")]
    Input { what: String, message: String },
}

impl From<kuroko_detect::SiteFileError> for ReportError {
    fn from(e: kuroko_detect::SiteFileError) -> Self {
        ReportError::SiteFile {
            path: e.path,
            line: e.line,
            message: e.message,
        }
    }
}
