//! Pure decoding of one name-service message.

use std::net::Ipv4Addr;

/// Records (questions + resource records) read per message; a real message has one or
/// two. Bounds the work on hostile counts.
pub const MAX_RECORDS: usize = 8;
/// Names read from one node-status answer (a host has a dozen).
pub const MAX_STATUS_NAMES: usize = 32;

/// RR types (RFC 1002 §4.2.1.3).
const NB: u16 = 0x20;
const NBSTAT: u16 = 0x21;

/// Opcodes (RFC 1002 §4.2.1.1; 9 is the refresh Windows and Samba send).
pub const QUERY: u8 = 0;
pub const REGISTRATION: u8 = 5;
pub const RELEASE: u8 = 6;
pub const REFRESH: u8 = 8;
pub const REFRESH_ALT: u8 = 9;
pub const MULTIHOMED: u8 = 15;

/// A decoded 16-byte NetBIOS name: up to 15 characters and the suffix byte.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct NbName {
    pub name: Vec<u8>,
    pub suffix: u8,
}

/// One name bound to an address in a message.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Binding {
    pub name: NbName,
    /// None in a node-status answer: the address is the sender's.
    pub address: Option<Ipv4Addr>,
    pub group: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub response: bool,
    pub opcode: u8,
    pub rcode: u8,
    /// Names in the question section (queries, and the name a registration is for).
    pub questions: Vec<NbName>,
    /// Names bound to addresses by the resource records.
    pub bindings: Vec<Binding>,
    /// A section ran past the datagram (what came before is kept).
    pub cut: bool,
}

/// Decodes the first-level encoded name at `at` (RFC 1001 §14.1): returns it and the
/// offset after it (scope labels skipped; a compression pointer ends it).
fn name(b: &[u8], at: usize) -> Option<(Option<NbName>, usize)> {
    let len = *b.get(at)? as usize;
    if len & 0xC0 == 0xC0 {
        b.get(at + 1)?;
        return Some((None, at + 2));
    }
    let label = b.get(at + 1..at + 1 + len)?;
    let decoded = (len == 32 && label.iter().all(|c| (b'A'..=b'P').contains(c))).then(|| {
        let raw: Vec<u8> = label
            .chunks(2)
            .map(|p| ((p[0] - b'A') << 4) | (p[1] - b'A'))
            .collect();
        let mut name = raw[..15].to_vec();
        while name.last() == Some(&b' ') {
            name.pop();
        }
        NbName {
            name,
            suffix: raw[15],
        }
    });
    // Skip the scope labels up to the root (or a pointer).
    let mut i = at + 1 + len;
    for _ in 0..64 {
        let l = *b.get(i)? as usize;
        if l == 0 {
            return Some((decoded, i + 1));
        }
        if l & 0xC0 == 0xC0 {
            return Some((decoded, i + 2));
        }
        i += 1 + l;
    }
    None
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Decodes one datagram; `None` when the header is too short.
pub fn parse(b: &[u8]) -> Option<Message> {
    let flags = u16_at(b, 2)?;
    let count = |at| u16_at(b, at).map(|n| n as usize);
    let (qd, an, ns, ar) = (count(4)?, count(6)?, count(8)?, count(10)?);
    let mut m = Message {
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xF) as u8,
        rcode: (flags & 0xF) as u8,
        ..Message::default()
    };
    let mut at = 12;
    let mut question: Option<NbName> = None;
    for _ in 0..qd.min(MAX_RECORDS) {
        let Some((n, next)) = name(b, at) else {
            m.cut = true;
            return Some(m);
        };
        if b.len() < next + 4 {
            m.cut = true;
            return Some(m);
        }
        if let Some(n) = n {
            question.get_or_insert_with(|| n.clone());
            m.questions.push(n);
        }
        at = next + 4;
    }
    for _ in 0..(an + ns + ar).min(MAX_RECORDS) {
        let Some((n, next)) = name(b, at) else {
            m.cut = true;
            return Some(m);
        };
        let (Some(ty), Some(rdlen)) = (u16_at(b, next), u16_at(b, next + 8)) else {
            m.cut = true;
            return Some(m);
        };
        let Some(rdata) = b.get(next + 10..next + 10 + rdlen as usize) else {
            m.cut = true;
            return Some(m);
        };
        at = next + 10 + rdlen as usize;
        // A pointer names the question's name (registrations point back to it).
        let rr_name = n.or_else(|| question.clone());
        match ty {
            NB => {
                let Some(rr_name) = rr_name else { continue };
                for e in rdata.chunks_exact(6).take(MAX_RECORDS) {
                    m.bindings.push(Binding {
                        name: rr_name.clone(),
                        address: Some(Ipv4Addr::new(e[2], e[3], e[4], e[5])),
                        group: e[0] & 0x80 != 0,
                    });
                }
            }
            NBSTAT => {
                let Some(&num) = rdata.first() else { continue };
                for e in rdata[1..]
                    .chunks_exact(18)
                    .take((num as usize).min(MAX_STATUS_NAMES))
                {
                    let mut name = e[..15].to_vec();
                    while name.last() == Some(&b' ') {
                        name.pop();
                    }
                    m.bindings.push(Binding {
                        name: NbName {
                            name,
                            suffix: e[15],
                        },
                        address: None,
                        group: e[16] & 0x80 != 0,
                    });
                }
            }
            _ => {}
        }
    }
    Some(m)
}

