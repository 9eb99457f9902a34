//! Pure mDNS message decoding: the DNS header and all four sections (RFC 1035 4.1), with
//! the record types DNS-SD uses decoded (A, AAAA, PTR, SRV, TXT). Defensive: every read is
//! bounds-checked; a message cut inside a record keeps the records before it and says so.

use crate::dns::parser::{DnsError, MAX_RECORDS_PER_SECTION, read_labels, u16_at};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TXT strings kept per record (`key=value` pairs; DNS-SD records carry a dozen or two).
pub const MAX_TXT_STRINGS: usize = 64;

/// The section a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// A name as its labels, each decoded as UTF-8 (lossy): DNS-SD instance labels are UTF-8
/// and may contain dots and spaces.
pub type Labels = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
pub enum Rdata {
    Address(IpAddr),
    /// PTR, CNAME, NS, DNAME: another name.
    Name(u16, Labels),
    Srv {
        port: u16,
        target: Labels,
    },
    /// The character-strings of a TXT record, raw.
    Txt(Vec<Vec<u8>>),
    /// Any other type (NSEC, HINFO, …): only its number.
    Other(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub section: Section,
    pub name: Labels,
    pub data: Rdata,
    pub ttl: u32,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub rcode: u8,
    /// (name, type) of each question (the QU bit of the class is ignored).
    pub questions: Vec<(Labels, u16)>,
    pub records: Vec<Record>,
    /// The message ended (or a name was bad) before everything its header announced: the
    /// records read before that point are kept.
    pub cut: bool,
}

fn labels(msg: &[u8], pos: usize) -> Result<(Labels, usize), DnsError> {
    let (raw, after) = read_labels(msg, pos)?;
    Ok((
        raw.iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect(),
        after,
    ))
}

/// A name as tshark shows it: labels joined with dots, as sent (control characters
/// replaced by spaces). The root is `.`.
pub fn display(name: &[String]) -> String {
    if name.is_empty() {
        return ".".to_string();
    }
    name.join(".")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn rdata(msg: &[u8], ty: u16, start: usize, rdata: &[u8]) -> Result<Rdata, DnsError> {
    Ok(match ty {
        1 if rdata.len() == 4 => Rdata::Address(IpAddr::V4(Ipv4Addr::new(
            rdata[0], rdata[1], rdata[2], rdata[3],
        ))),
        28 if rdata.len() == 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(rdata);
            Rdata::Address(IpAddr::V6(Ipv6Addr::from(a)))
        }
        2 | 5 | 12 | 39 => Rdata::Name(ty, labels(msg, start)?.0),
        33 if rdata.len() >= 7 => Rdata::Srv {
            port: u16::from_be_bytes([rdata[4], rdata[5]]),
            target: labels(msg, start + 6)?.0,
        },
        16 => {
            let mut out = Vec::new();
            let mut r = rdata;
            while let Some((&n, rest)) = r.split_first() {
                if out.len() >= MAX_TXT_STRINGS {
                    break;
                }
                let n = (n as usize).min(rest.len());
                out.push(rest[..n].to_vec());
                r = &rest[n..];
            }
            Rdata::Txt(out)
        }
        _ => Rdata::Other(ty),
    })
}

/// Decodes one message; `None` when it is shorter than the DNS header. Each section is
/// read up to [`MAX_RECORDS_PER_SECTION`] records; a section beyond it ends the decoding
/// (its end is unknown) with `cut` set.
pub fn parse(msg: &[u8]) -> Option<Message> {
    if msg.len() < 12 {
        return None;
    }
    let n = |i| u16_at(msg, i).map(usize::from).unwrap_or(0);
    let flags = u16_at(msg, 2).ok()?;
    let mut m = Message {
        id: u16_at(msg, 0).ok()?,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0xF) as u8,
        ..Default::default()
    };
    let counts = [n(4), n(6), n(8), n(10)];
    if read_sections(msg, &counts, &mut m).is_err() {
        m.cut = true;
    }
    Some(m)
}

fn read_sections(msg: &[u8], counts: &[usize; 4], m: &mut Message) -> Result<(), DnsError> {
    let mut pos = 12;
    for _ in 0..counts[0].min(MAX_RECORDS_PER_SECTION) {
        let (name, after) = labels(msg, pos)?;
        let qtype = u16_at(msg, after)?;
        u16_at(msg, after + 2)?;
        m.questions.push((name, qtype));
        pos = after + 4;
    }
    if counts[0] > MAX_RECORDS_PER_SECTION {
        return Err(DnsError::Truncated);
    }
    for (section, &count) in [Section::Answer, Section::Authority, Section::Additional]
        .into_iter()
        .zip(&counts[1..])
    {
        for _ in 0..count.min(MAX_RECORDS_PER_SECTION) {
            let (name, after) = labels(msg, pos)?;
            let ty = u16_at(msg, after)?;
            let ttl =
                (u32::from(u16_at(msg, after + 4)?) << 16) | u32::from(u16_at(msg, after + 6)?);
            let rdlen = u16_at(msg, after + 8)? as usize;
            let start = after + 10;
            let raw = msg.get(start..start + rdlen).ok_or(DnsError::Truncated)?;
            let data = rdata(msg, ty, start, raw)?;
            m.records.push(Record {
                section,
                name,
                data,
                ttl,
            });
            pos = start + rdlen;
        }
        if count > MAX_RECORDS_PER_SECTION {
            return Err(DnsError::Truncated);
        }
    }
    Ok(())
}

