//! `cargo xtask soak --minutes N`: the appliance's live path under a week's faults, compressed.
//!
//! The test site (tests/src/site.rs: real clients and servers in network namespaces, a
//! switch whose mirror port is `mir1`) makes mixed real-client traffic in a loop while
//! `kuroko capture` records the mirror port and `kuroko analyze --follow` analyzes it. A
//! chaos loop meanwhile flaps the capture link, deletes and re-creates the capture interface
//! (a re-plugged NIC), kill -9s the capture and the analyzer (and starts them again), and
//! fills the data file system for a while (a small tmpfs holds the data dir).
//!
//! What must hold at the end, and is checked:
//! - packets: for every capture run that ended cleanly (SIGINT), every frame the capture
//!   interface received while that run had it open is either stored or counted under a
//!   cause (`kuroko capture --json`'s summary against the kernel's rx counters of each
//!   incarnation of `mir1`). Runs ended by kill -9 lose what sat in their kernel ring by
//!   definition (the ring belongs to the killed process); they are reported, not checked.
//! - sessions: after a final `kuroko analyze`, every session exactly once in the session
//!   log (no duplicate ids, no duplicate flow keys), `search '*'` returns as many sessions as
//!   the log holds, and every finding's evidence names sessions of the log.
//!
//! CI runs it for 2 minutes (a stage of `cargo xtask test`); a long run is
//! `cargo xtask soak --minutes 30`. The figures go to stdout and `bench-out/soak.json`.

use anyhow::{Context, bail};
use kuroko_tests::kuroko::{binary, parse_jsonl, site_config};
use kuroko_tests::proc::{Server, run_in, sh_in, signal_pid, wait_until};
use kuroko_tests::scenarios::Scenario;
use kuroko_tests::site::{MIRROR_IFACE, Site};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// How long the chaos runs (traffic + faults); the checks come after.
    #[arg(long, default_value_t = 2)]
    pub minutes: u64,
    /// Seed of the chaos schedule (the same seed gives the same order of faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the work directory (data dir, logs) for a look afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// Scenarios the traffic loop cycles through: short ones, many protocols, real clients.
const TRAFFIC: &[Scenario] = &[
    Scenario::Telnet,
    Scenario::Office,
    Scenario::SshInternal,
    Scenario::OrdinaryMail,
    Scenario::FtpInternal,
    Scenario::OutsideBrowsing,
    Scenario::WinRm,
    Scenario::BadReputation,
    Scenario::ConnectNonStandard,
];

/// The data file system: big enough for the ring and a few minutes of sessions, small
/// enough to fill in a moment.
const DATA_FS_BYTES: u64 = 768 << 20;

/// The chaos actions, in the order a seeded schedule picks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    LinkFlap,
    Recreate,
    KillCapture,
    KillAnalyzer,
    FillDisk,
    RestartCapture,
}

const FAULTS: &[Fault] = &[
    Fault::LinkFlap,
    Fault::Recreate,
    Fault::KillAnalyzer,
    Fault::FillDisk,
    Fault::RestartCapture,
    Fault::LinkFlap,
    Fault::KillCapture,
    Fault::Recreate,
];

