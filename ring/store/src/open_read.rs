//! Reading a segment that is still being written, for its totals, without a memory map.
//!
//! Why not map it: a sector the disk cannot read kills a process that touches it through a
//! mapping (SIGBUS), and a reader refreshes the open segment every second, so the analyzer
//! would die on it at every restart. Read with `pread`, an unreadable 4 KiB unit is zeroed
//! and becomes a damaged block.
//!
//! Why chunk by chunk, and cached: the block walk of an open segment (`segment::totals`)
//! ends at the first chunk start without a valid block, so it touches only the chunks in
//! use plus one. This reads exactly those, in walk order, just before the walk needs them.
//! The writer only appends, so for the same generation every chunk before the one the last
//! walk ended in is final; a refresh reads again only from that chunk on.

use crate::segment;
use crate::sys::{self, AlignedBuf};
use kuroko_ring_format::Geometry;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The bytes of one open segment read so far.
pub(crate) struct OpenRead {
    slot: u32,
    seq: u64,
    buf: AlignedBuf,
    /// Chunks `0..read` hold the file's bytes (as of when they were read).
    read: u32,
    /// Chunk the last walk ended in: this and later chunks may have grown since.
    end_chunk: u32,
}

impl OpenRead {
    /// The segment-sized buffer holding, for slot `slot` generation `seq` at `path`, every
    /// chunk its block walk visits, read now (earlier chunks kept from `cached` when it is
    /// the same generation). Bytes of chunks the walk does not reach are unspecified.
    pub(crate) fn refresh(
        cached: Option<OpenRead>,
        path: &Path,
        g: &Geometry,
        slot: u32,
        seq: u64,
    ) -> io::Result<OpenRead> {
        let mut r = match cached {
            Some(c) if c.slot == slot && c.seq == seq && c.buf.len() as u64 == g.segment_size => {
                OpenRead {
                    read: c.read.min(c.end_chunk),
                    ..c
                }
            }
            other => OpenRead {
                slot,
                seq,
                buf: match other {
                    Some(c) if c.buf.len() as u64 == g.segment_size => c.buf,
                    _ => AlignedBuf::lazy(g.segment_size as usize),
                },
                read: 0,
                end_chunk: 0,
            },
        };
        let file = sys::open_for_read(path, true)?;
        let end = r.walk(&file, g)?;
        r.end_chunk = g.chunk_of(end).min(g.chunk_count.saturating_sub(1));
        Ok(r)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.as_slice()
    }

    /// Reads chunk `c` (and any unread before it) if it is not read yet.
    fn ensure(&mut self, file: &std::fs::File, g: &Geometry, c: u32) {
        while self.read <= c && self.read < g.chunk_count {
            let (start, end) = g.chunk_range(self.read);
            sys::read_what_can_be_read(
                &mut self.buf.as_mut_slice()[start as usize..end as usize],
                start,
                |b, off| file.read_exact_at(b, off),
            );
            self.read += 1;
        }
    }

    /// The walk of `segment::BlockScan` over an open segment (no chunk index), reading each
    /// chunk before it looks into it. Returns where the walk ended.
    fn walk(&mut self, file: &std::fs::File, g: &Geometry) -> io::Result<u64> {
        let mut off = g.chunk_range(0).0;
        let mut last_no: Option<u32> = None;
        loop {
            if off >= g.segment_size {
                return Ok(off);
            }
            let c = g.chunk_of(off);
            self.ensure(file, g, c);
            if let Some(len) = self.valid(g, off, last_no) {
                last_no = Some(len.1);
                off += len.0;
                continue;
            }
            if off == g.chunk_range(c).0 || c + 1 >= g.chunk_count {
                return Ok(off);
            }
            let next = g.chunk_range(c + 1).0;
            self.ensure(file, g, c + 1);
            match self.valid(g, next, last_no) {
                Some(len) => {
                    last_no = Some(len.1);
                    off = next + len.0;
                }
                None => return Ok(off),
            }
        }
    }

    /// (on-disk length, block number) of the block at `off` if the walk takes it.
    fn valid(&self, g: &Geometry, off: u64, last_no: Option<u32>) -> Option<(u64, u32)> {
        let h = segment::block_at(self.buf.as_slice(), g, off, self.seq)?;
        let no = h.block_no.get();
        if last_no.is_some_and(|l| no <= l) {
            return None;
        }
        Some((h.disk_len(), no))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RecordMeta, SegmentWriter, StoreOptions};

    #[test]
    fn a_cached_read_walks_to_the_same_totals_as_a_fresh_one_while_the_segment_grows() {
        // A disk file system (O_DIRECT reads), and tmpfs (no O_DIRECT: the page cache).
        growing_segment(tempfile::tempdir().unwrap());
        if std::path::Path::new("/dev/shm").is_dir() {
            growing_segment(tempfile::tempdir_in("/dev/shm").unwrap());
        }
    }

    fn growing_segment(dir: tempfile::TempDir) {
        let opts = StoreOptions {
            budget: 4 * (1 << 20) + crate::META_RESERVE,
            segment_size: 1 << 20,
            chunk_size: 64 * 1024,
            ..Default::default()
        };
        let mut w = SegmentWriter::open(dir.path(), &opts).unwrap();
        let g = w.ring().geometry;
        let path = crate::layout::Paths::new(dir.path()).slot(0);
        let mut cached = None;
        let mut n = 0u64;
        // Steps of 1–40 packets of 900 B, each flushed as its own block: blocks end inside
        // chunks, at chunk ends and across into new chunks; stop before the segment fills.
        for step in 0..40u64 {
            for _ in 0..=(step * 7 % 40) {
                let meta = RecordMeta {
                    ts_ns: n,
                    wire_len: 900,
                    ..Default::default()
                };
                w.append(&meta, &[&[n as u8; 900]]).unwrap();
                n += 1;
            }
            w.sync().unwrap();
            let seq =
                crate::segment::probe(&crate::layout::Paths::new(dir.path()), w.ring(), 0).seq;
            let r = OpenRead::refresh(cached.take(), &path, &g, 0, seq).unwrap();
            let fresh = OpenRead::refresh(None, &path, &g, 0, seq).unwrap();
            let a = segment::totals(r.bytes(), &g, seq);
            let b = segment::totals(fresh.bytes(), &g, seq);
            assert_eq!(a.packets, n, "step {step}");
            assert_eq!((a.packets, a.end, a.blocks), (b.packets, b.end, b.blocks));
            assert_eq!(a.damaged_blocks, 0);
            assert!(
                r.read <= g.chunk_of(a.end) + 2,
                "reads only the chunks in use"
            );
            cached = Some(r);
        }
        assert!(n > 700, "{n} packets span several chunks");
        w.close().unwrap();
    }
}
