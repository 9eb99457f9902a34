//! The content extraction worker of the real binary (`kuroko content-worker`): its memory
//! limit holds, and an object that needs more than the limit kills only that worker.
//!
//! A worker is started with RLIMIT_AS at its own idle size plus 24 MiB and handed a
//! 12 MiB Shift_JIS text (18 MiB as UTF-8): reading it fits, decoding it to UTF-8 does not, so the worker
//! dies (allocation failure → abort) without an answer, as a decompression or parser
//! blow-up would; the consumer (`kuroko_content::worker::Worker`) counts that as
//! `crashed`. The same object in a worker with the default 1 GiB is extracted (cut at
//! the 1 MiB text limit), and the small object after it too.

use anyhow::{Context, ensure};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn request(kind: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut v = serde_json::to_vec(&serde_json::json!({
        "kind": kind, "content_type": content_type, "name": "big.txt", "len": bytes.len(),
    }))
    .expect("json");
    v.push(b'\n');
    v.extend_from_slice(bytes);
    v
}

fn vm_size_kib(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmSize")
}

/// Sends `objects` to a new worker with `memory` (bytes, or the default); returns the
/// answers it gave before its stdout closed and how it exited.
fn run_worker(
    memory: Option<u64>,
    objects: &[Vec<u8>],
) -> anyhow::Result<(Vec<serde_json::Value>, std::process::ExitStatus)> {
    let bin = kuroko_tests::kuroko::binary()?;
    let mut cmd = Command::new(&bin);
    cmd.arg("content-worker");
    if let Some(m) = memory {
        cmd.args(["--memory", &m.to_string()]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut answers = Vec::new();
    for o in objects {
        if stdin.write_all(o).and_then(|_| stdin.flush()).is_err() {
            break;
        }
        let mut line = String::new();
        if out.read_line(&mut line)? == 0 {
            break;
        }
        answers.push(serde_json::from_str(&line)?);
    }
    drop(stdin);
    let status = child.wait()?;
    Ok((answers, status))
}

#[test]
fn an_object_past_the_memory_limit_kills_only_its_worker() -> anyhow::Result<()> {
    // The worker's own size when idle (the binary mapped, nothing extracted yet).
    let bin = kuroko_tests::kuroko::binary()?;
    let mut idle = Command::new(&bin)
        .arg("content-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    // Wait for its first answer so that it has set its limits and is idle.
    let mut stdin = idle.stdin.take().context("stdin")?;
    stdin.write_all(&request("ftp", "text/plain", b"hello"))?;
    stdin.flush()?;
    let mut line = String::new();
    BufReader::new(idle.stdout.take().context("stdout")?).read_line(&mut line)?;
    let base = vm_size_kib(idle.id())? * 1024;
    drop(stdin);
    idle.wait()?;

    let (sentence, _, _) =
        encoding_rs::SHIFT_JIS.encode("口座が凍結されました。ご本人確認をお願いします。");
    let sjis = sentence.repeat((12 << 20) / sentence.len());
    let big = request("ftp", "text/plain; charset=shift_jis", &sjis);
    let small = request("ftp", "text/plain", "最後の文書".as_bytes());

    let (answers, status) = run_worker(Some(base + (24 << 20)), &[big.clone(), small.clone()])?;
    ensure!(
        answers.is_empty(),
        "the limited worker died before answering: {answers:?}"
    );
    ensure!(!status.success(), "it died: {status:?}");

    let (answers, status) = run_worker(None, &[big, small])?;
    ensure!(status.success(), "{status:?}");
    ensure!(answers.len() == 2, "{answers:?}");
    let first = &answers[0]["result"]["Ok"];
    ensure!(first["truncated"] == true, "cut at the text limit: {first}");
    ensure!(
        first["texts"][0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("口座が凍結")),
        "decoded from Shift_JIS"
    );
    ensure!(
        answers[1]["result"]["Ok"]["texts"][0]["text"] == "最後の文書",
        "{}",
        answers[1]
    );
    Ok(())
}

/// A PDF whose one content stream is `len` bytes of path operators: extracting it is one
/// step of the PDF reader (the time limit is checked between streams), which keeps the
/// worker busy for as long as the stream is long.
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

/// The content consumer (`kuroko_index::content::ingest`, as `kuroko analyze` runs it)
/// with the real `kuroko content-worker` started as the kuroko binary starts it
/// (`--time-ms` from `[content] time_limit`, a grace of the limit itself when under 2 s),
/// over a session log of three FTP transfers: a text, a PDF that keeps the extractor busy
/// inside one step far longer than the 100 ms limit, another text. The busy worker is
/// killed by pid once its CPU time passes limit and grace, counted `killed`, and only that
/// object is lost: both texts are indexed, by the next worker.
#[test]
fn a_worker_past_the_time_limit_is_killed_and_only_its_object_is_lost() -> anyhow::Result<()> {
    use kuroko_model::session::{Endpoint, FileRef};
    use kuroko_model::{SessionRecord, Timestamp};
    use std::time::Duration;
    let tmp = tempfile::tempdir()?;
    let data = tmp.path();
    let objects: [(&str, &str, Vec<u8>); 3] = [
        (
            "first.txt",
            "text/plain; charset=utf-8",
            "最初の文書です".as_bytes().to_vec(),
        ),
        ("slow.pdf", "application/pdf", slow_pdf(30 << 20)),
        (
            "last.txt",
            "text/plain; charset=utf-8",
            "最後の文書です".as_bytes().to_vec(),
        ),
    ];
    let mut log = kuroko_model::sessionlog::SessionLogWriter::open(&data.join("sessions"))?;
    for (i, (name, ctype, bytes)) in objects.iter().enumerate() {
        let sha = format!("{:064x}", 0xf00d + i);
        let dir = data.join("files").join(&sha[..2]);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{}.bin", &sha[2..])), bytes)?;
        let mut r = SessionRecord::new(
            format!("ftp-{i}"),
            Timestamp(1_795_219_200_000_000_000 + i as i64 * 1_000_000_000),
            "tcp",
            Endpoint::new("10.10.1.10".parse()?, 40_000 + i as u16),
            Endpoint::new("10.10.2.21".parse()?, 20),
        );
        r.protocol = "ftp-data".into();
        r.files = vec![FileRef {
            sha256: sha,
            name: Some(name.to_string()),
            content_type: Some(ctype.to_string()),
            bytes: bytes.len() as u64,
            direction: "upload".into(),
            kind: "ftp".into(),
            ..Default::default()
        }];
        log.append(&r)?;
    }
    log.sync()?;
    drop(log);
    let mut config = kuroko_model::config::Config::default();
    config.content.time_limit = "100ms".into();
    let limit = config.content.time_limit().map_err(anyhow::Error::msg)?;
    let cmd = kuroko_content::worker::WorkerCommand {
        program: kuroko_tests::kuroko::binary()?,
        args: vec![
            "content-worker".into(),
            "--time-ms".into(),
            limit.as_millis().to_string(),
        ],
        grace: limit,
        stall: Duration::from_secs(120),
    };
    let t = std::time::Instant::now();
    let s = kuroko_index::content::ingest::ingest_pending_with(data, &config, Some(cmd))?;
    eprintln!("content catch-up took {:?}: {s:?}", t.elapsed());
    let index = kuroko_index::content::ContentIndex::open(data)?.context("content index")?;
    let counters = index.payload()?.counters;
    ensure!(
        counters.failures.get("killed") == Some(&1),
        "one worker killed: {counters:?}"
    );
    ensure!(
        counters
            .failures
            .iter()
            .all(|(k, n)| k == "killed" || *n == 0),
        "no other failure: {counters:?}"
    );
    ensure!(counters.objects == 2, "both texts extracted: {counters:?}");
    ensure!(index.len() == 2, "both texts indexed: {}", index.len());
    Ok(())
}
