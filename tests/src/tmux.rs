//! A program on a real terminal: tmux runs it, `send-keys` types, `capture-pane` reads the
//! screen. The session is killed on drop.

use anyhow::{Context, bail};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    name: String,
}

fn tmux(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .context("cannot run tmux (apt-get install tmux)")?;
    if !out.status.success() {
        bail!("tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Tmux {
    /// Starts `command` in a new detached session of `width` x `height`.
    pub fn start(command: &str, width: u16, height: u16) -> anyhow::Result<Tmux> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "kt-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        tmux(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            // Keep the pane after the program exits so its last screen can be read.
            "-e",
            "TERM=xterm-256color",
            command,
        ])?;
        tmux(&["set-option", "-t", &name, "remain-on-exit", "on"])?;
        Ok(Tmux { name })
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) -> anyhow::Result<()> {
        tmux(&["send-keys", "-t", &self.name, "-l", text]).map(|_| ())
    }

    /// Sends a named key (`Enter`, `Tab`, `BSpace`, `Down`, …).
    pub fn key(&self, key: &str) -> anyhow::Result<()> {
        tmux(&["send-keys", "-t", &self.name, key]).map(|_| ())
    }

    pub fn capture(&self) -> anyhow::Result<String> {
        tmux(&["capture-pane", "-p", "-t", &self.name])
    }

    /// Waits until `ok` holds for the screen; the error names `what` and shows the screen.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture()?;
            if ok(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                bail!("{what} did not appear within {timeout:?}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen contains `text` (tmux drops trailing spaces of a line); the
    /// error shows the last screen.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture()?;
            if screen.contains(text) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                bail!("`{text}` did not appear within {timeout:?}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.name]);
    }
}
