//! Per-flow DNS state, for UDP datagrams and TCP streams.

use super::parser::{Message, parse, rcode_name, type_name};
use crate::util::{push_capped, text_str};
use crate::{DatagramParser, Direction, Sink, StreamParser};
use kuroko_model::session::SessionRecord;

/// Largest DNS-over-TCP message (the length prefix is 16 bits).
pub const MAX_TCP_MESSAGE: usize = 65535;

/// Adds one decoded message to `rec.dns` (the first question is the query; responses add
/// their rcode and answers).
pub(crate) fn record_message(m: &Message, rec: &mut SessionRecord) {
    let mut dns = rec.dns.take().unwrap_or_default();
    for (name, qtype) in &m.questions {
        if dns.query.is_none() {
            dns.query = Some(text_str(rec, name));
            dns.qtype = Some(type_name(*qtype));
        } else if !m.response {
            let same = dns.query.as_deref() == Some(name.as_str());
            if !same && !dns.more_queries.iter().any(|q| q == name) {
                let q = text_str(rec, name);
                push_capped(rec, &mut dns.more_queries, q);
            }
        }
    }
    if m.response {
        if dns.rcode.is_none() {
            dns.rcode = Some(rcode_name(m.rcode));
        }
        for (_, _, data) in &m.answers {
            if !dns.answers.iter().any(|a| a == data) {
                let a = text_str(rec, data);
                push_capped(rec, &mut dns.answers, a);
            }
        }
    }
    rec.dns = Some(dns);
}

fn handle(msg: &[u8], rec: &mut SessionRecord) {
    match parse(msg) {
        Ok(m) => record_message(&m, rec),
        Err(_) => rec.flag("malformed:dns"),
    }
}

/// Query ids remembered per flow while waiting for their responses.
const MAX_PENDING_QUERIES: usize = 64;

/// Which queries of a UDP flow are still unanswered, so that the flow can end shortly
/// after the last response (as Zeek's `dns_session_timeout` does) instead of waiting for
/// the UDP idle timeout: a busy resolver otherwise keeps a minute of finished lookups in
/// memory.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    ids: Vec<u16>,
    answered: bool,
}

impl Pending {
    /// Notes one datagram's id (a query adds it, its response removes it).
    pub(crate) fn note(&mut self, data: &[u8]) {
        if let [a, b, flags, ..] = *data {
            let id = u16::from_be_bytes([a, b]);
            if flags & 0x80 == 0 {
                if self.ids.len() < MAX_PENDING_QUERIES && !self.ids.contains(&id) {
                    self.ids.push(id);
                }
            } else if let Some(i) = self.ids.iter().position(|&p| p == id) {
                self.ids.swap_remove(i);
                self.answered = true;
            }
        }
    }

    pub(crate) fn finished(&self) -> bool {
        self.answered && self.ids.is_empty()
    }
}

/// DNS (and LLMNR) over UDP: one message per datagram; see [`Pending`] for when the flow
/// is finished.
#[derive(Debug, Default)]
pub struct DnsDatagramParser {
    pending: Pending,
}

impl DnsDatagramParser {
    pub fn new() -> DnsDatagramParser {
        DnsDatagramParser::default()
    }
}

impl DatagramParser for DnsDatagramParser {
    fn on_datagram(
        &mut self,
        _dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        self.pending.note(data);
        handle(data, rec);
    }

    fn finished(&self) -> bool {
        self.pending.finished()
    }
}

/// DNS over TCP: messages with a 2-byte length prefix, per direction.
#[derive(Debug, Default)]
pub struct DnsStreamParser {
    bufs: [Vec<u8>; 2],
    lost: [bool; 2],
}

impl DnsStreamParser {
    pub fn new() -> DnsStreamParser {
        DnsStreamParser::default()
    }
}

