//! The routes: pages, static assets and the JSON API under `/api/`.
//!
//! Every handler starts with [`State::auth`] (who, with which role; 401/403 otherwise) and,
//! for a state change, [`State::check_csrf`]; the audit event is written before the answer.
//! Handlers that touch the disk or hash passwords run on the blocking pool.

use crate::audit::{Actor, AuditLog};
use crate::sessions::{Session, Sessions};
use crate::users::{LoginRefused, Role, User, UserStore};
use axum::Json;
use axum::extract::{ConnectInfo, Path as UrlPath, Query as UrlQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The session cookie.
pub const COOKIE: &str = "kuroko_session";
/// The header that carries the CSRF token on every state-changing request.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Most results one page may ask for.
pub const MAX_PAGE: usize = 500;
/// Deepest result an ascending (oldest first) page may reach: it needs the whole prefix.
pub const MAX_ASC_WINDOW: usize = 100_000;
/// How often a search lets the index catch up with the session log (and for how long).
const CATCH_UP_EVERY: Duration = Duration::from_secs(2);
const CATCH_UP_SLICE: Duration = Duration::from_millis(500);

pub struct State {
    pub opts: crate::Options,
    pub users: UserStore,
    pub audit: AuditLog,
    pub sessions: Sessions,
    tz: chrono_tz::Tz,
    /// Held while a report is generated: one at a time (it reads the whole session log).
    pub(crate) report_busy: std::sync::Mutex<()>,
    last_catch_up: std::sync::Mutex<Option<Instant>>,
}

/// An error answer: status and a JSON body `{"error": code, "message": …, …}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub Value);

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError(status, json!({"error": code, "message": message.into()}))
    }
    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "login_required", "log in first")
    }
    fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role may not do this",
        )
    }
    pub(crate) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// Who is asking.
pub struct Ctx {
    pub user: User,
    pub addr: String,
    /// Cookie sessions (id and state); `None` for API-token requests.
    pub session: Option<(String, Session)>,
}

impl Ctx {
    pub(crate) fn actor(&self) -> Actor<'_> {
        Actor {
            user: &self.user.name,
            addr: self.addr.clone(),
        }
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

impl State {
    pub fn new(opts: crate::Options) -> anyhow::Result<State> {
        let dir = crate::web_dir(&opts.data);
        let tz = opts
            .config
            .site
            .tz()
            .map_err(|m| anyhow::anyhow!("[site] timezone: {m}"))?;
        Ok(State {
            users: UserStore::new(&dir),
            audit: AuditLog::new(&dir),
            sessions: Sessions::new(opts.idle_timeout),
            tz,
            report_busy: std::sync::Mutex::new(()),
            last_catch_up: std::sync::Mutex::new(None),
            opts,
        })
    }

