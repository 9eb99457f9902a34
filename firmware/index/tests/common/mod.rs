//! Shared helpers: a data directory with a session log written through the real writer.

#![allow(dead_code)]

use kuroko_model::SessionRecord;
use kuroko_model::Timestamp;
use kuroko_model::session::{Endpoint, Http, HttpTransaction, Mail, Tls};
use kuroko_model::sessionlog::SessionLogWriter;
use std::path::Path;

pub const T0: i64 = 1_795_219_200_000_000_000; // 2026-11-21T00:00:00Z

pub fn write_log(data: &Path, recs: &[SessionRecord]) {
    let mut w = SessionLogWriter::open(&data.join("sessions")).unwrap();
    for r in recs {
        w.append(r).unwrap();
    }
    w.sync().unwrap();
}

fn ep(ip: &str, port: u16) -> Endpoint {
    Endpoint::new(ip.parse().unwrap(), port)
}

/// An HTTP session.
pub fn http(id: &str, t: i64, method: &str, host: &str, url: &str, status: u16) -> SessionRecord {
    let mut r = SessionRecord::new(
        id.into(),
        Timestamp(t),
        "tcp",
        ep("10.1.2.3", 50000),
        ep("203.0.113.7", 8080),
    );
    r.protocol = "http".into();
    r.http = Some(Http {
        method: Some(method.into()),
        host: Some(host.into()),
        url: Some(url.into()),
        status: Some(status),
        query: url.split_once('?').map(|x| x.1.to_string()),
        transactions: vec![HttpTransaction {
            method: method.into(),
            host: Some(host.into()),
            uri: if method == "CONNECT" {
                url.into()
            } else {
                url.trim_start_matches(host).into()
            },
            status: Some(status),
            ..Default::default()
        }],
        ..Default::default()
    });
    r
}

pub fn tls(id: &str, t: i64, server: &str, port: u16, sni: &str) -> SessionRecord {
    let mut r = SessionRecord::new(
        id.into(),
        Timestamp(t),
        "tcp",
        ep("10.1.2.4", 50001),
        ep(server, port),
    );
    r.protocol = "tls".into();
    r.tls = Some(Tls {
        sni: Some(sni.into()),
        ..Default::default()
    });
    r
}

pub fn mail(id: &str, t: i64, subject: &str, from: &str) -> SessionRecord {
    let mut r = SessionRecord::new(
        id.into(),
        Timestamp(t),
        "tcp",
        ep("10.1.2.5", 50002),
        ep("192.168.1.25", 25),
    );
    r.protocol = "smtp".into();
    r.mail = Some(Mail {
        from: Some(from.into()),
        to: vec!["alice@example.co.jp".into(), "bob@example.co.jp".into()],
        subject: Some(subject.into()),
        ..Default::default()
    });
    r
}

/// The hand-made sessions of the semantic tests.
pub fn handmade() -> Vec<SessionRecord> {
    let s = 1_000_000_000;
    let mut v = vec![
        http(
            "h1",
            T0 + s,
            "CONNECT",
            "mtalk.google.com",
            "mtalk.google.com:5228",
            403,
        ),
        http(
            "h2",
            T0 + 2 * s,
            "CONNECT",
            "www.example.com",
            "www.example.com:443",
            200,
        ),
        http(
            "h3",
            T0 + 3 * s,
            "CONNECT",
            "intra.example.com",
            "intra.example.com:80",
            200,
        ),
        http(
            "h4",
            T0 + 4 * s,
            "GET",
            "www.example.com",
            "www.example.com/index.html",
            200,
        ),
        http(
            "h5",
            T0 + 5 * s,
            "CONNECT",
            "odd.example.net",
            "odd.example.net:8443",
            200,
        ),
        http(
            "h6",
            T0 + 6 * s,
            "POST",
            "api.example.com",
            "api.example.com/login?next=:443",
            401,
        ),
        tls("t1", T0 + 7 * s, "93.184.216.34", 443, "www.example.com"),
        tls("t2", T0 + 8 * s, "2001:db8::5", 8443, "v6.example.org"),
        mail(
            "m1",
            T0 + 9 * s,
            "Quarterly Report 2026",
            "ceo@example.co.jp",
        ),
        mail(
            "m2",
            T0 + 10 * s,
            "【重要】パスワード変更のお願い",
            "support@evil.example",
        ),
        http(
            "h7",
            T0 + 11 * s,
            "CONNECT",
            "proxy.example.net",
            "proxy.example.net:8080",
            407,
        ),
    ];
    v[6].bytes_up = 150_000_000;
    v[6].bytes_down = 2_000;
    v[7].vlan = Some(20);
    v
}
