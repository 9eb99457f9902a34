//! Feed file formats as their publishers write them, recognised by their header comments:
//!
//! | format | publisher's file | indicators |
//! | --- | --- | --- |
//! | `sslbl` | abuse.ch SSLBL `sslblacklist.csv` (`# Listingdate,SHA1,Listingreason`) | cert SHA-1 |
//! | `sslbl_ja3` | abuse.ch SSLBL `ja3_fingerprints.csv` (`# ja3_md5,Firstseen,Lastseen,Listingreason`) | JA3 |
//! | `feodo` | abuse.ch Feodo Tracker `ipblocklist.csv` (`# first_seen_utc,dst_ip,dst_port,…,malware`) | address |
//! | `urlhaus` | abuse.ch URLhaus `csv.txt` (`# id,dateadded,url,url_status,…`) | URL |
//! | `threatfox` | abuse.ch ThreatFox `full.csv` (`# "first_seen_utc","ioc_id","ioc_value","ioc_type",…`) | addr:port, domain, URL, MD5/SHA-1/SHA-256 |
//! | `spamhaus_drop`, `spamhaus_edrop`, `spamhaus_dropv6` | Spamhaus `drop.txt`, `edrop.txt`, `dropv6.txt` (`1.10.16.0/20 ; SBL256894`) or their `.json` lines | CIDR |
//! | `zeek` | Zeek intel framework file (`#fields` + tab-separated `indicator`, `indicator_type`, `meta.*`) | every kind Zeek has that Kuroko matches |
//! | `plain` | one indicator a line, its kind declared in the pack's `pack.toml` | the declared kind |
//!
//! Every line that is not a comment, a header or an indicator is a malformed line: counted
//! and reported with its line number (the first `MAX_REPORTED_BAD` of a file by number).
//! Indicator types the matcher has no use for (ThreatFox `sha3_384_hash`, Zeek
//! `Intel::EMAIL`, …) are counted as `unsupported`, not as malformed.

use super::indicator::{Kind, clip, normalize};

/// Malformed lines reported by number per file (all are counted).
pub const MAX_REPORTED_BAD: usize = 20;
/// Longest line considered (the longest real feed lines are URLhaus URLs).
pub const MAX_LINE: usize = 16 * 1024;

/// A file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Sslbl,
    SslblJa3,
    Feodo,
    Urlhaus,
    Threatfox,
    SpamhausDrop,
    SpamhausEdrop,
    SpamhausDropv6,
    Zeek,
    Plain(Kind),
}

impl Format {
    /// The feed name hits carry (what `intel:NAME` matches), except for Zeek and plain
    /// files, whose feed is the file's stem or the name `pack.toml` gives.
    pub fn feed(self) -> Option<&'static str> {
        Some(match self {
            Format::Sslbl => "sslbl",
            Format::SslblJa3 => "sslbl_ja3",
            Format::Feodo => "feodo",
            Format::Urlhaus => "urlhaus",
            Format::Threatfox => "threatfox",
            Format::SpamhausDrop => "spamhaus_drop",
            Format::SpamhausEdrop => "spamhaus_edrop",
            Format::SpamhausDropv6 => "spamhaus_dropv6",
            Format::Zeek | Format::Plain(_) => return None,
        })
    }

    pub fn name(self) -> String {
        match self {
            Format::Zeek => "zeek".into(),
            Format::Plain(k) => format!("plain:{k}"),
            f => f.feed().unwrap_or_default().into(),
        }
    }

    /// `pack.toml`'s `format = "…"` (plain needs `kind` too).
    pub fn parse(name: &str, kind: Option<Kind>) -> Option<Format> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "sslbl" => Format::Sslbl,
            "sslbl_ja3" | "ja3" => Format::SslblJa3,
            "feodo" => Format::Feodo,
            "urlhaus" => Format::Urlhaus,
            "threatfox" => Format::Threatfox,
            "spamhaus_drop" | "drop" => Format::SpamhausDrop,
            "spamhaus_edrop" | "edrop" => Format::SpamhausEdrop,
            "spamhaus_dropv6" | "dropv6" => Format::SpamhausDropv6,
            "zeek" => Format::Zeek,
            "plain" => Format::Plain(kind?),
            _ => return None,
        })
    }
}

/// One indicator read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub kind: Kind,
    /// Normal form (`indicator::normalize`).
    pub value: String,
    /// What the feed says about it (malware family, SBL id, reason), may be empty.
    pub label: String,
    /// 1-based line number.
    pub line: usize,
}

