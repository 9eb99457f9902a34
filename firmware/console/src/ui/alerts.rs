//! Alerts: the saved conditions and what they caught recently.

use super::{block, format_count, format_time};
use crate::app::App;
use crate::text::Texts;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Paragraph, Row, Table, TableState};

pub fn draw(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let Some(snap) = &app.snapshot else {
        frame.render_widget(Paragraph::new(t.stale).block(block(app, t.alerts)), area);
        return;
    };
    let a = &snap.alerts;
    let cond_h = (a.conditions.len() as u16 + 3).min(area.height / 2).max(4);
    let [cond_area, hits_area] =
        Layout::vertical([Constraint::Length(cond_h), Constraint::Min(3)]).areas(area);
    let rows = a.conditions.iter().map(|c| {
        Row::new(vec![
            super::headers::severity(app.lang, &c.severity),
            c.name.clone(),
            format_count(c.hits),
            c.query.clone(),
        ])
    });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(9),
                Constraint::Fill(2),
                Constraint::Length(6),
                Constraint::Fill(4),
            ],
        )
        .header(
            Row::new(super::headers::conditions(app.lang).to_vec())
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(block(app, t.conditions)),
        cond_area,
    );
    if a.recent.is_empty() {
        frame.render_widget(
            Paragraph::new(t.no_hits).block(block(app, t.recent_hits)),
            hits_area,
        );
        return;
    }
    let rows = a.recent.iter().map(|h| {
        Row::new(vec![
            format_time(h.time, &app.tz),
            super::headers::severity(app.lang, &h.severity),
            h.condition.clone(),
            h.summary.clone(),
        ])
    });
    let mut state = TableState::default().with_selected(Some(app.alerts_selected));
    frame.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Length(14),
                Constraint::Length(9),
                Constraint::Fill(2),
                Constraint::Fill(4),
            ],
        )
        .header({
            let mut h = vec![super::headers::time(app.lang, &app.tz)];
            h.extend(super::headers::hits(app.lang).map(String::from));
            Row::new(h).style(Style::default().add_modifier(Modifier::BOLD))
        })
        .block(block(app, t.recent_hits))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        hits_area,
        &mut state,
    );
}
