//! Per-session TNS state: the client's first bytes until the connect data is complete.

use super::parser::{TNS_ACCEPT, TNS_CONNECT, connect_data, header, server_version};
use crate::util::{find_ci, text_str};
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::{Oracle, SessionRecord};

/// Client bytes scanned for connect data (it is at most a few KiB; the CONNECT packet
/// plus the DATA packet that carries long connect strings).
pub const MAX_CONNECT_SCAN: usize = 16 * 1024;
/// Server bytes scanned for the listener's version (its ACCEPT or REFUSE is the first
/// packet; a redirect or version answer a few hundred bytes).
pub const MAX_SERVER_SCAN: usize = 4 * 1024;

/// Oracle TNS stream parser.
#[derive(Debug, Default)]
pub struct TnsParser {
    buf: Vec<u8>,
    checked_header: bool,
    done: bool,
    /// The listener's first bytes, until its version is found.
    server: Vec<u8>,
    server_done: bool,
}

impl TnsParser {
    pub fn new() -> TnsParser {
        TnsParser::default()
    }

    fn try_parse(&mut self, rec: &mut SessionRecord, at_close: bool) {
        if !self.checked_header && self.buf.len() >= 8 {
            self.checked_header = true;
            if header(&self.buf).map(|h| h.1) != Some(TNS_CONNECT) {
                rec.flag("malformed:oracle");
            }
        }
        let Some(start) =
            find_ci(&self.buf, b"(DESCRIPTION=").or_else(|| find_ci(&self.buf, b"(CONNECT_DATA="))
        else {
            if self.buf.len() >= MAX_CONNECT_SCAN {
                self.done = true;
            }
            return;
        };
        // Complete when the parentheses balance.
        let mut depth = 0i32;
        let mut end = None;
        for (i, &b) in self.buf[start..].iter().enumerate() {
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(start + i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = match end {
            Some(e) => e,
            None if at_close || self.buf.len() >= MAX_CONNECT_SCAN => self.buf.len(),
            None => return,
        };
        let s = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
        let c = connect_data(&s);
        let from_server = rec.oracle.take().unwrap_or_default();
        let o = Oracle {
            version: from_server.version,
            tns_version: from_server.tns_version,
            service_name: c.service_name.map(|v| text_str(rec, &v)),
            host: c.host.or(c.client_host).map(|v| text_str(rec, &v)),
            program: c.program.map(|v| text_str(rec, &v)),
            user: c.user.map(|v| text_str(rec, &v)),
        };
        rec.oracle = Some(o);
        self.done = true;
        self.buf = Vec::new();
    }

    /// The listener's answer: the TNS version of an ACCEPT, the database version of a
    /// descriptor or banner.
    fn server_data(&mut self, data: &[u8], rec: &mut SessionRecord) {
        let room = MAX_SERVER_SCAN.saturating_sub(self.server.len());
        self.server.extend_from_slice(&data[..data.len().min(room)]);
        let version =
            server_version(&String::from_utf8_lossy(&self.server)).map(|v| text_str(rec, &v));
        let o = rec.oracle.get_or_insert_with(Oracle::default);
        if o.tns_version.is_none()
            && self.server.len() >= 10
            && header(&self.server).map(|h| h.1) == Some(TNS_ACCEPT)
        {
            o.tns_version = Some(u16::from_be_bytes([self.server[8], self.server[9]]));
        }
        if version.is_some() {
            o.version = version;
            self.server_done = true;
        }
        if self.server.len() >= MAX_SERVER_SCAN {
            self.server_done = true;
        }
        if self.server_done {
            self.server = Vec::new();
        }
    }
}

impl StreamParser for TnsParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        if dir == Direction::ToClient && !self.server_done {
            self.server_data(data, rec);
            return;
        }
        if self.done || dir != Direction::ToServer {
            if rec.oracle.is_none() && !self.done {
                rec.oracle = Some(Oracle::default());
            }
            return;
        }
        let room = MAX_CONNECT_SCAN.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        self.try_parse(rec, false);
        if self.done && rec.oracle.is_none() {
            rec.oracle = Some(Oracle::default());
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        if dir == Direction::ToServer {
            self.done = true;
        } else {
            self.server_done = true;
            self.server = Vec::new();
        }
    }

    fn on_close(&mut self, rec: &mut SessionRecord, _sink: &mut dyn Sink) {
        if !self.done && !self.buf.is_empty() {
            self.try_parse(rec, true);
        }
        self.done = true;
        if rec.oracle.is_none() {
            rec.oracle = Some(Oracle::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::run_all_cuts;

    /// A TNS CONNECT packet laid out as JDBC thin / sqlplus send it: 58-byte header
    /// part, connect data at offset 58.
    fn connect_packet(data: &str) -> Vec<u8> {
        let mut p = vec![0u8; 58];
        let total = 58 + data.len();
        p[0..2].copy_from_slice(&(total as u16).to_be_bytes());
        p[4] = TNS_CONNECT;
        p[8..10].copy_from_slice(&314u16.to_be_bytes()); // version
        p[10..12].copy_from_slice(&300u16.to_be_bytes()); // lowest compatible
        p[24..26].copy_from_slice(&(data.len() as u16).to_be_bytes());
        p[26..28].copy_from_slice(&58u16.to_be_bytes());
        p.extend_from_slice(data.as_bytes());
        p
    }

    #[test]
    fn connect_data_fields() {
        let cd = "(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=db01.corp.example)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=SALES)(CID=(PROGRAM=JDBC Thin Client)(HOST=__jdbc__)(USER=suzuki))))";
        let pkt = connect_packet(cd);
        assert_eq!(
            crate::identify_tcp(50000, 1521, &pkt, b""),
            crate::Identification::Known("oracle")
        );
        let (rec, _) = run_all_cuts(
            || Box::new(TnsParser::new()),
            "oracle",
            &[(Up, &pkt), (Down, b"\x00\x08\x00\x00\x02\x00\x00\x00")],
        );
        let o = rec.oracle.unwrap();
        assert_eq!(o.service_name.as_deref(), Some("SALES"));
        assert_eq!(o.host.as_deref(), Some("db01.corp.example"));
        assert_eq!(o.program.as_deref(), Some("JDBC Thin Client"));
        assert_eq!(o.user.as_deref(), Some("suzuki"));
        assert!(rec.flags.is_empty());
    }

    /// The listener refuses (ORA-12514) with an 11.2.0.2 VSNNUM; an accepting listener
    /// shows its TNS version; a listener saying VSNNUM=0 gives no version.
    #[test]
    fn listener_version_from_refuse_and_accept() {
        let pkt = connect_packet("(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=X)))");
        let err = b"(DESCRIPTION=(TMP=)(VSNNUM=186647040)(ERR=12514)(ERROR_STACK=(ERROR=(CODE=12514)(EMFI=4))))";
        let mut refuse = vec![0u8, 0, 0, 0, 4, 0, 0, 0, 1, 0];
        refuse.extend_from_slice(&(err.len() as u16).to_be_bytes());
        refuse.extend_from_slice(err);
        let n = refuse.len() as u16;
        refuse[0..2].copy_from_slice(&n.to_be_bytes());
        let (rec, _) = run_all_cuts(
            || Box::new(TnsParser::new()),
            "oracle",
            &[(Up, &pkt), (Down, &refuse)],
        );
        let o = rec.oracle.unwrap();
        assert_eq!(o.version.as_deref(), Some("11.2.0.2.0"));
        assert_eq!(o.service_name.as_deref(), Some("X"));
        let mut accept = vec![0u8, 32, 0, 0, 2, 0, 0, 0];
        accept.extend_from_slice(&315u16.to_be_bytes());
        accept.resize(32, 0);
        let (rec, _) = run_all_cuts(
            || Box::new(TnsParser::new()),
            "oracle",
            &[(Up, &pkt), (Down, &accept)],
        );
        assert_eq!(rec.oracle.as_ref().unwrap().tns_version, Some(315));
        assert_eq!(rec.oracle.unwrap().version, None);
        let zero = b"\x00\x20\x00\x00\x04\x00\x00\x00(DESCRIPTION=(VSNNUM=0)(ERR=1))";
        let (rec, _) = run_all_cuts(
            || Box::new(TnsParser::new()),
            "oracle",
            &[(Up, &pkt), (Down, zero)],
        );
        assert_eq!(rec.oracle.unwrap().version, None);
    }

    #[test]
    fn not_tns_is_flagged_but_recorded() {
        let (rec, _) = run_all_cuts(
            || Box::new(TnsParser::new()),
            "oracle",
            &[(Up, b"GET / HTTP/1.1\r\n\r\n")],
        );
        assert!(rec.has_flag("malformed:oracle"));
        assert_eq!(rec.oracle, Some(Oracle::default()));
    }
}
