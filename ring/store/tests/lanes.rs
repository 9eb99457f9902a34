//! Lanes: two threads appending to one store at once (`SegmentWriter::into_lanes`).
//!
//! - every packet appended is stored exactly once, intact, each lane's packets in the
//!   order that lane appended them, with flushes (partly filled blocks) in between;
//! - a wrapped ring keeps, per lane, exactly the newest packets (retention by sequence);
//! - kill -9 of a process writing with two lanes: recovery keeps every packet that was
//!   flushed before the kill, without damage or duplicates, and a new writer goes on.
//!
//! The crash child is this same test binary, started with `KR_LANES_CHILD` set.

use kuroko_ring::{AppendError, LaneWriter, Position, RecordMeta, SegmentWriter, StoreOptions};
use kuroko_ring::{StoreReader, WriterStats};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Command, Stdio};

fn opts(segments: u64) -> StoreOptions {
    StoreOptions {
        budget: segments * 256 * 1024 + kuroko_ring::META_RESERVE,
        segment_size: 256 * 1024,
        chunk_size: 64 * 1024,
        nonblocking: true,
        queue_depth: 8,
        ..Default::default()
    }
}

/// Packet `i` of lane `lane`: its id, time and bytes follow from them alone.
fn id(lane: u64, i: u64) -> u64 {
    (lane << 40) | i
}

fn payload(id: u64) -> Vec<u8> {
    let len = 60 + (id.wrapping_mul(7919) % 1400) as usize;
    let mut v = id
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .to_le_bytes()
        .repeat(len / 8 + 1);
    v.truncate(len);
    v[..8].copy_from_slice(&id.to_le_bytes());
    v
}

/// Appends packets `from..to` of `lane`, retrying (after a poll) on backpressure, with a
/// flush every `flush_every` packets; calls `flushed(i)` after each flush.
fn write_lane(
    w: &mut LaneWriter,
    lane: u64,
    from: u64,
    to: u64,
    flush_every: u64,
    mut flushed: impl FnMut(u64),
) {
    for i in from..to {
        let p = payload(id(lane, i));
        let meta = RecordMeta {
            // Both lanes' clocks run together, as two capture threads' would.
            ts_ns: 1_000_000 + i * 2 + lane,
            wire_len: p.len() as u32,
            iface: lane as u16,
            flags: 0,
        };
        let mut tries = 0u32;
        loop {
            match w.append(&meta, &[&p[..20], &p[20..]]) {
                Ok(()) => break,
                Err(AppendError::Backpressure) => {
                    w.poll().unwrap();
                    tries += 1;
                    assert!(tries < 1_000_000, "the store never took packet {i}");
                    std::thread::yield_now();
                }
                Err(e) => panic!("append: {e}"),
            }
        }
        if (i + 1) % flush_every == 0 {
            w.flush().unwrap();
            flushed(i + 1);
        }
    }
}

