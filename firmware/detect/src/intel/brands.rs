//! Brands that phishing mail impersonates: the names a display name may show and the
//! domains the brand really uses. Shipped in `lists/brands.txt`, replaceable by
//! `brands.txt` in `[intel] category_dirs`; the site's own domains can be added as one
//! more brand (so `kuroko-corp.co.jp` lookalikes are caught too).

use super::find_in_dirs;
use crate::error::DetectError;
use crate::text::domain::{is_same_or_subdomain, registrable, skeleton};
use std::path::PathBuf;

const SHIPPED: &str = include_str!("../../lists/brands.txt");

/// Shortest brand label compared by edit distance or containment; shorter ones (`au`,
/// `jcb`) match too many unrelated names.
pub const MIN_FUZZY_LABEL: usize = 5;

#[derive(Debug, Clone)]
pub struct Brand {
    /// Display names, lower case.
    pub names: Vec<String>,
    /// Registrable domains, lower case.
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Brands {
    pub brands: Vec<Brand>,
    /// Brand domains long enough for fuzzy comparison, with their first label and its
    /// skeleton computed once (a mail's hosts are compared against all of them).
    fuzzy: Vec<Fuzzy>,
}

#[derive(Debug, Clone)]
struct Fuzzy {
    domain: String,
    label: String,
    skeleton: String,
    /// Which characters the label holds (see `char_mask`).
    mask: u64,
}

/// A 64-bit set of the characters of `s` (by code point modulo 64). Each edit changes at
/// most two members, so two strings within distance `d` differ in at most `2d` bits: a
/// cheap exact pre-check before the edit-distance table.
fn char_mask(s: &str) -> u64 {
    s.chars().fold(0u64, |m, c| m | 1u64 << (c as u32 % 64))
}

impl Brands {
    pub fn load(dirs: &[PathBuf]) -> Result<Brands, DetectError> {
        let text = match find_in_dirs(dirs, "brands.txt") {
            Some(path) => {
                std::fs::read_to_string(&path).map_err(|source| DetectError::IntelRead {
                    key: "intel.category_dirs".into(),
                    path,
                    source,
                })?
            }
            None => SHIPPED.to_string(),
        };
        Ok(Brands::parse(&text))
    }

    pub fn parse(text: &str) -> Brands {
        let mut brands = Vec::new();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let Some((names, domains)) = l.split_once('|') else {
                continue;
            };
            let split = |s: &str| -> Vec<String> {
                s.split(',')
                    .map(|x| x.trim().to_lowercase())
                    .filter(|x| !x.is_empty())
                    .collect()
            };
            let b = Brand {
                names: split(names),
                domains: split(domains),
            };
            if !b.domains.is_empty() {
                brands.push(b);
            }
        }
        let mut b = Brands {
            brands,
            fuzzy: Vec::new(),
        };
        b.index();
        b
    }

    fn index(&mut self) {
        self.fuzzy.clear();
        for b in &self.brands {
            for d in &b.domains {
                let d_reg = registrable(d);
                let label = d_reg.split('.').next().unwrap_or(d_reg);
                if label.chars().count() < MIN_FUZZY_LABEL
                    || self.fuzzy.iter().any(|f| f.domain == *d)
                {
                    continue;
                }
                self.fuzzy.push(Fuzzy {
                    domain: d.clone(),
                    label: label.to_string(),
                    skeleton: skeleton(label),
                    mask: char_mask(label),
                });
            }
        }
    }

    /// Adds the site's own domains as a brand (names = the domains' first labels).
    pub fn add_own(&mut self, domains: &[String]) {
        if domains.is_empty() {
            return;
        }
        let domains: Vec<String> = domains.iter().map(|d| d.trim().to_lowercase()).collect();
        self.brands.push(Brand {
            names: Vec::new(),
            domains,
        });
        self.index();
    }

    /// Whether `host` belongs to any brand (a brand's domain or one of its subdomains).
    pub fn owner_of(&self, host: &str) -> Option<&Brand> {
        self.brands
            .iter()
            .find(|b| b.domains.iter().any(|d| is_same_or_subdomain(host, d)))
    }

