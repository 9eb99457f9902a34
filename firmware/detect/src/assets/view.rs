//! The inventory as readers show it: every software fact identified and judged against
//! the advisory list at read time (a newer intel pack re-judges old evidence without
//! re-analysis). This is the `kuroko assets --format jsonl` record, one host a line.

use super::{Host, Inventory, InventoryStats, Name, Service};
use crate::versions::advisories::AdvisoryList;
use crate::versions::{Verdict, identify};
use kuroko_model::Timestamp;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct HostView {
    pub ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    pub names: Vec<Name>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub services: Vec<Service>,
    pub software: Vec<SoftwareView>,
    /// In `[site] vpn_pools` (a remote user's address): `"vpn": true`, as in `search
    /// --stats top-*`; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub vpn: bool,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct SoftwareView {
    pub role: String,
    pub kind: String,
    pub port: u16,
    pub text: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub session: String,
    /// Product id and version the advisory list knows it by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Advisories whose verdict is `vulnerable` or `unknown` (a `fixed` one is left out).
    pub advisories: Vec<AdvisoryVerdict>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct AdvisoryVerdict {
    pub cves: Vec<String>,
    pub severity: String,
    pub verdict: Verdict,
    pub fixed: String,
    pub reason: String,
}

impl SoftwareView {
    /// The worst verdict: `vulnerable`, else `unknown` when an advisory could not tell,
    /// else none.
    pub fn worst(&self) -> Option<Verdict> {
        if self
            .advisories
            .iter()
            .any(|a| a.verdict == Verdict::Vulnerable)
        {
            Some(Verdict::Vulnerable)
        } else if self.advisories.is_empty() {
            None
        } else {
            Some(Verdict::Unknown)
        }
    }
}

/// What the inventory knows, hosts by address, with the software judged.
pub fn view(
    inv: &Inventory,
    list: &AdvisoryList,
    vpn: &kuroko_model::config::VpnPools,
) -> Vec<HostView> {
    inv.hosts
        .values()
        .map(|h| HostView {
            vpn: vpn.contains(h.ip),
            ..host_view(h, list)
        })
        .collect()
}

/// Counters of the inventory (evictions and dropped facts), for status and the report.
pub fn stats(inv: &Inventory) -> &InventoryStats {
    &inv.stats
}

fn host_view(h: &Host, list: &AdvisoryList) -> HostView {
    HostView {
        ip: h.ip,
        mac: h.mac.clone(),
        names: h.names.clone(),
        first_seen: h.first_seen,
        last_seen: h.last_seen,
        vpn: false,
        services: {
            let mut s = h.services.clone();
            s.sort_by(|a, b| (a.port, &a.transport).cmp(&(b.port, &b.transport)));
            s
        },
        software: h
            .software
            .iter()
            .map(|f| {
                let sw = if f.role == "server"
                    && matches!(
                        f.kind.as_str(),
                        "ssh-banner" | "http-server" | "ftp-banner" | "mail-banner" | "tns-version"
                    ) {
                    identify(&f.text)
                } else {
                    None
                };
                let advisories = sw
                    .as_ref()
                    .map(|sw| {
                        list.judge(sw)
                            .into_iter()
                            .filter(|j| j.verdict != Verdict::Fixed)
                            .map(|j| AdvisoryVerdict {
                                cves: j.advisory.cves.clone(),
                                severity: j.advisory.severity.as_str().to_string(),
                                verdict: j.verdict,
                                fixed: j.advisory.fixed_list(),
                                reason: j.reason,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                SoftwareView {
                    role: f.role.clone(),
                    kind: f.kind.clone(),
                    port: f.port,
                    text: f.text.clone(),
                    first_seen: f.first_seen,
                    last_seen: f.last_seen,
                    session: f.session.clone(),
                    product: sw.as_ref().map(|s| s.product.to_string()),
                    version: sw
                        .as_ref()
                        .and_then(|s| s.version.as_ref().map(|v| v.to_string())),
                    advisories,
                }
            })
            .collect(),
    }
}
