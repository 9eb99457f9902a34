//! Pure DNS message decoding (RFC 1035), defensive: every read is bounds-checked and
//! every limit is a named constant.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest domain name (RFC 1035 2.3.4: 255 octets).
pub const MAX_NAME_LEN: usize = 255;
/// Compression pointers followed in one name; a loop or a chain longer than this is
/// malformed (a name of 255 octets cannot need more than 127 labels).
pub const MAX_POINTER_JUMPS: usize = 128;
/// Records decoded per section; real responses carry a few dozen at most.
pub const MAX_RECORDS_PER_SECTION: usize = 64;

/// A decoded DNS message (only what sessions keep).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub rcode: u8,
    pub questions: Vec<(String, u16)>,
    /// (name, type, data as text).
    pub answers: Vec<(String, u16, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum DnsError {
    /// The message ends before a field it announces.
    Truncated,
    /// A name with a pointer loop, too many jumps, or over 255 octets.
    BadName,
}

pub(crate) fn u16_at(b: &[u8], i: usize) -> Result<u16, DnsError> {
    match (b.get(i), b.get(i + 1)) {
        (Some(&x), Some(&y)) => Ok(u16::from_be_bytes([x, y])),
        _ => Err(DnsError::Truncated),
    }
}

/// Reads a possibly compressed name at `pos` as its raw labels (slices of `msg`); returns
/// them and the position after the name. The one place compression pointers are followed
/// (DNS and mDNS): pointers must go backwards, at most [`MAX_POINTER_JUMPS`], and the name
/// at most [`MAX_NAME_LEN`] octets.
pub fn read_labels(msg: &[u8], mut pos: usize) -> Result<(Vec<&[u8]>, usize), DnsError> {
    let mut labels = Vec::new();
    let mut end_after: Option<usize> = None;
    let mut jumps = 0;
    let mut octets = 0;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    return Ok((labels, end_after.unwrap_or(pos + 1)));
                }
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(DnsError::Truncated)?;
                octets += len + 1;
                if octets > MAX_NAME_LEN {
                    return Err(DnsError::BadName);
                }
                labels.push(label);
                pos += 1 + len;
            }
            0xC0 => {
                let target = (u16_at(msg, pos)? & 0x3FFF) as usize;
                if end_after.is_none() {
                    end_after = Some(pos + 2);
                }
                jumps += 1;
                // Pointers must go backwards; forward pointers are how loops start.
                if jumps > MAX_POINTER_JUMPS || target >= pos {
                    return Err(DnsError::BadName);
                }
                pos = target;
            }
            _ => return Err(DnsError::BadName), // 0x40/0x80: reserved label types
        }
    }
}

/// Reads a possibly compressed name at `pos`; returns it and the position after it.
/// Bytes other than printable ASCII (and `.` or a backslash inside a label) are written `\DDD`.
pub fn read_name(msg: &[u8], pos: usize) -> Result<(String, usize), DnsError> {
    let (labels, after) = read_labels(msg, pos)?;
    let mut name = String::new();
    for label in labels {
        if !name.is_empty() {
            name.push('.');
        }
        for &c in label {
            if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                name.push(c as char);
            } else {
                name.push_str(&format!("\\{c:03}"));
            }
        }
    }
    if name.is_empty() {
        name.push('.');
    }
    Ok((name, after))
}

/// Name of a query/record type (`A`, `AAAA`, …), or its number.
pub fn type_name(t: u16) -> String {
    let s = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        _ => return t.to_string(),
    };
    s.to_string()
}

/// Name of a response code.
pub fn rcode_name(r: u8) -> String {
    let s = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return r.to_string(),
    };
    s.to_string()
}

pub(crate) fn rdata_text(
    msg: &[u8],
    ty: u16,
    start: usize,
    rdata: &[u8],
) -> Result<Option<String>, DnsError> {
    Ok(match ty {
        1 if rdata.len() == 4 => {
            Some(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string())
        }
        28 if rdata.len() == 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(rdata);
            Some(Ipv6Addr::from(a).to_string())
        }
        2 | 5 | 12 | 39 => Some(read_name(msg, start)?.0),
        15 if rdata.len() >= 3 => Some(read_name(msg, start + 2)?.0),
        33 if rdata.len() >= 7 => Some(read_name(msg, start + 6)?.0),
        6 => Some(read_name(msg, start)?.0),
        16 | 99 => {
            let mut out = Vec::new();
            let mut r = rdata;
            while let Some((&n, rest)) = r.split_first() {
                let n = (n as usize).min(rest.len());
                out.extend_from_slice(&rest[..n]);
                r = &rest[n..];
            }
            Some(String::from_utf8_lossy(&out).into_owned())
        }
        _ => None,
    })
}

/// Decodes one DNS message. Questions and answers beyond the section caps are skipped.
pub fn parse(msg: &[u8]) -> Result<Message, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::Truncated);
    }
    let flags = u16_at(msg, 2)?;
    let qd = u16_at(msg, 4)? as usize;
    let an = u16_at(msg, 6)? as usize;
    let mut m = Message {
        id: u16_at(msg, 0)?,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0xF) as u8,
        ..Default::default()
    };
    let mut pos = 12;
    for _ in 0..qd.min(MAX_RECORDS_PER_SECTION) {
        let (name, after) = read_name(msg, pos)?;
        let qtype = u16_at(msg, after)?;
        u16_at(msg, after + 2)?;
        m.questions.push((name, qtype));
        pos = after + 4;
    }
    if qd > MAX_RECORDS_PER_SECTION {
        return Ok(m);
    }
    for _ in 0..an.min(MAX_RECORDS_PER_SECTION) {
        let (name, after) = read_name(msg, pos)?;
        let ty = u16_at(msg, after)?;
        let rdlen = u16_at(msg, after + 8)? as usize;
        let start = after + 10;
        let rdata = msg.get(start..start + rdlen).ok_or(DnsError::Truncated)?;
        if let Some(text) = rdata_text(msg, ty, start, rdata)? {
            m.answers.push((name, ty, text));
        }
        pos = start + rdlen;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_loops_and_forward_pointers_are_rejected() {
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[0xC0, 12]); // points at itself
        assert_eq!(read_name(&msg, 12), Err(DnsError::BadName));
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[1, b'a', 0xC0, 12]); // a -> back to a -> ...
        assert_eq!(read_name(&msg, 12), Err(DnsError::BadName));
    }

    #[test]
    fn compressed_names() {
        // "example.com" at 12, then "www" + pointer to 12.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x07example\x03com\x00");
        let www = msg.len();
        msg.extend_from_slice(b"\x03www\xC0\x0c");
        assert_eq!(
            read_name(&msg, www).unwrap(),
            ("www.example.com".to_string(), msg.len())
        );
        assert_eq!(read_name(&msg, 12).unwrap().0, "example.com");
        assert_eq!(read_name(&[0u8; 13], 12).unwrap().0, ".");
    }
}
