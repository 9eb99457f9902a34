//! What web exchanges carry as text: form posts (`a=b&c=d`, percent-encoded, `+` for
//! space), JSON (its string and number values), and the charset an HTML page declares.

/// `key value` lines of a form body, percent-decoded (bytes that are not UTF-8 are
/// decoded as the page's likely charset, see `charset`).
pub fn form_text(body: &str) -> String {
    let mut out = String::new();
    for pair in body.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push_str(&percent_decode(k));
        out.push(' ');
        out.push_str(&percent_decode(v));
        out.push('\n');
    }
    out
}

/// `%XX` and `+` decoded; the bytes decoded with `charset::decode`.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => bytes.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        bytes.push(v);
                        i += 3;
                        continue;
                    }
                    None => bytes.push(b'%'),
                }
            }
            c => bytes.push(c),
        }
        i += 1;
    }
    crate::charset::decode(&bytes, None)
}

/// The string and number values of a JSON document, one a line; not JSON: the text as is.
pub fn json_text(s: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(s) else {
        return s.to_string();
    };
    let mut out = String::new();
    let mut stack = vec![&v];
    // Iterative: a deeply nested document must not overflow the stack (serde_json itself
    // stops at depth 128).
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(t) => {
                out.push_str(t);
                out.push('\n');
            }
            serde_json::Value::Number(n) => {
                out.push_str(&n.to_string());
                out.push('\n');
            }
            serde_json::Value::Array(a) => stack.extend(a.iter().rev()),
            serde_json::Value::Object(o) => {
                stack.extend(o.values().rev());
            }
            _ => {}
        }
    }
    out
}

/// The charset of `<meta charset=…>` or `<meta http-equiv … content="…; charset=…">` in the
/// first 2 KiB.
pub fn meta_charset(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let rest = head[at..].trim_start_matches(['"', '\'']);
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    let label = &rest[..end];
    (!label.is_empty()).then(|| label.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_json() {
        let t = form_text("user=taro&pw=%E3%83%91%E3%82%B9+word&x=%zz%");
        assert_eq!(t, "user taro\npw パス word\nx %zz%\n");
        let sjis = "pw=%83p%83X%83%8F%81%5B%83h";
        assert_eq!(form_text(sjis), "pw パスワード\n");
        assert_eq!(
            json_text(r#"{"a":"口座","b":[1,"確認"]}"#),
            "口座\n1\n確認\n"
        );
        assert_eq!(
            meta_charset(b"<meta charset=\"Shift_JIS\">"),
            Some("shift_jis".into())
        );
    }
}
