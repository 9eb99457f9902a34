//! The consultant's grading, applied in one place.
//!
//! A finding's levels are the rule's defaults (the catalog), then `[detect.overrides.<rule>]`
//! of the configuration, then `[overrides.<rule>]` of `DIR/site.toml`, then
//! `[overrides.<finding id>]` of `DIR/site.toml` (the most specific wins). The analyst's
//! note is `[notes]."<finding id>"`, else the winning override's `note`. Every reader of a
//! finding's grade gets it through [`crate::load_findings`] (findings, console, web,
//! evidence export) or calls [`apply`] on findings it read elsewhere (the report's JSONL
//! input), so no two outputs can show different grades for one finding.

use crate::catalog::RuleId;
use crate::site_file::{SiteFile, SiteFileError};
use kuroko_model::config::LevelOverride;
use kuroko_model::finding::{Finding, Lang, OverrideSource, Risk};
use std::collections::BTreeMap;

/// Every key of `site`'s `[overrides]` must be a rule id (built in, or the rule of one of
/// `findings`) or the id of one of `findings`; every key of `[notes]` a finding id.
/// Otherwise the override would be silently ignored.
pub fn check_keys(site: &SiteFile, findings: &[Finding]) -> Result<(), SiteFileError> {
    let is_finding = |k: &str| findings.iter().any(|f| f.id == k);
    let is_rule = |k: &str| RuleId::parse(k).is_some() || findings.iter().any(|f| f.rule == k);
    let example = findings
        .first()
        .map(|f| format!(" (e.g. `{}`)", f.id))
        .unwrap_or_default();
    for key in site.overrides.keys() {
        if !is_rule(key) && !is_finding(key) {
            return Err(SiteFileError {
                path: site.path.clone(),
                line: site.line_of(&format!("overrides.{key}")),
                message: format!(
                    "`overrides.{key}`: no rule and no finding has this id; use a rule id ({}) or a finding id as `kuroko findings` prints it{example}",
                    crate::rule_ids().join(", ")
                ),
            });
        }
    }
    for key in site.notes.keys() {
        if !is_finding(key) {
            return Err(SiteFileError {
                path: site.path.clone(),
                line: site.line_of(&format!("notes.{key}")),
                message: format!(
                    "`notes.{key}`: no finding has this id; use a finding id as `kuroko findings` prints it{example}"
                ),
            });
        }
    }
    Ok(())
}

/// Sets `f`'s levels, risk, override reason and source, and note from the configuration's
/// per-rule overrides and the site file. Idempotent; callers re-sort afterwards
/// ([`Finding::report_order`]) since the risk may have changed.
pub fn apply(
    f: &mut Finding,
    config: &BTreeMap<String, LevelOverride>,
    site: Option<&SiteFile>,
    lang: Lang,
) {
    if f.override_reason.is_some() && f.override_source.is_none() {
        // A record written before `override_source` existed: detections applied the
        // configuration's override.
        f.override_source = Some(OverrideSource::Config);
    }
    let mut chosen: Option<(&LevelOverride, OverrideSource)> = None;
    if let Some(o) = config.get(&f.rule) {
        chosen = Some((o, OverrideSource::Config));
    }
    let site_overrides = site.map(|s| &s.overrides);
    for key in [&f.rule, &f.id] {
        if let Some(o) = site_overrides.and_then(|m| m.get(key.as_str())) {
            chosen = Some((o, OverrideSource::SiteFile));
        }
    }
    if let Some((o, source)) = chosen {
        // Levels set by this override; the other one stays the rule's default.
        let (dv, dt) = RuleId::parse(&f.rule)
            .map(|r| (r.info().vulnerability, r.info().threat))
            .unwrap_or((f.vulnerability, f.threat));
        let (dv, dt) = if f.override_source.is_some() {
            (dv, dt)
        } else {
            (f.vulnerability, f.threat)
        };
        f.vulnerability = o.vulnerability.unwrap_or(dv).clamp(1, 3);
        f.threat = o.threat.unwrap_or(dt).clamp(1, 3);
        f.override_reason = Some(if o.reason.trim().is_empty() {
            match lang {
                Lang::Ja => "コンサルタントによるレベル変更 (理由の記載なし)".to_string(),
                Lang::En => "levels changed by the consultant (no reason given)".to_string(),
            }
        } else {
            o.reason.clone()
        });
        f.override_source = Some(source);
        if let Some(n) = &o.note {
            f.note = Some(n.clone());
        }
    }
    if let Some(n) = site.and_then(|s| s.notes.get(&f.id)) {
        f.note = Some(n.clone());
    }
    f.risk = Risk::from_levels(f.vulnerability, f.threat);
}

