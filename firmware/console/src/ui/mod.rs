//! Drawing: a pure function of [`App`]. No I/O, no state changes, so the screen tests can
//! pin every screen exactly.
//!
//! The frame is a title line (site, screen tabs, capture state), the screen, and a key
//! footer. Every state that colors show is also written as text, because the serial
//! console may have no colors at all.

mod alerts;
mod assets;
mod detections;
mod disk;
mod fmt;
mod headers;
mod health;
mod open;
mod search;

pub use fmt::{format_bits, format_count, format_duration_s, format_time, pad};

use crate::app::{App, Screen};
use crate::text::{Texts, texts};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// Borders in pure ASCII for terminals without line-drawing characters.
pub const ASCII_BORDER: symbols::border::Set = symbols::border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// Sparkline bars in pure ASCII.
pub const ASCII_BARS: symbols::bar::Set = symbols::bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: ".",
    one_eighth: ".",
    empty: " ",
};

/// A bordered block in the app's border style.
pub(crate) fn block<'a>(app: &App, title: &'a str) -> Block<'a> {
    let b = Block::default().borders(Borders::ALL).title(Span::styled(
        title,
        Style::default().add_modifier(Modifier::BOLD),
    ));
    if app.ascii {
        b.border_set(ASCII_BORDER)
    } else {
        b
    }
}

/// A text bar like `[#####-----]` of `width` cells for `fraction` in 0..=1.
/// ` (VPN)` after an address in `[site] vpn_pools` (as `kuroko search` and the findings
/// table mark it), else nothing.
pub(crate) fn vpn_mark(app: &App, ip: std::net::IpAddr) -> &'static str {
    if app.vpn.contains(ip) { " (VPN)" } else { "" }
}

/// A session's client address as the session tables show it.
pub(crate) fn client_cell(app: &App, s: &kuroko_model::SessionRecord) -> String {
    format!("{}{}", s.client.ip, vpn_mark(app, s.client.ip))
}

/// The client column's width: 15, wider (up to 21) for a marked address to stay whole.
pub(crate) fn client_width(app: &App, sessions: &[kuroko_model::SessionRecord]) -> u16 {
    sessions
        .iter()
        .filter(|s| app.vpn.contains(s.client.ip))
        .map(|s| client_cell(app, s).len())
        .max()
        .unwrap_or(0)
        .clamp(15, 21) as u16
}

pub(crate) fn bar(app: &App, fraction: f64, width: usize) -> String {
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let filled = (f * width as f64).round() as usize;
    let (on, off) = if app.ascii {
        ("#", "-")
    } else {
        ("█", "░")
    };
    format!("[{}{}]", on.repeat(filled), off.repeat(width - filled))
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < 20 || area.height < 6 {
        frame.render_widget(Paragraph::new("kuroko: terminal too small"), area);
        return;
    }
    let t = texts(app.lang);
    let [title, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(frame, app, t, title);
    match app.screen {
        Screen::Health => health::draw(frame, app, t, body),
        Screen::Disk => disk::draw(frame, app, t, body),
        Screen::Detections => detections::draw(frame, app, t, body),
        Screen::Search => search::draw(frame, app, t, body),
        Screen::Alerts => alerts::draw(frame, app, t, body),
        Screen::Open => open::draw(frame, app, t, body),
        Screen::Assets => assets::draw(frame, app, body),
    }
    frame.render_widget(
        Paragraph::new(Line::from(t.footer)).style(Style::default().add_modifier(Modifier::DIM)),
        footer,
    );
    if app.help {
        draw_help(frame, app, t, area);
    }
}

fn draw_title(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let mut spans = vec![Span::styled(
        "KUROKO ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if let Some(site) = app
        .snapshot
        .as_ref()
        .map(|s| s.site.as_str())
        .filter(|s| !s.is_empty())
    {
        spans.push(Span::raw(format!("{site} ")));
    }
    let names = [
        t.health,
        t.disk,
        t.detections,
        t.search,
        t.alerts,
        open::tab(app.lang),
        assets::title(app.lang),
    ];
    // Every tab named when they fit beside the state; on a narrow terminal the other tabs
    // shrink to their number keys, so the current screen's name and the state stay whole.
    let tabs = |compact: bool| -> Vec<Span<'static>> {
        let mut v = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if i == app.screen.index() {
                v.push(Span::styled(
                    format!("[{}:{}]", i + 1, name),
                    Style::default().add_modifier(Modifier::REVERSED),
                ));
                v.push(Span::raw(" "));
            } else if compact {
                v.push(Span::raw(format!("{} ", i + 1)));
            } else {
                v.push(Span::raw(format!("{}:{} ", i + 1, name)));
            }
        }
        v
    };
    let capturing = app.snapshot.as_ref().is_some_and(|s| s.capture.running);
    let state = if app.is_stale() {
        Span::styled(
            format!("*{}*", t.stale),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    } else if capturing {
        Span::styled(t.capturing, Style::default().add_modifier(Modifier::BOLD))
    } else {
        Span::styled(
            format!("!{}!", t.not_capturing),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    };
    // Latched alarms are announced on every screen, before the capture state.
    let mut right_spans = Vec::new();
    let unacked = app.unacknowledged_alarms();
    if unacked > 0 {
        right_spans.push(Span::styled(
            format!("!{} {unacked}!", t.alarm),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ));
        right_spans.push(Span::raw(" "));
    }
    right_spans.push(state);
    let right_line = Line::from(right_spans);
    let room = usize::from(area.width).saturating_sub(right_line.width());
    let full = tabs(false);
    let fits = Line::from(spans.clone()).width() + Line::from(full.clone()).width() <= room;
    spans.extend(if fits { full } else { tabs(true) });
    let [left, right] = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(right_line.width() as u16),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(Line::from(spans)), left);
    frame.render_widget(Paragraph::new(right_line), right);
}

fn draw_help(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let w = area.width.min(50);
    let h = (t.help_keys.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let lines: Vec<Line> = t
        .help_keys
        .iter()
        .map(|(k, v)| Line::from(format!("{k:<18} {v}")))
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block(app, t.help_title))
            .wrap(Wrap { trim: false }),
        popup,
    );
}
