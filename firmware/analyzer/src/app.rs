//! The seam between the analyzer and the protocol parsers (`kuroko-protocols`).
//!
//! Everything the analyzer asks of the parser crate goes through these few functions, so
//! that the flow machinery does not care how identification works. Identification looks
//! at the first bytes of both directions (content first, ports second).

use kuroko_protocols::{DatagramParser, Identification, StreamParser};

/// Bytes of each direction buffered while identification is undecided.
pub const IDENTIFY_LIMIT: usize = kuroko_protocols::IDENTIFY_LIMIT;

/// Result of looking at a stream's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ident {
    Known(&'static str),
    NeedMore,
    Unknown,
}

fn ident(i: Identification) -> Ident {
    match i {
        Identification::Known(p) => Ident::Known(p),
        Identification::NeedMore => Ident::NeedMore,
        Identification::Unknown => Ident::Unknown,
    }
}

/// Identifies a TCP stream from its first bytes `up` (client → server) and `down`.
pub fn identify_tcp(client_port: u16, server_port: u16, up: &[u8], down: &[u8]) -> Ident {
    ident(kuroko_protocols::identify_tcp(
        client_port,
        server_port,
        up,
        down,
    ))
}

/// Like [`identify_tcp`] when no more bytes will come: never `NeedMore`.
pub fn identify_tcp_final(client_port: u16, server_port: u16, up: &[u8], down: &[u8]) -> Ident {
    ident(kuroko_protocols::identify_tcp_at_close(
        client_port,
        server_port,
        up,
        down,
    ))
}

pub fn stream_parser(protocol: &str) -> Option<Box<dyn StreamParser>> {
    kuroko_protocols::stream_parser(protocol)
}

/// The parser for a connection opened from an expectation (FTP data channel), if the
/// parser crate has one.
pub fn stream_parser_for_expectation(
    e: &kuroko_protocols::Expectation,
) -> Option<Box<dyn StreamParser>> {
    kuroko_protocols::stream_parser_for_expectation(e)
}

/// Identifies a UDP flow from its first datagram.
pub fn identify_udp(client_port: u16, server_port: u16, first: &[u8]) -> Option<&'static str> {
    kuroko_protocols::identify_udp(client_port, server_port, first)
}

pub fn datagram_parser(protocol: &str) -> Option<Box<dyn DatagramParser>> {
    kuroko_protocols::datagram_parser(protocol)
}

pub fn port_label(transport: &str, port: u16) -> Option<&'static str> {
    kuroko_protocols::port_label(transport, port)
}
