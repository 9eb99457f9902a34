//! `fortinet_login_exposed`: a FortiGate SSL-VPN / admin login page served by an inside
//! server to an outside client. FortiOS SSL-VPN has had a string of pre-authentication
//! remote code execution flaws exploited in the wild (CVE-2018-13379, CVE-2022-42475,
//! CVE-2023-27997, CVE-2024-21762), so the exposure itself is the finding.
//!
//! Evidence, any of:
//! - HTTP requests for the SSL-VPN portal paths (`/remote/login`, `/remote/logincheck`,
//!   `/remote/fgt_lang`, `/remote/saml/…`) answered by the server (status below 400:
//!   scanners probing a non-Fortinet server get 404 and do not count);
//! - an HTML title or `Server` header naming FortiGate (`FortiGate`, `fgt_lang`, `ftnt`),
//!   or FortiOS's masked `Server: xxxxxxxx-xxxxx`;
//! - a TLS certificate whose subject or issuer names Fortinet (`FortiGate`, `Fortinet`,
//!   or a device serial CN like `FGT60FTK2109XXXX`, the factory certificate).
//!
//! Kept per server; the outside clients are aggregated ("多数 (外部海外 IP)").

use super::Hit;
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

const PORTAL_PATHS: &[&str] = &[
    "/remote/login",
    "/remote/logincheck",
    "/remote/fgt_lang",
    "/remote/saml/",
    "/remote/hostcheck_install",
];
/// The `Server:` header FortiOS sends on its SSL-VPN and admin portals.
pub const FORTIOS_SERVER_HEADER: &str = "xxxxxxxx-xxxxx";
const TEXT_MARKERS: &[&str] = &["fortigate", "fgt_lang", "ftnt", "fortinet"];

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if ctx.is_internal(s.client.ip) || !ctx.is_internal(s.server.ip) {
        return;
    }
    let mut signals: Vec<String> = Vec::new();
    if let Some(http) = &s.http {
        for t in &http.transactions {
            let path = t.uri.split('?').next().unwrap_or("").to_ascii_lowercase();
            let answered = t.status.is_some_and(|st| st < 400);
            if answered && let Some(p) = PORTAL_PATHS.iter().find(|p| path.starts_with(*p)) {
                signals.push(encode(Msg::FortiPortalPath, &[p, &t.status.unwrap_or(0)]));
            }
            if let Some(title) = &t.title {
                let lower = title.to_ascii_lowercase();
                if TEXT_MARKERS.iter().any(|m| lower.contains(m)) {
                    let title: String = title.chars().take(64).collect();
                    signals.push(encode(Msg::FortiLoginTitle, &[&title]));
                }
            }
            if let Some(server) = &t.server
                && TEXT_MARKERS
                    .iter()
                    .any(|m| server.to_ascii_lowercase().contains(m))
            {
                signals.push(encode(Msg::FortiServerHeader, &[]));
            }
            // FortiOS answers with this masked Server header on its web portals.
            if t.server.as_deref() == Some(FORTIOS_SERVER_HEADER)
                && t.status.is_some_and(|st| st < 400)
            {
                signals.push(encode(Msg::FortiMaskedServer, &[&FORTIOS_SERVER_HEADER]));
            }
        }
    }
    if let Some(tls) = &s.tls {
        for (what, name) in [
            (Msg::CertSubject, &tls.cert_subject),
            (Msg::CertIssuer, &tls.cert_issuer),
        ] {
            if let Some(name) = name
                && is_fortinet_cert_name(name)
            {
                let quoted: String = name.chars().take(96).collect();
                signals.push(encode(what, &[&quoted]));
            }
        }
    }
    if signals.is_empty() {
        return;
    }
    signals.sort();
    signals.dedup();
    out.push(Hit {
        rule: RuleId::FortinetLoginExposed,
        client: None,
        server: Some(s.server.ip),
        peer: Some(s.client.ip.to_string()),
        signals,
        metric: None,
        earlier: Vec::new(),
    });
}

