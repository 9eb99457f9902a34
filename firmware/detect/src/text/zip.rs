//! The file names inside a ZIP archive, read from its central directory.
//!
//! Phishing mail hides executables in archives, often encrypted ones ("PPAP", common in
//! Japanese business mail) so that no scanner can look inside. The central directory
//! lists the names in clear text even then, so the names are what we check. Only the end
//! of the file is read (the end-of-central-directory record and the directory itself),
//! bounded by `MAX_DIRECTORY_LEN`; anything malformed yields no names, never a panic.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The end-of-central-directory record is 22 bytes plus a comment of at most 65535.
const EOCD_SEARCH: u64 = 22 + 65_535;
/// Largest central directory read (about 20 000 entries of ordinary names).
pub const MAX_DIRECTORY_LEN: u64 = 1 << 20;
/// Most names returned.
pub const MAX_ENTRIES: usize = 1024;

/// Names in the archive at `path`; empty when it is not a readable ZIP.
pub fn names(path: &Path) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return Vec::new();
    };
    let tail_len = len.min(EOCD_SEARCH);
    let mut tail = vec![0u8; tail_len as usize];
    if f.seek(SeekFrom::Start(len - tail_len)).is_err() || f.read_exact(&mut tail).is_err() {
        return Vec::new();
    }
    let Some(eocd) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == *b"PK\x05\x06")
    else {
        return Vec::new();
    };
    let le32 = |b: &[u8], at: usize| -> Option<u64> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as u64)
    };
    let (Some(cd_size), Some(cd_offset)) = (le32(&tail, eocd + 12), le32(&tail, eocd + 16)) else {
        return Vec::new();
    };
    if cd_size > MAX_DIRECTORY_LEN || cd_offset.saturating_add(cd_size) > len {
        return Vec::new();
    }
    let mut cd = vec![0u8; cd_size as usize];
    if f.seek(SeekFrom::Start(cd_offset)).is_err() || f.read_exact(&mut cd).is_err() {
        return Vec::new();
    }
    parse_directory(&cd)
}

/// Names from central directory bytes.
pub fn parse_directory(cd: &[u8]) -> Vec<String> {
    let le16 = |at: usize| -> Option<usize> {
        Some(u16::from_le_bytes(cd.get(at..at + 2)?.try_into().ok()?) as usize)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < MAX_ENTRIES && cd.get(i..i + 4) == Some(b"PK\x01\x02") {
        let (Some(name_len), Some(extra_len), Some(comment_len)) =
            (le16(i + 28), le16(i + 30), le16(i + 32))
        else {
            break;
        };
        let Some(name) = cd.get(i + 46..i + 46 + name_len) else {
            break;
        };
        out.push(String::from_utf8_lossy(name).into_owned());
        i += 46 + name_len + extra_len + comment_len;
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ZIP with stored (uncompressed) entries, built by hand after APPNOTE 4.3.
    pub(crate) fn build(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let mut local = Vec::new();
            local.extend_from_slice(b"PK\x03\x04");
            local.extend_from_slice(&[20, 0, 1, 0, 0, 0, 0, 0, 0, 0]); // version, flags (encrypted), method, time, date
            local.extend_from_slice(&0u32.to_le_bytes()); // crc
            local.extend_from_slice(&(data.len() as u32).to_le_bytes());
            local.extend_from_slice(&(data.len() as u32).to_le_bytes());
            local.extend_from_slice(&(name.len() as u16).to_le_bytes());
            local.extend_from_slice(&0u16.to_le_bytes());
            local.extend_from_slice(name.as_bytes());
            local.extend_from_slice(data);
            out.extend_from_slice(&local);
            cd.extend_from_slice(b"PK\x01\x02");
            cd.extend_from_slice(&[20, 0, 20, 0, 1, 0, 0, 0, 0, 0, 0, 0]); // made by, needed, flags, method, time, date
            cd.extend_from_slice(&0u32.to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&[0; 12]); // extra, comment, disk, internal and external attributes
            cd.extend_from_slice(&offset.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&cd);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn names_from_the_central_directory_and_garbage_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(
            &p,
            build(&[("請求書.pdf", b"%PDF"), ("run/invoice.exe", b"MZ")]),
        )
        .unwrap();
        assert_eq!(
            names(&p),
            vec!["請求書.pdf".to_string(), "run/invoice.exe".to_string()]
        );
        std::fs::write(&p, b"PK\x05\x06 not really").unwrap();
        assert!(names(&p).is_empty());
        let mut bad = build(&[("a.txt", b"x")]);
        let n = bad.len();
        bad[n - 6..n - 2].copy_from_slice(&u32::MAX.to_le_bytes()); // directory offset past the end
        std::fs::write(&p, bad).unwrap();
        assert!(names(&p).is_empty());
        assert!(names(&dir.path().join("missing")).is_empty());
    }
}
