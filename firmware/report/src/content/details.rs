//! Chapter 6 (検出脅威詳細): each finding with its evidence, mails and files shown inert.

use super::parts::*;
use super::scenarios::{override_text, reasoning};
use super::{Block, Cell, Column, FindingView, MailView, Table, TableStyle};
use crate::data::{GradedFinding, MAX_EVIDENCE_ROWS, ReportData};
use crate::escape::clip;
use crate::escape::group_digits as num;
use crate::texts::tr;
use kuroko_model::SessionRecord;
use kuroko_model::finding::Lang;
use kuroko_model::session::{FileRef, Mail};
use kuroko_model::units::format_bytes;

/// What one evidence session was, in `lang` (the data it carries stays as it was sent).
fn session_summary(s: &SessionRecord, lang: Lang) -> String {
    let user = |u: &str| match lang {
        Lang::Ja => format!("ユーザー {u}"),
        Lang::En => format!("user {u}"),
    };
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
        // What matters is who logged in and which files moved, not FEAT / OPTS.
        let mut parts: Vec<String> = f.user.iter().map(|u| user(u)).collect();
        if f.files.is_empty() {
            parts.extend(
                f.commands
                    .iter()
                    .filter(|c| kuroko_model::session::ftp_is_transfer_command(c))
                    .take(4)
                    .cloned(),
            );
        }
        parts.extend(f.files.iter().take(4).map(|file| file.describe(lang)));
        if f.files.len() > 4 {
            parts.push(format!("+{}", f.files.len() - 4));
        }
        return parts.join("; ");
    }
    if let Some(dns) = &s.dns {
        return dns.query.clone().unwrap_or_default();
    }
    if let Some(t) = &s.telnet {
        return t.user.as_deref().map(user).unwrap_or_default();
    }
    if let Some(o) = &s.oracle {
        return o.service_name.clone().unwrap_or_default();
    }
    String::new()
}

/// Evidence sessions that say the same thing (protocol, client address, server, summary:
/// 20 WinRM requests with the same SOAP action from new client ports), shown as one row
/// with their count and time span.
struct SameSessions<'a> {
    summary: String,
    sessions: Vec<&'a SessionRecord>,
}

/// Groups `sessions` (in time order) by what a reader sees, keeping the order of each
/// group's first session.
fn collapse<'a>(sessions: &[&'a SessionRecord], lang: Lang) -> Vec<SameSessions<'a>> {
    let mut out: Vec<SameSessions<'a>> = Vec::new();
    for s in sessions {
        let summary = session_summary(s, lang);
        match out.iter_mut().find(|g| {
            let f = g.sessions[0];
            g.summary == summary
                && f.protocol == s.protocol
                && f.client.ip == s.client.ip
                && f.server == s.server
        }) {
            Some(g) => g.sessions.push(s),
            None => out.push(SameSessions {
                summary,
                sessions: vec![s],
            }),
        }
    }
    out
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
            .row("通信量", "Volume", f.volume.describe(lang))
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
    let groups = collapse(&sessions, lang);
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
            rows: groups
                .iter()
                .take(MAX_EVIDENCE_ROWS)
                .map(|g| {
                    let (first, last) = (g.sessions[0], g.sessions[g.sessions.len() - 1]);
                    let n = g.sessions.len();
                    let bytes: u64 = g.sessions.iter().map(|s| s.bytes_up + s.bytes_down).sum();
                    vec![
                        Cell::Text(if n > 1 {
                            format!(
                                "{} 〜 {}",
                                d.local_time(first.start),
                                d.local_time(last.start)
                            )
                        } else {
                            d.local_time(first.start)
                        }),
                        Cell::Text(first.protocol.clone()),
                        Cell::Code(if n > 1 {
                            first.client.ip.to_string()
                        } else {
                            format!("{}:{}", first.client.ip, first.client.port)
                        }),
                        Cell::Code(format!("{}:{}", first.server.ip, first.server.port)),
                        Cell::Number(format_bytes(bytes)),
                        Cell::Text(if n > 1 {
                            format!("{} ×{n}", clip(&g.summary, 200))
                        } else {
                            clip(&g.summary, 200)
                        }),
                    ]
                })
                .collect(),
        }));
        if groups.len() > MAX_EVIDENCE_ROWS {
            let more: usize = groups[MAX_EVIDENCE_ROWS..]
                .iter()
                .map(|g| g.sessions.len())
                .sum();
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
    let phishing = f.rule == kuroko_detect::RuleId::PhishingMail.as_str();
    for m in mails {
        b.push(Block::Mail(mail_view(d, m, lang)));
        if phishing {
            b.extend(lure_quotes(d, m, lang));
        }
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

/// Passages quoted from a phishing mail's text under it.
pub const MAX_QUOTED_PASSAGES: usize = 3;

/// The passages of a phishing mail's reconstructed text that carry its lure (account
/// frozen, identity check, password; or the text of one of its links), quoted as written,
/// each with the terms it holds (`kuroko_content::passage`). Plain text like the mail
/// itself: every renderer escapes it.
fn lure_quotes(d: &ReportData, m: &Mail, lang: Lang) -> Vec<Block> {
    let Some(text) = m.eml_sha256.as_ref().and_then(|sha| d.mails.get(sha)) else {
        return Vec::new();
    };
    let links: Vec<String> = m.links.iter().map(|l| l.text.clone()).collect();
    kuroko_content::passage::lure_passages(&text.text, &links, MAX_QUOTED_PASSAGES)
        .into_iter()
        .map(|p| Block::Note {
            label: tr(lang, "該当箇所:", "Matching passage:"),
            text: match lang {
                Lang::Ja => format!("「{}」({})", p.text, p.terms.join("、")),
                Lang::En => format!("“{}” ({})", p.text, p.terms.join(", ")),
            },
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::Timestamp;
    use kuroko_model::session::{Endpoint, Http};

    fn winrm(i: u16, uri: &str) -> SessionRecord {
        let mut s = SessionRecord::new(
            format!("w{i}"),
            Timestamp(1_794_963_600_000_000_000 + i64::from(i) * 1_000_000_000),
            "tcp",
            Endpoint::new("10.0.0.5".parse().unwrap(), 50_000 + i),
            Endpoint::new("10.0.0.9".parse().unwrap(), 5985),
        );
        s.protocol = "http".into();
        s.http = Some(Http {
            method: Some("POST".into()),
            url: Some(format!("10.0.0.9:5985{uri}")),
            ..Default::default()
        });
        s
    }

    #[test]
    fn near_identical_evidence_sessions_collapse_into_one_row() {
        let mut v: Vec<SessionRecord> = (0..20).map(|i| winrm(i, "/wsman")).collect();
        v.push(winrm(20, "/wsman?PSVersion=5.1"));
        let refs: Vec<&SessionRecord> = v.iter().collect();
        let g = collapse(&refs, Lang::En);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].sessions.len(), 20);
        assert_eq!(g[1].sessions.len(), 1);
        assert_eq!(g[0].summary, "POST 10.0.0.9:5985/wsman");
    }
}
