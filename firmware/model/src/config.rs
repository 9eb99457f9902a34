//! The configuration file (TOML).
//!
//! Strict: unknown keys are errors, and after parsing `validate` checks every value. Every
//! error names the file, the line and the key, because on site the person reading it has a
//! serial console and no debugger. Sections that a part of the firmware does not use are
//! still parsed here so that one file configures the whole appliance.

use crate::units::{parse_bytes, parse_duration_secs};
use chrono::{Datelike, TimeZone, Timelike, Weekday};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}{line}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        /// `:<line>` when the key was found in the file, else empty.
        line: String,
        key: String,
        message: String,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub site: Site,
    pub intel: Intel,
    pub detect: Detect,
    pub storage: Storage,
    pub capture: Capture,
    pub analyzer: Analyzer,
    pub alerts: Alerts,
    pub console: Console,
    pub management: Management,
    pub web: Web,
    pub content: Content,
    pub assets: Assets,
}

/// `[content]`: the content index (`DATA/content/`): the text of mail bodies, attachments
/// and web and FTP transfers, searched with `body:` / `content:` (`docs/QUERY.md`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Content {
    /// Extract and index content at all.
    pub enabled: bool,
    /// Disk the content index may take; past it the oldest content is dropped first (the
    /// sessions stay searchable by their metadata).
    pub budget: String,
    /// Address space of the extraction worker process (`kuroko content-worker`): an
    /// object whose extraction needs more kills only the worker (counted as `crashed`).
    pub worker_memory: String,
    /// Time the extraction of one object may take (checked between its steps; a worker
    /// that spends this much CPU time plus a grace — 2 s, or the limit itself when smaller
    /// — on one object is killed, counted as `killed`). From 10ms to 10m.
    pub time_limit: String,
}

/// `[content] budget` when the configuration names none.
pub const DEFAULT_CONTENT_BUDGET: u64 = 4 << 30;

impl Default for Content {
    fn default() -> Self {
        Content {
            enabled: true,
            budget: "4GiB".into(),
            worker_memory: "1GiB".into(),
            time_limit: "5s".into(),
        }
    }
}

impl Content {
    pub fn budget_bytes(&self) -> Result<u64, String> {
        parse_bytes(&self.budget)
    }
    pub fn time_limit(&self) -> Result<std::time::Duration, String> {
        let ms = crate::units::parse_duration_ms(&self.time_limit)?;
        if !(10..=600_000).contains(&ms) {
            return Err(format!(
                "`{}` is out of range for the extraction time: give 10ms to 10m",
                self.time_limit
            ));
        }
        Ok(std::time::Duration::from_millis(ms))
    }
    pub fn worker_memory_bytes(&self) -> Result<u64, String> {
        let b = parse_bytes(&self.worker_memory)?;
        if b < 64 << 20 {
            return Err(format!(
                "`{}` is too small for the extraction worker: give at least 64MiB",
                self.worker_memory
            ));
        }
        Ok(b)
    }
}

/// `[assets]`: the asset inventory built from the sessions (`kuroko assets`): which
/// internal hosts serve what and announce which software. Memory is bounded by these
/// caps; what they refuse is counted (evictions, dropped facts), never silently lost.
/// Worst case with the defaults (every host full: 32 services with 16 remembered
/// clients, 16 facts of 200 bytes): about 200 MB; real sites use a small fraction.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Assets {
    /// Build the inventory at all (off: `kuroko assets` shows nothing new).
    pub enabled: bool,
    /// Internal hosts kept; a new host beyond it evicts the one seen least recently
    /// (counted in the inventory's `hosts_evicted`).
    pub max_hosts: usize,
    /// Services (port + transport) kept per host; more are counted as dropped.
    pub max_services_per_host: usize,
    /// Software facts (banners, headers, certificate subjects) kept per host.
    pub max_software_per_host: usize,
}

impl Default for Assets {
    fn default() -> Self {
        Assets {
            enabled: true,
            max_hosts: 10_000,
            max_services_per_host: 32,
            max_software_per_host: 16,
        }
    }
}

/// `[web]`: the analysts' HTTPS console (`kuroko web`, a child of `kuroko run`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    /// `ADDR:PORT` to listen on. Empty: the management address (`[management] address`)
    /// on port 8443, or 127.0.0.1:8443 when there is none. Never a capture interface.
    pub listen: String,
    /// PEM certificate chain and private key the admin installed. Empty: a self-signed
    /// certificate generated at first start in `<data>/web/tls/`.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The appliance's own network side (set by the technician in `kuroko setup`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Management {
    /// Board profile: a shipped name (`qemu`, `generic-x86`) or a file.
    pub board: String,
    /// The management NIC (never captured on).
    pub interface: String,
    /// `192.0.2.10/24`; `dhcp`: DHCP on the management port (only then: a DHCP server on
    /// the LAN cannot move a statically configured box); empty: no address (serial
    /// console only). Applied at boot (`kuroko setup --boot`).
    pub address: String,
    pub gateway: String,
    /// NTP servers; empty: the clock is set by hand.
    pub ntp: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Site {
    /// Shown on the console and in the report.
    pub name: String,
    pub customer: String,
    /// IANA time zone name, e.g. `Asia/Tokyo`.
    pub timezone: String,
    pub internal_networks: Vec<String>,
    /// CIDRs of VPN client address pools: watched by `vpn_large_upload`, labelled as VPN
    /// addresses in the report, `kuroko findings` and the top-talker lists (README).
    pub vpn_pools: Vec<String>,
    /// e.g. `mon-fri 09:00-18:00`; several ranges separated by commas.
    pub business_hours: String,
}

