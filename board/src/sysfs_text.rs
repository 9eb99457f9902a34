//! Strings the hardware reports (disk models from `/sys`, NVMe identify data) before they
//! reach the serial terminal, the console or a report.
//!
//! A USB stick or a disk chooses its own model string: escape sequences in it would drive
//! the technician's terminal, bidirectional controls would disguise it. [`clean`] keeps
//! printable characters only (the same bidi rule as the wire text sanitizer,
//! [`kuroko_model::session::is_bidi_control`]) and caps the length.

/// Longest model or vendor string kept (ATA models are 40 bytes, NVMe 40, SCSI 16).
pub const MAX_HW_TEXT: usize = 64;

/// `s` trimmed, control characters blanked, bidi controls dropped, at most
/// [`MAX_HW_TEXT`] characters.
pub fn clean(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|&c| !kuroko_model::session::is_bidi_control(c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_HW_TEXT)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bidi_controls_never_reach_the_terminal() {
        assert_eq!(
            clean("  Evil\x1b]0;pwned\x07 \u{202E}KSID\n"),
            "Evil ]0;pwned  KSID"
        );
        assert_eq!(clean(&"x".repeat(500)).len(), MAX_HW_TEXT);
        assert_eq!(clean("Samsung SSD 980 "), "Samsung SSD 980");
    }
}
