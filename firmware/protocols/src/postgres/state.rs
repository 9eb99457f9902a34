//! The per-session machine: the first client message, then the server's one-byte answer.

use crate::upgrade::{MAX_HELD_BEFORE_ANSWER, Upgrade};
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::SessionRecord;

/// Request codes in the second word of the first client message (PostgreSQL docs,
/// "Message Formats").
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    /// Collecting the first 8 client bytes.
    #[default]
    First,
    /// SSLRequest (or GSSENCRequest) sent: waiting for the answer byte.
    AwaitAnswer { gss: bool },
    /// Nothing more to look at (plain protocol, upgraded, or refused).
    Done,
}

/// PostgreSQL stream parser (see the module docs).
#[derive(Debug, Default)]
pub struct PostgresParser {
    state: State,
    first: Vec<u8>,
    /// Client bytes after the request, held until the answer.
    held: Vec<u8>,
    upgrade: Option<Upgrade>,
}

impl PostgresParser {
    pub fn new() -> PostgresParser {
        PostgresParser::default()
    }
}

impl StreamParser for PostgresParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        match (&self.state, dir) {
            (State::First, Direction::ToServer) => {
                let take = data.len().min(8 - self.first.len());
                self.first.extend_from_slice(&data[..take]);
                if self.first.len() < 8 {
                    return;
                }
                self.state = if self.first == SSL_REQUEST {
                    State::AwaitAnswer { gss: false }
                } else if self.first == GSSENC_REQUEST {
                    State::AwaitAnswer { gss: true }
                } else {
                    State::Done
                };
                if matches!(self.state, State::AwaitAnswer { .. }) {
                    self.held.extend_from_slice(&data[take..]);
                }
            }
            (State::AwaitAnswer { .. }, Direction::ToServer) => {
                if self.held.len() + data.len() > MAX_HELD_BEFORE_ANSWER {
                    rec.flag("upgrade_answer_lost");
                    self.state = State::Done;
                    self.held = Vec::new();
                } else {
                    self.held.extend_from_slice(data);
                }
            }
            (State::AwaitAnswer { gss }, Direction::ToClient) if !data.is_empty() => {
                let gss = *gss;
                self.state = State::Done;
                match (gss, data[0]) {
                    (false, b'S') => {
                        let up = std::mem::take(&mut self.held);
                        self.upgrade = Some(Upgrade::starttls([up, data[1..].to_vec()]));
                    }
                    (true, b'G') => rec.flag("postgresql_gssenc"),
                    (false, b'N') => rec.flag("postgresql_ssl_refused"),
                    (true, b'N') => {}
                    _ => rec.flag("malformed:postgresql"),
                }
                self.held = Vec::new();
            }
            _ => {}
        }
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        self.state = State::Done;
        self.held = Vec::new();
    }

    fn on_close(&mut self, _rec: &mut SessionRecord, _sink: &mut dyn Sink) {}

    fn take_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::run_all_cuts;

    #[test]
    fn ssl_request_accepted_becomes_tls() {
        let hello = crate::tls::tests::client_hello_bytes("db.example.jp");
        let (rec, _) = run_all_cuts(
            || crate::stream_parser("postgresql").unwrap(),
            "postgresql",
            &[(Up, &SSL_REQUEST), (Down, b"S"), (Up, &hello)],
        );
        assert_eq!(rec.tunnel.as_ref().unwrap().kind, "starttls");
        assert_eq!(rec.tunnel.as_ref().unwrap().inner.as_deref(), Some("tls"));
        assert_eq!(rec.tls.unwrap().sni.as_deref(), Some("db.example.jp"));
    }

    #[test]
    fn ssl_refused_and_plain_startup_stay_postgresql() {
        let (rec, _) = run_all_cuts(
            || crate::stream_parser("postgresql").unwrap(),
            "postgresql",
            &[
                (Up, &SSL_REQUEST),
                (Down, b"N"),
                (Up, b"\x00\x00\x00\x09\x00\x03\x00\x00\x00"),
            ],
        );
        assert!(rec.tunnel.is_none());
        assert!(rec.has_flag("postgresql_ssl_refused"));
        let (rec, _) = run_all_cuts(
            || crate::stream_parser("postgresql").unwrap(),
            "postgresql",
            &[(Up, b"\x00\x00\x00\x09\x00\x03\x00\x00\x00"), (Down, b"S")],
        );
        assert!(rec.tunnel.is_none() && rec.flags.is_empty());
    }
}
