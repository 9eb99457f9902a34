//! Decommission (issue 21): the box leaves the site with a week of a customer's traffic.
//! After `kuroko decommission` not one recorded byte may be readable on the disk itself,
//! not only through the file system.
//!
//! The data directory is a small ext4 file system of its own on a loop device (as `/data`
//! is on the appliance), so the test can read the raw disk image afterwards and search it
//! for known plaintext: the synthetic traffic's user agent (in every HTTP request, so in
//! the segments, the session log and the index) and slices of every file kuroko wrote
//! (session log, index, files). The configuration and credential beside it are gone. A copy of the same disk where the data was only deleted (what factory
//! reset and recovery did before) is the same-run reference: there the plaintext is still
//! on the disk, so the search does find it when it is there.

use anyhow::{Context, bail, ensure};
use kuroko_analyzer::synth::{self, Params};
use kuroko_tests::kuroko::binary;
use kuroko_tests::proc::{check, run_in};
use std::path::{Path, PathBuf};

/// In every synthetic HTTP request (`User-Agent: ... Kuroko-Bench`).
const MARKER: &[u8] = b"Kuroko-Bench";
/// A known string in the technician credential.
const CREDENTIAL: &str = "$argon2id$v=19$m=19456,t=2,p=1$DECOMMISSIONTESTSALT$secrethashvalue";
const IMAGE_MIB: u64 = 96;
const CONFIG: &str = "[storage]\nbudget = \"48MiB\"\nsegment_size = \"4MiB\"\n";

/// A loop-mounted ext4 image, unmounted and detached on drop.
struct LoopFs {
    image: PathBuf,
    mnt: PathBuf,
    dev: Option<String>,
}

impl LoopFs {
    fn create(base: &Path) -> anyhow::Result<LoopFs> {
        let image = base.join("disk.img");
        let f = std::fs::File::create(&image)?;
        f.set_len(IMAGE_MIB << 20)?;
        let img = image.to_str().context("path")?;
        // No lazy init: the test reads every block of the image afterwards.
        check(
            "mkfs.ext4",
            run_in(
                "",
                &[
                    "mkfs.ext4",
                    "-q",
                    "-F",
                    "-E",
                    "lazy_itable_init=0,lazy_journal_init=0",
                    img,
                ],
                60,
            )?,
        )?;
        let mut fs = LoopFs {
            image,
            mnt: base.join("mnt"),
            dev: None,
        };
        std::fs::create_dir_all(&fs.mnt)?;
        fs.mount()?;
        Ok(fs)
    }

    fn mount(&mut self) -> anyhow::Result<()> {
        let img = self.image.to_str().context("path")?;
        let out = check(
            "losetup",
            run_in("", &["losetup", "-f", "--show", img], 30)?,
        )?;
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        self.dev = Some(dev.clone());
        check(
            "mount",
            run_in(
                "",
                &[
                    "mount",
                    "-t",
                    "ext4",
                    &dev,
                    self.mnt.to_str().context("path")?,
                ],
                30,
            )?,
        )?;
        Ok(())
    }

    fn unmount(&mut self) -> anyhow::Result<()> {
        if let Some(dev) = self.dev.take() {
            check(
                "umount",
                run_in("", &["umount", self.mnt.to_str().context("path")?], 30)?,
            )?;
            check("losetup -d", run_in("", &["losetup", "-d", &dev], 30)?)?;
        }
        Ok(())
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if let Some(dev) = self.dev.take() {
            let _ = run_in("", &["umount", "-l", self.mnt.to_str().unwrap_or("")], 30);
            let _ = run_in("", &["losetup", "-d", &dev], 30);
        }
    }
}

/// How often `needle` occurs in the file (the raw disk image).
fn count(path: &Path, needle: &[u8]) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path)?;
    let first = needle[0];
    let mut n = 0;
    let mut i = 0;
    while let Some(pos) = bytes[i..].iter().position(|&b| b == first) {
        let at = i + pos;
        if bytes[at..].starts_with(needle) {
            n += 1;
        }
        i = at + 1;
    }
    Ok(n)
}

