//! Power-cut test in the style of CrashMonkey / ALICE.
//!
//! kill -9 (the crash test) keeps the page cache and every completed write; a power cut
//! keeps only what reached the media, and may tear a write at sector granularity. Without
//! device-mapper (no dm-log-writes here), the writer's own I/O is recorded instead: a
//! writer opened with `SegmentWriter::open_traced` logs every write (with its bytes) and
//! every fdatasync it queues, and every completion, in order. For many cut points in that
//! log (every point systematically, plus seeded random ones) the test builds an image a
//! power cut could leave:
//!
//! - the store as it was before the traced writer started (formatted, synced);
//! - every write that completed before the submission of the last completed fdatasync;
//! - every later write submitted before the cut independently present, absent, or torn
//!   (each 512 B or 4 KiB sector present or not).
//!
//! It then opens the image the normal way (no repair tool) and checks:
//!
//! - a reader, before and after recovery, returns only byte-identical packets, each at most
//!   once, in write order (ids strictly increase): nothing torn, stale or from an older
//!   generation comes back;
//! - every packet the writer had reported durable (`sync` returned) is there, unless its
//!   segment was already being overwritten by a newer generation (the ring dropping it);
//! - segments have distinct slots and increasing sequence numbers, within the ring;
//! - recovery takes well under a second per segment;
//! - a writer continuing on the recovered image never adopts blocks left by the crashed
//!   generation (its new packets read back, in order, after the old ones).

use kuroko_ring::format::{self as fmt, SegmentHeader, StoreMeta};
use kuroko_ring::writer::{IoTrace, TraceOp};
use kuroko_ring::{
    IoPreference, Position, Preallocate, RecordMeta, SegmentWriter, StoreOptions, StoreReader,
};
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, IntoBytes};

const SEG: u64 = 256 * 1024;
const SLOTS: u64 = 4;
const TS0: u64 = 1_700_000_000_000_000_000;
/// Ids of packets written after recovery start here.
const AFTER: u64 = 10_000_000;
/// Packets written after recovery.
const NEW: u64 = 5;

fn opts(io: IoPreference) -> StoreOptions {
    StoreOptions {
        budget: SLOTS * SEG + kuroko_ring::META_RESERVE,
        segment_size: SEG,
        chunk_size: 64 * 1024,
        preallocate: Preallocate::All,
        io,
        ..Default::default()
    }
}

fn payload(id: u64) -> Vec<u8> {
    let len = 60 + (id.wrapping_mul(2_654_435_761) % 1450) as usize;
    let mut v: Vec<u8> = (0..len)
        .map(|j| (id as usize).wrapping_mul(131).wrapping_add(j * 7) as u8)
        .collect();
    v[..8].copy_from_slice(&id.to_le_bytes());
    v
}

fn ts(id: u64) -> u64 {
    TS0 + id * 1000
}

