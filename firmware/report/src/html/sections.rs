//! The chapters of the HTML report, in the order of the service's report outline.

use crate::charts;
use crate::data::{GradedFinding, MAX_EVIDENCE_ROWS, OverrideSource, ReportData};
use crate::environment::Direction;
use crate::escape::{clip, esc};
use crate::texts::{self, SECTION_IDS, section_titles, tr};
use kuroko_model::SessionRecord;
use kuroko_model::finding::{Category, Lang, Risk};
use kuroko_model::units::format_bytes;
use std::fmt::Write;

fn chapter(out: &mut String, i: usize, lang: Lang) {
    let _ = writeln!(
        out,
        "<section class=\"chapter\" id=\"{}\"><h2><span class=\"num\">{}</span>{}</h2>",
        SECTION_IDS[i],
        i + 1,
        esc(section_titles(lang)[i])
    );
}

fn end(out: &mut String) {
    out.push_str("</section>\n");
}

fn badge(r: Risk) -> String {
    format!(
        "<span class=\"badge\" style=\"background:{};color:{}\">{}</span>",
        charts::risk_color(r),
        charts::risk_text_color(r),
        r
    )
}

use crate::escape::group_digits as num;

fn opt_num(v: Option<u64>, lang: Lang) -> String {
    v.map(num)
        .unwrap_or_else(|| tr(lang, "不明", "unknown").to_string())
}

fn opt_bytes(v: Option<u64>, lang: Lang) -> String {
    v.map(format_bytes)
        .unwrap_or_else(|| tr(lang, "不明", "unknown").to_string())
}

fn kv(out: &mut String, rows: &[(&str, String)]) {
    out.push_str("<table class=\"kv\">");
    for (k, v) in rows {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    out.push_str("</table>\n");
}

fn ul(items: &[String]) -> String {
    let mut s = String::from("<ul class=\"cm\">");
    for i in items {
        let _ = write!(s, "<li>{}</li>", esc(i));
    }
    s.push_str("</ul>");
    s
}

fn period_text(d: &ReportData, lang: Lang) -> String {
    match d.period {
        Some((a, b)) => format!("{} 〜 {}", d.local_time(a), d.local_time(b)),
        None => tr(lang, "データなし", "no data").to_string(),
    }
}

pub fn cover(out: &mut String, d: &ReportData, lang: Lang, title: &str) {
    let _ = write!(
        out,
        "<section class=\"cover\"><div><div class=\"conf\">{conf}</div><div class=\"title\">{title}</div><div class=\"sub\">{sub}</div>\
         <div class=\"customer\">{cust}{sama}</div></div><div>",
        conf = tr(lang, "社外秘 / CONFIDENTIAL", "CONFIDENTIAL"),
        title = esc(title),
        sub = tr(
            lang,
            "ネットワーク診断 (Network Blackbox「Kuroko」によるフルパケット分析)",
            "Network diagnosis by full-packet analysis with the Kuroko network blackbox"
        ),
        cust = esc(&d.customer_or_site(lang)),
        sama = if lang == Lang::Ja && !d.customer.trim().is_empty() {
            " 御中"
        } else {
            ""
        },
    );
    let mut rows = vec![
        (
            tr(lang, "診断対象", "Site"),
            if d.site_name.is_empty() {
                "-".into()
            } else {
                d.site_name.clone()
            },
        ),
        (tr(lang, "診断期間", "Period"), period_text(d, lang)),
        (
            tr(lang, "報告書作成日", "Issued"),
            d.local_date(d.generated),
        ),
    ];
    if !d.analyst.trim().is_empty() {
        rows.push((tr(lang, "作成者", "Prepared by"), d.analyst.clone()));
    }
    kv(out, &rows);
    out.push_str("</div></section>\n");
}

pub fn overview(out: &mut String, d: &ReportData, lang: Lang) {
    chapter(out, 0, lang);
    let _ = write!(
        out,
        "<h3>1.1 {}</h3><p>{}</p>",
        tr(lang, "診断の概要", "About this diagnosis"),
        tr(
            lang,
            "本診断は、診断対象ネットワークのミラーポートに Network Blackbox「Kuroko」を設置し、内部から内部、内部から外部への通信をフルパケットで収集・保存したうえで、プロトコル解析、ファイル・メールの再構築、検知ルールによる脅威分析を行い、検出した脅威を「脆弱性」と「脅威」の 2 要素でスコアリングしたものです。",
            "For this diagnosis the Kuroko network blackbox was attached to a mirror port of the network under review. It recorded every packet of internal and outbound traffic, decoded the protocols, reconstructed files and mails, and ran threat detections; each threat found was scored on two factors, vulnerability and threat."
        )
    );
    let _ = write!(out, "<h3>1.2 {}</h3>", tr(lang, "実施概要", "Engagement"));
    let nets = d
        .internal_networks
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    kv(
        out,
        &[
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
            (tr(lang, "診断期間", "Period"), period_text(d, lang)),
            (
                tr(lang, "タイムゾーン", "Time zone"),
                d.timezone.name().to_string(),
            ),
            (tr(lang, "内部ネットワーク", "Internal networks"), nets),
            (
                tr(lang, "利用機器", "Appliance"),
                format!("Kuroko network blackbox {}", env!("CARGO_PKG_VERSION")),
            ),
            (
                tr(lang, "報告書作成日時", "Generated"),
                d.local_time(d.generated),
            ),
        ],
    );
    let _ = write!(
        out,
        "<h3>1.3 {}</h3>",
        tr(lang, "収集統計", "Capture statistics")
    );
    let s = &d.store;
    kv(
        out,
        &[
            (
                tr(lang, "保存パケット数", "Packets stored"),
                opt_num(s.packets, lang),
            ),
            (
                tr(lang, "保存データ量", "Bytes stored"),
                opt_bytes(s.bytes, lang),
            ),
            (
                tr(lang, "取りこぼしパケット数", "Packets dropped"),
                opt_num(s.drops, lang),
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
                    (Some(t), _) => format!(
                        "{} ({})",
                        d.local_time(t),
                        tr(
                            lang,
                            "保存済みパケットはすべて解析済み",
                            "every stored packet analyzed"
                        )
                    ),
                    _ => tr(lang, "不明", "unknown").to_string(),
                },
            ),
            (
                tr(lang, "解析セッション数", "Sessions analyzed"),
                num(d.env.sessions),
            ),
            (
                tr(lang, "解析パケット数", "Packets in sessions"),
                num(d.env.packets),
            ),
            (
                tr(lang, "解析通信量 (ペイロード)", "Payload analyzed"),
                format_bytes(d.env.bytes),
            ),
            (
                tr(lang, "検出脅威数", "Findings"),
                num(d.findings.len() as u64),
            ),
        ],
    );
    end(out);
}

