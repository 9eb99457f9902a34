//! The engine on realistic session records: aggregation, levels and overrides, time
//! zones, and the office-traffic false-positive check.

mod common;

use common::*;
use kuroko_detect::{Engine, aggregate::MAX_EVIDENCE};
use kuroko_model::Timestamp;
use kuroko_model::config::{Config, LevelOverride};
use kuroko_model::finding::{Category, Lang, Risk};

#[test]
fn repeated_events_aggregate_into_one_finding_per_rule_client_server() {
    let mut e = Engine::new(&Config::default()).unwrap();
    let t0 = office_hours();
    for i in 0..50 {
        e.observe(&telnet(
            &format!("tn{i}"),
            "10.0.0.5",
            "10.0.3.1",
            Timestamp(t0.nanos() + i * 60_000_000_000),
        ));
    }
    e.observe(&telnet("other-client", "10.0.0.6", "10.0.3.1", t0));
    let f = e.findings(Lang::Ja);
    assert_eq!(f.len(), 2, "{f:#?}");
    let main = f
        .iter()
        .find(|x| x.client.as_deref() == Some("10.0.0.5"))
        .unwrap();
    assert_eq!(main.rule, "telnet_use");
    assert_eq!(main.count, 50);
    assert_eq!(main.evidence.len(), MAX_EVIDENCE);
    assert_eq!(main.evidence[0], "tn0", "the first sessions are kept");
    assert_eq!(main.first_seen, t0);
    assert_eq!(
        main.last_seen,
        Timestamp(t0.nanos() + 49 * 60_000_000_000 + 1_500_000_000)
    );
    assert_eq!(main.server.as_deref(), Some("10.0.3.1"));
    assert_eq!(
        (main.vulnerability, main.threat, main.risk),
        (3, 2, Risk::B)
    );
    assert_eq!(main.title, "Telnet の利用");
    assert_eq!(main.category, Category::LateralMovement);
    assert!(main.countermeasures.iter().any(|c| c == "Telnet の無効化"));
    assert!(main.attack.contains(&"T1021".to_string()));
    // The id depends on (rule, client, server) only.
    let mut again = Engine::new(&Config::default()).unwrap();
    again.observe(&telnet("x", "10.0.0.5", "10.0.3.1", t0));
    assert_eq!(again.findings(Lang::En)[0].id, main.id);
    assert_eq!(again.findings(Lang::En)[0].title, "Telnet in use");
}

#[test]
fn aggregated_sides_list_their_peers() {
    // Exploit attempts from many outside addresses: one finding per server, clients listed.
    let mut e = Engine::new(&Config::default()).unwrap();
    for (i, attacker) in ["203.0.113.7", "198.51.100.23", "203.0.113.7"]
        .iter()
        .enumerate()
    {
        let s = web(
            &format!("x{i}"),
            attacker,
            "10.0.0.10",
            "vpn.corp.example",
            "/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession",
            office_hours(),
        );
        e.observe(&s);
    }
    let f: Vec<_> = e
        .findings(Lang::En)
        .into_iter()
        .filter(|f| f.rule == "public_app_exploit_attempt")
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].client, None);
    assert_eq!(f[0].server.as_deref(), Some("10.0.0.10"));
    assert_eq!(f[0].count, 3);
    assert!(
        f[0].signals
            .iter()
            .any(|s| s == "clients (2): 203.0.113.7, 198.51.100.23"),
        "{:?}",
        f[0].signals
    );
    assert!(f[0].signals.iter().any(|s| s.contains("CVE-2018-13379")));
    assert_eq!(f[0].risk, Risk::B);
}

