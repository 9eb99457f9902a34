//! Health of the disks that hold the data directory, read from `/sys` and
//! `/proc/self/mountinfo`.
//!
//! Boards differ in what they expose: a SATA/SAS disk has a SCSI `state` and I/O error
//! counters, an NVMe drive a controller state and a temperature sensor, a virtio disk
//! little beyond its size and I/O statistics. Every field is therefore an `Option`: `None`
//! means "this machine does not expose it", which the console and `kuroko status` print as
//! such. Nothing is guessed (a missing error counter is not "0 errors").
//!
//! The data directory is mapped to its file system's block device by the device number of
//! the directory (`st_dev` → `/sys/dev/block/MAJ:MIN`), then to whole disks: a partition's
//! parent, or the members (`slaves/`) of a device-mapper or md device. File systems
//! without a block device number of their own (btrfs, overlay) are looked up by the
//! source of their mount in `/proc/self/mountinfo`.
//!
//! Reads only small sysfs attributes, never the disk itself, so it cannot hang on a slow
//! disk. The one exception is an NVMe drive's SMART / Health log ([`crate::nvme_smart`]):
//! an admin command to the controller, with a 2 s timeout, skipped when sysfs says the
//! controller is not live, and reused for 30 s.

use crate::discover::dir_names;
use crate::nvme_smart::{self, SmartLog};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How deep device-mapper/md stacks are followed (dm on md on partitions is 3).
const MAX_STACK_DEPTH: usize = 8;
/// Whole disks reported at most (a wide md array; the screen has room for a few).
const MAX_DISKS: usize = 16;
/// Bytes of a mountinfo file read at most (a box with thousands of mounts is odd).
const MAX_MOUNTINFO_BYTES: u64 = 4 << 20;

/// Cumulative I/O figures of one disk (`/sys/block/X/stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Requests in the device queue now.
    pub in_flight: u64,
    /// Milliseconds the device had I/O in flight (cumulative).
    pub io_ticks_ms: u64,
}

impl IoCounters {
    /// Share of `elapsed` the disk was busy between `prev` and `self` (0..=1), the figure
    /// `iostat` shows as `%util`.
    pub fn utilization_since(&self, prev: &IoCounters, elapsed: Duration) -> Option<f64> {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if ms <= 0.0 || self.io_ticks_ms < prev.io_ticks_ms {
            return None;
        }
        Some(((self.io_ticks_ms - prev.io_ticks_ms) as f64 / ms).clamp(0.0, 1.0))
    }
}

/// One whole disk under the data directory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskHealth {
    /// Kernel name of the whole disk (`sda`, `nvme0n1`, `vda`).
    pub name: String,
    /// Model string (`device/model`), trimmed.
    pub model: Option<String>,
    pub size_bytes: Option<u64>,
    /// Spinning disk (`queue/rotational`; virtio disks often say 1 whatever backs them).
    pub rotational: Option<bool>,
    /// The block layer refuses writes (`ro`).
    pub read_only: Option<bool>,
    /// Device state: SCSI `running`/`offline`/`blocked`, NVMe `live`/`dead`/….
    pub state: Option<String>,
    /// Commands that completed with an error (SCSI `device/ioerr_cnt`).
    pub io_errors: Option<u64>,
    /// Commands that timed out (SCSI `device/iotmo_cnt`).
    pub io_timeouts: Option<u64>,
    /// Temperature in °C from the device's hwmon sensor (NVMe, or SATA with drivetemp).
    pub temperature_c: Option<f64>,
    pub io: Option<IoCounters>,
    /// The NVMe SMART / Health log of the disk's controller; `None` for a disk that is not
    /// NVMe, or whose log could not be read (`smart_error` says why).
    pub smart: Option<SmartLog>,
    /// Why an NVMe disk's SMART log is unknown (permission, refused, bad data).
    pub smart_error: Option<String>,
}

impl DiskHealth {
    /// The device state is one the kernel uses for a working device.
    pub fn state_ok(&self) -> Option<bool> {
        self.state
            .as_deref()
            .map(|s| matches!(s, "running" | "live"))
    }

