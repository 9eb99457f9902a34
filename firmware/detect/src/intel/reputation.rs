//! Reputation lists in Spamhaus DROP style (`1.10.16.0/20 ; SBL256894`, or the JSON lines
//! of `drop_v4.json`), plain address lists, any number of files, reloaded without a
//! restart.
//!
//! Lookup structure: every network becomes an inclusive range of `u128` (IPv4 mapped into
//! `::ffff:0:0/96`), sorted by start and merged so that ranges do not overlap; a lookup is
//! one binary search. The files' modification times and sizes are remembered; `refresh`
//! re-reads every file when any of them changed, and keeps the old table if the new one
//! cannot be read (the error is returned so the caller can count and show it).

use crate::error::DetectError;
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The config key named in errors.
const KEY: &str = "intel.reputation_lists";
/// Longest list line considered (DROP lines are ~40 bytes; longer is not a list).
const MAX_LINE_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq)]
struct FileStamp {
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Debug, Clone)]
struct Range {
    start: u128,
    end: u128,
    /// Index into `labels`.
    label: u32,
}

/// The loaded lists.
#[derive(Debug, Clone, Default)]
pub struct Reputation {
    ranges: Vec<Range>,
    /// `SBL256894 (drop.txt)`, or the file name when a line has no comment.
    labels: Vec<String>,
    stamps: Vec<FileStamp>,
    /// Lines that were neither an entry nor a comment, over all files.
    pub bad_lines: u64,
    /// Networks loaded (before merging).
    pub entries: u64,
    /// Successful reloads after the first load.
    pub reloads: u64,
}

