//! Keeping the index inside its own disk budget by dropping its oldest hours.
//!
//! The segment store rotates by itself; the index must too, or a long deployment fills the
//! disk with metadata. When `DIR/index` grows past the budget, the oldest whole hours are
//! deleted until the estimated size is below `REFILL_TARGET` of the budget (tantivy
//! reclaims the space as segments merge).

use crate::index::IndexError;
use crate::ingest::Ingester;
use kuroko_model::config::Config;
use std::path::Path;

/// The index's disk budget when the configuration names none: a week of a busy office
/// link (tens of millions of sessions at ~300 bytes) fits with room to spare.
pub const DEFAULT_INDEX_BUDGET: u64 = 16 << 30;
/// After dropping, aim for this share of the budget so that dropping is not constant.
const REFILL_TARGET: f64 = 0.9;
const HOUR_NS: i64 = 3_600_000_000_000;

/// Bytes the index takes on disk.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The budget for the index: `[storage] index_budget`, or `DEFAULT_INDEX_BUDGET` when it
/// does not parse (the config's own validation reports that).
pub fn index_budget(config: &Config) -> u64 {
    config
        .storage
        .index_budget_bytes()
        .unwrap_or(DEFAULT_INDEX_BUDGET)
}

/// Drops the oldest hours when the index is over its budget. Returns the sessions dropped.
pub fn enforce(ing: &mut Ingester, config: &Config) -> Result<u64, IndexError> {
    enforce_budget(ing, index_budget(config))
}

pub fn enforce_budget(ing: &mut Ingester, budget: u64) -> Result<u64, IndexError> {
    let size = dir_size(&ing.index.path);
    if size <= budget {
        return Ok(0);
    }
    let per_hour = crate::aggregate::sessions_per_hour(&ing.index)?;
    let total: u64 = per_hour.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return Ok(0);
    }
    let keep_share = (budget as f64 * REFILL_TARGET) / size as f64;
    let drop_target = ((1.0 - keep_share) * total as f64).ceil() as u64;
    let mut dropped = 0;
    let mut cutoff = None;
    for (hour, n) in &per_hour {
        if dropped >= drop_target {
            break;
        }
        dropped += n;
        cutoff = Some(hour.saturating_add(HOUR_NS));
    }
    if let Some(c) = cutoff {
        ing.delete_before(c)?;
        ing.commit()?;
    }
    Ok(dropped)
}
