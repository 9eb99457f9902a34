//! Ground truth that does not come from Kuroko: tshark's fields for a pcap, SHA-256 of
//! files as `sha256sum` computes them, and files of known random content. Tests compare
//! what Kuroko reports with these, so they must stay independent of Kuroko's own code.

use crate::kuroko::DataDir;
use anyhow::{Context, ensure};
use std::path::Path;
use std::process::Command;

/// `tshark -r pcap -Y filter -T fields -e f1 -e f2 …`, one Vec per packet line.
pub fn tshark(pcap: &Path, filter: &str, fields: &[&str]) -> anyhow::Result<Vec<Vec<String>>> {
    let mut cmd = Command::new("tshark");
    cmd.args([
        "-r",
        pcap.to_str().context("utf-8 path")?,
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "separator=\t",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().context("cannot run tshark")?;
    ensure!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("cannot run sha256sum")?;
    ensure!(out.status.success(), "sha256sum {} failed", path.display());
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// A file of pseudo-random bytes (so that a wrong byte anywhere changes the digest).
pub fn random_file(path: &Path, len: usize, seed: u64) -> anyhow::Result<String> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    std::fs::write(path, &v)?;
    sha256_file(path)
}

/// The reconstructed object with this digest in the data directory, re-hashed from disk.
pub fn stored_object_sha(data: &DataDir, sha: &str) -> anyhow::Result<String> {
    match kuroko_model::objects::Objects::new(&data.dir).path(sha) {
        Some(p) => sha256_file(&p),
        None => anyhow::bail!("no object {sha} under {}", data.dir.join("files").display()),
    }
}

/// A certificate's facts as openssl reads them, for checking Kuroko's `tls.certs` fields.
pub struct OpensslCert {
    /// Lower-case hex without colons, as Kuroko writes them.
    pub serial: String,
    pub sha1: String,
    pub sha256: String,
    /// openssl's `subjectAltName` extension text (`DNS:name, IP Address:…`).
    pub san: String,
}

/// The first certificate of tshark's `tls.handshake.certificate` value (hex with colons,
/// certificates separated by commas), written to `der_path` and read back with
/// `openssl x509`: an independent reading of the certificate Kuroko parsed off the wire.
pub fn openssl_cert(tshark_hex: &str, der_path: &Path) -> anyhow::Result<OpensslCert> {
    let hex = tshark_hex
        .split(',')
        .next()
        .unwrap_or_default()
        .replace(':', "");
    let der: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<_, _>>()?;
    ensure!(!der.is_empty(), "tshark extracted no certificate");
    std::fs::write(der_path, &der)?;
    let openssl = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new("openssl")
            .args(["x509", "-inform", "der", "-noout"])
            .args(args)
            .arg("-in")
            .arg(der_path)
            .output()
            .context("cannot run openssl")?;
        ensure!(
            out.status.success(),
            "openssl x509 {args:?} failed: {out:?}"
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let o1 = openssl(&["-serial", "-fingerprint", "-sha1"])?;
    let o256 = openssl(&["-fingerprint", "-sha256", "-ext", "subjectAltName"])?;
    let field = |text: &str, key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("")
            .replace(':', "")
            .to_ascii_lowercase()
    };
    Ok(OpensslCert {
        serial: field(&o1, "serial="),
        sha1: field(&o1, "sha1 Fingerprint="),
        sha256: field(&o256, "sha256 Fingerprint="),
        san: o256,
    })
}
