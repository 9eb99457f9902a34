//! The appliance's alarms, derived from the live counters of a data directory: one
//! function for the front panel (`console_source`) and `kuroko status` (section `alarms`).
//! Latching and acknowledgment are `kuroko_console::alarms` (the log
//! `DATA/alarms/log.jsonl`).
//!
//! Each alarm's `occurrence` changes when the condition happens again, so an alarm that
//! recurs after an acknowledgment latches again: the capture's start time and the event
//! count for link faults, the store's cumulative counts for write errors and damage, the
//! analyzer's crash-loop count, the capture's start for a stopped capture, the day for
//! a ring about to overwrite unanalyzed packets (a condition without a counter: it latches
//! again at most once a day while it lasts), and for a scrub fallen behind its full-pass
//! count (overdue) or its pid and last heartbeat (stalled).

use kuroko_console::alarms::{Alarm, AlarmDetail, AlarmKind};
use kuroko_model::Timestamp;
use kuroko_model::finding::Lang;
use std::path::Path;

/// The analyzer's backlog from which the ring is "near loss": this share of the ring's
/// budget is stored and not analyzed yet (the ring overwrites its oldest segment next).
pub const NEAR_LOSS_FRACTION: f64 = 0.75;

/// ns to tenths of a second (rounded), for details.
fn tenths(ns: u64) -> u64 {
    (ns + 50_000_000) / 100_000_000
}

fn ts(ns: u64) -> Timestamp {
    Timestamp(ns.min(i64::MAX as u64) as i64)
}

