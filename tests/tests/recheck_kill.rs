//! Re-checks of the past killed with SIGKILL (issue 18): a store of sessions and stored
//! files is analyzed while no intel and no YARA rule knows them; then a Feodo pack is
//! imported and a YARA rule added, and the re-checks (`kuroko intel recheck`, `kuroko yara
//! recheck`, committing every few records) are killed with SIGKILL at random points,
//! several times, each time started again by hand as a technician would. At the end, the
//! findings are exactly those of the same re-checks run once without a kill on a copy of
//! the store: every session counted once, none twice.
//!
//! 100 sessions of one client go to the listed C2 address and ~48 carry a file the rule
//! matches, far more than the 32 evidence sessions a finding keeps: "already counted"
//! cannot be read from the evidence.
//!
//! The kill points are random (the seed is printed; `KT_SEED` repeats a run) and spread
//! over the duration of the reference run measured in the same test; the test asserts on
//! the findings only, never on when the kills landed.

use anyhow::{Context, ensure};
use kuroko_model::session::{Endpoint, FileRef, PacketSpan};
use kuroko_model::sessionlog::SessionLogWriter;
use kuroko_model::{SessionRecord, Timestamp};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SESSIONS: u64 = 1000;
const C2: &str = "198.51.100.7";
const MARK: &[u8] = b"KUROKO-RETRO-KILL-5d1e77";
const RULE: &str = "rule Kuroko_Retro_Kill {\n  meta:\n    kuroko_level = \"A\"\n  strings:\n    $m = \"KUROKO-RETRO-KILL-5d1e77\"\n  condition:\n    $m\n}\n";
const FEODO: &str = "################################################################\n\
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #\n\
# Last updated: 2026-12-06 08:05:04 UTC                        #\n\
################################################################\n\
#\n\
# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
\"2026-11-17 07:44:46\",\"198.51.100.7\",\"443\",\"online\",\"2026-12-06\",\"Dridex\"\n";
const KILLS: usize = 4;

