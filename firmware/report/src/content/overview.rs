//! The cover and chapter 1 (実施概要): what was diagnosed, when, and what was stored.

use super::parts::*;
use super::{Block, Cover};
use crate::data::ReportData;
use crate::escape::group_digits as num;
use crate::texts::tr;
use kuroko_model::finding::Lang;
use kuroko_model::units::format_bytes;

pub fn cover(d: &ReportData, lang: Lang) -> Cover {
    let mut addressee = d.customer_or_site(lang);
    if lang == Lang::Ja && !d.customer.trim().is_empty() {
        addressee.push_str(" 御中");
    }
    let mut facts = Facts::new(lang)
        .row("診断対象", "Site", or_dash(&d.site_name))
        .row("診断期間", "Period", period_text(d, lang))
        .row("報告書作成日", "Issued", d.local_date(d.generated));
    if !d.analyst.trim().is_empty() {
        facts = facts.row("作成者", "Prepared by", d.analyst.clone());
    }
    Cover {
        confidential: tr(lang, "社外秘 / CONFIDENTIAL", "CONFIDENTIAL"),
        subtitle: tr(
            lang,
            "ネットワーク診断 (Network Blackbox「Kuroko」によるフルパケット分析)",
            "Network diagnosis by full-packet analysis with the Kuroko network blackbox",
        ),
        addressee,
        facts: facts.rows,
    }
}

pub fn overview(d: &ReportData, lang: Lang) -> Vec<Block> {
    let mut blocks = engagement(d, lang);
    blocks.extend(super::coverage::coverage(d, lang));
    blocks
}

fn engagement(d: &ReportData, lang: Lang) -> Vec<Block> {
    let nets = d
        .internal_networks
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let appliance = format!("Kuroko network blackbox {}", env!("CARGO_PKG_VERSION"));
    let s = &d.store;
    let analyzed = match (s.analyzed_to, s.analyzer_lag_secs) {
        (Some(t), Some(lag)) if lag > 0.5 => format!(
            "{} ({} {lag:.0} {})",
            d.local_time(t),
            tr(lang, "未解析:", "behind by"),
            tr(lang, "秒分", "s")
        ),
        (Some(t), _) => format!(
            "{} ({})",
            d.local_time(t),
            tr(
                lang,
                "保存済みパケットはすべて解析済み",
                "every stored packet analyzed"
            )
        ),
        _ => unknown(lang),
    };
    vec![
        heading("1.1", tr(lang, "診断の概要", "About this diagnosis")),
        para(tr(
            lang,
            "本診断は、診断対象ネットワークのミラーポートに Network Blackbox「Kuroko」を設置し、内部から内部、内部から外部への通信をフルパケットで収集・保存したうえで、プロトコル解析、ファイル・メールの再構築、検知ルールによる脅威分析を行い、検出した脅威を「脆弱性」と「脅威」の 2 要素でスコアリングしたものです。",
            "For this diagnosis the Kuroko network blackbox was attached to a mirror port of the network under review. It recorded every packet of internal and outbound traffic, decoded the protocols, reconstructed files and mails, and ran threat detections; each threat found was scored on two factors, vulnerability and threat.",
        )),
        heading("1.2", tr(lang, "実施概要", "Engagement")),
        Facts::new(lang)
            .row("お客様名", "Customer", or_dash(&d.customer))
            .row("診断対象", "Site", or_dash(&d.site_name))
            .row("診断期間", "Period", period_text(d, lang))
            .row("タイムゾーン", "Time zone", d.timezone.name())
            .row("内部ネットワーク", "Internal networks", nets)
            .row("利用機器", "Appliance", appliance)
            .row("報告書作成日時", "Generated", d.local_time(d.generated))
            .block(),
        heading("1.3", tr(lang, "収集統計", "Capture statistics")),
        Facts::new(lang)
            .row("保存パケット数", "Packets stored", opt_num(s.packets, lang))
            .row("保存データ量", "Bytes stored", opt_bytes(s.bytes, lang))
            .row(
                "取りこぼしパケット数",
                "Packets dropped",
                opt_num(s.drops, lang),
            )
            .row("解析済み範囲", "Analyzed up to", analyzed)
            .row("解析セッション数", "Sessions analyzed", num(d.env.sessions))
            // The analyzer's own count, as `kuroko status` shows it; packets in sessions
            // leave out frames that belong to none (ARP, LLDP, broken frames).
            .row(
                "解析パケット数",
                "Packets analyzed",
                opt_num(s.analyzed_packets, lang),
            )
            .row(
                "うちセッションに含まれるパケット数",
                "of which in sessions",
                num(d.env.packets),
            )
            .row(
                "解析通信量 (ペイロード)",
                "Payload analyzed",
                format_bytes(d.env.bytes),
            )
            .row("検出脅威数", "Findings", num(d.findings.len() as u64))
            .block(),
    ]
}
