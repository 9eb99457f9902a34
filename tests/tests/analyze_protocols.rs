//! The analyzer on real traffic: real clients against real servers in the test site's
//! network namespaces, recorded on the mirror port with tcpdump, imported and analyzed by
//! the `kuroko` binary. Every expected value comes from the traffic itself: from tshark
//! reading the same pcap, or from the bytes the test sent (SHA-256 of the sent file).
//!
//! Needs root and the site's tools (CI runs as root); fails with a clear message otherwise.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{DNS, EXT, FILES, MAIL, PC, Site};
use kuroko_tests::truth::{random_file, stored_object_sha, tshark};
use serde_json::Value;
use std::path::PathBuf;

const PYTHON: &str = "/usr/bin/python3";
const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";

/// Runs `traffic` on a fresh site while recording, then imports and analyzes the pcap.
fn capture_and_analyze(
    name: &str,
    traffic: impl FnOnce(&Site) -> anyhow::Result<()>,
) -> anyhow::Result<(DataDir, PathBuf)> {
    let site = Site::new()?;
    let data = DataDir::new(&format!("analyze-{name}"), CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("data dir has a parent")?
        .join(format!("{name}.pcap"));
    let rec = Recorder::start(&site, &pcap)?;
    let result = traffic(&site);
    rec.stop()?;
    result.with_context(|| format!("traffic of {name}"))?;
    data.import(&pcap)?;
    data.analyze()?;
    Ok((data, pcap))
}

fn sessions_with(data: &DataDir, protocol: &str) -> anyhow::Result<Vec<Value>> {
    Ok(data
        .session_log()?
        .into_iter()
        .filter(|s| s["protocol"] == protocol)
        .collect())
}

fn run_ok(site: &Site, host: kuroko_tests::site::Host, argv: &[&str]) -> anyhow::Result<String> {
    let out = site.sh(host, argv, 60)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn analyze_http_fields_match_tshark_and_download_is_byte_identical() -> anyhow::Result<()> {
    let mut sent_sha = String::new();
    let (data, pcap) = capture_and_analyze("http", |site| {
        let dir = site.work_dir().join("www");
        std::fs::create_dir_all(&dir)?;
        sent_sha = random_file(&dir.join("report.bin"), 300_000, 7)?;
        let d = dir.to_str().context("utf-8")?;
        let _srv = site.serve(
            FILES,
            "http-server",
            "tcp",
            8000,
            &[
                PYTHON,
                "-m",
                "http.server",
                "8000",
                "--bind",
                FILES.ip,
                "--directory",
                d,
            ],
        )?;
        run_ok(
            site,
            PC,
            &[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-A",
                "kt-agent/1.0",
                "http://10.10.2.20:8000/report.bin?x=1",
            ],
        )?;
        Ok(())
    })?;
    let http = sessions_with(&data, "http")?;
    ensure!(http.len() == 1, "one HTTP session expected, got {http:#?}");
    let s = &http[0];
    let t = tshark(
        &pcap,
        "http.request",
        &[
            "http.request.method",
            "http.host",
            "http.request.uri",
            "http.user_agent",
        ],
    )?;
    ensure!(t.len() == 1, "tshark sees one request: {t:?}");
    assert_eq!(s["http"]["method"], t[0][0].as_str());
    assert_eq!(s["http"]["host"], t[0][1].as_str());
    assert_eq!(s["http"]["transactions"][0]["uri"], t[0][2].as_str());
    assert_eq!(s["http"]["user_agent"], t[0][3].as_str());
    let status = tshark(&pcap, "http.response", &["http.response.code"])?;
    assert_eq!(
        s["http"]["status"].as_u64().map(|v| v.to_string()),
        Some(status[0][0].clone())
    );
    // Addresses, ports and MACs as tshark sees the first packet (the SYN) of the stream.
    let syn = tshark(
        &pcap,
        "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==8000",
        &["ip.src", "tcp.srcport", "eth.src", "ip.dst"],
    )?;
    assert_eq!(s["client"]["ip"], syn[0][0].as_str());
    assert_eq!(
        s["client"]["port"].as_u64().map(|v| v.to_string()),
        Some(syn[0][1].clone())
    );
    assert_eq!(s["client"]["mac"], syn[0][2].as_str());
    assert_eq!(s["server"]["ip"], syn[0][3].as_str());
    // Payload bytes per direction = sum of tcp.len per direction.
    let up: u64 = tshark(&pcap, "tcp.dstport==8000", &["tcp.len"])?
        .iter()
        .map(|r| r[0].parse::<u64>().unwrap_or(0))
        .sum();
    let down: u64 = tshark(&pcap, "tcp.srcport==8000", &["tcp.len"])?
        .iter()
        .map(|r| r[0].parse::<u64>().unwrap_or(0))
        .sum();
    assert_eq!(s["bytes_up"].as_u64(), Some(up));
    assert_eq!(s["bytes_down"].as_u64(), Some(down));
    // The download, byte for byte.
    let files = s["files"].as_array().context("files on the HTTP session")?;
    ensure!(
        files.iter().any(|f| f["sha256"] == sent_sha.as_str()),
        "sent file {sent_sha} not among {files:#?}"
    );
    assert_eq!(stored_object_sha(&data, &sent_sha)?, sent_sha);
    Ok(())
}

#[test]
fn analyze_dns_and_tls_fields_match_tshark() -> anyhow::Result<()> {
    let (data, pcap) = capture_and_analyze("dns-tls", |site| {
        let _dns = site.serve(
            DNS,
            "dnsmasq",
            "udp",
            53,
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=10.10.2.53",
                "--pid-file=",
                "--user=root",
                "--address=/files.corp.example/10.10.2.20",
            ],
        )?;
        run_ok(
            site,
            PC,
            &[
                "dig",
                "+tries=1",
                "+time=3",
                "@10.10.2.53",
                "files.corp.example",
                "A",
            ],
        )?;
        let w = site.work_dir();
        let (cert, key) = (w.join("c.pem"), w.join("k.pem"));
        let (c, k) = (
            cert.to_str().context("utf-8")?,
            key.to_str().context("utf-8")?,
        );
        kuroko_tests::proc::sh_in(
            "",
            &[
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=secure.example",
                "-keyout",
                k,
                "-out",
                c,
            ],
            60,
        )?;
        // A non-standard port: identification has to go by content.
        let _tls = site.serve(
            EXT,
            "s_server",
            "tcp",
            4443,
            &[
                "openssl",
                "s_server",
                "-accept",
                "203.0.113.10:4443",
                "-cert",
                c,
                "-key",
                k,
                "-www",
                "-quiet",
            ],
        )?;
        run_ok(
            site,
            PC,
            &[
                "curl",
                "-sSk",
                "--max-time",
                "10",
                "--resolve",
                "secure.example:4443:203.0.113.10",
                "https://secure.example:4443/",
            ],
        )?;
        Ok(())
    })?;
    let dns = sessions_with(&data, "dns")?;
    let t = tshark(
        &pcap,
        "dns.flags.response==0",
        &["dns.qry.name", "dns.qry.type"],
    )?;
    ensure!(
        !dns.is_empty() && !t.is_empty(),
        "dns sessions {dns:?}, tshark {t:?}"
    );
    assert_eq!(dns[0]["dns"]["query"], t[0][0].as_str());
    let answers = tshark(&pcap, "dns.flags.response==1", &["dns.a"])?;
    let ans = dns[0]["dns"]["answers"].to_string();
    ensure!(
        ans.contains(&answers[0][0]),
        "answers {ans} lack {}",
        answers[0][0]
    );
    let tls = sessions_with(&data, "tls")?;
    let t = tshark(
        &pcap,
        "tls.handshake.type==1",
        &["tls.handshake.extensions_server_name", "tls.handshake.ja3"],
    )?;
    ensure!(
        tls.len() == 1 && t.len() == 1,
        "tls sessions {tls:#?}, tshark {t:?}"
    );
    assert_eq!(tls[0]["tls"]["sni"], t[0][0].as_str());
    assert_eq!(tls[0]["server"]["port"], 4443);
    assert_eq!(
        tls[0]["tls"]["ja3"],
        t[0][1].as_str(),
        "JA3 as tshark computes it"
    );
    Ok(())
}

#[test]
fn analyze_ssh_banners_match_tshark() -> anyhow::Result<()> {
    let (data, pcap) = capture_and_analyze("ssh", |site| {
        let w = site.work_dir();
        let hk = w.join("hostkey");
        let hks = hk.to_str().context("utf-8")?;
        kuroko_tests::proc::sh_in(
            "",
            &["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hks],
            20,
        )?;
        let cfg = w.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "Port 22\nListenAddress {}\nHostKey {hks}\nPidFile none\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
                FILES.ip
            ),
        )?;
        std::fs::create_dir_all("/run/sshd")?;
        let _sshd = site.serve(
            FILES,
            "sshd",
            "tcp",
            22,
            &[
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-f",
                cfg.to_str().context("utf-8")?,
            ],
        )?;
        // Authentication fails (no key): the banners and key exchange are what we want.
        let _ = site.run(
            PC,
            &[
                "ssh",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=5",
                "nobody@10.10.2.20",
                "true",
            ],
            30,
        )?;
        Ok(())
    })?;
    let ssh = sessions_with(&data, "ssh")?;
    let t = tshark(&pcap, "ssh.protocol", &["ssh.protocol", "tcp.dstport"])?;
    ensure!(
        ssh.len() == 1 && t.len() == 2,
        "ssh sessions {ssh:#?}, tshark {t:?}"
    );
    for row in &t {
        let key = if row[1] == "22" {
            "client_version"
        } else {
            "server_version"
        };
        assert_eq!(ssh[0]["ssh"][key], row[0].as_str(), "{key}");
    }
    Ok(())
}

