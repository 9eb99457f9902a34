//! Aggregations for the environment analysis of the report and `kuroko search --stats`:
//! bytes and sessions by protocol per hour, top talkers, uploads/downloads by protocol with
//! the internal/external split.
//!
//! They run as tantivy collectors over fast columns (time, protocol, addresses, byte
//! counts) of the sessions matching a query, never loading the stored records, so a week
//! of sessions aggregates in about a second.

use crate::compile::compile;
use crate::index::{Index, IndexError};
use crate::query::Query;
use ipnet::IpNet;
use kuroko_model::Timestamp;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

const HOUR_NS: i64 = 3_600_000_000_000;

/// One row of the by-protocol-per-hour table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProtocolHour {
    /// Start of the hour (UTC).
    pub hour: Timestamp,
    pub protocol: String,
    pub sessions: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// One address and what it moved, as client or server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Talker {
    pub ip: IpAddr,
    /// Inside `[site] internal_networks`.
    pub internal: bool,
    /// Inside `[site] vpn_pools` (a remote user's address; see [`mark_vpn_pools`]).
    pub vpn: bool,
    pub sessions: u64,
    /// Payload bytes this address sent.
    pub bytes_sent: u64,
    /// Payload bytes this address received.
    pub bytes_received: u64,
}

/// Where a session went, relative to the site's internal networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Internal client, external server.
    Outbound,
    /// External client, internal server.
    Inbound,
    Internal,
    External,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::Internal => "internal",
            Direction::External => "external",
        }
    }
}

/// Uploads (client → server payload) and downloads by protocol and direction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transfer {
    pub protocol: String,
    pub direction: Direction,
    pub sessions: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// One session as the aggregations see it.
struct Row<'a> {
    time_ns: i64,
    protocol: &'a str,
    client: Ipv6Addr,
    server: Ipv6Addr,
    bytes_up: u64,
    bytes_down: u64,
}

trait Acc: Default + Send + 'static {
    fn add(&mut self, row: &Row<'_>);
    fn merge(&mut self, other: Self);
}

struct AggCollector<A>(std::marker::PhantomData<fn() -> A>);

struct AggSegment<A> {
    acc: A,
    time: Column<i64>,
    up: Column<u64>,
    down: Column<u64>,
    client: Column<Ipv6Addr>,
    server: Column<Ipv6Addr>,
    proto: Option<StrColumn>,
    proto_names: HashMap<u64, String>,
}

