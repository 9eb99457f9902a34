//! The offline advisory list: per product the affected version ranges, the fixed
//! versions, CVE ids, severity and the distributions' own fixes.
//!
//! Shipped in `lists/advisories.toml` (dated, see its header); an intel pack replaces it
//! with an `advisories.toml` in one of the `[intel] category_dirs` (the first found wins,
//! like the category and brand lists), so a consultant brings a newer list without a
//! firmware update. A list that does not parse is an error naming the file, never a
//! silently empty list.

use super::{Distro, DistroName, Software, Verdict, Version};
use crate::error::DetectError;
use crate::intel::find_in_dirs;
use serde::Deserialize;
use std::path::{Path, PathBuf};

const SHIPPED: &str = include_str!("../../lists/advisories.toml");
/// File name looked for in `[intel] category_dirs`.
pub const FILE_NAME: &str = "advisories.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvisoryList {
    /// When the list was compiled (`YYYY-MM-DD`): the report states it, so a reader knows
    /// what the verdicts cannot know.
    pub list_date: String,
    #[serde(default)]
    pub advisory: Vec<Advisory>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advisory {
    /// Product id (see [`Software::product`]).
    pub product: String,
    pub cves: Vec<String>,
    /// One line: what the flaw is.
    pub title: String,
    /// `critical`, `high`, `medium`, `low`.
    pub severity: Severity,
    /// Publication date of the advisory (`YYYY-MM-DD`).
    pub published: String,
    /// Where it was taken from.
    pub source: String,
    /// Affected ranges (one per maintained branch).
    pub affected: Vec<Range>,
    /// Distribution packages that carry the fix although their upstream version is in an
    /// affected range.
    #[serde(default)]
    pub distro_fixed: Vec<DistroFix>,
    /// False when the fix is an OS update or a setting a banner never shows (IIS,
    /// Oracle TNS): a version in range is then `unknown`, not `vulnerable`.
    #[serde(default = "yes")]
    pub fix_in_version: bool,
}

/// Products whose distribution packages announce the bare upstream version, with no
/// distribution or package revision in the banner (Debian's and Ubuntu's Exim, nginx,
/// vsftpd, ProFTPD…; unlike OpenSSH's `Debian-2+deb12u3`). For these a version in an
/// affected range that a distribution is known to ship with the fix ([`DistroFix`]) is
/// `unknown`, not `vulnerable`.
pub const UNTAGGED_BANNERS: &[&str] = &[
    "exim",
    "nginx",
    "vsftpd",
    "proftpd",
    "pure-ftpd",
    "postfix",
    "sendmail",
    "dovecot",
];

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// `from <= v < fixed`; no `from`: every older version. A branch that never got a fix
/// has `end` (exclusive) instead of `fixed`: upgrade to another branch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default)]
    pub from: Option<Version>,
    #[serde(default)]
    pub fixed: Option<Version>,
    #[serde(default)]
    pub end: Option<Version>,
}

impl Range {
    fn contains(&self, v: &Version) -> bool {
        self.from.as_ref().is_none_or(|f| v >= f)
            && self
                .fixed
                .as_ref()
                .or(self.end.as_ref())
                .is_none_or(|x| v < x)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistroFix {
    pub distro: DistroName,
    /// The upstream version the distribution ships (`9.2p1`).
    pub upstream: Version,
    /// The first package revision with the fix (`2+deb12u3`).
    pub revision: Version,
}

/// One advisory's verdict on one piece of software, with the reason in words.
#[derive(Debug, Clone)]
pub struct Judgement<'a> {
    pub advisory: &'a Advisory,
    pub verdict: Verdict,
    pub reason: String,
}

impl Advisory {
    /// `CVE-2024-6387` or `CVE-2021-41773, CVE-2021-42013`.
    pub fn cve_list(&self) -> String {
        self.cves.join(", ")
    }

    /// The fixed versions of the branches, `9.8p1` or `1.22.1 / 1.23.2`.
    pub fn fixed_list(&self) -> String {
        let f: Vec<&str> = self
            .affected
            .iter()
            .filter_map(|r| r.fixed.as_ref().map(|v| v.as_str()))
            .collect();
        if f.is_empty() {
            "none (upgrade to a supported release)".into()
        } else {
            f.join(" / ")
        }
    }

