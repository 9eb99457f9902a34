//! Capture under link and store faults (issue 22), on veth pairs in network namespaces of
//! the test's own: a link flapped while capturing and a capture started on a down link (the
//! capture thread's CPU measured: no spinning), an interface deleted and re-created (the
//! capture resumes on the new ifindex, the gap is recorded), a TCP bulk transfer over a
//! veth with TSO on (merged frames counted as coalesced), a store that holds the capture
//! thread (ring overflow counted as store backpressure, not kernel ring loss), and a stop
//! while the store refuses everything (every frame the kernel delivered is accounted for).
//!
//! The tests run one at a time (they measure the CPU of "the" capture thread). Needs root
//! (CI runs as root).

use std::process::Command;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kuroko_capture::{Appended, Capture, CaptureOptions, PacketMeta, RecordSink, StatsReader};

mod common;
use common::{Ns, SRC_MAC, frame, ip, send_frames};

/// One namespace test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a [`TestSink`] saw: wire length and whether the frame is one of ours, per record.
type Seen = Vec<(u32, bool)>;

/// Keeps (wire length, ours) per stored frame. Optionally refuses everything (a stalled
/// store) or holds the capture thread once, inside an append (a seal waiting on fdatasync).
struct TestSink {
    seen: Seen,
    refuse_all: bool,
    /// Sleep this long in the append with this index.
    hold: Option<(usize, Duration)>,
    appends: usize,
    done: Option<mpsc::Sender<Seen>>,
}

impl TestSink {
    fn new(tx: mpsc::Sender<Seen>) -> TestSink {
        TestSink {
            seen: Vec::with_capacity(200_000),
            refuse_all: false,
            hold: None,
            appends: 0,
            done: Some(tx),
        }
    }
}

impl RecordSink for TestSink {
    type Error = std::io::Error;
    fn append(&mut self, meta: &PacketMeta, parts: &[&[u8]]) -> Result<Appended, Self::Error> {
        if self.refuse_all {
            return Ok(Appended::Backpressure);
        }
        if let Some((at, d)) = self.hold
            && at == self.appends
        {
            std::thread::sleep(d);
        }
        self.appends += 1;
        let head: &[u8] = parts.first().copied().unwrap_or(&[]);
        let ours = head.len() >= 12 && head[6..12] == SRC_MAC;
        if self.seen.len() < self.seen.capacity() {
            self.seen.push((meta.wire_len, ours));
        }
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
            let _ = tx.send(std::mem::take(&mut self.seen));
        }
        Ok(())
    }
}

fn options() -> CaptureOptions {
    CaptureOptions {
        interfaces: vec!["vb".into()],
        ring_size: 4 << 20,
        block_size: 1 << 20,
        retire_ms: 10,
        lock_memory: false,
        drop_privileges: false, // the test thread still has to delete its namespace
        hardware_timestamps: false,
        ..CaptureOptions::default()
    }
}

/// Starts a capture on `vb` inside `ns` (from a thread that entered it).
fn start(ns: &Ns, opts: CaptureOptions, data: &std::path::Path, sink: TestSink) -> Capture {
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let mut sink = Some(sink);
            Capture::start(&opts, data, |_| {
                sink.take()
                    .ok_or_else(|| std::io::Error::other("one sink only"))
            })
            .expect("capture starts")
        })
        .join()
        .unwrap()
    })
}

/// CPU ticks (utime + stime, in clock ticks) of this process's thread named `name`.
fn thread_cpu_ticks(name: &str) -> u64 {
    let mut total = 0;
    let mut found = false;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        found = true;
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised comm: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        total += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    }
    assert!(found, "no thread named {name}");
    total
}

/// Clock ticks per second.
fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1) as u64
}

/// Runs the supervisor's tick every 250 ms for `d` (as `kuroko capture` does).
fn supervise(capture: &Capture, d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        capture.tick();
        std::thread::sleep(Duration::from_millis(250));
    }
    capture.tick();
}

/// The capture thread's share of one core over `d` of supervision.
fn cpu_share_over(capture: &Capture, d: Duration) -> f64 {
    let c0 = thread_cpu_ticks("kuroko-cap0");
    let t0 = Instant::now();
    supervise(capture, d);
    let c1 = thread_cpu_ticks("kuroko-cap0");
    (c1 - c0) as f64 / clk_tck() as f64 / t0.elapsed().as_secs_f64()
}

