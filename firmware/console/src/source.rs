//! Where the console's data comes from, and the threads that fetch it.
//!
//! The UI thread never reads the disk. A snapshot thread asks the [`Source`] for a
//! [`Snapshot`] once a tick and a search thread runs queries; both send results over
//! channels. If the disk is slow, snapshots simply arrive late and the UI marks what it
//! shows as stale — it never freezes, and a technician can still quit.

use crate::snapshot::{SearchResult, Snapshot};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// Most rows a console search asks for (the screen shows a few dozen).
pub const SEARCH_LIMIT: usize = 200;

pub trait Source: Send + Sync + 'static {
    /// Gathers what the screens show. Never fails: problems go into `warnings`.
    fn snapshot(&self) -> Snapshot;
    /// Runs a query; the error is a message for the user (e.g. with the column).
    fn search(&self, query: &str, limit: usize) -> Result<SearchResult, String>;
    /// Acknowledges every latched alarm as `who` (recorded in the alarm log); returns how
    /// many. The next snapshot shows them acknowledged.
    fn acknowledge(&self, who: &str) -> Result<usize, String> {
        let _ = who;
        Err("this source cannot record acknowledgments".into())
    }
}

/// What the UI asks of the source's request thread.
enum Request {
    Search(String),
    Acknowledge(String),
}

pub enum Update {
    Snapshot(Box<Snapshot>),
    Search(Result<SearchResult, String>),
    /// The answer to [`Feeder::request_acknowledge`].
    Acknowledged(Result<usize, String>),
}

/// The background threads feeding one console.
pub struct Feeder {
    updates: Receiver<Update>,
    queries: Option<Sender<Request>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Feeder {
    pub fn spawn<S: Source>(source: S, interval: Duration) -> std::io::Result<Feeder> {
        let source = Arc::new(source);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, updates) = mpsc::channel();
        let (qtx, qrx) = mpsc::channel::<Request>();
        let mut threads = Vec::new();
        {
            let (source, stop, tx) = (source.clone(), stop.clone(), tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("console-snapshot".into())
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            let snap = source.snapshot();
                            if tx.send(Update::Snapshot(Box::new(snap))).is_err() {
                                break;
                            }
                            // Sleep in small steps so quitting is prompt.
                            let mut waited = Duration::ZERO;
                            while waited < interval && !stop.load(Ordering::Relaxed) {
                                let step = Duration::from_millis(50).min(interval - waited);
                                std::thread::sleep(step);
                                waited += step;
                            }
                        }
                    })?,
            );
        }
        {
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("console-search".into())
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            match qrx.recv_timeout(Duration::from_millis(100)) {
                                Ok(req) => {
                                    let u = match req {
                                        Request::Search(q) => {
                                            Update::Search(source.search(&q, SEARCH_LIMIT))
                                        }
                                        Request::Acknowledge(who) => {
                                            Update::Acknowledged(source.acknowledge(&who))
                                        }
                                    };
                                    if tx.send(u).is_err() {
                                        break;
                                    }
                                }
                                Err(RecvTimeoutError::Timeout) => {}
                                Err(RecvTimeoutError::Disconnected) => break,
                            }
                        }
                    })?,
            );
        }
        Ok(Feeder {
            updates,
            queries: Some(qtx),
            stop,
            threads,
        })
    }

    /// The next update, if one has arrived.
    pub fn try_recv(&self) -> Option<Update> {
        self.updates.try_recv().ok()
    }

    pub fn request_search(&self, query: String) {
        if let Some(q) = &self.queries {
            let _ = q.send(Request::Search(query));
        }
    }

    /// Asks the source to acknowledge the latched alarms as `who`.
    pub fn request_acknowledge(&self, who: String) {
        if let Some(q) = &self.queries {
            let _ = q.send(Request::Acknowledge(who));
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.queries = None;
        // A thread stuck in a slow source call is left to finish on its own: the console
        // must quit at once even when the disk does not answer.
        for t in self.threads.drain(..) {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::Timestamp;
    use std::sync::atomic::AtomicU64;

    struct Counting(AtomicU64);
    impl Source for Counting {
        fn snapshot(&self) -> Snapshot {
            let n = self.0.fetch_add(1, Ordering::Relaxed);
            Snapshot {
                taken_at: Timestamp(n as i64),
                ..Default::default()
            }
        }
        fn search(&self, query: &str, _limit: usize) -> Result<SearchResult, String> {
            if query == "bad" {
                Err("column 1: bad".into())
            } else {
                Ok(SearchResult {
                    query: query.into(),
                    total: Some(0),
                    sessions: vec![],
                    snippets: Default::default(),
                })
            }
        }
    }

    #[test]
    fn feeder_delivers_snapshots_and_search_results() {
        let f = Feeder::spawn(Counting(AtomicU64::new(0)), Duration::from_millis(10)).unwrap();
        f.request_search("bad".into());
        let mut snaps = 0;
        let mut search = None;
        for _ in 0..400 {
            match f.try_recv() {
                Some(Update::Snapshot(_)) => snaps += 1,
                Some(Update::Search(r)) => search = Some(r),
                Some(Update::Acknowledged(_)) => {}
                None => std::thread::sleep(Duration::from_millis(5)),
            }
            if snaps >= 3 && search.is_some() {
                break;
            }
        }
        assert!(snaps >= 3, "got {snaps} snapshots");
        assert_eq!(search, Some(Err("column 1: bad".to_string())));
    }
}
