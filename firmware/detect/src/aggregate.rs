//! Aggregation: repeated events become one finding per (rule, client, server) with a
//! count, first/last seen, the first evidence sessions (capped, with where their packets
//! are), the peers on the aggregated side (capped) and the signals (capped). This is the
//! state the findings store persists; levels and wording are applied when rendering.

use crate::rules::Hit;
use kuroko_model::finding::Volume;
use kuroko_model::{SessionRecord, Timestamp};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Evidence sessions kept per finding (the contract: "the first ones, capped").
pub const MAX_EVIDENCE: usize = 32;
/// Peers listed per finding; more are counted in `peers_more`.
pub const MAX_PEERS: usize = 64;
/// Distinct signals kept per finding; more are counted in `signals_dropped`.
pub const MAX_SIGNALS: usize = 32;

/// A session that backs a finding, with what is needed to cut its packets out of the
/// segment store later (5-tuple, time range, segment span).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EvidenceRef {
    pub session: String,
    pub transport: String,
    pub client_ip: IpAddr,
    pub client_port: u16,
    pub server_ip: IpAddr,
    pub server_port: u16,
    pub start: Timestamp,
    pub end: Timestamp,
    pub first_segment: u64,
    pub last_segment: u64,
    /// What the session carried (for a finding's volume when it joins later, as an FTP
    /// data connection does); zero in state written by older firmware.
    #[serde(default)]
    pub volume: Volume,
}

impl EvidenceRef {
    pub fn of(s: &SessionRecord) -> EvidenceRef {
        EvidenceRef {
            session: s.id.clone(),
            transport: s.transport.clone(),
            client_ip: s.client.ip,
            client_port: s.client.port,
            server_ip: s.server.ip,
            server_port: s.server.port,
            start: s.start,
            end: s.end,
            first_segment: s.span.first_segment,
            last_segment: s.span.last_segment,
            volume: Volume::of(s),
        }
    }
}

/// One finding before rendering.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub rule: String,
    pub client: Option<IpAddr>,
    pub server: Option<IpAddr>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Sessions that showed the problem.
    pub count: u64,
    pub evidence: Vec<EvidenceRef>,
    #[serde(default)]
    pub peers: Vec<String>,
    /// Peer sightings beyond `MAX_PEERS` (not de-duplicated).
    #[serde(default)]
    pub peers_more: u64,
    #[serde(default)]
    pub signals: Vec<String>,
    #[serde(default)]
    pub signals_dropped: u64,
    /// The largest measured value (bytes), for rules that measure.
    #[serde(default)]
    pub max_metric: u64,
    /// Payload bytes of the sessions counted in `count`, client → server and back: the
    /// finding's volume (e.g. what a host exchanged with a listed address).
    #[serde(default)]
    pub bytes_up: u64,
    #[serde(default)]
    pub bytes_down: u64,
    /// Packets of the same sessions (with `bytes_*`, the finding's volume).
    #[serde(default)]
    pub packets_up: u64,
    #[serde(default)]
    pub packets_down: u64,
    /// Whether `bytes_*`/`packets_*` hold the finding's volume: not in state written by
    /// older firmware, until [`fill_missing_volumes`] counted it from the session log.
    #[serde(default)]
    pub volume_state: VolumeState,
}

/// Whether an aggregate's volume was counted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VolumeState {
    /// Stored by older firmware, which did not count volumes (the field is absent).
    #[default]
    NotCounted,
    /// Counted as the sessions came, or from the session log afterwards.
    Counted,
    /// Stored by older firmware, and its sessions could not all be read back.
    Unknown,
}

impl Aggregate {
    pub fn new(hit: &Hit, s: &SessionRecord) -> Aggregate {
        Aggregate {
            rule: hit.rule.as_str().to_string(),
            client: hit.client,
            server: hit.server,
            first_seen: s.start,
            last_seen: s.end.max(s.start),
            count: 0,
            evidence: Vec::new(),
            peers: Vec::new(),
            peers_more: 0,
            signals: Vec::new(),
            signals_dropped: 0,
            max_metric: 0,
            bytes_up: 0,
            bytes_down: 0,
            packets_up: 0,
            packets_down: 0,
            volume_state: VolumeState::Counted,
        }
    }

    /// Adds one session's hit (the caller merges several hits of one session first).
    pub fn add(&mut self, hit: &Hit, s: &SessionRecord) {
        self.count += 1;
        self.add_volume(&Volume::of(s));
        self.first_seen = self.first_seen.min(s.start);
        self.last_seen = self.last_seen.max(s.end.max(s.start));
        self.add_evidence(EvidenceRef::of(s));
        for e in &hit.earlier {
            self.add_evidence(e.clone());
        }
        if let Some(p) = &hit.peer
            && !self.peers.contains(p)
        {
            if self.peers.len() < MAX_PEERS {
                self.peers.push(p.clone());
            } else {
                self.peers_more += 1;
            }
        }
        for sig in &hit.signals {
            if !self.signals.contains(sig) {
                if self.signals.len() < MAX_SIGNALS {
                    self.signals.push(sig.clone());
                } else {
                    self.signals_dropped += 1;
                }
            }
        }
        if let Some(m) = hit.metric {
            self.max_metric = self.max_metric.max(m);
        }
    }

