//! TCP/IP evasions (issue 14): what a session says must be what the protected host's
//! application read. Each test crafts the evasion (scapy or plain sockets, in a namespace
//! pair made for it) against a real Linux socket that records what it received, captures
//! the wire on the host's port, and compares the host's bytes with the sessions analyzed
//! from that capture.
//!
//! - `tcp_overlaps_syn_and_rst_inside_a_connection_resolve_as_the_linux_host_read_them`:
//!   nine crafted HTTP requests (`fixtures/evasion/craft.py tcp`) whose path bytes are sent
//!   twice with other content in overlapping segments (same start and longer, earlier
//!   start, later start, inside, in order over held bytes, over delivered bytes, same
//!   length), or that carry a SYN with a far-away ISN or a RST off the next sequence
//!   number inside the connection. Each session's request URI equals the one the host's
//!   application read; conflicts are flagged and counted in `kuroko status`; the `first`
//!   and `last` policies give their documented answers on the same capture, and a bad
//!   policy value is a config error naming the key.
//! - `a_foreign_pasv_address_does_not_make_an_unrelated_connection_ftp_data`: an FTP server
//!   whose PASV reply (and a client's EPRT) names a third address; a later, unrelated HTTP
//!   request to that address is parsed as HTTP (the URI the web server logged), the control
//!   session is flagged `foreign_data_address`, both announcements are counted.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::{DataDir, site_config, workspace_root};
use kuroko_tests::netns::{Netns, veth};
use kuroko_tests::proc::{Server, wait_until};
use kuroko_tests::scenarios::PYTHON;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn craft() -> anyhow::Result<String> {
    let p: PathBuf = workspace_root().join("tests/fixtures/evasion/craft.py");
    Ok(p.to_str().context("utf-8")?.to_string())
}

const CLIENT_MAC: &str = "02:00:0a:4e:00:01";
const SERVER_MAC: &str = "02:00:0a:4e:00:02";
/// The crafted connections' source: owned by no namespace, so the sender's kernel sends no
/// RST for connections it knows nothing of; the server reaches it through a fixed
/// neighbour entry (the client's MAC), where scapy reads the answers.
const SPOOFED: &str = "10.78.0.9";

/// Client and server namespaces joined by a veth pair, 10.78.0.1 and 10.78.0.2, offloads
/// off (every capture sees wire-sized packets, as on a mirror port).
struct Pair {
    client: Netns,
    server: Netns,
}

fn pair(tag: &str) -> anyhow::Result<Pair> {
    let client = Netns::create(&format!("{tag}c"))?;
    let server = Netns::create(&format!("{tag}s"))?;
    client.disable_ipv6()?;
    server.disable_ipv6()?;
    veth(Some(&client), "eth0", Some(&server), "eth0", 1500)?;
    for (ns, mac, ip) in [
        (&client, CLIENT_MAC, "10.78.0.1/24"),
        (&server, SERVER_MAC, "10.78.0.2/24"),
    ] {
        ns.run(&["ip", "link", "set", "eth0", "address", mac])?;
        ns.run(&[
            "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx",
            "off",
        ])?;
        ns.run(&["ip", "addr", "add", ip, "dev", "eth0"])?;
    }
    Ok(Pair { client, server })
}

/// A running tcpdump on the server's port writing `out`; stopped with SIGINT.
struct Capture(Server);

impl Capture {
    fn start(ns: &Netns, out: &Path, log: &Path) -> anyhow::Result<Capture> {
        let argv = [
            "tcpdump",
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-i",
            "eth0",
            "-w",
            out.to_str().context("utf-8")?,
            "tcp",
        ];
        let mut s = Server::spawn("tcpdump", ns.name(), &argv, log)?;
        wait_until("tcpdump to listen", Duration::from_secs(10), || {
            s.log_text().contains("listening on") || s.ensure_running().is_err()
        })?;
        s.ensure_running()?;
        Ok(Capture(s))
    }

    fn stop(mut self) -> anyhow::Result<()> {
        std::thread::sleep(Duration::from_millis(300));
        ensure!(
            self.0.stop_with(libc::SIGINT).is_some(),
            "tcpdump did not stop on SIGINT"
        );
        Ok(())
    }
}

fn spawn_ready(ns: &Netns, name: &str, argv: &[&str], log: &Path) -> anyhow::Result<Server> {
    let mut s = Server::spawn(name, ns.name(), argv, log)?;
    wait_until(name, Duration::from_secs(15), || {
        s.log_text().contains("ready") || s.ensure_running().is_err()
    })?;
    s.ensure_running()?;
    Ok(s)
}

