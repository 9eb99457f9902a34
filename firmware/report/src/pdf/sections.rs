//! Draws the report's content ([`crate::content`]) on A4 pages: the same blocks as the
//! HTML, laid out with the primitives of [`super::layout`].

use super::layout::{
    BAND, BarRow, CONTENT_W, Cell as PdfCell, Col, Doc, INK, LINE, MARGIN_X, MUTED, NAVY,
    TABLE_PAD, TABLE_TEXT, hex_rgb, risk_rgb,
};
use crate::charts::{PALETTE, risk_text_color};
use crate::content::{Bar, Block, Cell, Cover, Figure, MailView, Report, Table};
use kuroko_model::finding::Risk;
use kuroko_model::units::format_bytes;

const ALERT: (u8, u8, u8) = (0xc0, 0x39, 0x2b);

pub fn build(doc: &mut Doc, r: &Report) {
    cover(doc, &r.cover, r.title);
    for c in &r.chapters {
        doc.chapter(c.number, c.title);
        blocks(doc, &c.blocks);
    }
}

fn cover(doc: &mut Doc, c: &Cover, title: &str) {
    doc.y = 150.0;
    doc.text(MARGIN_X, doc.y, 10.0, ALERT, c.confidential);
    doc.y += 30.0;
    doc.para(title, 24.0, NAVY);
    doc.rect(MARGIN_X, doc.y, CONTENT_W, 3.0, NAVY);
    doc.y += 14.0;
    doc.para(c.subtitle, 11.0, MUTED);
    doc.y = 400.0;
    doc.para(&c.addressee, 18.0, INK);
    doc.y = 600.0;
    doc.kv(&c.facts);
}

fn blocks(doc: &mut Doc, bs: &[Block]) {
    for b in bs {
        block(doc, b);
    }
}

fn block(doc: &mut Doc, b: &Block) {
    match b {
        Block::Heading(t) => doc.heading(t),
        Block::Subheading(t) => doc.para(t, 10.0, NAVY),
        Block::Para(t) => doc.para(t, 9.5, INK),
        Block::Muted(t) => doc.para(t, 9.0, MUTED),
        Block::Alert(t) => doc.para(t, 9.0, ALERT),
        Block::Note { label, text } => doc.para(&format!("{label} {text}"), 9.0, NAVY),
        Block::Bullets(items) => doc.bullets(items, 8.5),
        Block::Numbered(items) => {
            for (i, c) in items.iter().enumerate() {
                doc.para_at(
                    MARGIN_X + 8.0,
                    CONTENT_W - 8.0,
                    &format!("{}. {c}", i + 1),
                    9.0,
                    INK,
                );
            }
        }
        Block::KeyValues(rows) => doc.kv(rows),
        Block::Table(t) => table(doc, t),
        Block::Figure(f) => figure(doc, f),
        // One column of page: the figures go one under the other.
        Block::FigureRow(fs) => {
            for f in fs {
                figure(doc, f);
            }
        }
        Block::RiskBox {
            label,
            risk,
            vulnerability,
            threat,
        } => risk_box(doc, label, *risk, *vulnerability, *threat),
        Block::Reasoning(items) => {
            for i in items {
                doc.para(
                    &format!("No.{} {} — {} → {}", i.no, i.title, i.levels, i.risk),
                    9.0,
                    INK,
                );
                blocks(doc, &i.blocks);
            }
        }
        Block::Finding(f) => {
            doc.need(120.0);
            doc.heading_badge(&format!("6.{}", f.no), f.risk, &f.title);
            blocks(doc, &f.blocks);
        }
        Block::Mail(m) => mail(doc, m),
    }
}

fn grade_cell(r: Risk, text: String) -> PdfCell {
    PdfCell {
        text,
        fill: Some(risk_rgb(r)),
        color: hex_rgb(risk_text_color(r)),
    }
}

