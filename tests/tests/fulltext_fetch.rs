//! Full-text search of mail fetched from a mailbox and of a file uploaded over FTP, with
//! real servers and clients on the test site: dovecot (our own instance,
//! `kuroko_tests::dovecot`) holds two Japanese mails written by Python's `email` package
//! (one ISO-2022-JP, one Shift_JIS in base64); Python's `poplib` fetches the first over
//! POP3 and `imaplib` the second over IMAP; Python's `ftplib` uploads a UTF-8 text file
//! to pyftpdlib. The mirror port is recorded, imported and analyzed by `kuroko`.
//!
//! Each phrase is found by a phrase query in exactly the session that carried it (the
//! POP3 session, the IMAP session, the FTP data channel of the upload), checked against
//! what Python's `email` package reads from the same mails; phrases that share characters
//! with them are not found.
//!
//! Needs root, dovecot (`dovecot-imapd`, `dovecot-pop3d`) and pyftpdlib
//! (`python3-pyftpdlib`).

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{FILES, MAIL, PC, Site};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";
const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";
const USER: &str = "hanako";
const PASSWORD: &str = "kuroko-test-pw";

/// The phrase of each mail's body, the FTP file's, and look-alikes found nowhere.
const POP3_PHRASE: &str = "お客様の口座が一時的に凍結されました";
const IMAP_PHRASE: &str = "今月分の請求書を添付にてお送りします";
const FTP_PHRASE: &str = "第3四半期の売上報告書";
const ABSENT: &[&str] = &[
    "お客様の口座番号",
    "来月分の請求書",
    "第4四半期",
    "売上報告会",
];

/// Writes the two mails with Python's email package (argv: out dir); prints the body
/// text the package reads back from each file.
const MAKE_MAILS: &str = r#"
import sys, email, email.message, email.policy, email.utils
out = sys.argv[1]
def mail(tag, subject, body, charset, cte):
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m['From'] = 'support@bank.example'
    m['To'] = 'hanako@corp.example'
    m['Subject'] = subject
    m['Date'] = email.utils.formatdate(1795219200)
    m['Message-ID'] = '<' + tag + '@bank.example>'
    m['X-KT'] = tag
    m.set_content(body, charset=charset, cte=cte)
    path = out + '/' + tag + '.eml'
    open(path, 'wb').write(m.as_bytes())
    back = email.message_from_binary_file(open(path, 'rb'), policy=email.policy.default)
    print(tag, back.get_body().get_content().strip())
mail('pop3', '【重要】口座凍結のお知らせ',
     'お客様の口座が一時的に凍結されました。\nご本人確認をお願いいたします。\n',
     'iso-2022-jp', '7bit')
mail('imap', '請求書送付の件',
     '今月分の請求書を添付にてお送りします。\nお支払い期限は月末です。\n',
     'shift_jis', 'base64')
"#;

/// POP3: finds the message tagged `pop3` by its headers (TOP n 0) and retrieves it.
const POP3_FETCH: &str = r#"
import poplib, sys
p = poplib.POP3(sys.argv[1], 110, timeout=20)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
n = len(p.list()[1])
for i in range(1, n + 1):
    if any(l.strip() == b'X-KT: pop3' for l in p.top(i, 0)[1]):
        r = p.retr(i)
        print('retr', i, len(r[1]))
p.quit()
"#;

/// IMAP: finds the message tagged `imap` by its X-KT header and fetches it whole.
const IMAP_FETCH: &str = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=20)
m.login(sys.argv[2], sys.argv[3])
m.select('INBOX', readonly=True)
t, d = m.search(None, 'HEADER', 'X-KT', 'imap')
for i in d[0].split():
    t, body = m.fetch(i, '(BODY.PEEK[])')
    print('fetch', i.decode(), len(body[0][1]))
m.logout()
"#;

/// FTP: uploads argv[2] as 売上報告.txt with ftplib (binary mode, passive).
const FTP_UPLOAD: &str = r#"
import ftplib, sys
f = ftplib.FTP(sys.argv[1], timeout=20)
f.login('alice', 'secret')
with open(sys.argv[2], 'rb') as fh:
    print(f.storbinary('STOR report.txt', fh))
f.quit()
"#;

