//! The diagnosis report and the USB export bundle.
//!
//! The report is what the consultant's customer pays for: it follows the outline of the
//! full-packet security diagnosis service (実施概要, 総合サマリ (スコアリング), システム環境分析,
//! 検出脅威一覧, シナリオベースリスク分析・対策案, 検出脅威詳細) in Japanese or English, as a
//! self-contained HTML file (inline CSS and SVG, prints on A4) and as a PDF written directly
//! with an embedded, subset Japanese font. The export writes a findings bundle for a USB
//! stick: reports, findings and evidence sessions (JSONL and CSV), evidence pcaps,
//! reconstructed files inside a password zip, and a `MANIFEST.sha256` written last.
//!
//! How it fits: the caller (the `kuroko` binary) gathers the inputs — findings, the session
//! log, store status, the configuration and the consultant's `site.toml` — into a
//! [`ReportData`] once; [`content::build`] turns it into the report's chapters, texts and
//! numbers in one language, and both renderers only draw that content, so the HTML and the
//! PDF say the same things and both languages show the same numbers.
//!
//! Invariants:
//! - Every string that came off the wire or out of a finding is HTML-escaped before it
//!   reaches the page; reconstructed mails are shown as escaped text (never their HTML),
//!   links as text with the href beside the display text, files as name/type/size/SHA-256.
//!   Nothing from the traffic is ever embedded, linked or executed.
//! - The HTML fetches nothing: no external assets, fonts by CSS font stack only.
//! - Memory is bounded by configuration, not traffic: environment statistics are kept in
//!   hourly buckets (coarsened to days past a cap) and a capped set of protocol names.
//! - An export bundle never looks whole unless it is: it is written under `<name>.partial/`,
//!   fsynced, verified by re-reading, and only then renamed.
//!
//! Must never: write to the data directory other than creating `site.toml` when missing;
//! write an export when the target lacks the space for it; panic on bad input.

#![forbid(unsafe_code)]

pub mod certificates;
pub mod charts;
pub mod content;
pub mod data;
pub mod environment;
pub mod error;
pub mod escape;
pub mod export;
pub mod findings_csv;
pub mod html;
pub mod inputs;
pub mod objects;
pub mod pdf;
pub mod site;
pub mod texts;

pub use data::{BlindInterval, Coverage, GradedFinding, ReportData, Scenario, StoreSummary};
pub use environment::{EnvCollector, EnvStats};
pub use error::ReportError;
pub use kuroko_model::finding::Lang;
pub use site::{SiteFile, SiteOrigin};
