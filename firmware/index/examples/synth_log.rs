//! Writes `N` synthetic sessions into `DIR/sessions` (for trying `kuroko search` by hand).
//!
//! `cargo run -p kuroko-index --example synth_log -- DIR N`

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "data".into()));
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut w = kuroko_model::sessionlog::SessionLogWriter::open(&dir.join("sessions"))?;
    let t0 = 1_795_219_200_000_000_000;
    for i in 0..n {
        w.append(&kuroko_index::synth::session(i, t0, 10_000_000_000))?;
    }
    w.sync()?;
    Ok(())
}
