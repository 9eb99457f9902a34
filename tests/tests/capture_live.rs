//! `kuroko capture` end to end: a veth pair between two namespaces of the test's own,
//! frames the test built byte by byte (several flows, 60 to 9018 bytes with MTU 9000,
//! 802.1Q and QinQ tags) sent from one side with an AF_PACKET socket, captured on the other
//! by the real binary, then read back from the segment store: every frame arrives byte for
//! byte (the VLAN tags the kernel stripped are back), in per-flow order, with zero drops,
//! and the capture process held no capability while capturing.
//!
//! The binary is `cargo build -p kuroko`'s `target/debug/kuroko` (or `$KUROKO_BIN`), found
//! by `kuroko_tests::kuroko::binary()`: `CARGO_BIN_EXE_*` exists only for tests of the
//! binary's own package.

mod capture_common;

use capture_common::{CaptureSite, flow_and_seq, frame, read_store};
use kuroko_capture::CaptureState;
use kuroko_ring::format::record_flags;
use std::collections::BTreeMap;
use std::time::Duration;

/// Frame sizes (without tags): minimum Ethernet to the 9000-byte MTU's largest frame.
const SIZES: [usize; 14] = [
    60, 64, 65, 128, 512, 1000, 1499, 1514, 1515, 2048, 4000, 8192, 9000, 9014,
];
const FLOWS: u8 = 5;

fn tags_for(flow: u8, i: usize) -> Vec<(u16, u16)> {
    match flow {
        1 => vec![(0x8100, 100)], // 802.1Q VLAN 100 on every frame
        2 if i.is_multiple_of(2) => vec![(0x88a8, 200), (0x8100, 5)], // QinQ: 802.1ad outer, 802.1Q inner
        3 if i.is_multiple_of(3) => vec![(0x8100, 0xe00a)],           // PCP 7, VLAN 10
        4 if i % 4 == 1 => vec![(0x8100, 0x0000)],                    // priority tag, VLAN 0
        _ => vec![],
    }
}

fn cap_eff(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
}

#[test]
fn capture_stores_every_frame_byte_for_byte_in_flow_order_with_zero_drops() -> anyhow::Result<()> {
    let site = CaptureSite::new("capl")?;
    // Interleave the flows so that per-flow order is a real property of the capture.
    let mut frames = Vec::new();
    for (i, &len) in SIZES.iter().enumerate() {
        for rep in 0..2u16 {
            for flow in 0..FLOWS {
                let tags = tags_for(flow, i);
                let seq = (i as u16) * 2 + rep;
                frames.push(frame(flow, seq, len + 4 * tags.len(), &tags));
            }
        }
    }
    let mut capture = site.start_capture(&[])?;

    // Every thread of the running capture has given up its capabilities.
    let pid = capture.pid();
    let task_dir = format!("/proc/{pid}/task");
    for t in std::fs::read_dir(&task_dir)? {
        let tid: u32 = t?.file_name().to_string_lossy().parse()?;
        assert_eq!(
            cap_eff(tid),
            Some(0),
            "thread {tid} of kuroko capture still has capabilities"
        );
    }

    site.tx
        .send_frames("vtx", &frames, Duration::from_micros(300))?;
    site.wait_accounted(frames.len() as u64)?;
    let status = capture.stop_with(libc::SIGINT);
    let log = capture.log_text();
    let status =
        status.ok_or_else(|| anyhow::anyhow!("kuroko capture did not exit on SIGINT:\n{log}"))?;
    assert!(status.success(), "kuroko capture failed ({status}):\n{log}");
    assert!(
        log.contains("0 dropped"),
        "summary should report zero drops:\n{log}"
    );

    let stats = site.stats()?;
    assert_eq!(stats.state, CaptureState::Stopped);
    assert_eq!(
        stats.total_drops().total(),
        0,
        "drops: {:?}",
        stats.total_drops()
    );
    assert_eq!(stats.interfaces[0].name, "vrx");
    assert_eq!(stats.interfaces[0].truncated_packets, 0);
    assert_eq!(
        stats.total_packets(),
        frames.len() as u64,
        "packets counted"
    );

    let stored = read_store(&site.data())?;
    assert_eq!(stored.len(), frames.len(), "frames in the store");
    // Per flow: the stored frames, in store order, are exactly the sent ones in send order.
    let mut sent_by_flow: BTreeMap<u8, Vec<&Vec<u8>>> = BTreeMap::new();
    for f in &frames {
        sent_by_flow
            .entry(flow_and_seq(f).unwrap().0)
            .or_default()
            .push(f);
    }
    let mut stored_by_flow: BTreeMap<u8, Vec<&capture_common::StoredFrame>> = BTreeMap::new();
    for s in &stored {
        let (flow, _) = flow_and_seq(&s.data).expect("a stored frame of ours parses");
        stored_by_flow.entry(flow).or_default().push(s);
    }
    assert_eq!(sent_by_flow.len(), FLOWS as usize);
    for (flow, sent) in &sent_by_flow {
        let got = &stored_by_flow[flow];
        assert_eq!(got.len(), sent.len(), "flow {flow}: frame count");
        for (k, (g, s)) in got.iter().zip(sent).enumerate() {
            assert_eq!(g.data.len(), s.len(), "flow {flow} frame {k}: length");
            assert!(
                &g.data == *s,
                "flow {flow} frame {k} ({} bytes) differs from what was sent",
                s.len()
            );
            assert_eq!(
                g.wire_len as usize,
                s.len(),
                "flow {flow} frame {k}: wire length"
            );
            assert_eq!(g.iface, 0);
            let tagged = s[12..14] == [0x81, 0x00] || s[12..14] == [0x88, 0xa8];
            assert_eq!(
                g.flags & record_flags::VLAN_RESTORED != 0,
                tagged,
                "flow {flow} frame {k}: VLAN_RESTORED flag"
            );
        }
    }
    // Timestamps: nanoseconds since the epoch, around now, never going back.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    assert!(
        stored
            .iter()
            .all(|s| s.ts_ns <= now_ns && s.ts_ns + 600_000_000_000 > now_ns)
    );
    assert!(stored.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    Ok(())
}

