//! The engine: session records in, aggregates out.
//!
//! `observe` runs every enabled rule on one record, merges the hits of that record by
//! (rule, client, server) so that one session counts once per finding, and folds them into
//! the aggregates. The engine's whole state (aggregates, VPN windows, counters) is
//! serialisable: the findings store persists it together with the session-log position,
//! which is what makes a consumer exactly-once across crashes.

use crate::aggregate::Aggregate;
use crate::assets::Inventory;
use crate::catalog::RuleId;
use crate::context::Context;
use crate::error::DetectError;
use crate::render;
use crate::rules::{self, Hit, streaming::Relays, vpn_upload::VpnUploads};
use kuroko_model::SessionRecord;
use kuroko_model::config::{Config, LevelOverride};
use kuroko_model::finding::{Finding, Lang};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Findings kept at most; hits that would open a new finding beyond it are counted in
/// `EngineStats::findings_dropped` (existing findings still count up). One per
/// (rule, client, server) keeps this far below the cap on real sites; the cap bounds
/// memory and the store's size against a scan that varies addresses.
pub const MAX_FINDINGS: usize = 100_000;

type Key = (RuleId, Option<IpAddr>, Option<IpAddr>);

/// Counters, named after the event.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EngineStats {
    pub sessions_observed: u64,
    /// Sessions that made at least one hit.
    pub sessions_with_hits: u64,
    pub hits: u64,
    pub findings_dropped: u64,
    pub intel_reloads: u64,
    pub intel_reload_failures: u64,
}

/// Everything the engine must remember across restarts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct EngineState {
    pub aggregates: Vec<Aggregate>,
    #[serde(default)]
    pub vpn: VpnUploads,
    #[serde(default)]
    pub stats: EngineStats,
    #[serde(default)]
    pub relays: Relays,
    #[serde(default)]
    pub ftp_links: crate::rules::ftp::FtpDataLinks,
    /// The asset inventory (`crate::assets`), committed with the findings.
    #[serde(default)]
    pub assets: Inventory,
    /// Sessions seen open (provisional records) → the findings they were counted in, so
    /// that their final record does not count them again (issue 15).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub open_hits: BTreeMap<String, Vec<String>>,
    /// Intel updates seen and re-checks of the past to do (`crate::intel::retro`).
    #[serde(default)]
    pub intel: crate::intel::retro::IntelProgress,
}

/// Open sessions whose counted findings are remembered at most (the oldest are forgotten:
/// their final record would count once more).
pub const MAX_OPEN_TRACKED: usize = 100_000;

pub struct Engine {
    ctx: Context,
    enabled: [bool; RuleId::ALL.len()],
    overrides: BTreeMap<String, LevelOverride>,
    aggregates: BTreeMap<Key, Aggregate>,
    vpn: VpnUploads,
    relays: Relays,
    ftp_links: crate::rules::ftp::FtpDataLinks,
    stats: EngineStats,
    scratch: Vec<Hit>,
    assets: Inventory,
    /// `[assets] enabled`.
    assets_enabled: bool,
    assets_limits: kuroko_model::config::Assets,
    open_hits: BTreeMap<String, Vec<String>>,
    /// The installed intel packs (`DATA/intel/`), when the engine runs on a data directory.
    intel: Option<std::sync::Arc<crate::intel::matcher::Matcher>>,
    intel_progress: crate::intel::retro::IntelProgress,
}

impl Engine {
    /// Builds the engine from the config: site networks, time zone, thresholds, and the
    /// offline intel files (an unreadable list is an error naming the key and the file).
    pub fn new(config: &Config) -> Result<Engine, DetectError> {
        let ctx = Context::new(config)?;
        let mut enabled = [true; RuleId::ALL.len()];
        for id in &config.detect.disabled_rules {
            if let Some(r) = RuleId::parse(id) {
                enabled[r.index()] = false;
            }
        }
        Ok(Engine {
            ctx,
            enabled,
            overrides: config.detect.overrides.clone(),
            aggregates: BTreeMap::new(),
            vpn: VpnUploads::default(),
            relays: Relays::default(),
            ftp_links: Default::default(),
            stats: EngineStats::default(),
            scratch: Vec::new(),
            assets: Inventory::new(&config.assets),
            assets_enabled: config.assets.enabled,
            assets_limits: config.assets.clone(),
            open_hits: BTreeMap::new(),
            intel: None,
            intel_progress: Default::default(),
        })
    }

