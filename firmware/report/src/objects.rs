//! Reconstructed objects under `DIR/files/`, looked up by SHA-256 and shown safely.
//!
//! The analyzer stores objects content-addressed (`ab/cdef….bin`, whole mails as `.eml`,
//! metadata in `objects.log`; the layout is [`kuroko_model::objects`], read through it).
//! The report only ever reads them: a mail becomes plain text
//! (mail-parser's text body; an HTML-only mail is converted to text, never rendered),
//! capped at [`MAX_MAIL_TEXT_CHARS`]; files are described, never opened by anything that
//! could interpret them.

use kuroko_model::objects::{ObjectMeta, Objects};
use std::path::{Path, PathBuf};

/// Longest mail text reproduced in a report: enough for any phishing lure, bounded for
/// hostile megabyte-long bodies.
pub const MAX_MAIL_TEXT_CHARS: usize = 6000;
/// Largest `.eml` read for display.
pub const MAX_EML_BYTES: u64 = 16 << 20;

/// Read-only view of `DIR/files/`.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    objects: Objects,
}

/// A mail as the report shows it: headers and text, all still to be escaped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MailText {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub date: String,
    pub text: String,
    pub truncated: bool,
}

impl ObjectStore {
    pub fn new(data_dir: &Path) -> Self {
        ObjectStore {
            objects: Objects::new(data_dir),
        }
    }

    /// The stored object with this SHA-256 and one of the extensions, if present (never a
    /// path built from anything but a SHA-256).
    pub fn find(&self, sha256: &str, exts: &[&str]) -> Option<PathBuf> {
        self.objects.path_with(sha256, exts)
    }

    /// The object's bytes file (`.bin`, or `.eml` for mails).
    pub fn content_path(&self, sha256: &str) -> Option<PathBuf> {
        self.objects.path(sha256)
    }

    /// The analyzer's metadata for the object, when stored.
    pub fn metadata(&self, sha256: &str) -> Option<ObjectMeta> {
        self.objects.meta(sha256)
    }

    /// The mail with this SHA-256 as inert text.
    pub fn mail_text(&self, sha256: &str) -> Option<MailText> {
        let p = self.find(sha256, &["eml", "bin"])?;
        let meta = std::fs::metadata(&p).ok()?;
        if meta.len() > MAX_EML_BYTES {
            return None;
        }
        let raw = std::fs::read(&p).ok()?;
        Some(mail_text_from_bytes(&raw))
    }
}

/// Parses a raw message into headers and text. Never fails: unparsable input becomes its
/// lossy UTF-8 text.
pub fn mail_text_from_bytes(raw: &[u8]) -> MailText {
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        let text = String::from_utf8_lossy(raw);
        return cap(MailText {
            text: text.into_owned(),
            ..Default::default()
        });
    };
    let addr = |a: Option<&mail_parser::Address>| -> String {
        a.map(|a| {
            a.iter()
                .map(|x| match (x.name(), x.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (None, Some(e)) => e.to_string(),
                    (Some(n), None) => n.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    let text = msg.body_text(0).map(|c| c.into_owned()).unwrap_or_default();
    cap(MailText {
        from: addr(msg.from()),
        to: addr(msg.to()),
        subject: msg.subject().unwrap_or_default().to_string(),
        date: msg.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
        text,
        truncated: false,
    })
}

fn cap(mut m: MailText) -> MailText {
    if m.text.chars().count() > MAX_MAIL_TEXT_CHARS {
        m.text = m.text.chars().take(MAX_MAIL_TEXT_CHARS).collect();
        m.truncated = true;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_mail_becomes_text_and_lookup_is_by_sha_only() {
        let raw = b"From: \"Resona Bank\" <x@evil.example>\r\nTo: a@corp.example\r\nSubject: =?UTF-8?B?5Y+j5bqn5YeN57WQ?=\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Click <a href=\"http://evil.example/\">here</a></p><script>alert(1)</script></body></html>\r\n";
        let m = mail_text_from_bytes(raw);
        assert_eq!(m.from, "Resona Bank <x@evil.example>");
        assert_eq!(m.subject, "口座凍結");
        assert!(m.text.contains("Click"), "{m:?}");
        assert!(!m.text.contains("<p>"), "{m:?}");

        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        std::fs::create_dir_all(dir.path().join("files/ab")).unwrap();
        std::fs::write(dir.path().join(format!("files/ab/{}.eml", &sha[2..])), raw).unwrap();
        let store = ObjectStore::new(dir.path());
        assert_eq!(store.mail_text(&sha).unwrap().from, m.from);
        assert!(store.find("../../etc/passwd", &["eml"]).is_none());
    }
}
