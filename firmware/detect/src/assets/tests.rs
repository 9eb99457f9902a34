use super::view::view;
use super::*;
use crate::rules::testutil::{ctx, session};
use crate::versions::Verdict;
use crate::versions::advisories::AdvisoryList;
use kuroko_model::session::{
    Dhcp, Dns, Http, Mdns, MdnsHost, MdnsService, Netbios, NetbiosName, Oracle, Smb, Ssh,
};

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
    let v = view(&i, &AdvisoryList::shipped(), &Default::default());
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

fn dhcp(id: &str, client: &str, d: Dhcp) -> SessionRecord {
    let mut s = session("dhcp", client, 68, "255.255.255.255", 67);
    s.transport = "udp".into();
    s.id = id.into();
    s.dhcp = Some(d);
    s
}

/// The REQUEST (from 0.0.0.0) and the server's ACK are two sessions that may arrive in
/// either order: both orders bind the MAC, the host name and the vendor class to the
/// leased address, each with its evidence session.
#[test]
fn dhcp_request_and_ack_join_in_either_order() {
    let c = ctx();
    let request = dhcp(
        "req",
        "0.0.0.0",
        Dhcp {
            messages: vec!["DISCOVER".into(), "REQUEST".into()],
            client_mac: Some("02:00:00:00:00:07".into()),
            hostname: Some("PC-Tanaka".into()),
            vendor_class: Some("MSFT 5.0".into()),
            requested_address: Some("10.1.5.50".parse().unwrap()),
            ..Default::default()
        },
    );
    let mut ack = dhcp(
        "ack",
        "10.1.0.1",
        Dhcp {
            messages: vec!["OFFER".into(), "ACK".into()],
            client_mac: Some("02:00:00:00:00:07".into()),
            assigned_address: Some("10.1.5.50".parse().unwrap()),
            server_id: Some("10.1.0.1".parse().unwrap()),
            ..Default::default()
        },
    );
    ack.server.port = 68;
    for order in [[&request, &ack], [&ack, &request]] {
        let mut i = inv(AssetsConfig::default());
        for s in order {
            i.observe(&c, s);
        }
        let h = &i.hosts[&"10.1.5.50".parse().unwrap()];
        assert_eq!(h.mac.as_deref(), Some("02:00:00:00:00:07"));
        assert_eq!(
            h.names
                .iter()
                .map(|n| (n.name.as_str(), n.source.as_str(), n.session.as_str()))
                .collect::<Vec<_>>(),
            [("pc-tanaka", "dhcp", "req")]
        );
        let v = h.software.iter().find(|f| f.kind == "dhcp-vendor").unwrap();
        assert_eq!(
            (v.role.as_str(), v.text.as_str(), v.session.as_str()),
            ("client", "MSFT 5.0", "req")
        );
        assert!(!i.hosts.contains_key(&"0.0.0.0".parse().unwrap()));
    }
}

/// DHCP state is bounded by `max_hosts` like the hosts: what it forgets is counted.
#[test]
fn dhcp_memory_is_bounded_and_evictions_counted() {
    let c = ctx();
    let mut i = inv(AssetsConfig {
        max_hosts: 2,
        ..AssetsConfig::default()
    });
    for n in 0..5u8 {
        let mut s = dhcp(
            &format!("req{n}"),
            "0.0.0.0",
            Dhcp {
                client_mac: Some(format!("02:00:00:00:00:0{n}")),
                hostname: Some(format!("pc{n}")),
                ..Default::default()
            },
        );
        s.end = Timestamp(s.end.nanos() + i64::from(n));
        i.observe(&c, &s);
    }
    assert_eq!(i.dhcp.clients.len(), 2);
    assert_eq!(i.stats.dhcp_dropped, 3);
    assert!(i.dhcp.clients.contains_key("02:00:00:00:00:04"));
}

