//! Crash consistency of the reconstructed-files store (`files/`), which syncs once per
//! checkpoint instead of once per object: whatever a crash leaves, after the restart and a
//! run to the end every listed object reads back byte-identical under its SHA-256, its
//! metadata matches it, no file on disk is unlisted, and the budget the store counts is the
//! bytes on disk.
//!
//! Two kinds of crash, each several times in one data directory at seeded random points:
//! - a real `kill -9` of a child analyzer (this test binary re-run as its ignored
//!   `child_analyzer` test) at random times, mid-syscall included;
//! - an in-process stop without the final checkpoint, followed by what a power cut may
//!   leave of everything written since the last sync: every object file not covered by
//!   `objects.synced` is torn (cut to half), a `.tmp` of the older layout is left beside
//!   them, and `objects.log` gains records past its synced length (one whole, naming a torn
//!   object; one cut short), as a cut in the middle of a sync leaves it. A restart must not
//!   take a torn leftover for a stored object, and counts the dropped records.

use kuroko_analyzer::PcapSource;
use kuroko_analyzer::driver::{self, AnalyzeError, RunOptions};
use kuroko_analyzer::files::FileStore;
use kuroko_analyzer::synth::{self, Params};
use kuroko_model::config::Config;
use kuroko_model::objects::{self, ObjectMeta};
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CHILD_ENV: &str = "KUROKO_FILES_CRASH_CHILD";

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn pcap(dir: &Path) -> (PathBuf, synth::Report) {
    let path = dir.join("mixed.pcap");
    let params = Params {
        target_bytes: 20 << 20,
        concurrency: 48,
        seed: 11,
        gap_ns: 500_000,
        ..Params::default()
    };
    let f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
    let report = synth::generate(f, &params).unwrap();
    (path, report)
}

fn config(files_budget: &str) -> Config {
    let mut c = Config::default();
    c.analyzer.udp_idle_timeout = "5s".into();
    c.analyzer.tcp_idle_timeout = "10s".into();
    c.storage.files_budget = files_budget.into();
    c
}

fn run_to_end(data: &Path, pcap: &Path, config: &Config) {
    driver::run(
        data,
        config,
        &mut PcapSource::open(pcap).unwrap(),
        RunOptions::default(),
    )
    .unwrap();
}

/// `objects.log` as records with their end offsets (every line must be whole and its
/// checksum right), and the length `objects.synced` covers.
fn order(files: &Path) -> (Vec<(ObjectMeta, u64)>, u64) {
    let text = fs::read(files.join(objects::LOG)).unwrap_or_default();
    let synced = fs::read_to_string(files.join(objects::SYNCED))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let lines = objects::lines(&text)
        .map(|(start, l)| {
            let m = objects::decode_line(l).unwrap_or_else(|e| {
                panic!("objects.log line {:?}: {e:?}", String::from_utf8_lossy(l))
            });
            (m, start + l.len() as u64)
        })
        .collect();
    (lines, synced)
}

