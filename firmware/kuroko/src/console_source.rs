//! The console's view of a data directory: store status, the live capture stats page,
//! the analyzer checkpoint, findings, alerts and the session index.
//!
//! Runs on the console's feeder threads, never on the UI thread. Every part may be
//! missing (no capture running yet, nothing analyzed, no index): that becomes a warning
//! line on the screen, never an error that stops the console.

use kuroko_console::snapshot::{
    AlertCondition, AlertHit, AlertsInfo, AnalyzerHealth, CaptureHealth, DataDisksHealth,
    DiskHealth, DiskInfo, Drops, InterfaceHealth, SearchResult, Snapshot, WriterBacklog,
};
use kuroko_model::Timestamp;
use kuroko_model::config::Config;
use kuroko_model::finding::Lang;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files counted when sizing the evidence and files areas (bounds the walk on a huge area).
const MAX_WALK_ENTRIES: usize = 200_000;
/// How often the files and evidence areas are walked for their size: they change slowly,
/// and a walk of a large files store every second would be disk work for nothing.
const AREA_SIZE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// Recent alerts shown.
const RECENT_ALERTS: usize = 100;
/// Open sessions listed on the 通信中 screen (the total is counted beyond it).
const OPEN_SESSIONS: usize = 200;

pub struct DataDirSource {
    data: PathBuf,
    config: Config,
    lang: Lang,
    /// Opened lazily, reopened when a capture restarts (a new page).
    stats: Mutex<Option<kuroko_capture::StatsReader>>,
    index: Mutex<Option<kuroko_index::Index>>,
    /// The previous CPU-time sample of the capture process's threads, for core load.
    cpu: Mutex<Option<CpuSample>>,
    /// (when measured, files area bytes, evidence area bytes).
    areas: Mutex<Option<(std::time::Instant, u64, u64)>>,
    /// The previous I/O sample of each data disk, for utilization.
    disk_io: Mutex<Option<DiskIoSample>>,
}

/// When the data disks' I/O counters were read, and each disk's.
type DiskIoSample = (std::time::Instant, Vec<(String, kuroko_board::IoCounters)>);

/// CPU time (clock ticks) of each thread of one process, and the core it last ran on.
struct CpuSample {
    pid: u32,
    at: std::time::Instant,
    /// tid → (utime + stime ticks, last core).
    threads: std::collections::HashMap<u32, (u64, usize)>,
}

impl CpuSample {
    /// Reads `/proc/PID/task/*/stat`; `None` when the process is gone.
    fn take(pid: u32) -> Option<CpuSample> {
        let mut threads = std::collections::HashMap::new();
        for e in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // Fields after the command name (which may hold spaces) start at `) `.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest[0] is field 3 (state): utime = field 14, stime = 15, processor = 39.
            let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(u), Some(s), Some(cpu)) = (num(14), num(15), num(39)) {
                threads.insert(tid, (u + s, cpu as usize));
            }
        }
        Some(CpuSample {
            pid,
            at: std::time::Instant::now(),
            threads,
        })
    }

    /// Load per core in percent between `prev` and `self`, from the threads' CPU time.
    fn load_since(&self, prev: &CpuSample) -> Vec<(usize, f32)> {
        let secs = self.at.duration_since(prev.at).as_secs_f64();
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        if self.pid != prev.pid || secs <= 0.0 {
            return Vec::new();
        }
        let mut per_core: std::collections::BTreeMap<usize, f64> = Default::default();
        for (tid, (now, core)) in &self.threads {
            let before = prev.threads.get(tid).map_or(*now, |(t, _)| *t);
            *per_core.entry(*core).or_default() += now.saturating_sub(before) as f64;
        }
        per_core
            .into_iter()
            .map(|(core, t)| (core, (t / ticks / secs * 100.0).min(100.0) as f32))
            .collect()
    }
}

/// The console's view of an NVMe SMART log; counters beyond 64 bits saturate.
fn nvme_health(l: &kuroko_board::SmartLog) -> kuroko_console::snapshot::NvmeHealth {
    let sat = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    kuroko_console::snapshot::NvmeHealth {
        critical_warning: l.critical_warning,
        available_spare: l.available_spare,
        spare_threshold: l.spare_threshold,
        percentage_used: l.percentage_used,
        bytes_read: sat(l.bytes_read()),
        bytes_written: sat(l.bytes_written()),
        power_cycles: sat(l.power_cycles),
        power_on_hours: sat(l.power_on_hours),
        unsafe_shutdowns: sat(l.unsafe_shutdowns),
        media_errors: sat(l.media_errors),
        error_log_entries: sat(l.error_log_entries),
    }
}

