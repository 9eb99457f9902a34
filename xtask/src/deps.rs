//! Installs the Debian packages listed in `.ci/packages.txt` (the one list CI uses too).

use crate::util::{is_root, root, run};
use anyhow::{Context, bail};
use std::process::Command;

pub fn packages() -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(root().join(".ci/packages.txt"))
        .context("cannot read .ci/packages.txt")?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Packages from the list that dpkg does not report as installed.
pub fn missing() -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    for p in packages()? {
        let ok = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", &p])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
            .unwrap_or(false);
        if !ok {
            missing.push(p);
        }
    }
    Ok(missing)
}

pub fn install() -> anyhow::Result<()> {
    let missing = missing()?;
    if missing.is_empty() {
        eprintln!("all packages of .ci/packages.txt are installed");
        return Ok(());
    }
    if !is_root() {
        bail!(
            "these packages are missing and installing them needs root: {} (run: sudo cargo xtask deps)",
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing))
}
