//! A small flowing layout engine for A4 pages: wrapped paragraphs, tables with repeated
//! headers, bars and boxes, producing a display list that [`emit`] hands to krilla.

use crate::charts::risk_color;
use crate::data::ReportData;
use crate::error::ReportError;
use crate::texts::tr;
use kuroko_model::finding::Lang;
use std::path::Path;
use std::sync::Arc;

pub const PAGE_W: f32 = 595.28;
pub const PAGE_H: f32 = 841.89;
pub const MARGIN_X: f32 = 48.0;
pub const MARGIN_TOP: f32 = 50.0;
pub const MARGIN_BOTTOM: f32 = 56.0;
pub const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN_X;
/// Table text size and cell padding, in points.
pub const TABLE_TEXT: f32 = 8.5;
pub const TABLE_PAD: f32 = 4.0;
/// The smallest text a table cell shrinks to so that an address or hash fits its column.
pub const MIN_CELL_TEXT: f32 = 6.0;

/// An RGB colour.
pub type Rgb = (u8, u8, u8);
/// A horizontal bar: label, value, text shown beside it, colour.
pub type BarRow = (String, u64, String, Rgb);

pub const NAVY: (u8, u8, u8) = (0x1f, 0x3a, 0x5f);
pub const INK: (u8, u8, u8) = (0x22, 0x22, 0x22);
pub const MUTED: (u8, u8, u8) = (0x5f, 0x6b, 0x76);
pub const LINE: (u8, u8, u8) = (0xc9, 0xd1, 0xd9);
pub const BAND: (u8, u8, u8) = (0xee, 0xf2, 0xf6);
pub const WHITE: (u8, u8, u8) = (0xff, 0xff, 0xff);

