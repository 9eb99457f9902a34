//! `MANIFEST.sha256`: one line per file, `sha256sum` format (`<hex>  <path>`), so that
//! `sha256sum -c MANIFEST.sha256` works on any machine. Written last; a bundle without it
//! is incomplete by definition.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const MANIFEST_NAME: &str = "MANIFEST.sha256";

/// SHA-256 of a file, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The manifest text for (relative path, hex digest) pairs.
pub fn render(entries: &[(String, String)]) -> String {
    let mut s = String::new();
    for (path, digest) in entries {
        s.push_str(digest);
        s.push_str("  ");
        s.push_str(path);
        s.push('\n');
    }
    s
}

/// Parses manifest text into (relative path, digest); rejects anything that is not a
/// plain relative path so that verification cannot be pointed outside the bundle.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (digest, path) = line
            .split_once("  ")
            .ok_or_else(|| format!("line {}: not `<sha256>  <path>`", i + 1))?;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("line {}: `{digest}` is not a SHA-256", i + 1));
        }
        let p = Path::new(path);
        if p.is_absolute()
            || p.components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "line {}: `{path}` is not a plain relative path",
                i + 1
            ));
        }
        out.push((path.to_string(), digest.to_ascii_lowercase()));
    }
    Ok(out)
}

/// What a verification found wrong.
#[derive(Debug, Default, PartialEq)]
pub struct Problems {
    pub mismatched: Vec<String>,
    pub missing: Vec<String>,
    /// Files in the bundle the manifest does not list.
    pub unlisted: Vec<String>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.mismatched.is_empty() && self.missing.is_empty() && self.unlisted.is_empty()
    }
}

/// Relative paths of every regular file under `root` except the manifest.
pub fn list_files(root: &Path) -> std::io::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let t = e.file_type()?;
            let p = e.path();
            if t.is_dir() {
                walk(root, &p, out)?;
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                if rel != MANIFEST_NAME {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// Re-reads every file of the bundle at `root` against its manifest.
pub fn verify(root: &Path) -> std::io::Result<Result<Problems, String>> {
    let text = match std::fs::read_to_string(root.join(MANIFEST_NAME)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(format!(
                "{} has no {MANIFEST_NAME}: the bundle is incomplete (the export did not finish)",
                root.display()
            )));
        }
        Err(e) => return Err(e),
    };
    let entries = match parse(&text) {
        Ok(e) => e,
        Err(m) => return Ok(Err(format!("{}: {m}", root.join(MANIFEST_NAME).display()))),
    };
    let mut p = Problems::default();
    let listed: std::collections::HashSet<&str> =
        entries.iter().map(|(path, _)| path.as_str()).collect();
    for (path, digest) in &entries {
        let full: PathBuf = root.join(path);
        match sha256_file(&full) {
            Ok(d) if &d == digest => {}
            Ok(_) => p.mismatched.push(path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => p.missing.push(path.clone()),
            Err(e) => return Err(e),
        }
    }
    for f in list_files(root)? {
        if !listed.contains(f.as_str()) {
            p.unlisted.push(f);
        }
    }
    Ok(Ok(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_paths_leaving_the_bundle() {
        let d = "a".repeat(64);
        assert!(parse(&format!("{d}  report/x.html\n")).is_ok());
        assert!(parse(&format!("{d}  ../etc/passwd\n")).is_err());
        assert!(parse(&format!("{d}  /etc/passwd\n")).is_err());
        assert!(parse("zz  x\n").is_err());
    }
}
