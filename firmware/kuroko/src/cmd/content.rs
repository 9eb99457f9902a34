//! The content index in the CLI: its `status` section (texts indexed, the window of
//! sessions whose content is searchable, extraction failures by cause), the consumer run
//! of `kuroko analyze` / `kuroko run`, and the snippets `kuroko search` shows under a
//! result whose content matched (marked `[…]`, or in reverse video on a terminal; the
//! JSON lines get a `snippet` key), and the file search (`kuroko search --files`).

use kuroko_index::Hit;
use kuroko_index::content::{ContentIndex, Snippet, ingest};
use serde_json::json;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};

/// Lets the content index catch up with the session log (see `kuroko_index::content`).
pub fn catch_up(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    tty: bool,
) -> anyhow::Result<()> {
    let s = ingest::ingest_pending_with(data, config, worker_command(config))?;
    if tty && (s.sessions > 0 || s.dropped > 0) {
        eprintln!(
            "content: {} sessions read, {} texts indexed{}{}",
            s.sessions,
            s.texts,
            if s.failures > 0 {
                format!(
                    ", {} objects could not be read (see `kuroko status`)",
                    s.failures
                )
            } else {
                String::new()
            },
            if s.dropped > 0 {
                format!(", {} oldest texts dropped for [content] budget", s.dropped)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// How the content consumer starts its extraction worker: this binary, `kuroko
/// content-worker`, with `[content] worker_memory`; `None` (extract in-process) when the
/// binary's path is unknown.
fn worker_command(
    config: &kuroko_model::config::Config,
) -> Option<kuroko_content::worker::WorkerCommand> {
    let program = std::env::current_exe().ok()?;
    let memory = config
        .content
        .worker_memory_bytes()
        .unwrap_or(1 << 30)
        .to_string();
    let time = config
        .content
        .time_limit()
        .unwrap_or(kuroko_content::Limits::default().time);
    Some(kuroko_content::worker::WorkerCommand {
        program,
        args: vec![
            "content-worker".into(),
            "--memory".into(),
            memory,
            "--time-ms".into(),
            time.as_millis().to_string(),
        ],
        // 2 s of CPU past the limit, or the limit itself when it is smaller.
        grace: time.min(std::time::Duration::from_secs(2)),
        // Ten times that in wall time, at least a minute (see WorkerCommand::stall).
        stall: ((time + time.min(std::time::Duration::from_secs(2))) * 10)
            .max(std::time::Duration::from_secs(60)),
    })
}

/// `kuroko content-worker` (hidden): the extraction worker the content consumer starts
/// (`kuroko_content::worker`).
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Address space limit in bytes (RLIMIT_AS).
    #[arg(long, default_value_t = 1 << 30)]
    pub memory: u64,
    /// CPU seconds after which the worker retires between two objects (a new one takes
    /// over); RLIMIT_CPU is twice that.
    #[arg(long, default_value_t = 600)]
    pub cpu_seconds: u64,
    /// Time limit per object in milliseconds (`[content] time_limit`), checked between
    /// the steps of an extraction.
    #[arg(long, default_value_t = 5000)]
    pub time_ms: u64,
}

/// Runs the worker: background priority, rlimits, then objects from stdin until it closes.
pub fn worker(a: WorkerArgs) -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, UsageWho, getrusage, setrlimit};
    // Die with the analyzer that started it: an analyzer killed (kill -9, `kuroko run`
    // stopping it after its 5 s) cannot kill a worker stuck inside one step, which would
    // otherwise spin on until its extraction ends or RLIMIT_CPU, an orphan at idle
    // priority. (The signal is sent when the starting *thread* ends; the consumer's
    // `Worker` never outlives the call that started it.)
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| anyhow::anyhow!("content worker: PR_SET_PDEATHSIG: {e}"))?;
    // Lower priority is a wish (as for the analyzer), the limits are not.
    // Inherits the analyzer's cores and class; at least nice 10 (a worker the consumers wait
    // for must not starve under SCHED_IDLE while the analyzer itself gets its share).
    let _ = kuroko_analyzer::sys::become_background(&kuroko_analyzer::placement::Placement::lower(
        kuroko_analyzer::placement::DEFAULT_NICE,
    ));
    setrlimit(Resource::RLIMIT_AS, a.memory, a.memory)
        .map_err(|e| anyhow::anyhow!("content worker: RLIMIT_AS: {e}"))?;
    let cpu = a.cpu_seconds.saturating_mul(2);
    setrlimit(Resource::RLIMIT_CPU, cpu, cpu)
        .map_err(|e| anyhow::anyhow!("content worker: RLIMIT_CPU: {e}"))?;
    let mut retire = || {
        getrusage(UsageWho::RUSAGE_SELF).is_ok_and(|u| {
            let secs = u.user_time().tv_sec() + u.system_time().tv_sec();
            secs >= i64::try_from(a.cpu_seconds).unwrap_or(i64::MAX)
        })
    };
    kuroko_content::worker::serve(
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        &kuroko_content::Limits {
            time: std::time::Duration::from_millis(a.time_ms),
            ..kuroko_content::Limits::default()
        },
        &mut retire,
    )?;
    Ok(())
}

