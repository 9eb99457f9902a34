//! The chapters of the PDF, mirroring the HTML's (same data, simpler layout).

use super::layout::{
    BAND, CONTENT_W, Cell, Col, Doc, INK, MARGIN_X, MUTED, NAVY, WHITE, cols, hex_rgb, risk_rgb,
};
use crate::charts::{PALETTE, risk_text_color};
use crate::data::{MAX_EVIDENCE_ROWS, ReportData};
use crate::environment::Direction;
use crate::escape::clip;
use crate::texts::{self, section_titles, tr};
use kuroko_model::finding::{Category, Lang, Risk};
use kuroko_model::units::format_bytes;

use crate::escape::group_digits as num;

fn unknown(lang: Lang) -> String {
    tr(lang, "不明", "unknown").to_string()
}

fn grade_cell(r: Risk) -> Cell {
    Cell {
        text: r.to_string(),
        fill: Some(risk_rgb(r)),
        color: hex_rgb(risk_text_color(r)),
    }
}

fn period(d: &ReportData, lang: Lang) -> String {
    match d.period {
        Some((a, b)) => format!("{} 〜 {}", d.local_time(a), d.local_time(b)),
        None => tr(lang, "データなし", "no data").to_string(),
    }
}

pub fn build(doc: &mut Doc, d: &ReportData, lang: Lang) {
    cover(doc, d, lang);
    let titles = section_titles(lang);
    overview(doc, d, lang, titles[0]);
    summary(doc, d, lang, titles[1]);
    environment(doc, d, lang, titles[2]);
    threats(doc, d, lang, titles[3]);
    scenarios(doc, d, lang, titles[4]);
    details(doc, d, lang, titles[5]);
}

fn cover(doc: &mut Doc, d: &ReportData, lang: Lang) {
    doc.y = 150.0;
    doc.text(
        MARGIN_X,
        doc.y,
        10.0,
        (0xc0, 0x39, 0x2b),
        tr(lang, "社外秘 / CONFIDENTIAL", "CONFIDENTIAL"),
    );
    doc.y += 30.0;
    doc.para(
        tr(
            lang,
            "フルパケットセキュリティ診断 報告書",
            "Full-packet security diagnosis report",
        ),
        24.0,
        NAVY,
    );
    doc.rect(MARGIN_X, doc.y, CONTENT_W, 3.0, NAVY);
    doc.y += 14.0;
    doc.para(
        tr(
            lang,
            "ネットワーク診断 (Network Blackbox「Kuroko」によるフルパケット分析)",
            "Network diagnosis by full-packet analysis with the Kuroko network blackbox",
        ),
        11.0,
        MUTED,
    );
    doc.y = 400.0;
    let who = d.customer_or_site(lang);
    let who = if lang == Lang::Ja && !d.customer.trim().is_empty() {
        format!("{who} 御中")
    } else {
        who
    };
    doc.para(&who, 18.0, INK);
    doc.y = 600.0;
    let mut rows = vec![
        (
            tr(lang, "診断対象", "Site"),
            if d.site_name.is_empty() {
                "-".into()
            } else {
                d.site_name.clone()
            },
        ),
        (tr(lang, "診断期間", "Period"), period(d, lang)),
        (
            tr(lang, "報告書作成日", "Issued"),
            d.local_date(d.generated),
        ),
    ];
    if !d.analyst.trim().is_empty() {
        rows.push((tr(lang, "作成者", "Prepared by"), d.analyst.clone()));
    }
    doc.kv(&rows);
}

