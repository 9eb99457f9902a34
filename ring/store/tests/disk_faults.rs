//! Disk faults injected through the store's I/O seam (`kuroko_ring::fault`): failed
//! writes, failed fdatasyncs, a failing `io_uring_enter`, an unreadable header sector.
//! Each test asserts on what is on the disk afterwards (packets read back, segment
//! headers), not only on the writer's word.

use kuroko_ring::format as fmt;
use kuroko_ring::{
    AppendError, IoPreference, Position, RecordMeta, SegmentWriter, StoreOptions, StoreReader,
    fault,
};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::Ordering;

fn opts(io: IoPreference) -> StoreOptions {
    StoreOptions {
        budget: 16 * 256 * 1024 + kuroko_ring::META_RESERVE,
        segment_size: 256 * 1024,
        chunk_size: 64 * 1024,
        io,
        ..Default::default()
    }
}

fn packet(i: u64) -> Vec<u8> {
    let len = 200 + (i * 37 % 1200) as usize;
    let mut v: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

fn meta(i: u64) -> RecordMeta {
    RecordMeta {
        ts_ns: 1_000_000 + i,
        wire_len: packet(i).len() as u32,
        iface: 0,
        flags: 0,
    }
}

/// Every packet read back (each checked byte for byte), and the damage reported.
fn read_back(dir: &Path) -> (Vec<u64>, usize) {
    let r = StoreReader::open(dir).unwrap();
    let mut ids = Vec::new();
    let rep = r
        .scan(Position::ORIGIN, |p| {
            let id = p.ts_ns - 1_000_000;
            assert_eq!(
                p.data,
                &packet(id)[..],
                "packet {id} is not what was written"
            );
            ids.push(id);
            ControlFlow::Continue(())
        })
        .unwrap();
    (ids, rep.damage.len())
}

/// The raw header of slot `slot`.
fn header(dir: &Path, slot: u32) -> fmt::SegmentHeader {
    use zerocopy::FromBytes;
    let b = std::fs::read(dir.join(format!("segments/seg-{slot:05}.kseg"))).unwrap();
    fmt::SegmentHeader::read_from_bytes(&b[..fmt::SEGMENT_HEADER_LEN]).unwrap()
}

/// A disk that fails some block writes: `append` says so promptly (not only at close), the
/// failed blocks' packets are counted lost and not as written, and what the writer says
/// was written is exactly what can be read back.
fn failed_writes(io: IoPreference) {
    let dir = tempfile::tempdir().unwrap();
    let f = fault::inject(dir.path());
    f.writes_ok_first.store(6, Ordering::SeqCst);
    f.write_failures.store(3, Ordering::SeqCst);
    let mut w = SegmentWriter::open(dir.path(), &opts(io)).unwrap();
    let (mut refused, mut first_error_at) = (0u64, None);
    let n = 3000u64;
    for i in 0..n {
        let p = packet(i);
        match w.append(&meta(i), &[&p]) {
            Ok(()) => {}
            Err(e) => {
                refused += 1;
                first_error_at.get_or_insert(i);
                eprintln!("append {i}: {e}");
            }
        }
    }
    // `sync` reports the failures again (an error); the counters are final
    // once every write completed.
    let synced = w.sync();
    let stats = w.stats();
    let closed = w.close();
    assert!(synced.is_err(), "{synced:?}");
    closed.unwrap();
    fault::clear(dir.path());
    assert!(
        first_error_at.is_some(),
        "no append reported the failed writes"
    );
    let (ids, _damage) = read_back(dir.path());
    assert_eq!(
        stats.packets_written,
        ids.len() as u64,
        "the writer counts as written packets that are not on the disk"
    );
    assert!(stats.write_errors >= 3, "{stats:?}");
    // Refused packets are counted lost too: every packet is written or counted lost.
    assert!(refused >= 1);
    assert_eq!(
        stats.packets_written + stats.packets_lost,
        n,
        "{stats:?}, refused {refused}"
    );
    assert!(stats.packets_lost > 0, "{stats:?}");
    // The segments holding the failed blocks are marked, not sealed as good.
    let r = StoreReader::open(dir.path()).unwrap();
    // (With pwrite the segment headers are among the writes that fail.)
    let marked: u32 = r
        .segments()
        .iter()
        .filter(|s| s.write_error)
        .map(|s| s.damaged_blocks)
        .sum();
    assert!(marked >= 1, "{:?}", r.segments());
    let st = kuroko_ring::store_status(dir.path()).unwrap();
    assert_eq!(st.write_error_packets, stats.packets_lost, "{st:?}");
    assert!(st.damaged_segments >= 1, "{st:?}");
}

#[test]
fn failed_block_writes_surface_at_append_and_are_counted_lost_uring() {
    failed_writes(IoPreference::Auto);
}

#[test]
fn failed_block_writes_surface_at_append_and_are_counted_lost_pwrite() {
    failed_writes(IoPreference::Pwrite);
}

/// A failed fdatasync before a seal: the segment must not carry a SEALED header that says
/// it is good.
fn failed_sync(io: IoPreference) {
    let dir = tempfile::tempdir().unwrap();
    let f = fault::inject(dir.path());
    f.sync_failures.store(1, Ordering::SeqCst);
    let mut w = SegmentWriter::open(dir.path(), &opts(io)).unwrap();
    let mut errors = 0;
    // About three segments.
    for i in 0..1200u64 {
        if let Err(e) = w.append(&meta(i), &[&packet(i)]) {
            errors += 1;
            assert!(
                matches!(e, AppendError::WriteFailed { .. }),
                "unexpected error: {e}"
            );
        }
    }
    let _ = w.close();
    fault::clear(dir.path());
    assert_eq!(f.fired.load(Ordering::SeqCst), 1);
    assert!(errors >= 1, "the failed fdatasync was never reported");
    let h = header(dir.path(), 0);
    let good_seal =
        h.state.get() == fmt::STATE_SEALED && h.flags.get() & fmt::SEG_FLAG_WRITE_ERROR == 0;
    assert!(
        !good_seal,
        "slot 0 is sealed as good after its fdatasync failed"
    );
    let r = StoreReader::open(dir.path()).unwrap();
    assert!(r.segments()[0].write_error, "{:?}", r.segments()[0]);
    // The other segments are fine.
    assert!(r.segments()[1..].iter().all(|s| !s.write_error));
}

#[test]
fn a_failed_fdatasync_never_seals_a_segment_as_good_uring() {
    failed_sync(IoPreference::Auto);
}

#[test]
fn a_failed_fdatasync_never_seals_a_segment_as_good_pwrite() {
    failed_sync(IoPreference::Pwrite);
}

/// `io_uring_enter` fails right after writes were queued (blocks and seal headers): the
/// operations are still in the kernel's queue, so their buffers must stay in flight. Before
/// the fix the writer returned the buffer to the free list at once and again at the
/// completion, so two chunks could share one buffer.
#[test]
fn a_failing_submit_neither_loses_nor_double_frees_a_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let f = fault::inject(dir.path());
    // What a busy kernel answers (a completion queue that is full for a moment).
    f.errno.store(libc::EAGAIN, Ordering::SeqCst);
    f.submit_failures.store(40, Ordering::SeqCst);
    let mut w = SegmentWriter::open(dir.path(), &opts(IoPreference::Auto)).unwrap();
    assert_eq!(w.io_info().mode, fmt::io_mode::URING_DIRECT);
    let n = 3000u64;
    for i in 0..n {
        w.append(&meta(i), &[&packet(i)]).unwrap();
    }
    let stats = w.close().expect("a transient submit failure loses nothing");
    fault::clear(dir.path());
    assert_eq!(f.fired.load(Ordering::SeqCst), 40);
    assert_eq!(stats.write_errors, 0, "{stats:?}");
    let (ids, damage) = read_back(dir.path());
    assert_eq!(damage, 0);
    assert_eq!(ids, (0..n).collect::<Vec<_>>());
    let r = StoreReader::open(dir.path()).unwrap();
    assert!(r.segments().iter().filter(|s| !s.open).count() >= 5);
}

