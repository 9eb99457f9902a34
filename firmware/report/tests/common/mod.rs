//! A data directory as the pipeline leaves it: a session log, findings, reconstructed
//! objects. Built from records constructed here (the pipeline's own end-to-end fixtures
//! live in the workspace `tests/` crate).

#![allow(dead_code)]

use kuroko_model::finding::{Category, Finding, Risk};
use kuroko_model::session::{
    Attachment, Endpoint, FileRef, Ftp, FtpFile, Http, Link, Mail, Ssh, Telnet,
};
use kuroko_model::sessionlog::SessionLogWriter;
use kuroko_model::{SessionRecord, Timestamp};
use sha2::Digest;
use std::path::Path;

/// 2026-11-18T09:00:00+09:00.
pub const T0: i64 = 1_794_960_000;

pub fn ts(secs: i64) -> Timestamp {
    Timestamp((T0 + secs) * 1_000_000_000)
}

pub fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

pub fn session(
    id: &str,
    at: i64,
    proto: &str,
    c: (&str, u16),
    s: (&str, u16),
    up: u64,
    down: u64,
) -> SessionRecord {
    let mut r = SessionRecord::new(
        id.into(),
        ts(at),
        "tcp",
        Endpoint::new(c.0.parse().unwrap(), c.1),
        Endpoint::new(s.0.parse().unwrap(), s.1),
    );
    r.end = ts(at + 3);
    r.protocol = proto.into();
    r.bytes_up = up;
    r.bytes_down = down;
    r.packets = 4 + (up + down) / 1000;
    r
}

pub const PHISH_EML: &[u8] = b"From: \"Resona Bank\" <notice@resona-secure.example>\r\nTo: tanaka@corp.example\r\nSubject: =?UTF-8?B?44CQ6YeN6KaB44CR5Y+j5bqn5YeN57WQ44Gu44GK55+l44KJ44Gb?=\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>\xe3\x83\x91\xe3\x82\xb9\xe3\x83\xaf\xe3\x83\xbc\xe3\x83\x89\xe5\x85\xa5\xe5\x8a\x9b\xe7\x9b\xb8\xe9\x81\x95\xe3\x81\x8c\xe7\xb9\xb0\xe3\x82\x8a\xe8\xbf\x94\xe3\x81\x95\xe3\x82\x8c\xe3\x81\x9f\xe3\x81\x9f\xe3\x82\x81\xe5\x8f\xa3\xe5\xba\xa7\xe3\x82\x92\xe5\x87\x8d\xe7\xb5\x90\xe3\x81\x97\xe3\x81\xbe\xe3\x81\x97\xe3\x81\x9f\xe3\x80\x82</p><p><a href=\"http://resona-secure.example/login\">https://www.resonabank.co.jp/</a></p><script>alert('pwned')</script><img src=\"http://tracker.example/p.gif\"></body></html>\r\n";

pub const MALWARE: &[u8] = b"MZ\x90\x00 this pretends to be an executable";

