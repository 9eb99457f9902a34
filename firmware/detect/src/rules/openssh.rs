//! `openssh_outdated`: OpenSSH servers older than `detect.openssh_min_version`
//! (default 9.8p1, the release that fixed CVE-2024-6387 "regreSSHion").
//!
//! Only the server banner counts (an old client is not a listening service), only servers
//! inside the site, and only OpenSSH: Dropbear, libssh, Cisco and the rest have their own
//! version lines. The portable release number is compared with its p-level
//! (`9.2p1` < `9.8` < `9.8p1` < `9.9`). Distribution suffixes (`Debian-2+deb12u3`,
//! `Ubuntu-3ubuntu0.10`) are kept in the signal: distributions backport fixes, which a
//! consultant may weigh with `detect.overrides`, but the release itself is still older
//! than the site's threshold.

use super::{Hit, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

/// Longest banner quoted in a signal.
const MAX_BANNER_QUOTE: usize = 96;

/// An OpenSSH release: `major.minor` and the portable p-level (0 when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SshVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl SshVersion {
    /// `9.8p1`, `9.8`, `10.0p2`.
    pub fn parse_plain(text: &str) -> Option<SshVersion> {
        let t = text.trim();
        let t = t.strip_prefix("OpenSSH_").unwrap_or(t);
        let (major, rest) = split_number(t)?;
        let rest = rest.strip_prefix('.')?;
        let (minor, rest) = split_number(rest)?;
        let patch = match rest.strip_prefix('p') {
            Some(p) => split_number(p).map(|(n, _)| n).unwrap_or(0),
            None => 0,
        };
        Some(SshVersion {
            major,
            minor,
            patch,
        })
    }

    /// The OpenSSH release in an SSH identification line
    /// (`SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`, `SSH-2.0-OpenSSH_for_Windows_8.1`);
    /// `None` for other implementations.
    pub fn from_banner(banner: &str) -> Option<SshVersion> {
        let i = banner.find("OpenSSH_")?;
        let rest = &banner[i + "OpenSSH_".len()..];
        let rest = rest.strip_prefix("for_Windows_").unwrap_or(rest);
        SshVersion::parse_plain(rest)
    }
}

impl std::fmt::Display for SshVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.patch > 0 {
            write!(f, "p{}", self.patch)?;
        }
        Ok(())
    }
}

fn split_number(t: &str) -> Option<(u32, &str)> {
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if end == 0 || end > 6 {
        return None;
    }
    Some((t[..end].parse().ok()?, &t[end..]))
}

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) || !ctx.is_internal(s.server.ip) {
        return;
    }
    let Some(banner) = s.ssh.as_ref().and_then(|x| x.server_version.as_deref()) else {
        return;
    };
    let Some(version) = SshVersion::from_banner(banner) else {
        return;
    };
    if version >= ctx.openssh_min {
        return;
    }
    let quoted: String = banner.chars().take(MAX_BANNER_QUOTE).collect();
    out.push(Hit {
        rule: RuleId::OpensshOutdated,
        client: None,
        server: Some(s.server.ip),
        peer: Some(s.client.ip.to_string()),
        signals: vec![encode(
            Msg::OpensshOlder,
            &[&quoted, &version, &ctx.openssh_min],
        )],
        metric: None,
        earlier: Vec::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::session::Ssh;

    fn ssh_session(server_banner: &str) -> SessionRecord {
        let mut s = session("ssh", "10.1.2.3", 51000, "10.1.9.9", 22);
        s.ssh = Some(Ssh {
            client_version: Some("SSH-2.0-OpenSSH_7.4".into()),
            server_version: Some(server_banner.into()),
        });
        s
    }

    #[test]
    fn versions_compare_with_p_level() {
        let v = |t| SshVersion::parse_plain(t).unwrap();
        assert!(v("9.2p1") < v("9.8"));
        assert!(v("9.8") < v("9.8p1"));
        assert!(v("9.8p1") < v("9.9"));
        assert!(v("9.9") < v("10.0p1"));
        assert_eq!(
            SshVersion::from_banner("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10"),
            Some(SshVersion {
                major: 8,
                minor: 9,
                patch: 1
            })
        );
        assert_eq!(
            SshVersion::from_banner("SSH-2.0-OpenSSH_for_Windows_8.1"),
            Some(SshVersion {
                major: 8,
                minor: 1,
                patch: 0
            })
        );
        assert_eq!(SshVersion::from_banner("SSH-2.0-dropbear_2022.83"), None);
        assert_eq!(SshVersion::from_banner("SSH-2.0-OpenSSH_"), None);
        assert_eq!(SshVersion::parse_plain("latest"), None);
    }

    fn fired(banner: &str) -> Vec<Hit> {
        run(&ctx(), &ssh_session(banner))
            .into_iter()
            .filter(|h| h.rule == RuleId::OpensshOutdated)
            .collect()
    }

    #[test]
    fn old_servers_fire_current_ones_and_other_implementations_do_not() {
        let h = fired("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].server, Some("10.1.9.9".parse().unwrap()));
        assert_eq!(h[0].client, None, "clients are aggregated");
        assert_eq!(h[0].peer.as_deref(), Some("10.1.2.3"));
        assert!(
            h[0].signals[0].contains("8.9p1 < 9.8p1"),
            "{:?}",
            h[0].signals
        );
        assert_eq!(fired("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3").len(), 1);
        assert!(fired("SSH-2.0-OpenSSH_9.8p1 Debian-3").is_empty());
        assert!(fired("SSH-2.0-OpenSSH_9.9").is_empty());
        assert!(fired("SSH-2.0-OpenSSH_10.0p2").is_empty());
        assert!(fired("SSH-2.0-dropbear_2020.81").is_empty());
    }

    #[test]
    fn only_the_server_side_and_only_inside_servers() {
        // Old client, current server: nothing.
        let mut s = ssh_session("SSH-2.0-OpenSSH_9.9");
        s.ssh.as_mut().unwrap().client_version = Some("SSH-2.0-OpenSSH_6.6".into());
        assert!(
            run(&ctx(), &s)
                .iter()
                .all(|h| h.rule != RuleId::OpensshOutdated)
        );
        // Old server outside the site: not ours to patch.
        let mut s = ssh_session("SSH-2.0-OpenSSH_7.4");
        s.server.ip = "198.51.100.10".parse().unwrap();
        assert!(
            run(&ctx(), &s)
                .iter()
                .all(|h| h.rule != RuleId::OpensshOutdated)
        );
    }

    #[test]
    fn threshold_comes_from_config() {
        let mut c = kuroko_model::config::Config::default();
        c.detect.openssh_min_version = "9.0".into();
        let ctx = Context::new(&c).unwrap();
        let s = ssh_session("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3");
        assert!(
            run(&ctx, &s)
                .iter()
                .all(|h| h.rule != RuleId::OpensshOutdated)
        );
        c.detect.openssh_min_version = "newest".into();
        let e = Context::new(&c).unwrap_err().to_string();
        assert!(e.contains("detect.openssh_min_version"), "{e}");
    }
}
