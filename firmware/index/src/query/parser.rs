//! Recursive descent from tokens to an `Expr`.
//!
//! Grammar (precedence NOT > AND > OR, adjacent terms are ANDed as in Lucene/NetRAPTOR):
//!
//! ```text
//! query   := or EOF
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*
//! unary   := ("NOT" | "-") unary | primary
//! primary := "(" or ")" | field ":" fvalue | value
//! fvalue  := word | ">"word | ">="word | "<"word | "<="word | "quoted" | range
//!          | "(" value (["OR"] value)* ")"
//! range   := "[" lo "TO" hi "]" | "{" lo "TO" hi "}"      (either bracket on either side)
//! ```
//!
//! Values are checked against their field's kind here (numbers, byte sizes, addresses,
//! times), so a typo is reported at its column rather than silently matching nothing.

use super::ast::{Cmp, Expr, Value, glob_parts, unescape_word};
use super::fields::{Field, Kind};
use super::lexer::{Tok, Token, lex};
use super::{MAX_DEPTH, MAX_QUERY_LEN, MAX_TERMS, MAX_WILDCARDS, QueryError};

pub fn parse(q: &str) -> Result<Expr, QueryError> {
    parse_with(q, None)
}

/// Like [`parse`]; with the site's time (`site`), `time:` also takes local times without
/// an offset and the words `business` / `night` ([`super::local::localize`] gives them
/// their meaning before planning).
pub fn parse_with(q: &str, site: Option<&super::local::SiteTime>) -> Result<Expr, QueryError> {
    if q.len() > MAX_QUERY_LEN {
        return Err(QueryError::new(
            q,
            MAX_QUERY_LEN.min(q.len()),
            format!("the query is longer than {MAX_QUERY_LEN} bytes; shorten it"),
        ));
    }
    let tokens = lex(q)?;
    if tokens.is_empty() {
        return Err(QueryError::new(
            q,
            0,
            "the query is empty; write `*` to match every session".into(),
        ));
    }
    let mut p = Parser {
        q,
        t: tokens,
        i: 0,
        depth: 0,
        terms: 0,
        local: site.is_some(),
    };
    let e = p.or()?;
    if let Some(t) = p.peek() {
        let msg = match t.kind {
            Tok::RParen => "this `)` closes nothing; remove it or add the `(`".to_string(),
            _ => "unexpected text here".to_string(),
        };
        return Err(p.err_at(t.offset, msg));
    }
    Ok(e)
}

