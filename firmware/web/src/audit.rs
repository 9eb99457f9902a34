//! 閲覧ログ: the audit log of the console. One JSON object a line in
//! `<data>/web/audit.jsonl`, append-only, each line chained to the one before it:
//!
//! `{"seq": n, "time", "user", "addr", "action", "detail", "prev": <hash of line n-1>,
//! "hash": sha256(prev-less-hash serialization)}`
//!
//! The hash covers the line's canonical JSON without its `hash` key (serde_json sorts keys),
//! and `prev` holds the previous line's hash (64 zeros for the first line), so an edited,
//! removed, reordered or inserted line breaks the chain at that line: [`verify`] says where.
//! Appends hold an exclusive `flock` on the file (the server and `kuroko user` both write)
//! and are fdatasynced before the action's answer goes out.

use serde_json::{Map, Value, json};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest detail text kept (a query can be 4 KiB; anything longer is cut and marked).
pub const MAX_DETAIL_CHARS: usize = 4096;

#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

/// Who did it and from where.
#[derive(Clone, Debug)]
pub struct Actor<'a> {
    pub user: &'a str,
    pub addr: String,
}

/// The result of checking the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub lines: u64,
    pub ok: bool,
    /// 1-based line number of the first broken line and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

fn line_hash(obj: &Map<String, Value>) -> String {
    let mut o = obj.clone();
    o.remove("hash");
    crate::users::sha256_hex(&serde_json::to_vec(&Value::Object(o)).expect("json"))
}

impl AuditLog {
    pub fn new(web_dir: &Path) -> AuditLog {
        AuditLog {
            path: web_dir.join("audit.jsonl"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event; returns once it is on disk.
    pub fn append(&self, who: &Actor<'_>, action: &str, detail: Value) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        let mut file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| std::io::Error::from(e))?;
        let (seq, prev) = last_link(&mut file)?;
        let detail = clip(detail);
        let mut obj = Map::new();
        obj.insert("seq".into(), json!(seq + 1));
        obj.insert(
            "time".into(),
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        obj.insert("user".into(), json!(who.user));
        obj.insert("addr".into(), json!(who.addr));
        obj.insert("action".into(), json!(action));
        obj.insert("detail".into(), detail);
        obj.insert("prev".into(), json!(prev));
        let h = line_hash(&obj);
        obj.insert("hash".into(), json!(h));
        let mut line = serde_json::to_vec(&Value::Object(obj)).expect("json");
        line.push(b'\n');
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Every entry, oldest first (unparsable lines are skipped here; [`verify`] reports them).
    pub fn entries(&self) -> std::io::Result<Vec<Value>> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for line in std::io::BufReader::new(f).lines() {
            if let Ok(v) = serde_json::from_str::<Value>(&line?) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Checks every line's hash and link.
    pub fn verify(&self) -> std::io::Result<Verdict> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Verdict {
                    lines: 0,
                    ok: true,
                    broken_line: None,
                    problem: None,
                });
            }
            Err(e) => return Err(e),
        };
        let mut prev = GENESIS.to_string();
        let mut n = 0u64;
        let broken = |n: u64, why: String| Verdict {
            lines: n,
            ok: false,
            broken_line: Some(n),
            problem: Some(why),
        };
        let mut reader = std::io::BufReader::new(f);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if reader.read_until(b'\n', &mut raw)? == 0 {
                break;
            }
            n += 1;
            if raw.last() != Some(&b'\n') {
                return Ok(broken(n, "the last line is cut short (torn write)".into()));
            }
            let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&raw) else {
                return Ok(broken(n, "not a JSON object".into()));
            };
            if obj.get("seq").and_then(Value::as_u64) != Some(n) {
                return Ok(broken(
                    n,
                    format!("sequence number is not {n} (a line was removed or inserted)"),
                ));
            }
            if obj.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
                return Ok(broken(n, "does not link to the line before it".into()));
            }
            let h = line_hash(&obj);
            if obj.get("hash").and_then(Value::as_str) != Some(h.as_str()) {
                return Ok(broken(
                    n,
                    "its hash does not match its content (the line was edited)".into(),
                ));
            }
            prev = h;
        }
        Ok(Verdict {
            lines: n,
            ok: true,
            broken_line: None,
            problem: None,
        })
    }
}

/// The sequence number and hash of the last line (0 and [`GENESIS`] for an empty file).
fn last_link(file: &mut std::fs::File) -> std::io::Result<(u64, String)> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok((0, GENESIS.into()));
    }
    // Lines are short (details are clipped), 64 KiB holds the last one with room to spare.
    let start = len.saturating_sub(64 << 10);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let text = String::from_utf8_lossy(&tail);
    let last = text
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or("");
    let v: Value = serde_json::from_str(last).map_err(|e| {
        std::io::Error::other(format!(
            "the audit log's last line is damaged ({e}); run `kuroko web audit-verify` and keep the file for the record"
        ))
    })?;
    match (
        v.get("seq").and_then(Value::as_u64),
        v.get("hash").and_then(Value::as_str),
    ) {
        (Some(s), Some(h)) => Ok((s, h.to_string())),
        _ => Err(std::io::Error::other(
            "the audit log's last line has no seq/hash",
        )),
    }
}

fn clip(v: Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > MAX_DETAIL_CHARS => {
            Value::String(s.chars().take(MAX_DETAIL_CHARS).collect::<String>() + "…[cut]")
        }
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, clip(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_verifies_and_detects_edit_removal_and_torn_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let log = AuditLog::new(tmp.path());
        let who = Actor {
            user: "ana",
            addr: "10.0.0.1".into(),
        };
        for i in 0..4 {
            log.append(&who, "search", json!({"query": format!("q{i}")}))
                .unwrap();
        }
        assert!(log.verify().unwrap().ok);
        assert_eq!(log.entries().unwrap().len(), 4);
        let text = std::fs::read_to_string(log.path()).unwrap();
        // Edit one line's content.
        std::fs::write(log.path(), text.replacen("q2", "q9", 1)).unwrap();
        let v = log.verify().unwrap();
        assert_eq!((v.ok, v.broken_line), (false, Some(3)), "{v:?}");
        // Remove a line.
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(
            log.path(),
            format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]),
        )
        .unwrap();
        assert_eq!(log.verify().unwrap().broken_line, Some(2));
        // Torn last line.
        std::fs::write(log.path(), &text[..text.len() - 5]).unwrap();
        assert_eq!(log.verify().unwrap().broken_line, Some(4));
        // Intact again, and appends continue the chain.
        std::fs::write(log.path(), &text).unwrap();
        log.append(&who, "logout", json!({})).unwrap();
        assert_eq!(
            log.verify().unwrap(),
            Verdict {
                lines: 5,
                ok: true,
                broken_line: None,
                problem: None
            }
        );
    }
}
