//! Protocol upgrades with real servers: FTP `AUTH TLS` (vsftpd + lftp `ftp:ssl-force`, and
//! a plain-FTP twin on the same server), LDAP StartTLS (slapd + `ldapsearch -ZZ`) and
//! PostgreSQL `SSLRequest` (initdb + postgres + `psql sslmode=require`). One site, one
//! recording; every field Kuroko reports is checked against tshark on the same pcap: the
//! outer protocol's own fields (`ftp.request.command`, `ldap.protocolOp`, `pgsql.type`),
//! the TLS version and SNI, and the leaf certificate's serial, SHA-1 and SHA-256 against
//! `openssl x509` reading the certificate bytes tshark extracted.
//!
//! Each client is limited to TLS 1.2 so that the certificate crosses the wire in the clear
//! (with TLS 1.3 it is encrypted and neither tshark nor Kuroko can see it).
//!
//! Needs root, vsftpd, lftp, slapd, ldap-utils, postgresql, openssl and tshark.

use anyhow::{Context, ensure};
use kuroko_tests::kuroko::DataDir;
use kuroko_tests::proc::Server;
use kuroko_tests::record::Recorder;
use kuroko_tests::site::{DB, FILES, Host, PC, Site};
use kuroko_tests::truth::{openssl_cert, tshark};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str =
    "[storage]\nbudget = \"64MiB\"\nsegment_size = \"8MiB\"\nfiles_budget = \"64MiB\"\n";
const FTP_NAME: &str = "ftp.corp.example";
const LDAP_NAME: &str = "ldap.corp.example";
const DB_NAME: &str = "db.corp.example";
/// GnuTLS priority string that keeps the handshake at TLS 1.2 (lftp, ldapsearch).
const TLS12_ONLY: &str = "NORMAL:-VERS-TLS1.3";
const FTP_FILE: &str = "hello.txt";
const FTP_BODY: &str = "kuroko over ftps\n";
/// PostgreSQL runs as this Debian system user (initdb refuses root).
const PG_USER: &str = "postgres";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Adds `ip name` to a host's private /etc/hosts (the site mounts /etc/netns/<ns>/hosts).
fn add_host_name(site: &Site, on: Host, ip: &str, name: &str) -> anyhow::Result<()> {
    let path = Path::new("/etc/netns").join(site.ns(on)).join("hosts");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&format!("{ip} {name}\n"));
    std::fs::write(&path, text).context("write netns hosts")
}

fn path_str(p: &Path) -> anyhow::Result<String> {
    Ok(p.to_str().context("utf-8 path")?.to_string())
}

/// A self-signed RSA certificate for `name` (serial chosen by openssl); (cert, key).
fn cert(dir: &Path, name: &str) -> anyhow::Result<(String, String)> {
    let c = path_str(&dir.join(format!("{name}.crt")))?;
    let k = path_str(&dir.join(format!("{name}.key")))?;
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
            "30",
            "-subj",
            &format!("/O=Kuroko Test/CN={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
            "-keyout",
            &k,
            "-out",
            &c,
        ],
        60,
    )?;
    Ok((c, k))
}

fn vsftpd_config(dir: &Path, cert: &str, key: &str) -> anyhow::Result<String> {
    let empty = dir.join("vsftpd-empty");
    let root = dir.join("ftproot");
    std::fs::create_dir_all(&empty)?;
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join(FTP_FILE), FTP_BODY)?;
    let cfg = dir.join("vsftpd.conf");
    std::fs::write(
        &cfg,
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address={ip}\nbackground=NO\n\
             anonymous_enable=YES\nno_anon_password=YES\nanon_root={root}\n\
             local_enable=NO\nsecure_chroot_dir={empty}\nseccomp_sandbox=NO\nisolate=NO\n\
             isolate_network=NO\nxferlog_enable=NO\n\
             ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=NO\n\
             force_anon_data_ssl=NO\nrequire_ssl_reuse=NO\nssl_ciphers=HIGH\n\
             rsa_cert_file={cert}\nrsa_private_key_file={key}\n",
            ip = FILES.ip,
            root = root.display(),
            empty = empty.display(),
        ),
    )?;
    path_str(&cfg)
}

fn slapd_config(dir: &Path, cert: &str, key: &str) -> anyhow::Result<String> {
    let db = dir.join("ldap-db");
    std::fs::create_dir_all(&db)?;
    let cfg = dir.join("slapd.conf");
    std::fs::write(
        &cfg,
        format!(
            "include /etc/ldap/schema/core.schema\n\
             pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n\
             TLSCipherSuite {TLS12_ONLY}\n\
             database mdb\nsuffix \"dc=corp,dc=example\"\n\
             rootdn \"cn=admin,dc=corp,dc=example\"\nrootpw kuroko-test-pw\n\
             directory {db}\n",
            d = dir.display(),
            db = db.display(),
        ),
    )?;
    path_str(&cfg)
}

