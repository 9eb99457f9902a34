//! Bytes of unknown or declared charset to text.
//!
//! Japanese text arrives in four encodings (ISO-2022-JP in mail, Shift_JIS/CP932 from
//! Windows, EUC-JP from old Unix systems, UTF-8); attachments and FTP transfers rarely say
//! which. Order: a BOM, then the declared charset, then valid UTF-8, then ISO-2022-JP when
//! its escape sequences are present, then whichever of Shift_JIS and EUC-JP decodes with
//! fewer errors (ties go to Shift_JIS, the more common one).

use encoding_rs::{EUC_JP, Encoding, ISO_2022_JP, SHIFT_JIS, UTF_8};

/// Decodes `bytes`; `declared` is a charset label (`Shift_JIS`, `iso-2022-jp`, …) if the
/// carrier named one. Undecodable bytes become U+FFFD, never an error.
pub fn decode(bytes: &[u8], declared: Option<&str>) -> String {
    if let Some((enc, bom)) = Encoding::for_bom(bytes) {
        return enc
            .decode_without_bom_handling(&bytes[bom..])
            .0
            .into_owned();
    }
    if let Some(enc) = declared.and_then(|l| Encoding::for_label(l.trim().as_bytes()))
        // A page that says UTF-16 is decoded as bytes are: browsers do the same.
        && enc != encoding_rs::UTF_16LE
        && enc != encoding_rs::UTF_16BE
    {
        return enc.decode_without_bom_handling(bytes).0.into_owned();
    }
    guess(bytes)
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

/// The encoding `bytes` most likely are in (see the module docs).
pub fn guess(bytes: &[u8]) -> &'static Encoding {
    if std::str::from_utf8(bytes).is_ok() {
        if has_iso2022_escape(bytes) {
            return ISO_2022_JP;
        }
        return UTF_8;
    }
    let sjis = errors(SHIFT_JIS, bytes);
    let euc = errors(EUC_JP, bytes);
    let utf8 = errors(UTF_8, bytes);
    if utf8 < sjis && utf8 < euc {
        UTF_8
    } else if euc < sjis {
        EUC_JP
    } else {
        SHIFT_JIS
    }
}

fn has_iso2022_escape(b: &[u8]) -> bool {
    b.windows(3)
        .any(|w| matches!(w, [0x1b, b'$', b'B' | b'@'] | [0x1b, b'(', b'J' | b'I']))
}

/// Replacement characters decoding `bytes` as `enc` produces.
fn errors(enc: &'static Encoding, bytes: &[u8]) -> usize {
    // Enough to tell the encodings apart; the whole text is decoded afterwards.
    let sample = &bytes[..bytes.len().min(64 << 10)];
    let (text, _) = enc.decode_without_bom_handling(sample);
    text.chars().filter(|&c| c == '\u{FFFD}').count()
}

/// Whether `bytes` look like text (no NUL, few control characters in the first 8 KiB).
pub fn looks_like_text(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(8 << 10)];
    if sample.is_empty() {
        return false;
    }
    if sample.contains(&0) {
        return false;
    }
    let controls = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c | 0x1b))
        .count();
    controls * 100 <= sample.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_encodings_are_told_apart() {
        let text = "ご本人確認のため、パスワードを入力してください。口座が凍結されました。";
        for enc in [SHIFT_JIS, EUC_JP, ISO_2022_JP, UTF_8] {
            let (bytes, _, _) = enc.encode(text);
            assert_eq!(decode(&bytes, None), text, "{}", enc.name());
        }
        let (bytes, _, _) = SHIFT_JIS.encode(text);
        assert_eq!(decode(&bytes, Some("Shift_JIS")), text);
        assert_eq!(decode(b"\xef\xbb\xbfabc", None), "abc");
    }

    #[test]
    fn binary_is_not_text() {
        assert!(!looks_like_text(b"\x00\x01\x02PK"));
        assert!(looks_like_text("請求書\r\n".as_bytes()));
    }
}