    /// The user behind a request (API token or session cookie) with at least `role`. A
    /// user whose password is a one-time one gets 403 `password_change_required` here:
    /// only [`State::auth_pending_change`] (me, password, language, logout) lets it in.
    pub fn auth(&self, headers: &HeaderMap, addr: SocketAddr, role: Role) -> Result<Ctx, ApiError> {
        let ctx = self.auth_pending_change(headers, addr, role)?;
        if ctx.user.must_change {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "password_change_required",
                "this is a one-time password: change it first",
            ));
        }
        Ok(ctx)
    }

    /// [`State::auth`] that lets a user with a one-time password in.
    pub fn auth_pending_change(
        &self,
        headers: &HeaderMap,
        addr: SocketAddr,
        role: Role,
    ) -> Result<Ctx, ApiError> {
        let addr = addr.ip().to_string();
        let users_err = |e: crate::users::UserError| ApiError::internal(e.to_string());
        let ctx = if let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            let user = self.users.by_token(token.trim()).map_err(users_err)?;
            let user = user.ok_or_else(ApiError::unauthorized)?;
            Ctx {
                user,
                addr,
                session: None,
            }
        } else {
            let id = cookie_value(headers, COOKIE).ok_or_else(ApiError::unauthorized)?;
            let s = self.sessions.get(id).ok_or_else(ApiError::unauthorized)?;
            let user = self.users.get(&s.user).map_err(users_err)?;
            // A removed user or a changed password ends the session.
            let Some(user) = user.filter(|u| u.generation == s.generation && !u.disabled) else {
                self.sessions.end(id);
                return Err(ApiError::unauthorized());
            };
            Ctx {
                user,
                addr,
                session: Some((id.to_string(), s)),
            }
        };
        if ctx.user.role < role {
            return Err(ApiError::forbidden());
        }
        Ok(ctx)
    }

    /// A state change from a browser session must carry the session's CSRF token and, when
    /// the browser names its origin, come from this console's own origin.
    pub fn check_csrf(&self, ctx: &Ctx, headers: &HeaderMap) -> Result<(), ApiError> {
        check_origin(headers)?;
        let Some((_, s)) = &ctx.session else {
            return Ok(()); // API token: no ambient credential a forged request could use.
        };
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !crate::users::ct_eq(sent, &s.csrf) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong CSRF token; reload the page",
            ));
        }
        Ok(())
    }

    pub(crate) fn record(
        &self,
        who: &Actor<'_>,
        action: &str,
        detail: Value,
    ) -> Result<(), ApiError> {
        self.audit.append(who, action, detail).map_err(|e| {
            ApiError::internal(format!(
                "the audit log cannot be written ({e}); the action was not done"
            ))
        })
    }

    fn catch_up(&self) {
        {
            let mut last = self.last_catch_up.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < CATCH_UP_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        if self.opts.data.join("sessions").exists() {
            // Another process (the indexer of `kuroko run`) may hold the writer: then the
            // committed index is what we search.
            let _ = kuroko_index::ingest_pending_within(
                &self.opts.data,
                &self.opts.config,
                Some(CATCH_UP_SLICE),
            );
        }
    }

    pub(crate) fn local_time(&self, t: kuroko_model::time::Timestamp) -> String {
        t.to_datetime()
            .with_timezone(&self.tz)
            .format("%Y/%m/%d %H:%M:%S%.3f")
            .to_string()
    }
}

/// `Origin`, when present, must be this host over https (a cross-site form post names its
/// own origin; same-origin fetches name ours).
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if origin.to_str().ok() != Some(&format!("https://{host}")) || host.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin",
            "request from another site refused",
        ));
    }
    Ok(())
}

/// Session ids are short printable tokens; anything else (`../`, quotes, NUL) is refused
/// before it reaches the index.
fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 96
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}

pub(crate) type S = AxState<Arc<State>>;
pub(crate) type Peer = ConnectInfo<SocketAddr>;

pub fn router(state: Arc<State>) -> axum::Router {
    axum::Router::new()
        .route("/", get(app_page))
        .route("/login", get(login_page))
        .route("/static/{name}", get(static_asset))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/password", post(password))
        .route("/api/lang", post(set_lang))
        .route("/api/search", get(search))
        .route("/api/open", get(open_sessions))
        .route("/api/assets", get(crate::inventory::assets))
        .route("/api/alarms", get(crate::alarms::list))
        .route("/api/alarms/ack", post(crate::alarms::acknowledge))
        .route("/api/sessions/{id}", get(session_detail))
        .route("/api/sessions/{id}/pcap", get(session_pcap))
        .route("/api/audit", get(audit))
        .route("/api/report", get(crate::report::download))
        .route("/api/stats", get(crate::stats::stats))
        .route(
            "/api/users",
            get(crate::user_admin::list).post(crate::user_admin::add),
        )
        .route(
            "/api/users/{name}",
            post(crate::user_admin::change).delete(crate::user_admin::remove),
        )
        .route("/api/findings", get(findings))
        .route(
            "/api/conditions",
            get(crate::conditions::list).post(crate::conditions::create),
        )
        .route(
            "/api/conditions/{id}",
            post(crate::conditions::edit).delete(crate::conditions::delete),
        )
        .route(
            "/api/conditions/{id}/enabled",
            post(crate::conditions::set_enabled),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// The headers every answer carries.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, "strict-transport-security", "max-age=31536000");
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cache-control", "no-store");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    resp
}

async fn not_found(AxState(st): S, ConnectInfo(peer): Peer, headers: HeaderMap) -> ApiResult {
    // Without a session even "not found" is not said.
    st.auth(&headers, peer, Role::Viewer)?;
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such page",
    ))
}

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn app_page(AxState(st): S, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    // A user with a one-time password gets the page too: the page shows only the password
    // change (and every API but me/password/lang/logout refuses it). With `auth`, the
    // login of such a user bounced back to the login page and it could never change it.
    match st.auth_pending_change(&headers, peer, Role::Viewer) {
        Ok(_) => html(crate::assets::APP_HTML),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response(),
    }
}

