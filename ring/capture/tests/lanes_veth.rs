//! Capture with more than one thread into one store: a veth pair in a namespace of the
//! test's own, two capture threads (a PACKET_FANOUT pair of sockets) each writing a lane
//! of the store's one writer (`kuroko_ring::LaneWriter`). Its own test binary: the
//! allocation-counting tests of `ring_veth.rs` count every capture thread of their process.
//!
//! Needs root (CI runs as root).

use std::time::{Duration, Instant};

use kuroko_capture::{Capture, CaptureOptions, StatsReader};

mod common;
use common::{Ns, SRC_MAC, frame, send_frames};

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
    while t0.elapsed() < Duration::from_secs(30) {
        let s = r.snapshot();
        if s.total_packets() + s.total_drops().total() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two capture threads (a PACKET_FANOUT pair of sockets) writing one store through two
/// lanes of its writer (`SegmentWriter::into_lanes`): every frame sent is stored exactly
/// once and intact, each flow's frames in the order sent (a flow stays on one socket),
/// the loss counters of both threads add up to zero, and a pcap export of the store comes
/// out in time order although the lanes' blocks interleave.
#[test]
fn two_capture_threads_store_every_frame_once_through_lanes() {
    use kuroko_capture::StoreSink;
    use kuroko_ring::{Position, SegmentWriter, StoreOptions, StoreReader};
    let ns = Ns::new("caplanes");
    let data = tempfile::tempdir().unwrap();
    // 16 flows, so that the flow hash gives both sockets some.
    let frames: Vec<Vec<u8>> = (0..4000u16)
        .map(|i| frame((i % 16) as u8, i / 16, 200 + usize::from(i % 7) * 190, &[]))
        .collect();
    let opts = CaptureOptions {
        threads_per_interface: 2,
        max_writers: 2,
        ..options()
    };
    let mut lanes = Vec::new();
    let snap = std::thread::scope(|s| {
        let cap = s.spawn(|| {
            ns.enter();
            Capture::start(&opts, data.path(), |t| {
                if t == 0 {
                    let w = SegmentWriter::open(
                        data.path(),
                        &StoreOptions {
                            budget: 64 << 20,
                            segment_size: 1 << 20,
                            chunk_size: 64 << 10,
                            nonblocking: true,
                            ..StoreOptions::default()
                        },
                    )?;
                    lanes = w.into_lanes(2);
                }
                Ok::<_, kuroko_ring::StoreError>(StoreSink::lane(lanes.remove(0)))
            })
            .unwrap()
        });
        let capture = cap.join().unwrap();
        send_frames(&ns, "va", &frames, Duration::from_micros(20));
        wait_for_packets(data.path(), frames.len() as u64);
        capture.stop().unwrap()
    });
    assert_eq!(snap.threads, 2);
    assert_eq!(
        snap.total_drops().total(),
        0,
        "drops: {:?}",
        snap.total_drops()
    );
    let reader = StoreReader::open(data.path()).unwrap();
    let mut got: Vec<(u8, u16, Vec<u8>)> = Vec::new();
    let rep = reader
        .scan(Position::ORIGIN, |p| {
            if p.data.len() >= 45 && p.data[6..12] == SRC_MAC {
                let seq = u16::from_be_bytes([p.data[43], p.data[44]]);
                got.push((p.data[42], seq, p.data.to_vec()));
            }
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert!(rep.damage.is_empty(), "{:?}", rep.damage);
    assert_eq!(got.len(), frames.len(), "every frame stored exactly once");
    assert!(reader.segments().len() > 1, "several segments written");
    for flow in 0..16u8 {
        let seqs: Vec<u16> = got.iter().filter(|g| g.0 == flow).map(|g| g.1).collect();
        assert_eq!(
            seqs,
            (0..250u16).collect::<Vec<_>>(),
            "flow {flow}: every frame once, in order"
        );
    }
    for (flow, seq, bytes) in &got {
        let i = usize::from(*seq) * 16 + usize::from(*flow);
        assert_eq!(bytes, &frames[i], "frame {i} is intact");
    }
    assert_eq!(
        snap.interfaces[0].packets,
        snap.interfaces[0].link.ring_frames
    );
    // The pcap export merges the lanes by time.
    let mut pcap = Vec::new();
    let exp = kuroko_ring::pcap::export_pcap(&reader, 0, u64::MAX, |_| true, &mut pcap).unwrap();
    assert_eq!(
        exp.packets,
        got.len() as u64 + (snap.interfaces[0].packets - got.len() as u64)
    );
    let mut ts = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let sec = u32::from_le_bytes(pcap[at..at + 4].try_into().unwrap()) as u64;
        let frac = u32::from_le_bytes(pcap[at + 4..at + 8].try_into().unwrap()) as u64;
        let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        ts.push((sec, frac));
        at += 16 + incl;
    }
    assert_eq!(ts.len() as u64, exp.packets);
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "the export is in time order"
    );
}
