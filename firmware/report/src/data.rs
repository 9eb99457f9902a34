//! Everything a report shows, gathered once.
//!
//! [`ReportData::build`] reads the inputs (findings, one pass over the session log, store
//! status, configuration, `site.toml`) and applies the consultant's level overrides. The
//! HTML and PDF renderers read only this value, so every output of one run shows the same
//! numbers, in either language.

use crate::environment::{EnvCollector, EnvStats};
use crate::objects::{MailText, ObjectStore};
use crate::site::SiteFile;
use crate::texts;
use ipnet::IpNet;
use kuroko_model::config::Config;
use kuroko_model::finding::{Category, Finding, Lang, Risk};
use kuroko_model::{SessionRecord, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Evidence sessions kept for the report in total (each finding's list is already capped
/// by detections; this bounds a report over thousands of findings).
pub const MAX_EVIDENCE_SESSIONS: usize = 5000;
/// Evidence sessions listed per finding in the details.
pub const MAX_EVIDENCE_ROWS: usize = 20;
/// Mails reproduced per finding.
pub const MAX_MAILS_PER_FINDING: usize = 3;

/// The store's health and extent, from the segment store's status (`kuroko status`).
/// Every field is optional: the report says "unknown" rather than invent a number.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct StoreSummary {
    /// Oldest and newest packet still stored.
    pub retention_start: Option<Timestamp>,
    pub retention_end: Option<Timestamp>,
    /// Bytes the segment ring occupies / may occupy.
    pub disk_used: Option<u64>,
    pub disk_budget: Option<u64>,
    /// The file system holding the data directory.
    pub fs_total: Option<u64>,
    pub fs_free: Option<u64>,
    /// Reconstructed objects (`files/`).
    pub files_bytes: Option<u64>,
    pub segments: Option<u64>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    /// Packets lost before they reached the disk (kernel and writer drops).
    pub drops: Option<u64>,
    /// Packet time up to which the analyzer has processed the store.
    pub analyzed_to: Option<Timestamp>,
    /// How far analysis is behind the newest stored packet, in seconds.
    pub analyzer_lag_secs: Option<f64>,
    /// What capture could not see or keep (§1.4), as `kuroko status` reports it.
    pub coverage: Coverage,
    /// Packets the analyzer read from the store (`kuroko status`'s analyzer counters:
    /// every packet, also those in no session such as ARP), the number status shows.
    pub analyzed_packets: Option<u64>,
}

/// Capture coverage: when capture was blind, what it lost and why, what the disk damaged.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct Coverage {
    /// Whether the figures could be read (a capture's stats page exists); else the report
    /// says coverage is unknown (an imported store has no capture figures).
    pub capture_known: bool,
    /// Intervals when capture was blind on an interface, oldest first.
    pub gaps: Vec<BlindInterval>,
    /// Frames lost, by cause (`kernel_ring`, `backpressure`, `missed_before_rebind`, …):
    /// only causes with losses.
    pub losses: Vec<(String, u64)>,
    /// Failed disk writes since the store was created, and the packets they lost.
    pub write_errors: u64,
    pub write_error_packets: u64,
    /// Slots whose header cannot be read, segments with damaged blocks.
    pub damaged_slots: u64,
    pub damaged_segments: u64,
    pub damaged_blocks: u64,
    /// Times a kernel capture ring filled to its high-water mark (early warning: the
    /// capture was close to losing frames), and the highest fill in percent.
    pub ring_near_loss: u64,
    pub ring_peak_fill_pct: u64,
    /// The `scrub_behind` alarm's detail in English and Japanese when the background scrub
    /// has fallen far behind: damage in sealed segments it has not reached is not counted
    /// in the figures above.
    pub scrub_behind: Option<(String, String)>,
}

/// One interval when capture could not see an interface.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct BlindInterval {
    pub interface: String,
    /// The interface was gone (deleted, unplugged), not just down.
    pub gone: bool,
    pub start: Timestamp,
    /// `None`: still blind when the report was made.
    pub end: Option<Timestamp>,
    /// Frames a re-created interface received before capture bound to it.
    pub missed: u64,
    /// The interval ended with its capture (stopped or died), not with the link.
    pub cut_by_capture_end: bool,
}

/// Where an override came from (the finding record's own field).
pub use kuroko_model::finding::OverrideSource;

