//! `cargo xtask bench live`: time-to-query on the test site's mirror port.
//!
//! The test site (tests/src/site.rs) runs a small Telnet-like server on the file server and
//! a client on the PC that logs in (IAC negotiation, user name, password, "Login
//! incorrect", close) every `--interval` seconds for `--seconds`. `kuroko capture` records
//! the mirror port and `kuroko analyze --follow` analyzes it, as in `kuroko run`. For every
//! session, the seconds from its last packet on the wire (the record's `end`, capture time)
//! until (a) `kuroko search` returns it, (b) the `telnet_use` finding counts it, (c) its
//! alert is in the local alert log, (d) its syslog message reached the bench's UDP
//! collector, (e) its alert mail reached the bench's SMTP relay (the sink's `250 queued`:
//! mail queued at the relay, i.e. sent); p50 / p99 / max. (d) and (e) are timed where the
//! bytes arrive ([`super::alert_sinks`], threads of the bench on 127.0.0.1 that every
//! variant's `[alerts] syslog` and `smtp_relay` point at), so they are not late by a poll.
//! The product queues a mail in memory by the same call that writes (c) and sends it when
//! that catch-up ends; only mail a relay refused waits in `alerts/outbox.jsonl`, so (c) is
//! also "mail queued" on the appliance. The bench sets `[alerts] deliveries_per_minute`
//! high so that no session is summarised instead of sent (not for `current`).
//!
//! kuroko is a release build (`--debug`: the debug build; `--kuroko-bin PATH`: that
//! binary). Each variant runs on a fresh data directory, one after the other in the same run:
//! `live` (the defaults) and `reference` (the cadence and priority before issue 15, set
//! through the config: `close_linger = "5s"`, `publish_interval = "5s"`, `consumer_wake =
//! false`, `cpu_priority = "idle"`);
//! `current` runs without any of these keys (for a kuroko that does not know them).
//!
//! Then, unless `--open-seconds 0`, one SSH-like session held open that long: seconds from
//! its first packet until it is searchable as `open:true`, until its `ssh_external` finding,
//! and how many sessions the search returns for it after it closed (must be 1).
//!
//! Latency is sampled by polling every `--poll-ms` (default 200 ms), so each figure is late
//! by up to one poll interval.
//!
//! Background load (`--background`, a list run one after the other, every variant under
//! each, on fresh data directories): `none`; `Npps`, a trafgen UDP flood (netsniff-ng's
//! generator, `-b Npps` pacing) of N packets/s: one `--background-frame`-byte frame
//! (default 256) from the PC to the file server's port 9999, sent into the far end of the
//! mirror port (`mir0` in the switch namespace), so the capture sees it as mirrored
//! traffic while the generator's CPU pays for no bridge and no host stack; `cpuP`, the same
//! flood with its rate calibrated on the first variant's capture until the capture process
//! uses P % of one core (5 s trials, rate scaled by target / measured, stop within 10 % of
//! the target or when trafgen cannot make the rate asked; the steps are in the output),
//! then kept for the load's other variants. E.g. `--background none,cpu50` gives the quiet
//! and the loaded figure in one run. On a machine with two or more CPUs the generator is
//! pinned to CPU 0 and the capture to CPU 1 (in every load, so they compare), and the
//! kernel's share of each packet (the veth, the copy into the capture's ring) runs in
//! softirq on the sending CPU, CPU 0; the analyzer is not pinned (the capture is pinned by
//! `taskset`, not `[capture] cores`) and runs at `[analyzer] nice` 10 as in `kuroko run`
//! (SCHED_IDLE in `reference`). `--generator-fifo` runs the generator SCHED_FIFO, for a busy machine
//! where it would otherwise not make its rate.
//!
//! For each load and variant, over the sessions' window (same run): the capture process's
//! CPU (utime+stime from /proc) as a share of one core and per stored packet, packets
//! captured and stored per second and drops (`kuroko status`), the analyzer's and the
//! generator's CPU, each CPU's busy share (/proc/stat), the load average, and the
//! analyzer's `lag_seconds` sampled about once a second (p50/p99/max).
//!
//! Variant `live-web` (issue 17) is `live` with `kuroko web` on the data directory and one
//! logged-in client searching `protocol:telnet` every second, as a browser left open on
//! the search page would: its capture CPU per packet beside `live`'s is the web console's
//! cost to the capture. Results go to stdout and `bench-out/live.json`.

