//! Store-side scaling of lanes: one writer (`SegmentWriter::append`, today's single
//! capture thread) against 1 and 2 lanes (`SegmentWriter::into_lanes`), each appending
//! thread copying frames of one size as fast as the store takes them for a few seconds.
//! Prints packets/s (wall; bound by the disk at large frames) and CPU ns per stored packet
//! (the appending threads' own CPU time, CLOCK_THREAD_CPUTIME_ID, so other load on the
//! machine is not counted; a refused append sleeps 50 µs instead of spinning).
//!
//! `cargo run --release -p kuroko-ring --example lanes_bench -- DIR SECONDS LEN...`
//! (DIR on the disk to measure; a ring of 512 MiB is made and removed there).

use kuroko_ring::{AppendError, RecordMeta, SegmentWriter, StoreOptions};
use std::path::Path;
use std::time::{Duration, Instant};

fn opts() -> StoreOptions {
    StoreOptions {
        budget: (512 << 20) + kuroko_ring::META_RESERVE,
        segment_size: 64 << 20,
        nonblocking: true,
        ..Default::default()
    }
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Appends `frame` until `d` is over; returns (stored, refused, cpu ns).
fn run(
    d: Duration,
    frame: &[u8],
    mut append: impl FnMut(&RecordMeta, &[u8]) -> bool,
) -> (u64, u64, u64) {
    let c0 = thread_cpu_ns();
    let t0 = Instant::now();
    let (mut ok, mut refused, mut i) = (0u64, 0u64, 0u64);
    while t0.elapsed() < d {
        for _ in 0..256 {
            i += 1;
            let meta = RecordMeta {
                ts_ns: 1_700_000_000_000_000_000 + i,
                wire_len: frame.len() as u32,
                iface: 0,
                flags: 0,
            };
            if append(&meta, frame) {
                ok += 1;
            } else {
                // The disk is behind: wait rather than spin, so the CPU per packet is the
                // work of storing it, not of asking again.
                refused += 1;
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
    (ok, refused, thread_cpu_ns() - c0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).map_or("/var/tmp", String::as_str))
        .join(format!("lanes-bench-{}", std::process::id()));
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let lens: Vec<usize> = args[3.min(args.len())..]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let lens = if lens.is_empty() {
        vec![64, 1500]
    } else {
        lens
    };
    let d = Duration::from_secs_f64(secs);
    println!("| frame | writers | packets/s (wall) | CPU ns/packet | refused |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    for len in lens {
        let frame = vec![0x5au8; len];
        // One writer, as capture with one thread.
        let _ = std::fs::remove_dir_all(&dir);
        let mut w = SegmentWriter::open(&dir, &opts()).expect("open");
        let t0 = Instant::now();
        let (ok, refused, cpu) = run(d, &frame, |m, f| match w.append(m, &[f]) {
            Ok(()) => true,
            Err(AppendError::Backpressure) => {
                w.poll();
                false
            }
            Err(e) => panic!("{e}"),
        });
        let wall = t0.elapsed().as_secs_f64();
        w.close().expect("close");
        println!(
            "| {len} | 1 writer | {:.0} | {:.0} | {refused} |",
            ok as f64 / wall,
            cpu as f64 / ok.max(1) as f64
        );
        for n in [1usize, 2] {
            let _ = std::fs::remove_dir_all(&dir);
            let w = SegmentWriter::open(&dir, &opts()).expect("open");
            let t0 = Instant::now();
            let handles: Vec<_> = w
                .into_lanes(n)
                .into_iter()
                .map(|mut lane| {
                    let frame = frame.clone();
                    std::thread::spawn(move || {
                        let r = run(d, &frame, |m, f| match lane.append(m, &[f]) {
                            Ok(()) => true,
                            Err(AppendError::Backpressure) => {
                                lane.poll().expect("poll");
                                false
                            }
                            Err(e) => panic!("{e}"),
                        });
                        lane.close().expect("close");
                        r
                    })
                })
                .collect();
            let rs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let wall = t0.elapsed().as_secs_f64();
            let ok: u64 = rs.iter().map(|r| r.0).sum();
            let refused: u64 = rs.iter().map(|r| r.1).sum();
            let cpu: u64 = rs.iter().map(|r| r.2).sum();
            println!(
                "| {len} | {n} lane(s) | {:.0} | {:.0} | {refused} |",
                ok as f64 / wall,
                cpu as f64 / ok.max(1) as f64
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
