//! `cargo xtask fuzz fulltext [--runs N] [--targets pdf,ooxml,…]`: the bounded in-tree
//! fuzzer of the content extractors (stable Rust has no cargo-fuzz).
//!
//! Builds `kuroko-content`'s `fuzz_content` example in release (mail-parser has a
//! `debug_assert!` that malformed multiparts reach, so debug builds stop there) and runs
//! it once per target, in its own process: fixed-seed mutations of seed PDFs, DOCX/XLSX/
//! ZIP, charset texts, forms, JSON, HTML and mails, each extracted under tight limits. A
//! panic or text past the limit fails the run and its input is saved under
//! `firmware/content/fuzz/crashes/<target>/`. Reported per target: runs, time, outcomes,
//! slowest input and peak RSS; the report goes to `bench-out/fuzz-fulltext.md`.
//! Default 1,000,000 runs per target (minutes); CI does not run it.

use crate::util::{cargo, root, run as run_cmd, target_dir};
use anyhow::{Context, bail};
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand)]
pub enum What {
    /// The text extractors of the content index (PDF, OOXML/ZIP, charsets, HTML, mail).
    Fulltext(FulltextArgs),
}

#[derive(clap::Args)]
pub struct FulltextArgs {
    /// Runs per target.
    #[arg(long, default_value_t = 1_000_000)]
    pub runs: u64,
    /// Targets, comma-separated.
    #[arg(long, default_value = "pdf,ooxml,charset,html,mail")]
    pub targets: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Fulltext(a) => fulltext(a),
    }
}

fn fulltext(a: FulltextArgs) -> anyhow::Result<()> {
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-content",
        "--example",
        "fuzz_content",
    ]))?;
    let bin = target_dir().join("release/examples/fuzz_content");
    let mut report = format!(
        "# cargo xtask fuzz fulltext — {} runs per target\n\n",
        a.runs
    );
    let mut failed = Vec::new();
    for t in a
        .targets
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let started = Instant::now();
        let out = Command::new(&bin)
            .args([t, "--runs", &a.runs.to_string()])
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = format!(
            "- {} (wall {:.1} s, exit {})\n",
            text.trim().replace('\n', "; "),
            started.elapsed().as_secs_f64(),
            out.status
        );
        print!("{line}");
        report.push_str(&line);
        if !out.status.success() {
            failed.push(t.to_string());
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let dir = root().join("bench-out");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("fuzz-fulltext.md"), &report)?;
    eprintln!("written to {}", dir.join("fuzz-fulltext.md").display());
    if !failed.is_empty() {
        bail!(
            "fuzzing found failures in {}: inputs in firmware/content/fuzz/crashes/",
            failed.join(", ")
        );
    }
    Ok(())
}
