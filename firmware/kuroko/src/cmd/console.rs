//! `kuroko console`: the front-panel TUI on this terminal.

use super::DataArgs;
use crate::console_source::DataDirSource;
use anyhow::Context;
use kuroko_model::finding::Lang;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Language of the screens (default: `[console] lang` of the config, else ja).
    #[arg(long)]
    pub lang: Option<Lang>,
    /// Draw with ASCII only (serial terminals without line-drawing characters).
    #[arg(long)]
    pub ascii: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let lang = match args.lang {
        Some(l) => l,
        None => config.console.lang.parse().unwrap_or_default(),
    };
    let ascii = args.ascii
        || config.console.ascii
        || std::env::var("TERM").is_ok_and(|t| t == "linux" || t == "vt100");
    if !args.data.data.is_dir() {
        anyhow::bail!(
            "{} is not a data directory; capture or import first (kuroko capture / kuroko import)",
            args.data.data.display()
        );
    }
    let mut app = kuroko_console::App::new(lang, ascii);
    if let Ok(tz) = config.site.tz() {
        app.tz = tz;
    }
    app.vpn = config.site.vpn();
    app.operator = operator();
    let source = DataDirSource::new(&args.data.data, config, lang);
    kuroko_console::event_loop::run(source, app).context("console terminal")
}

/// Who acknowledges alarms at this console, for the alarm log: the terminal it runs on
/// (the front panel's tty, a serial line, an ssh pty) and the user, when known.
pub fn operator() -> String {
    let tty = std::fs::read_link("/proc/self/fd/0")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "unknown terminal".into());
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(u) if !u.is_empty() => format!("console on {tty} (user {u})"),
        _ => format!("console on {tty}"),
    }
}