impl Default for Site {
    fn default() -> Self {
        Site {
            name: String::new(),
            customer: String::new(),
            timezone: "Asia/Tokyo".into(),
            internal_networks: vec![
                "10.0.0.0/8".into(),
                "172.16.0.0/12".into(),
                "192.168.0.0/16".into(),
            ],
            vpn_pools: Vec::new(),
            business_hours: "mon-fri 09:00-18:00".into(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Intel {
    /// Files: one CIDR or address a line, `; comment` allowed (Spamhaus DROP style).
    pub reputation_lists: Vec<PathBuf>,
    /// Addresses or CIDRs that inside hosts may reach over SSH.
    pub allowed_ssh_servers: Vec<String>,
    /// Extra or replacement site-category lists: files named `<category>.txt` (one domain a
    /// line) in these directories override the lists shipped with the firmware.
    pub category_dirs: Vec<PathBuf>,
    /// The site's own mail and web domains (`corp.example.co.jp`): lookalikes of them in
    /// mail count as phishing signals, like lookalikes of the shipped brands.
    #[serde(default)]
    pub own_domains: Vec<String>,
    /// YARA rule files, or directories whose `*.yar` / `*.yara` files are taken, scanned
    /// against every reconstructed file and attachment (with the rules of the intel packs,
    /// `DATA/intel/<pack>/yara/`). See `docs/YARA.md`.
    #[serde(default)]
    pub yara_rules: Vec<PathBuf>,
    /// Files larger than this are not scanned with YARA (counted as `yara_too_large`).
    #[serde(default = "default_yara_max_file_size")]
    pub yara_max_file_size: String,
    /// A YARA scan of one file stops after this long (counted as `yara_timeouts`); whole
    /// seconds, at least 1 (libyara's granularity).
    #[serde(default = "default_yara_timeout")]
    pub yara_timeout: String,
}

impl Default for Intel {
    fn default() -> Self {
        Intel {
            reputation_lists: Vec::new(),
            allowed_ssh_servers: Vec::new(),
            category_dirs: Vec::new(),
            own_domains: Vec::new(),
            yara_rules: Vec::new(),
            yara_max_file_size: default_yara_max_file_size(),
            yara_timeout: default_yara_timeout(),
        }
    }
}

fn default_yara_max_file_size() -> String {
    "32MiB".into()
}

fn default_yara_timeout() -> String {
    "5s".into()
}

impl Intel {
    /// `yara_max_file_size` in bytes.
    pub fn yara_max_file_size_bytes(&self) -> Result<u64, String> {
        parse_bytes(&self.yara_max_file_size)
    }

    /// `yara_timeout` in whole seconds (at least 1).
    pub fn yara_timeout_secs(&self) -> Result<u32, String> {
        let s = parse_duration_secs(&self.yara_timeout)?;
        if s == 0 {
            return Err(format!(
                "`{}` is shorter than a second; use at least 1s",
                self.yara_timeout
            ));
        }
        Ok(s.min(u32::MAX as u64) as u32)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Detect {
    /// Upload total from one VPN client over `upload_window` that makes a finding.
    pub large_upload: String,
    pub upload_window: String,
    /// OpenSSH servers older than this are outdated.
    pub openssh_min_version: String,
    /// Rules switched off entirely.
    pub disabled_rules: Vec<String>,
    /// Consultant's per-rule levels, with the reason that goes into the report.
    pub overrides: BTreeMap<String, LevelOverride>,
}

impl Default for Detect {
    fn default() -> Self {
        Detect {
            large_upload: "100MB".into(),
            upload_window: "24h".into(),
            openssh_min_version: "9.8p1".into(),
            disabled_rules: Vec::new(),
            overrides: BTreeMap::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LevelOverride {
    pub vulnerability: Option<u8>,
    pub threat: Option<u8>,
    #[serde(default)]
    pub reason: String,
    /// The analyst's note, shown with the finding (findings, report, bundle CSV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// The data directory `kuroko run` uses when `--data` is not given.
    pub data_dir: PathBuf,
    /// Disk the segment ring may take: bytes (`2GiB`) or a share of the file system (`80%`).
    pub budget: String,
    /// One segment file of the ring (2MiB–4095MiB; 64MiB by default): the unit of rotation
    /// and of reading. A reader (the analyzer, the console, search) holds up to two
    /// segments in memory while it reads the newest, so this times two is its memory on
    /// top of its own; raise it only for very fast links, where fewer, larger files suit
    /// the disk.
    pub segment_size: String,
    /// Reconstructed files and mails.
    pub files_budget: String,
    /// Packets of findings' evidence sessions kept out of rotation.
    pub evidence_budget: String,
    /// The session index (`DIR/index`); past it the oldest hours of sessions are dropped.
    pub index_budget: String,
    /// The background scrub (`analyze --follow`) re-reads sealed segments and checks their
    /// checksums at most this many MB/s (10^6 bytes), at idle CPU and I/O priority, so
    /// that damage appearing after packets were read is counted without a reader: a full
    /// pass over the ring takes about `budget / scrub_rate`. `0` turns it off.
    pub scrub_rate: f64,
    /// The `scrub_behind` alarm is raised when the oldest sealed segment the scrub has not
    /// checked since it was sealed waited longer than this (`36h`, `7d`, at least `1s`).
    /// `auto` (the default): two passes at `scrub_rate`, the 6 h between pass starts and a
    /// day of slack.
    pub scrub_overdue: String,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            data_dir: PathBuf::from("/var/lib/kuroko"),
            budget: "2GiB".into(),
            segment_size: "64MiB".into(),
            files_budget: "1GiB".into(),
            evidence_budget: "1GiB".into(),
            index_budget: "16GiB".into(),
            scrub_rate: 8.0,
            scrub_overdue: "auto".into(),
        }
    }
}

/// How much of the disk the segment ring may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    Bytes(u64),
    /// Percent of the file system holding the data directory.
    Percent(f64),
}

impl Storage {
    pub fn budget(&self) -> Result<Budget, String> {
        parse_budget(&self.budget)
    }
    pub fn segment_size_bytes(&self) -> Result<u64, String> {
        parse_bytes(&self.segment_size)
    }
    pub fn index_budget_bytes(&self) -> Result<u64, String> {
        parse_bytes(&self.index_budget)
    }
    pub fn files_budget_bytes(&self) -> Result<u64, String> {
        parse_bytes(&self.files_budget)
    }
    pub fn evidence_budget_bytes(&self) -> Result<u64, String> {
        parse_bytes(&self.evidence_budget)
    }

    /// `scrub_overdue` in seconds; 0 for `auto`.
    pub fn scrub_overdue_secs(&self) -> Result<u64, String> {
        if self.scrub_overdue.trim() == "auto" {
            return Ok(0);
        }
        match parse_duration_secs(&self.scrub_overdue)? {
            0 => Err(format!(
                "`{}` is no time at all; give a duration such as 36h or 7d, or auto",
                self.scrub_overdue
            )),
            n => Ok(n),
        }
    }
}

pub fn parse_budget(text: &str) -> Result<Budget, String> {
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        let v: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a percentage; write e.g. 80%"))?;
        if !(v > 0.0 && v <= 100.0) {
            return Err(format!(
                "`{text}`: a percentage must be above 0 and at most 100"
            ));
        }
        Ok(Budget::Percent(v))
    } else {
        parse_bytes(t).map(Budget::Bytes)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Capture {
    pub interfaces: Vec<String>,
    pub snaplen: u32,
    /// Size of the kernel receive ring per capture thread.
    pub ring_size: String,
    pub block_size: String,
    /// Capture threads per interface (default 1): sockets joined by PACKET_FANOUT (flow
    /// hash), one capture thread each, writing lanes of the one store writer
    /// (`docs/capture.md`, "More than one capture thread").
    pub threads_per_interface: u32,
    /// Cores to pin capture threads to (empty: from the board profile, or unpinned).
    pub cores: Vec<usize>,
    /// Run capture threads SCHED_FIFO.
    pub realtime: bool,
    /// tcpdump-syntax capture filter, compiled to classic BPF.
    pub filter: String,
    /// Zero-copy capture: `off` (every frame copied into the store's records), `on` (whole
    /// ring blocks written from the ring's memory), `auto` (ring blocks of large frames
    /// as they are, small frames copied). `docs/capture.md`, "Zero-copy capture".
    pub zero_copy: String,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            interfaces: Vec::new(),
            snaplen: 65535,
            ring_size: "64MiB".into(),
            block_size: "1MiB".into(),
            threads_per_interface: 1,
            cores: Vec::new(),
            realtime: false,
            filter: String::new(),
            zero_copy: "off".into(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Analyzer {
    /// Flow table capacity; beyond it the oldest idle flow is evicted (counted).
    pub max_flows: u32,
    pub tcp_idle_timeout: String,
    pub udp_idle_timeout: String,
    /// A flow longer than this is cut into several session records.
    pub active_timeout: String,
    /// Reassembly buffer per direction of one TCP stream.
    pub stream_buffer: String,
    /// Memory for out-of-order TCP data held by all flows together, counted at its real
    /// cost (payload plus the bookkeeping of each held segment, so a flood of 1-byte
    /// segments cannot hold 80x the budget). When it is full, the oldest holes become
    /// counted gaps (`memory_budget_drops` in `kuroko status`). Default 256MiB.
    pub memory_budget: String,
    /// Largest object reconstructed from one transfer.
    pub max_object_size: String,
    /// Which bytes win where TCP segments not yet delivered overlap with other bytes:
    /// `linux` (default: what a Linux host's application reads), `first` (the bytes that
    /// arrived first, as BSD-derived and Windows stacks keep them) or `last`. Every overlap
    /// is counted (`tcp_overlaps`), and a session whose overlapping bytes differed is
    /// flagged `overlap_conflict` (`tcp_overlap_conflicts`).
    pub tcp_overlap_policy: String,
    /// Cores the analyzer runs on while a capture writes; empty (default): every core the
    /// process may use but `[capture] cores`. Must not share a core with `[capture] cores`.
    pub cores: Vec<usize>,
    /// How the analyzer shares the CPU with other work while a capture writes to the store
    /// (`docs/ARCHITECTURE.md`, "The analyzer's CPU"): `nice` (default: normal scheduling
    /// at `nice`, lowest best-effort I/O priority, off the capture cores, so a
    /// normal-priority task on its core leaves it a share instead of nothing) or `idle`
    /// (SCHED_IDLE and idle I/O: only CPU no other task wants, the policy before issue 15).
    pub cpu_priority: String,
    /// Nice value of the analyzer with `cpu_priority = "nice"`: 0 to 19, default 10 (a
    /// tenth of a core against one busy nice-0 task on the same core). Never lowered
    /// below what the analyzer was started with.
    pub nice: i32,
    /// How long a TCP flow whose close completed (both FINs acknowledged, or a reset)
    /// waits before its session is emitted. `0s` (default) emits it at once; packets that
    /// straggle in after it are counted (`late_packets_after_close`). Above 0, every close
    /// lingers that long (the cadence before issue 15).
    pub close_linger: String,
    /// How often, at most, the analyzer publishes new sessions to the index, detections
    /// and alerts (a durable checkpoint each time): `250ms` (default), `1s`, … Stretched
    /// automatically when a checkpoint is slow, so publishing takes at most a fifth of the
    /// time.
    pub publish_interval: String,
    /// Wake the session-log consumers (index, detections, alerts) as soon as sessions are
    /// published (default); `false` makes them poll once a second.
    pub consumer_wake: bool,
    /// A session still in progress this long gets a provisional record (`open: true`,
    /// query `state:open`), searchable and checked by the rules that can decide on partial
    /// data; `0s` turns provisional records off. Default `5s`.
    pub open_record_after: String,
    /// The provisional record of a session in progress is updated at most this often
    /// (when it saw packets since). Default `30s`.
    pub open_record_every: String,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer {
            max_flows: 262_144,
            tcp_idle_timeout: "5m".into(),
            udp_idle_timeout: "60s".into(),
            active_timeout: "1h".into(),
            stream_buffer: "256KiB".into(),
            memory_budget: "256MiB".into(),
            max_object_size: "64MiB".into(),
            tcp_overlap_policy: "linux".into(),
            cores: Vec::new(),
            cpu_priority: "nice".into(),
            nice: 10,
            close_linger: "0s".into(),
            publish_interval: "250ms".into(),
            consumer_wake: true,
            open_record_after: "5s".into(),
            open_record_every: "30s".into(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// RFC 5424 syslog target `host:port` (UDP), empty for none.
    pub syslog: String,
    /// SMTP relay `host:port`, empty for none.
    pub smtp_relay: String,
    pub mail_from: String,
    pub mail_to: Vec<String>,
    /// Saved searches evaluated on every new session.
    pub conditions: Vec<AlertCondition>,
    /// Leave out the shipped default conditions.
    pub no_defaults: bool,
    /// How mail reaches `smtp_relay`: `[alerts.smtp_transport]`.
    pub smtp_transport: SmtpTransport,
    /// How alerts reach `syslog`: `[alerts.syslog_transport]`.
    pub syslog_transport: SyslogTransport,
    /// Syslog messages and mailed hits per condition per minute (default 10); hits over
    /// it are in the local log and summarised in one message when the ingest run ends.
    pub deliveries_per_minute: u32,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            syslog: String::new(),
            smtp_relay: String::new(),
            mail_from: String::new(),
            mail_to: Vec::new(),
            conditions: Vec::new(),
            no_defaults: false,
            smtp_transport: SmtpTransport::default(),
            syslog_transport: SyslogTransport::default(),
            deliveries_per_minute: 10,
        }
    }
}

/// `[alerts.smtp_transport]`: TLS and authentication towards the SMTP relay.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpTransport {
    /// `starttls` (plain connection upgraded with STARTTLS, usually port 587; a relay that
    /// does not offer it is refused), `tls` (TLS from the first byte, port 465) or `none`
    /// (cleartext, the default: a relay on the customer's LAN). With TLS the relay's
    /// certificate is verified against `ca_file` (or the system store) and its name.
    pub tls: String,
    /// PEM file of the CA certificates the relay's certificate must chain to; empty: the
    /// system store (`/etc/ssl/certs/ca-certificates.crt`).
    pub ca_file: String,
    /// SMTP AUTH user (PLAIN, or LOGIN when the relay offers only that), over TLS only;
    /// empty: no AUTH.
    pub username: String,
    /// File holding the AUTH password (first line); it must not be readable by group or
    /// others, and belong to root or to the user the alert sender runs as.
    pub password_file: String,
}

/// `[alerts.syslog_transport]`: RFC 5426 UDP or RFC 5425 TLS towards the syslog target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogTransport {
    /// `tls` (RFC 5425: TCP, octet-counting framing, usually port 6514; the collector's
    /// certificate is verified) or `none` (RFC 5426 UDP datagrams, the default).
    pub tls: String,
    /// PEM file of the CA certificates the collector's certificate must chain to; empty:
    /// the system store.
    pub ca_file: String,
}

impl SmtpTransport {
    /// The mode, `none` when unset.
    pub fn mode(&self) -> &str {
        if self.tls.is_empty() {
            "none"
        } else {
            &self.tls
        }
    }
}

impl SyslogTransport {
    /// The mode, `none` when unset.
    pub fn mode(&self) -> &str {
        if self.tls.is_empty() {
            "none"
        } else {
            &self.tls
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertCondition {
    pub name: String,
    pub query: String,
    /// `info`, `warning`, `critical`.
    #[serde(default = "default_severity")]
    pub severity: String,
    #[serde(default)]
    pub comment: String,
}

fn default_severity() -> String {
    "warning".into()
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Console {
    /// `ja` or `en`.
    pub lang: String,
    /// Draw with ASCII only (serial terminals without line-drawing characters).
    pub ascii: bool,
}

impl Default for Console {
    fn default() -> Self {
        Console {
            lang: "ja".into(),
            ascii: false,
        }
    }
}

/// Smallest `storage.segment_size`: the store writes 1 MiB chunks and a segment needs at
/// least two of them.
pub const MIN_SEGMENT_SIZE: u64 = 2 << 20;
/// Largest `storage.segment_size`: below 4 GiB, because the store's positions and block
/// offsets inside a segment are `u32` (a 4 GiB segment's last block end would wrap to 0);
/// one 1 MiB chunk below it.
pub const MAX_SEGMENT_SIZE: u64 = (1 << 32) - (1 << 20);

/// A check that needs more than this crate knows (the query grammar, the rule catalog,
/// the files a key names), run after `validate` with the same file-and-line reporting.
/// The error is (`section.key`, message) as in `validate`; a key of an array of tables
/// may carry the entry's 1-based position, `alerts.conditions[2].query`, so the line
/// of that entry is found.
pub type ExtraCheck<'a> = &'a dyn Fn(&Config) -> Result<(), (String, String)>;

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, &|_| Ok(()))
    }

    /// Reads, parses and validates a config file, then runs `extra` (see [`ExtraCheck`]).
    pub fn load_with(path: &Path, extra: ExtraCheck<'_>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_with(&text, path, extra)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Self::parse_with(text, path, &|_| Ok(()))
    }

    /// Parses and validates config text, then runs `extra`; `path` is only used in
    /// messages.
    pub fn parse_with(
        text: &str,
        path: &Path,
        extra: ExtraCheck<'_>,
    ) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: one_line(&e.to_string()),
        })?;
        config
            .validate()
            .and_then(|()| extra(&config))
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: locate_key(text, &key)
                    .map(|l| format!(":{l}"))
                    .unwrap_or_default(),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Validates, then writes the config atomically (temporary file, fsync, rename, fsync
    /// of the directory): a power cut leaves the old file or the new one, never half.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: String::new(),
                key,
                message,
            })?;
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        write_atomic(path, text.as_bytes()).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks every value; the error is (`section.key`, what is wrong and what to write).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let k = |s: &str| s.to_string();
        if !self.web.listen.is_empty() && self.web.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                k("web.listen"),
                format!(
                    "`{}` is not ADDR:PORT (e.g. 192.0.2.10:8443)",
                    self.web.listen
                ),
            ));
        }
        if self.web.cert.as_os_str().is_empty() != self.web.key.as_os_str().is_empty() {
            return Err((
                k("web.cert"),
                "set both web.cert and web.key, or neither".into(),
            ));
        }
        self.site.tz().map_err(|m| (k("site.timezone"), m))?;
        for n in &self.site.internal_networks {
            parse_net(n).map_err(|m| (k("site.internal_networks"), m))?;
        }
        for n in &self.site.vpn_pools {
            parse_net(n).map_err(|m| (k("site.vpn_pools"), m))?;
        }
        BusinessHours::parse(&self.site.business_hours)
            .map_err(|m| (k("site.business_hours"), m))?;
        for n in &self.intel.allowed_ssh_servers {
            parse_net(n).map_err(|m| (k("intel.allowed_ssh_servers"), m))?;
        }
        self.intel
            .yara_max_file_size_bytes()
            .map_err(|m| (k("intel.yara_max_file_size"), m))?;
        self.intel
            .yara_timeout_secs()
            .map_err(|m| (k("intel.yara_timeout"), m))?;
        parse_bytes(&self.detect.large_upload).map_err(|m| (k("detect.large_upload"), m))?;
        parse_duration_secs(&self.detect.upload_window)
            .map_err(|m| (k("detect.upload_window"), m))?;
        for (key, v) in [
            ("assets.max_hosts", self.assets.max_hosts),
            (
                "assets.max_services_per_host",
                self.assets.max_services_per_host,
            ),
            (
                "assets.max_software_per_host",
                self.assets.max_software_per_host,
            ),
        ] {
            if !(1..=10_000_000).contains(&v) {
                return Err((k(key), format!("{v} is out of range; use 1 to 10000000")));
            }
        }
        if self.detect.openssh_min_version.trim().is_empty() {
            return Err((
                k("detect.openssh_min_version"),
                "must not be empty; the default is 9.8p1".into(),
            ));
        }
        for (rule, o) in &self.detect.overrides {
            for (name, v) in [("vulnerability", o.vulnerability), ("threat", o.threat)] {
                if let Some(v) = v
                    && !(1..=3).contains(&v)
                {
                    return Err((
                        format!("detect.overrides.{rule}.{name}"),
                        format!("{v} is not a level; levels are 1, 2 or 3"),
                    ));
                }
            }
        }
        self.storage
            .budget()
            .map_err(|m| (k("storage.budget"), m))?;
        let seg = self
            .storage
            .segment_size_bytes()
            .map_err(|m| (k("storage.segment_size"), m))?;
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&seg) {
            return Err((
                k("storage.segment_size"),
                format!(
                    "{} is out of range; a segment is 2MiB to 4095MiB (the default is 64MiB)",
                    self.storage.segment_size
                ),
            ));
        }
        if let Budget::Bytes(b) = self.storage.budget().unwrap_or(Budget::Bytes(0))
            && b < 2 * seg
        {
            return Err((
                k("storage.budget"),
                format!(
                    "{} holds fewer than two segments of {}; raise the budget or lower storage.segment_size",
                    self.storage.budget, self.storage.segment_size
                ),
            ));
        }
        self.storage
            .files_budget_bytes()
            .map_err(|m| (k("storage.files_budget"), m))?;
        self.storage
            .evidence_budget_bytes()
            .map_err(|m| (k("storage.evidence_budget"), m))?;
        self.storage
            .index_budget_bytes()
            .map_err(|m| (k("storage.index_budget"), m))?;
        if !(self.storage.scrub_rate.is_finite() && self.storage.scrub_rate >= 0.0) {
            return Err((
                k("storage.scrub_rate"),
                format!(
                    "{} is not a rate; give MB/s (e.g. 8, the default), or 0 to turn the scrub off",
                    self.storage.scrub_rate
                ),
            ));
        }
        self.storage
            .scrub_overdue_secs()
            .map_err(|m| (k("storage.scrub_overdue"), m))?;
        self.content
            .budget_bytes()
            .map_err(|m| (k("content.budget"), m))?;
        self.content
            .worker_memory_bytes()
            .map_err(|m| (k("content.worker_memory"), m))?;
        self.content
            .time_limit()
            .map_err(|m| (k("content.time_limit"), m))?;
        parse_bytes(&self.capture.ring_size).map_err(|m| (k("capture.ring_size"), m))?;
        parse_bytes(&self.capture.block_size).map_err(|m| (k("capture.block_size"), m))?;
        if !(64..=262_144).contains(&self.capture.snaplen) {
            return Err((k("capture.snaplen"), "must be between 64 and 262144".into()));
        }
        if !["auto", "on", "off"].contains(&self.capture.zero_copy.as_str()) {
            return Err((
                k("capture.zero_copy"),
                format!("`{}`: must be auto, on or off", self.capture.zero_copy),
            ));
        }
        if self.capture.threads_per_interface == 0 {
            return Err((
                k("capture.threads_per_interface"),
                "must be at least 1".into(),
            ));
        }
        if self.analyzer.max_flows == 0 {
            return Err((k("analyzer.max_flows"), "must be at least 1".into()));
        }
        for (key, v) in [
            ("analyzer.tcp_idle_timeout", &self.analyzer.tcp_idle_timeout),
            ("analyzer.udp_idle_timeout", &self.analyzer.udp_idle_timeout),
            ("analyzer.active_timeout", &self.analyzer.active_timeout),
            ("analyzer.close_linger", &self.analyzer.close_linger),
            (
                "analyzer.open_record_after",
                &self.analyzer.open_record_after,
            ),
            (
                "analyzer.open_record_every",
                &self.analyzer.open_record_every,
            ),
        ] {
            parse_duration_secs(v).map_err(|m| (k(key), m))?;
        }
        crate::units::parse_duration_ms(&self.analyzer.publish_interval)
            .map_err(|m| (k("analyzer.publish_interval"), m))?;
        parse_bytes(&self.analyzer.stream_buffer).map_err(|m| (k("analyzer.stream_buffer"), m))?;
        parse_bytes(&self.analyzer.memory_budget).map_err(|m| (k("analyzer.memory_budget"), m))?;
        parse_bytes(&self.analyzer.max_object_size)
            .map_err(|m| (k("analyzer.max_object_size"), m))?;
        if !["linux", "first", "last"].contains(&self.analyzer.tcp_overlap_policy.as_str()) {
            return Err((
                k("analyzer.tcp_overlap_policy"),
                format!(
                    "`{}` is not a TCP overlap policy; use linux (what Linux hosts see), first or last",
                    self.analyzer.tcp_overlap_policy
                ),
            ));
        }
        if !["nice", "idle"].contains(&self.analyzer.cpu_priority.as_str()) {
            return Err((
                k("analyzer.cpu_priority"),
                format!(
                    "`{}` is not a CPU priority; use nice (a share of the CPU under load) or idle (only spare CPU)",
                    self.analyzer.cpu_priority
                ),
            ));
        }
        if !(0..=19).contains(&self.analyzer.nice) {
            return Err((
                k("analyzer.nice"),
                format!(
                    "{} is not a nice value for the analyzer; use 0 to 19 (it must not go above normal priority)",
                    self.analyzer.nice
                ),
            ));
        }
        if let Some(c) = self
            .analyzer
            .cores
            .iter()
            .find(|c| self.capture.cores.contains(c))
        {
            return Err((
                k("analyzer.cores"),
                format!(
                    "core {c} is also in [capture] cores; capture cores are the capture's alone"
                ),
            ));
        }
        if self.alerts.deliveries_per_minute == 0 {
            return Err((
                k("alerts.deliveries_per_minute"),
                "must be at least 1 (hits over it are summarised, never lost)".into(),
            ));
        }
        for c in &self.alerts.conditions {
            if c.name.trim().is_empty() {
                return Err((
                    k("alerts.conditions.name"),
                    "every alert condition needs a name".into(),
                ));
            }
            if !["info", "warning", "critical"].contains(&c.severity.as_str()) {
                return Err((
                    k("alerts.conditions.severity"),
                    format!(
                        "`{}` is not a severity; use info, warning or critical",
                        c.severity
                    ),
                ));
            }
        }
        for (key, v) in [
            ("alerts.syslog", &self.alerts.syslog),
            ("alerts.smtp_relay", &self.alerts.smtp_relay),
        ] {
            if !v.is_empty()
                && v.rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
            {
                return Err((k(key), format!("`{v}` is not host:port")));
            }
        }
        let smtp = &self.alerts.smtp_transport;
        if !["none", "starttls", "tls"].contains(&smtp.mode()) {
            return Err((
                k("alerts.smtp_transport.tls"),
                format!("`{}` is not starttls, tls or none", smtp.tls),
            ));
        }
        if !smtp.username.is_empty() && smtp.mode() == "none" {
            return Err((
                k("alerts.smtp_transport.username"),
                "SMTP AUTH sends the password: it needs tls = \"starttls\" or \"tls\"".into(),
            ));
        }
        if smtp.username.is_empty() != smtp.password_file.is_empty() {
            return Err((
                k("alerts.smtp_transport.password_file"),
                "username and password_file go together".into(),
            ));
        }
        let syslog = &self.alerts.syslog_transport;
        if !["none", "tls"].contains(&syslog.mode()) {
            return Err((
                k("alerts.syslog_transport.tls"),
                format!("`{}` is not tls or none", syslog.tls),
            ));
        }
        if !self.management.address.is_empty() && self.management.address != "dhcp" {
            self.management.address.parse::<IpNet>().map_err(|_| {
                (
                    k("management.address"),
                    format!(
                        "`{}` is not an address with prefix (e.g. 192.0.2.10/24) or `dhcp`",
                        self.management.address
                    ),
                )
            })?;
        }
        if !self.management.gateway.is_empty() {
            self.management.gateway.parse::<IpAddr>().map_err(|_| {
                (
                    k("management.gateway"),
                    format!("`{}` is not an address", self.management.gateway),
                )
            })?;
        }
        if !self.management.interface.is_empty()
            && self.capture.interfaces.contains(&self.management.interface)
        {
            return Err((
                k("management.interface"),
                format!(
                    "`{}` is also a capture interface; the management port must not capture",
                    self.management.interface
                ),
            ));
        }
        if !["ja", "en"].contains(&self.console.lang.as_str()) {
            return Err((k("console.lang"), "use ja or en".into()));
        }
        Ok(())
    }
}

