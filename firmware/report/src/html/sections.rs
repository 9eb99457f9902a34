//! Draws the report's content ([`crate::content`]) as HTML.
//!
//! Every string of the content passes through [`esc`] here, at the one place it is
//! written; markup comes only from the literals below.

use crate::charts;
use crate::content::{Block, Cell, Chapter, Column, Cover, Figure, MailView, Table, TableStyle};
use crate::escape::esc;
use kuroko_model::finding::Risk;
use std::fmt::Write;

fn badge(r: Risk) -> String {
    format!(
        "<span class=\"badge\" style=\"background:{};color:{}\">{}</span>",
        charts::risk_color(r),
        charts::risk_text_color(r),
        r
    )
}

pub fn cover(out: &mut String, c: &Cover, title: &str) {
    let _ = write!(
        out,
        "<section class=\"cover\"><div><div class=\"conf\">{}</div><div class=\"title\">{}</div><div class=\"sub\">{}</div>\
         <div class=\"customer\">{}</div></div><div>",
        esc(c.confidential),
        esc(title),
        esc(c.subtitle),
        esc(&c.addressee),
    );
    key_values(out, &c.facts);
    out.push_str("</div></section>\n");
}

pub fn chapter(out: &mut String, c: &Chapter) {
    let _ = writeln!(
        out,
        "<section class=\"chapter\" id=\"{}\"><h2><span class=\"num\">{}</span>{}</h2>",
        c.id,
        c.number,
        esc(c.title)
    );
    blocks(out, &c.blocks);
    out.push_str("</section>\n");
}

fn blocks(out: &mut String, bs: &[Block]) {
    for b in bs {
        block(out, b);
    }
}

fn block(out: &mut String, b: &Block) {
    match b {
        Block::Heading(t) => {
            let _ = write!(out, "<h3>{}</h3>", esc(t));
        }
        Block::Subheading(t) => {
            let _ = write!(out, "<h4>{}</h4>", esc(t));
        }
        Block::Para(t) => {
            let _ = write!(out, "<p>{}</p>", esc(t));
        }
        Block::Muted(t) => {
            let _ = write!(out, "<p class=\"muted\">{}</p>", esc(t));
        }
        Block::Alert(t) => {
            let _ = write!(out, "<div class=\"override\">{}</div>", esc(t));
        }
        Block::Note { label, text } => {
            let _ = write!(
                out,
                "<div class=\"note\"><b>{}</b> {}</div>",
                esc(label),
                esc(text)
            );
        }
        Block::Bullets(items) => list(out, "<ul class=\"cm\">", "</ul>", items),
        Block::Numbered(items) => list(out, "<ol>", "</ol>\n", items),
        Block::KeyValues(rows) => key_values(out, rows),
        Block::Table(t) => table(out, t),
        Block::Figure(f) => figure(out, f),
        Block::FigureRow(fs) => {
            out.push_str("<div class=\"charts\">");
            for f in fs {
                figure(out, f);
            }
            out.push_str("</div>\n");
        }
        Block::RiskBox {
            label,
            risk,
            vulnerability: v,
            threat: t,
        } => {
            let _ = write!(
                out,
                "<div class=\"riskbox\" style=\"border-color:{}\">{}: {} ({v} × {t} = {})</div>",
                charts::risk_color(*risk),
                esc(label),
                badge(*risk),
                v * t
            );
        }
        Block::Reasoning(items) => {
            out.push_str("<ul>");
            for i in items {
                let _ = write!(
                    out,
                    "<li><b>No.{} {}</b> — {} → {}",
                    i.no,
                    esc(&i.title),
                    esc(&i.levels),
                    badge(i.risk)
                );
                blocks(out, &i.blocks);
                out.push_str("</li>");
            }
            out.push_str("</ul>");
        }
        Block::Finding(f) => {
            let _ = write!(
                out,
                "<div class=\"finding\" id=\"f-{no}\"><h3>6.{no} {} {}</h3>",
                badge(f.risk),
                esc(&f.title),
                no = f.no
            );
            blocks(out, &f.blocks);
            out.push_str("</div>\n");
        }
        Block::Mail(m) => mail(out, m),
    }
}

fn list(out: &mut String, open: &str, close: &str, items: &[String]) {
    out.push_str(open);
    for i in items {
        let _ = write!(out, "<li>{}</li>", esc(i));
    }
    out.push_str(close);
}

