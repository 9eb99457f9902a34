//! `kuroko report`: the diagnosis report as self-contained HTML or as PDF.
//!
//! Gathers findings, the session log, the store's status, the configuration and the
//! consultant's `DIR/site.toml` (created with comments when absent and the data directory
//! can be written; a read-only data directory gets the config's names) into one
//! `kuroko_report::ReportData`, then renders it. `--out` ending in `.pdf` writes a PDF;
//! `--pdf FILE` writes a PDF beside the HTML.

use super::DataArgs;
use anyhow::Context;
use kuroko_report::data::StoreSummary;
use kuroko_report::{Lang, ReportData};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Report file to write: `.html` (self-contained) or `.pdf`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write a PDF here.
    #[arg(long, value_name = "FILE")]
    pub pdf: Option<PathBuf>,
    /// Language of the report: ja or en.
    #[arg(long, default_value = "ja")]
    pub lang: Lang,
    /// TrueType/OpenType font with Japanese glyphs for the PDF (default: IPAex Gothic from
    /// the Debian package fonts-ipaexfont-gothic).
    #[arg(long, value_name = "FILE")]
    pub font: Option<PathBuf>,
}

/// The store's status in the report's terms (the same sources as `kuroko status`);
/// unknown fields stay `None`.
pub fn store_summary(data_dir: &Path, config: &kuroko_model::config::Config) -> StoreSummary {
    let mut s = StoreSummary::default();
    if let Ok(st) = kuroko_ring::status::store_status(data_dir) {
        let ts =
            |ns: Option<u64>| ns.map(|n| kuroko_model::Timestamp(n.min(i64::MAX as u64) as i64));
        s.retention_start = ts(st.oldest_packet_ns);
        s.retention_end = ts(st.newest_packet_ns);
        s.disk_used = Some(st.disk_bytes);
        s.disk_budget = Some(st.budget_bytes);
        s.segments = Some(st.segments_used as u64);
        s.packets = Some(st.stored_packets);
        s.bytes = Some(st.stored_bytes);
        s.drops = Some(st.backpressure_drops + st.rejected_packets);
    }
    // Capture drops (kernel ring, NIC, backpressure) and analyzer progress, as `kuroko
    // status` reports them.
    let ctx = super::status::Context {
        data: data_dir.to_path_buf(),
        config: config.clone(),
    };
    if let Ok(sections) = super::status::sections(&ctx) {
        let v = super::status::to_json(&sections);
        if let Some(total) = v["capture"]["drops"]["total"].as_u64() {
            s.drops = Some(total + s.drops.unwrap_or(0));
        }
        if let Some(t) = v["analyzer"]["analyzed_time"].as_str() {
            s.analyzed_to = kuroko_model::Timestamp::parse_rfc3339(t).ok();
        }
        s.analyzer_lag_secs = v["analyzer"]["lag_seconds"].as_f64();
        s.coverage = coverage(&v);
        s.analyzed_packets = v["analyzer"]["counters"]["packets"].as_u64();
    }
    s
}

/// §1.4's figures from `kuroko status --format json`'s sections: blind intervals
/// (`capture.gaps`), losses by cause (`capture.drops`), write errors and damage (`store`),
/// a scrub fallen behind (the `scrub_behind` alarm).
fn coverage(v: &serde_json::Value) -> kuroko_report::Coverage {
    let ts = |x: &serde_json::Value| {
        x.as_str()
            .and_then(|t| kuroko_model::Timestamp::parse_rfc3339(t).ok())
    };
    let n = |x: &serde_json::Value| x.as_u64().unwrap_or(0);
    let c = &v["capture"];
    let gaps = c["gaps"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| {
                    Some(kuroko_report::BlindInterval {
                        interface: g["interface"].as_str()?.to_string(),
                        gone: g["kind"] == "gone",
                        start: ts(&g["start"])?,
                        end: ts(&g["end"]),
                        missed: n(&g["missed_before_rebind"]),
                        cut_by_capture_end: g["cut_by_capture_end"] == true,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    // The causes counted as lost (as in `drops.total`; `nic_rx_dropped` is not a loss).
    let losses = [
        "kernel_ring",
        "backpressure",
        "nic_missed",
        "nic_fifo",
        "unread_at_stop",
        "missed_before_rebind",
    ]
    .iter()
    .map(|k| (k.to_string(), n(&c["drops"][k])))
    .filter(|(_, v)| *v > 0)
    .collect();
    let st = &v["store"];
    kuroko_report::Coverage {
        capture_known: c["present"] == true,
        gaps,
        losses,
        write_errors: n(&st["write_errors"]),
        write_error_packets: n(&st["write_error_packets"]),
        damaged_slots: n(&st["damaged_slots"]),
        damaged_segments: n(&st["damaged_segments"]),
        damaged_blocks: n(&st["damaged_blocks"]),
        ring_near_loss: n(&c["ring_near_loss"]),
        ring_peak_fill_pct: n(&c["ring_peak_fill_pct"]),
        // The same alarm `status` raises (alarms section).
        scrub_behind: v["alarms"]["alarms"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["kind"] == "scrub_behind"))
            .map(|a| {
                let text = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                (text("detail"), text("detail_ja"))
            }),
    }
}

/// Gathers the report's data, printing warnings about unreadable records.
pub fn gather(data: &DataArgs) -> anyhow::Result<ReportData> {
    let config = data.load_config()?;
    anyhow::ensure!(
        data.data.is_dir(),
        "data directory {} does not exist; pass the --data of an appliance or an imported store",
        data.data.display()
    );
    let (report, warn) =
        kuroko_report::inputs::gather(&data.data, &config, store_summary(&data.data, &config))
            .with_context(|| {
                format!(
                    "cannot gather the report's data from {}",
                    data.data.display()
                )
            })?;
    if warn.site_created {
        eprintln!(
            "kuroko: created {} (site and customer names, analyst notes, level overrides); edit it and run the report again",
            kuroko_report::SiteFile::path(&data.data).display()
        );
    }
    if let Some(why) = &warn.site_not_saved {
        eprintln!(
            "kuroko: note: {} does not exist and cannot be created ({why}); the report uses the site and customer names of the config",
            kuroko_report::SiteFile::path(&data.data).display()
        );
    }
    if warn.bad_findings > 0 {
        eprintln!(
            "kuroko: warning: {} lines under findings/ are not finding records and were left out",
            warn.bad_findings
        );
    }
    if warn.bad_sessions > 0 {
        eprintln!(
            "kuroko: warning: {} damaged session-log records were left out of the statistics",
            warn.bad_sessions
        );
    }
    Ok(report)
}

fn is_pdf(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
}

/// Writes one report file (HTML or PDF by extension) through `crate::output` (a regular
/// file atomically, symlinks followed, `-` to standard output).
pub fn write_report(
    report: &ReportData,
    lang: Lang,
    out: &Path,
    font: Option<&Path>,
) -> anyhow::Result<()> {
    let bytes = if is_pdf(out) {
        let font = kuroko_report::pdf::find_font(font)?;
        kuroko_report::pdf::render(report, lang, &font)?
    } else {
        kuroko_report::html::render(report, lang).into_bytes()
    };
    let mut file = crate::output::Output::create(out)?;
    std::io::Write::write_all(&mut file, &bytes)
        .with_context(|| format!("writing {}", out.display()))?;
    file.finish()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let report = gather(&args.data)?;
    write_report(&report, args.lang, &args.out, args.font.as_deref())?;
    if let Some(pdf) = &args.pdf {
        write_report(&report, args.lang, pdf, args.font.as_deref())?;
    }
    Ok(())
}
