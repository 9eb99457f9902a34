//! The HTML report rendered by headless Chromium (Debian's `chromium`): to PNG and to PDF
//! (A4 print), with nothing on the browser console (no script errors, no blocked loads).
//! The rendered files stay in `CARGO_TARGET_TMPDIR/report-sample/` for a person to look at.

mod common;

use kuroko_model::config::Config;
use kuroko_report::data::StoreSummary;
use kuroko_report::{Lang, html, inputs};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    for p in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "headless Chromium is needed for this test: apt-get install chromium (listed in .ci/packages.txt)"
    );
}

fn run_chromium(extra: &[String], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1240,1754",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {stderr}");
    stderr
}

fn assert_clean_console(stderr: &str) {
    for line in stderr.lines() {
        assert!(
            !line.contains("Uncaught")
                && !line.contains(":CONSOLE")
                && !line.contains("Content Security Policy"),
            "browser console reported: {line}"
        );
    }
}

#[test]
fn report_renders_in_headless_chromium_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    let mut config = Config::default();
    config.site.name = "本社データセンター".into();
    config.site.customer = "株式会社サンプル".into();
    let (data, _) = inputs::gather(
        dir.path(),
        &config,
        StoreSummary {
            disk_used: Some(1_300_000_000),
            disk_budget: Some(2 << 30),
            packets: Some(1_234_567),
            bytes: Some(987_654_321),
            drops: Some(0),
            ..Default::default()
        },
    )
    .unwrap();
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-sample");
    std::fs::create_dir_all(&keep).unwrap();
    for (lang, name) in [(Lang::Ja, "ja"), (Lang::En, "en")] {
        let html_path = keep.join(format!("report-{name}.html"));
        std::fs::write(&html_path, html::render(&data, lang)).unwrap();
        let url = format!("file://{}", html_path.display());
        let png = keep.join(format!("report-{name}.png"));
        let _ = std::fs::remove_file(&png);
        let stderr = run_chromium(&[format!("--screenshot={}", png.display())], &url);
        assert_clean_console(&stderr);
        let png_bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
        assert!(
            png_bytes.starts_with(b"\x89PNG") && png_bytes.len() > 20_000,
            "screenshot too small"
        );

        let pdf = keep.join(format!("report-{name}-print.pdf"));
        let _ = std::fs::remove_file(&pdf);
        let stderr = run_chromium(
            &[
                "--no-pdf-header-footer".to_string(),
                format!("--print-to-pdf={}", pdf.display()),
            ],
            &url,
        );
        assert_clean_console(&stderr);
        let pdf_bytes = std::fs::read(&pdf).expect("chromium wrote no PDF");
        assert!(pdf_bytes.starts_with(b"%PDF"));
        // A4 pages, one or more per chapter plus cover and contents.
        let pages = pdf_bytes
            .windows(10)
            .filter(|w| w == b"/Type /Pag" || w == b"/Type/Page")
            .count();
        assert!(pages >= 8, "only {pages} pages printed");
    }
}
