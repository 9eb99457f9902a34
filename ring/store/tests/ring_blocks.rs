//! Ring blocks (zero-copy capture, format version 3): TPACKET_V3 blocks laid out as the
//! kernel fills them (`kuroko_ring_format::testing::ring_block`), stored with
//! `append_ring_block`, read back by the reader and the pcap export exactly as the same
//! frames stored as records; wrap, corruption and kill -9 like the record tests.

use kuroko_ring::format::{self as fmt, testing};
use kuroko_ring::{
    DamageKind, Position, RecordMeta, RingAppend, RingBlockMeta, SegmentWriter, StoreOptions,
    StoreReader,
};
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const TS0: u64 = 1_700_000_000_000_000_000;

fn opts() -> StoreOptions {
    StoreOptions {
        budget: 4 * 256 * 1024 + kuroko_ring::META_RESERVE,
        segment_size: 256 * 1024,
        chunk_size: 64 * 1024,
        ..Default::default()
    }
}

/// Frame `id`: its bytes, length on the wire and ring status follow from the id alone.
/// Every 5th carries a VLAN tag the capture put back, every 7th was cut by a snaplen.
fn frame(id: u64) -> (Vec<u8>, u32, u32) {
    let len = 60 + (id.wrapping_mul(2_654_435_761) % 1450) as usize;
    let mut v: Vec<u8> = (0..len)
        .map(|j| (id as usize).wrapping_mul(131).wrapping_add(j * 7) as u8)
        .collect();
    v[..8].copy_from_slice(&id.to_le_bytes());
    let wire = len as u32 + if id.is_multiple_of(7) { 100 } else { 0 };
    let status = if id.is_multiple_of(5) {
        fmt::RING_STATUS_VLAN_RESTORED
    } else {
        0
    };
    (v, wire, status)
}

fn ts(id: u64) -> u64 {
    TS0 + id * 1000
}

fn id_of(ts_ns: u64) -> u64 {
    (ts_ns - TS0) / 1000
}

/// 4 KiB aligned memory for ring blocks (a ring mapping is page aligned).
struct Mem {
    v: Vec<u8>,
    at: usize,
    len: usize,
}
impl Mem {
    fn new(len: usize) -> Mem {
        let v = vec![0u8; len + 4096];
        let at = v.as_ptr().align_offset(4096);
        Mem { v, at, len }
    }
    fn bytes(&mut self) -> &mut [u8] {
        &mut self.v[self.at..self.at + self.len]
    }
}

fn append_record(w: &mut SegmentWriter, id: u64) {
    let (data, wire, status) = frame(id);
    let flags = if status & fmt::RING_STATUS_VLAN_RESTORED != 0 {
        fmt::record_flags::VLAN_RESTORED
    } else {
        0
    };
    w.append(
        &RecordMeta {
            ts_ns: ts(id),
            wire_len: wire,
            iface: 1,
            flags,
        },
        &[&data],
    )
    .unwrap();
}

/// Stores `ids` as one ring block of `size` bytes of ring memory (kept in `keep` until the
/// writer hands the token back). Returns what the writer said.
fn append_ring(
    w: &mut SegmentWriter,
    ids: std::ops::Range<u64>,
    size: usize,
    keep: &mut Vec<Mem>,
) -> RingAppend {
    let frames: Vec<_> = ids.clone().map(frame).collect();
    let tf: Vec<testing::Frame<'_>> = ids
        .clone()
        .zip(&frames)
        .map(|(id, (d, wire, st))| testing::Frame {
            ts_ns: ts(id),
            data: d,
            wire_len: *wire,
            status: *st,
        })
        .collect();
    let mut m = Mem::new(size);
    let filled = testing::ring_block(m.bytes(), &tf).expect("frames fit the block");
    let meta = RingBlockMeta {
        filled: filled as u32,
        packets: tf.len() as u32,
        first_ts: ts(ids.start),
        last_ts: ts(ids.end - 1),
        iface: 1,
        token: keep.len() as u64,
    };
    // SAFETY: the memory goes into `keep` and is neither written nor freed until the
    // writer is synced or closed (which wait for every write, handing every token back).
    let r = unsafe { w.append_ring_block(m.bytes(), &meta) }.unwrap();
    keep.push(m);
    r
}

