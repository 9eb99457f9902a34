//! Kuroko's analyzer: packets from the segment store in, session records and reconstructed
//! files out.
//!
//! Pipeline: [`source`] (segment store or pcap) → [`decode`] (Ethernet, Linux cooked v1/v2,
//! raw IP, BSD NULL/LOOP, PPPoE, VLAN/QinQ, IPv4/6, TCP/UDP/ICMP/SCTP, GRE/ERSPAN/VXLAN
//! tunnels) → [`defrag`] (bounded IP reassembly) →
//! [`engine`] (flow table [`table`], TCP [`reassembly`], protocol identification and
//! parsers through [`app`], FTP data-channel expectations, the reconstruction store
//! [`files`] with [`yara`] on every object) → [`driver`] (session log, durable [`checkpoint`], exactly-once replay).
//!
//! Why etherparse for decoding: it is measured at 28–45 ns/packet here, handles VLAN,
//! QinQ, IPv6 extension headers and snap-truncated frames (its *lax* slicer keeps what
//! it could parse), and never panics on input; smoltcp has no VLAN support. Tunnels are
//! decoded by our own small code on top ([`decode`]).
//!
//! Invariants:
//! - No input bytes make the analyzer panic, loop or grow without bound. Every limit is a
//!   named constant or a config setting; malformed input becomes counters ([`counters`])
//!   and session flags.
//! - Memory is set by config and constants: `max_flows` × (flow state + identification
//!   buffer of 2 × [`app::IDENTIFY_LIMIT`]), out-of-order TCP data up to `stream_buffer`
//!   per direction and `[analyzer] memory_budget` (default [`engine::REASSEMBLY_BUDGET`])
//!   in total, both counted at real cost ([`reassembly::held_cost`]), fixed-size tables
//!   (fragments, expectations, replay window). Objects being reconstructed are bounded
//!   per transfer by the parsers (`kuroko-protocols`) and by `max_object_size`.
//! - Time is packet time, never the wall clock (except for checkpoint pacing).
//! - A session is written to the session log exactly once, also across crashes
//!   ([`driver`] explains how and lists the edge cases), by one analyzer per data
//!   directory (a lock, [`driver::lock`]).
//! - No input puts the analyzer into a crash loop ([`crashguard`]).
//!
//! Must never: write into the segment store, guess missing TCP bytes, or log per packet.

#![deny(unsafe_code)]

pub mod app;
pub mod checkpoint;
pub mod community_id;
pub mod counters;
pub mod crashguard;
pub mod decode;
pub mod defrag;
pub mod driver;
pub mod engine;
pub mod files;
pub mod flow;
pub mod placement;
pub mod position;
pub mod reassembly;
pub mod source;
pub mod store;
pub mod synth;
pub mod sys;
pub mod table;
pub mod yara;

pub use counters::Counters;
pub use driver::{AnalyzeError, Progress, RunOptions, Summary};
pub use engine::{Emitted, Engine, PacketIn, Settings};
pub use position::PacketPos;
pub use source::{PacketSource, PcapSource, SourcePacket};
