//! The analysis engine: packets in, session records out.
//!
//! One call per packet ([`Engine::packet`]): decode, defragment, find or create the flow,
//! count, reassemble TCP, identify the application protocol and feed its parser, and close
//! flows whose time is up. Closed sessions go to the caller's callback as [`Emitted`]. The
//! engine knows nothing of files on disk except the reconstruction store it is given, and
//! nothing of the segment store: the driver feeds it.
//!
//! Time is packet time (the newest timestamp seen), never the wall clock, so that
//! analysing a week-old pcap gives the same sessions as analysing it live.

use crate::app::{self, IDENTIFY_LIMIT, Ident};
use crate::community_id;
use crate::counters::Counters;
use crate::decode::{self, Body, DecodeError, Transport};
use crate::defrag::{Defragmenter, FragOutcome};
use crate::files::{FileStore, ObjectRecord, Put};
use crate::flow::{
    App, ControlLink, Flow, FlowKey, FtpData, LIST_CLOSING, LIST_OTHER, LIST_TCP, Pending,
};
use crate::position::PacketPos;
use crate::reassembly::{Chunk, OverlapPolicy};
use crate::table::{Slot, Table};
use kuroko_model::Timestamp;
use kuroko_model::session::{Endpoint, FileRef, Ftp, FtpFile, PacketSpan, SessionRecord};
use kuroko_protocols::{Direction, Expectation, ObjectMeta, Sink};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Default of `[analyzer] memory_budget`: memory out-of-order TCP data of all streams
/// together may hold (counted with each held segment's bookkeeping,
/// [`crate::reassembly::held_cost`]); beyond it, holes become gaps early (counted in
/// `memory_budget_drops`). Bounds reassembly memory whatever `max_flows` × `stream_buffer`
/// would allow.
pub const REASSEMBLY_BUDGET: usize = 256 << 20;
/// A flow whose close did not complete (FINs not both acknowledged), or a finished UDP
/// exchange, lingers this long for the last packets. A TCP close that completed (both FINs
/// acknowledged, or a reset) is emitted at once unless `[analyzer] close_linger` says
/// otherwise (then every close lingers that long).
pub const CLOSE_LINGER_NS: i64 = 5_000_000_000;
/// After a TCP flow closed and was emitted, packets of its 5-tuple that are not a new SYN
/// within this long of its last packet are late (a last ACK, a retransmitted FIN or RST):
/// counted in `late_packets_after_close`, not made into a session of their own.
pub const LATE_WINDOW_NS: i64 = 5_000_000_000;
/// Expected connections (FTP data channels) remembered at most.
pub const MAX_EXPECTATIONS: usize = 1024;
/// How long an expectation waits for its connection.
pub const EXPECTATION_TIMEOUT_NS: i64 = 300_000_000_000;

/// Analyzer settings (from `[analyzer]` and `[storage]` of the config).
#[derive(Clone, Debug)]
pub struct Settings {
    pub max_flows: usize,
    pub tcp_idle_ns: i64,
    pub udp_idle_ns: i64,
    pub active_ns: i64,
    pub stream_buffer: usize,
    /// `[analyzer] memory_budget`: held out-of-order TCP data of all streams, at cost.
    pub memory_budget: usize,
    pub max_object: usize,
    /// `[analyzer] tcp_overlap_policy`: which bytes win where held TCP segments overlap.
    pub overlap_policy: OverlapPolicy,
    /// `[analyzer] close_linger`: 0 emits a completed TCP close at once.
    pub close_linger_ns: i64,
    /// `[analyzer] open_record_after`: a flow open this long gets a provisional record
    /// (0: never).
    pub open_after_ns: i64,
    /// `[analyzer] open_record_every`: a provisional record is updated at most this often
    /// (and only when the flow saw packets since).
    pub open_every_ns: i64,
}

impl Settings {
    pub fn from_config(c: &kuroko_model::config::Config) -> Result<Settings, String> {
        use kuroko_model::units::{parse_bytes, parse_duration_secs};
        let a = &c.analyzer;
        let secs =
            |v: &str| parse_duration_secs(v).map(|s| (s as i64).saturating_mul(1_000_000_000));
        Ok(Settings {
            max_flows: a.max_flows.max(1) as usize,
            tcp_idle_ns: secs(&a.tcp_idle_timeout)?,
            udp_idle_ns: secs(&a.udp_idle_timeout)?,
            active_ns: secs(&a.active_timeout)?,
            stream_buffer: parse_bytes(&a.stream_buffer)? as usize,
            memory_budget: parse_bytes(&a.memory_budget)? as usize,
            max_object: parse_bytes(&a.max_object_size)? as usize,
            overlap_policy: OverlapPolicy::parse(&a.tcp_overlap_policy)?,
            close_linger_ns: secs(&a.close_linger)?,
            open_after_ns: secs(&a.open_record_after)?,
            open_every_ns: secs(&a.open_record_every)?,
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&kuroko_model::config::Config::default()).unwrap_or(Settings {
            max_flows: 262_144,
            tcp_idle_ns: 300_000_000_000,
            udp_idle_ns: 60_000_000_000,
            active_ns: 3_600_000_000_000,
            stream_buffer: 256 << 10,
            memory_budget: REASSEMBLY_BUDGET,
            max_object: 64 << 20,
            overlap_policy: OverlapPolicy::Linux,
            close_linger_ns: 0,
            open_after_ns: 5_000_000_000,
            open_every_ns: 30_000_000_000,
        })
    }
}

/// One packet as the engine needs it.
#[derive(Clone, Copy, Debug)]
pub struct PacketIn<'a> {
    pub pos: PacketPos,
    pub ts_ns: i64,
    pub iface: u16,
    /// pcap link type of the interface the packet was stored under (`data` starts with
    /// that link layer's header).
    pub linktype: u16,
    pub data: &'a [u8],
}

/// A closed session, with what the driver needs for exactly-once bookkeeping.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub record: SessionRecord,
    pub key: String,
    pub first: PacketPos,
    pub last: PacketPos,
    /// Time of the last packet of a TCP flow that ended by FIN or RST: its 5-tuple's late
    /// packets are dropped (counted) until [`LATE_WINDOW_NS`] after it, also on a replay.
    pub closed_ts: Option<i64>,
}

#[derive(Debug)]
struct Expect {
    e: Expectation,
    created: i64,
    control_session: String,
    control_slot: Slot,
}

