//! End-to-end engine behaviour on frames built with etherparse's packet builder: the
//! expected values come from how the frames were built, not from the analyzer.

use etherparse::PacketBuilder;
use kuroko_analyzer::{Emitted, Engine, PacketIn, PacketPos, Settings};

const C: [u8; 4] = [192, 168, 1, 10];
const S: [u8; 4] = [93, 184, 216, 34];
const CMAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const SMAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

struct Tcp {
    frames: Vec<(i64, Vec<u8>)>,
}

impl Tcp {
    fn seg(&mut self, ts: i64, from_client: bool, seq: u32, ack: u32, flags: &str, payload: &[u8]) {
        let (sm, dm, sip, dip, sp, dp) = if from_client {
            (CMAC, SMAC, C, S, 40000, 80)
        } else {
            (SMAC, CMAC, S, C, 80, 40000)
        };
        let mut b = PacketBuilder::ethernet2(sm, dm)
            .ipv4(sip, dip, 64)
            .tcp(sp, dp, seq, 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(ack);
        }
        if flags.contains('F') {
            b = b.fin();
        }
        if flags.contains('R') {
            b = b.rst();
        }
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        self.frames.push((ts, v));
    }
}

fn run(frames: &[(i64, Vec<u8>)], settings: Settings) -> (Vec<Emitted>, Engine) {
    let mut e = Engine::new(settings, None);
    let mut out = Vec::new();
    for (i, (ts, f)) in frames.iter().enumerate() {
        let p = PacketIn {
            pos: PacketPos::new(0, 0, i as u64),
            ts_ns: *ts,
            iface: 3,
            linktype: 1,
            data: f,
        };
        e.packet(p, &mut |s| out.push(s));
    }
    e.close_all("end_of_input", &mut |s| out.push(s));
    (out, e)
}

#[test]
fn handshake_data_and_fin_make_one_oriented_session() {
    let mut t = Tcp { frames: Vec::new() };
    let s = 1_700_000_000_000_000_000i64;
    t.seg(s, true, 100, 0, "S", b"");
    t.seg(s + 1, false, 5000, 101, "SA", b"");
    t.seg(s + 2, true, 101, 5001, "A", b"GET / HTTP/1.1\r\n\r\n");
    t.seg(
        s + 3,
        false,
        5001,
        119,
        "A",
        b"HTTP/1.1 200 OK\r\n\r\nhello",
    );
    t.seg(s + 4, true, 119, 5025, "FA", b"");
    t.seg(s + 5, false, 5025, 120, "FA", b"");
    t.seg(s + 6, true, 120, 5026, "A", b"");
    let (out, e) = run(&t.frames, Settings::default());
    assert_eq!(out.len(), 1, "{out:?}");
    let r = &out[0].record;
    assert_eq!(r.id, "0-0-0");
    assert_eq!(r.client.ip.to_string(), "192.168.1.10");
    assert_eq!(r.server.port, 80);
    assert_eq!(r.client.mac.as_deref(), Some("02:00:00:00:00:01"));
    assert_eq!(r.server.mac.as_deref(), Some("02:00:00:00:00:02"));
    assert_eq!((r.bytes_up, r.bytes_down), (18, 24));
    assert_eq!((r.packets, r.packets_up, r.packets_down), (7, 4, 3));
    assert_eq!(r.iface, 3);
    assert!(
        !r.has_flag("midstream") && !r.has_flag("gap"),
        "{:?}",
        r.flags
    );
    assert_eq!(e.counters.sessions_emitted, 1);
}

#[test]
fn lost_segment_is_a_counted_gap_and_midstream_is_flagged() {
    let mut t = Tcp { frames: Vec::new() };
    let s = 1_700_000_000_000_000_000i64;
    // No SYN: picked up mid-stream, server answers first from port 80.
    t.seg(s, false, 9000, 1, "A", b"0123456789");
    t.seg(s + 1, false, 9020, 1, "A", b"abcdefghij"); // 10 bytes (9010..9020) never seen
    let (out, e) = run(&t.frames, Settings::default());
    let r = &out[0].record;
    assert_eq!(r.server.port, 80, "port heuristic orients the flow");
    assert!(
        r.has_flag("midstream") && r.has_flag("gap"),
        "{:?}",
        r.flags
    );
    assert_eq!(r.missing_bytes, 10);
    assert_eq!(e.counters.tcp_gaps, 1);
}

