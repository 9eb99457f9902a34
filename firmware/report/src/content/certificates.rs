//! §3.7: the servers' certificates seen in the traffic (leaf certificates of TLS
//! handshakes up to TLS 1.2, also through CONNECT and STARTTLS): subject, issuer,
//! validity, the servers that presented them, how many sessions showed them, and what is
//! wrong with them. Rows come from [`crate::certificates::CertStats`], whose judgment is
//! the `weak_tls` rule's (`kuroko_model::certs::judge_leaf`).

use super::parts::*;
use super::{Block, Cell, Column};
use crate::certificates::CertSeen;
use crate::data::ReportData;
use crate::escape::group_digits as num;
use crate::texts::tr;
use kuroko_model::finding::Lang;

/// Rows in the table; the rest are counted under it.
pub const MAX_ROWS: usize = 40;

/// The date part of an RFC 3339 time (`2026-01-05T00:00:00Z` → `2026-01-05`).
fn day(t: &str) -> &str {
    t.split('T').next().unwrap_or(t)
}

/// What is wrong with `c`, in the report's words (`-` when nothing).
pub fn problems(c: &CertSeen, lang: Lang) -> String {
    let mut v = Vec::new();
    if c.self_signed {
        v.push(tr(lang, "自己署名", "self-signed").to_string());
    }
    if c.expired_sessions > 0 {
        v.push(format!(
            "{} ({})",
            tr(lang, "期限切れ", "expired"),
            num(c.expired_sessions)
        ));
    }
    if c.mismatch_sessions > 0 {
        v.push(format!(
            "{} ({})",
            tr(lang, "名前不一致", "name mismatch"),
            num(c.mismatch_sessions)
        ));
    }
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

pub fn certificates(d: &ReportData, lang: Lang) -> Vec<Block> {
    let st = &d.certs;
    let mut b = vec![heading(
        "3.7",
        tr(lang, "サーバー証明書", "Server certificates"),
    )];
    if st.certs.is_empty() {
        b.push(muted(tr(
            lang,
            "証明書を確認できたTLSセッションはありません (TLS 1.3 では証明書は暗号化されています)。",
            "No TLS session showed a certificate (TLS 1.3 encrypts it).",
        )));
        return b;
    }
    let bad_inside = st
        .certs
        .iter()
        .filter(|c| c.internal && c.has_problem())
        .count();
    b.push(para(&match lang {
        Lang::Ja => format!(
            "TLS のハンドシェイク (HTTP CONNECT や STARTTLS の内側を含む) で提示されたサーバー証明書は {} 種類で、そのうち内部サーバーの {} 種類に問題 (期限切れ・自己署名・名前不一致) がありました。括弧内はその状態で使われたセッション数です。期限切れはセッション時点で判定しています。",
            num(st.certs.len() as u64),
            num(bad_inside as u64)
        ),
        Lang::En => format!(
            "TLS handshakes (also inside HTTP CONNECT and STARTTLS) showed {} distinct server certificates; {} of the inside servers' have a problem (expired, self-signed or name mismatch). Numbers in brackets count the sessions that saw it so; expiry is judged at each session's time.",
            num(st.certs.len() as u64),
            num(bad_inside as u64)
        ),
    }));
    let rows = st.report_order();
    let total = rows.len();
    b.push(table(
        vec![
            Column::new(tr(lang, "サブジェクト", "Subject"), Some(22)),
            Column::new(tr(lang, "発行者", "Issuer"), Some(18)),
            Column::new(tr(lang, "有効期間", "Validity"), Some(14)),
            Column::new(tr(lang, "サーバー", "Servers"), Some(16)),
            Column::num(tr(lang, "セッション数", "Sessions"), Some(10)),
            Column::new(tr(lang, "問題", "Problems"), Some(20)),
        ],
        rows.into_iter()
            .take(MAX_ROWS)
            .map(|c| {
                vec![
                    Cell::Text(c.subject.clone()),
                    Cell::Text(c.issuer.clone()),
                    Cell::Text(format!("{} 〜 {}", day(&c.not_before), day(&c.not_after))),
                    Cell::Bullets(c.servers.iter().cloned().collect()),
                    Cell::Number(num(c.sessions)),
                    Cell::Text(problems(c, lang)),
                ]
            })
            .collect(),
    ));
    if total > MAX_ROWS {
        b.push(muted(&match lang {
            Lang::Ja => format!(
                "ほか {} 種類は省略しています (`kuroko search 'cert_sha256:…'` で個別に確認できます)。",
                num((total - MAX_ROWS) as u64)
            ),
            Lang::En => format!(
                "{} more are left out (`kuroko search 'cert_sha256:…'` finds each).",
                num((total - MAX_ROWS) as u64)
            ),
        }));
    }
    if st.folded_sessions > 0 {
        b.push(muted(&match lang {
            Lang::Ja => format!(
                "証明書の種類が上限 {} を超えたため、{} セッションは集計していません。",
                num(crate::certificates::MAX_CERTS as u64),
                num(st.folded_sessions)
            ),
            Lang::En => format!(
                "{} sessions are not counted: more than {} distinct certificates were seen.",
                num(st.folded_sessions),
                num(crate::certificates::MAX_CERTS as u64)
            ),
        }));
    }
    b
}
