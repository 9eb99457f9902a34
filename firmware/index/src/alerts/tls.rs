//! TLS for alert delivery: SMTP (STARTTLS or implicit TLS) and syslog (RFC 5425).
//!
//! One client configuration for both: rustls with the ring provider (as the web crate),
//! TLS 1.2 and 1.3, the peer's certificate verified against the destination's `ca_file`
//! (PEM) or the system store, and its name (DNS name or IP address of the configured
//! `host:port`) checked against the certificate. There is no way to switch verification
//! off: a relay whose certificate does not verify is refused, and the failure is counted
//! as a TLS failure ([`TlsError::is_verification`]) so the operator sees why mail waits.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

/// The system store of Debian (package ca-certificates), read when no `ca_file` is set.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("CA file `{path}`: {message}")]
    CaFile { path: String, message: String },
    #[error("`{host}` is not a host name or address for TLS")]
    Name { host: String },
    #[error("TLS handshake: {0}")]
    Handshake(String),
    #[error("TLS: certificate not trusted: {0}")]
    Certificate(String),
}

impl TlsError {
    /// The peer's certificate did not verify (another CA, wrong name, expired).
    pub fn is_verification(&self) -> bool {
        matches!(self, TlsError::Certificate(_))
    }
}

/// The client configuration for a destination: roots from `ca_file` (empty: the system
/// store).
pub fn client_config(ca_file: &str) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let path = if ca_file.is_empty() {
        SYSTEM_CA_BUNDLE
    } else {
        ca_file
    };
    let err = |message: String| TlsError::CaFile {
        path: path.to_string(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
    for c in certs {
        let c = c.map_err(|e| err(e.to_string()))?;
        roots.add(c).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("holds no certificate".into()));
    }
    // The `ring` provider, as the web crate (aws-lc-rs needs cmake and a C toolchain).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The host part of `host:port` (`[v6]:port` too), as the name the certificate must carry.
pub fn server_name(target: &str) -> Result<ServerName<'static>, TlsError> {
    let host = target.rsplit_once(':').map(|(h, _)| h).unwrap_or(target);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| TlsError::Name {
        host: host.to_string(),
    })
}

/// A TLS client stream over TCP.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Runs the handshake on `tcp` (already connected, with its timeouts set) and returns the
/// verified stream.
pub fn connect(
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    mut tcp: TcpStream,
) -> Result<TlsStream, TlsError> {
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(|e| classify(&e.to_string(), &e))?;
    while conn.is_handshaking() {
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) => {
                let inner = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .cloned();
                return Err(match inner {
                    Some(r) => classify(&e.to_string(), &r),
                    None => TlsError::Handshake(e.to_string()),
                });
            }
        }
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

fn classify(text: &str, e: &rustls::Error) -> TlsError {
    match e {
        rustls::Error::InvalidCertificate(_) => TlsError::Certificate(text.to_string()),
        _ => TlsError::Handshake(text.to_string()),
    }
}

/// A connection that may be upgraded to TLS in place (SMTP STARTTLS).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// Taken apart for the upgrade (reads and writes fail).
    Closed,
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Closed => Ok(()),
        }
    }
}
