//! Emit on close across a crash: a TCP session is emitted as soon as its close completes,
//! the packets that straggle in after it (a retransmitted FIN, a duplicate ACK) are counted
//! as late and make no session of their own — also when the analyzer died between the
//! close and the stragglers and a restart replays (the late-packet memory travels in the
//! checkpoint).

use etherparse::PacketBuilder;
use kuroko_analyzer::PcapSource;
use kuroko_analyzer::driver::{self, AnalyzeError, RunOptions};
use kuroko_model::config::Config;
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use std::io::Write;
use std::path::Path;

const T0: i64 = 1_700_000_000_000_000_000;

fn seg(cport: u16, from_client: bool, seq: u32, ack: u32, flags: &str) -> Vec<u8> {
    let (sip, dip, sp, dp) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2], cport, 23)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 23, cport)
    };
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(sip, dip, 64)
        .tcp(sp, dp, seq, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(ack);
    }
    if flags.contains('F') {
        b = b.fin();
    }
    let payload: &[u8] = if flags.contains('P') { b"login: " } else { b"" };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// Flow B (port 40001) stays open from the start, so a restart replays from its first
/// packet; flow A (port 40000) opens, exchanges a line and closes; then its stragglers.
fn frames(b_open: bool) -> Vec<(i64, Vec<u8>)> {
    let ms = 1_000_000;
    let mut f = Vec::new();
    if b_open {
        f.push((T0, seg(40001, true, 1, 0, "S")));
        f.push((T0 + ms, seg(40001, false, 7, 2, "SA")));
    }
    let a = [
        seg(40000, true, 100, 0, "S"),
        seg(40000, false, 500, 101, "SA"),
        seg(40000, false, 501, 101, "AP"),
        seg(40000, true, 101, 508, "FA"),
        seg(40000, false, 508, 102, "FA"),
        seg(40000, true, 102, 509, "A"), // A's close is complete: emitted here
        seg(40000, false, 508, 102, "FA"), // late: retransmitted FIN
        seg(40000, true, 102, 509, "A"), // late: duplicate ACK
    ];
    for (i, x) in a.into_iter().enumerate() {
        f.push((T0 + (10 + i as i64) * ms, x));
    }
    f
}

fn write_pcap(path: &Path, frames: &[(i64, Vec<u8>)]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes()); // nanosecond pcap
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (ts, f) in frames {
        out.extend_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::File::create(path)
        .unwrap()
        .write_all(&out)
        .unwrap();
}

fn ports(data: &Path) -> Vec<u16> {
    let r = SessionLogReader::open(&data.join("sessions")).unwrap();
    let mut v: Vec<u16> = r
        .read_from(LogPos::default())
        .unwrap()
        .map(|x| x.unwrap().1.client.port)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn late_packets_after_a_close_make_no_session_also_across_a_crash() {
    for b_open in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let pcap = dir.path().join("late.pcap");
        let frames = frames(b_open);
        write_pcap(&pcap, &frames);
        let config = Config::default();
        // Die right after the packet that completed A's close was checkpointed, before its
        // stragglers are read.
        let closed_at = frames.len() as u64 - 2;
        let err = driver::run(
            dir.path(),
            &config,
            &mut PcapSource::open(&pcap).unwrap(),
            RunOptions {
                checkpoint_every_packets: Some(1),
                stop_without_checkpoint_after: Some(closed_at),
                ..RunOptions::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, AnalyzeError::StoppedForTest(_)), "{err}");
        assert_eq!(ports(dir.path()), [40000], "A emitted at its close");
        let s = driver::run(
            dir.path(),
            &config,
            &mut PcapSource::open(&pcap).unwrap(),
            RunOptions::default(),
        )
        .unwrap();
        let want: &[u16] = if b_open { &[40000, 40001] } else { &[40000] };
        assert_eq!(ports(dir.path()), want, "b_open {b_open}: {:?}", s.counters);
        assert_eq!(s.counters.late_packets_after_close, 2, "b_open {b_open}");
    }
}
