//! The content index `DIR/content/`: the text of what the analyzer reconstructed (mail
//! bodies, attachments, HTTP bodies, FTP transfers), searchable by phrase, beside the
//! session index.
//!
//! One document per extracted text, linked to its session (`session`, the session id) and
//! its object (`sha256`), with the session's start (`time`), the object's kind and name,
//! and `part`: `body` (what a mail or web exchange said) or `file` (a document's text).
//! The text is tokenized by `kuroko_content::tokens` (NFKC, CJK bigrams, Latin words) with
//! positions, so a phrase is a position-exact sequence of tokens, and stored (zstd) for the
//! snippets.
//!
//! Queries: `body:"…"` (parts `body`), `content:"…"` (every part), and a bare phrase also
//! searches content. They are resolved here into the set of matching session ids, which
//! the session index then intersects with the rest of the query
//! (`Index::resolve_content`); so a session whose content was dropped (budget) still
//! shows by its metadata, it is just no longer found by its text.
//!
//! Feeding (`ingest`): a consumer of the session log with its own cursor in its own commit
//! payload, exactly once like the session index; extraction failures are counted by cause
//! in the same payload. Budget: `[content] budget`; the oldest content is dropped first
//! and `status` shows the window still searchable.

pub mod ingest;
pub mod tokenizer;

use crate::index::IndexError;
pub use crate::query::plan::ContentMatch;
use crate::query::{Field as QField, Plan, Pred};
use kuroko_content::tokens::QueryTerm;
use kuroko_model::sessionlog::LogPos;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use tantivy::collector::DocSetCollector;
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhraseQuery, Query as TQuery, RegexPhraseQuery, RegexQuery,
    TermQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value as _,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, IndexReader, ReloadPolicy, TantivyDocument, Term};
pub use tokenizer::CONTENT_TOKENIZER;

/// Changes whenever the schema or the tokenization does; another version is rebuilt from
/// the session log.
pub const CONTENT_VERSION: u32 = 1;
/// Most sessions a content predicate resolves to; more are reported, not silently cut.
pub const MAX_SESSIONS: usize = 10_000;

pub fn content_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("content")
}

/// The content schema's field handles.
#[derive(Clone)]
pub struct ContentFields {
    pub schema: Schema,
    pub session: Field,
    pub sha256: Field,
    pub kind: Field,
    pub part: Field,
    pub name: Field,
    pub time: Field,
    pub text: Field,
}

impl ContentFields {
    pub fn build() -> ContentFields {
        let mut b = Schema::builder();
        let session = b.add_text_field("session", STRING | STORED | FAST);
        let sha256 = b.add_text_field("sha256", STRING | STORED);
        let kind = b.add_text_field("kind", STRING | STORED);
        let part = b.add_text_field("part", STRING | STORED);
        let name = b.add_text_field("name", STORED);
        let time = b.add_i64_field("time", INDEXED | FAST | STORED);
        let text_opts = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(CONTENT_TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                    .set_fieldnorms(false),
            )
            .set_stored();
        let text = b.add_text_field("text", text_opts);
        ContentFields {
            schema: b.build(),
            session,
            sha256,
            kind,
            part,
            name,
            time,
            text,
        }
    }

    pub fn register_tokenizers(index: &tantivy::Index) {
        index.tokenizers().register(
            CONTENT_TOKENIZER,
            TextAnalyzer::builder(tokenizer::ContentTokenizer).build(),
        );
    }
}

/// What the content index stores in each commit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ContentPayload {
    pub version: u32,
    pub pos: LogPos,
    #[serde(default)]
    pub log_generation: u64,
    #[serde(default)]
    pub counters: ContentCounters,
    /// Content of sessions that started before this (ns) was dropped for the budget.
    #[serde(default)]
    pub dropped_before: Option<i64>,
}

