//! `intel_match`: a session (or a file it carried) matched an indicator of an installed
//! intel pack (`crate::intel::matcher`). Kept per (client, server): each host that talked
//! with listed infrastructure or fetched a listed object is its own incident. The signal
//! names the feed, the kind and the indicator (the evidence); a hit found by a re-check of
//! the past says so and names the intel update's date.
//!
//! Levels by indicator kind (the finding takes the highest kind it saw; the rank travels
//! as the hit's metric like `yara_match`'s, A = 5, B = 4):
//!
//! | kind | level | why |
//! | --- | --- | --- |
//! | address, address:port | A (V 3, T 3) | the feeds that list single addresses (Feodo, ThreatFox `ip:port`) list botnet C2 servers: a host of ours already talked with one (V 3), run by an active operator (T 3) |
//! | certificate SHA-1/SHA-256 | A (V 3, T 3) | SSLBL lists the certificates of C2 servers: the session was a C2 session (V 3, T 3) |
//! | file MD5/SHA-1/SHA-256 | A (V 3, T 3) | a known malware object was delivered inside (V 3), public malware (T 3) |
//! | network (CIDR) | B (V 2, T 3) | Spamhaus DROP/EDROP ranges are hijacked or criminal networks, not a specific C2: contact says less (V 2) |
//! | domain, URL | B (V 2, T 3) | malware download and phishing sites (URLhaus, ThreatFox): delivery was attempted, its success needs a user or an exploit (V 2) |
//! | JA3, JA4 | B (V 2, T 3) | client fingerprints are shared by legitimate software built on the same TLS library (false positives are known), so the host is suspect, not proven (V 2) |
//!
//! Each kind seen adds its own countermeasure ([`countermeasures`]) to the catalog's.

use super::Hit;
use crate::catalog::RuleId;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;
use kuroko_model::session::IntelHit;

/// The kind in words, (ja, en).
fn kind_words(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "address" => ("アドレス", "address"),
        "cidr" => ("ネットワーク", "network"),
        "addr_port" => ("アドレスとポート", "address and port"),
        "domain" => ("ドメイン", "domain"),
        "url" => ("URL", "URL"),
        "cert_sha1" => ("証明書 SHA-1", "certificate SHA-1"),
        "cert_sha256" => ("証明書 SHA-256", "certificate SHA-256"),
        "ja3" => ("JA3 指紋", "JA3 fingerprint"),
        "ja4" => ("JA4 指紋", "JA4 fingerprint"),
        "file_md5" => ("ファイル MD5", "file MD5"),
        "file_sha1" => ("ファイル SHA-1", "file SHA-1"),
        "file_sha256" => ("ファイル SHA-256", "file SHA-256"),
        _ => ("指標", "indicator"),
    }
}

/// The level rank of a kind: 5 (A) for C2 addresses, C2 certificates and malware file
/// hashes, 4 (B) for the rest (see the module docs).
pub fn kind_rank(kind: &str) -> u64 {
    match kind {
        "address" | "addr_port" | "cert_sha1" | "cert_sha256" | "file_md5" | "file_sha1"
        | "file_sha256" => 5,
        _ => 4,
    }
}

