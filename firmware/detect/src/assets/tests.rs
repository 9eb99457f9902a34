use super::view::view;
use super::*;
use crate::rules::testutil::{ctx, session};
use crate::versions::Verdict;
use crate::versions::advisories::AdvisoryList;
use kuroko_model::session::{Dns, Http, Ssh};

fn ssh(client: &str, server: &str, banner: &str) -> SessionRecord {
    let mut s = session("ssh", client, 50_000, server, 22);
    s.id = format!("ssh-{client}-{server}");
    s.server.mac = Some("52:54:00:12:34:56".into());
    s.ssh = Some(Ssh {
        client_version: Some("SSH-2.0-OpenSSH_9.6".into()),
        server_version: Some(banner.into()),
    });
    s
}

fn inv(limits: AssetsConfig) -> Inventory {
    Inventory::new(&limits)
}

#[test]
fn hosts_services_software_and_names_with_their_evidence() {
    let c = ctx();
    let mut i = inv(AssetsConfig::default());
    i.observe(
        &c,
        &ssh(
            "10.1.2.3",
            "10.1.9.9",
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
        ),
    );
    i.observe(
        &c,
        &ssh(
            "10.1.2.4",
            "10.1.9.9",
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
        ),
    );
    i.observe(
        &c,
        &ssh(
            "203.0.113.7",
            "10.1.9.9",
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
        ),
    );
    i.observe(
        &c,
        &ssh(
            "10.1.2.3",
            "10.1.9.9",
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
        ),
    );
    let mut web = session("http", "10.1.2.3", 50_001, "10.1.9.9", 80);
    web.id = "web1".into();
    web.http = Some(Http {
        host: Some("Intra.Example.JP".into()),
        server: Some("Apache/2.4.49 (Unix)".into()),
        user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64)".into()),
        ..Default::default()
    });
    i.observe(&c, &web);
    let mut d = session("dns", "10.1.2.3", 53_000, "10.1.0.53", 53);
    d.id = "dns1".into();
    d.dns = Some(Dns {
        query: Some("files.example.jp".into()),
        answers: vec!["10.1.9.9".into()],
        ..Default::default()
    });
    i.observe(&c, &d);
    // A server outside the site is not inventoried; its internal client is.
    let mut out = session("http", "10.1.2.3", 50_002, "198.51.100.1", 80);
    out.http = Some(Http {
        server: Some("nginx/1.25.0".into()),
        ..Default::default()
    });
    i.observe(&c, &out);
    assert!(!i.hosts.contains_key(&"198.51.100.1".parse().unwrap()));

    let h = &i.hosts[&"10.1.9.9".parse().unwrap()];
    assert_eq!(h.mac.as_deref(), Some("52:54:00:12:34:56"));
    let sshd = h.services.iter().find(|s| s.port == 22).unwrap();
    assert_eq!(
        (sshd.sessions, sshd.internal_clients, sshd.external_clients),
        (4, 2, 1)
    );
    assert_eq!(sshd.protocol, "ssh");
    assert_eq!(sshd.session, "ssh-10.1.2.3-10.1.9.9");
    let names: Vec<(&str, &str)> = h
        .names
        .iter()
        .map(|n| (n.name.as_str(), n.source.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("intra.example.jp", "http-host"),
            ("files.example.jp", "dns")
        ]
    );
    // The client's software is the client's.
    let client = &i.hosts[&"10.1.2.3".parse().unwrap()];
    assert!(client.services.is_empty());
    let kinds: Vec<&str> = client.software.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["ssh-client", "user-agent"]);

    // The view judges the server software against the advisory list.
    let v = view(&i, &AdvisoryList::shipped());
    let hv = v
        .iter()
        .find(|h| h.ip == "10.1.9.9".parse::<IpAddr>().unwrap())
        .unwrap();
    let sshv = hv.software.iter().find(|f| f.kind == "ssh-banner").unwrap();
    assert_eq!(sshv.product.as_deref(), Some("openssh"));
    assert_eq!(sshv.worst(), Some(Verdict::Vulnerable));
    assert!(
        sshv.advisories
            .iter()
            .any(|a| a.cves == ["CVE-2024-6387"] && a.verdict == Verdict::Vulnerable)
    );
    let httpv = hv
        .software
        .iter()
        .find(|f| f.kind == "http-server")
        .unwrap();
    assert_eq!(httpv.session, "web1");
    assert!(
        httpv
            .advisories
            .iter()
            .any(|a| a.cves.contains(&"CVE-2021-41773".to_string()))
    );
    let json = serde_json::to_string(hv).unwrap();
    assert!(json.contains("\"verdict\":\"vulnerable\""), "{json}");
}

#[test]
fn caps_evict_the_least_recently_seen_host_and_count_what_they_refuse() {
    let c = ctx();
    let mut i = inv(AssetsConfig {
        enabled: true,
        max_hosts: 2,
        max_services_per_host: 1,
        max_software_per_host: 1,
    });
    for (n, server) in ["10.1.9.1", "10.1.9.2", "10.1.9.3"].iter().enumerate() {
        let mut s = session("http", "198.51.100.1", 50_000, server, 80);
        s.start = Timestamp(s.start.nanos() + n as i64 * 1_000_000_000_000);
        s.end = s.start;
        i.observe(&c, &s);
    }
    assert_eq!(i.hosts.len(), 2);
    assert_eq!(i.stats.hosts_evicted, 1);
    assert!(
        !i.hosts.contains_key(&"10.1.9.1".parse().unwrap()),
        "oldest evicted"
    );
    // A second port and a second banner on a host at its caps: counted, not kept.
    let mut s = ssh("198.51.100.1", "10.1.9.3", "SSH-2.0-OpenSSH_9.9");
    s.start = Timestamp(s.start.nanos() + 5_000_000_000_000);
    s.end = s.start;
    i.observe(&c, &s);
    let mut s2 = session("http", "198.51.100.1", 50_000, "10.1.9.3", 80);
    s2.http = Some(Http {
        server: Some("nginx/1.25.0".into()),
        user_agent: None,
        ..Default::default()
    });
    i.observe(&c, &s2);
    let mut s3 = s2.clone();
    s3.http.as_mut().unwrap().server = Some("nginx/1.27.0".into());
    i.observe(&c, &s3);
    let h = &i.hosts[&"10.1.9.3".parse().unwrap()];
    assert_eq!(h.services.len(), 1);
    assert_eq!(h.software.len(), 1);
    assert_eq!(i.stats.services_dropped, 1);
    assert!(i.stats.software_dropped >= 1, "{:?}", i.stats);
    // Probes that got no answer make no service.
    let mut probe = session("tcp", "198.51.100.1", 50_000, "10.1.9.2", 3389);
    probe.bytes_down = 0;
    probe.bytes_up = 0;
    i.observe(&c, &probe);
    assert!(
        i.hosts[&"10.1.9.2".parse().unwrap()]
            .services
            .iter()
            .all(|s| s.port != 3389)
    );
}

#[test]
fn hostile_text_is_capped_and_cleaned() {
    let c = ctx();
    let mut i = inv(AssetsConfig::default());
    let banner = format!("SSH-2.0-OpenSSH_9.9\u{0}\u{1b}[31m{}", "x".repeat(10_000));
    i.observe(&c, &ssh("10.1.2.3", "10.1.9.9", &banner));
    let f = &i.hosts[&"10.1.9.9".parse().unwrap()].software[0];
    assert!(f.text.chars().count() <= MAX_FACT_LEN);
    assert!(!f.text.chars().any(|c| c.is_control()), "{:?}", f.text);
}
