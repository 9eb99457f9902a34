//! `cargo xtask bench search`: the session index at scale.
//!
//! Builds `kuroko-index`'s `bench_search` example in release and runs it: N synthetic
//! sessions (default 1 M; the target is 10 M, `--sessions 10000000`) indexed as
//! `ingest_pending` does (alerts evaluated on every session), then index size per session,
//! indexing rate, and p50/p99 latency of typical queries. References measured in the same
//! run: parsing the session log (JSON) and scanning records in memory with the matcher.
//!
//! Then the packets of one session from a full store (`pcap_one`): a store filled past
//! its budget by `kuroko import` (so the ring has wrapped), analysed by `kuroko analyze`,
//! and one TCP session from the middle of the retained window exported with
//! `kuroko pcap --query 'id:…'`, first with the store's files evicted from the page cache,
//! then warm; the pcap is checked with tshark (packet count and 5-tuple).
//!
//! The report goes to `bench-out/search.md`. Nothing here asserts on time.

use crate::util::{cargo, root, run as run_cmd};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Synthetic sessions to index.
    #[arg(long, default_value_t = 1_000_000)]
    pub sessions: u64,
    /// Runs of each query (with varying values).
    #[arg(long, default_value_t = 30)]
    pub runs: u64,
    /// Work directory (the index; removed afterwards unless --keep).
    #[arg(long, default_value = "/tmp/kuroko-bench-search")]
    pub work: PathBuf,
    #[arg(long)]
    pub keep: bool,
    /// Segment-store budget for the one-session extraction (MiB; 0 skips it). The store is
    /// filled with 1.5 times this much traffic.
    #[arg(long, default_value_t = 2048)]
    pub pcap_store_mib: u64,
    /// Only the one-session extraction (no index benchmark).
    #[arg(long)]
    pub pcap_only: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut report = String::new();
    if !args.pcap_only {
        report.push_str(&index_bench(&args)?);
    }
    if args.pcap_store_mib > 0 {
        report.push_str(&pcap_one(&args)?);
    }
    let dir = root().join("bench-out");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("search.md");
    std::fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{report}");
    eprintln!("written to {}", path.display());
    Ok(())
}

fn index_bench(args: &Args) -> anyhow::Result<String> {
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-index",
        "--example",
        "bench_search",
    ]))?;
    let bin = crate::util::target_dir().join("release/examples/bench_search");
    eprintln!(
        "+ {} {} {} {}",
        bin.display(),
        args.work.display(),
        args.sessions,
        args.runs
    );
    let out = Command::new(&bin)
        .arg(&args.work)
        .arg(args.sessions.to_string())
        .arg(args.runs.to_string())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "bench_search failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    if !args.keep {
        let _ = std::fs::remove_dir_all(&args.work);
    }
    Ok(report)
}

/// Wire time of one 1514-byte frame at 1 Gbps (with preamble and gap, rounded).
const FRAME_NS: u64 = 12_300;
/// Background flows the filler cycles through.
const FLOWS: u32 = 4096;
/// The session exported: client, server, ports, packets, spacing.
const TARGET_CLIENT: [u8; 4] = [10, 99, 0, 1];
const TARGET_SERVER: [u8; 4] = [192, 0, 2, 99];
const TARGET_CPORT: u16 = 40_000;
const TARGET_SPORT: u16 = 9_999;
const TARGET_DATA: u32 = 34;
const TARGET_GAP_NS: u64 = 25_000_000;
/// Bytes of pcap written per `kuroko import` (the disk is shared; parts are deleted).
const PART_BYTES: u64 = 256 << 20;
const T0_NS: u64 = 1_795_219_200_000_000_000;

fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4/TCP frame with `payload` zero bytes.
pub(super) fn frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    payload: usize,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (40 + payload) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    f.extend_from_slice(&tcp);
    f.resize(54 + payload, 0);
    f
}

