//! `kuroko analyze`: analyze every stored packet not yet analyzed, then exit.
//!
//! Runs the analyzer (`kuroko-analyzer`) from its checkpoint to the end of the segment
//! store, writing sessions to `DATA/sessions/`, then lets the consumers of the session log
//! (index, detections, evidence, and last the content index, whose extraction may take up
//! to `[content] time_limit` per object) catch up. Resumes where it stopped after a crash.

use super::DataArgs;
use anyhow::Context;
use kuroko_analyzer::driver::{self, RunOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Analyze this classic pcap file instead of the segment store (development and
    /// tests; positions are the packet indices of the file).
    #[arg(long, value_name = "FILE", hide = true)]
    pub pcap: Option<PathBuf>,
    /// Checkpoint every N packets (crash tests).
    #[arg(long, value_name = "N", hide = true)]
    pub checkpoint_every_packets: Option<u64>,
    /// Checkpoint (and commit the session index) by the wall clock every SECS seconds
    /// instead of every 5 (3): for benchmarks under callgrind, which slows the run 50-fold;
    /// with a large SECS the checkpoints and commits no longer depend on how fast it goes.
    #[arg(long, value_name = "SECS", hide = true)]
    pub checkpoint_interval: Option<u64>,
    /// Abort like kill -9 after N packets (crash tests).
    #[arg(long, value_name = "N", hide = true)]
    pub abort_after_packets: Option<u64>,
    /// Abort like kill -9 whenever the packet at this position (a session id,
    /// `seq-block-idx` in hex) is analyzed (crash-loop tests).
    #[arg(long, value_name = "POS", hide = true)]
    pub abort_at_packet: Option<String>,
    /// Keep normal CPU and I/O priority even while a capture is writing to the store
    /// (by default the analyzer then runs at `[analyzer] nice` 10 off `[capture] cores`,
    /// or SCHED_IDLE with `[analyzer] cpu_priority = "idle"`).
    #[arg(long)]
    pub foreground_priority: bool,
    /// Follow the store continuously until SIGINT/SIGTERM (what `kuroko run` runs): new
    /// packets are analyzed as they are stored, idle sessions end by the wall clock, and
    /// the index, detections and alerts catch up as soon as new sessions are published
    /// (at least every second).
    #[arg(long, conflicts_with = "pcap")]
    pub follow: bool,
}

/// Longest time the session-log consumers wait between two catch-ups in `--follow` mode
/// (they are woken earlier by each publication, unless `[analyzer] consumer_wake = false`).
const CONSUMER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let data = &args.data.data;
    super::create_data_dir(data)?;
    let mut source: Box<dyn kuroko_analyzer::PacketSource> = match &args.pcap {
        Some(p) => Box::new(kuroko_analyzer::PcapSource::open(p)?),
        None => open_store(data)?,
    };
    // Background priority protects a running capture; with no capture writing (an import,
    // a finished recording) there is nothing to protect and we use the whole machine.
    // `kuroko_analyzer::placement`: nice 10 off the capture cores by default (a share of
    // the CPU under load, never the capture's cores), SCHED_IDLE with `cpu_priority = "idle"`.
    if !args.foreground_priority && source.writer_active() {
        let placement = kuroko_analyzer::placement::Placement::from_config(&config);
        for problem in kuroko_analyzer::sys::become_background(&placement) {
            eprintln!("kuroko analyze: running at normal priority: {problem}");
        }
    }
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut show = |p: driver::Progress| {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r{} packets, {} sessions, {} flows open, {:.1} MB/s   ",
            p.packets,
            p.sessions,
            p.open_flows,
            p.bytes as f64 / 1e6 / secs
        );
        let _ = std::io::stderr().flush();
    };
    if let Some(secs) = args.checkpoint_interval {
        kuroko_index::ingest::set_commit_interval(Duration::from_secs(secs));
    }
    let opts = RunOptions {
        checkpoint_every_packets: args.checkpoint_every_packets,
        checkpoint_interval: args
            .checkpoint_interval
            .map_or(driver::CHECKPOINT_INTERVAL, Duration::from_secs),
        abort_after_packets: args.abort_after_packets,
        abort_at: match &args.abort_at_packet {
            Some(p) => Some(
                kuroko_analyzer::PacketPos::from_session_id(p)
                    .with_context(|| format!("--abort-at-packet {p}: not a packet position"))?,
            ),
            None => None,
        },
        progress: if tty { Some(&mut show) } else { None },
        ..RunOptions::default()
    };
    if args.follow {
        return follow(data, &config, source.as_mut(), opts);
    }
    let summary = driver::run(data, &config, source.as_mut(), opts)
        .with_context(|| format!("analyzing {}", data.display()))?;
    warn_store_damage(data);
    if let Some(w) = super::yara::warning(data) {
        eprintln!("kuroko analyze: warning: {w}");
    }
    if tty {
        eprintln!();
        let c = &summary.counters;
        eprintln!(
            "analyzed {} packets ({:.1} MB) in {:.1}s: {} sessions written, {} flows kept open; \
             decode errors {}, evicted flows {}, tcp gaps {}",
            summary.packets,
            summary.bytes as f64 / 1e6,
            summary.elapsed.as_secs_f64(),
            summary.sessions_written,
            summary.open_flows_kept,
            c.decode_errors,
            c.evicted_flows,
            c.tcp_gaps
        );
    }

    run_consumers(data, &config, tty, false, Consumers::All)?;
    print_summary(data, &config, &summary);
    Ok(())
}

