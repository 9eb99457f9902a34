//! `cargo xtask bench analyze --variants assets,intel`: what the asset inventory (issue 20)
//! and 1 M intel indicators (issue 18) cost the whole `kuroko analyze`, same run.
//!
//! 1. Generate `--gb` of the `--mix` traffic (`synth::Mix`: `mixed` by default, the main
//!    bench's input; `small-sessions` where per-session work dominates).
//! 2. Build the release `kuroko` binary. Write the config files of the variants and, for
//!    `intel`, a pack of `--intel-indicators` indicators with the intel bench's generator
//!    (`kuroko_detect::intel::synthetic::write_pack`).
//! 3. `--trials` rounds; in each, every variant once, the order rotated by one every round
//!    so that no variant always runs first or after the same one. A run is: a fresh data
//!    directory, `kuroko import` of the pcap and, for `intel`, `kuroko intel import` of the
//!    pack (neither timed), then `kuroko analyze` under `/usr/bin/time` (user + sys CPU of
//!    the process and of the children it waited for: the content worker). That is the
//!    analyzer from the store, the session log, the index, the detections (with the
//!    inventory) and reports, as on the appliance.
//! 4. Medians per variant; each variant's cost against the baseline of the same rounds.
//!
//! `--callgrind` counts instructions instead (one run a variant):
//! `kuroko analyze --checkpoint-interval 1000000` under `valgrind --tool=callgrind
//! --trace-children=yes`, the instructions of the process and of the content worker
//! summed; the costs are the same ratios of instruction counts. The interval: the
//! analyzer checkpoints every 5 s of wall time and the session and content indexes commit
//! every 3 s, which under callgrind's 30–60× slowdown made the count follow the machine's
//! load and the variant's own speed (the same build counted 23.3 G and 27.9 G instructions
//! in two runs; tantivy's merges after the extra commits alone 1.7 G or 4.2 G; with only
//! the session index fixed, the slower variant still finalized 87 tantivy segments and merged
//! 12 times where the faster one finalized 56 and merged 7); with it, a run checkpoints and
//! commits where a native run of the input does. `--kuroko BIN` uses a given binary (no
//! build).
//!
//! Variants: `baseline` (defaults: inventory on, no intel pack), `assets-off`
//! (`[assets] enabled = false`), `intel-1m` (the pack imported into the data directory).
//! Finished data directories are retired as in the main bench (files emptied, deleted at
//! the end), so a run does not pay for the previous one's deletions.

use super::{Usage, loadavg, retire, timed};
use crate::util::{cargo, root, run as run_cmd};
use anyhow::{Context, bail, ensure};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Variant {
    name: &'static str,
    what: &'static str,
    config: &'static str,
    intel: bool,
}

const BASELINE: Variant = Variant {
    name: "baseline",
    what: "defaults: asset inventory on, no intel pack",
    config: "",
    intel: false,
};

const ASSETS_OFF: Variant = Variant {
    name: "assets-off",
    what: "`[assets] enabled = false`",
    config: "[assets]\nenabled = false\n",
    intel: false,
};

const INTEL: Variant = Variant {
    name: "intel",
    what: "inventory on, the synthetic pack imported (`kuroko intel import`)",
    config: "",
    intel: true,
};

struct Trial {
    usage: Usage,
    /// Instructions executed (`--callgrind`), the process and its children.
    instructions: u64,
    sessions: u64,
    /// Position in its round (0 = ran first).
    order: usize,
}

