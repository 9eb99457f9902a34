//! The store benchmark behind `cargo xtask bench store` (run it in release).
//!
//! Compares, in the same run and on the same file system, the import of an in-memory pcap
//! through the whole store path (pcap parsing, record copy, crc32c, io_uring O_DIRECT
//! writes, seals, the final fdatasync) with the raw O_DIRECT sequential write speed
//! (io_uring, 1 MiB writes, the same queue depth). The comparison is made fair:
//!
//! - same preallocation state: the raw reference overwrites one file that was fallocated
//!   and synced once before the first round, as the store overwrites slot files formatted
//!   once (`Preallocate::All`); after the discarded warm-up round neither side writes into
//!   fresh (unwritten) extents, and the
//!   page cache of both is dropped (`POSIX_FADV_DONTNEED`) before the rounds;
//! - same bytes: each raw run writes exactly the bytes the paired 1500 B import wrote;
//! - a discarded warm-up round, then `--rounds` rounds in which raw and import alternate
//!   which goes first; each round's ratio pairs a raw run with the import next to it;
//! - medians with min–max spread, the load average before and after, and for each import
//!   where its wall time went: CPU of the importing thread, time it waited for a CPU
//!   (run-queue delay from `/proc/thread-self/schedstat`), time blocked on the disk.
//!
//! - each round also measures the CPU floor: the same packets copied out of the same
//!   in-memory pcap into a 1 MiB block and checksummed block by block, with no disk (the
//!   import's unavoidable work, on this core, right now). On a shared VM the vCPU's speed
//!   swings by 3× between rounds; a round whose floor is below the raw disk speed cannot
//!   reach raw speed whatever the writer does, so the summary gives the import/raw ratio
//!   over all rounds and over the rounds where the CPU could keep up.
//!
//! Also the time recovery takes to seal one full segment left open by a crash. Nothing here
//! asserts on time. Knobs for experiments (environment): `KB_SEG` segment size, `KB_QD`
//! queue depth, `KB_CHUNK` chunk size; `KB_PROFILE=N` runs only N imports of the 1500 B pcap
//! (`KB_PROFILE_LEN=64`: of the 64 B one), e.g. under `valgrind --tool=callgrind` to compare
//! two builds' instructions per packet, which a loaded machine does not change.

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
        rounds: 5,
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

/// (CPU ns, run-queue wait ns) of the calling thread.
fn thread_sched() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut f = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
    (f.next().unwrap_or(0), f.next().unwrap_or(0))
}

/// CPU seconds (user + system) of the whole process (io_uring workers included).
fn process_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    /// CPU of the importing thread.
    cpu: f64,
    /// CPU of the whole process.
    proc_cpu: f64,
    /// Waiting for a CPU (runnable, not running).
    runq: f64,
    /// Blocked waiting for writes to complete.
    wait: f64,
    submit: f64,
    open: f64,
    packets: u64,
    packet_bytes: u64,
    disk_bytes: u64,
}

fn opts() -> StoreOptions {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    StoreOptions {
        budget: (2 << 30) + kuroko_ring::META_RESERVE,
        segment_size: env("KB_SEG", 64 << 20),
        preallocate: Preallocate::All,
        queue_depth: env("KB_QD", 8) as u32,
        chunk_size: env("KB_CHUNK", 1 << 20),
        ..Default::default()
    }
}

fn import_run(dir: &Path, src: &[u8]) -> Run {
    let mut w = SegmentWriter::open(dir, &opts()).expect("open the bench store");
    let (c0, t0, s0) = (process_cpu(), Instant::now(), thread_sched());
    let rep = import(&mut w, src, 0, "bench", |_| {}).expect("import");
    let times = w.times();
    let stats = w.close().expect("close");
    let secs = t0.elapsed().as_secs_f64();
    let s1 = thread_sched();
    Run {
        secs,
        cpu: (s1.0 - s0.0) as f64 / 1e9,
        proc_cpu: process_cpu() - c0,
        runq: (s1.1 - s0.1) as f64 / 1e9,
        wait: times.wait_ns as f64 / 1e9,
        submit: times.submit_ns as f64 / 1e9,
        open: times.open_ns as f64 / 1e9,
        packets: rep.packets,
        packet_bytes: rep.bytes,
        disk_bytes: stats.bytes_written,
    }
}

