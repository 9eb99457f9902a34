//! Store faults as a user meets them through the `kuroko` binary (issue 22, "Store"): a
//! disk that failed writes, a damaged segment header. The store is written in this
//! process (with the store's fault seam, `kuroko_ring::fault`), then `kuroko status` and
//! `kuroko pcap` must make the damage visible: counted in `status` (text and json), never
//! shown as free space, a pcap written around it warns and exits with status 3, and
//! `analyze` warns that sessions are missing.

mod store_common;

use store_common::flip_in_sealed;

use kuroko_ring::{IoPreference, RecordMeta, SegmentWriter, StoreOptions, fault};
use kuroko_tests::kuroko::binary;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

fn opts() -> StoreOptions {
    StoreOptions {
        budget: 16 * 256 * 1024 + kuroko_ring::META_RESERVE,
        segment_size: 256 * 1024,
        chunk_size: 64 * 1024,
        io: IoPreference::Auto,
        ..Default::default()
    }
}

/// A 1000-byte Ethernet frame carrying `i`.
fn frame(i: u64) -> Vec<u8> {
    let mut f = vec![0u8; 1000];
    f[12] = 0x08;
    f[14..22].copy_from_slice(&i.to_le_bytes());
    f
}

const T0: u64 = 1_780_000_000_000_000_000;

/// Writes `n` packets one ms apart; returns the writer's final counters.
fn write(dir: &Path, n: u64) -> kuroko_ring::WriterStats {
    let mut w = SegmentWriter::open(dir, &opts()).unwrap();
    for i in 0..n {
        let f = frame(i);
        let meta = RecordMeta {
            ts_ns: T0 + i * 1_000_000,
            wire_len: f.len() as u32,
            iface: 0,
            flags: 0,
        };
        let _ = w.append(&meta, &[&f]);
    }
    let _ = w.sync();
    let s = w.stats();
    let _ = w.close();
    s
}