impl DataDirSource {
    pub fn new(data: &Path, config: Config, lang: Lang) -> Self {
        DataDirSource {
            data: data.to_path_buf(),
            config,
            lang,
            stats: Mutex::new(None),
            index: Mutex::new(None),
            cpu: Mutex::new(None),
            areas: Mutex::new(None),
            disk_io: Mutex::new(None),
        }
    }

    /// The disks under the data directory, with utilization since the previous call.
    /// Reads small sysfs files only, never the disk.
    fn disk_health(&self, warnings: &mut Vec<String>) -> DataDisksHealth {
        let found = kuroko_board::DataDisks::discover(&self.data);
        for p in found.problems() {
            warnings.push(format!("disk {p}"));
        }
        let now = std::time::Instant::now();
        let mut prev = self.disk_io.lock().unwrap_or_else(|e| e.into_inner());
        let disks = found
            .disks
            .iter()
            .map(|d| {
                let utilization = d.io.as_ref().and_then(|io| {
                    let (at, samples) = prev.as_ref()?;
                    let (_, before) = samples.iter().find(|(n, _)| *n == d.name)?;
                    io.utilization_since(before, now.duration_since(*at))
                });
                DiskHealth {
                    name: d.name.clone(),
                    model: d.model.clone(),
                    size_bytes: d.size_bytes,
                    rotational: d.rotational,
                    read_only: d.read_only,
                    state: d.state.clone(),
                    state_ok: d.state_ok(),
                    io_errors: d.io_errors,
                    io_timeouts: d.io_timeouts,
                    temperature_c: d.temperature_c,
                    in_flight: d.io.map(|io| io.in_flight),
                    utilization,
                    nvme: d.smart.as_ref().map(nvme_health),
                }
            })
            .collect();
        *prev = Some((
            now,
            found
                .disks
                .iter()
                .filter_map(|d| Some((d.name.clone(), d.io?)))
                .collect(),
        ));
        DataDisksHealth {
            device: found.device,
            fs_type: found.fs_type,
            fs_errors: found.fs_errors,
            disks,
            note: found.note,
        }
    }

    /// The capture's health, and the store writer's live gauges when a running capture
    /// publishes them.
    fn capture(
        &self,
        now: u64,
        warnings: &mut Vec<String>,
    ) -> (CaptureHealth, Option<kuroko_capture::stats::WriterGauges>) {
        let mut guard = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let mut snap = guard.as_ref().map(|r| r.snapshot());
        // A page that stopped beating may belong to a capture that was restarted with a
        // new page: reopen once.
        if snap.as_ref().is_none_or(|s| !s.is_live(now)) {
            match kuroko_capture::StatsReader::open(&self.data) {
                Ok(r) => {
                    snap = Some(r.snapshot());
                    *guard = Some(r);
                }
                Err(e) => {
                    if guard.is_none() {
                        warnings.push(format!("capture: {e}"));
                    }
                }
            }
        }
        let Some(s) = snap else {
            return (CaptureHealth::default(), None);
        };
        let mut core_load = Vec::new();
        if s.is_live(now)
            && let Some(sample) = CpuSample::take(s.pid)
        {
            let mut prev = self.cpu.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = prev.as_ref() {
                core_load = sample.load_since(p);
            }
            *prev = Some(sample);
        }
        let writer_backlog = s.writer.map(|w| WriterBacklog {
            bytes_in_flight: w.bytes_in_flight,
            blocks_in_flight: w.blocks_in_flight,
            bytes_buffered: w.bytes_buffered,
            pool_bytes: w.pool_bytes,
            age_s: now.saturating_sub(w.updated_ns) as f64 / 1e9,
        });
        let live_writer = s.writer.filter(|_| s.is_live(now));
        let health = CaptureHealth {
            running: s.is_live(now),
            heartbeat_age_s: Some(now.saturating_sub(s.heartbeat_ns) as f64 / 1e9),
            interfaces: s
                .interfaces
                .iter()
                .map(|i| InterfaceHealth {
                    name: i.name.clone(),
                    link_up: Some(i.link_up),
                    gone: i.link.gone_since_ns.is_some(),
                    coalesced: i.link.coalesced_frames,
                    packets: i.packets,
                    bytes: i.bytes,
                    drops: panel_drops(i),
                })
                .collect(),
            core_load,
            writer_backlog,
            write_mode: None,
        };
        (health, live_writer)
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut seen = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return total;
            }
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn fs_space(dir: &Path) -> (u64, u64) {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            // fsblkcnt_t and c_ulong are u64 on the 64-bit targets the appliance runs on.
            let f = s.fragment_size();
            (s.blocks_available() * f, s.blocks() * f)
        }
        Err(_) => (0, 0),
    }
}

