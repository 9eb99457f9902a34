//! `cargo xtask image`: the appliance's disk images from Debian's packages.
//!
//! Steps: the `kuroko` binary in release; a Debian bookworm root made with
//! `debootstrap --variant=minbase` (cached under `target/image-cache/`, keyed by the package
//! list, so a rebuild does not download again); the recipe in `image/rootfs/` laid over it
//! (busybox init, the sysinit script, the supervisor wrappers); then `root.img`, an ext4
//! image made from the directory with `mke2fs -d` (no loop mount) with a fixed UUID, hash
//! seed and time, and every file's time set to `SOURCE_DATE_EPOCH`. The kernel and initrd
//! are copied out for qemu's direct kernel boot; blank sparse `config.img` and `data.img`
//! are made when missing (the appliance formats them on first boot). See `image/README.md`.

use crate::util::{root, run, target_dir};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The Debian release and mirror the root is made from (`KUROKO_DEBIAN_MIRROR` overrides the
/// mirror, e.g. a local mirror or a snapshot.debian.org date; see image/README.md).
const SUITE: &str = "bookworm";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// Debian's security archive: `bookworm-security` is applied over the base
/// (`KUROKO_DEBIAN_SECURITY_MIRROR` overrides it).
const DEFAULT_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";
/// The keyring the mirror's Release file must be signed with (debian-archive-keyring).
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// The versions every build resolved, checked in: a rebuild that resolves others says so.
const LOCK_FILE: &str = "image/packages.lock";
/// Packages on top of minbase: the kernel (its initramfs), busybox (init, watchdog, udhcpc),
/// what capture needs (tcpdump for BPF compile, iproute2), mke2fs/e2fsck for the disks,
/// cryptsetup for the encrypted data disk, and the Japanese font the report's PDF is set in
/// (`export` puts the PDF in the bundle; without the font no bundle could be written on the
/// appliance, which the qemu-test's USB stick found).
const PACKAGES: &str = "linux-image-amd64,busybox-static,tcpdump,iproute2,e2fsprogs,initramfs-tools,cryptsetup-bin,fonts-ipaexfont-gothic";
/// Fixed identities of the root file system, so two builds make the same superblock.
const ROOT_UUID: &str = "6b75726f-6b6f-4000-8000-00000000726f";
const ROOT_HASH_SEED: &str = "6b75726f-6b6f-4000-8000-000068617368";
/// Free room left in the root image over its contents (the root is mounted read-only).
const ROOT_SLACK_BYTES: u64 = 64 << 20;
/// Sizes of the blank disks made when missing.
pub const CONFIG_DISK_BYTES: u64 = 64 << 20;
pub const DATA_DISK_BYTES: u64 = 4 << 30;
/// Paths removed from the root: documentation, caches and logs nothing on the appliance reads.
const PRUNE: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
    "var/log/apt",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/bootstrap.log",
    "etc/machine-id",
    "etc/hostname",
    "etc/resolv.conf",
];
/// Kernel module trees (under `usr/lib/modules/<version>/kernel/`) for hardware an appliance
/// does not have: graphics, sound, cameras, radios, InfiniBand, staging drivers.
const PRUNE_MODULES: &[&str] = &[
    "sound",
    "drivers/gpu",
    "drivers/media",
    "drivers/infiniband",
    "drivers/staging",
    "drivers/net/wireless",
    "drivers/bluetooth",
    "drivers/iio",
    "net/bluetooth",
    "net/wireless",
    "net/mac80211",
];

#[derive(clap::Args)]
pub struct Args {
    /// Where the images go.
    #[arg(long, default_value = "target/image")]
    pub out: PathBuf,
    /// Debootstrap again even when the cached base root matches the package list.
    #[arg(long)]
    pub fresh_base: bool,
    /// Replace config.img and data.img with blank disks (the appliance's state is lost).
    #[arg(long)]
    pub fresh_disks: bool,
    /// Fail when the base's package versions differ from image/packages.lock (default: warn;
    /// also `KUROKO_IMAGE_LOCKED=1`).
    #[arg(long)]
    pub locked: bool,
    /// Write the base's package versions to image/packages.lock.
    #[arg(long, conflicts_with = "locked")]
    pub update_lock: bool,
    /// The update-signing key whose public key the image trusts: a public key file (64 hex
    /// digits, as `update-keys/*.pub`) or a PKCS#8 Ed25519 private key; default:
    /// the development key kept in `target/image-cache/update-dev-key.pk8` (made once, 0600).
    /// The production key is kept offline (docs/SECURITY.md).
    #[arg(long, value_name = "FILE")]
    pub update_key: Option<PathBuf>,
}

