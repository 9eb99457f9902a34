//! `cargo xtask bench fulltext [--mails N]`: the content index beside the session index.
//!
//! Builds `kuroko-index`'s `bench_content` example in release and runs it: N synthetic
//! mail sessions (Japanese and English bodies of ~1.5 KB, one object each in `files/`),
//! then, in the same run, the session index catching up (sessions/s: the reference) and
//! the content index catching up over the same log (mails/s and MB/s of text), the index
//! bytes per byte of text, and phrase query latency p50/p99. Default 20,000 mails (a few
//! seconds); `--mails 1000000` for the issue's figure (about 1.5 GB of objects in a
//! temporary directory, removed afterwards). The report goes to
//! `bench-out/fulltext.md`. Nothing here asserts on time.

use crate::util::{cargo, root, run as run_cmd, target_dir};
use anyhow::{Context, bail};
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// Synthetic mails to index.
    #[arg(long, default_value_t = 20_000)]
    pub mails: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-index",
        "--example",
        "bench_content",
    ]))?;
    let bin = target_dir().join("release/examples/bench_content");
    eprintln!("+ {} {}", bin.display(), args.mails);
    let out = Command::new(&bin)
        .arg(args.mails.to_string())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "bench_content failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report = format!(
        "# cargo xtask bench fulltext — {} mails\n\n```\n{}```\n",
        args.mails,
        String::from_utf8_lossy(&out.stdout)
    );
    let dir = root().join("bench-out");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("fulltext.md");
    std::fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{report}");
    eprintln!("written to {}", path.display());
    Ok(())
}
