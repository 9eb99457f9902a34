//! A consultant's questions, each answered by one documented `kuroko` command on
//! real-client traffic (FTP to the outside, a phishing mail, Telnet; recorded on the
//! mirror port of the test site, imported and analyzed):
//!
//! 1. What did analysis find? `kuroko analyze` ends with a summary line (packets,
//!    sessions, findings by grade); `kuroko findings` shows each finding's id.
//! 2. Which files moved over FTP, and who logged in? The FTP finding names the files; no
//!    FTP session is flagged as a failed login for the 530 some servers answer before USER.
//! 3. Which mail was the phishing? Its finding names the subject (and attachment hashes).
//! 4. The packets of one finding: `kuroko pcap --finding F… -w OUT` (with the ftp-data
//!    connections of an FTP finding), saying how many packets went where.
//!    The same sessions by `kuroko search 'finding:F…'`.
//! 5. An override with a reason and a note on one finding id in `DIR/site.toml`: the same
//!    grade in `kuroko findings`, the report data and the bundle's CSV; an override naming
//!    no finding is an error naming the file, line and key.
//! 6. Who logged in: `kuroko search` shows a user column (and on a pipe keeps both
//!    addresses whole); a list cut at `--limit` says how many more sessions match.
//! 7. Business hours or night: `time:business` and `time:night` split the sessions, and
//!    local times without an offset are accepted.

use kuroko_model::finding::Lang;
use kuroko_tests::kuroko::{DataDir, binary, csv_fields, site_config};
use kuroko_tests::scenarios::Scenario;
use kuroko_tests::shared::recording;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const SCENARIOS: [Scenario; 3] = [
    Scenario::FtpExternal,
    Scenario::PhishingMail,
    Scenario::Telnet,
];

/// `kuroko SUB --data DIR --config FILE ARGS` with stdout, stderr and status.
fn kuroko(data: &DataDir, sub: &str, args: &[&str]) -> Output {
    Command::new(binary().unwrap())
        .arg(sub)
        .arg("--data")
        .arg(&data.dir)
        .arg("--config")
        .arg(&data.config)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output, what: &str) -> (String, String) {
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "{what} failed: {err}");
    (out, err)
}

/// Column `name` of finding `id`'s row in a findings CSV (columns found by the header).
fn csv_value(csv: &str, id: &str, name: &str) -> Option<String> {
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    let header = csv_fields(lines.next()?);
    let col = |name: &str| header.iter().position(|h| h == name);
    let (ci, cr) = (col("id")?, col(name)?);
    lines
        .map(csv_fields)
        .find(|r| r.get(ci).map(String::as_str) == Some(id))
        .and_then(|r| r.get(cr).cloned())
}

/// The risk of finding `id` in a findings CSV.
fn csv_risk(csv: &str, id: &str) -> Option<String> {
    csv_value(csv, id, "risk")
}

fn rule<'a>(findings: &'a [Value], rule: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding in {findings:#?}"))
}

