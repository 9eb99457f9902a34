//! `bad_reputation_ip`: traffic with an address on a reputation list (Spamhaus DROP
//! style files in `[intel] reputation_lists`). The listed address is always kept (it is
//! what gets blocked). A listed *client* means connection attempts from it: the targets
//! are aggregated (`peer`), so one scanner against a thousand hosts is one finding, not a
//! thousand (the brochure's "Untrust IP からの接続試行, 多数"). A listed *server* means a
//! host of ours reached it (malware calling home, a user on a bad site): that is kept per
//! (client, server), since each such host is its own incident to look at.

use super::Hit;
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if ctx.reputation.is_empty() {
        return;
    }
    if let Some(label) = ctx.reputation.lookup(s.client.ip) {
        out.push(Hit {
            rule: RuleId::BadReputationIp,
            client: Some(s.client.ip),
            server: None,
            peer: Some(s.server.ip.to_string()),
            signals: vec![encode(Msg::ReputationFrom, &[&s.client.ip, &label])],
            metric: None,
            earlier: Vec::new(),
        });
    }
    if let Some(label) = ctx.reputation.lookup(s.server.ip) {
        out.push(Hit {
            rule: RuleId::BadReputationIp,
            client: Some(s.client.ip),
            server: Some(s.server.ip),
            peer: None,
            signals: vec![encode(Msg::ReputationTo, &[&s.server.ip, &label])],
            metric: None,
            earlier: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::context::Context;
    use crate::rules::testutil::{run, session};
    use kuroko_model::config::Config;

    #[test]
    fn listed_addresses_fire_on_either_side() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("drop.txt");
        std::fs::write(&list, "; DROP\n203.0.113.0/24 ; SBL999\n").unwrap();
        let mut c = Config::default();
        c.intel.reputation_lists = vec![list];
        let ctx = Context::new(&c).unwrap();
        let h: Vec<_> = run(
            &ctx,
            &session("tcp", "203.0.113.9", 40000, "10.0.0.80", 443),
        )
        .into_iter()
        .filter(|h| h.rule == RuleId::BadReputationIp)
        .collect();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].client, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(h[0].server, None);
        assert_eq!(h[0].peer.as_deref(), Some("10.0.0.80"));
        assert!(h[0].signals[0].contains("SBL999 (drop.txt)"));
        let h: Vec<_> = run(
            &ctx,
            &session("tls", "10.0.0.5", 40000, "203.0.113.200", 443),
        )
        .into_iter()
        .filter(|h| h.rule == RuleId::BadReputationIp)
        .collect();
        assert_eq!(h[0].server, Some("203.0.113.200".parse().unwrap()));
        assert_eq!(
            h[0].client,
            Some("10.0.0.5".parse().unwrap()),
            "the host that reached it is kept"
        );
        assert!(
            run(
                &ctx,
                &session("tls", "10.0.0.5", 40000, "198.51.100.1", 443)
            )
            .iter()
            .all(|h| h.rule != RuleId::BadReputationIp)
        );
    }
}