    /// Reasons to look at this disk, in words (empty when nothing exposed is wrong).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.state_ok() == Some(false) {
            out.push(format!(
                "{}: device state {}",
                self.name,
                self.state.as_deref().unwrap_or("?")
            ));
        }
        if let Some(n) = self.io_errors.filter(|n| *n > 0) {
            out.push(format!("{}: {n} I/O errors", self.name));
        }
        if let Some(n) = self.io_timeouts.filter(|n| *n > 0) {
            out.push(format!("{}: {n} I/O timeouts", self.name));
        }
        if self.read_only == Some(true) {
            out.push(format!("{}: read-only", self.name));
        }
        if let Some(s) = &self.smart {
            out.extend(
                s.problems()
                    .into_iter()
                    .map(|p| format!("{}: {p}", self.name)),
            );
        }
        out
    }
}

/// The file system of the data directory and the disks under it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataDisks {
    /// Block device holding the file system (`sda2`, `dm-0`, `vda`); `None` when it is not
    /// on a block device (tmpfs, a network file system).
    pub device: Option<String>,
    /// File system type from mountinfo (`ext4`, `xfs`, `tmpfs`).
    pub fs_type: Option<String>,
    /// Errors the file system recorded (ext4 `errors_count`); `None` when not exposed.
    pub fs_errors: Option<u64>,
    pub disks: Vec<DiskHealth>,
    /// Why `disks` is empty, for the screen.
    pub note: Option<String>,
}

impl DataDisks {
    /// The disks under `data_dir` on this machine.
    pub fn discover(data_dir: &Path) -> DataDisks {
        let dev = std::fs::metadata(data_dir).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            split_dev(m.dev())
        });
        let mountinfo = read_capped(Path::new("/proc/self/mountinfo")).unwrap_or_default();
        let canon = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let mount = mount_of(&mountinfo, &canon);
        let mut d = DataDisks::from_sys(Path::new("/sys"), dev, mount.as_ref());
        d.read_nvme_smart(Path::new("/sys"), Path::new("/dev"));
        d
    }

    /// Fills the SMART log of each NVMe disk, from its controller's node in `dev_dir`.
    /// Other disks are left as they are (no log: not exposed).
    pub fn read_nvme_smart(&mut self, sys: &Path, dev_dir: &Path) {
        for d in &mut self.disks {
            let Some(c) = nvme_smart::controller_of(sys, &d.name) else {
                continue;
            };
            if let Some(state) = c.state.as_deref().filter(|s| *s != "live") {
                d.smart_error = Some(format!("controller {} is {state}", c.name));
                continue;
            }
            match nvme_smart::read_log_cached(dev_dir, &c, nvme_smart::CACHE_MAX_AGE) {
                Ok(log) => {
                    if d.temperature_c.is_none() {
                        d.temperature_c = log.temperature_c();
                    }
                    d.smart = Some(log);
                }
                Err(e) => d.smart_error = Some(e),
            }
        }
    }

    /// The disks behind device number `dev` (or the mount's source when the number is not
    /// a block device's), read from the sysfs tree at `sys`.
    pub fn from_sys(sys: &Path, dev: Option<(u32, u32)>, mount: Option<&Mount>) -> DataDisks {
        let mut out = DataDisks {
            fs_type: mount.map(|m| m.fs_type.clone()),
            ..Default::default()
        };
        let mut device = dev
            .filter(|(major, _)| *major != 0)
            .and_then(|(major, minor)| {
                let link = sys.join(format!("dev/block/{major}:{minor}"));
                std::fs::canonicalize(link)
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            });
        if device.is_none()
            && let Some(name) = mount
                .and_then(|m| m.source.strip_prefix("/dev/"))
                .and_then(|s| s.rsplit('/').next())
            && sys.join("class/block").join(name).exists()
        {
            device = Some(name.to_string());
        }
        let Some(device) = device else {
            out.note = Some(match mount {
                Some(m) => format!("{} ({}) is not on a block device", m.source, m.fs_type),
                None => "the data directory's file system was not found".into(),
            });
            return out;
        };
        out.fs_errors = read_u64(&sys.join("fs/ext4").join(&device).join("errors_count"));
        let mut whole = Vec::new();
        whole_disks(sys, &device, 0, &mut whole);
        whole.dedup();
        for name in whole.into_iter().take(MAX_DISKS) {
            out.disks.push(read_disk(sys, &name));
        }
        if out.disks.is_empty() {
            out.note = Some(format!("{device}: no disk found under it in /sys"));
        }
        out.device = Some(device);
        out
    }

    /// Everything exposed that needs looking at, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self.disks.iter().flat_map(|d| d.problems()).collect();
        if let Some(n) = self.fs_errors.filter(|n| *n > 0) {
            out.push(format!(
                "{}: the file system recorded {n} errors",
                self.device.as_deref().unwrap_or("?")
            ));
        }
        out
    }
}

