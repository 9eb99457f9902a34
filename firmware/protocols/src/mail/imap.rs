//! IMAP (RFC 9051/3501): LOGIN and AUTHENTICATE PLAIN user, whole messages from FETCH
//! literals (`BODY[]`, `RFC822`, `BINARY[]`) and from APPEND (a client storing a sent
//! mail). Literals (`{n}`, `{n+}`, `~{n}`) are skipped exactly, so message bytes are never
//! mistaken for protocol lines. A STARTTLS the server accepts hands the stream to TLS
//! (`crate::upgrade`).

use super::message::{
    Envelope, auth_result, auth_started, command_status, process_message, push_command, set_user,
};
use crate::upgrade::{Answer, AwaitingAnswer, Upgrade, Verdict};
use crate::util::{base64_decode, take_line, text};
use crate::{Direction, MAX_OBJECT_BYTES, Sink, StreamParser};
use kuroko_model::session::SessionRecord;
use std::collections::VecDeque;

/// Longest protocol line kept (literals are not lines; real lines are short).
pub const MAX_LINE: usize = 64 * 1024;
/// Tagged commands waiting for their answer; more is not a mail client (the oldest are
/// forgotten, flag `imap_pending_overflow`).
pub const MAX_PENDING_TAGS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Skip,
    Message,
    /// The user name of `LOGIN {n}`.
    User,
}

#[derive(Debug)]
struct Literal {
    remaining: u64,
    purpose: Purpose,
    data: Vec<u8>,
    partial: bool,
}

#[derive(Debug, Default)]
struct Side {
    acc: Vec<u8>,
    overlong: bool,
    literal: Option<Literal>,
}

/// IMAP stream parser.
#[derive(Debug, Default)]
pub struct ImapParser {
    sides: [Side; 2],
    /// The next client line answers AUTHENTICATE PLAIN.
    auth_plain: bool,
    /// Tag and mechanism of a LOGIN/AUTHENTICATE waiting for its tagged answer.
    login: Option<(Vec<u8>, String)>,
    /// STARTTLS sent (its tag): both directions held until the tagged answer.
    starttls: Option<(Vec<u8>, AwaitingAnswer)>,
    upgrade: Option<Upgrade>,
    /// Upgraded to TLS: nothing more for this parser.
    stopped: bool,
    /// The server's first line was seen (the greeting).
    greeted: bool,
    /// Tags waiting for their tagged answer, with their index in `mail.commands`.
    tags: VecDeque<(Vec<u8>, Option<usize>)>,
    /// An AUTHENTICATE waits for its tagged answer: client lines are its SASL exchange.
    in_sasl: bool,
    /// A client literal just ended: the next client line continues the same command.
    continuation: bool,
    /// LOGIN sent its user as a literal: the command (index) whose argument it is.
    login_user_literal: Option<usize>,
}