use anyhow::bail;
use kuroko_tests::kuroko::{parse_jsonl, site_config};
use kuroko_tests::proc::{Server, run_in, wait_until};
use kuroko_tests::site::{EXT, FILES, MIRROR_IFACE, PC, Site};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// How long sessions are made, per variant.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
    /// Seconds between two sessions.
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// Variants to run, in order: `live`, `reference`, `current`, `live-web`.
    #[arg(long, value_delimiter = ',', default_value = "live,reference")]
    pub variants: Vec<String>,
    /// How long the open SSH-like session is held (0: skip that part).
    #[arg(long, default_value_t = 180)]
    pub open_seconds: u64,
    /// How often search, findings and the alert log are sampled.
    #[arg(long, default_value_t = 200)]
    pub poll_ms: u64,
    /// Background loads, one after the other, each with every variant: `none`, `Npps` (a
    /// trafgen UDP flood of N packets/s on the mirror port) or `cpuP` (the flood's rate
    /// calibrated until the capture process uses P % of a core), e.g. `none,cpu50`.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub background: Vec<String>,
    /// Run the flood's generator SCHED_FIFO (priority 1, `chrt`), as a stand-in for the
    /// wire and the NIC's interrupts, which other work on a busy machine does not slow
    /// down (the kernel still leaves other tasks 5 % of its CPU).
    #[arg(long)]
    pub generator_fifo: bool,
    /// Store budget of each variant's data directory (a flood of 300 k frames/s of 256 B
    /// fills 512 MiB in 7 s: an analyzer lagging more than that would lose packets).
    #[arg(long, default_value = "4GiB")]
    pub budget: String,
    /// Frame size of the background flood (bytes on the wire without the FCS).
    #[arg(long, default_value_t = 256)]
    pub background_frame: usize,
    /// Keep the work directory.
    #[arg(long)]
    pub keep: bool,
    /// Use the debug build of kuroko (faster to build, slower to run; its CPU figures
    /// are not the product's).
    #[arg(long)]
    pub debug: bool,
    /// Use this kuroko binary instead of building one.
    #[arg(long, value_name = "PATH")]
    pub kuroko_bin: Option<PathBuf>,
}

/// The Telnet-like server: IAC negotiation, a login prompt, a password prompt, a refusal.
const TELNET_SERVER: &str = r#"
import socket, sys, threading
def serve(c):
    try:
        c.sendall(b"\xff\xfd\x18\xff\xfd\x20\xff\xfb\x01login: ")
        c.recv(512); c.sendall(b"Password: ")
        c.recv(512); c.sendall(b"\r\nLogin incorrect\r\n")
    except Exception:
        pass
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// The client: one login every `interval` seconds for `seconds`.
const TELNET_CLIENT: &str = r#"
import socket, sys, time
host, port, seconds, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
end = time.time() + seconds
n = 0
while time.time() < end:
    t = time.time()
    try:
        c = socket.create_connection((host, port), timeout=5)
        c.recv(512); c.sendall(b"\xff\xfc\x18\xff\xfc\x20alice\r\n")
        c.recv(512); c.sendall(b"Winter2026\r\n")
        c.recv(512); c.close(); n += 1
    except Exception as e:
        print("session failed:", e, flush=True)
    time.sleep(max(0.0, interval - (time.time() - t)))
print("sessions", n, flush=True)
"#;

/// An SSH-like server and client: banners, then a line a second until the client stops.
const SSH_SERVER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
while True:
    c, _ = s.accept()
    c.sendall(b"SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5\r\n")
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(b"\x00" * len(d))
    except Exception:
        pass
    c.close()
"#;

const SSH_CLIENT: &str = r#"
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
c.recv(512)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    c.sendall(b"\x00" * 64); c.recv(4096); time.sleep(1)
c.close()
"#;

