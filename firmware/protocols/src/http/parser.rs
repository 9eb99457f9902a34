//! Pure HTTP/1.x pieces: message heads, URL forms, bodies (length, chunked), content
//! decoding, `<title>`, multipart/form-data. No session state here.

use crate::util::{base64_decode, find_ci, starts_with_ci};
use std::io::Read;

/// Most header fields in one head; more is an attack or a broken peer (flagged).
pub const MAX_HEADERS: usize = 128;
/// Largest message head (request/status line + headers) we buffer. Browsers and servers
/// cap heads at 8–64 KiB, so more than this is not HTTP we can use.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest chunk-size line (size + extensions) accepted in a chunked body.
pub const MAX_CHUNK_LINE: usize = 4096;
pub use crate::MAX_OBJECT_BYTES;
/// Most bytes a gzip/deflate/br/zstd body may decode to (decompression bombs; flag
/// `http_decoded_cut` when a body hits it).
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;
/// How far into an HTML body to look for `<title>`.
pub const MAX_TITLE_SCAN: usize = 64 * 1024;
/// Most parts of one multipart body looked at.
pub const MAX_MULTIPART_PARTS: usize = 64;

/// A parsed request head.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A parsed response head.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Outcome of trying to parse a head from the start of a buffer.
#[derive(Debug)]
pub enum HeadResult<T> {
    /// Parsed; the head was this many bytes long.
    Complete(T, usize),
    Partial,
    Invalid,
}

pub fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn collect_headers(hs: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    hs.iter()
        .filter(|h| !h.name.is_empty())
        .map(|h| (h.name.to_ascii_lowercase(), trim(h.value).to_vec()))
        .collect()
}

pub fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

pub fn parse_request_head(buf: &[u8]) -> HeadResult<RequestHead> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_multiple_spaces_in_request_line_delimiters(true);
    cfg.ignore_invalid_headers_in_requests(true);
    match cfg.parse_request(&mut req, buf) {
        Ok(httparse::Status::Complete(n)) => HeadResult::Complete(
            RequestHead {
                method: req.method.unwrap_or("").to_string(),
                target: req.path.unwrap_or("").to_string(),
                headers: collect_headers(req.headers),
            },
            n,
        ),
        Ok(httparse::Status::Partial) => HeadResult::Partial,
        Err(_) => HeadResult::Invalid,
    }
}

pub fn parse_response_head(buf: &[u8]) -> HeadResult<ResponseHead> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut hs);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_obsolete_multiline_headers_in_responses(true);
    cfg.allow_spaces_after_header_name_in_responses(true);
    cfg.allow_multiple_spaces_in_response_status_delimiters(true);
    cfg.ignore_invalid_headers_in_responses(true);
    match cfg.parse_response(&mut resp, buf) {
        Ok(httparse::Status::Complete(n)) => HeadResult::Complete(
            ResponseHead {
                status: resp.code.unwrap_or(0),
                headers: collect_headers(resp.headers),
            },
            n,
        ),
        Ok(httparse::Status::Partial) => HeadResult::Partial,
        Err(_) => HeadResult::Invalid,
    }
}

/// End of a message head in `buf` (index just past the blank line), scanning from `from`.
/// Accepts CRLF and bare LF line endings.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// Host and NetRAPTOR-style URL (`host/path?query`, or `authority` for CONNECT) of a request.
pub fn host_and_url(
    method: &str,
    target: &str,
    host_header: Option<&str>,
) -> (Option<String>, String) {
    if method.eq_ignore_ascii_case("CONNECT") {
        let host = host_header
            .map(str::to_string)
            .or_else(|| Some(target.to_string()));
        return (host, target.to_string());
    }
    for scheme in ["http://", "https://", "ws://", "wss://", "ftp://"] {
        if starts_with_ci(target.as_bytes(), scheme.as_bytes()) {
            let rest = &target[scheme.len()..];
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host_header
                .map(str::to_string)
                .or_else(|| Some(authority.to_string()));
            return (host, rest.to_string());
        }
    }
    match host_header {
        Some(h) if !h.is_empty() => (Some(h.to_string()), format!("{h}{target}")),
        _ => (None, target.to_string()),
    }
}

/// Query string of a request target (after `?`, before `#`).
pub fn query_of(target: &str) -> Option<&str> {
    let q = target.split_once('?')?.1;
    let q = q.split('#').next().unwrap_or("");
    if q.is_empty() { None } else { Some(q) }
}

