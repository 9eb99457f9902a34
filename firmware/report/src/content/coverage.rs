//! §1.4 (収集範囲と欠損 / Capture coverage): when capture was blind, what it lost and why,
//! what the disk damaged (and whether the background scrub keeps up with checking it), and
//! whether each touches the diagnosis period. A report that
//! counts sessions must say which parts of the period it could not see: a quiet interval
//! and a blind one look the same in the statistics.

use super::parts::*;
use super::{Block, Cell, Column};
use crate::data::{BlindInterval, ReportData};
use crate::escape::group_digits as num;
use crate::texts::tr;
use kuroko_model::Timestamp;
use kuroko_model::finding::Lang;

/// Names of the loss causes `kuroko status` reports (`capture.drops`).
fn cause_name(cause: &str, lang: Lang) -> String {
    let (ja, en) = match cause {
        "kernel_ring" => (
            "カーネルリング溢れ (取り込み処理の遅れ)",
            "kernel ring overflow (capture too slow)",
        ),
        "backpressure" => (
            "ディスク書き込みの遅れ",
            "disk could not keep up (backpressure)",
        ),
        "nic_missed" => ("NIC の受信取りこぼし", "NIC missed"),
        "nic_fifo" => ("NIC FIFO 溢れ", "NIC FIFO overrun"),
        "unread_at_stop" => ("停止時に未読", "unread when capture stopped"),
        "missed_before_rebind" => (
            "IF 再作成後、再接続までに受信",
            "received by a re-created interface before capture re-bound",
        ),
        "write_errors" => ("ディスク書き込みエラー", "disk write errors"),
        other => return other.to_string(),
    };
    tr(lang, ja, en).to_string()
}

/// Where an interval lies relative to the diagnosis period: -1 before, 0 within (or
/// overlapping), 1 after; `None` without a period.
fn period_side(d: &ReportData, g: &BlindInterval) -> Option<i8> {
    let end = g.end.unwrap_or(d.generated);
    d.period.map(|(a, b)| {
        if end < a {
            -1
        } else if g.start > b {
            1
        } else {
            0
        }
    })
}

fn in_period(d: &ReportData, g: &BlindInterval, lang: Lang) -> String {
    let (ja, en) = match period_side(d, g) {
        None => ("期間不明", "no period"),
        Some(-1) => ("期間前", "before the period"),
        Some(0) => ("期間内", "within the period"),
        Some(_) => ("期間後", "after the period"),
    };
    tr(lang, ja, en).to_string()
}

fn secs(a: Timestamp, b: Timestamp) -> f64 {
    (b.nanos() - a.nanos()).max(0) as f64 / 1e9
}