#[test]
fn analyze_ftp_links_data_channels_and_files_are_byte_identical() -> anyhow::Result<()> {
    let mut down_sha = String::new();
    let mut up_sha = String::new();
    let (data, pcap) = capture_and_analyze("ftp", |site| {
        let root = site.work_dir().join("ftproot");
        std::fs::create_dir_all(&root)?;
        down_sha = random_file(&root.join("budget.xlsx"), 200_000, 11)?;
        let upload = site.work_dir().join("notes.bin");
        up_sha = random_file(&upload, 50_000, 13)?;
        let _ftp = kuroko_tests::ftp::serve(site, FILES, &root)?;
        run_ok(
            site,
            PC,
            &[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "ftp://alice:secret@10.10.2.20/budget.xlsx",
            ],
        )?;
        run_ok(
            site,
            PC,
            &[
                "curl",
                "-sS",
                "-T",
                upload.to_str().context("utf-8")?,
                "ftp://alice:secret@10.10.2.20/notes.bin",
            ],
        )?;
        Ok(())
    })?;
    let ctrl = sessions_with(&data, "ftp")?;
    let t = tshark(&pcap, "ftp.request.command==\"USER\"", &["ftp.request.arg"])?;
    ensure!(
        ctrl.len() == 2 && t.len() == 2,
        "ftp control sessions {ctrl:#?}, tshark {t:?}"
    );
    assert_eq!(ctrl[0]["ftp"]["user"], t[0][0].as_str());
    let cmds = tshark(&pcap, "ftp.request", &["ftp.request.command"])?;
    let ours: Vec<String> = ctrl
        .iter()
        .flat_map(|c| c["ftp"]["commands"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            c.as_str()
                .unwrap_or("")
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let theirs: Vec<String> = cmds.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ours, theirs, "commands in order");
    let data_sessions = sessions_with(&data, "ftp-data")?;
    ensure!(
        data_sessions.len() == 2,
        "two data channels: {data_sessions:#?}"
    );
    for d in &data_sessions {
        let control = d["ftp"]["control_session"]
            .as_str()
            .context("control_session on ftp-data")?;
        ensure!(
            ctrl.iter().any(|c| c["id"] == control),
            "{control} is not a control session id"
        );
    }
    for sha in [&down_sha, &up_sha] {
        let on_data = data_sessions
            .iter()
            .any(|d| d["files"].to_string().contains(sha.as_str()));
        let on_control = ctrl
            .iter()
            .any(|c| c["ftp"]["files"].to_string().contains(sha.as_str()));
        ensure!(
            on_data && on_control,
            "{sha} must be on the data session ({on_data}) and its control session ({on_control})"
        );
        assert_eq!(&stored_object_sha(&data, sha)?, sha);
    }
    Ok(())
}

#[test]
fn analyze_smtp_mail_fields_match_tshark_and_attachment_is_byte_identical() -> anyhow::Result<()> {
    let mut att_sha = String::new();
    let (data, pcap) = capture_and_analyze("smtp", |site| {
        let att = site.work_dir().join("invoice.pdf");
        att_sha = random_file(&att, 40_000, 17)?;
        let _smtp = site.serve(
            MAIL,
            "aiosmtpd",
            "tcp",
            25,
            &[PYTHON, "-m", "aiosmtpd", "-n", "-l", "10.10.2.25:25"],
        )?;
        run_ok(
            site,
            PC,
            &[
                "swaks",
                "--server",
                "10.10.2.25",
                "--from",
                "alice@corp.example",
                "--to",
                "bob@corp.example",
                "--header",
                "Subject: Invoice November",
                "--attach",
                att.to_str().context("utf-8")?,
                "--attach-type",
                "application/pdf",
            ],
        )?;
        Ok(())
    })?;
    let smtp = sessions_with(&data, "smtp")?;
    ensure!(smtp.len() == 1, "one smtp session: {smtp:#?}");
    let m = &smtp[0]["mail"];
    let t = tshark(&pcap, "imf", &["imf.subject", "imf.from", "imf.to"])?;
    ensure!(t.len() == 1, "tshark sees one message: {t:?}");
    assert_eq!(m["subject"], t[0][0].as_str());
    ensure!(
        t[0][1].contains(m["from"].as_str().unwrap_or("?")),
        "from {} vs {}",
        m["from"],
        t[0][1]
    );
    ensure!(
        m["to"].to_string().contains("bob@corp.example"),
        "to: {}",
        m["to"]
    );
    let atts = m["attachments"].as_array().context("attachments")?;
    ensure!(
        atts.iter().any(|a| a["sha256"] == att_sha.as_str()),
        "attachment {att_sha} not among {atts:#?}"
    );
    assert_eq!(stored_object_sha(&data, &att_sha)?, att_sha);
    let eml = m["eml_sha256"]
        .as_str()
        .context("the whole mail is kept as .eml")?;
    assert_eq!(stored_object_sha(&data, eml)?, eml);
    Ok(())
}

#[test]
fn analyze_winrm_is_labelled_and_its_request_matches_tshark() -> anyhow::Result<()> {
    let (data, pcap) = capture_and_analyze("winrm", |site| {
        let _srv = site.serve(
            FILES,
            "winrm-http",
            "tcp",
            5985,
            &[PYTHON, "-m", "http.server", "5985", "--bind", FILES.ip],
        )?;
        // The server answers 501 to POST; the request is what identifies WinRM.
        let _ = site.run(
            PC,
            &[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/soap+xml;charset=UTF-8",
                "--data",
                "<s:Envelope/>",
                "http://10.10.2.20:5985/wsman",
            ],
            30,
        )?;
        Ok(())
    })?;
    let winrm = sessions_with(&data, "winrm")?;
    let t = tshark(
        &pcap,
        "http.request",
        &["http.request.method", "http.request.uri", "tcp.dstport"],
    )?;
    ensure!(
        winrm.len() == 1 && t.len() == 1,
        "winrm sessions {winrm:#?}, tshark {t:?}"
    );
    assert_eq!(winrm[0]["http"]["method"], t[0][0].as_str());
    assert_eq!(winrm[0]["http"]["transactions"][0]["uri"], t[0][1].as_str());
    assert_eq!(winrm[0]["server"]["port"].to_string(), t[0][2]);
    Ok(())
}

#[test]
fn analyze_telnet_user_matches_what_tshark_shows_the_client_typed() -> anyhow::Result<()> {
    let (data, pcap) = capture_and_analyze("telnet", |site| {
        let _telnetd = site.serve(
            FILES,
            "telnetd",
            "tcp",
            23,
            &[
                "busybox",
                "telnetd",
                "-F",
                "-p",
                "23",
                "-b",
                FILES.ip,
                "-l",
                "/bin/login",
            ],
        )?;
        let script = format!(
            "(sleep 1.5; printf 'alice\\r\\n'; sleep 1.5; printf 'Winter2026\\r\\n'; sleep 3) | telnet {} 23",
            FILES.ip
        );
        let _ = site.run(PC, &["sh", "-c", &script], 30)?;
        Ok(())
    })?;
    let telnet = sessions_with(&data, "telnet")?;
    ensure!(telnet.len() == 1, "one telnet session: {telnet:#?}");
    // What the client typed, as tshark decodes it (options stripped), up to the first line end.
    let typed: String = tshark(&pcap, "telnet.data && tcp.dstport==23", &["telnet.data"])?
        .into_iter()
        .map(|r| r.join(""))
        .collect::<Vec<_>>()
        .join("");
    let typed = typed.replace("\\r", "\r").replace("\\n", "\n");
    let first_line = typed
        .split(['\r', '\n'])
        .find(|l| !l.trim().is_empty())
        .context("client typed nothing")?;
    assert_eq!(telnet[0]["telnet"]["user"], first_line.trim());
    Ok(())
}
