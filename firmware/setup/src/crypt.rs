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

/// The dm-crypt mapping (`/dev/mapper/NAME`) that holds `dir`, if it is on one.
pub fn data_device(dir: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(dir).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (_, devno) = mount_of(&mountinfo, &abs)?;
    let dm = Path::new("/sys/dev/block").join(&devno).join("dm");
    let uuid = std::fs::read_to_string(dm.join("uuid")).ok()?;
    if !uuid.starts_with("CRYPT-") {
        return None;
    }
    let name = std::fs::read_to_string(dm.join("name")).ok()?;
    Some(format!("/dev/mapper/{}", name.trim()))
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
}
