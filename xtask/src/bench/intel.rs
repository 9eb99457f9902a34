//! `cargo xtask bench intel`: what threat intel costs (issue 18), from `intel_bench` (an
//! example of `kuroko-detect`, release build; `firmware/detect/examples/intel_bench.rs`):
//!
//! - the matcher with `--indicators` (default 1 M) loaded: import and load time, resident
//!   memory per indicator;
//! - tagging one session record with it (what the analyzer does for every record it
//!   writes) beside the same records without packs and beside serialising each record to
//!   JSON (work the analyzer does for every record anyway), same run, interleaved;
//! - a re-check of `--recheck-sessions` sessions (default 200 k: a few seconds; 10 M is
//!   `--recheck-sessions 10000000`, about 6 GB of session log) against
//!   `--recheck-indicators` (default 100 k) new indicators: time, sessions/s, memory.
//!
//! Results go to `bench-out/intel.md`. Nothing here asserts on time.

use crate::util::{cargo, root, run as run_cmd};
use anyhow::{Context, ensure};
use std::path::PathBuf;
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    pub indicators: u64,
    /// Session records tagged (with and without packs).
    #[arg(long, default_value_t = 300_000)]
    pub sessions: u64,
    #[arg(long, default_value_t = 200_000)]
    pub recheck_sessions: u64,
    #[arg(long, default_value_t = 100_000)]
    pub recheck_indicators: u64,
    /// Work directory (removed afterwards).
    #[arg(long, default_value = "/tmp/kuroko-bench-intel")]
    pub work: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-detect",
        "--example",
        "intel_bench",
    ]))?;
    let bin = crate::util::target_dir().join("release/examples/intel_bench");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let out = Command::new(&bin)
        .arg(&args.work)
        .args([
            args.indicators.to_string(),
            args.sessions.to_string(),
            args.recheck_sessions.to_string(),
            args.recheck_indicators.to_string(),
        ])
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    ensure!(
        out.status.success(),
        "intel_bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    let with = f("tag_ns_per_session_with");
    let without = f("tag_ns_per_session_without");
    let json = f("json_ns_per_session");
    let md = format!(
        "# bench intel\n\nload average at start: {load}\n\
         ## Matcher\n\n\
         - {} indicators loaded ({} asked), import {:.1} s, load {:.2} s\n\
         - resident memory added by the matcher: {:.0} MB, {:.0} bytes per indicator\n\n\
         ## Tagging a session record ({} mixed HTTP/DNS/TLS records, best of 3, same run)\n\n\
         | | ns per session |\n| --- | --- |\n\
         | no packs | {without:.0} |\n| {} indicators | {with:.0} |\n\
         | serialising the record to JSON (reference: the analyzer does it for every record) | {json:.0} |\n\n\
         Matching with 1 M indicators costs {:.0} ns per session more than with none, {:.0} % of \
         the JSON serialisation of the same record alone (the analyzer spends far more per \
         session than that: parsing, reassembly, files, the log).\n\n\
         ## Re-check of the past\n\n\
         - {} sessions in the log against {} new indicators: {:.1} s, {:.0} sessions/s \
         (10 M sessions at that rate: {:.0} min), {} sessions with hits\n\
         - resident memory added by the re-check: {:.0} MB (end of run: {:.0} MB, peak of \
         the whole run: {:.0} MB)\n\
         - load average (1, 5, 15 min) before the re-check: {}, after: {}\n\
         - same-run reference: writing the log took {:.1} s ({:.1} GB), the live catch-up \
         (every rule, no packs) over it {:.1} s ({:.0} sessions/s)\n",
        r["indicators_loaded"],
        r["indicators"],
        f("import_s"),
        f("load_s"),
        f("matcher_rss_kb") / 1024.0,
        f("matcher_bytes_per_indicator"),
        r["sessions"],
        r["indicators_loaded"],
        with - without,
        (with - without) / json.max(1e-9) * 100.0,
        r["recheck_sessions_checked"],
        r["recheck_indicators"],
        f("recheck_s"),
        f("recheck_sessions_per_s"),
        1e7 / f("recheck_sessions_per_s").max(1e-9) / 60.0,
        r["recheck_hits"],
        f("recheck_rss_added_kb") / 1024.0,
        f("rss_kb_end") / 1024.0,
        f("peak_rss_kb") / 1024.0,
        r["load_before_recheck"].as_str().unwrap_or(""),
        r["load_after_recheck"].as_str().unwrap_or(""),
        f("log_write_s"),
        f("log_bytes") / 1e9,
        f("live_catch_up_s"),
        f("live_sessions_per_s"),
    );
    let dir = root().join("bench-out");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("intel.md"), &md)?;
    println!("{md}");
    println!("raw: {r}");
    Ok(())
}