#[test]
fn capture_rejects_an_invalid_filter_with_a_clear_error() -> anyhow::Result<()> {
    let site = CaptureSite::new("capf")?;
    let bin = kuroko_tests::kuroko::binary()?;
    let out = site.rx.name().to_string();
    let data = site.data();
    let o = kuroko_tests::proc::run_in(
        &out,
        &[
            bin.to_str().unwrap(),
            "capture",
            "--iface",
            "vrx",
            "--data",
            data.to_str().unwrap(),
            "--filter",
            "udp port",
            "--duration",
            "1",
        ],
        60,
    )?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("invalid capture filter `udp port`"),
        "stderr: {err}"
    );
    Ok(())
}

#[test]
fn capture_on_two_interfaces_tags_each_frame_with_its_interface() -> anyhow::Result<()> {
    let site = CaptureSite::new("cap2")?;
    let _second = kuroko_tests::netns::veth(Some(&site.tx), "vtx2", Some(&site.rx), "vrx2", 9000)?;
    let mut capture = site.start_capture(&["--iface", "vrx2"])?;
    let a: Vec<Vec<u8>> = (0..30)
        .map(|i| frame(11, i, 200 + usize::from(i) * 10, &[]))
        .collect();
    let b: Vec<Vec<u8>> = (0..30)
        .map(|i| frame(12, i, 1400, &[(0x8100, 42)]))
        .collect();
    site.tx.send_frames("vtx", &a, Duration::from_micros(300))?;
    site.tx
        .send_frames("vtx2", &b, Duration::from_micros(300))?;
    site.wait_accounted(60)?;
    let status = capture.stop_with(libc::SIGINT);
    let log = capture.log_text();
    assert!(
        status.is_some_and(|s| s.success()),
        "kuroko capture failed:\n{log}"
    );

    let stats = site.stats()?;
    let names: Vec<&str> = stats.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["vrx", "vrx2"]);
    assert_eq!(stats.interfaces[0].packets, 30);
    assert_eq!(stats.interfaces[1].packets, 30);
    assert_eq!(stats.total_drops().total(), 0);

    let stored = read_store(&site.data())?;
    assert_eq!(stored.len(), 60);
    for s in &stored {
        let (flow, seq) = flow_and_seq(&s.data).unwrap();
        let (want_iface, sent) = if flow == 11 { (0, &a) } else { (1, &b) };
        assert_eq!(s.iface, want_iface, "flow {flow} seq {seq}: interface id");
        assert!(s.data == sent[seq as usize], "flow {flow} seq {seq}: bytes");
    }
    // The store names the interfaces behind the ids.
    let reader = kuroko_ring::StoreReader::open(&site.data())?;
    let seg = reader.segments().first().expect("one segment");
    let seg_names: Vec<&str> = seg.ifaces.iter().map(|i| i.name()).collect();
    assert_eq!(seg_names, ["vrx", "vrx2"]);
    Ok(())
}

