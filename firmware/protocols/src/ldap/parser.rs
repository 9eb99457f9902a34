//! Pure BER decoding of the outer layer of one LDAP message.

/// OID of the StartTLS extended operation (RFC 4511 4.14.1).
pub const STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
/// `[APPLICATION 23]` constructed: ExtendedRequest.
pub const EXTENDED_REQUEST: u8 = 0x77;
/// `[APPLICATION 24]` constructed: ExtendedResponse.
pub const EXTENDED_RESPONSE: u8 = 0x78;

/// Header of one BER TLV: tag, header length, content length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u8,
    pub header: usize,
    pub len: usize,
}

/// What [`tlv`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlvResult {
    Complete(Tlv),
    /// The header itself is incomplete.
    NeedMore,
    /// Not BER we accept (indefinite length, lengths over 4 bytes).
    Malformed,
}

/// Decodes the tag and length at the start of `b` (single-byte tags only: LDAP uses no
/// others at this level).
pub fn tlv(b: &[u8]) -> TlvResult {
    if b.len() < 2 {
        return TlvResult::NeedMore;
    }
    let tag = b[0];
    let first = b[1];
    if first < 0x80 {
        return TlvResult::Complete(Tlv {
            tag,
            header: 2,
            len: first as usize,
        });
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return TlvResult::Malformed;
    }
    if b.len() < 2 + n {
        return TlvResult::NeedMore;
    }
    let len = b[2..2 + n]
        .iter()
        .fold(0usize, |acc, &x| (acc << 8) | x as usize);
    TlvResult::Complete(Tlv {
        tag,
        header: 2 + n,
        len,
    })
}

/// A complete TLV inside `b` (all of it present), with its content.
fn inner(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    match tlv(b) {
        TlvResult::Complete(t) if b.len() >= t.header + t.len => Some((
            t.tag,
            &b[t.header..t.header + t.len],
            &b[t.header + t.len..],
        )),
        _ => None,
    }
}

/// The parts of an LDAP message this parser uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub id: u32,
    /// Tag of the protocol operation.
    pub op: u8,
    /// Content of the protocol operation.
    pub body: &'a [u8],
}

/// Decodes the content of an LDAPMessage SEQUENCE.
pub fn message(content: &[u8]) -> Option<Message<'_>> {
    let (tag, id, rest) = inner(content)?;
    if tag != 0x02 || id.is_empty() || id.len() > 4 {
        return None;
    }
    let id = id.iter().fold(0u32, |acc, &x| (acc << 8) | x as u32);
    let (op, body, _) = inner(rest)?;
    Some(Message { id, op, body })
}

/// Whether an ExtendedRequest's body names StartTLS.
pub fn is_starttls_request(body: &[u8]) -> bool {
    matches!(inner(body), Some((0x80, name, _)) if name == STARTTLS_OID)
}

/// The resultCode of an LDAPResult-shaped response body.
pub fn result_code(body: &[u8]) -> Option<u32> {
    let (tag, code, _) = inner(body)?;
    (tag == 0x0a && !code.is_empty() && code.len() <= 4)
        .then(|| code.iter().fold(0u32, |acc, &x| (acc << 8) | x as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_short_long_and_bad() {
        assert_eq!(
            tlv(&[0x30, 0x05]),
            TlvResult::Complete(Tlv {
                tag: 0x30,
                header: 2,
                len: 5
            })
        );
        assert_eq!(
            tlv(&[0x30, 0x82, 0x01, 0x00]),
            TlvResult::Complete(Tlv {
                tag: 0x30,
                header: 4,
                len: 256
            })
        );
        assert_eq!(tlv(&[0x30, 0x82, 0x01]), TlvResult::NeedMore);
        assert_eq!(tlv(&[0x30, 0x80]), TlvResult::Malformed);
        assert_eq!(tlv(&[0x30, 0x89]), TlvResult::Malformed);
    }
}
