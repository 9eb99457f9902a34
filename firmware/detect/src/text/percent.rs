//! Percent-decoding of request targets, repeated, because attackers encode twice
//! (`%252e%252e` → `%2e%2e` → `..`) to slip past filters that decode once.

/// Decoding rounds: two layers of encoding is what scanners use; a third costs nothing.
pub const MAX_DECODE_ROUNDS: usize = 3;

/// One round of `%XX` decoding; `+` stays as it is. Invalid escapes are kept verbatim and
/// bytes that do not form UTF-8 become U+FFFD.
pub fn decode_once(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        // `%u002e` (IIS-style UTF-16 escapes).
        if b[i] == b'%'
            && i + 5 < b.len()
            && (b[i + 1] == b'u' || b[i + 1] == b'U')
            && let Some(v) =
                (2..6).try_fold(0u32, |acc, k| hex(b[i + k]).map(|d| acc << 4 | d as u32))
            && let Some(c) = char::from_u32(v)
        {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            i += 6;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes until nothing changes or `MAX_DECODE_ROUNDS` is reached.
pub fn decode_full(text: &str) -> String {
    let mut cur = text.to_string();
    for _ in 0..MAX_DECODE_ROUNDS {
        let next = decode_once(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_layers_and_keeps_garbage() {
        assert_eq!(decode_full("/a/%2e%2e/%2E%2e/etc"), "/a/../../etc");
        assert_eq!(decode_full("/%252e%252e/x"), "/../x");
        assert_eq!(decode_full("%u002e%u002e/"), "../");
        assert_eq!(decode_full("100%"), "100%");
        assert_eq!(decode_full("%zz%4"), "%zz%4");
        assert_eq!(decode_full("%ff"), "\u{fffd}");
    }
}
