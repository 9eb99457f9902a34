//! Per-session HTTP/1.x state: the two directions' framing, requests waiting for their
//! responses (pipelining), and the bodies being reconstructed.

use super::parser::*;
use crate::util::{
    emit_object, file_name_of_path, find, find_ci, push_capped, starts_with_ci, text,
};
use crate::{Direction, ObjectMeta, Sink, StreamParser};
use kuroko_model::session::{Http, HttpTransaction, SessionRecord};
use std::collections::VecDeque;

/// Requests waiting for a response. A client that pipelines more than this without any
/// answer is not a browser; the oldest are dropped (flag `http_pending_overflow`).
pub const MAX_PENDING_REQUESTS: usize = 512;
/// Bytes a client may send after `CONNECT` before the proxy answered; kept until we know
/// whether they are a tunnel (2xx) or the next request.
pub const MAX_HELD_AFTER_CONNECT: usize = 16 * 1024;
/// Longest partial message start kept while resynchronising after garbage or a gap.
const RESYNC_KEEP: usize = 64;

/// Most request headers kept per transaction (the list below plus exploit-bearing ones).
const MAX_KEPT_HEADERS: usize = 24;
/// Request headers copied into `HttpTransaction.headers` (values capped; credentials never).
const KEPT_REQUEST_HEADERS: &[&str] = &[
    "referer",
    "origin",
    "x-forwarded-for",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "x-requested-with",
    "soapaction",
    "upgrade",
    "accept-language",
];

#[derive(Debug)]
struct Pending {
    tx: Option<usize>,
    method: String,
    url_name: Option<String>,
}

#[derive(Debug)]
struct BodyCtx {
    reader: BodyReader,
    tx: Option<usize>,
    dir: Direction,
    name: Option<String>,
    content_type: Option<Vec<u8>>,
    encoding: Option<Vec<u8>>,
    /// Only a piece of the resource (206 Partial Content): the object is marked partial.
    range: bool,
}

#[derive(Debug)]
enum State {
    Head,
    Body(Box<BodyCtx>),
    /// Lost framing: looking for the start of the next message.
    Resync,
    /// Request side after CONNECT, until the response says tunnel or not.
    HeldForConnect,
    /// Opaque from here on (CONNECT tunnel, protocol upgrade).
    Stopped,
}

#[derive(Debug)]
struct Side {
    buf: Vec<u8>,
    /// Where the search for the end of the head resumes.
    scanned: usize,
    /// `buf[0]` is at the start of a line (for resynchronisation).
    line_start: bool,
    state: State,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            buf: Vec::new(),
            scanned: 0,
            line_start: true,
            state: State::Head,
        }
    }
}

/// HTTP/1.x stream parser (also used for WinRM, which is HTTP).
#[derive(Debug, Default)]
pub struct HttpParser {
    sides: [Side; 2],
    pending: VecDeque<Pending>,
    /// Bodies cut by a gap, handed to the sink at the next call that has one.
    cut_bodies: Vec<BodyCtx>,
    /// A CONNECT answered 2xx or a 101: handed out by `take_upgrade`.
    upgrade: Option<crate::upgrade::Upgrade>,
}

impl HttpParser {
    pub fn new() -> HttpParser {
        HttpParser::default()
    }

    /// Bytes buffered for both directions (for tests and memory accounting).
    pub fn buffered(&self) -> usize {
        self.sides.iter().map(|s| s.buf.len()).sum::<usize>()
            + self
                .cut_bodies
                .iter()
                .map(|c| c.reader.content.len())
                .sum::<usize>()
    }

