//! The asset inventory: which internal hosts the traffic shows, what they serve and which
//! software they announce, each fact with the session that shows it.
//!
//! Built passively from the session records as the detection engine consumes them, and
//! kept in the engine's state: the findings store commits it together with the findings
//! and the session-log position, so the inventory is crash-safe and counts every session
//! exactly once, like the findings (see the crate docs' invariants). Readers get it with
//! [`crate::load_assets`] and judge the software against the advisory list with
//! [`view`].
//!
//! Per internal address: MAC (from the frames, and the binding a DHCP server's ACK
//! makes), names (DNS answers naming the address, HTTP `Host` and TLS SNI it answered to,
//! the DHCP host name it gave, the NetBIOS names it registered or answered with, the mDNS
//! host names its address records carry), first/last seen, services (port + transport it
//! answered on, the identified protocol, sessions, distinct clients inside and outside the
//! site; a port it announced over mDNS/DNS-SD is a service too, marked `announced` with its
//! service types, and counts no clients until it is seen answering) and software facts (SSH server banners, FTP/SMTP/POP3/IMAP greetings, HTTP
//! `Server` and `X-Powered-By`, TLS certificate subjects and versions, the Oracle
//! listener's version, the SMB dialect it chose as servers; HTTP `User-Agent`, SSH client
//! banners and the DHCP vendor class as clients; the mDNS/DNS-SD service instances and
//! device model it announced).
//!
//! DHCP tells a client's name and vendor class in its REQUEST (sent from 0.0.0.0) and the
//! server binds the address in its ACK, two flows whose sessions may arrive in either
//! order: the inventory remembers the last lease per MAC and what a MAC said of itself
//! (both capped at `max_hosts`, the oldest dropped and counted), and joins them.
//!
//! Memory is bounded by `[assets]` (`max_hosts`, `max_services_per_host`,
//! `max_software_per_host`) plus fixed caps on names and clients; a new host beyond
//! `max_hosts` evicts the host seen least recently, and every refusal is counted in
//! [`InventoryStats`].

pub mod view;

use crate::context::{Context, unmap};
use kuroko_model::session::SessionRecord;
use kuroko_model::{Timestamp, config::Assets as AssetsConfig};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Names kept per host.
pub const MAX_NAMES: usize = 8;
/// Distinct clients remembered per service (counted inside/outside); beyond it, further
/// clients are counted in `clients_uncounted` sessions.
pub const MAX_CLIENTS: usize = 16;
/// How the Oracle listener's version is written as a software fact (the version machinery
/// knows the product by this marker).
pub const TNS_FACT_PREFIX: &str = "Oracle TNS listener Version ";
/// Longest text kept for one software fact (a banner, a header).
pub const MAX_FACT_LEN: usize = 200;
/// `mdns-service` facts kept per host (a printer announces ten service types): they must
/// not take the room of the banners the advisories judge. More are counted as dropped
/// software.
pub const MAX_MDNS_SERVICES: usize = 6;
/// The port of `mdns-model` facts (the model is the host's, not one service's).
pub const MDNS_PORT: u16 = 5353;
/// DNS-SD service types kept per service (`_ipp._tcp` and `_ipps._tcp` share 631).
pub const MAX_ANNOUNCED_TYPES: usize = 4;

/// What the caps refused, named after the event.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct InventoryStats {
    pub sessions_observed: u64,
    /// Hosts dropped to make room for a new one (`max_hosts`).
    pub hosts_evicted: u64,
    pub services_dropped: u64,
    pub software_dropped: u64,
    pub names_dropped: u64,
    /// DHCP leases or client announcements forgotten to stay within `max_hosts`.
    #[serde(default)]
    pub dhcp_dropped: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Host {
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<Name>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<SoftwareFact>,
}

/// A name the host was seen under.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Name {
    pub name: String,
    /// `dns` (an answer naming the address), `http-host`, `tls-sni`, `dhcp` (option 12 of
    /// its request), `netbios` (a name it registered or answered with, suffix removed),
    /// `mdns` (an mDNS A/AAAA record for the address: `printer.local`).
    pub source: String,
    pub session: String,
}