/// NetBIOS registrations name the host (suffix removed, once); group names and outside
/// addresses name nothing.
#[test]
fn netbios_names_land_on_their_host() {
    let c = ctx();
    let mut i = inv(AssetsConfig::default());
    let mut s = session("netbios-ns", "10.1.5.9", 137, "10.1.255.255", 137);
    s.transport = "udp".into();
    s.id = "nb1".into();
    let name = |n: &str, a: &str, group| NetbiosName {
        name: n.into(),
        address: a.parse().unwrap(),
        group,
        how: "registration".into(),
    };
    s.netbios = Some(Netbios {
        queries: vec![],
        names: vec![
            name("FILESRV01<00>", "10.1.5.9", false),
            name("FILESRV01<20>", "10.1.5.9", false),
            name("OFFICE<00>", "10.1.5.9", true),
            name("EVIL<00>", "198.51.100.9", false),
        ],
    });
    i.observe(&c, &s);
    let h = &i.hosts[&"10.1.5.9".parse().unwrap()];
    assert_eq!(
        h.names
            .iter()
            .map(|n| (n.name.as_str(), n.source.as_str(), n.session.as_str()))
            .collect::<Vec<_>>(),
        [("filesrv01", "netbios", "nb1")]
    );
    assert!(!i.hosts.contains_key(&"198.51.100.9".parse().unwrap()));
}

/// mDNS: host names land on the address of their A/AAAA record; service instances and the
/// device model on the SRV target's address (else the sender); outside addresses name
/// nothing; a host's mDNS services are capped so that they leave room for its banners.
#[test]
fn mdns_names_services_and_model_land_on_their_host() {
    let c = ctx();
    let mut i = inv(AssetsConfig::default());
    let mut s = session("mdns", "10.1.5.40", 5353, "224.0.0.251", 5353);
    s.transport = "udp".into();
    s.id = "md1".into();
    let from: IpAddr = "10.1.5.40".parse().unwrap();
    let svc = |inst: &str, ty: &str, host: Option<&str>, port, model: Option<&str>| MdnsService {
        instance: inst.into(),
        service: ty.into(),
        domain: "local".into(),
        host: host.map(str::to_string),
        port,
        model: model.map(str::to_string),
        from,
    };
    s.mdns = Some(Mdns {
        queries: vec![],
        hosts: vec![
            MdnsHost {
                name: "Printer.local".into(),
                address: "10.1.5.41".parse().unwrap(),
                from,
            },
            MdnsHost {
                name: "evil.local".into(),
                address: "198.51.100.9".parse().unwrap(),
                from,
            },
        ],
        services: vec![
            svc(
                "Office Printer",
                "_ipp._tcp",
                Some("printer.local"),
                Some(631),
                Some("Brother HL-L2350DW series"),
            ),
            svc("nas", "_smb._tcp", None, None, None),
        ],
    });
    // The flow's first question was a probe for a reverse name; its `dns` answers hold
    // the announced address: that pairing names nothing (it did, before).
    s.dns = Some(Dns {
        query: Some("40.5.1.10.in-addr.arpa".into()),
        answers: vec!["10.1.5.40".into()],
        ..Default::default()
    });
    i.observe(&c, &s);
    assert_eq!(i.hosts[&from].names, [], "the sender is named by nothing");
    let p = &i.hosts[&"10.1.5.41".parse().unwrap()];
    assert_eq!(
        (
            p.names[0].name.as_str(),
            p.names[0].source.as_str(),
            p.names[0].session.as_str()
        ),
        ("printer.local", "mdns", "md1")
    );
    let facts: Vec<(&str, &str, u16, &str, &str)> = p
        .software
        .iter()
        .map(|f| {
            (
                f.role.as_str(),
                f.kind.as_str(),
                f.port,
                f.text.as_str(),
                f.session.as_str(),
            )
        })
        .collect();
    assert_eq!(
        facts,
        [
            (
                "announced",
                "mdns-service",
                631,
                "Office Printer._ipp._tcp.local",
                "md1"
            ),
            (
                "announced",
                "mdns-model",
                5353,
                "Brother HL-L2350DW series",
                "md1"
            )
        ]
    );
    // No SRV in the flow: the instance is the sender's.
    let sender = &i.hosts[&from];
    assert_eq!(sender.software[0].text, "nas._smb._tcp.local");
    assert_eq!(sender.software[0].port, 0);
    assert!(!i.hosts.contains_key(&"198.51.100.9".parse().unwrap()));
    // Twenty services announced: MAX_MDNS_SERVICES kept, the rest counted; a banner still
    // finds room.
    let mut many = s.clone();
    many.mdns.as_mut().unwrap().hosts.clear();
    many.mdns.as_mut().unwrap().services = (0..20)
        .map(|n| svc(&format!("s{n}"), "_http._tcp", None, Some(80), None))
        .collect();
    let before = i.stats.software_dropped;
    i.observe(&c, &many);
    let sender = &i.hosts[&from];
    let kept = sender
        .software
        .iter()
        .filter(|f| f.kind == "mdns-service")
        .count();
    assert_eq!(kept, MAX_MDNS_SERVICES);
    assert_eq!(
        i.stats.software_dropped - before,
        (20 + 1 - MAX_MDNS_SERVICES) as u64
    );
    i.observe(&c, &ssh("10.1.2.3", "10.1.5.40", "SSH-2.0-OpenSSH_9.2p1"));
    assert!(
        i.hosts[&from]
            .software
            .iter()
            .any(|f| f.kind == "ssh-banner")
    );
}

