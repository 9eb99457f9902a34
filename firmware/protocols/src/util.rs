//! Small helpers every parser uses: capped strings off the wire, capped lists, a bounded
//! line splitter, a forgiving base64 decoder, and the one way objects are reported.
//!
//! Why here: the caps and flags must be applied identically by every protocol, so that
//! `field_truncated` / `list_truncated` mean the same thing everywhere.

use crate::{ObjectMeta, Sink};
use kuroko_model::session::{
    FileRef, MAX_FIELD_LEN, MAX_LIST_LEN, SessionRecord, cap_field, is_bidi_control,
};

/// Bytes off the wire as a capped string (lossy UTF-8, control characters kept out,
/// bidirectional controls dropped).
/// Sets `field_truncated` on `rec` when the value had to be cut.
pub(crate) fn text(rec: &mut SessionRecord, bytes: &[u8]) -> String {
    // Never convert more than we keep (plus slack for the char boundary).
    let bytes = &bytes[..bytes.len().min(MAX_FIELD_LEN + 4)];
    let mut s: String = String::from_utf8_lossy(bytes)
        .chars()
        .filter(|&c| !is_bidi_control(c))
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect();
    if cap_field(&mut s) || bytes.len() > MAX_FIELD_LEN {
        rec.flag("field_truncated");
    }
    s
}

/// Like [`text`] for an already decoded string.
pub(crate) fn text_str(rec: &mut SessionRecord, s: &str) -> String {
    text(rec, s.as_bytes())
}

/// Pushes onto a list capped at `MAX_LIST_LEN`; sets `list_truncated` when full.
pub(crate) fn push_capped<T>(rec: &mut SessionRecord, list: &mut Vec<T>, item: T) -> bool {
    if list.len() >= MAX_LIST_LEN {
        rec.flag("list_truncated");
        return false;
    }
    list.push(item);
    true
}

/// Reports a reconstructed object and, when the sink stored it, records a [`FileRef`] on
/// the session. Parsers call this, never `Sink::object` directly, so that every stored
/// object is listed on its session exactly once (sinks must not add `FileRef`s themselves).
pub(crate) fn emit_object(
    rec: &mut SessionRecord,
    sink: &mut dyn Sink,
    meta: ObjectMeta,
    bytes: &[u8],
) -> Option<String> {
    let sha = sink.object(meta.clone(), bytes)?;
    let name = meta.name.as_deref().map(|n| text_str(rec, n));
    let content_type = meta.content_type.as_deref().map(|n| text_str(rec, n));
    let mut file = FileRef {
        sha256: sha.clone(),
        name,
        content_type,
        bytes: bytes.len() as u64,
        direction: direction_word(meta.direction).to_string(),
        kind: meta.kind.to_string(),
        partial: meta.partial,
        ..Default::default()
    };
    sink.annotate(&mut file);
    let mut files = std::mem::take(&mut rec.files);
    push_capped(rec, &mut files, file);
    rec.files = files;
    Some(sha)
}

/// `upload` for client → server, `download` otherwise (the words of `FileRef.direction`).
pub(crate) fn direction_word(dir: Option<crate::Direction>) -> &'static str {
    match dir {
        Some(crate::Direction::ToServer) => "upload",
        _ => "download",
    }
}

/// Splits a byte stream into lines (`\n`, optional `\r` before it), one direction.
/// A line longer than `max_line` is delivered cut at `max_line` with `overlong` set, and
/// the rest of it up to the next newline is dropped — memory stays bounded.
#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    buf: Vec<u8>,
    skipping: bool,
}

pub(crate) struct Line {
    pub bytes: Vec<u8>,
    pub overlong: bool,
}

impl LineBuf {
    /// The bytes of an unfinished line (e.g. the first bytes of TLS after an upgrade).
    pub fn take_partial(&mut self) -> Vec<u8> {
        self.skipping = false;
        std::mem::take(&mut self.buf)
    }

