//! Fault suite, analyzer and consumers (issue 22): the real `kuroko` binary on an imported
//! store, hurt the way an operator or an unlucky appliance would hurt it:
//! - two `kuroko analyze` at once on one data directory;
//! - consumers (index, detections) whose cursor the session log no longer holds;
//! - kill -9 of the analyzer at seeded random points, before and after its first
//!   checkpoint;
//! - ENOSPC in the session log (a small tmpfs), then space freed and a rerun.
//!
//! Afterwards every session is in the log exactly once, `search --count '*'` and the
//! report's "Sessions analyzed" equal the log, and the findings equal findings rebuilt
//! from the log from scratch.

use anyhow::{Context, bail, ensure};
use kuroko_analyzer::synth::{self, Params};
use kuroko_tests::kuroko::{DataDir, binary};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = "[storage]\nbudget = \"64MiB\"\nsegment_size = \"4MiB\"\n\n[analyzer]\nudp_idle_timeout = \"5s\"\ntcp_idle_timeout = \"10s\"\n";

/// A synthetic pcap imported into `d`; returns how many packets it holds.
fn imported(d: &DataDir, bytes: u64, seed: u64) -> anyhow::Result<u64> {
    let pcap = d.dir.parent().context("parent")?.join("in.pcap");
    let params = Params {
        target_bytes: bytes,
        concurrency: 64,
        seed,
        gap_ns: 400_000,
        ..Params::default()
    };
    let report = synth::generate(
        std::io::BufWriter::new(std::fs::File::create(&pcap)?),
        &params,
    )?;
    d.import(&pcap)?;
    Ok(report.packets)
}

/// The analysis state of `d` (not the store).
const STATE: [&str; 5] = ["analyzer", "sessions", "index", "findings", "evidence"];

/// The session ids of an uninterrupted analysis of `d`'s store; then the analysis state is
/// removed again, so the fault run starts from the same imported store.
fn reference_then_wipe(d: &DataDir) -> anyhow::Result<BTreeSet<String>> {
    d.analyze()?;
    let ids = log_ids(d)?;
    ensure!(!ids.is_empty(), "the reference run found no sessions");
    for sub in STATE {
        let _ = std::fs::remove_dir_all(d.dir.join(sub));
    }
    Ok(ids)
}

fn analyze_cmd(d: &DataDir, extra: &[&str]) -> anyhow::Result<Command> {
    let mut c = Command::new(binary()?);
    c.args(["analyze", "--data"])
        .arg(&d.dir)
        .arg("--config")
        .arg(&d.config)
        .args(extra)
        .stdin(Stdio::null());
    Ok(c)
}

/// Ids of the session log, failing on a duplicate.
fn log_ids(d: &DataDir) -> anyhow::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for s in d.session_log()? {
        let id = s["id"].as_str().context("id")?.to_string();
        ensure!(ids.insert(id.clone()), "session {id} is in the log twice");
    }
    Ok(ids)
}

/// The report's "Sessions analyzed" number (English HTML).
fn report_sessions(d: &DataDir) -> anyhow::Result<u64> {
    let out = d.dir.parent().context("parent")?.join("report.html");
    d.kuroko(
        "report",
        &["--lang", "en", "--out", out.to_str().context("utf-8")?],
    )?;
    let html = std::fs::read_to_string(&out)?;
    let at = html
        .find("Sessions analyzed")
        .context("no \"Sessions analyzed\" in the report")?;
    let digits: String = html[at..]
        .split('>')
        .skip(1)
        .map(|part| part.split('<').next().unwrap_or(""))
        .find(|t| t.chars().any(|c| c.is_ascii_digit()))
        .context("no number after \"Sessions analyzed\"")?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    Ok(digits.parse()?)
}

/// The findings, and the findings rebuilt from the session log from scratch.
fn findings_and_rebuilt(d: &DataDir) -> anyhow::Result<(String, String)> {
    let now = d.kuroko("findings", &["--format", "jsonl"])?;
    let moved = d.dir.join("findings.moved");
    let _ = std::fs::remove_dir_all(&moved);
    std::fs::rename(d.dir.join("findings"), &moved)?;
    // Nothing new for the analyzer: only the consumers catch up (findings from the start).
    d.analyze()?;
    let rebuilt = d.kuroko("findings", &["--format", "jsonl"])?;
    Ok((now, rebuilt))
}

