//! [`PacketSource`] over the segment store (`kuroko-ring`): memory-mapped segments, the
//! open one up to its last complete block, packets handed out without copying.
//!
//! Store positions map one to one onto [`PacketPos`]: segment `seq`, block `offset`,
//! `record` index, so session ids read `<seq>-<block offset>-<record>` in hex.

use crate::position::PacketPos;
use crate::source::{PacketSource, SourceError, SourcePacket};
use kuroko_ring::StoreReader;
use kuroko_ring::reader::Position;
use std::ops::ControlFlow;
use std::path::Path;

pub struct StoreSource {
    reader: StoreReader,
    /// Segments overwritten before we could read them (the analyzer fell a whole ring
    /// behind), summed over scans.
    pub lost_segments: u64,
    /// Damaged blocks the store skipped, summed over scans.
    pub damaged_blocks: u64,
}

impl StoreSource {
    pub fn open(data: &Path) -> Result<StoreSource, SourceError> {
        let reader = StoreReader::open(data).map_err(|e| SourceError::Store(e.to_string()))?;
        Ok(StoreSource {
            reader,
            lost_segments: 0,
            damaged_blocks: 0,
        })
    }

    /// Bytes of stored records between `pos` and the store's head.
    pub fn lag_bytes(&self, pos: PacketPos) -> u64 {
        self.reader.lag_bytes(to_store(pos))
    }
}

pub fn to_store(p: PacketPos) -> Position {
    Position {
        seq: p.seq,
        offset: u32::try_from(p.block).unwrap_or(u32::MAX),
        record: u32::try_from(p.idx).unwrap_or(u32::MAX),
    }
}

pub fn from_store(p: Position) -> PacketPos {
    PacketPos::new(p.seq, u64::from(p.offset), u64::from(p.record))
}

impl PacketSource for StoreSource {
    fn visit(
        &mut self,
        from: PacketPos,
        f: &mut dyn FnMut(SourcePacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        self.reader
            .refresh()
            .map_err(|e| SourceError::Store(e.to_string()))?;
        let report = self
            .reader
            .scan(to_store(from), |p| {
                f(SourcePacket {
                    pos: from_store(p.pos),
                    ts_ns: i64::try_from(p.ts_ns).unwrap_or(i64::MAX),
                    iface: p.iface,
                    linktype: p.linktype,
                    wire_len: p.wire_len,
                    data: p.data,
                })
            })
            .map_err(|e| SourceError::Store(e.to_string()))?;
        self.lost_segments += report.lost_segments;
        self.damaged_blocks += report.damage.len() as u64;
        Ok(())
    }

    fn head(&mut self) -> Result<Option<(PacketPos, i64)>, SourceError> {
        Ok(self.reader.segments().last().map(|s| {
            (
                from_store(self.reader.head()),
                i64::try_from(s.last_ts).unwrap_or(i64::MAX),
            )
        }))
    }

    fn writer_active(&mut self) -> bool {
        kuroko_ring::status::status_of(&self.reader)
            .writer_pid
            .is_some()
    }
}
