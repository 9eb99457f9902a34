//! A/B root updates from a USB stick: a signed bundle is verified whole, written to the
//! slot that is not running, read back, and only then put on trial for the next boot; the
//! boot stage (the initramfs) rolls back to the known-good slot when the new one does not
//! come up, and the running system marks it good once it has.
//!
//! - [`bundle`]: the file format, signature and payload checks (nothing written).
//! - [`state`]: the boot state on the config disk and its transitions.
//! - this module: where the slots are, what is running, applying a verified bundle to the
//!   inactive slot, `update status`, `update mark-good`.
//!
//! On the qemu board the slots are whole disks named on the kernel command line
//! (`kuroko.slot_a=/dev/vda kuroko.slot_b=/dev/vdd`); the kernel and initrd are outside the
//! slots (direct kernel boot), so a bundle replaces the userland, not the kernel.

pub mod bundle;
pub mod state;

use sha2::{Digest, Sha256};
use state::{BootState, Slot};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where the running system and the initramfs find things; tests point them elsewhere.
#[derive(Clone, Debug)]
pub struct UpdatePaths {
    /// The boot state (`/config/boot/state`).
    pub state: PathBuf,
    /// The trusted public keys (`/usr/share/kuroko/update-keys`).
    pub keys: PathBuf,
    /// The running image's release file (`/etc/kuroko-release`).
    pub release: PathBuf,
    /// The slot the initramfs booted (`/run/kuroko-slot`: `a` or `b`).
    pub booted: PathBuf,
    /// The kernel command line (`/proc/cmdline`) naming the slots' devices.
    pub cmdline: PathBuf,
    /// The update log (`/config/boot/update.log`), one line per attempt.
    pub log: PathBuf,
}

impl UpdatePaths {
    /// The appliance's paths, with the boot state beside the config (`/config/boot/...`).
    pub fn appliance(config_dir: &Path) -> UpdatePaths {
        UpdatePaths {
            state: config_dir.join("boot/state"),
            keys: PathBuf::from(bundle::KEY_DIR),
            release: PathBuf::from("/etc/kuroko-release"),
            booted: PathBuf::from("/run/kuroko-slot"),
            cmdline: PathBuf::from("/proc/cmdline"),
            log: config_dir.join("boot/update.log"),
        }
    }
}

/// `/etc/kuroko-release`: `version=N`, `board=NAME`, `build=TEXT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Release {
    pub version: u64,
    pub board: String,
    pub build: String,
}

