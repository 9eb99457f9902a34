//! Traffic as it really comes (issue 14) and community_id (issue 18): captures of other
//! link types, PPPoE, snap-cut captures and flow ids, each checked against tshark or the
//! reference implementation on the same pcap.
//!
//! - `one_exchange_on_ethernet_any_sll_and_tun_gives_the_same_sessions`: real curl and ping
//!   to a python http.server, captured at once on the server's Ethernet port (link type 1),
//!   with `tcpdump -i any` (SLL2, 276), `tcpdump -i any -y LINUX_SLL` (113), and on the
//!   client's tun interface (raw IP, 101) that really carries the exchange
//!   (`fixtures/linktypes/tun_relay.py`): the four imports analyze to the same sessions,
//!   whose byte counts equal tshark's sums; `kuroko pcap` gives each back with its own link
//!   type, and a store holding two link types exports as pcapng.
//! - `crafted_link_types_and_pppoe_decode_like_ethernet`: the same exchange written with
//!   scapy as Ethernet, PPPoE session frames, BSD NULL and LOOP, raw IP (101, 228, 229),
//!   over IPv4 and IPv6.
//! - `snaplen_96_upload_from_the_vpn_pool_counts_wire_bytes`: 110 MiB sent by a real TCP
//!   client at 10.8.0.5, captured with `tcpdump -s 96`: `bytes_up` is what crossed the
//!   wire (tshark's tcp.len sum), `captured_bytes` what was kept, `vpn_large_upload` fires.
//! - `community_ids_equal_the_reference_implementation`: TCP, UDP, SCTP, ICMP and ICMPv6
//!   flows in IPv4 and IPv6 against the `communityid` package; the `community_id:` query
//!   finds the session and the JSONL/CSV exports carry it.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::{DataDir, site_config, workspace_root};
use kuroko_tests::netns::{Netns, veth};
use kuroko_tests::proc::{Server, signal_pid, wait_until};
use kuroko_tests::scenarios::PYTHON;
use kuroko_tests::truth::tshark;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures/linktypes").join(name)
}

/// The pcap link type in a classic pcap's header.
fn pcap_linktype(path: &Path) -> anyhow::Result<u32> {
    let b = std::fs::read(path)?;
    ensure!(b.len() >= 24, "{} is not a pcap", path.display());
    Ok(u32::from_le_bytes([b[20], b[21], b[22], b[23]]) & 0x0fff_ffff)
}

/// The session log of a fresh data directory that imported `pcaps` and ran the analyzer.
fn analyze(name: &str, config: &str, pcaps: &[&Path]) -> anyhow::Result<(DataDir, Vec<Value>)> {
    let d = DataDir::new(name, config)?;
    for p in pcaps {
        d.import(p)?;
    }
    d.analyze()?;
    let s = d.session_log()?;
    Ok((d, s))
}

/// What must not depend on where or how the packets were captured.
fn essence(s: &Value) -> String {
    let g = |k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    let ep = |k: &str| format!("{}:{}", s[k]["ip"], s[k]["port"]);
    format!(
        "{} {} {} > {} up={} down={} pkts={} cap={} miss={} cid={} http={} {}",
        g("protocol"),
        g("transport"),
        ep("client"),
        ep("server"),
        g("bytes_up"),
        g("bytes_down"),
        g("packets"),
        g("captured_bytes"),
        g("missing_bytes"),
        g("community_id"),
        s["http"]["url"],
        s["http"]["status"],
    )
}

fn essences(sessions: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = sessions.iter().map(essence).collect();
    v.sort();
    v
}

/// Per (src ip, src port, dst ip, dst port): the sum of tshark's `tcp.len`.
fn tshark_tcp_len(pcap: &Path, filter: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let rows = tshark(
        pcap,
        filter,
        &[
            "ip.src",
            "ipv6.src",
            "tcp.srcport",
            "ip.dst",
            "ipv6.dst",
            "tcp.dstport",
            "tcp.len",
        ],
    )?;
    for r in rows {
        let get = |i: usize| r.get(i).cloned().unwrap_or_default();
        let src = if get(0).is_empty() { get(1) } else { get(0) };
        let dst = if get(3).is_empty() { get(4) } else { get(3) };
        let key = format!("{src}:{} > {dst}:{}", get(2), get(5));
        *out.entry(key).or_insert(0) += get(6).parse::<u64>().unwrap_or(0);
    }
    Ok(out)
}

