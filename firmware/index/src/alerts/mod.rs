//! Alert conditions: saved searches evaluated on every new session as it is indexed
//! (NetRAPTOR's alert list), delivered to the local alert log, syslog and mail.
//!
//! - Conditions come from `[alerts] conditions` plus the shipped defaults (`DEFAULTS`,
//!   left out with `no_defaults = true`), plus those kept in the data dir (`store`: the web
//!   console's 条件リスト), read again each time an engine is built, without those switched
//!   off. Each is compiled once to a `Query` and evaluated
//!   on the record with `Query::matches`, which shares its semantics with the index.
//! - Every hit is appended to `DIR/alerts/alerts.jsonl` (the console reads it through
//!   `recent`). Syslog (RFC 5424 over UDP) and mail (through the SMTP relay) are rate
//!   limited per condition (`[alerts] deliveries_per_minute`, default
//!   `MAX_DELIVERED_PER_WINDOW`, per `RATE_WINDOW`); hits over the limit are counted and
//!   summarised in one message when the run ends.
//! - Delivery never blocks ingestion for long: syslog is one UDP datagram (or a framed
//!   message on one TLS connection per run, RFC 5425); mail is sent when the ingest run
//!   ends, with timeouts and an overall `MAIL_FLUSH_BUDGET`; mail that could not be sent
//!   waits in `DIR/alerts/outbox.jsonl` for the next run.
//! - Each destination's transport (`[alerts.smtp_transport]`, `[alerts.syslog_transport]`:
//!   cleartext, STARTTLS or TLS with the peer's certificate verified, SMTP AUTH over TLS
//!   only) is in [`smtp`], [`syslog`] and [`tls`]. What the last attempt on each
//!   destination gave is kept in `DIR/alerts/delivery.json` ([`DeliveryState`]): `kuroko
//!   status` shows it and a failing destination raises the `alert_delivery` alarm, so mail
//!   held back by a relay whose certificate did not verify is never silent.
//!
//! Delivery guarantees across a crash. The local alert log is exactly-once: every index
//! commit records the log's length in its payload (`Payload::alert_log_len`), and the next
//! run first cuts the log back to that length (`truncate_uncommitted`), so the hits of
//! sessions the crashed run had not committed are written once, when those sessions are
//! indexed again.
//!
//! The log stays within [`MAX_ALERT_LOG_BYTES`] (plus one older generation,
//! `alerts.jsonl.1`): it is rotated with the project's one rotation
//! (`kuroko_model::log_budget`) right after that cut, the one moment its content is exactly
//! what the index committed. Lengths are logical: `alerts.base` holds the bytes rotated away
//! so far, written (synced) after the copy to `.1` and before the cut, so a committed length
//! always means the same line whatever rotated since; a crash between the two only leaves a
//! log that the next cut empties (its lines are in `.1`). Each alert has a stable `id` (session id + condition). Syslog and mail
//! are at-least-once, as is normal for them: a hit sent before a crash is sent again after
//! it (a receiver can drop repeats by the `session` and `condition` parameters of the
//! syslog structured data, or by the session id in the mail), and mail waiting in the
//! outbox survives a crash only once it was written there at the end of a run.
//!
//! An index built again from the session log (deleted, replaced after damage, a cursor
//! past the log's end) evaluates the conditions on sessions it already alerted on: the
//! alert log is the dedup state. On its first hit an engine reads the ids in the log, and
//! a hit whose id is there is neither logged nor sent again (`Delivery::repeats`).

pub mod smtp;
pub mod store;
pub mod syslog;
pub mod tls;