/// Polls the supervisor until `ours` of our frames were stored (at most 10 s).
fn wait_stored(capture: &Capture, data: &std::path::Path, n: u64) {
    let r = StatsReader::open(data).unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        capture.tick();
        let s = r.snapshot();
        if s.total_packets() + s.total_drops().total() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A spinning capture thread takes a whole core; an idle one wakes 20 times a second.
const MAX_IDLE_CPU_SHARE: f64 = 0.05;

fn burst(flow: u8, n: u16) -> Vec<Vec<u8>> {
    (0..n).map(|i| frame(flow, i, 300, &[])).collect()
}

#[test]
fn a_link_flap_while_capturing_neither_spins_nor_stops_the_capture() {
    let _g = serial();
    let ns = Ns::new("flap");
    let data = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let capture = start(&ns, options(), data.path(), TestSink::new(tx));
    let before = burst(1, 50);
    send_frames(&ns, "va", &before, Duration::from_micros(200));
    wait_stored(&capture, data.path(), 50);

    ip(&["-n", &ns.0, "link", "set", "vb", "down"]);
    let share = cpu_share_over(&capture, Duration::from_secs(2));
    let r = StatsReader::open(data.path()).unwrap();
    let down = r.snapshot();
    ip(&["-n", &ns.0, "link", "set", "vb", "up"]);
    supervise(&capture, Duration::from_millis(500));
    let after = burst(2, 50);
    send_frames(&ns, "va", &after, Duration::from_micros(200));
    wait_stored(&capture, data.path(), 100);
    let snap = capture.stop().unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    assert!(
        share < MAX_IDLE_CPU_SHARE,
        "capture thread used {:.0} % of a core while the link was down",
        share * 100.0
    );
    let ours = seen.iter().filter(|(_, o)| *o).count();
    assert_eq!(ours, 100, "frames before and after the flap stored");
    let i = &down.interfaces[0];
    assert!(!i.link_up, "status said link up while it was down");
    assert!(
        i.link.down_since_ns.is_some(),
        "down interval open: {:?}",
        i.link
    );
    let l = &snap.interfaces[0].link;
    assert_eq!(l.down_events, 1, "{l:?}");
    assert!(
        l.down_ns >= 1_500_000_000,
        "down for ~2 s, recorded {} ns",
        l.down_ns
    );
    assert!(l.socket_errors >= 1, "the ENETDOWN was seen and cleared");
    assert!(snap.interfaces[0].link_up);
}

#[test]
fn a_capture_started_on_a_down_link_waits_quietly_and_records_the_gap() {
    let _g = serial();
    let ns = Ns::new("down");
    ip(&["-n", &ns.0, "link", "set", "vb", "down"]);
    let data = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let capture = start(&ns, options(), data.path(), TestSink::new(tx));
    let share = cpu_share_over(&capture, Duration::from_secs(2));
    let down = StatsReader::open(data.path()).unwrap().snapshot();
    ip(&["-n", &ns.0, "link", "set", "vb", "up"]);
    supervise(&capture, Duration::from_millis(500));
    let frames = burst(3, 40);
    send_frames(&ns, "va", &frames, Duration::from_micros(200));
    wait_stored(&capture, data.path(), 40);
    let snap = capture.stop().unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    assert!(
        share < MAX_IDLE_CPU_SHARE,
        "capture thread used {:.0} % of a core on a down link",
        share * 100.0
    );
    assert!(!down.interfaces[0].link_up);
    assert!(down.interfaces[0].link.down_since_ns.is_some());
    assert_eq!(seen.iter().filter(|(_, o)| *o).count(), 40);
    let l = &snap.interfaces[0].link;
    assert_eq!(l.down_events, 1);
    assert!(l.down_ns >= 1_500_000_000, "{l:?}");
}

#[test]
fn an_interface_deleted_and_recreated_is_captured_again_and_the_gap_recorded() {
    let _g = serial();
    let ns = Ns::new("recr");
    let data = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let capture = start(&ns, options(), data.path(), TestSink::new(tx));
    let first = burst(4, 30);
    send_frames(&ns, "va", &first, Duration::from_micros(200));
    wait_stored(&capture, data.path(), 30);
    let old_ifindex = StatsReader::open(data.path())
        .unwrap()
        .snapshot()
        .interfaces[0]
        .ifindex;

    // A USB NIC unplugged: the pair disappears (deleting one end deletes both).
    ip(&["-n", &ns.0, "link", "del", "va"]);
    let share = cpu_share_over(&capture, Duration::from_secs(1));
    let gone = StatsReader::open(data.path()).unwrap().snapshot();
    // ... and plugged in again: same names, new ifindex.
    ip(&[
        "-n", &ns.0, "link", "add", "va", "mtu", "9000", "type", "veth", "peer", "name", "vb",
        "mtu", "9000",
    ]);
    ip(&["-n", &ns.0, "link", "set", "va", "up"]);
    ip(&["-n", &ns.0, "link", "set", "vb", "up"]);
    supervise(&capture, Duration::from_millis(750));
    let back = StatsReader::open(data.path()).unwrap().snapshot();
    let second = burst(5, 30);
    send_frames(&ns, "va", &second, Duration::from_micros(200));
    wait_stored(&capture, data.path(), 60);
    let snap = capture.stop().unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    assert!(
        share < MAX_IDLE_CPU_SHARE,
        "{:.0} % of a core while gone",
        share * 100.0
    );
    let g = &gone.interfaces[0];
    assert!(
        !g.link_up,
        "status said link up while the interface was gone"
    );
    assert!(g.link.gone_since_ns.is_some(), "{:?}", g.link);
    let b = &back.interfaces[0];
    assert_ne!(
        b.ifindex, old_ifindex,
        "the stats page shows the new ifindex"
    );
    assert!(b.link_up);
    assert_eq!(
        seen.iter().filter(|(_, o)| *o).count(),
        60,
        "recording resumed on the re-created interface"
    );
    let l = &snap.interfaces[0].link;
    assert_eq!((l.gone_events, l.rebinds), (1, 1), "{l:?}");
    assert!(
        l.gone_ns >= 800_000_000,
        "gap of ~1 s recorded as {} ns",
        l.gone_ns
    );
    assert_eq!(l.gone_since_ns, None);
}

#[test]
fn frames_merged_by_offloads_are_counted_as_coalesced() {
    let _g = serial();
    // vb (capture, 10.77.0.2) in ns; va (sender, TSO on, 10.77.0.1) in a second namespace,
    // so the transfer crosses the veth instead of loopback.
    let ns = Ns::new("gro");
    let peer = Ns::new("grop");
    ip(&["-n", &peer.0, "link", "del", "va"]);
    ip(&["-n", &ns.0, "link", "set", "va", "netns", &peer.0]);
    ip(&["-n", &ns.0, "addr", "add", "10.77.0.2/24", "dev", "vb"]);
    ip(&["-n", &peer.0, "addr", "add", "10.77.0.1/24", "dev", "va"]);
    ip(&["-n", &peer.0, "link", "set", "va", "up"]);
    ip(&["-n", &peer.0, "link", "set", "lo", "up"]);
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &peer.0, "ethtool", "-K", "va", "tso", "on", "gso", "on",
        ])
        .output();
    let data = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let capture = start(&ns, options(), data.path(), TestSink::new(tx));

    const BYTES: usize = 5 << 20;
    std::thread::scope(|s| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let ns = &ns;
        let server = s.spawn(move || {
            ns.enter();
            let l = std::net::TcpListener::bind("10.77.0.2:5001").unwrap();
            ready_tx.send(()).unwrap();
            let (mut c, _) = l.accept().unwrap();
            let mut sink = std::io::sink();
            std::io::copy(&mut c, &mut sink).unwrap()
        });
        ready_rx.recv().unwrap();
        s.spawn(|| {
            peer.enter();
            let mut c = std::net::TcpStream::connect("10.77.0.2:5001").unwrap();
            let buf = vec![0x5au8; 64 << 10];
            let mut left = BYTES;
            while left > 0 {
                let n = left.min(buf.len());
                std::io::Write::write_all(&mut c, &buf[..n]).unwrap();
                left -= n;
            }
        })
        .join()
        .unwrap();
        assert_eq!(server.join().unwrap(), BYTES as u64);
    });
    supervise(&capture, Duration::from_millis(300));
    let snap = capture.stop().unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();

    let i = &snap.interfaces[0];
    let limit = i.link.frame_limit;
    assert_eq!(limit, 9000 + 22, "MTU + Ethernet header + two VLAN tags");
    let longer = seen
        .iter()
        .filter(|(len, _)| u64::from(*len) > limit)
        .count() as u64;
    // Either the stored frames are the wire's, or every merged one is counted (and the
    // counter is what raises the alarm in `status`).
    assert_eq!(
        i.link.coalesced_frames, longer,
        "stored frames longer than {limit} B: {longer}, counted as coalesced: {}",
        i.link.coalesced_frames
    );
    eprintln!(
        "stored {} frames, {} coalesced, offloads still on: {:#x}",
        seen.len(),
        longer,
        i.link.offloads_on
    );
}

