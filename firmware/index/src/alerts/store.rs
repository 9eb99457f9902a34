//! The alert conditions kept in the data directory (NetRAPTOR's 条件リスト): the ones added,
//! edited, switched on or off and deleted at run time (the web console), beside the
//! config's `[alerts] conditions` and the shipped defaults.
//!
//! Why a file in the data dir and not the config: a change must take effect without a
//! restart and survive a config reload or a config file put back by the technician. The
//! alert engine reads this file every time it is built ([`super::AlertEngine::new`], once
//! per ingest run, i.e. every few seconds in `kuroko run`), so a change is live at the next
//! run. Config and shipped conditions are read-only here (they belong to the config), but
//! they can be switched off and on: their names are kept in `disabled`.
//!
//! `DIR/alerts/conditions.json`, written atomically (0600, dir synced) under an exclusive
//! lock on `conditions.lock`; a file that does not parse is an error shown by every reader
//! (the engine keeps running the config's conditions and reports it), never replaced.

use super::{DEFAULTS, alerts_dir};
use crate::query::{Query, QueryError};
use kuroko_model::Timestamp;
use kuroko_model::config::Config;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The severities a condition may have (NetRAPTOR: 情報, 警告, 重大).
pub const SEVERITIES: &[&str] = &["info", "warning", "critical"];
/// Longest condition name and comment.
pub const MAX_NAME: usize = 100;
pub const MAX_COMMENT: usize = 1000;
pub const MAX_QUERY: usize = 4000;

/// One condition kept in the store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StoredCondition {
    /// Stable id (`c1`, `c2`, …): edits may rename a condition.
    pub id: String,
    pub name: String,
    pub query: String,
    pub severity: String,
    #[serde(default)]
    pub comment: String,
    pub enabled: bool,
    /// Who registered it (登録者).
    #[serde(default)]
    pub registrant: String,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// The file.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct StoreFile {
    #[serde(default)]
    pub next_id: u64,
    #[serde(default)]
    pub conditions: Vec<StoredCondition>,
    /// Names of config or shipped conditions switched off.
    #[serde(default)]
    pub disabled: Vec<String>,
}

/// Where a condition comes from.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Shipped with the firmware (`DEFAULTS`).
    Shipped,
    /// `[alerts] conditions` in the config file.
    Config,
    /// This store.
    Stored,
}

/// One condition as listed: every source, in the order the engine evaluates them.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Entry {
    /// The stored id, or the name for shipped and config conditions.
    pub id: String,
    pub source: Source,
    pub name: String,
    pub query: String,
    pub severity: String,
    pub comment: String,
    pub enabled: bool,
    pub registrant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<Timestamp>,
}

/// What a caller sends to create or edit a stored condition.
#[derive(Deserialize, Clone, Debug)]
pub struct Draft {
    pub name: String,
    pub query: String,
    #[serde(default = "default_severity")]
    pub severity: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_severity() -> String {
    "warning".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} does not parse ({message}); it is left as it is: repair or remove it (the config's conditions keep running)"
    )]
    Damaged { path: PathBuf, message: String },
    /// The query does not parse: where and why.
    #[error("the query does not parse at column {}: {}", .0.column, .0.message)]
    Query(QueryError),
    /// Anything else wrong with the draft (field, message).
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    #[error("no condition `{0}`")]
    NotFound(String),
    #[error("`{0}` comes from the {1}: edit it there (it can only be switched off and on here)")]
    ReadOnly(String, &'static str),
}

pub fn store_path(data_dir: &Path) -> PathBuf {
    alerts_dir(data_dir).join("conditions.json")
}

fn lock_path(data_dir: &Path) -> PathBuf {
    alerts_dir(data_dir).join("conditions.lock")
}

/// The store as it is on disk (empty when there is none).
pub fn load(data_dir: &Path) -> Result<StoreFile, StoreError> {
    let path = store_path(data_dir);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Damaged {
            path,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
        Err(source) => Err(StoreError::Io { path, source }),
    }
}

