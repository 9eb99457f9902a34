//! File search (ファイル検索, `kuroko search --files QUERY`): the reconstructed files
//! (`DATA/files/`: attachments, mails, HTTP and FTP transfers) that match a query, each
//! with the session that carried it.
//!
//! A file matches when the query holds for the session record narrowed to that one file
//! (`file_view`): `file:` (name), `file_type:`, `file_size:`, `sha256:`, `yara:` see only
//! that file, and `body:` / `content:` only its text (the content index is asked per
//! object, `ContentIndex::object_matches`); session fields (`protocol:`, `from:`,
//! `time:`, …) are the session's. So `protocol:smtp AND file_type:pdf AND
//! content:"請求書"` lists the PDF attachments whose text says 請求書, not the other
//! attachments of the same mails.
//!
//! The sessions to look at come from the session index with a relaxed plan
//! (`relax`: a per-file condition under `NOT` becomes "any session"), so the index only
//! narrows and the per-file evaluation decides. At most `MAX_SESSIONS` sessions are read,
//! newest first; the caller is told when that cut the list.

use crate::content::{ContentIndex, Snippet};
use crate::index::{Index, IndexError};
use crate::matcher::eval_with;
use crate::query::{Field, Plan, Pred, Query};
use kuroko_model::SessionRecord;
use kuroko_model::session::FileRef;

/// Most sessions one file search reads.
pub const MAX_SESSIONS: usize = 10_000;

/// One matching file and its session.
#[derive(Clone, Debug)]
pub struct FileHit {
    pub session: SessionRecord,
    pub file: FileRef,
    /// The passage of this file's text that matched, when a content phrase did.
    pub snippet: Option<Snippet>,
}

/// What `search` found.
#[derive(Debug, Default)]
pub struct FileResults {
    pub hits: Vec<FileHit>,
    /// More files matched than `limit`, or more sessions than `MAX_SESSIONS` could hold
    /// matching files.
    pub more: bool,
    /// Notes for the user (content index missing, too many content matches).
    pub notes: Vec<String>,
}

/// Fields whose values belong to one file rather than to the session.
fn per_file(p: &Pred) -> bool {
    let f = match p {
        Pred::Eq(f, _)
        | Pred::Contains(f, _)
        | Pred::Glob(f, _)
        | Pred::Words(f, _)
        | Pred::U64(f, _, _)
        | Pred::Content(f, _) => *f,
        _ => return false,
    };
    matches!(
        f,
        Field::File
            | Field::Attachment
            | Field::FileType
            | Field::FileSize
            | Field::Sha256
            | Field::Yara
            | Field::Body
            | Field::Content
    )
}

/// `plan` made true of every session that has a matching file: a per-file predicate
/// under an odd number of `NOT`s becomes `Nothing` (so its `NOT` holds), since one file
/// of a session may lack what another has.
pub fn relax(plan: &Plan, negated: bool) -> Plan {
    match plan {
        Plan::And(v) => Plan::And(v.iter().map(|p| relax(p, negated)).collect()),
        Plan::Or(v) => Plan::Or(v.iter().map(|p| relax(p, negated)).collect()),
        Plan::Not(p) => Plan::Not(Box::new(relax(p, !negated))),
        Plan::Pred(p) if negated && per_file(p) => Plan::Nothing,
        other => other.clone(),
    }
}

/// The session record as if it carried only `f`: the other reconstructed objects, FTP
/// transfers and attachments are left out (mail headers, addresses, protocol stay).
pub fn file_view(r: &SessionRecord, f: &FileRef) -> SessionRecord {
    let mut v = r.clone();
    let same = |s: Option<&str>| s == Some(f.sha256.as_str());
    v.files = vec![f.clone()];
    if let Some(ftp) = &mut v.ftp {
        ftp.files.retain(|x| same(x.sha256.as_deref()));
    }
    if let Some(m) = &mut v.mail {
        m.attachments.retain(|a| same(a.sha256.as_deref()));
        if !same(m.eml_sha256.as_deref()) {
            m.eml_sha256 = None;
        }
        for msg in &mut m.messages {
            msg.attachments.retain(|a| same(a.sha256.as_deref()));
            if !same(msg.eml_sha256.as_deref()) {
                msg.eml_sha256 = None;
            }
        }
    }
    v
}