impl Site {
    pub fn tz(&self) -> Result<chrono_tz::Tz, String> {
        self.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!(
                "`{}` is not a time zone name; write e.g. Asia/Tokyo or UTC",
                self.timezone
            )
        })
    }
    pub fn internal_nets(&self) -> Vec<IpNet> {
        self.internal_networks
            .iter()
            .filter_map(|n| parse_net(n).ok())
            .collect()
    }
    pub fn vpn_nets(&self) -> Vec<IpNet> {
        self.vpn_pools
            .iter()
            .filter_map(|n| parse_net(n).ok())
            .collect()
    }
    /// `[site] vpn_pools`, parsed once, to ask of many addresses.
    pub fn vpn(&self) -> VpnPools {
        VpnPools::new(self.vpn_nets())
    }
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal_nets().iter().any(|n| n.contains(&ip))
    }
}

/// `[site] vpn_pools`: the one answer to "is this address a remote user's (VPN-pool)
/// address" for every output that marks it (findings, search, assets, report, web
/// console, console; `(VPN)` / `"vpn": true`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VpnPools(Vec<IpNet>);

impl VpnPools {
    pub fn new(nets: Vec<IpNet>) -> VpnPools {
        VpnPools(nets)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Whether `ip` is in a pool (`::ffff:10.8.0.5` as `10.8.0.5`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|n| n.contains(&ip))
    }
    /// [`VpnPools::contains`] of an address written as text; `false` for what is no address.
    pub fn contains_str(&self, addr: &str) -> bool {
        addr.parse::<IpAddr>().is_ok_and(|ip| self.contains(ip))
    }
}

