//! Per-flow DHCP state: each datagram adds what it says to `rec.dhcp`.

use super::parser::{mac_text, parse, type_name};
use crate::util::{push_capped, text};
use crate::{DatagramParser, Direction, Sink};
use kuroko_model::session::SessionRecord;
use std::net::{IpAddr, Ipv4Addr};

/// BOOTP `op` of a client's message.
const BOOTREQUEST: u8 = 1;
/// DHCP ACK (option 53 value).
const ACK: u8 = 5;

#[derive(Debug, Default)]
pub struct DhcpParser;

impl DhcpParser {
    pub fn new() -> DhcpParser {
        DhcpParser
    }
}

impl DatagramParser for DhcpParser {
    fn on_datagram(
        &mut self,
        _dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let Some(m) = parse(data) else {
            rec.flag("malformed:dhcp");
            return;
        };
        if m.options_cut {
            rec.flag("malformed:dhcp");
        }
        let mut d = rec.dhcp.take().unwrap_or_default();
        if let Some(t) = m.msg_type {
            let mut messages = std::mem::take(&mut d.messages);
            push_capped(rec, &mut messages, type_name(t));
            d.messages = messages;
        }
        if d.client_mac.is_none() {
            d.client_mac = m.chaddr.as_ref().map(mac_text);
        }
        // What the client says of itself comes in its requests (BOOTREQUEST); a server
        // may echo the name in its reply (dnsmasq does), which says nothing new.
        if m.op == BOOTREQUEST {
            if d.hostname.is_none() {
                d.hostname = m.hostname.map(|v| text(rec, v));
            }
            if d.vendor_class.is_none() {
                d.vendor_class = m.vendor_class.map(|v| text(rec, v));
            }
        }
        d.requested_address = m.requested.map(IpAddr::V4).or(d.requested_address);
        d.server_id = m.server_id.map(IpAddr::V4).or(d.server_id);
        if m.msg_type == Some(ACK) && m.op == 2 && m.yiaddr != Ipv4Addr::UNSPECIFIED {
            d.assigned_address = Some(IpAddr::V4(m.yiaddr));
        }
        rec.dhcp = Some(d);
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::tests::message;
    use super::*;
    use crate::VecSink;
    use crate::testutil::record;

    #[test]
    fn request_then_ack_fill_the_record() {
        let mut p = DhcpParser::new();
        let mut rec = record("dhcp");
        let mut sink = VecSink::default();
        let mac = [0x02, 0, 0, 0, 0, 0x07];
        let mut req = vec![53, 1, 3, 50, 4, 10, 0, 0, 50, 12, 4];
        req.extend_from_slice(b"pc01");
        req.extend_from_slice(&[60, 8]);
        req.extend_from_slice(b"MSFT 5.0");
        p.on_datagram(
            Direction::ToServer,
            &message(1, [0; 4], mac, &req),
            0,
            &mut rec,
            &mut sink,
        );
        // dnsmasq echoes the host name in its ACK: not the client's word.
        let ack = [53, 1, 5, 54, 4, 10, 0, 0, 1, 12, 4, b'e', b'c', b'h', b'o'];
        p.on_datagram(
            Direction::ToClient,
            &message(2, [10, 0, 0, 50], mac, &ack),
            0,
            &mut rec,
            &mut sink,
        );
        let d = rec.dhcp.as_ref().unwrap();
        assert_eq!(d.messages, ["REQUEST", "ACK"]);
        assert_eq!(d.client_mac.as_deref(), Some("02:00:00:00:00:07"));
        assert_eq!(d.hostname.as_deref(), Some("pc01"));
        assert_eq!(d.vendor_class.as_deref(), Some("MSFT 5.0"));
        assert_eq!(d.requested_address, Some("10.0.0.50".parse().unwrap()));
        assert_eq!(d.assigned_address, Some("10.0.0.50".parse().unwrap()));
        assert_eq!(d.server_id, Some("10.0.0.1".parse().unwrap()));
        assert!(rec.flags.is_empty());
        // An OFFER's yiaddr is not a binding; a name a server echoes is not the client's.
        let mut rec = record("dhcp");
        p.on_datagram(
            Direction::ToClient,
            &message(
                2,
                [10, 0, 0, 51],
                mac,
                &[53, 1, 2, 12, 4, b'e', b'c', b'h', b'o'],
            ),
            0,
            &mut rec,
            &mut sink,
        );
        let d = rec.dhcp.unwrap();
        assert_eq!(d.assigned_address, None);
        assert_eq!(d.hostname, None);
    }

    #[test]
    fn garbage_is_flagged() {
        let mut p = DhcpParser::new();
        let mut rec = record("dhcp");
        p.on_datagram(
            Direction::ToServer,
            b"\x01\x01",
            0,
            &mut rec,
            &mut VecSink::default(),
        );
        assert!(rec.has_flag("malformed:dhcp"));
        assert!(rec.dhcp.is_none());
    }
}
