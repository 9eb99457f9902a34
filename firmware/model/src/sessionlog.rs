//! The durable session log: `DIR/sessions/NNNNNNNN.jsonl`, one `SessionRecord` a line.
//!
//! Why a log and not direct calls: the analyzer, the index, detections and alerts crash and
//! restart independently. Each consumer stores the [`LogPos`] it has consumed *together with*
//! its own state (atomically), and on restart reads on from there, so each is exactly-once
//! by itself. The analyzer, the only writer, records the log position in its checkpoint and
//! truncates the log back to it after a crash, so the log never holds a session twice.
//!
//! Invariants: a reader never returns a torn (unterminated) last line; positions only grow;
//! files rotate at [`FILE_LIMIT`] bytes so old ones can be pruned whole.
//!
//! Provisional records: a session still in progress may appear before its final record as
//! one or more records with `open: true` and the same `id` (an analyzer replay after a
//! crash may write such a record again). Each session has exactly one final record, after
//! all of its provisional ones. Consumers treat a record as "the session as known now":
//! replace by id (the index), or count a session once across its records (detections and
//! alert conditions remember what fired on its open records), or read the log through
//! [`each_session_once`] (the report).
//!
//! Published end: records after the writer's last checkpoint may be rewritten after a crash
//! (the writer truncates back to its checkpoint and replays, and a replay in follow mode
//! need not produce the same bytes). So the writer *publishes* the position of each
//! checkpoint ([`SessionLogWriter::publish`], file `published`), and readers never read past
//! it. A log without the file (tools, tests) is read to its end.
//!
//! Wake-up: consumers need not poll. [`wait_for_publication`] returns as soon as the
//! published end moves: at once when the writer publishes in the same process (a condition
//! variable that [`SessionLogWriter::publish`] signals), within [`PUBLICATION_POLL`] when it
//! is another process (the `published` file is re-read). Any consumer can use it.
//!
//! Generation: a log can be started over (the analyzer found no checkpoint of its own, so it
//! re-analyzes the store from the start: [`SessionLogWriter::reset`]). The new log reuses
//! positions the old one had, so each reset writes a new *generation* (file `generation`).
//! Consumers store the generation next to their position and check both on every run
//! ([`check_cursor`]): a cursor of another generation, or one past the log's readable end
//! (a log cut back under a consumer, e.g. by two analyzers that once wrote at once), makes
//! the consumer rebuild from the start instead of waiting forever for positions that will
//! never hold new records.