fn key_values(out: &mut String, rows: &[(String, String)]) {
    out.push_str("<table class=\"kv\">");
    for (k, v) in rows {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    out.push_str("</table>\n");
}

fn table(out: &mut String, t: &Table) {
    out.push_str(match t.style {
        TableStyle::Plain => "<table>",
        TableStyle::Threats => "<table class=\"threats\">",
        TableStyle::Evidence => "<table class=\"ev\">",
    });
    out.push_str("<tr>");
    for c in &t.columns {
        out.push_str("<th");
        if c.numeric {
            out.push_str(" class=\"num\"");
        }
        if let (true, Some(w)) = (t.fixed, c.width) {
            let _ = write!(out, " style=\"width:{w}%\"");
        }
        let _ = write!(out, ">{}</th>", esc(&c.title));
    }
    out.push_str("</tr>");
    for row in &t.rows {
        out.push_str("<tr>");
        for (c, col) in row.iter().zip(&t.columns) {
            cell(out, c, col);
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
}

fn cell(out: &mut String, c: &Cell, col: &Column) {
    let _ = match c {
        Cell::Text(s) => write!(out, "<td>{}</td>", esc(s)),
        Cell::Number(s) => write!(out, "<td class=\"num\">{}</td>", esc(s)),
        Cell::Grade(r) if col.numeric => write!(out, "<td class=\"num\">{}</td>", badge(*r)),
        Cell::Grade(r) => write!(out, "<td>{}</td>", badge(*r)),
        Cell::Score {
            risk,
            vulnerability: v,
            threat: t,
        } => write!(
            out,
            "<td class=\"nw\">{} ({v} × {t} = {})</td>",
            badge(*risk),
            v * t
        ),
        Cell::Code(s) => write!(out, "<td class=\"mono\">{}</td>", esc(s)),
        Cell::Address(s) => write!(out, "<td class=\"addr\">{}</td>", esc(s)),
        Cell::Link { no, text } => write!(out, "<td><a href=\"#f-{no}\">{}</a></td>", esc(text)),
        Cell::Bullets(items) => {
            out.push_str("<td>");
            list(out, "<ul class=\"cm\">", "</ul>", items);
            out.push_str("</td>");
            Ok(())
        }
        Cell::Group { text, rows } => write!(
            out,
            "<td class=\"cat\" rowspan=\"{rows}\">{}</td>",
            esc(text)
        ),
        Cell::Covered => Ok(()),
        Cell::Total { text, numeric, id } => {
            out.push_str(if *numeric { "<td class=\"num\"" } else { "<td" });
            if let Some(id) = id {
                let _ = write!(out, " id=\"{id}\"");
            }
            write!(out, "><b>{}</b></td>", esc(text))
        }
    };
}

pub(super) fn figure(out: &mut String, f: &Figure) {
    match f {
        Figure::GradeCards(cards) => {
            out.push_str("<div class=\"cards\">");
            for (r, n, meaning) in cards {
                let _ = write!(
                    out,
                    "<div class=\"card grade-{r}\" style=\"border-top-color:{c}\"><div class=\"g\" style=\"color:{c}\">{r}</div><div class=\"n\" data-grade=\"{r}\">{n}</div><div class=\"m\">{m}</div></div>",
                    c = charts::risk_color(*r),
                    m = esc(meaning)
                );
            }
            out.push_str("</div>");
        }
        Figure::GradeHistogram { title, counts } => {
            out.push_str(&charts::grade_histogram(counts, title));
        }
        Figure::RiskMatrix {
            vulnerability,
            threat,
            counts,
        } => out.push_str(&charts::risk_matrix(counts, vulnerability, threat)),
        Figure::StackedBars {
            title,
            series,
            bars,
        } => out.push_str(&charts::stacked_bars(bars, series, title)),
        Figure::HBars { title, bars } => {
            let rows: Vec<(String, u64, String, &str)> = bars
                .iter()
                .map(|b| (b.label.clone(), b.value, b.shown.clone(), b.color))
                .collect();
            out.push_str(&charts::hbars(&rows, title));
        }
    }
}

/// Headers and text as escaped text, links as text beside their href: nothing of the
/// mail is ever live.
fn mail(out: &mut String, m: &MailView) {
    out.push_str("<div class=\"mail\"><div class=\"hdr\">");
    for (i, (name, value)) in m.headers.iter().enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        let _ = write!(out, "<b>{name}:</b> {}", esc(value));
    }
    out.push_str("</div>");
    if let Some(t) = &m.text {
        let _ = write!(out, "<pre>{}</pre>", esc(t));
    }
    if let Some(t) = m.truncated {
        let _ = write!(out, "<p class=\"muted\">{}</p>", esc(t));
    }
    for t in &m.tables {
        table(out, t);
    }
    out.push_str("</div>");
}
