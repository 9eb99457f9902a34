//! The store on a real file system that fails (issue 22, "Disk faults … also on a real
//! failing file system"): a FUSE pass-through (`tests/fixtures/eio_fs.py`, fusepy) that
//! returns EIO for chosen writes or fdatasyncs, mounted under the data directory, with the
//! segment files opened `direct_io` so the store's O_DIRECT and io_uring paths run as on a
//! disk. The real `kuroko import` and `kuroko capture` write into it; what the user sees
//! must say what was lost: exit codes, `status --format json` (write errors, damage,
//! alarms), `pcap` exit 3, and nothing counted as stored that is not on the disk.
//!
//! Skipped (with a message) only when `/dev/fuse` is missing; a missing fusepy or libfuse2
//! is a failure (`.ci/pip.txt`, `.ci/packages.txt` install them).

mod capture_common;

use capture_common::{CaptureSite, SRC_MAC, frame};
use kuroko_tests::proc::wait_until;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The pass-through file system, mounted at `mnt` (backed by a directory beside it).
struct EioFs {
    child: Option<Child>,
    mnt: PathBuf,
    plan: PathBuf,
    log: PathBuf,
}

fn fuse_available() -> bool {
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    eprintln!("SKIPPED: /dev/fuse is missing: no FUSE file system can be mounted here");
    false
}

