//! POP3 (RFC 1939): USER/APOP user, messages from RETR (and TOP, partial) multi-line
//! responses. Responses are paired with commands in order (pipelining, RFC 2449). An STLS
//! the server accepts hands the stream to TLS (`crate::upgrade`).

use super::dotdata::DotReader;
use super::message::{
    Envelope, auth_result, auth_started, command_status, process_message, push_command, set_user,
};
use crate::upgrade::{MAX_HELD_BEFORE_ANSWER, Upgrade};
use crate::util::{LineBuf, base64_decode, take_line, text};
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::SessionRecord;
use std::collections::VecDeque;

/// Longest command or status line kept (RFC 2449: 255 octets; be lenient).
pub const MAX_LINE: usize = 4096;
/// Commands waiting for a response; more is not a mail client.
pub const MAX_PENDING: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    /// Single-line response.
    Single,
    /// Multi-line response that is not a message (LIST, UIDL, CAPA).
    Multi,
    Retr,
    Top,
    Stls,
    /// PASS, APOP or AUTH: its answer is the login outcome (`mail.auth`).
    Login,
}

#[derive(Debug)]
enum Down {
    Status,
    Body {
        reader: DotReader,
        message: Option<bool>,
    },
}

/// POP3 stream parser.
#[derive(Debug)]
pub struct Pop3Parser {
    up: LineBuf,
    /// Commands waiting for their status line, with their index in `mail.commands`.
    pending: VecDeque<(Cmd, Option<usize>)>,
    /// An AUTH with a mechanism waits for its answer: client lines are its SASL
    /// exchange (credentials), not commands.
    in_auth: bool,
    /// The server's first status line (the greeting) was seen.
    greeted: bool,
    down: Down,
    acc: Vec<u8>,
    overlong: bool,
    /// STLS sent: client bytes held until its answer (TLS if +OK).
    stls_held: Option<Vec<u8>>,
    upgrade: Option<Upgrade>,
    /// Upgraded to TLS: nothing more for this parser.
    stopped: bool,
    /// SASL response lines the client still sends after `AUTH` (RFC 5034), and how the
    /// next one carries the user name.
    sasl_lines: u8,
    sasl_user: Option<Sasl>,
    /// Mechanism of the login command waiting for its answer (`USER`, `APOP`, `PLAIN`…).
    login_mech: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sasl {
    Plain,
    Login,
    Cram,
}

impl Default for Pop3Parser {
    fn default() -> Self {
        Pop3Parser {
            up: LineBuf::default(),
            pending: VecDeque::new(),
            in_auth: false,
            greeted: false,
            down: Down::Status,
            acc: Vec::new(),
            overlong: false,
            stls_held: None,
            upgrade: None,
            stopped: false,
            sasl_lines: 0,
            sasl_user: None,
            login_mech: String::new(),
        }
    }
}

/// The user name in a SASL response line.
fn sasl_user(mech: Sasl, b64: &[u8]) -> Option<Vec<u8>> {
    let d = base64_decode(b64)?;
    Some(match mech {
        Sasl::Plain => d.split(|&b| b == 0).nth(1)?.to_vec(),
        Sasl::Login => d,
        Sasl::Cram => d.split(|&b| b == b' ').next()?.to_vec(),
    })
}

impl Pop3Parser {
    pub fn new() -> Pop3Parser {
        Pop3Parser::default()
    }

