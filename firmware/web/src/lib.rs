//! The analysts' web console (`kuroko web`, issue 17): an HTTPS server on the management
//! address that serves NetRAPTOR-style pages (検索, session detail, ダンプデータ, 条件リスト, 診断結果,
//! 統計, レポート, 資産, 通信中 (open sessions), 警報 (alarms), ユーザ管理, 閲覧ログ, パスワード変更) and the JSON API under `/api/` they are
//! built on.
//!
//! Invariants:
//! - TLS only (rustls with the `ring` provider). A plain-HTTP request on the port gets a
//!   redirect to `https://` and nothing else; no page or API answers it.
//! - Nothing is loaded from outside the binary: pages, script and style are compiled in
//!   (`assets.rs`), and every response carries a strict CSP (`default-src 'self'`, no
//!   inline script), HSTS, `X-Frame-Options: DENY`, `nosniff`, `no-referrer`, `no-store`.
//! - Only `/login`, `/api/login` and `/static/*` answer without a session (or an API
//!   token); every state change needs the session's CSRF token (and a same-origin
//!   `Origin` when the browser sends one).
//! - Every login, failed login, logout, search, detail view, download and user change is
//!   written to the hash-chained audit log (`audit.rs`) before the answer goes out; if the
//!   log cannot be written, the action fails instead of happening unrecorded.
//! - Search, detail and pcap come from the library crates (`kuroko-index`, `kuroko-ring`),
//!   conditions from the alert engine's store, statistics and reports from the report
//!   crate's content, status from `kuroko status`'s reader (passed in by the binary):
//!   never from a copy of their logic.
//!
//! Adding a page: a handler in `api.rs` (one `route` line in [`api::router`]) and an entry
//! in the `PAGES` table of `assets/app.js` with its words in `assets/i18n.js`.

#![deny(unsafe_code)]

mod alarms;
pub mod api;
mod assets;
pub mod audit;
mod conditions;
mod inventory;
mod report;
pub mod server;
pub mod sessions;
mod stats;
pub mod tls;
mod user_admin;
pub mod users;

use std::path::{Path, PathBuf};

/// Port used when `[web] listen` is empty.
pub const DEFAULT_PORT: u16 = 8443;

/// The console's own files inside a data directory: users, audit log, certificate.
pub fn web_dir(data: &Path) -> PathBuf {
    data.join("web")
}

/// `n` random bytes from the OS as hex (session ids, CSRF and API tokens).
pub fn random_hex(n: usize) -> String {
    hex::encode(random_bytes(n))
}

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the OS random source failed");
    b
}

/// What `kuroko web` (or the `kuroko run` child) serves.
#[derive(Clone, Debug)]
pub struct Options {
    pub data: PathBuf,
    pub config: kuroko_model::config::Config,
    pub listen: std::net::SocketAddr,
    /// Idle time after which a session ends.
    pub idle_timeout: std::time::Duration,
    /// The store's status in the report's terms: the function `kuroko report` uses (it
    /// reads the status sections of `kuroko status`, which live in the binary).
    pub store_summary: StoreSummaryFn,
    /// The sections of `kuroko status` (the binary's status reader).
    pub status: StatusFn,
    /// The query of `kuroko search` from its text: the binary's parser (site-local times,
    /// `finding:` terms replaced by the finding's sessions).
    pub prepare_query: QueryFn,
    /// The content snippets `kuroko search` shows under the hits whose text matched.
    pub snippets: SnippetsFn,
    /// The `alarms` section of `kuroko status` (latched and current alarms), as JSON.
    pub alarms: AlarmsFn,
    /// Acknowledges every latched alarm as `who`: the function the front panel uses.
    pub acknowledge: AcknowledgeFn,
}

/// A query that does not parse: the parser's message and, when known, its column.
#[derive(Clone, Debug)]
pub struct QueryError {
    pub message: String,
    pub column: Option<usize>,
}

/// See [`Options::prepare_query`].
pub type QueryFn =
    fn(&Path, &kuroko_model::config::Config, &str) -> Result<kuroko_index::Query, QueryError>;

/// See [`Options::snippets`].
pub type SnippetsFn = fn(
    &Path,
    &kuroko_index::Query,
    &[kuroko_index::Hit],
) -> std::collections::HashMap<String, kuroko_index::content::Snippet>;

/// See [`Options::alarms`].
pub type AlarmsFn = fn(&Path) -> serde_json::Value;

/// See [`Options::acknowledge`]: how many alarms were acknowledged.
pub type AcknowledgeFn = fn(&Path, &str) -> Result<usize, String>;

/// One section of `kuroko status`: its JSON key, its table heading and rows, its JSON.
#[derive(Clone, Debug)]
pub struct StatusSection {
    pub key: String,
    pub title: String,
    pub rows: Vec<(String, String)>,
    pub json: serde_json::Value,
}

/// See [`Options::status`].
pub type StatusFn = fn(&Path, &kuroko_model::config::Config) -> Result<Vec<StatusSection>, String>;

/// See [`Options::store_summary`].
pub type StoreSummaryFn =
    fn(&Path, &kuroko_model::config::Config) -> kuroko_report::data::StoreSummary;

/// The listen address: `--listen`, else `[web] listen`, else the management address on
/// [`DEFAULT_PORT`], else loopback. Never a capture interface's address.
pub fn listen_addr(
    flag: Option<&str>,
    config: &kuroko_model::config::Config,
) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context;
    if let Some(f) = flag {
        return f
            .parse()
            .with_context(|| format!("--listen `{f}` is not ADDR:PORT (e.g. 127.0.0.1:8443)"));
    }
    if !config.web.listen.is_empty() {
        return config
            .web
            .listen
            .parse()
            .with_context(|| format!("[web] listen `{}` is not ADDR:PORT", config.web.listen));
    }
    let mgmt = config.management.address.split('/').next().unwrap_or("");
    let ip = mgmt
        .parse::<std::net::IpAddr>()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    Ok(std::net::SocketAddr::new(ip, DEFAULT_PORT))
}

/// The TLS identity for a data directory and config (generated at first start).
pub fn identity(
    data: &Path,
    config: &kuroko_model::config::Config,
    names: &[String],
) -> anyhow::Result<tls::Identity> {
    if config.web.cert.as_os_str().is_empty() {
        let (c, k) = tls::default_paths(&web_dir(data));
        tls::load(&c, &k, true, names)
    } else {
        tls::load(&config.web.cert, &config.web.key, false, names)
    }
}
