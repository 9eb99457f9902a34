//! Mail protocols: SMTP, POP3 and IMAP carry whole messages; `message` turns each into
//! session fields and objects the same way (kind `mail` for the `.eml`, `attachment`,
//! `mail-body`), with mail-parser decoding MIME and encoded words (ISO-2022-JP,
//! Shift_JIS, UTF-8: Japanese mail is the norm for Kuroko's users).

mod dotdata;
pub mod message;
mod smtp;

pub use smtp::SmtpParser;
