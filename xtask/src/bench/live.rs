//! `cargo xtask bench live`: time-to-query on the test site's mirror port.
//!
//! The test site (tests/src/site.rs) runs a small Telnet-like server on the file server and
//! a client on the PC that logs in (IAC negotiation, user name, password, "Login
//! incorrect", close) every `--interval` seconds for `--seconds`. `kuroko capture` records
//! the mirror port and `kuroko analyze --follow` analyzes it, as in `kuroko run`. For every
//! session, the seconds from its last packet on the wire (the record's `end`, capture time)
//! until (a) `kuroko search` returns it, (b) the `telnet_use` finding counts it, (c) its
//! alert is in the local alert log; p50 / p99 / max.
//!
//! Each variant runs on a fresh data directory, one after the other in the same run:
//! `live` (the defaults) and `reference` (the cadence before issue 15, set through the
//! config: `close_linger = "5s"`, `publish_interval = "5s"`, `consumer_wake = false`);
//! `current` runs without any of these keys (for a kuroko that does not know them).
//!
//! Then, unless `--open-seconds 0`, one SSH-like session held open that long: seconds from
//! its first packet until it is searchable as `open:true`, until its `ssh_external` finding,
//! and how many sessions the search returns for it after it closed (must be 1).
//!
//! Latency is sampled by polling every `--poll-ms` (default 200 ms), so each figure is late
//! by up to one poll interval. `--background-pps N` adds a UDP flood of N packets/s on the
//! mirror port while sessions run (`--background-procs P`: P senders of N/P each, for rates
//! one Python sender cannot make). For each variant the capture process's CPU over the
//! sessions' window is measured in the same run (utime+stime from /proc, against the
//! packets `kuroko status` counts): its share of one core and µs per packet.
//!
//! Variant `live-web` (issue 17) is `live` with `kuroko web` on the data directory and one
//! logged-in client searching `protocol:telnet` every second, as a browser left open on
//! the search page would: its capture CPU per packet beside `live`'s is the web console's
//! cost to the capture. Results go to stdout and `bench-out/live.json`.

use anyhow::bail;
use kuroko_tests::kuroko::{binary, parse_jsonl, site_config};
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
    /// Background UDP packets per second on the mirror port (0: none).
    #[arg(long, default_value_t = 0)]
    pub background_pps: u64,
    /// Processes sharing `--background-pps` (a Python sender makes ~50k packets/s at most).
    #[arg(long, default_value_t = 1)]
    pub background_procs: u64,
    /// Keep the work directory.
    #[arg(long)]
    pub keep: bool,
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

const UDP_FLOOD: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
pps, host = int(sys.argv[1]), sys.argv[2]
payload = b"x" * 200
t = time.time()
n = 0
while True:
    s.sendto(payload, (host, 9999)); n += 1
    if n % 100 == 0:
        ahead = n / pps - (time.time() - t)
        if ahead > 0: time.sleep(ahead)
"#;

