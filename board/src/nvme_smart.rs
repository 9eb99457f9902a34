//! The NVMe SMART / Health Information log (log page 0x02) of the controller behind a disk.
//!
//! An appliance that rewrites its data disk every week wears it out; what says how far
//! (percentage of rated life used, spare blocks left, media errors, unsafe shutdowns) is
//! only in this log page, not in sysfs. It is read the way `nvme smart-log` reads it: a Get
//! Log Page admin command through `NVME_IOCTL_ADMIN_CMD` on the controller's character
//! device (`/dev/nvme0`), which needs CAP_SYS_ADMIN.
//!
//! The controller is found from sysfs, not guessed from the disk's name: a namespace's
//! `device` link is its controller (`nvme0`), or with native multipath the subsystem
//! (`nvme-subsys0`), whose controllers are listed in it. The device node opened must be a
//! character device with the controller's `dev` number, so a stray file in `/dev` is never
//! read as a log.
//!
//! Every failure (not NVMe, no device node, permission denied, the command refused, a short
//! or out-of-range log) leaves the log unknown with the reason, never a log of zeros shown
//! as a healthy drive. The ioctl is the one `unsafe` in this crate.

use crate::discover::dir_names;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Size of the SMART / Health Information log page.
pub const LOG_LEN: usize = 512;
/// Percentage of rated life used from which a disk is reported as a problem.
pub const WEAR_WARN_PERCENT: u8 = 90;
/// Bytes in one "data unit" of the log (1000 blocks of 512 bytes, per the spec).
pub const DATA_UNIT_BYTES: u128 = 512_000;
/// How long a log read is reused: the console asks every second, wear moves in days, and
/// each read is an admin command to the drive.
pub const CACHE_MAX_AGE: Duration = Duration::from_secs(30);
/// Timeout the kernel puts on our admin command, so a wedged controller cannot hold
/// `kuroko status` or the console's feeder for the driver's default 60 s.
const ADMIN_TIMEOUT_MS: u32 = 2000;

/// Critical warning bits (byte 0), lowest first, in words.
pub const CRITICAL_WARNING_BITS: [&str; 6] = [
    "spare below threshold",
    "temperature",
    "reliability degraded",
    "read-only",
    "volatile backup failed",
    "persistent memory read-only",
];

/// The fields of the SMART / Health Information log that the console and status show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmartLog {
    /// Bit field, see [`CRITICAL_WARNING_BITS`]; 0 when nothing is wrong.
    pub critical_warning: u8,
    /// Composite temperature in Kelvin; 0 when the controller does not report it.
    pub temperature_k: u16,
    /// Spare capacity left, percent (0..=100).
    pub available_spare: u8,
    /// Spare below which the controller raises a critical warning, percent (0..=100).
    pub spare_threshold: u8,
    /// Share of rated life used, percent; may exceed 100 (the spec caps it at 255).
    pub percentage_used: u8,
    /// In units of [`DATA_UNIT_BYTES`].
    pub data_units_read: u128,
    pub data_units_written: u128,
    pub power_cycles: u128,
    pub power_on_hours: u128,
    pub unsafe_shutdowns: u128,
    /// Unrecovered data integrity errors (media and data integrity errors).
    pub media_errors: u128,
    /// Entries in the controller's error information log over its life.
    pub error_log_entries: u128,
}

/// Why a log could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SmartError {
    #[error("the SMART log is {0} bytes long, expected {LOG_LEN}")]
    Short(usize),
    #[error("the SMART log says {field} is {value}%, beyond 100%")]
    OutOfRange { field: &'static str, value: u8 },
    #[error("{0} is not a character device with the controller's number {1}:{2}")]
    WrongNode(PathBuf, u32, u32),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("the controller refused Get Log Page (NVMe status {0:#x})")]
    Status(i32),
    #[error("NVMe passthrough is not built for this architecture")]
    Unsupported,
}

