//! `cargo xtask bench capture`: `kuroko capture` beside stenotype, tcpdump and netsniff-ng,
//! interleaved in the same run under the same loads (method of `shared/research/limits.md`).
//!
//! Set-up: two network namespaces joined by a veth pair (`vgen` → `vcap`, MTU 1500, IPv6
//! off). The generator runs pinned to CPU 0 in the generator namespace: tcpreplay (pcap
//! preloaded with `-K`) and trafgen (netsniff-ng's TX_RING generator, qdisc bypassed, one
//! process, `-b Npps` pacing; its packet config is converted from the same pcap by
//! netsniff-ng, so both generators send identical frames). Each capture tool runs alone,
//! pinned to CPU 1, in the capture namespace, with a 32 MiB ring (`--ring-mb`). `kuroko`
//! starts every trial in a fresh data directory (as a new user, the demo or a new disk do:
//! the ring's first pass creates its slot files as it grows); with `--warm`, `kuroko-warm`
//! also runs, every trial into one store a warm-up wrapped once (slots overwritten), so the
//! report shows both beside the peers, which always write new files. `--tools` may add
//! `kuroko-zc` (zero-copy capture, `[capture] zero_copy = "on"`: ring blocks written from
//! the ring's memory; its `copied B / pkt` is 0) and `kuroko-2t` (two capture threads);
//! `--kuroko-ref BIN` adds `kuroko-ref`, another commit's build run exactly as `kuroko`, so
//! a change is measured against the code before it trial beside trial. Loads:
//! 64 B, 1500 B and a mixed TCP/UDP pcap at 50 % of tcpreplay's maximum (measured first,
//! nothing capturing), and 1500 B unpaced, each with every generator. Rounds are
//! interleaved: every round runs every load with every tool in turn, so ours and the peers
//! see the same machine within seconds and slow drifts of the machine spread over all
//! tools; the table shows the median and the range over rounds.
//!
//! Per trial: offered = the packets `vcap` received (its rx_packets delta); captured = the
//! tool's own count (kuroko's summary, tcpdump's "packets captured", records in
//! netsniff-ng's pcap, `num_pkts` of stenotype's TPACKET blocks); loss = offered −
//! captured; CPU = utime+stime of the tool's process over the load window (from
//! /proc/PID/stat) per captured packet; MB/s written and bytes on disk per packet (kuroko:
//! the store's `bytes_written` delta from `kuroko status`; the others: file sizes);
//! `oth%` = what else ran on the capture core (noise: trials above 30 % are retried
//! once); `load` = the 1-minute load average when the trial started. Kuroko's copied
//! bytes per packet (the one user-space copy, ring → store buffer) come from its stats
//! page. The disk reference is a raw O_DIRECT write (1 MiB, queue depth 8, io_uring:
//! `kuroko_ring::disk::raw_write_speed`, the pattern of the store and of limits.md's fio
//! runs) into the bench's work directory, measured once per round; MB/s written is also
//! given as a fraction of it. Output: markdown on stdout and in `bench-out/capture.md`.
//!
//! Clean-up: the namespaces and the work directory go on every exit path (error, panic,
//! SIGINT/SIGTERM/SIGHUP: the handler only sets a flag, the bench stops at the next check
//! and unwinds through the clean-up), and stale ones from an earlier run are removed at
//! start.

use anyhow::{Context, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::util;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds of load per trial.
    #[arg(long, default_value_t = 2.5)]
    pub seconds: f64,
    /// Rounds (each runs every load with every generator and tool; the table shows the
    /// median and the range over rounds).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Kernel ring per tool, MiB.
    #[arg(long, default_value_t = 32)]
    pub ring_mb: u32,
    /// Fraction of the generator maximum for the fixed loads.
    #[arg(long, default_value_t = 0.5)]
    pub load: f64,
    /// Tools to run (kuroko, stenotype, tcpdump, netsniff-ng).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kuroko,stenotype,tcpdump,netsniff-ng"
    )]
    pub tools: Vec<String>,
    /// Generators (tcpreplay, trafgen).
    #[arg(long, value_delimiter = ',', default_value = "tcpreplay,trafgen")]
    pub generators: Vec<String>,
    /// MiB written by each raw disk reference measurement (0 = skip it).
    #[arg(long, default_value_t = 512)]
    pub disk_mb: u64,
    /// Also measure kuroko writing into a wrapped ring (`kuroko-warm`: one store, filled
    /// once by a warm-up, shared by its trials) beside the default `kuroko`, which starts
    /// every trial in a fresh data directory as a new user or a new disk does.
    #[arg(long)]
    pub warm: bool,
    /// Use the debug build of kuroko (faster to build, slower to run).
    #[arg(long)]
    pub debug: bool,
    /// Use this kuroko binary instead of building one.
    #[arg(long, value_name = "PATH")]
    pub kuroko_bin: Option<PathBuf>,
    /// A `kuroko` binary built from another commit (e.g. main before a change): adds the
    /// tool `kuroko-ref`, every trial in a fresh data directory with the same config as
    /// `kuroko`, so both builds are measured in the same run, trial beside trial.
    #[arg(long, value_name = "PATH")]
    pub kuroko_ref: Option<PathBuf>,
}

/// The generator's and the capture's namespaces, suffixed with our pid: a second bench
/// running at the same time gets its own (setting up wipes a namespace of the same name
/// and kills what runs in it).
fn gen_ns() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| format!("kb-gen-{}", std::process::id()))
}