/// Every session of the reference run exactly once in the log, the index, the report and
/// the findings.
fn assert_exactly_once(d: &DataDir, reference: &BTreeSet<String>) -> anyhow::Result<()> {
    let ids = log_ids(d)?;
    ensure!(
        &ids == reference,
        "the log holds {} sessions, an uninterrupted run {}; missing {:?}, extra {:?}",
        ids.len(),
        reference.len(),
        reference.difference(&ids).take(5).collect::<Vec<_>>(),
        ids.difference(reference).take(5).collect::<Vec<_>>()
    );
    let expected = ids.len() as u64;
    let searched: u64 = d.kuroko("search", &["--count", "*"])?.trim().parse()?;
    ensure!(
        searched == expected,
        "`search --count '*'` says {searched}, the log holds {expected}"
    );
    let reported = report_sessions(d)?;
    ensure!(
        reported == expected,
        "the report says {reported} sessions, the log holds {expected}"
    );
    let (findings, rebuilt) = findings_and_rebuilt(d)?;
    ensure!(
        findings == rebuilt,
        "findings differ from findings rebuilt from the log:\n{findings}\n---\n{rebuilt}"
    );
    Ok(())
}

fn wait_output(child: Child) -> anyhow::Result<Output> {
    Ok(child.wait_with_output()?)
}

#[test]
fn two_analyzers_at_once_one_is_refused_naming_the_other() -> anyhow::Result<()> {
    let d = DataDir::new("fa-two", CONFIG)?;
    imported(&d, 12 << 20, 21)?;
    let expected = reference_then_wipe(&d)?;
    // Frequent checkpoints keep the first one busy long enough for the second to start.
    let piped = |mut c: Command| {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn()
    };
    let first = piped(analyze_cmd(&d, &["--checkpoint-every-packets", "500"])?)?;
    let first_pid = first.id();
    // Started for sure (it made its session log), and still running.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.dir.join("sessions").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = piped(analyze_cmd(&d, &[])?)?;
    let second_pid = second.id();
    let (a, b) = (wait_output(first)?, wait_output(second)?);
    let text = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    eprintln!(
        "first ({first_pid}): {}\nsecond ({second_pid}): {}",
        a.status, b.status
    );
    // The data first: what the operator's second run did to the appliance's analysis.
    let check = assert_exactly_once(&d, &expected);
    let refused = [(&a, second_pid), (&b, first_pid)]
        .into_iter()
        .filter(|(o, other)| {
            !o.status.success() && text(o).contains(&format!("another analyzer (pid {other})"))
        })
        .count();
    check?;
    if refused != 1 {
        bail!(
            "exactly one of two concurrent analyzers must be refused naming the other's pid\n\
             first ({first_pid}, {}): {}\nsecond ({second_pid}, {}): {}",
            a.status,
            text(&a),
            b.status,
            text(&b)
        );
    }
    Ok(())
}

/// Cuts the session log back to its first `keep` records and publishes that end: what
/// two analyzers writing at once left behind (consumers' cursors past the log's end).
fn cut_log(d: &DataDir, keep: usize) -> anyhow::Result<()> {
    let dir = d.dir.join("sessions");
    let path = dir.join("00000000.jsonl");
    let text = std::fs::read_to_string(&path)?;
    let len: usize = text.split_inclusive('\n').take(keep).map(str::len).sum();
    std::fs::write(&path, &text[..len])?;
    std::fs::write(dir.join("published"), format!("0 {len}\n"))?;
    Ok(())
}

#[test]
fn consumers_whose_cursor_the_log_lost_rebuild_instead_of_sitting_still() -> anyhow::Result<()> {
    let d = DataDir::new("fa-cursor", CONFIG)?;
    imported(&d, 4 << 20, 22)?;
    d.analyze()?;
    let expected = log_ids(&d)?;
    assert_exactly_once(&d, &expected)?;
    // 1. The log cut back under the index and the findings.
    let keep = expected.len() / 2;
    cut_log(&d, keep)?;
    d.analyze()?;
    let searched: u64 = d.kuroko("search", &["--count", "*"])?.trim().parse()?;
    ensure!(
        searched == keep as u64,
        "index after the log was cut to {keep}: {searched} sessions"
    );
    let (findings, rebuilt) = findings_and_rebuilt(&d)?;
    ensure!(
        findings == rebuilt,
        "findings after the cut: {findings}\n---\n{rebuilt}"
    );
    // 2. The analyzer's checkpoint moved away to re-analyze the store from the start (what
    // the checkpoint error message tells an operator to do): the log is started over once,
    // and the consumers follow the new log instead of keeping the old one's sessions.
    std::fs::rename(
        d.dir.join("analyzer/checkpoint"),
        d.dir.join("analyzer/checkpoint.moved"),
    )?;
    d.analyze()?;
    assert_exactly_once(&d, &expected)
}

