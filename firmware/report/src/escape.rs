//! HTML escaping: the one door through which text reaches the report page.
//!
//! Every string from findings, sessions, mails or file names passes through [`esc`]. It
//! escapes the five markup characters and also drops control characters (except tab and
//! newline) so that a hostile header cannot smuggle terminal escapes or NULs into a
//! document that someone later opens in another tool.

use std::fmt::Write;

/// Escapes text for element content and for double- or single-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\u{FFFD}");
            }
            c => out.push(c),
        }
    }
    out
}

/// `1234567` → `1,234,567`.
pub fn group_digits(n: u64) -> String {
    kuroko_model::units::group_digits(n.into())
}

/// Shortens text to at most `max` chars, marking the cut with `…`.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(esc("a\u{1b}[31mb\0"), "a\u{FFFD}[31mb\u{FFFD}");
        assert_eq!(esc("日本語\n"), "日本語\n");
    }

    #[test]
    fn clip_marks_the_cut() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(group_digits(123), "123");
    }
}
