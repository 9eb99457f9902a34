//! End-to-end tests for Kuroko: a test site of network namespaces with real servers and real
//! clients, a switch mirror port, and recordings of the traffic each detection rule is about.
//!
//! - [`site`]: the namespaces, the bridge "switch" and its mirror port.
//! - [`scenarios`]: real clients against real servers, one scenario per rule and its twin.
//! - [`record`]: tcpdump on the mirror port while scenarios run.
//! - [`shared`]: one site and one recording per scenario for a whole test binary.
//! - [`pcap_time`]: moving a recording in time (business hours) with editcap.
//! - [`kuroko`]: finding, building and running the `kuroko` binary, reading its JSONL.
//!
//! Everything here runs only inside namespaces this crate creates; nothing is sent to a real
//! external address, every wait is bounded, and every process started is stopped by PID.

pub mod dovecot;
pub mod ftp;
pub mod kuroko;
pub mod netns;
pub mod pcap_time;
pub mod proc;
pub mod record;
pub mod scenarios;
pub mod seed;
pub mod shared;
pub mod site;
pub mod tmux;
pub mod truth;
