//! `cleartext_credentials`: a login whose secret crossed the network readable by anyone
//! on the path: FTP `USER`/`PASS`, POP3 `USER`/`PASS`, IMAP `LOGIN`, SMTP `AUTH
//! PLAIN`/`LOGIN` without TLS, HTTP Basic authentication. A Telnet login is `telnet_use`'s
//! (which names the user and grades it the same, 3×2): one risk, one finding.
//!
//! The user is named in the signal; the secret is never kept (the protocol parsers mask
//! it before a record exists). A login inside TLS (STARTTLS, FTPS, POP3S/IMAPS, HTTPS)
//! is invisible to the analyzer and cannot fire; challenge-response mechanisms (APOP,
//! CRAM-MD5, …) do not send the secret and do not fire. Anonymous FTP has no secret.
//! Kept per (client, server).

use super::{Hit, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

/// Longest user name quoted in a signal.
const MAX_USER_QUOTE: usize = 64;
/// Mail mechanisms that send the password itself (base64 is not protection).
const CLEARTEXT_MAIL_MECHANISMS: &[&str] = &["PLAIN", "LOGIN", "USER"];

fn quote(user: &str) -> String {
    user.chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_QUOTE)
        .collect()
}

/// Whether the stream was upgraded to TLS before the login could be seen.
fn upgraded_to_tls(s: &SessionRecord) -> bool {
    s.tunnel.as_ref().is_some_and(|t| t.kind == "starttls") || s.tls.is_some()
}

pub fn check(_ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) {
        return;
    }
    let mut signals = Vec::new();
    if let Some(ftp) = &s.ftp
        && let Some(user) = ftp.user.as_deref()
        && !matches!(user.to_ascii_lowercase().as_str(), "anonymous" | "ftp")
        && ftp.commands.iter().any(|c| c.starts_with("PASS"))
        && !upgraded_to_tls(s)
    {
        signals.push(encode(Msg::FtpLoginNoTls, &[&quote(user)]));
    }
    if let Some(mail) = &s.mail
        && let Some(auth) = &mail.auth
        && CLEARTEXT_MAIL_MECHANISMS.contains(&auth.mechanism.to_ascii_uppercase().as_str())
        && !upgraded_to_tls(s)
    {
        let proto = s.protocol.to_ascii_uppercase();
        let user = mail
            .user
            .as_deref()
            .map(quote)
            .unwrap_or_else(|| "?".into());
        let mechanism = auth.mechanism.to_ascii_uppercase();
        signals.push(encode(Msg::MailLoginNoTls, &[&proto, &mechanism, &user]));
    }
    if let Some(user) = s.http.as_ref().and_then(|h| h.user.as_deref())
        && s.tls.is_none()
    {
        signals.push(encode(Msg::HttpBasicAuth, &[&quote(user)]));
    }
    if signals.is_empty() {
        return;
    }
    let mut hit = Hit::pair(RuleId::CleartextCredentials, s);
    hit.signals = signals;
    out.push(hit);
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::SessionRecord;
    use kuroko_model::session::{Ftp, Http, Mail, MailAuth, Telnet, Tunnel};

    fn fired(s: &SessionRecord) -> Vec<String> {
        run(&ctx(), s)
            .into_iter()
            .filter(|h| h.rule == RuleId::CleartextCredentials)
            .flat_map(|h| h.signals)
            .collect()
    }

    fn mail(proto: &str, mechanism: &str) -> SessionRecord {
        let mut s = session(proto, "10.1.2.3", 50_000, "10.1.9.9", 110);
        s.mail = Some(Mail {
            user: Some("alice".into()),
            auth: Some(MailAuth {
                mechanism: mechanism.into(),
                success: Some(true),
                failed_attempts: 0,
            }),
            ..Default::default()
        });
        s
    }

    #[test]
    fn each_cleartext_login_names_the_user() {
        let mut s = session("ftp", "10.1.2.3", 50_000, "10.1.9.9", 21);
        s.ftp = Some(Ftp {
            user: Some("alice".into()),
            commands: vec!["USER alice".into(), "PASS ****".into()],
            ..Default::default()
        });
        assert_eq!(fired(&s), ["FTP login as `alice` without TLS"]);
        assert_eq!(
            fired(&mail("pop3", "USER")),
            ["POP3 USER login as `alice` without TLS"]
        );
        assert_eq!(
            fired(&mail("smtp", "plain")),
            ["SMTP PLAIN login as `alice` without TLS"]
        );
        let mut s = session("http", "10.1.2.3", 50_000, "10.1.9.9", 80);
        s.http = Some(Http {
            user: Some("admin".into()),
            ..Default::default()
        });
        assert_eq!(fired(&s), ["HTTP Basic authentication as `admin`"]);
    }

    #[test]
    fn tls_challenge_response_and_anonymous_logins_do_not_fire() {
        // Telnet is telnet_use's finding, not a second one here.
        let mut s = session("telnet", "10.1.2.3", 50_000, "10.1.9.9", 23);
        s.telnet = Some(Telnet {
            user: Some("root".into()),
        });
        assert!(fired(&s).is_empty());
        assert!(fired(&mail("pop3", "APOP")).is_empty());
        assert!(fired(&mail("smtp", "CRAM-MD5")).is_empty());
        let mut s = mail("imap", "LOGIN");
        s.tunnel = Some(Tunnel {
            kind: "starttls".into(),
            target: None,
            inner: Some("tls".into()),
        });
        assert!(fired(&s).is_empty());
        let mut s = session("ftp", "10.1.2.3", 50_000, "10.1.9.9", 21);
        s.ftp = Some(Ftp {
            user: Some("anonymous".into()),
            commands: vec!["USER anonymous".into(), "PASS ****".into()],
            ..Default::default()
        });
        assert!(fired(&s).is_empty());
        // USER without PASS (refused before the password): no secret sent.
        s.ftp = Some(Ftp {
            user: Some("alice".into()),
            commands: vec!["USER alice".into()],
            ..Default::default()
        });
        assert!(fired(&s).is_empty());
    }
}
