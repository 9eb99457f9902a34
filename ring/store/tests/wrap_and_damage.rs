//! The ring wrapping many times over (exactly the newest data kept, never a byte over the
//! budget, the status window right) and damage (a flipped byte is found, reported with its
//! segment and offset, and everything else stays readable).

use kuroko_ring::format::{BLOCK_HEADER_LEN, RECORD_HEADER_LEN};
use kuroko_ring::segment::BlockEvent;
use kuroko_ring::{
    DamageKind, Position, RecordMeta, SegmentWriter, StoreOptions, StoreReader, TimeScanCache,
    store_status,
};
use std::ops::ControlFlow;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

const SEG: u64 = 256 * 1024;
const SLOTS: u64 = 4;

fn opts() -> StoreOptions {
    StoreOptions {
        budget: SLOTS * SEG + kuroko_ring::META_RESERVE,
        segment_size: SEG,
        chunk_size: 64 * 1024,
        ..Default::default()
    }
}

fn payload(id: u64) -> Vec<u8> {
    let len = 60 + (id * 613 % 1000) as usize;
    let mut v = id
        .wrapping_mul(0x2545_f491_4f6c_dd1d)
        .to_le_bytes()
        .repeat(len / 8 + 1);
    v.truncate(len);
    v[..8].copy_from_slice(&id.to_le_bytes());
    v
}

fn ts(id: u64) -> u64 {
    1_700_000_000_000_000_000 + id * 1_000_000
}

/// Bytes the `segments/` directory takes on disk (allocated blocks, directory included),
/// and the sum of the apparent sizes of its files.
fn disk_use(dir: &Path) -> (u64, u64) {
    let seg = dir.join("segments");
    let mut alloc = std::fs::metadata(&seg).unwrap().blocks() * 512;
    let mut apparent = 0;
    for e in std::fs::read_dir(&seg).unwrap() {
        // The writer prepares the next slot on a helper thread: a file being created may be
        // renamed between the listing and the stat (it is then counted under its new name
        // if the listing saw that, and never twice).
        let Ok(m) = e.unwrap().metadata() else {
            continue;
        };
        alloc += m.blocks() * 512;
        apparent += m.len();
    }
    (alloc, apparent)
}

fn read_all(r: &StoreReader) -> (Vec<u64>, kuroko_ring::ScanReport) {
    let mut ids = Vec::new();
    let rep = r
        .scan(Position::ORIGIN, |p| {
            let id = u64::from_le_bytes(p.data[..8].try_into().unwrap());
            assert_eq!(p.data, &payload(id)[..], "packet {id} corrupted");
            assert_eq!(p.ts_ns, ts(id));
            ids.push(id);
            ControlFlow::Continue(())
        })
        .unwrap();
    (ids, rep)
}

