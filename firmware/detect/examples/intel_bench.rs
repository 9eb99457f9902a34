//! Intel matching and re-check figures for `cargo xtask bench intel` (release build):
//!
//! ```text
//! intel_bench WORK INDICATORS SESSIONS RECHECK_SESSIONS RECHECK_INDICATORS
//! ```
//!
//! 1. A pack of INDICATORS indicators (addresses, address:port, CIDRs, domains, URLs, file
//!    SHA-256, JA3) in plain lists declared in `pack.toml`, imported with
//!    `packs::import`; the matcher loaded from it, with the resident memory it added
//!    (VmRSS before and after, per indicator).
//! 2. The per-session cost of tagging (what the analyzer's `LiveIntel::tag` does for every
//!    record it writes: `match_session`) over SESSIONS mixed records (HTTP, DNS, TLS),
//!    with that matcher and with none, interleaved three times in the same run; beside it
//!    the same records serialised to JSON (what the analyzer does for every record anyway)
//!    as the same-run reference of work per session.
//! 3. A re-check: a session log of RECHECK_SESSIONS records read live with no intel, then
//!    a pack of RECHECK_INDICATORS indicators imported and the re-check run to the end
//!    (`run_pending`): its time, sessions/s and the VmRSS it added.
//!
//! One JSON object on stdout. Nothing here asserts on time.

