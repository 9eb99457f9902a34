//! Evidence that survives segment rotation: the packets of every finding's evidence
//! sessions, exported from the segment store into `DIR/evidence/<finding-id>.pcap`.
//!
//! Why export rather than pin segments: a finding's evidence is a few sessions spread over
//! many segments; holding whole 64 MiB segments out of the ring for a handful of packets
//! would eat the retention window. Exported pcaps are small, Wireshark opens them as they
//! are, and the USB export can copy them.
//!
//! How: the evidence sessions not exported yet are listed highest risk first, and as
//! many as surely fit the budget (by an upper bound from each session's packets and
//! payload bytes) are cut out in one pass over the store in time order
//! ([`kuroko_ring::StoreReader::scan_time_cached`] over the union of their time ranges):
//! each packet goes to every session it belongs to (its 5-tuple, either direction; the
//! addresses for port-less packets such as later IP fragments) whose range holds it, and
//! is appended to that finding's pcap (nanosecond pcap, Ethernet; packets in time order).
//! Each store chunk is read, and each block's checksums checked, once per export, whatever
//! order the findings come in: per finding, highest risk first, a 0.1 GB store of small
//! sessions was read 65 times over (7,548 findings, a 64 MiB cache, three segments), and
//! its analysis took 5.8× the CPU of a third of it. The sessions left, from the first that
//! may not fit, are then cut out one by one, highest risk first, while the budget allows
//! (the per-packet budget check is exact on both paths, so a bound that was wrong can only
//! let a lower-risk session take budget first); blocks outside every session's time range
//! are not checked.
//! A manifest
//! (`manifest.json`, replaced atomically after the pcaps are fsynced) records each file's
//! committed length and the sessions in it; a file longer than its manifest entry (a crash
//! between append and manifest) is cut back first, so a retry never duplicates packets.
//! Sessions whose packets were already rotated away are recorded as missing and counted.
//! The whole area stays within `[storage] evidence_budget`; what does not fit is counted
//! and left for a larger budget.

use anyhow::Context;
use kuroko_model::config::Config;
use kuroko_model::finding::Lang;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;
/// pcap global header (24 bytes) and per-packet header (16 bytes).
const PCAP_HEADER_LEN: u64 = 24;
const RECORD_HEADER_LEN: u64 = 16;
/// Largest captured length written per packet (the store's own limit is lower).
const MAX_CAPLEN: u32 = 262_144;
/// VLAN tags skipped at most when matching a frame (QinQ and a bit more).
const MAX_VLAN_TAGS: usize = 4;
/// IPv6 extension headers skipped at most.
const MAX_IPV6_EXT: usize = 8;
/// Store chunks an export keeps read between evidence sessions (about; whole segments
/// are dropped, least recently used first). Evidence of recent findings lies in a few
/// segments; 64 MiB is one default segment.
pub const CHUNK_CACHE_BYTES: u64 = 64 << 20;

#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct Manifest {
    format: u32,
    files: BTreeMap<String, FileEntry>,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct FileEntry {
    /// Committed length of `<id>.pcap`.
    len: u64,
    /// Sessions whose packets are in the file.
    sessions: Vec<String>,
    /// Sessions whose packets were no longer in the store.
    #[serde(default)]
    missing: Vec<String>,
}

/// What one export did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EvidenceSummary {
    pub findings: usize,
    pub sessions_exported: u64,
    /// Evidence sessions whose packets had already left the ring.
    pub sessions_missing: u64,
    /// Evidence sessions not exported because the evidence budget is full.
    pub sessions_over_budget: u64,
    pub packets: u64,
    pub bytes_written: u64,
    /// Bytes the evidence area holds after the run.
    pub area_bytes: u64,
    pub budget: u64,
    /// Damaged store places met (skipped by the reader).
    pub damaged_places: u64,
    /// Evidence packets of another link type than their finding's pcap (sessions of one
    /// finding seen on interfaces of different kinds): left in the store, where
    /// `kuroko pcap --finding` exports them all (as pcapng).
    pub packets_other_link_type: u64,
}

pub fn evidence_dir(data: &Path) -> PathBuf {
    data.join("evidence")
}

/// Exports the packets of every finding's evidence sessions not exported yet.
/// Call after `kuroko_detect::run_pending`. Without a segment store (e.g. analysis of a
/// pcap file) there is nothing to export and the summary says so.
pub fn export_pending(data: &Path, config: &Config) -> anyhow::Result<EvidenceSummary> {
    export(data, config, EXPORT_READS).map(|(s, _)| s)
}

/// How `export_pending` reads the store.
const EXPORT_READS: Reads = Reads::Cached(CHUNK_CACHE_BYTES);

/// How the export reads the store.
#[derive(Clone, Copy, Debug)]
enum Reads {
    /// One `scan_time_cached` pass with a chunk cache of this many bytes.
    Cached(u64),
    /// One plain `scan_time` per evidence session (the export before the cache; kept for
    /// the test that both write the same bytes).
    #[cfg(test)]
    PerSession,
}

