//! The store benchmark behind `cargo xtask bench store` (run it in release).
//!
//! Interleaved, `--rounds` times: the raw O_DIRECT sequential write speed of the file
//! system holding `--dir` (io_uring, 1 MiB writes, queue depth 8, into a zero-filled
//! file: the same conditions the store's preallocated segments give it), then the import
//! of an in-memory pcap of 64-byte packets and one of 1500-byte packets through the full
//! path (pcap parsing, record copy, crc32c, io_uring O_DIRECT writes, final fdatasync).
//! Reported: medians, GB/s and packets/s, CPU time per packet, bytes on disk per packet,
//! and the ratios to the raw speed measured in the same run. Also the time recovery takes
//! to seal one full segment left open by a crash. Nothing here asserts on time.
//!
//! Knobs for experiments (environment): `KB_SEG` segment size, `KB_QD` queue depth,
//! `KB_CHUNK` chunk size, all in bytes/count.

use kuroko_ring::pcap::import;
use kuroko_ring::{Preallocate, RecordMeta, SegmentWriter, StoreOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Args {
    dir: PathBuf,
    out: Option<PathBuf>,
    rounds: usize,
    small_packets: usize,
    large_packets: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        dir: std::env::temp_dir().join("kuroko-store-bench"),
        out: None,
        rounds: 3,
        small_packets: 4_000_000,
        large_packets: 700_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--dir" => a.dir = v.into(),
            "--out" => a.out = Some(v.into()),
            "--rounds" => a.rounds = v.parse().expect("--rounds N"),
            "--small" => a.small_packets = v.parse().expect("--small N"),
            "--large" => a.large_packets = v.parse().expect("--large N"),
            _ => panic!("unknown option {k}"),
        }
    }
    a
}

