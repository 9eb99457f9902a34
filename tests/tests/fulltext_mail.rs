//! Full-text search of what was said, with real clients on the test site: Python's
//! `smtplib` sends Japanese mails in ISO-2022-JP, Shift_JIS and UTF-8 carrying a DOCX
//! (python-docx), an XLSX (openpyxl) and a PDF (reportlab, a CID font) to aiosmtpd; swaks
//! sends a UTF-8 mail; curl posts a web form. The mirror port is recorded, imported and
//! analyzed by the `kuroko` binary, then searched with `kuroko search`.
//!
//! Each phrase put into a body or document is found by a phrase query in the session that
//! carried it; phrases that are in no mail but share characters with those that are
//! (「ご本人様」 beside 「ご本人確認」) are not found; the JSON results carry the snippet.
//! The file search (`--files`) finds each document by type, hash, size and text, judged
//! per file, linked to the session that carried it and to its bytes on disk.
//!
//! Needs root, swaks, aiosmtpd, curl and the Python libraries of `.ci/pip.txt`.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{EXT, MAIL, PC, Site};
use serde_json::Value;
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";
const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";

/// Writes the three attachments with the real libraries.
const MAKE_DOCS: &str = r#"
import sys, docx, openpyxl
from reportlab.pdfgen import canvas
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
out = sys.argv[1]
d = docx.Document()
d.add_paragraph('ご本人確認のお願い')
d.add_paragraph('Please verify your account within 24 hours.')
d.save(out + '/verify.docx')
wb = openpyxl.Workbook()
ws = wb.active
ws['A1'] = '請求書番号'
ws['B1'] = 'INV-2026-0042'
ws['A2'] = '振込先口座は下記のとおりです'
wb.save(out + '/invoice.xlsx')
pdfmetrics.registerFont(UnicodeCIDFont('HeiseiKakuGo-W5'))
c = canvas.Canvas(out + '/notice.pdf')
c.setFont('HeiseiKakuGo-W5', 12)
c.drawString(72, 760, 'パスワード再設定のご案内')
c.setFont('Helvetica', 12)
c.drawString(72, 740, 'Account suspended until confirmation')
c.save()
"#;

/// Sends the three mails with smtplib (argv: server, attachments dir).
const SEND_MAILS: &str = r#"
import sys, smtplib, email.message, email.policy
server, docs = sys.argv[1], sys.argv[2]
def mail(subject, body, charset, cte, att, maintype, subtype):
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m['From'] = 'support@bank.example'
    m['To'] = 'hanako@corp.example'
    m['Subject'] = subject
    m.set_content(body, charset=charset, cte=cte)
    m.add_attachment(open(docs + '/' + att, 'rb').read(), maintype=maintype,
                     subtype=subtype, filename=att)
    return m
def send(m):
    # One connection per mail: one session each.
    s = smtplib.SMTP(server, 25, timeout=20)
    s.send_message(m)
    s.quit()
send(mail('【重要】口座凍結のお知らせ', 'お客様の口座が凍結されました。\n添付のご案内をご確認ください。\n',
                    'iso-2022-jp', '7bit', 'verify.docx', 'application',
                    'vnd.openxmlformats-officedocument.wordprocessingml.document'))
send(mail('請求書送付の件', '今月分の請求書をお送りします。お支払い期限は月末です。\n',
                    'shift_jis', 'base64', 'invoice.xlsx', 'application',
                    'vnd.openxmlformats-officedocument.spreadsheetml.sheet'))
send(mail('パスワードの再設定', 'ＩＤとパスワードを至急ご入力ください。\n',
                    'utf-8', 'quoted-printable', 'notice.pdf', 'application', 'pdf'))
print('sent 3')
"#;

fn search(data: &DataDir, q: &str) -> anyhow::Result<Vec<Value>> {
    data.search(q).with_context(|| format!("search {q}"))
}

