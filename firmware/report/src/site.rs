//! `DIR/site.toml`: the parts of the report the consultant edits.
//!
//! Site and customer names, the analyst's name, notes per finding id and level overrides
//! per rule or finding id with their reasons live beside the data so that a report can be
//! regenerated after edits. The file's format, its strict parsing and the overrides'
//! application belong to detections (`kuroko_detect::site_file`, `kuroko_detect::overrides`),
//! since every reader of a grade follows them; here the file is created with explanatory
//! comments on the first `report` when it is absent (on a read-only data directory the
//! defaults are used and nothing is written).

use crate::error::ReportError;
pub use kuroko_detect::site_file::{SITE_FILE_NAME, SiteFile, SiteSection};
use std::path::Path;

/// A per-rule or per-finding level override (`[overrides.<rule or finding id>]`).
pub type RuleOverride = kuroko_model::config::LevelOverride;

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
    let path = SiteFile::path(data_dir);
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
        return Ok((parse(&text, &path)?, origin));
    }
    Ok((load(&path)?, SiteOrigin::Existing))
}

pub fn load(path: &Path) -> Result<SiteFile, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates ([`SiteFile::parse`]); `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<SiteFile, ReportError> {
    SiteFile::parse(text, path).map_err(ReportError::from)
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
# Level overrides per rule id or per finding id (the finding's wins), with the reason and
# an optional note; `kuroko findings`, the console, the report and the bundle follow them.
# ルール単位または検出脅威 ID 単位の評価値の変更 (理由は必須、レポートに記載されます)。
# [overrides.telnet_use]
# vulnerability = 2   # 1-3
# threat = 1          # 1-3
# reason = "Telnet は閉域の管理 VLAN 内でのみ使用されている。"
# note = "管理者に確認済み"   # optional
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
        let (f, created) = load_or_create(
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
        let (_, created) = load_or_create(dir.path(), &SiteSection::default(), &[]).unwrap();
        assert_eq!(created, SiteOrigin::Existing);
        let text = std::fs::read_to_string(SiteFile::path(dir.path())).unwrap();
        assert!(text.contains("# Level overrides per rule id or per finding id"));
        // Uncommenting a listed finding's line and filling it in gives a valid note.
        let line = text
            .lines()
            .find(|l| l.contains("Telnet の利用(10.0.0.1 -> 10.0.0.2)"))
            .expect("the finding is listed");
        let edited = text.replace(line, &line[2..].replace("= \"\"", "= \"checked\""));
        let f = parse(&edited, Path::new("site.toml")).unwrap();
        assert_eq!(f.notes["f-1\"x"], "checked");
    }
}
