//! End to end, for every built-in detection rule: real clients and servers in network
//! namespaces make the traffic, tcpdump records the switch mirror port, `kuroko import` +
//! `kuroko analyze` process it, and `kuroko findings --format jsonl` must show the rule with
//! the right client, server, grade and evidence — and its negative twin must not.
//!
//! Expected grades come from the detect crate's catalog (the default levels), evidence
//! session ids are resolved through the session log (`DATA/sessions/`) to sessions of the
//! expected protocol between the expected hosts, and each recording is first checked with
//! tshark for the traffic it is named after, so a failure says whether the traffic or
//! Kuroko is wrong.

use kuroko_detect::catalog::RuleId;
use kuroko_model::finding::Risk;
use kuroko_tests::kuroko::{DataDir, csv_fields, parse_jsonl, site_config};
use kuroko_tests::pcap_time::shift_to;
use kuroko_tests::scenarios::{self, Scenario};
use kuroko_tests::shared::{recording, recordings_dir};
use kuroko_tests::site::{ATTACKER, BAD, DB, DNS, EXT, FILES, GATEWAY, Host, MAIL, PC, PROXY, VPN};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

// ---------------------------------------------------------------------------------------
// The pipeline, once per (recording, configuration).

/// A recording after import + analyze, with what the user sees.
struct Analyzed {
    label: String,
    findings: Vec<Value>,
    sessions: Vec<Value>,
    data: DataDir,
}

type Cell = Arc<OnceLock<Result<Arc<Analyzed>, String>>>;
static ANALYZED: Mutex<Option<HashMap<String, Cell>>> = Mutex::new(None);

/// Imports and analyzes `pcap` with the site config in `timezone`, once per label.
fn analyze_pcap(label: &str, pcap: &Path, timezone: &str) -> Arc<Analyzed> {
    let cell: Cell = {
        let mut g = ANALYZED.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert_with(HashMap::new)
            .entry(label.to_string())
            .or_default()
            .clone()
    };
    let result = cell.get_or_init(|| {
        (|| -> anyhow::Result<Arc<Analyzed>> {
            let data = DataDir::new(label, &site_config(timezone))?;
            data.import(pcap)?;
            data.analyze()?;
            let findings = data.findings()?;
            let sessions = data.session_log()?;
            Ok(Arc::new(Analyzed {
                label: label.to_string(),
                findings,
                sessions,
                data,
            }))
        })()
        .map_err(|e| format!("{e:#}"))
    });
    match result {
        Ok(a) => a.clone(),
        Err(e) => panic!("kuroko pipeline on {label} ({}): {e}", pcap.display()),
    }
}

fn scenario(s: Scenario) -> Arc<Analyzed> {
    let pcap = recording(s).unwrap_or_else(|e| panic!("scenario {}: {e:#}", s.name()));
    analyze_pcap(s.name(), &pcap, "Asia/Tokyo")
}

/// The streaming recording moved to `unix` (first packet), analyzed in `timezone`.
fn streaming_at(label: &str, unix: i64, timezone: &str) -> Arc<Analyzed> {
    let pcap = recording(Scenario::Streaming).unwrap_or_else(|e| panic!("streaming: {e:#}"));
    let shifted: PathBuf = recordings_dir().join(format!("{label}.pcap"));
    if !shifted.exists() {
        shift_to(&pcap, &shifted, unix).unwrap_or_else(|e| panic!("shifting the recording: {e:#}"));
    }
    analyze_pcap(label, &shifted, timezone)
}

// ---------------------------------------------------------------------------------------
// What the recordings must hold (independently of Kuroko: tshark).

/// Frames tshark reads from the head of a recording. The frames checked here are in the
/// first few of each conversation; this keeps tshark from dissecting 150 MB uploads.
const TSHARK_FRAMES: &str = "5000";

