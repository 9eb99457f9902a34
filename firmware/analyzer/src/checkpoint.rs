//! The analyzer's durable checkpoint `DATA/analyzer/checkpoint` (JSON).
//!
//! Written atomically (tmp file, fsync, rename, fsync of the directory) *after* the session
//! log was synced, so it never names log contents that are not on disk. What it holds and
//! why is explained in [`crate::driver`].

use crate::counters::Counters;
use crate::position::PacketPos;
use kuroko_model::sessionlog::LogPos;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Format version; a checkpoint of another version is refused, not misread.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A session emitted before the checkpoint that a replay from `restart` would meet again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmittedSession {
    pub id: String,
    /// `FlowKey::text()` of its flow.
    pub key: String,
    pub first: PacketPos,
    pub last: PacketPos,
    /// Set when the flow ended by FIN or RST: time of its last packet. Late packets of its
    /// 5-tuple shortly after are dropped (counted), on a replay as in the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_ts: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Checkpoint {
    pub version: u32,
    /// Every packet before this position has been analyzed (next to read).
    pub analyzed_to: Option<PacketPos>,
    /// Capture time of the last analyzed packet.
    pub analyzed_ts_ns: i64,
    /// The session log is valid up to here; anything after it is from a run that died.
    pub log: LogPos,
    /// Where a restart reads again (first packet of the oldest flow open at the checkpoint).
    pub restart: Option<PacketPos>,
    /// Sessions already in the log that a replay from `restart` would produce again.
    pub emitted: Vec<EmittedSession>,
    pub counters: Counters,
    /// Wall-clock time of this checkpoint (ns).
    pub written_at_ns: i64,
}

pub fn path(data: &Path) -> PathBuf {
    data.join("analyzer").join("checkpoint")
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read the analyzer checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "the analyzer checkpoint {path} is damaged ({source}); move it away to re-analyze the store from the start"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "the analyzer checkpoint {path} has version {found}, this build reads {CHECKPOINT_VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write the analyzer checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Loads the checkpoint of `data`, or `None` when there is none yet.
pub fn load(data: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let path = path(data);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Read { path, source }),
    };
    let cp: Checkpoint =
        serde_json::from_slice(&text).map_err(|source| CheckpointError::Parse {
            path: path.clone(),
            source,
        })?;
    if cp.version != CHECKPOINT_VERSION {
        return Err(CheckpointError::Version {
            path,
            found: cp.version,
        });
    }
    Ok(Some(cp))
}

/// Writes the checkpoint atomically.
pub fn store(data: &Path, cp: &Checkpoint) -> Result<(), CheckpointError> {
    let path = path(data);
    let err = |source| CheckpointError::Write {
        path: path.clone(),
        source,
    };
    let dir = path.parent().unwrap_or(data);
    fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join("checkpoint.tmp");
    {
        let mut f = File::create(&tmp).map_err(err)?;
        let body = serde_json::to_vec(cp).map_err(|e| err(io::Error::other(e)))?;
        f.write_all(&body).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    fs::rename(&tmp, &path).map_err(err)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let cp = Checkpoint {
            version: CHECKPOINT_VERSION,
            analyzed_to: Some(PacketPos::new(1, 2, 3)),
            log: LogPos {
                file: 0,
                offset: 99,
            },
            emitted: vec![EmittedSession {
                id: "1-0-0".into(),
                key: "6/a".into(),
                first: PacketPos::new(1, 0, 0),
                last: PacketPos::new(1, 2, 0),
                closed_ts: Some(7),
            }],
            ..Checkpoint::default()
        };
        store(dir.path(), &cp).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(cp));
        fs::write(path(dir.path()), b"{not json").unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(CheckpointError::Parse { .. })
        ));
    }
}
