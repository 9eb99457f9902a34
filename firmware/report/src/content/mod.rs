//! What the report says, decided once for both renderers.
//!
//! [`build`] turns a [`ReportData`] and a language into a [`Report`]: chapters of blocks
//! (headings, paragraphs, key/value lists, tables of typed cells, figures with their chart
//! data, mails). The HTML and the PDF renderer only draw these blocks, so chapter order,
//! wording and every number come from one place and the two documents cannot drift apart.
//!
//! Everything here is plain, unescaped text: escaping is the HTML renderer's job and is
//! done where it writes each string, so no block can carry markup from the traffic.

mod assessment;
mod certificates;
mod coverage;
mod details;
mod environment;
mod inventory;
mod overview;
mod parts;
mod scenarios;
mod summary;
mod talkers;
mod threats;

use crate::charts::StackedBar;
use crate::data::ReportData;
use crate::texts::{SECTION_IDS, section_titles, tr};
use kuroko_model::finding::{Lang, Risk};

/// The whole document: the cover, then the chapters in the service's outline order.
pub struct Report {
    pub title: &'static str,
    pub cover: Cover,
    pub chapters: Vec<Chapter>,
}

pub struct Cover {
    pub confidential: &'static str,
    pub subtitle: &'static str,
    /// Customer (or site) as addressed on the cover, with the Japanese honorific.
    pub addressee: String,
    pub facts: Vec<(String, String)>,
}

pub struct Chapter {
    /// 1-based chapter number.
    pub number: usize,
    /// Anchor for the table of contents.
    pub id: &'static str,
    pub title: &'static str,
    pub blocks: Vec<Block>,
}

pub enum Block {
    /// A numbered section heading ("2.1 …").
    Heading(String),
    /// A minor heading inside a section.
    Subheading(String),
    Para(String),
    /// Secondary text: explanations, counts of what was left out.
    Muted(String),
    /// Text that must catch the eye: a consultant's change of levels.
    Alert(String),
    /// The analyst's comment with its label.
    Note {
        label: &'static str,
        text: String,
    },
    Bullets(Vec<String>),
    Numbered(Vec<String>),
    KeyValues(Vec<(String, String)>),
    Table(Table),
    Figure(Figure),
    /// Figures shown side by side where the page allows it.
    FigureRow(Vec<Figure>),
    /// A scenario's grade, framed.
    RiskBox {
        label: &'static str,
        risk: Risk,
        vulnerability: u8,
        threat: u8,
    },
    /// Why a scenario got its grade: one entry per finding.
    Reasoning(Vec<ReasonItem>),
    Finding(FindingView),
    Mail(MailView),
}

/// One finding's detail, referable by its number.
pub struct FindingView {
    pub no: usize,
    pub risk: Risk,
    pub title: String,
    pub blocks: Vec<Block>,
}

pub struct ReasonItem {
    pub no: usize,
    pub title: String,
    /// "vulnerability 3 / threat 2" with the words in the report's language.
    pub levels: String,
    pub risk: Risk,
    pub blocks: Vec<Block>,
}

/// A reconstructed mail, shown as inert text.
pub struct MailView {
    /// Header name (never translated: these are the mail's own fields) and value.
    pub headers: Vec<(&'static str, String)>,
    pub text: Option<String>,
    /// Said below the text when it was cut.
    pub truncated: Option<&'static str>,
    /// Links (shown text beside the real href) and attachments.
    pub tables: Vec<Table>,
}

pub struct Table {
    pub style: TableStyle,
    /// Whether the column widths are part of the design (else a hint for fixed layouts).
    pub fixed: bool,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TableStyle {
    Plain,
    /// The detected-threats list, grouped by category.
    Threats,
    /// Evidence sessions.
    Evidence,
}

pub struct Column {
    pub title: String,
    pub numeric: bool,
    /// Share of the table width in percent.
    pub width: Option<u8>,
}

impl Column {
    pub fn new(title: &str, width: Option<u8>) -> Column {
        Column {
            title: title.to_string(),
            numeric: false,
            width,
        }
    }
    pub fn num(title: &str, width: Option<u8>) -> Column {
        Column {
            numeric: true,
            ..Column::new(title, width)
        }
    }
}

pub enum Cell {
    Text(String),
    Number(String),
    Grade(Risk),
    /// A grade with its vulnerability × threat product.
    Score {
        risk: Risk,
        vulnerability: u8,
        threat: u8,
    },
    /// Addresses, hashes, hrefs: monospace.
    Code(String),
    /// An endpoint as labelled in the report.
    Address(String),
    /// A reference to finding `no`'s detail.
    Link {
        no: usize,
        text: String,
    },
    Bullets(Vec<String>),
    /// A label spanning this and the next `rows - 1` rows.
    Group {
        text: String,
        rows: usize,
    },
    /// Under a [`Cell::Group`].
    Covered,
    /// A bold total, optionally with an anchor for tests and links.
    Total {
        text: String,
        numeric: bool,
        id: Option<&'static str>,
    },
}

pub enum Figure {
    /// One card per grade: count and what the grade means.
    GradeCards(Vec<(Risk, usize, &'static str)>),
    GradeHistogram {
        title: &'static str,
        counts: [(Risk, usize); 5],
    },
    /// Findings per vulnerability (row, 1..=3) × threat (column, 1..=3).
    RiskMatrix {
        vulnerability: &'static str,
        threat: &'static str,
        counts: [[usize; 3]; 3],
    },
    StackedBars {
        title: String,
        series: Vec<String>,
        bars: Vec<StackedBar>,
    },
    HBars {
        title: &'static str,
        bars: Vec<Bar>,
    },
}

/// A horizontal bar: label, value, the text shown beside it, colour (`#rrggbb`).
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub shown: String,
    pub color: &'static str,
}

/// The report's content in `lang`.
pub fn build(d: &ReportData, lang: Lang) -> Report {
    let titles = section_titles(lang);
    let builders: [fn(&ReportData, Lang) -> Vec<Block>; 6] = [
        overview::overview,
        summary::summary,
        environment::environment,
        threats::threats,
        scenarios::scenarios,
        details::details,
    ];
    Report {
        title: report_title(lang),
        cover: overview::cover(d, lang),
        chapters: builders
            .iter()
            .enumerate()
            .map(|(i, b)| Chapter {
                number: i + 1,
                id: SECTION_IDS[i],
                title: titles[i],
                blocks: b(d, lang),
            })
            .collect(),
    }
}

pub fn report_title(lang: Lang) -> &'static str {
    tr(
        lang,
        "フルパケットセキュリティ診断 報告書",
        "Full-packet security diagnosis report",
    )
}