/// A port the host answered on, or announced over mDNS.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Service {
    pub port: u16,
    pub transport: String,
    /// Identified application protocol of the first session that answered (`ssh`, `http`,
    /// `tls`…); while the service is only announced, the DNS-SD service name (`ipp` of
    /// `_ipp._tcp`).
    pub protocol: String,
    /// Sessions it answered; 0 for a service only announced (not seen answering: no
    /// clients counted).
    pub sessions: u64,
    /// Distinct clients inside / outside the site (up to `MAX_CLIENTS` remembered).
    pub internal_clients: u32,
    pub external_clients: u32,
    /// The distinct clients counted above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<IpAddr>,
    /// Sessions from clients beyond `MAX_CLIENTS` (not told apart).
    #[serde(default)]
    pub clients_uncounted: u64,
    /// Of every session that showed the service, answering or announcing it.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// The first session that answered on it; for a service only announced, the first
    /// mDNS session that announced it.
    pub session: String,
    /// DNS-SD service types the host announced over mDNS on this port and transport
    /// (`_ipp._tcp`; SRV port, transport from the type), up to [`MAX_ANNOUNCED_TYPES`];
    /// empty when it was never announced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announced: Vec<String>,
}

/// Software the host announced.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SoftwareFact {
    /// `server` (it answered with it), `client` (it sent it) or `announced` (it told the
    /// link over mDNS: what it offers and what it is, not software the advisories judge;
    /// the report's and console's software lists leave it out).
    pub role: String,
    /// `ssh-banner`, `ftp-banner`, `mail-banner` (SMTP/POP3/IMAP greeting),
    /// `http-server`, `http-powered-by`, `tls-cert`, `tls-version`, `tns-version`
    /// (`Oracle TNS listener Version 19.0.0.0.0`), `smb-dialect` (`SMB 3.1.1`, `SMB1 NT LM
    /// 0.12`), `mdns-service` (a DNS-SD instance it announced, `Office Printer._ipp._tcp.local`,
    /// on the SRV port, 0 when no SRV was seen), `mdns-model` (the device model of a TXT
    /// record, on port 5353), `user-agent`, `ssh-client`, `dhcp-vendor` (option 60).
    pub kind: String,
    /// The port it was seen on (the server port, for both roles).
    pub port: u16,
    pub text: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// The first session that showed it.
    pub session: String,
}

/// The inventory with its caps.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    pub hosts: BTreeMap<IpAddr, Host>,
    #[serde(default)]
    pub stats: InventoryStats,
    /// DHCP state joining requests and ACKs (see the module docs).
    #[serde(default, skip_serializing_if = "DhcpJoin::is_empty")]
    pub dhcp: DhcpJoin,
    #[serde(skip, default = "default_limits")]
    limits: AssetsConfig,
    /// The eviction order, derived from `hosts` (rebuilt when it does not match, e.g.
    /// after loading).
    #[serde(skip)]
    by_age: AgeIndex,
}

/// `(last_seen, ip)` of every host, least recently seen first: a new host in a full table
/// evicts the first in O(log hosts) (a scan of the whole table per new host was most of
/// the inventory's cost on a site with more hosts than `max_hosts`). Derived state: it
/// takes no part in comparing inventories.
#[derive(Clone, Debug, Default)]
struct AgeIndex(std::collections::BTreeSet<(Timestamp, IpAddr)>);

impl PartialEq for AgeIndex {
    fn eq(&self, _: &AgeIndex) -> bool {
        true
    }
}

/// What DHCP said per MAC, waiting for the other half (the lease or the client's words).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DhcpJoin {
    /// MAC → (address, time) of the last ACK.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub leases: BTreeMap<String, (IpAddr, Timestamp)>,
    /// MAC → what its last request said.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clients: BTreeMap<String, DhcpClient>,
}

impl DhcpJoin {
    fn is_empty(&self) -> bool {
        self.leases.is_empty() && self.clients.is_empty()
    }
}

/// A DHCP client's own words (option 12 and 60) and the session that carried them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DhcpClient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_class: Option<String>,
    pub session: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub port: u16,
}

/// Removes the oldest entry of a MAC-keyed map when it is full; true when one went.
fn make_room<V>(
    map: &mut BTreeMap<String, V>,
    key: &str,
    max: usize,
    age: impl Fn(&V) -> Timestamp,
) -> bool {
    if map.contains_key(key) || map.len() < max.max(1) {
        return false;
    }
    let Some(old) = map
        .iter()
        .min_by_key(|(k, v)| (age(v), (*k).clone()))
        .map(|(k, _)| k.clone())
    else {
        return false;
    };
    map.remove(&old);
    true
}

