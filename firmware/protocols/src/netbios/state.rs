//! Per-flow name-service state: each datagram adds its names to `rec.netbios`.

use super::parser::{
    MULTIHOMED, QUERY, REFRESH, REFRESH_ALT, REGISTRATION, RELEASE, display, parse,
};
use crate::util::{push_capped, text};
use crate::{DatagramParser, Direction, Sink};
use kuroko_model::session::{NetbiosName, SessionRecord};
use std::net::IpAddr;

#[derive(Debug, Default)]
pub struct NetbiosParser;

impl NetbiosParser {
    pub fn new() -> NetbiosParser {
        NetbiosParser
    }
}

impl DatagramParser for NetbiosParser {
    fn on_datagram(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let Some(m) = parse(data) else {
            rec.flag("malformed:netbios");
            return;
        };
        if m.cut {
            rec.flag("malformed:netbios");
        }
        let sender = match dir {
            Direction::ToServer => rec.client.ip,
            Direction::ToClient => rec.server.ip,
        };
        let how = match (m.opcode, m.response) {
            (QUERY, false) => None,
            (QUERY, true) => Some("answer"),
            (REGISTRATION | MULTIHOMED, _) => Some("registration"),
            (REFRESH | REFRESH_ALT, _) => Some("refresh"),
            (RELEASE, _) => Some("release"),
            _ => None,
        };
        let mut nb = rec.netbios.take().unwrap_or_default();
        if m.opcode == QUERY && !m.response {
            let mut queries = std::mem::take(&mut nb.queries);
            for q in &m.questions {
                let q = text(rec, display(q).as_bytes());
                if !queries.contains(&q) {
                    push_capped(rec, &mut queries, q);
                }
            }
            nb.queries = queries;
        }
        // A refused registration or a negative answer binds nothing.
        if let Some(how) = how.filter(|_| m.rcode == 0) {
            let mut names = std::mem::take(&mut nb.names);
            for b in &m.bindings {
                let entry = NetbiosName {
                    name: text(rec, display(&b.name).as_bytes()),
                    address: b.address.map_or(sender, IpAddr::V4),
                    group: b.group,
                    how: if b.address.is_none() { "status" } else { how }.to_string(),
                };
                if !names
                    .iter()
                    .any(|n: &NetbiosName| n.name == entry.name && n.address == entry.address)
                {
                    push_capped(rec, &mut names, entry);
                }
            }
            nb.names = names;
        }
        rec.netbios = Some(nb);
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::tests::registration;
    use super::*;
    use crate::VecSink;
    use crate::testutil::record;

    #[test]
    fn registration_binds_the_name() {
        let mut p = NetbiosParser::new();
        let mut rec = record("netbios-ns");
        let mut sink = VecSink::default();
        let reg = registration("FILESRV01", 0x20, [10, 0, 0, 9], false);
        for _ in 0..2 {
            p.on_datagram(Direction::ToServer, &reg, 0, &mut rec, &mut sink);
        }
        let grp = registration("OFFICE", 0x00, [10, 0, 0, 9], true);
        p.on_datagram(Direction::ToServer, &grp, 0, &mut rec, &mut sink);
        let nb = rec.netbios.as_ref().unwrap();
        assert_eq!(nb.names.len(), 2, "{nb:?}");
        assert_eq!(nb.names[0].name, "FILESRV01<20>");
        assert_eq!(nb.names[0].address, "10.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(nb.names[0].how, "registration");
        assert!(nb.names[1].group);
        assert!(rec.flags.is_empty());
        // A negative answer (rcode 6, name active elsewhere) binds nothing.
        let mut refused = reg.clone();
        refused[2] = 0xA9;
        refused[3] = 0x86;
        let mut rec = record("netbios-ns");
        p.on_datagram(Direction::ToClient, &refused, 0, &mut rec, &mut sink);
        assert!(rec.netbios.unwrap().names.is_empty());
    }

    #[test]
    fn garbage_is_flagged() {
        let mut p = NetbiosParser::new();
        let mut rec = record("netbios-ns");
        p.on_datagram(
            Direction::ToServer,
            b"\x00",
            0,
            &mut rec,
            &mut VecSink::default(),
        );
        assert!(rec.has_flag("malformed:netbios"));
    }
}