impl SmartLog {
    /// Parses a log page: each field at its offset in the NVMe base specification
    /// (Figure "SMART / Health Information Log Page"), little-endian.
    pub fn parse(b: &[u8]) -> Result<SmartLog, SmartError> {
        if b.len() < LOG_LEN {
            return Err(SmartError::Short(b.len()));
        }
        let u128_at = |off: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[off..off + 16]);
            u128::from_le_bytes(a)
        };
        let log = SmartLog {
            critical_warning: b[0],
            temperature_k: u16::from_le_bytes([b[1], b[2]]),
            available_spare: b[3],
            spare_threshold: b[4],
            percentage_used: b[5],
            data_units_read: u128_at(32),
            data_units_written: u128_at(48),
            power_cycles: u128_at(112),
            power_on_hours: u128_at(128),
            unsafe_shutdowns: u128_at(144),
            media_errors: u128_at(160),
            error_log_entries: u128_at(176),
        };
        for (field, value) in [
            ("available spare", log.available_spare),
            ("spare threshold", log.spare_threshold),
        ] {
            if value > 100 {
                return Err(SmartError::OutOfRange { field, value });
            }
        }
        Ok(log)
    }

    /// Composite temperature in °C, when reported.
    pub fn temperature_c(&self) -> Option<f64> {
        // In hundredths, so 323 K prints as 49.85, not 49.850000000000023.
        (self.temperature_k != 0).then(|| (f64::from(self.temperature_k) * 100.0 - 27315.0) / 100.0)
    }

    pub fn bytes_read(&self) -> u128 {
        self.data_units_read.saturating_mul(DATA_UNIT_BYTES)
    }

    pub fn bytes_written(&self) -> u128 {
        self.data_units_written.saturating_mul(DATA_UNIT_BYTES)
    }

    /// The critical warning bits set, in words.
    pub fn warnings(&self) -> Vec<String> {
        critical_warning_words(self.critical_warning)
    }

    /// Reasons to look at the drive, in words (empty when the log shows nothing wrong).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let w = self.warnings();
        if !w.is_empty() {
            out.push(format!("NVMe critical warning: {}", w.join(", ")));
        }
        if self.percentage_used >= WEAR_WARN_PERCENT {
            out.push(format!("{}% of rated wear used", self.percentage_used));
        }
        if self.media_errors > 0 {
            out.push(format!(
                "{} media and data integrity errors",
                self.media_errors
            ));
        }
        out
    }
}

/// The bits of a critical warning byte in words; a bit the spec does not define (6, 7) is
/// named by its number rather than dropped.
pub fn critical_warning_words(bits: u8) -> Vec<String> {
    (0..8)
        .filter(|i| bits & (1 << i) != 0)
        .map(|i| match CRITICAL_WARNING_BITS.get(i) {
            Some(w) => (*w).to_string(),
            None => format!("bit {i}"),
        })
        .collect()
}

/// An NVMe controller as sysfs names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Controller {
    /// `nvme0`: also the name of its character device.
    pub name: String,
    /// Major and minor of its character device.
    pub dev: (u32, u32),
    /// `live`, `resetting`, `dead`, … when exposed.
    pub state: Option<String>,
}

/// The controller behind whole disk `disk` in the sysfs tree `sys`; `None` when the disk
/// is not an NVMe namespace.
pub fn controller_of(sys: &Path, disk: &str) -> Option<Controller> {
    let dev = std::fs::canonicalize(sys.join("class/block").join(disk).join("device")).ok()?;
    let name = dev.file_name()?.to_string_lossy().into_owned();
    if is_controller_name(&name) {
        return controller_at(&dev, &name);
    }
    // Native multipath: the namespace hangs off the subsystem; any live path will do.
    if name.starts_with("nvme-subsys") {
        let ctrls: Vec<Controller> = dir_names(&dev)
            .into_iter()
            .filter(|n| is_controller_name(n))
            .filter_map(|n| controller_at(&dev.join(&n), &n))
            .collect();
        return ctrls
            .iter()
            .find(|c| c.state.as_deref() == Some("live"))
            .or(ctrls.first())
            .cloned();
    }
    None
}

fn is_controller_name(n: &str) -> bool {
    n.strip_prefix("nvme")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
}

fn controller_at(dir: &Path, name: &str) -> Option<Controller> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let (major, minor) = read("dev")?
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))?;
    Some(Controller {
        name: name.to_string(),
        dev: (major, minor),
        state: read("state").filter(|s| !s.is_empty()),
    })
}

/// Reads the log of controller `c` through its node in `dev_dir` (`/dev`).
pub fn read_log(dev_dir: &Path, c: &Controller) -> Result<SmartLog, SmartError> {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::fs::MetadataExt;
    let path = dev_dir.join(&c.name);
    let file = std::fs::File::open(&path).map_err(|e| SmartError::Io(path.clone(), e))?;
    let meta = file
        .metadata()
        .map_err(|e| SmartError::Io(path.clone(), e))?;
    if !meta.file_type().is_char_device() || crate::disk_health::split_dev(meta.rdev()) != c.dev {
        return Err(SmartError::WrongNode(path, c.dev.0, c.dev.1));
    }
    let mut buf = [0u8; LOG_LEN];
    sys::get_log_page(&file, &mut buf).map_err(|e| match e {
        sys::Failed::Os(e) => SmartError::Io(path, e),
        sys::Failed::Status(s) => SmartError::Status(s),
        sys::Failed::Unsupported => SmartError::Unsupported,
    })?;
    SmartLog::parse(&buf)
}