pub fn hex_rgb(h: &str) -> (u8, u8, u8) {
    let h = h.trim_start_matches('#');
    let p = |i: usize| u8::from_str_radix(h.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    (p(0), p(2), p(4))
}

pub fn risk_rgb(r: kuroko_model::Risk) -> (u8, u8, u8) {
    hex_rgb(risk_color(r))
}

/// Glyph advances of the embedded font, for line breaking.
pub struct Metrics {
    data: Vec<u8>,
    upem: f32,
    /// Advance per char in em, filled on first use (parsing the face per call is slow).
    advances: std::cell::RefCell<std::collections::HashMap<char, f32>>,
}

impl Metrics {
    pub fn new(data: &[u8]) -> Option<Metrics> {
        let face = rustybuzz::ttf_parser::Face::parse(data, 0).ok()?;
        Some(Metrics {
            upem: face.units_per_em() as f32,
            data: data.to_vec(),
            advances: Default::default(),
        })
    }
    fn face(&self) -> Option<rustybuzz::ttf_parser::Face<'_>> {
        rustybuzz::ttf_parser::Face::parse(&self.data, 0).ok()
    }
    pub fn has_glyph(&self, c: char) -> bool {
        self.face().and_then(|f| f.glyph_index(c)).is_some()
    }
    /// Width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let mut cache = self.advances.borrow_mut();
        let mut face = None;
        let mut em = 0.0;
        for c in text.chars() {
            em += *cache.entry(c).or_insert_with(|| {
                let f = face.get_or_insert_with(|| self.face());
                f.as_ref()
                    .and_then(|f| f.glyph_index(c).and_then(|g| f.glyph_hor_advance(g)))
                    .map(|a| a as f32 / self.upem)
                    .unwrap_or(1.0)
            });
        }
        em * size
    }
    /// Breaks `text` into lines no wider than `w`, at explicit newlines, at spaces and
    /// between CJK characters. A run of other characters (an address, a hash, a URL, an
    /// English word) is never split, unless it alone is wider than a line: then it breaks
    /// after the last `/`, then `.`, then another separator that fits, and only without
    /// any of those between characters.
    pub fn wrap(&self, text: &str, size: f32, w: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            for atom in atoms(para) {
                if atom == " " {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    continue;
                }
                if self.fits(&format!("{line}{atom}"), size, w) {
                    line.push_str(atom);
                    continue;
                }
                if !line.trim_end().is_empty() {
                    lines.push(line.trim_end().to_string());
                }
                line.clear();
                if self.fits(atom, size, w) {
                    line.push_str(atom);
                    continue;
                }
                // A token wider than a whole line is cut at its separators.
                let mut rest: &str = atom;
                loop {
                    let (head, tail) = self.split_token(rest, size, w);
                    if tail.is_empty() {
                        line.push_str(head);
                        break;
                    }
                    lines.push(head.trim_end().to_string());
                    rest = tail;
                }
            }
            lines.push(line.trim_end().to_string());
        }
        lines
    }

    /// The size for a table cell and its lines: `size`, or smaller (not below
    /// `MIN_CELL_TEXT`) until its widest token fits the column, so a narrow column shows
    /// `198.51.100.25` whole rather than cut into `198.51.100.2` / `5`.
    pub fn wrap_cell(&self, text: &str, size: f32, w: f32) -> (f32, Vec<String>) {
        let mut s = size;
        let widest = |s: f32| {
            text.split('\n')
                .flat_map(atoms)
                .map(|a| self.width(a.trim_end_matches([',', ';', ')']), s))
                .fold(0.0f32, f32::max)
        };
        while s > MIN_CELL_TEXT && widest(s) > w {
            s = (s - 0.5).max(MIN_CELL_TEXT);
        }
        (s, self.wrap(text, s, w))
    }

    /// Whether `s` fits in `w`; a comma, semicolon or closing bracket at its end may hang
    /// past the edge (so `2001:db8::1,` is not cut before its comma).
    fn fits(&self, s: &str, size: f32, w: f32) -> bool {
        self.width(s, size) <= w
            || s.strip_suffix([',', ';', ')', '、', '。'])
                .is_some_and(|t| self.width(t, size) <= w)
    }

    /// The longest head of `token` that fits in `room`, cut after a separator when it can
    /// be (`/` first, then `.`, then `-_?&=:,;`); never empty.
    fn split_token<'a>(&self, token: &'a str, size: f32, room: f32) -> (&'a str, &'a str) {
        if self.width(token, size) <= room {
            return (token, "");
        }
        let mut fit = 0; // byte length of the longest fitting head
        for (i, c) in token.char_indices() {
            let end = i + c.len_utf8();
            if self.width(&token[..end], size) > room {
                break;
            }
            fit = end;
        }
        if fit == 0 {
            // Not even one character fits: one per line.
            let n = token
                .chars()
                .next()
                .map(char::len_utf8)
                .unwrap_or(token.len());
            return token.split_at(n);
        }
        let head = &token[..fit];
        // An address with its label (`10.10.2.80 (内部)`) breaks before the label first.
        if let Some(pos) = head.rfind(" (")
            && pos > 0
        {
            return token.split_at(pos + 1);
        }
        for seps in ["/", ".", "-_?&=:,;"] {
            if let Some(pos) = head.rfind(|c: char| seps.contains(c))
                && pos + 1 < token.len()
                && pos > 0
            {
                return token.split_at(pos + 1);
            }
        }
        token.split_at(fit)
    }
}

/// A paragraph as what a line may not split: a space, one CJK character, or a run of
/// other characters (a token: address, hash, URL, word). A short label in brackets stays
/// with the token before it, space and all: `10.10.2.80 (内部)` is one atom, never
/// `10.10.2.80 (` / `内部)`.
fn atoms(para: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    // Bytes before this index belong to the token being read (a bracketed label).
    let mut inside = 0;
    for (i, c) in para.char_indices() {
        if i < inside {
            continue;
        }
        let label_at = match c {
            ' ' if start.is_some() => Some(i + 1),
            '(' => Some(i),
            _ => None,
        };
        if let Some(end) = label_at.and_then(|at| label_end(para, at)) {
            start.get_or_insert(i);
            inside = end;
            continue;
        }
        let alone = c == ' ' || is_cjk(c);
        if alone {
            if let Some(s) = start.take() {
                out.push(&para[s..i]);
            }
            out.push(&para[i..i + c.len_utf8()]);
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&para[s..]);
    }
    out
}

