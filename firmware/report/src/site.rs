//! `DIR/site.toml`: the parts of the report the consultant edits.
//!
//! Site and customer names, the analyst's name, notes per finding id and per-rule level
//! overrides with their reasons live beside the data so that a report can be regenerated
//! after edits. The file is created with explanatory comments on the first `report` when it
//! is absent (on a read-only data directory the defaults are used and nothing is written), and parsed strictly: an unknown key or a level outside 1–3 is an error naming
//! the file, the line and the key, because a typo silently ignored would put a wrong grade
//! in front of a paying customer.

use crate::error::ReportError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name inside the data directory.
pub const SITE_FILE_NAME: &str = "site.toml";

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SiteFile {
    pub site: SiteSection,
    /// Analyst notes by finding id, shown under the finding's details.
    pub notes: BTreeMap<String, String>,
    /// Level overrides by rule id; they set the grades shown and the report says so.
    pub overrides: BTreeMap<String, RuleOverride>,
}

/// Where the site file of a report came from.
#[derive(Clone, Debug, PartialEq)]
pub enum SiteOrigin {
    /// Read from `DIR/site.toml`.
    Existing,
    /// `DIR/site.toml` was absent and has just been written from the defaults.
    Created,
    /// `DIR/site.toml` was absent and the data directory cannot be written (the reason):
    /// the defaults were used and nothing was saved.
    NotWritable(String),
}

/// A write failed because nobody may write there (read-only mount, no permission), as
/// opposed to a failing disk.
fn cannot_write_here(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
    )
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SiteSection {
    pub name: String,
    pub customer: String,
    /// Who wrote the report (consultant, company); shown on the cover.
    pub analyst: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    pub vulnerability: Option<u8>,
    pub threat: Option<u8>,
    #[serde(default)]
    pub reason: String,
}

impl SiteFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(SITE_FILE_NAME)
    }

    /// Reads `DIR/site.toml`, creating it from `defaults` (with comments, and a commented
    /// note line per finding in `findings`: id and what it is) when absent. Returns the
    /// parsed file and where it came from.
    ///
    /// A data directory that cannot be written (a read-only mount: evidence on
    /// write-protected media) is not an error: the report is made from the defaults and
    /// the origin says why nothing was saved, so reading a store never needs write access.
    pub fn load_or_create(
        data_dir: &Path,
        defaults: &SiteSection,
        findings: &[(String, String)],
    ) -> Result<(SiteFile, SiteOrigin), ReportError> {
        let path = Self::path(data_dir);
        if !path.exists() {
            let text = template(defaults, findings);
            let origin = match std::fs::write(&path, &text) {
                Ok(()) => SiteOrigin::Created,
                Err(e) if cannot_write_here(&e) => SiteOrigin::NotWritable(e.to_string()),
                Err(source) => {
                    return Err(ReportError::Write {
                        path: path.clone(),
                        source,
                    });
                }
            };
            return Ok((Self::parse(&text, &path)?, origin));
        }
        Ok((Self::load(&path)?, SiteOrigin::Existing))
    }

    pub fn load(path: &Path) -> Result<SiteFile, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<SiteFile, ReportError> {
        let file: SiteFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            ReportError::SiteFile {
                path: path.to_path_buf(),
                line,
                message: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })?;
        for (rule, o) in &file.overrides {
            for (name, v) in [("vulnerability", o.vulnerability), ("threat", o.threat)] {
                if let Some(v) = v
                    && !(1..=3).contains(&v)
                {
                    return Err(ReportError::SiteFile {
                        path: path.to_path_buf(),
                        line: locate(text, &format!("[overrides.{rule}]"), name),
                        message: format!(
                            "`overrides.{rule}.{name}`: {v} is not a level; levels are 1, 2 or 3"
                        ),
                    });
                }
            }
            if o.vulnerability.is_none() && o.threat.is_none() {
                return Err(ReportError::SiteFile {
                    path: path.to_path_buf(),
                    line: locate(text, &format!("[overrides.{rule}]"), ""),
                    message: format!(
                        "`overrides.{rule}` sets neither vulnerability nor threat; set one or remove the section"
                    ),
                });
            }
            if o.reason.trim().is_empty() {
                return Err(ReportError::SiteFile {
                    path: path.to_path_buf(),
                    line: locate(text, &format!("[overrides.{rule}]"), ""),
                    message: format!(
                        "`overrides.{rule}.reason` is empty; the report shows why a grade was changed, so write the reason"
                    ),
                });
            }
        }
        Ok(file)
    }
}

