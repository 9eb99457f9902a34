//! The tokenizer comparison of issue 19: the content index's character bigrams against a
//! morphological tokenizer (MeCab with IPADIC, Debian's `mecab` and `mecab-ipadic-utf8`),
//! on the same Japanese mail corpus, in the same run.
//!
//! Corpus: `N` mails (default 3,000) assembled from business and phishing mail sentences
//! with katakana compounds (セキュリティアップデート, ワンタイムパスワード,
//! カスタマーサポートセンター), particles, names, companies, amounts and reference numbers
//! in full-width and half-width forms (ＩＮＶ－２０２６, ｱｶｳﾝﾄ). Both tokenizers see
//! the text after the same NFKC (`kuroko_content::tokens::normalize`).
//!
//! Measured for each tokenizer:
//! - recall and precision of phrase queries, the truth being a substring test on the
//!   normalized text (a query starting or ending with a letter or digit only as a whole
//!   word or number): (a) words an analyst types (口座, 本人確認, パスワード, …),
//!   (b) parts of compounds (「確認」 in 「ご本人確認」, 「アップデート」 in
//!   「セキュリティアップデート」), (c) 2–6-character strings cut at random places of the
//!   corpus, (d) look-alikes of (a)–(c) with one character replaced (absent or not: the
//!   truth decides). A phrase matches when the query's tokens stand at consecutive
//!   positions of the text's tokens (what the index's phrase query does); for bigrams the
//!   index's own matcher (`find_phrase`).
//! - index size: a tantivy index with the content index's text field options (positions,
//!   no field norms, stored text) over the corpus, after merging to one segment;
//! - indexing time (tokenizing included; for MeCab its process, fed the whole corpus).
//!
//! `cargo xtask bench fulltext --tokenizers [--mails N]` builds and runs this (release).

