//! pcap and pcapng: reading capture files for `import`, writing pcap for `export`.
//!
//! The reader works on a byte slice and hands out packets without copying. A file is read
//! in windows with `read(2)`, not memory-mapped: a capture file is the user's, on any
//! medium, and a file that shrinks under us or a USB stick that fails mid-import must end
//! the import with an I/O error, where a mapping would kill the process with SIGBUS. It takes classic pcap (µs and ns, either byte order)
//! and pcapng (any section byte order, `if_tsresol`, `if_tsoffset`, EPB, SPB and the
//! obsolete PB), with the link types the analyzer decodes
//! ([`kuroko_ring_format::STORED_LINKTYPES`]: Ethernet, Linux cooked v1 and v2 from
//! `tcpdump -i any`, raw IP from tun/VPN interfaces, BSD NULL/LOOP); any other link type is
//! refused before a single packet is stored. A file cut short (a capture that was still
//! running, a partial copy) yields every complete packet and then says how many bytes were
//! cut.
//!
//! Every file interface becomes a store interface with its own link type. Several files
//! imported one after the other share the writer's interface table: an interface id an
//! earlier file named with another link type is never renamed under the packets already
//! stored with it (they would be decoded as the wrong link layer); the file's interface gets
//! an id of its own link type instead.
//!
//! Export writes each packet with its own link type: a classic pcap when every interface of
//! the range has one link type, a pcapng with one interface per link type when they mix.

use crate::error::AppendError;
use crate::reader::{Damage, PacketView, StoreReader};
use crate::writer::{RecordMeta, SegmentWriter};
use kuroko_ring_format::{
    IfaceEntry, LINKTYPE_ETHERNET, MAX_CAPLEN, MAX_IFACES, STORED_LINKTYPES, record_flags,
};
use std::io::{Read, Write};
use std::ops::ControlFlow;

/// Largest pcapng block we accept (a packet of `MAX_CAPLEN` plus generous options).
const MAX_PCAPNG_BLOCK: usize = MAX_CAPLEN as usize + 64 * 1024;
/// Most interfaces one pcapng file may describe.
const MAX_PCAPNG_IFACES: usize = 1024;
/// Bytes of a capture file read at a time by [`import_file`] (twice the largest block, so a
/// window always holds whole records; the tail of one window starts the next).
const FILE_WINDOW: usize = 32 << 20;

/// Why a capture file cannot be imported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PcapError {
    #[error("not a pcap or pcapng file (it starts with {0:02x?})")]
    NotPcap([u8; 4]),
    #[error("the file is shorter than a pcap header")]
    TooShort,
    #[error(
        "link type {linktype} ({name}) is not supported; Kuroko stores Ethernet (1), Linux cooked (113, 276), raw IP (101, 228, 229) and BSD loopback (0, 108) captures"
    )]
    UnsupportedLinkType { linktype: u32, name: &'static str },
    #[error(
        "the store names at most {MAX_IFACES} interfaces and they are all taken by other link types; import files of link type {linktype} ({name}) into a store of their own"
    )]
    TooManyLinkTypes { linktype: u32, name: &'static str },
    #[error("malformed {what} at byte {offset}: {detail}")]
    Malformed {
        what: &'static str,
        offset: u64,
        detail: String,
    },
}

/// Known link type names, for messages.
fn linktype_name(lt: u32) -> &'static str {
    match lt {
        0 => "BSD loopback",
        1 => "Ethernet",
        101 => "raw IP",
        105 => "IEEE 802.11",
        108 => "OpenBSD loopback",
        113 => "Linux cooked (SLL)",
        127 => "802.11 radiotap",
        228 => "raw IPv4",
        229 => "raw IPv6",
        276 => "Linux cooked v2 (SLL2)",
        _ => "unknown",
    }
}

/// One packet of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilePacket<'a> {
    pub ts_ns: u64,
    pub wire_len: u32,
    pub iface: u16,
    pub data: &'a [u8],
}

/// An interface a capture file describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileIface {
    pub linktype: u32,
    pub snaplen: u32,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pcap { big_endian: bool, nanos: bool },
    PcapNg,
}

#[derive(Clone, Copy, Debug)]
struct NgIface {
    /// Units per second of the timestamps and whether they are a power of two.
    tsresol: u8,
    offset_s: i64,
    snaplen: u32,
}

/// Reads packets out of a pcap or pcapng file held in memory.
pub struct PcapReader<'a> {
    bytes: &'a [u8],
    kind: Kind,
    pos: usize,
    /// File offset of `bytes[0]` (a file read in windows).
    base: u64,
    /// More of the file follows `bytes`: an incomplete record at the end is not a cut but
    /// the end of this window (`starved`).
    more: bool,
    /// Stopped at the end of this window with more of the file to come.
    starved: bool,
    ifaces: Vec<FileIface>,
    ng_ifaces: Vec<NgIface>,
    ng_big_endian: bool,
    /// Global index of the current pcapng section's interface 0.
    ng_section_start: usize,
    /// Interface blocks met so far by the reading pass.
    ng_seen_ifaces: usize,
    truncated: Option<u64>,
    error: Option<PcapError>,
    last_ts: u64,
    /// Packets that carried no timestamp (pcapng SPB) and got the previous packet's.
    pub untimed_packets: u64,
    /// Packets skipped because their timestamp (with `if_tsresol`/`if_tsoffset`) lies
    /// outside what the store can hold (before 1970 or after [`MAX_TS_NS`]).
    pub bad_time_packets: u64,
    /// The first such timestamp, as the file gave it (for the message).
    pub first_bad_time: Option<BadTime>,
}

/// Latest packet time the store and every consumer take (`i64` nanoseconds since the Unix
/// epoch: the year 2262). A later time would wrap to 1969 in an `i64`.
pub const MAX_TS_NS: u64 = i64::MAX as u64;

/// A pcapng timestamp outside what the store can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadTime {
    /// Byte offset of the packet's block in the file.
    pub offset: u64,
    /// The raw 64-bit timestamp, its `if_tsresol` and `if_tsoffset` (seconds).
    pub raw: u64,
    pub tsresol: u8,
    pub offset_s: i64,
}

impl std::fmt::Display for BadTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "packet at byte {}: timestamp {} (if_tsresol {:#04x}, if_tsoffset {} s) is outside 1970..2262",
            self.offset, self.raw, self.tsresol, self.offset_s
        )
    }
}

