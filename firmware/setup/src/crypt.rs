//! Whether a directory lives on an encrypted (dm-crypt / LUKS) block device.
//!
//! Decommission uses it to say in the certificate whether a crypto-erase (destroying the
//! key, which makes every sector unreadable at once) is possible for the data, and the
//! setup shell's `status` to show whether data at rest is encrypted. Read from
//! `/proc/self/mountinfo` (the mount that holds the directory, longest prefix) and
//! `/sys/dev/block/MAJ:MIN/dm/` (`uuid` starts with `CRYPT-` for a dm-crypt mapping).

use std::path::Path;

/// The mount point and `MAJ:MIN` of the file system that holds `path`.
fn mount_of(mountinfo: &str, path: &Path) -> Option<(String, String)> {
    let path = path.to_string_lossy();
    let mut best: Option<(String, String)> = None;
    for line in mountinfo.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (Some(devno), Some(mp)) = (f.get(2), f.get(4)) else {
            continue;
        };
        let mp = kuroko_board::disk_health::unescape_mount_field(mp);
        let inside = path == mp.as_str()
            || mp == "/"
            || path.starts_with(&format!("{}/", mp.trim_end_matches('/')));
        if inside && best.as_ref().is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp, devno.to_string()));
        }
    }
    best
}

/// A dm-crypt mapping and the disk under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encrypted {
    /// `/dev/mapper/NAME`.
    pub mapper: String,
    /// The LUKS disk under the mapping (`/dev/vdc`), from `/sys/.../dm/../slaves/`.
    pub backing: Option<String>,
}

/// The dm-crypt mapping that holds `dir`, if it is on one.
pub fn data_device(dir: &Path) -> Option<Encrypted> {
    let abs = std::fs::canonicalize(dir).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (_, devno) = mount_of(&mountinfo, &abs)?;
    let block = Path::new("/sys/dev/block").join(&devno);
    let dm = block.join("dm");
    let uuid = std::fs::read_to_string(dm.join("uuid")).ok()?;
    if !uuid.starts_with("CRYPT-") {
        return None;
    }
    let name = std::fs::read_to_string(dm.join("name")).ok()?;
    // One slave for a plain LUKS mapping; more (or none) is not a layout this board makes.
    let slaves: Vec<String> = std::fs::read_dir(block.join("slaves"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(Encrypted {
        mapper: format!("/dev/mapper/{}", name.trim()),
        backing: match slaves.as_slice() {
            [one] => Some(format!("/dev/{one}")),
            _ => None,
        },
    })
}

/// Crypto-erase of the LUKS disk under a mapping: `cryptsetup erase` destroys every keyslot
/// (the only copies of the volume key, wrapped), so no key opens the disk again; the
/// mounted mapping keeps its in-memory key until it is closed or the box powers off.
/// Returns what was done, for the certificate.
pub fn crypto_erase(enc: &Encrypted) -> Result<String, String> {
    let Some(disk) = &enc.backing else {
        return Err(format!(
            "the disk under {} was not found in sysfs: not crypto-erased",
            enc.mapper
        ));
    };
    let out = std::process::Command::new("cryptsetup")
        .args(["erase", "--batch-mode", disk])
        // No udev on the appliance (see image rcS).
        .env("DM_DISABLE_UDEV", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cryptsetup: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cryptsetup erase {disk}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(format!(
        "every LUKS2 keyslot of {disk} destroyed (`cryptsetup erase`): the volume key of {} exists on no disk any more, so every sector of {disk} is unreadable ciphertext; NIST SP 800-88 Rev. 1 Purge (cryptographic erase)",
        enc.mapper
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_prefix_holds_the_path() {
        let mi = "22 1 254:0 / / ro - ext4 /dev/vda ro\n\
                  30 22 253:0 / /data rw,nosuid - ext4 /dev/mapper/kdata rw\n\
                  31 22 254:16 / /data2 rw - ext4 /dev/vdb rw\n";
        assert_eq!(
            mount_of(mi, Path::new("/data/segments")),
            Some(("/data".into(), "253:0".into()))
        );
        assert_eq!(
            mount_of(mi, Path::new("/data2")),
            Some(("/data2".into(), "254:16".into()))
        );
        assert_eq!(
            mount_of(mi, Path::new("/datax")),
            Some(("/".into(), "254:0".into()))
        );
    }

    #[test]
    fn a_mapping_without_its_disk_is_not_crypto_erased_and_says_why() {
        let enc = Encrypted {
            mapper: "/dev/mapper/kdata".into(),
            backing: None,
        };
        let e = crypto_erase(&enc).unwrap_err();
        assert!(
            e.contains("/dev/mapper/kdata") && e.contains("not crypto-erased"),
            "{e}"
        );
    }
}
