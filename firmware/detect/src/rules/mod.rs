//! The built-in rules, one module each. A rule looks at one session record (and the
//! site context) and pushes zero or more [`Hit`]s; aggregation, levels and wording are
//! the engine's and the catalog's business, so a rule module holds only the "does this
//! session show the problem" logic and its reasons.
//!
//! Which side of a hit is kept per address and which is aggregated ("多数") is decided per
//! rule and documented in the crate docs' table: the aggregated side is `None` and its
//! address (or domain) is recorded as a `peer` of the finding.

pub mod cleartext_credentials;
pub mod exploit;
pub mod fortinet;
pub mod ftp;
pub mod http_connect;
pub mod intel_match;
pub mod openssh;
pub mod oracle;
pub mod phishing;
pub mod reputation;
pub mod ssh_external;
pub mod streaming;
pub mod telnet;
pub mod vpn_upload;
pub mod vulnerable_software;
pub mod weak_tls;
pub mod winrm;
pub mod yara;

use crate::catalog::RuleId;
use kuroko_model::SessionRecord;
use std::net::IpAddr;

/// One rule firing on one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rule: RuleId,
    /// `None`: aggregated over many clients.
    pub client: Option<IpAddr>,
    /// `None`: aggregated over many servers.
    pub server: Option<IpAddr>,
    /// The address or name on the aggregated side (kept in a capped list).
    pub peer: Option<String>,
    /// Why it fired: messages of the signal catalog (`crate::signals::encode`), worded
    /// when the finding is read; short and stable, they are de-duplicated.
    pub signals: Vec<String>,
    /// A size the rule measured (bytes uploaded); the finding keeps the maximum.
    pub metric: Option<u64>,
    /// Earlier sessions that belong to the evidence of this hit (a rule that sums over
    /// a window reports the sessions that made up the sum).
    pub earlier: Vec<crate::aggregate::EvidenceRef>,
}

impl Hit {
    pub fn pair(rule: RuleId, s: &SessionRecord) -> Hit {
        Hit {
            rule,
            client: Some(s.client.ip),
            server: Some(s.server.ip),
            peer: None,
            signals: Vec::new(),
            metric: None,
            earlier: Vec::new(),
        }
    }
    pub fn signal(mut self, s: impl Into<String>) -> Hit {
        self.signals.push(s.into());
        self
    }
}

pub(crate) fn is_tcp(s: &SessionRecord) -> bool {
    s.transport == "tcp"
}

/// Whether the session carried application data (not only a handshake or a scan probe).
pub(crate) fn has_payload(s: &SessionRecord) -> bool {
    s.bytes_up > 0 || s.bytes_down > 0
}

/// The rules that need no state across sessions (the engine adds the stateful ones:
/// streaming with its relays, VPN upload windows).
pub(crate) fn check_stateless(
    ctx: &crate::context::Context,
    s: &SessionRecord,
    out: &mut Vec<Hit>,
) {
    fortinet::check(ctx, s, out);
    exploit::check(ctx, s, out);
    phishing::check(ctx, s, out);
    openssh::check(ctx, s, out);
    winrm::check(ctx, s, out);
    telnet::check(ctx, s, out);
    ftp::check(ctx, s, out);
    ssh_external::check(ctx, s, out);
    oracle::check(ctx, s, out);
    reputation::check(ctx, s, out);
    http_connect::check(ctx, s, out);
    vulnerable_software::check(ctx, s, out);
    weak_tls::check(ctx, s, out);
    cleartext_credentials::check(ctx, s, out);
    yara::check(ctx, s, out);
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Realistic session records for rule tests.
    use kuroko_model::session::Endpoint;
    use kuroko_model::{SessionRecord, Timestamp};

    /// Wed 2026-11-18 10:00 JST.
    pub const WED_10_JST: i64 = 1_794_963_600_000_000_000;

    pub fn session(
        proto: &str,
        client: &str,
        cport: u16,
        server: &str,
        sport: u16,
    ) -> SessionRecord {
        let mut s = SessionRecord::new(
            format!("s-{client}-{cport}-{server}-{sport}"),
            Timestamp(WED_10_JST),
            if proto == "dns" { "udp" } else { "tcp" },
            Endpoint::new(client.parse().unwrap(), cport),
            Endpoint::new(server.parse().unwrap(), sport),
        );
        s.protocol = proto.to_string();
        s.end = Timestamp(WED_10_JST + 2_000_000_000);
        s.bytes_up = 800;
        s.bytes_down = 4_000;
        s.packets = 20;
        s
    }

    pub fn ctx() -> crate::context::Context {
        crate::context::Context::new(&kuroko_model::config::Config::default()).unwrap()
    }

    /// The hits of one session, their signals worded in English (as the rule tests
    /// read them).
    pub fn run(ctx: &crate::context::Context, s: &SessionRecord) -> Vec<super::Hit> {
        let mut out = Vec::new();
        super::check_stateless(ctx, s, &mut out);
        super::streaming::check(ctx, &super::streaming::Relays::default(), s, &mut out);
        for h in &mut out {
            for sig in &mut h.signals {
                *sig = crate::signals::render(sig, kuroko_model::finding::Lang::En);
            }
        }
        out
    }
}