/// A finding with its final grade, how it got there, and the analyst's note.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct GradedFinding {
    /// 1-based number in the report (highest risk first).
    pub no: usize,
    /// With the final levels and risk.
    pub finding: Finding,
    /// Levels before any override here (detections' defaults or the config's override).
    pub original_vulnerability: u8,
    pub original_threat: u8,
    pub original_risk: Risk,
    pub override_source: Option<OverrideSource>,
    pub override_reason: Option<String>,
    pub note: Option<String>,
    /// The signals worded in English when `finding` was read in Japanese (findings from
    /// detections' store are read once per language; see [`ReportData::add_english`]).
    #[serde(skip)]
    pub signals_en: Option<Vec<String>>,
}

impl GradedFinding {
    /// The title in `lang`: detections' catalog, else the report's own texts, else the
    /// finding's title as stored.
    pub fn title(&self, lang: Lang) -> String {
        if let Some(r) = kuroko_detect::RuleId::parse(&self.finding.rule) {
            return r.info().title(lang).to_string();
        }
        texts::rule_text(&self.finding.rule, lang)
            .map(|t| t.title.to_string())
            .unwrap_or_else(|| self.finding.title.clone())
    }
    /// Countermeasures in `lang`, from the same sources as [`Self::title`].
    pub fn countermeasures(&self, lang: Lang) -> Vec<String> {
        if let Some(r) = kuroko_detect::RuleId::parse(&self.finding.rule) {
            return r
                .info()
                .countermeasures(lang)
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        match texts::rule_text(&self.finding.rule, lang) {
            Some(t) => t.countermeasures.iter().map(|s| s.to_string()).collect(),
            None => self.finding.countermeasures.clone(),
        }
    }
    /// Why it fired (「検知の根拠となった通信の特徴」) in `lang` when known in it.
    pub fn signals(&self, lang: Lang) -> &[String] {
        match (lang, &self.signals_en) {
            (Lang::En, Some(en)) => en,
            _ => &self.finding.signals,
        }
    }
    /// The reasoning behind the levels: the rule's text, then this finding's signals.
    pub fn reasoning(&self, lang: Lang) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(t) = texts::rule_text(&self.finding.rule, lang) {
            v.push(t.reasoning.to_string());
        }
        for s in self.signals(lang) {
            v.push(s.clone());
        }
        v
    }
    pub fn overridden(&self) -> bool {
        self.override_source.is_some()
    }
}

/// Findings of one category, told as one scenario.
#[derive(Clone, Debug)]
pub struct Scenario<'a> {
    pub category: Category,
    pub findings: Vec<&'a GradedFinding>,
    /// The worst finding sets the scenario's grade.
    pub risk: Risk,
    pub vulnerability: u8,
    pub threat: u8,
    pub countermeasures: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ReportData {
    pub site_name: String,
    pub customer: String,
    pub analyst: String,
    pub timezone: chrono_tz::Tz,
    pub internal_networks: Vec<IpNet>,
    /// `[site] vpn_pools`: the addresses remote users get, labelled as such.
    pub vpn_pools: kuroko_model::config::VpnPools,
    pub generated: Timestamp,
    /// The diagnosis period: the retention window, else the sessions' span.
    pub period: Option<(Timestamp, Timestamp)>,
    pub store: StoreSummary,
    pub env: EnvStats,
    /// Highest risk first (then most recent), numbered `no` 1, 2, … in this order, so that
    /// No. 1 is the worst finding everywhere (lists, 主要なリスク, CSV); the scenarios
    /// group them by category.
    pub findings: Vec<GradedFinding>,
    /// Evidence sessions by id (those found in the log).
    pub evidence: BTreeMap<String, SessionRecord>,
    /// Reconstructed mails by SHA-256 (of evidence sessions).
    pub mails: BTreeMap<String, MailText>,
    /// Objects of evidence sessions present in `files/`.
    pub objects_present: HashSet<String>,
    /// Evidence ids the session log did not have (rotated out or not yet analyzed).
    pub missing_evidence: usize,
    /// The asset inventory as `kuroko assets` shows it (§3.6); empty unless the caller
    /// reads it (`inputs::gather` does).
    pub assets: Assets,
    /// The servers' leaf certificates seen in the sessions (§3.7).
    pub certs: crate::certificates::CertStats,
}

/// The asset inventory judged against the advisory list, for §3.6.
#[derive(Clone, Debug, Default)]
pub struct Assets {
    pub hosts: Vec<kuroko_detect::assets::view::HostView>,
    /// The advisory list's date.
    pub list_date: String,
}

