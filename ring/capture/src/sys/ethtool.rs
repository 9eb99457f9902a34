//! Offloads that merge received frames (GRO, LRO) or build frames larger than the wire's
//! (TSO, GSO), switched off on capture interfaces with the legacy `SIOCETHTOOL` value
//! commands, and read back to check.
//!
//! Why: with GRO/LRO on, the kernel hands AF_PACKET one 64 KiB "frame" for dozens of wire
//! frames; stored as such, packet counts, pcap exports and evidence are not the wire's.
//! The legacy get/set commands are enough for these four features and need no string-set
//! lookup; switching needs CAP_NET_ADMIN (start-up only), reading needs nothing. What stays
//! on (a driver that refuses, an interface re-created after start-up) is reported, and the
//! engine counts every frame longer than the MTU plus link headers as `coalesced`.

use std::os::fd::RawFd;

const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_GGSO: u32 = 0x23;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_GFLAGS: u32 = 0x25;
const ETHTOOL_SFLAGS: u32 = 0x26;
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;
const ETH_FLAG_LRO: u32 = 1 << 15;

/// Bits of the offload mask (stats page `offloads_on`).
pub const OFFLOAD_GRO: u64 = 1;
pub const OFFLOAD_LRO: u64 = 2;
pub const OFFLOAD_TSO: u64 = 4;
pub const OFFLOAD_GSO: u64 = 8;
/// The offloads could not be read at all (no ethtool support): unknown, not "off".
pub const OFFLOAD_UNKNOWN: u64 = 1 << 63;

/// Names of the bits of an offload mask, for status lines.
pub fn offload_names(mask: u64) -> Vec<&'static str> {
    let mut v = Vec::new();
    for (bit, name) in [
        (OFFLOAD_GRO, "gro"),
        (OFFLOAD_LRO, "lro"),
        (OFFLOAD_TSO, "tso"),
        (OFFLOAD_GSO, "gso"),
        (OFFLOAD_UNKNOWN, "unknown"),
    ] {
        if mask & bit != 0 {
            v.push(name);
        }
    }
    v
}

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

fn value_cmd(fd: RawFd, name: &str, cmd: u32, data: u32) -> std::io::Result<u32> {
    let mut v = EthtoolValue { cmd, data };
    let mut req = super::packet::ifreq_for(name);
    req.ifr_ifru.ifru_data = (&mut v as *mut EthtoolValue).cast();
    // SAFETY: `req` is a valid ifreq whose data pointer refers to `v`, alive for the call;
    // the value commands read and write exactly one `ethtool_value`.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL as _, &mut req) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(v.data)
}

/// Which merging offloads are on for `name` (mask of `OFFLOAD_*`), asked through `fd` (any
/// socket in the interface's namespace).
pub fn merging_offloads(fd: RawFd, name: &str) -> u64 {
    let mut mask = 0;
    let mut known = false;
    for (cmd, bit) in [
        (ETHTOOL_GGRO, OFFLOAD_GRO),
        (ETHTOOL_GTSO, OFFLOAD_TSO),
        (ETHTOOL_GGSO, OFFLOAD_GSO),
    ] {
        if let Ok(v) = value_cmd(fd, name, cmd, 0) {
            known = true;
            if v != 0 {
                mask |= bit;
            }
        }
    }
    if let Ok(flags) = value_cmd(fd, name, ETHTOOL_GFLAGS, 0) {
        known = true;
        if flags & ETH_FLAG_LRO != 0 {
            mask |= OFFLOAD_LRO;
        }
    }
    if known { mask } else { OFFLOAD_UNKNOWN }
}

/// Switches GRO, LRO, TSO and GSO off on `name` (needs CAP_NET_ADMIN) and returns what is
/// still on afterwards, read back from the driver.
pub fn disable_merging_offloads(fd: RawFd, name: &str) -> u64 {
    for cmd in [ETHTOOL_SGRO, ETHTOOL_STSO, ETHTOOL_SGSO] {
        let _ = value_cmd(fd, name, cmd, 0);
    }
    if let Ok(flags) = value_cmd(fd, name, ETHTOOL_GFLAGS, 0)
        && flags & ETH_FLAG_LRO != 0
    {
        let _ = value_cmd(fd, name, ETHTOOL_SFLAGS, flags & !ETH_FLAG_LRO);
    }
    merging_offloads(fd, name)
}
