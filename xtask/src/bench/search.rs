//! `cargo xtask bench search`: the session index at scale.
//!
//! Builds `kuroko-index`'s `bench_search` example in release and runs it: N synthetic
//! sessions (default 1 M; the target is 10 M, `--sessions 10000000`) indexed as
//! `ingest_pending` does (alerts evaluated on every session), then index size per session,
//! indexing rate, and p50/p99 latency of typical queries. References measured in the same
//! run: parsing the session log (JSON) and scanning records in memory with the matcher.
//! The report goes to `bench-out/search.md`. Nothing here asserts on time.

use crate::util::{cargo, root, run as run_cmd};
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// Synthetic sessions to index.
    #[arg(long, default_value_t = 1_000_000)]
    pub sessions: u64,
    /// Runs of each query (with varying values).
    #[arg(long, default_value_t = 30)]
    pub runs: u64,
    /// Work directory (the index; removed afterwards unless --keep).
    #[arg(long, default_value = "/tmp/kuroko-bench-search")]
    pub work: PathBuf,
    #[arg(long)]
    pub keep: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-index",
        "--example",
        "bench_search",
    ]))?;
    let bin = root().join("target/release/examples/bench_search");
    eprintln!(
        "+ {} {} {} {}",
        bin.display(),
        args.work.display(),
        args.sessions,
        args.runs
    );
    let out = Command::new(&bin)
        .arg(&args.work)
        .arg(args.sessions.to_string())
        .arg(args.runs.to_string())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "bench_search failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    let dir = root().join("bench-out");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("search.md");
    std::fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{report}");
    eprintln!("written to {}", path.display());
    if !args.keep {
        let _ = std::fs::remove_dir_all(&args.work);
    }
    Ok(())
}