impl kuroko_console::Source for DataDirSource {
    fn snapshot(&self) -> Snapshot {
        let now = Timestamp::now();
        let now_ns = now.nanos().max(0) as u64;
        let mut warnings = Vec::new();
        let (capture, live_writer) = self.capture(now_ns, &mut warnings);

        let mut disk = DiskInfo::default();
        let mut newest_ns = None;
        let mut write_mode = None;
        match kuroko_ring::status::store_status(&self.data) {
            Ok(st) => {
                disk.ring_used = st.disk_bytes;
                disk.ring_budget = st.budget_bytes;
                disk.segments_used = st.segments_used as u64;
                disk.segments_total = st.segments_total as u64;
                disk.oldest = st.oldest_packet_ns.map(|n| Timestamp(n as i64));
                disk.newest = st.newest_packet_ns.map(|n| Timestamp(n as i64));
                disk.bytes_written = st.bytes_written;
                newest_ns = st.newest_packet_ns;
                write_mode = Some(if st.io_fallbacks.is_empty() {
                    st.io_mode.clone()
                } else {
                    format!("{} ({})", st.io_mode, st.io_fallbacks.join("; "))
                });
                if st.damaged_blocks > 0 {
                    warnings.push(format!(
                        "store: {} damaged blocks skipped",
                        st.damaged_blocks
                    ));
                }
            }
            Err(e) => warnings.push(format!("store: {e}")),
        }
        // The store's own counter (`writer.state`) is republished about once a second; a
        // running capture publishes its writer's counters with every ring block. The open block's bytes count too, so a
        // trickle of traffic shows a rate before its block is full.
        if let Some(w) = live_writer {
            disk.bytes_written = w.bytes_written.saturating_add(w.bytes_buffered);
            disk.bytes_written_live = true;
        }
        disk.health = self.disk_health(&mut warnings);
        let (free, total) = fs_space(&self.data);
        disk.fs_free = free;
        disk.fs_total = total;
        {
            let mut areas = self.areas.lock().unwrap_or_else(|e| e.into_inner());
            if areas.is_none_or(|(at, _, _)| at.elapsed() >= AREA_SIZE_INTERVAL) {
                *areas = Some((
                    std::time::Instant::now(),
                    dir_size(&self.data.join("files")),
                    dir_size(&self.data.join("evidence")),
                ));
            }
            if let Some((_, files, evidence)) = *areas {
                disk.files_used = files;
                disk.evidence_used = evidence;
            }
        }
        disk.files_budget = self.config.storage.files_budget_bytes().unwrap_or(0);
        disk.evidence_budget = self.config.storage.evidence_budget_bytes().unwrap_or(0);

        let mut analyzer = AnalyzerHealth::default();
        match kuroko_analyzer::checkpoint::load(&self.data) {
            Ok(Some(cp)) => {
                analyzer.running = now.nanos() - cp.written_at_ns < 10_000_000_000;
                if let Some(newest) = newest_ns {
                    analyzer.lag_s = Some((newest as i64 - cp.analyzed_ts_ns).max(0) as f64 / 1e9);
                }
                analyzer.sessions = cp.counters.sessions_emitted;
            }
            Ok(None) => warnings.push("analyzer: nothing analyzed yet".into()),
            Err(e) => warnings.push(format!("analyzer: {e}")),
        }

        let findings = match kuroko_detect::load_findings(&self.data, &self.config, self.lang) {
            Ok(f) => f,
            Err(e) => {
                warnings.push(format!("findings: {e}"));
                Vec::new()
            }
        };

        let mut alerts = AlertsInfo::default();
        let recent = kuroko_index::alerts::recent(&self.data, RECENT_ALERTS).unwrap_or_default();
        let (conds, errs) = kuroko_index::alerts::active_conditions(&self.data, &self.config);
        for (name, e) in errs {
            warnings.push(format!("alert condition {name}: {e}"));
        }
        for c in conds {
            let hits = recent.iter().filter(|a| a.condition == c.name).count() as u64;
            alerts.conditions.push(AlertCondition {
                name: c.name.clone(),
                severity: c.severity.clone(),
                query: c.query.to_string(),
                comment: c.comment.clone(),
                hits,
            });
        }
        alerts.recent = recent
            .iter()
            .rev()
            .map(|a| AlertHit {
                time: a.time,
                condition: a.condition.clone(),
                severity: a.severity.clone(),
                session_id: a.session.id.clone(),
                summary: a.session.line(),
            })
            .collect();

        // Alarms: every occurrence seen goes into the log (so it stays latched after a
        // capture restart resets its counters), then latched + current ones are shown.
        let current = crate::alarms::current(&self.data, now_ns);
        let alarms = match kuroko_console::alarms::AlarmLog::load(&self.data) {
            Ok(mut log) => {
                if let Err(e) = log.raise_new(&current, now) {
                    warnings.push(format!(
                        "alarms: cannot write {}: {e}",
                        kuroko_console::alarms::log_path(&self.data).display()
                    ));
                }
                log.states(&current)
            }
            Err(e) => {
                warnings.push(format!("alarms: {e}"));
                kuroko_console::alarms::AlarmLog::default().states(&current)
            }
        };

        // 通信中: the same query as the web console's open-sessions page.
        let open = match self.search(kuroko_web::api::OPEN_QUERY, OPEN_SESSIONS) {
            Ok(r) => kuroko_console::snapshot::OpenSessions {
                total: r.total,
                sessions: r.sessions,
                error: None,
            },
            Err(e) => kuroko_console::snapshot::OpenSessions {
                error: Some(e),
                ..Default::default()
            },
        };
        let assets = asset_rows(&self.data, &self.config).unwrap_or_else(|e| {
            warnings.push(format!("assets: {e}"));
            Vec::new()
        });

        Snapshot {
            assets,
            taken_at: now,
            open,
            alarms,
            site: self.config.site.name.clone(),
            capture: CaptureHealth {
                write_mode,
                ..capture
            },
            analyzer,
            disk,
            findings,
            alerts,
            warnings,
            web: Some(web_console(&self.data, &self.config)),
        }
    }