async fn login_page() -> Response {
    html(crate::assets::LOGIN_HTML)
}

async fn static_asset(UrlPath(name): UrlPath<String>) -> Response {
    match crate::assets::get(&name) {
        Some((ctype, body)) => ([(header::CONTENT_TYPE, ctype)], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn session_cookie(id: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict{age}"
    ))
    .expect("cookie")
}

fn me_json(user: &User, csrf: &str) -> Value {
    json!({"user": user.name, "role": user.role.as_str(), "lang": user.lang, "csrf": csrf, "must_change": user.must_change})
}

#[derive(Deserialize)]
struct LoginReq {
    user: String,
    password: String,
}

async fn login(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(req): Json<LoginReq>,
) -> ApiResult {
    check_origin(&headers)?;
    let addr = peer.ip().to_string();
    let name = if crate::users::valid_name(&req.user) {
        req.user.clone()
    } else {
        String::new()
    };
    let st2 = st.clone();
    blocking(move || {
        let outcome = if name.is_empty() || req.password.len() > 1024 {
            Ok(Err(LoginRefused::BadCredentials))
        } else {
            st2.users.check_login(&name, &req.password)
        };
        let outcome = outcome.map_err(|e| ApiError::internal(e.to_string()))?;
        let shown = if name.is_empty() { "(invalid name)".to_string() } else { name.clone() };
        let who = Actor { user: &shown, addr };
        match outcome {
            Ok(user) => {
                st2.record(&who, "login", json!({}))?;
                let (id, s) = st2.sessions.start(&user.name, user.generation);
                let mut resp = Json(me_json(&user, &s.csrf)).into_response();
                resp.headers_mut().insert(header::SET_COOKIE, session_cookie(&id, None));
                Ok(resp)
            }
            Err(LoginRefused::BadCredentials) => {
                st2.record(&who, "login_failed", json!({"reason": "bad_credentials"}))?;
                Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad_credentials", "wrong user name or password"))
            }
            Err(LoginRefused::Locked { until }) => {
                st2.record(&who, "login_failed", json!({"reason": "locked"}))?;
                let secs = (until - chrono::Utc::now().timestamp()).max(1);
                Err(ApiError(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"error": "locked", "message": format!("too many failed logins: the account is locked for {secs} s"), "retry_after": secs}),
                ))
            }
        }
    })
    .await
}

async fn logout(AxState(st): S, ConnectInfo(peer): Peer, headers: HeaderMap) -> ApiResult {
    let ctx = st.auth_pending_change(&headers, peer, Role::Viewer)?;
    st.check_csrf(&ctx, &headers)?;
    blocking(move || {
        st.record(&ctx.actor(), "logout", json!({}))?;
        if let Some((id, _)) = &ctx.session {
            st.sessions.end(id);
        }
        let mut resp = Json(json!({"ok": true})).into_response();
        resp.headers_mut()
            .insert(header::SET_COOKIE, session_cookie("", Some(0)));
        Ok(resp)
    })
    .await
}