use kuroko_content::tokens::{QueryTerm, Token, find_phrase, normalize, query_pattern};
use kuroko_index::content::tokenizer::ContentTokenizer;
use std::collections::HashSet;
use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;
use tantivy::schema::{IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{LowerCaser, TextAnalyzer, WhitespaceTokenizer};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const NAMES: &[&str] = &[
    "田中", "佐藤", "鈴木", "高橋", "渡辺", "山本", "中村", "小林", "加藤", "吉田",
];
const COMPANIES: &[&str] = &[
    "株式会社サイバーテック",
    "グローバルソリューションズ株式会社",
    "ヤマト運輸",
    "三井住友カード",
    "みずほ銀行",
    "楽天市場",
    "アマゾンジャパン",
    "東京海上日動",
    "株式会社ネクストイノベーション",
];
const PRODUCTS: &[&str] = &[
    "クラウドストレージ",
    "ネットワークカメラ",
    "ファイアウォール",
    "ウイルス対策ソフト",
    "テレワーク用ノートパソコン",
    "ワークフローシステム",
];
const GREETINGS: &[&str] = &[
    "{name}様\n\nいつも{company}をご利用いただき、誠にありがとうございます。",
    "{company}\n{name}様\n\nお世話になっております。{company2}の{name2}です。",
    "【重要】{company}からの大切なお知らせ\n\n{name}様",
    "関係者各位\n\nお疲れさまです。情報システム部の{name}です。",
];
const BODY: &[&str] = &[
    "お客様のアカウントに不正なログインが検知されたため、ご本人確認が完了するまでお取引を制限しております。",
    "下記URLより２４時間以内にパスワードの再設定を行ってください。",
    "セキュリティアップデートの適用をお願いいたします。",
    "{product}の導入について、お見積書を添付にてお送りいたします。",
    "請求書番号：ＩＮＶ－２０２６－{n}　ご請求金額：{amount}円（税込）",
    "振込先口座：{bank} {branch}支店 普通預金 {acct}",
    "クレジットカードの有効期限が近づいています。カード情報の更新をお願いします。",
    "オンラインバンキングのワンタイムパスワードを入力してください。",
    "来週の定例ミーティングはオンライン会議システムで実施します。",
    "添付ファイルのパスワードは別メールにてお送りします。",
    "システムメンテナンスに伴い、{date}はサービスを一時停止いたします。",
    "ご不明な点はカスタマーサポートセンターまでお問い合わせください。",
    "経費精算システムの操作マニュアルを改訂しました。",
    "プロジェクトマネージャーの{name}より、進捗報告を共有いたします。",
    "ご利用中のメールボックスの容量が上限に達しました。",
    "お荷物をお届けにあがりましたが、ご不在のため持ち帰りました。不在通知をご確認ください。",
    "マイナンバーカードの写しをアップロードしてください。",
    "お客様の口座が一時的に凍結されました。ご本人様確認書類をご提出ください。",
    "ｱｶｳﾝﾄ情報の確認が必要です。ﾛｸﾞｲﾝして手続きを完了してください。",
    "ＩＤとパスワードを至急ご入力ください。",
    "第{n}四半期の売上報告書をお送りします。前年同期比で{pct}％増となりました。",
    "契約書の原本を郵送いたしましたので、ご査収ください。",
    "社内ポータルのリニューアルに伴い、ブックマークの変更をお願いします。",
    "出張旅費の精算は月末までに申請してください。",
    "配送先の住所に不備があるため、お荷物をお届けできません。",
    "本メールは送信専用アドレスから配信されています。",
    "Please find the attached invoice and confirm the payment details.",
    "Your account has been suspended. Verify your identity to restore access.",
];
const CLOSINGS: &[&str] = &[
    "\n\n以上、よろしくお願いいたします。\n{name}",
    "\n\n何卒よろしくお願い申し上げます。\n{company}　{name}",
    "\n\n※本メールにお心当たりのない場合は破棄してください。",
    "\n\n──────────\n{company}\nTEL：０３－{n}－{n2}\n──────────",
];
const BANKS: &[&str] = &["みずほ銀行", "三菱UFJ銀行", "ゆうちょ銀行", "りそな銀行"];
const BRANCHES: &[&str] = &["渋谷", "新宿", "丸の内", "梅田", "名古屋駅前"];

/// One mail of the corpus.
fn mail(rng: &mut Rng) -> String {
    let fill = |s: &str, rng: &mut Rng| -> String {
        let mut out = s.to_string();
        for (slot, v) in [
            ("{name}", rng.pick(NAMES).to_string()),
            ("{name2}", rng.pick(NAMES).to_string()),
            ("{company}", rng.pick(COMPANIES).to_string()),
            ("{company2}", rng.pick(COMPANIES).to_string()),
            ("{product}", rng.pick(PRODUCTS).to_string()),
            ("{bank}", rng.pick(BANKS).to_string()),
            ("{branch}", rng.pick(BRANCHES).to_string()),
            ("{n}", format!("{}", 1 + rng.below(9999))),
            ("{n2}", format!("{:04}", rng.below(10000))),
            (
                "{amount}",
                format!("{},{:03}", 1 + rng.below(999), rng.below(1000)),
            ),
            ("{acct}", format!("{:07}", rng.below(10_000_000))),
            ("{pct}", format!("{}", 1 + rng.below(40))),
            (
                "{date}",
                format!("{}月{}日", 1 + rng.below(12), 1 + rng.below(28)),
            ),
        ] {
            out = out.replace(slot, &v);
        }
        out
    };
    let mut m = fill(rng.pick(GREETINGS), rng);
    m.push_str("\n\n");
    for _ in 0..3 + rng.below(5) {
        m.push_str(&fill(rng.pick(BODY), rng));
        m.push(if rng.below(3) == 0 { '\n' } else { ' ' });
    }
    m.push_str(&fill(rng.pick(CLOSINGS), rng));
    m
}

/// Words an analyst types.
const WORDS: &[&str] = &[
    "口座",
    "確認",
    "本人確認",
    "ご本人確認",
    "パスワード",
    "請求書",
    "凍結",
    "停止",
    "アカウント",
    "セキュリティ",
    "有効期限",
    "振込",
    "振込先",
    "見積書",
    "会議",
    "ログイン",
    "メンテナンス",
    "不正",
    "カード",
    "再設定",
    "添付",
    "精算",
    "配送",
    "不在",
    "容量",
    "マイナンバー",
    "ワンタイムパスワード",
    "株式会社",
    "支店",
    "普通預金",
    "田中",
    "ストレージ",
    "カメラ",
    "ウイルス",
    "ID",
    "INV",
    "契約書",
    "売上",
    "報告書",
    "手続き",
    "至急",
    "一時停止",
    "銀行",
    "住所",
    "アップロード",
    "verify",
    "suspended",
];
/// Parts of compounds and of longer words (the compound holding each is in the corpus).
const PARTS: &[&str] = &[
    "確認",           // ご本人確認, 確認書類
    "アップデート",   // セキュリティアップデート
    "パスワード",     // ワンタイムパスワード
    "バンキング",     // オンラインバンキング
    "ボックス",       // メールボックス
    "サポート",       // カスタマーサポートセンター
    "センター",       // カスタマーサポートセンター
    "マネージャー",   // プロジェクトマネージャー
    "ソリューション", // グローバルソリューションズ
    "請求",           // 請求書
    "精算",           // 経費精算システム
    "預金",           // 普通預金
    "通知",           // 不在通知
    "旅費",           // 出張旅費
    "マニュアル",     // 操作マニュアル
    "ミーティング",   // 定例ミーティング
    "ノート",         // ノートパソコン
    "パソコン",       // ノートパソコン
    "イノベーション", // ネクストイノベーション
    "運輸",           // ヤマト運輸
    "海上",           // 東京海上日動
    "本人様",         // ご本人様確認書類
    "書類",           // 確認書類
    "ポータル",       // 社内ポータル
    "対策",           // ウイルス対策ソフト
];

#[derive(Default, Clone, Copy)]
struct Score {
    tp: u64,
    fp: u64,
    fn_: u64,
}
impl Score {
    fn add(&mut self, predicted: bool, truth: bool) {
        match (predicted, truth) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            _ => {}
        }
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
}

/// MeCab's tokens (`-Owakati`) of each line of each text, lower-cased, one process for
/// all. Lines are fed and read one at a time in a thread pair (MeCab answers per line).
fn mecab_tokens(texts: &[String]) -> Result<Vec<Vec<String>>, Box<dyn Error>> {
    let mut child = Command::new("mecab")
        .args(["-Owakati", "-b", "1048576"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run mecab ({e}): apt-get install mecab mecab-ipadic-utf8"))?;
    let mut stdin = child.stdin.take().expect("stdin");
    let lines: Vec<(usize, String)> = texts
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.lines()
                .map(move |l| (i, l.replace('\r', "")))
                .collect::<Vec<_>>()
        })
        .collect();
    let feed: Vec<String> = lines.iter().map(|(_, l)| l.clone()).collect();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for l in feed {
            stdin.write_all(l.as_bytes())?;
            stdin.write_all(b"\n")?;
        }
        Ok(())
    });
    let mut out = vec![Vec::new(); texts.len()];
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut got = reader.lines();
    for (doc, _) in &lines {
        let line = got.next().ok_or("mecab stopped early")??;
        out[*doc].extend(line.split_whitespace().map(str::to_lowercase));
    }
    writer.join().map_err(|_| "mecab writer panicked")??;
    child.wait()?;
    Ok(out)
}

