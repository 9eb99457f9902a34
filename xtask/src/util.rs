//! Small helpers shared by the xtask jobs.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

/// Runs a command in the workspace root, failing with its name when it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("+ {shown}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds the `kuroko` binary (release) and returns its path.
pub fn build_kuroko(release: bool) -> anyhow::Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "--quiet", "-p", "kuroko", "-p", "kuroko-inspect"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    Ok(target_dir()
        .join(if release { "release" } else { "debug" })
        .join("kuroko"))
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the workspace root
/// when relative), else `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root().join(d) })
        .unwrap_or_else(|| root().join("target"))
}

pub fn is_root() -> bool {
    // SAFETY-free check: the effective uid from /proc avoids a libc dependency here.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Runs `f` up to four times, waiting 10, 30 and 60 s between tries (package mirrors and
/// PyPI have bad minutes); returns the last error, naming `what`.
pub fn retry<T>(what: &str, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let delays = [10u64, 30, 60];
    let mut attempt = 0;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if attempt < delays.len() => {
                eprintln!(
                    "{what} failed ({e:#}); retrying in {} s (try {} of {})",
                    delays[attempt],
                    attempt + 2,
                    delays.len() + 1
                );
                std::thread::sleep(std::time::Duration::from_secs(delays[attempt]));
                attempt += 1;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("{what} failed {} times", delays.len() + 1));
            }
        }
    }
}

/// Fails with the fix (`cargo xtask deps`) when one of `tools` is not on PATH.
pub fn require_tools(tools: &[&str]) -> anyhow::Result<()> {
    for bin in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .is_ok_and(|o| o.status.success());
        anyhow::ensure!(found, "`{bin}` is not installed; run `cargo xtask deps`");
    }
    Ok(())
}

/// The kuroko binary a benchmark runs: `explicit` if given, else a fresh build.
pub fn kuroko_binary(explicit: Option<&Path>, release: bool) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(p) => {
            std::fs::canonicalize(p).with_context(|| format!("no kuroko binary at {}", p.display()))
        }
        None => build_kuroko(release),
    }
}
