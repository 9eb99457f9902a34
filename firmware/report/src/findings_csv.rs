//! The findings CSV: one schema, written by [`write`] alone, for `kuroko findings
//! --format csv` and the bundle's `findings/findings.csv`, so a consultant's spreadsheet
//! reads either the same way.
//!
//! Excel-ready: UTF-8 with a byte-order mark (Japanese Excel otherwise reads Shift_JIS and
//! garbles every title), CRLF line ends, one finding a row sorted by risk (A first, the
//! report's `no`), lists joined with `LIST_SEPARATOR` only, every cell through
//! [`kuroko_model::csv_cell::defuse`] (values came off the wire), and times as RFC 3339 with
//! the site's offset (`2026-11-18T09:00:00+09:00`) so a person reads local time and a
//! program still parses it.

use crate::data::{GradedFinding, grade_all};
use crate::error::ReportError;
use crate::site::SiteFile;
use kuroko_model::config::Config;
use kuroko_model::finding::{Finding, Lang};
use std::path::Path;

/// The one separator of list cells (ATT&CK ids, countermeasures, evidence, signals).
pub const LIST_SEPARATOR: &str = "; ";

/// The columns, in order.
pub const COLUMNS: [&str; 25] = [
    "no",
    "id",
    "risk",
    "vulnerability",
    "threat",
    "rule",
    "title",
    "category",
    "attack",
    "client",
    "server",
    "first_seen",
    "last_seen",
    "count",
    "signals",
    "countermeasures",
    "evidence",
    "evidence_count",
    "override_reason",
    "analyst_note",
    "original_risk",
    "bytes_up",
    "bytes_down",
    "packets_up",
    "packets_down",
];

/// UTF-8 byte-order mark.
const BOM: &str = "\u{feff}";

/// The CSV of `findings` (graded, numbered by risk as [`grade_all`] leaves them) in `lang`,
/// times in `tz`.
pub fn write(findings: &[GradedFinding], lang: Lang, tz: &chrono_tz::Tz) -> Vec<u8> {
    let mut rows: Vec<&GradedFinding> = findings.iter().collect();
    rows.sort_by_key(|g| g.no);
    let mut out = String::from(BOM);
    push_row(&mut out, COLUMNS.iter().map(|c| c.to_string()));
    for g in rows {
        let f = &g.finding;
        // A volume that could not be counted is four empty cells, not four zeros.
        let volume = |n: u64| {
            if f.volume.unknown {
                String::new()
            } else {
                n.to_string()
            }
        };
        push_row(
            &mut out,
            [
                g.no.to_string(),
                f.id.clone(),
                f.risk.to_string(),
                f.vulnerability.to_string(),
                f.threat.to_string(),
                f.rule.clone(),
                g.title(lang),
                f.category.as_str().to_string(),
                f.attack.join(LIST_SEPARATOR),
                f.client.clone().unwrap_or_default(),
                f.server.clone().unwrap_or_default(),
                f.first_seen.rfc3339_in(tz),
                f.last_seen.rfc3339_in(tz),
                f.count.to_string(),
                g.signals(lang).join(LIST_SEPARATOR),
                g.countermeasures(lang).join(LIST_SEPARATOR),
                f.evidence.join(LIST_SEPARATOR),
                f.evidence.len().to_string(),
                g.override_reason.clone().unwrap_or_default(),
                g.note.clone().unwrap_or_default(),
                g.original_risk.to_string(),
                volume(f.volume.bytes_up),
                volume(f.volume.bytes_down),
                volume(f.volume.packets_up),
                volume(f.volume.packets_down),
            ]
            .into_iter(),
        );
    }
    out.into_bytes()
}

/// The CSV of a data directory's findings as `kuroko findings` has them: graded with the
/// configuration's and `DIR/site.toml`'s overrides and notes exactly as the report and
/// the bundle grade them. A missing `site.toml` is not created (reading needs no write
/// access); a broken one is an error naming the file.
pub fn for_data_dir(
    data_dir: &Path,
    config: &Config,
    findings: Vec<Finding>,
    lang: Lang,
) -> Result<Vec<u8>, ReportError> {
    let site = SiteFile::load_if_present(data_dir)?.unwrap_or_default();
    let tz = config.site.tz().unwrap_or(chrono_tz::Asia::Tokyo);
    Ok(write(&grade_all(findings, config, &site), lang, &tz))
}

fn push_row(out: &mut String, cells: impl Iterator<Item = String>) {
    for (i, c) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(&kuroko_model::csv_cell::defuse(&c)));
    }
    out.push_str("\r\n");
}

/// RFC 4180 quoting.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