/// Every packet: (id, iface, wire_len, flags, data), in read order; and the damage.
type Got = Vec<(u64, u16, u32, u16, Vec<u8>)>;
fn read_all(dir: &Path) -> (Got, Vec<kuroko_ring::Damage>) {
    let r = StoreReader::open(dir).unwrap();
    let mut out = Vec::new();
    let rep = r
        .scan(Position::ORIGIN, |p| {
            out.push((
                id_of(p.ts_ns),
                p.iface,
                p.wire_len,
                p.flags,
                p.data.to_vec(),
            ));
            ControlFlow::Continue(())
        })
        .unwrap();
    (out, rep.damage)
}

fn export(dir: &Path) -> Vec<u8> {
    let r = StoreReader::open(dir).unwrap();
    let mut out = Vec::new();
    kuroko_ring::pcap::export_pcap(&r, 0, u64::MAX, |_| true, &mut out).unwrap();
    out
}

/// Writes ids `0..n` with ring blocks of `per` frames in `size` bytes; every third block
/// as records instead (a capture that falls back to copying for some blocks).
fn write_mixed(w: &mut SegmentWriter, from: u64, n: u64, per: u64, size: usize) -> Vec<Mem> {
    let mut keep = Vec::new();
    let mut id = from;
    let mut k = 0;
    while id < from + n {
        let end = (id + per).min(from + n);
        if k % 3 == 2 {
            for i in id..end {
                append_record(w, i);
            }
        } else {
            assert_eq!(append_ring(w, id..end, size, &mut keep), RingAppend::Queued);
        }
        id = end;
        k += 1;
    }
    keep
}

#[test]
fn ring_blocks_read_and_export_exactly_like_the_same_frames_stored_as_records() {
    let copy = tempfile::tempdir().unwrap();
    let zc = tempfile::tempdir().unwrap();
    let n = 600;
    let mut w = SegmentWriter::open(copy.path(), &opts()).unwrap();
    for id in 0..n {
        append_record(&mut w, id);
    }
    w.close().unwrap();

    let mut w = SegmentWriter::open(zc.path(), &opts()).unwrap();
    w.enable_ring_blocks();
    assert_eq!(w.max_ring_block(), 56 * 1024);
    let keep = write_mixed(&mut w, 0, n, 20, 48 * 1024);
    w.sync().unwrap();
    let mut back = Vec::new();
    w.take_ring_done(|t, ok| back.push((t, ok)));
    back.sort();
    assert_eq!(
        back,
        (0..keep.len() as u64)
            .map(|t| (t, true))
            .collect::<Vec<_>>()
    );
    w.close().unwrap();

    let (a, da) = read_all(copy.path());
    let (b, db) = read_all(zc.path());
    assert!(da.is_empty() && db.is_empty(), "{da:?} {db:?}");
    assert_eq!(a.len(), n as usize);
    assert_eq!(a, b, "ring blocks read back differently from records");
    assert!(
        b.iter()
            .any(|p| p.3 & fmt::record_flags::VLAN_RESTORED != 0)
    );
    assert_eq!(export(copy.path()), export(zc.path()));

    // Segments with ring blocks are version 3 with SEG_FLAG_RING, their ring blocks carry
    // their own magic: a version 2 reader refuses the segment and sees no block in it.
    let bytes = std::fs::read(zc.path().join("segments/seg-00000.kseg")).unwrap();
    let h = fmt::segment_header(&bytes).unwrap();
    assert_eq!(h.version.get(), fmt::SEGMENT_VERSION_RING);
    assert!(h.flags.get() & fmt::SEG_FLAG_RING != 0);
    let first = fmt::block_header(&bytes[h.region_len.get() as usize..]).unwrap();
    assert_eq!(first.magic.get(), fmt::RING_BLOCK_MAGIC);
    // A store without ring blocks stays version 2.
    let bytes = std::fs::read(copy.path().join("segments/seg-00000.kseg")).unwrap();
    assert_eq!(
        fmt::segment_header(&bytes).unwrap().version.get(),
        fmt::WRITE_VERSION
    );
}

