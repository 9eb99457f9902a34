//! How a slot file's preparation changes the cost of writing it (run in release).
//!
//! For each preparation (fallocate + zero fill, fallocate only, fallocate + ZERO_RANGE), a
//! new file of `--mib` MiB in `--dir` (a cold file: created, synced, page cache dropped) is
//! prepared, then overwritten once sequentially with 1 MiB O_DIRECT io_uring writes (queue
//! depth 8) and an fdatasync, as the store's writer writes a segment. Reported per mode:
//! preparation wall and CPU time, write wall time, the CPU this process spent during the
//! write (its io_uring workers included: they are its threads), and the machine's busy CPU
//! during the write from /proc/stat (kernel workers that convert unwritten extents are not
//! the process's; other users of the machine add noise to that column). Modes alternate
//! order round by round. Nothing asserts on time.
//!
//! With `--prepare-slots N` (and `--seg-mib M`, default 64) it also times what `disk
//! prepare` does: a store of N slots opened with `Preallocate::All` in a new directory.

use kuroko_ring::disk::{Prealloc, prepare_raw_file_as, raw_write_speed};
use std::path::PathBuf;
use std::time::Instant;

/// utime + stime of this process, its threads included (`/proc/self/stat`, 10 ms ticks).
fn cpu_self() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn busy_machine() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = s.lines().next().unwrap_or("");
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return 0.0;
    }
    let idle = v[3] + v[4];
    (v.iter().sum::<f64>() - idle) / 100.0
}

fn main() {
    let mut dir = std::env::temp_dir();
    let mut mib: u64 = 512;
    let mut rounds = 3;
    let mut prepare_slots: u64 = 0;
    let mut seg_mib: u64 = 64;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().expect("value");
        match k.as_str() {
            "--dir" => dir = PathBuf::from(v),
            "--mib" => mib = v.parse().expect("--mib N"),
            "--rounds" => rounds = v.parse().expect("--rounds N"),
            "--prepare-slots" => prepare_slots = v.parse().expect("--prepare-slots N"),
            "--seg-mib" => seg_mib = v.parse().expect("--seg-mib M"),
            _ => panic!("unknown option {k}"),
        }
    }
    std::fs::create_dir_all(&dir).expect("dir");
    if prepare_slots > 0 {
        let data = dir.join("prepare-store");
        let _ = std::fs::remove_dir_all(&data);
        let opts = kuroko_ring::StoreOptions {
            budget: prepare_slots * (seg_mib << 20) + kuroko_ring::META_RESERVE,
            segment_size: seg_mib << 20,
            preallocate: kuroko_ring::Preallocate::All,
            ..Default::default()
        };
        let (t0, c0) = (Instant::now(), cpu_self());
        let w = kuroko_ring::SegmentWriter::open(&data, &opts).expect("prepare");
        w.close().expect("close");
        let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_self() - c0);
        println!(
            "prepare: {prepare_slots} slots x {seg_mib} MiB: {wall:.2} s wall ({:.2} ms/slot), {cpu:.2} s CPU",
            wall * 1e3 / prepare_slots as f64
        );
        let _ = std::fs::remove_dir_all(&data);
        return;
    }
    let bytes = mib << 20;
    let modes = [Prealloc::ZeroFill, Prealloc::Fallocate, Prealloc::ZeroRange];
    println!(
        "mode,round,prep_wall_s,prep_cpu_s,prep_busy_machine_s,write_wall_s,write_cpu_self_s,write_busy_machine_s,MB_per_s"
    );
    for r in 0..rounds {
        for i in 0..modes.len() {
            let m = modes[(i + r) % modes.len()];
            let path = dir.join(format!("prealloc-{}.raw", m.name()));
            let _ = std::fs::remove_file(&path);
            let (t0, c0, b0) = (Instant::now(), cpu_self(), busy_machine());
            if let Err(e) = prepare_raw_file_as(&path, bytes, m) {
                println!("{},{r},error: {e}", m.name());
                continue;
            }
            // The zeros of a zero fill reach the disk by the sync inside the preparation.
            let (pw, pc, pb) = (
                t0.elapsed().as_secs_f64(),
                cpu_self() - c0,
                busy_machine() - b0,
            );
            let (c1, b1) = (cpu_self(), busy_machine());
            let w = raw_write_speed(&path, bytes, 1 << 20, 8).expect("write");
            let (wc, wb) = (cpu_self() - c1, busy_machine() - b1);
            println!(
                "{},{r},{pw:.3},{pc:.3},{pb:.2},{:.3},{wc:.3},{wb:.2},{:.0}",
                m.name(),
                w.secs,
                w.bytes_per_sec() / 1e6
            );
            let _ = std::fs::remove_file(&path);
        }
    }
}