pub fn run(args: Args) -> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    crate::util::require_tools(&["trafgen", "taskset"])?;
    let kuroko = crate::util::kuroko_binary(args.kuroko_bin.as_deref(), !args.debug)?;
    let mut site = Site::new()?;
    if args.keep {
        site.keep_work_dir();
    }
    let work = site.work_dir().to_path_buf();
    let scripts = work.join("live-scripts");
    std::fs::create_dir_all(&scripts)?;
    for (name, text) in [
        ("telnet_server.py", TELNET_SERVER),
        ("telnet_client.py", TELNET_CLIENT),
        ("ssh_server.py", SSH_SERVER),
        ("ssh_client.py", SSH_CLIENT),
    ] {
        std::fs::write(scripts.join(name), text)?;
    }
    let script = |n: &str| scripts.join(n).display().to_string();
    let _telnetd = site.serve(
        FILES,
        "live-telnetd",
        "tcp",
        23,
        &["python3", &script("telnet_server.py"), FILES.ip, "23"],
    )?;
    let _sshd = site.serve(
        EXT,
        "live-sshd",
        "tcp",
        22,
        &["python3", &script("ssh_server.py"), EXT.ip, "22"],
    )?;

    // The generator on CPU 0, the capture on CPU 1 (on a machine with two or more).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = cpus >= 2;
    let loads: Vec<Background> = args
        .background
        .iter()
        .map(|b| Background::parse(b))
        .collect::<anyhow::Result<_>>()?;
    let flood_cfg = scripts.join("flood.cfg");
    std::fs::write(
        &flood_cfg,
        super::trafgen::udp_config(
            (
                super::trafgen::mac(&kuroko_tests::site::mac_of(PC.ip))?,
                super::trafgen::mac(&kuroko_tests::site::mac_of(FILES.ip))?,
            ),
            (
                super::trafgen::ipv4(PC.ip)?,
                super::trafgen::ipv4(FILES.ip)?,
            ),
            (40_000, 9999),
            args.background_frame,
        ),
    )?;
    let flood_cfg = flood_cfg.display().to_string();

    // The syslog collector and SMTP relay every variant's alerts go to.
    let sinks = super::alert_sinks::Sinks::start()?;
    let mut results = Vec::new();
    let mut n = 0;
    for load in &loads {
        // A `cpuP` load is calibrated on the first variant's capture, then kept.
        let mut rate = match load {
            Background::None => None,
            Background::Pps(p) => Some(*p),
            Background::Cpu(_) => None,
        };
        let mut calibration = Value::Null;
        for variant in &args.variants {
            let extra = match variant.as_str() {
                "live" | "live-web" => "",
                "current" => "",
                "reference" => {
                    "[analyzer]\nclose_linger = \"5s\"\npublish_interval = \"5s\"\nconsumer_wake = false\n\
                     cpu_priority = \"idle\"\n"
                }
                other => bail!("unknown variant `{other}`: live, reference, current or live-web"),
            };
            // A kuroko without `deliveries_per_minute` (`current`) summarises all but 10
            // sessions a minute instead of sending them one by one.
            let extra = format!(
                "[storage]\nbudget = \"{}\"\nsegment_size = \"16MiB\"\n\n{extra}\n{}",
                args.budget,
                sinks.config(variant != "current")
            );
            sinks.clear();
            let run = Run::start(&kuroko, &site, &work, n, variant, &extra, pin)?;
            n += 1;
            if let (Background::Cpu(target), None) = (load, rate) {
                let (r, steps) = run.calibrate(&site, &flood_cfg, *target, args.generator_fifo)?;
                rate = Some(r);
                calibration = steps;
            }
            let flood = match rate {
                Some(pps) => Some(Flood::start(&site, &flood_cfg, pps, args.generator_fifo)?),
                None => None,
            };
            // Let the flood settle (and the analyzer catch up with calibration's packets).
            if flood.is_some() {
                std::thread::sleep(Duration::from_secs(3));
            }
            let web = if variant == "live-web" {
                Some(super::web::PolledWeb::start(
                    &kuroko,
                    &run.data,
                    &run.config,
                    &work.join(format!("jar-{n}")),
                    "protocol:telnet",
                    Duration::from_secs(1),
                )?)
            } else {
                None
            };
            let mut r = run.closed_sessions(&site, &args, &script, flood.as_ref(), &sinks)?;
            if let Some(w) = web {
                r["web_searches"] = json!(w.stop());
            }
            let open = if args.open_seconds > 0 && variant != "reference" {
                Some(run.open_session(&site, &args, &script)?)
            } else {
                None
            };
            let sent = flood.map(Flood::stop);
            results.push(json!({
                "background": load.name(),
                "background_pps": rate,
                "flood_packets_sent": sent,
                "calibration": calibration,
                "variant": variant,
                "closed": r,
                "open": open,
            }));
            run.stop();
        }
    }
    let out = json!({
        "seconds": args.seconds,
        "interval": args.interval,
        "poll_ms": args.poll_ms,
        "background_frame_bytes": args.background_frame,
        "pinned": pin,
        "generator_fifo": args.generator_fifo,
        "results": results,
    });
    let dir = kuroko_tests::kuroko::workspace_root().join("bench-out");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("live.json"), serde_json::to_string_pretty(&out)?)?;
    for r in &results {
        println!(
            "background {} ({} pkt/s asked), variant {}",
            r["background"].as_str().unwrap_or("?"),
            r["background_pps"],
            r["variant"].as_str().unwrap_or("?")
        );
        if !r["calibration"].is_null() {
            println!("  calibration {}", r["calibration"]);
        }
        let c = &r["closed"];
        println!(
            "  sessions made {}  seen {}  (syslog messages {}, mails {})",
            c["sessions_made"], c["sessions_seen"], c["syslog_messages"], c["mails"]
        );
        for k in ["search", "finding", "alert", "syslog", "mail"] {
            let s = &c[k];
            println!(
                "  {k:<8} n={:<4} p50 {:>6} s  p99 {:>6} s  max {:>6} s  missing {}",
                s["n"], s["p50"], s["p99"], s["max"], s["missing"]
            );
        }
        let w = &c["window"];
        println!(
            "  capture  {} % of a core, {} us/packet, {} packets/s captured, {} dropped{}",
            w["capture_cpu_percent"],
            w["capture_cpu_us_per_packet"],
            w["captured_per_s"],
            w["drops"],
            if c["web_searches"].is_null() {
                String::new()
            } else {
                format!(", web searches answered {}", c["web_searches"])
            }
        );
        println!(
            "  analyzer {} % of a core, lag p50 {} s max {} s; generator {} %; bench polls {} %; \
             CPU busy: cpu0 {} %, cpu1 {} %; load {}",
            w["analyzer_cpu_percent"],
            c["analyzer_lag_s"]["p50"],
            c["analyzer_lag_s"]["max"],
            w["generator_cpu_percent"],
            w["bench_polls_cpu_percent"],
            w["cpu_busy_percent"][0],
            w["cpu_busy_percent"][1],
            w["loadavg"],
        );
        if !r["open"].is_null() {
            println!("  open session: {}", r["open"]);
        }
    }
    eprintln!("written to {}", dir.join("live.json").display());
    Ok(())
}

