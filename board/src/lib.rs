//! Board support: which NICs capture and which one manages, which cores capture and which
//! analyze, where the data disk is, the serial console, USB ports and the front panel.
//!
//! A board is described by a TOML profile (`profiles/*.toml`, shipped in the image). At
//! start-up and in `kuroko setup` the profile is checked twice: against itself
//! ([`profile::Profile::validate`]: roles present, cores disjoint, names unique) and against
//! the hardware found in `/sys` ([`discover::Hardware`], [`check::check`]), so a technician
//! is told in words what does not match ("capture NIC eth1 not found; this machine has
//! eth0 (virtio_net, link up)") instead of discovering it as a silent empty capture.
//!
//! Discovery reads a `/sys` tree given as a path, so tests run it against fake trees.
//! [`disk_health`] finds the disks under the data directory and what they expose about
//! their health (state, I/O errors, temperature, load, file-system errors) for the console
//! and `kuroko status`; what a board does not expose stays unknown, never assumed fine.
//! [`hardening`] says what the image sets in the kernel (sysctls, command line, inittab,
//! USB mount options); its tests compare the image's files with it.
//! This crate only reads the system, with one exception kept in one module:
//! [`capture_port`] silences a capture NIC (IPv6, ARP, multicast, addresses off, an egress
//! drop) before capture or the boot brings it up. Its one `unsafe` is the NVMe admin ioctl
//! that reads a drive's SMART log ([`nvme_smart`]).

#![deny(unsafe_code)]

pub mod capture_port;
pub mod check;
pub mod discover;
pub mod disk_health;
pub mod hardening;
pub mod nvme_smart;
pub mod profile;
pub mod sysfs_text;

pub use check::{Mismatch, check};
pub use discover::Hardware;
pub use disk_health::{DataDisks, DiskHealth, IoCounters};
pub use nvme_smart::SmartLog;
pub use profile::{Profile, ProfileError};

/// The profiles shipped with the firmware, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("qemu", include_str!("../profiles/qemu.toml")),
    ("generic-x86", include_str!("../profiles/generic-x86.toml")),
];

/// A shipped profile by name.
pub fn shipped(name: &str) -> Option<Result<Profile, ProfileError>> {
    SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Profile::parse(text, std::path::Path::new(&format!("<shipped {n}>"))))
}