fn signals(f: &Value) -> Vec<String> {
    f["signals"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_consultants_questions_answered_by_kuroko_commands() {
    let pcaps: Vec<PathBuf> = SCENARIOS
        .iter()
        .map(|s| recording(*s).unwrap_or_else(|e| panic!("recording {}: {e:#}", s.name())))
        .collect();
    let data = DataDir::new("walkthrough", &site_config("Asia/Tokyo")).unwrap();
    let args: Vec<&str> = pcaps.iter().map(|p| p.to_str().unwrap()).collect();
    data.kuroko("import", &args).unwrap();

    // 1. The analysis says what it did; the table shows the ids.
    let (_, err) = ok(&kuroko(&data, "analyze", &[]), "analyze");
    let summary = err
        .lines()
        .find(|l| l.starts_with("kuroko analyze: "))
        .unwrap_or_else(|| panic!("no summary line from analyze: {err}"));
    let findings = data.findings_en().unwrap();
    let b = findings.iter().filter(|f| f["risk"] == "B").count();
    assert!(
        summary.contains(&format!("{} findings (", findings.len()))
            && summary.contains(&format!("B:{b}"))
            && summary.contains(" sessions in "),
        "{summary}"
    );
    let (table, _) = ok(&kuroko(&data, "findings", &[]), "findings");
    for f in &findings {
        assert!(table.contains(f["id"].as_str().unwrap()), "{table}");
    }

    // 2. FTP: files named, no false failed login.
    let ftp = rule(&findings, "ftp_default_port_external");
    let ftp_sig = signals(ftp);
    assert!(
        ftp_sig
            .iter()
            .any(|s| s.starts_with("file uploaded: STOR ")
                || s.starts_with("file downloaded: RETR ")),
        "the FTP finding names no file: {ftp_sig:?}"
    );
    let sessions = data.session_log().unwrap();
    for s in sessions.iter().filter(|s| s["protocol"] == "ftp") {
        let moved_files = s["ftp"]["files"].as_array().is_some_and(|f| !f.is_empty());
        let flags = s["flags"].to_string();
        assert!(
            !(moved_files && flags.contains("ftp_login_failed")),
            "an FTP session that moved files is flagged as a failed login: {s}"
        );
    }

    // 3. The phishing mail by its subject.
    let ph = signals(rule(&findings, "phishing_mail"));
    assert!(ph.iter().any(|s| s.starts_with("subject: ")), "{ph:?}");

    // 4. A finding's packets by id, with its ftp-data connections.
    let id = ftp["id"].as_str().unwrap().to_string();
    let out = tempfile::tempdir().unwrap();
    let pcap = out.path().join("ftp.pcap");
    let (_, err) = ok(
        &kuroko(
            &data,
            "pcap",
            &["--finding", &id, "-w", pcap.to_str().unwrap()],
        ),
        "pcap --finding",
    );
    let evidence = ftp["evidence"].as_array().unwrap().len();
    let line = err.lines().find(|l| l.contains(" packets (")).unwrap_or("");
    let n_sessions: usize = line
        .split(" of ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("pcap printed no summary: {err}"));
    // The finding's evidence holds the data connections that carried the files.
    let data_ids: Vec<&str> = sessions
        .iter()
        .filter(|s| s["protocol"] == "ftp-data")
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(
        !data_ids.is_empty(),
        "the FTP recording has no ftp-data session"
    );
    assert!(
        ftp["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| data_ids.contains(&e.as_str().unwrap_or(""))),
        "no ftp-data session in the evidence {:?}",
        ftp["evidence"]
    );
    assert!(
        n_sessions >= evidence,
        "{n_sessions} sessions exported for {evidence} evidence sessions: {line}"
    );
    assert!(std::fs::metadata(&pcap).unwrap().len() > 24 + 16, "{line}");

    // 4b. Volume: every finding says what its sessions carried; the FTP finding's is the
    // sum of its control and data connections in the session log, the same in the jsonl,
    // the table, the CSV and the report.
    let key = ["bytes_up", "bytes_down", "packets_up", "packets_down"];
    let mut want = [0u64; 4];
    for e in ftp["evidence"].as_array().unwrap() {
        let s = sessions.iter().find(|s| s["id"] == *e).unwrap();
        for (w, k) in want.iter_mut().zip(key) {
            *w += s[k].as_u64().unwrap();
        }
    }
    let got: Vec<u64> = key
        .iter()
        .map(|k| ftp["volume"][k].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(got, want, "FTP finding volume vs its evidence sessions");
    for f in &findings {
        let v = &f["volume"];
        assert!(
            v["bytes_up"].as_u64().unwrap_or(0) + v["bytes_down"].as_u64().unwrap_or(0) > 0
                && v["packets_up"].as_u64().unwrap_or(0) > 0,
            "finding {} shows no volume: {v}",
            f["id"]
        );
    }
    let volume: kuroko_model::finding::Volume =
        serde_json::from_value(ftp["volume"].clone()).unwrap();
    let (table_en, _) = ok(&kuroko(&data, "findings", &["--lang", "en"]), "findings");
    assert!(
        table_en.contains(&format!("volume {}", volume.describe(Lang::En))),
        "{table_en}"
    );
    let (fcsv, _) = ok(
        &kuroko(&data, "findings", &["--format", "csv"]),
        "findings csv",
    );
    for (w, k) in want.iter().zip(key) {
        assert_eq!(csv_value(&fcsv, &id, k), Some(w.to_string()), "{k}: {fcsv}");
    }
    let bad = kuroko(
        &data,
        "pcap",
        &["--finding", "Fnope", "-w", pcap.to_str().unwrap()],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("kuroko findings"));

    // 5. An override on one finding id, the same everywhere.
    let telnet = rule(&findings, "telnet_use");
    let tid = telnet["id"].as_str().unwrap().to_string();
    let site = data.dir.join("site.toml");
    std::fs::write(
        &site,
        format!(
            "[overrides.{tid}]\nvulnerability = 1\nthreat = 1\nreason = \"closed maintenance VLAN\"\nnote = \"confirmed with the admin\"\n"
        ),
    )
    .unwrap();
    let after = data.findings_en().unwrap();
    let t = after.iter().find(|f| f["id"] == tid.as_str()).unwrap();
    assert_eq!(t["risk"], "E", "{t}");
    assert_eq!(t["note"], "confirmed with the admin");
    assert_eq!(t["override_reason"], "closed maintenance VLAN");
    // Other findings of other rules keep their grade.
    let f2 = after.iter().find(|f| f["id"] == id.as_str()).unwrap();
    assert_eq!(f2["risk"], ftp["risk"]);
    let html = out.path().join("r.html");
    ok(
        &kuroko(
            &data,
            "report",
            &["--out", html.to_str().unwrap(), "--lang", "en"],
        ),
        "report",
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("closed maintenance VLAN") && html.contains("confirmed with the admin"));
    assert!(
        html.contains(&format!("<td>{}</td>", volume.describe(Lang::En))),
        "the report shows no volume of the FTP finding"
    );
    let stick = tempfile::tempdir().unwrap();
    let (printed, _) = ok(
        &kuroko(
            &data,
            "export",
            &["--to", stick.path().to_str().unwrap(), "--plaintext"],
        ),
        "export",
    );
    let bundle = PathBuf::from(printed.split(" (").next().unwrap().trim());
    let csv = std::fs::read_to_string(bundle.join("findings/findings.csv")).unwrap();
    assert_eq!(csv_risk(&csv, &tid).as_deref(), Some("E"), "{csv}");
    let (fcsv, _) = ok(
        &kuroko(&data, "findings", &["--format", "csv"]),
        "findings csv",
    );
    assert_eq!(csv_risk(&fcsv, &tid).as_deref(), Some("E"), "{fcsv}");

    // An override keyed by an id no finding has is an error naming file, line and key.
    std::fs::write(
        &site,
        "[notes]\n\n[overrides.F0123456789abcdef]\nthreat = 1\nreason = \"typo\"\n",
    )
    .unwrap();
    let o = kuroko(&data, "findings", &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "an unknown id was accepted");
    assert!(
        err.contains(&format!("{}:3:", site.display()))
            && err.contains("overrides.F0123456789abcdef"),
        "{err}"
    );
}