/// Writes the fixture; returns the findings written.
pub fn build(dir: &Path) -> Vec<Finding> {
    let mut log = SessionLogWriter::open(&dir.join("sessions")).unwrap();
    let mut sessions = Vec::new();
    // Background traffic over six hours.
    for i in 0..60 {
        let h = i * 360;
        sessions.push(session(
            &format!("bg-http-{i}"),
            h,
            "http",
            ("10.1.0.20", 50000 + i as u16),
            ("93.184.216.34", 80),
            800,
            24_000 + i as u64 * 100,
        ));
        sessions.push(session(
            &format!("bg-tls-{i}"),
            h + 30,
            "tls",
            ("10.1.0.21", 51000 + i as u16),
            ("142.250.196.110", 443),
            3_000,
            180_000,
        ));
        sessions.push(session(
            &format!("bg-dns-{i}"),
            h + 60,
            "dns",
            ("10.1.0.21", 53000 + i as u16),
            ("10.1.0.2", 53),
            60,
            120,
        ));
        sessions.push(session(
            &format!("bg-smb-{i}"),
            h + 90,
            "smb",
            ("10.1.0.22", 49000 + i as u16),
            ("10.1.0.5", 445),
            40_000,
            2_000,
        ));
    }
    // Evidence.
    let eml_sha = sha(PHISH_EML);
    let mal_sha = sha(MALWARE);
    let mut smtp = session(
        "ev-smtp-1",
        4000,
        "smtp",
        ("203.0.113.50", 41000),
        ("10.1.0.25", 25),
        5_200,
        300,
    );
    smtp.mail = Some(Mail {
        from: Some("notice@resona-secure.example".into()),
        from_display: Some("Resona Bank".into()),
        to: vec!["tanaka@corp.example".into()],
        subject: Some("【重要】口座凍結のお知らせ <script>alert(1)</script>".into()),
        mail_from: Some("bounce@evil.example".into()),
        links: vec![Link {
            text: "https://www.resonabank.co.jp/".into(),
            href: "http://resona-secure.example/login\"><script>alert(2)</script>".into(),
        }],
        attachments: vec![Attachment {
            name: "本人確認.exe".into(),
            bytes: MALWARE.len() as u64,
            sha256: Some(mal_sha.clone()),
            content_type: Some("application/x-msdownload".into()),
        }],
        eml_sha256: Some(eml_sha.clone()),
        ..Default::default()
    });
    smtp.files.push(FileRef {
        sha256: mal_sha.clone(),
        name: Some("本人確認.exe".into()),
        content_type: Some("application/x-msdownload".into()),
        bytes: MALWARE.len() as u64,
        direction: "upload".into(),
        kind: "attachment".into(),
        partial: false,
        ..Default::default()
    });
    sessions.push(smtp);

    let mut telnet = session(
        "ev-telnet-1",
        7200,
        "telnet",
        ("10.1.0.30", 40100),
        ("10.1.0.9", 23),
        300,
        4_000,
    );
    telnet.telnet = Some(Telnet {
        user: Some("admin".into()),
    });
    sessions.push(telnet);
    let mut telnet2 = session(
        "ev-telnet-2",
        9000,
        "telnet",
        ("10.1.0.30", 40101),
        ("10.1.0.9", 23),
        200,
        2_000,
    );
    telnet2.telnet = Some(Telnet {
        user: Some("admin".into()),
    });
    sessions.push(telnet2);

    let mut ftp = session(
        "ev-ftp-1",
        10_000,
        "ftp",
        ("10.1.0.40", 40200),
        ("198.51.100.7", 21),
        900,
        1_200,
    );
    ftp.ftp = Some(Ftp {
        user: Some("backup".into()),
        commands: vec![
            "USER backup".into(),
            "PASS ****".into(),
            "STOR 顧客一覧.xlsx".into(),
        ],
        files: vec![FtpFile {
            name: "顧客一覧.xlsx".into(),
            direction: "upload".into(),
            bytes: 2_400_000,
            sha256: None,
            ..Default::default()
        }],
        control_session: None,
        banner: None,
    });
    sessions.push(ftp);
    let mut ftpdata = session(
        "ev-ftpdata-1",
        10_005,
        "ftp-data",
        ("10.1.0.40", 40201),
        ("198.51.100.7", 20),
        2_400_000,
        0,
    );
    ftpdata.files.push(FileRef {
        sha256: "11".repeat(32),
        name: Some("顧客一覧.xlsx".into()),
        content_type: None,
        bytes: 2_400_000,
        direction: "upload".into(),
        kind: "ftp".into(),
        partial: false,
        ..Default::default()
    });
    sessions.push(ftpdata);

    let mut ssh = session(
        "ev-ssh-1",
        12_000,
        "ssh",
        ("10.1.0.50", 40300),
        ("10.1.0.60", 22),
        4_000,
        9_000,
    );
    ssh.ssh = Some(Ssh {
        client_version: Some("SSH-2.0-OpenSSH_9.2p1".into()),
        server_version: Some("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3".into()),
    });
    sessions.push(ssh);

    for (i, src) in ["45.155.205.1", "185.220.101.4", "194.26.29.3"]
        .iter()
        .enumerate()
    {
        let mut h = session(
            &format!("ev-exploit-{i}"),
            15_000 + i as i64 * 60,
            "http",
            (src, 60000),
            ("10.1.0.80", 443),
            400,
            200,
        );
        h.http = Some(Http { method: Some("GET".into()), url: Some("vpn.corp.example/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession".into()), status: Some(404), ..Default::default() });
        sessions.push(h);
    }
    sessions.sort_by_key(|s| s.start);
    for s in &sessions {
        log.append(s).unwrap();
    }
    log.sync().unwrap();

    // Reconstructed objects.
    for (sha, bytes, ext) in [(&eml_sha, PHISH_EML, "eml"), (&mal_sha, MALWARE, "bin")] {
        let d = dir.join("files").join(&sha[..2]);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("{}.{ext}", &sha[2..])), bytes).unwrap();
    }

    let f = |id: &str,
             rule: &str,
             title: &str,
             cat: Category,
             client: Option<&str>,
             server: Option<&str>,
             v: u8,
             t: u8,
             ev: &[&str],
             first: i64,
             last: i64,
             count: u64| Finding {
        id: id.into(),
        rule: rule.into(),
        title: title.into(),
        category: cat,
        attack: vec!["T1566.001".into()],
        client: client.map(str::to_string),
        server: server.map(str::to_string),
        first_seen: ts(first),
        last_seen: ts(last),
        count,
        vulnerability: v,
        threat: t,
        risk: Risk::from_levels(v, t),
        countermeasures: vec!["(detector text)".into()],
        evidence: ev.iter().map(|s| s.to_string()).collect(),
        signals: vec![],
        override_reason: None,
        override_source: None,
        note: None,
        volume: Default::default(),
    };
    let mut phishing = f(
        "f-phish",
        "phishing_mail",
        "フィッシング",
        Category::InitialAccess,
        Some("203.0.113.50"),
        Some("10.1.0.25"),
        3,
        3,
        &["ev-smtp-1"],
        4000,
        4000,
        1,
    );
    phishing.signals = vec![
        "display name impersonates a bank brand: Resona Bank".into(),
        "link text shows https://www.resonabank.co.jp/ but points to resona-secure.example".into(),
        "attachment with executable extension: .exe".into(),
    ];
    let findings = vec![
        phishing,
        f(
            "f-exploit",
            "public_app_exploit_attempt",
            "外部公開アプリのエクスプロイト",
            Category::InitialAccess,
            None,
            Some("10.1.0.80"),
            2,
            3,
            &["ev-exploit-0", "ev-exploit-1", "ev-exploit-2"],
            15_000,
            15_120,
            3,
        ),
        f(
            "f-telnet",
            "telnet_use",
            "Telnet の利用",
            Category::LateralMovement,
            Some("10.1.0.30"),
            Some("10.1.0.9"),
            2,
            2,
            &["ev-telnet-1", "ev-telnet-2"],
            7200,
            9000,
            2,
        ),
        f(
            "f-ssh",
            "openssh_outdated",
            "古い OpenSSH",
            Category::LateralMovement,
            None,
            Some("10.1.0.60"),
            2,
            1,
            &["ev-ssh-1"],
            12_000,
            12_000,
            1,
        ),
        f(
            "f-ftp",
            "ftp_default_port_external",
            "FTP (内部 -> 外部)",
            Category::Exfiltration,
            Some("10.1.0.40"),
            Some("198.51.100.7"),
            3,
            2,
            &["ev-ftp-1", "ev-ftpdata-1"],
            10_000,
            10_005,
            1,
        ),
        f(
            "f-missing",
            "oracle_traffic",
            "Oracle の通信",
            Category::Other,
            Some("10.1.0.70"),
            Some("10.1.0.71"),
            1,
            1,
            &["rotated-out"],
            100,
            100,
            1,
        ),
    ];
    std::fs::create_dir_all(dir.join("findings")).unwrap();
    let mut text = String::new();
    for x in &findings {
        text.push_str(&serde_json::to_string(x).unwrap());
        text.push('\n');
    }
    std::fs::write(dir.join("findings/findings.jsonl"), text).unwrap();
    findings
}
