//! Board profiles (TOML), strictly parsed and validated on their own.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read board profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("board profile {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("board profile {path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub board: BoardInfo,
    #[serde(default, rename = "nic")]
    pub nics: Vec<Nic>,
    pub cores: Cores,
    #[serde(default, rename = "disk")]
    pub disks: Vec<Disk>,
    pub serial: Serial,
    #[serde(default)]
    pub usb: Usb,
    #[serde(default)]
    pub panel: Panel,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum NicRole {
    Management,
    Capture,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    /// Kernel interface name.
    pub name: String,
    pub role: NicRole,
    /// Expected kernel driver (`virtio_net`, `ixgbe`, …); unchecked when absent.
    #[serde(default)]
    pub driver: Option<String>,
    /// A missing optional NIC is a note, not an error (e.g. a second capture port).
    #[serde(default)]
    pub optional: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cores {
    pub capture: Vec<usize>,
    pub analyzer: Vec<usize>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DiskRole {
    Root,
    Config,
    Data,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub role: DiskRole,
    /// Block device name under /sys/block (`vda`, `nvme0n1`).
    pub device: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Serial {
    pub device: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
}

fn default_baud() -> u32 {
    115_200
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Usb {
    /// USB port paths (`1-1`) where a stick for the export may appear; empty: any.
    #[serde(default)]
    pub ports: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Console of the front-panel display (`tty1`), or `none`.
    #[serde(default)]
    pub display: String,
}

const BAUDS: [u32; 8] = [
    9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600,
];

impl Profile {
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_path_buf(),
            message: e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })?;
        p.validate()
            .map_err(|(key, message)| ProfileError::Invalid {
                path: path.to_path_buf(),
                key,
                message,
            })?;
        Ok(p)
    }

    /// Self-consistency: every role present, names unique, cores disjoint.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.board.name.trim().is_empty() {
            return Err(("board.name".into(), "must not be empty".into()));
        }
        let mut names = BTreeSet::new();
        for n in &self.nics {
            if !valid_ifname(&n.name) {
                return Err((
                    "nic.name".into(),
                    format!("`{}` is not an interface name", n.name),
                ));
            }
            if !names.insert(n.name.as_str()) {
                return Err(("nic.name".into(), format!("`{}` is listed twice", n.name)));
            }
        }
        if !self.nics.iter().any(|n| n.role == NicRole::Capture) {
            return Err(("nic".into(), "no NIC has role = \"capture\"".into()));
        }
        let mgmt = self
            .nics
            .iter()
            .filter(|n| n.role == NicRole::Management)
            .count();
        if mgmt != 1 {
            return Err((
                "nic".into(),
                format!("exactly one NIC must have role = \"management\" ({mgmt} do)"),
            ));
        }
        if self.cores.capture.is_empty() {
            return Err(("cores.capture".into(), "needs at least one core".into()));
        }
        if self.cores.analyzer.is_empty() {
            return Err(("cores.analyzer".into(), "needs at least one core".into()));
        }
        if let Some(c) = self
            .cores
            .capture
            .iter()
            .find(|c| self.cores.analyzer.contains(c))
        {
            return Err((
                "cores".into(),
                format!(
                    "core {c} is both a capture and an analyzer core; capture cores must be dedicated"
                ),
            ));
        }
        if !self.disks.iter().any(|d| d.role == DiskRole::Data) {
            return Err(("disk".into(), "no disk has role = \"data\"".into()));
        }
        let mut devs = BTreeSet::new();
        for d in &self.disks {
            if !devs.insert(d.device.as_str()) {
                return Err((
                    "disk.device".into(),
                    format!("`{}` has two roles", d.device),
                ));
            }
        }
        if !BAUDS.contains(&self.serial.baud) {
            return Err((
                "serial.baud".into(),
                format!("{} is not a standard rate", self.serial.baud),
            ));
        }
        if !self.serial.device.starts_with("tty") {
            return Err((
                "serial.device".into(),
                format!("`{}` is not a tty device name", self.serial.device),
            ));
        }
        Ok(())
    }

    pub fn capture_nics(&self) -> impl Iterator<Item = &Nic> {
        self.nics.iter().filter(|n| n.role == NicRole::Capture)
    }

    pub fn management_nic(&self) -> Option<&Nic> {
        self.nics.iter().find(|n| n.role == NicRole::Management)
    }

    pub fn disk(&self, role: DiskRole) -> Option<&Disk> {
        self.disks.iter().find(|d| d.role == role)
    }
}

fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() < 16
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_are_valid() {
        for (name, _) in crate::SHIPPED {
            crate::shipped(name).unwrap().unwrap();
        }
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let base = crate::SHIPPED[0].1;
        let overlapping = base.replace("analyzer = [0]", "analyzer = [1]");
        let e = Profile::parse(&overlapping, Path::new("b.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.toml") && e.contains("core 1 is both"), "{e}");
        let e = Profile::parse(&format!("{base}\n[extra]\n"), Path::new("b.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field") || e.contains("extra"), "{e}");
        let two_mgmt = base.replace("role = \"capture\"", "role = \"management\"");
        let e = Profile::parse(&two_mgmt, Path::new("b.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("capture"), "{e}");
        let no_data = base.replace("role = \"data\"", "role = \"config\"");
        let e = Profile::parse(&no_data, Path::new("b.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("two roles") || e.contains("data"), "{e}");
    }
}
