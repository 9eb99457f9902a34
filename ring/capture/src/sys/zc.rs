//! Zero-copy: TPACKET_V3 ring blocks written to disk by io_uring straight from the ring
//! mapping, without a copy in user space.
//!
//! [`take`] walks the frames of the ring's current block (counting them, and putting a
//! VLAN tag the kernel stripped back into the frame in place, see below) and returns a
//! [`HeldBlock`]; [`store`] hands it to the segment writer (`append_ring_block`: a plain
//! O_DIRECT io_uring write from the ring pages, plus a 4 KiB header page); once queued the
//! engine moves the read position past the block without handing it back
//! ([`RxRing::hold_current`]), and hands it back ([`RxRing::release`]) when the writer
//! returns its token, at the write's completion.
//!
//! VLAN tags. The kernel strips the outer tag of every tagged frame into `tp_vlan_tci`
//! (`skb_vlan_untag` on receive), and the store keeps frames as they were on the wire. A
//! frame's MAC header sits at `tp_mac`, at least 14 bytes after the end of its
//! `tpacket3_hdr` + `sockaddr_ll` for an Ethernet link (`tpacket_rcv` aligns the network
//! header to 16 bytes), so the tag is put back in place: the 12 address bytes move 4 bytes
//! down, the tag goes after them, `tp_mac` −4, `tp_snaplen` and `tp_len` +4, and
//! `tp_status` gets `RING_STATUS_VLAN_RESTORED` instead of the VLAN-valid bits. That is 16
//! bytes written per tagged frame in a cache line the walk reads anyway, not a copy of the
//! frame. (Readers then need no tag logic: the ring block on disk holds the frames as they
//! were on the wire.) A block with a tagged frame without that room is left to the copying
//! path.
//!
//! [`probe`] answers the first question of the design: does the kernel let io_uring use the
//! packet ring's mapping (pages the packet socket put in with `vm_insert_page`) as a
//! registered buffer (`IORING_REGISTER_BUFFERS`, long-term pinning) and as the source of an
//! `O_DIRECT` write (short-term pinning), and does the disk then hold the block's bytes?

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use kuroko_ring::format::{self as fmt, tpacket};
use kuroko_ring::{AppendError, RingAppend, RingBlockMeta, SegmentWriter};

use super::packet::RxRing;

/// `sizeof(struct sockaddr_ll)`: it follows the `tpacket3_hdr` of every frame.
const SOCKADDR_LL_LEN: usize = 20;

/// What the walk of a block counted (the figures the copying path counts per frame).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    pub packets: u64,
    /// Bytes on the wire (tags included).
    pub bytes: u64,
    /// Bytes stored (tags included).
    pub stored: u64,
    pub truncated: u64,
    /// Frames longer than `frame_limit` (merged by an offload).
    pub coalesced: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Tags put back in place by this walk.
    pub vlan_restored: u64,
}

/// A retired ring block taken for the zero-copy path: walked, ready for [`store`]. It
/// refers to the ring's memory; the engine holds the block ([`RxRing::hold_current`])
/// once [`store`] queued it.
pub struct HeldBlock {
    ptr: NonNull<u8>,
    len: usize,
    pub index: usize,
    pub meta: RingBlockMeta,
    pub walk: Walk,
}

/// Why [`take`] left a block to the copying path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// No block retired at the read position.
    Empty,
    /// The frame chain points outside the block, or a tagged frame has no room to get its
    /// tag back in place.
    Unfit,
    /// Frames are smaller on average than `min_avg_frame` (the copying path writes them
    /// more compactly and costs less; see `CaptureOptions::zero_copy`).
    Small,
}

fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Walks the ring's current block for the zero-copy path (see the module docs): counts
/// its frames, puts stripped VLAN tags back in place, and describes it for the writer.
/// `min_avg_frame`: blocks whose frames average fewer ring bytes are left to the copying
/// path (0: never). `frame_limit`: frames longer than this are counted as coalesced.
pub fn take(
    ring: &mut RxRing,
    iface: u16,
    token_base: u64,
    min_avg_frame: usize,
    frame_limit: u64,
) -> Result<HeldBlock, Skip> {
    let index = ring.read_index();
    if !ring.retired(index) {
        return Err(Skip::Empty);
    }
    let (base, _) = ring.mapping();
    let bs = ring.block_size();
    // SAFETY: the block is retired to user space (TP_STATUS_USER, read with Acquire in
    // `retired`) and not held: the kernel does not write it until we store
    // TP_STATUS_KERNEL, which only `RxRing::release` (for a held block) and `Block::drop`
    // (for the current block, which needs `&mut ring`, borrowed here) do. The slice lies
    // within the mapping (`index < block_count`) and lives no longer than this call, during
    // which nothing else reads or writes the block; the status word it covers is only
    // touched atomically by the kernel, which does not while the block is ours.
    let b = unsafe { std::slice::from_raw_parts_mut(base.as_ptr().add(index * bs), bs) };
    let num = rd32(b, tpacket::DESC_NUM_PKTS);
    let blk_len = (rd32(b, tpacket::DESC_BLK_LEN) as usize).min(bs);
    if num == 0 {
        return Err(Skip::Unfit);
    }
    if min_avg_frame > 0 && blk_len / (num as usize) < min_avg_frame {
        return Err(Skip::Small);
    }
    let mut w = Walk {
        first_ns: u64::MAX,
        ..Walk::default()
    };
    let mut off = rd32(b, tpacket::DESC_FIRST_PKT) as usize;
    for k in 0..num {
        if off < tpacket::DESC_LEN || off + tpacket::HDR_LEN > blk_len {
            return Err(Skip::Unfit);
        }
        let mut status = rd32(b, off + tpacket::STATUS);
        let mut snap = rd32(b, off + tpacket::SNAPLEN);
        let mut len = rd32(b, off + tpacket::LEN);
        let mut mac = rd16(b, off + tpacket::MAC) as usize;
        if off + mac + snap as usize > blk_len {
            return Err(Skip::Unfit);
        }
        let tci = rd32(b, off + tpacket::VLAN_TCI) as u16;
        let tagged = status & fmt::RING_STATUS_VLAN_RESTORED == 0
            && (status & libc::TP_STATUS_VLAN_VALID != 0 || tci != 0)
            && snap >= 12;
        if tagged {
            if mac < tpacket::HDR_LEN + SOCKADDR_LL_LEN + 4 {
                return Err(Skip::Unfit);
            }
            let tpid = rd16(b, off + tpacket::VLAN_TPID);
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
                tpid
            } else {
                crate::frame::DEFAULT_TPID
            };
            let m = off + mac;
            b.copy_within(m..m + 12, m - 4);
            b[m + 8..m + 10].copy_from_slice(&tpid.to_be_bytes());
            b[m + 10..m + 12].copy_from_slice(&tci.to_be_bytes());
            mac -= 4;
            snap += 4;
            len += 4;
            status = (status & !(libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID))
                | fmt::RING_STATUS_VLAN_RESTORED;
            b[off + tpacket::MAC..off + tpacket::MAC + 2]
                .copy_from_slice(&(mac as u16).to_le_bytes());
            wr32(b, off + tpacket::SNAPLEN, snap);
            wr32(b, off + tpacket::LEN, len);
            wr32(b, off + tpacket::STATUS, status);
            wr32(b, off + tpacket::VLAN_TCI, 0);
            w.vlan_restored += 1;
        }
        let ts = u64::from(rd32(b, off + tpacket::SEC)) * 1_000_000_000
            + u64::from(rd32(b, off + tpacket::NSEC));
        w.packets += 1;
        w.bytes += u64::from(len);
        w.stored += u64::from(snap);
        w.truncated += u64::from(snap < len);
        w.coalesced += u64::from(u64::from(len) > frame_limit);
        w.first_ns = w.first_ns.min(ts);
        w.last_ns = w.last_ns.max(ts);
        if k + 1 < num {
            let next = rd32(b, off + tpacket::NEXT_OFFSET) as usize;
            if next == 0 {
                return Err(Skip::Unfit);
            }
            off += next;
        }
    }
    Ok(HeldBlock {
        ptr: NonNull::from(&mut b[0]),
        len: bs,
        index,
        meta: RingBlockMeta {
            filled: blk_len as u32,
            packets: num,
            first_ts: w.first_ns,
            last_ts: w.last_ns,
            iface,
            token: token_base | index as u64,
        },
        walk: w,
    })
}

/// Registers the mappings of `rings` with the writer's io_uring as fixed buffers, so ring
/// blocks are written with `WRITE_FIXED` (pages pinned once) instead of a plain write that
/// pins a block's pages at every write. Returns whether the kernel took them.
pub fn register_rings(w: &mut SegmentWriter, rings: &[&RxRing]) -> bool {
    let regions: Vec<(*const u8, usize)> = rings
        .iter()
        .map(|r| {
            let (p, len) = r.mapping();
            (p.as_ptr().cast_const(), len)
        })
        .collect();
    // SAFETY: each mapping lives as long as its RxRing, which the capture thread keeps
    // until after it closed its sink (the writer); registration pins the pages besides, so
    // even a ring dropped earlier would leave nothing freed under the kernel.
    unsafe { w.register_ring_memory(&regions) }
}