/// One background load (`--background`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Background {
    None,
    Pps(u64),
    Cpu(f64),
}

impl Background {
    fn parse(s: &str) -> anyhow::Result<Background> {
        let s = s.trim();
        if s == "none" || s == "0" {
            return Ok(Background::None);
        }
        if let Some(p) = s.strip_prefix("cpu") {
            let p: f64 = p.trim_end_matches('%').parse()?;
            if !(p > 0.0 && p <= 100.0) {
                bail!("`{s}`: a share of one core between 0 and 100 %");
            }
            return Ok(Background::Cpu(p));
        }
        match s.strip_suffix("pps").unwrap_or(s).parse::<u64>() {
            Ok(n) => Ok(Background::Pps(n)),
            Err(_) => bail!("unknown background `{s}`: none, Npps or cpuP"),
        }
    }

    fn name(&self) -> String {
        match self {
            Background::None => "none".into(),
            Background::Pps(n) => format!("{n}pps"),
            Background::Cpu(p) => format!("cpu{p}"),
        }
    }
}

/// The trafgen flood: UDP frames from the PC to the file server's port 9999, sent on CPU 0
/// straight into the mirror port's far end (`mir0` in the switch namespace), so they reach
/// the capture as mirrored traffic does but cost the kernel no bridge or host stack on
/// the generator's CPU (the most packets one generator core can make).
struct Flood {
    server: Server,
}

