//! Tunnels and protocol upgrades with real clients and servers: after the upgrade point the
//! session's inner layer (TLS, or HTTP inside a CONNECT) must be parsed, and each field
//! must agree with tshark on the same pcap.
//!
//! One site, one recording, every daemon started once:
//! - tinyproxy (Debian) on the proxy host; curl through it with CONNECT to an
//!   `openssl s_server` (TLS) and, with `-p` (proxytunnel), to a plain-HTTP Python server;
//! - aiosmtpd with its STARTTLS support (`tls_context`) on the mail host, swaks `-tls`;
//!   (aiosmtpd rather than exim4/postfix: the Debian MTAs want a system service, a spool
//!   and a local-part setup; aiosmtpd runs in the namespace as one process);
//! - dovecot (private config, `ssl = yes`) for IMAP STARTTLS and POP3 STLS, with Python's
//!   imaplib and poplib.
//!
//! Needs root, tinyproxy, swaks, python3-aiosmtpd, dovecot and tshark (CI runs as root).

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{EXT, MAIL, PC, PROXY, Site};
use kuroko_tests::truth::{openssl_cert, tshark};
use serde_json::Value;
use std::path::Path;

const PYTHON: &str = "/usr/bin/python3";
const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";
const WEB_NAME: &str = "www.example.com";
const MAIL_NAME: &str = "mail.corp.example";
const USER: &str = "hanako";
const PASSWORD: &str = "kuroko-test-pw";

/// Adds `ip name` to a host's private /etc/hosts (the site mounts /etc/netns/<ns>/hosts).
fn add_host_name(site: &Site, ns_of: kuroko_tests::site::Host, ip: &str, name: &str) {
    let path = Path::new("/etc/netns").join(site.ns(ns_of)).join("hosts");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&format!("{ip} {name}\n"));
    std::fs::write(&path, text).expect("write netns hosts");
}

/// A self-signed certificate for `name`; returns (cert, key) paths.
fn cert(dir: &Path, name: &str) -> anyhow::Result<(String, String)> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let (c, k) = (
        cert.to_str().context("utf-8")?.to_string(),
        key.to_str().context("utf-8")?.to_string(),
    );
    kuroko_tests::proc::sh_in(
        "",
        &[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
            "-keyout",
            &k,
            "-out",
            &c,
        ],
        30,
    )?;
    // dovecot reads the key as an unprivileged user.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    Ok((c, k))
}

/// A dovecot of our own (`kuroko_tests::dovecot`) with STARTTLS/STLS and one short mail.
fn dovecot_config(dir: &Path, cert: &str, key: &str) -> anyhow::Result<std::path::PathBuf> {
    kuroko_tests::dovecot::write(
        dir,
        &kuroko_tests::dovecot::DovecotConfig {
            listen: MAIL.ip,
            user: USER,
            password: PASSWORD,
            tls: Some((cert, key)),
            mails: &[(
                "1700000000.M1P1.kuroko",
                b"From: sato@corp.example\r\nTo: hanako@corp.example\r\nSubject: hello\r\n\r\nhi\r\n",
            )],
        },
    )
}

/// Sessions of the log whose `tunnel.kind` is `kind` and server port `port`.
fn tunnelled<'a>(sessions: &'a [Value], kind: &str, port: u16) -> Vec<&'a Value> {
    sessions
        .iter()
        .filter(|s| s["tunnel"]["kind"] == kind && s["server"]["port"] == port)
        .collect()
}

/// tshark's SNI of the ClientHello(s) of session `s` (its client and server ports).
fn tshark_sni(pcap: &Path, s: &Value) -> anyhow::Result<Vec<String>> {
    Ok(tshark(
        pcap,
        &format!(
            "tls.handshake.type == 1 && tcp.dstport == {} && tcp.srcport == {}",
            s["server"]["port"], s["client"]["port"]
        ),
        &["tls.handshake.extensions_server_name"],
    )?
    .into_iter()
    .map(|r| r.into_iter().next().unwrap_or_default())
    .collect())
}

