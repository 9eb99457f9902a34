//! Turning a ring frame back into the frame that was on the wire.
//!
//! The kernel strips the outermost 802.1Q/802.1ad tag into `tp_vlan_tci`/`tp_vlan_tpid`
//! (hardware offload or `skb_vlan_untag`); a blackbox must store what was on the wire, so
//! the tag is put back between the MAC addresses and the rest of the frame. This costs no
//! copy of its own: the frame is handed to the store as three parts (addresses, tag, rest)
//! and the store's single copy into its block buffer joins them.

use crate::sys::packet::RawFrame;

/// Length of the destination + source MAC addresses, after which a tag goes.
pub const MAC_ADDRS_LEN: usize = 12;
/// Bytes of one VLAN tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;
/// TPID used when the kernel did not say which one it stripped.
pub const DEFAULT_TPID: u16 = 0x8100;

/// A frame ready for the store: up to three byte slices and its length on the wire.
pub struct WireFrame<'a> {
    parts: [&'a [u8]; 3],
    nparts: usize,
    /// Length on the wire, including the re-inserted tag.
    pub wire_len: u32,
    /// Bytes stored (sum of the parts).
    pub stored_len: u32,
    /// Nanoseconds since the epoch.
    pub ts_ns: u64,
    pub hardware_timestamp: bool,
}

impl<'a> WireFrame<'a> {
    pub fn parts(&self) -> &[&'a [u8]] {
        // 0: a frame whose tag was put back in place, one part.
        &self.parts[..self.nparts.max(1)]
    }
    /// A stripped VLAN tag was put back (here, as a part, or in place by the zero-copy walk).
    pub fn vlan_restored(&self) -> bool {
        self.nparts != 1
    }
    pub fn truncated(&self) -> bool {
        self.stored_len < self.wire_len
    }
}

/// Rebuilds the on-the-wire view of `f`; `tag` is scratch space for the tag bytes.
pub fn rebuild<'a>(f: &RawFrame<'a>, tag: &'a mut [u8; VLAN_TAG_LEN]) -> WireFrame<'a> {
    let ts_ns = u64::from(f.ts_sec) * 1_000_000_000 + u64::from(f.ts_nsec);
    let hardware_timestamp = f.status & libc::TP_STATUS_TS_RAW_HARDWARE != 0;
    // A tag the zero-copy walk already put back in place (`sys::zc`): the frame is whole.
    let restored = f.status & kuroko_ring::format::RING_STATUS_VLAN_RESTORED != 0;
    let has_tag = !restored
        && (f.status & libc::TP_STATUS_VLAN_VALID != 0 || f.vlan_tci != 0)
        && f.data.len() >= MAC_ADDRS_LEN;
    if has_tag {
        let tpid = if f.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && f.vlan_tpid != 0 {
            f.vlan_tpid
        } else {
            DEFAULT_TPID
        };
        tag[..2].copy_from_slice(&tpid.to_be_bytes());
        tag[2..].copy_from_slice(&f.vlan_tci.to_be_bytes());
        let (addrs, rest) = f.data.split_at(MAC_ADDRS_LEN);
        WireFrame {
            parts: [addrs, &tag[..], rest],
            nparts: 3,
            wire_len: f.wire_len.saturating_add(VLAN_TAG_LEN as u32),
            stored_len: (f.data.len() + VLAN_TAG_LEN) as u32,
            ts_ns,
            hardware_timestamp,
        }
    } else {
        WireFrame {
            parts: [f.data, &[], &[]],
            nparts: if restored { 0 } else { 1 },
            wire_len: f.wire_len,
            stored_len: f.data.len() as u32,
            ts_ns,
            hardware_timestamp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(data: &[u8], status: u32, tci: u16, tpid: u16, wire_len: u32) -> RawFrame<'_> {
        RawFrame {
            data,
            wire_len,
            ts_sec: 1_700_000_000,
            ts_nsec: 123_456_789,
            status,
            vlan_tci: tci,
            vlan_tpid: tpid,
        }
    }

    fn joined(w: &WireFrame<'_>) -> Vec<u8> {
        w.parts().concat()
    }

    #[test]
    fn untagged_frame_is_passed_through() {
        let data: Vec<u8> = (0..60u8).collect();
        let mut tag = [0; 4];
        let r = raw(&data, libc::TP_STATUS_USER, 0, 0, 60);
        let w = rebuild(&r, &mut tag);
        assert_eq!(joined(&w), data);
        assert_eq!(w.wire_len, 60);
        assert!(!w.truncated());
        assert_eq!(w.ts_ns, 1_700_000_000_123_456_789);
    }

    #[test]
    fn stripped_tag_goes_back_after_the_mac_addresses() {
        // On the wire: dst, src, 88a8 0064, 0800, payload. The kernel hands us the frame
        // without the 4 tag bytes.
        let mut wire = vec![0xaa; 6];
        wire.extend([0xbb; 6]);
        wire.extend([0x88, 0xa8, 0x00, 0x64]);
        wire.extend([0x08, 0x00]);
        wire.extend(1..=50u8);
        let mut stripped = wire[..12].to_vec();
        stripped.extend_from_slice(&wire[16..]);
        let st = libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
        let r = raw(&stripped, st, 0x0064, 0x88a8, stripped.len() as u32);
        let mut tag = [0; 4];
        let w = rebuild(&r, &mut tag);
        assert_eq!(joined(&w), wire);
        assert_eq!(w.wire_len as usize, wire.len());
        assert_eq!(w.stored_len as usize, wire.len());
    }

    #[test]
    fn tag_without_tpid_uses_8021q_and_tci_zero_needs_the_valid_bit() {
        let data = [7u8; 20];
        let mut tag = [0; 4];
        let w = rebuild(&raw(&data, libc::TP_STATUS_VLAN_VALID, 0, 0, 20), &mut tag);
        assert_eq!(&joined(&w)[12..16], &[0x81, 0x00, 0x00, 0x00]);
        let mut tag2 = [0; 4];
        let w2 = rebuild(&raw(&data, 0, 0, 0, 20), &mut tag2);
        assert_eq!(joined(&w2), data);
    }

    #[test]
    fn snaplen_truncation_is_reported() {
        let data = [1u8; 64];
        let mut tag = [0; 4];
        let w = rebuild(&raw(&data, 0, 0, 0, 1500), &mut tag);
        assert!(w.truncated());
        assert_eq!(w.wire_len, 1500);
    }
}