/// One `kuroko capture` process and what the kernel counted on its interface meanwhile.
struct CaptureRun {
    server: Server,
    log: PathBuf,
    /// Frames `mir1` received over the incarnations of `mir1` this run saw, up to the last
    /// reading.
    rx_closed: u64,
    /// rx counter of the current `mir1` when this run (or this incarnation) started.
    rx_base: u64,
    started: Instant,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let kuroko = binary()?;
    let mut site = Site::new()?;
    if args.keep {
        site.keep_work_dir();
    }
    let work = site.work_dir().to_path_buf();
    let data_mnt = work.join("datafs");
    std::fs::create_dir_all(&data_mnt)?;
    sh_in(
        "",
        &[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={DATA_FS_BYTES},mode=0700"),
            "kt-soak",
            path(&data_mnt)?,
        ],
        10,
    )
    .context("cannot mount the soak's data file system (tmpfs)")?;
    let _unmount = Unmount(data_mnt.clone());
    let data = data_mnt.join("data");
    let config = work.join("kuroko.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[storage]\nbudget = \"256MiB\"\nsegment_size = \"16MiB\"\n",
            site_config("Asia/Tokyo")
        ),
    )?;
    let ctx = Ctx {
        kuroko: kuroko.clone(),
        data: data.clone(),
        config: config.clone(),
        work: work.clone(),
        switch_ns: site.switch_ns().to_string(),
    };

    let quiet = AtomicBool::new(false);
    let idle = AtomicBool::new(true);
    let stop = AtomicBool::new(false);
    let scenario_runs = AtomicU64::new(0);
    let scenario_failures = AtomicU64::new(0);
    let mut report = Report::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.minutes * 60);

    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Traffic: real clients in a loop; pauses while `quiet` (at capture-run boundaries,
        // so the kernel's counters and the capture's agree on where a run begins and ends).
        scope.spawn(|| {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                if quiet.load(Ordering::SeqCst) {
                    idle.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                idle.store(false, Ordering::SeqCst);
                let s = TRAFFIC[i % TRAFFIC.len()];
                i += 1;
                if let Err(e) = s.run(&site) {
                    // The faults hit the mirror port only, so clients should not notice;
                    // a failure is counted and its first lines kept, not fatal.
                    if scenario_failures.fetch_add(1, Ordering::SeqCst) < 5 {
                        eprintln!("soak: scenario {} failed: {e:#}", s.name());
                    }
                }
                scenario_runs.fetch_add(1, Ordering::SeqCst);
            }
            idle.store(true, Ordering::SeqCst);
        });

        let result = (|| -> anyhow::Result<()> {
            let pause = || {
                quiet.store(true, Ordering::SeqCst);
                let _ = wait_until("traffic to pause", Duration::from_secs(120), || {
                    idle.load(Ordering::SeqCst)
                });
                std::thread::sleep(Duration::from_millis(300));
            };
            let resume = || quiet.store(false, Ordering::SeqCst);

            pause();
            let mut capture = Some(ctx.start_capture(report.capture_runs.len())?);
            let mut analyzer = ctx.start_analyzer(0)?;
            let mut analyzer_runs = 1usize;
            resume();
            let mut rng = args.seed.max(1);
            let mut n = 0usize;
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_secs(6));
                rng = xorshift(rng);
                let fault = FAULTS[(rng as usize + n) % FAULTS.len()];
                n += 1;
                let t = started.elapsed().as_secs_f64();
                eprintln!("soak: {t:>6.1} s  {fault:?}");
                report
                    .faults
                    .push(json!({"at_s": t, "fault": format!("{fault:?}")}));
                match fault {
                    Fault::LinkFlap => {
                        ctx.ip(&["link", "set", MIRROR_IFACE, "down"])?;
                        std::thread::sleep(Duration::from_secs(2));
                        ctx.ip(&["link", "set", MIRROR_IFACE, "up"])?;
                    }
                    Fault::Recreate => {
                        // Down first: after that the old incarnation receives nothing, so its
                        // counter is final.
                        ctx.ip(&["link", "set", MIRROR_IFACE, "down"])?;
                        if let Some(c) = capture.as_mut() {
                            let rx = ctx.rx_packets()?;
                            c.rx_closed += rx - c.rx_base;
                            c.rx_base = 0;
                        }
                        // Up at once, as a re-plugged NIC is: what it receives before the
                        // capture's next tick re-binds is counted as `missed_before_rebind`.
                        site.recreate_mirror()?;
                        ctx.ip(&["link", "set", MIRROR_IFACE, "up"])?;
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Fault::KillCapture => {
                        pause();
                        if let Some(mut c) = capture.take() {
                            signal_pid(c.server.pid(), libc::SIGKILL);
                            c.server.stop();
                            report.capture_runs.push(json!({"ended": "kill -9"}));
                        }
                        capture = Some(ctx.start_capture(report.capture_runs.len())?);
                        resume();
                    }
                    Fault::RestartCapture => {
                        pause();
                        if let Some(c) = capture.take() {
                            report.capture_runs.push(ctx.stop_capture(c)?);
                        }
                        capture = Some(ctx.start_capture(report.capture_runs.len())?);
                        resume();
                    }
                    Fault::KillAnalyzer => {
                        signal_pid(analyzer.pid(), libc::SIGKILL);
                        analyzer.stop();
                        analyzer = ctx.start_analyzer(analyzer_runs)?;
                        analyzer_runs += 1;
                    }
                    Fault::FillDisk => {
                        let filler = data_mnt.join("filler");
                        let _ = run_in(
                            "",
                            &[
                                "dd",
                                "if=/dev/zero",
                                &format!("of={}", path(&filler)?),
                                "bs=1M",
                            ],
                            60,
                        );
                        std::thread::sleep(Duration::from_secs(4));
                        std::fs::remove_file(&filler).context("cannot remove the filler")?;
                    }
                }
            }
            pause();
            stop.store(true, Ordering::SeqCst);
            if let Some(c) = capture.take() {
                report.capture_runs.push(ctx.stop_capture(c)?);
            }
            analyzer.stop_with(libc::SIGINT);
            report.analyzer_runs = analyzer_runs;
            Ok(())
        })();
        stop.store(true, Ordering::SeqCst);
        quiet.store(false, Ordering::SeqCst);
        result
    })?;
    report.scenario_runs = scenario_runs.load(Ordering::SeqCst);
    report.scenario_failures = scenario_failures.load(Ordering::SeqCst);

    // Analysis to the end, then the exactly-once checks.
    ctx.kuroko("analyze", &[])
        .context("the final `kuroko analyze`")?;
    let problems = ctx.check_sessions(&mut report)?;
    let mut problems = problems;
    for (i, r) in report.capture_runs.iter().enumerate() {
        if let Some(p) = r.get("problem").and_then(Value::as_str) {
            problems.push(format!("capture run {i}: {p}"));
        }
    }
    let summary = json!({
        "minutes": args.minutes,
        "seed": args.seed,
        "seconds": started.elapsed().as_secs_f64(),
        "scenario_runs": report.scenario_runs,
        "scenario_failures": report.scenario_failures,
        "analyzer_runs": report.analyzer_runs,
        "faults": report.faults,
        "capture_runs": report.capture_runs,
        "sessions": report.sessions,
        "problems": problems,
    });
    let out = crate::util::root().join("bench-out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("soak.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if !problems.is_empty() {
        bail!(
            "soak: {} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    eprintln!("soak: ok ({} s)", started.elapsed().as_secs());
    Ok(())
}

#[derive(Default)]
struct Report {
    faults: Vec<Value>,
    capture_runs: Vec<Value>,
    analyzer_runs: usize,
    scenario_runs: u64,
    scenario_failures: u64,
    sessions: Value,
}

struct Ctx {
    kuroko: PathBuf,
    data: PathBuf,
    config: PathBuf,
    work: PathBuf,
    switch_ns: String,
}

impl Ctx {
    fn ip(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut argv = vec!["ip"];
        argv.extend_from_slice(args);
        sh_in(&self.switch_ns, &argv, 10).map(drop)
    }

    /// The kernel's rx_packets of the current `mir1`.
    fn rx_packets(&self) -> anyhow::Result<u64> {
        let out = sh_in(
            &self.switch_ns,
            &[
                "cat",
                &format!("/sys/class/net/{MIRROR_IFACE}/statistics/rx_packets"),
            ],
            5,
        )?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("rx_packets is not a number")
    }

    fn kuroko(&self, sub: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut argv = vec![
            path(&self.kuroko)?,
            sub,
            "--data",
            path(&self.data)?,
            "--config",
            path(&self.config)?,
        ];
        argv.extend_from_slice(args);
        let out = run_in("", &argv, 600)?;
        if !out.status.success() {
            bail!(
                "`kuroko {sub}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn start_capture(&self, n: usize) -> anyhow::Result<CaptureRun> {
        let log = self.work.join(format!("capture-{n}.log"));
        let rx_base = self.rx_packets()?;
        let argv = [
            path(&self.kuroko)?,
            "capture",
            "--iface",
            MIRROR_IFACE,
            "--data",
            path(&self.data)?,
            "--config",
            path(&self.config)?,
            "--json",
        ];
        let mut server = Server::spawn("kuroko capture", &self.switch_ns, &argv, &log)?;
        let stats = self.data.join("stats");
        // Running = its sockets are open (the stats page says so); traffic is paused until then.
        wait_until("kuroko capture to run", Duration::from_secs(30), || {
            server.ensure_running().is_err() || capture_running(&self.kuroko, &self.data, &stats)
        })?;
        server.ensure_running()?;
        Ok(CaptureRun {
            server,
            log,
            rx_closed: 0,
            rx_base,
            started: Instant::now(),
        })
    }

    /// SIGINT, then the capture's own account against the kernel's.
    fn stop_capture(&self, mut c: CaptureRun) -> anyhow::Result<Value> {
        let rx = self.rx_packets()?;
        let offered = c.rx_closed + rx.saturating_sub(c.rx_base);
        let cpu = cpu_seconds(c.server.pid());
        let wall = c.started.elapsed().as_secs_f64();
        let status = c.server.stop_with(libc::SIGINT);
        let text = std::fs::read_to_string(&c.log).unwrap_or_default();
        let Some(summary) = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
        else {
            return Ok(json!({
                "ended": "SIGINT",
                "problem": format!("no JSON summary (exit {status:?}); log:\n{text}"),
            }));
        };
        let seen = summary["packets"].as_u64().unwrap_or(0);
        let drops = &summary["drops"];
        let lost = drops["total"].as_u64().unwrap_or(0);
        // Every frame the interface's incarnations received is stored or lost under a
        // cause (kernel ring, backpressure, unread at stop, missed before a re-bind, NIC).
        let accounted = seen + lost;
        let mut run = json!({
            "ended": "SIGINT",
            "exit_ok": status.is_some_and(|s| s.success()),
            "offered_rx": offered,
            "cpu_seconds": cpu,
            "wall_seconds": wall,
            "packets": seen,
            "drops": drops,
            "lost_total": lost,
            "summary": summary,
        });
        if accounted != offered {
            run["problem"] = format!(
                "the interface received {offered} frames; the capture accounts for {accounted} (packets {seen} + drops {lost}): {} unaccounted",
                offered as i64 - accounted as i64
            )
            .into();
        } else if !status.is_some_and(|s| s.success()) {
            run["problem"] = format!("exit status {status:?}").into();
        }
        Ok(run)
    }

    fn start_analyzer(&self, n: usize) -> anyhow::Result<Server> {
        let log = self.work.join(format!("analyzer-{n}.log"));
        let argv = [
            path(&self.kuroko)?,
            "analyze",
            "--follow",
            "--data",
            path(&self.data)?,
            "--config",
            path(&self.config)?,
        ];
        Server::spawn("kuroko analyze --follow", "", &argv, &log)
    }

    /// Every session exactly once in the log and in the index; evidence names logged
    /// sessions. Returns the problems found.
    fn check_sessions(&self, report: &mut Report) -> anyhow::Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut log = Vec::new();
        let dir = self.data.join("sessions");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("no session log at {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        for f in files {
            log.extend(parse_jsonl(&std::fs::read_to_string(&f)?)?);
        }
        let mut ids = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        let (mut dup_ids, mut dup_keys) = (0u64, 0u64);
        // Provisional records of sessions in progress (`open: true`) share the id of the
        // final record that replaces them: each session is its final record, once.
        let open_ids: std::collections::HashSet<String> = log
            .iter()
            .filter(|s| s["open"] == true)
            .map(|s| s["id"].to_string())
            .collect();
        log.retain(|s| s["open"] != true);
        let final_ids: std::collections::HashSet<String> =
            log.iter().map(|s| s["id"].to_string()).collect();
        let unfinished = open_ids.difference(&final_ids).count();
        if unfinished > 0 {
            problems.push(format!(
                "session log: {unfinished} provisional records without a final record after the final `kuroko analyze`"
            ));
        }
        for s in &log {
            if !ids.insert(s["id"].to_string()) {
                dup_ids += 1;
            }
            let key = format!(
                "{}|{}|{}|{}|{}",
                s["transport"],
                s["client"]["ip"],
                s["client"]["port"],
                s["server"]["ip"],
                s["start"]
            );
            if !keys.insert(key) {
                dup_keys += 1;
            }
        }
        if dup_ids > 0 || dup_keys > 0 {
            problems.push(format!(
                "session log: {dup_ids} duplicate ids, {dup_keys} duplicate flows in {} records",
                log.len()
            ));
        }
        let found = parse_jsonl(
            &self.kuroko("search", &["--format", "jsonl", "--limit", "1000000", "*"])?,
        )?;
        if found.len() != ids.len() {
            problems.push(format!(
                "search '*' returns {} sessions; the session log holds {}",
                found.len(),
                ids.len()
            ));
        }
        let findings = parse_jsonl(&self.kuroko("findings", &["--format", "jsonl"])?)?;
        let mut dangling = 0u64;
        for f in &findings {
            for e in f["evidence"].as_array().into_iter().flatten() {
                if !ids.contains(&e.to_string()) {
                    dangling += 1;
                }
            }
        }
        if dangling > 0 {
            problems.push(format!(
                "{dangling} finding evidence ids name no session of the log"
            ));
        }
        if log.is_empty() {
            problems.push("no session at all was recorded".into());
        }
        report.sessions = json!({
            "log": log.len(),
            "unique": ids.len(),
            "searchable": found.len(),
            "findings": findings.len(),
        });
        Ok(problems)
    }
}

/// Whether the stats page says a capture is running (its sockets are open).
fn capture_running(kuroko: &Path, data: &Path, stats: &Path) -> bool {
    if !stats.exists() {
        return false;
    }
    let Ok(out) = run_in(
        "",
        &[
            &kuroko.to_string_lossy(),
            "status",
            "--data",
            &data.to_string_lossy(),
            "--format",
            "json",
        ],
        20,
    ) else {
        return false;
    };
    serde_json::from_slice::<Value>(&out.stdout)
        .map(|v| v["capture"]["state"] == "running" && v["capture"]["live"] == true)
        .unwrap_or(false)
}

/// User + system CPU seconds of a process so far (`/proc/PID/stat`), if readable.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ, which /proc reports in, is 100 on every Linux architecture we run on.
    Some(ticks as f64 / 100.0)
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("path is not UTF-8")
}

/// Unmounts the soak's tmpfs when dropped (also on error).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}