    fn process(&mut self, dir: Direction, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        let i = dir.index();
        loop {
            let side = &mut self.sides[i];
            match &mut side.state {
                State::Stopped => {
                    side.buf.clear();
                    return;
                }
                State::HeldForConnect => {
                    if side.buf.len() > MAX_HELD_AFTER_CONNECT {
                        side.buf.truncate(MAX_HELD_AFTER_CONNECT);
                        rec.flag("http_connect_overflow");
                    }
                    return;
                }
                State::Body(ctx) => {
                    if side.buf.is_empty() {
                        return;
                    }
                    match ctx.reader.feed(&side.buf) {
                        BodyStep::NeedMore => {
                            side.buf.clear();
                            return;
                        }
                        BodyStep::Done(n) => {
                            side.buf.drain(..n);
                            let State::Body(ctx) = std::mem::replace(&mut side.state, State::Head)
                            else {
                                unreachable!("matched Body above")
                            };
                            side.scanned = 0;
                            side.line_start = true;
                            finish_body(*ctx, false, rec, sink);
                        }
                        BodyStep::Malformed(n) => {
                            side.buf.drain(..n);
                            let State::Body(ctx) =
                                std::mem::replace(&mut side.state, State::Resync)
                            else {
                                unreachable!("matched Body above")
                            };
                            side.line_start = false;
                            rec.flag("malformed:http");
                            finish_body(*ctx, true, rec, sink);
                        }
                    }
                }
                State::Resync => {
                    if !resync(side, dir) {
                        return;
                    }
                }
                State::Head => {
                    // Blank lines between messages are allowed (RFC 9112 2.2).
                    let skip = side
                        .buf
                        .iter()
                        .take_while(|&&b| b == b'\r' || b == b'\n')
                        .count();
                    if skip > 0 {
                        side.buf.drain(..skip);
                        side.scanned = 0;
                    }
                    if side.buf.is_empty() {
                        return;
                    }
                    let Some(end) = head_end(&side.buf, side.scanned.saturating_sub(3)) else {
                        side.scanned = side.buf.len();
                        if side.buf.len() > MAX_HEAD_BYTES {
                            rec.flag("malformed:http");
                            rec.flag("http_head_too_long");
                            side.buf.clear();
                            side.line_start = false;
                            side.state = State::Resync;
                            continue;
                        }
                        // Early rejection of non-HTTP so that garbage is not buffered.
                        if !looks_like_start(&side.buf, dir, true) {
                            invalid_head(side, rec);
                        }
                        return;
                    };
                    side.scanned = 0;
                    let head_bytes: Vec<u8> = side.buf[..end].to_vec();
                    match dir {
                        Direction::ToServer => match parse_request_head(&head_bytes) {
                            HeadResult::Complete(head, n) => {
                                side.buf.drain(..n);
                                self.on_request(head, rec);
                            }
                            _ => invalid_head(side, rec),
                        },
                        Direction::ToClient => match parse_response_head(&head_bytes) {
                            HeadResult::Complete(head, n) => {
                                side.buf.drain(..n);
                                self.on_response(head, rec, sink);
                            }
                            _ => invalid_head(side, rec),
                        },
                    }
                }
            }
        }
    }

    fn on_request(&mut self, head: RequestHead, rec: &mut SessionRecord) {
        let host_header =
            header(&head.headers, "host").map(|h| String::from_utf8_lossy(h).into_owned());
        let (host, url) = host_and_url(&head.method, &head.target, host_header.as_deref());
        let mut tx = HttpTransaction {
            method: text(rec, head.method.as_bytes()),
            host: host.as_deref().map(|h| text(rec, h.as_bytes())),
            uri: text(rec, head.target.as_bytes()),
            user_agent: header(&head.headers, "user-agent").map(|v| text(rec, v)),
            ..Default::default()
        };
        for name in KEPT_REQUEST_HEADERS {
            if let Some(v) = header(&head.headers, name) {
                let v = text(rec, v);
                tx.headers.push((name.to_string(), v));
            }
        }
        for auth in ["authorization", "proxy-authorization"] {
            if let Some(v) = header(&head.headers, auth) {
                // Only the scheme: credentials are not session data.
                let scheme = v.split(|&b| b == b' ').next().unwrap_or(b"");
                let scheme = text(rec, scheme);
                tx.headers.push((auth.to_string(), scheme));
            }
        }
        if header(&head.headers, "cookie").is_some() {
            tx.headers
                .push(("cookie".to_string(), "present".to_string()));
        }
        // For detections (kuroko-detect `public_app_exploit_attempt`): any other header
        // carrying an exploit payload (Log4Shell `${jndi:`, OGNL `%{`, Shellshock `() {`)
        // is kept whatever its name, and ProxyLogon's X-BEResource (header or cookie) is
        // marked. Credentials and cookie values are never kept.
        for (name, v) in &head.headers {
            if tx.headers.len() >= MAX_KEPT_HEADERS {
                break;
            }
            let lname = name.to_ascii_lowercase();
            if KEPT_REQUEST_HEADERS.contains(&lname.as_str())
                || matches!(
                    lname.as_str(),
                    "authorization" | "proxy-authorization" | "host" | "user-agent"
                )
            {
                continue;
            }
            if lname == "cookie" {
                if find_ci(v, b"x-beresource=").is_some() {
                    tx.headers
                        .push(("x-beresource".to_string(), "in cookie".to_string()));
                }
                continue;
            }
            if lname == "x-beresource"
                || find(v, b"${").is_some()
                || find(v, b"%{").is_some()
                || v.starts_with(b"() {")
            {
                tx.headers.push((lname, text(rec, v)));
            }
        }
        let user = header(&head.headers, "authorization")
            .or_else(|| header(&head.headers, "proxy-authorization"))
            .and_then(basic_auth_user)
            .map(|u| text(rec, u.as_bytes()));
        let query = query_of(&head.target).map(|q| text(rec, q.as_bytes()));
        let url = text(rec, url.as_bytes());
        if starts_with_ci(head.target.as_bytes(), b"/wsman") && rec.protocol == "http" {
            rec.protocol = "winrm".to_string();
        }

        let mut http = rec.http.take().unwrap_or_default();
        if http.method.is_none() {
            http.method = Some(tx.method.clone());
            http.host = tx.host.clone();
            http.url = Some(url);
            http.user_agent = tx.user_agent.clone();
            http.query = query;
        }
        if http.user.is_none() {
            http.user = user;
        }
        let connect = head.method.eq_ignore_ascii_case("CONNECT");
        let framing = request_framing(&head, rec);
        let content_type = header(&head.headers, "content-type").map(<[u8]>::to_vec);
        let encoding = header(&head.headers, "content-encoding").map(<[u8]>::to_vec);
        let idx = push_tx(rec, &mut http, tx);
        rec.http = Some(http);

        if self.pending.len() >= MAX_PENDING_REQUESTS {
            self.pending.pop_front();
            rec.flag("http_pending_overflow");
        }
        let url_name = file_name_of_path(&head.target);
        self.pending.push_back(Pending {
            tx: idx,
            method: head.method.to_ascii_uppercase(),
            url_name: url_name.clone(),
        });

        let side = &mut self.sides[Direction::ToServer.index()];
        if connect {
            side.state = State::HeldForConnect;
        } else if framing != BodyFraming::None {
            side.state = State::Body(Box::new(BodyCtx {
                reader: BodyReader::new(framing),
                tx: idx,
                dir: Direction::ToServer,
                name: url_name,
                content_type,
                encoding,
                range: false,
            }));
        }
    }

