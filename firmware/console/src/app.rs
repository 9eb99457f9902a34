//! Console state and key handling. Nothing here draws or touches the terminal, so every
//! behaviour is testable with plain values.

use crate::snapshot::{SearchResult, Snapshot};
use kuroko_model::Timestamp;
use kuroko_model::finding::Lang;
use std::collections::{BTreeMap, VecDeque};

/// Data older than this is shown marked stale (the source missed two ticks and a half).
pub const STALE_AFTER_NS: i64 = 5_000_000_000;
/// Sparkline samples kept per interface (two minutes at one sample a second).
pub const HISTORY_LEN: usize = 120;
/// Longest query the search box takes (the index has its own, stricter limits).
pub const MAX_QUERY_LEN: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Health,
    Disk,
    Detections,
    Search,
    Alerts,
    /// 通信中: sessions still open (`crate::ui::open`).
    Open,
    /// 資産: the asset inventory (`crate::ui::assets`).
    Assets,
}

impl Screen {
    pub const ALL: [Screen; 7] = [
        Screen::Health,
        Screen::Disk,
        Screen::Detections,
        Screen::Search,
        Screen::Alerts,
        Screen::Open,
        Screen::Assets,
    ];
    pub fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// Keys the console understands, independent of the terminal library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Backspace,
}

/// Rates of one interface, from two successive snapshots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    pub pps: VecDeque<u64>,
    pub bps: VecDeque<u64>,
    last: Option<(i64, u64, u64)>,
}

impl Rates {
    pub fn current_pps(&self) -> Option<u64> {
        self.pps.back().copied()
    }
    pub fn current_bps(&self) -> Option<u64> {
        self.bps.back().copied()
    }
    fn push(&mut self, t_ns: i64, packets: u64, bytes: u64) {
        if let Some((t0, p0, b0)) = self.last
            && t_ns > t0
        {
            let dt = (t_ns - t0) as f64 / 1e9;
            // Counters only grow; a restart of capture resets them, which shows as zero.
            let pps = packets.saturating_sub(p0) as f64 / dt;
            let bps = bytes.saturating_sub(b0) as f64 * 8.0 / dt;
            push_capped(&mut self.pps, pps.round() as u64);
            push_capped(&mut self.bps, bps.round() as u64);
        }
        self.last = Some((t_ns, packets, bytes));
    }
}

