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

/// The live backlog in `stats()`: appended-but-unqueued bytes are exactly the records of the
/// open block; queued blocks show as in flight until their completion is reaped; nothing is
/// left after `sync`.
fn backlog(io: IoPreference) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &small(io)).unwrap();
    let uring = w.io_info().mode == kuroko_ring::format::io_mode::URING_DIRECT;
    let s = w.stats();
    assert_eq!(
        (s.bytes_buffered, s.bytes_in_flight, s.blocks_in_flight),
        (0, 0, 0)
    );
    let mut expect_buffered = 0u64;
    for i in 0..10u64 {
        let p = packet(i);
        w.append(
            &RecordMeta {
                ts_ns: i,
                wire_len: p.len() as u32,
                ..Default::default()
            },
            &[&p],
        )
        .unwrap();
        expect_buffered += kuroko_ring::format::record_len(p.len() as u32) as u64;
        assert_eq!(w.stats().bytes_buffered, expect_buffered);
    }
    w.flush();
    let s = w.stats();
    assert_eq!(s.bytes_buffered, 0);
    assert!(s.blocks_in_flight <= 1 && s.bytes_in_flight <= s.bytes_written);
    // Many blocks: the in-flight counters stay within what was queued and the pool size.
    let mut max_blocks = 0;
    for i in 10..3000u64 {
        let p = packet(i);
        w.append(
            &RecordMeta {
                ts_ns: i,
                wire_len: p.len() as u32,
                ..Default::default()
            },
            &[&p],
        )
        .unwrap();
        let s = w.stats();
        assert!(s.bytes_in_flight <= s.bytes_written);
        assert!(s.blocks_in_flight <= 10, "{s:?}");
        assert_eq!(s.blocks_in_flight == 0, s.bytes_in_flight == 0, "{s:?}");
        assert!(s.bytes_buffered < 64 * 1024);
        max_blocks = max_blocks.max(s.blocks_in_flight);
    }
    if uring {
        assert!(max_blocks >= 1, "io_uring writes were never seen in flight");
    } else {
        assert_eq!(max_blocks, 0, "synchronous writes are never in flight");
    }
    w.sync().unwrap();
    let s = w.stats();
    assert_eq!(
        (s.bytes_buffered, s.bytes_in_flight, s.blocks_in_flight),
        (0, 0, 0)
    );
    assert!(s.bytes_written > 0);
    w.close().unwrap();
}

#[test]
fn backlog_counters_auto_io() {
    backlog(IoPreference::Auto);
}

#[test]
fn backlog_counters_pwrite() {
    backlog(IoPreference::Pwrite);
}

/// `status` follows a running writer: its write counters grow between seals (the writer
/// republishes `writer.state` about once a second, checked at every chunk and `flush`).
#[test]
fn status_counts_grow_while_the_writer_runs() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        // One big segment: nothing is sealed during the test.
        budget: 2 * (8 << 20) + kuroko_ring::META_RESERVE,
        segment_size: 8 << 20,
        ..Default::default()
    };
    let mut w = SegmentWriter::open(dir.path(), &opts).unwrap();
    let mut seen = Vec::new();
    let mut id = 0u64;
    for _ in 0..3 {
        for _ in 0..200 {
            let p = packet(id);
            w.append(
                &RecordMeta {
                    ts_ns: 1_000 + id,
                    wire_len: p.len() as u32,
                    ..Default::default()
                },
                &[&p],
            )
            .unwrap();
            id += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
        w.flush();
        let st = kuroko_ring::store_status(dir.path()).unwrap();
        assert_eq!(st.writer_pid, Some(std::process::id()));
        assert_eq!(st.segments_open, 1, "{st:?}");
        seen.push((st.packets_written, st.bytes_written));
    }
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![200, 400, 600],
        "packets_written as status saw it"
    );
    assert!(seen.windows(2).all(|p| p[1].1 > p[0].1), "{seen:?}");
    assert_eq!(w.stats().segments_sealed, 0);
    w.close().unwrap();
}

/// Sequence numbers stay contiguous across clean restarts (a gap is left only after a
/// crash, where a generation may have been cut off before it became visible).
#[test]
fn clean_restarts_leave_no_sequence_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut id = 0u64;
    for _ in 0..3 {
        let mut w = SegmentWriter::open(dir.path(), &small(IoPreference::Auto)).unwrap();
        // A little more than one segment per session.
        for _ in 0..400 {
            let p = packet(id);
            w.append(
                &RecordMeta {
                    ts_ns: 1_000 + id,
                    wire_len: p.len() as u32,
                    ..Default::default()
                },
                &[&p],
            )
            .unwrap();
            id += 1;
        }
        w.close().unwrap();
    }
    let r = StoreReader::open(dir.path()).unwrap();
    let seqs: Vec<u64> = r.segments().iter().map(|s| s.seq).collect();
    assert!(seqs.len() >= 3, "{seqs:?}");
    assert!(seqs.windows(2).all(|s| s[1] == s[0] + 1), "{seqs:?}");
    assert_eq!(collect(&r).len(), 1200);
}