/// The `content` section of `kuroko status`.
pub fn status_section(data: &std::path::Path) -> super::status::Section {
    let section = |json: serde_json::Value, rows: Vec<(String, String)>| super::status::Section {
        key: "content",
        title: "Content index",
        json,
        rows,
    };
    let index = match ContentIndex::open(data) {
        Ok(Some(i)) => i,
        Ok(None) => {
            return section(
                json!({"present": false}),
                vec![("state".into(), "not built yet (`kuroko analyze`)".into())],
            );
        }
        Err(e) => {
            return section(
                json!({"present": false, "error": e.to_string()}),
                vec![("state".into(), format!("unreadable: {e}"))],
            );
        }
    };
    let payload = index.payload().unwrap_or_default();
    let c = &payload.counters;
    let bytes = kuroko_index::budget::dir_size(&index.path);
    let window = index.window().ok().flatten();
    let fmt = |ns: i64| {
        kuroko_model::Timestamp::from_nanos(ns)
            .to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let failures: serde_json::Map<String, serde_json::Value> = ingest::failure_counts(c)
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let failed: u64 = c.failures.values().sum();
    let mut rows = vec![
        ("texts".into(), index.len().to_string()),
        (
            "objects".into(),
            format!(
                "{} with text, {} without, {} gone from files/ before extraction, {} cut at the text limit",
                c.objects, c.skipped, c.missing, c.truncated
            ),
        ),
        ("disk".into(), kuroko_model::units::format_bytes(bytes)),
        (
            "searchable".into(),
            match window {
                Some((a, b)) => format!("sessions from {} to {}", fmt(a), fmt(b)),
                None => "nothing yet".into(),
            },
        ),
        (
            "failures".into(),
            if failed == 0 {
                "none".into()
            } else {
                ingest::failure_counts(c)
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ];
    if let Some(d) = payload.dropped_before {
        rows.push((
            "dropped".into(),
            format!("content of sessions before {} ([content] budget)", fmt(d)),
        ));
    }
    section(
        json!({
            "present": true,
            "texts": index.len(),
            "objects": c.objects,
            "skipped": c.skipped,
            "missing": c.missing,
            "truncated": c.truncated,
            "text_bytes": c.text_bytes,
            "disk_bytes": bytes,
            "failures": failures,
            "window": window.map(|(a, b)| json!({"from": fmt(a), "to": fmt(b)})),
            "dropped_before": payload.dropped_before.map(fmt),
        }),
        rows,
    )
}

/// Snippets of the hits whose content matched the query's phrases (by session id).
pub fn snippets(
    data: &std::path::Path,
    query: &kuroko_index::Query,
    hits: &[Hit],
) -> HashMap<String, Snippet> {
    if !kuroko_index::content::has_content(&query.plan) {
        return HashMap::new();
    }
    let Ok(Some(index)) = ContentIndex::open(data) else {
        return HashMap::new();
    };
    let ids: Vec<String> = hits.iter().map(|h| h.record.id.clone()).collect();
    index.snippets(&query.plan, &ids).unwrap_or_default()
}

/// The snippet lines printed after the result table: `id  name: …[match]…`.
pub fn print_snippets(
    out: &mut dyn Write,
    hits: &[Hit],
    snippets: &HashMap<String, Snippet>,
    ansi: bool,
) -> std::io::Result<()> {
    if snippets.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    for h in hits {
        let Some(s) = snippets.get(&h.record.id) else {
            continue;
        };
        let marked = if ansi {
            s.marked("\x1b[7m", "\x1b[0m")
        } else {
            s.marked("[", "]")
        };
        let name = s.name.as_deref().unwrap_or(&s.part);
        // Text off the wire: control characters (escape sequences) are not printed.
        let safe: String = marked
            .chars()
            .filter(|c| !c.is_control() || (ansi && *c == '\x1b'))
            .collect();
        let name: String = name.chars().filter(|c| !c.is_control()).collect();
        writeln!(out, "{}  {name}: {safe}", h.record.id)?;
    }
    Ok(())
}

/// The JSON lines of `hits`, each with a `snippet` key (`text`, `matches` as byte ranges,
/// `marked` with `[`…`]`, `sha256`, `part`, `name`) when its content matched.
pub fn jsonl(
    out: &mut dyn Write,
    hits: &[Hit],
    snippets: &HashMap<String, Snippet>,
    vpn: &kuroko_model::config::VpnPools,
) -> anyhow::Result<()> {
    for h in hits {
        let mut v = kuroko_index::render::with_vpn_keys(&h.record, vpn)?;
        if let (Some(s), Some(obj)) = (snippets.get(&h.record.id), v.as_object_mut()) {
            let mut sj = serde_json::to_value(s)?;
            sj["marked"] = json!(s.marked("[", "]"));
            obj.insert("snippet".into(), sj);
        }
        serde_json::to_writer(&mut *out, &v)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `kuroko search --files`: the matching reconstructed files, newest session first (see
/// `kuroko_index::files`). Table: time, protocol, size, type, name, sha256, session, the
/// file's path, its snippet; `--format jsonl`: one object per file (`session`, `time`,
/// `protocol`, `client`, `server`, `file`, `path`, `snippet`).
pub fn files(
    out: &mut dyn Write,
    data: &std::path::Path,
    index: &kuroko_index::Index,
    query: &kuroko_index::Query,
    args: &super::search::Args,
    time_of: &dyn Fn(&kuroko_model::SessionRecord) -> String,
) -> anyhow::Result<()> {
    use super::search::Format;
    let content = if kuroko_index::content::has_content(&query.plan) {
        ContentIndex::open(data)?
    } else {
        None
    };
    let res = kuroko_index::files::search(index, content.as_ref(), query, args.limit)?;
    for n in &res.notes {
        eprintln!("kuroko: note: {n}");
    }
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
    match args.format {
        Format::Table => {
            let ansi = std::io::stdout().is_terminal();
            for h in &res.hits {
                let f = &h.file;
                let r = &h.session;
                writeln!(
                    out,
                    "{}  {}  {:>10}  {}  {}",
                    time_of(r),
                    r.protocol,
                    kuroko_model::units::format_bytes(f.bytes),
                    clean(f.content_type.as_deref().unwrap_or("-")),
                    clean(f.name.as_deref().unwrap_or("(no name)")),
                )?;
                writeln!(
                    out,
                    "    sha256 {}  session {}  {}",
                    f.sha256,
                    r.id,
                    kuroko_index::render::object_path(data, &f.sha256).display()
                )?;
                if let Some(s) = &h.snippet {
                    let marked = if ansi {
                        s.marked("\x1b[7m", "\x1b[0m")
                    } else {
                        s.marked("[", "]")
                    };
                    let safe: String = marked
                        .chars()
                        .filter(|c| !c.is_control() || (ansi && *c == '\x1b'))
                        .collect();
                    writeln!(out, "    {safe}")?;
                }
            }
        }
        Format::Jsonl => {
            for h in &res.hits {
                let r = &h.session;
                let mut v = json!({
                    "session": r.id,
                    "time": r.start.to_datetime().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    "protocol": r.protocol,
                    "client": r.client,
                    "server": r.server,
                    "file": h.file,
                    "path": kuroko_index::render::object_path(data, &h.file.sha256),
                });
                if let Some(s) = &h.snippet {
                    let mut sj = serde_json::to_value(s)?;
                    sj["marked"] = json!(s.marked("[", "]"));
                    v["snippet"] = sj;
                }
                serde_json::to_writer(&mut *out, &v)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv | Format::Ecs => {
            anyhow::bail!("--files: give --format table or jsonl")
        }
    }
    out.flush()?;
    if res.more {
        eprintln!(
            "kuroko: {} files shown; more match (raise --limit or narrow the query)",
            res.hits.len()
        );
    }
    Ok(())
}