/// Cumulative counts of the feeding, committed with the documents they describe.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ContentCounters {
    /// Objects whose text was indexed.
    pub objects: u64,
    /// Texts (documents) added.
    pub texts: u64,
    /// Bytes of text indexed.
    pub text_bytes: u64,
    /// Objects that hold no text (images, executables, …).
    pub skipped: u64,
    /// Objects the session named but `files/` no longer held (its own budget).
    pub missing: u64,
    /// Objects whose text was cut at the per-object limit.
    pub truncated: u64,
    /// Extraction failures by cause (`kuroko_content::Failure::name`).
    #[serde(default)]
    pub failures: BTreeMap<String, u64>,
}

fn read_payload(text: Option<&str>) -> ContentPayload {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

fn terr(path: &Path) -> impl Fn(tantivy::TantivyError) -> IndexError + '_ {
    move |source| IndexError::Tantivy {
        path: path.to_path_buf(),
        source,
    }
}

/// The content index, for searching.
pub struct ContentIndex {
    pub path: PathBuf,
    index: tantivy::Index,
    pub fields: ContentFields,
    reader: IndexReader,
}

/// A matching passage, for display.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snippet {
    /// The passage, NFKC-normalized, the match between `[` and `]` in `marked`.
    pub text: String,
    /// Byte ranges of the matches in `text`.
    pub matches: Vec<(usize, usize)>,
    pub sha256: String,
    pub part: String,
    pub name: Option<String>,
}

impl Snippet {
    /// The passage with each match wrapped in `open` … `close`.
    pub fn marked(&self, open: &str, close: &str) -> String {
        let mut out = String::new();
        let mut at = 0;
        for &(a, b) in &self.matches {
            out.push_str(&self.text[at..a]);
            out.push_str(open);
            out.push_str(&self.text[a..b]);
            out.push_str(close);
            at = b;
        }
        out.push_str(&self.text[at..]);
        out
    }
}

/// Characters of context on each side of a match in a snippet.
const SNIPPET_CONTEXT: usize = 40;

impl ContentIndex {
    /// Opens `DIR/content`; `None` when it was never built.
    pub fn open(data_dir: &Path) -> Result<Option<ContentIndex>, IndexError> {
        let path = content_dir(data_dir);
        if !path.join("meta.json").exists() {
            return Ok(None);
        }
        let dir = crate::reader_dir::ReaderDirectory::open(&path).map_err(terr(&path))?;
        let index = tantivy::Index::open(dir).map_err(terr(&path))?;
        if index.schema() != ContentFields::build().schema {
            // The ingester rebuilds it; until then there is no content to search.
            return Ok(None);
        }
        Self::from_tantivy(path, index).map(Some)
    }

    pub(crate) fn from_tantivy(
        path: PathBuf,
        index: tantivy::Index,
    ) -> Result<ContentIndex, IndexError> {
        ContentFields::register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(terr(&path))?;
        Ok(ContentIndex {
            path,
            index,
            fields: ContentFields::build(),
            reader,
        })
    }

    pub fn reload(&self) -> Result<(), IndexError> {
        self.reader.reload().map_err(terr(&self.path))
    }

    pub fn payload(&self) -> Result<ContentPayload, IndexError> {
        let metas = self.index.load_metas().map_err(terr(&self.path))?;
        Ok(read_payload(metas.payload.as_deref()))
    }

