//! `cargo xtask bench analyze`: the analyzer's throughput per core and its memory, beside
//! tshark on the same pcap in the same run.
//!
//! 1. Generate a mixed-traffic pcap (`kuroko_analyzer::synth`: many TCP connections with
//!    handshakes, HTTP with bodies, TLS with real ClientHellos, DNS, bulk transfers).
//! 2. Import it into a fresh segment store and analyze it with `analyze_bench` (an example
//!    of `kuroko-analyzer`, release build): the same `driver::run` over the same
//!    `StoreSource` that `kuroko analyze` runs before the session-log consumers (index,
//!    detections), built without them so that the benchmark measures the analyzer alone
//!    and does not depend on the rest of the tree building. It runs under `/usr/bin/time`
//!    (exact user+sys CPU seconds and peak RSS) while its VmRSS is sampled every 200 ms.
//! 3. `tshark -r` extracting comparable fields (addresses, ports, HTTP method/host/URI,
//!    TLS SNI, DNS query) from a slice of the same pcap (the first N packets, cut with
//!    editcap); its CPU time is scaled to the whole pcap by bytes, and that is said in the
//!    report.
//! 4. Repeat analyze on a larger generated input to show that RSS stays flat; with
//!    `--scale 4,10`, traffic of those sizes is generated straight into a store (no pcap
//!    beside it: the disk is shared), analyzed with its RSS sampled, and deleted.
//!
//! Before the analyzer, `analyze_bench scan` reads the store twice with no analysis: the
//! read path's own cost (O_DIRECT reads, so the page cache plays no part).
//!
//! Runs of different sizes are compared per GB of *work* as well as per GB of input: flows,
//! sessions, reconstructed files stored and evicted, user and system CPU apart (the system
//! part is mostly the files store: per object one file, created or reused, its metadata a
//! record in one append-only log (`kuroko_model::objects`); one syncfs per checkpoint, whose page writeback runs in the kernel's flusher threads and
//! so is not in the analyzer's CPU time). A finished
//! run's data directory is not deleted before the next run: its files are emptied (disk
//! space freed, inodes kept) and the directory is deleted at the end. On an ext4 without a
//! journal (the dev VM), creating a file scans past every inode of its group deleted in the
//! last 60–360 s (`find_inode_bit` → `recently_deleted`), so deleting the ~13k files of one
//! run right before the next made the next run's file creations, and so its CPU per GB,
//! depend on the order of the runs (measured: 13–56 % of a run's CPU in that scan).
//!
//! `--files-baseline BIN` runs the file-heavy input through another build's `analyze_bench`
//! too (e.g. one from before a change of the files store), so before/after are one run.
//!
//! `--mix mixed|http-files|small-sessions` chooses the traffic of the main and large
//! inputs and of `--variants` (`synth::Mix`); `small-sessions` is the mix where per-session
//! work (records, index, detections, inventory, intel lookups) dominates.
//!
//! `--variants assets,intel` measures instead what parts of the whole `kuroko analyze`
//! cost (see [`variants`]): the release `kuroko` binary, analyzer + index + detections +
//! asset inventory, on the same mixed pcap, trials alternating between the variants.
//!
//! Results go to `bench-out/analyze.md`. Nothing here asserts on time.