/// What a file held.
#[derive(Clone, Debug, Default)]
pub struct ParsedFile {
    pub indicators: Vec<Parsed>,
    /// Malformed lines, all counted.
    pub bad_lines: u64,
    /// The first of them: (line number, why).
    pub bad: Vec<(usize, String)>,
    /// Indicators of types Kuroko does not match.
    pub unsupported: u64,
    /// The file's own date from its header (`Last updated:`, `Last-Modified:`), if any.
    pub date: Option<String>,
}

impl ParsedFile {
    fn bad(&mut self, line: usize, why: String) {
        self.bad_lines += 1;
        if self.bad.len() < MAX_REPORTED_BAD {
            self.bad.push((line, why));
        }
    }
}

/// Recognises a publisher's format from the file's first comment lines and its name.
/// `None` for a file that must be declared in `pack.toml` (plain lists).
pub fn detect(file_name: &str, text: &str) -> Option<Format> {
    let name = file_name.to_ascii_lowercase();
    let head: Vec<&str> = text.lines().take(40).collect();
    // Comments, and a header line some files write without `#`.
    let comments: Vec<String> = head
        .iter()
        .filter(|l| l.starts_with('#') || l.starts_with(';') || is_csv_header(l))
        .map(|l| l.to_ascii_lowercase())
        .collect();
    let any = |needle: &str| comments.iter().any(|c| c.contains(needle));
    if head.iter().any(|l| l.starts_with("#fields\t")) {
        return Some(Format::Zeek);
    }
    if any("ioc_value") && any("ioc_type") {
        return Some(Format::Threatfox);
    }
    if any("ja3_md5") {
        return Some(Format::SslblJa3);
    }
    if any("listingdate") && any("sha1") {
        return Some(Format::Sslbl);
    }
    if any("dst_ip") {
        return Some(Format::Feodo);
    }
    if any("dateadded") && any("url") {
        return Some(Format::Urlhaus);
    }
    let spamhaus =
        any("spamhaus") || head.iter().any(|l| l.starts_with("{\"cidr\"")) || name.contains("drop");
    if spamhaus {
        return Some(
            if any("dropv6") || name.contains("dropv6") || name.contains("drop_v6") {
                Format::SpamhausDropv6
            } else if any("edrop") || name.contains("edrop") {
                Format::SpamhausEdrop
            } else {
                Format::SpamhausDrop
            },
        );
    }
    None
}

/// Parses a whole file in `format`.
pub fn parse(format: Format, text: &str) -> ParsedFile {
    let mut out = ParsedFile::default();
    let mut columns: Vec<String> = Vec::new();
    let mut zeek_sep = '\t';
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let l = line.trim_end_matches('\r');
        let trimmed = l.trim();
        if trimmed.is_empty() {
            continue;
        }
        if l.len() > MAX_LINE {
            out.bad(n, format!("line longer than {MAX_LINE} bytes"));
            continue;
        }
        if let Some(c) = trimmed
            .strip_prefix('#')
            .or_else(|| trimmed.strip_prefix(';'))
        {
            if out.date.is_none() {
                out.date = header_date(c);
            }
            if format == Format::Zeek {
                if let Some(f) = l.strip_prefix("#fields") {
                    columns = f
                        .split(zeek_sep)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                } else if let Some(s) = l.strip_prefix("#separator ") {
                    if s.trim() == "\\x09" {
                        zeek_sep = '\t';
                    } else if let Some(ch) = s.chars().next() {
                        zeek_sep = ch;
                    }
                }
            } else if is_csv_header(c) {
                columns = split_csv(c)
                    .into_iter()
                    .map(|s| s.to_ascii_lowercase())
                    .collect();
            }
            continue;
        }
        if format != Format::Zeek && !matches!(format, Format::Plain(_)) && is_csv_header(trimmed) {
            columns = split_csv(trimmed)
                .into_iter()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            continue;
        }
        match format {
            Format::Zeek => zeek_line(&mut out, n, l, zeek_sep, &columns),
            Format::SpamhausDrop | Format::SpamhausEdrop | Format::SpamhausDropv6 => {
                spamhaus_line(&mut out, n, trimmed)
            }
            Format::Plain(kind) => {
                let v = trimmed
                    .split_once(" #")
                    .or_else(|| trimmed.split_once(" ;"))
                    .or_else(|| trimmed.split_once('\t'))
                    .map(|(v, _)| v)
                    .unwrap_or(trimmed);
                push(&mut out, n, kind, v, String::new());
            }
            _ => csv_line(&mut out, format, n, trimmed, &columns),
        }
    }
    out
}