/// The CPU floor of importing `src` (a pcap made by [`pcap`]): every packet's bytes copied
/// into a 1 MiB block (wrapping) and each full block checksummed, as the writer does, with
/// no disk. Returns bytes per second.
fn cpu_floor(src: &[u8]) -> f64 {
    let mut block = vec![0u8; 1 << 20];
    let (mut at, mut off, mut bytes, mut sum) = (0usize, 24usize, 0u64, 0u32);
    let t = Instant::now();
    while off + 16 <= src.len() {
        let cap = u32::from_le_bytes(src[off + 8..off + 12].try_into().expect("4 bytes")) as usize;
        let data = &src[off + 16..(off + 16 + cap).min(src.len())];
        if at + 24 + data.len() > block.len() {
            sum ^= kuroko_ring::crc::crc32c(&block[..at]);
            at = 0;
        }
        block[at..at + 24].copy_from_slice(&src[off..off + 24]);
        block[at + 24..at + 24 + data.len()].copy_from_slice(data);
        at += (24 + data.len()).next_multiple_of(8);
        bytes += data.len() as u64 + 24;
        off += 16 + cap;
    }
    sum ^= kuroko_ring::crc::crc32c(&block[..at]);
    std::hint::black_box(sum);
    bytes as f64 / t.elapsed().as_secs_f64()
}

/// Median, min, max.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn fmt3((m, lo, hi): (f64, f64, f64), scale: f64, unit: &str) -> String {
    format!(
        "{:.2}{unit} ({:.2}–{:.2})",
        m / scale,
        lo / scale,
        hi / scale
    )
}

