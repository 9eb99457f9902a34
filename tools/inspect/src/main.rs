//! `kuroko-inspect`: looks at a segment store (or single segment files) the way a
//! technician with a damaged disk needs: the store's geometry, every segment header, every
//! block with its checksums, and a damage report with segment and offset.
//!
//! It only reads. It trusts nothing it reads: a segment whose header fails its checksum is
//! still walked (its geometry then comes from `store.meta`, the header's own fields, or
//! `--chunk-size`), and `--raw` lists every block header found at any 4 KiB boundary,
//! whatever its generation.
//!
//! One bad byte fails a whole block's checksum (readers skip it, up to a chunk of packets).
//! The records of such a block that still parse are counted as salvageable, and
//! `--salvage FILE` writes them to a pcap: UNVERIFIED packets (their bytes may hold the
//! damage), kept apart from the store's verified exports.
//!
//! Exit status: 0 when everything checked is intact, 2 when damage was found (also with
//! `--salvage`), 1 on error.

#![forbid(unsafe_code)]

use anyhow::{Context, bail};
use clap::Parser;
use kuroko_ring::format::{
    self as fmt, BLOCK_HEADER_LEN, Geometry, Records, SegmentHeader, StoreMeta, WriterState,
    io_mode,
};
use kuroko_ring::segment::{self, BlockEvent, BlockScan};
use std::path::{Path, PathBuf};
use zerocopy::FromBytes;

/// Inspect a Kuroko segment store: headers, blocks, checksums, damage.
#[derive(Parser, Debug)]
#[command(name = "kuroko-inspect", version)]
struct Cli {
    /// A data directory, its `segments/` directory, or segment files (`seg-00003.kseg`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// List every block of every segment (offset, number, records, times, checksums).
    #[arg(long)]
    blocks: bool,
    /// Also print the first N records of every listed block.
    #[arg(long, value_name = "N", default_value_t = 0)]
    records: usize,
    /// List every block header found at any 4 KiB boundary, of any generation.
    #[arg(long)]
    raw: bool,
    /// Chunk size to assume when neither store.meta nor the segment header can tell.
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u64>,
    /// Write the records of damaged blocks that still parse to this pcap (Ethernet,
    /// nanosecond times). UNVERIFIED: their block fails its checksum.
    #[arg(long, value_name = "FILE")]
    salvage: Option<PathBuf>,
}

/// Records salvaged from damaged blocks: (time, wire length, bytes).
type Salvaged = Vec<(u64, u32, Vec<u8>)>;