/// A DNS-SD service instance name split: (instance label, service type `_ipp._tcp`,
/// domain `local`). `None` for names of another shape (host names, service types alone,
/// `_services._dns-sd._udp`).
pub fn split_instance(name: &[String]) -> Option<(&str, String, String)> {
    // <Instance> . _service . _proto . domain...
    if name.len() < 4 {
        return None;
    }
    let (svc, proto) = (&name[1], &name[2]);
    if !svc.starts_with('_') || !(proto == "_tcp" || proto == "_udp") || name[0].is_empty() {
        return None;
    }
    if name[0].eq_ignore_ascii_case("_services") && svc.eq_ignore_ascii_case("_dns-sd") {
        // `_services._dns-sd._udp.local` enumerates service types, it is no instance (a
        // subtype, `_printer._sub._ipp._tcp`, fails the protocol label check above).
        return None;
    }
    Some((
        name[0].as_str(),
        format!("{svc}.{proto}"),
        name[3..].join("."),
    ))
}

/// The device model a TXT record states: the first of `md`, `model`, `ty`, `usb_MDL`
/// (keys are case-insensitive, RFC 6763 6.4). Empty values say nothing.
pub fn txt_model(strings: &[Vec<u8>]) -> Option<String> {
    for key in ["md", "model", "ty", "usb_mdl"] {
        for s in strings {
            let Some(eq) = s.iter().position(|&b| b == b'=') else {
                continue;
            };
            if s[..eq].eq_ignore_ascii_case(key.as_bytes()) && eq + 1 < s.len() {
                return Some(String::from_utf8_lossy(&s[eq + 1..]).into_owned());
            }
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A name in wire format, uncompressed.
    pub fn name(n: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for l in n.split('.').filter(|l| !l.is_empty()) {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
        out
    }

    /// An announcement as avahi sends it: PTR, SRV, TXT and A in the answer section, the
    /// names after the first compressed with pointers.
    pub fn announcement() -> Vec<u8> {
        let mut m = vec![0, 0, 0x84, 0x00, 0, 0, 0, 4, 0, 0, 0, 1];
        // PTR _ipp._tcp.local -> Office Printer._ipp._tcp.local
        let svc_at = m.len();
        m.extend_from_slice(&name("_ipp._tcp.local"));
        m.extend_from_slice(&[0, 12, 0, 1, 0, 0, 0x11, 0x94]);
        let inst = [&b"\x0eOffice Printer"[..], &[0xC0, svc_at as u8]].concat();
        m.extend_from_slice(&(inst.len() as u16).to_be_bytes());
        let inst_at = m.len();
        m.extend_from_slice(&inst);
        // SRV Office Printer._ipp._tcp.local -> port 631, printer.local
        m.extend_from_slice(&[0xC0, inst_at as u8, 0, 33, 0x80, 1, 0, 0, 0, 120]);
        let local_at = svc_at + 1 + 4 + 1 + 4; // "local" inside _ipp._tcp.local
        let target = [&b"\x07printer"[..], &[0xC0, local_at as u8]].concat();
        m.extend_from_slice(&((6 + target.len()) as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0x02, 0x77]);
        let host_at = m.len();
        m.extend_from_slice(&target);
        // TXT
        m.extend_from_slice(&[0xC0, inst_at as u8, 0, 16, 0x80, 1, 0, 0, 0x11, 0x94]);
        let mut txt = Vec::new();
        for kv in ["txtvers=1", "ty=Brother HL-L2350DW series", "rp=ipp/print"] {
            txt.push(kv.len() as u8);
            txt.extend_from_slice(kv.as_bytes());
        }
        m.extend_from_slice(&(txt.len() as u16).to_be_bytes());
        m.extend_from_slice(&txt);
        // A printer.local
        m.extend_from_slice(&[0xC0, host_at as u8, 0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4]);
        m.extend_from_slice(&[192, 168, 1, 40]);
        // Additional: AAAA printer.local
        m.extend_from_slice(&[0xC0, host_at as u8, 0, 28, 0x80, 1, 0, 0, 0, 120, 0, 16]);
        m.extend_from_slice(&"fe80::1:40".parse::<Ipv6Addr>().unwrap().octets());
        m
    }

    #[test]
    fn announcement_with_compressed_names() {
        let m = parse(&announcement()).unwrap();
        assert!(m.response && !m.cut, "{m:?}");
        assert_eq!(m.records.len(), 5);
        let names: Vec<String> = m.records.iter().map(|r| display(&r.name)).collect();
        assert_eq!(
            names,
            [
                "_ipp._tcp.local",
                "Office Printer._ipp._tcp.local",
                "Office Printer._ipp._tcp.local",
                "printer.local",
                "printer.local"
            ]
        );
        assert_eq!(
            m.records[0].data,
            Rdata::Name(
                12,
                vec![
                    "Office Printer".into(),
                    "_ipp".into(),
                    "_tcp".into(),
                    "local".into()
                ]
            )
        );
        assert_eq!(
            m.records[1].data,
            Rdata::Srv {
                port: 631,
                target: vec!["printer".into(), "local".into()]
            }
        );
        let Rdata::Txt(t) = &m.records[2].data else {
            panic!("{:?}", m.records[2]);
        };
        assert_eq!(txt_model(t).as_deref(), Some("Brother HL-L2350DW series"));
        assert_eq!(
            m.records[3].data,
            Rdata::Address("192.168.1.40".parse().unwrap())
        );
        assert_eq!(m.records[4].section, Section::Additional);
        assert_eq!(
            split_instance(&m.records[1].name),
            Some((
                "Office Printer",
                "_ipp._tcp".to_string(),
                "local".to_string()
            ))
        );
        assert_eq!(split_instance(&m.records[0].name), None);
        assert_eq!(split_instance(&m.records[3].name), None);
    }

    #[test]
    fn every_truncation_keeps_what_came_before() {
        let full = announcement();
        let mut last = 0;
        for len in 0..full.len() {
            let m = parse(&full[..len]);
            if len < 12 {
                assert!(m.is_none());
                continue;
            }
            let m = m.unwrap();
            assert!(m.cut, "cut at {len} not noticed");
            assert!(m.records.len() >= last, "records lost at {len}");
            last = m.records.len();
        }
        assert_eq!(last, 4, "the last record is the one cut");
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_bad_names() {
        // An answer whose name points at itself, one that points forward, and a two-name
        // loop (a -> b -> a) are refused without looping.
        for owner in [vec![0xC0, 12], vec![0xC0, 14], vec![1, b'a', 0xC0, 12]] {
            let mut m = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
            m.extend_from_slice(&owner);
            m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 10, 0, 0, 1]);
            let p = parse(&m).unwrap();
            assert!(p.cut && p.records.is_empty(), "{owner:?}: {p:?}");
        }
        // A pointer chain, every step backwards: followed up to MAX_POINTER_JUMPS.
        let mut m = vec![0u8; 12];
        m.extend_from_slice(b"\x01a\x00");
        let mut prev = 12u16;
        let mut at = Vec::new();
        for _ in 0..200 {
            at.push(m.len());
            m.extend_from_slice(&(0xC000 | prev).to_be_bytes());
            prev = (m.len() - 2) as u16;
        }
        assert_eq!(read_labels(&m, at[100]).unwrap().0, vec![&b"a"[..]]);
        assert_eq!(read_labels(&m, at[199]), Err(DnsError::BadName));
    }

    #[test]
    fn garbage_and_huge_counts() {
        assert!(parse(b"").is_none());
        assert!(parse(&[0xff; 11]).is_none());
        let p = parse(&[0xff; 40]).unwrap();
        assert!(p.cut);
        // 65535 answers announced, one present: the one is kept, the message is cut.
        let mut m = vec![0, 0, 0x84, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
        m.extend_from_slice(&name("a.local"));
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 10, 0, 0, 1]);
        let p = parse(&m).unwrap();
        assert!(p.cut);
        assert_eq!(p.records.len(), 1);
        // A record type with an impossible length stays `Other`/ignored, never a panic.
        let mut m = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&name("a.local"));
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 120, 0, 3, 10, 0, 0]);
        let p = parse(&m).unwrap();
        assert_eq!(p.records[0].data, Rdata::Other(1));
        assert!(!p.cut);
    }

    #[test]
    fn instance_names_and_models() {
        let l = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(split_instance(&l("_services._dns-sd._udp.local")), None);
        assert_eq!(split_instance(&l("_printer._sub._ipp._tcp.local")), None);
        assert_eq!(
            split_instance(&l("nas._smb._tcp.local")),
            Some(("nas", "_smb._tcp".into(), "local".into()))
        );
        // The instance label may hold dots: it is one label.
        let mut n = l("_http._tcp.local");
        n.insert(0, "v1.2 box".into());
        assert_eq!(split_instance(&n).unwrap().0, "v1.2 box");
        let t = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(
            txt_model(&t(&["model=J105aAP", "md=Apple TV"])).as_deref(),
            Some("Apple TV")
        );
        assert_eq!(txt_model(&t(&["MODEL=RS820"])).as_deref(), Some("RS820"));
        assert_eq!(txt_model(&t(&["md=", "ty"])), None);
    }
}
