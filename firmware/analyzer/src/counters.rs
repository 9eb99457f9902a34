//! The analyzer's counters, named after the event they count.
//!
//! Persisted in the checkpoint (so `kuroko status` can show them and they survive
//! restarts) and printed at the end of `kuroko analyze`. Every malformed or dropped thing
//! the analyzer meets ends up here rather than in a log line.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Packets read from the store.
    pub packets: u64,
    /// Captured bytes of those packets.
    pub bytes: u64,
    /// Frames that are not IP (ARP, LLDP, STP, …).
    pub non_ip_frames: u64,
    /// Frames too short or broken to decode.
    pub decode_errors: u64,
    /// Tunnels nested too deep to follow.
    pub tunnel_too_deep: u64,
    /// Packets decapsulated from a tunnel (GRE, ERSPAN, VXLAN).
    pub tunneled_packets: u64,
    /// IP fragments seen, datagrams completed, fragments given up.
    pub ip_fragments: u64,
    pub ip_datagrams_reassembled: u64,
    pub ip_fragments_dropped: u64,
    /// Datagrams dropped because a fragment overlapped another (as Linux and RFC 5722 drop
    /// them; an evasion signature), and exact duplicate fragments ignored.
    pub ip_fragment_overlaps: u64,
    pub ip_fragment_duplicates: u64,
    /// Flows created, and how flows ended.
    pub flows_created: u64,
    pub evicted_flows: u64,
    pub idle_timeouts: u64,
    pub active_timeouts: u64,
    /// Sessions written to the session log.
    pub sessions_emitted: u64,
    /// Sessions produced again while replaying after a restart and not written twice.
    pub sessions_suppressed_on_replay: u64,
    /// Packets of already-emitted sessions skipped while replaying.
    pub packets_skipped_on_replay: u64,
    /// Emitted sessions dropped from the replay window (`MAX_REPLAY_SESSIONS`).
    pub replay_window_overflow: u64,
    /// TCP reassembly.
    pub tcp_retransmissions: u64,
    pub tcp_overlaps: u64,
    /// Of those, segments whose overlapping bytes differed (`[analyzer]
    /// tcp_overlap_policy` chose which won; the session is flagged `overlap_conflict`).
    pub tcp_overlap_conflicts: u64,
    /// SYNs inside an established connection with another ISN, ignored as Linux ignores
    /// them (challenge ACK); the session is flagged `syn_in_connection`.
    pub tcp_syn_ignored: u64,
    /// RSTs whose sequence number was not the next expected one, ignored as Linux ignores
    /// them (RFC 5961); the session is flagged `rst_ignored`.
    pub tcp_rst_ignored: u64,
    pub tcp_gaps: u64,
    pub tcp_missing_bytes: u64,
    pub ooo_dropped: u64,
    /// Of those, dropped because all streams together filled `[analyzer] memory_budget`.
    pub memory_budget_drops: u64,
    /// TCP packets (late ACKs, retransmitted FINs or RSTs) that came after their
    /// connection's close was complete and its session emitted: counted here instead of
    /// starting a session of their own.
    pub late_packets_after_close: u64,
    /// Provisional (`open`) records of sessions still in progress written to the log.
    pub provisional_records: u64,
    /// Most memory held by out-of-order TCP data at once (payload plus bookkeeping).
    pub reassembly_peak_bytes: u64,
    /// Most memory held by all flows' buffers at once (out-of-order data, bytes kept for
    /// identification, data channels), at their allocation's cost.
    pub flow_buffers_peak_bytes: u64,
    /// Streams whose first bytes never let identification decide within the limit.
    pub identify_gave_up: u64,
    /// FTP (and similar) expectations.
    pub expectations_added: u64,
    pub expectations_matched: u64,
    pub expectations_dropped: u64,
    /// Announced data addresses (PASV/EPSV/PORT/EPRT) that are neither endpoint of the
    /// control connection: a passive one is expected at the control server instead, an
    /// active one refused; the control session is flagged `foreign_data_address`.
    pub expectations_foreign_address: u64,
    /// Crash loops broken (`crashguard`): times the packets where the analyzer died
    /// repeatedly were skipped, and how many packets that skipped.
    pub crash_loop_skips: u64,
    pub packets_skipped_after_crashes: u64,
    /// Reconstructed objects stored, objects already present, objects evicted for budget.
    pub files_stored: u64,
    pub files_deduplicated: u64,
    pub files_evicted: u64,
    pub files_write_errors: u64,
    pub objects_truncated: u64,
    /// Records of `files/objects.log` dropped on a start: past the synced length or cut
    /// short by a crash (`files_log_torn`; their objects are stored again by the replay),
    /// and before it with a wrong checksum (`files_log_damaged`: damage on the disk).
    pub files_log_torn: u64,
    pub files_log_damaged: u64,
    /// YARA (`crate::yara`): objects scanned, results taken from the digest cache,
    /// objects with at least one match, objects over `yara_max_file_size` (not scanned),
    /// scans stopped at `yara_timeout`, scans libyara failed.
    pub yara_scanned: u64,
    pub yara_cached: u64,
    pub yara_matched_files: u64,
    pub yara_too_large: u64,
    pub yara_timeouts: u64,
    pub yara_errors: u64,
}