impl Flood {
    fn start(site: &Site, cfg: &str, pps: u64, fifo: bool) -> anyhow::Result<Flood> {
        let mut argv = super::trafgen::argv("mir0", cfg, 0, Some(pps.max(1)), None);
        if fifo {
            argv.splice(0..0, ["chrt".to_string(), "-f".into(), "1".into()]);
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let log = site.work_dir().join("live-flood.log");
        let mut server = Server::spawn("live-flood", site.switch_ns(), &argv, &log)?;
        std::thread::sleep(Duration::from_millis(300));
        server.ensure_running()?;
        Ok(Flood { server })
    }

    fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Stops it; the packets it says it sent.
    fn stop(mut self) -> Option<u64> {
        self.server.stop_with(libc::SIGINT);
        super::trafgen::packets_sent(&self.server.log_text())
    }
}

/// Counters at one instant, for CPU shares and rates over a window.
struct Sample {
    at: Instant,
    capture_cpu: Option<f64>,
    analyzer_cpu: Option<f64>,
    generator_cpu: Option<f64>,
    /// CPU of this bench's finished children (`kuroko search`/`findings`/`status` polls,
    /// the Telnet client once it ended): cutime+cstime of /proc/self/stat.
    polls_cpu: Option<f64>,
    written: Option<u64>,
    captured: Option<u64>,
    drops: Option<u64>,
    /// Drops by cause (`kernel_ring`, `backpressure`, …: `kuroko status`).
    drops_by_cause: Value,
    cpus: Vec<(f64, f64)>,
}

/// utime+stime of a process and its descendants (trafgen sends from a forked child).
fn tree_cpu(pid: u32) -> Option<f64> {
    let mut total = super::capture::proc_cpu(pid)?;
    let mut parents = vec![pid];
    while let Some(p) = parents.pop() {
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            // After the command: state, then the parent's pid.
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 2..].split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(p) {
                total += super::capture::proc_cpu(child).unwrap_or(0.0);
                parents.push(child);
            }
        }
    }
    Some(total)
}

/// CPU seconds of this process's children that have been waited for (cutime + cstime).
fn children_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is index 0, utime 11, stime 12, cutime 13, cstime 14.
    let cu: f64 = f.get(13)?.parse().ok()?;
    let cs: f64 = f.get(14)?.parse().ok()?;
    Some((cu + cs) / super::capture::CLK_TCK)
}

/// Busy and total jiffies of each CPU (`cpuN` lines of /proc/stat).
fn cpu_jiffies() -> Vec<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    s.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .filter_map(|l| {
            let v: Vec<f64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() >= 5).then(|| {
                let total: f64 = v.iter().take(8).sum();
                (total - v[3] - v[4], total)
            })
        })
        .collect()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU shares (% of one core), rates and drops between two samples.
fn window(a: &Sample, b: &Sample) -> Value {
    let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let pct = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => json!(((y - x) / wall * 1000.0).round() / 10.0),
        _ => Value::Null,
    };
    let delta = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => Some(y.saturating_sub(x)),
        _ => None,
    };
    let written = delta(a.written, b.written);
    let per_packet = match (a.capture_cpu, b.capture_cpu, written) {
        (Some(x), Some(y), Some(n)) if n > 0 => json!(((y - x) / n as f64 * 1e8).round() / 100.0),
        _ => Value::Null,
    };
    let busy: Vec<Value> = a
        .cpus
        .iter()
        .zip(&b.cpus)
        .map(|(x, y)| {
            let t = y.1 - x.1;
            if t > 0.0 {
                json!(((y.0 - x.0) / t * 1000.0).round() / 10.0)
            } else {
                Value::Null
            }
        })
        .collect();
    json!({
        "seconds": (wall * 10.0).round() / 10.0,
        "capture_cpu_percent": pct(a.capture_cpu, b.capture_cpu),
        "capture_cpu_us_per_packet": per_packet,
        "written_per_s": written.map(|n| (n as f64 / wall).round()),
        "captured_per_s": delta(a.captured, b.captured).map(|n| (n as f64 / wall).round()),
        "drops": delta(a.drops, b.drops),
        "drops_by_cause_at_end": b.drops_by_cause,
        "analyzer_cpu_percent": pct(a.analyzer_cpu, b.analyzer_cpu),
        "generator_cpu_percent": pct(a.generator_cpu, b.generator_cpu),
        "bench_polls_cpu_percent": pct(a.polls_cpu, b.polls_cpu),
        "cpu_busy_percent": busy,
        "loadavg": loadavg(),
    })
}

struct Run {
    kuroko: PathBuf,
    data: PathBuf,
    config: PathBuf,
    capture: Server,
    analyzer: Server,
}

