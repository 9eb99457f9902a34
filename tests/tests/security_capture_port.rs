//! The capture port is invisible on the wire (issue 21): with `kuroko capture` running on
//! it, a Router Advertisement, ARP requests (for the port's stale address and for another
//! local "management" address), pings (IPv4 unicast, IPv6 all-nodes), a TCP SYN and a DHCP
//! offer sent to the port get no frame back on the wire, and no address or route appears
//! on the port; capture still stores every one of them.
//!
//! Layout: namespace `peer` (vpeer, 10.77.0.1/24, IPv6 on) <-> namespace `box` (vcap, the
//! capture port, with a stale 10.77.0.9/24 and IPv6 on as a fresh Linux leaves it; a dummy
//! `mgmt0` holds 10.77.0.5/24, standing for the management address). The peer listens on
//! vpeer with an AF_PACKET socket (what tcpdump would do) for everything that arrives.

use kuroko_capture::{CaptureState, StatsReader};
use kuroko_tests::netns::{Netns, veth};
use kuroko_tests::proc::{Server, wait_until};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const PEER_MAC: [u8; 6] = [0x02, 0x6b, 0x00, 0x00, 0x00, 0x01];
const CAP_MAC: [u8; 6] = [0x02, 0x6b, 0x00, 0x00, 0x00, 0x02];
const PEER_IP: [u8; 4] = [10, 77, 0, 1];
const STALE_IP: [u8; 4] = [10, 77, 0, 9];
const MGMT_IP: [u8; 4] = [10, 77, 0, 5];
/// fe80::6b:ff:fe00:1, the peer's link-local (the RA's source must be link-local).
const PEER_LL: [u8; 16] = [
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x6b, 0, 0xff, 0xfe, 0, 0, 1,
];
const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const BROADCAST: [u8; 6] = [0xff; 6];

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    acc
}

fn fold(mut acc: u32) -> [u8; 2] {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    (!(acc as u16)).to_be_bytes()
}

fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(dst);
    f.extend(PEER_MAC);
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend(PEER_MAC);
    a.extend(PEER_IP);
    a.extend([0; 6]);
    a.extend(target);
    eth(BROADCAST, 0x0806, &a)
}

