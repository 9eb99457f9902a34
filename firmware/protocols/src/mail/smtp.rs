//! SMTP (RFC 5321): envelope, AUTH user, messages from DATA (dot-unstuffed) and BDAT
//! (RFC 3030). STARTTLS ends what can be seen.

use super::dotdata::DotReader;
use super::message::{
    Envelope, auth_result, auth_started, process_message, push_command, set_user,
};
use crate::upgrade::{Answer, AwaitingAnswer, Upgrade, Verdict};
use crate::util::{LineBuf, base64_decode, starts_with_ci, take_line, text};
use crate::{Direction, MAX_OBJECT_BYTES, Sink, StreamParser};
use kuroko_model::session::{MAX_LIST_LEN, SessionRecord};

/// Longest command line kept (RFC 5321 4.5.3.1.4: 512; extensions make it longer).
pub const MAX_COMMAND_LINE: usize = 4096;
/// Longest reply line looked at.
pub const MAX_REPLY_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    AwaitPlain,
    AwaitLoginUser,
    AwaitLoginPass,
    AwaitCram,
}

#[derive(Debug)]
enum Up {
    Commands,
    Data(DotReader),
    Bdat { remaining: u64, last: bool },
}

/// SMTP stream parser.
#[derive(Debug)]
pub struct SmtpParser {
    up: Up,
    acc: Vec<u8>,
    overlong: bool,
    bdat: Vec<u8>,
    bdat_partial: bool,
    down: LineBuf,
    envelope: Envelope,
    auth: Auth,
    /// STARTTLS sent: both directions held until the server's answer.
    starttls: Option<AwaitingAnswer>,
    /// Commands waiting for their final reply (index into `mail.commands`; None when the
    /// list was full), in order: SMTP replies come in command order, also pipelined.
    awaiting_reply: std::collections::VecDeque<Option<usize>>,
    /// The server's greeting (its first reply, answering no command) was seen.
    greeted: bool,
    upgrade: Option<Upgrade>,
    /// Upgraded to TLS: nothing more for this parser.
    stopped: bool,
}

impl Default for SmtpParser {
    fn default() -> Self {
        SmtpParser {
            up: Up::Commands,
            acc: Vec::new(),
            overlong: false,
            bdat: Vec::new(),
            bdat_partial: false,
            down: LineBuf::default(),
            envelope: Envelope::default(),
            auth: Auth::None,
            starttls: None,
            awaiting_reply: std::collections::VecDeque::new(),
            greeted: false,
            upgrade: None,
            stopped: false,
        }
    }
}

/// The address inside `<…>` of `MAIL FROM:<a@b> SIZE=1` / `RCPT TO:<a@b>`.
/// The address of a `MAIL FROM:` / `RCPT TO:` argument, through the text sanitizer and the
/// field length cap like every other string off the wire.
fn path_arg(rec: &mut SessionRecord, arg: &[u8]) -> String {
    let s = crate::util::text(rec, arg);
    let s = s.trim();
    match (s.find('<'), s.find('>')) {
        (Some(a), Some(b)) if b > a => s[a + 1..b].to_string(),
        _ => s.split_whitespace().next().unwrap_or("").to_string(),
    }
}

/// authcid of a SASL PLAIN response (`authzid NUL authcid NUL password`).
fn plain_user(b64: &[u8]) -> Option<Vec<u8>> {
    let d = base64_decode(b64)?;
    let mut parts = d.split(|&b| b == 0);
    let _authzid = parts.next()?;
    let authcid = parts.next()?;
    Some(authcid.to_vec())
}

impl SmtpParser {
    pub fn new() -> SmtpParser {
        SmtpParser::default()
    }

