//! `kuroko-capture`: live capture from AF_PACKET TPACKET_V3 rings into the segment store,
//! with every loss counted by cause in a stats page other processes map read-only.
//!
//! What it is for: take everything the mirror port delivers and hand it to the segment
//! store (`kuroko-ring`) on dedicated cores, as the frames were on the wire (stripped VLAN
//! tags put back), with nanosecond (hardware when the NIC offers it) timestamps and the
//! capture interface of each frame.
//!
//! Invariants:
//! - After [`Capture::start`] returns, the capture threads allocate nothing, take no lock,
//!   format nothing and log nothing (allocations are checked by a counting global allocator
//!   in `tests/ring_veth.rs`).
//! - At most one copy of a packet's bytes in user space: from the kernel ring block into the
//!   store's aligned block buffer (the store's compact record format does not match
//!   TPACKET_V3's layout, and records must not be split across ring-block boundaries), or
//!   none with zero-copy capture (`[capture] zero_copy`, [`sys::zc`]): the ring block
//!   itself is written to the store (a ring block, format version 3) from the ring's
//!   memory, VLAN tags put back in place. The stats page counts the bytes stored
//!   (`stored_bytes`) and those stored without a copy (`zero_copy_bytes`). The copy is
//!   what separated us from stenotype's zero-copy writer at large frames: at 1500 B the
//!   capture thread's time goes to memory traffic, not instructions (profile on the dev
//!   VM: crc32c of the closed store block ~18 %, the copy ~16 %, waiting for ring lines the
//!   kernel wrote on the sending core ~24 % despite the prefetch in `sys::packet`, block
//!   I/O submission and wake-ups ~12 %); in isolation, reading a packet's header line costs
//!   65–100 ns, its 1500 bytes 105–135 ns, copying them into the cycled store buffers
//!   210–270 ns and the crc another 25–40 ns.
//! - Every packet the kernel delivers is either stored or counted: kernel ring drops
//!   (`PACKET_STATISTICS`) while the capture kept up, store backpressure (the store refused
//!   frames or held the capture thread while the ring overflowed), frames left unread at
//!   stop, NIC drops (`/sys/class/net/IF/statistics`, deltas accumulated so a driver
//!   counter reset hides nothing), snaplen truncation. Counters only grow.
//! - Never blind silently: a link that goes down or an interface that disappears leaves the
//!   capture thread asleep in poll (its socket error cleared), the gap is recorded as an
//!   interval on the stats page, and an interface re-created under the same name is
//!   captured again by re-binding the same socket. Frames longer than the MTU plus link
//!   headers (merged by GRO/LRO/TSO, which start-up switches off) are counted as coalesced.
//! - A ring block goes back to the kernel only after its packets were copied, or (zero-copy)
//!   after the write of the block itself completed.
//! - Privileges: CAP_NET_RAW (and CAP_NET_ADMIN for the offloads, CAP_IPC_LOCK,
//!   CAP_SYS_NICE) are used only during [`Capture::start`]; then every thread of the
//!   capture drops all capabilities (bounding, effective, permitted, inheritable) and sets
//!   PR_SET_NO_NEW_PRIVS. A rebind to a re-created interface needs none: `bind(2)` on a
//!   packet socket we already hold is not a privileged operation, only creating one is.
//!   Sockets in a PACKET_FANOUT group (`threads_per_interface > 1`), which the kernel
//!   never lets bind again, are bound to every interface with a filter that picks the
//!   capture interface by ifindex: a re-created interface gets a new filter instead.
//!
//! What it must never do: block the capture thread on the disk (the store answers
//! backpressure instead), panic on a frame, or store a frame other than as it arrived.
//!
//! Use: [`Capture::start`] with [`CaptureOptions`] and one [`RecordSink`] per capture
//! thread ([`StoreSink`] over `kuroko_ring::SegmentWriter` in non-blocking mode), call
//! [`Capture::tick`] a few times a second, [`Capture::stop`] at the end (returns the final
//! [`StatsSnapshot`]). Other processes read the live counters with
//! [`StatsReader::open`]`(data_dir)?.snapshot()`.
//!
//! Threads: the engine runs one thread per socket (interface × `threads_per_interface`,
//! joined by PACKET_FANOUT flow hash so a flow stays in order on one thread), up to
//! `max_writers`. The store takes one writer per data directory; with several threads
//! `kuroko capture` splits it into lanes (`kuroko_ring::LaneWriter`, [`StoreSink::lane`]):
//! each thread copies and checksums whole blocks on its own core and hands closed blocks
//! to the shared writer (a `try_lock` per ~1 MiB block, never per packet).
//!
//! Capacity per core, and how many cores 10 GbE and 25 GbE need: [`capacity`] (a model
//! from measured per-packet costs, not a line-rate test).
//!
//! `unsafe` is confined to [`sys`] (socket options, the ring mapping, the stats page
//! mapping, capabilities, signals); everything else is safe Rust.

#![deny(unsafe_code)]

pub mod capacity;
pub mod engine;
pub mod filter;
pub mod frame;
pub mod gaps;
pub mod nic;
pub mod sink;
pub mod stats;
pub mod store_sink;
pub mod sys;

pub use engine::{Capture, CaptureError, CaptureOptions, ZeroCopy, in_hot_path};
pub use sink::{Appended, PacketMeta, RecordSink};
pub use stats::{CaptureState, Drops, InterfaceStats, StatsReader, StatsSnapshot};
pub use store_sink::StoreSink;
