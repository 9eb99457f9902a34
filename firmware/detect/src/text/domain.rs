//! Host names as they appear in mail headers, links and HTTP: normalising, taking the
//! registrable part, decoding punycode, and measuring how much two names look alike.
//!
//! Every input here came off the wire, so every function takes any text, never panics and
//! bounds its work (`MAX_HOST_LEN`, `MAX_LABEL_LEN`).

/// Longest host name considered (RFC 1035 allows 253 characters).
pub const MAX_HOST_LEN: usize = 253;
/// Longest label decoded from punycode (RFC 1035: 63 octets).
pub const MAX_LABEL_LEN: usize = 63;

/// Second-level labels under which registrations happen one level deeper
/// (`example.co.jp`, `example.com.au`). A compact stand-in for the public suffix list,
/// covering the zones our users see.
const SECOND_LEVEL: &[&str] = &[
    "co", "ne", "or", "ac", "go", "ed", "gr", "lg", "ad", "com", "net", "org", "gov", "edu",
];

/// Lower case, no trailing dot, no port, no brackets; `None` when it cannot be a host name.
pub fn normalize_host(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches('.');
    let t = if let Some(rest) = t.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if t.matches(':').count() == 1 {
        t.split(':').next().unwrap_or("")
    } else {
        t
    };
    let t = t.trim_end_matches('.');
    if t.is_empty() || t.len() > MAX_HOST_LEN || t.contains(char::is_whitespace) {
        return None;
    }
    Some(t.to_lowercase())
}

