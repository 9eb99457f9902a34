//! Indicator kinds and their normal forms: one spelling per indicator, so that a feed's
//! value and a value seen in traffic compare as plain strings (and hash the same).
//!
//! Normal forms: addresses in Rust's canonical text (IPv4-mapped IPv6 as IPv4), networks
//! as `addr/len` of their first address, `addr:port` with IPv6 in brackets, domains lower
//! case without a trailing dot, URLs as `host[:port]/path?query` (no scheme, lower-case
//! host, port only when not the scheme's default), hashes and fingerprints lower-case hex
//! without separators, JA4 lower case.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What an indicator names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Address,
    Cidr,
    AddrPort,
    /// A domain and every subdomain of it.
    Domain,
    Url,
    CertSha1,
    CertSha256,
    Ja3,
    Ja4,
    FileMd5,
    FileSha1,
    FileSha256,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Address,
        Kind::Cidr,
        Kind::AddrPort,
        Kind::Domain,
        Kind::Url,
        Kind::CertSha1,
        Kind::CertSha256,
        Kind::Ja3,
        Kind::Ja4,
        Kind::FileMd5,
        Kind::FileSha1,
        Kind::FileSha256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Address => "address",
            Kind::Cidr => "cidr",
            Kind::AddrPort => "addr_port",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::CertSha1 => "cert_sha1",
            Kind::CertSha256 => "cert_sha256",
            Kind::Ja3 => "ja3",
            Kind::Ja4 => "ja4",
            Kind::FileMd5 => "file_md5",
            Kind::FileSha1 => "file_sha1",
            Kind::FileSha256 => "file_sha256",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        let s = s.trim().to_ascii_lowercase().replace(['-', ':'], "_");
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .or(match s.as_str() {
                "ip" | "ip_address" | "ipv4" | "ipv6" | "addr" => Some(Kind::Address),
                "subnet" | "net" | "network" => Some(Kind::Cidr),
                "ip_port" | "ipport" => Some(Kind::AddrPort),
                "md5" | "md5_hash" => Some(Kind::FileMd5),
                "sha1" | "sha1_hash" => Some(Kind::FileSha1),
                "sha256" | "sha256_hash" => Some(Kind::FileSha256),
                "hostname" | "host" | "fqdn" => Some(Kind::Domain),
                _ => None,
            })
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The canonical text of an address (IPv4-mapped IPv6 shown as IPv4).
pub fn addr_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

/// `ip` as an IPv6-mapped `u128` (the key the CIDR tables use).
pub fn addr_bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 96),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (u128::from(v4.to_ipv6_mapped()), 96),
            None => (u128::from(v6), 0),
        },
    }
}

/// `addr:port` normal form.
pub fn addr_port_text(ip: IpAddr, port: u16) -> String {
    match addr_text(ip) {
        a if a.contains(':') => format!("[{a}]:{port}"),
        a => format!("{a}:{port}"),
    }
}

/// Lower case, no trailing dot, no surrounding space; `None` when not a host name.
pub fn domain(s: &str) -> Option<String> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'))
        && d.parse::<IpAddr>().is_err();
    ok.then_some(d)
}

/// A URL (with or without scheme) in normal form: `host[:port]/path?query`.
pub fn url(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.len() > 8192 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = match s.split_once("://") {
        Some((sc, r)) => (sc.to_ascii_lowercase(), r),
        None => (String::new(), s),
    };
    if !scheme.is_empty()
        && !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+')
    {
        return None;
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = split_host_port(authority)?;
    let default = match scheme.as_str() {
        "https" => Some(443),
        "http" | "" => Some(80),
        _ => None,
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let path = path.split('#').next().unwrap_or("/");
    Some(match port {
        Some(p) if Some(p) != default => format!("{host}:{p}{path}"),
        _ => format!("{host}{path}"),
    })
}

/// `host[:port]` (IPv6 in brackets) → (normal host, port).
fn split_host_port(a: &str) -> Option<(String, Option<u16>)> {
    if a.is_empty() {
        return None;
    }
    if let Some(rest) = a.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        let ip: IpAddr = h.parse().ok()?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if tail.is_empty() => None,
            None => return None,
        };
        return Some((format!("[{}]", addr_text(ip)), port));
    }
    let (h, port) = match a.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
        None => (a, None),
    };
    let host = match h.parse::<IpAddr>() {
        Ok(ip) => addr_text(ip),
        Err(_) => h.trim_end_matches('.').to_ascii_lowercase(),
    };
    (!host.is_empty()).then_some((host, port))
}