/// Every alarm of `data` now (`now_ns`: CLOCK_REALTIME). Sources that cannot be read give
/// no alarm here (`status` and the console show their errors in their own sections).
pub fn current(data: &Path, now_ns: u64) -> Vec<Alarm> {
    let mut out = Vec::new();
    // The capture's own count of failed disk writes (its stats page): seen even when the
    // failing disk also refuses the store's `writer.state`.
    let mut capture_disk = (0u64, 0u64);
    if let Ok(r) = kuroko_capture::StatsReader::open(data) {
        let s = r.snapshot();
        capture_disk = (s.disk_errors.write_errors, s.disk_errors.lost_packets);
        let live = s.is_live(now_ns);
        let run = s.started_ns;
        if !live {
            out.push(Alarm {
                kind: AlarmKind::CaptureStopped,
                subject: "capture".into(),
                occurrence: run.to_string(),
                active: true,
                since: Some(ts(s.heartbeat_ns)),
                detail: AlarmDetail::CaptureStopped { pid: s.pid },
            });
        }
        for i in &s.interfaces {
            let l = &i.link;
            if l.down_events > 0 {
                out.push(Alarm {
                    kind: AlarmKind::LinkDown,
                    subject: i.name.clone(),
                    occurrence: format!("{run}:{}", l.down_events),
                    active: live && l.down_since_ns.is_some(),
                    since: l.down_since_ns.map(ts),
                    detail: AlarmDetail::LinkDown {
                        times: l.down_events,
                        tenths: tenths(l.down_total_ns(now_ns)),
                    },
                });
            }
            if i.ring_near_loss > 0 {
                out.push(Alarm {
                    kind: AlarmKind::CaptureNearLoss,
                    subject: i.name.clone(),
                    occurrence: format!("{run}:{}", i.ring_near_loss),
                    active: false,
                    since: None,
                    detail: AlarmDetail::CaptureNearLoss {
                        high_water_pct: kuroko_capture::engine::RING_HIGH_WATER_PCT as u64,
                        times: i.ring_near_loss,
                        peak_pct: i.ring_peak_fill_pct,
                        lost: i.drops.kernel_ring + i.drops.backpressure,
                    },
                });
            }
            if l.gone_events > 0 {
                out.push(Alarm {
                    kind: AlarmKind::InterfaceGone,
                    subject: i.name.clone(),
                    occurrence: format!("{run}:{}", l.gone_events),
                    active: live && l.gone_since_ns.is_some(),
                    since: l.gone_since_ns.map(ts),
                    detail: AlarmDetail::InterfaceGone {
                        times: l.gone_events,
                        tenths: tenths(l.gone_total_ns(now_ns)),
                        missed: i.drops.missed_before_rebind,
                    },
                });
            }
        }
    }
    if let Ok(st) = kuroko_ring::store_status(data) {
        let writes = st.write_errors.max(capture_disk.0);
        if writes > 0 {
            out.push(Alarm {
                kind: AlarmKind::DiskWriteErrors,
                subject: "store".into(),
                occurrence: writes.to_string(),
                active: true,
                since: None,
                detail: AlarmDetail::DiskWriteErrors {
                    writes,
                    packets: st.write_error_packets.max(capture_disk.1),
                },
            });
        }
        use kuroko_ring::WriterStateHealth as H;
        let state = match st.writer_state {
            H::Stale => Some("stale"),
            H::NotClosed => Some("not_closed"),
            H::Missing => Some("missing"),
            H::None | H::Live | H::Closed => None,
        };
        if let Some(state) = state {
            let at = st.last_write_wall_ns.unwrap_or(0);
            out.push(Alarm {
                kind: AlarmKind::StoreCountersStale,
                subject: "store".into(),
                occurrence: format!("{state}:{at}"),
                active: true,
                since: st.last_write_wall_ns.map(ts),
                detail: AlarmDetail::StoreCounters {
                    state: state.into(),
                    pid: st.writer_state_pid,
                    seconds: now_ns.saturating_sub(at) / 1_000_000_000,
                },
            });
        }
        if st.damaged_slots > 0 || st.damaged_segments > 0 {
            out.push(Alarm {
                kind: AlarmKind::DamagedSlots,
                subject: "store".into(),
                occurrence: format!("{}:{}", st.damaged_slots, st.damaged_segments),
                active: true,
                since: None,
                detail: AlarmDetail::Damaged {
                    slots: st.damaged_slots.into(),
                    segments: st.damaged_segments.into(),
                    blocks: st.damaged_blocks,
                },
            });
        }
        let behind = st.scrub_overdue.clone().or_else(|| {
            let sc = st.scrub.as_ref()?;
            kuroko_ring::scrub::stalled(sc, analyzer_holder(data), now_ns)
        });
        if let Some(b) = behind {
            use kuroko_ring::scrub::Behind;
            let (occurrence, since, detail) = match b {
                Behind::Overdue {
                    seq,
                    sealed_wall_ns,
                    waited_secs,
                    bound_secs,
                    passes,
                } => (
                    format!("overdue:{passes}"),
                    sealed_wall_ns,
                    AlarmDetail::ScrubOverdue {
                        seq,
                        waited_secs,
                        bound_secs,
                    },
                ),
                Behind::Stalled {
                    pid,
                    updated_wall_ns,
                    secs,
                } => (
                    format!("stalled:{pid}:{updated_wall_ns}"),
                    updated_wall_ns,
                    AlarmDetail::ScrubStalled { pid, secs },
                ),
            };
            out.push(Alarm {
                kind: AlarmKind::ScrubBehind,
                subject: "store".into(),
                occurrence,
                active: true,
                since: Some(ts(since)),
                detail,
            });
        }
        if let Ok(Some(cp)) = kuroko_analyzer::driver::status(data) {
            let c = &cp.counters;
            if c.crash_loop_skips > 0 {
                out.push(Alarm {
                    kind: AlarmKind::AnalyzerCrashLoop,
                    subject: "analyzer".into(),
                    occurrence: c.crash_loop_skips.to_string(),
                    active: false,
                    since: None,
                    detail: AlarmDetail::CrashLoop {
                        windows: c.crash_loop_skips,
                        packets: c.packets_skipped_after_crashes,
                    },
                });
            }
            let (lag, _) = crate::cmd::analyze::analyzer_lag(data, &cp);
            if let Some(lag) = lag
                && st.budget_bytes > 0
                && lag as f64 >= NEAR_LOSS_FRACTION * st.budget_bytes as f64
            {
                let day = ts(now_ns).to_rfc3339();
                out.push(Alarm {
                    kind: AlarmKind::RingNearLoss,
                    subject: "analyzer".into(),
                    occurrence: day.get(..10).unwrap_or(&day).to_string(),
                    active: true,
                    since: None,
                    detail: AlarmDetail::RingNearLoss {
                        backlog: kuroko_model::units::format_bytes(lag),
                        budget: kuroko_model::units::format_bytes(st.budget_bytes),
                    },
                });
            }
        }
    }
    if let Ok(st) = kuroko_index::alerts::delivery_state(data) {
        for (subject, d) in [("mail", &st.mail), ("syslog", &st.syslog)] {
            let Some(d) = d else { continue };
            let Some(since) = d.failing_since else {
                continue;
            };
            let detail = AlarmDetail::AlertDelivery {
                target: d.target.to_string(),
                tls: d.tls.to_string(),
                error: d.last_error.as_deref().unwrap_or("failed").to_string(),
                pending: if subject == "mail" { d.pending } else { 0 },
            };
            out.push(Alarm {
                kind: AlarmKind::AlertDelivery,
                subject: subject.into(),
                occurrence: since.to_rfc3339(),
                active: true,
                since: Some(since),
                detail,
            });
        }
    }
    out
}

