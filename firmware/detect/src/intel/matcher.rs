//! Matching sessions and files against the installed intel packs.
//!
//! Compact on purpose (a million indicators must cost little memory and little time per
//! session): every indicator's text sits once in one byte arena; exact kinds (domains,
//! URLs, `addr:port`, fingerprints, hashes) are found through one sorted vector of
//! (64-bit FNV-1a hash of kind + text, entry), checked against the arena on a hash hit;
//! addresses and networks live in one sorted vector of network starts per prefix length
//! that occurs (at most 129 binary searches per address, usually a handful). Loading a
//! million indicators takes well under a second; a session costs a few dozen lookups.
//!
//! One process holds one copy: the analyzer's live tagging, the detection engine and the
//! re-check of an intel update all want the same packs at the same moment, and each used
//! to load its own (four loads of a 1 M-indicator pack in one `kuroko analyze`: 1.5 CPU-s
//! and 400 MB). [`Matcher::load_shared`] and [`Matcher::load_packs_shared`] hand out one
//! `Arc` per set of packs (named, and at the generation and file state they were imported
//! with) for as long as someone holds it; a re-import is a new generation, so a new load.

use super::indicator::{self, Kind};
use super::packs::PackInfo;
use kuroko_model::SessionRecord;
use kuroko_model::session::IntelHit;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

/// What makes two loads the same: each pack's indicators file, its import generation and
/// the file's length and modification time.
type SharedKey = Vec<(PathBuf, u64, u64, Option<std::time::SystemTime>)>;

/// Matchers loaded by this process and still held by someone, and the last one loaded,
/// kept even when no one holds it: `kuroko analyze` tags records and only then runs the
/// detections and the re-check, one after the other, over the same packs.
struct Shared {
    loaded: Vec<(SharedKey, Weak<Matcher>)>,
    last: Option<Arc<Matcher>>,
}

static SHARED: Mutex<Shared> = Mutex::new(Shared {
    loaded: Vec::new(),
    last: None,
});

#[derive(Clone, Copy, Debug)]
struct Entry {
    off: u32,
    len: u32,
    kind: Kind,
    feed: u16,
    pack: u16,
    label: u32,
}

/// The loaded indicators of some packs.
#[derive(Debug, Default)]
pub struct Matcher {
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// (hash, entry), sorted.
    exact: Vec<(u64, u32)>,
    /// Per prefix length (0..=128, IPv4 as mapped /96+len): sorted (network start, entry).
    nets: Vec<(u8, Vec<(u128, u32)>)>,
    feeds: Vec<String>,
    packs: Vec<String>,
    labels: Vec<String>,
    /// Which exact kinds are present (skip building candidates for absent ones).
    present: [bool; Kind::ALL.len()],
    /// Lines of `indicators.tsv` that did not load (a damaged pack).
    pub bad_lines: u64,
    /// A one-hash bit filter over every exact hash and every (prefix length, network):
    /// nearly every lookup of a session's fields is a miss, and with 1 M indicators a
    /// binary search is ~20 cache misses where this is one. 16 bits an indicator (a false
    /// positive, then the binary search, about 1 time in 16). Empty: no filter.
    filter: Vec<u64>,
    /// log2 of the filter's bits.
    filter_log: u32,
}

/// Bits of the lookup filter per indicator.
const FILTER_BITS_PER_ENTRY: usize = 16;

/// splitmix64's finalizer: spreads FNV's low-entropy high bits before they index the filter.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn net_hash(plen: u8, key: u128) -> u64 {
    mix(key as u64 ^ mix((key >> 64) as u64 ^ u64::from(plen)))
}

fn fnv(kind: Kind, s: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (kind as u64);
    for b in s {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

struct Interner<'a> {
    list: &'a mut Vec<String>,
    map: HashMap<String, u32>,
}

impl Interner<'_> {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(i) = self.map.get(s) {
            return *i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_string());
        self.map.insert(s.to_string(), i);
        i
    }
}

impl Matcher {
    /// Every installed pack of `data_dir`.
    pub fn load(data_dir: &Path) -> Result<Matcher, String> {
        Matcher::load_packs(&super::packs::list(data_dir)?)
    }

    /// Every installed pack of `data_dir`, shared with the other holders of the same packs
    /// in this process (see the module docs).
    pub fn load_shared(data_dir: &Path) -> Result<Arc<Matcher>, String> {
        Matcher::load_packs_shared(&super::packs::list(data_dir)?)
    }

