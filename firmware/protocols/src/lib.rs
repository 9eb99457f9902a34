//! Application-protocol parsers: pure functions of the bytes they are given.
//!
//! The analyzer reassembles TCP streams and hands each direction's bytes, in order, to the
//! parser that `identify` chose for the session; UDP datagrams are handed over one by one.
//! Parsers fill the protocol objects of the [`SessionRecord`] and report reconstructed
//! objects and expected follow-up connections (FTP data channels) through [`Sink`].
//!
//! Invariants:
//! - Any bytes are valid input: no parser panics, loops forever or allocates without bound.
//!   Every limit on hostile input is a named constant; anomalies become session flags.
//! - Parsers know nothing of packets, segments, io_uring or the index.
//! - A parser may be given data in arbitrary chunks (one byte at a time is legal); its
//!   result must not depend on how the stream was cut.
//!
//! Layout: one folder per protocol (`http/`, `dns/`, …), each with a pure `parser`, the
//! per-session `state`, and what it emits; `template/` is the skeleton for the next one.

#![forbid(unsafe_code)]

use kuroko_model::session::SessionRecord;
use std::net::IpAddr;

/// Which way bytes flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → server ("up").
    ToServer,
    /// Server → client ("down").
    ToClient,
}

impl Direction {
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
    pub fn flip(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// Metadata of an object a parser reconstructed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectMeta {
    pub name: Option<String>,
    pub content_type: Option<String>,
    /// `http-body`, `ftp`, `mail` (a whole .eml), `attachment`, `mail-body`.
    pub kind: &'static str,
    pub direction: Option<Direction>,
    /// The object is incomplete (gap in the stream, size limit).
    pub partial: bool,
}

/// A connection the analyzer should expect (FTP PASV/PORT/EPSV/EPRT data channels).
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// Who will connect (None: any address).
    pub client: Option<IpAddr>,
    pub server: IpAddr,
    pub server_port: u16,
    /// Protocol label for the new session (`ftp-data`).
    pub protocol: &'static str,
    /// File name and direction the data channel carries, when known at this point.
    pub file_name: Option<String>,
    pub direction: Option<Direction>,
}

/// Where parsers put what is not a session field.
pub trait Sink {
    /// A reconstructed object. Returns its SHA-256 (hex) when stored.
    fn object(&mut self, meta: ObjectMeta, bytes: &[u8]) -> Option<String>;
    /// A follow-up connection that belongs to this session.
    fn expect(&mut self, expectation: Expectation);
}

/// A sink that keeps everything in memory (tests, fuzzing, tools).
#[derive(Default, Debug)]
pub struct VecSink {
    pub objects: Vec<(ObjectMeta, Vec<u8>)>,
    pub expectations: Vec<Expectation>,
}

impl Sink for VecSink {
    fn object(&mut self, meta: ObjectMeta, bytes: &[u8]) -> Option<String> {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(bytes));
        self.objects.push((meta, bytes.to_vec()));
        Some(digest)
    }
    fn expect(&mut self, expectation: Expectation) {
        self.expectations.push(expectation);
    }
}

/// Per-session state of one protocol over a TCP stream.
pub trait StreamParser: Send {
    /// In-order bytes of one direction. `ts_ns` is the capture time of the segment that
    /// completed them.
    fn on_data(&mut self, dir: Direction, data: &[u8], ts_ns: i64, rec: &mut SessionRecord, sink: &mut dyn Sink);
    /// `len` bytes are missing in `dir` (never guessed; the parser resynchronises or gives up).
    fn on_gap(&mut self, dir: Direction, len: u64, rec: &mut SessionRecord);
    /// The session ends (FIN, RST, timeout, eviction, end of input): flush what is pending.
    fn on_close(&mut self, rec: &mut SessionRecord, sink: &mut dyn Sink);
}

/// Per-session state of one protocol over UDP.
pub trait DatagramParser: Send {
    fn on_datagram(&mut self, dir: Direction, data: &[u8], ts_ns: i64, rec: &mut SessionRecord, sink: &mut dyn Sink);
    fn on_close(&mut self, _rec: &mut SessionRecord, _sink: &mut dyn Sink) {}
}
