//! Reader of dot-terminated data (SMTP DATA, POP3 multi-line responses): ends at a line
//! holding only `.`, removes the extra dot of dot-stuffed lines (RFC 5321 4.5.2), keeps
//! line endings as sent.

use crate::MAX_OBJECT_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    LineStart,
    /// A `.` at the start of a line.
    Dot,
    /// `.` then `\r` at the start of a line.
    DotCr,
    Mid,
}

#[derive(Debug)]
pub struct DotReader {
    at: At,
    pub data: Vec<u8>,
    /// Bytes of content seen (also beyond the kept ones).
    pub total: u64,
    /// Content was cut (object cap) or lost (gap).
    pub partial: bool,
}

impl Default for DotReader {
    fn default() -> Self {
        DotReader {
            at: At::LineStart,
            data: Vec::new(),
            total: 0,
            partial: false,
        }
    }
}

impl DotReader {
    fn keep(&mut self, b: &[u8]) {
        self.total += b.len() as u64;
        let room = MAX_OBJECT_BYTES.saturating_sub(self.data.len());
        if b.len() > room {
            self.partial = true;
        }
        self.data.extend_from_slice(&b[..b.len().min(room)]);
    }

    /// Feeds bytes; returns `Some(consumed)` when the terminating line was reached.
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            match self.at {
                At::Mid => {
                    let rest = &input[i..];
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(nl) => {
                            self.keep(&rest[..=nl]);
                            i += nl + 1;
                            self.at = At::LineStart;
                        }
                        None => {
                            self.keep(rest);
                            i = input.len();
                        }
                    }
                }
                At::LineStart => {
                    let b = input[i];
                    i += 1;
                    if b == b'.' {
                        self.at = At::Dot;
                    } else {
                        self.keep(&[b]);
                        self.at = if b == b'\n' { At::LineStart } else { At::Mid };
                    }
                }
                At::Dot => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => self.at = At::DotCr,
                        b'\n' => return Some(i),
                        _ => {
                            // Dot-stuffed line: the first dot is dropped.
                            self.keep(&[b]);
                            self.at = At::Mid;
                        }
                    }
                }
                At::DotCr => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        return Some(i);
                    }
                    self.keep(b"\r");
                    self.keep(&[b]);
                    self.at = At::Mid;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuffs_and_stops_in_any_cut() {
        let input = b"Subject: x\r\n\r\n..hidden dot\r\n.\r\nQUIT\r\n";
        for cut in [1, 2, 3, 100] {
            let mut r = DotReader::default();
            let mut consumed = 0;
            let mut done = None;
            for c in input.chunks(cut) {
                if let Some(n) = r.feed(c) {
                    done = Some(consumed + n);
                    break;
                }
                consumed += c.len();
            }
            assert_eq!(done, Some(input.len() - 6), "cut {cut}");
            assert_eq!(r.data, b"Subject: x\r\n\r\n.hidden dot\r\n");
        }
    }
}
