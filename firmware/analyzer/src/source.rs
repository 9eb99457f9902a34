//! Where packets come from: the segment store in production, a pcap file in tests and
//! tools. The driver only sees [`PacketSource`].

use crate::position::PacketPos;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// One packet, borrowed from the source (zero-copy where the source allows).
#[derive(Clone, Copy, Debug)]
pub struct SourcePacket<'a> {
    pub pos: PacketPos,
    pub ts_ns: i64,
    pub iface: u16,
    /// pcap link type of the packet's interface (`data` starts with its header).
    pub linktype: u16,
    pub wire_len: u32,
    pub data: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a pcap file (magic {magic:08x}); convert pcapng with `editcap -F pcap`")]
    NotPcap { path: PathBuf, magic: u32 },
    #[error(
        "{path}: link type {link} is not one the analyzer decodes (Ethernet, Linux cooked v1/v2, raw IP, NULL/LOOP)"
    )]
    LinkType { path: PathBuf, link: u32 },
    #[error("segment store: {0}")]
    Store(String),
}

pub trait PacketSource {
    /// Visits the packets at or after `from`, in store order, until `f` breaks or the
    /// readable end is reached.
    fn visit(
        &mut self,
        from: PacketPos,
        f: &mut dyn FnMut(SourcePacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), SourceError>;
    /// Position and capture time of the newest readable packet (for lag).
    fn head(&mut self) -> Result<Option<(PacketPos, i64)>, SourceError>;
    /// Whether something is still appending (a live capture holds the store's lock).
    fn writer_active(&mut self) -> bool;
}

/// A classic pcap file (microsecond or nanosecond, either byte order), read whole.
/// Positions are `0-0-<packet index>`.
pub struct PcapSource {
    path: PathBuf,
    bytes: Vec<u8>,
}

const PCAP_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

impl PcapSource {
    pub fn open(path: &Path) -> Result<PcapSource, SourceError> {
        let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let s = PcapSource {
            path: path.to_path_buf(),
            bytes,
        };
        s.format()?;
        Ok(s)
    }

    /// (big endian, nanosecond resolution, link type).
    fn format(&self) -> Result<(bool, bool, u16), SourceError> {
        let magic_le = self
            .bytes
            .get(..4)
            .map_or(0, |m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        let (be, ns) = match magic_le {
            0xa1b2c3d4 => (false, false),
            0xa1b23c4d => (false, true),
            0xd4c3b2a1 => (true, false),
            0x4d3cb2a1 => (true, true),
            magic => {
                return Err(SourceError::NotPcap {
                    path: self.path.clone(),
                    magic,
                });
            }
        };
        let link = self.u32_at(20, be).unwrap_or(0) & 0x0fff_ffff;
        match u16::try_from(link) {
            Ok(l) if kuroko_ring::format::STORED_LINKTYPES.contains(&l) => Ok((be, ns, l)),
            _ => Err(SourceError::LinkType {
                path: self.path.clone(),
                link,
            }),
        }
    }

    fn u32_at(&self, off: usize, be: bool) -> Option<u32> {
        let b = self.bytes.get(off..off + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
}

impl PacketSource for PcapSource {
    fn visit(
        &mut self,
        from: PacketPos,
        f: &mut dyn FnMut(SourcePacket<'_>) -> ControlFlow<()>,
    ) -> Result<(), SourceError> {
        let (be, ns, linktype) = self.format()?;
        let mut off = PCAP_HEADER;
        let mut idx = 0u64;
        while let (Some(sec), Some(frac), Some(incl), Some(orig)) = (
            self.u32_at(off, be),
            self.u32_at(off + 4, be),
            self.u32_at(off + 8, be),
            self.u32_at(off + 12, be),
        ) {
            let start = off + RECORD_HEADER;
            let Some(data) = self.bytes.get(start..start.saturating_add(incl as usize)) else {
                break; // truncated last record
            };
            off = start + incl as usize;
            let pos = PacketPos::new(0, 0, idx);
            idx += 1;
            if pos < from {
                continue;
            }
            let frac_ns = if ns {
                i64::from(frac)
            } else {
                i64::from(frac) * 1000
            };
            let p = SourcePacket {
                pos,
                ts_ns: i64::from(sec) * 1_000_000_000 + frac_ns,
                iface: 0,
                linktype,
                wire_len: orig,
                data,
            };
            if f(p).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn head(&mut self) -> Result<Option<(PacketPos, i64)>, SourceError> {
        let mut last = None;
        self.visit(PacketPos::default(), &mut |p| {
            last = Some((p.pos, p.ts_ns));
            ControlFlow::Continue(())
        })?;
        Ok(last)
    }

    fn writer_active(&mut self) -> bool {
        false
    }
}

/// Writes a classic (microsecond) Ethernet pcap: for tests and the benchmark generator.
pub struct PcapWriter<W: std::io::Write> {
    out: W,
}

impl<W: std::io::Write> PcapWriter<W> {
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut h = Vec::with_capacity(PCAP_HEADER);
        h.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    pub fn packet(&mut self, ts_ns: i64, frame: &[u8]) -> std::io::Result<()> {
        let mut h = [0u8; RECORD_HEADER];
        h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000 / 1000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}
