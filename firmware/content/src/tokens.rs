//! Tokens of the content index: NFKC + lower case, then character bigrams for CJK runs
//! and words for everything else.
//!
//! Japanese is written without spaces; a dictionary tokenizer (Lindera) needs a dictionary
//! of tens of MB and splits unknown words (names, product names) unpredictably, so a
//! phrase query may miss text the index holds. Overlapping bigrams need no dictionary and
//! give full recall for any phrase of two or more characters: the phrase 「ご本人確認」 is
//! the bigram sequence ご本 本人 人確 確認 at consecutive positions, found by a phrase query
//! on exactly those positions; 「ご本人様」 (sharing characters) is not. A CJK run of one
//! character is one unigram token. Latin letters and digits form words (`password`, `id`),
//! so 「ＩＤ」 (full width) and "ID" are the same token after NFKC.
//!
//! Positions: every token takes the next position, words and bigrams alike, so a phrase
//! mixing scripts (`ID確認`) is the same sequence in the query and in the text.

use unicode_normalization::UnicodeNormalization;

/// One token: the normalized term and the byte range in the *normalized* text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub from: usize,
    pub to: usize,
    pub position: usize,
}

/// NFKC and lower case: what the index and the snippets work on.
pub fn normalize(text: &str) -> String {
    text.nfkc().flat_map(char::to_lowercase).collect()
}

/// Whether `c` belongs to a script written without spaces (CJK ideographs, kana, hangul).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // hiragana, katakana
        | 0x31F0..=0x31FF // katakana extensions
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // compatibility ideographs
        | 0xAC00..=0xD7AF // hangul syllables
        | 0x20000..=0x2FFFF
        | 0x3005..=0x3007 // 々 〆 〇
    )
}

/// Tokens of already normalized text (see `normalize`).
pub fn tokenize(norm: &str, mut emit: impl FnMut(Token)) {
    let mut position = 0;
    let mut word_start: Option<usize> = None;
    // The previous CJK char of the current run: (byte offset, char).
    let mut prev_cjk: Option<(usize, char)> = None;
    let mut run_len = 0usize;
    let flush_word = |start: &mut Option<usize>,
                      end: usize,
                      position: &mut usize,
                      emit: &mut dyn FnMut(Token)| {
        if let Some(s) = start.take() {
            emit(Token {
                text: norm[s..end].to_string(),
                from: s,
                to: end,
                position: *position,
            });
            *position += 1;
        }
    };
    let flush_run = |prev: &mut Option<(usize, char)>,
                     run_len: &mut usize,
                     position: &mut usize,
                     emit: &mut dyn FnMut(Token)| {
        if *run_len == 1
            && let Some((at, c)) = *prev
        {
            emit(Token {
                text: c.to_string(),
                from: at,
                to: at + c.len_utf8(),
                position: *position,
            });
            *position += 1;
        }
        *prev = None;
        *run_len = 0;
    };
    for (at, c) in norm.char_indices() {
        if is_cjk(c) {
            flush_word(&mut word_start, at, &mut position, &mut emit);
            if let Some((p_at, p)) = prev_cjk {
                let mut t = String::with_capacity(8);
                t.push(p);
                t.push(c);
                emit(Token {
                    text: t,
                    from: p_at,
                    to: at + c.len_utf8(),
                    position,
                });
                position += 1;
            }
            prev_cjk = Some((at, c));
            run_len += 1;
        } else if c.is_alphanumeric() {
            flush_run(&mut prev_cjk, &mut run_len, &mut position, &mut emit);
            if word_start.is_none() {
                word_start = Some(at);
            }
        } else {
            flush_word(&mut word_start, at, &mut position, &mut emit);
            flush_run(&mut prev_cjk, &mut run_len, &mut position, &mut emit);
        }
    }
    flush_word(&mut word_start, norm.len(), &mut position, &mut emit);
    flush_run(&mut prev_cjk, &mut run_len, &mut position, &mut emit);
}

/// The terms of a query phrase, in order (normalized first).
pub fn query_terms(phrase: &str) -> Vec<String> {
    let norm = normalize(phrase);
    let mut out = Vec::new();
    tokenize(&norm, |t| out.push(t.text));
    out
}

/// Byte ranges in `norm` (normalized text) where the token sequence `terms` occurs.
pub fn find_phrase(norm: &str, terms: &[String], max_hits: usize) -> Vec<(usize, usize)> {
    if terms.is_empty() {
        return Vec::new();
    }
    let mut toks = Vec::new();
    tokenize(norm, |t| toks.push(t));
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if toks.len() - i < terms.len() {
            break;
        }
        if toks[i..i + terms.len()]
            .iter()
            .zip(terms)
            .all(|(t, q)| t.text == *q)
        {
            out.push((toks[i].from, toks[i + terms.len() - 1].to));
            if out.len() >= max_hits {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(s: &str) -> Vec<String> {
        query_terms(s)
    }

    #[test]
    fn bigrams_for_japanese_words_for_latin() {
        assert_eq!(terms("ご本人確認"), ["ご本", "本人", "人確", "確認"]);
        assert_eq!(terms("ＩＤとPassword"), ["id", "と", "password"]);
        assert_eq!(terms("口座"), ["口座"]);
        assert_eq!(terms("円"), ["円"]);
        assert_eq!(terms("ID確認 2024年"), ["id", "確認", "2024", "年"]);
    }

    #[test]
    fn phrases_are_found_and_lookalikes_are_not() {
        let norm = normalize("お客様のＩＤとご本人確認が必要です。口座を凍結しました");
        assert_eq!(find_phrase(&norm, &terms("ご本人確認"), 10).len(), 1);
        assert_eq!(find_phrase(&norm, &terms("ID"), 10).len(), 1);
        assert_eq!(find_phrase(&norm, &terms("本人確"), 10).len(), 1);
        assert!(find_phrase(&norm, &terms("ご本人様"), 10).is_empty());
        assert!(find_phrase(&norm, &terms("口座番号"), 10).is_empty());
        let (a, b) = find_phrase(&norm, &terms("口座"), 10)[0];
        assert_eq!(&norm[a..b], "口座");
    }
}
