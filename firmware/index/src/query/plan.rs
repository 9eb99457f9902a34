//! What a query means: the parsed tree lowered to primitive predicates over session fields.
//!
//! This is the one place where the semantics live. The tantivy compiler (`crate::compile`)
//! and the record matcher (`crate::matcher`) both consume a `Plan`, so a saved search that
//! fires as an alert matches exactly the sessions a search shows.
//!
//! Semantics, per field kind:
//!
//! | value | keyword field | text field | number / bytes | address | time |
//! | --- | --- | --- | --- | --- | --- |
//! | `v` | whole value, any case | every word of `v` is a word of the field | `= v` | address or CIDR | – |
//! | `"v"` | whole value, any case | `v` is a substring (NetRAPTOR), any case | `= v` | as unquoted | – |
//! | `v*x?` | glob over the whole value, any case | same | – | – | – |
//! | `*` | has a value | has a value | has a value | has a value | always |
//! | `>v` `[a TO b]` | – | – | numeric | address order | instant |
//!
//! Words are runs of letters and digits (Unicode), lower-cased; for Japanese text, whose
//! words are not separated by spaces, use the quoted (substring) form.
//!
//! `body` and `content` (kind `Content`) search the content index: a value, quoted or not,
//! is a phrase of its tokens (NFKC, CJK bigrams, Latin words: `kuroko_content::tokens`),
//! `*` any content; a bare *phrase* also searches `content`.
//!
//! Aliases (what NetRAPTOR users expect): `protocol:https` matches `https` and `tls` to
//! server port 443; `protocol:ssl` matches `tls`. `port` is client or server port, `ip`
//! client or server address. `time` is the session start. A bare value searches every text
//! and keyword field (and the addresses, when it is an address or CIDR).

use super::ast::{Cmp, Expr, GlobPart, Value, glob_parts, unescape_word};
use super::fields::{Field, Kind};
use std::net::IpAddr;

/// A lowered query.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    All,
    Nothing,
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
    Pred(Pred),
}

/// A primitive test on one stored field. Text values are already lower-cased.
#[derive(Clone, Debug, PartialEq)]
pub enum Pred {
    /// Some value equals this (case-insensitive).
    Eq(Field, String),
    /// Some value matches the glob (case-insensitive, whole value).
    Glob(Field, Vec<GlobPart>),
    /// Some value contains this substring (case-insensitive).
    Contains(Field, String),
    /// Every token is a word of some value of the field.
    Words(Field, Vec<String>),
    /// Some value is in `[lo, hi]`.
    U64(Field, u64, u64),
    /// Some address is in `[lo, hi]` (IPv4 as IPv4-mapped IPv6).
    Ip(Field, u128, u128),
    /// The start time is in `[lo, hi]` (nanoseconds).
    Time(i64, i64),
    /// Reconstructed content (`body`, `content`): answered by the content index, which
    /// `Index::resolve_content` turns into the matching session ids before the session
    /// index runs the query. A record alone does not hold its content: the record matcher
    /// (alert conditions) treats it as no match.
    Content(Field, ContentMatch),
    /// The session id is one of these (lower-cased): what a `Content` predicate resolves
    /// to (one term-set lookup instead of an OR of thousands of terms).
    Ids(Vec<String>),
}

/// What a `body:` / `content:` term asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum ContentMatch {
    /// The tokens of this text at consecutive positions (quoted or not: Japanese has no
    /// spaces, so a "word" is a phrase of bigrams; see `kuroko_content::tokens`).
    Phrase(String),
    /// Has any content of that kind (`body:*`).
    Any,
}

/// A typed scalar value of a non-text field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    U64(u64),
    /// An address or a CIDR, as an inclusive range.
    Ip(u128, u128),
    Time(i64),
}

