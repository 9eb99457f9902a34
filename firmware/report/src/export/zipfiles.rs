//! Reconstructed files made inert: one zip, every entry encrypted with ZipCrypto under the
//! password `infected` (the malware-analysis convention), stored uncompressed.
//!
//! Why ZipCrypto and not AES: its purpose here is defanging, not secrecy (the whole bundle
//! can be age-encrypted for that). ZipCrypto zips open with every unzip tool, including
//! Debian's `unzip -P infected`, while no mail gateway, antivirus or desktop will open or
//! auto-run what is inside. Stored (no compression) keeps the size known before writing,
//! so the free-space check is exact.

use crate::error::ReportError;
use std::io::{Read, Write};
use std::path::PathBuf;
use zip::unstable::write::FileOptionsExt;

pub const ZIP_PASSWORD: &str = "infected";

/// One file for the zip: its name inside and where its bytes are.
#[derive(Clone, Debug)]
pub struct ZipEntry {
    pub name: String,
    pub source: PathBuf,
    pub bytes: u64,
}

/// Upper bound of the zip's size for these entries.
pub fn size_bound(entries: &[ZipEntry]) -> u64 {
    22 + entries
        .iter()
        .map(|e| e.bytes + 12 + 16 + 30 + 46 + 2 * e.name.len() as u64 + 64)
        .sum::<u64>()
}

/// Keeps a name to safe characters so no unzip tool writes outside its folder.
pub fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "file".into() } else { s }
}

/// Writes the zip to `out`, calling `progress` with bytes copied.
pub fn write_zip<W: Write + std::io::Seek>(
    out: W,
    entries: &[ZipEntry],
    progress: &mut dyn FnMut(u64),
) -> Result<W, ReportError> {
    let mut z = zip::ZipWriter::new(out);
    let err =
        |e: zip::result::ZipError| ReportError::Export(format!("cannot write the files zip: {e}"));
    for e in entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(e.bytes >= u32::MAX as u64)
            .with_deprecated_encryption(ZIP_PASSWORD.as_bytes())
            .map_err(err)?;
        z.start_file(e.name.as_str(), opts).map_err(err)?;
        let mut f = std::fs::File::open(&e.source).map_err(|source| ReportError::Read {
            path: e.source.clone(),
            source,
        })?;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = f.read(&mut buf).map_err(|source| ReportError::Read {
                path: e.source.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            z.write_all(&buf[..n])
                .map_err(|e| ReportError::Export(format!("cannot write the files zip: {e}")))?;
            progress(n as u64);
        }
    }
    z.finish().map_err(err)
}