#[test]
fn overrides_change_levels_and_keep_the_reason_and_disabled_rules_stay_silent() {
    let mut c = Config::default();
    c.detect.overrides.insert(
        "telnet_use".into(),
        LevelOverride {
            vulnerability: Some(1),
            threat: Some(1),
            reason: "閉域の検証ネットワークのみで使用".into(),
            note: None,
        },
    );
    c.detect.overrides.insert(
        "ssh_external".into(),
        LevelOverride {
            vulnerability: None,
            threat: Some(2),
            reason: String::new(),
            note: None,
        },
    );
    c.detect.disabled_rules = vec!["ftp_default_port_internal".into()];
    let mut e = Engine::new(&c).unwrap();
    e.observe(&telnet("t1", "10.0.0.5", "10.0.3.1", office_hours()));
    e.observe(&session(
        "s1",
        "ssh",
        "10.0.0.5",
        50_000,
        "203.0.113.50",
        22,
        office_hours(),
    ));
    let mut ftp = session(
        "f1",
        "ftp",
        "10.0.0.5",
        50_001,
        "10.0.0.21",
        21,
        office_hours(),
    );
    ftp.ftp = Some(Default::default());
    e.observe(&ftp);
    let f = e.findings(Lang::Ja);
    let t = f.iter().find(|f| f.rule == "telnet_use").unwrap();
    assert_eq!((t.vulnerability, t.threat, t.risk), (1, 1, Risk::E));
    assert_eq!(
        t.override_reason.as_deref(),
        Some("閉域の検証ネットワークのみで使用")
    );
    let s = f.iter().find(|f| f.rule == "ssh_external").unwrap();
    assert_eq!(
        (s.vulnerability, s.threat, s.risk),
        (3, 2, Risk::B),
        "only the threat was overridden"
    );
    assert!(s.override_reason.is_some());
    assert!(f.iter().all(|f| f.rule != "ftp_default_port_internal"));
    // Highest risk first.
    assert_eq!(f[0].rule, "ssh_external");

    let mut bad = Config::default();
    bad.detect.disabled_rules = vec!["telnet".into()];
    let err = Engine::new(&bad).err().unwrap().to_string();
    assert!(
        err.contains("detect.disabled_rules") && err.contains("telnet_use"),
        "{err}"
    );
}

#[test]
fn business_hours_follow_the_configured_zone_with_dst_and_weekends() {
    let netflix =
        |id: &str, t: Timestamp| tls(id, "10.0.0.5", "198.38.120.10", "www.netflix.com", t);
    let fired = |c: &Config, t: Timestamp| {
        let mut e = Engine::new(c).unwrap();
        e.observe(&netflix("n", t));
        e.findings(Lang::En)
            .iter()
            .any(|f| f.rule == "streaming_or_adult_in_business_hours")
    };
    let mut ny = Config::default();
    ny.site.timezone = "America/New_York".into();
    // 2026-03-09 is the Monday after DST started (EDT, UTC-4).
    assert!(fired(&ny, at("UTC", 2026, 3, 9, 13, 30)), "09:30 EDT");
    assert!(!fired(&ny, at("UTC", 2026, 3, 9, 12, 30)), "08:30 EDT");
    // The Friday before, still EST (UTC-5): 13:30Z is 08:30 local.
    assert!(!fired(&ny, at("UTC", 2026, 3, 6, 13, 30)), "08:30 EST");
    assert!(fired(&ny, at("UTC", 2026, 3, 6, 14, 30)), "09:30 EST");
    // Weekend in Tokyo.
    let tokyo = Config::default();
    assert!(
        !fired(&tokyo, at("Asia/Tokyo", 2026, 11, 21, 11, 0)),
        "Saturday"
    );
    assert!(
        !fired(&tokyo, at("Asia/Tokyo", 2026, 11, 22, 11, 0)),
        "Sunday"
    );
    assert!(
        fired(&tokyo, at("Asia/Tokyo", 2026, 11, 20, 11, 0)),
        "Friday"
    );
    // Custom hours with a lunch break.
    let mut lunch = Config::default();
    lunch.site.business_hours = "mon-fri 09:00-12:00, mon-fri 13:00-18:00".into();
    assert!(!fired(&lunch, at("Asia/Tokyo", 2026, 11, 18, 12, 30)));
    assert!(fired(&lunch, at("Asia/Tokyo", 2026, 11, 18, 13, 30)));
}

/// The false-positive check: a morning of ordinary office traffic.
#[test]
fn ordinary_office_sessions_yield_nothing_above_grade_e() {
    let mut e = Engine::new(&Config::default()).unwrap();
    let t = office_hours();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("o{n}")
    };
    let sites = [
        "www.google.com",
        "www.yahoo.co.jp",
        "www.microsoft.com",
        "login.microsoftonline.com",
        "outlook.office365.com",
        "github.com",
        "www.nikkei.com",
        "www.mufg.jp",
        "www.smbc.co.jp",
        "slack.com",
        "zoom.us",
        "www.amazon.co.jp",
    ];
    for (i, site) in sites.iter().enumerate() {
        let ts = Timestamp(t.nanos() + i as i64 * 30_000_000_000);
        e.observe(&dns(&id(), "10.0.0.41", "10.0.0.2", site, ts));
        e.observe(&tls(&id(), "10.0.0.41", "142.250.196.100", site, ts));
    }
    e.observe(&web(
        &id(),
        "10.0.0.41",
        "10.0.0.80",
        "intranet.corp.example",
        "/portal/index.html?tab=news&page=2",
        t,
    ));
    e.observe(&web(
        &id(),
        "10.0.0.42",
        "93.184.216.34",
        "example.com",
        "/",
        t,
    ));
    e.observe(&web(
        &id(),
        "10.0.0.42",
        "10.0.0.80",
        "intranet.corp.example",
        "/search?q=%E4%BC%9A%E8%AD%B0%E5%AE%A4+%E4%BA%88%E7%B4%84",
        t,
    ));
    e.observe(&internal_mail(&id(), t));
    let mut imap = internal_mail(&id(), t);
    imap.protocol = "imap".into();
    imap.server.port = 143;
    e.observe(&imap);
    // An SMB file share and an RDP session inside: ordinary, no rule for them.
    e.observe(&session(
        &id(),
        "smb",
        "10.0.0.41",
        50_500,
        "10.0.0.12",
        445,
        t,
    ));
    e.observe(&session(
        &id(),
        "rdp",
        "10.0.0.41",
        50_501,
        "10.0.0.13",
        3389,
        t,
    ));
    // A current OpenSSH server inside.
    let mut ssh = session(&id(), "ssh", "10.0.0.41", 50_502, "10.0.0.14", 22, t);
    ssh.ssh = Some(kuroko_model::session::Ssh {
        client_version: Some("SSH-2.0-OpenSSH_9.9".into()),
        server_version: Some("SSH-2.0-OpenSSH_9.9p1 Debian-1".into()),
    });
    e.observe(&ssh);
    let above_e: Vec<_> = e
        .findings(Lang::En)
        .into_iter()
        .filter(|f| f.risk < Risk::E)
        .collect();
    assert!(above_e.is_empty(), "{above_e:#?}");
    assert!(e.stats().sessions_observed >= 30);
}