fn default_limits() -> AssetsConfig {
    AssetsConfig::default()
}

impl Inventory {
    pub fn new(limits: &AssetsConfig) -> Inventory {
        Inventory {
            limits: limits.clone(),
            ..Inventory::default()
        }
    }

    /// Applies the config's caps to a restored inventory (they are not stored: the config
    /// in force decides).
    pub fn set_limits(&mut self, limits: &AssetsConfig) {
        self.limits = limits.clone();
    }

    /// Learns what one session shows about the internal hosts in it.
    pub fn observe(&mut self, ctx: &Context, s: &SessionRecord) {
        self.stats.sessions_observed += 1;
        let server_inside = ctx.is_internal(s.server.ip);
        let client_inside = ctx.is_internal(s.client.ip);
        if server_inside && answered(s) {
            self.learn_server(s, client_inside);
        }
        if client_inside {
            self.learn_client(s);
        }
        // An mDNS flow's first question and its answers are unrelated messages (a probe for
        // a reverse name, then an announcement): its names come from the records' owners.
        if let Some(dns) = &s.dns
            && s.protocol != "mdns"
        {
            self.learn_dns_names(ctx, s, dns);
        }
        if let Some(d) = &s.dhcp {
            self.learn_dhcp(ctx, s, d);
        }
        if let Some(nb) = &s.netbios {
            self.learn_netbios(ctx, s, nb);
        }
        if let Some(md) = &s.mdns {
            self.learn_mdns(ctx, s, md);
        }
    }

    /// mDNS: an address record names the internal address it carries; a service instance
    /// (and the device model its TXT states) belongs to the address of its SRV target when
    /// the flow showed it, else to the host that sent the response.
    fn learn_mdns(&mut self, ctx: &Context, s: &SessionRecord, md: &kuroko_model::session::Mdns) {
        let max_software = self.limits.max_software_per_host;
        let max_services = self.limits.max_services_per_host;
        for a in &md.hosts {
            let ip = unmap(a.address);
            if !ctx.is_internal(ip) {
                continue;
            }
            let h = self.host(ip, None, s.end);
            if !add_name(h, &a.name, "mdns", &s.id) {
                self.stats.names_dropped += 1;
            }
        }
        for svc in &md.services {
            let ip = svc
                .host
                .as_deref()
                .and_then(|t| {
                    md.hosts
                        .iter()
                        .map(|a| (a, unmap(a.address)))
                        .find(|(a, ip)| a.name.eq_ignore_ascii_case(t) && ctx.is_internal(*ip))
                        .map(|(_, ip)| ip)
                })
                .unwrap_or_else(|| unmap(svc.from));
            if !ctx.is_internal(ip) {
                continue;
            }
            let h = self.host(ip, None, s.end);
            let e = |port| Evidence {
                port,
                start: s.start,
                end: s.end,
                session: &s.id,
            };
            let full = svc.full_name();
            let known = h
                .software
                .iter()
                .any(|f| f.kind == "mdns-service" && f.text == cap(&full));
            let room = known
                || h.software
                    .iter()
                    .filter(|f| f.kind == "mdns-service")
                    .count()
                    < MAX_MDNS_SERVICES;
            let mut dropped = 0;
            if !room
                || !add_fact_at(
                    h,
                    "announced",
                    "mdns-service",
                    &e(svc.port.unwrap_or(0)),
                    &full,
                    max_software,
                )
            {
                dropped += 1;
            }
            if let Some(m) = &svc.model
                && !add_fact_at(h, "announced", "mdns-model", &e(MDNS_PORT), m, max_software)
            {
                dropped += 1;
            }
            // The SRV port is a service of the host's list, announced.
            let refused = svc.port.filter(|p| *p != 0).is_some_and(|port| {
                service_type(&svc.service).is_some_and(|(transport, name)| {
                    !add_announced(
                        h,
                        port,
                        transport,
                        &svc.service,
                        name,
                        &e(port),
                        max_services,
                    )
                })
            });
            self.stats.software_dropped += dropped;
            self.stats.services_dropped += u64::from(refused);
        }
    }