fn py(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(PYTHON).args(args).output()?;
    ensure!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ids and protocols of the sessions a query finds.
fn found(data: &DataDir, q: &str) -> anyhow::Result<Vec<(String, String)>> {
    let hits: Vec<Value> = data.search(q).with_context(|| format!("search {q}"))?;
    Ok(hits
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap_or("").to_string(),
                h["protocol"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}

fn dovecot(dir: &Path, mails: &Path) -> anyhow::Result<std::path::PathBuf> {
    let pop = std::fs::read(mails.join("pop3.eml"))?;
    let imap = std::fs::read(mails.join("imap.eml"))?;
    kuroko_tests::dovecot::write(
        dir,
        &kuroko_tests::dovecot::DovecotConfig {
            listen: MAIL.ip,
            user: USER,
            password: PASSWORD,
            tls: None,
            mails: &[
                ("1795219200.M1P1.kuroko", &pop),
                ("1795219201.M2P1.kuroko", &imap),
            ],
        },
    )
}

#[test]
fn mail_fetched_over_pop3_and_imap_and_an_ftp_upload_are_found_by_phrase() -> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    ensure!(
        Path::new("/usr/sbin/dovecot").exists(),
        "dovecot is missing (apt-get install dovecot-imapd dovecot-pop3d)"
    );
    py(&["-c", "import pyftpdlib"]).context("python3-pyftpdlib is missing")?;
    let site = Site::new()?;
    let data = DataDir::new("fulltext-fetch", CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("parent")?
        .join("fulltext-fetch.pcap");
    let work = site.work_dir().join("fetch");
    let mails = work.join("mails");
    std::fs::create_dir_all(&mails)?;
    let mails_s = mails.to_str().context("utf-8 path")?;
    // What Python's email package reads from the mails: the phrases are in those texts.
    let read_back = py(&["-c", MAKE_MAILS, mails_s])?;
    for (tag, phrase) in [("pop3", POP3_PHRASE), ("imap", IMAP_PHRASE)] {
        ensure!(
            read_back
                .lines()
                .any(|l| l.starts_with(tag) && l.contains(phrase)),
            "email package reads {tag}: {read_back}"
        );
    }
    let raw_pop = std::fs::read(mails.join("pop3.eml"))?;
    ensure!(
        raw_pop.windows(3).any(|w| w == b"\x1b$B"),
        "the POP3 mail is ISO-2022-JP on the wire"
    );
    let dc = work.join("dovecot");
    let conf = dovecot(&dc, &mails)?;
    let ftp_root = work.join("ftp");
    std::fs::create_dir_all(&ftp_root)?;
    let upload = work.join("report.txt");
    std::fs::write(
        &upload,
        format!("営業部各位\n\n{FTP_PHRASE}を共有します。\n前年同期比で12％増です。\n"),
    )?;
    let mut dovecot = kuroko_tests::dovecot::serve(&site, MAIL, &conf)?;
    let mut ftp = kuroko_tests::ftp::serve(&site, FILES, &ftp_root)?;
    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        let out = site.sh(PC, &[PYTHON, "-c", POP3_FETCH, MAIL.ip, USER, PASSWORD], 60)?;
        ensure!(stdout_of(&out).contains("retr"), "poplib: {out:?}");
        let out = site.sh(PC, &[PYTHON, "-c", IMAP_FETCH, MAIL.ip, USER, PASSWORD], 60)?;
        ensure!(stdout_of(&out).contains("fetch"), "imaplib: {out:?}");
        let up = upload.to_str().context("utf-8")?;
        let out = site.sh(PC, &[PYTHON, "-c", FTP_UPLOAD, FILES.ip, up], 60)?;
        ensure!(stdout_of(&out).contains("226"), "ftplib: {out:?}");
        Ok(())
    })();
    rec.stop()?;
    dovecot.stop();
    ftp.stop();
    traffic.with_context(|| format!("dovecot log:\n{}", kuroko_tests::dovecot::log(&dc)))?;
    ensure!(
        std::fs::read(ftp_root.join("report.txt"))? == std::fs::read(&upload)?,
        "the server has the file"
    );
    data.import(&pcap)?;
    data.analyze()?;

    let pop = found(&data, &format!("body:\"{POP3_PHRASE}\""))?;
    ensure!(pop.len() == 1 && pop[0].1 == "pop3", "POP3 phrase: {pop:?}");
    let imap = found(&data, &format!("body:\"{IMAP_PHRASE}\""))?;
    ensure!(
        imap.len() == 1 && imap[0].1 == "imap",
        "IMAP phrase: {imap:?}"
    );
    // The file went over the FTP data channel of alice's session.
    let up = found(&data, &format!("content:\"{FTP_PHRASE}\""))?;
    ensure!(
        up.len() == 1 && up[0].1.starts_with("ftp"),
        "FTP phrase: {up:?}"
    );
    let session = data
        .session_log()?
        .into_iter()
        .find(|s| s["id"] == up[0].0.as_str())
        .context("the FTP hit is in the session log")?;
    let names: Vec<&str> = session["files"]
        .as_array()
        .map(|v| v.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        names.iter().any(|n| n.ends_with("report.txt")),
        "the hit session carried report.txt: {session}"
    );
    eprintln!(
        "body: of the FTP text finds {:?}",
        found(&data, &format!("body:\"{FTP_PHRASE}\""))?
    );
    ensure!(found(&data, &format!("content:\"{POP3_PHRASE}\""))? == pop);
    ensure!(found(&data, &format!("content:\"{IMAP_PHRASE}\""))? == imap);
    // A bare phrase searches content too.
    ensure!(found(&data, &format!("\"{FTP_PHRASE}\""))? == up);
    for absent in ABSENT {
        let hits = found(&data, &format!("content:\"{absent}\""))?;
        ensure!(hits.is_empty(), "{absent} is in no text: {hits:?}");
    }
    Ok(())
}
