//! mDNS names and DNS-SD services in the inventory, from a real announcer: avahi-daemon
//! on the file server (its own D-Bus system bus on a private socket, no chroot) announces
//! its host name, and `avahi-publish -s` registers an IPP printer instance with a TXT
//! record naming its model, and a web instance (`_http._tcp` on 8080, where a python
//! `http.server` answers the PC's curl); the PC asks for the printer with
//! `avahi-browse`'s kind of query (a python multicast query, so the PC needs no daemon)
//! and the file server answers.
//!
//! The mirror port is recorded, imported and analyzed by the `kuroko` binary, and
//! `kuroko assets --format jsonl` is checked against tshark's fields on the same pcap
//! (`dns.resp.name`, `dns.a`, `dns.srv.port`, `dns.txt` of mDNS responses): the host name,
//! the service instance on its SRV port and the model on the file server's address, each
//! with an evidence session that is an `mdns` session of the session log. The file
//! server's services list holds both announced ports: 631/tcp announced only (no
//! sessions, no clients), 8080/tcp announced and seen answering the PC (one service: its
//! sessions and client counted, the announcement kept), as tshark sees the SRV ports and
//! the server's HTTP answers.
//!
//! Needs root, avahi-daemon, avahi-utils (avahi-publish), dbus, python3 and tshark.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::{DataDir, site_config};
use kuroko_tests::record::Recorder;
use kuroko_tests::scenarios::PYTHON;
use kuroko_tests::site::{FILES, PC, Site};
use kuroko_tests::truth::tshark;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const HOST_NAME: &str = "kprinter";
const INSTANCE: &str = "Office Printer";
const MODEL: &str = "Kuroko Test Printer 9000";
const WEB_INSTANCE: &str = "Printer Web";
const WEB_PORT: &str = "8080";

/// One mDNS query (QU bit clear) for `_ipp._tcp.local` PTR, sent to the group.
const QUERY: &str = r#"
import socket, struct, sys
q = struct.pack(">HHHHHH", 0, 0, 1, 0, 0, 0)
for l in b"_ipp._tcp.local".split(b"."):
    q += bytes([len(l)]) + l
q += b"\x00" + struct.pack(">HH", 12, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[1]))
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 5353))
s.sendto(q, ("224.0.0.251", 5353))
"#;

fn host<'a>(hosts: &'a [Value], ip: &str) -> anyhow::Result<&'a Value> {
    hosts
        .iter()
        .find(|h| h["ip"] == ip)
        .with_context(|| format!("no host {ip} in the inventory: {hosts:#?}"))
}

fn evidence(sessions: &[Value], id: &Value) -> anyhow::Result<()> {
    let s = sessions
        .iter()
        .find(|s| &s["id"] == id)
        .with_context(|| format!("evidence session {id} is not in the session log"))?;
    ensure!(
        s["protocol"] == "mdns",
        "{id} is {}, not mdns",
        s["protocol"]
    );
    Ok(())
}

