//! The tantivy schema: one indexed field per query field, plus the stored record.
//!
//! - keyword and text fields: a raw field (whole value, lower-cased) for equality, globs
//!   and substrings; text fields also get a `<name>_w` field of words (no positions: a
//!   word query asks that every word occurs, see `query::plan`);
//! - ports, status and VLAN: indexed u64; sizes and packet counts: fast u64 (range scans);
//! - addresses: indexed + fast IP fields (IPv4 as mapped IPv6), so a CIDR is a range;
//! - `time` (start, ns) as a fast i64 for ranges and newest-first order;
//! - `doc`: the session record as JSON, stored (zstd-compressed blocks), so a search
//!   returns the record exactly as the analyzer wrote it.
//!
//! `SCHEMA_VERSION` changes whenever this layout does; an index of another version is
//! rebuilt from the session log.

use crate::query::{Field as QField, Kind};
use crate::values::{ip_values, text_values, u64_values};
use kuroko_model::SessionRecord;
use std::collections::HashMap;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, NumericOptions, STORED, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, SimpleTokenizer, TextAnalyzer};
use tantivy::{Index, TantivyDocument};

pub const SCHEMA_VERSION: u32 = 4;
/// Text fields that also get a fast (columnar) copy of the raw value. A substring or glob
/// on them streams the column's sorted dictionary once per segment and picks the rows whose
/// ordinal matched (`crate::strcol`), instead of running a `.*x.*` automaton over the term
/// FST, and candidates of a selective query are verified from the column rather than by
/// decompressing stored records. Limited to the fields whose substrings analysts search
/// (URL, host), to keep the index small.
pub const FAST_TEXT: &[QField] = &[QField::Url, QField::Host];
/// Tokenizer of raw fields: the whole value, lower-cased.
pub const RAW_TOKENIZER: &str = "kuroko_raw";
/// Tokenizer of word fields: runs of alphanumerics, lower-cased (as `query::plan::words`).
pub const WORDS_TOKENIZER: &str = "kuroko_words";

/// The schema and its field handles.
#[derive(Clone)]
pub struct Fields {
    pub schema: Schema,
    raw: HashMap<QField, Field>,
    words: HashMap<QField, Field>,
    num: HashMap<QField, Field>,
    ip: HashMap<QField, Field>,
    pub time: Field,
    pub first_segment: Field,
    pub last_segment: Field,
    pub doc: Field,
}

/// Name of the stored time field (ns since the epoch, session start).
pub const TIME: &str = "time";

impl Fields {
    pub fn build() -> Fields {
        let mut b = Schema::builder();
        let raw_opts = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(RAW_TOKENIZER)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        );
        let words_opts = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(WORDS_TOKENIZER)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        );
        let mut raw = HashMap::new();
        let mut words = HashMap::new();
        let mut num = HashMap::new();
        let mut ip = HashMap::new();
        for &f in QField::ALL {
            if !f.is_stored() {
                continue;
            }
            match f.kind() {
                Kind::Keyword => {
                    let opts = if f == QField::Protocol {
                        raw_opts.clone().set_fast(RAW_TOKENIZER)
                    } else {
                        raw_opts.clone()
                    };
                    raw.insert(f, b.add_text_field(f.name(), opts));
                }
                Kind::Text => {
                    let opts = if FAST_TEXT.contains(&f) {
                        raw_opts.clone().set_fast(RAW_TOKENIZER)
                    } else {
                        raw_opts.clone()
                    };
                    raw.insert(f, b.add_text_field(f.name(), opts));
                    words.insert(
                        f,
                        b.add_text_field(&format!("{}_w", f.name()), words_opts.clone()),
                    );
                }
                Kind::Number | Kind::Bytes => {
                    if matches!(f, QField::Port) {
                        continue;
                    }
                    let opts: NumericOptions = match f {
                        QField::ClientPort | QField::ServerPort => (INDEXED | FAST).into(),
                        QField::Status | QField::Vlan => INDEXED.into(),
                        _ => FAST.into(),
                    };
                    num.insert(f, b.add_u64_field(f.name(), opts));
                }
                Kind::Ip => {
                    if matches!(f, QField::Ip) {
                        continue;
                    }
                    ip.insert(f, b.add_ip_addr_field(f.name(), INDEXED | FAST));
                }
                // Time: the `time` field below; content: the content index.
                Kind::Time | Kind::Content => {}
            }
        }
        let time = b.add_i64_field(TIME, FAST);
        let first_segment = b.add_u64_field("first_segment", FAST);
        let last_segment = b.add_u64_field("last_segment", FAST);
        let doc = b.add_bytes_field("doc", STORED);
        Fields {
            schema: b.build(),
            raw,
            words,
            num,
            ip,
            time,
            first_segment,
            last_segment,
            doc,
        }
    }

    pub fn raw(&self, f: QField) -> Option<Field> {
        self.raw.get(&f).copied()
    }
    pub fn words(&self, f: QField) -> Option<Field> {
        self.words.get(&f).copied()
    }
    pub fn num(&self, f: QField) -> Option<Field> {
        self.num.get(&f).copied()
    }
    pub fn ip(&self, f: QField) -> Option<Field> {
        self.ip.get(&f).copied()
    }

    /// The document for one session.
    pub fn document(&self, r: &SessionRecord) -> Result<TantivyDocument, serde_json::Error> {
        let mut d = TantivyDocument::default();
        for (&f, &field) in &self.raw {
            for v in text_values(r, f) {
                d.add_text(field, &v);
                if let Some(&w) = self.words.get(&f) {
                    d.add_text(w, &v);
                }
            }
        }
        for (&f, &field) in &self.num {
            for v in u64_values(r, f) {
                d.add_u64(field, v);
            }
        }
        for (&f, &field) in &self.ip {
            for v in ip_values(r, f) {
                d.add_ip_addr(
                    field,
                    std::net::Ipv6Addr::from(crate::query::plan::ip_to_u128(v)),
                );
            }
        }
        d.add_i64(self.time, r.start.nanos());
        d.add_u64(self.first_segment, r.span.first_segment);
        d.add_u64(self.last_segment, r.span.last_segment);
        d.add_bytes(self.doc, &serde_json::to_vec(r)?);
        Ok(d)
    }

    /// Registers the tokenizers the schema names (needed on every open).
    pub fn register_tokenizers(index: &Index) {
        index.tokenizers().register(
            RAW_TOKENIZER,
            TextAnalyzer::builder(RawTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
        index.tokenizers().register(
            WORDS_TOKENIZER,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
        index.fast_field_tokenizer().register(
            RAW_TOKENIZER,
            TextAnalyzer::builder(RawTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
    }
}