pub fn summary(out: &mut String, d: &ReportData, lang: Lang) {
    chapter(out, 1, lang);
    let counts = d.grade_counts();
    let _ = write!(
        out,
        "<h3>2.1 {}</h3>",
        tr(lang, "リスク値別の検出件数", "Findings per risk grade")
    );
    let total = d.findings.len();
    let lead = match lang {
        Lang::Ja => format!("診断期間中に {total} 件の脅威・脆弱性を検出しました。"),
        Lang::En => {
            format!("{total} threats and weaknesses were found during the diagnosis period.")
        }
    };
    let _ = write!(out, "<p>{}</p><div class=\"cards\">", esc(&lead));
    for (r, n) in counts {
        let _ = write!(
            out,
            "<div class=\"card grade-{r}\" style=\"border-top-color:{c}\"><div class=\"g\" style=\"color:{c}\">{r}</div><div class=\"n\" data-grade=\"{r}\">{n}</div><div class=\"m\">{m}</div></div>",
            c = charts::risk_color(r),
            m = esc(texts::grade_meaning(lang, r.as_str()))
        );
    }
    out.push_str("</div><div class=\"charts\">");
    out.push_str(&charts::grade_histogram(
        &counts,
        tr(lang, "リスク値別件数", "Findings per grade"),
    ));
    out.push_str(&charts::risk_matrix(&d.matrix(), lang));
    out.push_str("</div>\n");

    let _ = write!(
        out,
        "<h3>2.2 {}</h3>",
        tr(lang, "主要なリスク", "Top risks")
    );
    if d.findings.is_empty() {
        let _ = write!(
            out,
            "<p>{}</p>",
            tr(
                lang,
                "検出された脅威はありません。",
                "No threats were found."
            )
        );
    } else {
        let _ = write!(
            out,
            "<table><tr><th class=\"num\">No.</th><th>{}</th><th>{}</th><th>{}</th><th class=\"num\">{}</th></tr>",
            tr(lang, "リスク値", "Risk"),
            tr(lang, "脅威", "Threat"),
            tr(lang, "区分", "Category"),
            tr(lang, "件数", "Events")
        );
        for f in d.by_risk().into_iter().take(5) {
            let _ = write!(
                out,
                "<tr><td class=\"num\">{}</td><td class=\"nw\">{} ({} × {} = {})</td><td><a href=\"#f-{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td></tr>",
                f.no,
                badge(f.finding.risk),
                f.finding.vulnerability,
                f.finding.threat,
                f.finding.vulnerability * f.finding.threat,
                f.no,
                esc(&f.title(lang)),
                esc(f.finding.category.title(lang)),
                num(f.finding.count)
            );
        }
        out.push_str("</table>\n");
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
        let _ = write!(out, "<div class=\"override\">{}</div>", esc(&t));
    }

    let _ = write!(
        out,
        "<h3>2.3 {}</h3><p>{}</p>",
        tr(lang, "リスクスコアリングの基準", "Risk scoring criteria"),
        tr(
            lang,
            "リスク分析では、「脆弱性」と「脅威」の 2 要素の相乗値からリスク値を求める。評価指標「脆弱性」は、システムに対して発生した「脅威の受容可能性」を表し、評価指標「脅威」は「攻撃手法の容易さ」や「攻撃対象の発見されやすさ」を表す。",
            "Risk is the product of two factors. Vulnerability is how readily the system would accept the threat; threat is how easy the attack is and how easily the target is found."
        )
    );
    for (label, crit) in [
        (
            tr(lang, "脆弱性", "Vulnerability"),
            texts::vulnerability_criteria(lang),
        ),
        (tr(lang, "脅威", "Threat"), texts::threat_criteria(lang)),
    ] {
        let _ = write!(
            out,
            "<table><tr><th class=\"num\" style=\"width:14%\">{} {}</th><th>{}</th></tr>",
            esc(label),
            tr(lang, "評価値", "level"),
            tr(lang, "具体的な判断基準", "Criteria")
        );
        for (i, c) in crit.iter().enumerate() {
            let _ = write!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}</td></tr>",
                3 - i,
                esc(c)
            );
        }
        out.push_str("</table>");
    }
    let _ = write!(
        out,
        "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        tr(lang, "リスク値", "Risk"),
        tr(lang, "脆弱性 × 脅威", "Vulnerability × threat"),
        tr(lang, "判定条件", "Condition"),
        tr(lang, "対応の目安", "Response")
    );
    for ((g, pairs, cond), (r, _)) in texts::grade_rows(lang).iter().zip(counts) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            badge(r),
            esc(pairs),
            esc(cond),
            esc(texts::grade_meaning(lang, g))
        );
    }
    out.push_str("</table>\n");
    end(out);
}