impl<'a> PcapReader<'a> {
    /// Checks the header (and, for pcapng, every interface's link type) before anything is
    /// read, so a file of a foreign link type is refused as a whole.
    pub fn new(bytes: &'a [u8]) -> Result<PcapReader<'a>, PcapError> {
        if bytes.len() < 4 {
            return Err(PcapError::TooShort);
        }
        let magic: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
        let kind = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => Kind::Pcap {
                big_endian: false,
                nanos: false,
            },
            [0xa1, 0xb2, 0xc3, 0xd4] => Kind::Pcap {
                big_endian: true,
                nanos: false,
            },
            [0x4d, 0x3c, 0xb2, 0xa1] => Kind::Pcap {
                big_endian: false,
                nanos: true,
            },
            [0xa1, 0xb2, 0x3c, 0x4d] => Kind::Pcap {
                big_endian: true,
                nanos: true,
            },
            [0x0a, 0x0d, 0x0d, 0x0a] => Kind::PcapNg,
            _ => return Err(PcapError::NotPcap(magic)),
        };
        let mut r = PcapReader {
            bytes,
            kind,
            pos: 0,
            base: 0,
            more: false,
            starved: false,
            ifaces: Vec::new(),
            ng_ifaces: Vec::new(),
            ng_big_endian: false,
            ng_section_start: 0,
            ng_seen_ifaces: 0,
            truncated: None,
            error: None,
            last_ts: 0,
            untimed_packets: 0,
            bad_time_packets: 0,
            first_bad_time: None,
        };
        match kind {
            Kind::Pcap { big_endian, .. } => {
                if bytes.len() < 24 {
                    return Err(PcapError::TooShort);
                }
                let snaplen = rd32(&bytes[16..], big_endian);
                let linktype = rd32(&bytes[20..], big_endian) & 0x0fff_ffff;
                check_linktype(linktype)?;
                r.ifaces.push(FileIface {
                    linktype,
                    snaplen,
                    name: String::new(),
                });
                r.pos = 24;
            }
            Kind::PcapNg => r.ng_prepass()?,
        }
        Ok(r)
    }