/// `NAME<xx>` as nbtstat and Wireshark write it.
pub fn display(n: &NbName) -> String {
    format!("{}<{:02x}>", String::from_utf8_lossy(&n.name), n.suffix)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// First-level encoding of a 15-character name plus suffix.
    pub(crate) fn encode(name: &str, suffix: u8) -> Vec<u8> {
        let mut raw = format!("{name:<15}").into_bytes();
        raw.truncate(15);
        raw.push(suffix);
        let mut out = vec![32u8];
        for c in raw {
            out.push(b'A' + (c >> 4));
            out.push(b'A' + (c & 0xF));
        }
        out.push(0);
        out
    }

    /// A registration as nmbd broadcasts it: question + additional NB record pointing
    /// back to the question.
    pub(crate) fn registration(name: &str, suffix: u8, addr: [u8; 4], group: bool) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
        p.extend(encode(name, suffix));
        p.extend_from_slice(&[0, 0x20, 0, 1]);
        p.extend_from_slice(&[0xC0, 0x0C, 0, 0x20, 0, 1, 0, 0x04, 0x93, 0xE0, 0, 6]);
        p.extend_from_slice(&[if group { 0x80 } else { 0 }, 0]);
        p.extend_from_slice(&addr);
        p
    }

    #[test]
    fn registration_and_query() {
        let m = parse(&registration("FILESRV01", 0x20, [10, 0, 0, 9], false)).unwrap();
        assert_eq!(m.opcode, REGISTRATION);
        assert!(!m.response);
        assert_eq!(display(&m.questions[0]), "FILESRV01<20>");
        assert_eq!(m.bindings.len(), 1);
        assert_eq!(m.bindings[0].address, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert!(!m.cut);
        let mut q = vec![0x55, 0x55, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(encode("WORKGROUP", 0x1d));
        q.extend_from_slice(&[0, 0x20, 0, 1]);
        let m = parse(&q).unwrap();
        assert_eq!(m.opcode, QUERY);
        assert_eq!(display(&m.questions[0]), "WORKGROUP<1d>");
        assert!(m.bindings.is_empty());
    }

    #[test]
    fn node_status_answer() {
        let mut p = vec![0, 1, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        p.extend(encode("*", 0));
        p.extend_from_slice(&[0, 0x21, 0, 1, 0, 0, 0, 0]);
        let mut rdata = vec![2u8];
        for (n, s, f) in [("PRINTER7", 0u8, 0u8), ("OFFICE", 0, 0x80)] {
            let mut e = format!("{n:<15}").into_bytes();
            e.push(s);
            e.extend_from_slice(&[f, 0]);
            rdata.extend(e);
        }
        rdata.extend_from_slice(&[0u8; 46]);
        p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        p.extend(rdata);
        let m = parse(&p).unwrap();
        assert!(m.response);
        let names: Vec<_> = m
            .bindings
            .iter()
            .map(|b| (display(&b.name), b.group))
            .collect();
        assert_eq!(
            names,
            [("PRINTER7<00>".into(), false), ("OFFICE<00>".into(), true)]
        );
        assert_eq!(m.bindings[0].address, None);
    }

    /// Hostile input: every prefix of a real message, pointer loops and huge counts.
    #[test]
    fn truncated_and_garbage() {
        let p = registration("FILESRV01", 0x20, [10, 0, 0, 9], false);
        for n in 0..p.len() {
            if let Some(m) = parse(&p[..n]) {
                assert!(m.bindings.is_empty() || n == p.len());
            }
        }
        let mut huge = vec![0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        huge.extend_from_slice(&[0xC0, 0x0C, 0, 0x20, 0, 1]);
        let m = parse(&huge).unwrap();
        assert!(m.cut);
        assert!(parse(&[1, 2, 3]).is_none());
        let mut labels = vec![0u8; 12];
        labels[5] = 1;
        labels.extend(std::iter::repeat_n([1u8, b'a'], 200).flatten());
        assert!(parse(&labels).unwrap().cut);
    }
}