use crate::session::SessionRecord;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often [`wait_for_publication`] re-reads the `published` file (for a writer in
/// another process; one in this process wakes the waiters at once).
pub const PUBLICATION_POLL: Duration = Duration::from_millis(250);

/// Publications made by writers in this process (a counter), and the waiters' wake-up.
static PUBLICATIONS: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

fn notify_publication() {
    let (count, cv) = &PUBLICATIONS;
    if let Ok(mut n) = count.lock() {
        *n = n.wrapping_add(1);
    }
    cv.notify_all();
}

/// Waits until the published end of the log in `dir` differs from `*seen` (then stores it
/// there and returns true), or until `timeout` (false). A `*seen` of `None` returns at once.
/// A log without a `published` file (tools, tests) never changes its published end: this
/// waits the whole timeout.
pub fn wait_for_publication(dir: &Path, seen: &mut Option<LogPos>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let (count, cv) = &PUBLICATIONS;
    loop {
        // Read the counter before the file, so a publication in between is not missed.
        let before = count.lock().map(|n| *n).unwrap_or(0);
        let now = published(dir).ok().flatten();
        if seen.is_none() || (now.is_some() && now != *seen) {
            *seen = now.or(Some(LogPos::default()));
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let Ok(guard) = count.lock() else {
            std::thread::sleep(left.min(PUBLICATION_POLL));
            continue;
        };
        if *guard == before {
            let _ = cv.wait_timeout(guard, left.min(PUBLICATION_POLL));
        }
    }
}

/// A file is closed and the next one started once it reaches this size (64 MiB).
pub const FILE_LIMIT: u64 = 64 << 20;
/// Longest line a reader accepts (a session record is a few KiB; anything longer is damage).
pub const MAX_LINE: usize = 8 << 20;

/// A position in the log: file number and byte offset in that file.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct LogPos {
    pub file: u32,
    pub offset: u64,
}

/// Where the published end is kept.
pub fn published_path(dir: &Path) -> PathBuf {
    dir.join("published")
}

/// The published end, if the writer publishes one.
pub fn published(dir: &Path) -> io::Result<Option<LogPos>> {
    match fs::read_to_string(published_path(dir)) {
        Ok(text) => {
            let mut it = text.split_whitespace().map(str::parse::<u64>);
            match (it.next(), it.next()) {
                (Some(Ok(f)), Some(Ok(o))) if f <= u32::MAX as u64 => Ok(Some(LogPos {
                    file: f as u32,
                    offset: o,
                })),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is damaged", published_path(dir).display()),
                )),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where the generation is kept.
pub fn generation_path(dir: &Path) -> PathBuf {
    dir.join("generation")
}

/// The log's generation (0 for a log that was never reset).
pub fn generation(dir: &Path) -> io::Result<u64> {
    match fs::read_to_string(generation_path(dir)) {
        Ok(text) => text.trim().parse::<u64>().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is damaged (not a number)",
                    generation_path(dir).display()
                ),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// What a consumer must do with its stored cursor (see [`check_cursor`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CursorCheck {
    /// Read on from the cursor.
    Valid,
    /// Drop everything consumed so far and read the log again from its start, storing
    /// `generation` with the new positions. `reason` is for the log.
    Rebuild { generation: u64, reason: String },
}

/// Checks a consumer's stored cursor (`pos` consumed in log generation `generation`)
/// against the log: another generation, or a position past the readable end, means the
/// records the consumer holds are not (all) in this log any more.
pub fn check_cursor(dir: &Path, pos: LogPos, generation_seen: u64) -> io::Result<CursorCheck> {
    let current = generation(dir)?;
    if current != generation_seen {
        return Ok(CursorCheck::Rebuild {
            generation: current,
            reason: format!(
                "the session log was started over (generation {generation_seen} -> {current})"
            ),
        });
    }
    let end = SessionLogReader::open(dir)?.end()?;
    if pos > end {
        return Ok(CursorCheck::Rebuild {
            generation: current,
            reason: format!(
                "position {}:{} is past the session log's end {}:{}",
                pos.file, pos.offset, end.file, end.offset
            ),
        });
    }
    Ok(CursorCheck::Valid)
}

/// The file of number `n` (`NNNNNNNN.jsonl`).
pub fn file_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:08}.jsonl"))
}

/// Log file numbers present in `dir`, ascending.
pub fn list_files(dir: &Path) -> io::Result<Vec<u32>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".jsonl")
            && stem.len() == 8
            && let Ok(n) = stem.parse::<u32>()
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Appends session records. One writer per data directory (the analyzer).
pub struct SessionLogWriter {
    dir: PathBuf,
    file_no: u32,
    offset: u64,
    out: BufWriter<File>,
    line: Vec<u8>,
}