    /// Adds what one session carried to the finding's volume.
    fn add_volume(&mut self, v: &Volume) {
        self.bytes_up = self.bytes_up.saturating_add(v.bytes_up);
        self.bytes_down = self.bytes_down.saturating_add(v.bytes_down);
        self.packets_up = self.packets_up.saturating_add(v.packets_up);
        self.packets_down = self.packets_down.saturating_add(v.packets_down);
    }

    /// A session that joins the finding without being an event of its own (an FTP data
    /// connection of a control session that made it): its evidence (capped) and its
    /// volume (always, once).
    pub(crate) fn add_linked(&mut self, e: EvidenceRef) {
        if !self.evidence.iter().any(|x| x.session == e.session) {
            self.add_volume(&e.volume);
            self.add_evidence(e);
        }
    }

    /// The finding's volume ([`Volume::unknown`] when it was never counted).
    pub fn volume(&self) -> Volume {
        if self.volume_state != VolumeState::Counted {
            return Volume::unknown();
        }
        Volume {
            bytes_up: self.bytes_up,
            bytes_down: self.bytes_down,
            packets_up: self.packets_up,
            packets_down: self.packets_down,
            unknown: false,
        }
    }

    /// Adds an evidence session that is not an event of its own (an FTP data connection
    /// of a control session that made the finding); capped like the others.
    pub(crate) fn add_evidence(&mut self, e: EvidenceRef) {
        if self.evidence.len() < MAX_EVIDENCE
            && !self.evidence.iter().any(|x| x.session == e.session)
        {
            self.evidence.push(e);
        }
    }

    /// The stable finding id: derived from (rule, client, server) only, so the same
    /// problem keeps its id across restarts and re-analysis.
    pub fn id(&self) -> String {
        finding_id(&self.rule, self.client, self.server)
    }
}

/// What [`fill_missing_volumes`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VolumeMigration {
    /// Aggregates whose volume was counted from the session log.
    pub counted: usize,
    /// Aggregates whose volume stays unknown (sessions beyond the evidence cap, or no
    /// longer in the log).
    pub unknown: usize,
}

/// Findings stored by older firmware carry no volume (it read as 0): counts it from the
/// session log in `log_dir` when every session the finding counted is among its evidence
/// (none was dropped at the cap) and still in the log; else marks it unknown. Reads the
/// log only when some aggregate needs it.
pub fn fill_missing_volumes(
    aggregates: &mut [Aggregate],
    log_dir: &std::path::Path,
) -> VolumeMigration {
    use std::collections::HashMap;
    let mut done = VolumeMigration::default();
    let todo: Vec<usize> = (0..aggregates.len())
        .filter(|&i| aggregates[i].volume_state == VolumeState::NotCounted)
        .collect();
    if todo.is_empty() {
        return done;
    }
    // Every counted session is in the evidence only while the evidence was never full.
    let whole =
        |a: &Aggregate| a.evidence.len() < MAX_EVIDENCE && a.count as usize <= a.evidence.len();
    let mut wanted: HashMap<String, Option<Volume>> = HashMap::new();
    for &i in &todo {
        if whole(&aggregates[i]) {
            for e in &aggregates[i].evidence {
                wanted.insert(e.session.clone(), None);
            }
        }
    }
    if !wanted.is_empty()
        && let Ok(reader) = kuroko_model::sessionlog::SessionLogReader::open(log_dir)
        && let Ok(records) = reader.read_from(Default::default())
    {
        // The last record of a session is what it carried in the end.
        for (_, r) in records.flatten() {
            if let Some(v) = wanted.get_mut(&r.id) {
                *v = Some(Volume::of(&r));
            }
        }
    }
    for i in todo {
        let a = &mut aggregates[i];
        let found: Option<Vec<Volume>> = if whole(a) {
            a.evidence
                .iter()
                .map(|e| wanted.get(&e.session).copied().flatten())
                .collect()
        } else {
            None
        };
        match found {
            Some(vs) => {
                for (e, v) in a.evidence.iter_mut().zip(&vs) {
                    e.volume = *v;
                }
                a.volume_state = VolumeState::Counted;
                for v in &vs {
                    a.add_volume(v);
                }
                done.counted += 1;
            }
            None => {
                a.volume_state = VolumeState::Unknown;
                done.unknown += 1;
            }
        }
    }
    done
}

/// `F` + 16 hex digits of FNV-1a over `rule|client|server` (`*` for an aggregated side).
pub fn finding_id(rule: &str, client: Option<IpAddr>, server: Option<IpAddr>) -> String {
    let side = |ip: Option<IpAddr>| ip.map(|i| i.to_string()).unwrap_or_else(|| "*".into());
    let key = format!("{rule}|{}|{}", side(client), side(server));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("F{h:016x}")
}