fn cell(c: &Cell) -> PdfCell {
    match c {
        Cell::Text(s) | Cell::Number(s) | Cell::Code(s) | Cell::Address(s) => {
            PdfCell::from(s.as_str())
        }
        Cell::Link { text, .. } => PdfCell::from(text.as_str()),
        Cell::Grade(r) => grade_cell(*r, r.to_string()),
        Cell::Score {
            risk,
            vulnerability: v,
            threat: t,
        } => grade_cell(*risk, format!("{risk} ({v} × {t} = {})", v * t)),
        Cell::Bullets(items) => PdfCell::from(
            items
                .iter()
                .map(|c| format!("• {c}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Cell::Group { text, .. } => PdfCell {
            text: text.clone(),
            fill: Some(BAND),
            color: NAVY,
        },
        Cell::Covered => PdfCell {
            text: String::new(),
            fill: Some(BAND),
            color: NAVY,
        },
        Cell::Total { text, .. } => PdfCell {
            text: text.clone(),
            fill: None,
            color: NAVY,
        },
    }
}

/// Column shares from the content's percentages (columns without one split the rest),
/// widened where a header word, a number or a code would otherwise break in the middle.
fn table(doc: &mut Doc, t: &Table) {
    let given: f32 = t
        .columns
        .iter()
        .filter_map(|c| c.width)
        .map(f32::from)
        .sum();
    let open = t.columns.iter().filter(|c| c.width.is_none()).count();
    let rest = if open > 0 {
        ((100.0 - given) / open as f32).max(5.0)
    } else {
        0.0
    };
    let mut cols: Vec<Col> = t
        .columns
        .iter()
        .map(|c| Col {
            share: c.width.map(f32::from).unwrap_or(rest),
            right: c.numeric,
        })
        .collect();
    // In points: widen the columns that need it, narrow the others to make room.
    let total: f32 = cols.iter().map(|c| c.share).sum::<f32>().max(1.0);
    let mut need = vec![0.0_f32; cols.len()];
    for (i, n) in need.iter_mut().enumerate() {
        let unbreakable =
            t.columns[i]
                .title
                .split(' ')
                .map(str::to_string)
                .chain(t.rows.iter().filter_map(|r| match r.get(i) {
                    Some(Cell::Number(s) | Cell::Code(s)) => Some(s.clone()),
                    _ => None,
                }));
        *n = unbreakable
            .map(|s| doc.m.width(&s, TABLE_TEXT) + 2.0 * TABLE_PAD + 1.0)
            .fold(0.0, f32::max)
            .min(CONTENT_W / 4.0);
    }
    let pts: Vec<f32> = cols.iter().map(|c| c.share / total * CONTENT_W).collect();
    let extra: f32 = pts.iter().zip(&need).map(|(p, n)| (n - p).max(0.0)).sum();
    let spare: f32 = pts
        .iter()
        .zip(&need)
        .filter(|(p, n)| p > n)
        .map(|(p, n)| p - n)
        .sum();
    if extra > 0.0 && spare > extra {
        for ((col, p), n) in cols.iter_mut().zip(&pts).zip(&need) {
            col.share = if p < n {
                *n
            } else {
                p - (p - n) * extra / spare
            };
        }
    }
    let header: Vec<&str> = t.columns.iter().map(|c| c.title.as_str()).collect();
    doc.table(&cols, &header, rows(t));
}

/// The table's rows as PDF cells. A page has no row spans: a cell under a
/// [`Cell::Group`] repeats the group's text (the Telnet row of §4.1 shows its 区分 too,
/// also when the group starts on the page before).
fn rows(t: &Table) -> Vec<Vec<PdfCell>> {
    let mut group: Vec<Option<String>> = vec![None; t.columns.len()];
    t.rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| {
                    if let Some(g) = group.get_mut(i) {
                        match c {
                            Cell::Group { text, .. } => *g = Some(text.clone()),
                            Cell::Covered => {
                                let mut pc = cell(c);
                                pc.text = g.clone().unwrap_or_default();
                                return pc;
                            }
                            _ => *g = None,
                        }
                    }
                    cell(c)
                })
                .collect()
        })
        .collect()
}

fn figure(doc: &mut Doc, f: &Figure) {
    match f {
        Figure::GradeCards(cards) => grade_cards(doc, cards),
        Figure::GradeHistogram { title, counts } => {
            let rows: Vec<BarRow> = counts
                .iter()
                .map(|(r, n)| (r.to_string(), *n as u64, n.to_string(), risk_rgb(*r)))
                .collect();
            doc.hbars(title, &rows);
        }
        Figure::RiskMatrix {
            vulnerability,
            threat,
            counts,
        } => risk_matrix(doc, vulnerability, threat, counts),
        Figure::StackedBars {
            title,
            series,
            bars,
        } => stacked_bars(doc, title, series, bars),
        Figure::HBars { title, bars } => {
            let rows: Vec<BarRow> = bars
                .iter()
                .map(|b: &Bar| (b.label.clone(), b.value, b.shown.clone(), hex_rgb(b.color)))
                .collect();
            doc.hbars(title, &rows);
        }
    }
}