pub fn environment(out: &mut String, d: &ReportData, lang: Lang) {
    chapter(out, 2, lang);
    let e = &d.env;
    let _ = write!(
        out,
        "<h3>3.1 {}</h3>",
        tr(
            lang,
            "プロトコル別トラフィックの推移",
            "Traffic by protocol over time"
        )
    );
    if e.sessions == 0 {
        let _ = write!(
            out,
            "<p>{}</p>",
            tr(
                lang,
                "解析済みのセッションはありません。",
                "No sessions have been analyzed."
            )
        );
    } else {
        let (series, bars) = d.traffic_series(lang);
        let unit = if e.bucket_secs >= 86400 {
            tr(lang, "日別", "per day")
        } else {
            tr(lang, "時間別", "per hour")
        };
        let title = format!("{} ({unit})", tr(lang, "通信量", "Bytes"));
        out.push_str(&charts::stacked_bars(&bars, &series, &title));
        let _ = write!(
            out,
            "<table><tr><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr>",
            tr(lang, "プロトコル", "Protocol"),
            tr(lang, "セッション数", "Sessions"),
            tr(lang, "通信量", "Bytes"),
            tr(lang, "割合", "Share")
        );
        for (p, t) in e.protocols_by_bytes() {
            let share = if e.bytes > 0 {
                t.bytes as f64 * 100.0 / e.bytes as f64
            } else {
                0.0
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{share:.1}%</td></tr>",
                esc(p),
                num(t.sessions),
                esc(&format_bytes(t.bytes))
            );
        }
        let _ = write!(
            out,
            "<tr><td><b>{}</b></td><td class=\"num\" id=\"total-sessions\"><b>{}</b></td><td class=\"num\"><b>{}</b></td><td class=\"num\">100%</td></tr></table>",
            tr(lang, "合計", "Total"),
            num(e.sessions),
            esc(&format_bytes(e.bytes))
        );
    }

    let _ = write!(
        out,
        "<h3>3.2 {}</h3>",
        tr(
            lang,
            "内部・外部通信の状況",
            "Internal and external traffic"
        )
    );
    let rows: Vec<(String, u64, String, &str)> = Direction::ALL
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let t = e.directions.get(dir).copied().unwrap_or_default();
            (
                dir.label(lang).to_string(),
                t.bytes,
                format_bytes(t.bytes),
                charts::PALETTE[i],
            )
        })
        .collect();
    out.push_str(&charts::hbars(
        &rows,
        tr(lang, "方向別の通信量", "Bytes by direction"),
    ));
    let _ = write!(
        out,
        "<table><tr><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr>",
        tr(lang, "方向", "Direction"),
        tr(lang, "セッション数", "Sessions"),
        tr(lang, "通信量", "Bytes")
    );
    for dir in Direction::ALL {
        let t = e.directions.get(&dir).copied().unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(dir.label(lang)),
            num(t.sessions),
            esc(&format_bytes(t.bytes))
        );
    }
    out.push_str("</table>\n");

    let _ = write!(
        out,
        "<h3>3.3 {}</h3>",
        tr(
            lang,
            "ファイルアップロード・ダウンロード状況",
            "File uploads and downloads"
        )
    );
    if e.files.is_empty() {
        let _ = write!(
            out,
            "<p>{}</p>",
            tr(
                lang,
                "ファイル転送は確認されませんでした。",
                "No file transfers were seen."
            )
        );
    } else {
        let mut rows = Vec::new();
        for (p, f) in &e.files {
            rows.push((
                format!("{p} ↑"),
                f.upload_bytes,
                format!("{} / {}", num(f.uploads), format_bytes(f.upload_bytes)),
                "#e67e22",
            ));
            rows.push((
                format!("{p} ↓"),
                f.download_bytes,
                format!("{} / {}", num(f.downloads), format_bytes(f.download_bytes)),
                "#2e86c1",
            ));
        }
        out.push_str(&charts::hbars(
            &rows,
            tr(
                lang,
                "プロトコル別ファイル転送量 (↑アップロード ↓ダウンロード)",
                "File transfers by protocol (↑ upload, ↓ download)",
            ),
        ));
        let _ = write!(
            out,
            "<table><tr><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr>",
            tr(lang, "プロトコル", "Protocol"),
            tr(lang, "アップロード件数", "Uploads"),
            tr(lang, "アップロード量", "Upload bytes"),
            tr(lang, "ダウンロード件数", "Downloads"),
            tr(lang, "ダウンロード量", "Download bytes")
        );
        for (p, f) in &e.files {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(p),
                num(f.uploads),
                esc(&format_bytes(f.upload_bytes)),
                num(f.downloads),
                esc(&format_bytes(f.download_bytes))
            );
        }
        out.push_str("</table>\n");
    }

    let _ = write!(
        out,
        "<h3>3.4 {}</h3>",
        tr(
            lang,
            "ディスク使用状況と保存期間",
            "Disk usage and retention"
        )
    );
    let s = &d.store;
    if let (Some(used), Some(budget)) = (s.disk_used, s.disk_budget.or(s.fs_total)) {
        let rows = vec![
            (
                tr(lang, "パケット保存領域", "Packet store").to_string(),
                used,
                format!("{} / {}", format_bytes(used), format_bytes(budget)),
                "#1f4e79",
            ),
            (
                tr(lang, "空き", "Free").to_string(),
                budget.saturating_sub(used),
                format_bytes(budget.saturating_sub(used)),
                "#b3b6b7",
            ),
        ];
        out.push_str(&charts::hbars(
            &rows,
            tr(lang, "ディスク使用状況", "Disk usage"),
        ));
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
        _ => tr(lang, "不明", "unknown").to_string(),
    };
    kv(
        out,
        &[
            (
                tr(lang, "パケット保存領域の使用量", "Packet store used"),
                opt_bytes(s.disk_used, lang),
            ),
            (
                tr(lang, "パケット保存領域の上限", "Packet store budget"),
                opt_bytes(s.disk_budget, lang),
            ),
            (
                tr(lang, "再構築ファイルの使用量", "Reconstructed files"),
                opt_bytes(s.files_bytes, lang),
            ),
            (
                tr(lang, "ファイルシステム容量", "File system size"),
                opt_bytes(s.fs_total, lang),
            ),
            (
                tr(lang, "ファイルシステム空き容量", "File system free"),
                opt_bytes(s.fs_free, lang),
            ),
            (
                tr(lang, "セグメント数", "Segments"),
                opt_num(s.segments, lang),
            ),
            (
                tr(
                    lang,
                    "保存期間 (最古〜最新のパケット)",
                    "Retention (oldest to newest packet)",
                ),
                retention,
            ),
        ],
    );
    end(out);
}