/// A tiny xorshift, so the kill points are the same on every run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn kill_9_at_random_points_before_and_after_the_first_checkpoint() -> anyhow::Result<()> {
    let d = DataDir::new("fa-kill", CONFIG)?;
    // Big enough that the log passes the writer's 256 KiB buffer before the first
    // checkpoint, so a dead run leaves records on disk.
    let packets = imported(&d, 24 << 20, 23)?;
    let expected = reference_then_wipe(&d)?;
    let cp = d.dir.join("analyzer/checkpoint");
    let mut rng = Rng(0x6b75_726f_6b6f_2222);
    // SIGKILL from outside as soon as the log holds records on disk while no checkpoint
    // exists yet: the run after it must not write them twice.
    let mut before_first = 0;
    let log0 = d.dir.join("sessions/00000000.jsonl");
    let mut child = analyze_cmd(&d, &[])?.stderr(Stdio::null()).spawn()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && child.try_wait()?.is_none() && !cp.exists() {
        if std::fs::metadata(&log0).is_ok_and(|m| m.len() > 0) {
            before_first += 1;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait()?;
    for round in 0..6 {
        // The first rounds abort half-way, past the log writer's first flush and usually
        // before the first checkpoint (wall-clock interval 5 s); the later ones checkpoint
        // every few hundred packets and abort anywhere.
        let (at, mut args) = if round < 3 {
            (packets / 10 * 4 + rng.below(packets / 5), vec![])
        } else {
            (
                1 + rng.below(packets - 1),
                vec!["--checkpoint-every-packets", "300"],
            )
        };
        let at = at.to_string();
        args.extend(["--abort-after-packets", at.as_str()]);
        if !cp.exists() {
            before_first += 1;
        }
        let st = analyze_cmd(&d, &args)?.stderr(Stdio::null()).status()?;
        if st.success() {
            // A checkpoint moved the start past the abort point: this run finished.
            break;
        }
        // A reader in between, as on the appliance (it may find no index yet).
        let _ = d.kuroko("search", &["--count", "*"]);
    }
    ensure!(
        before_first >= 2,
        "only {before_first} kills before the first checkpoint"
    );
    d.analyze()?;
    assert_exactly_once(&d, &expected)
}

/// A tmpfs of `size` mounted on `dir`, unmounted on drop.
struct Tmpfs(PathBuf);
impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(dir)?;
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "kt-enospc"])
            .arg(dir)
            .status()?;
        ensure!(st.success(), "mount tmpfs on {} failed", dir.display());
        Ok(Tmpfs(dir.to_path_buf()))
    }
    fn resize(&self, size: &str) -> anyhow::Result<()> {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()?;
        ensure!(st.success(), "remount failed");
        Ok(())
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn enospc_in_the_session_log_then_space_freed() -> anyhow::Result<()> {
    let d = DataDir::new("fa-enospc", CONFIG)?;
    imported(&d, 4 << 20, 24)?;
    let expected = reference_then_wipe(&d)?;
    let fs = Tmpfs::mount(&d.dir.join("sessions"), "96k")?;
    let out = analyze_cmd(&d, &[])?.output()?;
    ensure!(
        !out.status.success(),
        "analyze must fail when the session log is full"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("No space left"), "not an ENOSPC error: {err}");
    // Once more on the full disk, then space freed and a run to the end.
    let _ = analyze_cmd(&d, &[])?.output()?;
    fs.resize("64m")?;
    d.analyze()?;
    let r = assert_exactly_once(&d, &expected);
    drop(fs);
    r
}

#[test]
fn a_packet_that_kills_every_run_is_skipped_and_counted_not_replayed_forever() -> anyhow::Result<()>
{
    let d = DataDir::new("fa-poison", CONFIG)?;
    imported(&d, 4 << 20, 25)?;
    let reference = reference_then_wipe(&d)?;
    let expected = reference.len() as u64;
    // The first packet of a session in the middle of the store is the poison.
    let poison = reference
        .iter()
        .nth(reference.len() / 2)
        .context("id")?
        .clone();
    let mut deaths = 0;
    let mut finished = false;
    for _ in 0..12 {
        let st = analyze_cmd(&d, &["--abort-at-packet", &poison])?
            .stderr(Stdio::null())
            .status()?;
        if st.success() {
            finished = true;
            break;
        }
        deaths += 1;
    }
    ensure!(
        finished,
        "the analyzer died {deaths} times on one packet and never got past it"
    );
    ensure!(deaths >= 3, "only {deaths} deaths before the skip");
    let status: serde_json::Value =
        serde_json::from_str(&d.kuroko("status", &["--format", "json"])?)?;
    let c = &status["analyzer"]["counters"];
    ensure!(c["crash_loop_skips"] == 1, "status counters: {c}");
    let skipped = c["packets_skipped_after_crashes"]
        .as_u64()
        .context("skipped")?;
    ensure!(
        (1..=256).contains(&skipped),
        "{skipped} packets skipped for one poison packet"
    );
    let ids = log_ids(&d)?;
    ensure!(
        ids.len() as u64 + 16 >= expected,
        "{} sessions left of {expected} after skipping {skipped} packets",
        ids.len()
    );
    let searched: u64 = d.kuroko("search", &["--count", "*"])?.trim().parse()?;
    ensure!(
        searched == ids.len() as u64,
        "search {searched}, log {}",
        ids.len()
    );
    ensure!(
        report_sessions(&d)? == searched,
        "report and search disagree"
    );
    Ok(())
}