/// The target session's frames with their times: handshake, data both ways, FIN/ACK.
fn target_frames(start_ns: u64) -> Vec<(u64, Vec<u8>)> {
    let (c, s, cp, sp) = (TARGET_CLIENT, TARGET_SERVER, TARGET_CPORT, TARGET_SPORT);
    let (mut cseq, mut sseq) = (1_000u32, 50_000u32);
    let mut v = vec![
        frame(c, s, cp, sp, 0x02, cseq, 0),
        frame(s, c, sp, cp, 0x12, sseq, 0),
    ];
    cseq += 1;
    sseq += 1;
    v.push(frame(c, s, cp, sp, 0x10, cseq, 0));
    for i in 0..TARGET_DATA {
        if i % 2 == 0 {
            v.push(frame(c, s, cp, sp, 0x18, cseq, 1000));
            cseq += 1000;
        } else {
            v.push(frame(s, c, sp, cp, 0x18, sseq, 1000));
            sseq += 1000;
        }
    }
    v.push(frame(c, s, cp, sp, 0x11, cseq, 0));
    v.push(frame(s, c, sp, cp, 0x11, sseq, 0));
    v.push(frame(c, s, cp, sp, 0x10, cseq + 1, 0));
    v.into_iter()
        .enumerate()
        .map(|(i, f)| (start_ns + i as u64 * TARGET_GAP_NS, f))
        .collect()
}

pub(super) fn pcap_record(out: &mut impl Write, ts_ns: u64, f: &[u8]) -> std::io::Result<()> {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
    h[4..8].copy_from_slice(&(((ts_ns % 1_000_000_000) / 1000) as u32).to_le_bytes());
    h[8..12].copy_from_slice(&(f.len() as u32).to_le_bytes());
    h[12..16].copy_from_slice(&(f.len() as u32).to_le_bytes());
    out.write_all(&h)?;
    out.write_all(f)
}

fn pcap_header(out: &mut impl Write) -> std::io::Result<()> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    out.write_all(&h)
}

/// Drops `dir`'s files from the page cache, only ours (GNU dd: `iflag=nocache count=0`
/// advises the kernel to drop the whole file).
fn evict(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            evict(&p);
        } else {
            let _ = Command::new("dd")
                .arg(format!("if={}", p.display()))
                .args(["iflag=nocache", "count=0", "status=none"])
                .status();
        }
    }
}

fn kuroko(bin: &Path, sub: &str, data: &Path, config: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg(sub)
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config);
    c
}