/// The countermeasures for the kinds named in a finding's `IntelIndicator` signals
/// (parameter 2, the kind in English words), (ja, en), in kind order, once each.
pub fn countermeasures(en_kinds: &[&str]) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for k in en_kinds {
        let c = match *k {
            "address" | "address and port" | "network" => (
                "掲載アドレス・ネットワークとの通信をファイアウォールで遮断し、同じ宛先と通信した他の端末を確認",
                "Block the listed addresses and networks at the firewall and look for other hosts that reached them",
            ),
            "domain" | "URL" => (
                "掲載ドメイン・URL をプロキシと DNS で遮断し、ダウンロードされたファイルを確認",
                "Block the listed domains and URLs at the proxy and the DNS resolver, and check what was downloaded",
            ),
            "certificate SHA-1" | "certificate SHA-256" | "JA3 fingerprint" | "JA4 fingerprint" => {
                (
                    "一致した TLS 通信を行った端末上のプロセスを特定し、マルウェア感染を調査",
                    "Find the process on the host that made the matching TLS connections and examine it for malware",
                )
            }
            "file MD5" | "file SHA-1" | "file SHA-256" => (
                "掲載ファイルを受け取った端末を隔離し、ファイルが実行されたか確認",
                "Isolate the hosts that received the listed files and check whether they were run",
            ),
            _ => continue,
        };
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// One hit per session holding all its intel matches; `retro_date` is the date of the
/// intel update a re-check found them after.
pub fn check(s: &SessionRecord, hits: &[IntelHit], retro_date: Option<&str>, out: &mut Vec<Hit>) {
    if hits.is_empty() {
        return;
    }
    let mut h = Hit::pair(RuleId::IntelMatch, s);
    h.metric = hits.iter().map(|i| kind_rank(&i.kind)).max();
    for i in hits {
        let (ja, en) = kind_words(&i.kind);
        h.signals.push(encode(
            Msg::IntelIndicator,
            &[&i.feed, &ja, &en, &i.indicator, &i.pack],
        ));
        if !i.label.is_empty() {
            h.signals
                .push(encode(Msg::IntelLabel, &[&i.feed, &i.label]));
        }
    }
    if let Some(date) = retro_date {
        h.signals.push(encode(Msg::IntelRetro, &[&date]));
    }
    out.push(h);
}

#[cfg(test)]
mod tests {
    use crate::Engine;
    use crate::rules::testutil::session;
    use kuroko_model::config::Config;
    use kuroko_model::finding::{Lang, Risk};
    use kuroko_model::session::IntelHit;

    fn hit(kind: &str, indicator: &str) -> IntelHit {
        IntelHit {
            feed: "feed".into(),
            kind: kind.into(),
            indicator: indicator.into(),
            pack: "p".into(),
            label: String::new(),
        }
    }

    /// (risk, countermeasures) of the one finding a session with `hits` makes.
    fn graded(hits: &[IntelHit], lang: Lang) -> (Risk, Vec<String>) {
        let mut e = Engine::new(&Config::default()).unwrap();
        let s = session("https", "10.0.0.5", 40000, "198.51.100.7", 443);
        e.observe_retro(&s, hits, "2026-12-07T10:00:00Z");
        let f = e.findings(lang);
        assert_eq!(f.len(), 1, "{f:?}");
        (f[0].risk, f[0].countermeasures.clone())
    }

    #[test]
    fn c2_addresses_certificates_and_file_hashes_are_a_the_rest_b_with_a_countermeasure_per_kind() {
        for (kind, risk) in [
            ("address", Risk::A),
            ("addr_port", Risk::A),
            ("cert_sha1", Risk::A),
            ("file_sha256", Risk::A),
            ("cidr", Risk::B),
            ("domain", Risk::B),
            ("url", Risk::B),
            ("ja3", Risk::B),
            ("ja4", Risk::B),
        ] {
            assert_eq!(graded(&[hit(kind, "x")], Lang::En).0, risk, "{kind}");
        }
        // The highest kind wins; each kind brings its countermeasure, once.
        let (risk, cm) = graded(
            &[
                hit("domain", "evil.example"),
                hit("address", "198.51.100.7"),
                hit("url", "u"),
            ],
            Lang::En,
        );
        assert_eq!(risk, Risk::A);
        let extra: Vec<_> = cm.iter().skip(3).cloned().collect();
        assert_eq!(
            extra,
            vec![
                "Block the listed domains and URLs at the proxy and the DNS resolver, and check what was downloaded",
                "Block the listed addresses and networks at the firewall and look for other hosts that reached them",
            ]
        );
        let (_, ja) = graded(&[hit("ja3", "abc")], Lang::Ja);
        assert!(
            ja.iter()
                .any(|c| c.contains("TLS 通信を行った端末上のプロセス")),
            "{ja:?}"
        );
    }
}
