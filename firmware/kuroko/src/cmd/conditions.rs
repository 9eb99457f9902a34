//! `kuroko conditions list|add|edit|enable|disable|remove`: the alert conditions
//! (NetRAPTOR's 条件リスト) from the command line, for scripts and for a technician without
//! a browser. The same store, checks and audit trail as the web console's page
//! (`kuroko_index::alerts::store`): a change is checked first (a refused one changes
//! nothing and writes no audit line), then written to the console's audit log as done by
//! the local user, then made; a change the log cannot record is not made. Changes are live
//! at the alert engine's next ingest run, without a restart.

use super::DataArgs;
use kuroko_index::alerts::store::{self, Draft};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DraftArgs {
    /// The condition's name (unique over shipped, config and stored conditions).
    #[arg(long)]
    pub name: String,
    /// The search query that raises the alert (the search language of `kuroko search`).
    #[arg(long)]
    pub query: String,
    /// info, warning or critical.
    #[arg(long, default_value = "warning", value_parser = ["info", "warning", "critical"])]
    pub severity: String,
    /// Free text shown with the condition.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Store it switched off.
    #[arg(long)]
    pub disabled: bool,
}

impl DraftArgs {
    fn draft(&self) -> Draft {
        Draft {
            name: self.name.clone(),
            query: self.query.clone(),
            severity: self.severity.clone(),
            comment: self.comment.clone(),
            enabled: !self.disabled,
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Every condition (shipped, config, stored) with its hits and when it last fired.
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Store a new condition; prints its id (`c1`, `c2`, …).
    Add {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        draft: DraftArgs,
    },
    /// Replace a stored condition's name, query, severity, comment and state.
    Edit {
        /// The stored condition's id (see `list`).
        id: String,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        draft: DraftArgs,
    },
    /// Switch a condition on (stored ones by id; shipped and config ones by name).
    Enable {
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Switch a condition off (stored ones by id; shipped and config ones by name).
    Disable {
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Delete a stored condition (shipped and config ones can only be switched off).
    Remove {
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn draft_json(d: &Draft) -> serde_json::Value {
    json!({"name": d.name.trim(), "query": d.query, "severity": d.severity, "comment": d.comment, "enabled": d.enabled})
}

/// Audits `action`, then makes the change; a failure after the audit line is audited too.
fn audited<T>(
    data: &DataArgs,
    action: &str,
    detail: serde_json::Value,
    change: impl FnOnce() -> Result<T, store::StoreError>,
) -> anyhow::Result<T> {
    super::user::record(data, action, detail)?;
    change().map_err(|e| {
        let _ = super::user::record(
            data,
            "condition_change_failed",
            json!({"change": action, "error": e.to_string()}),
        );
        anyhow::anyhow!("{e}")
    })
}

/// Text from the store for a terminal: control and bidi characters become spaces.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || kuroko_model::session::is_bidi_control(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn list(data: &DataArgs, as_json: bool) -> anyhow::Result<()> {
    let config = data.load_config()?;
    let tz = config.site.tz().map_err(|m| anyhow::anyhow!("{m}"))?;
    let (entries, err) = store::entries(&data.data, &config);
    let hits = store::hit_counts(&data.data)
        .map_err(|e| anyhow::anyhow!("the alert log cannot be read: {e}"))?;
    if !as_json {
        println!(
            "{:<6} {:<7} {:<3} {:<8} {:>6}  {:<23} NAME: QUERY",
            "ID", "SOURCE", "ON", "SEVERITY", "HITS", "LAST FIRED"
        );
    }
    for e in &entries {
        let (n, last) = hits
            .get(&e.name)
            .copied()
            .map_or((0, None), |(n, t)| (n, Some(t)));
        let query_error = kuroko_index::Query::parse(&e.query)
            .err()
            .map(|q| q.message);
        if as_json {
            let mut v = serde_json::to_value(e)?;
            v["hits"] = json!(n);
            v["last_fired"] = json!(last);
            v["last_fired_local"] = json!(last.map(|t| t.local(&tz)));
            v["query_error"] = json!(query_error);
            println!("{v}");
        } else {
            let source = match e.source {
                store::Source::Shipped => "shipped",
                store::Source::Config => "config",
                store::Source::Stored => "stored",
            };
            let last = last.map_or_else(|| "-".to_string(), |t| t.local(&tz));
            println!(
                "{:<6} {:<7} {:<3} {:<8} {:>6}  {:<23} {}: {}{}",
                if e.source == store::Source::Stored {
                    plain(&e.id)
                } else {
                    "-".into()
                },
                source,
                if e.enabled { "on" } else { "off" },
                e.severity,
                n,
                last,
                plain(&e.name),
                plain(&e.query),
                query_error.map_or(String::new(), |m| format!("   (does not parse: {m})")),
            );
        }
    }
    if let Some(e) = err {
        // The shipped and config conditions above keep running; the store is left as is.
        anyhow::bail!("{e}");
    }
    Ok(())
}

fn set_enabled(data: &DataArgs, id: &str, enabled: bool) -> anyhow::Result<()> {
    let config = data.load_config()?;
    let action = if enabled {
        "condition_enable"
    } else {
        "condition_disable"
    };
    store::precheck(&data.data, &config, Some(id), None, true)?;
    let name = audited(data, action, json!({"id": id}), || {
        store::set_enabled(&data.data, &config, id, enabled)
    })?;
    eprintln!(
        "condition `{name}` switched {}",
        if enabled { "on" } else { "off" }
    );
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::List { data, json } => list(&data, json)?,
        Action::Add { data, draft } => {
            let config = data.load_config()?;
            let d = draft.draft();
            store::precheck(&data.data, &config, None, Some(&d), false)?;
            let id = audited(&data, "condition_create", draft_json(&d), || {
                store::create(&data.data, &config, &d, &super::user::local_user())
            })?;
            println!("{id}");
        }
        Action::Edit { id, data, draft } => {
            let config = data.load_config()?;
            let d = draft.draft();
            store::precheck(&data.data, &config, Some(&id), Some(&d), false)?;
            let mut detail = draft_json(&d);
            detail["id"] = json!(id);
            audited(&data, "condition_edit", detail, || {
                store::edit(&data.data, &config, &id, &d)
            })?;
            eprintln!("condition {id} changed");
        }
        Action::Enable { id, data } => set_enabled(&data, &id, true)?,
        Action::Disable { id, data } => set_enabled(&data, &id, false)?,
        Action::Remove { id, data } => {
            let config = data.load_config()?;
            store::precheck(&data.data, &config, Some(&id), None, false)?;
            let gone = audited(&data, "condition_delete", json!({"id": id}), || {
                store::delete(&data.data, &config, &id)
            })?;
            eprintln!("condition {id} (`{}`) deleted", gone.name);
        }
    }
    Ok(())
}
