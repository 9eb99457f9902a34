//! A small SMTP client (RFC 5321) for alert mail through the site's relay.
//!
//! EHLO (HELO as fallback), MAIL FROM, RCPT TO per recipient, DATA with dot-stuffing, QUIT,
//! with connect/read/write timeouts so a dead relay costs at most a few seconds. The
//! subject is RFC 2047 encoded (UTF-8, base64) since conditions and comments are usually
//! Japanese; the body is UTF-8, base64 transfer-encoded so that no relay mangles 8-bit text.
//!
//! Transport (`[alerts.smtp_transport]`): `none` (cleartext, a relay on the customer's LAN),
//! `starttls` (RFC 3207: the EHLO reply must offer STARTTLS or nothing is sent; the relay's
//! certificate is verified, [`super::tls`]; EHLO again over TLS) or `tls` (RFC 8314 implicit
//! TLS). AUTH (RFC 4954: PLAIN, or LOGIN when only that is offered) only ever over TLS: a
//! cleartext connection never carries the password, whatever the configuration says.
//! Nothing of the alert (envelope, headers, body) is written before TLS is up when TLS is
//! configured.

use super::tls::{self, Stream, TlsError};
use kuroko_model::config::SmtpTransport;
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
    #[error("SMTP relay `{relay}`: {source}")]
    Tls { relay: String, source: TlsError },
    /// The relay does not offer what the configuration requires (STARTTLS, AUTH): nothing
    /// of the alert was sent.
    #[error("SMTP relay `{relay}`: {message}")]
    Policy { relay: String, message: String },
    #[error("SMTP password file `{path}`: {message}")]
    Password { path: String, message: String },
}

impl SmtpError {
    /// A short name of the failure for the delivery state and `kuroko status`:
    /// `tls_certificate` (the relay's certificate did not verify), `tls` (another TLS
    /// failure), `policy` (no STARTTLS or AUTH offered), `password`, `refused`, `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            SmtpError::Tls { source, .. } if source.is_verification() => "tls_certificate",
            SmtpError::Tls { .. } => "tls",
            SmtpError::Policy { .. } => "policy",
            SmtpError::Password { .. } => "password",
            SmtpError::Refused { .. } => "refused",
            SmtpError::Relay { .. } | SmtpError::Io { .. } => "io",
        }
    }
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
    s: BufReader<Stream>,
}

impl Conn {
    fn io(&self, source: std::io::Error) -> SmtpError {
        SmtpError::Io {
            relay: self.relay.clone(),
            source,
        }
    }

    fn policy(&self, message: String) -> SmtpError {
        SmtpError::Policy {
            relay: self.relay.clone(),
            message,
        }
    }