    /// [`PcapReader::new`] over the first window of a file read in pieces (`more`: the file
    /// goes on after `bytes`). The interfaces of a pcapng file are learned from this window
    /// and then as the reading meets them, so a foreign link type described after the
    /// first window stops the import there (what came before it is stored).
    fn new_window(bytes: &'a [u8], more: bool) -> Result<PcapReader<'a>, PcapError> {
        let mut r = PcapReader::new(bytes)?;
        r.more = more;
        Ok(r)
    }

    /// Moves the reader on to the next window of its file: `bytes` start at the first byte
    /// not consumed ([`PcapReader::position`]); `more` says whether the file goes on after.
    fn next_window<'b>(self, bytes: &'b [u8], more: bool) -> PcapReader<'b> {
        PcapReader {
            bytes,
            kind: self.kind,
            pos: 0,
            base: self.base + self.pos as u64,
            more,
            starved: false,
            ifaces: self.ifaces,
            ng_ifaces: self.ng_ifaces,
            ng_big_endian: self.ng_big_endian,
            ng_section_start: self.ng_section_start,
            ng_seen_ifaces: self.ng_seen_ifaces,
            truncated: self.truncated,
            error: self.error,
            last_ts: self.last_ts,
            untimed_packets: self.untimed_packets,
            bad_time_packets: self.bad_time_packets,
            first_bad_time: self.first_bad_time,
        }
    }

    /// Interfaces the file describes (id = index).
    pub fn interfaces(&self) -> &[FileIface] {
        &self.ifaces
    }

    /// Bytes cut off the end of the file (an incomplete last packet or block), if any.
    pub fn truncated(&self) -> Option<u64> {
        self.truncated
    }

    /// A malformed record that ended reading early (what came before it was returned).
    pub fn error(&self) -> Option<&PcapError> {
        self.error.as_ref()
    }

    /// Bytes of the file consumed so far (for progress).
    pub fn position(&self) -> usize {
        (self.base + self.pos as u64) as usize
    }

    fn fail(&mut self, what: &'static str, detail: String) -> Option<FilePacket<'a>> {
        self.stop(PcapError::Malformed {
            what,
            offset: self.base + self.pos as u64,
            detail,
        })
    }

    /// Ends reading with `error` (what came before it was returned).
    fn stop(&mut self, error: PcapError) -> Option<FilePacket<'a>> {
        self.error = Some(error);
        self.pos = self.bytes.len();
        self.more = false;
        None
    }

    /// The rest of the window is an incomplete record: the end of the window if more of the
    /// file follows, else the file was cut short there.
    fn cut(&mut self) -> Option<FilePacket<'a>> {
        if self.more {
            self.starved = true;
            return None;
        }
        self.truncated = Some((self.bytes.len() - self.pos) as u64);
        self.pos = self.bytes.len();
        None
    }

    /// The end of the window: the end of the file, or of this window if more follows.
    fn end(&mut self) -> Option<FilePacket<'a>> {
        self.starved = self.more;
        None
    }

    fn next_pcap(&mut self, big_endian: bool, nanos: bool) -> Option<FilePacket<'a>> {
        let rest = &self.bytes[self.pos..];
        if rest.is_empty() {
            return self.end();
        }
        if rest.len() < 16 {
            return self.cut();
        }
        let sec = rd32(rest, big_endian) as u64;
        let frac = rd32(&rest[4..], big_endian) as u64;
        let incl = rd32(&rest[8..], big_endian);
        let orig = rd32(&rest[12..], big_endian);
        if incl > MAX_CAPLEN {
            return self.fail(
                "pcap record",
                format!("captured length {incl} is over {MAX_CAPLEN}"),
            );
        }
        if rest.len() < 16 + incl as usize {
            return self.cut();
        }
        let ts_ns = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        self.pos += 16 + incl as usize;
        Some(FilePacket {
            ts_ns,
            wire_len: orig.max(incl),
            iface: 0,
            data: &rest[16..16 + incl as usize],
        })
    }

    /// Walks every pcapng block once to learn the interfaces and refuse foreign link types.
    fn ng_prepass(&mut self) -> Result<(), PcapError> {
        let mut pos = 0usize;
        let mut big = false;
        while pos + 12 <= self.bytes.len() {
            let b = &self.bytes[pos..];
            if b[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                big = match b[8..12] {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    _ => {
                        return Err(PcapError::Malformed {
                            what: "pcapng section header",
                            offset: pos as u64,
                            detail: "bad byte-order magic".into(),
                        });
                    }
                };
            }
            let ty = rd32(b, big);
            let len = rd32(&b[4..], big) as usize;
            if len < 12 || !len.is_multiple_of(4) || len > MAX_PCAPNG_BLOCK {
                if pos == 0 {
                    return Err(PcapError::Malformed {
                        what: "pcapng block",
                        offset: pos as u64,
                        detail: format!("block length {len}"),
                    });
                }
                break; // reported when the reader gets there
            }
            if pos + len > self.bytes.len() {
                break; // truncated: reported when the reader gets there
            }
            if ty == 1 {
                let body = &b[8..len - 4];
                if body.len() < 8 {
                    break;
                }
                self.learn_iface(body, big, pos as u64)?;
            }
            pos += len;
        }
        Ok(())
    }

    /// Adds the interface an interface description block's `body` describes.
    fn learn_iface(&mut self, body: &[u8], big: bool, offset: u64) -> Result<(), PcapError> {
        if body.len() < 8 {
            return Err(PcapError::Malformed {
                what: "pcapng interface",
                offset,
                detail: "block too short".into(),
            });
        }
        let linktype = rd16(body, big) as u32;
        check_linktype(linktype)?;
        let snaplen = rd32(&body[4..], big);
        let (tsresol, offset_s, name) = ng_iface_options(&body[8..], big);
        if self.ifaces.len() >= MAX_PCAPNG_IFACES {
            return Err(PcapError::Malformed {
                what: "pcapng interface",
                offset,
                detail: format!("more than {MAX_PCAPNG_IFACES} interfaces"),
            });
        }
        self.ifaces.push(FileIface {
            linktype,
            snaplen,
            name,
        });
        self.ng_ifaces.push(NgIface {
            tsresol,
            offset_s,
            snaplen,
        });
        Ok(())
    }

    fn next_pcapng(&mut self) -> Option<FilePacket<'a>> {
        loop {
            let rest = &self.bytes[self.pos..];
            if rest.is_empty() {
                return self.end();
            }
            if rest.len() < 12 {
                return self.cut();
            }
            if rest[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                self.ng_big_endian = rest[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
            }
            let big = self.ng_big_endian;
            let ty = rd32(rest, big);
            let len = rd32(&rest[4..], big) as usize;
            if len < 12 || !len.is_multiple_of(4) || len > MAX_PCAPNG_BLOCK {
                return self.fail("pcapng block", format!("block length {len}"));
            }
            if rest.len() < len {
                return self.cut();
            }
            let body = &rest[8..len - 4];
            let block_pos = self.pos;
            self.pos += len;
            if ty == 0x0a0d0d0a {
                self.ng_section_start = self.ng_seen_ifaces;
                continue;
            }
            if ty == 1 {
                // Described after the window the prepass saw (a file read in pieces).
                if self.ng_seen_ifaces >= self.ifaces.len()
                    && let Err(e) = self.learn_iface(body, big, self.base + block_pos as u64)
                {
                    self.pos = block_pos;
                    return self.stop(e);
                }
                self.ng_seen_ifaces += 1;
                continue;
            }
            let (iface, ts, cap, orig, data_off) = match ty {
                6 => {
                    if body.len() < 20 {
                        self.pos = block_pos;
                        return self.fail("pcapng enhanced packet block", "too short".into());
                    }
                    let iface = rd32(body, big) as usize;
                    let ts = (rd32(&body[4..], big) as u64) << 32 | rd32(&body[8..], big) as u64;
                    (
                        iface,
                        Some(ts),
                        rd32(&body[12..], big),
                        rd32(&body[16..], big),
                        20,
                    )
                }
                2 => {
                    if body.len() < 20 {
                        self.pos = block_pos;
                        return self.fail("pcapng packet block", "too short".into());
                    }
                    let iface = rd16(body, big) as usize;
                    let ts = (rd32(&body[4..], big) as u64) << 32 | rd32(&body[8..], big) as u64;
                    (
                        iface,
                        Some(ts),
                        rd32(&body[12..], big),
                        rd32(&body[16..], big),
                        20,
                    )
                }
                3 => {
                    if body.len() < 4 {
                        self.pos = block_pos;
                        return self.fail("pcapng simple packet block", "too short".into());
                    }
                    let orig = rd32(body, big);
                    let snap = self
                        .ng_ifaces
                        .get(self.ng_section_start)
                        .map_or(
                            u32::MAX,
                            |i| if i.snaplen == 0 { u32::MAX } else { i.snaplen },
                        );
                    let cap = orig.min(snap).min((body.len() - 4) as u32);
                    (0, None, cap, orig, 4)
                }
                _ => continue,
            };
            let gi = self.ng_section_start + iface;
            let Some(ifd) = self
                .ng_ifaces
                .get(gi)
                .copied()
                .filter(|_| gi < self.ng_seen_ifaces)
            else {
                self.pos = block_pos;
                return self.fail(
                    "pcapng packet",
                    format!("interface {iface} was not described"),
                );
            };
            if cap > MAX_CAPLEN || data_off + cap as usize > body.len() {
                self.pos = block_pos;
                return self.fail(
                    "pcapng packet",
                    format!("captured length {cap} does not fit its block"),
                );
            }
            let ts_ns = match ts {
                Some(t) => {
                    let ns =
                        ng_ts_to_ns(t, ifd.tsresol) as i128 + ifd.offset_s as i128 * 1_000_000_000;
                    if !(0..=MAX_TS_NS as i128).contains(&ns) {
                        // Skipped and counted: clamping stored it as 1969-12-31T23:59:59.999999999.
                        self.bad_time_packets += 1;
                        self.first_bad_time.get_or_insert(BadTime {
                            offset: self.base + block_pos as u64,
                            raw: t,
                            tsresol: ifd.tsresol,
                            offset_s: ifd.offset_s,
                        });
                        continue;
                    }
                    ns as u64
                }
                None => {
                    self.untimed_packets += 1;
                    self.last_ts
                }
            };
            self.last_ts = ts_ns;
            return Some(FilePacket {
                ts_ns,
                wire_len: orig.max(cap),
                iface: gi.min(u16::MAX as usize) as u16,
                data: &body[data_off..data_off + cap as usize],
            });
        }
    }
}

impl<'a> Iterator for PcapReader<'a> {
    type Item = FilePacket<'a>;
    fn next(&mut self) -> Option<FilePacket<'a>> {
        match self.kind {
            Kind::Pcap { big_endian, nanos } => self.next_pcap(big_endian, nanos),
            Kind::PcapNg => self.next_pcapng(),
        }
    }
}

fn check_linktype(linktype: u32) -> Result<(), PcapError> {
    if u16::try_from(linktype).is_ok_and(|l| STORED_LINKTYPES.contains(&l)) {
        Ok(())
    } else {
        Err(PcapError::UnsupportedLinkType {
            linktype,
            name: linktype_name(linktype),
        })
    }
}