    fn on_command(&mut self, line: &[u8], rec: &mut SessionRecord) {
        if self.sasl_lines == 0 && self.in_auth {
            return; // a SASL response of a mechanism we do not read (XOAUTH2, GSSAPI …)
        }
        if self.sasl_lines > 0 {
            // A SASL response, not a command: it gets no reply of its own.
            self.sasl_lines -= 1;
            if line == b"*" {
                self.sasl_lines = 0;
            } else if let Some(mech) = self.sasl_user.take()
                && let Some(u) = sasl_user(mech, line)
            {
                set_user(rec, &u);
            }
            return;
        }
        let mut it = line.split(|&b| b == b' ').filter(|x| !x.is_empty());
        let verb = it.next().unwrap_or(&[]).to_ascii_uppercase();
        let has_arg = it.clone().next().is_some();
        // What `mail.commands` keeps of the arguments: never a password, a digest or a
        // SASL initial response.
        let rest = line.get(verb.len()..).unwrap_or(&[]);
        let shown: &[u8] = match verb.as_slice() {
            b"PASS" => &[],
            b"APOP" | b"AUTH" => it.clone().next().unwrap_or(&[]),
            _ => rest,
        };
        let idx = (!verb.is_empty())
            .then(|| push_command(rec, &verb, shown))
            .flatten();
        let cmd = match verb.as_slice() {
            b"USER" => {
                if let Some(u) = it.next() {
                    set_user(rec, u);
                }
                auth_started(rec, b"USER");
                self.login_mech = "USER".into();
                Cmd::Single
            }
            b"APOP" => {
                if let Some(u) = it.next() {
                    set_user(rec, u);
                }
                auth_started(rec, b"APOP");
                self.login_mech = "APOP".into();
                Cmd::Login
            }
            b"PASS" => Cmd::Login,
            b"RETR" => Cmd::Retr,
            b"TOP" => Cmd::Top,
            b"LIST" | b"UIDL" if !has_arg => Cmd::Multi,
            b"CAPA" => Cmd::Multi,
            b"STLS" => {
                self.stls_held = Some(Vec::new());
                Cmd::Stls
            }
            b"AUTH" => {
                let mech = it.next().unwrap_or(&[]).to_ascii_uppercase();
                let ir = it.next().filter(|x| *x != b"=");
                if !mech.is_empty() {
                    self.in_auth = true;
                    auth_started(rec, &mech);
                    self.login_mech = String::from_utf8_lossy(&mech).into_owned();
                }
                let (m, lines) = match mech.as_slice() {
                    b"PLAIN" => (Some(Sasl::Plain), 1),
                    b"LOGIN" => (Some(Sasl::Login), 2),
                    b"CRAM-MD5" => (Some(Sasl::Cram), 1),
                    _ => (None, 0),
                };
                match (m, ir) {
                    (Some(m), Some(ir)) => {
                        if let Some(u) = sasl_user(m, ir) {
                            set_user(rec, &u);
                        }
                        self.sasl_lines = lines - 1;
                    }
                    (Some(m), None) => {
                        self.sasl_user = Some(m);
                        self.sasl_lines = lines;
                    }
                    (None, _) => {}
                }
                if mech.is_empty() {
                    Cmd::Single
                } else {
                    Cmd::Login
                }
            }
            _ => Cmd::Single,
        };
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            rec.flag("pop3_pending_overflow");
        }
        self.pending.push_back((cmd, idx));
    }

    fn on_up(&mut self, mut data: &[u8], rec: &mut SessionRecord) {
        while !data.is_empty() {
            if let Some(held) = &mut self.stls_held {
                if held.len() + data.len() <= MAX_HELD_BEFORE_ANSWER {
                    held.extend_from_slice(data);
                    return;
                }
                // No answer to STLS: parse on as POP3.
                rec.flag("upgrade_answer_lost");
                let held = self.stls_held.take().unwrap_or_default();
                self.on_up(&held, rec);
                continue;
            }
            // Line by line, so that the bytes after an STLS line are held, not parsed.
            let cut = data
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |p| p + 1);
            let mut lines = Vec::new();
            self.up
                .feed(&data[..cut], MAX_LINE, |l| lines.push(l.bytes));
            data = &data[cut..];
            for l in lines {
                self.on_command(&l, rec);
            }
        }
    }

    fn on_down(&mut self, mut input: &[u8], rec: &mut SessionRecord, sink: &mut dyn Sink) {
        while !input.is_empty() && !self.stopped {
            match &mut self.down {
                Down::Status => {
                    let (n, line) = take_line(&mut self.acc, input, MAX_LINE, &mut self.overlong);
                    input = &input[n..];
                    let Some(line) = line else { continue };
                    self.overlong = false;
                    let ok = line.starts_with(b"+OK");
                    if !ok && !line.starts_with(b"-ERR") {
                        continue; // greeting continuation or SASL "+ " challenge
                    }
                    if line.starts_with(b"-ERR")
                        && matches!(self.pending.front(), Some((Cmd::Single | Cmd::Login, _)))
                    {
                        // (A refused AUTH has no further SASL lines.)
                        self.sasl_lines = 0;
                    }
                    // The server's first status line is its greeting: it names the
                    // server software.
                    if !std::mem::replace(&mut self.greeted, true)
                        && ok
                        && rec.mail.as_ref().is_none_or(|m| m.banner.is_none())
                    {
                        let banner = text(rec, &line);
                        rec.mail.get_or_insert_with(Default::default).banner = Some(banner);
                    }
                    let Some((cmd, idx)) = self.pending.pop_front() else {
                        continue;
                    }; // greeting
                    command_status(rec, idx, if ok { "OK" } else { "ERR" });
                    if cmd == Cmd::Login {
                        self.in_auth = false;
                        let mech = std::mem::take(&mut self.login_mech);
                        auth_result(rec, &mech, ok);
                    }
                    if !ok {
                        if cmd == Cmd::Stls
                            && let Some(held) = self.stls_held.take()
                        {
                            rec.flag("pop3_stls_refused");
                            self.on_up(&held, rec);
                        }
                        continue;
                    }
                    match cmd {
                        Cmd::Retr => {
                            self.down = Down::Body {
                                reader: DotReader::default(),
                                message: Some(false),
                            }
                        }
                        Cmd::Top => {
                            self.down = Down::Body {
                                reader: DotReader::default(),
                                message: Some(true),
                            }
                        }
                        Cmd::Multi => {
                            self.down = Down::Body {
                                reader: DotReader::default(),
                                message: None,
                            }
                        }
                        Cmd::Stls => {
                            rec.flag("pop3_stls");
                            self.stopped = true;
                            let up = self.stls_held.take().unwrap_or_default();
                            self.upgrade = Some(Upgrade::starttls([up, input.to_vec()]));
                        }
                        Cmd::Single | Cmd::Login => {}
                    }
                }
                Down::Body { reader, message } => match reader.feed(input) {
                    Some(n) => {
                        input = &input[n..];
                        let Down::Body { reader, message } =
                            std::mem::replace(&mut self.down, Down::Status)
                        else {
                            unreachable!("matched Body above")
                        };
                        if let Some(top) = message {
                            process_message(
                                &reader.data,
                                &Envelope::default(),
                                Direction::ToClient,
                                top || reader.partial,
                                rec,
                                sink,
                            );
                        }
                    }
                    None => {
                        if message.is_none() {
                            // Listings are not kept.
                            reader.data.clear();
                        }
                        input = &[];
                    }
                },
            }
        }
    }
}

