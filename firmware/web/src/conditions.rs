//! 条件リスト: the alert conditions (saved searches) in the browser. The one store is
//! `kuroko_index::alerts::store` (the alert engine reads it at each ingest run, so a change
//! is live without a restart); queries are checked with the search parser, and its error
//! comes back with the column for the caret.
//!
//! Anyone may list; analyst and admin may change. Every change is checked first
//! (`store::precheck`: a refused one answers 4xx and is not a change), then written to the
//! audit log, then done: a change the log cannot record is not done, and a change that
//! fails after its audit line (a race, a disk error) gets a `condition_change_failed` line.

use crate::api::{ApiError, ApiResult, Peer, S, State, blocking};
use crate::users::Role;
use axum::Json;
use axum::extract::{ConnectInfo, Path as UrlPath, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use kuroko_index::alerts::store::{self, Draft, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Query(q) => ApiError(
            StatusCode::BAD_REQUEST,
            json!({"error": "query", "field": "query", "message": q.message, "column": q.column}),
        ),
        StoreError::Invalid(field, m) => ApiError(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid", "field": field, "message": m}),
        ),
        e @ StoreError::NotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        e @ StoreError::ReadOnly(..) => {
            ApiError::new(StatusCode::CONFLICT, "read_only", e.to_string())
        }
        e => ApiError::internal(e.to_string()),
    }
}

/// Ids are `cN` for stored conditions and the name for shipped and config ones.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= store::MAX_NAME && !id.chars().any(char::is_control)
}

/// Every condition with its hits in the alert log and when it last fired.
pub async fn list(AxState(st): S, ConnectInfo(peer): Peer, headers: HeaderMap) -> ApiResult {
    let _ctx = st.auth(&headers, peer, Role::Viewer)?;
    blocking(move || {
        let (entries, err) = store::entries(&st.opts.data, &st.opts.config);
        let hits = store::hit_counts(&st.opts.data)
            .map_err(|e| ApiError::internal(format!("the alert log cannot be read: {e}")))?;
        let rows: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                let (n, last) = hits
                    .get(&e.name)
                    .copied()
                    .map_or((0, None), |(n, t)| (n, Some(t)));
                if let Value::Object(m) = &mut v {
                    m.insert("hits".into(), json!(n));
                    m.insert(
                        "last_fired_local".into(),
                        json!(last.map(|t| st.local_time(t))),
                    );
                    m.insert(
                        "query_error".into(),
                        json!(
                            kuroko_index::Query::parse(&e.query)
                                .err()
                                .map(|q| q.message)
                        ),
                    );
                }
                v
            })
            .collect();
        Ok(Json(json!({
            "conditions": rows,
            "store_error": err.map(|e| e.to_string()),
            "severities": store::SEVERITIES,
        }))
        .into_response())
    })
    .await
}

fn draft_json(d: &Draft) -> Value {
    json!({"name": d.name.trim(), "query": d.query, "severity": d.severity, "comment": d.comment, "enabled": d.enabled})
}

fn changer(
    st: &State,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
) -> Result<crate::api::Ctx, ApiError> {
    let ctx = st.auth(headers, peer, Role::Analyst)?;
    st.check_csrf(&ctx, headers)?;
    Ok(ctx)
}

/// Records the failure of a change whose audit line was already written.
fn failed(st: &State, ctx: &crate::api::Ctx, action: &str, e: StoreError) -> ApiError {
    let _ = st.record(
        &ctx.actor(),
        "condition_change_failed",
        json!({"change": action, "error": e.to_string()}),
    );
    store_err(e)
}

pub async fn create(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(d): Json<Draft>,
) -> ApiResult {
    let ctx = changer(&st, &headers, peer)?;
    blocking(move || {
        store::precheck(&st.opts.data, &st.opts.config, None, Some(&d), false)
            .map_err(store_err)?;
        st.record(&ctx.actor(), "condition_create", draft_json(&d))?;
        let id = store::create(&st.opts.data, &st.opts.config, &d, &ctx.user.name)
            .map_err(|e| failed(&st, &ctx, "condition_create", e))?;
        Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
    })
    .await
}

pub async fn edit(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(d): Json<Draft>,
) -> ApiResult {
    let ctx = changer(&st, &headers, peer)?;
    if !valid_id(&id) {
        return Err(ApiError::bad("not a condition id"));
    }
    blocking(move || {
        store::precheck(&st.opts.data, &st.opts.config, Some(&id), Some(&d), false)
            .map_err(store_err)?;
        let mut detail = draft_json(&d);
        detail["id"] = json!(id);
        st.record(&ctx.actor(), "condition_edit", detail)?;
        store::edit(&st.opts.data, &st.opts.config, &id, &d)
            .map_err(|e| failed(&st, &ctx, "condition_edit", e))?;
        Ok(Json(json!({"id": id})).into_response())
    })
    .await
}

#[derive(Deserialize)]
pub struct EnabledReq {
    enabled: bool,
}

pub async fn set_enabled(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(req): Json<EnabledReq>,
) -> ApiResult {
    let ctx = changer(&st, &headers, peer)?;
    if !valid_id(&id) {
        return Err(ApiError::bad("not a condition id"));
    }
    blocking(move || {
        let action = if req.enabled {
            "condition_enable"
        } else {
            "condition_disable"
        };
        store::precheck(&st.opts.data, &st.opts.config, Some(&id), None, true)
            .map_err(store_err)?;
        st.record(&ctx.actor(), action, json!({"id": id}))?;
        let name = store::set_enabled(&st.opts.data, &st.opts.config, &id, req.enabled)
            .map_err(|e| failed(&st, &ctx, action, e))?;
        Ok(Json(json!({"id": id, "name": name, "enabled": req.enabled})).into_response())
    })
    .await
}

pub async fn delete(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> ApiResult {
    let ctx = changer(&st, &headers, peer)?;
    if !valid_id(&id) {
        return Err(ApiError::bad("not a condition id"));
    }
    blocking(move || {
        store::precheck(&st.opts.data, &st.opts.config, Some(&id), None, false)
            .map_err(store_err)?;
        st.record(&ctx.actor(), "condition_delete", json!({"id": id}))?;
        let gone = store::delete(&st.opts.data, &st.opts.config, &id)
            .map_err(|e| failed(&st, &ctx, "condition_delete", e))?;
        Ok(Json(json!({"id": id, "name": gone.name})).into_response())
    })
    .await
}
