//! Per-session SSH state: a line splitter per direction until its banner.

use crate::util::{LineBuf, text};
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::SessionRecord;

/// Longest version line (RFC 4253 4.2: 255 characters including CR LF).
pub const MAX_BANNER_LEN: usize = 255;
/// Lines a server may send before its version line before we give up on the direction.
pub const MAX_LINES_BEFORE_BANNER: usize = 32;

#[derive(Debug, Default)]
struct Side {
    lines: LineBuf,
    seen_lines: usize,
    done: bool,
}

/// SSH stream parser.
#[derive(Debug, Default)]
pub struct SshParser {
    sides: [Side; 2],
}

impl SshParser {
    pub fn new() -> SshParser {
        SshParser::default()
    }
}

fn set_banner(dir: Direction, line: &[u8], rec: &mut SessionRecord) {
    let v = text(rec, line);
    let ssh = rec.ssh.get_or_insert_with(Default::default);
    match dir {
        Direction::ToServer => ssh.client_version = Some(v),
        Direction::ToClient => ssh.server_version = Some(v),
    }
}

impl StreamParser for SshParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let side = &mut self.sides[dir.index()];
        if side.done {
            return;
        }
        // Only up to the first newline after the banner matters: cut the input there.
        let mut found = None;
        let mut overflow = false;
        let Side {
            lines,
            seen_lines,
            done,
        } = side;
        lines.feed(data, MAX_BANNER_LEN, |line| {
            if found.is_some() || overflow {
                return;
            }
            if line.bytes.starts_with(b"SSH-") {
                found = Some((line.bytes, line.overlong));
            } else {
                *seen_lines += 1;
                if *seen_lines >= MAX_LINES_BEFORE_BANNER {
                    overflow = true;
                }
            }
        });
        if let Some((line, overlong)) = found {
            if overlong {
                rec.flag("ssh_banner_too_long");
            }
            set_banner(dir, &line, rec);
            *done = true;
            lines.clear();
        } else if overflow {
            rec.flag("malformed:ssh");
            *done = true;
            lines.clear();
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        let side = &mut self.sides[dir.index()];
        side.done = true;
        side.lines.clear();
    }

    fn on_close(&mut self, rec: &mut SessionRecord, _sink: &mut dyn Sink) {
        for (i, side) in self.sides.iter_mut().enumerate() {
            // A banner without its line ending (connection cut right after it).
            if !side.done && side.lines.pending().starts_with(b"SSH-") {
                let line = side.lines.pending().to_vec();
                let dir = if i == 0 {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                set_banner(dir, &line, rec);
            }
            side.done = true;
            side.lines.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::{corpus, run_all_cuts, view};

    fn ssh() -> Box<dyn StreamParser> {
        Box::new(SshParser::new())
    }

    #[test]
    fn banners_with_preceding_lines_and_binary_after() {
        let up: &[u8] = b"SSH-2.0-PuTTY_Release_0.81\r\n\x00\x00\x05\xdc\x07\x14binary\nmore";
        let down: &[u8] = b"Authorized use only\r\nSSH-2.0-OpenSSH_8.0\r\n\x00\x00\x04\x1c\x0a\x14";
        let (rec, _) = run_all_cuts(ssh, "ssh", &[(Down, down), (Up, up)]);
        let s = rec.ssh.unwrap();
        assert_eq!(
            s.client_version.as_deref(),
            Some("SSH-2.0-PuTTY_Release_0.81")
        );
        assert_eq!(s.server_version.as_deref(), Some("SSH-2.0-OpenSSH_8.0"));
        assert!(rec.flags.is_empty());
    }

    /// ssh → sshd on loopback (Debian 12). Expected banners as tshark shows them
    /// (`ssh.protocol`) for the same pcap.
    #[test]
    fn real_openssh_session() {
        let t = corpus("ssh", "openssh-debian12.bin");
        let (rec, _) = run_all_cuts(ssh, "ssh", &view(&t));
        let s = rec.ssh.unwrap();
        assert_eq!(
            s.client_version.as_deref(),
            Some(include_str!("../../fuzz/corpus/ssh/client-banner.txt").trim())
        );
        assert_eq!(
            s.server_version.as_deref(),
            Some(include_str!("../../fuzz/corpus/ssh/server-banner.txt").trim())
        );
    }

    #[test]
    fn too_many_lines_gives_up() {
        let junk = b"hello\n".repeat(40);
        let (rec, _) = run_all_cuts(ssh, "ssh", &[(Down, &junk)]);
        assert!(rec.has_flag("malformed:ssh"));
        assert!(rec.ssh.is_none());
    }
}