/// tshark's negotiated version (ServerHello supported_versions, else the record's) in
/// session `s`, as Kuroko names versions.
fn tshark_version(pcap: &Path, s: &Value) -> anyhow::Result<Vec<String>> {
    let rows = tshark(
        pcap,
        &format!(
            "tls.handshake.type == 2 && tcp.srcport == {} && tcp.dstport == {}",
            s["server"]["port"], s["client"]["port"]
        ),
        &[
            "tls.handshake.extensions.supported_version",
            "tls.handshake.version",
        ],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let v = r
                .iter()
                .find(|x| !x.is_empty())
                .cloned()
                .unwrap_or_default();
            match v.as_str() {
                "0x0304" => "TLSv1.3".to_string(),
                "0x0303" => "TLSv1.2".to_string(),
                other => other.to_string(),
            }
        })
        .collect())
}

#[test]
fn connect_and_starttls_inner_tls_matches_tshark() -> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    for tool in [
        "/usr/bin/tinyproxy",
        "/usr/bin/swaks",
        "/usr/sbin/dovecot",
        "/usr/bin/tshark",
    ] {
        ensure!(
            Path::new(tool).exists(),
            "{tool} is missing (see .ci/packages.txt: tinyproxy swaks dovecot-imapd \
             dovecot-pop3d tshark)"
        );
    }
    let site = Site::new()?;
    let work = site.work_dir().to_path_buf();
    let data = DataDir::new("traffic-tunnels", CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("data dir has a parent")?
        .join("tunnels.pcap");
    add_host_name(&site, PROXY, EXT.ip, WEB_NAME);
    add_host_name(&site, PC, MAIL.ip, MAIL_NAME);

    // Servers.
    let (web_cert, web_key) = cert(&work, WEB_NAME)?;
    let _tls = site.serve(
        EXT,
        "s_server",
        "tcp",
        443,
        &[
            "openssl",
            "s_server",
            "-accept",
            &format!("{}:443", EXT.ip),
            "-cert",
            &web_cert,
            "-key",
            &web_key,
            "-www",
            "-quiet",
        ],
    )?;
    // TLS 1.2: the certificate chain is in the clear (certificate checks through a proxy).
    let _tls12 = site.serve(
        EXT,
        "s_server-tls12",
        "tcp",
        8443,
        &[
            "openssl",
            "s_server",
            "-accept",
            &format!("{}:8443", EXT.ip),
            "-cert",
            &web_cert,
            "-key",
            &web_key,
            "-tls1_2",
            "-www",
            "-quiet",
        ],
    )?;
    let www = work.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("inner.txt"), "inside the tunnel\n")?;
    let _http = site.serve(
        EXT,
        "http-server",
        "tcp",
        8080,
        &[
            PYTHON,
            "-m",
            "http.server",
            "--bind",
            EXT.ip,
            "--directory",
            www.to_str().context("utf-8")?,
            "8080",
        ],
    )?;
    let tp_conf = work.join("tinyproxy.conf");
    std::fs::write(
        &tp_conf,
        format!(
            "User nobody\nGroup nogroup\nPort 3128\nListen {}\nTimeout 30\nMaxClients 20\n\
             Allow 10.10.0.0/16\nConnectPort 443\nConnectPort 8443\nConnectPort 8080\nLogLevel Info\n",
            PROXY.ip
        ),
    )?;
    let _proxy = site.serve(
        PROXY,
        "tinyproxy",
        "tcp",
        3128,
        &[
            "/usr/bin/tinyproxy",
            "-d",
            "-c",
            tp_conf.to_str().context("utf-8")?,
        ],
    )?;
    let (mail_cert, mail_key) = cert(&work, MAIL_NAME)?;
    let smtpd = format!(
        "import ssl, time\n\
         from aiosmtpd.controller import Controller\n\
         from aiosmtpd.handlers import Sink\n\
         ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)\n\
         ctx.load_cert_chain('{mail_cert}', '{mail_key}')\n\
         c = Controller(Sink(), hostname='{ip}', port=25, tls_context=ctx, require_starttls=False)\n\
         c.start()\n\
         while True: time.sleep(3600)\n",
        ip = MAIL.ip
    );
    let _smtp = site.serve(
        MAIL,
        "aiosmtpd-starttls",
        "tcp",
        25,
        &[PYTHON, "-c", &smtpd],
    )?;
    let dc = work.join("dovecot");
    let dconf = dovecot_config(&dc, &mail_cert, &mail_key)?;
    let mut dovecot = kuroko_tests::dovecot::serve(&site, MAIL, &dconf)?;

    // Clients, recorded on the mirror port.
    let rec = Recorder::start(&site, &pcap)?;
    let proxy = format!("http://{}:3128", PROXY.ip);
    let traffic = (|| -> anyhow::Result<()> {
        site.sh(
            PC,
            &[
                "curl",
                "-sSk",
                "--max-time",
                "15",
                "-x",
                &proxy,
                &format!("https://{WEB_NAME}/"),
            ],
            30,
        )?;
        site.sh(
            PC,
            &[
                "curl",
                "-sSk",
                "--max-time",
                "15",
                "-x",
                &proxy,
                &format!("https://{WEB_NAME}:8443/"),
            ],
            30,
        )?;
        let out = site.sh(
            PC,
            &[
                "curl",
                "-sS",
                "--max-time",
                "15",
                "-p",
                "-x",
                &proxy,
                &format!("http://{}:8080/inner.txt", EXT.ip),
            ],
            30,
        )?;
        ensure!(
            String::from_utf8_lossy(&out.stdout).contains("inside the tunnel"),
            "curl through the tunnel: {out:?}"
        );
        site.sh(
            PC,
            &[
                "swaks",
                "--server",
                MAIL_NAME,
                "--tls",
                "--tls-sni",
                MAIL_NAME,
                "--from",
                "taro@corp.example",
                "--to",
                "hanako@corp.example",
                "--helo",
                "pc.corp.example",
            ],
            60,
        )?;
        let py = "import imaplib, poplib, ssl, sys\n\
                  ctx = ssl.create_default_context()\n\
                  ctx.check_hostname = False\n\
                  ctx.verify_mode = ssl.CERT_NONE\n\
                  m = imaplib.IMAP4(sys.argv[1], 143, timeout=20)\n\
                  m.starttls(ssl_context=ctx)\n\
                  m.login(sys.argv[2], sys.argv[3])\n\
                  m.logout()\n\
                  p = poplib.POP3(sys.argv[1], 110, timeout=20)\n\
                  p.stls(context=ctx)\n\
                  p.user(sys.argv[2]); p.pass_(sys.argv[3])\n\
                  p.quit()\n";
        site.sh(PC, &[PYTHON, "-c", py, MAIL_NAME, USER, PASSWORD], 60)?;
        Ok(())
    })();
    rec.stop()?;
    dovecot.stop();
    traffic.with_context(|| {
        format!(
            "dovecot log:\n{}",
            std::fs::read_to_string(dc.join("dovecot.log")).unwrap_or_default()
        )
    })?;

    data.import(&pcap)?;
    data.analyze()?;
    let sessions = data.session_log()?;

    // CONNECT → TLS: both layers in one record, SNI and version as tshark reads them.
    let connect_tls: Vec<&Value> = sessions
        .iter()
        .filter(|s| {
            s["tunnel"]["kind"] == "http-connect" && s["tunnel"]["target"] == "www.example.com:443"
        })
        .collect();
    ensure!(
        connect_tls.len() == 1,
        "one CONNECT to {WEB_NAME}:443: {sessions:#?}"
    );
    let s = connect_tls[0];
    assert_eq!(s["protocol"], "http");
    assert_eq!(s["http"]["method"], "CONNECT");
    assert_eq!(s["tunnel"]["inner"], "tls");
    let t_sni = tshark_sni(&pcap, s)?;
    ensure!(
        t_sni.len() == 1,
        "tshark: one ClientHello through the proxy: {t_sni:?}"
    );
    assert_eq!(s["tls"]["sni"], t_sni[0].as_str(), "SNI inside CONNECT");
    let t_ver = tshark_version(&pcap, s)?;
    ensure!(t_ver.len() == 1, "tshark: one ServerHello: {t_ver:?}");
    assert_eq!(
        s["tls"]["version"],
        t_ver[0].as_str(),
        "TLS version inside CONNECT"
    );

    // CONNECT → TLS 1.2: the leaf certificate's fields, against openssl reading the
    // certificate bytes tshark extracted from the same pcap.
    let s12 = sessions
        .iter()
        .find(|s| s["tunnel"]["target"] == "www.example.com:8443")
        .context("the CONNECT to :8443")?;
    assert_eq!(s12["tls"]["version"], "TLSv1.2");
    let t_cert = tshark(
        &pcap,
        &format!(
            "tls.handshake.type == 11 && tcp.srcport == 3128 && tcp.dstport == {}",
            s12["client"]["port"]
        ),
        &["tls.handshake.certificate"],
    )?;
    ensure!(
        t_cert.len() == 1,
        "tshark: one Certificate message: {t_cert:?}"
    );
    let cert = openssl_cert(&t_cert[0][0], &work.join("leaf.der"))?;
    let leaf = &s12["tls"]["certs"][0];
    assert_eq!(leaf["serial"], cert.serial.as_str(), "serial");
    assert_eq!(leaf["sha1"], cert.sha1.as_str(), "sha1");
    assert_eq!(leaf["sha256"], cert.sha256.as_str(), "sha256");
    ensure!(
        cert.san
            .contains(&format!("DNS:{}", leaf["san"][0].as_str().unwrap_or("?"))),
        "SAN {} vs openssl {}",
        leaf["san"],
        cert.san
    );
    assert_eq!(leaf["self_signed"], true);
    assert_eq!(leaf["expired"], false);
    let hits = data.search(&format!(
        "cert_sha256:{} AND tunnel:http-connect AND san:\"{WEB_NAME}\"",
        cert.sha256
    ))?;
    assert_eq!(hits.len(), 1, "certificate fields are searchable");

    // CONNECT → plain HTTP: the inner GET as tshark reads it.
    let inner_http: Vec<&Value> = sessions
        .iter()
        .filter(|s| s["tunnel"]["inner"] == "http")
        .collect();
    ensure!(
        inner_http.len() == 1,
        "one CONNECT carrying HTTP: {sessions:#?}"
    );
    // tshark 4.0 does not dissect HTTP inside a CONNECT tunnel on the proxy port, so the
    // request line is read from the TCP payload it reassembled (after the CONNECT).
    let t_payloads = tshark(
        &pcap,
        "tcp.dstport == 3128 && tcp.payload contains \"GET /\"",
        &["tcp.payload"],
    )?;
    let t_uri: Vec<String> = t_payloads
        .iter()
        .filter_map(|r| {
            let hex = r.first()?.replace(':', "");
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let line = text.lines().next()?.to_string();
            let mut parts = line.split(' ');
            (parts.next()? == "GET").then(|| parts.next().map(str::to_string))?
        })
        .collect();
    ensure!(t_uri.len() == 1, "tshark: one inner GET: {t_payloads:?}");
    let txs = inner_http[0]["http"]["transactions"]
        .as_array()
        .context("transactions")?;
    ensure!(
        txs.iter()
            .any(|t| t["uri"] == t_uri[0].as_str() && t["status"] == 200),
        "inner GET {} among {txs:#?}",
        t_uri[0]
    );

    // STARTTLS (SMTP, IMAP) and STLS (POP3): the mail protocol stays, TLS is parsed.
    for (proto, port) in [("smtp", 25u16), ("imap", 143), ("pop3", 110)] {
        let v = tunnelled(&sessions, "starttls", port);
        ensure!(v.len() == 1, "{proto}: one STARTTLS session: {sessions:#?}");
        assert_eq!(v[0]["protocol"], proto);
        assert_eq!(v[0]["tunnel"]["inner"], "tls");
        let t_sni = tshark_sni(&pcap, v[0])?;
        ensure!(
            t_sni.len() == 1,
            "tshark {proto}: one ClientHello: {t_sni:?}"
        );
        assert_eq!(v[0]["tls"]["sni"], t_sni[0].as_str(), "{proto} SNI");
        let t_ver = tshark_version(&pcap, v[0])?;
        ensure!(
            t_ver.len() == 1,
            "tshark {proto}: one ServerHello: {t_ver:?}"
        );
        assert_eq!(v[0]["tls"]["version"], t_ver[0].as_str(), "{proto} version");
    }

    // The query language reaches both layers.
    let hits = data.search("protocol:tls AND tunnel:http-connect")?;
    assert_eq!(
        hits.len(),
        2,
        "protocol:tls AND tunnel:http-connect: {hits:#?}"
    );
    let hits = data.search("protocol:smtp AND tunnel:starttls")?;
    assert_eq!(hits.len(), 1, "protocol:smtp AND tunnel:starttls");
    let hits = data.search(&format!("sni:\"{MAIL_NAME}\" AND tunnel:starttls"))?;
    assert_eq!(hits.len(), 3, "STARTTLS sessions by SNI");
    Ok(())
}
