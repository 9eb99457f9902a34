//! X.509 certificates of a TLS chain: the fields analysts and intel lists use (serial,
//! validity, subjectAltName, fingerprints), decoded from DER with the same small checked
//! reader as the names (`parser::der`), so no certificate can make it panic or allocate
//! more than its own size. The signature is not verified: `self_signed` means the subject
//! equals the issuer.

use super::parser::{der, name_text};
use kuroko_model::session::Cert;
use kuroko_model::time::Timestamp;
use sha2::Digest;

/// Certificates of one chain kept (leaf first); real chains have 2–4, more is noise.
pub const MAX_CHAIN: usize = 8;
/// subjectAltName entries kept per certificate (CDN certificates carry hundreds).
pub const MAX_SAN: usize = 64;

/// OID 2.5.29.17 (subjectAltName), DER contents.
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// `UTCTime` (tag 0x17) or `GeneralizedTime` (0x18), `Z` form, as RFC 3339 and nanos.
fn der_time(tag: u8, v: &[u8]) -> Option<(String, i64)> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i32 = s[..2].parse().ok()?;
            // RFC 5280 4.1.2.5.1: 50..99 are 19xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let text = format!(
        "{year:04}-{}-{}T{}:{}:{}Z",
        &rest[0..2],
        &rest[2..4],
        &rest[4..6],
        &rest[6..8],
        &rest[8..10]
    );
    let ts = Timestamp::parse_rfc3339(&text).ok()?;
    Some((text, ts.0))
}

/// DNS names and IP addresses of a subjectAltName extension value.
fn san_names(ext_value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some((0x30, mut names, _)) = der(ext_value) else {
        return out;
    };
    while !names.is_empty() && out.len() < MAX_SAN {
        let Some((tag, v, rest)) = der(names) else {
            break;
        };
        names = rest;
        match tag {
            0x82 => out.push(String::from_utf8_lossy(v).into_owned()),
            0x87 if v.len() == 4 => {
                out.push(std::net::Ipv4Addr::new(v[0], v[1], v[2], v[3]).to_string())
            }
            0x87 if v.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(v);
                out.push(std::net::Ipv6Addr::from(a).to_string());
            }
            _ => {}
        }
    }
    out
}

/// Decodes one DER certificate; `session_ns` is the session's start (for `expired`).
/// `None` when the DER is not a certificate.
pub fn parse_cert(cert: &[u8], session_ns: i64) -> Option<Cert> {
    let (0x30, certificate, _) = der(cert)? else {
        return None;
    };
    let (0x30, tbs, _) = der(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    let (mut tag, mut v, mut r) = der(rest)?;
    if tag == 0xa0 {
        rest = r;
        (tag, v, r) = der(rest)?;
    }
    if tag != 0x02 {
        return None;
    }
    let serial = hex::encode(v.strip_prefix(&[0]).filter(|s| !s.is_empty()).unwrap_or(v));
    let (_, _sig, r) = der(r)?;
    let (0x30, issuer, r) = der(r)? else {
        return None;
    };
    let (0x30, validity, r) = der(r)? else {
        return None;
    };
    let (0x30, subject, mut r) = der(r)? else {
        return None;
    };
    let (t1, nb, vr) = der(validity)?;
    let (t2, na, _) = der(vr)?;
    let (not_before, _) = der_time(t1, nb)?;
    let (not_after, na_ns) = der_time(t2, na)?;
    let mut san = Vec::new();
    while !r.is_empty() {
        let (tag, v, next) = der(r)?;
        r = next;
        if tag != 0xa3 {
            continue; // subjectPublicKeyInfo, [1], [2]
        }
        let Some((0x30, mut exts, _)) = der(v) else {
            break;
        };
        while !exts.is_empty() {
            let Some((_, ext, next)) = der(exts) else {
                break;
            };
            exts = next;
            let Some((0x06, oid, mut er)) = der(ext) else {
                continue;
            };
            if oid != OID_SAN {
                continue;
            }
            if let Some((0x01, _, after)) = der(er) {
                er = after; // critical flag
            }
            if let Some((0x04, value, _)) = der(er) {
                san = san_names(value);
            }
        }
    }
    Some(Cert {
        self_signed: issuer == subject,
        subject: name_text(subject)?,
        issuer: name_text(issuer)?,
        serial,
        expired: session_ns > na_ns,
        not_before,
        not_after,
        san,
        sha1: hex::encode(sha1::Sha1::digest(cert)),
        sha256: hex::encode(sha2::Sha256::digest(cert)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 … -subj "/C=JP/O=Kuroko Test/CN=www.example.com" -addext
    /// "subjectAltName=DNS:www.example.com,DNS:example.com,IP:203.0.113.10" -set_serial
    /// 0x01a2b3c4d5e6`; expected values from `openssl x509 -noout -serial -startdate
    /// -enddate -fingerprint -sha1|-sha256 -ext subjectAltName -subject -nameopt RFC2253`.
    const CERT: &[u8] = include_bytes!("testdata/selfsigned-san.der");

    #[test]
    fn fields_match_openssl() {
        let during = Timestamp::parse_rfc3339("2026-12-20T00:00:00Z").unwrap().0;
        let c = parse_cert(CERT, during).unwrap();
        assert_eq!(c.subject, "CN=www.example.com,O=Kuroko Test,C=JP");
        assert_eq!(c.issuer, c.subject);
        assert!(c.self_signed);
        assert_eq!(c.serial, "01a2b3c4d5e6");
        assert_eq!(c.not_before, "2026-12-07T00:51:31Z");
        assert_eq!(c.not_after, "2027-01-06T00:51:31Z");
        assert_eq!(c.san, ["www.example.com", "example.com", "203.0.113.10"]);
        assert_eq!(c.sha1, "e76bcdd996a7a98d12d638a1cbe1d2ec5a0964c0");
        assert_eq!(
            c.sha256,
            "4a83528fc86ef877bced785361f1cd71f8c20af01502348839241 46de1adc0d6".replace(' ', "")
        );
        assert!(!c.expired);
        let later = Timestamp::parse_rfc3339("2027-02-01T00:00:00Z").unwrap().0;
        assert!(parse_cert(CERT, later).unwrap().expired);
    }

    #[test]
    fn any_cut_of_a_certificate_is_none_not_a_panic() {
        for n in 0..CERT.len() {
            let _ = parse_cert(&CERT[..n], 0);
        }
        let mut bad = CERT.to_vec();
        for i in 0..bad.len() {
            bad[i] ^= 0xff;
            let _ = parse_cert(&bad, 0);
            bad[i] ^= 0xff;
        }
    }
}