fn output(c: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{c:?}");
    let out = c.output().with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata().ok();
                    if m.as_ref().is_some_and(|m| m.is_dir()) {
                        dir_bytes(&e.path())
                    } else {
                        m.map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// One session's packets out of a full store; returns the report section.
fn pcap_one(args: &Args) -> anyhow::Result<String> {
    let bin = crate::util::build_kuroko(true)?;
    let work = args.work.join("pcap-one");
    let _ = std::fs::remove_dir_all(&work);
    let data = work.join("data");
    std::fs::create_dir_all(&data)?;
    let config = work.join("kuroko.toml");
    let budget = args.pcap_store_mib << 20;
    std::fs::write(
        &config,
        format!("[storage]\nbudget = \"{}MiB\"\n", args.pcap_store_mib),
    )?;
    let result = pcap_one_in(&bin, &work, &data, &config, budget);
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn pcap_one_in(
    bin: &Path,
    work: &Path,
    data: &Path,
    config: &Path,
    budget: u64,
) -> anyhow::Result<String> {
    // Traffic: 1.5 × the budget of full-size frames at 1 Gbps; the session sits where the
    // retained window (the last `budget` bytes) has its middle.
    let frame_rec = 16 + 1514u64;
    let total_frames = budget * 3 / 2 / frame_rec;
    let target_at = total_frames - (budget / 2) / frame_rec;
    let target = target_frames(T0_NS + target_at * FRAME_NS);
    let target_packets = target.len();
    let mut pending = target.into_iter().peekable();
    let part = work.join("part.pcap");
    let t_fill = Instant::now();
    let mut i = 0u64;
    let mut parts = 0;
    while i < total_frames {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&part)?);
        pcap_header(&mut f)?;
        let mut written = 0u64;
        while i < total_frames && written < PART_BYTES {
            let ts = T0_NS + i * FRAME_NS;
            while let Some((t, fr)) = pending.next_if(|(t, _)| *t <= ts) {
                pcap_record(&mut f, t, &fr)?;
            }
            let flow = (i % u64::from(FLOWS)) as u32;
            let src = [10, 1, (flow >> 8) as u8, flow as u8];
            let dst = [203, 0, 113, (flow % 200) as u8 + 1];
            let fr = frame(src, dst, 20_000 + (flow as u16), 443, 0x18, i as u32, 1460);
            pcap_record(&mut f, ts, &fr)?;
            written += frame_rec;
            i += 1;
        }
        f.flush()?;
        drop(f);
        output(kuroko(bin, "import", data, config).arg(&part))?;
        parts += 1;
    }
    let _ = std::fs::remove_file(&part);
    let fill_secs = t_fill.elapsed().as_secs_f64();
    let store_bytes = dir_bytes(&data.join("segments"));
    let t = Instant::now();
    output(&mut kuroko(bin, "analyze", data, config))?;
    let analyze_secs = t.elapsed().as_secs_f64();
    let found = output(kuroko(bin, "search", data, config).args([
        "--format",
        "jsonl",
        &format!(
            "server:{}.{}.{}.{} AND server_port:{TARGET_SPORT}",
            TARGET_SERVER[0], TARGET_SERVER[1], TARGET_SERVER[2], TARGET_SERVER[3]
        ),
    ]))?;
    let first = found
        .lines()
        .next()
        .context("the target session was not indexed")?;
    let rec: serde_json::Value = serde_json::from_str(first)?;
    let id = rec["id"].as_str().context("no id")?.to_string();
    let sessions: u64 = output(kuroko(bin, "search", data, config).args(["--count", "*"]))?
        .trim()
        .parse()
        .unwrap_or(0);
    let out = work.join("one.pcap");
    let mut times: Vec<Duration> = Vec::new();
    for run in 0..6 {
        if run == 0 {
            evict(data);
        }
        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        output(
            kuroko(bin, "pcap", data, config)
                .args(["--query", &format!("id:\"{id}\""), "-w"])
                .arg(&out),
        )?;
        times.push(t.elapsed());
    }
    let tshark_all = output(Command::new("tshark").arg("-r").arg(&out))?
        .lines()
        .count();
    let filter = format!(
        "ip.addr=={}.{}.{}.{} && ip.addr=={}.{}.{}.{} && tcp.port=={TARGET_CPORT} && tcp.port=={TARGET_SPORT}",
        TARGET_CLIENT[0],
        TARGET_CLIENT[1],
        TARGET_CLIENT[2],
        TARGET_CLIENT[3],
        TARGET_SERVER[0],
        TARGET_SERVER[1],
        TARGET_SERVER[2],
        TARGET_SERVER[3]
    );
    let tshark_flow = output(
        Command::new("tshark")
            .arg("-r")
            .arg(&out)
            .args(["-Y", &filter]),
    )?
    .lines()
    .count();
    let cold = times[0];
    let mut warm: Vec<Duration> = times[1..].to_vec();
    warm.sort();
    let warm_med = warm[warm.len() / 2];
    let window_mb =
        (target_packets as u64 * TARGET_GAP_NS) as f64 / FRAME_NS as f64 * frame_rec as f64 / 1e6;
    let mut r = String::new();
    r.push_str("\n## One session's packets from a full store\n\n");
    r.push_str(&format!(
        "Store budget {} MiB, filled with {:.1} GiB of 1514-byte frames at a 1 Gbps rate ({} `kuroko import` parts, {fill_secs:.0} s; the ring wrapped), {} MiB on disk; `kuroko analyze` {analyze_secs:.0} s, {sessions} sessions indexed. The exported session ({target_packets} packets over {:.1} s, {window_mb:.0} MB of traffic in its time window) sits in the middle of the retained window.\n\n",
        budget >> 20,
        (total_frames * frame_rec) as f64 / (1u64 << 30) as f64,
        parts,
        store_bytes >> 20,
        (target_packets as u64 * TARGET_GAP_NS) as f64 / 1e9,
    ));
    r.push_str("| measure | value |\n| --- | --- |\n");
    r.push_str(&format!(
        "| `kuroko pcap --query 'id:\"{id}\"'`, store evicted from the page cache | **{:.0} ms** (target < 1 s) |\n",
        cold.as_secs_f64() * 1e3
    ));
    r.push_str(&format!(
        "| same, warm (median of {}) | {:.0} ms |\n",
        warm.len(),
        warm_med.as_secs_f64() * 1e3
    ));
    r.push_str(&format!(
        "| packets in the pcap (tshark) | {tshark_all} (session 5-tuple: {tshark_flow}; generated: {target_packets}) |\n"
    ));
    if tshark_all != target_packets || tshark_flow != target_packets {
        bail!(
            "the exported pcap has {tshark_all} packets ({tshark_flow} of the session), expected {target_packets}\n{r}"
        );
    }
    Ok(r)
}