fn cap_ns() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| format!("kb-cap-{}", std::process::id()))
}
/// Trials whose capture core was busier than this with other work are retried once.
pub(crate) const NOISY_OTHER_PCT: f64 = 30.0;
/// Linux USER_HZ (utime/stime units in /proc/PID/stat).
pub(crate) const CLK_TCK: f64 = 100.0;
const STENOTYPE_GRACE: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    /// Every trial in its own fresh data directory (slot files created as the ring grows).
    Kuroko,
    /// Every trial in one shared store that the warm-up wrapped (slots overwritten).
    KurokoWarm,
    /// As `Kuroko`, run by the `--kuroko-ref` binary (another commit's build).
    KurokoRef,
    /// As `Kuroko` with zero-copy capture (`[capture] zero_copy = "on"`: ring blocks
    /// written from the ring's memory, no user-space copy).
    KurokoZc,
    /// As `Kuroko` with two capture threads (`threads_per_interface = 2`, a PACKET_FANOUT
    /// pair writing two lanes of the store) on CPUs 1 and 0, the generator's core shared.
    Kuroko2,
    Stenotype,
    Tcpdump,
    Netsniff,
}

impl Tool {
    fn parse(s: &str) -> anyhow::Result<Tool> {
        Ok(match s {
            "kuroko" => Tool::Kuroko,
            "kuroko-warm" => Tool::KurokoWarm,
            "kuroko-ref" => Tool::KurokoRef,
            "kuroko-2t" => Tool::Kuroko2,
            "kuroko-zc" => Tool::KurokoZc,
            "stenotype" => Tool::Stenotype,
            "tcpdump" => Tool::Tcpdump,
            "netsniff-ng" | "netsniff" => Tool::Netsniff,
            _ => bail!(
                "unknown tool `{s}` (kuroko, kuroko-warm, kuroko-ref, kuroko-2t, kuroko-zc, stenotype, tcpdump, netsniff-ng)"
            ),
        })
    }
    fn name(self) -> &'static str {
        match self {
            Tool::Kuroko => "kuroko",
            Tool::KurokoWarm => "kuroko-warm",
            Tool::KurokoRef => "kuroko-ref",
            Tool::Kuroko2 => "kuroko-2t",
            Tool::KurokoZc => "kuroko-zc",
            Tool::Stenotype => "stenotype",
            Tool::Tcpdump => "tcpdump",
            Tool::Netsniff => "netsniff-ng",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gen {
    Tcpreplay,
    Trafgen,
}

impl Gen {
    fn parse(s: &str) -> anyhow::Result<Gen> {
        Ok(match s {
            "tcpreplay" => Gen::Tcpreplay,
            "trafgen" => Gen::Trafgen,
            _ => bail!("unknown generator `{s}` (tcpreplay, trafgen)"),
        })
    }
    fn name(self) -> &'static str {
        match self {
            Gen::Tcpreplay => "tcpreplay",
            Gen::Trafgen => "trafgen",
        }
    }
}

struct Load {
    label: String,
    generator: Gen,
    pcap: PathBuf,
    /// trafgen's packet config, converted from `pcap`.
    trafgen_cfg: PathBuf,
    /// None = unpaced (as fast as the generator goes).
    pps: Option<u64>,
    packets_in_pcap: u64,
    mean_len: f64,
}

#[derive(Clone, Debug, Default)]
struct Trial {
    offered: u64,
    captured: u64,
    cpu_s: f64,
    bytes_on_disk: u64,
    seconds: f64,
    gen_pps: f64,
    other_pct: f64,
    copied_per_pkt: Option<f64>,
    /// Kuroko's own loss by cause: (kernel ring, backpressure).
    kuroko_causes: Option<(u64, u64)>,
    /// 1-minute load average when the trial started.
    load_avg: f64,
}

/// Share of the offered packets that were not captured, in %.
pub(crate) fn loss_pct(offered: u64, captured: u64) -> f64 {
    if offered == 0 {
        return 0.0;
    }
    offered.saturating_sub(captured) as f64 * 100.0 / offered as f64
}

/// CPU microseconds per captured packet (NaN when nothing was captured).
pub(crate) fn us_per_pkt(cpu_s: f64, captured: u64) -> f64 {
    if captured == 0 {
        return f64::NAN;
    }
    cpu_s * 1e6 / captured as f64
}

impl Trial {
    fn loss_pct(&self) -> f64 {
        loss_pct(self.offered, self.captured)
    }
    fn us_per_pkt(&self) -> f64 {
        us_per_pkt(self.cpu_s, self.captured)
    }
    fn mb_s(&self) -> f64 {
        self.bytes_on_disk as f64 / 1e6 / self.seconds.max(1e-9)
    }
    fn bytes_per_pkt(&self) -> f64 {
        if self.captured == 0 {
            return f64::NAN;
        }
        self.bytes_on_disk as f64 / self.captured as f64
    }
}

/// The namespaces and the work directory; removed on drop.
struct Bench {
    work: PathBuf,
    kuroko: PathBuf,
    /// `--kuroko-ref`: the binary of the `kuroko-ref` tool.
    kuroko_ref: Option<PathBuf>,
    ring_mb: u32,
    seconds: f64,
}

impl Bench {
    /// The binary that runs `tool` (and reads its data directory back).
    fn kuroko_for(&self, tool: Tool) -> &Path {
        match (tool, &self.kuroko_ref) {
            (Tool::KurokoRef, Some(r)) => r,
            _ => &self.kuroko,
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for ns in [gen_ns(), cap_ns()] {
            kill_ns_pids(ns);
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turns SIGINT/SIGTERM/SIGHUP into a flag, so the bench unwinds through its clean-up
/// instead of dying with its namespaces and generator still there.
fn catch_stop_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_stop_signal as *const () as libc::sighandler_t);
        }
    }
}

fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted: cleaning up the bench namespaces and work directory");
    }
    Ok(())
}

fn load_avg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Kills whatever runs in namespace `ns` (the bench's own namespaces only).
pub(crate) fn kill_ns_pids(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).output();
        }
    }
}

