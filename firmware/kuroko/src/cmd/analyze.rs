//! `kuroko analyze`: analyze every stored packet not yet analyzed, then exit.
//!
//! Runs the analyzer (`kuroko-analyzer`) from its checkpoint to the end of the segment
//! store, writing sessions to `DATA/sessions/`, then lets the consumers of the session log
//! (index, detections) catch up. Resumes where it stopped after a crash.

use super::DataArgs;
use anyhow::Context;
use kuroko_analyzer::driver::{self, RunOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Analyze this classic pcap file instead of the segment store (development and
    /// tests; positions are the packet indices of the file).
    #[arg(long, value_name = "FILE", hide = true)]
    pub pcap: Option<PathBuf>,
    /// Checkpoint every N packets (crash tests).
    #[arg(long, value_name = "N", hide = true)]
    pub checkpoint_every_packets: Option<u64>,
    /// Abort like kill -9 after N packets (crash tests).
    #[arg(long, value_name = "N", hide = true)]
    pub abort_after_packets: Option<u64>,
    /// Keep running at normal CPU and I/O priority.
    #[arg(long)]
    pub foreground_priority: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let data = &args.data.data;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    if !args.foreground_priority {
        for problem in kuroko_analyzer::sys::become_background(&config.analyzer.cores) {
            eprintln!("kuroko analyze: running at normal priority: {problem}");
        }
    }
    let mut source: Box<dyn kuroko_analyzer::PacketSource> = match &args.pcap {
        Some(p) => Box::new(kuroko_analyzer::PcapSource::open(p)?),
        None => open_store(data)?,
    };
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut show = |p: driver::Progress| {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r{} packets, {} sessions, {} flows open, {:.1} MB/s   ",
            p.packets,
            p.sessions,
            p.open_flows,
            p.bytes as f64 / 1e6 / secs
        );
        let _ = std::io::stderr().flush();
    };
    let opts = RunOptions {
        checkpoint_every_packets: args.checkpoint_every_packets,
        abort_after_packets: args.abort_after_packets,
        progress: if tty { Some(&mut show) } else { None },
        ..RunOptions::default()
    };
    let summary = driver::run(data, &config, source.as_mut(), opts)
        .with_context(|| format!("analyzing {}", data.display()))?;
    if tty {
        eprintln!();
        let c = &summary.counters;
        eprintln!(
            "analyzed {} packets ({:.1} MB) in {:.1}s: {} sessions written, {} flows kept open; \
             decode errors {}, evicted flows {}, tcp gaps {}",
            summary.packets,
            summary.bytes as f64 / 1e6,
            summary.elapsed.as_secs_f64(),
            summary.sessions_written,
            summary.open_flows_kept,
            c.decode_errors,
            c.evicted_flows,
            c.tcp_gaps
        );
    }

    // ---- Consumers of the session log plug in here. ------------------------------------
    // The index (kuroko-index) and detections (kuroko-detect) each follow DATA/sessions/
    // from their own durable cursor (kuroko_model::sessionlog::LogPos), so they are run
    // after the analyzer and simply catch up with the log, e.g.:
    //   kuroko_index::catch_up(data, &config)?;
    //   kuroko_detect::catch_up(data, &config)?;
    // -------------------------------------------------------------------------------------
    Ok(())
}

fn open_store(data: &std::path::Path) -> anyhow::Result<Box<dyn kuroko_analyzer::PacketSource>> {
    let source = kuroko_analyzer::store::StoreSource::open(data).with_context(|| {
        format!(
            "no segment store in {}; import packets first (`kuroko import FILE --data {}`)",
            data.display(),
            data.display()
        )
    })?;
    Ok(Box::new(source))
}