#[test]
fn idle_timeout_active_timeout_and_eviction() {
    let s = 1_700_000_000_000_000_000i64;
    let sec = 1_000_000_000i64;
    let settings = Settings {
        max_flows: 2,
        tcp_idle_ns: 10 * sec,
        udp_idle_ns: 10 * sec,
        active_ns: 100 * sec,
        ..Settings::default()
    };
    let udp = |ts: i64, sport: u16| {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(CMAC, SMAC)
            .ipv4(C, S, 64)
            .udp(sport, 9999)
            .write(&mut v, b"x")
            .unwrap();
        (ts, v)
    };
    // Three flows at once in a table of two: the oldest is evicted.
    let frames = vec![udp(s, 40001), udp(s + 1, 40002), udp(s + 2, 40003)];
    let (out, e) = run(&frames, settings.clone());
    assert_eq!(e.counters.evicted_flows, 1);
    assert!(out[0].record.has_flag("evicted") && out[0].record.client.port == 40001);
    // Idle: a packet 11 s later closes the first flow by timeout.
    let frames = vec![udp(s, 40001), udp(s + 11 * sec, 40002)];
    let (out, e) = run(&frames, settings.clone());
    assert!(out[0].record.has_flag("timeout"));
    assert_eq!(e.counters.idle_timeouts, 1);
    // Active: one packet every 5 s for 250 s gives three records with distinct, stable ids.
    let frames: Vec<_> = (0..50).map(|i| udp(s + i * 5 * sec, 40007)).collect();
    let (out, _) = run(&frames, settings);
    assert_eq!(
        out.len(),
        3,
        "{:?}",
        out.iter()
            .map(|o| (&o.record.id, o.record.packets, &o.record.flags))
            .collect::<Vec<_>>()
    );
    assert_eq!(out.iter().map(|o| o.record.packets).sum::<u64>(), 50);
    assert_eq!(out[1].record.id, PacketPos::new(0, 0, 21).session_id());
    assert!(out[0].record.has_flag("active_timeout") && out[1].record.has_flag("continued"));
}

/// An IPv4 fragment by hand: Ethernet + 20-byte IPv4 header + a piece of the UDP datagram.
fn ipv4_fragment(id: u16, offset: usize, more: bool, piece: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&SMAC);
    f.extend_from_slice(&CMAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + piece.len()) as u16;
    let frag = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&frag.to_be_bytes());
    f.extend_from_slice(&[64, 17, 0, 0]);
    f.extend_from_slice(&C);
    f.extend_from_slice(&S);
    f.extend_from_slice(piece);
    f
}

#[test]
fn fragmented_dns_query_vxlan_and_ipv6_sessions() {
    let s = 1_700_000_000_000_000_000i64;
    // A DNS query for a long name in a UDP datagram cut into two IPv4 fragments, second first.
    let name = format!("{}.example.com", "a".repeat(60));
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut udp = Vec::new();
    udp.extend_from_slice(&40000u16.to_be_bytes());
    udp.extend_from_slice(&53u16.to_be_bytes());
    udp.extend_from_slice(&((8 + q.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&q);
    let frames = vec![
        (s, ipv4_fragment(77, 48, false, &udp[48..])),
        (s + 1, ipv4_fragment(77, 0, true, &udp[..48])),
    ];
    let (out, e) = run(&frames, Settings::default());
    assert_eq!(e.counters.ip_datagrams_reassembled, 1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].record.protocol, "dns");
    assert_eq!(
        out[0].record.dns.as_ref().and_then(|d| d.query.clone()),
        Some(name)
    );

    // A TCP SYN inside VXLAN: the inner session, flagged with the tunnel.
    let mut inner = Vec::new();
    PacketBuilder::ethernet2(CMAC, SMAC)
        .ipv4(C, S, 64)
        .tcp(40001, 443, 1, 1000)
        .syn()
        .write(&mut inner, &[])
        .unwrap();
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vx.extend_from_slice(&inner);
    let mut outer = Vec::new();
    PacketBuilder::ethernet2([9; 6], [8; 6])
        .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
        .udp(5555, 4789)
        .write(&mut outer, &vx)
        .unwrap();
    // IPv6, UDP.
    let mut v6 = Vec::new();
    PacketBuilder::ethernet2(CMAC, SMAC)
        .ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(50000, 9999)
        .write(&mut v6, b"hello")
        .unwrap();
    let (out, _) = run(&[(s, outer), (s + 1, v6)], Settings::default());
    let tunneled = out
        .iter()
        .find(|o| o.record.transport == "tcp")
        .expect("inner TCP session");
    assert!(
        tunneled.record.has_flag("tunnel:vxlan"),
        "{:?}",
        tunneled.record.flags
    );
    assert_eq!(tunneled.record.server.port, 443);
    let six = out
        .iter()
        .find(|o| o.record.client.ip.is_ipv6())
        .expect("IPv6 session");
    assert_eq!(six.record.bytes_up, 5);
}

#[test]
fn completed_close_is_emitted_at_once_and_late_packets_are_counted() {
    let mut t = Tcp { frames: Vec::new() };
    let s = 1_700_000_000_000_000_000i64;
    t.seg(s, true, 100, 0, "S", b"");
    t.seg(s + 1, false, 5000, 101, "SA", b"");
    t.seg(s + 2, true, 101, 5001, "A", b"GET / HTTP/1.1\r\n\r\n");
    t.seg(s + 3, false, 5001, 119, "A", b"HTTP/1.1 200 OK\r\n\r\nhi");
    t.seg(s + 4, true, 119, 5022, "FA", b"");
    t.seg(s + 5, false, 5022, 120, "FA", b"");
    t.seg(s + 6, true, 120, 5023, "A", b""); // the close is complete here
    // Stragglers: a retransmitted FIN and a duplicate ACK, 1 ms and 2 s later.
    t.seg(s + 1_000_000, false, 5022, 120, "FA", b"");
    t.seg(s + 2_000_000_000, true, 120, 5023, "A", b"");
    // The port is reused afterwards: a new session.
    t.seg(s + 3_000_000_000, true, 900, 0, "S", b"");
    let mut e = Engine::new(Settings::default(), None);
    let mut out: Vec<Emitted> = Vec::new();
    let mut emitted_at = Vec::new();
    for (i, (ts, f)) in t.frames.iter().enumerate() {
        let p = PacketIn {
            pos: PacketPos::new(0, 0, i as u64),
            ts_ns: *ts,
            iface: 3,
            linktype: 1,
            data: f,
        };
        e.packet(p, &mut |x| out.push(x));
        emitted_at.push(out.len());
    }
    // Emitted on the packet that completed the close, not after a linger.
    assert_eq!(emitted_at[6], 1, "{emitted_at:?}");
    assert_eq!(
        (out[0].record.packets, out[0].record.id.as_str()),
        (7, "0-0-0")
    );
    assert_eq!(out[0].closed_ts, Some(s + 6));
    assert_eq!(e.counters.late_packets_after_close, 2);
    e.close_all("end_of_input", &mut |x| out.push(x));
    let ids: Vec<&str> = out.iter().map(|x| x.record.id.as_str()).collect();
    assert_eq!(
        ids,
        ["0-0-0", "0-0-9"],
        "late packets made no session of their own"
    );

    // With `close_linger` set, the close waits as before.
    let lingering = Settings {
        close_linger_ns: 5_000_000_000,
        ..Settings::default()
    };
    let (out, e) = run(&t.frames[..7], lingering);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0]
            .record
            .flags
            .iter()
            .filter(|f| *f == "end_of_input")
            .count(),
        1
    );
    assert_eq!(e.counters.late_packets_after_close, 0);
}

