//! The analyzer alone, for `cargo xtask bench analyze`: exactly what `kuroko analyze` runs
//! before the session-log consumers (index, detections), built without them.
//!
//! ```text
//! analyze_bench import PCAP DATA BUDGET_BYTES   # pcap → segment store (kuroko-ring)
//! analyze_bench analyze DATA                    # driver::run over the store; JSON summary
//! analyze_bench analyze-pcap PCAP DATA          # the same, reading the pcap (no store)
//! analyze_bench scan DATA                       # the store's read path alone
//! analyze_bench synth PCAP BYTES SEED [MIX]     # generate traffic: mixed (default),
//!                                               # http-files (or files), small-sessions
//! analyze_bench synth-store DATA BYTES SEED BUDGET  # generate straight into a store
//! ```
//!
//! `synth-store` exists for the flat-RSS runs (`--scale`): 10 GB of traffic without a
//! 10 GB pcap beside the 10 GB store on a shared disk.

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
        Some("analyze-trace") if args.len() == 3 || args.len() == 4 => {
            // The same run, with CPU seconds (getrusage) printed to stderr about every
            // 0.5 s of wall time beside the position reached: shows whether the cost per
            // byte changes along the input (for profiling the scale runs). An optional
            // files budget (default 512MiB) lets a small input run with a full budget.
            let data = Path::new(&args[2]);
            let mut config = kuroko_model::config::Config::default();
            config.storage.files_budget = args.get(3).map_or("512MiB", String::as_str).into();
            let mut source = StoreSource::open(data)?;
            let mut last = (0.0f64, 0u64, 0u64);
            let mut cb = |p: driver::Progress| {
                let (u, s) = cpu_seconds();
                let cpu = u + s;
                let (dc, db) = (cpu - last.0, p.bytes - last.1);
                eprintln!(
                    "trace bytes={:.3}GB cpu={cpu:.2}s user={u:.2} sys={s:.2} d_bytes={:.0}MB d_cpu={dc:.3}s gbps={:.2} sessions={} d_sessions={} open_flows={}",
                    p.bytes as f64 / 1e9,
                    db as f64 / 1e6,
                    db as f64 * 8.0 / dc.max(1e-9) / 1e9,
                    p.sessions,
                    p.sessions - last.2,
                    p.open_flows
                );
                last = (cpu, p.bytes, p.sessions);
            };
            let opts = RunOptions {
                progress: Some(&mut cb),
                ..RunOptions::default()
            };
            let s = driver::run(data, &config, &mut source, opts)?;
            println!("{}", serde_json::to_string(&s.counters)?);
        }
        Some("scan") if args.len() == 3 => {
            // The store's read path alone (block checksums, maps, records), no analysis.
            let reader = kuroko_ring::StoreReader::open(Path::new(&args[2]))?;
            let (mut packets, mut bytes) = (0u64, 0u64);
            let r = reader.scan(kuroko_ring::reader::Position::ORIGIN, |p| {
                packets += 1;
                bytes += p.data.len() as u64;
                std::ops::ControlFlow::Continue(())
            })?;
            println!(
                "{{\"packets\":{packets},\"bytes\":{bytes},\"damaged\":{}}}",
                r.damage.len()
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
        Some("synth-store") if args.len() == 6 => {
            let opts = kuroko_ring::StoreOptions {
                budget: args[5].parse()?,
                segment_size: 64 << 20,
                ..Default::default()
            };
            let mut w = kuroko_ring::SegmentWriter::open(Path::new(&args[2]), &opts)?;
            w.set_interfaces(&[kuroko_ring::format::IfaceEntry::new(0, 1, 262_144, "synth")]);
            let params = kuroko_analyzer::synth::Params {
                target_bytes: args[3].parse()?,
                concurrency: 512,
                seed: args[4].parse()?,
                ..Default::default()
            };
            let mut sink = StoreSink::new(&mut w);
            let r = kuroko_analyzer::synth::generate(&mut sink, &params)?;
            std::io::Write::flush(&mut sink)?;
            let stored = sink.packets;
            w.close()?;
            println!(
                "{{\"packets\":{},\"bytes\":{},\"stored\":{stored}}}",
                r.packets, r.bytes
            );
        }
        Some("synth") if args.len() == 5 || args.len() == 6 => {
            let params = kuroko_analyzer::synth::Params {
                target_bytes: args[3].parse()?,
                concurrency: 512,
                seed: args[4].parse()?,
                mix: match args.get(5).map(String::as_str) {
                    None => kuroko_analyzer::synth::Mix::Mixed,
                    // The older spelling of `http-files`.
                    Some("files") => kuroko_analyzer::synth::Mix::HttpFiles,
                    Some(m) => m.parse()?,
                },
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

/// User and system CPU seconds of this process.
fn cpu_seconds() -> (f64, f64) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(ru) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            (t(ru.user_time()), t(ru.system_time()))
        }
        Err(_) => (0.0, 0.0),
    }
}

/// A `Write` that takes the classic pcap stream `synth` writes (24-byte file header, then
/// 16-byte record headers in microseconds) and appends each frame to a store.
struct StoreSink<'a> {
    writer: &'a mut kuroko_ring::SegmentWriter,
    buf: Vec<u8>,
    header_done: bool,
    packets: u64,
}

impl<'a> StoreSink<'a> {
    fn new(writer: &'a mut kuroko_ring::SegmentWriter) -> Self {
        StoreSink {
            writer,
            buf: Vec::with_capacity(1 << 20),
            header_done: false,
            packets: 0,
        }
    }

    fn drain(&mut self) -> std::io::Result<()> {
        let mut at = 0;
        if !self.header_done {
            if self.buf.len() < 24 {
                return Ok(());
            }
            at = 24;
            self.header_done = true;
        }
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        while self.buf.len() - at >= 16 {
            let h = &self.buf[at..at + 16];
            let (sec, usec, incl, orig) = (u32_at(h, 0), u32_at(h, 4), u32_at(h, 8), u32_at(h, 12));
            let end = at + 16 + incl as usize;
            if self.buf.len() < end {
                break;
            }
            let meta = kuroko_ring::RecordMeta {
                ts_ns: u64::from(sec) * 1_000_000_000 + u64::from(usec) * 1000,
                wire_len: orig,
                iface: 0,
                flags: kuroko_ring::format::record_flags::IMPORTED,
            };
            self.writer
                .append(&meta, &[&self.buf[at + 16..end]])
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            self.packets += 1;
            at = end;
        }
        self.buf.drain(..at);
        Ok(())
    }
}

impl std::io::Write for StoreSink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 16 {
            self.drain()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.drain()
    }
}
