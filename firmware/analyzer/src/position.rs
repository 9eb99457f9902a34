//! Where a packet is in the segment store, and the session ids derived from it.
//!
//! A session id is the position of the session's first packet, written
//! `<segment seq>-<block>-<index>` in hex. Re-analysing the same store after a crash
//! therefore produces the same ids, which is what lets the driver suppress sessions it
//! already emitted and lets the index drop duplicates.

use serde::{Deserialize, Serialize};

/// Position of one packet: segment sequence number, block within the segment, packet
/// index within the block. Ordered as the store orders packets.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct PacketPos {
    pub seq: u64,
    pub block: u64,
    pub idx: u64,
}

impl PacketPos {
    pub const fn new(seq: u64, block: u64, idx: u64) -> Self {
        PacketPos { seq, block, idx }
    }

    /// The stable session id of a session whose first packet is here.
    pub fn session_id(self) -> String {
        format!("{:x}-{:x}-{:x}", self.seq, self.block, self.idx)
    }

    /// Parses an id made by [`PacketPos::session_id`].
    pub fn from_session_id(id: &str) -> Option<Self> {
        let mut it = id.split('-').map(|p| u64::from_str_radix(p, 16));
        let pos = PacketPos::new(it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?);
        it.next().is_none().then_some(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_order_like_positions() {
        let a = PacketPos::new(0x1f, 3, 0x100);
        assert_eq!(a.session_id(), "1f-3-100");
        assert_eq!(PacketPos::from_session_id("1f-3-100"), Some(a));
        assert_eq!(PacketPos::from_session_id("1f-3"), None);
        assert!(PacketPos::new(1, 0, 5) < PacketPos::new(1, 1, 0));
    }
}
