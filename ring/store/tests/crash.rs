//! Crash test: a child process writes the store and is killed with SIGKILL at random
//! points, many times. After each kill the store is reopened (recovery) and read back:
//! every packet the child had `sync`ed (and so every sealed segment) is there, every packet
//! returned is intact, and packets come back in the order they were written. Then a new
//! child carries on where the stored data ends.
//!
//! The child is this same test binary, started with `KR_CRASH_CHILD` set.

use kuroko_ring::{Position, RecordMeta, SegmentWriter, StoreOptions, StoreReader};
use std::io::{BufRead, BufReader, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: u64 = 40;

fn opts() -> StoreOptions {
    StoreOptions {
        // 256 segments of 512 KiB: the test never wraps (asserted below), so every synced
        // packet must stay. Slot files are created lazily, as far as the test gets.
        budget: 256 * 512 * 1024 + kuroko_ring::META_RESERVE,
        segment_size: 512 * 1024,
        chunk_size: 64 * 1024,
        ..Default::default()
    }
}

/// The bytes of packet `id`: its length and content follow from the id alone.
fn payload(id: u64) -> Vec<u8> {
    let len = 60 + (id * 7919 % 1500) as usize;
    let mut v = (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ id)
        .to_le_bytes()
        .repeat(len / 8 + 1);
    v.truncate(len);
    v[..8].copy_from_slice(&id.to_le_bytes());
    v
}

/// Every stored packet id, in read order; panics on a packet that is not exactly what
/// was written.
fn read_ids(dir: &Path) -> Vec<u64> {
    let reader = match StoreReader::open(dir) {
        Ok(r) => r,
        Err(kuroko_ring::StoreError::NotAStore { .. }) => return Vec::new(),
        Err(e) => panic!("cannot open the store: {e}"),
    };
    let mut ids = Vec::new();
    let rep = reader
        .scan(Position::ORIGIN, |p| {
            let id = p.ts_ns;
            assert_eq!(p.data, &payload(id)[..], "packet {id} is torn or wrong");
            assert_eq!(p.wire_len as usize, p.data.len() + 4);
            ids.push(id);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(
        rep.damage.is_empty(),
        "damage after a kill -9: {:?}",
        rep.damage
    );
    ids
}

fn child(dir: &Path) {
    let mut w = SegmentWriter::open(dir, &opts()).unwrap();
    let start = read_ids(dir).last().map_or(1, |l| l + 1);
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {start}").unwrap();
    out.flush().unwrap();
    let mut id = start;
    // Each child writes a bounded number of packets, paced, so that on a fast quiet
    // machine the kills still land mid-write and 40 rounds never wrap the ring (the test
    // is about crashes, not retention: ~40 × 3000 packets of ~810 B < the 128 MiB ring).
    while id - start < MAX_PACKETS_PER_CHILD {
        let p = payload(id);
        let meta = RecordMeta {
            ts_ns: id,
            wire_len: p.len() as u32 + 4,
            iface: 0,
            flags: 0,
        };
        let (a, b) = p.split_at(12);
        w.append(&meta, &[a, b]).unwrap();
        if id.is_multiple_of(97) {
            w.flush();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if id.is_multiple_of(401) {
            w.sync().unwrap();
            writeln!(out, "synced {id}").unwrap();
            out.flush().unwrap();
        }
        id += 1;
    }
    // Done: wait for the kill like a writer with nothing to write.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Packets one child writes at most (see `child`).
const MAX_PACKETS_PER_CHILD: u64 = 3000;

#[test]
fn kill_9_at_random_points_loses_nothing_synced_and_returns_nothing_torn() {
    if let Some(dir) = std::env::var_os("KR_CRASH_CHILD") {
        child(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut synced = 0u64;
    let mut recovered_segments = 0;
    let mut prev: Vec<u64> = Vec::new();
    let mut allowed_missing = std::collections::BTreeSet::new();
    let started = Instant::now();
    for round in 0..ROUNDS {
        let mut ch = Command::new(&exe)
            .args([
                "--exact",
                "kill_9_at_random_points_loses_nothing_synced_and_returns_nothing_torn",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KR_CRASH_CHILD", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = ch.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Kill at a random point: one time in four anywhere from start-up (recovery,
        // segment formatting), otherwise while the child is writing.
        let early = rand(4) == 0;
        if !early {
            // (The test harness prints its own words first, on the same line.)
            loop {
                let line = rx
                    .recv_timeout(Duration::from_secs(20))
                    .expect("the child starts");
                if line.contains("start ") {
                    break;
                }
            }
        }
        let wait = if early {
            Duration::from_micros(rand(30_000))
        } else {
            Duration::from_micros(rand(120_000))
        };
        let deadline = Instant::now() + wait;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(n) = line.strip_prefix("synced ") {
                synced = synced.max(n.parse().unwrap());
            }
        }
        ch.kill().unwrap(); // SIGKILL
        ch.wait().unwrap();
        // Lines already written before the kill still count as synced.
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
            if let Some(n) = line.strip_prefix("synced ") {
                synced = synced.max(n.parse().unwrap());
            }
        }

        // Readers see the store as the crash left it (no writer, no recovery yet), once
        // the killed writer's last direct writes have landed (they complete after the
        // process is gone; into fresh extents they become readable a little later still).
        if dir.join("segments/store.meta").exists() {
            kuroko_ring::layout::settle_store(&dir).unwrap();
        }
        let ids = read_ids(&dir);
        check(&ids, &prev, synced, &mut allowed_missing, round);
        prev = ids.clone();
        // A writer's recovery seals what was open; the data stays the same.
        if dir.join("segments/store.meta").exists() {
            let w = SegmentWriter::open(&dir, &opts()).unwrap();
            recovered_segments += w.recovery().sealed_slots.len();
            drop(w); // no close: leaves the store as a crash would
            let again = read_ids(&dir);
            assert_eq!(
                again, ids,
                "recovery changed the readable data (round {round})"
            );
        }
    }
    assert!(
        synced > 0,
        "the child never synced: the test proved nothing"
    );
    let r = StoreReader::open(&dir).unwrap();
    assert!(
        r.segments().len() < r.ring().slot_count as usize,
        "the ring wrapped: make it larger, this test is about crashes"
    );
    assert!(recovered_segments > 0, "no kill hit an open segment");
    eprintln!(
        "{ROUNDS} kills, {synced} packets synced, {recovered_segments} segments sealed by recovery, {} unsynced packets lost to kills, {:.1} s",
        allowed_missing.len(),
        started.elapsed().as_secs_f64()
    );
}

/// `ids` (this round) against what earlier rounds saw and what the child had synced.
///
/// A kill can cancel writes still queued in io_uring while later ones completed, so unsynced
/// packets may be missing in the middle; such a hole is allowed only if it lies above
/// everything synced when it first appeared (the next child carries on after the last
/// stored packet, so the hole stays a hole).
fn check(
    ids: &[u64],
    prev: &[u64],
    synced: u64,
    allowed: &mut std::collections::BTreeSet<u64>,
    round: u64,
) {
    for w in ids.windows(2) {
        assert!(
            w[0] < w[1],
            "packets out of write order after round {round}: {} then {}",
            w[0],
            w[1]
        );
    }
    assert!(
        ids.starts_with(prev),
        "round {round}: packets readable after an earlier kill are gone: had {} ({:?}..{:?}), now {} ({:?}..{:?}), first difference at {:?}",
        prev.len(),
        prev.first(),
        prev.last(),
        ids.len(),
        ids.first(),
        ids.last(),
        prev.iter()
            .zip(ids)
            .position(|(a, b)| a != b)
            .map(|i| (i, prev[i], ids[i]))
    );
    let mut expect = 1u64;
    for &id in ids {
        while expect < id {
            if !allowed.contains(&expect) {
                assert!(
                    expect > synced,
                    "round {round}: synced packet {expect} lost"
                );
                allowed.insert(expect);
            }
            expect += 1;
        }
        expect = id + 1;
    }
    assert!(
        expect > synced,
        "round {round}: synced packets {expect}..={synced} lost"
    );
}
