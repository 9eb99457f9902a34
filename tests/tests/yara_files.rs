//! YARA on reconstructed files, with real clients and servers on the test site: curl
//! downloads over HTTP (python's http.server) and FTP (pyftpdlib), swaks sends mails with
//! attachments to aiosmtpd. One file of each pair carries a marker a YARA rule of the
//! configuration looks for; its twin (same size, same kind, same path) does not.
//!
//! Each marked file gives: its rule name in the session's `files[].yara` and in the
//! stored object's metadata, a hit for `yara:RuleName`, and a `yara_match` finding whose
//! level is the one the rule's metadata asks for (`kuroko_level = "A"`, `severity =
//! "medium"` → C). The twins give none of these. The analyzer's counters say how many
//! objects were scanned and matched.
//!
//! An FTP transfer's match is also on its control session (`ftp.files[].yara`: the session
//! that names the file, the command and the user), for a download (RETR) and an upload
//! (STOR), and the finding names the file with its command.
//!
//! The same session and finding exported as ECS (`--format ecs`) carry the record's
//! values in the ECS fields `docs/ECS.md` maps them to.
//!
//! A rule file that does not compile is a clear error naming the file and the line, from
//! `kuroko yara check`, from `kuroko analyze` (a warning: analysis goes on) and in
//! `kuroko status`.
//!
//! Needs root, curl, swaks, pyftpdlib, aiosmtpd (`.ci/packages.txt`).

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{EXT, FILES, MAIL, PC, Site};
use serde_json::Value;
use std::path::Path;

const PYTHON: &str = "/usr/bin/python3";
const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";

const DROPPER_MARK: &[u8] = b"KUROKO-YARA-DROPPER-7f3a51";
const LURE_MARK: &[u8] = b"KUROKO-YARA-LURE-91c2e0";

const RULES: &str = r#"
rule Kuroko_Test_Dropper {
  meta:
    description = "test marker for dropped files"
    kuroko_level = "A"
  strings:
    $m = "KUROKO-YARA-DROPPER-7f3a51"
  condition:
    $m
}

rule Kuroko_Test_Lure {
  meta:
    severity = "medium"
  strings:
    $m = "KUROKO-YARA-LURE-91c2e0"
  condition:
    $m
}
"#;

/// `len` pseudo-random bytes, with `mark` in the middle when given (the twin gets the
/// same number of filler bytes instead).
fn file_with(path: &Path, len: usize, seed: u64, mark: Option<&[u8]>) -> anyhow::Result<()> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    if let Some(m) = mark {
        let at = len / 2;
        v[at..at + m.len()].copy_from_slice(m);
    }
    std::fs::write(path, v)?;
    Ok(())
}

