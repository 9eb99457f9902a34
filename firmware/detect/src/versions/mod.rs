//! Software versions as servers announce them, and whether they are known to be vulnerable.
//!
//! One machinery for every rule and view that judges software: `openssh_outdated`,
//! `vulnerable_software` and the asset inventory all go through [`identify`] (banner →
//! product, upstream version, distribution package) and [`Version`] ordering, and the
//! advisory list ([`advisories`]) turns a product + version into verdicts.
//!
//! Distributions backport fixes without changing the upstream version
//! (`OpenSSH_9.2p1 Debian-2+deb12u3` is fixed for CVE-2024-6387 although 9.2p1 < 9.8p1).
//! So a verdict is only `Vulnerable` when the evidence says so: an upstream build whose
//! version is in an affected range, or a distribution package whose revision is older
//! than the distribution's fix. When the banner names a distribution but not the package
//! revision (`Apache/2.4.57 (Debian)`), or the list knows no fix of that distribution, the
//! verdict is `Unknown`, with the reason in words. Nothing is guessed.

pub mod advisories;

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A version string compared piece by piece: runs of digits numerically, runs of letters
/// alphabetically, separators (`.`, `-`, `_`, `+`, `~`, `:`) only split. A version that is
/// a prefix of another is older (`9.8` < `9.8p1`, `1.3.5` < `1.3.5a`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version {
    text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Num(u64),
    Alpha(String),
}

impl Ord for Part {
    fn cmp(&self, other: &Part) -> Ordering {
        match (self, other) {
            (Part::Num(a), Part::Num(b)) => a.cmp(b),
            (Part::Alpha(a), Part::Alpha(b)) => a.cmp(b),
            (Part::Alpha(_), Part::Num(_)) => Ordering::Less,
            (Part::Num(_), Part::Alpha(_)) => Ordering::Greater,
        }
    }
}
impl PartialOrd for Part {
    fn partial_cmp(&self, other: &Part) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Most pieces a version may have (a longer one is not a version).
const MAX_PARTS: usize = 16;

impl Version {
    /// `9.8p1`, `2.4.58`, `1.3.8b`, `2+deb12u3`, `19.0.0.0.0`. `None` when it holds no
    /// digit, starts with a letter, or has characters other than letters, digits and
    /// separators.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        if !t.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let mut parts = Vec::new();
        let mut rest = t;
        while !rest.is_empty() {
            let c = rest.chars().next()?;
            if matches!(c, '.' | '-' | '_' | '+' | '~' | ':') {
                rest = &rest[1..];
                continue;
            }
            let end = if c.is_ascii_digit() {
                rest.find(|c: char| !c.is_ascii_digit())
            } else if c.is_ascii_alphabetic() {
                rest.find(|c: char| !c.is_ascii_alphabetic())
            } else {
                return None;
            }
            .unwrap_or(rest.len());
            let piece = &rest[..end];
            parts.push(if c.is_ascii_digit() {
                Part::Num(piece.parse().ok()?)
            } else {
                Part::Alpha(piece.to_ascii_lowercase())
            });
            if parts.len() > MAX_PARTS {
                return None;
            }
            rest = &rest[end..];
        }
        Some(Version {
            text: t.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}
impl TryFrom<String> for Version {
    type Error = String;
    fn try_from(s: String) -> Result<Version, String> {
        Version::parse(&s).ok_or_else(|| format!("`{s}` is not a version (e.g. 2.4.58, 9.8p1)"))
    }
}
impl From<Version> for String {
    fn from(v: Version) -> String {
        v.text
    }
}

/// The distribution family a package comes from, as the banner says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistroName {
    Debian,
    Ubuntu,
    /// Red Hat Enterprise Linux and its rebuilds (CentOS, Rocky, AlmaLinux, Oracle Linux).
    Rhel,
}

impl DistroName {
    pub fn as_str(self) -> &'static str {
        match self {
            DistroName::Debian => "debian",
            DistroName::Ubuntu => "ubuntu",
            DistroName::Rhel => "rhel",
        }
    }
    fn label(self) -> &'static str {
        match self {
            DistroName::Debian => "Debian",
            DistroName::Ubuntu => "Ubuntu",
            DistroName::Rhel => "Red Hat",
        }
    }
}

/// A distribution package: the family, and the package revision when the banner shows it
/// (`2+deb12u3`, `3ubuntu0.10`, `19.el8_8`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distro {
    pub name: DistroName,
    pub revision: Option<Version>,
}

/// Software identified in a banner or header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Software {
    /// Product id as in the advisory list: `openssh`, `apache_httpd`, `nginx`, `iis`,
    /// `vsftpd`, `proftpd`, `pure-ftpd`, `exim`, `postfix`, `sendmail`, `dovecot`,
    /// `oracle_tns`, `fortios`.
    pub product: &'static str,
    /// Upstream version; `None` when the banner names the product only.
    pub version: Option<Version>,
    pub distro: Option<Distro>,
}