async fn me(AxState(st): S, ConnectInfo(peer): Peer, headers: HeaderMap) -> ApiResult {
    let ctx = st.auth_pending_change(&headers, peer, Role::Viewer)?;
    let csrf = ctx
        .session
        .as_ref()
        .map(|(_, s)| s.csrf.as_str())
        .unwrap_or("");
    Ok(Json(me_json(&ctx.user, csrf)).into_response())
}

#[derive(Deserialize)]
struct PasswordReq {
    old: String,
    new: String,
}

async fn password(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(req): Json<PasswordReq>,
) -> ApiResult {
    let ctx = st.auth_pending_change(&headers, peer, Role::Viewer)?;
    st.check_csrf(&ctx, &headers)?;
    if req.new == req.old {
        return Err(ApiError::bad(
            "choose a password different from the current one",
        ));
    }
    blocking(move || {
        let name = ctx.user.name.clone();
        match st
            .users
            .check_login(&name, &req.old)
            .map_err(|e| ApiError::internal(e.to_string()))?
        {
            Ok(_) => {}
            Err(_) => {
                st.record(&ctx.actor(), "password_change_failed", json!({}))?;
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "bad_credentials",
                    "the current password is wrong",
                ));
            }
        }
        st.users
            .set_password(&name, &req.new)
            .map_err(|e| match e {
                crate::users::UserError::Password(p) => ApiError::bad(p.to_string()),
                e => ApiError::internal(e.to_string()),
            })?;
        st.record(&ctx.actor(), "password_change", json!({"user": name}))?;
        // Every session of the user ends; this browser gets a fresh one.
        st.sessions.end_user(&name, None);
        let user = st
            .users
            .get(&name)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .ok_or_else(ApiError::unauthorized)?;
        let (id, s) = st.sessions.start(&name, user.generation);
        let mut resp = Json(me_json(&user, &s.csrf)).into_response();
        resp.headers_mut()
            .insert(header::SET_COOKIE, session_cookie(&id, None));
        Ok(resp)
    })
    .await
}

#[derive(Deserialize)]
struct LangReq {
    lang: String,
}

async fn set_lang(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Json(req): Json<LangReq>,
) -> ApiResult {
    let ctx = st.auth_pending_change(&headers, peer, Role::Viewer)?;
    st.check_csrf(&ctx, &headers)?;
    if req.lang != "ja" && req.lang != "en" {
        return Err(ApiError::bad("lang is ja or en"));
    }
    blocking(move || {
        st.users
            .set_lang(&ctx.user.name, &req.lang)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Json(json!({"lang": req.lang})).into_response())
    })
    .await
}

#[derive(Deserialize)]
struct SearchReq {
    q: String,
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    order: Option<String>,
}

fn default_limit() -> usize {
    50
}

fn open_index(data: &std::path::Path) -> Result<kuroko_index::Index, ApiError> {
    kuroko_index::Index::open(data).map_err(|e| match e {
        kuroko_index::IndexError::Missing { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_index",
            "no session index yet: nothing has been analyzed",
        ),
        e => ApiError::internal(e.to_string()),
    })
}

async fn search(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlQuery(req): UrlQuery<SearchReq>,
) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Viewer)?;
    let asc = match req.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(ApiError::bad("order is asc or desc")),
    };
    let limit = req.limit.clamp(1, MAX_PAGE);
    blocking(move || {
        st.record(&ctx.actor(), "search", json!({"query": req.q}))?;
        let page = run_search(&st, &req.q, req.offset, limit, asc)?;
        Ok(Json(page).into_response())
    })
    .await
}

