//! Hostile input against the analyzer's memory budget (issue 22): many connections each
//! sending thousands of 1-byte segments behind a hole that never fills, so every segment is
//! held out of order. Held segments cost far more than their payload (an allocation and a
//! map entry each); the budget must count that real cost, so the memory actually allocated
//! stays under `[analyzer] memory_budget` (plus the small fixed flow state), and what was
//! given up is counted.
//!
//! Memory is measured by a counting global allocator in this test binary (bytes requested
//! and live; the allocator's own headers come on top, which `HELD_SEGMENT_OVERHEAD` also
//! covers). One test per binary: the counter is process-wide.

use etherparse::PacketBuilder;
use kuroko_analyzer::{Engine, PacketIn, PacketPos, Settings};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const FLOWS: u16 = 64;
const SEGMENTS_PER_FLOW: u32 = 2000;
const BUDGET: usize = 2 << 20;
/// Flow state, identification buffers and parsers of 64 flows, and the engine's tables.
const FIXED_SLACK: usize = 1 << 20;

fn frame(
    client_port: u16,
    from_client: bool,
    seq: u32,
    ack: u32,
    syn: bool,
    payload: &[u8],
) -> Vec<u8> {
    let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let b = if from_client {
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(c, s, 64)
            .tcp(client_port, 80, seq, 65535)
    } else {
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4(s, c, 64)
            .tcp(80, client_port, seq, 65535)
    };
    let b = if syn { b.syn() } else { b };
    let b = if ack > 0 { b.ack(ack) } else { b };
    let mut v = Vec::with_capacity(64 + payload.len());
    b.write(&mut v, payload).unwrap();
    v
}

#[test]
fn tiny_out_of_order_segments_stay_within_the_memory_budget_and_are_counted() {
    let settings = Settings {
        memory_budget: BUDGET,
        ..Settings::default()
    };
    let mut engine = Engine::new(settings, None);
    let mut emitted = 0usize;
    let mut n = 0u64;
    let t0 = 1_700_000_000_000_000_000i64;
    let mut feed = |engine: &mut Engine, f: Vec<u8>| {
        let p = PacketIn {
            pos: PacketPos::new(0, 0, n),
            ts_ns: t0 + n as i64 * 1000,
            iface: 1,
            linktype: 1,
            data: &f,
        };
        n += 1;
        engine.packet(p, &mut |_| emitted += 1);
    };
    let isn_c = 1000u32;
    let isn_s = 9000u32;
    for i in 0..FLOWS {
        let port = 40000 + i;
        feed(&mut engine, frame(port, true, isn_c, 0, true, b""));
        feed(&mut engine, frame(port, false, isn_s, isn_c + 1, true, b""));
    }
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    // Byte 0 of every stream never comes; bytes 2, 4, 6, ... do, one per segment.
    for k in 0..SEGMENTS_PER_FLOW {
        for i in 0..FLOWS {
            let seq = isn_c + 1 + 2 + 2 * k;
            feed(
                &mut engine,
                frame(40000 + i, true, seq, isn_s + 1, false, b"x"),
            );
        }
        assert!(
            engine.reassembly_held() <= BUDGET,
            "accounted {} > budget {BUDGET}",
            engine.reassembly_held()
        );
    }
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let c = engine.counters.clone();
    eprintln!(
        "peak allocated growth {grew} B, accounted {} B (peak {}), budget {BUDGET}, \
         memory_budget_drops {}, tcp_gaps so far {}",
        engine.reassembly_held(),
        c.reassembly_peak_bytes,
        c.memory_budget_drops,
        c.tcp_gaps
    );
    assert!(
        grew <= BUDGET + FIXED_SLACK,
        "memory grew by {grew} B for a budget of {BUDGET} B"
    );
    assert!(
        c.memory_budget_drops > 0,
        "nothing counted as given up for the budget"
    );
    assert!(c.reassembly_peak_bytes <= BUDGET as u64);
    engine.close_all("end_of_input", &mut |_| emitted += 1);
    assert_eq!(emitted, FLOWS as usize, "one session per connection");
    assert_eq!(engine.reassembly_held(), 0);
}
