//! Protocol upgrades and tunnels: one mechanism for every stream that changes protocol
//! midway (HTTP `CONNECT` → 2xx, SMTP/IMAP `STARTTLS`, POP3 `STLS`, FTP `AUTH TLS`, LDAP
//! StartTLS, PostgreSQL `SSLRequest`, XMPP `<starttls/>` → `<proceed/>`, HTTP `101
//! Switching Protocols`).
//!
//! Why one mechanism: proxied HTTPS and STARTTLS mail are most of an office's traffic, and
//! every TLS check (SNI, JA3/JA4, certificates, the rules on them) must see them. Suricata
//! calls this "protocol change" and Zeek "analyzer upgrade": after the upgrade point the
//! stream is identified again and handed to the parser for what it now carries.
//!
//! How a protocol author uses it (see also `template/`):
//! 1. When the outer protocol agreed to switch (the server accepted: `220` to STARTTLS,
//!    `2xx` to CONNECT, `S` to SSLRequest — never on the request alone, a refusal keeps
//!    the old protocol), stop parsing and keep an [`Upgrade`] to hand out.
//! 2. Put into [`Upgrade::pending`] every byte after the upgrade point that the parser was
//!    already given (the rest of the chunk, bytes held while waiting for the answer):
//!    they are the first bytes of the inner protocol.
//! 3. Return it once from [`StreamParser::take_upgrade`]; register the parser with
//!    [`layered`] in `stream_parser` (lib.rs).
//!
//! The [`Layered`] wrapper then records the session's `tunnel` object (the first
//! upgrade) and a `tunnel:<kind>` flag (every upgrade), identifies the inner stream with
//! [`identify_tcp`] (or takes [`Upgrade::inner`] when the protocol says what follows) and
//! feeds the inner parser, which fills its own object (`tls`, `http`, …) in the same
//! record. Inner parsers may upgrade again (CONNECT → SMTP → STARTTLS), up to
//! [`MAX_TUNNEL_DEPTH`] layers.

use crate::identify::{IDENTIFY_LIMIT, Identification, identify_tcp, identify_tcp_at_close};
use crate::{Direction, Expectation, Sink, StreamParser};
use kuroko_model::session::{SessionRecord, Tunnel};

/// Most nested upgrades followed on one stream; deeper ones are left opaque (flag
/// `tunnel_too_deep`). Real traffic nests two (a CONNECT carrying STARTTLS mail); each
/// layer costs a parser, so a hostile stream of CONNECTs inside CONNECTs must stop.
pub const MAX_TUNNEL_DEPTH: u8 = 3;

/// What a parser hands over when its protocol switched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// `http-connect`, `starttls`, `http-upgrade`.
    pub kind: &'static str,
    /// `host:port` for a CONNECT.
    pub target: Option<String>,
    /// The inner protocol when the outer one says what follows (`tls` after STARTTLS);
    /// `None`: identify it by content.
    pub inner: Option<&'static str>,
    /// Bytes after the upgrade point the outer parser was already given, per direction
    /// (index [`Direction::index`]).
    pub pending: [Vec<u8>; 2],
}

impl Upgrade {
    /// A STARTTLS-style upgrade: TLS follows.
    pub fn starttls(pending: [Vec<u8>; 2]) -> Upgrade {
        Upgrade {
            kind: "starttls",
            target: None,
            inner: Some("tls"),
            pending,
        }
    }
}

/// Most bytes held per direction between an upgrade request (STARTTLS) and the server's
/// answer. A client waits for the answer, so real traffic holds none; a server that never
/// answers must not make us buffer the rest of the stream (flag `upgrade_answer_lost`,
/// then the old protocol is parsed on).
pub const MAX_HELD_BEFORE_ANSWER: usize = 16 * 1024;

/// What a line-based server's line says about a pending upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not the answer (a continuation line, an untagged response).
    NotYet,
    Accepted,
    Refused,
}

