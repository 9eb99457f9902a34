//! The asset inventory rides on the findings store: committed with the findings and the
//! session-log position, so a crash neither loses nor double-counts a session.

mod common;

use common::*;
use kuroko_detect::{Detector, load_assets, run_pending};
use kuroko_model::Timestamp;
use kuroko_model::config::Config;
use kuroko_model::sessionlog::SessionLogWriter;

fn sessions_on_port_23(data: &std::path::Path) -> u64 {
    load_assets(data)
        .unwrap()
        .hosts
        .get(&"10.0.3.1".parse().unwrap())
        .and_then(|h| h.services.iter().find(|s| s.port == 23).map(|s| s.sessions))
        .unwrap_or(0)
}

#[test]
fn a_crash_between_batches_neither_loses_nor_double_counts_inventory_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut w = SessionLogWriter::open(&data.join("sessions")).unwrap();
    for i in 0..10 {
        let t = Timestamp(office_hours().nanos() + i * 1_000_000_000);
        w.append(&telnet(&format!("tn{i}"), "10.0.0.5", "10.0.3.1", t))
            .unwrap();
    }
    w.sync().unwrap();
    drop(w);
    let mut d = Detector::open(data, &Config::default())
        .unwrap()
        .with_batch(4);
    d.catch_up_then_crash(6).unwrap();
    drop(d);
    assert_eq!(sessions_on_port_23(data), 4, "only the committed batch");
    run_pending(data, &Config::default()).unwrap();
    assert_eq!(sessions_on_port_23(data), 10);
    run_pending(data, &Config::default()).unwrap();
    assert_eq!(
        sessions_on_port_23(data),
        10,
        "a rerun counts nothing twice"
    );

    // Switched off: nothing new is learned, what was learned stays.
    let mut off = Config::default();
    off.assets.enabled = false;
    let mut w = SessionLogWriter::open(&data.join("sessions")).unwrap();
    w.append(&telnet("tn10", "10.0.0.5", "10.0.3.1", office_hours()))
        .unwrap();
    w.sync().unwrap();
    drop(w);
    run_pending(data, &off).unwrap();
    assert_eq!(sessions_on_port_23(data), 10);
}