impl SessionLogWriter {
    /// Opens (creating) the log and cuts a torn last line left by a crash.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let files = list_files(dir)?;
        let file_no = files.last().copied().unwrap_or(0);
        let path = file_path(dir, file_no);
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        let len = f.metadata()?.len();
        let good = complete_prefix_len(&mut f, len)?;
        if good != len {
            f.set_len(good)?;
            f.sync_all()?;
        }
        f.seek(SeekFrom::Start(good))?;
        if files.is_empty() {
            sync_dir(dir)?;
        }
        Ok(SessionLogWriter {
            dir: dir.to_path_buf(),
            file_no,
            offset: good,
            out: BufWriter::with_capacity(256 << 10, f),
            line: Vec::with_capacity(4096),
        })
    }

    /// The position after the last appended record (not necessarily durable yet).
    pub fn end(&self) -> LogPos {
        LogPos {
            file: self.file_no,
            offset: self.offset,
        }
    }

    pub fn append(&mut self, rec: &SessionRecord) -> io::Result<()> {
        if self.offset >= FILE_LIMIT {
            self.rotate()?;
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, rec).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.offset += self.line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.file_no += 1;
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(file_path(&self.dir, self.file_no))?;
        sync_dir(&self.dir)?;
        self.out = BufWriter::with_capacity(256 << 10, f);
        self.offset = 0;
        Ok(())
    }

    /// Makes everything appended so far durable; returns the durable end.
    pub fn sync(&mut self) -> io::Result<LogPos> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(self.end())
    }

    /// Declares everything up to `pos` final: readers may consume it and it will never be
    /// truncated. Call after the checkpoint that records `pos` is durable.
    pub fn publish(&mut self, pos: LogPos) -> io::Result<()> {
        crate::config::write_atomic(
            &published_path(&self.dir),
            format!("{} {}\n", pos.file, pos.offset).as_bytes(),
        )?;
        notify_publication();
        Ok(())
    }

    /// Drops everything after `pos` (used after a crash to return to the checkpoint).
    /// Refuses to cut into the published part, which readers may already have consumed.
    pub fn truncate(&mut self, pos: LogPos) -> io::Result<()> {
        if let Some(p) = published(&self.dir)?
            && pos < p
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "session log {}: cannot truncate to {}:{} before the published end {}:{}",
                    self.dir.display(),
                    pos.file,
                    pos.offset,
                    p.file,
                    p.offset
                ),
            ));
        }
        self.out.flush()?;
        for n in list_files(&self.dir)? {
            if n > pos.file {
                fs::remove_file(file_path(&self.dir, n))?;
            }
        }
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(file_path(&self.dir, pos.file))?;
        let len = f.metadata()?.len();
        if pos.offset < len {
            f.set_len(pos.offset)?;
        }
        f.sync_all()?;
        sync_dir(&self.dir)?;
        let mut f = f;
        let end = pos.offset.min(len);
        f.seek(SeekFrom::Start(end))?;
        self.file_no = pos.file;
        self.offset = end;
        self.out = BufWriter::with_capacity(256 << 10, f);
        Ok(())
    }

    /// Starts the log over, empty, for a writer that has no checkpoint of its own (it will
    /// write every session again): whatever a dead run wrote is dropped, and when readers
    /// may have consumed any of it (a published end above zero, or a log without a
    /// published end that holds records) a new generation makes them rebuild. Publishes
    /// the empty log, so readers from now on read only what a checkpoint covers.
    pub fn reset(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let published = published(&self.dir)?;
        let files = list_files(&self.dir)?;
        let mut holds_records = false;
        for &n in &files {
            if fs::metadata(file_path(&self.dir, n))?.len() > 0 {
                holds_records = true;
            }
        }
        let seen = match published {
            Some(p) => p > LogPos::default(),
            None => holds_records,
        };
        if seen {
            // First the generation, so a crash later in here still makes readers rebuild
            // (and the next writer resets again: it still has no checkpoint).
            let next = generation(&self.dir)?
                .saturating_add(1)
                .max(crate::time::Timestamp::now().nanos().max(0) as u64);
            crate::config::write_atomic(
                &generation_path(&self.dir),
                format!("{next}\n").as_bytes(),
            )?;
        }
        if published != Some(LogPos::default()) {
            self.publish(LogPos::default())?;
        }
        for &n in &files {
            if n > 0 {
                fs::remove_file(file_path(&self.dir, n))?;
            }
        }
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(file_path(&self.dir, 0))?;
        f.sync_all()?;
        sync_dir(&self.dir)?;
        self.file_no = 0;
        self.offset = 0;
        self.out = BufWriter::with_capacity(256 << 10, f);
        Ok(())
    }

    /// Deletes whole files that end before `pos` (all consumers are past them).
    pub fn prune_before(&mut self, pos: LogPos) -> io::Result<u32> {
        let mut removed = 0;
        for n in list_files(&self.dir)? {
            if n < pos.file && n < self.file_no {
                fs::remove_file(file_path(&self.dir, n))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Length of the prefix of `f` that ends with a newline.
fn complete_prefix_len(f: &mut File, len: u64) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    // Scan backwards in chunks for the last '\n'.
    let mut end = len;
    let mut buf = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads the log from a position.
pub struct SessionLogReader {
    dir: PathBuf,
}

/// A line that could not be read as a session record (damage, not a torn tail).
#[derive(Debug, thiserror::Error)]
#[error("session log {path}: bad record at offset {offset}: {message}")]
pub struct BadRecord {
    pub path: PathBuf,
    pub offset: u64,
    pub message: String,
}

impl SessionLogReader {
    pub fn open(dir: &Path) -> io::Result<Self> {
        Ok(SessionLogReader {
            dir: dir.to_path_buf(),
        })
    }

    /// The end of the complete records now readable (the published end when there is one).
    pub fn end(&self) -> io::Result<LogPos> {
        let end = self.file_end()?;
        Ok(match published(&self.dir)? {
            Some(p) => p.min(end),
            None => end,
        })
    }

    fn file_end(&self) -> io::Result<LogPos> {
        let files = list_files(&self.dir)?;
        let Some(&last) = files.last() else {
            return Ok(LogPos::default());
        };
        let mut f = File::open(file_path(&self.dir, last))?;
        let len = f.metadata()?.len();
        Ok(LogPos {
            file: last,
            offset: complete_prefix_len(&mut f, len)?,
        })
    }

    /// Records after `pos`, each with the position just after it. A damaged line yields one
    /// `Err` (kind `InvalidData`, wrapping [`BadRecord`]) and reading goes on after it; a
    /// torn last line is not returned. If `pos` points into a pruned file, reading starts at
    /// the oldest file still present.
    pub fn read_from(&self, pos: LogPos) -> io::Result<LogIter> {
        let files: Vec<u32> = list_files(&self.dir)?
            .into_iter()
            .filter(|&n| n >= pos.file)
            .collect();
        Ok(LogIter {
            limit: published(&self.dir)?,
            dir: self.dir.clone(),
            files,
            idx: 0,
            start: pos,
            cur: None,
            line: Vec::new(),
        })
    }
}

pub struct LogIter {
    /// Never read past this (the published end).
    limit: Option<LogPos>,
    dir: PathBuf,
    files: Vec<u32>,
    idx: usize,
    start: LogPos,
    cur: Option<(u32, u64, BufReader<File>)>,
    line: Vec<u8>,
}

impl Iterator for LogIter {
    type Item = io::Result<(LogPos, SessionRecord)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.cur.is_none() {
                let &n = self.files.get(self.idx)?;
                self.idx += 1;
                let path = file_path(&self.dir, n);
                let mut f = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Some(Err(e)),
                };
                let offset = if n == self.start.file {
                    self.start.offset
                } else {
                    0
                };
                if let Err(e) = f.seek(SeekFrom::Start(offset)) {
                    return Some(Err(e));
                }
                self.cur = Some((n, offset, BufReader::with_capacity(256 << 10, f)));
            }
            let (n, offset, reader) = self.cur.as_mut()?;
            if let Some(limit) = self.limit
                && (LogPos {
                    file: *n,
                    offset: *offset,
                }) >= limit
            {
                self.files.clear();
                self.cur = None;
                return None;
            }
            self.line.clear();
            let read = match reader
                .by_ref()
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut self.line)
            {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            if read == 0 || self.line.last() != Some(&b'\n') {
                if read > MAX_LINE {
                    let at = *offset;
                    // Skip the rest of the monster line.
                    *offset += read as u64;
                    let mut sink = Vec::new();
                    let _ = reader.read_until(b'\n', &mut sink);
                    *offset += sink.len() as u64;
                    return Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        BadRecord {
                            path: file_path(&self.dir, *n),
                            offset: at,
                            message: format!("line longer than {MAX_LINE} bytes"),
                        },
                    )));
                }
                // End of file, or a torn last line: go on with the next file.
                self.cur = None;
                continue;
            }
            let at = *offset;
            *offset += read as u64;
            let pos = LogPos {
                file: *n,
                offset: *offset,
            };
            return Some(match serde_json::from_slice::<SessionRecord>(&self.line) {
                Ok(rec) => Ok((pos, rec)),
                Err(e) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    BadRecord {
                        path: file_path(&self.dir, *n),
                        offset: at,
                        message: e.to_string(),
                    },
                )),
            });
        }
    }
}

