//! The console on a real terminal (tmux) while the store is being written: `kuroko run`
//! captures the test site's mirror port; we make traffic with real clients and watch the
//! health numbers move, a finding appear, and a query return the session.

use kuroko_tests::scenarios::Scenario;
use kuroko_tests::site::{MIRROR_IFACE, Site, require_root_and_tools};
use kuroko_tests::tmux::Tmux;
use std::time::Duration;

#[test]
fn console_follows_a_live_store() -> anyhow::Result<()> {
    require_root_and_tools()?;
    let bin = kuroko_tests::kuroko::binary()?;
    let site = Site::new()?;
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let config = tmp.path().join("kuroko.toml");
    std::fs::write(
        &config,
        format!(
            "[site]\nname = \"Console test\"\ninternal_networks = [\"10.10.0.0/16\"]\n\
             [storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\n\
             [capture]\ninterfaces = [\"{MIRROR_IFACE}\"]\nring_size = \"8MiB\"\n\
             [console]\nlang = \"en\"\nascii = true\n"
        ),
    )?;
    let cmd = format!(
        "ip netns exec {} {} run --config {} --data {} --allow-root-children",
        site.switch_ns(),
        bin.display(),
        config.display(),
        data.display()
    );
    let t = Tmux::start(&cmd, 100, 30)?;
    t.wait_for("CAPTURING", Duration::from_secs(30))?;

    // Health numbers move while traffic flows.
    Scenario::Office.run(&site)?;
    let moving = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        t.capture().is_ok_and(|s| {
            s.lines()
                .find(|l| l.contains(MIRROR_IFACE) && l.contains("UP"))
                .and_then(|l| l.split_whitespace().nth(3))
                .is_some_and(|pps| pps != "0" && pps != "-")
        })
    });
    let screen = t.capture()?;
    assert!(moving, "packets/s never moved on {MIRROR_IFACE}:\n{screen}");

    // The store writer's backlog comes from the capture's stats page: a byte figure with
    // its blocks in flight, not "-".
    t.wait_until("a published writer backlog", Duration::from_secs(10), |s| {
        s.lines()
            .find(|l| l.contains("Writer backlog"))
            .is_some_and(|l| l.contains("B  (in flight ") && l.contains(", buffered "))
    })?;

    // The Disk screen: a live write rate, and the health of the disk under the data
    // directory as this machine exposes it (or why there is none).
    t.key("2")?;
    let found = kuroko_board::DataDisks::discover(&data);
    t.wait_until("the data disk's health", Duration::from_secs(10), |s| {
        let rate = s
            .lines()
            .find(|l| l.contains("Write rate"))
            .is_some_and(|l| l.contains("/s"));
        let disks = match (&found.device, found.disks.first()) {
            (Some(dev), Some(d)) => {
                s.contains(&format!(" {dev}  fs errors "))
                    && s.lines()
                        .any(|l| l.contains(&d.name) && l.contains("util "))
            }
            _ => s.contains("no block device"),
        };
        rate && disks
    })?;
    t.key("1")?;

    // `kuroko status` has the same live counters, from the capture's stats page.
    let out = std::process::Command::new(&bin)
        .args(["status", "--format", "json", "--data"])
        .arg(&data)
        .output()?;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(
        status["writer"]["present"] == true
            && status["writer"]["packets_written"].as_u64().unwrap_or(0) > 0,
        "live writer counters: {}",
        status["writer"]
    );
    assert!(
        status["writer"]["pool_bytes"].as_u64().unwrap_or(0) > 0,
        "{}",
        status["writer"]
    );

    // A finding appears on the Detections screen.
    Scenario::Telnet.run(&site)?;
    t.key("3")?;
    if let Err(e) = t.wait_for("Telnet in use", Duration::from_secs(60)) {
        let log =
            |name: &str| std::fs::read_to_string(data.join("logs").join(name)).unwrap_or_default();
        let status = std::process::Command::new(&bin)
            .args(["status", "--data"])
            .arg(&data)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if let Some(keep) = std::env::var_os("KUROKO_KEEP_DATA") {
            let _ = std::process::Command::new("cp")
                .arg("-a")
                .arg(&data)
                .arg(keep)
                .status();
        }
        anyhow::bail!(
            "{e}\n--- analyzer.log\n{}\n--- capture.log\n{}\n--- status\n{status}",
            log("analyzer.log"),
            log("capture.log")
        );
    }

    // A query's results on the Search screen.
    t.type_text("/protocol:telnet")?;
    t.key("Enter")?;
    t.wait_until("a telnet session row", Duration::from_secs(30), |screen| {
        screen
            .lines()
            .any(|l| l.contains("telnet") && l.contains("10.10."))
    })?;
    // The 通信中 / Open screen answers from the same index (issue 15): its title with a
    // count, and either rows or "no sessions open", never an error.
    t.key("Escape")?;
    t.key("6")?;
    t.wait_until("the open sessions screen", Duration::from_secs(10), |s| {
        s.contains("Open sessions ") && (s.contains("no sessions open") || s.contains("Open for"))
    })?;
    t.key("q")?;
    // `q` stops everything: capture seals its segment and the pane's program exits.
    t.wait_until("the end of kuroko run", Duration::from_secs(30), |s| {
        !s.contains("CAPTURING")
    })?;
    Ok(())
}

