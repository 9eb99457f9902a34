//! `cargo xtask bench store`: the segment store's import throughput beside the raw O_DIRECT
//! sequential write speed of the same file system, measured in the same run.
//!
//! Builds `kuroko-ring`'s `store_bench` example in release and runs it (see its docs): an
//! in-memory pcap of 64-byte and one of 1500-byte packets imported through the whole path,
//! paired with raw io_uring O_DIRECT overwrites of the same bytes in the same preallocation
//! state, alternating which goes first, after a discarded warm-up; medians with min–max of
//! `--rounds`, the load average, and where the import's wall time went (CPU, waiting for a
//! CPU, blocked on the disk) so a loaded machine shows in the numbers, and a CPU floor per
//! round (the same packets copied and checksummed with no disk) that says whether the vCPU
//! could have kept up with the disk in that round.
//! Targets: ≥ 90 % of raw at 1500 B, ≥ 5 Mpps per core at 64 B. The numbers go to stdout
//! and `bench-out/store.json`. Nothing here asserts on time.

use crate::util::{cargo, root, run as run_cmd};
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// Interleaved rounds (medians are reported; on a shared VM a round's ratio swings
    /// between about 0.5 and 1.5, so fewer than about 11 rounds give a shaky median).
    #[arg(long, default_value_t = 11)]
    pub rounds: usize,
    /// 64-byte packets per import run.
    #[arg(long, default_value_t = 4_000_000)]
    pub small: usize,
    /// 1500-byte packets per import run.
    #[arg(long, default_value_t = 700_000)]
    pub large: usize,
    /// Scratch directory on the file system to measure (removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-ring",
        "--example",
        "store_bench",
    ]))?;
    let bin = crate::util::target_dir().join("release/examples/store_bench");
    let out_dir = root().join("bench-out");
    std::fs::create_dir_all(&out_dir).context("cannot create bench-out/")?;
    let dir = args.dir.unwrap_or_else(|| out_dir.join("store-tmp"));
    let status = Command::new(&bin)
        .arg("--dir")
        .arg(&dir)
        .arg("--out")
        .arg(out_dir.join("store.json"))
        .args(["--rounds", &args.rounds.to_string()])
        .args(["--small", &args.small.to_string()])
        .args(["--large", &args.large.to_string()])
        .status()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !status.success() {
        bail!("store_bench failed ({status})");
    }
    Ok(())
}
