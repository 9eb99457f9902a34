//! `cargo xtask bench web`: the web console end to end over HTTPS (issue 17), short.
//!
//! A data dir is filled by `kuroko import` + `kuroko analyze` from a generated pcap of N
//! HTTP sessions through a proxy (one in ten a CONNECT to port 5228, which the NetRAPTOR
//! CONNECT query finds); `kuroko web` serves it on loopback. `curl` sends the requests one
//! after another on one kept-alive TLS connection (`-w %{time_total}` per request):
//! login (Argon2id on purpose: slow), the NetRAPTOR CONNECT query through `/api/search`
//! (50 results, audited with fdatasync as every search is), and `/api/sessions/ID`.
//! Reference in the same run: `kuroko search` (the CLI: process start, index open, same
//! query, same 50 results) and `kuroko search --id` on the same data dir.
//!
//! With `--synthetic` the data dir is filled instead with N synthetic sessions of an office
//! link (`kuroko-index`'s `synth_log` example, the mix `bench search` uses, a few CONNECTs
//! through a proxy among them) written straight into the session log and indexed by one
//! `kuroko search`: 10 M sessions take minutes that way, not the hours of import + analyze.
//!
//! Requests/s is requests over the wall time of the curl run (one client, sequential).
//! The report goes to `bench-out/web.md`. Nothing here asserts on time.

use super::search::{frame, pcap_record};
use crate::util::{cargo, root, run as run_cmd};
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// HTTP sessions in the data dir (1000 is quick; 100000 takes minutes to analyze).
    #[arg(long, default_value_t = 1000)]
    pub sessions: u32,
    /// Requests of each kind (logins: a tenth of it, at least 5).
    #[arg(long, default_value_t = 200)]
    pub requests: u32,
    /// The kuroko binary to measure (default: built by `cargo build --release -p kuroko`).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Build and measure the debug binary instead of a release one (quicker to build;
    /// the ratios to the CLI reference still compare like with like).
    #[arg(long)]
    pub debug: bool,
    /// Work directory (removed afterwards unless --keep).
    #[arg(long, default_value = "/tmp/kuroko-bench-web")]
    pub work: PathBuf,
    #[arg(long)]
    pub keep: bool,
    /// Fill the data dir with `--sessions` synthetic sessions (session log + index) instead
    /// of import + analyze of a pcap: for 1 M and 10 M.
    #[arg(long)]
    pub synthetic: bool,
}

const CONNECT_QUERY: &str =
    r#"(protocol:http OR protocol:https) AND NOT(url:(":443" ":80")) AND (method:CONNECT)"#;
const PASSWORD: &str = "bench-password-1";
const T0_NS: u64 = 1_795_219_200_000_000_000;

pub fn run(args: Args) -> anyhow::Result<()> {
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => build(!args.debug)?,
    };
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("cannot create {}", args.work.display()))?;
    let result = bench(&args, &bin);
    if !args.keep {
        let _ = std::fs::remove_dir_all(&args.work);
    }
    let report = result?;
    let dir = root().join("bench-out");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("web.md");
    std::fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{report}");
    eprintln!("written to {}", path.display());
    Ok(())
}

fn build(release: bool) -> anyhow::Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "--quiet", "-p", "kuroko"]);
    if release {
        c.arg("--release");
    }
    run_cmd(&mut c)?;
    Ok(crate::util::target_dir()
        .join(if release { "release" } else { "debug" })
        .join("kuroko"))
}

/// N synthetic sessions into `DATA/sessions`, then indexed, with `kuroko-index`'s
/// `synth_log` example (built in release; `kuroko search` never builds the index).
/// Returns the seconds the example ran (its build not counted).
fn fill_synthetic(data: &Path, sessions: u32) -> anyhow::Result<f64> {
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-index",
        "--example",
        "synth_log",
    ]))?;
    let synth = crate::util::target_dir().join("release/examples/synth_log");
    let t = Instant::now();
    run_cmd(
        Command::new(&synth)
            .arg(data)
            .arg(sessions.to_string())
            .arg("--index"),
    )?;
    Ok(t.elapsed().as_secs_f64())
}

