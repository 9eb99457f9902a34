//! `kuroko import FILE... --data DIR`: stores pcap / pcapng files into the segment ring as if
//! they had been captured live (their timestamps are kept).
//!
//! Exit status: 0 when every packet record of every file was stored (a file cut short in
//! its last record is normal for a capture that was stopped, and only noted);
//! [`EXIT_PARTIAL`] when some were not (a file stopped at a malformed record, packets
//! skipped for an impossible timestamp or a length over the store's limit), after importing
//! everything else and saying how many packets were stored; also [`EXIT_PARTIAL`] when the
//! disk failed a write or fdatasync: the import stops there (a disk that failed once is
//! not trusted with the rest) and says how many packets were stored and how many were lost
//! to the failed writes (as `kuroko status` counts them); 1 on an error that stored
//! nothing more (unreadable file, foreign link type, store error).
//!
//! Also home of [`store_options`], the one conversion from the `[storage]` config section to
//! the store's own options, for every command that writes the store.

use super::DataArgs;
use anyhow::{Context, bail};
use kuroko_model::config::{Budget, Config};
use kuroko_ring::pcap::{ImportError, import_file};
use kuroko_ring::{SegmentWriter, StoreError, StoreOptions, WriterStats};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// pcap or pcapng files, imported in the order given. Link types: Ethernet (1), Linux
    /// cooked SLL (113) and SLL2 (276, `tcpdump -i any`), raw IP (101, 228, 229), BSD
    /// NULL/LOOP (0, 108).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The store options for data directory `data` from the config's `[storage]` section.
///
/// A percentage budget is taken of the file system that holds (or will hold) `data`.
/// These apply only when the store is created: an existing store keeps its geometry
/// (`store.meta`), because resizing a ring would drop data.
pub fn store_options(config: &Config, data: &Path) -> anyhow::Result<StoreOptions> {
    let budget = match config
        .storage
        .budget()
        .map_err(anyhow::Error::msg)
        .context("storage.budget")?
    {
        Budget::Bytes(b) => b,
        Budget::Percent(p) => {
            let fs = kuroko_ring::filesystem_size(data)
                .with_context(|| format!("cannot size the file system of {}", data.display()))?;
            (fs as f64 * p / 100.0) as u64
        }
    };
    let segment_size = config
        .storage
        .segment_size_bytes()
        .map_err(anyhow::Error::msg)
        .context("storage.segment_size")?;
    Ok(StoreOptions {
        budget,
        segment_size,
        ..StoreOptions::default()
    })
}

