//! `kuroko capture`: live capture from one or more interfaces into the segment store.
//!
//! Start-up (as root or with CAP_NET_RAW, CAP_IPC_LOCK, CAP_SYS_NICE): open the store's
//! writer (non-blocking: a full store means counted backpressure drops, never a stalled
//! capture), open the TPACKET_V3 rings, start the capture threads; then every thread drops
//! all capabilities. This thread supervises: it updates NIC counters and the heartbeat in
//! `DIR/stats/capture.stats` four times a second and ends the capture on SIGINT/SIGTERM,
//! after `--duration` or after `--count` packets: the threads drain the ring, the store is
//! flushed and closed, and a summary with the drops by cause is printed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kuroko_capture::{Capture, CaptureOptions, StatsSnapshot, StoreSink};
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
        // The store takes one writer (an flock on segments/.lock): one capture thread
        // serves every socket.
        max_writers: 1,
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
    let capture = Capture::start(&opts, &data, |_| {
        let mut w = SegmentWriter::open(&data, &store_opts)?;
        w.set_interfaces(&ifaces);
        let s = StoreSink::new(w).publishing_to(&data);
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
                    "truncated_packets": i.truncated_packets,
                    "hardware_timestamps": i.hardware_timestamps,
                    "drops": {
                        "kernel_ring": i.drops.kernel_ring,
                        "nic_rx_dropped": i.drops.nic_dropped,
                        "nic_missed": i.drops.nic_missed,
                        "nic_fifo": i.drops.nic_fifo,
                        "backpressure": i.drops.backpressure,
                    },
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
                "drops": {
                    "total": d.total(),
                    "kernel_ring": d.kernel_ring,
                    "nic_rx_dropped": d.nic_dropped,
                    "nic_missed": d.nic_missed,
                    "nic_fifo": d.nic_fifo,
                    "backpressure": d.backpressure,
                },
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
    }
    let d = s.total_drops();
    println!(
        "total: {} packets, {} dropped (kernel ring {}, nic {}, backpressure {})",
        s.total_packets(),
        d.total(),
        d.kernel_ring,
        d.nic_missed + d.nic_fifo,
        d.backpressure
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
    })
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
                "truncated_packets": i.truncated_packets,
                "drops": drops_json(&i.drops),
                "last_packet": if i.last_packet_ns == 0 { serde_json::Value::Null } else { ts(i.last_packet_ns).into() },
            })
        })
        .collect();
    let mut rows = vec![
        ("state".to_string(), format!("{state} (pid {})", s.pid)),
        ("started".into(), ts(s.started_ns)),
        (
            "packets".into(),
            format!("{} ({})", s.total_packets(), format_bytes(bytes)),
        ),
        (
            "drops".into(),
            format!(
                "{} (kernel ring {}, nic missed {}, nic fifo {}, backpressure {}; nic rx_dropped {} not counted)",
                d.total(),
                d.kernel_ring,
                d.nic_missed,
                d.nic_fifo,
                d.backpressure,
                d.nic_dropped
            ),
        ),
        ("truncated".into(), truncated.to_string()),
    ];
    for i in &s.interfaces {
        rows.push((
            format!("  {}", i.name),
            format!(
                "link {}, {} packets, {} dropped",
                if i.link_up { "up" } else { "down" },
                i.packets,
                i.drops.total()
            ),
        ));
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
            "interfaces": ifaces,
        }),
        rows,
    }
}