fn overview(doc: &mut Doc, d: &ReportData, lang: Lang, title: &str) {
    doc.chapter(1, title);
    doc.heading(&format!(
        "1.1 {}",
        tr(lang, "診断の概要", "About this diagnosis")
    ));
    doc.para(
        tr(
            lang,
            "本診断は、診断対象ネットワークのミラーポートに Network Blackbox「Kuroko」を設置し、内部から内部、内部から外部への通信をフルパケットで収集・保存したうえで、プロトコル解析、ファイル・メールの再構築、検知ルールによる脅威分析を行い、検出した脅威を「脆弱性」と「脅威」の 2 要素でスコアリングしたものです。",
            "For this diagnosis the Kuroko network blackbox was attached to a mirror port of the network under review. It recorded every packet of internal and outbound traffic, decoded the protocols, reconstructed files and mails, and ran threat detections; each threat found was scored on two factors, vulnerability and threat.",
        ),
        9.5,
        INK,
    );
    doc.heading(&format!("1.2 {}", tr(lang, "実施概要", "Engagement")));
    let nets = d
        .internal_networks
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    doc.kv(&[
        (
            tr(lang, "お客様名", "Customer"),
            if d.customer.is_empty() {
                "-".into()
            } else {
                d.customer.clone()
            },
        ),
        (
            tr(lang, "診断対象", "Site"),
            if d.site_name.is_empty() {
                "-".into()
            } else {
                d.site_name.clone()
            },
        ),
        (tr(lang, "診断期間", "Period"), period(d, lang)),
        (
            tr(lang, "タイムゾーン", "Time zone"),
            d.timezone.name().to_string(),
        ),
        (tr(lang, "内部ネットワーク", "Internal networks"), nets),
        (
            tr(lang, "報告書作成日時", "Generated"),
            d.local_time(d.generated),
        ),
    ]);
    doc.heading(&format!(
        "1.3 {}",
        tr(lang, "収集統計", "Capture statistics")
    ));
    let s = &d.store;
    doc.kv(&[
        (
            tr(lang, "保存パケット数", "Packets stored"),
            s.packets.map(num).unwrap_or_else(|| unknown(lang)),
        ),
        (
            tr(lang, "保存データ量", "Bytes stored"),
            s.bytes.map(format_bytes).unwrap_or_else(|| unknown(lang)),
        ),
        (
            tr(lang, "取りこぼしパケット数", "Packets dropped"),
            s.drops.map(num).unwrap_or_else(|| unknown(lang)),
        ),
        (
            tr(lang, "解析済み範囲", "Analyzed up to"),
            match (s.analyzed_to, s.analyzer_lag_secs) {
                (Some(t), Some(lag)) if lag > 0.5 => format!(
                    "{} ({} {lag:.0} {})",
                    d.local_time(t),
                    tr(lang, "未解析:", "behind by"),
                    tr(lang, "秒分", "s")
                ),
                (Some(t), _) => d.local_time(t),
                _ => unknown(lang),
            },
        ),
        (
            tr(lang, "解析セッション数", "Sessions analyzed"),
            num(d.env.sessions),
        ),
        (
            tr(lang, "解析通信量 (ペイロード)", "Payload analyzed"),
            format_bytes(d.env.bytes),
        ),
        (
            tr(lang, "検出脅威数", "Findings"),
            num(d.findings.len() as u64),
        ),
    ]);
}