/// The files matching `q`, newest session first, at most `limit`.
pub fn search(
    index: &Index,
    content: Option<&ContentIndex>,
    q: &Query,
    limit: usize,
) -> Result<FileResults, IndexError> {
    let mut res = FileResults::default();
    let relaxed = Query {
        expr: q.expr.clone(),
        plan: relax(&q.plan, false),
    };
    let (resolved, notes) = index.resolve_content(&relaxed)?;
    res.notes = notes;
    let sessions = index.search_hits(&resolved, MAX_SESSIONS, None)?;
    let cut = sessions.len() >= MAX_SESSIONS;
    let mut failed = None;
    for hit in sessions {
        let r = &hit.record;
        for f in &r.files {
            let view = file_view(r, f);
            let mut ask = |field: Field, m: &crate::content::ContentMatch| match content {
                Some(c) => c
                    .object_matches(field, m, &r.id, &f.sha256)
                    .unwrap_or_else(|e| {
                        failed.get_or_insert(e);
                        false
                    }),
                None => false,
            };
            if !eval_with(&q.plan, &view, &mut ask) {
                continue;
            }
            if res.hits.len() >= limit {
                res.more = true;
                break;
            }
            let snippet = match content {
                Some(c) if crate::content::has_content(&q.plan) => {
                    c.snippet(&q.plan, &r.id, Some(&f.sha256))?
                }
                _ => None,
            };
            res.hits.push(FileHit {
                session: r.clone(),
                file: f.clone(),
                snippet,
            });
        }
        if res.more {
            break;
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if cut && !res.more {
        res.more = true;
        res.notes.push(format!(
            "only the newest {MAX_SESSIONS} matching sessions were read for files: narrow the query (e.g. with time:)"
        ));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Query;

    fn file(sha: &str, name: &str, ct: &str, bytes: u64) -> FileRef {
        FileRef {
            sha256: sha.into(),
            name: Some(name.into()),
            content_type: Some(ct.into()),
            bytes,
            direction: "download".into(),
            kind: "attachment".into(),
            ..Default::default()
        }
    }

    fn session() -> SessionRecord {
        let mut r = SessionRecord::new(
            "s1".into(),
            kuroko_model::Timestamp(1_763_425_800_000_000_000),
            "tcp",
            kuroko_model::session::Endpoint::new("10.0.0.5".parse().unwrap(), 50000),
            kuroko_model::session::Endpoint::new("192.0.2.25".parse().unwrap(), 25),
        );
        r.protocol = "smtp".into();
        r.files = vec![
            file("aa", "請求書.pdf", "application/pdf; name=x", 120_000),
            file("bb", "photo.jpg", "image/jpeg", 3_000_000),
        ];
        r
    }

    fn files_matching(q: &str, content: &[(&str, bool)]) -> Vec<String> {
        let q = Query::parse(q).unwrap();
        let r = session();
        r.files
            .iter()
            .filter(|f| {
                let v = file_view(&r, f);
                let mut ask = |_: Field, _: &crate::content::ContentMatch| {
                    content.iter().any(|(s, yes)| *s == f.sha256 && *yes)
                };
                eval_with(&q.plan, &v, &mut ask)
            })
            .map(|f| f.sha256.clone())
            .collect()
    }

    #[test]
    fn each_file_is_judged_alone() {
        assert_eq!(files_matching("file_type:pdf", &[]), ["aa"]);
        assert_eq!(files_matching("file_type:application/pdf", &[]), ["aa"]);
        assert_eq!(files_matching("file_type:image/*", &[]), ["bb"]);
        assert_eq!(files_matching("file_size:>1MB", &[]), ["bb"]);
        assert_eq!(files_matching("NOT file_type:pdf", &[]), ["bb"]);
        assert_eq!(files_matching("protocol:smtp AND file:*.jpg", &[]), ["bb"]);
        assert_eq!(files_matching("sha256:aa", &[]), ["aa"]);
        assert_eq!(
            files_matching("content:\"請求書\"", &[("aa", true), ("bb", false)]),
            ["aa"]
        );
        assert_eq!(
            files_matching("NOT content:\"請求書\"", &[("aa", true), ("bb", false)]),
            ["bb"]
        );
        assert!(files_matching("protocol:http", &[]).is_empty());
    }

    #[test]
    fn relaxed_plan_keeps_sessions_with_a_matching_file() {
        // The session carries a PDF, so `NOT file_type:pdf` is false of the session; its
        // JPEG still matches, so the relaxed plan must keep the session.
        let r = session();
        let q = Query::parse("NOT file_type:pdf").unwrap();
        assert!(!crate::matcher::eval(&q.plan, &r));
        assert!(crate::matcher::eval(&relax(&q.plan, false), &r));
    }
}
