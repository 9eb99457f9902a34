//! `kuroko search --data DIR [--format table|jsonl|csv] [--limit N] QUERY`: sessions
//! matching a query, newest first (`shared/CONTRACT.md`); `--id ID` shows one session in
//! detail; `--stats by-protocol-hour|top-talkers|top-sources|top-destinations|top-domains|
//! transfers` aggregates the matching
//! sessions; `--count` prints only how many match; `--files` lists the matching
//! reconstructed files with their sessions.
//!
//! A search is a pure reader: it answers from the index's last commit and never opens the
//! index writer (`kuroko analyze` and the appliance's analyzer index the session log; a
//! search that took the writer's lock made their indexing fail with `LockBusy`), so it
//! also works on a read-only data directory. While the index is being rebuilt after a
//! format change it says how far the rebuild is.

use super::DataArgs;
use anyhow::{Context, bail};
use kuroko_index::aggregate;
use kuroko_index::render;
use kuroko_index::{Hit, Index, Query};
use std::io::{IsTerminal, Write};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Jsonl,
    Csv,
    /// Elastic Common Schema, one JSON object a line (`docs/ECS.md`).
    Ecs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stats {
    /// Sessions and bytes by protocol and hour.
    ByProtocolHour,
    /// Addresses that moved the most bytes (clients and servers mixed).
    TopTalkers,
    /// Clients that moved the most bytes (who opened the connections).
    TopSources,
    /// Servers that moved the most bytes (where the connections went).
    TopDestinations,
    /// Domains (HTTP host, TLS SNI, DNS name) with the most sessions.
    TopDomains,
    /// Uploads and downloads by protocol and direction (internal/external).
    Transfers,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Most sessions shown (newest first); for --stats top-talkers, most addresses.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Show one session in detail (all fields, reconstructed objects, packet count).
    #[arg(long, value_name = "SESSION_ID", conflicts_with_all = ["stats", "count"])]
    pub id: Option<String>,
    /// Same as --id.
    #[arg(long, value_name = "SESSION_ID", conflicts_with_all = ["id", "stats", "count"])]
    pub detail: Option<String>,
    /// Aggregate the matching sessions instead of listing them.
    #[arg(long, value_enum)]
    pub stats: Option<Stats>,
    /// Print only the number of matching sessions.
    #[arg(long)]
    pub count: bool,
    /// List the reconstructed files that match instead of sessions (ファイル検索): each
    /// file judged alone by `file:`, `file_type:`, `file_size:`, `sha256:`, `content:`,
    /// with its session (docs/QUERY.md, "File search").
    #[arg(long, conflicts_with_all = ["id", "detail", "stats", "count"])]
    pub files: bool,
    /// Table width in columns (default: the terminal's, or 80).
    #[arg(long)]
    pub width: Option<usize>,
    /// The query (Lucene/NetRAPTOR style), e.g. 'method:CONNECT AND NOT url:":443"'.
    /// `*` matches every session.
    #[arg(value_name = "QUERY")]
    pub query: Option<String>,
}

fn terminal_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return w;
    }
    if std::io::stdout().is_terminal()
        && let Ok(tty) = std::fs::File::open("/dev/tty")
        && let Ok(out) = std::process::Command::new("stty")
            .arg("size")
            .stdin(tty)
            .output()
        && let Some(w) = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse::<usize>().ok())
        && w > 0
    {
        return w;
    }
    80
}