impl Release {
    pub fn parse(text: &str) -> Release {
        let mut r = Release::default();
        for (k, v) in text.lines().filter_map(|l| l.split_once('=')) {
            match k.trim() {
                "version" => r.version = v.trim().parse().unwrap_or(0),
                "board" => r.board = v.trim().to_string(),
                "build" => r.build = v.trim().to_string(),
                _ => {}
            }
        }
        r
    }
    pub fn read(path: &Path) -> Result<Release, String> {
        std::fs::read_to_string(path)
            .map(|t| Release::parse(&t))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// The slots' devices from the kernel command line.
pub fn slot_devices(cmdline: &str) -> Option<(PathBuf, PathBuf)> {
    let get = |k: &str| {
        cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(PathBuf::from)
    };
    Some((get("kuroko.slot_a=")?, get("kuroko.slot_b=")?))
}

/// The slot running now: what the initramfs wrote to `/run/kuroko-slot`.
pub fn running_slot(p: &UpdatePaths) -> Result<Slot, String> {
    let t = std::fs::read_to_string(&p.booted).map_err(|e| {
        format!(
            "{}: {e} (booted without the A/B initramfs?)",
            p.booted.display()
        )
    })?;
    Slot::parse(&t).ok_or_else(|| format!("{} says `{}`", p.booted.display(), t.trim()))
}

/// What to refuse besides a bad signature.
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    /// Accept a version not newer than the running one (`update FILE allow-downgrade`).
    pub allow_downgrade: bool,
}

/// Checks a verified bundle against the running image: same board, newer version.
pub fn check_policy(m: &bundle::Manifest, running: &Release, policy: Policy) -> Result<(), String> {
    if m.board != running.board {
        return Err(format!(
            "the bundle is for board `{}`, this box is `{}`: refused",
            m.board, running.board
        ));
    }
    if m.version <= running.version && !policy.allow_downgrade {
        return Err(format!(
            "the bundle's version {} is not newer than the running {}: refused (`update FILE allow-downgrade` to install it anyway)",
            m.version, running.version
        ));
    }
    Ok(())
}

/// Streams the verified bundle's root image into `dev` with its SHA-256 computed on the way,
/// syncs, drops the cached pages and reads it back for the same SHA-256. `dev` must not be
/// the mounted root ([`is_mounted_root`]) and must be large enough; both checked first.
pub fn write_slot(
    v: &bundle::Verified,
    dev: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let m = &v.manifest;
    let mut out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| format!("cannot open the slot {}: {e}", dev.display()))?;
    let cap = out.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    let is_file = out.metadata().map(|m| m.is_file()).unwrap_or(false);
    if cap < m.root_size && !is_file {
        return Err(format!(
            "the root image is {} bytes, the slot {} only {cap}",
            m.root_size,
            dev.display()
        ));
    }
    out.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut src = std::fs::File::open(&v.path).map_err(|e| e.to_string())?;
    src.seek(SeekFrom::Start(v.payload_offset))
        .map_err(|e| e.to_string())?;
    let src = src.take(m.payload_size);
    let mut reader: Box<dyn Read> = match m.compression.as_str() {
        "zstd" => Box::new(zstd::stream::Decoder::new(src).map_err(|e| format!("zstd: {e}"))?),
        _ => Box::new(src),
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut done, mut shown) = (0u64, 0u64);
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("reading the bundle's image: {e}"))?;
        if n == 0 {
            break;
        }
        if done + n as u64 > m.root_size {
            return Err("the image is longer than its manifest says".into());
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("writing {}: {e}", dev.display()))?;
        done += n as u64;
        let pct = done * 100 / m.root_size.max(1);
        if pct >= shown + 10 {
            shown = pct / 10 * 10;
            progress(&format!("writing slot: {shown}%"));
        }
    }
    if done != m.root_size || hex::encode(h.finalize()) != m.root_sha256 {
        return Err(format!(
            "the image written ({done} bytes) does not match the manifest's size and SHA-256: the slot is not bootable and not marked"
        ));
    }
    out.sync_all()
        .map_err(|e| format!("cannot sync {}: {e}", dev.display()))?;
    // Read back from the disk, not from the page cache the write left.
    let _ = nix::fcntl::posix_fadvise(
        &out,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
    progress("reading the slot back");
    out.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut h = Sha256::new();
    let mut left = m.root_size;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        out.read_exact(&mut buf[..want])
            .map_err(|e| format!("reading {} back: {e}", dev.display()))?;
        h.update(&buf[..want]);
        left -= want as u64;
    }
    if hex::encode(h.finalize()) != m.root_sha256 {
        return Err(format!(
            "{} reads back different from what was written: the slot is not marked",
            dev.display()
        ));
    }
    Ok(())
}

/// Whether `dev` is the block device mounted on `/` (the running slot).
pub fn is_mounted_root(dev: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dev), std::fs::metadata("/")) {
        (Ok(d), Ok(r)) => d.file_type_is_block() && d.rdev() == r.dev(),
        _ => false,
    }
}

trait BlockType {
    fn file_type_is_block(&self) -> bool;
}
impl BlockType for std::fs::Metadata {
    fn file_type_is_block(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.file_type().is_block_device()
    }
}

/// Appends a line to the update log (best effort: the console has said it already).
pub fn log(p: &UpdatePaths, now: i64, line: &str) {
    if let Some(d) = p.log.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.log)
    {
        let clean: String = line.chars().filter(|c| !c.is_control()).collect();
        let _ = writeln!(f, "{now} {clean}");
        let _ = f.sync_all();
    }
}

