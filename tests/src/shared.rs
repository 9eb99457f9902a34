//! One site and one recording per scenario for a whole test binary.
//!
//! Building a site and running a scenario take seconds; a test binary asserts many things
//! about the same traffic. So the first test that needs a scenario records it (on a site
//! shared by the binary, one scenario at a time), and later tests reuse the pcap. Statics
//! are never dropped, so the site and the temporary files are removed by an `atexit`
//! handler when the test binary exits (normally, or after failed tests); set `KT_KEEP=1`
//! to keep the recordings and data directories for inspection.

use crate::scenarios::Scenario;
use crate::site::Site;
use anyhow::Context;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once, OnceLock};

static SITE: Mutex<Option<Site>> = Mutex::new(None);
static CLEANUP: Once = Once::new();

type Cell = Arc<OnceLock<Result<PathBuf, String>>>;
static RECORDINGS: Mutex<Option<HashMap<Scenario, Cell>>> = Mutex::new(None);

extern "C" fn cleanup_at_exit() {
    let site = match SITE.lock() {
        Ok(mut g) => g.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    drop(site);
    if std::env::var_os("KT_KEEP").is_none() {
        let prefix = format!("kt-{}-", std::process::id());
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

fn register_cleanup() {
    CLEANUP.call_once(|| {
        // SAFETY: atexit(3) only stores the function pointer; `cleanup_at_exit` is a plain
        // `extern "C" fn()` that does not unwind (it only drops and removes files).
        unsafe {
            libc::atexit(cleanup_at_exit);
        }
    });
}

/// Directory for this process's recordings.
pub fn recordings_dir() -> PathBuf {
    std::env::temp_dir().join(format!("kt-{}-recordings", std::process::id()))
}

/// The pcap of `scenario`, recorded on first use (on the binary's shared site).
pub fn recording(scenario: Scenario) -> anyhow::Result<PathBuf> {
    register_cleanup();
    let cell: Cell = {
        let mut g = RECORDINGS.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert_with(HashMap::new)
            .entry(scenario)
            .or_default()
            .clone()
    };
    cell.get_or_init(|| record_now(scenario).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn record_now(scenario: Scenario) -> anyhow::Result<PathBuf> {
    let dir = recordings_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let pcap = dir.join(format!("{}.pcap", scenario.name()));
    let mut guard = SITE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        let mut site = Site::new()?;
        if std::env::var_os("KT_KEEP").is_some() {
            site.keep_work_dir();
        }
        *guard = Some(site);
    }
    let site = guard.as_ref().context("no site")?;
    crate::record::record_on(site, &[scenario], &pcap)
        .with_context(|| format!("recording scenario {}", scenario.name()))?;
    Ok(pcap)
}