/// Outcome of [`AwaitingAnswer::feed`].
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Pending,
    /// The server agreed: every held byte after the answer line, per direction.
    Accepted([Vec<u8>; 2]),
    /// The server refused (or never answered): the held bytes, per direction, belong to
    /// the old protocol and must be parsed as such (server side first).
    Refused([Vec<u8>; 2]),
}

/// Bytes of both directions held between a line-based upgrade request (SMTP/IMAP
/// STARTTLS, POP3 STLS, FTP AUTH TLS) and the server's answer line, which decides
/// whether they are the old protocol or the first bytes of TLS.
#[derive(Debug, Default)]
pub struct AwaitingAnswer {
    held: [Vec<u8>; 2],
    /// Where the search for the next server line resumes.
    scanned: usize,
}

impl AwaitingAnswer {
    /// Holds `data`; `judge` is asked about each complete server line (without CRLF).
    pub fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        rec: &mut SessionRecord,
        judge: impl Fn(&[u8]) -> Verdict,
    ) -> Answer {
        self.held[dir.index()].extend_from_slice(data);
        if dir == Direction::ToClient {
            let down = &self.held[1];
            while let Some(nl) = down[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + nl;
                let line = &down[self.scanned..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                self.scanned = end + 1;
                match judge(line) {
                    Verdict::NotYet => {}
                    Verdict::Accepted => {
                        let mut held = std::mem::take(&mut self.held);
                        held[1].drain(..self.scanned);
                        return Answer::Accepted(held);
                    }
                    Verdict::Refused => return Answer::Refused(std::mem::take(&mut self.held)),
                }
            }
        }
        if self.held.iter().any(|h| h.len() > MAX_HELD_BEFORE_ANSWER) {
            rec.flag("upgrade_answer_lost");
            return Answer::Refused(std::mem::take(&mut self.held));
        }
        Answer::Pending
    }
}

/// A parser whose protocol may upgrade, at tunnel depth `depth` (0: the outer stream).
pub fn layered(outer: Box<dyn StreamParser>, depth: u8) -> Box<dyn StreamParser> {
    Box::new(Layered {
        outer,
        next: Next::Outer,
        depth,
    })
}

/// Bytes of the inner stream while it is being identified.
#[derive(Debug, Default)]
struct Identifying {
    chunks: Vec<(Direction, Vec<u8>)>,
    len: [usize; 2],
    /// Server port to use as the identification hint (the CONNECT target's).
    port: Option<u16>,
    gaps: Vec<(Direction, u64)>,
}

impl Identifying {
    fn joined(&self, dir: Direction) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len[dir.index()]);
        for (d, c) in &self.chunks {
            if *d == dir {
                v.extend_from_slice(c);
            }
        }
        v
    }
}

enum Next {
    Outer,
    Identifying(Box<Identifying>),
    Inner(Box<dyn StreamParser>),
    /// Upgraded to something we do not parse (or too deep).
    Opaque,
}

/// The outer parser plus, once it upgraded, the inner one (see the module docs).
pub struct Layered {
    outer: Box<dyn StreamParser>,
    next: Next,
    depth: u8,
}

impl Layered {
    fn begin(&mut self, up: Upgrade, ts_ns: i64, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        rec.flag(&format!("tunnel:{}", up.kind));
        if self.depth == 0 && rec.tunnel.is_none() {
            rec.tunnel = Some(Tunnel {
                kind: up.kind.to_string(),
                target: up.target.clone(),
                inner: None,
            });
        }
        if self.depth + 1 >= MAX_TUNNEL_DEPTH {
            rec.flag("tunnel_too_deep");
            self.next = Next::Opaque;
            return;
        }
        let port = up
            .target
            .as_deref()
            .and_then(|t| t.rsplit_once(':'))
            .and_then(|(_, p)| p.parse::<u16>().ok());
        let mut id = Box::new(Identifying {
            port,
            ..Default::default()
        });
        for dir in [Direction::ToServer, Direction::ToClient] {
            let b = &up.pending[dir.index()];
            if !b.is_empty() {
                id.len[dir.index()] += b.len();
                id.chunks.push((dir, b.clone()));
            }
        }
        match up.inner {
            Some(label) => self.start_inner(label, *id, ts_ns, rec, sink),
            None => {
                self.next = Next::Identifying(id);
                self.try_identify(false, ts_ns, rec, sink);
            }
        }
    }

