//! `kuroko setup`: the technician's shell on the serial console (see `kuroko-setup`).

use anyhow::Context;
use kuroko_setup::lineedit::{IDLE_TICK_DECISECONDS, LineEditor, RawMode};

/// The setup shell logs out after this long without a key.
pub const IDLE_LOGOUT: std::time::Duration = std::time::Duration::from_secs(600);
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
    /// Apply the network at boot and exit (the image's rcS): `[management]` on the
    /// management port, every other NIC silenced, NTP started.
    #[arg(long)]
    pub boot: bool,
    /// Provision the unit: make a new setup token, store its hash beside the credential
    /// (`setup.token`) and write the token to LABEL (the text for the unit's label) and
    /// exit. Without a token a box without a credential cannot be claimed.
    #[arg(long, value_name = "LABEL")]
    pub provision_token: Option<PathBuf>,
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
    let mut system = RealSystem::new(
        std::env::current_exe().context("cannot find the kuroko binary")?,
        args.sys.clone(),
    );
    if let Some(label) = &args.provision_token {
        let path = kuroko_setup::token::path_for(&paths.credential);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let token = kuroko_setup::token::provision(&path)?;
        kuroko_model::config::write_atomic(
            label,
            format!("Kuroko setup token: {token}\n").as_bytes(),
        )
        .with_context(|| format!("cannot write the label {}", label.display()))?;
        println!(
            "setup token stored (hashed) in {}; label text in {}",
            path.display(),
            label.display()
        );
        return Ok(());
    }
    if args.boot {
        for line in kuroko_setup::boot::apply(&paths.config, &args.sys, &mut system) {
            println!("{line}");
        }
        return Ok(());
    }
    let interactive = std::io::stdin().is_terminal();
    // Raw mode only on a terminal; restored when the guard drops, whatever happens.
    let _raw = if interactive { RawMode::stdin() } else { None };
    // Idle logout after IDLE_LOGOUT of no key at all (an unattended serial console).
    let ticks = IDLE_LOGOUT.as_secs() / (u64::from(IDLE_TICK_DECISECONDS) / 10).max(1);
    let ed = LineEditor::new(std::io::stdin(), std::io::stdout(), _raw.is_some())
        .with_idle_logout(ticks as u32);
    Shell::new(paths, &mut system, ed)
        .run()
        .context("setup shell")
}
