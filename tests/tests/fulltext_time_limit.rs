//! `[content] time_limit` through the real binaries, on real traffic: Python's `ftplib`
//! uploads three files to pyftpdlib in one FTP session, a small text, a PDF whose
//! extraction is deliberately slow (one 30 MiB content stream of path operators: the PDF
//! reader spends about 0.5 s of CPU, debug build, on it before it first checks the time
//! limit, which it does only between steps) and another small
//! text. The mirror port is recorded, then `kuroko import` and `kuroko analyze` run with
//! `[content] time_limit = "150ms"` in the config file; the same capture goes through
//! `kuroko analyze --follow` (what `kuroko run` runs) in a second data directory.
//!
//! - The slow PDF costs its worker (`kuroko content-worker`) more CPU time than the limit
//!   plus its grace, so the worker is killed: `kuroko status` (section `content`) counts it
//!   as `killed`, and no other failure. The analysis finishes.
//! - Both texts, before and after it, are found with `content:"…"` in the FTP data
//!   sessions that carried them; a look-alike phrase is not found; the PDF's session is
//!   still found by its metadata.
//! - Content extraction does not hold back session analysis: while the worker is busy on
//!   the slow PDF (the test stops it with SIGSTOP at that moment, so the check does not
//!   race it, and lets it go on after), the FTP sessions are already in the session index
//!   (`kuroko search`) and the finding of the clear-text FTP login is already there
//!   (`kuroko findings`).
//! - An analyzer killed with SIGKILL while its worker is busy on the slow PDF takes the
//!   worker with it (it does not spin on as an orphan).
//!
//! Needs root and pyftpdlib (`python3-pyftpdlib`).

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{FILES, PC, Site};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = kuroko_tests::scenarios::PYTHON;
const CONFIG: &str = "[storage]\nbudget = \"256MiB\"\nsegment_size = \"8MiB\"\n\
                      files_budget = \"256MiB\"\n\n[content]\ntime_limit = \"150ms\"\n";

/// The phrase of the text uploaded before the slow PDF, of the one after, and look-alikes.
const FIRST_PHRASE: &str = "第3四半期の売上報告書";
const LAST_PHRASE: &str = "来週の役員会議の議事録";
const ABSENT: &[&str] = &["第4四半期の売上", "先週の役員会議"];

/// FTP: uploads argv[2..] in order with ftplib (binary mode, passive), one session.
const FTP_UPLOAD: &str = r#"
import ftplib, os, sys
f = ftplib.FTP(sys.argv[1], timeout=60)
f.login('alice', 'secret')
for p in sys.argv[2:]:
    with open(p, 'rb') as fh:
        print(f.storbinary('STOR ' + os.path.basename(p), fh))
f.quit()
"#;

/// A PDF whose one content stream is `len` bytes of path operators: extracting it is one
/// step of the PDF reader, which keeps the worker busy for as long as the stream is long
/// (as `fulltext_worker` builds it).
fn slow_pdf(len: usize) -> Vec<u8> {
    let op = b"0 0 m 1 1 l S\n";
    let body = op.repeat(len / op.len());
    let mut pdf = b"%PDF-1.4\n1 0 obj\n<< /Length ".to_vec();
    pdf.extend_from_slice(body.len().to_string().as_bytes());
    pdf.extend_from_slice(b" >>\nstream\n");
    pdf.extend_from_slice(&body);
    pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Size 2 >>\n%%EOF\n");
    pdf
}

/// The ids and protocols of the sessions a query finds.
fn found(data: &DataDir, q: &str) -> anyhow::Result<Vec<(String, String)>> {
    let hits: Vec<Value> = data.search(q).with_context(|| format!("search {q}"))?;
    Ok(hits
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap_or("").to_string(),
                h["protocol"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}

/// The `kuroko content-worker` children of `parent`, with their CPU time (user + system,
/// in clock ticks of 1/100 s).
fn workers_of(parent: u32) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        // After the command name: state, ppid, …; utime and stime are fields 14 and 15.
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ppid = f.get(1).and_then(|v| v.parse::<u32>().ok());
        let cpu = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && cmdline.windows(14).any(|w| w == b"content-worker") {
            out.push((pid, cpu));
        }
    }
    out
}

/// `kill -SIG PID` (the worker is a child of the analyze this test started).
fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()?;
    ensure!(st.success(), "kill -{sig} {pid}: {st}");
    Ok(())
}

/// What the operator sees while the content worker is busy on the slow PDF: the FTP
/// sessions in the session index and the findings.
#[derive(Debug)]
struct DuringExtraction {
    ftp_data_sessions: usize,
    findings: Vec<String>,
}