/// `export_pending`, and the store bytes the reader read for it.
fn export(data: &Path, config: &Config, reads: Reads) -> anyhow::Result<(EvidenceSummary, u64)> {
    let budget = config
        .storage
        .evidence_budget_bytes()
        .map_err(|m| anyhow::anyhow!("`storage.evidence_budget`: {m}"))?;
    let mut summary = EvidenceSummary {
        budget,
        ..Default::default()
    };
    let aggregates = kuroko_detect::load_aggregates(data)?;
    if aggregates.is_empty() || !data.join("segments").exists() {
        return Ok((summary, 0));
    }
    // The findings store's writer lock also guards the evidence area.
    let _lock = kuroko_detect::store::lock(data)?;
    let reader = kuroko_ring::StoreReader::open(data)
        .with_context(|| format!("opening the segment store of {}", data.display()))?;
    let dir = evidence_dir(data);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut manifest = load_manifest(&dir)?;
    // Highest risk first, so the budget goes to what matters most.
    let order = kuroko_detect::load_findings(data, config, Lang::En)?;
    let by_id: BTreeMap<String, &kuroko_detect::Aggregate> =
        aggregates.iter().map(|a| (a.id(), a)).collect();
    let mut cache = match reads {
        Reads::Cached(limit) => Some(kuroko_ring::TimeScanCache::new(limit)),
        #[cfg(test)]
        Reads::PerSession => None,
    };
    let mut out = Outputs::new(&dir, &mut manifest);
    summary.findings = order.len();
    // Every evidence session not exported yet, highest risk first.
    let mut work: Vec<Work<'_>> = Vec::new();
    for f in &order {
        let Some(agg) = by_id.get(&f.id) else {
            continue;
        };
        let entry = out.manifest.files.entry(f.id.clone()).or_default();
        for ev in &agg.evidence {
            if !entry.sessions.contains(&ev.session) && !entry.missing.contains(&ev.session) {
                work.push(Work::new(&f.id, ev));
            }
        }
    }
    // The sessions sure to fit the budget (by an upper bound of their size, in risk order)
    // are cut out in one pass over the store in time order, whatever the findings' order.
    // The rest, from the first that may not fit, go one by one, highest risk first, as
    // long as the budget allows.
    let mut reserved = out.used;
    let mut new_files = std::collections::BTreeSet::new();
    let sure = work
        .iter()
        .take_while(|w| {
            let header = if out.len(w.id) == 0 && new_files.insert(w.id) {
                PCAP_HEADER_LEN
            } else {
                0
            };
            match size_bound(w.ev) {
                Some(b) if reserved + header + b <= budget => {
                    reserved += header + b;
                    true
                }
                _ => false,
            }
        })
        .count();
    let (in_time, by_risk) = work.split_at_mut(sure);
    in_time.sort_by_key(|w| (w.from, w.to));
    let mut full = false;
    match cache.as_mut() {
        Some(cache) => sweep(
            &reader,
            cache,
            in_time,
            &mut out,
            budget,
            &mut full,
            &mut summary,
        )?,
        None => {
            for w in in_time.iter_mut() {
                one_session(&reader, None, w, &mut out, budget, &mut full, &mut summary)?;
            }
        }
    }
    for w in by_risk.iter_mut() {
        if full || (out.len(w.id) == 0 && out.used + PCAP_HEADER_LEN > budget) {
            full = true;
            w.packets = 0;
            w.state = Cut::OverBudget;
            continue;
        }
        one_session(
            &reader,
            cache.as_mut(),
            w,
            &mut out,
            budget,
            &mut full,
            &mut summary,
        )?;
    }
    for w in &work {
        let entry = out.manifest.files.entry(w.id.clone()).or_default();
        match w.state {
            Cut::Missing => {
                entry.missing.push(w.ev.session.clone());
                summary.sessions_missing += 1;
            }
            Cut::OverBudget => summary.sessions_over_budget += 1,
            // A session cut short by the budget keeps what fit.
            Cut::Exported => {
                entry.sessions.push(w.ev.session.clone());
                summary.sessions_exported += 1;
                summary.packets += w.packets;
            }
        }
    }
    summary.bytes_written = out.written;
    summary.packets_other_link_type = out.other_link_type;
    summary.area_bytes = out.used;
    out.finish()?;
    save_manifest(&dir, &manifest)?;
    Ok((summary, reader.chunk_bytes_read()))
}

/// One evidence session to cut out, the finding whose pcap gets it, and how it went.
struct Work<'a> {
    id: &'a String,
    ev: &'a kuroko_detect::EvidenceRef,
    /// Its time range, `[from, to)` in ns.
    from: u64,
    to: u64,
    packets: u64,
    state: Cut,
}

/// What became of an evidence session.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Cut {
    /// Packets written (all of them, or what fit when the budget ran out).
    Exported,
    /// Its time range was read and none of its packets was there (rotated out).
    Missing,
    /// Not (fully) looked at: the budget ran out first.
    OverBudget,
}

impl<'a> Work<'a> {
    fn new(id: &'a String, ev: &'a kuroko_detect::EvidenceRef) -> Work<'a> {
        let from = u64::try_from(ev.start.nanos()).unwrap_or(0);
        let to = u64::try_from(ev.end.nanos())
            .unwrap_or(0)
            .max(from)
            .saturating_add(1);
        Work {
            id,
            ev,
            from,
            to,
            packets: 0,
            state: Cut::OverBudget,
        }
    }

    /// Its state once the reader has passed `stopped_at` (the budget ran out there) or
    /// read all of its range (`None`).
    fn settle(&mut self, stopped_at: Option<u64>) {
        self.state = if self.packets > 0 {
            Cut::Exported
        } else if stopped_at.is_none_or(|t| self.to <= t) {
            Cut::Missing
        } else {
            Cut::OverBudget
        };
    }
}

/// Cuts one session out with its own scan of its time range (the sessions that may not fit,
/// highest risk first: the budget may run out inside one of them).
fn one_session(
    reader: &kuroko_ring::StoreReader,
    cache: Option<&mut kuroko_ring::TimeScanCache>,
    w: &mut Work<'_>,
    out: &mut Outputs<'_>,
    budget: u64,
    full: &mut bool,
    summary: &mut EvidenceSummary,
) -> anyhow::Result<()> {
    let mut err = None;
    let mut stopped_at = None;
    let (ev, id) = (w.ev, w.id);
    let mut packets = 0;
    let each = |p: &kuroko_ring::PacketView<'_>| {
        if !frame_matches(p.linktype, p.data, ev) {
            return ControlFlow::Continue(());
        }
        match out.append(id, p, budget) {
            Ok(true) => {
                packets += 1;
                ControlFlow::Continue(())
            }
            Ok(false) => {
                stopped_at = Some(p.ts_ns);
                ControlFlow::Break(())
            }
            Err(e) => {
                err = Some(e);
                ControlFlow::Break(())
            }
        }
    };
    let report = match cache {
        Some(cache) => reader.scan_time_cached(cache, w.from, w.to, each)?,
        None => reader.scan_time(w.from, w.to, each)?,
    };
    if let Some(e) = err {
        return Err(e);
    }
    summary.damaged_places += report.damage.len() as u64;
    w.packets = packets;
    *full |= stopped_at.is_some();
    w.settle(stopped_at);
    Ok(())
}