/// Splits text into lower-case words (runs of alphanumeric chars); the index's tokenizer
/// does the same (tantivy's `SimpleTokenizer` + `LowerCaser`).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Reads a scalar of `kind`; the error says what was expected.
pub fn scalar(kind: Kind, v: &str) -> Result<Scalar, String> {
    match kind {
        Kind::Number => v
            .parse::<u64>()
            .map(Scalar::U64)
            .map_err(|_| format!("`{v}` is not a whole number")),
        Kind::Bytes => kuroko_model::units::parse_bytes(v).map(Scalar::U64),
        Kind::Ip => {
            if let Ok(ip) = v.parse::<IpAddr>() {
                let x = ip_to_u128(ip);
                return Ok(Scalar::Ip(x, x));
            }
            match v.parse::<ipnet::IpNet>() {
                Ok(net) => Ok(Scalar::Ip(
                    ip_to_u128(net.network()),
                    ip_to_u128(net.broadcast()),
                )),
                Err(_) => Err(format!(
                    "`{v}` is not an address or CIDR; write e.g. 10.0.0.5, 10.0.0.0/8 or 2001:db8::/32"
                )),
            }
        }
        Kind::Time => kuroko_model::Timestamp::parse_rfc3339(v).map(|t| Scalar::Time(t.nanos())),
        Kind::Keyword | Kind::Text | Kind::Content => Err("text has no order".into()),
    }
}

/// An error lowering a checked tree; only reachable for trees not made by the parser.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PlanError {
    pub field: String,
    pub message: String,
}

