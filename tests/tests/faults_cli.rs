//! Faults of the command line as an operator meets them (issue 22, "Read-only and output
//! files", "Config and import"), each on the real `kuroko` binary:
//!
//! - a data directory on a read-only mount: every read command works;
//! - `kuroko search` in a loop during the first seconds of `analyze --follow`: the
//!   analyzer's indexing never meets a lock held by a reader, and its index ends complete;
//! - `pcap -w` / `report --out` on a device node, a FIFO, symlinks and `-`: written
//!   through, never replaced; a full device is an error, not exit 0;
//! - config mistakes that used to pass the load: errors naming file, line and key;
//! - pcapng timestamps that overflow and a malformed record: skipped and counted, and a
//!   partial import exits with its own status;
//! - `export` over damaged store data (a segment whose fdatasync failed, a flipped byte in
//!   a block its evidence pcap is cut from): named on stderr and in the bundle's README,
//!   exit status 3 like `pcap`'s.
//!
//! The traffic is a small synthetic pcap (DNS queries and UDP to an address on the
//! test reputation list), so each test takes seconds. Needs root (bind mounts, mknod).

mod store_common;

use kuroko_tests::kuroko::{DataDir, binary, parse_jsonl, site_config};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Exit status of a partial import (README "Exit status").
const EXIT_PARTIAL_IMPORT: i32 = 3;
/// Exit status of an export whose evidence touches damaged store data (README "Exit
/// status"), as `pcap`'s.
const EXIT_PARTIAL_EXPORT: i32 = 3;
/// Queries and reputation hits in the synthetic pcap.
const PAIRS: u32 = 20;
/// First packet time: 2026-11-18T00:00:00Z.
const T0: u32 = 1_795_046_400;

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s >> 16) + (s & 0xffff);
    }
    !(s as u16)
}

/// One Ethernet/IPv4/UDP frame.
fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// (seconds, microseconds, frame) of the synthetic traffic: `PAIRS` DNS queries from an
/// office PC and as many UDP packets to 192.0.2.66 (on `fixtures/reputation/drop.txt`).
fn traffic() -> Vec<(u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..PAIRS {
        let name = format!("host{i}.example.com");
        let q = dns_query(i as u16, &name);
        out.push((
            T0 + i,
            0,
            udp_frame([10, 10, 1, 10], [10, 10, 2, 53], 40000 + i as u16, 53, &q),
        ));
        out.push((
            T0 + i,
            500_000,
            udp_frame(
                [10, 10, 1, 10],
                [192, 0, 2, 66],
                41000 + i as u16,
                9999,
                b"hi",
            ),
        ));
    }
    out
}

