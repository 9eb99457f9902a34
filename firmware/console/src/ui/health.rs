//! Health: is the box capturing, losing anything, keeping up?

use super::{ASCII_BARS, block, format_bits, format_count, format_duration_s, format_time, pad};
use crate::alarms::{AlarmKind, AlarmState};
use crate::app::App;
use crate::snapshot::WriterBacklog;
use crate::text::Texts;
use kuroko_model::units::format_bytes;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Sparkline, Table};

/// Cells of the label column of the lower panel.
const LABEL_W: usize = 16;
/// Writer gauges older than this are marked stale (the capture publishes them about once
/// per ring block and every idle turn, so seconds of silence mean a stuck writer).
const WRITER_STALE_S: f64 = 2.0;

/// `1.8 MiB  (in flight 3 / 1.5 MiB, buffered 256 KiB)  pool 12%`, marked stale when the
/// capture stopped publishing.
fn backlog_line(b: Option<&WriterBacklog>, t: &Texts) -> Line<'static> {
    let label = pad(t.writer_backlog, LABEL_W);
    let Some(b) = b else {
        return Line::from(format!("{label}-"));
    };
    let mut s = format!("{label}{}", format_bytes(b.bytes()));
    if b.age_s > WRITER_STALE_S {
        s.push_str(&format!(" *{} {}*", t.stale, format_duration_s(b.age_s)));
    }
    s.push_str(&format!(
        "  ({} {} / {}, {} {})",
        t.in_flight,
        b.blocks_in_flight,
        format_bytes(b.bytes_in_flight),
        t.buffered,
        format_bytes(b.bytes_buffered)
    ));
    if let Some(f) = b.pool_fraction() {
        s.push_str(&format!("  {} {:.0}%", t.of_pool, f * 100.0));
    }
    let line = Line::from(s);
    if b.age_s > WRITER_STALE_S || b.pool_fraction().is_some_and(|f| f >= 0.75) {
        line.style(Style::default().add_modifier(Modifier::BOLD))
    } else {
        line
    }
}

/// The web console's address, then its certificate's SHA-256 fingerprint on two lines of
/// 16 bytes each (it does not fit one line of a small panel, and it must be read whole).
fn web_lines(web: Option<&crate::snapshot::WebConsole>, t: &Texts) -> Vec<Line<'static>> {
    let Some(w) = web else {
        return Vec::new();
    };
    let mut lines = vec![Line::from(format!(
        "{}{}",
        pad(t.web_console, LABEL_W),
        w.url
    ))];
    match &w.fingerprint {
        Some(fp) => {
            let bytes: Vec<&str> = fp.split(':').collect();
            for (n, half) in bytes.chunks(16).enumerate() {
                let label = if n == 0 { "  SHA-256" } else { "" };
                lines.push(Line::from(format!(
                    "{}{}",
                    pad(label, LABEL_W),
                    half.join(":")
                )));
            }
        }
        None => lines.push(Line::from(format!(
            "{}{}",
            pad("", LABEL_W),
            t.no_certificate
        ))),
    }
    lines
}

/// Most alarm lines shown on Health (the rest are counted on one more line).
const MAX_ALARM_LINES: usize = 4;

/// One line per alarm: latched ones in reverse video with `!!`, acknowledged ones plain
/// with who acknowledged them; then the key hint or the last acknowledgment's answer.
fn alarm_lines(app: &App, t: &Texts, alarms: &[AlarmState]) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for a in alarms.iter().take(MAX_ALARM_LINES) {
        let al = &a.alarm;
        let name = AlarmKind::ALL
            .iter()
            .position(|k| *k == al.kind)
            .map_or("?", |i| t.alarm_kinds[i]);
        let state = match (al.active, a.acked.is_some()) {
            (true, _) => t.alarm_active,
            (false, false) => t.alarm_over,
            (false, true) => t.alarm_ended,
        };
        let since = al
            .since
            .map(|s| format!(" {} {}", t.since, format_time(s, &app.tz)))
            .unwrap_or_default();
        let subject = if matches!(al.subject.as_str(), "store" | "analyzer" | "capture") {
            String::new()
        } else {
            format!(" {}", al.subject)
        };
        match &a.acked {
            None => lines.push(
                Line::from(format!(
                    "!! {name}{subject}: {state}{since}  {}",
                    al.detail.render(app.lang)
                ))
                .style(Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)),
            ),
            Some(ack) => lines.push(Line::from(format!(
                "   {name}{subject}: {state}{since}  {} {} {} {}",
                t.acked_by,
                ack.who,
                t.acked_at,
                format_time(ack.at, &app.tz)
            ))),
        }
    }
    if alarms.len() > MAX_ALARM_LINES {
        lines.push(Line::from(format!(
            "   +{} (kuroko status)",
            alarms.len() - MAX_ALARM_LINES
        )));
    }
    match &app.ack_result {
        Some(Ok(n)) => lines.push(Line::from(format!("{n} {}", t.acked_n))),
        Some(Err(e)) => lines.push(
            Line::from(format!("{}: {e}", t.ack_failed))
                .style(Style::default().add_modifier(Modifier::BOLD)),
        ),
        None if alarms.iter().any(|a| a.acked.is_none()) => lines.push(
            Line::from(t.ack_hint.to_string()).style(Style::default().add_modifier(Modifier::BOLD)),
        ),
        None => {}
    }
    lines
}

