//! `http_connect_nonstandard_port`: HTTP `CONNECT host:port` through a proxy to a port
//! other than 80 and 443: a tunnel for SSH, RDP, mail or a C2 channel that the proxy
//! passes blind (the NetRAPTOR query the consultants use:
//! `method:CONNECT AND NOT(url:(":443" ":80"))`). Kept per (client, proxy); the tunnel
//! targets are listed as signals.

use super::{Hit, is_tcp};
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

/// Longest CONNECT target quoted in a signal.
const MAX_TARGET_QUOTE: usize = 128;

pub fn check(_ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !is_tcp(s) {
        return;
    }
    let Some(http) = &s.http else { return };
    let mut targets: Vec<String> = http
        .transactions
        .iter()
        .filter(|t| t.method.eq_ignore_ascii_case("CONNECT"))
        .map(|t| t.uri.clone())
        .collect();
    if targets.is_empty()
        && http
            .method
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"))
    {
        targets.extend(http.url.clone());
    }
    let mut hit = Hit::pair(RuleId::HttpConnectNonstandardPort, s);
    for target in targets {
        let Some(port) = connect_port(&target) else {
            continue;
        };
        if port == 80 || port == 443 {
            continue;
        }
        let t: String = target.chars().take(MAX_TARGET_QUOTE).collect();
        hit = hit.signal(encode(Msg::ConnectTarget, &[&t]));
    }
    if !hit.signals.is_empty() {
        out.push(hit);
    }
}

/// The port of a CONNECT authority (`host:port`, `[v6]:port`).
pub fn connect_port(authority: &str) -> Option<u16> {
    let a = authority.trim();
    let (_, port) = a.rsplit_once(':')?;
    if port.is_empty() || port.contains(']') {
        return None;
    }
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::connect_port;
    use crate::catalog::RuleId;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::session::{Http, HttpTransaction};

    fn connect(target: &str) -> kuroko_model::SessionRecord {
        let mut s = session("http", "10.0.0.5", 50000, "10.0.0.3", 3128);
        s.http = Some(Http {
            method: Some("CONNECT".into()),
            url: Some(target.into()),
            transactions: vec![HttpTransaction {
                method: "CONNECT".into(),
                uri: target.into(),
                status: Some(200),
                ..Default::default()
            }],
            ..Default::default()
        });
        s
    }

    #[test]
    fn nonstandard_ports_fire_80_and_443_do_not() {
        let ctx = ctx();
        let h: Vec<_> = run(&ctx, &connect("mtalk.google.com:5228"))
            .into_iter()
            .filter(|h| h.rule == RuleId::HttpConnectNonstandardPort)
            .collect();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].server, Some("10.0.0.3".parse().unwrap()));
        assert_eq!(
            h[0].signals,
            vec!["CONNECT mtalk.google.com:5228".to_string()]
        );
        assert!(
            run(&ctx, &connect("www.example.com:443"))
                .iter()
                .all(|h| h.rule != RuleId::HttpConnectNonstandardPort)
        );
        assert!(
            run(&ctx, &connect("www.example.com:80"))
                .iter()
                .all(|h| h.rule != RuleId::HttpConnectNonstandardPort)
        );
        assert_eq!(connect_port("[2001:db8::1]:22"), Some(22));
        assert_eq!(connect_port("[2001:db8::1]"), None);
        assert_eq!(connect_port("host"), None);
    }
}