    fn on_response(&mut self, head: ResponseHead, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        if (100..200).contains(&head.status) && head.status != 101 {
            return; // 100 Continue, 103 Early Hints: the real response follows.
        }
        let pending = match self.pending.pop_front() {
            Some(p) => p,
            None => {
                rec.flag("http_response_without_request");
                let mut http = rec.http.take().unwrap_or_default();
                let idx = push_tx(rec, &mut http, HttpTransaction::default());
                rec.http = Some(http);
                Pending {
                    tx: idx,
                    method: String::new(),
                    url_name: None,
                }
            }
        };
        let server = header(&head.headers, "server").map(|v| text(rec, v));
        let content_type = header(&head.headers, "content-type").map(|v| text(rec, v));
        let powered_by = header(&head.headers, "x-powered-by").map(|v| text(rec, v));
        let mut http = rec.http.take().unwrap_or_default();
        if http.status.is_none() {
            http.status = Some(head.status);
            http.server.clone_from(&server);
            http.content_type.clone_from(&content_type);
        }
        if http.powered_by.is_none() {
            http.powered_by.clone_from(&powered_by);
        }
        if let Some(tx) = pending.tx.and_then(|i| http.transactions.get_mut(i)) {
            tx.status = Some(head.status);
            tx.server = server;
            tx.content_type = content_type;
            tx.powered_by = powered_by;
        }
        rec.http = Some(http);

        let connect = pending.method == "CONNECT";
        if (connect && (200..300).contains(&head.status)) || head.status == 101 {
            // The stream now carries another protocol: hand what we hold of it to the
            // upgrade mechanism (crate::upgrade), which identifies and parses it.
            let target = if connect {
                rec.http
                    .as_ref()
                    .and_then(|h| pending.tx.and_then(|i| h.transactions.get(i)))
                    .map(|tx| tx.uri.clone())
            } else {
                None
            };
            let mut bytes: [Vec<u8>; 2] = Default::default();
            for (i, side) in self.sides.iter_mut().enumerate() {
                side.state = State::Stopped;
                bytes[i] = std::mem::take(&mut side.buf);
            }
            self.upgrade = Some(crate::upgrade::Upgrade {
                kind: if connect {
                    "http-connect"
                } else {
                    "http-upgrade"
                },
                target,
                inner: None,
                pending: bytes,
            });
            return;
        }
        if connect {
            // Refused CONNECT: the held bytes are the client's next request.
            let req = &mut self.sides[Direction::ToServer.index()];
            req.state = State::Head;
            req.scanned = 0;
            self.process(Direction::ToServer, rec, sink);
        }
        let framing = if pending.method == "HEAD"
            || head.status == 204
            || head.status == 304
            || head.status < 200
        {
            BodyFraming::None
        } else if header(&head.headers, "transfer-encoding").is_some_and(is_chunked) {
            BodyFraming::Chunked
        } else if let Some(cl) = header(&head.headers, "content-length") {
            match content_length(cl) {
                Ok(n) => BodyFraming::Length(n),
                Err(BadContentLength) => {
                    rec.flag("malformed:http");
                    BodyFraming::UntilClose
                }
            }
        } else {
            BodyFraming::UntilClose
        };
        if framing == BodyFraming::None || framing == BodyFraming::Length(0) {
            return;
        }
        let disposition_name =
            header(&head.headers, "content-disposition").and_then(|v| header_param(v, "filename"));
        let side = &mut self.sides[Direction::ToClient.index()];
        side.state = State::Body(Box::new(BodyCtx {
            reader: BodyReader::new(framing),
            tx: pending.tx,
            dir: Direction::ToClient,
            name: disposition_name.or(pending.url_name),
            content_type: header(&head.headers, "content-type").map(<[u8]>::to_vec),
            encoding: header(&head.headers, "content-encoding").map(<[u8]>::to_vec),
            range: head.status == 206,
        }));
    }
}

