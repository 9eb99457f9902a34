//! The transcript format of the seed corpus and test data: one TCP session's payload as
//! a sequence of `(direction, bytes)` records — 1 byte direction (`>` client → server,
//! `<` server → client), u32 big-endian length, bytes. `fuzz/pcap2transcript.py` makes
//! them from pcaps of real clients and servers.

use crate::Direction;

/// One session's payload as `(direction, bytes)` records, in order.
pub type Transcript = Vec<(Direction, Vec<u8>)>;

/// Decodes a transcript; a truncated last record is kept as far as it goes.
pub fn decode(mut b: &[u8]) -> Transcript {
    let mut out = Vec::new();
    while b.len() >= 5 {
        let dir = if b[0] == b'<' {
            Direction::ToClient
        } else {
            Direction::ToServer
        };
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        let end = (5 + len).min(b.len());
        out.push((dir, b[5..end].to_vec()));
        b = &b[end..];
    }
    out
}

/// Encodes a transcript.
pub fn encode(records: &[(Direction, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (dir, data) in records {
        out.push(if *dir == Direction::ToClient {
            b'<'
        } else {
            b'>'
        });
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let t = vec![
            (Direction::ToServer, b"GET".to_vec()),
            (Direction::ToClient, vec![0, 1, 2]),
        ];
        assert_eq!(decode(&encode(&t)), t);
    }
}
