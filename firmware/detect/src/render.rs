//! Aggregates → contract `Finding` records in one language: title, category, ATT&CK ids,
//! levels (the rule's defaults, then the configuration's `detect.overrides.<rule>` through
//! [`crate::overrides::apply`]), the A–E grade, countermeasures, evidence and signals.
//!
//! Rendering happens when findings are read, not when they are stored, so a changed
//! override or language applies to findings already on disk without re-analysis.
//! Signals are stored as message ids with their data and worded here in the finding's
//! language by the signal catalog (`signals.rs`); text stored by older firmware is kept.

use crate::aggregate::Aggregate;
use crate::catalog::RuleId;
use crate::signals::{Msg, encode, render};
use kuroko_model::config::LevelOverride;
use kuroko_model::finding::{Finding, Lang, Risk};
use kuroko_model::units::format_bytes;
use std::collections::BTreeMap;

/// Renders and sorts (highest risk first, then most recent).
pub fn findings<'a>(
    aggregates: impl Iterator<Item = &'a Aggregate>,
    overrides: &BTreeMap<String, LevelOverride>,
    lang: Lang,
) -> Vec<Finding> {
    let mut out: Vec<Finding> = aggregates
        .filter_map(|a| finding(a, overrides, lang))
        .collect();
    out.sort_by(Finding::report_order);
    out
}

/// One finding; `None` for an aggregate of an unknown rule.
pub fn finding(
    a: &Aggregate,
    overrides: &BTreeMap<String, LevelOverride>,
    lang: Lang,
) -> Option<Finding> {
    let rule = RuleId::parse(&a.rule)?;
    let info = rule.info();
    let (v, t) = match rule {
        // The highest level the matched rules' metadata / the indicator kinds ask for.
        RuleId::YaraMatch | RuleId::IntelMatch => {
            crate::rules::yara::levels(a.max_metric).unwrap_or((info.vulnerability, info.threat))
        }
        _ => (info.vulnerability, info.threat),
    };
    let mut signals: Vec<String> = a.signals.iter().map(|s| render(s, lang)).collect();
    if a.signals_dropped > 0 {
        signals.push(render(
            &encode(Msg::MoreSignals, &[&a.signals_dropped]),
            lang,
        ));
    }
    if !a.peers.is_empty() {
        let what = match (a.client.is_none(), rule) {
            (_, RuleId::StreamingOrAdultInBusinessHours) => Msg::PeerSites,
            (true, _) => Msg::PeerClients,
            (false, _) => Msg::PeerServers,
        };
        let mut list = a.peers.join(", ");
        if a.peers_more > 0 {
            list = render(&encode(Msg::PeersMore, &[&list, &a.peers_more]), lang);
        }
        signals.push(render(&encode(what, &[&a.peers.len(), &list]), lang));
    }
    if rule == RuleId::VpnLargeUpload && a.max_metric > 0 {
        let mb = format!("{:.1}", a.max_metric as f64 / 1e6);
        signals.push(render(
            &encode(
                Msg::VpnLargestUpload,
                &[&mb, &a.max_metric, &format_bytes(a.max_metric)],
            ),
            lang,
        ));
    }
    if rule == RuleId::BadReputationIp {
        let up = kuroko_model::units::group_digits(a.bytes_up as u128);
        let down = kuroko_model::units::group_digits(a.bytes_down as u128);
        signals.push(render(
            &encode(Msg::ReputationVolume, &[&a.count, &up, &down]),
            lang,
        ));
    }
    let mut f = Finding {
        id: a.id(),
        rule: a.rule.clone(),
        title: info.title(lang).to_string(),
        category: info.category,
        attack: info.attack.iter().map(|s| s.to_string()).collect(),
        client: a.client.map(|c| c.to_string()),
        server: a.server.map(|s| s.to_string()),
        first_seen: a.first_seen,
        last_seen: a.last_seen,
        count: a.count,
        vulnerability: v,
        threat: t,
        risk: Risk::from_levels(v, t),
        countermeasures: countermeasures(rule, a, lang),
        evidence: a.evidence.iter().map(|e| e.session.clone()).collect(),
        signals,
        override_reason: None,
        override_source: None,
        note: None,
        volume: a.volume(),
    };
    crate::overrides::apply(&mut f, overrides, None, lang);
    Some(f)
}

/// The catalog's countermeasures, and for `intel_match` those of each indicator kind the
/// finding's signals name (`rules::intel_match::countermeasures`).
fn countermeasures(rule: RuleId, a: &Aggregate, lang: Lang) -> Vec<String> {
    let mut out: Vec<String> = rule
        .info()
        .countermeasures(lang)
        .iter()
        .map(|s| s.to_string())
        .collect();
    if rule == RuleId::IntelMatch {
        let kinds: Vec<&str> = a
            .signals
            .iter()
            .filter_map(|s| crate::signals::params(s, Msg::IntelIndicator))
            .filter_map(|p| p.get(2).copied())
            .collect();
        for (ja, en) in crate::rules::intel_match::countermeasures(&kinds) {
            out.push(
                match lang {
                    Lang::Ja => ja,
                    Lang::En => en,
                }
                .to_string(),
            );
        }
    }
    out
}