    /// A DHCP message: an ACK binds an address to a MAC; a request tells the client's
    /// name and vendor class. Either half joins the other one remembered for the MAC.
    fn learn_dhcp(&mut self, ctx: &Context, s: &SessionRecord, d: &kuroko_model::session::Dhcp) {
        let Some(mac) = d.client_mac.as_deref() else {
            return;
        };
        let max = self.limits.max_hosts;
        if d.hostname.is_some() || d.vendor_class.is_some() {
            if make_room(&mut self.dhcp.clients, mac, max, |c| c.end) {
                self.stats.dhcp_dropped += 1;
            }
            // A message that says less keeps what an earlier one said.
            let before = self.dhcp.clients.remove(mac);
            self.dhcp.clients.insert(
                mac.to_string(),
                DhcpClient {
                    hostname: d
                        .hostname
                        .clone()
                        .or_else(|| before.as_ref().and_then(|b| b.hostname.clone())),
                    vendor_class: d
                        .vendor_class
                        .clone()
                        .or_else(|| before.as_ref().and_then(|b| b.vendor_class.clone())),
                    session: s.id.clone(),
                    start: s.start,
                    end: s.end,
                    port: s.server.port,
                },
            );
        }
        if let Some(ip) = d.assigned_address.map(unmap)
            && ctx.is_internal(ip)
        {
            if make_room(&mut self.dhcp.leases, mac, max, |l| l.1) {
                self.stats.dhcp_dropped += 1;
            }
            self.dhcp.leases.insert(mac.to_string(), (ip, s.end));
        }
        let Some(&(ip, _)) = self.dhcp.leases.get(mac) else {
            return;
        };
        let client = self.dhcp.clients.get(mac).cloned();
        let max_software = self.limits.max_software_per_host;
        let h = self.host(ip, None, s.end);
        // The server's ACK is the binding: it wins over a MAC seen on a routed frame.
        h.mac = Some(mac.to_string());
        let mut dropped = (0, 0);
        if let Some(c) = client {
            if let Some(n) = &c.hostname
                && !add_name(h, n, "dhcp", &c.session)
            {
                dropped.0 += 1;
            }
            if let Some(v) = &c.vendor_class
                && !add_fact_at(
                    h,
                    "client",
                    "dhcp-vendor",
                    &Evidence {
                        port: c.port,
                        start: c.start,
                        end: c.end,
                        session: &c.session,
                    },
                    v,
                    max_software,
                )
            {
                dropped.1 += 1;
            }
        }
        self.stats.names_dropped += dropped.0;
        self.stats.software_dropped += dropped.1;
    }

    /// NetBIOS names bound to internal addresses (registrations, answers, node status).
    /// Group names (workgroups, domains) name no host.
    fn learn_netbios(
        &mut self,
        ctx: &Context,
        s: &SessionRecord,
        nb: &kuroko_model::session::Netbios,
    ) {
        for n in nb.names.iter().filter(|n| !n.group) {
            let ip = unmap(n.address);
            if !ctx.is_internal(ip) {
                continue;
            }
            let name = n.name.rsplit_once('<').map_or(n.name.as_str(), |(a, _)| a);
            let h = self.host(ip, None, s.end);
            if !add_name(h, name, "netbios", &s.id) {
                self.stats.names_dropped += 1;
            }
        }
    }

    fn host(&mut self, ip: IpAddr, mac: Option<&String>, t: Timestamp) -> &mut Host {
        let ip = unmap(ip);
        if self.by_age.0.len() != self.hosts.len() {
            self.by_age.0 = self.hosts.values().map(|h| (h.last_seen, h.ip)).collect();
        }
        if !self.hosts.contains_key(&ip) && self.hosts.len() >= self.limits.max_hosts.max(1) {
            // Least recently seen goes (ties: the lowest address).
            if let Some((_, old)) = self.by_age.0.pop_first() {
                self.hosts.remove(&old);
                self.stats.hosts_evicted += 1;
            }
        }
        let before = self.hosts.get(&ip).map(|h| h.last_seen);
        let h = self.hosts.entry(ip).or_insert_with(|| Host {
            ip,
            mac: None,
            names: Vec::new(),
            first_seen: t,
            last_seen: t,
            services: Vec::new(),
            software: Vec::new(),
        });
        if h.mac.is_none() {
            h.mac = mac.cloned();
        }
        h.first_seen = h.first_seen.min(t);
        h.last_seen = h.last_seen.max(t);
        if before != Some(h.last_seen) {
            if let Some(b) = before {
                self.by_age.0.remove(&(b, ip));
            }
            self.by_age.0.insert((h.last_seen, ip));
        }
        h
    }

