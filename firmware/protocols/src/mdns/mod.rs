//! mDNS and DNS-SD (UDP 5353, RFC 6762 and RFC 6763): hosts on the link announce their
//! names (`printer.local` A/AAAA records) and the services they offer (a PTR from the
//! service type to an instance, `Office Printer._ipp._tcp.local`, an SRV with its host and
//! port, a TXT with its properties, among them the device model). Queries name what is
//! looked for. The asset inventory learns host names and announced services from it.
//!
//! Every datagram is a whole DNS-format message; names are compressed with pointers, read
//! by the one pointer-following reader of [`crate::dns::parser`].

pub mod parser;
mod state;

pub use state::MdnsParser;