pub struct Engine {
    settings: Settings,
    table: Table<FlowKey, Flow>,
    defrag: Defragmenter,
    expectations: VecDeque<Expect>,
    /// Data channels open now, by the address they were expected at.
    data_flows: HashMap<(IpAddr, u16), Slot>,
    files: Option<FileStore>,
    /// YARA on every stored object (none: no scanning).
    yara: Option<kuroko_yara::Scanner>,
    pub counters: Counters,
    /// Out-of-order bytes held by all streams (bounded by [`REASSEMBLY_BUDGET`]).
    held_total: usize,
    /// What the buffers of all flows hold ([`Flow::buffer_cost`]), at cost.
    buffered_total: usize,
    now: i64,
    /// Replay after a restart: packets of these flows up to the given position belong to
    /// sessions already emitted and are skipped.
    replay_skip: HashMap<String, PacketPos>,
    replay_until: PacketPos,
    /// Reused buffer for the session id handed to the parsers.
    session_scratch: String,
    /// Flows closed by FIN or RST (`FlowKey::text`) → until when their late packets are
    /// dropped; `late_order` expires them oldest first.
    late: HashMap<String, i64>,
    late_order: VecDeque<(i64, String)>,
}

impl Engine {
    pub fn new(settings: Settings, files: Option<FileStore>) -> Engine {
        Engine {
            table: Table::new(settings.max_flows),
            settings,
            defrag: Defragmenter::new(),
            expectations: VecDeque::new(),
            data_flows: HashMap::new(),
            files,
            yara: None,
            counters: Counters::default(),
            held_total: 0,
            buffered_total: 0,
            now: i64::MIN,
            replay_skip: HashMap::new(),
            replay_until: PacketPos::default(),
            session_scratch: String::new(),
            late: HashMap::new(),
            late_order: VecDeque::new(),
        }
    }

    /// Remembers that the flow `key` (`FlowKey::text`) closed by FIN or RST with its last
    /// packet at `last_ts`: until [`LATE_WINDOW_NS`] after it, packets of that 5-tuple other
    /// than a new SYN are late. The driver calls this for closes before a restart, so that a
    /// replay drops the same late packets the first run dropped.
    pub fn remember_closed(&mut self, key: String, last_ts: i64) {
        let until = last_ts.saturating_add(LATE_WINDOW_NS);
        while let Some((t, _)) = self.late_order.front() {
            if *t >= self.now && self.late_order.len() < self.settings.max_flows {
                break;
            }
            if let Some((t, k)) = self.late_order.pop_front()
                && self.late.get(&k) == Some(&t)
            {
                self.late.remove(&k);
            }
        }
        self.late.insert(key.clone(), until);
        self.late_order.push_back((until, key));
    }

    /// Skips, up to `until`, the packets of flows whose sessions were already emitted
    /// (`key` → last packet position of that session).
    pub fn set_replay_skip(&mut self, skip: HashMap<String, PacketPos>, until: PacketPos) {
        self.replay_skip = skip;
        self.replay_until = until;
    }

    /// Scans every object stored from now on with `scanner` (see [`crate::yara`]).
    pub fn set_yara(&mut self, scanner: Option<kuroko_yara::Scanner>) {
        self.yara = scanner;
    }

    /// The YARA rule set's state, when scanning is on.
    pub fn yara_state(&self) -> Option<&kuroko_yara::State> {
        self.yara.as_ref().map(|s| s.state())
    }

    /// Makes the reconstructed objects stored so far durable (before a checkpoint).
    pub fn sync_files(&mut self) -> std::io::Result<()> {
        match self.files.as_mut() {
            Some(f) => f.sync(),
            None => Ok(()),
        }
    }

    /// Memory held by out-of-order TCP data of all streams now (payload plus bookkeeping),
    /// bounded by `memory_budget`.
    pub fn reassembly_held(&self) -> usize {
        self.held_total
    }

    /// What the buffers of all open flows hold now (out-of-order segments, identification
    /// bytes, data channels), at their allocation's cost.
    pub fn flow_buffers(&self) -> usize {
        self.buffered_total
    }

    pub fn open_flows(&self) -> usize {
        self.table.len()
    }

    /// Newest packet time seen.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The store position from which a restart must replay: the origin of the oldest open
    /// flow. Flows already cut by the active timeout are re-based to their current record
    /// first, so that a days-long connection does not pin the replay point (see
    /// [`crate::driver`] for what that costs).
    pub fn restart_position(&mut self) -> Option<PacketPos> {
        let mut min: Option<PacketPos> = None;
        for slot in self.table.slots() {
            if let Some(f) = self.table.get_mut(slot) {
                f.origin = f.first;
                min = Some(min.map_or(f.origin, |m| m.min(f.origin)));
            }
        }
        min
    }

    /// One packet.
    pub fn packet(&mut self, p: PacketIn<'_>, out: &mut dyn FnMut(Emitted)) {
        self.counters.packets += 1;
        self.counters.bytes += p.data.len() as u64;
        if p.ts_ns > self.now {
            self.now = p.ts_ns;
            self.expire(out);
        }
        let pkt = match decode::decode_link(p.linktype, p.data) {
            Ok(pkt) => pkt,
            Err(DecodeError::NotIp) => {
                self.counters.non_ip_frames += 1;
                return;
            }
            Err(DecodeError::TunnelTooDeep) => {
                self.counters.tunnel_too_deep += 1;
                return;
            }
            Err(_) => {
                self.counters.decode_errors += 1;
                return;
            }
        };
        if pkt.tunnel.is_some() {
            self.counters.tunneled_packets += 1;
        }
        match pkt.body {
            Body::Transport(t) => self.transport(&p, &pkt, t, pkt.wire_payload_len, out),
            Body::Fragment(f) => {
                self.counters.ip_fragments += 1;
                let (outcome, lost) = self.defrag.add(p.ts_ns, pkt.src, pkt.dst, &f);
                self.counters.ip_fragments_dropped += lost;
                match outcome {
                    FragOutcome::Held => {}
                    FragOutcome::Dropped(n) => self.counters.ip_fragments_dropped += n,
                    FragOutcome::Overlap(n) => {
                        self.counters.ip_fragment_overlaps += 1;
                        self.counters.ip_fragments_dropped += n;
                    }
                    FragOutcome::Duplicate => self.counters.ip_fragment_duplicates += 1,
                    FragOutcome::Complete(buf) => {
                        self.counters.ip_datagrams_reassembled += 1;
                        let t = decode::transport_from_payload(f.proto, &buf);
                        let wire = decode::transport_wire_len(&t, buf.len(), buf.len());
                        self.transport(&p, &pkt, t, wire, out);
                    }
                }
            }
        }
    }

