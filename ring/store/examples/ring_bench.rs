//! Copy vs zero-copy on the store side, same run: TPACKET_V3 ring blocks of one frame size
//! (laid out as the kernel fills them, `format::testing::ring_block`, 1016 KiB each, a
//! pool of 64) stored either
//!
//! - `copy`: every frame walked and appended as a record (`SegmentWriter::append`: the
//!   copy into the store's buffer and, per block, its crc32c): today's capture path;
//! - `zc`: every block walked for its headers only (what `sys::zc::take` reads) and
//!   handed over whole (`append_ring_block`: crc32c over the ring bytes, an O_DIRECT write
//!   from them, no copy): a plain write (the kernel pins the block's pages per write), or
//!   with the pool registered as a fixed buffer (`register_ring_memory`, as the capture
//!   does with its rings).
//!
//! Both write the same frames to a fresh store on the disk given, `fdatasync` once per pool
//! turn (the zero-copy pool is reused only once its writes completed). Prints, per mode:
//! CPU ns per packet of the storing thread (user + system and each, `RUSAGE_THREAD`: the io_uring
//! submissions included, other load on the machine not), user-space bytes copied per packet
//! (`copy`: the record bytes; `zc`: 0), and bytes on disk per packet.
//!
//! `cargo run --release -p kuroko-ring --example ring_bench -- DIR MIB LEN...`
//! (MIB of frames per mode and size; stores are made in DIR and removed).

use kuroko_ring::format::{self as fmt, testing};
use kuroko_ring::{RecordMeta, RingAppend, RingBlockMeta, SegmentWriter, StoreOptions};
use std::path::Path;

/// The ring block size zero-copy capture uses with 1 MiB chunks (`max_ring_block`).
const BLOCK: usize = 1016 << 10;
const POOL: usize = 64;

fn opts() -> StoreOptions {
    StoreOptions {
        budget: (4u64 << 30) + kuroko_ring::META_RESERVE,
        segment_size: 64 << 20,
        ..Default::default()
    }
}

/// (user, system) CPU ns of the calling thread.
fn thread_cpu_ns() -> (u64, u64) {
    // SAFETY: a zeroed rusage is a valid value for getrusage to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000;
    (t(ru.ru_utime), t(ru.ru_stime))
}

/// 4 KiB aligned ring memory: `POOL` blocks of `BLOCK` bytes.
struct Pool {
    v: Vec<u8>,
    at: usize,
}
impl Pool {
    fn new() -> Pool {
        let v = vec![0u8; POOL * BLOCK + 4096];
        let at = v.as_ptr().align_offset(4096);
        Pool { v, at }
    }
    fn block(&mut self, i: usize) -> &mut [u8] {
        let a = self.at + i * BLOCK;
        &mut self.v[a..a + BLOCK]
    }
}

/// Fills every pool block with frames of `len` bytes (as many as fit); returns the filled
/// length and frame count of each (all equal).
fn fill(pool: &mut Pool, len: usize) -> (usize, u32) {
    let data = vec![0x5au8; len];
    let per = BLOCK / (len + 82 + 16);
    let frames: Vec<testing::Frame<'_>> = (0..per)
        .map(|i| testing::Frame {
            ts_ns: 1_700_000_000_000_000_000 + i as u64,
            data: &data,
            wire_len: len as u32,
            status: 0,
        })
        .collect();
    let mut filled = 0;
    for b in 0..POOL {
        filled = testing::ring_block(pool.block(b), &frames).expect("fits");
    }
    (filled, per as u32)
}

struct Result {
    packets: u64,
    user_ns: u64,
    sys_ns: u64,
    copied: u64,
    disk: u64,
}

/// `zc`: 0 copy, 1 zero-copy with plain writes, 2 zero-copy with the pool registered as
/// a fixed buffer.
fn run(dir: &Path, mib: usize, len: usize, mode: u8) -> Result {
    let zc = mode > 0;
    let _ = std::fs::remove_dir_all(dir);
    let mut w = SegmentWriter::open(dir, &opts()).unwrap();
    if zc {
        w.enable_ring_blocks();
    }
    let mut pool = Pool::new();
    let (filled, per) = fill(&mut pool, len);
    if mode == 2 {
        let region = (pool.v[pool.at..].as_ptr(), POOL * BLOCK);
        // SAFETY: the pool outlives the writer (closed below, before the pool drops).
        assert!(unsafe { w.register_ring_memory(&[region]) });
    }
    let blocks = (mib << 20) / (per as usize * len);
    let c0 = thread_cpu_ns();
    let mut packets = 0u64;
    let mut copied = 0u64;
    for k in 0..blocks {
        let i = k % POOL;
        if i == 0 && k > 0 {
            w.sync().unwrap();
            w.take_ring_done(|_, ok| assert!(ok));
        }
        let b = &pool.v[pool.at + i * BLOCK..pool.at + (i + 1) * BLOCK];
        // The walk both paths make: every frame header (the copy path also its bytes).
        let mut first = u64::MAX;
        let mut last = 0;
        for r in fmt::Records::ring(&b[..filled], 0) {
            let r = r.unwrap();
            let ts = r.header.ts_ns.get();
            first = first.min(ts);
            last = last.max(ts);
            if !zc {
                let meta = RecordMeta {
                    ts_ns: ts,
                    wire_len: r.header.wire_len.get(),
                    iface: 0,
                    flags: 0,
                };
                w.append(&meta, &[r.data]).unwrap();
                copied += r.data.len() as u64 + fmt::RECORD_HEADER_LEN as u64;
            }
        }
        if zc {
            let meta = RingBlockMeta {
                filled: filled as u32,
                packets: per,
                first_ts: first,
                last_ts: last,
                iface: 0,
                token: i as u64,
            };
            // SAFETY: pool block `i` is written again only after the `sync` at the start
            // of the next pool turn, which waits for every write (tokens back).
            let r = unsafe { w.append_ring_block(b, &meta) }.unwrap();
            assert_eq!(r, RingAppend::Queued);
        }
        packets += u64::from(per);
    }
    w.sync().unwrap();
    let c1 = thread_cpu_ns();
    let (user_ns, sys_ns) = (c1.0 - c0.0, c1.1 - c0.1);
    let disk = w.stats().bytes_written;
    w.close().unwrap();
    let _ = std::fs::remove_dir_all(dir);
    Result {
        packets,
        user_ns,
        sys_ns,
        copied,
        disk,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: ring_bench DIR MIB LEN...");
        std::process::exit(2);
    }
    let dir = Path::new(&args[1]).join("ring-bench-store");
    let mib: usize = args[2].parse().unwrap();
    println!(
        "| frame B | mode | packets | CPU ns / pkt | user | system | copied B / pkt | disk B / pkt |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for len in &args[3..] {
        let len: usize = len.parse().unwrap();
        // Interleaved, twice: copy, zc, copy, zc.
        for round in 0..2 {
            for mode in [0u8, 1, 2] {
                let r = run(&dir, mib, len, mode);
                let per = |ns: u64| ns as f64 / r.packets as f64;
                println!(
                    "| {len} | {}{} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                    ["copy", "zc plain write", "zc fixed buffer"][mode as usize],
                    if round == 0 { "" } else { " (again)" },
                    r.packets,
                    per(r.user_ns + r.sys_ns),
                    per(r.user_ns),
                    per(r.sys_ns),
                    r.copied as f64 / r.packets as f64,
                    r.disk as f64 / r.packets as f64,
                );
            }
        }
    }
}