    fn start_inner(
        &mut self,
        label: &'static str,
        id: Identifying,
        ts_ns: i64,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        if self.depth == 0
            && let Some(t) = rec.tunnel.as_mut()
            && t.inner.is_none()
        {
            t.inner = Some(label.to_string());
        }
        let Some(mut inner) = crate::stream_parser_at_depth(label, self.depth + 1) else {
            self.next = Next::Opaque;
            return;
        };
        for (dir, n) in &id.gaps {
            inner.on_gap(*dir, *n, rec);
        }
        for (dir, chunk) in &id.chunks {
            inner.on_data(*dir, chunk, ts_ns, rec, sink);
        }
        self.next = Next::Inner(inner);
    }

    /// Identifies the inner stream; `final_call` when no more bytes will come.
    fn try_identify(
        &mut self,
        final_call: bool,
        ts_ns: i64,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        let Next::Identifying(id) = &self.next else {
            return;
        };
        let up = id.joined(Direction::ToServer);
        let down = id.joined(Direction::ToClient);
        let server_port = id.port.unwrap_or(rec.server.port);
        let full = id.len.iter().any(|&l| l >= IDENTIFY_LIMIT);
        let ident = match identify_tcp(rec.client.port, server_port, &up, &down) {
            Identification::NeedMore if !(final_call || full) => return,
            Identification::NeedMore => {
                identify_tcp_at_close(rec.client.port, server_port, &up, &down)
            }
            known => known,
        };
        let Next::Identifying(id) = std::mem::replace(&mut self.next, Next::Opaque) else {
            return;
        };
        if let Identification::Known(label) = ident {
            self.start_inner(label, *id, ts_ns, rec, sink);
        }
    }
}

impl StreamParser for Layered {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts_ns: i64,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        match &mut self.next {
            Next::Outer => {
                self.outer.on_data(dir, data, ts_ns, rec, sink);
                if let Some(up) = self.outer.take_upgrade() {
                    self.begin(up, ts_ns, rec, sink);
                }
            }
            Next::Identifying(id) => {
                let i = dir.index();
                let take = data.len().min(IDENTIFY_LIMIT.saturating_sub(id.len[i]));
                if take > 0 {
                    id.chunks.push((dir, data[..take].to_vec()));
                    id.len[i] += take;
                }
                self.try_identify(false, ts_ns, rec, sink);
                if take < data.len()
                    && let Next::Inner(inner) = &mut self.next
                {
                    inner.on_data(dir, &data[take..], ts_ns, rec, sink);
                }
            }
            Next::Inner(inner) => inner.on_data(dir, data, ts_ns, rec, sink),
            Next::Opaque => {}
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, rec: &mut SessionRecord) {
        match &mut self.next {
            Next::Outer => self.outer.on_gap(dir, len, rec),
            Next::Identifying(id) => id.gaps.push((dir, len)),
            Next::Inner(inner) => inner.on_gap(dir, len, rec),
            Next::Opaque => {}
        }
    }

    fn on_close(&mut self, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        self.outer.on_close(rec, sink);
        let ts = rec.end.nanos();
        self.try_identify(true, ts, rec, sink);
        if let Next::Inner(inner) = &mut self.next {
            inner.on_close(rec, sink);
        }
    }

