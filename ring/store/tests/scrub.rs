//! The background scrub (`kuroko_ring::scrub`): damage that appears in a sealed segment
//! after every reader passed it is found without any reader, recorded once per place in
//! `segments/damage.tsv` (so the store status counts it), and the scrub's position
//! survives a restart.

use kuroko_ring::scrub::{Scrubber, Step, load_state};
use kuroko_ring::segment::BlockEvent;
use kuroko_ring::{Position, RecordMeta, SegmentWriter, StoreOptions, StoreReader, store_status};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const SEG: u64 = 256 * 1024;

fn opts() -> StoreOptions {
    StoreOptions {
        budget: 16 * SEG + kuroko_ring::META_RESERVE,
        segment_size: SEG,
        chunk_size: 64 * 1024,
        ..Default::default()
    }
}

fn write(dir: &Path, n: u64) {
    let mut w = SegmentWriter::open(dir, &opts()).unwrap();
    for i in 0..n {
        let mut f = vec![0u8; 1000];
        f[..8].copy_from_slice(&i.to_le_bytes());
        let meta = RecordMeta {
            ts_ns: 1_780_000_000_000_000_000 + i * 1_000_000,
            wire_len: 1000,
            iface: 0,
            flags: 0,
        };
        w.append(&meta, &[&f]).unwrap();
    }
    w.close().unwrap();
}

/// Flips a byte in the records of the first block of the `nth` sealed segment.
fn flip(dir: &Path, nth: usize) {
    let reader = StoreReader::open(dir).unwrap();
    let seg = reader
        .segments()
        .iter()
        .filter(|s| !s.open)
        .nth(nth)
        .unwrap()
        .clone();
    let map = reader.map(&seg).unwrap();
    let Some(BlockEvent::Valid(b)) = map.blocks().next() else {
        panic!("no valid first block")
    };
    let at = b.offset + kuroko_ring::format::BLOCK_HEADER_LEN as u64 + 100;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(map.path())
        .unwrap();
    let mut x = [0u8];
    f.read_exact_at(&mut x, at).unwrap();
    f.write_all_at(&[x[0] ^ 0x01], at).unwrap();
}

fn pass(s: &mut Scrubber) -> Vec<Step> {
    let stop = AtomicBool::new(false);
    let mut steps = Vec::new();
    loop {
        let st = s.step(&stop).unwrap();
        let done = matches!(st, Step::PassDone | Step::Idle(_));
        steps.push(st);
        if done {
            return steps;
        }
    }
}

#[test]
fn the_scrub_finds_damage_no_reader_met_and_counts_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 1500);
    // A reader reads everything while it is sound.
    let r = StoreReader::open(tmp.path()).unwrap();
    let rep = r
        .scan(Position::ORIGIN, |_| ControlFlow::Continue(()))
        .unwrap();
    assert!(rep.damage.is_empty());
    let sealed = r.segments().iter().filter(|s| !s.open).count();
    assert!(sealed >= 3, "{sealed}");
    drop(r);
    assert_eq!(store_status(tmp.path()).unwrap().damaged_blocks, 0);
    // Then a bit rots in the second sealed segment.
    flip(tmp.path(), 1);

    let mut s = Scrubber::open(tmp.path(), 1 << 30)
        .unwrap()
        .with_pass_interval(Duration::ZERO);
    let steps = pass(&mut s);
    let checked: Vec<usize> = steps
        .iter()
        .filter_map(|st| match st {
            Step::Checked { damage, .. } => Some(*damage),
            _ => None,
        })
        .collect();
    assert_eq!(checked.len(), sealed, "{steps:?}");
    assert_eq!(checked.iter().sum::<usize>(), 1, "{steps:?}");
    assert_eq!(steps.last(), Some(&Step::PassDone));
    let st = store_status(tmp.path()).unwrap();
    assert_eq!(st.damaged_blocks, 1, "{st:?}");
    assert_eq!(st.damaged_segments, 1, "{st:?}");
    assert!(st.damaged_packets >= 1, "{st:?}");
    let state = load_state(tmp.path()).unwrap();
    assert_eq!(state.passes, 1);
    assert!(state.last_full_pass_wall_ns > 0);
    assert_eq!(state.damage_found, 1);
    assert_eq!(state.pass_started_wall_ns, 0);

    // A second pass finds it again but records it once.
    pass(&mut s);
    let st = store_status(tmp.path()).unwrap();
    assert_eq!(st.damaged_blocks, 1, "{st:?}");
    assert_eq!(load_state(tmp.path()).unwrap().passes, 2);
    let lines = std::fs::read_to_string(tmp.path().join("segments/damage.tsv")).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
}

#[test]
fn the_scrub_resumes_at_its_position_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 1500);
    let stop = AtomicBool::new(false);
    let mut s = Scrubber::open(tmp.path(), 1 << 30).unwrap();
    let Step::Checked { seq: first, .. } = s.step(&stop).unwrap() else {
        panic!("nothing checked")
    };
    let Step::Checked { seq: second, .. } = s.step(&stop).unwrap() else {
        panic!("nothing checked")
    };
    assert!(second > first);
    drop(s);
    let state = load_state(tmp.path()).unwrap();
    assert_eq!(state.next_seq, second + 1);
    assert!(state.pass_started_wall_ns > 0);
    assert_eq!(state.pass_segments, 2);
    // A new scrub (a restarted analyzer) goes on after `second`, in the same pass.
    let mut s = Scrubber::open(tmp.path(), 1 << 30).unwrap();
    let Step::Checked { seq: third, .. } = s.step(&stop).unwrap() else {
        panic!("nothing checked")
    };
    assert!(third > second, "{third} after {second}");
    assert_eq!(s.state().pass_segments, 3);
    assert_eq!(
        s.state().pass_started_wall_ns,
        state.pass_started_wall_ns,
        "the same pass"
    );
    // A stop set while it paces ends the step at once, keeping the position.
    let stopped = AtomicBool::new(true);
    assert_eq!(s.step(&stopped).unwrap(), Step::Stopped);
}

/// The rate bounds the scrub: at 1 MB/s, the third segment's read cannot start before the
/// first two segments' bytes took their time. A lower bound only (the pacer sleeps; a
/// loaded machine can only make it slower), never an upper one.
#[test]
fn the_scrub_reads_no_faster_than_its_rate() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 1500);
    let stop = AtomicBool::new(false);
    let mut s = Scrubber::open(tmp.path(), 1_000_000).unwrap();
    let t0 = std::time::Instant::now();
    let mut bytes = Vec::new();
    for _ in 0..3 {
        if let Step::Checked { bytes: b, .. } = s.step(&stop).unwrap() {
            bytes.push(b);
        }
    }
    assert_eq!(bytes.len(), 3, "{bytes:?}");
    let floor = (bytes[0] + bytes[1]) as f64 / 1e6;
    assert!(floor > 0.2, "{bytes:?}");
    assert!(t0.elapsed().as_secs_f64() >= floor, "{bytes:?}");
}