fn push_tx(rec: &mut SessionRecord, http: &mut Http, tx: HttpTransaction) -> Option<usize> {
    let idx = http.transactions.len();
    push_capped(rec, &mut http.transactions, tx).then_some(idx)
}

fn request_framing(head: &RequestHead, rec: &mut SessionRecord) -> BodyFraming {
    if header(&head.headers, "transfer-encoding").is_some_and(is_chunked) {
        BodyFraming::Chunked
    } else if let Some(cl) = header(&head.headers, "content-length") {
        match content_length(cl) {
            Ok(0) => BodyFraming::None,
            Ok(n) => BodyFraming::Length(n),
            Err(BadContentLength) => {
                rec.flag("malformed:http");
                BodyFraming::None
            }
        }
    } else {
        BodyFraming::None
    }
}

/// Whether `buf` (at a line start) is, or could still become, the start of a message of
/// this direction. `partial_ok`: a proper prefix of a signature counts.
fn looks_like_start(buf: &[u8], dir: Direction, partial_ok: bool) -> bool {
    match dir {
        Direction::ToServer => match crate::identify::http_request(buf) {
            crate::identify::Match::Yes => true,
            crate::identify::Match::Maybe => partial_ok,
            crate::identify::Match::No => false,
        },
        Direction::ToClient => {
            let sig = b"HTTP/";
            let n = buf.len().min(sig.len());
            buf[..n] == sig[..n] && (partial_ok || buf.len() >= sig.len())
        }
    }
}

fn invalid_head(side: &mut Side, rec: &mut SessionRecord) {
    rec.flag("malformed:http");
    // Skip the offending line, then look for the next message start.
    match side.buf.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            side.buf.drain(..=nl);
            side.line_start = true;
        }
        None => {
            side.buf.clear();
            side.line_start = false;
        }
    }
    side.scanned = 0;
    side.state = State::Resync;
}

/// Looks for the next message start at a line start. Returns true when found (state is
/// `Head` again), false when more input is needed.
fn resync(side: &mut Side, dir: Direction) -> bool {
    let buf = &side.buf;
    for p in 0..buf.len() {
        let at_line_start = if p == 0 {
            side.line_start
        } else {
            buf[p - 1] == b'\n'
        };
        if at_line_start && looks_like_start(&buf[p..], dir, false) {
            side.buf.drain(..p);
            side.state = State::Head;
            side.scanned = 0;
            return true;
        }
    }
    // Keep only what could still become a message start.
    match side.buf.iter().rposition(|&b| b == b'\n') {
        Some(nl) => {
            side.buf.drain(..=nl);
            side.line_start = true;
        }
        None if side.line_start => {}
        None => side.buf.clear(),
    }
    if side.buf.len() > RESYNC_KEEP || !looks_like_start(&side.buf, dir, true) {
        side.buf.clear();
        side.line_start = false;
    }
    false
}