impl<A: Acc> Collector for AggCollector<A> {
    type Fruit = A;
    type Child = AggSegment<A>;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        seg: &SegmentReader,
    ) -> tantivy::Result<AggSegment<A>> {
        let ff = seg.fast_fields();
        Ok(AggSegment {
            acc: A::default(),
            time: ff.i64(crate::schema::TIME)?,
            up: ff.u64("bytes_up")?,
            down: ff.u64("bytes_down")?,
            client: ff.ip_addr("client")?,
            server: ff.ip_addr("server")?,
            proto: ff.str("protocol")?,
            proto_names: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<A>) -> tantivy::Result<A> {
        let mut acc = A::default();
        for f in fruits {
            acc.merge(f);
        }
        Ok(acc)
    }
}

impl<A: Acc> SegmentCollector for AggSegment<A> {
    type Fruit = A;

    fn collect(&mut self, doc: DocId, _: Score) {
        let ord = self.proto.as_ref().and_then(|c| c.term_ords(doc).next());
        if let (Some(ord), Some(col)) = (ord, self.proto.as_ref())
            && !self.proto_names.contains_key(&ord)
        {
            let mut s = String::new();
            if col.ord_to_str(ord, &mut s).unwrap_or(false) {
                self.proto_names.insert(ord, s);
            }
        }
        let protocol = ord
            .and_then(|o| self.proto_names.get(&o))
            .map(String::as_str)
            .unwrap_or("");
        let row = Row {
            time_ns: self.time.first(doc).unwrap_or(0),
            protocol,
            client: self.client.first(doc).unwrap_or(Ipv6Addr::UNSPECIFIED),
            server: self.server.first(doc).unwrap_or(Ipv6Addr::UNSPECIFIED),
            bytes_up: self.up.first(doc).unwrap_or(0),
            bytes_down: self.down.first(doc).unwrap_or(0),
        };
        self.acc.add(&row);
    }

    fn harvest(self) -> A {
        self.acc
    }
}

fn run<A: Acc>(index: &Index, q: &Query) -> Result<A, IndexError> {
    let terr = |source| IndexError::Tantivy {
        path: index.path.clone(),
        source,
    };
    let searcher = index.searcher();
    let tq = compile(&q.plan, &index.fields, &searcher).map_err(terr)?;
    searcher
        .search(&tq, &AggCollector::<A>(std::marker::PhantomData))
        .map_err(terr)
}

fn hour_of(ns: i64) -> i64 {
    ns.div_euclid(HOUR_NS) * HOUR_NS
}

fn to_ip(v6: Ipv6Addr) -> IpAddr {
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

#[derive(Default)]
struct ByProtoHour(HashMap<(i64, String), (u64, u64, u64)>);

impl Acc for ByProtoHour {
    fn add(&mut self, r: &Row<'_>) {
        let key = (hour_of(r.time_ns), r.protocol.to_string());
        let e = self.0.entry(key).or_default();
        e.0 += 1;
        e.1 += r.bytes_up;
        e.2 += r.bytes_down;
    }
    fn merge(&mut self, o: Self) {
        for (k, v) in o.0 {
            let e = self.0.entry(k).or_default();
            e.0 += v.0;
            e.1 += v.1;
            e.2 += v.2;
        }
    }
}

/// Sessions and bytes by protocol and hour (UTC hours), oldest hour first, then by
/// protocol name.
pub fn by_protocol_hour(index: &Index, q: &Query) -> Result<Vec<ProtocolHour>, IndexError> {
    let acc: ByProtoHour = run(index, q)?;
    let mut out: Vec<ProtocolHour> = acc
        .0
        .into_iter()
        .map(|((h, p), (n, up, down))| ProtocolHour {
            hour: Timestamp(h),
            protocol: p,
            sessions: n,
            bytes_up: up,
            bytes_down: down,
        })
        .collect();
    out.sort_by(|a, b| {
        a.hour
            .cmp(&b.hour)
            .then_with(|| a.protocol.cmp(&b.protocol))
    });
    Ok(out)
}

/// Sessions per hour over the whole index, oldest first.
pub fn sessions_per_hour(index: &Index) -> Result<Vec<(i64, u64)>, IndexError> {
    let mut per: HashMap<i64, u64> = HashMap::new();
    for r in by_protocol_hour(index, &Query::all())? {
        *per.entry(r.hour.nanos()).or_default() += r.sessions;
    }
    let mut v: Vec<(i64, u64)> = per.into_iter().collect();
    v.sort();
    Ok(v)
}

/// The `n` addresses that moved the most payload bytes (sent + received), most first.
pub fn top_talkers(
    index: &Index,
    q: &Query,
    n: usize,
    internal: &[IpNet],
) -> Result<Vec<Talker>, IndexError> {
    let acc: Sides = run(index, q)?;
    // An address counts as client and as server alike: fold its two sides.
    let mut both: HashMap<Ipv6Addr, (u64, u64, u64)> = HashMap::new();
    for ((ip, _), v) in acc.0 {
        let e = both.entry(ip).or_default();
        e.0 += v.0;
        e.1 += v.1;
        e.2 += v.2;
    }
    Ok(ranked(both, n, internal))
}

/// Marks the talkers whose address is in `[site] vpn_pools`.
pub fn mark_vpn_pools(rows: &mut [Talker], pools: &kuroko_model::config::VpnPools) {
    for r in rows {
        r.vpn = pools.contains(r.ip);
    }
}

/// Talkers from per-address (sessions, bytes sent, bytes received), most bytes first.
fn ranked(
    by_ip: impl IntoIterator<Item = (Ipv6Addr, (u64, u64, u64))>,
    n: usize,
    internal: &[IpNet],
) -> Vec<Talker> {
    let mut out: Vec<Talker> = by_ip
        .into_iter()
        .map(|(ip, (s, sent, recv))| {
            let ip = to_ip(ip);
            Talker {
                ip,
                internal: internal.iter().any(|n| n.contains(&ip)),
                vpn: false,
                sessions: s,
                bytes_sent: sent,
                bytes_received: recv,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (b.bytes_sent + b.bytes_received)
            .cmp(&(a.bytes_sent + a.bytes_received))
            .then_with(|| b.sessions.cmp(&a.sessions))
            .then_with(|| a.ip.cmp(&b.ip))
    });
    out.truncate(n);
    out
}

/// Which side of the sessions [`top_by_side`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Clients: who opened the connections (top sources).
    Source,
    /// Servers: where the connections went (top destinations).
    Destination,
}

#[derive(Default)]
struct Sides(HashMap<(Ipv6Addr, bool), (u64, u64, u64)>);

impl Acc for Sides {
    fn add(&mut self, r: &Row<'_>) {
        let c = self.0.entry((r.client, true)).or_default();
        c.0 += 1;
        c.1 += r.bytes_up;
        c.2 += r.bytes_down;
        let s = self.0.entry((r.server, false)).or_default();
        s.0 += 1;
        s.1 += r.bytes_down;
        s.2 += r.bytes_up;
    }
    fn merge(&mut self, o: Self) {
        for (k, v) in o.0 {
            let e = self.0.entry(k).or_default();
            e.0 += v.0;
            e.1 += v.1;
            e.2 += v.2;
        }
    }
}

/// The `n` addresses that moved the most payload bytes as clients (`Side::Source`) or as
/// servers (`Side::Destination`) of the matching sessions, most first: the two lists a
/// report shows instead of one mixed "top talkers".
pub fn top_by_side(
    index: &Index,
    q: &Query,
    n: usize,
    internal: &[IpNet],
    side: Side,
) -> Result<Vec<Talker>, IndexError> {
    let acc: Sides = run(index, q)?;
    let want_client = side == Side::Source;
    let side_only = acc
        .0
        .into_iter()
        .filter(|((_, is_client), _)| *is_client == want_client)
        .map(|((ip, _), v)| (ip, v));
    Ok(ranked(side_only, n, internal))
}

/// Sessions read at most by [`top_domains`] (domains are not a fast column: the records
/// are read, newest first; the result says when the scan was cut).
pub const MAX_DOMAIN_SCAN: usize = 200_000;

/// One domain (HTTP host, TLS SNI or DNS query name) and its sessions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainRow {
    pub domain: String,
    pub sessions: u64,
    pub bytes: u64,
    /// The newest [`MAX_DOMAIN_SCAN`] sessions were counted, not all that match.
    pub partial: bool,
}

/// The `n` domains with the most sessions among the matching sessions, most first.
pub fn top_domains(index: &Index, q: &Query, n: usize) -> Result<Vec<DomainRow>, IndexError> {
    let records = index.search(q, MAX_DOMAIN_SCAN + 1)?;
    let partial = records.len() > MAX_DOMAIN_SCAN;
    let mut by: HashMap<String, (u64, u64)> = HashMap::new();
    for r in records.iter().take(MAX_DOMAIN_SCAN) {
        if let Some(h) = r.host().filter(|h| !h.is_empty()) {
            let e = by.entry(h.to_ascii_lowercase()).or_default();
            e.0 += 1;
            e.1 += r.bytes_up + r.bytes_down;
        }
    }
    let mut out: Vec<DomainRow> = by
        .into_iter()
        .map(|(domain, (sessions, bytes))| DomainRow {
            domain,
            sessions,
            bytes,
            partial,
        })
        .collect();
    out.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| b.bytes.cmp(&a.bytes))
            .then_with(|| a.domain.cmp(&b.domain))
    });
    out.truncate(n);
    Ok(out)
}

