//! Text extraction from what the analyzer reconstructs, for the content index.
//!
//! Input: one object of `DATA/files/` (its bytes, its kind: `mail-body`, `attachment`,
//! `http-body`, `ftp`, `mail`; its content type and name). Output: the texts in it, each
//! marked as a *body* (what a mail or a web exchange said) or a *file* (a document's
//! text): mail bodies (already UTF-8, decoded by the mail parser), HTML (`html`), plain
//! text in any Japanese charset (`charset`), forms and JSON (`web`), DOCX/XLSX/PPTX
//! (`ooxml`), PDF (`pdf`), mails inside mails (`mail`), ZIP archives entry by entry.
//! `tokens` holds the tokenization the content index uses (NFKC, CJK bigrams, words).
//!
//! Hostile input: every object is untrusted. [`extract`] runs the extractors under
//! `catch_unwind` and a [`Budget`]: input size, text size, bytes inflated (zip bombs,
//! PDF Flate bombs), archive entries, nesting depth and a deadline checked between
//! steps. Each failure has a [`Failure`] cause the index counts; nothing panics out of
//! here and nothing allocates beyond the limits. What no in-process check can stop (a
//! loop inside one step, a stack overflow, an abort) is contained by `worker`: the
//! consumer runs the extraction in a separate, killable process with rlimits.

pub mod charset;
pub mod html;
pub mod mail;
pub mod ooxml;
pub mod passage;
pub mod pdf;
pub mod tokens;
pub mod web;
pub mod worker;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// Per-object limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Larger objects are not read (counted as `too_large`).
    pub max_input: usize,
    /// Text kept per object; the rest is cut (counted as `truncated`).
    pub max_text: usize,
    /// Bytes decompressed per object, all streams and entries together.
    pub max_inflated: usize,
    /// Archive entries looked at per object.
    pub max_entries: usize,
    /// Archives and mails nested inside each other.
    pub max_depth: u32,
    /// Time per object (checked between streams, entries and parts).
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input: 32 << 20,
            max_text: 1 << 20,
            max_inflated: 64 << 20,
            max_entries: 1024,
            max_depth: 4,
            time: Duration::from_secs(5),
        }
    }
}

/// Why an object gave no text.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Larger than `max_input`.
    TooLarge,
    /// Past its time limit.
    Timeout,
    /// Decompression past `max_inflated` (a bomb, or just too big).
    InflateLimit,
    /// Not what its type says (broken ZIP, PDF without a readable stream, …).
    Malformed,
    /// Encrypted (password-protected ZIP or OOXML, encrypted PDF).
    Encrypted,
    /// The extractor panicked (a bug, caught).
    Panic,
    /// The worker process did not answer within the time limit and was killed
    /// (`worker`: an extractor stuck inside one step).
    Killed,
    /// The worker process died while extracting (memory limit, stack overflow, abort).
    Crashed,
}

impl Failure {
    pub const ALL: [Failure; 8] = [
        Failure::TooLarge,
        Failure::Timeout,
        Failure::InflateLimit,
        Failure::Malformed,
        Failure::Encrypted,
        Failure::Panic,
        Failure::Killed,
        Failure::Crashed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failure::TooLarge => "too_large",
            Failure::Timeout => "timeout",
            Failure::InflateLimit => "inflate_limit",
            Failure::Malformed => "malformed",
            Failure::Encrypted => "encrypted",
            Failure::Panic => "panic",
            Failure::Killed => "killed",
            Failure::Crashed => "crashed",
        }
    }
}

/// Where a text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// A mail body, an HTTP body or a text transferred by FTP.
    Body,
    /// The text of a document (attachment, downloaded or uploaded file).
    File,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Body => "body",
            Part::File => "file",
        }
    }
}

/// One extracted text.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Text {
    pub part: Part,
    /// The name inside the object (a ZIP entry, an attachment of an attached mail).
    pub inner_name: Option<String>,
    pub text: String,
}

/// What the analyzer knows about an object.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    /// `mail-body`, `attachment`, `http-body`, `ftp`, `mail`.
    pub kind: &'a str,
    pub content_type: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// The texts of one object.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Extracted {
    pub texts: Vec<Text>,
    /// Some text was cut at `max_text`.
    pub truncated: bool,
    /// The object is not a kind that holds text (image, executable, …).
    pub skipped: bool,
}

/// The limits of one extraction as it goes.
pub struct Budget<'a> {
    pub limits: &'a Limits,
    deadline: Instant,
    inflated: usize,
    text: usize,
    entries: usize,
    truncated: bool,
}

impl<'a> Budget<'a> {
    pub fn new(limits: &'a Limits) -> Self {
        Budget {
            limits,
            deadline: Instant::now() + limits.time,
            inflated: 0,
            text: 0,
            entries: 0,
            truncated: false,
        }
    }

    /// Fails once past the deadline.
    pub fn check_time(&self) -> Result<(), Failure> {
        if Instant::now() > self.deadline {
            Err(Failure::Timeout)
        } else {
            Ok(())
        }
    }

    /// Decompressed bytes still allowed.
    pub fn inflate_left(&self) -> usize {
        self.limits.max_inflated.saturating_sub(self.inflated)
    }

    /// Accounts `n` decompressed bytes; fails past the limit.
    pub fn inflated(&mut self, n: usize) -> Result<(), Failure> {
        self.inflated = self.inflated.saturating_add(n);
        if self.inflated > self.limits.max_inflated {
            return Err(Failure::InflateLimit);
        }
        self.check_time()
    }

    /// Accounts one archive entry; `false` past the limit (the rest are skipped).
    pub fn entry(&mut self) -> bool {
        self.entries += 1;
        self.entries <= self.limits.max_entries
    }