    /// The brand whose name a display name shows, if any. Latin names match as whole
    /// words, names with non-ASCII letters (Japanese) as substrings.
    pub fn named_in(&self, display: &str) -> Option<(&Brand, &str)> {
        let lower = display.to_lowercase();
        let normalized: String = lower
            .chars()
            .map(|c| match c {
                // Full-width ASCII → ASCII.
                '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
                _ => c,
            })
            .collect();
        for b in &self.brands {
            for n in &b.names {
                let hit = if n.is_ascii() {
                    contains_word(&normalized, n)
                } else {
                    normalized.contains(n.as_str()) || lower.contains(n.as_str())
                };
                if hit {
                    return Some((b, n.as_str()));
                }
            }
        }
        None
    }

    /// A brand domain that `host` imitates without belonging to the brand, with how:
    /// same skeleton (homoglyphs, punycode), edit distance 1–2, or the brand's label
    /// embedded in another name (`resonabank-login.example`).
    pub fn imitated_by(&self, host: &str) -> Option<(String, &'static str)> {
        if self.owner_of(host).is_some() {
            return None;
        }
        let decoded = crate::text::domain::decode_idn(host);
        let reg = registrable(&decoded);
        let label = reg.split('.').next().unwrap_or(reg);
        let label_skel = skeleton(label);
        let parts: Vec<&str> = decoded.split(['.', '-']).collect();
        let label_mask = char_mask(label);
        for f in &self.fuzzy {
            if label_skel == f.skeleton {
                // The same letters to the eye: a homoglyph double; the very same name under
                // another domain (`resonabank.info`) is suspicious but brands own many.
                return Some((
                    f.domain.clone(),
                    if label == f.label {
                        "same name under another domain"
                    } else {
                        "homoglyph"
                    },
                ));
            }
            let max = if f.label.len() >= 9 { 2 } else { 1 };
            if label.is_ascii()
                && label.len() >= MIN_FUZZY_LABEL
                && label.len().abs_diff(f.label.len()) <= max
                && (label_mask ^ f.mask).count_ones() as usize <= 2 * max
                && crate::text::domain::edit_distance(label, &f.label, max).is_some_and(|x| x > 0)
            {
                return Some((f.domain.clone(), "edit distance"));
            }
            if parts.contains(&f.label.as_str())
                || label.contains(f.label.as_str()) && label != f.label
            {
                return Some((f.domain.clone(), "embedded brand name"));
            }
        }
        None
    }
}

fn contains_word(haystack: &str, word: &str) -> bool {
    let mut start = 0;
    while let Some(pos) = haystack[start..].find(word) {
        let a = start + pos;
        let b = a + word.len();
        let before = haystack[..a].chars().next_back();
        let after = haystack[b..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_ascii_alphanumeric());
        if boundary(before) && boundary(after) {
            return true;
        }
        start = a + word.len().max(1);
        if start >= haystack.len() {
            break;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_brands_name_and_domain_checks() {
        let b = Brands::load(&[]).unwrap();
        assert!(b.named_in("りそな銀行 カスタマーセンター").is_some());
        assert!(b.named_in("Resona Bank").is_some());
        assert!(b.named_in("ＡＭＡＺＯＮ").is_some(), "full-width letters");
        assert!(b.named_in("Amazonite Crafts").is_none(), "whole words only");
        assert!(b.named_in("山田 太郎").is_none());
        assert!(b.owner_of("www.resonabank.co.jp").is_some());
        assert!(b.owner_of("resonabank.co.jp.evil.example").is_none());

        assert_eq!(
            b.imitated_by("resonabnak.co.jp").map(|x| x.1),
            Some("edit distance")
        );
        assert_eq!(
            b.imitated_by("xn--80ak6aa92e.com").map(|x| x.1),
            Some("homoglyph")
        );
        assert_eq!(
            b.imitated_by("rnufg-secure.example").map(|x| x.1),
            None,
            "mufg is too short to fuzz"
        );
        assert_eq!(
            b.imitated_by("resonabank-kakunin.example").map(|x| x.1),
            Some("embedded brand name")
        );
        assert_eq!(b.imitated_by("www.resonabank.co.jp"), None);
        assert_eq!(b.imitated_by("example.co.jp"), None);
        assert_eq!(
            b.imitated_by("resonabank.info").map(|x| x.1),
            Some("same name under another domain")
        );
        assert_eq!(b.imitated_by("mail.corp.example"), None);
    }
}