/// The line of `key` inside `[section]` (or of the section header), 1-based.
fn locate(text: &str, section: &str, key: &str) -> usize {
    let mut in_section = false;
    let mut header = 1;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            in_section = l.replace(' ', "") == section.replace(' ', "");
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

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The commented file written on first use; `findings` are (id, description) pairs
/// listed as commented note lines so the consultant only has to fill them in.
pub fn template(defaults: &SiteSection, findings: &[(String, String)]) -> String {
    let mut notes = String::new();
    for (id, what) in findings {
        let what: String = what.chars().filter(|c| !c.is_control()).take(120).collect();
        notes.push_str(&format!("# {} = \"\"   # {what}\n", toml_str(id)));
    }
    if notes.is_empty() {
        notes.push_str("# \"3f2a9c0d\" = \"ユーザーに確認済み: 業務外の通信。\"\n");
    }
    format!(
        r#"# Kuroko diagnosis report: the parts a consultant edits.
# 診断レポートのうちコンサルタントが編集する項目です。
#
# Edit, then run `kuroko report` again: the report is regenerated from the data and this
# file. Unknown keys are errors (a typo must not silently change a customer's report).

[site]
# Shown on the cover and in the overview. 表紙と実施概要に表示されます。
name = {name}
customer = {customer}
# Who wrote the report (consultant / company). 作成者(担当コンサルタント・会社名)。
analyst = {analyst}

# Analyst notes per finding id (ids as `kuroko findings` prints them), shown in the
# threat details. 脅威ごとの分析者コメント (キーは検出脅威の ID)。
[notes]
{notes}
# Per-rule level overrides with the reason; the grades in the report follow them and the
# report says so. ルールごとの評価値の変更 (理由は必須、レポートに記載されます)。
# [overrides.telnet_use]
# vulnerability = 2   # 1-3
# threat = 1          # 1-3
# reason = "Telnet は閉域の管理 VLAN 内でのみ使用されている。"
"#,
        name = toml_str(&defaults.name),
        customer = toml_str(&defaults.customer),
        analyst = toml_str(&defaults.analyst),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_round_trips_and_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = SiteSection {
            name: "本社 \"DC\"".into(),
            customer: "株式会社テスト".into(),
            analyst: String::new(),
        };
        let (f, created) = SiteFile::load_or_create(
            dir.path(),
            &defaults,
            &[(
                "f-1\"x".into(),
                "Telnet の利用\n(10.0.0.1 -> 10.0.0.2)".into(),
            )],
        )
        .unwrap();
        assert_eq!(created, SiteOrigin::Created);
        assert_eq!(f.site, defaults);
        let (_, created) =
            SiteFile::load_or_create(dir.path(), &SiteSection::default(), &[]).unwrap();
        assert_eq!(created, SiteOrigin::Existing);
        let text = std::fs::read_to_string(SiteFile::path(dir.path())).unwrap();
        assert!(text.contains("# Per-rule level overrides"));
        // Uncommenting a listed finding's line and filling it in gives a valid note.
        let line = text
            .lines()
            .find(|l| l.contains("Telnet の利用(10.0.0.1 -> 10.0.0.2)"))
            .expect("the finding is listed");
        let edited = text.replace(line, &line[2..].replace("= \"\"", "= \"checked\""));
        let f = SiteFile::parse(&edited, Path::new("site.toml")).unwrap();
        assert_eq!(f.notes["f-1\"x"], "checked");
    }

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

        let text = "[overrides.telnet_use]\nthreat = 1\nreason = \"mgmt VLAN\"\n[notes]\n\"abc\" = \"checked\"\n";
        let f = SiteFile::parse(text, p).unwrap();
        assert_eq!(f.overrides["telnet_use"].threat, Some(1));
        assert_eq!(f.notes["abc"], "checked");
    }
}
