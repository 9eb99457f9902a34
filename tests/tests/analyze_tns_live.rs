//! Oracle TNS from a real client. Debian has no Oracle server, but the `oracledb` driver
//! (PyPI, `.ci/pip.txt`) in thin mode is a TNS client written from the protocol: pointed
//! at a small listener (a socket server in the test that reads the CONNECT and answers
//! REFUSE, as a listener does for an unknown service), it sends the connect data a real
//! application sends (SERVICE_NAME, the server's HOST, the client's PROGRAM, HOST and
//! USER). The mirror port is recorded, imported and analyzed by the `kuroko` binary, and
//! the `oracle` fields of the session are compared with the connect data tshark's `tns`
//! dissector shows in the same pcap.
//!
//! Needs root, tshark and `/usr/bin/python3 -m pip install --break-system-packages -r
//! .ci/pip.txt` (CI runs as root and installs it).

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{DB, PC, Site};
use kuroko_tests::truth::tshark;
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";
const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";
const SERVICE: &str = "SALESPDB";

/// Accepts at most a few connections; for each, reads the CONNECT packet (and the DATA
/// packet that carries long connect data), then answers REFUSE (ORA-12514) and closes,
/// with the `VSNNUM` a 19c listener puts in it (318767104 = 0x13000000: 19.0.0.0.0).
const LISTENER: &str = r#"
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 1521))
s.listen(4)
def packet(c):
    h = b''
    while len(h) < 8:
        d = c.recv(8 - len(h))
        if not d:
            return None
        h += d
    n = struct.unpack('>H', h[:2])[0]
    body = b''
    while len(body) < n - 8:
        d = c.recv(n - 8 - len(body))
        if not d:
            return None
        body += d
    return h, body
for _ in range(4):
    c, _ = s.accept()
    c.settimeout(10)
    got = b''
    try:
        p = packet(c)
        while p is not None:
            got += p[1]
            if p[0][4] == 1:
                # CONNECT: the connect data is inline unless it did not fit.
                off, = struct.unpack('>H', p[1][18:20])
                ln, = struct.unpack('>H', p[1][16:18])
                if off + ln <= len(p[1]) + 8:
                    break
            else:
                break
            p = packet(c)
    except socket.timeout:
        pass
    err = b'(DESCRIPTION=(TMP=)(VSNNUM=318767104)(ERR=12514)(ERROR_STACK=(ERROR=(CODE=12514)(EMFI=4))))'
    body = bytes([1, 0]) + struct.pack('>H', len(err)) + err
    c.sendall(struct.pack('>HHBBH', 8 + len(body), 0, 4, 0, 0) + body)
    c.close()
"#;

const CLIENT: &str = r#"
import sys, oracledb
try:
    oracledb.connect(user='scott', password='tiger',
                     dsn=sys.argv[1] + ':1521/' + sys.argv[2], tcp_connect_timeout=10)
except oracledb.Error as e:
    print('refused:', e)
else:
    sys.exit('the listener accepted?')
"#;

/// `KEY=value` inside the `(SECTION=…)` of a TNS connect descriptor (case-insensitive
/// keys, as the listener reads them).
fn descriptor_value(s: &str, section: &str, key: &str) -> Option<String> {
    let up = s.to_ascii_uppercase();
    let from = up.find(&format!("({section}="))?;
    let at = from + up[from..].find(&format!("({key}="))? + key.len() + 2;
    let end = at + s[at..].find(')')?;
    Some(s[at..end].trim().to_string())
}

#[test]
fn analyze_tns_connect_from_python_oracledb_matches_tshark() -> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    let probe = Command::new(PYTHON)
        .args(["-c", "import oracledb; print(oracledb.__version__)"])
        .output()
        .context("cannot run /usr/bin/python3")?;
    ensure!(
        probe.status.success(),
        "the oracledb driver is missing: /usr/bin/python3 -m pip install \
         --break-system-packages -r .ci/pip.txt"
    );
    let site = Site::new()?;
    let data = DataDir::new("analyze-tns-live", CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("data dir has a parent")?
        .join("tns-live.pcap");
    let mut listener = site.serve(
        DB,
        "tns-listener",
        "tcp",
        1521,
        &[PYTHON, "-c", LISTENER, DB.ip],
    )?;
    let rec = Recorder::start(&site, &pcap)?;
    let client = site.sh(PC, &[PYTHON, "-c", CLIENT, DB.ip, SERVICE], 60);
    rec.stop()?;
    listener.stop();
    let client = client?;
    let said = String::from_utf8_lossy(&client.stdout);
    ensure!(
        said.contains("refused") && said.contains("12514"),
        "the client was refused by our listener: {said}"
    );
    data.import(&pcap)?;
    data.analyze()?;
    let sessions = data.session_log()?;
    let oracle: Vec<_> = sessions
        .iter()
        .filter(|s| s["protocol"] == "oracle")
        .collect();
    ensure!(oracle.len() == 1, "one oracle session: {sessions:#?}");
    let o = &oracle[0]["oracle"];
    assert_eq!(oracle[0]["server"]["port"], 1521);

    // tshark's view of the same CONNECT (the connect data, inline or in the DATA packet
    // after it; tshark shows it on the CONNECT either way when it reassembles).
    let t = tshark(&pcap, "tns.connect_data", &["tns.connect_data"])?;
    ensure!(t.len() == 1, "tshark: one TNS connect data: {t:?}");
    let cd = &t[0][0];
    let want = |section: &str, key: &str| {
        descriptor_value(cd, section, key)
            .with_context(|| format!("no {section}/{key} in tshark's connect data {cd}"))
    };
    assert_eq!(
        o["service_name"],
        want("CONNECT_DATA", "SERVICE_NAME")?.as_str()
    );
    assert_eq!(
        o["service_name"], SERVICE,
        "the service the client asked for"
    );
    assert_eq!(o["program"], want("CID", "PROGRAM")?.as_str());
    assert_eq!(o["user"], want("CID", "USER")?.as_str());
    // `host` is the server host the client dialled (ADDRESS), else the client's (CID).
    let host = descriptor_value(cd, "ADDRESS", "HOST").map_or_else(|| want("CID", "HOST"), Ok)?;
    assert_eq!(o["host"], host.as_str());

    // The listener's version: the VSNNUM of the REFUSE tshark shows, decoded, in the
    // session and as the DB host's software in the inventory with this session as evidence.
    let refuse = tshark(&pcap, "tns.refuse_data", &["tns.refuse_data"])?;
    ensure!(
        refuse
            .iter()
            .flatten()
            .any(|d| d.contains("VSNNUM=318767104")),
        "tshark's refuse data: {refuse:?}"
    );
    assert_eq!(o["version"], "19.0.0.0.0");
    let hosts = kuroko_tests::kuroko::parse_jsonl(&data.kuroko("assets", &["--format", "jsonl"])?)?;
    let tns: Vec<_> = hosts
        .iter()
        .filter(|h| h["ip"] == DB.ip)
        .flat_map(|h| h["software"].as_array().into_iter().flatten())
        .filter(|f| f["kind"] == "tns-version")
        .collect();
    ensure!(tns.len() == 1, "one TNS version on the DB host: {hosts:#?}");
    assert_eq!(tns[0]["text"], "Oracle TNS listener Version 19.0.0.0.0");
    assert_eq!(tns[0]["session"], oracle[0]["id"]);
    assert_eq!(tns[0]["product"], "oracle_tns");
    Ok(())
}
