//! A profile against the hardware: what does not match, in words a technician can act on.

use crate::discover::Hardware;
use crate::profile::{NicRole, Profile};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Capture cannot work as configured (vs. a note worth reading).
    pub fatal: bool,
    pub message: String,
}

/// Every difference between the profile and the machine; empty when they agree.
pub fn check(profile: &Profile, hw: &Hardware) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut say = |fatal: bool, message: String| out.push(Mismatch { fatal, message });
    for nic in &profile.nics {
        let role = match nic.role {
            NicRole::Capture => "capture",
            NicRole::Management => "management",
        };
        match hw.nic(&nic.name) {
            None => say(
                !nic.optional,
                format!(
                    "{role} NIC {} not found; this machine has: {}",
                    nic.name,
                    hw.describe_nics()
                ),
            ),
            Some(found) => {
                if let Some(want) = &nic.driver
                    && found.driver.as_deref() != Some(want.as_str())
                {
                    say(
                        true,
                        format!(
                            "{role} NIC {} uses driver {} but the profile expects {want}",
                            nic.name,
                            found.driver.as_deref().unwrap_or("none (virtual)")
                        ),
                    );
                }
                if nic.role == NicRole::Capture && found.carrier == Some(false) {
                    say(
                        false,
                        format!(
                            "capture NIC {} has no link: check the mirror-port cable",
                            nic.name
                        ),
                    );
                }
            }
        }
    }
    for (what, cores) in [
        ("capture", &profile.cores.capture),
        ("analyzer", &profile.cores.analyzer),
    ] {
        for c in cores {
            if !hw.cpus.contains(c) {
                say(
                    true,
                    format!(
                        "{what} core {c} does not exist; online CPUs: {}",
                        hw.cpus
                            .iter()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                );
            }
        }
    }
    if hw.numa.len() > 1 {
        let node_of = |c: usize| {
            hw.numa
                .iter()
                .find(|(_, cs)| cs.contains(&c))
                .map(|(n, _)| *n)
        };
        let nodes: std::collections::BTreeSet<_> = profile
            .cores
            .capture
            .iter()
            .filter_map(|c| node_of(*c))
            .collect();
        if nodes.len() > 1 {
            say(
                false,
                format!("capture cores span NUMA nodes {nodes:?}; keep them on the NICs' node"),
            );
        }
    }
    for d in &profile.disks {
        if hw.disk(&d.device).is_none() {
            say(
                true,
                format!(
                    "{} disk {} not found; this machine has: {}",
                    match d.role {
                        crate::profile::DiskRole::Root => "root",
                        crate::profile::DiskRole::Config => "config",
                        crate::profile::DiskRole::Data => "data",
                    },
                    d.device,
                    hw.disks
                        .iter()
                        .map(|b| b.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::fake::FakeSys;

    fn qemu_like(root: &std::path::Path) {
        let f = FakeSys::new(root).unwrap();
        f.nic("eth0", Some("virtio_net"), "52:54:00:00:00:01", true)
            .unwrap();
        f.nic("eth1", Some("virtio_net"), "52:54:00:00:00:02", true)
            .unwrap();
        f.nic("lo", None, "00:00:00:00:00:00", true).unwrap();
        f.cpus("0-1").unwrap();
        f.disk("vda", 1 << 21, false)
            .unwrap()
            .disk("vdb", 1 << 15, false)
            .unwrap()
            .disk("vdc", 1 << 23, false)
            .unwrap();
    }

    #[test]
    fn qemu_profile_matches_the_qemu_board() {
        let tmp = tempfile::tempdir().unwrap();
        qemu_like(tmp.path());
        let profile = crate::shipped("qemu").unwrap().unwrap();
        assert_eq!(check(&profile, &Hardware::from_sys(tmp.path())), vec![]);
    }

    #[test]
    fn a_mismatch_is_said_clearly() {
        let tmp = tempfile::tempdir().unwrap();
        let f = FakeSys::new(tmp.path()).unwrap();
        f.nic("eth0", Some("e1000"), "52:54:00:00:00:01", true)
            .unwrap();
        f.nic("enp3s0", Some("igb"), "52:54:00:00:00:02", false)
            .unwrap();
        f.cpus("0").unwrap();
        f.disk("vda", 1 << 21, false).unwrap();
        let profile = crate::shipped("qemu").unwrap().unwrap();
        let found = check(&profile, &Hardware::from_sys(tmp.path()));
        let text: Vec<&str> = found.iter().map(|m| m.message.as_str()).collect();
        assert!(
            text.contains(
                &"management NIC eth0 uses driver e1000 but the profile expects virtio_net"
            ),
            "{text:?}"
        );
        assert!(
            text.contains(&"capture NIC eth1 not found; this machine has: enp3s0 (igb, no link), eth0 (e1000, link up)"),
            "{text:?}"
        );
        assert!(
            text.contains(&"capture core 1 does not exist; online CPUs: 0"),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("data disk vdc not found")),
            "{text:?}"
        );
        assert!(found.iter().all(|m| m.fatal));
    }
}
