//! Restart test of the real binary: `kuroko analyze` dies twice in the middle of a store
//! (once by abort, once by SIGKILL from outside, both without any cleanup), then runs to
//! the end. Every session must be in the session log exactly once, and the log must equal
//! the one of an uninterrupted run over the same store.

use anyhow::{Context, ensure};
use kuroko_analyzer::synth::{self, Params};
use kuroko_tests::kuroko::{DataDir, binary, store_relative_id};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const CONFIG: &str = "[storage]\nbudget = \"64MiB\"\nsegment_size = \"4MiB\"\n\n[analyzer]\nudp_idle_timeout = \"5s\"\ntcp_idle_timeout = \"10s\"\n";

fn summary(log: &[Value]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in log {
        // Two data dirs (reference and crashed) number their segments from different bases.
        let id = store_relative_id(s["id"].as_str().context("id")?);
        let what = format!(
            "{} {} {} {}",
            s["protocol"], s["packets"], s["bytes_up"], s["bytes_down"]
        );
        ensure!(
            out.insert(id.clone(), what).is_none(),
            "session {id} is in the log twice"
        );
    }
    Ok(out)
}

#[test]
fn analyze_killed_twice_then_resumed_logs_every_session_exactly_once() -> anyhow::Result<()> {
    let reference = DataDir::new("restart-ref", CONFIG)?;
    let crashy = DataDir::new("restart-crash", CONFIG)?;
    let pcap = reference.dir.parent().context("parent")?.join("mixed.pcap");
    let params = Params {
        target_bytes: 12 << 20,
        concurrency: 96,
        seed: 5,
        gap_ns: 400_000,
        ..Params::default()
    };
    let report = synth::generate(
        std::io::BufWriter::new(std::fs::File::create(&pcap)?),
        &params,
    )?;
    reference.import(&pcap)?;
    crashy.import(&pcap)?;
    reference.analyze()?;
    let expected = summary(&reference.session_log()?)?;
    ensure!(
        expected.len() as u64 == report.tcp_connections + report.dns,
        "reference run: {} sessions",
        expected.len()
    );

    let bin = binary()?;
    let args = |extra: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(["analyze", "--data"])
            .arg(&crashy.dir)
            .arg("--config")
            .arg(&crashy.config)
            .args(extra);
        c
    };
    // 1. Abort (no destructors, no flush) a third of the way in.
    let third = (report.packets / 3).to_string();
    let st = args(&[
        "--checkpoint-every-packets",
        "700",
        "--abort-after-packets",
        &third,
    ])
    .status()?;
    ensure!(!st.success(), "the aborting run must die ({st})");
    let after_abort = crashy.session_log()?.len();
    // 2. SIGKILL from outside once the checkpoint has moved on.
    let cp = crashy.dir.join("analyzer/checkpoint");
    let before = std::fs::read(&cp)?;
    let mut child = args(&["--checkpoint-every-packets", "300"]).spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(&cp).map(|b| b == before).unwrap_or(true) && Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let killed = child.wait()?;
    use std::os::unix::process::ExitStatusExt;
    ensure!(
        killed.signal() == Some(libc::SIGKILL),
        "the second run must die by SIGKILL mid-way ({killed})"
    );
    // 3. Run to the end.
    crashy.analyze()?;
    let got = summary(&crashy.session_log()?)?;
    assert_eq!(
        got, expected,
        "sessions after two crashes (log had {after_abort} after the first)"
    );
    Ok(())
}
