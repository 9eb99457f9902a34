//! `segments/damage.tsv`: damage that readers found in sealed segments.
//!
//! A sealed segment's header counts the blocks its writer knew were damaged (failed
//! writes). Damage that happens later (a flipped bit, an unreadable sector) is found only
//! when the segment is read: by the analyzer, `kuroko pcap`, `kuroko status --verify`. A
//! reader cannot change a sealed header, so every scan that finds damage in a sealed
//! segment records it here, one line per damaged place, and `kuroko status` counts it
//! (damaged blocks, packets, segments; the `damaged_slots` alarm) for as long as that
//! segment generation is in the ring.
//!
//! Line format (tab-separated): `seq slot offset len kind packets`. Best effort: a
//! read-only data directory (evidence on write-protected media) records nothing, and a
//! reader never fails because of this file. A place already recorded is not written again;
//! the file is pruned of generations the ring has overwritten once it passes
//! [`PRUNE_AT`] bytes.

use crate::layout::Paths;
use crate::reader::{Damage, DamageKind};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

/// Past this size a recording rewrites the file without overwritten generations.
pub const PRUNE_AT: u64 = 64 * 1024;

/// One recorded place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub slot: u32,
    pub offset: u64,
    pub len: u64,
    pub kind: DamageKind,
    pub packets: u64,
}

pub fn path(paths: &Paths) -> PathBuf {
    paths.segments.join("damage.tsv")
}

fn kind_str(k: DamageKind) -> &'static str {
    match k {
        DamageKind::PayloadChecksum => "payload_checksum",
        DamageKind::UnitChecksum => "unit_checksum",
        DamageKind::BlockHeader => "block_header",
        DamageKind::MalformedRecord => "malformed_record",
    }
}

fn parse_kind(s: &str) -> Option<DamageKind> {
    Some(match s {
        "payload_checksum" => DamageKind::PayloadChecksum,
        "unit_checksum" => DamageKind::UnitChecksum,
        "block_header" => DamageKind::BlockHeader,
        "malformed_record" => DamageKind::MalformedRecord,
        _ => return None,
    })
}

fn line(e: &Entry) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\n",
        e.seq,
        e.slot,
        e.offset,
        e.len,
        kind_str(e.kind),
        e.packets
    )
}

/// Every recorded place (lines that do not parse are skipped).
pub fn load(paths: &Paths) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path(paths)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some(Entry {
                seq: f.next()?.parse().ok()?,
                slot: f.next()?.parse().ok()?,
                offset: f.next()?.parse().ok()?,
                len: f.next()?.parse().ok()?,
                kind: parse_kind(f.next()?)?,
                packets: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Records `found` (damage of one scan of sealed segments); `oldest_seq` is the oldest
/// generation still in the ring (older lines are dropped when the file is pruned).
pub fn record(paths: &Paths, found: &[Damage], oldest_seq: u64) {
    if found.is_empty() {
        return;
    }
    let have = load(paths);
    let known: HashSet<(u64, u64)> = have.iter().map(|e| (e.seq, e.offset)).collect();
    let mut new: Vec<Entry> = Vec::new();
    for d in found {
        if known.contains(&(d.seq, d.offset))
            || new.iter().any(|e| (e.seq, e.offset) == (d.seq, d.offset))
        {
            continue;
        }
        new.push(Entry {
            seq: d.seq,
            slot: d.slot,
            offset: d.offset,
            len: d.len,
            kind: d.kind,
            packets: d.packets,
        });
    }
    if new.is_empty() {
        return;
    }
    let p = path(paths);
    let size = std::fs::metadata(&p).map_or(0, |m| m.len());
    if size >= PRUNE_AT {
        let mut text = String::new();
        for e in have.iter().filter(|e| e.seq >= oldest_seq).chain(&new) {
            text.push_str(&line(e));
        }
        let tmp = p.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &p);
        }
        return;
    }
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
    else {
        return;
    };
    // One write: concurrent readers append whole lines.
    let text: String = new.iter().map(line).collect();
    let _ = f.write_all(text.as_bytes());
}