/// An unreadable sector in one slot's header: the writer still opens (capture comes back),
/// the reader still reads every other segment, and the slot is reported.
#[test]
fn an_unreadable_header_sector_costs_its_slot_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &opts(IoPreference::Auto)).unwrap();
    let n = 1500u64;
    for i in 0..n {
        w.append(&meta(i), &[&packet(i)]).unwrap();
    }
    w.close().unwrap();
    let (all, _) = read_back(dir.path());
    assert_eq!(all.len() as u64, n);
    let before = StoreReader::open(dir.path()).unwrap();
    let slot1 = before
        .segments()
        .iter()
        .find(|s| s.slot == 1)
        .unwrap()
        .packets;

    let f = fault::inject(dir.path());
    f.unreadable_headers.store(1 << 1, Ordering::SeqCst);
    let r = StoreReader::open(dir.path()).expect("the reader opens around the bad sector");
    assert_eq!(r.damaged_slots(), &[1]);
    let (ids, _) = read_back(dir.path());
    assert_eq!(
        ids.len() as u64,
        n - slot1,
        "only slot 1's packets are missing"
    );
    let mut w = SegmentWriter::open(dir.path(), &opts(IoPreference::Auto))
        .expect("the writer opens around the bad sector");
    for i in n..n + 10 {
        w.append(&meta(i), &[&packet(i)]).unwrap();
    }
    w.close().unwrap();
    let st = kuroko_ring::store_status(dir.path()).unwrap();
    assert_eq!(st.damaged_slots, 1, "{st:?}");
    fault::clear(dir.path());
}

