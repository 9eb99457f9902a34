//! `kuroko setup`: the technician's shell on the serial console (see `kuroko-setup`).

use anyhow::Context;
use kuroko_setup::lineedit::{LineEditor, RawMode};
use kuroko_setup::{Paths, RealSystem, Shell};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The appliance configuration the shell edits.
    #[arg(long, value_name = "FILE", default_value = "/config/kuroko.toml")]
    pub config: PathBuf,
    /// The technician credential (an Argon2id hash); default: beside the config.
    #[arg(long, value_name = "FILE")]
    pub credential: Option<PathBuf>,
    /// Root of the /sys tree for hardware discovery (tests).
    #[arg(long, value_name = "DIR", default_value = "/sys", hide = true)]
    pub sys: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let credential = args.credential.unwrap_or_else(|| {
        args.config
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("technician.hash")
    });
    let paths = Paths {
        config: args.config,
        credential,
        sys: args.sys.clone(),
    };
    let mut system = RealSystem {
        kuroko_exe: std::env::current_exe().context("cannot find the kuroko binary")?,
        sys_root: args.sys,
    };
    let interactive = std::io::stdin().is_terminal();
    // Raw mode only on a terminal; restored when the guard drops, whatever happens.
    let _raw = if interactive { RawMode::stdin() } else { None };
    let ed = LineEditor::new(std::io::stdin(), std::io::stdout(), _raw.is_some());
    Shell::new(paths, &mut system, ed)
        .run()
        .context("setup shell")
}