fn rd32(b: &[u8], big: bool) -> u32 {
    let a: [u8; 4] = b[..4].try_into().expect("4 bytes");
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn rd16(b: &[u8], big: bool) -> u16 {
    let a: [u8; 2] = b[..2].try_into().expect("2 bytes");
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// `if_tsresol` (default 6 = µs), `if_tsoffset` and `if_name` from IDB options.
fn ng_iface_options(mut opts: &[u8], big: bool) -> (u8, i64, String) {
    let (mut tsresol, mut offset, mut name) = (6u8, 0i64, String::new());
    while opts.len() >= 4 {
        let code = rd16(opts, big);
        let len = rd16(&opts[2..], big) as usize;
        if code == 0 || opts.len() < 4 + len {
            break;
        }
        let v = &opts[4..4 + len];
        match (code, len) {
            (9, 1) => tsresol = v[0],
            (14, 8) => {
                let a: [u8; 8] = v.try_into().expect("8 bytes");
                offset = if big {
                    i64::from_be_bytes(a)
                } else {
                    i64::from_le_bytes(a)
                };
            }
            (2, _) => {
                name = String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .to_string()
            }
            _ => {}
        }
        let step = (4 + len + 3) & !3;
        opts = opts.get(step..).unwrap_or(&[]);
    }
    (tsresol, offset, name)
}

/// Nanoseconds of a pcapng timestamp, exact (a 64-bit count times 10^9 fits a `u128`).
fn ng_ts_to_ns(ts: u64, tsresol: u8) -> u128 {
    let v = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 != 0 {
        (ts as u128 * 1_000_000_000) >> v.min(127)
    } else if v <= 9 {
        ts as u128 * 10u128.pow(9 - v)
    } else {
        ts as u128 / 10u128.pow((v - 9).min(38))
    }
}

/// The outcome of importing one capture file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub packets: u64,
    pub bytes: u64,
    /// Bytes cut off the end of the file.
    pub truncated: Option<u64>,
    /// A malformed record that ended the import of this file early.
    pub malformed: Option<String>,
    /// Packets longer than the store's record limit, skipped.
    pub too_large: u64,
    /// pcapng simple packet blocks stored with the previous packet's time.
    pub untimed_packets: u64,
    /// Packets skipped because their time is outside 1970..2262 (never stored).
    pub bad_time_packets: u64,
    /// The first of them (where and what), for the message.
    pub first_bad_time: Option<BadTime>,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
}

/// Appends every packet of a capture file (in memory) to `writer`.
///
/// Interfaces of the file become store interface ids `iface_base + index`. `progress` is
/// called now and then with the bytes of the file consumed.
pub fn import(
    writer: &mut SegmentWriter,
    bytes: &[u8],
    iface_base: u16,
    file_name: &str,
    mut progress: impl FnMut(usize),
) -> Result<ImportReport, ImportError> {
    let mut reader = PcapReader::new(bytes)?;
    let mut run = ImportRun::new(iface_base, file_name);
    run.append_all(writer, &mut reader, &mut progress)?;
    progress(reader.position());
    Ok(run.finish(&reader))
}

/// One file's import in progress (the file may be read in windows).
struct ImportRun<'n> {
    rep: ImportReport,
    iface_base: u16,
    file_name: &'n str,
    /// Store interface id of each file interface named to the writer so far.
    ids: Vec<u16>,
    since_progress: u64,
}

