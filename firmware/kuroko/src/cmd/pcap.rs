//! `kuroko pcap --data DIR [--from T] [--to T] [--query Q] -w OUT`: stored packets as a pcap
//! (nanosecond timestamps) that Wireshark reads, each packet with the link type it was
//! stored with: a classic pcap when the range has one link type, a pcapng when it mixes
//! (imports of `tcpdump -i any` or tun captures next to Ethernet ones).
//!
//! Time ranges are served by the store alone (its per-segment time index). A `--query`
//! needs the session index; `--finding F…` takes the finding's evidence sessions (and the
//! FTP data connections of its FTP sessions); both go through [`sessions_export`]. On
//! success one line on stderr says how many packets went to which file.
//!
//! Damage is never silent: skipped damaged blocks and damaged slots are named on stderr and
//! the command exits with status 3 (`EXIT_DAMAGED`) after writing the rest. So is a
//! segment whose write or fdatasync the disk failed (`SEG_FLAG_WRITE_ERROR`): its blocks
//! that read back are exported, but nothing says they would survive a power cut, so the
//! export names the segment and its time range on stderr and exits 3 too.
//!
//! `OUT` is written through `crate::output` (`-` is standard output; devices, FIFOs and
//! symlink targets are written as they are; a regular file is replaced atomically).

use super::DataArgs;
use crate::output::Output;
use anyhow::{Context, bail};
use kuroko_model::time::Timestamp;
use kuroko_ring::StoreReader;
use kuroko_ring::pcap::export_pcap;
use std::io::Write;
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
    #[arg(long, value_name = "QUERY", conflicts_with = "finding")]
    pub query: Option<String>,
    /// Only the packets of this finding's evidence sessions (the id as `kuroko findings`
    /// prints it), with the FTP data connections of its FTP control sessions.
    #[arg(long, value_name = "ID")]
    pub finding: Option<String>,
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
    let config = args.data.load_config()?;
    let from = parse_time("from", &args.from)?.unwrap_or(0);
    let to = parse_time("to", &args.to)?.map_or(u64::MAX, |t| t.saturating_add(1));
    if from >= to {
        bail!("--from is after --to: nothing to export; swap them");
    }
    let reader = StoreReader::open(&args.data.data)
        .with_context(|| format!("cannot read the store in {}", args.data.data.display()))?;
    if let Some(query) = &args.query {
        let q = super::search::parse_query(reader.data_dir(), &config, query)?;
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
        return sessions_export(&reader, &sessions, from, to, &args.out);
    }
    if let Some(id) = &args.finding {
        let sessions = finding_sessions(&reader, &config, id)?;
        return sessions_export(&reader, &sessions, from, to, &args.out);
    }
    write_export(&reader, from, to, |_| true, &args.out)
}

use kuroko_index::extract::MAX_EXPORT_SESSIONS;

/// The evidence sessions of finding `id` from the session index, plus the FTP data
/// connections whose control session is among them (the files an FTP finding is about).
fn finding_sessions(
    reader: &StoreReader,
    config: &kuroko_model::config::Config,
    id: &str,
) -> anyhow::Result<Vec<kuroko_model::SessionRecord>> {
    let data = reader.data_dir();
    let findings = kuroko_detect::load_findings(data, config, kuroko_model::finding::Lang::En)
        .with_context(|| format!("reading the findings of {}", data.display()))?;
    let Some(f) = findings.iter().find(|f| f.id == id) else {
        bail!(
            "no finding has the id `{id}` in {}; `kuroko findings --data {}` lists the ids",
            data.display(),
            data.display()
        );
    };
    let index = kuroko_index::Index::open(data)?;
    let mut sessions = Vec::new();
    let mut missing = 0usize;
    for sid in super::search::finding_session_ids(&index, &f.evidence)? {
        match index.get(&sid)? {
            Some(s) => sessions.push(s),
            None => missing += 1,
        }
    }
    if missing > 0 {
        eprintln!(
            "kuroko: {missing} of the finding's sessions are no longer in the session index (aged out); their packets are not in the pcap"
        );
    }
    Ok(sessions)
}

