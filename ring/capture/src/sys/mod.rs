//! OS glue: the only module of this crate with `unsafe`.
//!
//! - [`ethtool`]: switching off offloads that merge frames (GRO, LRO, TSO, GSO);
//! - [`packet`]: the AF_PACKET TPACKET_V3 socket and its mmap'd receive ring;
//! - [`process`]: CPU pinning, SCHED_FIFO, `mlockall`, dropping capabilities;
//! - [`shared`]: the atomic view of the mmap'd stats page;
//! - [`zc`]: ring blocks written to disk straight from the ring mapping (zero-copy).
//!
//! Each `unsafe` block says which kernel or memory invariant makes it sound; everything
//! outside this module is safe Rust.

#![allow(unsafe_code)]

pub mod ethtool;
pub mod packet;
pub mod process;
pub mod shared;
pub mod zc;

/// A system call failed.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("{what}: {source}")]
    Os {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("interface name `{0}` contains a NUL byte")]
    BadInterfaceName(String),
    #[error("no network interface `{name}` ({source}); list them with `ip link`")]
    NoSuchInterface {
        name: String,
        source: std::io::Error,
    },
}
