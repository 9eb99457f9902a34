//! The one judgment of a TLS server's leaf certificate: expired at the session's time,
//! self-signed, or not naming the server the client asked for (SNI). The `weak_tls` rule
//! (kuroko-detect) turns it into signals, the report's certificate section (§3.7) counts
//! it per certificate and `kuroko search --detail` prints it, so they cannot disagree. It
//! lives here, beside the record, because all three read the record and nothing else.
//!
//! The key size and signature algorithm are not judged: the session record does not keep
//! them (`tls.certs[]` has names, serial, validity, SAN and fingerprints).

use crate::session::{Cert, Tls};

/// What is wrong with a session's leaf certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeafJudgment {
    /// The session started after the certificate's `not_after`.
    pub expired: bool,
    /// Subject equals issuer (the signature is not verified).
    pub self_signed: bool,
    /// The SNI the client sent when the certificate does not name it.
    pub name_mismatch: Option<String>,
}

impl LeafJudgment {
    pub fn is_clean(&self) -> bool {
        !self.expired && !self.self_signed && self.name_mismatch.is_none()
    }
}

/// Judges the leaf (first) certificate of `tls`; `None` when no certificate was seen (TLS
/// 1.3 encrypts it, or the handshake was not captured).
pub fn judge_leaf(tls: &Tls) -> Option<(&Cert, LeafJudgment)> {
    let leaf = tls.certs.first()?;
    let name_mismatch = tls
        .sni
        .as_deref()
        .filter(|sni| !cert_names(leaf).iter().any(|n| name_matches(n, sni)))
        .map(str::to_string);
    Some((
        leaf,
        LeafJudgment {
            expired: leaf.expired,
            self_signed: leaf.self_signed,
            name_mismatch,
        },
    ))
}

/// The names a certificate is valid for: its SAN entries, else its subject CN.
pub fn cert_names(c: &Cert) -> Vec<&str> {
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
pub fn name_matches(pattern: &str, host: &str) -> bool {
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
    use super::*;

    #[test]
    fn wildcards_match_one_label() {
        assert!(name_matches("*.example.jp", "www.example.jp"));
        assert!(name_matches("*.Example.JP", "WWW.example.jp."));
        assert!(!name_matches("*.example.jp", "a.b.example.jp"));
        assert!(!name_matches("*.example.jp", "example.jp"));
        assert!(name_matches("example.jp", "example.jp"));
        assert!(!name_matches("example.jp", "example.jp.evil"));
    }

    #[test]
    fn judgment_of_a_leaf() {
        let mut tls = Tls {
            sni: Some("intra.example.jp".into()),
            certs: vec![Cert {
                subject: "CN=intra.example.jp".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(judge_leaf(&tls).unwrap().1.is_clean());
        tls.sni = Some("mail.example.jp".into());
        tls.certs[0].expired = true;
        let (_, j) = judge_leaf(&tls).unwrap();
        assert!(j.expired && !j.self_signed);
        assert_eq!(j.name_mismatch.as_deref(), Some("mail.example.jp"));
        tls.certs.clear();
        assert!(judge_leaf(&tls).is_none());
    }
}