use crate::util::{cargo, root, run as run_cmd};
use anyhow::{Context, bail, ensure};
use kuroko_analyzer::synth::Mix;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Size of the main input (GB, 10^9 bytes of pcap).
    #[arg(long, default_value_t = 1.0)]
    pub gb: f64,
    /// Size of the larger input used to show flat RSS (GB); 0 to skip.
    #[arg(long, default_value_t = 4.0)]
    pub large_gb: f64,
    /// Flat-RSS runs: sizes of mixed traffic (GB, comma-separated, e.g. `4,10`) generated
    /// straight into a fresh store (no pcap on disk), analyzed, measured, deleted one after
    /// the other. Off by default (10 GB needs about 11 GB of free disk for a while).
    #[arg(long, value_delimiter = ',')]
    pub scale: Vec<f64>,
    /// Size of the file-heavy HTTP input (GB; 0 to skip): every connection one download of
    /// a 0.2–60 kB body (`synth::Mix::HttpFiles`), so every session stores an object;
    /// tshark reads the whole of it.
    #[arg(long, default_value_t = 0.3)]
    pub files_gb: f64,
    /// An `analyze_bench` binary built from another commit (e.g. before a change of the
    /// files store): the file-heavy input is also imported and analyzed by it, in the same
    /// run, and reported beside the current build.
    #[arg(long)]
    pub files_baseline: Option<PathBuf>,
    /// Packets of the pcap given to tshark (its time is scaled to the whole input).
    #[arg(long, default_value_t = 300_000)]
    pub tshark_packets: u64,
    /// Work directory (pcaps and data directories; removed afterwards unless --keep).
    #[arg(long, default_value = "/tmp/kuroko-bench-analyze")]
    pub work: PathBuf,
    #[arg(long)]
    pub keep: bool,
    /// Compare whole `kuroko analyze` runs instead (and only that): `assets` (the asset
    /// inventory on vs `[assets] enabled = false`), `intel` (no intel vs a pack of
    /// `--intel-indicators` indicators). Comma-separated; the pcap is `--gb` of the mix.
    #[arg(long, value_delimiter = ',')]
    pub variants: Vec<String>,
    /// Trials per variant (alternating, the order rotated every round).
    #[arg(long, default_value_t = 3)]
    pub trials: usize,
    /// Indicators of the `intel` variant's pack (`kuroko_detect::intel::synthetic`).
    #[arg(long, default_value_t = 1_000_000)]
    pub intel_indicators: u64,
    /// Traffic of the main (and large) input and of `--variants`: `mixed` (bulk-heavy:
    /// HTTP bodies up to 120 kB, TLS, bulk transfers, DNS), `http-files` (every session a
    /// 0.2–60 kB download) or `small-sessions` (many short HTTP/TLS/SSH/SMTP/Telnet
    /// sessions and DNS queries between thousands of addresses: per-session work
    /// dominates). See `kuroko_analyzer::synth::Mix`.
    #[arg(long, default_value = "mixed")]
    pub mix: Mix,
    /// `--variants`: count instructions instead of timing: every variant's `kuroko
    /// analyze` once under `valgrind --tool=callgrind --trace-children=yes` (the content
    /// worker included), independent of the machine's load. The callgrind files stay in
    /// the work directory with `--keep` (for `callgrind_annotate`).
    #[arg(long)]
    pub callgrind: bool,
    /// `--variants`: this `kuroko` binary instead of building the release one (e.g. a
    /// release build of another commit).
    #[arg(long)]
    pub kuroko: Option<PathBuf>,
}

/// What `/usr/bin/time -f "%e %U %S %M"` reports.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    wall: f64,
    /// user + sys
    cpu: f64,
    user: f64,
    sys: f64,
    max_rss_kb: u64,
}

