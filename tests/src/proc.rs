//! Running the real tools: bounded commands and server processes that are always stopped.
//!
//! Every command the test site runs goes through here so that two promises hold everywhere:
//! nothing waits forever (`run` wraps the tool in coreutils `timeout`, `Server::stop` gives a
//! process a bounded grace period before SIGKILL), and nothing outlives the test (a `Server`
//! kills its process, by PID, when it is dropped — also while a panic unwinds).

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a server gets to exit after SIGTERM/SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Runs `argv` in network namespace `ns` (or the current one when `ns` is empty), killed after
/// `timeout_secs`. Returns the output whatever the exit status; see [`check`].
pub fn run_in(ns: &str, argv: &[&str], timeout_secs: u32) -> anyhow::Result<Output> {
    let mut cmd = Command::new(if ns.is_empty() { "timeout" } else { "ip" });
    if !ns.is_empty() {
        cmd.args(["netns", "exec", ns, "timeout"]);
    }
    cmd.args(["-k", "2", &timeout_secs.to_string()]).args(argv);
    cmd.stdin(Stdio::null());
    cmd.output()
        .with_context(|| format!("cannot start {argv:?} (is it installed? see .ci/packages.txt)"))
}

/// Fails with the command's stderr when it did not exit with status 0.
pub fn check(what: &str, out: Output) -> anyhow::Result<Output> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            if out.stderr.is_empty() {
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            } else {
                String::new()
            }
        );
    }
    Ok(out)
}

/// `run_in` + `check`.
pub fn sh_in(ns: &str, argv: &[&str], timeout_secs: u32) -> anyhow::Result<Output> {
    check(&format!("{argv:?}"), run_in(ns, argv, timeout_secs)?)
}

/// A process this crate started; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    /// Starts `argv` in namespace `ns` (empty: the current one), stdout and stderr to `log`.
    pub fn spawn(name: &str, ns: &str, argv: &[&str], log: &Path) -> anyhow::Result<Server> {
        let file = std::fs::File::create(log)
            .with_context(|| format!("cannot create log file {}", log.display()))?;
        let mut cmd = if ns.is_empty() {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        } else {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).args(argv);
            c
        };
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}: {argv:?}"))?;
        Ok(Server {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's output so far (for error messages and readiness checks).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails with the log when the process has already exited (it should be serving).
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(c) = self.child.as_mut()
            && let Some(status) = c.try_wait()?
        {
            bail!(
                "{} exited early ({status}); its output:\n{}",
                self.name,
                self.log_text()
            );
        }
        Ok(())
    }

    /// Sends `signal`, waits up to the grace period, then SIGKILLs. Returns the exit status
    /// when the process exited by itself within the grace period.
    pub fn stop_with(&mut self, signal: i32) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        // Our child, not yet reaped, so the PID cannot have been reused.
        signal_pid(child.id(), signal);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn stop(&mut self) {
        self.stop_with(libc::SIGTERM);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// kill(2) on one PID.
pub fn signal_pid(pid: u32, signal: i32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; the PID is positive so this never
    // signals a process group.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Polls `ready` every 50 ms until it returns true or `timeout` passes.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
