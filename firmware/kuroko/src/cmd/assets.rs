//! `kuroko assets`: the asset inventory the traffic shows (internal hosts, the services
//! they answered on, the software they announced), with the software judged against the
//! advisory list (shipped, or an intel pack's `advisories.toml` in `[intel]
//! category_dirs`).
//!
//! Reads what `kuroko analyze` / `kuroko run` committed with the findings
//! (`kuroko_detect::load_assets`). `table` is for people (a host, then its services and
//! software indented), `jsonl` is one host a line (`kuroko_detect::assets::view::HostView`:
//! the record keys are in the contract), `csv` is one row per service or software fact.
//! A service the host only announced over mDNS (`announced` service types, no sessions)
//! is marked as such: `announced _ipp._tcp` and no client counts in the table, role
//! `announced` in the CSV (its `detail` the service types).

use super::DataArgs;
use super::findings::csv_cell;
use anyhow::Context;
use kuroko_detect::assets::view::{HostView, SoftwareView, view};
use kuroko_detect::versions::Verdict;
use kuroko_detect::versions::advisories::AdvisoryList;
use kuroko_index::render::VPN_MARK;
use std::io::Write;

/// The same three output formats as `kuroko findings`.
pub use super::findings::Format;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// First let detections (and the inventory) catch up with the session log.
    #[arg(long)]
    pub update: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let data = &args.data.data;
    if args.update {
        super::findings::update(data, &config)?;
    }
    let inv = kuroko_detect::load_assets(data)
        .with_context(|| format!("reading the asset inventory of {}", data.display()))?;
    let list =
        AdvisoryList::load(&config.intel.category_dirs).context("loading the advisory list")?;
    let hosts = view(&inv, &list, &config.site.vpn());
    if hosts.is_empty() && args.format == Format::Table {
        if !config.assets.enabled {
            eprintln!("kuroko: the asset inventory is switched off ([assets] enabled = false)");
        } else {
            eprintln!(
                "kuroko: no hosts in the inventory of {} yet; run `kuroko analyze --data {}` first",
                data.display(),
                data.display()
            );
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match args.format {
        Format::Table => write_table(&mut out, &hosts, &inv.stats, &list.list_date),
        Format::Jsonl => hosts.iter().try_for_each(|h| {
            serde_json::to_writer(&mut out, h).map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        }),
        Format::Csv => write_csv(&mut out, &hosts),
        Format::Ecs => Err(std::io::Error::other(
            "--format ecs is for `search` and `findings`; use jsonl or csv for the asset inventory",
        )),
    };
    match result.and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the asset inventory"),
    }
}

fn verdict_text(f: &SoftwareView) -> String {
    let cves = |v: Verdict| -> Vec<String> {
        f.advisories
            .iter()
            .filter(|a| a.verdict == v)
            .flat_map(|a| a.cves.iter().cloned())
            .collect()
    };
    match f.worst() {
        Some(Verdict::Vulnerable) => format!("VULNERABLE {}", cves(Verdict::Vulnerable).join(" ")),
        Some(_) => format!("unknown {}", cves(Verdict::Unknown).join(" ")),
        None => String::new(),
    }
}

fn write_table(
    out: &mut impl Write,
    hosts: &[HostView],
    stats: &kuroko_detect::assets::InventoryStats,
    list_date: &str,
) -> std::io::Result<()> {
    let services: usize = hosts.iter().map(|h| h.services.len()).sum();
    writeln!(
        out,
        "{} hosts, {} services  (advisory list of {list_date}; evicted hosts {}, dropped services {}, software {}, names {})",
        hosts.len(),
        services,
        stats.hosts_evicted,
        stats.services_dropped,
        stats.software_dropped,
        stats.names_dropped
    )?;
    for h in hosts {
        let names: Vec<&str> = h.names.iter().map(|n| n.name.as_str()).collect();
        writeln!(
            out,
            "{}{}  {}  {}  {} .. {}",
            h.ip,
            if h.vpn { VPN_MARK } else { "" },
            h.mac.as_deref().unwrap_or("-"),
            if names.is_empty() {
                "-".to_string()
            } else {
                names.join(",")
            },
            h.first_seen,
            h.last_seen
        )?;
        for s in &h.services {
            let announced = if s.announced.is_empty() {
                String::new()
            } else {
                format!("  announced {}", s.announced.join(", "))
            };
            if s.answered() {
                writeln!(
                    out,
                    "    {}/{} {}  x{}  clients {} in / {} out{announced}  [{}]",
                    s.port,
                    s.transport,
                    s.protocol,
                    s.sessions,
                    s.internal_clients,
                    s.external_clients,
                    s.session
                )?;
            } else {
                // Announced over mDNS, never seen answering: no clients to count.
                writeln!(
                    out,
                    "    {}/{} {}{announced}  [{}]",
                    s.port, s.transport, s.protocol, s.session
                )?;
            }
        }
        for f in &h.software {
            let v = verdict_text(f);
            writeln!(
                out,
                "    {} {} :{}  {}{}  [{}]",
                f.role,
                f.kind,
                f.port,
                f.text,
                if v.is_empty() {
                    String::new()
                } else {
                    format!("  => {v}")
                },
                f.session
            )?;
        }
    }
    Ok(())
}

fn write_csv(out: &mut impl Write, hosts: &[HostView]) -> std::io::Result<()> {
    writeln!(
        out,
        "ip,mac,names,kind,role,port,transport,protocol,detail,sessions,internal_clients,external_clients,verdict,cves,first_seen,last_seen,session,vpn"
    )?;
    for h in hosts {
        let names: Vec<&str> = h.names.iter().map(|n| n.name.as_str()).collect();
        let head = format!(
            "{},{},{}",
            h.ip,
            csv_cell(h.mac.as_deref().unwrap_or("")),
            csv_cell(&names.join("; "))
        );
        for s in &h.services {
            writeln!(
                out,
                "{head},service,{},{},{},{},{},{},{},{},,,{},{},{},{}",
                // Seen answering (`server`), or only announced over mDNS (`announced`).
                if s.answered() { "server" } else { "announced" },
                s.port,
                csv_cell(&s.transport),
                csv_cell(&s.protocol),
                csv_cell(&s.announced.join("; ")),
                s.sessions,
                s.internal_clients,
                s.external_clients,
                s.first_seen,
                s.last_seen,
                csv_cell(&s.session),
                h.vpn
            )?;
        }
        for f in &h.software {
            let cves: Vec<&str> = f
                .advisories
                .iter()
                .flat_map(|a| a.cves.iter().map(|c| c.as_str()))
                .collect();
            writeln!(
                out,
                "{head},{},{},{},,,{},,,,{},{},{},{},{},{}",
                csv_cell(&f.kind),
                csv_cell(&f.role),
                f.port,
                csv_cell(&f.text),
                f.worst().map(|v| v.as_str()).unwrap_or(""),
                csv_cell(&cves.join("; ")),
                f.first_seen,
                f.last_seen,
                csv_cell(&f.session),
                h.vpn
            )?;
        }
    }
    Ok(())
}