/// Checks every TCP session's byte counts against tshark's sums on the same pcap.
fn check_tcp_bytes_against_tshark(pcap: &Path, sessions: &[Value]) -> anyhow::Result<usize> {
    let sums = tshark_tcp_len(pcap, "tcp")?;
    let mut checked = 0;
    for s in sessions.iter().filter(|s| s["transport"] == "tcp") {
        let (c, sv) = (&s["client"], &s["server"]);
        let ip = |v: &Value| v["ip"].as_str().unwrap_or_default().to_string();
        let up = format!("{}:{} > {}:{}", ip(c), c["port"], ip(sv), sv["port"]);
        let down = format!("{}:{} > {}:{}", ip(sv), sv["port"], ip(c), c["port"]);
        ensure!(
            s["bytes_up"].as_u64() == Some(sums.get(&up).copied().unwrap_or(0)),
            "{}: bytes_up {} but tshark sums tcp.len {:?} for {up}",
            pcap.display(),
            s["bytes_up"],
            sums.get(&up)
        );
        ensure!(
            s["bytes_down"].as_u64() == Some(sums.get(&down).copied().unwrap_or(0)),
            "{}: bytes_down {} but tshark sums tcp.len {:?} for {down}",
            pcap.display(),
            s["bytes_down"],
            sums.get(&down)
        );
        checked += 1;
    }
    Ok(checked)
}

/// A running tcpdump writing `out`; stopped with SIGINT (it flushes and closes the file).
struct Capture(Server);

impl Capture {
    fn start(
        ns: &Netns,
        name: &str,
        args: &[&str],
        out: &Path,
        log: &Path,
    ) -> anyhow::Result<Capture> {
        let mut argv = vec![
            "tcpdump",
            "-n",
            "-U",
            "--immediate-mode",
            "-B",
            "65536",
            "-Z",
            "root",
        ];
        argv.extend_from_slice(args);
        argv.extend(["-w", out.to_str().context("utf-8")?]);
        let mut s = Server::spawn(name, ns.name(), &argv, log)?;
        wait_until(
            &format!("{name} to listen"),
            Duration::from_secs(10),
            || s.log_text().contains("listening on") || s.ensure_running().is_err(),
        )?;
        s.ensure_running()?;
        Ok(Capture(s))
    }

    fn stop(mut self) -> anyhow::Result<()> {
        std::thread::sleep(Duration::from_millis(300));
        let st = self.0.stop_with(libc::SIGINT);
        ensure!(st.is_some(), "{} did not stop on SIGINT", self.0.name());
        Ok(())
    }
}

/// Client and server namespaces joined by a veth pair with fixed MACs, offloads off (so
/// every capture sees wire-sized packets, as on a mirror port).
struct Pair {
    client: Netns,
    server: Netns,
}

const CLIENT_MAC: &str = "02:00:0a:63:00:01";
const SERVER_MAC: &str = "02:00:0a:63:00:02";

fn pair(tag: &str) -> anyhow::Result<Pair> {
    let client = Netns::create(&format!("{tag}c"))?;
    let server = Netns::create(&format!("{tag}s"))?;
    client.disable_ipv6()?;
    server.disable_ipv6()?;
    veth(Some(&client), "eth0", Some(&server), "eth0", 1500)?;
    for (ns, mac) in [(&client, CLIENT_MAC), (&server, SERVER_MAC)] {
        ns.run(&["ip", "link", "set", "eth0", "address", mac])?;
        ns.run(&[
            "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx",
            "off",
        ])?;
    }
    Ok(Pair { client, server })
}

fn serve_http(ns: &Netns, dir: &Path, addr: &str, log: &Path) -> anyhow::Result<Server> {
    let mut s = Server::spawn(
        "http.server",
        ns.name(),
        &[
            PYTHON,
            "-m",
            "http.server",
            "8080",
            "--bind",
            addr,
            "--directory",
            dir.to_str().context("utf-8")?,
        ],
        log,
    )?;
    wait_until("http.server to listen", Duration::from_secs(15), || {
        s.ensure_running().is_err()
            || ns
                .run(&["ss", "-Hltn", "sport = :8080"])
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false)
    })?;
    s.ensure_running()?;
    Ok(s)
}

