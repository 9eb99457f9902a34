//! The diagnosis report and the USB export on a store made from real-client traffic:
//! clients and servers in network namespaces (phishing mail, Telnet, FTP to the outside,
//! SSH to an unlisted outside server, exploit attempts, ordinary office traffic), recorded
//! on the mirror port, imported and analyzed by `kuroko`. Then `kuroko report` (ja and en,
//! HTML and PDF) must show every chapter with the numbers of `kuroko findings` and
//! `kuroko status`, render in headless Chromium with a clean console, and `kuroko export`
//! must write a bundle that `kuroko export --verify` and `sha256sum -c` accept, whose
//! findings.csv is what `kuroko findings --format csv` prints. The Japanese report (HTML
//! text, the PDF's text as pdftotext reads it) and the findings CSV's texts carry no
//! English prose outside names, protocol words and the data the traffic itself carried.

use kuroko_tests::kuroko::{DataDir, binary, csv_fields};
use kuroko_tests::scenarios::Scenario;
use kuroko_tests::shared::recording;
use kuroko_tests::site::INTERNAL_NETWORKS;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCENARIOS: [Scenario; 6] = [
    Scenario::PhishingMail,
    Scenario::Telnet,
    Scenario::FtpExternal,
    Scenario::SshExternal,
    Scenario::ExploitAttempts,
    Scenario::Office,
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Every word in a string of the captured data (session log values: file names, banners,
/// user names, URLs): what the report quotes as it was sent, never prose of its own.
fn data_words(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::String(s) => out.extend(
            s.split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(String::from),
        ),
        Value::Array(a) => a.iter().for_each(|x| data_words(x, out)),
        Value::Object(o) => o.values().for_each(|x| data_words(x, out)),
        _ => {}
    }
}

/// English words left in the lines of a Japanese `text` (see
/// `kuroko_detect::signals::english_words`), less the captured data's words, the
/// product's name and the export zip's password; one entry per offending line.
fn english_prose(what: &str, text: &str, data: &HashSet<String>) -> Vec<String> {
    const NAMES: [&str; 3] = ["network", "blackbox", "infected"];
    text.lines()
        .filter_map(|line| {
            let words: Vec<String> = kuroko_detect::signals::english_words(line)
                .into_iter()
                .filter(|w| !data.contains(w) && !NAMES.contains(&w.as_str()))
                .collect();
            (!words.is_empty()).then(|| format!("{what}: {words:?} in `{}`", line.trim()))
        })
        .collect()
}

/// The text a reader sees in an HTML page: tags and the style sheet dropped, entities read.
fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let tag = &rest[open..];
        let skip_to = if tag.starts_with("<style") {
            tag.find("</style>").map(|i| i + "</style>".len())
        } else {
            tag.find('>').map(|i| i + 1)
        };
        out.push('\n');
        rest = &tag[skip_to.unwrap_or(tag.len())..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// `pdftotext` of a PDF (poppler-utils, in .ci/packages.txt).
fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (Debian package poppler-utils) is needed");
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8(out.stdout).unwrap()
}

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect(
            "headless Chromium is needed: apt-get install chromium (listed in .ci/packages.txt)",
        )
}

