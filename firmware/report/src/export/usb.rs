//! Finding a mounted USB stick (`--usb`).
//!
//! A removable block device (`/sys/block/<dev>/removable` is `1`) with one of its
//! partitions (or itself) listed in `/proc/mounts` read-write. Mounting the stick when it
//! appears and unmounting it after the export are the board layer's job; this only finds
//! the mount point. Exactly one candidate is required: with none or several, the caller
//! must say `--to`.

use std::path::{Path, PathBuf};

/// A mounted removable device.
#[derive(Clone, Debug, PartialEq)]
pub struct Stick {
    pub device: String,
    pub mount_point: PathBuf,
}

/// Removable mounted devices, from a `/sys/block` directory and `/proc/mounts` text.
pub fn find_in(sys_block: &Path, mounts: &str) -> Vec<Stick> {
    let mut removable = Vec::new();
    if let Ok(rd) = std::fs::read_dir(sys_block) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let flag = std::fs::read_to_string(e.path().join("removable")).unwrap_or_default();
            if flag.trim() == "1" {
                removable.push(name);
            }
        }
    }
    let mut out = Vec::new();
    for line in mounts.lines() {
        let mut it = line.split_whitespace();
        let (Some(dev), Some(mp), Some(_fs), Some(opts)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let Some(base) = dev.strip_prefix("/dev/") else {
            continue;
        };
        // sdb1 → sdb, mmcblk0p1 → mmcblk0.
        let is_on_removable = removable.iter().any(|r| {
            base == r
                || (base.starts_with(r.as_str())
                    && base[r.len()..]
                        .trim_start_matches('p')
                        .bytes()
                        .all(|c| c.is_ascii_digit()))
        });
        if is_on_removable && opts.split(',').any(|o| o == "rw") {
            out.push(Stick {
                device: dev.to_string(),
                mount_point: PathBuf::from(kuroko_board::disk_health::unescape_mount_field(mp)),
            });
        }
    }
    out
}

/// The one mounted removable device on this machine.
pub fn find_stick() -> Result<Stick, String> {
    let mounts = std::fs::read_to_string("/proc/mounts")
        .map_err(|e| format!("cannot read /proc/mounts: {e}"))?;
    let mut found = find_in(Path::new("/sys/block"), &mounts);
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err("no mounted USB stick found (no removable block device in /sys/block is mounted read-write in /proc/mounts); plug one in and mount it, or pass --to DIR".into()),
        _ => Err(format!(
            "several removable devices are mounted ({}); pass --to with the one to use",
            found.iter().map(|s| format!("{} on {}", s.device, s.mount_point.display())).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_removable_partition_mounted_rw() {
        let dir = tempfile::tempdir().unwrap();
        for (dev, flag) in [("sda", "0"), ("sdb", "1"), ("mmcblk0", "1")] {
            std::fs::create_dir_all(dir.path().join(dev)).unwrap();
            std::fs::write(dir.path().join(dev).join("removable"), format!("{flag}\n")).unwrap();
        }
        let mounts = "/dev/sda1 / ext4 rw,relatime 0 0\n/dev/sdb1 /media/USB\\040STICK vfat rw,nosuid 0 0\n/dev/mmcblk0p1 /boot vfat ro 0 0\nproc /proc proc rw 0 0\n";
        let found = find_in(dir.path(), mounts);
        assert_eq!(
            found,
            vec![Stick {
                device: "/dev/sdb1".into(),
                mount_point: PathBuf::from("/media/USB STICK")
            }]
        );
    }
}