    fn acknowledge(&self, who: &str) -> Result<usize, String> {
        crate::alarms::acknowledge(&self.data, who)
    }

    fn search(&self, query: &str, limit: usize) -> Result<SearchResult, String> {
        let q = kuroko_index::Query::parse(query).map_err(|e| e.to_string())?;
        let mut guard = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(kuroko_index::Index::open(&self.data).map_err(|e| e.to_string())?);
        }
        let index = guard.as_ref().ok_or("no index")?;
        // `reload` reads the directory by its path, so an index a schema rebuild renamed
        // into place is picked up here (tested below). A failing handle is dropped and
        // opened again on the next search instead of failing every search after.
        if let Err(e) = index.reload() {
            *guard = None;
            return Err(e.to_string());
        }
        let total = index.count(&q).map_err(|e| e.to_string())?;
        let sessions = index.search(&q, limit).map_err(|e| e.to_string())?;
        // The passages content phrases matched, as `kuroko search` shows them.
        let mut snippets = std::collections::BTreeMap::new();
        if kuroko_index::content::has_content(&q.plan)
            && let Ok(Some(content)) = kuroko_index::content::ContentIndex::open(&self.data)
        {
            let ids: Vec<String> = sessions.iter().map(|s| s.id.clone()).collect();
            for (id, sn) in content.snippets(&q.plan, &ids).unwrap_or_default() {
                let name = sn.name.clone().unwrap_or_else(|| sn.part.clone());
                snippets.insert(id, (name, sn.marked("[", "]")));
            }
        }
        Ok(SearchResult {
            query: query.to_string(),
            total: Some(total),
            sessions,
            snippets,
        })
    }
}

