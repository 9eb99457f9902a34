//! `streaming_or_adult_in_business_hours`: an inside client reaching a site of the
//! `streaming` or `adult` category (HTTP Host, TLS SNI, or DNS query, suffix-matched
//! against the category lists) while the session starts inside business hours, evaluated
//! in the site's time zone (`[site] timezone`, `business_hours`; DST and weekends follow
//! from the zone's rules). Kept per client; the sites are aggregated (`peer` = the
//! matched domain), because the question for the consultant is "who", not "which CDN
//! node". Resolvers and proxies inside the site are learnt from the traffic and not
//! named themselves (see [`Relays`]).

use super::Hit;
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Most host names looked at in one session (HTTP keep-alive, DNS over TCP).
const MAX_HOSTS_PER_SESSION: usize = 32;

/// Inside hosts that resolve or fetch for others (DNS resolvers, proxies), learnt from
/// the traffic: their own upstream lookups and fetches repeat what their clients asked,
/// so attributing them would name the server instead of the person.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Relays {
    hosts: BTreeSet<IpAddr>,
    /// Relays not remembered because `MAX_RELAYS` were known.
    pub dropped: u64,
}

/// Relays remembered at most.
pub const MAX_RELAYS: usize = 1024;

impl Relays {
    /// Learns from one session: an inside server answering DNS for, or tunnelling
    /// CONNECT for, an inside client is a relay.
    pub fn learn(&mut self, ctx: &Context, s: &SessionRecord) {
        let relays = match s.protocol.as_str() {
            "dns" => s.dns.is_some(),
            "http" => s.http.as_ref().is_some_and(|h| {
                h.transactions
                    .iter()
                    .any(|t| t.method.eq_ignore_ascii_case("CONNECT"))
            }),
            _ => false,
        };
        if !relays
            || !ctx.is_internal(s.client.ip)
            || !ctx.is_internal(s.server.ip)
            || self.hosts.contains(&s.server.ip)
        {
            return;
        }
        if self.hosts.len() >= MAX_RELAYS {
            self.dropped += 1;
        } else {
            self.hosts.insert(s.server.ip);
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.hosts.contains(&ip)
    }
}

pub fn check(ctx: &Context, relays: &Relays, s: &SessionRecord, out: &mut Vec<Hit>) {
    if !ctx.is_internal(s.client.ip)
        || !ctx.in_business_hours(s.start)
        || relays.contains(s.client.ip)
    {
        return;
    }
    let mut hosts: Vec<&str> = Vec::new();
    if let Some(h) = &s.http {
        hosts.extend(h.host.as_deref());
        hosts.extend(h.transactions.iter().filter_map(|t| t.host.as_deref()));
    }
    if let Some(t) = &s.tls {
        hosts.extend(t.sni.as_deref());
    }
    if let Some(d) = &s.dns {
        hosts.extend(d.query.as_deref());
        hosts.extend(d.more_queries.iter().map(String::as_str));
    }
    let mut seen: Vec<(String, &'static str)> = Vec::new();
    for host in hosts.into_iter().take(MAX_HOSTS_PER_SESSION) {
        let Some(host) = crate::text::domain::normalize_host(host) else {
            continue;
        };
        if let Some((category, domain)) = ctx.categories.lookup(&host)
            && !seen.iter().any(|(d, _)| d == domain)
        {
            seen.push((domain.to_string(), category));
        }
    }
    for (domain, category) in seen {
        out.push(Hit {
            rule: RuleId::StreamingOrAdultInBusinessHours,
            client: Some(s.client.ip),
            server: None,
            peer: Some(domain.clone()),
            signals: vec![match category {
                "streaming" => encode(Msg::StreamingSite, &[&domain]),
                "adult" => encode(Msg::AdultSite, &[&domain]),
                other => encode(Msg::CategorySite, &[&other, &domain]),
            }],
            metric: None,
            earlier: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::RuleId;
    use crate::context::Context;
    use crate::rules::testutil::{WED_10_JST, ctx, run, session};
    use kuroko_model::Timestamp;
    use kuroko_model::config::Config;
    use kuroko_model::session::{Dns, Tls};

    const HOUR: i64 = 3_600_000_000_000;

    fn netflix_at(t: i64) -> kuroko_model::SessionRecord {
        let mut s = session("tls", "10.0.0.5", 50000, "198.38.120.10", 443);
        s.start = Timestamp(t);
        s.tls = Some(Tls {
            sni: Some("ipv4-c001-tyo001-ix.1.oca.nflxvideo.net".into()),
            ..Default::default()
        });
        s
    }

    fn fired(ctx: &Context, s: &kuroko_model::SessionRecord) -> bool {
        run(ctx, s)
            .iter()
            .any(|h| h.rule == RuleId::StreamingOrAdultInBusinessHours)
    }

    #[test]
    fn streaming_in_hours_fires_at_night_and_weekend_does_not() {
        let ctx = ctx();
        let h = run(&ctx, &netflix_at(WED_10_JST));
        let h: Vec<_> = h
            .into_iter()
            .filter(|h| h.rule == RuleId::StreamingOrAdultInBusinessHours)
            .collect();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].client, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(h[0].server, None);
        assert_eq!(h[0].peer.as_deref(), Some("nflxvideo.net"));
        assert!(
            !fired(&ctx, &netflix_at(WED_10_JST + 12 * HOUR)),
            "22:00 JST: streaming at night"
        );
        assert!(
            !fired(&ctx, &netflix_at(WED_10_JST + 3 * 24 * HOUR)),
            "Saturday 10:00 JST"
        );
        assert!(
            fired(
                &ctx,
                &netflix_at(WED_10_JST + 7 * HOUR + 59 * 60_000_000_000)
            ),
            "17:59 JST"
        );
        assert!(
            !fired(&ctx, &netflix_at(WED_10_JST + 8 * HOUR)),
            "18:00 JST is closing time"
        );
    }

    #[test]
    fn the_zone_decides_and_dns_queries_count() {
        // 10:00 JST Wednesday is 20:00 Tuesday in New York: outside hours there.
        let mut c = Config::default();
        c.site.timezone = "America/New_York".into();
        let ny = Context::new(&c).unwrap();
        assert!(!fired(&ny, &netflix_at(WED_10_JST)));
        assert!(
            fired(&ny, &netflix_at(WED_10_JST + 14 * HOUR)),
            "10:00 EST Wednesday"
        );

        let mut s = session("dns", "10.0.0.7", 53000, "10.0.0.2", 53);
        s.dns = Some(Dns {
            query: Some("www.pornhub.com".into()),
            qtype: Some("A".into()),
            ..Default::default()
        });
        let h: Vec<_> = run(&crate::rules::testutil::ctx(), &s)
            .into_iter()
            .filter(|h| h.rule == RuleId::StreamingOrAdultInBusinessHours)
            .collect();
        assert_eq!(h.len(), 1);
        assert!(h[0].signals[0].starts_with("adult site pornhub.com"));

        let mut s = session("tls", "10.0.0.5", 50000, "93.184.216.34", 443);
        s.tls = Some(Tls {
            sni: Some("www.example.com".into()),
            ..Default::default()
        });
        assert!(!fired(&crate::rules::testutil::ctx(), &s));
    }
}
