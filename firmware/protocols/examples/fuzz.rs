//! Mutation fuzzing of one parser over its seed corpus (see `kuroko_protocols::fuzz`).
//!
//! `cargo run --release -p kuroko-protocols --example fuzz -- <target> [--iterations N] [--seed S]`
//! Targets: http winrm tls quic ssh dns dns-udp ftp ftp-data smtp pop3 imap telnet oracle
//! ldap postgresql xmpp
//! identify identify-udp. Crashing inputs go to `fuzz/crashes/<target>/`.

use kuroko_protocols::fuzz;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(target) = args.first().cloned() else {
        eprintln!(
            "usage: fuzz <target> [--iterations N] [--seed S]; targets: {}",
            fuzz::TARGETS.join(" ")
        );
        return ExitCode::from(2);
    };
    if !fuzz::TARGETS.contains(&target.as_str()) {
        eprintln!(
            "unknown target {target:?}; targets: {}",
            fuzz::TARGETS.join(" ")
        );
        return ExitCode::from(2);
    }
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let iterations = opt("--iterations").unwrap_or(1_000_000);
    let seed = opt("--seed").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let dirs = fuzz::corpus_dirs(&root.join("corpus"), &target);
    let corpus = match fuzz::load_corpora(&dirs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot read the corpus in {}: {e}", dirs[0].display());
            return ExitCode::from(1);
        }
    };
    if corpus.is_empty() {
        eprintln!(
            "no seed corpus in {}: add transcripts (fuzz/pcap2transcript.py)",
            dirs[0].display()
        );
        return ExitCode::from(1);
    }
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    let start = Instant::now();
    let report = fuzz::run(
        &target,
        &corpus,
        iterations,
        seed,
        Some(&root.join("crashes").join(&target)),
    );
    let secs = start.elapsed().as_secs_f64();
    println!(
        "target={target} seed={seed} corpus={} executions={} panics={} time={secs:.1}s rate={:.0}/s",
        corpus.len(),
        report.executions,
        report.panics,
        report.executions as f64 / secs.max(1e-9)
    );
    for p in &report.saved {
        println!("saved {}", p.display());
    }
    if report.panics > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
