//! `openssh_outdated`: OpenSSH servers older than `detect.openssh_min_version`
//! (default 9.8p1, the release that fixed CVE-2024-6387 "regreSSHion").
//!
//! Only the server banner counts (an old client is not a listening service), only servers
//! inside the site, and only OpenSSH: Dropbear, libssh, Cisco and the rest have their own
//! version lines. Banners are read and compared by the shared version machinery
//! (`crate::versions`): the portable release with its p-level (`9.2p1` < `9.8` < `9.8p1`
//! < `9.9`). A distribution package (`Debian-2+deb12u3`, `Ubuntu-3ubuntu0.10`) is named
//! in the signal: distributions backport fixes, so the signal says so, and the per-CVE
//! verdicts that take the package revision into account are `vulnerable_software`'s; the
//! release itself is still older than the site's threshold.

use super::{Hit, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use crate::versions::identify;
use kuroko_model::SessionRecord;

/// Longest banner quoted in a signal.
const MAX_BANNER_QUOTE: usize = 96;

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) || !ctx.is_internal(s.server.ip) {
        return;
    }
    let Some(banner) = s.ssh.as_ref().and_then(|x| x.server_version.as_deref()) else {
        return;
    };
    let Some(sw) = identify(banner).filter(|sw| sw.product == "openssh") else {
        return;
    };
    let Some(version) = sw.version.as_ref() else {
        return;
    };
    if *version >= ctx.openssh_min {
        return;
    }
    let quoted: String = banner.chars().take(MAX_BANNER_QUOTE).collect();
    // A distribution package: its name and revision (distributions backport fixes).
    let backport = sw.distro.as_ref().map(|d| {
        (
            d.name.as_str().to_string(),
            d.revision
                .as_ref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default(),
        )
    });
    out.push(Hit {
        rule: RuleId::OpensshOutdated,
        client: None,
        server: Some(s.server.ip),
        peer: Some(s.client.ip.to_string()),
        signals: vec![match &backport {
            Some((name, revision)) => encode(
                Msg::OpensshOlderPackage,
                &[&quoted, &version, &ctx.openssh_min, name, revision],
            ),
            None => encode(Msg::OpensshOlder, &[&quoted, &version, &ctx.openssh_min]),
        }],
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
    fn versions_come_from_the_shared_machinery() {
        let sw = identify("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10").unwrap();
        assert_eq!(sw.version.unwrap().as_str(), "8.9p1");
        let sw = identify("SSH-2.0-OpenSSH_for_Windows_8.1").unwrap();
        assert_eq!(sw.version.unwrap().as_str(), "8.1");
        assert_eq!(identify("SSH-2.0-dropbear_2022.83"), None);
        assert_eq!(identify("SSH-2.0-OpenSSH_").unwrap().version, None);
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
        let h = fired("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3");
        assert_eq!(h.len(), 1);
        assert!(
            h[0].signals[0].contains("(debian package 2+deb12u3: fixes may be backported)"),
            "{:?}",
            h[0].signals
        );
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