/// X-Powered-By, the listener's version and the SMB dialect are server software facts;
/// the TNS version is judged by the advisory list like a TNSLSNR banner.
#[test]
fn powered_by_tns_version_and_smb_dialect_are_server_software() {
    let c = ctx();
    let mut i = inv(AssetsConfig::default());
    let mut web = session("http", "10.1.2.3", 50_001, "10.1.9.9", 80);
    web.http = Some(Http {
        server: Some("Apache/2.4.41 (Ubuntu)".into()),
        powered_by: Some("PHP/7.4.3".into()),
        ..Default::default()
    });
    i.observe(&c, &web);
    let mut db = session("oracle", "10.1.2.3", 50_002, "10.1.9.9", 1521);
    db.id = "db1".into();
    db.oracle = Some(Oracle {
        version: Some("11.2.0.2.0".into()),
        ..Default::default()
    });
    i.observe(&c, &db);
    let mut smb = session("smb", "10.1.2.3", 50_003, "10.1.9.9", 445);
    smb.smb = Some(Smb {
        client_dialects: vec!["NT LM 0.12".into()],
        dialect: Some("NT LM 0.12".into()),
    });
    i.observe(&c, &smb);
    let h = &i.hosts[&"10.1.9.9".parse().unwrap()];
    let facts: Vec<(&str, &str)> = h
        .software
        .iter()
        .map(|f| (f.kind.as_str(), f.text.as_str()))
        .collect();
    assert!(
        facts.contains(&("http-powered-by", "PHP/7.4.3")),
        "{facts:?}"
    );
    assert!(facts.contains(&("tns-version", "Oracle TNS listener Version 11.2.0.2.0")));
    assert!(facts.contains(&("smb-dialect", "SMB1 NT LM 0.12")));
    let v = view(&i, &AdvisoryList::shipped(), &Default::default());
    let server = v
        .iter()
        .find(|h| h.ip == "10.1.9.9".parse::<IpAddr>().unwrap())
        .unwrap();
    let tns = server
        .software
        .iter()
        .find(|f| f.kind == "tns-version")
        .unwrap();
    assert_eq!(tns.product.as_deref(), Some("oracle_tns"));
    assert_eq!(tns.version.as_deref(), Some("11.2.0.2.0"));
    assert_eq!(tns.session, "db1");
    assert!(tns.worst().is_some(), "{tns:?}");
}

