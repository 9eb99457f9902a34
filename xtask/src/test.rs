//! `cargo xtask test`: formatting, lints, then every test of the workspace.
//!
//! End-to-end tests need root (network namespaces, raw sockets) and the Debian packages of
//! `.ci/packages.txt`; they are part of the normal suite, not a separate tier, so CI runs
//! them every time.

use crate::util::{cargo, run as sh};

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    pub no_lint: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::deps::install()?;
    if !args.no_lint {
        sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
        sh(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    sh(cargo().args(["test", "--workspace", "--no-fail-fast"]))
}
