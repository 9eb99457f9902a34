//! The search benchmark (run by `cargo xtask bench search`, built in release).
//!
//! Indexes N synthetic sessions (`kuroko_index::synth`) the way `ingest_pending` does
//! (document per session, dedupe by id, alert conditions evaluated on every session,
//! commits every `COMMIT_EVERY`), then measures the index size per session and the latency
//! of typical queries (top 100 newest, and count). References measured in the same run:
//! reading + parsing the session log (JSON) for a sample, and answering the same queries
//! by scanning records in memory with the record matcher (extrapolated from a sample).
//!
//! Usage: bench_search DIR N [RUNS]   (prints a Markdown report)
//!        bench_search DIR 0 [RUNS]   (only the queries, on the index already in DIR)

use kuroko_index::alerts::AlertEngine;
use kuroko_index::synth::{Rng, session};
use kuroko_index::{Index, Ingester, Query};
use kuroko_model::config::Config;
use kuroko_model::sessionlog::{LogPos, SessionLogReader, SessionLogWriter};
use std::path::Path;
use std::time::{Duration, Instant};

const T0: i64 = 1_795_219_200_000_000_000; // 2026-11-21T00:00:00Z
/// A week, spread over the N sessions.
const WEEK_NS: i64 = 7 * 24 * 3_600_000_000_000;
/// Sessions per second a fully used 1 Gbps office link produces: 125 MB/s at a mean of
/// ~12.5 KB per session (mostly DNS and short TLS). Office captures we know of have larger
/// means, so this is a high bar.
const SESSIONS_PER_SEC_AT_1GBPS: f64 = 10_000.0;
/// Records used for the references (JSON parse, in-memory scan).
const SAMPLE: u64 = 200_000;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                total += if m.is_dir() {
                    dir_size(&e.path())
                } else {
                    m.len()
                };
            }
        }
    }
    total
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// The query families of the brief; `k` varies the values between runs.
fn queries(k: u64, rng: &mut Rng) -> Vec<(&'static str, String)> {
    let words = [
        "google",
        "microsoft",
        "office",
        "yahoo",
        "amazon",
        "apple",
        "zoom",
        "slack",
    ];
    let w = words[rng.below(words.len() as u64) as usize];
    let hour = rng.below(7 * 24) as i64;
    let from = kuroko_model::Timestamp(T0 + hour * 3_600_000_000_000);
    let to = kuroko_model::Timestamp(from.0 + 3_600_000_000_000);
    let subjects = [
        "quarterly report",
        "meeting minutes",
        "shipping notice",
        "パスワード変更",
    ];
    vec![
        ("host", format!("host:{w}{}", k % 250)),
        (
            "CIDR + port",
            format!(
                "client:10.{}.0.0/16 AND port:{}",
                k % 8,
                [443, 53, 80, 22][(k % 4) as usize]
            ),
        ),
        (
            "CONNECT example",
            r#"(protocol:http OR protocol:https) AND NOT(url:(":443" ":80")) AND (method:CONNECT)"#
                .to_string(),
        ),
        (
            "subject phrase",
            format!("subject:\"{}\"", subjects[(k % 4) as usize]),
        ),
        (
            "time range + protocol",
            format!(
                "time:[{from} TO {to}}} AND protocol:{}",
                ["dns", "tls", "http"][(k % 3) as usize]
            ),
        ),
        ("url substring", format!("url:\"/{w}/\"")),
    ]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: bench_search DIR N [RUNS]")?);
    let n: u64 = args
        .next()
        .ok_or("usage: bench_search DIR N [RUNS]")?
        .parse()?;
    let runs: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30);
    if n == 0 {
        return queries_only(&dir, runs);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let step = (WEEK_NS / n.max(1) as i64).max(1);

    // Reference 1: writing and reading back the session log (JSON) for a sample.
    let sample = n.min(SAMPLE);
    let sample_recs: Vec<_> = (0..sample).map(|i| session(i, T0, step)).collect();
    {
        let mut w = SessionLogWriter::open(&dir.join("sessions"))?;
        for r in &sample_recs {
            w.append(r)?;
        }
        w.sync()?;
    }
    let t = Instant::now();
    let read = SessionLogReader::open(&dir.join("sessions"))?
        .read_from(LogPos::default())?
        .filter(|r| r.is_ok())
        .count() as u64;
    let log_read_rate = read as f64 / t.elapsed().as_secs_f64();
    let log_bytes = dir_size(&dir.join("sessions"));
    std::fs::remove_dir_all(dir.join("sessions"))?;

    // Reference 2: answering the queries by scanning the sample in memory.
    let mut rng = Rng::new(7);
    let mut scan_per_record = Vec::new();
    for (name, q) in queries(1, &mut rng) {
        let query = Query::parse(&q)?;
        let t = Instant::now();
        let hits = sample_recs.iter().filter(|r| query.matches(r)).count();
        let per = t.elapsed().as_secs_f64() / sample as f64;
        scan_per_record.push((name, per, hits));
    }
    drop(sample_recs);

    // Indexing, as ingest_pending does it (without the JSON parse measured above).
    let mut cfg = Config::default();
    cfg.alerts.no_defaults = false;
    let t = Instant::now();
    let mut ing = Ingester::open(&dir)?;
    let mut alerts = AlertEngine::new(&dir, &cfg);
    for i in 0..n {
        let r = session(i, T0, step);
        ing.add(
            LogPos {
                file: 0,
                offset: i + 1,
            },
            &r,
        )?;
        alerts.on_session(&r);
        if (i + 1) % kuroko_index::ingest::COMMIT_EVERY == 0 {
            ing.commit()?;
        }
    }
    ing.commit()?;
    let index_secs = t.elapsed().as_secs_f64();
    let alert_hits = alerts.delivery.hits;
    let t = Instant::now();
    ing.wait_merges()?;
    let merge_secs = t.elapsed().as_secs_f64();
    let index_bytes = dir_size(&dir.join("index"));

    // Queries.
    let index = Index::open(&dir)?;
    let mut lat: Vec<(&str, Vec<Duration>, Vec<Duration>, u64)> = Vec::new();
    let mut rng = Rng::new(42);
    for k in 0..runs {
        for (j, (name, q)) in queries(k, &mut rng).into_iter().enumerate() {
            let query = Query::parse(&q)?;
            let t = Instant::now();
            let top = index.search(&query, 100)?;
            let d_top = t.elapsed();
            let t = Instant::now();
            let c = index.count(&query)?;
            let d_count = t.elapsed();
            assert!(top.len() as u64 <= c);
            if lat.len() <= j {
                lat.push((name, Vec::new(), Vec::new(), 0));
            }
            lat[j].1.push(d_top);
            lat[j].2.push(d_count);
            lat[j].3 += c;
        }
    }

    let rate = n as f64 / index_secs;
    println!("# Search benchmark\n");
    println!(
        "{n} synthetic sessions (`kuroko_index::synth`: office mix, one week), one writer thread, {} MiB writer memory, alert conditions (the shipped default) evaluated on every session, {runs} runs per query with varying values. Machine: shared 2-core VM.\n",
        kuroko_index::ingest::WRITER_MEMORY >> 20
    );
    println!("## Indexing\n");
    println!("| measure | value |\n| --- | --- |");
    println!("| indexing time | {index_secs:.1} s (+ {merge_secs:.1} s waiting for merges) |");
    println!("| indexing rate | {rate:.0} sessions/s |");
    println!(
        "| vs 1 Gbps of office traffic (~{SESSIONS_PER_SEC_AT_1GBPS:.0} sessions/s) | {:.1}× |",
        rate / SESSIONS_PER_SEC_AT_1GBPS
    );
    println!(
        "| reading + parsing the session log (reference, {sample} records) | {log_read_rate:.0} sessions/s ({:.0} bytes/session of JSON) |",
        log_bytes as f64 / sample as f64
    );
    println!(
        "| end to end incl. log parse (harmonic) | {:.0} sessions/s |",
        1.0 / (1.0 / rate + 1.0 / log_read_rate)
    );
    println!(
        "| index size | {:.1} MiB = **{:.0} bytes/session** (target < 300) |",
        index_bytes as f64 / 1048576.0,
        index_bytes as f64 / n as f64
    );
    println!("| alert hits during indexing | {alert_hits} |");
    println!("| peak RSS | {} MiB |", peak_rss_mib());
    println!("\n## Query latency ({n} sessions)\n");
    println!(
        "Top 100 newest matching sessions (records loaded), and the count of all matches. Reference: scanning every record in memory with the same query's record matcher (measured on {sample} records, scaled to {n}).\n"
    );
    println!(
        "| query | mean hits | top-100 p50 ms | top-100 p99 ms | count p50 ms | count p99 ms | in-memory scan ms (ref) | scan / p50 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (j, (name, mut top, mut cnt, total)) in lat.into_iter().enumerate() {
        let scan_ms = scan_per_record
            .get(j)
            .map(|x| x.1 * n as f64 * 1000.0)
            .unwrap_or(0.0);
        let p50 = pct(&mut top, 0.5);
        println!(
            "| {name} | {} | {} | {} | {} | {} | {scan_ms:.0} | {:.0}× |",
            total / runs.max(1),
            ms(p50),
            ms(pct(&mut top, 0.99)),
            ms(pct(&mut cnt, 0.5)),
            ms(pct(&mut cnt, 0.99)),
            scan_ms / (p50.as_secs_f64() * 1000.0).max(1e-6)
        );
    }
    println!(
        "\nQueries (run k): `host:<word><k%250>`, `client:10.<k%8>.0.0/16 AND port:<443|53|80|22>`, the NetRAPTOR CONNECT example, `subject:\"<phrase>\"`, `time:[<random hour> TO <+1h>}} AND protocol:<dns|tls|http>`, `url:\"/<word>/\"` (substring over every URL)."
    );
    Ok(())
}