#[derive(Default)]
struct Transfers {
    internal: Vec<IpNet>,
    map: HashMap<(String, Direction), (u64, u64, u64)>,
}

impl Transfers {
    fn direction(&self, client: Ipv6Addr, server: Ipv6Addr) -> Direction {
        let inside = |ip: Ipv6Addr| {
            let ip = to_ip(ip);
            self.internal.iter().any(|n| n.contains(&ip))
        };
        match (inside(client), inside(server)) {
            (true, false) => Direction::Outbound,
            (false, true) => Direction::Inbound,
            (true, true) => Direction::Internal,
            (false, false) => Direction::External,
        }
    }
}

/// The internal networks travel with the collector through a thread-local-free path: the
/// accumulator is built empty by tantivy, so the networks are applied after collection.
#[derive(Default)]
struct RawTransfers(HashMap<(String, Ipv6Addr, Ipv6Addr), (u64, u64, u64)>);

impl Acc for RawTransfers {
    fn add(&mut self, r: &Row<'_>) {
        let e = self
            .0
            .entry((r.protocol.to_string(), r.client, r.server))
            .or_default();
        e.0 += 1;
        e.1 += r.bytes_up;
        e.2 += r.bytes_down;
    }
    fn merge(&mut self, o: Self) {
        for (k, v) in o.0 {
            let e = self.0.entry(k).or_default();
            e.0 += v.0;
            e.1 += v.1;
            e.2 += v.2;
        }
    }
}

/// Uploads and downloads by protocol and direction (internal networks from `[site]`),
/// most bytes first.
pub fn transfers(
    index: &Index,
    q: &Query,
    internal: &[IpNet],
) -> Result<Vec<Transfer>, IndexError> {
    let raw: RawTransfers = run(index, q)?;
    let mut t = Transfers {
        internal: internal.to_vec(),
        map: HashMap::new(),
    };
    for ((proto, c, s), (n, up, down)) in raw.0 {
        let d = t.direction(c, s);
        let e = t.map.entry((proto, d)).or_default();
        e.0 += n;
        e.1 += up;
        e.2 += down;
    }
    let mut out: Vec<Transfer> = t
        .map
        .into_iter()
        .map(
            |((protocol, direction), (sessions, bytes_up, bytes_down))| Transfer {
                protocol,
                direction,
                sessions,
                bytes_up,
                bytes_down,
            },
        )
        .collect();
    out.sort_by(|a, b| {
        (b.bytes_up + b.bytes_down)
            .cmp(&(a.bytes_up + a.bytes_down))
            .then_with(|| a.protocol.cmp(&b.protocol))
            .then_with(|| a.direction.cmp(&b.direction))
    });
    Ok(out)
}