/// One TCP session as the checks need it: its request URIs and its flags.
type UrisAndFlags = (Vec<String>, Vec<String>);

/// TCP sessions by client port.
fn by_client_port(sessions: &[Value]) -> BTreeMap<u64, Vec<UrisAndFlags>> {
    let mut out: BTreeMap<u64, Vec<_>> = BTreeMap::new();
    for s in sessions.iter().filter(|s| s["transport"] == "tcp") {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let uris = s["http"]["transactions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["uri"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.entry(s["client"]["port"].as_u64().unwrap_or(0))
            .or_default()
            .push((uris, strings(&s["flags"])));
    }
    out
}

fn analyzed(name: &str, extra_config: &str, pcap: &Path) -> anyhow::Result<(DataDir, Vec<Value>)> {
    let d = DataDir::new(
        name,
        &format!("{}\n{extra_config}", site_config("Asia/Tokyo")),
    )?;
    d.import(pcap)?;
    d.analyze()?;
    let s = d.session_log()?;
    Ok((d, s))
}

fn analyzer_counter(d: &DataDir, name: &str) -> anyhow::Result<u64> {
    let st: Value = serde_json::from_str(&d.kuroko("status", &["--format", "json"])?)?;
    st["analyzer"]["counters"][name]
        .as_u64()
        .with_context(|| format!("no analyzer counter {name} in status: {st}"))
}

#[test]
fn tcp_overlaps_syn_and_rst_inside_a_connection_resolve_as_the_linux_host_read_them()
-> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let w = |n: &str| work.path().join(n);
    let craft = craft()?;
    let p = pair("ev")?;
    p.server.run(&[
        "ip", "neigh", "add", SPOOFED, "lladdr", CLIENT_MAC, "dev", "eth0",
    ])?;
    let mut host = spawn_ready(
        &p.server,
        "host",
        &[PYTHON, &craft, "serve", "10.78.0.2", "8080"],
        &w("host.log"),
    )?;
    let pcap = w("evasion.pcap");
    let cap = Capture::start(&p.server, &pcap, &w("cap.log"))?;
    let out = p
        .client
        .run(&[PYTHON, &craft, "tcp", SPOOFED, "10.78.0.2", "8080"])?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("sent"),
        "craft.py tcp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the host to finish", Duration::from_secs(20), || {
        host.ensure_running().is_err()
    })?;
    cap.stop()?;

    // What the host's application read, per connection: the request URI.
    let mut read: BTreeMap<u64, String> = BTreeMap::new();
    for l in host.log_text().lines().filter(|l| *l != "ready") {
        let (port, hex) = l.split_once(' ').context("host log line")?;
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let uri = text.split(' ').nth(1).unwrap_or_default().to_string();
        read.insert(port.parse()?, uri);
    }
    ensure!(
        read.len() == 9,
        "the host read {} connections: {read:?}",
        read.len()
    );
    // Linux's answers, as the scenarios expect them (a change of kernel shows here first).
    ensure!(read[&41001] == "/aaaa22222222aaaa", "host: {read:?}");
    ensure!(read[&41008] == "/aaaabbbbbbbbaaaa", "host: {read:?}");
    ensure!(read[&41009] == "/aaaaccccccccaaaa", "host: {read:?}");

    // What the sessions say: one session per connection, with the URI the host read.
    let (d, sessions) = analyzed("evasion", "", &pcap)?;
    let got = by_client_port(&sessions);
    for (port, uri) in &read {
        let s = got.get(port).map(Vec::as_slice).unwrap_or_default();
        ensure!(
            s.len() == 1 && s[0].0 == [uri.clone()],
            "port {port}: the host read {uri}, the sessions say {s:?}"
        );
    }
    let flagged = |port: u64, flag: &str| got[&port][0].1.iter().any(|f| f == flag);
    for port in [41001, 41002, 41003, 41004, 41005, 41007] {
        ensure!(
            flagged(port, "overlap_conflict"),
            "port {port} not flagged: {:?}",
            got[&port]
        );
    }
    ensure!(flagged(41008, "syn_in_connection"), "{:?}", got[&41008]);
    ensure!(flagged(41009, "rst_ignored"), "{:?}", got[&41009]);
    ensure!(analyzer_counter(&d, "tcp_overlap_conflicts")? == 6);
    ensure!(analyzer_counter(&d, "tcp_overlaps")? >= 7);
    ensure!(analyzer_counter(&d, "tcp_syn_ignored")? == 1);
    ensure!(analyzer_counter(&d, "tcp_rst_ignored")? == 1);
    drop(d);

    // The other policies, on the same capture: what a first-wins or last-wins stack
    // would have read.
    let (_d, first) = analyzed(
        "ev-first",
        "[analyzer]\ntcp_overlap_policy = \"first\"\n",
        &pcap,
    )?;
    let first = by_client_port(&first);
    ensure!(first[&41001][0].0 == ["/aaaa11112222aaaa"], "{first:?}");
    ensure!(first[&41005][0].0 == ["/aaaa11112222aaaa"], "{first:?}");
    let (_d, last) = analyzed(
        "ev-last",
        "[analyzer]\ntcp_overlap_policy = \"last\"\n",
        &pcap,
    )?;
    let last = by_client_port(&last);
    ensure!(last[&41003][0].0 == ["/aaaa11222222aaaa"], "{last:?}");
    ensure!(last[&41007][0].0 == ["/aaaa22223333aaaa"], "{last:?}");
    let bad = DataDir::new(
        "ev-bad",
        &format!(
            "{}\n[analyzer]\ntcp_overlap_policy = \"windows\"\n",
            site_config("Asia/Tokyo")
        ),
    )?;
    let err = bad.import(&pcap).and_then(|_| bad.analyze());
    let msg = format!("{err:?}");
    ensure!(
        err.is_err() && msg.contains("tcp_overlap_policy") && msg.contains("windows"),
        "a bad policy must be a config error naming the key: {msg}"
    );
    Ok(())
}