pub fn threats(out: &mut String, d: &ReportData, lang: Lang) {
    chapter(out, 3, lang);
    let _ = write!(
        out,
        "<h3>4.1 {}</h3>",
        tr(lang, "イベント検知ステータス", "Event detection status")
    );
    if d.findings.is_empty() {
        let _ = write!(
            out,
            "<p>{}</p>",
            tr(
                lang,
                "検出された脅威はありません。",
                "No threats were found."
            )
        );
        end(out);
        return;
    }
    let _ = write!(
        out,
        "<table class=\"threats\"><tr><th class=\"num\" style=\"width:4%\">No.</th><th style=\"width:13%\">{}</th><th style=\"width:17%\">{}</th><th style=\"width:13%\">{}</th><th style=\"width:13%\">{}</th><th class=\"num\" style=\"width:7%\">{}</th><th style=\"width:33%\">{}</th></tr>",
        tr(lang, "区分", "Category"),
        tr(lang, "検出内容", "Finding"),
        tr(lang, "送信元", "Source"),
        tr(lang, "宛先", "Destination"),
        tr(lang, "リスク値", "Risk"),
        tr(lang, "対応策", "Countermeasures")
    );
    // Grouped by category like the brochure's table, keeping the report numbers.
    for c in Category::ALL {
        let fs: Vec<&GradedFinding> = d
            .findings
            .iter()
            .filter(|f| f.finding.category == c)
            .collect();
        for (i, f) in fs.iter().enumerate() {
            out.push_str("<tr>");
            let _ = write!(out, "<td class=\"num\">{}</td>", f.no);
            if i == 0 {
                let _ = write!(
                    out,
                    "<td class=\"cat\" rowspan=\"{}\">{}</td>",
                    fs.len(),
                    esc(c.title(lang))
                );
            }
            let _ = write!(
                out,
                "<td><a href=\"#f-{}\">{}</a></td><td class=\"addr\">{}</td><td class=\"addr\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                f.no,
                esc(&f.title(lang)),
                esc(&d.endpoint_label(f.finding.client.as_deref(), lang)),
                esc(&d.endpoint_label(f.finding.server.as_deref(), lang)),
                badge(f.finding.risk),
                ul(&f.countermeasures(lang))
            );
        }
    }
    out.push_str("</table>\n");
    end(out);
}