/// The host of a link target: `https://user@host:8443/path` → `host`;
/// `mailto:a@b.example` → `b.example`; a bare `www.example.com/x` → `www.example.com`.
pub fn url_host(href: &str) -> Option<String> {
    let h = href.trim();
    let lower = h.to_ascii_lowercase();
    if let Some(addr) = lower.strip_prefix("mailto:") {
        return mail_domain(addr);
    }
    let rest = match h.find("://") {
        Some(i) => &h[i + 3..],
        None if h.starts_with("//") => &h[2..],
        None => h,
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    // `http://bank.example@evil.example/` goes to evil.example.
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = normalize_host(host)?;
    if host.contains('.') || host.parse::<std::net::IpAddr>().is_ok() {
        Some(host)
    } else {
        None
    }
}

/// Whether a link target carries user info (`http://bank.example@evil.example/`), a
/// classic trick to show a trusted name first.
pub fn url_has_userinfo(href: &str) -> bool {
    let h = href.trim();
    let Some(i) = h.find("://") else { return false };
    let authority = h[i + 3..].split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// The domain of a mail address (`"Name" <a@b.example>` or `a@b.example`).
pub fn mail_domain(addr: &str) -> Option<String> {
    let a = addr.trim();
    let a = match (a.rfind('<'), a.rfind('>')) {
        (Some(l), Some(r)) if l < r => &a[l + 1..r],
        _ => a,
    };
    let (_, domain) = a.rsplit_once('@')?;
    let domain = domain.split(['?', '>', ' ']).next().unwrap_or("");
    normalize_host(domain).filter(|d| d.contains('.'))
}

/// The registrable domain: `www.resonabank.co.jp` → `resonabank.co.jp`,
/// `login.example.com` → `example.com`. Addresses are returned whole.
pub fn registrable(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    let labels: Vec<&str> = host.rsplitn(4, '.').collect();
    // labels: [tld, sld, third, rest...]
    let keep = if labels.len() >= 3 && labels[0].len() == 2 && SECOND_LEVEL.contains(&labels[1]) {
        3
    } else {
        2
    };
    if labels.len() <= keep {
        return host;
    }
    let cut: usize = labels[..keep].iter().map(|l| l.len() + 1).sum::<usize>() - 1;
    &host[host.len() - cut..]
}

/// Whether `host` is `domain` or one of its subdomains.
pub fn is_same_or_subdomain(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// The first thing in `text` that looks like a host name or URL (`www.example.co.jp`,
/// `https://example.com/login`), for link texts that pretend to show their target.
pub fn host_in_text(text: &str) -> Option<String> {
    for token in text.split(|c: char| c.is_whitespace() || "<>\"'()[]「」（）、。,".contains(c))
    {
        let token = token.trim_matches(|c: char| !c.is_alphanumeric());
        if token.len() < 4 || !token.contains('.') {
            continue;
        }
        let Some(host) = url_host(token) else {
            continue;
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Some(host);
        }
        let tld = host.rsplit('.').next().unwrap_or("");
        let labels_ok = host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
        if labels_ok && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()) {
            return Some(host);
        }
        if labels_ok && tld.starts_with("xn--") {
            return Some(host);
        }
    }
    None
}

/// Decodes `xn--` labels (RFC 3492 punycode) into Unicode; other labels are kept.
/// Undecodable labels are kept as they are.
pub fn decode_idn(host: &str) -> String {
    host.split('.')
        .map(|label| {
            label
                .strip_prefix("xn--")
                .and_then(punycode_decode)
                .unwrap_or_else(|| label.to_string())
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// RFC 3492 decoder for one label (without the `xn--` prefix).
fn punycode_decode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    const TMIN: u32 = 1;
    const TMAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    if input.len() > MAX_LABEL_LEN {
        return None;
    }
    let (basic, extended) = match input.rfind('-') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => ("", input),
    };
    let mut output: Vec<char> = basic.chars().collect();
    if !output.iter().all(char::is_ascii) {
        return None;
    }
    let adapt = |mut delta: u32, num_points: u32, first: bool| -> u32 {
        delta /= if first { DAMP } else { 2 };
        delta += delta / num_points;
        let mut k = 0;
        while delta > ((BASE - TMIN) * TMAX) / 2 {
            delta /= BASE - TMIN;
            k += BASE;
        }
        k + (((BASE - TMIN + 1) * delta) / (delta + SKEW))
    };
    let (mut n, mut i, mut bias) = (128u32, 0u32, 72u32);
    let mut chars = extended.bytes().peekable();
    let mut first = true;
    while chars.peek().is_some() {
        let old_i = i;
        let mut w = 1u32;
        let mut k = BASE;
        loop {
            let c = chars.next()?;
            let digit = match c {
                b'a'..=b'z' => c - b'a',
                b'A'..=b'Z' => c - b'A',
                b'0'..=b'9' => c - b'0' + 26,
                _ => return None,
            } as u32;
            i = i.checked_add(digit.checked_mul(w)?)?;
            let t = if k <= bias {
                TMIN
            } else if k >= bias + TMAX {
                TMAX
            } else {
                k - bias
            };
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = output.len() as u32 + 1;
        bias = adapt(i - old_i, len, first);
        first = false;
        n = n.checked_add(i / len)?;
        i %= len;
        output.insert(i as usize, char::from_u32(n)?);
        i += 1;
        if output.len() > MAX_LABEL_LEN {
            return None;
        }
    }
    Some(output.into_iter().collect())
}

/// Maps characters that look alike to one representative, so that `rеsona` (Cyrillic е),
/// `res0na` and `resona` share a skeleton (the idea of Unicode TR39 confusables, reduced
/// to the characters phishing kits use).
pub fn skeleton(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let mapped = match c {
            'а' | 'ɑ' | 'α' | 'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | '@' => 'a',
            'е' | 'ё' | 'è' | 'é' | 'ê' | 'ë' | 'ε' => 'e',
            'о' | 'ο' | 'ò' | 'ó' | 'ô' | 'õ' | 'ö' | '0' | 'ø' => 'o',
            'р' | 'ρ' => 'p',
            'с' | 'ϲ' | 'ç' => 'c',
            'х' | 'χ' => 'x',
            'у' | 'ү' | 'ý' | 'ÿ' => 'y',
            'і' | 'ı' | 'ì' | 'í' | 'î' | 'ï' | 'ι' => 'i',
            '1' | '|' | 'ӏ' => 'l',
            'ѕ' | '5' | '$' => 's',
            'ԁ' => 'd',
            'ɡ' => 'g',
            'ʜ' | 'һ' => 'h',
            'ј' => 'j',
            'к' | 'κ' => 'k',
            'м' => 'm',
            'п' => 'n',
            'т' | 'τ' => 't',
            'ν' | 'ѵ' => 'v',
            'ω' | 'ш' => 'w',
            'ʐ' | 'ᴢ' => 'z',
            '3' => 'e',
            '4' => 'a',
            '7' => 't',
            '8' => 'b',
            other => other,
        };
        out.push(mapped);
    }
    // Letter pairs that render like one letter.
    out.replace("rn", "m").replace("vv", "w").replace("cl", "d")
}

/// Damerau-Levenshtein (optimal string alignment) distance, or `None` when it exceeds
/// `max` (the work is bounded by the label length cap of the callers).
pub fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().take(MAX_HOST_LEN).collect();
    let b: Vec<char> = b.chars().take(MAX_HOST_LEN).collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, cell) in d.iter_mut().step_by(w).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    let dist = d[a.len() * w + b.len()];
    (dist <= max).then_some(dist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_links_and_addresses() {
        assert_eq!(
            url_host("https://www.Example.co.jp:8443/a?b").as_deref(),
            Some("www.example.co.jp")
        );
        assert_eq!(
            url_host("http://resonabank.co.jp@evil.example/login").as_deref(),
            Some("evil.example")
        );
        assert!(url_has_userinfo(
            "http://resonabank.co.jp@evil.example/login"
        ));
        assert_eq!(
            url_host("www.smbc.co.jp/login").as_deref(),
            Some("www.smbc.co.jp")
        );
        assert_eq!(
            url_host("mailto:x@corp.example").as_deref(),
            Some("corp.example")
        );
        assert_eq!(url_host("http://192.0.2.4/x").as_deref(), Some("192.0.2.4"));
        assert_eq!(url_host("javascript:void(0)"), None);
        assert_eq!(
            mail_domain("\"Resona\" <info@Resona-Secure.example>").as_deref(),
            Some("resona-secure.example")
        );
        assert_eq!(mail_domain("nobody"), None);
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(registrable("www.resonabank.co.jp"), "resonabank.co.jp");
        assert_eq!(registrable("resonabank.co.jp"), "resonabank.co.jp");
        assert_eq!(registrable("a.b.login.example.com"), "example.com");
        assert_eq!(registrable("example.com"), "example.com");
        assert_eq!(registrable("jp"), "jp");
        assert_eq!(registrable("x.example.jp"), "example.jp");
        assert!(is_same_or_subdomain("www.netflix.com", "netflix.com"));
        assert!(!is_same_or_subdomain("evilnetflix.com", "netflix.com"));
    }

    #[test]
    fn host_in_link_text() {
        assert_eq!(
            host_in_text("ログインはこちら https://www.resonabank.co.jp/login").as_deref(),
            Some("www.resonabank.co.jp")
        );
        assert_eq!(
            host_in_text("www.smbc.co.jp").as_deref(),
            Some("www.smbc.co.jp")
        );
        assert_eq!(host_in_text("こちらをクリック"), None);
        assert_eq!(host_in_text("version 1.2 released"), None);
    }

    #[test]
    fn punycode_round_trip_of_known_labels() {
        // RFC 3492 sample: "bücher" ↔ "xn--bcher-kva".
        assert_eq!(decode_idn("xn--bcher-kva.example"), "bücher.example");
        // Cyrillic "аррӏе" (apple lookalike) is xn--80ak6aa92e.
        assert_eq!(decode_idn("xn--80ak6aa92e.com"), "аррӏе.com");
        assert_eq!(skeleton("аррӏе"), skeleton("apple"));
        assert_eq!(decode_idn("xn--!!.com"), "xn--!!.com");
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("resonabank", "resonabank", 2), Some(0));
        assert_eq!(edit_distance("resonabnak", "resonabank", 2), Some(1));
        assert_eq!(edit_distance("resona-bank", "resonabank", 2), Some(1));
        assert_eq!(edit_distance("example", "resonabank", 2), None);
        assert_eq!(skeleton("rnufg"), "mufg");
        assert_eq!(skeleton("paypa1"), skeleton("paypal"));
    }
}
