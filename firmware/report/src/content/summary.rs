//! Chapter 2 (総合サマリ): the overall assessment (総評), findings per grade, every A and B
//! risk (主要なリスク), the scoring criteria.

use super::parts::*;
use super::{Block, Cell, Column, Figure, Table, TableStyle};
use crate::data::{GradedFinding, ReportData};
use crate::escape::group_digits as num;
use crate::texts::{self, tr};
use kuroko_model::finding::{Lang, Risk};

pub fn summary(d: &ReportData, lang: Lang) -> Vec<Block> {
    let counts = d.grade_counts();
    let total = d.findings.len();
    let lead = match lang {
        Lang::Ja => format!("診断期間中に {total} 件の脅威・脆弱性を検出しました。"),
        Lang::En => {
            format!("{total} threats and weaknesses were found during the diagnosis period.")
        }
    };
    let (vl, tl) = (
        tr(lang, "脆弱性レベル", "vulnerability"),
        tr(lang, "脅威レベル", "threat"),
    );
    let mut b = super::assessment::assessment(d, lang);
    b.extend([
        heading(
            "2.1",
            tr(lang, "リスク値別の検出件数", "Findings per risk grade"),
        ),
        Block::Para(lead),
        Block::Figure(Figure::GradeCards(
            counts
                .iter()
                .map(|&(r, n)| (r, n, texts::grade_meaning(lang, r.as_str())))
                .collect(),
        )),
        Block::FigureRow(vec![
            Figure::GradeHistogram {
                title: tr(lang, "リスク値別件数", "Findings per grade"),
                counts,
            },
            Figure::RiskMatrix {
                vulnerability: vl,
                threat: tl,
                counts: d.matrix(),
            },
        ]),
        heading("2.2", tr(lang, "主要なリスク", "Top risks")),
    ]);
    if d.findings.is_empty() {
        b.push(no_threats(lang));
    } else {
        // Every A and B finding (the risks to act on); without any, the five highest.
        let serious: Vec<&GradedFinding> = d
            .by_risk()
            .into_iter()
            .filter(|f| f.finding.risk <= Risk::B)
            .collect();
        let listed = if serious.is_empty() {
            d.by_risk().into_iter().take(5).collect()
        } else {
            serious
        };
        let rows = listed
            .into_iter()
            .map(|f| {
                vec![
                    Cell::Number(f.no.to_string()),
                    Cell::Score {
                        risk: f.finding.risk,
                        vulnerability: f.finding.vulnerability,
                        threat: f.finding.threat,
                    },
                    Cell::Link {
                        no: f.no,
                        text: f.title(lang),
                    },
                    Cell::Text(f.finding.category.title(lang).to_string()),
                    Cell::Number(num(f.finding.count)),
                ]
            })
            .collect();
        b.push(table(
            vec![
                Column::num("No.", Some(6)),
                Column::new(tr(lang, "リスク値", "Risk"), Some(20)),
                Column::new(tr(lang, "脅威", "Threat"), Some(38)),
                Column::new(tr(lang, "区分", "Category"), Some(26)),
                Column::num(tr(lang, "件数", "Events"), Some(10)),
            ],
            rows,
        ));
    }
    if d.overrides_applied() > 0 {
        b.push(Block::Alert(match lang {
            Lang::Ja => format!(
                "{} 件の脅威について、コンサルタントの判断により評価値を変更しています (理由は各脅威の詳細に記載)。",
                d.overrides_applied()
            ),
            Lang::En => format!(
                "The consultant changed the levels of {} findings; the reasons are given with each finding.",
                d.overrides_applied()
            ),
        }));
    }
    b.push(heading(
        "2.3",
        tr(lang, "リスクスコアリングの基準", "Risk scoring criteria"),
    ));
    b.push(para(tr(
        lang,
        "リスク分析では、「脆弱性」と「脅威」の 2 要素の相乗値からリスク値を求める。評価指標「脆弱性」は、システムに対して発生した「脅威の受容可能性」を表し、評価指標「脅威」は「攻撃手法の容易さ」や「攻撃対象の発見されやすさ」を表す。",
        "Risk is the product of two factors. Vulnerability is how readily the system would accept the threat; threat is how easy the attack is and how easily the target is found.",
    )));
    for (label, crit) in [
        (
            tr(lang, "脆弱性", "Vulnerability"),
            texts::vulnerability_criteria(lang),
        ),
        (tr(lang, "脅威", "Threat"), texts::threat_criteria(lang)),
    ] {
        b.push(Block::Table(Table {
            style: TableStyle::Plain,
            fixed: true,
            columns: vec![
                Column::num(
                    &format!("{label} {}", tr(lang, "評価値", "level")),
                    Some(14),
                ),
                Column::new(tr(lang, "具体的な判断基準", "Criteria"), None),
            ],
            rows: crit
                .iter()
                .enumerate()
                .map(|(i, c)| vec![Cell::Number((3 - i).to_string()), Cell::Text(c.to_string())])
                .collect(),
        }));
    }
    b.push(table(
        vec![
            Column::new(tr(lang, "リスク値", "Risk"), Some(12)),
            Column::new(
                tr(lang, "脆弱性 × 脅威", "Vulnerability × threat"),
                Some(24),
            ),
            Column::new(tr(lang, "判定条件", "Condition"), Some(34)),
            Column::new(tr(lang, "対応の目安", "Response"), Some(30)),
        ],
        texts::grade_rows(lang)
            .iter()
            .zip(counts)
            .map(|((g, pairs, cond), (r, _))| {
                vec![
                    Cell::Grade(r),
                    Cell::Text(pairs.to_string()),
                    Cell::Text(cond.to_string()),
                    Cell::Text(texts::grade_meaning(lang, g).to_string()),
                ]
            })
            .collect(),
    ));
    b
}
