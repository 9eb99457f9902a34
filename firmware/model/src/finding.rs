//! The finding record: one risk, graded, with what to do about it.
//!
//! Detections aggregate repeated events into one finding per (rule, client, server); the
//! grade follows the diagnosis service's table: vulnerability (1–3) × threat (1–3) →
//! 9 A, 6 B, 3–5 C, 2 D, 1 E.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A–E, A the most serious. Ordered so that `A < B`, i.e. sorting ascending puts A first.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Risk {
    A,
    B,
    C,
    D,
    E,
}

impl Risk {
    /// The seed table. Levels outside 1–3 are clamped (config validation rejects them first).
    pub fn from_levels(vulnerability: u8, threat: u8) -> Risk {
        let v = vulnerability.clamp(1, 3);
        let t = threat.clamp(1, 3);
        match v * t {
            9 => Risk::A,
            6 => Risk::B,
            3..=5 => Risk::C,
            2 => Risk::D,
            _ => Risk::E,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::A => "A",
            Risk::B => "B",
            Risk::C => "C",
            Risk::D => "D",
            Risk::E => "E",
        }
    }
    pub const ALL: [Risk; 5] = [Risk::A, Risk::B, Risk::C, Risk::D, Risk::E];
}

impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The report's scenario groups.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    InitialAccess,
    LateralMovement,
    Exfiltration,
    Insider,
    Other,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::InitialAccess => "initial_access",
            Category::LateralMovement => "lateral_movement",
            Category::Exfiltration => "exfiltration",
            Category::Insider => "insider",
            Category::Other => "other",
        }
    }
    /// The section title in the diagnosis report.
    pub fn title(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Category::InitialAccess, Lang::Ja) => "初期アクセスに繋がる脅威・脆弱性",
            (Category::LateralMovement, Lang::Ja) => "横展開に繋がる脅威・脆弱性",
            (Category::Exfiltration, Lang::Ja) => "情報流出に繋がる脅威・脆弱性",
            (Category::Insider, Lang::Ja) => "内部不正に繋がる脅威・脆弱性",
            (Category::Other, Lang::Ja) => "その他の脆弱性",
            (Category::InitialAccess, Lang::En) => {
                "Threats and weaknesses leading to initial access"
            }
            (Category::LateralMovement, Lang::En) => {
                "Threats and weaknesses leading to lateral movement"
            }
            (Category::Exfiltration, Lang::En) => {
                "Threats and weaknesses leading to data exfiltration"
            }
            (Category::Insider, Lang::En) => "Threats and weaknesses leading to insider misuse",
            (Category::Other, Lang::En) => "Other weaknesses",
        }
    }
    pub const ALL: [Category; 5] = [
        Category::InitialAccess,
        Category::LateralMovement,
        Category::Exfiltration,
        Category::Insider,
        Category::Other,
    ];
}

/// Output language of texts meant for people (titles, countermeasures, reports).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ja,
    En,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ja" | "jp" | "japanese" => Ok(Lang::Ja),
            "en" | "english" => Ok(Lang::En),
            _ => Err(format!("unknown language `{s}`: use ja or en")),
        }
    }
}

/// An address on either side of a finding. `None` on one side means "many" (the finding
/// aggregates several peers, e.g. exploit attempts from many outside addresses).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Finding {
    /// Stable: derived from (rule, client, server), so a restart updates the same finding.
    pub id: String,
    pub rule: String,
    pub title: String,
    pub category: Category,
    /// MITRE ATT&CK technique ids (`T1190`, `T1021.004`, …).
    pub attack: Vec<String>,
    pub client: Option<String>,
    pub server: Option<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u64,
    pub vulnerability: u8,
    pub threat: u8,
    pub risk: Risk,
    pub countermeasures: Vec<String>,
    /// Session ids (the first ones, capped; `count` says how many events there were).
    pub evidence: Vec<String>,
    /// Why it fired, in words (e.g. which phishing signals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
    /// Set when the levels come from a consultant's override; the reason goes in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// Which override set the levels (absent: the rule's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_source: Option<OverrideSource>,
    /// The analyst's note on this finding (`DIR/site.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the finding's sessions carried; `unknown` when it could not be counted (a
    /// finding stored by older firmware whose sessions are no longer all in the log).
    #[serde(default)]
    pub volume: Volume,
}

/// Payload bytes and packets of a finding's sessions (every session counted in `count`,
/// and an FTP finding's data connections), client → server (`up`) and back (`down`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub packets_up: u64,
    pub packets_down: u64,
    /// Not counted (the numbers are 0 then and mean nothing): a finding stored by older
    /// firmware, whose sessions could not all be read back from the session log. Written
    /// only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

impl Volume {
    /// What one session carried.
    pub fn of(s: &crate::SessionRecord) -> Volume {
        Volume {
            bytes_up: s.bytes_up,
            bytes_down: s.bytes_down,
            packets_up: s.packets_up,
            packets_down: s.packets_down,
            unknown: false,
        }
    }

    /// A volume that could not be counted.
    pub fn unknown() -> Volume {
        Volume {
            unknown: true,
            ..Volume::default()
        }
    }

    /// `↑ 1.6 KiB / 12 pkt  ↓ 3.5 KiB / 9 pkt` (`パケット` in Japanese): what a table
    /// cell shows.
    pub fn describe(&self, lang: Lang) -> String {
        use crate::units::format_bytes;
        if self.unknown {
            return match lang {
                Lang::Ja => "不明 (旧ファームウェアの検知、セッションログに残っていない)",
                Lang::En => "unknown (found by older firmware; its sessions are no longer in the session log)",
            }
            .to_string();
        }
        let pkt = match lang {
            Lang::Ja => "パケット",
            Lang::En => "pkt",
        };
        format!(
            "↑ {} / {} {pkt}  ↓ {} / {} {pkt}",
            format_bytes(self.bytes_up),
            self.packets_up,
            format_bytes(self.bytes_down),
            self.packets_down
        )
    }
}

/// Where a finding's overridden levels came from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OverrideSource {
    /// `[detect.overrides.<rule>]` in the configuration.
    Config,
    /// `[overrides.<rule or finding id>]` in `DIR/site.toml`.
    SiteFile,
}

impl Finding {
    /// Highest risk first, then most recent.
    pub fn report_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
        a.risk
            .cmp(&b.risk)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.cmp(&b.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_table() {
        let cases = [
            (3, 3, Risk::A),
            (3, 2, Risk::B),
            (2, 3, Risk::B),
            (2, 2, Risk::C),
            (3, 1, Risk::C),
            (1, 3, Risk::C),
            (2, 1, Risk::D),
            (1, 2, Risk::D),
            (1, 1, Risk::E),
        ];
        for (v, t, r) in cases {
            assert_eq!(Risk::from_levels(v, t), r, "{v}x{t}");
        }
        assert!(Risk::A < Risk::E);
    }
}