/// Whole disks behind block device `name`: itself, a partition's parent, or the members
/// of a stacked device.
fn whole_disks(sys: &Path, name: &str, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_STACK_DEPTH || out.len() >= MAX_DISKS {
        return;
    }
    let Ok(dir) = std::fs::canonicalize(sys.join("class/block").join(name)) else {
        return;
    };
    if dir.join("partition").exists() {
        if let Some(parent) = dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
        {
            whole_disks(sys, &parent, depth + 1, out);
        }
        return;
    }
    let slaves = dir_names(&dir.join("slaves"));
    if slaves.is_empty() {
        out.push(name.to_string());
    } else {
        for s in slaves {
            whole_disks(sys, &s, depth + 1, out);
        }
    }
}

fn read_disk(sys: &Path, name: &str) -> DiskHealth {
    let base = sys.join("class/block").join(name);
    let dev = base.join("device");
    DiskHealth {
        name: name.to_string(),
        model: read(&dev.join("model"))
            .map(|m| crate::sysfs_text::clean(&m))
            .filter(|m| !m.is_empty()),
        size_bytes: read_u64(&base.join("size")).map(|s| s.saturating_mul(512)),
        rotational: read_bool(&base.join("queue/rotational")),
        read_only: read_bool(&base.join("ro")),
        state: read(&dev.join("state")).filter(|s| !s.is_empty()),
        io_errors: read_u64(&dev.join("ioerr_cnt")),
        io_timeouts: read_u64(&dev.join("iotmo_cnt")),
        temperature_c: temperature(&dev),
        io: read(&base.join("stat")).and_then(|s| parse_stat(&s)),
        smart: None,
        smart_error: None,
    }
}

/// `temp1_input` (millidegrees) of the device's hwmon: `device/hwmonN` (NVMe) or
/// `device/hwmon/hwmonN` (drivetemp).
fn temperature(dev: &Path) -> Option<f64> {
    let mut dirs: Vec<PathBuf> = dir_names(dev)
        .into_iter()
        .filter(|n| n.starts_with("hwmon") && n != "hwmon")
        .map(|n| dev.join(n))
        .collect();
    dirs.extend(
        dir_names(&dev.join("hwmon"))
            .into_iter()
            .map(|n| dev.join("hwmon").join(n)),
    );
    dirs.iter().find_map(|d| {
        read(&d.join("temp1_input"))
            .and_then(|v| v.parse::<i64>().ok())
            .map(|m| m as f64 / 1000.0)
    })
}

/// `/sys/block/X/stat`: field 9 is in_flight, field 10 io_ticks (ms).
fn parse_stat(s: &str) -> Option<IoCounters> {
    let f: Vec<u64> = s
        .split_whitespace()
        .map(|v| v.parse::<u64>())
        .collect::<Result<_, _>>()
        .ok()?;
    Some(IoCounters {
        in_flight: *f.get(8)?,
        io_ticks_ms: *f.get(9)?,
    })
}

/// One line of `/proc/self/mountinfo`, the parts we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// The mount holding `path` (the longest mount point that is a prefix of it; the last
/// such line wins, as mounts stack in order).
pub fn mount_of(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mp) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(fs_type), Some(source)) = (r.next(), r.next()) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_mount_field(mp));
        if !path.starts_with(&mount_point) {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|b| mount_point.as_os_str().len() >= b.mount_point.as_os_str().len())
        {
            best = Some(Mount {
                mount_point,
                fs_type: fs_type.to_string(),
                source: unescape_mount_field(source),
            });
        }
    }
    best
}