/// Writes `bytes` to `path` so that readers see the old content or the new, never a mix.
/// The file is mode 0600 (owner only) from its creation on, whatever the umask.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        use std::os::unix::fs::OpenOptionsExt;
        // 0600 from the first byte, whatever the umask (a config names the site, a
        // credential is a password hash); a leftover of a crash may carry another mode.
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// A CIDR or a single address (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    t.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{text}` is not an address or CIDR (e.g. 10.0.0.0/8)"))
}

/// Business hours: `mon-fri 09:00-18:00`, several ranges separated by commas
/// (`mon-fri 09:00-12:00, mon-fri 13:00-18:00, sat 10:00-14:00`).
#[derive(Clone, Debug, PartialEq)]
pub struct BusinessHours {
    ranges: Vec<HoursRange>,
}

#[derive(Clone, Debug, PartialEq)]
struct HoursRange {
    /// Bit per weekday, Monday = bit 0.
    days: u8,
    start_min: u32,
    end_min: u32,
}

impl BusinessHours {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (days, hours) = part
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("`{part}` should look like `mon-fri 09:00-18:00`"))?;
            let days = parse_days(days.trim())?;
            let (a, b) = hours
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("`{hours}` should be a time range like 09:00-18:00"))?;
            let start_min = parse_hhmm(a)?;
            let end_min = parse_hhmm(b)?;
            if end_min <= start_min {
                return Err(format!("`{hours}`: the end must be after the start"));
            }
            ranges.push(HoursRange {
                days,
                start_min,
                end_min,
            });
        }
        Ok(BusinessHours { ranges })
    }

    /// The business-hours intervals `[start, end)` that overlap `[from, to)`, in time
    /// order, at most `max_days` local days from `from` (a query over a year-long store
    /// stays bounded). A local time skipped by a DST change starts at the next valid one.
    pub fn windows<Tz: TimeZone>(
        &self,
        from: crate::Timestamp,
        to: crate::Timestamp,
        tz: &Tz,
        max_days: u32,
    ) -> Vec<(crate::Timestamp, crate::Timestamp)> {
        let at = |d: chrono::NaiveDate, min: u32| -> Option<crate::Timestamp> {
            let (h, m) = (min / 60, min % 60);
            let naive = d.and_hms_opt(h.min(23), m, 0)?
                + chrono::Duration::minutes(if h >= 24 { 60 } else { 0 });
            (0..4)
                .find_map(|k| {
                    tz.from_local_datetime(&(naive + chrono::Duration::minutes(30 * k)))
                        .earliest()
                })
                .map(|dt| crate::Timestamp::from_datetime(&dt))
        };
        let mut out = Vec::new();
        let mut day = from.to_datetime().with_timezone(tz).date_naive() - chrono::Days::new(1);
        for _ in 0..max_days.saturating_add(1) {
            let wd = day.weekday().num_days_from_monday();
            for r in self.ranges.iter().filter(|r| r.days & (1 << wd) != 0) {
                if let (Some(a), Some(b)) = (at(day, r.start_min), at(day, r.end_min))
                    && a < to
                    && b > from
                    && a < b
                {
                    out.push((a, b));
                }
            }
            if at(day, 0).is_some_and(|t| t >= to) {
                break;
            }
            day = day + chrono::Days::new(1);
        }
        out.sort();
        out
    }

    /// Whether the instant falls in business hours in the given time zone.
    pub fn contains<Tz: TimeZone>(&self, t: crate::Timestamp, tz: &Tz) -> bool {
        let local = t.to_datetime().with_timezone(tz);
        let day = local.weekday().num_days_from_monday();
        let minute = local.hour() * 60 + local.minute();
        self.ranges
            .iter()
            .any(|r| r.days & (1 << day) != 0 && minute >= r.start_min && minute < r.end_min)
    }
}