/// The one line `analyze` always ends with, on stderr (stdout stays empty for scripts):
/// what was analyzed this run and where the findings stand, graded with the overrides.
fn print_summary(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    summary: &driver::Summary,
) {
    use kuroko_model::finding::{Lang, Risk};
    let grades = match kuroko_detect::load_findings(data, config, Lang::En) {
        Ok(f) => {
            let by: Vec<String> = Risk::ALL
                .iter()
                .map(|r| format!("{r}:{}", f.iter().filter(|x| x.risk == *r).count()))
                .collect();
            format!("{} findings ({})", f.len(), by.join(" "))
        }
        Err(e) => format!("findings unreadable: {e}"),
    };
    eprintln!(
        "kuroko analyze: {} packets, {} sessions in {:.1}s; {grades}",
        summary.packets,
        summary.sessions_written,
        summary.elapsed.as_secs_f64()
    );
}

/// `--follow`: the analyzer follows the store on this thread while the consumers of the
/// session log catch up on another (the content index on a third, so that a slow
/// extraction does not delay findings and alerts), each woken by each publication of the
/// log (`sessionlog::wait_for_publication`) or every [`CONSUMER_INTERVAL`], until
/// SIGINT/SIGTERM.
fn follow(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    source: &mut dyn kuroko_analyzer::PacketSource,
    opts: RunOptions<'_>,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let mut signals = nix::sys::signal::SigSet::empty();
    signals.add(nix::sys::signal::Signal::SIGINT);
    signals.add(nix::sys::signal::Signal::SIGTERM);
    signals.thread_block().context("cannot block signals")?;
    {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if signals.wait().is_ok() {
                    stop.store(true, Ordering::SeqCst);
                }
            })?;
    }
    let consumers = {
        let (stop, data, config) = (stop.clone(), data.to_path_buf(), config.clone());
        std::thread::Builder::new()
            .name("consumers".into())
            .spawn(move || {
                let log_dir = data.join("sessions");
                let mut seen = None;
                // A re-check of the past runs in slices between live catch-ups; while one
                // is pending the next catch-up does not wait for new records.
                let mut retro_pending = false;
                while !stop.load(Ordering::SeqCst) {
                    if retro_pending {
                        std::thread::yield_now();
                    } else {
                        wait_for_records(&config, &log_dir, &mut seen);
                    }
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    retro_pending =
                        match run_consumers(&data, &config, false, true, Consumers::SessionsOnly) {
                            Ok(pending) => pending,
                            Err(e) => {
                                eprintln!("kuroko analyze: {e:#}");
                                false
                            }
                        };
                }
            })?
    };
    // The content index on a thread of its own: a slow extraction (up to the time limit
    // and its grace per object, a backlog of them after a burst of mail) must not hold back
    // the index, detections and alerts of the sessions after it.
    let content = {
        let (stop, data, config) = (stop.clone(), data.to_path_buf(), config.clone());
        std::thread::Builder::new()
            .name("content".into())
            .spawn(move || {
                let log_dir = data.join("sessions");
                let mut seen = None;
                while !stop.load(Ordering::SeqCst) {
                    wait_for_records(&config, &log_dir, &mut seen);
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Err(e) = super::content::catch_up(&data, &config, false) {
                        eprintln!("kuroko analyze: content index: {e:#}");
                    }
                }
            })?
    };
    let scrub = spawn_scrub(data, config, &stop)?;
    let result = driver::follow(data, config, source, &stop, opts)
        .with_context(|| format!("following {}", data.display()));
    stop.store(true, Ordering::SeqCst);
    let _ = consumers.join();
    let _ = content.join();
    if let Some(s) = scrub {
        let _ = s.join();
    }
    result?;
    // A last catch-up with everything the analyzer wrote before it stopped (a re-check
    // still pending goes on at the next start).
    run_consumers(data, config, false, true, Consumers::All).map(drop)
}

