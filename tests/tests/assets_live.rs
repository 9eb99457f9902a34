//! Passive vulnerability analysis against real servers in the test site's namespaces:
//! Debian's openssh-server, nginx, vsftpd, dovecot and exim4, and `openssl s_server` with certificates
//! made by openssl, with real clients (ssh, curl, Python's poplib, openssl s_client)
//! logging in with clear-text passwords. The mirror port is recorded, imported and
//! analyzed by the `kuroko` binary.
//!
//! Checked against the installed packages (`dpkg-query -W`) and tshark on the same pcap:
//! - the inventory (`kuroko assets --format jsonl`) shows the file server's sshd with the
//!   upstream version and Debian revision dpkg reports, vsftpd's greeting with dpkg's
//!   version, dovecot's greeting (no version: `unknown`), the ports, and the TLS
//!   certificate subject tshark decodes; nginx's `Server` header with dpkg's upstream
//!   version and tshark's `http.server`, and no finding for it (1.22.1 is past every
//!   listed nginx advisory: the current-version twin); Exim's greeting with dpkg's upstream
//!   version, judged `unknown` and not `vulnerable` for the advisories whose fix Debian
//!   backported under the same bare `Exim 4.96` banner;
//! - `weak_tls` fires on the TLS 1.0 server (NULL-SHA negotiated: no encryption) with an
//!   expired, self-signed certificate, and
//!   not on the TLS 1.3-only twin;
//! - `cleartext_credentials` fires on the FTP and POP3 logins (user named, password never
//!   stored), and not on the POP3-over-TLS twin;
//! - `vulnerable_software` fires on an inside server announcing Ubuntu's OpenSSH before
//!   the regreSSHion fix, and not on Debian's current openssh-server.
//!
//! Needs root, openssh-server, nginx, vsftpd, dovecot-pop3d, exim4-daemon-light, openssl
//! and tshark.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::{DataDir, site_config};
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{DB, FILES, MAIL, PC, PC2, PROXY, Site};
use kuroko_tests::truth::tshark;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const PYTHON: &str = "/usr/bin/python3";
const FTP_PASSWORD: &str = "ftp-secret-4711";
const POP_USER: &str = "hanako";
const POP_PASSWORD: &str = "pop-secret-0815";
/// The uid dovecot's mail processes run as (`nobody`).
const MAIL_UID: u32 = 65534;
/// What a not-yet-patched Ubuntu 22.04 sshd announces (fixed in 3ubuntu0.10).
const OLD_UBUNTU_SSH: &str = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6";

fn run(argv: &[&str], dir: &Path) -> anyhow::Result<()> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    ensure!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A self-signed certificate valid now, and one that expired in 2021 (made with
/// `openssl ca -selfsign`, which takes explicit dates).
fn certificates(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("newcerts"))?;
    std::fs::write(dir.join("index.txt"), "")?;
    std::fs::write(dir.join("serial"), "01\n")?;
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndir=.\ndatabase=index.txt\nnew_certs_dir=newcerts\n\
         serial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n",
    )?;
    run(
        &[
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "expired.key",
            "-subj",
            "/CN=files.corp.example",
            "-out",
            "expired.csr",
        ],
        dir,
    )?;
    run(
        &[
            "openssl",
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "expired.key",
            "-in",
            "expired.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20210101000000Z",
        ],
        dir,
    )?;
    run(
        &[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-keyout",
            "self.key",
            "-out",
            "self.pem",
            "-subj",
            "/CN=db.corp.example",
        ],
        dir,
    )?;
    Ok(())
}

fn dpkg_version(package: &str) -> anyhow::Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .context("dpkg-query")?;
    ensure!(out.status.success(), "{package} is not installed");
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A package's version as dpkg has it, and its upstream part (before the Debian revision;
/// these packages have no epoch).
fn dpkg_upstream(package: &str) -> anyhow::Result<(String, String)> {
    let full = dpkg_version(package)?;
    let upstream = full
        .split_once('-')
        .map_or(full.as_str(), |(v, _)| v)
        .to_string();
    Ok((full, upstream))
}

