//! 総評 (overall assessment): the few sentences a customer reads first, written from the
//! findings themselves — how many and how serious, the worst risks by name, which
//! scenarios they open, which of the site's hosts appear most, what to do first.

use super::Block;
use super::parts::*;
use crate::data::ReportData;
use crate::texts::{self, tr};
use kuroko_model::finding::{Category, Lang, Risk};
use std::collections::BTreeMap;

/// Worst findings named in the assessment.
const NAMED: usize = 3;

pub fn assessment(d: &ReportData, lang: Lang) -> Vec<Block> {
    let mut b = vec![sub(tr(lang, "総評", "Overall assessment"))];
    let by_risk = d.by_risk();
    let Some(worst) = by_risk.first() else {
        b.push(para(tr(
            lang,
            "診断期間中、リスクとして評価すべき脅威・脆弱性は検出されませんでした。引き続き定期的な診断を推奨します。",
            "No threat or weakness that needs rating was found during the diagnosis period. Regular diagnosis is still recommended.",
        )));
        return b;
    };
    let counts = d.grade_counts();
    let n = |r: Risk| {
        counts
            .iter()
            .find(|(x, _)| *x == r)
            .map(|x| x.1)
            .unwrap_or(0)
    };
    let serious = n(Risk::A) + n(Risk::B);
    let total = d.findings.len();
    let grades: Vec<String> = counts
        .iter()
        .filter(|(_, k)| *k > 0)
        .map(|(r, k)| format!("{r}: {k}"))
        .collect();
    b.push(Block::Para(match lang {
        Lang::Ja => format!(
            "診断期間中に {total} 件の脅威・脆弱性を検出しました (リスク値 {})。最も高いリスク値は {} ({}) です。",
            grades.join(", "),
            worst.finding.risk,
            texts::grade_meaning(lang, worst.finding.risk.as_str())
        ),
        Lang::En => format!(
            "{total} threats and weaknesses were found during the diagnosis period (risk {}). The highest risk is {}: {}.",
            grades.join(", "),
            worst.finding.risk,
            texts::grade_meaning(lang, worst.finding.risk.as_str()).to_lowercase()
        ),
    }));
    // The worst ones by name.
    let named: Vec<String> = by_risk
        .iter()
        .filter(|f| f.finding.risk <= Risk::B || f.no == worst.no)
        .take(NAMED)
        .map(|f| match lang {
            Lang::Ja => format!("「{}」(No.{}, {})", f.title(lang), f.no, f.finding.risk),
            Lang::En => format!("\"{}\" (No. {}, {})", f.title(lang), f.no, f.finding.risk),
        })
        .collect();
    let more = serious.saturating_sub(named.len());
    b.push(Block::Para(match lang {
        Lang::Ja => format!(
            "優先して対応すべきリスクは {}{}です。",
            named.join("、"),
            if more > 0 {
                format!(" ほか {more} 件")
            } else {
                String::new()
            }
        ),
        Lang::En => format!(
            "The risks to address first are {}{}.",
            named.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
    }));
    // Scenarios that have findings, worst first.
    let mut scen: Vec<(Category, usize, Risk)> = Category::ALL
        .iter()
        .filter_map(|c| {
            let fs: Vec<_> = d
                .findings
                .iter()
                .filter(|f| f.finding.category == *c)
                .collect();
            let worst = fs.iter().map(|f| f.finding.risk).min()?;
            Some((*c, fs.len(), worst))
        })
        .collect();
    scen.sort_by_key(|(c, _, r)| (*r, *c));
    let parts: Vec<String> = scen
        .iter()
        .map(|(c, k, r)| match lang {
            Lang::Ja => format!("{} {k} 件 (最高 {r})", texts::scenario_name(lang, *c)),
            Lang::En => format!("{} {k} (worst {r})", texts::scenario_name(lang, *c)),
        })
        .collect();
    b.push(Block::Para(match lang {
        Lang::Ja => format!("シナリオ別では、{}。", parts.join("、")),
        Lang::En => format!("By scenario: {}.", parts.join("; ")),
    }));
    // The site's hosts that appear in the most findings.
    let mut hosts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &d.findings {
        for a in [&f.finding.client, &f.finding.server].into_iter().flatten() {
            let internal = a
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| d.internal_networks.iter().any(|n| n.contains(&ip)));
            if internal {
                *hosts.entry(a.as_str()).or_default() += 1;
            }
        }
    }
    let mut hosts: Vec<(&str, usize)> = hosts.into_iter().filter(|(_, k)| *k >= 2).collect();
    hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if !hosts.is_empty() {
        let list: Vec<String> = hosts
            .iter()
            .take(3)
            .map(|(h, k)| match lang {
                Lang::Ja => format!("{h} ({k} 件)"),
                Lang::En => format!("{h} ({k})"),
            })
            .collect();
        b.push(Block::Para(match lang {
            Lang::Ja => format!(
                "複数の脅威に関係している内部ホストは {} で、これらの端末の利用状況と設定の確認を推奨します。",
                list.join("、")
            ),
            Lang::En => format!(
                "Internal hosts involved in several findings: {}; their use and configuration should be checked.",
                list.join(", ")
            ),
        }));
    }
    if d.overrides_applied() > 0 {
        b.push(Block::Para(match lang {
            Lang::Ja => format!(
                "{} 件の評価値はコンサルタントが現地の状況に基づき変更しています。",
                d.overrides_applied()
            ),
            Lang::En => format!(
                "The levels of {} findings were changed by the consultant for the site's circumstances.",
                d.overrides_applied()
            ),
        }));
    }
    b
}
