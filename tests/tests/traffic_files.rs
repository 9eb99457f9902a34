//! Files and mail as real clients send them, each checked against tshark on the same pcap
//! and against the bytes that were sent. One site, one recording:
//!
//! - curl `-F a=@report.pdf -F b=@notes.txt` to a Python HTTP server on the files host:
//!   one object per form part, with its file name, content type and bytes; searchable
//!   by `file:` like mail attachments;
//! - the same server answering with `Content-Encoding: br` and `zstd` (pip `brotli`,
//!   `zstandard`), fetched with `curl --compressed`: objects decoded;
//! - `curl --tcp-fastopen` with TFO forced on in both namespaces (no cookie needed): the
//!   request rides in the SYN and is parsed;
//! - swaks with three `--attach` (binary, text, and a `message/rfc822` .eml that carries
//!   its own attachment) to aiosmtpd: every attachment, the nested one too;
//! - that mail fetched from dovecot with poplib and imaplib (a refused login first):
//!   `mail.commands` verbs and statuses as tshark decodes them, no password kept.
//!
//! Needs root, swaks, python3-aiosmtpd, dovecot, tshark, curl, and pip brotli/zstandard
//! for Debian's python3 (.ci/pip.txt).

use anyhow::{Context, ensure};
use kuroko_tests::dovecot::{self, DovecotConfig};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{FILES, MAIL, PC, Site};
use kuroko_tests::truth::{random_file, sha256_file, stored_object_sha, tshark};
use serde_json::Value;
use std::path::Path;

const PYTHON: &str = "/usr/bin/python3";
const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";
const USER: &str = "hanako";
const PASSWORD: &str = "kuroko-files-pw";
const PORT: u16 = 8000;

/// The web server: POST stores nothing and answers 200; `/br` and `/zstd` serve a file of
/// the www directory compressed with that coding; anything else is served as is.
const WEB_SERVER: &str = r#"
import sys, http.server, brotli, zstandard
root = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('Content-Length', '0'))
        self.rfile.read(n)
        self.reply(b'stored\n', 'text/plain', None)
    def do_GET(self):
        if self.path == '/br':
            body = brotli.compress(open(root + '/page.html', 'rb').read())
            self.reply(body, 'text/html; charset=utf-8', 'br')
        elif self.path == '/zstd':
            body = zstandard.ZstdCompressor().compress(open(root + '/data.txt', 'rb').read())
            self.reply(body, 'text/plain', 'zstd')
        else:
            self.reply(open(root + self.path, 'rb').read(), 'text/plain', None)
    def reply(self, body, ctype, enc):
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        if enc:
            self.send_header('Content-Encoding', enc)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer((sys.argv[1], 8000), H).serve_forever()
"#;

fn files_of<'a>(s: &'a Value, kind: &str) -> Vec<&'a Value> {
    s["files"]
        .as_array()
        .map(|f| f.iter().filter(|f| f["kind"] == kind).collect())
        .unwrap_or_default()
}

fn http_session<'a>(sessions: &'a [Value], path: &str) -> anyhow::Result<&'a Value> {
    let v: Vec<&Value> = sessions
        .iter()
        .filter(|s| s["http"]["url"].as_str().is_some_and(|u| u.ends_with(path)))
        .collect();
    ensure!(v.len() == 1, "one HTTP session for {path}: {v:#?}");
    Ok(v[0])
}