impl EioFs {
    /// Mounts over `mnt` (created) with `plan` (see eio_fs.py); the backing directory,
    /// plan and log go in `work`.
    fn mount(work: &Path, mnt: &Path, plan: Value) -> EioFs {
        let back = work.join("fuse-back");
        std::fs::create_dir_all(&back).unwrap();
        std::fs::create_dir_all(mnt).unwrap();
        let script = kuroko_tests::kuroko::workspace_root().join("tests/fixtures/eio_fs.py");
        let mut fs = EioFs {
            child: None,
            mnt: mnt.to_path_buf(),
            plan: work.join("fuse-plan.json"),
            log: work.join("fuse.log"),
        };
        fs.set_plan(plan);
        let err = std::fs::File::create(work.join("fuse.stderr")).unwrap();
        // Debian's python3: fusepy is installed for it (.ci/pip.txt).
        let child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args([&back, mnt, &fs.plan, &fs.log])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("cannot start /usr/bin/python3 (see .ci/packages.txt)");
        fs.child = Some(child);
        let t0 = Instant::now();
        while !fs.mounted() {
            let exited = fs.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || t0.elapsed() > Duration::from_secs(20) {
                panic!(
                    "the FUSE file system did not mount ({exited:?}); is fusepy installed for \
                     /usr/bin/python3 (.ci/pip.txt) with libfuse2 (.ci/packages.txt)? {}",
                    std::fs::read_to_string(work.join("fuse.stderr")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        fs
    }

    fn mounted(&self) -> bool {
        let mnt = self.mnt.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(mnt.as_str()))
            && std::fs::read_to_string(&self.log).is_ok_and(|l| l.contains("mounted"))
    }

    /// Replaces the fault plan (read again by the file system at its next operation).
    fn set_plan(&self, plan: Value) {
        let tmp = self.plan.with_extension("tmp");
        std::fs::write(&tmp, plan.to_string()).unwrap();
        std::fs::rename(&tmp, &self.plan).unwrap();
    }

    /// EIO the file system returned: (writes, fsyncs).
    fn injected(&self) -> (usize, usize) {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        (
            log.lines().filter(|l| l.starts_with("write ")).count(),
            log.lines().filter(|l| l.starts_with("fsync ")).count(),
        )
    }
}

impl Drop for EioFs {
    fn drop(&mut self) {
        for args in [&["umount"][..], &["umount", "-l"][..]] {
            let ok = Command::new(args[0])
                .args(&args[1..])
                .arg(&self.mnt)
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
        }
        if let Some(mut c) = self.child.take() {
            let t0 = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const CONFIG: &str = "[storage]\nbudget = \"32MiB\"\nsegment_size = \"2MiB\"\n";
const FRAME_LEN: usize = 1000;
const T0: u32 = 1_780_000_000;

/// A classic pcap of `n` Ethernet frames of [`FRAME_LEN`] bytes (flow 1, sequence `i`),
/// one ms apart.
fn pcap(path: &Path, n: u16) {
    let mut b = Vec::new();
    b.extend(0xa1b2_c3d4u32.to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend(4u16.to_le_bytes());
    b.extend([0u8; 8]);
    b.extend(65535u32.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    for i in 0..n {
        let f = frame(1, i, FRAME_LEN, &[]);
        b.extend((T0 + u32::from(i) / 1000).to_le_bytes());
        b.extend((u32::from(i) % 1000 * 1000).to_le_bytes());
        b.extend((f.len() as u32).to_le_bytes());
        b.extend((f.len() as u32).to_le_bytes());
        b.extend(&f);
    }
    std::fs::write(path, b).unwrap();
}

fn kuroko(args: &[&std::ffi::OsStr]) -> Output {
    let bin = kuroko_tests::kuroko::binary().unwrap();
    let out = Command::new("timeout")
        .args(["-k", "5", "300"])
        .arg(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(124), "timed out: {args:?}");
    out
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn status_json(data: &Path) -> Value {
    let out = kuroko(&[
        os("status"),
        os("--format"),
        os("json"),
        os("--data"),
        data.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn alarm_kinds(st: &Value) -> Vec<String> {
    st["alarms"]["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["kind"].as_str().map(str::to_string))
        .collect()
}

/// Frames of flow 1 that `kuroko pcap` exports; its output.
fn exported(data: &Path, work: &Path) -> (usize, Output) {
    let out_pcap = work.join("export.pcap");
    let _ = std::fs::remove_file(&out_pcap);
    let out = kuroko(&[
        os("pcap"),
        os("--data"),
        data.as_os_str(),
        os("-w"),
        out_pcap.as_os_str(),
    ]);
    let b = std::fs::read(&out_pcap).unwrap_or_default();
    let mut n = 0;
    let mut at = 24;
    while at + 16 <= b.len() {
        let cap = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        let rec = &b[at + 16..(at + 16 + cap).min(b.len())];
        if rec.get(6..12) == Some(&SRC_MAC[..]) {
            n += 1;
        }
        at += 16 + cap;
    }
    (n, out)
}

/// The import of a file into a store whose disk fails segment writes part-way: `import`
/// must not exit 0. It exits with the documented partial status (3) and says how many
/// packets were stored and how many were lost; `status` counts the failed writes and the
/// damaged segment and raises `disk_write_errors`; `pcap` exports exactly the packets
/// status counts as stored (none that the disk refused) and exits 3.
#[test]
fn import_onto_a_disk_that_fails_writes_exits_partial_and_says_what_was_lost() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // Segment writes fail after 1 MiB + a bit: the second 1 MiB chunk of the first segment.
    let fs = EioFs::mount(
        work.path(),
        &data,
        json!({"suffixes": [".kseg"], "write_ok_bytes": 1_200_000}),
    );
    let config = work.path().join("kuroko.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let input = work.path().join("in.pcap");
    let n = 5000u16;
    pcap(&input, n);
    let out = kuroko(&[
        os("import"),
        os("--config"),
        config.as_os_str(),
        os("--data"),
        data.as_os_str(),
        input.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(fs.injected().0 >= 1, "no write failed: {err}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a failed disk write is a partial import (exit 3): {err}"
    );
    assert!(err.contains("disk"), "{err}");
    assert!(err.contains("lost"), "{err}");

    let st = status_json(&data);
    let s = &st["store"];
    assert!(s["write_errors"].as_u64().unwrap() >= 1, "{s}");
    let lost = s["write_error_packets"].as_u64().unwrap();
    let stored = s["stored_packets"].as_u64().unwrap();
    assert!(lost >= 1, "{s}");
    assert!(stored >= 1 && stored < u64::from(n), "{s}");
    assert!(s["damaged_segments"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        alarm_kinds(&st).contains(&"disk_write_errors".to_string()),
        "{st}"
    );
    // The message names the packets lost as status counts them.
    assert!(
        err.contains(&format!("{lost} packets lost")),
        "{lost}: {err}"
    );

    // Nothing counted as stored that is not: the export has exactly `stored` packets.
    let (got, out) = exported(&data, work.path());
    let perr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(got as u64, stored, "{perr}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "pcap over a damaged store: {perr}"
    );
    drop(fs);
}

/// The whole disk failing part-way through an import: `writer.state` (the writer's
/// counters, which `status` reads) sits on the failing disk too and cannot be rewritten.
/// `status` must still show the failure (the `store_counters_stale` alarm, the writer
/// state not `closed`), not `write_errors: 0` from the last state the disk took, and
/// nothing is counted as stored that is not on the disk.
#[test]
fn a_failing_disk_under_the_writers_state_file_is_still_visible_in_status() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let fs = EioFs::mount(work.path(), &data, json!({"suffixes": [""]}));
    let config = work.path().join("kuroko.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let small = work.path().join("small.pcap");
    pcap(&small, 1500);
    // A first import on a good disk: a store, a state file saying 0 errors, closed.
    let first = kuroko(&[
        os("import"),
        os("--config"),
        config.as_os_str(),
        os("--data"),
        data.as_os_str(),
        small.as_os_str(),
    ]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = status_json(&data);
    assert_eq!(before["store"]["write_errors"], 0, "{before}");
    assert_eq!(before["store"]["writer_state"], "closed", "{before}");
    // Now every write to any file (segments, writer.state, store.meta) fails after 1.2 MB.
    fs.set_plan(json!({"suffixes": [""], "write_ok_bytes": 1_200_000}));
    let input = work.path().join("in.pcap");
    pcap(&input, 5000);
    let out = kuroko(&[
        os("import"),
        os("--config"),
        config.as_os_str(),
        os("--data"),
        data.as_os_str(),
        input.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(fs.injected().0 >= 1, "no write failed: {err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    // The disk still fails: status reads what is there.
    let st = status_json(&data);
    let kinds = alarm_kinds(&st);
    assert!(
        kinds.contains(&"store_counters_stale".to_string()),
        "a failed disk under writer.state is silent: {st}"
    );
    assert_eq!(st["store"]["writer_state"], "not_closed", "{}", st["store"]);
    let (got, _) = exported(&data, work.path());
    assert_eq!(
        got as u64,
        st["store"]["stored_packets"].as_u64().unwrap(),
        "nothing is counted as stored that is not on the disk: {}",
        st["store"]
    );
    drop(fs);
}

/// Imports 5000 packets into `data` on a FUSE file system whose every fdatasync of a
/// segment fails (and only that); returns the file system, `import`'s output and its stderr.
fn import_with_failing_fdatasync(
    work: &Path,
    data: &Path,
) -> (EioFs, std::process::Output, String) {
    let fs = EioFs::mount(
        work,
        data,
        json!({"suffixes": [".kseg"], "sync_ok": 0, "datasync_only": true}),
    );
    let config = work.join("kuroko.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let input = work.join("in.pcap");
    pcap(&input, 5000);
    let out = kuroko(&[
        os("import"),
        os("--config"),
        config.as_os_str(),
        os("--data"),
        data.as_os_str(),
        input.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(fs.injected().1 >= 1, "no fdatasync failed: {err}");
    (fs, out, err)
}

/// An fdatasync the disk fails: the segment's data may not be on the disk, so it must not
/// be sealed as good. `import` exits 3 and says what it lost, `status` counts the write
/// error and the damaged segment and raises `disk_write_errors`.
#[test]
fn a_failed_fdatasync_during_import_is_a_partial_import_and_a_damaged_segment() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (fs, out, err) = import_with_failing_fdatasync(work.path(), &data);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let st = status_json(&data);
    let s = &st["store"];
    assert!(s["write_errors"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["damaged_segments"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        alarm_kinds(&st).contains(&"disk_write_errors".to_string()),
        "{st}"
    );
    // What was written stays readable (the failed fdatasync does not say which blocks
    // would survive a power cut): the export has exactly the packets status counts.
    let (got, _) = exported(&data, work.path());
    assert_eq!(got as u64, s["stored_packets"].as_u64().unwrap(), "{s}");
    assert!(
        err.contains(&format!(
            "{} packets lost",
            s["write_error_packets"].as_u64().unwrap()
        )),
        "{err}"
    );
    drop(fs);
}

/// Live capture into a store whose disk starts failing segment writes: the capture stops
/// loudly (non-zero exit, the error on stderr); `status` shows the write errors and the
/// packets lost, and every frame the capture took is stored or counted lost, none both.
#[test]
fn capture_onto_a_disk_that_starts_failing_stops_loudly_and_counts_the_loss() -> anyhow::Result<()>
{
    if !fuse_available() {
        return Ok(());
    }
    let site = CaptureSite::new("ffuse")?;
    let data = site.data();
    let fs = EioFs::mount(&site.dir.0, &data, json!({"suffixes": [".kseg"]}));
    let mut server = site.start_capture(&["--json"])?;
    let first: Vec<Vec<u8>> = (0..50u16).map(|i| frame(1, i, 1000, &[])).collect();
    site.tx
        .send_frames("vtx", &first, Duration::from_micros(200))?;
    site.wait_accounted(50)?;
    // Wait until the capture flushed them (idle flush), then fail every segment write.
    wait_until(
        "the first frames on the disk",
        Duration::from_secs(20),
        || {
            status_json(&data)["store"]["stored_packets"]
                .as_u64()
                .is_some_and(|n| n >= 50)
        },
    )?;
    fs.set_plan(json!({"suffixes": [".kseg"], "write_ok_bytes": 0}));
    let second: Vec<Vec<u8>> = (0..200u16).map(|i| frame(2, i, 1000, &[])).collect();
    site.tx
        .send_frames("vtx", &second, Duration::from_micros(200))?;
    // The capture stops on the failed write (kuroko run would restart it).
    let exit = {
        let t0 = Instant::now();
        loop {
            let st = status_json(&data);
            if alarm_kinds(&st).contains(&"capture_stopped".to_string())
                || t0.elapsed() > Duration::from_secs(30)
            {
                break server.stop_with(libc::SIGINT);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let log = server.log_text();
    assert!(fs.injected().0 >= 1, "no write failed: {log}");
    assert!(
        exit.is_some_and(|e| !e.success()),
        "capture exit {exit:?}: {log}"
    );
    assert!(
        log.contains("Input/output error") || log.contains("disk"),
        "{log}"
    );
    let st = status_json(&data);
    let s = &st["store"];
    let kinds = alarm_kinds(&st);
    assert!(kinds.contains(&"disk_write_errors".to_string()), "{st}");
    assert!(s["write_errors"].as_u64().unwrap() >= 1, "{s}");
    let lost = s["write_error_packets"].as_u64().unwrap();
    assert!(lost >= 1, "{s}");
    fs.set_plan(json!({"suffixes": [".kseg"]}));
    let (stored, _) = exported(&data, &site.dir.0);
    let stored = stored as u64;
    assert_eq!(
        stored,
        s["stored_packets"].as_u64().unwrap(),
        "status counts as stored exactly what is on the disk: {s}"
    );
    assert!(stored >= 50, "{s}");
    assert!(stored + lost <= 250, "nothing stored and lost both: {s}");
    drop(fs);
    Ok(())
}

/// `kuroko pcap` over a segment whose fdatasync the disk failed (issue 22): its blocks
/// read back and are exported, but nothing says they reached the disk's stable storage.
/// The export must not pass them off as sound: stderr names the segment, its time range
/// and why, and the exit status is the documented partial one (3), as for damaged blocks.
#[test]
fn pcap_of_a_segment_whose_fdatasync_failed_warns_and_exits_partial() {
    if !fuse_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (fs, _, _) = import_with_failing_fdatasync(work.path(), &data);
    let st = status_json(&data);
    let s = &st["store"];
    let stored = s["stored_packets"].as_u64().unwrap();
    assert!(stored >= 1, "nothing to export: {s}");
    // The disk is healthy again for the export: only the segment's mark says what happened.
    fs.set_plan(json!({"suffixes": [".kseg"]}));
    let (got, out) = exported(&data, work.path());
    let perr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(got as u64, stored, "{perr}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "pcap of a segment whose fdatasync failed exits 0 with no warning: {perr}"
    );
    assert!(perr.contains("fdatasync"), "says why: {perr}");
    assert!(perr.contains("segment seq"), "names the segment: {perr}");
    assert!(perr.contains("power cut"), "says what it means: {perr}");
    // The time range: the first packet's second (T0) in RFC 3339.
    assert!(perr.contains("2026-05-28T"), "names the time range: {perr}");
    drop(fs);
}
