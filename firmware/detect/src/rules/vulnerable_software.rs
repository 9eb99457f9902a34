//! `vulnerable_software`: an internal server announces a version that the advisory list
//! (`crate::versions::advisories`) judges vulnerable: SSH server banners, FTP/SMTP/POP3/
//! IMAP greetings and HTTP `Server` headers, read by the shared version machinery
//! (`crate::versions::identify`).
//!
//! Only `vulnerable` verdicts fire: a distribution package without its revision in the
//! banner, or a fix the banner cannot show (IIS, Oracle TNS), is `unknown` and stays in
//! the asset inventory (`kuroko assets`) with its reason, not in a finding. Kept per
//! server; clients aggregated.

use super::{Hit, has_payload};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use crate::versions::advisories::{Judgement, Severity};
use crate::versions::{Software, Verdict, identify};
use kuroko_model::SessionRecord;

/// Longest banner quoted in a signal.
const MAX_BANNER_QUOTE: usize = 96;
/// Banners judged per session (HTTP keeps one `Server` per transaction).
const MAX_BANNERS: usize = 4;

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !ctx.is_internal(s.server.ip) || !has_payload(s) {
        return;
    }
    let mut banners: Vec<&str> = Vec::new();
    if let Some(b) = s.ssh.as_ref().and_then(|x| x.server_version.as_deref()) {
        banners.push(b);
    }
    if let Some(b) = s.ftp.as_ref().and_then(|x| x.banner.as_deref()) {
        banners.push(b);
    }
    if let Some(b) = s.mail.as_ref().and_then(|x| x.banner.as_deref()) {
        banners.push(b);
    }
    if let Some(http) = &s.http {
        for b in http
            .server
            .as_deref()
            .into_iter()
            .chain(http.transactions.iter().filter_map(|t| t.server.as_deref()))
        {
            if banners.len() >= MAX_BANNERS {
                break;
            }
            if !banners.contains(&b) {
                banners.push(b);
            }
        }
    }
    let mut signals = Vec::new();
    for banner in banners {
        let Some(sw) = identify(banner) else {
            continue;
        };
        let quoted: String = banner
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_BANNER_QUOTE)
            .collect();
        for j in ctx.advisories.judge(&sw) {
            if j.verdict == Verdict::Vulnerable {
                let en = format!(
                    "`{quoted}`: {} ({}, fixed in {}): {}",
                    j.advisory.cve_list(),
                    j.advisory.severity.as_str(),
                    j.advisory.fixed_list(),
                    j.reason
                );
                signals.push(encode(Msg::Pair, &[&japanese(&quoted, &sw, &j), &en]));
            }
        }
    }
    if signals.is_empty() {
        return;
    }
    out.push(Hit {
        rule: RuleId::VulnerableSoftware,
        client: None,
        server: Some(s.server.ip),
        peer: Some(s.client.ip.to_string()),
        signals,
        metric: None,
        earlier: Vec::new(),
    });
}

/// The signal in Japanese: the same facts as the English one (`j.reason` is English).
fn japanese(quoted: &str, sw: &Software, j: &Judgement<'_>) -> String {
    let severity = match j.advisory.severity {
        Severity::Critical => "緊急",
        Severity::High => "重要",
        Severity::Medium => "警告",
        Severity::Low => "注意",
    };
    let fixed = j.advisory.fixed_list();
    let fixed = if fixed.starts_with("none") {
        "なし (サポート中のリリースへの更新が必要)".to_string()
    } else {
        fixed
    };
    let version = sw
        .version
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_default();
    let why = match &sw.distro {
        Some(d) => format!(
            "`{}` パッケージ {version}-{} は修正済みのパッケージより古い",
            d.name.as_str(),
            d.revision
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default()
        ),
        None => format!(
            "`{}` {version} < {fixed} (上流のバージョン、ディストリビューションのパッケージ名なし)",
            sw.product
        ),
    };
    format!(
        "`{quoted}`: {} (深刻度 {severity}、修正版 {fixed}): {why}",
        j.advisory.cve_list()
    )
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::SessionRecord;
    use kuroko_model::session::{Http, Ssh};

    fn fired(s: &SessionRecord) -> Vec<String> {
        run(&ctx(), s)
            .into_iter()
            .filter(|h| h.rule == RuleId::VulnerableSoftware)
            .flat_map(|h| h.signals)
            .collect()
    }

    fn http(server: &str, header: &str) -> SessionRecord {
        let mut s = session("http", "10.1.2.3", 50_000, server, 80);
        s.http = Some(Http {
            server: Some(header.into()),
            ..Default::default()
        });
        s
    }

    #[test]
    fn vulnerable_versions_fire_with_their_cves_and_unknown_ones_do_not() {
        let sig = fired(&http("10.1.9.9", "Apache/2.4.49 (Unix)"));
        assert!(sig.iter().any(|x| x.contains("CVE-2021-41773")), "{sig:?}");
        assert!(sig.iter().any(|x| x.contains("critical")), "{sig:?}");
        // Distribution package without revision: unknown, no finding.
        assert!(fired(&http("10.1.9.9", "Apache/2.4.57 (Debian)")).is_empty());
        // Current version, product not in the list, server outside the site: nothing.
        assert!(fired(&http("10.1.9.9", "Apache/2.4.62")).is_empty());
        assert!(fired(&http("10.1.9.9", "Jetty(9.4.z)")).is_empty());
        assert!(fired(&http("198.51.100.9", "Apache/2.4.49 (Unix)")).is_empty());
        // SSH: Debian's revision decides.
        let mut s = session("ssh", "10.1.2.3", 50_000, "10.1.9.9", 22);
        s.ssh = Some(Ssh {
            client_version: None,
            server_version: Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2".into()),
        });
        let sig = fired(&s);
        assert!(sig.iter().any(|x| x.contains("CVE-2024-6387")), "{sig:?}");
        s.ssh.as_mut().unwrap().server_version =
            Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7".into());
        assert!(fired(&s).is_empty(), "{:?}", fired(&s));
        // FTP and SMTP greetings.
        let mut s = session("ftp", "10.1.2.3", 50_000, "10.1.9.9", 21);
        s.ftp = Some(kuroko_model::session::Ftp {
            banner: Some("220 (vsFTPd 2.3.4)".into()),
            ..Default::default()
        });
        assert!(fired(&s).iter().any(|x| x.contains("CVE-2011-2523")));
        let mut s = session("smtp", "10.1.2.3", 50_000, "10.1.9.9", 25);
        s.mail = Some(kuroko_model::session::Mail {
            banner: Some("220 mx.example.jp ESMTP Exim 4.95 Mon, 07 Dec 2026".into()),
            ..Default::default()
        });
        assert!(fired(&s).iter().any(|x| x.contains("CVE-2023-42115")));
        // 4.96 is also Debian's patched package, under the same banner: no finding.
        s.mail.as_mut().unwrap().banner =
            Some("220 mx.example.jp ESMTP Exim 4.96 Mon, 07 Dec 2026".into());
        assert!(fired(&s).is_empty(), "{:?}", fired(&s));
        s.mail.as_mut().unwrap().banner = Some("220 mx.example.jp ESMTP Exim 4.98.1".into());
        assert!(fired(&s).is_empty(), "{:?}", fired(&s));
    }
}