/// N HTTP sessions through a proxy; every tenth a refused CONNECT to port 5228.
fn write_pcap(path: &Path, sessions: u32) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    out.write_all(&h)?;
    let proxy = [192, 168, 0, 100];
    let mut t = T0_NS;
    for i in 0..sessions {
        let client = [10, 1, (i >> 8) as u8, i as u8];
        let cport = 20_000 + (i % 40_000) as u16;
        let (req, resp) = if i % 10 == 0 {
            (
                "CONNECT mtalk.google.com:5228 HTTP/1.1\r\nHost: mtalk.google.com:5228\r\n\r\n"
                    .to_string(),
                "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_string(),
            )
        } else {
            (
                format!(
                    "GET http://www{}.example.org/page{i}.html HTTP/1.1\r\nHost: www{}.example.org\r\n\r\n",
                    i % 97,
                    i % 97
                ),
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi"
                    .to_string(),
            )
        };
        let with = |mut f: Vec<u8>, p: &[u8]| {
            f[54..].copy_from_slice(p);
            f
        };
        let (mut c, mut s) = (1_000u32, 5_000u32);
        let pkts = vec![
            frame(client, proxy, cport, 8080, 0x02, c, 0),
            frame(proxy, client, 8080, cport, 0x12, s, 0),
            frame(client, proxy, cport, 8080, 0x10, c + 1, 0),
            with(
                frame(client, proxy, cport, 8080, 0x18, c + 1, req.len()),
                req.as_bytes(),
            ),
            with(
                frame(proxy, client, 8080, cport, 0x18, s + 1, resp.len()),
                resp.as_bytes(),
            ),
        ];
        c += 1 + req.len() as u32;
        s += 1 + resp.len() as u32;
        let mut all = pkts;
        all.push(frame(client, proxy, cport, 8080, 0x11, c, 0));
        all.push(frame(proxy, client, 8080, cport, 0x11, s, 0));
        all.push(frame(client, proxy, cport, 8080, 0x10, c + 1, 0));
        for f in &all {
            t += 100_000;
            pcap_record(&mut out, t, f)?;
        }
    }
    out.flush()?;
    Ok(())
}