fn tshark(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut args = vec![
        "-r",
        pcap.to_str().unwrap(),
        "-c",
        TSHARK_FRAMES,
        "-o",
        "http.desegment_body:FALSE",
        "-Y",
        filter,
        "-T",
        "fields",
    ];
    for f in fields {
        args.extend_from_slice(&["-e", f]);
    }
    let out = std::process::Command::new("tshark")
        .args(&args)
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark {filter}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn pcap_has(s: Scenario, filter: &str) {
    let pcap = recording(s).unwrap_or_else(|e| panic!("scenario {}: {e:#}", s.name()));
    assert!(
        !tshark(&pcap, filter, &["frame.number"]).is_empty(),
        "the {} recording lacks `{filter}` (tshark): the scenario did not make its traffic",
        s.name()
    );
}

// ---------------------------------------------------------------------------------------
// Assertions on findings.

fn rule_findings(a: &Analyzed, rule: RuleId) -> Vec<&Value> {
    a.findings
        .iter()
        .filter(|f| f["rule"] == rule.as_str())
        .collect()
}

fn session<'a>(a: &'a Analyzed, id: &str) -> Option<&'a Value> {
    a.sessions.iter().find(|s| s["id"] == id)
}

fn describe(a: &Analyzed) -> String {
    let mut out = format!("{} findings in {}:", a.findings.len(), a.label);
    for f in &a.findings {
        out.push_str(&format!(
            "\n  {} {} client={} server={} evidence={}",
            f["risk"], f["rule"], f["client"], f["server"], f["evidence"]
        ));
    }
    out.push_str(&format!("\n{} sessions:", a.sessions.len()));
    for s in a.sessions.iter().take(40) {
        out.push_str(&format!(
            "\n  {} {} {}:{} -> {}:{}",
            s["id"],
            s["protocol"],
            s["client"]["ip"],
            s["client"]["port"],
            s["server"]["ip"],
            s["server"]["port"]
        ));
    }
    out
}

/// The default grade of `rule` from the detect crate's catalog.
fn default_risk(rule: RuleId) -> &'static str {
    let info = rule.info();
    Risk::from_levels(info.vulnerability, info.threat).as_str()
}

/// Asserts that `rule` fired for `client` → `server` with the catalog's grade and evidence
/// sessions of one of `protocols` between exactly those hosts. A finding may aggregate one
/// side (`client`/`server` null, e.g. many outside clients); its evidence must still name
/// the expected hosts.
fn assert_fires(a: &Analyzed, rule: RuleId, client: Host, server: Host, protocols: &[&str]) {
    let found = rule_findings(a, rule);
    assert!(
        !found.is_empty(),
        "{rule} did not fire on {}.\n{}",
        a.label,
        describe(a)
    );
    let side_ok = |v: &Value, ip: &str| v.is_null() || v == ip;
    let matching: Vec<&&Value> = found
        .iter()
        .filter(|f| side_ok(&f["client"], client.ip) && side_ok(&f["server"], server.ip))
        .collect();
    assert!(
        !matching.is_empty(),
        "{rule} fired on {} but not for {} -> {}.\n{}",
        a.label,
        client.ip,
        server.ip,
        describe(a)
    );
    for f in matching {
        assert_eq!(
            f["risk"].as_str(),
            Some(default_risk(rule)),
            "{rule} on {}: grade (vulnerability {} x threat {}); finding {f}",
            a.label,
            rule.info().vulnerability,
            rule.info().threat
        );
        assert!(
            f["count"].as_u64().unwrap_or(0) >= 1,
            "{rule}: count in {f}"
        );
        let evidence = f["evidence"].as_array().cloned().unwrap_or_default();
        assert!(
            !evidence.is_empty(),
            "{rule} on {} has no evidence: {f}",
            a.label
        );
        // The analyst's path: the evidence ids typed into `kuroko search`.
        let ids: Vec<String> = evidence
            .iter()
            .map(|id| format!("\"{}\"", id.as_str().unwrap_or_default()))
            .collect();
        let query = format!("id:({})", ids.join(" "));
        let rows = a
            .data
            .search(&query)
            .unwrap_or_else(|e| panic!("kuroko search {query}: {e:#}"));
        assert_eq!(
            rows.len(),
            evidence.len(),
            "{rule}: `kuroko search {query}` found {rows:?}"
        );
        for row in &rows {
            let proto = row["protocol"].as_str().unwrap_or_default();
            assert!(
                protocols.contains(&proto),
                "{rule}: search row {row} is {proto}"
            );
        }
        for id in evidence {
            let id = id.as_str().unwrap_or_default();
            let s = session(a, id).unwrap_or_else(|| {
                panic!(
                    "{rule}: evidence session {id} is not in the session log.\n{}",
                    describe(a)
                )
            });
            let proto = s["protocol"].as_str().unwrap_or_default();
            assert!(
                protocols.contains(&proto),
                "{rule}: evidence session {id} is {proto}, expected one of {protocols:?}: {s}"
            );
            assert_eq!(
                s["client"]["ip"], client.ip,
                "{rule}: evidence {id} client: {s}"
            );
            assert_eq!(
                s["server"]["ip"], server.ip,
                "{rule}: evidence {id} server: {s}"
            );
        }
    }
}

