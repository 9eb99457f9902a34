//! Per-session Telnet state: stripped text of both sides and the login exchange.

use super::parser::{IacStripper, edit_line, is_login_prompt};
use crate::util::text;
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::{SessionRecord, Telnet};

/// Server output kept to recognise a prompt (prompts are short).
pub const PROMPT_TAIL: usize = 256;
/// Longest typed line kept.
pub const MAX_TYPED_LINE: usize = 256;
/// After this many client bytes without a login prompt answered, stop looking (a session
/// already logged in, or not a login at all).
pub const MAX_LOGIN_SCAN: u64 = 64 * 1024;

/// Telnet stream parser.
#[derive(Debug, Default)]
pub struct TelnetParser {
    strip: [IacStripper; 2],
    server_tail: Vec<u8>,
    typed: Vec<u8>,
    /// The line being typed answers a login prompt.
    answering_login: bool,
    client_bytes: u64,
    done: bool,
}

impl TelnetParser {
    pub fn new() -> TelnetParser {
        TelnetParser::default()
    }

    fn client_text(&mut self, text_in: &[u8], rec: &mut SessionRecord) {
        for &b in text_in {
            if b == b'\r' || b == b'\n' {
                if self.answering_login {
                    let user = edit_line(&self.typed);
                    if !user.is_empty() {
                        let u = text(rec, &user);
                        rec.telnet.get_or_insert_with(Telnet::default).user = Some(u);
                        self.done = true;
                        return;
                    }
                }
                self.typed.clear();
                self.answering_login = false;
                continue;
            }
            if self.typed.is_empty() && !self.answering_login {
                // First key of a new line: is it the answer to a login prompt?
                self.answering_login = is_login_prompt(&self.server_tail);
            }
            if self.typed.len() < MAX_TYPED_LINE {
                self.typed.push(b);
            }
        }
    }
}

impl StreamParser for TelnetParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        if self.done {
            return;
        }
        let mut plain = Vec::with_capacity(data.len());
        self.strip[dir.index()].strip(data, &mut plain);
        match dir {
            Direction::ToClient => {
                // Echo of typed characters lands here too; the prompt test happens at the
                // first typed key, before any echo.
                self.server_tail.extend_from_slice(&plain);
                if self.server_tail.len() > PROMPT_TAIL {
                    let cut = self.server_tail.len() - PROMPT_TAIL;
                    self.server_tail.drain(..cut);
                }
            }
            Direction::ToServer => {
                self.client_bytes += data.len() as u64;
                self.client_text(&plain, rec);
                if self.client_bytes > MAX_LOGIN_SCAN {
                    self.done = true;
                }
            }
        }
        if rec.telnet.is_none() {
            rec.telnet = Some(Telnet::default());
        }
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        self.typed.clear();
        self.answering_login = false;
        self.server_tail.clear();
    }

    fn on_close(&mut self, _rec: &mut SessionRecord, _sink: &mut dyn Sink) {
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::run_all_cuts;

    fn telnet() -> Box<dyn StreamParser> {
        Box::new(TelnetParser::new())
    }

    /// Character-at-a-time client (as `telnet` sends after negotiating ECHO), server echo.
    #[test]
    fn user_from_login_prompt_in_character_mode() {
        let mut t: Vec<(Direction, Vec<u8>)> = vec![
            (
                Down,
                vec![0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20, 0xff, 0xfb, 0x01],
            ),
            (
                Up,
                vec![0xff, 0xfc, 0x18, 0xff, 0xfc, 0x20, 0xff, 0xfd, 0x01],
            ),
            (Down, b"\r\nDebian GNU/Linux 12\r\nkuroko login: ".to_vec()),
        ];
        for c in b"admim\x7fn" {
            t.push((Up, vec![*c]));
            t.push((
                Down,
                if *c == 0x7f {
                    b"\x08 \x08".to_vec()
                } else {
                    vec![*c]
                },
            ));
        }
        t.push((Up, b"\r\0".to_vec()));
        t.push((Down, b"\r\nPassword: ".to_vec()));
        t.push((Up, b"hunter2\r\0".to_vec()));
        let v: Vec<(Direction, &[u8])> = t.iter().map(|(d, b)| (*d, b.as_slice())).collect();
        let (rec, _) = run_all_cuts(telnet, "telnet", &v);
        assert_eq!(rec.telnet.unwrap().user.as_deref(), Some("admin"));
    }

    /// A Python client (character mode, as the `telnet` program) logging in to busybox
    /// telnetd + /bin/login on loopback; the expected user is the keystrokes tshark shows
    /// (`telnet.data` client → server) after the `login:` prompt.
    #[test]
    fn real_busybox_telnetd_login() {
        let t = crate::testutil::corpus("telnet", "busybox-telnetd-login.bin");
        let (rec, _) = run_all_cuts(telnet, "telnet", &crate::testutil::view(&t));
        let expected = include_str!("../../fuzz/corpus/telnet/expected-user.txt").trim();
        assert_eq!(rec.telnet.unwrap().user.as_deref(), Some(expected));
    }

    #[test]
    fn line_mode_cisco_style() {
        let (rec, _) = run_all_cuts(
            telnet,
            "telnet",
            &[
                (Down, b"\r\nUser Access Verification\r\n\r\nUsername: "),
                (Up, b"netops\r\n"),
                (Down, b"Password: "),
                (Up, b"x\r\n"),
            ],
        );
        assert_eq!(rec.telnet.unwrap().user.as_deref(), Some("netops"));
    }

    #[test]
    fn no_prompt_no_user() {
        let (rec, _) = run_all_cuts(
            telnet,
            "telnet",
            &[(Down, b"Welcome\r\n$ "), (Up, b"ls\r\n")],
        );
        assert_eq!(rec.telnet.unwrap().user, None);
    }
}