#[test]
fn a_small_ring_written_many_times_over_keeps_exactly_the_newest_data_within_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let budget = opts().budget;
    let capacity = SLOTS * SEG;
    let mut written = 0u64;
    let mut id = 0u64;
    let mut max_alloc = 0;
    // About eight times the ring's capacity, in several writer sessions (clean closes).
    for session in 0..4 {
        let mut w = SegmentWriter::open(dir, &opts()).unwrap();
        assert_eq!(w.ring().slot_count as u64, SLOTS);
        while written < (session + 1) * 2 * capacity {
            id += 1;
            let p = payload(id);
            w.append(
                &RecordMeta {
                    ts_ns: ts(id),
                    wire_len: p.len() as u32,
                    iface: 1,
                    flags: 0,
                },
                &[&p],
            )
            .unwrap();
            written += p.len() as u64;
            if id.is_multiple_of(500) {
                w.sync().unwrap();
                let (alloc, apparent) = disk_use(dir);
                assert!(
                    alloc <= budget,
                    "segments/ takes {alloc} bytes, budget {budget}"
                );
                assert!(apparent <= budget);
                max_alloc = max_alloc.max(alloc);
            }
        }
        w.sync().unwrap();
        let reader = StoreReader::open(dir).unwrap();
        check_newest(&reader, id);
        w.close().unwrap();
    }
    let (alloc, _) = disk_use(dir);
    assert!(
        alloc <= budget,
        "segments/ takes {alloc} bytes, budget {budget}"
    );
    assert!(
        max_alloc >= SLOTS * SEG,
        "the ring never filled: {max_alloc}"
    );

    let reader = StoreReader::open(dir).unwrap();
    let (ids, _) = check_newest(&reader, id);
    // Time ranges over sealed segments (chunk index) and the open one (block scan) give
    // exactly the packets inside, and touch only overlapping segments.
    for (a, b) in [(0.1, 0.2), (0.0, 0.5), (0.45, 0.95), (0.9, 1.0)] {
        let lo = ids[(ids.len() as f64 * a) as usize];
        let hi = ids[((ids.len() - 1) as f64 * b) as usize];
        let mut got = Vec::new();
        reader
            .scan_time(ts(lo), ts(hi), |p| {
                got.push(u64::from_le_bytes(p.data[..8].try_into().unwrap()));
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(got, (lo..hi).collect::<Vec<_>>(), "range {a}..{b}");
    }
    // The same ranges through one cache (the evidence export's pass), twice: the second
    // time from memory, checksums already checked; a cache smaller than a segment drops
    // segments and reads them again. Same packets, and no chunk read twice while cached.
    for limit in [64 << 20, 32 << 10] {
        let mut cache = TimeScanCache::new(limit);
        let before = reader.chunk_bytes_read();
        for round in 0..2 {
            for (a, b) in [(0.1, 0.2), (0.0, 0.5), (0.45, 0.95), (0.9, 1.0)] {
                let lo = ids[(ids.len() as f64 * a) as usize];
                let hi = ids[((ids.len() - 1) as f64 * b) as usize];
                let mut got = Vec::new();
                let rep = reader
                    .scan_time_cached(&mut cache, ts(lo), ts(hi), |p| {
                        got.push(u64::from_le_bytes(p.data[..8].try_into().unwrap()));
                        ControlFlow::Continue(())
                    })
                    .unwrap();
                assert_eq!(
                    got,
                    (lo..hi).collect::<Vec<_>>(),
                    "cached {a}..{b} ({round})"
                );
                assert!(rep.damage.is_empty(), "{:?}", rep.damage);
            }
        }
        let read = reader.chunk_bytes_read() - before;
        let stored: u64 = reader.segments().iter().map(|s| s.used_bytes).sum();
        if limit > stored {
            assert!(read <= stored, "read {read} of {stored} bytes");
        }
    }
    // The status window is the first and last stored packet, the ring is full.
    let st = store_status(dir).unwrap();
    assert_eq!(st.oldest_packet_ns, Some(ts(ids[0])));
    assert_eq!(st.newest_packet_ns, Some(ts(id)));
    assert_eq!(
        st.retention_seconds,
        Some((ts(id) - ts(ids[0])) as f64 / 1e9)
    );
    assert_eq!(st.segments_used as u64, SLOTS);
    assert_eq!(st.segments_free, 0);
    assert_eq!(st.stored_packets, ids.len() as u64);
    assert!(st.bytes_written > 7 * capacity, "{}", st.bytes_written);
    assert_eq!(st.write_errors, 0);
}

/// The store holds a contiguous run of the newest packets, ending with the last written,
/// in write order, and at least all but one segment's worth of them.
fn check_newest(reader: &StoreReader, last: u64) -> (Vec<u64>, kuroko_ring::ScanReport) {
    let (ids, rep) = read_all(reader);
    assert!(rep.damage.is_empty(), "{:?}", rep.damage);
    assert_eq!(*ids.last().unwrap(), last, "the newest packet is missing");
    for w in ids.windows(2) {
        assert_eq!(w[0] + 1, w[1], "a hole or disorder in the kept data");
    }
    let kept: u64 = ids.iter().map(|&i| payload(i).len() as u64).sum();
    assert!(
        kept > (SLOTS - 1) * SEG * 8 / 10,
        "kept only {kept} bytes of data"
    );
    // The segments are the newest sequence numbers, contiguous.
    let seqs: Vec<u64> = reader.segments().iter().map(|s| s.seq).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[0] + 1, w[1]);
    }
    (ids, rep)
}

fn write_store(dir: &Path, n: u64) {
    let mut w = SegmentWriter::open(dir, &opts()).unwrap();
    for id in 1..=n {
        let p = payload(id);
        w.append(
            &RecordMeta {
                ts_ns: ts(id),
                wire_len: p.len() as u32,
                iface: 0,
                flags: 0,
            },
            &[&p],
        )
        .unwrap();
    }
    w.close().unwrap();
}

fn flip(path: &Path, off: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, off).unwrap();
    b[0] ^= 0x40;
    f.write_all_at(&b, off).unwrap();
}

