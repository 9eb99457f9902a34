//! The store's round trip through the `kuroko` binary, as a user runs it:
//! pcap and pcapng files (µs and ns, VLAN, QinQ, jumbo, snaplen-cut frames) →
//! `kuroko import` → `kuroko pcap` → byte-identical packets and timestamps, and
//! `tshark -r` reads the export without a warning. Also: time-range export, a truncated
//! file, a foreign link type, `status` in both formats.
//!
//! The capture files are written here, byte by byte, from a seeded generator.

use kuroko_tests::kuroko::binary;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pkt {
    ts_ns: u64,
    wire_len: u32,
    data: Vec<u8>,
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An Ethernet frame of `len` bytes (≥ 60), optionally 802.1Q / QinQ tagged.
fn frame(rng: &mut Rng, len: usize, tags: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    for _ in 0..12 {
        f.push(rng.below(256) as u8);
    }
    for t in 0..tags {
        f.extend_from_slice(if t == 0 && tags == 2 {
            &[0x88, 0xa8]
        } else {
            &[0x81, 0x00]
        });
        f.extend_from_slice(&((rng.below(4094) + 1) as u16).to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    while f.len() < len {
        f.push(rng.below(256) as u8);
    }
    f
}

/// Thousands of packets: mostly small and MTU-sized, some VLAN/QinQ, some jumbo, some cut
/// by a snaplen; times increasing from `start_ns` with µs granularity when `micros`.
fn packets(seed: u64, n: usize, start_ns: u64, micros: bool) -> Vec<Pkt> {
    let mut rng = Rng(seed);
    let mut ts = start_ns;
    (0..n)
        .map(|i| {
            ts += 1_000 + rng.below(2_000_000);
            if micros {
                ts -= ts % 1_000;
            }
            let len = match rng.below(10) {
                0..=3 => 60 + rng.below(40) as usize,
                4..=6 => 1514,
                7 => 64 + rng.below(1450) as usize,
                8 => 9000 + rng.below(18) as usize,
                _ => 200 + rng.below(800) as usize,
            };
            let tags = match i % 7 {
                3 => 1,
                5 => 2,
                _ => 0,
            };
            let full = frame(&mut rng, len, tags);
            let cut = i % 97 == 13 && full.len() > 96;
            let data = if cut { full[..96].to_vec() } else { full };
            Pkt {
                ts_ns: ts,
                wire_len: len as u32,
                data,
            }
        })
        .collect()
}

fn pcap_bytes(pkts: &[Pkt], nanos: bool, linktype: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(if nanos { 0xa1b2_3c4du32 } else { 0xa1b2_c3d4 }).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&linktype.to_le_bytes());
    for p in pkts {
        let sec = p.ts_ns / 1_000_000_000;
        let frac = p.ts_ns % 1_000_000_000;
        b.extend_from_slice(&(sec as u32).to_le_bytes());
        b.extend_from_slice(&(if nanos { frac } else { frac / 1000 } as u32).to_le_bytes());
        b.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&p.wire_len.to_le_bytes());
        b.extend_from_slice(&p.data);
    }
    b
}

/// pcapng, big-endian section (to exercise byte order), one interface with if_tsresol=9.
fn pcapng_bytes(pkts: &[Pkt]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&ty.to_be_bytes());
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (len - 12 - body.len()), 0);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    let mut b = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_be_bytes());
    shb.extend_from_slice(&1u16.to_be_bytes());
    shb.extend_from_slice(&0u16.to_be_bytes());
    shb.extend_from_slice(&u64::MAX.to_be_bytes());
    block(&mut b, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_be_bytes());
    idb.extend_from_slice(&0u16.to_be_bytes());
    idb.extend_from_slice(&0u32.to_be_bytes());
    // if_name "mirror0", if_tsresol 9, end of options.
    idb.extend_from_slice(&2u16.to_be_bytes());
    idb.extend_from_slice(&7u16.to_be_bytes());
    idb.extend_from_slice(b"mirror0\0");
    idb.extend_from_slice(&9u16.to_be_bytes());
    idb.extend_from_slice(&1u16.to_be_bytes());
    idb.extend_from_slice(&[9, 0, 0, 0]);
    idb.extend_from_slice(&[0; 4]);
    block(&mut b, 1, &idb);
    for p in pkts {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_be_bytes());
        epb.extend_from_slice(&((p.ts_ns >> 32) as u32).to_be_bytes());
        epb.extend_from_slice(&(p.ts_ns as u32).to_be_bytes());
        epb.extend_from_slice(&(p.data.len() as u32).to_be_bytes());
        epb.extend_from_slice(&p.wire_len.to_be_bytes());
        epb.extend_from_slice(&p.data);
        block(&mut b, 6, &epb);
    }
    b
}