fn grade_cards(doc: &mut Doc, cards: &[(Risk, usize, &str)]) {
    let n = cards.len().max(1) as f32;
    let w = (CONTENT_W - (n - 1.0) * 8.0) / n;
    doc.need(70.0);
    for (i, (r, count, meaning)) in cards.iter().enumerate() {
        let x = MARGIN_X + i as f32 * (w + 8.0);
        doc.rect(x, doc.y, w, 5.0, risk_rgb(*r));
        doc.frame(x, doc.y, w, 60.0, LINE);
        doc.text(x + 8.0, doc.y + 28.0, 18.0, risk_rgb(*r), r.as_str());
        let ns = count.to_string();
        let nw = doc.m.width(&ns, 18.0);
        doc.text(x + w - 8.0 - nw, doc.y + 28.0, 18.0, INK, &ns);
        // Two lines at most: the longest meaning is wider than a card.
        for (l, line) in doc
            .m
            .wrap(meaning, 7.5, w - 12.0)
            .iter()
            .take(2)
            .enumerate()
        {
            doc.text(x + 8.0, doc.y + 44.0 + l as f32 * 9.0, 7.5, MUTED, line);
        }
    }
    doc.y += 72.0;
}

/// Findings per vulnerability (rows, 3 at the top) × threat (columns) level.
fn risk_matrix(doc: &mut Doc, vl: &str, tl: &str, m: &[[usize; 3]; 3]) {
    let cell = 40.0;
    doc.need(cell * 3.0 + 60.0);
    let x0 = MARGIN_X + 90.0;
    doc.text(MARGIN_X, doc.y + 10.0, 9.5, NAVY, &format!("{vl} × {tl}"));
    doc.y += 18.0;
    for (row, v) in (1..=3u8).rev().enumerate() {
        let label = format!("{vl} {v}");
        let lw = doc.m.width(&label, 9.0);
        doc.text(
            x0 - 8.0 - lw,
            doc.y + row as f32 * cell + 24.0,
            9.0,
            INK,
            &label,
        );
        for t in 1..=3u8 {
            let r = Risk::from_levels(v, t);
            let x = x0 + (t - 1) as f32 * cell;
            let y = doc.y + row as f32 * cell;
            doc.rect(x, y, cell - 2.0, cell - 2.0, risk_rgb(r));
            let n = m[(v - 1) as usize][(t - 1) as usize];
            let tc = hex_rgb(risk_text_color(r));
            doc.text(x + 5.0, y + 14.0, 9.0, tc, r.as_str());
            if n > 0 {
                let ns = n.to_string();
                doc.text(
                    x + cell / 2.0 - doc.m.width(&ns, 13.0) / 2.0,
                    y + 30.0,
                    13.0,
                    tc,
                    &ns,
                );
            }
        }
    }
    let below = doc.y + cell * 3.0 + 12.0;
    for t in 1..=3u8 {
        let s = t.to_string();
        let x = x0 + (t - 1) as f32 * cell + cell / 2.0 - 1.0 - doc.m.width(&s, 9.0) / 2.0;
        doc.text(x, below, 9.0, INK, &s);
    }
    let axis = format!("{tl} →");
    let aw = doc.m.width(&axis, 9.0);
    doc.text(x0 + cell * 1.5 - aw / 2.0, below + 14.0, 9.0, INK, &axis);
    doc.y += cell * 3.0 + 36.0;
}