fn yara_of(session: &Value) -> Vec<String> {
    session["files"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .flat_map(|f| f["yara"].as_array().cloned().unwrap_or_default())
                .filter_map(|y| y.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes the rules beside the config and points `[intel] yara_rules` at them.
fn with_rules(data: &DataDir, name: &str, rules: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = data.config.parent().context("config dir")?.join("rules");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(name);
    std::fs::write(&file, rules)?;
    std::fs::write(
        &data.config,
        format!(
            "{CONFIG}\n[intel]\nyara_rules = [\"{}\"]\n",
            dir.to_str().context("utf-8")?
        ),
    )?;
    Ok(file)
}

#[test]
fn files_over_http_ftp_and_smtp_matching_yara_give_hits_and_findings_and_twins_do_not()
-> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    let site = Site::new()?;
    let data = DataDir::new("yara-files", CONFIG)?;
    with_rules(&data, "test.yar", RULES)?;
    let pcap = data.dir.parent().context("parent")?.join("yara.pcap");
    let www = site.work_dir().join("www");
    let ftproot = site.work_dir().join("ftproot");
    let att = site.work_dir().join("att");
    for d in [&www, &ftproot, &att] {
        std::fs::create_dir_all(d)?;
    }
    file_with(&www.join("setup.exe"), 120_000, 3, Some(DROPPER_MARK))?;
    file_with(&www.join("twin.exe"), 120_000, 5, None)?;
    file_with(&ftproot.join("tool.bin"), 80_000, 7, Some(DROPPER_MARK))?;
    file_with(&ftproot.join("twin.bin"), 80_000, 9, None)?;
    let upload = site.work_dir().join("upload");
    std::fs::create_dir_all(&upload)?;
    file_with(&upload.join("report.bin"), 50_000, 15, Some(LURE_MARK))?;
    file_with(&att.join("invoice.doc"), 30_000, 11, Some(LURE_MARK))?;
    file_with(&att.join("minutes.doc"), 30_000, 13, None)?;

    let mut web = site.serve(
        EXT,
        "http",
        "tcp",
        80,
        &[
            PYTHON,
            "-m",
            "http.server",
            "80",
            "--bind",
            EXT.ip,
            "--directory",
            www.to_str().context("utf-8")?,
        ],
    )?;
    let mut ftp = kuroko_tests::ftp::serve(&site, FILES, &ftproot)?;
    let mut smtp = site.serve(
        MAIL,
        "aiosmtpd",
        "tcp",
        25,
        &[
            PYTHON,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("{}:25", MAIL.ip),
        ],
    )?;
    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        for f in ["setup.exe", "twin.exe"] {
            site.sh(
                PC,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "20",
                    "-o",
                    "/dev/null",
                    &format!("http://{}/{f}", EXT.ip),
                ],
                30,
            )?;
        }
        for f in ["tool.bin", "twin.bin"] {
            site.sh(
                PC,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "20",
                    "-o",
                    "/dev/null",
                    &format!("ftp://alice:secret@{}/{f}", FILES.ip),
                ],
                30,
            )?;
        }
        site.sh(
            PC,
            &[
                "curl",
                "-sS",
                "--max-time",
                "20",
                "-T",
                upload.join("report.bin").to_str().context("utf-8")?,
                &format!("ftp://alice:secret@{}/report.bin", FILES.ip),
            ],
            30,
        )?;
        for (f, subject) in [("invoice.doc", "invoice"), ("minutes.doc", "minutes")] {
            let path = att.join(f);
            let out = site.sh(
                PC,
                &[
                    "swaks",
                    "--server",
                    MAIL.ip,
                    "--from",
                    "billing@vendor.example",
                    "--to",
                    "hanako@corp.example",
                    "--header",
                    &format!("Subject: {subject}"),
                    "--attach-type",
                    "application/msword",
                    "--attach",
                    path.to_str().context("utf-8")?,
                    "--timeout",
                    "20",
                ],
                60,
            )?;
            ensure!(
                String::from_utf8_lossy(&out.stdout).contains("250"),
                "swaks: {out:?}"
            );
        }
        Ok(())
    })();
    rec.stop()?;
    web.stop();
    ftp.stop();
    smtp.stop();
    traffic?;
    data.import(&pcap)?;
    data.analyze()?;
    // Hits: the marked file of each protocol, never its twin.
    let dropper = data.search("yara:Kuroko_Test_Dropper")?;
    let mut protos: Vec<&str> = dropper
        .iter()
        .filter_map(|s| s["protocol"].as_str())
        .collect();
    protos.sort();
    assert_eq!(protos, ["ftp", "ftp-data", "http"], "{dropper:#?}");
    let names: Vec<String> = dropper
        .iter()
        .flat_map(|s| s["files"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["yara"].is_array())
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect();
    ensure!(
        names.iter().any(|n| n.contains("setup.exe"))
            && names.iter().any(|n| n.contains("tool.bin")),
        "matched file names {names:?}"
    );
    let lure = data.search("yara:Kuroko_Test_Lure")?;
    let mut protos: Vec<&str> = lure.iter().filter_map(|s| s["protocol"].as_str()).collect();
    protos.sort();
    assert_eq!(protos, ["ftp", "ftp-data", "smtp"], "{lure:#?}");
    let mail = lure
        .iter()
        .find(|s| s["protocol"] == "smtp")
        .context("smtp")?;
    assert_eq!(mail["mail"]["subject"], "invoice");
    let any = data.search("yara:*")?;
    assert_eq!(
        any.len(),
        6,
        "only the four marked transfers (and the FTP ones' control sessions): {any:#?}"
    );
    // The FTP control sessions: the file, its command and the rule, with the user.
    for (rule, name, direction) in [
        ("Kuroko_Test_Dropper", "tool.bin", "download"),
        ("Kuroko_Test_Lure", "report.bin", "upload"),
    ] {
        let hits = data.search(&format!("yara:{rule} AND protocol:ftp"))?;
        assert_eq!(hits.len(), 1, "{hits:#?}");
        let ftp = &hits[0]["ftp"];
        assert_eq!(ftp["user"], "alice", "{ftp:#}");
        let files = ftp["files"].as_array().context("ftp.files")?;
        let f = files
            .iter()
            .find(|f| f["name"] == name)
            .with_context(|| format!("{name} in {ftp:#}"))?;
        assert_eq!(f["direction"], direction);
        assert_eq!(f["yara"], serde_json::json!([rule]), "{f:#}");
        ensure!(f["sha256"].is_string(), "{f:#}");
    }
    // The twins were reconstructed too (so they were scanned and did not match).
    let log = data.session_log()?;
    let twins: Vec<&Value> = log
        .iter()
        .filter(|s| s["files"].to_string().contains("twin.") || s["mail"]["subject"] == "minutes")
        .collect();
    ensure!(twins.len() >= 3, "twin transfers in the log: {twins:#?}");
    for t in &twins {
        ensure!(yara_of(t).is_empty(), "a twin matched: {t:#?}");
    }

    // The stored object's metadata carries the rule names.
    let http = dropper
        .iter()
        .find(|s| s["protocol"] == "http")
        .context("http hit")?;
    let f = http["files"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["yara"].is_array()))
        .context("matched file")?;
    assert_eq!(f["yara_level"], "A");
    let sha = f["sha256"].as_str().context("sha256")?;
    let meta = kuroko_model::objects::Objects::new(&data.dir)
        .meta(sha)
        .context("the object's record in files/objects.log")?;
    assert_eq!(meta.yara, ["Kuroko_Test_Dropper"], "{meta:?}");

    // Findings: one per client/server pair, at the level the rule asks for.
    let findings: Vec<Value> = data
        .findings_en()?
        .into_iter()
        .filter(|f| f["rule"] == "yara_match")
        .collect();
    let mut got: Vec<(String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["server"].as_str().unwrap_or("").to_string(),
                f["risk"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (EXT.ip.to_string(), "A".to_string()),
        (FILES.ip.to_string(), "A".to_string()),
        (MAIL.ip.to_string(), "C".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "{findings:#?}");
    let evidence: Vec<Value> = findings
        .iter()
        .flat_map(|f| f["evidence"].as_array().cloned().unwrap_or_default())
        .collect();
    for t in &twins {
        ensure!(
            !evidence.contains(&t["id"]),
            "twin {} is evidence of a finding",
            t["id"]
        );
    }
    let ftp = findings
        .iter()
        .find(|f| f["server"] == FILES.ip)
        .context("ftp finding")?;
    let signals = ftp["signals"].to_string();
    ensure!(
        signals.contains("FTP RETR `tool.bin` (80000 bytes, moved over the data connection) matched YARA rules `Kuroko_Test_Dropper`")
            && signals.contains("FTP STOR `report.bin` (50000 bytes, moved over the data connection) matched YARA rules `Kuroko_Test_Lure`"),
        "{ftp:#?}"
    );
    let ctl: Vec<&Value> = any.iter().filter(|s| s["protocol"] == "ftp").collect();
    assert_eq!(ctl.len(), 2);
    for c in ctl {
        ensure!(
            ftp["evidence"]
                .as_array()
                .is_some_and(|e| e.contains(&c["id"])),
            "control session {} is evidence of {ftp:#?}",
            c["id"]
        );
    }
    let mail = findings
        .iter()
        .find(|f| f["server"] == MAIL.ip)
        .context("mail finding")?;
    ensure!(
        mail["signals"].to_string().contains("invoice.doc")
            && mail["signals"].to_string().contains("Kuroko_Test_Lure"),
        "{mail:#?}"
    );

    // ECS export of the same session and its finding, field by field against the record.
    let ecs = kuroko_tests::kuroko::parse_jsonl(&data.kuroko(
        "search",
        &[
            "--format",
            "ecs",
            "yara:Kuroko_Test_Dropper AND protocol:http",
        ],
    )?)?;
    assert_eq!(ecs.len(), 1, "{ecs:#?}");
    let (e, r) = (&ecs[0], http);
    assert_eq!(e["@timestamp"], r["start"]);
    assert_eq!(e["ecs"]["version"], "8.11.0");
    assert_eq!(e["event"]["kind"], "event");
    assert_eq!(e["event"]["category"], serde_json::json!(["network"]));
    assert_eq!(e["event"]["id"], r["id"]);
    assert_eq!(e["event"]["start"], r["start"]);
    assert_eq!(e["event"]["end"], r["end"]);
    assert_eq!(e["source"]["ip"], r["client"]["ip"]);
    assert_eq!(e["source"]["port"], r["client"]["port"]);
    assert_eq!(e["source"]["bytes"], r["bytes_up"]);
    assert_eq!(e["destination"]["ip"], EXT.ip);
    assert_eq!(e["destination"]["port"], 80);
    assert_eq!(e["destination"]["bytes"], r["bytes_down"]);
    let mac = r["client"]["mac"].as_str().context("client mac")?;
    assert_eq!(e["source"]["mac"], mac.replace(':', "-").to_uppercase());
    assert_eq!(e["network"]["transport"], "tcp");
    assert_eq!(e["network"]["protocol"], "http");
    assert_eq!(e["network"]["type"], "ipv4");
    assert_eq!(e["network"]["community_id"], r["community_id"]);
    ensure!(
        e["network"]["community_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("1:")),
        "{e:#}"
    );
    assert_eq!(e["http"]["request"]["method"], "GET");
    assert_eq!(e["http"]["response"]["status_code"], 200);
    assert_eq!(e["url"]["original"], r["http"]["url"]);
    assert_eq!(e["user_agent"]["original"], r["http"]["user_agent"]);
    assert_eq!(e["file"]["hash"]["sha256"], sha);
    assert_eq!(
        e["kuroko"]["yara"],
        serde_json::json!(["Kuroko_Test_Dropper"])
    );
    assert_eq!(e["related"]["hash"], serde_json::json!([sha]));
    let fe = kuroko_tests::kuroko::parse_jsonl(
        &data.kuroko("findings", &["--format", "ecs", "--lang", "en"])?,
    )?;
    let fe: Vec<&Value> = fe
        .iter()
        .filter(|f| f["rule"]["id"] == "yara_match")
        .collect();
    assert_eq!(fe.len(), 3, "{fe:#?}");
    let web = fe
        .iter()
        .find(|f| f["destination"]["ip"] == EXT.ip)
        .context("ECS finding for the web server")?;
    let jf = findings
        .iter()
        .find(|f| f["server"] == EXT.ip)
        .context("finding")?;
    assert_eq!(web["event"]["kind"], "alert");
    assert_eq!(web["event"]["id"], jf["id"]);
    assert_eq!(web["@timestamp"], jf["first_seen"]);
    assert_eq!(web["event"]["severity"], 5);
    assert_eq!(web["rule"]["name"], "yara_match");
    assert_eq!(web["rule"]["description"], jf["title"]);
    assert_eq!(web["threat"]["technique"]["id"], jf["attack"]);
    assert_eq!(web["source"]["ip"], jf["client"]);
    assert_eq!(web["kuroko"]["risk"], "A");
    assert_eq!(web["kuroko"]["evidence"], jf["evidence"]);

    // Counters.
    let status: Value = serde_json::from_str(&data.kuroko("status", &["--format", "json"])?)?;
    let c = &status["analyzer"]["counters"];
    assert_eq!(c["yara_matched_files"], 4, "{c:#}");
    ensure!(c["yara_scanned"].as_u64().unwrap_or(0) >= 7, "{c:#}");
    assert_eq!(c["yara_timeouts"], 0);
    assert_eq!(status["yara"]["in_force"], true, "{:#}", status["yara"]);
    assert_eq!(status["yara"]["error"], Value::Null);
    Ok(())
}

#[test]
fn a_rule_file_that_does_not_compile_is_an_error_with_file_and_line() -> anyhow::Result<()> {
    let data = DataDir::new("yara-broken", CONFIG)?;
    let bad = with_rules(
        &data,
        "broken.yar",
        "rule Fine { condition: true }\n\nrule Broken {\n  strings: $a = \"x\"\n  condition: $missing }\n",
    )?;
    let bin = kuroko_tests::kuroko::binary()?;
    let check = std::process::Command::new(&bin)
        .args(["yara", "check", "--data"])
        .arg(&data.dir)
        .arg("--config")
        .arg(&data.config)
        .output()?;
    ensure!(!check.status.success(), "yara check passed: {check:?}");
    let err = String::from_utf8_lossy(&check.stderr);
    let at = format!("{}:5:", bad.display());
    ensure!(err.contains(&at) && err.contains("$missing"), "{err}");
    // The analyzer goes on without YARA and says why, on stderr and in status.
    let pcap = data.dir.parent().context("parent")?.join("empty.pcap");
    // An empty pcap: global header only (Ethernet).
    let mut hdr = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&pcap, hdr)?;
    data.import(&pcap)?;
    let out = std::process::Command::new(&bin)
        .args(["analyze", "--data"])
        .arg(&data.dir)
        .arg("--config")
        .arg(&data.config)
        .output()?;
    ensure!(out.status.success(), "analyze failed: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(stderr.contains(&at), "analyze stderr: {stderr}");
    let status: Value = serde_json::from_str(&data.kuroko("status", &["--format", "json"])?)?;
    let y = &status["yara"];
    assert_eq!(y["in_force"], false, "{y:#}");
    ensure!(y["error"].as_str().unwrap_or("").contains(&at), "{y:#}");

    // An intel pack that carries the same broken rules is refused whole, naming the file
    // as the pack does (`yara/broken.yar:5:`), and nothing of it is installed.
    let pack = data
        .dir
        .parent()
        .context("parent")?
        .join("pack-broken-yara");
    std::fs::create_dir_all(pack.join("yara"))?;
    std::fs::copy(&bad, pack.join("yara/broken.yar"))?;
    std::fs::write(
        pack.join("ipblocklist.csv"),
        "################################################################\n\
         # abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #\n\
         ################################################################\n\
         # \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
         \"2026-11-01 10:00:00\",\"203.0.113.66\",\"443\",\"online\",\"2026-11-30\",\"Emotet\"\n",
    )?;
    let import = std::process::Command::new(&bin)
        .args(["intel", "--data"])
        .arg(&data.dir)
        .arg("--config")
        .arg(&data.config)
        .arg("import")
        .arg(&pack)
        .output()?;
    ensure!(
        !import.status.success(),
        "the pack was imported: {import:?}"
    );
    let err = String::from_utf8_lossy(&import.stderr);
    ensure!(
        err.contains("yara/broken.yar:5:") && err.contains("nothing was imported"),
        "{err}"
    );
    let list = std::process::Command::new(&bin)
        .args(["intel", "--data"])
        .arg(&data.dir)
        .args(["list"])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&list.stdout).contains("no intel packs installed"),
        "{list:?}"
    );
    Ok(())
}