use kuroko_detect::intel::matcher::Matcher;
use kuroko_detect::intel::{packs, synthetic};
use kuroko_model::config::Config;
use kuroko_model::session::{Dns, Endpoint, Http, Tls};
use kuroko_model::sessionlog::SessionLogWriter;
use kuroko_model::{SessionRecord, Timestamp};
use std::path::Path;
use std::time::Instant;

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn vm_rss_kb() -> u64 {
    status_kb("VmRSS:")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Mixed records like an office's: a third each HTTP, DNS, TLS.
fn sessions(n: u64) -> Vec<SessionRecord> {
    (0..n)
        .map(|i| {
            let x = i.wrapping_mul(0x2545_f491_4f6c_dd1d);
            let server = format!(
                "{}.{}.{}.{}",
                20 + x % 180,
                (x >> 8) % 256,
                (x >> 16) % 256,
                (x >> 24) % 256
            );
            let mut s = SessionRecord::new(
                format!("{i:016x}-0-0"),
                Timestamp(1_795_000_000_000_000_000 + i as i64 * 1_000_000),
                if i % 3 == 1 { "udp" } else { "tcp" },
                Endpoint::new(
                    format!("10.0.{}.{}", (i >> 8) % 256, i % 256)
                        .parse()
                        .unwrap(),
                    40_000,
                ),
                Endpoint::new(server.parse().unwrap(), [80, 53, 443][(i % 3) as usize]),
            );
            s.end = Timestamp(s.start.nanos() + 1_000_000_000);
            match i % 3 {
                0 => {
                    s.protocol = "http".into();
                    s.http = Some(Http {
                        method: Some("GET".into()),
                        host: Some(format!("www{}.shop.example", x % 5000)),
                        url: Some(format!("http://www{}.shop.example/item/{i}?q=1", x % 5000)),
                        ..Default::default()
                    });
                }
                1 => {
                    s.protocol = "dns".into();
                    s.dns = Some(Dns {
                        query: Some(format!("host{}.cdn{}.example.net", x % 977, x % 31)),
                        answers: vec![server.clone()],
                        ..Default::default()
                    });
                }
                _ => {
                    s.protocol = "tls".into();
                    s.tls = Some(Tls {
                        sni: Some(format!("api{}.cloud.example", x % 3000)),
                        ja3: Some(format!("{:032x}", x as u128 * 7)),
                        ..Default::default()
                    });
                }
            }
            s
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 {
        return Err(
            "usage: intel_bench WORK INDICATORS SESSIONS RECHECK_SESSIONS RECHECK_INDICATORS"
                .into(),
        );
    }
    let work = Path::new(&a[1]);
    let (indicators, n_sessions, re_sessions, re_indicators): (u64, u64, u64, u64) =
        (a[2].parse()?, a[3].parse()?, a[4].parse()?, a[5].parse()?);
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;

    // 1. Import and load.
    let data = work.join("match-data");
    synthetic::write_pack(&work.join("pack-big"), indicators, 1)?;
    let t = Instant::now();
    let imp = packs::import(&data, &work.join("pack-big"), Some("bench"))?;
    let import_s = t.elapsed().as_secs_f64();
    let rss0 = vm_rss_kb();
    let t = Instant::now();
    let m = Matcher::load(&data)?;
    let load_s = t.elapsed().as_secs_f64();
    let rss1 = vm_rss_kb();
    let loaded = m.len() as u64;

    // 2. Tagging cost per session, with and without, interleaved; JSON as the reference.
    let recs = sessions(n_sessions);
    let empty = Matcher::default();
    let (mut with_ns, mut without_ns, mut json_ns) = (f64::MAX, f64::MAX, f64::MAX);
    let mut hits = 0usize;
    for _ in 0..3 {
        let t = Instant::now();
        for s in &recs {
            hits += empty.match_session(s).len();
        }
        without_ns = without_ns.min(t.elapsed().as_nanos() as f64 / n_sessions as f64);
        let t = Instant::now();
        for s in &recs {
            hits += m.match_session(s).len();
        }
        with_ns = with_ns.min(t.elapsed().as_nanos() as f64 / n_sessions as f64);
        let t = Instant::now();
        let mut bytes = 0usize;
        for s in &recs {
            bytes += serde_json::to_vec(s)?.len();
        }
        std::hint::black_box(bytes);
        json_ns = json_ns.min(t.elapsed().as_nanos() as f64 / n_sessions as f64);
    }
    drop(m);
    drop(recs);

    // 3. A re-check of RECHECK_SESSIONS against RECHECK_INDICATORS.
    let data = work.join("recheck-data");
    let t = Instant::now();
    {
        let mut w = SessionLogWriter::open(&data.join("sessions"))?;
        let chunk = 100_000;
        let mut done = 0;
        while done < re_sessions {
            let k = chunk.min(re_sessions - done);
            for mut s in sessions(k) {
                s.id = format!("{done:08x}-{}", s.id);
                w.append(&s)?;
            }
            done += k;
        }
        w.sync()?;
    }
    let write_s = t.elapsed().as_secs_f64();
    let log_bytes: u64 = std::fs::read_dir(data.join("sessions"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let config = Config::default();
    let t = Instant::now();
    kuroko_detect::run_pending(&data, &config)?;
    let live_s = t.elapsed().as_secs_f64();
    synthetic::write_pack(&work.join("pack-new"), re_indicators, 7)?;
    packs::import(&data, &work.join("pack-new"), Some("new"))?;
    let rss2 = vm_rss_kb();
    let load_before = loadavg();
    let t = Instant::now();
    let s = kuroko_detect::run_pending(&data, &config)?;
    let recheck_s = t.elapsed().as_secs_f64();
    let rss3 = vm_rss_kb();
    let load_after = loadavg();
    println!(
        "{}",
        serde_json::json!({
            "indicators": indicators,
            "indicators_loaded": loaded,
            "import_s": import_s,
            "import_bad_lines": imp.pack.bad_lines,
            "load_s": load_s,
            "matcher_rss_kb": rss1.saturating_sub(rss0),
            "matcher_bytes_per_indicator": (rss1.saturating_sub(rss0) * 1024) as f64 / loaded.max(1) as f64,
            "sessions": n_sessions,
            "tag_ns_per_session_without": without_ns,
            "tag_ns_per_session_with": with_ns,
            "json_ns_per_session": json_ns,
            "hits": hits,
            "recheck_sessions": re_sessions,
            "recheck_indicators": re_indicators,
            "log_write_s": write_s,
            "log_bytes": log_bytes,
            "live_catch_up_s": live_s,
            "live_sessions_per_s": re_sessions as f64 / live_s.max(1e-9),
            "recheck_hits": s.retro_hits,
            "load_before_recheck": load_before,
            "load_after_recheck": load_after,
            "peak_rss_kb": status_kb("VmHWM:"),
            "recheck_s": recheck_s,
            "recheck_sessions_checked": s.retro_sessions,
            "recheck_sessions_per_s": s.retro_sessions as f64 / recheck_s.max(1e-9),
            "recheck_rss_added_kb": rss3.saturating_sub(rss2),
            "rss_kb_end": rss3,
        })
    );
    let _ = std::fs::remove_dir_all(work);
    Ok(())
}