/// TCP Fast Open (RFC 7413): the request rides in the SYN (the SYN takes sequence number
/// `isn`, the data starts at `isn + 1`), the answer may ride in the SYN-ACK. Both reach the
/// parser whole: before, the SYN's first byte was taken for the SYN's own and cut off.
#[test]
fn tcp_fast_open_data_in_syn_and_syn_ack_is_parsed() {
    let mut t = Tcp { frames: Vec::new() };
    let s = 1_700_000_000_000_000_000i64;
    let req = b"GET /tfo.txt HTTP/1.1\r\nHost: tfo.example\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfast!";
    t.seg(s, true, 100, 0, "S", req);
    let after_req = 101 + req.len() as u32;
    t.seg(s + 1, false, 5000, after_req, "SA", resp);
    let after_resp = 5001 + resp.len() as u32;
    t.seg(s + 2, true, after_req, after_resp, "A", b"");
    t.seg(s + 3, true, after_req, after_resp, "FA", b"");
    t.seg(s + 4, false, after_resp, after_req + 1, "FA", b"");
    t.seg(s + 5, true, after_req + 1, after_resp + 1, "A", b"");
    let (out, _) = run(&t.frames, Settings::default());
    assert_eq!(out.len(), 1, "{out:?}");
    let r = &out[0].record;
    assert_eq!(r.protocol, "http", "{r:?}");
    let h = r.http.as_ref().expect("http parsed from the SYN's data");
    assert_eq!(h.method.as_deref(), Some("GET"));
    assert_eq!(h.url.as_deref(), Some("tfo.example/tfo.txt"));
    assert_eq!(h.status, Some(200));
    assert_eq!(h.transactions[0].response_body_bytes, 5);
    assert!(
        !r.has_flag("gap") && !r.has_flag("malformed:http"),
        "{:?}",
        r.flags
    );
    assert_eq!(r.missing_bytes, 0);
    assert!(r.has_flag("tcp_fast_open"), "{:?}", r.flags);
}

