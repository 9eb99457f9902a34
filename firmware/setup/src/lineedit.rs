//! A line editor for a plain serial line.
//!
//! Serial terminals (and the technician's `screen`/`minicom`/PuTTY) send DEL or BS for
//! backspace, CR for Enter, and arrow keys as escape sequences. On a terminal this editor
//! takes the line out of canonical mode and does the editing itself, so backspace, Ctrl-U
//! and Tab completion work the same everywhere; it draws with nothing but printable
//! characters, BS and CR LF (no cursor addressing, no colors). When the input is not a
//! terminal (a script, a test) it reads plain lines and echoes nothing.

use std::io::{self, Read, Write};

/// Longest line accepted; a stuck key or line noise cannot grow it without bound.
pub const MAX_LINE: usize = 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// Ctrl-C: the line was abandoned.
    Interrupted,
    /// Ctrl-D on an empty line, or end of input.
    Eof,
    /// Nothing typed for the idle limit ([`LineEditor::with_idle_logout`]): log out.
    Idle,
}

/// One idle tick on a raw terminal: a read returns empty after this long without a key
/// (termios VTIME, in tenths of a second; at most 255).
pub const IDLE_TICK_DECISECONDS: u8 = 100;

/// Puts a terminal into a mode where we see every key, and restores it on drop.
pub struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// `None` when stdin is not a terminal.
    pub fn stdin() -> Option<RawMode> {
        use nix::sys::termios::{self, InputFlags, LocalFlags, SetArg, SpecialCharacterIndices};
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut t = saved.clone();
        t.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::IEXTEN);
        t.input_flags.remove(InputFlags::ICRNL | InputFlags::IXON);
        // A read waits at most one idle tick for a key, then returns empty: the editor
        // counts those ticks for the idle logout.
        t.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
        t.control_chars[SpecialCharacterIndices::VTIME as usize] = IDLE_TICK_DECISECONDS;
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &t).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

pub struct LineEditor<R: Read, W: Write> {
    input: R,
    out: W,
    /// We do the editing and echo (a terminal in raw mode).
    interactive: bool,
    /// Interactive only: empty reads (idle ticks) in a row that end the session.
    idle_limit: Option<u32>,
    idled: bool,
}

impl<R: Read, W: Write> LineEditor<R, W> {
    pub fn new(input: R, out: W, interactive: bool) -> Self {
        LineEditor {
            input,
            out,
            interactive,
            idle_limit: None,
            idled: false,
        }
    }

    /// On a raw terminal (where an empty read is one idle tick, [`RawMode`]): after `ticks`
    /// empty reads in a row, `read_line` returns [`Input::Idle`].
    pub fn with_idle_logout(mut self, ticks: u32) -> Self {
        self.idle_limit = Some(ticks.max(1));
        self
    }

