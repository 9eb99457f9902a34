//! Pure decoding of one BOOTP/DHCP message.

use std::net::Ipv4Addr;

/// Offset of the magic cookie; options follow it.
const COOKIE_AT: usize = 236;
const COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];

/// Option codes used here (RFC 2132).
const OPT_PAD: u8 = 0;
const OPT_HOSTNAME: u8 = 12;
const OPT_REQUESTED: u8 = 50;
const OPT_MSG_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_VENDOR_CLASS: u8 = 60;
const OPT_END: u8 = 255;

/// One decoded message: the fixed fields and the options Kuroko keeps.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// 1 BOOTREQUEST, 2 BOOTREPLY.
    pub op: u8,
    /// Option 53.
    pub msg_type: Option<u8>,
    /// `chaddr` when it is an Ethernet address (htype 1, hlen 6).
    pub chaddr: Option<[u8; 6]>,
    pub yiaddr: Ipv4Addr,
    pub hostname: Option<&'a [u8]>,
    pub vendor_class: Option<&'a [u8]>,
    pub requested: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    /// The options ran past the datagram or had a bad length (what came before is kept).
    pub options_cut: bool,
}

/// Decodes one datagram; `None` when it is not a DHCP message (too short, no cookie).
pub fn parse(b: &[u8]) -> Option<Message<'_>> {
    if b.len() < COOKIE_AT + 4 || b[COOKIE_AT..COOKIE_AT + 4] != COOKIE {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
    let mut m = Message {
        op: b[0],
        yiaddr: ip(16),
        chaddr: (b[1] == 1 && b[2] == 6).then(|| {
            let mut a = [0u8; 6];
            a.copy_from_slice(&b[28..34]);
            a
        }),
        msg_type: None,
        hostname: None,
        vendor_class: None,
        requested: None,
        server_id: None,
        options_cut: false,
    };
    let four = |v: &[u8]| (v.len() == 4).then(|| Ipv4Addr::new(v[0], v[1], v[2], v[3]));
    let mut i = COOKIE_AT + 4;
    while i < b.len() {
        let code = b[i];
        if code == OPT_PAD {
            i += 1;
            continue;
        }
        if code == OPT_END {
            break;
        }
        let Some(&len) = b.get(i + 1) else {
            m.options_cut = true;
            break;
        };
        let Some(v) = b.get(i + 2..i + 2 + len as usize) else {
            m.options_cut = true;
            break;
        };
        match code {
            OPT_MSG_TYPE if len == 1 => m.msg_type = Some(v[0]),
            OPT_HOSTNAME if len > 0 => m.hostname = Some(v),
            OPT_VENDOR_CLASS if len > 0 => m.vendor_class = Some(v),
            OPT_REQUESTED => m.requested = four(v),
            OPT_SERVER_ID => m.server_id = four(v),
            _ => {}
        }
        i += 2 + len as usize;
    }
    Some(m)
}

/// The name of a DHCP message type (option 53), or its number.
pub fn type_name(t: u8) -> String {
    match t {
        1 => "DISCOVER",
        2 => "OFFER",
        3 => "REQUEST",
        4 => "DECLINE",
        5 => "ACK",
        6 => "NAK",
        7 => "RELEASE",
        8 => "INFORM",
        _ => return t.to_string(),
    }
    .to_string()
}

/// `aa:bb:cc:dd:ee:ff`, the way session endpoints write MACs.
pub fn mac_text(a: &[u8; 6]) -> String {
    a.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A message as udhcpc/dnsmasq send it: fixed part, cookie, options.
    pub(crate) fn message(op: u8, yiaddr: [u8; 4], mac: [u8; 6], options: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[0] = op;
        p[1] = 1;
        p[2] = 6;
        p[16..20].copy_from_slice(&yiaddr);
        p[28..34].copy_from_slice(&mac);
        p[236..240].copy_from_slice(&COOKIE);
        p.extend_from_slice(options);
        p.push(OPT_END);
        p
    }

    #[test]
    fn request_options() {
        let opts = [
            53, 1, 3, 0, 50, 4, 10, 0, 0, 50, 54, 4, 10, 0, 0, 1, 12, 4, b'p', b'c', b'0', b'1',
            60, 12,
        ]
        .iter()
        .copied()
        .chain(*b"udhcp 1.36.1")
        .collect::<Vec<u8>>();
        let p = message(1, [0; 4], [2, 0, 0, 0, 0, 7], &opts);
        let m = parse(&p).unwrap();
        assert_eq!(m.op, 1);
        assert_eq!(m.msg_type, Some(3));
        assert_eq!(m.hostname, Some(&b"pc01"[..]));
        assert_eq!(m.vendor_class, Some(&b"udhcp 1.36.1"[..]));
        assert_eq!(m.requested, Some(Ipv4Addr::new(10, 0, 0, 50)));
        assert_eq!(m.server_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(mac_text(&m.chaddr.unwrap()), "02:00:00:00:00:07");
        assert!(!m.options_cut);
        assert_eq!(type_name(5), "ACK");
        assert_eq!(type_name(99), "99");
    }

    /// Hostile input: every prefix and a few corruptions of a real message decode
    /// without panicking; an option running past the end is reported, not read.
    #[test]
    fn truncated_and_garbage() {
        let p = message(
            2,
            [10, 0, 0, 50],
            [2, 0, 0, 0, 0, 7],
            &[53, 1, 5, 12, 200, b'x'],
        );
        let m = parse(&p).unwrap();
        assert!(m.options_cut);
        assert_eq!(m.msg_type, Some(5));
        assert_eq!(m.hostname, None);
        for n in 0..p.len() {
            let _ = parse(&p[..n]);
        }
        assert!(parse(&[0u8; 100]).is_none());
        let mut junk = vec![0xffu8; 400];
        junk[236..240].copy_from_slice(&COOKIE);
        junk[240] = 1;
        assert!(parse(&junk).unwrap().options_cut);
        let mut odd = p.clone();
        odd[1] = 6; // not Ethernet: no MAC
        assert_eq!(parse(&odd).unwrap().chaddr, None);
    }
}
