//! Per-flow QUIC state: CRYPTO-stream reassembly of each direction's Initial packets,
//! handed to the TLS parser as handshake messages.

use super::parser::{QuicError, crypto_frames, initial_header, initial_keys, open_initial};
use crate::tls::TlsParser;
use crate::{DatagramParser, Direction, Sink};
use kuroko_model::session::SessionRecord;

/// Most CRYPTO-stream bytes reassembled per direction (a ClientHello with post-quantum
/// key shares is ~2 KiB; certificates never travel in Initials).
pub const MAX_CRYPTO_BYTES: usize = 16 * 1024;
/// Initial packets looked at per flow; the handshake's Initials are the first few.
pub const MAX_INITIAL_PACKETS: u32 = 16;
/// Coalesced packets looked at per datagram.
pub const MAX_PACKETS_PER_DATAGRAM: usize = 8;

#[derive(Debug, Default)]
struct Stream {
    data: Vec<u8>,
    filled: Vec<bool>,
    /// Bytes of `data` already handed to the TLS parser.
    delivered: usize,
}

impl Stream {
    fn insert(&mut self, offset: u64, bytes: &[u8]) -> bool {
        let Ok(start) = usize::try_from(offset) else {
            return false;
        };
        let Some(end) = start
            .checked_add(bytes.len())
            .filter(|e| *e <= MAX_CRYPTO_BYTES)
        else {
            return false;
        };
        if self.data.len() < end {
            self.data.resize(end, 0);
            self.filled.resize(end, false);
        }
        self.data[start..end].copy_from_slice(bytes);
        self.filled[start..end].iter_mut().for_each(|f| *f = true);
        true
    }

    /// Length of the contiguous prefix.
    fn contiguous(&self) -> usize {
        self.filled
            .iter()
            .position(|f| !f)
            .unwrap_or(self.filled.len())
    }
}

/// QUIC datagram parser.
#[derive(Debug)]
pub struct QuicParser {
    tls: TlsParser,
    /// Destination Connection ID of the client's first Initial (keys for both sides).
    odcid: Option<Vec<u8>>,
    streams: [Stream; 2],
    packets: u32,
}

impl Default for QuicParser {
    fn default() -> Self {
        QuicParser {
            tls: TlsParser::quic(),
            odcid: None,
            streams: Default::default(),
            packets: 0,
        }
    }
}

impl QuicParser {
    pub fn new() -> QuicParser {
        QuicParser::default()
    }

    fn deliver(&mut self, dir: Direction, rec: &mut SessionRecord) {
        let s = &mut self.streams[dir.index()];
        let ready = s.contiguous();
        // Hand over whole handshake messages only.
        loop {
            let s = &mut self.streams[dir.index()];
            let at = s.delivered;
            if ready < at + 4 {
                return;
            }
            let len =
                u32::from_be_bytes([0, s.data[at + 1], s.data[at + 2], s.data[at + 3]]) as usize;
            if ready < at + 4 + len {
                return;
            }
            let msg = s.data[at..at + 4 + len].to_vec();
            s.delivered = at + 4 + len;
            self.tls.handshake_message(dir, &msg, rec);
        }
    }
}

impl DatagramParser for QuicParser {
    fn on_datagram(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let mut rest = data;
        for _ in 0..MAX_PACKETS_PER_DATAGRAM {
            if rest.is_empty() || self.packets >= MAX_INITIAL_PACKETS {
                return;
            }
            let h = match initial_header(rest) {
                Ok(h) => h,
                Err(QuicError::NotInitialV1) => return,
                Err(QuicError::Truncated) => {
                    rec.flag("malformed:quic");
                    return;
                }
            };
            self.packets += 1;
            if dir == Direction::ToServer && self.odcid.is_none() {
                self.odcid = Some(h.dcid.to_vec());
            }
            let Some(odcid) = self.odcid.clone() else {
                return;
            };
            let keys = initial_keys(&odcid, dir == Direction::ToClient);
            let end = h.end;
            let frames_ok = match open_initial(rest, &h, &keys) {
                Ok(plain) => match crypto_frames(&plain) {
                    Ok(frames) => {
                        let mut ok = true;
                        for (offset, bytes) in frames {
                            ok &= self.streams[dir.index()].insert(offset, bytes);
                        }
                        if !ok {
                            rec.flag("quic_crypto_too_long");
                        }
                        true
                    }
                    Err(_) => false,
                },
                Err(_) => false,
            };
            if !frames_ok {
                rec.flag("malformed:quic");
            }
            self.deliver(dir, rec);
            rest = &rest[end..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecSink;
    use crate::testutil::{corpus, record};

    /// The client Initial of RFC 9001 Appendix A.2 (1200 protected bytes): its ClientHello
    /// names `example.com` and offers ALPN `alpn` (readable in the RFC's unprotected
    /// payload), TLS 1.3 only.
    #[test]
    fn rfc9001_client_initial() {
        let t = corpus("quic", "rfc9001-a2-client-initial.bin");
        let mut p = QuicParser::new();
        let mut rec = record("quic");
        let mut sink = VecSink::default();
        for (dir, d) in &t {
            p.on_datagram(*dir, d, 0, &mut rec, &mut sink);
        }
        let tls = rec.tls.unwrap();
        assert_eq!(tls.sni.as_deref(), Some("example.com"));
        assert_eq!(tls.alpn, vec!["alpn".to_string()]);
        assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
        let ja4 = tls.ja4.unwrap();
        assert!(ja4.starts_with("q13d"), "{ja4}");
        assert!(rec.flags.is_empty(), "{:?}", rec.flags);
    }

    #[test]
    fn corrupted_initial_is_flagged() {
        let mut t = corpus("quic", "rfc9001-a2-client-initial.bin");
        let d = &mut t[0].1;
        for b in &mut d[22..30] {
            *b ^= 0x5a;
        }
        let mut p = QuicParser::new();
        let mut rec = record("quic");
        let mut sink = VecSink::default();
        p.on_datagram(Direction::ToServer, d, 0, &mut rec, &mut sink);
        assert!(rec.tls.as_ref().and_then(|t| t.sni.as_ref()).is_none());
        // The sample changed: wrong header mask and keystream, the frames do not parse.
        assert!(
            rec.has_flag("malformed:quic") || rec.has_flag("malformed:tls"),
            "{:?}",
            rec.flags
        );
    }
}
