//! YARA throughput on reconstructed files beside the `yara` CLI, same files and rules, same
//! run: `cargo run --release -p kuroko-yara --example yara_bench -- FILES_DIR RULES.yar`.
//! With `FILES_DIR` a data directory's `files/` this is the reconstructed objects as they
//! are stored. Prints one JSON line: bytes, files, MB/s of ours and of `yara -r`.
//! Needs Debian's `yara` package for the reference (else only ours is printed).

use std::path::{Path, PathBuf};
use std::time::Instant;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_none_or(|e| e != "json") {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(rules)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: yara_bench FILES_DIR RULES.yar");
        std::process::exit(2);
    };
    let rules_path = PathBuf::from(rules);
    let compiled = match kuroko_yara::compile(std::slice::from_ref(&rules_path)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut files = Vec::new();
    walk(Path::new(dir), &mut files);
    files.sort();
    // Read first so both sides scan from the page cache, and ours does not count reads.
    let blobs: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    let bytes: usize = blobs.iter().map(Vec::len).sum();
    let t = Instant::now();
    let mut matched = 0;
    for b in &blobs {
        if !compiled.scan(b, 0).map(|m| m.is_empty()).unwrap_or(true) {
            matched += 1;
        }
    }
    let ours = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let cli = std::process::Command::new("yara")
        .args(["-r", "-f", "-p", "1"])
        .arg(&rules_path)
        .arg(dir)
        .output();
    let theirs = t.elapsed().as_secs_f64();
    let cli_matches = cli
        .as_ref()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count());
    let mb = bytes as f64 / 1e6;
    println!(
        "{{\"files\":{},\"bytes\":{bytes},\"kuroko_matched_files\":{matched},\"kuroko_mb_s\":{:.1},\"yara_cli_matches\":{},\"yara_cli_mb_s\":{}}}",
        blobs.len(),
        mb / ours.max(1e-9),
        cli_matches.map_or("null".into(), |n| n.to_string()),
        cli_matches.map_or("null".into(), |_| format!("{:.1}", mb / theirs.max(1e-9))),
    );
}