pub fn scenarios(out: &mut String, d: &ReportData, lang: Lang) {
    chapter(out, 4, lang);
    let scen = d.scenarios(lang);
    if scen.is_empty() {
        let _ = write!(
            out,
            "<p>{}</p>",
            tr(
                lang,
                "リスクシナリオに該当する脅威はありません。",
                "No finding makes up a risk scenario."
            )
        );
    }
    for (i, s) in scen.iter().enumerate() {
        let _ = write!(
            out,
            "<h3>5.{} {}</h3><p class=\"muted\">{}</p>",
            i + 1,
            esc(texts::scenario_name(lang, s.category)),
            esc(texts::scenario_story(lang, s.category))
        );
        let _ = write!(
            out,
            "<div class=\"riskbox\" style=\"border-color:{c}\">{label}: {b} ({v} × {t} = {p})</div>",
            c = charts::risk_color(s.risk),
            label = tr(lang, "リスク値", "Risk"),
            b = badge(s.risk),
            v = s.vulnerability,
            t = s.threat,
            p = s.vulnerability * s.threat
        );
        let _ = write!(out, "<h4>{}</h4><ul>", tr(lang, "評価の根拠", "Reasoning"));
        for f in &s.findings {
            let _ = write!(
                out,
                "<li><b>No.{} {}</b> — {} {} / {} {} → {}",
                f.no,
                esc(&f.title(lang)),
                tr(lang, "脆弱性レベル", "vulnerability"),
                f.finding.vulnerability,
                tr(lang, "脅威レベル", "threat"),
                f.finding.threat,
                badge(f.finding.risk)
            );
            reasoning_block(out, f, lang);
            if let Some(r) = &f.override_reason {
                let _ = write!(
                    out,
                    "<div class=\"override\">{}</div>",
                    esc(&override_text(f, r, lang))
                );
            }
            out.push_str("</li>");
        }
        out.push_str("</ul>");
        let _ = write!(
            out,
            "<h4>{}</h4><ol>",
            tr(lang, "対応策", "Countermeasures")
        );
        for cm in &s.countermeasures {
            let _ = write!(out, "<li>{}</li>", esc(cm));
        }
        out.push_str("</ol>\n");
    }
    end(out);
}