/// 48 bytes from the middle of every file of at least 512 bytes with varied content: what
/// kuroko wrote, to be searched for on the raw disk.
fn needles(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            needles(&e.path(), out)?;
        } else if t.is_file() {
            let b = std::fs::read(e.path())?;
            if b.len() < 512 {
                continue;
            }
            let mid = b.len() / 2;
            let slice = b[mid..mid + 48].to_vec();
            let mut distinct = slice.clone();
            distinct.sort_unstable();
            distinct.dedup();
            // File names (content hashes, dates) stay in the file system's freed directory
            // blocks and journal after an overwrite: a slice made only of name characters
            // (`files/order.log` lists `<sha256> <ext> <bytes>`) is not searched for; see
            // docs/SECURITY.md (crypto-erase removes those too).
            let name_like = slice
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || b" .-_/\n".contains(&c));
            if distinct.len() >= 16 && !name_like {
                out.push((e.path().display().to_string(), slice));
            }
        }
    }
    Ok(())
}

fn kuroko(args: &[&str]) -> anyhow::Result<String> {
    let bin = binary()?;
    let mut argv = vec![bin.to_str().context("path")?];
    argv.extend_from_slice(args);
    let out = run_in("", &argv, 300)?;
    if !out.status.success() {
        bail!(
            "kuroko {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn after_decommission_no_recorded_byte_is_left_on_the_disk() -> anyhow::Result<()> {
    if !is_root() {
        bail!("this test needs root (loop devices, mount); CI runs as root");
    }
    let base = std::env::temp_dir().join(format!("kt-{}-decommission", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base)?;
    let result = (|| -> anyhow::Result<()> {
        let mut fs = LoopFs::create(&base)?;
        let data = fs.mnt.clone();
        let config_dir = base.join("config");
        std::fs::create_dir_all(&config_dir)?;
        let config = config_dir.join("kuroko.toml");
        std::fs::write(&config, CONFIG)?;
        std::fs::write(config_dir.join("technician.hash"), CREDENTIAL)?;
        let pcap = base.join("traffic.pcap");
        synth::generate(
            std::io::BufWriter::new(std::fs::File::create(&pcap)?),
            &Params {
                target_bytes: 3 << 20,
                concurrency: 16,
                seed: 21,
                ..Params::default()
            },
        )?;
        let (d, c) = (
            data.to_str().context("path")?,
            config.to_str().context("path")?,
        );
        kuroko(&[
            "import",
            "--data",
            d,
            "--config",
            c,
            pcap.to_str().context("path")?,
        ])?;
        kuroko(&["analyze", "--data", d, "--config", c])?;
        let mut known = vec![("user agent".to_string(), MARKER.to_vec())];
        needles(&data, &mut known)?;
        ensure!(known.len() >= 6, "too few files to judge: {known:?}");
        let files_before = known.len();

        // Same-run reference: the disk after a plain delete still shows the plaintext.
        fs.unmount()?;
        let on_disk = count(&fs.image, MARKER)?;
        ensure!(on_disk > 0, "the marker is not on the disk to begin with");
        let deleted = base.join("deleted.img");
        std::fs::copy(&fs.image, &deleted)?;
        {
            let mut copy = LoopFs {
                image: deleted.clone(),
                mnt: base.join("mnt-deleted"),
                dev: None,
            };
            std::fs::create_dir_all(&copy.mnt)?;
            copy.mount()?;
            for e in std::fs::read_dir(&copy.mnt)? {
                let p = e?.path();
                if p.is_dir() {
                    std::fs::remove_dir_all(&p)?;
                } else {
                    std::fs::remove_file(&p)?;
                }
            }
            copy.unmount()?;
        }
        let after_delete = count(&deleted, MARKER)?;
        std::fs::remove_file(&deleted)?;

        // The erasure, with its certificate on a "stick" outside the disk.
        fs.mount()?;
        let stick = base.join("stick");
        std::fs::create_dir_all(&stick)?;
        let out = kuroko(&[
            "decommission",
            "--data",
            d,
            "--config",
            c,
            "--to",
            stick.to_str().context("path")?,
            "--yes",
        ])?;
        ensure!(out.contains("Certificate of erasure"), "{out}");
        let left: Vec<_> = std::fs::read_dir(&data)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| !p.ends_with("lost+found"))
            .collect();
        ensure!(left.is_empty(), "left in the data dir: {left:?}");
        ensure!(!config.exists(), "config not erased");
        ensure!(
            !config_dir.join("technician.hash").exists(),
            "credential not erased"
        );
        fs.unmount()?;

        let mut found = Vec::new();
        for (what, needle) in &known {
            let n = count(&fs.image, needle)?;
            if n > 0 {
                found.push(format!("{what}: {n}×"));
            }
        }
        eprintln!(
            "marker on disk: {on_disk}× after import, {after_delete}× after a plain delete, {}× after decommission ({files_before} needles)",
            count(&fs.image, MARKER)?
        );
        ensure!(
            after_delete > 0,
            "reference: a plain delete should leave the plaintext on the disk"
        );
        ensure!(
            found.is_empty(),
            "still on the disk after decommission: {found:?}"
        );

        // The certificate: what, when, how, and a hash that checks.
        let certs: Vec<PathBuf> = std::fs::read_dir(&stick)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        ensure!(certs.len() == 1, "certificates: {certs:?}");
        let cert: serde_json::Value = serde_json::from_slice(&std::fs::read(&certs[0])?)?;
        for key in [
            "free_space_overwritten",
            "started",
            "finished",
            "method",
            "erased",
            "host",
            "bytes_overwritten",
        ] {
            ensure!(cert.get(key).is_some(), "certificate lacks {key}: {cert}");
        }
        ensure!(
            cert["erased"]["segments"]["files"].as_u64() >= Some(1),
            "{cert}"
        );
        ensure!(
            cert["erased"]["config"]["files"].as_u64() == Some(2),
            "{cert}"
        );
        let sum = check(
            "sha256sum -c",
            std::process::Command::new("sha256sum")
                .arg("-c")
                .arg(format!(
                    "{}.sha256",
                    certs[0].file_name().unwrap().to_string_lossy()
                ))
                .current_dir(&stick)
                .output()?,
        )?;
        ensure!(String::from_utf8_lossy(&sum.stdout).contains("OK"));
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&base);
    result
}

#[test]
fn decommission_refuses_while_the_store_is_written_and_without_a_certificate_place()
-> anyhow::Result<()> {
    let base = std::env::temp_dir().join(format!("kt-{}-decommission-busy", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let data = base.join("data");
    std::fs::create_dir_all(data.join("segments"))?;
    std::fs::write(data.join("segments").join("seg-00000.kseg"), MARKER)?;
    let d = data.to_str().context("path")?;
    // No certificate place: refused before anything is erased.
    let bin = binary()?;
    let out = std::process::Command::new(&bin)
        .args(["decommission", "--data", d, "--yes"])
        .output()?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("--to"));
    // A writer holds the store's lock: refused, naming it.
    let lock = std::fs::File::create(data.join("segments").join(".lock"))?;
    std::fs::write(data.join("segments").join(".lock"), "4242\n")?;
    let held = hold_flock(&lock);
    let stick = base.join("stick");
    let out = std::process::Command::new(&bin)
        .args(["decommission", "--data", d, "--yes", "--to"])
        .arg(&stick)
        .output()?;
    drop(held);
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "erased under a running writer");
    ensure!(err.contains("4242") && err.contains("--stop"), "{err}");
    ensure!(
        std::fs::read(data.join("segments").join("seg-00000.kseg"))? == MARKER,
        "something was erased although it refused"
    );
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Holds an exclusive flock on `f` until the returned guard drops (the file closes).
fn hold_flock(f: &std::fs::File) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let dup = f.try_clone().expect("dup");
    // SAFETY: flock on a valid open descriptor.
    let r = unsafe { libc::flock(dup.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0);
    dup
}