fn sshd_config(dir: &Path) -> anyhow::Result<String> {
    let key = dir.join("ssh_host_ed25519_key");
    let key_s = key.to_str().context("utf-8")?;
    run(
        &["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key_s],
        dir,
    )?;
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port 22\nListenAddress {}\nHostKey {key_s}\nPidFile none\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n",
            FILES.ip
        ),
    )?;
    std::fs::create_dir_all("/run/sshd")?;
    Ok(cfg.to_str().context("utf-8")?.to_string())
}

fn vsftpd_config(dir: &Path) -> anyhow::Result<String> {
    let empty = dir.join("vsftpd-empty");
    std::fs::create_dir_all(&empty)?;
    let cfg = dir.join("vsftpd.conf");
    std::fs::write(
        &cfg,
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address={}\nbackground=NO\n\
             anonymous_enable=NO\nlocal_enable=YES\npam_service_name=vsftpd\n\
             secure_chroot_dir={}\nseccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\n\
             xferlog_enable=NO\n",
            FILES.ip,
            empty.display()
        ),
    )?;
    Ok(cfg.to_str().context("utf-8")?.to_string())
}

fn dovecot_config(dir: &Path, certs: &Path) -> anyhow::Result<String> {
    let home = dir.join("home").join(POP_USER).join("Maildir");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(home.join(d))?;
    }
    std::fs::write(
        dir.join("passwd"),
        format!("{POP_USER}:{{PLAIN}}{POP_PASSWORD}\n"),
    )?;
    let status = Command::new("chown")
        .args(["-R", &format!("{MAIL_UID}:{MAIL_UID}")])
        .arg(dir.join("home"))
        .status()?;
    ensure!(status.success(), "chown of the mailbox failed");
    let d = dir.to_str().context("utf-8")?;
    let c = certs.to_str().context("utf-8")?;
    std::fs::create_dir_all(dir.join("state"))?;
    let conf = dir.join("dovecot.conf");
    std::fs::write(
        &conf,
        format!(
            "protocols = pop3\nlisten = {ip}\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
             log_path = {d}/dovecot.log\nssl = yes\nssl_cert = <{c}/self.pem\n\
             ssl_key = <{c}/self.key\ndisable_plaintext_auth = no\n\
             auth_mechanisms = plain login\nmail_location = maildir:~/Maildir\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={MAIL_UID} gid={MAIL_UID} home={d}/home/%u\n}}\n",
            ip = MAIL.ip
        ),
    )?;
    Ok(conf.to_str().context("utf-8")?.to_string())
}

/// nginx in the foreground, one process, everything it writes under `dir`; `/` answers a
/// short page (its `Server` header carries the version, as Debian ships it).
fn nginx_config(dir: &Path, ip: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)?;
    let d = dir.to_str().context("utf-8")?;
    let cfg = dir.join("nginx.conf");
    std::fs::write(
        &cfg,
        format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
             server {{ listen {ip}:80; location / {{ return 200 \"intranet\\n\"; }} }}\n}}\n"
        ),
    )?;
    Ok(cfg.to_str().context("utf-8")?.to_string())
}

/// Exim in the foreground with a private configuration (no delivery: every recipient is
/// refused); its log and spool under `dir`, which its `Debian-exim` user may write.
fn exim_config(dir: &Path, ip: &str) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join("spool"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777))?;
    let status = Command::new("chown")
        .args(["-R", "Debian-exim:Debian-exim"])
        .arg(dir.join("spool"))
        .status()?;
    ensure!(status.success(), "chown of exim's spool failed");
    let d = dir.to_str().context("utf-8")?;
    let cfg = dir.join("exim.conf");
    std::fs::write(
        &cfg,
        format!(
            "primary_hostname = mail.corp.example\nspool_directory = {d}/spool\n\
             log_file_path = {d}/%slog\nlocal_interfaces = {ip}\ndaemon_smtp_ports = 25\n\
             rfc1413_query_timeout = 0s\nkeep_environment =\ntls_advertise_hosts =\n\
             acl_smtp_rcpt = acl_rcpt\nbegin acl\nacl_rcpt:\n  deny message = no relay\n\
             begin routers\nbegin transports\n"
        ),
    )?;
    Ok(cfg.to_str().context("utf-8")?.to_string())
}