/// `--query` / `--finding`: the packets of `sessions`, in time order.
///
/// Their time ranges are merged into windows (`kuroko_index::extract`), and only the
/// segments overlapping a window are read. Packets are matched to the sessions by 5-tuple
/// (+ VLAN) inside each session's `[start, end]`. Within a window the matching packets are
/// sorted by time before they are written (several capture threads may interleave), in
/// batches of at most `SORT_BATCH_BYTES`.
fn sessions_export(
    reader: &StoreReader,
    sessions: &[kuroko_model::SessionRecord],
    from: u64,
    to: u64,
    out: &Path,
) -> anyhow::Result<()> {
    let mut sink = Output::create(out)?;
    let rep = kuroko_index::extract::write_sessions_pcap(reader, sessions, from, to, &mut sink)
        .with_context(|| format!("writing {}", out.display()))?;
    let (packets, bytes, damaged, lost) = (rep.packets, rep.bytes, rep.damaged, rep.lost_segments);
    sink.finish()?;
    warn_write_errors(&rep.write_error_segments);
    if damaged > 0 {
        eprintln!("kuroko: skipped {damaged} damaged place(s) in the store (see kuroko-inspect)");
    }
    if lost > 0 {
        eprintln!(
            "kuroko: {lost} segment(s) were overwritten before they could be read; some packets of these sessions are gone"
        );
    }
    // The one-line result goes to stderr even when piped: stdout may be the pcap itself.
    {
        eprintln!(
            "{packets} packets ({}) of {} sessions written to {}",
            kuroko_model::units::format_bytes(bytes),
            sessions.len(),
            out.display()
        );
    }
    damage_verdict(reader, damaged, rep.write_error_segments.len())
}

/// Names on stderr each segment the export read whose write or fdatasync the disk failed,
/// with its time range (at most 10; then how many more).
fn warn_write_errors(segs: &[kuroko_ring::WriteErrorSegment]) {
    let t = |ns: u64| Timestamp::from_nanos(ns.min(i64::MAX as u64) as i64).to_rfc3339();
    for w in segs.iter().take(10) {
        eprintln!(
            "kuroko: warning: {w}; packets from {} to {} (exported as they read back, unverified on the disk)",
            t(w.first_ts),
            t(w.last_ts)
        );
    }
    if segs.len() > 10 {
        eprintln!(
            "kuroko: … and {} more segments with disk write errors (see kuroko status)",
            segs.len() - 10
        );
    }
}

/// Exit status of a pcap written around damaged store data (see [`damage_verdict`]).
pub const EXIT_DAMAGED: i32 = 3;

/// Damage is never silent: after a warning on stderr naming what was skipped, a pcap
/// written around damaged blocks in the range, or from a store with damaged slots
/// (unreadable or failed headers: their time range is unknown, so they may have held
/// matching packets), or from `write_error_segments` segments whose write or fdatasync
/// the disk failed (their packets may not be on the disk after a power cut), ends with
/// exit status [`EXIT_DAMAGED`] (3) instead of 0. The file is complete otherwise.
fn damage_verdict(
    reader: &StoreReader,
    damaged_places: usize,
    write_error_segments: usize,
) -> anyhow::Result<()> {
    let slots = reader.damaged_slots();
    if !slots.is_empty() {
        eprintln!(
            "kuroko: warning: {} slot(s) of the store are damaged (unreadable or failed header: slots {:?}); packets they held cannot be exported",
            slots.len(),
            slots
        );
    }
    if damaged_places > 0 || !slots.is_empty() {
        eprintln!(
            "kuroko: warning: the pcap may be missing packets lost to damage (exit status {EXIT_DAMAGED})"
        );
        return Err(super::ExitCode(EXIT_DAMAGED).into());
    }
    if write_error_segments > 0 {
        eprintln!(
            "kuroko: warning: the pcap holds packets of {write_error_segments} segment(s) the disk failed to write or fdatasync: they may not survive a power cut and blocks may be missing (exit status {EXIT_DAMAGED})"
        );
        return Err(super::ExitCode(EXIT_DAMAGED).into());
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
    warn_write_errors(&rep.write_error_segments);
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
    {
        eprintln!(
            "{} packets ({}) written to {}",
            rep.packets,
            kuroko_model::units::format_bytes(rep.bytes),
            out.display()
        );
        let _ = std::io::stderr().flush();
    }
    damage_verdict(reader, rep.damage.len(), rep.write_error_segments.len())
}