#[test]
fn a_foreign_pasv_address_does_not_make_an_unrelated_connection_ftp_data() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let w = |n: &str| work.path().join(n);
    let craft = craft()?;
    let p = pair("ef")?;
    // The third party the FTP replies name: another address of the server's namespace.
    p.server
        .run(&["ip", "addr", "add", "10.78.0.77/24", "dev", "eth0"])?;
    let web_root = w("www");
    std::fs::create_dir_all(&web_root)?;
    std::fs::write(web_root.join("unrelated.txt"), "not an FTP transfer\n")?;
    let mut web = Server::spawn(
        "http.server",
        p.server.name(),
        &[
            PYTHON,
            "-m",
            "http.server",
            "8082",
            "--bind",
            "10.78.0.77",
            "--directory",
            web_root.to_str().context("utf-8")?,
        ],
        &w("web.log"),
    )?;
    wait_until("http.server to listen", Duration::from_secs(15), || {
        web.ensure_running().is_err()
            || p.server
                .run(&["ss", "-Hltn", "sport = :8082"])
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false)
    })?;
    let mut ftpd = spawn_ready(
        &p.server,
        "ftpd",
        &[PYTHON, &craft, "ftpserve", "10.78.0.2"],
        &w("ftpd.log"),
    )?;
    let pcap = w("ftp.pcap");
    let cap = Capture::start(&p.server, &pcap, &w("cap.log"))?;
    let out = p.client.run(&[PYTHON, &craft, "ftpclient", "10.78.0.2"])?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("done"),
        "ftpclient: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the FTP server to finish", Duration::from_secs(10), || {
        ftpd.ensure_running().is_err()
    })?;
    let out = p.client.run(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "http://10.78.0.77:8082/unrelated.txt",
    ])?;
    ensure!(out.status.success(), "curl failed");
    cap.stop()?;
    web.stop();
    let logged = web.log_text();
    ensure!(
        logged.contains("\"GET /unrelated.txt HTTP/1.1\" 200"),
        "web server log: {logged}"
    );

    let (d, sessions) = analyzed("ftp-foreign", "", &pcap)?;
    let web_sessions: Vec<&Value> = sessions
        .iter()
        .filter(|s| s["server"]["port"] == 8082)
        .collect();
    ensure!(
        web_sessions.len() == 1
            && web_sessions[0]["protocol"] == "http"
            && web_sessions[0]["http"]["transactions"][0]["uri"] == "/unrelated.txt",
        "the web server logged GET /unrelated.txt, the session says {web_sessions:?}"
    );
    let control: Vec<&Value> = sessions
        .iter()
        .filter(|s| s["server"]["port"] == 21)
        .collect();
    ensure!(
        control.len() == 1
            && control[0]["protocol"] == "ftp"
            && control[0]["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "foreign_data_address")),
        "control session: {control:?}"
    );
    ensure!(analyzer_counter(&d, "expectations_foreign_address")? == 2);
    Ok(())
}
