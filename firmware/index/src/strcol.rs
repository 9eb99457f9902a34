//! Substrings and globs answered from a text field's fast column (`schema::FAST_TEXT`).
//!
//! Why: tantivy runs `url:".*x.*"` as an automaton over the term FST, which walks nearly
//! the whole FST for a leading `.*` (0.85 s at 10 M sessions, `bench search`). The fast
//! column holds the same lower-cased values as a sorted dictionary plus one ordinal per
//! row; streaming the dictionary with a plain substring test and then picking the rows
//! whose ordinal matched costs one linear pass over the distinct values and one over the
//! ordinals, with no automaton state.
//!
//! Two uses: `StrColumnQuery` (a tantivy query, exact, used when nothing cheaper narrows the
//! search), and `ColumnVerifier` (the values of a few candidate documents, used to verify
//! the residual of a selective query without reading stored records).

use crate::matcher::glob_match;
use crate::query::ast::GlobPart;
use std::collections::HashMap;
use tantivy::columnar::StrColumn;
use tantivy::query::{
    BitSetDocSet, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError};

/// A test on one lower-cased value.
#[derive(Clone, Debug, PartialEq)]
pub enum StrTest {
    Eq(String),
    Contains(String),
    Glob(Vec<GlobPart>),
}

impl StrTest {
    pub fn test(&self, v: &str) -> bool {
        match self {
            StrTest::Eq(x) => v == x,
            StrTest::Contains(x) => v.contains(x.as_str()),
            StrTest::Glob(g) => glob_match(g, v),
        }
    }
}

/// Ordinals of the dictionary values that pass `test`, as a bitmap (None: none pass).
fn matching_ords(col: &StrColumn, test: &StrTest) -> std::io::Result<Option<Vec<u64>>> {
    let dict = col.dictionary();
    let n = dict.num_terms();
    let mut bits = vec![0u64; n.div_ceil(64)];
    let mut any = false;
    let mut stream = dict.stream()?;
    // Bytes-level tests where they are exact (the values and the needle are UTF-8): no
    // UTF-8 check and no searcher set up per value.
    let finder = match test {
        StrTest::Contains(x) => Some(memchr::memmem::Finder::new(x.as_bytes())),
        _ => None,
    };
    while stream.advance() {
        let key = stream.key();
        let ok = match (test, &finder) {
            (StrTest::Contains(_), Some(f)) => f.find(key).is_some(),
            (StrTest::Eq(x), _) => key == x.as_bytes(),
            _ => std::str::from_utf8(key).is_ok_and(|k| test.test(k)),
        };
        if ok {
            let o = stream.term_ord() as usize;
            if let Some(w) = bits.get_mut(o / 64) {
                *w |= 1 << (o % 64);
                any = true;
            }
        }
    }
    Ok(any.then_some(bits))
}

fn has(bits: &[u64], ord: u64) -> bool {
    bits.get((ord / 64) as usize)
        .is_some_and(|w| w & (1 << (ord % 64)) != 0)
}

/// The documents of one segment whose `field` has a value passing `test`.
pub fn matching_docs(
    reader: &SegmentReader,
    field: &str,
    test: &StrTest,
) -> tantivy::Result<BitSet> {
    let mut docs = BitSet::with_max_value(reader.max_doc());
    let Some(col) = reader.fast_fields().str(field)? else {
        return Ok(docs);
    };
    let Some(ords) = matching_ords(&col, test).map_err(TantivyError::from)? else {
        return Ok(docs);
    };
    let column = col.ords();
    let rows = column.values.num_vals();
    let mut buf = vec![0u64; 4096];
    let mut hits: Vec<u32> = Vec::new();
    let mut start = 0u32;
    while start < rows {
        let len = (rows - start).min(buf.len() as u32) as usize;
        column.values.get_range(start as u64, &mut buf[..len]);
        for (i, &o) in buf[..len].iter().enumerate() {
            if has(&ords, o) {
                hits.push(start + i as u32);
            }
        }
        start += len as u32;
    }
    column.index.select_batch_in_place(0, &mut hits);
    for d in hits {
        if d < reader.max_doc() {
            docs.insert(d);
        }
    }
    Ok(docs)
}

/// `field` has a value passing `test`, answered from the fast column.
#[derive(Clone, Debug)]
pub struct StrColumnQuery {
    pub field: String,
    pub test: StrTest,
}

impl Query for StrColumnQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for StrColumnQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let docs = matching_docs(reader, &self.field, &self.test)?;
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut s = self.scorer(reader, 1.0)?;
        if s.doc() < doc && s.seek(doc) != doc || s.doc() == TERMINATED || s.doc() != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("StrColumnQuery", 1.0))
    }
}

/// Values of fast text columns for chosen documents of one segment, fetched in one sorted
/// pass over each dictionary (only the dictionary blocks holding those values are read).
pub struct ColumnVerifier {
    fields: Vec<String>,
    /// Per field: doc → the document's values.
    values: Vec<HashMap<DocId, Vec<String>>>,
}

impl ColumnVerifier {
    pub fn load(
        reader: &SegmentReader,
        fields: &[&str],
        docs: &[DocId],
    ) -> tantivy::Result<ColumnVerifier> {
        let mut values = Vec::with_capacity(fields.len());
        for &field in fields {
            let mut per_doc: HashMap<DocId, Vec<String>> = HashMap::new();
            if let Some(col) = reader.fast_fields().str(field)? {
                let mut by_ord: Vec<(u64, DocId)> = Vec::new();
                for &d in docs {
                    for o in col.ords().values_for_doc(d) {
                        by_ord.push((o, d));
                    }
                }
                by_ord.sort_unstable();
                let mut ords: Vec<u64> = by_ord.iter().map(|x| x.0).collect();
                ords.dedup();
                let mut texts: Vec<String> = Vec::with_capacity(ords.len());
                col.dictionary()
                    .sorted_ords_to_term_cb(&ords, |t| {
                        texts.push(String::from_utf8_lossy(t).into_owned());
                    })
                    .map_err(TantivyError::from)?;
                let mut i = 0;
                for (o, d) in by_ord {
                    while ords.get(i).is_some_and(|&x| x < o) {
                        i += 1;
                    }
                    if let Some(t) = texts.get(i) {
                        per_doc.entry(d).or_default().push(t.clone());
                    }
                }
            }
            values.push(per_doc);
        }
        Ok(ColumnVerifier {
            fields: fields.iter().map(|f| f.to_string()).collect(),
            values,
        })
    }

    /// The values of `field` for `doc` (empty when it has none or was not loaded).
    pub fn get(&self, field: &str, doc: DocId) -> &[String] {
        self.fields
            .iter()
            .position(|f| f == field)
            .and_then(|i| self.values[i].get(&doc))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
}