    fn transport(
        &mut self,
        p: &PacketIn<'_>,
        pkt: &decode::Packet<'_>,
        t: Transport<'_>,
        wire_len: usize,
        out: &mut dyn FnMut(Emitted),
    ) {
        let (proto, sport, dport, payload_len, transport_name) = match &t {
            Transport::Tcp(s) => (6u8, s.sport, s.dport, s.payload.len(), "tcp"),
            Transport::Udp {
                sport,
                dport,
                payload,
            } => (17, *sport, *dport, payload.len(), "udp"),
            Transport::Icmp {
                v6, payload_len, ..
            } => (
                if *v6 { 58 } else { 1 },
                0,
                0,
                *payload_len,
                if *v6 { "icmpv6" } else { "icmp" },
            ),
            Transport::Sctp {
                sport,
                dport,
                payload_len,
            } => (132, *sport, *dport, *payload_len, "sctp"),
            Transport::Other { proto, payload_len } => (*proto, 0, 0, *payload_len, ""),
        };
        let src = (pkt.src, sport);
        let dst = (pkt.dst, dport);
        let key = FlowKey::new(src, dst, proto);
        if !self.replay_skip.is_empty() && p.pos <= self.replay_until {
            let text = key.text();
            if self
                .replay_skip
                .get(&text)
                .is_some_and(|last| p.pos <= *last)
            {
                self.counters.packets_skipped_on_replay += 1;
                return;
            }
        }
        let tcp = match t {
            Transport::Tcp(s) => Some(s),
            _ => None,
        };
        // Find the flow, or start one.
        let mut slot = self.table.lookup(&key);
        if slot.is_none()
            && !self.late.is_empty()
            && let Some(seg) = &tcp
        {
            let text = key.text();
            if let Some(&until) = self.late.get(&text) {
                if (seg.syn && !seg.ack_flag) || p.ts_ns > until {
                    self.late.remove(&text);
                } else {
                    self.counters.late_packets_after_close += 1;
                    return;
                }
            }
        }
        // A SYN on a known flow. After a close (both FINs or a RST), the port is reused
        // for a new connection, as a Linux socket in TIME-WAIT takes a new SYN. Inside a
        // connection, Linux answers a SYN with a challenge ACK and ignores it (RFC 5961
        // §4): so do we, or a SYN with a far-away ISN would replace the flow and blind us
        // to the rest of the connection. Should the peer answer it with a SYN-ACK after
        // all (its side of the old connection was gone: a close we missed), that answer
        // starts the new flow.
        let mut ignore_segment = false;
        let mut accepted_syn: Option<u32> = None;
        if let (Some(s), Some(seg)) = (slot, tcp)
            && seg.syn
            && let Some(f) = self.table.get_mut(s)
        {
            let d = f.direction_of(src).index();
            let closing = f.list == LIST_CLOSING;
            if let Some(t) = f.tcp.as_mut() {
                if !seg.ack_flag && closing {
                    self.close(s, None, out);
                    slot = None;
                } else if !seg.ack_flag
                    && (t.isn[d].is_some_and(|isn| isn != seg.seq)
                        || (t.isn[d].is_none() && t.streams[d].started()))
                {
                    t.pending_syn = Some((d, seg.seq));
                    self.counters.tcp_syn_ignored += 1;
                    f.rec.flag("syn_in_connection");
                    ignore_segment = true;
                } else if seg.ack_flag
                    && let Some((syn_dir, isn)) = t.pending_syn
                    && syn_dir != d
                    && seg.ack == isn.wrapping_add(1)
                {
                    self.close(s, None, out);
                    slot = None;
                    accepted_syn = Some(isn);
                }
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                if self.table.is_full()
                    && let Some(victim) = self.table.oldest_any()
                {
                    self.counters.evicted_flows += 1;
                    self.close(victim, Some("evicted"), out);
                }
                let s = self.new_flow(p, pkt, key, src, dst, proto, transport_name, tcp.as_ref());
                if let Some(isn) = accepted_syn
                    && let Some(t) = self.table.get_mut(s).and_then(|f| f.tcp.as_mut())
                {
                    // The SYN this SYN-ACK answers came on the old flow: its ISN is the
                    // new client's.
                    t.streams[Direction::ToServer.index()].on_syn(isn);
                    t.isn[Direction::ToServer.index()] = Some(isn);
                }
                let ports = match t {
                    Transport::Icmp {
                        icmp_type,
                        icmp_code,
                        ..
                    } => community_id::Ports::Icmp {
                        icmp_type,
                        code: icmp_code,
                    },
                    Transport::Tcp(_) | Transport::Udp { .. } | Transport::Sctp { .. } => {
                        community_id::Ports::Ports(sport, dport)
                    }
                    Transport::Other { .. } => community_id::Ports::None,
                };
                if let Some(f) = self.table.get_mut(s) {
                    f.rec.community_id = community_id::community_id(
                        community_id::DEFAULT_SEED,
                        pkt.src,
                        pkt.dst,
                        proto,
                        ports,
                    );
                }
                s
            }
        };
        // Active timeout: cut long flows into several records.
        let cut = self
            .table
            .get(slot)
            .is_some_and(|f| p.ts_ns.saturating_sub(f.rec.start.nanos()) > self.settings.active_ns);
        if cut {
            self.counters.active_timeouts += 1;
            self.cut(slot, p, out);
        }
        let Some(flow) = self.table.get_mut(slot) else {
            return;
        };
        let dir = flow.direction_of(src);
        let rec = &mut flow.rec;
        rec.end = Timestamp::from_nanos(p.ts_ns.max(rec.end.nanos()));
        rec.packets += 1;
        // Sizes are what crossed the wire (IP lengths); what the snap length let us keep is
        // counted beside them.
        rec.captured_bytes += payload_len as u64;
        let side = match dir {
            Direction::ToServer => {
                rec.packets_up += 1;
                rec.bytes_up += wire_len as u64;
                &mut rec.client
            }
            Direction::ToClient => {
                rec.packets_down += 1;
                rec.bytes_down += wire_len as u64;
                &mut rec.server
            }
        };
        if side.mac.is_none()
            && let Some(m) = pkt.src_mac
        {
            side.mac = Some(decode::mac_string(m));
        }
        if pkt.truncated {
            rec.flag("truncated");
        }
        rec.span.last_segment = p.pos.seq;
        flow.last = p.pos;
        flow.last_ts = p.ts_ns.max(flow.last_ts);
        let mut list = flow.list;
        let mut close_now = false;
        match t {
            Transport::Tcp(_) if ignore_segment => {}
            Transport::Tcp(seg) => {
                let limit = self.settings.stream_buffer;
                let max_object = self.settings.max_object;
                let d = dir.index();
                let tcp = flow.tcp.get_or_insert_with(Default::default);
                if seg.syn {
                    tcp.streams[d].on_syn(seg.seq);
                    tcp.isn[d].get_or_insert(seg.seq);
                    if !seg.payload.is_empty() {
                        flow.rec.flag("tcp_fast_open");
                    }
                }
                if !seg.payload.is_empty() {
                    let buffered_before = flow.buffer_cost();
                    // The session id is lent to the parsers through a reused buffer: no
                    // allocation per packet.
                    let mut session = std::mem::take(&mut self.session_scratch);
                    session.clear();
                    session.push_str(&flow.rec.id);
                    let client_port = flow.client.1;
                    let server_port = server_port_of(flow);
                    let tcp = flow.tcp.get_or_insert_with(Default::default);
                    let mut ctx = Ctx {
                        files: self.files.as_mut(),
                        yara: self.yara.as_mut(),
                        annotation: None,
                        counters: &mut self.counters,
                        expects: Vec::new(),
                        max_object,
                        session: &session,
                    };
                    let app = &mut flow.app;
                    let rec = &mut flow.rec;
                    let held_before = tcp.streams[d].held_bytes();
                    let dropped_before = tcp.streams[d].stats.ooo_dropped;
                    let conflicts_before = tcp.streams[d].stats.overlap_conflicts;
                    let policy = self.settings.overlap_policy;
                    let room =
                        self.settings.memory_budget.saturating_sub(self.held_total) + held_before;
                    let budget_bound = room < limit;
                    let limit = limit.min(room);
                    // Data in a SYN or SYN-ACK (TCP Fast Open, RFC 7413) starts after the
                    // sequence number the SYN itself takes.
                    let data_seq = seg.seq.wrapping_add(u32::from(seg.syn));
                    tcp.streams[d].segment(data_seq, seg.payload, limit, policy, &mut |c| {
                        feed_tcp(
                            app,
                            rec,
                            dir,
                            c,
                            p.ts_ns,
                            client_port,
                            server_port,
                            &mut ctx,
                        );
                    });
                    let expects = std::mem::take(&mut ctx.expects);
                    drop(ctx);
                    if tcp.streams[d].stats.overlap_conflicts > conflicts_before {
                        // Overlapping bytes differed: the policy chose what this session
                        // says (an evasion signature).
                        flow.rec.flag("overlap_conflict");
                    }
                    self.held_total =
                        (self.held_total + tcp.streams[d].held_bytes()).saturating_sub(held_before);
                    if budget_bound {
                        // Holes given up because all streams together hit the budget, not
                        // because this one's buffer was full.
                        self.counters.memory_budget_drops +=
                            tcp.streams[d].stats.ooo_dropped - dropped_before;
                    }
                    self.counters.reassembly_peak_bytes = self
                        .counters
                        .reassembly_peak_bytes
                        .max(self.held_total as u64);
                    self.buffered_total =
                        (self.buffered_total + flow.buffer_cost()).saturating_sub(buffered_before);
                    self.counters.flow_buffers_peak_bytes = self
                        .counters
                        .flow_buffers_peak_bytes
                        .max(self.buffered_total as u64);
                    if !expects.is_empty() {
                        self.add_expectations(expects, session.clone(), slot, p.ts_ns);
                    }
                    self.session_scratch = session;
                }
                let Some(flow) = self.table.get_mut(slot) else {
                    return;
                };
                let tcp = flow.tcp.get_or_insert_with(Default::default);
                if seg.fin {
                    tcp.fin[d] = true;
                    tcp.fin_ack[d] = Some(
                        seg.seq
                            .wrapping_add(seg.payload.len() as u32)
                            .wrapping_add(1 + u32::from(seg.syn)),
                    );
                }
                if seg.ack_flag
                    && let Some(a) = tcp.fin_ack[1 - d]
                    && (seg.ack.wrapping_sub(a) as i32) >= 0
                {
                    tcp.fin_acked[1 - d] = true;
                }
                if seg.rst {
                    // Linux takes a RST only at exactly the next expected sequence number
                    // (RFC 5961 §3.2; after a FIN, the number after it) and ignores any
                    // other: so a forged RST cannot end the session early for us alone.
                    let s = &tcp.streams[d];
                    if s.accepts_rst(seg.seq) || tcp.fin_ack[d] == Some(seg.seq) {
                        tcp.rst = true;
                    } else {
                        self.counters.tcp_rst_ignored += 1;
                        flow.rec.flag("rst_ignored");
                    }
                }
                if tcp.rst || (tcp.fin[0] && tcp.fin[1]) {
                    list = LIST_CLOSING;
                }
                close_now = tcp.closed() && self.settings.close_linger_ns == 0;
            }
            Transport::Udp { payload, .. } => {
                let max_object = self.settings.max_object;
                let mut session = std::mem::take(&mut self.session_scratch);
                session.clear();
                session.push_str(&flow.rec.id);
                let mut ctx = Ctx {
                    files: self.files.as_mut(),
                    yara: self.yara.as_mut(),
                    annotation: None,
                    counters: &mut self.counters,
                    expects: Vec::new(),
                    max_object,
                    session: &session,
                };
                if let App::Undecided(_) = flow.app {
                    let (cp, sp) = (flow.client.1, server_port_of(flow));
                    flow.app = App::None;
                    if let Some(label) = app::identify_udp(cp, sp, payload) {
                        flow.rec.protocol = label.to_string();
                        if let Some(parser) = app::datagram_parser(label) {
                            flow.app = App::Datagram(parser);
                        }
                    }
                }
                if let App::Datagram(parser) = &mut flow.app {
                    parser.on_datagram(dir, payload, p.ts_ns, &mut flow.rec, &mut ctx);
                    // A finished exchange (a DNS lookup answered) lingers like a closed
                    // TCP flow; a new request on it brings it back to the idle timeout.
                    if parser.finished() {
                        list = LIST_CLOSING;
                    } else if list == LIST_CLOSING {
                        list = LIST_OTHER;
                    }
                }
                drop(ctx);
                self.session_scratch = session;
            }
            _ => {}
        }
        if let Some(f) = self.table.get_mut(slot) {
            f.list = list;
        }
        self.table.touch(slot, list, p.ts_ns);
        if close_now {
            // Emit on close: the record is complete; later stragglers are counted as late.
            self.close(slot, None, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_flow(
        &mut self,
        p: &PacketIn<'_>,
        pkt: &decode::Packet<'_>,
        key: FlowKey,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        proto: u8,
        transport_name: &str,
        tcp: Option<&decode::TcpSeg<'_>>,
    ) -> Slot {
        self.counters.flows_created += 1;
        let mut midstream = false;
        let src_is_client = match tcp {
            Some(s) if s.syn && !s.ack_flag => true,
            Some(s) if s.syn && s.ack_flag => false,
            Some(_) => {
                midstream = true;
                !looks_like_server(src.1, dst.1, "tcp")
            }
            None if proto == 17 => !looks_like_server(src.1, dst.1, "udp"),
            None => true,
        };
        let (client, server) = if src_is_client {
            (src, dst)
        } else {
            (dst, src)
        };
        let transport = if transport_name.is_empty() {
            format!("ip-{proto}")
        } else {
            transport_name.to_string()
        };
        let mut rec = SessionRecord::new(
            p.pos.session_id(),
            Timestamp::from_nanos(p.ts_ns),
            &transport,
            Endpoint::new(client.0, client.1),
            Endpoint::new(server.0, server.1),
        );
        rec.vlan = pkt.vlan;
        rec.iface = p.iface;
        rec.span = PacketSpan {
            first_segment: p.pos.seq,
            last_segment: p.pos.seq,
        };
        if let Some(kind) = pkt.tunnel {
            rec.flag(&format!("tunnel:{kind}"));
        }
        if midstream {
            rec.flag("midstream");
        }
        let mut app = match proto {
            6 | 17 => App::Undecided(Pending::default()),
            _ => App::None,
        };
        let mut control = None;
        if proto == 6
            && let Some(e) = self.take_expectation(client.0, server.0, server.1, p.ts_ns)
        {
            self.counters.expectations_matched += 1;
            rec.protocol = e.e.protocol.to_string();
            rec.ftp = Some(Ftp {
                control_session: Some(e.control_session.clone()),
                ..Ftp::default()
            });
            app = match app::stream_parser_for_expectation(&e.e) {
                Some(parser) => App::Stream(parser),
                None => App::FtpData(Box::new(FtpData {
                    file_name: e.e.file_name.clone(),
                    direction: e.e.direction,
                    ..FtpData::default()
                })),
            };
            control = Some(ControlLink {
                slot: e.control_slot,
                session: e.control_session,
                expected: (server.0, server.1),
            });
        }
        let list = if proto == 6 { LIST_TCP } else { LIST_OTHER };
        let flow = Flow {
            key: key.clone(),
            client,
            rec,
            origin: p.pos,
            first: p.pos,
            last: p.pos,
            last_ts: p.ts_ns,
            list,
            tcp: (proto == 6).then(Default::default),
            app,
            control: control.clone(),
            missing_reported: 0,
            provisional_at: None,
            provisional_packets: 0,
        };
        let slot = self.table.insert(key, flow, list, p.ts_ns);
        if let Some(c) = control {
            self.data_flows.insert(c.expected, slot);
        }
        slot
    }

    fn add_expectations(
        &mut self,
        expects: Vec<Expectation>,
        control: String,
        slot: Slot,
        ts: i64,
    ) {
        // The control connection's endpoints: an announced data address must be one of
        // them, or a PASV/PORT reply naming any address would turn an unrelated later
        // connection into a data channel (no parsing of what it really carries).
        let endpoints = self.table.get(slot).map(|f| {
            let server = if f.key.lo == f.client {
                f.key.hi.0
            } else {
                f.key.lo.0
            };
            (f.client.0, server)
        });
        for mut e in expects {
            if let Some((client, server)) = endpoints
                && e.server != client
                && e.server != server
            {
                self.counters.expectations_foreign_address += 1;
                if let Some(f) = self.table.get_mut(slot) {
                    f.rec.flag("foreign_data_address");
                }
                if e.client == Some(client) {
                    // Passive mode: clients connect to the control connection's server
                    // whatever address the reply names (curl, ftplib, browsers), so
                    // expect it there.
                    e.server = server;
                } else {
                    // Active mode: the server would connect to a third party (FTP
                    // bounce); servers refuse that, and so do we.
                    continue;
                }
            }
            self.counters.expectations_added += 1;
            let at = (e.server, e.server_port);
            // Already connected: the data channel's parser learns the new details.
            if let Some(&data_slot) = self.data_flows.get(&at)
                && let Some(f) = self.table.get_mut(data_slot)
                && f.control.as_ref().is_some_and(|c| c.session == control)
            {
                match &mut f.app {
                    App::Stream(parser) => parser.on_expectation_update(&e),
                    App::FtpData(d) => {
                        if e.file_name.is_some() {
                            d.file_name.clone_from(&e.file_name);
                        }
                        d.direction = e.direction.or(d.direction);
                    }
                    _ => {}
                }
                continue;
            }
            // A newer announcement of the same address replaces the older one.
            self.expectations
                .retain(|x| (x.e.server, x.e.server_port) != at || x.control_session != control);
            if self.expectations.len() >= MAX_EXPECTATIONS {
                self.expectations.pop_front();
                self.counters.expectations_dropped += 1;
            }
            self.expectations.push_back(Expect {
                e,
                created: ts,
                control_session: control.clone(),
                control_slot: slot,
            });
        }
    }

    fn take_expectation(
        &mut self,
        client: IpAddr,
        server: IpAddr,
        port: u16,
        now: i64,
    ) -> Option<Expect> {
        while let Some(front) = self.expectations.front() {
            if now.saturating_sub(front.created) > EXPECTATION_TIMEOUT_NS {
                self.expectations.pop_front();
                self.counters.expectations_dropped += 1;
            } else {
                break;
            }
        }
        let i = self.expectations.iter().rposition(|x| {
            x.e.server == server
                && x.e.server_port == port
                && x.e.client.is_none_or(|c| c == client)
        })?;
        self.expectations.remove(i)
    }

    /// Closes flows whose idle (or linger) time is up, relative to the newest packet.
    fn expire(&mut self, out: &mut dyn FnMut(Emitted)) {
        let timeouts = [
            (LIST_TCP, self.settings.tcp_idle_ns, true),
            (LIST_OTHER, self.settings.udp_idle_ns, true),
            (
                LIST_CLOSING,
                if self.settings.close_linger_ns > 0 {
                    self.settings.close_linger_ns
                } else {
                    CLOSE_LINGER_NS
                },
                false,
            ),
        ];
        for (list, timeout, idle) in timeouts {
            while let Some((slot, last)) = self.table.oldest(list) {
                if self.now.saturating_sub(last) <= timeout {
                    break;
                }
                if idle {
                    self.counters.idle_timeouts += 1;
                }
                self.close(slot, idle.then_some("timeout"), out);
            }
        }
    }

    /// Closes flows idle longer than their timeout at `now_ns` (used at the end of a run).
    pub fn expire_at(&mut self, now_ns: i64, out: &mut dyn FnMut(Emitted)) {
        if now_ns > self.now {
            self.now = now_ns;
        }
        self.expire(out);
    }

    /// Provisional records (issue 15): every flow open for `open_record_after` at `now_ns`
    /// whose last provisional record is older than `open_record_every` (or that has none)
    /// and that saw packets since, is emitted as it stands with `open: true`. The flow goes
    /// on; its final record (same id) replaces the provisional one downstream. Returns how
    /// many were emitted. Follow mode only (an import has no use for them).
    pub fn provisional(&mut self, now_ns: i64, out: &mut dyn FnMut(Emitted)) -> u64 {
        if self.settings.open_after_ns <= 0 {
            return 0;
        }
        let mut n = 0;
        for slot in self.table.slots() {
            let Some(f) = self.table.get_mut(slot) else {
                continue;
            };
            if f.list == LIST_CLOSING
                || now_ns.saturating_sub(f.rec.start.nanos()) < self.settings.open_after_ns
                || f.provisional_at.is_some_and(|t| {
                    now_ns.saturating_sub(t) < self.settings.open_every_ns
                        || f.rec.packets == f.provisional_packets
                })
            {
                continue;
            }
            f.provisional_at = Some(now_ns);
            f.provisional_packets = f.rec.packets;
            let mut record = f.rec.clone();
            record.open = true;
            // Identification may still wait for more bytes: label the provisional record
            // with what the bytes so far and the ports say (as a close would), without
            // deciding for the flow.
            if let App::Undecided(pending) = &f.app {
                let server_port = server_port_of(f);
                let up = pending.joined(Direction::ToServer);
                let down = pending.joined(Direction::ToClient);
                if let Ident::Known(label) =
                    app::identify_tcp_final(f.client.1, server_port, &up, &down)
                {
                    record.protocol = label.to_string();
                }
            }
            n += 1;
            out(Emitted {
                record,
                key: f.key.text(),
                first: f.first,
                last: f.last,
                closed_ts: None,
            });
        }
        self.counters.provisional_records += n;
        n
    }

    /// Closes every open flow with `flag` (end of input).
    pub fn close_all(&mut self, flag: &str, out: &mut dyn FnMut(Emitted)) {
        // Data channels first, so that their control sessions are still open to be linked.
        let mut slots: Vec<(bool, PacketPos, Slot)> = self
            .table
            .slots()
            .into_iter()
            .filter_map(|s| self.table.get(s).map(|f| (f.control.is_none(), f.first, s)))
            .collect();
        slots.sort_unstable();
        for (_, _, s) in slots {
            self.close(s, Some(flag), out);
        }
    }

    /// Active timeout: emit what we have and continue the flow in a new record.
    fn cut(&mut self, slot: Slot, p: &PacketIn<'_>, out: &mut dyn FnMut(Emitted)) {
        let Some(f) = self.table.get_mut(slot) else {
            return;
        };
        let mut next = SessionRecord::new(
            p.pos.session_id(),
            Timestamp::from_nanos(p.ts_ns),
            &f.rec.transport,
            Endpoint {
                mac: None,
                ..f.rec.client.clone()
            },
            Endpoint {
                mac: None,
                ..f.rec.server.clone()
            },
        );
        next.protocol = f.rec.protocol.clone();
        next.vlan = f.rec.vlan;
        next.iface = f.rec.iface;
        next.community_id = f.rec.community_id.clone();
        next.span = PacketSpan {
            first_segment: p.pos.seq,
            last_segment: p.pos.seq,
        };
        next.flag("continued");
        let mut done = std::mem::replace(&mut f.rec, next);
        done.flag("active_timeout");
        if let Some(t) = &f.tcp {
            let total = t.streams[0].stats.missing_bytes + t.streams[1].stats.missing_bytes;
            done.missing_bytes = total.saturating_sub(f.missing_reported);
            f.missing_reported = total;
            if done.missing_bytes > 0 {
                done.flag("gap");
            }
        }
        let e = Emitted {
            record: done,
            key: f.key.text(),
            first: f.first,
            last: f.last,
            closed_ts: None,
        };
        f.first = p.pos;
        // The continuation is a new session: its own provisional records.
        f.provisional_at = None;
        self.counters.sessions_emitted += 1;
        out(e);
    }

    /// Ends a flow: flush reassembly and parser, link FTP data, emit.
    fn close(&mut self, slot: Slot, flag: Option<&str>, out: &mut dyn FnMut(Emitted)) {
        let key = match self.table.get(slot) {
            Some(f) => f.key.clone(),
            None => return,
        };
        let Some(mut f) = self.table.remove(slot, &key) else {
            return;
        };
        self.buffered_total = self.buffered_total.saturating_sub(f.buffer_cost());
        let session = f.rec.id.clone();
        let mut ctx = Ctx {
            files: self.files.as_mut(),
            yara: self.yara.as_mut(),
            annotation: None,
            counters: &mut self.counters,
            expects: Vec::new(),
            max_object: self.settings.max_object,
            session: &session,
        };
        let client_port = f.client.1;
        let server_port = server_port_of(&f);
        if let Some(tcp) = f.tcp.as_mut() {
            let held: usize = tcp.streams.iter().map(|s| s.held_bytes()).sum();
            self.held_total = self.held_total.saturating_sub(held);
            for dir in [Direction::ToServer, Direction::ToClient] {
                let app = &mut f.app;
                let rec = &mut f.rec;
                tcp.streams[dir.index()].finish(&mut |c| {
                    feed_tcp(app, rec, dir, c, 0, client_port, server_port, &mut ctx);
                });
            }
            let mut missing = 0;
            for s in &tcp.streams {
                ctx.counters.tcp_retransmissions += s.stats.retransmissions;
                ctx.counters.tcp_overlaps += s.stats.overlaps;
                ctx.counters.tcp_overlap_conflicts += s.stats.overlap_conflicts;
                ctx.counters.tcp_gaps += s.stats.gaps;
                ctx.counters.tcp_missing_bytes += s.stats.missing_bytes;
                ctx.counters.ooo_dropped += s.stats.ooo_dropped;
                missing += s.stats.missing_bytes;
            }
            f.rec.missing_bytes = missing.saturating_sub(f.missing_reported);
            if f.rec.missing_bytes > 0 {
                f.rec.flag("gap");
            }
            if tcp.rst {
                f.rec.flag("rst");
            }
        }
        // Undecided to the end: decide on what we have.
        let app = match std::mem::replace(&mut f.app, App::None) {
            App::Undecided(pending) => decide(
                &mut f.rec,
                pending,
                client_port,
                server_port,
                true,
                &mut ctx,
            ),
            other => other,
        };
        match app {
            App::Stream(mut parser) => parser.on_close(&mut f.rec, &mut ctx),
            App::Datagram(mut parser) => parser.on_close(&mut f.rec, &mut ctx),
            App::FtpData(data) => finish_ftp_data(*data, &mut f.rec, &mut ctx),
            App::Undecided(_) | App::None => {}
        }
        if let Some(flag) = flag {
            f.rec.flag(flag);
        }
        if let Some(c) = &f.control {
            if self.data_flows.get(&c.expected) == Some(&slot) {
                self.data_flows.remove(&c.expected);
            }
            let file = f.rec.ftp.as_ref().and_then(|x| x.files.last()).cloned();
            if let Some(file) = file {
                self.link_ftp_file(c.slot, &c.session, file);
            }
        }
        // A TCP flow that ended by FIN or RST (not by a timeout, eviction or the end of
        // the input): its stragglers are late packets, not a new session.
        let closed_ts = (flag.is_none()
            && f.tcp
                .as_ref()
                .is_some_and(|t| t.rst || (t.fin[0] && t.fin[1])))
        .then_some(f.last_ts);
        let key = key.text();
        if let Some(ts) = closed_ts {
            self.remember_closed(key.clone(), ts);
        }
        self.counters.sessions_emitted += 1;
        out(Emitted {
            record: f.rec,
            key,
            first: f.first,
            last: f.last,
            closed_ts,
        });
    }

    /// Records a finished FTP transfer on the control session, if it is still open.
    fn link_ftp_file(&mut self, slot: Slot, control_id: &str, file: FtpFile) {
        let Some(c) = self.table.get_mut(slot) else {
            return;
        };
        if c.rec.id != control_id {
            return;
        }
        let ftp = c.rec.ftp.get_or_insert_with(Ftp::default);
        if let Some(entry) = ftp
            .files
            .iter_mut()
            .find(|e| e.sha256.is_none() && (e.name == file.name || file.name.is_empty()))
        {
            entry.bytes = file.bytes;
            entry.sha256 = file.sha256;
            entry.yara = file.yara;
            entry.yara_level = file.yara_level;
            if entry.direction.is_empty() {
                entry.direction = file.direction;
            }
        } else if ftp.files.len() < kuroko_model::session::MAX_LIST_LEN {
            ftp.files.push(file);
        }
    }
}

fn server_port_of(f: &Flow) -> u16 {
    if f.key.lo == f.client {
        f.key.hi.1
    } else {
        f.key.lo.1
    }
}

/// Port heuristic for flows whose first packet is not a SYN: is `src_port` the server?
fn looks_like_server(src_port: u16, dst_port: u16, transport: &str) -> bool {
    let src_known = app::port_label(transport, src_port).is_some();
    let dst_known = app::port_label(transport, dst_port).is_some();
    match (src_known, dst_known) {
        (true, false) => true,
        (false, true) => false,
        _ => src_port < dst_port && src_port < 1024,
    }
}

/// What a parser's `Sink` writes into: the reconstruction store and the expectation list.
struct Ctx<'a> {
    files: Option<&'a mut FileStore>,
    yara: Option<&'a mut kuroko_yara::Scanner>,
    /// The YARA verdict of the object `object` stored last, for `annotate`.
    annotation: Option<crate::yara::Verdict>,
    counters: &'a mut Counters,
    expects: Vec<Expectation>,
    max_object: usize,
    session: &'a str,
}

impl Sink for Ctx<'_> {
    fn object(&mut self, meta: ObjectMeta, bytes: &[u8]) -> Option<String> {
        let mut partial = meta.partial;
        let bytes = if bytes.len() > self.max_object {
            self.counters.objects_truncated += 1;
            partial = true;
            &bytes[..self.max_object]
        } else {
            bytes
        };
        let direction = match meta.direction {
            Some(Direction::ToServer) => "upload",
            Some(Direction::ToClient) => "download",
            None => "",
        };
        let ext = if meta.kind == "mail" { "eml" } else { "bin" };
        let store = self.files.as_deref_mut()?;
        let sha = crate::files::digest(bytes);
        let verdict = match self.yara.as_deref_mut() {
            Some(scanner) => crate::yara::scan(scanner, self.counters, &sha, bytes),
            None => crate::yara::Verdict::default(),
        };
        let record = ObjectRecord {
            sha256: "",
            ext: "",
            name: meta.name.as_deref(),
            content_type: meta.content_type.as_deref(),
            size: bytes.len() as u64,
            direction,
            session: self.session,
            kind: meta.kind,
            partial,
            yara: &verdict.rules,
        };
        let stored = store.put_digest(sha, bytes, ext, record);
        self.annotation = Some(verdict);
        let sha = match stored {
            Ok((sha, Put::Stored { evicted })) => {
                self.counters.files_stored += 1;
                self.counters.files_evicted += evicted;
                sha
            }
            Ok((sha, Put::AlreadyPresent)) => {
                self.counters.files_deduplicated += 1;
                sha
            }
            Err(_) => {
                self.counters.files_write_errors += 1;
                return None;
            }
        };
        Some(sha)
    }

    fn annotate(&mut self, file: &mut FileRef) {
        if let Some(v) = self.annotation.take() {
            v.apply(file);
        }
    }

    fn expect(&mut self, expectation: Expectation) {
        if self.expects.len() < MAX_EXPECTATIONS {
            self.expects.push(expectation);
        }
    }
}

/// Feeds one reassembled chunk to the application layer of a TCP flow.
#[allow(clippy::too_many_arguments)]
fn feed_tcp(
    app: &mut App,
    rec: &mut SessionRecord,
    dir: Direction,
    chunk: Chunk<'_>,
    ts_ns: i64,
    client_port: u16,
    server_port: u16,
    ctx: &mut Ctx<'_>,
) {
    match app {
        App::Stream(parser) => match chunk {
            Chunk::Data(d) => parser.on_data(dir, &d, ts_ns, rec, ctx),
            Chunk::Gap(n) => parser.on_gap(dir, n, rec),
        },
        App::FtpData(data) => match chunk {
            Chunk::Data(d) => {
                let i = dir.index();
                data.total[i] += d.len() as u64;
                // Both directions together hold at most one object: a transfer runs one
                // way, and two full buffers would hold twice the object limit.
                let room = ctx
                    .max_object
                    .saturating_sub(data.bytes[0].len() + data.bytes[1].len());
                if d.len() > room {
                    data.truncated = true;
                }
                data.bytes[i].extend_from_slice(&d[..d.len().min(room)]);
            }
            Chunk::Gap(n) => {
                data.gap = true;
                data.total[dir.index()] += n;
            }
        },
        App::Undecided(pending) => {
            match chunk {
                Chunk::Data(d) => {
                    let i = dir.index();
                    let room = IDENTIFY_LIMIT.saturating_sub(pending.len[i]);
                    let take = d.len().min(room);
                    if take > 0 {
                        pending.push(dir, &d[..take]);
                    }
                    let rest = d[take..].to_vec();
                    let full = pending.full(dir);
                    let p = std::mem::take(pending);
                    let next = decide(rec, p, client_port, server_port, full, ctx);
                    *app = next;
                    if !rest.is_empty() {
                        match app {
                            App::Undecided(p) => {
                                // Still undecided after the limit: cannot happen (decide
                                // gives up when full); keep the bytes bounded anyway.
                                let _ = p;
                            }
                            other => feed_tcp(
                                other,
                                rec,
                                dir,
                                Chunk::Data(rest.into()),
                                ts_ns,
                                client_port,
                                server_port,
                                ctx,
                            ),
                        }
                    }
                }
                Chunk::Gap(n) => {
                    pending.gaps.push((dir, n));
                    let p = std::mem::take(pending);
                    *app = decide(rec, p, client_port, server_port, true, ctx);
                    if let App::Stream(parser) = app {
                        parser.on_gap(dir, n, rec);
                    }
                }
            }
        }
        App::Datagram(_) | App::None => {}
    }
}

/// Runs identification on the pending bytes. With `final_call`, never stays undecided.
fn decide(
    rec: &mut SessionRecord,
    pending: Pending,
    client_port: u16,
    server_port: u16,
    final_call: bool,
    ctx: &mut Ctx<'_>,
) -> App {
    let up = pending.joined(Direction::ToServer);
    let down = pending.joined(Direction::ToClient);
    let ident = match app::identify_tcp(client_port, server_port, &up, &down) {
        Ident::NeedMore if !final_call => return App::Undecided(pending),
        Ident::NeedMore => {
            if pending.len[0] > 0 || pending.len[1] > 0 {
                ctx.counters.identify_gave_up += 1;
            }
            app::identify_tcp_final(client_port, server_port, &up, &down)
        }
        other => other,
    };
    let Ident::Known(label) = ident else {
        return App::None;
    };
    rec.protocol = label.to_string();
    let Some(mut parser) = app::stream_parser(label) else {
        return App::None;
    };
    // Replay what was buffered, in arrival order; gaps seen while undecided come first
    // only if no bytes preceded them (they are rare before identification).
    for (dir, n) in &pending.gaps {
        parser.on_gap(*dir, *n, rec);
    }
    for (dir, chunk) in &pending.chunks {
        parser.on_data(*dir, chunk, rec.start.nanos(), rec, ctx);
    }
    App::Stream(parser)
}

/// Stores an FTP data channel's bytes; returns the link to write on the control session.
fn finish_ftp_data(data: FtpData, rec: &mut SessionRecord, ctx: &mut Ctx<'_>) {
    // The transfer runs in one direction; take the one that carried bytes.
    let i = if data.total[1] >= data.total[0] { 1 } else { 0 };
    let dir = data.direction.unwrap_or(if i == 0 {
        Direction::ToServer
    } else {
        Direction::ToClient
    });
    let total = data.total[i];
    let direction = match dir {
        Direction::ToServer => "upload",
        Direction::ToClient => "download",
    };
    let partial = data.truncated || data.gap;
    let sha = if total > 0 {
        let meta = ObjectMeta {
            name: data.file_name.clone(),
            content_type: None,
            kind: "ftp",
            direction: Some(dir),
            partial,
        };
        ctx.object(meta, &data.bytes[i])
    } else {
        None
    };
    let mut verdict = (Vec::new(), None);
    if let Some(sha) = &sha
        && rec.files.len() < kuroko_model::session::MAX_LIST_LEN
    {
        let mut file = FileRef {
            sha256: sha.clone(),
            name: data.file_name.clone(),
            content_type: None,
            bytes: data.bytes[i].len() as u64,
            direction: direction.into(),
            kind: "ftp".into(),
            partial,
            ..Default::default()
        };
        ctx.annotate(&mut file);
        verdict = (file.yara.clone(), file.yara_level.clone());
        rec.files.push(file);
    }
    // The YARA verdict goes with the link to the control session (`link_ftp_file`).
    let file = FtpFile {
        name: data.file_name.unwrap_or_default(),
        direction: direction.into(),
        bytes: total,
        sha256: sha,
        yara: verdict.0,
        yara_level: verdict.1,
    };
    rec.ftp.get_or_insert_with(Ftp::default).files.push(file);
}
