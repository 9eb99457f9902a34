//! HTML to text: tags dropped, `script`/`style` skipped, block elements end lines,
//! character references decoded. A small state machine over the text; it never fails
//! (unclosed tags and comments end at the end of the input).

/// The visible text of `html`, at most `max` bytes.
pub fn to_text(html: &str, max: usize) -> String {
    let mut out = String::with_capacity(html.len().min(max) / 2);
    let b = html.as_bytes();
    let mut i = 0;
    let mut text_start = 0;
    while i < b.len() && out.len() < max {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        push_text(&mut out, &html[text_start..i], max);
        if html[i..].starts_with("<!--") {
            i = html[i + 4..].find("-->").map_or(b.len(), |e| i + 4 + e + 3);
            text_start = i;
            continue;
        }
        let (tag, end) = match html[i..].find('>') {
            Some(e) => (&html[i + 1..i + e], i + e + 1),
            None => (&html[i + 1..], b.len()),
        };
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        i = end;
        if !closing && (name == "script" || name == "style") {
            let close = format!("</{name}");
            let lower_rest = html[i..].to_ascii_lowercase();
            i = lower_rest.find(&close).map_or(b.len(), |e| {
                let at = i + e;
                html[at..].find('>').map_or(b.len(), |g| at + g + 1)
            });
        } else if is_block(&name) && !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        text_start = i;
    }
    if text_start < b.len() {
        push_text(&mut out, &html[text_start..], max);
    }
    cut(&mut out, max);
    out
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "br"
            | "div"
            | "tr"
            | "li"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "table"
            | "title"
            | "ul"
            | "ol"
            | "blockquote"
            | "pre"
            | "hr"
            | "td"
            | "th"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "form"
            | "option"
    )
}

/// Appends text with collapsed white space and decoded character references.
fn push_text(out: &mut String, raw: &str, max: usize) {
    let decoded = decode_entities(raw);
    for c in decoded.chars() {
        if out.len() >= max {
            return;
        }
        if c.is_whitespace() && c != '\u{3000}' {
            if !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// `&amp;` `&#39;` `&#x3042;` and the common named references; others stay as written.
pub fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..]
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .map(|(k, _)| k + 1);
        let decoded = end.and_then(|e| entity(&rest[1..e]).map(|c| (c, e)));
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let v = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(v).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "yen" => '¥',
        _ => return None,
    })
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_only() {
        let t = to_text(
            "<html><head><title>お知らせ</title><style>p{}</style><script>var a='<p>x';</script></head>\
             <body><p>口座が&amp;凍結<br>されました&#x3002;</p><!-- hidden --></body>",
            1000,
        );
        assert_eq!(t, "お知らせ\n口座が&凍結\nされました。\n");
    }

    #[test]
    fn broken_markup_does_not_fail() {
        assert_eq!(to_text("a<b", 100), "a");
        assert_eq!(to_text("<!-- x", 100), "");
        assert_eq!(
            to_text("x &#xFFFFFFFF; &bogus;", 100),
            "x &#xFFFFFFFF; &bogus;"
        );
    }
}