fn override_text(f: &GradedFinding, reason: &str, lang: Lang) -> String {
    let src = match f.override_source {
        Some(OverrideSource::SiteFile) => "site.toml",
        _ => tr(lang, "設定ファイル", "configuration"),
    };
    match lang {
        Lang::Ja => format!(
            "コンサルタントによる評価値の変更 ({src}): 脆弱性 {} × 脅威 {} = {} → 脆弱性 {} × 脅威 {} = {}。理由: {reason}",
            f.original_vulnerability,
            f.original_threat,
            f.original_risk,
            f.finding.vulnerability,
            f.finding.threat,
            f.finding.risk
        ),
        Lang::En => format!(
            "Levels changed by the consultant ({src}): vulnerability {} × threat {} = {} → vulnerability {} × threat {} = {}. Reason: {reason}",
            f.original_vulnerability,
            f.original_threat,
            f.original_risk,
            f.finding.vulnerability,
            f.finding.threat,
            f.finding.risk
        ),
    }
}

fn session_summary(s: &SessionRecord) -> String {
    if let Some(h) = &s.http {
        return format!(
            "{} {}",
            h.method.as_deref().unwrap_or(""),
            h.url.as_deref().unwrap_or("")
        );
    }
    if let Some(m) = &s.mail {
        return format!(
            "{} → {}: {}",
            m.from.as_deref().unwrap_or(""),
            m.to.join(", "),
            m.subject.as_deref().unwrap_or("")
        );
    }
    if let Some(t) = &s.tls {
        return format!("SNI {}", t.sni.as_deref().unwrap_or("-"));
    }
    if let Some(x) = &s.ssh {
        return format!(
            "{} / {}",
            x.client_version.as_deref().unwrap_or("-"),
            x.server_version.as_deref().unwrap_or("-")
        );
    }
    if let Some(f) = &s.ftp {
        return format!(
            "{} {}",
            f.user
                .as_deref()
                .map(|u| format!("user {u}"))
                .unwrap_or_default(),
            f.commands
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if let Some(dns) = &s.dns {
        return dns.query.clone().unwrap_or_default();
    }
    if let Some(t) = &s.telnet {
        return t
            .user
            .as_deref()
            .map(|u| format!("user {u}"))
            .unwrap_or_default();
    }
    if let Some(o) = &s.oracle {
        return o.service_name.clone().unwrap_or_default();
    }
    String::new()
}

pub fn details(out: &mut String, d: &ReportData, lang: Lang) {
    chapter(out, 5, lang);
    if d.findings.is_empty() {
        let _ = write!(
            out,
            "<p>{}</p>",
            tr(
                lang,
                "検出された脅威はありません。",
                "No threats were found."
            )
        );
    }
    if d.missing_evidence > 0 {
        let t = match lang {
            Lang::Ja => format!(
                "証跡セッションのうち {} 件はセッションログにありません (保存期間外、または未解析)。",
                d.missing_evidence
            ),
            Lang::En => format!(
                "{} evidence sessions are no longer in the session log (rotated out or not yet analyzed).",
                d.missing_evidence
            ),
        };
        let _ = write!(out, "<p class=\"muted\">{}</p>", esc(&t));
    }
    for f in &d.findings {
        finding_detail(out, d, f, lang);
    }
    end(out);
}

fn finding_detail(out: &mut String, d: &ReportData, g: &GradedFinding, lang: Lang) {
    let f = &g.finding;
    let _ = write!(
        out,
        "<div class=\"finding\" id=\"f-{no}\"><h3>6.{no} {b} {t}</h3>",
        no = g.no,
        b = badge(f.risk),
        t = esc(&g.title(lang))
    );
    kv(
        out,
        &[
            (
                tr(lang, "区分", "Category"),
                f.category.title(lang).to_string(),
            ),
            (tr(lang, "検知ルール", "Rule"), f.rule.clone()),
            ("ID", f.id.clone()),
            (
                "MITRE ATT&CK",
                if f.attack.is_empty() {
                    "-".into()
                } else {
                    f.attack.join(", ")
                },
            ),
            (
                tr(lang, "送信元", "Source"),
                d.endpoint_label(f.client.as_deref(), lang),
            ),
            (
                tr(lang, "宛先", "Destination"),
                d.endpoint_label(f.server.as_deref(), lang),
            ),
            (
                tr(lang, "初回検知", "First seen"),
                d.local_time(f.first_seen),
            ),
            (tr(lang, "最終検知", "Last seen"), d.local_time(f.last_seen)),
            (tr(lang, "検知回数", "Events"), num(f.count)),
            (
                tr(lang, "リスク値", "Risk"),
                format!(
                    "{} ({} {} × {} {} = {})",
                    f.risk,
                    tr(lang, "脆弱性", "vulnerability"),
                    f.vulnerability,
                    tr(lang, "脅威", "threat"),
                    f.threat,
                    f.vulnerability * f.threat
                ),
            ),
        ],
    );
    let _ = write!(out, "<h4>{}</h4>", tr(lang, "脅威説明", "Description"));
    reasoning_block(out, g, lang);
    if let Some(r) = &g.override_reason {
        let _ = write!(
            out,
            "<div class=\"override\">{}</div>",
            esc(&override_text(g, r, lang))
        );
    }
    if let Some(n) = &g.note {
        let _ = write!(
            out,
            "<div class=\"note\"><b>{}</b> {}</div>",
            tr(lang, "分析者コメント:", "Analyst note:"),
            esc(n)
        );
    }
    let _ = write!(
        out,
        "<h4>{}</h4>{}",
        tr(lang, "対応策", "Countermeasures"),
        ul(&g.countermeasures(lang))
    );

    // Timeline: evidence sessions in time order.
    let mut sessions: Vec<&SessionRecord> = f
        .evidence
        .iter()
        .filter_map(|id| d.evidence.get(id))
        .collect();
    sessions.sort_by_key(|s| s.start);
    let _ = write!(
        out,
        "<h4>{}</h4>",
        tr(
            lang,
            "証跡セッション (時系列)",
            "Evidence sessions (timeline)"
        )
    );
    if sessions.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">{}</p>",
            tr(
                lang,
                "証跡セッションはセッションログにありません。",
                "The evidence sessions are not in the session log."
            )
        );
    } else {
        let _ = write!(
            out,
            "<table class=\"ev\"><tr><th style=\"width:16%\">{}</th><th style=\"width:9%\">{}</th><th style=\"width:18%\">{}</th><th style=\"width:18%\">{}</th><th class=\"num\" style=\"width:9%\">{}</th><th>{}</th></tr>",
            tr(lang, "日時", "Time"),
            tr(lang, "プロトコル", "Protocol"),
            tr(lang, "送信元", "Client"),
            tr(lang, "宛先", "Server"),
            tr(lang, "通信量", "Bytes"),
            tr(lang, "内容", "Summary")
        );
        for s in sessions.iter().take(MAX_EVIDENCE_ROWS) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}:{}</td><td class=\"mono\">{}:{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&d.local_time(s.start)),
                esc(&s.protocol),
                esc(&s.client.ip.to_string()),
                s.client.port,
                esc(&s.server.ip.to_string()),
                s.server.port,
                esc(&format_bytes(s.bytes_up + s.bytes_down)),
                esc(&clip(&session_summary(s), 200))
            );
        }
        out.push_str("</table>");
        if sessions.len() > MAX_EVIDENCE_ROWS {
            let t = match lang {
                Lang::Ja => format!(
                    "他 {} 件 (エクスポートの sessions.csv に全件を収録)",
                    sessions.len() - MAX_EVIDENCE_ROWS
                ),
                Lang::En => format!(
                    "{} more (all are in the export's sessions.csv)",
                    sessions.len() - MAX_EVIDENCE_ROWS
                ),
            };
            let _ = write!(out, "<p class=\"muted\">{}</p>", esc(&t));
        }
    }

    // Reconstructed mails and files, shown inert.
    let mut shown_mail = 0;
    for s in &sessions {
        if let Some(m) = &s.mail {
            if shown_mail == 0 {
                let _ = write!(
                    out,
                    "<h4>{}</h4>",
                    tr(
                        lang,
                        "再構築されたメール (テキストとして表示)",
                        "Reconstructed mail (shown as text)"
                    )
                );
            }
            shown_mail += 1;
            mail_block(out, d, m, lang);
        }
    }
    let files: Vec<&kuroko_model::session::FileRef> =
        sessions.iter().flat_map(|s| s.files.iter()).collect();
    if !files.is_empty() {
        let _ = write!(
            out,
            "<h4>{}</h4><p class=\"muted\">{}</p><table><tr><th>{}</th><th>{}</th><th class=\"num\">{}</th><th>{}</th><th>SHA-256</th></tr>",
            tr(lang, "再構築されたファイル", "Reconstructed files"),
            tr(
                lang,
                "ファイルは表示・実行せず、属性のみ記載しています。実体はエクスポートのパスワード付き ZIP (パスワード: infected) に収録しています。",
                "Files are described, never opened or embedded. The files themselves are in the export's password zip (password: infected)."
            ),
            tr(lang, "ファイル名", "Name"),
            tr(lang, "種類", "Type"),
            tr(lang, "サイズ", "Size"),
            tr(lang, "方向", "Direction")
        );
        for fr in files.iter().take(MAX_EVIDENCE_ROWS) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                esc(fr.name.as_deref().unwrap_or("-")),
                esc(fr.content_type.as_deref().unwrap_or(&fr.kind)),
                num(fr.bytes),
                esc(match fr.direction.as_str() {
                    "upload" => tr(lang, "アップロード", "upload"),
                    "download" => tr(lang, "ダウンロード", "download"),
                    other => other,
                }),
                esc(&fr.sha256)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</div>\n");
}

