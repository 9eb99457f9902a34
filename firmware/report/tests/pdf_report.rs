//! The PDF report: written directly, with the Japanese font embedded (subset), every
//! chapter present in both languages; checked with poppler's `pdftotext` and `pdffonts`
//! (Debian poppler-utils), i.e. the text is really there, extractable and in Japanese.

mod common;

use kuroko_model::config::Config;
use kuroko_report::data::StoreSummary;
use kuroko_report::texts::section_titles;
use kuroko_report::{Lang, inputs, pdf};
use std::path::PathBuf;
use std::process::Command;

fn tool(name: &str) -> Command {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs `{name}`: apt-get install poppler-utils (listed in .ci/packages.txt)"
    );
    Command::new(name)
}

#[test]
fn pdf_has_every_chapter_with_embedded_japanese_font() {
    let dir = tempfile::tempdir().unwrap();
    let findings = common::build(dir.path());
    let mut c = Config::default();
    c.site.customer = "株式会社サンプル".into();
    c.site.name = "本社データセンター".into();
    let (data, _) = inputs::gather(
        dir.path(),
        &c,
        StoreSummary {
            disk_used: Some(1 << 30),
            disk_budget: Some(2 << 30),
            ..Default::default()
        },
    )
    .unwrap();
    let font = pdf::find_font(None).expect("install fonts-ipaexfont-gothic");
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-sample");
    std::fs::create_dir_all(&keep).unwrap();
    for (lang, code) in [(Lang::Ja, "ja"), (Lang::En, "en")] {
        let bytes = pdf::render(&data, lang, &font).unwrap();
        assert!(bytes.starts_with(b"%PDF"));
        let path = keep.join(format!("direct-{code}.pdf"));
        std::fs::write(&path, &bytes).unwrap();
        let out = tool("pdftotext")
            .args(["-layout"])
            .arg(&path)
            .arg("-")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pdftotext: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        for t in section_titles(lang) {
            assert!(text.contains(t), "{code}: chapter `{t}` missing");
        }
        assert!(text.contains("株式会社サンプル"), "{code}");
        // Page 2 is the table of contents: every chapter with the page it starts on.
        let pages: Vec<&str> = text.split('\u{c}').collect();
        let toc = pages[1];
        assert!(
            toc.contains(if code == "ja" { "目次" } else { "Contents" }),
            "{toc}"
        );
        for (i, t) in section_titles(lang).iter().enumerate() {
            let line = toc
                .lines()
                .find(|l| l.contains(&format!("{}. {t}", i + 1)))
                .unwrap_or_else(|| panic!("{code}: chapter {t} not in the contents:\n{toc}"));
            let page: usize = line.split_whitespace().last().unwrap().parse().unwrap();
            assert!(
                pages[page - 1].contains(t),
                "{code}: contents say {t} is on page {page}"
            );
        }
        for f in &data.findings {
            assert!(
                text.contains(&f.title(lang)),
                "{code}: finding `{}` missing",
                f.title(lang)
            );
        }
        assert!(text.contains("249"), "{code}: session total missing");
        if lang == Lang::Ja {
            assert!(text.contains("イベント検知ステータス") && text.contains("パスワード入力相違"));
            // The phishing mail's lure passage quoted under it (as in the HTML).
            assert!(text.contains("該当箇所:"), "no quoted lure passage");
        } else {
            assert!(text.contains("Matching passage:"), "no quoted lure passage");
        }
        let pages = tool("pdfinfo").arg(&path).output().unwrap();
        let info = String::from_utf8_lossy(&pages.stdout).into_owned();
        let n: usize = info
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(n >= 7, "{code}: {n} pages");
        let fonts = tool("pdffonts").arg(&path).output().unwrap();
        let fonts = String::from_utf8_lossy(&fonts.stdout).into_owned();
        assert!(
            fonts.contains("IPAexGothic") || fonts.contains("IPAex"),
            "{fonts}"
        );
        assert!(
            fonts.lines().skip(2).all(|l| l.contains(" yes ")),
            "font not embedded: {fonts}"
        );
    }
    assert!(findings.len() >= 5);
}

