//! `kuroko yara check --data DIR [--config FILE]`: compiles the YARA rule set the analyzer
//! would use (the `[intel] yara_rules` files and `DATA/intel/*/yara/`) and says which files
//! it holds, or fails with every error as `file:line: message`. Also the `yara` section
//! of `kuroko status` (the set in force, the last compilation's error, the re-checks of
//! stored files).
//!
//! `kuroko yara recheck` scans every stored file of the sessions in the log again with
//! every rule (`kuroko_detect::intel::yara_retro`); a change of the rule files queues the
//! same re-check by itself, counting the rules the change brought.

use super::DataArgs;
use kuroko_yara::scanner::read_state;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Compile the rule set and report errors with file and line.
    Check(DataArgs),
    /// Re-scan the stored files of every session in the log with every rule (runs now when
    /// no `kuroko run` holds the findings; otherwise the running appliance does it in the
    /// background). Matches become `yara_match` findings once, with the sessions' times.
    Recheck(RecheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct RecheckArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Commit every N records (crash tests).
    #[arg(long, value_name = "N", hide = true)]
    pub commit_every: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Sub::Check(d) => check(&d),
        Sub::Recheck(a) => recheck(&a),
    }
}

fn recheck(a: &RecheckArgs) -> anyhow::Result<()> {
    let config = a.data.load_config()?;
    super::create_data_dir(&a.data.data)?;
    let r = kuroko_detect::intel::yara_retro::request_recheck(&a.data.data)
        .map_err(anyhow::Error::msg)?;
    println!("YARA re-check of the stored files requested ({})", r.date);
    match super::intel::run_detections(&a.data.data, &config, a.commit_every) {
        Ok(s) => {
            for e in &s.intel_errors {
                eprintln!("kuroko yara recheck: {e}");
            }
            println!(
                "re-checked the files of {} sessions: {} matched a YARA rule",
                s.yara_retro_sessions, s.yara_retro_hits
            );
            Ok(())
        }
        Err(kuroko_detect::DetectError::Busy { .. }) => {
            println!(
                "kuroko run holds the findings: it re-checks in the background (see `kuroko status`)"
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn check(d: &DataArgs) -> anyhow::Result<()> {
    let config = d.load_config()?;
    let files = kuroko_yara::rule_files(&config.intel.yara_rules, Some(&d.data))?;
    if files.is_empty() {
        println!("no YARA rule files ([intel] yara_rules and DATA/intel/*/yara/ are empty)");
        return Ok(());
    }
    kuroko_yara::compile(&files).map_err(|e| anyhow::anyhow!("YARA rules: {e}"))?;
    println!("{} YARA rule files compile:", files.len());
    for f in &files {
        println!("  {}", f.display());
    }
    Ok(())
}

/// The warning `analyze` prints when the rule set in force is not the configured one.
pub fn warning(data: &std::path::Path) -> Option<String> {
    let state = read_state(data)?;
    let error = state.error?;
    Some(if state.compiled_at.is_some() {
        format!(
            "YARA rules changed but do not compile; the set compiled at {} stays in force: {error}",
            state.compiled_at.unwrap_or_default()
        )
    } else {
        format!("YARA rules do not compile; no YARA scanning: {error}")
    })
}

/// `status`'s `yara` section: `present` false until the analyzer compiled a set once.
pub fn status_section(data: &std::path::Path) -> super::status::Section {
    let progress = kuroko_detect::store::load(data)
        .ok()
        .flatten()
        .map(|s| s.engine.intel.yara)
        .unwrap_or_default();
    let recheck_json = |r: &kuroko_detect::intel::yara_retro::YaraRecheck| {
        json!({"date": r.date, "reason": r.reason, "new_rules": r.new_rules,
            "sessions_checked": r.sessions_checked, "files_scanned": r.files_scanned,
            "files_missing": r.files_missing, "sessions_with_hits": r.sessions_with_hits})
    };
    let recheck_row = match (progress.queue.first(), &progress.last_done) {
        (Some(r), _) => format!(
            "running: {} of {}, {} sessions checked ({} files), {} matched; {} more queued",
            r.reason,
            r.date,
            r.sessions_checked,
            r.files_scanned,
            r.sessions_with_hits,
            progress.queue.len() - 1
        ),
        (None, Some(r)) => format!(
            "done: {} of {}, {} sessions checked ({} files, {} no longer stored), {} matched",
            r.reason,
            r.date,
            r.sessions_checked,
            r.files_scanned,
            r.files_missing,
            r.sessions_with_hits
        ),
        (None, None) => "none".into(),
    };
    let recheck = json!({
        "recheck_pending": progress.queue.len(),
        "recheck_queue": progress.queue.iter().map(recheck_json).collect::<Vec<_>>(),
        "last_recheck": progress.last_done.as_ref().map(recheck_json),
    });
    let Some(st) = read_state(data) else {
        return super::status::Section {
            key: "yara",
            title: "YARA",
            json: json!({"present": false, "recheck_pending": recheck["recheck_pending"],
                "recheck_queue": recheck["recheck_queue"], "last_recheck": recheck["last_recheck"]}),
            rows: vec![
                ("rules".into(), "none configured".into()),
                ("re-check".into(), recheck_row),
            ],
        };
    };
    let mut rows = vec![
        ("rule files".to_string(), st.files.len().to_string()),
        (
            "compiled".into(),
            st.compiled_at.clone().unwrap_or_else(|| "never".into()),
        ),
    ];
    if let Some(e) = &st.error {
        rows.push((
            "error".into(),
            if st.compiled_at.is_some() {
                format!("{e} (the last good set stays in force)")
            } else {
                e.clone()
            },
        ));
    }
    rows.push(("re-check".into(), recheck_row));
    super::status::Section {
        key: "yara",
        title: "YARA",
        json: json!({
            "present": true,
            "files": st.files,
            "compiled_at": st.compiled_at,
            "generation": st.generation,
            "error": st.error,
            "in_force": st.compiled_at.is_some(),
            "recheck_pending": recheck["recheck_pending"],
            "recheck_queue": recheck["recheck_queue"],
            "last_recheck": recheck["last_recheck"],
        }),
        rows,
    }
}
