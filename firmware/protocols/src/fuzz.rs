//! An in-repo mutation fuzzer for the parsers (stable Rust has no cargo-fuzz).
//!
//! Inputs are transcripts (see [`crate::transcript`]) from `fuzz/corpus/<target>/`:
//! real sessions captured from real clients and servers. Each execution mutates one
//! (bit flips, byte inserts/deletes, interesting bytes and tokens, splices with another
//! corpus entry, direction swaps, truncation), then feeds it to a fresh parser cut into
//! random chunks, with random gaps, and closes the session. A panic is caught with
//! `catch_unwind`, and the input that caused it is saved under `fuzz/crashes/<target>/`.
//!
//! Run: `cargo run --release -p kuroko-protocols --example fuzz -- <target> --iterations N`.

use crate::transcript::{self, Transcript};
use crate::{Direction, VecSink};
use kuroko_model::session::{Endpoint, SessionRecord};
use kuroko_model::time::Timestamp;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Largest mutated transcript (bytes); bigger inputs only slow the search down.
pub const MAX_INPUT: usize = 256 * 1024;

/// Every target name the harness knows.
pub const TARGETS: &[&str] = &[
    "http",
    "winrm",
    "tls",
    "quic",
    "ssh",
    "dns",
    "dns-udp",
    "ftp",
    "ftp-data",
    "smtp",
    "pop3",
    "imap",
    "telnet",
    "oracle",
    "ldap",
    "postgresql",
    "xmpp",
    "smb",
    "dhcp",
    "netbios-ns",
    "mdns",
    "identify",
    "identify-udp",
];

/// Small, fast, deterministic PRNG (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Tokens that steer parsers into their interesting states.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"\r\n.\r\n",
    b"..",
    b"{4294967296}",
    b"{5}\r\n",
    b" BODY[] {10}\r\n",
    b"Content-Length: 99999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Encoding: gzip\r\n",
    b"\r\nffffffffffffffff\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"CONNECT a:1 HTTP/1.1\r\n\r\n",
    b"HTTP/1.1 200 Connection established\r\n\r\n",
    b"STARTTLS\r\n",
    b"220 go ahead\r\n",
    b"a1 OK go\r\n",
    b"+OK go\r\n",
    b"234 go\r\n",
    b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
    b"\x30\x84\xff\xff\xff\xff",
    b"GET / HTTP/1.1\r\n",
    b"227 (1,2,3,4,5,6)\r\n",
    b"229 (|||65535|)\r\n",
    b"PASV\r\nRETR x\r\n",
    b"DATA\r\n",
    b"BDAT 1000000 LAST\r\n",
    b"\xff\xfa\x18",
    b"\xff\xff",
    b"login: ",
    b"(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=",
    b"\xc0\x0c",
    b"\x16\x03\x01\xff\xff",
    b"SSH-2.0-",
    b"=?ISO-2022-JP?B?GyRCJDMbKEI=?=",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n",
];

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'\r', b'\n', b'.', b'{', b'}', b'(', b')', b'0', b'9', b':', b' ',
];

fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, donor: &[u8]) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                let b = rng.next_u64() as u8;
                data.insert(i, b);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                data.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            4 => {
                let i = rng.below(len + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(i..i, t.iter().copied());
            }
            5 if !donor.is_empty() => {
                // Splice: our prefix, the donor's suffix.
                let i = rng.below(len + 1);
                let j = rng.below(donor.len());
                data.truncate(i);
                data.extend_from_slice(&donor[j..]);
            }
            6 if len > 1 => {
                // Duplicate a block (repetition finds many state bugs).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let block = data[i..i + n].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, block);
            }
            7 if len > 0 => data.truncate(rng.below(len)),
            _ if len > 0 => {
                // Overwrite a 2-byte length-like field with a boundary value.
                let i = rng.below(len);
                let v: u16 = [0, 1, 0x7fff, 0xffff, 0x4000, 12][rng.below(6)];
                let b = v.to_be_bytes();
                data[i] = b[0];
                if i + 1 < len {
                    data[i + 1] = b[1];
                }
            }
            _ => {}
        }
    }
    data.truncate(MAX_INPUT);
}

