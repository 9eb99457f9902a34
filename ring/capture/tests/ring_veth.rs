//! The engine on a real TPACKET_V3 ring: a veth pair inside a network namespace of the
//! test's own, frames sent with an AF_PACKET socket on one end, captured on the other into
//! an in-memory sink. Proves byte-exact capture (VLAN tags re-inserted), order, exact loss
//! accounting under backpressure, and that the hot path allocates nothing (a counting global
//! allocator that counts allocations made on a capture thread inside its hot loop).
//!
//! Needs root (CI runs as root); fails with a clear message otherwise.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kuroko_capture::{Appended, Capture, CaptureOptions, PacketMeta, RecordSink, StatsReader};

mod common;
use common::{Ns, SRC_MAC, frame, send_frames};

struct CountingAlloc;
static HOT_ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if kuroko_capture::in_hot_path() {
            HOT_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if kuroko_capture::in_hot_path() {
            HOT_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// What a `MemSink` kept: its arena and (meta, offset, length) per record.
type Kept = (Vec<u8>, Vec<(PacketMeta, usize, usize)>);

/// Keeps frames in a preallocated arena; answers Backpressure once full. Sends what it
/// kept when closed (off the hot path).
struct MemSink {
    arena: Vec<u8>,
    recs: Vec<(PacketMeta, usize, usize)>,
    done: Option<mpsc::Sender<Kept>>,
    /// Appends refused before the sink accepts (a store that is slow for a while).
    refuse_first: usize,
}
impl MemSink {
    fn new(max_records: usize, tx: mpsc::Sender<Kept>) -> MemSink {
        MemSink {
            arena: Vec::with_capacity(16 << 20),
            recs: Vec::with_capacity(max_records),
            done: Some(tx),
            refuse_first: 0,
        }
    }
}
impl RecordSink for MemSink {
    type Error = std::io::Error;
    fn append(&mut self, meta: &PacketMeta, parts: &[&[u8]]) -> Result<Appended, Self::Error> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.refuse_first > 0 {
            self.refuse_first -= 1;
            return Ok(Appended::Backpressure);
        }
        if self.recs.len() == self.recs.capacity() || self.arena.len() + len > self.arena.capacity()
        {
            return Ok(Appended::Backpressure);
        }
        let start = self.arena.len();
        for p in parts {
            self.arena.extend_from_slice(p);
        }
        self.recs.push((*meta, start, len));
        Ok(Appended::Stored)
    }
    fn poll(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), Self::Error> {
        if let Some(tx) = self.done.take() {
            let _ = tx.send((
                std::mem::take(&mut self.arena),
                std::mem::take(&mut self.recs),
            ));
        }
        Ok(())
    }
}

fn test_frames() -> Vec<Vec<u8>> {
    let sizes = [
        60, 64, 100, 128, 256, 512, 1000, 1400, 1500, 1514, 2000, 4096, 8000, 9000, 9014,
    ];
    let mut out = Vec::new();
    let mut seq = [0u16; 4];
    for (i, &len) in sizes.iter().enumerate() {
        for flow in 0..4u8 {
            let tags: &[(u16, u16)] = match (flow, i % 3) {
                (1, _) => &[(0x8100, 0x0064)],                   // 802.1Q, VLAN 100
                (2, 0) => &[(0x88a8, 0x00c8), (0x8100, 0x0005)], // QinQ
                (3, 1) => &[(0x8100, 0xe00a)],                   // PCP 7, VLAN 10
                _ => &[],
            };
            let len = if tags.is_empty() {
                len.min(9014)
            } else {
                len.min(9014 + 4 * tags.len())
            };
            seq[flow as usize] += 1;
            out.push(frame(flow, seq[flow as usize], len, tags));
        }
    }
    out
}

fn options() -> CaptureOptions {
    CaptureOptions {
        interfaces: vec!["vb".into()],
        ring_size: 8 << 20,
        block_size: 1 << 20,
        retire_ms: 10,
        lock_memory: false,
        drop_privileges: false, // the test thread still has to delete its namespace
        hardware_timestamps: false,
        ..CaptureOptions::default()
    }
}

fn wait_for_packets(data: &std::path::Path, n: u64) {
    let r = StatsReader::open(data).unwrap();
    let t0 = Instant::now();
    // Generous: a store refusing 2000 appends with a 200 µs sleep each takes 10 s and more
    // when the test machine is busy.
    while t0.elapsed() < Duration::from_secs(30) {
        let s = r.snapshot();
        if s.total_packets() + s.total_drops().total() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_frame_arrives_byte_for_byte_in_order_without_allocating() {
    let ns = Ns::new("caprg");
    let data = tempfile::tempdir().unwrap();
    let frames = test_frames();
    let (tx, rx) = mpsc::channel();
    HOT_ALLOCS.store(0, Ordering::Relaxed);
    let snap = std::thread::scope(|s| {
        let cap = s.spawn(|| {
            ns.enter();
            Capture::start(&options(), data.path(), |_| {
                Ok::<_, std::io::Error>(MemSink::new(10_000, tx.clone()))
            })
            .unwrap()
        });
        let capture = cap.join().unwrap();
        send_frames(&ns, "va", &frames, Duration::from_micros(300));
        wait_for_packets(data.path(), frames.len() as u64);
        capture.stop().unwrap()
    });
    let (arena, recs) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let ours: Vec<&[u8]> = recs
        .iter()
        .map(|(_, s, l)| &arena[*s..*s + *l])
        .filter(|b| b.len() >= 12 && b[6..12] == SRC_MAC)
        .collect();
    assert_eq!(ours.len(), frames.len(), "frames captured vs sent");
    for (i, (got, want)) in ours.iter().zip(&frames).enumerate() {
        assert_eq!(got.len(), want.len(), "frame {i}: length");
        assert!(
            got == &want.as_slice(),
            "frame {i} differs from what was sent"
        );
    }
    let metas: Vec<&PacketMeta> = recs.iter().map(|(m, _, _)| m).collect();
    assert!(
        metas.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "timestamps go forward"
    );
    assert!(
        metas
            .iter()
            .all(|m| m.interface == 0 && m.ts_ns > 1_600_000_000_000_000_000)
    );
    for (m, (_, _, l)) in metas.iter().zip(&recs) {
        assert_eq!(
            m.wire_len as usize, *l,
            "wire length = stored length (nothing truncated)"
        );
    }
    assert_eq!(
        snap.total_drops().total(),
        0,
        "drops: {:?}",
        snap.total_drops()
    );
    assert_eq!(snap.interfaces[0].packets, recs.len() as u64);
    assert_eq!(snap.interfaces[0].truncated_packets, 0);
    assert_eq!(
        snap.interfaces[0].stored_bytes,
        recs.iter().map(|r| r.2 as u64).sum::<u64>()
    );
    assert_eq!(
        HOT_ALLOCS.load(Ordering::Relaxed),
        0,
        "allocations on the capture hot path"
    );
}

#[test]
fn a_full_store_counts_backpressure_drops_exactly_and_snaplen_truncation() {
    let ns = Ns::new("capbp");
    let data = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = (0..200u16).map(|i| frame(9, i, 300, &[])).collect();
    let keep = 50;
    let (tx, rx) = mpsc::channel();
    let snap = std::thread::scope(|s| {
        let cap = s.spawn(|| {
            ns.enter();
            let opts = CaptureOptions {
                snaplen: 128,
                filter: format!("ether src {}", "02:6b:72:6b:00:01"),
                ..options()
            };
            Capture::start(&opts, data.path(), |_| {
                Ok::<_, std::io::Error>(MemSink::new(keep, tx.clone()))
            })
            .unwrap()
        });
        let capture = cap.join().unwrap();
        send_frames(&ns, "va", &frames, Duration::from_micros(200));
        // The store is full for good: the capture holds the block it cannot store, and at
        // the stop the frames still in the ring are counted, not forgotten.
        wait_for_packets(data.path(), keep as u64);
        capture.stop().unwrap()
    });
    let (arena, recs) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(recs.len(), keep);
    let i = &snap.interfaces[0];
    assert_eq!(i.packets, keep as u64);
    assert_eq!(i.drops.backpressure, (frames.len() - keep) as u64);
    assert_eq!(i.drops.kernel_ring, 0);
    assert_eq!(
        i.truncated_packets, keep as u64,
        "every stored frame was cut to the snaplen"
    );
    for (k, (m, s, l)) in recs.iter().enumerate() {
        assert_eq!(*l, 128);
        assert_eq!(m.wire_len, 300);
        assert_eq!(&arena[*s..*s + *l], &frames[k][..128]);
    }
}

#[test]
fn a_stop_right_after_the_last_packet_still_stores_it() {
    let ns = Ns::new("capst");
    let data = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = (0..10u16).map(|i| frame(5, i, 128, &[])).collect();
    let (tx, rx) = mpsc::channel();
    let snap = std::thread::scope(|s| {
        let cap = s.spawn(|| {
            ns.enter();
            // A long retire timeout: the last block is still the kernel's when we stop.
            let opts = CaptureOptions {
                retire_ms: 200,
                ..options()
            };
            Capture::start(&opts, data.path(), |_| {
                Ok::<_, std::io::Error>(MemSink::new(1000, tx.clone()))
            })
            .unwrap()
        });
        let capture = cap.join().unwrap();
        send_frames(&ns, "va", &frames, Duration::ZERO);
        capture.stop().unwrap()
    });
    let (arena, recs) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let ours = recs
        .iter()
        .filter(|(_, s, _)| arena[s + 6..s + 12] == SRC_MAC)
        .count();
    assert_eq!(ours, frames.len(), "frames sent just before the stop");
    assert_eq!(snap.total_drops().total(), 0);
}

#[test]
fn a_store_that_is_slow_for_a_while_loses_nothing_the_ring_can_hold() {
    let ns = Ns::new("capsl");
    let data = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = (0..300u16).map(|i| frame(6, i, 700, &[])).collect();
    let (tx, rx) = mpsc::channel();
    HOT_ALLOCS.store(0, Ordering::Relaxed);
    let snap = std::thread::scope(|s| {
        let cap = s.spawn(|| {
            ns.enter();
            // Blocks retire every 100 ms: a stall of a few hundred milliseconds (longer on
            // a busy machine) then fills a few of the 8 blocks, not all of them (with the
            // usual 10 ms every block could be retired during the stall and the ring
            // overflow, which is then rightly counted as backpressure).
            let opts = CaptureOptions {
                retire_ms: 100,
                ..options()
            };
            Capture::start(&opts, data.path(), |_| {
                let mut sink = MemSink::new(1000, tx.clone());
                // Refuses the first 2000 appends: the capture stalls on its first block
                // for a few hundred milliseconds while the ring buffers the rest.
                sink.refuse_first = 2000;
                Ok::<_, std::io::Error>(sink)
            })
            .unwrap()
        });
        let capture = cap.join().unwrap();
        send_frames(&ns, "va", &frames, Duration::from_micros(100));
        wait_for_packets(data.path(), frames.len() as u64);
        capture.stop().unwrap()
    });
    let (arena, recs) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let ours: Vec<&[u8]> = recs
        .iter()
        .map(|(_, s, l)| &arena[*s..*s + *l])
        .filter(|b| b[6..12] == SRC_MAC)
        .collect();
    assert_eq!(
        ours.len(),
        frames.len(),
        "every frame stored once the store came back: {snap:?}"
    );
    for (k, (got, want)) in ours.iter().zip(&frames).enumerate() {
        assert!(got == &want.as_slice(), "frame {k} differs");
    }
    assert_eq!(
        snap.total_drops().total(),
        0,
        "drops: {:?}",
        snap.total_drops()
    );
    assert_eq!(
        HOT_ALLOCS.load(Ordering::Relaxed),
        0,
        "allocations while stalled"
    );
}

/// The kernel strips the outer tag before the socket filter runs; a filter on it must
/// still select exactly the frames that carried it on the wire (and store them with the
/// tag put back).
#[test]
fn vlan_filters_match_the_outer_tag_the_kernel_stripped() {
    let ns = Ns::new("capvf");
    // Flow 0 untagged, 1 VLAN 100, 2 VLAN 200, 3 QinQ (outer 802.1ad 100, inner 5).
    let tags_of = |flow: u8| -> &'static [(u16, u16)] {
        match flow {
            1 => &[(0x8100, 100)],
            2 => &[(0x8100, 0x2000 | 200)],
            3 => &[(0x88a8, 100), (0x8100, 5)],
            _ => &[],
        }
    };
    let frames: Vec<(u8, Vec<u8>)> = (0..40u16)
        .map(|i| {
            let flow = (i % 4) as u8;
            (
                flow,
                frame(flow, i, 200 + usize::from(i) * 7, tags_of(flow)),
            )
        })
        .collect();
    let sent: Vec<Vec<u8>> = frames.iter().map(|(_, f)| f.clone()).collect();
    let cases: [(&str, &[u8]); 5] = [
        ("vlan 100", &[1, 3]),
        ("vlan 200", &[2]),
        ("vlan and host 10.0.0.1", &[1]),
        ("vlan 100 and vlan 5", &[3]),
        ("not vlan", &[0]),
    ];
    for (filter, flows) in cases {
        let want: Vec<&Vec<u8>> = frames
            .iter()
            .filter(|(f, _)| flows.contains(f))
            .map(|(_, b)| b)
            .collect();
        let data = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let snap = std::thread::scope(|s| {
            let cap = s.spawn(|| {
                ns.enter();
                let opts = CaptureOptions {
                    filter: filter.into(),
                    ..options()
                };
                Capture::start(&opts, data.path(), |_| {
                    Ok::<_, std::io::Error>(MemSink::new(1000, tx.clone()))
                })
                .unwrap()
            });
            let capture = cap.join().unwrap();
            send_frames(&ns, "va", &sent, Duration::from_micros(200));
            wait_for_packets(data.path(), want.len() as u64);
            // Frames that the filter wrongly let through would arrive right behind.
            std::thread::sleep(Duration::from_millis(100));
            capture.stop().unwrap()
        });
        let (arena, recs) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let got: Vec<&[u8]> = recs
            .iter()
            .map(|(_, s, l)| &arena[*s..*s + *l])
            .filter(|b| b.len() >= 12 && b[6..12] == SRC_MAC)
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "filter `{filter}`: frames captured vs frames of flows {flows:?}"
        );
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                *g == w.as_slice(),
                "filter `{filter}`: frame {k} differs from what was sent"
            );
        }
        assert_eq!(snap.total_drops().total(), 0, "filter `{filter}`");
    }
}