#[test]
fn ring_overflow_while_the_store_holds_the_thread_is_store_backpressure() {
    let _g = serial();
    let ns = Ns::new("hold");
    let data = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut sink = TestSink::new(tx);
    // A seal waiting on a slow fdatasync: the 200th append takes 600 ms.
    sink.hold = Some((200, Duration::from_millis(600)));
    let opts = CaptureOptions {
        ring_size: 256 << 10,
        block_size: 64 << 10,
        ..options()
    };
    let capture = start(&ns, opts, data.path(), sink);
    let frames: Vec<Vec<u8>> = (0..1500u16).map(|i| frame(7, i, 700, &[])).collect();
    send_frames(&ns, "va", &frames, Duration::from_micros(200));
    wait_stored(&capture, data.path(), frames.len() as u64);
    let snap = capture.stop().unwrap();
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let ours = seen.iter().filter(|(_, o)| *o).count() as u64;
    let d = snap.total_drops();
    assert!(
        d.backpressure > 0,
        "the ring overflowed during the hold: {d:?}"
    );
    assert_eq!(
        d.kernel_ring, 0,
        "the capture kept up; the store held it: {d:?}"
    );
    assert_eq!(
        ours + d.total(),
        frames.len() as u64,
        "every frame stored or counted"
    );
}