pub(crate) fn sh(argv: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {argv:?}"))?;
    if !out.status.success() {
        bail!(
            "{argv:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn in_ns(ns: &str, argv: &[&str]) -> anyhow::Result<String> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(argv);
    sh(&v)
}

fn rx_packets() -> anyhow::Result<u64> {
    Ok(in_ns(
        cap_ns(),
        &["cat", "/sys/class/net/vcap/statistics/rx_packets"],
    )?
    .trim()
    .parse()?)
}

/// utime + stime of a process (all threads), seconds.
pub(crate) fn proc_cpu(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is index 0, utime 11, stime 12.
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / CLK_TCK)
}

/// Busy and total jiffies of CPU 1 (from /proc/stat).
pub(crate) fn cpu1_jiffies() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    for l in s.lines() {
        if let Some(rest) = l.strip_prefix("cpu1 ") {
            let v: Vec<f64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if v.len() >= 5 {
                let idle = v[3] + v[4];
                let total: f64 = v.iter().take(8).sum();
                return (total - idle, total);
            }
        }
    }
    (0.0, 0.0)
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                n += dir_bytes(&e.path());
            } else {
                n += m.len();
            }
        }
    }
    n
}

// ---- pcap synthesis ----

fn pcap_header() -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(0xa1b2c3d4u32.to_le_bytes());
    h.extend(2u16.to_le_bytes());
    h.extend(4u16.to_le_bytes());
    h.extend(0i32.to_le_bytes());
    h.extend(0u32.to_le_bytes());
    h.extend(65535u32.to_le_bytes());
    h.extend(1u32.to_le_bytes());
    h
}

fn pcap_record(out: &mut Vec<u8>, i: u32, frame: &[u8]) {
    out.extend((1_700_000_000 + i / 1_000_000).to_le_bytes());
    out.extend((i % 1_000_000).to_le_bytes());
    out.extend((frame.len() as u32).to_le_bytes());
    out.extend((frame.len() as u32).to_le_bytes());
    out.extend_from_slice(frame);
}