#[derive(Debug, Default)]
struct AnalyzeRun {
    input_bytes: u64,
    packets: u64,
    bytes: u64,
    sessions: u64,
    /// Work done, from the analyzer's counters: flows created, reconstructed files stored
    /// and evicted for the files budget.
    flows: u64,
    files_stored: u64,
    files_evicted: u64,
    usage: Usage,
    /// The same analysis reading the pcap file instead of the store.
    pcap_usage: Usage,
    /// The store's read path alone (`analyze_bench scan`: reads, block checksums,
    /// records), twice.
    scan_cold: Usage,
    scan_warm: Usage,
    /// (seconds since start, VmRSS KiB) samples of the analyzer process.
    rss: Vec<(f64, u64)>,
    /// `--files-baseline`: that binary's analysis of the same input, and its objects stored.
    baseline: Option<(Usage, u64)>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.variants.is_empty() {
        return variants::run(&args);
    }
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-analyzer",
        "--example",
        "analyze_bench",
    ]))?;
    let kuroko = crate::util::target_dir().join("release/examples/analyze_bench");
    std::fs::create_dir_all(&args.work)?;
    let out_dir = root().join("bench-out");
    std::fs::create_dir_all(&out_dir)?;

    let load_start = loadavg();
    let main = analyze_generated(&kuroko, &args.work, "main", args.gb, 1, args.mix, None)?;
    let tshark = tshark_run(
        &args.work.join("main.pcap"),
        &args.work,
        args.tshark_packets,
    )?;
    let _ = std::fs::remove_file(args.work.join("main.pcap"));
    let large = if args.large_gb > 0.0 {
        let r = analyze_generated(
            &kuroko,
            &args.work,
            "large",
            args.large_gb,
            2,
            args.mix,
            None,
        )?;
        let _ = std::fs::remove_file(args.work.join("large.pcap"));
        Some(r)
    } else {
        None
    };

    let files = if args.files_gb > 0.0 {
        let r = analyze_generated(
            &kuroko,
            &args.work,
            "files",
            args.files_gb,
            3,
            Mix::HttpFiles,
            args.files_baseline.as_deref(),
        )?;
        // tshark reads the whole file-heavy input (no slice, no scaling).
        let t = tshark_run(&args.work.join("files.pcap"), &args.work, u64::MAX)?;
        let _ = std::fs::remove_file(args.work.join("files.pcap"));
        Some((r, t))
    } else {
        None
    };

    let mut scaled = Vec::new();
    for (i, &gb) in args.scale.iter().enumerate() {
        scaled.push(analyze_scaled(&kuroko, &args.work, gb, 100 + i as u64)?);
    }

    let mut report = render(&args, &main, &tshark, large.as_ref());
    if let Some((r, t)) = &files {
        report.push_str(&render_files(r, t));
    }
    if !scaled.is_empty() {
        report.push_str(&render_scaled(&main, &scaled));
    }
    let _ = writeln!(
        report,
        "\nLoad average (1/5/15 min) of the 2-core VM: {load_start} at the start, {} at the end.",
        loadavg()
    );
    std::fs::write(out_dir.join("analyze.md"), &report)?;
    println!("{report}");
    let _ = std::fs::remove_dir_all(args.work.join("retired"));
    if !args.keep {
        let _ = std::fs::remove_dir_all(&args.work);
    }
    Ok(())
}

fn analyze_generated(
    kuroko: &Path,
    work: &Path,
    name: &str,
    gb: f64,
    seed: u64,
    mix: Mix,
    baseline: Option<&Path>,
) -> anyhow::Result<AnalyzeRun> {
    let pcap = work.join(format!("{name}.pcap"));
    let target = (gb * 1e9) as u64;
    eprintln!(
        "generating {} ({:.1} GB of {} traffic)…",
        pcap.display(),
        gb,
        mix.name()
    );
    let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&pcap)?);
    let params = kuroko_analyzer::synth::Params {
        target_bytes: target,
        concurrency: 512,
        seed,
        mix,
        ..Default::default()
    };
    let generated = kuroko_analyzer::synth::generate(f, &params).context("generating the pcap")?;
    let input_bytes = std::fs::metadata(&pcap)?.len();
    eprintln!(
        "  {} packets, {} TCP connections ({} HTTP, {} TLS, {} bulk, {} SSH/SMTP/Telnet), {} DNS",
        generated.packets,
        generated.tcp_connections,
        generated.http,
        generated.tls,
        generated.bulk,
        generated.banners,
        generated.dns
    );
    let data = work.join(format!("{name}-data"));
    let _ = std::fs::remove_dir_all(&data);
    let budget = (input_bytes as f64 * 1.3) as u64 + (256 << 20);
    let d = data.to_str().context("utf-8")?;
    let status = Command::new(kuroko)
        .args([
            "import",
            pcap.to_str().context("utf-8")?,
            d,
            &budget.to_string(),
        ])
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "import failed ({status})");
    eprintln!("reading the store (read path alone)…");
    let (scan_cold, _) = timed(Command::new(kuroko).args(["scan", d]), false)?;
    let (scan_warm, _) = timed(Command::new(kuroko).args(["scan", d]), false)?;
    eprintln!("analyzing…");
    let (usage, rss) = timed(Command::new(kuroko).args(["analyze", d]), true)?;
    // The same analysis reading the pcap directly: the analyzer without the store's read
    // path (block checksums, memory maps), to show where the time goes.
    let data2 = work.join(format!("{name}-data-pcap"));
    let _ = std::fs::remove_dir_all(&data2);
    let (pcap_usage, _) = timed(
        Command::new(kuroko).args([
            "analyze-pcap",
            pcap.to_str().context("utf-8")?,
            data2.to_str().context("utf-8")?,
        ]),
        false,
    )?;
    retire(&data2, work)?;
    let baseline = match baseline {
        Some(bin) => Some(baseline_run(bin, &pcap, work, name, budget)?),
        None => None,
    };
    let cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("analyzer/checkpoint"))?)?;
    let mut sessions = 0;
    for e in std::fs::read_dir(data.join("sessions"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            sessions += std::fs::read(&p)?.iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    let run = AnalyzeRun {
        input_bytes,
        packets: cp["counters"]["packets"].as_u64().unwrap_or(0),
        bytes: cp["counters"]["bytes"].as_u64().unwrap_or(0),
        sessions,
        flows: cp["counters"]["flows_created"].as_u64().unwrap_or(0),
        files_stored: cp["counters"]["files_stored"].as_u64().unwrap_or(0),
        files_evicted: cp["counters"]["files_evicted"].as_u64().unwrap_or(0),
        usage,
        pcap_usage,
        scan_cold,
        scan_warm,
        rss,
        baseline,
    };
    retire(&data, work)?;
    Ok(run)
}

/// `--files-baseline`: the other binary imports the same pcap into its own store and
/// analyzes it; its CPU and objects stored.
fn baseline_run(
    bin: &Path,
    pcap: &Path,
    work: &Path,
    name: &str,
    budget: u64,
) -> anyhow::Result<(Usage, u64)> {
    let data = work.join(format!("{name}-data-baseline"));
    let _ = std::fs::remove_dir_all(&data);
    let d = data.to_str().context("utf-8")?;
    let status = Command::new(bin)
        .args(["import", pcap.to_str().context("utf-8")?, d])
        .arg(budget.to_string())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    ensure!(status.success(), "baseline import failed ({status})");
    eprintln!("analyzing with the baseline {}…", bin.display());
    let (usage, _) = timed(Command::new(bin).args(["analyze", d]), false)?;
    let cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("analyzer/checkpoint"))?)?;
    let stored = cp["counters"]["files_stored"].as_u64().unwrap_or(0);
    retire(&data, work)?;
    Ok((usage, stored))
}