/// `store.meta` with a slot count no writer makes (0 divided by, a huge one allocated per
/// slot): a clear error naming the file, for readers and writers, never a panic.
#[test]
fn a_bad_slot_count_in_store_meta_is_an_error_not_a_panic() {
    use kuroko_ring::layout::{Paths, write_meta_with};
    let dir = tempfile::tempdir().unwrap();
    let w = SegmentWriter::open(dir.path(), &opts(IoPreference::Auto)).unwrap();
    let ring = *w.ring();
    w.close().unwrap();
    for slots in [0u32, 1, 4_000_000_000] {
        let bad = kuroko_ring::RingGeometry {
            slot_count: slots,
            ..ring
        };
        write_meta_with(&Paths::new(dir.path()), &bad, 100).unwrap();
        let e = StoreReader::open(dir.path()).err().expect("refused");
        assert!(e.to_string().contains("store.meta"), "{e}");
        let e = SegmentWriter::open(dir.path(), &opts(IoPreference::Auto))
            .err()
            .expect("refused");
        assert!(e.to_string().contains("store.meta"), "{e}");
    }
}

/// Segments of 4 GiB made the end of a full segment wrap to offset 0 in a `Position`
/// (a u32): the store refuses segments over 2 GiB.
#[test]
fn segments_over_2_gib_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        budget: 3 * (4u64 << 30),
        segment_size: 4 << 30,
        chunk_size: 1 << 20,
        ..Default::default()
    };
    let e = SegmentWriter::open(dir.path(), &o).err().expect("refused");
    assert!(e.to_string().contains("at most 2GiB"), "{e}");
}

/// `segments/store.meta` lost and the options asking for another segment size: the store
/// used to start afresh over the old segments (packets lost). It must refuse, naming the
/// file and what to do, and leave the segments as they were.
#[test]
fn a_lost_store_meta_never_reformats_existing_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &opts(IoPreference::Auto)).unwrap();
    for i in 0..800u64 {
        w.append(&meta(i), &[&packet(i)]).unwrap();
    }
    w.close().unwrap();
    let seg0 = dir.path().join("segments/seg-00000.kseg");
    let before = std::fs::read(&seg0).unwrap();
    let meta_path = dir.path().join("segments/store.meta");
    let saved = std::fs::read(&meta_path).unwrap();
    std::fs::remove_file(&meta_path).unwrap();
    let other = StoreOptions {
        segment_size: 512 * 1024,
        ..opts(IoPreference::Auto)
    };
    let e = SegmentWriter::open(dir.path(), &other)
        .err()
        .expect("refused");
    let msg = e.to_string();
    assert!(
        msg.contains("store.meta") && msg.contains("segment file"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(&seg0).unwrap(),
        before,
        "a segment was touched"
    );
    assert!(!meta_path.exists());
    // Restored, the store is whole.
    std::fs::write(&meta_path, saved).unwrap();
    let (ids, damage) = read_back(dir.path());
    assert_eq!((ids.len(), damage), (800, 0));
}