fn status_json(dir: &Path) -> serde_json::Value {
    let out = Command::new(binary().unwrap())
        .args(["status", "--format", "json", "--data"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn status_text(dir: &Path) -> String {
    let out = Command::new(binary().unwrap())
        .args(["status", "--data"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn disk_write_errors_are_counted_in_status() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fault::inject(tmp.path());
    f.writes_ok_first.store(5, Ordering::SeqCst);
    f.write_failures.store(2, Ordering::SeqCst);
    let stats = write(tmp.path(), 2000);
    fault::clear(tmp.path());
    assert!(
        stats.packets_lost > 0 && stats.write_errors >= 2,
        "{stats:?}"
    );
    let j = status_json(tmp.path());
    let st = &j["store"];
    assert_eq!(st["write_errors"], stats.write_errors, "{st}");
    assert_eq!(st["write_error_packets"], stats.packets_lost, "{st}");
    assert_eq!(st["packets_written"], stats.packets_written, "{st}");
    assert!(st["damaged_segments"].as_u64().unwrap() >= 1, "{st}");
    let text = status_text(tmp.path());
    assert!(text.contains("DAMAGED"), "{text}");
    assert!(
        text.contains(&format!("({} packets lost to them)", stats.packets_lost)),
        "{text}"
    );
}

#[test]
fn a_damaged_segment_header_is_shown_and_pcap_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 1500);
    let before = status_json(tmp.path());
    let used = before["store"]["segments_used"].as_u64().unwrap();
    let free = before["store"]["segments_free"].as_u64().unwrap();
    // One flipped byte in slot 1's (sealed) header.
    let slot = tmp.path().join("segments/seg-00001.kseg");
    let mut b = std::fs::read(&slot).unwrap();
    b[40] ^= 0xff;
    std::fs::write(&slot, &b).unwrap();

    let j = status_json(tmp.path());
    let st = &j["store"];
    assert_eq!(st["damaged_slots"], 1, "{st}");
    assert_eq!(st["segments_used"].as_u64().unwrap(), used - 1, "{st}");
    assert_eq!(
        st["segments_free"].as_u64().unwrap(),
        free,
        "a damaged slot is not free: {st}"
    );
    assert!(status_text(tmp.path()).contains("DAMAGED"));

    let out_pcap = tmp.path().join("all.pcap");
    let out = Command::new(binary().unwrap())
        .args(["pcap", "--data"])
        .arg(tmp.path())
        .arg("-w")
        .arg(&out_pcap)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("damaged"), "{err}");
    // The rest was written.
    assert!(std::fs::metadata(&out_pcap).unwrap().len() > 1_000_000);

    // `analyze` says its sessions may be missing.
    let out = Command::new(binary().unwrap())
        .args(["analyze", "--data"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 damaged slot(s)"), "{err}");
}

/// The report's §1.4 (capture coverage) names what capture could not see or keep: a blind
/// interval (an interface gone, with the frames it received before the re-bind) inside the
/// diagnosis period, and a damaged slot, in English and Japanese. The figures come from
/// `kuroko status`'s sections (capture gaps, store damage).
#[test]
fn the_report_states_blind_intervals_and_damage() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 1500);
    let slot = tmp.path().join("segments/seg-00001.kseg");
    let mut b = std::fs::read(&slot).unwrap();
    b[40] ^= 0xff;
    std::fs::write(&slot, &b).unwrap();
    // A capture ran on eth7 (now stopped); its interface was gone for half a second in the
    // middle of the stored packets, and 42 frames reached the new interface before the
    // capture bound to it.
    let page = kuroko_capture::stats::StatsPage::create(tmp.path(), &[("eth7".into(), 7)]).unwrap();
    page.set_state(kuroko_capture::stats::layout::STATE_STOPPED);
    kuroko_capture::gaps::GapJournal::new(tmp.path()).record(
        kuroko_capture::gaps::GapKind::Gone,
        "eth7",
        T0 + 200_000_000,
        T0 + 700_000_000,
        42,
    );
    let st = status_json(tmp.path());
    assert_eq!(st["capture"]["gaps"][0]["interface"], "eth7", "{st}");

    for (lang, must) in [
        (
            "en",
            &[
                "1.4 Capture coverage",
                "interface gone",
                "eth7",
                "within the period",
                "1 damaged slots",
                "(1 within the diagnosis period)",
            ][..],
        ),
        (
            "ja",
            &[
                "1.4 収集範囲と欠損",
                "IF 消失",
                "eth7",
                "期間内",
                "スロット 1",
                "うち診断期間内 1 件",
            ][..],
        ),
    ] {
        let out_html = tmp.path().join(format!("report-{lang}.html"));
        let out = Command::new(binary().unwrap())
            .args(["report", "--lang", lang, "--data"])
            .arg(tmp.path())
            .arg("--out")
            .arg(&out_html)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let html = std::fs::read_to_string(&out_html).unwrap();
        for m in must {
            assert!(html.contains(m), "{lang} report lacks `{m}`");
        }
        // The 42 frames before the re-bind are in the interval's row.
        assert!(html.contains(">42<"), "{lang}: frames before the re-bind");
    }
}

/// Runs `kuroko ARGS` and returns its output, or fails when it has not ended after 20 s
/// (a read that blocks forever: a FIFO opened as a store file).
fn bounded(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut child = Command::new(binary().unwrap())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kuroko {args:?} hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status().unwrap().success();
    assert!(ok, "mkfifo {}", p.display());
}

/// Special files where a data directory or a store file should be (a FIFO, a device): every
/// command refuses with a clear error naming the file and what it is, never blocks reading
/// it, never replaces it.
#[test]
fn special_files_in_the_data_dir_are_refused_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    // store.meta is a FIFO: opening it for reading would block until a writer comes.
    let d1 = tmp.path().join("d1");
    std::fs::create_dir_all(d1.join("segments")).unwrap();
    mkfifo(&d1.join("segments/store.meta"));
    for cmd in ["status", "analyze"] {
        let out = bounded(&[cmd.as_ref(), "--data".as_ref(), d1.as_os_str()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cmd}: {err}");
        assert!(
            err.contains("store.meta") && err.contains("FIFO"),
            "{cmd}: {err}"
        );
    }
    // A segment file of a real store replaced by a FIFO.
    let d2 = tmp.path().join("d2");
    write(&d2, 1500);
    let seg = d2.join("segments/seg-00001.kseg");
    std::fs::remove_file(&seg).unwrap();
    mkfifo(&seg);
    let out = bounded(&["status".as_ref(), "--data".as_ref(), d2.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("seg-00001.kseg") && err.contains("FIFO"),
        "{err}"
    );
    assert!(
        std::fs::symlink_metadata(&seg)
            .unwrap()
            .file_type()
            .is_fifo(),
        "left as it was"
    );
    // The data directory itself is a FIFO or a device.
    let d3 = tmp.path().join("d3");
    mkfifo(&d3);
    for d in [d3.as_path(), Path::new("/dev/null")] {
        let out = bounded(&["analyze".as_ref(), "--data".as_ref(), d.as_os_str()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("is not a directory"), "{err}");
    }
}

/// Packets in a classic pcap file (24-byte file header, 16-byte record headers), with the
/// index `frame` wrote into each.
fn pcap_ids(b: &[u8]) -> Vec<u64> {
    let (mut at, mut ids) = (24, Vec::new());
    while at + 16 <= b.len() {
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        let d = &b[at + 16..at + 16 + incl];
        ids.push(u64::from_le_bytes(d[14..22].try_into().unwrap()));
        at += 16 + incl;
    }
    ids
}

/// Issue 22: "one bad byte costs a whole block (up to 1 MiB of packets)". One byte is
/// flipped at a random offset of the records of several stored blocks (sealed segments,
/// and the open one `status` walks). Every packet whose record does not touch the 4 KiB
/// unit (64 KiB chunks) holding a flipped byte is still exported by `kuroko pcap`, which
/// exits 3 naming the damage and the packets lost there; `status` counts the open
/// segment's damaged block. Before format 2 each flip cost its whole block (~60 packets).
#[test]
fn a_flipped_byte_costs_the_packets_of_its_unit_not_the_block() {
    use kuroko_ring::segment::BlockEvent;
    let tmp = tempfile::tempdir().unwrap();
    let n = 1500;
    write(tmp.path(), n);
    // Blocks of every segment (sealed and open): file, offset of the records, their length.
    let reader = kuroko_ring::StoreReader::open(tmp.path()).unwrap();
    let mut blocks = Vec::new();
    for seg in reader.segments() {
        let map = reader.map(seg).unwrap();
        for ev in map.blocks() {
            let BlockEvent::Valid(b) = ev else {
                panic!("damage before the test damaged anything: {ev:?}")
            };
            let at = b.offset + kuroko_ring::format::BLOCK_HEADER_LEN as u64;
            blocks.push((
                map.path().to_path_buf(),
                seg.open,
                at,
                b.payload.len() as u64,
            ));
        }
    }
    drop(reader);
    let open_blocks: Vec<_> = blocks.iter().filter(|b| b.1).cloned().collect();
    assert!(blocks.len() >= 12 && !open_blocks.is_empty(), "{blocks:?}");
    // Records are 1020 bytes (20-byte header + 1000), back to back from the block start.
    const REC: u64 = 1020;
    const UNIT: u64 = 4096;
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    // Three sealed blocks and one block of the open segment.
    let mut picked: Vec<_> = blocks
        .iter()
        .filter(|b| !b.1)
        .step_by(3)
        .take(3)
        .cloned()
        .collect();
    picked.push(open_blocks[open_blocks.len() / 2].clone());
    let mut most_lost = 0;
    for (path, _, at, len) in &picked {
        let off = next(*len);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        use std::os::unix::fs::FileExt;
        let mut b = [0u8];
        f.read_exact_at(&mut b, at + off).unwrap();
        f.write_all_at(&[b[0] ^ 0x20], at + off).unwrap();
        // Records touching the flipped byte's unit.
        let (u0, u1) = (off / UNIT * UNIT, (off / UNIT + 1) * UNIT);
        most_lost += (0..len / REC)
            .filter(|i| i * REC < u1 && (i + 1) * REC > u0)
            .count();
    }

    let out_pcap = tmp.path().join("all.pcap");
    let out = Command::new(binary().unwrap())
        .args(["pcap", "--data"])
        .arg(tmp.path())
        .arg("-w")
        .arg(&out_pcap)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("damaged"), "{err}");
    let ids = pcap_ids(&std::fs::read(&out_pcap).unwrap());
    let lost = n as usize - ids.len();
    assert!(
        lost >= picked.len() && lost <= most_lost,
        "{lost} packets lost to {} flipped bytes; the records of their units are {most_lost}: {err}",
        picked.len()
    );
    // What was exported is what was written, in order, nothing twice.
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids.iter().all(|&i| i < n));
    // The message counts the packets lost at each place.
    let said: usize = err
        .split(" packets lost")
        .filter_map(|s| s.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(said, lost, "{err}");

    // `status` walks the open segment: its damaged block is counted, not hidden.
    let j = status_json(tmp.path());
    let st = &j["store"];
    assert!(st["damaged_blocks"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["damaged_segments"].as_u64().unwrap() >= 1, "{st}");
    assert!(status_text(tmp.path()).contains("damaged"));
}

/// Issue 22: damage in a SEALED segment (a byte flipped after the segment was sealed, as
/// bit rot or a bad sector does) was shown by `pcap`, `analyze` and `kuroko-inspect`, but
/// `status` said 0 damaged blocks: a sealed header only counts what its writer knew.
/// Readers that find it now record it, and `status` counts it (blocks, packets, segments,
/// the `damaged_slots` alarm); `status --verify` reads the whole ring to find damage no
/// reader has met yet.
#[test]
fn damage_found_in_a_sealed_segment_is_counted_in_status() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 1500);
    let before = status_json(tmp.path());
    assert_eq!(before["store"]["damaged_blocks"], 0, "{before}");
    assert!(before["store"]["segments_used"].as_u64().unwrap() >= 3);
    flip_in_sealed(tmp.path(), 0);

    // `pcap` meets it: exit 3, "N packets lost".
    let out_pcap = tmp.path().join("all.pcap");
    let out = Command::new(binary().unwrap())
        .args(["pcap", "--data"])
        .arg(tmp.path())
        .arg("-w")
        .arg(&out_pcap)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let said: u64 = err
        .split(" packets lost")
        .filter_map(|s| s.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(said >= 1, "{err}");

    let j = status_json(tmp.path());
    let st = &j["store"];
    assert_eq!(st["damaged_blocks"], 1, "{st}");
    assert_eq!(st["damaged_segments"], 1, "{st}");
    assert_eq!(st["damaged_packets"], said, "{st}");
    let kinds: Vec<&str> = j["alarms"]["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"damaged_slots"), "{j}");
    assert!(status_text(tmp.path()).contains("DAMAGED"));
    // Reading it again does not count it twice.
    let again = Command::new(binary().unwrap())
        .args(["pcap", "--data"])
        .arg(tmp.path())
        .arg("-w")
        .arg(&out_pcap)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(status_json(tmp.path())["store"]["damaged_blocks"], 1);

    // A flip in another sealed segment that nothing has read: `status --verify` finds it.
    flip_in_sealed(tmp.path(), 1);
    let out = Command::new(binary().unwrap())
        .args(["status", "--verify", "--format", "json", "--data"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["store"]["damaged_blocks"], 2, "{}", j["store"]);
    assert_eq!(j["store"]["damaged_segments"], 2, "{}", j["store"]);
}

/// Issue 22: damage that appears in a sealed segment after the analyzer read it (bit rot,
/// a sector going bad) was counted only when something read that segment again. The
/// background scrub of `analyze --follow` (on by default, `[storage] scrub_rate`) re-reads
/// sealed segments and records what it finds as readers do: `status` counts the damaged
/// block and raises `damaged_slots` with no reader involved, and shows the scrub's last
/// full pass.
#[test]
fn the_background_scrub_counts_damage_that_appears_after_the_analyzer_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 1500);
    // The analyzer reads every packet while they are sound.
    let out = Command::new(binary().unwrap())
        .args(["analyze", "--data"])
        .arg(tmp.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status_json(tmp.path())["store"]["damaged_blocks"], 0);
    // Then a byte of a sealed segment rots.
    flip_in_sealed(tmp.path(), 1);
    let log = tmp.path().join("follow.log");
    let mut follow = Command::new(binary().unwrap())
        .args(["analyze", "--follow", "--data"])
        .arg(tmp.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let found = kuroko_tests::proc::wait_until(
        "the scrub to count the damaged block",
        std::time::Duration::from_secs(60),
        || status_json(tmp.path())["store"]["damaged_blocks"] == 1,
    );
    let j = status_json(tmp.path());
    // Stop the child we started, by its pid.
    let _ = Command::new("kill")
        .args(["-TERM", &follow.id().to_string()])
        .status();
    let exit = follow.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        found.is_ok(),
        "no reader, no count: {}\nanalyze: {text}",
        j["store"]
    );
    let st = &j["store"];
    assert_eq!(st["damaged_segments"], 1, "{st}");
    assert!(st["damaged_packets"].as_u64().unwrap() >= 1, "{st}");
    let kinds: Vec<&str> = j["alarms"]["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"damaged_slots"), "{j}");
    assert!(exit.success(), "{exit:?}: {text}");
    // Its progress is in status: a full pass over the ring, the damage it found.
    let j = status_json(tmp.path());
    let sc = &j["store"]["scrub"];
    assert!(sc["passes"].as_u64().unwrap() >= 1, "{sc}");
    assert!(sc["last_full_pass"].is_string(), "{sc}");
    assert_eq!(sc["damage_found"], 1, "{sc}");
    assert!(status_text(tmp.path()).contains("last full pass"));
}

/// Alarm kinds in `status --format json`.
fn alarm_kinds(j: &serde_json::Value) -> Vec<String> {
    j["alarms"]["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["kind"].as_str().map(str::to_string))
        .collect()
}

/// The `scrub_behind` alarm of `status --format json`, if raised.
fn scrub_alarm(j: &serde_json::Value) -> Option<serde_json::Value> {
    j["alarms"]["alarms"]
        .as_array()?
        .iter()
        .find(|a| a["kind"] == "scrub_behind")
        .cloned()
}

/// Issue 22: a background scrub that has fallen far behind raised no alarm: `status`
/// showed its progress as a figure nobody reads, while damage in the sealed segments it
/// had not reached went unnoticed. Here the scrub reads 1000 B/s (`scrub_rate = 0.001`)
/// and may leave a sealed segment unchecked for 2 s (`scrub_overdue`): `status` must
/// raise `scrub_behind` (alarms section, table and JSON, ja and en detail) naming the
/// oldest unchecked segment, say BEHIND in the scrub row, and the report's §1.4 must say
/// it too.
#[test]
fn a_scrub_fallen_behind_its_bound_raises_scrub_behind() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 1500);
    assert!(
        status_json(tmp.path())["store"]["segments_used"]
            .as_u64()
            .unwrap()
            >= 3
    );
    let config = tmp.path().join("kuroko.toml");
    std::fs::write(
        &config,
        "[storage]\nscrub_rate = 0.001\nscrub_overdue = \"2s\"\n",
    )
    .unwrap();
    let log = tmp.path().join("follow.log");
    let mut follow = Command::new(binary().unwrap())
        .args(["analyze", "--follow", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(tmp.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let raised = kuroko_tests::proc::wait_until(
        "the scrub_behind alarm",
        std::time::Duration::from_secs(60),
        || scrub_alarm(&status_json(tmp.path())).is_some(),
    );
    let j = status_json(tmp.path());
    let text = status_text(tmp.path());
    // Stop the child we started, by its pid.
    let _ = Command::new("kill")
        .args(["-TERM", &follow.id().to_string()])
        .status();
    let exit = follow.wait().unwrap();
    let analyze = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        raised.is_ok(),
        "no alarm for a scrub behind its bound: {}\nalarms: {:?}\nanalyze: {analyze}",
        j["store"]["scrub"],
        alarm_kinds(&j)
    );
    assert!(exit.success(), "{exit:?}: {analyze}");
    let a = scrub_alarm(&j).unwrap();
    assert_eq!(a["detail_values"]["what"], "scrub_overdue", "{a}");
    assert_eq!(a["detail_values"]["bound_secs"], 2, "{a}");
    assert_eq!(a["active"], true, "{a}");
    let seq = a["detail_values"]["seq"].as_u64().unwrap();
    assert!(
        a["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("segment seq {seq} not checked")),
        "{a}"
    );
    assert!(a["detail_ja"].as_str().unwrap().contains("未検査"), "{a}");
    assert_eq!(
        j["store"]["scrub_overdue"]["why"], "overdue",
        "{}",
        j["store"]
    );
    assert!(text.contains("scrub_behind/store"), "{text}");
    assert!(text.contains("BEHIND: segment seq"), "{text}");
    // The analyzer stopped, the scrub is still behind: the report's §1.4 says so, since
    // the damage it counts may be short of what the disk holds.
    for (lang, must) in [
        ("en", ["Scrub of the stored data behind", "not checked for"]),
        ("ja", ["スクラブ", "未検査"]),
    ] {
        let out_html = tmp.path().join(format!("report-{lang}.html"));
        let out = Command::new(binary().unwrap())
            .args(["report", "--lang", lang, "--data"])
            .arg(tmp.path())
            .arg("--out")
            .arg(&out_html)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let html = std::fs::read_to_string(&out_html).unwrap();
        for m in must {
            assert!(html.contains(m), "{lang} report lacks `{m}`");
        }
    }
}

/// Issue 22: a scrub thread that stopped (died, or stuck) while its analyzer keeps
/// running raised no alarm. Here this test process stands in for that analyzer: it holds
/// the data directory's analyzer lock under its pid, and the scrub state it "wrote" is an
/// hour old. `status` must raise `scrub_behind` (stalled, naming the pid); once the
/// analyzer is gone (lock released) the condition is over.
#[test]
fn a_scrub_that_stopped_while_its_analyzer_runs_raises_scrub_behind() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 300);
    let pid = std::process::id();
    let lock_path = tmp.path().join("analyzer/lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    std::fs::write(&lock_path, format!("{pid}\n")).unwrap();
    let lock = std::fs::File::open(&lock_path).unwrap();
    lock.lock().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let hour_ago = now - 3600 * 1_000_000_000;
    std::fs::write(
        tmp.path().join("segments/scrub.state"),
        format!(
            "rate_bytes_per_sec 8000000\npid {pid}\npass_started_wall_ns {hour_ago}\nupdated_wall_ns {hour_ago}\n"
        ),
    )
    .unwrap();
    let j = status_json(tmp.path());
    let a = scrub_alarm(&j).unwrap_or_else(|| {
        panic!(
            "no alarm for a scrub stopped under a running analyzer: {}\nalarms: {:?}",
            j["store"]["scrub"],
            alarm_kinds(&j)
        )
    });
    assert_eq!(a["detail_values"]["what"], "scrub_stalled", "{a}");
    assert_eq!(a["detail_values"]["pid"], pid, "{a}");
    assert!(a["detail_values"]["secs"].as_u64().unwrap() >= 3600, "{a}");
    assert!(
        a["detail"]
            .as_str()
            .unwrap()
            .contains("has not moved for 1 h"),
        "{a}"
    );
    assert!(status_text(tmp.path()).contains("scrub_behind/store"));
    // The analyzer is gone: nothing runs the scrub, no stall.
    drop(lock);
    let j = status_json(tmp.path());
    assert!(scrub_alarm(&j).is_none(), "{}", j["alarms"]);
}
