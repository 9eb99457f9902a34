//! SMTP (RFC 5321): envelope, AUTH user, messages from DATA (dot-unstuffed) and BDAT
//! (RFC 3030). STARTTLS ends what can be seen.

use super::dotdata::DotReader;
use super::message::{Envelope, process_message, set_user};
use crate::util::{LineBuf, base64_decode, starts_with_ci, take_line};
use crate::{Direction, MAX_OBJECT_BYTES, Sink, StreamParser};
use kuroko_model::session::SessionRecord;

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
                self.stopped = true;
            }
            b"AUTH" => {
                let mut it = arg.split(|&b| b == b' ').filter(|x| !x.is_empty());
                let mech = it.next().unwrap_or(&[]).to_ascii_uppercase();
                let ir = it.next().filter(|x| *x != b"=");
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

impl StreamParser for SmtpParser {
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
        match dir {
            Direction::ToServer => self.on_up(data, rec, sink),
            Direction::ToClient => {
                let mut failed = false;
                self.down.feed(data, MAX_REPLY_LINE, |l| {
                    failed |= starts_with_ci(&l.bytes, b"535")
                });
                if failed {
                    rec.flag("smtp_auth_failed");
                }
            }
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
}