/// An interface's losses as the panel shows them: the causes `kuroko status` counts in
/// `drops.total`, and nothing else (`rx_dropped` grows with frames the host's stack
/// discards after the capture got its copy, so it is not a loss; see
/// `kuroko_capture::stats::Drops`).
fn panel_drops(i: &kuroko_capture::stats::InterfaceStats) -> Drops {
    let d = &i.drops;
    Drops {
        kernel: d.kernel_ring + d.unread_at_stop,
        nic: d.nic_missed + d.nic_fifo,
        backpressure: d.backpressure,
        before_rebind: d.missed_before_rebind,
        truncated: i.truncated_packets,
    }
}

/// The web console's line on Health: the `web` section of `kuroko status` (the certificate
/// is read, never generated, here).
fn web_console(data: &Path, config: &Config) -> kuroko_console::snapshot::WebConsole {
    let j = crate::cmd::web::status_section(data, config).json;
    kuroko_console::snapshot::WebConsole {
        url: j["url"].as_str().unwrap_or("").to_string(),
        fingerprint: j["fingerprint"].as_str().map(str::to_string),
    }
}

/// The asset inventory judged against the advisory list (the view `kuroko assets`
/// prints), as the console's rows: server software only, worst verdict first.
fn asset_rows(
    data: &Path,
    config: &Config,
) -> Result<Vec<kuroko_console::snapshot::AssetRow>, String> {
    use kuroko_console::snapshot::{AssetRow, AssetSoftware};
    use kuroko_detect::versions::Verdict;
    let inv = kuroko_detect::load_assets(data).map_err(|e| e.to_string())?;
    let list = kuroko_detect::versions::advisories::AdvisoryList::load(&config.intel.category_dirs)
        .map_err(|e| e.to_string())?;
    Ok(
        kuroko_detect::assets::view::view(&inv, &list, &config.site.vpn())
            .into_iter()
            .map(|h| {
                let mut software: Vec<AssetSoftware> = h
                    .software
                    .iter()
                    .filter(|f| f.role == "server")
                    .map(|f| AssetSoftware {
                        text: f.text.clone(),
                        verdict: f.worst().map(|v| match v {
                            Verdict::Vulnerable => "vulnerable".to_string(),
                            _ => "unknown".to_string(),
                        }),
                        cves: f.advisories.iter().flat_map(|a| a.cves.clone()).collect(),
                    })
                    .collect();
                software.sort_by_key(|s| match s.verdict.as_deref() {
                    Some("vulnerable") => 0,
                    Some(_) => 1,
                    None => 2,
                });
                AssetRow {
                    vpn: h.vpn,
                    ip: h.ip.to_string(),
                    name: h.names.first().map(|n| n.name.clone()),
                    services: h
                        .services
                        .iter()
                        .map(|s| {
                            // Only announced over mDNS, never seen answering.
                            let mark = if s.answered() { "" } else { " (mDNS)" };
                            format!("{}/{} {}{mark}", s.port, s.transport, s.protocol)
                        })
                        .collect(),
                    software,
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_panel_counts_the_losses_status_counts_and_nothing_else() {
        let mut i = kuroko_capture::stats::InterfaceStats::default();
        i.drops.nic_dropped = 5_000; // mirror-port frames the host discards: not lost
        i.drops.missed_before_rebind = 7;
        i.drops.unread_at_stop = 2;
        i.drops.kernel_ring = 1;
        i.drops.nic_missed = 3;
        let d = super::panel_drops(&i);
        assert_eq!(d.lost(), i.drops.total());
        assert_eq!(d.lost(), 13);
        assert_eq!(d.before_rebind, 7);
    }

    use super::*;
    use kuroko_capture::stats::{StatsPage, WriterGauges, WriterPublisher, layout};
    use kuroko_console::Source as _;

    /// The board words the problems (Health's `!` lines, `status`), the console flags the
    /// disk: both must agree on what an NVMe log problem is.
    #[test]
    fn nvme_problems_agree_between_board_and_console() {
        assert_eq!(
            kuroko_board::nvme_smart::WEAR_WARN_PERCENT,
            kuroko_console::snapshot::NVME_WEAR_WARN_PERCENT
        );
        let fine = kuroko_board::SmartLog {
            available_spare: 100,
            spare_threshold: 10,
            percentage_used: 89,
            data_units_written: 3,
            power_on_hours: u128::MAX,
            ..Default::default()
        };
        let cases = [
            fine,
            kuroko_board::SmartLog {
                percentage_used: 90,
                ..fine
            },
            kuroko_board::SmartLog {
                media_errors: 1,
                ..fine
            },
            kuroko_board::SmartLog {
                critical_warning: 0x80,
                ..fine
            },
        ];
        for (i, l) in cases.iter().enumerate() {
            let c = nvme_health(l);
            assert_eq!(c.has_problem(), !l.problems().is_empty(), "case {i}: {l:?}");
            assert_eq!(c.has_problem(), i > 0, "case {i}");
        }
        let c = nvme_health(&fine);
        assert_eq!(c.bytes_written, 3 * 512_000);
        assert_eq!(c.power_on_hours, u64::MAX, "saturated");
    }

    /// A data directory whose index holds synthetic sessions `range` (ids `s<i>`).
    fn indexed(data: &Path, range: std::ops::Range<u64>) {
        let mut w =
            kuroko_model::sessionlog::SessionLogWriter::open(&data.join("sessions")).unwrap();
        for i in range {
            let rec = kuroko_index::synth::session(i, 1_795_219_200_000_000_000, 1_000_000_000);
            w.append(&rec).unwrap();
        }
        let end = w.sync().unwrap();
        w.publish(end).unwrap();
        kuroko_index::ingest_pending(data, &Config::default()).unwrap();
    }

    #[test]
    fn search_reopens_an_index_replaced_by_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        indexed(dir.path(), 0..20);
        indexed(other.path(), 100..120);
        let src = DataDirSource::new(dir.path(), Config::default(), Lang::En);
        let found = |id: &str| src.search(&format!("id:\"{id}\""), 10).unwrap().total;
        assert_eq!(found("s3"), Some(1));
        assert_eq!(found("s103"), Some(0));
        // What a schema rebuild does: a new directory renamed into place.
        let idx = kuroko_index::index::index_dir(dir.path());
        std::fs::rename(&idx, dir.path().join("index.old")).unwrap();
        std::fs::rename(kuroko_index::index::index_dir(other.path()), &idx).unwrap();
        assert_eq!(found("s103"), Some(1), "still searching the replaced index");
        assert_eq!(found("s3"), Some(0));
    }

    #[test]
    fn writer_gauges_and_disk_health_reach_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let src = DataDirSource::new(dir.path(), Config::default(), Lang::En);
        // No capture yet: no backlog, the store's counter, and a warning.
        let s = src.snapshot();
        assert_eq!(s.capture.writer_backlog, None);
        assert!(!s.disk.bytes_written_live);
        assert!(
            s.warnings.iter().any(|w| w.starts_with("capture: ")),
            "{:?}",
            s.warnings
        );

        // A running capture of this process whose writer publishes.
        let mut publisher = WriterPublisher::new(dir.path());
        let page = StatsPage::create(dir.path(), &[("eth1".into(), 3)]).unwrap();
        page.set_state(layout::STATE_RUNNING);
        page.heartbeat();
        publisher.publish(&WriterGauges {
            updated_ns: 0,
            bytes_written: 10 << 20,
            packets_written: 7000,
            bytes_in_flight: 2 << 20,
            blocks_in_flight: 2,
            bytes_buffered: 4096,
            pool_bytes: Some(10 << 20),
        });
        let s = src.snapshot();
        let b = s.capture.writer_backlog.expect("published backlog");
        assert_eq!(
            (
                b.bytes_in_flight,
                b.blocks_in_flight,
                b.bytes_buffered,
                b.pool_bytes
            ),
            (2 << 20, 2, 4096, Some(10 << 20))
        );
        assert!(b.age_s < 2.0, "{b:?}");
        assert!(s.capture.running);
        assert!(s.disk.bytes_written_live);
        assert_eq!(s.disk.bytes_written, (10 << 20) + 4096);

        // The data directory's disks as this machine exposes them (or why there are none).
        let h = &s.disk.health;
        assert!(
            h.device.is_some() != h.note.is_some(),
            "either a device or a reason: {h:?}"
        );
        if h.device.is_some() {
            assert!(!h.disks.is_empty(), "{h:?}");
        }
        // Utilization needs two samples: the second snapshot has it where stat exists.
        if let Some(d) = h.disks.iter().find(|d| d.in_flight.is_some()) {
            assert!(d.utilization.is_some(), "{d:?}");
        }
    }
}
