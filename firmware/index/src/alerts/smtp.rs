//! A small SMTP client (RFC 5321) for alert mail through the site's relay.
//!
//! EHLO (HELO as fallback), MAIL FROM, RCPT TO per recipient, DATA with dot-stuffing, QUIT,
//! over a plain `TcpStream` with connect/read/write timeouts so a dead relay costs at most
//! a few seconds. The subject is RFC 2047 encoded (UTF-8, base64) since conditions and
//! comments are usually Japanese; the body is UTF-8, base64 transfer-encoded so that no
//! relay mangles 8-bit text. No TLS or AUTH: the relay is on the customer's LAN.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest reply line accepted from the server.
const MAX_REPLY_LINE: usize = 4096;
/// Most lines in one multi-line reply.
const MAX_REPLY_LINES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("SMTP relay `{relay}`: {message}")]
    Relay { relay: String, message: String },
    #[error("SMTP relay `{relay}`: {source}")]
    Io {
        relay: String,
        source: std::io::Error,
    },
    #[error("SMTP relay `{relay}` refused {command}: {reply}")]
    Refused {
        relay: String,
        command: String,
        reply: String,
    },
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 2047 encoded-words for a header value, split so each stays under 76 characters.
pub fn encode_header(value: &str) -> String {
    if value.is_ascii() && !value.contains(['\r', '\n']) {
        return value.to_string();
    }
    let mut words = Vec::new();
    let mut cur = String::new();
    for c in value.chars().filter(|c| *c != '\r' && *c != '\n') {
        if cur.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", base64(cur.as_bytes())));
            cur.clear();
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64(cur.as_bytes())));
    }
    words.join("\r\n ")
}

struct Conn {
    relay: String,
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn io(&self, source: std::io::Error) -> SmtpError {
        SmtpError::Io {
            relay: self.relay.clone(),
            source,
        }
    }

    /// Reads one (possibly multi-line) reply: (code, text).
    fn reply(&mut self) -> Result<(u16, String), SmtpError> {
        let mut text = String::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = String::new();
            let n = std::io::Read::take(&mut self.r, MAX_REPLY_LINE as u64)
                .read_line(&mut line)
                .map_err(|e| self.io(e))?;
            if n == 0 {
                return Err(SmtpError::Relay {
                    relay: self.relay.clone(),
                    message: "connection closed".into(),
                });
            }
            let l = line.trim_end();
            if l.len() < 3 {
                return Err(SmtpError::Relay {
                    relay: self.relay.clone(),
                    message: format!("bad reply `{l}`"),
                });
            }
            let code: u16 = l[..3].parse().map_err(|_| SmtpError::Relay {
                relay: self.relay.clone(),
                message: format!("bad reply `{l}`"),
            })?;
            text.push_str(l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, text));
            }
            text.push(' ');
        }
        Err(SmtpError::Relay {
            relay: self.relay.clone(),
            message: "reply too long".into(),
        })
    }

    fn cmd(&mut self, line: &str, want: u16, name: &str) -> Result<(), SmtpError> {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| self.io(e))?;
        self.expect(want, name)
    }

    fn expect(&mut self, want: u16, name: &str) -> Result<(), SmtpError> {
        let (code, text) = self.reply()?;
        if code / 100 != want / 100 {
            return Err(SmtpError::Refused {
                relay: self.relay.clone(),
                command: name.to_string(),
                reply: text,
            });
        }
        Ok(())
    }
}

/// Sends one mail through `relay` (`host:port`).
pub fn send(
    relay: &str,
    from: &str,
    to: &[String],
    subject: &str,
    body: &str,
) -> Result<(), SmtpError> {
    let rerr = |message: String| SmtpError::Relay {
        relay: relay.to_string(),
        message,
    };
    let addr = relay
        .to_socket_addrs()
        .map_err(|e| rerr(e.to_string()))?
        .next()
        .ok_or_else(|| rerr("no address".into()))?;
    let stream =
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|source| SmtpError::Io {
            relay: relay.to_string(),
            source,
        })?;
    let io = |source| SmtpError::Io {
        relay: relay.to_string(),
        source,
    };
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let mut c = Conn {
        relay: relay.to_string(),
        r: BufReader::new(stream.try_clone().map_err(io)?),
        w: stream,
    };
    let from = if from.is_empty() {
        "kuroko@localhost"
    } else {
        from
    };
    let helo = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        .unwrap_or_else(|| "kuroko".into());
    c.expect(220, "greeting")?;
    if c.cmd(&format!("EHLO {helo}"), 250, "EHLO").is_err() {
        c.cmd(&format!("HELO {helo}"), 250, "HELO")?;
    }
    c.cmd(&format!("MAIL FROM:<{from}>"), 250, "MAIL FROM")?;
    for rcpt in to {
        c.cmd(&format!("RCPT TO:<{rcpt}>"), 250, "RCPT TO")?;
    }
    c.cmd("DATA", 354, "DATA")?;
    let date = chrono::Utc::now().to_rfc2822();
    let mut msg = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\nX-Mailer: kuroko\r\n\r\n",
        to.join(", "),
        encode_header(subject),
    );
    let b = base64(body.as_bytes());
    for chunk in b.as_bytes().chunks(76) {
        msg.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        msg.push_str("\r\n");
    }
    // base64 lines never start with '.', so no dot-stuffing is needed.
    msg.push_str(".\r\n");
    c.w.write_all(msg.as_bytes()).map_err(|e| c.io(e))?;
    c.expect(250, "message")?;
    let _ = c.cmd("QUIT", 221, "QUIT");
    Ok(())
}
