//! `kuroko decommission`: destroy the customer's data before the box leaves the site, and
//! write a certificate of erasure to the USB stick.
//!
//! The erasure itself is `kuroko_setup::erase` (shared with the setup shell's
//! `decommission` and the damaged-credential recovery); this module only asks for the
//! confirmation and draws the progress.

use anyhow::Context;
use kuroko_setup::erase::{self, Plan, Progress};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

/// The word typed to confirm (or `--yes`).
pub const CONFIRM_WORD: &str = "DECOMMISSION";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data directory to erase (every file in it).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The configuration file: erased too, with the technician credential, its back-off and
    /// the consultant's recipient beside it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The technician credential when it is not beside the config.
    #[arg(long, value_name = "FILE")]
    pub credential: Option<PathBuf>,
    /// Directory (the USB stick's mount point) for the certificate of erasure.
    #[arg(long, value_name = "MOUNTPOINT", conflicts_with = "usb")]
    pub to: Option<PathBuf>,
    /// Find the mounted USB stick by itself.
    #[arg(long)]
    pub usb: bool,
    /// Stop a running capture/analyzer (and the `kuroko run` supervising it) first.
    #[arg(long)]
    pub stop: bool,
    /// Also overwrite the free space of the data directory's file system (default: only
    /// when the data directory is a file system of its own, as `/data` on the appliance).
    #[arg(long)]
    pub free_space: bool,
    /// Do not ask: erase at once (scripts; the setup shell asks itself).
    #[arg(long)]
    pub yes: bool,
}

fn human(bytes: u64) -> String {
    const G: f64 = (1u64 << 30) as f64;
    const M: f64 = (1u64 << 20) as f64;
    if bytes as f64 >= G {
        format!("{:.1} GiB", bytes as f64 / G)
    } else {
        format!("{:.1} MiB", bytes as f64 / M)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let certificate_dir = match (&args.to, args.usb) {
        (Some(t), _) => t.clone(),
        (None, true) => {
            kuroko_report::export::usb::find_stick()
                .map_err(anyhow::Error::msg)?
                .mount_point
        }
        (None, false) => anyhow::bail!(
            "say where the certificate of erasure goes: --to MOUNTPOINT, or --usb to find the mounted stick"
        ),
    };
    let tty = std::io::stderr().is_terminal();
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "decommission erases every captured packet, session, finding, the configuration and the technician credential: confirm with --yes (no terminal to ask on)"
            );
        }
        eprintln!(
            "This erases every captured packet, session, file, mail and finding in {}, the configuration and the technician credential, irrecoverably.",
            args.data.display()
        );
        eprint!("type {CONFIRM_WORD} to erase: ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if line.trim() != CONFIRM_WORD {
            anyhow::bail!("nothing erased (the confirmation was not {CONFIRM_WORD})");
        }
    }
    let plan = Plan {
        data: args.data.clone(),
        config: args.config.clone(),
        credential: args.credential.clone(),
        certificate_dir: Some(certificate_dir),
        stop_running: args.stop,
        wipe_free_space: args.free_space.then_some(true),
    };
    let start = Instant::now();
    let mut last_draw: Option<Instant> = None;
    let mut last_tenth = u64::MAX;
    let mut draw = |p: Progress| {
        let pct = (p.bytes_done * 100)
            .checked_div(p.bytes_total)
            .unwrap_or(100);
        let line = format!(
            "erasing: {} of {} ({pct}%), {} of {} files",
            human(p.bytes_done),
            human(p.bytes_total),
            p.files_done,
            p.files_total
        );
        if tty {
            // At most 5 redraws a second, and always the last one.
            let done = p.files_done == p.files_total;
            if done || last_draw.is_none_or(|t| t.elapsed().as_millis() >= 200) {
                let secs = start.elapsed().as_secs_f64().max(1e-3);
                eprint!(
                    "\r{line}, {:.0} MiB/s   ",
                    p.bytes_done as f64 / secs / 1048576.0
                );
                let _ = std::io::stderr().flush();
                last_draw = Some(Instant::now());
            }
        } else if pct / 10 != last_tenth {
            // Piped: one line per tenth.
            last_tenth = pct / 10;
            eprintln!("{line}");
        }
    };
    let outcome = erase::decommission(&plan, &mut draw).context("decommission stopped")?;
    if tty {
        eprintln!();
    }
    println!(
        "Erased {} files ({} overwritten) in {:.1} s.",
        outcome.files,
        human(outcome.bytes),
        start.elapsed().as_secs_f64()
    );
    if let Some((path, sha)) = &outcome.certificate {
        println!("Certificate of erasure: {}", path.display());
        println!("Its SHA-256 (write it on the decommission form): {sha}");
    }
    Ok(())
}