impl Reputation {
    /// Loads every file. An unreadable file, or a non-empty file without one usable
    /// entry, is an error naming the key and the file.
    pub fn load(paths: &[PathBuf]) -> Result<Reputation, DetectError> {
        let mut r = Reputation::default();
        let mut raw: Vec<Range> = Vec::new();
        for path in paths {
            let stamp = stamp(path)?;
            let text = std::fs::read(path).map_err(|source| DetectError::IntelRead {
                key: KEY.into(),
                path: path.clone(),
                source,
            })?;
            let text = String::from_utf8_lossy(&text);
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            let (mut good, mut bad, mut content_lines) = (0u64, 0u64, 0u64);
            for line in text.lines() {
                let l = line.trim();
                if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
                    continue;
                }
                content_lines += 1;
                if l.len() > MAX_LINE_LEN {
                    bad += 1;
                    continue;
                }
                // Spamhaus's newer JSON form (`drop_v4.json`): one object a line.
                let json_entry = l.starts_with('{').then(|| json_line(l)).flatten();
                if l.starts_with('{') && json_entry.is_none() {
                    // The trailing metadata line (`{"type":"metadata",…}`) is fine;
                    // anything that is not JSON at all is a bad line.
                    if serde_json::from_str::<serde_json::Value>(l).is_err() {
                        bad += 1;
                    }
                    continue;
                }
                let (net, comment) = match &json_entry {
                    Some((n, c)) => (n.as_str(), c.as_str()),
                    None => match l.split_once([';', '#']) {
                        Some((n, c)) => (n.trim(), c.trim()),
                        None => (l, ""),
                    },
                };
                let Ok(net) = kuroko_model::config::parse_net(net) else {
                    bad += 1;
                    continue;
                };
                let label = if comment.is_empty() {
                    file_name.clone()
                } else {
                    format!("{comment} ({file_name})")
                };
                let idx = match r.labels.iter().rposition(|x| *x == label) {
                    Some(i) => i,
                    None => {
                        r.labels.push(label);
                        r.labels.len() - 1
                    }
                };
                let (start, end) = net_range(&net);
                raw.push(Range {
                    start,
                    end,
                    label: idx as u32,
                });
                good += 1;
            }
            if good == 0 && content_lines > 0 {
                return Err(DetectError::IntelEmpty {
                    key: KEY.into(),
                    path: path.clone(),
                    bad_lines: bad,
                });
            }
            r.entries += good;
            r.bad_lines += bad;
            r.stamps.push(stamp);
        }
        raw.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        for range in raw {
            match r.ranges.last_mut() {
                // Contained in or overlapping the previous range: extend it, keep its label.
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => r.ranges.push(range),
            }
        }
        Ok(r)
    }

    /// Re-reads the lists when any file changed (mtime or size) or disappeared.
    /// Returns whether a new table is in place. On error the old table stays.
    pub fn refresh(&mut self) -> Result<bool, DetectError> {
        let changed = self
            .stamps
            .iter()
            .any(|s| stamp(&s.path).map(|now| now != *s).unwrap_or(true));
        if !changed {
            return Ok(false);
        }
        let paths: Vec<PathBuf> = self.stamps.iter().map(|s| s.path.clone()).collect();
        let reloads = self.reloads;
        *self = Reputation::load(&paths)?;
        self.reloads = reloads + 1;
        Ok(true)
    }

    /// The label of the list entry holding `ip`, if any.
    pub fn lookup(&self, ip: IpAddr) -> Option<&str> {
        let key = to_u128(ip);
        let i = self.ranges.partition_point(|r| r.start <= key);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        (key <= r.end).then(|| self.labels[r.label as usize].as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// `{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}` → (cidr, sblid).
fn json_line(line: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let cidr = v.get("cidr")?.as_str()?.to_string();
    let id = v
        .get("sblid")
        .and_then(|x| x.as_str())
        .unwrap_or("")
        .to_string();
    Some((cidr, id))
}

fn stamp(path: &Path) -> Result<FileStamp, DetectError> {
    let meta = std::fs::metadata(path).map_err(|source| DetectError::IntelRead {
        key: KEY.into(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(FileStamp {
        path: path.to_path_buf(),
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

fn net_range(net: &IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn drop_style_lists_look_up_by_binary_search() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("drop.txt");
        std::fs::write(
            &a,
            "; Spamhaus DROP List 2026/11/21\n; Expires: ...\n1.10.16.0/20 ; SBL256894\n203.0.113.0/24 ; SBL1\n203.0.113.128/25 ; SBL2\n",
        )
        .unwrap();
        let b = dir.path().join("local.txt");
        std::fs::write(
            &b,
            "198.51.100.7\n2001:db8:bad::/48 ; SBL9\nnot-an-address\n",
        )
        .unwrap();
        let r = Reputation::load(&[a, b]).unwrap();
        assert_eq!(r.lookup(ip("1.10.20.1")), Some("SBL256894 (drop.txt)"));
        assert_eq!(r.lookup(ip("1.10.32.0")), None);
        assert_eq!(r.lookup(ip("1.10.15.255")), None);
        assert_eq!(
            r.lookup(ip("203.0.113.200")),
            Some("SBL1 (drop.txt)"),
            "contained range merged into its parent"
        );
        assert_eq!(r.lookup(ip("198.51.100.7")), Some("local.txt"));
        assert_eq!(r.lookup(ip("198.51.100.8")), None);
        assert_eq!(r.lookup(ip("2001:db8:bad:1::5")), Some("SBL9 (local.txt)"));
        assert_eq!(
            r.lookup(ip("::ffff:1.10.16.1")),
            Some("SBL256894 (drop.txt)")
        );
        assert_eq!(r.bad_lines, 1);
        assert_eq!(r.entries, 5);
    }

    #[test]
    fn spamhaus_json_lines_are_read_too() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("drop_v4.json");
        std::fs::write(
            &a,
            "{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\",\"rir\":\"apnic\"}\n{\"type\":\"metadata\",\"timestamp\":1763700000,\"size\":1,\"records\":1,\"copyright\":\"(c) 2025 The Spamhaus Project SLU\",\"terms\":\"https://www.spamhaus.org/drop/terms/\"}\n",
        )
        .unwrap();
        let r = Reputation::load(&[a]).unwrap();
        assert_eq!(r.lookup(ip("1.10.17.1")), Some("SBL256894 (drop_v4.json)"));
        assert_eq!((r.entries, r.bad_lines), (1, 0));
    }

    #[test]
    fn errors_name_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let e = Reputation::load(std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("intel.reputation_lists") && e.contains("nope.txt"),
            "{e}"
        );
        let junk = dir.path().join("junk.html");
        std::fs::write(&junk, "<html>\n<body>not a list</body>\n").unwrap();
        let e = Reputation::load(&[junk]).unwrap_err().to_string();
        assert!(
            e.contains("intel.reputation_lists") && e.contains("junk.html"),
            "{e}"
        );
    }

    #[test]
    fn refresh_reloads_changed_files_and_keeps_the_old_table_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("drop.txt");
        std::fs::write(&a, "192.0.2.0/24 ; SBL1\n").unwrap();
        let mut r = Reputation::load(std::slice::from_ref(&a)).unwrap();
        assert!(!r.refresh().unwrap(), "nothing changed");
        // Different size, so the change is seen even within one mtime tick.
        std::fs::write(&a, "198.51.100.0/24 ; SBL2\n192.0.2.0/25 ; SBL3\n").unwrap();
        assert!(r.refresh().unwrap());
        assert_eq!(r.reloads, 1);
        assert_eq!(
            r.lookup("198.51.100.1".parse().unwrap()),
            Some("SBL2 (drop.txt)")
        );
        assert_eq!(r.lookup("192.0.2.200".parse().unwrap()), None);
        std::fs::remove_file(&a).unwrap();
        assert!(r.refresh().is_err());
        assert_eq!(
            r.lookup("198.51.100.1".parse().unwrap()),
            Some("SBL2 (drop.txt)"),
            "old table kept"
        );
    }
}
