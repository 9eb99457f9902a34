//! Pure decoding of one SMB message (the payload of one session-service frame).

/// Most dialects read from one NEGOTIATE request (Windows 11 offers 5).
pub const MAX_DIALECTS: usize = 16;

/// SMB2 command NEGOTIATE.
const SMB2_NEGOTIATE: u16 = 0;
/// SMB1 command SMB_COM_NEGOTIATE.
const SMB1_NEGOTIATE: u8 = 0x72;
const SMB2_HEADER: usize = 64;
const SMB1_HEADER: usize = 32;

/// What one message says about the dialect.
#[derive(Debug, PartialEq, Eq)]
pub enum Negotiate {
    /// A client's offer: the dialect names.
    Offer(Vec<String>),
    /// An SMB2 server's choice.
    Chosen(String),
    /// An SMB1 server's choice: the index into the client's offer (None: no dialect).
    ChosenIndex(Option<u16>),
    /// Another SMB message (the negotiation is over, or it was missed).
    Other,
    /// Not an SMB message.
    NotSmb,
}

/// An SMB2 dialect revision as MS-SMB2 names it.
pub fn smb2_dialect(d: u16) -> String {
    match d {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        0x02FF => "2.???".into(),
        _ => format!("0x{d:04x}"),
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Decodes one SMB message.
pub fn parse(m: &[u8]) -> Negotiate {
    match m.get(..4) {
        Some(b"\xfeSMB") => smb2(m),
        Some(b"\xffSMB") => smb1(m),
        // Encrypted (transform) and compressed SMB3 messages come after negotiation.
        Some(b"\xfdSMB") | Some(b"\xfcSMB") => Negotiate::Other,
        _ => Negotiate::NotSmb,
    }
}

fn smb2(m: &[u8]) -> Negotiate {
    let (Some(cmd), Some(flags)) = (le16(m, 12), m.get(16)) else {
        return Negotiate::NotSmb;
    };
    if cmd != SMB2_NEGOTIATE {
        return Negotiate::Other;
    }
    let body = &m[SMB2_HEADER.min(m.len())..];
    if flags & 1 != 0 {
        // Response: StructureSize 65, SecurityMode, DialectRevision.
        return match le16(body, 4) {
            Some(d) => Negotiate::Chosen(smb2_dialect(d)),
            None => Negotiate::Other,
        };
    }
    // Request: StructureSize 36, DialectCount, …, Dialects at 36.
    let Some(count) = le16(body, 2) else {
        return Negotiate::Other;
    };
    let dialects = (0..(count as usize).min(MAX_DIALECTS))
        .map_while(|i| le16(body, 36 + 2 * i))
        .map(smb2_dialect)
        .collect();
    Negotiate::Offer(dialects)
}

fn smb1(m: &[u8]) -> Negotiate {
    let (Some(&cmd), Some(&flags)) = (m.get(4), m.get(9)) else {
        return Negotiate::NotSmb;
    };
    if cmd != SMB1_NEGOTIATE {
        return Negotiate::Other;
    }
    let Some(&wc) = m.get(SMB1_HEADER) else {
        return Negotiate::Other;
    };
    if flags & 0x80 != 0 {
        return match le16(m, SMB1_HEADER + 1) {
            Some(0xFFFF) => Negotiate::ChosenIndex(None),
            Some(i) if wc > 0 => Negotiate::ChosenIndex(Some(i)),
            _ => Negotiate::Other,
        };
    }
    // Request: WordCount 0, ByteCount, then 0x02 "dialect\0" …
    let at = SMB1_HEADER + 1 + 2 * wc as usize;
    let Some(n) = le16(m, at) else {
        return Negotiate::Other;
    };
    let bytes = m.get(at + 2..).unwrap_or(&[]);
    let bytes = &bytes[..bytes.len().min(n as usize)];
    let dialects = bytes
        .split(|&b| b == 0)
        .filter_map(|d| d.strip_prefix(&[2u8]))
        .take(MAX_DIALECTS)
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .collect();
    Negotiate::Offer(dialects)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An SMB2 NEGOTIATE request offering `dialects`, as smbclient sends it.
    pub(crate) fn smb2_request(dialects: &[u16]) -> Vec<u8> {
        let mut m = vec![0u8; 64 + 36];
        m[..4].copy_from_slice(b"\xfeSMB");
        m[4] = 64;
        m[64] = 36;
        m[66..68].copy_from_slice(&(dialects.len() as u16).to_le_bytes());
        for d in dialects {
            m.extend_from_slice(&d.to_le_bytes());
        }
        m
    }

    pub(crate) fn smb2_response(dialect: u16) -> Vec<u8> {
        let mut m = vec![0u8; 64 + 65];
        m[..4].copy_from_slice(b"\xfeSMB");
        m[4] = 64;
        m[16] = 1;
        m[64] = 65;
        m[68..70].copy_from_slice(&dialect.to_le_bytes());
        m
    }

    pub(crate) fn smb1_request(dialects: &[&str]) -> Vec<u8> {
        let mut m = vec![0u8; 32];
        m[..4].copy_from_slice(b"\xffSMB");
        m[4] = 0x72;
        let mut bytes = Vec::new();
        for d in dialects {
            bytes.push(2);
            bytes.extend_from_slice(d.as_bytes());
            bytes.push(0);
        }
        m.push(0);
        m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        m.extend(bytes);
        m
    }

    pub(crate) fn smb1_response(index: u16) -> Vec<u8> {
        let mut m = vec![0u8; 32];
        m[..4].copy_from_slice(b"\xffSMB");
        m[4] = 0x72;
        m[9] = 0x80;
        m.push(17);
        m.extend_from_slice(&index.to_le_bytes());
        m.extend_from_slice(&[0u8; 34 + 2]);
        m
    }

    #[test]
    fn smb2_offer_and_choice() {
        assert_eq!(
            parse(&smb2_request(&[0x0202, 0x0210, 0x0300, 0x0302, 0x0311])),
            Negotiate::Offer(vec![
                "2.0.2".into(),
                "2.1".into(),
                "3.0".into(),
                "3.0.2".into(),
                "3.1.1".into()
            ])
        );
        assert_eq!(
            parse(&smb2_response(0x0311)),
            Negotiate::Chosen("3.1.1".into())
        );
        assert_eq!(
            parse(&smb2_response(0x0999)),
            Negotiate::Chosen("0x0999".into())
        );
    }

    #[test]
    fn smb1_offer_and_choice() {
        assert_eq!(
            parse(&smb1_request(&["NT LM 0.12", "SMB 2.002", "SMB 2.???"])),
            Negotiate::Offer(vec![
                "NT LM 0.12".into(),
                "SMB 2.002".into(),
                "SMB 2.???".into()
            ])
        );
        assert_eq!(parse(&smb1_response(0)), Negotiate::ChosenIndex(Some(0)));
        assert_eq!(parse(&smb1_response(0xFFFF)), Negotiate::ChosenIndex(None));
    }

    /// Hostile input: every prefix of each message, a huge dialect count, junk.
    #[test]
    fn truncated_and_garbage() {
        for m in [
            smb2_request(&[0x0202, 0x0311]),
            smb2_response(0x0311),
            smb1_request(&["NT LM 0.12"]),
            smb1_response(0),
        ] {
            for n in 0..m.len() {
                let _ = parse(&m[..n]);
            }
        }
        let mut big = smb2_request(&[0x0202]);
        big[66..68].copy_from_slice(&0xFFFFu16.to_le_bytes());
        assert_eq!(parse(&big), Negotiate::Offer(vec!["2.0.2".into()]));
        assert_eq!(parse(b"GET / HTTP/1.1"), Negotiate::NotSmb);
        assert_eq!(parse(b"\xfeSMB"), Negotiate::NotSmb);
    }
}
