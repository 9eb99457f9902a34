//! Japanese recall check of the content tokenization: 200 sentences of the kind business
//! and phishing mail carries, 2–6-character search terms cut from them (present) and the
//! same terms with one character replaced (absent, sharing the rest). The truth is a
//! substring test on the NFKC text; measured are the phrase query the index runs (CJK
//! bigrams at consecutive positions) and two alternatives: the same bigrams without
//! positions (every bigram somewhere in the text) and single characters without positions.
//!
//! `cargo test -p kuroko-content --test recall -- --nocapture` prints the table.

use kuroko_content::tokens::{find_phrase, normalize, query_pattern, query_terms, tokenize};
use std::collections::HashSet;

const BASE: &[&str] = &[
    "お客様の口座が一時的に凍結されました",
    "ご本人確認のため下記のリンクからログインしてください",
    "パスワードの有効期限が切れています",
    "ＩＤとパスワードを至急ご入力ください",
    "今月分の請求書を添付にてお送りします",
    "お支払い期限は月末となっております",
    "振込先口座が変更になりましたのでご注意ください",
    "会議の議事録を共有いたします",
    "明日の打ち合わせは午後三時からです",
    "見積書の金額についてご確認をお願いします",
    "セキュリティ強化のためアカウント情報の更新が必要です",
    "不正なアクセスを検知しました",
    "カード番号と暗証番号を入力してください",
    "本人様以外からのお問い合わせにはお答えできません",
    "契約書の原本を郵送いたしました",
    "出張旅費の精算をお願いいたします",
    "社内ポータルのメンテナンスを実施します",
    "新しい端末からのログインがありました",
    "ご登録のメールアドレスを確認してください",
    "配送先の住所に不備があります",
];
const SUFFIX: &[&str] = &[
    "。",
    "。よろしくお願いいたします。",
    "。詳細は添付ファイルをご覧ください。",
    "。本メールは送信専用です。",
    "。至急ご対応ください。",
    "。ご不明な点はお問い合わせください。",
    "。以上、ご確認のほどお願い申し上げます。",
    "。※本件は営業部長の承認済みです。",
    "。期限までにご対応がない場合、利用を停止します。",
    "。第3四半期の資料も併せてお送りします。",
];

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

#[test]
fn bigram_phrases_find_every_term_and_nothing_else() {
    let sentences: Vec<String> = BASE
        .iter()
        .flat_map(|b| SUFFIX.iter().map(move |s| format!("{b}{s}")))
        .collect();
    assert_eq!(sentences.len(), 200);
    let norms: Vec<String> = sentences.iter().map(|s| normalize(s)).collect();
    // Terms: every 7th substring of 2..=6 characters of the base sentences (present), and
    // each with its middle character replaced by one of another term (absent or not:
    // the truth decides).
    let mut terms: Vec<String> = Vec::new();
    let mut k = 0usize;
    for b in BASE {
        let chars: Vec<char> = normalize(b).chars().collect();
        for len in 2..=6 {
            for start in 0..chars.len().saturating_sub(len) {
                k += 1;
                if k.is_multiple_of(7) {
                    terms.push(chars[start..start + len].iter().collect());
                }
            }
        }
    }
    let present = terms.len();
    let swaps: Vec<char> = "様号額書認番口座確人".chars().collect();
    for (i, t) in terms.clone().iter().enumerate() {
        let mut c: Vec<char> = t.chars().collect();
        let mid = c.len() / 2;
        c[mid] = swaps[i % swaps.len()];
        terms.push(c.into_iter().collect());
    }
    let token_sets: Vec<HashSet<String>> = norms
        .iter()
        .map(|n| {
            let mut s = HashSet::new();
            tokenize(n, |t| {
                s.insert(t.text);
            });
            s
        })
        .collect();
    let (mut phrase, mut bag, mut chars) = (
        Score {
            tp: 0,
            fp: 0,
            fn_: 0,
        },
        Score {
            tp: 0,
            fp: 0,
            fn_: 0,
        },
        Score {
            tp: 0,
            fp: 0,
            fn_: 0,
        },
    );
    for t in &terms {
        let pattern = query_pattern(t);
        let q_terms = query_terms(t);
        for (n, toks) in norms.iter().zip(&token_sets) {
            let truth = n.contains(t.as_str());
            phrase.add(!find_phrase(n, &pattern, 1).is_empty(), truth);
            bag.add(q_terms.iter().all(|q| toks.contains(q)), truth);
            chars.add(t.chars().all(|c| n.contains(c)), truth);
        }
    }
    println!(
        "{} sentences, {} terms ({} cut from the text, {} with one character replaced)",
        sentences.len(),
        terms.len(),
        present,
        terms.len() - present
    );
    for (name, s) in [
        ("bigram phrase (the index)", &phrase),
        ("bigrams, no positions", &bag),
        ("characters, no positions", &chars),
    ] {
        println!(
            "{name:28} recall {:.4}  precision {:.4}  (tp {} fp {} fn {})",
            s.recall(),
            s.precision(),
            s.tp,
            s.fp,
            s.fn_
        );
    }
    assert_eq!(phrase.fn_, 0, "every present term is found");
    assert_eq!(phrase.fp, 0, "no absent term is found");
    assert!(
        chars.fp > 0,
        "the alternative without positions over-matches"
    );
}