/// A classic µs pcap of `packets`.
fn pcap(packets: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    for (s, us, f) in packets {
        for w in [*s, *us, f.len() as u32, f.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(f);
    }
    b
}

fn kuroko(args: &[&str]) -> Output {
    Command::new(binary().expect("the kuroko binary builds"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kuroko runs")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Packets of a pcap read back independently of the store's code (either magic).
fn pcap_packet_times(bytes: &[u8]) -> Vec<u64> {
    assert!(bytes.len() >= 24, "not a pcap: {} bytes", bytes.len());
    let nanos = bytes[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let mut at = 24;
    let mut out = Vec::new();
    let word = |a: usize| u32::from_le_bytes(bytes[a..a + 4].try_into().unwrap());
    while at + 16 <= bytes.len() {
        let (sec, frac, incl) = (word(at), word(at + 4), word(at + 8) as usize);
        out.push(u64::from(sec) * 1_000_000_000 + u64::from(frac) * if nanos { 1 } else { 1000 });
        at += 16 + incl;
    }
    assert_eq!(at, bytes.len(), "pcap ends inside a record");
    out
}

/// A store made from the synthetic traffic, analyzed, with the test site's config.
fn analyzed_store(name: &str) -> (DataDir, PathBuf) {
    let dd = DataDir::new(name, &site_config("Asia/Tokyo")).unwrap();
    let p = dd.dir.parent().unwrap().join("in.pcap");
    std::fs::write(&p, pcap(&traffic())).unwrap();
    dd.import(&p).unwrap();
    dd.analyze().unwrap();
    (dd, p)
}

/// A read-only bind mount of a directory, undone on drop.
struct RoMount(PathBuf);
impl RoMount {
    fn new(src: &Path, at: &Path) -> RoMount {
        std::fs::create_dir_all(at).unwrap();
        let m = RoMount(at.to_path_buf());
        for args in [
            vec!["--bind", s(src), s(at)],
            vec!["-o", "remount,bind,ro", s(at)],
        ] {
            let st = Command::new("mount").args(&args).status().unwrap();
            assert!(st.success(), "mount {args:?} failed (the test needs root)");
        }
        m
    }
}
impl Drop for RoMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn every_read_command_works_on_a_read_only_data_dir() {
    let (dd, _) = analyzed_store("ro");
    let cfg = s(&dd.config).to_string();
    let sessions = dd.search("*").unwrap().len();
    assert!(sessions >= PAIRS as usize, "{sessions} sessions");
    let findings = dd.findings().unwrap();
    assert!(!findings.is_empty(), "the reputation hit is a finding");
    let base = dd.dir.parent().unwrap().to_path_buf();
    let ro = base.join("ro");
    let _mount = RoMount::new(&dd.dir, &ro);
    // Root ignores modes: the mount itself must refuse writes for this test to mean anything.
    assert!(std::fs::write(ro.join("probe"), b"x").is_err());
    let data = s(&ro).to_string();
    let run = |args: &[&str]| {
        let mut full = vec![args[0], "--data", &data, "--config", &cfg];
        full.extend_from_slice(&args[1..]);
        kuroko(&full)
    };

    let st: serde_json::Value =
        serde_json::from_str(&ok(&run(&["status", "--format", "json"]), "status")).unwrap();
    assert!(st.is_object());
    let found = parse_jsonl(&ok(
        &run(&["search", "--format", "jsonl", "--limit", "10000", "*"]),
        "search",
    ))
    .unwrap();
    assert_eq!(found.len(), sessions, "search on the read-only dir");
    let f = parse_jsonl(&ok(&run(&["findings", "--format", "jsonl"]), "findings")).unwrap();
    assert_eq!(f.len(), findings.len(), "findings on the read-only dir");
    let out = base.join("all.pcap");
    ok(&run(&["pcap", "-w", s(&out)]), "pcap");
    assert_eq!(
        pcap_packet_times(&std::fs::read(&out).unwrap()).len(),
        2 * PAIRS as usize
    );
    let q = base.join("q.pcap");
    ok(
        &run(&["pcap", "--query", "port:9999", "-w", s(&q)]),
        "pcap --query",
    );
    assert_eq!(
        pcap_packet_times(&std::fs::read(&q).unwrap()).len(),
        PAIRS as usize
    );
    let html = base.join("report.html");
    let r = run(&["report", "--out", s(&html), "--lang", "en"]);
    ok(&r, "report");
    assert!(std::fs::read_to_string(&html).unwrap().contains("</html>"));
    assert!(String::from_utf8_lossy(&r.stderr).contains("cannot be created"));
    let usb = base.join("usb");
    std::fs::create_dir_all(&usb).unwrap();
    ok(&run(&["export", "--to", s(&usb), "--plaintext"]), "export");
    let bundle = std::fs::read_dir(&usb)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    ok(
        &kuroko(&["export", "--verify", s(&bundle)]),
        "export --verify",
    );
}

#[test]
fn search_during_a_follow_never_takes_the_analyzers_index_lock() {
    let dd = DataDir::new("follow", &site_config("Asia/Tokyo")).unwrap();
    let p = dd.dir.parent().unwrap().join("in.pcap");
    // A packet an hour later closes the earlier flows (idle timeouts run on packet time),
    // so the follow writes sessions for the index to take.
    let mut t = traffic();
    let late = udp_frame(
        [10, 10, 1, 11],
        [10, 10, 2, 53],
        50000,
        53,
        &dns_query(1, "late.example.com"),
    );
    t.push((T0 + 3600, 0, late));
    std::fs::write(&p, pcap(&t)).unwrap();
    dd.import(&p).unwrap();
    let (data, cfg) = (s(&dd.dir).to_string(), s(&dd.config).to_string());
    let log = dd.dir.parent().unwrap().join("follow.stderr");
    let mut follow = Command::new(binary().unwrap())
        .args(["analyze", "--data", &data, "--config", &cfg, "--follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Searches back to back through the follow's first catch-ups (the consumers run once
    // a second; a search that opened the index writer made them fail with LockBusy).
    let count = || {
        let out = kuroko(&["search", "--data", &data, "--config", &cfg, "--count", "*"]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success()).then(|| text.parse::<usize>().unwrap())
    };
    // At least 100 searches, and on until one has found sessions (the follow publishes its
    // first sessions after its first checkpoint, seconds in): bounded at 60 s.
    let mut seen = None;
    let started = std::time::Instant::now();
    let mut n = 0;
    while n < 100 || (seen.unwrap_or(0) == 0 && started.elapsed().as_secs() < 60) {
        seen = count().or(seen);
        n += 1;
    }
    assert_eq!(nix_kill(follow.id(), libc::SIGINT), 0);
    let status = follow.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        !stderr.to_lowercase().contains("lock"),
        "the analyzer met a lock held by a search: {stderr}"
    );
    assert!(status.success(), "analyze --follow: {status}: {stderr}");
    let logged = dd.session_log().unwrap().len();
    assert!(seen.is_some(), "no search answered during the follow");
    assert!(
        logged >= 2 * PAIRS as usize,
        "{logged} sessions logged by the follow"
    );
    assert_eq!(
        count(),
        Some(logged),
        "the index holds every logged session"
    );
}

fn nix_kill(pid: u32, sig: i32) -> i32 {
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped yet.
    unsafe { libc::kill(pid as i32, sig) }
}

#[test]
fn named_outputs_write_through_devices_fifos_and_symlinks() {
    let (dd, _) = analyzed_store("out");
    let base = dd.dir.parent().unwrap().to_path_buf();
    let (data, cfg) = (s(&dd.dir).to_string(), s(&dd.config).to_string());
    let pcap_to = |out: &str| kuroko(&["pcap", "--data", &data, "--config", &cfg, "-w", out]);
    let reference = base.join("ref.pcap");
    ok(&pcap_to(s(&reference)), "pcap -w file");
    let want = std::fs::read(&reference).unwrap();
    assert_eq!(pcap_packet_times(&want).len(), 2 * PAIRS as usize);
    assert!(want.len() < 60_000, "fits a pipe buffer");
    let entries = |d: &Path| std::fs::read_dir(d).unwrap().count();
    let before = entries(&base);

    // `-w -`: standard output.
    assert_eq!(pcap_to("-").stdout, want, "-w - writes the pcap to stdout");

    // A full device (a private node of /dev/full, so the test cannot harm the real one).
    let full = base.join("full");
    let st = Command::new("mknod")
        .args([s(&full), "c", "1", "7"])
        .status();
    assert!(st.unwrap().success(), "mknod (needs root)");
    let out = pcap_to(s(&full));
    assert!(!out.status.success(), "a write to a full device exits 0");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    let ft = std::fs::symlink_metadata(&full).unwrap().file_type();
    assert!(ft.is_char_device(), "the device node was replaced");

    // A FIFO with a reader: the pcap goes through it.
    let fifo = base.join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status();
    assert!(st.unwrap().success());
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true) // never blocks, and keeps the FIFO open for kuroko's writer
        .custom_flags_nonblock()
        .open(&fifo)
        .unwrap();
    let out = pcap_to(s(&fifo));
    ok(&out, "pcap -w fifo");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO was replaced by a regular file"
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match std::io::Read::read(&mut &reader, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("reading the FIFO: {e}"),
        }
    }
    assert_eq!(got, want, "the FIFO's reader got the pcap");

    // A symlink to an existing file (relative), and a dangling one: the links stay, the
    // targets get the data.
    std::fs::create_dir_all(base.join("sub")).unwrap();
    std::fs::write(base.join("sub/old.pcap"), b"old").unwrap();
    std::os::unix::fs::symlink("sub/old.pcap", base.join("link.pcap")).unwrap();
    std::os::unix::fs::symlink("sub/new.pcap", base.join("dangling.pcap")).unwrap();
    for (link, target) in [
        ("link.pcap", "sub/old.pcap"),
        ("dangling.pcap", "sub/new.pcap"),
    ] {
        ok(&pcap_to(s(&base.join(link))), link);
        let m = std::fs::symlink_metadata(base.join(link)).unwrap();
        assert!(m.file_type().is_symlink(), "{link} was replaced");
        assert_eq!(std::fs::read(base.join(target)).unwrap(), want, "{target}");
    }
    // `report --out` through a symlink.
    std::os::unix::fs::symlink("sub/r.html", base.join("report.html")).unwrap();
    let html = base.join("report.html");
    ok(
        &kuroko(&[
            "report",
            "--data",
            &data,
            "--config",
            &cfg,
            "--out",
            s(&html),
        ]),
        "report",
    );
    assert!(
        std::fs::symlink_metadata(&html)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(base.join("sub/r.html"))
            .unwrap()
            .contains("</html>")
    );
    // No temp files left behind anywhere: ref, full, fifo, sub, 3 links (+ data, config, pcap).
    assert_eq!(
        entries(&base),
        before + 6,
        "{:?}",
        std::fs::read_dir(&base).unwrap().collect::<Vec<_>>()
    );
    assert_eq!(entries(&base.join("sub")), 3);
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}
impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

/// `(config text, key, line)`: each must stop `status` and `search` at load.
const BAD_CONFIGS: &[(&str, &str, usize)] = &[
    (
        "[[alerts.conditions]]\nname = \"ok\"\nquery = \"protocol:dns\"\n\n[[alerts.conditions]]\nname = \"broken\"\nquery = \"protocol:(http\"\n",
        "alerts.conditions[2].query",
        7,
    ),
    (
        "[intel]\nreputation_lists = [\"/nonexistent/drop.txt\"]\n",
        "intel.reputation_lists",
        2,
    ),
    (
        "[detect]\ndisabled_rules = [\"telnet_use\", \"no_such_rule\"]\n",
        "detect.disabled_rules",
        2,
    ),
    (
        "[detect.overrides.no_such_rule]\nthreat = 1\nreason = \"x\"\n",
        "detect.overrides.no_such_rule",
        1,
    ),
    (
        "[storage]\nbudget = \"1GiB\"\nsegment_size = \"1MiB\"\n",
        "storage.segment_size",
        3,
    ),
    (
        "[storage]\nbudget = \"64GiB\"\nsegment_size = \"4GiB\"\n",
        "storage.segment_size",
        3,
    ),
];

#[test]
fn config_mistakes_stop_every_command_at_load_with_file_line_and_key() {
    let dd = DataDir::new("cfg", "").unwrap();
    let cfg = dd.dir.parent().unwrap().join("bad.toml");
    let data = s(&dd.dir).to_string();
    for (text, key, line) in BAD_CONFIGS {
        std::fs::write(&cfg, text).unwrap();
        for cmd in [
            vec!["status", "--data", &data, "--config", s(&cfg)],
            vec!["search", "--data", &data, "--config", s(&cfg), "*"],
        ] {
            let out = kuroko(&cmd);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{key}: `{}` accepted {text}", cmd[0]);
            assert!(
                err.contains(&format!("{}:{line}: `{key}`", s(&cfg))),
                "{key}, `{}`: {err}",
                cmd[0]
            );
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
    }
}

/// pcapng (little endian) with one interface at `if_tsresol` 9 (ns) and one EPB per
/// (timestamp, frame).
fn pcapng(packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (len - 12 - body.len()), 0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    let mut b = Vec::new();
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut b, 0x0a0d_0d0a, &shb);
    let mut idb = vec![1, 0, 0, 0];
    idb.extend_from_slice(&65535u32.to_le_bytes());
    idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]); // if_tsresol = 9
    block(&mut b, 1, &idb);
    for (ts, f) in packets {
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(*ts as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        block(&mut b, 6, &epb);
    }
    b
}

#[test]
fn overflowing_pcapng_times_and_malformed_records_make_a_counted_partial_import() {
    let dd = DataDir::new("imp", "").unwrap();
    let base = dd.dir.parent().unwrap().to_path_buf();
    let data = s(&dd.dir).to_string();
    let t: Vec<(u64, Vec<u8>)> = traffic()
        .into_iter()
        .map(|(s, us, f)| (u64::from(s) * 1_000_000_000 + u64::from(us) * 1000, f))
        .collect();
    // Two packets whose ns time overflows i64 (u64::MAX ns, and 2^63 ns: the year 2262+).
    let mut ng = t[..10].to_vec();
    ng.insert(3, (u64::MAX, t[3].1.clone()));
    ng.insert(7, (1 << 63, t[7].1.clone()));
    let ngp = base.join("overflow.pcapng");
    std::fs::write(&ngp, pcapng(&ng)).unwrap();
    let out = kuroko(&["import", s(&ngp), "--data", &data]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_PARTIAL_IMPORT), "{err}");
    assert!(
        err.contains("2 packet(s) with an impossible timestamp"),
        "{err}"
    );
    assert!(err.contains("partial import: 10 packets stored"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("10 packets"));

    // A classic pcap with a garbage record in the middle: the packets before it are stored.
    let mut bytes = pcap(&traffic()[10..20]);
    let at = bytes.len();
    bytes.extend_from_slice(&pcap(&traffic()[20..25])[24..]);
    bytes[at + 8..at + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let bad = base.join("bad.pcap");
    std::fs::write(&bad, bytes).unwrap();
    let good = base.join("good.pcap");
    std::fs::write(&good, pcap(&traffic()[25..30])).unwrap();
    let out = kuroko(&["import", s(&bad), s(&good), "--data", &data]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_PARTIAL_IMPORT), "{err}");
    assert!(err.contains("stopped at a malformed record"), "{err}");
    assert!(err.contains("partial import: 15 packets stored"), "{err}");

    // What the store holds: 25 packets, none in 1969, and the status's window is sane.
    let all = kuroko(&["pcap", "--data", &data, "-w", "-"]).stdout;
    let times = pcap_packet_times(&all);
    assert_eq!(times.len(), 25);
    assert!(times.iter().all(|&t| t >= u64::from(T0) * 1_000_000_000));
    let st = ok(
        &kuroko(&["status", "--data", &data, "--format", "json"]),
        "status",
    );
    assert!(!st.contains("1969-12-31"), "{st}");
}

/// Stores the synthetic traffic in `dir` through the store's writer in this process (256
/// KiB segments), then `filler` 1000-byte frames 100 s later: enough of them seal the
/// traffic's segment.
fn write_store(dir: &Path, filler: u32) {
    use kuroko_ring::{RecordMeta, SegmentWriter, StoreOptions};
    let opts = StoreOptions {
        budget: 16 * 256 * 1024 + kuroko_ring::META_RESERVE,
        segment_size: 256 * 1024,
        chunk_size: 64 * 1024,
        ..Default::default()
    };
    let mut w = SegmentWriter::open(dir, &opts).unwrap();
    let mut filler_frame = vec![0u8; 1000];
    filler_frame[12] = 0x08;
    let late = (0..filler).map(|i| (T0 + 100 + i / 1000, i % 1000 * 1000, filler_frame.clone()));
    for (sec, us, frame) in traffic().into_iter().chain(late) {
        let meta = RecordMeta {
            ts_ns: u64::from(sec) * 1_000_000_000 + u64::from(us) * 1000,
            wire_len: frame.len() as u32,
            iface: 0,
            flags: 0,
        };
        let _ = w.append(&meta, &[&frame]);
    }
    let _ = w.sync();
    let _ = w.close();
}

/// Exports the findings bundle of `dd` in clear into a fresh directory beside it; returns
/// `export`'s output and the bundle's directory (when it wrote one).
fn export_bundle(dd: &DataDir, name: &str) -> (Output, Option<PathBuf>) {
    let usb = dd.dir.parent().unwrap().join(name);
    std::fs::create_dir_all(&usb).unwrap();
    let out = kuroko(&[
        "export",
        "--data",
        s(&dd.dir),
        "--config",
        s(&dd.config),
        "--to",
        s(&usb),
        "--plaintext",
    ]);
    let bundle = std::fs::read_dir(&usb)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir());
    (out, bundle)
}

/// The bundle verifies against its manifest (`export --verify`).
fn assert_bundle_verifies(bundle: &Path) {
    ok(
        &kuroko(&["export", "--verify", s(bundle)]),
        "export --verify",
    );
}

/// Issue 22: `kuroko export` over a segment whose fdatasync the disk failed. `pcap` warns
/// and exits 3 for such a segment (its packets read back but may not survive a power cut,
/// and blocks may be missing); `export` cut the same packets into the consultant's bundle
/// and said nothing. It must name the segment on stderr and in the bundle's README, next
/// to the finding whose evidence it touches, and exit 3.
#[test]
fn export_over_a_segment_whose_fdatasync_failed_names_it_and_exits_partial() {
    use kuroko_ring::fault;
    use std::sync::atomic::Ordering;
    let dd = DataDir::new("export-write-error", &site_config("Asia/Tokyo")).unwrap();
    // The traffic stored by a writer whose every fdatasync fails (the store's fault seam).
    let f = fault::inject(&dd.dir);
    f.sync_failures.store(u32::MAX, Ordering::SeqCst);
    write_store(&dd.dir, 0);
    fault::clear(&dd.dir);
    let st: serde_json::Value = serde_json::from_str(&ok(
        &kuroko(&["status", "--data", s(&dd.dir), "--format", "json"]),
        "status",
    ))
    .unwrap();
    assert!(
        st["store"]["write_errors"].as_u64().unwrap() >= 1
            && st["store"]["damaged_segments"].as_u64().unwrap() >= 1,
        "the fault did not take: {}",
        st["store"]
    );
    dd.analyze().unwrap();
    assert!(!dd.findings().unwrap().is_empty(), "the reputation hit");

    let (out, bundle) = export_bundle(&dd, "usb");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let bundle = bundle.unwrap_or_else(|| panic!("no bundle written: {err}"));
    assert_eq!(
        out.status.code(),
        Some(EXIT_PARTIAL_EXPORT),
        "export of evidence from a segment whose fdatasync failed: {err}"
    );
    assert!(err.contains("segment seq"), "names the segment: {err}");
    assert!(err.contains("fdatasync"), "says why: {err}");
    assert!(err.contains("pcap/001-"), "names the evidence pcap: {err}");
    let readme = std::fs::read_to_string(bundle.join("README.txt")).unwrap();
    for must in ["segment seq", "fdatasync", "pcap/001-", "保存データの損傷"] {
        assert!(readme.contains(must), "README lacks `{must}`:\n{readme}");
    }
    assert_bundle_verifies(&bundle);
}

/// Issue 22: `kuroko export` cutting a finding's evidence out of the store (no kept copy:
/// `evidence_budget = "0"`) across a sealed block with a flipped byte. The damaged unit's packets
/// are skipped; the export used to say nothing and exit 0. It must name the damaged place
/// on stderr and in the README, and exit 3. The same store exports cleanly before the flip.
#[test]
fn export_cutting_evidence_from_a_damaged_block_names_it_and_exits_partial() {
    let config = format!(
        "{}\n[storage]\nevidence_budget = \"0\"\n",
        site_config("Asia/Tokyo")
    );
    let dd = DataDir::new("export-damage", &config).unwrap();
    // The traffic's segment sealed by the frames after it (a flipped byte in the last
    // block of an open segment reads as a write still under way, not as damage).
    write_store(&dd.dir, 400);
    assert!(
        !kuroko_ring::StoreReader::open(&dd.dir).unwrap().segments()[0].open,
        "the traffic's segment is sealed"
    );
    dd.analyze().unwrap();
    assert!(!dd.findings().unwrap().is_empty(), "the reputation hit");

    let (out, bundle) = export_bundle(&dd, "usb-before");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "a sound store exports cleanly: {err}");
    let readme = std::fs::read_to_string(bundle.unwrap().join("README.txt")).unwrap();
    assert!(!readme.contains("保存データの損傷"), "{readme}");

    store_common::flip_in_sealed(&dd.dir, 0);
    let (out, bundle) = export_bundle(&dd, "usb-after");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let bundle = bundle.unwrap_or_else(|| panic!("no bundle written: {err}"));
    assert_eq!(
        out.status.code(),
        Some(EXIT_PARTIAL_EXPORT),
        "export across a damaged block: {err}"
    );
    assert!(err.contains("segment seq"), "names the segment: {err}");
    assert!(err.contains("damaged"), "says why: {err}");
    // Every evidence packet was in the damaged unit: no pcap is left, the finding is named.
    assert!(err.contains("(finding 1 "), "names the finding: {err}");
    assert!(!err.contains("rotated out)"), "not rotation: {err}");
    let readme = std::fs::read_to_string(bundle.join("README.txt")).unwrap();
    for must in [
        "segment seq",
        "damaged",
        "(finding 1 / 検出脅威 1",
        "保存データの損傷",
    ] {
        assert!(readme.contains(must), "README lacks `{must}`:\n{readme}");
    }
    assert_bundle_verifies(&bundle);
}
