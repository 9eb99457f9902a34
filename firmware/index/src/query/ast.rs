//! The parsed query: a small tree that prints back to query text.
//!
//! `Display` prints a canonical form that parses back to the same tree (the round-trip
//! property the tests check), so a saved alert condition or a query shown in a report is
//! always re-runnable. Values keep their source spelling (`100MB`, `10.0.0.0/8`); their
//! meaning is decided once, in `plan`, for both the index and the record matcher.

use super::fields::Field;
use std::fmt;

/// A query expression. `And`/`Or` are kept flat (never an `And` directly inside an `And`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `*`: every session.
    All,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `field:value`, or a bare `value` (`field` is `None`) that searches every text field.
    Term {
        field: Option<Field>,
        value: Value,
    },
    /// `field:(v1 v2 …)`: any of the values.
    AnyOf {
        field: Field,
        values: Vec<Value>,
    },
}

/// Comparison operators of `field:>value` forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
        }
    }
}

/// A value as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Unquoted, exactly as typed (backslash escapes kept); may hold `*` and `?` wildcards.
    Word(String),
    /// `"…"`, unescaped.
    Phrase(String),
    /// `>v`, `>=v`, `<v`, `<=v`.
    Cmp(Cmp, String),
    /// `[lo TO hi]` (inclusive) or `{lo TO hi}` (exclusive); `None` is `*` (open).
    Range {
        lo: Option<String>,
        hi: Option<String>,
        lo_inclusive: bool,
        hi_inclusive: bool,
    },
}

impl Expr {
    /// `And` of the parts, flattened; one part is returned as is.
    pub fn and(parts: Vec<Expr>) -> Expr {
        Self::flatten(parts, true)
    }

    /// `Or` of the parts, flattened; one part is returned as is.
    pub fn or(parts: Vec<Expr>) -> Expr {
        Self::flatten(parts, false)
    }

    fn flatten(parts: Vec<Expr>, is_and: bool) -> Expr {
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            match (p, is_and) {
                (Expr::And(inner), true) | (Expr::Or(inner), false) => out.extend(inner),
                (p, _) => out.push(p),
            }
        }
        if out.len() == 1 {
            return out.pop().expect("one element");
        }
        if is_and {
            Expr::And(out)
        } else {
            Expr::Or(out)
        }
    }

    /// Binding strength for printing: higher binds tighter.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(_) => 1,
            Expr::And(_) => 2,
            Expr::Not(_) => 3,
            _ => 4,
        }
    }

    fn fmt_child(&self, child: &Expr, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if child.precedence() <= self.precedence() && child.precedence() < 3 {
            write!(f, "({child})")
        } else {
            write!(f, "{child}")
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::All => f.write_str("*"),
            Expr::And(parts) | Expr::Or(parts) => {
                let sep = if matches!(self, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    self.fmt_child(p, f)?;
                }
                Ok(())
            }
            Expr::Not(inner) => {
                f.write_str("NOT ")?;
                if inner.precedence() < 3 {
                    write!(f, "({inner})")
                } else {
                    write!(f, "{inner}")
                }
            }
            Expr::Term { field, value } => {
                if let Some(field) = field {
                    write!(f, "{field}:")?;
                }
                write!(f, "{value}")
            }
            Expr::AnyOf { field, values } => {
                write!(f, "{field}:(")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Word(w) => f.write_str(w),
            Value::Phrase(p) => {
                f.write_str("\"")?;
                for c in p.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
            Value::Cmp(op, v) => write!(f, "{}{v}", op.as_str()),
            Value::Range {
                lo,
                hi,
                lo_inclusive,
                hi_inclusive,
            } => write!(
                f,
                "{}{} TO {}{}",
                if *lo_inclusive { '[' } else { '{' },
                lo.as_deref().unwrap_or("*"),
                hi.as_deref().unwrap_or("*"),
                if *hi_inclusive { ']' } else { '}' },
            ),
        }
    }
}

/// Removes backslash escapes from an unquoted word.
pub fn unescape_word(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let mut chars = w.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A word split into literal runs and wildcards, for glob matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobPart {
    Lit(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters.
    Any,
}

/// Parses a word's wildcards (`\*` and `\?` stay literal). `None` when there is no wildcard.
pub fn glob_parts(w: &str) -> Option<Vec<GlobPart>> {
    let mut out = Vec::new();
    let mut wild = false;
    let mut chars = w.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(GlobPart::Lit(n));
                }
            }
            '*' => {
                wild = true;
                if out.last() != Some(&GlobPart::Any) {
                    out.push(GlobPart::Any);
                }
            }
            '?' => {
                wild = true;
                out.push(GlobPart::One);
            }
            c => out.push(GlobPart::Lit(c)),
        }
    }
    wild.then_some(out)
}