/// A mutated copy of `base` (records), possibly spliced with `donor`.
pub fn mutate(
    rng: &mut Rng,
    base: &[(Direction, Vec<u8>)],
    donor: &[(Direction, Vec<u8>)],
) -> Transcript {
    let mut t = base.to_vec();
    if t.is_empty() {
        t.push((Direction::ToServer, Vec::new()));
    }
    let donor_bytes: &[u8] = donor
        .get(rng.below(donor.len().max(1)))
        .map_or(&[], |d| d.1.as_slice());
    let n = 1 + rng.below(3);
    for _ in 0..n {
        let k = rng.below(t.len());
        match rng.below(12) {
            0 => t[k].0 = t[k].0.flip(),
            1 if t.len() > 1 => {
                t.remove(k);
            }
            2 => {
                let extra = donor.get(rng.below(donor.len().max(1))).cloned();
                if let Some(e) = extra {
                    t.insert(k, e);
                }
            }
            _ => mutate_bytes(rng, &mut t[k].1, donor_bytes),
        }
    }
    t
}

fn record(transport: &str) -> SessionRecord {
    SessionRecord::new(
        "fuzz".into(),
        Timestamp(0),
        transport,
        Endpoint::new("10.0.0.1".parse().expect("literal address"), 40000),
        Endpoint::new("10.0.0.2".parse().expect("literal address"), 80),
    )
}

/// Runs one input through `target`, chunked and gapped by `rng`. Panics propagate.
pub fn execute(target: &str, input: &[(Direction, Vec<u8>)], rng: &mut Rng) {
    let mut sink = VecSink::default();
    match target {
        "identify" => {
            let mut up = Vec::new();
            let mut down = Vec::new();
            for (d, b) in input {
                if *d == Direction::ToServer {
                    up.extend_from_slice(b)
                } else {
                    down.extend_from_slice(b)
                }
                let _ = crate::identify_tcp(
                    rng.below(65536) as u16,
                    rng.below(65536) as u16,
                    &up,
                    &down,
                );
            }
            let _ = crate::identify_tcp_at_close(40000, 23, &up, &down);
        }
        "identify-udp" => {
            for (_, b) in input {
                let _ = crate::identify_udp(
                    rng.below(65536) as u16,
                    [53, 5353, 123, 500, 443, 51820][rng.below(6)],
                    b,
                );
            }
        }
        "dns-udp" | "quic" | "dhcp" | "netbios-ns" | "mdns" => {
            let mut rec = record("udp");
            let proto = if target == "dns-udp" { "dns" } else { target };
            let mut p = crate::datagram_parser(proto).expect("datagram parser");
            for (d, b) in input {
                p.on_datagram(*d, b, 0, &mut rec, &mut sink);
            }
            p.on_close(&mut rec, &mut sink);
        }
        proto => {
            let mut rec = record("tcp");
            rec.protocol = proto.to_string();
            let mut p = crate::stream_parser(proto)
                .unwrap_or_else(|| panic!("no stream parser for {proto}"));
            for (d, b) in input {
                let mut rest = b.as_slice();
                while !rest.is_empty() {
                    let n = if rng.chance(3) {
                        rest.len()
                    } else {
                        1 + rng.below(rest.len().min(512))
                    };
                    p.on_data(*d, &rest[..n], 0, &mut rec, &mut sink);
                    rest = &rest[n..];
                    if rng.chance(64) {
                        p.on_gap(*d, 1 + rng.below(3000) as u64, &mut rec);
                    }
                }
            }
            p.on_close(&mut rec, &mut sink);
        }
    }
}

/// Corpus folders of `target` under `corpus_root` (`identify` learns from every
/// protocol's seeds).
pub fn corpus_dirs(corpus_root: &Path, target: &str) -> Vec<PathBuf> {
    match target {
        "identify" => TARGETS
            .iter()
            .filter(|t| !t.starts_with("identify"))
            .map(|t| corpus_root.join(t))
            .collect(),
        t => vec![corpus_root.join(t)],
    }
}

/// Loads every transcript (`*.bin`) of `dirs`.
pub fn load_corpora(dirs: &[PathBuf]) -> std::io::Result<Vec<Transcript>> {
    let mut out = Vec::new();
    for d in dirs {
        out.extend(load_corpus(d)?.into_iter().map(|x| x.1));
    }
    Ok(out)
}

/// Loads the corpus of `target` (every file in `dir`), as transcripts.
pub fn load_corpus(dir: &Path) -> std::io::Result<Vec<(PathBuf, Transcript)>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.extension().is_some_and(|e| e == "bin") {
            out.push((p.clone(), transcript::decode(&std::fs::read(&p)?)));
        }
    }
    Ok(out)
}

