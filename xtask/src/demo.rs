//! `cargo xtask demo`: the README's main job.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the demo is not in this build yet")
}
