//! `synth::Mix::SmallSessions`, the bench's mix where per-session work dominates: the
//! analyzer must see what the generator meant — many short sessions between many distinct
//! addresses, each with the application fields the consumers (index, detections, asset
//! inventory, intel) work on: HTTP `Server`/`User-Agent`, TLS SNI, SSH and SMTP banners,
//! Telnet, DNS queries.

use kuroko_analyzer::PcapSource;
use kuroko_analyzer::driver::{self, RunOptions};
use kuroko_analyzer::synth::{self, Mix, Params};
use kuroko_model::config::Config;
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use std::collections::BTreeSet;

#[test]
fn small_sessions_are_many_short_sessions_between_many_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.pcap");
    let params = Params {
        target_bytes: 4 << 20,
        concurrency: 64,
        seed: 7,
        gap_ns: 500_000,
        mix: Mix::SmallSessions,
        ..Params::default()
    };
    let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let report = synth::generate(f, &params).unwrap();
    let data = dir.path().join("data");
    let mut src = PcapSource::open(&path).unwrap();
    let summary = driver::run(&data, &Config::default(), &mut src, RunOptions::default()).unwrap();
    assert_eq!(summary.packets, report.packets);
    assert_eq!(summary.counters.decode_errors, 0);
    let s: Vec<kuroko_model::SessionRecord> = SessionLogReader::open(&data.join("sessions"))
        .unwrap()
        .read_from(LogPos::default())
        .unwrap()
        .map(|x| x.unwrap().1)
        .collect();
    assert_eq!(
        s.len() as u64,
        report.tcp_connections + report.dns,
        "no flow split or merged"
    );
    // Short: a handful of packets a session on average.
    let per_session = report.packets as f64 / s.len() as f64;
    assert!(per_session < 14.0, "{per_session} packets a session");
    let count = |p: &str| s.iter().filter(|r| r.protocol == p).count() as u64;
    assert_eq!(count("http"), report.http);
    assert_eq!(count("tls"), report.tls);
    assert_eq!(count("dns"), report.dns);
    assert_eq!(
        count("ssh") + count("smtp") + count("telnet"),
        report.banners,
        "{:?}",
        s.iter()
            .map(|r| r.protocol.as_str())
            .collect::<BTreeSet<_>>()
    );
    for p in ["ssh", "smtp", "telnet"] {
        assert!(count(p) > 0, "no {p} session");
    }
    assert!(s.iter().filter(|r| r.protocol == "ssh").all(|r| {
        r.ssh
            .as_ref()
            .is_some_and(|x| x.server_version.is_some() && x.client_version.is_some())
    }));
    assert!(
        s.iter()
            .filter(|r| r.protocol == "smtp")
            .all(|r| r.mail.as_ref().is_some_and(|m| m.banner.is_some()))
    );
    assert!(s.iter().filter(|r| r.protocol == "http").all(|r| {
        r.http
            .as_ref()
            .is_some_and(|h| h.server.is_some() && h.user_agent.is_some())
    }));
    assert!(
        s.iter().filter(|r| r.protocol == "tls").all(|r| r
            .tls
            .as_ref()
            .and_then(|t| t.sni.as_ref())
            .is_some())
    );
    // Many distinct addresses, internal servers among them, some reached from outside.
    let clients: BTreeSet<_> = s.iter().map(|r| r.client.ip).collect();
    let servers: BTreeSet<_> = s.iter().map(|r| r.server.ip).collect();
    assert!(clients.len() > 1000, "{} clients", clients.len());
    assert!(servers.len() > 500, "{} servers", servers.len());
    let config = Config::default();
    let inside = |ip| config.site.is_internal(ip);
    assert!(
        s.iter()
            .any(|r| inside(r.server.ip) && !inside(r.client.ip))
    );
    assert!(s.iter().any(|r| inside(r.server.ip) && inside(r.client.ip)));
    assert!(s.iter().any(|r| !inside(r.server.ip)));
}