/// The real store behind the capture: the per-packet path (`StoreSink::append` into
/// `SegmentWriter::append`) allocates nothing. The store may allocate for bookkeeping
/// once per chunk, segment or second (e.g. publishing `writer.state`); the bound below
/// allows that and fails on anything per packet.
#[test]
fn the_store_sink_allocates_nothing_per_packet() {
    use kuroko_capture::StoreSink;
    use kuroko_ring::{SegmentWriter, StoreOptions};
    let ns = Ns::new("capsa");
    let data = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = (0..3000u16).map(|i| frame(7, i, 1400, &[])).collect();
    HOT_ALLOCS.store(0, Ordering::Relaxed);
    let snap = std::thread::scope(|s| {
        let cap = s.spawn(|| {
            ns.enter();
            Capture::start(&options(), data.path(), |_| {
                let w = SegmentWriter::open(
                    data.path(),
                    &StoreOptions {
                        budget: 64 << 20,
                        segment_size: 16 << 20,
                        chunk_size: 256 << 10,
                        nonblocking: true,
                        ..StoreOptions::default()
                    },
                )?;
                Ok::<_, kuroko_ring::StoreError>(StoreSink::new(w).publishing_to(data.path()))
            })
            .unwrap()
        });
        let capture = cap.join().unwrap();
        send_frames(&ns, "va", &frames, Duration::from_micros(20));
        wait_for_packets(data.path(), frames.len() as u64);
        capture.stop().unwrap()
    });
    let packets = snap.interfaces[0].packets;
    let allocs = HOT_ALLOCS.load(Ordering::Relaxed);
    assert!(
        packets + snap.total_drops().total() >= frames.len() as u64,
        "stored {packets}, drops {:?}",
        snap.total_drops()
    );
    assert!(packets >= 1000, "stored only {packets}");
    assert!(
        allocs * 100 <= packets,
        "{allocs} allocations on the capture thread for {packets} packets stored"
    );
}

