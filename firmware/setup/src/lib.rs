//! `kuroko setup`: the field technician's shell on the serial console.
//!
//! A technician with a laptop and a serial cable logs in with the technician credential
//! (set at first use, stored as an Argon2id hash), sees the hardware and the links, chooses
//! the capture and management ports, sets the site's addresses, time and networks, prepares
//! the data disk, runs a self-test, and exports findings to USB.
//!
//! Design:
//! - [`lineedit`]: a line editor for a plain serial line (backspace, Ctrl-U, Tab completion,
//!   no colors, no cursor addressing); with a non-terminal input it reads plain lines, so
//!   scripts and tests drive the same shell.
//! - [`system`]: everything that changes the machine (addresses, clock) goes through the
//!   [`system::System`] trait, so tests record the actions instead of changing the host.
//! - [`shell`]: the commands. Every change is validated before it is saved, saved
//!   atomically (the old config or the new, never half), and applied without a reboot
//!   where possible; the shell says which.
//! - [`privcheck`]: the self-test's reading of what the running children hold (uid,
//!   capabilities, NoNewPrivs, seccomp) and of file modes under `/data` and `/config`.
//! - [`update`]: A/B root updates: the signed bundle, the boot state the initramfs reads,
//!   `update FILE` (verify whole, write the other slot, read back, put on trial).
//!
//! Never: echo a password, store one in clear, or leave a half-written config.

#![forbid(unsafe_code)]

pub mod backoff;
pub mod boot;
pub mod credential;
pub mod crypt;
pub mod erase;
pub mod lineedit;
pub mod privcheck;
pub mod shell;
pub mod system;
pub mod token;
pub mod update;

pub use shell::{Paths, Shell};
pub use system::{RealSystem, System};