fn ipv4(dst_mac: [u8; 6], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let len = (20 + l4.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend(len.to_be_bytes());
    h.extend([0, 1, 0x40, 0, 64, proto, 0, 0]);
    h.extend(PEER_IP);
    h.extend(dst);
    let c = fold(sum16(&h, 0));
    h[10..12].copy_from_slice(&c);
    h.extend(l4);
    eth(dst_mac, 0x0800, &h)
}

fn icmp_echo(dst: [u8; 4]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend(b"kuroko-silence");
    let c = fold(sum16(&m, 0));
    m[2..4].copy_from_slice(&c);
    ipv4(CAP_MAC, dst, 1, &m)
}

fn tcp_syn(dst: [u8; 4]) -> Vec<u8> {
    let mut t = vec![
        0xc3, 0x50, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
    ];
    t.extend([0, 0, 0, 0]);
    let mut pseudo = PEER_IP.to_vec();
    pseudo.extend(dst);
    pseudo.extend([0, 6, 0, t.len() as u8]);
    let c = fold(sum16(&t, sum16(&pseudo, 0)));
    t[16..18].copy_from_slice(&c);
    ipv4(CAP_MAC, dst, 6, &t)
}

fn dhcp_offer() -> Vec<u8> {
    let mut b = vec![2, 1, 6, 0, 0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0];
    b.extend([0; 4]); // ciaddr
    b.extend([10, 77, 0, 50]); // yiaddr
    b.extend(PEER_IP); // siaddr
    b.extend([0; 4]); // giaddr
    b.extend(CAP_MAC);
    b.extend([0; 10 + 64 + 128]);
    b.extend([99, 130, 83, 99]);
    b.extend([53, 1, 2, 54, 4]);
    b.extend(PEER_IP);
    b.extend([1, 4, 255, 255, 255, 0, 3, 4]);
    b.extend(PEER_IP);
    b.extend([6, 4]);
    b.extend(PEER_IP);
    b.extend([51, 4, 0, 0, 0x0e, 0x10, 255]);
    let mut u = vec![0, 67, 0, 68];
    u.extend(((8 + b.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(b);
    ipv4(BROADCAST, [255; 4], 17, &u)
}

fn ipv6(dst_mac: [u8; 6], dst: [u8; 16], icmp6: &mut [u8]) -> Vec<u8> {
    let mut pseudo = PEER_LL.to_vec();
    pseudo.extend(dst);
    pseudo.extend((icmp6.len() as u32).to_be_bytes());
    pseudo.extend([0, 0, 0, 58]);
    let c = fold(sum16(icmp6, sum16(&pseudo, 0)));
    icmp6[2..4].copy_from_slice(&c);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((icmp6.len() as u16).to_be_bytes());
    p.extend([58, 255]);
    p.extend(PEER_LL);
    p.extend(dst);
    p.extend(&*icmp6);
    eth(dst_mac, 0x86dd, &p)
}

/// A Router Advertisement for 2001:db8:77::/64 (on-link, autonomous), default router for
/// 1800 s.
fn router_advertisement() -> Vec<u8> {
    let mut m = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    m.extend([3, 4, 64, 0xc0]);
    m.extend(86_400u32.to_be_bytes());
    m.extend(14_400u32.to_be_bytes());
    m.extend([0; 4]);
    m.extend([
        0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    m.extend([1, 1]);
    m.extend(PEER_MAC);
    ipv6(ALL_NODES_MAC, ALL_NODES, &mut m)
}

fn ping6_all_nodes() -> Vec<u8> {
    let mut m = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1];
    m.extend(b"kuroko-silence");
    ipv6(ALL_NODES_MAC, ALL_NODES, &mut m)
}

/// Every frame that arrives on `ifname` in `ns` for `dur` (frames the peer itself sends
/// are left out), as seen by an AF_PACKET socket: what tcpdump on the peer would print.
fn listen(ns: &Netns, ifname: &str, dur: Duration) -> anyhow::Result<Vec<Vec<u8>>> {
    ns.enter_current_thread()?;
    let c = std::ffi::CString::new(ifname)?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    anyhow::ensure!(idx != 0, "no interface {ifname}");
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the result is checked.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    anyhow::ensure!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = idx as i32;
    // SAFETY: `sll` is a valid sockaddr_ll for the duration of the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    anyhow::ensure!(rc == 0, "bind: {}", std::io::Error::last_os_error());
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: `tv` is a valid timeval for the duration of the call.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let end = Instant::now() + dur;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        // SAFETY: an all-zero sockaddr_ll is valid as an out parameter.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf`, `from` and `len` are valid for writes of the sizes given.
        let n = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n > 0 && from.sll_pkttype != libc::PACKET_OUTGOING {
            got.push(buf[..n as usize].to_vec());
        }
    }
    Ok(got)
}

fn describe(f: &[u8]) -> String {
    let src: Vec<String> = f[6..12].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{} bytes from {} ethertype {:02x}{:02x}",
        f.len(),
        src.join(":"),
        f[12],
        f[13]
    )
}

#[test]
fn the_capture_port_answers_nothing_and_takes_no_address() -> anyhow::Result<()> {
    let peer = Netns::create("sp")?;
    let boxns = Netns::create("sb")?;
    let _v = veth(Some(&peer), "vpeer", Some(&boxns), "vcap", 1500)?;
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    peer.run(&["ip", "link", "set", "vpeer", "address", &mac(PEER_MAC)])?;
    peer.run(&["ip", "addr", "add", "10.77.0.1/24", "dev", "vpeer"])?;
    // The box as a fresh Linux leaves it: IPv6 on, the port carrying a stale address, the
    // management address on another interface of the same box.
    for k in ["all", "default", "vcap"] {
        boxns.run(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{k}.disable_ipv6=0"),
        ])?;
    }
    boxns.run(&["ip", "link", "set", "vcap", "address", &mac(CAP_MAC)])?;
    boxns.run(&["ip", "addr", "add", "10.77.0.9/24", "dev", "vcap"])?;
    boxns.run(&[
        "ip", "link", "add", "mgmt0", "type", "veth", "peer", "name", "mgmt0p",
    ])?;
    boxns.run(&["ip", "addr", "add", "10.77.0.5/24", "dev", "mgmt0"])?;
    boxns.run(&["ip", "link", "set", "mgmt0", "up"])?;

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let bin = kuroko_tests::kuroko::binary()?;
    let log = dir.path().join("capture.log");
    let mut capture = Server::spawn(
        "kuroko capture",
        boxns.name(),
        &[
            bin.to_str().unwrap(),
            "capture",
            "--iface",
            "vcap",
            "--data",
            data.to_str().unwrap(),
        ],
        &log,
    )?;
    wait_until("kuroko capture to start", Duration::from_secs(60), || {
        StatsReader::open(&data).is_ok_and(|r| r.snapshot().state == CaptureState::Running)
    })
    .map_err(|e| e.context(capture.log_text()))?;
    let before = StatsReader::open(&data)?.snapshot().total_packets();

    let frames = vec![
        router_advertisement(),
        arp_request(MGMT_IP),
        arp_request(STALE_IP),
        icmp_echo(STALE_IP),
        tcp_syn(STALE_IP),
        ping6_all_nodes(),
        dhcp_offer(),
    ];
    const ROUNDS: usize = 3;
    let heard = std::thread::scope(|s| -> anyhow::Result<Vec<Vec<u8>>> {
        let l = s.spawn(|| listen(&peer, "vpeer", Duration::from_millis(3000)));
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..ROUNDS {
            peer.send_frames("vpeer", &frames, Duration::from_millis(50))?;
            std::thread::sleep(Duration::from_millis(300));
        }
        l.join()
            .map_err(|_| anyhow::anyhow!("the listener panicked"))?
    })?;
    let sent = (frames.len() * ROUNDS) as u64;
    wait_until(
        "capture to store what was sent",
        Duration::from_secs(20),
        || StatsReader::open(&data).is_ok_and(|r| r.snapshot().total_packets() >= before + sent),
    )
    .map_err(|e| e.context(capture.log_text()))?;

    let addrs = String::from_utf8(
        boxns
            .run(&["ip", "-o", "addr", "show", "dev", "vcap"])?
            .stdout,
    )?;
    let routes4 = String::from_utf8(boxns.run(&["ip", "route", "show", "dev", "vcap"])?.stdout)?;
    let routes6 = String::from_utf8(
        boxns
            .run(&["ip", "-6", "route", "show", "dev", "vcap"])?
            .stdout,
    )?;
    let link = String::from_utf8(
        boxns
            .run(&["ip", "-o", "link", "show", "dev", "vcap"])?
            .stdout,
    )?;
    let status = capture.stop_with(libc::SIGINT);
    assert!(
        status.is_some_and(|s| s.success()),
        "capture did not stop cleanly: {}",
        capture.log_text()
    );
    let shown: Vec<String> = heard.iter().take(10).map(|f| describe(f)).collect();
    assert!(
        heard.is_empty(),
        "{} frames came back from the capture port: {shown:#?}",
        heard.len()
    );
    assert!(
        addrs.trim().is_empty(),
        "addresses on the capture port: {addrs}"
    );
    assert!(
        routes4.trim().is_empty(),
        "IPv4 routes via the capture port: {routes4}"
    );
    assert!(
        routes6.trim().is_empty(),
        "IPv6 routes via the capture port: {routes6}"
    );
    assert!(link.contains("NOARP"), "arp is on: {link}");
    assert!(!link.contains("MULTICAST"), "multicast is on: {link}");
    Ok(())
}
