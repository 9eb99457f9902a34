//! One module per subcommand. Shared option groups (`--data`, `--config`) live here so that
//! every command spells them the same way.

pub mod analyze;
pub mod assets;
pub mod capture;
pub mod conditions;
pub mod console;
pub mod content;
pub mod decommission;
pub mod export;
pub mod findings;
pub mod import;
pub mod intel;
pub mod pcap;
pub mod report;
pub mod run;
pub mod search;
pub mod setup;
pub mod status;
pub mod update;
pub mod user;
pub mod web;
pub mod yara;

use std::path::PathBuf;

/// A specific exit status for errors that scripts tell apart (default is 1).
#[derive(Debug)]
pub struct ExitCode(pub i32);

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}
impl std::error::Error for ExitCode {}

/// Creates the data directory `data` if needed; a path that exists and is not a directory
/// (a FIFO, a device, a file) is a clear error, not "File exists".
pub fn create_data_dir(data: &std::path::Path) -> anyhow::Result<()> {
    if let Ok(m) = std::fs::metadata(data)
        && !m.is_dir()
    {
        let what = kuroko_ring::layout::special_kind(&m.file_type()).unwrap_or("a regular file");
        anyhow::bail!(
            "{} is not a directory (it is {what}); --data must name the data directory",
            data.display()
        );
    }
    std::fs::create_dir_all(data)
        .map_err(|e| anyhow::anyhow!("cannot create the data directory {}: {e}", data.display()))
}

/// `--data DIR` and `--config FILE`, taken by every command that touches a data directory.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Data directory (segments, index, findings). Created on first use.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl DataArgs {
    /// Loads the configuration named by `--config`, or the defaults, with every check
    /// (`crate::config_check`): a bad config stops every command at load, naming the file,
    /// the line and the key.
    pub fn load_config(&self) -> anyhow::Result<kuroko_model::config::Config> {
        match &self.config {
            Some(path) => Ok(crate::config_check::load(path)?),
            None => Ok(kuroko_model::config::Config::default()),
        }
    }
}
