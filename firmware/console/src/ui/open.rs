//! 通信中 / Open: the sessions still in progress (issue 15), as their latest provisional
//! records show them: how long each has been open so far, client and server, bytes each
//! way; on a wide screen also its start, how long since its last packet (a stalled flow
//! shows here before any timeout ends it), packets and host. Refreshed with every snapshot
//! (the title says as of when), so a technician at the panel sees an SSH session or a
//! 2-hour upload while it is happening, not after it ends.
//!
//! Its labels live here (not in `crate::text`), so that adding the screen touched the
//! shared screen list and texts as little as possible.

use super::{block, format_count, format_duration_s, format_time};
use crate::app::App;
use crate::text::Texts;
use kuroko_model::finding::Lang;
use kuroko_model::session::SessionRecord;
use kuroko_model::units::format_bytes;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Paragraph, Row, Table, TableState, Wrap};

/// The tab's name.
pub fn tab(lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => "通信中",
        Lang::En => "Open",
    }
}

struct Labels {
    title: &'static str,
    as_of: &'static str,
    none: &'static str,
    columns: [&'static str; 6],
    wide: [&'static str; 3],
}

fn labels(lang: Lang) -> Labels {
    match lang {
        Lang::Ja => Labels {
            title: "通信中のセッション",
            as_of: "時点",
            none: "通信中のセッションはありません",
            columns: ["継続", "通信", "クライアント", "サーバ", "送信", "受信"],
            wide: ["無通信", "パケット", "ホスト"],
        },
        Lang::En => Labels {
            title: "Open sessions",
            as_of: "as of",
            none: "no sessions open",
            columns: ["Open for", "Proto", "Client", "Server", "Sent", "Received"],
            wide: ["Idle", "Packets", "Host"],
        },
    }
}

/// Seconds from `from` to `to` (never negative).
fn secs_between(from: kuroko_model::Timestamp, to: kuroko_model::Timestamp) -> f64 {
    (to.nanos().saturating_sub(from.nanos())).max(0) as f64 / 1e9
}

pub fn draw(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let l = labels(app.lang);
    let Some(snap) = &app.snapshot else {
        frame.render_widget(Paragraph::new(t.stale).block(block(app, l.title)), area);
        return;
    };
    let open = &snap.open;
    let shown = open.sessions.len() as u64;
    let total = open.total.unwrap_or(shown).max(shown);
    let count = if total > shown {
        format!("{shown}/{total}")
    } else {
        total.to_string()
    };
    let at = format_time(snap.taken_at, &app.tz);
    let title = match app.lang {
        Lang::Ja => format!("{} {count}件 ({at} {})", l.title, l.as_of),
        Lang::En => format!("{} {count} ({} {at})", l.title, l.as_of),
    };
    if let Some(e) = &open.error {
        frame.render_widget(
            Paragraph::new(e.as_str())
                .wrap(Wrap { trim: false })
                .block(block(app, &title)),
            area,
        );
        return;
    }
    if open.sessions.is_empty() {
        frame.render_widget(Paragraph::new(l.none).block(block(app, &title)), area);
        return;
    }
    let wide = area.width >= 120;
    let mut header: Vec<String> = l.columns.iter().map(|s| s.to_string()).collect();
    let mut widths = vec![
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(super::client_width(app, &open.sessions)),
        Constraint::Length(21),
        Constraint::Length(10),
        Constraint::Length(10),
    ];
    if wide {
        header.insert(0, super::headers::time(app.lang, &app.tz));
        header.extend(l.wide.iter().map(|s| s.to_string()));
        widths.insert(0, Constraint::Length(14));
        widths.extend([
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Fill(1),
        ]);
    }
    let now = snap.taken_at;
    let rows = open.sessions.iter().map(|s: &SessionRecord| {
        let mut cells = vec![
            format_duration_s(secs_between(s.start, now)),
            s.protocol.clone(),
            super::client_cell(app, s),
            format!(
                "{}:{}{}",
                s.server.ip,
                s.server.port,
                super::vpn_mark(app, s.server.ip)
            ),
            format_bytes(s.bytes_up),
            format_bytes(s.bytes_down),
        ];
        if wide {
            cells.insert(0, format_time(s.start, &app.tz));
            cells.push(format_duration_s(secs_between(s.end.max(s.start), now)));
            cells.push(format_count(s.packets));
            cells.push(s.host().unwrap_or_default().to_string());
        }
        Row::new(cells)
    });
    let mut state = TableState::default();
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
            .block(block(app, &title)),
        area,
        &mut state,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_labels_have_no_english_words() {
        let l = labels(Lang::Ja);
        for h in l
            .columns
            .iter()
            .chain(l.wide.iter())
            .chain([&l.title, &l.none])
        {
            assert!(
                !h.chars().any(|c| c.is_ascii_alphabetic()),
                "English label in ja: {h}"
            );
        }
    }
}