/// Outcome of a fuzzing run.
#[derive(Debug, Default)]
pub struct Report {
    pub executions: u64,
    pub panics: u64,
    pub saved: Vec<PathBuf>,
}

/// Fuzzes `target` for `iterations` executions from `corpus`; crashing inputs are saved
/// in `crash_dir` (when given). Panics inside parsers are counted, never propagated.
pub fn run(
    target: &str,
    corpus: &[Transcript],
    iterations: u64,
    seed: u64,
    crash_dir: Option<&Path>,
) -> Report {
    let mut rng = Rng::new(seed);
    let mut report = Report::default();
    let empty = Vec::new();
    for i in 0..iterations {
        let base = if corpus.is_empty() {
            &empty
        } else {
            &corpus[rng.below(corpus.len())]
        };
        let donor = if corpus.is_empty() {
            &empty
        } else {
            &corpus[rng.below(corpus.len())]
        };
        // One in 16 runs feeds the unmutated entry (with a new chunking).
        let input = if rng.chance(16) {
            base.clone()
        } else {
            mutate(&mut rng, base, donor)
        };
        let mut exec_rng = Rng::new(rng.next_u64());
        let result = catch_unwind(AssertUnwindSafe(|| execute(target, &input, &mut exec_rng)));
        report.executions = i + 1;
        if result.is_err() {
            report.panics += 1;
            if let Some(dir) = crash_dir {
                let _ = std::fs::create_dir_all(dir);
                let path = dir.join(format!("crash-{seed}-{i}.bin"));
                if std::fs::write(&path, transcript::encode(&input)).is_ok() {
                    report.saved.push(path);
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short fuzzing run of every target over the kept corpus, as part of the normal
    /// test suite (the long runs are `--example fuzz`).
    #[test]
    fn every_target_survives_a_short_run() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut failures = Vec::new();
        for t in TARGETS {
            let corpus = load_corpora(&corpus_dirs(&root, t)).expect("readable corpus");
            assert!(!corpus.is_empty(), "no seed corpus for {t}");
            let r = run(t, &corpus, 300, 0x5eed, None);
            if r.panics > 0 {
                failures.push((t, r.panics));
            }
        }
        std::panic::set_hook(prev);
        assert!(failures.is_empty(), "panics: {failures:?}");
    }

    /// Feeds `t` to a fresh `target` parser, cutting each record where `cuts` says.
    fn run_cut(
        target: &str,
        t: &Transcript,
        cuts: &mut Rng,
        whole: bool,
    ) -> (SessionRecord, VecSink) {
        let mut rec = record("tcp");
        rec.protocol = target.to_string();
        let mut sink = VecSink::default();
        let mut p = crate::stream_parser(target).expect("stream target");
        for (d, b) in t {
            let mut rest = b.as_slice();
            while !rest.is_empty() {
                let n = if whole {
                    rest.len()
                } else {
                    1 + cuts.below(rest.len().min(97))
                };
                p.on_data(*d, &rest[..n], 0, &mut rec, &mut sink);
                rest = &rest[n..];
            }
        }
        p.on_close(&mut rec, &mut sink);
        (rec, sink)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, .. Default::default() })]
        /// For every seed transcript of every stream parser, any cutting of the stream gives
        /// the same record, objects and expectations as whole-message delivery.
        #[test]
        fn results_do_not_depend_on_how_streams_are_cut(seed in 1u64..u64::MAX) {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
            for t in TARGETS.iter().filter(|t| crate::stream_parser(t).is_some()) {
                for entry in load_corpora(&corpus_dirs(&root, t)).expect("readable corpus") {
                    let (r1, s1) = run_cut(t, &entry, &mut Rng::new(seed), true);
                    let (r2, s2) = run_cut(t, &entry, &mut Rng::new(seed), false);
                    proptest::prop_assert_eq!(&r1, &r2, "target {}", t);
                    proptest::prop_assert_eq!(&s1.objects, &s2.objects, "target {}", t);
                    proptest::prop_assert_eq!(&s1.expectations, &s2.expectations, "target {}", t);
                }
            }
        }
    }

    #[test]
    fn mutation_changes_input_and_is_deterministic() {
        let base = vec![(Direction::ToServer, b"GET / HTTP/1.1\r\n\r\n".to_vec())];
        let a = mutate(&mut Rng::new(7), &base, &base);
        let b = mutate(&mut Rng::new(7), &base, &base);
        assert_eq!(a, b);
        let changed = (0..20).any(|s| mutate(&mut Rng::new(s), &base, &base) != base);
        assert!(changed);
    }
}