/// User name of a `Basic` Authorization header.
pub fn basic_auth_user(value: &[u8]) -> Option<String> {
    if !starts_with_ci(value, b"basic ") {
        return None;
    }
    let decoded = base64_decode(trim(&value[6..]))?;
    let user = decoded.split(|&b| b == b':').next()?;
    Some(String::from_utf8_lossy(user).into_owned())
}

/// How a message body is delimited.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Whether a header value lists `chunked` as a transfer coding.
pub fn is_chunked(te: &[u8]) -> bool {
    te.split(|&b| b == b',')
        .any(|c| trim(c).eq_ignore_ascii_case(b"chunked"))
}

/// A Content-Length that is not a number, or lists conflicting values.
#[derive(Debug, PartialEq, Eq)]
pub struct BadContentLength;

/// Content-Length value; `Err` when present but not a number (or conflicting values).
pub fn content_length(v: &[u8]) -> Result<u64, BadContentLength> {
    let mut out: Option<u64> = None;
    for part in v.split(|&b| b == b',') {
        let s = std::str::from_utf8(trim(part)).map_err(|_| BadContentLength)?;
        let n: u64 = s.parse().map_err(|_| BadContentLength)?;
        if out.is_some_and(|o| o != n) {
            return Err(BadContentLength);
        }
        out = Some(n);
    }
    out.ok_or(BadContentLength)
}

#[derive(Debug, Clone, PartialEq)]
enum ChunkState {
    /// Reading the chunk-size line (bytes so far).
    Size(Vec<u8>),
    /// Chunk data left.
    Data(u64),
    /// The CRLF after chunk data.
    DataEnd,
    /// Trailer field lines until an empty one (bytes of the current line).
    Trailer(Vec<u8>),
}

/// Incremental body reader: feeds bytes, keeps up to `MAX_OBJECT_BYTES` of content.
#[derive(Debug)]
pub struct BodyReader {
    framing: BodyFraming,
    chunk: ChunkState,
    remaining: u64,
    pub content: Vec<u8>,
    /// Content bytes seen (also beyond the kept ones).
    pub total: u64,
    /// Content was lost (gap) or not kept (cap).
    pub partial: bool,
}

/// Result of feeding a body reader.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyStep {
    /// All of the input was consumed; the body wants more.
    NeedMore,
    /// The body ended after this many input bytes.
    Done(usize),
    /// Chunked framing broke after this many input bytes.
    Malformed(usize),
}

impl BodyReader {
    pub fn new(framing: BodyFraming) -> BodyReader {
        let remaining = if let BodyFraming::Length(n) = framing {
            n
        } else {
            0
        };
        BodyReader {
            framing,
            chunk: ChunkState::Size(Vec::new()),
            remaining,
            content: Vec::new(),
            total: 0,
            partial: false,
        }
    }

    fn keep(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let room = MAX_OBJECT_BYTES.saturating_sub(self.content.len());
        if data.len() > room {
            self.partial = true;
        }
        self.content
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    /// The body is delimited by the end of the connection (so closing completes it).
    pub fn ends_at_close(&self) -> bool {
        self.framing == BodyFraming::UntilClose
    }

    pub fn feed(&mut self, data: &[u8]) -> BodyStep {
        match self.framing {
            BodyFraming::None => BodyStep::Done(0),
            BodyFraming::UntilClose => {
                self.keep(data);
                BodyStep::NeedMore
            }
            BodyFraming::Length(_) => {
                let take = (self.remaining.min(data.len() as u64)) as usize;
                self.keep(&data[..take]);
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    BodyStep::Done(take)
                } else {
                    BodyStep::NeedMore
                }
            }
            BodyFraming::Chunked => self.feed_chunked(data),
        }
    }

