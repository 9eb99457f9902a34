//! The servers' certificates seen in the traffic, for the report's §3.7: one row per leaf
//! certificate (by SHA-256) with its names, validity and how many sessions showed it, and
//! how many of those sessions found it expired, self-signed or not naming the server the
//! client asked for. The judgment is `kuroko_model::certs::judge_leaf`, the one the
//! `weak_tls` rule uses, so the section and the finding say the same thing.

use ipnet::IpNet;
use kuroko_model::SessionRecord;
use std::collections::{BTreeSet, HashMap};

/// Distinct certificates kept; later ones are only counted (a site that talks to the
/// whole internet sees tens of thousands, the report shows the worst few dozen).
pub const MAX_CERTS: usize = 2000;
/// Server addresses kept per certificate.
pub const MAX_SERVERS: usize = 4;

/// One leaf certificate and what the sessions that showed it said about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertSeen {
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub self_signed: bool,
    /// Sessions that showed it.
    pub sessions: u64,
    /// Sessions that started after its `not_after`.
    pub expired_sessions: u64,
    /// Sessions whose SNI it does not name.
    pub mismatch_sessions: u64,
    /// `ip:port` of the servers that presented it (at most [`MAX_SERVERS`]).
    pub servers: BTreeSet<String>,
    /// Some server presenting it is inside the site.
    pub internal: bool,
}

impl CertSeen {
    /// Something is wrong with it (what `weak_tls` reports for an inside server).
    pub fn has_problem(&self) -> bool {
        self.self_signed || self.expired_sessions > 0 || self.mismatch_sessions > 0
    }
}

/// Every certificate seen, and how many were only counted.
#[derive(Clone, Debug, Default)]
pub struct CertStats {
    pub certs: Vec<CertSeen>,
    /// Sessions with a certificate past [`MAX_CERTS`] distinct ones.
    pub folded_sessions: u64,
}

impl CertStats {
    /// Inside servers' problem certificates first, then other problems, then by sessions.
    pub fn report_order(&self) -> Vec<&CertSeen> {
        let mut v: Vec<&CertSeen> = self.certs.iter().collect();
        v.sort_by(|a, b| {
            let key = |c: &CertSeen| (!(c.internal && c.has_problem()), !c.has_problem());
            key(a)
                .cmp(&key(b))
                .then(b.sessions.cmp(&a.sessions))
                .then(a.subject.cmp(&b.subject))
        });
        v
    }
}

/// Folds sessions into [`CertStats`].
pub struct CertCollector {
    internal: Vec<IpNet>,
    index: HashMap<String, usize>,
    stats: CertStats,
}

impl CertCollector {
    pub fn new(internal: Vec<IpNet>) -> CertCollector {
        CertCollector {
            internal,
            index: HashMap::new(),
            stats: CertStats::default(),
        }
    }

    pub fn add(&mut self, s: &SessionRecord) {
        let Some(tls) = &s.tls else { return };
        let Some((leaf, judgment)) = kuroko_model::certs::judge_leaf(tls) else {
            return;
        };
        let i = match self.index.get(&leaf.sha256) {
            Some(&i) => i,
            None if self.stats.certs.len() >= MAX_CERTS => {
                self.stats.folded_sessions += 1;
                return;
            }
            None => {
                self.stats.certs.push(CertSeen {
                    sha256: leaf.sha256.clone(),
                    subject: leaf.subject.clone(),
                    issuer: leaf.issuer.clone(),
                    serial: leaf.serial.clone(),
                    not_before: leaf.not_before.clone(),
                    not_after: leaf.not_after.clone(),
                    self_signed: judgment.self_signed,
                    ..Default::default()
                });
                self.index
                    .insert(leaf.sha256.clone(), self.stats.certs.len() - 1);
                self.stats.certs.len() - 1
            }
        };
        let inside = self.internal.iter().any(|n| n.contains(&s.server.ip));
        let c = &mut self.stats.certs[i];
        c.sessions += 1;
        c.expired_sessions += u64::from(judgment.expired);
        c.mismatch_sessions += u64::from(judgment.name_mismatch.is_some());
        c.internal |= inside;
        if c.servers.len() < MAX_SERVERS {
            c.servers.insert(format!(
                "{}",
                std::net::SocketAddr::new(s.server.ip, s.server.port)
            ));
        }
    }

    pub fn finish(self) -> CertStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::session::{Cert, Tls};

    fn session(server: &str, sni: &str, cert: &Cert) -> SessionRecord {
        let mut s: SessionRecord = serde_json::from_value(serde_json::json!({
            "id": "1-1-1", "start": "2026-01-05T01:00:00Z", "end": "2026-01-05T01:00:01Z",
            "protocol": "tls", "transport": "tcp",
            "client": {"ip": "10.1.1.10", "port": 50000},
            "server": {"ip": server, "port": 443},
            "bytes_up": 1, "bytes_down": 1, "packets": 2
        }))
        .expect("session");
        s.tls = Some(Tls {
            sni: Some(sni.into()),
            certs: vec![cert.clone()],
            ..Default::default()
        });
        s
    }

    #[test]
    fn one_row_per_certificate_with_the_rules_judgment() {
        let good = Cert {
            subject: "CN=www.example.com".into(),
            issuer: "CN=CA".into(),
            sha256: "aa".into(),
            san: vec!["www.example.com".into()],
            ..Default::default()
        };
        let bad = Cert {
            subject: "CN=intra".into(),
            issuer: "CN=intra".into(),
            sha256: "bb".into(),
            self_signed: true,
            expired: true,
            ..Default::default()
        };
        let mut c = CertCollector::new(vec!["10.0.0.0/8".parse().unwrap()]);
        c.add(&session("203.0.113.5", "www.example.com", &good));
        c.add(&session("203.0.113.5", "www.example.com", &good));
        c.add(&session("10.1.2.3", "intra", &bad));
        c.add(&session("10.1.2.4", "other.corp", &bad));
        let st = c.finish();
        let order = st.report_order();
        assert_eq!(order.len(), 2);
        assert_eq!(order[0].sha256, "bb");
        assert!(order[0].internal && order[0].self_signed);
        assert_eq!(
            (
                order[0].sessions,
                order[0].expired_sessions,
                order[0].mismatch_sessions
            ),
            (2, 2, 1)
        );
        assert_eq!(order[0].servers.len(), 2);
        assert_eq!((order[1].sessions, order[1].has_problem()), (2, false));
    }
}
