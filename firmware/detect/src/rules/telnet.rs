//! `telnet_use`: Telnet carries logins and commands in clear text. Seen as the analyzer's
//! `telnet` protocol or TCP with payload to port 23. Kept per (client, server).

use super::{Hit, has_payload, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

/// Longest user name quoted in a signal.
const MAX_USER_QUOTE: usize = 64;

pub fn check(_ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) {
        return;
    }
    // A port scan labelled by port is not Telnet use: payload is required.
    let is_telnet =
        (s.protocol == "telnet" || (s.server.port == 23 && s.protocol == "tcp")) && has_payload(s);
    if !is_telnet {
        return;
    }
    let mut hit =
        Hit::pair(RuleId::TelnetUse, s).signal(encode(Msg::TelnetOnPort, &[&s.server.port]));
    if let Some(user) = s.telnet.as_ref().and_then(|t| t.user.as_deref()) {
        let user: String = user.chars().take(MAX_USER_QUOTE).collect();
        hit = hit.signal(encode(Msg::LoginUserClearText, &[&user]));
    }
    out.push(hit);
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::session::Telnet;

    #[test]
    fn telnet_fires_with_the_user_and_ssh_does_not() {
        let ctx = ctx();
        let mut s = session("telnet", "10.0.0.5", 40000, "10.0.3.1", 23);
        s.telnet = Some(Telnet {
            user: Some("admin".into()),
        });
        let h: Vec<_> = run(&ctx, &s)
            .into_iter()
            .filter(|h| h.rule == RuleId::TelnetUse)
            .collect();
        assert_eq!(h.len(), 1);
        assert!(h[0].signals.iter().any(|x| x.contains("`admin`")));
        // Telnet on another port, identified by the analyzer.
        let s = session("telnet", "10.0.0.5", 40001, "10.0.3.1", 2323);
        assert!(run(&ctx, &s).iter().any(|h| h.rule == RuleId::TelnetUse));
        let s = session("ssh", "10.0.0.5", 40002, "10.0.3.1", 22);
        assert!(run(&ctx, &s).iter().all(|h| h.rule != RuleId::TelnetUse));
        // A SYN scan the analyzer labelled by port.
        let mut scan = session("telnet", "203.0.113.9", 40003, "10.0.3.1", 23);
        scan.bytes_up = 0;
        scan.bytes_down = 0;
        assert!(run(&ctx, &scan).iter().all(|h| h.rule != RuleId::TelnetUse));
    }
}