    /// Loads the intel packs of `data_dir` for live matching (rule `intel_match`). A pack
    /// that cannot be read is an error naming it; the engine then runs without packs.
    pub fn load_intel_packs(&mut self, data_dir: &std::path::Path) -> Result<usize, String> {
        let m = crate::intel::matcher::Matcher::load_shared(data_dir)?;
        let n = m.len();
        self.intel = (!m.is_empty()).then_some(m);
        Ok(n)
    }

    /// The live intel matcher, if packs are loaded.
    pub fn intel_matcher(&self) -> Option<&crate::intel::matcher::Matcher> {
        self.intel.as_deref()
    }

    pub fn intel_progress(&self) -> &crate::intel::retro::IntelProgress {
        &self.intel_progress
    }

    pub fn intel_progress_mut(&mut self) -> &mut crate::intel::retro::IntelProgress {
        &mut self.intel_progress
    }

    /// The intel hits of one session: those the analyzer put in the record, or the
    /// loaded packs' (hashes of stored files included).
    fn intel_hits(&self, s: &SessionRecord) -> Vec<kuroko_model::session::IntelHit> {
        if !s.intel.is_empty() {
            return s.intel.clone();
        }
        let Some(m) = &self.intel else {
            return Vec::new();
        };
        let mut hits = m.match_session(s);
        if let Some(dir) = &self.ctx.files_dir {
            hits.extend(m.match_file_digests(s, dir));
        }
        hits
    }

    /// Counts a session of the past that a re-check (`crate::intel::retro`) found in the
    /// intel of the update of `date`: an `intel_match` hit with the session's own times,
    /// saying it was found on a re-check.
    pub fn observe_retro(
        &mut self,
        s: &SessionRecord,
        hits: &[kuroko_model::session::IntelHit],
        date: &str,
    ) {
        if hits.is_empty() || !self.enabled[RuleId::IntelMatch.index()] {
            return;
        }
        let mut out = Vec::new();
        rules::intel_match::check(s, hits, Some(date), &mut out);
        for h in out {
            self.add((h.rule, h.client, h.server), &h, s);
        }
    }

    /// Counts a session of the past whose stored files a YARA re-check
    /// (`crate::intel::yara_retro`) found matching: `s` carries the re-check's matches in
    /// `files[].yara`; a `yara_match` hit with the session's own times, saying it was
    /// found on a re-check after the rule update of `date`.
    pub fn observe_retro_yara(&mut self, s: &SessionRecord, date: &str) {
        if !self.enabled[RuleId::YaraMatch.index()] {
            return;
        }
        let mut out = Vec::new();
        rules::yara::check(&self.ctx, s, &mut out);
        for mut h in out {
            h.signals.push(crate::signals::encode(
                crate::signals::Msg::YaraRetro,
                &[&date],
            ));
            self.add((h.rule, h.client, h.server), &h, s);
        }
    }