#[test]
fn ring_blocks_are_refused_when_not_enabled_too_large_or_misaligned() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &opts()).unwrap();
    let mut keep = Vec::new();
    assert_eq!(
        append_ring(&mut w, 0..5, 8192, &mut keep),
        RingAppend::Refused
    );
    // Records first: the open segment was opened without ring blocks.
    append_record(&mut w, 5);
    w.enable_ring_blocks();
    assert_eq!(
        append_ring(&mut w, 6..10, 8192, &mut keep),
        RingAppend::Refused
    );
    w.close().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &opts()).unwrap();
    w.enable_ring_blocks();
    // Resumed in place, still the segment without ring blocks.
    assert_eq!(
        append_ring(&mut w, 6..10, 8192, &mut keep),
        RingAppend::Refused
    );
    drop(w);
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &opts()).unwrap();
    w.enable_ring_blocks();
    // 100 frames of 60..1510 bytes (~85 KiB of ring) do not fit 56 KiB.
    assert_eq!(
        append_ring(&mut w, 0..100, 160 * 1024, &mut keep),
        RingAppend::Refused
    );
    assert_eq!(
        append_ring(&mut w, 0..10, 32 * 1024, &mut keep),
        RingAppend::Queued
    );
    w.close().unwrap();
    let (got, dmg) = read_all(dir.path());
    assert!(dmg.is_empty());
    assert_eq!(
        got.iter().map(|p| p.0).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn a_ring_of_ring_blocks_written_many_times_over_keeps_the_newest_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &opts()).unwrap();
    w.enable_ring_blocks();
    let mut keep = Vec::new();
    let mut id = 0;
    // About 20 segments' worth: the 4-slot ring wraps five times.
    while id < 5000 {
        let n = 5 + id % 17;
        assert_eq!(
            append_ring(&mut w, id..id + n, 32 * 1024, &mut keep),
            RingAppend::Queued
        );
        id += n;
        if keep.len() % 16 == 0 {
            w.sync().unwrap();
            w.take_ring_done(|_, ok| assert!(ok));
            keep.clear();
        }
    }
    w.close().unwrap();
    let (got, dmg) = read_all(dir.path());
    assert!(dmg.is_empty(), "{dmg:?}");
    let ids: Vec<u64> = got.iter().map(|p| p.0).collect();
    let first = ids[0];
    assert!(first > 2000, "the ring kept old data: starts at {first}");
    assert_eq!(ids, (first..id).collect::<Vec<_>>());
    for p in &got {
        assert_eq!(p.4, frame(p.0).0);
    }
}

/// Offsets (in segment file `seg`) of its ring blocks.
fn ring_block_offsets(dir: &Path, slot: u32) -> Vec<u64> {
    let r = StoreReader::open(dir).unwrap();
    let info = r
        .segments()
        .iter()
        .find(|s| s.slot == slot)
        .unwrap()
        .clone();
    let map = r.map(&info).unwrap();
    map.blocks()
        .filter_map(|ev| match ev {
            kuroko_ring::segment::BlockEvent::Valid(b) if b.header.is_ring() => Some(b.offset),
            _ => None,
        })
        .collect()
}

fn flip(path: &Path, off: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, off).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, off).unwrap();
}

#[test]
fn a_flipped_byte_in_a_ring_block_costs_that_block_only_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegmentWriter::open(dir.path(), &opts()).unwrap();
    w.enable_ring_blocks();
    let _keep = write_mixed(&mut w, 0, 300, 20, 48 * 1024);
    w.close().unwrap();
    let seg = dir.path().join("segments/seg-00000.kseg");
    let offs = ring_block_offsets(dir.path(), 0);
    assert!(offs.len() >= 3, "{offs:?}");
    // A byte of a frame in the second ring block.
    flip(&seg, offs[1] + 4096 + 300);
    let (got, dmg) = read_all(dir.path());
    assert_eq!(dmg.len(), 1, "{dmg:?}");
    assert_eq!(dmg[0].kind, DamageKind::PayloadChecksum);
    assert_eq!(dmg[0].offset, offs[1]);
    let lost = dmg[0].packets;
    assert!(lost > 0);
    assert_eq!(got.len() as u64 + lost, 300);
    for p in &got {
        assert_eq!(p.4, frame(p.0).0, "packet {} is wrong", p.0);
    }
    // The header of the third: its bytes are no block any more, the rest reads on.
    flip(&seg, offs[2] + 30);
    let (got2, dmg2) = read_all(dir.path());
    assert!(
        dmg2.iter().any(|d| d.kind == DamageKind::BlockHeader),
        "{dmg2:?}"
    );
    assert!(got2.len() < got.len() && !got2.is_empty());
    let last = got2.last().unwrap().0;
    assert_eq!(last, 299, "blocks after the damaged one are still read");
}