    fn learn_server(&mut self, s: &SessionRecord, client_inside: bool) {
        let max_services = self.limits.max_services_per_host;
        let max_software = self.limits.max_software_per_host;
        let mut dropped = (0u64, 0u64, 0u64);
        let h = self.host(s.server.ip, s.server.mac.as_ref(), s.end);
        h.first_seen = h.first_seen.min(s.start);
        if let Some(svc) = h
            .services
            .iter_mut()
            .find(|x| x.port == s.server.port && x.transport == s.transport)
        {
            if !svc.answered() {
                // Announced, now seen answering: its protocol and evidence are the
                // answering session's.
                svc.protocol = s.protocol.clone();
                svc.session = s.id.clone();
            }
            svc.add(s, client_inside);
        } else {
            // A full list: an announced-only service gives way to one seen answering.
            if h.services.len() >= max_services && give_way(h) {
                dropped.0 += 1;
            }
            if h.services.len() >= max_services {
                dropped.0 += 1;
            } else {
                let mut svc = Service {
                    port: s.server.port,
                    transport: s.transport.clone(),
                    protocol: s.protocol.clone(),
                    sessions: 0,
                    internal_clients: 0,
                    external_clients: 0,
                    clients: Vec::new(),
                    clients_uncounted: 0,
                    first_seen: s.start,
                    last_seen: s.end,
                    session: s.id.clone(),
                    announced: Vec::new(),
                };
                svc.add(s, client_inside);
                h.services.push(svc);
            }
        }
        for (kind, text) in server_facts(s) {
            if !add_fact(h, "server", kind, s, &text, max_software) {
                dropped.1 += 1;
            }
        }
        for (source, name) in [
            ("http-host", s.http.as_ref().and_then(|x| x.host.as_deref())),
            ("tls-sni", s.tls.as_ref().and_then(|x| x.sni.as_deref())),
        ] {
            if let Some(n) = name
                && !add_name(h, n, source, &s.id)
            {
                dropped.2 += 1;
            }
        }
        self.stats.services_dropped += dropped.0;
        self.stats.software_dropped += dropped.1;
        self.stats.names_dropped += dropped.2;
    }

    fn learn_client(&mut self, s: &SessionRecord) {
        let facts = client_facts(s);
        let max_software = self.limits.max_software_per_host;
        let h = self.host(s.client.ip, s.client.mac.as_ref(), s.end);
        h.first_seen = h.first_seen.min(s.start);
        let mut dropped = 0;
        for (kind, text) in facts {
            if !add_fact(h, "client", kind, s, text, max_software) {
                dropped += 1;
            }
        }
        self.stats.software_dropped += dropped;
    }

    /// A DNS answer that is an internal address names that host (only hosts already in
    /// the inventory: a lookup alone does not make a host).
    fn learn_dns_names(
        &mut self,
        ctx: &Context,
        s: &SessionRecord,
        dns: &kuroko_model::session::Dns,
    ) {
        let Some(q) = dns.query.as_deref() else {
            return;
        };
        for a in &dns.answers {
            let Ok(ip) = a.trim().parse::<IpAddr>() else {
                continue;
            };
            let ip = unmap(ip);
            if !ctx.is_internal(ip) {
                continue;
            }
            if let Some(h) = self.hosts.get_mut(&ip)
                && !add_name(h, q, "dns", &s.id)
            {
                self.stats.names_dropped += 1;
            }
        }
    }
}

impl Service {
    /// Whether the host was seen answering on it (not only announcing it).
    pub fn answered(&self) -> bool {
        self.sessions > 0
    }

    fn add(&mut self, s: &SessionRecord, client_inside: bool) {
        self.sessions += 1;
        self.first_seen = self.first_seen.min(s.start);
        self.last_seen = self.last_seen.max(s.end);
        let c = unmap(s.client.ip);
        if self.clients.contains(&c) {
            return;
        }
        if self.clients.len() >= MAX_CLIENTS {
            self.clients_uncounted += 1;
            return;
        }
        self.clients.push(c);
        if client_inside {
            self.internal_clients += 1;
        } else {
            self.external_clients += 1;
        }
    }
}