/// Each session of a stream of records once, "as known now" (for consumers that count,
/// like the report): a final record is yielded when it comes and drops the provisional
/// (`open`) records of its session held so far; a provisional record is held (a later one
/// of the same session replaces it) until its final record comes, and the sessions still
/// open at the end of the stream are yielded last, each as its latest provisional record,
/// in id order. Holds one record per session open at once (bounded by the analyzer's flow
/// table), never the final ones.
pub struct EachSessionOnce<I> {
    inner: I,
    open: std::collections::BTreeMap<String, SessionRecord>,
    rest: Option<std::collections::btree_map::IntoValues<String, SessionRecord>>,
}

/// See [`EachSessionOnce`].
pub fn each_session_once<I: Iterator<Item = SessionRecord>>(inner: I) -> EachSessionOnce<I> {
    EachSessionOnce {
        inner,
        open: std::collections::BTreeMap::new(),
        rest: None,
    }
}

impl<I: Iterator<Item = SessionRecord>> Iterator for EachSessionOnce<I> {
    type Item = SessionRecord;
    fn next(&mut self) -> Option<SessionRecord> {
        if let Some(rest) = &mut self.rest {
            return rest.next();
        }
        for rec in self.inner.by_ref() {
            if rec.open {
                self.open.insert(rec.id.clone(), rec);
            } else {
                self.open.remove(&rec.id);
                return Some(rec);
            }
        }
        let rest = self
            .rest
            .insert(std::mem::take(&mut self.open).into_values());
        rest.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Endpoint;
    use crate::time::Timestamp;

    fn rec(i: u64) -> SessionRecord {
        let mut r = SessionRecord::new(
            format!("s{i}"),
            Timestamp(i as i64),
            "tcp",
            Endpoint::new("10.0.0.1".parse().unwrap(), 1000 + i as u16),
            Endpoint::new("10.0.0.2".parse().unwrap(), 80),
        );
        r.bytes_up = i;
        r
    }

    #[test]
    fn each_session_once_keeps_the_final_record_or_the_latest_provisional_one() {
        let open = |i: u64, bytes: u64| {
            let mut r = rec(i);
            r.open = true;
            r.bytes_up = bytes;
            r
        };
        let stream = vec![
            open(1, 10),
            rec(2),
            open(1, 20),
            open(3, 5),
            rec(1),
            open(3, 7),
        ];
        let got: Vec<(String, bool, u64)> = each_session_once(stream.into_iter())
            .map(|r| (r.id, r.open, r.bytes_up))
            .collect();
        assert_eq!(
            got,
            vec![
                ("s2".into(), false, 2),
                ("s1".into(), false, 1),
                ("s3".into(), true, 7)
            ]
        );
    }

    fn ids(dir: &Path, from: LogPos) -> Vec<String> {
        SessionLogReader::open(dir)
            .unwrap()
            .read_from(from)
            .unwrap()
            .map(|r| r.unwrap().1.id)
            .collect()
    }

    #[test]
    fn append_sync_read_resume_and_truncate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sessions");
        let mut w = SessionLogWriter::open(&dir).unwrap();
        for i in 0..5 {
            w.append(&rec(i)).unwrap();
        }
        let mid = w.sync().unwrap();
        for i in 5..8 {
            w.append(&rec(i)).unwrap();
        }
        w.sync().unwrap();
        assert_eq!(ids(&dir, LogPos::default()).len(), 8);
        assert_eq!(ids(&dir, mid), vec!["s5", "s6", "s7"]);
        // Positions returned by the reader resume exactly after each record.
        let all: Vec<_> = SessionLogReader::open(&dir)
            .unwrap()
            .read_from(LogPos::default())
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(all[4].0, mid);
        w.truncate(mid).unwrap();
        w.append(&rec(9)).unwrap();
        w.sync().unwrap();
        assert_eq!(
            ids(&dir, LogPos::default()),
            vec!["s0", "s1", "s2", "s3", "s4", "s9"]
        );
    }

