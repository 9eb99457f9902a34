//! 警報 (alarms): the appliance's latched alarms, as `kuroko status` and the front panel
//! show them (the binary's `alarms` section, passed in as [`crate::Options::alarms`]), and
//! their acknowledgment with the front panel's own function ([`crate::Options::acknowledge`],
//! which appends to `DATA/alarms/log.jsonl`). Every page's header shows the number of
//! latched alarms from `GET /api/alarms`.
//!
//! Reading is not audited (the header asks on every page); an acknowledgment is, before it
//! is made, with how many alarms it covered; one that fails after its line is audited as
//! `alarm_ack_failed`.

use crate::api::{ApiError, ApiResult, Peer, S, blocking};
use crate::users::Role;
use axum::Json;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::json;

/// `GET /api/alarms` (viewer): the `alarms` section of `kuroko status`
/// (`{"latched", "alarms": [...], "log_error", …}`; each alarm also with `since_local` and
/// `acknowledged_at_local`) and whether this user may acknowledge.
pub(crate) async fn list(AxState(st): S, ConnectInfo(peer): Peer, headers: HeaderMap) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Viewer)?;
    blocking(move || {
        let mut v = (st.opts.alarms)(&st.opts.data);
        v["may_acknowledge"] = json!(ctx.user.role >= Role::Analyst);
        // The site's clock, as every other time the console shows.
        if let Some(list) = v["alarms"].as_array_mut() {
            for a in list {
                for (key, local) in [
                    ("since", "since_local"),
                    ("acknowledged_at", "acknowledged_at_local"),
                ] {
                    let t = a[key]
                        .as_str()
                        .and_then(|s| kuroko_model::Timestamp::parse_rfc3339(s).ok());
                    a[local] = json!(t.map(|t| st.local_time(t)));
                }
            }
        }
        Ok(Json(v).into_response())
    })
    .await
}

/// `POST /api/alarms/ack` (analyst, CSRF): acknowledges every latched alarm as
/// `web:USER@ADDR`; `{"acknowledged": n}`.
pub(crate) async fn acknowledge(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Analyst)?;
    st.check_csrf(&ctx, &headers)?;
    blocking(move || {
        let before = (st.opts.alarms)(&st.opts.data);
        let latched: Vec<String> = before["alarms"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["latched"] == json!(true))
                    .map(|x| {
                        format!(
                            "{}/{}",
                            x["kind"].as_str().unwrap_or(""),
                            x["subject"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        st.record(&ctx.actor(), "alarm_ack", json!({"alarms": latched}))?;
        let who = format!("web:{}@{}", ctx.user.name, ctx.addr);
        match (st.opts.acknowledge)(&st.opts.data, &who) {
            Ok(n) => Ok(Json(json!({"acknowledged": n})).into_response()),
            Err(e) => {
                st.record(&ctx.actor(), "alarm_ack_failed", json!({"error": e}))?;
                Err(ApiError::internal(format!(
                    "the acknowledgment could not be written: {e}"
                )))
            }
        }
    })
    .await
}
