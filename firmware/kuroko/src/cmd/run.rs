//! `kuroko run`: appliance mode.
//!
//! A small supervisor: capture runs as its own child process (the only one that needs
//! CAP_NET_RAW, and it keeps capturing whatever happens to the rest), the analyzer runs as
//! a low-priority child that follows the store (`kuroko analyze --follow`, which also feeds
//! the index, detections and alerts), and the console runs in the foreground when there is
//! a terminal. A child that dies is restarted with a growing back-off; SIGINT/SIGTERM (or
//! `q` in the console) stops everything cleanly, capture last so it seals its segment.
//! The web console (`kuroko web`) is a third child, on the management address (`[web]`).
//!
//! Privilege ([`crate::privilege`]): started as root, the children run as the dedicated
//! user (`--user`, `kuroko` on the appliance), with NoNewPrivs and a seccomp filter; the
//! analyzer has no capabilities at all, capture only what it needs to open its sockets
//! and silence its ports. The data directory is handed to that user at start; the config
//! is shared with its group (read-only) before each child starts. Landlock confines each
//! child's writes to the data directory (and the temporary directory, `/dev/null`, and for
//! capture its ports' sysctls).

use crate::privilege::{CAPTURE_CAPS, Policy, WriteScope};
use anyhow::{Context, bail};
use kuroko_model::finding::Lang;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;
use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest back-off between restarts of a crashed child.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the children's logs are checked against their budget.
const LOG_CHECK_EVERY: Duration = Duration::from_secs(10);
use crate::log_budget::MAX_LOG_BYTES;
/// How long capture gets to seal its segment after SIGINT before it is killed.
const CAPTURE_STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Data directory (default: `[storage] data_dir` of the config).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Capture interface; repeat for several (default: `[capture] interfaces`).
    #[arg(long = "iface", value_name = "IF")]
    pub iface: Vec<String>,
    /// Do not show the console even on a terminal (the appliance's service mode).
    #[arg(long)]
    pub no_console: bool,
    /// Stop after this many seconds (tests, demos).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// The unprivileged user capture and the analyzer run as (when started as root).
    #[arg(long, value_name = "NAME", default_value = "kuroko")]
    pub user: String,
    /// When `--user` does not exist, run the children as root without capabilities
    /// instead of refusing to start (never on an appliance).
    #[arg(long)]
    pub allow_root_children: bool,
}

/// One supervised child: how to start it, where its output goes, how often it died.
struct Supervised {
    name: &'static str,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    restarts: u32,
    next_start: Instant,
    /// User, capabilities and seccomp filter the child gets.
    policy: Arc<Policy>,
    /// The config file, shared read-only with the child's group before each start.
    config: PathBuf,
}

impl Supervised {
    fn start(&mut self, exe: &Path) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open the log {}", self.log.display()))?;
        if let Some(id) = &self.policy.identity {
            share_read_only(&self.config, id)?;
        }
        let mut cmd = Command::new(exe);
        crate::privilege::sys::confine(&mut cmd, self.policy.clone());
        let child = cmd
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// Reaps the child if it ended; returns its exit status then.
    fn reap(&mut self) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    fn backoff(&mut self) {
        self.restarts += 1;
        let secs = 1u64 << self.restarts.min(5);
        self.next_start = Instant::now() + Duration::from_secs(secs).min(MAX_BACKOFF);
    }

    /// SIGINT, then SIGKILL after `grace`.
    fn stop(&mut self, grace: Duration) {
        let Some(c) = self.child.as_mut() else { return };
        let pid = Pid::from_raw(c.id() as i32);
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        self.child = None;
    }
}

