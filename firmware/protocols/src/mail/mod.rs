//! Mail protocols: SMTP, POP3 and IMAP carry whole messages; `message` turns each into
//! session fields and objects the same way (kind `mail` for the `.eml`, `attachment`,
//! `mail-body`), with mail-parser decoding MIME and encoded words (ISO-2022-JP,
//! Shift_JIS, UTF-8: Japanese mail is the norm for Kuroko's users).

mod dotdata;
mod imap;
pub mod message;
mod pop3;
mod smtp;

pub use imap::ImapParser;
pub use pop3::Pop3Parser;
pub use smtp::SmtpParser;