#[test]
fn one_exchange_on_ethernet_any_sll_and_tun_gives_the_same_sessions() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let w = |n: &str| work.path().join(n);
    let p = pair("lt")?;
    // The client's only address is on its tun; the relay carries the tun's packets over
    // eth0 unchanged and hands the server's answers back to the tun. Strict reverse-path
    // filtering keeps the client's kernel from taking those answers on eth0 as well.
    let ready = w("relay.ready");
    let mut relay = Server::spawn(
        "tun_relay",
        p.client.name(),
        &[
            PYTHON,
            fixture("tun_relay.py").to_str().context("utf-8")?,
            "kt0",
            "eth0",
            SERVER_MAC,
            ready.to_str().context("utf-8")?,
        ],
        &w("relay.log"),
    )?;
    wait_until("the tun relay", Duration::from_secs(10), || {
        ready.exists() || relay.ensure_running().is_err()
    })?;
    relay.ensure_running()?;
    for cmd in [
        &["ip", "addr", "add", "10.99.0.1/24", "dev", "kt0"][..],
        &["ip", "link", "set", "kt0", "mtu", "1500", "up"],
        &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"],
        &["sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=1"],
    ] {
        p.client.run(cmd)?;
    }
    p.server
        .run(&["ip", "addr", "add", "10.99.0.2/24", "dev", "eth0"])?;
    p.server.run(&[
        "ip",
        "neigh",
        "replace",
        "10.99.0.1",
        "lladdr",
        CLIENT_MAC,
        "dev",
        "eth0",
    ])?;
    let site = w("www");
    std::fs::create_dir_all(&site)?;
    kuroko_tests::truth::random_file(&site.join("report.bin"), 300_000, 7)?;
    let _http = serve_http(&p.server, &site, "10.99.0.2", &w("http.log"))?;

    let (eth, any2, any1, tun) = (w("eth.pcap"), w("any.pcap"), w("sll.pcap"), w("tun.pcap"));
    let caps = [
        Capture::start(
            &p.server,
            "tcpdump-eth",
            &["-i", "eth0"],
            &eth,
            &w("c1.log"),
        )?,
        Capture::start(
            &p.server,
            "tcpdump-any",
            &["-i", "any", "not arp"],
            &any2,
            &w("c2.log"),
        )?,
        Capture::start(
            &p.server,
            "tcpdump-sll",
            &["-i", "any", "-y", "LINUX_SLL", "not arp"],
            &any1,
            &w("c3.log"),
        )?,
        Capture::start(&p.client, "tcpdump-tun", &["-i", "kt0"], &tun, &w("c4.log"))?,
    ];
    for url in ["/report.bin", "/missing.txt"] {
        // Paced, so that four captures on a loaded CI machine keep every packet.
        p.client.run(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "20",
            "--limit-rate",
            "1M",
            &format!("http://10.99.0.2:8080{url}"),
        ])?;
    }
    p.client
        .run(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.99.0.2"])?;
    for c in caps {
        c.stop()?;
    }
    relay.stop();

    // The captures are what they claim to be.
    for (path, lt) in [(&eth, 1), (&any2, 276), (&any1, 113), (&tun, 101)] {
        ensure!(
            pcap_linktype(path)? == lt,
            "{} is not link type {lt}",
            path.display()
        );
    }
    let cfg = site_config("Asia/Tokyo");
    let (_d, want) = analyze("lt-eth", &cfg, &[&eth])?;
    let want_e = essences(&want);
    ensure!(
        want.iter().any(|s| s["http"]["status"] == 200)
            && want.iter().any(|s| s["http"]["status"] == 404)
            && want.iter().any(|s| s["transport"] == "icmp"),
        "the Ethernet capture lacks the exchange: {want_e:#?}"
    );
    ensure!(check_tcp_bytes_against_tshark(&eth, &want)? >= 2);
    for (name, path, lt) in [
        ("lt-any", &any2, 276),
        ("lt-sll", &any1, 113),
        ("lt-tun", &tun, 101),
    ] {
        let (d, got) = analyze(name, &cfg, &[path])?;
        ensure!(
            essences(&got) == want_e,
            "{name}: sessions differ from the Ethernet capture's:\n got {:#?}\nwant {want_e:#?}",
            essences(&got)
        );
        ensure!(check_tcp_bytes_against_tshark(path, &got)? >= 2);
        // Exported with its own link type, every packet.
        let out = w(&format!("{name}-export.pcap"));
        d.kuroko("pcap", &["-w", out.to_str().context("utf-8")?])?;
        ensure!(
            pcap_linktype(&out)? == lt,
            "{name}: export is not link type {lt}"
        );
        let n = |f: &Path| tshark(f, "", &["frame.number"]).map(|r| r.len());
        ensure!(n(&out)? == n(path)?, "{name}: export lost packets");
    }
    // Two link types in one store (SLL2 first, then Ethernet over the same interface id):
    // each packet keeps its own link layer, the export is a pcapng tshark reads whole.
    let (d, both) = analyze("lt-mixed", &cfg, &[&any2, &eth])?;
    // TCP connections come twice (each capture's SYN starts its own); the ICMP exchange,
    // keyed by its addresses, is one flow seen twice.
    let tcp = |v: &[Value]| -> Vec<String> {
        essences(
            &v.iter()
                .filter(|s| s["transport"] == "tcp")
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    let mut twice: Vec<String> = tcp(&want).iter().chain(&tcp(&want)).cloned().collect();
    twice.sort();
    ensure!(tcp(&both) == twice, "mixed store: {:#?}", essences(&both));
    let out = w("mixed.pcapng");
    d.kuroko("pcap", &["-w", out.to_str().context("utf-8")?])?;
    let head = std::fs::read(&out)?;
    ensure!(
        head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]),
        "a mixed export must be pcapng"
    );
    let encaps: BTreeSet<String> = tshark(&out, "", &["frame.encap_type"])?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect();
    ensure!(
        encaps.len() == 2,
        "pcapng export encapsulations: {encaps:?}"
    );
    let n = |f: &Path| tshark(f, "", &["frame.number"]).map(|r| r.len());
    ensure!(
        n(&out)? == n(&any2)? + n(&eth)?,
        "mixed export lost packets"
    );
    // A query export of one session: only its packets, still its own link type.
    let q = w("query.pcap");
    d.kuroko(
        "pcap",
        &["--query", "status:404", "-w", q.to_str().context("utf-8")?],
    )?;
    let rows = tshark(&q, "", &["tcp.port"])?;
    ensure!(!rows.is_empty(), "the query export is empty");
    Ok(())
}

