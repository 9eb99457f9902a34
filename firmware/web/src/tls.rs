//! The console's TLS identity: the certificate the admin installed (`[web] cert`/`key`) or
//! a self-signed one generated at first start in `<data>/web/tls/` (key file 0600), and its
//! SHA-256 fingerprint, which `kuroko web` prints at start and with `--fingerprint` so a
//! user can compare it with what the browser shows before trusting it.

use anyhow::Context;
use kuroko_model::config::write_atomic as write_private;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the leaf certificate (DER), `AB:CD:…`.
    pub fingerprint: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// The paths of the generated certificate.
pub fn default_paths(web_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = web_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// The SHA-256 fingerprint of the certificate `kuroko web` serves for this data dir and
/// config, read without generating anything (for `kuroko status` and the front panel):
/// `None` when no certificate exists yet (it is made at the console's first start).
pub fn current_fingerprint(
    data: &Path,
    config: &kuroko_model::config::Config,
) -> Option<anyhow::Result<String>> {
    let cert = if config.web.cert.as_os_str().is_empty() {
        default_paths(&crate::web_dir(data)).0
    } else {
        config.web.cert.clone()
    };
    if !cert.exists() {
        return None;
    }
    let leaf = CertificateDer::pem_file_iter(&cert)
        .and_then(|mut it| it.next().transpose())
        .with_context(|| format!("cannot read the certificate {}", cert.display()));
    Some(match leaf {
        Ok(Some(c)) => Ok(fingerprint(&c)),
        Ok(None) => Err(anyhow::anyhow!("{} holds no certificate", cert.display())),
        Err(e) => Err(e),
    })
}

/// Loads the certificate, generating a self-signed one first when `generate` and none exists.
pub fn load(cert: &Path, key: &Path, generate: bool, names: &[String]) -> anyhow::Result<Identity> {
    if generate && !cert.exists() && !key.exists() {
        let mut sans = vec!["kuroko".to_string(), "localhost".to_string()];
        sans.extend(names.iter().cloned());
        let ck =
            rcgen::generate_simple_self_signed(sans).context("cannot generate a certificate")?;
        write_private(key, ck.signing_key.serialize_pem().as_bytes())
            .with_context(|| format!("cannot write {}", key.display()))?;
        write_private(cert, ck.cert.pem().as_bytes())
            .with_context(|| format!("cannot write {}", cert.display()))?;
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "cannot read the certificate {} (PEM expected)",
                cert.display()
            )
        })?;
    let Some(leaf) = certs.first() else {
        anyhow::bail!("{} holds no certificate (PEM expected)", cert.display());
    };
    let fingerprint = fingerprint(leaf);
    let private = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "cannot read the private key {} (PEM expected)",
            key.display()
        )
    })?;
    // The `ring` provider: aws-lc-rs (the default, with post-quantum key exchange) needs
    // cmake and a C toolchain setup on the build host; revisit when it does not.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .with_context(|| {
            format!(
                "{} and {} do not make a usable pair",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        fingerprint,
        config: Arc::new(config),
    })
}

pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