type Cached = (PathBuf, String, Instant, Result<SmartLog, String>);
static CACHE: Mutex<Vec<Cached>> = Mutex::new(Vec::new());

/// [`read_log`], reusing a result younger than `max_age` for the same node and controller
/// (namespaces of one controller share it; the console asks every second). Errors are
/// given as their message.
pub fn read_log_cached(
    dev_dir: &Path,
    c: &Controller,
    max_age: Duration,
) -> Result<SmartLog, String> {
    let path = dev_dir.join(&c.name);
    let now = Instant::now();
    {
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, _, r)) = cache
            .iter()
            .find(|(p, n, at, _)| *p == path && *n == c.name && now.duration_since(*at) < max_age)
        {
            return r.clone();
        }
    }
    let r = read_log(dev_dir, c).map_err(|e| e.to_string());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|(p, _, at, _)| *p != path && now.duration_since(*at) < max_age);
    cache.push((path, c.name.clone(), now, r.clone()));
    r
}

/// The admin passthrough ioctl: the hardware path, and the only `unsafe` of the crate.
#[allow(unsafe_code)]
mod sys {
    use super::{ADMIN_TIMEOUT_MS, LOG_LEN};
    use std::os::fd::AsRawFd;

    /// `struct nvme_passthru_cmd` (`struct nvme_admin_cmd`) of `<linux/nvme_ioctl.h>`.
    #[repr(C)]
    #[derive(Default)]
    struct NvmeAdminCmd {
        opcode: u8,
        flags: u8,
        rsvd1: u16,
        nsid: u32,
        cdw2: u32,
        cdw3: u32,
        metadata: u64,
        addr: u64,
        metadata_len: u32,
        data_len: u32,
        cdw10: u32,
        cdw11: u32,
        cdw12: u32,
        cdw13: u32,
        cdw14: u32,
        cdw15: u32,
        timeout_ms: u32,
        result: u32,
    }
    const _: () = assert!(std::mem::size_of::<NvmeAdminCmd>() == 72);

    /// `_IOWR('N', 0x41, struct nvme_admin_cmd)` in the asm-generic encoding (dir << 30 |
    /// size << 16 | type << 8 | nr), which x86, arm and riscv use.
    pub(super) const NVME_IOCTL_ADMIN_CMD: u32 = (3 << 30)
        | ((std::mem::size_of::<NvmeAdminCmd>() as u32) << 16)
        | ((b'N' as u32) << 8)
        | 0x41;
    const OPC_GET_LOG_PAGE: u8 = 0x02;
    const LID_SMART: u32 = 0x02;
    /// The log for the controller as a whole, all namespaces.
    const NSID_ALL: u32 = 0xFFFF_FFFF;
    /// Dwords to transfer, 0-based.
    const NUMD: u32 = (LOG_LEN as u32 / 4) - 1;
    /// Retain Asynchronous Event (CDW10 bit 15, NVMe 1.3): reading the log every few
    /// seconds must not acknowledge a SMART event the kernel or an operator's tool waits
    /// for. Controllers before 1.3 treat the bit as reserved and ignore it.
    const RAE: u32 = 1 << 15;

    pub(super) enum Failed {
        Os(std::io::Error),
        Status(i32),
        #[allow(dead_code)]
        Unsupported,
    }

