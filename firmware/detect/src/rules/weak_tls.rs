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
use crate::certs::judge_leaf;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

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
    // The leaf's judgment is shared with the report's certificate section (§3.7).
    if let Some((leaf, j)) = judge_leaf(tls) {
        let subject = quote(&leaf.subject);
        if j.expired {
            signals.push(encode(
                Msg::CertExpired,
                &[&subject, &quote(&leaf.not_after)],
            ));
        }
        if j.self_signed {
            signals.push(encode(Msg::CertSelfSigned, &[&subject]));
        }
        if let Some(sni) = j.name_mismatch.as_deref() {
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

#[cfg(test)]
mod tests {
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
}
