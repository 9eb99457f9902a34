//! `kuroko findings`: the findings, highest risk first.
//!
//! Reads the findings store (`DIR/findings/`) written by `kuroko analyze` / `kuroko run`
//! and renders it in the chosen language with the config's overrides, so a changed
//! override shows at once without re-analysis. `table` is for people (two or three lines a
//! finding, fits 80 columns, times in the site's time zone), `jsonl` is the contract's
//! finding record one a line, `csv` is for spreadsheets: the schema of the bundle's
//! `findings.csv`, written by `kuroko_report::findings_csv` (UTF-8 BOM, CRLF, by risk).

use super::DataArgs;
use anyhow::Context;
use kuroko_model::finding::{Finding, Lang, Risk};
use std::io::Write;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Jsonl,
    Csv,
    /// Elastic Common Schema, one JSON object a line (`docs/ECS.md`).
    Ecs,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Language of titles and countermeasures (default: `[console] lang`, else ja).
    #[arg(long, value_parser = parse_lang)]
    pub lang: Option<Lang>,
    /// First let detections catch up with the session log and export the evidence
    /// packets (what `kuroko analyze` does after analysis), e.g. after changing intel lists.
    #[arg(long)]
    pub update: bool,
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    s.parse()
}

/// Width of the table.
const WIDTH: usize = 80;
/// Indent of the second and third line of a finding.
const INDENT: usize = 9;

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let lang = args
        .lang
        .unwrap_or_else(|| config.console.lang.parse().unwrap_or_default());
    let data = &args.data.data;
    if args.update {
        update(data, &config)?;
    }
    let findings = kuroko_detect::load_findings(data, &config, lang)
        .with_context(|| format!("reading the findings of {}", data.display()))?;
    if findings.is_empty()
        && args.format == Format::Table
        && !kuroko_detect::store::findings_dir(data)
            .join(kuroko_detect::store::STATE_FILE)
            .exists()
    {
        eprintln!(
            "kuroko: no analysis results in {} yet; run `kuroko analyze --data {}` first",
            data.display(),
            data.display()
        );
    }
    let tz = config.site.tz().map_err(anyhow::Error::msg)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match args.format {
        Format::Table => {
            let pools = config.site.vpn();
            let is_vpn = |a: &str| pools.contains_str(a);
            write_table(&mut out, &findings, lang, &tz, &is_vpn)
        }
        Format::Jsonl => findings.iter().try_for_each(|f| {
            serde_json::to_writer(&mut out, f).map_err(std::io::Error::other)?;
            out.write_all(b"\n")
        }),
        Format::Ecs => crate::ecs::write_lines(&mut out, findings.iter().map(crate::ecs::finding)),
        // The report's one findings CSV schema (the bundle's findings.csv, byte for byte).
        Format::Csv => kuroko_report::findings_csv::for_data_dir(data, &config, findings, lang)
            .map_err(std::io::Error::other)
            .and_then(|csv| out.write_all(&csv)),
    };
    match result.and_then(|_| out.flush()) {
        // `kuroko findings | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the findings"),
    }
}

/// Detections catch up with the session log, then evidence export; one line on stderr
/// when something needs attention.
pub fn update(data: &std::path::Path, config: &kuroko_model::config::Config) -> anyhow::Result<()> {
    let s = kuroko_detect::run_pending(data, config).with_context(|| {
        format!(
            "running detections on the session log of {}",
            data.display()
        )
    })?;
    for e in &s.intel_errors {
        eprintln!("kuroko: detections go on with the previous reputation lists: {e}");
    }
    if s.bad_records > 0 {
        eprintln!(
            "kuroko: {} damaged session-log lines skipped",
            s.bad_records
        );
    }
    let ev = crate::evidence::export_pending(data, config).with_context(|| {
        format!(
            "exporting evidence packets into {}",
            crate::evidence::evidence_dir(data).display()
        )
    })?;
    if ev.sessions_over_budget > 0 {
        eprintln!(
            "kuroko: evidence area full ({} of {} bytes): {} evidence sessions not kept; raise [storage] evidence_budget",
            ev.area_bytes, ev.budget, ev.sessions_over_budget
        );
    }
    Ok(())
}