/// `(name, sha256)` of a session's attachments, sorted.
fn attachment_names(list: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["name"].as_str().unwrap_or("").to_string(),
                        x["sha256"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The verbs and statuses of `mail.commands`.
fn mail_commands(s: &Value) -> Vec<(String, String, String)> {
    s["mail"]["commands"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    (
                        c["verb"].as_str().unwrap_or("").to_string(),
                        c["arg"].as_str().unwrap_or("").to_string(),
                        c["status"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn uploads_encodings_fast_open_attachments_and_mail_commands_match_what_was_sent()
-> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    for tool in ["/usr/bin/swaks", "/usr/sbin/dovecot", "/usr/bin/curl"] {
        ensure!(
            Path::new(tool).exists(),
            "{tool} is missing (see .ci/packages.txt)"
        );
    }
    let py_ok = std::process::Command::new(PYTHON)
        .args(["-c", "import brotli, zstandard, aiosmtpd"])
        .status()?;
    ensure!(
        py_ok.success(),
        "{PYTHON} lacks brotli/zstandard (.ci/pip.txt) or aiosmtpd (python3-aiosmtpd)"
    );
    let site = Site::new()?;
    let work = site.work_dir().to_path_buf();
    let data = DataDir::new("traffic-files", CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("data dir has a parent")?
        .join("files.pcap");

    // What is sent.
    let www = work.join("www");
    std::fs::create_dir_all(&www)?;
    let pdf = work.join("report.pdf");
    let pdf_sha = random_file(&pdf, 40_000, 14)?;
    let txt = work.join("notes.txt");
    std::fs::write(&txt, "upload notes: 四半期の数字\n".repeat(40))?;
    let txt_sha = sha256_file(&txt)?;
    let page = "<html><head><title>Brotli page</title></head><body>".to_string()
        + &"compressible text ".repeat(500)
        + "</body></html>";
    std::fs::write(www.join("page.html"), &page)?;
    let page_sha = sha256_file(&www.join("page.html"))?;
    std::fs::write(www.join("data.txt"), "zstd line\n".repeat(2000))?;
    let data_sha = sha256_file(&www.join("data.txt"))?;
    std::fs::write(www.join("tfo.txt"), "fast open body\n")?;
    let tfo_sha = sha256_file(&www.join("tfo.txt"))?;
    let bin = work.join("a.bin");
    let bin_sha = random_file(&bin, 30_000, 41)?;
    let note = work.join("b.txt");
    std::fs::write(&note, "plain text attachment\n")?;
    let note_sha = sha256_file(&note)?;
    let inner = work.join("inner.pdf");
    let inner_sha = random_file(&inner, 5_000, 7)?;
    let fwd = work.join("fwd.eml");
    let mk_fwd = "import sys, email.message, email.policy\n\
                  m = email.message.EmailMessage()\n\
                  m['From'] = 'boss@corp.example'; m['To'] = 'taro@corp.example'\n\
                  m['Subject'] = 'forwarded plan'\n\
                  m.set_content('see the plan\\n')\n\
                  m.add_attachment(open(sys.argv[1], 'rb').read(), maintype='application', \
                  subtype='pdf', filename='inner.pdf')\n\
                  open(sys.argv[2], 'wb').write(m.as_bytes(policy=email.policy.SMTP))\n";
    kuroko_tests::proc::sh_in(
        "",
        &[
            PYTHON,
            "-c",
            mk_fwd,
            inner.to_str().context("utf-8")?,
            fwd.to_str().context("utf-8")?,
        ],
        30,
    )?;
    let fwd_sha = sha256_file(&fwd)?;
    let swaks_mail = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "swaks",
            "--from",
            "taro@corp.example",
            "--to",
            "hanako@corp.example",
            "--helo",
            "pc.corp.example",
            "--header",
            "Subject: three attachments",
            "--attach",
            bin.to_str().unwrap_or_default(),
            "--attach-type",
            "text/plain",
            "--attach",
            note.to_str().unwrap_or_default(),
            "--attach-type",
            "message/rfc822",
            "--attach",
            fwd.to_str().unwrap_or_default(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // The same mail waits in the dovecot mailbox (swaks writes it without sending).
    let dump = swaks_mail(&["--server", "127.0.0.1", "--dump-mail"]);
    let dump: Vec<&str> = dump.iter().map(String::as_str).collect();
    let mailbox_mail = kuroko_tests::proc::sh_in("", &dump, 30)?.stdout;
    ensure!(
        String::from_utf8_lossy(&mailbox_mail).contains("fwd.eml"),
        "swaks --dump-mail"
    );

    // Servers.
    let _web = site.serve(
        FILES,
        "web",
        "tcp",
        PORT,
        &[
            PYTHON,
            "-c",
            WEB_SERVER,
            FILES.ip,
            www.to_str().context("utf-8")?,
        ],
    )?;
    // TCP Fast Open in both namespaces, without cookies: the first connection already
    // carries its request in the SYN (client 0x1|0x4; server 0x2|0x200|0x400, the
    // latter so that a listener without TCP_FASTOPEN takes it too).
    site.sh(PC, &["sysctl", "-qw", "net.ipv4.tcp_fastopen=5"], 10)?;
    site.sh(FILES, &["sysctl", "-qw", "net.ipv4.tcp_fastopen=1538"], 10)?;
    let smtpd = format!(
        "import time\n\
         from aiosmtpd.controller import Controller\n\
         from aiosmtpd.handlers import Sink\n\
         c = Controller(Sink(), hostname='{ip}', port=25)\n\
         c.start()\n\
         while True: time.sleep(3600)\n",
        ip = MAIL.ip
    );
    let _smtp = site.serve(MAIL, "aiosmtpd", "tcp", 25, &[PYTHON, "-c", &smtpd])?;
    let dc = work.join("dovecot");
    let dconf = dovecot::write(
        &dc,
        &DovecotConfig {
            listen: MAIL.ip,
            user: USER,
            password: PASSWORD,
            tls: None,
            mails: &[("1700000000.M1P1.kuroko", &mailbox_mail)],
        },
    )?;
    let mut dovecot = kuroko_tests::dovecot::serve(&site, MAIL, &dconf)?;

    // Clients, recorded on the mirror port.
    let rec = Recorder::start(&site, &pcap)?;
    let base = format!("http://{}:{PORT}", FILES.ip);
    let traffic = (|| -> anyhow::Result<()> {
        let form_a = format!("a=@{}", pdf.display());
        let form_b = format!("b=@{};type=text/plain", txt.display());
        let up = format!("{base}/upload");
        site.sh(
            PC,
            &[
                "curl",
                "-sS",
                "--max-time",
                "15",
                "-F",
                &form_a,
                "-F",
                &form_b,
                &up,
            ],
            30,
        )?;
        for path in ["/br", "/zstd"] {
            let out = site.sh(
                PC,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "15",
                    "--compressed",
                    &format!("{base}{path}"),
                ],
                30,
            )?;
            ensure!(!out.stdout.is_empty(), "curl {path}: {out:?}");
        }
        let out = site.sh(
            PC,
            &[
                "curl",
                "-sS",
                "--max-time",
                "15",
                "--tcp-fastopen",
                &format!("{base}/tfo.txt"),
            ],
            30,
        )?;
        ensure!(
            String::from_utf8_lossy(&out.stdout).contains("fast open body"),
            "curl --tcp-fastopen: {out:?}"
        );
        let send = swaks_mail(&["--server", MAIL.ip]);
        let send: Vec<&str> = send.iter().map(String::as_str).collect();
        site.sh(PC, &send, 60)?;
        let py = "import imaplib, poplib, sys\n\
                  p = poplib.POP3(sys.argv[1], 110, timeout=20)\n\
                  p.user(sys.argv[2])\n\
                  try:\n    p.pass_('wrong-' + sys.argv[3])\n\
                  except poplib.error_proto:\n    pass\n\
                  p.user(sys.argv[2]); p.pass_(sys.argv[3])\n\
                  p.stat(); p.list(); p.retr(1)\n\
                  p.quit()\n\
                  m = imaplib.IMAP4(sys.argv[1], 143, timeout=20)\n\
                  try:\n    m.login(sys.argv[2], 'wrong-' + sys.argv[3])\n\
                  except imaplib.IMAP4.error:\n    pass\n\
                  m.login(sys.argv[2], sys.argv[3])\n\
                  m.select('INBOX')\n\
                  m.fetch('1', '(BODY.PEEK[])')\n\
                  m.logout()\n";
        site.sh(PC, &[PYTHON, "-c", py, MAIL.ip, USER, PASSWORD], 60)?;
        Ok(())
    })();
    rec.stop()?;
    dovecot.stop();
    traffic.with_context(|| format!("dovecot log:\n{}", dovecot::log(&dc)))?;

    data.import(&pcap)?;
    data.analyze()?;
    let sessions = data.session_log()?;
    let mut problems: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };

    // 1. multipart/form-data: one object per file part, names as tshark reads the parts.
    let up = http_session(&sessions, "/upload")?;
    let mut parts: Vec<(String, String, String)> = files_of(up, "http-body")
        .iter()
        .filter(|f| f["direction"] == "upload")
        .map(|f| {
            (
                f["name"].as_str().unwrap_or("").to_string(),
                f["sha256"].as_str().unwrap_or("").to_string(),
                f["content_type"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    parts.sort();
    check(
        parts
            == vec![
                (
                    "notes.txt".to_string(),
                    txt_sha.clone(),
                    "text/plain".to_string(),
                ),
                (
                    "report.pdf".to_string(),
                    pdf_sha.clone(),
                    "application/pdf".to_string(),
                ),
            ],
        format!("multipart parts {parts:?}"),
    );
    let t_disp = tshark(
        &pcap,
        "http.request.method == \"POST\"",
        &["mime_multipart.header.content-disposition"],
    )?;
    let t_names: Vec<String> = t_disp
        .iter()
        .flat_map(|r| r.iter().flat_map(|c| c.split(',')))
        .filter_map(|d| {
            d.split("filename=\"")
                .nth(1)
                .and_then(|x| x.split('"').next())
                .map(str::to_string)
        })
        .collect();
    let mut k_names: Vec<String> = parts.iter().map(|p| p.0.clone()).collect();
    let mut t_sorted = t_names.clone();
    t_sorted.sort();
    k_names.sort();
    check(
        k_names == t_sorted,
        format!("part names {k_names:?} vs tshark {t_disp:?}"),
    );
    for (name, sha) in [("report.pdf", &pdf_sha), ("notes.txt", &txt_sha)] {
        let hits = data.search(&format!("file:\"{name}\" AND protocol:http"))?;
        check(
            hits.len() == 1,
            format!("file:{name} finds the upload: {hits:#?}"),
        );
        check(
            stored_object_sha(&data, sha).ok().as_deref() == Some(sha.as_str()),
            format!("{name} stored byte-identical"),
        );
    }

    // 2. br and zstd bodies, decoded; tshark says they were sent encoded.
    for (path, coding, sha) in [("/br", "br", &page_sha), ("/zstd", "zstd", &data_sha)] {
        let s = http_session(&sessions, path)?;
        let t_enc = tshark(
            &pcap,
            &format!("http.response && tcp.dstport == {}", s["client"]["port"]),
            &["http.content_encoding"],
        )?;
        check(
            t_enc.len() == 1 && t_enc[0][0] == coding,
            format!("tshark content encoding for {path}: {t_enc:?}"),
        );
        let bodies = files_of(s, "http-body");
        check(
            bodies.len() == 1 && bodies[0]["sha256"] == sha.as_str(),
            format!("{path}: decoded body {sha} vs {bodies:#?}"),
        );
        check(
            !s["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "http_encoding_unsupported")),
            format!("{path} flags {}", s["flags"]),
        );
    }
    let br = http_session(&sessions, "/br")?;
    check(
        br["http"]["transactions"][0]["title"] == "Brotli page",
        format!("title of the br page: {}", br["http"]),
    );

    // 3. TCP Fast Open: tshark sees the request in the SYN; the session parsed it.
    let t_syn = tshark(
        &pcap,
        &format!(
            "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.len > 0 && tcp.dstport == {PORT}"
        ),
        &["tcp.srcport", "tcp.len"],
    )?;
    ensure!(t_syn.len() == 1, "tshark: one SYN with data: {t_syn:?}");
    let tfo = http_session(&sessions, "/tfo.txt")?;
    check(
        tfo["client"]["port"]
            .as_u64()
            .map(|p| p.to_string())
            .as_deref()
            == Some(t_syn[0][0].as_str()),
        format!(
            "TFO session port {} vs tshark {:?}",
            tfo["client"]["port"], t_syn[0]
        ),
    );
    check(
        tfo["http"]["method"] == "GET" && tfo["http"]["status"] == 200,
        format!("TFO request parsed: {}", tfo["http"]),
    );
    check(
        tfo["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "tcp_fast_open")),
        format!("TFO flags {}", tfo["flags"]),
    );
    let tfo_body = files_of(tfo, "http-body");
    check(
        tfo_body.len() == 1 && tfo_body[0]["sha256"] == tfo_sha.as_str(),
        format!("TFO response body: {tfo_body:#?}"),
    );

    // 4. Several attachments and a nested mail: over SMTP, POP3 and IMAP alike.
    let want = {
        let mut w = vec![
            ("a.bin".to_string(), bin_sha.clone()),
            ("b.txt".to_string(), note_sha.clone()),
            ("fwd.eml".to_string(), fwd_sha.clone()),
            ("inner.pdf".to_string(), inner_sha.clone()),
        ];
        w.sort();
        w
    };
    let t_mail_parts = tshark(
        &pcap,
        "smtp.data.fragment || imf",
        &["mime_multipart.header.content-disposition"],
    )?;
    let t_att: Vec<String> = t_mail_parts
        .iter()
        .flat_map(|r| r.iter().flat_map(|c| c.split(',')))
        .filter_map(|d| {
            d.split("filename=\"")
                .nth(1)
                .and_then(|x| x.split('"').next())
                .map(str::to_string)
        })
        .collect();
    for name in ["a.bin", "b.txt", "fwd.eml"] {
        check(
            t_att.iter().any(|n| n == name),
            format!("tshark lists attachment {name}: {t_mail_parts:?}"),
        );
    }
    for proto in ["smtp", "pop3", "imap"] {
        let v: Vec<&Value> = sessions
            .iter()
            .filter(|s| s["protocol"] == proto && s["mail"]["subject"] == "three attachments")
            .collect();
        if v.len() != 1 {
            check(false, format!("{proto}: one session with the mail: {v:#?}"));
            continue;
        }
        let got = attachment_names(&v[0]["mail"]["attachments"]);
        check(
            got == want,
            format!("{proto} attachments {got:?} vs {want:?}"),
        );
    }
    for (_, sha) in &want {
        check(
            stored_object_sha(&data, sha).ok().as_deref() == Some(sha.as_str()),
            format!("attachment {sha} stored byte-identical"),
        );
    }
    let hits = data.search("file:\"inner.pdf\"")?;
    check(
        hits.len() == 3,
        format!(
            "file:inner.pdf finds the nested attachment in 3 sessions: {}",
            hits.len()
        ),
    );

    // 5. POP3 and IMAP commands: the verbs and answers tshark decodes, no password.
    for (proto, port, t_cmd, t_status) in [
        (
            "pop3",
            110u16,
            "pop.request.command",
            "pop.response.indicator",
        ),
        ("imap", 143, "imap.request.command", "imap.response.status"),
    ] {
        let v: Vec<&Value> = sessions
            .iter()
            .filter(|s| s["protocol"] == proto && s["server"]["port"] == port)
            .collect();
        ensure!(v.len() == 1, "one {proto} session: {v:#?}");
        let k = mail_commands(v[0]);
        let t_verbs: Vec<String> = tshark(
            &pcap,
            &format!("tcp.dstport == {port} && {t_cmd}"),
            &[t_cmd],
        )?
        .into_iter()
        .flat_map(|r| {
            r.into_iter()
                .flat_map(|c| c.split(',').map(str::to_uppercase).collect::<Vec<_>>())
        })
        .collect();
        let k_verbs: Vec<String> = k.iter().map(|c| c.0.clone()).collect();
        check(
            k_verbs == t_verbs,
            format!("{proto} verbs {k_verbs:?} vs tshark {t_verbs:?}"),
        );
        let t_st: Vec<String> = tshark(
            &pcap,
            &format!("tcp.srcport == {port} && {t_status}"),
            &[t_status],
        )?
        .into_iter()
        .flat_map(|r| {
            r.into_iter().flat_map(|c| {
                c.split(',')
                    .map(|x| x.trim_start_matches(['+', '-']).to_uppercase())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
        let k_st: Vec<String> = k.iter().map(|c| c.2.clone()).collect();
        // tshark also lists the greeting and untagged statuses: Kuroko's answers are
        // among its, in order.
        let mut rest = t_st.iter();
        let in_order = k_st.iter().all(|k| rest.any(|t| t == k));
        check(
            in_order && !k_st.is_empty() && k_st.iter().all(|x| !x.is_empty()),
            format!("{proto} statuses {k_st:?} vs tshark {t_st:?}"),
        );
        let auth = &v[0]["mail"]["auth"];
        check(
            auth["success"] == true && auth["failed_attempts"] == 1,
            format!("{proto} auth {auth}"),
        );
        let text = v[0].to_string();
        check(
            !text.contains(PASSWORD),
            format!("{proto}: the password is not in the record"),
        );
    }
    ensure!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    Ok(())
}