fn finish_body(ctx: BodyCtx, truncated: bool, rec: &mut SessionRecord, sink: &mut dyn Sink) {
    let BodyCtx {
        reader,
        tx,
        dir,
        name,
        content_type,
        encoding,
        range,
    } = ctx;
    if let Some(t) = tx.and_then(|i| rec.http.as_mut()?.transactions.get_mut(i)) {
        match dir {
            Direction::ToServer => t.request_body_bytes = reader.total,
            Direction::ToClient => t.response_body_bytes = reader.total,
        }
    }
    let mut partial = reader.partial || truncated || range;
    if reader.content.is_empty() {
        return;
    }
    let decoded = match decode_content(encoding.as_deref(), &reader.content) {
        Decoded::AsIs => None,
        Decoded::Bytes(b, cut) => {
            if cut {
                // The decoding limit (decompression bomb): what was kept is a prefix.
                rec.flag("http_decoded_cut");
            }
            partial |= cut;
            Some(b)
        }
        Decoded::Failed => {
            rec.flag("malformed:http-encoding");
            None
        }
        Decoded::Unsupported => {
            // Stored as sent; the flag says the object is still encoded.
            rec.flag("http_encoding_unsupported");
            None
        }
    };
    let body: &[u8] = decoded.as_deref().unwrap_or(&reader.content);
    let mime = content_type.as_deref().map(|c| {
        let m = c.split(|&b| b == b';').next().unwrap_or(c);
        String::from_utf8_lossy(trim(m)).to_ascii_lowercase()
    });
    let charset = content_type.as_deref().and_then(charset_of);

    if dir == Direction::ToClient {
        let htmlish = mime.as_deref().is_some_and(|m| m.contains("html"))
            || (mime.is_none()
                && crate::util::find_ci(&body[..body.len().min(512)], b"<html").is_some());
        if htmlish && let Some(title) = html_title(body, charset) {
            let title = crate::util::text_str(rec, &title);
            if let Some(t) = tx.and_then(|i| rec.http.as_mut()?.transactions.get_mut(i)) {
                t.title = Some(title);
            }
        }
    }

    if dir == Direction::ToServer
        && mime.as_deref() == Some("multipart/form-data")
        && let Some(boundary) = content_type
            .as_deref()
            .and_then(|c| header_param(c, "boundary"))
    {
        let files = multipart_files(body, &boundary);
        if !files.is_empty() {
            for f in files {
                let meta = ObjectMeta {
                    name: Some(f.filename),
                    content_type: f.content_type,
                    kind: "http-body",
                    direction: Some(dir),
                    partial,
                };
                emit_object(rec, sink, meta, f.data);
            }
            return;
        }
    }
    let meta = ObjectMeta {
        name,
        content_type: mime,
        kind: "http-body",
        direction: Some(dir),
        partial,
    };
    emit_object(rec, sink, meta, body);
}

impl StreamParser for HttpParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        for ctx in std::mem::take(&mut self.cut_bodies) {
            finish_body(ctx, true, rec, sink);
        }
        let side = &mut self.sides[dir.index()];
        if matches!(side.state, State::Stopped) || data.is_empty() {
            return;
        }
        side.buf.extend_from_slice(data);
        self.process(dir, rec, sink);
    }

    fn take_upgrade(&mut self) -> Option<crate::upgrade::Upgrade> {
        self.upgrade.take()
    }

    fn on_gap(&mut self, dir: Direction, len: u64, rec: &mut SessionRecord) {
        let side = &mut self.sides[dir.index()];
        let skipped_in_body = match &mut side.state {
            State::Body(ctx) => side.buf.is_empty() && ctx.reader.gap(len),
            _ => false,
        };
        match &mut side.state {
            State::Stopped => {}
            State::Body(_) if skipped_in_body => {}
            State::Body(_) => {
                // Framing is lost: the body ends here, incomplete. `on_gap` has no sink,
                // so the partial body is handed over at the next call that has one.
                let State::Body(ctx) = std::mem::replace(&mut side.state, State::Resync) else {
                    unreachable!("matched Body above")
                };
                rec.flag("http_body_cut");
                side.buf.clear();
                side.line_start = false;
                self.cut_bodies.push(*ctx);
            }
            _ => {
                side.buf.clear();
                side.line_start = false;
                side.scanned = 0;
                side.state = State::Resync;
            }
        }
    }

    fn on_close(&mut self, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        for ctx in std::mem::take(&mut self.cut_bodies) {
            finish_body(ctx, true, rec, sink);
        }
        for i in 0..2 {
            let side = &mut self.sides[i];
            if let State::Body(_) = side.state {
                let State::Body(ctx) = std::mem::replace(&mut side.state, State::Stopped) else {
                    unreachable!("matched Body above")
                };
                // A body delimited by the close is complete now; any other is cut short.
                let complete = ctx.reader.ends_at_close();
                if !complete {
                    rec.flag("http_body_cut");
                }
                finish_body(*ctx, !complete, rec, sink);
            }
            side.state = State::Stopped;
            side.buf.clear();
        }
    }
}