/// Regular files under the object subdirectories (`files/ab/…`).
fn object_files(files: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(files) else {
        return out;
    };
    for e in rd {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() && name.len() == 2 {
            for f in fs::read_dir(e.path()).unwrap() {
                out.push(f.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

/// Checks a finished run's store; returns its objects (`sha.ext` → bytes).
fn check_store(files: &Path, budget: u64) -> BTreeMap<String, u64> {
    let (lines, synced) = order(files);
    let log_len = fs::metadata(files.join(objects::LOG)).unwrap().len();
    assert_eq!(
        synced, log_len,
        "a finished run leaves its whole list synced"
    );
    let mut listed = BTreeMap::new();
    let mut expected_files = BTreeSet::new();
    for (meta, _) in &lines {
        let (sha, ext, bytes) = (&meta.sha256, &meta.ext, &meta.size);
        assert!(
            listed.insert(format!("{sha}.{ext}"), *bytes).is_none(),
            "{sha} listed twice"
        );
        let bin = files.join(&sha[..2]).join(format!("{}.{ext}", &sha[2..]));
        let content = fs::read(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert_eq!(content.len() as u64, *bytes, "{} size", bin.display());
        assert_eq!(
            hex::encode(Sha256::digest(&content)),
            *sha,
            "{} is not byte-identical to its digest",
            bin.display()
        );
        assert!(!meta.session.is_empty(), "{sha}: no session");
        assert!(!meta.kind.is_empty(), "{sha}: no kind");
        // Every reader's view (`Objects`) agrees with the log.
        let o = objects::Objects::at(files);
        assert_eq!(o.path(sha).as_ref(), Some(&bin));
        assert_eq!(o.meta(sha).as_ref(), Some(meta));
        expected_files.insert(bin);
    }
    let on_disk: BTreeSet<PathBuf> = object_files(files).into_iter().collect();
    let unlisted: Vec<_> = on_disk.difference(&expected_files).collect();
    assert!(unlisted.is_empty(), "files not in the list: {unlisted:?}");
    for e in fs::read_dir(files.join("spare")).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(
            fs::metadata(&p).unwrap().len(),
            0,
            "{} holds bytes",
            p.display()
        );
    }
    // The budget the store counts is the bytes of object files on disk.
    let disk_bytes: u64 = on_disk.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert_eq!(disk_bytes, listed.values().sum::<u64>());
    assert!(
        disk_bytes <= budget,
        "{disk_bytes} over the budget {budget}"
    );
    let store = FileStore::open(files, budget).unwrap();
    assert_eq!(
        store.used(),
        disk_bytes,
        "the budget accounting after a restart"
    );
    drop(store);
    assert_eq!(
        object_files(files).into_iter().collect::<BTreeSet<_>>(),
        on_disk,
        "opening a finished store deletes nothing"
    );
    listed
}

/// Digests of the objects the sessions in the log name.
fn session_objects(data: &Path) -> BTreeSet<String> {
    let r = SessionLogReader::open(&data.join("sessions")).unwrap();
    let mut out = BTreeSet::new();
    for x in r.read_from(LogPos::default()).unwrap() {
        let v = serde_json::to_value(x.unwrap().1).unwrap();
        let text = v.to_string();
        // Any 64-hex-digit string in the record is an object digest (files, ftp files).
        let b = text.as_bytes();
        let mut i = 0;
        while i + 64 <= b.len() {
            if b[i..i + 64]
                .iter()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                && (i + 64 == b.len() || !b[i + 64].is_ascii_hexdigit())
                && (i == 0 || !b[i - 1].is_ascii_hexdigit())
            {
                out.insert(text[i..i + 64].to_string());
                i += 64;
            } else {
                i += 1;
            }
        }
    }
    out
}

/// What a power cut may leave of the writes since the last sync (see the module docs).
/// Returns how many object files it tore and how many log records it added past the
/// synced length.
fn tear_unsynced(files: &Path) -> (usize, u64) {
    let (lines, synced) = order(files);
    let mut covered = BTreeSet::new();
    for (meta, end) in &lines {
        if *end <= synced {
            covered.insert(objects::object_path(files, &meta.sha256, &meta.ext));
        }
    }
    let mut torn = 0;
    let mut last_dir = None;
    let mut first_torn = None;
    for p in object_files(files) {
        if covered.contains(&p) {
            continue;
        }
        let len = fs::metadata(&p).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        last_dir = p.parent().map(Path::to_path_buf);
        first_torn.get_or_insert(p);
        torn += 1;
    }
    if let Some(d) = last_dir {
        fs::write(d.join("cut-short.tmp"), [0x55u8; 700]).unwrap();
    }
    // A sync cut between its log append and its mark: a whole record naming a torn object,
    // then one cut short.
    let mut tail = Vec::new();
    if let Some(p) = first_torn {
        let name = p.file_name().unwrap().to_str().unwrap();
        let (rest, ext) = name.split_once('.').unwrap();
        let dir = p.parent().unwrap().file_name().unwrap().to_str().unwrap();
        let meta = ObjectMeta {
            sha256: format!("{dir}{rest}"),
            ext: ext.into(),
            size: 1,
            session: "torn".into(),
            kind: "http-body".into(),
            ..Default::default()
        };
        objects::encode_line(&serde_json::to_vec(&meta).unwrap(), &mut tail);
        let whole = tail.len();
        objects::encode_line(&serde_json::to_vec(&meta).unwrap(), &mut tail);
        tail.truncate(whole + (tail.len() - whole) / 2);
    }
    let added = if tail.is_empty() { 0 } else { 2 };
    let mut log = fs::OpenOptions::new()
        .append(true)
        .open(files.join(objects::LOG))
        .unwrap();
    std::io::Write::write_all(&mut log, &tail).unwrap();
    (torn, added)
}

/// The analyzer's counters in its checkpoint.
fn counters(data: &Path) -> serde_json::Value {
    let cp: serde_json::Value =
        serde_json::from_slice(&fs::read(data.join("analyzer/checkpoint")).unwrap()).unwrap();
    cp["counters"].clone()
}

fn reference(dir: &Path, pcap: &Path, budget: &str) -> (BTreeMap<String, u64>, BTreeSet<String>) {
    let full = dir.join(format!("full-{budget}"));
    let config = config(budget);
    run_to_end(&full, pcap, &config);
    let b = config.storage.files_budget_bytes().unwrap();
    (check_store(&full.join("files"), b), session_objects(&full))
}

#[test]
fn power_cuts_between_checkpoints_leave_every_object_whole_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, report) = pcap(dir.path());
    for (budget, seed) in [("1GiB", 7u64), ("600KiB", 8)] {
        let cfg = config(budget);
        let bytes = cfg.storage.files_budget_bytes().unwrap();
        let (ref_objects, ref_named) = reference(dir.path(), &pcap, budget);
        assert!(
            ref_objects.len() >= if budget == "1GiB" { 100 } else { 5 },
            "{} objects",
            ref_objects.len()
        );
        let data = dir.path().join(format!("cut-{budget}"));
        let mut rng = Rng(seed);
        let mut torn_total = 0;
        let mut last_added = 0;
        for _ in 0..6 {
            let opts = RunOptions {
                checkpoint_every_packets: Some(8000 + rng.below(12000)),
                // Early enough that most runs are cut before they reach the end.
                stop_without_checkpoint_after: Some(1 + rng.below(report.packets / 3)),
                ..RunOptions::default()
            };
            // A run that resumes late in the pcap may reach its end before the cut: fine,
            // the next one starts from that end's checkpoint.
            match driver::run(&data, &cfg, &mut PcapSource::open(&pcap).unwrap(), opts) {
                Ok(_) | Err(AnalyzeError::StoppedForTest(_)) => {}
                Err(err) => panic!("{err}"),
            }
            let (t, r) = tear_unsynced(&data.join("files"));
            torn_total += t;
            last_added = r;
        }
        assert!(torn_total > 0, "no crash left anything unsynced to tear");
        run_to_end(&data, &pcap, &cfg);
        // The records the last tear added past the synced length were dropped and counted
        // (earlier ones too, when a checkpoint followed them), none taken as damage.
        let c = counters(&data);
        assert!(c["files_log_torn"].as_u64().unwrap() >= last_added, "{c}");
        assert_eq!(c["files_log_damaged"], 0, "{c}");
        let got = check_store(&data.join("files"), bytes);
        let named = session_objects(&data);
        if budget == "1GiB" {
            // Nothing evicted: the same objects as one uninterrupted run, and every object a
            // session names is there.
            assert_eq!(got, ref_objects);
            assert_eq!(named, ref_named);
            for sha in &named {
                assert!(
                    got.keys().any(|k| k.starts_with(sha.as_str())),
                    "{sha} missing"
                );
            }
        } else {
            assert!(ref_objects.values().sum::<u64>() <= bytes);
            assert!(!got.is_empty());
        }
    }
}

#[test]
fn kill_9_at_random_times_leaves_every_object_whole_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, report) = pcap(dir.path());
    let budget = "600KiB";
    let cfg = config(budget);
    let bytes = cfg.storage.files_budget_bytes().unwrap();
    // How long one run takes here, to spread the kills over it.
    let t0 = std::time::Instant::now();
    let (ref_objects, _) = reference(dir.path(), &pcap, budget);
    let run_ms = t0.elapsed().as_millis() as u64;
    assert!(!ref_objects.is_empty());
    let data = dir.path().join("killed");
    let mut rng = Rng(0x9e37_79b9);
    let (mut sigkill, mut sigabrt) = (0, 0);
    for _ in 0..8 {
        // Each child dies by SIGKILL at a random time or, if that comes later, by abort(3)
        // (no destructor, no flush: the same as kill -9 for the files) at a random packet.
        let abort_after = 1 + rng.below(report.packets / 2);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_analyzer", "--ignored", "--nocapture"])
            .env(
                CHILD_ENV,
                format!("{}\n{}\n{abort_after}", data.display(), pcap.display()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(10 + rng.below(run_ms.max(100) / 2)));
        let _ = child.kill(); // SIGKILL; fails only if it is already dead
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(libc::SIGKILL) => sigkill += 1,
            Some(libc::SIGABRT) => sigabrt += 1,
            _ => panic!("the child must die mid-run: {status}"),
        }
    }
    // Which one came first depends on the machine's speed; both leave what kill -9 leaves.
    eprintln!("{sigkill} children killed by SIGKILL, {sigabrt} aborted");
    run_to_end(&data, &pcap, &cfg);
    check_store(&data.join("files"), bytes);
}

/// The child side of `kill_9_at_random_times…`: an analyzer run over the pcap into the data
/// directory given in the environment, to be killed (or to abort after the packets given).
#[test]
#[ignore = "run by kill_9_at_random_times_leaves_every_object_whole_and_counted"]
fn child_analyzer() {
    let spec = std::env::var(CHILD_ENV).expect("run by the kill -9 test");
    let f: Vec<&str> = spec.split('\n').collect();
    let opts = RunOptions {
        checkpoint_every_packets: Some(3000),
        abort_after_packets: Some(f[2].parse().unwrap()),
        ..RunOptions::default()
    };
    let cfg = config("600KiB");
    driver::run(
        Path::new(f[0]),
        &cfg,
        &mut PcapSource::open(Path::new(f[1])).unwrap(),
        opts,
    )
    .unwrap();
}
