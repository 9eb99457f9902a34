//! Writer → reader round trips on small rings.

use kuroko_ring::{IoPreference, Position, RecordMeta, SegmentWriter, StoreOptions, StoreReader};
use std::ops::ControlFlow;

fn small(io: IoPreference) -> StoreOptions {
    StoreOptions {
        budget: 8 * 256 * 1024 + kuroko_ring::META_RESERVE,
        segment_size: 256 * 1024,
        chunk_size: 64 * 1024,
        io,
        ..Default::default()
    }
}

fn packet(i: u64) -> Vec<u8> {
    let len = 60 + (i * 37 % 1400) as usize;
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

fn collect(r: &StoreReader) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let rep = r
        .scan(Position::ORIGIN, |p| {
            out.push((p.ts_ns, p.data.to_vec()));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(rep.damage.is_empty(), "{:?}", rep.damage);
    out
}

fn round_trip(io: IoPreference) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &small(io)).unwrap();
    for i in 0..500u64 {
        let p = packet(i);
        let (a, b) = p.split_at(12);
        w.append(
            &RecordMeta {
                ts_ns: 1_000 + i,
                wire_len: p.len() as u32,
                iface: 0,
                flags: 0,
            },
            &[a, b],
        )
        .unwrap();
    }
    w.flush();
    w.sync().unwrap();
    let r = StoreReader::open(dir.path()).unwrap();
    let got = collect(&r);
    assert_eq!(got.len(), 500);
    for (i, (ts, data)) in got.iter().enumerate() {
        assert_eq!(*ts, 1_000 + i as u64);
        assert_eq!(*data, packet(i as u64));
    }
    w.close().unwrap();
    // Reopen: resumes in place, appends more.
    let mut w = SegmentWriter::open(dir.path(), &small(io)).unwrap();
    assert!(w.recovery().resumed_in_place, "{:?}", w.recovery());
    for i in 500..600u64 {
        let p = packet(i);
        w.append(
            &RecordMeta {
                ts_ns: 1_000 + i,
                wire_len: p.len() as u32,
                ..Default::default()
            },
            &[&p],
        )
        .unwrap();
    }
    w.close().unwrap();
    let r = StoreReader::open(dir.path()).unwrap();
    let got = collect(&r);
    assert_eq!(got.len(), 600);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, (ts, d))| *ts == 1000 + i as u64 && *d == packet(i as u64))
    );
}

#[test]
fn round_trip_auto_io() {
    round_trip(IoPreference::Auto);
}

#[test]
fn round_trip_pwrite() {
    round_trip(IoPreference::Pwrite);
}

#[test]
fn round_trip_buffered() {
    round_trip(IoPreference::Buffered);
}