fn subjects(hits: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = hits
        .iter()
        .map(|h| {
            h["mail"]["subject"]
                .as_str()
                .map(str::to_string)
                .or_else(|| h["http"]["url"].as_str().map(|u| format!("http {u}")))
                .unwrap_or_else(|| h["protocol"].to_string())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn japanese_mails_attachments_and_a_form_post_are_found_by_phrase() -> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    let libs = Command::new(PYTHON)
        .args(["-c", "import docx, openpyxl, reportlab, aiosmtpd"])
        .output()?;
    ensure!(
        libs.status.success(),
        "python-docx, openpyxl, reportlab (.ci/pip.txt) and python3-aiosmtpd are needed: {}",
        String::from_utf8_lossy(&libs.stderr)
    );
    let site = Site::new()?;
    let data = DataDir::new("fulltext-mail", CONFIG)?;
    let pcap = data.dir.parent().context("parent")?.join("fulltext.pcap");
    let docs = site.work_dir().join("docs");
    std::fs::create_dir_all(&docs)?;
    let docs_s = docs.to_str().context("utf-8 path")?;
    let made = Command::new(PYTHON)
        .args(["-c", MAKE_DOCS, docs_s])
        .output()?;
    ensure!(
        made.status.success(),
        "writing the documents failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut smtp = site.serve(
        MAIL,
        "aiosmtpd",
        "tcp",
        25,
        &[PYTHON, "-m", "aiosmtpd", "-n", "-l", "10.10.2.25:25"],
    )?;
    let mut web = site.serve(
        EXT,
        "http",
        "tcp",
        80,
        &[PYTHON, "-m", "http.server", "80", "--bind", EXT.ip],
    )?;
    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        let out = site.sh(PC, &[PYTHON, "-c", SEND_MAILS, MAIL.ip, docs_s], 60)?;
        ensure!(
            String::from_utf8_lossy(&out.stdout).contains("sent 3"),
            "smtplib: {out:?}"
        );
        let out = site.sh(
            PC,
            &[
                "swaks",
                "--server",
                MAIL.ip,
                "--from",
                "boss@corp.example",
                "--to",
                "hanako@corp.example",
                "--header",
                "Subject: urgent",
                "--add-header",
                "MIME-Version: 1.0",
                "--add-header",
                "Content-Type: text/plain; charset=UTF-8",
                "--body",
                "至急、下記口座へ送金してください。",
                "--timeout",
                "20",
            ],
            60,
        )?;
        ensure!(
            String::from_utf8_lossy(&out.stdout).contains("250"),
            "swaks: {out:?}"
        );
        // A form post (percent-encoded UTF-8); the server answers 501, the body was sent.
        site.run(
            PC,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                "--data",
                "user=taro&comment=%E7%A7%98%E5%AF%86%E3%81%AE%E5%90%88%E8%A8%80%E8%91%89",
                &format!("http://{}/login", EXT.ip),
            ],
            30,
        )?;
        Ok(())
    })();
    rec.stop()?;
    smtp.stop();
    web.stop();
    traffic?;
    data.import(&pcap)?;
    data.analyze()?;

    let found = |q: &str, want: &[&str]| -> anyhow::Result<Vec<Value>> {
        let hits = search(&data, q)?;
        let got = subjects(&hits);
        ensure!(got == want, "{q}: found {got:?}, expected {want:?}");
        Ok(hits)
    };
    let phish = "【重要】口座凍結のお知らせ";
    let invoice = "請求書送付の件";
    let reset = "パスワードの再設定";
    // Bodies, in each charset (ISO-2022-JP, Shift_JIS in base64, UTF-8 in QP, swaks).
    let hits = found(r#"body:"口座が凍結""#, &[phish])?;
    let snippet = hits[0]["snippet"]["marked"].as_str().unwrap_or("");
    ensure!(
        snippet.contains("[口座が凍結]"),
        "snippet marks the match: {snippet:?}"
    );
    found(r#"body:"お支払い期限""#, &[invoice])?;
    found(r#"body:"パスワードを至急""#, &[reset])?;
    found(r#"body:"ID""#, &[reset])?; // ＩＤ in the mail (NFKC)
    found(r#"body:"送金してください""#, &["urgent"])?;
    // Attachments: content, not body.
    found(r#"content:"ご本人確認""#, &[phish])?;
    found(r#"body:"ご本人確認""#, &[])?;
    found(r#"content:"verify your account""#, &[phish])?;
    found(r#"content:"振込先口座""#, &[invoice])?;
    found(r#"content:"INV-2026-0042""#, &[invoice])?;
    found(r#"content:"パスワード再設定""#, &[reset])?;
    found(r#"content:"Account suspended""#, &[reset])?;
    // A bare phrase searches content too.
    found(r#""振込先口座""#, &[invoice])?;
    // The form post.
    found(r#"body:"秘密の合言葉""#, &["http 203.0.113.10/login"])?;
    // Absent phrases that share characters with present ones.
    for absent in [
        "ご本人様",
        "口座番号",
        "パスワード変更",
        "請求書番号は",
        "Account deleted",
    ] {
        found(&format!("content:\"{absent}\""), &[])?;
    }
    // File search (`--files`): each reconstructed file judged alone, linked to its
    // session; the PDF is the bytes reportlab wrote.
    let files = |q: &str| -> anyhow::Result<Vec<Value>> {
        let out = data.kuroko("search", &["--files", "--format", "jsonl", q])?;
        out.lines()
            .map(|l| serde_json::from_str(l).with_context(|| format!("--files {q}: {l}")))
            .collect()
    };
    let names = |v: &[Value]| -> Vec<String> {
        let mut n: Vec<String> = v
            .iter()
            .map(|h| h["file"]["name"].as_str().unwrap_or("-").to_string())
            .collect();
        n.sort();
        n
    };
    let pdfs = files("file_type:pdf")?;
    ensure!(names(&pdfs) == ["notice.pdf"], "file_type:pdf: {pdfs:?}");
    let sum = Command::new("sha256sum")
        .arg(docs.join("notice.pdf"))
        .output()?;
    let want_sha = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    ensure!(
        pdfs[0]["file"]["sha256"] == want_sha.as_str(),
        "the PDF found is the one reportlab wrote ({want_sha}): {}",
        pdfs[0]
    );
    let on_disk = std::fs::read(pdfs[0]["path"].as_str().unwrap_or(""))?;
    ensure!(
        on_disk == std::fs::read(docs.join("notice.pdf"))?,
        "the path points at the reconstructed PDF"
    );
    let reset_session = found(r#"body:"パスワードを至急""#, &[reset])?[0]["id"].clone();
    ensure!(
        pdfs[0]["session"] == reset_session,
        "the PDF links to the mail that carried it: {} vs {reset_session}",
        pdfs[0]
    );
    let by_sha = files(&format!("sha256:{want_sha}"))?;
    ensure!(names(&by_sha) == ["notice.pdf"], "sha256: {by_sha:?}");
    let xlsx = files(r#"content:"振込先口座" AND file_type:xlsx"#)?;
    ensure!(names(&xlsx) == ["invoice.xlsx"], "content+type: {xlsx:?}");
    let docx = files(r#"file_type:docx AND content:"ご本人確認""#)?;
    let marked = docx
        .first()
        .and_then(|h| h["snippet"]["marked"].as_str())
        .unwrap_or("");
    ensure!(
        names(&docx) == ["verify.docx"] && marked.contains("[ご本人確認]"),
        "docx with its snippet: {docx:?}"
    );
    // Per file, not per session: the XLSX does not say パスワード (the PDF of another mail
    // does), and no document of these mails is over 1 MB.
    ensure!(files(r#"file:invoice.xlsx AND content:"パスワード""#)?.is_empty());
    ensure!(files("file_size:>1MB")?.is_empty());
    let others = files("protocol:smtp AND NOT file_type:(pdf docx xlsx)")?;
    ensure!(
        !others.is_empty()
            && names(&others)
                .iter()
                .all(|n| !n.ends_with(".pdf") && !n.ends_with(".docx") && !n.ends_with(".xlsx")),
        "NOT file_type keeps the other objects of the same mails: {:?}",
        names(&others)
    );
    eprintln!(
        "file search, smtp objects other than documents: {:?}",
        names(&others)
    );

    // `status` reports the content index.
    let status: Value = serde_json::from_str(&data.kuroko("status", &["--format", "json"])?)?;
    let c = &status["content"];
    ensure!(c["present"] == true, "status content: {c}");
    ensure!(
        c["objects"].as_u64().unwrap_or(0) >= 7,
        "status content: {c}"
    );
    ensure!(
        c["window"]["from"].is_string(),
        "status content window: {c}"
    );
    ensure!(
        c["failures"]
            .as_object()
            .is_some_and(|f| f.values().all(|v| v == 0)),
        "no extraction failures: {c}"
    );
    Ok(())
}
