//! What the hardware is, read from a `/sys` tree.
//!
//! Everything is read from a root path (`/sys` on the appliance, a temporary tree in
//! tests). Unreadable or odd entries are skipped, never fatal: discovery must work on a
//! half-broken box, since that is when a technician runs it.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NicInfo {
    pub name: String,
    /// Kernel driver (`virtio_net`); `None` for virtual interfaces (lo, veth, bridges).
    pub driver: Option<String>,
    pub mac: Option<String>,
    /// `up`, `down`, `unknown`, … from operstate.
    pub operstate: String,
    /// Link detected (carrier), when the kernel says.
    pub carrier: Option<bool>,
    pub speed_mbps: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockInfo {
    pub name: String,
    pub size_bytes: u64,
    pub removable: bool,
    pub rotational: bool,
    pub model: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hardware {
    pub nics: Vec<NicInfo>,
    /// Online CPUs.
    pub cpus: Vec<usize>,
    /// NUMA node → its CPUs.
    pub numa: Vec<(usize, Vec<usize>)>,
    pub disks: Vec<BlockInfo>,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Parses a kernel CPU list (`0-3,8,10-11`). Malformed parts are skipped; a huge range is
/// capped so a corrupt file cannot make us allocate without bound.
pub fn parse_cpulist(s: &str) -> Vec<usize> {
    const MAX_CPUS: usize = 4096;
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend((a..=b.min(a.saturating_add(MAX_CPUS))).take(MAX_CPUS));
                }
            }
            None => {
                if let Ok(c) = part.parse() {
                    out.push(c);
                }
            }
        }
        if out.len() > MAX_CPUS {
            out.truncate(MAX_CPUS);
            break;
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

impl Hardware {
    /// Reads the machine's hardware from `/sys`.
    pub fn discover() -> Hardware {
        Self::from_sys(Path::new("/sys"))
    }

    pub fn from_sys(sys: &Path) -> Hardware {
        let mut hw = Hardware::default();
        for name in dir_names(&sys.join("class/net")) {
            let base = sys.join("class/net").join(&name);
            let driver = std::fs::read_link(base.join("device/driver"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            hw.nics.push(NicInfo {
                driver,
                mac: read(&base.join("address")),
                operstate: read(&base.join("operstate")).unwrap_or_else(|| "unknown".into()),
                carrier: read(&base.join("carrier")).and_then(|c| match c.as_str() {
                    "1" => Some(true),
                    "0" => Some(false),
                    _ => None,
                }),
                speed_mbps: read(&base.join("speed"))
                    .and_then(|s| s.parse::<i64>().ok())
                    .and_then(|s| u32::try_from(s).ok()),
                name,
            });
        }
        hw.cpus = read(&sys.join("devices/system/cpu/online"))
            .map(|s| parse_cpulist(&s))
            .unwrap_or_default();
        for node in dir_names(&sys.join("devices/system/node")) {
            if let Some(n) = node
                .strip_prefix("node")
                .and_then(|n| n.parse::<usize>().ok())
                && let Some(list) =
                    read(&sys.join("devices/system/node").join(&node).join("cpulist"))
            {
                hw.numa.push((n, parse_cpulist(&list)));
            }
        }
        hw.numa.sort();
        for name in dir_names(&sys.join("block")) {
            if name.starts_with("loop") || name.starts_with("ram") {
                continue;
            }
            let base = sys.join("block").join(&name);
            hw.disks.push(BlockInfo {
                size_bytes: read(&base.join("size"))
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0)
                    * 512,
                removable: read(&base.join("removable")).as_deref() == Some("1"),
                rotational: read(&base.join("queue/rotational")).as_deref() == Some("1"),
                model: read(&base.join("device/model"))
                    .map(|m| crate::sysfs_text::clean(&m))
                    .filter(|m| !m.is_empty()),
                name,
            });
        }
        hw
    }

    pub fn nic(&self, name: &str) -> Option<&NicInfo> {
        self.nics.iter().find(|n| n.name == name)
    }

    pub fn disk(&self, name: &str) -> Option<&BlockInfo> {
        self.disks.iter().find(|d| d.name == name)
    }

    /// One line per NIC for messages and the setup shell: `eth0 (virtio_net, up)`.
    pub fn describe_nics(&self) -> String {
        self.nics
            .iter()
            .map(|n| {
                format!(
                    "{} ({}, {})",
                    n.name,
                    n.driver.as_deref().unwrap_or("virtual"),
                    match n.carrier {
                        Some(true) => "link up",
                        Some(false) => "no link",
                        None => n.operstate.as_str(),
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The entries of a /sys directory, sorted; none when it cannot be read.
pub(crate) fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Builds fake `/sys` trees (tests of this crate and of the setup shell).
pub mod fake {
    use super::*;
    use std::fs;

    pub struct FakeSys {
        pub root: PathBuf,
    }

    impl FakeSys {
        pub fn new(root: &Path) -> std::io::Result<FakeSys> {
            fs::create_dir_all(root.join("class/net"))?;
            fs::create_dir_all(root.join("block"))?;
            fs::create_dir_all(root.join("devices/system/cpu"))?;
            Ok(FakeSys {
                root: root.to_path_buf(),
            })
        }
        pub fn nic(
            &self,
            name: &str,
            driver: Option<&str>,
            mac: &str,
            up: bool,
        ) -> std::io::Result<&Self> {
            let d = self.root.join("class/net").join(name);
            fs::create_dir_all(&d)?;
            fs::write(d.join("address"), format!("{mac}\n"))?;
            fs::write(d.join("operstate"), if up { "up\n" } else { "down\n" })?;
            fs::write(d.join("carrier"), if up { "1\n" } else { "0\n" })?;
            if let Some(drv) = driver {
                let target = self.root.join("bus/drivers").join(drv);
                fs::create_dir_all(&target)?;
                fs::create_dir_all(d.join("device"))?;
                std::os::unix::fs::symlink(&target, d.join("device/driver"))?;
            }
            Ok(self)
        }
        pub fn cpus(&self, online: &str) -> std::io::Result<&Self> {
            fs::write(
                self.root.join("devices/system/cpu/online"),
                format!("{online}\n"),
            )?;
            Ok(self)
        }
        pub fn numa(&self, node: usize, cpus: &str) -> std::io::Result<&Self> {
            let d = self.root.join(format!("devices/system/node/node{node}"));
            fs::create_dir_all(&d)?;
            fs::write(d.join("cpulist"), format!("{cpus}\n"))?;
            Ok(self)
        }
        pub fn disk(&self, name: &str, sectors: u64, removable: bool) -> std::io::Result<&Self> {
            let d = self.root.join("block").join(name);
            fs::create_dir_all(d.join("queue"))?;
            fs::write(d.join("size"), format!("{sectors}\n"))?;
            fs::write(d.join("removable"), if removable { "1\n" } else { "0\n" })?;
            fs::write(d.join("queue/rotational"), "0\n")?;
            Ok(self)
        }

        /// A whole disk (or a stacked device with `slaves`) with the health attributes
        /// given, its `class/block` and `dev/block/MAJ:MIN` links; see
        /// [`crate::disk_health`].
        pub fn block_disk(&self, d: &FakeDisk) -> std::io::Result<&Self> {
            let dir = self.root.join("block").join(d.name);
            fs::create_dir_all(&dir)?;
            self.links(d.name, &dir, d.dev)?;
            if !d.bare {
                fs::create_dir_all(dir.join("queue"))?;
                fs::write(dir.join("size"), format!("{}\n", d.sectors))?;
                fs::write(dir.join("removable"), "0\n")?;
                fs::write(dir.join("ro"), if d.read_only { "1\n" } else { "0\n" })?;
                fs::write(
                    dir.join("queue/rotational"),
                    if d.rotational { "1\n" } else { "0\n" },
                )?;
            }
            if let Some(stat) = d.stat {
                fs::write(dir.join("stat"), format!("{stat}\n"))?;
            }
            let dev = dir.join("device");
            if let Some((ctrl, (major, minor))) = d.nvme_controller {
                // As in real sysfs: the namespace's `device` is its controller's directory.
                let c = self.root.join("devices/nvme").join(ctrl);
                fs::create_dir_all(&c)?;
                fs::write(c.join("dev"), format!("{major}:{minor}\n"))?;
                std::os::unix::fs::symlink(&c, &dev)?;
            }
            let attrs = [
                ("model", d.model),
                ("state", d.state),
                ("ioerr_cnt", d.ioerr_cnt),
                ("iotmo_cnt", d.iotmo_cnt),
            ];
            for (file, value) in attrs {
                if let Some(v) = value {
                    fs::create_dir_all(&dev)?;
                    fs::write(dev.join(file), format!("{v}\n"))?;
                }
            }
            if let Some(t) = d.temp_millic {
                let h = dev.join("hwmon/hwmon3");
                fs::create_dir_all(&h)?;
                fs::write(h.join("temp1_input"), format!("{t}\n"))?;
            }
            if let Some(t) = d.nvme_temp_millic {
                let h = dev.join("hwmon1");
                fs::create_dir_all(&h)?;
                fs::write(h.join("temp1_input"), format!("{t}\n"))?;
            }
            if !d.slaves.is_empty() {
                fs::create_dir_all(dir.join("slaves"))?;
                for s in d.slaves {
                    std::os::unix::fs::symlink(
                        self.root.join("class/block").join(s),
                        dir.join("slaves").join(s),
                    )?;
                }
            }
            Ok(self)
        }

        /// An NVMe namespace `disk` under native multipath: its `device` is subsystem
        /// `subsys`, which lists its controllers (name, char device number, state).
        pub fn nvme_multipath(
            &self,
            disk: &str,
            dev: (u32, u32),
            subsys: &str,
            ctrls: &[(&str, (u32, u32), &str)],
        ) -> std::io::Result<&Self> {
            let dir = self.root.join("block").join(disk);
            fs::create_dir_all(&dir)?;
            self.links(disk, &dir, dev)?;
            let s = self.root.join("devices/nvme-subsystem").join(subsys);
            for (name, (major, minor), state) in ctrls {
                fs::create_dir_all(s.join(name))?;
                fs::write(s.join(name).join("dev"), format!("{major}:{minor}\n"))?;
                fs::write(s.join(name).join("state"), format!("{state}\n"))?;
            }
            fs::create_dir_all(&s)?;
            std::os::unix::fs::symlink(&s, dir.join("device"))?;
            Ok(self)
        }

        /// Partition `part` of `disk` (made by [`FakeSys::block_disk`]).
        pub fn partition(&self, disk: &str, part: &str, dev: (u32, u32)) -> std::io::Result<&Self> {
            let dir = self.root.join("block").join(disk).join(part);
            fs::create_dir_all(&dir)?;
            fs::write(dir.join("partition"), "1\n")?;
            self.links(part, &dir, dev)?;
            Ok(self)
        }

        /// `fs/ext4/DEV/errors_count`.
        pub fn ext4_errors(&self, dev: &str, errors: u64) -> std::io::Result<&Self> {
            let d = self.root.join("fs/ext4").join(dev);
            fs::create_dir_all(&d)?;
            fs::write(d.join("errors_count"), format!("{errors}\n"))?;
            Ok(self)
        }

        fn links(&self, name: &str, dir: &Path, (major, minor): (u32, u32)) -> std::io::Result<()> {
            fs::create_dir_all(self.root.join("class/block"))?;
            fs::create_dir_all(self.root.join("dev/block"))?;
            std::os::unix::fs::symlink(dir, self.root.join("class/block").join(name))?;
            std::os::unix::fs::symlink(dir, self.root.join(format!("dev/block/{major}:{minor}")))
        }
    }

    /// A disk for [`FakeSys::block_disk`]; `None` attributes are not created at all.
    #[derive(Default)]
    pub struct FakeDisk<'a> {
        pub name: &'a str,
        pub dev: (u32, u32),
        /// Create nothing but the directory and its links (a disk exposing nothing).
        pub bare: bool,
        pub sectors: u64,
        pub rotational: bool,
        pub read_only: bool,
        pub model: Option<&'a str>,
        pub state: Option<&'a str>,
        pub ioerr_cnt: Option<&'a str>,
        pub iotmo_cnt: Option<&'a str>,
        /// drivetemp style: `device/hwmon/hwmonN/temp1_input`.
        pub temp_millic: Option<i64>,
        /// NVMe style: `device/hwmonN/temp1_input`.
        pub nvme_temp_millic: Option<i64>,
        /// An NVMe namespace: `device` links to this controller (name, char device number).
        pub nvme_controller: Option<(&'a str, (u32, u32))>,
        /// `/sys/block/X/stat` line.
        pub stat: Option<&'a str>,
        /// Members of a stacked device (names under `class/block`).
        pub slaves: &'a [&'a str],
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeSys;
    use super::*;

    #[test]
    fn cpulists() {
        assert_eq!(parse_cpulist("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpulist("x,2,1-0"), vec![2]);
        assert!(parse_cpulist("0-18446744073709551615").len() <= 4097);
        assert_eq!(
            parse_cpulist("18446744073709551615-18446744073709551615").len(),
            1
        );
    }

    #[test]
    fn reads_a_fake_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let f = FakeSys::new(tmp.path()).unwrap();
        f.nic("eth0", Some("virtio_net"), "52:54:00:12:34:56", true)
            .unwrap();
        f.nic("lo", None, "00:00:00:00:00:00", true).unwrap();
        f.cpus("0-1").unwrap().numa(0, "0-1").unwrap();
        f.disk("vda", 2_097_152, false)
            .unwrap()
            .disk("sdb", 1000, true)
            .unwrap()
            .disk("loop0", 8, false)
            .unwrap();
        let hw = Hardware::from_sys(tmp.path());
        assert_eq!(
            hw.nic("eth0").unwrap().driver.as_deref(),
            Some("virtio_net")
        );
        assert_eq!(hw.nic("eth0").unwrap().carrier, Some(true));
        assert_eq!(hw.nic("lo").unwrap().driver, None);
        assert_eq!(hw.cpus, vec![0, 1]);
        assert_eq!(hw.numa, vec![(0, vec![0, 1])]);
        assert_eq!(hw.disk("vda").unwrap().size_bytes, 1 << 30);
        assert!(hw.disk("sdb").unwrap().removable);
        assert!(hw.disk("loop0").is_none());
        assert_eq!(
            hw.describe_nics(),
            "eth0 (virtio_net, link up), lo (virtual, link up)"
        );
    }

    #[test]
    fn this_machine_has_cpus_and_interfaces() {
        let hw = Hardware::discover();
        assert!(!hw.cpus.is_empty(), "no online CPU found in /sys");
        assert!(hw.nic("lo").is_some(), "no lo in /sys/class/net");
    }
}