/// Waits until the session log publishes new records (`[analyzer] consumer_wake`, the
/// default) or, without it, one `CONSUMER_INTERVAL`: the consumers' and the content index's
/// threads both follow the log this way.
fn wait_for_records(
    config: &kuroko_model::config::Config,
    log_dir: &std::path::Path,
    seen: &mut Option<kuroko_model::sessionlog::LogPos>,
) {
    if config.analyzer.consumer_wake {
        kuroko_model::sessionlog::wait_for_publication(log_dir, seen, CONSUMER_INTERVAL);
    } else {
        std::thread::sleep(CONSUMER_INTERVAL);
    }
}

/// The background scrub of the store (`kuroko_ring::scrub`) on its own thread at idle CPU
/// and I/O priority, at `[storage] scrub_rate` (none when 0), until `stop`. The analyzer
/// runs it because there is one analyzer per data directory, so one scrub; it needs no
/// privilege, and it stops and restarts with the analyzer, resuming where it was. A store
/// not created yet is waited for.
fn spawn_scrub(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    use std::sync::atomic::Ordering;
    let rate = kuroko_ring::scrub::rate_from_mb_s(config.storage.scrub_rate);
    if rate == 0 {
        // An earlier scrub's progress must not read as a scrub fallen behind.
        kuroko_ring::scrub::record_off(data);
        return Ok(None);
    }
    // Validated at load.
    let overdue = config.storage.scrub_overdue_secs().unwrap_or(0);
    let (data, stop) = (data.to_path_buf(), stop.clone());
    let h = std::thread::Builder::new()
        .name("scrub".into())
        .spawn(move || {
            let mut scrubber = loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                match kuroko_ring::scrub::Scrubber::open(&data, rate) {
                    Ok(s) => break s.with_overdue_after(overdue),
                    Err(_) => std::thread::sleep(std::time::Duration::from_secs(1)),
                }
            };
            scrubber.run(&stop, |note| eprintln!("kuroko analyze: {note}"));
        })?;
    Ok(Some(h))
}

/// Which consumers `run_consumers` runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Consumers {
    /// Index, detections, evidence, then the content index.
    All,
    /// All but the content index (`--follow` runs that one on its own thread).
    SessionsOnly,
}

