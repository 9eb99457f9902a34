//! Alert delivery over TLS (issue 21): alert mail and syslog carry URLs and hosts of the
//! customer's traffic; on the management LAN they must not cross in clear, and a relay or
//! collector that is not the configured one (a certificate from another CA) or that does
//! not offer STARTTLS must get nothing, with the mail kept in the outbox and the reason in
//! `kuroko status` (section `alert_delivery`, alarm `alert_delivery`).
//!
//! Real servers on 127.0.0.1 (`tests/fixtures/alert_tls/servers.py`): aiosmtpd with
//! STARTTLS required and AUTH (`auth_require_tls`), the same without STARTTLS, aiosmtpd
//! with a certificate from another CA, and an RFC 5425 receiver that checks the
//! octet-counting framing. One data dir, one import of the index fixture, four ingest
//! runs (`kuroko analyze`) that move the waiting mail between relays by rewriting the
//! config. tcpdump records every port on `lo` and the capture is searched for the alert's
//! text, the envelope sender and the password; the same-run reference is a last delivery
//! of the same mail with `tls = "none"`, whose text the search does find.

use anyhow::{Context, bail, ensure};
use kuroko_tests::kuroko::{DataDir, workspace_root};
use kuroko_tests::proc::{Server, sh_in, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PYTHON: &str = kuroko_tests::scenarios::PYTHON;
const CONDITION: &str = "KurokoTlsProbe";
/// The host of the one fixture session the condition matches.
const HOST: &str = "intranet.corp.example";
const MAIL_FROM: &str = "kuroko-alerts@example.jp";
const USER: &str = "kuroko-relay";
const PASSWORD: &str = "s3cret-relay-pw";

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Two CAs: `good` signs the servers' certificate (SAN IP 127.0.0.1) the config trusts,
/// `other` signs one for the same address that must be refused.
fn make_certs(dir: &Path) -> anyhow::Result<()> {
    let script = r#"set -e
for ca in good other; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout $ca-ca.key -out $ca-ca.pem -subj "/CN=Kuroko test CA $ca" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout $ca-srv.key -out $ca-srv.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
  openssl x509 -req -in $ca-srv.csr -CA $ca-ca.pem -CAkey $ca-ca.key -CAcreateserial \
    -days 2 -extfile ext -out $ca-srv.pem 2>/dev/null
done
"#;
    sh_in(
        "",
        &["sh", "-c", &format!("cd '{}' && {script}", dir.display())],
        30,
    )?;
    Ok(())
}

/// A server of `servers.py`; its port once it listens.
fn start(dir: &Path, name: &str, args: &[&str]) -> anyhow::Result<(Server, u16, PathBuf)> {
    let script = workspace_root().join("tests/fixtures/alert_tls/servers.py");
    let portfile = dir.join(format!("{name}.port"));
    let out = dir.join(format!("{name}.jsonl"));
    let mut argv = vec![
        PYTHON,
        script.to_str().context("path")?,
        args[0],
        portfile.to_str().context("path")?,
        out.to_str().context("path")?,
    ];
    argv.extend_from_slice(&args[1..]);
    let mut server = Server::spawn(name, "", &argv, &dir.join(format!("{name}.log")))?;
    wait_until(
        &format!("{name} to listen"),
        Duration::from_secs(15),
        || std::fs::read_to_string(&portfile).is_ok_and(|s| !s.trim().is_empty()),
    )
    .map_err(|e| anyhow::anyhow!("{e}; log: {}", server.log_text()))?;
    server.ensure_running()?;
    let port = std::fs::read_to_string(&portfile)?.trim().parse()?;
    Ok((server, port, out))
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A small ring: the fixture is 90 KiB.
const STORAGE: &str = "[storage]\nbudget = \"16MiB\"\nsegment_size = \"2MiB\"\n\n";

fn config(mail_port: u16, smtp_tls: &str, syslog_port: u16, dir: &Path) -> String {
    let auth = if smtp_tls == "none" {
        String::new()
    } else {
        format!(
            "username = \"{USER}\"\npassword_file = \"{}\"\n",
            dir.join("relay.password").display()
        )
    };
    format!(
        "{STORAGE}[alerts]\nno_defaults = true\nsmtp_relay = \"127.0.0.1:{mail_port}\"\n\
         mail_from = \"{MAIL_FROM}\"\nmail_to = [\"soc@example.jp\"]\n\
         syslog = \"127.0.0.1:{syslog_port}\"\n\
         conditions = [{{ name = \"{CONDITION}\", query = 'host:\"{HOST}\" AND protocol:http' }}]\n\n\
         [alerts.smtp_transport]\ntls = \"{smtp_tls}\"\nca_file = \"{ca}\"\n{auth}\n\
         [alerts.syslog_transport]\ntls = \"tls\"\nca_file = \"{ca}\"\n",
        ca = dir.join("good-ca.pem").display(),
    )
}

fn status(data: &DataDir) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(
        &data.kuroko("status", &["--format", "json"])?,
    )?)
}

