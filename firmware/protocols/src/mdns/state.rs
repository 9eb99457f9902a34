//! Per-flow mDNS state: each datagram adds its names to `rec.mdns` (and, like unicast
//! DNS, its query and answers to `rec.dns`).

use super::parser::{Message, Rdata, Section, display, parse, split_instance, txt_model};
use crate::dns::parser::Message as DnsMessage;
use crate::dns::state::{Pending, record_message};
use crate::util::{push_capped, text_str};
use crate::{DatagramParser, Direction, Sink};
use kuroko_model::session::{MdnsHost, MdnsService, SessionRecord};
use std::net::IpAddr;

#[derive(Debug, Default)]
pub struct MdnsParser {
    pending: Pending,
}

impl MdnsParser {
    pub fn new() -> MdnsParser {
        MdnsParser::default()
    }
}

/// The message as unicast DNS records it: first question, rcode, answer-section data.
fn as_dns(m: &Message) -> DnsMessage {
    DnsMessage {
        id: m.id,
        response: m.response,
        rcode: m.rcode,
        questions: m.questions.iter().map(|(n, t)| (display(n), *t)).collect(),
        answers: m
            .records
            .iter()
            .filter(|r| r.section == Section::Answer)
            .filter_map(|r| {
                let (ty, text) = match &r.data {
                    Rdata::Address(IpAddr::V4(a)) => (1, a.to_string()),
                    Rdata::Address(IpAddr::V6(a)) => (28, a.to_string()),
                    Rdata::Name(ty, n) => (*ty, display(n)),
                    Rdata::Srv { target, .. } => (33, display(target)),
                    Rdata::Txt(t) => (16, String::from_utf8_lossy(&t.concat()).into_owned()),
                    Rdata::Other(_) => return None,
                };
                Some((display(&r.name), ty, text))
            })
            .collect(),
    }
}

/// The service instance `name` in `services`, added (from `from`) when new; `None` when
/// the list is full.
fn instance<'a>(
    rec: &mut SessionRecord,
    services: &'a mut Vec<MdnsService>,
    name: &[String],
    from: IpAddr,
) -> Option<&'a mut MdnsService> {
    let (inst, service, domain) = split_instance(name)?;
    let inst = text_str(rec, inst);
    let i = match services
        .iter()
        .position(|s| s.instance == inst && s.service == service && s.domain == domain)
    {
        Some(i) => i,
        None => {
            let entry = MdnsService {
                instance: inst,
                service: text_str(rec, &service),
                domain: text_str(rec, &domain),
                host: None,
                port: None,
                model: None,
                from,
            };
            if !push_capped(rec, services, entry) {
                return None;
            }
            services.len() - 1
        }
    };
    services.get_mut(i)
}

impl DatagramParser for MdnsParser {
    fn on_datagram(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        self.pending.note(data);
        let Some(m) = parse(data) else {
            rec.flag("malformed:mdns");
            return;
        };
        if m.cut {
            rec.flag("malformed:mdns");
        }
        record_message(&as_dns(&m), rec);
        let from = match dir {
            Direction::ToServer => rec.client.ip,
            Direction::ToClient => rec.server.ip,
        };
        let mut md = rec.mdns.take().unwrap_or_default();
        if !m.response {
            for (q, _) in &m.questions {
                let q = text_str(rec, &display(q));
                if !md.queries.contains(&q) {
                    push_capped(rec, &mut md.queries, q);
                }
            }
        }
        // Only responses bind: a probe's authority section proposes, a query's known
        // answers repeat what others said.
        let records = m
            .records
            .iter()
            .filter(|r| m.response && r.section != Section::Authority);
        for r in records {
            match &r.data {
                Rdata::Address(a) => {
                    let name = text_str(rec, &display(&r.name));
                    if !md.hosts.iter().any(|h| h.name == name && h.address == *a) {
                        let h = MdnsHost {
                            name,
                            address: *a,
                            from,
                        };
                        push_capped(rec, &mut md.hosts, h);
                    }
                }
                Rdata::Name(12, target) => {
                    // `_ipp._tcp.local` PTR `Office Printer._ipp._tcp.local`.
                    instance(rec, &mut md.services, target, from);
                }
                Rdata::Srv { port, target } => {
                    let host = text_str(rec, &display(target));
                    if let Some(s) = instance(rec, &mut md.services, &r.name, from) {
                        s.port = Some(*port);
                        s.host = Some(host);
                    }
                }
                Rdata::Txt(strings) => {
                    let model = txt_model(strings).map(|x| text_str(rec, &x));
                    if let Some(model) = model
                        && let Some(s) = instance(rec, &mut md.services, &r.name, from)
                    {
                        s.model = Some(model);
                    }
                }
                _ => {}
            }
        }
        rec.mdns = Some(md);
    }

