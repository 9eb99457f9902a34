//! Realistic session records for the integration tests.
#![allow(dead_code)]

use chrono::TimeZone;
use kuroko_model::session::*;
use kuroko_model::{SessionRecord, Timestamp};

pub fn at(tz: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
    let tz: chrono_tz::Tz = tz.parse().unwrap();
    Timestamp::from_datetime(&tz.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap())
}

/// Wednesday 2026-11-18 10:00 in Tokyo.
pub fn office_hours() -> Timestamp {
    at("Asia/Tokyo", 2026, 11, 18, 10, 0)
}

pub fn session(
    id: &str,
    proto: &str,
    client: &str,
    cport: u16,
    server: &str,
    sport: u16,
    t: Timestamp,
) -> SessionRecord {
    let transport = if proto == "dns" { "udp" } else { "tcp" };
    let mut s = SessionRecord::new(
        id.into(),
        t,
        transport,
        Endpoint::new(client.parse().unwrap(), cport),
        Endpoint::new(server.parse().unwrap(), sport),
    );
    s.protocol = proto.into();
    s.end = Timestamp(t.nanos() + 1_500_000_000);
    s.bytes_up = 1_200;
    s.bytes_down = 35_000;
    s.packets = 40;
    s.span = PacketSpan {
        first_segment: 3,
        last_segment: 3,
    };
    s
}

pub fn telnet(id: &str, client: &str, server: &str, t: Timestamp) -> SessionRecord {
    let mut s = session(id, "telnet", client, 40_000, server, 23, t);
    s.telnet = Some(Telnet {
        user: Some("root".into()),
    });
    s
}

pub fn web(
    id: &str,
    client: &str,
    server: &str,
    host: &str,
    uri: &str,
    t: Timestamp,
) -> SessionRecord {
    let mut s = session(id, "http", client, 50_000, server, 80, t);
    s.http = Some(Http {
        method: Some("GET".into()),
        host: Some(host.into()),
        url: Some(format!("{host}{uri}")),
        status: Some(200),
        transactions: vec![HttpTransaction {
            method: "GET".into(),
            host: Some(host.into()),
            uri: uri.into(),
            status: Some(200),
            user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36".into()),
            content_type: Some("text/html; charset=utf-8".into()),
            headers: vec![("accept-language".into(), "ja,en-US;q=0.9".into()), ("referer".into(), format!("http://{host}/"))],
            ..Default::default()
        }],
        ..Default::default()
    });
    s
}

pub fn tls(id: &str, client: &str, server: &str, sni: &str, t: Timestamp) -> SessionRecord {
    let mut s = session(id, "tls", client, 51_000, server, 443, t);
    s.tls = Some(Tls {
        sni: Some(sni.into()),
        version: Some("TLSv1.3".into()),
        alpn: vec!["h2".into()],
        cert_subject: Some(format!("CN={sni}")),
        cert_issuer: Some("C=US, O=Let's Encrypt, CN=R11".into()),
        ..Default::default()
    });
    s
}

pub fn dns(id: &str, client: &str, resolver: &str, query: &str, t: Timestamp) -> SessionRecord {
    let mut s = session(id, "dns", client, 53_000, resolver, 53, t);
    s.dns = Some(Dns {
        query: Some(query.into()),
        qtype: Some("A".into()),
        rcode: Some("NOERROR".into()),
        answers: vec!["93.184.216.34".into()],
        more_queries: vec![],
    });
    s
}

pub fn internal_mail(id: &str, t: Timestamp) -> SessionRecord {
    let mut s = session(id, "smtp", "10.0.0.31", 40_100, "10.0.0.25", 25, t);
    s.mail = Some(Mail {
        from: Some("suzuki@corp.example".into()),
        from_display: Some("鈴木 一郎".into()),
        to: vec!["tanaka@corp.example".into()],
        subject: Some("定例会議の議事録".into()),
        mail_from: Some("suzuki@corp.example".into()),
        ..Default::default()
    });
    s
}
