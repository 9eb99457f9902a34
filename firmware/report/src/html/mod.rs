//! The self-contained HTML report.
//!
//! One file: inline CSS (`style.css`, compiled in), inline SVG charts, no scripts, no
//! external references of any kind, Japanese fonts by CSS font stack only. The print
//! stylesheet lays it out on A4 with a page break before every chapter, so "print to PDF"
//! from any browser gives the same document.
//!
//! Safety: text from findings, sessions, mails and file names is only ever inserted through
//! [`esc`]; mails are shown as escaped text, links as text and href side by side (never an
//! `<a>`), reconstructed files as a description. A `Content-Security-Policy` meta tag
//! forbids scripts and remote loads in case escaping were ever wrong.

mod sections;

use crate::content;
use crate::data::ReportData;
use crate::escape::esc;
use crate::texts::tr;
use kuroko_model::finding::Lang;

const STYLE: &str = include_str!("style.css");

/// Renders the whole report.
pub fn render(data: &ReportData, lang: Lang) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let report = content::build(data, lang);
    let title = report.title;
    out.push_str("<!DOCTYPE html>\n");
    out.push_str(&format!(
        "<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"Kuroko\">\
         <title>{} — {}</title><style>{}</style></head><body><main>\n",
        match lang {
            Lang::Ja => "ja",
            Lang::En => "en",
        },
        esc(title),
        esc(&data.customer_or_site(lang)),
        STYLE
    ));
    sections::cover(&mut out, &report.cover, title);
    toc(&mut out, &report.chapters, lang);
    for c in &report.chapters {
        sections::chapter(&mut out, c);
    }
    out.push_str("</main></body></html>\n");
    out
}

/// One figure as the report draws it (inline SVG; grade cards as HTML), for pages that
/// show the report's content elsewhere (the web console's 統計).
pub fn figure(f: &content::Figure) -> String {
    let mut out = String::new();
    sections::figure(&mut out, f);
    out
}

fn toc(out: &mut String, chapters: &[content::Chapter], lang: Lang) {
    out.push_str(&format!(
        "<section class=\"toc\"><h2>{}</h2><ol>",
        tr(lang, "目次", "Contents")
    ));
    for c in chapters {
        out.push_str(&format!(
            "<li><a href=\"#{}\">{}</a></li>",
            c.id,
            esc(c.title)
        ));
    }
    out.push_str("</ol></section>\n");
}

impl ReportData {
    /// The customer's name for titles, else the site's, else a neutral word.
    pub fn customer_or_site(&self, lang: Lang) -> String {
        if !self.customer.trim().is_empty() {
            self.customer.clone()
        } else if !self.site_name.trim().is_empty() {
            self.site_name.clone()
        } else {
            tr(lang, "(お客様名未設定)", "(customer not set)").to_string()
        }
    }
}