/// `kuroko yara recheck --data DIR --config FILE`.
fn yara_recheck(data: &DataDir) -> anyhow::Result<String> {
    let out = std::process::Command::new(kuroko_tests::kuroko::binary()?)
        .args(["yara", "recheck", "--data"])
        .arg(&data.dir)
        .arg("--config")
        .arg(&data.config)
        .output()?;
    ensure!(out.status.success(), "yara recheck failed: {out:?}");
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Retro-hunt with YARA: a marked file downloaded and analyzed while no rule knows it,
/// the rule added afterwards. The next analysis re-scans the stored files by itself: the
/// marked download becomes one `yara_match` finding with the session's own time and the
/// re-check wording, its twin none; a second run and a hand `kuroko yara recheck` add
/// nothing; `status` says what the re-check did.
#[test]
fn a_rule_added_after_the_traffic_finds_the_stored_file_once_with_its_original_time()
-> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    let site = Site::new()?;
    let data = DataDir::new("yara-recheck", CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("parent")?
        .join("yara-recheck.pcap");
    let www = site.work_dir().join("www");
    std::fs::create_dir_all(&www)?;
    file_with(&www.join("setup.exe"), 90_000, 21, Some(DROPPER_MARK))?;
    file_with(&www.join("twin.exe"), 90_000, 23, None)?;
    let mut web = site.serve(
        EXT,
        "http",
        "tcp",
        80,
        &[
            PYTHON,
            "-m",
            "http.server",
            "80",
            "--bind",
            EXT.ip,
            "--directory",
            www.to_str().context("utf-8")?,
        ],
    )?;
    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        for f in ["setup.exe", "twin.exe"] {
            site.sh(
                PC,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "20",
                    "-o",
                    "/dev/null",
                    &format!("http://{}/{f}", EXT.ip),
                ],
                30,
            )?;
        }
        Ok(())
    })();
    rec.stop()?;
    web.stop();
    traffic?;
    data.import(&pcap)?;
    data.analyze()?;
    let yara_findings = |data: &DataDir| -> anyhow::Result<Vec<Value>> {
        Ok(data
            .findings_en()?
            .into_iter()
            .filter(|f| f["rule"] == "yara_match")
            .collect())
    };
    ensure!(yara_findings(&data)?.is_empty(), "no rule yet, no finding");
    let log = data.session_log()?;
    let download = log
        .iter()
        .find(|s| s["files"].to_string().contains("setup.exe"))
        .context("the marked download in the log")?;

    // Day 9: the rule arrives. The next analysis (nothing new to analyze) re-checks.
    with_rules(&data, "late.yar", RULES)?;
    data.analyze()?;
    let f = yara_findings(&data)?;
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["count"], 1, "{:#}", f[0]);
    assert_eq!(f[0]["server"], EXT.ip);
    assert_eq!(f[0]["risk"], "A", "the rule's level");
    assert_eq!(f[0]["first_seen"], download["start"], "the original time");
    assert_eq!(f[0]["evidence"], serde_json::json!([download["id"]]));
    let signals = f[0]["signals"].to_string();
    ensure!(
        signals.contains("setup.exe")
            && signals.contains("Kuroko_Test_Dropper")
            && signals
                .contains("found on a re-check of the stored files after the YARA rule update of"),
        "{signals}"
    );
    let status: Value = serde_json::from_str(&data.kuroko("status", &["--format", "json"])?)?;
    let y = &status["yara"];
    assert_eq!(y["recheck_pending"], 0, "{y:#}");
    assert_eq!(y["last_recheck"]["sessions_with_hits"], 1, "{y:#}");
    ensure!(
        y["last_recheck"]["files_scanned"].as_u64() >= Some(2),
        "both downloads scanned again: {y:#}"
    );

    // Nothing twice: another analysis, then a hand re-check of every rule.
    data.analyze()?;
    let out = yara_recheck(&data)?;
    ensure!(out.contains("re-checked"), "{out}");
    let f = yara_findings(&data)?;
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["count"], 1, "{:#}", f[0]);
    Ok(())
}