/// `CN=FGT60FTK2109XXXX`, `O=Fortinet`, `OU=FortiGate`, `CN=fortinet-subca2001`.
pub fn is_fortinet_cert_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if lower.contains("fortigate") || lower.contains("fortinet") {
        return true;
    }
    // Factory certificates carry the serial number as CN: FGT/FG + model + serial.
    name.split([',', '/']).any(|part| {
        let part = part.trim();
        let Some(cn) = part
            .strip_prefix("CN=")
            .or_else(|| part.strip_prefix("CN = "))
        else {
            return false;
        };
        let cn = cn.trim();
        (cn.starts_with("FGT") || cn.starts_with("FG"))
            && cn.len() >= 12
            && cn.len() <= 20
            && cn.chars().all(|c| c.is_ascii_alphanumeric())
            && cn.chars().filter(char::is_ascii_digit).count() >= 4
    })
}

#[cfg(test)]
mod tests {
    use super::is_fortinet_cert_name;
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::session::{Http, HttpTransaction, Tls};

    fn portal(status: u16, client: &str) -> kuroko_model::SessionRecord {
        let mut s = session("http", client, 51000, "10.0.0.1", 10443);
        s.http = Some(Http {
            transactions: vec![HttpTransaction {
                method: "GET".into(),
                uri: "/remote/login?lang=en".into(),
                status: Some(status),
                title: (status == 200).then(|| "FortiGate".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        s
    }

    fn fired(s: &kuroko_model::SessionRecord) -> Vec<crate::rules::Hit> {
        run(&ctx(), s)
            .into_iter()
            .filter(|h| h.rule == RuleId::FortinetLoginExposed)
            .collect()
    }

    #[test]
    fn served_portal_to_outside_fires_probe_and_inside_do_not() {
        let h = fired(&portal(200, "203.0.113.77"));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].server, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(h[0].client, None);
        assert_eq!(h[0].peer.as_deref(), Some("203.0.113.77"));
        assert!(
            h[0].signals
                .iter()
                .any(|s| s.contains("/remote/login answered 200"))
        );
        assert!(h[0].signals.iter().any(|s| s.contains("`FortiGate`")));
        assert!(
            fired(&portal(404, "203.0.113.77")).is_empty(),
            "a probe answered 404"
        );
        // Only the masked Server header on another page.
        let mut s = portal(200, "203.0.113.78");
        let t = &mut s.http.as_mut().unwrap().transactions[0];
        t.uri = "/".into();
        t.title = None;
        t.server = Some("xxxxxxxx-xxxxx".into());
        let h = fired(&s);
        assert_eq!(h.len(), 1);
        assert_eq!(
            h[0].signals,
            vec!["FortiOS masked Server header `xxxxxxxx-xxxxx`".to_string()]
        );
        assert!(
            fired(&portal(200, "10.9.9.9")).is_empty(),
            "inside client: not exposed"
        );
    }

    #[test]
    fn fortinet_certificates_fire() {
        let mut s = session("tls", "198.51.100.4", 51000, "10.0.0.1", 443);
        s.tls = Some(Tls {
            cert_subject: Some(
                "C=US, ST=California, L=Sunnyvale, O=Fortinet, OU=FortiGate, CN=FGT60FTK2109ABCD"
                    .into(),
            ),
            cert_issuer: Some("C=US, O=Fortinet, CN=fortinet-subca2001".into()),
            ..Default::default()
        });
        let h = fired(&s);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].signals.len(), 2);
        assert!(is_fortinet_cert_name("CN=FGT60FTK2109ABCD"));
        assert!(is_fortinet_cert_name("CN = FG100FTK19000123"));
        assert!(!is_fortinet_cert_name("CN=www.example.co.jp, O=Example"));
        assert!(!is_fortinet_cert_name("CN=FGTRADING"));
    }
}