impl Run {
    fn start(
        kuroko: &Path,
        site: &Site,
        work: &Path,
        n: usize,
        variant: &str,
        extra: &str,
        pin: bool,
    ) -> anyhow::Result<Run> {
        let data = work.join(format!("data-{n}-{variant}"));
        let config = work.join(format!("kuroko-{n}-{variant}.toml"));
        std::fs::write(
            &config,
            format!(
                "{}\n{extra}\n\
                 [[alerts.conditions]]\nname = \"bench-telnet\"\nquery = \"protocol:telnet\"\n",
                site_config("Asia/Tokyo")
            ),
        )?;
        let s = |p: &Path| p.display().to_string();
        let mut argv: Vec<&str> = if pin {
            vec!["taskset", "-c", "1"]
        } else {
            vec![]
        };
        let (k, d, c) = (s(kuroko), s(&data), s(&config));
        argv.extend([
            k.as_str(),
            "capture",
            "--iface",
            MIRROR_IFACE,
            "--data",
            &d,
            "--config",
            &c,
        ]);
        let capture = Server::spawn(
            "kuroko capture",
            site.switch_ns(),
            &argv,
            &work.join(format!("capture-{n}.log")),
        )?;
        wait_until("kuroko capture to run", Duration::from_secs(30), || {
            data.join("stats").join("capture.stats").exists()
        })?;
        std::thread::sleep(Duration::from_millis(500));
        let analyzer = Server::spawn(
            "kuroko analyze --follow",
            "",
            &[
                &s(kuroko),
                "analyze",
                "--follow",
                "--data",
                &s(&data),
                "--config",
                &s(&config),
            ],
            &work.join(format!("analyzer-{n}.log")),
        )?;
        Ok(Run {
            kuroko: kuroko.to_path_buf(),
            data,
            config,
            capture,
            analyzer,
        })
    }

    fn stop(mut self) {
        self.analyzer.stop_with(libc::SIGINT);
        self.capture.stop_with(libc::SIGINT);
    }

    fn kuroko(&self, sub: &str, args: &[&str]) -> anyhow::Result<String> {
        let (d, c) = (
            self.data.display().to_string(),
            self.config.display().to_string(),
        );
        let k = self.kuroko.display().to_string();
        let mut argv = vec![k.as_str(), sub, "--data", &d, "--config", &c];
        argv.extend_from_slice(args);
        let out = run_in("", &argv, 60)?;
        if !out.status.success() {
            bail!(
                "`kuroko {sub}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kuroko status --format json`.
    fn status(&self) -> Option<Value> {
        serde_json::from_str(&self.kuroko("status", &["--format", "json"]).ok()?).ok()
    }

    fn sample(&self, flood: Option<&Flood>) -> Sample {
        let st = self.status();
        let at = |k: &str, f: &str| st.as_ref().and_then(|v| v[k][f].as_u64());
        Sample {
            at: Instant::now(),
            capture_cpu: super::capture::proc_cpu(self.capture.pid()),
            analyzer_cpu: super::capture::proc_cpu(self.analyzer.pid()),
            generator_cpu: flood.and_then(|f| tree_cpu(f.pid())),
            polls_cpu: children_cpu(),
            // Packets the capture has stored (the writer's counter) and received.
            written: at("writer", "packets_written"),
            captured: at("capture", "packets"),
            drops: st
                .as_ref()
                .and_then(|v| v["capture"]["drops"]["total"].as_u64()),
            drops_by_cause: st
                .as_ref()
                .map_or(Value::Null, |v| v["capture"]["drops"].clone()),
            cpus: cpu_jiffies(),
        }
    }

    /// Finds the flood rate that keeps the capture process at `target` % of a core: 5 s
    /// trials, each rate scaled by target / measured, until within 10 % of the target or
    /// the generator cannot make the rate asked (it is then the highest rate it made).
    fn calibrate(
        &self,
        site: &Site,
        cfg: &str,
        target: f64,
        fifo: bool,
    ) -> anyhow::Result<(u64, Value)> {
        let mut rate: u64 = 50_000;
        let mut steps = Vec::new();
        for _ in 0..8 {
            let flood = Flood::start(site, cfg, rate, fifo)?;
            std::thread::sleep(Duration::from_secs(2));
            let a = self.sample(Some(&flood));
            std::thread::sleep(Duration::from_secs(5));
            let b = self.sample(Some(&flood));
            flood.stop();
            let w = window(&a, &b);
            let cpu = w["capture_cpu_percent"].as_f64().unwrap_or(0.0);
            let got = w["captured_per_s"].as_f64().unwrap_or(0.0);
            eprintln!(
                "calibration: {rate} pkt/s asked, {got} captured/s, capture {cpu} % of a core"
            );
            steps.push(json!({"asked_pps": rate, "window": w}));
            if (cpu - target).abs() <= target * 0.1 {
                break;
            }
            if cpu < target && got < rate as f64 * 0.85 {
                eprintln!("calibration: the generator tops out at {got} pkt/s here");
                rate = got as u64;
                break;
            }
            let next = rate as f64 * target / cpu.max(0.5);
            rate = next.clamp(rate as f64 / 4.0, rate as f64 * 4.0) as u64;
        }
        Ok((rate, json!(steps)))
    }

    fn search(&self, query: &str) -> Vec<Value> {
        self.kuroko("search", &["--format", "jsonl", "--limit", "100000", query])
            .ok()
            .and_then(|t| parse_jsonl(&t).ok())
            .unwrap_or_default()
    }

    fn finding_count(&self, rule: &str) -> u64 {
        self.kuroko("findings", &["--format", "jsonl"])
            .ok()
            .and_then(|t| parse_jsonl(&t).ok())
            .unwrap_or_default()
            .iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| f["count"].as_u64().unwrap_or(0))
            .sum()
    }

    fn alerted(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.data.join("alerts").join("alerts.jsonl"))
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|a| a["condition"] == "bench-telnet")
            .filter_map(|a| a["session"]["id"].as_str().map(String::from))
            .collect()
    }