/// Generates `gb` of mixed traffic straight into a fresh store, analyzes it with VmRSS
/// sampled, and deletes the store.
fn analyze_scaled(kuroko: &Path, work: &Path, gb: f64, seed: u64) -> anyhow::Result<AnalyzeRun> {
    let data = work.join(format!("scale-{gb}G-data"));
    let _ = std::fs::remove_dir_all(&data);
    // `synth` finishes its open conversations after reaching the target (about 0.5 GB
    // more); the budget only caps, slots are created as they fill.
    let target = (gb * 1e9) as u64;
    let budget = target / 10 * 13 + (1 << 30);
    let need = target + target / 10 + (1 << 30);
    let free = free_bytes(work)?;
    ensure!(
        free > need + (2 << 30),
        "--scale {gb}: {:.1} GB free on {}, {:.1} GB needed (plus 2 GB left for others)",
        free as f64 / 1e9,
        work.display(),
        need as f64 / 1e9
    );
    let d = data.to_str().context("utf-8")?;
    eprintln!("scale run: generating {gb} GB of mixed traffic into {d}…");
    let status = Command::new(kuroko)
        .args([
            "synth-store",
            d,
            &target.to_string(),
            &seed.to_string(),
            &budget.to_string(),
        ])
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "synth-store failed ({status})");
    eprintln!("scale run: analyzing…");
    let result = (|| -> anyhow::Result<AnalyzeRun> {
        let input_bytes = dir_bytes(&data.join("segments"))?;
        let (usage, rss) = timed(Command::new(kuroko).args(["analyze", d]), true)?;
        let cp: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.join("analyzer/checkpoint"))?)?;
        Ok(AnalyzeRun {
            input_bytes,
            packets: cp["counters"]["packets"].as_u64().unwrap_or(0),
            bytes: cp["counters"]["bytes"].as_u64().unwrap_or(0),
            sessions: cp["counters"]["sessions_emitted"].as_u64().unwrap_or(0),
            flows: cp["counters"]["flows_created"].as_u64().unwrap_or(0),
            files_stored: cp["counters"]["files_stored"].as_u64().unwrap_or(0),
            files_evicted: cp["counters"]["files_evicted"].as_u64().unwrap_or(0),
            usage,
            pcap_usage: Usage::default(),
            scan_cold: Usage::default(),
            scan_warm: Usage::default(),
            rss,
            baseline: None,
        })
    })();
    retire(&data, work)?;
    result
}

