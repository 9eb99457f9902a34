//! Telnet: option negotiation (IAC …) stripped, the user name taken from the login
//! exchange — the line the client types after the server prompted `login:` (or
//! `Username:`, `User Name:`, `user:`). Passwords are never kept.

pub mod parser;
mod state;

pub use state::TelnetParser;
