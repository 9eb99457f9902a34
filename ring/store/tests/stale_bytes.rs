//! Slot files are fallocated, never zero-filled: a fresh store must never take bytes a slot
//! file held before for its own data.
//!
//! The worst stale bytes are not garbage (that fails the checksums) but valid blocks and
//! headers of an earlier Kuroko store on the same disk, laid out exactly where the new
//! store's blocks go. Here store A writes a few segments; its slot files are put into a
//! fresh store B before B first writes them ("a previous use of the disk"); B writes fewer
//! packets into the same places, syncs and "crashes" (its files are copied while it runs,
//! as a kill -9 would leave them). Recovery of that copy must give back exactly B's
//! packets: recovery's tail walk continues at the end of B's last block, where A's next
//! block sits with a valid header and checksum. A writer that goes on writing over A's
//! other slots must not adopt any of their blocks or headers either.
//!
//! Before stores drew a random sequence-number base (`store.meta` `seq_base`), A and B both
//! numbered their first segment 1, and this test failed: B's recovery adopted A's blocks.

use kuroko_ring::{Position, RecordMeta, SegmentWriter, StoreOptions, StoreReader};
use std::ops::ControlFlow;
use std::path::Path;

const SEG: u64 = 256 * 1024;
const SLOTS: u64 = 4;
const TS0: u64 = 1_700_000_000_000_000_000;

fn opts() -> StoreOptions {
    StoreOptions {
        budget: SLOTS * SEG + kuroko_ring::META_RESERVE,
        segment_size: SEG,
        chunk_size: 64 * 1024,
        ..Default::default()
    }
}

/// Packet `i` of a store whose ids start at `base`: the length depends on `i` only, so two
/// stores writing the same count with the same flush cadence lay their blocks out alike.
fn append(w: &mut SegmentWriter, base: u64, i: u64) {
    let len = 60 + (i.wrapping_mul(2_654_435_761) % 500) as usize;
    let id = base + i;
    let mut p = vec![(id % 251) as u8; len];
    p[..8].copy_from_slice(&id.to_le_bytes());
    w.append(
        &RecordMeta {
            ts_ns: TS0 + id * 1000,
            wire_len: len as u32,
            ..Default::default()
        },
        &[&p],
    )
    .unwrap();
    if i % 20 == 19 {
        w.flush();
    }
}

fn ids(dir: &Path) -> Vec<u64> {
    let r = StoreReader::open(dir).unwrap();
    let mut v = Vec::new();
    let rep = r
        .scan(Position::ORIGIN, |p| {
            v.push(u64::from_le_bytes(p.data[..8].try_into().unwrap()));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(rep.damage.is_empty(), "damage: {:?}", rep.damage);
    v
}

fn copy_segments(from: &Path, to: &Path, only_slots: bool) {
    std::fs::create_dir_all(to.join("segments")).unwrap();
    for e in std::fs::read_dir(from.join("segments")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == ".lock" || (only_slots && !name.ends_with(".kseg")) {
            continue;
        }
        std::fs::copy(e.path(), to.join("segments").join(&name)).unwrap();
    }
}

#[test]
fn fresh_store_over_an_earlier_stores_slot_files_recovers_only_its_own_packets() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();

    // Store A fills slot 0 and part of the next ones, then closes.
    const A_IDS: u64 = 1_000_000;
    let mut wa = SegmentWriter::open(a.path(), &opts()).unwrap();
    for i in 0..1500 {
        append(&mut wa, A_IDS, i);
    }
    wa.close().unwrap();
    let a_ids = ids(a.path());
    assert_eq!(a_ids.len(), 1500);
    let a_slots = std::fs::read_dir(a.path().join("segments"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".kseg")
        })
        .count();
    assert!(a_slots >= 3, "A used {a_slots} slots");

    // Store B: created (store.meta only), then A's slot files appear under it.
    kuroko_ring::layout::create_or_open(b.path(), &opts()).unwrap();
    copy_segments(a.path(), b.path(), true);
    assert!(
        ids(b.path()).is_empty(),
        "a reader of the fresh store B returned A's packets"
    );

    // B writes fewer packets over slot 0 (same layout as A's first ones), syncs, and its
    // files are taken as a crash would leave them while it still runs.
    let mut wb = SegmentWriter::open(b.path(), &opts()).unwrap();
    assert!(
        wb.recovery().sealed_slots.is_empty() && !wb.recovery().resumed_in_place,
        "B's writer took A's segments for its own: {:?}",
        wb.recovery()
    );
    for i in 0..300 {
        append(&mut wb, 0, i);
    }
    wb.sync().unwrap();
    copy_segments(b.path(), crashed.path(), false);
    drop(wb);

    let want: Vec<u64> = (0..300).collect();
    assert_eq!(ids(crashed.path()), want, "before recovery");
    let mut w = SegmentWriter::open(crashed.path(), &opts()).unwrap();
    assert_eq!(ids(crashed.path()), want, "after recovery");
    assert_eq!(
        w.stats().packets_written,
        0,
        "a fresh writer has written nothing"
    );

    // Going on over A's other slot files (and wrapping) adopts none of their bytes.
    for i in 300..2500 {
        append(&mut w, 0, i);
    }
    w.sync().unwrap();
    drop(w);
    let got = ids(crashed.path());
    assert!(
        got.iter().all(|&id| id < A_IDS),
        "A's packets came back: {:?}",
        got.iter()
            .filter(|&&id| id >= A_IDS)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order or twice");
    assert_eq!(got.last(), Some(&2499));
    let _ = SegmentWriter::open(crashed.path(), &opts()).unwrap();
    let again = ids(crashed.path());
    assert_eq!(again, got, "a second recovery changed what is stored");
}

/// `disk prepare` creates every slot file and syncs once at the end: a crash before that
/// sync may leave slot files whose FREE header never reached the disk (all zeros). Such a
/// slot is free (not damaged), and a writer uses it.
#[test]
fn a_slot_file_whose_header_never_reached_the_disk_is_free() {
    let dir = tempfile::tempdir().unwrap();
    kuroko_ring::layout::create_or_open(dir.path(), &opts()).unwrap();
    for slot in 0..SLOTS {
        let f =
            std::fs::File::create(dir.path().join(format!("segments/seg-{slot:05}.kseg"))).unwrap();
        f.set_len(SEG).unwrap();
    }
    let st = kuroko_ring::store_status(dir.path()).unwrap();
    assert_eq!(st.damaged_slots, 0, "{st:?}");
    assert_eq!(st.segments_free, SLOTS as u32, "{st:?}");
    let mut w = SegmentWriter::open(dir.path(), &opts()).unwrap();
    for i in 0..2000 {
        append(&mut w, 0, i);
    }
    w.close().unwrap();
    let got = ids(dir.path());
    assert_eq!(got.len(), 2000);
    assert_eq!(got.last(), Some(&1999));
}