/// Lets `id`'s group read the config (root keeps owning it): the setup shell rewrites it
/// owner-only, so this is done again before every child start.
fn share_read_only(config: &Path, id: &crate::privilege::Identity) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(config, None, Some(id.gid))
        .and_then(|_| std::fs::set_permissions(config, std::fs::Permissions::from_mode(0o640)))
        .with_context(|| {
            format!(
                "cannot let user {} read the config {}",
                id.name,
                config.display()
            )
        })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = crate::config_check::load(&args.config)?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| config.storage.data_dir.clone());
    super::create_data_dir(&data)?;
    std::fs::create_dir_all(data.join("logs"))
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let interfaces = if args.iface.is_empty() {
        config.capture.interfaces.clone()
    } else {
        args.iface.clone()
    };
    if interfaces.is_empty() {
        bail!(
            "no capture interface: set `[capture] interfaces` in {} or pass --iface",
            args.config.display()
        );
    }
    let exe = std::env::current_exe().context("cannot find the kuroko binary")?;
    let identity = crate::privilege::resolve(&args.user, args.allow_root_children)?;
    if let Some(id) = &identity {
        crate::privilege::give_tree(&data, id)?;
    }
    let root = nix::unistd::geteuid().is_root();
    let capture_policy = Arc::new(Policy::new(
        identity.clone(),
        if root { CAPTURE_CAPS } else { &[] },
        &WriteScope::capture(&data),
    ));
    let analyzer_policy = Arc::new(Policy::new(identity, &[], &WriteScope::child(&data)));
    if let Err(why) = &analyzer_policy.writes {
        eprintln!(
            "kuroko run: the children's writes are not confined to {}: {why}",
            data.display()
        );
    }
    let config_arg = args.config.display().to_string();
    let data_arg = data.display().to_string();

    // Signals go to a waiting thread instead of killing us mid-write.
    let stop = Arc::new(AtomicBool::new(false));
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block().context("cannot block signals")?;
    {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if mask.wait().is_ok() {
                    stop.store(true, Ordering::SeqCst);
                }
            })?;
    }

    let mut capture_args = vec![
        "capture".to_string(),
        "--data".into(),
        data_arg.clone(),
        "--config".into(),
        config_arg.clone(),
    ];
    for i in &interfaces {
        capture_args.push("--iface".into());
        capture_args.push(i.clone());
    }
    let mut capture = Supervised {
        name: "capture",
        args: capture_args,
        log: data.join("logs/capture.log"),
        child: None,
        restarts: 0,
        next_start: Instant::now(),
        policy: capture_policy,
        config: args.config.clone(),
    };
    let mut analyzer = Supervised {
        name: "analyzer",
        args: vec![
            "analyze".into(),
            "--follow".into(),
            "--data".into(),
            data_arg.clone(),
            "--config".into(),
            config_arg.clone(),
        ],
        log: data.join("logs/analyzer.log"),
        child: None,
        restarts: 0,
        next_start: Instant::now() + Duration::from_secs(1),
        policy: analyzer_policy.clone(),
        config: args.config.clone(),
    };
    // The web console listens on the management address ([web] listen), never on a capture
    // interface; it reads the store and index like any other reader.
    let mut web = Supervised {
        name: "web",
        args: vec![
            "web".into(),
            "--data".into(),
            data_arg,
            "--config".into(),
            config_arg,
        ],
        log: data.join("logs/web.log"),
        child: None,
        restarts: 0,
        next_start: Instant::now() + Duration::from_secs(1),
        policy: analyzer_policy,
        config: args.config.clone(),
    };
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let console = !args.no_console && std::io::stdout().is_terminal();

    // The supervisor loop runs on its own thread so the console can own the terminal.
    let sup_stop = stop.clone();
    let supervisor = std::thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || -> anyhow::Result<()> {
            let log = |msg: String| {
                if !console {
                    eprintln!("kuroko run: {msg}");
                }
            };
            let mut next_log_check = Instant::now();
            while !sup_stop.load(Ordering::SeqCst) {
                if Instant::now() >= next_log_check {
                    next_log_check = Instant::now() + LOG_CHECK_EVERY;
                    for l in [&capture.log, &analyzer.log, &web.log] {
                        if let Err(e) = crate::log_budget::rotate_if_over(l, MAX_LOG_BYTES) {
                            log(format!("cannot rotate {}: {e}", l.display()));
                        }
                    }
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    sup_stop.store(true, Ordering::SeqCst);
                    break;
                }
                if let Some(status) = capture.reap() {
                    log(format!(
                        "capture exited ({status}); restarting, see {}",
                        capture.log.display()
                    ));
                    capture.backoff();
                }
                if capture.child.is_none() && Instant::now() >= capture.next_start {
                    capture.start(&exe)?;
                }
                if let Some(status) = analyzer.reap() {
                    log(format!(
                        "analyzer exited ({status}); restarting, see {}",
                        analyzer.log.display()
                    ));
                    analyzer.backoff();
                }
                if analyzer.child.is_none() && Instant::now() >= analyzer.next_start {
                    analyzer.start(&exe)?;
                }
                if let Some(status) = web.reap() {
                    log(format!(
                        "web console exited ({status}); restarting, see {}",
                        web.log.display()
                    ));
                    web.backoff();
                }
                if web.child.is_none() && Instant::now() >= web.next_start {
                    web.start(&exe)?;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Web and analyzer first (they only read), then capture, which seals its open block.
            web.stop(Duration::from_secs(2));
            analyzer.stop(Duration::from_secs(5));
            capture.stop(CAPTURE_STOP_GRACE);
            Ok(())
        })?;

    if console {
        let lang: Lang = config.console.lang.parse().unwrap_or_default();
        let mut app = kuroko_console::App::new(lang, config.console.ascii);
        if let Ok(tz) = config.site.tz() {
            app.tz = tz;
        }
        app.operator = super::console::operator();
        let source = crate::console_source::DataDirSource::new(&data, config, lang);
        let result = kuroko_console::event_loop::run_until(source, app, &stop);
        stop.store(true, Ordering::SeqCst);
        result.context("console terminal")?;
    }
    supervisor
        .join()
        .map_err(|_| anyhow::anyhow!("the supervisor thread panicked"))??;
    Ok(())
}
