//! The analyzer alone, for `cargo xtask bench analyze`: exactly what `kuroko analyze` runs
//! before the session-log consumers (index, detections), built without them.
//!
//! ```text
//! analyze_bench import PCAP DATA BUDGET_BYTES   # pcap → segment store (kuroko-ring)
//! analyze_bench analyze DATA                    # driver::run over the store; JSON summary
//! analyze_bench analyze-pcap PCAP DATA          # the same, reading the pcap (no store)
//! analyze_bench synth PCAP BYTES SEED           # generate mixed traffic (for profiling)
//! ```

use kuroko_analyzer::driver::{self, RunOptions};
use kuroko_analyzer::store::StoreSource;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("import") if args.len() == 5 => {
            let opts = kuroko_ring::StoreOptions {
                budget: args[4].parse()?,
                segment_size: 64 << 20,
                ..Default::default()
            };
            let mut w = kuroko_ring::SegmentWriter::open(Path::new(&args[3]), &opts)?;
            let r = kuroko_ring::pcap::import_file(&mut w, Path::new(&args[2]), 0, |_, _| {})?;
            w.close()?;
            println!("{{\"packets\":{},\"bytes\":{}}}", r.packets, r.bytes);
        }
        Some("analyze") if args.len() == 3 => {
            let data = Path::new(&args[2]);
            let mut config = kuroko_model::config::Config::default();
            config.storage.files_budget = "512MiB".into();
            let mut source = StoreSource::open(data)?;
            let s = driver::run(data, &config, &mut source, RunOptions::default())?;
            println!(
                "{{\"packets\":{},\"bytes\":{},\"sessions\":{},\"files_stored\":{},\"decode_errors\":{},\"tcp_gaps\":{}}}",
                s.packets,
                s.bytes,
                s.sessions_written,
                s.counters.files_stored,
                s.counters.decode_errors,
                s.counters.tcp_gaps
            );
        }
        Some("analyze-pcap") if args.len() == 4 => {
            let data = Path::new(&args[3]);
            let mut config = kuroko_model::config::Config::default();
            config.storage.files_budget = "512MiB".into();
            let mut source = kuroko_analyzer::PcapSource::open(Path::new(&args[2]))?;
            let s = driver::run(data, &config, &mut source, RunOptions::default())?;
            println!(
                "{{\"packets\":{},\"bytes\":{},\"sessions\":{}}}",
                s.packets, s.bytes, s.sessions_written
            );
        }
        Some("synth") if args.len() == 5 => {
            let params = kuroko_analyzer::synth::Params {
                target_bytes: args[3].parse()?,
                concurrency: 512,
                seed: args[4].parse()?,
                ..Default::default()
            };
            let f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&args[2])?);
            let r = kuroko_analyzer::synth::generate(f, &params)?;
            println!("{{\"packets\":{},\"bytes\":{}}}", r.packets, r.bytes);
        }
        _ => {
            eprintln!(
                "usage: analyze_bench import PCAP DATA BUDGET_BYTES | analyze_bench analyze DATA"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
