//! `oracle_traffic`: Oracle TNS (the analyzer's `oracle` protocol, or TCP with payload to
//! the listener ports 1521/1522). Database sessions on the default listener port and
//! without network encryption expose queries and credentials. Kept per (client, server).

use super::{Hit, has_payload, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

pub const ORACLE_PORTS: [u16; 2] = [1521, 1522];
/// Longest service name quoted in a signal.
const MAX_QUOTE: usize = 64;

pub fn check(_ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) {
        return;
    }
    let is_oracle = (s.protocol == "oracle"
        || (s.protocol == "tcp" && ORACLE_PORTS.contains(&s.server.port)))
        && has_payload(s);
    if !is_oracle {
        return;
    }
    let mut hit = Hit::pair(RuleId::OracleTraffic, s);
    hit = if ORACLE_PORTS.contains(&s.server.port) {
        hit.signal(encode(Msg::OracleDefaultPort, &[&s.server.port]))
    } else {
        hit.signal(encode(Msg::OracleOnPort, &[&s.server.port]))
    };
    if let Some(name) = s.oracle.as_ref().and_then(|o| o.service_name.as_deref()) {
        let name: String = name.chars().take(MAX_QUOTE).collect();
        hit = hit.signal(encode(Msg::OracleService, &[&name]));
    }
    out.push(hit);
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::session::Oracle;

    #[test]
    fn tns_fires_and_postgres_does_not() {
        let ctx = ctx();
        let mut s = session("oracle", "10.0.0.5", 50000, "10.0.5.5", 1521);
        s.oracle = Some(Oracle {
            service_name: Some("ORCLPDB1".into()),
            ..Default::default()
        });
        let h: Vec<_> = run(&ctx, &s)
            .into_iter()
            .filter(|h| h.rule == RuleId::OracleTraffic)
            .collect();
        assert_eq!(h.len(), 1);
        assert!(h[0].signals.iter().any(|x| x.contains("ORCLPDB1")));
        assert!(h[0].signals.iter().any(|x| x.contains("default port 1521")));
        let mut probe = session("oracle", "10.0.0.5", 50001, "10.0.5.5", 1521);
        probe.bytes_up = 0;
        probe.bytes_down = 0;
        assert!(
            run(&ctx, &probe)
                .iter()
                .all(|h| h.rule != RuleId::OracleTraffic)
        );
        let s = session("tcp", "10.0.0.5", 50000, "10.0.5.5", 5432);
        assert!(
            run(&ctx, &s)
                .iter()
                .all(|h| h.rule != RuleId::OracleTraffic)
        );
    }
}
