//! Tokens of the content index: NFKC, lower case, then character bigrams for CJK runs
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

/// One token: the term (lower case) and its byte range in the *normalized* text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub from: usize,
    pub to: usize,
    pub position: usize,
}

/// NFKC: what the index and the snippets work on (tokens are lower-cased on their own,
/// so that a snippet keeps the text's case and its offsets stay those of this text).
pub fn normalize(text: &str) -> String {
    text.nfkc().collect()
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
                text: norm[s..end].to_lowercase(),
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

/// One position of a phrase query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryTerm {
    /// This token.
    Exact(String),
    /// A lone CJK character that *starts* a multi-token phrase: in the text it may be the
    /// second half of a bigram (「第39号」 in 「次第39号」), so the unigram or any bigram
    /// ending with it.
    Ends(char),
    /// A lone CJK character that *ends* a multi-token phrase (「第39号」 in 「第39号の」):
    /// the unigram or any bigram starting with it.
    Starts(char),
}

impl QueryTerm {
    /// Whether the token `t` stands at this position; the part of it that matched.
    pub fn matches(&self, t: &Token) -> Option<(usize, usize)> {
        let mut chars = t.text.chars();
        let (a, b) = (chars.next(), chars.next());
        match self {
            QueryTerm::Exact(s) => (t.text == *s).then_some((t.from, t.to)),
            QueryTerm::Ends(c) => match (a, b) {
                (Some(x), None) if x == *c => Some((t.from, t.to)),
                (Some(x), Some(y)) if y == *c && is_cjk(x) => Some((t.from + x.len_utf8(), t.to)),
                _ => None,
            },
            QueryTerm::Starts(c) => match (a, b) {
                (Some(x), None) if x == *c => Some((t.from, t.to)),
                (Some(x), Some(y)) if x == *c && is_cjk(y) => Some((t.from, t.from + x.len_utf8())),
                _ => None,
            },
        }
    }
}

/// The positions of a phrase query (see `QueryTerm`).
pub fn query_pattern(phrase: &str) -> Vec<QueryTerm> {
    let terms = query_terms(phrase);
    let n = terms.len();
    terms
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let mut cs = t.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if n > 1 && is_cjk(c) && i == 0 => QueryTerm::Ends(c),
                (Some(c), None) if n > 1 && is_cjk(c) && i == n - 1 => QueryTerm::Starts(c),
                _ => QueryTerm::Exact(t),
            }
        })
        .collect()
}

/// Byte ranges in `norm` (normalized text) where the phrase `pattern` occurs.
pub fn find_phrase(norm: &str, pattern: &[QueryTerm], max_hits: usize) -> Vec<(usize, usize)> {
    if pattern.is_empty() {
        return Vec::new();
    }
    let mut toks = Vec::new();
    tokenize(norm, |t| toks.push(t));
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if toks.len() - i < pattern.len() {
            break;
        }
        let spans: Option<Vec<(usize, usize)>> = toks[i..i + pattern.len()]
            .iter()
            .zip(pattern)
            .map(|(t, q)| q.matches(t))
            .collect();
        if let Some(spans) = spans {
            out.push((spans[0].0, spans[spans.len() - 1].1));
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
        let norm =
            normalize("お客様のＩＤとご本人確認が必要です。口座を凍結しました。次第39号の件");
        let find = |q: &str| find_phrase(&norm, &query_pattern(q), 10);
        assert_eq!(find("ご本人確認").len(), 1);
        assert_eq!(find("ID").len(), 1);
        assert_eq!(find("本人確").len(), 1);
        assert!(find("ご本人様").is_empty());
        assert!(find("口座番号").is_empty());
        let (a, b) = find("口座")[0];
        assert_eq!(&norm[a..b], "口座");
        // Lone characters at the phrase's edges sit inside bigrams of the text.
        let (a, b) = find("第39号")[0];
        assert_eq!(&norm[a..b], "第39号");
        assert!(find("第39番").is_empty());
    }
}
