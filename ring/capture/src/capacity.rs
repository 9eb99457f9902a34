//! Capacity model: what one capture core sustains, and how many cores 10 GbE and 25 GbE
//! line rate need, from measured CPU per packet. Documentation only (no code).
//!
//! # Inputs: CPU per captured packet
//!
//! From `cargo xtask bench capture --warm --generators trafgen` on a quiet 2-core VM
//! (2026-12-07 21:00, load average 0.5–1.1, the engineers' builds stopped): trafgen on
//! CPU 0, each capture tool alone on CPU 1, 32 MiB rings, 2.5 s trials, 3 interleaved
//! rounds, median [min–max]; CPU = utime + stime of the capture process per packet stored.
//! `bench-out/capture.md` of that run holds every row.
//!
//! | CPU per packet (µs) | 64 B @ 332 kpps | 1500 B @ 332 kpps | 1500 B unpaced (449 kpps) |
//! |---|---|---|---|
//! | fresh store (every trial a new data dir: slots created as the ring grows) | 0.072 [0.072–0.084] | 0.277 [0.229–0.313] | 0.295 [0.283–0.355] |
//! | wrapped ring ("warm", a running appliance's steady state) | 0.072 [0.072–0.084] | 0.301 [0.253–0.301] | 0.277 [0.265–0.361] |
//! | main before issue 22 (84bc421), fresh, same run | 0.120 [0.108–0.144] | 0.567 [0.529–0.854] | 0.442 [0.373–0.458] |
//! | zero-copy (`zero_copy = "on"`), fresh, same run | 0.168 | 0.866 | 0.638 |
//! | stenotype, same run (reference) | 0.157 | 0.397 | 0.397 |
//! | tcpdump, same run | 0.144 | 1.758 | 1.787 |
//!
//! No loss in any Kuroko trial (stenotype lost 0.03–0.4 %, tcpdump up to 5.7 % unpaced).
//! Fresh and wrapped stores now cost the same: slot files are preallocated, not zero-filled,
//! and prepared off the capture thread. Zero-copy costs more CPU here than the copy
//! (0.87 against 0.28 µs at 1500 B), which is why it stays off by default. The kernel's
//! copy of each frame into the ring is not in these figures: on the veth it runs in the
//! generator's softirq on CPU 0; on a NIC it runs on the cores that take its interrupts.
//!
//! Cost is modelled as linear in the frame size between the measured points (the
//! larger of fresh and warm at each size): c(s) = c(64) + (s − 64) · (c(1500) − c(64)) /
//! 1436 = 0.072 µs + 0.16 ns/B (c(1500) = 0.30 µs).
//!
//! # Several capture threads
//!
//! `threads_per_interface` sets the capture cores (PACKET_FANOUT by flow hash, one store
//! lane per thread). The store's part of a packet (record copy into the block buffer +
//! crc32c + block hand-off), measured per appending thread with
//! `ring/store/examples/lanes_bench.rs` (thread CPU time, same loaded VM), is 25–48 ns at
//! 64 B and 250–315 ns at 1500 B, the same for one writer and for each of 2 lanes: lanes add
//! no per-packet cost, they split it over threads, so the per-core figures below divide by
//! the thread count.
//!
//! Wall-clock scaling on this 2-core VM (same quiet run as above, `kuroko-2t`: two capture
//! threads on CPUs 1 and 0, the generator's core shared): at 332 kpps two threads cost the
//! same per packet as one at 64 B (0.072 µs) and more at 1500 B (0.445 against 0.277), and
//! unpaced the generator, now sharing its core with a capture thread, offered 369 kpps
//! instead of 449 kpps, at 0.76 µs per packet for the two threads together. On two cores a
//! second capture thread only takes CPU from the traffic's source: no gain is measurable
//! here, and none is expected until the capture has a core of its own per thread. The
//! kernel's copy into the ring (on the cores that take the NIC's interrupts, RSS) is not in
//! these figures.
//!
//! # Per core
//!
//! | | 64 B | IMIX (avg 362 B) | 1500 B |
//! |---|---|---|---|
//! | µs/packet (fresh or warm) | 0.072 | 0.12 | 0.30 |
//! | packets/s per core | 13.9 M | 8.3 M | 3.3 M (40 Gbit/s of frames) |
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
//! | 10 GbE | 1.07 → 2 (2) | 0.39 → 1 (1) | 0.25 → 1 (1) |
//! | 25 GbE | 2.7 → 3 (4) | 0.98 → 1 (2) | 0.62 → 1 (1) |
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
//! - The rates measured here are far below line rate (a veth and one trafgen on a 2-core
//!   VM reach 450–660 kpps): per-wakeup costs are amortised over fewer packets than at
//!   line rate, which makes the per-packet figures pessimistic, while a real NIC adds its
//!   driver's and the kernel's per-packet work on the interrupt cores, which they leave out.
