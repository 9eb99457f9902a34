//! The PDF report, written directly with krilla and an embedded, subset Japanese font.
//!
//! Layout is done here as a display list (text runs, rectangles, lines per page) so that
//! page breaking is plain arithmetic and the krilla calls are all in one place. The font
//! comes from a Debian package installed on the appliance (`fonts-ipaexfont-gothic`),
//! found at run time; without it the command fails with a message naming the package.
//! The PDF draws the same content as the HTML ([`crate::content`]), with a simpler layout:
//! tables, bar charts and the risk matrix drawn with PDF primitives.

mod layout;
mod sections;

use crate::data::ReportData;
use crate::error::ReportError;
use kuroko_model::finding::Lang;
use std::path::{Path, PathBuf};

/// Fonts tried in order when none is given: IPAex Gothic (fonts-ipaexfont-gothic), IPA
/// Gothic (fonts-ipafont-gothic), Noto Sans CJK (fonts-noto-cjk), Takao (fonts-takao-gothic).
pub const FONT_CANDIDATES: [&str; 5] = [
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/truetype/takao-gothic/TakaoPGothic.ttf",
];

/// The font file to embed: `explicit` if given, else the first candidate present.
pub fn find_font(explicit: Option<&Path>) -> Result<PathBuf, ReportError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(ReportError::FontMissing {
                tried: p.display().to_string(),
            })
        };
    }
    FONT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| ReportError::FontMissing {
            tried: FONT_CANDIDATES.join(", "),
        })
}

/// The font file's bytes and its glyph metrics.
fn load_font(font_path: &Path) -> Result<(Vec<u8>, layout::Metrics), ReportError> {
    let bytes = std::fs::read(font_path).map_err(|source| ReportError::Read {
        path: font_path.to_path_buf(),
        source,
    })?;
    let metrics = layout::Metrics::new(&bytes).ok_or_else(|| ReportError::FontUnusable {
        path: font_path.to_path_buf(),
        message: "not a TrueType/OpenType font".into(),
    })?;
    Ok((bytes, metrics))
}

/// The characters of `text` that the font at `font_path` has no glyph for (each once, in
/// order of appearance; white space and control characters are not drawn and not listed).
/// The PDF shows such a character as an empty box, so the report's own texts must avoid
/// them (`pdf_report` tests check every static text against the shipped font).
pub fn missing_glyphs(font_path: &Path, text: &str) -> Result<Vec<char>, ReportError> {
    let (_, metrics) = load_font(font_path)?;
    let mut missing: Vec<char> = Vec::new();
    for c in text.chars() {
        if !c.is_whitespace() && !c.is_control() && !missing.contains(&c) && !metrics.has_glyph(c) {
            missing.push(c);
        }
    }
    Ok(missing)
}

/// Renders the report as PDF bytes with the font at `font_path`.
pub fn render(data: &ReportData, lang: Lang, font_path: &Path) -> Result<Vec<u8>, ReportError> {
    let (bytes, metrics) = load_font(font_path)?;
    if !metrics.has_glyph('診') {
        return Err(ReportError::FontUnusable {
            path: font_path.to_path_buf(),
            message: "it has no Japanese glyphs; use IPAex Gothic (fonts-ipaexfont-gothic)".into(),
        });
    }
    let mut doc = layout::Doc::new(metrics);
    sections::build(&mut doc, &crate::content::build(data, lang));
    let pages = doc.finish(data, lang);
    layout::emit(&pages, bytes, font_path)
}