/// The transport and service name of a DNS-SD service type (`_ipp._tcp` → `tcp`, `ipp`);
/// None for a type that names neither TCP nor UDP.
fn service_type(ty: &str) -> Option<(&'static str, String)> {
    let (name, proto) = ty.rsplit_once('.')?;
    let transport = if proto.eq_ignore_ascii_case("_tcp") {
        "tcp"
    } else if proto.eq_ignore_ascii_case("_udp") {
        "udp"
    } else {
        return None;
    };
    let name = cap(name.trim_start_matches('_')).to_ascii_lowercase();
    Some((
        transport,
        if name.is_empty() {
            "unknown".into()
        } else {
            name
        },
    ))
}

/// Adds an announced service type to the host's service on that port and transport, or a
/// new announced-only service; false when the caps refused it (at most
/// [`MAX_MDNS_SERVICES`] announced-only services, and `max_services_per_host` in all).
fn add_announced(
    h: &mut Host,
    port: u16,
    transport: &str,
    ty: &str,
    name: String,
    e: &Evidence<'_>,
    max_services: usize,
) -> bool {
    if let Some(svc) = h
        .services
        .iter_mut()
        .find(|x| x.port == port && x.transport == transport)
    {
        svc.first_seen = svc.first_seen.min(e.start);
        svc.last_seen = svc.last_seen.max(e.end);
        if !svc.announced.iter().any(|t| t == ty) && svc.announced.len() < MAX_ANNOUNCED_TYPES {
            svc.announced.push(cap(ty));
        }
        return true;
    }
    let announced_only = h.services.iter().filter(|x| !x.answered()).count();
    if announced_only >= MAX_MDNS_SERVICES || h.services.len() >= max_services {
        return false;
    }
    h.services.push(Service {
        port,
        transport: transport.to_string(),
        protocol: name,
        sessions: 0,
        internal_clients: 0,
        external_clients: 0,
        clients: Vec::new(),
        clients_uncounted: 0,
        first_seen: e.start,
        last_seen: e.end,
        session: e.session.to_string(),
        announced: vec![cap(ty)],
    });
    true
}

/// Makes room in a full services list for a service seen answering: the announced-only
/// service seen least recently goes (counted by the caller). False when every service
/// answered.
fn give_way(h: &mut Host) -> bool {
    let Some(k) = h
        .services
        .iter()
        .enumerate()
        .filter(|(_, x)| !x.answered())
        .min_by_key(|(_, x)| x.last_seen)
        .map(|(k, _)| k)
    else {
        return false;
    };
    h.services.remove(k);
    true
}

/// Whether the server answered (a service, not a probe into a closed port).
fn answered(s: &SessionRecord) -> bool {
    s.bytes_down > 0 || (s.packets_down > 0 && s.transport != "tcp")
}

fn cap(text: &str) -> String {
    let t: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FACT_LEN)
        .collect();
    t.trim().to_string()
}