/// `initdb` as the postgres user with TLS on (at most 1.2); returns the data directory.
fn postgres_cluster(dir: &Path, cert: &str, key: &str) -> anyhow::Result<PathBuf> {
    let pg = dir.join("pg");
    std::fs::create_dir_all(&pg)?;
    // The server reads its key as PG_USER and refuses a key others can read.
    let own_key = pg.join("server.key");
    let own_cert = pg.join("server.crt");
    std::fs::copy(key, &own_key)?;
    std::fs::copy(cert, &own_cert)?;
    std::fs::set_permissions(
        &own_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let data = pg.join("data");
    let chown = Command::new("chown")
        .args(["-R", &format!("{PG_USER}:{PG_USER}")])
        .arg(&pg)
        .status()?;
    ensure!(chown.success(), "chown of the PostgreSQL directory failed");
    kuroko_tests::proc::sh_in(
        "",
        &[
            "setpriv",
            &format!("--reuid={PG_USER}"),
            &format!("--regid={PG_USER}"),
            "--init-groups",
            &format!("{PG_BIN}/initdb"),
            "-D",
            &path_str(&data)?,
            "-U",
            "kuroko",
            "--auth=trust",
            "--no-sync",
        ],
        120,
    )?;
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))?;
    use std::io::Write;
    writeln!(
        conf,
        "listen_addresses = '{ip}'\nunix_socket_directories = '{pg}'\nssl = on\n\
         ssl_cert_file = '{c}'\nssl_key_file = '{k}'\nssl_max_protocol_version = 'TLSv1.2'\n\
         fsync = off",
        ip = DB.ip,
        pg = pg.display(),
        c = own_cert.display(),
        k = own_key.display(),
    )?;
    std::fs::write(
        data.join("pg_hba.conf"),
        "hostssl all all 0.0.0.0/0 trust\nhost all all 0.0.0.0/0 reject\n",
    )?;
    Ok(data)
}

/// Sessions of the log on server port `port`.
fn on_port(sessions: &[Value], port: u16) -> Vec<&Value> {
    sessions
        .iter()
        .filter(|s| s["server"]["port"] == port && s["transport"] == "tcp")
        .collect()
}

/// The fields tshark decodes, read once for the whole pcap (one tshark run: each run
/// costs about a second on a loaded CI machine).
const FIELDS: [&str; 14] = [
    "ip.src",
    "tcp.srcport",
    "ip.dst",
    "tcp.dstport",
    "tls.handshake.type",
    "tls.handshake.version",
    "tls.handshake.extensions_server_name",
    "tls.handshake.certificate",
    "ftp.request.command",
    "ftp.request.arg",
    "ldap.protocolOp",
    "ldap.requestName",
    "ldap.resultCode",
    "pgsql.type",
];

/// tshark's rows for every packet that carries one of [`FIELDS`].
struct Dissected {
    rows: Vec<Vec<String>>,
}

impl Dissected {
    fn read(pcap: &Path) -> anyhow::Result<Dissected> {
        let rows = tshark(
            pcap,
            "tls.handshake || ftp.request || ldap || pgsql",
            &FIELDS,
        )?;
        Ok(Dissected { rows })
    }

    /// Values of `field` in the packets of session `s` going `to_server` (or back) whose
    /// `key.0` field has the value `key.1` (`tls.handshake.type` lists every message of
    /// a packet: any of them), or any value when `key.1` is empty.
    fn values(&self, s: &Value, to_server: bool, key: (&str, &str), field: &str) -> Vec<String> {
        let col = |name: &str| FIELDS.iter().position(|f| *f == name).expect("known field");
        let (src, dst) = if to_server {
            (&s["client"], &s["server"])
        } else {
            (&s["server"], &s["client"])
        };
        let want = [
            src["ip"].as_str().unwrap_or("?").to_string(),
            src["port"].to_string(),
            dst["ip"].as_str().unwrap_or("?").to_string(),
            dst["port"].to_string(),
        ];
        let (k, f) = (col(key.0), col(field));
        self.rows
            .iter()
            .filter(|r| r.len() == FIELDS.len() && r[..4] == want)
            .filter(|r| match key.1 {
                "" => !r[k].is_empty(),
                v => r[k].split(',').any(|x| x == v),
            })
            .map(|r| r[f].clone())
            .collect()
    }