    /// Counts a stored object whose session has left the session log, found by a
    /// re-check (`crate::intel::orphans`): `s` is its stand-in record
    /// (`orphans::orphan_record`, with the re-check's YARA matches in `files[0].yara` for
    /// `yara_match`). The hit has no client or server (those were in the session record)
    /// and says what the files store knows of the object and when it was stored.
    pub fn observe_retro_orphan(
        &mut self,
        rule: RuleId,
        s: &SessionRecord,
        intel: &[kuroko_model::session::IntelHit],
        date: &str,
    ) {
        if !self.enabled[rule.index()] {
            return;
        }
        let mut out = Vec::new();
        match rule {
            RuleId::IntelMatch => rules::intel_match::check(s, intel, Some(date), &mut out),
            RuleId::YaraMatch => {
                rules::yara::check(&self.ctx, s, &mut out);
                for h in &mut out {
                    h.signals.push(crate::signals::encode(
                        crate::signals::Msg::YaraRetro,
                        &[&date],
                    ));
                }
            }
            _ => return,
        }
        let Some(f) = s.files.first() else {
            return;
        };
        let or_dash = |t: &str| {
            if t.is_empty() {
                "-".to_string()
            } else {
                t.to_string()
            }
        };
        for mut h in out {
            h.client = None;
            h.server = None;
            h.signals.push(crate::signals::encode(
                crate::signals::Msg::ObjectLeftLog,
                &[
                    &f.name.clone().unwrap_or_else(|| "-".into()),
                    &f.bytes,
                    &or_dash(&f.kind),
                    &or_dash(&f.direction),
                    &s.id,
                    &f.sha256,
                ],
            ));
            self.add((h.rule, None, None), &h, s);
        }
    }

    /// Lets rules read reconstructed objects (`DIR/files/`), e.g. the names inside
    /// attached archives.
    pub fn with_files_dir(mut self, dir: std::path::PathBuf) -> Engine {
        self.ctx.files_dir = Some(dir);
        self
    }

    /// Runs the rules on one session record.
    pub fn observe(&mut self, s: &SessionRecord) {
        self.stats.sessions_observed += 1;
        if self.assets_enabled {
            self.assets.observe(&self.ctx, s);
        }
        let mut hits = std::mem::take(&mut self.scratch);
        hits.clear();
        rules::check_stateless(&self.ctx, s, &mut hits);
        let intel = self.intel_hits(s);
        if !intel.is_empty() {
            if !s.open {
                self.intel_progress.live_sessions_with_hits += 1;
            }
            rules::intel_match::check(s, &intel, None, &mut hits);
        }
        // A provisional record of an open session: only the rules that decide on one
        // session's partial data; the stateful relays and streaming wait for the final
        // record, which they see once. The VPN upload sums take an open session's bytes
        // so far and replace them with each later record of it, so a big upload is
        // reported while it is still going, once the sum crosses the threshold.
        if !s.open {
            self.relays.learn(&self.ctx, s);
            rules::streaming::check(&self.ctx, &self.relays, s, &mut hits);
        }
        if self.enabled[RuleId::VpnLargeUpload.index()] {
            self.vpn.observe(&self.ctx, s, &mut hits);
        }
        // Findings this session was already counted in while it was open.
        let counted_open = if s.open {
            self.open_hits.get(&s.id).cloned().unwrap_or_default()
        } else {
            self.open_hits.remove(&s.id).unwrap_or_default()
        };
        hits.retain(|h| self.enabled[h.rule.index()]);
        if !hits.is_empty() {
            self.stats.sessions_with_hits += 1;
        }
        // One session counts once per finding: merge its hits by key first.
        hits.sort_by_key(|h| (h.rule, h.client, h.server));
        let mut i = 0;
        while i < hits.len() {
            let key = (hits[i].rule, hits[i].client, hits[i].server);
            let mut merged = hits[i].clone();
            let mut j = i + 1;
            while j < hits.len() && (hits[j].rule, hits[j].client, hits[j].server) == key {
                merged.signals.extend(hits[j].signals.iter().cloned());
                merged.earlier.extend(hits[j].earlier.iter().cloned());
                merged.metric = merged.metric.max(hits[j].metric);
                if merged.peer.is_none() {
                    merged.peer = hits[j].peer.clone();
                }
                j += 1;
            }
            let k = format!("{key:?}");
            if !counted_open.contains(&k) {
                self.add(key, &merged, s);
                if s.open {
                    if !self.open_hits.contains_key(&s.id)
                        && self.open_hits.len() >= MAX_OPEN_TRACKED
                    {
                        self.open_hits.pop_first();
                    }
                    self.open_hits.entry(s.id.clone()).or_default().push(k);
                }
                if matches!(
                    key.0,
                    RuleId::FtpDefaultPortInternal | RuleId::FtpDefaultPortExternal
                ) {
                    let waiting = self.ftp_links.control(s, key);
                    if let Some(agg) = self.aggregates.get_mut(&key) {
                        waiting.into_iter().for_each(|e| agg.add_linked(e));
                    }
                }
            }
            // Further peers of the same session (e.g. two streaming domains in one DNS flow).
            for h in &hits[i + 1..j] {
                if h.peer != merged.peer
                    && let Some(agg) = self.aggregates.get_mut(&key)
                    && let Some(p) = &h.peer
                    && !agg.peers.contains(p)
                {
                    if agg.peers.len() < crate::aggregate::MAX_PEERS {
                        agg.peers.push(p.clone());
                    } else {
                        agg.peers_more += 1;
                    }
                }
            }
            i = j;
        }
        self.scratch = hits;
        // An FTP data connection joins the evidence of its control session's finding.
        if let Some(key) = self.ftp_links.data(s)
            && let Some(agg) = self.aggregates.get_mut(&key)
        {
            agg.add_linked(crate::aggregate::EvidenceRef::of(s));
        }
    }