/// Every stored packet as (lane, i) in read order; panics on a packet not exactly as
/// written, and on damage.
fn read_all(dir: &Path) -> Vec<(u64, u64)> {
    let reader = StoreReader::open(dir).unwrap();
    let mut out = Vec::new();
    let rep = reader
        .scan(Position::ORIGIN, |p| {
            let id = u64::from_le_bytes(p.data[..8].try_into().unwrap());
            assert_eq!(p.data, &payload(id)[..], "packet {id:#x} is torn or wrong");
            let (lane, i) = (id >> 40, id & ((1 << 40) - 1));
            assert_eq!(p.ts_ns, 1_000_000 + i * 2 + lane);
            out.push((lane, i));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(rep.damage.is_empty(), "damage: {:?}", rep.damage);
    out
}

/// Per lane, the ids read, in read order.
fn per_lane(read: &[(u64, u64)]) -> [Vec<u64>; 2] {
    let mut lanes = [Vec::new(), Vec::new()];
    for &(l, i) in read {
        lanes[l as usize].push(i);
    }
    lanes
}

/// Runs two lanes in two threads; returns the final writer counters (from the lane that
/// closed last).
fn two_threads(dir: &Path, segments: u64, n: u64, flush_every: u64) -> WriterStats {
    let w = SegmentWriter::open(dir, &opts(segments)).unwrap();
    let lanes = w.into_lanes(2);
    let handles: Vec<_> = lanes
        .into_iter()
        .enumerate()
        .map(|(l, mut lane)| {
            std::thread::spawn(move || {
                write_lane(&mut lane, l as u64, 0, n, flush_every, |_| {});
                lane.close().unwrap()
            })
        })
        .collect();
    let finals: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        finals.iter().filter(|f| f.is_some()).count(),
        1,
        "exactly the last lane closes the writer"
    );
    finals.into_iter().flatten().next().unwrap()
}

#[test]
fn two_lanes_store_every_packet_once_in_lane_order() {
    let dir = tempfile::tempdir().unwrap();
    let n = 6_000;
    let stats = two_threads(dir.path(), 64, n, 997);
    assert_eq!(stats.packets_written, 2 * n);
    let read = read_all(dir.path());
    assert_eq!(read.len() as u64, 2 * n, "every packet exactly once");
    let unique: HashSet<_> = read.iter().collect();
    assert_eq!(unique.len(), read.len(), "no duplicates");
    for (l, ids) in per_lane(&read).iter().enumerate() {
        assert_eq!(*ids, (0..n).collect::<Vec<_>>(), "lane {l} in its order");
    }
    // More than one segment was written and sealed, and the store reopens cleanly and
    // appends in place.
    let reader = StoreReader::open(dir.path()).unwrap();
    assert!(reader.segments().len() > 2, "{:?}", reader.segments());
    let w = SegmentWriter::open(dir.path(), &opts(64)).unwrap();
    assert!(w.recovery().sealed_slots.is_empty());
    w.close().unwrap();
}

#[test]
fn two_lanes_wrap_keeps_the_newest_of_each_lane() {
    let dir = tempfile::tempdir().unwrap();
    let n = 8_000;
    two_threads(dir.path(), 6, n, 1_501);
    let read = read_all(dir.path());
    assert!((read.len() as u64) < 2 * n, "the ring wrapped");
    assert!(!read.is_empty());
    // A lane whose thread ran far ahead may have been overwritten entirely.
    for (l, ids) in per_lane(&read).iter().enumerate() {
        let Some(&first) = ids.first() else { continue };
        assert_eq!(
            *ids,
            (first..n).collect::<Vec<_>>(),
            "lane {l}: a contiguous run ending with its newest packet"
        );
    }
}

const CHILD_ENV: &str = "KR_LANES_CHILD";

/// The crash child: two lanes from where the store ends, printing after each flush of
/// lane L how far it got ("L i").
fn child(dir: &Path) {
    let w = SegmentWriter::open(dir, &opts(256)).unwrap();
    let read = read_all(dir);
    let starts = per_lane(&read).map(|ids| ids.last().map_or(0, |l| l + 1));
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let handles: Vec<_> = w
        .into_lanes(2)
        .into_iter()
        .enumerate()
        .map(|(l, mut lane)| {
            let out = out.clone();
            let start = starts[l];
            std::thread::spawn(move || {
                write_lane(&mut lane, l as u64, start, start + 1_000_000, 300, |i| {
                    let mut o = out.lock().unwrap();
                    writeln!(o, "{l} {i}").unwrap();
                    o.flush().unwrap();
                    std::thread::sleep(std::time::Duration::from_micros(300));
                });
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn kill_9_with_two_lanes_loses_nothing_flushed() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut flushed = [0u64; 2];
    for round in 0..4 {
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_with_two_lanes_loses_nothing_flushed",
                "--nocapture",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
        // Let both lanes flush a few times, then kill.
        let mut seen = 0;
        while seen < 6 + round * 3 {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            let mut f = line.split(' ');
            let (Some(l), Some(i)) = (f.next(), f.next()) else {
                continue;
            };
            let (Ok(l), Ok(i)) = (l.parse::<usize>(), i.parse::<u64>()) else {
                continue;
            };
            flushed[l] = flushed[l].max(i);
            seen += 1;
        }
        c.kill().unwrap();
        c.wait().unwrap();
        let read = read_all(dir.path());
        let unique: HashSet<_> = read.iter().collect();
        assert_eq!(unique.len(), read.len(), "round {round}: no duplicates");
        for (l, ids) in per_lane(&read).iter().enumerate() {
            assert_eq!(
                *ids,
                (0..ids.len() as u64).collect::<Vec<_>>(),
                "round {round}: lane {l} is a gapless run in its order"
            );
            assert!(
                ids.len() as u64 >= flushed[l],
                "round {round}: lane {l} lost flushed packets: {} stored, {} flushed",
                ids.len(),
                flushed[l]
            );
        }
    }
    assert!(flushed.iter().all(|f| *f > 0), "{flushed:?}");
}
