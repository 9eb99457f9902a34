//! Pure decoding: bytes in, a typed message out (or an error). No session state, no I/O.

/// Longest line accepted (name every limit on hostile input, say why).
pub const MAX_LINE: usize = 1024;

/// One decoded message of the protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub verb: String,
}

/// Decodes one line; `None` when it is not a message of this protocol.
pub fn parse_line(line: &[u8]) -> Option<Message> {
    let verb = line.split(|&b| b == b' ').next()?;
    if verb.is_empty() || !verb.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    Some(Message {
        verb: String::from_utf8_lossy(verb).to_ascii_uppercase(),
    })
}