fn parse_days(text: &str) -> Result<u8, String> {
    let day = |s: &str| -> Result<u32, String> {
        let d: Weekday = s
            .parse()
            .map_err(|_| format!("`{s}` is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))?;
        Ok(d.num_days_from_monday())
    };
    let mut mask = 0u8;
    for item in text.split('/') {
        if let Some((a, b)) = item.split_once('-') {
            let (a, b) = (day(a)?, day(b)?);
            let mut d = a;
            loop {
                mask |= 1 << d;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        } else {
            mask |= 1 << day(item)?;
        }
    }
    Ok(mask)
}

fn parse_hhmm(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (h, m) = t
        .split_once(':')
        .ok_or_else(|| format!("`{t}` is not a time like 09:00"))?;
    let h: u32 = h
        .parse()
        .map_err(|_| format!("`{t}` is not a time like 09:00"))?;
    let m: u32 = m
        .parse()
        .map_err(|_| format!("`{t}` is not a time like 09:00"))?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(format!("`{t}` is not a time of day"));
    }
    Ok(h * 60 + m)
}

/// The 1-based line where `section.key` (or its last part) is set, for error messages.
/// `section[n].key` is the key inside the n-th (1-based) `[[section]]` table.
fn locate_key(text: &str, dotted: &str) -> Option<usize> {
    if let Some((section, rest)) = dotted.split_once('[')
        && let Some((n, key)) = rest.split_once("].")
        && let Ok(n) = n.parse::<usize>()
    {
        return locate_in_array(text, section, n, key);
    }
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let key = parts.pop()?;
    let section = parts.join(".");
    let mut current = String::new();
    let mut fallback = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            current = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if current == dotted {
                return Some(i + 1);
            }
            continue;
        }
        let Some((k, _)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches('"');
        if k == key {
            if current == section || section.starts_with(&current) && !current.is_empty() {
                return Some(i + 1);
            }
            fallback.get_or_insert(i + 1);
        }
    }
    fallback
}

/// The line of `key` inside the `n`-th (1-based) `[[section]]` table, or of that table's
/// header when the key is not written there.
fn locate_in_array(text: &str, section: &str, n: usize, key: &str) -> Option<usize> {
    let header = format!("[[{section}]]");
    let mut seen = 0;
    let mut header_line = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            if header_line.is_some() {
                break;
            }
            if l.replace(' ', "") == header {
                seen += 1;
                if seen == n {
                    header_line = Some(i + 1);
                }
            }
            continue;
        }
        if header_line.is_some()
            && l.split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return Some(i + 1);
        }
    }
    header_line
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {

    #[test]
    fn write_atomic_files_are_owner_only_from_the_start() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("kuroko.toml");
        // A stale temporary file of a crashed writer, world-readable.
        let stale = tmp
            .path()
            .join(format!(".kuroko.toml.tmp.{}", std::process::id()));
        std::fs::write(&stale, "old").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&p, b"x = 1\n").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }

    use super::*;
    use crate::Timestamp;
    use chrono::TimeZone;

    #[test]
    fn defaults_validate_and_contract_example_parses() {
        Config::default().validate().unwrap();
        let text = r#"
[site]
timezone = "Asia/Tokyo"
internal_networks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
vpn_pools = []
business_hours = "mon-fri 09:00-18:00"

[intel]
reputation_lists = []
allowed_ssh_servers = []

[detect]
large_upload = "100MB"

[storage]
budget = "2GiB"
segment_size = "64MiB"
"#;
        let c = Config::parse(text, Path::new("k.toml")).unwrap();
        assert_eq!(c.storage.budget().unwrap(), Budget::Bytes(2 << 30));
    }

    #[test]
    fn save_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k.toml");
        let mut c = Config::default();
        c.site.name = "Tokyo HQ".into();
        c.detect.overrides.insert(
            "telnet_use".into(),
            LevelOverride {
                vulnerability: Some(3),
                threat: None,
                reason: "legacy PLCs".into(),
                note: None,
            },
        );
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);
        c.site.timezone = "Mars/Olympus".into();
        assert!(c.save(&path).is_err());
        assert_eq!(Config::load(&path).unwrap().site.timezone, "Asia/Tokyo");
    }

    #[test]
    fn analyzer_placement_keys_are_checked() {
        let ok = Config::parse(
            "[capture]\ncores = [2, 3]\n\n[analyzer]\ncores = [1]\ncpu_priority = \"idle\"\nnice = 19\n",
            Path::new("k.toml"),
        )
        .unwrap();
        assert_eq!(ok.analyzer.cpu_priority, "idle");
        assert_eq!(Config::default().analyzer.cpu_priority, "nice");
        assert_eq!(Config::default().analyzer.nice, 10);
        for (text, key) in [
            (
                "[capture]\ncores = [1]\n[analyzer]\ncores = [0, 1]\n",
                "analyzer.cores",
            ),
            (
                "[analyzer]\ncpu_priority = \"realtime\"\n",
                "analyzer.cpu_priority",
            ),
            ("[analyzer]\nnice = -5\n", "analyzer.nice"),
            ("[analyzer]\nnice = 20\n", "analyzer.nice"),
        ] {
            let e = Config::parse(text, Path::new("k.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{key}`")), "{text}: {e}");
        }
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let text = "[site]\ntimezone = \"Asia/Tokio\"\n";
        let e = Config::parse(text, Path::new("/etc/kuroko.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/etc/kuroko.toml:2: `site.timezone`"), "{e}");

        let e = Config::parse("[site]\nbogus = 1\n", Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k.toml") && e.contains("bogus") && e.contains("line 2"),
            "{e}"
        );

        let text = "[detect.overrides.telnet_use]\nvulnerability = 4\n";
        let e = Config::parse(text, Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k.toml:2") && e.contains("detect.overrides.telnet_use.vulnerability"),
            "{e}"
        );

        let e = Config::parse("[storage]\nbudget = \"lots\"\n", Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("k.toml:2: `storage.budget`"), "{e}");
    }

    #[test]
    fn content_time_limit_outside_10ms_to_10m_is_a_clear_error_naming_the_key() {
        let parse = |v: &str| {
            Config::parse(
                &format!("[content]\ntime_limit = \"{v}\"\n"),
                Path::new("k.toml"),
            )
        };
        for ok in ["10ms", "250ms", "1s", "5s", "10m", " 2s "] {
            let c = parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(c.content.time_limit().is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("0", "out of range"),
            ("0ms", "out of range"),
            ("9ms", "out of range"),
            ("601s", "out of range"),
            ("11m", "out of range"),
            ("1h", "out of range"),
            ("-1s", "not a duration"),
            ("-5ms", "not a duration"),
            ("1.5s", "unknown unit"),
            ("", "not a duration"),
            ("fast", "not a duration"),
            // Past u64 (the digits) and past u64 milliseconds (the unit).
            ("99999999999999999999ms", "not a duration"),
            ("9999999999999999999d", "out of range"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("k.toml:2: `content.time_limit`") && e.contains(says),
                "{bad:?}: {e}"
            );
        }
        // Not a string at all: the TOML type error, with the key too.
        let e = Config::parse("[content]\ntime_limit = 5\n", Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("time_limit"), "{e}");
    }

    #[test]
    fn smtp_auth_in_clear_and_unknown_tls_modes_are_config_errors() {
        let text = "[alerts]\nsmtp_relay = \"mail:25\"\n\n[alerts.smtp_transport]\nusername = \"k\"\npassword_file = \"/config/pw\"\n";
        let e = Config::parse(text, Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k.toml:5: `alerts.smtp_transport.username`") && e.contains("starttls"),
            "{e}"
        );
        let text = "[alerts.syslog_transport]\ntls = \"starttls\"\n";
        let e = Config::parse(text, Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`alerts.syslog_transport.tls`"), "{e}");
        let text = "[alerts.smtp_transport]\ntls = \"starttls\"\nusername = \"k\"\npassword_file = \"/config/pw\"\n";
        Config::parse(text, Path::new("k.toml")).unwrap();
    }

    #[test]
    fn capture_zero_copy_is_auto_on_or_off() {
        for v in ["auto", "on", "off"] {
            let text = format!("[capture]\nzero_copy = \"{v}\"\n");
            let c = Config::parse(&text, Path::new("k.toml")).unwrap();
            assert_eq!(c.capture.zero_copy, v);
        }
        let e = Config::parse("[capture]\nzero_copy = \"yes\"\n", Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`capture.zero_copy`"), "{e}");
        assert_eq!(Capture::default().zero_copy, "off");
    }

    #[test]
    fn storage_scrub_rate_is_mb_per_second_or_zero() {
        assert_eq!(Storage::default().scrub_rate, 8.0);
        for (v, want) in [("0", 0.0), ("2", 2.0), ("0.5", 0.5)] {
            let text = format!("[storage]\nscrub_rate = {v}\n");
            let c = Config::parse(&text, Path::new("k.toml")).unwrap();
            assert_eq!(c.storage.scrub_rate, want);
        }
        for bad in ["-1", "nan", "inf"] {
            let text = format!("[storage]\nscrub_rate = {bad}\n");
            let e = Config::parse(&text, Path::new("k.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("storage.scrub_rate"), "{bad}: {e}");
        }
    }

    #[test]
    fn storage_scrub_overdue_is_auto_or_a_duration() {
        assert_eq!(Storage::default().scrub_overdue_secs(), Ok(0));
        for (v, want) in [("auto", 0), ("36h", 129_600), ("7d", 604_800), ("2s", 2)] {
            let text = format!("[storage]\nscrub_overdue = \"{v}\"\n");
            let c = Config::parse(&text, Path::new("k.toml")).unwrap();
            assert_eq!(c.storage.scrub_overdue_secs(), Ok(want), "{v}");
        }
        for bad in ["0", "soon", "-1h", "5 fortnights"] {
            let text = format!("[storage]\nscrub_overdue = \"{bad}\"\n");
            let e = Config::parse(&text, Path::new("k.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("storage.scrub_overdue"), "{bad}: {e}");
        }
    }

    #[test]
    fn business_hours_in_zone_with_weekend_and_dst() {
        let bh = BusinessHours::parse("mon-fri 09:00-18:00").unwrap();
        let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        // Wed 2026-11-18 10:00 JST = 01:00Z.
        let t = Timestamp::from_datetime(&tokyo.with_ymd_and_hms(2026, 11, 18, 10, 0, 0).unwrap());
        assert!(bh.contains(t, &tokyo));
        assert!(!bh.contains(t, &chrono_tz::UTC)); // 01:00 UTC
        // Saturday.
        let t = Timestamp::from_datetime(&tokyo.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap());
        assert!(!bh.contains(t, &tokyo));
        // New York, 2026-03-09 (Monday after DST start) 08:30 EDT = 12:30Z: outside;
        // 09:30 EDT = 13:30Z inside. Before DST (EST), 13:30Z would be 08:30: outside.
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let at = |h, m| {
            Timestamp::from_datetime(&chrono::Utc.with_ymd_and_hms(2026, 3, 9, h, m, 0).unwrap())
        };
        assert!(!bh.contains(at(12, 30), &ny));
        assert!(bh.contains(at(13, 30), &ny));
        let before =
            Timestamp::from_datetime(&chrono::Utc.with_ymd_and_hms(2026, 3, 6, 13, 30, 0).unwrap());
        assert!(!bh.contains(before, &ny));
        assert!(BusinessHours::parse("mon-fri 18:00-09:00").is_err());
        assert!(BusinessHours::parse("weekdays 9-5").is_err());
    }
}