/// Frees a finished run's disk space without deleting its many small files yet (see the
/// module docs): segments are deleted (a few large files), every other file is emptied,
/// and the directory moves to `WORK/retired/`, deleted at the end of the bench.
fn retire(data: &Path, work: &Path) -> anyhow::Result<()> {
    fn empty(dir: &Path) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                if p.file_name().is_some_and(|n| n == "segments") {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    empty(&p)?;
                }
            } else {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)?
                    .set_len(0)?;
            }
        }
        Ok(())
    }
    if !data.exists() {
        return Ok(());
    }
    empty(data).with_context(|| format!("emptying {}", data.display()))?;
    let retired = work.join("retired");
    std::fs::create_dir_all(&retired)?;
    let name = data
        .file_name()
        .context("data dir name")?
        .to_string_lossy()
        .into_owned();
    let mut to = retired.join(&name);
    let mut n = 0;
    while to.exists() {
        n += 1;
        to = retired.join(format!("{name}-{n}"));
    }
    std::fs::rename(data, &to)?;
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn free_bytes(path: &Path) -> anyhow::Result<u64> {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .context("cannot run df")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .context("unexpected df output")
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        n += e?.metadata()?.len();
    }
    Ok(n)
}

fn render_scaled(main: &AnalyzeRun, runs: &[AnalyzeRun]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## Flat RSS (`--scale`)\n\nMixed traffic generated straight into a fresh store \
         (`analyze_bench synth-store`, no pcap on disk), analyzed by the same `driver::run`, \
         then deleted. Peak RSS is GNU time's maximum resident set (VmHWM); it includes \
         the store reader's 64 MiB segment buffer. Memory is bounded by the flows open at once, \
         which includes closed TCP flows lingering 5 s of capture time and unanswered UDP flows \
         (60 s): it grows until the input spans those windows, then stays flat.\n"
    );
    let _ = writeln!(
        s,
        "| packets analyzed | bytes analyzed | CPU s (user + sys) | Gbps/core | user s/GB | sys s/GB | flows/GB | sessions/GB | files stored/GB | files evicted/GB | peak RSS | VmRSS after the first second |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in std::iter::once(main).chain(runs) {
        let after: Vec<u64> = r
            .rss
            .iter()
            .filter(|(t, _)| *t > 1.0)
            .map(|x| x.1)
            .collect();
        let gb = (r.bytes as f64 / 1e9).max(1e-9);
        let _ = writeln!(
            s,
            "| {} | {:.2} GB | {:.1} ({:.1} + {:.1}) | {:.2} | {:.3} | {:.3} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} MiB | {:.0}–{:.0} MiB ({} samples) |",
            r.packets,
            r.bytes as f64 / 1e9,
            r.usage.cpu,
            r.usage.user,
            r.usage.sys,
            r.bytes as f64 * 8.0 / r.usage.cpu.max(1e-9) / 1e9,
            r.usage.user / gb,
            r.usage.sys / gb,
            r.flows as f64 / gb,
            r.sessions as f64 / gb,
            r.files_stored as f64 / gb,
            r.files_evicted as f64 / gb,
            r.usage.max_rss_kb as f64 / 1024.0,
            after.iter().min().copied().unwrap_or(0) as f64 / 1024.0,
            after.iter().max().copied().unwrap_or(0) as f64 / 1024.0,
            after.len()
        );
    }
    let _ = writeln!(
        s,
        "\nCompare sizes on the work per GB first: the same work per GB at a lower Gbps/core is \
         a slowdown; more work per GB is the workload. `synth` keeps the mix per GB constant; \
         a run ends by finishing its open conversations one after the other (about 0.5 GB, a \
         larger share of a small input). With the files budget full (512 MiB: from about \
         4.4 GB on) objects are evicted and their files reused for new ones (`files.rs`). \
         The system CPU is mostly the files store (a file and its metadata per object, one \
         syncfs per checkpoint) and varies with the disk and other work on the VM far more than the user \
         CPU does."
    );
    s
}

