//! Environment analysis: what the network carried, gathered from the session log.
//!
//! One pass over the session records, constant memory: traffic per protocol in hourly
//! buckets (coarsened to daily buckets when the span outgrows [`MAX_HOUR_BUCKETS`]), a
//! capped set of protocol names (the rest counted as `other`), traffic by direction
//! relative to the site's internal networks, and file transfers per protocol and direction
//! from `files`, `ftp.files` and `mail.attachments` (the same object is counted once per
//! session even when several of those lists name it).

use ipnet::IpNet;
use kuroko_model::SessionRecord;
use kuroko_model::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

/// Hourly buckets kept before switching to days: 45 days of hours.
pub const MAX_HOUR_BUCKETS: usize = 24 * 45;
/// Daily buckets kept at most (about two years); older days are counted in `dropped_buckets`.
pub const MAX_DAY_BUCKETS: usize = 800;
/// Distinct protocol names tracked; further names fold into `other`.
pub const MAX_PROTOCOLS: usize = 48;
/// Distinct sources, destinations and domains tracked each; further ones are counted in
/// `folded_hosts` (the top of a site's list is found long before the cap).
pub const MAX_HOSTS: usize = 8192;
/// The name traffic of untracked protocols is shown under.
pub const OTHER: &str = "other";

/// Where traffic went relative to `[site] internal_networks`.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    InternalToInternal,
    InternalToExternal,
    ExternalToInternal,
    ExternalToExternal,
}

impl Direction {
    pub const ALL: [Direction; 4] = [
        Direction::InternalToInternal,
        Direction::InternalToExternal,
        Direction::ExternalToInternal,
        Direction::ExternalToExternal,
    ];
    pub fn label(self, lang: kuroko_model::finding::Lang) -> &'static str {
        use kuroko_model::finding::Lang::*;
        match (self, lang) {
            (Direction::InternalToInternal, Ja) => "内部 → 内部",
            (Direction::InternalToExternal, Ja) => "内部 → 外部",
            (Direction::ExternalToInternal, Ja) => "外部 → 内部",
            (Direction::ExternalToExternal, Ja) => "外部 → 外部",
            (Direction::InternalToInternal, En) => "internal → internal",
            (Direction::InternalToExternal, En) => "internal → external",
            (Direction::ExternalToInternal, En) => "external → internal",
            (Direction::ExternalToExternal, En) => "external → external",
        }
    }
}

#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub sessions: u64,
    pub bytes: u64,
}

/// Traffic of one host or domain, within and outside the site's business hours.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostTotals {
    pub business: Totals,
    pub off_hours: Totals,
}

impl HostTotals {
    pub fn bytes(&self) -> u64 {
        self.business.bytes.saturating_add(self.off_hours.bytes)
    }
    pub fn sessions(&self) -> u64 {
        self.business
            .sessions
            .saturating_add(self.off_hours.sessions)
    }
}

