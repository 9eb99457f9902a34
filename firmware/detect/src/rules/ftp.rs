//! `ftp_default_port_internal` / `ftp_default_port_external`: FTP control connections on
//! port 21 from an inside client, to an inside server or to an outside one. FTP sends the
//! password and the files in clear text, and port 21 is where every scanner and sniffer
//! looks first. FTP moved to another port is not flagged by these rules (that is the
//! brochure's third countermeasure). Kept per (client, server).

use super::{Hit, has_payload, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

pub const FTP_PORT: u16 = 21;
/// Longest user name quoted in a signal.
const MAX_USER_QUOTE: usize = 64;

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) || s.server.port != FTP_PORT || s.protocol == "ftp-data" {
        return;
    }
    if !((s.protocol == "ftp" || s.protocol == "tcp") && has_payload(s)) {
        return;
    }
    if !ctx.is_internal(s.client.ip) {
        return;
    }
    let rule = if ctx.is_internal(s.server.ip) {
        RuleId::FtpDefaultPortInternal
    } else {
        RuleId::FtpDefaultPortExternal
    };
    let mut hit = Hit::pair(rule, s).signal(encode(Msg::FtpControlPort21, &[]));
    if let Some(ftp) = &s.ftp {
        if let Some(user) = &ftp.user {
            let user: String = user.chars().take(MAX_USER_QUOTE).collect();
            hit = hit.signal(encode(Msg::LoginUserClearText, &[&user]));
        }
        let up = ftp.files.iter().filter(|f| f.direction == "upload").count();
        let down = ftp
            .files
            .iter()
            .filter(|f| f.direction == "download")
            .count();
        if up > 0 {
            hit = hit.signal(encode(Msg::FilesUploaded, &[]));
        }
        if down > 0 {
            hit = hit.signal(encode(Msg::FilesDownloaded, &[]));
        }
    }
    out.push(hit);
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::session::{Ftp, FtpFile};

    fn ftp(client: &str, server: &str, port: u16) -> kuroko_model::SessionRecord {
        let mut s = session("ftp", client, 45000, server, port);
        s.ftp = Some(Ftp {
            user: Some("alice".into()),
            commands: vec![
                "USER alice".into(),
                "PASS ****".into(),
                "STOR report.xlsx".into(),
            ],
            files: vec![FtpFile {
                name: "report.xlsx".into(),
                direction: "upload".into(),
                bytes: 12_000,
                sha256: None,
            }],
            control_session: None,
        });
        s
    }

    fn rules(s: &kuroko_model::SessionRecord) -> Vec<RuleId> {
        run(&ctx(), s)
            .into_iter()
            .map(|h| h.rule)
            .filter(|r| {
                matches!(
                    r,
                    RuleId::FtpDefaultPortInternal | RuleId::FtpDefaultPortExternal
                )
            })
            .collect()
    }

    #[test]
    fn internal_and_external_on_port_21_fire_the_right_rule() {
        assert_eq!(
            rules(&ftp("10.0.0.5", "10.0.0.21", 21)),
            vec![RuleId::FtpDefaultPortInternal]
        );
        assert_eq!(
            rules(&ftp("10.0.0.5", "203.0.113.21", 21)),
            vec![RuleId::FtpDefaultPortExternal]
        );
        let h = run(&ctx(), &ftp("10.0.0.5", "10.0.0.21", 21));
        let h = h
            .iter()
            .find(|h| h.rule == RuleId::FtpDefaultPortInternal)
            .unwrap();
        assert!(h.signals.iter().any(|s| s.contains("`alice`")));
        assert!(h.signals.iter().any(|s| s == "files uploaded"));
    }

    #[test]
    fn non_default_port_data_connections_and_inbound_do_not() {
        assert!(
            rules(&ftp("10.0.0.5", "10.0.0.21", 2121)).is_empty(),
            "FTP between internal hosts on a non-default port"
        );
        let mut data = ftp("10.0.0.5", "10.0.0.21", 21);
        data.protocol = "ftp-data".into();
        assert!(rules(&data).is_empty());
        assert!(
            rules(&ftp("198.51.100.5", "10.0.0.21", 21)).is_empty(),
            "outside client"
        );
    }
}