    /// The given packs, shared with the other holders of the same packs in this process:
    /// loaded only when no one holds them already.
    pub fn load_packs_shared(packs: &[PackInfo]) -> Result<Arc<Matcher>, String> {
        let key: SharedKey = packs
            .iter()
            .map(|p| {
                let path = p.indicators_file();
                let meta = std::fs::metadata(&path).ok();
                let len = meta.as_ref().map_or(0, |m| m.len());
                let mtime = meta.and_then(|m| m.modified().ok());
                (path, p.generation, len, mtime)
            })
            .collect();
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        shared.loaded.retain(|(_, w)| w.strong_count() > 0);
        if let Some(m) = shared
            .loaded
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(m);
        }
        // The last one goes first: it is not needed any more (another set of packs is
        // wanted), so the two need not be in memory at once unless someone holds it.
        shared.last = None;
        shared.loaded.retain(|(_, w)| w.strong_count() > 0);
        // Loaded under the lock: a second holder asking meanwhile waits for this load
        // instead of making its own.
        let m = Arc::new(Matcher::load_packs(packs)?);
        shared.loaded.push((key, Arc::downgrade(&m)));
        shared.last = Some(Arc::clone(&m));
        Ok(m)
    }

    /// The given packs.
    pub fn load_packs(packs: &[PackInfo]) -> Result<Matcher, String> {
        let mut m = Matcher::default();
        let mut feeds = std::mem::take(&mut m.feeds);
        let mut labels = std::mem::take(&mut m.labels);
        let mut nets: HashMap<u8, Vec<(u128, u32)>> = HashMap::new();
        {
            let mut fi = Interner {
                list: &mut feeds,
                map: HashMap::new(),
            };
            let mut li = Interner {
                list: &mut labels,
                map: HashMap::new(),
            };
            li.get("");
            for p in packs {
                let pack = m.packs.len() as u16;
                m.packs.push(p.name.clone());
                let path = p.indicators_file();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                for line in text.lines() {
                    let mut f = line.splitn(4, '\t');
                    let (Some(kind), Some(value), Some(feed)) = (f.next(), f.next(), f.next())
                    else {
                        m.bad_lines += 1;
                        continue;
                    };
                    let label = f.next().unwrap_or("");
                    let Some(kind) = Kind::parse(kind) else {
                        m.bad_lines += 1;
                        continue;
                    };
                    let entry = m.entries.len() as u32;
                    let e = Entry {
                        off: m.arena.len() as u32,
                        len: value.len() as u32,
                        kind,
                        feed: fi.get(feed) as u16,
                        pack,
                        label: li.get(label),
                    };
                    match kind {
                        Kind::Address | Kind::Cidr => {
                            let net = if kind == Kind::Address {
                                value.parse::<IpAddr>().map(ipnet::IpNet::from).ok()
                            } else {
                                value.parse::<ipnet::IpNet>().ok()
                            };
                            let Some(net) = net else {
                                m.bad_lines += 1;
                                continue;
                            };
                            let (bits, base) = indicator::addr_bits(net.network());
                            let plen = base + net.prefix_len();
                            nets.entry(plen).or_default().push((bits, entry));
                        }
                        _ => {
                            m.exact.push((fnv(kind, value.as_bytes()), entry));
                            m.present[kind.index()] = true;
                        }
                    }
                    m.arena.extend_from_slice(value.as_bytes());
                    m.entries.push(e);
                }
            }
        }
        m.feeds = feeds;
        m.labels = labels;
        m.exact.sort_unstable();
        m.nets = nets
            .into_iter()
            .map(|(p, mut v)| {
                v.sort_unstable();
                (p, v)
            })
            .collect();
        m.nets.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
        m.build_filter();
        Ok(m)
    }

    fn build_filter(&mut self) {
        let n = self.exact.len() + self.nets.iter().map(|(_, t)| t.len()).sum::<usize>();
        let bits = (n * FILTER_BITS_PER_ENTRY).next_power_of_two().max(64);
        self.filter_log = bits.trailing_zeros();
        self.filter = vec![0u64; bits / 64];
        let hashes: Vec<u64> = self
            .exact
            .iter()
            .map(|(h, _)| mix(*h))
            .chain(
                self.nets
                    .iter()
                    .flat_map(|(p, t)| t.iter().map(move |(k, _)| net_hash(*p, *k))),
            )
            .collect();
        for h in hashes {
            let i = (h >> (64 - self.filter_log)) as usize;
            self.filter[i / 64] |= 1 << (i % 64);
        }
    }

    /// False when no indicator has this (mixed) hash; true when one may.
    fn may_hold(&self, mixed: u64) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let i = (mixed >> (64 - self.filter_log)) as usize;
        self.filter[i / 64] & (1 << (i % 64)) != 0
    }

    /// Indicators loaded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any file-hash indicator of `kind` is loaded.
    pub fn has(&self, kind: Kind) -> bool {
        match kind {
            Kind::Address | Kind::Cidr => !self.nets.is_empty(),
            k => self.present[k.index()],
        }
    }

    fn value(&self, e: &Entry) -> &str {
        std::str::from_utf8(&self.arena[e.off as usize..(e.off + e.len) as usize]).unwrap_or("")
    }

    fn hit(&self, i: u32, out: &mut Vec<IntelHit>) {
        let e = &self.entries[i as usize];
        out.push(IntelHit {
            feed: self.feeds[e.feed as usize].clone(),
            kind: e.kind.as_str().to_string(),
            indicator: self.value(e).to_string(),
            pack: self.packs[e.pack as usize].clone(),
            label: self.labels[e.label as usize].clone(),
        });
    }

    /// Exact lookup of a normal-form value.
    pub fn lookup(&self, kind: Kind, value: &str, out: &mut Vec<IntelHit>) {
        if !self.present[kind.index()] {
            return;
        }
        let h = fnv(kind, value.as_bytes());
        if !self.may_hold(mix(h)) {
            return;
        }
        let start = self.exact.partition_point(|(x, _)| *x < h);
        for (x, i) in &self.exact[start..] {
            if *x != h {
                break;
            }
            let e = &self.entries[*i as usize];
            if e.kind == kind && self.value(e) == value {
                self.hit(*i, out);
            }
        }
    }

    /// Addresses and networks holding `ip`.
    pub fn lookup_ip(&self, ip: IpAddr, out: &mut Vec<IntelHit>) {
        let (bits, base) = indicator::addr_bits(ip);
        for (plen, table) in &self.nets {
            if *plen < base && base == 96 {
                // An IPv6 network shorter than /96 cannot hold a mapped IPv4 address
                // unless it covers ::ffff:0:0/96, which no feed lists.
                continue;
            }
            let mask = if *plen == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(*plen))
            };
            let key = bits & mask;
            if !self.may_hold(net_hash(*plen, key)) {
                continue;
            }
            let start = table.partition_point(|(x, _)| *x < key);
            for (x, i) in &table[start..] {
                if *x != key {
                    break;
                }
                self.hit(*i, out);
            }
        }
    }

    /// A host name and every parent domain of it (a listed domain covers its subdomains).
    pub fn lookup_domain(&self, host: &str, out: &mut Vec<IntelHit>) {
        if !self.present[Kind::Domain.index()] {
            return;
        }
        let Some(d) = indicator::domain(host) else {
            return;
        };
        let mut rest = d.as_str();
        loop {
            self.lookup(Kind::Domain, rest, out);
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => break,
            }
        }
    }

    fn lookup_host_or_ip(&self, v: &str, out: &mut Vec<IntelHit>) {
        match v.trim().parse::<IpAddr>() {
            Ok(ip) => self.lookup_ip(ip, out),
            Err(_) => self.lookup_domain(v, out),
        }
    }

    fn lookup_url(&self, host: &str, uri: &str, out: &mut Vec<IntelHit>) {
        if !self.present[Kind::Url.index()] || host.is_empty() {
            return;
        }
        let raw = if uri.starts_with('/') || uri.is_empty() {
            format!("{host}{uri}")
        } else if uri.contains("://") {
            uri.to_string()
        } else {
            format!("{host}/{uri}")
        };
        if let Some(u) = indicator::url(&raw) {
            self.lookup(Kind::Url, &u, out);
        }
    }

    /// Every hit of one session, de-duplicated, sorted. Files are matched by SHA-256
    /// here; MD5/SHA-1 of stored files by [`Matcher::match_file_digests`].
    pub fn match_session(&self, s: &SessionRecord) -> Vec<IntelHit> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        if !self.nets.is_empty() {
            self.lookup_ip(s.client.ip, &mut out);
            self.lookup_ip(s.server.ip, &mut out);
        }
        if self.present[Kind::AddrPort.index()] {
            self.lookup(
                Kind::AddrPort,
                &indicator::addr_port_text(s.server.ip, s.server.port),
                &mut out,
            );
        }
        if let Some(d) = &s.dns {
            for q in d.query.iter().chain(d.more_queries.iter()) {
                self.lookup_domain(q, &mut out);
            }
            for a in &d.answers {
                self.lookup_host_or_ip(a, &mut out);
            }
        }
        if let Some(h) = &s.http {
            if let Some(host) = &h.host {
                self.lookup_domain(host_only(host), &mut out);
            }
            if let Some(u) = &h.url {
                self.lookup_url("", u, &mut out);
                if let Some(u2) = indicator::url(u) {
                    self.lookup(Kind::Url, &u2, &mut out);
                }
            }
            for t in &h.transactions {
                let host = t.host.as_deref().or(h.host.as_deref()).unwrap_or("");
                if let Some(th) = &t.host {
                    self.lookup_domain(host_only(th), &mut out);
                }
                self.lookup_url(host, &t.uri, &mut out);
            }
        }
        if let Some(t) = &s.tls {
            if let Some(sni) = &t.sni {
                self.lookup_domain(sni, &mut out);
            }
            if let Some(j) = &t.ja3 {
                self.lookup(Kind::Ja3, &j.to_ascii_lowercase(), &mut out);
            }
            if let Some(j) = &t.ja4 {
                self.lookup(Kind::Ja4, &j.to_ascii_lowercase(), &mut out);
            }
            for c in &t.certs {
                self.lookup(
                    Kind::CertSha1,
                    &c.sha1.to_ascii_lowercase().replace(':', ""),
                    &mut out,
                );
                self.lookup(
                    Kind::CertSha256,
                    &c.sha256.to_ascii_lowercase().replace(':', ""),
                    &mut out,
                );
            }
        }
        if let Some(t) = &s.tunnel
            && let Some(target) = &t.target
        {
            let host = target.rsplit_once(':').map(|(h, _)| h).unwrap_or(target);
            self.lookup_host_or_ip(host.trim_matches(['[', ']']), &mut out);
        }
        for f in &s.files {
            self.lookup(Kind::FileSha256, &f.sha256.to_ascii_lowercase(), &mut out);
        }
        if let Some(ftp) = &s.ftp {
            for f in &ftp.files {
                if let Some(h) = &f.sha256 {
                    self.lookup(Kind::FileSha256, &h.to_ascii_lowercase(), &mut out);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// File indicators (SHA-256, and MD5/SHA-1 of its bytes when such indicators are
    /// loaded) against one stored object: an orphan whose session has left the log
    /// (`crate::intel::orphans`).
    pub fn match_object(&self, sha256: &str, files_dir: &Path) -> Vec<IntelHit> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        self.lookup(Kind::FileSha256, &sha256.to_ascii_lowercase(), &mut out);
        self.object_digests(files_dir, sha256, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// MD5 and SHA-1 indicators against the stored files of a session (read from
    /// `files_dir` only when such indicators are loaded).
    pub fn match_file_digests(&self, s: &SessionRecord, files_dir: &Path) -> Vec<IntelHit> {
        let mut out = Vec::new();
        if !self.present[Kind::FileMd5.index()] && !self.present[Kind::FileSha1.index()] {
            return out;
        }
        for f in &s.files {
            self.object_digests(files_dir, &f.sha256, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    /// MD5 and SHA-1 indicators against the bytes of the stored object `sha256`.
    fn object_digests(&self, files_dir: &Path, sha256: &str, out: &mut Vec<IntelHit>) {
        if !self.present[Kind::FileMd5.index()] && !self.present[Kind::FileSha1.index()] {
            return;
        }
        let Some(path) = object_path(files_dir, sha256) else {
            return;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        if self.present[Kind::FileMd5.index()] {
            use md5::Digest;
            self.lookup(Kind::FileMd5, &hex::encode(md5::Md5::digest(&bytes)), out);
        }
        if self.present[Kind::FileSha1.index()] {
            use sha1::Digest;
            self.lookup(
                Kind::FileSha1,
                &hex::encode(sha1::Sha1::digest(&bytes)),
                out,
            );
        }
    }
}

/// `files/ab/cdef….bin` or `.eml` ([`kuroko_model::objects`]), if stored.
pub(crate) fn object_path(files_dir: &Path, sha256: &str) -> Option<std::path::PathBuf> {
    kuroko_model::objects::Objects::at(files_dir).path(sha256)
}

/// `host:port` → `host` (IPv6 in brackets kept whole).
fn host_only(h: &str) -> &str {
    if h.starts_with('[') {
        return h
            .split(']')
            .next()
            .map(|x| x.trim_start_matches('['))
            .unwrap_or(h);
    }
    match h.rsplit_once(':') {
        Some((a, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !a.contains(':') => a,
        _ => h,
    }
}