    /// Get Log Page, SMART / Health Information, into `buf`.
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    ))]
    pub(super) fn get_log_page(
        file: &std::fs::File,
        buf: &mut [u8; LOG_LEN],
    ) -> Result<(), Failed> {
        let mut cmd = NvmeAdminCmd {
            opcode: OPC_GET_LOG_PAGE,
            nsid: NSID_ALL,
            addr: buf.as_mut_ptr() as u64,
            data_len: LOG_LEN as u32,
            cdw10: LID_SMART | RAE | (NUMD << 16),
            timeout_ms: ADMIN_TIMEOUT_MS,
            ..Default::default()
        };
        // SAFETY: the fd is open for the whole call (borrowed from `file`); `cmd` is a
        // live, initialised `struct nvme_passthru_cmd` (layout and size 72 checked above),
        // which the kernel reads and into which it writes back `result`; `addr`/`data_len`
        // describe `buf`, 512 bytes we hold exclusively (`&mut`) until the ioctl returns,
        // and the kernel writes at most `data_len` bytes there. No other memory is named.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                NVME_IOCTL_ADMIN_CMD as _,
                &mut cmd as *mut NvmeAdminCmd,
            )
        };
        match rc {
            0 => Ok(()),
            r if r < 0 => Err(Failed::Os(std::io::Error::last_os_error())),
            status => Err(Failed::Status(status)),
        }
    }

    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    )))]
    pub(super) fn get_log_page(_: &std::fs::File, _: &mut [u8; LOG_LEN]) -> Result<(), Failed> {
        Err(Failed::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log page built field by field at the spec's offsets, independently of `parse`.
    fn page(l: &SmartLog) -> Vec<u8> {
        let mut b = vec![0u8; LOG_LEN];
        b[0] = l.critical_warning;
        b[1..3].copy_from_slice(&l.temperature_k.to_le_bytes());
        b[3] = l.available_spare;
        b[4] = l.spare_threshold;
        b[5] = l.percentage_used;
        for (off, v) in [
            (32, l.data_units_read),
            (48, l.data_units_written),
            (112, l.power_cycles),
            (128, l.power_on_hours),
            (144, l.unsafe_shutdowns),
            (160, l.media_errors),
            (176, l.error_log_entries),
        ] {
            b[off..off + 16].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn sample() -> SmartLog {
        SmartLog {
            critical_warning: 0,
            temperature_k: 318,
            available_spare: 100,
            spare_threshold: 10,
            percentage_used: 3,
            data_units_read: 7_812_500,
            data_units_written: 24_023_438,
            power_cycles: 41,
            power_on_hours: 5123,
            unsafe_shutdowns: 2,
            media_errors: 0,
            error_log_entries: 9,
        }
    }

    #[test]
    fn every_field_round_trips_at_its_offset() {
        let l = sample();
        assert_eq!(SmartLog::parse(&page(&l)).unwrap(), l);
        // Values that need the high bytes of each field: a wrong width or offset shows.
        let big = SmartLog {
            critical_warning: 0xff,
            temperature_k: 0x1234,
            available_spare: 100,
            spare_threshold: 100,
            percentage_used: 255,
            data_units_read: u128::MAX - 1,
            data_units_written: 1 << 100,
            power_cycles: (1 << 64) + 7,
            power_on_hours: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            unsafe_shutdowns: 1 << 127,
            media_errors: u128::from(u64::MAX) + 3,
            error_log_entries: 0xdead_beef << 64,
        };
        assert_eq!(SmartLog::parse(&page(&big)).unwrap(), big);
        // A byte-level check of one field against the spec's layout, by hand.
        let mut b = vec![0u8; LOG_LEN];
        b[128] = 0x03;
        b[129] = 0x14; // 0x1403 = 5123 power-on hours
        b[1] = 0x3e;
        b[2] = 0x01; // 0x013e = 318 K
        b[3] = 100;
        let l = SmartLog::parse(&b).unwrap();
        assert_eq!(l.power_on_hours, 5123);
        assert_eq!(l.temperature_k, 318);
        assert_eq!(l.temperature_c(), Some(44.85));
        // QEMU's default composite temperature.
        let q = SmartLog {
            temperature_k: 323,
            ..l
        };
        assert_eq!(q.temperature_c().unwrap().to_string(), "49.85");
        // Longer input (a bigger buffer) is fine: only the first 512 bytes count.
        let mut long = page(&l);
        long.extend_from_slice(&[0xff; 100]);
        assert_eq!(SmartLog::parse(&long).unwrap(), l);
    }

    #[test]
    fn derived_figures() {
        let l = sample();
        assert_eq!(l.bytes_written(), 24_023_438 * 512_000);
        assert_eq!(l.bytes_read(), 4_000_000_000_000);
        let huge = SmartLog {
            data_units_written: u128::MAX,
            ..l
        };
        assert_eq!(huge.bytes_written(), u128::MAX, "saturates, no overflow");
        assert_eq!(
            SmartLog {
                temperature_k: 0,
                ..l
            }
            .temperature_c(),
            None,
            "0 K means not reported"
        );
        assert!(l.problems().is_empty());
    }

    #[test]
    fn short_and_out_of_range_logs_are_errors() {
        for n in [0, 1, 5, 191, 511] {
            match SmartLog::parse(&vec![0u8; n]) {
                Err(SmartError::Short(got)) => assert_eq!(got, n),
                other => panic!("{n} bytes: {other:?}"),
            }
        }
        let mut b = page(&sample());
        b[3] = 101;
        assert!(matches!(
            SmartLog::parse(&b),
            Err(SmartError::OutOfRange {
                field: "available spare",
                value: 101
            })
        ));
        let mut b = page(&sample());
        b[4] = 200;
        let e = SmartLog::parse(&b).unwrap_err().to_string();
        assert_eq!(e, "the SMART log says spare threshold is 200%, beyond 100%");
    }

    #[test]
    fn critical_warning_bits_in_words() {
        assert!(critical_warning_words(0).is_empty());
        assert_eq!(critical_warning_words(0x01), ["spare below threshold"]);
        assert_eq!(
            critical_warning_words(0b0001_1110),
            [
                "temperature",
                "reliability degraded",
                "read-only",
                "volatile backup failed"
            ]
        );
        assert_eq!(
            critical_warning_words(0xe0),
            ["persistent memory read-only", "bit 6", "bit 7"]
        );
        let l = SmartLog {
            critical_warning: 0x05,
            percentage_used: 93,
            media_errors: 4,
            ..sample()
        };
        assert_eq!(
            l.problems(),
            [
                "NVMe critical warning: spare below threshold, reliability degraded",
                "93% of rated wear used",
                "4 media and data integrity errors"
            ]
        );
        let at_limit = SmartLog {
            percentage_used: WEAR_WARN_PERCENT - 1,
            ..sample()
        };
        assert!(at_limit.problems().is_empty());
    }

    #[test]
    fn the_ioctl_number_matches_linux() {
        // NVME_IOCTL_ADMIN_CMD as the kernel headers expand it on x86_64.
        assert_eq!(sys::NVME_IOCTL_ADMIN_CMD, 0xC048_4E41);
    }

    #[test]
    fn the_controller_from_sysfs() {
        use crate::discover::fake::{FakeDisk, FakeSys};
        let tmp = tempfile::tempdir().unwrap();
        let f = FakeSys::new(tmp.path()).unwrap();
        f.block_disk(&FakeDisk {
            name: "nvme0n1",
            dev: (259, 0),
            nvme_controller: Some(("nvme0", (241, 0))),
            state: Some("live"),
            ..Default::default()
        })
        .unwrap()
        .block_disk(&FakeDisk {
            name: "sda",
            dev: (8, 0),
            state: Some("running"),
            ..Default::default()
        })
        .unwrap()
        .nvme_multipath(
            "nvme1n1",
            (259, 5),
            "nvme-subsys1",
            &[("nvme1", (241, 1), "dead"), ("nvme2", (241, 2), "live")],
        )
        .unwrap();
        assert_eq!(
            controller_of(tmp.path(), "nvme0n1"),
            Some(Controller {
                name: "nvme0".into(),
                dev: (241, 0),
                state: Some("live".into())
            })
        );
        assert_eq!(controller_of(tmp.path(), "sda"), None);
        assert_eq!(controller_of(tmp.path(), "nope"), None);
        let mp = controller_of(tmp.path(), "nvme1n1").unwrap();
        assert_eq!(
            (mp.name.as_str(), mp.dev),
            ("nvme2", (241, 2)),
            "the live path"
        );
    }

    #[test]
    fn a_node_that_is_not_the_controller_is_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        // A regular file where the device node should be: refused, never parsed.
        std::fs::write(tmp.path().join("nvme0"), vec![0u8; LOG_LEN]).unwrap();
        let c = Controller {
            name: "nvme0".into(),
            dev: (241, 0),
            state: None,
        };
        assert!(matches!(
            read_log(tmp.path(), &c),
            Err(SmartError::WrongNode(_, 241, 0))
        ));
        // A character device with another number (/dev/null is 1:3).
        std::os::unix::fs::symlink("/dev/null", tmp.path().join("nvme7")).unwrap();
        let c7 = Controller {
            name: "nvme7".into(),
            dev: (241, 7),
            state: None,
        };
        assert!(matches!(
            read_log(tmp.path(), &c7),
            Err(SmartError::WrongNode(..))
        ));
        // No node at all.
        let c9 = Controller {
            name: "nvme9".into(),
            dev: (241, 9),
            state: None,
        };
        let e = read_log(tmp.path(), &c9).unwrap_err();
        assert!(
            matches!(e, SmartError::Io(_, ref io) if io.kind() == std::io::ErrorKind::NotFound),
            "{e}"
        );
    }

    #[test]
    fn the_ioctl_on_a_device_that_is_not_nvme_is_an_error() {
        // /dev/null as if it were the controller (its own number): the kernel refuses the
        // ioctl (ENOTTY), which must come back as an error, not a log.
        let null = Controller {
            name: "null".into(),
            dev: (1, 3),
            state: None,
        };
        let e = read_log(Path::new("/dev"), &null).unwrap_err();
        assert!(matches!(e, SmartError::Io(..)), "{e}");
    }
}
