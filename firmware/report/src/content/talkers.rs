//! §3.5: who talked most — top sources, destinations and domains by volume, each split
//! into the site's business hours and the rest — and all traffic within vs outside
//! business hours, so night-time activity stands out without writing a query.

use super::parts::*;
use super::{Block, Cell, Column};
use crate::data::ReportData;
use crate::environment::{EnvStats, HostTotals};
use crate::escape::group_digits as num;
use crate::texts::tr;
use kuroko_model::finding::Lang;
use kuroko_model::units::format_bytes;
use std::collections::BTreeMap;

/// Rows per top list.
pub const TOP: usize = 10;

pub fn talkers(d: &ReportData, lang: Lang) -> Vec<Block> {
    let env = &d.env;
    let mut b = vec![heading(
        "3.5",
        tr(
            lang,
            "通信量の多いホスト・ドメインと時間帯",
            "Top hosts and domains, business hours and night",
        ),
    )];
    let h = env.hours;
    let all = h.bytes().max(1);
    let share = |v: u64| format!("{:.1}%", v as f64 * 100.0 / all as f64);
    b.push(table(
        vec![
            Column::new(tr(lang, "時間帯", "Time of day"), Some(40)),
            Column::num(tr(lang, "セッション数", "Sessions"), Some(20)),
            Column::num(tr(lang, "通信量", "Bytes"), Some(20)),
            Column::num(tr(lang, "割合", "Share"), Some(20)),
        ],
        [
            (tr(lang, "業務時間内", "Business hours"), h.business),
            (
                tr(
                    lang,
                    "業務時間外 (夜間・休日)",
                    "Outside business hours (night, weekend)",
                ),
                h.off_hours,
            ),
        ]
        .into_iter()
        .map(|(label, t)| {
            vec![
                Cell::Text(label.to_string()),
                Cell::Number(num(t.sessions)),
                Cell::Number(format_bytes(t.bytes)),
                Cell::Number(share(t.bytes)),
            ]
        })
        .collect(),
    ));
    for (title, map, first) in [
        (
            tr(lang, "送信元 (通信量上位)", "Top sources"),
            &env.sources,
            tr(lang, "送信元", "Source"),
        ),
        (
            tr(lang, "宛先 (通信量上位)", "Top destinations"),
            &env.destinations,
            tr(lang, "宛先", "Destination"),
        ),
        (
            tr(lang, "ドメイン (通信量上位)", "Top domains"),
            &env.domains,
            tr(lang, "ドメイン", "Domain"),
        ),
    ] {
        b.push(sub(title));
        b.push(top_table(d, map, first, lang));
    }
    if env.folded_hosts > 0 {
        b.push(muted(&match lang {
            Lang::Ja => format!(
                "集計対象を超えたホスト・ドメインの {} セッションは上位の一覧に含みません。",
                num(env.folded_hosts)
            ),
            Lang::En => format!(
                "{} sessions of hosts or domains beyond the tracked number are not in the lists.",
                num(env.folded_hosts)
            ),
        }));
    }
    b
}

fn top_table(d: &ReportData, map: &BTreeMap<String, HostTotals>, first: &str, lang: Lang) -> Block {
    let rows: Vec<Vec<Cell>> = EnvStats::top(map, TOP)
        .into_iter()
        .map(|(host, t)| {
            vec![
                Cell::Code(d.endpoint_label(Some(host), lang)),
                Cell::Number(num(t.sessions())),
                Cell::Number(format_bytes(t.bytes())),
                Cell::Number(format_bytes(t.business.bytes)),
                Cell::Number(format_bytes(t.off_hours.bytes)),
            ]
        })
        .collect();
    if rows.is_empty() {
        return muted(tr(lang, "該当する通信はありません。", "No such traffic."));
    }
    table(
        vec![
            Column::new(first, Some(32)),
            Column::num(tr(lang, "セッション数", "Sessions"), Some(14)),
            Column::num(tr(lang, "通信量", "Bytes"), Some(18)),
            Column::num(tr(lang, "業務時間内", "Business hours"), Some(18)),
            Column::num(tr(lang, "業務時間外", "Outside"), Some(18)),
        ],
        rows,
    )
}