/// Ethernet + IPv4 + TCP (proto 6) or UDP (17) frame of exactly `len` bytes.
fn ip_frame(
    len: usize,
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seed: u32,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    f.extend([
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        0,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ]);
    f.extend(src);
    f.extend(dst);
    f.extend(sport.to_be_bytes());
    f.extend(dport.to_be_bytes());
    if proto == 6 {
        f.extend(seed.to_be_bytes());
        f.extend([0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend((ip_len - 20).to_be_bytes());
        f.extend([0, 0]);
    }
    let mut x = seed;
    while f.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        f.push((x >> 16) as u8);
    }
    f.truncate(len);
    f
}

pub(crate) fn write_fixed_pcap(path: &Path, len: usize, n: u32) -> anyhow::Result<()> {
    let mut out = pcap_header();
    for i in 0..n {
        let flow = i % 256;
        let f = ip_frame(
            len,
            17,
            [10, 1, (flow >> 8) as u8, flow as u8],
            [10, 2, 0, 1],
            10_000 + flow as u16,
            5000,
            i,
        );
        pcap_record(&mut out, i, &f);
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// A mixed TCP/UDP pcap: bulk TCP at MSS with ACKs, interactive TCP, DNS, RTP-like and
/// QUIC-like UDP. Returns the mean frame length.
fn write_mixed_pcap(path: &Path, n: u32) -> anyhow::Result<f64> {
    let mut out = pcap_header();
    let mut x: u32 = 0x2545_f491;
    let mut total = 0u64;
    for i in 0..n {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let r = (x >> 8) % 100;
        let flow = (x >> 20) % 32;
        let cli = [192, 168, 1, 10 + flow as u8];
        let srv = [203, 0, 113, 5 + (flow % 8) as u8];
        let f = match r {
            0..=51 => ip_frame(1514, 6, srv, cli, 443, 40_000 + flow as u16, i),
            52..=76 => ip_frame(66, 6, cli, srv, 40_000 + flow as u16, 443, i),
            77..=81 => ip_frame(
                90 + (x % 70) as usize,
                17,
                cli,
                [192, 168, 1, 1],
                30_000 + flow as u16,
                53,
                i,
            ),
            82..=89 => ip_frame(214, 17, cli, srv, 16_384 + flow as u16, 16_384, i),
            90..=96 => ip_frame(1292, 17, cli, srv, 50_000 + flow as u16, 443, i),
            _ => ip_frame(
                100 + (x % 300) as usize,
                6,
                cli,
                srv,
                41_000 + flow as u16,
                22,
                i,
            ),
        };
        total += f.len() as u64;
        pcap_record(&mut out, i, &f);
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(total as f64 / f64::from(n))
}

// ---- generator ----

/// Runs the load's generator on CPU 0 in the generator namespace; returns its measured pps.
fn generate(load: &Load, seconds: f64, pps_hint: f64) -> anyhow::Result<f64> {
    check_interrupted()?;
    let rate = load.pps.map_or(pps_hint, |p| p as f64);
    match load.generator {
        Gen::Tcpreplay => {
            let loops = ((rate * seconds) / load.packets_in_pcap as f64)
                .ceil()
                .max(1.0) as u64;
            tcpreplay(gen_ns(), &load.pcap, load.pps, loops)
        }
        Gen::Trafgen => {
            let n = ((rate * seconds).ceil() as u64).max(1);
            let cfg = load.trafgen_cfg.to_string_lossy().into_owned();
            // On CPU 0, on the generator namespace's end of the wire.
            let tg = super::trafgen::argv("vgen", &cfg, 0, load.pps, Some(n));
            let t0 = Instant::now();
            let out = Command::new("ip")
                .args(["netns", "exec", gen_ns()])
                .args(&tg)
                .stdin(Stdio::null())
                .output()
                .context("cannot run trafgen")?;
            let secs = t0.elapsed().as_secs_f64();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let sent = super::trafgen::packets_sent(&text)
                .with_context(|| format!("trafgen failed ({}):\n{text}", out.status))?;
            Ok(sent as f64 / secs.max(1e-9))
        }
    }
}

/// Replays `pcap` `loops` times from CPU 0 in the namespace `ns` (on its `vgen` end of the
/// wire), at `pps` or at top speed (tcpreplay -K preloads it); returns the rate tcpreplay
/// measured.
pub(crate) fn tcpreplay(
    ns: &str,
    pcap: &Path,
    pps: Option<u64>,
    loops: u64,
) -> anyhow::Result<f64> {
    let loops_s = loops.to_string();
    let pps_s = pps.map(|p| format!("--pps={p}"));
    let pcap = pcap.to_string_lossy().into_owned();
    let mut argv = vec![
        "taskset",
        "-c",
        "0",
        "tcpreplay",
        "-K",
        "-q",
        "-i",
        "vgen",
        "--loop",
        &loops_s,
    ];
    match &pps_s {
        Some(p) => argv.push(p),
        None => argv.push("--topspeed"),
    }
    argv.push(&pcap);
    let out = in_ns(ns, &argv)?;
    parse_tcpreplay_pps(&out).with_context(|| format!("cannot read tcpreplay's rate from:\n{out}"))
}

pub(crate) fn parse_tcpreplay_pps(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.trim_start().starts_with("Rated:"))?;
    let pps = line.split(',').find(|p| p.trim().ends_with("pps"))?;
    pps.trim().trim_end_matches("pps").trim().parse().ok()
}

// ---- tools ----

struct Running {
    child: Child,
    out_dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

fn spawn_tool(b: &Bench, tool: Tool, trial_dir: &Path) -> anyhow::Result<Running> {
    std::fs::create_dir_all(trial_dir)?;
    let ring_bytes = u64::from(b.ring_mb) << 20;
    let out_dir = trial_dir.join("out");
    std::fs::create_dir_all(&out_dir)?;
    let mut argv: Vec<String> = vec!["ip".into(), "netns".into(), "exec".into(), cap_ns().into()];
    let cpus = if tool == Tool::Kuroko2 { "0,1" } else { "1" };
    argv.extend(["taskset", "-c", cpus].map(String::from));
    match tool {
        Tool::Kuroko | Tool::KurokoWarm | Tool::KurokoRef | Tool::Kuroko2 | Tool::KurokoZc => {
            let cfg = b.work.join(match tool {
                Tool::Kuroko2 => "kuroko-2t.toml",
                Tool::KurokoZc => "kuroko-zc.toml",
                _ => "kuroko.toml",
            });
            argv.extend([
                b.kuroko_for(tool).to_string_lossy().into_owned(),
                "capture".into(),
                "--iface".into(),
                "vcap".into(),
                "--data".into(),
                kuroko_data(b, tool, trial_dir)
                    .to_string_lossy()
                    .into_owned(),
                "--config".into(),
                cfg.to_string_lossy().into_owned(),
                "--json".into(),
            ]);
        }
        Tool::Tcpdump => {
            argv.extend([
                "tcpdump".into(),
                "-i".into(),
                "vcap".into(),
                "-n".into(),
                "-B".into(),
                (ring_bytes / 1024).to_string(),
                "-w".into(),
                out_dir.join("t.pcap").to_string_lossy().into_owned(),
            ]);
        }
        Tool::Netsniff => {
            argv.extend([
                "netsniff-ng".into(),
                "--in".into(),
                "vcap".into(),
                "--out".into(),
                out_dir.join("n.pcap").to_string_lossy().into_owned(),
                "--silent".into(),
                "--ring-size".into(),
                format!("{}MiB", b.ring_mb),
            ]);
        }
        Tool::Stenotype => {
            for d in ["PKT0", "IDX0"] {
                std::fs::create_dir_all(out_dir.join(d))?;
            }
            sh(&["chmod", "-R", "0777", &out_dir.to_string_lossy()])?;
            sh(&["chmod", "0755", &trial_dir.to_string_lossy()])?;
            argv.extend([
                "stenotype".into(),
                format!("--dir={}", out_dir.display()),
                "--iface=vcap".into(),
                "--seccomp=none".into(),
                "--threads=1".into(),
                format!("--blocks={}", b.ring_mb),
                format!("--aiops={}", (b.ring_mb / 2).max(1)),
                "--no_watchdogs".into(),
                "--uid=nobody".into(),
                "--gid=nogroup".into(),
            ]);
        }
    }
    let stdout = trial_dir.join("stdout");
    let stderr = trial_dir.join("stderr");
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout)?)
        .stderr(std::fs::File::create(&stderr)?)
        .spawn()
        .with_context(|| format!("cannot start {}", tool.name()))?;
    Ok(Running {
        child,
        out_dir,
        stdout,
        stderr,
    })
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).output();
}

/// Stops the tool: SIGINT, and SIGKILL after a grace period (stenotype never exits by
/// itself). Returns whether it exited on its own.
fn stop_tool(r: &mut Running, tool: Tool) -> bool {
    signal(r.child.id(), "-INT");
    let grace = if tool == Tool::Stenotype {
        STENOTYPE_GRACE
    } else {
        Duration::from_secs(15)
    };
    let t0 = Instant::now();
    while t0.elapsed() < grace {
        if let Ok(Some(_)) = r.child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = r.child.kill();
    let _ = r.child.wait();
    false
}

fn count_pcap_records(path: &Path) -> u64 {
    let Ok(b) = std::fs::read(path) else { return 0 };
    let mut at = 24;
    let mut n = 0;
    let le = b.get(..4) == Some(&[0xd4, 0xc3, 0xb2, 0xa1][..])
        || b.get(..4) == Some(&[0x4d, 0x3c, 0xb2, 0xa1][..]);
    while at + 16 <= b.len() {
        let w = [b[at + 8], b[at + 9], b[at + 10], b[at + 11]];
        let caplen = if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        } as usize;
        if at + 16 + caplen > b.len() {
            break;
        }
        at += 16 + caplen;
        n += 1;
    }
    n
}

/// Packets in stenotype's files: the `num_pkts` of every 1 MiB TPACKET_V3 block.
fn count_stenotype_packets(pkt_dir: &Path) -> u64 {
    let mut n = 0u64;
    let Ok(rd) = std::fs::read_dir(pkt_dir) else {
        return 0;
    };
    for e in rd.flatten() {
        let Ok(b) = std::fs::read(e.path()) else {
            continue;
        };
        for block in b.chunks(1 << 20) {
            if block.len() >= 16 {
                n += u64::from(u32::from_ne_bytes([
                    block[12], block[13], block[14], block[15],
                ]));
            }
        }
    }
    n
}

/// Kuroko's data directory for a trial: a fresh one inside the trial's directory (removed
/// with it), or the shared wrapped store.
fn kuroko_data(b: &Bench, tool: Tool, trial_dir: &Path) -> PathBuf {
    match tool {
        Tool::KurokoWarm => b.work.join("kuroko-data"),
        _ => trial_dir.join("kuroko-data"),
    }
}

fn kuroko_status_written(b: &Bench, tool: Tool, data: &Path) -> u64 {
    if !data.exists() {
        return 0;
    }
    let out = Command::new(b.kuroko_for(tool))
        .args([
            "status",
            "--data",
            &data.to_string_lossy(),
            "--format",
            "json",
        ])
        .output();
    let Ok(out) = out else { return 0 };
    let text = String::from_utf8_lossy(&out.stdout);
    // `"bytes_written": N` in the store section.
    text.split("\"bytes_written\":")
        .nth(1)
        .and_then(|r| r.trim_start().split([',', '\n', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn json_u64(text: &str, key: &str) -> Option<u64> {
    text.split(&format!("\"{key}\":"))
        .nth(1)?
        .trim_start()
        .split([',', '}'])
        .next()?
        .trim()
        .parse()
        .ok()
}

fn run_trial(
    b: &Bench,
    tool: Tool,
    load: &Load,
    pps_max: f64,
    idx: usize,
) -> anyhow::Result<Trial> {
    let trial_dir = b.work.join(format!("trial-{idx}-{}", tool.name()));
    let is_kuroko = matches!(
        tool,
        Tool::Kuroko | Tool::KurokoWarm | Tool::KurokoRef | Tool::Kuroko2 | Tool::KurokoZc
    );
    let data = kuroko_data(b, tool, &trial_dir);
    let written_before = if is_kuroko {
        kuroko_status_written(b, tool, &data)
    } else {
        0
    };
    check_interrupted()?;
    let load_avg = load_avg_1m();
    let mut r = spawn_tool(b, tool, &trial_dir)?;
    let pid = r.child.id();
    // Let the tool open its socket and map its ring.
    std::thread::sleep(Duration::from_millis(1500));
    if let Ok(Some(st)) = r.child.try_wait() {
        bail!(
            "{} exited before the load ({st}): {}",
            tool.name(),
            std::fs::read_to_string(&r.stderr).unwrap_or_default()
        );
    }
    let rx0 = rx_packets()?;
    let cpu0 = proc_cpu(pid).unwrap_or(0.0);
    let (busy0, tot0) = cpu1_jiffies();
    let t0 = Instant::now();
    let gen_pps = generate(load, b.seconds, pps_max)?;
    let seconds = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let cpu1 = proc_cpu(pid).unwrap_or(cpu0);
    let (busy1, tot1) = cpu1_jiffies();
    let rx1 = rx_packets()?;
    let exited = stop_tool(&mut r, tool);
    let cpu_s = cpu1 - cpu0;
    let core_busy_pct = if tot1 > tot0 {
        (busy1 - busy0) * 100.0 / (tot1 - tot0)
    } else {
        0.0
    };
    let window = seconds + 0.5;
    let other_pct = (core_busy_pct - cpu_s * 100.0 / window).max(0.0);
    let stdout = std::fs::read_to_string(&r.stdout).unwrap_or_default();
    let stderr = std::fs::read_to_string(&r.stderr).unwrap_or_default();
    let mut causes = None;
    let (captured, bytes_on_disk, copied) = match tool {
        Tool::Kuroko | Tool::KurokoWarm | Tool::KurokoRef | Tool::Kuroko2 | Tool::KurokoZc => {
            if !exited {
                bail!("kuroko capture did not exit on SIGINT: {stderr}");
            }
            let packets = json_u64(&stdout, "packets").unwrap_or(0);
            let written = kuroko_status_written(b, tool, &data).saturating_sub(written_before);
            // Bytes copied ring → store buffer: the interface's stored_bytes less those
            // written from the ring itself (zero-copy).
            let zc = json_u64(&stdout, "zero_copy_bytes").unwrap_or(0);
            let copied = json_u64(&stdout, "stored_bytes")
                .map(|s| s.saturating_sub(zc) as f64 / packets.max(1) as f64);
            causes = Some((
                json_u64(&stdout, "kernel_ring").unwrap_or(0),
                json_u64(&stdout, "backpressure").unwrap_or(0),
            ));
            (packets, written, copied)
        }
        Tool::Tcpdump => {
            let n = stderr
                .lines()
                .find(|l| l.contains("packets captured"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| count_pcap_records(&r.out_dir.join("t.pcap")));
            (n, dir_bytes(&r.out_dir), None)
        }
        Tool::Netsniff => (
            count_pcap_records(&r.out_dir.join("n.pcap")),
            dir_bytes(&r.out_dir),
            None,
        ),
        Tool::Stenotype => (
            count_stenotype_packets(&r.out_dir.join("PKT0")),
            dir_bytes(&r.out_dir.join("PKT0")),
            None,
        ),
    };
    let _ = std::fs::remove_dir_all(&trial_dir);
    check_interrupted()?;
    Ok(Trial {
        offered: rx1 - rx0,
        captured,
        cpu_s,
        bytes_on_disk,
        seconds,
        gen_pps,
        other_pct,
        copied_per_pkt: copied,
        kuroko_causes: causes,
        load_avg,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n.is_multiple_of(2) {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    } else {
        v[n / 2]
    }
}

/// The raw disk reference: MB/s of O_DIRECT 1 MiB writes, queue depth 8, overwriting a
/// written, preallocated file in `dir` (the state of kuroko's segments after the warm-up).
fn raw_disk_mb_s(dir: &Path, mb: u64) -> anyhow::Result<f64> {
    let path = dir.join("raw-disk-reference");
    if !path.exists() {
        kuroko_ring::disk::prepare_raw_file(&path, mb << 20)
            .with_context(|| format!("cannot prepare {}", path.display()))?;
    }
    let r = kuroko_ring::disk::raw_write_speed(&path, mb << 20, 1 << 20, 8)
        .with_context(|| format!("raw disk write into {}", dir.display()))?;
    Ok(r.bytes_per_sec() / 1e6)
}

/// Converts a pcap to a trafgen packet config with netsniff-ng.
fn trafgen_cfg(pcap: &Path) -> anyhow::Result<PathBuf> {
    let cfg = pcap.with_extension("cfg");
    sh(&[
        "netsniff-ng",
        "--in",
        &pcap.to_string_lossy(),
        "--out",
        &cfg.to_string_lossy(),
        "--silent",
    ])?;
    Ok(cfg)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !util::is_root() {
        bail!("the capture benchmark creates network namespaces and raw sockets: run it as root");
    }
    let mut tools: Vec<Tool> = args
        .tools
        .iter()
        .map(|t| Tool::parse(t))
        .collect::<Result<_, _>>()?;
    if args.warm && !tools.contains(&Tool::KurokoWarm) {
        let at = tools
            .iter()
            .position(|&t| t == Tool::Kuroko)
            .map_or(0, |i| i + 1);
        tools.insert(at, Tool::KurokoWarm);
    }
    if args.kuroko_ref.is_some() && !tools.contains(&Tool::KurokoRef) {
        let at = tools
            .iter()
            .position(|&t| t == Tool::Kuroko)
            .map_or(0, |i| i + 1);
        tools.insert(at, Tool::KurokoRef);
    }
    if tools.contains(&Tool::KurokoRef) && args.kuroko_ref.is_none() {
        bail!("the tool kuroko-ref needs --kuroko-ref PATH (a kuroko binary of another commit)");
    }
    let gens: Vec<Gen> = args
        .generators
        .iter()
        .map(|g| Gen::parse(g))
        .collect::<Result<_, _>>()?;
    util::require_tools(&[
        "tcpreplay",
        "trafgen",
        "taskset",
        "ip",
        "tcpdump",
        "netsniff-ng",
        "stenotype",
    ])?;
    let kuroko = util::kuroko_binary(args.kuroko_bin.as_deref(), !args.debug)?;
    catch_stop_signals();
    // Work directories of runs that died without cleaning up (SIGKILL).
    if let Ok(rd) = std::fs::read_dir("/var/tmp") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("kuroko-bench-capture-")
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let work = PathBuf::from(format!(
        "/var/tmp/kuroko-bench-capture-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&work)?;
    sh(&["chmod", "0755", &work.to_string_lossy()])?;
    let b = Bench {
        work: work.clone(),
        kuroko,
        kuroko_ref: args.kuroko_ref.clone(),
        ring_mb: args.ring_mb,
        seconds: args.seconds,
    };
    wire(gen_ns(), cap_ns(), &work, args.ring_mb)?;

    let p64 = work.join("p64.pcap");
    let p1500 = work.join("p1500.pcap");
    let pmix = work.join("mixed.pcap");
    write_fixed_pcap(&p64, 64, 1024)?;
    write_fixed_pcap(&p1500, 1500, 1024)?;
    let mix_mean = write_mixed_pcap(&pmix, 6000)?;
    let (c64, c1500, cmix) = if gens.contains(&Gen::Trafgen) {
        (
            trafgen_cfg(&p64)?,
            trafgen_cfg(&p1500)?,
            trafgen_cfg(&pmix)?,
        )
    } else {
        Default::default()
    };

    // Generator maxima, nothing capturing.
    let mut gen_max = Vec::new();
    for &g in &gens {
        let probe = Load {
            label: "probe".into(),
            generator: g,
            pcap: p64.clone(),
            trafgen_cfg: c64.clone(),
            pps: None,
            packets_in_pcap: 1024,
            mean_len: 64.0,
        };
        let pps = generate(&probe, 1.0, 700_000.0)?;
        eprintln!(
            "generator maximum ({}, one core, nothing capturing): {pps:.0} pps",
            g.name()
        );
        gen_max.push((g, pps));
    }
    // The fixed loads are a fraction of the first generator's maximum, the same for all.
    let pps_ref = gen_max[0].1;
    let fixed = (pps_ref * args.load) as u64;
    eprintln!("fixed loads at {fixed} pps");
    let mut loads = Vec::new();
    for (kind, pcap, cfg, n, mean, paced) in [
        ("64 B", &p64, &c64, 1024, 64.0, true),
        ("1500 B", &p1500, &c1500, 1024, 1500.0, true),
        ("mixed", &pmix, &cmix, 6000, mix_mean, true),
        ("1500 B unpaced", &p1500, &c1500, 1024, 1500.0, false),
    ] {
        for &g in &gens {
            let label = match (paced, kind) {
                (false, _) => format!("{kind}, {}", g.name()),
                (true, "mixed") => format!(
                    "mixed ({mix_mean:.0} B) @ {:.0}k, {}",
                    fixed as f64 / 1e3,
                    g.name()
                ),
                (true, _) => format!("{kind} @ {:.0}k, {}", fixed as f64 / 1e3, g.name()),
            };
            loads.push(Load {
                label,
                generator: g,
                pcap: pcap.clone(),
                trafgen_cfg: cfg.clone(),
                pps: paced.then_some(fixed),
                packets_in_pcap: n,
                mean_len: mean,
            });
        }
    }
    let hint = |g: Gen| gen_max.iter().find(|m| m.0 == g).map_or(pps_ref, |m| m.1);

    // Warm-up for `kuroko-warm` (not reported): one pass fills its shared 1 GiB ring so
    // every one of its trials overwrites existing segments. `kuroko` trials each start in a
    // fresh data directory instead.
    if tools.contains(&Tool::KurokoWarm) {
        eprintln!("warm-up: filling kuroko-warm's store once");
        let unpaced = loads
            .iter()
            .find(|l| l.pps.is_none())
            .expect("unpaced load");
        let _ = run_trial(&b, Tool::KurokoWarm, unpaced, hint(unpaced.generator), 0)?;
    }

    let mut results: Vec<(usize, Tool, Trial)> = Vec::new();
    let mut disk: Vec<f64> = Vec::new();
    let mut idx = 1;
    for round in 0..args.repeat {
        if args.disk_mb > 0 {
            check_interrupted()?;
            let mb_s = raw_disk_mb_s(&work, args.disk_mb)?;
            eprintln!(
                "round {}: raw disk O_DIRECT qd8 1 MiB: {mb_s:.0} MB/s (load {:.2})",
                round + 1,
                load_avg_1m()
            );
            disk.push(mb_s);
        }
        for (li, load) in loads.iter().enumerate() {
            for &tool in &tools {
                let mut t = run_trial(&b, tool, load, hint(load.generator), idx)?;
                idx += 1;
                if t.other_pct > NOISY_OTHER_PCT {
                    eprintln!(
                        "  noisy trial ({:.0} % other work on CPU 1), retrying once",
                        t.other_pct
                    );
                    let t2 = run_trial(&b, tool, load, hint(load.generator), idx)?;
                    idx += 1;
                    if t2.other_pct < t.other_pct {
                        t = t2;
                    }
                }
                eprintln!(
                    "{:<34} round {} {:<11} offered {:>8} captured {:>8} loss {:>6.2} % cpu {:>6.3} us/pkt {:>7.1} MB/s {:>7.1} B/pkt oth {:>3.0} % load {:.2}",
                    load.label,
                    round + 1,
                    tool.name(),
                    t.offered,
                    t.captured,
                    t.loss_pct(),
                    t.us_per_pkt(),
                    t.mb_s(),
                    t.bytes_per_pkt(),
                    t.other_pct,
                    t.load_avg
                );
                if let Some((ring, bp)) = t.kuroko_causes
                    && ring + bp > 0
                {
                    eprintln!(
                        "  kuroko's own count: {ring} kernel ring drops, {bp} backpressure drops"
                    );
                }
                results.push((li, tool, t));
            }
        }
    }

    let md = report(&loads, &tools, &results, &gen_max, &disk, &args);
    print!("{md}");
    let out = util::root().join("bench-out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("capture.md"), &md)?;
    eprintln!("written to {}", out.join("capture.md").display());
    drop(b);
    Ok(())
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// `median [min–max]` (just the value for one round).
fn spread(v: &[f64], digits: usize) -> String {
    let m = median(v.to_vec());
    if !m.is_finite() {
        return "–".into();
    }
    let (lo, hi) = min_max(v);
    if v.len() < 2 || lo == hi {
        format!("{m:.digits$}")
    } else {
        format!("{m:.digits$} [{lo:.digits$}–{hi:.digits$}]")
    }
}

fn report(
    loads: &[Load],
    tools: &[Tool],
    results: &[(usize, Tool, Trial)],
    gen_max: &[(Gen, f64)],
    disk: &[f64],
    args: &Args,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Capture benchmark (`cargo xtask bench capture`)\n");
    let maxima: Vec<String> = gen_max
        .iter()
        .map(|(g, p)| format!("{} {p:.0} pps", g.name()))
        .collect();
    let disk_med = median(disk.to_vec());
    let loads_all: Vec<f64> = results.iter().map(|r| r.2.load_avg).collect();
    let (la_lo, la_hi) = min_max(&loads_all);
    let _ = writeln!(
        md,
        "veth between two namespaces, generator pinned to CPU 0, each tool alone on CPU 1, ring {} MiB, {} s per trial, {} interleaved round(s): median [min–max] over rounds. Generator maxima with nothing capturing: {}. Raw disk reference (O_DIRECT, 1 MiB, qd8, same run): {}. 1-minute load average during the run: {:.2}–{:.2} (2 CPUs). CPU = utime+stime of the tool during the load. `oth%` = other work on CPU 1 (noise).\n",
        args.ring_mb,
        args.seconds,
        args.repeat,
        maxima.join(", "),
        if disk.is_empty() {
            "not measured".to_string()
        } else {
            format!("{} MB/s", spread(disk, 0))
        },
        la_lo,
        la_hi,
    );
    let _ = writeln!(
        md,
        "| load | tool | offered pps | gen pps | loss % | µs CPU / pkt | MB/s written | MB/s / raw disk | bytes on disk / pkt | copied B / pkt | oth% | load avg |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut summary = Vec::new();
    for (li, load) in loads.iter().enumerate() {
        let mut per_tool = Vec::new();
        for &tool in tools {
            let ts: Vec<&Trial> = results
                .iter()
                .filter(|(l, t, _)| *l == li && *t == tool)
                .map(|(_, _, t)| t)
                .collect();
            if ts.is_empty() {
                continue;
            }
            let v = |f: &dyn Fn(&Trial) -> f64| ts.iter().map(|t| f(t)).collect::<Vec<f64>>();
            let loss = v(&|t| t.loss_pct());
            let us = v(&|t| t.us_per_pkt());
            let bpp = median(v(&|t| t.bytes_per_pkt()));
            let copied = median(v(&|t| t.copied_per_pkt.unwrap_or(f64::NAN)));
            let mbs = v(&|t| t.mb_s());
            let pps = median(v(&|t| t.offered as f64 / t.seconds.max(1e-9)));
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {:.1} | {} | {:.0} | {:.2} |",
                load.label,
                tool.name(),
                pps,
                median(v(&|t| t.gen_pps)),
                spread(&loss, 3),
                spread(&us, 3),
                spread(&mbs, 1),
                if disk_med.is_finite() {
                    format!("{:.3}", median(mbs.clone()) / disk_med)
                } else {
                    "–".into()
                },
                bpp,
                if copied.is_finite() {
                    format!("{copied:.1}")
                } else {
                    "–".into()
                },
                median(v(&|t| t.other_pct)),
                median(v(&|t| t.load_avg)),
            );
            per_tool.push((tool, median(loss), us, bpp));
        }
        summary.push((load.label.clone(), load.mean_len, per_tool));
    }
    let _ = writeln!(md, "\n## Ratios (ours / peer, same run)\n");
    let _ = writeln!(
        md,
        "CPU ratios: ratio of the medians, and [min–max] of the per-round ratios (each round's trials ran seconds apart). `kuroko`: every trial in a fresh data directory (the ring's first pass, slot files created as it grows); `kuroko-warm` (with `--warm`): a ring the warm-up wrapped (slots overwritten).\n"
    );
    let _ = writeln!(
        md,
        "| load | CPU/pkt vs stenotype | CPU/pkt vs tcpdump | CPU/pkt vs netsniff-ng | bytes/pkt vs pcap (16 B + frame) | loss: ours vs best peer |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | --- |");
    for (label, mean_len, per_tool) in &summary {
        let get = |t: Tool| per_tool.iter().find(|p| p.0 == t);
        for ours_tool in [
            Tool::Kuroko,
            Tool::KurokoWarm,
            Tool::KurokoRef,
            Tool::Kuroko2,
            Tool::KurokoZc,
        ] {
            let Some(ours) = get(ours_tool) else {
                continue;
            };
            let ratio = |t: Tool| {
                let Some(p) = get(t) else {
                    return "–".to_string();
                };
                let per_round: Vec<f64> = ours.2.iter().zip(&p.2).map(|(a, b)| a / b).collect();
                let (lo, hi) = min_max(&per_round);
                let r = median(ours.2.clone()) / median(p.2.clone());
                if per_round.len() > 1 {
                    format!("{r:.2} [{lo:.2}–{hi:.2}]")
                } else {
                    format!("{r:.2}")
                }
            };
            let pcap_bpp = 16.0 + mean_len;
            let best_peer = per_tool
                .iter()
                .filter(|p| {
                    !matches!(
                        p.0,
                        Tool::Kuroko
                            | Tool::KurokoWarm
                            | Tool::KurokoRef
                            | Tool::Kuroko2
                            | Tool::KurokoZc
                    )
                })
                .map(|p| p.1)
                .fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                md,
                "| {} ({}) | {} | {} | {} | {:.2} | {:.3} % vs {:.3} % |",
                label,
                ours_tool.name(),
                ratio(Tool::Stenotype),
                ratio(Tool::Tcpdump),
                ratio(Tool::Netsniff),
                ours.3 / pcap_bpp,
                ours.1,
                best_peer
            );
        }
    }
    let _ = writeln!(
        md,
        "\nTargets: zero loss wherever a peer has zero loss; CPU/pkt ≤ stenotype's and ≤ 1/3 of tcpdump's at 1500 B; bytes on disk per 64 B packet ≤ 1.15 × 80."
    );
    md
}

/// The bench wire: namespaces `gen_ns` and `cap_ns` (recreated, IPv6 off) joined by the
/// veth pair `vgen`/`vcap`, and the capture config `work/kuroko.toml` (ring of `ring_mb`
/// MiB, capture pinned to CPU 1). Shared by the capture and console benchmarks.
pub(crate) fn wire(gen_ns: &str, cap_ns: &str, work: &Path, ring_mb: u32) -> anyhow::Result<()> {
    for ns in [gen_ns, cap_ns] {
        kill_ns_pids(ns);
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        sh(&["ip", "netns", "add", ns])?;
        for k in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            in_ns(ns, &["sysctl", "-qw", k])?;
        }
        in_ns(ns, &["ip", "link", "set", "lo", "up"])?;
    }
    sh(&[
        "ip", "link", "add", "vgen", "netns", gen_ns, "type", "veth", "peer", "name", "vcap",
        "netns", cap_ns,
    ])?;
    in_ns(gen_ns, &["ip", "link", "set", "vgen", "up"])?;
    in_ns(cap_ns, &["ip", "link", "set", "vcap", "up"])?;
    std::fs::write(
        work.join("kuroko.toml"),
        format!(
            "[storage]\nbudget = \"1GiB\"\nsegment_size = \"64MiB\"\n\n[capture]\nring_size = \"{ring_mb}MiB\"\nblock_size = \"1MiB\"\ncores = [1]\n"
        ),
    )?;
    // Zero-copy (tool `kuroko-zc`).
    std::fs::write(
        work.join("kuroko-zc.toml"),
        format!(
            "[storage]\nbudget = \"1GiB\"\nsegment_size = \"64MiB\"\n\n[capture]\nring_size = \"{ring_mb}MiB\"\nblock_size = \"1MiB\"\ncores = [1]\nzero_copy = \"on\"\n"
        ),
    )?;
    // Two capture threads (tool `kuroko-2t`): each has its own ring of `ring_mb`.
    std::fs::write(
        work.join("kuroko-2t.toml"),
        format!(
            "[storage]\nbudget = \"1GiB\"\nsegment_size = \"64MiB\"\n\n[capture]\nring_size = \"{ring_mb}MiB\"\nblock_size = \"1MiB\"\ncores = [1, 0]\nthreads_per_interface = 2\n"
        ),
    )?;
    Ok(())
}