fn push_capped(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == HISTORY_LEN {
        q.pop_front();
    }
    q.push_back(v);
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchState {
    pub input: String,
    pub editing: bool,
    /// A query sent to the source and not answered yet.
    pub running: Option<String>,
    pub result: Option<Result<SearchResult, String>>,
    pub selected: usize,
    pub detail: bool,
}

pub struct App {
    pub screen: Screen,
    pub lang: Lang,
    /// ASCII-only borders and sparklines (serial terminals).
    pub ascii: bool,
    /// Time zone for displayed times (the site's).
    pub tz: chrono_tz::Tz,
    /// `[site] vpn_pools`: session addresses in them are shown `(VPN)`.
    pub vpn: kuroko_model::config::VpnPools,
    pub snapshot: Option<Snapshot>,
    /// Wall clock of the last tick (drives staleness; set by the event loop or tests).
    pub now: Timestamp,
    pub rates: BTreeMap<String, Rates>,
    /// Write rate of the store in bytes/s, from successive snapshots.
    pub write_rate: Option<f64>,
    last_written: Option<(i64, u64, bool)>,
    pub detections_selected: usize,
    pub detections_detail: bool,
    pub alerts_selected: usize,
    pub assets_selected: usize,
    pub search: SearchState,
    pub help: bool,
    pub quit: bool,
    search_request: Option<String>,
    /// Who acknowledges alarms at this console, as recorded in the alarm log (the
    /// terminal it runs on, set by whoever starts the console).
    pub operator: String,
    ack_request: bool,
    /// The answer to the last acknowledgment, shown until the next snapshot after it.
    pub ack_result: Option<Result<usize, String>>,
}

impl App {
    pub fn new(lang: Lang, ascii: bool) -> Self {
        App {
            screen: Screen::Health,
            lang,
            ascii,
            tz: chrono_tz::UTC,
            vpn: Default::default(),
            snapshot: None,
            now: Timestamp::default(),
            rates: BTreeMap::new(),
            write_rate: None,
            last_written: None,
            detections_selected: 0,
            detections_detail: false,
            alerts_selected: 0,
            assets_selected: 0,
            search: SearchState::default(),
            help: false,
            quit: false,
            search_request: None,
            operator: "front panel".into(),
            ack_request: false,
            ack_result: None,
        }
    }

    /// Takes a new snapshot from the source and derives rates from the previous one.
    pub fn update(&mut self, mut snap: Snapshot) {
        snap.findings.sort_by(kuroko_model::Finding::report_order);
        let t = snap.taken_at.nanos();
        for iface in &snap.capture.interfaces {
            self.rates
                .entry(iface.name.clone())
                .or_default()
                .push(t, iface.packets, iface.bytes);
        }
        // Two counters can feed the rate (the capture's live one, the store's own);
        // a difference is taken only between two samples of the same counter.
        let live = snap.disk.bytes_written_live;
        if let Some((t0, w0, live0)) = self.last_written
            && t > t0
            && live0 == live
        {
            let dt = (t - t0) as f64 / 1e9;
            self.write_rate = Some(snap.disk.bytes_written.saturating_sub(w0) as f64 / dt);
        }
        self.last_written = Some((t, snap.disk.bytes_written, live));
        // An acknowledgment's answer is shown until a snapshot taken after it arrives.
        if self.ack_result.is_some() && !self.ack_request {
            self.ack_result = self.ack_result.take().filter(|r| r.is_err());
        }
        let n = snap.findings.len();
        if self.detections_selected >= n {
            self.detections_selected = n.saturating_sub(1);
        }
        self.snapshot = Some(snap);
    }

    /// Whether what is shown is older than [`STALE_AFTER_NS`] (or there is nothing yet).
    pub fn is_stale(&self) -> bool {
        match &self.snapshot {
            None => true,
            Some(s) => self.now.nanos() - s.taken_at.nanos() > STALE_AFTER_NS,
        }
    }

    /// Alarms latched and not acknowledged in the current snapshot.
    pub fn unacknowledged_alarms(&self) -> usize {
        self.snapshot
            .as_ref()
            .map_or(0, |s| s.alarms.iter().filter(|a| a.acked.is_none()).count())
    }

    /// Whether the user asked to acknowledge the latched alarms (taken once).
    pub fn take_ack_request(&mut self) -> bool {
        std::mem::take(&mut self.ack_request)
    }

    pub fn on_acknowledged(&mut self, result: Result<usize, String>) {
        self.ack_result = Some(result);
    }

    /// The query the feeder should run next, if the user asked for one.
    pub fn take_search_request(&mut self) -> Option<String> {
        self.search_request.take()
    }

    pub fn on_search_result(&mut self, result: Result<SearchResult, String>) {
        self.search.running = None;
        self.search.selected = 0;
        self.search.detail = false;
        self.search.result = Some(result);
    }

    fn start_search(&mut self, query: String) {
        self.search.input = query.clone();
        self.search.editing = false;
        self.search.running = Some(query.clone());
        self.search_request = Some(query);
    }

    pub fn on_key(&mut self, key: Key) {
        if self.help {
            // Any key closes help; q still quits.
            self.help = false;
            if key == Key::Char('q') {
                self.quit = true;
            }
            return;
        }
        if self.screen == Screen::Search && self.search.editing {
            self.on_edit_key(key);
            return;
        }
        match key {
            Key::Char('q') => self.quit = true,
            Key::Char('?') => self.help = true,
            // Acknowledge the latched alarms (shown on Health, counted in the title).
            Key::Char('a') if self.unacknowledged_alarms() > 0 => {
                self.ack_request = true;
                self.screen = Screen::Health;
            }
            Key::Tab | Key::Right => self.switch(1),
            Key::BackTab | Key::Left => self.switch(Screen::ALL.len() - 1),
            Key::Char(c @ '1'..='7') => {
                self.screen = Screen::ALL[(c as u8 - b'1') as usize];
            }
            Key::Char('/') => {
                self.screen = Screen::Search;
                self.search.editing = true;
                self.search.detail = false;
            }
            Key::Up | Key::Char('k') => self.move_selection(-1),
            Key::Down | Key::Char('j') => self.move_selection(1),
            Key::PageUp => self.move_selection(-10),
            Key::PageDown => self.move_selection(10),
            Key::Home => self.move_selection(isize::MIN / 2),
            Key::End => self.move_selection(isize::MAX / 2),
            Key::Enter => match self.screen {
                Screen::Detections => self.detections_detail = !self.detections_detail,
                Screen::Search => {
                    if self.search_rows() > 0 {
                        self.search.detail = !self.search.detail;
                    } else {
                        self.search.editing = true;
                    }
                }
                _ => {}
            },
            Key::Char('e') if self.screen == Screen::Detections => self.jump_to_evidence(),
            Key::Esc => match self.screen {
                Screen::Detections => self.detections_detail = false,
                Screen::Search => self.search.detail = false,
                _ => {}
            },
            _ => {}
        }
    }

    fn on_edit_key(&mut self, key: Key) {
        match key {
            Key::Enter => {
                let q = self.search.input.trim().to_string();
                if q.is_empty() {
                    self.search.editing = false;
                } else {
                    self.start_search(q);
                }
            }
            Key::Esc => self.search.editing = false,
            Key::Backspace => {
                self.search.input.pop();
            }
            Key::Char(c) if !c.is_control() && self.search.input.len() < MAX_QUERY_LEN => {
                self.search.input.push(c);
            }
            _ => {}
        }
    }

    fn switch(&mut self, by: usize) {
        let n = Screen::ALL.len();
        self.screen = Screen::ALL[(self.screen.index() + by) % n];
    }

    fn search_rows(&self) -> usize {
        match &self.search.result {
            Some(Ok(r)) => r.sessions.len(),
            _ => 0,
        }
    }

    fn move_selection(&mut self, by: isize) {
        let (sel, len) = match self.screen {
            Screen::Detections => (
                &mut self.detections_selected,
                self.snapshot.as_ref().map_or(0, |s| s.findings.len()),
            ),
            Screen::Search => {
                let len = match &self.search.result {
                    Some(Ok(r)) => r.sessions.len(),
                    _ => 0,
                };
                (&mut self.search.selected, len)
            }
            Screen::Alerts => (
                &mut self.alerts_selected,
                self.snapshot.as_ref().map_or(0, |s| s.alerts.recent.len()),
            ),
            Screen::Assets => (
                &mut self.assets_selected,
                self.snapshot.as_ref().map_or(0, |s| s.assets.len()),
            ),
            _ => return,
        };
        if len == 0 {
            *sel = 0;
            return;
        }
        let next = (*sel as isize)
            .saturating_add(by)
            .clamp(0, len as isize - 1);
        *sel = next as usize;
    }

    /// Detections → Search with the selected finding's evidence sessions.
    fn jump_to_evidence(&mut self) {
        let Some(f) = self
            .snapshot
            .as_ref()
            .and_then(|s| s.findings.get(self.detections_selected))
        else {
            return;
        };
        if f.evidence.is_empty() {
            return;
        }
        let ids: Vec<String> = f.evidence.iter().map(|id| format!("\"{id}\"")).collect();
        let query = format!("id:({})", ids.join(" "));
        self.screen = Screen::Search;
        self.start_search(query);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::InterfaceHealth;

    fn snap(t_s: i64, packets: u64, bytes: u64) -> Snapshot {
        let mut s = Snapshot {
            taken_at: Timestamp(t_s * 1_000_000_000),
            ..Default::default()
        };
        s.capture.interfaces.push(InterfaceHealth {
            name: "eth1".into(),
            packets,
            bytes,
            ..Default::default()
        });
        s.disk.bytes_written = bytes;
        s
    }

    #[test]
    fn rates_come_from_successive_snapshots() {
        let mut app = App::new(Lang::En, false);
        app.update(snap(10, 1000, 100_000));
        assert_eq!(app.rates["eth1"].current_pps(), None);
        app.update(snap(12, 3000, 300_000));
        assert_eq!(app.rates["eth1"].current_pps(), Some(1000));
        assert_eq!(app.rates["eth1"].current_bps(), Some(800_000));
        assert_eq!(app.write_rate, Some(100_000.0));
        // A capture restart (counters back to zero) shows as zero, not as a huge number.
        app.update(snap(13, 10, 10));
        assert_eq!(app.rates["eth1"].current_pps(), Some(0));
    }

    #[test]
    fn write_rate_never_mixes_the_live_and_the_store_counter() {
        let mut app = App::new(Lang::En, false);
        // The store's counter (since creation, large) then the capture's live one (since
        // the capture started, small): no rate from the pair, the last rate is kept.
        app.update(snap(10, 0, 5_000_000));
        app.update(snap(11, 0, 6_000_000));
        assert_eq!(app.write_rate, Some(1_000_000.0));
        let mut live = snap(12, 0, 100);
        live.disk.bytes_written_live = true;
        app.update(live);
        assert_eq!(app.write_rate, Some(1_000_000.0));
        let mut live = snap(14, 0, 400_100);
        live.disk.bytes_written_live = true;
        app.update(live);
        assert_eq!(app.write_rate, Some(200_000.0));
    }

    #[test]
    fn staleness_follows_the_clock() {
        let mut app = App::new(Lang::En, false);
        assert!(app.is_stale());
        app.update(snap(100, 0, 0));
        app.now = Timestamp(101 * 1_000_000_000);
        assert!(!app.is_stale());
        app.now = Timestamp(106 * 1_000_000_000);
        assert!(app.is_stale());
    }

    #[test]
    fn keys_switch_screens_and_edit_queries() {
        let mut app = App::new(Lang::En, false);
        app.on_key(Key::Tab);
        assert_eq!(app.screen, Screen::Disk);
        app.on_key(Key::BackTab);
        app.on_key(Key::BackTab);
        assert_eq!(
            app.screen,
            *Screen::ALL.last().unwrap(),
            "wraps to the last"
        );
        assert_eq!(app.screen, Screen::Assets);
        app.on_key(Key::BackTab);
        assert_eq!(app.screen, Screen::Open);
        app.on_key(Key::Char('7'));
        assert_eq!(app.screen, Screen::Assets);
        app.on_key(Key::Char('3'));
        assert_eq!(app.screen, Screen::Detections);
        app.on_key(Key::Char('/'));
        assert_eq!(app.screen, Screen::Search);
        for c in "protocol:ssh".chars() {
            app.on_key(Key::Char(c));
        }
        // 'q' while typing is text, not quit.
        app.on_key(Key::Char('q'));
        app.on_key(Key::Backspace);
        assert!(!app.quit);
        app.on_key(Key::Enter);
        assert_eq!(app.take_search_request().as_deref(), Some("protocol:ssh"));
        assert_eq!(app.take_search_request(), None);
        app.on_key(Key::Char('?'));
        assert!(app.help);
        app.on_key(Key::Char('x'));
        assert!(!app.help && !app.quit);
        app.on_key(Key::Char('q'));
        assert!(app.quit);
    }

    #[test]
    fn evidence_jump_builds_an_id_query() {
        let mut app = App::new(Lang::En, false);
        let mut s = snap(1, 0, 0);
        s.findings.push(kuroko_model::Finding {
            id: "f1".into(),
            rule: "telnet_use".into(),
            title: "Telnet".into(),
            category: kuroko_model::Category::LateralMovement,
            attack: vec![],
            client: None,
            server: None,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            count: 2,
            vulnerability: 2,
            threat: 2,
            risk: kuroko_model::Risk::C,
            countermeasures: vec![],
            evidence: vec!["a-1".into(), "b-2".into()],
            signals: vec![],
            override_reason: None,
            override_source: None,
            note: None,
            volume: Default::default(),
        });
        app.update(s);
        app.on_key(Key::Char('3'));
        app.on_key(Key::Char('e'));
        assert_eq!(app.screen, Screen::Search);
        assert_eq!(
            app.take_search_request().as_deref(),
            Some("id:(\"a-1\" \"b-2\")")
        );
    }
}