    fn finished(&self) -> bool {
        self.pending.finished()
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::tests::{announcement, name};
    use super::*;
    use crate::VecSink;
    use crate::testutil::record;

    fn rec() -> SessionRecord {
        let mut r = record("mdns");
        r.transport = "udp".into();
        r.client = kuroko_model::session::Endpoint::new("192.168.1.40".parse().unwrap(), 5353);
        r.server = kuroko_model::session::Endpoint::new("224.0.0.251".parse().unwrap(), 5353);
        r
    }

    #[test]
    fn announcement_names_the_host_and_its_service() {
        let mut p = MdnsParser::new();
        let mut r = rec();
        let mut sink = VecSink::default();
        for _ in 0..2 {
            p.on_datagram(Direction::ToServer, &announcement(), 0, &mut r, &mut sink);
        }
        let md = r.mdns.as_ref().unwrap();
        let from: IpAddr = "192.168.1.40".parse().unwrap();
        assert_eq!(
            md.hosts,
            vec![
                MdnsHost {
                    name: "printer.local".into(),
                    address: from,
                    from
                },
                MdnsHost {
                    name: "printer.local".into(),
                    address: "fe80::1:40".parse().unwrap(),
                    from
                }
            ]
        );
        assert_eq!(
            md.services,
            vec![MdnsService {
                instance: "Office Printer".into(),
                service: "_ipp._tcp".into(),
                domain: "local".into(),
                host: Some("printer.local".into()),
                port: Some(631),
                model: Some("Brother HL-L2350DW series".into()),
                from
            }]
        );
        assert_eq!(md.services[0].full_name(), "Office Printer._ipp._tcp.local");
        // The unicast DNS fields as before: the answer section's data.
        let dns = r.dns.as_ref().unwrap();
        assert_eq!(dns.rcode.as_deref(), Some("NOERROR"));
        assert!(dns.answers.contains(&"192.168.1.40".to_string()), "{dns:?}");
        assert!(r.flags.is_empty(), "{:?}", r.flags);
    }

    /// avahi-daemon 0.8 (Debian 12) announcing its host name and `avahi-publish -s "Office
    /// Printer" _ipp._tcp 631 "ty=…"`, captured; expected values from tshark
    /// (`dns.resp.name`, `dns.a`, `dns.srv.port`, `dns.txt`, `dns.aaaa` of the responses).
    #[test]
    fn avahi_capture_matches_tshark() {
        let expected: Vec<&str> = include_str!("../../fuzz/corpus/mdns/expected.txt")
            .lines()
            .collect();
        let mut p = MdnsParser::new();
        let mut r = rec();
        r.client.ip = expected[1].parse().unwrap();
        let mut sink = VecSink::default();
        for (dir, d) in crate::testutil::corpus("mdns", "avahi-publish-ipp.bin") {
            p.on_datagram(dir, &d, 0, &mut r, &mut sink);
        }
        assert!(r.flags.is_empty(), "{:?}", r.flags);
        let md = r.mdns.unwrap();
        let addr: IpAddr = expected[1].parse().unwrap();
        // The A record, and the AAAA of its link-local address (avahi's
        // `publish-aaaa-on-ipv4`), as tshark's `dns.a` and `dns.aaaa`.
        assert_eq!(
            md.hosts,
            vec![
                MdnsHost {
                    name: expected[0].into(),
                    address: addr,
                    from: addr
                },
                MdnsHost {
                    name: expected[0].into(),
                    address: expected[5].parse().unwrap(),
                    from: addr
                }
            ]
        );
        assert_eq!(md.services.len(), 1, "{md:?}");
        let s = &md.services[0];
        assert_eq!(s.full_name(), expected[2]);
        assert_eq!(s.port.map(|p| p.to_string()).as_deref(), Some(expected[3]));
        assert_eq!(s.host.as_deref(), Some(expected[0]));
        assert_eq!(s.model.as_deref(), expected[4].strip_prefix("ty="));
        // avahi's probes (queries) asked for its own names.
        assert!(
            md.queries.contains(&expected[0].to_string()),
            "{:?}",
            md.queries
        );
    }

    #[test]
    fn queries_and_probes_bind_nothing() {
        let mut p = MdnsParser::new();
        let mut r = rec();
        let mut sink = VecSink::default();
        // A probe: question printer.local ANY, proposed A record in the authority section.
        let mut probe = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0];
        probe.extend_from_slice(&name("printer.local"));
        probe.extend_from_slice(&[0, 255, 0x80, 1, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4]);
        probe.extend_from_slice(&[192, 168, 1, 40]);
        p.on_datagram(Direction::ToServer, &probe, 0, &mut r, &mut sink);
        // A query with a known answer (someone else's record, in the answer section).
        let mut q = vec![0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        q.extend_from_slice(&name("_ipp._tcp.local"));
        q.extend_from_slice(&[0, 12, 0, 1, 0xC0, 12, 0, 12, 0, 1, 0, 0, 0x11, 0x94, 0, 5]);
        q.extend_from_slice(&[2, b'x', b'y', 0xC0, 12]);
        p.on_datagram(Direction::ToServer, &q, 0, &mut r, &mut sink);
        let md = r.mdns.unwrap();
        assert_eq!(md.queries, ["printer.local", "_ipp._tcp.local"]);
        assert!(md.hosts.is_empty() && md.services.is_empty(), "{md:?}");
        assert!(r.flags.is_empty());
    }

    #[test]
    fn truncated_and_garbage_are_flagged_and_keep_what_came_before() {
        let full = announcement();
        let mut sink = VecSink::default();
        // Cut inside the A record: PTR, SRV and TXT are kept.
        let mut r = rec();
        MdnsParser::new().on_datagram(
            Direction::ToServer,
            &full[..full.len() - 30],
            0,
            &mut r,
            &mut sink,
        );
        assert!(r.has_flag("malformed:mdns"));
        let md = r.mdns.unwrap();
        assert!(md.hosts.is_empty());
        assert_eq!(md.services[0].port, Some(631));
        let mut r = rec();
        MdnsParser::new().on_datagram(Direction::ToServer, b"\x00\x01\x84", 0, &mut r, &mut sink);
        assert!(r.has_flag("malformed:mdns"));
        assert!(r.mdns.is_none());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
            #[test]
            fn any_datagram_is_safe(d in proptest::collection::vec(any::<u8>(), 0..400)) {
                let mut p = MdnsParser::new();
                let mut r = rec();
                p.on_datagram(Direction::ToClient, &d, 0, &mut r, &mut VecSink::default());
            }

            #[test]
            fn any_mutation_of_an_announcement_is_safe(
                edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
            ) {
                let mut d = announcement();
                for (i, b) in edits {
                    let n = d.len();
                    d[i % n] = b;
                }
                let mut p = MdnsParser::new();
                let mut r = rec();
                p.on_datagram(Direction::ToServer, &d, 0, &mut r, &mut VecSink::default());
            }
        }
    }
}