/// [`check_keys`], then [`apply`] to each finding, then sorts highest risk first.
pub fn apply_all(
    findings: &mut [Finding],
    config: &BTreeMap<String, LevelOverride>,
    site: Option<&SiteFile>,
    lang: Lang,
) -> Result<(), SiteFileError> {
    if let Some(s) = site {
        check_keys(s, findings)?;
    }
    for f in findings.iter_mut() {
        apply(f, config, site, lang);
    }
    findings.sort_by(Finding::report_order);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::Timestamp;
    use kuroko_model::finding::Category;
    use std::path::Path;

    fn finding(id: &str, rule: RuleId) -> Finding {
        let info = rule.info();
        Finding {
            id: id.into(),
            rule: rule.as_str().into(),
            title: String::new(),
            category: Category::Other,
            attack: vec![],
            client: None,
            server: None,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            count: 1,
            vulnerability: info.vulnerability,
            threat: info.threat,
            risk: Risk::from_levels(info.vulnerability, info.threat),
            countermeasures: vec![],
            evidence: vec![],
            signals: vec![],
            override_reason: None,
            override_source: None,
            note: None,
            volume: Default::default(),
        }
    }

    #[test]
    fn a_finding_id_override_changes_only_that_finding_and_wins_over_its_rule() {
        let text = "[overrides.bad_reputation_ip]\nthreat = 1\nreason = \"scanner noise\"\n\n[overrides.F00000000000000c2]\nvulnerability = 3\nthreat = 3\nreason = \"C2 beacons\"\nnote = \"host reimaged\"\n";
        let site = SiteFile::parse(text, Path::new("site.toml")).unwrap();
        let mut fs = vec![
            finding("F00000000000000aa", RuleId::BadReputationIp),
            finding("F00000000000000c2", RuleId::BadReputationIp),
        ];
        apply_all(&mut fs, &BTreeMap::new(), Some(&site), Lang::En).unwrap();
        assert_eq!(fs[0].id, "F00000000000000c2", "re-sorted: A first");
        assert_eq!(
            (fs[0].risk, fs[0].note.as_deref()),
            (Risk::A, Some("host reimaged"))
        );
        assert_eq!(fs[0].override_reason.as_deref(), Some("C2 beacons"));
        assert_eq!(fs[1].risk, Risk::D, "the rule's override: 2 x 1");
        assert_eq!(fs[1].override_source, Some(OverrideSource::SiteFile));
        // Idempotent: applying again (the report does) changes nothing.
        let again = fs.clone();
        apply_all(&mut fs, &BTreeMap::new(), Some(&site), Lang::En).unwrap();
        assert_eq!(fs, again);
    }

    #[test]
    fn an_override_or_note_naming_no_rule_and_no_finding_is_an_error_with_its_line() {
        let fs = vec![finding("F00000000000000aa", RuleId::TelnetUse)];
        let text = "[notes]\n\"F00000000000000aa\" = \"ok\"\n\n[overrides.F0123456789abcdef]\nthreat = 1\nreason = \"typo\"\n";
        let site = SiteFile::parse(text, Path::new("/d/site.toml")).unwrap();
        let e = check_keys(&site, &fs).unwrap_err().to_string();
        assert!(
            e.starts_with("/d/site.toml:4:") && e.contains("overrides.F0123456789abcdef"),
            "{e}"
        );
        let text = "[notes]\n\"Fnope\" = \"x\"\n";
        let site = SiteFile::parse(text, Path::new("/d/site.toml")).unwrap();
        let e = check_keys(&site, &fs).unwrap_err().to_string();
        assert!(
            e.starts_with("/d/site.toml:2:") && e.contains("notes.Fnope"),
            "{e}"
        );
    }
}