/// Longest bracketed label kept with the token before it, in characters.
const MAX_LABEL: usize = 16;

/// When `para[at..]` starts a short bracketed label (`(内部)`, `(VPN プール)`): the byte
/// index just after its `)`.
fn label_end(para: &str, at: usize) -> Option<usize> {
    let rest = para.get(at..)?.strip_prefix('(')?;
    for (k, (j, c)) in rest.char_indices().enumerate() {
        match c {
            ')' if k > 0 => return Some(at + 1 + j + 1),
            '(' | ')' | '\n' => return None,
            _ if k >= MAX_LABEL => return None,
            _ => {}
        }
    }
    None
}

/// Characters a Japanese line may break before or after (ideographs, kana, full-width
/// forms and punctuation).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF
        | 0x20000..=0x3FFFF)
}

/// One drawing operation; y grows downward from the top of the page.
#[derive(Clone, Debug)]
pub enum Op {
    /// `y` is the baseline.
    Text {
        x: f32,
        y: f32,
        size: f32,
        color: (u8, u8, u8),
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: (u8, u8, u8),
    },
    /// Outline of a rectangle.
    Frame {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: (u8, u8, u8),
    },
}

/// A table column: width share and whether it is right-aligned (numbers).
#[derive(Clone, Copy)]
pub struct Col {
    pub share: f32,
    pub right: bool,
}

/// A table cell: plain text, optionally with a grade badge colour.
#[derive(Clone)]
pub struct Cell {
    pub text: String,
    pub fill: Option<(u8, u8, u8)>,
    pub color: (u8, u8, u8),
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell {
            text,
            fill: None,
            color: INK,
        }
    }
}
impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell {
            text: text.to_string(),
            fill: None,
            color: INK,
        }
    }
}

pub struct Doc {
    pub m: Metrics,
    pages: Vec<Vec<Op>>,
    pub y: f32,
    /// Chapters (level 0) and headings (level 1) with the page they start on, for the
    /// table of contents.
    toc: Vec<(u8, String, usize)>,
}

/// Table-of-contents lines that fit one page; past it only chapters are listed.
const TOC_MAX_LINES: usize = 44;

impl Doc {
    pub fn new(m: Metrics) -> Doc {
        Doc {
            m,
            pages: vec![Vec::new()],
            y: MARGIN_TOP,
            toc: Vec::new(),
        }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let n = self.pages.len() - 1;
        &mut self.pages[n]
    }

    pub fn new_page(&mut self) {
        if self.pages.last().is_some_and(|p| p.is_empty()) {
            self.y = MARGIN_TOP;
            return;
        }
        self.pages.push(Vec::new());
        self.y = MARGIN_TOP;
    }

    /// Starts a new page unless `h` more points fit on this one.
    pub fn need(&mut self, h: f32) {
        if self.y + h > PAGE_H - MARGIN_BOTTOM {
            self.new_page();
        }
    }

