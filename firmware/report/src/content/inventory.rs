//! §3.6: the network environment as the traffic shows it, and the vulnerability analysis
//! of what it announced: the inside hosts' services (open ports, who used them from inside
//! and outside; ports a host only announced over mDNS are listed as announced, with no
//! client counts) and the software versions judged against the shipped advisory list. It is
//! the asset inventory `kuroko assets` prints (`kuroko_detect::assets::view`), read once
//! into [`ReportData::assets`]; nothing is scanned.

use super::parts::*;
use super::{Block, Cell, Column};
use crate::data::ReportData;
use crate::escape::group_digits as num;
use crate::texts::tr;
use kuroko_detect::assets::view::{HostView, SoftwareView};
use kuroko_detect::versions::Verdict;
use kuroko_model::finding::Lang;

/// Rows per table; the rest are counted under it.
pub const MAX_ROWS: usize = 40;

pub fn inventory(d: &ReportData, lang: Lang) -> Vec<Block> {
    let a = &d.assets;
    let mut b = vec![heading(
        "3.6",
        tr(
            lang,
            "ネットワーク環境と脆弱性分析",
            "Network environment and vulnerability analysis",
        ),
    )];
    if a.hosts.is_empty() {
        b.push(muted(tr(
            lang,
            "資産インベントリに内部ホストがありません (未解析、または [assets] enabled = false)。",
            "The asset inventory holds no inside host (not analyzed yet, or [assets] enabled = false).",
        )));
        return b;
    }
    let services = a
        .hosts
        .iter()
        .flat_map(|h| &h.services)
        .filter(|s| s.answered())
        .count();
    let announced_only = a
        .hosts
        .iter()
        .flat_map(|h| &h.services)
        .filter(|s| !s.answered())
        .count();
    let exposed = a
        .hosts
        .iter()
        .flat_map(|h| &h.services)
        .filter(|s| s.external_clients > 0)
        .count();
    b.push(para(&match lang {
        Lang::Ja => format!(
            "通信から確認できた内部ホストは {} 台、応答したサービスは {} 件で、そのうち {} 件は外部からの接続を受けていました。ソフトウェアのバージョンは {} 付の脆弱性情報と照合しています (スキャンは行っていません)。",
            num(a.hosts.len() as u64),
            num(services as u64),
            num(exposed as u64),
            a.list_date
        ) + &if announced_only > 0 {
            format!(
                " このほか {} 件のポートが mDNS で告知されていましたが、応答は観測されていません。",
                num(announced_only as u64)
            )
        } else {
            String::new()
        },
        Lang::En => format!(
            "The traffic shows {} inside hosts answering on {} services, {} of them reached from outside. Announced software versions are judged against the advisory list dated {} (nothing was scanned).",
            num(a.hosts.len() as u64),
            num(services as u64),
            num(exposed as u64),
            a.list_date
        ) + &if announced_only > 0 {
            format!(
                " {} more ports were announced over mDNS but not seen answering.",
                num(announced_only as u64)
            )
        } else {
            String::new()
        },
    }));

    b.push(sub(tr(
        lang,
        "公開ポート (サービス)",
        "Open ports (services)",
    )));
    let mut rows: Vec<(&HostView, &kuroko_detect::assets::Service)> = a
        .hosts
        .iter()
        .flat_map(|h| h.services.iter().map(move |s| (h, s)))
        .collect();
    rows.sort_by(|x, y| {
        (y.1.external_clients, y.1.sessions, x.0.ip, x.1.port).cmp(&(
            x.1.external_clients,
            x.1.sessions,
            y.0.ip,
            y.1.port,
        ))
    });
    let total = rows.len();
    b.push(table(
        vec![
            Column::new(tr(lang, "ホスト", "Host"), Some(30)),
            Column::new(tr(lang, "ポート", "Port"), Some(14)),
            Column::new(tr(lang, "プロトコル", "Protocol"), Some(14)),
            Column::num(tr(lang, "セッション数", "Sessions"), Some(14)),
            Column::num(tr(lang, "内部の接続元", "Inside clients"), Some(14)),
            Column::num(tr(lang, "外部の接続元", "Outside clients"), Some(14)),
        ],
        rows.into_iter()
            .take(MAX_ROWS)
            .map(|(h, s)| {
                let protocol = if s.announced.is_empty() {
                    s.protocol.clone()
                } else {
                    format!(
                        "{} ({} {})",
                        s.protocol,
                        tr(lang, "mDNS 告知", "announced"),
                        s.announced.join(", ")
                    )
                };
                // Only announced: not seen answering, no clients to count.
                let count = |n: u64| {
                    if s.answered() {
                        Cell::Number(num(n))
                    } else {
                        Cell::Text("-".into())
                    }
                };
                vec![
                    Cell::Address(d.endpoint_label(Some(&h.ip.to_string()), lang)),
                    Cell::Code(format!("{}/{}", s.port, s.transport)),
                    Cell::Text(protocol),
                    count(s.sessions),
                    count(u64::from(s.internal_clients)),
                    count(u64::from(s.external_clients)),
                ]
            })
            .collect(),
    ));
    more(&mut b, total, lang);

    b.push(sub(tr(
        lang,
        "ソフトウェアのバージョンと脆弱性",
        "Software versions and known vulnerabilities",
    )));
    let mut sw: Vec<(&HostView, &SoftwareView)> = a
        .hosts
        .iter()
        .flat_map(|h| h.software.iter().map(move |s| (h, s)))
        .filter(|(_, s)| s.role == "server")
        .collect();
    let rank = |s: &SoftwareView| match s.worst() {
        Some(Verdict::Vulnerable) => 0,
        Some(_) => 1,
        None => 2,
    };
    sw.sort_by_key(|(h, s)| (rank(s), h.ip, s.port));
    let total = sw.len();
    if total == 0 {
        b.push(muted(tr(
            lang,
            "サーバが名乗ったソフトウェアはありません。",
            "No server announced its software.",
        )));
        return b;
    }
    b.push(table(
        vec![
            Column::new(tr(lang, "ホスト", "Host"), Some(22)),
            Column::new(tr(lang, "ポート", "Port"), Some(8)),
            Column::new(
                tr(lang, "名乗ったソフトウェア", "Announced software"),
                Some(30),
            ),
            Column::new(tr(lang, "判定", "Verdict"), Some(14)),
            Column::new(tr(lang, "該当する脆弱性", "Advisories"), Some(26)),
        ],
        sw.into_iter()
            .take(MAX_ROWS)
            .map(|(h, s)| {
                let (verdict, cves) = verdict(s, lang);
                vec![
                    Cell::Address(d.endpoint_label(Some(&h.ip.to_string()), lang)),
                    Cell::Number(s.port.to_string()),
                    Cell::Code(s.text.clone()),
                    Cell::Text(verdict),
                    Cell::Code(cves),
                ]
            })
            .collect(),
    ));
    more(&mut b, total, lang);
    b.push(muted(tr(
        lang,
        "判定が「不明」のものは、バナーからは修正の有無を判断できないもの (ディストリビューションのパッケージの版がない、修正が更新プログラムや設定である等) です。推測はしていません。",
        "\"Unknown\" means the banner cannot tell whether the fix is in (a distribution package without its revision, a fix that is an update or a setting); nothing is guessed.",
    )));
    b
}

/// The worst verdict in words and the advisories behind it.
fn verdict(s: &SoftwareView, lang: Lang) -> (String, String) {
    let cves = |v: Verdict| -> String {
        s.advisories
            .iter()
            .filter(|a| a.verdict == v)
            .flat_map(|a| a.cves.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match s.worst() {
        Some(Verdict::Vulnerable) => (
            tr(lang, "脆弱", "vulnerable").to_string(),
            cves(Verdict::Vulnerable),
        ),
        Some(_) => (
            tr(lang, "不明", "unknown").to_string(),
            cves(Verdict::Unknown),
        ),
        None => (
            tr(lang, "既知の脆弱性なし", "none known").to_string(),
            String::new(),
        ),
    }
}

fn more(b: &mut Vec<Block>, total: usize, lang: Lang) {
    if total > MAX_ROWS {
        b.push(muted(&match lang {
            Lang::Ja => format!(
                "ほか {} 件は省略しています (`kuroko assets` で全件を確認できます)。",
                num((total - MAX_ROWS) as u64)
            ),
            Lang::En => format!(
                "{} more are left out (`kuroko assets` lists them all).",
                num((total - MAX_ROWS) as u64)
            ),
        }));
    }
}
