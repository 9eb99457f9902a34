//! Reading the report's inputs from a data directory.
//!
//! Findings from `DIR/findings/*.jsonl` (one finding record a line, the contract's JSON),
//! sessions from the durable session log (`DIR/sessions/`, via `kuroko_model::sessionlog`),
//! and the file system's size and free space. Damaged lines are counted, never silently
//! dropped: the report states how many records it could not read.

use crate::data::{Inputs, ReportData, StoreSummary};
use crate::error::ReportError;
use crate::objects::ObjectStore;
use crate::site::SiteSection;
use kuroko_model::config::Config;
use kuroko_model::sessionlog::{LogPos, SessionLogReader};
use kuroko_model::{Finding, SessionRecord, Timestamp};
use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

/// The findings of `data_dir`: from detections' findings store (with the configuration's
/// `[detect.overrides]` applied) when it has one, else from finding records as JSONL in
/// `DIR/findings/*.jsonl` (e.g. `kuroko findings --format jsonl` output copied off-box).
/// Returns the findings and the number of JSONL lines that were not finding records.
pub fn load_findings(data_dir: &Path, config: &Config) -> Result<(Vec<Finding>, u64), ReportError> {
    match load_findings_in(data_dir, config, kuroko_model::finding::Lang::Ja)? {
        Some(f) => Ok((f, 0)),
        None => load_findings_jsonl(data_dir),
    }
}

/// The findings of detections' store worded in `lang`; `None` without a store.
fn load_findings_in(
    data_dir: &Path,
    config: &Config,
    lang: kuroko_model::finding::Lang,
) -> Result<Option<Vec<Finding>>, ReportError> {
    let state = kuroko_detect::store::findings_dir(data_dir).join(kuroko_detect::store::STATE_FILE);
    if !state.exists() {
        return Ok(None);
    }
    kuroko_detect::load_findings(data_dir, config, lang)
        .map(Some)
        .map_err(|e| match e {
            kuroko_detect::DetectError::SiteFile(e) => ReportError::from(e),
            e => ReportError::Input {
                what: state.display().to_string(),
                message: e.to_string(),
            },
        })
}

/// Findings in `DIR/findings/`: every `*.jsonl` file whose lines are finding records.
/// Returns the findings (deduplicated by id, the last record winning, since detections
/// update a finding in place) and the number of lines that were not finding records.
pub fn load_findings_jsonl(data_dir: &Path) -> Result<(Vec<Finding>, u64), ReportError> {
    let dir = data_dir.join("findings");
    let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(source) => return Err(ReportError::Read { path: dir, source }),
    };
    files.sort();
    let mut by_id: std::collections::BTreeMap<String, Finding> = Default::default();
    let mut bad = 0u64;
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Read {
            path: path.clone(),
            source,
        })?;
        let mut good = 0u64;
        let mut file_bad = 0u64;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Finding>(line) {
                Ok(f) => {
                    good += 1;
                    by_id.insert(f.id.clone(), f);
                }
                Err(_) => file_bad += 1,
            }
        }
        // A JSONL file with no finding at all is some other state file of detections.
        if good > 0 {
            bad += file_bad;
        }
    }
    Ok((by_id.into_values().collect(), bad))
}

/// The log's records as they come, counting those that could not be read.
pub struct LogRecords {
    iter: kuroko_model::sessionlog::LogIter,
    bad: Rc<Cell<u64>>,
}

impl Iterator for LogRecords {
    type Item = SessionRecord;
    fn next(&mut self) -> Option<SessionRecord> {
        loop {
            match self.iter.next()? {
                Ok((_, rec)) => return Some(rec),
                Err(_) => self.bad.set(self.bad.get() + 1),
            }
        }
    }
}

/// The sessions of the log, each once (a session still open appears as its latest
/// provisional record, one whose final record came as that record only: issue 15), with a
/// shared counter of records that could not be read.
pub struct Sessions {
    iter: Option<kuroko_model::sessionlog::EachSessionOnce<LogRecords>>,
}

impl Iterator for Sessions {
    type Item = SessionRecord;
    fn next(&mut self) -> Option<SessionRecord> {
        self.iter.as_mut()?.next()
    }
}

/// Opens the session log of `data_dir` (empty when there is none yet).
pub fn sessions(data_dir: &Path) -> Result<(Sessions, Rc<Cell<u64>>), ReportError> {
    let dir = data_dir.join("sessions");
    let bad = Rc::new(Cell::new(0));
    if !dir.exists() {
        return Ok((Sessions { iter: None }, bad));
    }
    let reader = SessionLogReader::open(&dir).map_err(|source| ReportError::Read {
        path: dir.clone(),
        source,
    })?;
    let iter = reader
        .read_from(LogPos::default())
        .map_err(|source| ReportError::Read {
            path: dir.clone(),
            source,
        })?;
    let records = LogRecords {
        iter,
        bad: bad.clone(),
    };
    Ok((
        Sessions {
            iter: Some(kuroko_model::sessionlog::each_session_once(records)),
        },
        bad,
    ))
}