/// Every condition: shipped (unless `no_defaults`), config, stored; with what is switched
/// off. A store that cannot be read gives the first two and the error.
pub fn entries(data_dir: &Path, config: &Config) -> (Vec<Entry>, Option<StoreError>) {
    let (file, err) = match load(data_dir) {
        Ok(f) => (f, None),
        Err(e) => (StoreFile::default(), Some(e)),
    };
    let mut out = Vec::new();
    let fixed = |source, name: &str, query: &str, severity: &str, comment: &str| Entry {
        id: name.to_string(),
        source,
        name: name.to_string(),
        query: query.to_string(),
        severity: severity.to_string(),
        comment: comment.to_string(),
        enabled: !file.disabled.iter().any(|d| d == name),
        registrant: String::new(),
        updated: None,
    };
    if !config.alerts.no_defaults {
        for (n, q, s, c) in DEFAULTS {
            out.push(fixed(Source::Shipped, n, q, s, c));
        }
    }
    for c in &config.alerts.conditions {
        out.push(fixed(
            Source::Config,
            &c.name,
            &c.query,
            &c.severity,
            &c.comment,
        ));
    }
    for c in &file.conditions {
        out.push(Entry {
            id: c.id.clone(),
            source: Source::Stored,
            name: c.name.clone(),
            query: c.query.clone(),
            severity: c.severity.clone(),
            comment: c.comment.clone(),
            enabled: c.enabled,
            registrant: c.registrant.clone(),
            updated: Some(c.updated),
        });
    }
    (out, err)
}

/// Checks a draft: name and comment printable and bounded, a known severity, a query the
/// search parser accepts (its error, with the column, otherwise).
pub fn validate(d: &Draft) -> Result<(), StoreError> {
    let name = d.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(StoreError::Invalid(
            "name",
            format!("give a name of 1 to {MAX_NAME} characters"),
        ));
    }
    if d.name.chars().any(char::is_control)
        || d.comment.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(StoreError::Invalid(
            "name",
            "control characters are not allowed".into(),
        ));
    }
    if d.comment.chars().count() > MAX_COMMENT {
        return Err(StoreError::Invalid(
            "comment",
            format!("at most {MAX_COMMENT} characters"),
        ));
    }
    if !SEVERITIES.contains(&d.severity.as_str()) {
        return Err(StoreError::Invalid(
            "severity",
            format!("one of {}", SEVERITIES.join(", ")),
        ));
    }
    if d.query.len() > MAX_QUERY {
        return Err(StoreError::Invalid(
            "query",
            format!("at most {MAX_QUERY} bytes"),
        ));
    }
    Query::parse(&d.query).map_err(StoreError::Query)?;
    Ok(())
}

/// Runs `f` on the store under its lock and writes the result when `f` succeeds and
/// changed it. `config` gives the names the store's conditions must not take.
fn update<T>(
    data_dir: &Path,
    f: impl FnOnce(&mut StoreFile) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let dir = alerts_dir(data_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let lp = lock_path(data_dir);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lp)
        .map_err(io(&lp))?;
    lock.lock().map_err(io(&lp))?;
    let mut file = load(data_dir)?;
    let before = file.clone();
    let out = f(&mut file)?;
    if file != before {
        let mut text = serde_json::to_vec_pretty(&file).expect("conditions serialize");
        text.push(b'\n');
        let p = store_path(data_dir);
        kuroko_model::config::write_atomic(&p, &text).map_err(io(&p))?;
    }
    Ok(out)
}

/// Names are unique over every source: alerts, rate limits and hit counts go by name.
fn check_name(
    config: &Config,
    file: &StoreFile,
    name: &str,
    except_id: Option<&str>,
) -> Result<(), StoreError> {
    let taken = is_fixed(config, name)
        || file
            .conditions
            .iter()
            .any(|c| c.name == name && Some(c.id.as_str()) != except_id);
    if taken {
        return Err(StoreError::Invalid(
            "name",
            format!("a condition named `{name}` exists already"),
        ));
    }
    Ok(())
}

/// A shipped or config condition (their id is their name).
fn is_fixed(config: &Config, name: &str) -> bool {
    (!config.alerts.no_defaults && DEFAULTS.iter().any(|d| d.0 == name))
        || config.alerts.conditions.iter().any(|c| c.name == name)
}

/// What a change would be refused for, found without writing anything, so that a caller
/// can refuse before it records the change (the change itself checks again under the
/// lock). `id`: the condition changed (`None`: a new one); `draft`: its new fields;
/// `fixed_ok`: the change may touch a shipped or config condition (switching on and off).
pub fn precheck(
    data_dir: &Path,
    config: &Config,
    id: Option<&str>,
    draft: Option<&Draft>,
    fixed_ok: bool,
) -> Result<(), StoreError> {
    if let Some(d) = draft {
        validate(d)?;
    }
    let mut file = load(data_dir)?;
    if let Some(id) = id
        && !(fixed_ok && is_fixed(config, id))
    {
        stored_mut(config, &mut file, id)?;
    }
    if let Some(d) = draft {
        check_name(config, &file, d.name.trim(), id)?;
    }
    Ok(())
}