/// A query as `kuroko search` runs it (the binary's parser: site-local times, `finding:`
/// terms; `body:`/`content:` terms answered by the content index), one page of it:
/// `{"total","offset","limit","order","notes","hits"}`. Each hit is the session record with
/// `time_local`, `login_user` (FTP/Telnet/POP3/IMAP/SMTP AUTH/HTTP Basic/Oracle login, as the
/// CLI's `user` column), `packets_gone`, `open_for_s` (seconds since its start, on a provisional
/// record of a session still open) and `snippet` (when its content matched: the passage
/// as `segments` of text with `hit` marking the matches, never markup).
pub(crate) fn run_search(
    st: &State,
    text: &str,
    offset: usize,
    limit: usize,
    asc: bool,
) -> Result<Value, ApiError> {
    let parsed = (st.opts.prepare_query)(&st.opts.data, &st.opts.config, text).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            json!({"error": "query", "message": e.message, "column": e.column}),
        )
    })?;
    st.catch_up();
    let index = open_index(&st.opts.data)?;
    let ierr = |e: kuroko_index::IndexError| ApiError::internal(e.to_string());
    let (query, notes) = index.resolve_content(&parsed).map_err(ierr)?;
    let total = index.count(&query).map_err(ierr)? as usize;
    let oldest = kuroko_ring::StoreReader::open(&st.opts.data)
        .ok()
        .and_then(|r| r.segments().first().map(|s| s.seq));
    let hits = if asc {
        // Oldest first: the index answers newest first, so take the tail of the prefix.
        if total.saturating_sub(offset) > MAX_ASC_WINDOW {
            return Err(ApiError::bad(format!(
                "oldest-first paging reaches only the {MAX_ASC_WINDOW} oldest results; narrow the query with time:[… TO …]"
            )));
        }
        let want = total.saturating_sub(offset);
        let mut h = index.search_hits(&query, want, oldest).map_err(ierr)?;
        let keep = h.len().saturating_sub(limit);
        h.drain(..keep);
        h.reverse();
        h
    } else {
        let mut h = index
            .search_hits(&query, offset.saturating_add(limit), oldest)
            .map_err(ierr)?;
        h.drain(..offset.min(h.len()));
        h
    };
    let snippets = (st.opts.snippets)(&st.opts.data, &parsed, &hits);
    let now = kuroko_model::Timestamp::now();
    let vpn = st.opts.config.site.vpn();
    let rows: Vec<Value> = hits
        .iter()
        .map(|h| {
            // `client_vpn` / `server_vpn` as in `kuroko search --format jsonl`.
            let mut v = kuroko_index::render::with_vpn_keys(&h.record, &vpn).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("time_local".into(), json!(st.local_time(h.record.start)));
                m.insert("login_user".into(), json!(h.record.user()));
                m.insert("packets_gone".into(), json!(h.packets_gone));
                if h.record.open {
                    let secs = (now.nanos() - h.record.start.nanos()).max(0) / 1_000_000_000;
                    m.insert("open_for_s".into(), json!(secs));
                }
                if let Some(s) = snippets.get(&h.record.id) {
                    m.insert("snippet".into(), snippet_json(s));
                }
            }
            v
        })
        .collect();
    Ok(
        json!({"total": total, "offset": offset, "limit": limit, "order": if asc {"asc"} else {"desc"}, "notes": notes, "hits": rows}),
    )
}

/// A content snippet for the page: the passage cut at its matches into text segments
/// (`hit`: the match), with the object it came from. The page puts each segment in a text
/// node: reconstructed content never becomes markup.
pub(crate) fn snippet_json(s: &kuroko_index::content::Snippet) -> Value {
    let mut segments = Vec::new();
    let mut at = 0;
    for &(a, b) in &s.matches {
        let (Some(before), Some(hit)) = (s.text.get(at..a), s.text.get(a..b)) else {
            continue; // ranges off char boundaries: skip the mark, keep the text
        };
        if !before.is_empty() {
            segments.push(json!({"text": before, "hit": false}));
        }
        segments.push(json!({"text": hit, "hit": true}));
        at = b;
    }
    if let Some(rest) = s.text.get(at..)
        && !rest.is_empty()
    {
        segments.push(json!({"text": rest, "hit": false}));
    }
    json!({"segments": segments, "part": s.part, "name": s.name, "sha256": s.sha256})
}

