//! Small builders the chapters share: key/value rows, headings, "unknown" values.

use super::{Block, Cell, Column, Table, TableStyle};
use crate::data::ReportData;
use crate::escape::group_digits as num;
use crate::texts::tr;
use kuroko_model::finding::Lang;
use kuroko_model::units::format_bytes;

pub(super) fn unknown(lang: Lang) -> String {
    tr(lang, "不明", "unknown").to_string()
}

pub(super) fn opt_num(v: Option<u64>, lang: Lang) -> String {
    v.map(num).unwrap_or_else(|| unknown(lang))
}

pub(super) fn opt_bytes(v: Option<u64>, lang: Lang) -> String {
    v.map(format_bytes).unwrap_or_else(|| unknown(lang))
}

pub(super) fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// Key/value rows, the keys given in both languages.
pub(super) struct Facts {
    lang: Lang,
    pub(super) rows: Vec<(String, String)>,
}

impl Facts {
    pub(super) fn new(lang: Lang) -> Facts {
        Facts {
            lang,
            rows: Vec::new(),
        }
    }
    pub(super) fn row(
        mut self,
        ja: &'static str,
        en: &'static str,
        value: impl Into<String>,
    ) -> Facts {
        self.rows
            .push((tr(self.lang, ja, en).to_string(), value.into()));
        self
    }
    pub(super) fn block(self) -> Block {
        Block::KeyValues(self.rows)
    }
}

pub(super) fn heading(n: &str, title: &str) -> Block {
    Block::Heading(format!("{n} {title}"))
}

pub(super) fn para(s: &str) -> Block {
    Block::Para(s.to_string())
}

pub(super) fn muted(s: &str) -> Block {
    Block::Muted(s.to_string())
}

pub(super) fn sub(s: &str) -> Block {
    Block::Subheading(s.to_string())
}

pub(super) fn table(columns: Vec<Column>, rows: Vec<Vec<Cell>>) -> Block {
    Block::Table(Table {
        style: TableStyle::Plain,
        fixed: false,
        columns,
        rows,
    })
}

pub(super) fn no_threats(lang: Lang) -> Block {
    para(tr(
        lang,
        "検出された脅威はありません。",
        "No threats were found.",
    ))
}

pub(super) fn period_text(d: &ReportData, lang: Lang) -> String {
    match d.period {
        Some((a, b)) => format!("{} 〜 {}", d.local_time(a), d.local_time(b)),
        None => tr(lang, "データなし", "no data").to_string(),
    }
}