/// A `MemSink` that counts its flushes (an atomic: no allocation on the hot path).
struct FlushCounting {
    inner: MemSink,
    flushes: Arc<AtomicU64>,
}
impl RecordSink for FlushCounting {
    type Error = std::io::Error;
    fn append(&mut self, meta: &PacketMeta, parts: &[&[u8]]) -> Result<Appended, Self::Error> {
        self.inner.append(meta, parts)
    }
    fn poll(&mut self) -> Result<(), Self::Error> {
        self.inner.poll()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.inner.flush()
    }
    fn close(&mut self) -> Result<(), Self::Error> {
        self.inner.close()
    }
}

/// A slow trickle (a frame every 400 ms for 4 s: the link is never idle for a second, as
/// with an interactive SSH session) is written out while it goes on: the partly filled
/// buffer is flushed by its age, not only after a second without packets. Before, it
/// waited for the buffer to fill (an open session reached the store 14 s late).
#[test]
fn a_slow_trickle_is_flushed_by_age_while_it_goes_on() {
    let ns = Ns::new("capfl");
    let data = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = (1..=10u16).map(|i| frame(0, i, 200, &[])).collect();
    let (tx, _rx) = mpsc::channel();
    let flushes = Arc::new(AtomicU64::new(0));
    let during = std::thread::scope(|s| {
        let cap = s.spawn(|| {
            ns.enter();
            Capture::start(&options(), data.path(), |_| {
                Ok::<_, std::io::Error>(FlushCounting {
                    inner: MemSink::new(1_000, tx.clone()),
                    flushes: flushes.clone(),
                })
            })
            .unwrap()
        });
        let capture = cap.join().unwrap();
        send_frames(&ns, "va", &frames, Duration::from_millis(400));
        let during = flushes.load(Ordering::Relaxed);
        capture.stop().unwrap();
        during
    });
    assert!(
        during >= 1,
        "no flush while a frame came every 400 ms for 4 s: recent packets stay unreadable"
    );
}