fn summary(doc: &mut Doc, d: &ReportData, lang: Lang, title: &str) {
    doc.chapter(2, title);
    doc.heading(&format!(
        "2.1 {}",
        tr(lang, "リスク値別の検出件数", "Findings per risk grade")
    ));
    let counts = d.grade_counts();
    // Grade cards.
    let w = (CONTENT_W - 4.0 * 8.0) / 5.0;
    doc.need(70.0);
    for (i, (r, n)) in counts.iter().enumerate() {
        let x = MARGIN_X + i as f32 * (w + 8.0);
        doc.rect(x, doc.y, w, 5.0, risk_rgb(*r));
        doc.frame(x, doc.y, w, 60.0, super::layout::LINE);
        doc.text(x + 8.0, doc.y + 28.0, 18.0, risk_rgb(*r), r.as_str());
        let ns = n.to_string();
        let nw = doc.m.width(&ns, 18.0);
        doc.text(x + w - 8.0 - nw, doc.y + 28.0, 18.0, INK, &ns);
        doc.text(
            x + 8.0,
            doc.y + 48.0,
            7.5,
            MUTED,
            texts::grade_meaning(lang, r.as_str()),
        );
    }
    doc.y += 72.0;
    // Vulnerability × threat matrix.
    let m = d.matrix();
    let cell = 40.0;
    doc.need(cell * 3.0 + 50.0);
    let x0 = MARGIN_X + 90.0;
    doc.text(
        MARGIN_X,
        doc.y + 10.0,
        9.5,
        NAVY,
        tr(
            lang,
            "脆弱性 × 脅威 マトリクス (件数)",
            "Vulnerability × threat matrix (findings)",
        ),
    );
    doc.y += 18.0;
    for (row, v) in (1..=3u8).rev().enumerate() {
        doc.text(
            x0 - 50.0,
            doc.y + row as f32 * cell + 24.0,
            9.0,
            INK,
            &format!("{} {v}", tr(lang, "脆弱性", "vuln.")),
        );
        for t in 1..=3u8 {
            let r = Risk::from_levels(v, t);
            let x = x0 + (t - 1) as f32 * cell;
            let y = doc.y + row as f32 * cell;
            doc.rect(x, y, cell - 2.0, cell - 2.0, risk_rgb(r));
            let n = m[(v - 1) as usize][(t - 1) as usize];
            let tc = hex_rgb(risk_text_color(r));
            doc.text(x + 5.0, y + 14.0, 9.0, tc, r.as_str());
            if n > 0 {
                let ns = n.to_string();
                doc.text(
                    x + cell / 2.0 - doc.m.width(&ns, 13.0) / 2.0,
                    y + 30.0,
                    13.0,
                    tc,
                    &ns,
                );
            }
        }
    }
    for t in 1..=3u8 {
        doc.text(
            x0 + (t - 1) as f32 * cell + 8.0,
            doc.y + cell * 3.0 + 12.0,
            9.0,
            INK,
            &format!("{} {t}", tr(lang, "脅威", "threat")),
        );
    }
    doc.y += cell * 3.0 + 24.0;

    doc.heading(&format!("2.2 {}", tr(lang, "主要なリスク", "Top risks")));
    if d.findings.is_empty() {
        doc.para(
            tr(
                lang,
                "検出された脅威はありません。",
                "No threats were found.",
            ),
            9.5,
            INK,
        );
    } else {
        let rows = d
            .by_risk()
            .into_iter()
            .take(5)
            .map(|f| {
                vec![
                    Cell::from(f.no.to_string()),
                    grade_cell(f.finding.risk),
                    Cell::from(format!(
                        "{} × {} = {}",
                        f.finding.vulnerability,
                        f.finding.threat,
                        f.finding.vulnerability * f.finding.threat
                    )),
                    Cell::from(f.title(lang)),
                    Cell::from(f.finding.category.title(lang)),
                ]
            })
            .collect();
        doc.table(
            &cols(&[0.06, 0.08, 0.14, 0.40, 0.32]),
            &[
                "No.",
                tr(lang, "リスク値", "Risk"),
                tr(lang, "脆弱性×脅威", "V × T"),
                tr(lang, "脅威", "Threat"),
                tr(lang, "区分", "Category"),
            ],
            rows,
        );
    }
    if d.overrides_applied() > 0 {
        let t = match lang {
            Lang::Ja => format!(
                "{} 件の脅威について、コンサルタントの判断により評価値を変更しています (理由は各脅威の詳細に記載)。",
                d.overrides_applied()
            ),
            Lang::En => format!(
                "The consultant changed the levels of {} findings; the reasons are given with each finding.",
                d.overrides_applied()
            ),
        };
        doc.para(&t, 9.0, (0xc0, 0x39, 0x2b));
    }
    doc.heading(&format!(
        "2.3 {}",
        tr(lang, "リスクスコアリングの基準", "Risk scoring criteria")
    ));
    doc.para(
        tr(
            lang,
            "リスク分析では、「脆弱性」と「脅威」の 2 要素の相乗値からリスク値を求める。評価指標「脆弱性」は「脅威の受容可能性」を、評価指標「脅威」は「攻撃手法の容易さ」や「攻撃対象の発見されやすさ」を表す。",
            "Risk is the product of two factors. Vulnerability is how readily the system would accept the threat; threat is how easy the attack is and how easily the target is found.",
        ),
        9.0,
        INK,
    );
    for (label, crit) in [
        (
            tr(lang, "脆弱性", "Vulnerability"),
            texts::vulnerability_criteria(lang),
        ),
        (tr(lang, "脅威", "Threat"), texts::threat_criteria(lang)),
    ] {
        let rows = crit
            .iter()
            .enumerate()
            .map(|(i, c)| vec![Cell::from((3 - i).to_string()), Cell::from(*c)])
            .collect();
        let h = format!("{label} {}", tr(lang, "評価値", "level"));
        doc.table(
            &cols(&[0.18, 0.82]),
            &[&h, tr(lang, "具体的な判断基準", "Criteria")],
            rows,
        );
    }
    let rows = texts::grade_rows(lang)
        .iter()
        .zip(Risk::ALL)
        .map(|((g, pairs, cond), r)| {
            vec![
                grade_cell(r),
                Cell::from(*pairs),
                Cell::from(*cond),
                Cell::from(texts::grade_meaning(lang, g)),
            ]
        })
        .collect();
    doc.table(
        &cols(&[0.12, 0.24, 0.34, 0.30]),
        &[
            tr(lang, "リスク値", "Risk"),
            tr(lang, "脆弱性 × 脅威", "V × T"),
            tr(lang, "判定条件", "Condition"),
            tr(lang, "対応の目安", "Response"),
        ],
        rows,
    );
}

