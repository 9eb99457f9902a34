//! Writes `N` synthetic sessions into `DIR/sessions` (for trying `kuroko search` by hand),
//! and with `--index` then builds the session index from that log (what `kuroko analyze`'s
//! index consumer does; `kuroko search` reads the index and never builds it), printing the
//! time of each phase. `cargo xtask bench web --synthetic` uses both.
//!
//! `cargo run -p kuroko-index --example synth_log -- DIR N [--index]`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "data".into()));
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let index = args.any(|a| a == "--index");
    let t = std::time::Instant::now();
    let mut w = kuroko_model::sessionlog::SessionLogWriter::open(&dir.join("sessions"))?;
    let t0 = 1_795_219_200_000_000_000;
    for i in 0..n {
        w.append(&kuroko_index::synth::session(i, t0, 10_000_000_000))?;
    }
    w.sync()?;
    eprintln!(
        "synth_log: {n} sessions written to the session log in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    if index {
        let t = std::time::Instant::now();
        let s = kuroko_index::ingest_pending(&dir, &kuroko_model::config::Config::default())?;
        eprintln!(
            "synth_log: {} sessions indexed in {:.1} s",
            s.indexed,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
