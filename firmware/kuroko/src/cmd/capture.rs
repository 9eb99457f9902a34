//! `kuroko capture`: live capture from one or more interfaces into the segment store.
//!
//! Start-up (as root or with CAP_NET_RAW, CAP_IPC_LOCK, CAP_SYS_NICE): open the store's
//! writer (non-blocking: a full store means counted backpressure drops, never a stalled
//! capture), open the TPACKET_V3 rings, start the capture threads; then every thread drops
//! all capabilities. This thread supervises: it updates NIC counters and the heartbeat in
//! `DIR/stats/capture.stats` four times a second and ends the capture on SIGINT/SIGTERM,
//! after `--duration` or after `--count` packets: the threads drain the ring, the store is
//! flushed and closed, and a summary with the drops by cause is printed.
//!
//! The tick also watches each interface (down, gone, re-created: the sockets are re-bound);
//! `kuroko status` shows a capture that runs while an interface is down or gone as
//! "running but BLIND", with `"blind": true` and an `alarms` list in its JSON
//! (`docs/capture.md`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kuroko_capture::{Capture, CaptureOptions, StatsSnapshot, StoreSink, ZeroCopy};
use kuroko_model::config::Config;
use kuroko_model::units::{format_bytes, parse_bytes};
use kuroko_ring::format::{IfaceEntry, LINKTYPE_ETHERNET};
use kuroko_ring::{SegmentWriter, StoreOptions};

use super::DataArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Interface to capture on; repeat for several (overrides `[capture] interfaces`).
    #[arg(long = "iface", value_name = "IF")]
    pub iface: Vec<String>,
    /// Stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Stop after this many packets.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Capture filter in tcpdump syntax (overrides `[capture] filter`).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Test hook: accept at most this many bytes per second into the store (e.g. `1MB`);
    /// the rest is dropped and counted as backpressure, as with a disk that slow.
    #[arg(long, value_name = "SIZE", hide = true)]
    pub store_rate_limit: Option<String>,
}

/// How often the supervisor updates NIC counters and the heartbeat.
const TICK: Duration = Duration::from_millis(250);

/// The store options of `[storage]`, in capture's mode: a full buffer pool is backpressure
/// (a counted drop), never a wait in the capture thread.
fn store_options(config: &Config, data: &std::path::Path) -> anyhow::Result<StoreOptions> {
    Ok(StoreOptions {
        nonblocking: true,
        ..super::import::store_options(config, data)?
    })
}

