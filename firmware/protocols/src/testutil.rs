//! Helpers for the parser tests: a fresh session record and a transcript runner that can
//! cut the stream into chunks of any size (to prove results do not depend on the cut).

use crate::{Direction, StreamParser, VecSink};
use kuroko_model::session::{Endpoint, SessionRecord};
use kuroko_model::time::Timestamp;

pub fn record(protocol: &str) -> SessionRecord {
    let mut rec = SessionRecord::new(
        "t1".into(),
        Timestamp(1_763_425_800_000_000_000),
        "tcp",
        Endpoint::new("10.0.0.5".parse().unwrap(), 50000),
        Endpoint::new("192.0.2.10".parse().unwrap(), 80),
    );
    rec.protocol = protocol.to_string();
    rec
}

/// Feeds a transcript (direction, bytes) in chunks of `chunk` bytes (0: whole messages),
/// then closes the session.
pub fn run(
    parser: &mut dyn StreamParser,
    protocol: &str,
    transcript: &[(Direction, &[u8])],
    chunk: usize,
) -> (SessionRecord, VecSink) {
    let mut rec = record(protocol);
    let mut sink = VecSink::default();
    for (dir, bytes) in transcript {
        if chunk == 0 {
            parser.on_data(*dir, bytes, 0, &mut rec, &mut sink);
        } else {
            for c in bytes.chunks(chunk) {
                parser.on_data(*dir, c, 0, &mut rec, &mut sink);
            }
        }
    }
    parser.on_close(&mut rec, &mut sink);
    (rec, sink)
}

/// Runs a transcript whole, byte at a time and in 7-byte chunks, asserts the three give
/// the same record and objects, and returns the whole-message result.
pub fn run_all_cuts(
    make: impl Fn() -> Box<dyn StreamParser>,
    protocol: &str,
    transcript: &[(Direction, &[u8])],
) -> (SessionRecord, VecSink) {
    let (rec, sink) = run(make().as_mut(), protocol, transcript, 0);
    for chunk in [1, 7] {
        let (r2, s2) = run(make().as_mut(), protocol, transcript, chunk);
        assert_eq!(rec, r2, "record differs with {chunk}-byte chunks");
        assert_eq!(
            sink.objects, s2.objects,
            "objects differ with {chunk}-byte chunks"
        );
        assert_eq!(
            sink.expectations, s2.expectations,
            "expectations differ with {chunk}-byte chunks"
        );
    }
    (rec, sink)
}

/// A transcript from `fuzz/corpus/<target>/<name>`.
pub fn corpus(target: &str, name: &str) -> Vec<(crate::Direction, Vec<u8>)> {
    let path = format!("{}/fuzz/corpus/{target}/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    crate::transcript::decode(&bytes)
}

/// Borrowed view of an owned transcript for [`run_all_cuts`].
pub fn view(t: &[(crate::Direction, Vec<u8>)]) -> Vec<(crate::Direction, &[u8])> {
    t.iter().map(|(d, b)| (*d, b.as_slice())).collect()
}

/// A record's `mail.commands` as (verb, argument, status), for the mail parsers' tests.
pub fn mail_commands(rec: &SessionRecord) -> Vec<(String, Option<String>, Option<String>)> {
    rec.mail
        .as_ref()
        .map(|m| {
            m.commands
                .iter()
                .map(|c| (c.verb.clone(), c.arg.clone(), c.status.clone()))
                .collect()
        })
        .unwrap_or_default()
}
