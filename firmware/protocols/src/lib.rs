//! Application-protocol identification and parsers: pure functions of the bytes they are
//! given.
//!
//! The analyzer reassembles TCP streams and hands each direction's bytes, in order, to the
//! parser that `identify` chose for the session; UDP datagrams are handed over one by one.
//! Parsers fill the protocol objects of the [`SessionRecord`] and report reconstructed
//! objects and expected follow-up connections (FTP data channels) through [`Sink`].
//!
//! How the analyzer uses this crate:
//! 1. TCP: buffer the first bytes of each direction (at most [`IDENTIFY_LIMIT`]) and call
//!    [`identify_tcp`] as they grow; on `Known(label)` set `rec.protocol = label` and, if
//!    [`stream_parser`] has a parser for it, feed it the buffered bytes and everything
//!    after. While it says `NeedMore`, keep buffering; when the session ends first (or
//!    the limit is hit), use [`identify_tcp_at_close`] (port fallback). `Unknown`: the
//!    protocol stays `tcp`.
//! 2. UDP: [`identify_udp`] on the first datagram, then [`datagram_parser`].
//! 3. A new TCP session that matches an [`Expectation`] (same server address and port,
//!    and client when given) is labelled `expectation.protocol` and parsed by
//!    [`stream_parser_for_expectation`]; a later expectation for the same address/port
//!    replaces the earlier one and is passed to a running parser with
//!    [`StreamParser::on_expectation_update`]. When an `ftp-data` session ends, call
//!    [`ftp::link_data_session`] with the control record if it is still open.
//! 4. [`port_label`] names what Kuroko does not parse (SMB, RDP, VPNs, …).
//!
//! Protocol labels (`rec.protocol`): parsed — `http`, `winrm`, `tls`, `quic`, `dns`, `mdns`,
//! `llmnr`, `ssh`, `ftp`, `ftp-data`, `smtp`, `pop3`, `imap`, `telnet`, `oracle`, `smb`
//! (the NEGOTIATE dialects), `dhcp`, `netbios-ns`; by
//! content only — `http2` (h2c preface), `rdp`, `vnc`, `mysql`, `postgresql`, `mssql`, `stun`,
//! `wireguard`, `sip`, `ssdp`, `ntp`, `ike`; by port — see [`ports`].
//!
//! Invariants:
//! - Any bytes are valid input: no parser panics, loops forever or allocates without bound.
//!   Every limit on hostile input is a named constant; anomalies become session flags
//!   (`malformed:<proto>` and named events such as `http_body_cut`, `smtp_starttls`).
//! - Parsers know nothing of packets, segments, io_uring or the index.
//! - A parser may be given data in arbitrary chunks (one byte at a time is legal); its
//!   result does not depend on how the stream was cut (every parser's tests check this).
//! - Objects: parsers report reconstructed objects through [`Sink::object`] and, when the
//!   sink returns a digest, append the matching `FileRef` to `rec.files` themselves. A sink
//!   stores bytes; it must not add `FileRef`s (that would list objects twice). Objects are
//!   at most [`MAX_OBJECT_BYTES`] (then marked partial).
//! - Never kept: passwords (FTP `PASS` is masked, SMTP/IMAP/POP3 secrets are skipped,
//!   HTTP `Authorization` keeps only its scheme and the Basic user name).
//!
//! Layout: one folder per protocol (`http/`, `dns/`, …), each with a pure `parser`, the
//! per-session `state`, and what it emits; `template/` is the skeleton for the next one.
//! `fuzz` is the in-repo mutation fuzzer (`--example fuzz`), `transcript` the format of
//! its seed corpus in `fuzz/corpus/<target>/`.

#![forbid(unsafe_code)]

pub mod dhcp;
pub mod dns;
pub mod ftp;
pub mod fuzz;
pub mod http;
pub mod identify;
pub mod ldap;
pub mod mail;
pub mod mdns;
pub mod netbios;
pub mod oracle;
pub mod ports;
pub mod postgres;
pub mod quic;
pub mod smb;
pub mod ssh;
pub mod telnet;
pub mod template;
#[cfg(test)]
mod testutil;
pub mod tls;
pub mod transcript;
pub mod upgrade;
mod util;
pub mod xmpp;

pub use identify::{
    IDENTIFY_LIMIT, Identification, identify_tcp, identify_tcp_at_close, identify_udp,
};
pub use ports::port_label;

use kuroko_model::session::SessionRecord;
use std::net::IpAddr;

/// Most bytes of one reconstructed object (HTTP body, FTP transfer, mail) kept in memory;
/// the rest is counted and the object marked partial. Objects are handed over whole, so
/// this bounds per-session memory.
pub const MAX_OBJECT_BYTES: usize = 32 * 1024 * 1024;

