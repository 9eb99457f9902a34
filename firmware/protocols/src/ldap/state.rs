//! The per-session machine: whole messages per direction, the StartTLS request's id, and
//! its answer.

use super::parser::*;
use crate::upgrade::Upgrade;
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::SessionRecord;

/// Largest message kept whole. StartTLS and its answer are tiny; bigger messages (search
/// results, binds with certificates) are skipped by their length, never buffered.
pub const MAX_MESSAGE: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Side {
    buf: Vec<u8>,
    /// Bytes of an oversized message still to skip.
    skip: usize,
}

/// LDAP stream parser (see the module docs).
#[derive(Debug, Default)]
pub struct LdapParser {
    sides: [Side; 2],
    /// Message id of a StartTLS request waiting for its answer.
    starttls_id: Option<u32>,
    upgrade: Option<Upgrade>,
    /// Upgraded or given up: nothing more to read.
    done: bool,
}

impl LdapParser {
    pub fn new() -> LdapParser {
        LdapParser::default()
    }

    fn process(&mut self, dir: Direction, rec: &mut SessionRecord) {
        loop {
            let side = &mut self.sides[dir.index()];
            if side.skip > 0 {
                let n = side.skip.min(side.buf.len());
                side.buf.drain(..n);
                side.skip -= n;
                if side.skip > 0 {
                    return;
                }
            }
            let t = match tlv(&side.buf) {
                TlvResult::NeedMore => return,
                TlvResult::Malformed => {
                    rec.flag("malformed:ldap");
                    self.done = true;
                    return;
                }
                TlvResult::Complete(t) => t,
            };
            if t.tag != 0x30 {
                rec.flag("malformed:ldap");
                self.done = true;
                return;
            }
            let total = t.header + t.len;
            if total > MAX_MESSAGE {
                side.skip = total;
                continue;
            }
            if side.buf.len() < total {
                return;
            }
            let msg: Vec<u8> = side.buf.drain(..total).collect();
            let Some(m) = message(&msg[t.header..]) else {
                rec.flag("malformed:ldap");
                continue;
            };
            match (dir, m.op) {
                (Direction::ToServer, EXTENDED_REQUEST) if is_starttls_request(m.body) => {
                    rec.flag("ldap_starttls");
                    self.starttls_id = Some(m.id);
                }
                (Direction::ToClient, EXTENDED_RESPONSE) if self.starttls_id == Some(m.id) => {
                    self.starttls_id = None;
                    if result_code(m.body) == Some(0) {
                        self.done = true;
                        let mut pending: [Vec<u8>; 2] = Default::default();
                        for (i, s) in self.sides.iter_mut().enumerate() {
                            pending[i] = std::mem::take(&mut s.buf);
                        }
                        self.upgrade = Some(Upgrade::starttls(pending));
                        return;
                    }
                    rec.flag("ldap_starttls_refused");
                }
                _ => {}
            }
        }
    }
}

impl StreamParser for LdapParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        if self.done {
            return;
        }
        self.sides[dir.index()].buf.extend_from_slice(data);
        self.process(dir, rec);
        if self.done {
            self.sides = Default::default();
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        // Message boundaries are lost in this direction: stop looking.
        let _ = dir;
        self.done = true;
        self.sides = Default::default();
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

    /// ldapsearch -ZZ's first message: ExtendedRequest (id 1) naming StartTLS.
    fn starttls_request(id: u8) -> Vec<u8> {
        let mut op = vec![0x80, STARTTLS_OID.len() as u8];
        op.extend_from_slice(STARTTLS_OID);
        let mut body = vec![0x02, 0x01, id, EXTENDED_REQUEST, op.len() as u8];
        body.extend(op);
        let mut m = vec![0x30, body.len() as u8];
        m.extend(body);
        m
    }

    fn extended_response(id: u8, code: u8) -> Vec<u8> {
        let op = [0x0a, 0x01, code, 0x04, 0x00, 0x04, 0x00];
        let mut body = vec![0x02, 0x01, id, EXTENDED_RESPONSE, op.len() as u8];
        body.extend_from_slice(&op);
        let mut m = vec![0x30, body.len() as u8];
        m.extend(body);
        m
    }

    #[test]
    fn starttls_success_then_tls() {
        let hello = crate::tls::tests::client_hello_bytes("ldap.example.jp");
        let (rec, _) = run_all_cuts(
            || crate::stream_parser("ldap").unwrap(),
            "ldap",
            &[
                (Up, &starttls_request(1)),
                (Down, &extended_response(1, 0)),
                (Up, &hello),
            ],
        );
        assert_eq!(rec.tunnel.as_ref().unwrap().kind, "starttls");
        assert_eq!(rec.tls.unwrap().sni.as_deref(), Some("ldap.example.jp"));
    }

    #[test]
    fn starttls_refused_stays_plain() {
        let (rec, _) = run_all_cuts(
            || crate::stream_parser("ldap").unwrap(),
            "ldap",
            &[(Up, &starttls_request(3)), (Down, &extended_response(3, 2))],
        );
        assert!(rec.tunnel.is_none());
        assert!(rec.has_flag("ldap_starttls_refused"));
    }
}
