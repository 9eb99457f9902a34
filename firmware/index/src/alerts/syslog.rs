//! RFC 5424 syslog over UDP (RFC 5426, one datagram per alert) or over TLS (RFC 5425).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME kuroko PROCID alert [kuroko@32473 condition=".." severity=".."
//! session=".."] BOM message`. Facility local0; severity from the condition (critical → 2,
//! warning → 4, info → 6). UDP never blocks ingestion on a dead collector.
//!
//! With `[alerts.syslog_transport] tls = "tls"` each message goes as `MSG-LEN SP SYSLOG-MSG`
//! (RFC 5425 §4.3 octet-counting framing) over one TLS connection per ingest run, opened
//! at the first message with the collector's certificate verified ([`super::tls`]) and
//! the connect/read/write timeouts of the mail client; a broken connection is opened again
//! once per message.

use super::Alert;
use super::tls::{self, TlsError, TlsStream};
use kuroko_model::config::SyslogTransport;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

/// Facility local0 (RFC 5424 §6.2.1).
const FACILITY_LOCAL0: u8 = 16;
/// Private enterprise number placeholder used in the structured-data id (RFC 5424 §7.2.2
/// requires `name@<number>`; 32473 is the documentation number of RFC 5612).
const SD_ID: &str = "kuroko@32473";
/// Longest datagram sent; RFC 5426 says receivers must take 480 bytes and should take 2048.
pub const MAX_DATAGRAM: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("syslog target `{target}`: {message}")]
    Target { target: String, message: String },
    #[error("syslog send to {target}: {source}")]
    Send {
        target: String,
        source: std::io::Error,
    },
    #[error("syslog collector `{target}`: {source}")]
    Tls { target: String, source: TlsError },
    /// The connection failed earlier in this run (`kind`: that failure's kind).
    #[error("syslog collector `{target}`: not retried in this run: {message}")]
    NotRetried {
        target: String,
        kind: &'static str,
        message: String,
    },
}

impl SyslogError {
    /// A short name of the failure (as [`super::smtp::SmtpError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            SyslogError::Tls { source, .. } if source.is_verification() => "tls_certificate",
            SyslogError::Tls { .. } => "tls",
            SyslogError::NotRetried { kind, .. } => kind,
            SyslogError::Target { .. } | SyslogError::Send { .. } => "io",
        }
    }
}

enum Transport {
    Udp(UdpSocket),
    Tls {
        config: std::sync::Arc<rustls::ClientConfig>,
        /// Open after the first message.
        conn: Option<Box<TlsStream>>,
        /// The connection could not be made in this run: later messages fail at once
        /// instead of each waiting for the timeouts (ingestion must not stall on a dead
        /// collector).
        down: Option<(&'static str, String)>,
    },
}

pub struct Syslog {
    target: String,
    addr: std::net::SocketAddr,
    transport: Transport,
    hostname: String,
}

pub fn severity_code(s: &str) -> u8 {
    match s {
        "critical" => 2,
        "info" => 6,
        _ => 4,
    }
}

fn escape_param(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// RFC 5424 HOSTNAME / APP-NAME: printable US-ASCII without spaces, or `-`.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if t.is_empty() { "-".into() } else { t }
}

impl Syslog {
    /// UDP to `target` (`host:port`).
    pub fn new(target: &str) -> Result<Syslog, SyslogError> {
        Self::with_transport(target, &SyslogTransport::default())
    }

    /// `target` over the configured transport.
    pub fn with_transport(
        target: &str,
        transport: &SyslogTransport,
    ) -> Result<Syslog, SyslogError> {
        let err = |message: String| SyslogError::Target {
            target: target.to_string(),
            message,
        };
        let addr = target
            .to_socket_addrs()
            .map_err(|e| err(e.to_string()))?
            .next()
            .ok_or_else(|| err("no address".into()))?;
        let transport = if transport.mode() == "tls" {
            let config =
                tls::client_config(&transport.ca_file).map_err(|source| SyslogError::Tls {
                    target: target.to_string(),
                    source,
                })?;
            Transport::Tls {
                config,
                conn: None,
                down: None,
            }
        } else {
            let bind = if addr.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            Transport::Udp(UdpSocket::bind(bind).map_err(|e| err(e.to_string()))?)
        };
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Ok(Syslog {
            target: target.to_string(),
            addr,
            transport,
            hostname: header_token(&hostname, 255),
        })
    }