    /// The single value of `field` (see [`Dissected::values`]).
    fn one(&self, s: &Value, to_server: bool, key: (&str, &str), field: &str) -> String {
        let v = self.values(s, to_server, key, field);
        assert_eq!(v.len(), 1, "tshark {key:?} → {field}: {v:?}");
        v[0].clone()
    }
}

/// Kuroko's TLS layer of `s` against tshark and openssl on the same pcap.
fn check_tls(t: &Dissected, work: &Path, s: &Value, what: &str) -> anyhow::Result<()> {
    assert_eq!(s["tunnel"]["kind"], "starttls", "{what}: {s:#}");
    assert_eq!(s["tunnel"]["inner"], "tls", "{what}");
    const HS: &str = "tls.handshake.type";
    let t_ver = t.one(s, false, (HS, "2"), "tls.handshake.version");
    assert_eq!(t_ver, "0x0303", "{what}: the clients are held to TLS 1.2");
    assert_eq!(s["tls"]["version"], "TLSv1.2", "{what}");
    let t_sni = t.one(s, true, (HS, "1"), "tls.handshake.extensions_server_name");
    if t_sni.is_empty() {
        ensure!(s["tls"]["sni"].is_null(), "{what}: no SNI sent: {s:#}");
    } else {
        assert_eq!(s["tls"]["sni"], t_sni.as_str(), "{what} SNI");
    }
    let cert = openssl_cert(
        &t.one(s, false, (HS, "11"), "tls.handshake.certificate"),
        &work.join(format!("{what}-leaf.der")),
    )
    .with_context(|| format!("{what}: the certificate tshark extracted"))?;
    let leaf = &s["tls"]["certs"][0];
    assert_eq!(leaf["serial"], cert.serial.as_str(), "{what} serial");
    assert_eq!(leaf["sha1"], cert.sha1.as_str(), "{what} sha1");
    assert_eq!(leaf["sha256"], cert.sha256.as_str(), "{what} sha256");
    assert_eq!(leaf["self_signed"], true, "{what}");
    assert_eq!(leaf["expired"], false, "{what}");
    Ok(())
}