#[test]
fn a_stop_while_the_store_refuses_everything_accounts_for_every_frame() {
    let _g = serial();
    let ns = Ns::new("stst");
    let data = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut sink = TestSink::new(tx);
    sink.refuse_all = true;
    let opts = CaptureOptions {
        ring_size: 256 << 10,
        block_size: 64 << 10,
        ..options()
    };
    let capture = start(&ns, opts, data.path(), sink);
    // Traffic goes on through the stop (and the store never comes back).
    let frames: Vec<Vec<u8>> = (0..4000u16).map(|i| frame(8, i, 200, &[])).collect();
    let snap = std::thread::scope(|s| {
        s.spawn(|| send_frames(&ns, "va", &frames, Duration::from_micros(500)));
        std::thread::sleep(Duration::from_millis(300));
        capture.stop().unwrap()
    });
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(seen.is_empty());
    let i = &snap.interfaces[0];
    let d = &i.drops;
    assert_eq!(i.packets, 0);
    assert!(d.backpressure > 0);
    assert_eq!(d.kernel_ring, 0, "{d:?}");
    assert_eq!(
        d.backpressure + d.unread_at_stop,
        i.link.ring_frames,
        "every frame the kernel handed to the socket is counted: {d:?} {:?}",
        i.link
    );
}

/// Issue 22's "fanout > 1 rebind": with two capture threads (two sockets in a PACKET_FANOUT
/// group, which the kernel never lets re-bind), an interface deleted and re-created is
/// captured again by both threads, and every frame sent after the re-creation is stored.
/// Before, the sockets stayed on the dead interface and the gap never closed.
#[test]
fn a_recreated_interface_is_captured_again_by_every_fanout_thread() {
    let _g = serial();
    let ns = Ns::new("recr2");
    let data = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel();
    let opts = CaptureOptions {
        threads_per_interface: 2,
        max_writers: 2,
        ..options()
    };
    let capture = std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            Capture::start(&opts, data.path(), |_| {
                Ok::<_, std::io::Error>(TestSink::new(tx.clone()))
            })
            .expect("capture starts")
        })
        .join()
        .unwrap()
    });
    // 16 flows of 300 B before, 16 flows of 400 B after: the flow hash spreads them.
    let before: Vec<Vec<u8>> = (0..160u16)
        .map(|i| frame((i % 16) as u8, i, 300, &[]))
        .collect();
    send_frames(&ns, "va", &before, Duration::from_micros(200));
    wait_stored(&capture, data.path(), 160);

    ip(&["-n", &ns.0, "link", "del", "va"]);
    supervise(&capture, Duration::from_millis(750));
    ip(&[
        "-n", &ns.0, "link", "add", "va", "mtu", "9000", "type", "veth", "peer", "name", "vb",
        "mtu", "9000",
    ]);
    ip(&["-n", &ns.0, "link", "set", "va", "up"]);
    ip(&["-n", &ns.0, "link", "set", "vb", "up"]);
    supervise(&capture, Duration::from_millis(750));
    let after: Vec<Vec<u8>> = (0..160u16)
        .map(|i| frame((i % 16) as u8 + 16, i, 400, &[]))
        .collect();
    send_frames(&ns, "va", &after, Duration::from_micros(200));
    wait_stored(&capture, data.path(), 320);
    let snap = capture.stop().unwrap();
    let seen: Vec<Seen> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();

    let count = |s: &Seen, len: u32| s.iter().filter(|(l, o)| *o && *l == len).count();
    let total_after: usize = seen.iter().map(|s| count(s, 400)).sum();
    let total_before: usize = seen.iter().map(|s| count(s, 300)).sum();
    assert_eq!(total_before, 160, "before the re-creation");
    assert_eq!(total_after, 160, "every frame after the re-creation stored");
    for (t, s) in seen.iter().enumerate() {
        assert!(
            count(s, 400) > 0,
            "capture thread {t} captures the re-created interface"
        );
    }
    assert_eq!(snap.threads, 2);
    let l = &snap.interfaces[0].link;
    assert_eq!((l.gone_events, l.rebinds), (1, 1), "{l:?}");
    assert_eq!(l.gone_since_ns, None, "the gap is closed");
    assert_eq!(snap.total_drops().total(), 0, "{:?}", snap.total_drops());
}
