//! The names and software the inventory learns from DHCP, NetBIOS, SMB and HTTP
//! `X-Powered-By`, against real daemons and clients in the test site's namespaces:
//! - DHCP: dnsmasq serves a range on the gateway host; busybox's udhcpc on the second PC
//!   asks for a lease with a host name (option 12) and its own vendor class (option 60);
//! - NetBIOS and SMB: Samba's nmbd and smbd on the file server (NetBIOS name
//!   `FILESRV01`); `nmblookup` asks for the name (unicast query) and the node status, and
//!   `smbclient -L` lists the shares (SMB2 NEGOTIATE);
//! - HTTP: a Python web server on the file server answering with `X-Powered-By`, fetched
//!   with curl.
//!
//! The mirror port is recorded, imported and analyzed by the `kuroko` binary, and
//! `kuroko assets --format jsonl` is checked against tshark's fields on the same pcap
//! (`dhcp.option.hostname`, `dhcp.option.vendor_class_id`, `dhcp.hw.mac_addr`,
//! `dhcp.ip.your`, `nbns.name`, `smb2.dialect`, `http.response.line`): each fact on the
//! right host, with an evidence session that is in the session log with the right
//! protocol.
//!
//! Needs root, dnsmasq, busybox, samba, smbclient, curl and tshark.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::{DataDir, site_config};
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{FILES, GATEWAY, PC, PC2, Site};
use kuroko_tests::truth::tshark;
use serde_json::Value;
use std::path::Path;

const DHCP_NAME: &str = "pc-tanaka";
/// The lease range, on a subnet the gateway gets for the test (inside the site).
const LEASE_NET: &str = "10.10.3";
const NETBIOS_NAME: &str = "FILESRV01";
const POWERED_BY: &str = "PHP/7.4.33";

const WEB: &str = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('X-Powered-By', sys.argv[2])
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
http.server.HTTPServer((sys.argv[1], 8080), H).serve_forever()
"#;

fn smb_conf(work: &Path) -> anyhow::Result<String> {
    let s = work.join("samba");
    for d in [
        "lock", "state", "cache", "private", "pid", "ncalrpc", "share",
    ] {
        std::fs::create_dir_all(s.join(d))?;
    }
    let p = |d: &str| s.join(d).display().to_string();
    let conf = format!(
        "[global]\nnetbios name = {NETBIOS_NAME}\nworkgroup = OFFICE\n\
         interfaces = {}/16\nbind interfaces only = no\nserver role = standalone server\n\
         map to guest = Bad User\nlock directory = {}\nstate directory = {}\n\
         cache directory = {}\nprivate dir = {}\npid directory = {}\nncalrpc dir = {}\n\
         log file = {}/log.%m\nload printers = no\ndisable spoolss = yes\n\
         [pub]\npath = {}\nguest ok = yes\nread only = yes\n",
        FILES.ip,
        p("lock"),
        p("state"),
        p("cache"),
        p("private"),
        p("pid"),
        p("ncalrpc"),
        s.display(),
        p("share"),
    );
    let path = s.join("smb.conf");
    std::fs::write(&path, conf)?;
    Ok(path.display().to_string())
}

/// The facts of `kind` on the host with address `ip`.
fn facts<'a>(hosts: &'a [Value], ip: &str, kind: &str) -> Vec<&'a Value> {
    hosts
        .iter()
        .filter(|h| h["ip"] == ip)
        .flat_map(|h| h["software"].as_array().into_iter().flatten())
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn host<'a>(hosts: &'a [Value], ip: &str) -> anyhow::Result<&'a Value> {
    hosts
        .iter()
        .find(|h| h["ip"] == ip)
        .with_context(|| format!("no host {ip} in the inventory: {hosts:#?}"))
}

/// The evidence session is in the session log with the protocol that shows the fact.
fn evidence(sessions: &[Value], id: &Value, protocol: &str) -> anyhow::Result<()> {
    let s = sessions
        .iter()
        .find(|s| &s["id"] == id)
        .with_context(|| format!("evidence session {id} is not in the session log"))?;
    ensure!(
        s["protocol"] == protocol,
        "{id} is {}, not {protocol}",
        s["protocol"]
    );
    Ok(())
}

