//! `kuroko intel import|list|remove|recheck`: the consultant's threat-intel packs
//! (`kuroko_detect::intel::packs`; formats and matching in `docs/INTEL.md`).
//!
//! `import` prints, per file, the format it was read as, its feed, date and SHA-256, the
//! indicators it gave, and every malformed line counted (the first ones with
//! `file:line`). Nothing is ever downloaded: a pack is a directory or an archive the
//! consultant brings.

use super::DataArgs;
use kuroko_detect::intel::packs::{self, ImportSummary, PackInfo};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `kuroko intel --data DIR [--config FILE] import|list|remove|recheck …`.
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Import a pack from a directory or an archive (.zip, .tar.gz, .tgz, .tar).
    Import {
        path: PathBuf,
        /// The pack's name (default: `name` in pack.toml, else the directory or archive name).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: OutFormat,
    },
    /// The installed packs with their files' provenance.
    List {
        #[arg(long, value_enum, default_value = "text")]
        format: OutFormat,
    },
    /// Remove a pack.
    Remove { name: String },
    /// Re-check every session still in the index and every stored file against every
    /// installed pack (runs now when no `kuroko run` holds the findings; otherwise the
    /// running appliance does it in the background).
    Recheck {
        /// Commit every N records (crash tests).
        #[arg(long, value_name = "N", hide = true)]
        commit_every: Option<usize>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    Text,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = args.data;
    match args.action {
        Action::Import { path, name, format } => {
            let _config = data.load_config()?;
            super::create_data_dir(&data.data)?;
            // A pack whose YARA rules do not compile is refused whole, before it is swapped
            // in (the analyzer would keep its last good set and say so, but the pack's
            // indicators should not arrive without its rules either).
            let compile = |files: &[std::path::PathBuf]| {
                kuroko_yara::compile(files)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            let s = packs::import_checked(&data.data, &path, name.as_deref(), &compile)
                .map_err(anyhow::Error::msg)?;
            match format {
                OutFormat::Json => println!("{}", serde_json::to_string_pretty(&s)?),
                OutFormat::Text => print_import(&s),
            }
            Ok(())
        }
        Action::List { format } => {
            let list = packs::list(&data.data).map_err(anyhow::Error::msg)?;
            match format {
                OutFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                OutFormat::Text => {
                    if list.is_empty() {
                        println!("no intel packs installed");
                    }
                    for p in &list {
                        print_pack(p);
                    }
                }
            }
            Ok(())
        }
        Action::Remove { name } => {
            let u = packs::remove(&data.data, &name).map_err(anyhow::Error::msg)?;
            println!(
                "removed intel pack {name} (intel update {} of {})",
                u.generation, u.date
            );
            Ok(())
        }
        Action::Recheck { commit_every } => {
            let config = data.load_config()?;
            let u = packs::request_recheck(&data.data).map_err(anyhow::Error::msg)?;
            println!(
                "re-check requested (intel update {} of {})",
                u.generation, u.date
            );
            match run_detections(&data.data, &config, commit_every) {
                Ok(s) => {
                    println!(
                        "re-checked {} sessions: {} intel hits",
                        s.retro_sessions, s.retro_hits
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
    }
}

/// The detections' catch-up (`kuroko_detect::run_pending`), committing every `commit_every`
/// records when given (the kill -9 tests stop it between commits).
pub fn run_detections(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    commit_every: Option<usize>,
) -> Result<kuroko_detect::Summary, kuroko_detect::DetectError> {
    let mut d = kuroko_detect::Detector::open(data, config)?;
    if let Some(n) = commit_every {
        d = d.with_batch(n);
    }
    d.catch_up()
}

fn print_pack(p: &PackInfo) {
    println!(
        "{}: {} indicators, {} malformed lines, imported {} from {} (update {})",
        p.name, p.indicators, p.bad_lines, p.imported_at, p.source, p.generation
    );
    for f in &p.files {
        println!(
            "  {}: {} ({}), feed {}, dated {}, sha256 {}: {} indicators, {} malformed, {} unsupported",
            f.path,
            f.format,
            human_bytes(f.bytes),
            f.feed,
            f.date,
            f.sha256,
            f.indicators,
            f.bad_lines,
            f.unsupported
        );
    }
    if !p.yara_files.is_empty() {
        println!("  YARA rule files: {}", p.yara_files.join(", "));
    }
}

fn human_bytes(b: u64) -> String {
    format!("{b} bytes")
}

fn print_import(s: &ImportSummary) {
    let p = &s.pack;
    match s.replaced {
        Some(n) => println!("replaced intel pack {} ({n} indicators before)", p.name),
        None => println!("imported intel pack {}", p.name),
    }
    print_pack(p);
    for f in &p.files {
        for b in &f.bad {
            println!("  malformed: {b}");
        }
        if f.bad_lines > f.bad.len() as u64 {
            println!(
                "  malformed: {} more lines in {}",
                f.bad_lines - f.bad.len() as u64,
                f.path
            );
        }
    }
    for u in &p.unrecognised {
        println!(
            "  skipped {u}: not a known feed format; declare it in pack.toml ([[file]] path = \"{u}\" format = \"plain\" kind = \"domain\")"
        );
    }
    for (k, n) in &p.kinds {
        println!("  {k}: {n}");
    }
    println!(
        "the sessions and files already stored are re-checked in the background (intel update {} of {}; progress in `kuroko status`)",
        s.update.generation, s.update.date
    );
}

/// `kuroko status`: the installed packs and the re-checks of the past (`"intel"` in JSON).
pub fn status_section(data: &std::path::Path) -> super::status::Section {
    use serde_json::json;
    let list = packs::list(data).unwrap_or_default();
    let st = packs::state(data).unwrap_or_default();
    let progress = kuroko_detect::store::load(data)
        .ok()
        .flatten()
        .map(|s| s.engine.intel)
        .unwrap_or_default();
    let indicators: u64 = list.iter().map(|p| p.indicators).sum();
    let mut rows = vec![(
        "packs".to_string(),
        if list.is_empty() {
            "none installed".to_string()
        } else {
            format!(
                "{} ({} indicators): {}",
                list.len(),
                indicators,
                list.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    )];
    let behind = st.generation > progress.seen_generation;
    let recheck = match (progress.queue.first(), behind) {
        (Some(r), _) => format!(
            "running: intel update of {} ({}), {} sessions checked, {} matched; {} more queued",
            r.date,
            r.packs.join(", "),
            r.sessions_checked,
            r.sessions_with_hits,
            progress.queue.len() - 1
        ),
        (None, true) => "waiting: the detections have not taken the latest intel update yet".into(),
        (None, false) => match &progress.last_done {
            Some(r) => format!(
                "done: intel update of {}, {} sessions checked, {} matched",
                r.date, r.sessions_checked, r.sessions_with_hits
            ),
            None => "none".into(),
        },
    };
    rows.push(("re-check".into(), recheck));
    let queue: Vec<_> = progress
        .queue
        .iter()
        .map(|r| {
            json!({"generation": r.generation, "date": r.date, "packs": r.packs,
                "sessions_checked": r.sessions_checked, "sessions_with_hits": r.sessions_with_hits})
        })
        .collect();
    super::status::Section {
        key: "intel",
        title: "Intel packs",
        json: json!({
            "present": !list.is_empty(),
            "packs": list.iter().map(|p| json!({"name": p.name, "indicators": p.indicators,
                "bad_lines": p.bad_lines, "imported_at": p.imported_at, "generation": p.generation,
                "yara_files": p.yara_files.len()})).collect::<Vec<_>>(),
            "indicators": indicators,
            "generation": st.generation,
            "seen_generation": progress.seen_generation,
            "recheck_pending": progress.queue.len() + usize::from(behind && progress.queue.is_empty()),
            "recheck_queue": queue,
            "last_recheck": progress.last_done.as_ref().map(|r| json!({"generation": r.generation,
                "date": r.date, "sessions_checked": r.sessions_checked,
                "sessions_with_hits": r.sessions_with_hits})),
            "live_sessions_with_hits": progress.live_sessions_with_hits,
        }),
        rows,
    }
}