    /// Telnet-like logins every interval; latency of search, finding and alert per session.
    fn closed_sessions(
        &self,
        site: &Site,
        args: &Args,
        script: &dyn Fn(&str) -> String,
        flood: Option<&Flood>,
        sinks: &super::alert_sinks::Sinks,
    ) -> anyhow::Result<Value> {
        // The capture's CPU and packets over the sessions' window (same run).
        let s0 = self.sample(flood);
        let mut client = site.spawn(
            PC,
            "live-telnet-client",
            &[
                "python3",
                &script("telnet_client.py"),
                FILES.ip,
                "23",
                &args.seconds.to_string(),
                &args.interval.to_string(),
            ],
        )?;
        // Per session id: end (ns), when search / finding / alert first showed it (ns).
        let mut end: BTreeMap<String, i64> = BTreeMap::new();
        let mut searched: HashMap<String, i64> = HashMap::new();
        let mut alerted: HashMap<String, i64> = HashMap::new();
        let mut found: Vec<i64> = Vec::new();
        let mut client_done: Option<Instant> = None;
        let started = Instant::now();
        // The analyzer's lag (`kuroko status`), about once a second.
        let mut lags: Vec<f64> = Vec::new();
        let mut last_lag = Instant::now();
        loop {
            if last_lag.elapsed() >= Duration::from_secs(1) {
                last_lag = Instant::now();
                if let Some(l) = self
                    .status()
                    .and_then(|v| v["analyzer"]["lag_seconds"].as_f64())
                {
                    lags.push(l);
                }
            }
            let now = kuroko_model::Timestamp::now().nanos();
            for r in self.search("protocol:telnet") {
                let (Some(id), Some(e)) = (r["id"].as_str(), r["end"].as_str()) else {
                    continue;
                };
                if r["open"] == true {
                    continue;
                }
                if let Ok(t) = kuroko_model::Timestamp::parse_rfc3339(e) {
                    end.insert(id.to_string(), t.nanos());
                    searched.entry(id.to_string()).or_insert(now);
                }
            }
            let count = self.finding_count("telnet_use") as usize;
            while found.len() < count {
                found.push(now);
            }
            for id in self.alerted() {
                alerted.entry(id).or_insert(now);
            }
            // Syslog and mail are timed by the sinks as they arrive.
            let (syslogged, mailed, _, _) = sinks.snapshot();
            let delivered = searched
                .keys()
                .all(|id| syslogged.contains_key(id) && mailed.contains_key(id));
            if client_done.is_none() && client.ensure_running().is_err() {
                client_done = Some(Instant::now());
            }
            // Everything the client made seen, or 30 s after the client ended.
            let made = made_by(&client);
            if let Some(t) = client_done
                && ((searched.len() as u64 >= made
                    && searched.len() == found.len()
                    && alerted.len() == searched.len()
                    && delivered)
                    || t.elapsed() > Duration::from_secs(30))
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(args.seconds + 120) {
                break;
            }
            std::thread::sleep(Duration::from_millis(args.poll_ms));
        }
        let s1 = self.sample(flood);
        let made = made_by(&client);
        let (syslogged, mailed, syslog_messages, mails) = sinks.snapshot();
        // Findings count sessions in log order; sessions end in the same order.
        let mut by_end: Vec<(&i64, &String)> = end.iter().map(|(id, e)| (e, id)).collect();
        by_end.sort();
        // Sessions the client made that search never returned count as missing too.
        let never_seen = if made == u64::MAX {
            0
        } else {
            (made as usize).saturating_sub(by_end.len())
        };
        let lat = |seen: &dyn Fn(usize, &str) -> Option<i64>| {
            let mut v: Vec<f64> = Vec::new();
            let mut missing = never_seen;
            for (i, (e, id)) in by_end.iter().enumerate() {
                match seen(i, id) {
                    Some(t) => v.push((t - **e) as f64 / 1e9),
                    None => missing += 1,
                }
            }
            stats(v, missing)
        };
        Ok(json!({
            "sessions_made": made,
            "sessions_seen": end.len(),
            "search": lat(&|_, id| searched.get(id).copied()),
            "finding": lat(&|i, _| found.get(i).copied()),
            "alert": lat(&|_, id| alerted.get(id).copied()),
            "syslog": lat(&|_, id| syslogged.get(id).copied()),
            "mail": lat(&|_, id| mailed.get(id).copied()),
            "syslog_messages": syslog_messages,
            "mails": mails,
            "window": window(&s0, &s1),
            "analyzer_lag_s": stats(lags, 0),
        }))
    }

