//! The seam between the analyzer and the protocol parsers (`kuroko-protocols`).
//!
//! Everything the analyzer asks of the parser crate goes through these few functions, so
//! that the flow machinery does not care how identification works. Identification looks
//! at the first bytes of both directions (content first, ports second).

use kuroko_protocols::{DatagramParser, StreamParser};

/// Result of looking at a stream's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ident {
    Known(&'static str),
    NeedMore,
    Unknown,
}

/// Identifies a TCP stream from its first bytes `up` (client → server) and `down`.
/// Until the parser crate's content identification lands, by server port only.
pub fn identify_tcp(_client_port: u16, server_port: u16, _up: &[u8], _down: &[u8]) -> Ident {
    match port_label("tcp", server_port) {
        Some(p) => Ident::Known(p),
        None => Ident::Unknown,
    }
}

pub fn stream_parser(_protocol: &str) -> Option<Box<dyn StreamParser>> {
    None
}

/// Identifies a UDP flow from its first datagram.
pub fn identify_udp(_client_port: u16, server_port: u16, _first: &[u8]) -> Option<&'static str> {
    port_label("udp", server_port)
}

pub fn datagram_parser(_protocol: &str) -> Option<Box<dyn DatagramParser>> {
    None
}

pub fn port_label(transport: &str, port: u16) -> Option<&'static str> {
    Some(match (transport, port) {
        ("tcp", 21) => "ftp",
        ("tcp", 22) => "ssh",
        ("tcp", 23) => "telnet",
        ("tcp", 25 | 587) => "smtp",
        ("tcp" | "udp", 53) => "dns",
        ("tcp", 80 | 8080) => "http",
        ("tcp", 110) => "pop3",
        ("tcp", 143) => "imap",
        ("tcp", 443) => "tls",
        ("tcp", 445) => "smb",
        ("tcp", 3389) => "rdp",
        _ => return None,
    })
}