    fn on_expectation_update(&mut self, expectation: &Expectation) {
        self.outer.on_expectation_update(expectation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecSink;
    use crate::testutil::record;
    use crate::tls::tests::client_hello_bytes;

    fn feed(p: &mut dyn StreamParser, rec: &mut SessionRecord, steps: &[(Direction, &[u8])]) {
        let mut sink = VecSink::default();
        for (d, b) in steps {
            p.on_data(*d, b, 0, rec, &mut sink);
        }
        p.on_close(rec, &mut sink);
    }

    #[test]
    fn connect_then_tls_fills_both_layers() {
        let hello = client_hello_bytes("inner.example.jp");
        let mut up =
            b"CONNECT inner.example.jp:443 HTTP/1.1\r\nHost: inner.example.jp:443\r\n\r\n".to_vec();
        // Optimistic client: the ClientHello goes out before the proxy answered.
        up.extend_from_slice(&hello);
        let mut rec = record("http");
        let mut p = crate::stream_parser("http").unwrap();
        feed(
            p.as_mut(),
            &mut rec,
            &[
                (Direction::ToServer, &up),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 Connection established\r\n\r\n",
                ),
            ],
        );
        let t = rec.tunnel.as_ref().expect("tunnel");
        assert_eq!(t.kind, "http-connect");
        assert_eq!(t.target.as_deref(), Some("inner.example.jp:443"));
        assert_eq!(t.inner.as_deref(), Some("tls"));
        assert_eq!(
            rec.http.as_ref().unwrap().method.as_deref(),
            Some("CONNECT")
        );
        assert_eq!(
            rec.tls.as_ref().unwrap().sni.as_deref(),
            Some("inner.example.jp")
        );
        assert!(rec.has_flag("tunnel:http-connect"));
    }

    #[test]
    fn refused_connect_is_no_tunnel() {
        let mut rec = record("http");
        let mut p = crate::stream_parser("http").unwrap();
        feed(
            p.as_mut(),
            &mut rec,
            &[
                (Direction::ToServer, b"CONNECT x:443 HTTP/1.1\r\n\r\n"),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
                ),
                (
                    Direction::ToServer,
                    b"GET http://y/ HTTP/1.1\r\nHost: y\r\n\r\n",
                ),
            ],
        );
        assert!(rec.tunnel.is_none());
        assert!(rec.tls.is_none());
        assert_eq!(rec.http.as_ref().unwrap().transactions.len(), 2);
    }

    #[test]
    fn connect_then_plain_http_inside() {
        let mut rec = record("http");
        let mut p = crate::stream_parser("http").unwrap();
        feed(
            p.as_mut(),
            &mut rec,
            &[
                (
                    Direction::ToServer,
                    b"CONNECT web.example:8080 HTTP/1.1\r\n\r\n",
                ),
                (Direction::ToClient, b"HTTP/1.1 200 OK\r\n\r\n"),
                (
                    Direction::ToServer,
                    b"GET /inner.txt HTTP/1.1\r\nHost: web.example:8080\r\n\r\n",
                ),
                (
                    Direction::ToClient,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
                ),
            ],
        );
        let t = rec.tunnel.as_ref().unwrap();
        assert_eq!(t.inner.as_deref(), Some("http"));
        let http = rec.http.as_ref().unwrap();
        assert_eq!(http.transactions.len(), 2);
        assert_eq!(http.transactions[1].uri, "/inner.txt");
        assert_eq!(http.transactions[1].status, Some(200));
    }

    #[test]
    fn nested_connects_stop_at_the_depth_limit() {
        let mut rec = record("http");
        let mut p = crate::stream_parser("http").unwrap();
        let mut steps: Vec<(Direction, &[u8])> = Vec::new();
        for _ in 0..10 {
            steps.push((Direction::ToServer, b"CONNECT a:80 HTTP/1.1\r\n\r\n"));
            steps.push((Direction::ToClient, b"HTTP/1.1 200 OK\r\n\r\n"));
        }
        feed(p.as_mut(), &mut rec, &steps);
        assert!(rec.has_flag("tunnel_too_deep"));
        assert_eq!(rec.tunnel.as_ref().unwrap().inner.as_deref(), Some("http"));
    }