pub fn draw(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let Some(snap) = &app.snapshot else {
        frame.render_widget(Paragraph::new(t.stale).block(block(app, t.health)), area);
        return;
    };
    // Alarms first, above everything else on the first screen.
    let area = if snap.alarms.is_empty() {
        area
    } else {
        let lines = alarm_lines(app, t, &snap.alarms);
        let [alarm_area, rest] = Layout::vertical([
            Constraint::Length(lines.len() as u16 + 2),
            Constraint::Min(0),
        ])
        .areas(area);
        let unacked = snap.alarms.iter().filter(|a| a.acked.is_none()).count();
        let title = format!("{} ({unacked})", t.alarm);
        frame.render_widget(Paragraph::new(lines).block(block(app, &title)), alarm_area);
        rest
    };
    let n_if = snap.capture.interfaces.len().max(1) as u16;
    let spark_h = if area.height >= 30 { 4 } else { 2 };
    let [table_area, spark_area, info_area] = Layout::vertical([
        Constraint::Length(n_if + 3),
        Constraint::Length(n_if * spark_h + 2),
        Constraint::Min(4),
    ])
    .areas(area);

    // Interfaces: link, rates, drops by cause.
    let header = Row::new(vec![
        t.interface.to_string(),
        t.link.to_string(),
        t.packets_s.to_string(),
        t.bits_s.to_string(),
        format!(
            "{} {}/{}/{}/{}/{}",
            t.drops, t.kernel, t.nic, t.backpressure, t.before_rebind, t.truncated
        ),
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = snap.capture.interfaces.iter().map(|i| {
        let r = app.rates.get(&i.name);
        let link = match i.link_up {
            _ if i.gone => t.gone,
            Some(true) => t.up,
            Some(false) => t.down,
            None => t.unknown,
        };
        let d = i.drops;
        let row = Row::new(vec![
            i.name.clone(),
            link.to_string(),
            r.and_then(|r| r.current_pps())
                .map_or("-".into(), format_count),
            r.and_then(|r| r.current_bps())
                .map_or("-".into(), format_bits),
            format!(
                "{}/{}/{}/{}/{}",
                format_count(d.kernel),
                format_count(d.nic),
                format_count(d.backpressure),
                format_count(d.before_rebind),
                format_count(d.truncated)
            ),
        ]);
        if d.lost() > 0 || i.link_up == Some(false) || i.gone || i.coalesced > 0 {
            row.style(Style::default().add_modifier(Modifier::BOLD))
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Fill(1),
    ];
    let state = if snap.capture.running {
        t.capturing
    } else {
        t.not_capturing
    };
    // Capturing, but an interface is down or gone: say so where the state is.
    let blind = snap.capture.running
        && snap
            .capture
            .interfaces
            .iter()
            .any(|i| i.gone || i.link_up == Some(false));
    let title = if blind {
        format!("{} - {} - {}", t.health, state, t.blind)
    } else {
        format!("{} - {}", t.health, state)
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(app, &title)),
        table_area,
    );

    // One sparkline of packets/s per interface.
    let inner = block(app, t.packets_s).inner(spark_area);
    frame.render_widget(block(app, t.packets_s), spark_area);
    for (n, i) in snap.capture.interfaces.iter().enumerate() {
        let y = inner.y + n as u16 * spark_h;
        if y + spark_h > inner.y + inner.height {
            break;
        }
        let label_w = 10.min(inner.width);
        let label = Rect {
            x: inner.x,
            y,
            width: label_w,
            height: 1,
        };
        let line = Rect {
            x: inner.x + label_w,
            y,
            width: inner.width - label_w,
            height: spark_h,
        };
        frame.render_widget(Paragraph::new(i.name.as_str()), label);
        let data: Vec<u64> = app
            .rates
            .get(&i.name)
            .map(|r| {
                let skip = r.pps.len().saturating_sub(line.width as usize);
                r.pps.iter().skip(skip).copied().collect()
            })
            .unwrap_or_default();
        let mut spark = Sparkline::default().data(data);
        if app.ascii {
            spark = spark.bar_set(ASCII_BARS);
        }
        frame.render_widget(spark, line);
    }

    // Capture cores, writer, analyzer, warnings.
    let mut lines = Vec::new();
    let cores = if snap.capture.core_load.is_empty() {
        "-".to_string()
    } else {
        snap.capture
            .core_load
            .iter()
            .map(|(c, l)| format!("cpu{c} {l:.0}%"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    lines.push(Line::from(format!("{}{cores}", pad(t.core_load, LABEL_W))));
    lines.push(backlog_line(snap.capture.writer_backlog.as_ref(), t));
    let a = &snap.analyzer;
    let lag = match (a.lag_s, a.lag_bytes) {
        (Some(s), Some(b)) => format!("{} / {}", format_duration_s(s), format_bytes(b)),
        (Some(s), None) => format_duration_s(s),
        (None, Some(b)) => format_bytes(b),
        (None, None) => "-".into(),
    };
    lines.push(Line::from(format!(
        "{}{lag}  {} {}",
        pad(t.analyzer_lag, LABEL_W),
        format_count(a.sessions),
        t.sessions
    )));
    lines.extend(web_lines(snap.web.as_ref(), t));
    // How the store writes matters least at a glance: last, so a screen with many
    // interfaces cuts it first.
    let mode = snap.capture.write_mode.as_deref().unwrap_or("-");
    lines.push(Line::from(format!("{}{mode}", pad(t.store_io, LABEL_W))));
    if let Some(age) = snap.capture.heartbeat_age_s
        && age > 2.0
    {
        lines.push(Line::from(format!("stats: {}", format_duration_s(age))));
    }
    for w in &snap.warnings {
        lines.push(
            Line::from(format!("! {w}")).style(Style::default().add_modifier(Modifier::BOLD)),
        );
    }
    frame.render_widget(
        Paragraph::new(lines).block(block(app, t.analyzer)),
        info_area,
    );
}