impl Plan {
    /// Lowers a parsed expression.
    pub fn from_expr(e: &Expr) -> Result<Plan, PlanError> {
        Ok(match e {
            Expr::All => Plan::All,
            Expr::And(parts) => Plan::And(
                parts
                    .iter()
                    .map(Plan::from_expr)
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(parts) => Plan::Or(
                parts
                    .iter()
                    .map(Plan::from_expr)
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(inner) => Plan::Not(Box::new(Plan::from_expr(inner)?)),
            Expr::Term {
                field: Some(f),
                value,
            } => term(*f, value)?,
            Expr::Term { field: None, value } => bare(value),
            Expr::AnyOf { field, values } => Plan::Or(
                values
                    .iter()
                    .map(|v| term(*field, v))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

fn err(field: Field, message: String) -> PlanError {
    PlanError {
        field: field.name().to_string(),
        message,
    }
}

/// `port` and `ip` stand for two stored fields.
fn slots(field: Field) -> Vec<Field> {
    match field {
        Field::Port => vec![Field::ClientPort, Field::ServerPort],
        Field::Ip => vec![Field::Client, Field::Server],
        f => vec![f],
    }
}

fn any_slot(field: Field, make: impl Fn(Field) -> Plan) -> Plan {
    let mut s: Vec<Plan> = slots(field).into_iter().map(make).collect();
    if s.len() == 1 {
        s.pop().expect("one")
    } else {
        Plan::Or(s)
    }
}

fn term(field: Field, value: &Value) -> Result<Plan, PlanError> {
    let kind = field.kind();
    if let Value::Word(w) = value
        && w == "*"
    {
        return Ok(match kind {
            Kind::Time => Plan::All,
            Kind::Number | Kind::Bytes => {
                any_slot(field, |s| Plan::Pred(Pred::U64(s, 0, u64::MAX)))
            }
            Kind::Ip => any_slot(field, |s| Plan::Pred(Pred::Ip(s, 0, u128::MAX))),
            Kind::Keyword | Kind::Text => Plan::Pred(Pred::Glob(field, vec![GlobPart::Any])),
            Kind::Content => Plan::Pred(Pred::Content(field, ContentMatch::Any)),
        });
    }
    match kind {
        Kind::Content => content_term(field, value),
        Kind::Keyword | Kind::Text => text_term(field, value),
        _ => {
            let (lo, hi) = bounds(field, value)?;
            Ok(scalar_plan(field, lo, hi))
        }
    }
}

fn text_term(field: Field, value: &Value) -> Result<Plan, PlanError> {
    let kind = field.kind();
    let plan = match value {
        Value::Word(w) => {
            if let Some(parts) = glob_parts(w) {
                let parts = parts
                    .into_iter()
                    .flat_map(|p| match p {
                        GlobPart::Lit(c) => c.to_lowercase().map(GlobPart::Lit).collect::<Vec<_>>(),
                        p => vec![p],
                    })
                    .collect();
                Plan::Pred(Pred::Glob(field, parts))
            } else {
                let v = unescape_word(w);
                if kind == Kind::Keyword {
                    eq(field, v.to_lowercase())
                } else {
                    let toks = words(&v);
                    if toks.is_empty() {
                        Plan::Pred(Pred::Contains(field, v.to_lowercase()))
                    } else {
                        Plan::Pred(Pred::Words(field, toks))
                    }
                }
            }
        }
        Value::Phrase(p) => {
            if kind == Kind::Keyword {
                eq(field, p.to_lowercase())
            } else {
                Plan::Pred(Pred::Contains(field, p.to_lowercase()))
            }
        }
        Value::Cmp(..) | Value::Range { .. } => {
            return Err(err(
                field,
                "ranges and comparisons do not apply to text".into(),
            ));
        }
    };
    Ok(plan)
}

/// `body:` / `content:`: a phrase of the value's tokens; wildcards and ranges do not apply.
fn content_term(field: Field, value: &Value) -> Result<Plan, PlanError> {
    let text = match value {
        Value::Word(w) => {
            if glob_parts(w).is_some() {
                return Err(err(
                    field,
                    "wildcards do not apply to content; search a phrase (`body:\"口座\"`) or `*` for any".into(),
                ));
            }
            unescape_word(w)
        }
        Value::Phrase(p) => p.clone(),
        Value::Cmp(..) | Value::Range { .. } => {
            return Err(err(
                field,
                "ranges and comparisons do not apply to content".into(),
            ));
        }
    };
    Ok(Plan::Pred(Pred::Content(field, ContentMatch::Phrase(text))))
}

/// Keyword equality, with the protocol aliases.
fn eq(field: Field, v: String) -> Plan {
    if field == Field::Protocol {
        match v.as_str() {
            "https" => {
                return Plan::Or(vec![
                    Plan::Pred(Pred::Eq(Field::Protocol, "https".into())),
                    Plan::And(vec![
                        Plan::Pred(Pred::Eq(Field::Protocol, "tls".into())),
                        Plan::Pred(Pred::U64(Field::ServerPort, 443, 443)),
                    ]),
                ]);
            }
            "ssl" => return Plan::Pred(Pred::Eq(Field::Protocol, "tls".into())),
            _ => {}
        }
    }
    Plan::Pred(Pred::Eq(field, v))
}

fn bare(value: &Value) -> Plan {
    let mut alts = Vec::new();
    for f in Field::bare_fields() {
        if let Ok(p) = text_term(f, value) {
            alts.push(p);
        }
    }
    let text = match value {
        Value::Word(w) => unescape_word(w),
        Value::Phrase(p) => p.clone(),
        _ => String::new(),
    };
    if let Ok(Scalar::Ip(lo, hi)) = scalar(Kind::Ip, &text) {
        alts.push(Plan::Pred(Pred::Ip(Field::Client, lo, hi)));
        alts.push(Plan::Pred(Pred::Ip(Field::Server, lo, hi)));
    }
    // A bare phrase also searches the reconstructed content (`content:"…"`).
    if let Value::Phrase(p) = value
        && !p.trim().is_empty()
    {
        alts.push(Plan::Pred(Pred::Content(
            Field::Content,
            ContentMatch::Phrase(p.clone()),
        )));
    }
    Plan::Or(alts)
}

/// Inclusive bounds of a scalar value; `None` for an open side.
fn bounds(field: Field, value: &Value) -> Result<(Option<Scalar>, Option<Scalar>), PlanError> {
    let kind = field.kind();
    let sc = |v: &str| scalar(kind, v).map_err(|m| err(field, m));
    Ok(match value {
        Value::Word(w) => {
            let s = sc(&unescape_word(w))?;
            match s {
                Scalar::Ip(lo, hi) => (Some(Scalar::Ip(lo, lo)), Some(Scalar::Ip(hi, hi))),
                s => (Some(s), Some(s)),
            }
        }
        Value::Phrase(p) => {
            let s = sc(p)?;
            match s {
                Scalar::Ip(lo, hi) => (Some(Scalar::Ip(lo, lo)), Some(Scalar::Ip(hi, hi))),
                s => (Some(s), Some(s)),
            }
        }
        Value::Cmp(op, v) => {
            let s = sc(v)?;
            match op {
                Cmp::Ge => (Some(low_end(s)), None),
                Cmp::Gt => (step(high_end(s), true), None).pipe_open_low(),
                Cmp::Le => (None, Some(high_end(s))),
                Cmp::Lt => (None, step(low_end(s), false)).pipe_open_high(),
            }
        }
        Value::Range {
            lo,
            hi,
            lo_inclusive,
            hi_inclusive,
        } => {
            let lo = match lo {
                None => None,
                Some(v) => {
                    let s = sc(v)?;
                    if *lo_inclusive {
                        Some(low_end(s))
                    } else {
                        step(high_end(s), true).or(Some(EMPTY))
                    }
                }
            };
            let hi = match hi {
                None => None,
                Some(v) => {
                    let s = sc(v)?;
                    if *hi_inclusive {
                        Some(high_end(s))
                    } else {
                        step(low_end(s), false).or(Some(EMPTY))
                    }
                }
            };
            (lo, hi)
        }
    })
}

/// Marker for "nothing can match" (an exclusive bound past the end of the type).
const EMPTY: Scalar = Scalar::Time(i64::MIN);

trait OpenBound {
    fn pipe_open_low(self) -> (Option<Scalar>, Option<Scalar>);
    fn pipe_open_high(self) -> (Option<Scalar>, Option<Scalar>);
}

impl OpenBound for (Option<Scalar>, Option<Scalar>) {
    fn pipe_open_low(self) -> (Option<Scalar>, Option<Scalar>) {
        (self.0.or(Some(EMPTY)), self.1)
    }
    fn pipe_open_high(self) -> (Option<Scalar>, Option<Scalar>) {
        (self.0, self.1.or(Some(EMPTY)))
    }
}

fn low_end(s: Scalar) -> Scalar {
    match s {
        Scalar::Ip(lo, _) => Scalar::Ip(lo, lo),
        s => s,
    }
}

fn high_end(s: Scalar) -> Scalar {
    match s {
        Scalar::Ip(_, hi) => Scalar::Ip(hi, hi),
        s => s,
    }
}

/// The next value up (`up`) or down; `None` past the end of the type.
fn step(s: Scalar, up: bool) -> Option<Scalar> {
    match s {
        Scalar::U64(v) => if up {
            v.checked_add(1)
        } else {
            v.checked_sub(1)
        }
        .map(Scalar::U64),
        Scalar::Ip(v, _) => if up {
            v.checked_add(1)
        } else {
            v.checked_sub(1)
        }
        .map(|x| Scalar::Ip(x, x)),
        Scalar::Time(v) => if up {
            v.checked_add(1)
        } else {
            v.checked_sub(1)
        }
        .map(Scalar::Time),
    }
}

fn scalar_plan(field: Field, lo: Option<Scalar>, hi: Option<Scalar>) -> Plan {
    if lo == Some(EMPTY) || hi == Some(EMPTY) {
        return Plan::Nothing;
    }
    match field.kind() {
        Kind::Time => {
            let l = match lo {
                Some(Scalar::Time(t)) => t,
                _ => i64::MIN,
            };
            let h = match hi {
                Some(Scalar::Time(t)) => t,
                _ => i64::MAX,
            };
            if l > h {
                Plan::Nothing
            } else {
                Plan::Pred(Pred::Time(l, h))
            }
        }
        Kind::Ip => {
            let l = match lo {
                Some(Scalar::Ip(x, _)) => x,
                _ => 0,
            };
            let h = match hi {
                Some(Scalar::Ip(_, x)) => x,
                _ => u128::MAX,
            };
            if l > h {
                Plan::Nothing
            } else {
                any_slot(field, |s| Plan::Pred(Pred::Ip(s, l, h)))
            }
        }
        _ => {
            let l = match lo {
                Some(Scalar::U64(x)) => x,
                _ => 0,
            };
            let h = match hi {
                Some(Scalar::U64(x)) => x,
                _ => u64::MAX,
            };
            if l > h {
                Plan::Nothing
            } else {
                any_slot(field, |s| Plan::Pred(Pred::U64(s, l, h)))
            }
        }
    }
}