use crate::query::{Query, QueryError};
use kuroko_model::config::Config;
use kuroko_model::{SessionRecord, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The conditions shipped with the firmware: (name, query, severity, comment).
pub const DEFAULTS: &[(&str, &str, &str, &str)] = &[(
    "443, 80以外のCONNECT",
    r#"(protocol:http OR protocol:https) AND NOT(url:(":443" ":80")) AND (method:CONNECT)"#,
    "warning",
    "443, 80以外のCONNECT",
)];

/// Deliveries (syslog + mail) per condition within `RATE_WINDOW` by default
/// (`[alerts] deliveries_per_minute`).
pub const MAX_DELIVERED_PER_WINDOW: u32 = 10;
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Longest time one run spends sending mail before leaving the rest in the outbox.
pub const MAIL_FLUSH_BUDGET: Duration = Duration::from_secs(20);
/// Most mails kept waiting in the outbox; older ones are dropped (counted in the log).
pub const MAX_OUTBOX: usize = 1000;
/// Most hits listed in one mail.
const MAX_HITS_PER_MAIL: usize = 50;

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Condition {
    pub name: String,
    pub severity: String,
    pub comment: String,
    pub query: Query,
}

/// One alert in the local log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Alert {
    /// Stable id: the same session and condition always give the same id.
    #[serde(default)]
    pub id: String,
    pub time: Timestamp,
    pub condition: String,
    pub severity: String,
    pub comment: String,
    pub query: String,
    pub session: SessionSummary,
    /// Sent to syslog/mail (false: over the rate limit, counted in a summary).
    pub delivered: bool,
}

/// What an alert says about the session.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SessionSummary {
    pub id: String,
    pub start: Timestamp,
    pub protocol: String,
    pub client: String,
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl SessionSummary {
    pub fn of(r: &SessionRecord) -> Self {
        let ep = |e: &kuroko_model::session::Endpoint| match e.ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", e.port),
            v4 => format!("{v4}:{}", e.port),
        };
        SessionSummary {
            id: r.id.clone(),
            start: r.start,
            protocol: r.protocol.clone(),
            client: ep(&r.client),
            server: ep(&r.server),
            host: r.host().map(str::to_string),
            url: r.http.as_ref().and_then(|h| h.url.clone()),
            method: r.http.as_ref().and_then(|h| h.method.clone()),
        }
    }

    /// One line for syslog and mail.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} {} {} -> {}",
            self.start, self.protocol, self.client, self.server
        );
        for v in [&self.method, &self.host, &self.url].into_iter().flatten() {
            s.push(' ');
            s.push_str(v);
        }
        s.push_str(&format!(" (session {})", self.id));
        s
    }
}

/// The conditions of a config (defaults first), each compiled; a condition whose query
/// does not parse is returned as an error with its name.
pub fn conditions(config: &Config) -> (Vec<Condition>, Vec<(String, QueryError)>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut all: Vec<(String, String, String, String)> = Vec::new();
    if !config.alerts.no_defaults {
        for (n, q, s, c) in DEFAULTS {
            all.push((n.to_string(), q.to_string(), s.to_string(), c.to_string()));
        }
    }
    for c in &config.alerts.conditions {
        all.push((
            c.name.clone(),
            c.query.clone(),
            c.severity.clone(),
            c.comment.clone(),
        ));
    }
    for (name, q, severity, comment) in all {
        match Query::parse(&q) {
            Ok(query) => ok.push(Condition {
                name,
                severity,
                comment,
                query,
            }),
            Err(e) => bad.push((name, e)),
        }
    }
    (ok, bad)
}