struct Web {
    child: std::process::Child,
    base: String,
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kuroko(bin: &Path, data: &Path, config: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "kuroko {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn start_web(bin: &Path, data: &Path, config: &Path) -> anyhow::Result<Web> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new(bin)
        .args(["web", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut ready = false;
    for _ in 0..4 {
        match lines.next() {
            Some(Ok(l)) if l.contains("fingerprint") => {
                ready = true;
                break;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let web = Web {
        child,
        base: format!("https://127.0.0.1:{port}"),
    };
    if !ready {
        bail!("kuroko web did not start");
    }
    Ok(web)
}

/// A process's CPU (user + system, in % of one core) over `over`, and its resident memory.
struct Usage {
    cpu_percent: f64,
    rss_mib: u64,
}

fn proc_usage(pid: u32, over: std::time::Duration) -> anyhow::Result<Usage> {
    let ticks = |pid: u32| -> anyhow::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces): utime is the 12th, stime 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(n(11) + n(12))
    };
    let t0 = ticks(pid)?;
    std::thread::sleep(over);
    let t1 = ticks(pid)?;
    // USER_HZ is 100 on Linux.
    let cpu_percent = (t1 - t0) as f64 / over.as_secs_f64();
    let rss_mib = std::fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024;
    Ok(Usage {
        cpu_percent,
        rss_mib,
    })
}

/// Adds the bench's analyst user to `data` (before `kuroko web` starts on it).
fn add_user(bin: &Path, data: &Path) -> anyhow::Result<()> {
    let mut add = Command::new(bin)
        .args(["user", "add", "bench", "--role", "analyst", "--data"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    writeln!(add.stdin.take().context("stdin")?, "{PASSWORD}")?;
    if !add.wait()?.success() {
        bail!("kuroko user add failed");
    }
    Ok(())
}

/// The curl arguments of the bench user's login to `web` (`curl_many` with a cookie jar
/// keeps the session).
fn login_request(web: &Web) -> Vec<String> {
    let login_body = format!(r#"{{"user":"bench","password":"{PASSWORD}"}}"#);
    vec![
        "-X".to_string(),
        "POST".into(),
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data".into(),
        login_body,
        format!("{}/api/login", web.base),
    ]
}

/// `kuroko web` on `data` polled by one logged-in client: a search (`query`) every
/// `every`, until dropped (issue 17: what a browser left open costs the capture).
pub(crate) struct PolledWeb {
    _web: Web,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl PolledWeb {
    pub(crate) fn start(
        bin: &Path,
        data: &Path,
        config: &Path,
        jar: &Path,
        query: &str,
        every: Duration,
    ) -> anyhow::Result<PolledWeb> {
        add_user(bin, data)?;
        let web = start_web(bin, data, config)?;
        curl_many(jar, &[login_request(&web)])?;
        let q: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let url = format!("{}/api/search?limit=50&q={q}", web.base);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, jar) = (stop.clone(), jar.to_path_buf());
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if curl_many(&jar, &[vec![url.clone()]]).is_ok() {
                    n += 1;
                }
                std::thread::sleep(every);
            }
            n
        });
        Ok(PolledWeb {
            _web: web,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the client; returns how many searches answered 200.
    pub(crate) fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

/// Runs one curl with `urls` (each with its own extra arguments before it, `--next`
/// between them) on one connection; returns the seconds of each transfer and the wall time.
fn curl_many(jar: &Path, reqs: &[Vec<String>]) -> anyhow::Result<(Vec<f64>, f64)> {
    let mut c = Command::new("curl");
    for (i, r) in reqs.iter().enumerate() {
        if i > 0 {
            c.arg("--next");
        }
        c.args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{time_total}\\n",
        ]);
        c.arg("-b").arg(jar).arg("-c").arg(jar);
        c.args(r);
    }
    let t = Instant::now();
    let out = c.output().context("curl runs")?;
    let wall = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut secs = Vec::new();
    for l in text.lines() {
        let (code, s) = l.split_once(' ').context("curl output")?;
        if code != "200" {
            bail!("a request answered {code}");
        }
        secs.push(s.parse::<f64>()?);
    }
    if secs.len() != reqs.len() {
        bail!("curl made {} of {} requests", secs.len(), reqs.len());
    }
    Ok((secs, wall))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn row(name: &str, mut secs: Vec<f64>, wall: f64) -> String {
    let n = secs.len();
    format!(
        "| {name} | {n} | {:.1} | {:.1} | {:.1} |\n",
        n as f64 / wall,
        pct(&mut secs, 0.5) * 1000.0,
        pct(&mut secs, 0.99) * 1000.0
    )
}

fn bench(args: &Args, bin: &Path) -> anyhow::Result<String> {
    let data = args.work.join("data");
    let config = args.work.join("kuroko.toml");
    std::fs::write(&config, "[site]\ntimezone = \"Asia/Tokyo\"\n")?;
    let t = Instant::now();
    let how = if args.synthetic {
        let secs = fill_synthetic(&data, args.sessions)?;
        format!(
            "synthetic sessions written to the session log and indexed in {secs:.1} s (each phase on stderr)"
        )
    } else {
        let pcap = args.work.join("sessions.pcap");
        write_pcap(&pcap, args.sessions)?;
        kuroko(
            bin,
            &data,
            &config,
            &["import", pcap.to_str().unwrap_or("")],
        )?;
        kuroko(bin, &data, &config, &["analyze"])?;
        let _ = std::fs::remove_file(&pcap);
        format!(
            "filled by import + analyze in {:.1} s",
            t.elapsed().as_secs_f64()
        )
    };
    add_user(bin, &data)?;
    let web = start_web(bin, &data, &config)?;
    // The server at rest (no client): what it costs a box that captures meanwhile.
    let idle = proc_usage(web.child.id(), std::time::Duration::from_secs(5))?;
    let jar = args.work.join("jar");
    let login_req = login_request(&web);
    let logins = (args.requests / 10).max(5) as usize;
    let (login_s, login_wall) = curl_many(&jar, &vec![login_req; logins])?;
    // One search to learn a session id (and to let the index catch up first).
    let q: String = CONNECT_QUERY
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let search_url = format!("{}/api/search?limit=50&q={q}", web.base);
    let first = Command::new("curl")
        .args(["-sk", "-b"])
        .arg(&jar)
        .arg(&search_url)
        .output()?;
    let j: serde_json::Value = serde_json::from_slice(&first.stdout)
        .with_context(|| String::from_utf8_lossy(&first.stdout).into_owned())?;
    let total = j["total"].as_u64().unwrap_or(0);
    let id = j["hits"][0]["id"]
        .as_str()
        .context("the CONNECT query found nothing")?
        .to_string();
    let n = args.requests as usize;
    let (search_s, search_wall) = curl_many(&jar, &vec![vec![search_url.clone()]; n])?;
    let detail_url = format!("{}/api/sessions/{id}", web.base);
    let (detail_s, detail_wall) = curl_many(&jar, &vec![vec![detail_url]; n])?;
    let after = proc_usage(web.child.id(), std::time::Duration::from_secs(5))?;
    drop(web);
    // The reference: the CLI on the same data dir, same query, same 50 results.
    let runs = (n / 10).max(10);
    let cli = |a: &[&str]| -> anyhow::Result<(Vec<f64>, f64)> {
        let mut v = Vec::new();
        let t0 = Instant::now();
        for _ in 0..runs {
            let t = Instant::now();
            kuroko(bin, &data, &config, a)?;
            v.push(t.elapsed().as_secs_f64());
        }
        Ok((v, t0.elapsed().as_secs_f64()))
    };
    let (cli_search, cli_search_wall) = cli(&[
        "search",
        "--format",
        "jsonl",
        "--limit",
        "50",
        CONNECT_QUERY,
    ])?;
    let (cli_detail, cli_detail_wall) = cli(&["search", "--format", "jsonl", "--id", &id])?;
    let mut r = String::new();
    r.push_str(&format!(
        "# bench web: {} {}sessions ({} match the CONNECT query), {} binary\n\n",
        args.sessions,
        if args.synthetic { "synthetic " } else { "" },
        total,
        if args.debug { "debug" } else { "release" }
    ));
    r.push_str(&format!(
        "Data dir {how}. One client, requests one after another on one TLS connection (curl); every search and detail view is audited (fdatasync) as in use.\n\n"
    ));
    r.push_str("| what | requests | req/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |\n");
    r.push_str(&row("POST /api/login (Argon2id)", login_s, login_wall));
    r.push_str(&row(
        "GET /api/search CONNECT query, 50 results",
        search_s.clone(),
        search_wall,
    ));
    r.push_str(&row("GET /api/sessions/ID", detail_s.clone(), detail_wall));
    r.push_str(&row(
        "reference: kuroko search (CLI process), same query, 50 results",
        cli_search.clone(),
        cli_search_wall,
    ));
    r.push_str(&row(
        "reference: kuroko search --id (CLI process)",
        cli_detail.clone(),
        cli_detail_wall,
    ));
    r.push_str(&format!(
        "\n`kuroko web` at rest, 5 s without a client: {:.2} % of a core, RSS {} MiB at start, {} MiB after the requests above (idle again: {:.2} % of a core).\n",
        idle.cpu_percent, idle.rss_mib, after.rss_mib, after.cpu_percent
    ));
    let ratio = |mut a: Vec<f64>, mut b: Vec<f64>| pct(&mut a, 0.5) / pct(&mut b, 0.5);
    r.push_str(&format!(
        "\np50 web / CLI: search {:.2}, detail {:.2}\n",
        ratio(search_s, cli_search),
        ratio(detail_s, cli_detail)
    ));
    Ok(r)
}