/// Lets the index (with alert conditions), detections, the evidence export and then the
/// content index catch up with the session log. `follow`: the running appliance, whose
/// detections take a re-check of the past in slices (`kuroko_detect::run_pending_slice`)
/// so that live findings keep arriving; returns whether a re-check is still pending.
fn run_consumers(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    tty: bool,
    follow: bool,
    consumers: Consumers,
) -> anyhow::Result<bool> {
    // ---- Consumers of the session log. -----------------------------------------------
    // The index (with alert conditions), detections and the evidence export each follow
    // DATA/sessions/ from their own durable cursor, so each simply catches up with the log.
    // One failing does not stop the others; the command fails if any did.
    let mut failures = Vec::new();
    match kuroko_index::ingest_pending(data, config) {
        Ok(s) if tty => eprintln!(
            "indexed {} sessions ({} alerts{}{})",
            s.indexed,
            s.alerts,
            if s.alert_delivery_failures > 0 {
                format!(
                    ", {} deliveries failed and will be retried",
                    s.alert_delivery_failures
                )
            } else {
                String::new()
            },
            if s.bad_records > 0 {
                format!(", {} damaged log lines skipped", s.bad_records)
            } else {
                String::new()
            }
        ),
        Ok(_) => {}
        Err(e) => failures.push(format!("indexing: {e}")),
    }
    let detections = if follow {
        kuroko_detect::run_pending_slice(data, config)
    } else {
        kuroko_detect::run_pending(data, config)
    };
    let retro_pending = detections.as_ref().is_ok_and(|s| s.retro_pending > 0);
    match detections {
        Ok(s) if tty => eprintln!(
            "detections: {} sessions checked, {} findings ({} new){}{}",
            s.sessions,
            s.findings,
            s.new_findings,
            if s.retro_sessions > 0 {
                format!(
                    "; intel re-check of the past: {} sessions, {} matched",
                    s.retro_sessions, s.retro_hits
                )
            } else {
                String::new()
            },
            if s.yara_retro_sessions > 0 {
                format!(
                    "; YARA re-check of the stored files: {} sessions, {} matched",
                    s.yara_retro_sessions, s.yara_retro_hits
                )
            } else {
                String::new()
            }
        ),
        Ok(_) => {}
        Err(e) => failures.push(format!("detections: {e}")),
    }
    match crate::evidence::export_pending(data, config) {
        Ok(s) => {
            if tty && s.sessions_exported > 0 {
                eprintln!(
                    "evidence: {} sessions of {} findings kept ({} packets){}",
                    s.sessions_exported,
                    s.findings,
                    s.packets,
                    if s.sessions_over_budget > 0 {
                        format!(", {} over the evidence budget", s.sessions_over_budget)
                    } else {
                        String::new()
                    }
                );
            }
            if s.packets_other_link_type > 0 {
                eprintln!(
                    "evidence: {} packets seen on an interface of another link type than the \
                     rest of their finding's are left in the store (`kuroko pcap --finding \
                     ID` exports them all)",
                    s.packets_other_link_type
                );
            }
        }
        Err(e) => failures.push(format!("evidence: {e:#}")),
    }
    // The content index (text of mail bodies, attachments, web and FTP transfers) comes
    // last: an object whose extraction is slow (up to `[content] time_limit` and its grace
    // per object) must not hold back findings and evidence. `--follow` runs it on its own
    // thread instead (`Consumers::SessionsOnly` here).
    if consumers == Consumers::All
        && let Err(e) = super::content::catch_up(data, config, tty)
    {
        failures.push(format!("content index: {e:#}"));
    }
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("; "));
    }
    Ok(retro_pending)
}

fn open_store(data: &std::path::Path) -> anyhow::Result<Box<dyn kuroko_analyzer::PacketSource>> {
    let source = kuroko_analyzer::store::StoreSource::open(data).with_context(|| {
        format!(
            "no segment store in {}; import packets first (`kuroko import FILE --data {}`)",
            data.display(),
            data.display()
        )
    })?;
    Ok(Box::new(source))
}

