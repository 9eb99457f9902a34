//! The driver on generated mixed traffic: every conversation becomes exactly one session,
//! and a run that dies between checkpoints, resumed, writes the same sessions as one
//! uninterrupted run — each exactly once.

use kuroko_analyzer::PcapSource;
use kuroko_analyzer::driver::{self, AnalyzeError, RunOptions};
use kuroko_analyzer::synth::{self, Params};
use kuroko_model::config::Config;
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use std::collections::BTreeMap;
use std::path::Path;

fn sessions(data: &Path) -> Vec<kuroko_model::SessionRecord> {
    let r = SessionLogReader::open(&data.join("sessions")).unwrap();
    r.read_from(LogPos::default())
        .unwrap()
        .map(|x| x.unwrap().1)
        .collect()
}

fn pcap(dir: &Path) -> (std::path::PathBuf, synth::Report) {
    let path = dir.join("mixed.pcap");
    let params = Params {
        target_bytes: 6 << 20,
        concurrency: 64,
        seed: 42,
        gap_ns: 500_000,
        ..Params::default()
    };
    let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let report = synth::generate(f, &params).unwrap();
    (path, report)
}

#[test]
fn every_generated_conversation_is_one_session_with_its_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let (path, report) = pcap(dir.path());
    let data = dir.path().join("data");
    let mut src = PcapSource::open(&path).unwrap();
    let summary = driver::run(&data, &Config::default(), &mut src, RunOptions::default()).unwrap();
    assert_eq!(summary.packets, report.packets);
    let s = sessions(&data);
    let count = |p: &str| s.iter().filter(|r| r.protocol == p).count() as u64;
    assert_eq!(
        s.len() as u64,
        report.tcp_connections + report.dns,
        "no flow split or merged"
    );
    assert_eq!(count("http"), report.http);
    assert_eq!(count("tls"), report.tls);
    assert_eq!(count("dns"), report.dns);
    assert!(
        s.iter().filter(|r| r.protocol == "tls").all(|r| r
            .tls
            .as_ref()
            .and_then(|t| t.sni.as_ref())
            .is_some())
    );
    assert!(
        s.iter().filter(|r| r.protocol == "http").all(|r| r
            .http
            .as_ref()
            .and_then(|h| h.host.as_ref())
            .is_some())
    );
    assert!(
        s.iter()
            .all(|r| r.missing_bytes == 0 && !r.has_flag("midstream")),
        "clean traffic has no gaps"
    );
    assert_eq!(summary.counters.decode_errors, 0);
}

#[test]
fn crash_between_checkpoints_then_resume_writes_each_session_once() {
    let dir = tempfile::tempdir().unwrap();
    let (path, report) = pcap(dir.path());
    let mut config = Config::default();
    config.analyzer.udp_idle_timeout = "5s".into();
    config.analyzer.tcp_idle_timeout = "10s".into();

    // Reference: one uninterrupted run.
    let full = dir.path().join("full");
    driver::run(
        &full,
        &config,
        &mut PcapSource::open(&path).unwrap(),
        RunOptions::default(),
    )
    .unwrap();
    let reference: BTreeMap<String, (String, u64, u64, u64)> = sessions(&full)
        .into_iter()
        .map(|r| {
            (
                r.id.clone(),
                (r.protocol.clone(), r.packets, r.bytes_up, r.bytes_down),
            )
        })
        .collect();

    // Crashes at three points (each after some sessions were written past the last
    // checkpoint), then a run to the end.
    let data = dir.path().join("crashy");
    for stop in [
        report.packets / 5,
        report.packets / 2,
        report.packets * 3 / 4,
    ] {
        let opts = RunOptions {
            checkpoint_every_packets: Some(997),
            stop_without_checkpoint_after: Some(stop),
            ..RunOptions::default()
        };
        let err =
            driver::run(&data, &config, &mut PcapSource::open(&path).unwrap(), opts).unwrap_err();
        assert!(matches!(err, AnalyzeError::StoppedForTest(_)), "{err}");
    }
    let last = driver::run(
        &data,
        &config,
        &mut PcapSource::open(&path).unwrap(),
        RunOptions::default(),
    )
    .unwrap();
    assert!(
        last.counters.sessions_suppressed_on_replay + last.counters.packets_skipped_on_replay > 0,
        "the replay path ran: {:?}",
        last.counters
    );
    let got = sessions(&data);
    let mut seen = BTreeMap::new();
    for r in &got {
        assert!(
            seen.insert(
                r.id.clone(),
                (r.protocol.clone(), r.packets, r.bytes_up, r.bytes_down)
            )
            .is_none(),
            "{} twice",
            r.id
        );
    }
    assert_eq!(seen, reference);
}