/// `update FILE`: verify, check policy, write the inactive slot, read it back, put it on
/// trial. Each step's message goes to `say`. Returns the slot now pending.
pub fn apply(
    p: &UpdatePaths,
    file: &Path,
    policy: Policy,
    say: &mut dyn FnMut(&str),
) -> Result<Slot, String> {
    let running = running_slot(p)?;
    let cmdline = std::fs::read_to_string(&p.cmdline).map_err(|e| e.to_string())?;
    let (a, b) = slot_devices(&cmdline)
        .ok_or("the kernel command line names no kuroko.slot_a=/kuroko.slot_b=: this board has no A/B root")?;
    let (state, garbled) = BootState::load(&p.state);
    if let Some(g) = garbled {
        say(&g);
    }
    let target = running.other();
    // Refused now rather than after the write: an update from a slot still on trial.
    state.begin(running, target)?;
    let keys = bundle::load_keys(&p.keys)?;
    say(&format!("verifying {} ...", file.display()));
    let mut shown = 0u64;
    let v = bundle::verify(file, &keys, &mut |done, all| {
        let pct = done * 100 / all.max(1);
        if pct >= shown + 25 {
            shown = pct / 25 * 25;
            say(&format!("verifying: {shown}%"));
        }
    })?;
    let release = Release::read(&p.release)?;
    check_policy(&v.manifest, &release, policy)?;
    say(&format!(
        "signed by key `{}`: board {}, version {} (running {}), root {} MiB",
        v.key,
        v.manifest.board,
        v.manifest.version,
        release.version,
        v.manifest.root_size >> 20
    ));
    let dev = if target == Slot::A { a } else { b };
    if is_mounted_root(&dev) {
        return Err(format!(
            "{} is the mounted root: refusing to write it",
            dev.display()
        ));
    }
    say(&format!("writing slot {target} ({})", dev.display()));
    write_slot(&v, &dev, say)?;
    let next = state.begin(running, target)?;
    next.store(&p.state)
        .map_err(|e| format!("cannot write {}: {e}", p.state.display()))?;
    Ok(target)
}

/// `update status`: the running slot and version, the boot state, the last rollback.
pub fn status(p: &UpdatePaths) -> String {
    let mut s = String::new();
    let running = running_slot(p);
    let release = Release::read(&p.release).unwrap_or_default();
    let (state, garbled) = BootState::load(&p.state);
    match &running {
        Ok(r) => s.push_str(&format!(
            "running: slot {r}, version {}, board {}\n",
            release.version, release.board
        )),
        Err(e) => s.push_str(&format!(
            "running: unknown slot ({e}), version {}\n",
            release.version
        )),
    }
    if let Some(g) = garbled {
        s.push_str(&format!("boot state: {g}\n"));
    }
    let good = match (&running, state.pending) {
        (Ok(r), Some((pd, _))) if *r == pd => "on trial (not marked good yet)",
        (Ok(r), _) if *r == state.active => "good",
        _ => "not the active slot",
    };
    s.push_str(&format!(
        "slot state: {good}; active slot {}\n",
        state.active
    ));
    if let Some((pd, t)) = state.pending {
        s.push_str(&format!("pending: slot {pd}, {t} boot(s) left\n"));
    }
    if let Some((r, why)) = &state.rolled_back {
        s.push_str(&format!("rolled back from slot {r}: {why}\n"));
    }
    s
}