pub fn run(args: Args) -> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    let kuroko = binary()?;
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
        ("udp_flood.py", UDP_FLOOD),
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

    let mut results = Vec::new();
    for (i, variant) in args.variants.iter().enumerate() {
        let extra = match variant.as_str() {
            "live" | "live-web" => "",
            "current" => "",
            "reference" => {
                "[analyzer]\nclose_linger = \"5s\"\npublish_interval = \"5s\"\nconsumer_wake = false\n"
            }
            other => bail!("unknown variant `{other}`: live, reference, current or live-web"),
        };
        let run = Run::start(&kuroko, &site, &work, i, variant, extra)?;
        let web = if variant == "live-web" {
            Some(super::web::PolledWeb::start(
                &kuroko,
                &run.data,
                &run.config,
                &work.join(format!("jar-{i}")),
                "protocol:telnet",
                Duration::from_secs(1),
            )?)
        } else {
            None
        };
        let mut r = run.closed_sessions(&site, &args, &script)?;
        if let Some(w) = web {
            r["web_searches"] = json!(w.stop());
        }
        let open = if args.open_seconds > 0 && variant != "reference" {
            Some(run.open_session(&site, &args, &script)?)
        } else {
            None
        };
        results.push(json!({"variant": variant, "closed": r, "open": open}));
        run.stop();
    }
    let out = json!({
        "seconds": args.seconds,
        "interval": args.interval,
        "poll_ms": args.poll_ms,
        "background_pps": args.background_pps,
        "background_procs": args.background_procs,
        "results": results,
    });
    let dir = kuroko_tests::kuroko::workspace_root().join("bench-out");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("live.json"), serde_json::to_string_pretty(&out)?)?;
    for r in &results {
        println!("variant {}", r["variant"].as_str().unwrap_or("?"));
        let c = &r["closed"];
        println!(
            "  sessions made {}  seen {}",
            c["sessions_made"], c["sessions_seen"]
        );
        for k in ["search", "finding", "alert"] {
            let s = &c[k];
            println!(
                "  {k:<8} n={:<4} p50 {:>6} s  p99 {:>6} s  max {:>6} s  missing {}",
                s["n"], s["p50"], s["p99"], s["max"], s["missing"]
            );
        }
        println!(
            "  capture  {} % of a core, {} us/packet, {} packets/s captured{}",
            c["capture"]["cpu_percent"],
            c["capture"]["cpu_us_per_packet"],
            c["capture"]["packets_per_s"],
            if c["web_searches"].is_null() {
                String::new()
            } else {
                format!(", web searches answered {}", c["web_searches"])
            }
        );
        if !r["open"].is_null() {
            println!("  open session: {}", r["open"]);
        }
    }
    eprintln!("written to {}", dir.join("live.json").display());
    Ok(())
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
    ) -> anyhow::Result<Run> {
        let data = work.join(format!("data-{n}-{variant}"));
        let config = work.join(format!("kuroko-{n}-{variant}.toml"));
        std::fs::write(
            &config,
            format!(
                "{}\n[storage]\nbudget = \"512MiB\"\nsegment_size = \"16MiB\"\n\n{extra}\n\
                 [[alerts.conditions]]\nname = \"bench-telnet\"\nquery = \"protocol:telnet\"\n",
                site_config("Asia/Tokyo")
            ),
        )?;
        let s = |p: &Path| p.display().to_string();
        let capture = Server::spawn(
            "kuroko capture",
            site.switch_ns(),
            &[
                &s(kuroko),
                "capture",
                "--iface",
                MIRROR_IFACE,
                "--data",
                &s(&data),
                "--config",
                &s(&config),
            ],
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

    /// Packets the capture has stored so far (`kuroko status`'s writer counter).
    fn captured_packets(&self) -> Option<u64> {
        let v: Value =
            serde_json::from_str(&self.kuroko("status", &["--format", "json"]).ok()?).ok()?;
        v["writer"]["packets_written"].as_u64()
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
    ) -> anyhow::Result<Value> {
        let procs = args.background_procs.max(1);
        let mut flood = Vec::new();
        if args.background_pps > 0 {
            for _ in 0..procs {
                flood.push(site.spawn(
                    PC,
                    "live-flood",
                    &[
                        "python3",
                        &script("udp_flood.py"),
                        &(args.background_pps / procs).max(1).to_string(),
                        FILES.ip,
                    ],
                )?);
            }
        }
        // The capture's CPU and packets over the sessions' window (same run).
        let cpu0 = super::capture::proc_cpu(self.capture.pid());
        let packets0 = self.captured_packets();
        let t0 = Instant::now();
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
        loop {
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
            if client_done.is_none() && client.ensure_running().is_err() {
                client_done = Some(Instant::now());
            }
            // Everything the client made seen, or 30 s after the client ended.
            let made = made_by(&client);
            if let Some(t) = client_done
                && ((searched.len() as u64 >= made
                    && searched.len() == found.len()
                    && alerted.len() == searched.len())
                    || t.elapsed() > Duration::from_secs(30))
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(args.seconds + 120) {
                break;
            }
            std::thread::sleep(Duration::from_millis(args.poll_ms));
        }
        let (cpu1, packets1, wall) = (
            super::capture::proc_cpu(self.capture.pid()),
            self.captured_packets(),
            t0.elapsed().as_secs_f64(),
        );
        drop(flood);
        let capture = match (cpu0, cpu1, packets0, packets1) {
            (Some(c0), Some(c1), Some(p0), Some(p1)) if p1 > p0 && wall > 0.0 => json!({
                "cpu_percent": ((c1 - c0) / wall * 1000.0).round() / 10.0,
                "cpu_us_per_packet": ((c1 - c0) / (p1 - p0) as f64 * 1e8).round() / 100.0,
                "packets_per_s": ((p1 - p0) as f64 / wall).round(),
                "seconds": (wall * 10.0).round() / 10.0,
            }),
            _ => json!({"error": "no CPU or packet counts from the capture"}),
        };
        let made = made_by(&client);
        // Findings count sessions in log order; sessions end in the same order.
        let mut by_end: Vec<(&i64, &String)> = end.iter().map(|(id, e)| (e, id)).collect();
        by_end.sort();
        let lat = |seen: &dyn Fn(usize, &str) -> Option<i64>| {
            let mut v: Vec<f64> = Vec::new();
            let mut missing = 0;
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
            "capture": capture,
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
