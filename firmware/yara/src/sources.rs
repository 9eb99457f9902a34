//! Which rule files make the set: the `[intel] yara_rules` entries (files, or directories
//! whose rule files are taken) and every pack's `DATA/intel/<pack>/yara/`.

use std::io;
use std::path::{Path, PathBuf};

/// File name endings taken from a directory.
pub const RULE_EXTENSIONS: [&str; 2] = ["yar", "yara"];

/// The rule files, sorted within each source so the set (and its fingerprint) does not
/// depend on directory order. A configured path that does not exist is an error (a typo
/// must not silently disable YARA); a missing `DATA/intel` is just no packs.
pub fn rule_files(configured: &[PathBuf], data: Option<&Path>) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in configured {
        let meta = std::fs::metadata(p).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("[intel] yara_rules: {}: {e}", p.display()),
            )
        })?;
        if meta.is_dir() {
            out.extend(dir_rules(p)?);
        } else {
            out.push(p.clone());
        }
    }
    if let Some(data) = data {
        let intel = data.join("intel");
        let mut packs: Vec<PathBuf> = match std::fs::read_dir(&intel) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        packs.sort();
        for pack in packs {
            let dir = pack.join("yara");
            if dir.is_dir() {
                out.extend(dir_rules(&dir)?);
            }
        }
    }
    Ok(out)
}

fn dir_rules(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| RULE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What identifies a set of files' contents cheaply: path, size and modification time of
/// each. A change of any recompiles.
pub fn fingerprint(files: &[PathBuf]) -> String {
    let mut s = String::new();
    for f in files {
        let (len, mtime) = std::fs::metadata(f)
            .map(|m| {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                (m.len(), t)
            })
            .unwrap_or((0, 0));
        s.push_str(&format!("{}\u{0}{len}\u{0}{mtime}\n", f.display()));
    }
    s
}