/// Runs `kuroko analyze` (with `--follow` when `follow`) and, once its content worker has
/// spent 0.1 s of CPU (a worker starts and extracts a small text in a few milliseconds: it
/// is on the slow PDF, which it reads for about 0.5 s of CPU before it first checks the
/// deadline, and is killed at 0.3 s, limit and grace), stops that worker and looks at what
/// `kuroko search` and `kuroko findings` show, waiting up to 20 s for the finding of the
/// FTP login (well inside the 60 s after which the consumer kills a worker that does not
/// answer), then lets the worker go on. `--follow` is stopped with SIGTERM once `kuroko
/// status` counts the slow PDF killed and both texts extracted. Returns that view (None if
/// the worker was never seen busy) and analyze's stderr.
fn analyze_watching_the_worker(
    data: &DataDir,
    follow: bool,
) -> anyhow::Result<(Option<DuringExtraction>, String)> {
    let bin = kuroko_tests::kuroko::binary()?;
    let mut cmd = Command::new(&bin);
    cmd.arg("analyze")
        .arg("--data")
        .arg(&data.dir)
        .arg("--config")
        .arg(&data.config);
    if follow {
        cmd.arg("--follow");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let pid = child.id();
    let started = Instant::now();
    let mut seen = None;
    let mut terminated = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if seen.is_none()
            && let Some(&(worker, _)) = workers_of(pid).iter().find(|(_, cpu)| *cpu >= 10)
        {
            signal(worker, "STOP")?;
            let view = (|| -> anyhow::Result<DuringExtraction> {
                let asked = Instant::now();
                loop {
                    let sessions = found(data, "protocol:ftp-data")?;
                    let findings: Vec<String> = data
                        .findings()?
                        .iter()
                        .filter_map(|f| f["rule"].as_str().map(str::to_string))
                        .collect();
                    let view = DuringExtraction {
                        ftp_data_sessions: sessions.len(),
                        findings,
                    };
                    if view.findings.iter().any(|r| r == "cleartext_credentials")
                        || asked.elapsed() > Duration::from_secs(20)
                    {
                        return Ok(view);
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })();
            // Still the same, stopped worker: the view was taken before it was done.
            let still = workers_of(pid).iter().any(|(w, _)| *w == worker);
            signal(worker, "CONT")?;
            ensure!(still, "the worker went away while stopped");
            seen = Some(view?);
        }
        if follow && !terminated && seen.is_some() {
            let st: Value = serde_json::from_str(&data.kuroko("status", &["--format", "json"])?)?;
            let c = &st["content"];
            if c["failures"]["killed"] == 1 && c["objects"] == 2 {
                signal(pid, "TERM")?;
                terminated = true;
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("kuroko analyze did not finish in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = reader.join().unwrap_or_default();
    ensure!(status.success(), "kuroko analyze failed ({status}): {err}");
    Ok((seen, err))
}

/// Starts `kuroko analyze`, kills it with SIGKILL once its worker is busy on the slow PDF,
/// and says how long that worker lived on (None: it outlived `wait`).
fn worker_outlives_a_killed_analyzer(
    data: &DataDir,
    wait: Duration,
) -> anyhow::Result<Option<Duration>> {
    let bin = kuroko_tests::kuroko::binary()?;
    let mut child = Command::new(&bin)
        .arg("analyze")
        .arg("--data")
        .arg(&data.dir)
        .arg("--config")
        .arg(&data.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let started = Instant::now();
    let worker = loop {
        if let Some(&(w, _)) = workers_of(pid).iter().find(|(_, cpu)| *cpu >= 10) {
            break w;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("kuroko analyze ended ({status}) before its worker was seen busy");
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "no busy worker in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill()?;
    child.wait()?;
    let killed = Instant::now();
    // Gone, or a zombie waiting for init to reap it: no longer running.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{worker}/stat")).is_ok_and(|s| {
            let state = s
                .rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next());
            state.is_some_and(|st| st != "Z" && st != "X")
        })
    };
    while alive() {
        if killed.elapsed() > wait {
            // Not ours to leave behind: the test ends it.
            let _ = signal(worker, "KILL");
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(killed.elapsed()))
}

/// What `kuroko analyze` (or `--follow`) left in `data`, and what was seen during the
/// extraction of the slow PDF.
fn check(data: &DataDir, during: Option<DuringExtraction>) -> anyhow::Result<()> {
    // The operator sees the killed worker in `kuroko status`.
    let status: Value = serde_json::from_str(&data.kuroko("status", &["--format", "json"])?)?;
    let content = &status["content"];
    ensure!(
        content["failures"]["killed"] == 1,
        "one object killed past the time limit: {content}"
    );
    let others: Vec<(&String, &Value)> = content["failures"]
        .as_object()
        .context("failures")?
        .iter()
        .filter(|(k, n)| k.as_str() != "killed" && **n != 0)
        .collect();
    ensure!(others.is_empty(), "no other failure: {content}");
    ensure!(content["objects"] == 2, "both texts extracted: {content}");
    let table = data.kuroko("status", &[])?;
    ensure!(
        table
            .lines()
            .any(|l| l.contains("failures") && l.contains("killed 1")),
        "the table says so too: {table}"
    );

    // The texts before and after the slow PDF are found, each in its own data session.
    let first = found(data, &format!("content:\"{FIRST_PHRASE}\""))?;
    let last = found(data, &format!("content:\"{LAST_PHRASE}\""))?;
    for (what, hits) in [("first", &first), ("last", &last)] {
        ensure!(
            hits.len() == 1 && hits[0].1 == "ftp-data",
            "{what} text: {hits:?}"
        );
    }
    ensure!(
        first[0].0 != last[0].0,
        "two data sessions: {first:?} {last:?}"
    );
    for absent in ABSENT {
        let hits = found(data, &format!("content:\"{absent}\""))?;
        ensure!(hits.is_empty(), "{absent} is in no text: {hits:?}");
    }
    // The slow PDF's session is still there, found by its metadata.
    let all = found(data, "protocol:ftp-data")?;
    ensure!(all.len() == 3, "three uploads: {all:?}");

    // While the worker was busy on the slow PDF, the sessions and findings were there.
    let during = during.context("the content worker was never seen busy on the slow PDF")?;
    ensure!(
        during.ftp_data_sessions == 3,
        "the FTP sessions were searchable during the extraction: {during:?}"
    );
    ensure!(
        during.findings.iter().any(|r| r == "cleartext_credentials"),
        "the finding of the FTP login was there during the extraction: {during:?}"
    );
    Ok(())
}

#[test]
fn a_slow_pdf_uploaded_over_ftp_is_killed_past_the_time_limit_and_the_texts_beside_it_are_found()
-> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    let py = Command::new(PYTHON)
        .args(["-c", "import pyftpdlib"])
        .output()?;
    ensure!(py.status.success(), "python3-pyftpdlib is missing");
    let site = Site::new()?;
    let data = DataDir::new("fulltext-time-limit", CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("parent")?
        .join("fulltext-time-limit.pcap");
    let work = site.work_dir().join("time-limit");
    let ftp_root = work.join("ftp");
    std::fs::create_dir_all(&ftp_root)?;
    let files = [
        (
            work.join("first.txt"),
            format!("営業部各位\n\n{FIRST_PHRASE}を共有します。\n").into_bytes(),
        ),
        (work.join("slow.pdf"), slow_pdf(30 << 20)),
        (
            work.join("last.txt"),
            format!("{LAST_PHRASE}を添付します。\nご確認ください。\n").into_bytes(),
        ),
    ];
    for (p, bytes) in &files {
        std::fs::write(p, bytes)?;
    }
    let mut ftp = kuroko_tests::ftp::serve(&site, FILES, &ftp_root)?;
    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        let mut argv = vec![PYTHON, "-c", FTP_UPLOAD, FILES.ip];
        for (p, _) in &files {
            argv.push(p.to_str().context("utf-8")?);
        }
        let out = site.sh(PC, &argv, 300)?;
        let said = String::from_utf8_lossy(&out.stdout);
        ensure!(said.matches("226").count() == 3, "ftplib: {said}");
        Ok(())
    })();
    rec.stop()?;
    ftp.stop();
    traffic?;
    for (p, bytes) in &files {
        let name = p.file_name().context("name")?;
        ensure!(
            std::fs::read(ftp_root.join(name))? == *bytes,
            "the server has {name:?}"
        );
    }
    // `kuroko analyze`, then the same capture in a second data directory with
    // `kuroko analyze --follow` (what `kuroko run` runs).
    data.import(&pcap)?;
    let (during, stderr) = analyze_watching_the_worker(&data, false)?;
    eprintln!("kuroko analyze: {stderr}");
    check(&data, during).context("kuroko analyze")?;

    let followed = DataDir::new("fulltext-time-limit-follow", CONFIG)?;
    followed.import(&pcap)?;
    let (during, stderr) = analyze_watching_the_worker(&followed, true)?;
    eprintln!("kuroko analyze --follow: {stderr}");
    check(&followed, during).context("kuroko analyze --follow")?;

    // An analyzer killed while its worker is stuck in the slow PDF takes the worker with it.
    let killed = DataDir::new("fulltext-time-limit-kill9", CONFIG)?;
    killed.import(&pcap)?;
    let lived = worker_outlives_a_killed_analyzer(&killed, Duration::from_secs(1))?;
    ensure!(
        lived.is_some(),
        "the worker of a killed analyzer was still running 1 s later"
    );
    eprintln!("the worker ended {lived:?} after its analyzer was killed");
    Ok(())
}