struct Parser<'a> {
    q: &'a str,
    t: Vec<Token>,
    i: usize,
    depth: usize,
    terms: usize,
    /// The site's time zone and business hours are known (see [`parse_with`]).
    local: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i)
    }

    fn end_offset(&self) -> usize {
        self.q.len()
    }

    fn err_at(&self, offset: usize, msg: String) -> QueryError {
        QueryError::new(self.q, offset, msg)
    }

    fn enter(&mut self, offset: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_at(
                offset,
                format!("the query nests deeper than {MAX_DEPTH} levels; simplify it"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and()?];
        while matches!(self.peek(), Some(Token { kind: Tok::Or, .. })) {
            self.i += 1;
            parts.push(self.and()?);
        }
        Ok(Expr::or(parts))
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek().map(|t| &t.kind) {
                Some(Tok::And) => {
                    self.i += 1;
                    parts.push(self.unary()?);
                }
                Some(Tok::Or) | Some(Tok::RParen) | None => break,
                Some(_) => parts.push(self.unary()?),
            }
        }
        Ok(Expr::and(parts))
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        match self.peek() {
            Some(Token {
                kind: Tok::Not | Tok::Minus,
                offset,
                ..
            }) => {
                let off = *offset;
                self.i += 1;
                self.enter(off)?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.err_at(
                self.end_offset(),
                "the query ends where a term was expected".into(),
            ));
        };
        self.i += 1;
        match tok.kind {
            Tok::LParen => {
                self.enter(tok.offset)?;
                if matches!(
                    self.peek(),
                    Some(Token {
                        kind: Tok::RParen,
                        ..
                    })
                ) {
                    return Err(self.err_at(tok.offset, "empty parentheses".into()));
                }
                let e = self.or()?;
                match self.peek() {
                    Some(Token {
                        kind: Tok::RParen, ..
                    }) => self.i += 1,
                    _ => {
                        return Err(
                            self.err_at(tok.offset, "this `(` is never closed; add the `)`".into())
                        );
                    }
                }
                self.depth -= 1;
                Ok(e)
            }
            Tok::RParen => {
                Err(self.err_at(tok.offset, "a term was expected before this `)`".into()))
            }
            Tok::And | Tok::Or => {
                Err(self.err_at(tok.offset, "AND/OR needs a term on both sides".into()))
            }
            Tok::Not | Tok::Minus => unreachable_not(self, tok.offset),
            Tok::Range { .. } => Err(self.err_at(
                tok.offset,
                "a range needs a field, e.g. status:[400 TO 499]".into(),
            )),
            Tok::Quoted(s) => {
                self.count_term(tok.offset)?;
                Ok(Expr::Term {
                    field: None,
                    value: Value::Phrase(s),
                })
            }
            Tok::Word(w) => self.word(w, tok.offset),
        }
    }

    fn count_term(&mut self, offset: usize) -> Result<(), QueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.err_at(
                offset,
                format!("the query has more than {MAX_TERMS} terms; split it"),
            ));
        }
        Ok(())
    }

    fn word(&mut self, w: String, offset: usize) -> Result<Expr, QueryError> {
        self.count_term(offset)?;
        let Some((name, rest)) = split_field(&w) else {
            return self.bare(w, offset);
        };
        let Some(field) = Field::from_name(name) else {
            if is_address(&w) {
                return self.bare(w, offset);
            }
            return Err(self.err_at(
                offset,
                format!("unknown field `{name}`; valid fields: {}", Field::names()),
            ));
        };
        let value_offset = offset + name.len() + 1;
        if !rest.is_empty() {
            let value = parse_word_value(rest);
            self.check(field, &value, value_offset)?;
            return Ok(Expr::Term {
                field: Some(field),
                value,
            });
        }
        // `field:` followed directly by a quoted value, a group or a range.
        let next = self.peek().cloned();
        match next {
            Some(Token {
                kind,
                offset: o,
                spaced: false,
            }) => match kind {
                Tok::Quoted(s) => {
                    self.i += 1;
                    let value = Value::Phrase(s);
                    self.check(field, &value, o)?;
                    Ok(Expr::Term {
                        field: Some(field),
                        value,
                    })
                }
                Tok::Range {
                    lo,
                    hi,
                    lo_inclusive,
                    hi_inclusive,
                } => {
                    self.i += 1;
                    let open = |s: String| if s == "*" { None } else { Some(s) };
                    let value = Value::Range {
                        lo: open(lo),
                        hi: open(hi),
                        lo_inclusive,
                        hi_inclusive,
                    };
                    self.check(field, &value, o)?;
                    Ok(Expr::Term {
                        field: Some(field),
                        value,
                    })
                }
                Tok::LParen => {
                    self.i += 1;
                    self.group(field, o)
                }
                _ => Err(self.err_at(value_offset, format!("`{name}:` needs a value"))),
            },
            _ => Err(self.err_at(
                value_offset.min(self.q.len()),
                format!("`{name}:` needs a value (no space after the colon)"),
            )),
        }
    }

    fn group(&mut self, field: Field, open: usize) -> Result<Expr, QueryError> {
        let mut values = Vec::new();
        loop {
            let Some(t) = self.peek().cloned() else {
                return Err(self.err_at(open, "this `(` is never closed; add the `)`".into()));
            };
            self.i += 1;
            let value = match t.kind {
                Tok::RParen => break,
                Tok::Or => continue,
                Tok::Word(w) => parse_word_value(&w),
                Tok::Quoted(s) => Value::Phrase(s),
                Tok::And | Tok::Not | Tok::Minus => {
                    return Err(self.err_at(
                        t.offset,
                        format!(
                            "`{field}:( … )` lists values of which any may match; write AND/NOT outside it (e.g. {field}:a AND {field}:b)"
                        ),
                    ));
                }
                Tok::LParen | Tok::Range { .. } => {
                    return Err(self.err_at(
                        t.offset,
                        "only plain or quoted values go in a value list".into(),
                    ));
                }
            };
            self.count_term(t.offset)?;
            self.check(field, &value, t.offset)?;
            values.push(value);
        }
        if values.is_empty() {
            return Err(self.err_at(open, "empty value list".into()));
        }
        Ok(Expr::AnyOf { field, values })
    }

    fn bare(&self, w: String, offset: usize) -> Result<Expr, QueryError> {
        if w == "*" {
            return Ok(Expr::All);
        }
        if let Some(parts) = glob_parts(&w) {
            check_wildcards(self, &parts, offset)?;
        }
        Ok(Expr::Term {
            field: None,
            value: Value::Word(w),
        })
    }

    /// Checks that `value` means something for `field`.
    fn check(&self, field: Field, value: &Value, offset: usize) -> Result<(), QueryError> {
        let kind = field.kind();
        let bad = |msg: String| Err(self.err_at(offset, msg));
        match value {
            Value::Word(w) if w == "*" => Ok(()),
            Value::Word(w)
                if kind == Kind::Time
                    && (w.eq_ignore_ascii_case("business") || w.eq_ignore_ascii_case("night")) =>
            {
                if self.local {
                    Ok(())
                } else {
                    bad(format!(
                        "`{field}:{w}` needs the site's business hours; `kuroko search` and `kuroko pcap --query` take them from [site] business_hours"
                    ))
                }
            }
            Value::Word(w) => match kind {
                Kind::Keyword | Kind::Text => {
                    if let Some(parts) = glob_parts(w) {
                        check_wildcards(self, &parts, offset)?;
                    }
                    Ok(())
                }
                Kind::Content if glob_parts(w).is_some() => bad(format!(
                    "`{field}` searches text by phrase; wildcards do not apply (write {field}:\"…\", or {field}:* for any)"
                )),
                Kind::Content => Ok(()),
                Kind::Time => bad(format!(
                    "`{field}` takes a range or comparison, e.g. {field}:[2026-11-18T09:00:00+09:00 TO *] or {field}:>2026-11-18T09:00:00+09:00"
                )),
                _ => {
                    check_scalar(kind, &unescape_word(w)).or_else(|m| bad(format!("{field}: {m}")))
                }
            },
            Value::Phrase(p) => match kind {
                Kind::Keyword | Kind::Text | Kind::Content => Ok(()),
                _ => check_scalar(kind, p).or_else(|m| bad(format!("{field}: {m}"))),
            },
            Value::Cmp(_, v)
            | Value::Range {
                lo: Some(v),
                hi: None,
                ..
            }
            | Value::Range {
                lo: None,
                hi: Some(v),
                ..
            } => self.check_ordered(field, kind, v, offset),
            Value::Range {
                lo: Some(a),
                hi: Some(b),
                ..
            } => {
                self.check_ordered(field, kind, a, offset)?;
                self.check_ordered(field, kind, b, offset)
            }
            Value::Range {
                lo: None, hi: None, ..
            } => self.check_ordered(field, kind, "0", offset).or(Ok(())),
        }
    }

    fn check_ordered(
        &self,
        field: Field,
        kind: Kind,
        v: &str,
        offset: usize,
    ) -> Result<(), QueryError> {
        match kind {
            Kind::Keyword | Kind::Text | Kind::Content => Err(self.err_at(
                offset,
                format!("`{field}` is text; ranges and comparisons work on numbers, sizes, addresses and times"),
            )),
            Kind::Time if self.local && super::local::naive_time(v).is_some() => Ok(()),
            _ => check_scalar(kind, v).map_err(|m| self.err_at(offset, format!("{field}: {m}"))),
        }
    }
}

