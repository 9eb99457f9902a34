//! `kuroko update status|mark-good`: the A/B root's boot state (see `kuroko_setup::update`).
//! Applying a bundle is the setup shell's `update FILE` (it mounts the USB stick).

use anyhow::bail;
use kuroko_setup::update::{self, UpdatePaths};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    /// The config directory holding `boot/state`.
    #[arg(long, value_name = "DIR", default_value = "/config", global = true)]
    pub config_dir: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// The running slot and version, the boot state, the last rollback.
    Status,
    /// The running slot came up (rcS, after `kuroko setup --boot` succeeded): an update on
    /// trial in it becomes the active slot.
    MarkGood,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let p = UpdatePaths::appliance(&a.config_dir);
    match a.what {
        What::Status => print!("{}", update::status(&p)),
        What::MarkGood => match update::mark_good(&p) {
            Ok(m) => {
                update::log(&p, now(), &m);
                println!("{m}");
            }
            Err(e) => bail!("{e}"),
        },
    }
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