    /// Documents (texts) in the index.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tantivy query for `m` over `field` (`body` or `content`).
    fn query(&self, field: QField, m: &ContentMatch) -> Box<dyn TQuery> {
        let f = &self.fields;
        let text_q: Box<dyn TQuery> = match m {
            ContentMatch::Any => Box::new(AllQuery),
            ContentMatch::Phrase(p) => {
                let terms = kuroko_content::tokens::query_terms(p);
                match terms.as_slice() {
                    [] => return Box::new(tantivy::query::EmptyQuery),
                    [one] => {
                        let term = TermQuery::new(
                            Term::from_field_text(f.text, one),
                            IndexRecordOption::Basic,
                        );
                        let mut chars = one.chars();
                        match (chars.next(), chars.next()) {
                            // One CJK character: it is a unigram only where it stood
                            // alone; inside a run it is in the bigrams that hold it.
                            (Some(c), None) if kuroko_content::tokens::is_cjk(c) => {
                                let esc = regex_escape(c);
                                let mut alts: Vec<(Occur, Box<dyn TQuery>)> =
                                    vec![(Occur::Should, Box::new(term))];
                                if let Ok(r) =
                                    RegexQuery::from_pattern(&format!("{esc}.|.{esc}"), f.text)
                                {
                                    alts.push((Occur::Should, Box::new(r)));
                                }
                                Box::new(BooleanQuery::new(alts))
                            }
                            _ => Box::new(term),
                        }
                    }
                    many => {
                        let pattern = kuroko_content::tokens::query_pattern(p);
                        if pattern.iter().all(|t| matches!(t, QueryTerm::Exact(_))) {
                            Box::new(PhraseQuery::new(
                                many.iter()
                                    .map(|t| Term::from_field_text(f.text, t))
                                    .collect(),
                            ))
                        } else {
                            // Lone characters at the edges: the unigram or a bigram
                            // holding them (`QueryTerm`).
                            let regexes = pattern
                                .iter()
                                .map(|t| match t {
                                    QueryTerm::Exact(s) => s.chars().map(regex_escape).collect(),
                                    QueryTerm::Ends(c) => {
                                        format!("{0}|.{0}", regex_escape(*c))
                                    }
                                    QueryTerm::Starts(c) => {
                                        format!("{0}|{0}.", regex_escape(*c))
                                    }
                                })
                                .collect();
                            Box::new(RegexPhraseQuery::new(f.text, regexes))
                        }
                    }
                }
            }
        };
        if field == QField::Body {
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, text_q),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.part, kuroko_content::Part::Body.name()),
                        IndexRecordOption::Basic,
                    )),
                ),
            ]))
        } else {
            text_q
        }
    }

    /// Ids of the sessions whose content matches (at most `MAX_SESSIONS`), and whether
    /// there were more.
    pub fn sessions(
        &self,
        field: QField,
        m: &ContentMatch,
    ) -> Result<(HashSet<String>, bool), IndexError> {
        let searcher = self.reader.searcher();
        let q = self.query(field, m);
        // Matching documents are walked segment by segment and the walk stops at the
        // first session past the cap: a phrase found in every mail of a million would
        // otherwise have all its matches verified and collected (seconds) before the cap
        // kept 10,000 of them.
        let weight = q
            .weight(tantivy::query::EnableScoring::disabled_from_searcher(
                &searcher,
            ))
            .map_err(terr(&self.path))?;
        let mut out = HashSet::new();
        let mut more = false;
        let mut s = String::new();
        'segments: for seg in searcher.segment_readers() {
            let Some(col) = seg.fast_fields().str("session").map_err(terr(&self.path))? else {
                continue;
            };
            let alive = seg.alive_bitset();
            let mut scorer = weight.scorer(seg, 1.0).map_err(terr(&self.path))?;
            let mut doc = scorer.doc();
            while doc != tantivy::TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    for ord in col.term_ords(doc) {
                        s.clear();
                        if col.ord_to_str(ord, &mut s).unwrap_or(false) && !out.contains(&s) {
                            if out.len() >= MAX_SESSIONS {
                                more = true;
                                break 'segments;
                            }
                            out.insert(s.clone());
                        }
                    }
                }
                doc = scorer.advance();
            }
        }
        Ok((out, more))
    }

    /// `m` over `field`, restricted to session `id` and, when given, to the object
    /// `sha256`.
    fn query_in(
        &self,
        field: QField,
        m: &ContentMatch,
        id: &str,
        sha256: Option<&str>,
    ) -> BooleanQuery {
        let term = |f: Field, v: &str| -> (Occur, Box<dyn TQuery>) {
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f, v),
                    IndexRecordOption::Basic,
                )),
            )
        };
        let mut clauses = vec![
            (Occur::Must, self.query(field, m)),
            term(self.fields.session, id),
        ];
        if let Some(sha) = sha256 {
            clauses.push(term(self.fields.sha256, sha));
        }
        BooleanQuery::new(clauses)
    }

    /// Whether a text of the object `sha256` carried by session `id` matches `m` over
    /// `field` (the file search: one file's content, not its session's).
    pub fn object_matches(
        &self,
        field: QField,
        m: &ContentMatch,
        id: &str,
        sha256: &str,
    ) -> Result<bool, IndexError> {
        let q = self.query_in(field, m, id, Some(sha256));
        let n = self
            .reader
            .searcher()
            .search(&q, &tantivy::collector::Count)
            .map_err(terr(&self.path))?;
        Ok(n > 0)
    }

    /// The first matching passage of each session in `ids` for the phrases of `plan`.
    pub fn snippets(
        &self,
        plan: &Plan,
        ids: &[String],
    ) -> Result<HashMap<String, Snippet>, IndexError> {
        let mut out = HashMap::new();
        for id in ids {
            if let Some(s) = self.snippet(plan, id, None)? {
                out.insert(id.clone(), s);
            }
        }
        Ok(out)
    }

    /// The first matching passage of session `id` (of its object `sha256` when given) for
    /// the phrases of `plan`.
    pub fn snippet(
        &self,
        plan: &Plan,
        id: &str,
        sha256: Option<&str>,
    ) -> Result<Option<Snippet>, IndexError> {
        let mut phrases = Vec::new();
        content_phrases(plan, false, &mut phrases);
        let searcher = self.reader.searcher();
        for (field, phrase) in &phrases {
            let q = self.query_in(*field, &ContentMatch::Phrase(phrase.clone()), id, sha256);
            let docs = searcher
                .search(&q, &DocSetCollector)
                .map_err(terr(&self.path))?;
            let mut docs: Vec<DocAddress> = docs.into_iter().collect();
            docs.sort();
            let pattern = kuroko_content::tokens::query_pattern(phrase);
            let found = docs.into_iter().find_map(|addr| {
                let doc: TantivyDocument = searcher.doc(addr).ok()?;
                self.snippet_of(&doc, &pattern)
            });
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    fn snippet_of(&self, doc: &TantivyDocument, pattern: &[QueryTerm]) -> Option<Snippet> {
        let f = &self.fields;
        let get = |field: Field| -> Option<String> {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let text = get(f.text)?;
        let norm = kuroko_content::tokens::normalize(&text);
        let hits = match pattern {
            [QueryTerm::Exact(one)] if one.chars().count() == 1 => norm
                .to_lowercase()
                .match_indices(one.as_str())
                .take(3)
                .map(|(a, s)| (a, a + s.len()))
                .filter(|&(a, b)| norm.is_char_boundary(a) && norm.is_char_boundary(b))
                .collect(),
            _ => kuroko_content::tokens::find_phrase(&norm, pattern, 3),
        };
        let &(a, b) = hits.first()?;
        let start = back_chars(&norm, a, SNIPPET_CONTEXT);
        let end = fwd_chars(&norm, b, SNIPPET_CONTEXT);
        let mut passage = String::new();
        let mut matches = Vec::new();
        let mut at = start;
        for &(x, y) in hits.iter().filter(|(x, y)| *x >= start && *y <= end) {
            push_flat(&mut passage, &norm[at..x]);
            let from = passage.len();
            push_flat(&mut passage, &norm[x..y]);
            matches.push((from, passage.len()));
            at = y;
        }
        push_flat(&mut passage, &norm[at..end]);
        let kept = passage
            .trim_end()
            .len()
            .max(matches.last().map_or(0, |m| m.1));
        passage.truncate(kept);
        if start > 0 {
            passage.insert(0, '…');
            for m in &mut matches {
                m.0 += '…'.len_utf8();
                m.1 += '…'.len_utf8();
            }
        }
        if end < norm.len() {
            passage.push('…');
        }
        Some(Snippet {
            text: passage,
            matches,
            sha256: get(f.sha256).unwrap_or_default(),
            part: get(f.part).unwrap_or_default(),
            name: get(f.name),
        })
    }

    /// Start and end (ns) of the sessions whose content is indexed.
    pub fn window(&self) -> Result<Option<(i64, i64)>, IndexError> {
        let searcher = self.reader.searcher();
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        for seg in searcher.segment_readers() {
            let col = seg.fast_fields().i64("time").map_err(terr(&self.path))?;
            let alive = seg.alive_bitset();
            for doc in 0..seg.max_doc() {
                if alive.is_some_and(|a| !a.is_alive(doc)) {
                    continue;
                }
                if let Some(t) = col.first(doc) {
                    lo = lo.min(t);
                    hi = hi.max(t);
                }
            }
        }
        Ok((lo <= hi).then_some((lo, hi)))
    }
}

/// Whitespace runs (line breaks included) as one space, so a snippet is one line.
fn push_flat(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

fn back_chars(s: &str, mut at: usize, n: usize) -> usize {
    for _ in 0..n {
        match s[..at].chars().next_back() {
            Some(c) => at -= c.len_utf8(),
            None => break,
        }
    }
    at
}

fn fwd_chars(s: &str, mut at: usize, n: usize) -> usize {
    for _ in 0..n {
        match s[at..].chars().next() {
            Some(c) => at += c.len_utf8(),
            None => break,
        }
    }
    at
}

fn regex_escape(c: char) -> String {
    if c.is_alphanumeric() {
        c.to_string()
    } else {
        format!("\\{c}")
    }
}

/// The phrases of the content predicates of `plan` that are not negated.
pub fn content_phrases(plan: &Plan, negated: bool, out: &mut Vec<(QField, String)>) {
    match plan {
        Plan::And(v) | Plan::Or(v) => v.iter().for_each(|p| content_phrases(p, negated, out)),
        Plan::Not(p) => content_phrases(p, !negated, out),
        Plan::Pred(Pred::Content(f, ContentMatch::Phrase(p))) if !negated => {
            out.push((*f, p.clone()))
        }
        _ => {}
    }
}

/// Whether `plan` has a content predicate.
pub fn has_content(plan: &Plan) -> bool {
    match plan {
        Plan::And(v) | Plan::Or(v) => v.iter().any(has_content),
        Plan::Not(p) => has_content(p),
        Plan::Pred(Pred::Content(..)) => true,
        _ => false,
    }
}

/// `plan` with each content predicate replaced by the sessions it matches (`Pred::Ids`, or
/// `Nothing`). `warn` gets a note when a predicate matched more than
/// `MAX_SESSIONS` sessions (only the first are kept) or the content index is missing.
pub fn resolve(
    plan: &Plan,
    content: Option<&ContentIndex>,
    warn: &mut Vec<String>,
) -> Result<Plan, IndexError> {
    Ok(match plan {
        Plan::And(v) => Plan::And(
            v.iter()
                .map(|p| resolve(p, content, warn))
                .collect::<Result<_, _>>()?,
        ),
        Plan::Or(v) => Plan::Or(
            v.iter()
                .map(|p| resolve(p, content, warn))
                .collect::<Result<_, _>>()?,
        ),
        Plan::Not(p) => Plan::Not(Box::new(resolve(p, content, warn)?)),
        Plan::Pred(Pred::Content(f, m)) => {
            let Some(c) = content else {
                let note = "the content index is not built yet (`kuroko analyze`): body/content terms match nothing".to_string();
                if !warn.contains(&note) {
                    warn.push(note);
                }
                return Ok(Plan::Nothing);
            };
            let (ids, more) = c.sessions(*f, m)?;
            if more {
                warn.push(format!(
                    "{f}: more than {MAX_SESSIONS} sessions match; only {MAX_SESSIONS} of them are searched, narrow the query (e.g. with time:)"
                ));
            }
            if ids.is_empty() {
                Plan::Nothing
            } else {
                let mut ids: Vec<String> = ids.into_iter().map(|id| id.to_lowercase()).collect();
                ids.sort();
                Plan::Pred(Pred::Ids(ids))
            }
        }
        other => other.clone(),
    })
}
