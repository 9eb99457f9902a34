//! Where captured frames go: the segment store's writer, behind a small trait so the
//! engine can be tested without a disk and the store can evolve on its own.
//!
//! The contract the hot path relies on: `append` never blocks and never allocates; when
//! the store's buffers are all in flight it answers [`Appended::Backpressure`] at once and
//! the engine counts the packet as lost to backpressure. `append` copies the parts into the
//! store's aligned block buffer: that is the single copy of a packet between the kernel
//! ring and the disk.

/// What the store needs to know about a packet besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Index of the capture interface in this capture's interface list.
    pub interface: u16,
    /// Length on the wire (≥ the stored length when truncated).
    pub wire_len: u32,
    /// The timestamp came from the NIC.
    pub hardware_timestamp: bool,
    /// A VLAN tag the kernel had stripped was put back into the frame.
    pub vlan_restored: bool,
}

/// The outcome of one append that did not fail fatally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    Stored,
    /// Every buffer is in flight: the packet was not stored (count it).
    Backpressure,
    /// The packet is longer than the store accepts; the engine retries with this many bytes.
    TooLarge {
        max: u32,
    },
}

/// A destination for captured frames. One per capture thread; never shared.
pub trait RecordSink: Send {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Stores one frame given as consecutive parts. Must not block or allocate.
    fn append(&mut self, meta: &PacketMeta, parts: &[&[u8]]) -> Result<Appended, Self::Error>;
    /// Reaps completed writes (non-blocking).
    fn poll(&mut self) -> Result<(), Self::Error>;
    /// Writes out a partly filled buffer so recent packets reach the disk (idle periods).
    fn flush(&mut self) -> Result<(), Self::Error>;
    /// Flushes, waits for every write and seals; the sink is not used afterwards.
    fn close(&mut self) -> Result<(), Self::Error>;

    /// Zero-copy: makes the sink accept ring blocks ([`RecordSink::store_ring_block`]) and
    /// returns the largest it takes (bytes of ring memory); 0 (the default): the sink
    /// stores records only.
    fn enable_ring_blocks(&mut self) -> usize {
        0
    }
    /// Zero-copy: stores a walked ring block as it is (see `sys::zc`). Must not block or
    /// allocate. After `Queued` the engine holds the block until the sink returns its token
    /// through [`RecordSink::take_ring_done`]. The default refuses (the engine copies).
    fn store_ring_block(
        &mut self,
        _block: &crate::sys::zc::HeldBlock,
    ) -> Result<kuroko_ring::RingAppend, Self::Error> {
        Ok(kuroko_ring::RingAppend::Refused)
    }
    /// Zero-copy: registers the capture thread's rings with the store's io_uring (fixed
    /// buffers); false (the default) if not done. Called once before the hot loop.
    fn register_rings(&mut self, _rings: &[&crate::sys::packet::RxRing]) -> bool {
        false
    }
    /// Zero-copy: the tokens of ring blocks whose writes finished (the engine hands those
    /// blocks back to the kernel).
    fn take_ring_done(&mut self, _f: &mut dyn FnMut(u64)) {}
}