impl Args {
    /// The defaults of the command line, building into `out`.
    pub fn at(out: PathBuf) -> Args {
        Args {
            out,
            fresh_base: false,
            fresh_disks: false,
            locked: false,
            update_lock: false,
            update_key: None,
        }
    }
}

/// The security archive the base is upgraded from.
pub fn security_mirror() -> String {
    std::env::var("KUROKO_DEBIAN_SECURITY_MIRROR")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .map(|m| m.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| DEFAULT_SECURITY_MIRROR.to_string())
}

/// The development update-signing key, made once and kept in the image cache (0600).
pub fn dev_update_key() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = target_dir().join("image-cache");
    std::fs::create_dir_all(&dir)?;
    let p = dir.join("update-dev-key.pk8");
    if !p.exists() {
        let key = kuroko_setup::update::bundle::generate_key().map_err(anyhow::Error::msg)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .with_context(|| format!("cannot create {}", p.display()))?;
        std::io::Write::write_all(&mut f, &key)?;
        eprintln!("image: made the development update key {}", p.display());
    }
    Ok(p)
}

/// The mirror debootstrap downloads from.
pub fn mirror() -> String {
    std::env::var("KUROKO_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .map(|m| m.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| DEFAULT_MIRROR.to_string())
}

pub fn run_image(args: Args) -> anyhow::Result<()> {
    if !crate::util::is_root() {
        bail!("`cargo xtask image` needs root (debootstrap, file owners in the root image)");
    }
    for tool in ["debootstrap", "mke2fs", "debugfs", "strip", "wget"] {
        if which(tool).is_none() {
            bail!(
                "`{tool}` is missing: `cargo xtask deps` installs the host tools (.ci/packages.txt)"
            );
        }
    }
    let started = Instant::now();
    let out = root().join(&args.out);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    // 1. The binary, once, in release.
    run(crate::util::cargo().args(["build", "--release", "-p", "kuroko"]))?;
    let kuroko = release_kuroko();

    // 2. The Debian base, cached, upgraded from the security archive (cached too), and its
    //    package versions against the lock file.
    let base = base_root(args.fresh_base)?;
    let base = security_layer(&base, args.fresh_base)?;
    let security = std::fs::read_to_string(base.join(SECURITY_MARK))
        .unwrap_or_default()
        .trim()
        .to_string();
    let lock = check_lock(&base, &out, &args)?;
    let epoch = source_date_epoch()?;
    let key_path = match &args.update_key {
        Some(k) => root().join(k),
        None => dev_update_key()?,
    };
    let key = std::fs::read(&key_path)
        .with_context(|| format!("cannot read the update key {}", key_path.display()))?;
    // A public key (64 hex digits, what `update-keys/*.pub` holds: the production key's
    // public half) or a PKCS#8 private key (the development key).
    let pubkey = match std::str::from_utf8(&key).map(str::trim) {
        Ok(t) if t.len() == 64 && hex_digits(t) => t.to_ascii_lowercase(),
        _ => kuroko_setup::update::bundle::public_key_hex(&key).map_err(anyhow::Error::msg)?,
    };
    let key_name = if args.update_key.is_some() {
        key_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "release".into())
    } else {
        "dev".to_string()
    };
    let release = format!(
        "version={epoch}\nboard=qemu\nbuild=commit {} (SOURCE_DATE_EPOCH {epoch}), {SUITE} + {security}\n",
        commit()
    );

    // 3. The appliance root: base + recipe + binary + profiles.
    let rootfs = out.join("rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)
            .with_context(|| format!("cannot remove the old {}", rootfs.display()))?;
    }
    run(Command::new("cp").arg("-a").arg(&base).arg(&rootfs))?;
    assemble(&rootfs, &kuroko)?;
    std::fs::write(rootfs.join("etc/kuroko-release"), &release)?;
    let keys = rootfs.join("usr/share/kuroko/update-keys");
    std::fs::create_dir_all(&keys)?;
    std::fs::write(keys.join(format!("{key_name}.pub")), format!("{pubkey}\n"))?;
    // The initrd again, with the A/B slot choice (etc/initramfs-tools/scripts/local-top/
    // kuroko-slot from the recipe) and the pruned module tree.
    regenerate_initrd(&rootfs, epoch)?;

    // 4. Kernel and initrd out for direct kernel boot.
    copy_boot_files(&rootfs, &out)?;

    // 5. Reproducible times, then the ext4 image.
    run(Command::new("find")
        .arg(&rootfs)
        .args(["-exec", "touch", "--no-dereference", "--date"])
        .arg(format!("@{epoch}"))
        .args(["{}", "+"]))?;
    let root_img = out.join("root.img");
    make_root_image(&rootfs, &root_img, epoch)?;

    // 6. Blank config and data disks (sparse) when missing; a new config disk is the unit's
    //    provisioning: it gets a new setup token (hashed), its text goes to the label file.
    for (name, size) in [
        ("config.img", CONFIG_DISK_BYTES),
        ("data.img", DATA_DISK_BYTES),
    ] {
        let p = out.join(name);
        if args.fresh_disks || !p.exists() {
            blank_disk(&p, size)?;
            if name == "config.img" {
                provision_config_disk(&kuroko, &p, &out.join(LABEL_FILE), None)?;
            }
        }
    }

    // Root slot B: blank, the size of slot A (the qemu board's vdd; `update` writes it).
    let slot_b = out.join("root-b.img");
    let root_len = std::fs::metadata(&root_img)?.len();
    if args.fresh_disks || std::fs::metadata(&slot_b).map(|m| m.len()).ok() != Some(root_len) {
        blank_disk(&slot_b, root_len)?;
    }

    let elapsed = started.elapsed();
    let mut report = report(&out, epoch, elapsed.as_secs_f64())?;
    report.push_str(&format!("  packages     {lock}\n"));
    report.push_str(&format!("  security     {security}\n"));
    report.push_str(&format!(
        "  version      {epoch} (etc/kuroko-release); update key `{key_name}` {pubkey}\n"
    ));
    std::fs::write(out.join("BUILD-INFO"), &report)
        .with_context(|| format!("cannot write {}", out.join("BUILD-INFO").display()))?;
    print!("{report}");
    Ok(())
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The debootstrapped base root, made once per package list and mirror.
fn base_root(fresh: bool) -> anyhow::Result<PathBuf> {
    let mirror = mirror();
    let cache = target_dir().join("image-cache");
    let base = cache.join("base");
    let marker = base.join(".kuroko-base");
    let want = format!("{SUITE} {mirror} minbase {PACKAGES}\n");
    if !fresh && std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        eprintln!("image: reusing the Debian base in {}", base.display());
        return Ok(base);
    }
    if !Path::new(KEYRING).is_file() {
        bail!("{KEYRING} is missing: apt-get install debian-archive-keyring (cargo xtask deps)");
    }
    probe_mirror(&mirror)?;
    std::fs::create_dir_all(&cache)?;
    // Downloaded .debs stay here across tries and builds (debootstrap checks their sums).
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs)?;
    let tmp = cache.join("base.tmp");
    if base.exists() {
        std::fs::remove_dir_all(&base)
            .with_context(|| format!("cannot remove {}", base.display()))?;
    }
    let started = Instant::now();
    crate::util::retry(&format!("debootstrap from {mirror}"), || {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .with_context(|| format!("cannot remove {}", tmp.display()))?;
        }
        let mut c = Command::new("debootstrap");
        c.args(["--variant=minbase", &format!("--include={PACKAGES}")])
            .arg(format!("--keyring={KEYRING}"))
            .arg(format!("--cache-dir={}", debs.display()))
            .arg(SUITE)
            .arg(&tmp)
            .arg(&mirror)
            .stdin(std::process::Stdio::null());
        if let Ok(epoch) = source_date_epoch() {
            c.env("SOURCE_DATE_EPOCH", epoch.to_string());
        }
        run(&mut c).map_err(|e| {
            let log = std::fs::read_to_string(tmp.join("debootstrap/debootstrap.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            e.context(format!(
                "debootstrap from {mirror} failed; the end of its log:\n{}",
                tail.join("\n")
            ))
        })
    })?;
    eprintln!(
        "image: debootstrap took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(tmp.join(".kuroko-base"), &want)?;
    std::fs::rename(&tmp, &base)?;
    Ok(base)
}

