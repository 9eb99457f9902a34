//! Charts as inline SVG, generated here so the report fetches nothing.
//!
//! Plain SVG 1.1 shapes and text only (no scripts, no external references, no fonts other
//! than the page's stack), sized with a `viewBox` so they scale on screen and in print.
//! Every label goes through [`esc`].

use crate::escape::esc;
use kuroko_model::finding::Risk;
use kuroko_model::units::format_bytes;
use std::fmt::Write;

/// Series colours (protocols), chosen to stay distinct in greyscale print too.
pub const PALETTE: [&str; 9] = [
    "#1f4e79", "#2e86c1", "#48c9b0", "#f4d03f", "#e67e22", "#c0392b", "#8e44ad", "#7f8c8d",
    "#b3b6b7",
];

/// The colour of a grade (A red … E grey-green), shared by HTML and PDF.
pub fn risk_color(r: Risk) -> &'static str {
    match r {
        Risk::A => "#c0392b",
        Risk::B => "#e67e22",
        Risk::C => "#f1c40f",
        Risk::D => "#5d9cec",
        Risk::E => "#95a5a6",
    }
}

/// Text colour that reads on `risk_color`.
pub fn risk_text_color(r: Risk) -> &'static str {
    match r {
        Risk::C => "#333333",
        _ => "#ffffff",
    }
}

/// One bar of a stacked chart: its label and one value per series.
pub struct StackedBar {
    pub label: String,
    pub values: Vec<u64>,
}

/// The tallest stack, at least 1 (the scale of a stacked chart).
pub fn stacked_max(bars: &[StackedBar]) -> u64 {
    bars.iter()
        .map(|b| b.values.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1)
}

/// A stacked bar chart (traffic by protocol over time). `series` names the stack layers.
pub fn stacked_bars(bars: &[StackedBar], series: &[String], title: &str) -> String {
    let (w, h) = (760.0_f64, 300.0_f64);
    let (left, right, top, bottom) = (70.0, 150.0, 30.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let max = stacked_max(bars);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart" role="img" aria-label="{t}"><text x="{left}" y="18" class="ct">{t}</text>"#,
        t = esc(title)
    );
    for i in 0..=4 {
        let y = top + ph - ph * i as f64 / 4.0;
        let v = max as f64 * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#d5d8dc" stroke-width="0.6"/><text x="{tx:.1}" y="{ty:.1}" class="ax" text-anchor="end">{lab}</text>"##,
            x2 = left + pw,
            tx = left - 6.0,
            ty = y + 3.5,
            lab = esc(&format_bytes(v as u64))
        );
    }
    let n = bars.len().max(1) as f64;
    let slot = pw / n;
    let bw = (slot * 0.75).max(1.0);
    let label_every = (bars.len() / 12).max(1);
    for (i, b) in bars.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bw) / 2.0;
        let mut y = top + ph;
        for (j, v) in b.values.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let bh = ph * *v as f64 / max as f64;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}" fill="{c}"><title>{l}: {sname} {val}</title></rect>"#,
                c = PALETTE[j % PALETTE.len()],
                l = esc(&b.label),
                sname = esc(series.get(j).map(String::as_str).unwrap_or("")),
                val = esc(&format_bytes(*v))
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                s,
                r#"<text x="{cx:.1}" y="{ly:.1}" class="ax" text-anchor="end" transform="rotate(-35 {cx:.1} {ly:.1})">{l}</text>"#,
                cx = x + bw / 2.0,
                ly = top + ph + 14.0,
                l = esc(&b.label)
            );
        }
    }
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#566573" stroke-width="1"/>"##,
        y = top + ph,
        x2 = left + pw
    );
    for (j, name) in series.iter().enumerate() {
        let y = top + 4.0 + j as f64 * 18.0;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{y}" width="11" height="11" fill="{c}"/><text x="{tx}" y="{ty}" class="lg">{n}</text>"#,
            x = w - right + 16.0,
            c = PALETTE[j % PALETTE.len()],
            tx = w - right + 32.0,
            ty = y + 9.5,
            n = esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars with a value label (directions, file transfers, disk).
pub fn hbars(rows: &[(String, u64, String, &str)], title: &str) -> String {
    let row_h = 26.0;
    let (w, left, right) = (760.0_f64, 190.0, 120.0);
    let h = 34.0 + row_h * rows.len().max(1) as f64;
    let pw = w - left - right;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart" role="img" aria-label="{t}"><text x="0" y="18" class="ct">{t}</text>"#,
        t = esc(title)
    );
    for (i, (label, v, shown, color)) in rows.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let bw = (pw * *v as f64 / max as f64).max(if *v > 0 { 1.5 } else { 0.0 });
        let _ = write!(
            s,
            r##"<text x="{lx}" y="{ty:.1}" class="lg" text-anchor="end">{l}</text><rect x="{left}" y="{y:.1}" width="{pw:.1}" height="16" fill="#f2f4f4"/><rect x="{left}" y="{y:.1}" width="{bw:.1}" height="16" fill="{c}"/><text x="{vx:.1}" y="{ty:.1}" class="lg">{val}</text>"##,
            lx = left - 8.0,
            ty = y + 12.5,
            l = esc(label),
            c = esc(color),
            vx = left + pw + 8.0,
            val = esc(shown)
        );
    }
    s.push_str("</svg>");
    s
}

