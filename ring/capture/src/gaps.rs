//! The journal of blind intervals, `DIR/stats/gaps.tsv`: every link-down and
//! interface-gone interval of every capture, with its start and end.
//!
//! Why: the stats page keeps only the open interval and the summed length of the closed
//! ones (fixed-size counters), and a new capture replaces the page. The report's coverage
//! section must name each interval when capture was blind, across capture restarts, so the
//! supervisor appends one line when it closes an interval (a few times a day at most,
//! never on the hot path). The open interval of the running (or killed) capture is on its
//! stats page: [`blind_intervals`] joins both.
//!
//! Line format (tab-separated, one interval a line, appended with one write):
//! `down|gone <TAB> interface <TAB> start_ns <TAB> end_ns <TAB> frames_missed_before_rebind`
//! (CLOCK_REALTIME ns). Lines that do not parse (a torn last line) are skipped and counted.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::stats::{StatsReader, StatsSnapshot};

/// Why capture could not see an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapKind {
    /// The interface existed but was down (admin down, no carrier).
    Down,
    /// No interface of that name (deleted, unplugged).
    Gone,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::Down => "down",
            GapKind::Gone => "gone",
        }
    }
}

/// One interval when capture was blind on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub kind: GapKind,
    pub interface: String,
    pub start_ns: u64,
    /// `None`: still open (the capture is running and still blind).
    pub end_ns: Option<u64>,
    /// For a gone interval closed by a re-bind: frames the new interface received before
    /// it (`missed_before_rebind` of that re-bind), else 0.
    pub missed: u64,
    /// The interval ended because its capture stopped or died, not because the link came
    /// back (its true end is unknown: at least this long).
    pub cut_by_capture_end: bool,
}

/// Path of the journal in a data directory.
pub fn journal_path(data_dir: &Path) -> PathBuf {
    data_dir.join("stats").join("gaps.tsv")
}

/// Appends closed intervals to the journal (the capture's supervisor).
#[derive(Clone, Debug)]
pub struct GapJournal {
    path: PathBuf,
}

impl GapJournal {
    pub fn new(data_dir: &Path) -> GapJournal {
        GapJournal {
            path: journal_path(data_dir),
        }
    }

    /// Records one closed interval. Best effort: a journal that cannot be written (full
    /// or read-only disk) loses the interval's line, not its counters on the stats page.
    pub fn record(&self, kind: GapKind, interface: &str, start_ns: u64, end_ns: u64, missed: u64) {
        let line = format!(
            "{}\t{}\t{start_ns}\t{end_ns}\t{missed}\n",
            kind.as_str(),
            interface.replace(['\t', '\n'], " ")
        );
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// The closed intervals of the journal, oldest first, and how many lines were skipped.
pub fn read_journal(data_dir: &Path) -> (Vec<Gap>, usize) {
    let Ok(text) = std::fs::read_to_string(journal_path(data_dir)) else {
        return (Vec::new(), 0);
    };
    let mut gaps = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let kind = match f.first() {
            Some(&"down") => Some(GapKind::Down),
            Some(&"gone") => Some(GapKind::Gone),
            _ => None,
        };
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        match (kind, f.get(1), num(2), num(3), num(4)) {
            (Some(kind), Some(name), Some(start_ns), Some(end_ns), Some(missed)) => {
                gaps.push(Gap {
                    kind,
                    interface: name.to_string(),
                    start_ns,
                    end_ns: Some(end_ns),
                    missed,
                    cut_by_capture_end: false,
                })
            }
            _ => bad += 1,
        }
    }
    gaps.sort_by_key(|g| g.start_ns);
    (gaps, bad)
}

/// The intervals still open on a stats page: open while the capture runs, cut at its last
/// heartbeat when it died without closing them.
pub fn open_gaps(s: &StatsSnapshot, now_ns: u64) -> Vec<Gap> {
    let live = s.is_live(now_ns);
    let mut out = Vec::new();
    for i in &s.interfaces {
        for (kind, since) in [
            (GapKind::Down, i.link.down_since_ns),
            (GapKind::Gone, i.link.gone_since_ns),
        ] {
            if let Some(start_ns) = since {
                out.push(Gap {
                    kind,
                    interface: i.name.clone(),
                    start_ns,
                    end_ns: (!live).then_some(s.heartbeat_ns.max(start_ns)),
                    missed: 0,
                    cut_by_capture_end: !live,
                });
            }
        }
    }
    out
}

/// Every blind interval of the data directory: the journal's closed ones and the stats
/// page's open ones, oldest first; and the journal lines skipped.
pub fn blind_intervals(data_dir: &Path, now_ns: u64) -> (Vec<Gap>, usize) {
    let (mut gaps, bad) = read_journal(data_dir);
    if let Ok(r) = StatsReader::open(data_dir) {
        gaps.extend(open_gaps(&r.snapshot(), now_ns));
    }
    gaps.sort_by_key(|g| g.start_ns);
    (gaps, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trip_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("stats")).unwrap();
        let j = GapJournal::new(dir.path());
        j.record(GapKind::Gone, "eth1", 30, 40, 7);
        j.record(GapKind::Down, "eth1", 10, 20, 0);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(journal_path(dir.path()))
            .unwrap();
        f.write_all(b"down\teth2\t5").unwrap();
        let (g, bad) = read_journal(dir.path());
        assert_eq!(bad, 1);
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[0].kind, g[0].start_ns, g[0].end_ns),
            (GapKind::Down, 10, Some(20))
        );
        assert_eq!((g[1].kind, g[1].missed), (GapKind::Gone, 7));
    }
}
