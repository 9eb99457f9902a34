//! Pure Telnet pieces: an incremental IAC stripper (RFC 854/855) and the prompt test.

const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum St {
    #[default]
    Data,
    Iac,
    /// After WILL/WONT/DO/DONT: one option byte follows.
    Opt,
    /// Inside a subnegotiation, until IAC SE.
    Sb,
    SbIac,
}

/// Removes Telnet commands from a byte stream, keeping state across calls.
#[derive(Debug, Default)]
pub struct IacStripper {
    st: St,
    /// Commands seen (for the record of whether this was really Telnet).
    pub commands: u64,
}

impl IacStripper {
    /// Appends the data bytes of `input` to `out`.
    pub fn strip(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.st = match (self.st, b) {
                (St::Data, IAC) => St::Iac,
                (St::Data, _) => {
                    out.push(b);
                    St::Data
                }
                (St::Iac, IAC) => {
                    out.push(IAC);
                    St::Data
                }
                (St::Iac, 251..=254) => {
                    self.commands += 1;
                    St::Opt
                }
                (St::Iac, SB) => {
                    self.commands += 1;
                    St::Sb
                }
                (St::Iac, _) => {
                    self.commands += 1;
                    St::Data
                }
                (St::Opt, _) => St::Data,
                (St::Sb, IAC) => St::SbIac,
                (St::Sb, _) => St::Sb,
                (St::SbIac, SE) => St::Data,
                (St::SbIac, _) => St::Sb,
            };
        }
    }
}

/// Whether server text (most recent output) ends with a user-name prompt.
pub fn is_login_prompt(tail: &[u8]) -> bool {
    let s = String::from_utf8_lossy(tail).to_ascii_lowercase();
    let s = s.trim_end();
    ["login:", "username:", "user name:", "user:", "login as:"]
        .iter()
        .any(|p| s.ends_with(p))
}

/// Applies backspace / DEL editing to a typed line.
pub fn edit_line(typed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(typed.len());
    for &b in typed {
        match b {
            0x08 | 0x7f => {
                out.pop();
            }
            0 => {}
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_negotiation_and_subnegotiation() {
        let input = [
            b'a', IAC, 253, 24, IAC, SB, 24, 1, IAC, SE, b'b', IAC, IAC, b'c', IAC, 241,
        ];
        for cut in [1, 2, input.len()] {
            let mut s = IacStripper::default();
            let mut out = Vec::new();
            for c in input.chunks(cut) {
                s.strip(c, &mut out);
            }
            assert_eq!(out, vec![b'a', b'b', IAC, b'c']);
            assert_eq!(s.commands, 3);
        }
    }

    #[test]
    fn prompts_and_editing() {
        assert!(is_login_prompt(b"\r\nDebian GNU/Linux 12\r\nhost login: "));
        assert!(is_login_prompt(b"User Name:"));
        assert!(!is_login_prompt(b"Password: "));
        assert_eq!(edit_line(b"rooo\x7ft\x08t"), b"root");
    }
}
