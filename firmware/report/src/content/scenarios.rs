//! Chapter 5 (シナリオベースリスク分析): one scenario per category, with the reasoning.

use super::parts::*;
use super::{Block, ReasonItem};
use crate::data::{GradedFinding, OverrideSource, ReportData};
use crate::texts::{self, tr};
use kuroko_model::finding::Lang;

pub fn scenarios(d: &ReportData, lang: Lang) -> Vec<Block> {
    let scen = d.scenarios(lang);
    let mut b = Vec::new();
    if scen.is_empty() {
        b.push(para(tr(
            lang,
            "リスクシナリオに該当する脅威はありません。",
            "No finding makes up a risk scenario.",
        )));
    }
    for (i, s) in scen.iter().enumerate() {
        b.push(Block::Heading(format!(
            "5.{} {}",
            i + 1,
            texts::scenario_name(lang, s.category)
        )));
        b.push(muted(texts::scenario_story(lang, s.category)));
        b.push(Block::RiskBox {
            label: tr(lang, "リスク値", "Risk"),
            risk: s.risk,
            vulnerability: s.vulnerability,
            threat: s.threat,
        });
        b.push(sub(tr(lang, "評価の根拠", "Reasoning")));
        b.push(Block::Reasoning(
            s.findings
                .iter()
                .map(|f| {
                    let mut blocks = reasoning(f, lang);
                    if let Some(r) = &f.override_reason {
                        blocks.push(Block::Alert(override_text(f, r, lang)));
                    }
                    ReasonItem {
                        no: f.no,
                        title: f.title(lang),
                        levels: format!(
                            "{} {} / {} {}",
                            tr(lang, "脆弱性レベル", "vulnerability"),
                            f.finding.vulnerability,
                            tr(lang, "脅威レベル", "threat"),
                            f.finding.threat
                        ),
                        risk: f.finding.risk,
                        blocks,
                    }
                })
                .collect(),
        ));
        b.push(sub(tr(lang, "対応策", "Countermeasures")));
        b.push(Block::Numbered(s.countermeasures.clone()));
    }
    b
}

/// The rule's reasoning as a paragraph, then what this finding's traffic showed.
pub(super) fn reasoning(f: &GradedFinding, lang: Lang) -> Vec<Block> {
    let mut b = Vec::new();
    if let Some(t) = texts::rule_text(&f.finding.rule, lang) {
        b.push(para(t.reasoning));
    }
    let signals = f.signals(lang);
    if !signals.is_empty() {
        b.push(muted(tr(
            lang,
            "検知の根拠となった通信の特徴:",
            "What the traffic showed:",
        )));
        b.push(Block::Bullets(signals.to_vec()));
    }
    b
}

pub(super) fn override_text(f: &GradedFinding, reason: &str, lang: Lang) -> String {
    let src = match f.override_source {
        Some(OverrideSource::SiteFile) => "site.toml",
        _ => tr(lang, "設定ファイル", "configuration"),
    };
    let (v0, t0, r0) = (f.original_vulnerability, f.original_threat, f.original_risk);
    let (v, t, r) = (f.finding.vulnerability, f.finding.threat, f.finding.risk);
    match lang {
        Lang::Ja => format!(
            "コンサルタントによる評価値の変更 ({src}): 脆弱性 {v0} × 脅威 {t0} = {r0} → 脆弱性 {v} × 脅威 {t} = {r}。理由: {reason}"
        ),
        Lang::En => format!(
            "Levels changed by the consultant ({src}): vulnerability {v0} × threat {t0} = {r0} → vulnerability {v} × threat {t} = {r}. Reason: {reason}"
        ),
    }
}
