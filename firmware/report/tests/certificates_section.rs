//! §3.7 of the report: the servers' certificates, one content rendered to HTML and PDF in
//! both languages, with the `weak_tls` judgment (expired at session time, self-signed,
//! name mismatch) counted per certificate.

use kuroko_model::config::Config;
use kuroko_model::session::{Cert, Endpoint, Tls};
use kuroko_model::{SessionRecord, Timestamp};
use kuroko_report::data::{Inputs, StoreSummary};
use kuroko_report::objects::ObjectStore;
use kuroko_report::site::SiteFile;
use kuroko_report::{Lang, ReportData, html, pdf};
use std::process::Command;

fn session(id: &str, server: &str, sni: &str, cert: &Cert) -> SessionRecord {
    let t = Timestamp(1_794_960_000_000_000_000);
    let mut s = SessionRecord::new(
        id.to_string(),
        t,
        "tcp",
        Endpoint::new("10.1.1.10".parse().unwrap(), 50_000),
        Endpoint::new(server.parse().unwrap(), 443),
    );
    s.protocol = "tls".into();
    s.bytes_up = 100;
    s.tls = Some(Tls {
        sni: Some(sni.into()),
        version: Some("TLSv1.2".into()),
        certs: vec![cert.clone()],
        ..Default::default()
    });
    s
}

fn data() -> ReportData {
    let inside = Cert {
        subject: "CN=nas.corp.example".into(),
        issuer: "CN=nas.corp.example".into(),
        serial: "01".into(),
        not_before: "2024-01-01T00:00:00Z".into(),
        not_after: "2025-01-01T00:00:00Z".into(),
        sha256: "bb".repeat(32),
        self_signed: true,
        expired: true,
        ..Default::default()
    };
    let outside = Cert {
        subject: "CN=www.example.com,O=Example".into(),
        issuer: "CN=Example Public CA".into(),
        serial: "02".into(),
        not_before: "2026-01-01T00:00:00Z".into(),
        not_after: "2027-06-01T00:00:00Z".into(),
        san: vec!["www.example.com".into()],
        sha256: "aa".repeat(32),
        ..Default::default()
    };
    let sessions = vec![
        session("1-1-1", "10.1.2.3", "nas.corp.example", &inside),
        session("1-1-2", "10.1.2.3", "files.corp.example", &inside),
        session("1-1-3", "203.0.113.5", "www.example.com", &outside),
        session("1-1-4", "203.0.113.5", "www.example.com", &outside),
        session("1-1-5", "203.0.113.5", "www.example.com", &outside),
    ];
    let mut config = Config::default();
    config.site.internal_networks = vec!["10.0.0.0/8".into()];
    let dir = std::env::temp_dir();
    ReportData::build(Inputs {
        config: &config,
        site: &SiteFile::default(),
        findings: Vec::new(),
        sessions: sessions.into_iter(),
        store: StoreSummary::default(),
        objects: &ObjectStore::new(&dir),
        generated: Timestamp(1_794_960_100_000_000_000),
    })
}

/// What a reader sees of §3.7 in `text`: from its heading to the end.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let i = text
        .find(&format!("3.7 {title}"))
        .unwrap_or_else(|| panic!("no §3.7 `{title}`"));
    &text[i..]
}

fn expect_rows(text: &str, lang: Lang) {
    let (self_signed, expired, mismatch) = match lang {
        Lang::Ja => ("自己署名", "期限切れ (2)", "名前不一致 (1)"),
        Lang::En => ("self-signed", "expired (2)", "name mismatch (1)"),
    };
    let nas = text
        .find("CN=nas.corp.example")
        .expect("inside certificate");
    let www = text
        .find("CN=www.example.com")
        .expect("outside certificate");
    assert!(
        nas < www,
        "the inside server's problem certificate comes first"
    );
    let row = &text[nas..www];
    for w in [
        self_signed,
        expired,
        mismatch,
        "2024-01-01",
        "2025-01-01",
        "10.1.2.3:443",
    ] {
        assert!(row.contains(w), "{lang:?}: `{w}` not in the row: {row}");
    }
    assert!(text[www..].contains("203.0.113.5:443"));
    assert!(text[www..].contains("2027-06-01"));
}

#[test]
fn html_lists_the_certificates_with_their_problems() {
    let d = data();
    for (lang, title) in [
        (Lang::Ja, "サーバー証明書"),
        (Lang::En, "Server certificates"),
    ] {
        let page = html::render(&d, lang);
        // Tags out of the way: what the reader sees.
        let mut text = String::new();
        let mut in_tag = false;
        for c in page.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ');
                }
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        expect_rows(section(&text, title), lang);
    }
}

#[test]
fn pdf_lists_the_same_certificates() {
    let Ok(font) = pdf::find_font(None) else {
        panic!("install fonts-ipaexfont-gothic (listed in .ci/packages.txt)");
    };
    let d = data();
    let dir = tempfile::tempdir().unwrap();
    for (lang, title) in [
        (Lang::Ja, "サーバー証明書"),
        (Lang::En, "Server certificates"),
    ] {
        let path = dir.path().join("r.pdf");
        std::fs::write(&path, pdf::render(&d, lang, &font).unwrap()).unwrap();
        let out = Command::new("pdftotext")
            .arg(&path)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils, listed in .ci/packages.txt)");
        let text = String::from_utf8(out.stdout).unwrap();
        // pdftotext breaks table cells into lines; join them back.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        expect_rows(section(&text, title), lang);
    }
}
