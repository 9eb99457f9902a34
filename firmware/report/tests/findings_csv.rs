//! One findings CSV: `kuroko findings --format csv` (its CSV path is
//! `findings_csv::for_data_dir`) and the bundle's `findings/findings.csv` (what the export
//! writes, `export::records::findings_csv` of the gathered report data) are the same bytes
//! for the same data directory, with the consultant's override and note; and that one
//! schema is Excel-ready: BOM, CRLF, sorted by risk, one list separator, defused cells,
//! times with the site's offset.

mod common;

use kuroko_model::config::Config;
use kuroko_report::data::StoreSummary;
use kuroko_report::export::records;
use kuroko_report::findings_csv::{self, COLUMNS, LIST_SEPARATOR};
use kuroko_report::{Lang, inputs};

const SITE: &str = r#"
[site]
name = "Tokyo HQ"

[notes]
"f-telnet" = "=cmd|' /C calc'!A0 は保守業者の作業と確認済み"

[overrides.openssh_outdated]
vulnerability = 3
threat = 3
reason = "インターネットから到達可能"
"#;

fn fixture() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    std::fs::write(dir.path().join("site.toml"), SITE).unwrap();
    let mut c = Config::default();
    c.site.name = "Tokyo HQ".into();
    (dir, c)
}

#[test]
fn the_cli_csv_and_the_bundle_csv_are_the_same_bytes() {
    let (dir, config) = fixture();
    for lang in [Lang::Ja, Lang::En] {
        let (data, _) = inputs::gather(dir.path(), &config, StoreSummary::default()).unwrap();
        let bundle = records::findings_csv(&data, lang).unwrap();
        let (findings, _) = inputs::load_findings(dir.path(), &config).unwrap();
        let cli = findings_csv::for_data_dir(dir.path(), &config, findings, lang).unwrap();
        assert_eq!(
            String::from_utf8(cli).unwrap(),
            String::from_utf8(bundle).unwrap(),
            "{lang:?}"
        );
    }
}

#[test]
fn the_schema_is_excel_ready_and_sorted_by_risk() {
    let (dir, config) = fixture();
    let (findings, _) = inputs::load_findings(dir.path(), &config).unwrap();
    let n = findings.len();
    let bytes = findings_csv::for_data_dir(dir.path(), &config, findings, Lang::Ja).unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "UTF-8 BOM first");
    let text = String::from_utf8(bytes).unwrap();
    let text = text.trim_start_matches('\u{feff}');
    assert!(text.ends_with("\r\n"));
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "every line ends with CRLF"
    );
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, COLUMNS);
    let col = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), n);
    let risks: Vec<&str> = rows.iter().map(|r| &r[col("risk")]).collect();
    let mut sorted = risks.clone();
    sorted.sort();
    assert_eq!(risks, sorted, "sorted by risk, A first");
    let nos: Vec<usize> = rows.iter().map(|r| r[col("no")].parse().unwrap()).collect();
    assert_eq!(nos, (1..=n).collect::<Vec<_>>(), "numbered by risk");
    // The override from site.toml raised the outdated OpenSSH finding to A.
    let ssh = rows.iter().find(|r| &r[col("id")] == "f-ssh").unwrap();
    assert_eq!(&ssh[col("risk")], "A");
    assert_eq!(&ssh[col("original_risk")], "D");
    assert_eq!(&ssh[col("override_reason")], "インターネットから到達可能");
    // The analyst's note, defused: a spreadsheet shows it as text.
    let telnet = rows.iter().find(|r| &r[col("id")] == "f-telnet").unwrap();
    assert!(telnet[col("analyst_note")].starts_with("'=cmd"));
    assert_eq!(
        &telnet[col("evidence")],
        ["ev-telnet-1", "ev-telnet-2"].join(LIST_SEPARATOR)
    );
    // Times are RFC 3339 with the site's offset.
    assert!(
        telnet[col("first_seen")].ends_with("+09:00"),
        "{}",
        &telnet[col("first_seen")]
    );
    assert!(kuroko_model::Timestamp::parse_rfc3339(&telnet[col("last_seen")]).is_ok());
    // Titles in Japanese from the catalog.
    assert_eq!(&telnet[col("title")], "Telnet の利用");
}