/// In the security layer: what the security archive's InRelease said (its `Date:`).
const SECURITY_MARK: &str = ".kuroko-security";

/// The base upgraded from `bookworm-updates` and `bookworm-security` (apt in the chroot, the
/// Release files checked by apt against the base's debian-archive-keyring), cached in
/// `image-cache/base-security` and keyed by the base and the security mirror. Old kernels
/// an upgrade leaves are purged, then apt's lists and caches removed as for the base.
fn security_layer(base: &Path, fresh: bool) -> anyhow::Result<PathBuf> {
    let mirror = mirror();
    let sec = security_mirror();
    let cache = target_dir().join("image-cache");
    let layer = cache.join("base-security");
    let marker = layer.join(".kuroko-base");
    let base_marker = std::fs::read_to_string(base.join(".kuroko-base")).unwrap_or_default();
    let want = format!("{base_marker}security {sec} {SUITE}-security {SUITE}-updates\n");
    if !fresh && std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        eprintln!(
            "image: reusing the security-upgraded base in {}",
            layer.display()
        );
        return Ok(layer);
    }
    let tmp = cache.join("base-security.tmp");
    for d in [&tmp, &layer] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("cannot remove {}", d.display()))?;
        }
    }
    let started = Instant::now();
    run(Command::new("cp").arg("-a").arg(base).arg(&tmp))?;
    std::fs::write(
        tmp.join("etc/apt/sources.list"),
        format!(
            "deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\ndeb {sec} {SUITE}-security main\n"
        ),
    )?;
    let apt = |args: &[&str]| {
        let mut c = Command::new("chroot");
        c.arg(&tmp)
            .arg("apt-get")
            .args([
                "-q",
                "-o",
                "APT::Sandbox::User=root",
                "-o",
                "Dpkg::Use-Pty=0",
            ])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(std::process::Stdio::null());
        if let Ok(epoch) = source_date_epoch() {
            c.env("SOURCE_DATE_EPOCH", epoch.to_string());
        }
        c
    };
    crate::util::retry(&format!("apt-get update from {sec}"), || {
        let out = apt(&["update"]).output().context("cannot run apt-get in the base")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        // apt exits 0 on some fetch failures; an `Err:`/`W:` line about a Release is one.
        if !out.status.success() || text.lines().any(|l| l.starts_with("Err:") || l.starts_with("E:")) {
            bail!("apt-get update failed:\n{}", text.trim());
        }
        Ok(())
    })
    .with_context(|| format!("the Debian security archive {sec} is unreachable or its Release does not verify (KUROKO_DEBIAN_SECURITY_MIRROR for another)"))?;
    crate::util::retry("apt-get upgrade", || run(&mut apt(&["-y", "upgrade"])))?;
    // An upgraded kernel ABI leaves the old kernel: keep only the one linux-image-amd64 names.
    let dep = Command::new("chroot")
        .arg(&tmp)
        .args(["dpkg-query", "-W", "-f=${Depends}", "linux-image-amd64"])
        .output()?;
    let current = String::from_utf8_lossy(&dep.stdout)
        .split([',', ' '])
        .find(|w| w.starts_with("linux-image-"))
        .unwrap_or_default()
        .to_string();
    let listed = Command::new("chroot")
        .arg(&tmp)
        .args([
            "dpkg-query",
            "-W",
            "-f=${Package} ${db:Status-Abbrev}\n",
            "linux-image-[0-9]*",
        ])
        .output()?;
    let old: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(p, st)| st.starts_with("ii") && !current.is_empty() && *p != current)
        .map(|(p, _)| p.to_string())
        .collect();
    if !old.is_empty() {
        eprintln!(
            "image: purging the kernels the upgrade replaced: {}",
            old.join(" ")
        );
        let mut args = vec!["-y", "purge"];
        args.extend(old.iter().map(String::as_str));
        run(&mut apt(&args))?;
    }
    run(&mut apt(&["clean"]))?;
    // The security snapshot: the Date: of the security archive's InRelease apt checked.
    let mut date = String::from("unknown");
    for e in std::fs::read_dir(tmp.join("var/lib/apt/lists"))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains("security") && name.ends_with("InRelease") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if let Some(d) = text.lines().find_map(|l| l.strip_prefix("Date: ")) {
                date = d.trim().to_string();
            }
        }
    }
    std::fs::write(
        tmp.join(SECURITY_MARK),
        format!("{SUITE}-security as of {date} ({sec})\n"),
    )?;
    eprintln!(
        "image: {SUITE}-security ({date}) applied in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(tmp.join(".kuroko-base"), &want)?;
    std::fs::rename(&tmp, &layer)?;
    Ok(layer)
}