    /// One line-based STARTTLS exchange, accepted: the TLS after it is parsed, the mail
    /// protocol's own object stays, whatever the cut.
    fn starttls_case(label: &str, steps: &[(Direction, &[u8])]) {
        let hello = client_hello_bytes("mail.example.jp");
        let mut all = steps.to_vec();
        all.push((Direction::ToServer, &hello));
        let (rec, _) =
            crate::testutil::run_all_cuts(|| crate::stream_parser(label).unwrap(), label, &all);
        let t = rec
            .tunnel
            .as_ref()
            .unwrap_or_else(|| panic!("{label}: no tunnel"));
        assert_eq!(t.kind, "starttls", "{label}");
        assert_eq!(t.inner.as_deref(), Some("tls"), "{label}");
        assert_eq!(
            rec.tls.as_ref().and_then(|t| t.sni.as_deref()),
            Some("mail.example.jp"),
            "{label}"
        );
        assert!(
            !rec.flags.iter().any(|f| f.starts_with("malformed")),
            "{label}: {:?}",
            rec.flags
        );
    }

    #[test]
    fn starttls_in_every_line_protocol() {
        use Direction::{ToClient as Down, ToServer as Up};
        starttls_case(
            "smtp",
            &[
                (Down, b"220 mx ESMTP\r\n"),
                (Up, b"EHLO c\r\n"),
                (Down, b"250-mx\r\n250 STARTTLS\r\n"),
                (Up, b"STARTTLS\r\n"),
                (Down, b"220 2.0.0 go ahead\r\n"),
            ],
        );
        starttls_case(
            "imap",
            &[
                (Down, b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
                (Up, b"a1 STARTTLS\r\n"),
                (Down, b"a1 OK Begin TLS negotiation now.\r\n"),
            ],
        );
        starttls_case(
            "pop3",
            &[
                (Down, b"+OK Dovecot ready.\r\n"),
                (Up, b"STLS\r\n"),
                (Down, b"+OK Begin TLS negotiation now.\r\n"),
            ],
        );
        starttls_case(
            "ftp",
            &[
                (Down, b"220 (vsFTPd 3.0.3)\r\n"),
                (Up, b"AUTH TLS\r\n"),
                (Down, b"234 Proceed with negotiation.\r\n"),
            ],
        );
    }

    #[test]
    fn refused_starttls_keeps_parsing_the_mail_protocol() {
        let (rec, _) = crate::testutil::run_all_cuts(
            || crate::stream_parser("smtp").unwrap(),
            "smtp",
            &[
                (Direction::ToClient, b"220 mx ESMTP\r\n"),
                (Direction::ToServer, b"EHLO c\r\n"),
                (Direction::ToClient, b"250 mx\r\n"),
                (Direction::ToServer, b"STARTTLS\r\n"),
                (Direction::ToClient, b"454 TLS not available\r\n"),
                (Direction::ToServer, b"AUTH PLAIN AGhhbmFrbwBzZWNyZXQ=\r\n"),
            ],
        );
        assert!(rec.tunnel.is_none());
        assert!(rec.has_flag("smtp_starttls_refused"));
        assert_eq!(rec.mail.as_ref().unwrap().user.as_deref(), Some("hanako"));
        let (rec, _) = crate::testutil::run_all_cuts(
            || crate::stream_parser("imap").unwrap(),
            "imap",
            &[
                (Direction::ToServer, b"a1 STARTTLS\r\n"),
                (Direction::ToClient, b"a1 BAD no\r\n"),
                (Direction::ToServer, b"a2 LOGIN taro secret\r\n"),
            ],
        );
        assert!(rec.tunnel.is_none());
        assert_eq!(rec.mail.as_ref().unwrap().user.as_deref(), Some("taro"));
    }

    #[test]
    fn unanswered_starttls_does_not_buffer_forever() {
        let mut rec = record("smtp");
        let mut p = crate::stream_parser("smtp").unwrap();
        let mut sink = VecSink::default();
        p.on_data(Direction::ToServer, b"STARTTLS\r\n", 0, &mut rec, &mut sink);
        let junk = vec![b'x'; 1000];
        for _ in 0..(2 * MAX_HELD_BEFORE_ANSWER / junk.len()) {
            p.on_data(Direction::ToServer, &junk, 0, &mut rec, &mut sink);
        }
        assert!(rec.has_flag("upgrade_answer_lost"));
    }
}