#[derive(Deserialize)]
struct OpenReq {
    #[serde(default)]
    auto: bool,
}

/// 通信中: the sessions still open (`state:open`, their provisional records), newest
/// first, with how long each has been open. The first view is audited as a search; the
/// page's own refreshes (`auto=true`) are not, so a console left open does not fill the log.
async fn open_sessions(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlQuery(req): UrlQuery<OpenReq>,
) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Viewer)?;
    blocking(move || {
        if !req.auto {
            st.record(&ctx.actor(), "search", json!({"query": OPEN_QUERY}))?;
        }
        let page = run_search(&st, OPEN_QUERY, 0, MAX_PAGE, false)?;
        Ok(Json(page).into_response())
    })
    .await
}

/// The query of the open-sessions view.
pub const OPEN_QUERY: &str = "state:open";

fn find_session(st: &State, id: &str) -> Result<kuroko_model::SessionRecord, ApiError> {
    let index = open_index(&st.opts.data)?;
    index
        .get(id)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no session with this id",
            )
        })
}

async fn session_detail(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Viewer)?;
    if !valid_session_id(&id) {
        return Err(ApiError::bad("not a session id"));
    }
    blocking(move || {
        st.record(&ctx.actor(), "session_view", json!({"session": id}))?;
        let rec = find_session(&st, &id)?;
        let mut v = serde_json::to_value(&rec).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("time_local".into(), json!(st.local_time(rec.start)));
            m.insert("end_local".into(), json!(st.local_time(rec.end)));
        }
        Ok(Json(v).into_response())
    })
    .await
}

async fn session_pcap(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Analyst)?;
    if !valid_session_id(&id) {
        return Err(ApiError::bad("not a session id"));
    }
    blocking(move || {
        let rec = find_session(&st, &id)?;
        st.record(&ctx.actor(), "pcap_download", json!({"session": id}))?;
        let reader = kuroko_ring::StoreReader::open(&st.opts.data)
            .map_err(|e| ApiError::internal(format!("cannot read the store: {e}")))?;
        let mut out = Vec::new();
        let rep = kuroko_index::extract::write_sessions_pcap(
            &reader,
            std::slice::from_ref(&rec),
            0,
            u64::MAX,
            &mut out,
        )
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let name = format!(
            "attachment; filename=\"kuroko-{}.pcap\"",
            id.replace(':', "_")
        );
        let mut resp = out.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.tcpdump.pcap"),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&name).map_err(|e| ApiError::internal(e.to_string()))?,
        );
        h.insert("x-kuroko-packets", HeaderValue::from(rep.packets));
        h.insert("x-kuroko-damaged", HeaderValue::from(rep.damaged as u64));
        h.insert(
            "x-kuroko-lost-segments",
            HeaderValue::from(rep.lost_segments),
        );
        // Segments the disk failed to write or fdatasync: packets that may not survive a
        // power cut (as `kuroko pcap` warns).
        h.insert(
            "x-kuroko-write-error-segments",
            HeaderValue::from(rep.write_error_segments.len() as u64),
        );
        Ok(resp)
    })
    .await
}