fn outbox(data: &DataDir) -> usize {
    std::fs::read_to_string(data.dir.join("alerts/outbox.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn alarm_subjects(st: &Value) -> Vec<String> {
    st["alarms"]["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["kind"] == "alert_delivery" && a["active"] == true)
        .filter_map(|a| a["subject"].as_str().map(str::to_string))
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn alerts_cross_the_wire_only_over_verified_tls() -> anyhow::Result<()> {
    kuroko_tests::netns::require_root()?;
    let mut tmp = tempfile::tempdir()?;
    if std::env::var_os("KT_KEEP").is_some() {
        tmp.disable_cleanup(true);
        eprintln!("keeping {}", tmp.path().display());
    }
    let dir = tmp.path();
    make_certs(dir)?;
    let pw = dir.join("relay.password");
    std::fs::write(&pw, format!("{PASSWORD}\n"))?;
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let (_good, good_port, good_out) = start(
        dir,
        "smtp-good",
        &[
            "smtp",
            "--starttls",
            &p("good-srv.pem"),
            &p("good-srv.key"),
            "--auth",
            USER,
            PASSWORD,
        ],
    )?;
    let (_rogue, rogue_port, rogue_out) = start(
        dir,
        "smtp-rogue",
        &[
            "smtp",
            "--starttls",
            &p("other-srv.pem"),
            &p("other-srv.key"),
        ],
    )?;
    let (_plain, plain_port, plain_out) = start(dir, "smtp-plain", &["smtp"])?;
    let (_syslog, syslog_port, syslog_out) = start(
        dir,
        "syslog-tls",
        &["syslog-tls", &p("good-srv.pem"), &p("good-srv.key")],
    )?;
    let (_rogue_syslog, rogue_syslog_port, rogue_syslog_out) = start(
        dir,
        "syslog-rogue",
        &["syslog-tls", &p("other-srv.pem"), &p("other-srv.key")],
    )?;

    let cap = dir.join("wire.pcap");
    let filter = [
        good_port,
        rogue_port,
        plain_port,
        syslog_port,
        rogue_syslog_port,
    ]
    .iter()
    .map(|p| format!("tcp port {p}"))
    .collect::<Vec<_>>()
    .join(" or ");
    let mut tcpdump = Server::spawn(
        "tcpdump",
        "",
        &[
            "tcpdump",
            "-i",
            "lo",
            "-U",
            "-n",
            "-s",
            "0",
            "-w",
            cap.to_str().unwrap(),
            &filter,
        ],
        &dir.join("tcpdump.log"),
    )?;
    wait_until("tcpdump to listen", Duration::from_secs(15), || {
        tcpdump.log_text().contains("listening on")
    })?;

    let pcap = workspace_root().join("firmware/index/tests/fixtures/scenarios.pcap");

    // Run 1: the relay's certificate comes from another CA. Nothing is sent, the mail waits,
    // status and the alarm say why. Syslog goes to the real collector over TLS.
    let data = DataDir::new(
        "alert-tls",
        &config(rogue_port, "starttls", syslog_port, dir),
    )?;
    data.import(&pcap)?;
    data.analyze()?;
    ensure!(
        outbox(&data) == 1,
        "the mail waits in the outbox after a refused relay"
    );
    ensure!(
        lines(&rogue_out).is_empty(),
        "the rogue relay received a mail"
    );
    let st = status(&data)?;
    let mail = &st["alert_delivery"]["mail"];
    ensure!(
        mail["last_error_kind"] == "tls_certificate" && mail["pending"] == 1,
        "status does not say the relay's certificate was refused: {mail}"
    );
    ensure!(mail["tls_failures"] == 1, "TLS failure not counted: {mail}");
    ensure!(
        alarm_subjects(&st) == ["mail"],
        "no alert_delivery alarm for mail: {}",
        st["alarms"]
    );
    let frames = lines(&syslog_out);
    let msgs: Vec<&Value> = frames.iter().filter(|f| f["msg"].is_string()).collect();
    ensure!(
        frames
            .iter()
            .all(|f| f.get("error").is_none() && f.get("handshake_error").is_none()),
        "the syslog receiver saw broken framing: {frames:?}"
    );
    ensure!(msgs.len() == 1, "one syslog message expected: {frames:?}");
    let m = msgs[0]["msg"].as_str().unwrap();
    ensure!(
        msgs[0]["len"].as_u64() == Some(m.len() as u64)
            && m.starts_with("<132>1 ")
            && m.contains(&format!("condition=\"{CONDITION}\""))
            && m.contains(HOST),
        "syslog frame: {m}"
    );

    // Run 2: a relay that does not offer STARTTLS: refused before MAIL FROM.
    std::fs::write(
        &data.config,
        config(plain_port, "starttls", syslog_port, dir),
    )?;
    data.analyze()?;
    ensure!(outbox(&data) == 1, "the mail still waits");
    ensure!(
        lines(&plain_out).is_empty(),
        "a relay without STARTTLS received the mail"
    );
    let mail = status(&data)?["alert_delivery"]["mail"].clone();
    ensure!(
        mail["last_error_kind"] == "policy"
            && mail["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("STARTTLS"),
        "status does not say STARTTLS is missing: {mail}"
    );
    let waiting = std::fs::read(data.dir.join("alerts/outbox.jsonl"))?;

    // Run 3: the real relay: STARTTLS, verified, AUTH; the outbox empties, the alarm clears.
    std::fs::write(
        &data.config,
        config(good_port, "starttls", syslog_port, dir),
    )?;
    data.analyze()?;
    ensure!(
        outbox(&data) == 0,
        "the mail was not delivered to the real relay"
    );
    let got = lines(&good_out);
    ensure!(got.len() == 1, "one mail expected at the relay: {got:?}");
    ensure!(
        got[0]["tls"] == true && got[0]["auth"] == USER && got[0]["mail_from"] == MAIL_FROM,
        "mail not over TLS with AUTH: {}",
        got[0]
    );
    let st = status(&data)?;
    ensure!(
        st["alert_delivery"]["mail"]["failing_since"].is_null(),
        "mail still failing: {}",
        st["alert_delivery"]
    );
    ensure!(
        alarm_subjects(&st).is_empty(),
        "alarm not cleared: {}",
        st["alarms"]
    );
    // A line of the body's base64, as it crossed the wire.
    let data_text = got[0]["data"].as_str().unwrap_or("");
    let body_line = data_text
        .split("\r\n\r\n")
        .nth(1)
        .or_else(|| data_text.split("\n\n").nth(1))
        .and_then(|b| b.lines().next())
        .context("no body in the received mail")?
        .to_string();
    ensure!(body_line.len() >= 40, "body line `{body_line}`");

    // Syslog to a collector with another CA's certificate: refused, counted, alarmed.
    std::fs::write(
        &data.config,
        config(good_port, "starttls", rogue_syslog_port, dir),
    )?;
    std::fs::remove_dir_all(data.dir.join("index"))?; // re-evaluate the conditions
    std::fs::remove_file(data.dir.join("alerts/alerts.jsonl"))?;
    data.analyze()?;
    ensure!(
        lines(&rogue_syslog_out)
            .iter()
            .all(|f| f.get("msg").is_none()),
        "the rogue collector got a message"
    );
    let st = status(&data)?;
    ensure!(
        st["alert_delivery"]["syslog"]["last_error_kind"] == "tls_certificate"
            && alarm_subjects(&st).contains(&"syslog".to_string()),
        "syslog refusal not in status: {}",
        st["alert_delivery"]
    );

    // Reference: the same mail once more, in clear, to the plain relay.
    std::fs::write(data.dir.join("alerts/outbox.jsonl"), &waiting)?;
    std::fs::write(
        &data.config,
        config(plain_port, "none", rogue_syslog_port, dir),
    )?;
    data.analyze()?;
    ensure!(
        lines(&plain_out).len() == 1,
        "reference mail not delivered in clear"
    );

    // tcpdump writes each packet as it gets it (-U), but may lag behind on a loaded
    // machine: wait for the reference's last bytes (the message's end) before stopping it.
    let _ = wait_until(
        "tcpdump to record the reference",
        Duration::from_secs(20),
        || std::fs::read(&cap).is_ok_and(|w| contains(&w, body_line.as_bytes())),
    );
    tcpdump.stop();
    let wire = std::fs::read(&cap)?;
    let plain_marks: [(&str, &[u8]); 2] = [
        ("body line", body_line.as_bytes()),
        ("envelope sender", MAIL_FROM.as_bytes()),
    ];
    for (what, needle) in plain_marks {
        ensure!(
            contains(&wire, needle),
            "reference: the {what} sent in clear is not in the capture; the search is blind"
        );
    }
    // Everything before the reference run went over TLS: the reference's bytes are on the
    // plain relay's port only. Check each TLS port's stream alone.
    for port in [good_port, rogue_port, syslog_port, rogue_syslog_port] {
        let out = sh_in(
            "",
            &[
                "tcpdump",
                "-r",
                cap.to_str().unwrap(),
                "-n",
                "-w",
                "-",
                &format!("tcp port {port}"),
            ],
            30,
        )?;
        let bytes = out.stdout;
        for (what, needle) in [
            ("condition", CONDITION.as_bytes().to_vec()),
            ("host", HOST.as_bytes().to_vec()),
            ("body line", body_line.as_bytes().to_vec()),
            ("envelope sender", MAIL_FROM.as_bytes().to_vec()),
            ("password", PASSWORD.as_bytes().to_vec()),
            (
                "AUTH PLAIN token",
                b64(format!("\0{USER}\0{PASSWORD}").as_bytes()).into_bytes(),
            ),
        ] {
            if contains(&bytes, &needle) {
                bail!("the {what} crossed port {port} in clear");
            }
        }
    }
    Ok(())
}
