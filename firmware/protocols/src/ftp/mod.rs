//! FTP control channel (`ftp`) and data channels (`ftp-data`).
//!
//! The control parser records commands (PASS masked), the user, and the files named by
//! RETR/STOR/APPE/STOU; PASV/EPSV replies and PORT/EPRT commands become
//! [`crate::Expectation`]s so the analyzer can label the data connection `ftp-data` and
//! hand it to [`FtpDataParser`] (via [`crate::stream_parser_for_expectation`]). The
//! expectation is announced when the address is known and announced again, with file
//! name and direction, when the transfer command follows.
//!
//! How bytes and SHA-256 reach the control session's `ftp.files`: the data parser stores
//! the transferred bytes as one object (kind `ftp`) and fills `ftp.files` of the data
//! session itself; the analyzer then calls [`link_data_session`] with both records (the
//! control record while it is still open, or it sets `ftp.control_session` on the data
//! record so search can join them later).

pub mod parser;
mod state;

pub use state::{FtpDataParser, FtpParser, link_data_session};
