//! Per-session SMB state: session-service frames of each direction until the dialect is
//! chosen, then nothing.

use super::parser::{Negotiate, parse};
use crate::util::text_str;
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::{SessionRecord, Smb};

/// Largest frame looked at: a NEGOTIATE is well under it; a bigger frame is skipped.
pub const MAX_FRAME: usize = 8 * 1024;
/// Frames looked at per direction before giving up on finding the negotiation (a
/// session picked up midway never shows one).
pub const MAX_FRAMES: u32 = 8;

/// The SMB2 answer to a multi-protocol negotiate (MS-SMB2 §3.3.5.3.1): not final.
const WILDCARD: &str = "2.???";

/// NetBIOS session-service message types (RFC 1002 §4.3.1).
const SESSION_MESSAGE: u8 = 0x00;

#[derive(Debug, Default)]
struct Side {
    buf: Vec<u8>,
    /// Bytes of an oversized frame still to skip.
    skip: usize,
    frames: u32,
    done: bool,
}

#[derive(Debug, Default)]
pub struct SmbParser {
    sides: [Side; 2],
    /// An SMB1 server's choice, resolved against the client's offer.
    smb1_index: Option<u16>,
}

impl SmbParser {
    pub fn new() -> SmbParser {
        SmbParser::default()
    }

    fn message(&mut self, m: &[u8], rec: &mut SessionRecord) {
        let parsed = parse(m);
        if parsed == Negotiate::NotSmb {
            rec.flag("malformed:smb");
        }
        let offer = match &parsed {
            // Dialect strings come off the wire: printable and capped.
            Negotiate::Offer(d) => Some(d.iter().map(|s| text_str(rec, s)).collect()),
            _ => None,
        };
        let smb = rec.smb.get_or_insert_with(Smb::default);
        match parsed {
            Negotiate::Offer(_) if smb.client_dialects.is_empty() => {
                smb.client_dialects = offer.unwrap_or_default();
            }
            // `2.???` answers a multi-protocol SMB1 negotiate: the client negotiates again
            // in SMB2 and the server's next choice is the dialect.
            Negotiate::Chosen(d) if smb.dialect.as_deref().is_none_or(|x| x == WILDCARD) => {
                smb.dialect = Some(d);
            }
            Negotiate::ChosenIndex(Some(i)) => self.smb1_index = Some(i),
            _ => {}
        }
        if smb.dialect.is_none()
            && let Some(d) = self
                .smb1_index
                .and_then(|i| smb.client_dialects.get(i as usize))
        {
            smb.dialect = Some(d.clone());
        }
        if rec
            .smb
            .as_ref()
            .is_some_and(|s| s.dialect.as_deref().is_some_and(|d| d != WILDCARD))
        {
            // Chosen: nothing more to learn from either side.
            self.sides.iter_mut().for_each(|s| {
                s.done = true;
                s.buf = Vec::new();
            });
        }
    }
}

impl StreamParser for SmbParser {
    fn on_data(
        &mut self,
        dir: Direction,
        mut data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let d = dir.index();
        while !self.sides[d].done && !data.is_empty() {
            let side = &mut self.sides[d];
            if side.skip > 0 {
                let n = side.skip.min(data.len());
                side.skip -= n;
                data = &data[n..];
                continue;
            }
            let want = if side.buf.len() < 4 {
                4 - side.buf.len()
            } else {
                let len = u32::from_be_bytes([0, side.buf[1], side.buf[2], side.buf[3]]) as usize;
                4 + len - side.buf.len()
            };
            let n = want.min(data.len());
            side.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if side.buf.len() == 4 {
                let len = u32::from_be_bytes([0, side.buf[1], side.buf[2], side.buf[3]]) as usize;
                if len > MAX_FRAME {
                    side.skip = len;
                    side.buf.clear();
                    side.frames += 1;
                    side.done = side.frames >= MAX_FRAMES;
                    continue;
                }
            }
            if side.buf.len() >= 4 {
                let len = u32::from_be_bytes([0, side.buf[1], side.buf[2], side.buf[3]]) as usize;
                if side.buf.len() == 4 + len {
                    let frame = std::mem::take(&mut side.buf);
                    side.frames += 1;
                    side.done = side.frames >= MAX_FRAMES;
                    // Session request/response and keep-alives carry no SMB.
                    if frame[0] == SESSION_MESSAGE && len > 0 {
                        self.message(&frame[4..], rec);
                    }
                }
            }
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        let s = &mut self.sides[dir.index()];
        s.done = true;
        s.buf = Vec::new();
    }

    fn on_close(&mut self, _rec: &mut SessionRecord, _sink: &mut dyn Sink) {}
}

#[cfg(test)]
mod tests {
    use super::super::parser::tests::{smb1_request, smb1_response, smb2_request, smb2_response};
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::run_all_cuts;