#[test]
fn dhcp_netbios_smb_and_powered_by_land_in_the_inventory() -> anyhow::Result<()> {
    for bin in [
        "/usr/sbin/dnsmasq",
        "/usr/sbin/smbd",
        "/usr/sbin/nmbd",
        "/usr/bin/smbclient",
    ] {
        ensure!(
            Path::new(bin).exists(),
            "{bin} is missing (apt-get install dnsmasq samba smbclient)"
        );
    }
    let site = Site::new()?;
    let config = format!(
        "{}\n[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n",
        site_config("Asia/Tokyo")
    );
    let data = DataDir::new("assets-names", &config)?;
    let pcap = data
        .dir
        .parent()
        .context("parent")?
        .join("assets-names.pcap");
    let work = site.work_dir().join("assets-names");
    std::fs::create_dir_all(&work)?;
    let w = |f: &str| work.join(f).display().to_string();

    site.sh(
        GATEWAY,
        &[
            "ip",
            "addr",
            "add",
            &format!("{LEASE_NET}.1/24"),
            "dev",
            "eth0",
        ],
        5,
    )?;
    let _dnsmasq = site.serve(
        GATEWAY,
        "dnsmasq-dhcp",
        "udp",
        67,
        &[
            "/usr/sbin/dnsmasq",
            "-k",
            "-C",
            "/dev/null",
            "--port=0",
            "--user=root",
            "--group=root",
            "--interface=eth0",
            &format!("--dhcp-range={LEASE_NET}.100,{LEASE_NET}.150,255.255.255.0,1h"),
            "--dhcp-authoritative",
            &format!("--dhcp-leasefile={}", w("leases")),
            &format!("--pid-file={}", w("dnsmasq.pid")),
        ],
    )?;
    // nmbd binds its subnet's broadcast address: the file server gets its /16 (the site
    // gives every host a /32).
    for argv in [
        &[
            "ip",
            "addr",
            "del",
            &format!("{}/32", FILES.ip),
            "dev",
            "eth0",
        ][..],
        &[
            "ip",
            "addr",
            "add",
            &format!("{}/16", FILES.ip),
            "brd",
            "+",
            "dev",
            "eth0",
        ],
    ] {
        site.sh(FILES, argv, 5)?;
    }
    let conf = smb_conf(&work)?;
    // Samba's daemons signal their whole process group when they stop: `setsid` gives
    // them their own, so that the test's process is not in it.
    let smbd_args = [
        "--foreground",
        "--no-process-group",
        "--debug-stdout",
        "--configfile",
        &conf,
    ];
    let _nmbd = site.serve(
        FILES,
        "nmbd",
        "udp",
        137,
        &[&["setsid", "/usr/sbin/nmbd"][..], &smbd_args].concat(),
    )?;
    let _smbd = site.serve(
        FILES,
        "smbd",
        "tcp",
        445,
        &[&["setsid", "/usr/sbin/smbd"][..], &smbd_args].concat(),
    )?;
    let _web = site.serve(
        FILES,
        "web-powered-by",
        "tcp",
        8080,
        &["/usr/bin/python3", "-c", WEB, FILES.ip, POWERED_BY],
    )?;

    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        site.sh(
            PC2,
            &[
                "busybox",
                "udhcpc",
                "-i",
                "eth0",
                "-f",
                "-q",
                "-n",
                "-B",
                "-t",
                "5",
                "-T",
                "1",
                "-x",
                &format!("hostname:{DHCP_NAME}"),
                "-s",
                "/bin/true",
            ],
            30,
        )?;
        site.sh(PC, &["nmblookup", "-U", FILES.ip, NETBIOS_NAME], 20)?;
        site.sh(PC, &["nmblookup", "-A", FILES.ip], 20)?;
        site.sh(
            PC,
            &[
                "smbclient",
                "-N",
                "-L",
                &format!("//{}", FILES.ip),
                "-s",
                &conf,
            ],
            30,
        )?;
        site.sh(
            PC,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                &format!("http://{}:8080/", FILES.ip),
            ],
            20,
        )?;
        Ok(())
    })();
    rec.stop()?;
    traffic?;
    data.import(&pcap)?;
    data.analyze()?;
    let hosts = kuroko_tests::kuroko::parse_jsonl(&data.kuroko("assets", &["--format", "jsonl"])?)?;
    let sessions = data.session_log()?;
    let dump = serde_json::to_string_pretty(&hosts)?;

    // DHCP: the ACK's binding and the request's name and vendor class, as tshark reads them.
    let ack = tshark(
        &pcap,
        "dhcp.option.dhcp == 5",
        &["dhcp.ip.your", "dhcp.hw.mac_addr"],
    )?;
    ensure!(!ack.is_empty(), "no DHCP ACK in the pcap");
    let (leased, mac) = (&ack[0][0], &ack[0][1]);
    ensure!(leased.starts_with(LEASE_NET), "leased {leased}");
    let req = tshark(
        &pcap,
        "dhcp.option.dhcp == 3",
        &["dhcp.option.hostname", "dhcp.option.vendor_class_id"],
    )?;
    ensure!(!req.is_empty(), "no DHCP REQUEST in the pcap");
    assert_eq!(req[0][0], DHCP_NAME);
    let vendor = &req[0][1];
    ensure!(
        vendor.starts_with("udhcp "),
        "udhcpc's vendor class: {vendor}"
    );
    let h = host(&hosts, leased)?;
    assert_eq!(h["mac"].as_str(), Some(mac.as_str()), "{dump}");
    let name = h["names"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["source"] == "dhcp")
        .with_context(|| format!("no DHCP name on {leased}: {dump}"))?;
    assert_eq!(name["name"], DHCP_NAME);
    evidence(&sessions, &name["session"], "dhcp")?;
    let v = facts(&hosts, leased, "dhcp-vendor");
    ensure!(v.len() == 1, "one vendor class on {leased}: {dump}");
    assert_eq!(v[0]["text"].as_str(), Some(vendor.as_str()));
    assert_eq!(v[0]["role"], "client");
    evidence(&sessions, &v[0]["session"], "dhcp")?;

    // NetBIOS: the file server's name, from nmbd's answers.
    let nb = tshark(&pcap, "nbns.flags.response == 1", &["nbns.name"])?;
    ensure!(
        nb.iter().any(|r| r[0].starts_with(NETBIOS_NAME)),
        "tshark sees no answer for {NETBIOS_NAME}: {nb:?}"
    );
    let files = host(&hosts, FILES.ip)?;
    let nbname = files["names"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["source"] == "netbios")
        .with_context(|| format!("no NetBIOS name on the file server: {dump}"))?;
    assert_eq!(nbname["name"], NETBIOS_NAME.to_ascii_lowercase());
    evidence(&sessions, &nbname["session"], "netbios-ns")?;

    // SMB: the dialect smbd chose, as tshark decodes the NEGOTIATE response.
    let neg = tshark(
        &pcap,
        "smb2.cmd == 0 && smb2.flags.response == 1",
        &["smb2.dialect"],
    )?;
    ensure!(!neg.is_empty(), "no SMB2 NEGOTIATE response in the pcap");
    let dialect = u16::from_str_radix(neg[0][0].trim_start_matches("0x"), 16)?;
    let expected = format!(
        "SMB {}.{}.{}",
        dialect >> 8,
        (dialect >> 4) & 0xF,
        dialect & 0xF
    );
    let smb = facts(&hosts, FILES.ip, "smb-dialect");
    ensure!(!smb.is_empty(), "no SMB dialect on the file server: {dump}");
    ensure!(
        smb.iter()
            .any(|f| f["text"].as_str() == Some(expected.as_str())),
        "tshark says {expected}: {dump}"
    );
    evidence(&sessions, &smb[0]["session"], "smb")?;

    // HTTP X-Powered-By.
    let pb = facts(&hosts, FILES.ip, "http-powered-by");
    ensure!(pb.len() == 1, "one X-Powered-By on the file server: {dump}");
    assert_eq!(pb[0]["text"], POWERED_BY);
    evidence(&sessions, &pb[0]["session"], "http")?;
    let line = tshark(&pcap, "http.response", &["http.response.line"])?;
    ensure!(
        line.iter()
            .flatten()
            .any(|l| l.contains(&format!("X-Powered-By: {POWERED_BY}"))),
        "tshark: {line:?}"
    );
    Ok(())
}
