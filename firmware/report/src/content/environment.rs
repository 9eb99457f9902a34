//! Chapter 3 (システム環境分析): traffic by protocol, direction and file transfers, disk,
//! talkers (§3.5), the asset inventory (§3.6) and the servers' certificates (§3.7).

use super::parts::*;
use super::{Bar, Block, Cell, Column, Figure};
use crate::charts;
use crate::data::ReportData;
use crate::environment::Direction;
use crate::escape::group_digits as num;
use crate::texts::tr;
use kuroko_model::finding::Lang;
use kuroko_model::units::format_bytes;

pub fn environment(d: &ReportData, lang: Lang) -> Vec<Block> {
    let e = &d.env;
    let bytes = tr(lang, "通信量", "Bytes");
    let sessions = tr(lang, "セッション数", "Sessions");
    let protocol = tr(lang, "プロトコル", "Protocol");
    let mut b = vec![heading(
        "3.1",
        tr(
            lang,
            "プロトコル別トラフィックの推移",
            "Traffic by protocol over time",
        ),
    )];
    if e.sessions == 0 {
        b.push(para(tr(
            lang,
            "解析済みのセッションはありません。",
            "No sessions have been analyzed.",
        )));
    } else {
        let (series, bars) = d.traffic_series(lang);
        let unit = if e.bucket_secs >= 86400 {
            tr(lang, "日別", "per day")
        } else {
            tr(lang, "時間別", "per hour")
        };
        b.push(Block::Figure(Figure::StackedBars {
            title: format!("{bytes} ({unit})"),
            series,
            bars,
        }));
        let mut rows: Vec<Vec<Cell>> = e
            .protocols_by_bytes()
            .into_iter()
            .map(|(p, t)| {
                let share = if e.bytes > 0 {
                    t.bytes as f64 * 100.0 / e.bytes as f64
                } else {
                    0.0
                };
                vec![
                    Cell::Text(p.to_string()),
                    Cell::Number(num(t.sessions)),
                    Cell::Number(format_bytes(t.bytes)),
                    Cell::Number(format!("{share:.1}%")),
                ]
            })
            .collect();
        rows.push(vec![
            Cell::Total {
                text: tr(lang, "合計", "Total").to_string(),
                numeric: false,
                id: None,
            },
            Cell::Total {
                text: num(e.sessions),
                numeric: true,
                id: Some("total-sessions"),
            },
            Cell::Total {
                text: format_bytes(e.bytes),
                numeric: true,
                id: None,
            },
            Cell::Number("100%".into()),
        ]);
        b.push(table(
            vec![
                Column::new(protocol, Some(40)),
                Column::num(sessions, Some(20)),
                Column::num(bytes, Some(20)),
                Column::num(tr(lang, "割合", "Share"), Some(20)),
            ],
            rows,
        ));
    }

    b.push(heading(
        "3.2",
        tr(
            lang,
            "内部・外部通信の状況",
            "Internal and external traffic",
        ),
    ));
    let totals = |dir: &Direction| e.directions.get(dir).copied().unwrap_or_default();
    b.push(Block::Figure(Figure::HBars {
        title: tr(lang, "方向別の通信量", "Bytes by direction"),
        bars: Direction::ALL
            .iter()
            .enumerate()
            .map(|(i, dir)| Bar {
                label: dir.label(lang).to_string(),
                value: totals(dir).bytes,
                shown: format_bytes(totals(dir).bytes),
                color: charts::PALETTE[i],
            })
            .collect(),
    }));
    b.push(table(
        vec![
            Column::new(tr(lang, "方向", "Direction"), Some(50)),
            Column::num(sessions, Some(25)),
            Column::num(bytes, Some(25)),
        ],
        Direction::ALL
            .iter()
            .map(|dir| {
                vec![
                    Cell::Text(dir.label(lang).to_string()),
                    Cell::Number(num(totals(dir).sessions)),
                    Cell::Number(format_bytes(totals(dir).bytes)),
                ]
            })
            .collect(),
    ));

    b.push(heading(
        "3.3",
        tr(
            lang,
            "ファイルアップロード・ダウンロード状況",
            "File uploads and downloads",
        ),
    ));
    if e.files.is_empty() {
        b.push(para(tr(
            lang,
            "ファイル転送は確認されませんでした。",
            "No file transfers were seen.",
        )));
    } else {
        let mut bars = Vec::new();
        for (p, f) in &e.files {
            bars.push(Bar {
                label: format!("{p} ↑"),
                value: f.upload_bytes,
                shown: format!("{} / {}", num(f.uploads), format_bytes(f.upload_bytes)),
                color: "#e67e22",
            });
            bars.push(Bar {
                label: format!("{p} ↓"),
                value: f.download_bytes,
                shown: format!("{} / {}", num(f.downloads), format_bytes(f.download_bytes)),
                color: "#2e86c1",
            });
        }
        b.push(Block::Figure(Figure::HBars {
            title: tr(
                lang,
                "プロトコル別ファイル転送量 (↑アップロード ↓ダウンロード)",
                "File transfers by protocol (↑ upload, ↓ download)",
            ),
            bars,
        }));
        b.push(table(
            vec![
                Column::new(protocol, Some(28)),
                Column::num(tr(lang, "アップロード件数", "Uploads"), Some(18)),
                Column::num(tr(lang, "アップロード量", "Upload bytes"), Some(18)),
                Column::num(tr(lang, "ダウンロード件数", "Downloads"), Some(18)),
                Column::num(tr(lang, "ダウンロード量", "Download bytes"), Some(18)),
            ],
            e.files
                .iter()
                .map(|(p, f)| {
                    vec![
                        Cell::Text(p.clone()),
                        Cell::Number(num(f.uploads)),
                        Cell::Number(format_bytes(f.upload_bytes)),
                        Cell::Number(num(f.downloads)),
                        Cell::Number(format_bytes(f.download_bytes)),
                    ]
                })
                .collect(),
        ));
    }

    b.push(heading(
        "3.4",
        tr(
            lang,
            "ディスク使用状況と保存期間",
            "Disk usage and retention",
        ),
    ));
    let s = &d.store;
    if let (Some(used), Some(budget)) = (s.disk_used, s.disk_budget.or(s.fs_total)) {
        let free = budget.saturating_sub(used);
        b.push(Block::Figure(Figure::HBars {
            title: tr(lang, "ディスク使用状況", "Disk usage"),
            bars: vec![
                Bar {
                    label: tr(lang, "パケット保存領域", "Packet store").to_string(),
                    value: used,
                    shown: format!("{} / {}", format_bytes(used), format_bytes(budget)),
                    color: "#1f4e79",
                },
                Bar {
                    label: tr(lang, "空き", "Free").to_string(),
                    value: free,
                    shown: format_bytes(free),
                    color: "#b3b6b7",
                },
            ],
        }));
    }
    let retention = match (s.retention_start, s.retention_end) {
        (Some(a), Some(b)) => {
            let days = (b.nanos() - a.nanos()) as f64 / 86_400e9;
            format!(
                "{} 〜 {} ({days:.1} {})",
                d.local_time(a),
                d.local_time(b),
                tr(lang, "日間", "days")
            )
        }
        _ => unknown(lang),
    };
    let ob = |v| opt_bytes(v, lang);
    b.push(
        Facts::new(lang)
            .row(
                "パケット保存領域の使用量",
                "Packet store used",
                ob(s.disk_used),
            )
            .row(
                "パケット保存領域の上限",
                "Packet store budget",
                ob(s.disk_budget),
            )
            .row(
                "再構築ファイルの使用量",
                "Reconstructed files",
                ob(s.files_bytes),
            )
            .row("ファイルシステム容量", "File system size", ob(s.fs_total))
            .row(
                "ファイルシステム空き容量",
                "File system free",
                ob(s.fs_free),
            )
            .row("セグメント数", "Segments", opt_num(s.segments, lang))
            .row(
                "保存期間 (最古〜最新のパケット)",
                "Retention (oldest to newest packet)",
                retention,
            )
            .block(),
    );
    b.extend(super::talkers::talkers(d, lang));
    b.extend(super::inventory::inventory(d, lang));
    b.extend(super::certificates::certificates(d, lang));
    b
}
