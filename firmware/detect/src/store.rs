//! The durable findings store, `DIR/findings/state.json`: the engine's state and the
//! session-log position it has consumed, in one file, replaced atomically (write a
//! temporary file, fsync it, rename it over the old one, fsync the directory).
//!
//! Because the findings and the position are one file, a crash leaves either the old
//! pair or the new pair, never findings without their position or the reverse: a
//! consumer that re-reads the log from the stored position after a crash sees each
//! session exactly once.

use crate::engine::EngineState;
use crate::error::DetectError;
use kuroko_model::Timestamp;
use kuroko_model::sessionlog::LogPos;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the file layout; a newer file is refused rather than misread.
pub const FORMAT: u32 = 1;
pub const STATE_FILE: &str = "state.json";
const TMP_FILE: &str = "state.json.tmp";

/// What one commit holds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct StoredState {
    pub format: u32,
    /// The session-log position consumed (just after the last record observed).
    pub pos: LogPos,
    pub committed_at: Timestamp,
    pub engine: EngineState,
    /// Generation of the session log `pos` belongs to (see `kuroko_model::sessionlog`).
    #[serde(default)]
    pub log_generation: u64,
}

/// `DIR/findings`.
pub fn findings_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("findings")
}

/// Takes the store's writer lock (`DIR/findings/lock`, released when the file is
/// dropped or the process dies). A second writer gets `DetectError::Busy`.
pub fn lock(data_dir: &Path) -> Result<std::fs::File, DetectError> {
    let dir = findings_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|source| DetectError::StoreIo {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| DetectError::StoreIo {
            path: path.clone(),
            source,
        })?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(DetectError::Busy { path: dir }),
        Err(std::fs::TryLockError::Error(source)) => Err(DetectError::StoreIo { path, source }),
    }
}

/// The stored state, or `None` when nothing was committed yet.
pub fn load(data_dir: &Path) -> Result<Option<StoredState>, DetectError> {
    read(data_dir, |s: &StoredState| s.format)
}

/// The stored aggregates alone (the findings, their evidence sessions and volumes): the
/// rest of the engine's state (the asset inventory above all, then relays, VPN counters,
/// intel progress) is skipped by the parser rather than built and dropped. For readers
/// of the findings (evidence export, `findings`, reports), which run after each analysis:
/// parsing the whole state for them cost as much as keeping the inventory.
pub fn load_aggregates(
    data_dir: &Path,
) -> Result<Option<Vec<crate::aggregate::Aggregate>>, DetectError> {
    #[derive(Deserialize)]
    struct Engine {
        aggregates: Vec<crate::aggregate::Aggregate>,
    }
    #[derive(Deserialize)]
    struct Aggregates {
        format: u32,
        engine: Engine,
    }
    Ok(read(data_dir, |s: &Aggregates| s.format)?.map(|s| s.engine.aggregates))
}

/// `state.json` parsed as `T` (all of it, or the part `T` names), whose layout version
/// `format` gives; a newer layout is refused.
fn read<T: serde::de::DeserializeOwned>(
    data_dir: &Path,
    format: impl Fn(&T) -> u32,
) -> Result<Option<T>, DetectError> {
    let path = findings_dir(data_dir).join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DetectError::StoreIo { path, source }),
    };
    let state: T = serde_json::from_slice(&bytes).map_err(|e| DetectError::Store {
        path: path.clone(),
        message: format!(
            "cannot be read ({e}); move it away to rebuild the findings from the session log"
        ),
    })?;
    if format(&state) > FORMAT {
        return Err(DetectError::Store {
            path,
            message: format!(
                "written by a newer Kuroko (format {}, this build reads {FORMAT}); update the firmware",
                format(&state)
            ),
        });
    }
    Ok(Some(state))
}

/// Replaces the stored state atomically and durably.
pub fn commit(data_dir: &Path, state: &StoredState) -> Result<(), DetectError> {
    let dir = findings_dir(data_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DetectError::StoreIo { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let tmp = dir.join(TMP_FILE);
    let fin = dir.join(STATE_FILE);
    let bytes = serde_json::to_vec(state).map_err(|e| DetectError::Store {
        path: fin.clone(),
        message: format!("cannot serialise the findings: {e}"),
    })?;
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &fin).map_err(io(&fin))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io(&dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_then_load_round_trips_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let s = StoredState {
            format: FORMAT,
            pos: LogPos {
                file: 2,
                offset: 991,
            },
            committed_at: Timestamp(5),
            engine: EngineState::default(),
            log_generation: 3,
        };
        commit(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(s));
        assert!(!findings_dir(dir.path()).join(TMP_FILE).exists());
    }

    #[test]
    fn one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let e = lock(dir.path()).unwrap_err().to_string();
        assert!(e.contains("another process"), "{e}");
        drop(held);
        lock(dir.path()).unwrap();
    }

    #[test]
    fn a_damaged_or_newer_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(findings_dir(dir.path())).unwrap();
        std::fs::write(findings_dir(dir.path()).join(STATE_FILE), b"{\"format\":1,").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("state.json") && e.contains("move it away"),
            "{e}"
        );
        std::fs::write(findings_dir(dir.path()).join(STATE_FILE), br#"{"format":99,"pos":{"file":0,"offset":0},"committed_at":"2026-01-01T00:00:00Z","engine":{"aggregates":[]}}"#).unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("newer"), "{e}");
    }
}
