//! `vpn_large_upload`: per VPN client (an address in `[site] vpn_pools`), the payload it
//! sent (`bytes_up` of its sessions as client, `bytes_down` of sessions where it is the
//! server) summed over a sliding `detect.upload_window` (default 24 h); when the sum
//! reaches `detect.large_upload` (default 100 MB) the client is reported, with the
//! sessions that made up the sum as evidence. One finding per client; the servers are
//! aggregated as peers.
//!
//! State across sessions (the windows) is bounded: `MAX_WINDOW_ENTRIES` sessions per
//! client (older ones merged, counted) and `MAX_CLIENTS` clients (idle ones pruned first,
//! then new ones counted and skipped). It is persisted with the findings so that a
//! restart neither forgets a half-full window nor counts a session twice.

use super::Hit;
use crate::aggregate::EvidenceRef;
use crate::catalog::RuleId;
use crate::context::Context;
use kuroko_model::SessionRecord;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

/// Sessions remembered per client within the window.
pub const MAX_WINDOW_ENTRIES: usize = 4096;
/// VPN clients tracked at once.
pub const MAX_CLIENTS: usize = 65_536;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
struct Entry {
    start_ns: i64,
    bytes: u64,
    /// Already reported as evidence.
    reported: bool,
    /// `None` once merged into an aggregate of older sessions.
    evidence: Option<EvidenceRef>,
    /// The session's id while only its provisional (`open`) records were seen: a later
    /// record of the same session (an update, or its final record) replaces `bytes`
    /// instead of adding a second entry (issue 15). Never merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
struct Window {
    entries: VecDeque<Entry>,
    total: u64,
}

/// Upload windows of all VPN clients.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct VpnUploads {
    windows: BTreeMap<IpAddr, Window>,
    /// Entries merged because a window held `MAX_WINDOW_ENTRIES`.
    pub merged_entries: u64,
    /// Sessions of new clients skipped because `MAX_CLIENTS` were tracked.
    pub clients_dropped: u64,
}

impl VpnUploads {
    pub fn observe(&mut self, ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
        if ctx.vpn_pools.is_empty() {
            return;
        }
        if ctx.is_vpn(s.client.ip) && s.bytes_up > 0 {
            self.add(ctx, s.client.ip, s.server.ip, s.bytes_up, s, out);
        }
        if ctx.is_vpn(s.server.ip) && s.bytes_down > 0 && !ctx.is_vpn(s.client.ip) {
            self.add(ctx, s.server.ip, s.client.ip, s.bytes_down, s, out);
        }
    }

