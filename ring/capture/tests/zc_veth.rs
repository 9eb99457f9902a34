//! Zero-copy capture on a real TPACKET_V3 ring: a veth pair in a namespace of the test's
//! own, frames (VLAN-tagged among them) sent on one end, captured on the other with
//! `zero_copy = on` into a real store. Every frame is stored exactly once, as it was on the
//! wire (tags back in place), the stats page says the bytes went without a user-space copy
//! (`zero_copy_bytes == stored_bytes`), and the store's pcap export equals the one of the
//! same frames captured with copying, and the capture thread allocated nothing per block
//! or packet in its hot loop (a counting global allocator, as in `ring_veth.rs`). Its own test binary (a capture per test, and the
//! allocation counting of `ring_veth.rs` counts every capture thread of its process).
//!
//! Needs root (CI runs as root).

use std::path::Path;
use std::time::{Duration, Instant};

use kuroko_capture::{Capture, CaptureOptions, StatsReader, StatsSnapshot, StoreSink, ZeroCopy};
use kuroko_ring::{Position, SegmentWriter, StoreOptions, StoreReader};

mod common;
use common::{Ns, SRC_MAC, frame, send_frames};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts allocations made on a capture thread inside its hot loop (as `ring_veth.rs`).
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

/// The tests of this file one at a time (the allocation count is process-wide).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn options(zero_copy: ZeroCopy) -> CaptureOptions {
    CaptureOptions {
        interfaces: vec!["vb".into()],
        // With zero-copy the ring also holds the blocks being written (the store's buffers
        // no longer absorb a slow disk): two captures of this file run at once on a
        // loaded test machine.
        ring_size: 32 << 20,
        block_size: 1 << 20,
        retire_ms: 10,
        lock_memory: false,
        drop_privileges: false, // the test thread still has to delete its namespace
        hardware_timestamps: false,
        zero_copy,
        ..CaptureOptions::default()
    }
}