fn push(out: &mut ParsedFile, n: usize, kind: Kind, raw: &str, label: String) {
    match normalize(kind, raw) {
        Ok(value) => out.indicators.push(Parsed {
            kind,
            value,
            label: clip(&label),
            line: n,
        }),
        Err(why) => out.bad(n, why),
    }
}

fn header_date(comment: &str) -> Option<String> {
    let c = comment.trim();
    let lower = c.to_ascii_lowercase();
    for key in [
        "last updated:",
        "last-modified:",
        "last modified:",
        "generated on",
        "last updated ",
    ] {
        if let Some(i) = lower.find(key) {
            let v = c[i + key.len()..]
                .trim()
                .trim_start_matches(':')
                .trim_end_matches(['#', ' '])
                .trim();
            if !v.is_empty() {
                return Some(clip(v));
            }
        }
    }
    None
}

/// A comment that names columns (`first_seen_utc,dst_ip,…`, `"ioc_id","ioc_value",…`).
fn is_csv_header(c: &str) -> bool {
    let l = c.to_ascii_lowercase();
    l.contains(',')
        && [
            "dst_ip",
            "ioc_value",
            "ja3_md5",
            "listingdate",
            "dateadded",
            "url_status",
        ]
        .iter()
        .any(|k| l.contains(k))
}

/// One CSV line: comma-separated, fields optionally double-quoted (`""` inside is a
/// quote), space around fields ignored (ThreatFox writes `"a", "b"`).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && cur.trim().is_empty() && !was_quoted {
            cur.clear();
            quoted = true;
            was_quoted = true;
        } else if c == ',' {
            out.push(if was_quoted {
                std::mem::take(&mut cur)
            } else {
                cur.trim().to_string()
            });
            cur.clear();
            was_quoted = false;
        } else if !(was_quoted && c.is_whitespace()) {
            cur.push(c);
        }
    }
    out.push(if was_quoted {
        cur
    } else {
        cur.trim().to_string()
    });
    out
}

fn col(columns: &[String], name: &str, default: usize) -> usize {
    columns.iter().position(|c| c == name).unwrap_or(default)
}

fn csv_line(out: &mut ParsedFile, format: Format, n: usize, line: &str, columns: &[String]) {
    let f = split_csv(line);
    let get = |i: usize| f.get(i).map(String::as_str);
    let field = |name: &str, default: usize| get(col(columns, name, default));
    let (kind, value, label) = match format {
        Format::Sslbl => (Kind::CertSha1, field("sha1", 1), field("listingreason", 2)),
        Format::SslblJa3 => (Kind::Ja3, field("ja3_md5", 0), field("listingreason", 3)),
        Format::Feodo => (
            Kind::Address,
            field("dst_ip", 1),
            field("malware", f.len().saturating_sub(1)),
        ),
        Format::Urlhaus => (Kind::Url, field("url", 2), field("threat", 5)),
        Format::Threatfox => {
            let ty = field("ioc_type", 3).unwrap_or("").to_ascii_lowercase();
            let kind = match ty.as_str() {
                "ip:port" => Kind::AddrPort,
                "domain" => Kind::Domain,
                "url" => Kind::Url,
                "md5_hash" => Kind::FileMd5,
                "sha1_hash" => Kind::FileSha1,
                "sha256_hash" => Kind::FileSha256,
                "" => {
                    out.bad(n, "no ioc_type column".into());
                    return;
                }
                _ => {
                    out.unsupported += 1;
                    return;
                }
            };
            (kind, field("ioc_value", 2), field("malware_printable", 7))
        }
        _ => unreachable!("csv_line is only called for the CSV formats"),
    };
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        out.bad(
            n,
            format!("fewer columns than the header names ({} found)", f.len()),
        );
        return;
    };
    push(out, n, kind, value, label.unwrap_or("").to_string());
}

