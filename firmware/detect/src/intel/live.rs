//! Tagging session records with their intel hits as the analyzer writes them, so that
//! the record in the session log (and the index, `intel:`) carries `intel: [...]`.
//!
//! The packs are reloaded when `DATA/intel/state.json` says the intel changed, checked at
//! most every `CHECK_EVERY` (one `stat` and a small read): an import reaches live
//! traffic within seconds, without a restart. A pack that cannot be read keeps the
//! previous packs in use and is reported once per change.

use super::matcher::Matcher;
use kuroko_model::SessionRecord;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHECK_EVERY: Duration = Duration::from_secs(2);

pub struct LiveIntel {
    data_dir: PathBuf,
    matcher: Option<std::sync::Arc<Matcher>>,
    generation: Option<u64>,
    last_check: Option<Instant>,
    /// Sessions tagged with at least one hit.
    pub tagged: u64,
    /// The last reload error, if the packs in use are older than the installed ones.
    pub error: Option<String>,
}

impl LiveIntel {
    pub fn new(data_dir: &Path) -> LiveIntel {
        LiveIntel {
            data_dir: data_dir.to_path_buf(),
            matcher: None,
            generation: None,
            last_check: None,
            tagged: 0,
            error: None,
        }
    }

    fn refresh(&mut self) {
        if self.last_check.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return;
        }
        self.last_check = Some(Instant::now());
        let Ok(st) = super::packs::state(&self.data_dir) else {
            return;
        };
        if self.generation == Some(st.generation) {
            return;
        }
        self.generation = Some(st.generation);
        match Matcher::load_shared(&self.data_dir) {
            Ok(m) => {
                self.matcher = (!m.is_empty()).then_some(m);
                self.error = None;
            }
            Err(e) => {
                eprintln!(
                    "kuroko analyze: intel packs not reloaded, the previous ones stay in use: {e}"
                );
                self.error = Some(e);
            }
        }
    }

    /// Sets `record.intel` to the record's hits (session fields and stored files).
    pub fn tag(&mut self, record: &mut SessionRecord) {
        self.refresh();
        let Some(m) = &self.matcher else {
            return;
        };
        let mut hits = m.match_session(record);
        hits.extend(m.match_file_digests(record, &self.data_dir.join("files")));
        hits.sort();
        hits.dedup();
        if !hits.is_empty() {
            self.tagged += 1;
        }
        record.intel = hits;
    }
}
