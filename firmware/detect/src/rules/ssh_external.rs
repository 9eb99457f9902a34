//! `ssh_external`: SSH from an inside client to an outside server that is not on
//! `[intel] allowed_ssh_servers`. An SSH session to a server nobody approved is a tunnel
//! out of the site that no proxy or DLP sees into (the brochure's insider example,
//! graded A). Kept per (client, server): each pair is a person and a destination to ask
//! about.

use super::{Hit, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

/// Longest banner quoted in a signal.
const MAX_BANNER_QUOTE: usize = 96;

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    // The server must have answered (its banner): a SYN to port 22 is not SSH access.
    if !is_tcp(s) || s.protocol != "ssh" || (s.ssh.is_none() && s.bytes_down == 0) {
        return;
    }
    if !ctx.is_internal(s.client.ip) || ctx.is_internal(s.server.ip) || ctx.ssh_allowed(s.server.ip)
    {
        return;
    }
    let mut hit =
        Hit::pair(RuleId::SshExternal, s).signal(encode(Msg::SshExternalPort, &[&s.server.port]));
    if let Some(b) = s.ssh.as_ref().and_then(|x| x.server_version.as_deref()) {
        let b: String = b.chars().take(MAX_BANNER_QUOTE).collect();
        hit = hit.signal(encode(Msg::ServerBanner, &[&b]));
    }
    out.push(hit);
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::context::Context;
    use crate::rules::testutil::{run, session};
    use kuroko_model::config::Config;

    #[test]
    fn outside_servers_fire_unless_allowed() {
        let mut c = Config::default();
        c.intel.allowed_ssh_servers = vec!["192.0.2.0/28".into(), "198.51.100.22".into()];
        let ctx = Context::new(&c).unwrap();
        let fired = |server: &str| {
            run(&ctx, &session("ssh", "10.0.0.5", 50000, server, 22))
                .iter()
                .any(|h| h.rule == RuleId::SshExternal)
        };
        assert!(fired("203.0.113.50"));
        assert!(!fired("198.51.100.22"), "SSH to an allowed server");
        assert!(!fired("192.0.2.7"), "allowed by CIDR");
        assert!(!fired("10.9.9.9"), "inside server");
        // SSH on another port is still SSH.
        assert!(
            run(
                &ctx,
                &session("ssh", "10.0.0.5", 50000, "203.0.113.50", 2222)
            )
            .iter()
            .any(|h| h.rule == RuleId::SshExternal)
        );
        // A SYN to port 22 that nobody answered.
        let mut syn = session("ssh", "10.0.0.5", 50001, "203.0.113.50", 22);
        syn.bytes_down = 0;
        assert!(
            !run(&ctx, &syn)
                .iter()
                .any(|h| h.rule == RuleId::SshExternal)
        );
        // Inbound SSH from outside is not this rule.
        assert!(
            !run(&ctx, &session("ssh", "203.0.113.50", 50000, "10.0.0.5", 22))
                .iter()
                .any(|h| h.rule == RuleId::SshExternal)
        );
    }
}