/// Runs `cmd` under `/usr/bin/time`, optionally sampling the child's VmRSS.
fn timed(cmd: &mut Command, sample: bool) -> anyhow::Result<(Usage, Vec<(f64, u64)>)> {
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let tf = std::env::temp_dir().join(format!("kuroko-bench-time-{}", std::process::id()));
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(&tf)
        .arg(prog)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run /usr/bin/time (GNU time)")?;
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{:?} failed ({status})", cmd.get_program());
            }
            break;
        }
        if sample
            && let Some(pid) = first_child(child.id())
            && let Some(kb) = vm_rss_kb(pid)
        {
            samples.push((start.elapsed().as_secs_f64(), kb));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(&tf)?;
    let _ = std::fs::remove_file(&tf);
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    ensure!(f.len() >= 4, "unexpected /usr/bin/time output: {text}");
    Ok((
        Usage {
            wall: f[0],
            cpu: f[1] + f[2],
            user: f[1],
            sys: f[2],
            max_rss_kb: f[3] as u64,
        },
        samples,
    ))
}

fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[derive(Debug, Default)]
struct TsharkRun {
    packets: u64,
    slice_bytes: u64,
    usage: Usage,
}

const TSHARK_FIELDS: [&str; 11] = [
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.dstport",
    "http.request.method",
    "http.host",
    "http.request.uri",
    "tls.handshake.extensions_server_name",
    "dns.qry.name",
];

fn tshark_run(pcap: &Path, work: &Path, packets: u64) -> anyhow::Result<TsharkRun> {
    if packets == u64::MAX {
        let mut cmd = Command::new("tshark");
        cmd.args(["-r", pcap.to_str().context("utf-8")?, "-n", "-T", "fields"]);
        for f in TSHARK_FIELDS {
            cmd.args(["-e", f]);
        }
        eprintln!("tshark on the whole of {}…", pcap.display());
        let (usage, _) = timed(&mut cmd, false)?;
        return Ok(TsharkRun {
            packets: 0,
            slice_bytes: std::fs::metadata(pcap)?.len(),
            usage,
        });
    }
    let slice = work.join("tshark-slice.pcap");
    let status = Command::new("editcap")
        .args([
            "-r",
            pcap.to_str().context("utf-8")?,
            slice.to_str().context("utf-8")?,
            &format!("1-{packets}"),
        ])
        .status()
        .context("cannot run editcap")?;
    ensure!(status.success(), "editcap failed");
    let slice_bytes = std::fs::metadata(&slice)?.len();
    eprintln!(
        "tshark on the first {packets} packets ({:.0} MB)…",
        slice_bytes as f64 / 1e6
    );
    let mut cmd = Command::new("tshark");
    cmd.args(["-r", slice.to_str().context("utf-8")?, "-n", "-T", "fields"]);
    for f in TSHARK_FIELDS {
        cmd.args(["-e", f]);
    }
    // Its output (one line per packet) goes to /dev/null, as ours goes to the session log.
    let (usage, _) = timed(&mut cmd, false)?;
    let _ = std::fs::remove_file(&slice);
    Ok(TsharkRun {
        packets,
        slice_bytes,
        usage,
    })
}