/// The table: a summary line, then per finding
/// `A  3x3  id  title` / `client -> server  count  first .. last  [rule]` /
/// `volume ↑ bytes / packets  ↓ bytes / packets` / `-> countermeasures`; an address
/// `is_vpn` says is in `[site] vpn_pools` is marked `(VPN)`; the id is what `pcap --finding` and `site.toml` overrides take.
pub fn write_table<Tz: chrono::TimeZone>(
    out: &mut impl Write,
    findings: &[Finding],
    lang: Lang,
    tz: &Tz,
    is_vpn: &dyn Fn(&str) -> bool,
) -> std::io::Result<()>
where
    Tz::Offset: std::fmt::Display,
{
    let counts: Vec<String> = Risk::ALL
        .iter()
        .map(|r| format!("{r}:{}", findings.iter().filter(|f| f.risk == *r).count()))
        .collect();
    let many = match lang {
        Lang::Ja => "多数",
        Lang::En => "many",
    };
    match lang {
        Lang::Ja => writeln!(
            out,
            "検出事項 {} 件  ({})",
            findings.len(),
            counts.join(" ")
        )?,
        Lang::En => writeln!(out, "{} findings  ({})", findings.len(), counts.join(" "))?,
    }
    if findings.is_empty() {
        return Ok(());
    }
    writeln!(out, "{}", "-".repeat(WIDTH))?;
    for f in findings {
        let head = format!("{}  {}x{}  {}  ", f.risk, f.vulnerability, f.threat, f.id);
        writeln!(out, "{head}{}", fit(&f.title, WIDTH - width(&head)))?;
        // An address of `[site] vpn_pools` is a remote user's: said so.
        let side = |a: Option<&str>| match a {
            Some(a) if is_vpn(a) => format!("{a} (VPN)"),
            Some(a) => a.to_string(),
            None => many.to_string(),
        };
        let (client, server) = (side(f.client.as_deref()), side(f.server.as_deref()));
        // `11-18 10:00..10:45 JST`, or with both dates when the finding spans days.
        let first_day = local(f.first_seen, tz, "%m-%d");
        let last_day = local(f.last_seen, tz, "%m-%d");
        let when = if first_day == last_day {
            format!(
                "{first_day} {}..{}",
                local(f.first_seen, tz, "%H:%M"),
                local(f.last_seen, tz, "%H:%M %Z")
            )
        } else {
            format!(
                "{}..{}",
                local(f.first_seen, tz, "%m-%d %H:%M"),
                local(f.last_seen, tz, "%m-%d %H:%M %Z")
            )
        };
        let line = format!("{client} -> {server}  x{}  {when}  [{}]", f.count, f.rule);
        writeln!(out, "{}{}", " ".repeat(INDENT), fit(&line, WIDTH - INDENT))?;
        let volume = match lang {
            Lang::Ja => format!("通信量 {}", f.volume.describe(lang)),
            Lang::En => format!("volume {}", f.volume.describe(lang)),
        };
        writeln!(
            out,
            "{}{}",
            " ".repeat(INDENT),
            fit(&volume, WIDTH - INDENT)
        )?;
        let cm = format!("=> {}", f.countermeasures.join(" / "));
        writeln!(out, "{}{}", " ".repeat(INDENT), fit(&cm, WIDTH - INDENT))?;
        if let Some(reason) = &f.override_reason {
            let label = match lang {
                Lang::Ja => "レベル変更: ",
                Lang::En => "override: ",
            };
            writeln!(
                out,
                "{}{}",
                " ".repeat(INDENT),
                fit(&format!("{label}{reason}"), WIDTH - INDENT)
            )?;
        }
    }
    Ok(())
}

fn local<Tz: chrono::TimeZone>(t: kuroko_model::Timestamp, tz: &Tz, fmt: &str) -> String
where
    Tz::Offset: std::fmt::Display,
{
    t.to_datetime().with_timezone(tz).format(fmt).to_string()
}

/// Display width: East Asian wide and full-width characters take two columns.
fn char_width(c: char) -> usize {
    let u = c as u32;
    let wide = matches!(u,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x20000..=0x3FFFD);
    if c.is_control() {
        0
    } else if wide {
        2
    } else {
        1
    }
}

fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Cuts `s` to `max` columns, ending in `…` when cut; control characters become spaces
/// (titles are ours, but addresses and reasons pass through here too).
fn fit(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if width(&clean) <= max {
        return clean;
    }
    let mut out = String::new();
    let mut w = 0;
    for c in clean.chars() {
        let cw = char_width(c);
        if w + cw + 1 > max {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// RFC 4180 quoting of a cell defused by [`kuroko_model::csv_cell::defuse`], so that a
/// spreadsheet does not run a formula that came off the wire.
pub fn csv_cell(s: &str) -> String {
    let s = kuroko_model::csv_cell::defuse(s).into_owned();
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_detect::Engine;
    use kuroko_model::config::Config;
    use kuroko_model::session::{Endpoint, Telnet};
    use kuroko_model::{SessionRecord, Timestamp};

    fn findings(lang: Lang) -> Vec<Finding> {
        let mut e = Engine::new(&Config::default()).unwrap();
        for (i, (c, s, proto, port)) in [
            ("10.0.0.5", "10.0.3.1", "telnet", 23),
            ("10.0.0.5", "203.0.113.50", "ssh", 22),
            ("10.0.0.7", "10.0.0.21", "ftp", 21),
        ]
        .iter()
        .enumerate()
        {
            let mut r = SessionRecord::new(
                format!("s{i}"),
                Timestamp(1_794_963_600_000_000_000),
                "tcp",
                Endpoint::new(c.parse().unwrap(), 50000),
                Endpoint::new(s.parse().unwrap(), *port),
            );
            r.protocol = proto.to_string();
            r.bytes_up = 100;
            r.bytes_down = 300;
            r.telnet = (*proto == "telnet").then(|| Telnet {
                user: Some("root".into()),
            });
            e.observe(&r);
        }
        e.findings(lang)
    }

    #[test]
    fn table_fits_80_columns_in_both_languages_highest_risk_first() {
        let tz = Config::default().site.tz().unwrap();
        for lang in [Lang::Ja, Lang::En] {
            let f = findings(lang);
            let mut buf = Vec::new();
            write_table(&mut buf, &f, lang, &tz, &|_| false).unwrap();
            let text = String::from_utf8(buf).unwrap();
            for line in text.lines() {
                assert!(width(line) <= WIDTH, "{} columns: {line}", width(line));
            }
            let first_finding = text.lines().nth(2).unwrap();
            assert!(first_finding.starts_with("A  3x3"), "{text}");
            assert!(text.contains("11-18 10:00..10:00 JST"), "{text}");
            assert!(text.contains("[ssh_external]"), "{text}");
            assert!(text.contains(&format!("A  3x3  {}  ", f[0].id)), "{text}");
        }
        let mut buf = Vec::new();
        write_table(&mut buf, &findings(Lang::Ja), Lang::Ja, &tz, &|_| false).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with("検出事項 3 件  (A:1 B:1 C:1 D:0 E:0)"),
            "{text}"
        );
        assert!(text.contains("業務利用外の外部サーバへの SSH アクセス"));
    }

    #[test]
    fn table_shows_each_findings_volume_and_marks_vpn_pool_addresses() {
        let tz = Config::default().site.tz().unwrap();
        let mut f = findings(Lang::Ja);
        f[0].volume = kuroko_model::finding::Volume {
            bytes_up: 2048,
            bytes_down: 100,
            packets_up: 7,
            packets_down: 3,
            unknown: false,
        };
        let client = f[0].client.clone().unwrap();
        let mut buf = Vec::new();
        write_table(&mut buf, &f, Lang::Ja, &tz, &|a| a == client).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("通信量 ↑ 2.0 KiB / 7 パケット  ↓ 100 B / 3 パケット"),
            "{text}"
        );
        assert!(text.contains(&format!("{client} (VPN) -> ")), "{text}");
        assert_eq!(
            text.matches("(VPN)").count(),
            f.iter()
                .filter(|x| x.client.as_deref() == Some(client.as_str()))
                .count()
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
    }

    #[test]
    fn fit_cuts_by_display_width() {
        assert_eq!(width("あいう"), 6);
        assert_eq!(fit("あいうえお", 7), "あいう…");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("a\tb", 10), "a b");
    }
}