fn capture_options(config: &Config, args: &Args) -> anyhow::Result<CaptureOptions> {
    let c = &config.capture;
    let interfaces = if args.iface.is_empty() {
        c.interfaces.clone()
    } else {
        args.iface.clone()
    };
    if interfaces.is_empty() {
        bail!("no capture interface: pass --iface IF or set [capture] interfaces in the config");
    }
    Ok(CaptureOptions {
        interfaces,
        snaplen: c.snaplen,
        ring_size: parse_bytes(&c.ring_size)
            .map_err(anyhow::Error::msg)
            .context("[capture] ring_size")?,
        block_size: parse_bytes(&c.block_size)
            .map_err(anyhow::Error::msg)
            .context("[capture] block_size")?,
        threads_per_interface: c.threads_per_interface,
        cores: c.cores.clone(),
        realtime: c.realtime,
        filter: args.filter.clone().unwrap_or_else(|| c.filter.clone()),
        count: args.count,
        // One capture thread per socket: with more than one, each writes its own lane of
        // the store's one writer (`kuroko_ring::LaneWriter`).
        max_writers: usize::MAX,
        zero_copy: match c.zero_copy.as_str() {
            "on" => ZeroCopy::On,
            "auto" => ZeroCopy::Auto,
            _ => ZeroCopy::Off,
        },
        ..CaptureOptions::default()
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let data: PathBuf = args.data.data.clone();
    let opts = capture_options(&config, &args)?;
    let store_opts = store_options(&config, &data)?;
    let rate = match &args.store_rate_limit {
        Some(t) => Some(
            parse_bytes(t)
                .map_err(anyhow::Error::msg)
                .context("--store-rate-limit")?,
        ),
        None => None,
    };
    if let Some(d) = args.duration
        && !(d.is_finite() && d >= 0.0)
    {
        bail!("--duration {d}: give a number of seconds");
    }

    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create data directory {}", data.display()))?;
    kuroko_capture::sys::process::install_stop_signals()
        .context("cannot install signal handlers")?;

    // Silence every capture port (IPv6, ARP, multicast, addresses off, egress drop) and
    // bring it up, before any socket opens.
    for iface in &opts.interfaces {
        match kuroko_board::capture_port::isolate(iface, true) {
            Ok(failed) => {
                for f in failed {
                    eprintln!("kuroko capture: warning: {iface} is not fully silenced: {f}");
                }
            }
            Err(e) => eprintln!("kuroko capture: warning: {iface} not silenced: {e}"),
        }
    }
    let ifaces: Vec<IfaceEntry> = opts
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, name)| IfaceEntry::new(i as u16, LINKTYPE_ETHERNET, opts.snaplen, name))
        .collect();
    // As many threads as sockets (`max_writers` above); one store writer, split into lanes
    // when there are several.
    let threads = opts.interfaces.len() * opts.threads_per_interface as usize;
    let mut lanes = Vec::new();
    let capture = Capture::start(&opts, &data, |t| {
        let s = if threads == 1 {
            let mut w = SegmentWriter::open(&data, &store_opts)?;
            w.set_interfaces(&ifaces);
            StoreSink::new(w)
        } else {
            if t == 0 {
                let mut w = SegmentWriter::open(&data, &store_opts)?;
                w.set_interfaces(&ifaces);
                lanes = w.into_lanes(threads);
                lanes.reverse();
            }
            let lane = lanes
                .pop()
                .ok_or_else(|| kuroko_ring::StoreError::Options {
                    message: format!("no store lane left for capture thread {t}"),
                })?;
            StoreSink::lane(lane)
        }
        .publishing_to(&data);
        Ok::<_, kuroko_ring::StoreError>(match rate {
            Some(r) => s.with_rate_limit(r),
            None => s,
        })
    })
    .with_context(|| format!("cannot start capture on {}", opts.interfaces.join(", ")))?;

    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d));
    let reader = kuroko_capture::StatsReader::open(&data).ok();
    let mut last_progress = Instant::now();
    let mut reported_rebind = std::collections::HashSet::new();
    loop {
        if kuroko_capture::sys::process::stop_requested() || capture.finished() {
            break;
        }
        let now = Instant::now();
        if let Some(d) = deadline
            && now >= d
        {
            break;
        }
        let sleep = deadline.map_or(TICK, |d| TICK.min(d.saturating_duration_since(now)));
        std::thread::sleep(sleep);
        capture.tick();
        for (iface, why) in capture.rebind_errors() {
            if reported_rebind.insert((iface, why.clone())) {
                eprintln!("warning: {why}; the gap stays open until it can be captured");
            }
        }
        if progress
            && last_progress.elapsed() >= Duration::from_secs(1)
            && let Some(r) = &reader
        {
            let s = r.snapshot();
            eprint!(
                "\r{} packets, {}, {} dropped   ",
                s.total_packets(),
                format_bytes(s.interfaces.iter().map(|i| i.bytes).sum()),
                s.total_drops().total()
            );
            last_progress = Instant::now();
        }
    }
    if progress {
        eprintln!();
    }
    let snap = capture.stop().context("capture ended with an error")?;
    print_summary(&snap, started.elapsed(), args.json)?;
    Ok(())
}

fn print_summary(s: &StatsSnapshot, elapsed: Duration, json: bool) -> anyhow::Result<()> {
    let now = kuroko_capture::sys::process::realtime_ns();
    if json {
        let ifaces: Vec<_> = s
            .interfaces
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "packets": i.packets,
                    "bytes": i.bytes,
                    "stored_bytes": i.stored_bytes,
                    "zero_copy_blocks": i.zero_copy_blocks,
                    "zero_copy_bytes": i.zero_copy_bytes,
                    "truncated_packets": i.truncated_packets,
                    "hardware_timestamps": i.hardware_timestamps,
                    "drops": drops_json(&i.drops),
                    "link": link_json(i, now),
                    "coalesced_frames": i.link.coalesced_frames,
                    "offloads_on": kuroko_capture::sys::ethtool::offload_names(i.link.offloads_on),
                    "ring_frames": i.link.ring_frames,
                })
            })
            .collect();
        let d = s.total_drops();
        println!(
            "{}",
            serde_json::json!({
                "seconds": elapsed.as_secs_f64(),
                "packets": s.total_packets(),
                "bytes": s.interfaces.iter().map(|i| i.bytes).sum::<u64>(),
                "drops": drops_json(&d),
                "alarms": capture_alarms(s, false, now),
                "truncated_packets": s.interfaces.iter().map(|i| i.truncated_packets).sum::<u64>(),
                "interfaces": ifaces,
            })
        );
        return Ok(());
    }
    println!("captured for {:.1} s", elapsed.as_secs_f64());
    for i in &s.interfaces {
        let d = &i.drops;
        println!(
            "{:<16} {} packets, {} ({} stored), drops: kernel ring {}, nic missed {}, nic fifo {}, backpressure {}; truncated {}; nic rx_dropped {}",
            i.name,
            i.packets,
            format_bytes(i.bytes),
            format_bytes(i.stored_bytes),
            d.kernel_ring,
            d.nic_missed,
            d.nic_fifo,
            d.backpressure,
            i.truncated_packets,
            d.nic_dropped,
        );
        let gaps = gaps_line(i, now);
        if !gaps.is_empty() {
            println!("{:<16} {gaps}", "");
        }
    }
    let d = s.total_drops();
    println!(
        "total: {} packets, {} dropped (kernel ring {}, nic {}, backpressure {}, unread at stop {}, missed before rebind {})",
        s.total_packets(),
        d.total(),
        d.kernel_ring,
        d.nic_missed + d.nic_fifo,
        d.backpressure,
        d.unread_at_stop,
        d.missed_before_rebind
    );
    if d.nic_dropped > 0 {
        println!(
            "note: the NIC's rx_dropped rose by {}; Linux also counts frames the host discarded after capture there (no protocol handler), so it is not counted as loss",
            d.nic_dropped
        );
    }
    Ok(())
}

