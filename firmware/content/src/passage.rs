//! The passages of a mail that carry its lure: what the report's threat details quote
//! from a phishing mail as evidence (「お客様の口座が一時的に凍結されました」).
//!
//! The text is cut into sentences (at 。！？!? and line ends, and at ". "); a sentence is
//! a passage when it holds a lure term ([`LURES`]: account, freeze, identity check,
//! password, card number, deadline, … in Japanese and English) or one of the caller's own
//! terms (the mail's link texts), matched as the content index matches a phrase (NFKC,
//! lower case, CJK bigrams at consecutive positions: 「ご本人様」 is not 「ご本人確認」).
//! The passages with the most distinct terms are kept, in the order of the text; each is
//! the sentence as written (not normalized: it is evidence), without control characters,
//! cut to [`MAX_PASSAGE_CHARS`] around its first term.

use crate::tokens::{find_phrase, normalize, query_pattern};

/// Words of the lures phishing mail uses (a passage needs one of them).
pub const LURES: &[&str] = &[
    "口座",
    "凍結",
    "停止",
    "制限",
    "本人確認",
    "ご本人様確認",
    "パスワード",
    "暗証番号",
    "カード番号",
    "セキュリティコード",
    "ログイン",
    "アカウント",
    "不正",
    "有効期限",
    "至急",
    "24時間以内",
    "再設定",
    "更新手続き",
    "ID",
    "認証",
    "送金",
    "振込",
    "account",
    "password",
    "verify",
    "suspended",
    "locked",
    "login",
    "sign in",
    "confirm your",
    "urgent",
    "credit card",
];

/// Longest passage quoted, in characters.
pub const MAX_PASSAGE_CHARS: usize = 160;

/// One quoted passage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passage {
    /// The sentence as the mail says it (control characters removed, cut with `…`).
    pub text: String,
    /// The terms found in it, as given (lures first, then the caller's).
    pub terms: Vec<String>,
}

/// Sentences of `text` as byte ranges (terminator included).
fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let end = i + c.len_utf8();
        let cut = match c {
            '。' | '！' | '？' | '\n' | '!' | '?' => true,
            '.' => it.peek().is_none_or(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if cut {
            out.push((start, end));
            start = end;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// Up to `max` passages of `text` holding a lure or one of `extra` (see the module docs).
pub fn lure_passages(text: &str, extra: &[String], max: usize) -> Vec<Passage> {
    let terms: Vec<(String, Vec<crate::tokens::QueryTerm>)> = LURES
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().filter(|s| !s.trim().is_empty()).cloned())
        .map(|t| {
            let p = query_pattern(&t);
            (t, p)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let mut scored: Vec<(usize, usize, Passage)> = Vec::new(); // (score, order, passage)
    for (order, (a, b)) in sentences(text).into_iter().enumerate() {
        let sentence = text[a..b].trim();
        if sentence.is_empty() {
            continue;
        }
        let norm = normalize(sentence);
        let found: Vec<String> = terms
            .iter()
            .filter(|(_, p)| !find_phrase(&norm, p, 1).is_empty())
            .map(|(t, _)| t.clone())
            .collect();
        if found.is_empty() {
            continue;
        }
        let clean: String = sentence
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        scored.push((
            found.len(),
            order,
            Passage {
                text: cut_around(&clean, &found[0]),
                terms: found,
            },
        ));
    }
    // Most terms first, then earliest; keep `max`, then back to text order.
    scored.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    scored.truncate(max);
    scored.sort_by_key(|s| s.1);
    scored.into_iter().map(|s| s.2).collect()
}

/// `s` cut to `MAX_PASSAGE_CHARS` characters, keeping `term` (when it is found verbatim)
/// inside; cuts are marked with `…`.
fn cut_around(s: &str, term: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= MAX_PASSAGE_CHARS {
        return s.to_string();
    }
    let at = s.find(term).map(|b| s[..b].chars().count()).unwrap_or(0);
    let start = at
        .saturating_sub(MAX_PASSAGE_CHARS / 3)
        .min(chars.len() - MAX_PASSAGE_CHARS);
    let end = start + MAX_PASSAGE_CHARS;
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHISH: &str = "三井住友銀行をご利用いただきありがとうございます。\r\n\
        お客様の口座が一時的に凍結されました。\r\n\
        ご本人確認のため、下記のリンクから24時間以内にログインしてください。\r\n\
        今後ともよろしくお願いいたします。\r\n";

    #[test]
    fn the_lure_sentences_are_quoted_as_written() {
        let p = lure_passages(PHISH, &[], 2);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].text, "お客様の口座が一時的に凍結されました。");
        assert_eq!(p[0].terms, ["口座", "凍結"]);
        assert_eq!(
            p[1].text,
            "ご本人確認のため、下記のリンクから24時間以内にログインしてください。"
        );
        assert!(p[1].terms.contains(&"本人確認".to_string()));
        // The greeting and the closing hold no lure.
        assert!(lure_passages("今後ともよろしくお願いいたします。", &[], 2).is_empty());
    }

    #[test]
    fn one_passage_keeps_the_sentence_with_most_terms_and_full_width_forms_match() {
        let p = lure_passages(PHISH, &[], 1);
        assert_eq!(p.len(), 1);
        assert!(p[0].text.starts_with("ご本人確認"), "{p:?}");
        // ＩＤ (full width) is the lure ID; the quote keeps the mail's own form.
        let p = lure_passages("ＩＤとﾊﾟｽﾜｰﾄﾞを入力してください。", &[], 1);
        assert_eq!(p[0].text, "ＩＤとﾊﾟｽﾜｰﾄﾞを入力してください。");
        assert_eq!(p[0].terms, ["パスワード", "ID"]);
    }

    #[test]
    fn lookalikes_are_not_lures_and_link_texts_count() {
        // 「ご本人様」 shares characters with 「ご本人確認」, 「口座番号」 is not 「口座」 … but
        // holds it: a term inside a longer word matches, as the index's phrase does.
        assert!(lure_passages("ご本人様へのご案内です。", &[], 1).is_empty());
        let links = vec!["www.smbc.co.jp".to_string()];
        let p = lure_passages("詳しくは www.smbc.co.jp をご覧ください。", &links, 1);
        assert_eq!(p[0].terms, ["www.smbc.co.jp"]);
    }

    #[test]
    fn long_sentences_are_cut_around_the_term_and_control_characters_go() {
        let long = format!(
            "{}口座が凍結されました{}",
            "あ".repeat(300),
            "い".repeat(300)
        );
        let p = lure_passages(&long, &[], 1);
        let t = &p[0].text;
        assert!(t.starts_with('…') && t.ends_with('…'), "{t}");
        assert!(t.contains("口座が凍結"));
        assert!(t.chars().count() <= MAX_PASSAGE_CHARS + 2);
        let p = lure_passages("パスワード\u{1b}[31mを入力", &[], 1);
        assert!(!p[0].text.contains('\u{1b}'));
    }
}