/// Alarms on the front panel: a capture that stopped and a link that went down are shown on
/// the first screen in reverse video, latched (the link is back up, the alarm stays) until
/// `a` is pressed; the acknowledgment is logged with who and when and shown by
/// `kuroko status`; the same alarm happening again latches again. 80x24, no root needed.
#[test]
fn alarms_latch_until_acknowledged_at_the_panel() -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    let bin = kuroko_tests::kuroko::binary()?;
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data)?;
    let config = tmp.path().join("kuroko.toml");
    std::fs::write(
        &config,
        "[site]\nname = \"Alarm test\"\n[console]\nlang = \"en\"\nascii = true\n",
    )?;
    // A capture's stats page: the link went down once and is up again; the capture is
    // not heartbeating (stopped).
    let page = kuroko_capture::stats::StatsPage::create(&data, &[("eth9".into(), 9)])?;
    let link = page.link(0);
    link.down_events.store(1, Ordering::Relaxed);
    link.down_ns.store(4_000_000_000, Ordering::Relaxed);
    page.set_state(kuroko_capture::stats::layout::STATE_STOPPED);

    let status = || -> anyhow::Result<serde_json::Value> {
        let out = std::process::Command::new(&bin)
            .args(["status", "--format", "json", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(&data)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice::<serde_json::Value>(&out.stdout)?["alarms"].clone())
    };
    let cmd = format!(
        "{} console --config {} --data {}",
        bin.display(),
        config.display(),
        data.display()
    );
    let t = Tmux::start(&cmd, 80, 24)?;
    let screen = t.wait_for("!! LINK DOWN eth9", Duration::from_secs(30))?;
    assert!(screen.contains("!ALARM 2!"), "{screen}");
    assert!(screen.contains("!! CAPTURE STOPPED"), "{screen}");
    assert!(screen.contains("press a to acknowledge"), "{screen}");
    let a = status()?;
    assert_eq!(a["latched"], 2, "{a}");

    // Another screen still says so; `a` acknowledges and returns to Health.
    t.key("3")?;
    t.wait_for("!ALARM 2!", Duration::from_secs(5))?;
    t.key("a")?;
    let screen = t.wait_until("the acknowledgment", Duration::from_secs(10), |s| {
        !s.contains("!ALARM") && s.contains("LINK DOWN eth9: over") && s.contains("ack by")
    })?;
    assert!(screen.contains("ack by console on"), "{screen}");
    let a = status()?;
    assert_eq!(a["latched"], 0, "{a}");
    let acked: Vec<&serde_json::Value> = a["alarms"]
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    assert_eq!(acked.len(), 2, "{a}");
    for x in &acked {
        assert!(
            x["acknowledged_by"]
                .as_str()
                .is_some_and(|w| w.starts_with("console on ")),
            "{a}"
        );
        assert!(x["acknowledged_at"].is_string(), "{a}");
    }
    let log = std::fs::read_to_string(data.join("alarms/log.jsonl"))?;
    assert_eq!(log.matches("\"event\":\"ack\"").count(), 2, "{log}");

    // The link goes down again: latched again, on the panel and in status.
    link.down_events.store(2, Ordering::Relaxed);
    let screen = t.wait_for("!ALARM 1!", Duration::from_secs(10))?;
    assert!(screen.contains("!! LINK DOWN eth9"), "{screen}");
    let a = status()?;
    assert_eq!(a["latched"], 1, "{a}");
    t.key("q")?;
    Ok(())
}