/// Asserts that `rule` did not fire at all on `a`.
fn assert_silent(a: &Analyzed, rule: RuleId) {
    let found = rule_findings(a, rule);
    assert!(
        found.is_empty(),
        "{rule} fired on {} (negative twin).\n{}",
        a.label,
        describe(a)
    );
}

// ---------------------------------------------------------------------------------------
// telnet_use

#[test]
fn telnet_use_fires_on_a_telnet_login() {
    pcap_has(Scenario::Telnet, "telnet && tcp.dstport == 23");
    let a = scenario(Scenario::Telnet);
    assert_fires(&a, RuleId::TelnetUse, PC, FILES, &["telnet"]);
}

// ---------------------------------------------------------------------------------------
// ftp_default_port_internal / ftp_default_port_external

#[test]
fn ftp_default_port_internal_fires_between_inside_hosts_on_21() {
    pcap_has(
        Scenario::FtpInternal,
        "ftp.request.command == \"RETR\" && tcp.dstport == 21",
    );
    let a = scenario(Scenario::FtpInternal);
    // The control sessions and the (passive) data connections that carried the files.
    assert_fires(
        &a,
        RuleId::FtpDefaultPortInternal,
        PC,
        FILES,
        &["ftp", "ftp-data"],
    );
    assert_silent(&a, RuleId::FtpDefaultPortExternal);
}

#[test]
fn ftp_default_port_internal_is_silent_on_port_2121() {
    pcap_has(
        Scenario::FtpInternalOtherPort,
        "tcp.dstport == 2121 && tcp.len > 0",
    );
    let a = scenario(Scenario::FtpInternalOtherPort);
    assert_silent(&a, RuleId::FtpDefaultPortInternal);
    assert_silent(&a, RuleId::FtpDefaultPortExternal);
}

#[test]
fn ftp_default_port_external_fires_from_inside_to_outside_on_21() {
    pcap_has(
        Scenario::FtpExternal,
        "ftp.request.command == \"STOR\" && ip.dst == 203.0.113.10",
    );
    let a = scenario(Scenario::FtpExternal);
    assert_fires(
        &a,
        RuleId::FtpDefaultPortExternal,
        PC,
        EXT,
        &["ftp", "ftp-data"],
    );
    assert_silent(&a, RuleId::FtpDefaultPortInternal);
}

// ---------------------------------------------------------------------------------------
// ssh_external / openssh_outdated

#[test]
fn ssh_external_fires_for_an_outside_server_not_on_the_allow_list() {
    pcap_has(
        Scenario::SshExternal,
        "ssh.protocol contains \"OpenSSH_9.2p1\"",
    );
    let a = scenario(Scenario::SshExternal);
    assert_fires(&a, RuleId::SshExternal, PC, EXT, &["ssh"]);
}

#[test]
fn ssh_external_is_silent_for_an_allowed_server() {
    pcap_has(
        Scenario::SshAllowed,
        "ssh.protocol && ip.dst == 198.51.100.22",
    );
    let a = scenario(Scenario::SshAllowed);
    assert_silent(&a, RuleId::SshExternal);
}

/// The rule is about the site's own servers (an inside sshd, Debian's 9.2p1).
#[test]
fn openssh_outdated_fires_on_an_inside_debian_openssh_9_2p1() {
    pcap_has(
        Scenario::SshInternal,
        "ssh.protocol contains \"OpenSSH_9.2p1\" && ip.src == 10.10.2.20",
    );
    let a = scenario(Scenario::SshInternal);
    assert_fires(&a, RuleId::OpensshOutdated, PC, FILES, &["ssh"]);
    // Inside to inside is not "SSH to an outside server".
    assert_silent(&a, RuleId::SshExternal);
}

