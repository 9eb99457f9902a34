//! Chapter 4 (検出脅威一覧): the findings in report order (by risk, No. 1 first), with the
//! category of each, as in the service's table.

use super::parts::*;
use super::{Block, Cell, Column, Table, TableStyle};
use crate::data::{GradedFinding, ReportData};
use crate::texts::tr;
use kuroko_model::finding::{Category, Lang};

pub fn threats(d: &ReportData, lang: Lang) -> Vec<Block> {
    let mut b = vec![heading(
        "4.1",
        tr(lang, "イベント検知ステータス", "Event detection status"),
    )];
    if d.findings.is_empty() {
        b.push(no_threats(lang));
        return b;
    }
    // In report order (No. 1 the highest risk), the category cell spanning consecutive
    // findings of one category like the brochure's table.
    let mut rows = Vec::new();
    let fs: Vec<&GradedFinding> = d.findings.iter().collect();
    let mut i = 0;
    while i < fs.len() {
        let c: Category = fs[i].finding.category;
        let run = fs[i..]
            .iter()
            .take_while(|f| f.finding.category == c)
            .count();
        for (k, f) in fs[i..i + run].iter().enumerate() {
            rows.push(vec![
                Cell::Number(f.no.to_string()),
                if k == 0 {
                    Cell::Group {
                        text: c.title(lang).to_string(),
                        rows: run,
                    }
                } else {
                    Cell::Covered
                },
                Cell::Link {
                    no: f.no,
                    text: f.title(lang),
                },
                Cell::Address(d.endpoint_label(f.finding.client.as_deref(), lang)),
                Cell::Address(d.endpoint_label(f.finding.server.as_deref(), lang)),
                Cell::Grade(f.finding.risk),
                Cell::Bullets(f.countermeasures(lang)),
            ]);
        }
        i += run;
    }
    b.push(Block::Table(Table {
        style: TableStyle::Threats,
        fixed: true,
        columns: vec![
            Column::num("No.", Some(4)),
            Column::new(tr(lang, "区分", "Category"), Some(13)),
            Column::new(tr(lang, "検出内容", "Finding"), Some(17)),
            Column::new(tr(lang, "送信元", "Source"), Some(13)),
            Column::new(tr(lang, "宛先", "Destination"), Some(13)),
            Column::num(tr(lang, "リスク値", "Risk"), Some(7)),
            Column::new(tr(lang, "対応策", "Countermeasures"), Some(33)),
        ],
        rows,
    }));
    b
}
