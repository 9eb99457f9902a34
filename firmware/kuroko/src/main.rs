//! `kuroko`: the one binary of the appliance.
//!
//! Every subcommand lives in its own module under `cmd/` with a clap `Args` struct and a
//! `run` function; this file only dispatches. Errors leave as one line on stderr with a
//! non-zero exit status (the contract in `shared/CONTRACT.md`).

#![deny(unsafe_op_in_unsafe_fn)]

mod alarms;
mod cmd;
mod config_check;
mod console_source;
mod ecs;
mod evidence;
mod output;
mod privilege;

use clap::{Parser, Subcommand};
/// Log rotation, shared with the alert log (`kuroko_model::log_budget`).
use kuroko_model::log_budget;

/// Kuroko network blackbox: capture, analyze, search and report on mirror-port traffic.
#[derive(Parser)]
#[command(name = "kuroko", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Store pcap / pcapng files into the segment ring, keeping their timestamps.
    Import(cmd::import::Args),
    /// Live capture from one or more interfaces into the segment ring.
    Capture(cmd::capture::Args),
    /// Analyze every stored packet not yet analyzed, then exit.
    Analyze(cmd::analyze::Args),
    /// Appliance mode: capture + analyzer + alerts, the console on a terminal.
    Run(cmd::run::Args),
    /// Capture health, drops, disk usage, retention window, analyzer lag.
    Status(cmd::status::Args),
    /// Sessions matching a query, newest first.
    Search(cmd::search::Args),
    /// The findings, highest risk first.
    Findings(cmd::findings::Args),
    /// Packets of a time range or of the sessions matching a query, as a pcap.
    Pcap(cmd::pcap::Args),
    /// The diagnosis report (HTML, PDF).
    Report(cmd::report::Args),
    /// The findings bundle for a USB stick.
    Export(cmd::export::Args),
    /// The console TUI.
    Console(cmd::console::Args),
    /// The technician's setup shell on the serial console.
    Setup(cmd::setup::Args),
    /// The A/B root's update state: `status`, `mark-good` (the image's rcS).
    Update(cmd::update::Args),
    /// The analysts' HTTPS web console.
    Web(cmd::web::Args),
    /// Users of the web console: add, passwd, list, remove, token.
    User(cmd::user::Args),
    /// Alert conditions (saved searches that raise alerts): list, add, edit, enable,
    /// disable, remove.
    Conditions(cmd::conditions::Args),
    /// The asset inventory: internal hosts, their services and announced software.
    Assets(cmd::assets::Args),
    /// Threat-intel packs: import, list, remove, recheck.
    Intel(cmd::intel::Args),
    /// Erase the customer's data irrecoverably before the box leaves the site, with a
    /// certificate of erasure.
    Decommission(cmd::decommission::Args),
    /// YARA rules: `check` compiles the set and reports errors with file and line.
    Yara(cmd::yara::Args),
    /// Internal: the content extraction worker `kuroko analyze` starts (one object at a
    /// time on stdin, rlimits; `kuroko_content::worker`).
    #[command(name = "content-worker", hide = true)]
    ContentWorker(cmd::content::WorkerArgs),
}

fn main() {
    // Owner-only by default, before any file exists: segments, session logs, evidence and
    // config hold a customer's traffic (files 0600, directories 0700). Inherited by every
    // child `kuroko run` starts.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // No core file, not dumpable: the process's memory holds customer traffic.
    privilege::no_core_dumps();
    // Signal masks are inherited through exec: `kuroko run` blocks SIGINT/SIGTERM to wait for
    // them on a thread, and its children (`kuroko capture`, `kuroko analyze`) must start
    // with them deliverable again, or they could not be stopped cleanly.
    let mut stop_signals = nix::sys::signal::SigSet::empty();
    stop_signals.add(nix::sys::signal::Signal::SIGINT);
    stop_signals.add(nix::sys::signal::Signal::SIGTERM);
    let _ = stop_signals.thread_unblock();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Import(a) => cmd::import::run(a),
        Command::Capture(a) => cmd::capture::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Status(a) => cmd::status::run(a),
        Command::Search(a) => cmd::search::run(a),
        Command::Findings(a) => cmd::findings::run(a),
        Command::Pcap(a) => cmd::pcap::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Console(a) => cmd::console::run(a),
        Command::Setup(a) => cmd::setup::run(a),
        Command::Update(a) => cmd::update::run(a),
        Command::Web(a) => cmd::web::run(a),
        Command::User(a) => cmd::user::run(a),
        Command::Assets(a) => cmd::assets::run(a),
        Command::Conditions(a) => cmd::conditions::run(a),
        Command::Intel(a) => cmd::intel::run(a),
        Command::Decommission(a) => cmd::decommission::run(a),
        Command::Yara(a) => cmd::yara::run(a),
        Command::ContentWorker(a) => cmd::content::worker(a),
    };
    if let Err(e) = result {
        // One line: the outermost context first, causes after it.
        let mut msg = format!("kuroko: {e}");
        for cause in e.chain().skip(1) {
            // An exit status carried under a message is not a message of its own.
            if cause.is::<cmd::ExitCode>() {
                continue;
            }
            msg.push_str(": ");
            msg.push_str(&cause.to_string());
        }
        eprintln!("{msg}");
        std::process::exit(match e.downcast_ref::<cmd::ExitCode>() {
            Some(code) => code.0,
            None => 1,
        });
    }
}