/// An mDNS announcement on an SRV port is a service of the host's list (announced, no
/// sessions or clients); seen answering on the same port and transport, either order, the
/// two are one service that counts its sessions and clients and still says what was
/// announced. No SRV port, no service. Announced-only services are capped and counted,
/// and give way to a service seen answering when the host's list is full.
#[test]
fn mdns_announced_services_join_the_services_list() {
    let c = ctx();
    let mut i = inv(AssetsConfig::default());
    let printer: IpAddr = "10.1.5.41".parse().unwrap();
    let announce = |id: &str, services: Vec<(&str, Option<u16>)>| {
        let mut s = session("mdns", "10.1.5.41", 5353, "224.0.0.251", 5353);
        s.transport = "udp".into();
        s.id = id.into();
        s.mdns = Some(Mdns {
            queries: vec![],
            hosts: vec![],
            services: services
                .into_iter()
                .map(|(ty, port)| MdnsService {
                    instance: "Office Printer".into(),
                    service: ty.into(),
                    domain: "local".into(),
                    host: None,
                    port,
                    model: None,
                    from: "10.1.5.41".parse().unwrap(),
                })
                .collect(),
        });
        s
    };
    // Answered first: SSH on 22.
    i.observe(&c, &ssh("10.1.2.3", "10.1.5.41", "SSH-2.0-OpenSSH_9.2p1"));
    i.observe(
        &c,
        &announce(
            "md1",
            vec![
                ("_ipp._tcp", Some(631)),
                ("_ipps._tcp", Some(631)),
                ("_http._tcp", Some(80)),
                ("_sftp-ssh._tcp", Some(22)),
                ("_smb._tcp", None),
                ("_dns-sd-test._udp", Some(5555)),
            ],
        ),
    );
    // The same announcement again changes nothing but the times.
    i.observe(&c, &announce("md2", vec![("_ipp._tcp", Some(631))]));
    /// Port, transport, protocol, sessions, clients, announced types, evidence.
    type Row = (u16, String, String, u64, u32, Vec<String>, String);
    let svcs = |i: &Inventory| -> Vec<Row> {
        let mut v: Vec<_> = i.hosts[&printer]
            .services
            .iter()
            .map(|s| {
                (
                    s.port,
                    s.transport.clone(),
                    s.protocol.clone(),
                    s.sessions,
                    s.internal_clients + s.external_clients,
                    s.announced.clone(),
                    s.session.clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let ssh_id = "ssh-10.1.2.3-10.1.5.41".to_string();
    let s = |x: &str| x.to_string();
    assert_eq!(
        svcs(&i),
        [
            (
                22,
                s("tcp"),
                s("ssh"),
                1,
                1,
                vec![s("_sftp-ssh._tcp")],
                ssh_id.clone()
            ),
            (
                80,
                s("tcp"),
                s("http"),
                0,
                0,
                vec![s("_http._tcp")],
                s("md1")
            ),
            (
                631,
                s("tcp"),
                s("ipp"),
                0,
                0,
                vec![s("_ipp._tcp"), s("_ipps._tcp")],
                s("md1")
            ),
            (
                5555,
                s("udp"),
                s("dns-sd-test"),
                0,
                0,
                vec![s("_dns-sd-test._udp")],
                s("md1")
            ),
        ]
    );
    let ipp = i.hosts[&printer]
        .services
        .iter()
        .find(|x| x.port == 631)
        .unwrap();
    assert!(!ipp.answered() && ipp.clients.is_empty());
    // Then seen answering on 80: one service, its sessions and clients counted, the
    // protocol and evidence the answering session's, the announcement kept.
    let mut web = session("http", "10.1.2.9", 40_000, "10.1.5.41", 80);
    web.id = "web1".into();
    web.http = Some(Http {
        host: Some("printer.local".into()),
        server: Some("CUPS/2.4 IPP/2.1".into()),
        ..Default::default()
    });
    i.observe(&c, &web);
    let after = svcs(&i);
    assert_eq!(
        after[1],
        (
            80,
            s("tcp"),
            s("http"),
            1,
            1,
            vec![s("_http._tcp")],
            s("web1")
        )
    );
    assert_eq!(after.len(), 4);
    assert_eq!(i.stats.services_dropped, 0);

    // Caps: at most MAX_MDNS_SERVICES announced-only services a host, the rest counted;
    // a full list gives an announced-only place to a service seen answering.
    let mut small = inv(AssetsConfig {
        max_services_per_host: 3,
        ..AssetsConfig::default()
    });
    let many: Vec<(&str, Option<u16>)> = [
        ("_a._tcp", Some(1001)),
        ("_b._tcp", Some(1002)),
        ("_c._tcp", Some(1003)),
        ("_d._tcp", Some(1004)),
    ]
    .to_vec();
    small.observe(&c, &announce("md3", many));
    assert_eq!(small.hosts[&printer].services.len(), 3);
    assert_eq!(small.stats.services_dropped, 1);
    small.observe(&c, &ssh("10.1.2.3", "10.1.5.41", "SSH-2.0-OpenSSH_9.2p1"));
    let h = &small.hosts[&printer];
    assert_eq!(h.services.len(), 3);
    assert!(h.services.iter().any(|x| x.port == 22 && x.answered()));
    assert_eq!(small.stats.services_dropped, 2);
    let mut wide = inv(AssetsConfig::default());
    let types: Vec<String> = (0..20).map(|n| format!("_s{n}._tcp")).collect();
    wide.observe(
        &c,
        &announce(
            "md4",
            types
                .iter()
                .enumerate()
                .map(|(n, t)| (t.as_str(), Some(2000 + n as u16)))
                .collect(),
        ),
    );
    assert_eq!(wide.hosts[&printer].services.len(), MAX_MDNS_SERVICES);
    assert_eq!(wide.stats.services_dropped, (20 - MAX_MDNS_SERVICES) as u64);
    // The view keeps the announcement.
    let v = view(&i, &AdvisoryList::shipped(), &Default::default());
    let json = serde_json::to_value(v.iter().find(|h| h.ip == printer).unwrap()).unwrap();
    let ipp = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["port"] == 631)
        .unwrap();
    assert_eq!(
        ipp["announced"],
        serde_json::json!(["_ipp._tcp", "_ipps._tcp"])
    );
    assert_eq!(ipp["sessions"], 0);
}

/// The eviction index: over a long run of hosts seen out of order, with ties, and across a
/// restore (the index is not stored), every eviction takes the host a full scan would
/// (least recently seen, then the lowest address), and the table stays at its cap.
#[test]
fn eviction_order_matches_a_full_scan_across_a_restore() {
    let c = ctx();
    let limits = AssetsConfig {
        max_hosts: 5,
        ..AssetsConfig::default()
    };
    let mut i = inv(limits.clone());
    for n in 0..300u32 {
        let k = (n * 7919) % 23;
        let ip: IpAddr = format!("10.1.0.{k}").parse().unwrap();
        let mut s = session("http", "198.51.100.1", 50_000, &ip.to_string(), 80);
        // Times go back and forth and repeat (ties).
        s.start = Timestamp(s.start.nanos() + i64::from((n * 31) % 17) * 1_000_000_000);
        s.end = s.start;
        let expected = (!i.hosts.contains_key(&ip) && i.hosts.len() >= 5).then(|| {
            i.hosts
                .values()
                .min_by_key(|h| (h.last_seen, h.ip))
                .map(|h| h.ip)
                .unwrap()
        });
        if n == 150 {
            let mut restored: Inventory =
                serde_json::from_value(serde_json::to_value(&i).unwrap()).unwrap();
            restored.set_limits(&limits);
            assert_eq!(restored, i);
            i = restored;
        }
        i.observe(&c, &s);
        if let Some(v) = expected {
            assert!(!i.hosts.contains_key(&v), "step {n}: {v} should have gone");
        }
        assert!(i.hosts.contains_key(&ip));
        assert!(i.hosts.len() <= 5);
    }
    assert!(i.stats.hosts_evicted > 100);
}