/// Findings per grade as a column chart.
pub fn grade_histogram(counts: &[(Risk, usize); 5], title: &str) -> String {
    let (w, h) = (360.0_f64, 220.0_f64);
    let (left, top, bottom) = (30.0, 30.0, 30.0);
    let ph = h - top - bottom;
    let max = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart small" role="img" aria-label="{t}"><text x="0" y="18" class="ct">{t}</text>"#,
        t = esc(title)
    );
    let slot = (w - left - 10.0) / 5.0;
    for (i, (r, n)) in counts.iter().enumerate() {
        let bh = ph * *n as f64 / max as f64;
        let x = left + slot * i as f64 + slot * 0.15;
        let y = top + ph - bh;
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}" fill="{c}"/><text x="{cx:.1}" y="{ny:.1}" class="lg" text-anchor="middle">{n}</text><text x="{cx:.1}" y="{gy:.1}" class="gl" text-anchor="middle">{r}</text>"#,
            bw = slot * 0.7,
            c = risk_color(*r),
            cx = x + slot * 0.35,
            ny = y - 4.0,
            gy = top + ph + 18.0,
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#566573"/></svg>"##,
        y = top + ph,
        x2 = w - 10.0
    );
    s
}

/// The vulnerability × threat matrix: rows vulnerability 3→1, columns threat 1→3, each
/// cell coloured by its grade and showing how many findings sit there.
pub fn risk_matrix(m: &[[usize; 3]; 3], vulnerability: &str, threat: &str) -> String {
    let cell = 62.0_f64;
    let (left, top) = (86.0_f64, 34.0_f64);
    let w = left + cell * 3.0 + 10.0;
    let h = top + cell * 3.0 + 44.0;
    let (vl, tl) = (esc(vulnerability), esc(threat));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart small" role="img" aria-label="{vl} × {tl}"><text x="{tx}" y="18" class="ct" text-anchor="middle">{vl} × {tl}</text>"#,
        tx = w / 2.0
    );
    for (row, v) in (1..=3u8).rev().enumerate() {
        for t in 1..=3u8 {
            let r = Risk::from_levels(v, t);
            let x = left + cell * (t - 1) as f64;
            let y = top + cell * row as f64;
            let n = m[(v - 1) as usize][(t - 1) as usize];
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{c}" stroke="#ffffff" stroke-width="2" opacity="{op}"/><text x="{cx}" y="{gy}" class="gl" text-anchor="middle" fill="{tc}">{r}</text><text x="{cx}" y="{ny}" class="lg" text-anchor="middle" fill="{tc}">{count}</text>"##,
                c = risk_color(r),
                op = if n > 0 { "1" } else { "0.35" },
                cx = x + cell / 2.0,
                gy = y + cell / 2.0 - 2.0,
                ny = y + cell / 2.0 + 16.0,
                tc = risk_text_color(r),
                count = if n > 0 { format!("{n}") } else { String::new() },
            );
        }
        let _ = write!(
            s,
            r#"<text x="{x}" y="{y}" class="lg" text-anchor="end">{v}</text>"#,
            x = left - 8.0,
            y = top + cell * row as f64 + cell / 2.0 + 4.0
        );
    }
    for t in 1..=3 {
        let _ = write!(
            s,
            r#"<text x="{x}" y="{y}" class="lg" text-anchor="middle">{t}</text>"#,
            x = left + cell * (t - 1) as f64 + cell / 2.0,
            y = top + cell * 3.0 + 16.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{x}" y="{y}" class="ax" text-anchor="middle">{tl} →</text><text x="12" y="{vy}" class="ax" text-anchor="middle" transform="rotate(-90 12 {vy})">{vl} →</text></svg>"#,
        x = left + cell * 1.5,
        y = top + cell * 3.0 + 36.0,
        vy = top + cell * 1.5
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_draw_one_rect_per_value() {
        let bars = vec![
            StackedBar {
                label: "<b>10:00".into(),
                values: vec![5, 0, 7],
            },
            StackedBar {
                label: "11:00".into(),
                values: vec![1, 1, 1],
            },
        ];
        let series = vec![
            "http".to_string(),
            "<script>".to_string(),
            "dns".to_string(),
        ];
        let svg = stacked_bars(&bars, &series, "t&t");
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("t&amp;t"));
        // 5 non-zero values + 3 legend swatches.
        assert_eq!(svg.matches("<rect").count(), 8);

        let m = [[1, 0, 0], [0, 2, 0], [0, 0, 3]];
        let svg = risk_matrix(&m, "脆弱性レベル", "脅威レベル");
        assert_eq!(svg.matches("<rect").count(), 9);
        assert!(svg.contains(">3</text>") && svg.contains("脆弱性レベル"));
    }
}
