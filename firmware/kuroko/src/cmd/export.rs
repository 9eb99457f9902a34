//! `kuroko export`: the findings bundle for a USB stick, and `--verify` to re-check one.
//!
//! `--to DIR` writes into any directory (tests, off-box use); `--usb` finds the one mounted
//! removable device (`/sys/block/*/removable` + `/proc/mounts`). Mounting the stick when
//! it appears and unmounting it afterwards is the board layer's job. Evidence pcaps come
//! from `DIR/evidence/<finding-id>.pcap` when detections kept one, else they are cut out of
//! the segment store by the evidence sessions' addresses, ports and times.
//!
//! Damage is never silent (as in `kuroko pcap`): when the time range of a finding's
//! evidence sessions holds damaged store data (damaged blocks, found when the segment was
//! written or read since, or a segment whose write or fdatasync the disk failed), or the
//! store has slots with an unreadable header, the bundle is still written, its README
//! lists each place next to the pcap it concerns, stderr names them, and the command exits
//! with status 3 (`pcap::EXIT_DAMAGED`) after printing the bundle's path.
//!
//! The `--data`/`--config` flags are spelled as in `DataArgs` but declared here, because
//! `--verify BUNDLE_DIR` runs off-box without a data directory.

use super::DataArgs;
use anyhow::Context;
use kuroko_report::GradedFinding;
use kuroko_report::export::{
    self, EvidencePcap, ExportRequest, PcapSource, StoreDamage, flowmatch,
};
use std::path::PathBuf;

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