fn main() {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(0) => {}
        Ok(_) => std::process::exit(2),
        Err(e) => {
            eprintln!("kuroko-inspect: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Returns the number of damaged places found.
fn run(cli: &Cli) -> anyhow::Result<usize> {
    let mut damage = 0;
    let mut salvaged = Salvaged::new();
    for p in &cli.paths {
        let seg_dir = if p.join("segments").is_dir() {
            p.join("segments")
        } else {
            p.clone()
        };
        if seg_dir.is_dir() {
            damage += inspect_dir(cli, &seg_dir, &mut salvaged)?;
        } else if p.is_file() {
            let meta = p.parent().and_then(|d| read_meta(d).ok().flatten());
            damage += inspect_segment(cli, p, meta.as_ref(), &mut salvaged)?;
        } else {
            bail!("{}: no such file or directory", p.display());
        }
    }
    if let Some(out) = &cli.salvage {
        salvaged.sort_by_key(|r| r.0);
        let file = std::fs::File::create(out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let mut w = kuroko_ring::pcap::PcapWriter::new(
            std::io::BufWriter::new(file),
            fmt::LINKTYPE_ETHERNET as u32,
        )?;
        for (ts, wire, data) in &salvaged {
            w.write(*ts, *wire, data)?;
        }
        std::io::Write::flush(&mut w.into_inner())?;
        println!(
            "{} UNVERIFIED record(s) from damaged blocks salvaged to {}",
            salvaged.len(),
            out.display()
        );
    }
    if damage == 0 {
        println!("no damage found");
    } else {
        println!("{damage} damaged place(s) found");
    }
    Ok(damage)
}

fn ts(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ns % 1_000_000_000
    )
}

fn read_meta(seg_dir: &Path) -> anyhow::Result<Option<StoreMeta>> {
    let path = seg_dir.join("store.meta");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let Ok((m, _)) = StoreMeta::read_from_prefix(&bytes) else {
        println!("{}: too short ({} bytes)", path.display(), bytes.len());
        return Ok(None);
    };
    let ok = m.magic == fmt::STORE_MAGIC && crc32c::crc32c(m.crc_input()) == m.crc.get();
    println!(
        "{}: format {}, {} slots × {} bytes, chunks of {} bytes, budget {} bytes, created {}, seq base {}, seq reserved below {}{}",
        path.display(),
        m.version.get(),
        m.slot_count.get(),
        m.segment_size.get(),
        m.chunk_size.get(),
        m.budget.get(),
        ts(m.created_wall_ns.get()),
        m.seq_base.get(),
        m.seq_reserved.get(),
        if ok {
            ""
        } else {
            "  ** BAD MAGIC OR CHECKSUM **"
        }
    );
    Ok(ok.then_some(m))
}

fn inspect_dir(cli: &Cli, dir: &Path, salvaged: &mut Salvaged) -> anyhow::Result<usize> {
    let meta = read_meta(dir)?;
    if let Ok(b) = std::fs::read(dir.join("writer.state"))
        && let Ok((w, _)) = WriterState::read_from_prefix(&b)
    {
        let ok = w.magic == fmt::WRITER_STATE_MAGIC && crc32c::crc32c(w.crc_input()) == w.crc.get();
        let mode = match w.io_mode.get() {
            io_mode::URING_DIRECT => "io_uring+O_DIRECT",
            io_mode::PWRITE_DIRECT => "pwrite+O_DIRECT",
            io_mode::PWRITE_BUFFERED => "pwrite (page cache)",
            _ => "unknown",
        };
        println!(
            "writer.state: {mode}, fallbacks 0x{:x}, {} bytes / {} packets written, {} write errors, last update {}{}",
            w.fallback.get(),
            w.bytes_written.get(),
            w.packets_written.get(),
            w.write_errors.get(),
            ts(w.updated_wall_ns.get()),
            if ok { "" } else { "  ** BAD CHECKSUM **" }
        );
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "kseg"))
        .collect();
    files.sort();
    let mut damage = 0;
    for f in &files {
        damage += inspect_segment(cli, f, meta.as_ref(), salvaged)?;
    }
    Ok(damage)
}

fn geometry(
    cli: &Cli,
    header: Option<&SegmentHeader>,
    meta: Option<&StoreMeta>,
    len: u64,
) -> anyhow::Result<Geometry> {
    if let Some(m) = meta
        && let Ok(g) = Geometry::new(m.segment_size.get(), m.chunk_size.get() as u64)
    {
        return Ok(g);
    }
    if let Some(h) = header
        && let Ok(g) = Geometry::new(h.segment_size.get(), h.chunk_size.get() as u64)
    {
        return Ok(g);
    }
    let chunk = cli.chunk_size.unwrap_or(1 << 20);
    Geometry::new(len, chunk)
        .map_err(|e| anyhow::anyhow!("cannot tell the segment geometry ({e}); pass --chunk-size"))
}

fn inspect_segment(
    cli: &Cli,
    path: &Path,
    meta: Option<&StoreMeta>,
    salvaged: &mut Salvaged,
) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let header = fmt::segment_header(&bytes).copied();
    let g = geometry(cli, header.as_ref(), meta, bytes.len() as u64)?;
    let mut damage = 0;
    let header_ok = header.as_ref().is_some_and(|h| segment::header_ok(h, &g));
    if bytes.len() as u64 != g.segment_size {
        println!(
            "{}: ** {} bytes, the store's segments are {} **",
            path.display(),
            bytes.len(),
            g.segment_size
        );
        damage += 1;
    }
    // Which generation do the blocks belong to? The header's, or the first block's.
    let first_block_seq = fmt::block_header(&bytes[(g.region_len as usize).min(bytes.len())..])
        .map(|b| b.seq.get())
        .filter(|&s| segment::block_at(&bytes, &g, g.region_len, s).is_some());
    let (state, seq, sealed_index) = match (&header, header_ok) {
        (Some(h), true) => {
            let index = fmt::chunk_index(&bytes, g.chunk_count).filter(|i| {
                segment::index_crc(i) == h.index_crc.get() && h.state.get() == fmt::STATE_SEALED
            });
            let seq = match first_block_seq {
                Some(b) if b > h.seq.get() => b,
                _ => h.seq.get(),
            };
            (h.state.get(), seq, index.filter(|_| seq == h.seq.get()))
        }
        _ => (fmt::STATE_OPEN, first_block_seq.unwrap_or(0), None),
    };
    let state_name = match state {
        fmt::STATE_FREE => "free",
        fmt::STATE_OPEN => "open",
        fmt::STATE_SEALED => "sealed",
        _ => "unknown state",
    };
    match (&header, header_ok) {
        (Some(h), true) => {
            println!(
                "{}: {state_name}, seq {}, slot {}, flags 0x{:x}{}{}{}{}, {} packets, {} blocks, {} bytes used, {} to {}",
                path.display(),
                h.seq.get(),
                h.slot.get(),
                h.flags.get(),
                if h.flags.get() & fmt::SEG_FLAG_RECOVERED != 0 {
                    " (sealed by recovery)"
                } else {
                    ""
                },
                if h.flags.get() & fmt::SEG_FLAG_CLEAN_CLOSE != 0 {
                    " (closed cleanly)"
                } else {
                    ""
                },
                if h.flags.get() & fmt::SEG_FLAG_LANES != 0 {
                    " (written through lanes: blocks of several capture threads interleave)"
                } else {
                    ""
                },
                if h.flags.get() & fmt::SEG_FLAG_RING != 0 {
                    " (format 3: may hold ring blocks, TPACKET_V3 blocks stored as the kernel filled them)"
                } else {
                    ""
                },
                h.packets.get(),
                h.blocks.get(),
                h.used_bytes.get(),
                ts(h.first_ts.get()),
                ts(h.last_ts.get()),
            );
            for i in h.ifaces() {
                println!(
                    "  interface {}: {} (link type {}, snaplen {})",
                    i.id.get(),
                    i.name(),
                    i.linktype.get(),
                    i.snaplen.get()
                );
            }
            if h.state.get() == fmt::STATE_SEALED && sealed_index.is_none() && seq == h.seq.get() {
                println!(
                    "  ** chunk index fails its checksum at offset {} **",
                    fmt::CHUNK_INDEX_OFFSET
                );
                damage += 1;
            }
        }
        _ => {
            println!(
                "{}: ** segment header at offset 0 fails its checks ** (walking blocks of seq {seq})",
                path.display()
            );
            damage += 1;
        }
    }
    if seq != 0 && header.is_some_and(|h| header_ok && seq != h.seq.get()) {
        println!(
            "  blocks of seq {seq} behind a header of seq {}: the header write was lost",
            header.map_or(0, |h| h.seq.get())
        );
    }
    if seq == 0 {
        return Ok(damage);
    }
    let mut blocks = 0u64;
    let mut packets = 0u64;
    for ev in BlockScan::new(&bytes, g, seq, sealed_index) {
        let (b, bad_units, ok) = match ev {
            BlockEvent::Valid(b) => (b, 0, true),
            BlockEvent::Partial { block, bad_units } => (block, bad_units, false),
            BlockEvent::BadPayload(b) => (b, u64::MAX, false),
            BlockEvent::BadHeader { offset, len } => {
                damage += 1;
                println!(
                    "  ** no valid block header at offset {offset} ({len} bytes of the used area skipped) **"
                );
                continue;
            }
        };
        blocks += 1;
        let h = b.header;
        if ok {
            packets += h.record_count.get() as u64;
        } else if bad_units != u64::MAX {
            // Some units fail their crc: the records outside them are verified
            // and readers return them.
            damage += 1;
            let kept = b.salvaged(bad_units);
            packets += kept as u64;
            let units: Vec<String> = (0..64)
                .filter(|k| bad_units & (1 << k) != 0)
                .map(|k| k.to_string())
                .collect();
            let (from, len) = b.bad_range(bad_units);
            // The lost records that still parse when the payload is walked from its start
            // regardless of the units: salvageable, unverified.
            let mut verified = vec![false; h.record_count.get() as usize];
            for r in b.records(bad_units).flatten() {
                if let Some(v) = verified.get_mut(r.ordinal as usize) {
                    *v = true;
                }
            }
            let mut parsed = 0u32;
            for r in unchecked_records(&b) {
                let Ok(r) = r else { break };
                if verified.get(r.ordinal as usize) == Some(&false) {
                    parsed += 1;
                    if cli.salvage.is_some() {
                        salvaged.push((
                            r.header.ts_ns.get(),
                            r.header.wire_len.get(),
                            r.data.to_vec(),
                        ));
                    }
                }
            }
            println!(
                "  ** block {} at offset {}: unit(s) {} of {} ({} KiB each; payload bytes {}..{}) fail their checksum: {} of {} records lost, {} verified and read **",
                h.block_no.get(),
                b.offset,
                units.join(","),
                h.unit_count,
                (1u64 << h.unit_shift) / 1024,
                from,
                from + len,
                h.record_count.get() - kept,
                h.record_count.get(),
                kept
            );
            println!(
                "     salvageable: {parsed} of the {} lost records still parse (UNVERIFIED: their unit fails its checksum; --salvage FILE writes them)",
                h.record_count.get() - kept
            );
        } else {
            damage += 1;
            println!(
                "  ** block {} at offset {}: payload fails its checksum ({} records, {} bytes skipped by readers) **",
                h.block_no.get(),
                b.offset,
                h.record_count.get(),
                h.disk_len()
            );
            // The records that still parse, in order, up to the first that
            // does not: salvageable, unverified.
            let mut parsed = 0u32;
            for r in unchecked_records(&b) {
                let Ok(r) = r else { break };
                parsed += 1;
                if cli.salvage.is_some() {
                    salvaged.push((
                        r.header.ts_ns.get(),
                        r.header.wire_len.get(),
                        r.data.to_vec(),
                    ));
                }
            }
            println!(
                "     salvageable: {parsed} of {} records still parse (UNVERIFIED: the block fails its checksum; --salvage FILE writes them)",
                h.record_count.get()
            );
        }
        if cli.blocks {
            println!(
                "  {} {:>6} @ {:>10}  chunk {:>4}  {:>6} records  {:>8} bytes  {} .. {}  crc {}",
                if h.is_ring() { "ring block" } else { "block" },
                h.block_no.get(),
                b.offset,
                g.chunk_of(b.offset),
                h.record_count.get(),
                h.payload_len.get(),
                ts(h.first_ts.get()),
                ts(h.last_ts.get()),
                if ok {
                    "ok"
                } else if bad_units != u64::MAX {
                    "PARTLY BAD"
                } else {
                    "BAD"
                }
            );
            let records = if bad_units == u64::MAX {
                unchecked_records(&b)
            } else {
                b.records(bad_units)
            };
            for r in records.take(cli.records) {
                match r {
                    Ok(r) => println!(
                        "      record @ {:>8}  {}  iface {}  {} of {} bytes  flags 0x{:x}",
                        b.offset
                            + if h.is_ring() {
                                fmt::ALIGN
                            } else {
                                BLOCK_HEADER_LEN as u64
                            }
                            + r.offset as u64,
                        ts(r.header.ts_ns.get()),
                        r.header.iface.get(),
                        r.header.cap_len.get(),
                        r.header.wire_len.get(),
                        r.header.flags.get()
                    ),
                    Err(m) => println!(
                        "      ** malformed record at payload offset {} **",
                        m.offset
                    ),
                }
            }
        }
    }
    println!("  {blocks} blocks, {packets} packets readable");
    if cli.raw {
        println!("  raw block headers at 4 KiB boundaries (any generation):");
        let mut off = g.region_len;
        while off + BLOCK_HEADER_LEN as u64 <= bytes.len() as u64 {
            if let Some(h) = fmt::block_header(&bytes[off as usize..])
                && (h.magic.get() == fmt::BLOCK_MAGIC || h.is_ring())
            {
                let hok = crc32c::crc32c(h.crc_input()) == h.header_crc.get();
                println!(
                    "    @ {:>10}  seq {:>8}  block {:>6}  {:>6} records  {:>8} bytes  header crc {}",
                    off,
                    h.seq.get(),
                    h.block_no.get(),
                    h.record_count.get(),
                    h.payload_len.get(),
                    if hok { "ok" } else { "BAD" }
                );
            }
            off += fmt::ALIGN;
        }
    }
    Ok(damage)
}

/// Every record (or ring frame) of a block that still parses, whatever its checksums say.
fn unchecked_records<'a>(b: &kuroko_ring::segment::ScannedBlock<'a>) -> Records<'a> {
    if b.header.is_ring() {
        Records::ring(b.payload, b.header.ring_iface())
    } else {
        Records::new(b.payload)
    }
}