    fn add(
        &mut self,
        ctx: &Context,
        vpn: IpAddr,
        peer: IpAddr,
        bytes: u64,
        s: &SessionRecord,
        out: &mut Vec<Hit>,
    ) {
        let now = s.start.nanos();
        if !self.windows.contains_key(&vpn) && self.windows.len() >= MAX_CLIENTS {
            let horizon = now.saturating_sub(ctx.upload_window_ns);
            self.windows
                .retain(|_, w| w.entries.back().is_some_and(|e| e.start_ns > horizon));
            if self.windows.len() >= MAX_CLIENTS {
                self.clients_dropped += 1;
                return;
            }
        }
        let w = self.windows.entry(vpn).or_default();
        // A session seen open before: its new record replaces what its last one said.
        if let Some(e) = w
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.open.as_deref() == Some(s.id.as_str()))
        {
            w.total = w.total.saturating_sub(e.bytes).saturating_add(bytes);
            e.bytes = bytes;
            e.evidence = Some(EvidenceRef::of(s));
            if !s.open {
                e.open = None;
            }
        } else {
            w.entries.push_back(Entry {
                start_ns: now,
                bytes,
                reported: false,
                evidence: Some(EvidenceRef::of(s)),
                open: s.open.then(|| s.id.clone()),
            });
            w.total = w.total.saturating_add(bytes);
        }
        // Slide: drop what fell out of the window, relative to the newest session.
        let newest = w.entries.iter().map(|e| e.start_ns).max().unwrap_or(now);
        let horizon = newest.saturating_sub(ctx.upload_window_ns);
        w.entries.retain(|e| {
            let keep = e.start_ns > horizon;
            if !keep {
                w.total = w.total.saturating_sub(e.bytes);
            }
            keep
        });
        if w.entries.len() > MAX_WINDOW_ENTRIES {
            // Merge the two oldest of closed sessions: the sum stays right, their evidence
            // goes. An open session's entry stays whole, to be replaced by its next record.
            let closed = |e: &Entry| e.open.is_none();
            if let Some(i) = (0..w.entries.len() - 1)
                .find(|&i| closed(&w.entries[i]) && closed(&w.entries[i + 1]))
                && let Some(b) = w.entries.remove(i + 1)
            {
                let a = &mut w.entries[i];
                a.start_ns = b.start_ns;
                a.bytes = a.bytes.saturating_add(b.bytes);
                a.reported = a.reported && b.reported;
                a.evidence = None;
                self.merged_entries += 1;
            }
        }
        if w.total < ctx.large_upload {
            return;
        }
        // Over the threshold: this session is a hit, and the earlier ones not yet
        // reported become its evidence too.
        let mut earlier = Vec::new();
        let last = w.entries.len() - 1;
        for (i, e) in w.entries.iter_mut().enumerate() {
            if !e.reported {
                e.reported = true;
                if i != last
                    && let Some(ev) = &e.evidence
                {
                    earlier.push(ev.clone());
                }
            }
        }
        out.push(Hit {
            rule: RuleId::VpnLargeUpload,
            client: Some(vpn),
            server: None,
            peer: Some(peer.to_string()),
            signals: Vec::new(),
            metric: Some(w.total),
            earlier,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::session;
    use kuroko_model::Timestamp;
    use kuroko_model::config::Config;

    const MB: u64 = 1_000_000;
    const HOUR: i64 = 3_600_000_000_000;

    fn ctx() -> Context {
        let mut c = Config::default();
        c.site.vpn_pools = vec!["10.200.0.0/24".into()];
        Context::new(&c).unwrap()
    }

    fn upload(client: &str, mb: u64, hours: i64, n: u16) -> SessionRecord {
        let mut s = session("http", client, 40000 + n, "10.0.0.30", 443);
        s.id = format!("up-{client}-{n}");
        s.bytes_up = mb * MB;
        s.start = Timestamp(s.start.nanos() + hours * HOUR);
        s.end = s.start;
        s
    }

    fn feed(v: &mut VpnUploads, ctx: &Context, s: &SessionRecord) -> Vec<Hit> {
        let mut out = Vec::new();
        v.observe(ctx, s, &mut out);
        out
    }

    #[test]
    fn fifty_megabytes_is_not_a_finding_and_one_hundred_twenty_is() {
        let ctx = ctx();
        let mut v = VpnUploads::default();
        assert!(
            feed(&mut v, &ctx, &upload("10.200.0.9", 50, 0, 1)).is_empty(),
            "a 50 MB VPN upload"
        );
        let h = feed(&mut v, &ctx, &upload("10.200.0.9", 70, 1, 2));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].client, Some("10.200.0.9".parse().unwrap()));
        assert_eq!(h[0].metric, Some(120 * MB));
        assert_eq!(
            h[0].earlier.len(),
            1,
            "the first 50 MB session is evidence too"
        );
        assert_eq!(h[0].earlier[0].session, "up-10.200.0.9-1");
        // Not in a VPN pool: nothing.
        assert!(feed(&mut v, &ctx, &upload("10.0.0.9", 500, 0, 3)).is_empty());
    }

    #[test]
    fn the_window_slides() {
        let ctx = ctx();
        let mut v = VpnUploads::default();
        assert!(feed(&mut v, &ctx, &upload("10.200.0.9", 60, 0, 1)).is_empty());
        // 25 hours later: the first 60 MB fell out of the 24 h window.
        assert!(feed(&mut v, &ctx, &upload("10.200.0.9", 60, 25, 2)).is_empty());
        let h = feed(&mut v, &ctx, &upload("10.200.0.9", 60, 26, 3));
        assert_eq!(h[0].metric, Some(120 * MB));
        // Another client's window is its own.
        assert!(feed(&mut v, &ctx, &upload("10.200.0.10", 60, 26, 4)).is_empty());
    }

    #[test]
    fn windows_are_bounded() {
        let ctx = ctx();
        let mut v = VpnUploads::default();
        for n in 0..(MAX_WINDOW_ENTRIES as u16 + 10) {
            let mut s = upload("10.200.0.9", 0, 0, n);
            s.bytes_up = 1000;
            feed(&mut v, &ctx, &s);
        }
        assert_eq!(v.merged_entries, 10);
        let w = &v.windows[&"10.200.0.9".parse().unwrap()];
        assert_eq!(w.entries.len(), MAX_WINDOW_ENTRIES);
        assert_eq!(
            w.total,
            1000 * (MAX_WINDOW_ENTRIES as u64 + 10),
            "merging keeps the sum"
        );
    }
}