fn mail_block(out: &mut String, d: &ReportData, m: &kuroko_model::session::Mail, lang: Lang) {
    out.push_str("<div class=\"mail\"><div class=\"hdr\">");
    let from = match (&m.from_display, &m.from) {
        (Some(n), Some(a)) => format!("{n} <{a}>"),
        (None, Some(a)) => a.clone(),
        (Some(n), None) => n.clone(),
        _ => "-".into(),
    };
    let _ = write!(out, "<b>From:</b> {}<br>", esc(&from));
    if let Some(env) = &m.mail_from {
        let _ = write!(out, "<b>MAIL FROM:</b> {}<br>", esc(env));
    }
    if let Some(r) = &m.reply_to {
        let _ = write!(out, "<b>Reply-To:</b> {}<br>", esc(r));
    }
    let _ = write!(out, "<b>To:</b> {}<br>", esc(&clip(&m.to.join(", "), 400)));
    let _ = write!(
        out,
        "<b>Subject:</b> {}",
        esc(m.subject.as_deref().unwrap_or(""))
    );
    out.push_str("</div>");
    if let Some(t) = m.eml_sha256.as_ref().and_then(|sha| d.mails.get(sha)) {
        let _ = write!(out, "<pre>{}</pre>", esc(&t.text));
        if t.truncated {
            let _ = write!(
                out,
                "<p class=\"muted\">{}</p>",
                tr(
                    lang,
                    "(本文の続きは省略)",
                    "(the rest of the text is left out)"
                )
            );
        }
    }
    if !m.links.is_empty() {
        let _ = write!(
            out,
            "<table><tr><th>{}</th><th>{}</th></tr>",
            tr(lang, "リンクの表示テキスト", "Link text shown"),
            tr(lang, "実際のリンク先 (href)", "Actual target (href)")
        );
        for l in m.links.iter().take(MAX_EVIDENCE_ROWS) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"mono\">{}</td></tr>",
                esc(&l.text),
                esc(&l.href)
            );
        }
        out.push_str("</table>");
    }
    if !m.attachments.is_empty() {
        let _ = write!(
            out,
            "<table><tr><th>{}</th><th>{}</th><th class=\"num\">{}</th><th>SHA-256</th></tr>",
            tr(lang, "添付ファイル", "Attachment"),
            tr(lang, "種類", "Type"),
            tr(lang, "サイズ", "Size")
        );
        for a in &m.attachments {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td></tr>",
                esc(&a.name),
                esc(a.content_type.as_deref().unwrap_or("-")),
                num(a.bytes),
                esc(a.sha256.as_deref().unwrap_or("-"))
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</div>");
}

/// The rule's reasoning as a paragraph, then what this finding's traffic showed.
fn reasoning_block(out: &mut String, f: &GradedFinding, lang: Lang) {
    if let Some(t) = texts::rule_text(&f.finding.rule, lang) {
        let _ = write!(out, "<p>{}</p>", esc(t.reasoning));
    }
    if !f.finding.signals.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">{}</p>{}",
            tr(
                lang,
                "検知の根拠となった通信の特徴:",
                "What the traffic showed:"
            ),
            ul(&f.finding.signals)
        );
    }
}
