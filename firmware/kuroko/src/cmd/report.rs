//! `kuroko report`.

use super::DataArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let _config = args.data.load_config()?;
    anyhow::bail!("`kuroko report` is not part of this build yet")
}