/// The `analyzer` section of `kuroko status`: position, lag behind the store, counters.
pub fn status_section(data: &std::path::Path) -> super::status::Section {
    use serde_json::json;
    let section = |json: serde_json::Value, rows: Vec<(String, String)>| super::status::Section {
        key: "analyzer",
        title: "Analyzer",
        json,
        rows,
    };
    let cp = match kuroko_analyzer::driver::status(data) {
        Ok(Some(cp)) => cp,
        Ok(None) => {
            return section(
                json!({"present": false}),
                vec![("state".into(), "not run yet (`kuroko analyze`)".into())],
            );
        }
        Err(e) => {
            return section(
                json!({"present": false, "error": e.to_string()}),
                vec![("state".into(), format!("unreadable: {e}"))],
            );
        }
    };
    let (lag_bytes, lag_secs) = analyzer_lag(data, &cp);
    let c = &cp.counters;
    let json = json!({
        "present": true,
        "analyzed_to": cp.analyzed_to.map(|p| p.session_id()),
        "analyzed_time": (cp.analyzed_ts_ns > 0).then(|| kuroko_model::Timestamp::from_nanos(cp.analyzed_ts_ns).to_rfc3339()),
        "lag_bytes": lag_bytes,
        "lag_seconds": lag_secs,
        "open_flows_at_checkpoint": cp.restart.is_some(),
        "session_log": cp.log,
        "checkpoint_time": kuroko_model::Timestamp::from_nanos(cp.written_at_ns).to_rfc3339(),
        // How old the last publication of the session log is (a running analyzer publishes
        // new sessions every `publish_interval`, and checkpoints at least every 5 s).
        "checkpoint_age_seconds": (kuroko_model::Timestamp::now().nanos().saturating_sub(cp.written_at_ns)).max(0) as f64 / 1e9,
        "counters": c,
    });
    let mut rows = vec![
        (
            "analyzed up to".to_string(),
            if cp.analyzed_ts_ns > 0 {
                kuroko_model::Timestamp::from_nanos(cp.analyzed_ts_ns).to_rfc3339()
            } else {
                "nothing yet".into()
            },
        ),
        (
            "lag".into(),
            match (lag_bytes, lag_secs) {
                (Some(b), Some(s)) => format!(
                    "{} behind, {s:.1} s of capture",
                    kuroko_model::units::format_bytes(b)
                ),
                _ => "unknown (no store)".into(),
            },
        ),
        ("packets analyzed".into(), c.packets.to_string()),
        ("sessions written".into(), c.sessions_emitted.to_string()),
    ];
    for (name, v) in [
        ("decode errors", c.decode_errors),
        ("ip fragments dropped", c.ip_fragments_dropped),
        ("ip fragment overlaps", c.ip_fragment_overlaps),
        ("evicted flows", c.evicted_flows),
        ("tcp gaps", c.tcp_gaps),
        ("tcp overlaps", c.tcp_overlaps),
        ("tcp overlap conflicts", c.tcp_overlap_conflicts),
        ("tcp syns ignored", c.tcp_syn_ignored),
        ("tcp rsts ignored", c.tcp_rst_ignored),
        ("foreign data addresses", c.expectations_foreign_address),
        ("out-of-order dropped", c.ooo_dropped),
        ("memory budget drops", c.memory_budget_drops),
        ("crash loops skipped", c.crash_loop_skips),
        ("files stored", c.files_stored),
    ] {
        rows.push((name.into(), v.to_string()));
    }
    section(json, rows)
}

// ---- store damage (engineer `store`) ----

/// Damage is never silent: packets in damaged blocks, damaged segments or damaged slots
/// were not analyzed, so their sessions are missing. Said on stderr after every run (not
/// only on a terminal), with where to look.
fn warn_store_damage(data: &std::path::Path) {
    let Ok(st) = kuroko_ring::store_status(data) else {
        return;
    };
    if st.damaged_segments > 0 || st.damaged_slots > 0 {
        eprintln!(
            "kuroko analyze: warning: the store has {} damaged segment(s) ({} damaged blocks) and {} damaged slot(s); their packets were not analyzed and their sessions are missing (see `kuroko status`, `kuroko-inspect`)",
            st.damaged_segments, st.damaged_blocks, st.damaged_slots
        );
    }
}

/// How far the analyzer is behind the store: bytes of stored packets after its checkpoint
/// and seconds of capture time (`None` when there is no store). Used by `status` and by the
/// alarms (ring near loss).
pub fn analyzer_lag(
    data: &std::path::Path,
    cp: &kuroko_analyzer::checkpoint::Checkpoint,
) -> (Option<u64>, Option<f64>) {
    let mut lag_bytes = None;
    let mut lag_secs = None;
    if let Ok(mut store) = kuroko_analyzer::store::StoreSource::open(data) {
        use kuroko_analyzer::PacketSource;
        if let Some(pos) = cp.analyzed_to {
            let next = kuroko_analyzer::PacketPos::new(pos.seq, pos.block, pos.idx + 1);
            // The store counts lag in whole blocks; look whether anything newer exists at all.
            let mut newer = false;
            let _ = store.visit(next, &mut |_| {
                newer = true;
                std::ops::ControlFlow::Break(())
            });
            lag_bytes = Some(if newer { store.lag_bytes(next) } else { 0 });
        }
        // Nothing analyzed yet: no time to count from (not the seconds since 1970).
        if let Ok(Some((_, head_ts))) = store.head()
            && cp.analyzed_ts_ns > 0
        {
            lag_secs = Some((head_ts.saturating_sub(cp.analyzed_ts_ns)).max(0) as f64 / 1e9);
        }
    }
    (lag_bytes, lag_secs)
}