/// Hands a block from [`take`] to the writer. After [`RingAppend::Queued`] the caller
/// must hold the block ([`RxRing::hold_current`]) and release it only when the writer
/// returns `b.meta.token` (`SegmentWriter::take_ring_done`).
pub fn store(w: &mut SegmentWriter, b: &HeldBlock) -> Result<RingAppend, AppendError> {
    // SAFETY: `b` was made by `take` from a retired block of a ring that outlives the
    // writer's writes (the capture thread closes its sink, which waits for every write,
    // before its rings are dropped). The engine holds the block once queued and hands it
    // back to the kernel only when the writer returned its token, that is after the write's
    // completion; nothing writes a held block (`current_block` and `take` skip it).
    let bytes = unsafe { std::slice::from_raw_parts(b.ptr.as_ptr(), b.len) };
    // SAFETY: as above: the memory stays mapped and untouched until the token comes back.
    unsafe { w.append_ring_block(bytes, &b.meta) }
}

/// What [`probe`] found.
#[derive(Debug)]
pub struct ProbeReport {
    /// `IORING_REGISTER_BUFFERS` of the whole ring mapping as buffer 0.
    pub register: io::Result<()>,
    /// `IORING_OP_WRITE_FIXED` of one retired block from the registered mapping (bytes
    /// written), when registration worked.
    pub fixed_write: Option<io::Result<usize>>,
    /// Plain `IORING_OP_WRITE` of the same block from the mapping (bytes written).
    pub plain_write: io::Result<usize>,
    /// Both writes read back equal to the block in the ring.
    pub fixed_equal: bool,
    pub plain_equal: bool,
    /// Bytes per block.
    pub block_size: usize,
}

/// Writes the ring's current (retired) block to `file` (opened with `O_DIRECT` by the
/// caller) at offset 0 with a fixed-buffer write, then at offset `block_size` with a plain
/// write, reads both back through `readback` (the same file opened without `O_DIRECT`) and
/// compares them with the ring. The block is handed back to the kernel at the end.
/// Returns `None` when no block is retired.
pub fn probe(ring: &mut RxRing, file: &File, readback: &File) -> Option<ProbeReport> {
    use std::os::unix::fs::FileExt;
    let (base, map_len) = ring.mapping();
    let bs = ring.block_size();
    let index = ring.read_index();
    let block = ring.current_block()?;
    let mut uring = io_uring::IoUring::new(4).ok()?;
    let iov = libc::iovec {
        iov_base: base.as_ptr().cast(),
        iov_len: map_len,
    };
    // SAFETY: the mapping stays valid (the ring outlives `uring`, dropped at the end of this
    // function, which unregisters the buffer).
    let register = unsafe { uring.submitter().register_buffers(&[iov]) };
    // SAFETY: `index < block_count`, so the block lies inside the mapping.
    let ptr = unsafe { base.as_ptr().add(index * bs) };
    let fd = io_uring::types::Fd(file.as_raw_fd());
    let mut run = |e: io_uring::squeue::Entry| -> io::Result<usize> {
        // SAFETY: the entry's buffer is the retired block, which the kernel does not write
        // while `block` (TP_STATUS_USER) is held, and we wait for the completion below.
        unsafe { uring.submission().push(&e) }.map_err(|_| io::Error::other("sq full"))?;
        uring.submit_and_wait(1)?;
        let c = uring
            .completion()
            .next()
            .ok_or(io::Error::other("no cqe"))?;
        if c.result() < 0 {
            Err(io::Error::from_raw_os_error(-c.result()))
        } else {
            Ok(c.result() as usize)
        }
    };
    let fixed_write = register.is_ok().then(|| {
        run(io_uring::opcode::WriteFixed::new(fd, ptr, bs as u32, 0)
            .offset(0)
            .build())
    });
    let plain_write = run(io_uring::opcode::Write::new(fd, ptr, bs as u32)
        .offset(bs as u64)
        .build());
    // SAFETY: as above; the block is ours while `block` lives.
    let ring_bytes = unsafe { std::slice::from_raw_parts(ptr, bs) };
    let same = |off: u64| {
        let mut b = vec![0u8; bs];
        // The block-status word may be read differently by the two sides only if the kernel
        // wrote it, which it does not while the block is ours.
        readback.read_exact_at(&mut b, off).is_ok() && b == ring_bytes
    };
    let fixed_equal = matches!(fixed_write, Some(Ok(n)) if n == bs) && same(0);
    let plain_equal = matches!(plain_write, Ok(n) if n == bs) && same(bs as u64);
    block.consume();
    Some(ProbeReport {
        register,
        fixed_write,
        plain_write,
        fixed_equal,
        plain_equal,
        block_size: bs,
    })
}