fn wait_for_packets(data: &Path, n: u64) {
    let r = StatsReader::open(data).unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        let s = r.snapshot();
        if s.total_packets() + s.total_drops().total() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn capture(ns: &Ns, data: &Path, zc: ZeroCopy, frames: &[Vec<u8>]) -> StatsSnapshot {
    let opts = options(zc);
    std::thread::scope(|s| {
        let cap = s.spawn(|| {
            ns.enter();
            Capture::start(&opts, data, |_| {
                let w = SegmentWriter::open(
                    data,
                    &StoreOptions {
                        budget: 64 << 20,
                        segment_size: 4 << 20,
                        chunk_size: 1 << 20,
                        nonblocking: true,
                        ..StoreOptions::default()
                    },
                )?;
                Ok::<_, kuroko_ring::StoreError>(StoreSink::new(w))
            })
            .unwrap()
        });
        let capture = cap.join().unwrap();
        send_frames(ns, "va", frames, Duration::from_micros(20));
        wait_for_packets(data, frames.len() as u64);
        capture.stop().unwrap()
    })
}

/// Our frames in the store, in read order, and its pcap export (our frames only).
fn stored(data: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
    let reader = StoreReader::open(data).unwrap();
    let mine = |d: &[u8]| d.len() >= 12 && d[6..12] == SRC_MAC;
    let mut got = Vec::new();
    let rep = reader
        .scan(Position::ORIGIN, |p| {
            if mine(p.data) {
                got.push(p.data.to_vec());
            }
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert!(rep.damage.is_empty(), "{:?}", rep.damage);
    let mut pcap = Vec::new();
    kuroko_ring::pcap::export_pcap(&reader, 0, u64::MAX, |p| mine(p.data), &mut pcap).unwrap();
    (got, pcap)
}

/// The pcap records without their timestamps (two captures never share them).
fn without_times(pcap: &[u8]) -> Vec<u8> {
    let mut out = pcap[..24].to_vec();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        out.extend_from_slice(&pcap[at + 8..at + 16 + incl]);
        at += 16 + incl;
    }
    out
}

#[test]
fn zero_copy_capture_stores_every_frame_as_on_the_wire_without_a_copy() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Ns::new("capzc");
    // Large frames, every 4th with an 802.1Q tag and every 9th QinQ (the kernel strips
    // the outer tag: the capture puts it back in place).
    let frames: Vec<Vec<u8>> = (0..3000u16)
        .map(|i| {
            let tags: &[(u16, u16)] = match i % 36 {
                0 => &[(0x88a8, 0x0064), (0x8100, 0x0007)],
                k if k % 4 == 0 => &[(0x8100, 0x0123 + i % 7)],
                _ => &[],
            };
            frame((i % 8) as u8, i, 700 + usize::from(i % 11) * 70, tags)
        })
        .collect();
    let zc = tempfile::tempdir().unwrap();
    HOT_ALLOCS.store(0, Ordering::Relaxed);
    let snap = capture(&ns, zc.path(), ZeroCopy::On, &frames);
    let allocs = HOT_ALLOCS.load(Ordering::Relaxed);
    assert_eq!(snap.total_drops().total(), 0, "{:?}", snap.total_drops());
    let i = &snap.interfaces[0];
    assert!(i.zero_copy_blocks > 0, "{i:?}");
    assert_eq!(
        i.zero_copy_bytes, i.stored_bytes,
        "every stored byte went without a user-space copy: {i:?}"
    );
    // Nothing per block or packet; the store's bookkeeping per segment or second may
    // (the bound of `ring_veth.rs`'s store-sink test).
    assert!(
        allocs * 100 <= i.packets,
        "{allocs} allocations on the capture thread for {} packets",
        i.packets
    );
    let (got, pcap_zc) = stored(zc.path());
    assert_eq!(got.len(), frames.len(), "every frame stored exactly once");
    assert_eq!(got, frames, "stored as sent, tags back in place, in order");

    let copy = tempfile::tempdir().unwrap();
    let snap = capture(&ns, copy.path(), ZeroCopy::Off, &frames);
    assert_eq!(snap.interfaces[0].zero_copy_blocks, 0);
    let (got_copy, pcap_copy) = stored(copy.path());
    assert_eq!(got_copy, frames);
    assert_eq!(without_times(&pcap_zc), without_times(&pcap_copy));
}

/// `auto` leaves blocks of small frames to the copying path: 64-byte frames are copied,
/// 1400-byte ones go as ring blocks, and both come back intact and in order.
#[test]
fn zero_copy_auto_copies_small_frames_and_writes_large_ones_as_ring_blocks() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Ns::new("capzcauto");
    let small: Vec<Vec<u8>> = (0..2000u16).map(|i| frame(1, i, 64, &[])).collect();
    let large: Vec<Vec<u8>> = (0..2000u16).map(|i| frame(2, i, 1400, &[])).collect();
    let dir = tempfile::tempdir().unwrap();
    let snap = capture(&ns, dir.path(), ZeroCopy::Auto, &small);
    let i = &snap.interfaces[0];
    assert_eq!(i.zero_copy_blocks, 0, "small frames are copied: {i:?}");
    let dir2 = tempfile::tempdir().unwrap();
    let snap = capture(&ns, dir2.path(), ZeroCopy::Auto, &large);
    let i = &snap.interfaces[0];
    assert!(i.zero_copy_blocks > 0 && i.zero_copy_bytes > 0, "{i:?}");
    assert_eq!(snap.total_drops().total(), 0, "{:?}", snap.total_drops());
    assert_eq!(stored(dir.path()).0, small);
    let got = stored(dir2.path()).0;
    assert_eq!(got.len(), large.len());
    for (k, (g, l)) in got.iter().zip(&large).enumerate() {
        if g != l {
            let at = g.iter().zip(l).position(|(a, b)| a != b);
            panic!(
                "frame {k} differs (len {} vs {}) at byte {at:?}",
                g.len(),
                l.len()
            );
        }
    }
}