pub fn run(args: &super::Args) -> anyhow::Result<()> {
    let mut chosen = vec![&BASELINE];
    for v in &args.variants {
        match v.as_str() {
            "assets" => chosen.push(&ASSETS_OFF),
            "intel" => chosen.push(&INTEL),
            other => bail!("--variants: unknown variant {other:?} (assets, intel)"),
        }
    }
    ensure!(args.trials >= 1, "--trials must be at least 1");
    let kuroko = match &args.kuroko {
        Some(bin) => bin.clone(),
        None => {
            run_cmd(cargo().args(["build", "--quiet", "--release", "-p", "kuroko"]))?;
            crate::util::target_dir().join("release/kuroko")
        }
    };
    // Instruction counts do not vary with the load: one round is the figure.
    let rounds = if args.callgrind { 1 } else { args.trials };
    let work = &args.work;
    std::fs::create_dir_all(work)?;
    let load_start = loadavg();

    let pcap = work.join("variants.pcap");
    eprintln!(
        "generating {} ({:.2} GB of {} traffic)…",
        pcap.display(),
        args.gb,
        args.mix.name()
    );
    let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&pcap)?);
    let generated = kuroko_analyzer::synth::generate(
        f,
        &kuroko_analyzer::synth::Params {
            target_bytes: (args.gb * 1e9) as u64,
            concurrency: 512,
            seed: 1,
            mix: args.mix,
            ..Default::default()
        },
    )
    .context("generating the pcap")?;
    let pcap_bytes = std::fs::metadata(&pcap)?.len();

    let pack = work.join("intel-pack");
    if chosen.iter().any(|v| v.intel) {
        eprintln!("writing a pack of {} indicators…", args.intel_indicators);
        kuroko_detect::intel::synthetic::write_pack(&pack, args.intel_indicators, 1)?;
    }
    for v in &chosen {
        std::fs::write(work.join(format!("{}.toml", v.name)), v.config)?;
    }

    let mut trials: Vec<Vec<Trial>> = chosen.iter().map(|_| Vec::new()).collect();
    let mut loads = Vec::new();
    for round in 0..rounds {
        for k in 0..chosen.len() {
            let i = (round + k) % chosen.len();
            let v = chosen[i];
            eprintln!("round {}/{}: {}…", round + 1, rounds, v.name);
            let (usage, instructions, sessions) =
                one_run(&kuroko, work, v, &pcap, &pack, round, args.callgrind)?;
            eprintln!(
                "  {:.1} CPU s, {:.1} s wall, {instructions} instructions, {sessions} sessions",
                usage.cpu, usage.wall
            );
            trials[i].push(Trial {
                usage,
                instructions,
                sessions,
                order: k,
            });
        }
        loads.push(loadavg());
    }

    let render = if args.callgrind {
        render_callgrind
    } else {
        render
    };
    let report = render(
        args,
        &chosen,
        &trials,
        &generated,
        pcap_bytes,
        &load_start,
        &loads,
    );
    let out_dir = root().join("bench-out");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("analyze.md"), &report)?;
    println!("{report}");
    let _ = std::fs::remove_file(&pcap);
    let _ = std::fs::remove_dir_all(work.join("retired"));
    if !args.keep {
        let _ = std::fs::remove_dir_all(work);
    }
    Ok(())
}