/// The pid holding the data directory's analyzer lock now (`DATA/analyzer/lock`), if any:
/// a probe for a shared lock fails while an analyzer holds it.
fn analyzer_holder(data: &Path) -> Option<u32> {
    let path = kuroko_analyzer::driver::lock_path(data);
    let f = std::fs::File::open(&path).ok()?;
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            None
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            std::fs::read_to_string(&path).ok()?.trim().parse().ok()
        }
        Err(std::fs::TryLockError::Error(_)) => None,
    }
}

/// Acknowledges every latched alarm of `data` as `who`, now: the front panel's key and the
/// web console's button. Returns how many were acknowledged.
pub fn acknowledge(data: &Path, who: &str) -> Result<usize, String> {
    use kuroko_console::alarms::AlarmLog;
    let now = Timestamp::now();
    let current = current(data, now.nanos().max(0) as u64);
    let mut log = AlarmLog::load(data).map_err(|e| e.to_string())?;
    log.acknowledge(&current, who, now)
        .map_err(|e| format!("{}: {e}", kuroko_console::alarms::log_path(data).display()))
}

/// The `"alarms"` section of `kuroko status`: every latched or current alarm with its
/// acknowledgment (read-only: status never writes the log).
pub fn status_section(data: &Path) -> crate::cmd::status::Section {
    use kuroko_console::alarms::AlarmLog;
    let now_ns = kuroko_capture::sys::process::realtime_ns();
    let current = current(data, now_ns);
    let (log, error) = match AlarmLog::load(data) {
        Ok(l) => (l, None),
        Err(e) => (
            AlarmLog::default(),
            Some(format!(
                "cannot read {}: {e}",
                kuroko_console::alarms::log_path(data).display()
            )),
        ),
    };
    let states = log.states(&current);
    let mut rows = Vec::new();
    let mut list = Vec::new();
    for s in &states {
        let a = &s.alarm;
        let ack = s.acked.as_ref();
        list.push(serde_json::json!({
            "kind": a.kind.as_str(),
            "subject": a.subject,
            "occurrence": a.occurrence,
            "active": a.active,
            "latched": ack.is_none(),
            "since": a.since.map(|t| t.to_rfc3339()),
            "detail": a.detail.render(Lang::En),
            "detail_ja": a.detail.render(Lang::Ja),
            "detail_values": a.detail,
            "acknowledged_by": ack.map(|k| k.who.clone()),
            "acknowledged_at": ack.map(|k| k.at.to_rfc3339()),
        }));
        let state = match (ack, a.active) {
            (None, true) => "ACTIVE, NOT ACKNOWLEDGED".to_string(),
            (None, false) => "over, NOT ACKNOWLEDGED".to_string(),
            (Some(k), active) => format!(
                "{}, acknowledged by {} at {}",
                if active { "active" } else { "over" },
                k.who,
                k.at.to_rfc3339()
            ),
        };
        rows.push((a.key(), format!("{state}: {}", a.detail.render(Lang::En))));
    }
    if rows.is_empty() {
        rows.push(("alarms".into(), "none".into()));
    }
    if let Some(e) = &error {
        rows.push(("log".into(), e.clone()));
    }
    let latched = states.iter().filter(|s| s.acked.is_none()).count();
    crate::cmd::status::Section {
        key: "alarms",
        title: "Alarms",
        json: serde_json::json!({
            "latched": latched,
            "alarms": list,
            "log": kuroko_console::alarms::log_path(data),
            "log_error": error,
            "log_bad_lines": log.bad_lines,
        }),
        rows,
    }
}
