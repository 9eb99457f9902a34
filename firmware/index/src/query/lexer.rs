//! Splits query text into tokens, each with the column it starts at.
//!
//! Lucene syntax is context sensitive in small ways (a range `[a TO b]` has spaces inside,
//! an IPv6 CIDR has colons inside its value), so the lexer keeps words whole up to
//! whitespace, parentheses and quotes, and reads a bracketed range as one token when it
//! follows `field:`. The parser splits `field:value` words.

use super::QueryError;

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: Tok,
    /// Byte offset in the query.
    pub offset: usize,
    /// Whether whitespace came before this token (`field:(…)` needs none).
    pub spaced: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// `-` directly before a term: NOT.
    Minus,
    /// Unquoted text as written (escapes kept).
    Word(String),
    /// Quoted text, unescaped.
    Quoted(String),
    /// `[lo TO hi]` / `{lo TO hi}`: the raw bounds.
    Range {
        lo: String,
        hi: String,
        lo_inclusive: bool,
        hi_inclusive: bool,
    },
}

pub fn lex(q: &str) -> Result<Vec<Token>, QueryError> {
    let mut out = Vec::new();
    let b: Vec<(usize, char)> = q.char_indices().collect();
    let mut i = 0;
    let mut spaced = true;
    while i < b.len() {
        let (off, c) = b[i];
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '"' => {
                let (s, next) = quoted(q, &b, i)?;
                i = next;
                Tok::Quoted(s)
            }
            '[' | '{' if prev_is_colon(&b, i) => {
                let (t, next) = range(q, &b, i)?;
                i = next;
                t
            }
            '-' if spaced
                && b.get(i + 1)
                    .is_some_and(|&(_, n)| !n.is_whitespace() && n != ')') =>
            {
                i += 1;
                Tok::Minus
            }
            _ => {
                let start = i;
                let mut w = String::new();
                while i < b.len() {
                    let ch = b[i].1;
                    if ch.is_whitespace() || ch == '(' || ch == ')' || ch == '"' {
                        break;
                    }
                    if (ch == '[' || ch == '{') && i > start && b[i - 1].1 == ':' {
                        break;
                    }
                    if ch == '\\' {
                        w.push(ch);
                        i += 1;
                        match b.get(i) {
                            Some(&(_, n)) => w.push(n),
                            None => {
                                return Err(QueryError::new(
                                    q,
                                    b[i - 1].0,
                                    "a backslash at the end of the query escapes nothing".into(),
                                ));
                            }
                        }
                        i += 1;
                        continue;
                    }
                    w.push(ch);
                    i += 1;
                }
                match w.as_str() {
                    "AND" | "&&" => Tok::And,
                    "OR" | "||" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => Tok::Word(w),
                }
            }
        };
        out.push(Token {
            kind: tok,
            offset: off,
            spaced,
        });
        spaced = false;
    }
    Ok(out)
}

fn prev_is_colon(b: &[(usize, char)], i: usize) -> bool {
    i > 0 && b[i - 1].1 == ':'
}

fn quoted(q: &str, b: &[(usize, char)], start: usize) -> Result<(String, usize), QueryError> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < b.len() {
        match b[i].1 {
            '"' => return Ok((s, i + 1)),
            '\\' if i + 1 < b.len() => {
                s.push(b[i + 1].1);
                i += 2;
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    Err(QueryError::new(
        q,
        b[start].0,
        "this quote is never closed; add the closing `\"`".into(),
    ))
}

fn range(q: &str, b: &[(usize, char)], start: usize) -> Result<(Tok, usize), QueryError> {
    let lo_inclusive = b[start].1 == '[';
    let mut i = start + 1;
    let mut inner = String::new();
    while i < b.len() {
        let c = b[i].1;
        if c == ']' || c == '}' {
            let parts: Vec<&str> = inner.split_whitespace().collect();
            if parts.len() != 3 || parts[1] != "TO" {
                return Err(QueryError::new(
                    q,
                    b[start].0,
                    "a range is written [low TO high] or {low TO high} (`*` for open)".into(),
                ));
            }
            return Ok((
                Tok::Range {
                    lo: parts[0].to_string(),
                    hi: parts[2].to_string(),
                    lo_inclusive,
                    hi_inclusive: c == ']',
                },
                i + 1,
            ));
        }
        inner.push(c);
        i += 1;
    }
    Err(QueryError::new(
        q,
        b[start].0,
        "this range is never closed; add `]` or `}`".into(),
    ))
}
