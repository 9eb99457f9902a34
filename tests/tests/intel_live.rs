//! Threat-intel packs against real clients in the test site (issue 18): curl fetches a file
//! from an outside web server under a host name and URL that URLhaus and ThreatFox list
//! (and whose SHA-256 ThreatFox lists), curl reaches an address Feodo Tracker lists, and
//! `openssl s_client` talks TLS 1.2 to an `openssl s_server` whose certificate SHA-1 is on
//! the SSLBL; the negative twins (an inside web server and a TLS server with another
//! certificate) are listed nowhere. The feeds are written in each publisher's format.
//!
//! One recording, two data directories:
//! - retro-hunt: traffic analyzed first with no intel, the pack imported afterwards: the
//!   re-check finds every listed session once, the finding keeps the session's own time
//!   and says it was found on a re-check after the intel update; a second run and a hand
//!   `kuroko intel recheck` add nothing;
//! - live: the pack imported first: the session records carry `intel` hits, `intel:feodo`
//!   and `intel:*` search them, the finding `intel_match` names the feed.
//!
//! Needs root, curl, openssl, python3.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::{DataDir, site_config};
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{BAD, EXT, GATEWAY as GW, PC, Site};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const PAYLOAD: &[u8] = b"MZ this stands for a malware download in the intel test\n";

fn sh(argv: &[&str], dir: &Path) -> anyhow::Result<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .output()?;
    ensure!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cert(dir: &Path, name: &str) -> anyhow::Result<String> {
    sh(
        &[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
        dir,
    )?;
    let fp = sh(
        &[
            "openssl",
            "x509",
            "-in",
            &format!("{name}.pem"),
            "-noout",
            "-fingerprint",
            "-sha1",
        ],
        dir,
    )?;
    Ok(fp
        .trim()
        .rsplit('=')
        .next()
        .context("fingerprint")?
        .replace(':', "")
        .to_lowercase())
}

/// SHA-256 of the bytes, by coreutils' `sha256sum`.
fn sha256_hex(b: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b)
        .expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The pack: publisher formats with their header comments.
fn write_pack(dir: &Path, cert_sha1: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("ipblocklist.csv"),
        format!(
            "################################################################\n\
             # abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #\n\
             # Last updated: 2026-12-06 08:05:04 UTC                        #\n\
             ################################################################\n\
             #\n\
             # \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
             \"2026-11-17 07:44:46\",\"{}\",\"80\",\"online\",\"2026-12-06\",\"Dridex\"\n\
             # Number of entries: 1\n",
            BAD.ip
        ),
    )?;
    std::fs::write(
        dir.join("csv.txt"),
        "################################################################\n\
         # abuse.ch URLhaus Database Dump (CSV - recent URLs only)      #\n\
         # Last updated: 2026-12-06 08:02:05 UTC                        #\n\
         ################################################################\n\
         #\n\
         # id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
         \"2748391\",\"2026-12-06 08:01:07\",\"http://dl.evil.example/payload.bin\",\"online\",\"2026-12-06 08:01:07\",\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/2748391/\",\"x\"\n",
    )?;
    std::fs::write(
        dir.join("full.csv"),
        format!(
            "################################################################\n\
             # ThreatFox IOCs: full data dump (CSV)                         #\n\
             # Last updated: 2026-12-06 10:00:00 UTC                        #\n\
             ################################################################\n\
             #\n\
             # \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\
             \"2026-12-01 00:00:00\", \"1\", \"evil.example\", \"domain\", \"payload_delivery\", \"win.x\", \"None\", \"X Loader\", \"\", \"75\", \"\", \"\", \"0\", \"x\"\n\
             \"2026-12-01 00:00:00\", \"2\", \"{}\", \"sha256_hash\", \"payload\", \"win.x\", \"None\", \"X Loader\", \"\", \"75\", \"\", \"\", \"0\", \"x\"\n",
            sha256_hex(PAYLOAD)
        ),
    )?;
    std::fs::write(
        dir.join("sslblacklist.csv"),
        format!(
            "################################################################\n\
             # abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints) #\n\
             # Last updated: 2026-12-06 08:00:10 UTC                        #\n\
             ################################################################\n\
             #\n\
             # Listingdate,SHA1,Listingreason\n\
             2026-12-05 10:20:28,{cert_sha1},AsyncRAT C&C\n\
             2026-12-05 10:20:29,zz,broken line\n"
        ),
    )?;
    Ok(())
}