/// Exit status of an import that stored some packets of its files but not all.
pub const EXIT_PARTIAL: i32 = 3;

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let opts = store_options(&config, &args.data.data)?;
    for f in &args.files {
        if !f.is_file() {
            bail!(
                "{}: no such file; give pcap or pcapng files to import",
                f.display()
            );
        }
    }
    let mut writer = SegmentWriter::open(&args.data.data, &opts)
        .with_context(|| format!("cannot open the store in {}", args.data.data.display()))?;
    let rec = writer.recovery();
    if !rec.sealed_slots.is_empty() {
        eprintln!(
            "kuroko: recovered after an unclean stop: sealed {} open segment(s), {} damaged block(s) skipped",
            rec.sealed_slots.len(),
            rec.damaged_blocks
        );
    }
    let tty = std::io::stderr().is_terminal();
    let mut total_packets = 0u64;
    // Files of which some packet records were not stored.
    let mut partial: Vec<String> = Vec::new();
    for (i, file) in args.files.iter().enumerate() {
        let shown = file.display().to_string();
        let mut last = Instant::now();
        let progress = |done: usize, total: usize| {
            if tty && last.elapsed() > Duration::from_millis(200) {
                last = Instant::now();
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                eprint!("\r\x1b[Kimporting {shown}: {pct}%");
                let _ = std::io::stderr().flush();
            }
        };
        let rep = match import_file(&mut writer, file, 0, progress) {
            Ok(r) => r,
            Err(ImportError::Store(StoreError::WriteFailed { .. })) => {
                if tty {
                    eprint!("\r\x1b[K");
                }
                let after = args.files.len() - i - 1;
                let (stats, last) = finish(writer)?;
                let last = last.unwrap_or_else(|| std::io::Error::other("write failed"));
                return Err(partial_on_disk(
                    stats,
                    &last,
                    &format!(
                        "the import stopped in {shown}{}",
                        if after > 0 {
                            format!(" ({after} file(s) after it not imported)")
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
            Err(e) => {
                if tty {
                    eprint!("\r\x1b[K");
                }
                let before = if i > 0 {
                    format!(" ({} file(s) before it were stored)", i)
                } else {
                    String::new()
                };
                let _ = writer.close();
                return Err(match e {
                    ImportError::Pcap(p) => anyhow::anyhow!("{shown}: {p}{before}"),
                    ImportError::Store(s) => {
                        anyhow::Error::new(s).context(format!("importing {shown}{before}"))
                    }
                });
            }
        };
        if tty {
            eprint!("\r\x1b[K");
        }
        total_packets += rep.packets;
        println!(
            "{shown}: {} packets, {} stored{}",
            rep.packets,
            kuroko_model::units::format_bytes(rep.bytes),
            match (rep.first_ts, rep.last_ts) {
                (Some(a), Some(b)) => format!(
                    ", {} to {}",
                    kuroko_model::time::Timestamp(a as i64),
                    kuroko_model::time::Timestamp(b as i64)
                ),
                _ => String::new(),
            }
        );
        if let Some(cut) = rep.truncated {
            eprintln!(
                "kuroko: {shown}: the file is cut short: the last {cut} bytes (an incomplete packet) were not stored"
            );
        }
        if let Some(m) = &rep.malformed {
            eprintln!(
                "kuroko: {shown}: stopped at a malformed record ({m}); the {} packets before it were stored, the rest of the file was not",
                rep.packets
            );
            partial.push(format!("{shown}: stopped at a malformed record"));
        }
        if rep.too_large > 0 {
            eprintln!(
                "kuroko: {shown}: {} packet(s) longer than {} bytes were skipped",
                rep.too_large,
                writer.max_caplen()
            );
            partial.push(format!("{shown}: {} packet(s) too long", rep.too_large));
        }
        if rep.bad_time_packets > 0 {
            eprintln!(
                "kuroko: {shown}: {} packet(s) with an impossible timestamp were skipped, not stored (first: {})",
                rep.bad_time_packets,
                rep.first_bad_time
                    .map(|b| b.to_string())
                    .unwrap_or_default()
            );
            partial.push(format!(
                "{shown}: {} packet(s) with a bad timestamp",
                rep.bad_time_packets
            ));
        }
        if rep.untimed_packets > 0 {
            eprintln!(
                "kuroko: {shown}: {} pcapng simple packet(s) had no timestamp and got the previous packet's",
                rep.untimed_packets
            );
        }
    }
    let (stats, failure) = finish(writer).with_context(|| {
        format!(
            "cannot finish writing the store in {}",
            args.data.data.display()
        )
    })?;
    if let Some(last) = failure {
        return Err(partial_on_disk(
            stats,
            &last,
            "found when the import finished writing",
        ));
    }
    if args.files.len() > 1 {
        println!(
            "{total_packets} packets imported from {} files",
            args.files.len()
        );
    }
    if !partial.is_empty() {
        return Err(anyhow::Error::new(super::ExitCode(EXIT_PARTIAL)).context(format!(
            "partial import: {total_packets} packets stored, but not every packet of the files ({}); exit status {EXIT_PARTIAL}",
            partial.join("; ")
        )));
    }
    Ok(())
}

/// Finishes `writer`: `sync` (every queued write and the fdatasync done and counted), then
/// `close`. Returns this writer's counters and, when the disk failed a write or fdatasync
/// (now or earlier), the last failure.
fn finish(mut writer: SegmentWriter) -> Result<(WriterStats, Option<std::io::Error>), StoreError> {
    let synced = writer.sync();
    let mut stats = writer.stats();
    let closed = writer.close();
    let mut failure = None;
    for r in [synced, closed.map(|s| stats = s)] {
        match r {
            Ok(()) => {}
            Err(StoreError::WriteFailed { last, count }) => {
                stats.write_errors = stats.write_errors.max(count);
                failure = Some(last);
            }
            // `sync`'s own fdatasync (counted by the writer).
            Err(StoreError::Io { source, .. }) => {
                stats.write_errors = stats.write_errors.max(1);
                failure = Some(source);
            }
            Err(e) => return Err(e),
        }
    }
    Ok((stats, failure))
}

/// The partial-import error of a disk that failed writes: what this import stored and
/// what it lost (the counters `kuroko status` adds to the store's), and `where_` it stopped.
fn partial_on_disk(stats: WriterStats, last: &std::io::Error, where_: &str) -> anyhow::Error {
    eprintln!(
        "kuroko: the disk failed {} write(s) (last: {last}): {} packets stored, {} packets lost to the failed writes; {where_}",
        stats.write_errors.max(1),
        stats.packets_written,
        stats.packets_lost
    );
    anyhow::Error::new(super::ExitCode(EXIT_PARTIAL)).context(format!(
        "partial import: disk write errors: {} packets stored, {} packets lost; exit status {EXIT_PARTIAL}",
        stats.packets_written, stats.packets_lost
    ))
}
