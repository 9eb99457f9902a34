//! Conformance: queries over a capture of real clients and servers, with the expected
//! session counts derived independently by tshark from the same pcap.
//!
//! `fixtures/scenarios.pcap` was recorded on the test site of `tests/` (`kuroko-scenario
//! record`): curl through a CONNECT proxy to ports 443 and 5228, office web/DNS/mail,
//! swaks mail with attachments (one phishing mail with a Japanese subject), lftp/pyftpdlib
//! FTP, OpenSSH, telnet, curl exploit attempts. The test runs the real `kuroko` binary:
//! import → analyze → `search --count` and `pcap --query`, and compares with tshark.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios.pcap")
}

/// The `kuroko` binary: `$KUROKO_BIN`, else built with cargo (the workspace's target dir).
fn kuroko_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KUROKO_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "--quiet", "-p", "kuroko"])
        .current_dir(&root)
        .status()
        .expect("run cargo build -p kuroko");
    assert!(st.success(), "cargo build -p kuroko failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root.join(d) })
        .unwrap_or_else(|| root.join("target"));
    target.join("debug/kuroko")
}

fn run(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run kuroko");
    assert!(
        out.status.success(),
        "kuroko {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tshark_lines(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark is installed (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark -Y {filter}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Sessions in tshark's terms: distinct TCP streams plus distinct UDP flows (either
/// direction) among the packets the display filter keeps.
fn tshark_sessions(pcap: &Path, filter: &str) -> usize {
    let mut tcp = BTreeSet::new();
    let mut udp = BTreeSet::new();
    for l in tshark_lines(
        pcap,
        filter,
        &[
            "tcp.stream",
            "ip.src",
            "udp.srcport",
            "ip.dst",
            "udp.dstport",
        ],
    ) {
        let f: Vec<&str> = l.split('|').collect();
        if !f[0].is_empty() {
            tcp.insert(f[0].to_string());
        } else if !f[2].is_empty() {
            let a = (f[1].to_string(), f[2].to_string());
            let b = (f[3].to_string(), f[4].to_string());
            udp.insert(if a <= b { (a, b) } else { (b, a) });
        }
    }
    tcp.len() + udp.len()
}

/// (our query, tshark display filter selecting the same sessions)
const CASES: &[(&str, &str)] = &[
    ("*", "(tcp.flags.syn == 1 && tcp.flags.ack == 0) || udp"),
    ("transport:tcp", "tcp"),
    ("protocol:dns", "dns"),
    ("method:CONNECT", r#"http.request.method == "CONNECT""#),
    (
        r#"(protocol:http OR protocol:https) AND NOT(url:(":443" ":80")) AND (method:CONNECT)"#,
        r#"http.request.method == "CONNECT" && !(http.request.uri contains ":443") && !(http.request.uri contains ":80")"#,
    ),
    ("protocol:http", "http.request"),
    ("protocol:http AND status:200", "http.response.code == 200"),
    (
        "protocol:http AND NOT method:CONNECT",
        r#"http.request && http.request.method != "CONNECT""#,
    ),
    (r#"url:"passwd""#, r#"http.request.uri contains "passwd""#),
    ("protocol:smtp", "smtp"),
    (r#"subject:"Minutes""#, r#"imf.subject contains "Minutes""#),
    (
        "attachment:*",
        r#"mime_multipart.header.content-disposition contains "attachment""#,
    ),
    (
        "protocol:https",
        "tls.handshake.type == 1 && tcp.dstport == 443 && !(tcp.port == 3128)",
    ),
    ("server_port:22", "tcp.dstport == 22"),
    ("version:*openssh*", r#"ssh.protocol contains "OpenSSH""#),
    (
        "protocol:ftp AND user:*",
        r#"ftp.request.command == "USER""#,
    ),
    ("protocol:ftp-data", "ftp-data"),
    (
        "client:198.51.100.0/24",
        "ip.src == 198.51.100.0/24 && ((tcp.flags.syn == 1 && tcp.flags.ack == 0) || udp)",
    ),
    (
        "server:10.10.2.0/24 AND NOT port:53",
        "ip.dst == 10.10.2.0/24 && tcp.flags.syn == 1 && tcp.flags.ack == 0",
    ),
];

#[test]
fn search_counts_match_tshark_on_real_traffic() {
    let bin = kuroko_bin();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let pcap = fixture();
    run(&bin, &["import", "--data", data_s, pcap.to_str().unwrap()]);
    run(&bin, &["analyze", "--data", data_s]);
    for (q, filter) in CASES {
        let want = tshark_sessions(&pcap, filter);
        let got: usize = run(&bin, &["search", "--data", data_s, "--count", q])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(got, want, "query {q} vs tshark -Y '{filter}'");
        assert!(
            want > 0,
            "tshark finds nothing for {filter}: the case tests nothing"
        );
    }

    // pcap --query: the packets of the matching sessions, in time order
    for (q, filter) in [
        ("server_port:22", "tcp.port == 22"),
        ("method:CONNECT", "tcp.port == 3128"),
        ("protocol:dns", "dns"),
    ] {
        let out = dir.path().join("q.pcap");
        run(
            &bin,
            &[
                "pcap",
                "--data",
                data_s,
                "--query",
                q,
                "-w",
                out.to_str().unwrap(),
            ],
        );
        let got = tshark_lines(&out, "frame", &["frame.time_epoch"]);
        let want = tshark_lines(&pcap, filter, &["frame.time_epoch"]);
        assert_eq!(
            got.len(),
            want.len(),
            "pcap --query {q} vs tshark -Y '{filter}'"
        );
        let times: Vec<f64> = got.iter().map(|t| t.parse().unwrap()).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "packets of {q} out of time order"
        );
    }

    // jsonl reproduces the analyzer's session records exactly
    let from_search = run(
        &bin,
        &[
            "search", "--data", data_s, "--format", "jsonl", "--limit", "1000", "*",
        ],
    );
    let mut a: Vec<serde_json::Value> = from_search
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut b: Vec<serde_json::Value> = Vec::new();
    for f in std::fs::read_dir(data.join("sessions")).unwrap().flatten() {
        if f.path().extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        for l in std::fs::read_to_string(f.path()).unwrap().lines() {
            b.push(serde_json::from_str(l).unwrap());
        }
    }
    let key = |v: &serde_json::Value| v["id"].as_str().unwrap().to_string();
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a, b);
}

#[test]
fn bad_query_is_an_error_with_a_caret() {
    let bin = kuroko_bin();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    run(
        &bin,
        &["import", "--data", data_s, fixture().to_str().unwrap()],
    );
    run(&bin, &["analyze", "--data", data_s]);
    let out = Command::new(&bin)
        .args(["search", "--data", data_s, "protocol:http AND (hots:x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("column 20"), "{err}");
    assert!(err.contains("unknown field `hots`"), "{err}");
    assert!(
        err.lines().any(|l| l == format!("  {}^", " ".repeat(19))),
        "{err}"
    );
}