#[test]
fn missing_font_is_a_clear_error() {
    let e = pdf::find_font(Some(std::path::Path::new("/nonexistent/font.ttf")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("fonts-ipaexfont-gothic"), "{e}");
}

#[test]
fn hostile_and_unprintable_text_never_breaks_the_pdf() {
    // Control characters, glyphs the font lacks, endless words, right-to-left text.
    let nasty = [
        "\u{0}\u{7}\u{1b}[31m\r\n\t",
        "🦀🔥𝕏 \u{202e}txt.exe",
        &"A".repeat(5000),
        &"長".repeat(3000),
        "مرحبا بالعالم",
        "",
    ];
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    let font = pdf::find_font(None).expect("install fonts-ipaexfont-gothic");
    for s in nasty {
        let mut c = Config::default();
        c.site.customer = s.to_string();
        c.site.name = s.to_string();
        let _ = std::fs::remove_file(dir.path().join("site.toml"));
        let (mut data, _) = inputs::gather(dir.path(), &c, StoreSummary::default()).unwrap();
        for f in &mut data.findings {
            f.finding.signals = vec![s.to_string()];
            f.note = Some(s.to_string());
        }
        let bytes = pdf::render(&data, Lang::Ja, &font).unwrap();
        assert!(bytes.starts_with(b"%PDF"));
    }
}

/// Both documents draw one content: every heading, paragraph, key/value row and number
/// of the content is in the HTML (escaped) and in the PDF's text, in both languages.
#[test]
fn html_and_pdf_show_the_same_content() {
    use kuroko_report::content::{self, Block, Cell, Table};
    fn texts(bs: &[Block], out: &mut Vec<String>) {
        let table = |t: &Table, out: &mut Vec<String>| {
            for row in &t.rows {
                for c in row {
                    if let Cell::Number(s) | Cell::Code(s) = c {
                        out.push(s.clone());
                    }
                }
            }
        };
        for b in bs {
            match b {
                Block::Heading(s)
                | Block::Subheading(s)
                | Block::Para(s)
                | Block::Muted(s)
                | Block::Alert(s) => out.push(s.clone()),
                Block::KeyValues(rows) => {
                    for (k, v) in rows {
                        out.push(k.clone());
                        out.push(v.clone());
                    }
                }
                Block::Table(t) => table(t, out),
                Block::Reasoning(items) => {
                    for i in items {
                        texts(&i.blocks, out);
                    }
                }
                Block::Finding(f) => {
                    out.push(f.title.clone());
                    texts(&f.blocks, out);
                }
                Block::Mail(m) => {
                    for t in &m.tables {
                        table(t, out);
                    }
                }
                _ => {}
            }
        }
    }
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    let mut c = Config::default();
    c.site.customer = "株式会社サンプル".into();
    let (data, _) = inputs::gather(dir.path(), &c, StoreSummary::default()).unwrap();
    let font = pdf::find_font(None).expect("install fonts-ipaexfont-gothic");
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-same-content");
    std::fs::create_dir_all(&keep).unwrap();
    for (lang, code) in [(Lang::Ja, "ja"), (Lang::En, "en")] {
        let report = content::build(&data, lang);
        let mut want = Vec::new();
        for ch in &report.chapters {
            want.push(ch.title.to_string());
            texts(&ch.blocks, &mut want);
        }
        assert!(want.len() > 200, "{code}: {} strings", want.len());
        // Every character the report shows has a glyph in the shipped font (a missing one
        // is an empty box in the PDF; "≤" in the grade table once was). The HTML's visible
        // text is the content both renderers draw, table cells included.
        let html = kuroko_report::html::render(&data, lang);
        let missing = pdf::missing_glyphs(&font, &visible_text(&html)).unwrap();
        assert!(missing.is_empty(), "{code}: no glyph for {missing:?}");
        let path = keep.join(format!("{code}.pdf"));
        std::fs::write(&path, pdf::render(&data, lang, &font).unwrap()).unwrap();
        let out = tool("pdftotext").arg(&path).arg("-").output().unwrap();
        let text = squeeze(&String::from_utf8(out.stdout).unwrap());
        for w in &want {
            assert!(
                html.contains(&kuroko_report::escape::esc(w)),
                "{code}: `{w}` not in the HTML"
            );
            assert!(text.contains(&squeeze(w)), "{code}: `{w}` not in the PDF");
        }
    }
}

/// The text between the tags of an HTML page, without its style sheet.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let skip_to = if rest.starts_with("<style") {
            "</style>"
        } else {
            ">"
        };
        match rest.find(skip_to) {
            Some(j) => rest = &rest[j + skip_to.len()..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}
