//! The test site itself: hosts reach each other across the switch, and the mirror port sees
//! every frame exactly once.

use kuroko_tests::record::Recorder;
use kuroko_tests::site::{EXT, PC, Site};

/// Counts the frames tshark finds in `pcap` for `filter`.
fn count(pcap: &std::path::Path, filter: &str) -> usize {
    let out = std::process::Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn site_mirror_sees_every_frame_once() {
    let mut site = Site::new().expect("test site");
    if std::env::var_os("KT_KEEP").is_some() {
        site.keep_work_dir();
    }
    let pcap = site.work_dir().join("ping.pcap");
    let rec = Recorder::start(&site, &pcap).expect("tcpdump on the mirror port");
    // Five pings from an inside PC to an outside host: each request and each reply crosses
    // the switch once, so the mirror must show exactly five of each (no duplicates from the
    // egress port, none lost).
    site.sh(PC, &["busybox", "ping", "-c", "5", "-W", "2", EXT.ip], 20)
        .expect("ping across the switch");
    rec.stop().expect("tcpdump stops");
    let req = format!(
        "icmp.type == 8 && ip.src == {} && ip.dst == {}",
        PC.ip, EXT.ip
    );
    let rep = format!(
        "icmp.type == 0 && ip.src == {} && ip.dst == {}",
        EXT.ip, PC.ip
    );
    assert_eq!(count(&pcap, &req), 5, "echo requests on the mirror");
    assert_eq!(count(&pcap, &rep), 5, "echo replies on the mirror");
    // The hosts' MACs show their addresses (easy to read in Wireshark).
    assert_eq!(
        count(&pcap, "eth.src == 02:00:0a:0a:01:0a"),
        5 + count(&pcap, "arp && eth.src == 02:00:0a:0a:01:0a")
    );
}