/// Size and free space of the file system holding `path`.
pub fn fs_usage(path: &Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let frag = st.fragment_size() as u64;
    Some((
        st.blocks() as u64 * frag,
        st.blocks_available() as u64 * frag,
    ))
}

/// Total size of the regular files under `dir` (bounded depth, no symlinks followed).
pub fn dir_size(dir: &Path) -> u64 {
    fn walk(dir: &Path, depth: u32) -> u64 {
        if depth > 6 {
            return 0;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.filter_map(|e| e.ok())
            .map(|e| match e.file_type() {
                Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
                Ok(t) if t.is_dir() => walk(&e.path(), depth + 1),
                _ => 0,
            })
            .sum()
    }
    walk(dir, 0)
}

/// Everything a report of `data_dir` shows. Creates `DIR/site.toml` when absent (when the
/// directory can be written).
/// `store` comes from the segment store's status (the caller fills what it knows);
/// the file-system figures are filled here when missing.
pub fn gather(
    data_dir: &Path,
    config: &Config,
    mut store: StoreSummary,
) -> Result<(ReportData, Warnings), ReportError> {
    let defaults = SiteSection {
        name: config.site.name.clone(),
        customer: config.site.customer.clone(),
        analyst: String::new(),
    };
    let (findings, bad_findings) = load_findings(data_dir, config)?;
    let listed: Vec<(String, String)> = findings
        .iter()
        .map(|f| {
            let title = kuroko_detect::RuleId::parse(&f.rule)
                .map(|r| r.info().title(kuroko_model::finding::Lang::Ja).to_string())
                .unwrap_or_else(|| f.title.clone());
            let side = |a: &Option<String>| a.clone().unwrap_or_else(|| "多数".into());
            (
                f.id.clone(),
                format!(
                    "[{}] {title} ({} -> {})",
                    f.risk,
                    side(&f.client),
                    side(&f.server)
                ),
            )
        })
        .collect();
    let (site, site_origin) = crate::site::load_or_create(data_dir, &defaults, &listed)?;
    kuroko_detect::overrides::check_keys(&site, &findings)?;
    let (sessions, bad_sessions) = sessions(data_dir)?;
    if store.fs_total.is_none()
        && let Some((total, free)) = fs_usage(data_dir)
    {
        store.fs_total = Some(total);
        store.fs_free = Some(free);
    }
    if store.files_bytes.is_none() {
        store.files_bytes = Some(dir_size(&data_dir.join("files")));
    }
    let objects = ObjectStore::new(data_dir);
    // Findings from detections' store are worded per language when read: the English
    // signals for an English report or CSV of the same data.
    let english = load_findings_in(data_dir, config, kuroko_model::finding::Lang::En)?;
    let mut data = ReportData::build(Inputs {
        config,
        site: &site,
        findings,
        sessions,
        store,
        objects: &objects,
        generated: Timestamp::now(),
    });
    if let Some(en) = english {
        data.add_english(&en);
    }
    data.assets = assets(data_dir, config)?;
    Ok((
        data,
        Warnings {
            site_created: site_origin == crate::site::SiteOrigin::Created,
            site_not_saved: match site_origin {
                crate::site::SiteOrigin::NotWritable(why) => Some(why),
                _ => None,
            },
            bad_findings,
            bad_sessions: bad_sessions.get(),
        },
    ))
}

/// The asset inventory judged against the advisory list (`kuroko assets`'s view).
fn assets(data_dir: &Path, config: &Config) -> Result<crate::data::Assets, ReportError> {
    let input = |e: kuroko_detect::DetectError| ReportError::Input {
        what: "the asset inventory".into(),
        message: e.to_string(),
    };
    let inv = kuroko_detect::load_assets(data_dir).map_err(input)?;
    let list = kuroko_detect::versions::advisories::AdvisoryList::load(&config.intel.category_dirs)
        .map_err(input)?;
    Ok(crate::data::Assets {
        hosts: kuroko_detect::assets::view::view(&inv, &list, &config.site.vpn()),
        list_date: list.list_date.clone(),
    })
}

/// What the caller should tell the user after gathering.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Warnings {
    pub site_created: bool,
    /// `DIR/site.toml` is absent and could not be created (why): defaults were used.
    pub site_not_saved: Option<String>,
    pub bad_findings: u64,
    pub bad_sessions: u64,
}