#[test]
fn crafted_link_types_and_pppoe_decode_like_ethernet() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let out = std::process::Command::new(PYTHON)
        .arg(fixture("craft.py"))
        .args(["links", dir.to_str().context("utf-8")?])
        .output()?;
    ensure!(
        out.status.success(),
        "craft.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = site_config("Asia/Tokyo");
    for sfx in ["", "6"] {
        let eth = dir.join(format!("eth{sfx}.pcap"));
        let (_d, want) = analyze(&format!("cr-eth{sfx}"), &cfg, &[&eth])?;
        let want_e = essences(&want);
        ensure!(
            want.iter().any(|s| s["http"]["status"] == 200)
                && want.iter().any(|s| s["transport"] == "udp"),
            "eth{sfx}: {want_e:#?}"
        );
        check_tcp_bytes_against_tshark(&eth, &want)?;
        for kind in ["pppoe", "null", "loop", "raw", "rawv"] {
            let f = dir.join(format!("{kind}{sfx}.pcap"));
            let (_d, got) = analyze(&format!("cr-{kind}{sfx}"), &cfg, &[&f])?;
            ensure!(
                essences(&got) == want_e,
                "{kind}{sfx}: got {:#?}\nwant {want_e:#?}",
                essences(&got)
            );
            // tshark reads the same file to the same per-direction payload sums.
            ensure!(
                check_tcp_bytes_against_tshark(&f, &got)? == 1,
                "{kind}{sfx}"
            );
            if kind == "pppoe" {
                ensure!(
                    got.iter().all(|s| s["flags"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|x| x == "tunnel:pppoe"))),
                    "PPPoE sessions say so: {got:#?}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn snaplen_96_upload_from_the_vpn_pool_counts_wire_bytes() -> anyhow::Result<()> {
    const UPLOAD: u64 = 110 << 20;
    let work = tempfile::tempdir()?;
    let w = |n: &str| work.path().join(n);
    let p = pair("vu")?;
    p.client
        .run(&["ip", "addr", "add", "10.8.0.5/8", "dev", "eth0"])?;
    p.server
        .run(&["ip", "addr", "add", "10.10.2.20/8", "dev", "eth0"])?;
    let mut sink = Server::spawn(
        "sink",
        p.server.name(),
        &["sh", "-c", "nc -l -N 10.10.2.20 9000 > /dev/null"],
        &w("sink.log"),
    )?;
    wait_until("the sink to listen", Duration::from_secs(10), || {
        sink.ensure_running().is_err()
            || p.server
                .run(&["ss", "-Hltn", "sport = :9000"])
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false)
    })?;
    let pcap = w("upload.pcap");
    let cap = Capture::start(
        &p.server,
        "tcpdump-96",
        &["-i", "eth0", "-s", "96", "tcp"],
        &pcap,
        &w("cap.log"),
    )?;
    p.client.run(&[
        "sh",
        "-c",
        &format!("head -c {UPLOAD} /dev/zero | nc -N -w 30 10.10.2.20 9000"),
    ])?;
    wait_until("the sink to finish", Duration::from_secs(30), || {
        sink.ensure_running().is_err()
    })
    .ok();
    cap.stop()?;
    signal_pid(sink.pid(), libc::SIGTERM);

    let (d, sessions) = analyze("vpn-upload", &site_config("Asia/Tokyo"), &[&pcap])?;
    let s = sessions
        .iter()
        .find(|s| s["server"]["port"] == 9000)
        .context("no upload session")?;
    // What crossed the wire: tshark's tcp.len (from IP lengths) summed, retransmissions
    // included; the capture saw the whole upload (its sequence space is the bytes sent).
    let sums = tshark_tcp_len(&pcap, "tcp.dstport == 9000")?;
    let tshark_up: u64 = sums.values().sum();
    let next_seq = tshark(&pcap, "tcp.dstport == 9000", &["tcp.nxtseq"])?
        .iter()
        .filter_map(|r| r.first()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    ensure!(
        next_seq > UPLOAD,
        "the capture saw {next_seq} of {UPLOAD} bytes"
    );
    ensure!(
        tshark_up >= UPLOAD,
        "tshark sums {tshark_up}, sent {UPLOAD}"
    );
    ensure!(
        s["bytes_up"].as_u64() == Some(tshark_up),
        "bytes_up {} but tshark sums tcp.len {tshark_up} (sent {UPLOAD})",
        s["bytes_up"]
    );
    let captured = s["captured_bytes"].as_u64().unwrap_or(0);
    ensure!(
        captured > 0 && captured < UPLOAD / 10,
        "captured_bytes {captured}"
    );
    ensure!(check_tcp_bytes_against_tshark(&pcap, &sessions)? >= 1);
    // Queries and the rule see wire sizes.
    ensure!(
        d.search("bytes:>100MB")?.len() == 1,
        "bytes:>100MB finds the upload"
    );
    let findings = d.findings()?;
    ensure!(
        findings.iter().any(|f| f["rule"] == "vpn_large_upload"),
        "vpn_large_upload did not fire: {findings:#?}"
    );
    Ok(())
}

#[test]
fn community_ids_equal_the_reference_implementation() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let pcap = work.path().join("flows.pcap");
    let py = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new(PYTHON)
            .arg(fixture("craft.py"))
            .args(args)
            .output()?;
        ensure!(
            out.status.success(),
            "craft.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let pcap_s = pcap.to_str().context("utf-8")?;
    py(&["flows", pcap_s])?;
    // Reference value per flow, from its first packet (src dst proto cid).
    let mut want: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for l in py(&["cids", pcap_s])?.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let key = if f[0] < f[1] {
            (f[0], f[1])
        } else {
            (f[1], f[0])
        };
        want.entry((key.0.to_string(), key.1.to_string(), f[2].to_string()))
            .or_insert_with(|| f[3].to_string());
    }
    ensure!(want.len() == 12, "{want:#?}");
    let (d, sessions) = analyze("cid", &site_config("Asia/Tokyo"), &[&pcap])?;
    let mut got = BTreeMap::new();
    for s in &sessions {
        let (a, b) = (
            s["client"]["ip"].as_str().unwrap_or_default().to_string(),
            s["server"]["ip"].as_str().unwrap_or_default().to_string(),
        );
        let key = if a < b { (a, b) } else { (b, a) };
        let proto = match s["transport"].as_str().unwrap_or_default() {
            "tcp" => "6",
            "udp" => "17",
            "icmp" => "1",
            "icmpv6" => "58",
            "sctp" => "132",
            other => other,
        };
        got.insert(
            (key.0, key.1, proto.to_string()),
            s["community_id"].as_str().unwrap_or_default().to_string(),
        );
    }
    ensure!(
        got == want,
        "community_id differs:\n got {got:#?}\nwant {want:#?}"
    );
    // Searchable, and in the exports.
    let one = want.values().next().context("a flow")?;
    let hits = d.search(&format!("community_id:\"{one}\""))?;
    ensure!(
        hits.len() == 1 && hits[0]["community_id"] == one.as_str(),
        "{hits:#?}"
    );
    let csv = d.kuroko("export", &["--format", "csv"]).unwrap_or_default();
    let csv = if csv.is_empty() {
        d.kuroko("search", &["--format", "csv", "--limit", "100", "*"])?
    } else {
        csv
    };
    ensure!(
        csv.lines()
            .next()
            .is_some_and(|h| h.contains("community_id")),
        "CSV header: {csv}"
    );
    ensure!(csv.contains(one.as_str()), "CSV lacks {one}");
    Ok(())
}

#[test]
fn overlapping_fragments_are_dropped_like_the_host_drops_them() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let w = |n: &str| work.path().join(n);
    let p = pair("fr")?;
    p.client
        .run(&["ip", "addr", "add", "10.77.0.1/24", "dev", "eth0"])?;
    p.server
        .run(&["ip", "addr", "add", "10.77.0.2/24", "dev", "eth0"])?;
    let mut recv = Server::spawn(
        "recv",
        p.server.name(),
        &[
            PYTHON,
            fixture("craft.py").to_str().context("utf-8")?,
            "recv",
            "10.77.0.2",
        ],
        &w("recv.log"),
    )?;
    wait_until("the receiver", Duration::from_secs(10), || {
        recv.log_text().contains("ready") || recv.ensure_running().is_err()
    })?;
    let pcap = w("frags.pcap");
    let cap = Capture::start(
        &p.server,
        "tcpdump-frag",
        &["-i", "eth0", "ip"],
        &pcap,
        &w("cap.log"),
    )?;
    p.client.run(&[
        PYTHON,
        fixture("craft.py").to_str().context("utf-8")?,
        "frags",
        "10.77.0.2",
    ])?;
    wait_until("the receiver to finish", Duration::from_secs(15), || {
        recv.ensure_running().is_err()
    })?;
    cap.stop()?;
    // What the host received: the clean datagram only.
    let got: Vec<String> = recv
        .log_text()
        .lines()
        .filter(|l| *l != "ready")
        .map(str::to_string)
        .collect();
    ensure!(got == ["40000 64"], "the host received {got:?}");
    ensure!(tshark(&pcap, "ip.flags.mf == 1 or ip.frag_offset > 0", &["ip.id"])?.len() >= 4);
    // What the sessions say: the same.
    let d = DataDir::new("frags", &site_config("Asia/Tokyo"))?;
    d.import(&pcap)?;
    d.analyze()?;
    let sessions = d.session_log()?;
    let udp: Vec<(u64, u64)> = sessions
        .iter()
        .filter(|s| s["transport"] == "udp")
        .map(|s| {
            (
                s["client"]["port"].as_u64().unwrap_or(0),
                s["bytes_up"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    ensure!(
        udp == [(40000, 64)],
        "sessions {udp:?}, host received {got:?}"
    );
    let status = d.kuroko("status", &[])?;
    ensure!(
        status.lines().any(|l| l.contains("ip fragment overlaps")
            && l.split_whitespace().last() == Some("1")),
        "the overlap is counted: {status}"
    );
    Ok(())
}