    /// Feeds `data`, calling `f` for each complete line (without the line ending).
    pub fn feed(&mut self, data: &[u8], max_line: usize, mut f: impl FnMut(Line)) {
        let mut rest = data;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let part = &rest[..nl];
                    rest = &rest[nl + 1..];
                    if self.skipping {
                        self.skipping = false;
                        self.buf.clear();
                        continue;
                    }
                    let room = max_line.saturating_sub(self.buf.len());
                    let overlong = part.len() > room;
                    self.buf.extend_from_slice(&part[..part.len().min(room)]);
                    let mut bytes = std::mem::take(&mut self.buf);
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                    f(Line { bytes, overlong });
                }
                None => {
                    if !self.skipping {
                        let room = max_line.saturating_sub(self.buf.len());
                        if rest.len() > room {
                            self.buf.extend_from_slice(&rest[..room]);
                            let bytes = std::mem::take(&mut self.buf);
                            f(Line {
                                bytes,
                                overlong: true,
                            });
                            self.skipping = true;
                        } else {
                            self.buf.extend_from_slice(rest);
                        }
                    }
                    rest = &[];
                }
            }
        }
    }

    /// Bytes of an unfinished line.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.skipping = false;
    }
}

/// Accumulates one line from `input` into `acc` (kept up to `max` bytes; `overlong` is
/// set when more was dropped). Returns the bytes consumed and, when the line ended, the
/// line without its `\r\n`/`\n`. For protocols that switch from lines to raw data
/// mid-stream (SMTP DATA, IMAP literals), where the rest of the input must not be eaten.
pub(crate) fn take_line(
    acc: &mut Vec<u8>,
    input: &[u8],
    max: usize,
    overlong: &mut bool,
) -> (usize, Option<Vec<u8>>) {
    let (part, consumed, done) = match input.iter().position(|&b| b == b'\n') {
        Some(nl) => (&input[..nl], nl + 1, true),
        None => (input, input.len(), false),
    };
    let room = max.saturating_sub(acc.len());
    if part.len() > room {
        *overlong = true;
    }
    acc.extend_from_slice(&part[..part.len().min(room)]);
    if !done {
        return (consumed, None);
    }
    let mut line = std::mem::take(acc);
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    (consumed, Some(line))
}

/// Decodes base64 (standard or URL alphabet), ignoring whitespace; `None` on other bytes.
pub(crate) fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// ASCII case-insensitive prefix test.
pub(crate) fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// First position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// ASCII case-insensitive search.
pub(crate) fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Last path segment of a URL or path, without query or fragment; `None` when empty.
pub(crate) fn file_name_of_path(path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    if last.is_empty() {
        None
    } else {
        Some(last.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_drops_bidi_controls_and_blanks_control_characters() {
        let mut rec = crate::testutil::record("smtp");
        let s = text(
            &mut rec,
            "UA\u{202E}gpj.exe \u{2066}x\u{2069}\u{200F}\x1b[1m".as_bytes(),
        );
        assert_eq!(s, "UAgpj.exe x [1m");
        assert!(rec.flags.is_empty());
    }

    #[test]
    fn base64_decodes_rfc4648_vectors() {
        // RFC 4648 section 10 test vectors.
        assert_eq!(base64_decode(b"Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode(b"Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64_decode(b"Zg==").unwrap(), b"f");
        assert!(base64_decode(b"Zm9v*").is_none());
    }

    #[test]
    fn line_buf_is_independent_of_chunking_and_caps_lines() {
        let input = b"USER a\r\nPASS b\nxxxxxxxxxxxxxxxxxxxxxxxx\r\nQUIT\r\n";
        let mut whole = Vec::new();
        LineBuf::default().feed(input, 10, |l| whole.push((l.bytes, l.overlong)));
        let mut bytewise = Vec::new();
        let mut lb = LineBuf::default();
        for b in input.chunks(1) {
            lb.feed(b, 10, |l| bytewise.push((l.bytes, l.overlong)));
        }
        assert_eq!(whole, bytewise);
        assert_eq!(whole[0], (b"USER a".to_vec(), false));
        assert_eq!(whole[1], (b"PASS b".to_vec(), false));
        assert_eq!(whole[2], (b"xxxxxxxxxx".to_vec(), true));
        assert_eq!(whole[3], (b"QUIT".to_vec(), false));
    }
}