    /// The datagram for an alert.
    pub fn format(&self, a: &Alert) -> String {
        let msg = format!("{}: {}", a.condition, a.session.line());
        self.format_raw(
            &a.severity,
            &[
                ("condition", a.condition.as_str()),
                ("severity", a.severity.as_str()),
                ("session", a.session.id.as_str()),
            ],
            &msg,
        )
    }

    fn format_raw(&self, severity: &str, params: &[(&str, &str)], msg: &str) -> String {
        let pri = FACILITY_LOCAL0 * 8 + severity_code(severity);
        let ts = kuroko_model::Timestamp::now()
            .to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut sd = format!("[{SD_ID}");
        for (k, v) in params {
            sd.push_str(&format!(" {k}=\"{}\"", escape_param(v)));
        }
        sd.push(']');
        let mut line = format!(
            "<{pri}>1 {ts} {} kuroko {} alert {sd} \u{feff}{msg}",
            self.hostname,
            std::process::id()
        );
        if line.len() > MAX_DATAGRAM {
            let mut end = MAX_DATAGRAM;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        line
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls { .. })
    }

    pub fn send(&mut self, a: &Alert) -> Result<(), SyslogError> {
        self.send_line(&self.format(a))
    }

    /// A free-text notice (e.g. the rate-limit summary).
    pub fn send_text(
        &mut self,
        severity: &str,
        condition: &str,
        text: &str,
    ) -> Result<(), SyslogError> {
        let line = self.format_raw(severity, &[("condition", condition)], text);
        self.send_line(&line)
    }

    fn send_line(&mut self, line: &str) -> Result<(), SyslogError> {
        let send_err = |source| SyslogError::Send {
            target: self.target.clone(),
            source,
        };
        match &mut self.transport {
            Transport::Udp(socket) => socket
                .send_to(line.as_bytes(), self.addr)
                .map(|_| ())
                .map_err(send_err),
            Transport::Tls { config, conn, down } => {
                if let Some((kind, message)) = down {
                    return Err(SyslogError::NotRetried {
                        target: self.target.clone(),
                        kind,
                        message: message.clone(),
                    });
                }
                let frame = format!("{} {line}", line.len());
                // A connection the collector closed since the last message fails on the
                // write (or only on the next one): open a fresh one once.
                if let Some(c) = conn.as_mut()
                    && c.write_all(frame.as_bytes())
                        .and_then(|_| c.flush())
                        .is_ok()
                {
                    return Ok(());
                }
                *conn = None;
                let tls_err = |source| SyslogError::Tls {
                    target: self.target.clone(),
                    source,
                };
                let opened = (|| {
                    let tcp = TcpStream::connect_timeout(&self.addr, super::smtp::CONNECT_TIMEOUT)
                        .map_err(send_err)?;
                    tcp.set_read_timeout(Some(super::smtp::IO_TIMEOUT))
                        .map_err(send_err)?;
                    tcp.set_write_timeout(Some(super::smtp::IO_TIMEOUT))
                        .map_err(send_err)?;
                    let name = tls::server_name(&self.target).map_err(tls_err)?;
                    tls::connect(config.clone(), name, tcp).map_err(tls_err)
                })();
                let mut c = match opened {
                    Ok(c) => Box::new(c),
                    Err(e) => {
                        *down = Some((e.kind(), e.to_string()));
                        return Err(e);
                    }
                };
                c.write_all(frame.as_bytes())
                    .and_then(|_| c.flush())
                    .map_err(send_err)?;
                *conn = Some(c);
                Ok(())
            }
        }
    }

    /// Closes a TLS connection cleanly (close_notify), so the collector sees the end.
    pub fn close(&mut self) {
        if let Transport::Tls { conn, .. } = &mut self.transport
            && let Some(mut c) = conn.take()
        {
            c.conn.send_close_notify();
            let _ = c.flush();
        }
    }
}