    fn feed_chunked(&mut self, data: &[u8]) -> BodyStep {
        let mut i = 0;
        while i < data.len() {
            match &mut self.chunk {
                ChunkState::Size(line) => {
                    let b = data[i];
                    i += 1;
                    if b != b'\n' {
                        if line.len() >= MAX_CHUNK_LINE {
                            return BodyStep::Malformed(i);
                        }
                        line.push(b);
                        continue;
                    }
                    let size_part = line.split(|&c| c == b';').next().unwrap_or(&[]);
                    let size_part = trim(size_part);
                    if size_part.is_empty() {
                        // Tolerate a stray blank line between chunks.
                        line.clear();
                        continue;
                    }
                    let Some(size) = parse_hex(size_part) else {
                        return BodyStep::Malformed(i);
                    };
                    self.chunk = if size == 0 {
                        ChunkState::Trailer(Vec::new())
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let take = (*left).min((data.len() - i) as u64) as usize;
                    *left -= take as u64;
                    let done = *left == 0;
                    let piece = &data[i..i + take];
                    i += take;
                    self.keep(piece);
                    if done {
                        self.chunk = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    let b = data[i];
                    i += 1;
                    if b == b'\n' {
                        self.chunk = ChunkState::Size(Vec::new());
                    } else if b != b'\r' {
                        return BodyStep::Malformed(i);
                    }
                }
                ChunkState::Trailer(line) => {
                    let b = data[i];
                    i += 1;
                    if b == b'\n' {
                        if trim(line).is_empty() {
                            return BodyStep::Done(i);
                        }
                        line.clear();
                    } else if line.len() < MAX_CHUNK_LINE {
                        line.push(b);
                    } else {
                        return BodyStep::Malformed(i);
                    }
                }
            }
        }
        BodyStep::NeedMore
    }

    /// `len` bytes are missing. Returns whether the reader can go on (a gap inside a
    /// length-delimited body or a chunk's data is skipped; elsewhere framing is lost).
    pub fn gap(&mut self, len: u64) -> bool {
        self.partial = true;
        match self.framing {
            BodyFraming::UntilClose => {
                self.total += len;
                true
            }
            BodyFraming::Length(_) if len < self.remaining => {
                self.remaining -= len;
                self.total += len;
                true
            }
            BodyFraming::Chunked => match &mut self.chunk {
                ChunkState::Data(left) if len < *left => {
                    *left -= len;
                    self.total += len;
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s {
        let d = (c as char).to_digit(16)?;
        n = n * 16 + u64::from(d);
    }
    Some(n)
}

/// Outcome of undoing a Content-Encoding.
pub enum Decoded {
    /// Identity (or no coding): the bytes as they are.
    AsIs,
    /// Decoded (possibly cut at `MAX_DECODED_BYTES`: second field true).
    Bytes(Vec<u8>, bool),
    /// The coding was declared but the data did not decode.
    Failed,
    /// A coding we do not undo (`compress`, unknown names): kept as sent.
    Unsupported,
}

/// Largest zstd window accepted (log2): 8 MiB, the limit RFC 9659 sets for the
/// `zstd` content coding. A frame that needs more is refused instead of allocating it.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Reads a decoder to its end, keeping at most `MAX_DECODED_BYTES` (decompression
/// bombs); `None` when nothing decoded. A truncated stream (cut by a gap or the object
/// cap) still gives its prefix.
fn read_capped(r: &mut dyn Read) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut limited = r.take(MAX_DECODED_BYTES + 1);
    match limited.read_to_end(&mut out) {
        Ok(_) => {}
        Err(_) if !out.is_empty() => {}
        Err(_) => return None,
    }
    let cut = out.len() as u64 > MAX_DECODED_BYTES;
    out.truncate(MAX_DECODED_BYTES as usize);
    Some((out, cut))
}

/// Undoes one content coding; `Err` when it is not one we know, `Ok(None)` when the
/// data does not decode.
fn decode_one(enc: &[u8], body: &[u8]) -> Result<Option<(Vec<u8>, bool)>, ()> {
    Ok(match enc {
        b"gzip" | b"x-gzip" => read_capped(&mut flate2::read::MultiGzDecoder::new(body)),
        b"deflate" => read_capped(&mut flate2::read::ZlibDecoder::new(body))
            .or_else(|| read_capped(&mut flate2::read::DeflateDecoder::new(body))),
        b"br" => read_capped(&mut brotli_decompressor::Decompressor::new(body, 4096)),
        b"zstd" => {
            let Ok(mut d) = zstd::stream::read::Decoder::with_buffer(body) else {
                return Ok(None);
            };
            if d.window_log_max(ZSTD_WINDOW_LOG_MAX).is_err() {
                return Ok(None);
            }
            read_capped(&mut d)
        }
        _ => return Err(()),
    })
}

/// Undoes the content codings of a body: `gzip`/`x-gzip`, `deflate` (zlib or raw), `br`
/// and `zstd`, several in a list (`gzip, br`) undone last first. Each step is capped at
/// `MAX_DECODED_BYTES`.
pub fn decode_content(encoding: Option<&[u8]>, body: &[u8]) -> Decoded {
    let Some(enc) = encoding else {
        return Decoded::AsIs;
    };
    let enc = trim(enc).to_ascii_lowercase();
    let codings: Vec<&[u8]> = enc
        .split(|&b| b == b',')
        .map(trim)
        .filter(|c| !c.is_empty() && *c != b"identity")
        .collect();
    if codings.is_empty() {
        return Decoded::AsIs;
    }
    let mut cur: Option<Vec<u8>> = None;
    let mut cut = false;
    for c in codings.iter().rev() {
        let input: &[u8] = cur.as_deref().unwrap_or(body);
        match decode_one(c, input) {
            Ok(Some((b, c))) => {
                cut |= c;
                cur = Some(b);
            }
            Ok(None) => return Decoded::Failed,
            Err(()) => return Decoded::Unsupported,
        }
    }
    match cur {
        Some(b) => Decoded::Bytes(b, cut),
        None => Decoded::AsIs,
    }
}

/// Charset label from a Content-Type value (`text/html; charset=Shift_JIS`).
pub fn charset_of(content_type: &[u8]) -> Option<&[u8]> {
    let i = find_ci(content_type, b"charset=")?;
    let v = &content_type[i + 8..];
    let v = v.split(|&b| b == b';' || b == b' ').next()?;
    let v = v.strip_prefix(b"\"").unwrap_or(v);
    let v = v.strip_suffix(b"\"").unwrap_or(v);
    if v.is_empty() { None } else { Some(v) }
}

/// Decodes text in `charset` (or sniffs `<meta charset>`, else UTF-8).
pub fn decode_text(bytes: &[u8], charset: Option<&[u8]>) -> String {
    let meta_charset = || {
        let head = &bytes[..bytes.len().min(4096)];
        charset_of(head)
    };
    let label = charset.or_else(meta_charset);
    let enc = label
        .and_then(encoding_rs::Encoding::for_label)
        .unwrap_or(encoding_rs::UTF_8);
    enc.decode(bytes).0.into_owned()
}

/// The `<title>` of an HTML document, whitespace collapsed, common entities decoded.
pub fn html_title(body: &[u8], charset: Option<&[u8]>) -> Option<String> {
    let scan = &body[..body.len().min(MAX_TITLE_SCAN)];
    let start = find_ci(scan, b"<title")?;
    let after = &scan[start + 6..];
    // `<title>` or `<title lang=ja>`, but not `<titlefoo>`.
    if !matches!(after.first(), Some(b'>' | b' ' | b'\t' | b'\r' | b'\n')) {
        return None;
    }
    let gt = after.iter().position(|&b| b == b'>')?;
    let inner = &after[gt + 1..];
    let end = find_ci(inner, b"</title").unwrap_or(inner.len().min(1024));
    let text = decode_text(&inner[..end], charset);
    let text = html_unescape(&text);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        None
    } else {
        Some(collapsed)
    }
}

/// Decodes the entities that matter for titles and link texts.
pub fn html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let semi = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';');
        let Some(semi) = semi else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A parameter (`filename`, `name`, `boundary`) of a header value; RFC 5987 `filename*`
/// (`UTF-8''%E5%A0%B1…`) is preferred when present.
pub fn header_param(value: &[u8], param: &str) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let mut plain = None;
    for part in split_params(&text) {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim();
        if k == format!("{param}*") {
            if let Some((charset, rest)) = v.split_once('\'') {
                let encoded = rest.split_once('\'').map_or(rest, |(_, e)| e);
                let bytes = percent_decode(encoded);
                let enc = encoding_rs::Encoding::for_label(charset.as_bytes())
                    .unwrap_or(encoding_rs::UTF_8);
                return Some(enc.decode(&bytes).0.into_owned());
            }
        } else if k == param {
            let v = v
                .strip_prefix('"')
                .map_or(v, |x| x.strip_suffix('"').unwrap_or(x));
            plain = Some(v.replace("\\\"", "\""));
        }
    }
    plain
}

/// Splits `a; b="x;y"; c` on semicolons outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = parse_hex(&b[i + 1..i + 3])
        {
            out.push(v as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// One file part of a multipart/form-data body.
#[derive(Debug, PartialEq)]
pub struct FormFile<'a> {
    pub filename: String,
    pub content_type: Option<String>,
    pub data: &'a [u8],
}

/// File parts (those with a `filename`) of a multipart body with `boundary`.
pub fn multipart_files<'a>(body: &'a [u8], boundary: &str) -> Vec<FormFile<'a>> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut out = Vec::new();
    let mut pos = match crate::util::find(body, delim) {
        Some(p) => p + delim.len(),
        None => return out,
    };
    for _ in 0..MAX_MULTIPART_PARTS {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            break;
        }
        // Part headers end at a blank line.
        let Some(hend) = head_end(rest, 0) else { break };
        let headers = &rest[..hend];
        let content_start = pos + hend;
        let next = crate::util::find(&body[content_start..], delim);
        let content_end = next.map_or(body.len(), |n| content_start + n);
        let mut data = &body[content_start..content_end];
        if next.is_some() {
            data = data.strip_suffix(b"\n").unwrap_or(data);
            data = data.strip_suffix(b"\r").unwrap_or(data);
        }
        let mut filename = None;
        let mut ctype = None;
        for line in headers.split(|&b| b == b'\n') {
            let line = trim(line);
            if starts_with_ci(line, b"content-disposition:") {
                filename = header_param(&line[20..], "filename");
            } else if starts_with_ci(line, b"content-type:") {
                ctype = Some(String::from_utf8_lossy(trim(&line[13..])).into_owned());
            }
        }
        if let Some(filename) = filename {
            out.push(FormFile {
                filename,
                content_type: ctype,
                data,
            });
        }
        match next {
            Some(n) => pos = content_start + n + delim.len(),
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        assert_eq!(
            host_and_url("GET", "/index.html?a=1", Some("example.com")),
            (
                Some("example.com".into()),
                "example.com/index.html?a=1".into()
            )
        );
        assert_eq!(
            host_and_url(
                "CONNECT",
                "mtalk.google.com:5228",
                Some("mtalk.google.com:5228")
            ),
            (
                Some("mtalk.google.com:5228".into()),
                "mtalk.google.com:5228".into()
            )
        );
        assert_eq!(
            host_and_url("GET", "http://proxy.example/x", None),
            (Some("proxy.example".into()), "proxy.example/x".into())
        );
        assert_eq!(query_of("/s?q=%E6%97%A5#frag"), Some("q=%E6%97%A5"));
        assert_eq!(query_of("/s?"), None);
    }

    #[test]
    fn chunked_body_with_extensions_and_trailer() {
        let body = b"4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nNEXT";
        let mut r = BodyReader::new(BodyFraming::Chunked);
        assert_eq!(r.feed(body), BodyStep::Done(body.len() - 4));
        assert_eq!(r.content, b"Wikipedia in\r\n\r\nchunks.");
        // Byte at a time gives the same.
        let mut r = BodyReader::new(BodyFraming::Chunked);
        let mut done_at = None;
        for (i, b) in body.iter().enumerate() {
            if let BodyStep::Done(_) = r.feed(std::slice::from_ref(b)) {
                done_at = Some(i + 1);
                break;
            }
        }
        assert_eq!(done_at, Some(body.len() - 4));
        assert_eq!(r.content, b"Wikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn bad_chunk_size_is_malformed() {
        let mut r = BodyReader::new(BodyFraming::Chunked);
        assert!(matches!(r.feed(b"zz\r\n"), BodyStep::Malformed(_)));
    }

    #[test]
    fn gzip_roundtrip_and_title() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let html = "<html><head><TITLE>\n  FortiGate &amp; ログイン </TITLE></head></html>";
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(html.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let Decoded::Bytes(out, cut) = decode_content(Some(b"gzip"), &gz) else {
            panic!("gzip failed")
        };
        assert!(!cut);
        assert_eq!(out, html.as_bytes());
        assert_eq!(
            html_title(&out, None).as_deref(),
            Some("FortiGate & ログイン")
        );
        assert!(matches!(
            decode_content(Some(b"gzip"), b"not gzip"),
            Decoded::Failed
        ));
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// Was stored still encoded with `http_encoding_unsupported` before br was decoded.
    #[test]
    fn brotli_body_decodes() {
        // Python `brotli.compress(b"<html><head><title>br body</title></head></html>")`.
        let br = unhex(
            "1b2f00a0c529471a58202d8328f8e53b6cc005ec3fd8b4f83d12ac5c4ffd1d4fc17639808ae5371000",
        );
        let Decoded::Bytes(out, cut) = decode_content(Some(b"br"), &br) else {
            panic!("br did not decode")
        };
        assert!(!cut);
        assert_eq!(html_title(&out, None).as_deref(), Some("br body"));
        assert!(matches!(
            decode_content(Some(b"br"), b"\xff\xff not brotli"),
            Decoded::Failed
        ));
    }

    #[test]
    fn zstd_and_stacked_codings_decode() {
        use std::io::Write;
        let text = b"zstd body, then gzip on top".repeat(100);
        let z = zstd::encode_all(&text[..], 3).unwrap();
        let Decoded::Bytes(out, false) = decode_content(Some(b"zstd"), &z) else {
            panic!("zstd did not decode")
        };
        assert_eq!(out, text);
        // `Content-Encoding: zstd, gzip`: gzip was applied last, so it is undone first.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&z).unwrap();
        let both = gz.finish().unwrap();
        let Decoded::Bytes(out, false) = decode_content(Some(b"zstd, gzip"), &both) else {
            panic!("zstd, gzip did not decode")
        };
        assert_eq!(out, text);
        assert!(matches!(
            decode_content(Some(b"compress"), b"x"),
            Decoded::Unsupported
        ));
        assert!(matches!(
            decode_content(Some(b"identity"), b"x"),
            Decoded::AsIs
        ));
    }

    /// Decompression bombs: 114 bytes of br and a small zstd frame that expand past
    /// `MAX_DECODED_BYTES` are cut there, and say so.
    #[test]
    fn br_and_zstd_bombs_are_cut_at_the_limit() {
        // Python `brotli.compress(b"\0" * (64 * 1024 * 1024 + 4096), quality=5)`.
        let br = unhex(
            "cbffff3f002400e2b14072effff8ffff078004401c1680eefd1fffffff00900088c302d0bdffe3ff\
             ff1f001200715800baf77ffcffff034002200e0b40f7fe8fffff7f004800c46101e8defff1ffff0f\
             000980382c00ddfb3ffeffff012001108705a07bff17ff0f002400e2b000740f0000",
        );
        let Decoded::Bytes(out, cut) = decode_content(Some(b"br"), &br) else {
            panic!("br bomb did not decode")
        };
        assert!(cut);
        assert_eq!(out.len() as u64, MAX_DECODED_BYTES);
        let zeros = vec![0u8; MAX_DECODED_BYTES as usize + 1];
        let z = zstd::encode_all(&zeros[..], 1).unwrap();
        assert!(z.len() < 64 * 1024);
        let Decoded::Bytes(out, cut) = decode_content(Some(b"zstd"), &z) else {
            panic!("zstd bomb did not decode")
        };
        assert!(cut);
        assert_eq!(out.len() as u64, MAX_DECODED_BYTES);
    }

    /// Found by the fuzzer: an `&` followed by multi-byte characters within 12 bytes.
    #[test]
    fn unescape_near_multibyte_characters() {
        assert_eq!(html_unescape("&4\u{fffd}\u{fffd}x"), "&4\u{fffd}\u{fffd}x");
        assert_eq!(html_unescape("a&ああ;b&amp;"), "a&ああ;b&");
    }

    #[test]
    fn shift_jis_title() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("<title>社内ポータル</title>");
        assert_eq!(
            html_title(&sjis, Some(b"Shift_JIS")).as_deref(),
            Some("社内ポータル")
        );
    }

    #[test]
    fn basic_auth_and_params() {
        // "alice:secret" in base64.
        assert_eq!(
            basic_auth_user(b"Basic YWxpY2U6c2VjcmV0").as_deref(),
            Some("alice")
        );
        assert_eq!(basic_auth_user(b"Bearer abc"), None);
        assert_eq!(
            header_param(b"attachment; filename=\"a;b.pdf\"", "filename").as_deref(),
            Some("a;b.pdf")
        );
        assert_eq!(
            header_param(
                b"attachment; filename=\"x.pdf\"; filename*=UTF-8''%E5%A0%B1%E5%91%8A.pdf",
                "filename"
            )
            .as_deref(),
            Some("報告.pdf")
        );
    }

    #[test]
    fn multipart_file_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"secret.xlsx\"\r\nContent-Type: application/vnd.ms-excel\r\n\r\nPK\x03\x04data\r\n--XyZ--\r\n";
        let files = multipart_files(body, "XyZ");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].filename, "secret.xlsx");
        assert_eq!(
            files[0].content_type.as_deref(),
            Some("application/vnd.ms-excel")
        );
        assert_eq!(files[0].data, b"PK\x03\x04data");
    }
}