    fn add(&mut self, key: Key, hit: &Hit, s: &SessionRecord) {
        self.stats.hits += 1;
        if !self.aggregates.contains_key(&key) && self.aggregates.len() >= MAX_FINDINGS {
            self.stats.findings_dropped += 1;
            return;
        }
        // Re-checks of the past must not count these sessions again.
        let counted = match key.0 {
            RuleId::IntelMatch => Some(crate::intel::retro::CountedRule::Intel),
            RuleId::YaraMatch => Some(crate::intel::retro::CountedRule::Yara),
            _ => None,
        };
        if let Some(rule) = counted {
            self.intel_progress.counted.insert(rule, &s.id);
        }
        self.aggregates
            .entry(key)
            .or_insert_with(|| Aggregate::new(hit, s))
            .add(hit, s);
    }

    /// Re-reads the reputation lists when a file changed. Call between batches. On error
    /// the old lists stay in use and the failure is counted.
    pub fn refresh_intel(&mut self) -> Result<bool, DetectError> {
        match self.ctx.reputation.refresh() {
            Ok(true) => {
                self.stats.intel_reloads += 1;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                self.stats.intel_reload_failures += 1;
                Err(e)
            }
        }
    }

    /// The findings, rendered in `lang`, highest risk first (`Finding::report_order`).
    pub fn findings(&self, lang: Lang) -> Vec<Finding> {
        render::findings(self.aggregates.values(), &self.overrides, lang)
    }

    /// The aggregates (unrendered), in key order.
    pub fn aggregates(&self) -> impl Iterator<Item = &Aggregate> {
        self.aggregates.values()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The state to persist.
    pub fn state(&self) -> EngineState {
        EngineState {
            aggregates: self.aggregates.values().cloned().collect(),
            vpn: self.vpn.clone(),
            stats: self.stats.clone(),
            relays: self.relays.clone(),
            ftp_links: self.ftp_links.clone(),
            assets: self.assets.clone(),
            open_hits: self.open_hits.clone(),
            intel: self.intel_progress.clone(),
        }
    }

    /// The asset inventory built so far.
    pub fn assets(&self) -> &Inventory {
        &self.assets
    }

    /// Continues from a persisted state. Aggregates of rules this build does not know
    /// are kept out (counted as dropped findings).
    pub fn restore(&mut self, state: EngineState) {
        self.aggregates.clear();
        self.stats = state.stats;
        self.vpn = state.vpn;
        self.relays = state.relays;
        self.ftp_links = state.ftp_links;
        self.assets = state.assets;
        self.assets.set_limits(&self.assets_limits);
        self.open_hits = state.open_hits;
        self.intel_progress = state.intel;
        for a in state.aggregates {
            match RuleId::parse(&a.rule) {
                Some(r) => {
                    self.aggregates.insert((r, a.client, a.server), a);
                }
                None => self.stats.findings_dropped += 1,
            }
        }
    }
}