/// The truth: `q` occurs in `low` (normalized, lower case), where a query that starts or
/// ends with a letter or digit does not start or end inside a word or number (「id」 is
/// not in "identity", 「第12」 not in 「第123」: both tokenizers search Latin words and
/// numbers as words).
fn occurs(low: &str, q: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let (first, last) = (q.chars().next(), q.chars().last());
    low.match_indices(q).any(|(at, _)| {
        let starts_inside = alnum(first) && alnum(low[..at].chars().last());
        let ends_inside = alnum(last) && alnum(low[at + q.len()..].chars().next());
        !(starts_inside || ends_inside)
    })
}

/// Whether `q` stands at consecutive positions of `doc`.
fn contains_seq(doc: &[String], q: &[String]) -> bool {
    !q.is_empty() && doc.windows(q.len()).any(|w| w == q)
}

/// A tantivy index of `docs` with the content index's text options and `tokenizer`;
/// returns (bytes on disk after merging to one segment, seconds to index and commit).
fn build_index(
    docs: &[String],
    tokenizer: TextAnalyzer,
) -> Result<(u64, f64, tempfile::TempDir), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let mut b = Schema::builder();
    let opts = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("t")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                .set_fieldnorms(false),
        )
        .set_stored();
    let text = b.add_text_field("text", opts);
    let index = tantivy::Index::create_in_dir(dir.path(), b.build())?;
    index.tokenizers().register("t", tokenizer);
    let t = Instant::now();
    let mut w: tantivy::IndexWriter = index.writer_with_num_threads(1, 64 << 20)?;
    for d in docs {
        w.add_document(tantivy::doc!(text => d.as_str()))?;
    }
    w.commit()?;
    let secs = t.elapsed().as_secs_f64();
    let ids = index.searchable_segment_ids()?;
    if ids.len() > 1 {
        w.merge(&ids).wait()?;
    }
    w.wait_merging_threads()?;
    Ok((kuroko_index::budget::dir_size(dir.path()), secs, dir))
}

fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let raw: Vec<String> = (0..n).map(|_| mail(&mut rng)).collect();
    let norms: Vec<String> = raw.iter().map(|m| normalize(m)).collect();
    let lower: Vec<String> = norms.iter().map(|m| m.to_lowercase()).collect();
    let text_bytes: usize = raw.iter().map(String::len).sum();

    // Queries.
    let mut random: Vec<String> = Vec::new();
    while random.len() < 400 {
        let chars: Vec<char> = lower[rng.below(n)].chars().collect();
        let len = 2 + rng.below(5);
        if chars.len() <= len {
            continue;
        }
        let at = rng.below(chars.len() - len);
        let s: String = chars[at..at + len].iter().collect();
        // Strings of letters and kana/kanji only (not across a line break or punctuation:
        // nobody searches for 「す。\nご」).
        if s.chars().all(|c| c.is_alphanumeric()) {
            random.push(s);
        }
    }
    let swaps: Vec<char> = "様号額書認番口座確人金送信ト".chars().collect();
    let lookalike = |t: &str, i: usize| -> String {
        let mut c: Vec<char> = t.chars().collect();
        let mid = c.len() / 2;
        c[mid] = swaps[i % swaps.len()];
        c.into_iter().collect()
    };
    let words: Vec<String> = WORDS.iter().map(|w| normalize(w).to_lowercase()).collect();
    let parts: Vec<String> = PARTS.iter().map(|w| normalize(w).to_lowercase()).collect();
    let mut absent: Vec<String> = Vec::new();
    for (i, t) in words.iter().chain(&parts).chain(&random).enumerate() {
        if t.chars().count() >= 2 {
            absent.push(lookalike(t, i));
        }
    }
    let sets: [(&str, &Vec<String>); 4] = [
        ("words an analyst types", &words),
        ("parts of compounds", &parts),
        ("random 2-6 character strings", &random),
        ("look-alikes (one character replaced)", &absent),
    ];

    // Bigrams: the index's tokenizer and matcher.
    let (bigram_bytes, bigram_index_secs, _d1) =
        build_index(&raw, TextAnalyzer::builder(ContentTokenizer).build())?;
    // The index's tokens of each mail, once (what `find_phrase` matches against).
    let bigram_docs: Vec<Vec<Token>> = norms
        .iter()
        .map(|nrm| {
            let mut v = Vec::new();
            kuroko_content::tokens::tokenize(nrm, |t| v.push(t));
            v
        })
        .collect();
    let bigram_terms: HashSet<&str> = bigram_docs
        .iter()
        .flatten()
        .map(|t| t.text.as_str())
        .collect();
    // Matching on them is `find_phrase`'s rule: check it on a few mails.
    for (d, nrm) in norms.iter().enumerate().take(50) {
        for q in ["口座", "ご本人確認", "パスワード", "第1"] {
            let pat = query_pattern(q);
            let mine = bigram_docs[d]
                .windows(pat.len())
                .any(|w| w.iter().zip(&pat).all(|(t, p)| p.matches(t).is_some()));
            assert_eq!(
                mine,
                !find_phrase(nrm, &pat, 1).is_empty(),
                "{q} in mail {d}"
            );
        }
    }

    // MeCab: tokens of the normalized text, then the same index over them.
    let t = Instant::now();
    let mecab_docs = mecab_tokens(&norms)?;
    let mecab_tok_secs = t.elapsed().as_secs_f64();
    let joined: Vec<String> = mecab_docs.iter().map(|d| d.join(" ")).collect();
    let (mecab_bytes, mecab_index_secs, _d2) = build_index(
        &joined,
        TextAnalyzer::builder(WhitespaceTokenizer::default())
            .filter(LowerCaser)
            .build(),
    )?;
    let mecab_terms: HashSet<&String> = mecab_docs.iter().flatten().collect();
    let all_q: Vec<String> = sets.iter().flat_map(|(_, v)| v.iter().cloned()).collect();
    let mecab_q = mecab_tokens(&all_q)?;

    let mb = text_bytes as f64 / 1e6;
    println!("corpus: {n} mails, {mb:.2} MB of text (UTF-8)");
    println!(
        "mecab: {}",
        String::from_utf8_lossy(
            &Command::new("mecab")
                .arg("-v")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default()
        )
        .trim()
    );
    println!();
    println!(
        "| query set | queries | bigrams recall | bigrams precision | MeCab recall | MeCab precision |"
    );
    println!("|---|---|---|---|---|---|");
    let mut qi = 0;
    let mut misses: Vec<String> = Vec::new();
    let mut bg_misses: Vec<String> = Vec::new();
    for (name, qs) in sets {
        let (mut bg, mut mc) = (Score::default(), Score::default());
        for q in qs.iter() {
            let pat = query_pattern(q);
            let mq = &mecab_q[qi];
            qi += 1;
            let mut missed = 0;
            // What a match needs at the least (every term is a substring of the lower-cased
            // text): only then is the matcher run.
            let bg_needs: Vec<String> = pat
                .iter()
                .map(|t| match t {
                    QueryTerm::Exact(s) => s.clone(),
                    QueryTerm::Ends(c) | QueryTerm::Starts(c) => c.to_string(),
                })
                .collect();
            for (d, low) in lower.iter().enumerate() {
                let truth = low.contains(q.as_str()) && occurs(low, q);
                let b = bg_needs.iter().all(|s| low.contains(s.as_str()))
                    && bigram_docs[d]
                        .windows(pat.len())
                        .any(|w| w.iter().zip(&pat).all(|(t, q)| q.matches(t).is_some()));
                bg.add(b, truth);
                if truth != b && bg_misses.len() < 12 {
                    bg_misses.push(format!("{q} (mail {d}: truth {truth}, found {b})"));
                }
                let m =
                    mq.iter().all(|s| low.contains(s.as_str())) && contains_seq(&mecab_docs[d], mq);
                mc.add(m, truth);
                if truth && !m {
                    missed += 1;
                }
            }
            if missed > 0 && misses.len() < 12 {
                misses.push(format!("{q} → {} (missed in {missed} mails)", mq.join(" ")));
            }
        }
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            qs.len(),
            bg.recall(),
            bg.precision(),
            mc.recall(),
            mc.precision()
        );
    }
    println!();
    println!("| | index bytes | bytes per byte of text | distinct terms | tokenize+index |");
    println!("|---|---|---|---|---|");
    println!(
        "| bigrams | {} | {:.2} | {} | {:.2} s ({:.1} MB/s) |",
        bigram_bytes,
        bigram_bytes as f64 / text_bytes as f64,
        bigram_terms.len(),
        bigram_index_secs,
        mb / bigram_index_secs
    );
    println!(
        "| MeCab IPADIC | {} | {:.2} | {} | {:.2} s ({:.1} MB/s): MeCab {:.2} s + index {:.2} s |",
        mecab_bytes,
        mecab_bytes as f64 / text_bytes as f64,
        mecab_terms.len(),
        mecab_tok_secs + mecab_index_secs,
        mb / (mecab_tok_secs + mecab_index_secs),
        mecab_tok_secs,
        mecab_index_secs
    );
    println!();
    println!("Bigram errors, first {}:", bg_misses.len());
    for m in bg_misses {
        println!("  {m}");
    }
    println!("MeCab misses (query → its tokens), first {}:", misses.len());
    for m in misses {
        println!("  {m}");
    }
    Ok(())
}