pub fn coverage(d: &ReportData, lang: Lang) -> Vec<Block> {
    let c = &d.store.coverage;
    let mut out = vec![heading(
        "1.4",
        tr(lang, "収集範囲と欠損", "Capture coverage"),
    )];
    if !c.capture_known {
        out.push(muted(tr(
            lang,
            "キャプチャの記録がないため (取り込んだデータなど)、収集できなかった時間帯は不明です。",
            "No capture figures exist for this data (an imported store, for instance): intervals when capture could not see the network are unknown.",
        )));
    }
    let clean = c.gaps.is_empty()
        && c.losses.is_empty()
        && c.write_errors == 0
        && c.damaged_slots == 0
        && c.damaged_segments == 0
        && c.scrub_behind.is_none();
    if clean {
        if c.capture_known {
            out.push(para(tr(
                lang,
                "診断期間中、キャプチャが停止・欠測した時間帯、取りこぼし、ディスクの損傷はありませんでした。",
                "Capture saw the network without gaps, lost no frames and the disk recorded no damage.",
            )));
        }
        return out;
    }
    let in_period_count = c
        .gaps
        .iter()
        .filter(|g| period_side(d, g) == Some(0))
        .count();
    if !c.gaps.is_empty() {
        out.push(Block::Alert(match lang {
            Lang::Ja => format!(
                "キャプチャが通信を見られなかった時間帯が {} 件あります (うち診断期間内 {} 件)。この時間帯の通信は記録・解析されていません。",
                c.gaps.len(),
                in_period_count
            ),
            Lang::En => format!(
                "Capture could not see the network during {} interval(s) ({} within the diagnosis period): traffic in them was neither recorded nor analyzed.",
                c.gaps.len(),
                in_period_count
            ),
        }));
        let rows = c
            .gaps
            .iter()
            .map(|g| {
                let what = match (g.gone, lang) {
                    (true, Lang::Ja) => "IF 消失",
                    (true, Lang::En) => "interface gone",
                    (false, Lang::Ja) => "リンクダウン",
                    (false, Lang::En) => "link down",
                };
                let end = match g.end {
                    Some(e) if g.cut_by_capture_end => format!(
                        "{} ({})",
                        d.local_time(e),
                        tr(lang, "キャプチャ終了まで", "until capture ended")
                    ),
                    Some(e) => d.local_time(e),
                    None => tr(lang, "継続中", "still blind").to_string(),
                };
                let len = secs(g.start, g.end.unwrap_or(d.generated));
                vec![
                    Cell::Code(g.interface.clone()),
                    Cell::Text(what.to_string()),
                    Cell::Text(d.local_time(g.start)),
                    Cell::Text(end),
                    Cell::Number(format!("{len:.1}")),
                    Cell::Number(num(g.missed)),
                    Cell::Text(in_period(d, g, lang)),
                ]
            })
            .collect();
        out.push(table(
            vec![
                Column::new(tr(lang, "IF", "Interface"), Some(10)),
                Column::new(tr(lang, "状態", "Cause"), Some(12)),
                Column::new(tr(lang, "開始", "From"), Some(20)),
                Column::new(tr(lang, "終了", "To"), Some(20)),
                Column::num(tr(lang, "秒", "Seconds"), Some(10)),
                Column::num(
                    tr(lang, "再接続前の受信", "Frames before re-bind"),
                    Some(12),
                ),
                Column::new(tr(lang, "診断期間", "Diagnosis period"), Some(16)),
            ],
            rows,
        ));
    }
    let mut facts = Facts::new(lang);
    for (cause, n) in &c.losses {
        facts.rows.push((
            format!(
                "{}: {}",
                tr(lang, "取りこぼし", "Lost"),
                cause_name(cause, lang)
            ),
            num(*n),
        ));
    }
    if c.ring_near_loss > 0 {
        facts = facts.row(
            "取りこぼし寸前 (カーネルリング)",
            "Near loss (kernel ring)",
            match lang {
                Lang::Ja => format!(
                    "{} 回 (リングの使用率が最大 {}%)",
                    num(c.ring_near_loss),
                    c.ring_peak_fill_pct
                ),
                Lang::En => format!(
                    "{} times (ring up to {}% full)",
                    num(c.ring_near_loss),
                    c.ring_peak_fill_pct
                ),
            },
        );
    }
    if c.write_errors > 0 {
        facts = facts.row(
            "ディスク書き込みエラー",
            "Disk write errors",
            match lang {
                Lang::Ja => format!(
                    "{} 回 (失われたパケット {})",
                    num(c.write_errors),
                    num(c.write_error_packets)
                ),
                Lang::En => format!(
                    "{} ({} packets lost)",
                    num(c.write_errors),
                    num(c.write_error_packets)
                ),
            },
        );
    }
    if c.damaged_slots > 0 || c.damaged_segments > 0 {
        facts = facts.row(
            "損傷したスロット / セグメント",
            "Damaged slots / segments",
            match lang {
                Lang::Ja => format!(
                    "スロット {} / セグメント {} (損傷ブロック {})",
                    num(c.damaged_slots),
                    num(c.damaged_segments),
                    num(c.damaged_blocks)
                ),
                Lang::En => format!(
                    "{} damaged slots / {} damaged segments ({} damaged blocks)",
                    num(c.damaged_slots),
                    num(c.damaged_segments),
                    num(c.damaged_blocks)
                ),
            },
        );
    }
    if let Some((en, ja)) = &c.scrub_behind {
        facts = facts.row(
            "保存データの検査 (スクラブ) の遅れ",
            "Scrub of the stored data behind",
            match lang {
                Lang::Ja => format!("{ja} (損傷の件数は実際より少ない可能性があります)"),
                Lang::En => format!("{en} (the damage counted may be less than there is)"),
            },
        );
    }
    if !facts.rows.is_empty() {
        out.push(facts.block());
    }
    if c.damaged_slots > 0 || c.damaged_segments > 0 || c.write_errors > 0 {
        out.push(muted(tr(
            lang,
            "損傷・書き込みエラーのあったパケットは解析されていません。これらは保存期間 (診断期間) 内のデータであり、該当するセッションは本報告書の集計に含まれていません。損傷箇所の時刻は kuroko-inspect で確認できます。",
            "Packets in damaged slots, damaged segments or failed writes were not analyzed. They belong to the retention window (the diagnosis period); their sessions are missing from this report's figures. kuroko-inspect shows where and when.",
        )));
    }
    out
}
