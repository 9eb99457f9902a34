//! ユーザ管理 (admin only): list users, add one, change a role, switch a user off or on,
//! set a one-time password (changed by the user at the next login), remove a user. The same `UserStore` as `kuroko user` (one user file, one lock);
//! the last enabled admin cannot be demoted or switched off.
//!
//! Every change is written to the audit log first (`user_add`, `user_role`,
//! `user_disable`, `user_enable`, `user_passwd`, `user_remove`, by the admin with its address), then
//! made; a change refused after its line (a bad password, the last admin, a name taken)
//! gets a `user_change_failed` line with the reason. Switching a user off or setting its
//! password ends its sessions at once.

use crate::api::{ApiError, ApiResult, Ctx, Peer, S, State, blocking};
use crate::users::{Role, UserError};
use axum::Json;
use axum::extract::{ConnectInfo, Path as UrlPath, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

fn user_err(e: UserError) -> ApiError {
    match e {
        UserError::Password(p) => ApiError::new(StatusCode::BAD_REQUEST, "password", p.to_string()),
        e @ (UserError::BadName(_) | UserError::Exists(_)) => {
            ApiError::new(StatusCode::BAD_REQUEST, "name", e.to_string())
        }
        e @ UserError::LastAdmin => {
            ApiError::new(StatusCode::CONFLICT, "last_admin", e.to_string())
        }
        e @ UserError::NoSuchUser(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        e => ApiError::internal(e.to_string()),
    }
}

fn admin(st: &State, headers: &HeaderMap, peer: std::net::SocketAddr) -> Result<Ctx, ApiError> {
    let ctx = st.auth(headers, peer, Role::Admin)?;
    st.check_csrf(&ctx, headers)?;
    Ok(ctx)
}

/// Audits `action`, then runs `f`; a failure after the line gets its own line.
fn audited(
    st: &State,
    ctx: &Ctx,
    action: &str,
    detail: Value,
    f: impl FnOnce() -> Result<(), UserError>,
) -> Result<(), ApiError> {
    st.record(&ctx.actor(), action, detail.clone())?;
    f().map_err(|e| {
        let _ = st.record(
            &ctx.actor(),
            "user_change_failed",
            json!({"change": action, "user": detail["user"], "error": e.to_string()}),
        );
        user_err(e)
    })
}

pub async fn list(AxState(st): S, ConnectInfo(peer): Peer, headers: HeaderMap) -> ApiResult {
    let _ctx = st.auth(&headers, peer, Role::Admin)?;
    blocking(move || {
        let now = chrono::Utc::now().timestamp();
        let users = st.users.load().map_err(user_err)?.users;
        let rows: Vec<Value> = users
            .iter()
            .map(|u| {
                json!({"name": u.name, "role": u.role.as_str(), "lang": u.lang, "disabled": u.disabled,
                       "locked": u.locked_until > now, "failed_logins": u.failed, "token": u.token_sha256.is_some()})
            })
            .collect();
        Ok(Json(json!({"users": rows})).into_response())
    })
    .await
}

#[derive(Deserialize)]
pub struct AddReq {
    name: String,
    role: String,
    password: String,
    #[serde(default)]
    lang: Option<String>,
}

fn role(s: &str) -> Result<Role, ApiError> {
    Role::parse(s).ok_or_else(|| ApiError::bad("role is admin, analyst or viewer"))
}

pub async fn add(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(req): Json<AddReq>,
) -> ApiResult {
    let ctx = admin(&st, &headers, peer)?;
    let r = role(&req.role)?;
    if !crate::users::valid_name(&req.name) {
        return Err(user_err(UserError::BadName(req.name)));
    }
    blocking(move || {
        let lang = req.lang.as_deref().unwrap_or("ja").to_string();
        audited(
            &st,
            &ctx,
            "user_add",
            json!({"user": req.name, "role": r.as_str()}),
            || st.users.add(&req.name, r, &req.password, &lang),
        )?;
        Ok((StatusCode::CREATED, Json(json!({"name": req.name}))).into_response())
    })
    .await
}

#[derive(Deserialize)]
pub struct ChangeReq {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    password: Option<String>,
}

pub async fn change(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
    Json(req): Json<ChangeReq>,
) -> ApiResult {
    let ctx = admin(&st, &headers, peer)?;
    if !crate::users::valid_name(&name) {
        return Err(ApiError::bad("not a user name"));
    }
    let new_role = req.role.as_deref().map(role).transpose()?;
    blocking(move || {
        if st.users.get(&name).map_err(user_err)?.is_none() {
            return Err(user_err(UserError::NoSuchUser(name)));
        }
        if let Some(r) = new_role {
            audited(
                &st,
                &ctx,
                "user_role",
                json!({"user": name, "role": r.as_str()}),
                || st.users.set_role(&name, r),
            )?;
        }
        if let Some(off) = req.disabled {
            let action = if off { "user_disable" } else { "user_enable" };
            audited(&st, &ctx, action, json!({"user": name}), || {
                st.users.set_disabled(&name, off)
            })?;
            if off {
                st.sessions.end_user(&name, None);
            }
        }
        if let Some(pw) = &req.password {
            audited(&st, &ctx, "user_passwd", json!({"user": name}), || {
                st.users.set_one_time_password(&name, pw)
            })?;
            // A one-time password: the user changes it at the next login. Its sessions
            // end (the generation moved).
            st.sessions.end_user(&name, None);
        }
        Ok(Json(json!({"name": name})).into_response())
    })
    .await
}

/// `DELETE /api/users/NAME`: removes the user (its sessions and API token end at once).
/// The last enabled admin cannot be removed (409 `last_admin`: the user store's rule, as
/// for `kuroko user remove`).
pub async fn remove(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    let ctx = admin(&st, &headers, peer)?;
    if !crate::users::valid_name(&name) {
        return Err(ApiError::bad("not a user name"));
    }
    blocking(move || {
        if st.users.get(&name).map_err(user_err)?.is_none() {
            return Err(user_err(UserError::NoSuchUser(name)));
        }
        audited(&st, &ctx, "user_remove", json!({"user": name}), || {
            st.users.remove(&name)
        })?;
        st.sessions.end_user(&name, None);
        Ok(Json(json!({"removed": name})).into_response())
    })
    .await
}
