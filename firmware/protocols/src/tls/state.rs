//! Per-session TLS state: record and handshake reassembly per direction.

use super::parser::*;
use crate::util::{push_capped, text, text_str};
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::{SessionRecord, Tls};
use tls_parser::{TlsMessage, TlsMessageHandshake, parse_tls_message_handshake};

/// Largest TLS record: 2^14 plaintext + 2048 expansion (RFC 5246 6.2.3).
pub const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Largest handshake message reassembled (certificate chains are the big ones; a chain
/// over this is not one we need to read).
pub const MAX_HANDSHAKE_LEN: usize = 128 * 1024;

#[derive(Debug, Default)]
struct Side {
    rec_buf: Vec<u8>,
    hs_buf: Vec<u8>,
    /// Encrypted from here on (or given up): nothing more to read in this direction.
    done: bool,
}

/// TLS stream parser.
#[derive(Debug, Default)]
pub struct TlsParser {
    sides: [Side; 2],
    client_hello_seen: bool,
    server_hello_seen: bool,
    cert_seen: bool,
    /// The session is QUIC (JA4 `q`); set by [`TlsParser::quic`].
    quic: bool,
}

impl TlsParser {
    pub fn new() -> TlsParser {
        TlsParser::default()
    }

    /// A parser for handshake bytes carried in QUIC CRYPTO frames (JA4 starts with `q`).
    pub fn quic() -> TlsParser {
        TlsParser {
            quic: true,
            ..Default::default()
        }
    }

    /// One whole handshake message (4-byte header included) from a carrier other than
    /// TLS records (QUIC CRYPTO frames).
    pub fn handshake_message(&mut self, dir: Direction, msg: &[u8], rec: &mut SessionRecord) {
        if msg.len() >= 4 {
            self.message(dir, msg, rec);
        }
    }

    /// A ServerHello (any layout): the negotiated version and cipher; TLS 1.3 and its
    /// drafts encrypt everything after it.
    fn server_hello(&mut self, tls: &mut Tls, legacy: u16, cipher: u16, ext: Option<&[u8]>) {
        self.server_hello_seen = true;
        let v = server_selected_version(legacy, ext);
        tls.version = Some(version_name(v));
        tls.cipher = Some(cipher_name(cipher));
        if v == 0x0304 || is_tls13_draft(v) {
            for s in &mut self.sides {
                s.done = true;
                s.rec_buf = Vec::new();
                s.hs_buf = Vec::new();
            }
        }
    }

    fn give_up(&mut self, dir: Direction, rec: &mut SessionRecord, flag: &str) {
        rec.flag(flag);
        let s = &mut self.sides[dir.index()];
        s.done = true;
        s.rec_buf = Vec::new();
        s.hs_buf = Vec::new();
    }

    fn records(&mut self, dir: Direction, rec: &mut SessionRecord) {
        loop {
            let side = &mut self.sides[dir.index()];
            if side.done || side.rec_buf.len() < 5 {
                return;
            }
            let h = &side.rec_buf;
            let ty = h[0];
            let len = u16::from_be_bytes([h[3], h[4]]) as usize;
            if !(20..=24).contains(&ty) || h[1] != 3 {
                let flag = if h[0] & 0x80 != 0 && !self.client_hello_seen {
                    "tls_sslv2_hello"
                } else {
                    "malformed:tls"
                };
                return self.give_up(dir, rec, flag);
            }
            if len > MAX_RECORD_LEN {
                return self.give_up(dir, rec, "malformed:tls");
            }
            if side.rec_buf.len() < 5 + len {
                return;
            }
            let payload: Vec<u8> = side.rec_buf[5..5 + len].to_vec();
            side.rec_buf.drain(..5 + len);
            match ty {
                22 => {
                    if side.hs_buf.len() + payload.len() > MAX_HANDSHAKE_LEN {
                        return self.give_up(dir, rec, "tls_handshake_too_long");
                    }
                    side.hs_buf.extend_from_slice(&payload);
                    self.handshakes(dir, rec);
                }
                // ChangeCipherSpec or application data: encrypted from here on.
                20 | 23 => {
                    let s = &mut self.sides[dir.index()];
                    s.done = true;
                    s.rec_buf = Vec::new();
                    s.hs_buf = Vec::new();
                    return;
                }
                _ => {} // alerts, heartbeats
            }
        }
    }

    fn handshakes(&mut self, dir: Direction, rec: &mut SessionRecord) {
        loop {
            let side = &mut self.sides[dir.index()];
            if side.done || side.hs_buf.len() < 4 {
                return;
            }
            let mlen =
                u32::from_be_bytes([0, side.hs_buf[1], side.hs_buf[2], side.hs_buf[3]]) as usize;
            if mlen + 4 > MAX_HANDSHAKE_LEN {
                return self.give_up(dir, rec, "tls_handshake_too_long");
            }
            if side.hs_buf.len() < 4 + mlen {
                return;
            }
            let msg: Vec<u8> = side.hs_buf.drain(..4 + mlen).collect();
            self.message(dir, &msg, rec);
        }
    }

    fn message(&mut self, dir: Direction, msg: &[u8], rec: &mut SessionRecord) {
        let parsed = match parse_tls_message_handshake(msg) {
            Ok((_, TlsMessage::Handshake(h))) => h,
            _ => {
                // Unknown or unparsable message types are skipped, not fatal.
                if matches!(msg[0], 1 | 2 | 11) {
                    rec.flag("malformed:tls");
                }
                return;
            }
        };
        let mut tls = rec.tls.take().unwrap_or_default();
        match (dir, parsed) {
            (Direction::ToServer, TlsMessageHandshake::ClientHello(ch))
                if !self.client_hello_seen =>
            {
                self.client_hello_seen = true;
                let info = ClientHelloInfo::new(
                    ch.version.0,
                    ch.ciphers.iter().map(|c| c.0).collect(),
                    ch.ext,
                );
                fill_client_hello(&mut tls, &info, self.quic, rec);
            }
            (Direction::ToClient, TlsMessageHandshake::ServerHello(sh))
                if !self.server_hello_seen =>
            {
                self.server_hello(&mut tls, sh.version.0, sh.cipher.0, sh.ext);
            }
            // TLS 1.3 drafts up to 21 put the draft version in the legacy field and have
            // no session id (tls-parser decodes them as this variant).
            (Direction::ToClient, TlsMessageHandshake::ServerHelloV13Draft18(sh))
                if !self.server_hello_seen =>
            {
                self.server_hello(&mut tls, sh.version.0, sh.cipher.0, sh.ext);
            }
            (Direction::ToClient, TlsMessageHandshake::Certificate(c)) if !self.cert_seen => {
                self.cert_seen = true;
                if let Some(first) = c.cert_chain.first() {
                    match cert_names(first.data) {
                        Some((subject, issuer)) => {
                            tls.cert_subject = Some(text_str(rec, &subject));
                            tls.cert_issuer = Some(text_str(rec, &issuer));
                        }
                        None => rec.flag("malformed:tls-certificate"),
                    }
                }
                let start = rec.start.nanos();
                for raw in c.cert_chain.iter().take(super::cert::MAX_CHAIN) {
                    match super::cert::parse_cert(raw.data, start) {
                        Some(mut cert) => {
                            for s in [&mut cert.subject, &mut cert.issuer] {
                                *s = text_str(rec, s);
                            }
                            for s in &mut cert.san {
                                *s = text_str(rec, s);
                            }
                            tls.certs.push(cert);
                        }
                        None => rec.flag("malformed:tls-certificate"),
                    }
                }
                if c.cert_chain.len() > super::cert::MAX_CHAIN {
                    rec.flag("list_truncated");
                }
                if tls.certs.first().is_some_and(|c| c.expired) {
                    rec.flag("tls_cert_expired");
                }
            }
            _ => {}
        }
        rec.tls = Some(tls);
    }
}

fn fill_client_hello(tls: &mut Tls, info: &ClientHelloInfo, quic: bool, rec: &mut SessionRecord) {
    tls.sni = info.sni.as_ref().map(|s| text_str(rec, s));
    if tls.version.is_none() {
        tls.version = Some(version_name(info.offered_version()));
    }
    tls.ja3 = Some(info.ja3());
    tls.ja4 = Some(info.ja4(quic));
    for a in &info.alpn {
        let a = text(rec, a);
        push_capped(rec, &mut tls.alpn, a);
    }
}

impl StreamParser for TlsParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let side = &mut self.sides[dir.index()];
        if side.done {
            return;
        }
        side.rec_buf.extend_from_slice(data);
        self.records(dir, rec);
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        // Record framing is lost; the handshake fields seen so far stay.
        let s = &mut self.sides[dir.index()];
        s.done = true;
        s.rec_buf = Vec::new();
        s.hs_buf = Vec::new();
    }

    fn on_close(&mut self, rec: &mut SessionRecord, _sink: &mut dyn Sink) {
        if !self.client_hello_seen && !self.sides[0].rec_buf.is_empty() {
            rec.flag("tls_incomplete_hello");
        }
        for s in &mut self.sides {
            s.done = true;
            s.rec_buf = Vec::new();
            s.hs_buf = Vec::new();
        }
    }
}
