//! Installs the Debian packages listed in `.ci/packages.txt` (the one list CI uses too) and the
//! PyPI packages of `.ci/pip.txt`, when that file names any, with Debian's pip.

use crate::util::{is_root, retry, root, run};
use anyhow::{Context, bail};
use std::process::{Command, Stdio};

/// The non-empty, non-comment lines of a list file (`None` when the file does not exist).
fn list(name: &str) -> anyhow::Result<Option<Vec<String>>> {
    let path = root().join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {name}")),
    };
    Ok(Some(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect(),
    ))
}

pub fn packages() -> anyhow::Result<Vec<String>> {
    list(".ci/packages.txt")?.context("cannot read .ci/packages.txt: it does not exist")
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
    install_debian()?;
    install_pip()
}

fn install_debian() -> anyhow::Result<()> {
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
    retry("apt-get update", || {
        run(Command::new("apt-get").args(["update", "-qq", "-o", "Acquire::Retries=3"]))
    })?;
    retry("apt-get install", || {
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .args(["install", "-y", "-qq", "-o", "Acquire::Retries=3"])
            .arg("--no-install-recommends")
            .args(&missing))
    })
}

/// `.ci/pip.txt` with Debian's python3 (`python3` on PATH may be pyenv's, which does not see
/// the Debian modules the tests also use). Nothing is fetched when pip finds every
/// requirement already installed.
fn install_pip() -> anyhow::Result<()> {
    let Some(reqs) = list(".ci/pip.txt")? else {
        return Ok(());
    };
    if reqs.is_empty() {
        return Ok(());
    }
    let pip = || {
        let mut c = Command::new("/usr/bin/python3");
        c.args(["-m", "pip", "install", "--break-system-packages"])
            .args(["--disable-pip-version-check", "--root-user-action=ignore"])
            .args(["-q", "-r", ".ci/pip.txt"])
            .current_dir(root())
            .stdin(Stdio::null());
        c
    };
    let satisfied = pip()
        .arg("--no-index")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if satisfied {
        eprintln!("all packages of .ci/pip.txt are installed");
        return Ok(());
    }
    if !is_root() {
        bail!(
            "PyPI packages of .ci/pip.txt are missing ({}) and installing them for /usr/bin/python3 \
             needs root (run: sudo cargo xtask deps)",
            reqs.join(" ")
        );
    }
    if !std::path::Path::new("/usr/bin/python3").exists() {
        bail!("/usr/bin/python3 is missing: apt-get install python3 python3-pip");
    }
    retry("pip install -r .ci/pip.txt", || {
        run(pip().args(["--retries", "5", "--timeout", "30"]))
    })
}