#[test]
fn resolvers_and_proxies_are_not_named_for_their_clients_lookups() {
    let mut e = Engine::new(&Config::default()).unwrap();
    let t = office_hours();
    // The user asks the inside resolver, which asks upstream.
    e.observe(&dns("q1", "10.0.0.41", "10.0.0.2", "www.netflix.com", t));
    e.observe(&dns("q2", "10.0.0.2", "8.8.8.8", "www.netflix.com", t));
    // A user tunnels through the inside proxy, which fetches upstream.
    let mut connect = web(
        "c1",
        "10.0.0.42",
        "10.0.0.3",
        "www.netflix.com:443",
        "www.netflix.com:443",
        t,
    );
    {
        let h = connect.http.as_mut().unwrap();
        h.transactions[0].method = "CONNECT".into();
    }
    e.observe(&connect);
    e.observe(&tls(
        "p1",
        "10.0.0.3",
        "198.38.120.10",
        "www.netflix.com",
        t,
    ));
    let f: Vec<_> = e
        .findings(Lang::En)
        .into_iter()
        .filter(|f| f.rule == "streaming_or_adult_in_business_hours")
        .collect();
    let clients: Vec<_> = f.iter().map(|f| f.client.clone().unwrap()).collect();
    assert_eq!(clients.len(), 2, "{f:#?}");
    assert!(clients.contains(&"10.0.0.41".to_string()));
    assert!(clients.contains(&"10.0.0.42".to_string()));
}

#[test]
fn a_bad_reputation_finding_shows_its_volume() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("drop.txt");
    std::fs::write(&list, "203.0.113.0/24 ; SBL999\n").unwrap();
    let mut c = Config::default();
    c.intel.reputation_lists = vec![list];
    let mut e = Engine::new(&c).unwrap();
    for i in 0..3 {
        e.observe(&session(
            &format!("c2-{i}"),
            "tls",
            "10.0.0.5",
            40_000 + i,
            "203.0.113.200",
            443,
            office_hours(),
        ));
    }
    let f = e.findings(Lang::En);
    let f = f.iter().find(|f| f.rule == "bad_reputation_ip").unwrap();
    assert!(
        f.signals
            .iter()
            .any(|s| s == "volume: 3 sessions, 3,600 bytes sent, 105,000 bytes received"),
        "{:?}",
        f.signals
    );
}