    pub fn text(&mut self, x: f32, y: f32, size: f32, color: (u8, u8, u8), text: &str) {
        if text.is_empty() {
            return;
        }
        self.ops().push(Op::Text {
            x,
            y,
            size,
            color,
            text: text.to_string(),
        });
    }

    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: (u8, u8, u8)) {
        if w > 0.0 && h > 0.0 {
            self.ops().push(Op::Rect { x, y, w, h, color });
        }
    }

    pub fn frame(&mut self, x: f32, y: f32, w: f32, h: f32, color: (u8, u8, u8)) {
        self.ops().push(Op::Frame { x, y, w, h, color });
    }

    pub fn space(&mut self, h: f32) {
        self.y += h;
    }

    /// A chapter title on a fresh page: a numbered navy band.
    pub fn chapter(&mut self, no: usize, title: &str) {
        self.new_page();
        let page = self.pages.len() - 1;
        self.toc.push((0, format!("{no}. {title}"), page));
        self.rect(MARGIN_X, self.y, 30.0, 26.0, NAVY);
        self.text(MARGIN_X + 9.0, self.y + 19.0, 16.0, WHITE, &no.to_string());
        self.text(MARGIN_X + 40.0, self.y + 19.0, 16.0, NAVY, title);
        self.rect(MARGIN_X, self.y + 30.0, CONTENT_W, 2.0, NAVY);
        self.y += 44.0;
    }

    pub fn heading(&mut self, title: &str) {
        self.need(60.0);
        self.space(6.0);
        let page = self.pages.len() - 1;
        self.toc.push((1, title.to_string(), page));
        self.rect(MARGIN_X, self.y, 4.0, 16.0, NAVY);
        let lines = self.m.wrap(title, 12.0, CONTENT_W - 12.0);
        for l in lines {
            self.text(MARGIN_X + 10.0, self.y + 13.0, 12.0, NAVY, &l);
            self.y += 17.0;
        }
        self.y += 5.0;
    }

    /// A heading with a coloured grade badge before the title.
    pub fn heading_badge(&mut self, number: &str, risk: kuroko_model::Risk, title: &str) {
        self.need(60.0);
        self.space(6.0);
        self.rect(MARGIN_X, self.y, 4.0, 16.0, NAVY);
        self.text(MARGIN_X + 10.0, self.y + 13.0, 12.0, NAVY, number);
        let x = MARGIN_X + 14.0 + self.m.width(number, 12.0);
        self.rect(x, self.y + 1.0, 16.0, 15.0, risk_rgb(risk));
        let tc = hex_rgb(crate::charts::risk_text_color(risk));
        self.text(x + 4.0, self.y + 13.0, 11.0, tc, risk.as_str());
        let tx = x + 22.0;
        let lines = self.m.wrap(title, 12.0, MARGIN_X + CONTENT_W - tx);
        for l in lines {
            self.text(tx, self.y + 13.0, 12.0, NAVY, &l);
            self.y += 17.0;
        }
        self.y += 5.0;
    }

    pub fn para(&mut self, text: &str, size: f32, color: (u8, u8, u8)) {
        self.para_at(MARGIN_X, CONTENT_W, text, size, color);
    }

    pub fn para_at(&mut self, x: f32, w: f32, text: &str, size: f32, color: (u8, u8, u8)) {
        let lh = size * 1.55;
        for l in self.m.wrap(text, size, w) {
            self.need(lh);
            self.text(x, self.y + size, size, color, &l);
            self.y += lh;
        }
        self.y += 3.0;
    }

    pub fn bullets(&mut self, items: &[String], size: f32) {
        for i in items {
            self.need(size * 1.6);
            self.text(MARGIN_X + 6.0, self.y + size, size, NAVY, "•");
            self.para_at(MARGIN_X + 18.0, CONTENT_W - 18.0, i, size, INK);
            self.y -= 2.0;
        }
        self.y += 4.0;
    }

    /// A table with a navy header repeated on every page it spans.
    pub fn table(&mut self, cols: &[Col], header: &[&str], rows: Vec<Vec<Cell>>) {
        let size = TABLE_TEXT;
        let lh = size * 1.45;
        let pad = TABLE_PAD;
        let total: f32 = cols.iter().map(|c| c.share).sum::<f32>().max(0.0001);
        let widths: Vec<f32> = cols.iter().map(|c| CONTENT_W * c.share / total).collect();
        let draw_header = |d: &mut Doc| {
            let lines: Vec<Vec<String>> = header
                .iter()
                .zip(&widths)
                .map(|(h, w)| d.m.wrap(h, size, w - 2.0 * pad))
                .collect();
            let n = lines.iter().map(Vec::len).max().unwrap_or(1) as f32;
            let h = n * lh + 2.0 * pad;
            d.need(h + lh * 2.0);
            let mut x = MARGIN_X;
            d.rect(MARGIN_X, d.y, CONTENT_W, h, NAVY);
            for (ls, w) in lines.iter().zip(&widths) {
                for (i, l) in ls.iter().enumerate() {
                    d.text(x + pad, d.y + pad + size + i as f32 * lh, size, WHITE, l);
                }
                x += w;
            }
            d.y += h;
        };
        let has_header = header.iter().any(|h| !h.is_empty());
        if has_header {
            draw_header(self);
        }
        for row in rows {
            let fitted: Vec<(f32, Vec<String>)> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| self.m.wrap_cell(&c.text, size, w - 2.0 * pad))
                .collect();
            let n = fitted.iter().map(|(_, l)| l.len()).max().unwrap_or(1) as f32;
            let h = n * lh + 2.0 * pad;
            if self.y + h > PAGE_H - MARGIN_BOTTOM {
                self.new_page();
                if has_header {
                    draw_header(self);
                }
            }
            let mut x = MARGIN_X;
            for ((cell, (cs, ls)), (w, col)) in row.iter().zip(&fitted).zip(widths.iter().zip(cols))
            {
                if let Some(fill) = cell.fill {
                    self.rect(x, self.y, *w, h, fill);
                }
                self.frame(x, self.y, *w, h, LINE);
                for (i, l) in ls.iter().enumerate() {
                    let tx = if col.right {
                        x + w - pad - self.m.width(l, *cs)
                    } else {
                        x + pad
                    };
                    self.text(tx, self.y + pad + size + i as f32 * lh, *cs, cell.color, l);
                }
                x += w;
            }
            self.y += h;
        }
        self.y += 8.0;
    }

    /// Key-value rows.
    pub fn kv(&mut self, rows: &[(String, String)]) {
        let cells = rows
            .iter()
            .map(|(k, v)| {
                vec![
                    Cell {
                        text: k.clone(),
                        fill: Some(BAND),
                        color: NAVY,
                    },
                    Cell::from(v.clone()),
                ]
            })
            .collect();
        let cols = [0.32, 0.68].map(|share| Col {
            share,
            right: false,
        });
        self.table(&cols, &["", ""], cells);
    }

    /// Horizontal bars: label, value, shown text, colour.
    pub fn hbars(&mut self, title: &str, rows: &[BarRow]) {
        let row_h = 16.0;
        self.need(24.0 + row_h * rows.len() as f32);
        self.text(MARGIN_X, self.y + 10.0, 9.5, NAVY, title);
        self.y += 18.0;
        let label_w = 130.0;
        let value_w = 110.0;
        let bar_w = CONTENT_W - label_w - value_w;
        let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
        for (label, v, shown, color) in rows {
            let lw = self.m.width(label, 8.5);
            self.text(MARGIN_X + label_w - 6.0 - lw, self.y + 9.5, 8.5, INK, label);
            self.rect(MARGIN_X + label_w, self.y + 1.0, bar_w, 11.0, BAND);
            let w = bar_w * *v as f32 / max as f32;
            self.rect(
                MARGIN_X + label_w,
                self.y + 1.0,
                if *v > 0 { w.max(1.0) } else { 0.0 },
                11.0,
                *color,
            );
            self.text(
                MARGIN_X + label_w + bar_w + 6.0,
                self.y + 9.5,
                8.5,
                INK,
                shown,
            );
            self.y += row_h;
        }
        self.y += 8.0;
    }

    /// Adds page numbers and the confidentiality mark, returns the display list.
    /// The table of contents, drawn as the page after the cover: chapters and their
    /// sections with the page each starts on (counting the contents page itself).
    fn toc_page(&self, lang: Lang) -> Vec<Op> {
        let mut ops = Vec::new();
        let title = tr(lang, "目次", "Contents");
        ops.push(Op::Text {
            x: MARGIN_X,
            y: MARGIN_TOP + 19.0,
            size: 16.0,
            color: NAVY,
            text: title.to_string(),
        });
        ops.push(Op::Rect {
            x: MARGIN_X,
            y: MARGIN_TOP + 30.0,
            w: CONTENT_W,
            h: 2.0,
            color: NAVY,
        });
        let entries: Vec<&(u8, String, usize)> = if self.toc.len() <= TOC_MAX_LINES {
            self.toc.iter().collect()
        } else {
            self.toc.iter().filter(|e| e.0 == 0).collect()
        };
        let mut y = MARGIN_TOP + 56.0;
        for (level, text, page) in entries {
            // Pages after the cover move down by one for the contents page.
            let shown = if *page >= 1 { page + 2 } else { page + 1 };
            let (size, indent, color, gap) = if *level == 0 {
                (11.0, 0.0, NAVY, 19.0)
            } else {
                (9.0, 18.0, (0x33, 0x33, 0x33), 14.0)
            };
            if *level == 0 {
                y += 4.0;
            }
            let num = shown.to_string();
            let nw = self.m.width(&num, size);
            let room = CONTENT_W - indent - nw - 12.0;
            let line = self
                .m
                .wrap(text, size, room)
                .into_iter()
                .next()
                .unwrap_or_default();
            ops.push(Op::Text {
                x: MARGIN_X + indent,
                y,
                size,
                color,
                text: line,
            });
            ops.push(Op::Text {
                x: MARGIN_X + CONTENT_W - nw,
                y,
                size,
                color,
                text: num,
            });
            y += gap;
        }
        ops
    }

    pub fn finish(mut self, data: &ReportData, lang: Lang) -> Vec<Vec<Op>> {
        if self.pages.last().is_some_and(|p| p.is_empty()) && self.pages.len() > 1 {
            self.pages.pop();
        }
        if !self.toc.is_empty() && self.pages.len() > 1 {
            let toc = self.toc_page(lang);
            self.pages.insert(1, toc);
        }
        let n = self.pages.len();
        let who = data.customer_or_site(lang);
        let conf = tr(lang, "社外秘 / Confidential", "Confidential");
        for (i, page) in self.pages.iter_mut().enumerate().skip(1) {
            let num = format!("{} / {}", i + 1, n);
            let y = PAGE_H - 30.0;
            page.push(Op::Rect {
                x: MARGIN_X,
                y: y - 12.0,
                w: CONTENT_W,
                h: 0.6,
                color: LINE,
            });
            page.push(Op::Text {
                x: MARGIN_X,
                y,
                size: 7.5,
                color: MUTED,
                text: crate::escape::clip(&who, 60),
            });
            page.push(Op::Text {
                x: PAGE_W / 2.0 - self.m.width(&num, 7.5) / 2.0,
                y,
                size: 7.5,
                color: MUTED,
                text: num,
            });
            let cw = self.m.width(conf, 7.5);
            page.push(Op::Text {
                x: PAGE_W - MARGIN_X - cw,
                y,
                size: 7.5,
                color: (0xc0, 0x39, 0x2b),
                text: conf.to_string(),
            });
        }
        self.pages
    }
}