/// A field of `/proc/self/mountinfo` or `/proc/mounts` with its `\ooo` escapes (space, tab,
/// newline, backslash) undone; an escape above `\377` is kept as written.
pub fn unescape_mount_field(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            if let Ok(c) = u8::try_from(v) {
                out.push(c);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Linux's `dev_t` encoding (glibc `gnu_dev_major`/`gnu_dev_minor`).
pub fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x00ff);
    (major as u32, minor as u32)
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_capped(p: &Path) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(p)
        .ok()?
        .take(MAX_MOUNTINFO_BYTES)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Decimal, or hexadecimal with `0x` (SCSI counters are printed in hex).
fn read_u64(p: &Path) -> Option<u64> {
    let s = read(p)?;
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn read_bool(p: &Path) -> Option<bool> {
    match read(p)?.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::fake::{FakeDisk, FakeSys};

    #[test]
    fn mount_field_escapes_above_a_byte_stay_as_written() {
        assert_eq!(unescape_mount_field("a\\040b"), "a b");
        assert_eq!(unescape_mount_field("x\\777y"), "x\\777y");
        assert_eq!(unescape_mount_field("end\\04"), "end\\04");
    }

    #[test]
    fn dev_numbers_split_like_glibc() {
        assert_eq!(split_dev(0xfe00), (254, 0));
        assert_eq!(split_dev(0x0801), (8, 1));
        // Major and minor above the old 8-bit range: 4100:300 (glibc's makedev).
        let (major, minor) = (4100u64, 300u64);
        let dev = ((major & 0xfff) << 8)
            | ((major & !0xfff) << 32)
            | (minor & 0xff)
            | ((minor & !0xff) << 12);
        assert_eq!(split_dev(dev), (4100, 300));
    }

    #[test]
    fn mountinfo_longest_prefix_and_escapes() {
        let mi = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                  40 27 8:17 / /srv/data\\040disk rw - xfs /dev/sdb1 rw\n\
                  41 27 0:40 / /srv rw - tmpfs tmpfs rw\n\
                  garbage line\n";
        let m = mount_of(mi, Path::new("/srv/data disk/kuroko")).unwrap();
        assert_eq!(m.fs_type, "xfs");
        assert_eq!(m.source, "/dev/sdb1");
        assert_eq!(m.mount_point, Path::new("/srv/data disk"));
        assert_eq!(mount_of(mi, Path::new("/srv/x")).unwrap().fs_type, "tmpfs");
        assert_eq!(mount_of(mi, Path::new("/var")).unwrap().source, "/dev/vda");
        assert_eq!(mount_of("", Path::new("/")), None);
    }

    #[test]
    fn utilization_from_two_samples() {
        let a = IoCounters {
            in_flight: 0,
            io_ticks_ms: 1000,
        };
        let b = IoCounters {
            in_flight: 2,
            io_ticks_ms: 1250,
        };
        assert_eq!(
            b.utilization_since(&a, Duration::from_millis(500)),
            Some(0.5)
        );
        assert_eq!(a.utilization_since(&b, Duration::from_millis(500)), None);
        assert_eq!(b.utilization_since(&a, Duration::ZERO), None);
        assert_eq!(
            b.utilization_since(&a, Duration::from_millis(100)),
            Some(1.0)
        );
    }

    #[test]
    fn a_scsi_partition_with_io_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let f = FakeSys::new(tmp.path()).unwrap();
        f.block_disk(&FakeDisk {
            name: "sdb",
            dev: (8, 16),
            sectors: 7_814_037_168,
            rotational: true,
            model: Some("ST4000NM0035-1V4"),
            state: Some("running"),
            ioerr_cnt: Some("0x11"),
            iotmo_cnt: Some("0x2"),
            temp_millic: Some(41_000),
            stat: Some("100 0 800 10 50 0 400 20 3 12345 30 0 0 0 0 0 0"),
            ..Default::default()
        })
        .unwrap()
        .partition("sdb", "sdb1", (8, 17))
        .unwrap()
        .ext4_errors("sdb1", 2)
        .unwrap();
        let mi = "50 1 8:17 / /data rw - ext4 /dev/sdb1 rw\n";
        let d = DataDisks::from_sys(
            tmp.path(),
            Some((8, 17)),
            mount_of(mi, Path::new("/data/kuroko")).as_ref(),
        );
        assert_eq!(d.device.as_deref(), Some("sdb1"));
        assert_eq!(d.fs_type.as_deref(), Some("ext4"));
        assert_eq!(d.fs_errors, Some(2));
        assert_eq!(d.disks.len(), 1);
        let s = &d.disks[0];
        assert_eq!(s.name, "sdb");
        assert_eq!(s.model.as_deref(), Some("ST4000NM0035-1V4"));
        assert_eq!(s.size_bytes, Some(7_814_037_168 * 512));
        assert_eq!(s.rotational, Some(true));
        assert_eq!(s.read_only, Some(false));
        assert_eq!(s.state.as_deref(), Some("running"));
        assert_eq!(s.state_ok(), Some(true));
        assert_eq!(s.io_errors, Some(17));
        assert_eq!(s.io_timeouts, Some(2));
        assert_eq!(s.temperature_c, Some(41.0));
        assert_eq!(
            s.io,
            Some(IoCounters {
                in_flight: 3,
                io_ticks_ms: 12345
            })
        );
        assert_eq!(
            d.problems(),
            vec![
                "sdb: 17 I/O errors".to_string(),
                "sdb: 2 I/O timeouts".into(),
                "sdb1: the file system recorded 2 errors".into()
            ]
        );
    }

    #[test]
    fn a_virtio_disk_that_exposes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let f = FakeSys::new(tmp.path()).unwrap();
        f.block_disk(&FakeDisk {
            name: "vdc",
            dev: (254, 32),
            bare: true,
            ..Default::default()
        })
        .unwrap();
        let d = DataDisks::from_sys(tmp.path(), Some((254, 32)), None);
        assert_eq!(d.device.as_deref(), Some("vdc"));
        assert_eq!(d.fs_errors, None, "no ext4 sysfs entry: not exposed, not 0");
        assert_eq!(
            d.disks,
            vec![DiskHealth {
                name: "vdc".into(),
                ..Default::default()
            }]
        );
        assert!(d.problems().is_empty());
    }

    #[test]
    fn nvme_behind_device_mapper_and_a_read_only_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let f = FakeSys::new(tmp.path()).unwrap();
        f.block_disk(&FakeDisk {
            name: "nvme0n1",
            dev: (259, 0),
            sectors: 1000,
            model: Some("Samsung SSD 980"),
            state: Some("live"),
            nvme_temp_millic: Some(38_850),
            ..Default::default()
        })
        .unwrap()
        .partition("nvme0n1", "nvme0n1p2", (259, 2))
        .unwrap()
        .block_disk(&FakeDisk {
            name: "sdc",
            dev: (8, 32),
            sectors: 1000,
            read_only: true,
            state: Some("offline"),
            ..Default::default()
        })
        .unwrap()
        .block_disk(&FakeDisk {
            name: "dm-0",
            dev: (253, 0),
            sectors: 2000,
            slaves: &["nvme0n1p2", "sdc"],
            ..Default::default()
        })
        .unwrap();
        let d = DataDisks::from_sys(tmp.path(), Some((253, 0)), None);
        assert_eq!(d.device.as_deref(), Some("dm-0"));
        let names: Vec<&str> = d.disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sdc"]);
        assert_eq!(d.disks[0].temperature_c, Some(38.85));
        assert_eq!(d.disks[0].state_ok(), Some(true));
        assert_eq!(d.disks[0].io_errors, None);
        assert_eq!(
            d.disks[1].problems(),
            vec![
                "sdc: device state offline".to_string(),
                "sdc: read-only".into()
            ]
        );
    }

    #[test]
    fn an_nvme_log_that_cannot_be_read_stays_unknown() {
        let tmp = tempfile::tempdir().unwrap();
        let sys = tmp.path().join("sys");
        let dev = tmp.path().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        let f = FakeSys::new(&sys).unwrap();
        f.block_disk(&FakeDisk {
            name: "nvme0n1",
            dev: (259, 0),
            sectors: 1000,
            state: Some("live"),
            nvme_controller: Some(("nvme0", (241, 0))),
            ..Default::default()
        })
        .unwrap()
        .block_disk(&FakeDisk {
            name: "nvme1n1",
            dev: (259, 1),
            sectors: 1000,
            state: Some("dead"),
            nvme_controller: Some(("nvme1", (241, 1))),
            ..Default::default()
        })
        .unwrap()
        .block_disk(&FakeDisk {
            name: "dm-0",
            dev: (253, 0),
            sectors: 2000,
            slaves: &["nvme0n1", "nvme1n1"],
            ..Default::default()
        })
        .unwrap();
        // A log-sized file of zeros where nvme0's node should be: never read as a log.
        std::fs::write(dev.join("nvme0"), vec![0u8; 512]).unwrap();
        let mut d = DataDisks::from_sys(&sys, Some((253, 0)), None);
        d.read_nvme_smart(&sys, &dev);
        assert_eq!(d.disks[0].smart, None);
        let e = d.disks[0].smart_error.as_deref().unwrap();
        assert!(e.contains("not a character device"), "{e}");
        // A dead controller is not sent a command at all.
        assert_eq!(d.disks[1].smart, None);
        assert_eq!(
            d.disks[1].smart_error.as_deref(),
            Some("controller nvme1 is dead")
        );
        assert_eq!(d.disks[0].temperature_c, None, "no log: still not exposed");
        assert_eq!(d.problems(), vec!["nvme1n1: device state dead".to_string()]);
    }

    #[test]
    fn nvme_log_problems_are_disk_problems() {
        let d = DiskHealth {
            name: "nvme0n1".into(),
            state: Some("live".into()),
            smart: Some(SmartLog {
                critical_warning: 0x09,
                available_spare: 4,
                spare_threshold: 10,
                percentage_used: 97,
                media_errors: 12,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            d.problems(),
            vec![
                "nvme0n1: NVMe critical warning: spare below threshold, read-only".to_string(),
                "nvme0n1: 97% of rated wear used".into(),
                "nvme0n1: 12 media and data integrity errors".into(),
            ]
        );
        let fine = DiskHealth {
            smart: Some(SmartLog {
                available_spare: 100,
                spare_threshold: 10,
                percentage_used: 3,
                ..Default::default()
            }),
            ..d
        };
        assert!(fine.problems().is_empty());
    }

    #[test]
    fn tmpfs_and_btrfs_by_mount_source() {
        let tmp = tempfile::tempdir().unwrap();
        let f = FakeSys::new(tmp.path()).unwrap();
        f.block_disk(&FakeDisk {
            name: "sda",
            dev: (8, 0),
            sectors: 10,
            ..Default::default()
        })
        .unwrap()
        .partition("sda", "sda3", (8, 3))
        .unwrap();
        let mi =
            "60 1 0:45 / /data rw - btrfs /dev/sda3 rw\n61 1 0:46 / /run rw - tmpfs tmpfs rw\n";
        let btrfs = mount_of(mi, Path::new("/data"));
        let d = DataDisks::from_sys(tmp.path(), Some((0, 45)), btrfs.as_ref());
        assert_eq!(d.device.as_deref(), Some("sda3"));
        assert_eq!(d.disks[0].name, "sda");
        let tmpfs = mount_of(mi, Path::new("/run/kuroko"));
        let d = DataDisks::from_sys(tmp.path(), Some((0, 46)), tmpfs.as_ref());
        assert!(d.disks.is_empty());
        assert_eq!(
            d.note.as_deref(),
            Some("tmpfs (tmpfs) is not on a block device")
        );
        // An unknown device number and no mount: said so, no panic.
        let d = DataDisks::from_sys(tmp.path(), Some((9, 9)), None);
        assert!(d.disks.is_empty() && d.note.is_some());
    }

    #[test]
    fn this_machine_maps_its_temp_dir() {
        // Whatever this machine is, discovery must not fail; on a block device it finds
        // at least one disk.
        let d = DataDisks::discover(&std::env::temp_dir());
        if d.device.is_some() {
            assert!(!d.disks.is_empty(), "{d:?}");
            assert!(d.disks.iter().all(|x| x.size_bytes.is_some()), "{d:?}");
        } else {
            assert!(d.note.is_some(), "{d:?}");
        }
    }
}