/// The parser for a TCP session identified as `protocol` (a label from [`identify_tcp`]);
/// `None` for protocols Kuroko only labels (SMB, RDP, …).
///
/// Parsers of protocols that can switch midway (CONNECT, STARTTLS, …) come wrapped in
/// [`upgrade::layered`], which follows the switch into the inner protocol's parser.
pub fn stream_parser(protocol: &str) -> Option<Box<dyn StreamParser>> {
    stream_parser_at_depth(protocol, 0)
}

/// [`stream_parser`] for a stream `depth` tunnels deep (the inner stream of an upgrade).
pub(crate) fn stream_parser_at_depth(protocol: &str, depth: u8) -> Option<Box<dyn StreamParser>> {
    use upgrade::layered;
    match protocol {
        "http" => Some(layered(Box::new(http::HttpParser::new()), depth)),
        "winrm" => Some(Box::new(http::HttpParser::new())),
        "tls" => Some(Box::new(tls::TlsParser::new())),
        "ssh" => Some(Box::new(ssh::SshParser::new())),
        "dns" => Some(Box::new(dns::DnsStreamParser::new())),
        "ftp" => Some(layered(Box::new(ftp::FtpParser::new()), depth)),
        "ftp-data" => Some(Box::new(ftp::FtpDataParser::new(None))),
        "smtp" => Some(layered(Box::new(mail::SmtpParser::new()), depth)),
        "pop3" => Some(layered(Box::new(mail::Pop3Parser::new()), depth)),
        "imap" => Some(layered(Box::new(mail::ImapParser::new()), depth)),
        "postgresql" => Some(layered(Box::new(postgres::PostgresParser::new()), depth)),
        "ldap" => Some(layered(Box::new(ldap::LdapParser::new()), depth)),
        "telnet" => Some(Box::new(telnet::TelnetParser::new())),
        "oracle" => Some(Box::new(oracle::TnsParser::new())),
        "xmpp" => Some(layered(Box::new(xmpp::XmppParser::new()), depth)),
        "smb" => Some(Box::new(smb::SmbParser::new())),
        _ => None,
    }
}

/// The parser for a UDP flow identified as `protocol` (a label from [`identify_udp`]).
pub fn datagram_parser(protocol: &str) -> Option<Box<dyn DatagramParser>> {
    match protocol {
        "dns" | "llmnr" => Some(Box::new(dns::DnsDatagramParser::new())),
        "mdns" => Some(Box::new(mdns::MdnsParser::new())),
        "quic" => Some(Box::new(quic::QuicParser::new())),
        "dhcp" => Some(Box::new(dhcp::DhcpParser::new())),
        "netbios-ns" => Some(Box::new(netbios::NetbiosParser::new())),
        _ => None,
    }
}

/// The parser for a session the analyzer matched to an [`Expectation`] (an FTP data
/// channel): it knows the file name and direction the control channel announced.
pub fn stream_parser_for_expectation(expectation: &Expectation) -> Option<Box<dyn StreamParser>> {
    match expectation.protocol {
        "ftp-data" => Some(Box::new(ftp::FtpDataParser::new(Some(expectation)))),
        other => stream_parser(other),
    }
}

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
///
/// A parser may announce the same `(server, server_port)` again with more detail (the
/// file name of the following RETR/STOR): the later one replaces the earlier, and if a
/// session was already opened from it, the analyzer passes it to that session's parser
/// with [`StreamParser::on_expectation_update`].
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
    /// Adds what the sink learned about the object it just stored (the `FileRef` of the
    /// digest `object` returned): the analyzer's YARA matches. Called once per listed
    /// object, right after `object`; the default adds nothing.
    fn annotate(&mut self, _file: &mut kuroko_model::session::FileRef) {}
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
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts_ns: i64,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    );
    /// `len` bytes are missing in `dir` (never guessed; the parser resynchronises or gives up).
    fn on_gap(&mut self, dir: Direction, len: u64, rec: &mut SessionRecord);
    /// The session ends (FIN, RST, timeout, eviction, end of input): flush what is pending.
    fn on_close(&mut self, rec: &mut SessionRecord, sink: &mut dyn Sink);
    /// A newer version of the expectation this session was opened from (FTP data
    /// channels learn their file name after they connected). Default: ignored.
    fn on_expectation_update(&mut self, _expectation: &Expectation) {}
    /// Asked after every [`StreamParser::on_data`]: `Some` once, when the protocol has
    /// just switched to another (STARTTLS accepted, CONNECT answered 2xx). See
    /// [`upgrade`] for what to put in it. Default: never.
    fn take_upgrade(&mut self) -> Option<upgrade::Upgrade> {
        None
    }
}

/// Per-session state of one protocol over UDP.
pub trait DatagramParser: Send {
    fn on_datagram(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts_ns: i64,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    );
    fn on_close(&mut self, _rec: &mut SessionRecord, _sink: &mut dyn Sink) {}
    /// The exchange is complete (every request answered): the flow may end after a short
    /// linger instead of the idle timeout.
    fn finished(&self) -> bool {
        false
    }
}