/// Child of the kill -9 test: writes ring blocks (and some records) from id `KR_RING_FROM`
/// on, syncing every few blocks and printing the last synced id.
fn child(dir: &Path, from: u64) {
    let mut w = SegmentWriter::open(dir, &opts()).unwrap();
    w.enable_ring_blocks();
    let mut id = from;
    let mut keep = Vec::new();
    let mut out = std::io::stdout();
    loop {
        let n = 3 + id % 13;
        if id.is_multiple_of(5) {
            for i in id..id + n {
                append_record(&mut w, i);
            }
        } else {
            match append_ring(&mut w, id..id + n, 32 * 1024, &mut keep) {
                RingAppend::Queued => {}
                // The segment open when the child started was resumed without ring blocks.
                RingAppend::Refused => {
                    for i in id..id + n {
                        append_record(&mut w, i);
                    }
                }
                RingAppend::Backpressure => unreachable!("blocking writer"),
            }
        }
        id += n;
        if keep.len() >= 8 {
            w.sync().unwrap();
            w.take_ring_done(|_, ok| assert!(ok));
            keep.clear();
            use std::io::Write;
            writeln!(out, "SYNCED {}", id - 1).unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn kill_9_while_writing_ring_blocks_keeps_every_synced_packet() {
    if let Ok(d) = std::env::var("KR_RING_CHILD") {
        let from = std::env::var("KR_RING_FROM").unwrap().parse().unwrap();
        child(Path::new(&d), from);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let big = StoreOptions {
        budget: 64 * 256 * 1024 + kuroko_ring::META_RESERVE,
        ..opts()
    };
    // Make the store with room to never wrap in this test (the child opens with `opts()`,
    // an existing store keeps its geometry).
    SegmentWriter::open(dir.path(), &big)
        .unwrap()
        .close()
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut next = 0u64;
    let mut seed = std::process::id() as u64 * 2_654_435_761;
    for round in 0..8 {
        let mut c = Command::new(&exe)
            .args([
                "kill_9_while_writing_ring_blocks_keeps_every_synced_packet",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KR_RING_CHILD", dir.path())
            .env("KR_RING_FROM", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let lines = 2 + seed % 10;
        let mut synced = None;
        let mut rd = BufReader::new(c.stdout.take().unwrap());
        let mut seen = 0;
        while seen < lines {
            let mut l = String::new();
            if rd.read_line(&mut l).unwrap() == 0 {
                break;
            }
            if let Some(n) = l.trim().strip_prefix("SYNCED ") {
                synced = Some(n.parse::<u64>().unwrap());
                seen += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(seed % 3000));
        c.kill().unwrap();
        c.wait().unwrap();
        // Recovery, then read.
        SegmentWriter::open(dir.path(), &opts())
            .unwrap()
            .close()
            .unwrap();
        let (got, dmg) = read_all(dir.path());
        assert!(
            dmg.is_empty(),
            "round {round}: damage after kill -9: {dmg:?}"
        );
        let ids: Vec<u64> = got.iter().map(|p| p.0).collect();
        assert_eq!(
            ids,
            (0..ids.len() as u64).collect::<Vec<_>>(),
            "round {round}"
        );
        for p in &got {
            assert_eq!(p.4, frame(p.0).0);
        }
        if let Some(s) = synced {
            assert!(
                ids.len() as u64 > s,
                "round {round}: synced up to {s}, only {} stored",
                ids.len()
            );
        }
        next = ids.len() as u64;
    }
    assert!(next > 0);
}