#[test]
fn ftp_data_connections_join_the_evidence_of_their_control_sessions_finding() {
    use kuroko_model::session::{Ftp, FtpFile};
    let control = |id: &str| {
        let mut s = session(
            id,
            "ftp",
            "10.0.0.5",
            45_000,
            "203.0.113.21",
            21,
            office_hours(),
        );
        s.ftp = Some(Ftp {
            user: Some("alice".into()),
            commands: vec!["USER alice".into(), "STOR customers.csv".into()],
            files: vec![FtpFile {
                name: "customers.csv".into(),
                direction: "upload".into(),
                bytes: 48_000,
                sha256: None,
                ..Default::default()
            }],
            control_session: None,
            banner: None,
        });
        s
    };
    let data = |id: &str, control: &str| {
        let mut s = session(
            id,
            "ftp-data",
            "10.0.0.5",
            45_100,
            "203.0.113.21",
            50_000,
            office_hours(),
        );
        s.ftp = Some(Ftp {
            control_session: Some(control.into()),
            ..Default::default()
        });
        s
    };
    let mut e = Engine::new(&Config::default()).unwrap();
    // The data connection's record first (it ends before the control session), ...
    e.observe(&data("d1", "c1"));
    e.observe(&control("c1"));
    // ... or after it.
    e.observe(&control("c2"));
    e.observe(&data("d2", "c2"));
    // A data connection of an unknown control session joins nothing.
    e.observe(&data("d3", "elsewhere"));
    let f = e.findings(Lang::En);
    let f = f
        .iter()
        .find(|f| f.rule == "ftp_default_port_external")
        .unwrap();
    assert_eq!(f.count, 2, "data connections are evidence, not events");
    for id in ["c1", "d1", "c2", "d2"] {
        assert!(f.evidence.iter().any(|x| x == id), "{id}: {:?}", f.evidence);
    }
    assert!(!f.evidence.iter().any(|x| x == "d3"));
    assert!(
        f.signals
            .iter()
            .any(|s| s == "file uploaded: STOR customers.csv (48,000 bytes)"),
        "{:?}",
        f.signals
    );
}

#[test]
fn an_open_session_fires_on_its_provisional_record_and_counts_once() {
    let mut e = Engine::new(&Config::default()).unwrap();
    let t0 = office_hours();
    let mut open = telnet("tn-open", "10.0.0.5", "10.0.3.1", t0);
    open.open = true;
    e.observe(&open);
    let f = e.findings(Lang::En);
    assert_eq!(
        (f.len(), f[0].count),
        (1, 1),
        "fires on the open record: {f:#?}"
    );
    // The consumer restarts (its state is what it committed); then an update of the
    // provisional record and the final record: still one session.
    let mut again = Engine::new(&Config::default()).unwrap();
    again.restore(e.state());
    again.observe(&open);
    let mut done = open.clone();
    done.open = false;
    again.observe(&done);
    let f = again.findings(Lang::En);
    assert_eq!((f.len(), f[0].count), (1, 1), "{f:#?}");
    assert_eq!(f[0].evidence, ["tn-open"]);
    assert!(again.state().open_hits.is_empty(), "forgotten once final");
}

/// Issue 15: a big upload from a VPN client, still going. Its provisional records carry its
/// bytes so far; once they cross `large_upload` the finding is raised on the open record,
/// and neither the later updates nor the final record (nor a replayed provisional record
/// after a consumer restart) count the session again or add its bytes twice.
#[test]
fn a_vpn_upload_is_reported_while_open_once_it_crosses_the_threshold() {
    let mut c = Config::default();
    c.site.vpn_pools = vec!["10.8.0.0/24".into()];
    c.detect.large_upload = "100MB".into();
    let t0 = office_hours();
    let mut e = Engine::new(&c).unwrap();
    let mut up = tls("vpn-up", "10.8.0.23", "198.51.100.20", "files.example", t0);
    up.open = true;
    let vpn = |e: &Engine| {
        e.findings(Lang::En)
            .into_iter()
            .filter(|f| f.rule == "vpn_large_upload")
            .collect::<Vec<_>>()
    };
    for mb in [30u64, 60, 90] {
        up.bytes_up = mb * 1_000_000;
        e.observe(&up);
    }
    assert!(vpn(&e).is_empty(), "90 MB so far is under the threshold");
    up.bytes_up = 120_000_000;
    e.observe(&up);
    let f = vpn(&e);
    assert_eq!(f.len(), 1, "reported while open: {f:#?}");
    assert_eq!(f[0].count, 1);
    assert_eq!(f[0].evidence, ["vpn-up"]);
    // The consumer restarts from its committed state; the analyzer replays a provisional
    // record, then more bytes, then the final record.
    let mut again = Engine::new(&c).unwrap();
    again.restore(e.state());
    again.observe(&up);
    up.bytes_up = 150_000_000;
    again.observe(&up);
    let mut done = up.clone();
    done.open = false;
    done.bytes_up = 160_000_000;
    again.observe(&done);
    let f = vpn(&again);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].count, 1, "the session counts once: {f:#?}");
    // A second, small upload later the same day: the window holds 160 + 1 MB, not the
    // sum of every provisional record.
    let mut small = tls("vpn-small", "10.8.0.23", "198.51.100.21", "x.example", t0);
    small.start = Timestamp(t0.nanos() + 60_000_000_000);
    small.bytes_up = 1_000_000;
    again.observe(&small);
    let f = vpn(&again);
    assert_eq!(f[0].count, 2);
    let agg = again
        .aggregates()
        .find(|a| a.rule == "vpn_large_upload")
        .unwrap();
    assert_eq!(agg.max_metric, 161_000_000, "{agg:#?}");
}
