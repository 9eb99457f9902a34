//! レポート: the diagnosis report (HTML or PDF, ja or en) as a download, made by the report
//! crate from the same data `kuroko report` gathers (`kuroko_report::inputs::gather` with
//! the binary's store summary), never a copy of it.
//!
//! A report reads the whole session log, so one is made at a time: a second request while
//! one runs gets 503 `busy` at once (the page says to wait) instead of queueing work on
//! the appliance. The download is audited (`report_download`) before it is made.

use crate::api::{ApiError, ApiResult, Peer, S, blocking};
use crate::users::Role;
use axum::extract::{ConnectInfo, Query as UrlQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use kuroko_report::Lang;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct ReportReq {
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

pub async fn download(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlQuery(req): UrlQuery<ReportReq>,
) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Viewer)?;
    let lang_s = req.lang.unwrap_or_else(|| ctx.user.lang.clone());
    let lang = match lang_s.as_str() {
        "ja" => Lang::Ja,
        "en" => Lang::En,
        _ => return Err(ApiError::bad("lang is ja or en")),
    };
    let pdf = match req.format.as_deref().unwrap_or("html") {
        "html" => false,
        "pdf" => true,
        _ => return Err(ApiError::bad("format is html or pdf")),
    };
    blocking(move || {
        let _one = st.report_busy.try_lock().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "another report is being made; wait until it is done and try again",
            )
        })?;
        let format = if pdf { "pdf" } else { "html" };
        st.record(
            &ctx.actor(),
            "report_download",
            json!({"lang": lang_s, "format": format}),
        )?;
        let data = &st.opts.data;
        let summary = (st.opts.store_summary)(data, &st.opts.config);
        let (report, warn) = kuroko_report::inputs::gather(data, &st.opts.config, summary)
            .map_err(|e| ApiError::internal(format!("cannot gather the report's data: {e}")))?;
        let (bytes, ctype) = if pdf {
            let font = kuroko_report::pdf::find_font(None).map_err(|e| {
                ApiError::internal(format!("{e}; the HTML report works without it"))
            })?;
            let b = kuroko_report::pdf::render(&report, lang, &font)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            (b, "application/pdf")
        } else {
            (
                kuroko_report::html::render(&report, lang).into_bytes(),
                "text/html; charset=utf-8",
            )
        };
        let day = chrono::Utc::now().format("%Y%m%d");
        let name = format!("attachment; filename=\"kuroko-report-{day}-{lang_s}.{format}\"");
        let mut resp = bytes.into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&name).map_err(|e| ApiError::internal(e.to_string()))?,
        );
        // Records left out of the report because they did not parse: said, not hidden.
        h.insert(
            "x-kuroko-bad-findings",
            HeaderValue::from(warn.bad_findings),
        );
        h.insert(
            "x-kuroko-bad-sessions",
            HeaderValue::from(warn.bad_sessions),
        );
        Ok(resp)
    })
    .await
}
