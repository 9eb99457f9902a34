//! Site categories (`streaming`, `adult`): domain lists with suffix matching on labels.
//!
//! The firmware ships a list per category (`firmware/detect/lists/<category>.txt`,
//! compiled in); a file `<category>.txt` in any `[intel] category_dirs` directory
//! replaces the shipped list for that category. Lookups walk the host's labels from the
//! full name up (`a.b.netflix.com`, `b.netflix.com`, `netflix.com`), one hash lookup each.

use super::find_in_dirs;
use crate::error::DetectError;
use std::collections::HashMap;
use std::path::PathBuf;

/// The categories the rules know, with their shipped lists.
pub const SHIPPED: &[(&str, &str)] = &[
    ("streaming", include_str!("../../lists/streaming.txt")),
    ("adult", include_str!("../../lists/adult.txt")),
];

/// Most labels walked for one host (real names have far fewer).
const MAX_LABELS: usize = 16;

/// Domain → category name.
#[derive(Debug, Default, Clone)]
pub struct Categories {
    domains: HashMap<String, &'static str>,
    /// Where each category's list came from (`shipped` or a path), for `status`.
    pub sources: Vec<(&'static str, String)>,
}

impl Categories {
    /// The shipped lists, replaced per category by `<category>.txt` in `dirs`.
    pub fn load(dirs: &[PathBuf]) -> Result<Categories, DetectError> {
        let mut c = Categories::default();
        for (name, shipped) in SHIPPED {
            let file = format!("{name}.txt");
            match find_in_dirs(dirs, &file) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|source| {
                        DetectError::IntelRead {
                            key: "intel.category_dirs".into(),
                            path: path.clone(),
                            source,
                        }
                    })?;
                    c.add(name, &text);
                    c.sources.push((name, path.display().to_string()));
                }
                None => {
                    c.add(name, shipped);
                    c.sources.push((name, "shipped".into()));
                }
            }
        }
        Ok(c)
    }

    fn add(&mut self, category: &'static str, text: &str) {
        for line in text.lines() {
            let d = line
                .split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('.');
            if d.is_empty() || d.contains(char::is_whitespace) {
                continue;
            }
            self.domains.insert(d.to_ascii_lowercase(), category);
        }
    }

    /// The category of `host` (or of a parent domain), if any.
    pub fn lookup(&self, host: &str) -> Option<(&'static str, &str)> {
        let host = host.trim_end_matches('.');
        let mut rest = host;
        for _ in 0..MAX_LABELS {
            if let Some((k, v)) = self.domains.get_key_value(rest) {
                return Some((v, k.as_str()));
            }
            match rest.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => rest = parent,
                _ => return None,
            }
        }
        None
    }

    pub fn len(&self) -> usize {
        self.domains.len()
    }
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_lists_match_subdomains_not_lookalikes() {
        let c = Categories::load(&[]).unwrap();
        assert_eq!(c.lookup("www.netflix.com").map(|x| x.0), Some("streaming"));
        assert_eq!(
            c.lookup("rr3---sn-a5mekn6r.googlevideo.com").map(|x| x.0),
            Some("streaming")
        );
        assert_eq!(c.lookup("abema.tv").map(|x| x.0), Some("streaming"));
        assert_eq!(c.lookup("jp.pornhub.com").map(|x| x.0), Some("adult"));
        assert_eq!(c.lookup("notnetflix.com"), None);
        assert_eq!(c.lookup("www.example.co.jp"), None);
        assert_eq!(c.lookup(""), None);
    }

    #[test]
    fn a_file_in_category_dirs_replaces_the_shipped_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("streaming.txt"), "# ours\nvideo.example\n").unwrap();
        let c = Categories::load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            c.lookup("cdn.video.example").map(|x| x.0),
            Some("streaming")
        );
        assert_eq!(c.lookup("www.netflix.com"), None, "replaced, not merged");
        assert_eq!(
            c.lookup("pornhub.com").map(|x| x.0),
            Some("adult"),
            "other category still shipped"
        );
    }
}
