//! Content indexing and phrase queries, beside the session index in the same run.
//!
//! Writes `N` synthetic mail sessions (Japanese and English bodies of ~1.5 KB built from
//! business and phishing sentences, one object each in `files/`), then times the session
//! index catching up and the content index catching up over the same log, the index bytes
//! per MB of text, and phrase queries (p50/p99 over repeated `body:"…"` counts).
//!
//! `cargo run --release -p kuroko-index --example bench_content -- N` (default 20000).

use kuroko_index::{Index, Query};
use kuroko_model::config::Config;
use kuroko_model::session::FileRef;
use std::time::Instant;

const SENTENCES: &[&str] = &[
    "お客様の口座が一時的に凍結されました。",
    "ご本人確認のため下記のリンクからログインしてください。",
    "パスワードの有効期限が切れています。",
    "今月分の請求書を添付にてお送りします。",
    "お支払い期限は月末となっております。",
    "会議の議事録を共有いたします。",
    "見積書の金額についてご確認をお願いします。",
    "不正なアクセスを検知しました。",
    "Please find the minutes of the Monday meeting attached.",
    "Your account will be suspended unless you verify your identity.",
    "出張旅費の精算をお願いいたします。",
    "社内ポータルのメンテナンスを実施します。",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let tmp = tempfile::tempdir()?;
    let data = tmp.path();
    let mut w = kuroko_model::sessionlog::SessionLogWriter::open(&data.join("sessions"))?;
    let t0 = 1_795_219_200_000_000_000i64;
    let mut text_bytes = 0u64;
    let mut rng = kuroko_index::synth::Rng::new(7);
    for i in 0..n {
        let mut r = kuroko_index::synth::session(i, t0, 1_000_000_000);
        let mut body = format!("第{i}号のご連絡\n");
        while body.len() < 1500 {
            body.push_str(SENTENCES[rng.below(SENTENCES.len() as u64) as usize]);
        }
        let sha = format!("{i:064x}");
        let dir = data.join("files").join(&sha[..2]);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{}.bin", &sha[2..])), body.as_bytes())?;
        text_bytes += body.len() as u64;
        r.files = vec![FileRef {
            sha256: sha,
            name: Some("body.txt".into()),
            content_type: Some("text/plain; charset=utf-8".into()),
            bytes: body.len() as u64,
            direction: "upload".into(),
            kind: "mail-body".into(),
            partial: false,
            ..Default::default()
        }];
        w.append(&r)?;
    }
    w.sync()?;
    drop(w);
    let config = Config::default();
    let t = Instant::now();
    kuroko_index::ingest_pending(data, &config)?;
    let session_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    kuroko_index::content::ingest::ingest_pending(data, &config)?;
    let content_secs = t.elapsed().as_secs_f64();
    let session_bytes = kuroko_index::budget::dir_size(&data.join("index"));
    let content_bytes = kuroko_index::budget::dir_size(&data.join("content"));
    let mb = text_bytes as f64 / 1e6;
    println!("{n} mails, {mb:.1} MB of text");
    println!(
        "session index: {:.0} sessions/s ({session_secs:.2} s), {:.1} MB",
        n as f64 / session_secs,
        session_bytes as f64 / 1e6
    );
    println!(
        "content index: {:.0} mails/s, {:.2} MB/s of text ({content_secs:.2} s), {:.1} MB = {:.2} bytes per byte of text",
        n as f64 / content_secs,
        mb / content_secs,
        content_bytes as f64 / 1e6,
        content_bytes as f64 / text_bytes as f64
    );
    let index = Index::open(data)?;
    for q in [
        r#"body:"ご本人確認""#,
        r#"body:"口座が一時的に凍結""#,
        r#"body:"第77号""#,
        r#"body:"verify your identity""#,
        r#"body:"ご本人様""#,
    ] {
        let query = Query::parse(q)?;
        let mut times = Vec::new();
        let mut hits = 0;
        for _ in 0..21 {
            let t = Instant::now();
            hits = index.count(&query)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{q:32} {hits:>7} sessions  p50 {:.1} ms  p99 {:.1} ms",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    Ok(())
}