/// The `index` section of `kuroko status`: sessions indexed, log position, and a rebuild
/// in progress after an index format change.
pub fn status_section(data: &std::path::Path) -> super::status::Section {
    use serde_json::json;
    let section = |json: serde_json::Value, rows: Vec<(String, String)>| super::status::Section {
        key: "index",
        title: "Session index",
        json,
        rows,
    };
    let index = match Index::open(data) {
        Ok(i) => i,
        Err(kuroko_index::IndexError::Missing { .. }) => {
            return section(
                json!({"present": false}),
                vec![("state".into(), "not built yet (`kuroko analyze`)".into())],
            );
        }
        Err(e @ kuroko_index::IndexError::OldSchema { .. }) => {
            return section(
                json!({"present": true, "state": "old_schema", "message": e.to_string()}),
                vec![(
                    "state".into(),
                    "old index format, waiting for the rebuild".into(),
                )],
            );
        }
        Err(e) => {
            return section(
                json!({"present": false, "error": e.to_string()}),
                vec![("state".into(), format!("unreadable: {e}"))],
            );
        }
    };
    let sessions = index.len();
    let mut rows = vec![("sessions".into(), sessions.to_string())];
    let mut j = json!({
        "present": true,
        "sessions": sessions,
        "schema_version": kuroko_index::schema::SCHEMA_VERSION,
    });
    match index.rebuild_progress(data) {
        Ok(Some(p)) => {
            rows.push((
                "state".into(),
                format!(
                    "rebuilding (schema {} -> {}): {:.0} % of the session log",
                    p.from_version,
                    p.to_version,
                    p.percent()
                ),
            ));
            j["state"] = json!("rebuilding");
            j["rebuild"] = json!({
                "from_version": p.from_version,
                "to_version": p.to_version,
                "sessions": p.sessions,
                "log_bytes_done": p.log_bytes_done,
                "log_bytes_total": p.log_bytes_total,
                "percent": p.percent(),
            });
        }
        Ok(None) => {
            rows.push(("state".into(), "up to date with its last commit".into()));
            j["state"] = json!("ready");
        }
        Err(e) => rows.push(("state".into(), format!("payload unreadable: {e}"))),
    }
    // Time-to-query, the index's part: none while it holds everything the analyzer has
    // published; else as long as it has not committed (it is behind since at most then).
    let published = kuroko_model::sessionlog::published(&data.join("sessions"))
        .ok()
        .flatten();
    if let (Ok(p), Some(published)) = (index.payload(), published) {
        let now = kuroko_model::Timestamp::now().nanos();
        let lag = if p.pos >= published {
            0.0
        } else if p.committed_at_ns > 0 {
            now.saturating_sub(p.committed_at_ns).max(0) as f64 / 1e9
        } else {
            f64::NAN
        };
        j["lag_seconds"] = if lag.is_nan() {
            json!(null)
        } else {
            json!(lag)
        };
        j["behind_published_log"] = json!(p.pos < published);
        rows.push((
            "lag".into(),
            if lag.is_nan() {
                "behind the session log (since an unknown time)".into()
            } else if lag == 0.0 {
                "none: every published session is searchable".into()
            } else {
                format!("{lag:.1} s behind the session log")
            },
        ));
    }
    section(j, rows)
}