/// Cuts every session of `batch` (sorted by start) out in one pass: the union of their
/// time ranges is read once in time order, and each packet goes to every session it
/// belongs to (by 5-tuple, or by addresses for port-less packets such as later IP
/// fragments) whose range holds it. Each chunk of the store is read once per export
/// whatever order the findings come in and however long their sessions are.
fn sweep(
    reader: &kuroko_ring::StoreReader,
    cache: &mut kuroko_ring::TimeScanCache,
    batch: &mut [Work<'_>],
    out: &mut Outputs<'_>,
    budget: u64,
    full: &mut bool,
    summary: &mut EvidenceSummary,
) -> anyhow::Result<()> {
    use std::collections::HashMap;
    // Sessions by their 5-tuple (TCP/UDP) and by their address pair (all).
    let mut by_tuple: HashMap<TupleKey, Vec<usize>> = HashMap::new();
    let mut by_addrs: HashMap<(IpAddr, IpAddr), Vec<usize>> = HashMap::new();
    for (i, w) in batch.iter().enumerate() {
        let (c, s) = (unmap(w.ev.client_ip), unmap(w.ev.server_ip));
        if let Some(proto) = ported_proto(&w.ev.transport) {
            by_tuple
                .entry(tuple_key(
                    proto,
                    (c, w.ev.client_port),
                    (s, w.ev.server_port),
                ))
                .or_default()
                .push(i);
        }
        by_addrs.entry(addr_key(c, s)).or_default().push(i);
    }
    // The union of the ranges, in time order.
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for w in batch.iter() {
        match ranges.last_mut() {
            Some(last) if w.from <= last.1 => last.1 = last.1.max(w.to),
            _ => ranges.push((w.from, w.to)),
        }
    }
    let mut err = None;
    let mut stopped_at = None;
    for (from, to) in ranges {
        let report = reader.scan_time_cached(cache, from, to, |p| {
            let Some((proto, src, dst, ports)) = frame_tuple(p.linktype, p.data) else {
                return ControlFlow::Continue(());
            };
            let candidates = match ports {
                Some((sp, dp)) if matches!(proto, 6 | 17) => {
                    by_tuple.get(&tuple_key(proto, (src, sp), (dst, dp)))
                }
                _ => by_addrs.get(&addr_key(src, dst)),
            };
            for &i in candidates.into_iter().flatten() {
                let w = &mut batch[i];
                if p.ts_ns < w.from || p.ts_ns >= w.to || !frame_matches(p.linktype, p.data, w.ev) {
                    continue;
                }
                match out.append(w.id, p, budget) {
                    Ok(true) => w.packets += 1,
                    Ok(false) => {
                        stopped_at = Some(p.ts_ns);
                        return ControlFlow::Break(());
                    }
                    Err(e) => {
                        err = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
        summary.damaged_places += report.damage.len() as u64;
        if let Some(e) = err {
            return Err(e);
        }
        if stopped_at.is_some() {
            break;
        }
    }
    *full |= stopped_at.is_some();
    for w in batch.iter_mut() {
        w.settle(stopped_at);
    }
    Ok(())
}

/// The protocol number of a transport whose frames carry ports.
fn ported_proto(transport: &str) -> Option<u8> {
    match transport {
        "tcp" => Some(6),
        "udp" => Some(17),
        _ => None,
    }
}

/// A 5-tuple the same in both directions.
type TupleKey = (u8, (IpAddr, u16), (IpAddr, u16));

fn tuple_key(proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> TupleKey {
    let (a, b) = ((unmap(a.0), a.1), (unmap(b.0), b.1));
    if a <= b { (proto, a, b) } else { (proto, b, a) }
}

fn addr_key(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    let (a, b) = (unmap(a), unmap(b));
    if a <= b { (a, b) } else { (b, a) }
}

/// Bytes a pcap record of a packet takes at most beyond its payload: its 16-byte record
/// header and the frame's headers (Ethernet with up to four VLAN tags, IPv4 with options
/// or IPv6 with a few extension headers, TCP with options; a frame padded to 60 bytes).
const RECORD_OVERHEAD_BOUND: u64 = 256;

/// An upper bound of what `ev`'s packets take in its finding's pcap, from the session's
/// payload bytes and packets; `None` when state from older firmware did not record them.
/// A bound, not a promise: packets of a reused 5-tuple inside the session's time range,
/// or a frame with larger headers, are written too. The per-packet budget check stays
/// exact either way; a wrong bound can only let a lower-risk session take budget first.
fn size_bound(ev: &kuroko_detect::EvidenceRef) -> Option<u64> {
    let v = &ev.volume;
    let packets = v.packets_up.saturating_add(v.packets_down);
    if packets == 0 || v.unknown {
        return None;
    }
    Some(
        packets
            .saturating_mul(RECORD_OVERHEAD_BOUND)
            .saturating_add(v.bytes_up)
            .saturating_add(v.bytes_down),
    )
}

/// The evidence pcaps of one export, kept open while sessions are cut out in time order
/// (many findings, each appended to now and then): at most [`MAX_OPEN`] at once, the
/// least recently used closed first. Every file written is fsynced once at the end,
/// before the manifest names its length.
struct Outputs<'m> {
    dir: PathBuf,
    manifest: &'m mut Manifest,
    open: BTreeMap<String, Open>,
    touched: std::collections::BTreeSet<String>,
    /// Bytes of the whole area, with what this run wrote.
    used: u64,
    /// Packet records this run wrote (bytes, their headers included).
    written: u64,
    /// Packets not written: another link type than their finding's pcap.
    other_link_type: u64,
    tick: u64,
}

/// An open evidence pcap.
struct Open {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    /// Its length with what this run appended (the manifest gets it when it is closed).
    len: u64,
    /// The link type in its header.
    linktype: u16,
    last_use: u64,
}

/// Evidence pcaps written in one export above which one `syncfs` makes them durable
/// instead of an fsync each.
const SYNCFS_ABOVE: usize = 16;

/// Evidence pcaps open at most (a file descriptor and a write buffer each).
const MAX_OPEN: usize = 64;

impl<'m> Outputs<'m> {
    fn new(dir: &Path, manifest: &'m mut Manifest) -> Outputs<'m> {
        let used = manifest.files.values().map(|f| f.len).sum();
        Outputs {
            dir: dir.to_path_buf(),
            manifest,
            open: BTreeMap::new(),
            touched: Default::default(),
            used,
            written: 0,
            other_link_type: 0,
            tick: 0,
        }
    }

    /// Finding `id`'s pcap length, with what this run wrote.
    fn len(&self, id: &str) -> u64 {
        match self.open.get(id) {
            Some(o) => o.len,
            None => self.manifest.files.get(id).map_or(0, |e| e.len),
        }
    }

    /// Appends packet `p` to finding `id`'s pcap (the file and its pcap header, of the
    /// packet's link type, made on the first one); `Ok(false)`, nothing written, when it
    /// would take the area over `budget`. A packet of another link type than the pcap's
    /// (evidence sessions of one finding seen on interfaces of different kinds) cannot go
    /// into a classic pcap: it is counted in [`EvidenceSummary::packets_other_link_type`]
    /// and stays in the store for `kuroko pcap --finding` (which writes pcapng then).
    fn append(
        &mut self,
        id: &str,
        p: &kuroko_ring::PacketView<'_>,
        budget: u64,
    ) -> anyhow::Result<bool> {
        let caplen = p.data.len().min(MAX_CAPLEN as usize);
        let need = RECORD_HEADER_LEN + caplen as u64;
        let header = if self.len(id) == 0 {
            PCAP_HEADER_LEN
        } else {
            0
        };
        if self.used + header + need > budget {
            return Ok(false);
        }
        let o = self.writer(id, p.linktype)?;
        if o.linktype != p.linktype {
            self.other_link_type += 1;
            return Ok(true);
        }
        write_record(&mut o.out, p.ts_ns, p.wire_len, &p.data[..caplen])
            .with_context(|| format!("writing {}", o.path.display()))?;
        o.len += need;
        self.used += need;
        self.written += need;
        Ok(true)
    }

    /// The open pcap of finding `id`: opened at its length (its link type read from its
    /// header), or made with the pcap header of link type `linktype`.
    fn writer(&mut self, id: &str, linktype: u16) -> anyhow::Result<&mut Open> {
        self.tick += 1;
        if !self.open.contains_key(id) {
            if self.open.len() >= MAX_OPEN {
                let oldest = self
                    .open
                    .iter()
                    .min_by_key(|(_, o)| o.last_use)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.close(&k)?;
                }
            }
            let path = self.dir.join(format!("{id}.pcap"));
            let mut len = self.manifest.files.get(id).map_or(0, |e| e.len);
            let file = open_at(&path, len)?;
            let mut linktype = linktype;
            if len > 0 {
                use std::os::unix::fs::FileExt;
                let mut h = [0u8; 24];
                file.read_exact_at(&mut h, 0)
                    .with_context(|| format!("reading the header of {}", path.display()))?;
                linktype = u16::try_from(u32::from_le_bytes([h[20], h[21], h[22], h[23]]))
                    .unwrap_or(kuroko_ring::format::LINKTYPE_ETHERNET);
            }
            let mut out = std::io::BufWriter::new(file);
            if len == 0 {
                out.write_all(&pcap_header(linktype))
                    .with_context(|| format!("writing {}", path.display()))?;
                len = PCAP_HEADER_LEN;
                self.used += PCAP_HEADER_LEN;
            }
            self.touched.insert(id.to_string());
            let o = Open {
                path,
                out,
                len,
                linktype,
                last_use: 0,
            };
            self.open.insert(id.to_string(), o);
        }
        let tick = self.tick;
        let o = self.open.get_mut(id).expect("opened above");
        o.last_use = tick;
        Ok(o)
    }

    /// Flushes and closes finding `id`'s pcap; its length goes into the manifest.
    fn close(&mut self, id: &str) -> anyhow::Result<()> {
        if let Some(o) = self.open.remove(id) {
            o.out
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("writing {}", o.path.display()))?;
            self.manifest.files.entry(id.to_string()).or_default().len = o.len;
        }
        Ok(())
    }

    /// Closes every pcap and makes each one written durable, so the manifest saved next
    /// never names bytes that are not: one `syncfs(2)` of the evidence directory's file
    /// system when many were written (an fsync each took most of an export's wall time over
    /// thousands of findings: each flushed the disk's write cache), else an fsync each. The
    /// manifest's own fsync follows either way, which on ext4 flushes the device's write
    /// cache over what syncfs wrote (as the files store does, `kuroko_analyzer::files`).
    fn finish(mut self) -> anyhow::Result<()> {
        let ids: Vec<String> = self.open.keys().cloned().collect();
        for id in ids {
            self.close(&id)?;
        }
        if self.touched.len() > SYNCFS_ABOVE {
            let dir = std::fs::File::open(&self.dir)
                .with_context(|| format!("opening {}", self.dir.display()))?;
            return nix::unistd::syncfs(&dir)
                .map_err(std::io::Error::from)
                .with_context(|| format!("syncing the file system of {}", self.dir.display()));
        }
        for id in &self.touched {
            let path = self.dir.join(format!("{id}.pcap"));
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", path.display()))?;
        }
        Ok(())
    }
}

/// Opens `path` for appending at `len`, cutting anything after it (left by a crash).
fn open_at(path: &Path, len: u64) -> anyhow::Result<std::fs::File> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let actual = f.metadata()?.len();
    if actual != len {
        f.set_len(len)
            .with_context(|| format!("cutting {} back to {len} bytes", path.display()))?;
    }
    f.seek(std::io::SeekFrom::Start(len))?;
    Ok(f)
}

/// Classic pcap, nanosecond timestamps (magic a1b23c4d), of link type `linktype` (the
/// stored packets' own, Ethernet for most): what the store's own pcap export writes, so
/// both open the same way in Wireshark.
fn pcap_header(linktype: u16) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&MAX_CAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&u32::from(linktype).to_le_bytes());
    h
}

fn write_record(
    out: &mut impl Write,
    ts_ns: u64,
    wire_len: u32,
    data: &[u8],
) -> std::io::Result<()> {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
    h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
    h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
    h[12..16].copy_from_slice(&wire_len.max(data.len() as u32).to_le_bytes());
    out.write_all(&h)?;
    out.write_all(data)
}

fn load_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| {
            format!(
                "{} cannot be read; move the evidence directory away to export it again",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest {
            format: FORMAT,
            ..Default::default()
        }),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn save_manifest(dir: &Path, m: &Manifest) -> anyhow::Result<()> {
    let tmp = dir.join("manifest.json.tmp");
    let fin = dir.join(MANIFEST);
    let bytes = serde_json::to_vec(m)?;
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &fin).with_context(|| format!("replacing {}", fin.display()))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all())?;
    Ok(())
}

/// (ip proto, source, destination, (source port, destination port) for TCP/UDP).
type FrameTuple = (u8, IpAddr, IpAddr, Option<(u16, u16)>);

/// Where a frame's IP header starts, by the link type its interface has in the store, and
/// its EtherType (IPv4 `0x0800`, IPv6 `0x86dd`; anything else is not IP): Ethernet (up
/// to [`MAX_VLAN_TAGS`] VLAN tags, PPPoE session frames), Linux cooked capture v1 and v2
/// (`tcpdump -i any`), raw IP (tun interfaces), BSD NULL/LOOP. What the analyzer decodes
/// (`kuroko_analyzer::decode`), without its checks: only the addresses and ports count.
fn ip_header(linktype: u16, frame: &[u8]) -> Option<(u16, usize)> {
    use kuroko_ring::format as f;
    let be16 = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    let (mut ethertype, mut l3) = match linktype {
        f::LINKTYPE_ETHERNET => (be16(12)?, 14),
        f::LINKTYPE_LINUX_SLL => (be16(14)?, 16),
        f::LINKTYPE_LINUX_SLL2 => (be16(0)?, 20),
        f::LINKTYPE_RAW => match frame.first()? >> 4 {
            4 => (0x0800, 0),
            6 => (0x86dd, 0),
            _ => return None,
        },
        f::LINKTYPE_IPV4 => (0x0800, 0),
        f::LINKTYPE_IPV6 => (0x86dd, 0),
        f::LINKTYPE_NULL | f::LINKTYPE_LOOP => {
            let h: [u8; 4] = frame.get(..4)?.try_into().ok()?;
            // NULL is in the capturing host's byte order (see the analyzer's decode).
            let family = if linktype == f::LINKTYPE_LOOP || h[0] == 0 && h[1] == 0 {
                u32::from_be_bytes(h)
            } else {
                u32::from_le_bytes(h)
            };
            match family {
                2 => (0x0800, 4),
                10 | 24 | 28 | 30 => (0x86dd, 4),
                _ => return None,
            }
        }
        _ => return None,
    };
    for _ in 0..MAX_VLAN_TAGS {
        if !matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        ethertype = be16(l3 + 2)?;
        l3 += 4;
    }
    if ethertype == 0x8864 {
        // PPPoE session: 6 bytes of PPPoE header, then the PPP protocol.
        ethertype = match be16(l3 + 6)? {
            0x0021 => 0x0800,
            0x0057 => 0x86dd,
            _ => return None,
        };
        l3 += 8;
    }
    Some((ethertype, l3))
}

/// Addresses and ports of a stored frame of link type `linktype`: (ip proto, src, dst,
/// ports if TCP/UDP and present). `None` for anything that is not IP.
fn frame_tuple(linktype: u16, frame: &[u8]) -> Option<FrameTuple> {
    let (ethertype, l3) = ip_header(linktype, frame)?;
    let ip = frame.get(l3..)?;
    let (proto, src, dst, l4, first_fragment) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ihl < 20 {
                return None;
            }
            let frag_offset = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (
                *ip.get(9)?,
                IpAddr::from(src),
                IpAddr::from(dst),
                ip.get(ihl..).unwrap_or(&[]),
                frag_offset == 0,
            )
        }
        0x86dd => {
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let mut next = *ip.get(6)?;
            let mut rest = ip.get(40..).unwrap_or(&[]);
            let mut first = true;
            for _ in 0..MAX_IPV6_EXT {
                match next {
                    0 | 43 | 60 => {
                        let len = (usize::from(*rest.get(1)?) + 1) * 8;
                        next = *rest.first()?;
                        rest = rest.get(len..)?;
                    }
                    44 => {
                        let off = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]) >> 3;
                        first = off == 0;
                        next = *rest.first()?;
                        rest = rest.get(8..)?;
                    }
                    _ => break,
                }
            }
            (next, IpAddr::from(src), IpAddr::from(dst), rest, first)
        }
        _ => return None,
    };
    let ports = if matches!(proto, 6 | 17) && first_fragment && l4.len() >= 4 {
        Some((
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
        ))
    } else {
        None
    };
    Some((proto, src, dst, ports))
}