/// Reads back an exported pcap (ns magic expected), independently of the store's code.
fn read_pcap(bytes: &[u8]) -> Vec<Pkt> {
    assert!(bytes.len() >= 24, "export is shorter than a pcap header");
    assert_eq!(
        &bytes[..4],
        &0xa1b2_3c4du32.to_le_bytes(),
        "export is not a ns pcap"
    );
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        1,
        "link type"
    );
    let mut out = Vec::new();
    let mut pos = 24;
    while pos < bytes.len() {
        let h = &bytes[pos..pos + 16];
        let rd = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
        let (sec, ns, incl, orig) = (rd(0) as u64, rd(4) as u64, rd(8) as usize, rd(12));
        assert!(ns < 1_000_000_000);
        out.push(Pkt {
            ts_ns: sec * 1_000_000_000 + ns,
            wire_len: orig,
            data: bytes[pos + 16..pos + 16 + incl].to_vec(),
        });
        pos += 16 + incl;
    }
    out
}

fn kuroko(args: &[&str]) -> Output {
    let bin = binary().expect("the kuroko binary builds");
    Command::new(bin).args(args).output().expect("kuroko runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "kuroko failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Scratch(PathBuf);
impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("kt-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn path(&self, f: &str) -> String {
        self.0.join(f).to_string_lossy().into_owned()
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rfc3339(ns: u64) -> String {
    // Seconds and nanoseconds in UTC, computed without a date library (days from civil).
    let secs = ns / 1_000_000_000;
    let (days, rem) = (secs / 86400, secs % 86400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ns % 1_000_000_000
    )
}

#[test]
fn import_then_export_is_byte_identical_and_tshark_reads_it() {
    let s = Scratch::new("rt");
    let data = s.path("data");
    let base = 1_763_425_800_000_000_000u64; // 2025-11-18T00:30:00Z
    let a = packets(1, 3000, base, true);
    let b = packets(2, 2500, a.last().unwrap().ts_ns + 1_000_000, false);
    std::fs::write(s.path("a.pcap"), pcap_bytes(&a, false, 1)).unwrap();
    std::fs::write(s.path("b.pcapng"), pcapng_bytes(&b)).unwrap();
    assert!(
        a.iter().any(|p| p.data.len() > 9000) && a.iter().any(|p| p.data[12..14] == [0x81, 0x00])
    );
    assert!(
        a.iter()
            .any(|p| p.data[12..14] == [0x88, 0xa8] && p.data[16..18] == [0x81, 0x00])
    );
    assert!(a.iter().any(|p| (p.data.len() as u32) < p.wire_len));

    let out = ok(&kuroko(&[
        "import",
        &s.path("a.pcap"),
        &s.path("b.pcapng"),
        "--data",
        &data,
    ]));
    assert!(
        out.contains("3000 packets") && out.contains("2500 packets"),
        "{out}"
    );

    let all: Vec<Pkt> = a.iter().chain(b.iter()).cloned().collect();
    ok(&kuroko(&[
        "pcap",
        "--data",
        &data,
        "-w",
        &s.path("all.pcap"),
    ]));
    let got = read_pcap(&std::fs::read(s.path("all.pcap")).unwrap());
    assert_eq!(got.len(), all.len());
    for (i, (g, e)) in got.iter().zip(&all).enumerate() {
        assert_eq!(g, e, "packet {i} differs");
    }

    // tshark reads it, without a word on stderr, and counts the same packets.
    let t = Command::new("tshark")
        .args(["-r", &s.path("all.pcap"), "-T", "fields", "-e", "frame.len"])
        .output()
        .expect("tshark is installed (.ci/packages.txt)");
    assert!(
        t.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    // tshark's only permitted remark is the one about running as root (CI runs as root).
    let stderr = String::from_utf8_lossy(&t.stderr);
    let remarks: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("This could be dangerous"))
        .collect();
    assert!(remarks.is_empty(), "tshark warned: {remarks:?}");
    let lens: Vec<u32> = String::from_utf8_lossy(&t.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(lens, all.iter().map(|p| p.wire_len).collect::<Vec<_>>());

    // A time range (inclusive at both ends) gives exactly the packets inside it.
    let (from, to) = (all[1000].ts_ns, all[4000].ts_ns);
    ok(&kuroko(&[
        "pcap",
        "--data",
        &data,
        "--from",
        &rfc3339(from),
        "--to",
        &rfc3339(to),
        "-w",
        &s.path("range.pcap"),
    ]));
    let got = read_pcap(&std::fs::read(s.path("range.pcap")).unwrap());
    let want: Vec<Pkt> = all
        .iter()
        .filter(|p| p.ts_ns >= from && p.ts_ns <= to)
        .cloned()
        .collect();
    assert_eq!(got.len(), 3001);
    assert_eq!(got, want);

    // --query needs the session index, which only `kuroko analyze` builds: a clear error
    // that says so (the query export itself is tested in kuroko-index's conformance test).
    let q = kuroko(&[
        "pcap",
        "--data",
        &data,
        "--query",
        "protocol:http",
        "-w",
        &s.path("q.pcap"),
    ]);
    assert!(!q.status.success());
    let err = String::from_utf8_lossy(&q.stderr);
    assert!(
        err.contains("has no sessions yet") && err.contains("kuroko analyze"),
        "{err}"
    );

    // status: the retention window is the first and last packet.
    let js = ok(&kuroko(&["status", "--data", &data, "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&js).unwrap();
    let st = &v["store"];
    assert_eq!(st["stored_packets"], all.len() as u64);
    assert_eq!(st["oldest_packet_ns"], all[0].ts_ns);
    assert_eq!(st["newest_packet_ns"], all.last().unwrap().ts_ns);
    assert_eq!(st["oldest_packet"], rfc3339(all[0].ts_ns));
    assert!(st["io_mode"].as_str().unwrap().contains('+'));
    let table = ok(&kuroko(&["status", "--data", &data]));
    assert!(
        table.contains("retention window") && table.contains(&rfc3339(all[0].ts_ns)),
        "{table}"
    );
}

#[test]
fn truncated_files_keep_what_is_complete_and_foreign_link_types_are_refused() {
    let s = Scratch::new("trunc");
    let data = s.path("data");
    let pk = packets(3, 200, 1_700_000_000_000_000_000, false);
    let mut bytes = pcap_bytes(&pk, true, 1);
    let cut = 37;
    bytes.truncate(bytes.len() - cut);
    std::fs::write(s.path("cut.pcap"), &bytes).unwrap();
    let out = kuroko(&["import", &s.path("cut.pcap"), "--data", &data]);
    let stdout = ok(&out);
    assert!(stdout.contains("199 packets"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last_len = 16 + pk.last().unwrap().data.len() - cut;
    assert!(
        stderr.contains(&format!("the last {last_len} bytes")),
        "{stderr}"
    );
    ok(&kuroko(&["pcap", "--data", &data, "-w", &s.path("x.pcap")]));
    assert_eq!(
        read_pcap(&std::fs::read(s.path("x.pcap")).unwrap()),
        pk[..199].to_vec()
    );

    // 105 (IEEE 802.11) is not among the link types import takes.
    std::fs::write(s.path("raw.pcap"), pcap_bytes(&pk, false, 105)).unwrap();
    let out = kuroko(&["import", &s.path("raw.pcap"), "--data", &data]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("link type 105") && stderr.contains("not supported"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one-line error: {stderr}");

    std::fs::write(s.path("junk.pcap"), b"this is not a capture").unwrap();
    let out = kuroko(&["import", &s.path("junk.pcap"), "--data", &data]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap or pcapng file"));
    let _ = Path::new(&data);
}
