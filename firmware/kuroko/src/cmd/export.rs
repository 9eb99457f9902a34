//! `kuroko export`: the findings bundle for a USB stick, and `--verify` to re-check one.
//!
//! `--to DIR` writes into any directory (tests, off-box use); `--usb` finds the one mounted
//! removable device (`/sys/block/*/removable` + `/proc/mounts`). Mounting the stick when
//! it appears and unmounting it afterwards is the board layer's job. Evidence pcaps come
//! from `DIR/evidence/<finding-id>.pcap` when detections kept one, else they are cut out of
//! the segment store by the evidence sessions' addresses, ports and times.
//!
//! The `--data`/`--config` flags are spelled as in `DataArgs` but declared here, because
//! `--verify BUNDLE_DIR` runs off-box without a data directory.

use super::DataArgs;
use anyhow::Context;
use kuroko_report::GradedFinding;
use kuroko_report::export::{self, ExportRequest, flowmatch};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data directory (findings, sessions, segments). Not needed with --verify.
    #[arg(long, value_name = "DIR", required_unless_present = "verify")]
    pub data: Option<PathBuf>,
    /// Configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory (the USB stick's mount point) to write the bundle into.
    #[arg(long, value_name = "MOUNTPOINT", conflicts_with_all = ["usb", "verify"])]
    pub to: Option<PathBuf>,
    /// Find the mounted USB stick by itself.
    #[arg(long, conflicts_with = "verify")]
    pub usb: bool,
    /// Encrypt the whole bundle to this age public key (`age1…`): the consultant's key,
    /// set in `kuroko setup` (`set recipient`). Required unless --plaintext.
    #[arg(long, value_name = "AGE_PUBKEY", conflicts_with = "plaintext")]
    pub recipient: Option<String>,
    /// Write the bundle in clear (the customer's traffic readable by whoever holds the
    /// stick). Explicit, and logged on stderr and in DIR/logs/export.log.
    #[arg(long)]
    pub plaintext: bool,
    /// Japanese font for the PDF reports (default: IPAex Gothic, fonts-ipaexfont-gothic).
    #[arg(long, value_name = "FILE")]
    pub font: Option<PathBuf>,
    /// Re-check an exported bundle against its MANIFEST.sha256 instead of exporting.
    #[arg(long, value_name = "BUNDLE_DIR")]
    pub verify: Option<PathBuf>,
}

/// The packets of a finding's evidence sessions, from the segment store.
fn extract_pcap(
    data_dir: &Path,
    report: &kuroko_report::ReportData,
    f: &GradedFinding,
) -> Result<Option<Vec<u8>>, String> {
    let sessions: Vec<&kuroko_model::SessionRecord> = f
        .finding
        .evidence
        .iter()
        .filter_map(|id| report.evidence.get(id))
        .collect();
    if sessions.is_empty() {
        return Ok(None);
    }
    let from = sessions
        .iter()
        .map(|s| s.start.nanos())
        .min()
        .unwrap_or(0)
        .max(0) as u64;
    let to = sessions
        .iter()
        .map(|s| s.end.nanos().max(s.start.nanos()))
        .max()
        .unwrap_or(0)
        .max(0) as u64
        + 1_000_000_000;
    let reader = match kuroko_ring::reader::StoreReader::open(data_dir) {
        Ok(r) => r,
        Err(_) => return Ok(None), // no segment store (e.g. an off-box copy of findings only)
    };
    let mut out = Vec::new();
    let rep = kuroko_ring::pcap::export_pcap(
        &reader,
        from,
        to,
        |p| flowmatch::matches_any(p.data, &sessions),
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    Ok((rep.packets > 0).then_some(out))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.verify {
        let problems = export::verify_bundle(dir)?;
        if problems.is_empty() {
            println!("{}: every file matches MANIFEST.sha256", dir.display());
            return Ok(());
        }
        for p in &problems.mismatched {
            println!("CHANGED  {p}");
        }
        for p in &problems.missing {
            println!("MISSING  {p}");
        }
        for p in &problems.unlisted {
            println!("EXTRA    {p}");
        }
        anyhow::bail!(
            "{}: the bundle does not match its manifest ({} changed, {} missing, {} not listed); export it again from the appliance",
            dir.display(),
            problems.mismatched.len(),
            problems.missing.len(),
            problems.unlisted.len()
        );
    }
    if args.recipient.is_none() && !args.plaintext {
        anyhow::bail!(
            "the bundle holds the customer's traffic: give the consultant's age public key with --recipient age1… (on the appliance: `set recipient` in kuroko setup), or --plaintext to write it in clear"
        );
    }
    let to = match (&args.to, args.usb) {
        (Some(t), _) => t.clone(),
        (None, true) => {
            export::usb::find_stick()
                .map_err(anyhow::Error::msg)?
                .mount_point
        }
        (None, false) => anyhow::bail!(
            "say where the bundle goes: --to MOUNTPOINT, or --usb to find the mounted stick"
        ),
    };
    // `--verify` alone needs no data directory; everything else does (clap enforces it).
    let data = DataArgs {
        data: args
            .data
            .clone()
            .context("--data DIR is required to export")?,
        config: args.config.clone(),
    };
    if args.plaintext {
        let line = format!(
            "{} export --plaintext to {}: the bundle is written in clear",
            kuroko_model::Timestamp::now().to_rfc3339(),
            to.display()
        );
        eprintln!("kuroko: warning: {line}");
        // The data directory may be read-only (an off-box copy): the log is best effort,
        // the warning above is not.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.data.join("logs/export.log"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
    }
    let font = kuroko_report::pdf::find_font(args.font.as_deref())?;
    let report = super::report::gather(&data)?;
    let data_dir = data.data.clone();
    let extractor = |f: &GradedFinding| extract_pcap(&data_dir, &report, f);
    let summary = export::export(&ExportRequest {
        report: &report,
        data_dir: &data.data,
        to: &to,
        font: &font,
        recipient: args.recipient.as_deref(),
        pcaps: &extractor,
        progress: true,
        now: kuroko_model::Timestamp::now(),
    })
    .with_context(|| format!("export to {} failed", to.display()))?;
    println!(
        "{} ({} files, {}{})",
        summary.bundle.display(),
        summary.files,
        kuroko_model::units::format_bytes(summary.bytes),
        if summary.encrypted { ", encrypted" } else { "" }
    );
    if summary.findings_without_pcap > 0 {
        eprintln!(
            "kuroko: note: {} findings have no evidence packets left in the store (rotated out); their sessions are still in the bundle",
            summary.findings_without_pcap
        );
    }
    Ok(())
}
