//! Mutation fuzzing of the whole packet path (decode, defrag, flows, reassembly,
//! identification, parsers): frames of generated mixed traffic (plus tunnels and fragments)
//! are corrupted at random (bit flips, byte overwrites, truncation, splices) and fed to the
//! engine. Nothing may panic, and every packet must be accounted for. Every link type the
//! store takes is in the corpus (Linux cooked v1/v2, raw IP, NULL/LOOP, PPPoE in Ethernet).
//!
//! `KUROKO_FUZZ_ITERS` sets the number of mutated frames (default 150 000; the closing note
//! reports a run with 1 000 000). The frames are spread over three engines, one per
//! `[analyzer] tcp_overlap_policy`.

use kuroko_analyzer::reassembly::OverlapPolicy;
use kuroko_analyzer::synth::{self, Params};
use kuroko_analyzer::{Engine, PacketIn, PacketPos, PacketSource, PcapSource, Settings};
use std::ops::ControlFlow;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The same frame under every other link type the analyzer decodes (it starts with an
/// untagged Ethernet header).
fn relinked(f: &[u8]) -> Vec<(u16, Vec<u8>)> {
    if f.len() < 14 {
        return Vec::new();
    }
    let (mac, ethertype, ip) = (&f[6..12], &f[12..14], &f[14..]);
    let mut sll = vec![0, 0, 0, 1, 0, 6];
    sll.extend_from_slice(mac);
    sll.extend_from_slice(&[0, 0]);
    sll.extend_from_slice(ethertype);
    sll.extend_from_slice(ip);
    let mut sll2 = ethertype.to_vec();
    sll2.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
    sll2.extend_from_slice(mac);
    sll2.extend_from_slice(&[0, 0]);
    sll2.extend_from_slice(ip);
    let v6 = ethertype == [0x86, 0xdd];
    let mut null = if v6 { 24u32 } else { 2 }.to_le_bytes().to_vec();
    null.extend_from_slice(ip);
    let mut lo = if v6 { 24u32 } else { 2 }.to_be_bytes().to_vec();
    lo.extend_from_slice(ip);
    let mut pppoe = f[..12].to_vec();
    pppoe.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1]);
    pppoe.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    pppoe.extend_from_slice(if v6 { &[0, 0x57] } else { &[0, 0x21] });
    pppoe.extend_from_slice(ip);
    vec![
        (113, sll),
        (276, sll2),
        (101, ip.to_vec()),
        (if v6 { 229 } else { 228 }, ip.to_vec()),
        (0, null),
        (108, lo),
        (1, pppoe),
    ]
}

fn corpus() -> Vec<(u16, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pcap");
    let params = Params {
        target_bytes: 3 << 20,
        concurrency: 32,
        seed: 9,
        ..Params::default()
    };
    synth::generate(
        std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
        &params,
    )
    .unwrap();
    let mut frames = Vec::new();
    PcapSource::open(&path)
        .unwrap()
        .visit(PacketPos::default(), &mut |p| {
            frames.push(p.data.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
    let mut frames: Vec<(u16, Vec<u8>)> = frames.into_iter().map(|f| (1, f)).collect();
    // Tunnel and fragment shapes: VXLAN and GRE/ERSPAN around real frames, IPv4 fragments.
    let inner: Vec<Vec<u8>> = frames.iter().take(64).map(|f| f.1.clone()).collect();
    for f in &inner {
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(f);
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2([9; 6], [8; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(5555, 4789)
            .write(&mut out, &vx)
            .unwrap();
        frames.push((1, out));
        frames.extend(relinked(f));
        let mut gre = vec![
            0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0,
        ];
        gre.extend_from_slice(f);
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2([9; 6], [8; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .write(&mut out, etherparse::IpNumber(47), &gre)
            .unwrap();
        frames.push((1, out));
    }
    frames
}

#[test]
fn mutated_frames_never_panic_and_are_all_counted() {
    let iters: u64 = std::env::var("KUROKO_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150_000);
    let frames = corpus();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let policies = [
        OverlapPolicy::Linux,
        OverlapPolicy::First,
        OverlapPolicy::Last,
    ];
    for (n, policy) in policies.into_iter().enumerate() {
        let part = iters / 3 + u64::from((n as u64) < iters % 3);
        fuzz_engine(&frames, &mut rng, policy, part);
    }
}

fn fuzz_engine(frames: &[(u16, Vec<u8>)], rng: &mut Rng, policy: OverlapPolicy, iters: u64) {
    let settings = Settings {
        max_flows: 512,
        stream_buffer: 16 << 10,
        max_object: 1 << 20,
        overlap_policy: policy,
        ..Settings::default()
    };
    let mut engine = Engine::new(settings, None);
    let mut emitted = 0u64;
    let mut ts = 1_763_600_000_000_000_000i64;
    for i in 0..iters {
        let (linktype, base) = &frames[(rng.next() % frames.len() as u64) as usize];
        let mut f = base.clone();
        match rng.next() % 6 {
            0 => {
                for _ in 0..1 + rng.next() % 4 {
                    if !f.is_empty() {
                        let at = (rng.next() % f.len() as u64) as usize;
                        f[at] ^= 1 << (rng.next() % 8);
                    }
                }
            }
            1 if !f.is_empty() => {
                let at = (rng.next() % f.len() as u64) as usize;
                f[at] = rng.next() as u8;
            }
            2 => f.truncate((rng.next() % (f.len() as u64 + 1)) as usize),
            3 => {
                let other = &frames[(rng.next() % frames.len() as u64) as usize].1;
                let cut = (rng.next() % (f.len().min(other.len()) as u64 + 1)) as usize;
                f.truncate(cut);
                f.extend_from_slice(&other[cut.min(other.len())..]);
            }
            4 => {
                // Header fields that steer parsing: IP header length, fragment bits, ports.
                for at in [14usize, 20, 21, 34, 36, 46] {
                    if at < f.len() && rng.next().is_multiple_of(3) {
                        f[at] = rng.next() as u8;
                    }
                }
            }
            _ => {}
        }
        ts += (rng.next() % 5_000_000) as i64;
        let p = PacketIn {
            pos: PacketPos::new(0, 0, i),
            ts_ns: ts,
            iface: 0,
            linktype: *linktype,
            data: &f,
        };
        engine.packet(p, &mut |_| emitted += 1);
    }
    engine.close_all("end_of_input", &mut |_| emitted += 1);
    let c = &engine.counters;
    assert_eq!(c.packets, iters);
    assert_eq!(c.sessions_emitted, emitted);
    assert_eq!(engine.open_flows(), 0);
    assert!(
        c.decode_errors + c.non_ip_frames > 0,
        "corruption must show in the counters: {c:?}"
    );
    assert!(emitted > 0);
}
