//! Persistent login back-off for the technician shell.
//!
//! Three wrong passwords in a session used to cost 6 s and a respawn, and a restart
//! forgot everything (≈36,000 guesses a day). Wrong passwords are now counted in a small
//! file next to the credential (`technician.backoff`), written before the shell answers,
//! so neither a respawn nor a reboot resets it. After [`FREE_FAILURES`] wrong passwords
//! every further one doubles the wait before the next try, up to [`MAX_WAIT_SECS`]; a
//! correct password clears it. A damaged or unreadable file counts as [`FREE_FAILURES`]
//! failures (a wait, never a permanent lockout).

use std::path::{Path, PathBuf};

/// Wrong passwords before any wait beyond the per-try delay.
pub const FREE_FAILURES: u32 = 3;
/// First wait after the free failures; doubles with each further one.
pub const FIRST_WAIT_SECS: i64 = 30;
/// The wait never grows beyond one hour (≈ 24 guesses a day at worst for an attacker).
pub const MAX_WAIT_SECS: i64 = 3600;

/// The back-off file beside `credential`.
pub fn path_for(credential: &Path) -> PathBuf {
    credential.with_file_name("technician.backoff")
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Wrong passwords since the last correct one.
    pub failures: u32,
    /// Unix seconds of the last wrong password.
    pub last_failure: i64,
}

impl Backoff {
    /// Reads the file (missing: no failures).
    pub fn load(path: &Path) -> Backoff {
        match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Backoff::default(),
            Err(_) => Backoff {
                failures: FREE_FAILURES,
                last_failure: 0,
            },
            Ok(text) => {
                let mut it = text.split_whitespace().map(str::parse::<i64>);
                match (it.next(), it.next()) {
                    (Some(Ok(f)), Some(Ok(t))) if f >= 0 => Backoff {
                        failures: f.min(i64::from(u32::MAX)) as u32,
                        last_failure: t,
                    },
                    _ => Backoff {
                        failures: FREE_FAILURES,
                        last_failure: 0,
                    },
                }
            }
        }
    }

    /// Seconds to wait at `now` before the next password is accepted.
    pub fn wait_secs(&self, now: i64) -> i64 {
        if self.failures < FREE_FAILURES {
            return 0;
        }
        let doublings = (self.failures - FREE_FAILURES).min(16);
        let wait = (FIRST_WAIT_SECS << doublings).min(MAX_WAIT_SECS);
        // A clock set backwards does not shorten the wait below a full one.
        let since = now.saturating_sub(self.last_failure).max(0);
        if now < self.last_failure {
            return wait;
        }
        (wait - since).max(0)
    }

    /// Records one wrong password at `now` and saves it (atomically, mode 0600).
    pub fn record_failure(&mut self, path: &Path, now: i64) -> std::io::Result<()> {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        kuroko_model::config::write_atomic(
            path,
            format!("{} {}\n", self.failures, self.last_failure).as_bytes(),
        )
    }

    /// A correct password: the count starts over.
    pub fn clear(path: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_and_survive_a_reload() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("technician.backoff");
        let mut b = Backoff::load(&p);
        for i in 0..FREE_FAILURES {
            assert_eq!(b.wait_secs(1000 + i64::from(i)), 0);
            b.record_failure(&p, 1000).unwrap();
        }
        assert_eq!(Backoff::load(&p).wait_secs(1000), FIRST_WAIT_SECS);
        assert_eq!(Backoff::load(&p).wait_secs(1010), FIRST_WAIT_SECS - 10);
        let mut b = Backoff::load(&p);
        b.record_failure(&p, 2000).unwrap();
        assert_eq!(Backoff::load(&p).wait_secs(2000), 2 * FIRST_WAIT_SECS);
        for _ in 0..40 {
            b.record_failure(&p, 3000).unwrap();
        }
        assert_eq!(Backoff::load(&p).wait_secs(3000), MAX_WAIT_SECS);
        assert_eq!(
            Backoff::load(&p).wait_secs(100),
            MAX_WAIT_SECS,
            "clock set back"
        );
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(Backoff::load(&p).failures, FREE_FAILURES);
        Backoff::clear(&p).unwrap();
        assert_eq!(Backoff::load(&p), Backoff::default());
    }
}