/// What [`ReportData::build`] reads.
pub struct Inputs<'a, I: Iterator<Item = SessionRecord>> {
    pub config: &'a Config,
    pub site: &'a SiteFile,
    pub findings: Vec<Finding>,
    pub sessions: I,
    pub store: StoreSummary,
    pub objects: &'a ObjectStore,
    pub generated: Timestamp,
}

impl ReportData {
    pub fn build<I: Iterator<Item = SessionRecord>>(inp: Inputs<'_, I>) -> ReportData {
        let cfg = inp.config;
        let internal = cfg.site.internal_nets();
        let timezone = cfg.site.tz().unwrap_or(chrono_tz::Asia::Tokyo);

        let findings = grade_all(inp.findings, cfg, inp.site);

        let mut wanted: HashSet<String> = HashSet::new();
        for f in &findings {
            for id in &f.finding.evidence {
                if wanted.len() >= MAX_EVIDENCE_SESSIONS {
                    break;
                }
                wanted.insert(id.clone());
            }
        }
        let mut env = EnvCollector::new(internal.clone());
        if let Ok(hours) = kuroko_model::config::BusinessHours::parse(&cfg.site.business_hours) {
            env = env.with_business_hours(hours, timezone);
        }
        let mut certs = crate::certificates::CertCollector::new(internal.clone());
        let mut evidence = BTreeMap::new();
        for s in inp.sessions {
            env.add(&s);
            certs.add(&s);
            if wanted.contains(&s.id) {
                evidence.insert(s.id.clone(), s);
            }
        }
        let env = env.finish();
        let missing_evidence = wanted.len() - evidence.len();

        let mut mails = BTreeMap::new();
        let mut objects_present = HashSet::new();
        for s in evidence.values() {
            for f in &s.files {
                if inp.objects.content_path(&f.sha256).is_some() {
                    objects_present.insert(f.sha256.clone());
                }
            }
            if let Some(m) = &s.mail {
                let shas = m
                    .eml_sha256
                    .iter()
                    .chain(m.messages.iter().filter_map(|x| x.eml_sha256.as_ref()));
                for sha in shas.take(MAX_MAILS_PER_FINDING) {
                    if let Some(t) = inp.objects.mail_text(sha) {
                        objects_present.insert(sha.clone());
                        mails.insert(sha.clone(), t);
                    }
                }
            }
        }

        let period = match (inp.store.retention_start, inp.store.retention_end) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => match (env.first, env.last) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => {
                    let a = findings.iter().map(|f| f.finding.first_seen).min();
                    let b = findings.iter().map(|f| f.finding.last_seen).max();
                    a.zip(b)
                }
            },
        };

        let pick = |a: &str, b: &str| {
            if a.trim().is_empty() {
                b.to_string()
            } else {
                a.to_string()
            }
        };
        ReportData {
            site_name: pick(&inp.site.site.name, &cfg.site.name),
            customer: pick(&inp.site.site.customer, &cfg.site.customer),
            analyst: inp.site.site.analyst.clone(),
            timezone,
            internal_networks: internal,
            vpn_pools: cfg.site.vpn(),
            generated: inp.generated,
            period,
            store: inp.store,
            env,
            findings,
            evidence,
            mails,
            objects_present,
            missing_evidence,
            assets: Assets::default(),
            certs: certs.finish(),
        }
    }

    /// Findings highest risk first (then most recent), for the top-risks table.
    pub fn by_risk(&self) -> Vec<&GradedFinding> {
        let mut v: Vec<&GradedFinding> = self.findings.iter().collect();
        v.sort_by(|a, b| Finding::report_order(&a.finding, &b.finding));
        v
    }

    /// Findings per grade, A first.
    pub fn grade_counts(&self) -> [(Risk, usize); 5] {
        Risk::ALL.map(|r| {
            (
                r,
                self.findings.iter().filter(|f| f.finding.risk == r).count(),
            )
        })
    }

    /// Findings per (vulnerability, threat) cell.
    pub fn matrix(&self) -> [[usize; 3]; 3] {
        let mut m = [[0usize; 3]; 3];
        for f in &self.findings {
            let v = f.finding.vulnerability.clamp(1, 3) as usize - 1;
            let t = f.finding.threat.clamp(1, 3) as usize - 1;
            m[v][t] += 1;
        }
        m
    }

    /// The scenarios that have findings, in the category order of the report.
    pub fn scenarios(&self, lang: Lang) -> Vec<Scenario<'_>> {
        Category::ALL
            .iter()
            .filter_map(|&c| {
                let fs: Vec<&GradedFinding> = self
                    .findings
                    .iter()
                    .filter(|f| f.finding.category == c)
                    .collect();
                let worst = fs.first()?; // already in report order: worst first
                let mut cms: Vec<String> = Vec::new();
                for f in &fs {
                    for cm in f.countermeasures(lang) {
                        if !cms.contains(&cm) {
                            cms.push(cm);
                        }
                    }
                }
                Some(Scenario {
                    category: c,
                    risk: worst.finding.risk,
                    vulnerability: worst.finding.vulnerability,
                    threat: worst.finding.threat,
                    findings: fs,
                    countermeasures: cms,
                })
            })
            .collect()
    }

    /// An address as the tables show it (`10.8.0.5 (VPN pool)`, `10.1.2.3 (internal)`,
    /// `203.0.113.9 (external)`), `None` meaning many peers.
    pub fn endpoint_label(&self, addr: Option<&str>, lang: Lang) -> String {
        match addr {
            None => texts::tr(lang, "多数", "many").to_string(),
            Some(a) => match a.parse::<std::net::IpAddr>() {
                Ok(ip) if self.vpn_pools.contains(ip) => {
                    format!("{a} ({})", texts::tr(lang, "VPN プール", "VPN pool"))
                }
                Ok(ip) if self.internal_networks.iter().any(|n| n.contains(&ip)) => {
                    format!("{a} ({})", texts::tr(lang, "内部", "internal"))
                }
                Ok(_) => format!("{a} ({})", texts::tr(lang, "外部", "external")),
                Err(_) => a.to_string(),
            },
        }
    }

    /// A time in the site's time zone, `2026-11-18 09:30:00 JST`.
    pub fn local_time(&self, t: Timestamp) -> String {
        t.local(&self.timezone)
    }

    pub fn local_date(&self, t: Timestamp) -> String {
        t.local_fmt(&self.timezone, "%Y-%m-%d")
    }

    /// Adds the English wording of the signals from the same findings read in English
    /// (matched by id), for a report or CSV in English of findings read in Japanese.
    pub fn add_english(&mut self, en: &[Finding]) {
        for g in &mut self.findings {
            if let Some(f) = en.iter().find(|f| f.id == g.finding.id) {
                g.signals_en = Some(f.signals.clone());
            }
        }
    }

    /// Number of overridden findings.
    pub fn overrides_applied(&self) -> usize {
        self.findings.iter().filter(|f| f.overridden()).count()
    }
}

