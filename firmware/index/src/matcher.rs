//! A query evaluated on one session record, without the index.
//!
//! Alert conditions run on every new session as it is indexed; asking tantivy per session
//! would mean a commit per session. The matcher evaluates the same `Plan` on the record's
//! field values (`crate::values`), so it agrees with the index by construction (and the
//! tests check that it does on every query of the conformance set).

use crate::query::ast::GlobPart;
use crate::query::plan::ContentMatch;
use crate::query::plan::{ip_to_u128, words};
use crate::query::{Field, Plan, Pred, Query};
use crate::values::{ip_values, text_values, u64_values};
use kuroko_model::SessionRecord;

impl Query {
    /// Whether the session matches this query.
    pub fn matches(&self, r: &SessionRecord) -> bool {
        eval(&self.plan, r)
    }
}

pub fn eval(p: &Plan, r: &SessionRecord) -> bool {
    eval_with(p, r, &mut |_, _| false)
}

/// `eval` with content predicates answered by `content` (the file search asks the content
/// index whether one file's text matches; `eval` alone treats content as no match).
pub fn eval_with(
    p: &Plan,
    r: &SessionRecord,
    content: &mut dyn FnMut(Field, &ContentMatch) -> bool,
) -> bool {
    match p {
        Plan::All => true,
        Plan::Nothing => false,
        Plan::And(ps) => ps.iter().all(|p| eval_with(p, r, content)),
        Plan::Or(ps) => ps.iter().any(|p| eval_with(p, r, content)),
        Plan::Not(p) => !eval_with(p, r, content),
        Plan::Pred(Pred::Content(f, m)) => content(*f, m),
        Plan::Pred(pred) => pred_matches(pred, r),
    }
}

fn pred_matches(p: &Pred, r: &SessionRecord) -> bool {
    match p {
        Pred::Eq(f, v) => text_values(r, *f).iter().any(|x| x.to_lowercase() == *v),
        Pred::Contains(f, v) => text_values(r, *f)
            .iter()
            .any(|x| x.to_lowercase().contains(v.as_str())),
        Pred::Glob(f, g) => text_values(r, *f)
            .iter()
            .any(|x| glob_match(g, &x.to_lowercase())),
        Pred::Words(f, toks) => {
            let have: Vec<String> = text_values(r, *f).iter().flat_map(|x| words(x)).collect();
            toks.iter().all(|t| have.contains(t))
        }
        Pred::U64(f, lo, hi) => u64_values(r, *f).iter().any(|v| lo <= v && v <= hi),
        Pred::Ip(f, lo, hi) => ip_values(r, *f).iter().any(|ip| {
            let v = ip_to_u128(*ip);
            *lo <= v && v <= *hi
        }),
        Pred::Time(lo, hi) => *lo <= r.start.nanos() && r.start.nanos() <= *hi,
        // Content is in the content index, not in the record (see `Pred::Content`;
        // `eval_with` asks it).
        Pred::Content(..) => false,
        Pred::Ids(ids) => ids.contains(&r.id.to_lowercase()),
    }
}

/// Whole-value glob match in O(len(pattern) × len(text)) (no exponential backtracking).
pub fn glob_match(pattern: &[GlobPart], text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    // prev[j]: pattern[..i] matches t[..j].
    let mut prev = vec![false; t.len() + 1];
    prev[0] = true;
    for part in pattern {
        let mut cur = vec![false; t.len() + 1];
        match part {
            GlobPart::Any => {
                let mut any = false;
                for j in 0..=t.len() {
                    any |= prev[j];
                    cur[j] = any;
                }
            }
            GlobPart::One => {
                cur[1..].copy_from_slice(&prev[..t.len()]);
            }
            GlobPart::Lit(c) => {
                for j in 1..=t.len() {
                    cur[j] = prev[j - 1] && t[j - 1] == *c;
                }
            }
        }
        prev = cur;
    }
    prev[t.len()]
}
