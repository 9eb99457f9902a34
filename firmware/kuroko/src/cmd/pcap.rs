//! `kuroko pcap --data DIR [--from T] [--to T] [--query Q] -w OUT`: stored packets as a pcap
//! (nanosecond timestamps, Ethernet) that Wireshark reads.
//!
//! Time ranges are served by the store alone (its per-segment time index). A `--query`
//! needs the session index: the search part hooks in at [`query_export`], which gets the
//! packets of the matching sessions through the same `export_pcap` with a filter.
//!
//! `OUT` is written through `crate::output` (`-` is standard output; devices, FIFOs and
//! symlink targets are written as they are; a regular file is replaced atomically).

use super::DataArgs;
use crate::output::Output;
use anyhow::{Context, bail};
use kuroko_model::time::Timestamp;
use kuroko_ring::StoreReader;
use kuroko_ring::pcap::export_pcap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Packets at or after this time (RFC 3339, e.g. 2026-11-18T09:30:00+09:00).
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Packets at or before this time (RFC 3339).
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Only the packets of the sessions matching this query.
    #[arg(long, value_name = "QUERY")]
    pub query: Option<String>,
    /// Output pcap file (`-` for standard output).
    #[arg(short = 'w', long = "write", value_name = "OUT")]
    pub out: PathBuf,
}

fn parse_time(flag: &str, text: &Option<String>) -> anyhow::Result<Option<u64>> {
    match text {
        None => Ok(None),
        Some(t) => {
            let ts = Timestamp::parse_rfc3339(t).map_err(|m| anyhow::anyhow!("--{flag}: {m}"))?;
            Ok(Some(ts.nanos().max(0) as u64))
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let _config = args.data.load_config()?;
    let from = parse_time("from", &args.from)?.unwrap_or(0);
    let to = parse_time("to", &args.to)?.map_or(u64::MAX, |t| t.saturating_add(1));
    if from >= to {
        bail!("--from is after --to: nothing to export; swap them");
    }
    let reader = StoreReader::open(&args.data.data)
        .with_context(|| format!("cannot read the store in {}", args.data.data.display()))?;
    if let Some(query) = &args.query {
        return query_export(&reader, query, from, to, &args.out);
    }
    write_export(&reader, from, to, |_| true, &args.out)
}

/// `--query`: the packets of the sessions matching the query, in time order.
///
/// The sessions come from the session index; their time ranges are merged into windows
/// (`kuroko_index::extract`), and only the segments overlapping a window are read. Packets
/// are matched to the sessions by 5-tuple (+ VLAN) inside each session's `[start, end]`.
/// Within a window the matching packets are sorted by time before they are written
/// (several capture threads may interleave), in batches of at most `SORT_BATCH_BYTES`.
fn query_export(
    reader: &StoreReader,
    query: &str,
    from: u64,
    to: u64,
    out: &Path,
) -> anyhow::Result<()> {
    use kuroko_index::extract::{MAX_EXPORT_SESSIONS, SessionPackets};
    /// Packet bytes held for sorting before a batch is written.
    const SORT_BATCH_BYTES: usize = 64 << 20;

    let q = kuroko_index::Query::parse(query).map_err(|e| anyhow::anyhow!("{e}"))?;
    let index = kuroko_index::Index::open(reader.data_dir())?;
    let sessions = index.search(&q, MAX_EXPORT_SESSIONS + 1)?;
    if sessions.len() > MAX_EXPORT_SESSIONS {
        bail!(
            "the query matches more than {MAX_EXPORT_SESSIONS} sessions; narrow it (e.g. add time:[… TO …]) or export a time range with --from/--to"
        );
    }
    if sessions.is_empty() {
        eprintln!("kuroko: no session matches the query; writing an empty pcap");
    }
    let wanted = SessionPackets::new(&sessions);
    let mut sink = Output::create(out)?;
    let mut w = kuroko_ring::pcap::PcapWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, &mut sink),
        kuroko_ring::format::LINKTYPE_ETHERNET as u32,
    )?;
    let (mut packets, mut bytes, mut damaged, mut lost) = (0u64, 0u64, 0usize, 0u64);
    for &(wf, wt) in wanted.windows() {
        let (wf, wt) = (wf.max(from), wt.min(to));
        if wf >= wt {
            continue;
        }
        let mut batch: Vec<(u64, u32, Vec<u8>)> = Vec::new();
        let mut held = 0usize;
        let mut err = None;
        let flush = |batch: &mut Vec<(u64, u32, Vec<u8>)>,
                     w: &mut kuroko_ring::pcap::PcapWriter<_>| {
            batch.sort_by_key(|p| p.0);
            for (ts, wire, data) in batch.drain(..) {
                w.write(ts, wire, &data)?;
            }
            std::io::Result::Ok(())
        };
        let rep = reader.scan_time(wf, wt, |p| {
            if wanted.matches(p.ts_ns, p.data) {
                packets += 1;
                bytes += p.data.len() as u64;
                held += p.data.len();
                batch.push((p.ts_ns, p.wire_len, p.data.to_vec()));
                if held >= SORT_BATCH_BYTES {
                    held = 0;
                    if let Err(e) = flush(&mut batch, &mut w) {
                        err = Some(e);
                        return std::ops::ControlFlow::Break(());
                    }
                }
            }
            std::ops::ControlFlow::Continue(())
        })?;
        if let Some(e) = err {
            return Err(e).with_context(|| format!("writing {}", out.display()));
        }
        flush(&mut batch, &mut w).with_context(|| format!("writing {}", out.display()))?;
        damaged += rep.damage.len();
        lost += rep.lost_segments;
    }
    w.into_inner()
        .flush()
        .with_context(|| format!("writing {}", out.display()))?;
    sink.finish()?;
    if damaged > 0 {
        eprintln!("kuroko: skipped {damaged} damaged place(s) in the store (see kuroko-inspect)");
    }
    if lost > 0 {
        eprintln!(
            "kuroko: {lost} segment(s) were overwritten before they could be read; some packets of these sessions are gone"
        );
    }
    if std::io::stderr().is_terminal() {
        eprintln!(
            "{packets} packets ({}) of {} sessions written to {}",
            kuroko_model::units::format_bytes(bytes),
            sessions.len(),
            out.display()
        );
    }
    Ok(())
}

/// Writes the packets in `[from, to)` that `filter` keeps to `out` (a path or `-`).
fn write_export(
    reader: &StoreReader,
    from: u64,
    to: u64,
    filter: impl FnMut(&kuroko_ring::PacketView<'_>) -> bool,
    out: &Path,
) -> anyhow::Result<()> {
    let mut sink = Output::create(out)?;
    let rep = export_pcap(reader, from, to, filter, &mut sink)
        .with_context(|| format!("writing {}", out.display()))?;
    sink.finish()?;
    for d in rep.damage.iter().take(10) {
        eprintln!("kuroko: skipped damaged data: {d}");
    }
    if rep.damage.len() > 10 {
        eprintln!(
            "kuroko: … and {} more damaged places (see kuroko-inspect)",
            rep.damage.len() - 10
        );
    }
    if rep.lost_segments > 0 {
        eprintln!(
            "kuroko: {} segment(s) were overwritten by the writer during the export",
            rep.lost_segments
        );
    }
    if std::io::stderr().is_terminal() {
        eprintln!(
            "{} packets ({}) written to {}",
            rep.packets,
            kuroko_model::units::format_bytes(rep.bytes),
            out.display()
        );
        let _ = std::io::stderr().flush();
    }
    Ok(())
}
