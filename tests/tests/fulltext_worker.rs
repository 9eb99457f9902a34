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