/// Stacked columns drawn with rectangles, the legend on the right.
fn stacked_bars(doc: &mut Doc, title: &str, series: &[String], bars: &[crate::charts::StackedBar]) {
    let ch = 150.0;
    doc.need(ch + 80.0);
    doc.text(MARGIN_X, doc.y + 10.0, 9.5, NAVY, title);
    doc.y += 18.0;
    let max = crate::charts::stacked_max(bars);
    let plot_w = CONTENT_W - 110.0;
    let slot = plot_w / bars.len().max(1) as f32;
    let top = doc.y;
    doc.text(MARGIN_X, top + 8.0, 7.5, MUTED, &format_bytes(max));
    for (i, b) in bars.iter().enumerate() {
        let mut y = top + ch;
        for (j, v) in b.values.iter().enumerate() {
            let h = ch * *v as f32 / max as f32;
            y -= h;
            doc.rect(
                MARGIN_X + 40.0 + slot * i as f32 + slot * 0.1,
                y,
                (slot * 0.8).max(0.5),
                h,
                hex_rgb(PALETTE[j % PALETTE.len()]),
            );
        }
    }
    doc.rect(MARGIN_X + 40.0, top + ch, plot_w - 40.0, 0.8, MUTED);
    if let (Some(a), Some(b)) = (bars.first(), bars.last()) {
        doc.text(MARGIN_X + 40.0, top + ch + 12.0, 7.5, MUTED, &a.label);
        let w = doc.m.width(&b.label, 7.5);
        doc.text(MARGIN_X + plot_w - w, top + ch + 12.0, 7.5, MUTED, &b.label);
    }
    for (j, s) in series.iter().enumerate() {
        let y = top + j as f32 * 14.0;
        doc.rect(
            MARGIN_X + plot_w + 10.0,
            y,
            9.0,
            9.0,
            hex_rgb(PALETTE[j % PALETTE.len()]),
        );
        doc.text(MARGIN_X + plot_w + 24.0, y + 8.0, 8.0, INK, s);
    }
    doc.y = top + ch + 24.0;
}

fn risk_box(doc: &mut Doc, label: &str, r: Risk, v: u8, t: u8) {
    doc.need(30.0);
    doc.frame(MARGIN_X, doc.y, CONTENT_W, 24.0, risk_rgb(r));
    doc.rect(MARGIN_X, doc.y, 24.0, 24.0, risk_rgb(r));
    doc.text(
        MARGIN_X + 7.0,
        doc.y + 17.0,
        13.0,
        hex_rgb(risk_text_color(r)),
        r.as_str(),
    );
    doc.text(
        MARGIN_X + 34.0,
        doc.y + 16.0,
        11.0,
        INK,
        &format!("{label}: {r} ({v} × {t} = {})", v * t),
    );
    doc.y += 32.0;
}

/// The mail's headers and text in a grey box, as plain text; then its tables.
fn mail(doc: &mut Doc, m: &MailView) {
    let mut lines: Vec<String> = m
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    if let Some(t) = &m.text {
        lines.push(String::new());
        lines.push(t.clone());
    }
    let text = lines.join("\n");
    let wrapped = doc.m.wrap(&text, 8.0, CONTENT_W - 16.0);
    let h = wrapped.len() as f32 * 11.5 + 10.0;
    if h < 600.0 {
        doc.need(h);
        doc.rect(MARGIN_X, doc.y, CONTENT_W, h, (0xf8, 0xf9, 0xfa));
    }
    doc.space(4.0);
    doc.para_at(MARGIN_X + 8.0, CONTENT_W - 16.0, &text, 8.0, INK);
    doc.space(6.0);
    if let Some(t) = m.truncated {
        doc.para(t, 9.0, MUTED);
    }
    for t in &m.tables {
        table(doc, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Column, TableStyle};

    #[test]
    fn a_row_under_a_category_group_shows_the_category_too() {
        // §4.1: FTP and Telnet are one category; the HTML spans the cell over both rows,
        // the PDF has no spans and showed the Telnet row's 区分 empty.
        let t = Table {
            style: TableStyle::Threats,
            fixed: true,
            columns: vec![
                Column::num("No.", Some(4)),
                Column::new("区分", Some(13)),
                Column::new("検出内容", Some(17)),
            ],
            rows: vec![
                vec![
                    Cell::Number("1".into()),
                    Cell::Group {
                        text: "平文通信".into(),
                        rows: 2,
                    },
                    Cell::Text("FTP".into()),
                ],
                vec![
                    Cell::Number("2".into()),
                    Cell::Covered,
                    Cell::Text("Telnet".into()),
                ],
                vec![
                    Cell::Number("3".into()),
                    Cell::Group {
                        text: "不正通信".into(),
                        rows: 1,
                    },
                    Cell::Text("C2".into()),
                ],
            ],
        };
        let cells: Vec<String> = rows(&t).iter().map(|r| r[1].text.clone()).collect();
        assert_eq!(cells, ["平文通信", "平文通信", "不正通信"]);
    }
}