/// The store's oldest segment sequence number, to mark sessions whose packets are gone.
fn oldest_segment(data: &std::path::Path) -> Option<u64> {
    let reader = kuroko_ring::StoreReader::open(data).ok()?;
    reader.segments().first().map(|s| s.seq)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match search(args) {
        // `kuroko search … | head` closes the pipe early: that is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn search(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let data = &args.data.data;
    let tz = config
        .site
        .tz()
        .map_err(|m| anyhow::anyhow!("[site] timezone: {m}"))?;
    // `[site] vpn_pools`: the addresses marked `(VPN)` / `"client_vpn": true`.
    let vpn = config.site.vpn();
    let index = Index::open(data)?;
    if let Ok(Some(p)) = index.rebuild_progress(data) {
        eprintln!("kuroko: note: {p}; results cover only the sessions indexed so far");
    }
    let mut out = std::io::stdout().lock();

    if let Some(id) = args.id.as_ref().or(args.detail.as_ref()) {
        let Some(record) = index.get(id)? else {
            bail!("no session with id `{id}`; ids are in the `id` column of --format jsonl/csv");
        };
        let packets_gone = oldest_segment(data).is_some_and(|o| record.span.last_segment < o);
        let hit = Hit {
            record,
            packets_gone,
        };
        match args.format {
            Format::Table => render::detail(&mut out, &hit, data, &tz, &vpn)?,
            Format::Jsonl => render::jsonl(&mut out, std::slice::from_ref(&hit), &vpn)?,
            Format::Csv => render::csv(&mut out, std::slice::from_ref(&hit), &tz, &vpn)?,
            Format::Ecs => crate::ecs::write_lines(
                &mut out,
                std::iter::once(crate::ecs::session(&hit.record)),
            )?,
        }
        return Ok(());
    }

    let text = match (&args.query, args.stats) {
        (Some(q), _) => q.clone(),
        (None, Some(_)) => "*".to_string(),
        (None, None) => bail!(
            "give a query (e.g. 'protocol:http AND method:POST', or * for every session), or --id SESSION_ID"
        ),
    };
    let parsed = parse_query(data, &config, &text)?;
    // `body:` / `content:` terms answered by the content index (notes: too many, none yet).
    let (query, notes) = if args.files {
        (parsed.clone(), Vec::new())
    } else {
        index.resolve_content(&parsed)?
    };
    for n in notes {
        eprintln!("kuroko: note: {n}");
    }

    if args.files {
        let time_of = |r: &kuroko_model::SessionRecord| render::cell(r, render::Column::Time, &tz);
        return super::content::files(&mut out, data, &index, &parsed, &args, &time_of);
    }
    if args.count {
        writeln!(out, "{}", index.count(&query)?)?;
        return Ok(());
    }
    if let Some(kind) = args.stats {
        let internal = config.site.internal_nets();
        match kind {
            Stats::ByProtocolHour => {
                let rows = aggregate::by_protocol_hour(&index, &query)?;
                match args.format {
                    Format::Table => render::stats_protocol_hour(&mut out, &rows, &tz)?,
                    Format::Jsonl | Format::Ecs => json_lines(&mut out, &rows)?,
                    Format::Csv => csv_rows(&mut out, &rows)?,
                }
            }
            Stats::TopTalkers => {
                let mut rows = aggregate::top_talkers(&index, &query, args.limit, &internal)?;
                aggregate::mark_vpn_pools(&mut rows, &vpn);
                match args.format {
                    Format::Table => render::stats_talkers(&mut out, &rows)?,
                    Format::Jsonl | Format::Ecs => json_lines(&mut out, &rows)?,
                    Format::Csv => csv_rows(&mut out, &rows)?,
                }
            }
            Stats::TopSources | Stats::TopDestinations => {
                let side = if kind == Stats::TopSources {
                    aggregate::Side::Source
                } else {
                    aggregate::Side::Destination
                };
                let mut rows = aggregate::top_by_side(&index, &query, args.limit, &internal, side)?;
                aggregate::mark_vpn_pools(&mut rows, &vpn);
                match args.format {
                    Format::Table => render::stats_talkers(&mut out, &rows)?,
                    Format::Jsonl | Format::Ecs => json_lines(&mut out, &rows)?,
                    Format::Csv => csv_rows(&mut out, &rows)?,
                }
            }
            Stats::TopDomains => {
                let rows = aggregate::top_domains(&index, &query, args.limit)?;
                match args.format {
                    Format::Table => render::stats_domains(&mut out, &rows)?,
                    Format::Jsonl | Format::Ecs => json_lines(&mut out, &rows)?,
                    Format::Csv => csv_rows(&mut out, &rows)?,
                }
            }
            Stats::Transfers => {
                let rows = aggregate::transfers(&index, &query, &internal)?;
                match args.format {
                    Format::Table => render::stats_transfers(&mut out, &rows)?,
                    Format::Jsonl | Format::Ecs => json_lines(&mut out, &rows)?,
                    Format::Csv => csv_rows(&mut out, &rows)?,
                }
            }
        }
        return Ok(());
    }

    let hits = index.search_hits(&query, args.limit, oldest_segment(data))?;
    let snippets = super::content::snippets(data, &parsed, &hits);
    match args.format {
        Format::Jsonl if !snippets.is_empty() => {
            super::content::jsonl(&mut out, &hits, &snippets, &vpn)?
        }
        Format::Table => {
            let width = args.width.unwrap_or_else(terminal_width);
            render::table(&mut out, &hits, &tz, width, &vpn)?;
            super::content::print_snippets(
                &mut out,
                &hits,
                &snippets,
                std::io::stdout().is_terminal(),
            )?;
        }
        Format::Jsonl => render::jsonl(&mut out, &hits, &vpn)?,
        Format::Csv => render::csv(&mut out, &hits, &tz, &vpn)?,
        Format::Ecs => crate::ecs::write_lines(
            &mut out,
            hits.iter().map(|h| crate::ecs::session(&h.record)),
        )?,
    }
    out.flush().context("writing the results")?;
    // A cut list is never silent, in any format and on a pipe too (on stderr, so the
    // results stay clean): how many more there are and what to do.
    if hits.len() >= args.limit {
        let total = index.count(&query)?;
        if total > hits.len() as u64 {
            eprintln!("{}", more_results(hits.len(), total));
        }
    } else if args.format == Format::Table && std::io::stderr().is_terminal() {
        eprintln!("{} of {} sessions", hits.len(), hits.len());
    }
    Ok(())
}

/// A query as `search` and `pcap --query` read it: local times in the site's time zone,
/// `time:business` / `time:night` from `[site] business_hours` over the stored data's time
/// range, and `finding:F…` resolved from the findings store.
pub fn parse_query(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    text: &str,
) -> anyhow::Result<Query> {
    let site = site_time(data, config)?;
    // The parser's error stays typed inside the anyhow error: the web console takes its
    // column from it for the caret.
    let q = Query::parse_local(text, &site)?;
    resolve_findings(data, config, &q)
}

/// The site's clock for queries; the span is the store's time range (the last
/// `local::MAX_DAYS` days when the store cannot be read).
fn site_time(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
) -> anyhow::Result<kuroko_index::query::local::SiteTime> {
    use kuroko_model::Timestamp;
    let tz = config
        .site
        .tz()
        .map_err(|m| anyhow::anyhow!("[site] timezone: {m}"))?;
    let business_hours = kuroko_model::config::BusinessHours::parse(&config.site.business_hours)
        .map_err(|m| anyhow::anyhow!("[site] business_hours: {m}"))?;
    let stored = kuroko_ring::StoreReader::open(data).ok().and_then(|r| {
        let segs = r.segments();
        let first = segs
            .iter()
            .filter(|s| s.first_ts > 0)
            .map(|s| s.first_ts)
            .min()?;
        let last = segs.iter().map(|s| s.last_ts).max()?;
        Some((Timestamp(first as i64), Timestamp(last as i64)))
    });
    let now = Timestamp::now();
    let span = stored.unwrap_or((
        Timestamp(
            now.nanos() - i64::from(kuroko_index::query::local::MAX_DAYS) * 86_400_000_000_000,
        ),
        now,
    ));
    Ok(kuroko_index::query::local::SiteTime {
        tz,
        business_hours,
        span,
    })
}

/// `finding:F…` terms of `q` replaced by the finding's sessions: its evidence sessions,
/// plus the FTP data connections of its FTP control sessions (the files moved). Reads the
/// findings store only when the query names a finding.
pub fn resolve_findings(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    q: &Query,
) -> anyhow::Result<Query> {
    use kuroko_index::query::{Expr, Field};
    fn names_finding(e: &Expr) -> bool {
        match e {
            Expr::And(p) | Expr::Or(p) => p.iter().any(names_finding),
            Expr::Not(i) => names_finding(i),
            Expr::Term { field, .. } => *field == Some(Field::Finding),
            Expr::AnyOf { field, .. } => *field == Field::Finding,
            Expr::All => false,
        }
    }
    if !names_finding(&q.expr) {
        return Ok(q.clone());
    }
    let findings = kuroko_detect::load_findings(data, config, kuroko_model::finding::Lang::En)
        .with_context(|| format!("reading the findings of {}", data.display()))?;
    let index = Index::open(data)?;
    let lookup = |id: &str| -> Option<Vec<String>> {
        let f = findings.iter().find(|f| f.id == id)?;
        Some(finding_session_ids(&index, &f.evidence).unwrap_or_else(|_| f.evidence.clone()))
    };
    kuroko_index::query::resolve::findings(q, &lookup).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `evidence` and the ids of the FTP data connections whose control session is among them.
pub fn finding_session_ids(index: &Index, evidence: &[String]) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = evidence.to_vec();
    let mut has_ftp = false;
    for id in evidence {
        if index.get(id)?.is_some_and(|s| s.protocol == "ftp") {
            has_ftp = true;
            break;
        }
    }
    if has_ftp {
        let q = Query::parse("protocol:ftp-data").map_err(|e| anyhow::anyhow!("{e}"))?;
        for d in index.search(&q, kuroko_index::extract::MAX_EXPORT_SESSIONS)? {
            let linked = d
                .ftp
                .as_ref()
                .and_then(|x| x.control_session.as_ref())
                .is_some_and(|c| evidence.contains(c));
            if linked && !ids.contains(&d.id) {
                ids.push(d.id);
            }
        }
    }
    Ok(ids)
}

/// The note after a list cut at `--limit`.
pub fn more_results(shown: usize, total: u64) -> String {
    format!(
        "kuroko: {shown} of {total} matching sessions shown (newest first); {} more: raise --limit or narrow the query",
        total - shown as u64
    )
}

fn json_lines<T: serde::Serialize>(out: &mut dyn Write, rows: &[T]) -> anyhow::Result<()> {
    for r in rows {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn csv_rows<T: serde::Serialize>(out: &mut dyn Write, rows: &[T]) -> anyhow::Result<()> {
    // Flatten through JSON so every stats row type gets a header from its field names.
    let mut header: Option<Vec<String>> = None;
    let mut lines = Vec::new();
    for r in rows {
        let v = serde_json::to_value(r)?;
        let obj = v.as_object().context("stats row is not an object")?;
        if header.is_none() {
            header = Some(obj.keys().cloned().collect());
        }
        lines.push(
            obj.values()
                .map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>(),
        );
    }
    if let Some(h) = header {
        writeln!(out, "{}", h.join(","))?;
        for l in lines {
            let quoted: Vec<String> = l.iter().map(|c| super::findings::csv_cell(c)).collect();
            writeln!(out, "{}", quoted.join(","))?;
        }
    }
    Ok(())
}
