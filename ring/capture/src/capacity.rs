//! Capacity model: what one capture core sustains, and how many cores 10 GbE and 25 GbE
//! line rate need, from measured CPU per packet. Documentation only (no code).
//!
//! # Inputs: CPU per captured packet
//!
//! From `cargo xtask bench capture` (trafgen on CPU 0, the capture alone on CPU 1, CPU
//! seconds of the capture process divided by packets stored, 2 s trials). **These figures
//! were taken on the shared 2-core development VM at load average 13–18 (issue 16, first
//! round), not on a quiet machine and not on appliance hardware; they were not re-measured
//! for this model.** The generator reached only ≈ 80 kpps under that load, so the per-packet
//! cost includes fixed per-wakeup costs amortised over fewer packets than at line rate
//! (pessimistic), and cache behaviour of a contended host (pessimistic too).
//!
//! | CPU per packet (µs) | 64 B frames | 1500 B frames |
//! |---|---|---|
//! | wrapped ring ("warm", the steady state of a running appliance) | 0.25 | 1.12 |
//! | fresh store (first pass over new slot files) | 0.75 | 1.00 |
//! | stenotype, same run (reference) | 0.13 | 0.375 |
//!
//! On a quiet run (issue 16's first measurement) Kuroko took ≈ 0.96 µs per 1500 B packet. In
//! isolation (see the crate docs) a 1500 B packet costs 65–100 ns for its header line,
//! 105–135 ns to read its bytes, 210–270 ns to copy them into the store's block buffer and
//! 25–40 ns of crc32c: ≈ 0.4–0.55 µs of the ≈ 1 µs is the copy path that the zero-copy
//! block kind removes.
//!
//! Cost is modelled as linear in the frame size between the two measured points:
//! c(s) = c(64) + (s − 64) · (c(1500) − c(64)) / 1436. Warm: c = 0.25 µs + 0.61 ns/B;
//! fresh: c = 0.75 µs + 0.17 ns/B.
//!
//! # Several capture threads
//!
//! `threads_per_interface` sets the capture cores (PACKET_FANOUT by flow hash, one store
//! lane per thread). The store's part of a packet (record copy into the block buffer +
//! crc32c + block hand-off), measured per appending thread with
//! `ring/store/examples/lanes_bench.rs` (thread CPU time, same loaded VM), is 25–48 ns at
//! 64 B and 250–315 ns at 1500 B, the same for one writer and for each of 2 lanes: lanes add
//! no per-packet cost, they split it over threads, so the per-core figures below divide by
//! the thread count. Not measured: wall-clock scaling (2 lanes on this 2-core VM shared the
//! cores with the generator and ~20 other runnable tasks), and the kernel's copy into the
//! ring, which runs on the cores that take the NIC's interrupts (RSS).
//!
//! # Per core
//!
//! | | 64 B | IMIX (avg 362 B) | 1500 B |
//! |---|---|---|---|
//! | warm: µs/packet | 0.25 | 0.43 | 1.12 |
//! | warm: packets/s per core | 4.0 M | 2.3 M | 0.89 M (10.7 Gbit/s of frames) |
//! | fresh: µs/packet | 0.75 | 0.80 | 1.00 |
//! | fresh: packets/s per core | 1.33 M | 1.25 M | 1.0 M (12 Gbit/s) |
//!
//! IMIX is the simple IMIX: 7 × 64 B, 4 × 594 B, 1 × 1518 B frames (average 361.8 B).
//!
//! # Line rate and cores
//!
//! Packets per second at line rate count 20 B per frame of preamble and inter-frame gap:
//!
//! | | 64 B | IMIX | 1500 B |
//! |---|---|---|---|
//! | 10 GbE | 14.88 Mpps | 3.27 Mpps | 0.82 Mpps |
//! | 25 GbE | 37.20 Mpps | 8.18 Mpps | 2.06 Mpps |
//!
//! Capture cores needed = packets/s × µs per packet, rounded up; in brackets with the
//! cores kept at most 80 % busy (headroom for bursts, interrupts and the ring writer):
//!
//! | cores | 64 B | IMIX | 1500 B |
//! |---|---|---|---|
//! | 10 GbE, warm | 3.7 → 4 (5) | 1.4 → 2 (2) | 0.92 → 1 (2) |
//! | 25 GbE, warm | 9.3 → 10 (12) | 3.5 → 4 (5) | 2.3 → 3 (3) |
//! | 10 GbE, fresh | 11.2 → 12 (14) | 2.6 → 3 (4) | 0.82 → 1 (2) |
//! | 25 GbE, fresh | 27.9 → 28 (35) | 6.6 → 7 (9) | 2.1 → 3 (3) |
//!
//! What the model assumes and what bounds it besides CPU:
//! - Linear scaling over capture threads (one PACKET_FANOUT member per core, no shared
//!   lock on the write path). Not measured here: this 2-core VM can hold one generator and
//!   at most one or two capture threads.
//! - 64 B line rate is a synthetic worst case (a mirror port of real traffic averages
//!   400–900 B); IMIX is the planning figure. A 4-core board covers 10 GbE IMIX with
//!   headroom, 25 GbE IMIX needs ≈ 5 capture cores plus the analyzer's.
//! - Disk: line rate at 1500 B is ≈ 1.2 GB/s (10 GbE) and ≈ 3.1 GB/s (25 GbE) of segment
//!   writes, beyond one SATA SSD at 10 GbE and beyond one NVMe drive's sustained write at
//!   25 GbE; memory bandwidth carries each byte at least twice (NIC → ring, ring → store
//!   block, unless zero-copy) plus the disk DMA.
//! - The fresh-store row is the cost before the first wrap of the ring (lazily created
//!   slots); on a store prepared by `disk prepare` every pass is warm.
