//! Kuroko's detections and risk scoring: session records in, graded findings out.
//!
//! The consultant's deliverable is a list of real risks, each graded with the diagnosis
//! service's table (vulnerability 1–3 × threat 1–3 → 9 A, 6 B, 3–5 C, 2 D, 1 E) and with
//! what to do about it, in Japanese and English. This crate holds the built-in rules
//! (`rules/`, one module each), the rule catalog (titles, ATT&CK ids, default levels,
//! countermeasures: `catalog.rs`; the signal sentences in both languages: `signals.rs`), offline intel (reputation lists, site categories,
//! brands: `intel/`), the aggregating engine, and the durable findings store with its
//! session-log consumer. The version machinery and the advisory list (`versions/`) judge
//! announced software; the asset inventory (`assets/`) rides in the engine state.
//!
//! # Using it
//!
//! - `kuroko analyze`: [`run_pending`]`(data_dir, &config)` after the analyzer.
//! - `kuroko run` / `analyze --follow`: [`run_pending_slice`] whenever the log grew (a
//!   re-check of the past goes on in slices between live catch-ups).
//! - readers (`kuroko findings`, report, console, export): [`load_findings`]`(data_dir,
//!   &config, lang)`; evidence export: [`load_aggregates`].
//! - tests and tools on records in memory: [`Engine::new`], `observe`, `findings(lang)`.
//! - one writer at a time: a [`Detector`] holds `DIR/findings/lock` while it lives (the
//!   `kuroko` binary's evidence export takes the same lock), so drop it before exporting.
//!
//! # Invariants
//!
//! - One finding per (rule, client, server); the finding id depends on those three only,
//!   so it is stable across restarts and re-analysis.
//! - The findings and the session-log position they cover are committed together in one
//!   atomically replaced file: a crash loses no finding and a restart counts no session
//!   twice.
//! - Memory is bounded: findings (`MAX_FINDINGS`), evidence, peers and signals per
//!   finding, VPN windows; what a cap refuses is counted.
//!
//! # Must never
//!
//! - touch the network (all intel is offline files), panic on hostile field contents, or
//!   drop a finding silently.
//!
//! # Rules, their aggregation and their default levels
//!
//! "Kept" is the side recorded per address; the other side is aggregated (`None` in the
//! finding, shown as 多数 / "many") and its addresses or domains are listed as peers in
//! the signals (capped at 64). Levels follow the brochure's criteria: vulnerability = how
//! likely an attack succeeds if attempted (3 high … 1 low); threat = how easy the attack
//! is to mount (3 reachable from outside with public exploits, 2 on the intranet and
//! reproducible, 1 restricted and hard).
//!
//! | rule | kept | V | T | risk | why these levels |
//! | --- | --- | --- | --- | --- | --- |
//! | `fortinet_login_exposed` | server | 2 | 3 | B | reachable from the Internet, FortiOS SSL-VPN has public pre-auth RCE exploits (T 3); success depends on the patch level, which traffic does not show (V 2) |
//! | `public_app_exploit_attempt` | server | 2 | 3 | B | attacks already arriving from outside with public exploits (T 3); success depends on the target's patch level (V 2) |
//! | `phishing_mail` | client+server | 2 | 3 | B | the mail reached the site from outside (T 3); success needs a user to act (V 2) |
//! | `openssh_outdated` | server | 2 | 2 | C | intranet service, exploits exist but are hard (regreSSHion is a race) (T 2); distributions backport fixes (V 2) |
//! | `winrm_use` | client+server | 2 | 2 | C | remote shell on the intranet, needs credentials (T 2, V 2) |
//! | `telnet_use` | client+server | 3 | 2 | B | credentials cross the network in clear text: any sniffer succeeds (V 3); needs a foothold on the path (T 2) |
//! | `ftp_default_port_internal` | client+server | 2 | 2 | C | clear-text credentials and files on the intranet (V 2, T 2) |
//! | `ftp_default_port_external` | client+server | 3 | 2 | B | clear text across the Internet, outside our control (V 3); interception still needs a position on the path (T 2) |
//! | `ssh_external` | client+server | 3 | 3 | A | the brochure's example: the channel already exists and nothing stops it (V 3), the user already has access (T 3) |
//! | `streaming_or_adult_in_business_hours` | client | 1 | 2 | D | a policy matter with some malvertising exposure (V 1, T 2) |
//! | `oracle_traffic` | client+server | 2 | 2 | C | database on its default port, often without network encryption (V 2, T 2) |
//! | `vpn_large_upload` | client | 2 | 2 | C | a large transfer by an authenticated user; intent unknown (V 2, T 2) |
//! | `bad_reputation_ip` | listed client (attempts from it; targets aggregated), or client+server (a host of ours reached a listed server) | 2 | 3 | B | known-bad infrastructure talking with the site (T 3); the effect depends on what was reached (V 2) |
//! | `http_connect_nonstandard_port` | client+server (proxy) | 2 | 2 | C | a tunnel through the proxy that bypasses its inspection (V 2, T 2) |
//! | `vulnerable_software` | server | 3 | 2 | B | an inside server announces a version the advisory list judges vulnerable (only `vulnerable` verdicts: distribution packages are judged by their revision, `unknown` ones stay in the inventory) (V 3); reaching it needs the intranet (T 2) |
//! | `weak_tls` | server | 2 | 2 | C | an inside server negotiated SSLv3/TLS 1.0/1.1 or a weak suite, or showed an expired, self-signed or name-mismatched certificate: interception gets easier (V 2), needs a position on the path (T 2) |
//! | `cleartext_credentials` | client+server | 3 | 2 | B | FTP/POP3/IMAP/SMTP AUTH PLAIN-LOGIN/HTTP Basic login without TLS: any sniffer reads the password (V 3), needs a foothold on the path (T 2); the user is named, the secret never stored; Telnet logins are `telnet_use`'s |
//! | `intel_match` | client+server | 2–3 | 3 | A/B by kind | a session or a file it carried matched an indicator of an installed intel pack (`intel/`, `docs/INTEL.md`): known-bad infrastructure or objects (T 3); A for a C2 address or address:port, a C2 certificate or a malware file hash (the contact or the delivery happened, V 3), B for a network, domain, URL, JA3 or JA4 (less specific or shared with legitimate software, V 2; table in `rules::intel_match`); the feed, kind and indicator are the signals, each kind adds its countermeasure, and a re-check of the past says so with the intel update's date |
//! | `yara_match` | client+server | 2 | 3 | B | a reconstructed file, mail or attachment matched a YARA rule (`[intel] yara_rules`, intel packs): malware or a lure was delivered (T 3); the level is the highest the matched rules' metadata ask for (`kuroko_level` A–E, else `severity`; see `docs/YARA.md`), B when none does |
//!
//! A consultant overrides levels per rule in `[detect.overrides.<rule>]` of the
//! configuration, and per rule or per finding id in `[overrides.<rule or id>]` of
//! `DIR/site.toml` (`vulnerability`, `threat`, `reason`, `note`); [`overrides`] applies
//! them in one place for every reader, the reason goes into `Finding::override_reason`
//! and the report. `[detect] disabled_rules` switches rules off.

#![forbid(unsafe_code)]

pub mod aggregate;
pub mod assets;
pub mod catalog;
pub mod certs;
pub mod consumer;
pub mod context;
pub mod engine;
pub mod error;
pub mod intel;
pub mod overrides;
pub mod render;
pub mod rules;
pub mod signals;
pub mod site_file;
pub mod store;
pub mod text;
pub mod versions;

pub use aggregate::{Aggregate, EvidenceRef};
pub use catalog::{RuleId, RuleInfo};
pub use consumer::{
    Detector, FOLLOW_RETRO_SLICE, Summary, load_aggregates, load_assets, load_findings,
    load_findings_with, run_pending, run_pending_slice,
};
pub use engine::{Engine, EngineState, EngineStats};
pub use error::DetectError;
pub use site_file::{SiteFile, SiteFileError};

/// The rule ids, in catalog order.
pub fn rule_ids() -> Vec<&'static str> {
    RuleId::ALL.iter().map(|r| r.as_str()).collect()
}
