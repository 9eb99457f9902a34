//! 統計: traffic per hour by protocol, protocols, directions, file transfers and disk (the
//! report's environment chapter, `kuroko_report::content`, with its charts drawn by the
//! report's own SVG code), the top hosts (the index's `aggregate::top_talkers`, as
//! `kuroko search --stats` has them) and capture health (the sections of `kuroko status`,
//! through [`crate::Options::status`]). One content, never a third copy of it.
//!
//! Charts are SVG made on the server and handed to the page as text it shows through an
//! `<img src="data:image/svg+xml;…">` (no inline script, no markup inserted into the
//! page: an SVG shown as an image cannot run anything). Like the report, the page reads
//! the whole session log, so it shares the report's one-at-a-time guard.

use crate::api::{ApiError, ApiResult, Peer, S, blocking};
use crate::users::Role;
use axum::Json;
use axum::extract::{ConnectInfo, Query as UrlQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use kuroko_report::Lang;
use kuroko_report::content::{Bar, Block, Cell, Figure};
use serde::Deserialize;
use serde_json::{Value, json};

/// Hosts shown in the top list.
const TOP_HOSTS: usize = 10;

#[derive(Deserialize)]
pub struct StatsReq {
    #[serde(default)]
    lang: Option<String>,
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Text(s) | Cell::Number(s) | Cell::Code(s) | Cell::Address(s) => s.clone(),
        Cell::Grade(r) => r.to_string(),
        Cell::Score {
            risk,
            vulnerability,
            threat,
        } => format!("{risk} ({vulnerability}×{threat})"),
        Cell::Link { text, .. } | Cell::Group { text, .. } | Cell::Total { text, .. } => {
            text.clone()
        }
        Cell::Bullets(v) => v.join(" / "),
        Cell::Covered => String::new(),
    }
}

/// The report's blocks as the page draws them: `{"kind": "h"|"p"|"list"|"kv"|"table"|"svg"}`.
fn blocks_json(blocks: &[Block], out: &mut Vec<Value>) {
    for b in blocks {
        let v = match b {
            Block::Heading(t) | Block::Subheading(t) => json!({"kind": "h", "text": t}),
            Block::Para(t) | Block::Muted(t) | Block::Alert(t) => json!({"kind": "p", "text": t}),
            Block::Note { label, text } => json!({"kind": "p", "text": format!("{label}: {text}")}),
            Block::Bullets(v) | Block::Numbered(v) => json!({"kind": "list", "items": v}),
            Block::KeyValues(rows) => json!({"kind": "kv", "rows": rows}),
            Block::Table(t) => json!({
                "kind": "table",
                "columns": t.columns.iter().map(|c| &c.title).collect::<Vec<_>>(),
                "numeric": t.columns.iter().map(|c| c.numeric).collect::<Vec<_>>(),
                "rows": t.rows.iter().map(|r| r.iter().map(cell_text).collect::<Vec<_>>()).collect::<Vec<_>>(),
            }),
            Block::Figure(f) => svg(f),
            Block::FigureRow(fs) => {
                out.extend(fs.iter().map(svg));
                continue;
            }
            // Not in the environment chapter.
            Block::RiskBox { .. } | Block::Reasoning(_) | Block::Finding(_) | Block::Mail(_) => {
                continue;
            }
        };
        out.push(v);
    }
}

fn svg(f: &Figure) -> Value {
    json!({"kind": "svg", "svg": kuroko_report::html::figure(f)})
}

pub async fn stats(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlQuery(req): UrlQuery<StatsReq>,
) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Viewer)?;
    let lang = match req.lang.as_deref().unwrap_or(ctx.user.lang.as_str()) {
        "en" => Lang::En,
        "ja" => Lang::Ja,
        _ => return Err(ApiError::bad("lang is ja or en")),
    };
    blocking(move || {
        let _one = st.report_busy.try_lock().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "a report or statistics page is being made; wait until it is done and try again",
            )
        })?;
        let data = &st.opts.data;
        let config = &st.opts.config;
        let ja = lang == Lang::Ja;
        // Capture health first: it must show even when nothing has been analyzed yet.
        let status = match (st.opts.status)(data, config) {
            Ok(sections) => sections
                .into_iter()
                .filter(|s| matches!(s.key.as_str(), "capture" | "store" | "analyzer" | "disks"))
                .map(|s| json!({"key": s.key, "title": s.title, "rows": s.rows}))
                .collect(),
            Err(e) => vec![json!({"key": "error", "title": "status", "rows": [["error", e]]})],
        };
        let summary = (st.opts.store_summary)(data, config);
        let (report, warn) = kuroko_report::inputs::gather(data, config, summary)
            .map_err(|e| ApiError::internal(format!("cannot gather the statistics: {e}")))?;
        let content = kuroko_report::content::build(&report, lang);
        let mut env = Vec::new();
        if let Some(ch) = content.chapters.iter().find(|c| c.id == "environment") {
            blocks_json(&ch.blocks, &mut env);
        }
        // Top hosts by bytes moved, from the index.
        let mut top = Vec::new();
        if let Ok(index) = kuroko_index::Index::open(data) {
            let all = kuroko_index::Query::parse("*").map_err(|e| ApiError::internal(e.message))?;
            let mut talkers = kuroko_index::aggregate::top_talkers(
                &index,
                &all,
                TOP_HOSTS,
                &config.site.internal_nets(),
            )
            .map_err(|e| ApiError::internal(e.to_string()))?;
            kuroko_index::aggregate::mark_vpn_pools(&mut talkers, &config.site.vpn());
            let title = if ja {
                "上位ホスト (通信量)"
            } else {
                "Top hosts by bytes"
            };
            let bars: Vec<Bar> = talkers
                .iter()
                .map(|t| {
                    let total = t.bytes_sent + t.bytes_received;
                    Bar {
                        label: t.ip.to_string(),
                        value: total,
                        shown: kuroko_model::units::format_bytes(total),
                        color: if t.internal { "#3b6ea5" } else { "#c0392b" },
                    }
                })
                .collect();
            if !bars.is_empty() {
                top.push(svg(&Figure::HBars { title, bars }));
            }
            let cols: &[&str] = if ja {
                &["アドレス", "内部", "セッション数", "送信", "受信"]
            } else {
                &["Address", "Internal", "Sessions", "Sent", "Received"]
            };
            top.push(json!({
                "kind": "table",
                "columns": cols,
                "numeric": [false, false, true, true, true],
                "rows": talkers.iter().map(|t| vec![
                    t.ip.to_string(),
                    match (t.vpn, t.internal) {
                        (true, _) => "VPN".into(),
                        (false, true) => "✓".into(),
                        (false, false) => String::new(),
                    },
                    t.sessions.to_string(),
                    kuroko_model::units::format_bytes(t.bytes_sent),
                    kuroko_model::units::format_bytes(t.bytes_received),
                ]).collect::<Vec<_>>(),
            }));
        }
        Ok(Json(json!({
            "environment": env,
            "top_hosts": top,
            "status": status,
            "bad_sessions": warn.bad_sessions,
            "bad_findings": warn.bad_findings,
        }))
        .into_response())
    })
    .await
}