/// Adds a condition; returns its id.
pub fn create(
    data_dir: &Path,
    config: &Config,
    d: &Draft,
    registrant: &str,
) -> Result<String, StoreError> {
    validate(d)?;
    update(data_dir, |file| {
        let name = d.name.trim();
        check_name(config, file, name, None)?;
        file.next_id = file.next_id.max(file.conditions.len() as u64) + 1;
        let id = format!("c{}", file.next_id);
        let now = Timestamp::now();
        file.conditions.push(StoredCondition {
            id: id.clone(),
            name: name.to_string(),
            query: d.query.clone(),
            severity: d.severity.clone(),
            comment: d.comment.clone(),
            enabled: d.enabled,
            registrant: registrant.to_string(),
            created: now,
            updated: now,
        });
        Ok(id)
    })
}

/// Replaces a stored condition's fields; returns it as it was before.
pub fn edit(
    data_dir: &Path,
    config: &Config,
    id: &str,
    d: &Draft,
) -> Result<StoredCondition, StoreError> {
    validate(d)?;
    update(data_dir, |file| {
        let name = d.name.trim();
        check_name(config, file, name, Some(id))?;
        let c = stored_mut(config, file, id)?;
        let before = c.clone();
        c.name = name.to_string();
        c.query = d.query.clone();
        c.severity = d.severity.clone();
        c.comment = d.comment.clone();
        c.enabled = d.enabled;
        c.updated = Timestamp::now();
        Ok(before)
    })
}

fn stored_mut<'a>(
    config: &Config,
    file: &'a mut StoreFile,
    id: &str,
) -> Result<&'a mut StoredCondition, StoreError> {
    if config.alerts.conditions.iter().any(|c| c.name == id) {
        return Err(StoreError::ReadOnly(id.to_string(), "config file"));
    }
    if !config.alerts.no_defaults && DEFAULTS.iter().any(|c| c.0 == id) {
        return Err(StoreError::ReadOnly(id.to_string(), "firmware"));
    }
    file.conditions
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or_else(|| StoreError::NotFound(id.to_string()))
}

/// Switches any condition (stored by id; shipped or config by name) on or off; returns
/// its name.
pub fn set_enabled(
    data_dir: &Path,
    config: &Config,
    id: &str,
    enabled: bool,
) -> Result<String, StoreError> {
    update(data_dir, |file| {
        if is_fixed(config, id) {
            file.disabled.retain(|n| n != id);
            if !enabled {
                file.disabled.push(id.to_string());
            }
            return Ok(id.to_string());
        }
        let c = stored_mut(config, file, id)?;
        if c.enabled != enabled {
            c.enabled = enabled;
            c.updated = Timestamp::now();
        }
        Ok(c.name.clone())
    })
}

/// Removes a stored condition; returns it.
pub fn delete(data_dir: &Path, config: &Config, id: &str) -> Result<StoredCondition, StoreError> {
    update(data_dir, |file| {
        stored_mut(config, file, id)?;
        let i = file
            .conditions
            .iter()
            .position(|c| c.id == id)
            .expect("found above");
        Ok(file.conditions.remove(i))
    })
}

/// Per condition name: hits in the local alert log and the time of the last one.
pub fn hit_counts(
    data_dir: &Path,
) -> std::io::Result<std::collections::HashMap<String, (u64, Timestamp)>> {
    use std::io::BufRead;
    let mut out = std::collections::HashMap::new();
    let f = match std::fs::File::open(super::log_path(data_dir)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    #[derive(Deserialize)]
    struct Line {
        time: Timestamp,
        condition: String,
    }
    for line in std::io::BufReader::new(f).lines() {
        let Ok(l) = serde_json::from_str::<Line>(&line?) else {
            continue; // a torn last line of a crashed run is cut by the next run
        };
        let e = out.entry(l.condition).or_insert((0, l.time));
        e.0 += 1;
        if l.time > e.1 {
            e.1 = l.time;
        }
    }
    Ok(out)
}