/// A server that only announces an SSH banner (the version under test), then closes.
const FAKE_SSHD: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 22))
s.listen(4)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[2].encode() + b"\r\n")
    try:
        c.settimeout(5)
        c.recv(256)
    except Exception:
        pass
    c.close()
"#;

fn findings_of<'a>(f: &'a [Value], rule: &str) -> Vec<&'a Value> {
    f.iter().filter(|x| x["rule"] == rule).collect()
}

#[test]
fn real_servers_give_inventory_versions_weak_tls_and_cleartext_logins() -> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    for bin in [
        "/usr/sbin/sshd",
        "/usr/sbin/vsftpd",
        "/usr/sbin/dovecot",
        "/usr/sbin/nginx",
        "/usr/sbin/exim4",
    ] {
        ensure!(
            Path::new(bin).exists(),
            "{bin} is missing (apt-get install openssh-server vsftpd dovecot-pop3d nginx exim4-daemon-light)"
        );
    }
    let site = Site::new()?;
    let config = format!(
        "{}\n[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n",
        site_config("Asia/Tokyo")
    );
    let data = DataDir::new("assets-live", &config)?;
    let pcap = data
        .dir
        .parent()
        .context("parent")?
        .join("assets-live.pcap");
    let work = site.work_dir().join("assets");
    let certs = work.join("certs");
    certificates(&certs)?;
    let c = certs.to_str().context("utf-8")?.to_string();

    let sshd_cfg = sshd_config(&work)?;
    let _sshd = site.serve(
        FILES,
        "sshd",
        "tcp",
        22,
        &["/usr/sbin/sshd", "-D", "-e", "-f", &sshd_cfg],
    )?;
    let vsftpd_cfg = vsftpd_config(&work)?;
    let _vsftpd = site.serve(
        FILES,
        "vsftpd",
        "tcp",
        21,
        &["/usr/sbin/vsftpd", &vsftpd_cfg],
    )?;
    let (expired, expired_key) = (format!("{c}/expired.pem"), format!("{c}/expired.key"));
    let _tls10 = site.serve(
        FILES,
        "tls10",
        "tcp",
        4433,
        &[
            "openssl",
            "s_server",
            "-accept",
            "4433",
            "-tls1",
            "-cipher",
            "ALL:eNULL:@SECLEVEL=0",
            "-cert",
            &expired,
            "-key",
            &expired_key,
            "-quiet",
        ],
    )?;
    let (selfc, selfk) = (format!("{c}/self.pem"), format!("{c}/self.key"));
    let _tls13 = site.serve(
        DB,
        "tls13",
        "tcp",
        4443,
        &[
            "openssl", "s_server", "-accept", "4443", "-tls1_3", "-cert", &selfc, "-key", &selfk,
            "-quiet",
        ],
    )?;
    let nginx_cfg = nginx_config(&work.join("nginx"), DB.ip)?;
    let _nginx = site.serve(
        DB,
        "nginx",
        "tcp",
        80,
        &["/usr/sbin/nginx", "-e", "stderr", "-c", &nginx_cfg],
    )?;
    let exim_cfg = exim_config(&work.join("exim"), MAIL.ip)?;
    let _exim = site.serve(
        MAIL,
        "exim",
        "tcp",
        25,
        &["/usr/sbin/exim4", "-bdf", "-C", &exim_cfg],
    )?;
    let dovecot_cfg = dovecot_config(&work.join("dovecot"), &certs)?;
    let mut dovecot = site.serve(
        MAIL,
        "dovecot",
        "tcp",
        995,
        &["/usr/sbin/dovecot", "-F", "-c", &dovecot_cfg],
    )?;
    let _old_ssh = site.serve(
        PROXY,
        "old-sshd",
        "tcp",
        22,
        &[PYTHON, "-c", FAKE_SSHD, PROXY.ip, OLD_UBUNTU_SSH],
    )?;

    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        // ssh: banners are exchanged, the key login is refused (no key offered).
        site.run(
            PC,
            &[
                "ssh",
                "-F",
                "/dev/null",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                &format!("alice@{}", FILES.ip),
                "true",
            ],
            30,
        )?;
        // FTP: USER/PASS in clear; vsftpd refuses the unknown user (530), the password
        // crossed the wire all the same.
        let ftp = site.run(
            PC,
            &[
                "curl",
                "-sS",
                "--max-time",
                "15",
                "--user",
                &format!("alice:{FTP_PASSWORD}"),
                &format!("ftp://{}/", FILES.ip),
            ],
            30,
        )?;
        let err = String::from_utf8_lossy(&ftp.stderr);
        ensure!(
            err.contains("530") || err.contains("Access denied"),
            "vsftpd answered: {err}"
        );
        // HTTP to nginx: its answer carries `Server: nginx/VERSION`.
        let page = site.run(
            PC,
            &[
                "curl",
                "-sS",
                "--max-time",
                "15",
                &format!("http://{}/", DB.ip),
            ],
            30,
        )?;
        ensure!(
            String::from_utf8_lossy(&page.stdout).contains("intranet"),
            "nginx answered: {}",
            String::from_utf8_lossy(&page.stderr)
        );
        // TLS 1.0 with the expired certificate; TLS 1.3 only (its certificate is encrypted).
        for (host, port, extra) in [
            (
                FILES,
                "4433",
                // The client offers only a suite without encryption, which the server allows.
                vec!["-tls1", "-cipher", "NULL-SHA:@SECLEVEL=0"],
            ),
            (DB, "4443", vec!["-tls1_3"]),
        ] {
            let mut argv = vec![
                "openssl".to_string(),
                "s_client".into(),
                "-connect".into(),
                format!("{}:{port}", host.ip),
                "-servername".into(),
                format!("{}.corp.example", host.name),
            ];
            argv.extend(extra.iter().map(|s| s.to_string()));
            let argv: Vec<&str> = argv.iter().map(|s| s.as_str()).collect();
            let out = site.run(PC, &argv, 20)?;
            let text = String::from_utf8_lossy(&out.stdout);
            ensure!(
                text.contains("Cipher is") && !text.contains("Cipher is (NONE)"),
                "s_client to {host:?}: {text}"
            );
        }
        // SMTP to Exim: its greeting names the version; EHLO, QUIT.
        site.sh(
            PC,
            &[
                PYTHON,
                "-c",
                "import smtplib,sys\ns = smtplib.SMTP(sys.argv[1], 25, timeout=20)\n\
                 s.ehlo('pc.corp.example'); s.quit()",
                MAIL.ip,
            ],
            30,
        )?;
        // POP3 in clear from PC2; POP3 over TLS (995) from PC: the negative twin.
        site.sh(
            PC2,
            &[
                PYTHON,
                "-c",
                "import poplib,sys\np = poplib.POP3(sys.argv[1], 110, timeout=20)\n\
                 p.user(sys.argv[2]); p.pass_(sys.argv[3]); p.quit()",
                MAIL.ip,
                POP_USER,
                POP_PASSWORD,
            ],
            30,
        )?;
        site.sh(
            PC,
            &[
                PYTHON,
                "-c",
                "import poplib,ssl,sys\nctx = ssl._create_unverified_context()\n\
                 p = poplib.POP3_SSL(sys.argv[1], 995, timeout=20, context=ctx)\n\
                 p.user(sys.argv[2]); p.pass_(sys.argv[3]); p.quit()",
                MAIL.ip,
                POP_USER,
                POP_PASSWORD,
            ],
            30,
        )?;
        // A client reads the old Ubuntu banner and answers with its own.
        site.sh(
            PC,
            &[
                PYTHON, "-c",
                "import socket,sys\nc = socket.create_connection((sys.argv[1], 22), 10)\n\
                 print(c.recv(256)); c.sendall(b'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\\r\\n'); c.close()",
                PROXY.ip,
            ],
            30,
        )?;
        Ok(())
    })();
    rec.stop()?;
    dovecot.stop();
    traffic.with_context(|| {
        format!(
            "dovecot log:\n{}",
            std::fs::read_to_string(work.join("dovecot").join("dovecot.log")).unwrap_or_default()
        )
    })?;
    data.import(&pcap)?;
    data.analyze()?;
    let findings = data.findings_en()?;
    let dump = serde_json::to_string_pretty(&findings)?;

    // weak_tls: TLS 1.0 + expired + self-signed on the file server; nothing on TLS 1.3.
    let weak = findings_of(&findings, "weak_tls");
    ensure!(
        weak.len() == 1,
        "one weak_tls finding (the file server): {dump}"
    );
    assert_eq!(weak[0]["server"], FILES.ip);
    let signals = weak[0]["signals"].to_string();
    for s in [
        "negotiated TLSv1.0",
        "weak cipher suite TLS_RSA_WITH_NULL_SHA",
        "expired certificate `CN=files.corp.example",
        "self-signed certificate",
    ] {
        ensure!(
            signals.contains(s),
            "weak_tls signal {s:?} missing: {signals}"
        );
    }
    // tshark agrees on the negotiated version and the certificate.
    let t = tshark(
        &pcap,
        "tls.handshake.type == 2 && tcp.srcport == 4433",
        &["tls.handshake.version"],
    )?;
    ensure!(
        t.first().is_some_and(|r| r[0] == "0x0301"),
        "tshark ServerHello version: {t:?}"
    );
    let t = tshark(
        &pcap,
        "tls.handshake.type == 2 && tcp.srcport == 4433",
        &["tls.handshake.ciphersuite"],
    )?;
    ensure!(
        t.first().is_some_and(|r| r[0] == "0x0002"),
        "tshark ServerHello suite (TLS_RSA_WITH_NULL_SHA): {t:?}"
    );

    // cleartext_credentials: FTP (PC → files) and POP3 (PC2 → mail); not POP3S (PC → mail).
    let clear = findings_of(&findings, "cleartext_credentials");
    let pair = |c: &str, s: &str| clear.iter().find(|f| f["client"] == c && f["server"] == s);
    let ftp = pair(PC.ip, FILES.ip).with_context(|| format!("FTP login finding: {dump}"))?;
    ensure!(
        ftp["signals"].to_string().contains("FTP login as `alice`"),
        "{ftp}"
    );
    let pop = pair(PC2.ip, MAIL.ip).with_context(|| format!("POP3 login finding: {dump}"))?;
    ensure!(
        pop["signals"]
            .to_string()
            .contains(&format!("`{POP_USER}`")),
        "{pop}"
    );
    ensure!(
        pair(PC.ip, MAIL.ip).is_none(),
        "POP3 over TLS is not clear text: {dump}"
    );
    // The secrets are nowhere in what Kuroko stored about the sessions.
    let assets = data.kuroko("assets", &["--format", "jsonl"])?;
    let sessions = serde_json::to_string(&data.session_log()?)?;
    for secret in [FTP_PASSWORD, POP_PASSWORD] {
        for (what, text) in [
            ("findings", &dump),
            ("assets", &assets),
            ("sessions", &sessions),
        ] {
            ensure!(!text.contains(secret), "{what} hold the password {secret}");
        }
    }

    // vulnerable_software: the old Ubuntu banner, not Debian's current sshd.
    let vuln = findings_of(&findings, "vulnerable_software");
    ensure!(vuln.len() == 1, "one vulnerable_software finding: {dump}");
    assert_eq!(vuln[0]["server"], PROXY.ip);
    ensure!(
        vuln[0]["signals"].to_string().contains("CVE-2024-6387"),
        "{}",
        vuln[0]
    );

    // The inventory: Debian's sshd as dpkg knows it, its ports, the certificate tshark saw.
    let hosts = kuroko_tests::kuroko::parse_jsonl(&assets)?;
    let files = hosts
        .iter()
        .find(|h| h["ip"] == FILES.ip)
        .with_context(|| format!("file server in the inventory: {assets}"))?;
    let dpkg = dpkg_version("openssh-server")?; // e.g. 1:9.2p1-2+deb12u10
    let no_epoch = dpkg.split_once(':').map_or(dpkg.as_str(), |(_, v)| v);
    let (upstream, revision) = no_epoch.rsplit_once('-').context("debian revision")?;
    let software = files["software"].as_array().context("software")?;
    let sshd = software
        .iter()
        .find(|f| f["kind"] == "ssh-banner")
        .with_context(|| format!("sshd banner in the inventory: {files}"))?;
    assert_eq!(sshd["product"], "openssh");
    assert_eq!(sshd["version"], upstream, "upstream version as dpkg says");
    let banner = sshd["text"].as_str().unwrap_or_default();
    ensure!(
        banner.ends_with(&format!("Debian-{revision}")),
        "banner {banner} vs dpkg {dpkg}"
    );
    let t_banner = tshark(
        &pcap,
        "ssh.protocol && tcp.srcport == 22 && ip.src == 10.10.2.20",
        &["ssh.protocol"],
    )?;
    ensure!(
        t_banner.first().is_some_and(|r| r[0] == banner),
        "tshark: {t_banner:?}"
    );
    let ports: Vec<u64> = files["services"]
        .as_array()
        .context("services")?
        .iter()
        .filter_map(|s| s["port"].as_u64())
        .collect();
    for p in [21, 22, 4433] {
        ensure!(ports.contains(&p), "port {p} of the file server: {ports:?}");
    }
    let t_cert = tshark(
        &pcap,
        "x509sat.printableString || x509sat.uTF8String",
        &["x509sat.uTF8String", "x509sat.printableString"],
    )?;
    ensure!(
        t_cert
            .iter()
            .flatten()
            .any(|v| v.contains("files.corp.example")),
        "tshark sees the certificate: {t_cert:?}"
    );
    ensure!(
        software.iter().any(|f| f["kind"] == "tls-cert"
            && f["text"]
                .as_str()
                .is_some_and(|t| t.contains("CN=files.corp.example"))),
        "certificate subject in the inventory: {files}"
    );
    // vsftpd's greeting: the version dpkg installed, the text tshark decodes.
    let vsftpd = software
        .iter()
        .find(|f| f["kind"] == "ftp-banner")
        .with_context(|| format!("vsftpd greeting in the inventory: {files}"))?;
    assert_eq!(vsftpd["product"], "vsftpd");
    let (dpkg_ftp, ftp_upstream) = dpkg_upstream("vsftpd")?; // e.g. 3.0.3-13+b2
    assert_eq!(
        vsftpd["version"], ftp_upstream,
        "vsftpd as dpkg says ({dpkg_ftp})"
    );
    let t_ftp = tshark(&pcap, "ftp.response.code == 220", &["ftp.response.arg"])?;
    ensure!(
        t_ftp
            .first()
            .is_some_and(|r| vsftpd["text"].as_str().is_some_and(|t| t.ends_with(&r[0]))),
        "tshark FTP greeting {t_ftp:?} vs {}",
        vsftpd["text"]
    );
    // nginx's Server header: the upstream version dpkg installed, the text tshark decodes;
    // no advisory applies to it (the vulnerable_software count above is the old sshd's).
    let db = hosts
        .iter()
        .find(|h| h["ip"] == DB.ip)
        .with_context(|| format!("the nginx host in the inventory: {assets}"))?;
    let web = db["software"]
        .as_array()
        .and_then(|s| s.iter().find(|f| f["kind"] == "http-server"))
        .with_context(|| format!("nginx's Server header in the inventory: {db}"))?;
    assert_eq!(web["product"], "nginx");
    let (dpkg_nginx, nginx_upstream) = dpkg_upstream("nginx")?; // e.g. 1.22.1-9+deb12u12
    assert_eq!(
        web["version"], nginx_upstream,
        "nginx as dpkg says ({dpkg_nginx})"
    );
    let t_server = tshark(&pcap, "http.server", &["http.server"])?;
    ensure!(
        t_server.first().is_some_and(|r| web["text"] == r[0]),
        "tshark http.server {t_server:?} vs {}",
        web["text"]
    );
    ensure!(
        web["advisories"]
            .as_array()
            .is_none_or(|a| a.iter().all(|x| x["verdict"] != "vulnerable")),
        "nginx {nginx_upstream} judged vulnerable: {web}"
    );
    // dovecot's POP3 greeting names the product (no version: `unknown`, never guessed).
    let mail = hosts
        .iter()
        .find(|h| h["ip"] == MAIL.ip)
        .with_context(|| format!("mail server in the inventory: {assets}"))?;
    let greeting = mail["software"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|f| f["kind"] == "mail-banner" && f["product"] == "dovecot")
        })
        .with_context(|| format!("dovecot greeting: {mail}"))?;
    assert_eq!(greeting["product"], "dovecot");
    ensure!(
        greeting["advisories"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x["verdict"] == "unknown")),
        "{greeting}"
    );
    // Exim's SMTP greeting: the upstream version dpkg installed (Debian's banner has no
    // Debian tag), the text tshark decodes; the advisories Debian fixed under the same
    // `Exim 4.96` are `unknown` with Debian's package named, none `vulnerable`.
    let exim = mail["software"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|f| f["kind"] == "mail-banner" && f["product"] == "exim")
        })
        .with_context(|| format!("Exim's greeting in the inventory: {mail}"))?;
    let (dpkg_exim, exim_upstream) = dpkg_upstream("exim4-daemon-light")?; // 4.96-15+deb12u11
    assert_eq!(
        exim["version"], exim_upstream,
        "Exim as dpkg says ({dpkg_exim})"
    );
    let t_smtp = tshark(&pcap, "smtp.response.code == 220", &["smtp.rsp.parameter"])?;
    ensure!(
        t_smtp
            .iter()
            .any(|r| r[0].contains(&format!("Exim {exim_upstream}"))
                && exim["text"].as_str().is_some_and(|t| t.contains(&r[0]))),
        "tshark SMTP greeting {t_smtp:?} vs {}",
        exim["text"]
    );
    let advisories = exim["advisories"].as_array().context("exim advisories")?;
    ensure!(
        advisories.iter().all(|x| x["verdict"] != "vulnerable"),
        "Debian's patched Exim judged vulnerable: {exim}"
    );
    if exim_upstream == "4.96" {
        ensure!(
            advisories.iter().any(|x| x["verdict"] == "unknown"
                && x.to_string().contains("CVE-2023-42115")
                && x.to_string().contains("Debian")),
            "CVE-2023-42115 on Debian's Exim 4.96: {exim}"
        );
    }
    // The table and the CSV say the same: the old banner judged vulnerable, Debian's not.
    let table = data.kuroko("assets", &[])?;
    let old_line = table
        .lines()
        .find(|l| l.contains("ssh-banner") && l.contains("Ubuntu-3ubuntu0.6"))
        .with_context(|| format!("old banner in the table: {table}"))?;
    ensure!(
        old_line.contains("VULNERABLE") && old_line.contains("CVE-2024-6387"),
        "{old_line}"
    );
    ensure!(
        table
            .lines()
            .any(|l| l.contains(banner) && !l.contains("VULNERABLE")),
        "Debian's sshd judged not vulnerable: {table}"
    );
    let csv = data.kuroko("assets", &["--format", "csv"])?;
    ensure!(csv.starts_with("ip,mac,names,kind,"), "{csv}");
    ensure!(
        csv.lines()
            .any(|l| l.starts_with(PROXY.ip) && l.contains(",vulnerable,")),
        "{csv}"
    );
    let sshd_clients = files["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["port"] == 22))
        .context("sshd service")?;
    assert_eq!(sshd_clients["internal_clients"], 1);
    // The report's §3.6 draws the same inventory: services, and the old banner judged
    // vulnerable with its advisory.
    let report = work.join("report.html");
    let report_s = report.to_str().context("report path is not UTF-8")?;
    data.kuroko("report", &["--out", report_s, "--lang", "ja"])?;
    let html = std::fs::read_to_string(&report)?;
    ensure!(html.contains("ネットワーク環境と脆弱性分析"), "no §3.6");
    ensure!(html.contains("22/tcp"), "sshd's port in §3.6");
    let row = html
        .split("<tr")
        .find(|r| r.contains("Ubuntu-3ubuntu0.6"))
        .context("the old banner's row in §3.6")?;
    ensure!(
        row.contains("脆弱") && row.contains("CVE-2024-6387"),
        "{row}"
    );
    Ok(())
}