fn paint(c: (u8, u8, u8)) -> krilla::paint::Fill {
    krilla::paint::Fill {
        paint: krilla::color::rgb::Color::new(c.0, c.1, c.2).into(),
        ..Default::default()
    }
}

/// Writes the display list with krilla, embedding (a subset of) the font.
pub fn emit(
    pages: &[Vec<Op>],
    font_bytes: Vec<u8>,
    font_path: &Path,
) -> Result<Vec<u8>, ReportError> {
    use krilla::geom::{PathBuilder, Point, Rect};
    use krilla::text::{Font, TextDirection};
    let font =
        Font::new(Arc::new(font_bytes).into(), 0).ok_or_else(|| ReportError::FontUnusable {
            path: font_path.to_path_buf(),
            message: "krilla cannot read it".into(),
        })?;
    let mut doc = krilla::Document::new();
    for ops in pages {
        let settings = krilla::page::PageSettings::from_wh(PAGE_W, PAGE_H)
            .ok_or_else(|| ReportError::Pdf("bad page size".into()))?;
        let mut page = doc.start_page_with(settings);
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    color,
                    text,
                } => {
                    surface.set_fill(Some(paint(*color)));
                    surface.set_stroke(None);
                    surface.draw_text(
                        Point::from_xy(*x, *y),
                        font.clone(),
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Op::Rect { x, y, w, h, color } => {
                    let Some(r) = Rect::from_xywh(*x, *y, *w, *h) else {
                        continue;
                    };
                    let mut pb = PathBuilder::new();
                    pb.push_rect(r);
                    if let Some(p) = pb.finish() {
                        surface.set_fill(Some(paint(*color)));
                        surface.set_stroke(None);
                        surface.draw_path(&p);
                    }
                }
                Op::Frame { x, y, w, h, color } => {
                    let Some(r) = Rect::from_xywh(*x, *y, *w, *h) else {
                        continue;
                    };
                    let mut pb = PathBuilder::new();
                    pb.push_rect(r);
                    if let Some(p) = pb.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(krilla::paint::Stroke {
                            paint: krilla::color::rgb::Color::new(color.0, color.1, color.2).into(),
                            width: 0.6,
                            ..Default::default()
                        }));
                        surface.draw_path(&p);
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| ReportError::Pdf(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        let font = crate::pdf::find_font(None).expect("install fonts-ipaexfont-gothic");
        Metrics::new(&std::fs::read(font).unwrap()).unwrap()
    }

    #[test]
    fn addresses_hashes_and_urls_are_never_split_when_they_fit() {
        let m = metrics();
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let tokens = [
            "198.51.100.25",
            "203.0.113.250",
            "2001:db8::8a2e:370:7334",
            "http://resona-secure.example/login.php",
            sha,
            // An address and its label (§4.1 broke `10.10.2.80 (` / `内部)`).
            "10.10.2.80 (内部)",
            "10.8.0.5 (VPN プール)",
        ];
        // Tokens right after Japanese text (no space before them), and in a list.
        let text = format!(
            "宛先{}、送信元{}から{}へ。接続先 (2): {}, {} 添付ファイル{sha}を確認。送信元 {} 宛先 {}",
            tokens[0], tokens[1], tokens[2], tokens[3], tokens[0], tokens[5], tokens[6]
        );
        // Every width from narrow to wide: no line holds part of a token that fits.
        for w in (60..400).step_by(7) {
            let w = w as f32;
            let lines = m.wrap(&text, 9.0, w);
            for l in &lines {
                let body = l.trim_end_matches([',', ';', ')', '、', '。']);
                assert!(m.width(body, 9.0) <= w, "{w}: {l}");
            }
            for t in tokens {
                if m.width(t, 9.0) <= w {
                    assert!(
                        lines.iter().any(|l| l.contains(t)),
                        "width {w}: `{t}` split across lines {lines:#?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_narrow_table_cell_shrinks_its_text_before_cutting_an_address() {
        let m = metrics();
        let cell = "198.51.100.25 (外部)";
        let w = m.width("198.51.100.2", TABLE_TEXT);
        let (size, lines) = m.wrap_cell(cell, TABLE_TEXT, w);
        assert!(size < TABLE_TEXT);
        assert_eq!(lines[0], "198.51.100.25", "{lines:?}");
        assert!(lines.iter().all(|l| m.width(l, size) <= w), "{lines:?}");
        // Where it fits, nothing changes.
        let (size, lines) = m.wrap_cell(cell, TABLE_TEXT, 200.0);
        assert_eq!((size, lines), (TABLE_TEXT, vec![cell.to_string()]));
    }

    #[test]
    fn a_token_wider_than_the_line_breaks_after_a_slash_or_dot() {
        let m = metrics();
        let url = "https://resona-secure.example/login/verify/account.php";
        let w = m.width("https://resona-secure.example/logi", 9.0);
        let lines = m.wrap(url, 9.0, w);
        assert!(lines.len() > 1, "{lines:?}");
        assert_eq!(lines.concat(), url, "nothing lost or added");
        for l in &lines[..lines.len() - 1] {
            assert!(l.ends_with('/') || l.ends_with('.'), "{lines:?}");
            assert!(m.width(l, 9.0) <= w);
        }
        // Japanese text still breaks between characters; explicit newlines are kept.
        let ja = m.wrap("検知の根拠となった通信の特徴\n二行目", 9.0, 40.0);
        assert!(
            ja.len() > 2 && ja.iter().all(|l| m.width(l, 9.0) <= 40.0),
            "{ja:?}"
        );
        assert_eq!(m.wrap("", 9.0, 40.0), vec![String::new()]);
    }
}