#[test]
fn openssh_outdated_is_silent_on_openssh_9_9p1() {
    pcap_has(
        Scenario::SshModernServer,
        "ssh.protocol contains \"OpenSSH_9.9p1\"",
    );
    let a = scenario(Scenario::SshModernServer);
    assert_silent(&a, RuleId::OpensshOutdated);
}

// ---------------------------------------------------------------------------------------
// winrm_use, oracle_traffic

#[test]
fn winrm_use_fires_on_wsman_post() {
    pcap_has(
        Scenario::WinRm,
        "http.request.method == \"POST\" && http.request.uri == \"/wsman\"",
    );
    let a = scenario(Scenario::WinRm);
    assert_fires(&a, RuleId::WinrmUse, PC, FILES, &["winrm", "http"]);
}

#[test]
fn oracle_traffic_fires_on_a_tns_connect() {
    pcap_has(Scenario::Oracle, "tns.type == 1");
    let a = scenario(Scenario::Oracle);
    assert_fires(&a, RuleId::OracleTraffic, PC, DB, &["oracle"]);
}

// ---------------------------------------------------------------------------------------
// fortinet_login_exposed

#[test]
fn fortinet_login_exposed_fires_when_an_outside_client_gets_the_login_page() {
    pcap_has(
        Scenario::FortinetOutside,
        "http.request.uri contains \"/remote/login\" && ip.src == 198.51.100.66",
    );
    pcap_has(
        Scenario::FortinetOutside,
        "x509sat.uTF8String contains \"FortiGate\" || x509sat.printableString contains \"FortiGate\"",
    );
    let a = scenario(Scenario::FortinetOutside);
    assert_fires(
        &a,
        RuleId::FortinetLoginExposed,
        ATTACKER,
        GATEWAY,
        &["http", "tls", "https"],
    );
}

#[test]
fn fortinet_login_exposed_is_silent_for_inside_clients() {
    pcap_has(
        Scenario::FortinetInside,
        "http.request.uri contains \"/remote/login\" && ip.src == 10.10.1.10",
    );
    let a = scenario(Scenario::FortinetInside);
    assert_silent(&a, RuleId::FortinetLoginExposed);
}

// ---------------------------------------------------------------------------------------
// public_app_exploit_attempt

