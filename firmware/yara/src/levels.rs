//! The level a matched rule asks for, from its metadata.
//!
//! Read, first found wins:
//! - `kuroko_level`: a risk letter `A`–`E` (Kuroko's own key; what a consultant writes).
//! - `severity`: the word many published rule sets use — `critical` → A, `high` → B,
//!   `medium` / `moderate` → C, `low` → D, `info` / `informational` → E (any case) — or a
//!   number 0–10 (CVSS-like: ≥ 9 → A, ≥ 7 → B, ≥ 4 → C, ≥ 1 → D, 0 → E). Numbers above 10
//!   are read as percentages (≥ 90 → A, ≥ 70 → B, ≥ 40 → C, ≥ 10 → D, else E).
//!
//! Anything else (or no such key) leaves the level to `yara_match`'s default.

use crate::sys::MetaValue;

/// The metadata keys read, in order.
pub const LEVEL_KEYS: [&str; 2] = ["kuroko_level", "severity"];

/// `A`–`E` from a rule's metadata, or `None`.
pub fn level_of(metas: &[(String, MetaValue)]) -> Option<char> {
    for key in LEVEL_KEYS {
        for (k, v) in metas {
            if !k.eq_ignore_ascii_case(key) {
                continue;
            }
            let level = match v {
                MetaValue::Str(s) => from_text(s),
                MetaValue::Int(n) => Some(from_number(*n)),
                MetaValue::Bool(_) => None,
            };
            if level.is_some() {
                return level;
            }
        }
    }
    None
}

fn from_text(s: &str) -> Option<char> {
    let t = s.trim();
    if t.len() == 1 {
        let c = t.chars().next()?.to_ascii_uppercase();
        if ('A'..='E').contains(&c) {
            return Some(c);
        }
    }
    if let Ok(n) = t.parse::<i64>() {
        return Some(from_number(n));
    }
    match t.to_ascii_lowercase().as_str() {
        "critical" => Some('A'),
        "high" => Some('B'),
        "medium" | "moderate" => Some('C'),
        "low" => Some('D'),
        "info" | "informational" | "none" => Some('E'),
        _ => None,
    }
}

fn from_number(n: i64) -> char {
    let n = if n > 10 { n / 10 } else { n };
    match n {
        9.. => 'A',
        7..=8 => 'B',
        4..=6 => 'C',
        1..=3 => 'D',
        _ => 'E',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(k: &str, v: &str) -> (String, MetaValue) {
        (k.into(), MetaValue::Str(v.into()))
    }

    #[test]
    fn kuroko_level_wins_then_severity_words_and_numbers() {
        assert_eq!(
            level_of(&[s("severity", "low"), s("kuroko_level", "a")]),
            Some('A')
        );
        assert_eq!(level_of(&[s("Severity", "High")]), Some('B'));
        assert_eq!(
            level_of(&[("severity".into(), MetaValue::Int(5))]),
            Some('C')
        );
        assert_eq!(
            level_of(&[("severity".into(), MetaValue::Int(95))]),
            Some('A')
        );
        assert_eq!(level_of(&[s("severity", "whatever")]), None);
        assert_eq!(level_of(&[s("author", "x")]), None);
    }
}