#[test]
fn ftps_ldap_starttls_and_postgres_ssl_match_tshark() -> anyhow::Result<()> {
    kuroko_tests::site::require_root_and_tools()?;
    for tool in [
        "/usr/sbin/vsftpd",
        "/usr/bin/lftp",
        "/usr/sbin/slapd",
        "/usr/bin/ldapsearch",
        "/usr/bin/psql",
        "/usr/bin/tshark",
    ] {
        ensure!(
            Path::new(tool).exists(),
            "{tool} is missing (see .ci/packages.txt: vsftpd lftp slapd ldap-utils postgresql \
             tshark)"
        );
    }
    ensure!(
        Path::new(PG_BIN).join("postgres").exists(),
        "{PG_BIN}/postgres is missing (apt-get install postgresql-15)"
    );
    let site = Site::new()?;
    let work = site.work_dir().to_path_buf();
    let data = DataDir::new("traffic-upgrades", CONFIG)?;
    let pcap = data
        .dir
        .parent()
        .context("data dir has a parent")?
        .join("upgrades.pcap");
    add_host_name(&site, PC, FILES.ip, FTP_NAME)?;
    add_host_name(&site, PC, FILES.ip, LDAP_NAME)?;
    add_host_name(&site, PC, DB.ip, DB_NAME)?;

    // Servers.
    let (ftp_cert, ftp_key) = cert(&work, FTP_NAME)?;
    let _vsftpd = site.serve(
        FILES,
        "vsftpd",
        "tcp",
        21,
        &[
            "/usr/sbin/vsftpd",
            &vsftpd_config(&work, &ftp_cert, &ftp_key)?,
        ],
    )?;
    let (ldap_cert, ldap_key) = cert(&work, LDAP_NAME)?;
    let slapd_conf = slapd_config(&work, &ldap_cert, &ldap_key)?;
    let _slapd = site.serve(
        FILES,
        "slapd",
        "tcp",
        389,
        &[
            "/usr/sbin/slapd",
            "-d",
            "0",
            "-f",
            &slapd_conf,
            "-h",
            &format!("ldap://{}:389/", FILES.ip),
        ],
    )?;
    let (db_cert, db_key) = cert(&work, DB_NAME)?;
    let pg_data = postgres_cluster(&work, &db_cert, &db_key)?;
    let mut postgres: Server = site.serve(
        DB,
        "postgres",
        "tcp",
        5432,
        &[
            "setpriv",
            &format!("--reuid={PG_USER}"),
            &format!("--regid={PG_USER}"),
            "--init-groups",
            &format!("{PG_BIN}/postgres"),
            "-D",
            &path_str(&pg_data)?,
        ],
    )?;

    // Clients, recorded on the mirror port.
    let got_tls = work.join("got-tls.txt");
    let got_plain = work.join("got-plain.txt");
    let rec = Recorder::start(&site, &pcap)?;
    let traffic = (|| -> anyhow::Result<()> {
        let lftp = |settings: &str, out: &Path| -> anyhow::Result<()> {
            let script = format!(
                "set net:max-retries 1; set net:timeout 10; set ftp:passive-mode true; \
                 {settings}; get {FTP_FILE} -o {}; bye",
                out.display()
            );
            site.sh(
                PC,
                &["lftp", "-e", &script, &format!("ftp://{FTP_NAME}")],
                60,
            )?;
            ensure!(
                std::fs::read_to_string(out)? == FTP_BODY,
                "lftp fetched the wrong bytes"
            );
            Ok(())
        };
        lftp(
            &format!(
                "set ftp:ssl-force true; set ftp:ssl-allow-anonymous true; \
                 set ftp:ssl-protect-data true; \
                 set ssl:verify-certificate no; set ssl:priority \"{TLS12_ONLY}\""
            ),
            &got_tls,
        )
        .context("lftp with ftp:ssl-force")?;
        lftp("set ftp:ssl-allow false", &got_plain).context("plain lftp")?;
        let out = site
            .sh(
                PC,
                &[
                    "env",
                    "LDAPTLS_REQCERT=never",
                    &format!("LDAPTLS_CIPHER_SUITE={TLS12_ONLY}"),
                    "ldapsearch",
                    "-x",
                    "-ZZ",
                    "-H",
                    &format!("ldap://{LDAP_NAME}"),
                    "-b",
                    "",
                    "-s",
                    "base",
                    "namingContexts",
                ],
                30,
            )
            .context("ldapsearch -ZZ")?;
        ensure!(
            String::from_utf8_lossy(&out.stdout).contains("dc=corp,dc=example"),
            "ldapsearch: {out:?}"
        );
        let out = site
            .sh(
                PC,
                &[
                    "psql",
                    &format!(
                        "host={DB_NAME} dbname=postgres user=kuroko sslmode=require \
                         connect_timeout=10"
                    ),
                    "-Atc",
                    "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
                ],
                30,
            )
            .context("psql sslmode=require")?;
        ensure!(
            String::from_utf8_lossy(&out.stdout).trim() == "t",
            "psql over TLS: {out:?}"
        );
        Ok(())
    })();
    rec.stop()?;
    postgres.stop_with(libc::SIGINT);
    traffic?;

    data.import(&pcap)?;
    data.analyze()?;
    let sessions = data.session_log()?;
    let t = Dissected::read(&pcap)?;

    // FTP: the AUTH TLS session and its plain twin, commands as tshark decodes them.
    let ftp = on_port(&sessions, 21);
    ensure!(ftp.len() == 2, "two FTP control sessions: {sessions:#?}");
    let (ftps, plain): (Vec<&Value>, Vec<&Value>) =
        ftp.into_iter().partition(|s| !s["tunnel"].is_null());
    ensure!(
        ftps.len() == 1 && plain.len() == 1,
        "one FTP session upgraded, one plain: {ftps:#?} {plain:#?}"
    );
    let (ftps, plain) = (ftps[0], plain[0]);
    assert_eq!(ftps["protocol"], "ftp");
    const CMD: &str = "ftp.request.command";
    let t_cmds: Vec<String> = t
        .values(ftps, true, (CMD, ""), CMD)
        .into_iter()
        .zip(t.values(ftps, true, (CMD, ""), "ftp.request.arg"))
        .map(|(c, a)| format!("{c} {a}").trim().to_string())
        .collect();
    ensure!(
        t_cmds.last().is_some_and(|c| c == "AUTH TLS"),
        "tshark: the clear part of the FTPS control channel ends with AUTH TLS: {t_cmds:?}"
    );
    assert_eq!(
        ftps["ftp"]["commands"],
        serde_json::json!(t_cmds),
        "FTPS clear commands"
    );
    assert!(
        ftps["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "ftp_tls")),
        "ftp_tls flag: {ftps:#}"
    );
    check_tls(&t, &work, ftps, "ftps")?;
    // The plain twin: every command, RETR naming the file, no TLS.
    ensure!(plain["tls"].is_null(), "plain FTP has no TLS: {plain:#}");
    let t_plain = t.values(plain, true, (CMD, ""), CMD);
    let k_plain: Vec<String> = plain["ftp"]["commands"]
        .as_array()
        .context("ftp.commands")?
        .iter()
        .map(|c| {
            c.as_str()
                .unwrap_or_default()
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(k_plain, t_plain, "plain FTP command verbs");
    ensure!(
        t_plain.iter().any(|c| c == "RETR"),
        "tshark sees RETR: {t_plain:?}"
    );
    let files = plain["ftp"]["files"].as_array().context("ftp.files")?;
    ensure!(
        files
            .iter()
            .any(|f| f["name"].as_str().is_some_and(|n| n.ends_with(FTP_FILE))),
        "plain RETR names {FTP_FILE}: {plain:#}"
    );
    // The data connections of the FTPS session are TLS (PROT P), not files of garbage.
    let ftps_client = ftps["client"]["ip"].clone();
    let tls_data: Vec<&Value> = sessions
        .iter()
        .filter(|s| {
            s["protocol"] == "tls"
                && s["client"]["ip"] == ftps_client
                && s["server"]["ip"] == FILES.ip
                && s["server"]["port"] != 21
        })
        .collect();
    ensure!(
        !tls_data.is_empty(),
        "the protected data connections are TLS sessions: {sessions:#?}"
    );

    // LDAP StartTLS: the ExtendedRequest tshark decodes, then TLS.
    let ldap = on_port(&sessions, 389);
    ensure!(ldap.len() == 1, "one LDAP session: {sessions:#?}");
    let ldap = ldap[0];
    assert_eq!(ldap["protocol"], "ldap");
    const OP: &str = "ldap.protocolOp";
    let t_op = t.one(ldap, true, (OP, ""), OP);
    assert_eq!(t_op, "23", "tshark: extendedReq");
    let t_name = t.one(ldap, true, (OP, "23"), "ldap.requestName");
    assert_eq!(t_name, "1.3.6.1.4.1.1466.20037", "StartTLS OID");
    let t_res = t.one(ldap, false, (OP, "24"), "ldap.resultCode");
    assert_eq!(t_res, "0", "tshark: StartTLS success");
    assert!(
        ldap["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "ldap_starttls")),
        "ldap_starttls flag: {ldap:#}"
    );
    check_tls(&t, &work, ldap, "ldap")?;

    // PostgreSQL SSLRequest → 'S' → TLS.
    let pg = on_port(&sessions, 5432);
    ensure!(pg.len() == 1, "one PostgreSQL session: {sessions:#?}");
    let pg = pg[0];
    assert_eq!(pg["protocol"], "postgresql");
    let t_req = t.one(pg, true, ("pgsql.type", ""), "pgsql.type");
    assert_eq!(t_req, "SSL request", "tshark: SSLRequest");
    check_tls(&t, &work, pg, "postgresql")?;

    // The session detail of `kuroko search` shows both layers and the judged certificate.
    let detail = data.kuroko(
        "search",
        &["--detail", pg["id"].as_str().context("session id")?],
    )?;
    let line = |key: &str| -> String {
        detail
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(line("tunnel    "), "starttls, carrying tls", "{detail}");
    assert_eq!(
        line("tls       "),
        format!("TLSv1.2  SNI {DB_NAME}"),
        "{detail}"
    );
    assert_eq!(
        line("  sha1    "),
        pg["tls"]["certs"][0]["sha1"].as_str().unwrap_or("?"),
        "{detail}"
    );
    assert_eq!(line("  judged  "), "self-signed", "{detail}");

    // Real servers' bytes are well-formed: no parser may call them malformed.
    for s in &sessions {
        let flags = s["flags"].as_array().cloned().unwrap_or_default();
        ensure!(
            !flags
                .iter()
                .any(|f| f.as_str().is_some_and(|f| f.starts_with("malformed"))),
            "a real server's session flagged malformed: {s:#}"
        );
    }

    // Searchable through the upgrade.
    let hits = data.search("tunnel:starttls AND protocol:(ftp OR ldap OR postgresql)")?;
    assert_eq!(
        hits.len(),
        3,
        "tunnel:starttls by outer protocol: {hits:#?}"
    );
    let hits = data.search(&format!("san:\"{DB_NAME}\" AND protocol:postgresql"))?;
    assert_eq!(hits.len(), 1, "certificate SAN through SSLRequest");
    Ok(())
}