#[test]
fn a_syn_inside_a_connection_is_ignored_unless_the_server_answers_it() {
    let s = 1_700_000_000_000_000_000i64;
    // A SYN with a far-away ISN inside the connection: ignored (Linux answers it with a
    // challenge ACK), the data after it stays in the session.
    let mut t = Tcp { frames: Vec::new() };
    t.seg(s, true, 100, 0, "S", b"");
    t.seg(s + 1, false, 5000, 101, "SA", b"");
    t.seg(s + 2, true, 101, 5001, "A", b"GET /one");
    t.seg(s + 3, true, 100 + (1 << 31), 0, "S", b"");
    t.seg(s + 4, false, 5001, 109, "A", b""); // the challenge ACK
    t.seg(s + 5, true, 109, 5001, "A", b" HTTP/1.1\r\nHost: a\r\n\r\n");
    let (out, e) = run(&t.frames, Settings::default());
    assert_eq!(out.len(), 1, "{out:?}");
    let http = out[0].record.http.as_ref().expect("http");
    assert_eq!(http.transactions[0].uri, "/one");
    assert!(out[0].record.has_flag("syn_in_connection"));
    assert_eq!(e.counters.tcp_syn_ignored, 1);

    // The same SYN answered by a SYN-ACK that acknowledges it: the server had no
    // connection any more (a close we missed), so it is a new session.
    let mut t = Tcp { frames: Vec::new() };
    t.seg(s, true, 100, 0, "S", b"");
    t.seg(s + 1, false, 5000, 101, "SA", b"");
    t.seg(s + 2, true, 101, 5001, "A", b"GET /one HTTP/1.1\r\n\r\n");
    t.seg(s + 3, true, 90_000, 0, "S", b"");
    t.seg(s + 4, false, 70_000, 90_001, "SA", b"");
    t.seg(
        s + 5,
        true,
        90_001,
        70_001,
        "A",
        b"GET /two HTTP/1.1\r\n\r\n",
    );
    let (out, _) = run(&t.frames, Settings::default());
    let uris: Vec<String> = out
        .iter()
        .map(|e| {
            e.record.http.as_ref().expect("http").transactions[0]
                .uri
                .clone()
        })
        .collect();
    assert_eq!(uris, ["/one", "/two"], "{out:?}");
    assert_eq!(out[1].record.client.port, 40000);
}

#[test]
fn a_rst_off_the_next_sequence_number_does_not_end_the_session() {
    let s = 1_700_000_000_000_000_000i64;
    let mut t = Tcp { frames: Vec::new() };
    t.seg(s, true, 100, 0, "S", b"");
    t.seg(s + 1, false, 5000, 101, "SA", b"");
    t.seg(s + 2, true, 101, 5001, "A", b"GET /one");
    t.seg(s + 3, true, 5000, 5001, "R", b""); // in the window, not the next number
    t.seg(s + 4, true, 109, 5001, "A", b" HTTP/1.1\r\n\r\n");
    t.seg(s + 5, true, 122, 5001, "R", b""); // exactly the next number: the end
    let (out, e) = run(&t.frames, Settings::default());
    assert_eq!(out.len(), 1, "{out:?}");
    let r = &out[0].record;
    assert_eq!(r.http.as_ref().expect("http").transactions[0].uri, "/one");
    assert!(
        r.has_flag("rst_ignored") && r.has_flag("rst"),
        "{:?}",
        r.flags
    );
    assert!(
        !r.has_flag("end_of_input"),
        "the exact RST closed it: {:?}",
        r.flags
    );
    assert_eq!(e.counters.tcp_rst_ignored, 1);
}

#[test]
fn flow_buffers_are_accounted_at_their_cost_and_released_on_close() {
    let s = 1_700_000_000_000_000_000i64;
    let mut t = Tcp { frames: Vec::new() };
    t.seg(s, true, 100, 0, "S", b"");
    t.seg(s + 1, false, 5000, 101, "SA", b"");
    // Held out of order (a hole at 101), and bytes that do not identify yet.
    t.seg(s + 2, true, 111, 5001, "A", b"0123456789");
    t.seg(s + 3, false, 5001, 101, "A", b"\x00");
    let mut e = Engine::new(Settings::default(), None);
    let mut out = Vec::new();
    for (i, (ts, f)) in t.frames.iter().enumerate() {
        let p = PacketIn {
            pos: PacketPos::new(0, 0, i as u64),
            ts_ns: *ts,
            iface: 3,
            linktype: 1,
            data: f,
        };
        e.packet(p, &mut |x| out.push(x));
    }
    let held = kuroko_analyzer::reassembly::held_cost(10);
    assert!(
        e.flow_buffers() > held,
        "held segment and identification bytes: {}",
        e.flow_buffers()
    );
    assert_eq!(e.reassembly_held(), held);
    e.close_all("end_of_input", &mut |x| out.push(x));
    assert_eq!(e.flow_buffers(), 0);
    assert!(e.counters.flow_buffers_peak_bytes > held as u64);
}