impl StreamParser for DnsStreamParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let i = dir.index();
        if self.lost[i] {
            return;
        }
        let buf = &mut self.bufs[i];
        buf.extend_from_slice(data);
        let mut pos = 0;
        while buf.len() - pos >= 2 {
            let len = u16::from_be_bytes([buf[pos], buf[pos + 1]]) as usize;
            if buf.len() - pos < 2 + len {
                break;
            }
            handle(&buf[pos + 2..pos + 2 + len], rec);
            pos += 2 + len;
        }
        buf.drain(..pos);
        debug_assert!(buf.len() <= MAX_TCP_MESSAGE + 2);
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        // Message boundaries are lost for good in this direction.
        self.lost[dir.index()] = true;
        self.bufs[dir.index()] = Vec::new();
    }

    fn on_close(&mut self, rec: &mut SessionRecord, _sink: &mut dyn Sink) {
        if self.bufs.iter().any(|b| !b.is_empty()) {
            rec.flag("dns_truncated_message");
        }
        self.bufs = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::VecSink;
    use crate::testutil::{record, run_all_cuts};

    /// `dig @127.0.0.1 -p 5353 www.example.jp A` against dnsmasq, captured; expected
    /// values from tshark (`dns.qry.name`, `dns.a`, `dns.cname`, `dns.flags.rcode`).
    fn datagrams() -> Vec<(Direction, Vec<u8>)> {
        crate::testutil::corpus("dns-udp", "dig-dnsmasq-udp.bin")
    }

    #[test]
    fn udp_query_and_answers() {
        let mut p = DnsDatagramParser::new();
        let mut rec = record("dns");
        let mut sink = VecSink::default();
        for (dir, d) in datagrams() {
            p.on_datagram(dir, &d, 0, &mut rec, &mut sink);
        }
        let dns = rec.dns.unwrap();
        let expected: Vec<String> = include_str!("../../fuzz/corpus/dns-udp/expected.txt")
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(dns.query.as_deref(), Some(expected[0].as_str()));
        assert_eq!(dns.qtype.as_deref(), Some(expected[1].as_str()));
        assert_eq!(dns.rcode.as_deref(), Some(expected[2].as_str()));
        assert_eq!(
            dns.answers,
            expected[3]
                .split(',')
                .map(str::to_string)
                .collect::<Vec<_>>()
        );
        assert!(rec.flags.is_empty());
    }

    #[test]
    fn udp_exchange_is_finished_once_every_query_is_answered() {
        let msgs = datagrams();
        let query = msgs.iter().find(|(d, _)| *d == Up).unwrap().1.clone();
        let answer = msgs.iter().find(|(d, _)| *d == Down).unwrap().1.clone();
        let mut rec = record("dns");
        let mut sink = VecSink::default();
        let mut p = DnsDatagramParser::new();
        assert!(!p.finished());
        p.on_datagram(Up, &query, 0, &mut rec, &mut sink);
        assert!(!p.finished(), "a query alone is not finished");
        p.on_datagram(Down, &answer, 0, &mut rec, &mut sink);
        assert!(p.finished(), "the answer to the only query finishes it");
        // A second query with another id reopens the exchange.
        let mut q2 = query.clone();
        q2[0] ^= 0xff;
        p.on_datagram(Up, &q2, 0, &mut rec, &mut sink);
        assert!(!p.finished());
        // An answer to an id never asked (spoofed, or unsolicited mDNS) finishes nothing.
        let mut p = DnsDatagramParser::new();
        p.on_datagram(Down, &answer, 0, &mut rec, &mut sink);
        assert!(!p.finished());
        p.on_datagram(Down, &[0x12], 0, &mut rec, &mut sink);
        assert!(!p.finished());
    }

    #[test]
    fn tcp_length_prefixed_messages_in_any_cut() {
        let mut up = Vec::new();
        let mut down = Vec::new();
        for (dir, d) in datagrams() {
            let target = if dir == Up { &mut up } else { &mut down };
            target.extend_from_slice(&(d.len() as u16).to_be_bytes());
            target.extend_from_slice(&d);
        }
        let (rec, _) = run_all_cuts(
            || Box::new(DnsStreamParser::new()),
            "dns",
            &[(Up, &up), (Down, &down)],
        );
        let dns = rec.dns.unwrap();
        assert_eq!(
            dns.query.as_deref(),
            Some(
                include_str!("../../fuzz/corpus/dns-udp/expected.txt")
                    .lines()
                    .next()
                    .unwrap()
            )
        );
        assert!(!dns.answers.is_empty());
    }

    #[test]
    fn nxdomain_and_garbage() {
        let mut p = DnsDatagramParser::new();
        let mut rec = record("dns");
        let mut sink = VecSink::default();
        let mut q = vec![0xab, 0xcd, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x04nope\x07example\x00\x00\x1c\x00\x01");
        p.on_datagram(Down, &q, 0, &mut rec, &mut sink);
        p.on_datagram(Down, b"\x00\x01", 0, &mut rec, &mut sink);
        let dns = rec.dns.as_ref().unwrap();
        assert_eq!(dns.query.as_deref(), Some("nope.example"));
        assert_eq!(dns.qtype.as_deref(), Some("AAAA"));
        assert_eq!(dns.rcode.as_deref(), Some("NXDOMAIN"));
        assert!(rec.has_flag("malformed:dns"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]
            #[test]
            fn any_datagram_is_safe(d in proptest::collection::vec(any::<u8>(), 0..300)) {
                let mut p = DnsDatagramParser::new();
                let mut rec = record("dns");
                let mut sink = VecSink::default();
                p.on_datagram(Down, &d, 0, &mut rec, &mut sink);
            }
        }
    }
}