/// The conditions the engine evaluates: [`conditions`] of the config and the stored ones of
/// `data_dir` ([`store`]), without those switched off. A store that cannot be read, or a
/// stored condition that no longer parses or whose name the config took since, is returned
/// as an error with its name (the others keep running).
pub fn active_conditions(
    data_dir: &Path,
    config: &Config,
) -> (Vec<Condition>, Vec<(String, QueryError)>) {
    let (entries, err) = store::entries(data_dir, config);
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    if let Some(e) = err {
        bad.push((
            "conditions store".to_string(),
            QueryError::new("", 0, e.to_string()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        if !seen.insert(e.name.clone()) {
            bad.push((
                e.name.clone(),
                QueryError::new("", 0, "another condition has the same name".into()),
            ));
            continue;
        }
        if !e.enabled {
            continue;
        }
        match Query::parse(&e.query) {
            Ok(query) => ok.push(Condition {
                name: e.name,
                severity: e.severity,
                comment: e.comment,
                query,
            }),
            Err(q) => bad.push((e.name, q)),
        }
    }
    (ok, bad)
}

/// The stable id of the alert of condition `condition` on session `session`.
pub fn alert_id(session: &str, condition: &str) -> String {
    format!("{session}/{condition}")
}

/// Largest size of `alerts.jsonl` before it is rotated to `alerts.jsonl.1` (about 20,000
/// alerts; the console shows the newest, the index finds every session).
pub const MAX_ALERT_LOG_BYTES: u64 = 16 << 20;

fn base_path(data_dir: &Path) -> PathBuf {
    alerts_dir(data_dir).join("alerts.base")
}

/// Bytes of the alert log rotated away so far (0 when it never rotated).
fn log_base(data_dir: &Path) -> u64 {
    std::fs::read_to_string(base_path(data_dir))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_base(data_dir: &Path, base: u64) -> std::io::Result<()> {
    let path = base_path(data_dir);
    let tmp = path.with_extension("base.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(format!("{base}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(alerts_dir(data_dir))?.sync_all()
}

/// The ids of every alert in the local log and its rotated generation (lines of older
/// logs without an id get theirs from their session and condition; unreadable lines are
/// skipped).
fn logged_ids(data_dir: &Path) -> std::collections::HashSet<String> {
    #[derive(Deserialize)]
    struct Session {
        #[serde(default)]
        id: String,
    }
    #[derive(Deserialize)]
    struct Line {
        #[serde(default)]
        id: String,
        #[serde(default)]
        condition: String,
        session: Option<Session>,
    }
    let current = log_path(data_dir);
    let mut rotated = current.clone().into_os_string();
    rotated.push(".1");
    [std::path::PathBuf::from(rotated), current]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Line>(l).ok())
                .map(|l| {
                    if l.id.is_empty() {
                        alert_id(&l.session.map(|s| s.id).unwrap_or_default(), &l.condition)
                    } else {
                        l.id
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Logical length of the local alert log now: bytes rotated away plus the file's length
/// (0 when there is none). What an index commit records.
pub fn log_len(data_dir: &Path) -> u64 {
    log_base(data_dir)
        + std::fs::metadata(log_path(data_dir))
            .map(|m| m.len())
            .unwrap_or(0)
}

/// Cuts the alert log back to `committed` (logical) bytes, its length at the index's last
/// commit: what lies beyond are hits of sessions that were not committed and are about to
/// be indexed, and alerted, again. Then, the log being exactly what was committed, rotates
/// it when it is over [`MAX_ALERT_LOG_BYTES`]. Returns the bytes removed.
pub fn truncate_uncommitted(data_dir: &Path, committed: u64) -> std::io::Result<u64> {
    truncate_and_rotate(data_dir, committed, MAX_ALERT_LOG_BYTES)
}

fn truncate_and_rotate(data_dir: &Path, committed: u64, max: u64) -> std::io::Result<u64> {
    let path = log_path(data_dir);
    let f = match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let base = log_base(data_dir);
    // Commits only grow and the base only takes a committed length, so committed >= base.
    let keep = committed.saturating_sub(base);
    let len = f.metadata()?.len();
    let removed = len.saturating_sub(keep);
    if removed > 0 {
        f.set_len(keep)?;
        f.sync_all()?;
    }
    drop(f);
    kuroko_model::log_budget::rotate_if_over_with(&path, max, |moved| {
        write_base(data_dir, base + moved)
    })?;
    Ok(removed)
}

pub fn alerts_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("alerts")
}

pub fn log_path(data_dir: &Path) -> PathBuf {
    alerts_dir(data_dir).join("alerts.jsonl")
}

fn outbox_path(data_dir: &Path) -> PathBuf {
    alerts_dir(data_dir).join("outbox.jsonl")
}

/// What a run delivered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    pub hits: u64,
    pub syslog_sent: u64,
    pub mails_sent: u64,
    pub failures: u64,
    pub suppressed: u64,
    /// Failures that were TLS failures (a certificate that did not verify, a handshake
    /// that failed): also counted in `failures`.
    pub tls_failures: u64,
    /// Hits already in the alert log (an index rebuilt from the session log): not raised
    /// again.
    pub repeats: u64,
}

/// What the attempts on one destination gave, kept across runs in `alerts/delivery.json`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct DestinationState {
    /// `host:port`.
    pub target: String,
    /// `none`, `starttls` or `tls`.
    pub tls: String,
    pub last_ok: Option<Timestamp>,
    /// Set at the first failure after a success, cleared by the next success: the
    /// destination is failing now.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
    /// [`smtp::SmtpError::kind`] / [`syslog::SyslogError::kind`] of the last error.
    pub last_error_kind: Option<String>,
    pub last_error_time: Option<Timestamp>,
    /// Failed attempts so far (cumulative).
    pub failures: u64,
    /// Of which TLS failures (cumulative).
    pub tls_failures: u64,
    /// Mails waiting in the outbox after the last run (mail only).
    pub pending: u64,
}

impl DestinationState {
    fn ok(&mut self) {
        self.last_ok = Some(Timestamp::now());
        self.failing_since = None;
    }

    fn failed(&mut self, kind: &str, message: String) {
        let now = Timestamp::now();
        self.failures += 1;
        if kind.starts_with("tls") {
            self.tls_failures += 1;
        }
        self.failing_since.get_or_insert(now);
        self.last_error = Some(message);
        self.last_error_kind = Some(kind.to_string());
        self.last_error_time = Some(now);
    }
}

/// `alerts/delivery.json`: the state of the mail and syslog destinations.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct DeliveryState {
    pub mail: Option<DestinationState>,
    pub syslog: Option<DestinationState>,
}

fn delivery_state_path(data_dir: &Path) -> PathBuf {
    alerts_dir(data_dir).join("delivery.json")
}

/// The delivery state of `data_dir` (default when none was written yet).
pub fn delivery_state(data_dir: &Path) -> std::io::Result<DeliveryState> {
    match std::fs::read_to_string(delivery_state_path(data_dir)) {
        Ok(t) => serde_json::from_str(&t).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DeliveryState::default()),
        Err(e) => Err(e),
    }
}

fn write_delivery_state(data_dir: &Path, st: &DeliveryState) -> std::io::Result<()> {
    std::fs::create_dir_all(alerts_dir(data_dir))?;
    let path = delivery_state_path(data_dir);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(st).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// The state of a destination in `st`, started (or reset when its target or transport
/// changed) for `target`/`tls`.
fn destination<'a>(
    slot: &'a mut Option<DestinationState>,
    target: &str,
    tls: &str,
) -> &'a mut DestinationState {
    if slot
        .as_ref()
        .is_some_and(|d| d.target != target || d.tls != tls)
    {
        *slot = None;
    }
    slot.get_or_insert_with(|| DestinationState {
        target: target.to_string(),
        tls: tls.to_string(),
        ..Default::default()
    })
}

/// A mail waiting to be sent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

struct Rate {
    window_start: Instant,
    delivered: u32,
    suppressed: u64,
}

/// Evaluates conditions on sessions and delivers the hits.
pub struct AlertEngine {
    data_dir: PathBuf,
    conditions: Vec<Condition>,
    /// Conditions that did not compile (shown by `kuroko search --check-alerts` and logged).
    pub errors: Vec<(String, QueryError)>,
    config: kuroko_model::config::Alerts,
    log: Option<std::fs::File>,
    rates: HashMap<String, Rate>,
    /// Hits to mail, by condition.
    to_mail: Vec<(Condition, Vec<SessionSummary>)>,
    syslog: Option<syslog::Syslog>,
    /// Why the configured syslog target could not be set up (counted at each hit).
    syslog_setup_error: Option<syslog::SyslogError>,
    /// Attempts on each destination in this run (written to `delivery.json` at the end).
    state: DeliveryState,
    /// Whether `state` changed in this run.
    state_touched: bool,
    pub delivery: Delivery,
    /// Ids of the alerts in the log, read at the first hit (`None` until then).
    raised: Option<std::collections::HashSet<String>>,
}

impl AlertEngine {
    pub fn new(data_dir: &Path, config: &Config) -> AlertEngine {
        let (conditions, errors) = active_conditions(data_dir, config);
        let (syslog, syslog_setup_error) = if config.alerts.syslog.is_empty() {
            (None, None)
        } else {
            match syslog::Syslog::with_transport(
                &config.alerts.syslog,
                &config.alerts.syslog_transport,
            ) {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            }
        };
        AlertEngine {
            data_dir: data_dir.to_path_buf(),
            conditions,
            errors,
            config: config.alerts.clone(),
            log: None,
            rates: HashMap::new(),
            to_mail: Vec::new(),
            syslog,
            syslog_setup_error,
            state: delivery_state(data_dir).unwrap_or_default(),
            state_touched: false,
            delivery: Delivery::default(),
            raised: None,
        }
    }

    /// Whether the log already holds the alert `id` (read once, at the first hit).
    fn already_raised(&mut self, id: &str) -> bool {
        let data_dir = &self.data_dir;
        self.raised
            .get_or_insert_with(|| logged_ids(data_dir))
            .contains(id)
    }

    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// Tests one new session against every condition.
    pub fn on_session(&mut self, r: &SessionRecord) {
        self.on_session_except(r, &[]);
    }

    /// Tests a session record against every condition except those named in `fired` (they
    /// already fired on an earlier record of the same session: an alert fires once per
    /// session). Returns the names of the conditions that fired now.
    pub fn on_session_except(&mut self, r: &SessionRecord, fired: &[String]) -> Vec<String> {
        let mut now = Vec::new();
        for i in 0..self.conditions.len() {
            if !fired.contains(&self.conditions[i].name) && self.conditions[i].query.matches(r) {
                let c = self.conditions[i].clone();
                self.hit(&c, r);
                now.push(c.name);
            }
        }
        now
    }

    fn hit(&mut self, c: &Condition, r: &SessionRecord) {
        let id = alert_id(&r.id, &c.name);
        if self.already_raised(&id) {
            self.delivery.repeats += 1;
            return;
        }
        if let Some(set) = &mut self.raised {
            set.insert(id.clone());
        }
        self.delivery.hits += 1;
        let now = Instant::now();
        let rate = self.rates.entry(c.name.clone()).or_insert(Rate {
            window_start: now,
            delivered: 0,
            suppressed: 0,
        });
        if now.duration_since(rate.window_start) >= RATE_WINDOW {
            rate.window_start = now;
            rate.delivered = 0;
        }
        let deliver = rate.delivered < self.config.deliveries_per_minute.max(1);
        if deliver {
            rate.delivered += 1;
        } else {
            rate.suppressed += 1;
            self.delivery.suppressed += 1;
        }
        let summary = SessionSummary::of(r);
        let alert = Alert {
            id,
            time: Timestamp::now(),
            condition: c.name.clone(),
            severity: c.severity.clone(),
            comment: c.comment.clone(),
            query: c.query.to_string(),
            session: summary.clone(),
            delivered: deliver,
        };
        self.append_log(&alert);
        if !deliver {
            return;
        }
        let sent = match &mut self.syslog {
            Some(s) => Some(s.send(&alert).map_err(|e| (e.kind(), e.to_string()))),
            // Configured, but the target did not resolve or no socket could be opened.
            None => self
                .syslog_setup_error
                .as_ref()
                .map(|e| Err((e.kind(), e.to_string()))),
        };
        if let Some(r) = sent {
            self.syslog_outcome(r);
        }
        if !self.config.smtp_relay.is_empty() && !self.config.mail_to.is_empty() {
            match self.to_mail.iter_mut().find(|(k, _)| k.name == c.name) {
                Some((_, v)) => v.push(summary),
                None => self.to_mail.push((c.clone(), vec![summary])),
            }
        }
    }

    /// Counts a syslog attempt and records it in the delivery state.
    fn syslog_outcome(&mut self, r: Result<(), (&'static str, String)>) {
        let st = destination(
            &mut self.state.syslog,
            &self.config.syslog,
            self.config.syslog_transport.mode(),
        );
        self.state_touched = true;
        match r {
            Ok(()) => {
                self.delivery.syslog_sent += 1;
                st.ok();
            }
            Err((kind, message)) => {
                self.delivery.failures += 1;
                if kind.starts_with("tls") {
                    self.delivery.tls_failures += 1;
                }
                st.failed(kind, message);
            }
        }
    }

    fn append_log(&mut self, a: &Alert) {
        if self.log.is_none() {
            let dir = alerts_dir(&self.data_dir);
            let _ = std::fs::create_dir_all(&dir);
            self.log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path(&self.data_dir))
                .ok();
        }
        let ok = match (&mut self.log, serde_json::to_string(a)) {
            (Some(f), Ok(mut line)) => {
                line.push('\n');
                f.write_all(line.as_bytes()).is_ok()
            }
            _ => false,
        };
        if !ok {
            self.delivery.failures += 1;
        }
    }

    /// Sends the summaries of suppressed hits and the mail, within `MAIL_FLUSH_BUDGET`.
    pub fn finish(mut self) -> Delivery {
        // One summary per condition that went over its rate limit.
        let over: Vec<(String, u64)> = self
            .rates
            .iter()
            .filter(|(_, r)| r.suppressed > 0)
            .map(|(n, r)| (n.clone(), r.suppressed))
            .collect();
        for (name, n) in &over {
            let text = format!(
                "{n} further hits of \"{name}\" were not sent one by one (rate limit); see alerts/alerts.jsonl"
            );
            if let Some(s) = &mut self.syslog {
                let r = s
                    .send_text("warning", name, &text)
                    .map_err(|e| (e.kind(), e.to_string()));
                self.syslog_outcome(r);
            }
        }
        if let Some(s) = &mut self.syslog {
            s.close();
        }
        if self.config.smtp_relay.is_empty() || self.config.mail_to.is_empty() {
            self.save_state();
            return self.delivery;
        }
        let mut mails: Vec<Mail> = read_outbox(&self.data_dir);
        for (c, hits) in std::mem::take(&mut self.to_mail) {
            let suppressed = over
                .iter()
                .find(|(n, _)| *n == c.name)
                .map(|x| x.1)
                .unwrap_or(0);
            mails.push(compose(&c, &hits, suppressed));
        }
        let deadline = Instant::now() + MAIL_FLUSH_BUDGET;
        let mut left = Vec::new();
        let mut failed = false;
        for m in mails {
            if failed || Instant::now() >= deadline {
                left.push(m);
                continue;
            }
            let r = smtp::send(
                &self.config.smtp_relay,
                &self.config.smtp_transport,
                &self.config.mail_from,
                &self.config.mail_to,
                &m.subject,
                &m.body,
            );
            let st = destination(
                &mut self.state.mail,
                &self.config.smtp_relay,
                self.config.smtp_transport.mode(),
            );
            self.state_touched = true;
            match r {
                Ok(()) => {
                    self.delivery.mails_sent += 1;
                    st.ok();
                }
                Err(e) => {
                    self.delivery.failures += 1;
                    if e.kind().starts_with("tls") {
                        self.delivery.tls_failures += 1;
                    }
                    st.failed(e.kind(), e.to_string());
                    failed = true;
                    left.push(m);
                }
            }
        }
        if left.len() > MAX_OUTBOX {
            let drop = left.len() - MAX_OUTBOX;
            left.drain(..drop);
        }
        if let Some(st) = &mut self.state.mail
            && st.pending != left.len() as u64
        {
            st.pending = left.len() as u64;
            self.state_touched = true;
        }
        if write_outbox(&self.data_dir, &left).is_err() {
            self.delivery.failures += 1;
        }
        self.save_state();
        self.delivery
    }

    fn save_state(&mut self) {
        if self.state_touched && write_delivery_state(&self.data_dir, &self.state).is_err() {
            self.delivery.failures += 1;
        }
    }
}

fn severity_ja(s: &str) -> &'static str {
    match s {
        "critical" => "重大",
        "info" => "情報",
        _ => "警告",
    }
}

/// The mail for the hits of one condition.
pub fn compose(c: &Condition, hits: &[SessionSummary], suppressed: u64) -> Mail {
    let subject = format!(
        "[Kuroko] {} ({}): {} — {} session(s)",
        severity_ja(&c.severity),
        c.severity,
        c.name,
        hits.len() as u64 + suppressed
    );
    let mut body = format!(
        "Alert condition / アラート条件: {}\nSeverity / 重要度: {}\nComment / コメント: {}\nQuery / 検索条件: {}\n\n",
        c.name, c.severity, c.comment, c.query
    );
    for h in hits.iter().take(MAX_HITS_PER_MAIL) {
        body.push_str(&h.line());
        body.push('\n');
    }
    let more = hits.len().saturating_sub(MAX_HITS_PER_MAIL) as u64 + suppressed;
    if more > 0 {
        body.push_str(&format!(
            "\n… and {more} more; see alerts/alerts.jsonl on the appliance or `kuroko search '{}'`.\n",
            c.query
        ));
    }
    Mail { subject, body }
}

fn read_outbox(data_dir: &Path) -> Vec<Mail> {
    let Ok(text) = std::fs::read_to_string(outbox_path(data_dir)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn write_outbox(data_dir: &Path, mails: &[Mail]) -> std::io::Result<()> {
    let path = outbox_path(data_dir);
    if mails.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    std::fs::create_dir_all(alerts_dir(data_dir))?;
    let tmp = path.with_extension("jsonl.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    for m in mails {
        let mut line = serde_json::to_string(m).map_err(std::io::Error::other)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
    }
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Bytes read from the end of the alert log to find the last `n` alerts (an alert line is
/// well under 2 KiB).
const RECENT_BYTES_PER_ALERT: u64 = 4096;

/// The newest `n` alerts of the local log, newest first (for the console); from the
/// rotated generation too when the current one holds fewer.
pub fn recent(data_dir: &Path, n: usize) -> std::io::Result<Vec<Alert>> {
    let path = log_path(data_dir);
    let mut out = recent_in(&path, n)?;
    if out.len() < n {
        let older = recent_in(&kuroko_model::log_budget::rotated(&path), n - out.len())?;
        out.extend(older);
    }
    Ok(out)
}

fn recent_in(path: &Path, n: usize) -> std::io::Result<Vec<Alert>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let want = (n as u64).saturating_mul(RECENT_BYTES_PER_ALERT).min(len);
    f.seek(SeekFrom::Start(len - want))?;
    let mut buf = Vec::with_capacity(want as usize);
    f.take(want).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if want < len && !lines.is_empty() {
        lines.remove(0); // probably cut
    }
    Ok(lines
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str::<Alert>(l).ok())
        .take(n)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(data: &Path, bytes: usize) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path(data))
            .unwrap();
        let mut line = vec![b'x'; bytes - 1];
        line.push(b'\n');
        f.write_all(&line).unwrap();
    }

    fn size(p: &Path) -> u64 {
        std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn the_alert_log_stays_within_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(alerts_dir(dir.path())).unwrap();
        // A box that alerts for weeks: each run commits what it wrote.
        for _ in 0..40 {
            append(dir.path(), 1 << 20);
            let committed = log_len(dir.path());
            truncate_uncommitted(dir.path(), committed).unwrap();
            assert_eq!(log_len(dir.path()), committed, "logical length kept");
        }
        let path = log_path(dir.path());
        let total = size(&path) + size(&kuroko_model::log_budget::rotated(&path));
        assert!(
            total <= 2 * MAX_ALERT_LOG_BYTES + (1 << 20),
            "alerts.jsonl and .1 hold {total} bytes after 40 MiB of alerts"
        );
        assert_eq!(log_len(dir.path()), 40 << 20);
    }

    #[test]
    fn uncommitted_hits_are_cut_exactly_across_rotations_and_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(alerts_dir(d)).unwrap();
        append(d, 3000);
        // Committed 3000, over the budget: rotated, nothing lost.
        assert_eq!(truncate_and_rotate(d, 3000, 1000).unwrap(), 0);
        assert_eq!(size(&log_path(d)), 0);
        assert_eq!(size(&kuroko_model::log_budget::rotated(&log_path(d))), 3000);
        assert_eq!(log_len(d), 3000);
        // Hits of a run that crashed before its commit: cut.
        append(d, 500);
        assert_eq!(truncate_and_rotate(d, 3000, 1000).unwrap(), 500);
        assert_eq!(log_len(d), 3000);
        // A commit after 400 bytes, then 200 uncommitted: only the 200 go.
        append(d, 400);
        let committed = log_len(d);
        append(d, 200);
        assert_eq!(truncate_and_rotate(d, committed, 1000).unwrap(), 200);
        assert_eq!(size(&log_path(d)), 400);
        // A crash between recording the base and cutting the file: the next cut empties
        // the log (its lines are in .1), the logical length is the committed one.
        append(d, 700);
        let committed = log_len(d);
        write_base(d, log_base(d) + size(&log_path(d))).unwrap();
        std::fs::copy(log_path(d), kuroko_model::log_budget::rotated(&log_path(d))).unwrap();
        assert_eq!(truncate_and_rotate(d, committed, 1000).unwrap(), 1100);
        assert_eq!(size(&log_path(d)), 0);
        assert_eq!(log_len(d), committed);
    }
}