#[test]
fn a_flipped_byte_is_reported_with_segment_and_offset_and_the_rest_stays_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_store(dir, 800); // a bit over two segments: two sealed, one open
    let reader = StoreReader::open(dir).unwrap();
    let (all, rep) = read_all(&reader);
    assert!(rep.damage.is_empty());
    assert_eq!(all.len(), 800);
    let sealed = reader
        .segments()
        .iter()
        .find(|s| !s.open)
        .expect("a sealed segment")
        .clone();
    let map = reader.map(&sealed).unwrap();
    let blocks: Vec<(u64, u32)> = map
        .blocks()
        .map(|e| match e {
            BlockEvent::Valid(b) => (b.offset, b.header.record_count.get()),
            other => panic!("damage before the test damaged anything: {other:?}"),
        })
        .collect();
    assert!(blocks.len() >= 3);
    let path = map.path().to_path_buf();
    drop(map);

    // 1. A byte inside the packet data of the second block: only the records touching
    //    its first unit (4 KiB of records with these 64 KiB chunks) are lost, counted.
    let (off, in_block) = blocks[1];
    flip(
        &path,
        off + (BLOCK_HEADER_LEN + RECORD_HEADER_LEN + 30) as u64,
    );
    let reader = StoreReader::open(dir).unwrap();
    let (ids, rep) = read_all(&reader);
    assert_eq!(rep.damage.len(), 1, "{:?}", rep.damage);
    let d = &rep.damage[0];
    let payload_at = off + BLOCK_HEADER_LEN as u64;
    assert_eq!(
        (d.kind, d.offset, d.len, d.seq, d.slot),
        (
            DamageKind::UnitChecksum,
            payload_at,
            4096,
            sealed.seq,
            sealed.slot
        )
    );
    assert_eq!(d.file, path);
    assert!(
        d.to_string().contains(&format!("offset {payload_at}")),
        "{d}"
    );
    let lost = d.packets;
    assert!(
        (1..=4096 / 80 + 1).contains(&lost) && lost < in_block as u64,
        "{lost} of {in_block} lost"
    );
    assert!(
        d.to_string().contains(&format!("{lost} packets lost")),
        "{d}"
    );
    assert_eq!(
        ids.len(),
        all.len() - lost as usize,
        "more than the unit was lost"
    );
    assert!(ids.iter().all(|i| all.contains(i)));

    // 1b. The same block in format version 1 (one crc over the whole payload, no unit
    //     table: what stores written before version 2 hold) reads back whole, and a flipped
    //     byte there costs the block, reported as before.
    let (off0, in_block0) = blocks[0];
    to_version_1(&path, off0);
    let reader = StoreReader::open(dir).unwrap();
    let (ids, rep) = read_all(&reader);
    assert_eq!(rep.damage.len(), 1, "{:?}", rep.damage);
    assert_eq!(ids.len(), all.len() - lost as usize);
    flip(
        &path,
        off0 + (BLOCK_HEADER_LEN + RECORD_HEADER_LEN + 30) as u64,
    );
    let reader = StoreReader::open(dir).unwrap();
    let (ids, rep) = read_all(&reader);
    assert_eq!(rep.damage.len(), 2, "{:?}", rep.damage);
    let d0 = &rep.damage[0];
    assert_eq!(
        (d0.kind, d0.offset, d0.packets),
        (DamageKind::PayloadChecksum, off0, in_block0 as u64)
    );
    let lost = lost + in_block0 as u64;
    assert_eq!(ids.len(), all.len() - lost as usize);

    // 2. A byte inside the header of the third block: found by resynchronising.
    let (off3, lost3) = blocks[2];
    flip(&path, off3 + 20);
    let reader = StoreReader::open(dir).unwrap();
    let (ids, rep) = read_all(&reader);
    assert_eq!(rep.damage.len(), 3, "{:?}", rep.damage);
    assert_eq!(
        (rep.damage[2].kind, rep.damage[2].offset),
        (DamageKind::BlockHeader, off3)
    );
    assert_eq!(ids.len(), all.len() - lost as usize - lost3 as usize);

    // Time-range reads report the same damage and return the rest of the range.
    let mut n = 0;
    let rep = reader
        .scan_time(ts(1), ts(801), |_| {
            n += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(n, ids.len());
    assert_eq!(rep.damage.len(), 3);
    // Through a cache, twice (the second time from memory): the same packets, and the
    // damage met again each time (a bad block is never remembered as good).
    let mut cache = TimeScanCache::new(64 << 20);
    for round in 0..2 {
        let mut m = 0;
        let rep = reader
            .scan_time_cached(&mut cache, ts(1), ts(801), |_| {
                m += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(m, ids.len(), "round {round}");
        assert_eq!(rep.damage.len(), 3, "round {round}: {:?}", rep.damage);
    }
}

/// Rewrites the block at `off` as format version 1 wrote it: no unit table, `payload_crc`
/// over the records.
fn to_version_1(path: &Path, off: u64) {
    use kuroko_ring::format::{BlockHeader, block_header};
    use zerocopy::IntoBytes;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut hb = [0u8; BLOCK_HEADER_LEN];
    f.read_exact_at(&mut hb, off).unwrap();
    let mut h: BlockHeader = *block_header(&hb).unwrap();
    assert!(h.has_units());
    let rl = h.records_len();
    let mut payload = vec![0u8; h.payload_len.get() as usize];
    f.read_exact_at(&mut payload, off + BLOCK_HEADER_LEN as u64)
        .unwrap();
    payload[rl..].fill(0);
    h.flags = 0.into();
    h.payload_len = (rl as u32).into();
    h.records_len = 0.into();
    h.unit_shift = 0;
    h.unit_count = 0;
    h.payload_crc = kuroko_ring::crc::crc32c(&payload[..rl]).into();
    h.header_crc = kuroko_ring::crc::crc32c(h.crc_input()).into();
    f.write_all_at(h.as_bytes(), off).unwrap();
    f.write_all_at(&payload, off + BLOCK_HEADER_LEN as u64)
        .unwrap();
}

#[test]
fn a_position_resumes_exactly_and_an_overwritten_one_says_how_much_was_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_store(dir, 300);
    let reader = StoreReader::open(dir).unwrap();
    let mut first = Vec::new();
    let rep = reader
        .scan(Position::ORIGIN, |p| {
            first.push(p.pos);
            if first.len() == 123 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert!(rep.stopped);
    let text = rep.next.to_string();
    let pos: Position = text.parse().unwrap();
    assert_eq!(Position::from_bytes(pos.to_bytes()), pos);
    let (mut ids, _) = (Vec::new(), ());
    let rep = reader
        .scan(pos, |p| {
            ids.push(u64::from_le_bytes(p.data[..8].try_into().unwrap()));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(ids, (124..=300).collect::<Vec<_>>());
    assert_eq!(rep.lost_segments, 0);
    assert_eq!(reader.lag_bytes(rep.next), 0);
    assert!(reader.lag_bytes(pos) > 0);

    // Write the ring over twice: the saved position is gone, and the scan says so.
    let mut w = SegmentWriter::open(dir, &opts()).unwrap();
    for id in 301..=3000 {
        let p = payload(id);
        w.append(
            &RecordMeta {
                ts_ns: ts(id),
                wire_len: p.len() as u32,
                ..Default::default()
            },
            &[&p],
        )
        .unwrap();
    }
    w.close().unwrap();
    let reader = StoreReader::open(dir).unwrap();
    let oldest = reader.segments()[0].seq;
    let mut first_id = None;
    let rep = reader
        .scan(pos, |p| {
            first_id.get_or_insert(u64::from_le_bytes(p.data[..8].try_into().unwrap()));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(rep.lost_segments, oldest - pos.seq);
    assert!(rep.lost_segments > 0);
    let (ids, _) = read_all(&reader);
    assert_eq!(
        first_id,
        Some(ids[0]),
        "resumes at the oldest packet still stored"
    );
}

/// A long-lived reader's `refresh` (which probes only the slots the writer can have
/// reached) sees exactly what a fresh reader sees, also when the writer went round the whole
/// ring between two refreshes, and across a writer restart.
#[test]
fn refresh_matches_a_fresh_reader_under_wrap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = |r: &StoreReader| {
        r.segments()
            .iter()
            .map(|s| {
                (
                    s.slot,
                    s.seq,
                    s.open,
                    s.packets,
                    s.used_bytes,
                    s.first_ts,
                    s.last_ts,
                    s.index.clone().map(|i| i.len()),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut w = SegmentWriter::open(dir, &opts()).unwrap();
    let mut reader = StoreReader::open(dir).unwrap();
    let mut id = 0u64;
    // Steps of growing size: within a segment, across one seal, round the whole ring.
    for (step, bytes) in [
        1_000u64, 50_000, 300_000, 30_000, 1_200_000, 5_000, 2_500_000,
    ]
    .into_iter()
    .enumerate()
    {
        let mut written = 0;
        while written < bytes {
            id += 1;
            let p = payload(id);
            w.append(
                &RecordMeta {
                    ts_ns: ts(id),
                    wire_len: p.len() as u32,
                    iface: 1,
                    flags: 0,
                },
                &[&p],
            )
            .unwrap();
            written += p.len() as u64;
        }
        w.sync().unwrap();
        if step == 4 {
            w.close().unwrap();
            w = SegmentWriter::open(dir, &opts()).unwrap();
        }
        reader.refresh().unwrap();
        let fresh = StoreReader::open(dir).unwrap();
        assert_eq!(key(&reader), key(&fresh), "step {step}");
        assert_eq!(read_all(&reader).0, read_all(&fresh).0, "step {step}");
    }
    w.close().unwrap();
}