/// Files moved, per protocol and direction (`upload` client → server, `download` back).
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileTotals {
    pub uploads: u64,
    pub upload_bytes: u64,
    pub downloads: u64,
    pub download_bytes: u64,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct EnvStats {
    /// 3600 (hourly) or 86400 (daily).
    pub bucket_secs: i64,
    /// Bucket start (Unix seconds, UTC) → protocol → bytes (both directions).
    pub buckets: BTreeMap<i64, BTreeMap<String, u64>>,
    pub protocols: BTreeMap<String, Totals>,
    pub directions: BTreeMap<Direction, Totals>,
    pub files: BTreeMap<String, FileTotals>,
    pub sessions: u64,
    pub bytes: u64,
    pub packets: u64,
    /// By client address, server address and server name (SNI, Host, query), each
    /// split into business hours and the rest (`[site] business_hours`).
    pub sources: BTreeMap<String, HostTotals>,
    pub destinations: BTreeMap<String, HostTotals>,
    pub domains: BTreeMap<String, HostTotals>,
    /// All traffic within and outside business hours.
    pub hours: HostTotals,
    /// Hosts or domains not tracked past `MAX_HOSTS`.
    pub folded_hosts: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// Sessions whose protocol name was folded into `other` because of the cap.
    pub folded_protocols: u64,
    /// Buckets dropped (oldest first) because the span outgrew the cap.
    pub dropped_buckets: u64,
}

impl EnvStats {
    /// Protocols by bytes, largest first.
    /// The `n` largest of `map` by bytes, largest first.
    pub fn top(map: &BTreeMap<String, HostTotals>, n: usize) -> Vec<(&str, HostTotals)> {
        let mut v: Vec<(&str, HostTotals)> = map.iter().map(|(k, t)| (k.as_str(), *t)).collect();
        v.sort_by(|a, b| b.1.bytes().cmp(&a.1.bytes()).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    pub fn protocols_by_bytes(&self) -> Vec<(&str, Totals)> {
        let mut v: Vec<(&str, Totals)> = self
            .protocols
            .iter()
            .map(|(k, t)| (k.as_str(), *t))
            .collect();
        v.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(b.0)));
        v
    }
}

/// Folds session records into [`EnvStats`].
pub struct EnvCollector {
    internal: Vec<IpNet>,
    stats: EnvStats,
    hours: Option<(kuroko_model::config::BusinessHours, chrono_tz::Tz)>,
}

impl EnvCollector {
    pub fn new(internal_networks: Vec<IpNet>) -> Self {
        EnvCollector {
            internal: internal_networks,
            stats: EnvStats {
                bucket_secs: 3600,
                ..Default::default()
            },
            hours: None,
        }
    }

    /// Splits traffic into the site's business hours and the rest (without it, all
    /// traffic counts as business hours).
    pub fn with_business_hours(
        mut self,
        hours: kuroko_model::config::BusinessHours,
        tz: chrono_tz::Tz,
    ) -> Self {
        self.hours = Some((hours, tz));
        self
    }

    fn add_host(
        map: &mut BTreeMap<String, HostTotals>,
        folded: &mut u64,
        key: &str,
        business: bool,
        bytes: u64,
    ) {
        if !map.contains_key(key) && map.len() >= MAX_HOSTS {
            *folded += 1;
            return;
        }
        let h = map.entry(key.to_string()).or_default();
        let t = if business {
            &mut h.business
        } else {
            &mut h.off_hours
        };
        t.sessions += 1;
        t.bytes = t.bytes.saturating_add(bytes);
    }

    fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal.iter().any(|n| n.contains(&ip))
    }

    pub fn add(&mut self, s: &SessionRecord) {
        let st = &mut self.stats;
        let bytes = s.bytes_up.saturating_add(s.bytes_down);
        st.sessions += 1;
        st.bytes = st.bytes.saturating_add(bytes);
        st.packets = st.packets.saturating_add(s.packets);
        st.first = Some(st.first.map_or(s.start, |f| f.min(s.start)));
        st.last = Some(st.last.map_or(s.end, |l| l.max(s.end.max(s.start))));

        let proto = if st.protocols.contains_key(&s.protocol) || st.protocols.len() < MAX_PROTOCOLS
        {
            s.protocol.clone()
        } else {
            st.folded_protocols += 1;
            OTHER.to_string()
        };
        let t = st.protocols.entry(proto.clone()).or_default();
        t.sessions += 1;
        t.bytes = t.bytes.saturating_add(bytes);

        let secs = s.start.nanos().div_euclid(1_000_000_000);
        let bucket = secs - secs.rem_euclid(st.bucket_secs);
        *st.buckets
            .entry(bucket)
            .or_default()
            .entry(proto.clone())
            .or_default() += bytes;
        self.bound_buckets();

        let business = self
            .hours
            .as_ref()
            .is_none_or(|(h, tz)| h.contains(s.start, tz));
        {
            let st = &mut self.stats;
            let t = if business {
                &mut st.hours.business
            } else {
                &mut st.hours.off_hours
            };
            t.sessions += 1;
            t.bytes = t.bytes.saturating_add(bytes);
            let folded = &mut st.folded_hosts;
            Self::add_host(
                &mut st.sources,
                folded,
                &s.client.ip.to_string(),
                business,
                bytes,
            );
            Self::add_host(
                &mut st.destinations,
                folded,
                &s.server.ip.to_string(),
                business,
                bytes,
            );
            if let Some(host) = s.host() {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                Self::add_host(&mut st.domains, folded, &host, business, bytes);
            }
        }

        let ci = self.is_internal(s.client.ip);
        let si = self.is_internal(s.server.ip);
        let dir = match (ci, si) {
            (true, true) => Direction::InternalToInternal,
            (true, false) => Direction::InternalToExternal,
            (false, true) => Direction::ExternalToInternal,
            (false, false) => Direction::ExternalToExternal,
        };
        let d = self.stats.directions.entry(dir).or_default();
        d.sessions += 1;
        d.bytes = d.bytes.saturating_add(bytes);

        self.add_files(s, &proto);
    }

    fn add_files(&mut self, s: &SessionRecord, proto: &str) {
        let mut seen: HashSet<(String, bool)> = HashSet::new();
        let mut moved: Vec<(bool, u64)> = Vec::new();
        let mut note = |key: String, upload: bool, bytes: u64, moved: &mut Vec<(bool, u64)>| {
            if seen.insert((key, upload)) {
                moved.push((upload, bytes));
            }
        };
        for f in &s.files {
            if f.kind == "mail-body" || f.kind == "mail" {
                continue; // the mail itself is not a file transfer; attachments are
            }
            if f.kind == "ftp" {
                // FTP transfers are counted from the control channel's `ftp.files` (the
                // contract's record of them); the data connection's stored object is the
                // same transfer seen again.
                continue;
            }
            let key = if f.sha256.is_empty() {
                f.name.clone().unwrap_or_default()
            } else {
                f.sha256.clone()
            };
            note(key, f.direction == "upload", f.bytes, &mut moved);
        }
        // The analyzer lists an FTP transfer on the control session and again on its data
        // session (`ftp-data`, with `control_session` pointing back): count it once, on
        // the control session.
        if let Some(ftp) = s.ftp.as_ref().filter(|_| s.protocol != "ftp-data") {
            for f in &ftp.files {
                let key = f.sha256.clone().unwrap_or_else(|| f.name.clone());
                note(key, f.direction == "upload", f.bytes, &mut moved);
            }
        }
        if let Some(mail) = &s.mail {
            // SMTP carries mail from the client; POP3 and IMAP deliver it to the client.
            let upload = s.protocol == "smtp";
            let atts = mail
                .attachments
                .iter()
                .chain(mail.messages.iter().flat_map(|m| m.attachments.iter()));
            for a in atts {
                let key = a.sha256.clone().unwrap_or_else(|| a.name.clone());
                note(key, upload, a.bytes, &mut moved);
            }
        }
        if moved.is_empty() {
            return;
        }
        let ft = self.stats.files.entry(proto.to_string()).or_default();
        for (upload, bytes) in moved {
            if upload {
                ft.uploads += 1;
                ft.upload_bytes = ft.upload_bytes.saturating_add(bytes);
            } else {
                ft.downloads += 1;
                ft.download_bytes = ft.download_bytes.saturating_add(bytes);
            }
        }
    }

    fn bound_buckets(&mut self) {
        let st = &mut self.stats;
        if st.bucket_secs == 3600 && st.buckets.len() > MAX_HOUR_BUCKETS {
            let old = std::mem::take(&mut st.buckets);
            st.bucket_secs = 86400;
            for (start, protos) in old {
                let day = start - start.rem_euclid(86400);
                let b = st.buckets.entry(day).or_default();
                for (p, v) in protos {
                    *b.entry(p).or_default() += v;
                }
            }
        }
        while st.bucket_secs == 86400 && st.buckets.len() > MAX_DAY_BUCKETS {
            st.buckets.pop_first();
            st.dropped_buckets += 1;
        }
    }

    pub fn finish(self) -> EnvStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::session::{Attachment, Endpoint, FileRef, Ftp, FtpFile, Mail};

    fn session(
        id: &str,
        t_secs: i64,
        proto: &str,
        c: &str,
        s: &str,
        up: u64,
        down: u64,
    ) -> SessionRecord {
        let mut r = SessionRecord::new(
            id.into(),
            Timestamp(t_secs * 1_000_000_000),
            "tcp",
            Endpoint::new(c.parse().unwrap(), 40000),
            Endpoint::new(s.parse().unwrap(), 80),
        );
        r.protocol = proto.into();
        r.bytes_up = up;
        r.bytes_down = down;
        r.packets = 10;
        r
    }

    fn nets() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn buckets_directions_and_files() {
        let mut c = EnvCollector::new(nets());
        c.add(&session(
            "a",
            3600 * 10 + 5,
            "http",
            "10.0.0.1",
            "93.184.216.34",
            100,
            900,
        ));
        c.add(&session(
            "b",
            3600 * 10 + 50,
            "http",
            "10.0.0.2",
            "10.0.0.3",
            10,
            0,
        ));
        c.add(&session(
            "c",
            3600 * 11,
            "dns",
            "198.51.100.1",
            "10.0.0.3",
            1,
            2,
        ));
        let mut ftp = session("d", 3600 * 11 + 1, "ftp", "10.0.0.2", "10.0.0.3", 0, 0);
        ftp.ftp = Some(Ftp {
            files: vec![FtpFile {
                name: "a.txt".into(),
                direction: "upload".into(),
                bytes: 7,
                sha256: Some("aa".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        // The same object listed again under `files` counts once.
        ftp.files.push(FileRef {
            sha256: "aa".into(),
            bytes: 7,
            direction: "upload".into(),
            kind: "ftp".into(),
            ..Default::default()
        });
        c.add(&ftp);
        // Its data connection repeats the file: not counted again.
        let mut data = session(
            "d2",
            3600 * 11 + 2,
            "ftp-data",
            "10.0.0.2",
            "10.0.0.3",
            7,
            0,
        );
        data.ftp = ftp.ftp.clone();
        data.files = ftp.files.clone();
        c.add(&data);
        let mut pop = session("e", 3600 * 12, "pop3", "10.0.0.2", "203.0.113.9", 0, 0);
        pop.mail = Some(Mail {
            attachments: vec![Attachment {
                name: "x.pdf".into(),
                bytes: 30,
                sha256: None,
                content_type: None,
            }],
            ..Default::default()
        });
        c.add(&pop);
        let st = c.finish();
        assert_eq!(st.sessions, 6);
        assert_eq!(st.bytes, 1020);
        assert_eq!(st.buckets.len(), 3);
        assert_eq!(st.buckets[&36000]["http"], 1010);
        assert_eq!(st.directions[&Direction::InternalToExternal].sessions, 2);
        assert_eq!(st.directions[&Direction::InternalToExternal].bytes, 1000);
        assert_eq!(st.directions[&Direction::InternalToInternal].sessions, 3);
        assert_eq!(st.directions[&Direction::ExternalToInternal].bytes, 3);
        assert_eq!(
            st.files["ftp"],
            FileTotals {
                uploads: 1,
                upload_bytes: 7,
                downloads: 0,
                download_bytes: 0
            }
        );
        assert!(!st.files.contains_key("ftp-data"));
        assert_eq!(st.files["pop3"].downloads, 1);
        assert_eq!(st.protocols_by_bytes()[0].0, "http");
    }

    #[test]
    fn memory_is_bounded_by_caps() {
        let mut c = EnvCollector::new(nets());
        for h in 0..(MAX_HOUR_BUCKETS as i64 + 10) {
            c.add(&session(
                "x",
                h * 3600,
                &format!("p{}", h % 100),
                "10.0.0.1",
                "10.0.0.2",
                1,
                1,
            ));
        }
        let st = c.finish();
        assert_eq!(st.bucket_secs, 86400);
        assert!(st.buckets.len() <= 46);
        assert!(st.protocols.len() <= MAX_PROTOCOLS + 1);
        assert!(st.folded_protocols > 0);
        assert_eq!(
            st.protocols.values().map(|t| t.sessions).sum::<u64>(),
            st.sessions
        );
        let bucket_sum: u64 = st.buckets.values().flat_map(|m| m.values()).sum();
        assert_eq!(bucket_sum, st.bytes);
    }
}