/// The findings, highest risk first, in the user's language (countermeasures, titles).
async fn findings(AxState(st): S, ConnectInfo(peer): Peer, headers: HeaderMap) -> ApiResult {
    let ctx = st.auth(&headers, peer, Role::Viewer)?;
    blocking(move || {
        st.record(&ctx.actor(), "findings_view", json!({}))?;
        let lang: kuroko_model::finding::Lang = ctx.user.lang.parse().unwrap_or_default();
        // The consultant's overrides and notes of `DIR/site.toml`, as the report applies
        // them; a site file that does not parse is said, and the findings still show with
        // the configuration's overrides only.
        let (site, site_error) = match kuroko_report::SiteFile::load_if_present(&st.opts.data) {
            Ok(s) => (s.unwrap_or_default(), None),
            Err(e) => (kuroko_report::SiteFile::default(), Some(e.to_string())),
        };
        let list = kuroko_detect::load_findings_with(
            &st.opts.data,
            &st.opts.config,
            site_error.is_none().then_some(&site),
            lang,
        )
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut graded: Vec<_> = list
            .into_iter()
            .map(|f| kuroko_report::data::grade(f, &st.opts.config, &site))
            .collect();
        graded.sort_by_key(|g| g.finding.risk);
        let rows: Vec<Value> = graded
            .iter()
            .map(|g| {
                let f = &g.finding;
                let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("first_local".into(), json!(st.local_time(f.first_seen)));
                    m.insert("last_local".into(), json!(st.local_time(f.last_seen)));
                    m.insert("original_risk".into(), json!(g.original_risk));
                    m.insert("override_source".into(), json!(g.override_source));
                    m.insert("note".into(), json!(g.note));
                    m.insert("volume_text".into(), json!(f.volume.describe(lang)));
                }
                v
            })
            .collect();
        Ok(Json(json!({"findings": rows, "site_error": site_error})).into_response())
    })
    .await
}

#[derive(Deserialize)]
struct AuditReq {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn audit(
    AxState(st): S,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    UrlQuery(req): UrlQuery<AuditReq>,
) -> ApiResult {
    let _ctx = st.auth(&headers, peer, Role::Admin)?;
    let limit = req.limit.unwrap_or(200).clamp(1, 5000);
    blocking(move || {
        let ioerr = |e: std::io::Error| ApiError::internal(e.to_string());
        let verdict = st.audit.verify().map_err(ioerr)?;
        let entries = st.audit.entries().map_err(ioerr)?;
        let keep = |e: &Value, key: &str, want: &Option<String>| match want.as_deref() {
            None | Some("") => true,
            Some(w) => e.get(key).and_then(Value::as_str) == Some(w),
        };
        let rows: Vec<Value> = entries
            .into_iter()
            .rev()
            .filter(|e| keep(e, "user", &req.user) && keep(e, "action", &req.action))
            .take(limit)
            .collect();
        Ok(Json(json!({"verify": verdict, "entries": rows})).into_response())
    })
    .await
}

/// Starts the server on `opts.listen` and serves until the process ends.
pub async fn run(opts: crate::Options, tls: Arc<rustls::ServerConfig>) -> anyhow::Result<()> {
    use anyhow::Context;
    let listen = opts.listen;
    let state = Arc::new(State::new(opts)?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    crate::server::serve(listener, tls, router(state)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::snippet_json;
    use kuroko_index::content::Snippet;

    fn snippet(text: &str, matches: Vec<(usize, usize)>) -> Snippet {
        Snippet {
            text: text.into(),
            matches,
            sha256: "ab".into(),
            part: "body".into(),
            name: Some("plan.html".into()),
        }
    }

    fn segments(s: &Snippet) -> Vec<(String, bool)> {
        snippet_json(s)["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["text"].as_str().unwrap().to_string(), g["hit"] == true))
            .collect()
    }

    #[test]
    fn snippet_segments_mark_the_matches_and_keep_all_text() {
        let s = snippet("the <b>quarterly</b> budget", vec![(7, 16), (21, 27)]);
        assert_eq!(
            segments(&s),
            [
                ("the <b>".to_string(), false),
                ("quarterly".to_string(), true),
                ("</b> ".to_string(), false),
                ("budget".to_string(), true),
            ]
        );
    }

    #[test]
    fn snippet_ranges_off_char_boundaries_never_panic() {
        // 'ご' is three bytes: a range into its middle is skipped, the text stays whole.
        let s = snippet("ご本人確認", vec![(1, 4), (3, 9)]);
        let segs = segments(&s);
        let whole: String = segs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(whole, "ご本人確認");
        assert_eq!(segs.iter().filter(|(_, hit)| *hit).count(), 1);
        // Ranges past the end: no mark, no panic.
        let s = snippet("abc", vec![(2, 10)]);
        assert_eq!(segments(&s), [("abc".to_string(), false)]);
    }
}
