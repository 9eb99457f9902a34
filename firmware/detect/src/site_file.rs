//! `DIR/site.toml`: the consultant's file beside the data — site and customer names, the
//! analyst's name, notes per finding id, and level overrides per rule or per finding id.
//!
//! It lives here, not in the report, because the grades it changes are read by every
//! consumer of a finding (`kuroko findings`, console, report, bundle CSV, web) through
//! [`crate::load_findings`]. Parsed strictly: an unknown key, a level outside 1–3, an
//! override without a reason, or an override / note keyed by neither a rule nor a finding
//! id is an error naming the file, the line and the key, because a typo silently ignored
//! would put a wrong grade in front of a paying customer. The report creates the file with
//! comments when absent (`kuroko_report::site`).

use kuroko_model::config::LevelOverride;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name inside the data directory.
pub const SITE_FILE_NAME: &str = "site.toml";

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SiteFile {
    pub site: SiteSection,
    /// Analyst notes by finding id, shown with the finding.
    pub notes: BTreeMap<String, String>,
    /// Level overrides keyed by rule id (every finding of the rule) or finding id (that
    /// finding only, winning over its rule's). A reason is required; `note` is optional.
    pub overrides: BTreeMap<String, LevelOverride>,
    /// Where each key of `notes` / `overrides` was written (1-based line), for errors
    /// found after parsing (a key that names no finding).
    #[serde(skip)]
    pub lines: BTreeMap<String, usize>,
    /// The file it was read from (for messages); empty for a file built in memory.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SiteSection {
    pub name: String,
    pub customer: String,
    /// Who wrote the report (consultant, company); shown on the cover.
    pub analyst: String,
}

/// What is wrong in the site file, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct SiteFileError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl SiteFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(SITE_FILE_NAME)
    }

    /// `DIR/site.toml` parsed and validated, `None` when the file does not exist.
    pub fn load_if_present(data_dir: &Path) -> Result<Option<SiteFile>, SiteFileError> {
        let path = Self::path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SiteFileError {
                path,
                line: 0,
                message: format!("cannot read it: {e}"),
            }),
        }
    }

    /// Parses and validates what can be checked without the findings; `path` is used in
    /// messages. Keys that must name a rule or finding are checked by
    /// [`crate::overrides::check_keys`].
    pub fn parse(text: &str, path: &Path) -> Result<SiteFile, SiteFileError> {
        let err = |line: usize, message: String| SiteFileError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut file: SiteFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            err(
                line,
                e.message().split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })?;
        for (key, o) in &file.overrides {
            let header = format!("[overrides.{}]", toml_key(key));
            for (name, v) in [("vulnerability", o.vulnerability), ("threat", o.threat)] {
                if let Some(v) = v
                    && !(1..=3).contains(&v)
                {
                    return Err(err(
                        locate(text, &header, name),
                        format!(
                            "`overrides.{key}.{name}`: {v} is not a level; levels are 1, 2 or 3"
                        ),
                    ));
                }
            }
            if o.vulnerability.is_none() && o.threat.is_none() {
                return Err(err(
                    locate(text, &header, ""),
                    format!(
                        "`overrides.{key}` sets neither vulnerability nor threat; set one or remove the section"
                    ),
                ));
            }
            if o.reason.trim().is_empty() {
                return Err(err(
                    locate(text, &header, ""),
                    format!(
                        "`overrides.{key}.reason` is empty; the report shows why a grade was changed, so write the reason"
                    ),
                ));
            }
            file.lines
                .insert(format!("overrides.{key}"), locate(text, &header, ""));
        }
        for key in file.notes.keys() {
            file.lines
                .insert(format!("notes.{key}"), locate_key(text, "[notes]", key));
        }
        file.path = path.to_path_buf();
        Ok(file)
    }

    /// The line where `key` (`overrides.X` / `notes.X`) was written, 1 when unknown.
    pub fn line_of(&self, key: &str) -> usize {
        self.lines.get(key).copied().unwrap_or(1)
    }
}

/// `key` as written in a TOML table header: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
}

/// Lines of a `[section]` header compare without spaces and with either quoting.
fn same_header(line: &str, section: &str) -> bool {
    let norm = |s: &str| s.replace([' ', '"', '\''], "");
    norm(line) == norm(section)
}

/// The line of `key` inside `[section]` (or of the section header), 1-based.
pub fn locate(text: &str, section: &str, key: &str) -> usize {
    let mut in_section = false;
    let mut header = 1;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            in_section = same_header(l, section);
            if in_section {
                header = i + 1;
            }
            continue;
        }
        if in_section && !key.is_empty() && l.split_once('=').map(|(k, _)| k.trim()) == Some(key) {
            return i + 1;
        }
    }
    header
}

/// The line of a (possibly quoted) `key` inside `[section]`, else of the header.
fn locate_key(text: &str, section: &str, key: &str) -> usize {
    let quoted = toml::Value::String(key.to_string()).to_string();
    let l = locate(text, section, &quoted);
    let header = locate(text, section, "");
    if l != header {
        return l;
    }
    locate(text, section, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_levels_name_file_line_and_key() {
        let p = Path::new("/data/site.toml");
        let e = SiteFile::parse("[site]\nname = \"x\"\ncustomr = \"y\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/data/site.toml:3:"), "{e}");
        assert!(e.contains("customr"), "{e}");

        let text = "[overrides.telnet_use]\nreason = \"closed VLAN\"\nthreat = 4\n";
        let e = SiteFile::parse(text, p).unwrap_err().to_string();
        assert!(
            e.starts_with("/data/site.toml:3:") && e.contains("overrides.telnet_use.threat"),
            "{e}"
        );

        let text = "[overrides.telnet_use]\nthreat = 1\n";
        let e = SiteFile::parse(text, p).unwrap_err().to_string();
        assert!(e.contains("reason"), "{e}");

        let text = "[overrides.telnet_use]\nthreat = 1\nreason = \"mgmt VLAN\"\nnote = \"n\"\n[notes]\n\"abc\" = \"checked\"\n";
        let f = SiteFile::parse(text, p).unwrap();
        assert_eq!(f.overrides["telnet_use"].threat, Some(1));
        assert_eq!(f.overrides["telnet_use"].note.as_deref(), Some("n"));
        assert_eq!(f.notes["abc"], "checked");
        assert_eq!(f.line_of("overrides.telnet_use"), 1);
        assert_eq!(f.line_of("notes.abc"), 6);
    }
}
