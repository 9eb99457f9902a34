//! Disk: how much history the box holds and how long until it starts forgetting.

use super::{bar, block, format_duration_s, format_time};
use crate::app::App;
use crate::text::Texts;
use kuroko_model::units::format_bytes;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

pub fn draw(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let Some(snap) = &app.snapshot else {
        frame.render_widget(Paragraph::new(t.stale).block(block(app, t.disk)), area);
        return;
    };
    let d = &snap.disk;
    let bar_w = (area.width as usize).saturating_sub(54).clamp(10, 60);
    let frac = |used: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            used as f64 / total as f64
        }
    };
    let pct = |used: u64, total: u64| format!("{:>3.0}%", frac(used, total) * 100.0);
    let mut lines = Vec::new();
    lines.push(Line::from(format!(
        "{:<14}{} {}  {} / {}",
        t.ring_fill,
        bar(app, frac(d.ring_used, d.ring_budget), bar_w),
        pct(d.ring_used, d.ring_budget),
        format_bytes(d.ring_used),
        format_bytes(d.ring_budget),
    )));
    lines.push(Line::from(format!(
        "{:<14}{} / {} segments",
        "", d.segments_used, d.segments_total
    )));
    let window = match (d.oldest, d.newest) {
        (Some(o), Some(n)) => format!(
            "{} -> {}  ({})",
            format_time(o, &app.tz),
            format_time(n, &app.tz),
            format_duration_s((n.nanos() - o.nanos()) as f64 / 1e9)
        ),
        _ => t.none.to_string(),
    };
    lines.push(Line::from(format!("{:<14}{window}", t.retention)));
    let rate = app.write_rate;
    lines.push(Line::from(format!(
        "{:<14}{}",
        t.write_rate,
        rate.map_or("-".to_string(), |r| format!("{}/s", format_bytes(r as u64)))
    )));
    // Until the ring is full it grows; once full, history is budget / rate long.
    let days = match rate {
        Some(r) if r > 0.0 => {
            let left = d.ring_budget.saturating_sub(d.ring_used) as f64 / r;
            let full_window = d.ring_budget as f64 / r;
            format!(
                "{}  ({} {})",
                format_duration_s(left),
                t.retention,
                format_duration_s(full_window)
            )
        }
        _ => "-".to_string(),
    };
    lines.push(Line::from(format!("{:<14}{days}", t.days_left)));
    lines.push(Line::from(""));
    for (label, used, total) in [
        (t.evidence, d.evidence_used, d.evidence_budget),
        (t.files, d.files_used, d.files_budget),
    ] {
        lines.push(Line::from(format!(
            "{label:<14}{} {}  {} / {}",
            bar(app, frac(used, total), bar_w),
            pct(used, total),
            format_bytes(used),
            format_bytes(total)
        )));
    }
    let fs_used = d.fs_total.saturating_sub(d.fs_free);
    lines.push(Line::from(format!(
        "{:<14}{} {}  {} free",
        t.filesystem,
        bar(app, frac(fs_used, d.fs_total), bar_w),
        pct(fs_used, d.fs_total),
        format_bytes(d.fs_free)
    )));
    lines.push(Line::from(""));
    let disks = if d.disks.is_empty() {
        "-".to_string()
    } else {
        d.disks
            .iter()
            .map(|(n, s)| format!("{n}: {s}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    lines.push(Line::from(format!("{:<14}{disks}", t.disks)));
    frame.render_widget(Paragraph::new(lines).block(block(app, t.disk)), area);
}
