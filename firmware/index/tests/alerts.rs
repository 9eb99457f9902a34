//! Alert conditions end to end: sessions in the log → ingest → alert log, syslog to a real
//! UDP listener, mail to a real SMTP server (Debian's aiosmtpd) on loopback.

mod common;

use common::*;
use kuroko_index::alerts::{self, Alert};
use kuroko_index::ingest_pending;
use kuroko_model::config::{AlertCondition, Config};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";

/// An aiosmtpd server writing to a Maildir; killed (by PID) when dropped.
struct SmtpServer {
    child: Child,
    port: u16,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_smtp(maildir: &Path, port: u16) -> SmtpServer {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: install Debian's python3 and python3-aiosmtpd"
    );
    let child = Command::new(PYTHON)
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd (apt-get install python3-aiosmtpd)");
    let server = SmtpServer { child, port };
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "aiosmtpd did not start listening on {port} (is python3-aiosmtpd installed?)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn maildir_messages(maildir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(maildir.join(sub)) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    out
}

fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bits: Vec<u8> = s.bytes().filter_map(val).collect();
    let mut out = Vec::new();
    for chunk in bits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &v)| acc | (u32::from(v) << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Decodes RFC 2047 `=?UTF-8?B?…?=` words of a header value.
fn decode_header(v: &str) -> String {
    v.split_whitespace()
        .map(|w| {
            match w
                .strip_prefix("=?UTF-8?B?")
                .and_then(|x| x.strip_suffix("?="))
            {
                Some(b) => String::from_utf8(b64decode(b)).unwrap(),
                None => format!(" {w}"),
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Subject and body of a raw message (our mails: base64 body).
fn subject_and_body(raw: &str) -> (String, String) {
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let unfolded = head.replace("\n ", " ");
    let subject = unfolded
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .map(decode_header)
        .unwrap_or_default();
    (subject, String::from_utf8(b64decode(body)).unwrap())
}

#[test]
fn default_condition_alerts_to_log_syslog_and_mail() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let smtp = start_smtp(&maildir, free_port());
    let syslog = UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    let mut cfg = Config::default();
    cfg.alerts.syslog = syslog.local_addr().unwrap().to_string();
    cfg.alerts.smtp_relay = format!("127.0.0.1:{}", smtp.port);
    cfg.alerts.mail_from = "kuroko@example.co.jp".into();
    cfg.alerts.mail_to = vec!["soc@example.co.jp".into()];
    cfg.alerts.conditions.push(AlertCondition {
        name: "件名にパスワード".into(),
        query: r#"subject:"パスワード""#.into(),
        severity: "critical".into(),
        comment: "phishing".into(),
    });
    write_log(dir.path(), &handmade());
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    // h1 (:5228) and h5 (:8443) hit the CONNECT condition; m2 the subject one.
    assert_eq!(s.alerts, 3);
    assert_eq!(s.alert_delivery_failures, 0);

    // local log, and `recent` newest first
    let recent: Vec<Alert> = alerts::recent(dir.path(), 10).unwrap();
    let got: Vec<(&str, &str)> = recent
        .iter()
        .map(|a| (a.condition.as_str(), a.session.id.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("件名にパスワード", "m2"),
            ("443, 80以外のCONNECT", "h5"),
            ("443, 80以外のCONNECT", "h1")
        ]
    );
    assert_eq!(alerts::recent(dir.path(), 1).unwrap().len(), 1);

    // syslog: three RFC 5424 datagrams
    let mut grams = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        let (n, _) = syslog.recv_from(&mut buf).expect("a syslog datagram");
        grams.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    grams.sort();
    // local0 (16) * 8 + warning (4) = 132; + critical (2) = 130
    assert!(grams[0].starts_with("<130>1 "), "{}", grams[0]);
    assert!(
        grams[0].contains(r#"condition="件名にパスワード""#),
        "{}",
        grams[0]
    );
    assert!(grams[1].starts_with("<132>1 ") && grams[2].starts_with("<132>1 "));
    assert!(
        grams[1].contains(" kuroko ") && grams[1].contains("[kuroko@32473 "),
        "{}",
        grams[1]
    );
    let ids: Vec<bool> = ["h1", "h5"]
        .iter()
        .map(|id| {
            grams
                .iter()
                .any(|g| g.contains(&format!("session=\"{id}\"")))
        })
        .collect();
    assert_eq!(ids, vec![true, true]);
    assert!(grams.iter().any(|g| g.contains("mtalk.google.com:5228")));

    // mail: one per condition, UTF-8 subject decoded back
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut msgs = maildir_messages(&maildir);
    while msgs.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        msgs = maildir_messages(&maildir);
    }
    assert_eq!(msgs.len(), 2, "two mails expected");
    let mut decoded: Vec<(String, String)> = msgs.iter().map(|m| subject_and_body(m)).collect();
    decoded.sort();
    assert_eq!(
        decoded[0].0,
        "[Kuroko] 警告 (warning): 443, 80以外のCONNECT — 2 session(s)"
    );
    assert!(
        decoded[0].1.contains("mtalk.google.com:5228")
            && decoded[0].1.contains("odd.example.net:8443"),
        "{}",
        decoded[0].1
    );
    assert_eq!(
        decoded[1].0,
        "[Kuroko] 重大 (critical): 件名にパスワード — 1 session(s)"
    );
    assert!(msgs.iter().all(|m| m.contains("To: soc@example.co.jp")));
}

#[test]
fn mail_waits_in_the_outbox_while_the_relay_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens here yet
    let mut cfg = Config::default();
    cfg.alerts.smtp_relay = format!("127.0.0.1:{port}");
    cfg.alerts.mail_to = vec!["soc@example.co.jp".into()];
    write_log(dir.path(), &handmade());
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    assert_eq!(s.alerts, 2);
    assert_eq!(s.alert_delivery_failures, 1);
    assert!(dir.path().join("alerts/outbox.jsonl").exists());

    let maildir = dir.path().join("maildir");
    let _smtp = start_smtp(&maildir, port);
    // the next run (no new sessions) delivers the waiting mail
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    assert_eq!((s.indexed, s.alert_delivery_failures), (0, 0));
    assert!(!dir.path().join("alerts/outbox.jsonl").exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while maildir_messages(&maildir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let msgs = maildir_messages(&maildir);
    assert_eq!(msgs.len(), 1);
    assert!(
        subject_and_body(&msgs[0])
            .1
            .contains("mtalk.google.com:5228")
    );
}

#[test]
fn deliveries_are_rate_limited_per_condition() {
    let dir = tempfile::tempdir().unwrap();
    let syslog = UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut cfg = Config::default();
    cfg.alerts.syslog = syslog.local_addr().unwrap().to_string();
    let n = alerts::MAX_DELIVERED_PER_WINDOW as usize + 5;
    let recs: Vec<_> = (0..n)
        .map(|i| {
            http(
                &format!("c{i}"),
                T0 + i as i64,
                "CONNECT",
                "x.example",
                "x.example:22",
                200,
            )
        })
        .collect();
    write_log(dir.path(), &recs);
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    assert_eq!(s.alerts, n as u64);
    let logged = alerts::recent(dir.path(), 100).unwrap();
    assert_eq!(logged.len(), n, "every hit is in the local log");
    assert_eq!(
        logged.iter().filter(|a| a.delivered).count(),
        alerts::MAX_DELIVERED_PER_WINDOW as usize
    );
    let mut grams = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok((k, _)) = syslog.recv_from(&mut buf) {
        grams.push(String::from_utf8_lossy(&buf[..k]).to_string());
    }
    assert_eq!(grams.len(), alerts::MAX_DELIVERED_PER_WINDOW as usize + 1);
    assert!(
        grams.last().unwrap().contains("5 further hits"),
        "{}",
        grams.last().unwrap()
    );
}

#[test]
fn a_bad_condition_is_reported_not_fatal() {
    let mut cfg = Config::default();
    cfg.alerts.conditions.push(AlertCondition {
        name: "typo".into(),
        query: "hots:x".into(),
        severity: "info".into(),
        comment: String::new(),
    });
    let (ok, bad) = alerts::conditions(&cfg);
    assert_eq!(ok.len(), 1, "the default condition still runs");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, "typo");
    assert_eq!(bad[0].1.column, 1);
    cfg.alerts.no_defaults = true;
    assert_eq!(alerts::conditions(&cfg).0.len(), 0);
}

/// The conditions store the web console writes is what the engine evaluates: a stored
/// condition runs, a switched-off shipped one does not, and a damaged store file is
/// reported (the config's conditions keep running) and never overwritten.
#[test]
fn stored_conditions_run_and_a_damaged_store_is_reported() {
    use alerts::store::{self, Draft};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut cfg = Config::default();
    cfg.alerts.conditions.push(AlertCondition {
        name: "from config".into(),
        query: "method:GET".into(),
        severity: "info".into(),
        comment: String::new(),
    });
    let draft = |name: &str, query: &str| Draft {
        name: name.into(),
        query: query.into(),
        severity: "critical".into(),
        comment: String::new(),
        enabled: true,
    };
    let id = store::create(data, &cfg, &draft("stored", "method:CONNECT"), "ana").unwrap();
    // Names are unique over every source; a bad query is the parser's error.
    assert!(store::create(data, &cfg, &draft("from config", "*"), "ana").is_err());
    match store::create(data, &cfg, &draft("x", "method:CONNECT AND ("), "ana") {
        Err(store::StoreError::Query(q)) => assert_eq!(q.column, 21),
        other => panic!("{other:?}"),
    }
    // Config conditions are read-only here, but can be switched off.
    assert!(matches!(
        store::delete(data, &cfg, "from config"),
        Err(store::StoreError::ReadOnly(..))
    ));
    store::set_enabled(data, &cfg, alerts::DEFAULTS[0].0, false).unwrap();
    let names = |cfg: &Config| -> Vec<String> {
        let (ok, bad) = alerts::active_conditions(data, cfg);
        assert!(bad.is_empty(), "{bad:?}");
        ok.into_iter().map(|c| c.name).collect()
    };
    assert_eq!(names(&cfg), ["from config", "stored"]);
    let engine = alerts::AlertEngine::new(data, &cfg);
    assert_eq!(engine.conditions().len(), 2);
    store::set_enabled(data, &cfg, &id, false).unwrap();
    store::set_enabled(data, &cfg, alerts::DEFAULTS[0].0, true).unwrap();
    assert_eq!(names(&cfg), [alerts::DEFAULTS[0].0, "from config"]);
    // A config reload that took a stored condition's name: reported, the config's wins.
    store::set_enabled(data, &cfg, &id, true).unwrap();
    cfg.alerts.conditions[0].name = "stored".into();
    let (ok, bad) = alerts::active_conditions(data, &cfg);
    assert_eq!(ok.len(), 2);
    assert_eq!(bad[0].0, "stored");
    // Damaged: reported by name, the others run, the file is left for repair.
    std::fs::write(store::store_path(data), "{\"conditions\": [").unwrap();
    let (ok, bad) = alerts::active_conditions(data, &cfg);
    assert_eq!(ok.len(), 2, "shipped + config still run");
    assert_eq!(bad[0].0, "conditions store");
    assert!(store::create(data, &cfg, &draft("y", "*"), "ana").is_err());
    assert_eq!(
        std::fs::read_to_string(store::store_path(data)).unwrap(),
        "{\"conditions\": ["
    );
}

/// The index thrown away and built again from the session log (deleted by an operator,
/// replaced after damage, a cursor past the log's end): the sessions are indexed again,
/// but alerts already raised for them are not raised or sent a second time.
#[test]
fn rebuilding_the_index_does_not_alert_again() {
    let dir = tempfile::tempdir().unwrap();
    let syslog = UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut cfg = Config::default();
    cfg.alerts.syslog = syslog.local_addr().unwrap().to_string();
    write_log(dir.path(), &handmade());
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    assert_eq!(s.alerts, 2);
    let mut buf = [0u8; 4096];
    let mut first = 0;
    while syslog.recv_from(&mut buf).is_ok() {
        first += 1;
    }
    assert_eq!(first, 2);

    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let s = ingest_pending(dir.path(), &cfg).unwrap();
    assert_eq!(s.indexed, handmade().len() as u64, "indexed again");
    assert_eq!(s.alerts, 0, "no alert raised twice");
    assert_eq!(alerts::recent(dir.path(), 100).unwrap().len(), 2);
    let mut again = 0;
    while syslog.recv_from(&mut buf).is_ok() {
        again += 1;
    }
    assert_eq!(again, 0, "nothing sent again");
}

#[test]
fn the_rate_limit_is_configurable() {
    // `[alerts] deliveries_per_minute`: a site (or `bench live`, a session every 2 s) that
    // wants every hit sent one by one.
    let dir = tempfile::tempdir().unwrap();
    let syslog = UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut cfg = Config::default();
    assert_eq!(
        cfg.alerts.deliveries_per_minute,
        alerts::MAX_DELIVERED_PER_WINDOW
    );
    cfg.alerts.syslog = syslog.local_addr().unwrap().to_string();
    let n = alerts::MAX_DELIVERED_PER_WINDOW as usize + 5;
    cfg.alerts.deliveries_per_minute = n as u32;
    let recs: Vec<_> = (0..n)
        .map(|i| {
            http(
                &format!("c{i}"),
                T0 + i as i64,
                "CONNECT",
                "x.example",
                "x.example:22",
                200,
            )
        })
        .collect();
    write_log(dir.path(), &recs);
    ingest_pending(dir.path(), &cfg).unwrap();
    let logged = alerts::recent(dir.path(), 100).unwrap();
    assert_eq!(logged.iter().filter(|a| a.delivered).count(), n);
    let mut grams = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok((k, _)) = syslog.recv_from(&mut buf) {
        grams.push(String::from_utf8_lossy(&buf[..k]).to_string());
    }
    assert_eq!(grams.len(), n, "one message a hit, no summary");
    // 0 is refused by the config check (hits would only ever be summarised).
    let e = Config::parse("[alerts]\ndeliveries_per_minute = 0\n", Path::new("k.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("alerts.deliveries_per_minute"), "{e}");
}