/// One timed (or, `callgrind`, instruction-counted) `kuroko analyze` of a fresh data
/// directory; its usage, instructions (0 when timed) and sessions written.
fn one_run(
    kuroko: &Path,
    work: &Path,
    v: &Variant,
    pcap: &Path,
    pack: &Path,
    round: usize,
    callgrind: bool,
) -> anyhow::Result<(Usage, u64, u64)> {
    let data = work.join(format!("{}-{round}", v.name));
    let _ = std::fs::remove_dir_all(&data);
    let config = work.join(format!("{}.toml", v.name));
    let base = |cmd: &str| -> Command {
        let mut c = Command::new(kuroko);
        c.arg(cmd)
            .arg("--data")
            .arg(&data)
            .arg("--config")
            .arg(&config);
        c
    };
    let status = base("import")
        .arg(pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    ensure!(status.success(), "kuroko import failed ({status})");
    if v.intel {
        let out = Command::new(kuroko)
            .args(["intel", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .arg("import")
            .arg(pack)
            .output()?;
        ensure!(
            out.status.success(),
            "kuroko intel import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (usage, instructions) = if callgrind {
        let prefix = format!("callgrind.{}-{round}", v.name);
        // The analyzer checkpoints every 5 s of wall time (the index commits every 3 s);
        // callgrind runs it 30–60× slower, so a run would checkpoint tens of times where a
        // native one does once or twice, and the count would follow the machine's load.
        // One interval longer than any run: the checkpoints and commits are those of a
        // native run of this input.
        let mut analyze = base("analyze");
        analyze.args(["--checkpoint-interval", "1000000"]);
        let mut c = Command::new("valgrind");
        c.arg("--tool=callgrind")
            .arg("--trace-children=yes")
            .arg(format!(
                "--callgrind-out-file={}",
                work.join(format!("{prefix}.%p")).display()
            ))
            .arg(analyze.get_program())
            .args(analyze.get_args());
        let (usage, _) = timed(&mut c, false)?;
        (usage, callgrind_total(work, &prefix)?)
    } else {
        (timed(&mut base("analyze"), false)?.0, 0)
    };
    let sessions = count_sessions(&data.join("sessions"))?;
    retire(&data, work)?;
    Ok((usage, instructions, sessions))
}

/// Instructions (`Ir`) of every callgrind file `work/PREFIX.*` (the process and the
/// children it started), from their `summary:`/`totals:` lines.
fn callgrind_total(work: &Path, prefix: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut files = 0;
    for e in std::fs::read_dir(work)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(&format!("{prefix}.")) {
            continue;
        }
        let text = std::fs::read_to_string(&p)?;
        if text.is_empty() {
            // A child killed before callgrind could write (the content worker, stopped
            // with SIGKILL when `analyze` ends): its instructions are not counted.
            eprintln!("  {} is empty (a killed child): not counted", p.display());
            continue;
        }
        let line = text
            .lines()
            .find(|l| l.starts_with("summary:"))
            .or_else(|| text.lines().find(|l| l.starts_with("totals:")))
            .with_context(|| format!("no summary in {}", p.display()))?;
        total += line
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse::<u64>().ok())
            .with_context(|| format!("bad summary line in {}: {line}", p.display()))?;
        files += 1;
    }
    ensure!(
        files > 0,
        "no callgrind output {prefix}.* in {}",
        work.display()
    );
    Ok(total)
}

fn count_sessions(dir: &Path) -> anyhow::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p: PathBuf = e?.path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            n += std::fs::read(&p)?.iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    Ok(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `--callgrind` report: instructions per variant and the costs as their ratios.
fn render_callgrind(
    args: &super::Args,
    chosen: &[&Variant],
    trials: &[Vec<Trial>],
    generated: &kuroko_analyzer::synth::Report,
    pcap_bytes: u64,
    _load_start: &str,
    _loads: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# `kuroko analyze` variants, instruction counts (callgrind)\n"
    );
    let _ = writeln!(
        s,
        "Input: mix `{}` (`synth::Mix`), {:.3} GB pcap, {} packets ({} TCP connections: {} \
         HTTP, {} TLS, {} bulk, {} SSH/SMTP/Telnet; {} DNS). Every variant: a fresh data \
         directory, `kuroko import` and (intel) `kuroko intel import` not counted, then \
         `kuroko analyze` once under `valgrind --tool=callgrind --trace-children=yes` \
         (instructions of the process and the content worker summed).\n",
        args.mix.name(),
        pcap_bytes as f64 / 1e9,
        generated.packets,
        generated.tcp_connections,
        generated.http,
        generated.tls,
        generated.bulk,
        generated.banners,
        generated.dns,
    );
    let _ = writeln!(
        s,
        "| variant | what | instructions | sessions | instructions/session | vs baseline |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let ir = |i: usize| trials[i].first().map_or(0, |t| t.instructions);
    let base = ir(0) as f64;
    for (i, v) in chosen.iter().enumerate() {
        let sessions = trials[i].first().map_or(0, |t| t.sessions);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {} |",
            v.name,
            v.what,
            ir(i),
            sessions,
            ir(i) as f64 / sessions.max(1) as f64,
            if i == 0 {
                "–".to_string()
            } else {
                format!("{:+.2} %", (ir(i) as f64 / base.max(1.0) - 1.0) * 100.0)
            }
        );
    }
    let _ = writeln!(s);
    let of = |name: &str| chosen.iter().position(|v| v.name == name).map(ir);
    if let Some(off) = of(ASSETS_OFF.name) {
        let _ = writeln!(
            s,
            "- **Asset inventory (issue 20):** (baseline − assets-off) / assets-off = {:+.2} % \
             (goal: within 5 %).",
            (base / (off as f64).max(1.0) - 1.0) * 100.0
        );
    }
    if let Some(intel) = of(INTEL.name) {
        let _ = writeln!(
            s,
            "- **{} intel indicators (issue 18):** (intel − baseline) / baseline = {:+.2} % \
             (goal: within 10 %). It includes loading the pack, a fixed cost that a small \
             input does not amortize.",
            args.intel_indicators,
            (intel as f64 / base.max(1.0) - 1.0) * 100.0
        );
    }
    s
}

fn render(
    args: &super::Args,
    chosen: &[&Variant],
    trials: &[Vec<Trial>],
    generated: &kuroko_analyzer::synth::Report,
    pcap_bytes: u64,
    load_start: &str,
    loads: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# `kuroko analyze` variants (same run)\n");
    let _ = writeln!(
        s,
        "Input: the bench's generated traffic, mix `{}` (`synth::Mix`), {:.2} GB pcap, {} packets \
         ({} TCP connections: {} HTTP, {} TLS, {} bulk, {} SSH/SMTP/Telnet; {} DNS). Every trial: a fresh data \
         directory, `kuroko import` and (intel) `kuroko intel import` untimed, then the \
         release `kuroko analyze` (analyzer from the store, session log, index, detections \
         with the asset inventory, content worker) under GNU time. {} rounds, every variant \
         once per round, the order rotated each round. CPU = user + sys seconds; \
         sessions/s = sessions written / CPU s.\n",
        args.mix.name(),
        pcap_bytes as f64 / 1e9,
        generated.packets,
        generated.tcp_connections,
        generated.http,
        generated.tls,
        generated.bulk,
        generated.banners,
        generated.dns,
        args.trials
    );
    let _ = writeln!(
        s,
        "| variant | what | CPU s per trial (run order in the round) | median CPU s | median wall s | sessions | sessions/s (CPU) | CPU vs baseline | throughput vs baseline |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let med = |t: &[Trial], f: fn(&Trial) -> f64| median(t.iter().map(f).collect());
    let base_cpu = med(&trials[0], |t| t.usage.cpu);
    for (v, t) in chosen.iter().zip(trials) {
        let cpu = med(t, |t| t.usage.cpu);
        let wall = med(t, |t| t.usage.wall);
        let sessions = t.first().map_or(0, |x| x.sessions);
        let each: Vec<String> = t
            .iter()
            .map(|x| format!("{:.1} ({})", x.usage.cpu, x.order + 1))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | **{:.1}** | {:.1} | {} | {:.0} | {} | {} |",
            v.name,
            v.what,
            each.join(", "),
            cpu,
            wall,
            sessions,
            sessions as f64 / cpu.max(1e-9),
            if v.name == BASELINE.name {
                "–".to_string()
            } else {
                format!(
                    "{:.3}x ({:+.1} %)",
                    cpu / base_cpu.max(1e-9),
                    (cpu / base_cpu.max(1e-9) - 1.0) * 100.0
                )
            },
            if v.name == BASELINE.name {
                "–".to_string()
            } else {
                format!("{:+.1} %", (base_cpu / cpu.max(1e-9) - 1.0) * 100.0)
            },
        );
    }
    let cpu_of = |name: &str| {
        chosen
            .iter()
            .position(|v| v.name == name)
            .map(|i| med(&trials[i], |t| t.usage.cpu))
    };
    let _ = writeln!(s);
    if let Some(off) = cpu_of(ASSETS_OFF.name) {
        let _ = writeln!(
            s,
            "- **Asset inventory (issue 20):** {base_cpu:.1} CPU s with it, {off:.1} without: it \
             costs {:+.1} % CPU, the whole analysis's throughput {:+.1} % (goal: within 5 %).",
            (base_cpu / off.max(1e-9) - 1.0) * 100.0,
            (off / base_cpu.max(1e-9) - 1.0) * 100.0
        );
    }
    if let Some(intel) = cpu_of(INTEL.name) {
        let _ = writeln!(
            s,
            "- **{} intel indicators (issue 18):** {intel:.1} CPU s with the pack, {base_cpu:.1} \
             without: {:+.1} % CPU, throughput {:+.1} % (goal: within 10 %).",
            args.intel_indicators,
            (intel / base_cpu.max(1e-9) - 1.0) * 100.0,
            (base_cpu / intel.max(1e-9) - 1.0) * 100.0
        );
    }
    let differing: Vec<String> = chosen
        .iter()
        .zip(trials)
        .filter(|(_, t)| t.iter().any(|x| x.sessions != t[0].sessions))
        .map(|(v, _)| v.name.to_string())
        .collect();
    if !differing.is_empty() {
        let _ = writeln!(
            s,
            "\nSessions written differ between trials of: {}.",
            differing.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nThroughput vs baseline: sessions per CPU second of the variant against the \
         baseline's (negative: slower). Inventory cost = baseline against `assets-off`; \
         intel cost = `intel` against baseline. Intel pack: {} indicators \
         (`kuroko_detect::intel::synthetic`, the generator of `bench intel`).",
        args.intel_indicators
    );
    let _ = writeln!(
        s,
        "\nLoad average (1/5/15 min) of the shared 2-core VM: {load_start} at the start; after each round: {}.",
        loads.join(" | ")
    );
    s
}
