//! 資産 (asset inventory): the hosts the traffic shows, the services they answered on (or
//! only announced over mDNS: `announced`, no sessions) and the software they announced, judged against the advisory list: the view of `kuroko
//! assets` (`kuroko_detect::load_assets` read with `assets::view::view`), one JSON object
//! per host as in `kuroko assets --format jsonl`, plus local times and each software
//! fact's worst verdict. The evidence sessions (`session` of a service, a software fact or
//! a name) link to the session detail.
//!
//! The filter (`q`) keeps the hosts whose address, MAC, names, services or software
//! (text, product, version, CVE) contain it, ignoring case: a host is shown whole.

use crate::api::{ApiError, ApiResult, Peer, S, blocking};
use crate::users::Role;
use axum::Json;
use axum::extract::{ConnectInfo, Query as UrlQuery, State as AxState};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use kuroko_detect::assets::view::HostView;
use serde::Deserialize;
use serde_json::{Value, json};

/// Longest filter text.
const MAX_FILTER: usize = 200;

#[derive(Deserialize)]
pub(crate) struct AssetsReq {
    #[serde(default)]
    q: String,
}

/// `GET /api/assets?q=TEXT` (viewer): `{"hosts": [host view + "first_local",
/// "last_local"; each software with "worst"], "total", "stats", "list_date", "enabled"}`.
pub(crate) async fn assets(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlQuery(req): UrlQuery<AssetsReq>,
) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Viewer)?;
    if req.q.len() > MAX_FILTER || req.q.chars().any(char::is_control) {
        return Err(ApiError::bad(format!(
            "the filter is text of at most {MAX_FILTER} bytes"
        )));
    }
    blocking(move || {
        st.record(&ctx.actor(), "assets_view", json!({"filter": req.q}))?;
        let data = &st.opts.data;
        let inv = kuroko_detect::load_assets(data).map_err(|e| {
            ApiError::internal(format!(
                "cannot read the asset inventory of {}: {e}",
                data.display()
            ))
        })?;
        let list = kuroko_detect::versions::advisories::AdvisoryList::load(
            &st.opts.config.intel.category_dirs,
        )
        .map_err(|e| ApiError::internal(format!("cannot load the advisory list: {e}")))?;
        let hosts = kuroko_detect::assets::view::view(&inv, &list, &st.opts.config.site.vpn());
        let total = hosts.len();
        let needle = req.q.trim().to_lowercase();
        let rows: Vec<Value> = hosts
            .iter()
            .filter(|h| needle.is_empty() || matches(h, &needle))
            .map(|h| host_json(&st, h))
            .collect();
        Ok(Json(json!({
            "hosts": rows,
            "total": total,
            "stats": inv.stats,
            "list_date": list.list_date,
            "enabled": st.opts.config.assets.enabled,
        }))
        .into_response())
    })
    .await
}

fn host_json(st: &crate::api::State, h: &HostView) -> Value {
    let mut v = serde_json::to_value(h).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("first_local".into(), json!(st.local_time(h.first_seen)));
        m.insert("last_local".into(), json!(st.local_time(h.last_seen)));
        if let Some(Value::Array(sw)) = m.get_mut("software") {
            for (j, f) in sw.iter_mut().zip(&h.software) {
                j["worst"] = json!(f.worst().map(|v| v.as_str()));
            }
        }
    }
    v
}

/// Whether `needle` (lower case) is in what the page shows of `h`.
fn matches(h: &HostView, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    has(&h.ip.to_string())
        || h.mac.as_deref().is_some_and(has)
        || h.names.iter().any(|n| has(&n.name))
        || h.services.iter().any(|s| {
            has(&s.port.to_string())
                || has(&s.protocol)
                || has(&s.transport)
                || s.announced.iter().any(|t| has(t))
        })
        || h.software.iter().any(|f| {
            has(&f.text)
                || f.product.as_deref().is_some_and(has)
                || f.version.as_deref().is_some_and(has)
                || f.advisories.iter().any(|a| a.cves.iter().any(|c| has(c)))
        })
}
