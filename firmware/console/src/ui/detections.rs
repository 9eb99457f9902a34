//! Detections: findings by grade, newest first within a grade, with a detail pane.

use super::{block, format_count, format_time};
use crate::app::App;
use crate::text::Texts;
use kuroko_model::Risk;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState, Wrap};

pub fn risk_style(r: Risk) -> Style {
    let base = Style::default().add_modifier(Modifier::BOLD);
    match r {
        Risk::A => base.fg(Color::Red),
        Risk::B => base.fg(Color::LightRed),
        Risk::C => base.fg(Color::Yellow),
        Risk::D => Style::default().fg(Color::Cyan),
        Risk::E => Style::default(),
    }
}

pub fn draw(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let Some(snap) = &app.snapshot else {
        frame.render_widget(
            Paragraph::new(t.stale).block(block(app, t.detections)),
            area,
        );
        return;
    };
    let mut counts = [0u64; 5];
    for f in &snap.findings {
        counts[f.risk as usize] += 1;
    }
    let mut grade_spans = vec![Span::raw(format!("{}: ", t.findings_by_grade))];
    for (i, r) in Risk::ALL.iter().enumerate() {
        grade_spans.push(Span::styled(format!("{r}:{} ", counts[i]), risk_style(*r)));
    }
    let wide = area.width >= 120;
    let detail_open = app.detections_detail || wide;
    let [grades, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    frame.render_widget(Paragraph::new(Line::from(grade_spans)), grades);
    let (list_area, detail_area) = if !detail_open {
        (rest, None)
    } else if wide {
        let [l, r] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(rest);
        (l, Some(r))
    } else {
        let [l, r] = Layout::vertical([Constraint::Length(6), Constraint::Min(5)]).areas(rest);
        (l, Some(r))
    };

    if snap.findings.is_empty() {
        frame.render_widget(
            Paragraph::new(t.no_findings).block(block(app, t.detections)),
            list_area,
        );
        return;
    }
    let rows = snap.findings.iter().map(|f| {
        Row::new(vec![
            Span::styled(f.risk.to_string(), risk_style(f.risk)),
            Span::raw(f.title.clone()),
            Span::raw(f.client.clone().unwrap_or_else(|| "*".into())),
            Span::raw(f.server.clone().unwrap_or_else(|| "*".into())),
            Span::raw(format_count(f.count)),
            Span::raw(format_time(f.last_seen, &app.tz)),
        ])
    });
    let widths = [
        Constraint::Length(1),
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Length(6),
        Constraint::Length(14),
    ];
    let header = Row::new(vec!["", t.rule, t.client, t.server, t.count, t.last_seen])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let mut state = TableState::default().with_selected(Some(app.detections_selected));
    let hl = if app.ascii { "> " } else { "▶ " };
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(app, t.detections))
            .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
            .highlight_symbol(hl),
        list_area,
        &mut state,
    );

    if let (Some(area), Some(f)) = (detail_area, snap.findings.get(app.detections_selected)) {
        let mut lines = vec![
            Line::from(vec![
                Span::styled(format!("[{}] ", f.risk), risk_style(f.risk)),
                Span::styled(
                    f.title.clone(),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
            ]),
            Line::from(format!(
                "{}: {}  {} {}x{}  ATT&CK {}",
                t.rule,
                f.rule,
                f.category.as_str(),
                f.vulnerability,
                f.threat,
                f.attack.join(",")
            )),
            Line::from(format!(
                "{}: {}  {}: {}",
                t.client,
                f.client.as_deref().unwrap_or("*"),
                t.server,
                f.server.as_deref().unwrap_or("*")
            )),
            Line::from(format!(
                "{}: {}  {}: {}  {}: {}",
                t.count,
                f.count,
                t.first_seen,
                format_time(f.first_seen, &app.tz),
                t.last_seen,
                format_time(f.last_seen, &app.tz)
            )),
        ];
        for s in &f.signals {
            lines.push(Line::from(format!("  * {s}")));
        }
        if let Some(r) = &f.override_reason {
            lines.push(Line::from(format!("  override: {r}")));
        }
        lines.push(Line::from(format!("{}:", t.countermeasures)));
        for c in &f.countermeasures {
            lines.push(Line::from(format!("  - {c}")));
        }
        lines.push(Line::from(format!(
            "{} ({}, e): {}",
            t.evidence_sessions,
            f.evidence.len(),
            f.evidence
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        )));
        frame.render_widget(
            Paragraph::new(lines)
                .block(block(app, &f.rule))
                .wrap(Wrap { trim: false }),
            area,
        );
    }
}