/// `{123}`, `{123+}`, `~{123}` at the end of a line: the literal's size.
fn literal_size(line: &[u8]) -> Option<u64> {
    let l = line.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    let digits = &l[open + 1..];
    let digits = digits
        .strip_suffix(b"+")
        .or_else(|| digits.strip_suffix(b"-"))
        .unwrap_or(digits);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Whether the text before a server literal names a whole message.
fn is_message_item(before: &[u8]) -> bool {
    let b = before.to_ascii_uppercase();
    let b = b.strip_suffix(b"~").unwrap_or(&b).trim_ascii_end();
    let b = match b.iter().rposition(|&c| c == b'<') {
        // BODY[]<0> (partial fetch from offset 0)
        Some(p) if b.ends_with(b">") => &b[..p],
        _ => b,
    };
    b.ends_with(b"BODY[]") || b.ends_with(b"RFC822") || b.ends_with(b"BINARY[]")
}

/// First argument of a command: atom or quoted string.
fn first_arg(s: &[u8]) -> Option<Vec<u8>> {
    let s = s.trim_ascii_start();
    if let Some(rest) = s.strip_prefix(b"\"") {
        let mut out = Vec::new();
        let mut esc = false;
        for &c in rest {
            match (esc, c) {
                (false, b'\\') => esc = true,
                (false, b'"') => return Some(out),
                _ => {
                    out.push(c);
                    esc = false;
                }
            }
        }
        None
    } else {
        let end = s.iter().position(|&c| c == b' ').unwrap_or(s.len());
        (end > 0).then(|| s[..end].to_vec())
    }
}

impl ImapParser {
    pub fn new() -> ImapParser {
        ImapParser::default()
    }

    /// Handles a client line; returns the purpose of a literal that follows it.
    fn on_command(&mut self, line: &[u8], rec: &mut SessionRecord) -> Purpose {
        if std::mem::take(&mut self.auth_plain) {
            if let Some(d) = base64_decode(line) {
                let mut parts = d.split(|&b| b == 0);
                if let (Some(_), Some(user)) = (parts.next(), parts.next()) {
                    set_user(rec, user);
                }
            }
            return Purpose::Skip;
        }
        if self.in_sasl || std::mem::take(&mut self.continuation) {
            // A SASL response (a credential) or the rest of a command after a literal
            // (LOGIN's password literal follows such a line): not a command.
            return Purpose::Skip;
        }
        let mut it = line.splitn(3, |&b| b == b' ');
        let tag = it.next().unwrap_or(&[]);
        let cmd = it.next().unwrap_or(&[]).to_ascii_uppercase();
        let args = it.next().unwrap_or(&[]);
        self.record_command(tag, &cmd, args, rec);
        match cmd.as_slice() {
            b"LOGIN" => {
                auth_started(rec, b"LOGIN");
                self.login = Some((tag.to_vec(), "LOGIN".into()));
                if literal_size(args).is_some() && args.trim_ascii_start().starts_with(b"{") {
                    return Purpose::User;
                }
                if let Some(u) = first_arg(args) {
                    set_user(rec, &u);
                }
            }
            b"AUTHENTICATE" => {
                let mut a = args.split(|&b| b == b' ').filter(|x| !x.is_empty());
                if let Some(m) = a.clone().next() {
                    self.in_sasl = true;
                    auth_started(rec, m);
                    let m = String::from_utf8_lossy(m).to_ascii_uppercase();
                    self.login = Some((tag.to_vec(), m));
                }
                if a.next().is_some_and(|m| m.eq_ignore_ascii_case(b"PLAIN")) {
                    match a.next() {
                        Some(ir) => {
                            if let Some(d) = base64_decode(ir) {
                                let mut parts = d.split(|&b| b == 0);
                                if let (Some(_), Some(user)) = (parts.next(), parts.next()) {
                                    set_user(rec, user);
                                }
                            }
                        }
                        None => self.auth_plain = true,
                    }
                }
            }
            b"STARTTLS" => {
                rec.flag("imap_starttls");
                self.starttls = Some((tag.to_vec(), AwaitingAnswer::default()));
            }
            b"APPEND" => return Purpose::Message,
            _ => {}
        }
        Purpose::Skip
    }

    fn feed(
        &mut self,
        dir: Direction,
        mut input: &[u8],
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        let i = dir.index();
        while !input.is_empty() && !self.stopped {
            if self.starttls.is_some() {
                return self.on_starttls(dir, input, rec, sink);
            }
            if let Some(lit) = &mut self.sides[i].literal {
                let take = lit.remaining.min(input.len() as u64) as usize;
                if lit.purpose != Purpose::Skip {
                    let room = MAX_OBJECT_BYTES.saturating_sub(lit.data.len());
                    if take > room {
                        lit.partial = true;
                    }
                    lit.data.extend_from_slice(&input[..take.min(room)]);
                }
                lit.remaining -= take as u64;
                input = &input[take..];
                if lit.remaining == 0 {
                    let lit = self.sides[i].literal.take().expect("literal present");
                    match lit.purpose {
                        Purpose::Message => process_message(
                            &lit.data,
                            &Envelope::default(),
                            dir,
                            lit.partial,
                            rec,
                            sink,
                        ),
                        Purpose::User => {
                            set_user(rec, &lit.data);
                            let user = text(rec, &lit.data);
                            if let Some(c) = self
                                .login_user_literal
                                .take()
                                .and_then(|i| rec.mail.as_mut()?.commands.get_mut(i))
                            {
                                c.arg = Some(user);
                            }
                        }
                        Purpose::Skip => {}
                    }
                    if dir == Direction::ToServer {
                        self.continuation = true;
                    }
                }
                continue;
            }
            let side = &mut self.sides[i];
            let (n, line) = take_line(&mut side.acc, input, MAX_LINE, &mut side.overlong);
            input = &input[n..];
            let Some(line) = line else { continue };
            if std::mem::take(&mut side.overlong) {
                rec.flag("imap_line_too_long");
            }
            let Some(size) = literal_size(&line) else {
                if dir == Direction::ToServer {
                    self.on_command(&line, rec);
                } else {
                    self.on_response_line(&line, rec);
                }
                continue;
            };
            let purpose = match dir {
                Direction::ToServer => self.on_command(&line, rec),
                Direction::ToClient => {
                    let open = line.iter().rposition(|&b| b == b'{').unwrap_or(0);
                    if is_message_item(&line[..open]) {
                        Purpose::Message
                    } else {
                        Purpose::Skip
                    }
                }
            };
            if size > 0 {
                self.sides[i].literal = Some(Literal {
                    remaining: size,
                    purpose,
                    data: Vec::new(),
                    partial: false,
                });
            }
        }
    }
}

impl ImapParser {
    /// Adds a tagged command to `mail.commands` and waits for its tagged answer. `UID`
    /// keeps its sub-command in the verb (`UID FETCH`); LOGIN keeps only the user,
    /// AUTHENTICATE only the mechanism.
    fn record_command(&mut self, tag: &[u8], cmd: &[u8], args: &[u8], rec: &mut SessionRecord) {
        if tag.is_empty() || cmd.is_empty() || tag == b"*" || tag == b"+" {
            return; // DONE after IDLE, blank lines
        }
        let (verb, args) = if cmd == b"UID" {
            let mut a = args.splitn(2, |&b| b == b' ');
            let sub = a.next().unwrap_or(&[]).to_ascii_uppercase();
            let mut v = b"UID ".to_vec();
            v.extend_from_slice(&sub);
            (v, a.next().unwrap_or(&[]))
        } else {
            (cmd.to_vec(), args)
        };
        let user_only;
        let shown: &[u8] = match verb.as_slice() {
            b"LOGIN" => {
                // The user (quoted or atom); as a literal `{n}` it is not on this line.
                user_only = first_arg(args).filter(|u| !u.starts_with(b"{"));
                user_only.as_deref().unwrap_or(&[])
            }
            b"AUTHENTICATE" => args.split(|&b| b == b' ').next().unwrap_or(&[]),
            _ => args,
        };
        let idx = push_command(rec, &verb, shown);
        let mut user_literal = false;
        if verb == b"LOGIN" && shown.is_empty() {
            user_literal = true;
        }
        if self.tags.len() >= MAX_PENDING_TAGS {
            self.tags.pop_front();
            rec.flag("imap_pending_overflow");
        }
        self.tags.push_back((tag.to_vec(), idx));
        self.login_user_literal = user_literal.then_some(idx).flatten();
    }

    /// A tagged status line (`a1 OK …`, `a1 NO …`, `a1 BAD …`) answers its command.
    fn on_tagged(&mut self, line: &[u8], rec: &mut SessionRecord) {
        let mut it = line.splitn(3, |&b| b == b' ');
        let (Some(tag), Some(status)) = (it.next(), it.next()) else {
            return;
        };
        let status = status.to_ascii_uppercase();
        if !matches!(status.as_slice(), b"OK" | b"NO" | b"BAD") {
            return;
        }
        let Some(pos) = self.tags.iter().position(|(t, _)| t.as_slice() == tag) else {
            return;
        };
        let (_, idx) = self.tags.remove(pos).expect("position is in range");
        command_status(rec, idx, &String::from_utf8_lossy(&status));
    }

    /// A server line: the tagged answer to a login is its outcome (`mail.auth`).
    fn on_response_line(&mut self, line: &[u8], rec: &mut SessionRecord) {
        if !line.starts_with(b"* ") && !line.starts_with(b"+") {
            self.on_tagged(line, rec);
        }
        // The greeting (`* OK …`, the server's first line) names the server software.
        if !std::mem::replace(&mut self.greeted, true)
            && (line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH"))
            && rec.mail.as_ref().is_none_or(|m| m.banner.is_none())
        {
            let banner = text(rec, line);
            rec.mail.get_or_insert_with(Default::default).banner = Some(banner);
        }
        let Some((tag, mech)) = &self.login else {
            return;
        };
        let Some(rest) = line
            .strip_prefix(tag.as_slice())
            .and_then(|r| r.strip_prefix(b" "))
        else {
            return;
        };
        let ok = rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK");
        let mech = mech.clone();
        self.login = None;
        self.in_sasl = false;
        auth_result(rec, &mech, ok);
    }

    /// Bytes while STARTTLS waits for its tagged answer (RFC 9051 6.2.1: OK, then TLS).
    fn on_starttls(
        &mut self,
        dir: Direction,
        data: &[u8],
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        let Some((tag, wait)) = self.starttls.as_mut() else {
            return;
        };
        let tag = tag.clone();
        let verdict = |line: &[u8]| {
            let Some(rest) = line
                .strip_prefix(tag.as_slice())
                .and_then(|r| r.strip_prefix(b" "))
            else {
                return Verdict::NotYet;
            };
            if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK") {
                Verdict::Accepted
            } else {
                Verdict::Refused
            }
        };
        match wait.feed(dir, data, rec, verdict) {
            Answer::Pending => {}
            Answer::Accepted(pending) => {
                self.starttls = None;
                self.stopped = true;
                self.upgrade = Some(Upgrade::starttls(pending));
            }
            Answer::Refused([up, down]) => {
                self.starttls = None;
                rec.flag("imap_starttls_refused");
                self.feed(Direction::ToClient, &down, rec, sink);
                self.feed(Direction::ToServer, &up, rec, sink);
            }
        }
    }
}

impl StreamParser for ImapParser {
    fn take_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }

    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        if self.stopped {
            return;
        }
        if rec.mail.is_none() {
            rec.mail = Some(Default::default());
        }
        self.feed(dir, data, rec, sink);
    }

    fn on_gap(&mut self, dir: Direction, len: u64, rec: &mut SessionRecord) {
        let side = &mut self.sides[dir.index()];
        match &mut side.literal {
            Some(lit) if len < lit.remaining => {
                lit.remaining -= len;
                lit.partial = true;
            }
            _ => {
                side.literal = None;
                side.acc.clear();
                rec.flag("imap_gap");
            }
        }
    }

    fn on_close(&mut self, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        for (i, side) in self.sides.iter_mut().enumerate() {
            if let Some(lit) = side.literal.take()
                && lit.purpose == Purpose::Message
                && !lit.data.is_empty()
            {
                let dir = if i == 0 {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                process_message(&lit.data, &Envelope::default(), dir, true, rec, sink);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::{corpus, mail_commands as commands, run_all_cuts, view};

    /// curl 7.88 (AUTHENTICATE PLAIN with SASL-IR, UID FETCH BODY[]) → dovecot 2.3 on
    /// loopback: the .eml is byte-identical to the maildir file, the attachment to the
    /// file put in it; links and addresses as written into the message.
    #[test]
    fn real_curl_dovecot_fetch() {
        let t = corpus("imap", "curl-dovecot.bin");
        let (rec, sink) = run_all_cuts(|| Box::new(ImapParser::new()), "imap", &view(&t));
        let m = rec.mail.unwrap();
        assert_eq!(m.user.as_deref(), Some("hanako"));
        assert_eq!(
            m.eml_sha256.as_deref(),
            Some(include_str!("../../fuzz/corpus/imap/eml.sha256").trim())
        );
        assert_eq!(m.from.as_deref(), Some("yamada@example.co.jp"));
        assert_eq!(m.to, vec!["hanako@example.jp", "jiro@example.jp"]);
        assert_eq!(m.message_id.as_deref(), Some("kt-imap-1@example.co.jp"));
        assert_eq!(
            m.attachments[0].sha256.as_deref(),
            Some(include_str!("../../fuzz/corpus/imap/attach.sha256").trim())
        );
        assert_eq!(m.links.len(), 1);
        assert_eq!(m.links[0].href, "http://198.51.100.9/pay");
        assert_eq!(m.links[0].text, "https://www.example-bank.co.jp/");
        assert!(sink.objects.iter().any(|o| o.0.kind == "mail-body"));
    }

    #[test]
    fn login_fetch_and_append() {
        let msg1 = "From: \"Sato\" <sato@example.jp>\r\nSubject: imap one\r\n\r\nline with {5}\r\n) not the end\r\n";
        let msg2 = "From: me@example.jp\r\nSubject: sent copy\r\n\r\nhi\r\n";
        let up = format!(
            "a1 LOGIN \"sato\\\"x\" \"pw\"\r\na2 SELECT INBOX\r\na3 UID FETCH 7 (UID RFC822.SIZE BODY.PEEK[])\r\na4 APPEND Sent (\\Seen) {{{}}}\r\n{}\r\na5 LOGOUT\r\n",
            msg2.len(),
            msg2
        );
        let down = format!(
            "* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\na1 OK Logged in\r\n* 1 EXISTS\r\na2 OK [READ-WRITE] Select completed\r\n* 1 FETCH (UID 7 RFC822.SIZE {} BODY[HEADER.FIELDS (SUBJECT)] {{18}}\r\nSubject: ignored\r\n BODY[] {{{}}}\r\n{})\r\na3 OK Fetch completed\r\n+ OK\r\na4 OK Append completed\r\n",
            msg1.len(),
            msg1.len(),
            msg1
        );
        let (rec, sink) = run_all_cuts(
            || Box::new(ImapParser::new()),
            "imap",
            &[(Up, up.as_bytes()), (Down, down.as_bytes())],
        );
        let m = rec.mail.unwrap();
        assert_eq!(m.user.as_deref(), Some("sato\"x"));
        assert_eq!(
            m.banner.as_deref(),
            Some("* OK [CAPABILITY IMAP4rev1] Dovecot ready.")
        );
        // APPEND comes first in this transcript because all client bytes are fed first.
        let subjects: Vec<_> = std::iter::once(m.subject.clone())
            .chain(m.messages.iter().map(|x| x.subject.clone()))
            .collect();
        assert_eq!(
            subjects,
            vec![Some("sent copy".to_string()), Some("imap one".to_string())]
        );
        let eml: Vec<_> = sink
            .objects
            .iter()
            .filter(|o| o.0.kind == "mail")
            .map(|o| (o.0.direction, o.1.clone()))
            .collect();
        assert_eq!(
            eml,
            vec![
                (Some(Up), msg2.as_bytes().to_vec()),
                (Some(Down), msg1.as_bytes().to_vec())
            ]
        );
    }

    #[test]
    fn literal_forms() {
        assert_eq!(literal_size(b"a LOGIN {5}"), Some(5));
        assert_eq!(literal_size(b"a APPEND x {12+}"), Some(12));
        assert_eq!(literal_size(b"* 1 FETCH (BINARY[] ~{3}"), Some(3));
        assert_eq!(literal_size(b"{}"), None);
        assert!(is_message_item(b"* 1 FETCH (UID 7 BODY[]"));
        assert!(is_message_item(b"* 1 FETCH (BODY[]<0> "));
        assert!(!is_message_item(b"* 1 FETCH (BODY[HEADER]"));
    }

    #[test]
    fn authenticate_plain_continuation() {
        let (rec, _) = run_all_cuts(
            || Box::new(ImapParser::new()),
            "imap",
            &[
                (Up, b"a1 AUTHENTICATE PLAIN\r\nAGtpbXVyYQBwYXNz\r\n"),
                (Down, b"+ \r\na1 OK\r\n"),
            ],
        );
        assert_eq!(rec.mail.unwrap().user.as_deref(), Some("kimura"));
    }

    #[test]
    fn login_outcome_is_recorded() {
        let steps: Vec<(crate::Direction, &[u8])> = vec![
            (Down, b"* OK ready\r\n"),
            (Up, b"a1 LOGIN hanako wrong-pw\r\n"),
            (Down, b"a1 NO [AUTHENTICATIONFAILED] failed\r\n"),
            (Up, b"a2 LOGIN hanako right-pw\r\n"),
            (Down, b"* CAPABILITY IMAP4rev1\r\na2 OK Logged in\r\n"),
        ];
        let (rec, _) = run_all_cuts(|| Box::new(ImapParser::new()), "imap", &steps);
        let a = rec.mail.as_ref().unwrap().auth.clone().unwrap();
        assert_eq!(a.mechanism, "LOGIN");
        assert_eq!(a.success, Some(true));
        assert_eq!(a.failed_attempts, 1);
        assert!(!format!("{:?}", rec.mail).contains("-pw"));
    }

    /// `mail.commands`: verbs (UID's sub-command with it) and arguments, the tagged
    /// status; LOGIN keeps the user only, AUTHENTICATE the mechanism, SASL lines and
    /// literal continuations are not commands.
    #[test]
    fn commands_with_tagged_status_and_no_secrets() {
        let steps: Vec<(crate::Direction, &[u8])> = vec![
            (Down, b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"),
            (Up, b"a1 CAPABILITY\r\n"),
            (Down, b"* CAPABILITY IMAP4rev1 AUTH=LOGIN\r\na1 OK done\r\n"),
            (Up, b"a2 AUTHENTICATE LOGIN\r\n"),
            (Down, b"+ VXNlcm5hbWU6\r\n"),
            (Up, b"aGFuYWtv\r\n"),
            (Down, b"+ UGFzc3dvcmQ6\r\n"),
            (Up, b"d3JvbmctcHc=\r\n"),
            (Down, b"a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
            (Up, b"a3 LOGIN {6}\r\n"),
            (Down, b"+ OK\r\n"),
            (Up, b"hanako {8}\r\n"),
            (Down, b"+ OK\r\n"),
            (Up, b"right-pw\r\n"),
            (Down, b"a3 OK Logged in\r\n"),
            (Up, b"a4 SELECT INBOX\r\na5 UID FETCH 1:* (FLAGS)\r\n"),
            (
                Down,
                b"* 1 EXISTS\r\na4 OK [READ-WRITE] Select completed\r\n* 1 FETCH (UID 4 FLAGS ())\r\na5 OK Fetch completed\r\n",
            ),
            (Up, b"a6 EXAMINE \"No Such\"\r\na7 LOGOUT\r\n"),
            (Down, b"a6 NO Mailbox doesn't exist\r\n* BYE\r\na7 OK Logout completed\r\n"),
        ];
        let (rec, _) = run_all_cuts(|| Box::new(ImapParser::new()), "imap", &steps);
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            commands(&rec),
            vec![
                ("CAPABILITY".into(), None, s("OK")),
                ("AUTHENTICATE".into(), s("LOGIN"), s("NO")),
                ("LOGIN".into(), s("hanako"), s("OK")),
                ("SELECT".into(), s("INBOX"), s("OK")),
                ("UID FETCH".into(), s("1:* (FLAGS)"), s("OK")),
                ("EXAMINE".into(), s("\"No Such\""), s("NO")),
                ("LOGOUT".into(), None, s("OK")),
            ]
        );
        let m = rec.mail.as_ref().unwrap();
        assert_eq!(m.user.as_deref(), Some("hanako"));
        let a = m.auth.clone().unwrap();
        assert_eq!((a.success, a.failed_attempts), (Some(true), 1));
        let all = format!("{m:?}");
        assert!(
            !all.contains("right-pw") && !all.contains("d3JvbmctcHc") && !all.contains("aGFuYWtv"),
            "{all}"
        );
    }
}
