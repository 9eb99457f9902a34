//! NetBIOS name service (UDP 137, RFC 1001/1002 §4.2): Windows hosts, Samba servers and
//! printers register their names and ask for others' by broadcast. Queries name what
//! is looked for; registrations, refreshes, releases, positive answers and node-status
//! answers bind names to addresses, which the asset inventory learns as host names.
//!
//! Every datagram is a whole message.

pub mod parser;
mod state;

pub use state::NetbiosParser;