/// The time range `[from, to)` (ns) of a finding's evidence sessions (their packets are
/// looked for up to a second after a session's end), with the sessions; `None` without any.
fn evidence_window<'r>(
    report: &'r kuroko_report::ReportData,
    f: &GradedFinding,
) -> Option<(Vec<&'r kuroko_model::SessionRecord>, u64, u64)> {
    let sessions: Vec<&kuroko_model::SessionRecord> = f
        .finding
        .evidence
        .iter()
        .filter_map(|id| report.evidence.get(id))
        .collect();
    if sessions.is_empty() {
        return None;
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
    Some((sessions, from, to))
}

/// A finding's evidence from the segment store: the packets of its evidence sessions when
/// no copy was kept ([`PcapSource::Store`]), and in every case the damaged store data in
/// their time range: segments whose blocks are damaged or whose write or fdatasync the
/// disk failed (as `kuroko status` counts them), plus what this read found.
fn evidence_pcap(
    reader: Option<&kuroko_ring::StoreReader>,
    store_damage: &[kuroko_ring::SegmentDamage],
    report: &kuroko_report::ReportData,
    f: &GradedFinding,
    source: PcapSource,
) -> Result<EvidencePcap, String> {
    // No segment store: an off-box copy of findings only.
    let (Some(reader), Some((sessions, from, to))) = (reader, evidence_window(report, f)) else {
        return Ok(EvidencePcap::default());
    };
    let mut damage: Vec<kuroko_ring::SegmentDamage> = store_damage
        .iter()
        .filter(|d| d.overlaps(from, to))
        .cloned()
        .collect();
    let mut pcap = None;
    if source == PcapSource::Store {
        let mut out = Vec::new();
        let rep = kuroko_ring::pcap::export_pcap(
            reader,
            from,
            to,
            |p| flowmatch::matches_any(p.data, &sessions),
            &mut out,
        )
        .map_err(|e| e.to_string())?;
        pcap = (rep.packets > 0).then_some(out);
        merge_found(reader, &mut damage, &rep.damage, &rep.write_error_segments);
    }
    let ts = |ns: u64| kuroko_model::Timestamp(ns.min(i64::MAX as u64) as i64);
    Ok(EvidencePcap {
        pcap,
        damage: damage
            .into_iter()
            .map(|d| StoreDamage {
                file: d.file.display().to_string(),
                seq: d.seq,
                first: ts(d.first_ts),
                last: ts(d.last_ts),
                write_error: d.write_error,
                damaged_places: d.damaged_blocks,
                packets_lost: d.damaged_packets,
            })
            .collect(),
    })
}

/// Adds what a read found (damaged places, segments marked by a failed write) to the
/// store's own record of damage in the range, one entry per segment: a place the record
/// already counts is not counted twice.
fn merge_found(
    reader: &kuroko_ring::StoreReader,
    damage: &mut Vec<kuroko_ring::SegmentDamage>,
    found: &[kuroko_ring::Damage],
    write_errors: &[kuroko_ring::WriteErrorSegment],
) {
    let mut seqs: Vec<u64> = found.iter().map(|d| d.seq).collect();
    seqs.extend(write_errors.iter().map(|w| w.seq));
    seqs.sort_unstable();
    seqs.dedup();
    for seq in seqs {
        let places = found.iter().filter(|d| d.seq == seq);
        let (n, packets) = places.fold((0u64, 0u64), |(n, p), d| (n + 1, p + d.packets));
        let marked = write_errors.iter().any(|w| w.seq == seq);
        if let Some(d) = damage.iter_mut().find(|d| d.seq == seq) {
            d.damaged_blocks = d.damaged_blocks.max(n);
            d.damaged_packets = d.damaged_packets.max(packets);
            d.write_error |= marked;
            continue;
        }
        let Some(s) = reader.segments().iter().find(|s| s.seq == seq) else {
            continue;
        };
        damage.push(kuroko_ring::SegmentDamage {
            file: found
                .iter()
                .find(|d| d.seq == seq)
                .map(|d| d.file.clone())
                .or_else(|| {
                    write_errors
                        .iter()
                        .find(|w| w.seq == seq)
                        .map(|w| w.file.clone())
                })
                .unwrap_or_default(),
            slot: s.slot,
            seq,
            first_ts: s.first_ts,
            last_ts: s.last_ts,
            write_error: marked || s.write_error,
            damaged_blocks: n,
            damaged_packets: packets,
        });
    }
    damage.sort_by_key(|d| d.seq);
}

/// Names on stderr what the bundle's README says about store damage (at most 10 findings,
/// then how many more).
fn warn_damage(report: &kuroko_report::ReportData, summary: &export::ExportSummary) {
    for e in summary.evidence_damage.iter().take(10) {
        let pcap = e.pcap.as_deref().unwrap_or("(no pcap left)");
        for g in &e.damage {
            eprintln!(
                "kuroko: warning: {pcap} (finding {} {}): damaged store data in its evidence time range: {}",
                e.no,
                e.finding,
                g.describe(report, kuroko_model::finding::Lang::En)
            );
        }
    }
    if summary.evidence_damage.len() > 10 {
        eprintln!(
            "kuroko: … and {} more findings (README.txt in the bundle lists them all)",
            summary.evidence_damage.len() - 10
        );
    }
    if !summary.damaged_slots.is_empty() {
        eprintln!(
            "kuroko: warning: {} slot(s) of the store have an unreadable header (slots {:?}): any evidence pcap may lack packets they held",
            summary.damaged_slots.len(),
            summary.damaged_slots
        );
    }
    eprintln!(
        "kuroko: warning: {} evidence pcap(s) of the bundle may lack packets lost to store damage or hold packets the disk failed to write; README.txt in the bundle says which (exit status {})",
        summary.evidence_damage.len(),
        super::pcap::EXIT_DAMAGED
    );
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
    // One reader for every finding (no segment store: an off-box copy of findings only).
    let reader = kuroko_ring::StoreReader::open(&data.data).ok();
    let damaged_slots = reader
        .as_ref()
        .map(|r| r.damaged_slots().to_vec())
        .unwrap_or_default();
    // The store's record of damage (as `status` counts it), read once for every finding.
    let store_damage = reader
        .as_ref()
        .map(kuroko_ring::segment_damage)
        .unwrap_or_default();
    let extractor = |f: &GradedFinding, source: PcapSource| {
        evidence_pcap(reader.as_ref(), &store_damage, &report, f, source)
    };
    let summary = export::export(&ExportRequest {
        report: &report,
        data_dir: &data.data,
        to: &to,
        font: &font,
        recipient: args.recipient.as_deref(),
        pcaps: &extractor,
        damaged_slots: &damaged_slots,
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
            "kuroko: note: {} findings have no evidence packets left in the store ({}); their sessions are still in the bundle",
            summary.findings_without_pcap,
            if summary.is_partial() {
                "rotated out, or lost to the store damage named below"
            } else {
                "rotated out"
            }
        );
    }
    if summary.is_partial() {
        warn_damage(&report, &summary);
        return Err(super::ExitCode(super::pcap::EXIT_DAMAGED).into());
    }
    Ok(())
}
