//! The config checks that need the other crates (the query grammar of `kuroko_index`, the
//! rule catalog and intel loaders of `kuroko_detect`), run when any command loads its
//! config, with the model crate's file-and-line reporting (`Config::load_with`).
//!
//! Why at load: an alert condition whose query does not parse was dropped silently (the
//! alert never fired); a missing reputation list or an unknown rule id in
//! `detect.overrides`/`detect.disabled_rules` surfaced only in `kuroko analyze`, after
//! sessions were written, without file or line. Now every command refuses such a config
//! before it touches the data directory.

use kuroko_detect::DetectError;
use kuroko_model::config::Config;

/// For `Config::load_with`: (`key`, message) of the first problem.
pub fn check(config: &Config) -> Result<(), (String, String)> {
    for (i, c) in config.alerts.conditions.iter().enumerate() {
        if let Err(e) = kuroko_index::Query::parse(&c.query) {
            // The parser's message draws a caret under the query on extra lines; a config
            // error is one line, and the column is in the first.
            let e = e.to_string();
            let e = e.lines().next().unwrap_or_default().trim();
            return Err((
                format!("alerts.conditions[{}].query", i + 1),
                format!(
                    "the query of condition `{}` does not parse ({e}); fix it, or the alert would never fire",
                    c.name
                ),
            ));
        }
    }
    // The detection context is what `analyze` builds from the config: rule ids, the
    // reputation lists and the other intel files it names.
    kuroko_detect::context::Context::new(config)
        .map(drop)
        .map_err(|e| match e {
            DetectError::Config { key, message } => (key, message),
            DetectError::IntelRead { key, path, source } => (
                key,
                format!(
                    "cannot read {}: {source}; fix the path or remove it from the list",
                    path.display()
                ),
            ),
            DetectError::IntelEmpty {
                key,
                path,
                bad_lines,
            } => (
                key,
                format!(
                    "{} has no usable entry ({bad_lines} lines could not be read); expected one CIDR or address a line, e.g. `192.0.2.0/24 ; SBL123`",
                    path.display()
                ),
            ),
            other => ("detect".into(), other.to_string()),
        })
}

/// Loads `path` with every check.
pub fn load(path: &std::path::Path) -> Result<Config, kuroko_model::config::ConfigError> {
    Config::load_with(path, &check)
}