    /// Cuts `s` to the text still allowed and accounts it.
    pub fn take_text(&mut self, mut s: String) -> String {
        let left = self.limits.max_text.saturating_sub(self.text);
        if s.len() > left {
            html::cut(&mut s, left);
            self.truncated = true;
        }
        self.text += s.len();
        s
    }

    /// Text still allowed, in bytes.
    pub fn text_left(&self) -> usize {
        self.limits.max_text.saturating_sub(self.text)
    }
}

/// The texts of `obj` (see the crate docs). Never panics.
pub fn extract(obj: Object<'_>, bytes: &[u8], limits: &Limits) -> Result<Extracted, Failure> {
    if bytes.len() > limits.max_input {
        return Err(Failure::TooLarge);
    }
    let run = || {
        let mut budget = Budget::new(limits);
        let mut texts = Vec::new();
        let part = match obj.kind {
            "attachment" => Part::File,
            "mail-body" | "http-body" => Part::Body,
            _ => Part::File,
        };
        let any = extract_into(obj, bytes, part, None, 0, &mut budget, &mut texts)?;
        texts.retain(|t| !t.text.trim().is_empty());
        Ok(Extracted {
            skipped: !any,
            truncated: budget.truncated,
            texts,
        })
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(_) => Err(Failure::Panic),
    }
}

/// What `bytes` are, from their first bytes, type and name.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Sniffed {
    Pdf,
    Zip,
    Ole,
    Mail,
    Html,
    Form,
    Json,
    Text,
    Binary,
}

fn sniff(obj: Object<'_>, bytes: &[u8]) -> Sniffed {
    let ct = obj
        .content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let name = obj.name.unwrap_or("").to_ascii_lowercase();
    let head = &bytes[..bytes.len().min(1024)];
    if bytes.starts_with(b"%PDF") || (head.windows(5).any(|w| w == b"%PDF-") && ct.contains("pdf"))
    {
        return Sniffed::Pdf;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Sniffed::Zip;
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Sniffed::Ole;
    }
    if obj.kind == "mail" || ct == "message/rfc822" || name.ends_with(".eml") {
        return Sniffed::Mail;
    }
    if ct == "application/x-www-form-urlencoded" {
        return Sniffed::Form;
    }
    if ct.contains("json") {
        return Sniffed::Json;
    }
    let lower_head = String::from_utf8_lossy(head).to_ascii_lowercase();
    if ct == "text/html"
        || ct == "application/xhtml+xml"
        || name.ends_with(".html")
        || name.ends_with(".htm")
        || lower_head.trim_start().starts_with("<!doctype html")
        || lower_head.trim_start().starts_with("<html")
    {
        return Sniffed::Html;
    }
    let textual_type = ct.starts_with("text/")
        || ct.ends_with("+xml")
        || ct == "application/xml"
        || ct == "application/javascript";
    if (textual_type || ct.is_empty() || ct == "application/octet-stream")
        && charset::looks_like_text(bytes)
    {
        return Sniffed::Text;
    }
    Sniffed::Binary
}

/// The charset parameter of a content type.
fn charset_param(ct: Option<&str>) -> Option<&str> {
    ct?.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// Extracts `bytes` into `out`; returns whether it was a kind that holds text.
pub(crate) fn extract_into(
    obj: Object<'_>,
    bytes: &[u8],
    part: Part,
    inner_name: Option<&str>,
    depth: u32,
    budget: &mut Budget<'_>,
    out: &mut Vec<Text>,
) -> Result<bool, Failure> {
    budget.check_time()?;
    if budget.text_left() == 0 {
        budget.truncated = true;
        return Ok(true);
    }
    let mut push = |budget: &mut Budget<'_>, text: String, part: Part| {
        let text = budget.take_text(text);
        out.push(Text {
            part,
            inner_name: inner_name.map(str::to_string),
            text,
        });
    };
    match sniff(obj, bytes) {
        Sniffed::Pdf => {
            let t = pdf::text(bytes, budget)?;
            push(budget, t, Part::File);
        }
        Sniffed::Zip => {
            if depth >= budget.limits.max_depth {
                return Ok(false);
            }
            let texts = ooxml::extract(bytes, depth, budget)?;
            for t in texts {
                out.push(t);
            }
        }
        Sniffed::Ole => {
            // An encrypted OOXML file is an OLE container (`EncryptionInfo` stream); legacy
            // .doc/.xls too, which we do not read.
            let marker: Vec<u8> = "EncryptionInfo"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            if bytes.windows(marker.len()).any(|w| w == marker.as_slice()) {
                return Err(Failure::Encrypted);
            }
            return Ok(false);
        }
        Sniffed::Mail => {
            if depth >= budget.limits.max_depth {
                return Ok(false);
            }
            mail::extract(bytes, depth, budget, out)?;
        }
        Sniffed::Html => {
            let declared = charset_param(obj.content_type).map(str::to_string);
            let declared = declared.or_else(|| web::meta_charset(bytes));
            let s = charset::decode(bytes, declared.as_deref());
            let left = budget.text_left();
            push(budget, html::to_text(&s, left.saturating_add(1)), part);
        }
        Sniffed::Form => {
            let s = charset::decode(bytes, charset_param(obj.content_type));
            push(budget, web::form_text(&s), part);
        }
        Sniffed::Json => {
            let s = charset::decode(bytes, charset_param(obj.content_type));
            push(budget, web::json_text(&s), part);
        }
        Sniffed::Text => {
            let s = charset::decode(bytes, charset_param(obj.content_type));
            push(budget, s, part);
        }
        Sniffed::Binary => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