fn append(w: &mut SegmentWriter, id: u64) {
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

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One queued write from the log.
struct Write {
    /// Position of its submission in the log.
    at: usize,
    id: u64,
    slot: u32,
    off: u64,
    data: Vec<u8>,
    /// Generation the bytes belong to (block or header `seq`).
    seq: u64,
}

struct Recording {
    /// Files of the store before the traced writer started.
    base: BTreeMap<String, Vec<u8>>,
    ops: Vec<TraceOp>,
    writes: Vec<Write>,
    /// Packet id → (seq, slot) it was written to (the last time, if ever twice).
    home: HashMap<u64, (u64, u32)>,
}

/// A write that is the ring bytes of a ring block (no block header: a TPACKET_V3 block
/// descriptor, whose first word is its version, 1).
fn is_ring_data(data: &[u8], off: u64) -> bool {
    off != 0
        && fmt::block_header(data).is_none_or(|b| {
            b.magic.get() != fmt::BLOCK_MAGIC && b.magic.get() != fmt::RING_BLOCK_MAGIC
        })
}

/// The generation of a write's bytes and the packet ids in it (if it is a block; a ring
/// block's header page has none: they are in its ring bytes, see `is_ring_data`).
fn parse_write(data: &[u8], off: u64) -> (u64, Vec<u64>) {
    if off == 0 {
        let h = SegmentHeader::read_from_prefix(data).unwrap().0;
        return (h.seq.get(), Vec::new());
    }
    if is_ring_data(data, off) {
        let ids = fmt::Records::ring(data, 0)
            .map(|r| (r.unwrap().header.ts_ns.get() - TS0) / 1000)
            .collect();
        return (0, ids);
    }
    let b = fmt::block_header(data).expect("a block write starts with its header");
    if b.is_ring() {
        return (b.seq.get(), Vec::new());
    }
    let mut ids = Vec::new();
    let mut at = fmt::BLOCK_HEADER_LEN;
    for _ in 0..b.record_count.get() {
        let ts = u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
        let cap = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        ids.push((ts - TS0) / 1000);
        at += (fmt::RECORD_HEADER_LEN + cap).div_ceil(4) * 4;
    }
    (b.seq.get(), ids)
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("segments")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "store.meta" || name.ends_with(".kseg") {
            m.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    m
}

/// With `ring`, about half of the packets go as ring blocks (`append_ring_block`, groups
/// of 3..12 frames laid out as the kernel fills a TPACKET_V3 block), the rest as records.
fn append_ring(w: &mut SegmentWriter, ids: std::ops::Range<u64>, keep: &mut Vec<Vec<u8>>) {
    let datas: Vec<Vec<u8>> = ids.clone().map(payload).collect();
    let frames: Vec<fmt::testing::Frame<'_>> = ids
        .clone()
        .zip(&datas)
        .map(|(id, d)| fmt::testing::Frame {
            ts_ns: ts(id),
            data: d,
            wire_len: d.len() as u32,
            status: 0,
        })
        .collect();
    let mut v = vec![0u8; 32 * 1024 + 4096];
    let at = v.as_ptr().align_offset(4096);
    let filled = fmt::testing::ring_block(&mut v[at..at + 32 * 1024], &frames).unwrap();
    let meta = kuroko_ring::RingBlockMeta {
        filled: filled as u32,
        packets: frames.len() as u32,
        first_ts: ts(ids.start),
        last_ts: ts(ids.end - 1),
        iface: 0,
        token: 0,
    };
    // SAFETY: `v` goes into `keep`, which the workload empties only after a `sync` or a
    // `close` (every write completed); moving a Vec does not move its heap buffer.
    let r = unsafe { w.append_ring_block(&v[at..at + 32 * 1024], &meta) }.unwrap();
    assert_eq!(r, kuroko_ring::RingAppend::Queued);
    keep.push(v);
}

/// Runs a workload through a traced writer: packets of varied sizes (with `ring`, about
/// half of them in ring blocks), flushes, `sync`s (each followed by a marker with the last
/// durable id), a clean close and reopen, and several passes over the ring.
fn record(io: IoPreference, ring: bool) -> Recording {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    SegmentWriter::open(dir, &opts(io))
        .unwrap()
        .close()
        .unwrap();
    let base = snapshot(dir);
    let trace = IoTrace::default();
    let mut w = SegmentWriter::open_traced(dir, &opts(io), trace.clone()).unwrap();
    if ring {
        w.enable_ring_blocks();
    }
    let mut keep = Vec::new();
    let total = 3000u64;
    let mut id = 1;
    while id <= total {
        // Groups of 3..12 packets that never cross the marks below.
        let mut n = (3 + id % 10).min(total + 1 - id);
        for m in [37, 290, total / 2] {
            let next = id.next_multiple_of(m);
            if next >= id {
                n = n.min(next - id + 1);
            }
        }
        if ring && (id / 7) % 2 == 0 {
            append_ring(&mut w, id..id + n, &mut keep);
        } else {
            for i in id..id + n {
                append(&mut w, i);
            }
        }
        let last = id + n - 1;
        id += n;
        if last % 37 == 0 {
            w.flush();
        }
        if last % 290 == 0 {
            w.sync().unwrap();
            keep.clear();
            trace.mark(last);
        }
        if last == total / 2 {
            w.close().unwrap();
            keep.clear();
            trace.mark(last);
            w = SegmentWriter::open_traced(dir, &opts(io), trace.clone()).unwrap();
            if ring {
                w.enable_ring_blocks();
            }
        }
    }
    w.close().unwrap();
    drop(keep);
    trace.mark(total);
    let ops = std::mem::take(&mut trace.0.lock().unwrap().ops);
    let mut writes = Vec::new();
    let mut home = HashMap::new();
    // The generation of a ring block's ring bytes is its header page's: the next write
    // queued (the writer queues the ring bytes, then at once the header page).
    let next_write_seq = |i: usize| {
        ops[i + 1..]
            .iter()
            .find_map(|o| match o {
                TraceOp::Write { data, off, .. } => Some(parse_write(data, *off).0),
                _ => None,
            })
            .expect("a ring block's header page follows its ring bytes")
    };
    for (at, op) in ops.iter().enumerate() {
        if let TraceOp::Write {
            id,
            slot,
            off,
            data,
        } = op
        {
            let (mut seq, ids) = parse_write(data, *off);
            if is_ring_data(data, *off) {
                seq = next_write_seq(at);
            }
            for p in ids {
                home.insert(p, (seq, *slot));
            }
            writes.push(Write {
                at,
                id: *id,
                slot: *slot,
                off: *off,
                data: data.clone(),
                seq,
            });
        }
    }
    Recording {
        base,
        ops,
        writes,
        home,
    }
}

/// What a power cut after `ops[..cut]` may leave, written to `img`; returns the last id
/// reported durable and, per slot, the newest generation any write before the cut belongs
/// to.
fn build_image(rec: &Recording, cut: usize, rng: &mut Rng, img: &Path) -> (u64, HashMap<u32, u64>) {
    let ops = &rec.ops[..cut];
    let mut done_at = HashMap::new();
    let mut submitted_at = HashMap::new();
    let mut durable_mark = 0;
    let mut reserved = None;
    for (i, op) in ops.iter().enumerate() {
        match op {
            TraceOp::Done { id } => {
                done_at.insert(*id, i);
            }
            TraceOp::Write { id, .. } | TraceOp::Sync { id, .. } => {
                submitted_at.insert(*id, i);
            }
            TraceOp::Mark(v) => durable_mark = *v,
            TraceOp::Reserve(r) => reserved = Some(*r),
        }
    }
    // The completed fdatasync submitted last: writes completed before its submission are
    // on the media.
    let barrier = ops
        .iter()
        .filter_map(|op| match op {
            TraceOp::Sync { id, .. } if done_at.contains_key(id) => Some(submitted_at[id]),
            _ => None,
        })
        .max();
    let mut files = rec.base.clone();
    // store.meta as the last durable sequence-number reservation left it.
    if let Some(r) = reserved {
        let meta = files.get_mut("store.meta").expect("store.meta");
        let (mut m, _) = StoreMeta::read_from_prefix(meta).unwrap();
        m.seq_reserved = r.into();
        m.crc = crc32c::crc32c(m.crc_input()).into();
        meta[..fmt::STORE_META_LEN].copy_from_slice(m.as_bytes());
    }
    let mut newest = HashMap::new();
    for w in rec.writes.iter().filter(|w| w.at < cut) {
        let e = newest.entry(w.slot).or_insert(0);
        *e = (*e).max(w.seq);
        let durable = barrier.is_some_and(|b| done_at.get(&w.id).is_some_and(|&d| d < b));
        let file = files
            .get_mut(&format!("seg-{:05}.kseg", w.slot))
            .expect("slot file");
        let dst = &mut file[w.off as usize..w.off as usize + w.data.len()];
        if durable {
            dst.copy_from_slice(&w.data);
            continue;
        }
        match rng.below(3) {
            0 => {}
            1 => dst.copy_from_slice(&w.data),
            _ => {
                let sector = if rng.below(2) == 0 { 512 } else { 4096 };
                for (d, s) in dst.chunks_mut(sector).zip(w.data.chunks(sector)) {
                    if rng.below(2) == 0 {
                        d.copy_from_slice(s);
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(img);
    std::fs::create_dir_all(img.join("segments")).unwrap();
    for (name, bytes) in &files {
        std::fs::write(img.join("segments").join(name), bytes).unwrap();
    }
    (durable_mark, newest)
}

/// Reads every packet; checks content, order and segment consistency; returns the ids and
/// how many damaged places the scan reported.
fn read_checked(img: &Path, what: &str) -> (Vec<u64>, usize) {
    let r = StoreReader::open(img).unwrap();
    let segs = r.segments();
    assert!(
        segs.len() as u64 <= SLOTS,
        "{what}: {} segments",
        segs.len()
    );
    assert!(
        segs.windows(2).all(|s| s[0].seq < s[1].seq),
        "{what}: sequence numbers not increasing"
    );
    let mut slots: Vec<u32> = segs.iter().map(|s| s.slot).collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), segs.len(), "{what}: a slot listed twice");
    let mut ids: Vec<u64> = Vec::new();
    let rep = r
        .scan(Position::ORIGIN, |p| {
            let id = (p.ts_ns - TS0) / 1000;
            assert_eq!(p.ts_ns, ts(id), "{what}: timestamp");
            assert_eq!(
                p.data,
                &payload(id)[..],
                "{what}: packet {id} is not what was written"
            );
            if let Some(&last) = ids.last() {
                assert!(
                    id > last,
                    "{what}: packet {id} after {last} (stale or repeated)"
                );
            }
            ids.push(id);
            ControlFlow::Continue(())
        })
        .unwrap();
    (ids, rep.damage.len())
}

fn check_cut(rec: &Recording, cut: usize, seed: u64, img: &Path, stats: &mut Stats) {
    let mut rng = Rng(seed | 1);
    let (durable, newest) = build_image(rec, cut, &mut rng, img);
    let what = format!("cut {cut}/{} seed {seed}", rec.ops.len());
    let (before, _) = read_checked(img, &format!("{what}, before recovery"));

    let t = Instant::now();
    let mut w = SegmentWriter::open(img, &opts(IoPreference::Auto)).unwrap();
    let took = t.elapsed();
    stats.max_recovery = stats.max_recovery.max(took);
    assert!(
        took < Duration::from_millis(250) * SLOTS as u32,
        "{what}: recovery took {took:?}"
    );
    stats.sealed += w.recovery().sealed_slots.len();

    let (got, damage) = read_checked(img, &format!("{what}, after recovery"));
    // Damage after a power cut is a block of an unsynced generation that was lost or torn
    // over an older segment's used area: reported (never returned as packets), counted.
    stats.damage_reports += damage;
    stats.images_with_damage += (damage > 0) as usize;
    let present: std::collections::HashSet<u64> = got.iter().copied().collect();
    for id in 1..=durable {
        let Some(&(seq, slot)) = rec.home.get(&id) else {
            continue;
        };
        // Dropped legitimately: a newer generation had started to overwrite its slot.
        if newest.get(&slot).is_some_and(|&n| n > seq) {
            continue;
        }
        assert!(
            present.contains(&id),
            "{what}: packet {id} (seq {seq}, slot {slot}) was reported durable and is lost"
        );
        stats.durable_checked += 1;
    }
    // Recovery may only seal what the reader already returned, never invent packets.
    assert!(
        got.iter().all(|id| before.contains(id)),
        "{what}: recovery made new packets appear"
    );

    // Keep writing on the recovered image, a little (one small block, so that blocks a
    // crashed generation left further on stay in place): the new generation must not adopt
    // them.
    for k in 0..NEW {
        append(&mut w, AFTER + k);
    }
    w.sync().unwrap();
    w.close().unwrap();
    let (after, _) = read_checked(img, &format!("{what}, after new writes"));
    let new: Vec<u64> = after.iter().copied().filter(|&id| id >= AFTER).collect();
    assert_eq!(
        new,
        (AFTER..AFTER + NEW).collect::<Vec<_>>(),
        "{what}: new packets"
    );
    stats.cuts += 1;
}

#[derive(Default, Debug)]
struct Stats {
    cuts: usize,
    sealed: usize,
    durable_checked: usize,
    damage_reports: usize,
    images_with_damage: usize,
    max_recovery: Duration,
}

fn power_cut(io: IoPreference, ring: bool, systematic: bool, random_cuts: usize) {
    let rec = record(io, ring);
    let syncs = rec
        .ops
        .iter()
        .filter(|o| matches!(o, TraceOp::Sync { .. }))
        .count();
    assert!(
        syncs >= 10 && rec.writes.len() > 100,
        "{} writes",
        rec.writes.len()
    );
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let img = tmp.path().join("img");
    let mut stats = Stats::default();
    // Systematic: every point of the log, each with its own outcome for the pending writes.
    let n = rec.ops.len();
    if systematic {
        for cut in 0..=n {
            check_cut(&rec, cut, 0x9e37_79b9 ^ cut as u64, &img, &mut stats);
        }
    }
    // Seeded random: more outcomes at random points.
    let mut rng = Rng(0x5eed_1234);
    for _ in 0..random_cuts {
        let cut = rng.below(n as u64 + 1) as usize;
        let seed = rng.next();
        check_cut(&rec, cut, seed, &img, &mut stats);
    }
    eprintln!(
        "{io:?}: {} ops ({} writes, {syncs} fdatasyncs), {stats:?}",
        n,
        rec.writes.len()
    );
    assert!(stats.durable_checked > 0);
}

#[test]
fn power_cut_at_any_point_keeps_every_synced_packet_and_returns_nothing_torn_or_stale() {
    power_cut(IoPreference::Auto, false, true, 200);
}

#[test]
fn power_cut_with_ring_blocks_keeps_every_synced_packet_and_returns_nothing_torn_or_stale() {
    power_cut(IoPreference::Auto, true, true, 100);
}

#[test]
fn power_cut_with_the_synchronous_fallback() {
    power_cut(IoPreference::Pwrite, false, false, 150);
}