    /// Reads one (possibly multi-line) reply: (code, lines without the code).
    fn reply(&mut self) -> Result<(u16, Vec<String>), SmtpError> {
        let mut lines = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = String::new();
            let n = std::io::Read::take(&mut self.s, MAX_REPLY_LINE as u64)
                .read_line(&mut line)
                .map_err(|e| self.io(e))?;
            if n == 0 {
                return Err(SmtpError::Relay {
                    relay: self.relay.clone(),
                    message: "connection closed".into(),
                });
            }
            let l = line.trim_end();
            let bad = || SmtpError::Relay {
                relay: self.relay.clone(),
                message: format!("bad reply `{}`", l.escape_debug()),
            };
            if l.len() < 3 || !l.is_char_boundary(3) {
                return Err(bad());
            }
            let code: u16 = l[..3].parse().map_err(|_| bad())?;
            lines.push(l.get(4..).unwrap_or("").to_string());
            if l.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, lines));
            }
        }
        Err(SmtpError::Relay {
            relay: self.relay.clone(),
            message: "reply too long".into(),
        })
    }

    fn send_line(&mut self, line: &str) -> Result<(), SmtpError> {
        let r = self.s.get_mut().write_all(format!("{line}\r\n").as_bytes());
        r.map_err(|e| self.io(e))
    }

    fn cmd(&mut self, line: &str, want: u16, name: &str) -> Result<Vec<String>, SmtpError> {
        self.send_line(line)?;
        self.expect(want, name)
    }

    fn expect(&mut self, want: u16, name: &str) -> Result<Vec<String>, SmtpError> {
        let (code, lines) = self.reply()?;
        if code / 100 != want / 100 {
            return Err(SmtpError::Refused {
                relay: self.relay.clone(),
                command: name.to_string(),
                reply: format!("{code} {}", lines.join(" ")),
            });
        }
        Ok(lines)
    }

    /// EHLO, then HELO when EHLO is refused (no extensions then).
    fn hello(&mut self, helo: &str) -> Result<Vec<String>, SmtpError> {
        match self.cmd(&format!("EHLO {helo}"), 250, "EHLO") {
            Ok(ext) => Ok(ext.into_iter().skip(1).collect()),
            Err(SmtpError::Refused { .. }) => {
                self.cmd(&format!("HELO {helo}"), 250, "HELO")?;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Upgrades the plain connection to TLS after the relay's `220` to STARTTLS.
    fn start_tls(&mut self, config: &SmtpTransport) -> Result<(), SmtpError> {
        let tls_err = |source| SmtpError::Tls {
            relay: self.relay.clone(),
            source,
        };
        let client = tls::client_config(&config.ca_file).map_err(tls_err)?;
        let name = tls::server_name(&self.relay).map_err(tls_err)?;
        // Bytes the relay sent after its 220 would be read as if they came over TLS
        // (CVE-2011-0411 style injection): refuse.
        if !self.s.buffer().is_empty() {
            return Err(self.policy("data after the STARTTLS reply (command injection)".into()));
        }
        let old = std::mem::replace(&mut self.s, BufReader::new(Stream::Closed));
        let Stream::Plain(tcp) = old.into_inner() else {
            return Err(self.policy("STARTTLS on a TLS connection".into()));
        };
        let tls = tls::connect(client, name, tcp).map_err(tls_err)?;
        self.s = BufReader::new(Stream::Tls(Box::new(tls)));
        Ok(())
    }
}

/// Whether an EHLO extension list offers `keyword` (case-insensitive, first word).
fn offers(ext: &[String], keyword: &str) -> bool {
    ext.iter().any(|l| {
        l.split_ascii_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
    })
}

/// The AUTH mechanisms offered (`AUTH PLAIN LOGIN`), upper-cased.
fn auth_mechanisms(ext: &[String]) -> Vec<String> {
    ext.iter()
        .filter_map(|l| {
            let mut w = l.split_ascii_whitespace();
            w.next()
                .filter(|k| k.eq_ignore_ascii_case("AUTH"))
                .map(|_| w.map(str::to_ascii_uppercase).collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

/// Longest password file read (a password, not a document).
const MAX_PASSWORD_FILE: u64 = 4096;

/// The password of `path`: its first line. The file must be a regular file that neither
/// group nor others can read or write, owned by root or by the user this process runs as.
pub fn read_password(path: &str) -> Result<String, SmtpError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let err = |message: String| SmtpError::Password {
        path: path.to_string(),
        message,
    };
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let m = f.metadata().map_err(|e| err(e.to_string()))?;
    if !m.is_file() {
        return Err(err("not a regular file".into()));
    }
    if m.mode() & 0o077 != 0 {
        return Err(err(format!(
            "mode {:04o} lets group or others at it; `chmod 600 {path}`",
            m.mode() & 0o7777
        )));
    }
    // The owner of /proc/self is this process's effective uid.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if m.uid() != 0 && Some(m.uid()) != me {
        return Err(err(format!(
            "owned by uid {}, not by root or this process",
            m.uid()
        )));
    }
    let mut text = String::new();
    f.take(MAX_PASSWORD_FILE)
        .read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    let pw = text.lines().next().unwrap_or("").to_string();
    if pw.is_empty() {
        return Err(err("empty".into()));
    }
    Ok(pw)
}

/// Sends one mail through `relay` (`host:port`) as `transport` says.
pub fn send(
    relay: &str,
    transport: &SmtpTransport,
    from: &str,
    to: &[String],
    subject: &str,
    body: &str,
) -> Result<(), SmtpError> {
    let rerr = |message: String| SmtpError::Relay {
        relay: relay.to_string(),
        message,
    };
    let mode = transport.mode();
    if !["none", "starttls", "tls"].contains(&mode) {
        return Err(rerr(format!("unknown tls mode `{mode}`")));
    }
    // Read before connecting: a bad password file costs no connection.
    let password = if transport.username.is_empty() {
        None
    } else {
        if mode == "none" {
            return Err(SmtpError::Policy {
                relay: relay.to_string(),
                message: "AUTH refused over a cleartext connection (set tls)".into(),
            });
        }
        Some(read_password(&transport.password_file)?)
    };
    let addr = relay
        .to_socket_addrs()
        .map_err(|e| rerr(e.to_string()))?
        .next()
        .ok_or_else(|| rerr("no address".into()))?;
    let tcp =
        TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|source| SmtpError::Io {
            relay: relay.to_string(),
            source,
        })?;
    let io = |source| SmtpError::Io {
        relay: relay.to_string(),
        source,
    };
    tcp.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    tcp.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    let stream = if mode == "tls" {
        let tls_err = |source| SmtpError::Tls {
            relay: relay.to_string(),
            source,
        };
        let client = tls::client_config(&transport.ca_file).map_err(tls_err)?;
        let name = tls::server_name(relay).map_err(tls_err)?;
        Stream::Tls(Box::new(tls::connect(client, name, tcp).map_err(tls_err)?))
    } else {
        Stream::Plain(tcp)
    };
    let mut c = Conn {
        relay: relay.to_string(),
        s: BufReader::new(stream),
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
    let mut ext = c.hello(&helo)?;
    if mode == "starttls" {
        if !offers(&ext, "STARTTLS") {
            let _ = c.cmd("QUIT", 221, "QUIT");
            return Err(c.policy(
                "does not offer STARTTLS, which tls = \"starttls\" requires; nothing was sent"
                    .into(),
            ));
        }
        c.cmd("STARTTLS", 220, "STARTTLS")?;
        c.start_tls(transport)?;
        ext = c.hello(&helo)?;
    }
    if let Some(pw) = password {
        if !c.s.get_ref().is_tls() {
            return Err(c.policy("AUTH refused over a cleartext connection".into()));
        }
        let mechs = auth_mechanisms(&ext);
        if mechs.iter().any(|m| m == "PLAIN") {
            let token = base64(format!("\0{}\0{pw}", transport.username).as_bytes());
            c.cmd(&format!("AUTH PLAIN {token}"), 235, "AUTH PLAIN")?;
        } else if mechs.iter().any(|m| m == "LOGIN") {
            c.cmd("AUTH LOGIN", 334, "AUTH LOGIN")?;
            c.cmd(
                &base64(transport.username.as_bytes()),
                334,
                "AUTH LOGIN user",
            )?;
            c.cmd(&base64(pw.as_bytes()), 235, "AUTH LOGIN password")?;
        } else {
            let _ = c.cmd("QUIT", 221, "QUIT");
            return Err(c.policy(format!(
                "offers no AUTH PLAIN or LOGIN (offers: {})",
                if mechs.is_empty() {
                    "none".to_string()
                } else {
                    mechs.join(" ")
                }
            )));
        }
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
    let w = c.s.get_mut().write_all(msg.as_bytes());
    w.map_err(|e| c.io(e))?;
    c.expect(250, "message")?;
    let _ = c.cmd("QUIT", 221, "QUIT");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_mechanisms_are_read_from_the_ehlo_reply() {
        let ext: Vec<String> = ["SIZE 100", "starttls", "AUTH login Plain", "8BITMIME"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(offers(&ext, "STARTTLS"));
        assert!(!offers(&ext, "SMTPUTF8"));
        assert_eq!(auth_mechanisms(&ext), ["LOGIN", "PLAIN"]);
    }

    #[test]
    fn auth_is_refused_in_clear_before_any_connection() {
        let t = SmtpTransport {
            username: "u".into(),
            password_file: "/nonexistent".into(),
            ..Default::default()
        };
        // Port 9 on a TEST-NET address: never contacted.
        let e = send("192.0.2.1:9", &t, "", &["a@b".into()], "s", "b").unwrap_err();
        assert_eq!(e.kind(), "policy", "{e}");
    }

    #[test]
    fn a_password_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "secret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_password(p.to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password(p.to_str().unwrap()).unwrap(), "secret");
    }
}