fn environment(doc: &mut Doc, d: &ReportData, lang: Lang, title: &str) {
    doc.chapter(3, title);
    let e = &d.env;
    doc.heading(&format!(
        "3.1 {}",
        tr(
            lang,
            "プロトコル別トラフィックの推移",
            "Traffic by protocol over time"
        )
    ));
    if e.sessions == 0 {
        doc.para(
            tr(
                lang,
                "解析済みのセッションはありません。",
                "No sessions have been analyzed.",
            ),
            9.5,
            INK,
        );
    } else {
        // Stacked columns drawn with rectangles.
        let (series, bars) = d.traffic_series(lang);
        let ch = 150.0;
        doc.need(ch + 60.0);
        let max = bars
            .iter()
            .map(|b| b.values.iter().sum::<u64>())
            .max()
            .unwrap_or(1)
            .max(1);
        let plot_w = CONTENT_W - 110.0;
        let slot = plot_w / bars.len().max(1) as f32;
        let top = doc.y;
        doc.text(MARGIN_X, top + 8.0, 7.5, MUTED, &format_bytes(max));
        for (i, b) in bars.iter().enumerate() {
            let mut y = top + ch;
            for (j, v) in b.values.iter().enumerate() {
                let h = ch * *v as f32 / max as f32;
                y -= h;
                doc.rect(
                    MARGIN_X + 40.0 + slot * i as f32 + slot * 0.1,
                    y,
                    (slot * 0.8).max(0.5),
                    h,
                    hex_rgb(PALETTE[j % PALETTE.len()]),
                );
            }
        }
        doc.rect(MARGIN_X + 40.0, top + ch, plot_w - 40.0, 0.8, MUTED);
        if let (Some(a), Some(b)) = (bars.first(), bars.last()) {
            doc.text(MARGIN_X + 40.0, top + ch + 12.0, 7.5, MUTED, &a.label);
            let w = doc.m.width(&b.label, 7.5);
            doc.text(MARGIN_X + plot_w - w, top + ch + 12.0, 7.5, MUTED, &b.label);
        }
        for (j, s) in series.iter().enumerate() {
            let y = top + j as f32 * 14.0;
            doc.rect(
                MARGIN_X + plot_w + 10.0,
                y,
                9.0,
                9.0,
                hex_rgb(PALETTE[j % PALETTE.len()]),
            );
            doc.text(MARGIN_X + plot_w + 24.0, y + 8.0, 8.0, INK, s);
        }
        doc.y = top + ch + 24.0;
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
                    Cell::from(p),
                    Cell::from(num(t.sessions)),
                    Cell::from(format_bytes(t.bytes)),
                    Cell::from(format!("{share:.1}%")),
                ]
            })
            .collect();
        rows.push(vec![
            Cell::from(tr(lang, "合計", "Total")),
            Cell::from(num(e.sessions)),
            Cell::from(format_bytes(e.bytes)),
            Cell::from("100%"),
        ]);
        let c = [
            Col {
                share: 0.4,
                right: false,
            },
            Col {
                share: 0.2,
                right: true,
            },
            Col {
                share: 0.2,
                right: true,
            },
            Col {
                share: 0.2,
                right: true,
            },
        ];
        doc.table(
            &c,
            &[
                tr(lang, "プロトコル", "Protocol"),
                tr(lang, "セッション数", "Sessions"),
                tr(lang, "通信量", "Bytes"),
                tr(lang, "割合", "Share"),
            ],
            rows,
        );
    }
    doc.heading(&format!(
        "3.2 {}",
        tr(
            lang,
            "内部・外部通信の状況",
            "Internal and external traffic"
        )
    ));
    let rows: Vec<super::layout::BarRow> = Direction::ALL
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let t = e.directions.get(dir).copied().unwrap_or_default();
            (
                dir.label(lang).to_string(),
                t.bytes,
                format!("{} / {}", num(t.sessions), format_bytes(t.bytes)),
                hex_rgb(PALETTE[i]),
            )
        })
        .collect();
    doc.hbars(
        tr(
            lang,
            "方向別の通信量 (セッション数 / 通信量)",
            "Traffic by direction (sessions / bytes)",
        ),
        &rows,
    );

    doc.heading(&format!(
        "3.3 {}",
        tr(
            lang,
            "ファイルアップロード・ダウンロード状況",
            "File uploads and downloads"
        )
    ));
    if e.files.is_empty() {
        doc.para(
            tr(
                lang,
                "ファイル転送は確認されませんでした。",
                "No file transfers were seen.",
            ),
            9.5,
            INK,
        );
    } else {
        let rows = e
            .files
            .iter()
            .map(|(p, f)| {
                vec![
                    Cell::from(p.as_str()),
                    Cell::from(num(f.uploads)),
                    Cell::from(format_bytes(f.upload_bytes)),
                    Cell::from(num(f.downloads)),
                    Cell::from(format_bytes(f.download_bytes)),
                ]
            })
            .collect();
        let c = [
            Col {
                share: 0.28,
                right: false,
            },
            Col {
                share: 0.18,
                right: true,
            },
            Col {
                share: 0.18,
                right: true,
            },
            Col {
                share: 0.18,
                right: true,
            },
            Col {
                share: 0.18,
                right: true,
            },
        ];
        doc.table(
            &c,
            &[
                tr(lang, "プロトコル", "Protocol"),
                tr(lang, "アップロード件数", "Uploads"),
                tr(lang, "アップロード量", "Upload bytes"),
                tr(lang, "ダウンロード件数", "Downloads"),
                tr(lang, "ダウンロード量", "Download bytes"),
            ],
            rows,
        );
    }
    doc.heading(&format!(
        "3.4 {}",
        tr(
            lang,
            "ディスク使用状況と保存期間",
            "Disk usage and retention"
        )
    ));
    let s = &d.store;
    if let (Some(used), Some(budget)) = (s.disk_used, s.disk_budget.or(s.fs_total)) {
        doc.hbars(
            tr(lang, "ディスク使用状況", "Disk usage"),
            &[
                (
                    tr(lang, "使用", "Used").to_string(),
                    used,
                    format_bytes(used),
                    NAVY,
                ),
                (
                    tr(lang, "空き", "Free").to_string(),
                    budget.saturating_sub(used),
                    format_bytes(budget.saturating_sub(used)),
                    (0xb3, 0xb6, 0xb7),
                ),
            ],
        );
    }
    let ob = |v: Option<u64>| v.map(format_bytes).unwrap_or_else(|| unknown(lang));
    let retention = match (s.retention_start, s.retention_end) {
        (Some(a), Some(b)) => format!(
            "{} 〜 {} ({:.1} {})",
            d.local_time(a),
            d.local_time(b),
            (b.nanos() - a.nanos()) as f64 / 86_400e9,
            tr(lang, "日間", "days")
        ),
        _ => unknown(lang),
    };
    doc.kv(&[
        (
            tr(lang, "パケット保存領域の使用量", "Packet store used"),
            ob(s.disk_used),
        ),
        (
            tr(lang, "パケット保存領域の上限", "Packet store budget"),
            ob(s.disk_budget),
        ),
        (
            tr(lang, "再構築ファイルの使用量", "Reconstructed files"),
            ob(s.files_bytes),
        ),
        (
            tr(lang, "ファイルシステム容量", "File system size"),
            ob(s.fs_total),
        ),
        (
            tr(lang, "ファイルシステム空き容量", "File system free"),
            ob(s.fs_free),
        ),
        (tr(lang, "保存期間", "Retention"), retention),
    ]);
}