/// Makes `/boot/initrd.img-*` again in the assembled root (the recipe's initramfs script,
/// the pruned modules), with `SOURCE_DATE_EPOCH` for a reproducible cpio.
fn regenerate_initrd(rootfs: &Path, epoch: u64) -> anyhow::Result<()> {
    for e in std::fs::read_dir(rootfs.join("usr/lib/modules"))? {
        let version = e?.file_name().to_string_lossy().into_owned();
        run(Command::new("chroot")
            .arg(rootfs)
            .args(["mkinitramfs", "-o"])
            .arg(format!("/boot/initrd.img-{version}"))
            .arg(&version)
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
        .with_context(|| format!("mkinitramfs {version} in the image root failed"))?;
    }
    Ok(())
}

fn hex_digits(t: &str) -> bool {
    t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit being built (short), for `/etc/kuroko-release`.
fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Checks that the mirror answers before debootstrap starts, so a mirror that is down is
/// named as such (with retries and backoff for a bad minute) rather than as a debootstrap
/// failure deep in its log.
fn probe_mirror(mirror: &str) -> anyhow::Result<()> {
    let url = format!("{mirror}/dists/{SUITE}/InRelease");
    crate::util::retry(&format!("fetching {url}"), || {
        let out = Command::new("wget")
            .args(["-q", "-O", "/dev/null", "--tries=2", "--timeout=20", &url])
            .stdin(std::process::Stdio::null())
            .output()
            .context("cannot run wget (apt-get install wget)")?;
        if !out.status.success() {
            bail!(
                "wget exited with {} (4: network failure, 8: the server answered with an error)",
                out.status
            );
        }
        Ok(())
    })
    .with_context(|| {
        format!(
            "the Debian mirror {mirror} is unreachable: the image build downloads the base \
             system's packages from it (set KUROKO_DEBIAN_MIRROR for another mirror, or \
             `cargo xtask test --no-qemu` to skip the image)"
        )
    })
}

/// The `package version architecture` lines of the base's installed packages, sorted.
fn installed_versions(base: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new("chroot")
        .arg(base)
        .args([
            "dpkg-query",
            "-W",
            "-f=${binary:Package} ${Version} ${Architecture}\\n",
        ])
        .output()
        .context("cannot run dpkg-query in the base root")?;
    if !out.status.success() {
        bail!(
            "dpkg-query in {} failed: {}",
            base.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    Ok(v)
}

/// Compares the base's package versions with `image/packages.lock`, writes them to
/// `OUT/packages.lock`, and returns the line for BUILD-INFO. Debian's mirror keeps only the
/// newest version of each package, so an old build cannot be fetched again from it: the lock
/// file cannot pin, it detects (warning, or failing with `--locked`).
fn check_lock(base: &Path, out: &Path, args: &Args) -> anyhow::Result<String> {
    let got = installed_versions(base)?;
    let header = format!(
        "# Package versions of the appliance's Debian base ({SUITE}, debootstrap --variant=minbase\n\
         # --include={PACKAGES}),\n\
         # upgraded from {SUITE}-updates and {SUITE}-security.\n\
         # Written by `cargo xtask image --update-lock`; every build compares its base with it.\n"
    );
    let text = format!("{header}{}\n", got.join("\n"));
    std::fs::write(out.join("packages.lock"), &text)?;
    let lock_path = root().join(LOCK_FILE);
    let locked = args.locked
        || std::env::var("KUROKO_IMAGE_LOCKED").is_ok_and(|v| !v.is_empty() && v != "0");
    let want = match std::fs::read_to_string(&lock_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !locked => {
            std::fs::write(&lock_path, &text)?;
            eprintln!("image: wrote {LOCK_FILE} ({} packages)", got.len());
            return Ok(format!("{} packages, {LOCK_FILE} written", got.len()));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {LOCK_FILE}")),
    };
    if args.update_lock {
        std::fs::write(&lock_path, &text)?;
        eprintln!("image: updated {LOCK_FILE} ({} packages)", got.len());
        return Ok(format!("{} packages, {LOCK_FILE} updated", got.len()));
    }
    let diff = lock_diff(&want, &got);
    if diff.is_empty() {
        return Ok(format!("{} packages, as in {LOCK_FILE}", got.len()));
    }
    let msg = format!(
        "the Debian base's packages differ from {LOCK_FILE} ({} difference(s); the mirror has \
         moved on, or the cached base is older):\n  {}\n\
         `cargo xtask image --fresh-base --update-lock` takes the mirror's current versions",
        diff.len(),
        diff.join("\n  ")
    );
    if locked {
        bail!("{msg}");
    }
    eprintln!("image: WARNING: {msg}");
    Ok(format!(
        "{} packages, {} DIFFERENCE(S) from {LOCK_FILE} (see OUT/packages.lock)",
        got.len(),
        diff.len()
    ))
}

/// `name: old -> new`, `+name version`, `-name version` lines between a lock file's text and
/// the resolved `name version arch` lines.
fn lock_diff(lock: &str, got: &[String]) -> Vec<String> {
    use std::collections::BTreeMap;
    let parse = |l: &str| {
        let mut w = l.split_whitespace();
        let name = w.next()?.to_string();
        Some((name, w.collect::<Vec<_>>().join(" ")))
    };
    let want: BTreeMap<String, String> = lock
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse)
        .collect();
    let have: BTreeMap<String, String> = got.iter().filter_map(|l| parse(l)).collect();
    let mut d = Vec::new();
    for (name, v) in &want {
        match have.get(name) {
            None => d.push(format!("-{name} {v}")),
            Some(h) if h != v => d.push(format!("{name}: {v} -> {h}")),
            Some(_) => {}
        }
    }
    for (name, v) in &have {
        if !want.contains_key(name) {
            d.push(format!("+{name} {v}"));
        }
    }
    d
}

/// Lays the recipe over the base root.
fn assemble(rootfs: &Path, kuroko: &Path) -> anyhow::Result<()> {
    let recipe = root().join("image");
    let _ = std::fs::remove_file(rootfs.join(".kuroko-base"));
    for p in PRUNE {
        let p = rootfs.join(p);
        if p.is_dir() {
            std::fs::remove_dir_all(&p)
                .with_context(|| format!("cannot remove {}", p.display()))?;
        } else if p.exists() || p.is_symlink() {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    prune_modules(rootfs)?;
    for d in ["var/cache/apt", "var/lib/apt/lists", "config", "data"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    // The recipe files (inittab, rcS, wrappers, hostname).
    run(Command::new("cp")
        .args(["-a", "--no-preserve=ownership"])
        .arg(recipe.join("rootfs").join("."))
        .arg(rootfs.join(".")))?;
    // busybox is init; the root is read-only, so resolv.conf and mtab point to /run and /proc.
    symlink("/bin/busybox", &rootfs.join("usr/sbin/init"))?;
    symlink("/run/resolv.conf", &rootfs.join("etc/resolv.conf"))?;
    symlink("/proc/self/mounts", &rootfs.join("etc/mtab"))?;
    // The unprivileged user `kuroko run` starts capture and the analyzer as (no login, no
    // home, no password): a fixed id so files on the data disk keep their owner.
    for (file, line) in [
        (
            "etc/passwd",
            "kuroko:x:990:990:kuroko analyzer and capture:/nonexistent:/usr/sbin/nologin\n",
        ),
        ("etc/group", "kuroko:x:990:\n"),
        ("etc/shadow", "kuroko:!:1::::::\n"),
    ] {
        let p = rootfs.join(file);
        let mut text =
            std::fs::read_to_string(&p).with_context(|| format!("no {}", p.display()))?;
        if !text.lines().any(|l| l.starts_with("kuroko:")) {
            text.push_str(line);
            std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
        }
    }
    // The config's default data directory is the data disk (setup's status and self-test).
    symlink("/data", &rootfs.join("var/lib/kuroko"))?;
    std::fs::write(
        rootfs.join("etc/fstab"),
        "# Mounted by /etc/init.d/rcS: / read-only, /config (vdb) and /data (vdc) ext4.\n",
    )?;
    // The binary without debug info (the symbols stay: backtraces still name functions).
    let bin = rootfs.join("usr/local/bin/kuroko");
    std::fs::create_dir_all(bin.parent().expect("has a parent"))?;
    run(Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&bin)
        .arg(kuroko))?;
    // The board profiles (also built into the binary; these are for the technician to read).
    let profiles = rootfs.join("usr/share/kuroko/board");
    std::fs::create_dir_all(&profiles)?;
    for e in std::fs::read_dir(root().join("board/profiles"))? {
        let e = e?;
        if e.path().extension().is_some_and(|x| x == "toml") {
            std::fs::copy(e.path(), profiles.join(e.file_name()))?;
        }
    }
    // The sample qemu config, for the technician to start from.
    std::fs::copy(
        recipe.join("kuroko-qemu.toml"),
        rootfs.join("usr/share/kuroko/kuroko-qemu.toml"),
    )?;
    Ok(())
}

/// Removes the module trees in [`PRUNE_MODULES`] and rebuilds `modules.dep` with the root's `depmod`.
fn prune_modules(rootfs: &Path) -> anyhow::Result<()> {
    let modules = rootfs.join("usr/lib/modules");
    for e in std::fs::read_dir(&modules).with_context(|| format!("no {}", modules.display()))? {
        let version = e?.file_name().to_string_lossy().into_owned();
        for p in PRUNE_MODULES {
            let p = modules.join(&version).join("kernel").join(p);
            if p.is_dir() {
                std::fs::remove_dir_all(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        // The root's own depmod (kmod), so the host needs none.
        run(Command::new("chroot")
            .arg(rootfs)
            .args(["/sbin/depmod", &version]))?;
    }
    Ok(())
}

fn symlink(target: &str, link: &Path) -> anyhow::Result<()> {
    if link.exists() || link.is_symlink() {
        std::fs::remove_file(link).with_context(|| format!("cannot replace {}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("cannot link {} -> {target}", link.display()))
}

/// Copies `/boot/vmlinuz-*` and `/boot/initrd.img-*` out as `vmlinuz` and `initrd.img`.
fn copy_boot_files(rootfs: &Path, out: &Path) -> anyhow::Result<()> {
    let boot = rootfs.join("boot");
    let mut found = (None, None);
    for e in std::fs::read_dir(&boot).with_context(|| format!("no {}", boot.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with("vmlinuz-") {
            found.0 = Some(name);
        } else if name.starts_with("initrd.img-") {
            found.1 = Some(name);
        }
    }
    let (Some(k), Some(i)) = found else {
        bail!(
            "no kernel or initrd in {} (did linux-image-amd64 install?)",
            boot.display()
        );
    };
    std::fs::copy(boot.join(&k), out.join("vmlinuz"))?;
    std::fs::copy(boot.join(&i), out.join("initrd.img"))?;
    eprintln!("image: kernel {k}, initrd {i}");
    Ok(())
}

/// `SOURCE_DATE_EPOCH` if set, else the time of the commit being built.
fn source_date_epoch() -> anyhow::Result<u64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"));
    }
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root())
        .output()
        .context("cannot run git for the commit time")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("cannot read the commit time; set SOURCE_DATE_EPOCH")
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let out = Command::new("du")
        .args(["-sb", "--apparent-size"])
        .arg(dir)
        .output()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("cannot measure {}", dir.display()))
}

fn make_root_image(rootfs: &Path, img: &Path, epoch: u64) -> anyhow::Result<()> {
    let content = dir_bytes(rootfs)?;
    // ext4 overhead (inodes, journal, block rounding) over the contents, plus free room.
    let size_mib = (content + content / 4 + ROOT_SLACK_BYTES).div_ceil(1 << 20);
    let _ = std::fs::remove_file(img);
    run(Command::new("mke2fs")
        .args([
            "-q",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-m",
            "0",
            "-L",
            "kuroko-root",
        ])
        .args(["-U", ROOT_UUID])
        .arg("-E")
        .arg(format!("hash_seed={ROOT_HASH_SEED},root_owner=0:0"))
        .arg("-d")
        .arg(rootfs)
        .arg(img)
        .arg(format!("{size_mib}M"))
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .env("SOURCE_DATE_EPOCH", epoch.to_string()))
    .with_context(|| {
        format!(
            "mke2fs could not make {} from {}",
            img.display(),
            rootfs.display()
        )
    })?;
    clamp_ctimes(rootfs, img, epoch)
}

/// `mke2fs -d` copies each file's ctime and atime from the build tree: the ctime is the time
/// of the build (`touch` cannot set it) and reading the files for the copy moves the atime
/// (relatime); debugfs sets both to the epoch in every inode.
fn clamp_ctimes(rootfs: &Path, img: &Path, epoch: u64) -> anyhow::Result<()> {
    let out = Command::new("find")
        .arg(rootfs)
        .args(["-mindepth", "1", "-printf", "/%P\\n"])
        .output()
        .context("cannot list the root tree")?;
    let mut cmds = format!("sif / ctime @{epoch}\nsif / atime @{epoch}\n");
    let mut unquotable = 0usize;
    for path in String::from_utf8_lossy(&out.stdout).lines() {
        if path.contains('"') || path.contains('\\') {
            unquotable += 1;
            continue;
        }
        for field in ["ctime", "atime"] {
            cmds.push_str(&format!("sif \"{path}\" {field} @{epoch}\n"));
        }
    }
    let file = img.with_extension("ctime.debugfs");
    std::fs::write(&file, cmds)?;
    let st = Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&file)
        .arg(img)
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("cannot run debugfs (apt-get install e2fsprogs)")?;
    let _ = std::fs::remove_file(&file);
    if !st.success() {
        bail!("debugfs could not set the ctimes in {}", img.display());
    }
    if unquotable > 0 {
        eprintln!(
            "image: {unquotable} path(s) with quotes or backslashes keep their build-time ctime"
        );
    }
    Ok(())
}

/// The release binary the image holds (built by [`run_image`]; runs on the build host too).
pub fn release_kuroko() -> PathBuf {
    target_dir().join("release").join("kuroko")
}

/// The unit's label beside the image: its setup token (what a technician needs to claim
/// the box at the serial port).
pub const LABEL_FILE: &str = "label.txt";

/// Formats the blank config disk `img` as rcS would (ext4, label `kuroko-config`) with the
/// unit's setup token in it: `kuroko setup --provision-token` stores the token's hash as
/// `setup.token` in a staging directory and writes the token to `label`; `mke2fs -d` puts
/// the directory on the disk (with `config` as `kuroko.toml` when given: `cargo xtask qemu
/// --config`). rcS then finds a file system and mounts it.
pub fn provision_config_disk(
    kuroko: &Path,
    img: &Path,
    label: &Path,
    config: Option<&Path>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let stage = img.with_extension("stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)
        .with_context(|| format!("cannot create {}", stage.display()))?;
    std::fs::set_permissions(&stage, std::fs::Permissions::from_mode(0o755))?;
    run(Command::new(kuroko)
        .arg("setup")
        .arg("--config")
        .arg(stage.join("kuroko.toml"))
        .arg("--provision-token")
        .arg(label))?;
    if let Some(c) = config {
        std::fs::copy(c, stage.join("kuroko.toml"))
            .with_context(|| format!("cannot read {}", c.display()))?;
    }
    let size = std::fs::metadata(img)?.len();
    run(Command::new("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-L",
            "kuroko-config",
            "-m",
            "0",
            "-d",
        ])
        .arg(&stage)
        .arg(img)
        .arg(format!("{}k", size / 1024)))?;
    // mke2fs -d may leave the file shorter than the disk; keep the disk's size.
    std::fs::OpenOptions::new()
        .write(true)
        .open(img)?
        .set_len(size)?;
    std::fs::remove_dir_all(&stage)
        .with_context(|| format!("cannot remove {}", stage.display()))?;
    Ok(())
}

/// A sparse file of `size` bytes, all zeros (the appliance formats it on first boot).
pub fn blank_disk(path: &Path, size: u64) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.set_len(size)
        .with_context(|| format!("cannot size {}", path.display()))?;
    Ok(())
}

fn report(out: &Path, epoch: u64, secs: f64) -> anyhow::Result<String> {
    use std::fmt::Write;
    let mut r = String::new();
    writeln!(
        r,
        "kuroko image, SOURCE_DATE_EPOCH={epoch}, built in {secs:.0} s"
    )?;
    for name in [
        "root.img",
        "vmlinuz",
        "initrd.img",
        "config.img",
        "data.img",
        "root-b.img",
    ] {
        let p = out.join(name);
        let meta = std::fs::metadata(&p).with_context(|| format!("no {}", p.display()))?;
        let used = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
        let sum = if name == "config.img" || name == "data.img" || name == "root-b.img" {
            String::from("(the appliance's state)")
        } else {
            let o = Command::new("sha256sum").arg(&p).output()?;
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string()
        };
        writeln!(
            r,
            "  {name:<11} {:>6.1} MiB ({:>6.1} MiB on disk)  {sum}",
            meta.len() as f64 / 1048576.0,
            used as f64 / 1048576.0
        )?;
    }
    let rootfs = out.join("rootfs");
    writeln!(
        r,
        "  root contents {:.1} MiB",
        dir_bytes(&rootfs)? as f64 / 1048576.0
    )?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::lock_diff;

    #[test]
    fn lock_diff_names_changed_added_and_removed_packages() {
        let lock = "# header\nbash 5.2.15-2+b13 amd64\nlibc6:amd64 2.36-9+deb12u9 amd64\n\
                    tcpdump 4.99.3-1 amd64\n";
        let got = [
            "bash 5.2.15-2+b13 amd64",
            "libc6:amd64 2.36-9+deb12u10 amd64",
            "zstd 1.5.4+dfsg2-5 amd64",
        ]
        .map(String::from);
        assert_eq!(
            lock_diff(lock, &got),
            [
                "libc6:amd64: 2.36-9+deb12u9 amd64 -> 2.36-9+deb12u10 amd64",
                "-tcpdump 4.99.3-1 amd64",
                "+zstd 1.5.4+dfsg2-5 amd64",
            ]
        );
        let same: Vec<String> = lock.lines().skip(1).map(String::from).collect();
        assert!(lock_diff(lock, &same).is_empty());
    }
}