    fn frame(m: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8, 0, 0, 0];
        f[1..4].copy_from_slice(&(m.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(m);
        f
    }

    fn smb() -> Box<dyn StreamParser> {
        Box::new(SmbParser::new())
    }

    #[test]
    fn smb2_negotiation_any_cut() {
        let up = frame(&smb2_request(&[0x0202, 0x0210, 0x0300, 0x0302, 0x0311]));
        let down = frame(&smb2_response(0x0311));
        let mut after = frame(&[0xfe, b'S', b'M', b'B']);
        after.extend(frame(&vec![0u8; 20_000]));
        let (rec, _) = run_all_cuts(smb, "smb", &[(Up, &up), (Down, &down), (Up, &after)]);
        let s = rec.smb.unwrap();
        assert_eq!(s.client_dialects, ["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"]);
        assert_eq!(s.dialect.as_deref(), Some("3.1.1"));
        assert!(rec.flags.is_empty(), "{:?}", rec.flags);
    }

    /// An old client's SMB1 negotiate answered in SMB1 (the server speaks SMB1), and the
    /// multi-protocol negotiate answered with SMB2's wildcard.
    #[test]
    fn smb1_negotiation() {
        let mut session_request = vec![0x81, 0, 0, 4, 1, 2, 3, 4];
        session_request.extend(frame(&smb1_request(&[
            "PC NETWORK PROGRAM 1.0",
            "NT LM 0.12",
        ])));
        let positive = [0x82u8, 0, 0, 0];
        let mut down = positive.to_vec();
        down.extend(frame(&smb1_response(1)));
        let (rec, _) = run_all_cuts(smb, "smb", &[(Up, &session_request), (Down, &down)]);
        assert_eq!(rec.smb.unwrap().dialect.as_deref(), Some("NT LM 0.12"));
        let up = frame(&smb1_request(&["NT LM 0.12", "SMB 2.002", "SMB 2.???"]));
        let down = frame(&smb2_response(0x02FF));
        let (rec, _) = run_all_cuts(smb, "smb", &[(Up, &up), (Down, &down)]);
        assert_eq!(rec.smb.unwrap().dialect.as_deref(), Some("2.???"));
    }

    /// The multi-protocol negotiate answered with `2.???`, then the SMB2 negotiate:
    /// the dialect is the second answer (the seed corpus has this exchange).
    #[test]
    fn wildcard_answer_then_smb2_negotiation() {
        let t = crate::testutil::corpus("smb", "synthetic-smbclient-smbd.bin");
        let (rec, _) = run_all_cuts(smb, "smb", &crate::testutil::view(&t));
        let s = rec.smb.unwrap();
        assert_eq!(s.dialect.as_deref(), Some("3.1.1"));
        assert_eq!(s.client_dialects, ["NT LM 0.12", "SMB 2.002", "SMB 2.???"]);
    }

    #[test]
    fn garbage_is_flagged_and_bounded() {
        let junk = frame(b"this is not smb at all");
        let (rec, _) = run_all_cuts(smb, "smb", &[(Up, &junk), (Down, &[0xffu8; 3000])]);
        assert!(rec.has_flag("malformed:smb"));
        assert_eq!(rec.smb.unwrap().dialect, None);
    }
}