/// Grades findings with the configuration's and the site file's overrides and notes,
/// sorts them highest risk first and numbers them: the one grading of the report, the
/// bundle and `kuroko findings --format csv`.
pub fn grade_all(findings: Vec<Finding>, cfg: &Config, site: &SiteFile) -> Vec<GradedFinding> {
    let mut out: Vec<GradedFinding> = findings.into_iter().map(|f| grade(f, cfg, site)).collect();
    out.sort_by(|a, b| Finding::report_order(&a.finding, &b.finding));
    for (i, f) in out.iter_mut().enumerate() {
        f.no = i + 1;
    }
    out
}

/// A finding with the config's and the site file's level overrides applied (the site
/// file's win), its levels before them and the analyst's note. The report and the web
/// console's findings page both grade through this one function.
pub fn grade(mut f: Finding, cfg: &Config, site: &SiteFile) -> GradedFinding {
    // The levels before any override: the finding's own, unless an override already set
    // them, in which case the rule's defaults from the catalog.
    let overridden = f.override_source.is_some() || f.override_reason.is_some();
    let (ov, ot) = match (overridden, kuroko_detect::RuleId::parse(&f.rule)) {
        (true, Some(r)) => (r.info().vulnerability, r.info().threat),
        _ => (f.vulnerability, f.threat),
    };
    let or = Risk::from_levels(ov, ot);
    // The one place overrides are applied (idempotent: findings read through
    // `kuroko_detect::load_findings` already have them; JSONL input gets them here).
    kuroko_detect::overrides::apply(&mut f, &cfg.detect.overrides, Some(site), Lang::Ja);
    GradedFinding {
        no: 0,
        note: f.note.clone(),
        override_source: f.override_source,
        override_reason: f.override_reason.clone(),
        finding: f,
        original_vulnerability: ov,
        original_threat: ot,
        original_risk: or,
        signals_en: None,
    }
}