fn main() {
    let a = parse_args();
    let _ = std::fs::remove_dir_all(&a.dir);
    std::fs::create_dir_all(&a.dir).expect("create the bench dir");
    let load_before = loadavg();
    let store = a.dir.join("store");
    eprintln!("formatting a 2 GiB ring in {} …", store.display());
    let w = SegmentWriter::open(&store, &opts()).expect("create the bench store");
    let io = w.io_info();
    w.close().expect("close");
    eprintln!("building the in-memory pcaps …");
    let small = pcap(a.small_packets, 64);
    let large = pcap(a.large_packets, 1500);

    if let Some(n) = std::env::var("KB_PROFILE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // Imports only (for a profiler attached to this process, or callgrind's
        // instruction counts): `KB_PROFILE_LEN=64` imports the 64 B pcap instead.
        let len = std::env::var("KB_PROFILE_LEN").unwrap_or_default();
        let (pcap, len) = if len == "64" {
            (&small, 64)
        } else {
            (&large, 1500)
        };
        for _ in 0..n {
            let r = import_run(&store, pcap);
            eprintln!(
                "import {len} B: {:.2} GB/s, {} packets",
                r.disk_bytes as f64 / r.secs / 1e9,
                r.packets
            );
        }
        return;
    }
    // Warm-up (discarded): learns how many bytes a 1500 B import writes and brings both the
    // store's slots and the raw file into the same state (written extents, not cached).
    let warm = import_run(&store, &large);
    let raw_bytes = warm.disk_bytes;
    let raw_path = a.dir.join("raw.bin");
    kuroko_ring::disk::prepare_raw_file(&raw_path, raw_bytes).expect("raw file");
    let raw_run = || {
        kuroko_ring::disk::raw_write_speed(
            &raw_path,
            raw_bytes,
            1 << 20,
            opts().queue_depth as usize,
        )
        .expect("raw write")
    };
    let _ = raw_run();
    kuroko_ring::disk::drop_cache(&store.join("segments")).expect("drop cache");
    kuroko_ring::disk::drop_cache(&a.dir).expect("drop cache");

    let mut raw = Vec::new();
    let mut ratios = Vec::new();
    let mut runs64 = Vec::new();
    let mut runs1500 = Vec::new();
    let mut floors = Vec::new();
    for round in 0..a.rounds {
        let floor = cpu_floor(&large);
        let (rw, r1500) = if round % 2 == 0 {
            let rw = raw_run();
            (rw, import_run(&store, &large))
        } else {
            let r = import_run(&store, &large);
            (raw_run(), r)
        };
        let r64 = import_run(&store, &small);
        let ratio = r1500.disk_bytes as f64 / r1500.secs / rw.bytes_per_sec();
        eprintln!(
            "round {}: CPU floor {:.2} GB/s | raw {:.2} GB/s | 1500 B {:.2} GB/s = {:.0}% of raw (thread CPU {:.0}%, run-queue wait {:.0}%, blocked on disk {:.0}%, submit {:.0}%, open {:.0}%, process CPU {:.0}%) | 64 B {:.2} Mpps (thread CPU {:.0}%, run-queue wait {:.0}%)",
            round + 1,
            floor / 1e9,
            rw.bytes_per_sec() / 1e9,
            r1500.disk_bytes as f64 / r1500.secs / 1e9,
            ratio * 100.0,
            r1500.cpu / r1500.secs * 100.0,
            r1500.runq / r1500.secs * 100.0,
            r1500.wait / r1500.secs * 100.0,
            r1500.submit / r1500.secs * 100.0,
            r1500.open / r1500.secs * 100.0,
            r1500.proc_cpu / r1500.secs * 100.0,
            r64.packets as f64 / r64.secs / 1e6,
            r64.cpu / r64.secs * 100.0,
            r64.runq / r64.secs * 100.0,
        );
        raw.push(rw);
        ratios.push(ratio);
        floors.push(floor);
        runs64.push(r64);
        runs1500.push(r1500);
    }
    let _ = std::fs::remove_file(&raw_path);
    let load_after = loadavg();

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

    let raw_bps = stats(raw.iter().map(|r| r.bytes_per_sec()).collect());
    let disk_bps = |v: &[Run]| stats(v.iter().map(|r| r.disk_bytes as f64 / r.secs).collect());
    let data_bps = |v: &[Run]| stats(v.iter().map(|r| r.packet_bytes as f64 / r.secs).collect());
    let pps = |v: &[Run]| stats(v.iter().map(|r| r.packets as f64 / r.secs).collect());
    let pps_cpu = |v: &[Run]| {
        stats(
            v.iter()
                .map(|r| r.packets as f64 / r.cpu.max(1e-9))
                .collect(),
        )
    };
    let share =
        |v: &[Run], f: fn(&Run) -> f64| stats(v.iter().map(|r| f(r) / r.secs).collect()).0 * 100.0;
    let per_pkt = |v: &[Run]| v[0].disk_bytes as f64 / v[0].packets as f64;
    let ratio = stats(ratios.clone());
    // Rounds in which copying and checksumming alone ran faster than the raw disk.
    let able: Vec<f64> = (0..ratios.len())
        .filter(|&i| floors[i] > raw[i].bytes_per_sec())
        .map(|i| ratios[i])
        .collect();
    let ratio_able = (!able.is_empty()).then(|| stats(able.clone()));
    let mode = match io.mode {
        kuroko_ring::format::io_mode::URING_DIRECT => "io_uring + O_DIRECT",
        kuroko_ring::format::io_mode::PWRITE_DIRECT => "pwrite + O_DIRECT",
        _ => "pwrite (page cache)",
    };

    println!(
        "store benchmark: {} rounds (+1 warm-up), median (min–max); store writes with {mode}; load average {load_before} before, {load_after} after",
        a.rounds
    );
    println!(
        "raw O_DIRECT sequential overwrite (io_uring, 1 MiB × qd {}{}, same file system, {:.2} GB per run): {}",
        opts().queue_depth,
        if raw[0].uring_direct {
            ""
        } else {
            ", FELL BACK to pwrite"
        },
        raw_bytes as f64 / 1e9,
        fmt3(raw_bps, 1e9, " GB/s")
    );
    println!(
        "import 1500 B: {} on disk ({} of packet data), {} kpps, {:.0} B on disk per packet (pcap 1516) → {} of raw, paired per round",
        fmt3(disk_bps(&runs1500), 1e9, " GB/s"),
        fmt3(data_bps(&runs1500), 1e9, " GB/s"),
        fmt3(pps(&runs1500), 1e3, ""),
        per_pkt(&runs1500),
        fmt3(
            (ratio.0 * 100.0, ratio.1 * 100.0, ratio.2 * 100.0),
            1.0,
            " %"
        ),
    );
    println!(
        "  CPU floor (the same packets copied and checksummed, no disk): {}; in the {} of {} rounds where it was above the raw speed: {} of raw",
        fmt3(stats(floors.clone()), 1e9, " GB/s"),
        able.len(),
        ratios.len(),
        ratio_able.map_or("-".to_string(), |r| fmt3(
            (r.0 * 100.0, r.1 * 100.0, r.2 * 100.0),
            1.0,
            " %"
        )),
    );
    println!(
        "  where the 1500 B import's wall time went (medians): thread CPU {:.0}%, run-queue wait {:.0}%, blocked on the disk {:.0}%, submitting {:.0}%, opening segments {:.0}%",
        share(&runs1500, |r| r.cpu),
        share(&runs1500, |r| r.runq),
        share(&runs1500, |r| r.wait),
        share(&runs1500, |r| r.submit),
        share(&runs1500, |r| r.open),
    );
    println!(
        "import 64 B: {} Mpps wall, {} Mpps per CPU-second of the writing thread, {:.1} B on disk per packet (pcap 80)",
        fmt3(pps(&runs64), 1e6, ""),
        fmt3(pps_cpu(&runs64), 1e6, ""),
        per_pkt(&runs64),
    );
    println!("recovery of one full 64 MiB segment left open by a crash: {recovery_ms:.1} ms");
    if let Some(out) = &a.out {
        let json = format!(
            "{{\"rounds\":{},\"load_before\":\"{load_before}\",\"load_after\":\"{load_after}\",\"raw_bytes_per_sec\":{:.0},\"raw_min\":{:.0},\"raw_max\":{:.0},\"import_1500\":{{\"disk_bytes_per_sec\":{:.0},\"data_bytes_per_sec\":{:.0},\"packets_per_sec\":{:.0},\"disk_bytes_per_packet\":{:.1},\"ratio_to_raw\":{:.3},\"ratio_min\":{:.3},\"ratio_max\":{:.3},\"cpu_floor_bytes_per_sec\":{:.0},\"rounds_cpu_above_raw\":{},\"ratio_to_raw_when_cpu_above_raw\":{}}},\"import_64\":{{\"packets_per_sec\":{:.0},\"packets_per_cpu_sec\":{:.0},\"disk_bytes_per_packet\":{:.1}}},\"recovery_ms_per_segment\":{recovery_ms:.1},\"io_mode\":\"{mode}\"}}\n",
            a.rounds,
            raw_bps.0,
            raw_bps.1,
            raw_bps.2,
            disk_bps(&runs1500).0,
            data_bps(&runs1500).0,
            pps(&runs1500).0,
            per_pkt(&runs1500),
            ratio.0,
            ratio.1,
            ratio.2,
            stats(floors.clone()).0,
            able.len(),
            ratio_able.map_or("null".to_string(), |r| format!("{:.3}", r.0)),
            pps(&runs64).0,
            pps_cpu(&runs64).0,
            per_pkt(&runs64),
        );
        std::fs::write(out, json).expect("write the result file");
    }
    let _ = std::fs::remove_dir_all(&a.dir);
}