/// `[capture] threads_per_interface = 2`: two capture threads (a PACKET_FANOUT pair)
/// writing two lanes of the one store. Every frame is stored exactly once, each flow in
/// the order sent, with zero drops and the counters of both threads summed; then a
/// capture killed with SIGKILL is recovered by the next one (two lanes again), and the
/// frames of both rounds are all there, once.
#[test]
fn capture_with_two_threads_stores_every_frame_once_and_survives_kill_9() -> anyhow::Result<()> {
    let site = CaptureSite::new("cap2t")?;
    let cfg = site.dir.0.join("kuroko.toml");
    std::fs::write(&cfg, "[capture]\nthreads_per_interface = 2\n")?;
    let cfg = cfg.to_string_lossy().into_owned();
    let round = |r: u16| -> Vec<Vec<u8>> {
        (0..480u16)
            .map(|i| {
                frame(
                    (i % 24) as u8,
                    r * 1000 + i / 24,
                    100 + usize::from(i % 11) * 120,
                    &[],
                )
            })
            .collect()
    };
    let first = round(0);
    let mut capture = site.start_capture(&["--config", &cfg])?;
    site.tx
        .send_frames("vtx", &first, Duration::from_micros(100))?;
    site.wait_accounted(first.len() as u64)?;
    let status = capture.stop_with(libc::SIGINT);
    let log = capture.log_text();
    assert!(status.is_some_and(|s| s.success()), "{log}");
    let stats = site.stats()?;
    assert_eq!(stats.threads, 2, "two capture threads ran");
    assert_eq!(stats.total_drops().total(), 0, "{:?}", stats.total_drops());
    assert_eq!(stats.total_packets(), first.len() as u64);

    // Round two, ended by SIGKILL once everything was flushed (1 s idle flush).
    let second = round(1);
    let mut capture = site.start_capture(&["--config", &cfg])?;
    site.tx
        .send_frames("vtx", &second, Duration::from_micros(100))?;
    // Each capture starts its own stats page.
    site.wait_accounted(second.len() as u64)?;
    std::thread::sleep(Duration::from_millis(2500));
    capture.stop_with(libc::SIGKILL);
    // The next capture recovers the store (two lanes again) and stops cleanly. (The
    // killed capture's page still says running: give the new one time to replace it and
    // install its signal handlers.)
    let mut capture = site.start_capture(&["--config", &cfg])?;
    std::thread::sleep(Duration::from_millis(2000));
    let status = capture.stop_with(libc::SIGINT);
    let log = capture.log_text();
    assert!(status.is_some_and(|s| s.success()), "{log}");

    let stored = read_store(&site.data())?;
    let mut by_flow: BTreeMap<u8, Vec<u16>> = BTreeMap::new();
    for s in &stored {
        let (flow, seq) = flow_and_seq(&s.data).expect("a stored frame of ours parses");
        by_flow.entry(flow).or_default().push(seq);
    }
    assert_eq!(stored.len(), first.len() + second.len(), "every frame once");
    for (flow, seqs) in &by_flow {
        let want: Vec<u16> = (0..20).chain(1000..1020).collect();
        assert_eq!(seqs, &want, "flow {flow}: every frame once, in order");
    }
    for s in &stored {
        let (flow, seq) = flow_and_seq(&s.data).unwrap();
        let (r, k) = (seq / 1000, seq % 1000);
        let sent = &round(r)[usize::from(k) * 24 + usize::from(flow)];
        assert_eq!(&s.data, sent, "flow {flow} seq {seq} intact");
    }
    Ok(())
}