fn drops_json(d: &kuroko_capture::Drops) -> serde_json::Value {
    serde_json::json!({
        "total": d.total(),
        "kernel_ring": d.kernel_ring,
        // Not in "total": also counts frames the host stack discarded after capture.
        "nic_rx_dropped": d.nic_dropped,
        "nic_missed": d.nic_missed,
        "nic_fifo": d.nic_fifo,
        "backpressure": d.backpressure,
        "unread_at_stop": d.unread_at_stop,
        "missed_before_rebind": d.missed_before_rebind,
    })
}

fn rfc3339(ns: u64) -> String {
    kuroko_model::time::Timestamp(ns as i64).to_rfc3339()
}

/// `up`, `down` or `gone`: what the capture can see of an interface now.
fn link_state(i: &kuroko_capture::InterfaceStats) -> &'static str {
    if i.link.gone_since_ns.is_some() {
        "gone"
    } else if i.link.down_since_ns.is_some() || !i.link_up {
        "down"
    } else {
        "up"
    }
}

/// The link faults of one interface, for `status --format json` and `capture --json`.
fn link_json(i: &kuroko_capture::InterfaceStats, now: u64) -> serde_json::Value {
    let l = &i.link;
    let opt_ts = |t: Option<u64>| t.map_or(serde_json::Value::Null, |t| rfc3339(t).into());
    serde_json::json!({
        "state": link_state(i),
        "down_since": opt_ts(l.down_since_ns),
        "down_seconds": l.down_total_ns(now) as f64 / 1e9,
        "down_events": l.down_events,
        "gone_since": opt_ts(l.gone_since_ns),
        "gone_seconds": l.gone_total_ns(now) as f64 / 1e9,
        "gone_events": l.gone_events,
        "rebinds": l.rebinds,
        "socket_errors": l.socket_errors,
    })
}

/// Alarms the capture raises (not latched here: that is the console's and status's
/// alarm list, which reads these): a blind interface, merged frames, offloads left on.
fn capture_alarms(s: &StatsSnapshot, live: bool, now: u64) -> Vec<serde_json::Value> {
    let mut v = Vec::new();
    for i in &s.interfaces {
        let l = &i.link;
        if live && let Some(t) = l.gone_since_ns {
            v.push(
                serde_json::json!({"kind": "interface_gone", "interface": i.name,
                "since": rfc3339(t), "seconds": now.saturating_sub(t) as f64 / 1e9}),
            );
        } else if live && let Some(t) = l.down_since_ns {
            v.push(serde_json::json!({"kind": "link_down", "interface": i.name,
                "since": rfc3339(t), "seconds": now.saturating_sub(t) as f64 / 1e9}));
        }
        if l.coalesced_frames > 0 {
            v.push(
                serde_json::json!({"kind": "coalesced_frames", "interface": i.name,
                "frames": l.coalesced_frames, "frame_limit": l.frame_limit}),
            );
        }
        if i.ring_near_loss > 0 {
            v.push(
                serde_json::json!({"kind": "ring_near_loss", "interface": i.name,
                "times": i.ring_near_loss, "peak_fill_pct": i.ring_peak_fill_pct}),
            );
        }
        let on = kuroko_capture::sys::ethtool::offload_names(l.offloads_on);
        if !on.is_empty() {
            v.push(
                serde_json::json!({"kind": "offloads_on", "interface": i.name,
                "offloads": on}),
            );
        }
    }
    v
}