impl<'n> ImportRun<'n> {
    fn new(iface_base: u16, file_name: &'n str) -> ImportRun<'n> {
        ImportRun {
            rep: ImportReport::default(),
            iface_base,
            file_name,
            ids: Vec::new(),
            since_progress: 0,
        }
    }

    /// Names the file's interfaces to the writer when the reader has learned new ones.
    ///
    /// File interface `i` gets store id `iface_base + i` unless that id already names
    /// another link type (an earlier file's): then an id of its own link type, or a new one.
    fn name_interfaces(
        &mut self,
        writer: &mut SegmentWriter,
        reader: &PcapReader<'_>,
    ) -> Result<(), PcapError> {
        let ifaces = reader.interfaces();
        if ifaces.len() == self.ids.len() {
            return Ok(());
        }
        let mut table: Vec<IfaceEntry> = writer.interfaces().to_vec();
        for (i, f) in ifaces.iter().enumerate().skip(self.ids.len()) {
            let name = if f.name.is_empty() {
                format!("{}#{i}", self.file_name)
            } else {
                f.name.clone()
            };
            let lt = f.linktype as u16;
            let want = self.iface_base.saturating_add(i as u16);
            let entry = |id| IfaceEntry::new(id, lt, f.snaplen, &name);
            let taken = table.iter().position(|e| e.id.get() == want);
            let id = match taken {
                Some(k) if table[k].linktype.get() == lt => {
                    table[k] = entry(want);
                    want
                }
                None if table.len() < MAX_IFACES => {
                    table.push(entry(want));
                    want
                }
                _ => {
                    if let Some(e) = table.iter().find(|e| e.linktype.get() == lt) {
                        e.id.get()
                    } else if table.len() < MAX_IFACES {
                        let id = table
                            .iter()
                            .map(|e| e.id.get())
                            .max()
                            .map_or(want, |m| m.saturating_add(1).max(want));
                        table.push(entry(id));
                        id
                    } else {
                        return Err(PcapError::TooManyLinkTypes {
                            linktype: f.linktype,
                            name: linktype_name(f.linktype),
                        });
                    }
                }
            };
            self.ids.push(id);
        }
        writer.set_interfaces(&table);
        Ok(())
    }

    /// Appends the packets `reader` yields until it stops (end of file or of its window).
    fn append_all(
        &mut self,
        writer: &mut SegmentWriter,
        reader: &mut PcapReader<'_>,
        progress: &mut impl FnMut(usize),
    ) -> Result<(), ImportError> {
        self.name_interfaces(writer, reader)?;
        while let Some(p) = reader.next() {
            if reader.interfaces().len() != self.ids.len() {
                self.name_interfaces(writer, reader)?;
            }
            let iface = match self.ids.get(usize::from(p.iface)) {
                Some(id) => *id,
                None => self.iface_base.saturating_add(p.iface),
            };
            let meta = RecordMeta {
                ts_ns: p.ts_ns,
                wire_len: p.wire_len,
                iface,
                flags: record_flags::IMPORTED,
            };
            let stored = loop {
                match writer.append(&meta, &[p.data]) {
                    Ok(()) => break true,
                    // Only a non-blocking writer says this: let its writes finish, retry.
                    Err(AppendError::Backpressure) => {
                        writer.poll();
                        std::thread::yield_now();
                    }
                    Err(AppendError::TooLarge { .. }) => {
                        self.rep.too_large += 1;
                        break false;
                    }
                    Err(AppendError::Store(e)) => return Err(ImportError::Store(e)),
                    // The disk failed: stop loudly (the packets are counted in
                    // `writer.state`; `kuroko status` shows them).
                    Err(AppendError::WriteFailed { errors, last, .. }) => {
                        return Err(ImportError::Store(crate::StoreError::WriteFailed {
                            count: errors,
                            last,
                        }));
                    }
                }
            };
            if !stored {
                continue;
            }
            let rep = &mut self.rep;
            rep.packets += 1;
            rep.bytes += p.data.len() as u64;
            rep.first_ts = Some(rep.first_ts.map_or(p.ts_ns, |t| t.min(p.ts_ns)));
            rep.last_ts = Some(rep.last_ts.map_or(p.ts_ns, |t| t.max(p.ts_ns)));
            self.since_progress += 1;
            if self.since_progress == 65536 {
                self.since_progress = 0;
                progress(PcapReader::position(reader));
            }
        }
        Ok(())
    }

    fn finish(mut self, reader: &PcapReader<'_>) -> ImportReport {
        self.rep.truncated = reader.truncated();
        self.rep.malformed = reader.error().map(|e| e.to_string());
        self.rep.untimed_packets = reader.untimed_packets;
        self.rep.bad_time_packets = reader.bad_time_packets;
        self.rep.first_bad_time = reader.first_bad_time;
        self.rep
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Pcap(#[from] PcapError),
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
}

/// Writes a classic pcap with nanosecond timestamps (magic `a1b23c4d`), which Wireshark,
/// tshark and tcpdump read.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W, linktype: u32) -> std::io::Result<PcapWriter<W>> {
        let mut h = [0u8; 24];
        h[..4].copy_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&MAX_CAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    pub fn write(&mut self, ts_ns: u64, wire_len: u32, data: &[u8]) -> std::io::Result<()> {
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&wire_len.max(data.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a pcapng (one section; one interface per link type, described when its first
/// packet comes; nanosecond timestamps), for exports whose packets mix link types.
pub struct PcapNgWriter<W: Write> {
    out: W,
    /// Link type of each interface described so far (the index is the interface id).
    ifaces: Vec<u16>,
}

impl<W: Write> PcapNgWriter<W> {
    pub fn new(mut out: W) -> std::io::Result<PcapNgWriter<W>> {
        // Section header: byte-order magic, version 1.0, section length unknown.
        let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        ng_write_block(&mut out, 0x0a0d_0d0a, &body)?;
        Ok(PcapNgWriter {
            out,
            ifaces: Vec::new(),
        })
    }

    pub fn write(
        &mut self,
        ts_ns: u64,
        wire_len: u32,
        linktype: u16,
        data: &[u8],
    ) -> std::io::Result<()> {
        let iface = match self.ifaces.iter().position(|l| *l == linktype) {
            Some(i) => i,
            None => {
                // Interface description: link type, reserved, snaplen; if_tsresol = 9 (ns).
                let mut body = linktype.to_le_bytes().to_vec();
                body.extend_from_slice(&[0, 0]);
                body.extend_from_slice(&MAX_CAPLEN.to_le_bytes());
                body.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]);
                body.extend_from_slice(&[0; 4]); // opt_endofopt
                ng_write_block(&mut self.out, 1, &body)?;
                self.ifaces.push(linktype);
                self.ifaces.len() - 1
            }
        };
        let mut body = Vec::with_capacity(20 + data.len() + 3);
        body.extend_from_slice(&(iface as u32).to_le_bytes());
        body.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&wire_len.max(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        ng_write_block(&mut self.out, 6, &body)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One pcapng block: type, total length, `body` padded to 32 bits, total length again.
fn ng_write_block<W: Write>(out: &mut W, ty: u32, body: &[u8]) -> std::io::Result<()> {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    out.write_all(&ty.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&[0; 3][..padded - body.len()])?;
    out.write_all(&len.to_le_bytes())
}

/// The writer of an export: a classic pcap when the packets have one link type, a pcapng
/// when they mix (see [`linktypes_in`]).
pub enum ExportWriter<W: Write> {
    Pcap(PcapWriter<W>, u16),
    PcapNg(PcapNgWriter<W>),
}

impl<W: Write> ExportWriter<W> {
    /// A writer for packets of `linktypes` (none: Ethernet).
    pub fn new(out: W, linktypes: &[u16]) -> std::io::Result<ExportWriter<W>> {
        Ok(match linktypes {
            [] => ExportWriter::Pcap(PcapWriter::new(out, LINKTYPE_ETHERNET.into())?, 1),
            [one] => ExportWriter::Pcap(PcapWriter::new(out, (*one).into())?, *one),
            _ => ExportWriter::PcapNg(PcapNgWriter::new(out)?),
        })
    }

    /// Writes one packet. A classic pcap cannot hold a second link type: such a packet is
    /// an error (the caller asked [`linktypes_in`] first, so it does not happen).
    pub fn write(
        &mut self,
        ts_ns: u64,
        wire_len: u32,
        linktype: u16,
        data: &[u8],
    ) -> std::io::Result<()> {
        match self {
            ExportWriter::Pcap(w, lt) if *lt == linktype => w.write(ts_ns, wire_len, data),
            ExportWriter::Pcap(_, lt) => Err(std::io::Error::other(format!(
                "a packet of link type {linktype} in a pcap of link type {lt}"
            ))),
            ExportWriter::PcapNg(w) => w.write(ts_ns, wire_len, linktype, data),
        }
    }

    pub fn into_inner(self) -> W {
        match self {
            ExportWriter::Pcap(w, _) => w.into_inner(),
            ExportWriter::PcapNg(w) => w.into_inner(),
        }
    }
}

/// The link types of the interfaces that the segments holding packets in `[from_ns, to_ns)`
/// name (sorted, each once); an interface a segment does not name is Ethernet.
pub fn linktypes_in(reader: &StoreReader, from_ns: u64, to_ns: u64) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    for s in reader
        .segments()
        .iter()
        .filter(|s| s.overlaps(from_ns, to_ns))
    {
        if s.ifaces.is_empty() {
            out.push(LINKTYPE_ETHERNET);
        }
        out.extend(s.ifaces.iter().map(|i| i.linktype.get()));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The outcome of a pcap export.
#[derive(Clone, Debug, Default)]
pub struct ExportReport {
    pub packets: u64,
    pub bytes: u64,
    pub damage: Vec<Damage>,
    pub lost_segments: u64,
    /// Segments in the range whose writes or fdatasyncs the disk failed: packets from them
    /// are in the pcap, but may not be on the disk after a power cut (see
    /// [`crate::reader::WriteErrorSegment`]).
    pub write_error_segments: Vec<crate::reader::WriteErrorSegment>,
    /// Packets written after a later one because they came more than
    /// [`EXPORT_REORDER_BYTES`] of packets late (0 for any store capture writes).
    pub out_of_order: u64,
}

/// How many bytes of packets `export_pcap` holds back to put them in time order. Stores
/// written by several capture threads (lanes, `writer::lanes`) interleave blocks whose
/// times overlap by about one block (1 MiB by default) per lane; this covers many lanes.
pub const EXPORT_REORDER_BYTES: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
    #[error("cannot write the pcap: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes every stored packet with a time in `[from_ns, to_ns)` for which `filter` says
/// yes to `out` (in write order; in time order when the range holds segments written
/// through lanes, merged with [`EXPORT_REORDER_BYTES`] held back): a classic pcap when the range has one link type, a
/// pcapng when it mixes ([`ExportWriter`]). Only segments, chunks and blocks overlapping
/// the range are read.
pub fn export_pcap<W: Write>(
    reader: &StoreReader,
    from_ns: u64,
    to_ns: u64,
    mut filter: impl FnMut(&PacketView<'_>) -> bool,
    out: W,
) -> Result<ExportReport, ExportError> {
    let mut w = ExportWriter::new(
        std::io::BufWriter::with_capacity(1 << 20, out),
        &linktypes_in(reader, from_ns, to_ns),
    )?;
    let mut rep = ExportReport::default();
    let mut err = None;
    // Packets held back to come out in time order: (time, read order, wire length, link
    // type, bytes), smallest time first; at most EXPORT_REORDER_BYTES of them.
    type Held = std::cmp::Reverse<(u64, u64, u32, u16, Vec<u8>)>;
    let mut held: std::collections::BinaryHeap<Held> = std::collections::BinaryHeap::new();
    let mut held_bytes = 0usize;
    let mut last_out = 0u64;
    let mut emit =
        |h: Held, w: &mut ExportWriter<_>, rep: &mut ExportReport| -> Result<(), std::io::Error> {
            let std::cmp::Reverse((ts, _, wire_len, linktype, data)) = h;
            if ts < last_out {
                rep.out_of_order += 1;
            }
            last_out = last_out.max(ts);
            w.write(ts, wire_len, linktype, &data)?;
            rep.packets += 1;
            rep.bytes += data.len() as u64;
            Ok(())
        };
    // Only segments written through lanes are out of time order by design; any other
    // store (imports of overlapping files included) is exported in write order.
    let reorder = reader
        .segments()
        .iter()
        .any(|s| s.lanes && s.overlaps(from_ns, to_ns));
    let mut n = 0u64;
    let scan = reader.scan_time(from_ns, to_ns, |p| {
        if !filter(p) {
            return ControlFlow::Continue(());
        }
        if !reorder {
            if let Err(e) = w.write(p.ts_ns, p.wire_len, p.linktype, p.data) {
                err = Some(e);
                return ControlFlow::Break(());
            }
            rep.packets += 1;
            rep.bytes += p.data.len() as u64;
            return ControlFlow::Continue(());
        }
        n += 1;
        held_bytes += p.data.len() + 64;
        held.push(std::cmp::Reverse((
            p.ts_ns,
            n,
            p.wire_len,
            p.linktype,
            p.data.to_vec(),
        )));
        while held_bytes > EXPORT_REORDER_BYTES {
            let Some(h) = held.pop() else { break };
            held_bytes -= h.0.4.len() + 64;
            if let Err(e) = emit(h, &mut w, &mut rep) {
                err = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    while let Some(h) = held.pop() {
        emit(h, &mut w, &mut rep)?;
    }
    w.into_inner().flush()?;
    rep.damage = scan.damage;
    rep.lost_segments = scan.lost_segments;
    rep.write_error_segments = scan.write_error_segments;
    Ok(rep)
}

/// Imports a capture file from disk, read in windows (a file that shrinks meanwhile ends as
/// truncated; a read error is an error, see the module docs).
pub fn import_file(
    writer: &mut SegmentWriter,
    path: &std::path::Path,
    iface_base: u16,
    progress: impl FnMut(usize, usize),
) -> Result<ImportReport, ImportError> {
    import_file_windowed(writer, path, iface_base, progress, FILE_WINDOW)
}

/// [`import_file`] reading `window` bytes at a time (more when one record is larger).
fn import_file_windowed(
    writer: &mut SegmentWriter,
    path: &std::path::Path,
    iface_base: u16,
    mut progress: impl FnMut(usize, usize),
    window: usize,
) -> Result<ImportReport, ImportError> {
    let io = |e| ImportError::Store(crate::error::StoreError::io(path, e));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let total = file.metadata().map_err(io)?.len() as usize;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The first window holds at least a classic pcap file header.
    let mut want = window.max(64);
    let mut buf = Vec::with_capacity(want);
    let mut more = fill(&mut file, &mut buf, want).map_err(io)?;
    let mut reader = PcapReader::new_window(&buf, more)?;
    let mut run = ImportRun::new(iface_base, &name);
    let mut progress = |done| progress(done, total);
    loop {
        run.append_all(writer, &mut reader, &mut progress)?;
        if !reader.starved {
            break;
        }
        // Keep the incomplete record that ends this window and read on after it.
        let used = reader.pos;
        if used == 0 {
            // One record is larger than the window.
            want = want.saturating_mul(2);
        }
        let detached = reader.next_window(&[], true);
        buf.drain(..used);
        more = fill(&mut file, &mut buf, want).map_err(io)?;
        reader = detached.next_window(&buf, more);
    }
    progress(reader.position());
    Ok(run.finish(&reader))
}

/// Reads `file` on until `buf` holds `want` bytes; returns whether the file goes on.
fn fill(file: &mut std::fs::File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let need = want.saturating_sub(buf.len());
    if need == 0 {
        return Ok(true);
    }
    let got = file.take(need as u64).read_to_end(buf)?;
    Ok(got == need)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ng_block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (len - 12 - body.len()), 0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }

    fn shb(out: &mut Vec<u8>) {
        let mut b = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        ng_block(out, 0x0a0d_0d0a, &b);
    }

    fn idb(out: &mut Vec<u8>, linktype: u16, snaplen: u32, opts: &[(u16, &[u8])]) {
        let mut b = linktype.to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&snaplen.to_le_bytes());
        for (code, v) in opts {
            b.extend_from_slice(&code.to_le_bytes());
            b.extend_from_slice(&(v.len() as u16).to_le_bytes());
            b.extend_from_slice(v);
            b.resize(b.len().div_ceil(4) * 4, 0);
        }
        b.extend_from_slice(&[0; 4]);
        ng_block(out, 1, &b);
    }

    fn epb(out: &mut Vec<u8>, iface: u32, ts: u64, data: &[u8], orig: u32) {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&orig.to_le_bytes());
        b.extend_from_slice(data);
        ng_block(out, 6, &b);
    }

    #[test]
    fn pcapng_resolutions_offsets_sections_and_simple_packets() {
        let mut f = Vec::new();
        shb(&mut f);
        // Interface 0: default µs. Interface 1: 2^-10 s units, offset +100 s, named.
        idb(&mut f, 1, 0, &[]);
        idb(
            &mut f,
            1,
            128,
            &[(9, &[0x80 | 10]), (14, &100i64.to_le_bytes()), (2, b"eth9")],
        );
        epb(&mut f, 0, 1_500_000, &[1; 60], 60);
        epb(&mut f, 1, 3 * 1024 + 512, &[2; 70], 1514);
        ng_block(&mut f, 3, &{
            let mut b = 200u32.to_le_bytes().to_vec();
            b.extend_from_slice(&[3; 200]);
            b
        });
        // A second section restarts interface numbering: its interface 0 is global 2.
        shb(&mut f);
        idb(&mut f, 1, 0, &[(9, &[9])]);
        epb(&mut f, 0, 42, &[4; 64], 64);
        let mut r = PcapReader::new(&f).unwrap();
        assert_eq!(r.interfaces().len(), 3);
        assert_eq!(r.interfaces()[1].name, "eth9");
        let p: Vec<FilePacket> = r.by_ref().collect();
        assert_eq!(p.len(), 4);
        assert_eq!(
            (p[0].ts_ns, p[0].iface, p[0].data.len()),
            (1_500_000_000, 0, 60)
        );
        assert_eq!(p[1].ts_ns, 100_000_000_000 + 3_500_000_000);
        assert_eq!((p[1].iface, p[1].wire_len), (1, 1514));
        // The simple packet block: no time (the previous one's), cut to interface 0's
        // snaplen (0 = none), from its own length.
        assert_eq!(
            (p[2].ts_ns, p[2].data.len(), p[2].data[0]),
            (p[1].ts_ns, 200, 3)
        );
        assert_eq!(r.untimed_packets, 1);
        assert_eq!((p[3].ts_ns, p[3].iface), (42, 2));
        assert_eq!(r.truncated(), None);
        assert!(r.error().is_none());
    }

    #[test]
    fn foreign_link_types_anywhere_in_a_pcapng_are_refused_up_front() {
        let mut f = Vec::new();
        shb(&mut f);
        idb(&mut f, 1, 0, &[]);
        epb(&mut f, 0, 1, &[0; 60], 60);
        idb(&mut f, 105, 0, &[]);
        assert_eq!(
            PcapReader::new(&f).err(),
            Some(PcapError::UnsupportedLinkType {
                linktype: 105,
                name: "IEEE 802.11"
            })
        );
    }

    /// Packets of a store: (time, interface, wire length, bytes).
    type Stored = Vec<(u64, u16, u32, Vec<u8>)>;

    /// Every packet of a store.
    fn stored(dir: &std::path::Path) -> Stored {
        let mut out = Vec::new();
        StoreReader::open(dir)
            .unwrap()
            .scan(crate::reader::Position::ORIGIN, |p| {
                out.push((p.ts_ns, p.iface, p.wire_len, p.data.to_vec()));
                ControlFlow::Continue(())
            })
            .unwrap();
        out
    }

    fn store_opts() -> crate::StoreOptions {
        crate::StoreOptions {
            budget: 2 * (8 << 20) + crate::META_RESERVE,
            segment_size: 8 << 20,
            ..Default::default()
        }
    }

    /// Imports `file` in windows of `window` bytes into a fresh store; (report, packets,
    /// interface names the writer recorded).
    fn import_in_windows(file: &std::path::Path, window: usize) -> (ImportReport, Stored) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::open(dir.path(), &store_opts()).unwrap();
        let mut last = 0;
        let rep = import_file_windowed(&mut w, file, 0, |done, _| last = done, window).unwrap();
        w.close().unwrap();
        if rep.malformed.is_none() {
            assert_eq!(
                last as u64,
                std::fs::metadata(file).unwrap().len(),
                "progress ends at the file's size"
            );
        }
        (rep, stored(dir.path()))
    }

    #[test]
    fn a_file_read_in_windows_imports_exactly_as_from_memory() {
        // pcapng: two sections, three interfaces, EPB/SPB/PB, packets of 1–9000 B; then
        // the same bytes cut in the middle of a block. Classic pcap (ns), mixed sizes, cut.
        let mut ng = Vec::new();
        shb(&mut ng);
        idb(&mut ng, 1, 0, &[(2, b"eth1")]);
        idb(&mut ng, 1, 0, &[(9, &[9])]);
        for i in 0..300u32 {
            let len = [1usize, 60, 1500, 9000, 333][i as usize % 5];
            epb(
                &mut ng,
                i % 2,
                1_000_000 + i as u64,
                &vec![i as u8; len],
                len as u32 + 4,
            );
            if i % 50 == 7 {
                ng_block(&mut ng, 3, &{
                    let mut b = 90u32.to_le_bytes().to_vec();
                    b.extend_from_slice(&[0xee; 90]);
                    b
                });
            }
        }
        shb(&mut ng);
        idb(&mut ng, 1, 0, &[]);
        epb(&mut ng, 0, 77, &[5; 64], 64);
        let mut pcap = Vec::new();
        pcap.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        pcap.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        pcap.extend_from_slice(&65535u32.to_le_bytes());
        pcap.extend_from_slice(&1u32.to_le_bytes());
        for i in 0..500u32 {
            let len = (i as usize * 37) % 1600 + 14;
            pcap.extend_from_slice(&(1_700_000_000 + i).to_le_bytes());
            pcap.extend_from_slice(&(i * 1000).to_le_bytes());
            pcap.extend_from_slice(&(len as u32).to_le_bytes());
            pcap.extend_from_slice(&(len as u32).to_le_bytes());
            pcap.extend((0..len).map(|j| (i as usize + j) as u8));
        }
        let cut_ng = ng[..ng.len() - 40].to_vec();
        let cut_pcap = pcap[..pcap.len() - 700].to_vec();
        let tmp = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("ng", &ng),
            ("cut_ng", &cut_ng),
            ("pcap", &pcap),
            ("cut_pcap", &cut_pcap),
        ] {
            let path = tmp.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut w = SegmentWriter::open(dir.path(), &store_opts()).unwrap();
            let want_rep = import(&mut w, bytes, 0, name, |_| {}).unwrap();
            w.close().unwrap();
            let want = stored(dir.path());
            assert!(want.len() >= 300, "{name}: {} packets", want.len());
            // Windows smaller than one record (they grow), around a record, and whole.
            for window in [16, 100, 1000, 4096, 65536, FILE_WINDOW] {
                let (rep, got) = import_in_windows(&path, window);
                assert_eq!(rep, want_rep, "{name}, window {window}");
                assert_eq!(got, want, "{name}, window {window}");
            }
        }
    }

    #[test]
    fn a_file_cut_short_while_it_is_imported_ends_as_truncated() {
        // 200,000 packets of 60 B (76 B each in the file); the file is cut to 8 MB at the
        // first progress call (65,536 packets in). A mapped file would die of SIGBUS here.
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&65535u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        for i in 0..200_000u32 {
            f.extend_from_slice(&i.to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&60u32.to_le_bytes());
            f.extend_from_slice(&60u32.to_le_bytes());
            f.extend_from_slice(&[i as u8; 60]);
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("growing.pcap");
        std::fs::write(&path, &f).unwrap();
        let cut_at = 8_000_000u64;
        let handle = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::open(dir.path(), &store_opts()).unwrap();
        let mut cut = false;
        let rep = import_file_windowed(
            &mut w,
            &path,
            0,
            |_, _| {
                if !cut {
                    handle.set_len(cut_at).unwrap();
                    cut = true;
                }
            },
            1 << 20,
        )
        .unwrap();
        w.close().unwrap();
        assert!(cut);
        let whole = (cut_at - 24) / 76;
        assert_eq!(rep.packets, whole);
        assert_eq!(rep.truncated, Some((cut_at - 24) % 76));
        let got = stored(dir.path());
        assert_eq!(got.len() as u64, whole);
        assert_eq!(got.last().unwrap().0, (whole - 1) * 1_000_000_000);
    }

    #[test]
    fn a_foreign_link_type_after_the_first_window_stops_the_import_there() {
        let mut f = Vec::new();
        shb(&mut f);
        idb(&mut f, 1, 0, &[]);
        for i in 0..40 {
            epb(&mut f, 0, i, &[i as u8; 200], 200);
        }
        idb(&mut f, 105, 0, &[]);
        epb(&mut f, 1, 99, &[9; 60], 60);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("wifi-later.pcapng");
        std::fs::write(&path, &f).unwrap();
        // Read whole, it is refused before anything is stored.
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::open(dir.path(), &store_opts()).unwrap();
        assert!(matches!(
            import_file(&mut w, &path, 0, |_, _| {}),
            Err(ImportError::Pcap(PcapError::UnsupportedLinkType {
                linktype: 105,
                ..
            }))
        ));
        w.close().unwrap();
        // Read in windows that end before that interface, the packets before it are stored
        // and the report says why the import stopped.
        let (rep, got) = import_in_windows(&path, 1024);
        assert_eq!(got.len(), 40);
        assert_eq!(rep.packets, 40);
        let why = rep.malformed.expect("a reason");
        assert!(why.contains("link type 105"), "{why}");
    }

    /// A classic pcap of `linktype` with `n` packets of `len` bytes of `fill`.
    fn classic(linktype: u32, n: u32, len: usize, fill: u8) -> Vec<u8> {
        let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&65535u32.to_le_bytes());
        f.extend_from_slice(&linktype.to_le_bytes());
        for i in 0..n {
            f.extend_from_slice(&(100 + i).to_le_bytes());
            f.extend_from_slice(&0u32.to_le_bytes());
            f.extend_from_slice(&(len as u32).to_le_bytes());
            f.extend_from_slice(&(len as u32).to_le_bytes());
            f.extend(std::iter::repeat_n(fill, len));
        }
        f
    }

    #[test]
    fn files_of_different_link_types_keep_their_own_interfaces_and_export_as_pcapng() {
        // SLL2 then Ethernet then raw IP, one writer, one segment: before, each file's
        // interface 0 renamed the one before it and the earlier packets took the later
        // file's link type.
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::open(dir.path(), &store_opts()).unwrap();
        import(&mut w, &classic(276, 3, 80, 0x76), 0, "any.pcap", |_| {}).unwrap();
        import(&mut w, &classic(1, 2, 60, 0x01), 0, "eth.pcap", |_| {}).unwrap();
        import(&mut w, &classic(1, 1, 64, 0x02), 0, "eth2.pcap", |_| {}).unwrap();
        import(&mut w, &classic(101, 2, 40, 0x45), 0, "tun.pcap", |_| {}).unwrap();
        w.close().unwrap();
        let r = StoreReader::open(dir.path()).unwrap();
        let mut seen = Vec::new();
        r.scan(crate::reader::Position::ORIGIN, |p| {
            seen.push((p.data[0], p.iface, p.linktype));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (0x76, 0, 276),
                (0x76, 0, 276),
                (0x76, 0, 276),
                (0x01, 1, 1),
                (0x01, 1, 1),
                (0x02, 1, 1),
                (0x45, 2, 101),
                (0x45, 2, 101),
            ]
        );
        assert_eq!(linktypes_in(&r, 0, u64::MAX), [1, 101, 276]);
        // Mixed: pcapng, one interface per link type; a reader of ours takes it back.
        let mut out = Vec::new();
        let rep = export_pcap(&r, 0, u64::MAX, |_| true, &mut out).unwrap();
        assert_eq!(rep.packets, 8);
        assert_eq!(out[..4], [0x0a, 0x0d, 0x0d, 0x0a]);
        let mut back = PcapReader::new(&out).unwrap();
        let lts: Vec<u32> = back.interfaces().iter().map(|i| i.linktype).collect();
        assert_eq!(lts, [276, 1, 101]);
        let got: Vec<(u8, u16, usize)> = back
            .by_ref()
            .map(|p| (p.data[0], p.iface, p.data.len()))
            .collect();
        assert_eq!(got.len(), 8);
        assert_eq!(got[0], (0x76, 0, 80));
        assert_eq!(got[5], (0x02, 1, 64));
        assert_eq!(got[7], (0x45, 2, 40));
        assert!(back.error().is_none() && back.truncated().is_none());
        // One link type: a classic pcap of that link type.
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::open(dir.path(), &store_opts()).unwrap();
        import(&mut w, &classic(113, 2, 50, 0x71), 0, "sll.pcap", |_| {}).unwrap();
        w.close().unwrap();
        let r = StoreReader::open(dir.path()).unwrap();
        let mut out = Vec::new();
        export_pcap(&r, 0, u64::MAX, |_| true, &mut out).unwrap();
        assert_eq!(u32::from_le_bytes(out[20..24].try_into().unwrap()), 113);
        assert_eq!(PcapReader::new(&out).unwrap().count(), 2);
    }

    #[test]
    fn big_endian_pcap_and_hostile_lengths() {
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
        f.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&65535u32.to_be_bytes());
        f.extend_from_slice(&1u32.to_be_bytes());
        for (sec, usec, len) in [(7u32, 5u32, 60u32), (8, 999_999, 61)] {
            f.extend_from_slice(&sec.to_be_bytes());
            f.extend_from_slice(&usec.to_be_bytes());
            f.extend_from_slice(&len.to_be_bytes());
            f.extend_from_slice(&len.to_be_bytes());
            f.extend(std::iter::repeat_n(0xab, len as usize));
        }
        let p: Vec<FilePacket> = PcapReader::new(&f).unwrap().collect();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].ts_ns, 7_000_005_000);
        assert_eq!(p[1].ts_ns, 8_999_999_000);
        // A record claiming 1 GB: an error after the packets before it, never a panic.
        let mut bad = f.clone();
        bad.extend_from_slice(&[0; 8]);
        bad.extend_from_slice(&(1u32 << 30).to_be_bytes());
        bad.extend_from_slice(&[0; 4]);
        let mut r = PcapReader::new(&bad).unwrap();
        assert_eq!(r.by_ref().count(), 2);
        assert!(matches!(r.error(), Some(PcapError::Malformed { .. })));
        // Every prefix of a valid file parses without panicking.
        for n in 0..f.len() {
            if let Ok(mut r) = PcapReader::new(&f[..n]) {
                let _ = r.by_ref().count();
            }
        }
        assert_eq!(PcapReader::new(&[1, 2, 3]).err(), Some(PcapError::TooShort));
    }
}