    pub fn judge(&self, sw: &Software) -> Judgement<'_> {
        let j = |verdict, reason: String| Judgement {
            advisory: self,
            verdict,
            reason,
        };
        let Some(v) = &sw.version else {
            return j(
                Verdict::Unknown,
                format!("{} announces no version", sw.product),
            );
        };
        if !self.affected.iter().any(|r| r.contains(v)) {
            return j(
                Verdict::Fixed,
                format!("{} {v} is outside the affected versions", sw.product),
            );
        }
        if let Some(d) = &sw.distro {
            return self.judge_distro(v, d, j);
        }
        // A distribution whose package of this product announces the bare upstream version
        // and is known to carry the fix at this very version: the banner cannot tell the
        // patched package from an upstream build.
        if UNTAGGED_BANNERS.contains(&sw.product)
            && let Some(fix) = self.distro_fixed.iter().find(|f| f.upstream == *v)
        {
            let label = fix.distro.label();
            return j(
                Verdict::Unknown,
                format!(
                    "{} {v} is in the affected versions, but {label}'s package {v}-{} and later carry the fix and announce the same bare {v}: check the package on the host",
                    sw.product, fix.revision
                ),
            );
        }
        if !self.fix_in_version {
            return j(
                Verdict::Unknown,
                format!(
                    "{} {v} is in the affected versions, but the fix is an update or setting the banner does not show",
                    sw.product
                ),
            );
        }
        j(
            Verdict::Vulnerable,
            format!(
                "{} {v} < {} (upstream version; no distribution package named)",
                sw.product,
                self.fixed_list()
            ),
        )
    }

    fn judge_distro<'a>(
        &'a self,
        v: &Version,
        d: &Distro,
        j: impl Fn(Verdict, String) -> Judgement<'a>,
    ) -> Judgement<'a> {
        let label = d.name.label();
        let Some(rev) = &d.revision else {
            return j(
                Verdict::Unknown,
                format!(
                    "{v} is a {label} package without its revision in the banner; {label} may have backported the fix"
                ),
            );
        };
        let Some(fix) = self
            .distro_fixed
            .iter()
            .find(|f| f.distro == d.name && f.upstream == *v)
        else {
            return j(
                Verdict::Unknown,
                format!(
                    "{label} package {v}-{rev}: the list knows no {label} fix for {v}; {label} may have backported it"
                ),
            );
        };
        if *rev >= fix.revision {
            j(
                Verdict::Fixed,
                format!(
                    "{label} package {v}-{rev} carries the fix (from {v}-{})",
                    fix.revision
                ),
            )
        } else {
            j(
                Verdict::Vulnerable,
                format!(
                    "{label} package {v}-{rev} is older than {label}'s fix {v}-{}",
                    fix.revision
                ),
            )
        }
    }
}

impl AdvisoryList {
    /// The shipped list (checked by a test, so it always parses).
    pub fn shipped() -> AdvisoryList {
        AdvisoryList::parse(SHIPPED).unwrap_or(AdvisoryList {
            list_date: String::new(),
            advisory: Vec::new(),
        })
    }

    pub fn parse(text: &str) -> Result<AdvisoryList, String> {
        let list: AdvisoryList = toml::from_str(text).map_err(|e| e.to_string())?;
        if list.advisory.is_empty() {
            return Err("holds no [[advisory]]".into());
        }
        for a in &list.advisory {
            if a.affected.is_empty() {
                return Err(format!(
                    "advisory {} ({}) has no affected range",
                    a.cve_list(),
                    a.product
                ));
            }
            if let Some(r) = a
                .affected
                .iter()
                .find(|r| r.fixed.is_none() == r.end.is_none())
            {
                return Err(format!(
                    "advisory {} ({}): a range needs exactly one of `fixed` and `end` (from {:?})",
                    a.cve_list(),
                    a.product,
                    r.from.as_ref().map(|v| v.as_str())
                ));
            }
        }
        Ok(list)
    }

    /// `advisories.toml` from the first of `dirs` that has one, else the shipped list.
    pub fn load(dirs: &[PathBuf]) -> Result<AdvisoryList, DetectError> {
        match find_in_dirs(dirs, FILE_NAME) {
            Some(path) => AdvisoryList::load_file(&path),
            None => Ok(AdvisoryList::shipped()),
        }
    }

    fn load_file(path: &Path) -> Result<AdvisoryList, DetectError> {
        let text = std::fs::read_to_string(path).map_err(|source| DetectError::IntelRead {
            key: "intel.category_dirs".into(),
            path: path.to_path_buf(),
            source,
        })?;
        AdvisoryList::parse(&text).map_err(|m| DetectError::Config {
            key: "intel.category_dirs".into(),
            message: format!("{}: {m}", path.display()),
        })
    }

    /// Every advisory of the software's product with its verdict, most severe first.
    pub fn judge(&self, sw: &Software) -> Vec<Judgement<'_>> {
        let mut out: Vec<Judgement<'_>> = self
            .advisory
            .iter()
            .filter(|a| a.product == sw.product)
            .map(|a| a.judge(sw))
            .collect();
        out.sort_by_key(|j| std::cmp::Reverse(j.advisory.severity));
        out
    }
}