/// One line of gaps for an interface: "" when there were none.
fn gaps_line(i: &kuroko_capture::InterfaceStats, now: u64) -> String {
    let l = &i.link;
    let mut parts = Vec::new();
    if l.down_events > 0 {
        parts.push(format!(
            "link down {}x, {:.1} s",
            l.down_events,
            l.down_total_ns(now) as f64 / 1e9
        ));
    }
    if l.gone_events > 0 {
        parts.push(format!(
            "interface gone {}x, {:.1} s (re-bound {}x, {} frames received before the re-bind lost)",
            l.gone_events,
            l.gone_total_ns(now) as f64 / 1e9,
            l.rebinds,
            i.drops.missed_before_rebind
        ));
    }
    if l.coalesced_frames > 0 {
        parts.push(format!(
            "{} coalesced frames (> {} B: merged by an offload, not the wire's frames)",
            l.coalesced_frames, l.frame_limit
        ));
    }
    let on = kuroko_capture::sys::ethtool::offload_names(l.offloads_on);
    if !on.is_empty() {
        parts.push(format!("offloads still on: {}", on.join(",")));
    }
    parts.join("; ")
}

/// The `"capture"` section of `kuroko status`: the live stats page, read-only.
pub fn status_section(data: &std::path::Path) -> super::status::Section {
    use kuroko_capture::{CaptureState, StatsReader, stats::StatsError};
    let reader = match StatsReader::open(data) {
        Ok(r) => r,
        Err(e) => {
            let missing = matches!(e, StatsError::Missing { .. });
            return super::status::Section {
                key: "capture",
                title: "Capture",
                json: serde_json::json!({
                    "present": false,
                    "error": if missing { serde_json::Value::Null } else { e.to_string().into() },
                }),
                rows: vec![(
                    "state".into(),
                    if missing {
                        "no capture has run".into()
                    } else {
                        format!("unreadable: {e}")
                    },
                )],
            };
        }
    };
    let s = reader.snapshot();
    let now = kuroko_capture::sys::process::realtime_ns();
    let live = s.is_live(now);
    let state = match s.state {
        CaptureState::Running | CaptureState::Starting if !live => "stale (capture process gone)",
        CaptureState::Starting => "starting",
        CaptureState::Running => "running",
        CaptureState::Stopped => "stopped",
        CaptureState::Failed => "failed",
        CaptureState::Unknown(_) => "unknown",
    };
    let d = s.total_drops();
    let bytes: u64 = s.interfaces.iter().map(|i| i.bytes).sum();
    let truncated: u64 = s.interfaces.iter().map(|i| i.truncated_packets).sum();
    let ts = |ns: u64| kuroko_model::time::Timestamp(ns as i64).to_rfc3339();
    let ifaces: Vec<_> = s
        .interfaces
        .iter()
        .map(|i| {
            serde_json::json!({
                "name": i.name,
                "link_up": i.link_up,
                "hardware_timestamps": i.hardware_timestamps,
                "packets": i.packets,
                "bytes": i.bytes,
                "stored_bytes": i.stored_bytes,
                "zero_copy_blocks": i.zero_copy_blocks,
                "zero_copy_bytes": i.zero_copy_bytes,
                "truncated_packets": i.truncated_packets,
                "drops": drops_json(&i.drops),
                "last_packet": if i.last_packet_ns == 0 { serde_json::Value::Null } else { ts(i.last_packet_ns).into() },
                "link": link_json(i, now),
                "coalesced_frames": i.link.coalesced_frames,
                "frame_limit": i.link.frame_limit,
                "offloads_on": kuroko_capture::sys::ethtool::offload_names(i.link.offloads_on),
                "ring_frames": i.link.ring_frames,
                "ring_near_loss": i.ring_near_loss,
                "ring_peak_fill_pct": i.ring_peak_fill_pct,
            })
        })
        .collect();
    let near_loss: u64 = s.interfaces.iter().map(|i| i.ring_near_loss).sum();
    let peak_fill = s.interfaces.iter().map(|i| i.ring_peak_fill_pct).max();
    let blind: Vec<String> = s
        .interfaces
        .iter()
        .filter(|i| i.link.blind())
        .map(|i| {
            let since = i.link.gone_since_ns.or(i.link.down_since_ns).unwrap_or(0);
            format!("{} {} since {}", i.name, link_state(i), ts(since))
        })
        .collect();
    let state_line = if live && !blind.is_empty() {
        format!("{state} but BLIND (pid {}): {}", s.pid, blind.join(", "))
    } else {
        format!("{state} (pid {})", s.pid)
    };
    let alarms = capture_alarms(&s, live, now);
    let (gaps, gaps_bad) = kuroko_capture::gaps::blind_intervals(data, now);
    let gaps_json = gaps_json(&gaps);
    let mut rows = vec![
        ("state".to_string(), state_line),
        ("started".into(), ts(s.started_ns)),
        (
            "packets".into(),
            format!("{} ({})", s.total_packets(), format_bytes(bytes)),
        ),
        (
            "drops".into(),
            format!(
                "{} (kernel ring {}, nic missed {}, nic fifo {}, backpressure {}, unread at stop {}, missed before rebind {}; nic rx_dropped {} not counted)",
                d.total(),
                d.kernel_ring,
                d.nic_missed,
                d.nic_fifo,
                d.backpressure,
                d.unread_at_stop,
                d.missed_before_rebind,
                d.nic_dropped
            ),
        ),
        ("truncated".into(), truncated.to_string()),
    ];
    if near_loss > 0 {
        rows.push((
            "RING NEAR LOSS".into(),
            format!(
                "the kernel ring filled to {}% of its blocks {near_loss}x (peak {}%): the capture was close to losing frames{}",
                kuroko_capture::engine::RING_HIGH_WATER_PCT,
                peak_fill.unwrap_or(0),
                if d.kernel_ring + d.backpressure > 0 {
                    " and lost some (drops above)"
                } else {
                    ", none lost yet"
                }
            ),
        ));
    }
    if !gaps.is_empty() {
        let blind_s: f64 = gaps
            .iter()
            .map(|g| g.end_ns.unwrap_or(now).saturating_sub(g.start_ns) as f64 / 1e9)
            .sum();
        rows.push((
            "blind intervals".into(),
            format!(
                "{} ({blind_s:.1} s in all; every one in --format json `gaps`)",
                gaps.len()
            ),
        ));
    }
    for i in &s.interfaces {
        let link = match (link_state(i), i.link.gone_since_ns.or(i.link.down_since_ns)) {
            ("up", _) | (_, None) => format!("link {}", link_state(i)),
            ("gone", Some(t)) => format!("INTERFACE GONE since {}", ts(t)),
            (_, Some(t)) => format!("LINK DOWN since {}", ts(t)),
        };
        rows.push((
            format!("  {}", i.name),
            format!("{link}, {} packets, {} dropped", i.packets, i.drops.total()),
        ));
        let gaps = gaps_line(i, now);
        if !gaps.is_empty() {
            rows.push((format!("  {} gaps", i.name), gaps));
        }
    }
    super::status::Section {
        key: "capture",
        title: "Capture",
        json: serde_json::json!({
            "present": true,
            "state": state,
            "live": live,
            "pid": s.pid,
            "started": ts(s.started_ns),
            "heartbeat": ts(s.heartbeat_ns),
            "threads": s.threads,
            "packets": s.total_packets(),
            "bytes": bytes,
            "truncated_packets": truncated,
            "drops": drops_json(&d),
            // Times a kernel ring filled to the high-water mark (early warning of loss).
            "ring_near_loss": near_loss,
            "ring_high_water_pct": kuroko_capture::engine::RING_HIGH_WATER_PCT,
            "ring_peak_fill_pct": peak_fill,
            // Live and an interface down or gone: capture is running but sees nothing there.
            "blind": live && !blind.is_empty(),
            "alarms": alarms,
            "interfaces": ifaces,
            "gaps": gaps_json,
            "gaps_journal_bad_lines": gaps_bad,
        }),
        rows,
    }
}

/// Every blind interval of the data directory (`kuroko_capture::gaps`: the journal of
/// closed ones and the stats page's open ones), for `status` and the report's coverage.
fn gaps_json(gaps: &[kuroko_capture::gaps::Gap]) -> serde_json::Value {
    gaps.iter()
        .map(|g| {
            serde_json::json!({
                "kind": g.kind.as_str(),
                "interface": g.interface,
                "start": rfc3339(g.start_ns),
                "end": g.end_ns.map(rfc3339),
                "seconds": g.end_ns.map(|e| e.saturating_sub(g.start_ns) as f64 / 1e9),
                "missed_before_rebind": g.missed,
                "cut_by_capture_end": g.cut_by_capture_end,
            })
        })
        .collect()
}