fn render(
    args: &Args,
    main: &AnalyzeRun,
    tshark: &TsharkRun,
    large: Option<&AnalyzeRun>,
) -> String {
    let mut s = String::new();
    let gbps = |bytes: u64, secs: f64| bytes as f64 * 8.0 / secs.max(1e-9) / 1e9;
    let kuroko_gbps = gbps(main.bytes, main.usage.cpu);
    let kuroko_pps = main.packets as f64 / main.usage.cpu.max(1e-9);
    let tshark_gbps = gbps(tshark.slice_bytes, tshark.usage.cpu);
    let tshark_pps = tshark.packets as f64 / tshark.usage.cpu.max(1e-9);
    let _ = writeln!(s, "# Analyzer benchmark\n");
    let _ = writeln!(
        s,
        "Input: generated traffic, mix `{}` (`kuroko_analyzer::synth`: TCP connections with handshakes, HTTP with \
         bodies, TLS with real ClientHellos, bulk transfers, DNS over UDP; `small-sessions`: many \
         short sessions between thousands of addresses), {:.2} GB pcap, {} packets; \
         imported into a segment store (kuroko-ring) and analyzed from it by `driver::run`, the code \
         `kuroko analyze` runs before the index and detections (release build of the `analyze_bench` \
         example, one thread, session log and reconstructed files written to disk). \
         CPU = user + sys seconds from GNU time; per-core rates divide by CPU seconds.\n",
        args.mix.name(),
        main.input_bytes as f64 / 1e9,
        main.packets
    );
    let _ = writeln!(
        s,
        "| | packets | bytes | CPU s | wall s | Gbps/core | packets/s/core | peak RSS |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| kuroko analyzer | {} | {:.2} GB | {:.1} | {:.1} | **{:.2}** | **{:.0}** | {:.0} MiB |",
        main.packets,
        main.bytes as f64 / 1e9,
        main.usage.cpu,
        main.usage.wall,
        kuroko_gbps,
        kuroko_pps,
        main.usage.max_rss_kb as f64 / 1024.0
    );
    let _ = writeln!(
        s,
        "| same analyzer reading the pcap file (no store) | {} | {:.2} GB | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} MiB |",
        main.packets,
        main.bytes as f64 / 1e9,
        main.pcap_usage.cpu,
        main.pcap_usage.wall,
        gbps(main.bytes, main.pcap_usage.cpu),
        main.packets as f64 / main.pcap_usage.cpu.max(1e-9),
        main.pcap_usage.max_rss_kb as f64 / 1024.0
    );
    let _ = writeln!(
        s,
        "| tshark -T fields ({} fields), first {} packets | {} | {:.2} GB | {:.1} | {:.1} | {:.3} | {:.0} | {:.0} MiB |",
        TSHARK_FIELDS.len(),
        tshark.packets,
        tshark.packets,
        tshark.slice_bytes as f64 / 1e9,
        tshark.usage.cpu,
        tshark.usage.wall,
        tshark_gbps,
        tshark_pps,
        tshark.usage.max_rss_kb as f64 / 1024.0
    );
    let _ = writeln!(
        s,
        "\nRatio (per core, bytes): **{:.1}x** tshark. tshark was run on a slice (the first {} packets) and its \
         rate is assumed to hold for the whole input; its whole-input time would be about {:.0} s of CPU.\n",
        kuroko_gbps / tshark_gbps.max(1e-12),
        tshark.packets,
        tshark.usage.cpu * main.bytes as f64 / tshark.slice_bytes.max(1) as f64
    );
    for (what, u) in [
        ("first read after the import", &main.scan_cold),
        ("again", &main.scan_warm),
    ] {
        let _ = writeln!(
            s,
            "| store read path alone (`scan`: O_DIRECT reads into one reused buffer, per-block CRC32C, records), {what} | {} | {:.2} GB | {:.2} | {:.1} | {:.2} | | |",
            main.packets,
            main.bytes as f64 / 1e9,
            u.cpu,
            u.wall,
            gbps(main.bytes, u.cpu),
        );
    }
    let _ = writeln!(
        s,
        "\nThe store's read path costs {:.0} % of the analyzer's CPU here. It reads each segment with \
         O_DIRECT into one reused aligned buffer: with memory maps, the segments (written with O_DIRECT, \
         so never in the page cache) were faulted in from disk page by page, and a profile charged that \
         to the checksum loop, the first code to touch each page (0.7–1.3 s of CPU per 1.57 GB cold, \
         against 0.22 s now; the `crc32c` crate runs its SSE4.2 path). Reading the pcap file directly \
         instead of the store (whole file in memory, a development path), the analyzer runs at {:.1}x \
         tshark per core.\n",
        100.0 * main.scan_warm.cpu / main.usage.cpu.max(1e-9),
        gbps(main.bytes, main.pcap_usage.cpu) / tshark_gbps.max(1e-12),
    );
    let _ = writeln!(s, "Sessions written: {}.\n", main.sessions);
    let _ = writeln!(s, "## Memory\n");
    let rss_line = |r: &AnalyzeRun| {
        let after_warmup: Vec<u64> = r
            .rss
            .iter()
            .filter(|(t, _)| *t > 1.0)
            .map(|x| x.1)
            .collect();
        let (lo, hi) = (
            after_warmup.iter().min().copied().unwrap_or(0),
            after_warmup.iter().max().copied().unwrap_or(0),
        );
        format!(
            "| {:.2} GB | {} | {:.0} MiB | {:.0}–{:.0} MiB ({} samples after the first second) |",
            r.input_bytes as f64 / 1e9,
            r.packets,
            r.usage.max_rss_kb as f64 / 1024.0,
            lo as f64 / 1024.0,
            hi as f64 / 1024.0,
            after_warmup.len()
        )
    };
    let _ = writeln!(
        s,
        "| input | packets | peak RSS (VmHWM) | VmRSS over the run |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    let _ = writeln!(s, "{}", rss_line(main));
    if let Some(l) = large {
        let _ = writeln!(s, "{}", rss_line(l));
        let _ = writeln!(
            s,
            "\nLarger input: {:.2} Gbps/core, {:.0} packets/s/core, peak RSS {:.0} MiB vs {:.0} MiB at {:.1} GB.",
            gbps(l.bytes, l.usage.cpu),
            l.packets as f64 / l.usage.cpu.max(1e-9),
            l.usage.max_rss_kb as f64 / 1024.0,
            main.usage.max_rss_kb as f64 / 1024.0,
            main.input_bytes as f64 / 1e9
        );
    }
    let _ = writeln!(
        s,
        "\nArgs: --gb {} --large-gb {} --tshark-packets {} --scale {:?}. Machine: shared 2-core VM (other work may run beside).",
        args.gb, args.large_gb, args.tshark_packets, args.scale
    );
    s
}

/// The file-heavy HTTP section: the analyzer and tshark on the same whole file.
fn render_files(r: &AnalyzeRun, t: &TsharkRun) -> String {
    let mut s = String::new();
    let gbps = |bytes: u64, secs: f64| bytes as f64 * 8.0 / secs.max(1e-9) / 1e9;
    let _ = writeln!(
        s,
        "\n## File-heavy HTTP (`synth::Mix::HttpFiles`)\n\n{:.2} GB pcap, {} packets, {} sessions, every one an HTTP download of a 0.2–60 kB body: {} objects reconstructed, hashed (SHA-256) and stored in `files/`. tshark reads the whole file (no slice).\n",
        r.input_bytes as f64 / 1e9,
        r.packets,
        r.sessions,
        r.files_stored
    );
    let _ = writeln!(
        s,
        "| | CPU s | user s | sys s | wall s | Gbps/core | µs CPU / object stored | peak RSS |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for (what, u, bytes) in [
        ("kuroko analyzer (from the store)", &r.usage, r.bytes),
        (
            "same analyzer reading the pcap file",
            &r.pcap_usage,
            r.bytes,
        ),
        (
            "tshark -T fields (11 fields), whole file",
            &t.usage,
            t.slice_bytes,
        ),
    ] {
        let _ = writeln!(
            s,
            "| {what} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {} | {:.0} MiB |",
            u.cpu,
            u.user,
            u.sys,
            u.wall,
            gbps(bytes, u.cpu),
            if what.starts_with("tshark") {
                "–".to_string()
            } else {
                format!("{:.1}", u.cpu * 1e6 / r.files_stored.max(1) as f64)
            },
            u.max_rss_kb as f64 / 1024.0
        );
    }
    if let Some((u, stored)) = &r.baseline {
        let _ = writeln!(
            s,
            "| baseline (`--files-baseline`, from the store; {stored} objects stored) | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.1} | {:.0} MiB |",
            u.cpu,
            u.user,
            u.sys,
            u.wall,
            gbps(r.bytes, u.cpu),
            u.cpu * 1e6 / (*stored).max(1) as f64,
            u.max_rss_kb as f64 / 1024.0
        );
    }
    let _ = writeln!(
        s,
        "\nRatio (CPU, same file): **{:.1}x** tshark.",
        t.usage.cpu / r.usage.cpu.max(1e-9)
    );
    if let Some((u, _)) = &r.baseline {
        let _ = writeln!(
            s,
            "Baseline: {:.1}x tshark; this build takes {:.2}x the baseline's CPU.",
            t.usage.cpu / u.cpu.max(1e-9),
            r.usage.cpu / u.cpu.max(1e-9)
        );
    }
    s
}

use std::fmt::Write as _;

mod variants;