    pub fn out(&mut self) -> &mut W {
        &mut self.out
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        let mut idle = 0u32;
        loop {
            match self.input.read(&mut b) {
                Ok(0) => match self.idle_limit.filter(|_| self.interactive) {
                    Some(limit) => {
                        idle += 1;
                        if idle >= limit {
                            self.idled = true;
                            return Ok(None);
                        }
                    }
                    None => return Ok(None),
                },
                Ok(_) => return Ok(Some(b[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one line after `prompt`. `echo` false hides what is typed (passwords).
    /// `complete` returns the candidates for the text typed so far.
    pub fn read_line(
        &mut self,
        prompt: &str,
        echo: bool,
        complete: &dyn Fn(&str) -> Vec<String>,
    ) -> io::Result<Input> {
        write!(self.out, "{prompt}")?;
        self.out.flush()?;
        let mut buf: Vec<u8> = Vec::new();
        if !self.interactive {
            loop {
                match self.byte()? {
                    None if buf.is_empty() => return Ok(Input::Eof),
                    None | Some(b'\n') => break,
                    Some(b'\r') => {}
                    Some(b) if buf.len() < MAX_LINE => buf.push(b),
                    Some(_) => {}
                }
            }
            writeln!(self.out)?;
            return Ok(Input::Line(String::from_utf8_lossy(&buf).into_owned()));
        }
        loop {
            let Some(b) = self.byte()? else {
                if std::mem::take(&mut self.idled) {
                    write!(self.out, "\r\n")?;
                    return Ok(Input::Idle);
                }
                return Ok(if buf.is_empty() {
                    Input::Eof
                } else {
                    Input::Line(lossy(&buf))
                });
            };
            match b {
                b'\r' | b'\n' => {
                    write!(self.out, "\r\n")?;
                    return Ok(Input::Line(lossy(&buf)));
                }
                0x7f | 0x08 => {
                    let erased = pop_char(&mut buf);
                    if erased && echo {
                        write!(self.out, "\x08 \x08")?;
                    }
                }
                0x15 => {
                    // Ctrl-U: erase the whole line.
                    while pop_char(&mut buf) {
                        if echo {
                            write!(self.out, "\x08 \x08")?;
                        }
                    }
                }
                0x03 => {
                    write!(self.out, "^C\r\n")?;
                    return Ok(Input::Interrupted);
                }
                0x04 if buf.is_empty() => {
                    write!(self.out, "\r\n")?;
                    return Ok(Input::Eof);
                }
                b'\t' if echo => {
                    let typed = lossy(&buf);
                    let cands = complete(&typed);
                    let common = common_prefix(&cands);
                    if cands.len() == 1 {
                        let full = format!("{} ", cands[0]);
                        if let Some(rest) = full.strip_prefix(typed.as_str()) {
                            write!(self.out, "{rest}")?;
                            buf.extend_from_slice(rest.as_bytes());
                        }
                    } else if common.len() > typed.len() && common.starts_with(typed.as_str()) {
                        let rest = &common[typed.len()..];
                        write!(self.out, "{rest}")?;
                        buf.extend_from_slice(rest.as_bytes());
                    } else if cands.len() > 1 {
                        write!(self.out, "\r\n{}\r\n{prompt}{typed}", cands.join("  "))?;
                    } else {
                        write!(self.out, "\x07")?;
                    }
                }
                0x1b => {
                    // Escape sequences (arrow keys): read and ignore `[` + final byte.
                    if let Some(b'[' | b'O') = self.byte()? {
                        while let Some(c) = self.byte()? {
                            if (0x40..=0x7e).contains(&c) {
                                break;
                            }
                        }
                    }
                }
                b if b >= 0x20 && buf.len() < MAX_LINE => {
                    buf.push(b);
                    if echo {
                        self.out.write_all(&[b])?;
                    }
                }
                _ => {}
            }
            self.out.flush()?;
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Removes the last UTF-8 character; false when the buffer was empty.
fn pop_char(buf: &mut Vec<u8>) -> bool {
    if buf.is_empty() {
        return false;
    }
    while let Some(b) = buf.pop() {
        if b & 0xC0 != 0x80 {
            break;
        }
    }
    true
}

fn common_prefix(c: &[String]) -> String {
    let Some(first) = c.first() else {
        return String::new();
    };
    let mut end = first.len();
    for s in &c[1..] {
        end = end.min(
            first
                .bytes()
                .zip(s.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(end) {
        end -= 1;
    }
    first[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal in raw mode: `None` is one idle tick (an empty read), then the keys.
    struct Ticking(Vec<Option<u8>>);
    impl Read for Ticking {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            match self.0.remove(0) {
                Some(k) => {
                    b[0] = k;
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    }

    #[test]
    fn an_idle_terminal_logs_out_and_a_key_resets_the_count() {
        let mut keys = vec![None, None, Some(b's')];
        keys.extend([None, None, Some(b't'), Some(b'\r')]);
        let mut out = Vec::new();
        let mut ed = LineEditor::new(Ticking(keys), &mut out, true).with_idle_logout(3);
        assert_eq!(
            ed.read_line("> ", true, &|_| Vec::new()).unwrap(),
            Input::Line("st".into())
        );
        let mut out = Vec::new();
        let mut ed = LineEditor::new(Ticking(vec![Some(b'x'), None, None, None]), &mut out, true)
            .with_idle_logout(3);
        assert_eq!(
            ed.read_line("> ", true, &|_| Vec::new()).unwrap(),
            Input::Idle
        );
    }

    fn run(keys: &[u8], echo: bool) -> (Input, String) {
        let mut out = Vec::new();
        let cands = ["status", "set", "selftest", "show"];
        let complete = |t: &str| {
            cands
                .iter()
                .filter(|c| c.starts_with(t))
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
        };
        let mut ed = LineEditor::new(keys, &mut out, true);
        let r = ed.read_line("> ", echo, &complete).unwrap();
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn backspace_ctrl_u_and_escape_sequences() {
        let (r, out) = run(b"stax\x7f\x08atus\r", true);
        assert_eq!(r, Input::Line("status".into()));
        assert_eq!(out, "> stax\x08 \x08\x08 \x08atus\r\n");
        let (r, _) = run(b"garbage\x15help\x1b[A\r", true);
        assert_eq!(r, Input::Line("help".into()));
        let (r, _) = run("あい\x7f\r".as_bytes(), true);
        assert_eq!(r, Input::Line("あ".into()));
        assert_eq!(run(b"xx\x03", true).0, Input::Interrupted);
        assert_eq!(run(b"\x04", true).0, Input::Eof);
    }

    #[test]
    fn tab_completes_unique_and_common_prefixes_and_lists_the_rest() {
        let (r, out) = run(b"st\t\r", true);
        assert_eq!(r, Input::Line("status ".into()));
        assert!(out.starts_with("> statu"));
        let (r, out) = run(b"se\t\r", true);
        assert_eq!(r, Input::Line("se".into()));
        assert!(out.contains("set  selftest"), "{out:?}");
        let (r, _) = run(b"sel\t\r", true);
        assert_eq!(r, Input::Line("selftest ".into()));
    }

    #[test]
    fn passwords_are_not_echoed() {
        let (r, out) = run(b"s3cret!!\r", false);
        assert_eq!(r, Input::Line("s3cret!!".into()));
        assert!(!out.contains("s3cret"));
    }

    #[test]
    fn scripted_input_reads_plain_lines() {
        let mut out = Vec::new();
        let mut ed = LineEditor::new(&b"one\r\ntwo"[..], &mut out, false);
        let none = |_: &str| Vec::new();
        assert_eq!(
            ed.read_line("> ", true, &none).unwrap(),
            Input::Line("one".into())
        );
        assert_eq!(
            ed.read_line("> ", true, &none).unwrap(),
            Input::Line("two".into())
        );
        assert_eq!(ed.read_line("> ", true, &none).unwrap(), Input::Eof);
    }
}
