//! `weak_tls`: an internal server negotiated an old protocol version (SSLv3, TLS 1.0,
//! TLS 1.1) or a weak cipher suite (RC4, DES/3DES, NULL, EXPORT, anonymous, MD5), or
//! presented a leaf certificate that is expired, self-signed, or does not name the server
//! the client asked for (SNI).
//!
//! "Negotiated" means a ServerHello was seen (the record has a cipher): a ClientHello's
//! offer alone says nothing about the server. Certificates are only visible up to TLS 1.2
//! (TLS 1.3 encrypts them). Kept per server; clients aggregated.

use super::{Hit, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;
use kuroko_model::session::Cert;

const OLD_VERSIONS: &[&str] = &["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"];
/// Pieces of IANA cipher suite names that make a suite weak.
const WEAK_CIPHER_PARTS: &[&str] = &[
    "_RC4_", "_DES_", "_DES40_", "3DES", "_NULL_", "EXPORT", "_anon_", "_MD5",
];
/// Longest certificate subject or name quoted.
const MAX_QUOTE: usize = 96;

fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_QUOTE)
        .collect()
}

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) || !ctx.is_internal(s.server.ip) {
        return;
    }
    let Some(tls) = &s.tls else {
        return;
    };
    let mut signals = Vec::new();
    if let Some(cipher) = tls.cipher.as_deref() {
        if let Some(v) = tls.version.as_deref()
            && OLD_VERSIONS.contains(&v)
        {
            signals.push(encode(Msg::TlsNegotiatedOld, &[&v]));
        }
        if WEAK_CIPHER_PARTS.iter().any(|p| cipher.contains(p)) {
            signals.push(encode(Msg::TlsWeakCipher, &[&quote(cipher)]));
        }
    }
    if let Some(leaf) = tls.certs.first() {
        let subject = quote(&leaf.subject);
        if leaf.expired {
            signals.push(encode(
                Msg::CertExpired,
                &[&subject, &quote(&leaf.not_after)],
            ));
        }
        if leaf.self_signed {
            signals.push(encode(Msg::CertSelfSigned, &[&subject]));
        }
        if let Some(sni) = tls.sni.as_deref()
            && !cert_names(leaf).iter().any(|n| name_matches(n, sni))
        {
            signals.push(encode(Msg::CertNameMismatch, &[&subject, &quote(sni)]));
        }
    }
    if signals.is_empty() {
        return;
    }
    out.push(Hit {
        rule: RuleId::WeakTls,
        client: None,
        server: Some(s.server.ip),
        peer: Some(s.client.ip.to_string()),
        signals,
        metric: None,
        earlier: Vec::new(),
    });
}

/// The names a certificate is valid for: its SAN entries, else its subject CN.
fn cert_names(c: &Cert) -> Vec<&str> {
    if !c.san.is_empty() {
        return c.san.iter().map(|s| s.as_str()).collect();
    }
    c.subject
        .split(',')
        .filter_map(|p| p.trim().strip_prefix("CN="))
        .collect()
}

/// RFC 6125 matching: case-insensitive, a `*` only as the whole leftmost label and
/// matching exactly one label.
fn name_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    match p.strip_prefix("*.") {
        Some(rest) => h
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => p == h,
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::SessionRecord;
    use kuroko_model::session::{Cert, Tls};

    fn tls(server: &str, version: &str, cipher: &str) -> SessionRecord {
        let mut s = session("tls", "10.1.2.3", 50_000, server, 443);
        s.tls = Some(Tls {
            sni: Some("intra.example.jp".into()),
            version: Some(version.into()),
            cipher: Some(cipher.into()),
            certs: vec![Cert {
                subject: "CN=intra.example.jp,O=Example".into(),
                issuer: "CN=Example CA".into(),
                not_after: "2027-01-01T00:00:00Z".into(),
                san: vec!["intra.example.jp".into()],
                ..Default::default()
            }],
            ..Default::default()
        });
        s
    }

    fn fired(s: &SessionRecord) -> Vec<String> {
        run(&ctx(), s)
            .into_iter()
            .filter(|h| h.rule == RuleId::WeakTls)
            .flat_map(|h| h.signals)
            .collect()
    }

    #[test]
    fn old_versions_weak_suites_and_bad_certificates_fire() {
        let good = tls(
            "10.1.9.9",
            "TLSv1.2",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        );
        assert!(fired(&good).is_empty(), "{:?}", fired(&good));
        let s = tls("10.1.9.9", "TLSv1.0", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(fired(&s), ["negotiated TLSv1.0"]);
        let s = tls("10.1.9.9", "TLSv1.2", "TLS_RSA_WITH_RC4_128_SHA");
        assert_eq!(fired(&s), ["weak cipher suite TLS_RSA_WITH_RC4_128_SHA"]);
        let mut s = good.clone();
        let c = &mut s.tls.as_mut().unwrap().certs[0];
        c.expired = true;
        c.self_signed = true;
        let sig = fired(&s);
        assert!(
            sig[0].starts_with("expired certificate `CN=intra.example.jp"),
            "{sig:?}"
        );
        assert!(sig[1].starts_with("self-signed certificate"), "{sig:?}");
        let mut s = good.clone();
        s.tls.as_mut().unwrap().sni = Some("mail.example.jp".into());
        assert_eq!(
            fired(&s),
            ["certificate `CN=intra.example.jp,O=Example` does not name `mail.example.jp`"]
        );
        // An offer without a ServerHello, and servers outside the site: nothing.
        let mut s = tls("10.1.9.9", "TLSv1.0", "x");
        s.tls.as_mut().unwrap().cipher = None;
        assert!(fired(&s).is_empty());
        assert!(fired(&tls("198.51.100.9", "TLSv1.0", "TLS_RSA_WITH_RC4_128_SHA")).is_empty());
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(name_matches("*.example.jp", "www.example.jp"));
        assert!(name_matches("*.Example.JP", "WWW.example.jp."));
        assert!(!name_matches("*.example.jp", "a.b.example.jp"));
        assert!(!name_matches("*.example.jp", "example.jp"));
        assert!(name_matches("example.jp", "example.jp"));
        assert!(!name_matches("example.jp", "example.jp.evil"));
    }
}
