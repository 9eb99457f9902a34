//! Assets: the internal hosts the traffic shows (issue 20), each with its name, the ports
//! it answered on and the server software it announced with the worst advisory verdict,
//! vulnerable hosts first — the same inventory `kuroko assets` prints, for the technician
//! at the front panel. Verdicts are written as words, not only colors.

use super::block;
use crate::app::App;
use crate::snapshot::AssetRow;
use kuroko_model::finding::Lang;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Paragraph, Row, Table, TableState};

/// The screen's tab title.
pub fn title(lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => "資産",
        Lang::En => "Assets",
    }
}

fn verdict_word(lang: Lang, worst: u8) -> &'static str {
    match (lang, worst) {
        (Lang::Ja, 2) => "脆弱",
        (Lang::Ja, 1) => "不明",
        (Lang::En, 2) => "VULN",
        (Lang::En, 1) => "unknown",
        _ => "-",
    }
}

fn headers(lang: Lang) -> [&'static str; 5] {
    match lang {
        Lang::Ja => ["判定", "ホスト", "名前", "サービス", "ソフトウェア"],
        Lang::En => ["Verdict", "Host", "Name", "Services", "Software"],
    }
}

/// Hosts in the order shown: worst verdict first, then by address as the source gave
/// them.
pub fn ordered(rows: &[AssetRow]) -> Vec<&AssetRow> {
    let mut v: Vec<&AssetRow> = rows.iter().collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.worst()));
    v
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let lang = app.lang;
    let Some(snap) = &app.snapshot else {
        frame.render_widget(Paragraph::new("-").block(block(app, title(lang))), area);
        return;
    };
    let rows = ordered(&snap.assets);
    let vulnerable = rows.iter().filter(|r| r.worst() == 2).count();
    let heading = match lang {
        Lang::Ja => format!("資産: ホスト {}, 脆弱 {}", rows.len(), vulnerable),
        Lang::En => format!("Assets: {} hosts, {} vulnerable", rows.len(), vulnerable),
    };
    if rows.is_empty() {
        let none = match lang {
            Lang::Ja => "まだ資産は見えていません",
            Lang::En => "No assets seen yet",
        };
        frame.render_widget(Paragraph::new(none).block(block(app, &heading)), area);
        return;
    }
    // Addresses whole where they fit: at least 15 columns, up to 24 (`10.8.0.105 (VPN)`).
    let ip_width = rows
        .iter()
        .map(|r| address(r).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(15, 24) as u16;
    let table_rows = rows.iter().map(|r| {
        let sw = r.software.first();
        let software = sw.map_or(String::new(), |s| match s.cves.first() {
            // The advisory first: at 80 columns the banner is what gets cut.
            Some(cve) => format!("{cve} {}", s.text),
            None => s.text.clone(),
        });
        let more = r.software.len().saturating_sub(1);
        let software = if more > 0 {
            format!("{software} +{more}")
        } else {
            software
        };
        let mark = verdict_word(lang, r.worst());
        let style = if r.worst() == 2 {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        Row::new(vec![
            mark.to_string(),
            address(r),
            r.name.clone().unwrap_or_default(),
            r.services.join(", "),
            software,
        ])
        .style(style)
    });
    let mut state = TableState::default().with_selected(Some(app.assets_selected));
    frame.render_stateful_widget(
        Table::new(
            table_rows,
            [
                Constraint::Length(7),
                Constraint::Length(ip_width),
                Constraint::Fill(1),
                Constraint::Fill(2),
                Constraint::Fill(3),
            ],
        )
        .header(
            Row::new(headers(lang).to_vec()).style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(block(app, &heading))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
        &mut state,
    );
}

/// The host's address, `(VPN)` after one in `[site] vpn_pools` (as `kuroko assets` and the
/// findings table mark it).
fn address(r: &AssetRow) -> String {
    if r.vpn {
        format!("{} (VPN)", r.ip)
    } else {
        r.ip.clone()
    }
}