fn spamhaus_line(out: &mut ParsedFile, n: usize, line: &str) {
    if line.starts_with('{') {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            out.bad(n, "not a JSON object".into());
            return;
        };
        match v.get("cidr").and_then(|c| c.as_str()) {
            Some(c) => {
                let id = v
                    .get("sblid")
                    .and_then(|s| s.as_str())
                    .unwrap_or("")
                    .to_string();
                push(out, n, Kind::Cidr, c, id);
            }
            // `{"type":"metadata",…}` closes the JSON files.
            None if v.get("type").is_some() => {}
            None => out.bad(n, "JSON line without `cidr`".into()),
        }
        return;
    }
    let (net, id) = match line.split_once(';') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (line, ""),
    };
    push(out, n, Kind::Cidr, net, id.to_string());
}

fn zeek_line(out: &mut ParsedFile, n: usize, line: &str, sep: char, columns: &[String]) {
    if columns.is_empty() {
        out.bad(n, "data before the `#fields` line".into());
        return;
    }
    let f: Vec<&str> = line.split(sep).collect();
    let get = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| f.get(i).copied())
    };
    let (Some(ind), Some(ty)) = (get("indicator"), get("indicator_type")) else {
        out.bad(
            n,
            format!("{} fields, `#fields` names {}", f.len(), columns.len()),
        );
        return;
    };
    let by_len = |v: &str, k1: Kind, k256: Kind, kmd5: Option<Kind>| match v.trim().len() {
        40 => Some(k1),
        64 => Some(k256),
        32 => kmd5,
        _ => None,
    };
    let kind = match ty.trim() {
        "Intel::ADDR" => Some(Kind::Address),
        "Intel::SUBNET" => Some(Kind::Cidr),
        "Intel::DOMAIN" => Some(Kind::Domain),
        "Intel::URL" => Some(Kind::Url),
        "Intel::CERT_HASH" => by_len(ind, Kind::CertSha1, Kind::CertSha256, None),
        "Intel::FILE_HASH" => by_len(ind, Kind::FileSha1, Kind::FileSha256, Some(Kind::FileMd5)),
        "Intel::JA3" => Some(Kind::Ja3),
        "Intel::JA4" => Some(Kind::Ja4),
        "Intel::SOFTWARE" | "Intel::EMAIL" | "Intel::USER_NAME" | "Intel::PUBKEY_HASH"
        | "Intel::FILE_NAME" => {
            out.unsupported += 1;
            return;
        }
        t => {
            out.bad(n, format!("`{}` is not a Zeek indicator type", clip(t)));
            return;
        }
    };
    let Some(kind) = kind else {
        out.bad(
            n,
            format!("`{}` is not a hash Kuroko knows by its length", clip(ind)),
        );
        return;
    };
    let label = get("meta.desc")
        .or(get("meta.source"))
        .filter(|v| *v != "-")
        .unwrap_or("")
        .to_string();
    push(out, n, kind, ind, label);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_quotes_and_threatfox_spaces() {
        assert_eq!(split_csv(r#""a", "b,c", "d""e""#), vec!["a", "b,c", "d\"e"]);
        assert_eq!(split_csv("x, y ,z"), vec!["x", "y", "z"]);
    }

    #[test]
    fn threatfox_types() {
        let t = "################################################################\n\
# ThreatFox IOCs: full data dump (CSV)                         #\n\
# Last updated: 2026-12-06 10:00:00 UTC                       #\n\
#\n\
# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\
\"2026-12-01 00:00:00\", \"1\", \"198.51.100.7:8443\", \"ip:port\", \"botnet_cc\", \"win.cobalt_strike\", \"\", \"Cobalt Strike\", \"\", \"100\", \"\", \"\", \"0\", \"x\"\n\
\"2026-12-01 00:00:00\", \"2\", \"aaaa\", \"sha3_384_hash\", \"payload\", \"\", \"\", \"X\", \"\", \"50\", \"\", \"\", \"0\", \"x\"\n\
\"2026-12-01 00:00:00\", \"3\", \"not a domain\", \"domain\", \"payload\", \"\", \"\", \"X\", \"\", \"50\", \"\", \"\", \"0\", \"x\"\n";
        let f = detect("full.csv", t).unwrap();
        assert_eq!(f, Format::Threatfox);
        let p = parse(f, t);
        assert_eq!(p.indicators.len(), 1);
        assert_eq!(p.indicators[0].value, "198.51.100.7:8443");
        assert_eq!(p.indicators[0].label, "Cobalt Strike");
        assert_eq!((p.unsupported, p.bad_lines), (1, 1));
        assert_eq!(p.bad[0].0, 8);
        assert_eq!(p.date.as_deref(), Some("2026-12-06 10:00:00 UTC"));
    }
}
