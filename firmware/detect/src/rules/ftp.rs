//! `ftp_default_port_internal` / `ftp_default_port_external`: FTP control connections on
//! port 21 from an inside client, to an inside server or to an outside one. FTP sends the
//! password and the files in clear text, and port 21 is where every scanner and sniffer
//! looks first. FTP moved to another port is not flagged by these rules (that is the
//! brochure's third countermeasure). Kept per (client, server).

use super::{Hit, has_payload, is_tcp};
use crate::aggregate::EvidenceRef;
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::IpAddr;

/// Control sessions of FTP findings remembered for their data connections, and data
/// connections waiting for their control session (FIFO each): enough for the transfers
/// in flight on a busy site, bounded against a flood.
pub const MAX_FTP_LINKS: usize = 4096;

/// Links FTP data connections (`ftp-data`, with `ftp.control_session`) to the finding of
/// their control session, so the finding's evidence (its pcap, `pcap --finding`) holds the
/// files that moved, not only the commands. The analyzer writes a data connection's record
/// before or after its control session's, so both orders are handled.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct FtpDataLinks {
    /// Control session id → the finding (rule, client, server) it made.
    controls: VecDeque<(String, String, Option<IpAddr>, Option<IpAddr>)>,
    /// Data connections seen before their control session: (control id, data session).
    pending: VecDeque<(String, EvidenceRef)>,
}

/// Where a data connection goes: the finding to add it to, or nothing yet.
pub type FindingKey = (RuleId, Option<IpAddr>, Option<IpAddr>);

impl FtpDataLinks {
    /// A data connection: the finding of its control session if known; otherwise kept
    /// until the control session comes.
    pub fn data(&mut self, s: &SessionRecord) -> Option<FindingKey> {
        if s.protocol != "ftp-data" {
            return None;
        }
        let control = s.ftp.as_ref()?.control_session.as_ref()?;
        if let Some((_, rule, c, sv)) = self.controls.iter().find(|x| &x.0 == control) {
            return Some((RuleId::parse(rule)?, *c, *sv));
        }
        if self.pending.len() >= MAX_FTP_LINKS {
            self.pending.pop_front();
        }
        self.pending
            .push_back((control.clone(), EvidenceRef::of(s)));
        None
    }

    /// A control session that made finding `key`: remembers it and returns the data
    /// connections that were waiting for it.
    pub fn control(&mut self, s: &SessionRecord, key: FindingKey) -> Vec<EvidenceRef> {
        if self.controls.len() >= MAX_FTP_LINKS {
            self.controls.pop_front();
        }
        self.controls
            .push_back((s.id.clone(), key.0.as_str().to_string(), key.1, key.2));
        let (mine, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(c, _)| c == &s.id);
        self.pending = rest.into();
        mine.into_iter().map(|(_, e)| e).collect()
    }
}

pub const FTP_PORT: u16 = 21;
/// Longest user name quoted in a signal.
const MAX_USER_QUOTE: usize = 64;
/// Files named per session (the finding's signal list is capped too; the session record
/// keeps them all).
const MAX_FILES_NAMED: usize = 8;
/// Longest file name quoted in a signal.
const MAX_NAME_QUOTE: usize = 120;

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
        // Name the files moved: that is what a customer asks about.
        for f in ftp.files.iter().take(MAX_FILES_NAMED) {
            let name: String = f.name.chars().take(MAX_NAME_QUOTE).collect();
            let (msg, verb) = if f.direction == "upload" {
                (Msg::FileUploadedNamed, "STOR")
            } else {
                (Msg::FileDownloadedNamed, "RETR")
            };
            let size = kuroko_model::units::group_digits(f.bytes as u128);
            hit = hit.signal(encode(msg, &[&verb, &name, &size]));
        }
        if ftp.files.len() > MAX_FILES_NAMED {
            hit = hit.signal(encode(
                Msg::MoreFilesInSession,
                &[&(ftp.files.len() - MAX_FILES_NAMED)],
            ));
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
                ..Default::default()
            }],
            control_session: None,
            banner: None,
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
        assert!(
            h.signals
                .iter()
                .any(|s| s == "file uploaded: STOR report.xlsx (12,000 bytes)"),
            "{:?}",
            h.signals
        );
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