/// Protocols drawn as their own layer in traffic charts; the rest are summed as "other".
pub const CHART_SERIES: usize = 7;
/// Bars of the traffic chart at most; a longer span is drawn with wider bars.
pub const MAX_CHART_BARS: usize = 400;

/// Buckets on a linear time axis: every step from the first bucket to the last, empty
/// where nothing was seen, so 11/18 09:00 and 11/19 02:00 are not drawn side by side as
/// if the night had traffic. A span of more than `max_bars` steps is drawn with steps of
/// several buckets (each the sum of its buckets).
pub fn linear_buckets(
    buckets: &BTreeMap<i64, BTreeMap<String, u64>>,
    bucket_secs: i64,
    max_bars: usize,
) -> Vec<(i64, BTreeMap<String, u64>)> {
    let (Some((&first, _)), Some((&last, _))) =
        (buckets.first_key_value(), buckets.last_key_value())
    else {
        return Vec::new();
    };
    let bucket_secs = bucket_secs.max(1);
    let steps = (last - first) / bucket_secs + 1;
    let per_bar = (steps + max_bars.max(1) as i64 - 1) / max_bars.max(1) as i64;
    let step = bucket_secs * per_bar.max(1);
    let mut out: Vec<(i64, BTreeMap<String, u64>)> = Vec::new();
    let mut t = first;
    while t <= last {
        let mut sum: BTreeMap<String, u64> = BTreeMap::new();
        for (_, protos) in buckets.range(t..t + step) {
            for (p, v) in protos {
                *sum.entry(p.clone()).or_default() += v;
            }
        }
        out.push((t, sum));
        t += step;
    }
    out
}

impl ReportData {
    /// Traffic per bucket for the stacked chart: the top protocols by bytes, then "other",
    /// on a linear time axis ([`linear_buckets`]). Bucket labels are in the site's time zone.
    pub fn traffic_series(&self, lang: Lang) -> (Vec<String>, Vec<crate::charts::StackedBar>) {
        let top: Vec<String> = self
            .env
            .protocols_by_bytes()
            .into_iter()
            .take(CHART_SERIES)
            .map(|(p, _)| p.to_string())
            .collect();
        let other_label = texts::tr(lang, "その他", "other").to_string();
        let has_other = self.env.protocols.len() > top.len();
        let mut series = top.clone();
        if has_other {
            series.push(other_label);
        }
        let fmt = if self.env.bucket_secs >= 86400 {
            "%m/%d"
        } else {
            "%m/%d %H:00"
        };
        let bars = linear_buckets(&self.env.buckets, self.env.bucket_secs, MAX_CHART_BARS)
            .iter()
            .map(|(start, protos)| {
                let mut values = vec![0u64; series.len()];
                for (p, v) in protos {
                    match top.iter().position(|t| t == p) {
                        Some(i) => values[i] += v,
                        None => {
                            if let Some(last) = values.last_mut() {
                                *last += v;
                            }
                        }
                    }
                }
                let label = Timestamp(start.saturating_mul(1_000_000_000))
                    .to_datetime()
                    .with_timezone(&self.timezone)
                    .format(fmt)
                    .to_string();
                crate::charts::StackedBar { label, values }
            })
            .collect();
        (series, bars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traffic_axis_is_linear_with_gaps_for_silent_hours() {
        let h = 3600;
        let day = 1_794_963_600 - 1_794_963_600 % h;
        let mut b: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
        // 09:00 and 10:00 one day, 02:00 the next: 17 silent hours between.
        for (t, v) in [(day, 10), (day + h, 20), (day + 17 * h, 5)] {
            b.entry(t).or_default().insert("http".into(), v);
        }
        let bars = linear_buckets(&b, h, MAX_CHART_BARS);
        assert_eq!(bars.len(), 18);
        assert_eq!(bars[0].0, day);
        assert_eq!(bars[17].0, day + 17 * h);
        assert!(
            bars[2..17].iter().all(|(_, p)| p.is_empty()),
            "gaps are empty"
        );
        assert_eq!(bars[17].1["http"], 5);
        // A long span gets wider bars, nothing lost.
        let wide = linear_buckets(&b, h, 6);
        assert_eq!(wide.len(), 6);
        let total: u64 = wide.iter().flat_map(|(_, p)| p.values()).sum();
        assert_eq!(total, 35);
        assert!(linear_buckets(&BTreeMap::new(), h, 10).is_empty());
    }
}