#[test]
fn public_app_exploit_attempt_fires_on_traversal_log4shell_and_fortios_paths() {
    pcap_has(
        Scenario::ExploitAttempts,
        "http.user_agent contains \"jndi:ldap\"",
    );
    pcap_has(
        Scenario::ExploitAttempts,
        "http.request.uri contains \"sslvpn_websession\"",
    );
    let a = scenario(Scenario::ExploitAttempts);
    assert_fires(
        &a,
        RuleId::PublicAppExploitAttempt,
        ATTACKER,
        GATEWAY,
        &["http"],
    );
    // Every exploit request is its own curl run (its own session): each must be evidence.
    let f = rule_findings(&a, RuleId::PublicAppExploitAttempt);
    let evidence: usize = f
        .iter()
        .map(|f| f["evidence"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(
        evidence >= scenarios::EXPLOIT_REQUESTS.len(),
        "{} exploit requests, {evidence} evidence sessions.\n{}",
        scenarios::EXPLOIT_REQUESTS.len(),
        describe(&a)
    );
}

#[test]
fn public_app_exploit_attempt_is_silent_on_ordinary_outside_browsing() {
    pcap_has(
        Scenario::OutsideBrowsing,
        "http.request && ip.src == 198.51.100.66",
    );
    let a = scenario(Scenario::OutsideBrowsing);
    assert_silent(&a, RuleId::PublicAppExploitAttempt);
}

// ---------------------------------------------------------------------------------------
// phishing_mail

#[test]
fn phishing_mail_fires_on_bank_impersonation_with_deceptive_link_and_exe() {
    pcap_has(
        Scenario::PhishingMail,
        "smtp.req.command == \"DATA\" && ip.src == 198.51.100.66",
    );
    pcap_has(
        Scenario::PhishingMail,
        "imf.from contains \"resonabank-co.jp\"",
    );
    let a = scenario(Scenario::PhishingMail);
    assert_fires(&a, RuleId::PhishingMail, ATTACKER, MAIL, &["smtp"]);
    let f = rule_findings(&a, RuleId::PhishingMail);
    let signals: Vec<String> = f
        .iter()
        .flat_map(|f| f["signals"].as_array().cloned().unwrap_or_default())
        .map(|s| s.as_str().unwrap_or_default().to_lowercase())
        .collect();
    assert!(
        signals
            .iter()
            .any(|s| s.contains(scenarios::PHISHING_ATTACHMENT)),
        "the risky attachment {} is not among the signals {signals:?}",
        scenarios::PHISHING_ATTACHMENT
    );
    assert!(
        signals.len() >= 3,
        "expected several phishing signals (impersonation, link, reply-to, attachment): {signals:?}"
    );
}

#[test]
fn phishing_mail_is_silent_on_an_ordinary_mail() {
    pcap_has(Scenario::OrdinaryMail, "smtp.req.command == \"DATA\"");
    let a = scenario(Scenario::OrdinaryMail);
    assert_silent(&a, RuleId::PhishingMail);
}

// ---------------------------------------------------------------------------------------
// streaming_or_adult_in_business_hours: the same recording moved in time.

/// Wednesday 2026-11-18 10:00 JST (01:00 UTC).
const WED_10_JST: i64 = 1_794_963_600;
/// Thursday 2026-11-19 03:00 JST (Wednesday 18:00 UTC).
const THU_03_JST: i64 = 1_795_024_800;
/// Saturday 2026-11-21 11:00 JST (02:00 UTC).
const SAT_11_JST: i64 = 1_795_226_400;
/// Wednesday 2026-07-15 13:30 UTC = 09:30 EDT (daylight saving time in New York).
const JUL_WED_1330_UTC: i64 = 1_784_122_200;
/// Wednesday 2026-01-14 13:30 UTC = 08:30 EST (standard time: before opening).
const JAN_WED_1330_UTC: i64 = 1_768_397_400;

#[test]
fn business_hour_constants_are_what_they_say() {
    use chrono::{Datelike, TimeZone, Timelike};
    let tokyo = chrono_tz::Asia::Tokyo;
    let ny = chrono_tz::America::New_York;
    let at = |t: i64, tz: chrono_tz::Tz| tz.timestamp_opt(t, 0).unwrap();
    assert_eq!(
        (
            at(WED_10_JST, tokyo).weekday(),
            at(WED_10_JST, tokyo).hour()
        ),
        (chrono::Weekday::Wed, 10)
    );
    assert_eq!(
        (
            at(THU_03_JST, tokyo).weekday(),
            at(THU_03_JST, tokyo).hour()
        ),
        (chrono::Weekday::Thu, 3)
    );
    assert_eq!(
        (
            at(SAT_11_JST, tokyo).weekday(),
            at(SAT_11_JST, tokyo).hour()
        ),
        (chrono::Weekday::Sat, 11)
    );
    let jul = at(JUL_WED_1330_UTC, ny);
    assert_eq!(
        (jul.weekday(), jul.hour(), jul.minute()),
        (chrono::Weekday::Wed, 9, 30)
    );
    let jan = at(JAN_WED_1330_UTC, ny);
    assert_eq!(
        (jan.weekday(), jan.hour(), jan.minute()),
        (chrono::Weekday::Wed, 8, 30)
    );
}

#[test]
fn streaming_fires_during_business_hours() {
    pcap_has(
        Scenario::Streaming,
        "tls.handshake.extensions_server_name == \"www.netflix.com\"",
    );
    pcap_has(Scenario::Streaming, "dns.qry.name == \"www.netflix.com\"");
    let a = streaming_at("streaming-wed-10-jst", WED_10_JST, "Asia/Tokyo");
    let rule = RuleId::StreamingOrAdultInBusinessHours;
    let found = rule_findings(&a, rule);
    assert!(!found.is_empty(), "{rule} did not fire.\n{}", describe(&a));
    // One finding per client may aggregate the sites; its evidence are the DNS query to the
    // site's DNS server and the TLS and HTTP sessions to the streaming server.
    let mut evidence_protocols = Vec::new();
    for f in &found {
        assert_eq!(f["risk"].as_str(), Some(default_risk(rule)), "grade of {f}");
        assert!(
            f["client"] == PC.ip || f["client"].is_null(),
            "client of {f}"
        );
        assert!(
            f["server"] == EXT.ip || f["server"] == DNS.ip || f["server"].is_null(),
            "server of {f}"
        );
        for id in f["evidence"].as_array().cloned().unwrap_or_default() {
            let id = id.as_str().unwrap_or_default();
            let s =
                session(&a, id).unwrap_or_else(|| panic!("evidence {id} not in the session log"));
            assert_eq!(s["client"]["ip"], PC.ip, "evidence {id}: {s}");
            let server = s["server"]["ip"].as_str().unwrap_or_default();
            assert!(
                server == EXT.ip || server == DNS.ip,
                "evidence {id} server: {s}"
            );
            evidence_protocols.push(s["protocol"].as_str().unwrap_or_default().to_string());
        }
    }
    for p in ["tls", "http"] {
        assert!(
            evidence_protocols.iter().any(|e| e == p),
            "no {p} session to www.netflix.com among the evidence {evidence_protocols:?}"
        );
    }
}

#[test]
fn streaming_is_silent_at_night() {
    let a = streaming_at("streaming-thu-03-jst", THU_03_JST, "Asia/Tokyo");
    assert_silent(&a, RuleId::StreamingOrAdultInBusinessHours);
}

#[test]
fn streaming_is_silent_on_a_weekend_morning() {
    let a = streaming_at("streaming-sat-11-jst", SAT_11_JST, "Asia/Tokyo");
    assert_silent(&a, RuleId::StreamingOrAdultInBusinessHours);
}

#[test]
fn streaming_business_hours_follow_daylight_saving_time() {
    let summer = streaming_at(
        "streaming-jul-0930-edt",
        JUL_WED_1330_UTC,
        "America/New_York",
    );
    let rule = RuleId::StreamingOrAdultInBusinessHours;
    assert!(
        !rule_findings(&summer, rule).is_empty(),
        "{rule} at 09:30 EDT.\n{}",
        describe(&summer)
    );
    let winter = streaming_at(
        "streaming-jan-0830-est",
        JAN_WED_1330_UTC,
        "America/New_York",
    );
    assert_silent(&winter, rule);
}

// ---------------------------------------------------------------------------------------
// vpn_large_upload

#[test]
fn vpn_large_upload_fires_on_150_mb_from_the_vpn_pool() {
    pcap_has(
        Scenario::VpnLargeUpload,
        "http.request.method == \"PUT\" && ip.src == 10.8.0.5",
    );
    let a = scenario(Scenario::VpnLargeUpload);
    assert_fires(&a, RuleId::VpnLargeUpload, VPN, FILES, &["http"]);
    let up: u64 = a
        .sessions
        .iter()
        .filter(|s| s["client"]["ip"] == VPN.ip)
        .map(|s| s["bytes_up"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        up >= scenarios::VPN_LARGE_UPLOAD_BYTES,
        "bytes_up from the VPN client: {up}"
    );
    vpn_pool_addresses_are_marked_in_search_and_assets(&a);
}

/// `[site] vpn_pools` in `kuroko search` (table `(VPN)`, jsonl `"client_vpn": true`, csv
/// `client_vpn`) and `kuroko assets` (`(VPN)`, `"vpn": true`, `vpn`), on the uploads of
/// the VPN client: the same marks as the findings table and `search --stats`.
fn vpn_pool_addresses_are_marked_in_search_and_assets(a: &Analyzed) {
    let q = format!("client:{}", VPN.ip);
    let table = a.data.kuroko("search", &["--width", "200", &q]).unwrap();
    let rows: Vec<&str> = table.lines().skip(1).filter(|l| !l.is_empty()).collect();
    assert!(!rows.is_empty(), "{table}");
    for r in &rows {
        assert!(
            r.contains(&format!("{} (VPN)", VPN.ip)),
            "client not marked: {r}"
        );
        assert_eq!(r.matches("(VPN)").count(), 1, "the server marked too: {r}");
    }
    let jsonl = a.data.search(&q).unwrap();
    assert!(!jsonl.is_empty());
    for s in &jsonl {
        assert_eq!(s["client_vpn"], true, "{s}");
        assert!(s.get("server_vpn").is_none(), "{s}");
    }
    let csv = a.data.kuroko("search", &["--format", "csv", &q]).unwrap();
    let mut lines = csv.lines();
    let header = csv_fields(lines.next().unwrap());
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    for l in lines {
        let f = csv_fields(l);
        assert_eq!(
            (f[col("client_vpn")].as_str(), f[col("server_vpn")].as_str()),
            ("true", "false"),
            "{l}"
        );
    }
    // Every other session's client is outside the pool: nothing marked.
    let others = a.data.search(&format!("NOT client:{}", VPN.ip)).unwrap();
    assert!(others.iter().all(|s| s.get("client_vpn").is_none()));

    let hosts = parse_jsonl(&a.data.kuroko("assets", &["--format", "jsonl"]).unwrap()).unwrap();
    let host = |ip: &str| hosts.iter().find(|h| h["ip"] == ip);
    let vpn = host(VPN.ip).unwrap_or_else(|| panic!("{} not in {hosts:#?}", VPN.ip));
    assert_eq!(vpn["vpn"], true, "{vpn}");
    let files = host(FILES.ip).unwrap_or_else(|| panic!("{} not in {hosts:#?}", FILES.ip));
    assert!(files.get("vpn").is_none(), "{files}");
    let table = a.data.kuroko("assets", &[]).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{} (VPN)  ", VPN.ip))),
        "{table}"
    );
    assert!(!table.contains(&format!("{} (VPN)", FILES.ip)), "{table}");
    let csv = a.data.kuroko("assets", &["--format", "csv"]).unwrap();
    let mut lines = csv.lines();
    let header = csv_fields(lines.next().unwrap());
    let vpn_col = header.iter().position(|h| h == "vpn").unwrap();
    for l in lines {
        let f = csv_fields(l);
        let want = if f[0] == VPN.ip { "true" } else { "false" };
        assert_eq!(f[vpn_col], want, "{l}");
    }
}

#[test]
fn vpn_large_upload_is_silent_on_50_mb() {
    pcap_has(
        Scenario::VpnSmallUpload,
        "http.request.method == \"PUT\" && ip.src == 10.8.0.5",
    );
    let a = scenario(Scenario::VpnSmallUpload);
    assert_silent(&a, RuleId::VpnLargeUpload);
}

// ---------------------------------------------------------------------------------------
// bad_reputation_ip

#[test]
fn bad_reputation_ip_fires_for_an_address_on_the_drop_list() {
    pcap_has(
        Scenario::BadReputation,
        "http.request && ip.dst == 192.0.2.66",
    );
    let a = scenario(Scenario::BadReputation);
    assert_fires(&a, RuleId::BadReputationIp, PC, BAD, &["http", "tcp"]);
}

// ---------------------------------------------------------------------------------------
// http_connect_nonstandard_port

#[test]
fn http_connect_nonstandard_port_fires_on_connect_to_5228() {
    pcap_has(
        Scenario::ConnectNonStandard,
        "http.request.method == \"CONNECT\" && http.request.uri == \"mtalk.google.com:5228\"",
    );
    let a = scenario(Scenario::ConnectNonStandard);
    assert_fires(
        &a,
        RuleId::HttpConnectNonstandardPort,
        PC,
        PROXY,
        &["http", "https"],
    );
}

#[test]
fn http_connect_nonstandard_port_is_silent_on_connect_to_443() {
    pcap_has(
        Scenario::Connect443,
        "http.request.method == \"CONNECT\" && http.request.uri == \"www.example.com:443\"",
    );
    let a = scenario(Scenario::Connect443);
    assert_silent(&a, RuleId::HttpConnectNonstandardPort);
}

#[test]
fn netraptor_connect_query_finds_only_the_5228_tunnel() {
    let q =
        "(protocol:http OR protocol:https) AND NOT(url:(\":443\" \":80\")) AND (method:CONNECT)";
    let hit = scenario(Scenario::ConnectNonStandard);
    let rows = hit
        .data
        .search(q)
        .unwrap_or_else(|e| panic!("kuroko search: {e:#}"));
    assert_eq!(
        rows.len(),
        1,
        "sessions matching the CONNECT query on connect-5228: {rows:?}"
    );
    assert_eq!(rows[0]["client"]["ip"], PC.ip);
    assert_eq!(rows[0]["server"]["ip"], PROXY.ip);
    let miss = scenario(Scenario::Connect443);
    let rows = miss
        .data
        .search(q)
        .unwrap_or_else(|e| panic!("kuroko search: {e:#}"));
    assert!(
        rows.is_empty(),
        "the CONNECT query matched a CONNECT to 443: {rows:?}"
    );
}

// ---------------------------------------------------------------------------------------
// False positives: ordinary office traffic.

#[test]
fn office_traffic_yields_no_finding_above_grade_e() {
    pcap_has(Scenario::Office, "dns.qry.name == \"www.example.com\"");
    pcap_has(
        Scenario::Office,
        "tls.handshake.extensions_server_name == \"www.example.com\"",
    );
    pcap_has(Scenario::Office, "smtp.req.command == \"DATA\"");
    pcap_has(Scenario::Office, "http.request.uri == \"/wiki/Main_Page\"");
    let a = scenario(Scenario::Office);
    let protocols: Vec<&str> = a
        .sessions
        .iter()
        .filter_map(|s| s["protocol"].as_str())
        .collect();
    for p in ["dns", "http", "tls", "smtp"] {
        assert!(
            protocols.contains(&p),
            "no {p} session in the office recording: {protocols:?}"
        );
    }
    let above_e: Vec<&Value> = a.findings.iter().filter(|f| f["risk"] != "E").collect();
    assert!(
        above_e.is_empty(),
        "office traffic made findings above E.\n{}",
        describe(&a)
    );
}

// ---------------------------------------------------------------------------------------
// cleartext_credentials, vulnerable_software, weak_tls (their real-daemon positives with
// expired/self-signed certificates and TLS 1.0 are in assets_live.rs)

#[test]
fn cleartext_credentials_fires_on_an_ftp_login_with_user_and_pass() {
    pcap_has(
        Scenario::FtpInternal,
        "ftp.request.command == \"PASS\" && tcp.dstport == 21",
    );
    let a = scenario(Scenario::FtpInternal);
    assert_fires(&a, RuleId::CleartextCredentials, PC, FILES, &["ftp"]);
    let f = rule_findings(&a, RuleId::CleartextCredentials);
    let text = serde_json::to_string(&f).unwrap();
    assert!(text.contains("alice"), "the user is named: {text}");
    assert!(
        !text.contains("secret"),
        "the password is never stored: {text}"
    );
}

/// Debian's current openssh-server (9.2p1 with its backported fixes) is not vulnerable,
/// although 9.2p1 < 9.8p1; ordinary office TLS is not weak.
#[test]
fn vulnerable_software_and_weak_tls_are_silent_on_current_debian_and_office_tls() {
    let a = scenario(Scenario::SshInternal);
    assert_silent(&a, RuleId::VulnerableSoftware);
    let a = scenario(Scenario::Office);
    assert_silent(&a, RuleId::WeakTls);
    assert_silent(&a, RuleId::CleartextCredentials);
}

// ---------------------------------------------------------------------------------------
// intel_match, yara_match (their real-client positives, each with a negative twin, are in
// intel_live.rs and yara_files.rs: they need an intel pack or YARA rules installed)

/// Without an intel pack or YARA rules, neither rule says anything about office traffic.
#[test]
fn intel_match_and_yara_match_are_silent_without_packs_or_rules() {
    let a = scenario(Scenario::Office);
    assert_silent(&a, RuleId::IntelMatch);
    assert_silent(&a, RuleId::YaraMatch);
}

/// A rule added to the catalog without an end-to-end test here fails this.
#[test]
fn every_rule_of_the_catalog_has_a_test_here() {
    let source = include_str!("e2e_rules.rs");
    for rule in RuleId::ALL {
        let variant = format!("RuleId::{rule:?}");
        assert!(
            source.contains(&variant),
            "no end-to-end test mentions {variant}"
        );
    }
}