/// Software a server announced in this session, as sent (capped when stored).
fn server_facts(s: &SessionRecord) -> Vec<(&'static str, Cow<'_, str>)> {
    let mut out = Vec::new();
    if let Some(b) = s.ssh.as_ref().and_then(|x| x.server_version.as_deref()) {
        out.push(("ssh-banner", Cow::Borrowed(b)));
    }
    if let Some(b) = s.ftp.as_ref().and_then(|x| x.banner.as_deref()) {
        out.push(("ftp-banner", Cow::Borrowed(b)));
    }
    if let Some(b) = s.mail.as_ref().and_then(|x| x.banner.as_deref()) {
        out.push(("mail-banner", Cow::Borrowed(b)));
    }
    if let Some(http) = &s.http {
        for v in http
            .server
            .as_deref()
            .into_iter()
            .chain(http.transactions.iter().filter_map(|t| t.server.as_deref()))
        {
            if !out
                .iter()
                .any(|(k, x)| *k == "http-server" && x.as_ref() == v)
            {
                out.push(("http-server", Cow::Borrowed(v)));
            }
        }
    }
    if let Some(http) = &s.http {
        for v in http.powered_by.as_deref().into_iter().chain(
            http.transactions
                .iter()
                .filter_map(|t| t.powered_by.as_deref()),
        ) {
            if !out
                .iter()
                .any(|(k, x)| *k == "http-powered-by" && x.as_ref() == v)
            {
                out.push(("http-powered-by", Cow::Borrowed(v)));
            }
        }
    }
    if let Some(v) = s.oracle.as_ref().and_then(|o| o.version.as_deref()) {
        out.push(("tns-version", Cow::Owned(format!("{TNS_FACT_PREFIX}{v}"))));
    }
    if let Some(smb) = &s.smb
        && let Some(d) = smb.dialect.as_deref()
    {
        // SMB2 revisions are numbers; anything else is an SMB1 dialect string.
        let text = if d.starts_with(|c: char| c.is_ascii_digit()) {
            format!("SMB {d}")
        } else {
            format!("SMB1 {d}")
        };
        out.push(("smb-dialect", Cow::Owned(text)));
    }
    if let Some(tls) = &s.tls {
        if let Some(leaf) = tls.certs.first() {
            out.push(("tls-cert", Cow::Borrowed(leaf.subject.as_str())));
        } else if let Some(sub) = tls.cert_subject.as_deref() {
            out.push(("tls-cert", Cow::Borrowed(sub)));
        }
        if tls.cipher.is_some()
            && let Some(v) = tls.version.as_deref()
        {
            out.push(("tls-version", Cow::Borrowed(v)));
        }
    }
    out
}

/// Software a client sent in this session, as sent.
fn client_facts(s: &SessionRecord) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    if let Some(b) = s.ssh.as_ref().and_then(|x| x.client_version.as_deref()) {
        out.push(("ssh-client", b));
    }
    if let Some(ua) = s.http.as_ref().and_then(|x| x.user_agent.as_deref()) {
        out.push(("user-agent", ua));
    }
    out
}

/// Where a fact was seen: the server port, the session's times and id.
struct Evidence<'a> {
    port: u16,
    start: Timestamp,
    end: Timestamp,
    session: &'a str,
}

/// [`add_fact_at`] with the session's own evidence.
fn add_fact(
    h: &mut Host,
    role: &str,
    kind: &str,
    s: &SessionRecord,
    raw: &str,
    max: usize,
) -> bool {
    let e = Evidence {
        port: s.server.port,
        start: s.start,
        end: s.end,
        session: &s.id,
    };
    add_fact_at(h, role, kind, &e, raw, max)
}

/// Adds or refreshes a fact; false when the host's cap refused it. The text is compared as
/// sent first (the common case: a clean banner seen again costs no allocation), then as
/// stored.
fn add_fact_at(
    h: &mut Host,
    role: &str,
    kind: &str,
    e: &Evidence<'_>,
    raw: &str,
    max: usize,
) -> bool {
    let port = e.port;
    let find = |h: &mut Host, text: &str| -> Option<usize> {
        h.software
            .iter()
            .position(|f| f.port == port && f.text == text && f.kind == kind && f.role == role)
    };
    let mut found = find(h, raw);
    let mut text = None;
    if found.is_none() {
        let capped = cap(raw);
        if capped.is_empty() {
            return true;
        }
        found = find(h, &capped);
        text = Some(capped);
    }
    if let Some(i) = found {
        let f = &mut h.software[i];
        f.first_seen = f.first_seen.min(e.start);
        f.last_seen = f.last_seen.max(e.end);
        return true;
    }
    let Some(text) = text else {
        return true;
    };
    if h.software.len() >= max {
        return false;
    }
    h.software.push(SoftwareFact {
        role: role.to_string(),
        kind: kind.to_string(),
        port,
        text,
        first_seen: e.start,
        last_seen: e.end,
        session: e.session.to_string(),
    });
    true
}

/// Adds a name once; false when the host's cap refused it.
fn add_name(h: &mut Host, name: &str, source: &str, session: &str) -> bool {
    let name = cap(name).to_ascii_lowercase();
    if name.is_empty() || h.names.iter().any(|n| n.name == name) {
        return true;
    }
    if h.names.len() >= MAX_NAMES {
        return false;
    }
    h.names.push(Name {
        name,
        source: source.to_string(),
        session: session.to_string(),
    });
    true
}

#[cfg(test)]
mod tests;
