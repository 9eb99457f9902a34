//! `winrm_use`: Windows Remote Management, the remote shell attackers use to move between
//! Windows hosts once they hold credentials. Seen as the analyzer's `winrm` protocol, as
//! HTTP requests to `/wsman`, or as TCP with payload to 5985 (HTTP) / 5986 (HTTPS).
//! Kept per (client, server): each pair is one remote-management path to review.

use super::{Hit, has_payload, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

pub const WINRM_PORTS: [u16; 2] = [5985, 5986];

pub fn check(_ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) {
        return;
    }
    let wsman = s.http.as_ref().is_some_and(|h| {
        h.transactions.iter().any(|t| {
            t.uri
                .to_ascii_lowercase()
                .trim_start_matches("http://")
                .contains("/wsman")
        }) || h
            .url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().contains("/wsman"))
    });
    let signal = if wsman {
        encode(Msg::WinrmWsman, &[&s.server.port])
    } else if s.protocol == "winrm" && has_payload(s) {
        encode(Msg::WinrmOnPort, &[&s.server.port])
    } else if WINRM_PORTS.contains(&s.server.port) && has_payload(s) {
        if s.server.port == 5986 {
            encode(Msg::WinrmHttpsPort, &[&s.server.port])
        } else {
            encode(Msg::WinrmHttpPort, &[&s.server.port])
        }
    } else {
        return;
    };
    out.push(Hit::pair(RuleId::WinrmUse, s).signal(signal));
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::session::{Http, HttpTransaction};

    #[test]
    fn wsman_and_winrm_ports_fire_ordinary_http_does_not() {
        let ctx = ctx();
        let mut s = session("http", "10.0.0.5", 50001, "10.0.0.20", 5985);
        s.http = Some(Http {
            transactions: vec![HttpTransaction {
                method: "POST".into(),
                uri: "/wsman".into(),
                user_agent: Some("Microsoft WinRM Client".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        let h: Vec<_> = run(&ctx, &s)
            .into_iter()
            .filter(|h| h.rule == RuleId::WinrmUse)
            .collect();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].client, Some("10.0.0.5".parse().unwrap()));
        assert!(h[0].signals[0].contains("/wsman"));

        let s = session("tcp", "10.0.0.5", 50002, "10.0.0.20", 5986);
        assert!(run(&ctx, &s).iter().any(|h| h.rule == RuleId::WinrmUse));

        let mut probe = session("tcp", "10.0.0.5", 50003, "10.0.0.20", 5985);
        probe.bytes_up = 0;
        probe.bytes_down = 0;
        assert!(
            run(&ctx, &probe).iter().all(|h| h.rule != RuleId::WinrmUse),
            "a bare SYN scan is not use"
        );

        let mut web = session("http", "10.0.0.5", 50004, "10.0.0.20", 80);
        web.http = Some(Http {
            transactions: vec![HttpTransaction {
                method: "GET".into(),
                uri: "/index.html".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(run(&ctx, &web).iter().all(|h| h.rule != RuleId::WinrmUse));
    }
}
