//! Detection cost per session against the cost of reading the session from the log.
//!
//! Reference: deserialising the JSON line of a session record (what every consumer of
//! the session log pays anyway). Measured: the same plus `Engine::observe`. The ratio says
//! how much detection adds to following the log; the run with the asset inventory off
//! gives the inventory's share. Run: `cargo bench -p kuroko-detect`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kuroko_detect::Engine;
use kuroko_model::config::Config;
use kuroko_model::session::*;
use kuroko_model::{SessionRecord, Timestamp};
use std::hint::black_box;

/// A mixed office morning: DNS, TLS, HTTP (some exploit probes from outside), SSH, mail.
fn sessions(n: usize) -> Vec<String> {
    let t0 = 1_794_963_600_000_000_000i64;
    (0..n)
        .map(|i| {
            let client = format!("10.0.{}.{}", (i / 200) % 250, i % 200 + 1);
            let mut s = SessionRecord::new(
                format!("s{i}"),
                Timestamp(t0 + i as i64 * 1_000_000),
                "tcp",
                Endpoint::new(client.parse().unwrap(), 40000 + (i % 20000) as u16),
                Endpoint::new("93.184.216.34".parse().unwrap(), 443),
            );
            s.bytes_up = 900;
            s.bytes_down = 30_000;
            match i % 6 {
                0 => {
                    s.protocol = "dns".into();
                    s.transport = "udp".into();
                    s.dns = Some(Dns {
                        query: Some(format!("host{}.example.co.jp", i % 97)),
                        qtype: Some("A".into()),
                        ..Default::default()
                    });
                }
                1 | 2 => {
                    s.protocol = "tls".into();
                    s.tls = Some(Tls {
                        sni: Some(
                            ["www.google.com", "www.youtube.com", "github.com"][i % 3].into(),
                        ),
                        ..Default::default()
                    });
                }
                3 => {
                    s.protocol = "http".into();
                    s.client.ip = "198.51.100.7".parse().unwrap();
                    s.server.ip = "10.0.0.10".parse().unwrap();
                    let uri = if i % 12 == 3 {
                        "/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession"
                    } else {
                        "/index.html?page=2&q=%E4%BC%9A%E8%AD%B0"
                    };
                    s.http = Some(Http {
                        transactions: vec![HttpTransaction {
                            method: "GET".into(),
                            uri: uri.into(),
                            status: Some(200),
                            user_agent: Some(
                                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
                                    .into(),
                            ),
                            headers: vec![("referer".into(), "https://www.example.co.jp/".into())],
                            ..Default::default()
                        }],
                        ..Default::default()
                    });
                }
                4 => {
                    s.protocol = "ssh".into();
                    s.server.ip = "10.0.0.14".parse().unwrap();
                    s.server.port = 22;
                    s.ssh = Some(Ssh {
                        client_version: Some("SSH-2.0-OpenSSH_9.6".into()),
                        server_version: Some("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10".into()),
                    });
                }
                _ => {
                    s.protocol = "smtp".into();
                    s.server.ip = "10.0.0.25".parse().unwrap();
                    s.server.port = 25;
                    s.mail = Some(Mail {
                        from: Some("notice@mailer.example".into()),
                        from_display: Some("Amazon.co.jp".into()),
                        to: vec!["user@corp.example".into()],
                        links: vec![Link {
                            text: "https://www.amazon.co.jp/login".into(),
                            href: "https://amaz0n-login.example/x".into(),
                        }],
                        ..Default::default()
                    });
                }
            }
            serde_json::to_string(&s).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = sessions(6_000);
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(10);
    g.bench_function("reference: parse session lines", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_str::<SessionRecord>(l).unwrap());
            }
        })
    });
    g.bench_function("parse + observe (all rules)", |b| {
        b.iter(|| {
            let mut e = Engine::new(&Config::default()).unwrap();
            for l in &lines {
                e.observe(&serde_json::from_str::<SessionRecord>(l).unwrap());
            }
            black_box(e.stats().hits)
        })
    });
    // The asset inventory's share: the same run with `[assets] enabled = false`.
    g.bench_function("parse + observe (all rules, inventory off)", |b| {
        let mut off = Config::default();
        off.assets.enabled = false;
        b.iter(|| {
            let mut e = Engine::new(&off).unwrap();
            for l in &lines {
                e.observe(&serde_json::from_str::<SessionRecord>(l).unwrap());
            }
            black_box(e.stats().hits)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
