//! `kuroko capture` (the real binary) blinded on purpose: the capture interface taken down,
//! then deleted and re-created under the same name. `kuroko status --format json` must say
//! so (blind, alarms, the interface's link state) instead of "running, link up", recording
//! must resume on the re-created interface, and the exit summary must carry the gaps.
//!
//! The engine-level fault tests (CPU while down, exact loss accounting, coalesced frames)
//! are in `ring/capture/tests/faults_capture.rs`.

mod capture_common;

use capture_common::{CaptureSite, SRC_MAC, frame, read_store};
use kuroko_tests::proc::wait_until;
use serde_json::Value;
use std::time::Duration;

fn status_json(site: &CaptureSite) -> anyhow::Result<Value> {
    let bin = kuroko_tests::kuroko::binary()?;
    let data = site.data();
    let out = std::process::Command::new(bin)
        .args(["status", "--data"])
        .arg(&data)
        .args(["--format", "json"])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn status_table(site: &CaptureSite) -> anyhow::Result<String> {
    let bin = kuroko_tests::kuroko::binary()?;
    let out = std::process::Command::new(bin)
        .args(["status", "--data"])
        .arg(site.data())
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn alarm_kinds(capture: &Value) -> Vec<String> {
    capture["alarms"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ip(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn status_says_blind_while_the_link_is_down_or_gone_and_capture_resumes() -> anyhow::Result<()> {
    let site = CaptureSite::new("fcap")?;
    let mut server = site.start_capture(&["--json"])?;
    let first: Vec<Vec<u8>> = (0..20u16).map(|i| frame(1, i, 200, &[])).collect();
    site.tx
        .send_frames("vtx", &first, Duration::from_micros(200))?;
    site.wait_accounted(20)?;

    // Link down: blind, said so.
    ip(site.rx.name(), &["link", "set", "vrx", "down"])?;
    wait_until(
        "status to see the link down",
        Duration::from_secs(10),
        || status_json(&site).is_ok_and(|s| s["capture"]["blind"] == true),
    )?;
    let s = status_json(&site)?;
    let c = &s["capture"];
    assert_eq!(c["interfaces"][0]["link"]["state"], "down", "{c}");
    assert_eq!(c["interfaces"][0]["link_up"], false);
    assert!(alarm_kinds(c).contains(&"link_down".to_string()), "{c}");
    let table = status_table(&site)?;
    assert!(table.contains("BLIND"), "{table}");
    assert!(table.contains("LINK DOWN since"), "{table}");
    ip(site.rx.name(), &["link", "set", "vrx", "up"])?;

    // Deleted (both ends go), then re-created with the same names: a new ifindex.
    ip(site.rx.name(), &["link", "del", "vrx"])?;
    wait_until(
        "status to see the interface gone",
        Duration::from_secs(10),
        || {
            status_json(&site)
                .is_ok_and(|s| s["capture"]["interfaces"][0]["link"]["state"] == "gone")
        },
    )?;
    let c = status_json(&site)?["capture"].clone();
    assert_eq!(c["blind"], true);
    assert!(
        alarm_kinds(&c).contains(&"interface_gone".to_string()),
        "{c}"
    );
    let out = std::process::Command::new("ip")
        .args(["link", "add", "vtx", "mtu", "9000", "netns", site.tx.name()])
        .args([
            "type",
            "veth",
            "peer",
            "name",
            "vrx",
            "mtu",
            "9000",
            "netns",
            site.rx.name(),
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ip(site.tx.name(), &["link", "set", "vtx", "up"])?;
    ip(site.rx.name(), &["link", "set", "vrx", "up"])?;
    wait_until("capture to re-bind", Duration::from_secs(10), || {
        status_json(&site).is_ok_and(|s| {
            let c = &s["capture"];
            c["blind"] == false && c["interfaces"][0]["link"]["rebinds"] == 1
        })
    })?;
    let second: Vec<Vec<u8>> = (0..20u16).map(|i| frame(2, i, 200, &[])).collect();
    site.tx
        .send_frames("vtx", &second, Duration::from_micros(200))?;
    site.wait_accounted(40)?;
    server.stop_with(libc::SIGINT);
    let log = server.log_text();

    let ours = read_store(&site.data())?
        .iter()
        .filter(|f| f.data.len() >= 12 && f.data[6..12] == SRC_MAC)
        .count();
    assert_eq!(ours, 40, "frames before and after the re-creation stored");
    let summary: Value = log
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| anyhow::anyhow!("no JSON summary in: {log}"))?;
    let link = &summary["interfaces"][0]["link"];
    // The flap, and possibly the moment between the re-creation and `link set up` when a
    // tick saw the new interface down.
    assert!(
        (1..=2).contains(&link["down_events"].as_u64().unwrap_or(0)),
        "{summary}"
    );
    assert_eq!(link["gone_events"], 1, "{summary}");
    assert_eq!(link["rebinds"], 1, "{summary}");
    assert!(
        link["gone_seconds"].as_f64().unwrap_or(0.0) > 0.0,
        "{summary}"
    );
    Ok(())
}

/// Frames a re-created capture interface receives before the capture re-binds to it reach
/// no capture socket: they must be counted (`missed_before_rebind`), so that stored plus
/// counted losses equal every frame the interfaces received. Deterministic: the new `vrx`
/// is made in a scratch namespace, receives its frames there, and only then moves into the
/// capture's namespace (a move keeps its counters), where the capture finds it and re-binds.
#[test]
fn frames_received_before_the_rebind_are_counted_as_missed() -> anyhow::Result<()> {
    let site = CaptureSite::new("fmis")?;
    let mut server = site.start_capture(&["--json"])?;
    let first: Vec<Vec<u8>> = (0..15u16).map(|i| frame(1, i, 200, &[])).collect();
    site.tx
        .send_frames("vtx", &first, Duration::from_micros(200))?;
    site.wait_accounted(15)?;

    ip(site.rx.name(), &["link", "del", "vrx"])?;
    wait_until(
        "status to see the interface gone",
        Duration::from_secs(10),
        || {
            status_json(&site)
                .is_ok_and(|s| s["capture"]["interfaces"][0]["link"]["state"] == "gone")
        },
    )?;
    let scratch = kuroko_tests::netns::Netns::create("fmiss")?;
    scratch.disable_ipv6()?;
    let _new = kuroko_tests::netns::veth(Some(&site.tx), "vtx", Some(&scratch), "vrx", 9000)?;
    let early: Vec<Vec<u8>> = (0..23u16).map(|i| frame(3, i, 300, &[])).collect();
    site.tx
        .send_frames("vtx", &early, Duration::from_micros(200))?;
    let rx_early: u64 = String::from_utf8_lossy(
        &scratch
            .run(&["cat", "/sys/class/net/vrx/statistics/rx_packets"])?
            .stdout,
    )
    .trim()
    .parse()?;
    assert_eq!(rx_early, 23, "the new interface received the early frames");
    ip(
        scratch.name(),
        &["link", "set", "vrx", "netns", site.rx.name()],
    )?;
    ip(site.rx.name(), &["link", "set", "vrx", "up"])?;
    wait_until("capture to re-bind", Duration::from_secs(10), || {
        status_json(&site).is_ok_and(|s| s["capture"]["interfaces"][0]["link"]["rebinds"] == 1)
    })?;
    let c = status_json(&site)?["capture"].clone();
    assert_eq!(c["drops"]["missed_before_rebind"], 23, "{c}");
    assert_eq!(
        c["interfaces"][0]["drops"]["missed_before_rebind"], 23,
        "{c}"
    );
    let table = status_table(&site)?;
    assert!(table.contains("missed before rebind 23"), "{table}");

    let after: Vec<Vec<u8>> = (0..17u16).map(|i| frame(4, i, 200, &[])).collect();
    site.tx
        .send_frames("vtx", &after, Duration::from_micros(200))?;
    site.wait_accounted(15 + 23 + 17)?;
    server.stop_with(libc::SIGINT);
    let log = server.log_text();
    let stored = read_store(&site.data())?;
    assert_eq!(stored.len(), 15 + 17, "frames before and after stored");
    let summary: Value = log
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| anyhow::anyhow!("no JSON summary in: {log}"))?;
    let drops = &summary["drops"];
    assert_eq!(drops["missed_before_rebind"], 23, "{summary}");
    // Every frame either interface incarnation received: stored, or lost under a cause.
    assert_eq!(
        summary["packets"].as_u64().unwrap_or(0) + drops["total"].as_u64().unwrap_or(0),
        15 + 23 + 17,
        "{summary}"
    );
    Ok(())
}