    fn on_command(&mut self, line: &[u8], rec: &mut SessionRecord) {
        if self.auth != Auth::None {
            let auth = std::mem::replace(&mut self.auth, Auth::None);
            if line == b"*" {
                return;
            }
            match auth {
                Auth::AwaitPlain => {
                    if let Some(u) = plain_user(line) {
                        set_user(rec, &u);
                    }
                }
                Auth::AwaitLoginUser => {
                    if let Some(u) = base64_decode(line) {
                        set_user(rec, &u);
                    }
                    self.auth = Auth::AwaitLoginPass;
                }
                Auth::AwaitCram => {
                    if let Some(d) = base64_decode(line) {
                        let user = d.split(|&b| b == b' ').next().unwrap_or(&[]).to_vec();
                        set_user(rec, &user);
                    }
                }
                Auth::AwaitLoginPass | Auth::None => {}
            }
            return;
        }
        let sp = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb = line[..sp].to_ascii_uppercase();
        let arg = line.get(sp + 1..).unwrap_or(&[]);
        self.record_command(&verb, arg, rec);
        match verb.as_slice() {
            b"MAIL" => {
                self.envelope = Envelope::default();
                let a = arg.splitn(2, |&b| b == b':').nth(1).unwrap_or(arg);
                self.envelope.mail_from = Some(path_arg(rec, a));
            }
            b"RCPT" => {
                let a = arg.splitn(2, |&b| b == b':').nth(1).unwrap_or(arg);
                if self.envelope.rcpt_to.len() < kuroko_model::session::MAX_LIST_LEN {
                    self.envelope.rcpt_to.push(path_arg(rec, a));
                } else {
                    rec.flag("list_truncated");
                }
            }
            b"RSET" => self.envelope = Envelope::default(),
            b"DATA" => self.up = Up::Data(DotReader::default()),
            b"BDAT" => {
                let mut it = arg.split(|&b| b == b' ').filter(|x| !x.is_empty());
                let size = it
                    .next()
                    .and_then(|s| std::str::from_utf8(s).ok()?.parse::<u64>().ok());
                let last = it.next().is_some_and(|x| x.eq_ignore_ascii_case(b"LAST"));
                match size {
                    Some(n) => self.up = Up::Bdat { remaining: n, last },
                    None => rec.flag("malformed:smtp"),
                }
            }
            b"STARTTLS" => {
                rec.flag("smtp_starttls");
                self.starttls = Some(AwaitingAnswer::default());
            }
            b"AUTH" => {
                let mut it = arg.split(|&b| b == b' ').filter(|x| !x.is_empty());
                let mech = it.next().unwrap_or(&[]).to_ascii_uppercase();
                let ir = it.next().filter(|x| *x != b"=");
                auth_started(rec, &mech);
                match (mech.as_slice(), ir) {
                    (b"PLAIN", Some(ir)) => {
                        if let Some(u) = plain_user(ir) {
                            set_user(rec, &u);
                        }
                    }
                    (b"PLAIN", None) => self.auth = Auth::AwaitPlain,
                    (b"LOGIN", Some(ir)) => {
                        if let Some(u) = base64_decode(ir) {
                            set_user(rec, &u);
                        }
                        self.auth = Auth::AwaitLoginPass;
                    }
                    (b"LOGIN", None) => self.auth = Auth::AwaitLoginUser,
                    (b"CRAM-MD5", _) => self.auth = Auth::AwaitCram,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn finish_message(
        &mut self,
        data: &[u8],
        partial: bool,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        process_message(
            data,
            &self.envelope,
            Direction::ToServer,
            partial,
            rec,
            sink,
        );
    }

    fn on_up(&mut self, mut input: &[u8], rec: &mut SessionRecord, sink: &mut dyn Sink) {
        while !input.is_empty() && !self.stopped {
            if self.starttls.is_some() {
                return self.on_starttls(Direction::ToServer, input, rec, sink);
            }
            match &mut self.up {
                Up::Commands => {
                    let (n, line) =
                        take_line(&mut self.acc, input, MAX_COMMAND_LINE, &mut self.overlong);
                    input = &input[n..];
                    if let Some(line) = line {
                        if std::mem::take(&mut self.overlong) {
                            rec.flag("smtp_line_too_long");
                        }
                        self.on_command(&line, rec);
                    }
                }
                Up::Data(reader) => match reader.feed(input) {
                    Some(n) => {
                        input = &input[n..];
                        let Up::Data(reader) = std::mem::replace(&mut self.up, Up::Commands) else {
                            unreachable!("matched Data above")
                        };
                        self.finish_message(&reader.data, reader.partial, rec, sink);
                    }
                    None => input = &[],
                },
                Up::Bdat { remaining, last } => {
                    let take = (*remaining).min(input.len() as u64) as usize;
                    let room = MAX_OBJECT_BYTES.saturating_sub(self.bdat.len());
                    if take > room {
                        self.bdat_partial = true;
                    }
                    self.bdat.extend_from_slice(&input[..take.min(room)]);
                    *remaining -= take as u64;
                    input = &input[take..];
                    if *remaining == 0 {
                        let last = *last;
                        self.up = Up::Commands;
                        if last {
                            let data = std::mem::take(&mut self.bdat);
                            let partial = std::mem::take(&mut self.bdat_partial);
                            self.finish_message(&data, partial, rec, sink);
                        }
                    }
                }
            }
        }
    }
}

/// The code of a final reply line (`250 ok`, not `250-more`).
fn reply_code(line: &[u8]) -> Option<u16> {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) || line.get(3) == Some(&b'-') {
        return None;
    }
    std::str::from_utf8(&line[..3]).ok()?.parse().ok()
}

/// The server's answer to STARTTLS (RFC 3207): 220 to go ahead, any other final reply
/// refuses.
fn starttls_verdict(line: &[u8]) -> Verdict {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) || line.get(3) == Some(&b'-') {
        Verdict::NotYet
    } else if line.starts_with(b"220") {
        Verdict::Accepted
    } else {
        Verdict::Refused
    }
}

impl SmtpParser {
    /// Adds a command to `mail.commands` (AUTH keeps only its mechanism: the initial
    /// response is a credential) and queues it for its reply.
    fn record_command(&mut self, verb: &[u8], arg: &[u8], rec: &mut SessionRecord) {
        let arg: &[u8] = if verb == b"AUTH" {
            arg.split(|&b| b == b' ').next().unwrap_or(&[])
        } else {
            arg
        };
        let idx = push_command(rec, verb, arg);
        if self.awaiting_reply.len() >= MAX_LIST_LEN {
            self.awaiting_reply.pop_front();
        }
        self.awaiting_reply.push_back(idx);
    }

    /// A final reply `code`: it answers the oldest command still waiting.
    fn on_reply(&mut self, code: u16, rec: &mut SessionRecord) {
        if !std::mem::replace(&mut self.greeted, true) {
            return; // the greeting (a capture started mid-session is off by one)
        }
        if code == 334 {
            return; // SASL challenge: AUTH goes on
        }
        let Some(idx) = self.awaiting_reply.pop_front() else {
            return;
        };
        let Some(cmd) = idx.and_then(|i| rec.mail.as_mut()?.commands.get_mut(i)) else {
            return;
        };
        cmd.reply = Some(code);
        let verb = cmd.verb.clone();
        let mech = cmd.arg.clone().unwrap_or_default();
        if code == 354 && verb == "DATA" {
            // The message follows; its end gets the final reply.
            self.awaiting_reply.push_front(idx);
        }
        if verb == "AUTH" {
            auth_result(rec, &mech, (200..300).contains(&code));
        }
    }

    fn on_down(&mut self, data: &[u8], rec: &mut SessionRecord) {
        let mut failed = false;
        let mut codes = Vec::new();
        let mut first: Option<Vec<u8>> = None;
        self.down.feed(data, MAX_REPLY_LINE, |l| {
            if first.is_none() {
                first = Some(l.bytes.to_vec());
            }
            failed |= starts_with_ci(&l.bytes, b"535");
            if let Some(code) = reply_code(&l.bytes) {
                codes.push(code);
            }
        });
        // The greeting's first line names the server software.
        if !self.greeted
            && let Some(line) = first.filter(|l| l.starts_with(b"220"))
            && rec.mail.as_ref().is_none_or(|m| m.banner.is_none())
        {
            let banner = text(rec, &line);
            rec.mail.get_or_insert_with(Default::default).banner = Some(banner);
        }
        for code in codes {
            self.on_reply(code, rec);
        }
        if failed {
            rec.flag("smtp_auth_failed");
        }
    }

    /// Bytes while STARTTLS waits for its answer.
    fn on_starttls(
        &mut self,
        dir: Direction,
        data: &[u8],
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        let Some(wait) = self.starttls.as_mut() else {
            return;
        };
        match wait.feed(dir, data, rec, starttls_verdict) {
            Answer::Pending => {}
            Answer::Accepted(pending) => {
                self.starttls = None;
                self.stopped = true;
                self.on_reply(220, rec);
                self.upgrade = Some(Upgrade::starttls(pending));
            }
            Answer::Refused([up, down]) => {
                self.starttls = None;
                rec.flag("smtp_starttls_refused");
                self.on_down(&down, rec);
                self.on_up(&up, rec, sink);
            }
        }
    }
}

impl StreamParser for SmtpParser {
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
        if self.starttls.is_some() {
            return self.on_starttls(dir, data, rec, sink);
        }
        match dir {
            Direction::ToServer => self.on_up(data, rec, sink),
            Direction::ToClient => self.on_down(data, rec),
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, rec: &mut SessionRecord) {
        match dir {
            Direction::ToClient => self.down.clear(),
            Direction::ToServer => {
                // Inside a message the content is now incomplete; commands resync at the
                // next line ending.
                match &mut self.up {
                    Up::Data(r) => r.partial = true,
                    Up::Bdat { .. } => {
                        rec.flag("smtp_bdat_lost");
                        self.up = Up::Commands;
                        self.bdat.clear();
                    }
                    Up::Commands => {
                        self.acc.clear();
                    }
                }
            }
        }
    }

    fn on_close(&mut self, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        if let Up::Data(reader) = std::mem::replace(&mut self.up, Up::Commands)
            && !reader.data.is_empty()
        {
            rec.flag("smtp_data_unterminated");
            self.finish_message(&reader.data, true, rec, sink);
        }
        if !self.bdat.is_empty() {
            let data = std::mem::take(&mut self.bdat);
            self.finish_message(&data, true, rec, sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::{corpus, run_all_cuts, view};

    fn smtp() -> Box<dyn StreamParser> {
        Box::new(SmtpParser::new())
    }

    #[test]
    fn the_envelope_path_goes_through_the_sanitizer_and_the_cap() {
        let long = "a".repeat(kuroko_model::session::MAX_FIELD_LEN + 100);
        let up = format!(
            "MAIL FROM:<x\x1b[2J\u{202E}gpj.exe@evil.example>\r\nRCPT TO:<{long}@example.net>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n"
        );
        let down: &[u8] = b"220 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n";
        let (rec, _) = run_all_cuts(smtp, "smtp", &[(Up, up.as_bytes()), (Down, down)]);
        let m = rec.mail.as_ref().unwrap();
        assert_eq!(m.banner.as_deref(), Some("220 mx"));
        let from = m.mail_from.as_deref().unwrap();
        assert_eq!(from, "x [2Jgpj.exe@evil.example");
        assert!(
            m.to[0].len() <= kuroko_model::session::MAX_FIELD_LEN,
            "{}",
            m.to[0].len()
        );
        assert!(
            rec.flags
                .iter()
                .any(|f| f == "field_truncated" || f == "smtp_line_too_long"),
            "{:?}",
            rec.flags
        );
    }

    #[test]
    fn envelope_auth_login_and_dot_stuffing() {
        let up: &[u8] = b"EHLO client.example\r\nAUTH LOGIN\r\ndGFybw==\r\ncGFzc3dvcmQ=\r\nMAIL FROM:<taro@example.co.jp> SIZE=120\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nFrom: Taro <taro@example.co.jp>\r\nTo: a@example.net\r\nSubject: hi\r\n\r\nline\r\n..starts with dot\r\n.\r\nQUIT\r\n";
        let down: &[u8] = b"220 mx ESMTP\r\n250-mx\r\n250 AUTH LOGIN PLAIN\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n";
        let (rec, sink) = run_all_cuts(smtp, "smtp", &[(Up, up), (Down, down)]);
        let m = rec.mail.unwrap();
        assert_eq!(m.user.as_deref(), Some("taro"));
        assert_eq!(m.mail_from.as_deref(), Some("taro@example.co.jp"));
        assert_eq!(m.from.as_deref(), Some("taro@example.co.jp"));
        assert_eq!(m.from_display.as_deref(), Some("Taro"));
        assert_eq!(m.to, vec!["a@example.net", "b@example.net"]);
        assert_eq!(m.subject.as_deref(), Some("hi"));
        let eml = &sink.objects[0].1;
        assert!(
            eml.ends_with(b"line\r\n.starts with dot\r\n"),
            "{}",
            String::from_utf8_lossy(eml)
        );
    }

    #[test]
    fn bdat_chunks_and_starttls() {
        let msg = b"Subject: bdat\r\n\r\nbody\r\n";
        let mut up =
            b"EHLO x\r\nAUTH PLAIN AGhhbmFrbwBzZWNyZXQ=\r\nMAIL FROM:<h@x>\r\nRCPT TO:<t@y>\r\n"
                .to_vec();
        up.extend_from_slice(b"BDAT 10\r\n");
        up.extend_from_slice(&msg[..10]);
        up.extend_from_slice(format!("BDAT {} LAST\r\n", msg.len() - 10).as_bytes());
        up.extend_from_slice(&msg[10..]);
        up.extend_from_slice(b"STARTTLS\r\n\x16\x03\x01garbage\r\nMAIL FROM:<no@x>\r\n");
        let (rec, sink) = run_all_cuts(smtp, "smtp", &[(Up, &up)]);
        let m = rec.mail.as_ref().unwrap();
        assert_eq!(m.user.as_deref(), Some("hanako"));
        assert_eq!(m.subject.as_deref(), Some("bdat"));
        assert_eq!(sink.objects[0].1, msg);
        assert_eq!(m.mail_from.as_deref(), Some("h@x"));
        assert!(rec.has_flag("smtp_starttls"));
    }

    /// swaks → python aiosmtpd on loopback, with an attachment; expected values from
    /// tshark (`smtp.req.parameter`, `imf.from`, `imf.subject`) and from the file swaks
    /// attached (its SHA-256 computed by sha256sum).
    #[test]
    fn real_swaks_session() {
        let t = corpus("smtp", "swaks-aiosmtpd.bin");
        let (rec, sink) = run_all_cuts(smtp, "smtp", &view(&t));
        let m = rec.mail.unwrap();
        let expected = include_str!("../../fuzz/corpus/smtp/expected.txt");
        let mut l = expected.lines();
        assert_eq!(m.from.as_deref(), l.next());
        assert_eq!(m.subject.as_deref(), l.next());
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].sha256.as_deref(), l.next());
        assert_eq!(m.attachments[0].name, l.next().unwrap());
        assert!(sink.objects.iter().any(|o| o.0.kind == "mail"));
    }

    #[test]
    fn commands_replies_and_auth_outcome_without_secrets() {
        let up: &[u8] = b"EHLO pc\r\nAUTH PLAIN AGhhbmFrbwB3cm9uZw==\r\nAUTH LOGIN\r\naGFuYWtv\r\nc2VjcmV0\r\nMAIL FROM:<hanako@corp.example>\r\nRCPT TO:<a@b.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n";
        let down: &[u8] = b"220 mx\r\n250-mx\r\n250 AUTH PLAIN LOGIN\r\n535 5.7.8 bad\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n";
        let (rec, _) = run_all_cuts(smtp, "smtp", &[(Up, up), (Down, down)]);
        let m = rec.mail.unwrap();
        let got: Vec<(String, Option<String>, Option<u16>)> = m
            .commands
            .iter()
            .map(|c| (c.verb.clone(), c.arg.clone(), c.reply))
            .collect();
        let want = [
            ("EHLO", Some("pc"), Some(250)),
            ("AUTH", Some("PLAIN"), Some(535)),
            ("AUTH", Some("LOGIN"), Some(235)),
            ("MAIL", Some("FROM:<hanako@corp.example>"), Some(250)),
            ("RCPT", Some("TO:<a@b.example>"), Some(250)),
            ("DATA", None, Some(250)),
            ("QUIT", None, Some(221)),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(v, a, r)| (v.to_string(), a.map(str::to_string), *r))
            .collect();
        assert_eq!(got, want);
        let auth = m.auth.unwrap();
        assert_eq!(auth.mechanism, "LOGIN");
        assert_eq!(auth.success, Some(true));
        assert_eq!(auth.failed_attempts, 1);
        let kept = format!("{:?}", m.commands);
        assert!(!kept.contains("c2VjcmV0") && !kept.contains("AGhhbmFrbwB3cm9uZw"));
    }
}