fn queries_only(dir: &Path, runs: u64) -> Result<(), Box<dyn std::error::Error>> {
    let index = Index::open(dir)?;
    println!("{} sessions in {}", index.len(), dir.display());
    let mut rng = Rng::new(42);
    let mut lat: Vec<(&str, Vec<Duration>, Vec<Duration>)> = Vec::new();
    // BENCH_ONLY=<name prefix> runs one query family (for profiling).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for k in 0..runs {
        for (j, (name, q)) in queries(k, &mut rng)
            .into_iter()
            .filter(|(n, _)| n.starts_with(only.as_str()))
            .enumerate()
        {
            let query = Query::parse(&q)?;
            let t = Instant::now();
            index.search(&query, 100)?;
            let d_top = t.elapsed();
            let t = Instant::now();
            index.count(&query)?;
            let d_count = t.elapsed();
            if lat.len() <= j {
                lat.push((name, Vec::new(), Vec::new()));
            }
            lat[j].1.push(d_top);
            lat[j].2.push(d_count);
        }
    }
    for (name, mut top, mut cnt) in lat {
        println!(
            "{name}: top-100 p50 {} ms p99 {} ms; count p50 {} ms p99 {} ms",
            ms(pct(&mut top, 0.5)),
            ms(pct(&mut top, 0.99)),
            ms(pct(&mut cnt, 0.5)),
            ms(pct(&mut cnt, 0.99))
        );
    }
    Ok(())
}
