//! The per-session machine: buffers per direction, calls the pure parser, fills the
//! record, reports objects through `util::emit_object`.

use super::parser::{MAX_LINE, parse_line};
use crate::util::LineBuf;
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::SessionRecord;

#[derive(Debug, Default)]
pub struct TemplateParser {
    lines: [LineBuf; 2],
    /// Messages decoded (what a real parser would put into its protocol object).
    pub messages: u64,
}

impl StreamParser for TemplateParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let mut bad = false;
        let mut good = 0;
        self.lines[dir.index()].feed(data, MAX_LINE, |l| match parse_line(&l.bytes) {
            Some(_) => good += 1,
            None => bad = true,
        });
        self.messages += good;
        if bad {
            rec.flag("malformed:template");
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        self.lines[dir.index()].clear();
    }

    fn on_close(&mut self, _rec: &mut SessionRecord, _sink: &mut dyn Sink) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecSink;
    use crate::testutil::record;

    #[test]
    fn counts_messages_and_flags_garbage() {
        let mut p = TemplateParser::default();
        let mut rec = record("template");
        let mut sink = VecSink::default();
        p.on_data(
            Direction::ToServer,
            b"HELLO x\r\nQUIT\r\n",
            0,
            &mut rec,
            &mut sink,
        );
        assert_eq!(p.messages, 2);
        assert!(rec.flags.is_empty());
        p.on_data(Direction::ToServer, b"\x00\x01\r\n", 0, &mut rec, &mut sink);
        assert!(rec.has_flag("malformed:template"));
    }
}
