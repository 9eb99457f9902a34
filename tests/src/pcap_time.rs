//! Moving a recording in time, so the same traffic lands inside or outside business hours.
//!
//! Recordings are made now; the business-hours rule needs them on a chosen weekday at a
//! chosen hour in the site's time zone. `editcap -t <delta>` shifts every timestamp by the
//! same amount, which keeps the traffic itself untouched.

use anyhow::{Context, bail};
use std::path::Path;

/// Timestamp (Unix seconds, with fraction) of the first packet of a classic pcap file.
pub fn first_packet_time(pcap: &Path) -> anyhow::Result<f64> {
    let bytes = std::fs::read(pcap).with_context(|| format!("cannot read {}", pcap.display()))?;
    if bytes.len() < 24 + 16 {
        bail!("{} holds no packet", pcap.display());
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => bail!(
            "{} is not a classic pcap file (magic {magic:02x?})",
            pcap.display()
        ),
    };
    let word = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let secs = f64::from(word(24));
    let frac = f64::from(word(28)) / if nanos { 1e9 } else { 1e6 };
    Ok(secs + frac)
}

/// Writes `out`: `input` shifted so that its first packet is at `target_unix` (seconds).
pub fn shift_to(input: &Path, out: &Path, target_unix: i64) -> anyhow::Result<()> {
    let first = first_packet_time(input)?;
    let delta = target_unix as f64 - first.floor();
    let delta_s = format!("{delta:.0}");
    let (i, o) = (
        input.to_str().context("pcap path is not UTF-8")?,
        out.to_str().context("pcap path is not UTF-8")?,
    );
    crate::proc::sh_in("", &["editcap", "-F", "pcap", "-t", &delta_s, i, o], 120)
        .context("editcap (from tshark's package) failed to shift the recording")?;
    Ok(())
}