/// `kuroko update mark-good` (rcS, once the box is up): the running slot on trial becomes
/// the active one. Returns what it did.
pub fn mark_good(p: &UpdatePaths) -> Result<String, String> {
    let running = running_slot(p)?;
    let (state, garbled) = BootState::load(&p.state);
    if let Some(g) = garbled {
        return Err(g);
    }
    match state.mark_good(running)? {
        Some(next) => {
            next.store(&p.state)
                .map_err(|e| format!("cannot write {}: {e}", p.state.display()))?;
            Ok(format!("slot {running} marked good: it is the active slot"))
        }
        None => Ok(format!("slot {running} is the active slot")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(d: &Path, running: &str) -> UpdatePaths {
        let p = UpdatePaths {
            state: d.join("config/boot/state"),
            keys: d.join("keys"),
            release: d.join("release"),
            booted: d.join("slot"),
            cmdline: d.join("cmdline"),
            log: d.join("config/boot/update.log"),
        };
        std::fs::write(&p.release, "version=5\nboard=qemu\n").unwrap();
        std::fs::write(&p.booted, running).unwrap();
        std::fs::write(
            &p.cmdline,
            format!(
                "console=ttyS0 kuroko.slot_a={} kuroko.slot_b={}\n",
                d.join("slot-a").display(),
                d.join("slot-b").display()
            ),
        )
        .unwrap();
        std::fs::write(d.join("slot-a"), vec![0u8; 1 << 20]).unwrap();
        std::fs::write(d.join("slot-b"), vec![0u8; 1 << 20]).unwrap();
        p
    }

    fn root() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 13).to_le_bytes())
            .collect()
    }

    #[test]
    fn apply_writes_the_inactive_slot_then_marks_it_pending() {
        let d = tempfile::tempdir().unwrap();
        let (b, _) = bundle::tests::bundle(d.path(), &root(), 6, Some(3));
        let p = paths(d.path(), "a\n");
        let mut said = Vec::new();
        let slot = apply(&p, &b, Policy::default(), &mut |s| said.push(s.to_string())).unwrap();
        assert_eq!(slot, Slot::B);
        let written = std::fs::read(d.path().join("slot-b")).unwrap();
        assert_eq!(&written[..root().len()], &root()[..]);
        assert_eq!(
            std::fs::read(d.path().join("slot-a")).unwrap(),
            vec![0u8; 1 << 20]
        );
        let (st, _) = BootState::load(&p.state);
        assert_eq!(st.pending, Some((Slot::B, state::TRIES)));
        assert!(
            said.iter().any(|s| s.contains("writing slot: 100%")),
            "{said:?}"
        );
        // Booted into B by the initramfs: mark-good makes it active.
        std::fs::write(&p.booted, "b").unwrap();
        assert!(status(&p).contains("on trial"));
        assert!(mark_good(&p).unwrap().contains("marked good"));
        assert!(
            status(&p).contains("slot state: good; active slot B"),
            "{}",
            status(&p)
        );
    }

    #[test]
    fn refusals_write_nothing() {
        let d = tempfile::tempdir().unwrap();
        let (b, _) = bundle::tests::bundle(d.path(), &root(), 5, None);
        let p = paths(d.path(), "a");
        let blank = vec![0u8; 1 << 20];
        // Not newer.
        let e = apply(&p, &b, Policy::default(), &mut |_| {}).unwrap_err();
        assert!(e.contains("not newer"), "{e}");
        // Tampered.
        let mut bytes = std::fs::read(&b).unwrap();
        let n = bytes.len();
        bytes[n - 100] ^= 1;
        std::fs::write(&b, &bytes).unwrap();
        let e = apply(
            &p,
            &b,
            Policy {
                allow_downgrade: true,
            },
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.contains("altered"), "{e}");
        // Wrong board.
        std::fs::write(&p.release, "version=1\nboard=apu2\n").unwrap();
        bytes[n - 100] ^= 1;
        std::fs::write(&b, &bytes).unwrap();
        let e = apply(&p, &b, Policy::default(), &mut |_| {}).unwrap_err();
        assert!(e.contains("board"), "{e}");
        assert_eq!(std::fs::read(d.path().join("slot-b")).unwrap(), blank);
        assert!(!p.state.exists());
        // The downgrade flag lets the same version through.
        std::fs::write(&p.release, "version=5\nboard=qemu\n").unwrap();
        apply(
            &p,
            &b,
            Policy {
                allow_downgrade: true,
            },
            &mut |_| {},
        )
        .unwrap();
    }

    #[test]
    fn no_update_while_the_running_slot_is_on_trial() {
        let d = tempfile::tempdir().unwrap();
        let (b, _) = bundle::tests::bundle(d.path(), &root(), 9, None);
        let p = paths(d.path(), "b");
        BootState::default()
            .begin(Slot::A, Slot::B)
            .unwrap()
            .store(&p.state)
            .unwrap();
        let e = apply(&p, &b, Policy::default(), &mut |_| {}).unwrap_err();
        assert!(e.contains("on trial"), "{e}");
    }

    #[test]
    fn the_slots_come_from_the_command_line() {
        assert_eq!(
            slot_devices("ro kuroko.slot_a=/dev/vda kuroko.slot_b=/dev/vdd panic=10"),
            Some((PathBuf::from("/dev/vda"), PathBuf::from("/dev/vdd")))
        );
        assert_eq!(slot_devices("root=/dev/vda ro"), None);
    }
}