fn render_in_chromium(html: &Path, out_png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1240,1754",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", out_png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium: {stderr}");
    for line in stderr.lines() {
        assert!(
            !line.contains("Uncaught") && !line.contains(":CONSOLE"),
            "browser console: {line}"
        );
    }
    assert!(std::fs::read(out_png).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn report_and_export_of_real_client_traffic() {
    let pcaps: Vec<PathBuf> = SCENARIOS
        .iter()
        .map(|s| recording(*s).unwrap_or_else(|e| panic!("recording {}: {e:#}", s.name())))
        .collect();
    let config = format!(
        "[site]\nname = \"Tokyo HQ\"\ncustomer = \"株式会社サンプル\"\ntimezone = \"Asia/Tokyo\"\ninternal_networks = {INTERNAL_NETWORKS:?}\n\n[intel]\nallowed_ssh_servers = [\"198.51.100.22\"]\n"
    );
    let data = DataDir::new("report-e2e", &config).unwrap();
    let mut args: Vec<&str> = Vec::new();
    for p in &pcaps {
        args.push(p.to_str().unwrap());
    }
    data.kuroko("import", &args).unwrap();
    data.analyze().unwrap();
    let findings: Vec<Value> = data.findings().unwrap();
    let sessions = data.session_log().unwrap();
    let status: Value =
        serde_json::from_str(&data.kuroko("status", &["--format", "json"]).unwrap()).unwrap();
    let rules: Vec<&str> = findings.iter().filter_map(|f| f["rule"].as_str()).collect();
    for want in [
        "phishing_mail",
        "telnet_use",
        "ftp_default_port_external",
        "ssh_external",
    ] {
        assert!(
            rules.contains(&want),
            "the pipeline found {rules:?}, not {want}"
        );
    }

    let mut data_vocabulary = HashSet::new();
    sessions
        .iter()
        .for_each(|s| data_words(s, &mut data_vocabulary));
    let mut english = Vec::new();
    let out = tempfile::tempdir().unwrap();
    for lang in ["ja", "en"] {
        let html_path = out.path().join(format!("report-{lang}.html"));
        let pdf_path = out.path().join(format!("report-{lang}.pdf"));
        data.kuroko(
            "report",
            &[
                "--out",
                html_path.to_str().unwrap(),
                "--pdf",
                pdf_path.to_str().unwrap(),
                "--lang",
                lang,
            ],
        )
        .unwrap();
        let html = std::fs::read_to_string(&html_path).unwrap();
        for id in [
            "overview",
            "summary",
            "environment",
            "threats",
            "scenarios",
            "details",
        ] {
            assert!(
                html.contains(&format!("<section class=\"chapter\" id=\"{id}\">")),
                "{lang}: chapter {id} missing"
            );
        }
        // Same findings as `kuroko findings`: one detail block each, grades counted alike.
        assert_eq!(
            html.matches("<div class=\"finding\" id=\"f-").count(),
            findings.len(),
            "{lang}"
        );
        for f in &findings {
            let id = f["id"].as_str().unwrap();
            assert!(
                html.contains(&format!("<td>{}</td>", esc(id))),
                "{lang}: finding {id} not in the details"
            );
        }
        for g in ["A", "B", "C", "D", "E"] {
            let n = findings.iter().filter(|f| f["risk"] == g).count();
            assert!(
                html.contains(&format!("data-grade=\"{g}\">{n}</div>")),
                "{lang}: grade {g} should count {n}"
            );
        }
        if lang == "ja" {
            for f in &findings {
                assert!(
                    html.contains(&esc(f["title"].as_str().unwrap())),
                    "title of {} missing",
                    f["id"]
                );
            }
            assert!(html.contains("株式会社サンプル 御中"));
            english.extend(english_prose("HTML", &html_text(&html), &data_vocabulary));
            english.extend(english_prose("PDF", &pdf_text(&pdf_path), &data_vocabulary));
        }
        // Same numbers as `kuroko status` and the session log.
        assert!(
            html.contains(&format!(
                "id=\"total-sessions\"><b>{}</b>",
                group(sessions.len() as u64)
            )),
            "{lang}: session total"
        );
        let packets = status["store"]["stored_packets"].as_u64().unwrap();
        assert!(
            html.contains(&format!("<td>{}</td>", group(packets))),
            "{lang}: stored packets {packets} not shown"
        );
        // The diagnosis period is the store's retention window, in the site's time zone.
        let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        let local = |key: &str| {
            let ns = status["store"][key].as_i64().unwrap();
            chrono::DateTime::from_timestamp_nanos(ns)
                .with_timezone(&tokyo)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        };
        let period = format!(
            "{} 〜 {}",
            local("oldest_packet_ns"),
            local("newest_packet_ns")
        );
        assert!(html.contains(&period), "{lang}: period {period} not shown");
        assert!(!html.to_lowercase().contains("<script"));
        let pdf = std::fs::read(&pdf_path).unwrap();
        assert!(pdf.starts_with(b"%PDF") && pdf.len() > 10_000);
        render_in_chromium(&html_path, &out.path().join(format!("report-{lang}.png")));
    }

    // The findings CSV's texts for people (its header and categories are the schema's
    // keys, the same in both languages).
    let csv = data.kuroko("findings", &["--format", "csv"]).unwrap();
    let mut rows = csv.trim_start_matches('\u{feff}').lines().map(csv_fields);
    let header = rows.next().unwrap();
    let mut csv_rows = 0;
    for row in rows {
        csv_rows += 1;
        for key in ["title", "signals", "countermeasures"] {
            let col = header.iter().position(|h| h == key).unwrap();
            let what = format!("CSV {} {key}", row[1]);
            english.extend(english_prose(&what, &row[col], &data_vocabulary));
        }
    }
    assert_eq!(csv_rows, findings.len(), "{csv}");
    assert!(
        english.is_empty(),
        "English prose in the Japanese report or CSV:\n{}",
        english.join("\n")
    );

    // The export: a complete, verifiable bundle.
    let stick = tempfile::tempdir().unwrap();
    let printed = data
        .kuroko(
            "export",
            &["--to", stick.path().to_str().unwrap(), "--plaintext"],
        )
        .unwrap();
    let bundle = PathBuf::from(printed.split(" (").next().unwrap().trim());
    assert!(bundle.is_dir(), "export printed {printed}");
    assert!(bundle.join("MANIFEST.sha256").is_file());
    let pcaps_exported = std::fs::read_dir(bundle.join("pcap"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(pcaps_exported > 0, "no evidence pcap in the bundle");
    let jsonl = std::fs::read_to_string(bundle.join("findings/findings.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), findings.len());
    // One findings CSV: `kuroko findings --format csv` is the bundle's findings.csv, byte
    // for byte (UTF-8 BOM, CRLF, by risk).
    let bundle_csv = std::fs::read(bundle.join("findings/findings.csv")).unwrap();
    let cli_csv = data.kuroko("findings", &["--format", "csv"]).unwrap();
    assert!(bundle_csv.starts_with("\u{feff}".as_bytes()));
    assert_eq!(
        cli_csv,
        String::from_utf8(bundle_csv).unwrap(),
        "findings --format csv differs from the bundle's findings.csv"
    );
    // The phishing mail's attachment left the box only inside the password zip.
    let zip = bundle.join("files/reconstructed-files.zip");
    let list = Command::new("unzip")
        .args(["-P", "infected", "-l"])
        .arg(&zip)
        .output()
        .expect("unzip (Debian package unzip) is needed");
    let listing = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.status.success() && listing.contains("invoice.pdf.exe.bin"),
        "{listing}"
    );
    let test = Command::new("unzip")
        .args(["-P", "infected", "-tq"])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stdout)
    );
    let verify = Command::new(binary().unwrap())
        .args(["export", "--verify"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let sums = Command::new("sha256sum")
        .args(["-c", "--quiet", "MANIFEST.sha256"])
        .current_dir(&bundle)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
}
