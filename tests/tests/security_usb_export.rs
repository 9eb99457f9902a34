//! `export` in the setup shell onto a real USB stick (issue 21): the shell mounts the stick
//! itself (nosuid, nodev, noexec), writes the bundle encrypted to the consultant's age key,
//! syncs and unmounts it. Afterwards the stick holds a bundle that decrypts with the
//! consultant's key and with no other, and none of the traffic in clear.
//!
//! The stick is an ext4 image on a loop device. The shell finds sticks as removable disks in
//! `/sys/block` (here a fake tree, `--sys`) and mounts `/dev/NAME`: the test makes
//! `/dev/ktusbPID` a block node of the loop device, named as the fake removable disk.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::{DataDir, binary, workspace_root};
use kuroko_tests::proc::{check, run_in, sh_in};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const STICK_MIB: u64 = 32;
/// A host of the fixture's traffic: in every bundle file about it, never on the stick in clear.
const PLAINTEXT: &[u8] = b"intranet.corp.example";

/// The loop device and the block node named after the fake stick; removed on drop.
struct Stick {
    image: PathBuf,
    loopdev: String,
    node: PathBuf,
}

impl Drop for Stick {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("/run/kuroko-usb").status();
        let _ = std::fs::remove_file(&self.node);
        let _ = Command::new("losetup").args(["-d", &self.loopdev]).status();
    }
}

fn stick(dir: &Path, name: &str) -> anyhow::Result<Stick> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let image = dir.join("stick.img");
    std::fs::File::create(&image)?.set_len(STICK_MIB << 20)?;
    let img = image.to_str().context("path")?;
    sh_in(
        "",
        &["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0", img],
        60,
    )?;
    let out = sh_in("", &["losetup", "-f", "--show", img], 30)?;
    let loopdev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let node = PathBuf::from("/dev").join(name);
    let mut s = Stick {
        image,
        loopdev,
        node: PathBuf::new(),
    };
    let meta = std::fs::metadata(&s.loopdev)?;
    ensure!(
        meta.file_type().is_block_device(),
        "{} is not a block device",
        s.loopdev
    );
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let _ = std::fs::remove_file(&node);
    sh_in(
        "",
        &[
            "mknod",
            node.to_str().context("path")?,
            "b",
            &major.to_string(),
            &minor.to_string(),
        ],
        10,
    )?;
    s.node = node;
    Ok(s)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn export_from_the_setup_shell_mounts_the_stick_and_the_bundle_opens_only_with_the_key()
-> anyhow::Result<()> {
    kuroko_tests::netns::require_root()?;
    let bin = binary()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();

    // The recording, analyzed.
    let data = DataDir::new("usb-export", "")?;
    let config = format!(
        "[storage]\ndata_dir = \"{}\"\nbudget = \"16MiB\"\nsegment_size = \"2MiB\"\n",
        data.dir.display()
    );
    std::fs::write(&data.config, &config)?;
    data.import(&workspace_root().join("firmware/index/tests/fixtures/scenarios.pcap"))?;
    data.analyze()?;

    // The consultant's key, and someone else's.
    let key = dir.join("consultant.key");
    let other = dir.join("other.key");
    for k in [&key, &other] {
        sh_in("", &["age-keygen", "-o", k.to_str().context("path")?], 10)?;
    }
    let recipient = String::from_utf8(
        sh_in("", &["age-keygen", "-y", key.to_str().context("path")?], 10)?.stdout,
    )?
    .trim()
    .to_string();

    // The stick, as a removable disk of the fake /sys.
    let name = format!("ktusb{}", std::process::id());
    let stick = stick(dir, &name)?;
    let sys = dir.join("sys");
    let f = kuroko_board::discover::fake::FakeSys::new(&sys)?;
    f.nic("eth0", Some("virtio_net"), "52:54:00:00:00:01", true)?;
    f.cpus("0-1")?;
    f.disk(&name, STICK_MIB << 11, true)?;

    // Provisioned unit; the technician claims it, sets the recipient, exports.
    let label = dir.join("label.txt");
    let cfg = data.config.to_str().context("path")?;
    sh_in(
        "",
        &[
            bin.to_str().context("path")?,
            "setup",
            "--config",
            cfg,
            "--provision-token",
            label.to_str().context("path")?,
        ],
        30,
    )?;
    let token = std::fs::read_to_string(&label)?
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut child = Command::new(&bin)
        .args(["setup", "--config", cfg, "--sys"])
        .arg(&sys)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(
        format!("{token}\ngoodpassword\ngoodpassword\nset recipient {recipient}\nexport\nexit\n")
            .as_bytes(),
    )?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains("can be removed"),
        "the shell did not export and unmount: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    ensure!(
        !mounts.contains("/run/kuroko-usb"),
        "the stick is still mounted: {mounts}"
    );

    // The stick, read back: no plaintext on its raw sectors; the bundle opens with the
    // consultant's key only.
    // Reference: the host is in the recording (so in a bundle written in clear).
    let log = std::fs::read_dir(data.dir.join("sessions"))?
        .filter_map(|e| e.ok().and_then(|e| std::fs::read(e.path()).ok()))
        .any(|b| contains(&b, PLAINTEXT));
    ensure!(
        log,
        "reference: the session log does not hold the known plaintext"
    );
    let raw = std::fs::read(&stick.image)?;
    ensure!(!contains(&raw, PLAINTEXT), "traffic in clear on the stick");
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt)?;
    sh_in(
        "",
        &[
            "mount",
            "-o",
            "ro",
            &stick.loopdev,
            mnt.to_str().context("path")?,
        ],
        30,
    )?;
    // The bundle is a directory named after the site and time, holding `bundle.tar.age`.
    let bundles: Vec<PathBuf> = std::fs::read_dir(&mnt)?
        .filter_map(|e| e.ok().map(|e| e.path().join("bundle.tar.age")))
        .filter(|p| p.is_file())
        .collect();
    let result = (|| -> anyhow::Result<()> {
        ensure!(
            bundles.len() == 1,
            "one .age bundle expected on the stick: {bundles:?}"
        );
        let b = bundles[0].to_str().context("path")?;
        let good = run_in(
            "",
            &["age", "-d", "-i", key.to_str().context("path")?, b],
            60,
        )?;
        let good = check("age -d with the consultant's key", good)?;
        ensure!(good.stdout.len() > 1000, "decrypted bundle too small");
        let bad = run_in(
            "",
            &["age", "-d", "-i", other.to_str().context("path")?, b],
            60,
        )?;
        ensure!(!bad.status.success(), "the bundle opened with another key");
        Ok(())
    })();
    let _ = Command::new("umount").arg(&mnt).status();
    result
}
