//! DHCP (RFC 2131, options of RFC 2132): what a client tells about itself (host name,
//! vendor class, the address it asks for) and what a server binds to its hardware
//! address (`yiaddr` of an ACK). The asset inventory learns names, MAC ↔ address
//! bindings and client software from it.
//!
//! Every datagram is a whole message: no state crosses datagrams but the record.

pub mod parser;
mod state;

pub use state::DhcpParser;
