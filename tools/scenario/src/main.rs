//! `kuroko-scenario`: records the test site's scenarios to pcap files, for technicians
//! trying Kuroko on known traffic and for developers inspecting what the e2e tests see.
//!
//! `kuroko-scenario list` names the scenarios; `kuroko-scenario record --out DIR [NAME...]`
//! builds the site (network namespaces, as root), runs each scenario with tcpdump on the
//! mirror port and writes `DIR/<name>.pcap`. Nothing leaves the machine.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use kuroko_tests::scenarios::Scenario;
use kuroko_tests::site::Site;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "kuroko-scenario",
    about = "Record test-site scenarios to pcap files"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Lists the scenarios.
    List,
    /// Records scenarios (all when none is named), one pcap each.
    Record {
        #[arg(long)]
        out: PathBuf,
        /// Keep the site's work directory (server logs, keys) for inspection.
        #[arg(long)]
        keep: bool,
        names: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::List => {
            for s in Scenario::ALL {
                println!("{}", s.name());
            }
            Ok(())
        }
        Cmd::Record { out, keep, names } => {
            let scenarios: Vec<Scenario> = if names.is_empty() {
                Scenario::ALL.to_vec()
            } else {
                names
                    .iter()
                    .map(|n| {
                        Scenario::from_name(n).with_context(|| {
                            format!("no scenario named {n:?} (see `kuroko-scenario list`)")
                        })
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut site = Site::new()?;
            if keep {
                site.keep_work_dir();
                eprintln!("work directory: {}", site.work_dir().display());
            }
            let mut failed = 0;
            for s in scenarios {
                let pcap = out.join(format!("{}.pcap", s.name()));
                match kuroko_tests::record::record_on(&site, &[s], &pcap) {
                    Ok(()) => eprintln!("recorded {}", pcap.display()),
                    Err(e) => {
                        failed += 1;
                        eprintln!("FAILED {}: {e:#}", s.name());
                    }
                }
            }
            anyhow::ensure!(failed == 0, "{failed} scenario(s) failed");
            Ok(())
        }
    }
}