#[test]
fn avahi_announcements_land_in_the_inventory() -> anyhow::Result<()> {
    for bin in [
        "/usr/sbin/avahi-daemon",
        "/usr/bin/avahi-publish",
        "/usr/bin/dbus-daemon",
    ] {
        ensure!(
            Path::new(bin).exists(),
            "{bin} is missing (apt-get install avahi-daemon avahi-utils dbus)"
        );
    }
    let site = Site::new()?;
    let data = DataDir::new("mdns-live", &site_config("Asia/Tokyo"))?;
    let pcap = data.dir.parent().context("parent")?.join("mdns-live.pcap");
    let work = site.work_dir().join("mdns-live");
    std::fs::create_dir_all(&work)?;
    let bus = format!("unix:path={}", work.join("bus").display());
    let conf = work.join("avahi-daemon.conf");
    std::fs::write(
        &conf,
        format!(
            "[server]\nhost-name={HOST_NAME}\ndomain-name=local\nuse-ipv4=yes\nuse-ipv6=no\n\
             allow-interfaces=eth0\nenable-dbus=yes\nratelimit-burst=1000\n\
             [wide-area]\nenable-wide-area=no\n[publish]\npublish-workstation=no\n\
             publish-hinfo=no\n"
        ),
    )?;
    let env_bus = format!("DBUS_SYSTEM_BUS_ADDRESS={bus}");

    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        let _dbus = site.spawn(
            FILES,
            "dbus",
            &[
                "dbus-daemon",
                "--config-file=/usr/share/dbus-1/system.conf",
                &format!("--address={bus}"),
                "--nofork",
                "--nopidfile",
            ],
        )?;
        kuroko_tests::proc::wait_until(
            "the private D-Bus socket",
            Duration::from_secs(10),
            || work.join("bus").exists(),
        )?;
        let _avahi = site.serve(
            FILES,
            "avahi-daemon",
            "udp",
            5353,
            &[
                "env",
                &env_bus,
                "/usr/sbin/avahi-daemon",
                "-f",
                conf.to_str().context("utf-8")?,
                "--no-chroot",
                "--no-drop-root",
                "--no-rlimits",
                "--no-proc-title",
            ],
        )?;
        let publish = site.spawn(
            FILES,
            "avahi-publish",
            &[
                "env",
                &env_bus,
                "avahi-publish",
                "-s",
                INSTANCE,
                "_ipp._tcp",
                "631",
                &format!("ty={MODEL}"),
                "rp=ipp/print",
            ],
        )?;
        let _web = site.serve(
            FILES,
            "printer-web",
            "tcp",
            8080,
            &[PYTHON, "-m", "http.server", WEB_PORT, "--bind", FILES.ip],
        )?;
        let publish_web = site.spawn(
            FILES,
            "avahi-publish-web",
            &[
                "env",
                &env_bus,
                "avahi-publish",
                "-s",
                WEB_INSTANCE,
                "_http._tcp",
                WEB_PORT,
            ],
        )?;
        // avahi probes three times 250 ms apart, then announces (twice, a second apart).
        kuroko_tests::proc::wait_until(
            "avahi-publish's registrations",
            Duration::from_secs(20),
            || {
                publish.log_text().contains("Established")
                    && publish_web.log_text().contains("Established")
            },
        )?;
        let out = site.sh(
            PC,
            &[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                &format!("http://{}:{WEB_PORT}/", FILES.ip),
            ],
            10,
        )?;
        ensure!(out.status.success(), "curl: {out:?}");
        std::thread::sleep(Duration::from_millis(1500));
        site.sh(PC, &["python3", "-c", QUERY, PC.ip], 10)?;
        std::thread::sleep(Duration::from_millis(1500));
        Ok(())
    })();
    rec.stop()?;
    traffic?;
    data.import(&pcap)?;
    data.analyze()?;
    let hosts = kuroko_tests::kuroko::parse_jsonl(&data.kuroko("assets", &["--format", "jsonl"])?)?;
    let sessions = data.session_log()?;
    let dump = serde_json::to_string_pretty(&hosts)?;

    // tshark: the file server's responses name its host and the instance.
    let resp = tshark(
        &pcap,
        &format!("mdns && dns.flags.response == 1 && ip.src == {}", FILES.ip),
        &["dns.resp.name", "dns.a", "dns.srv.port", "dns.txt"],
    )?;
    ensure!(
        !resp.is_empty(),
        "tshark sees no mDNS response from the file server"
    );
    let full = format!("{INSTANCE}._ipp._tcp.local");
    let host_name = format!("{HOST_NAME}.local");
    let has = |col: usize, v: &str| {
        resp.iter()
            .any(|r| r.get(col).is_some_and(|c| c.split(',').any(|x| x == v)))
    };
    ensure!(has(0, &host_name) && has(1, FILES.ip), "tshark: {resp:?}");
    ensure!(has(0, &full) && has(2, "631"), "tshark: {resp:?}");
    ensure!(has(3, &format!("ty={MODEL}")), "tshark: {resp:?}");
    ensure!(
        has(0, &format!("{WEB_INSTANCE}._http._tcp.local")) && has(2, WEB_PORT),
        "tshark: {resp:?}"
    );
    let answers = tshark(
        &pcap,
        &format!(
            "http.response && ip.src == {} && tcp.srcport == {WEB_PORT} && ip.dst == {}",
            FILES.ip, PC.ip
        ),
        &["http.response.code"],
    )?;
    ensure!(!answers.is_empty(), "tshark sees no answer on {WEB_PORT}");
    let queries = tshark(
        &pcap,
        &format!("mdns && dns.flags.response == 0 && ip.src == {}", PC.ip),
        &["dns.qry.name"],
    )?;
    ensure!(
        queries.iter().any(|q| q[0] == "_ipp._tcp.local"),
        "tshark: {queries:?}"
    );

    // The inventory: the same facts on the file server, each with an mdns session.
    let files = host(&hosts, FILES.ip)?;
    let name = files["names"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["source"] == "mdns")
        .with_context(|| format!("no mDNS name on the file server: {dump}"))?;
    assert_eq!(name["name"].as_str(), Some(host_name.as_str()), "{dump}");
    // The flow's reverse-name probes are no names of the host (its `dns` fields pair the
    // first question with unrelated answers).
    ensure!(
        !files["names"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["name"].as_str().is_some_and(|x| x.ends_with(".arpa"))),
        "a reverse name on the file server: {dump}"
    );
    evidence(&sessions, &name["session"])?;
    let facts: Vec<&Value> = files["software"].as_array().into_iter().flatten().collect();
    let svc = facts
        .iter()
        .find(|f| f["kind"] == "mdns-service" && f["text"] == full.as_str())
        .with_context(|| format!("no mDNS service on the file server: {dump}"))?;
    assert_eq!(svc["text"].as_str(), Some(full.as_str()), "{dump}");
    assert_eq!(svc["port"], 631, "{dump}");
    assert_eq!(svc["role"], "announced");
    evidence(&sessions, &svc["session"])?;
    let model = facts
        .iter()
        .find(|f| f["kind"] == "mdns-model")
        .with_context(|| format!("no device model on the file server: {dump}"))?;
    assert_eq!(model["text"].as_str(), Some(MODEL), "{dump}");
    evidence(&sessions, &model["session"])?;

    // The services it answered on hold the announced ports: 631 announced only, 8080
    // announced and answering the PC, one service each.
    let services: Vec<&Value> = files["services"].as_array().into_iter().flatten().collect();
    let on = |port: u16| -> anyhow::Result<&Value> {
        let v: Vec<&&Value> = services
            .iter()
            .filter(|s| s["port"] == port && s["transport"] == "tcp")
            .collect();
        ensure!(v.len() == 1, "services on {port}/tcp: {dump}");
        Ok(v[0])
    };
    let ipp = on(631)?;
    assert_eq!(ipp["announced"], serde_json::json!(["_ipp._tcp"]), "{dump}");
    assert_eq!(ipp["sessions"], 0, "{dump}");
    assert_eq!(ipp["internal_clients"], 0, "{dump}");
    assert_eq!(ipp["external_clients"], 0, "{dump}");
    evidence(&sessions, &ipp["session"])?;
    let web = on(8080)?;
    assert_eq!(
        web["announced"],
        serde_json::json!(["_http._tcp"]),
        "{dump}"
    );
    assert_eq!(web["protocol"], "http", "{dump}");
    ensure!(web["sessions"].as_u64() >= Some(1), "{dump}");
    assert_eq!(web["internal_clients"], 1, "{dump}");
    assert_eq!(web["clients"], serde_json::json!([PC.ip]), "{dump}");
    let answered = sessions
        .iter()
        .find(|s| s["id"] == web["session"])
        .context("the web service's evidence session")?;
    assert_eq!(answered["protocol"], "http", "{answered}");
    assert_eq!(answered["server"]["port"], 8080, "{answered}");
    // The table says which is which.
    let table = data.kuroko("assets", &[])?;
    ensure!(
        table.lines().any(|l| l.contains("631/tcp")
            && l.contains("announced _ipp._tcp")
            && !l.contains("clients")),
        "{table}"
    );
    ensure!(
        table.lines().any(|l| l.contains("8080/tcp http")
            && l.contains("clients 1 in")
            && l.contains("announced _http._tcp")),
        "{table}"
    );

    // The session record keeps them under `mdns` (the documented keys).
    let rec = sessions
        .iter()
        .find(|s| s["id"] == svc["session"])
        .context("evidence session")?;
    let md = &rec["mdns"];
    ensure!(
        md["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|h| h["name"] == host_name.as_str() && h["address"] == FILES.ip),
        "record: {md}"
    );
    ensure!(
        md["services"].as_array().into_iter().flatten().any(|s| {
            s["instance"] == INSTANCE
                && s["service"] == "_ipp._tcp"
                && s["port"] == 631
                && s["model"] == MODEL
                && s["from"] == FILES.ip
        }),
        "record: {md}"
    );
    // The PC's query is in its own flow's record.
    ensure!(
        sessions.iter().any(|s| s["client"]["ip"] == PC.ip
            && s["mdns"]["queries"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|q| q == "_ipp._tcp.local")),
        "no session of the PC with the query"
    );
    Ok(())
}
