//! Recording the mirror port to a pcap while scenarios run (tcpdump, like a technician would).
//!
//! tcpdump writes packet-buffered (`-U`) in immediate mode (without it, libpcap's TPACKET_V3
//! ring hands over a block only when it is full or its timeout expires, and the last second
//! of traffic is lost on SIGINT), is stopped with SIGINT, which makes it flush and close the
//! file, and we wait for it to exit before anyone reads the pcap.

use crate::proc::Server;
use crate::scenarios::Scenario;
use crate::site::{MIRROR_IFACE, Site};
use anyhow::{Context, bail};
use std::path::Path;
use std::time::Duration;

/// Time the last frames need to cross the mirror before the capture is stopped.
const DRAIN: Duration = Duration::from_millis(400);

/// A running tcpdump on the site's mirror port.
pub struct Recorder {
    tcpdump: Server,
}

impl Recorder {
    pub fn start(site: &Site, out: &Path) -> anyhow::Result<Recorder> {
        let out_s = out.to_str().context("pcap path is not UTF-8")?;
        let name = format!(
            "tcpdump-{}",
            out.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("capture")
        );
        let log = site.work_dir().join(format!("{name}.log"));
        let mut tcpdump = Server::spawn(
            &name,
            site.switch_ns(),
            &[
                "tcpdump",
                "-i",
                MIRROR_IFACE,
                "-n",
                "-s",
                "0",
                "-U",
                "--immediate-mode",
                "-B",
                "65536",
                // Keep root: the pcap goes to a root-owned temp directory.
                "-Z",
                "root",
                "-w",
                out_s,
            ],
            &log,
        )?;
        crate::proc::wait_until(
            "tcpdump to start listening",
            Duration::from_secs(10),
            || tcpdump.log_text().contains("listening on") || tcpdump.ensure_running().is_err(),
        )?;
        tcpdump.ensure_running()?;
        Ok(Recorder { tcpdump })
    }

    /// Stops tcpdump cleanly (SIGINT) and waits until the pcap is complete.
    pub fn stop(mut self) -> anyhow::Result<()> {
        std::thread::sleep(DRAIN);
        match self.tcpdump.stop_with(libc::SIGINT) {
            Some(_) => Ok(()),
            None => bail!(
                "tcpdump did not exit on SIGINT; its output:\n{}",
                self.tcpdump.log_text()
            ),
        }
    }
}

/// Runs `scenarios` on a fresh site while recording its mirror port to `out_pcap`.
pub fn record(scenarios: &[Scenario], out_pcap: &Path) -> anyhow::Result<()> {
    let site = Site::new()?;
    record_on(&site, scenarios, out_pcap)
}

/// Like [`record`], on an existing site.
pub fn record_on(site: &Site, scenarios: &[Scenario], out_pcap: &Path) -> anyhow::Result<()> {
    let rec = Recorder::start(site, out_pcap)?;
    for s in scenarios {
        s.run(site)
            .with_context(|| format!("scenario {} failed", s.name()))?;
    }
    rec.stop()
}
