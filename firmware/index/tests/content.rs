//! The content index end to end: a session log and `files/` written as the analyzer
//! writes them, the content consumer run over them, then searches through `Index` (what
//! `kuroko search` uses): phrases found, lookalikes not, `body:` vs `content:`, snippets,
//! exactly-once feeding, failures by cause, and the budget.

mod common;

use common::{T0, http, write_log};
use kuroko_index::Index;
use kuroko_index::Query;
use kuroko_index::content::{ContentIndex, ingest};
use kuroko_model::SessionRecord;
use kuroko_model::config::Config;
use kuroko_model::session::FileRef;
use std::path::Path;

fn sha(n: u64) -> String {
    format!("{n:064x}")
}

/// Stores `bytes` as object `n` and returns its reference.
fn object(data: &Path, n: u64, kind: &str, ct: &str, name: &str, bytes: &[u8]) -> FileRef {
    let s = sha(n);
    let dir = data.join("files").join(&s[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{}.bin", &s[2..])), bytes).unwrap();
    FileRef {
        sha256: s,
        name: Some(name.into()),
        content_type: Some(ct.into()),
        bytes: bytes.len() as u64,
        direction: "download".into(),
        kind: kind.into(),
        partial: false,
        ..Default::default()
    }
}

fn mail_session(id: &str, t: i64, files: Vec<FileRef>) -> SessionRecord {
    let mut r = http(id, t, "GET", "mail.example", "mail.example/", 200);
    r.http = None;
    r.protocol = "smtp".into();
    r.files = files;
    r
}

fn catch_up(data: &Path, config: &Config) {
    kuroko_index::ingest_pending(data, config).unwrap();
    ingest::ingest_pending(data, config).unwrap();
}

fn count(index: &Index, q: &str) -> u64 {
    index.count(&Query::parse(q).unwrap()).unwrap()
}

fn ids(index: &Index, q: &str) -> Vec<String> {
    let mut v: Vec<String> = index
        .search(&Query::parse(q).unwrap(), 100)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    v.sort();
    v
}

/// Three sessions: a phishing mail (body + DOCX-like text attachment), an ordinary mail,
/// and a form post.
fn fixture(data: &Path) -> Vec<SessionRecord> {
    let phish_body = object(
        data,
        1,
        "mail-body",
        "text/plain; charset=utf-8",
        "body.txt",
        "お客様の口座が凍結されました。ご本人確認のため、ＩＤとパスワードを入力してください。"
            .as_bytes(),
    );
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("請求書在中。お支払い期限は月末です。");
    let invoice = object(data, 2, "attachment", "text/plain", "請求書.txt", &sjis);
    let ordinary = object(
        data,
        3,
        "mail-body",
        "text/html; charset=utf-8",
        "body.html",
        "<p>本人様の会議は<b>月曜</b>です。Minutes attached.</p>".as_bytes(),
    );
    let form = object(
        data,
        4,
        "http-body",
        "application/x-www-form-urlencoded",
        "post",
        b"user=taro&password=%E7%A7%98%E5%AF%86%E3%81%AE%E5%90%88%E8%A8%80%E8%91%89",
    );
    let mut post = http(
        "post-1",
        T0 + 3_000_000_000,
        "POST",
        "login.example",
        "login.example/",
        200,
    );
    post.files = vec![form];
    vec![
        mail_session("phish-1", T0, vec![phish_body, invoice]),
        mail_session("ordinary-1", T0 + 1_000_000_000, vec![ordinary]),
        post,
    ]
}

#[test]
fn phrases_are_found_and_lookalikes_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    write_log(data, &fixture(data));
    catch_up(data, &Config::default());
    let index = Index::open(data).unwrap();
    assert_eq!(ids(&index, r#"body:"ご本人確認""#), ["phish-1"]);
    assert_eq!(ids(&index, "body:口座"), ["phish-1"]);
    // NFKC: full-width ＩＤ in the mail, ASCII in the query (and the other way round).
    assert_eq!(ids(&index, r#"body:"ID""#), ["phish-1"]);
    assert_eq!(ids(&index, r#"body:"ＰＡＳＳＷＯＲＤ""#), ["post-1"]);
    // Shares characters with 「ご本人確認」 and 「本人様」, but is in no text.
    assert_eq!(count(&index, r#"body:"ご本人様""#), 0);
    assert_eq!(count(&index, r#"body:"口座番号""#), 0);
    assert_eq!(ids(&index, r#"body:"本人様""#), ["ordinary-1"]);
    // The attachment's text is content, not body; decoded from Shift_JIS.
    assert_eq!(count(&index, r#"body:"請求書在中""#), 0);
    assert_eq!(ids(&index, r#"content:"請求書在中""#), ["phish-1"]);
    // HTML as text (tags do not split the phrase's neighbours into one word).
    assert_eq!(ids(&index, r#"body:"会議は月曜""#), ["ordinary-1"]);
    // A percent-encoded form value.
    assert_eq!(ids(&index, r#"body:"秘密の合言葉""#), ["post-1"]);
    // A bare phrase also searches content; combined with session fields.
    assert_eq!(ids(&index, r#""請求書在中""#), ["phish-1"]);
    assert_eq!(
        ids(&index, r#"protocol:smtp AND NOT body:"口座""#),
        ["ordinary-1"]
    );
    assert_eq!(
        ids(&index, "content:*"),
        ["ordinary-1", "phish-1", "post-1"]
    );
    // One CJK character: inside bigrams.
    assert_eq!(ids(&index, "body:凍"), ["phish-1"]);
}

#[test]
fn snippets_mark_the_match() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    write_log(data, &fixture(data));
    catch_up(data, &Config::default());
    let content = ContentIndex::open(data).unwrap().unwrap();
    let q = Query::parse(r#"body:"ご本人確認""#).unwrap();
    let s = content.snippets(&q.plan, &["phish-1".into()]).unwrap();
    let s = &s["phish-1"];
    assert!(
        s.marked("[", "]").contains("ため、[ご本人確認]のため、")
            || s.marked("[", "]").contains("[ご本人確認]"),
        "{:?}",
        s.marked("[", "]")
    );
    assert_eq!(s.sha256, sha(1));
    // NFKC in the snippet: the full-width ＩＤ reads ID.
    assert!(s.text.contains("IDとパスワード"), "{}", s.text);
}

#[test]
fn fed_exactly_once_and_failures_counted_by_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut recs = fixture(data);
    let enc = object(
        data,
        9,
        "attachment",
        "application/pdf",
        "locked.pdf",
        b"%PDF-1.7\ntrailer << /Encrypt 3 0 R >>",
    );
    let mut gone = object(data, 10, "attachment", "text/plain", "gone.txt", b"evicted");
    std::fs::remove_file(
        data.join("files")
            .join(&gone.sha256[..2])
            .join(format!("{}.bin", &gone.sha256[2..])),
    )
    .unwrap();
    gone.name = Some("gone.txt".into());
    recs.push(mail_session(
        "broken-1",
        T0 + 5_000_000_000,
        vec![enc, gone],
    ));
    write_log(data, &recs);
    let config = Config::default();
    catch_up(data, &config);
    let first = ContentIndex::open(data).unwrap().unwrap();
    let texts = first.len();
    let p = first.payload().unwrap();
    assert_eq!(p.counters.failures.get("encrypted"), Some(&1));
    assert_eq!(p.counters.missing, 1);
    assert_eq!(p.counters.objects, 4);
    drop(first);
    // Nothing new: nothing added again.
    catch_up(data, &config);
    let again = ContentIndex::open(data).unwrap().unwrap();
    assert_eq!(again.len(), texts);
    assert_eq!(again.payload().unwrap().counters, p.counters);
    drop(again);
    // The analyzer re-emits a session (after its own crash): replaced, not doubled.
    write_log(data, &fixture(data)[..1]);
    catch_up(data, &config);
    let index = Index::open(data).unwrap();
    assert_eq!(ids(&index, r#"body:"ご本人確認""#), ["phish-1"]);
    let c = ContentIndex::open(data).unwrap().unwrap();
    assert_eq!(c.len(), texts);
}

#[test]
fn over_budget_the_oldest_content_goes_and_metadata_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut recs = Vec::new();
    for i in 0..40u64 {
        let text = format!("第{i}号の通知。{}", "長い本文です。".repeat(400));
        let f = object(
            data,
            100 + i,
            "mail-body",
            "text/plain",
            "body.txt",
            text.as_bytes(),
        );
        recs.push(mail_session(
            &format!("m-{i:02}"),
            T0 + i as i64 * 3_600_000_000_000,
            vec![f],
        ));
    }
    write_log(data, &recs);
    let config = Config::default();
    catch_up(data, &config);
    let full = kuroko_index::budget::dir_size(&data.join("content"));
    let mut ing = ingest::ContentIngester::open(data, kuroko_content::Limits::default()).unwrap();
    let dropped = ing.enforce_budget(full / 2).unwrap();
    ing.wait_merges().unwrap();
    assert!(dropped > 0, "size {full}");
    let c = ContentIndex::open(data).unwrap().unwrap();
    let cut = c
        .payload()
        .unwrap()
        .dropped_before
        .expect("cut-off recorded");
    let (from, _) = c.window().unwrap().unwrap();
    assert!(from >= cut, "window starts after the cut-off");
    let index = Index::open(data).unwrap();
    // The oldest mail's text is gone, the newest's is there; both sessions still listed.
    assert_eq!(count(&index, r#"body:"第0号""#), 0);
    assert_eq!(ids(&index, r#"body:"第39号""#), ["m-39"]);
    assert_eq!(count(&index, "id:m-00"), 1);
}

#[test]
fn content_terms_are_checked_like_other_fields() {
    for bad in ["body:foo*", "content:>3", "body:[a TO b]"] {
        assert!(Query::parse(bad).is_err(), "{bad}");
    }
    // A session with no content index yet: nothing matches, no error.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    write_log(
        data,
        &[http("h", T0, "GET", "a.example", "a.example/", 200)],
    );
    kuroko_index::ingest_pending(data, &Config::default()).unwrap();
    let index = Index::open(data).unwrap();
    let (_, notes) = index
        .resolve_content(&Query::parse("body:x").unwrap())
        .unwrap();
    assert!(notes[0].contains("not built"), "{notes:?}");
    assert_eq!(count(&index, "body:x OR host:a.example"), 1);
}

/// A stand-in for `kuroko content-worker` speaking its protocol
/// (`kuroko_content::worker`): an object holding `LOOP` makes it hang as an extractor
/// stuck in a loop would, `CRASH` makes it abort as on a stack overflow or the memory
/// limit; anything else is answered with its text.
const STAND_IN_WORKER: &str = r#"
import json, os, sys, time
inp, out = sys.stdin.buffer, sys.stdout
while True:
    line = inp.readline()
    if not line:
        break
    req = json.loads(line)
    data = inp.read(req["len"])
    if b"LOOP" in data:
        time.sleep(3600)
    if b"CRASH" in data:
        os.abort()
    part = "body" if req["kind"] in ("mail-body", "http-body") else "file"
    text = data.decode("utf-8", "replace")
    out.write(json.dumps({"result": {"Ok": {"texts": [{"part": part, "inner_name": None,
              "text": text}], "truncated": False, "skipped": False}}, "retire": False}) + "\n")
    out.flush()
"#;

#[test]
fn a_worker_that_hangs_or_dies_costs_only_its_object() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let ok = |n, text: &str| {
        object(
            data,
            n,
            "attachment",
            "text/plain",
            "a.txt",
            text.as_bytes(),
        )
    };
    let recs = vec![
        mail_session("s1", T0, vec![ok(1, "最初の文書です")]),
        mail_session("s2", T0 + 1_000_000_000, vec![ok(2, "LOOP forever")]),
        mail_session(
            "s3",
            T0 + 2_000_000_000,
            vec![ok(3, "CRASH now"), ok(4, "口座が凍結されました")],
        ),
        mail_session("s4", T0 + 3_000_000_000, vec![ok(5, "最後の文書です")]),
    ];
    write_log(data, &recs);
    let config = Config::default();
    kuroko_index::ingest_pending(data, &config).unwrap();
    let cmd = kuroko_content::worker::WorkerCommand {
        program: "/usr/bin/python3".into(),
        args: vec!["-c".into(), STAND_IN_WORKER.into()],
        grace: std::time::Duration::from_millis(500),
        stall: std::time::Duration::from_secs(1),
    };
    let s = ingest::ingest_pending_with(data, &config, Some(cmd)).unwrap();
    assert_eq!(s.sessions, 4, "the consumer went on past both");
    assert_eq!(s.failures, 2);
    let c = ContentIndex::open(data).unwrap().unwrap();
    let p = c.payload().unwrap();
    assert_eq!(p.counters.failures.get("killed"), Some(&1));
    assert_eq!(p.counters.failures.get("crashed"), Some(&1));
    assert_eq!(p.counters.objects, 3);
    let index = Index::open(data).unwrap();
    assert_eq!(ids(&index, r#"content:"口座が凍結""#), ["s3"]);
    assert_eq!(ids(&index, r#"content:"最後の文書""#), ["s4"]);
    assert_eq!(
        ingest::failure_counts(&p.counters)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>(),
        [("killed", 1), ("crashed", 1)]
    );
}