fn intel_findings(data: &DataDir) -> anyhow::Result<Vec<Value>> {
    Ok(data
        .findings_en()?
        .into_iter()
        .filter(|f| f["rule"] == "intel_match")
        .collect())
}

#[test]
fn listed_traffic_is_found_live_and_on_a_recheck_of_the_past_and_twins_are_not()
-> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    let site = Site::new()?;
    let config = format!(
        "{}\n[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n",
        site_config("Asia/Tokyo")
    );
    let retro = DataDir::new("intel-retro", &config)?;
    let live = DataDir::new("intel-live", &config)?;
    let base = retro.dir.parent().context("parent")?.to_path_buf();
    let pcap = base.join("intel.pcap");
    let work = site.work_dir().join("intel");
    let www = work.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("payload.bin"), PAYLOAD)?;
    std::fs::write(www.join("index.html"), "<html>fine</html>\n")?;
    let listed = cert(&work, "listed")?;
    cert(&work, "clean")?;
    let pack = base.join("pack");
    write_pack(&pack, &listed)?;
    let w = www.to_str().context("utf-8")?;
    let http = |host: kuroko_tests::site::Host, name: &str| {
        site.serve(
            host,
            name,
            "tcp",
            80,
            &[
                "python3",
                "-m",
                "http.server",
                "--bind",
                host.ip,
                "--directory",
                w,
                "80",
            ],
        )
    };
    let _ext = http(EXT, "ext-http")?;
    let _gw = http(GW, "gw-http")?;
    let _bad = http(BAD, "bad-http")?;
    let tls = |host: kuroko_tests::site::Host, name: &str| {
        let (c, k) = (
            work.join(format!("{name}.pem")),
            work.join(format!("{name}.key")),
        );
        site.serve(
            host,
            &format!("tls-{name}"),
            "tcp",
            8443,
            &[
                "openssl",
                "s_server",
                "-accept",
                "8443",
                "-cert",
                c.to_str().unwrap_or(""),
                "-key",
                k.to_str().unwrap_or(""),
                "-quiet",
            ],
        )
    };
    let _tls_listed = tls(EXT, "listed")?;
    let _tls_clean = tls(GW, "clean")?;

    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        let get = |url: &str, host: &str| -> anyhow::Result<()> {
            site.sh(
                PC,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "10",
                    "-o",
                    "/dev/null",
                    "-H",
                    &format!("Host: {host}"),
                    url,
                ],
                20,
            )?;
            Ok(())
        };
        get(&format!("http://{}/payload.bin", EXT.ip), "dl.evil.example")?;
        get(&format!("http://{}/index.html", BAD.ip), "bad.example")?;
        get(&format!("http://{}/index.html", GW.ip), "www.corp.example")?;
        for host in [EXT, GW] {
            let out = site.run(
                PC,
                &[
                    "openssl",
                    "s_client",
                    "-connect",
                    &format!("{}:8443", host.ip),
                    "-tls1_2",
                    "-servername",
                    "svc.example",
                ],
                20,
            )?;
            let text = String::from_utf8_lossy(&out.stdout);
            ensure!(
                text.contains("Cipher is"),
                "s_client to {}: {text}",
                host.ip
            );
        }
        Ok(())
    })();
    rec.stop()?;
    traffic?;

    // Retro-hunt: traffic first, intel afterwards.
    retro.import(&pcap)?;
    retro.analyze()?;
    ensure!(
        intel_findings(&retro)?.is_empty(),
        "no intel yet, no intel finding"
    );
    let out = retro.kuroko("intel", &["import", pack.to_str().context("utf-8")?])?;
    ensure!(
        out.contains("sslblacklist.csv:8: `zz` is not a SHA-1"),
        "malformed line reported: {out}"
    );
    let list: Value = serde_json::from_str(&retro.kuroko("intel", &["list", "--format", "json"])?)?;
    ensure!(list[0]["indicators"] == 5, "{list}");
    let status: Value = serde_json::from_str(&retro.kuroko("status", &["--format", "json"])?)?;
    ensure!(
        status["intel"]["recheck_pending"] == 1,
        "re-check waiting: {}",
        status["intel"]
    );
    let update_date = status["intel"]["packs"][0]["imported_at"].clone();
    retro.analyze()?;
    let status: Value = serde_json::from_str(&retro.kuroko("status", &["--format", "json"])?)?;
    ensure!(
        status["intel"]["recheck_pending"] == 0,
        "{}",
        status["intel"]
    );
    ensure!(
        status["intel"]["last_recheck"]["sessions_with_hits"] == 3,
        "{}",
        status["intel"]
    );
    let found = intel_findings(&retro)?;
    let dump = serde_json::to_string_pretty(&found)?;
    let pair = |server: &str| {
        found
            .iter()
            .find(|f| f["client"] == PC.ip && f["server"] == server)
    };
    let ext = pair(EXT.ip).with_context(|| format!("finding for the outside server: {dump}"))?;
    let bad = pair(BAD.ip).with_context(|| format!("finding for the Feodo address: {dump}"))?;
    ensure!(
        pair(GW.ip).is_none() && found.len() == 2,
        "the twins are listed nowhere: {dump}"
    );
    ensure!(
        ext["count"] == 2 && bad["count"] == 1,
        "each session once: {dump}"
    );
    let signals = ext["signals"].to_string();
    for s in [
        "feed `urlhaus`",
        "`dl.evil.example/payload.bin`",
        "feed `threatfox` (pack `pack`)",
        "`evil.example`",
        &sha256_hex(PAYLOAD),
        &format!("certificate SHA-1 `{listed}` listed in feed `sslbl`"),
        "found on a re-check after the intel update of",
    ] {
        ensure!(signals.contains(s), "signal {s:?} missing: {signals}");
    }
    ensure!(
        signals.contains(update_date.as_str().unwrap_or("?")) || signals.contains("re-check"),
        "{signals}"
    );
    ensure!(
        bad["signals"]
            .to_string()
            .contains("address `192.0.2.66` listed in feed `feodo`"),
        "{bad}"
    );
    // The original session time, not the re-check's.
    let sessions = retro.session_log()?;
    let first_bad = sessions
        .iter()
        .filter(|s| s["server"]["ip"] == BAD.ip)
        .filter_map(|s| s["start"].as_str())
        .min()
        .context("BAD session")?;
    ensure!(
        bad["first_seen"].as_str() == Some(first_bad),
        "{} vs {first_bad}",
        bad["first_seen"]
    );
    // Nothing found twice: another run, then a hand re-check against every pack.
    retro.analyze()?;
    retro.kuroko("intel", &["recheck"])?;
    let again = intel_findings(&retro)?;
    ensure!(
        again
            .iter()
            .map(|f| f["count"].as_u64().unwrap_or(0))
            .sum::<u64>()
            == 3,
        "{}",
        serde_json::to_string_pretty(&again)?
    );

    // Live: intel first, traffic analyzed afterwards.
    live.kuroko("intel", &["import", pack.to_str().context("utf-8")?])?;
    live.import(&pcap)?;
    live.analyze()?;
    let tagged: Vec<Value> = live
        .session_log()?
        .into_iter()
        .filter(|s| s.get("intel").is_some())
        .collect();
    ensure!(
        tagged.iter().all(|s| s["server"]["ip"] != GW.ip),
        "twin tagged: {tagged:?}"
    );
    ensure!(live.search("intel:feodo")?.len() == 1, "intel:feodo");
    let any = live.search("intel:*")?;
    ensure!(
        any.len() == 3,
        "intel:* → {}",
        serde_json::to_string_pretty(&any)?
    );
    ensure!(
        live.search("intel:sslbl")?
            .iter()
            .all(|s| s["server"]["port"] == 8443)
    );
    let found = intel_findings(&live)?;
    ensure!(
        found.len() == 2,
        "{}",
        serde_json::to_string_pretty(&found)?
    );
    ensure!(
        !found
            .iter()
            .any(|f| f["signals"].to_string().contains("re-check")),
        "live hits are not re-check hits"
    );
    Ok(())
}
