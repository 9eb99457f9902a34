//! End to end through the live path, as on the appliance: `kuroko capture` on the switch
//! mirror port while real clients make traffic, stopped with SIGINT, then `kuroko analyze`
//! and `kuroko findings` (the e2e_rules tests go through `kuroko import` instead).

use kuroko_tests::kuroko::{DataDir, binary, site_config};
use kuroko_tests::proc::{Server, wait_until};
use kuroko_tests::scenarios::Scenario;
use kuroko_tests::site::{FILES, MIRROR_IFACE, PC, PROXY, Site};
use std::time::Duration;

#[test]
fn live_capture_on_the_mirror_port_yields_the_telnet_and_connect_findings() {
    let kuroko = binary().unwrap_or_else(|e| panic!("{e:#}"));
    let site = Site::new().unwrap_or_else(|e| panic!("{e:#}"));
    let data = DataDir::new("live", &site_config("Asia/Tokyo")).expect("data directory");
    let (k, d, c) = (
        kuroko.to_str().unwrap().to_string(),
        data.dir.to_str().unwrap().to_string(),
        data.config.to_str().unwrap().to_string(),
    );
    let log = site.work_dir().join("kuroko-capture.log");
    let mut capture = Server::spawn(
        "kuroko-capture",
        site.switch_ns(),
        &[
            &k,
            "capture",
            "--iface",
            MIRROR_IFACE,
            "--data",
            &d,
            "--config",
            &c,
        ],
        &log,
    )
    .expect("kuroko capture starts");
    let stats = data.dir.join("stats");
    wait_until("kuroko capture to start", Duration::from_secs(30), || {
        capture.ensure_running().is_err() || stats.exists()
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", capture.log_text()));
    capture.ensure_running().unwrap_or_else(|e| panic!("{e:#}"));
    std::thread::sleep(Duration::from_millis(300));

    for s in [Scenario::Telnet, Scenario::ConnectNonStandard] {
        s.run(&site)
            .unwrap_or_else(|e| panic!("scenario {}: {e:#}", s.name()));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = capture.stop_with(libc::SIGINT);
    assert!(
        status.is_some_and(|s| s.success()),
        "kuroko capture did not exit cleanly on SIGINT ({status:?}):\n{}",
        capture.log_text()
    );

    data.analyze().unwrap_or_else(|e| panic!("{e:#}"));
    let findings = data.findings().unwrap_or_else(|e| panic!("{e:#}"));
    let has = |rule: &str, client: &str, server: &str| {
        findings
            .iter()
            .any(|f| f["rule"] == rule && f["client"] == client && f["server"] == server)
    };
    assert!(
        has("telnet_use", PC.ip, FILES.ip),
        "findings: {findings:#?}"
    );
    assert!(
        has("http_connect_nonstandard_port", PC.ip, PROXY.ip),
        "findings: {findings:#?}"
    );
    // Nothing was lost on the way: `kuroko status` reports the capture without drops, and
    // every packet it counted was stored.
    let status = data
        .kuroko("status", &["--format", "json"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let status: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    let cap = &status["capture"];
    assert_eq!(cap["drops"]["total"], 0, "capture drops: {cap}");
    assert!(
        cap["packets"].as_u64().unwrap_or(0) > 0,
        "no packets captured: {cap}"
    );
}
