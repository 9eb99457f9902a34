//! The chapters' content, in the order of the service's report outline. Wording follows
//! the service's sample report; numbers come from [`ReportData`] only.

use super::{
    Bar, Block, Cell, Column, Cover, Figure, FindingView, MailView, ReasonItem, Table, TableStyle,
};
use crate::charts;
use crate::data::{GradedFinding, MAX_EVIDENCE_ROWS, OverrideSource, ReportData};
use crate::environment::Direction;
use crate::escape::clip;
use crate::escape::group_digits as num;
use crate::texts::{self, tr};
use kuroko_model::SessionRecord;
use kuroko_model::finding::{Category, Lang};
use kuroko_model::session::{FileRef, Mail};
use kuroko_model::units::format_bytes;

fn unknown(lang: Lang) -> String {
    tr(lang, "不明", "unknown").to_string()
}

fn opt_num(v: Option<u64>, lang: Lang) -> String {
    v.map(num).unwrap_or_else(|| unknown(lang))
}

fn opt_bytes(v: Option<u64>, lang: Lang) -> String {
    v.map(format_bytes).unwrap_or_else(|| unknown(lang))
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// Key/value rows, the keys given in both languages.
struct Facts {
    lang: Lang,
    rows: Vec<(String, String)>,
}

impl Facts {
    fn new(lang: Lang) -> Facts {
        Facts {
            lang,
            rows: Vec::new(),
        }
    }
    fn row(mut self, ja: &'static str, en: &'static str, value: impl Into<String>) -> Facts {
        self.rows
            .push((tr(self.lang, ja, en).to_string(), value.into()));
        self
    }
    fn block(self) -> Block {
        Block::KeyValues(self.rows)
    }
}

fn heading(n: &str, title: &str) -> Block {
    Block::Heading(format!("{n} {title}"))
}

fn para(s: &str) -> Block {
    Block::Para(s.to_string())
}

fn muted(s: &str) -> Block {
    Block::Muted(s.to_string())
}

fn sub(s: &str) -> Block {
    Block::Subheading(s.to_string())
}

fn table(columns: Vec<Column>, rows: Vec<Vec<Cell>>) -> Block {
    Block::Table(Table {
        style: TableStyle::Plain,
        fixed: false,
        columns,
        rows,
    })
}

fn no_threats(lang: Lang) -> Block {
    para(tr(
        lang,
        "検出された脅威はありません。",
        "No threats were found.",
    ))
}

fn period_text(d: &ReportData, lang: Lang) -> String {
    match d.period {
        Some((a, b)) => format!("{} 〜 {}", d.local_time(a), d.local_time(b)),
        None => tr(lang, "データなし", "no data").to_string(),
    }
}

pub fn cover(d: &ReportData, lang: Lang) -> Cover {
    let mut addressee = d.customer_or_site(lang);
    if lang == Lang::Ja && !d.customer.trim().is_empty() {
        addressee.push_str(" 御中");
    }
    let mut facts = Facts::new(lang)
        .row("診断対象", "Site", or_dash(&d.site_name))
        .row("診断期間", "Period", period_text(d, lang))
        .row("報告書作成日", "Issued", d.local_date(d.generated));
    if !d.analyst.trim().is_empty() {
        facts = facts.row("作成者", "Prepared by", d.analyst.clone());
    }
    Cover {
        confidential: tr(lang, "社外秘 / CONFIDENTIAL", "CONFIDENTIAL"),
        subtitle: tr(
            lang,
            "ネットワーク診断 (Network Blackbox「Kuroko」によるフルパケット分析)",
            "Network diagnosis by full-packet analysis with the Kuroko network blackbox",
        ),
        addressee,
        facts: facts.rows,
    }
}

pub fn overview(d: &ReportData, lang: Lang) -> Vec<Block> {
    let nets = d
        .internal_networks
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let appliance = format!("Kuroko network blackbox {}", env!("CARGO_PKG_VERSION"));
    let s = &d.store;
    let analyzed = match (s.analyzed_to, s.analyzer_lag_secs) {
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
        _ => unknown(lang),
    };
    vec![
        heading("1.1", tr(lang, "診断の概要", "About this diagnosis")),
        para(tr(
            lang,
            "本診断は、診断対象ネットワークのミラーポートに Network Blackbox「Kuroko」を設置し、内部から内部、内部から外部への通信をフルパケットで収集・保存したうえで、プロトコル解析、ファイル・メールの再構築、検知ルールによる脅威分析を行い、検出した脅威を「脆弱性」と「脅威」の 2 要素でスコアリングしたものです。",
            "For this diagnosis the Kuroko network blackbox was attached to a mirror port of the network under review. It recorded every packet of internal and outbound traffic, decoded the protocols, reconstructed files and mails, and ran threat detections; each threat found was scored on two factors, vulnerability and threat.",
        )),
        heading("1.2", tr(lang, "実施概要", "Engagement")),
        Facts::new(lang)
            .row("お客様名", "Customer", or_dash(&d.customer))
            .row("診断対象", "Site", or_dash(&d.site_name))
            .row("診断期間", "Period", period_text(d, lang))
            .row("タイムゾーン", "Time zone", d.timezone.name())
            .row("内部ネットワーク", "Internal networks", nets)
            .row("利用機器", "Appliance", appliance)
            .row("報告書作成日時", "Generated", d.local_time(d.generated))
            .block(),
        heading("1.3", tr(lang, "収集統計", "Capture statistics")),
        Facts::new(lang)
            .row("保存パケット数", "Packets stored", opt_num(s.packets, lang))
            .row("保存データ量", "Bytes stored", opt_bytes(s.bytes, lang))
            .row(
                "取りこぼしパケット数",
                "Packets dropped",
                opt_num(s.drops, lang),
            )
            .row("解析済み範囲", "Analyzed up to", analyzed)
            .row("解析セッション数", "Sessions analyzed", num(d.env.sessions))
            .row("解析パケット数", "Packets in sessions", num(d.env.packets))
            .row(
                "解析通信量 (ペイロード)",
                "Payload analyzed",
                format_bytes(d.env.bytes),
            )
            .row("検出脅威数", "Findings", num(d.findings.len() as u64))
            .block(),
    ]
}

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
    let mut b = vec![
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
    ];
    if d.findings.is_empty() {
        b.push(no_threats(lang));
    } else {
        let rows = d
            .by_risk()
            .into_iter()
            .take(5)
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
    b
}

pub fn threats(d: &ReportData, lang: Lang) -> Vec<Block> {
    let mut b = vec![heading(
        "4.1",
        tr(lang, "イベント検知ステータス", "Event detection status"),
    )];
    if d.findings.is_empty() {
        b.push(no_threats(lang));
        return b;
    }
    // Grouped by category like the brochure's table, keeping the report numbers.
    let mut rows = Vec::new();
    for c in Category::ALL {
        let fs: Vec<&GradedFinding> = d
            .findings
            .iter()
            .filter(|f| f.finding.category == c)
            .collect();
        for (i, f) in fs.iter().enumerate() {
            rows.push(vec![
                Cell::Number(f.no.to_string()),
                if i == 0 {
                    Cell::Group {
                        text: c.title(lang).to_string(),
                        rows: fs.len(),
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
fn reasoning(f: &GradedFinding, lang: Lang) -> Vec<Block> {
    let mut b = Vec::new();
    if let Some(t) = texts::rule_text(&f.finding.rule, lang) {
        b.push(para(t.reasoning));
    }
    if !f.finding.signals.is_empty() {
        b.push(muted(tr(
            lang,
            "検知の根拠となった通信の特徴:",
            "What the traffic showed:",
        )));
        b.push(Block::Bullets(f.finding.signals.clone()));
    }
    b
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

pub fn details(d: &ReportData, lang: Lang) -> Vec<Block> {
    let mut b = Vec::new();
    if d.findings.is_empty() {
        b.push(no_threats(lang));
    }
    if d.missing_evidence > 0 {
        b.push(Block::Muted(match lang {
            Lang::Ja => format!(
                "証跡セッションのうち {} 件はセッションログにありません (保存期間外、または未解析)。",
                d.missing_evidence
            ),
            Lang::En => format!(
                "{} evidence sessions are no longer in the session log (rotated out or not yet analyzed).",
                d.missing_evidence
            ),
        }));
    }
    for f in &d.findings {
        b.push(finding_detail(d, f, lang));
    }
    b
}

fn finding_detail(d: &ReportData, g: &GradedFinding, lang: Lang) -> Block {
    let f = &g.finding;
    let attack = if f.attack.is_empty() {
        "-".into()
    } else {
        f.attack.join(", ")
    };
    let risk = format!(
        "{} ({} {} × {} {} = {})",
        f.risk,
        tr(lang, "脆弱性", "vulnerability"),
        f.vulnerability,
        tr(lang, "脅威", "threat"),
        f.threat,
        f.vulnerability * f.threat
    );
    let mut b = vec![
        Facts::new(lang)
            .row("区分", "Category", f.category.title(lang))
            .row("検知ルール", "Rule", f.rule.clone())
            .row("ID", "ID", f.id.clone())
            .row("MITRE ATT&CK", "MITRE ATT&CK", attack)
            .row(
                "送信元",
                "Source",
                d.endpoint_label(f.client.as_deref(), lang),
            )
            .row(
                "宛先",
                "Destination",
                d.endpoint_label(f.server.as_deref(), lang),
            )
            .row("初回検知", "First seen", d.local_time(f.first_seen))
            .row("最終検知", "Last seen", d.local_time(f.last_seen))
            .row("検知回数", "Events", num(f.count))
            .row("リスク値", "Risk", risk)
            .block(),
    ];
    b.push(sub(tr(lang, "脅威説明", "Description")));
    b.extend(reasoning(g, lang));
    if let Some(r) = &g.override_reason {
        b.push(Block::Alert(override_text(g, r, lang)));
    }
    if let Some(n) = &g.note {
        b.push(Block::Note {
            label: tr(lang, "分析者コメント:", "Analyst note:"),
            text: n.clone(),
        });
    }
    b.push(sub(tr(lang, "対応策", "Countermeasures")));
    b.push(Block::Bullets(g.countermeasures(lang)));

    // Timeline: evidence sessions in time order.
    let mut sessions: Vec<&SessionRecord> = f
        .evidence
        .iter()
        .filter_map(|id| d.evidence.get(id))
        .collect();
    sessions.sort_by_key(|s| s.start);
    b.push(sub(tr(
        lang,
        "証跡セッション (時系列)",
        "Evidence sessions (timeline)",
    )));
    if sessions.is_empty() {
        b.push(muted(tr(
            lang,
            "証跡セッションはセッションログにありません。",
            "The evidence sessions are not in the session log.",
        )));
    } else {
        b.push(Block::Table(Table {
            style: TableStyle::Evidence,
            fixed: true,
            columns: vec![
                Column::new(tr(lang, "日時", "Time"), Some(16)),
                Column::new(tr(lang, "プロトコル", "Protocol"), Some(9)),
                Column::new(tr(lang, "送信元", "Client"), Some(18)),
                Column::new(tr(lang, "宛先", "Server"), Some(18)),
                Column::num(tr(lang, "通信量", "Bytes"), Some(9)),
                Column::new(tr(lang, "内容", "Summary"), None),
            ],
            rows: sessions
                .iter()
                .take(MAX_EVIDENCE_ROWS)
                .map(|s| {
                    vec![
                        Cell::Text(d.local_time(s.start)),
                        Cell::Text(s.protocol.clone()),
                        Cell::Code(format!("{}:{}", s.client.ip, s.client.port)),
                        Cell::Code(format!("{}:{}", s.server.ip, s.server.port)),
                        Cell::Number(format_bytes(s.bytes_up + s.bytes_down)),
                        Cell::Text(clip(&session_summary(s), 200)),
                    ]
                })
                .collect(),
        }));
        if sessions.len() > MAX_EVIDENCE_ROWS {
            let more = sessions.len() - MAX_EVIDENCE_ROWS;
            b.push(Block::Muted(match lang {
                Lang::Ja => format!("他 {more} 件 (エクスポートの sessions.csv に全件を収録)"),
                Lang::En => format!("{more} more (all are in the export's sessions.csv)"),
            }));
        }
    }

    // Reconstructed mails and files, shown inert.
    let mut mails = sessions.iter().filter_map(|s| s.mail.as_ref()).peekable();
    if mails.peek().is_some() {
        b.push(sub(tr(
            lang,
            "再構築されたメール (テキストとして表示)",
            "Reconstructed mail (shown as text)",
        )));
    }
    for m in mails {
        b.push(Block::Mail(mail_view(d, m, lang)));
    }
    let files: Vec<&FileRef> = sessions.iter().flat_map(|s| s.files.iter()).collect();
    if !files.is_empty() {
        b.push(sub(tr(lang, "再構築されたファイル", "Reconstructed files")));
        b.push(muted(tr(
            lang,
            "ファイルは表示・実行せず、属性のみ記載しています。実体はエクスポートのパスワード付き ZIP (パスワード: infected) に収録しています。",
            "Files are described, never opened or embedded. The files themselves are in the export's password zip (password: infected).",
        )));
        b.push(table(
            vec![
                Column::new(tr(lang, "ファイル名", "Name"), Some(22)),
                Column::new(tr(lang, "種類", "Type"), Some(18)),
                Column::num(tr(lang, "サイズ", "Size"), Some(10)),
                Column::new(tr(lang, "方向", "Direction"), Some(12)),
                Column::new("SHA-256", Some(38)),
            ],
            files
                .iter()
                .take(MAX_EVIDENCE_ROWS)
                .map(|fr| {
                    vec![
                        Cell::Text(fr.name.clone().unwrap_or_else(|| "-".into())),
                        Cell::Text(fr.content_type.clone().unwrap_or_else(|| fr.kind.clone())),
                        Cell::Number(num(fr.bytes)),
                        Cell::Text(
                            match fr.direction.as_str() {
                                "upload" => tr(lang, "アップロード", "upload"),
                                "download" => tr(lang, "ダウンロード", "download"),
                                other => other,
                            }
                            .to_string(),
                        ),
                        Cell::Code(fr.sha256.clone()),
                    ]
                })
                .collect(),
        ));
    }
    Block::Finding(FindingView {
        no: g.no,
        risk: f.risk,
        title: g.title(lang),
        blocks: b,
    })
}

fn mail_view(d: &ReportData, m: &Mail, lang: Lang) -> MailView {
    let from = match (&m.from_display, &m.from) {
        (Some(n), Some(a)) => format!("{n} <{a}>"),
        (None, Some(a)) => a.clone(),
        (Some(n), None) => n.clone(),
        _ => "-".into(),
    };
    let mut headers = vec![("From", from)];
    if let Some(env) = &m.mail_from {
        headers.push(("MAIL FROM", env.clone()));
    }
    if let Some(r) = &m.reply_to {
        headers.push(("Reply-To", r.clone()));
    }
    headers.push(("To", clip(&m.to.join(", "), 400)));
    headers.push(("Subject", m.subject.clone().unwrap_or_default()));
    let text = m.eml_sha256.as_ref().and_then(|sha| d.mails.get(sha));
    let mut tables = Vec::new();
    if !m.links.is_empty() {
        tables.push(Table {
            style: TableStyle::Plain,
            fixed: false,
            columns: vec![
                Column::new(
                    tr(lang, "リンクの表示テキスト", "Link text shown"),
                    Some(45),
                ),
                Column::new(
                    tr(lang, "実際のリンク先 (href)", "Actual target (href)"),
                    Some(55),
                ),
            ],
            rows: m
                .links
                .iter()
                .take(MAX_EVIDENCE_ROWS)
                .map(|l| vec![Cell::Text(l.text.clone()), Cell::Code(l.href.clone())])
                .collect(),
        });
    }
    if !m.attachments.is_empty() {
        tables.push(Table {
            style: TableStyle::Plain,
            fixed: false,
            columns: vec![
                Column::new(tr(lang, "添付ファイル", "Attachment"), Some(25)),
                Column::new(tr(lang, "種類", "Type"), Some(22)),
                Column::num(tr(lang, "サイズ", "Size"), Some(11)),
                Column::new("SHA-256", Some(42)),
            ],
            rows: m
                .attachments
                .iter()
                .map(|a| {
                    vec![
                        Cell::Text(a.name.clone()),
                        Cell::Text(a.content_type.clone().unwrap_or_else(|| "-".into())),
                        Cell::Number(num(a.bytes)),
                        Cell::Code(a.sha256.clone().unwrap_or_else(|| "-".into())),
                    ]
                })
                .collect(),
        });
    }
    MailView {
        headers,
        text: text.map(|t| t.text.clone()),
        truncated: text.filter(|t| t.truncated).map(|_| {
            tr(
                lang,
                "(本文の続きは省略)",
                "(the rest of the text is left out)",
            )
        }),
        tables,
    }
}
