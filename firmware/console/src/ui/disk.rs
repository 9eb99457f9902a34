//! Disk: how much history the box holds, how long until it starts forgetting, and whether
//! the disks under it are healthy as far as the board tells.

use super::{bar, block, format_duration_s, format_time, pad};
use crate::app::App;
use crate::snapshot::{DataDisksHealth, DiskHealth, NVME_WEAR_WARN_PERCENT, NvmeHealth};
use crate::text::Texts;
use kuroko_model::units::{format_bytes, format_decimal_bytes, group_digits};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

pub fn draw(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let Some(snap) = &app.snapshot else {
        frame.render_widget(Paragraph::new(t.stale).block(block(app, t.disk)), area);
        return;
    };
    let d = &snap.disk;
    // The label column fits the longest label of the language (Japanese ones are wide).
    let lw = [
        t.ring_fill,
        t.retention,
        t.write_rate,
        t.days_left,
        t.evidence,
        t.files,
        t.filesystem,
        t.disks,
    ]
    .iter()
    .map(|l| unicode_width::UnicodeWidthStr::width(*l) + 2)
    .max()
    .unwrap_or(0)
    .max(14);
    let label = |l: &str| pad(l, lw);
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
        "{}{} {}  {} / {}",
        label(t.ring_fill),
        // Filled segments of the ring, the fill `kuroko status` reports (the bytes beside
        // it are the preallocated files on disk, which run ahead of the fill).
        bar(app, frac(d.segments_used, d.segments_total), bar_w),
        pct(d.segments_used, d.segments_total),
        format_bytes(d.ring_used),
        format_bytes(d.ring_budget),
    )));
    lines.push(Line::from(format!(
        "{}{} / {} {}",
        label(""),
        d.segments_used,
        d.segments_total,
        t.segments
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
    lines.push(Line::from(format!("{}{window}", label(t.retention))));
    let rate = app.write_rate;
    lines.push(Line::from(format!(
        "{}{}",
        label(t.write_rate),
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
    lines.push(Line::from(format!("{}{days}", label(t.days_left))));
    lines.push(Line::from(""));
    for (name, used, total) in [
        (t.evidence, d.evidence_used, d.evidence_budget),
        (t.files, d.files_used, d.files_budget),
    ] {
        lines.push(Line::from(format!(
            "{}{} {}  {} / {}",
            label(name),
            bar(app, frac(used, total), bar_w),
            pct(used, total),
            format_bytes(used),
            format_bytes(total)
        )));
    }
    let fs_used = d.fs_total.saturating_sub(d.fs_free);
    lines.push(Line::from(format!(
        "{}{} {}  {} {}",
        label(t.filesystem),
        bar(app, frac(fs_used, d.fs_total), bar_w),
        pct(fs_used, d.fs_total),
        format_bytes(d.fs_free),
        t.free
    )));
    lines.push(Line::from(""));
    let value_w = (area.width as usize).saturating_sub(2 + lw).max(20);
    for (i, (text, problem)) in health_lines(&d.health, t, value_w).into_iter().enumerate() {
        let l = Line::from(format!(
            "{}{text}",
            label(if i == 0 { t.disks } else { "" })
        ));
        lines.push(if problem {
            l.style(Style::default().add_modifier(Modifier::BOLD))
        } else {
            l
        });
    }
    frame.render_widget(Paragraph::new(lines).block(block(app, t.disk)), area);
}

/// The file system line, then per disk: what it is and how busy, what it reports, and
/// what it does not expose. Lines with a problem are flagged (`!`, shown bold).
fn health_lines(h: &DataDisksHealth, t: &Texts, width: usize) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let fs = h.fs_type.as_deref().unwrap_or("-");
    match &h.device {
        None => out.push((format!("{} ({fs})", t.no_block_device), false)),
        Some(dev) => {
            let errors = h
                .fs_errors
                .map_or(t.not_exposed.to_string(), |n| n.to_string());
            let bad = h.fs_errors.is_some_and(|n| n > 0);
            out.push((
                format!(
                    "{}{fs} {dev}  {} {errors}",
                    if bad { "!" } else { "" },
                    t.fs_errors
                ),
                bad,
            ));
        }
    }
    for d in &h.disks {
        disk_lines(d, t, width, &mut out);
    }
    out
}

fn disk_lines(d: &DiskHealth, t: &Texts, width: usize, out: &mut Vec<(String, bool)>) {
    let problem = d.has_problem();
    let mut missing: Vec<&str> = Vec::new();
    // What it is and how busy.
    let mut first = vec![format!("{}{}", if problem { "!" } else { "" }, d.name)];
    match d.size_bytes {
        Some(b) => first.push(format_bytes(b)),
        None => missing.push(t.size),
    }
    match d.rotational {
        Some(true) => first.push(t.rotational.into()),
        Some(false) => first.push(t.non_rotational.into()),
        None => missing.push(t.rotational),
    }
    match d.read_only {
        Some(true) => first.push(t.read_only.into()),
        Some(false) => first.push(t.read_write.into()),
        None => missing.push(t.ro_flag),
    }
    match d.utilization {
        Some(u) => first.push(format!("{} {:.0}%", t.utilization, u * 100.0)),
        None => missing.push(t.utilization),
    }
    if let Some(q) = d.in_flight {
        first.push(format!("{} {q}", t.queue));
    }
    for l in wrap(&first, "", "  ", "", "  ", width) {
        out.push((l, problem));
    }
    // What it reports about itself.
    let mut second = Vec::new();
    match &d.model {
        Some(m) => second.push(format!("{} {m}", t.model)),
        None => missing.push(t.model),
    }
    match &d.state {
        Some(s) => second.push(format!("{} {s}", t.state)),
        None => missing.push(t.state),
    }
    match d.io_errors {
        Some(n) => second.push(format!("{} {n}", t.io_errors)),
        None => missing.push(t.io_errors),
    }
    match d.io_timeouts {
        Some(n) => second.push(format!("{} {n}", t.io_timeouts)),
        None => missing.push(t.io_timeouts),
    }
    match d.temperature_c {
        Some(c) => second.push(format!("{} {c:.0}C", t.temperature)),
        None => missing.push(t.temperature),
    }
    for l in wrap(&second, "  ", "  ", "", "  ", width) {
        out.push((l, problem));
    }
    // What the NVMe drive says about its wear (its SMART / Health log).
    match &d.nvme {
        Some(n) => nvme_lines(n, t, width, out),
        None => missing.push(t.smart_log),
    }
    // What it does not expose.
    let missing: Vec<String> = missing.into_iter().map(String::from).collect();
    let head = format!("  {}: ", t.not_exposed);
    for l in wrap(&missing, &head, ", ", ",", "    ", width) {
        out.push((l, false));
    }
}

fn nvme_lines(n: &NvmeHealth, t: &Texts, width: usize, out: &mut Vec<(String, bool)>) {
    if n.critical_warning != 0 {
        let words: Vec<String> = (0..8usize)
            .filter(|i| n.critical_warning & (1 << i) != 0)
            .map(|i| match t.critical_bits.get(i) {
                Some(w) => (*w).to_string(),
                None => format!("bit {i}"),
            })
            .collect();
        let head = format!("  !{}: ", t.critical_warning);
        for l in wrap(&words, &head, ", ", ",", "    ", width) {
            out.push((l, true));
        }
    }
    let wear_bad = n.percentage_used >= NVME_WEAR_WARN_PERCENT;
    let spare_bad = n.critical_warning & 1 != 0;
    let mark = |bad: bool| if bad { "!" } else { "" };
    let items = vec![
        format!(
            "{}{} {}%{}",
            mark(wear_bad),
            t.wear,
            n.percentage_used,
            t.wear_used
        ),
        format!(
            "{}{} {}% ({} {}%)",
            mark(spare_bad),
            t.spare,
            n.available_spare,
            t.threshold,
            n.spare_threshold
        ),
        format!(
            "{}{} {}",
            mark(n.media_errors > 0),
            t.media_errors,
            group_digits(n.media_errors.into())
        ),
        format!(
            "{} {}",
            t.unsafe_shutdowns,
            group_digits(n.unsafe_shutdowns.into())
        ),
        format!(
            "{} {}",
            t.written,
            format_decimal_bytes(n.bytes_written.into())
        ),
        format!("{} {}", group_digits(n.power_on_hours.into()), t.hours_on),
    ];
    let bad = n.has_problem();
    for l in wrap(&items, "  ", "  ", "", "  ", width) {
        out.push((l, bad));
    }
}

/// `items` joined by `sep` into lines of at most `width` cells: the first starts with
/// `head`, the others with `indent`; a broken line ends with `trail`. An item wider than a
/// line gets a line of its own (and is cut by the screen).
fn wrap(
    items: &[String],
    head: &str,
    sep: &str,
    trail: &str,
    indent: &str,
    width: usize,
) -> Vec<String> {
    use unicode_width::UnicodeWidthStr as W;
    let mut out = Vec::new();
    let mut line = head.to_string();
    let mut empty = true;
    for item in items {
        let need = if empty {
            W::width(item.as_str())
        } else {
            W::width(sep) + W::width(item.as_str())
        };
        if !empty && W::width(line.as_str()) + need + W::width(trail) > width {
            line.push_str(trail);
            out.push(std::mem::replace(&mut line, indent.to_string()));
            empty = true;
        }
        if !empty {
            line.push_str(sep);
        }
        line.push_str(item);
        empty = false;
    }
    if !empty {
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_between_items_and_counts_wide_characters() {
        let items: Vec<String> = ["size", "model", "state"].map(String::from).into();
        assert_eq!(
            wrap(&items, "- ", ", ", ",", "  ", 80),
            vec!["- size, model, state"]
        );
        assert_eq!(
            wrap(&items, "- ", ", ", ",", "  ", 14),
            vec!["- size, model,", "  state"]
        );
        let ja: Vec<String> = ["容量", "回転型"].map(String::from).into();
        // "容量, 回転型" is 12 cells: it does not fit in 11.
        assert_eq!(wrap(&ja, "", ", ", "", "", 11), vec!["容量", "回転型"]);
        assert!(wrap(&[], "x", ", ", "", "", 10).is_empty());
    }
}