fn unreachable_not(p: &Parser<'_>, offset: usize) -> Result<Expr, QueryError> {
    // `unary` consumes NOT/-; reaching here means a NOT with nothing after it.
    Err(p.err_at(offset, "NOT needs a term after it".into()))
}

fn check_wildcards(
    p: &Parser<'_>,
    parts: &[super::ast::GlobPart],
    offset: usize,
) -> Result<(), QueryError> {
    let n = parts
        .iter()
        .filter(|g| !matches!(g, super::ast::GlobPart::Lit(_)))
        .count();
    if n > MAX_WILDCARDS {
        return Err(p.err_at(
            offset,
            format!("more than {MAX_WILDCARDS} wildcards in one value; use fewer"),
        ));
    }
    Ok(())
}

/// Splits `field:value` at the first unescaped colon when the part before it looks like a
/// field name.
fn split_field(w: &str) -> Option<(&str, &str)> {
    let colon = w.find(':')?;
    let name = &w[..colon];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((name, &w[colon + 1..]))
}

fn is_address(w: &str) -> bool {
    let u = unescape_word(w);
    u.parse::<std::net::IpAddr>().is_ok() || u.parse::<ipnet::IpNet>().is_ok()
}

fn parse_word_value(rest: &str) -> Value {
    for (prefix, op) in [
        (">=", Cmp::Ge),
        ("<=", Cmp::Le),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
    ] {
        if let Some(v) = rest.strip_prefix(prefix) {
            return Value::Cmp(op, v.to_string());
        }
    }
    Value::Word(rest.to_string())
}

/// Checks a scalar value of a non-text kind; the message says what was expected.
pub(crate) fn check_scalar(kind: Kind, v: &str) -> Result<(), String> {
    super::plan::scalar(kind, v).map(|_| ())
}