    /// One SSH-like session to an outside server held open.
    fn open_session(
        &self,
        site: &Site,
        args: &Args,
        script: &dyn Fn(&str) -> String,
    ) -> anyhow::Result<Value> {
        let before = self.finding_count("ssh_external");
        let first = kuroko_model::Timestamp::now().nanos();
        let mut client = site.spawn(
            PC,
            "live-ssh-client",
            &[
                "python3",
                &script("ssh_client.py"),
                EXT.ip,
                "22",
                &args.open_seconds.to_string(),
            ],
        )?;
        let mut open_at = None;
        let mut finding_at = None;
        let q = format!("protocol:ssh AND server:{}", EXT.ip);
        while client.ensure_running().is_ok() {
            let now = kuroko_model::Timestamp::now().nanos();
            if open_at.is_none() && self.search(&q).iter().any(|r| r["open"] == true) {
                open_at = Some(now);
            }
            if finding_at.is_none() && self.finding_count("ssh_external") > before {
                finding_at = Some(now);
            }
            std::thread::sleep(Duration::from_millis(args.poll_ms.max(500)));
        }
        // After the close: the final record replaces the provisional one.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut after = Vec::new();
        while Instant::now() < deadline {
            after = self.search(&q);
            if !after.is_empty() && after.iter().all(|r| r["open"] != true) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let secs = |t: Option<i64>| t.map(|t| ((t - first) as f64 / 1e9 * 10.0).round() / 10.0);
        Ok(json!({
            "held_seconds": args.open_seconds,
            "searchable_open_after_s": secs(open_at),
            "finding_after_s": secs(finding_at),
            "sessions_after_close": after.len(),
            "still_open_after_close": after.iter().filter(|r| r["open"] == true).count(),
            "findings_added": self.finding_count("ssh_external").saturating_sub(before),
        }))
    }
}

/// Sessions the client says it made (once it has ended; `u64::MAX` before).
fn made_by(client: &Server) -> u64 {
    client
        .log_text()
        .lines()
        .find_map(|l| {
            l.strip_prefix("sessions ")
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .unwrap_or(u64::MAX)
}

fn stats(mut v: Vec<f64>, missing: usize) -> Value {
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if v.is_empty() {
            return Value::Null;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        json!((v[i] * 100.0).round() / 100.0)
    };
    json!({
        "n": v.len(),
        "missing": missing,
        "p50": pct(0.5),
        "p99": pct(0.99),
        "max": pct(1.0),
    })
}