fn threats(doc: &mut Doc, d: &ReportData, lang: Lang, title: &str) {
    doc.chapter(4, title);
    doc.heading(&format!(
        "4.1 {}",
        tr(lang, "イベント検知ステータス", "Event detection status")
    ));
    if d.findings.is_empty() {
        doc.para(
            tr(
                lang,
                "検出された脅威はありません。",
                "No threats were found.",
            ),
            9.5,
            INK,
        );
        return;
    }
    let mut rows = Vec::new();
    for c in Category::ALL {
        for (i, f) in d
            .findings
            .iter()
            .filter(|f| f.finding.category == c)
            .enumerate()
        {
            let cat = if i == 0 {
                c.title(lang).to_string()
            } else {
                String::new()
            };
            rows.push(vec![
                Cell::from(f.no.to_string()),
                Cell {
                    text: cat,
                    fill: Some(BAND),
                    color: NAVY,
                },
                Cell::from(f.title(lang)),
                Cell::from(d.endpoint_label(f.finding.client.as_deref(), lang)),
                Cell::from(d.endpoint_label(f.finding.server.as_deref(), lang)),
                grade_cell(f.finding.risk),
                Cell::from(
                    f.countermeasures(lang)
                        .iter()
                        .map(|c| format!("• {c}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            ]);
        }
    }
    doc.table(
        &cols(&[0.05, 0.14, 0.17, 0.14, 0.14, 0.06, 0.30]),
        &[
            "No.",
            tr(lang, "区分", "Category"),
            tr(lang, "検出内容", "Finding"),
            tr(lang, "送信元", "Source"),
            tr(lang, "宛先", "Destination"),
            tr(lang, "リスク", "Risk"),
            tr(lang, "対応策", "Countermeasures"),
        ],
        rows,
    );
}

fn risk_box(doc: &mut Doc, r: Risk, v: u8, t: u8, lang: Lang) {
    doc.need(30.0);
    doc.frame(MARGIN_X, doc.y, CONTENT_W, 24.0, risk_rgb(r));
    doc.rect(MARGIN_X, doc.y, 24.0, 24.0, risk_rgb(r));
    doc.text(
        MARGIN_X + 7.0,
        doc.y + 17.0,
        13.0,
        hex_rgb(risk_text_color(r)),
        r.as_str(),
    );
    doc.text(
        MARGIN_X + 34.0,
        doc.y + 16.0,
        11.0,
        INK,
        &format!(
            "{}: {r} ({v} × {t} = {})",
            tr(lang, "リスク値", "Risk"),
            v * t
        ),
    );
    doc.y += 32.0;
}

fn scenarios(doc: &mut Doc, d: &ReportData, lang: Lang, title: &str) {
    doc.chapter(5, title);
    let sc = d.scenarios(lang);
    if sc.is_empty() {
        doc.para(
            tr(
                lang,
                "リスクシナリオに該当する脅威はありません。",
                "No finding makes up a risk scenario.",
            ),
            9.5,
            INK,
        );
    }
    for (i, s) in sc.iter().enumerate() {
        doc.heading(&format!(
            "5.{} {}",
            i + 1,
            texts::scenario_name(lang, s.category)
        ));
        doc.para(texts::scenario_story(lang, s.category), 9.0, MUTED);
        risk_box(doc, s.risk, s.vulnerability, s.threat, lang);
        doc.para(tr(lang, "評価の根拠", "Reasoning"), 10.0, NAVY);
        for f in &s.findings {
            doc.para(
                &format!(
                    "No.{} {} — {} {} / {} {} → {}",
                    f.no,
                    f.title(lang),
                    tr(lang, "脆弱性レベル", "vulnerability"),
                    f.finding.vulnerability,
                    tr(lang, "脅威レベル", "threat"),
                    f.finding.threat,
                    f.finding.risk
                ),
                9.0,
                INK,
            );
            let mut reasons = f.reasoning(lang);
            if let Some(r) = &f.override_reason {
                reasons.push(format!(
                    "{}: {r}",
                    tr(
                        lang,
                        "コンサルタントによる評価値の変更",
                        "Levels changed by the consultant"
                    )
                ));
            }
            doc.bullets(&reasons, 8.5);
        }
        doc.para(tr(lang, "対応策", "Countermeasures"), 10.0, NAVY);
        let items: Vec<String> = s
            .countermeasures
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}. {c}", i + 1))
            .collect();
        for it in items {
            doc.para_at(MARGIN_X + 8.0, CONTENT_W - 8.0, &it, 9.0, INK);
        }
    }
}

fn details(doc: &mut Doc, d: &ReportData, lang: Lang, title: &str) {
    doc.chapter(6, title);
    if d.findings.is_empty() {
        doc.para(
            tr(
                lang,
                "検出された脅威はありません。",
                "No threats were found.",
            ),
            9.5,
            INK,
        );
    }
    for g in &d.findings {
        let f = &g.finding;
        doc.need(120.0);
        doc.heading_badge(&format!("6.{}", g.no), f.risk, &g.title(lang));
        doc.kv(&[
            (
                tr(lang, "区分", "Category"),
                f.category.title(lang).to_string(),
            ),
            (
                tr(lang, "検知ルール / ID", "Rule / ID"),
                format!("{} / {}", f.rule, f.id),
            ),
            (
                "MITRE ATT&CK",
                if f.attack.is_empty() {
                    "-".into()
                } else {
                    f.attack.join(", ")
                },
            ),
            (
                tr(lang, "送信元 → 宛先", "Source → destination"),
                format!(
                    "{} → {}",
                    d.endpoint_label(f.client.as_deref(), lang),
                    d.endpoint_label(f.server.as_deref(), lang)
                ),
            ),
            (
                tr(lang, "初回 / 最終検知", "First / last seen"),
                format!(
                    "{} / {}",
                    d.local_time(f.first_seen),
                    d.local_time(f.last_seen)
                ),
            ),
            (tr(lang, "検知回数", "Events"), num(f.count)),
            (
                tr(lang, "リスク値", "Risk"),
                format!(
                    "{} ({} × {} = {})",
                    f.risk,
                    f.vulnerability,
                    f.threat,
                    f.vulnerability * f.threat
                ),
            ),
        ]);
        let mut reasons = g.reasoning(lang);
        if let Some(r) = &g.override_reason {
            reasons.push(format!(
                "{}: {r}",
                tr(
                    lang,
                    "コンサルタントによる評価値の変更",
                    "Levels changed by the consultant"
                )
            ));
        }
        if let Some(n) = &g.note {
            reasons.push(format!(
                "{} {n}",
                tr(lang, "分析者コメント:", "Analyst note:")
            ));
        }
        doc.bullets(&reasons, 8.5);
        let mut sessions: Vec<_> = f
            .evidence
            .iter()
            .filter_map(|id| d.evidence.get(id))
            .collect();
        sessions.sort_by_key(|s| s.start);
        if !sessions.is_empty() {
            let rows = sessions
                .iter()
                .take(MAX_EVIDENCE_ROWS)
                .map(|s| {
                    let summary = s
                        .http
                        .as_ref()
                        .and_then(|h| h.url.clone())
                        .or_else(|| s.mail.as_ref().and_then(|m| m.subject.clone()))
                        .or_else(|| s.ssh.as_ref().and_then(|x| x.server_version.clone()))
                        .or_else(|| s.ftp.as_ref().map(|f| f.commands.join("; ")))
                        .unwrap_or_default();
                    vec![
                        Cell::from(d.local_time(s.start)),
                        Cell::from(s.protocol.as_str()),
                        Cell::from(format!("{}:{}", s.client.ip, s.client.port)),
                        Cell::from(format!("{}:{}", s.server.ip, s.server.port)),
                        Cell::from(clip(&summary, 160)),
                    ]
                })
                .collect();
            doc.table(
                &cols(&[0.2, 0.09, 0.19, 0.19, 0.33]),
                &[
                    tr(lang, "日時", "Time"),
                    tr(lang, "プロトコル", "Proto"),
                    tr(lang, "送信元", "Client"),
                    tr(lang, "宛先", "Server"),
                    tr(lang, "内容", "Summary"),
                ],
                rows,
            );
        }
        for s in &sessions {
            if let Some(m) = &s.mail {
                doc.para(
                    tr(
                        lang,
                        "再構築されたメール (テキストとして表示)",
                        "Reconstructed mail (shown as text)",
                    ),
                    9.5,
                    NAVY,
                );
                let mut lines = vec![
                    format!(
                        "From: {} <{}>",
                        m.from_display.as_deref().unwrap_or(""),
                        m.from.as_deref().unwrap_or("")
                    ),
                    format!("To: {}", clip(&m.to.join(", "), 300)),
                    format!("Subject: {}", m.subject.as_deref().unwrap_or("")),
                ];
                if let Some(t) = m.eml_sha256.as_ref().and_then(|sha| d.mails.get(sha)) {
                    lines.push(String::new());
                    lines.push(clip(&t.text, 2000));
                }
                for l in &m.links {
                    lines.push(format!(
                        "{} [{}] → href: {}",
                        tr(lang, "リンク", "link"),
                        l.text,
                        l.href
                    ));
                }
                for a in &m.attachments {
                    lines.push(format!(
                        "{}: {} ({} B, SHA-256 {})",
                        tr(lang, "添付", "attachment"),
                        a.name,
                        a.bytes,
                        a.sha256.as_deref().unwrap_or("-")
                    ));
                }
                let text = lines.join("\n");
                let wrapped = doc.m.wrap(&text, 8.0, CONTENT_W - 16.0);
                let h = wrapped.len() as f32 * 11.5 + 10.0;
                if h < 600.0 {
                    doc.need(h);
                    doc.rect(MARGIN_X, doc.y, CONTENT_W, h, (0xf8, 0xf9, 0xfa));
                }
                doc.space(4.0);
                doc.para_at(MARGIN_X + 8.0, CONTENT_W - 16.0, &text, 8.0, INK);
                doc.space(6.0);
            }
        }
        let files: Vec<_> = sessions.iter().flat_map(|s| s.files.iter()).collect();
        if !files.is_empty() {
            let rows = files
                .iter()
                .take(MAX_EVIDENCE_ROWS)
                .map(|f| {
                    vec![
                        Cell::from(f.name.clone().unwrap_or_else(|| "-".into())),
                        Cell::from(f.content_type.clone().unwrap_or_else(|| f.kind.clone())),
                        Cell::from(num(f.bytes)),
                        Cell::from(f.sha256.as_str()),
                    ]
                })
                .collect();
            doc.table(
                &cols(&[0.25, 0.2, 0.12, 0.43]),
                &[
                    tr(lang, "再構築ファイル", "Reconstructed file"),
                    tr(lang, "種類", "Type"),
                    tr(lang, "サイズ", "Size"),
                    "SHA-256",
                ],
                rows,
            );
        }
        let _ = WHITE;
    }
}