/// A pcap (ns) of `n` Ethernet frames of `len` bytes with increasing timestamps.
fn pcap(n: usize, len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(24 + n * (16 + len));
    b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    b.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    let mut frame = vec![0u8; len];
    for (i, x) in frame.iter_mut().enumerate() {
        *x = (i * 7) as u8;
    }
    frame[12] = 0x08;
    frame[13] = 0x00;
    let t0 = 1_763_425_800_000_000_000u64;
    for i in 0..n {
        let ts = t0 + i as u64 * 1000;
        b.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(&(len as u32).to_le_bytes());
        frame[14..22].copy_from_slice(&(i as u64).to_le_bytes());
        b.extend_from_slice(&frame);
    }
    b
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

struct Run {
    secs: f64,
    cpu: f64,
    packets: u64,
    packet_bytes: u64,
    disk_bytes: u64,
}

fn opts() -> StoreOptions {
    StoreOptions {
        budget: (2 << 30) + kuroko_ring::META_RESERVE,
        segment_size: std::env::var("KB_SEG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64 << 20),
        preallocate: Preallocate::All,
        queue_depth: std::env::var("KB_QD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8),
        chunk_size: std::env::var("KB_CHUNK")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 20),
        ..Default::default()
    }
}

fn import_run(dir: &Path, src: &[u8]) -> Run {
    let mut w = SegmentWriter::open(dir, &opts()).expect("open the bench store");
    let bytes0 = w.stats().bytes_written;
    let (c0, t0) = (cpu_secs(), Instant::now());
    let rep = import(&mut w, src, 0, "bench", |_| {}).expect("import");
    let stats = w.close().expect("close");
    let secs = t0.elapsed().as_secs_f64();
    Run {
        secs,
        cpu: cpu_secs() - c0,
        packets: rep.packets,
        packet_bytes: rep.bytes,
        disk_bytes: stats.bytes_written - bytes0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let a = parse_args();
    let _ = std::fs::remove_dir_all(&a.dir);
    std::fs::create_dir_all(&a.dir).expect("create the bench dir");
    let store = a.dir.join("store");
    eprintln!("formatting a 2 GiB ring in {} …", store.display());
    let w = SegmentWriter::open(&store, &opts()).expect("create the bench store");
    let io = w.io_info();
    w.close().expect("close");
    eprintln!("building the in-memory pcaps …");
    let small = pcap(a.small_packets, 64);
    let large = pcap(a.large_packets, 1500);

    let mut raw = Vec::new();
    let mut runs64 = Vec::new();
    let mut runs1500 = Vec::new();
    for round in 0..a.rounds {
        let r64 = import_run(&store, &small);
        let r1500 = import_run(&store, &large);
        let rw = kuroko_ring::disk::raw_write_speed(
            &a.dir.join("raw.bin"),
            r1500.disk_bytes,
            1 << 20,
            8,
        )
        .expect("raw write");
        eprintln!(
            "round {}: raw {:.2} GB/s; 64 B {:.2} Mpps (CPU {:.0}%); 1500 B {:.2} GB/s on disk (CPU {:.0}%)",
            round + 1,
            rw.bytes_per_sec() / 1e9,
            r64.packets as f64 / r64.secs / 1e6,
            r64.cpu / r64.secs * 100.0,
            r1500.disk_bytes as f64 / r1500.secs / 1e9,
            r1500.cpu / r1500.secs * 100.0
        );
        raw.push(rw);
        runs64.push(r64);
        runs1500.push(r1500);
    }
    let _ = std::fs::remove_file(a.dir.join("raw.bin"));

    // Recovery: one full segment left open by a "crash" (writer dropped without close).
    let rec_dir = a.dir.join("recovery");
    let seg_opts = StoreOptions {
        budget: (256 << 20) + kuroko_ring::META_RESERVE,
        segment_size: 64 << 20,
        ..Default::default()
    };
    let mut w = SegmentWriter::open(&rec_dir, &seg_opts).expect("open");
    let frame = vec![0x42u8; 1500];
    let per_seg = (63 << 20) / 1536;
    for i in 0..per_seg {
        let meta = RecordMeta {
            ts_ns: i as u64,
            wire_len: 1500,
            ..Default::default()
        };
        w.append(&meta, &[&frame]).expect("append");
    }
    w.sync().expect("sync");
    drop(w);
    let t = Instant::now();
    let w = SegmentWriter::open(&rec_dir, &seg_opts).expect("recover");
    let recovery_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(
        w.recovery().sealed_slots.len(),
        1,
        "the open segment was recovered"
    );
    drop(w);

    let raw_bps = median(raw.iter().map(|r| r.bytes_per_sec()).collect());
    let disk_bps = |v: &[Run]| median(v.iter().map(|r| r.disk_bytes as f64 / r.secs).collect());
    let data_bps = |v: &[Run]| median(v.iter().map(|r| r.packet_bytes as f64 / r.secs).collect());
    let pps = |v: &[Run]| median(v.iter().map(|r| r.packets as f64 / r.secs).collect());
    let pps_cpu = |v: &[Run]| {
        median(
            v.iter()
                .map(|r| r.packets as f64 / r.cpu.max(1e-9))
                .collect(),
        )
    };
    let per_pkt = |v: &[Run]| v[0].disk_bytes as f64 / v[0].packets as f64;
    let mode = match io.mode {
        kuroko_ring::format::io_mode::URING_DIRECT => "io_uring + O_DIRECT",
        kuroko_ring::format::io_mode::PWRITE_DIRECT => "pwrite + O_DIRECT",
        _ => "pwrite (page cache)",
    };

    println!(
        "store benchmark: {} rounds, medians; store writes with {mode}",
        a.rounds
    );
    println!(
        "raw O_DIRECT sequential write (io_uring, 1 MiB × qd 8{}, same file system): {:.2} GB/s",
        if raw[0].uring_direct {
            ""
        } else {
            ", FELL BACK to pwrite"
        },
        raw_bps / 1e9
    );
    println!(
        "import 1500 B: {:.2} GB/s on disk ({:.2} GB/s of packet data), {:.0} kpps, {:.0} B on disk per packet (pcap 1516) → {:.0}% of raw (packet data: {:.0}%)",
        disk_bps(&runs1500) / 1e9,
        data_bps(&runs1500) / 1e9,
        pps(&runs1500) / 1e3,
        per_pkt(&runs1500),
        disk_bps(&runs1500) / raw_bps * 100.0,
        data_bps(&runs1500) / raw_bps * 100.0
    );
    println!(
        "import 64 B: {:.2} Mpps wall, {:.2} Mpps per CPU-second, {:.2} GB/s on disk, {:.1} B on disk per packet (pcap 80) → {:.0}% of raw",
        pps(&runs64) / 1e6,
        pps_cpu(&runs64) / 1e6,
        disk_bps(&runs64) / 1e9,
        per_pkt(&runs64),
        disk_bps(&runs64) / raw_bps * 100.0
    );
    println!("recovery of one full 64 MiB segment left open by a crash: {recovery_ms:.1} ms");
    if let Some(out) = &a.out {
        let json = format!(
            "{{\"raw_bytes_per_sec\":{raw_bps:.0},\"import_1500\":{{\"disk_bytes_per_sec\":{:.0},\"data_bytes_per_sec\":{:.0},\"packets_per_sec\":{:.0},\"disk_bytes_per_packet\":{:.1},\"ratio_to_raw\":{:.3}}},\"import_64\":{{\"packets_per_sec\":{:.0},\"packets_per_cpu_sec\":{:.0},\"disk_bytes_per_packet\":{:.1},\"ratio_to_raw\":{:.3}}},\"recovery_ms_per_segment\":{recovery_ms:.1},\"io_mode\":\"{mode}\"}}\n",
            disk_bps(&runs1500),
            data_bps(&runs1500),
            pps(&runs1500),
            per_pkt(&runs1500),
            disk_bps(&runs1500) / raw_bps,
            pps(&runs64),
            pps_cpu(&runs64),
            per_pkt(&runs64),
            disk_bps(&runs64) / raw_bps,
        );
        std::fs::write(out, json).expect("write the result file");
    }
    let _ = std::fs::remove_dir_all(&a.dir);
}
