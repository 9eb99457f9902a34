//! Unpacking an intel pack archive (`.zip`, `.tar.gz`/`.tgz`, `.tar`) from a USB stick.
//!
//! The archive is hostile until proven otherwise: entry names are checked before anything
//! is written (no absolute paths, no `..`, no links, devices or FIFOs: only regular files
//! and directories), and the bytes actually decompressed are counted against the limits,
//! never the sizes the headers claim (a zip bomb lies about them). Everything lands in a
//! fresh directory the caller owns and removes.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// What an archive may hold at most.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: 10_000,
            max_file_bytes: 512 << 20,
            max_total_bytes: 2 << 30,
            max_depth: 8,
        }
    }
}

/// Which archive a path names, by its name.
pub fn is_archive(path: &Path) -> bool {
    let n = path.to_string_lossy().to_ascii_lowercase();
    [".zip", ".tar.gz", ".tgz", ".tar"]
        .iter()
        .any(|e| n.ends_with(e))
}

/// A relative path made only of normal components, or why not.
fn safe_name(name: &str, limits: &Limits) -> Result<PathBuf, String> {
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => return Err(format!("entry `{name}` leaves the archive's directory")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("entry `{name}` has no name"));
    }
    if out.components().count() > limits.max_depth {
        return Err(format!(
            "entry `{name}` is nested deeper than {}",
            limits.max_depth
        ));
    }
    Ok(out)
}

struct Budget {
    limits: Limits,
    entries: usize,
    total: u64,
}

impl Budget {
    fn entry(&mut self) -> Result<(), String> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(format!("more than {} entries", self.limits.max_entries));
        }
        Ok(())
    }

    /// Copies at most the remaining budget; more is an error naming the entry.
    fn copy(&mut self, name: &str, r: &mut dyn Read, dest: &Path) -> Result<(), String> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let cap = self
            .limits
            .max_file_bytes
            .min(self.limits.max_total_bytes - self.total);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(|e| format!("entry `{name}`: {e} (duplicate name?)"))?;
        let n = std::io::copy(&mut r.take(cap + 1), &mut f)
            .map_err(|e| format!("entry `{name}`: {e}"))?;
        if n > cap {
            return Err(if cap == self.limits.max_file_bytes {
                format!(
                    "entry `{name}` unpacks to more than {} bytes",
                    self.limits.max_file_bytes
                )
            } else {
                format!(
                    "the archive unpacks to more than {} bytes",
                    self.limits.max_total_bytes
                )
            });
        }
        self.total += n;
        Ok(())
    }
}

/// Unpacks `archive` into `dest` (which must exist and be empty).
pub fn unpack(archive: &Path, dest: &Path, limits: Limits) -> Result<(), String> {
    let lower = archive.to_string_lossy().to_ascii_lowercase();
    let file = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut budget = Budget {
        limits,
        entries: 0,
        total: 0,
    };
    if lower.ends_with(".zip") {
        let mut z = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|e| format!("not a readable zip archive: {e}"))?;
        if z.len() > limits.max_entries {
            return Err(format!("more than {} entries", limits.max_entries));
        }
        for i in 0..z.len() {
            budget.entry()?;
            let mut e = z.by_index(i).map_err(|e| format!("zip entry {i}: {e}"))?;
            let name = e
                .name()
                .map_err(|err| format!("zip entry {i}: {err}"))?
                .to_string();
            let rel = safe_name(&name, &limits)?;
            if e.is_symlink() {
                return Err(format!("entry `{name}` is a symbolic link"));
            }
            if e.is_dir() {
                std::fs::create_dir_all(dest.join(&rel)).map_err(|e| e.to_string())?;
                continue;
            }
            budget.copy(&name, &mut e, &dest.join(&rel))?;
        }
        return Ok(());
    }
    let reader: Box<dyn Read> = if lower.ends_with(".gz") || lower.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut t = tar::Archive::new(reader);
    for e in t
        .entries()
        .map_err(|e| format!("not a readable tar archive: {e}"))?
    {
        budget.entry()?;
        let mut e = e.map_err(|e| format!("not a readable tar archive: {e}"))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let rel = safe_name(&name, &limits)?;
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(dest.join(&rel)).map_err(|e| e.to_string())?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                budget.copy(&name, &mut e, &dest.join(&rel))?;
            }
            // pax/GNU extension headers carry long names and metadata, no file.
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => {}
            other => return Err(format!("entry `{name}` is a {other:?}, not a regular file")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_gz(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, data, ty) in entries {
            let mut h = tar::Header::new_gnu();
            // Write the raw name so that `..` and absolute names get in like a hostile tool
            // would put them.
            let raw = name.as_bytes();
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            h.set_size(data.len() as u64);
            h.set_entry_type(*ty);
            h.set_mode(0o644);
            if *ty == tar::EntryType::Symlink {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn hostile_archives_are_refused_before_anything_leaves_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "up.tar.gz",
                tar_gz(&[("../escape.txt", b"x", tar::EntryType::Regular)]),
                "leaves",
            ),
            (
                "abs.tar.gz",
                tar_gz(&[("/tmp/abs.txt", b"x", tar::EntryType::Regular)]),
                "leaves",
            ),
            (
                "link.tar.gz",
                tar_gz(&[("l", b"", tar::EntryType::Symlink)]),
                "not a regular file",
            ),
            (
                "big.tar.gz",
                tar_gz(&[("big.txt", &[b'a'; 5000], tar::EntryType::Regular)]),
                "more than 4096",
            ),
        ];
        let limits = Limits {
            max_file_bytes: 4096,
            ..Limits::default()
        };
        for (name, bytes, want) in cases {
            let a = dir.path().join(name);
            std::fs::write(&a, bytes).unwrap();
            let out = dir.path().join(format!("out-{name}"));
            std::fs::create_dir(&out).unwrap();
            let e = unpack(&a, &out, limits).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
        }
        assert!(!dir.path().join("escape.txt").exists());
        // A zip whose entry claims little and inflates to a lot.
        let a = dir.path().join("bomb.zip");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&a).unwrap());
        z.start_file("feed.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&vec![b'0'; 100_000]).unwrap();
        z.start_file("../x.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.finish().unwrap();
        let out = dir.path().join("out-bomb");
        std::fs::create_dir(&out).unwrap();
        let e = unpack(&a, &out, limits).unwrap_err();
        assert!(e.contains("more than 4096"), "{e}");
        let out = dir.path().join("out-bomb2");
        std::fs::create_dir(&out).unwrap();
        let e = unpack(&a, &out, Limits::default()).unwrap_err();
        assert!(e.contains("leaves"), "{e}");
        // Too many entries.
        let many: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("f{i}.txt"), vec![])).collect();
        let refs: Vec<(&str, &[u8], tar::EntryType)> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice(), tar::EntryType::Regular))
            .collect();
        let a = dir.path().join("many.tar.gz");
        std::fs::write(&a, tar_gz(&refs)).unwrap();
        let out = dir.path().join("out-many");
        std::fs::create_dir(&out).unwrap();
        let e = unpack(
            &a,
            &out,
            Limits {
                max_entries: 10,
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("more than 10 entries"), "{e}");
    }
}