struct Dir {
    base: PathBuf,
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::env::var_os("KT_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

/// `kuroko PRE… --data DIR --config FILE POST…`.
fn kuroko(pre: &[&str], data: &Path, config: &Path, post: &[&str]) -> Command {
    let mut c = Command::new(kuroko_tests::kuroko::binary().expect("kuroko binary"));
    c.args(pre)
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(post);
    c
}

/// `kuroko intel recheck` / `kuroko yara recheck`, committing every `every` records.
fn recheck(which: &str, data: &Path, config: &Path, every: &str) -> Command {
    match which {
        "intel" => kuroko(
            &["intel"],
            data,
            config,
            &["recheck", "--commit-every", every],
        ),
        _ => kuroko(
            &["yara", "recheck"],
            data,
            config,
            &["--commit-every", every],
        ),
    }
}

fn run_ok(mut c: Command) -> anyhow::Result<String> {
    let out = c.output()?;
    ensure!(out.status.success(), "{c:?} failed: {out:?}");
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// (intel_match sessions, yara_match sessions) summed over findings.
fn counts(data: &Path, config: &Path) -> anyhow::Result<(u64, u64)> {
    let out = run_ok(kuroko(
        &["findings"],
        data,
        config,
        &["--format", "jsonl", "--lang", "en"],
    ))?;
    let f = kuroko_tests::kuroko::parse_jsonl(&out)?;
    let sum = |rule: &str| {
        f.iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| f["count"].as_u64().unwrap_or(0))
            .sum()
    };
    Ok((sum("intel_match"), sum("yara_match")))
}

/// The session log and the stored objects: every 10th session goes to the C2; every 7th
/// carries a stored file, every 3rd of which holds the marker. Returns the number of
/// sessions with a marked file.
fn write_store(data: &Path) -> anyhow::Result<u64> {
    let mut w = SessionLogWriter::open(&data.join("sessions"))?;
    let t0 = 1_795_000_000_000_000_000i64;
    let mut marked = 0;
    for i in 0..SESSIONS {
        let server = if i % 10 == 0 { C2 } else { "93.184.216.34" };
        let t = Timestamp(t0 + i as i64 * 1_000_000_000);
        let mut s = SessionRecord::new(
            format!("{i:016x}-0-0"),
            t,
            "tcp",
            Endpoint::new("10.0.0.5".parse()?, 40_000 + (i % 20_000) as u16),
            Endpoint::new(server.parse()?, 443),
        );
        s.protocol = "http".into();
        s.end = Timestamp(t.nanos() + 500_000_000);
        s.bytes_up = 300;
        s.bytes_down = 4_000;
        s.packets = 12;
        s.span = PacketSpan {
            first_segment: 1,
            last_segment: 1,
        };
        if i % 7 == 0 {
            let mut body = format!("object {i} ").repeat(200).into_bytes();
            if i % 3 == 0 {
                body.extend_from_slice(MARK);
                marked += 1;
            }
            let sha = kuroko_analyzer::files::digest(&body);
            let dir = data.join("files").join(&sha[..2]);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(format!("{}.bin", &sha[2..])), &body)?;
            s.files.push(FileRef {
                sha256: sha,
                name: Some(format!("f{i}.bin")),
                bytes: body.len() as u64,
                direction: "download".into(),
                kind: "http-body".into(),
                ..Default::default()
            });
        }
        w.append(&s)?;
    }
    w.sync()?;
    Ok(marked)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    ensure!(st.success(), "cp -a {} {}", from.display(), to.display());
    Ok(())
}

/// xorshift64*, seeded from the clock unless `KT_SEED` says.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn intel_and_yara_rechecks_killed_at_random_points_count_every_session_once() -> anyhow::Result<()>
{
    let base = std::env::temp_dir().join(format!("kt-{}-recheck-kill", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base)?;
    let _guard = Dir { base: base.clone() };
    let data = base.join("data");
    let rules = base.join("rules");
    std::fs::create_dir_all(&rules)?;
    let config = base.join("kuroko.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\nyara_rules = [\"{}\"]\n",
            rules.to_str().context("utf-8")?
        ),
    )?;
    let marked = write_store(&data)?;
    // Day 1: the detections read everything; nothing is known yet.
    assert_eq!(counts(&data, &config)?, (0, 0));

    // Day 9: the Feodo list and the rule arrive.
    let pack = base.join("pack");
    std::fs::create_dir_all(&pack)?;
    std::fs::write(pack.join("ipblocklist.csv"), FEODO)?;
    run_ok(kuroko(
        &["intel"],
        &data,
        &config,
        &["import", pack.to_str().context("utf-8")?],
    ))?;
    std::fs::write(rules.join("late.yar"), RULE)?;

    // The reference: the same re-checks on a copy, never killed.
    let reference = base.join("reference");
    copy_dir(&data, &reference)?;
    let t = Instant::now();
    run_ok(recheck("intel", &reference, &config, "20"))?;
    run_ok(recheck("yara", &reference, &config, "20"))?;
    let took = t.elapsed().max(Duration::from_millis(50));
    let want = counts(&reference, &config)?;
    assert_eq!(want, (SESSIONS / 10, marked), "the reference run");

    // Killed at random points, started again each time.
    let seed = kuroko_tests::seed::from_env();
    eprintln!("seed {seed} (KT_SEED repeats it); reference run {took:?}");
    let mut rng = Rng(seed);
    let mut killed_mid_way = 0;
    for k in 0..KILLS {
        let which = if k % 2 == 0 { "intel" } else { "yara" };
        let mut child = recheck(which, &data, &config, "20")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let wait = Duration::from_micros(rng.next() % (took.as_micros() as u64).max(1));
        std::thread::sleep(wait);
        // `Child::kill` sends SIGKILL.
        let finished = child.try_wait()?.is_some();
        child.kill().ok();
        child.wait()?;
        let st: Value = serde_json::from_str(&run_ok(kuroko(
            &["status"],
            &data,
            &config,
            &["--format", "json"],
        ))?)?;
        let pending = st["intel"]["recheck_pending"].as_u64().unwrap_or(0)
            + st["yara"]["recheck_pending"].as_u64().unwrap_or(0);
        if !finished && pending > 0 {
            killed_mid_way += 1;
        }
        eprintln!(
            "kill {k} ({which}) after {wait:?}: finished {finished}, {pending} re-checks pending"
        );
    }
    eprintln!("{killed_mid_way} of {KILLS} kills landed in the middle of a re-check");
    // Resumed to the end.
    run_ok(recheck("intel", &data, &config, "20"))?;
    run_ok(recheck("yara", &data, &config, "20"))?;
    let got = counts(&data, &config)?;
    assert_eq!(
        got, want,
        "every session once after {KILLS} kills (seed {seed})"
    );
    Ok(())
}
