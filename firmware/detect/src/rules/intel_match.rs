//! `intel_match`: a session (or a file it carried) matched an indicator of an installed
//! intel pack (`crate::intel::matcher`). Kept per (client, server): each host that talked
//! with listed infrastructure or fetched a listed object is its own incident. The signal
//! names the feed, the kind and the indicator (the evidence); a hit found by a re-check of
//! the past says so and names the intel update's date.

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

/// One hit per session holding all its intel matches; `retro_date` is the date of the
/// intel update a re-check found them after.
pub fn check(s: &SessionRecord, hits: &[IntelHit], retro_date: Option<&str>, out: &mut Vec<Hit>) {
    if hits.is_empty() {
        return;
    }
    let mut h = Hit::pair(RuleId::IntelMatch, s);
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