impl StreamParser for Pop3Parser {
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
        match dir {
            Direction::ToServer => self.on_up(data, rec),
            Direction::ToClient => self.on_down(data, rec, sink),
        }
    }

    fn take_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, rec: &mut SessionRecord) {
        match dir {
            Direction::ToServer => self.up.clear(),
            Direction::ToClient => match &mut self.down {
                Down::Body { reader, .. } => reader.partial = true,
                Down::Status => {
                    self.acc.clear();
                    rec.flag("pop3_gap");
                }
            },
        }
    }

    fn on_close(&mut self, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        if let Down::Body {
            reader,
            message: Some(_),
        } = std::mem::replace(&mut self.down, Down::Status)
            && !reader.data.is_empty()
        {
            process_message(
                &reader.data,
                &Envelope::default(),
                Direction::ToClient,
                true,
                rec,
                sink,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::{corpus, mail_commands as commands, run_all_cuts, view};

    /// curl 7.88 (AUTH PLAIN, RETR) → dovecot 2.3 on loopback. The stored .eml must be
    /// byte-identical to the maildir file dovecot served (dot-unstuffed), the attachment
    /// to the file put in it (SHA-256s by sha256sum); header values as written into it.
    #[test]
    fn real_curl_dovecot_retr() {
        let t = corpus("pop3", "curl-dovecot.bin");
        let (rec, _) = run_all_cuts(|| Box::new(Pop3Parser::new()), "pop3", &view(&t));
        let m = rec.mail.unwrap();
        assert_eq!(m.user.as_deref(), Some("hanako"));
        let auth = m.auth.as_ref().expect("auth");
        assert_eq!(
            (auth.mechanism.as_str(), auth.success),
            ("PLAIN", Some(true))
        );
        assert_eq!(
            m.eml_sha256.as_deref(),
            Some(include_str!("../../fuzz/corpus/pop3/eml.sha256").trim())
        );
        assert_eq!(m.subject.as_deref(), Some("【至急】請求書の確認"));
        assert_eq!(m.from_display.as_deref(), Some("経理部 山田"));
        assert_eq!(m.attachments[0].name, "請求書.zip");
        assert_eq!(
            m.attachments[0].sha256.as_deref(),
            Some(include_str!("../../fuzz/corpus/pop3/attach.sha256").trim())
        );
    }

    #[test]
    fn retr_after_list_and_user() {
        let up: &[u8] = b"CAPA\r\nUSER hanako\r\nPASS secret\r\nLIST\r\nRETR 1\r\nQUIT\r\n";
        let down: &[u8] = b"+OK Dovecot ready.\r\n+OK\r\nUSER\r\nUIDL\r\n.\r\n+OK\r\n+OK Logged in.\r\n+OK 1 messages:\r\n1 120\r\n.\r\n+OK 120 octets\r\nFrom: a@example.jp\r\nSubject: pop test\r\n\r\n..dot line\r\n.\r\n+OK Logging out.\r\n";
        let (rec, sink) = run_all_cuts(
            || Box::new(Pop3Parser::new()),
            "pop3",
            &[(Up, up), (Down, down)],
        );
        let m = rec.mail.unwrap();
        assert_eq!(m.user.as_deref(), Some("hanako"));
        assert_eq!(m.banner.as_deref(), Some("+OK Dovecot ready."));
        assert_eq!(m.subject.as_deref(), Some("pop test"));
        assert_eq!(m.from.as_deref(), Some("a@example.jp"));
        assert_eq!(
            sink.objects[0].1,
            b"From: a@example.jp\r\nSubject: pop test\r\n\r\n.dot line\r\n"
        );
        assert_eq!(sink.objects[0].0.direction, Some(Down));
    }

    #[test]
    fn login_outcome_is_recorded_and_password_never_kept() {
        let steps: Vec<(crate::Direction, &[u8])> = vec![
            (Down, b"+OK ready\r\n"),
            (Up, b"USER hanako\r\n"),
            (Down, b"+OK\r\n"),
            (Up, b"PASS wrong-pw\r\n"),
            (Down, b"-ERR [AUTH] bad\r\n"),
            (Up, b"USER hanako\r\nPASS right-pw\r\n"),
            (Down, b"+OK\r\n+OK logged in\r\n"),
        ];
        let (rec, _) = run_all_cuts(|| Box::new(Pop3Parser::new()), "pop3", &steps);
        let m = rec.mail.unwrap();
        let a = m.auth.clone().unwrap();
        assert_eq!(a.mechanism, "USER");
        assert_eq!(a.success, Some(true));
        assert_eq!(a.failed_attempts, 1);
        assert!(!format!("{m:?}").contains("-pw"));
    }

    /// `mail.commands` like SMTP's: verbs with their non-secret arguments and the answer.
    /// The SASL exchange of an AUTH (here XOAUTH2, whose response line is a bearer token)
    /// is not a command, the PASS argument is never kept.
    #[test]
    fn commands_with_status_and_no_secrets() {
        let steps: Vec<(crate::Direction, &[u8])> = vec![
            (Down, b"+OK Dovecot ready.\r\n"),
            (Up, b"CAPA\r\n"),
            (Down, b"+OK\r\nUSER\r\nSASL PLAIN XOAUTH2\r\n.\r\n"),
            (Up, b"AUTH XOAUTH2\r\n"),
            (Down, b"+ \r\n"),
            (Up, b"dXNlcj1oYW5ha28BYXV0aD1CZWFyZXIgc2VjcmV0LXRva2VuAQE=\r\n"),
            (Down, b"-ERR [AUTH] Authentication failed.\r\n"),
            (Up, b"USER hanako\r\nPASS right-pw\r\n"),
            (Down, b"+OK\r\n+OK Logged in.\r\n"),
            (Up, b"STAT\r\nLIST\r\nRETR 1\r\n"),
            (
                Down,
                b"+OK 1 20\r\n+OK 1 messages:\r\n1 20\r\n.\r\n+OK 20 octets\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
            ),
            (Up, b"DELE 9\r\nQUIT\r\n"),
            (Down, b"-ERR No such message\r\n+OK Logging out.\r\n"),
        ];
        let (rec, _) = run_all_cuts(|| Box::new(Pop3Parser::new()), "pop3", &steps);
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            commands(&rec),
            vec![
                ("CAPA".into(), None, s("OK")),
                ("AUTH".into(), s("XOAUTH2"), s("ERR")),
                ("USER".into(), s("hanako"), s("OK")),
                ("PASS".into(), None, s("OK")),
                ("STAT".into(), None, s("OK")),
                ("LIST".into(), None, s("OK")),
                ("RETR".into(), s("1"), s("OK")),
                ("DELE".into(), s("9"), s("ERR")),
                ("QUIT".into(), None, s("OK")),
            ]
        );
        let m = rec.mail.as_ref().unwrap();
        let a = m.auth.clone().unwrap();
        assert_eq!(
            (a.mechanism.as_str(), a.success, a.failed_attempts),
            ("USER", Some(true), 1)
        );
        assert_eq!(m.subject.as_deref(), Some("x"));
        let all = format!("{m:?}");
        assert!(
            !all.contains("right-pw") && !all.contains("dXNlcj1o"),
            "{all}"
        );
    }
}
