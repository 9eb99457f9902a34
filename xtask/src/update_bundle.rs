//! `cargo xtask update-bundle`: a signed A/B update bundle from a built image's root.
//!
//! Reads the root image's `/etc/kuroko-release` (with `debugfs`, no mount) for its board and
//! version, compresses the image with zstd and signs the manifest with the update key
//! (default: the development key of `cargo xtask image`). The format and the checks the box
//! makes are `kuroko_setup::update::bundle`; see docs/SECURITY.md for key handling.

use crate::util::root;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// The image directory (`root.img` in it).
    #[arg(long, default_value = "target/image")]
    pub image: PathBuf,
    /// Another root image than IMAGE/root.img (e.g. one edited for a test).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The bundle to write (default: IMAGE/kuroko-update-<version>.kub).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The signing key (PKCS#8 Ed25519; default: the image cache's development key).
    #[arg(long)]
    pub key: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let dir = root().join(&a.image);
    let img = a
        .root
        .map(|r| root().join(r))
        .unwrap_or_else(|| dir.join("root.img"));
    let key = match a.key {
        Some(k) => root().join(k),
        None => crate::image::dev_update_key()?,
    };
    let out = make(&img, a.out.map(|o| root().join(o)), &key, &dir)?;
    println!("{}", out.display());
    Ok(())
}

/// Writes the bundle for `img` signed with `key`; returns its path.
pub fn make(img: &Path, out: Option<PathBuf>, key: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let release = debugfs_cat(img, "/etc/kuroko-release")?;
    let r = kuroko_setup::update::Release::parse(&release);
    if r.version == 0 || r.board.is_empty() {
        bail!(
            "{}: /etc/kuroko-release has no version= and board= (an image from before A/B updates?)",
            img.display()
        );
    }
    let out = out.unwrap_or_else(|| dir.join(format!("kuroko-update-{}.kub", r.version)));
    let key_bytes =
        std::fs::read(key).with_context(|| format!("cannot read the key {}", key.display()))?;
    let m = kuroko_setup::update::bundle::write(
        &out,
        img,
        &r.board,
        r.version,
        &r.build,
        &key_bytes,
        Some(3),
    )
    .map_err(anyhow::Error::msg)?;
    eprintln!(
        "update-bundle: {} version {} board {}: root {:.1} MiB, payload {:.1} MiB (zstd)",
        out.display(),
        m.version,
        m.board,
        m.root_size as f64 / 1048576.0,
        m.payload_size as f64 / 1048576.0
    );
    Ok(out)
}

/// A file of an ext4 image, read with `debugfs` (no mount).
pub fn debugfs_cat(img: &Path, path: &str) -> anyhow::Result<String> {
    let o = Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(img)
        .output()
        .context("cannot run debugfs (apt-get install e2fsprogs)")?;
    if !o.status.success() {
        bail!("debugfs cannot read {path} in {}", img.display());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}