fn hex_of_len(s: &str, len: usize) -> Option<String> {
    let h: String = s
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (h.len() == len && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

/// Parses one indicator of a declared kind into its normal form; `Err` says why not.
pub fn normalize(kind: Kind, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let bad = |what: &str| Err(format!("`{}` is not {what}", clip(raw)));
    match kind {
        Kind::Address => match raw.parse::<IpAddr>() {
            Ok(ip) => Ok(addr_text(ip)),
            Err(_) => bad("an IP address"),
        },
        Kind::Cidr => match kuroko_model::config::parse_net(raw) {
            Ok(net) => Ok(cidr_text(&net.trunc())),
            Err(_) => bad("a network (CIDR)"),
        },
        Kind::AddrPort => match split_host_port(raw) {
            Some((h, Some(p))) => match h.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => Ok(addr_port_text(ip, p)),
                Err(_) => bad("an address:port"),
            },
            _ => bad("an address:port"),
        },
        Kind::Domain => match domain(raw.trim_start_matches("*.")) {
            Some(d) => Ok(d),
            None => bad("a domain name"),
        },
        Kind::Url => match url(raw) {
            Some(u) => Ok(u),
            None => bad("a URL"),
        },
        Kind::CertSha1 | Kind::FileSha1 => {
            hex_of_len(raw, 40).map_or_else(|| bad("a SHA-1 (40 hex digits)"), Ok)
        }
        Kind::CertSha256 | Kind::FileSha256 => {
            hex_of_len(raw, 64).map_or_else(|| bad("a SHA-256 (64 hex digits)"), Ok)
        }
        Kind::Ja3 | Kind::FileMd5 => {
            hex_of_len(raw, 32).map_or_else(|| bad("an MD5 (32 hex digits)"), Ok)
        }
        Kind::Ja4 => {
            let v = raw.to_ascii_lowercase();
            let ok = v.len() >= 10
                && v.len() <= 128
                && v.contains('_')
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if ok { Ok(v) } else { bad("a JA4 fingerprint") }
        }
    }
}

/// `addr/len` with the address in canonical text.
pub fn cidr_text(net: &IpNet) -> String {
    format!("{}/{}", addr_text(net.network()), net.prefix_len())
}

/// A value cut for an error message.
pub fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(
            normalize(Kind::Address, "::ffff:1.2.3.4").unwrap(),
            "1.2.3.4"
        );
        assert_eq!(normalize(Kind::Cidr, "10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(
            normalize(Kind::AddrPort, "1.2.3.4:443").unwrap(),
            "1.2.3.4:443"
        );
        assert_eq!(
            normalize(Kind::AddrPort, "[2001:DB8::1]:8080").unwrap(),
            "[2001:db8::1]:8080"
        );
        assert_eq!(
            normalize(Kind::Domain, "Evil.Example.").unwrap(),
            "evil.example"
        );
        assert!(normalize(Kind::Domain, "1.2.3.4").is_err());
        assert_eq!(
            normalize(Kind::Url, "HTTP://Evil.Example:80/a/b.exe?x=1#frag").unwrap(),
            "evil.example/a/b.exe?x=1"
        );
        assert_eq!(
            normalize(Kind::Url, "https://evil.example:8443/x").unwrap(),
            "evil.example:8443/x"
        );
        assert_eq!(
            normalize(Kind::Url, "evil.example").unwrap(),
            "evil.example/"
        );
        assert_eq!(
            normalize(
                Kind::CertSha1,
                "AB:CD:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11"
            )
            .unwrap(),
            "abcd00112233445566778899aabbccddeeff0011"
        );
        assert!(normalize(Kind::Ja3, "xyz").is_err());
        assert!(normalize(Kind::Ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1").is_ok());
    }
}