/// Whether a stored frame of link type `linktype` belongs to the session (either direction).
fn frame_matches(linktype: u16, frame: &[u8], ev: &kuroko_detect::EvidenceRef) -> bool {
    let Some((proto, src, dst, ports)) = frame_tuple(linktype, frame) else {
        return false;
    };
    let want_proto = match ev.transport.as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        "icmpv6" => Some(58),
        "sctp" => Some(132),
        _ => None,
    };
    if want_proto.is_some_and(|p| p != proto) {
        return false;
    }
    let (c, s) = (unmap(ev.client_ip), unmap(ev.server_ip));
    let forward = src == c && dst == s;
    let backward = src == s && dst == c;
    if !forward && !backward {
        return false;
    }
    match ports {
        Some((sp, dp)) if matches!(proto, 6 | 17) => {
            (forward && sp == ev.client_port && dp == ev.server_port)
                || (backward && sp == ev.server_port && dp == ev.client_port)
        }
        // Non-first fragments and port-less protocols: addresses decide.
        _ => true,
    }
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::session::{Endpoint, PacketSpan, Telnet};
    use kuroko_model::sessionlog::SessionLogWriter;
    use kuroko_model::{SessionRecord, Timestamp};
    use kuroko_ring::{RecordMeta, SegmentWriter, StoreOptions};

    const T0: u64 = 1_794_963_600_000_000_000;

    /// An Ethernet + IPv4 + TCP frame with `payload` bytes of payload.
    fn frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let tcp = &mut ip[20..];
        tcp[0..2].copy_from_slice(&sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[12] = 0x50;
        f
    }

    fn telnet_session(id: &str, cport: u16, start: u64, end: u64) -> SessionRecord {
        let mut s = SessionRecord::new(
            id.into(),
            Timestamp(start as i64),
            "tcp",
            Endpoint::new("10.0.0.5".parse().unwrap(), cport),
            Endpoint::new("10.0.3.1".parse().unwrap(), 23),
        );
        s.end = Timestamp(end as i64);
        s.protocol = "telnet".into();
        s.bytes_up = 10;
        s.telnet = Some(Telnet {
            user: Some("root".into()),
        });
        s.span = PacketSpan {
            first_segment: 0,
            last_segment: 0,
        };
        s
    }

    /// Packets of two telnet sessions and unrelated traffic in between, in a real store.
    fn store_with_traffic(data: &Path) {
        store_with_linktype(data, kuroko_ring::format::LINKTYPE_ETHERNET, |f| f);
    }

    /// The traffic of `store_with_traffic` on an interface of link type `linktype`, each
    /// Ethernet frame turned into that link type by `link`.
    fn store_with_linktype(data: &Path, linktype: u16, link: fn(Vec<u8>) -> Vec<u8>) {
        let opts = StoreOptions {
            budget: 8 << 20,
            segment_size: 2 << 20,
            ..Default::default()
        };
        let mut w = SegmentWriter::open(data, &opts).unwrap();
        w.set_interfaces(&[kuroko_ring::format::IfaceEntry::new(
            0, linktype, 262_144, "any",
        )]);
        let mut put = |ts: u64, f: Vec<u8>| {
            let f = link(f);
            let meta = RecordMeta {
                ts_ns: ts,
                wire_len: f.len() as u32,
                iface: 0,
                flags: 0,
            };
            w.append(&meta, &[&f]).unwrap();
        };
        for i in 0..5u64 {
            put(
                T0 + i * 1000,
                frame([10, 0, 0, 5], 40000, [10, 0, 3, 1], 23, 10),
            );
            put(
                T0 + i * 1000 + 100,
                frame([10, 0, 3, 1], 23, [10, 0, 0, 5], 40000, 20),
            );
            // Same hosts, another client port: a different session.
            put(
                T0 + i * 1000 + 200,
                frame([10, 0, 0, 5], 40001, [10, 0, 3, 1], 23, 5),
            );
            // Unrelated.
            put(
                T0 + i * 1000 + 300,
                frame([10, 0, 0, 9], 5555, [10, 0, 0, 10], 80, 5),
            );
        }
        w.sync().unwrap();
        w.close().unwrap();
    }

    fn pcap_packets(bytes: &[u8]) -> Vec<Vec<u8>> {
        assert_eq!(&bytes[..4], &0xa1b2_3c4du32.to_le_bytes());
        let mut out = Vec::new();
        let mut off = 24;
        while off + 16 <= bytes.len() {
            let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
            out.push(bytes[off + 16..off + 16 + caplen].to_vec());
            off += 16 + caplen;
        }
        assert_eq!(off, bytes.len(), "no torn record");
        out
    }

    /// One Telnet session (port 40000, T0..T0+4.1 s) logged in `data`, judged and its
    /// evidence exported: the export's summary and the finding's id.
    fn export_one_telnet_finding(data: &Path, config: &Config) -> (EvidenceSummary, String) {
        let mut log = SessionLogWriter::open(&data.join("sessions")).unwrap();
        log.append(&telnet_session("tn-a", 40000, T0, T0 + 4100))
            .unwrap();
        log.sync().unwrap();
        kuroko_detect::run_pending(data, config).unwrap();
        let s = export_pending(data, config).unwrap();
        let id = kuroko_detect::load_findings(data, config, Lang::En).unwrap()[0]
            .id
            .clone();
        (s, id)
    }

    #[test]
    fn evidence_sessions_are_cut_out_by_five_tuple_and_time_and_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        store_with_traffic(data);
        let config = Config::default();
        let (s, id) = export_one_telnet_finding(data, &config);
        assert_eq!(
            (s.sessions_exported, s.sessions_missing, s.packets),
            (1, 0, 10),
            "{s:?}"
        );
        let bytes = std::fs::read(evidence_dir(data).join(format!("{id}.pcap"))).unwrap();
        let packets = pcap_packets(&bytes);
        assert_eq!(packets.len(), 10);
        for p in &packets {
            let (_, _, _, ports) = frame_tuple(kuroko_ring::format::LINKTYPE_ETHERNET, p).unwrap();
            let ports = ports.unwrap();
            assert!(ports == (40000, 23) || ports == (23, 40000), "{ports:?}");
        }
        // Again: nothing new, nothing appended.
        let s = export_pending(data, &config).unwrap();
        assert_eq!(s.sessions_exported, 0);
        assert_eq!(
            std::fs::read(evidence_dir(data).join(format!("{id}.pcap")))
                .unwrap()
                .len(),
            bytes.len()
        );

        // A second session of the same finding is appended; a crash's leftover tail is cut.
        {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(evidence_dir(data).join(format!("{id}.pcap")))
                .unwrap();
            f.write_all(b"torn tail").unwrap();
        }
        let mut log = SessionLogWriter::open(&data.join("sessions")).unwrap();
        log.append(&telnet_session("tn-b", 40001, T0, T0 + 4300))
            .unwrap();
        log.append(&telnet_session("tn-gone", 40002, T0, T0 + 4300))
            .unwrap();
        log.sync().unwrap();
        kuroko_detect::run_pending(data, &config).unwrap();
        let s = export_pending(data, &config).unwrap();
        assert_eq!(
            (s.sessions_exported, s.sessions_missing, s.packets),
            (1, 1, 5),
            "{s:?}"
        );
        let packets =
            pcap_packets(&std::fs::read(evidence_dir(data).join(format!("{id}.pcap"))).unwrap());
        assert_eq!(packets.len(), 15);
    }

    /// Ethernet frame → Linux cooked capture v2 (`tcpdump -i any`): the 20-byte SLL2
    /// header (protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length,
    /// address) in place of the Ethernet header.
    fn sll2(f: Vec<u8>) -> Vec<u8> {
        let mut out = vec![0u8; 20];
        out[..2].copy_from_slice(&f[12..14]);
        out[4..8].copy_from_slice(&3u32.to_be_bytes());
        out[8..10].copy_from_slice(&1u16.to_be_bytes());
        out[11] = 6;
        out[12..18].copy_from_slice(&f[6..12]);
        out.extend_from_slice(&f[14..]);
        out
    }

    /// Ethernet frame → raw IP (a tun interface, link type 101).
    fn raw_ip(f: Vec<u8>) -> Vec<u8> {
        f[14..].to_vec()
    }

    /// The fault: evidence was cut out of stores of other link types as if every frame
    /// were Ethernet, so a `tcpdump -i any` capture (SLL2) or a tun interface (raw IP)
    /// exported no packet and called every evidence session rotated out; and the pcap said
    /// Ethernet. Each finding's pcap now carries its packets' own link type.
    #[test]
    fn evidence_of_sll2_and_raw_ip_stores_is_cut_out_with_their_link_type() {
        use kuroko_ring::format::{LINKTYPE_LINUX_SLL2, LINKTYPE_RAW};
        for (linktype, link) in [
            (LINKTYPE_LINUX_SLL2, sll2 as fn(Vec<u8>) -> Vec<u8>),
            (LINKTYPE_RAW, raw_ip),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path();
            store_with_linktype(data, linktype, link);
            let (s, id) = export_one_telnet_finding(data, &Config::default());
            assert_eq!(
                (s.sessions_exported, s.sessions_missing, s.packets),
                (1, 0, 10),
                "link type {linktype}: {s:?}"
            );
            let bytes = std::fs::read(evidence_dir(data).join(format!("{id}.pcap"))).unwrap();
            assert_eq!(
                u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
                u32::from(linktype),
                "the pcap's link type"
            );
            let packets = pcap_packets(&bytes);
            assert_eq!(packets.len(), 10);
            for p in &packets {
                let (_, _, _, ports) = frame_tuple(linktype, p).unwrap();
                let ports = ports.unwrap();
                assert!(ports == (40000, 23) || ports == (23, 40000), "{ports:?}");
            }
        }
    }

    #[test]
    fn the_budget_is_never_exceeded() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        store_with_traffic(data);
        let mut config = Config::default();
        // Header + 3 packets of 14+20+20+10 or +20 bytes with their 16-byte headers.
        config.storage.evidence_budget = "250B".into();
        let (s, _) = export_one_telnet_finding(data, &config);
        assert!(s.area_bytes <= 250, "{s:?}");
        assert!(s.packets >= 1 && s.packets < 10, "{s:?}");
        let total: u64 = std::fs::read_dir(evidence_dir(data))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "pcap"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(total <= 250);
    }

    /// Every file of the evidence area, by name.
    fn area(data: &Path) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(evidence_dir(data))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }

    /// Exports with `reads` into a fresh evidence area, then moves the area to `keep`.
    fn export_aside(
        data: &Path,
        config: &Config,
        reads: Reads,
        keep: &str,
    ) -> (EvidenceSummary, u64, BTreeMap<String, Vec<u8>>) {
        let (s, read) = export(data, config, reads).unwrap();
        let files = area(data);
        std::fs::rename(evidence_dir(data), data.join(keep)).unwrap();
        (s, read, files)
    }

    /// Many findings whose evidence sessions overlap in time, over several segments of
    /// small chunks: the small-sessions mix imported into a store, analysed, detections
    /// run. One block in the middle segment is damaged. Returns the store's used bytes.
    fn small_sessions_store(data: &Path) -> u64 {
        use kuroko_analyzer::synth::{self, Mix, Params};
        let pcap = data.with_extension("pcap");
        let params = Params {
            target_bytes: 3 << 20,
            concurrency: 64,
            seed: 7,
            gap_ns: 500_000,
            mix: Mix::SmallSessions,
            ..Params::default()
        };
        let f = std::io::BufWriter::new(std::fs::File::create(&pcap).unwrap());
        synth::generate(f, &params).unwrap();
        let opts = StoreOptions {
            budget: 64 << 20,
            segment_size: 1 << 20,
            chunk_size: 64 << 10,
            ..Default::default()
        };
        let mut w = SegmentWriter::open(data, &opts).unwrap();
        kuroko_ring::pcap::import_file(&mut w, &pcap, 0, |_, _| {}).unwrap();
        w.close().unwrap();
        let config = Config::default();
        let mut source = kuroko_analyzer::store::StoreSource::open(data).unwrap();
        kuroko_analyzer::driver::run(
            data,
            &config,
            &mut source,
            kuroko_analyzer::driver::RunOptions::default(),
        )
        .unwrap();
        kuroko_detect::run_pending(data, &config).unwrap();
        // Damage one block's payload in the middle segment.
        let reader = kuroko_ring::StoreReader::open(data).unwrap();
        let segs = reader.segments();
        assert!(segs.len() >= 3, "{} segments", segs.len());
        let mid = &segs[segs.len() / 2];
        let map = reader.map(mid).unwrap();
        let off = map
            .blocks()
            .find_map(|ev| match ev {
                kuroko_ring::segment::BlockEvent::Valid(b) if b.offset > 256 << 10 => {
                    Some(b.offset)
                }
                _ => None,
            })
            .unwrap();
        let at = off + kuroko_ring::format::BLOCK_HEADER_LEN as u64 + 100;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(map.path())
            .unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&[0xa5; 8], at).unwrap();
        f.sync_all().unwrap();
        segs.iter().map(|s| s.used_bytes).sum()
    }

    /// The export reads the store once per pass, not once per evidence session, and
    /// writes the same bytes as a plain `scan_time` per session did: the same pcaps
    /// (packets, order, lengths) and the same manifest, also with a cache too small for
    /// the store (segments dropped and read again).
    #[test]
    fn one_cached_pass_exports_the_same_bytes_as_a_scan_per_session_reading_each_chunk_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store_bytes = small_sessions_store(&data);
        let config = Config::default();
        let findings = kuroko_detect::load_findings(&data, &config, Lang::En)
            .unwrap()
            .len();
        assert!(findings >= 20, "{findings} findings");

        let (old, old_read, old_files) =
            export_aside(&data, &config, Reads::PerSession, "evidence.per-session");
        let (new, new_read, new_files) = export_aside(
            &data,
            &config,
            Reads::Cached(CHUNK_CACHE_BYTES),
            "evidence.cached",
        );
        let (small, _, small_files) =
            export_aside(&data, &config, Reads::Cached(128 << 10), "evidence.small");
        eprintln!(
            "{findings} findings, {} sessions, {} packets; store {store_bytes} B; read per \
             session {old_read} B, cached {new_read} B; damage met {} / {}",
            old.sessions_exported, old.packets, old.damaged_places, new.damaged_places
        );
        assert!(old.sessions_exported >= 20, "{old:?}");
        assert!(old.packets > 0 && old.sessions_over_budget == 0, "{old:?}");
        assert_eq!(old_files.len(), new_files.len());
        for (name, bytes) in &old_files {
            assert!(
                new_files.get(name) == Some(bytes),
                "{name} differs between the per-session and the cached export"
            );
            assert!(
                small_files.get(name) == Some(bytes),
                "{name} differs between the per-session and the small-cache export"
            );
        }
        let same = |s: &EvidenceSummary| {
            (
                s.findings,
                s.sessions_exported,
                s.sessions_missing,
                s.sessions_over_budget,
                s.packets,
                s.bytes_written,
                s.area_bytes,
            )
        };
        assert_eq!(same(&old), same(&new));
        assert_eq!(same(&old), same(&small));
        // The damaged block is met (its evidence sessions overlap it) and not hidden.
        assert!(new.damaged_places > 0, "{new:?}");
        assert!(small.damaged_places >= new.damaged_places, "{small:?}");
        // Each chunk read once: no more than the store holds.
        assert!(
            new_read <= store_bytes,
            "the export read {new_read} bytes of a {store_bytes}-byte store"
        );
    }

    /// The fault the cache fixes: a scan per evidence session re-read (and re-checked)
    /// the chunks its neighbours had read, many times the store for many findings.
    #[test]
    fn the_export_reads_no_more_than_the_store_holds() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store_bytes = small_sessions_store(&data);
        let config = Config::default();
        let (s, read) = export(&data, &config, EXPORT_READS).unwrap();
        assert!(s.sessions_exported >= 20, "{s:?}");
        assert!(
            read <= store_bytes,
            "the export read {read} bytes of a {store_bytes}-byte store for {} sessions",
            s.sessions_exported
        );
    }

    /// The fault of the per-finding order: findings are exported highest risk first, and
    /// their evidence sessions lie anywhere in the store. With a store larger than the
    /// chunk cache, every change of segment dropped one and read another from the chunk
    /// on: a 0.1 GB store of small sessions read 6.5 GB for 7,548 findings. Read in time
    /// order, each chunk is read once even with a cache of a single segment.
    #[test]
    fn a_store_larger_than_the_cache_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store_bytes = small_sessions_store(&data);
        let config = Config::default();
        let (s, read) = export(&data, &config, Reads::Cached(1 << 20)).unwrap();
        assert!(s.sessions_exported >= 20, "{s:?}");
        assert!(
            read <= store_bytes,
            "with a one-segment cache the export read {read} bytes of a {store_bytes}-byte \
             store for {} sessions",
            s.sessions_exported
        );
    }

    #[test]
    fn frames_parse_with_vlan_and_ipv6() {
        let mut f = frame([10, 0, 0, 5], 1, [10, 0, 0, 6], 2, 0);
        // Insert a VLAN tag.
        f.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
        let (proto, src, _, ports) =
            frame_tuple(kuroko_ring::format::LINKTYPE_ETHERNET, &f).unwrap();
        assert_eq!(
            (proto, src, ports),
            (6, "10.0.0.5".parse().unwrap(), Some((1, 2)))
        );
        let mut v6 = vec![0u8; 14 + 40 + 8];
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        v6[14] = 0x60;
        v6[14 + 6] = 17;
        v6[14 + 8 + 15] = 1;
        v6[14 + 24 + 15] = 2;
        v6[54..56].copy_from_slice(&53u16.to_be_bytes());
        v6[56..58].copy_from_slice(&5353u16.to_be_bytes());
        let (proto, src, dst, ports) =
            frame_tuple(kuroko_ring::format::LINKTYPE_ETHERNET, &v6).unwrap();
        assert_eq!(
            (proto, src, dst, ports),
            (
                17,
                "::1".parse().unwrap(),
                "::2".parse().unwrap(),
                Some((53, 5353))
            )
        );
        assert!(frame_tuple(kuroko_ring::format::LINKTYPE_ETHERNET, &[0u8; 5]).is_none());
        assert!(
            frame_tuple(kuroko_ring::format::LINKTYPE_ETHERNET, &[0u8; 60]).is_none(),
            "ethertype 0 is not IP"
        );
    }
}