    #[test]
    fn torn_tail_is_never_returned_and_is_cut_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sessions");
        let mut w = SessionLogWriter::open(&dir).unwrap();
        w.append(&rec(1)).unwrap();
        let end = w.sync().unwrap();
        drop(w);
        let path = file_path(&dir, 0);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"id\":\"torn").unwrap();
        assert_eq!(ids(&dir, LogPos::default()), vec!["s1"]);
        assert_eq!(SessionLogReader::open(&dir).unwrap().end().unwrap(), end);
        let mut w = SessionLogWriter::open(&dir).unwrap();
        assert_eq!(w.end(), end);
        w.append(&rec(2)).unwrap();
        w.sync().unwrap();
        assert_eq!(ids(&dir, LogPos::default()), vec!["s1", "s2"]);
    }

    #[test]
    fn damaged_line_is_an_error_and_reading_goes_on() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sessions");
        let mut w = SessionLogWriter::open(&dir).unwrap();
        w.append(&rec(1)).unwrap();
        w.sync().unwrap();
        drop(w);
        let path = file_path(&dir, 0);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"not json\n").unwrap();
        drop(f);
        let mut w = SessionLogWriter::open(&dir).unwrap();
        w.append(&rec(3)).unwrap();
        w.sync().unwrap();
        let items: Vec<_> = SessionLogReader::open(&dir)
            .unwrap()
            .read_from(LogPos::default())
            .unwrap()
            .collect();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[2].is_ok());
        let e = items[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("bad record at offset"), "{e}");
    }

    #[test]
    fn readers_stop_at_the_published_end_and_truncation_respects_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sessions");
        let mut w = SessionLogWriter::open(&dir).unwrap();
        w.append(&rec(1)).unwrap();
        w.append(&rec(2)).unwrap();
        let first = w.sync().unwrap();
        w.publish(first).unwrap();
        w.append(&rec(3)).unwrap();
        w.sync().unwrap();
        // Written and synced, but not published: not readable yet.
        assert_eq!(ids(&dir, LogPos::default()), vec!["s1", "s2"]);
        assert_eq!(SessionLogReader::open(&dir).unwrap().end().unwrap(), first);
        assert!(w.truncate(LogPos::default()).is_err());
        w.truncate(first).unwrap();
        w.append(&rec(4)).unwrap();
        let end = w.sync().unwrap();
        w.publish(end).unwrap();
        assert_eq!(ids(&dir, LogPos::default()), vec!["s1", "s2", "s4"]);
    }

    #[test]
    fn rotation_keeps_order_and_prune_removes_whole_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sessions");
        let mut w = SessionLogWriter::open(&dir).unwrap();
        w.append(&rec(0)).unwrap();
        // Force a rotation without writing 64 MiB.
        w.offset = FILE_LIMIT;
        w.append(&rec(1)).unwrap();
        let end = w.sync().unwrap();
        assert_eq!(end.file, 1);
        assert_eq!(ids(&dir, LogPos::default()), vec!["s0", "s1"]);
        assert_eq!(w.prune_before(end).unwrap(), 1);
        assert_eq!(ids(&dir, LogPos::default()), vec!["s1"]);
    }

    #[test]
    fn reset_starts_over_with_a_new_generation_and_cursors_see_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sessions");
        let mut w = SessionLogWriter::open(&dir).unwrap();
        // A fresh, empty log: reset keeps the generation (nobody read anything).
        w.reset().unwrap();
        assert_eq!(generation(&dir).unwrap(), 0);
        w.append(&rec(1)).unwrap();
        w.append(&rec(2)).unwrap();
        let end = w.sync().unwrap();
        w.publish(end).unwrap();
        assert_eq!(check_cursor(&dir, end, 0).unwrap(), CursorCheck::Valid);
        // Past the end: rebuild.
        let past = LogPos {
            file: 0,
            offset: end.offset + 1,
        };
        assert!(matches!(
            check_cursor(&dir, past, 0).unwrap(),
            CursorCheck::Rebuild { generation: 0, .. }
        ));
        // Started over: empty, published at 0, new generation, old cursors rebuild.
        w.reset().unwrap();
        let g = generation(&dir).unwrap();
        assert!(g > 0);
        assert!(ids(&dir, LogPos::default()).is_empty());
        assert_eq!(published(&dir).unwrap(), Some(LogPos::default()));
        assert!(matches!(
            check_cursor(&dir, LogPos::default(), 0).unwrap(),
            CursorCheck::Rebuild { generation, .. } if generation == g
        ));
        w.append(&rec(3)).unwrap();
        let end = w.sync().unwrap();
        w.publish(end).unwrap();
        assert_eq!(ids(&dir, LogPos::default()), vec!["s3"]);
        assert_eq!(check_cursor(&dir, end, g).unwrap(), CursorCheck::Valid);
        // Unpublished records of a dead run (a log without a published end holds some):
        // readers may have read them, so a reset bumps the generation too.
        std::fs::remove_file(published_path(&dir)).unwrap();
        w.reset().unwrap();
        assert!(generation(&dir).unwrap() > g);
    }

    #[test]
    fn a_publication_wakes_a_waiting_consumer() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sessions");
        let mut w = SessionLogWriter::open(&dir).unwrap();
        w.publish(LogPos::default()).unwrap();
        let mut seen = None;
        // The first call returns at once with what is published now.
        assert!(wait_for_publication(&dir, &mut seen, Duration::ZERO));
        assert_eq!(seen, Some(LogPos::default()));
        // Nothing new: it waits the whole timeout and says so.
        assert!(!wait_for_publication(
            &dir,
            &mut seen,
            Duration::from_millis(20)
        ));
        // A publication from another thread wakes the waiter with the new end (the long
        // timeout is a bound, not what the test measures).
        w.append(&rec(1)).unwrap();
        let end = w.sync().unwrap();
        let waiter = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut seen = Some(LogPos::default());
                let woke = wait_for_publication(&dir, &mut seen, Duration::from_secs(60));
                (woke, seen)
            })
        };
        w.publish(end).unwrap();
        assert_eq!(waiter.join().unwrap(), (true, Some(end)));
    }
}