/// Products recognised in banners: the marker that names the product and how the version
/// follows it (`/`, a space, `_`, or `: Version `).
const PRODUCTS: &[(&str, &str)] = &[
    ("OpenSSH_for_Windows_", "openssh"),
    ("OpenSSH_", "openssh"),
    ("Microsoft-IIS/", "iis"),
    ("Apache/", "apache_httpd"),
    ("nginx/", "nginx"),
    ("vsFTPd ", "vsftpd"),
    ("ProFTPD ", "proftpd"),
    ("Pure-FTPd", "pure-ftpd"),
    ("Exim ", "exim"),
    ("Postfix", "postfix"),
    ("Sendmail ", "sendmail"),
    ("Dovecot", "dovecot"),
    ("TNSLSNR for ", "oracle_tns"),
    // The inventory's fact for a listener's VSNNUM (`assets::TNS_FACT_PREFIX`).
    ("Oracle TNS listener ", "oracle_tns"),
    ("FortiOS v", "fortios"),
    ("FortiOS ", "fortios"),
    ("Apache", "apache_httpd"),
    ("nginx", "nginx"),
];

/// Longest banner looked at.
const MAX_BANNER: usize = 512;

/// The product, version and distribution package a banner announces: an SSH
/// identification line, an HTTP `Server` header, an FTP/SMTP/POP3/IMAP greeting, a TNS
/// listener version string. `None` for software the list does not know.
pub fn identify(banner: &str) -> Option<Software> {
    let mut end = banner.len().min(MAX_BANNER);
    while !banner.is_char_boundary(end) {
        end -= 1;
    }
    let banner = &banner[..end];
    let (at, marker, product) = PRODUCTS
        .iter()
        .find_map(|(m, p)| find_marker(banner, m).map(|i| (i, *m, *p)))?;
    let mut rest = &banner[at + marker.len()..];
    if product == "oracle_tns" {
        // `TNSLSNR for Linux: Version 19.0.0.0.0 - Production`,
        // `Oracle TNS listener Version 11.2.0.2.0`
        rest = rest.find("Version ").map(|i| &rest[i + 8..]).unwrap_or("");
    }
    let token_end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ';' | ',' | '['))
        .unwrap_or(rest.len());
    let token = &rest[..token_end];
    let after = &rest[token_end..];
    // `8.0p1-19.el8_8`: the upstream version and a Red Hat revision in one token.
    let (upstream, rh_rev) = match token.find(".el") {
        Some(i) if token[..i].contains('-') => {
            let dash = token[..i].rfind('-').unwrap_or(i);
            (&token[..dash], Some(&token[dash + 1..]))
        }
        _ => (token, None),
    };
    // Sendmail announces `8.15.2/8.15.2` (binary/config version).
    let upstream = upstream.split('/').next().unwrap_or(upstream);
    let version = Version::parse(upstream);
    let distro = match rh_rev {
        Some(r) => Some(Distro {
            name: DistroName::Rhel,
            revision: Version::parse(r),
        }),
        None => distro_in(if version.is_some() { after } else { rest }),
    };
    Some(Software {
        product,
        version,
        distro,
    })
}

/// Where `marker` stands in `banner` as a word of its own: a marker ending in a letter
/// must not run on into a longer name (`Apache-Coyote/1.1` is Tomcat, not Apache httpd).
fn find_marker(banner: &str, marker: &str) -> Option<usize> {
    let open_ended = marker.ends_with(|c: char| c.is_ascii_alphanumeric()) && marker != "FortiOS v";
    banner.match_indices(marker).map(|(i, _)| i).find(|&i| {
        !open_ended
            || banner[i + marker.len()..]
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | ')' | ';' | ',' | '.'))
    })
}

/// The distribution named after the version: `Debian-2+deb12u3` / `Ubuntu-3ubuntu0.10`
/// (SSH, with the package revision), `(Debian)`, `(Ubuntu)`, `(Red Hat Enterprise
/// Linux)`, `(CentOS)`, `(Rocky Linux)`, `(AlmaLinux)`, `(Debian/GNU)` (no revision).
fn distro_in(after: &str) -> Option<Distro> {
    let t = after.trim_start();
    for (prefix, name) in [
        ("Debian-", DistroName::Debian),
        ("Raspbian-", DistroName::Debian),
        ("Ubuntu-", DistroName::Ubuntu),
    ] {
        if let Some(r) = t.strip_prefix(prefix) {
            let rev = r.split_whitespace().next().unwrap_or("");
            return Some(Distro {
                name,
                revision: Version::parse(rev),
            });
        }
    }
    let lower = after.to_ascii_lowercase();
    let name = if lower.contains("(debian") || lower.contains("(raspbian") {
        DistroName::Debian
    } else if lower.contains("(ubuntu") {
        DistroName::Ubuntu
    } else if [
        "(red hat",
        "(centos",
        "(rocky",
        "(almalinux",
        "(oracle linux",
        "(rhel",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        DistroName::Rhel
    } else {
        return None;
    };
    Some(Distro {
        name,
        revision: None,
    })
}

/// What the advisory list says about one piece of software for one advisory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The evidence shows a version with the flaw.
    Vulnerable,
    /// The evidence shows a version without it (fixed, or older than the flaw).
    Fixed,
    /// The evidence cannot tell (no version, a distribution package without revision, a
    /// fix that is an OS update or a setting the banner does not show).
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Vulnerable => "vulnerable",
            Verdict::Fixed => "fixed",
            Verdict::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Software {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.product)?;
        if let Some(v) = &self.version {
            write!(f, " {v}")?;
        }
        if let Some(d) = &self.distro {
            write!(f, " ({}", d.name.label())?;
            if let Some(r) = &d.revision {
                write!(f, " {r}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
