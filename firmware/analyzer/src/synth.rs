//! A generator of realistic mixed traffic as a pcap, for the benchmark and the restart test.
//!
//! Many interleaved TCP connections with full handshakes and FIN teardown, carrying HTTP
//! requests and responses (with bodies), TLS (a real ClientHello with SNI, then
//! application-data records), and bulk transfers; DNS queries and answers over UDP. The
//! receiver ACKs every second segment, like a real stack. Deterministic for a seed.
//!
//! [`Mix::SmallSessions`] is the opposite of the bulk-heavy default: many short sessions
//! between many distinct addresses, so that what the analyzer and the consumers do once
//! per session (the session record, the index, the detections, the asset inventory, intel
//! lookups) dominates, not the bytes.

use crate::source::PcapWriter;
use etherparse::PacketBuilder;
use std::collections::VecDeque;
use std::io::{self, Write};

/// Segment size of generated TCP payloads (Ethernet MTU minus headers).
pub const MSS: usize = 1448;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Params {
    /// Stop once this many bytes of frames were written.
    pub target_bytes: u64,
    /// Connections in flight at once (interleaved round-robin).
    pub concurrency: usize,
    pub seed: u64,
    /// Capture time of the first packet (ns).
    pub start_ns: i64,
    /// Time between packets (ns).
    pub gap_ns: i64,
    pub mix: Mix,
}

/// What kind of traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mix {
    /// DNS, HTTP with 1–3 bodies of 0.5–120 kB, TLS, bulk transfers.
    #[default]
    Mixed,
    /// File-heavy: every connection one HTTP download of a 0.2–60 kB body (distinct
    /// content), so the analyzer reconstructs, hashes and stores an object per session.
    HttpFiles,
    /// Many small sessions between many distinct addresses ([`SMALL_CLIENTS`] internal
    /// clients, [`SMALL_SERVERS`] internal servers, external servers and some external
    /// clients of the internal ones): one HTTP request with a 50–800 byte body (varied
    /// `Server` and `User-Agent`), TLS handshakes with an SNI and a little data, SSH
    /// banner exchanges, SMTP greetings with EHLO/QUIT, Telnet login prompts, and DNS
    /// queries. Per-session work dominates, not bytes.
    SmallSessions,
}

impl Mix {
    /// Every mix, by its name on the command line (`--mix`).
    pub const ALL: [Mix; 3] = [Mix::Mixed, Mix::HttpFiles, Mix::SmallSessions];

    /// The name on the command line: `mixed`, `http-files`, `small-sessions`.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Mixed => "mixed",
            Mix::HttpFiles => "http-files",
            Mix::SmallSessions => "small-sessions",
        }
    }
}

impl std::str::FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Mix, String> {
        Mix::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Mix::ALL.iter().map(|m| m.name()).collect();
            format!("unknown mix {s:?} (one of {})", names.join(", "))
        })
    }
}

/// Internal client addresses of [`Mix::SmallSessions`] (10.1.0.0/16 and up).
pub const SMALL_CLIENTS: u64 = 4096;
/// Internal server addresses of [`Mix::SmallSessions`] (10.2.0.0/16 and up).
pub const SMALL_SERVERS: u64 = 512;

impl Default for Params {
    fn default() -> Self {
        Params {
            target_bytes: 1 << 30,
            concurrency: 256,
            seed: 1,
            start_ns: 1_763_600_000_000_000_000,
            gap_ns: 2_000,
            mix: Mix::Mixed,
        }
    }
}

/// What was generated.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_connections: u64,
    pub http: u64,
    pub tls: u64,
    pub bulk: u64,
    pub dns: u64,
    /// SSH, SMTP and Telnet banner exchanges ([`Mix::SmallSessions`]).
    pub banners: u64,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

enum Msg {
    Bytes(Vec<u8>),
    /// `n` bytes of filler (from the shared random buffer), optionally in TLS records.
    Filler(usize),
}

enum Conv {
    Tcp(TcpConv),
    Dns {
        client: ([u8; 4], u16),
        server: [u8; 4],
        query: Vec<u8>,
        answer: Vec<u8>,
        step: u8,
    },
}

struct TcpConv {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    seq: [u32; 2],
    msgs: VecDeque<(usize, Msg)>,
    /// Bytes of the current message already sent.
    sent: usize,
    stage: u8,
    unacked: u32,
}

const CMAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SMAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn client_hello(sni: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    let name = sni.as_bytes();
    // server_name
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    // supported_versions: TLS 1.3, 1.2
    ext.extend_from_slice(&[0, 0x2b, 0, 5, 4, 3, 4, 3, 3]);
    // ALPN h2, http/1.1
    ext.extend_from_slice(&[0, 0x10, 0, 14, 0, 12, 2, b'h', b'2', 8]);
    ext.extend_from_slice(b"http/1.1");
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

fn server_hello() -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x33; 32]);
    body.push(0);
    body.extend_from_slice(&[0x13, 0x01, 0]);
    let ext = [0u8, 0x2b, 0, 2, 3, 4];
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![2, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 3, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

fn dns_msg(id: u16, name: &str, answer: Option<[u8; 4]>) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(if answer.is_some() {
        &[0x81, 0x80]
    } else {
        &[0x01, 0x00]
    });
    m.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some(a) = answer {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
        m.extend_from_slice(&a);
    }
    m
}

struct Gen {
    mix: Mix,
    rng: Rng,
    filler: Vec<u8>,
    next_port: u16,
    report: Report,
    frame: Vec<u8>,
}

const HOSTS: [&str; 8] = [
    "www.example.com",
    "intranet.corp.example",
    "mail.corp.example",
    "cdn.example.net",
    "api.example.org",
    "login.example.com",
    "files.corp.example",
    "updates.example.com",
];

impl Gen {
    /// A TCP conversation of `msgs` between `client` and `server`, with random initial
    /// sequence numbers (drawn after the messages, as every generator here does).
    fn tcp_conv(
        &mut self,
        client: ([u8; 4], u16),
        server: ([u8; 4], u16),
        msgs: VecDeque<(usize, Msg)>,
    ) -> Conv {
        let isn = [self.rng.next() as u32, self.rng.next() as u32];
        Conv::Tcp(TcpConv {
            client,
            server,
            seq: isn,
            msgs,
            sent: 0,
            stage: 0,
            unacked: 0,
        })
    }

    fn new_conv(&mut self) -> Conv {
        let r = self.rng.next();
        self.next_port = if self.next_port >= 60000 {
            10000
        } else {
            self.next_port + 1
        };
        let client = (
            [10, 1, (r >> 8) as u8 % 16, (r >> 16) as u8 | 1],
            self.next_port,
        );
        let server_ip = [203, 0, 113, (r >> 24) as u8 % 64 + 1];
        let host = HOSTS[(r >> 32) as usize % HOSTS.len()];
        let kind = r % 100;
        match self.mix {
            Mix::HttpFiles => return self.http_download(client, server_ip, host, r),
            Mix::SmallSessions => return self.small_session(r),
            Mix::Mixed => {}
        }
        if kind < 20 {
            self.report.dns += 1;
            let id = (r >> 40) as u16;
            return Conv::Dns {
                client,
                server: [10, 0, 0, 53],
                query: dns_msg(id, host, None),
                answer: dns_msg(id, host, Some(server_ip)),
                step: 0,
            };
        }
        self.report.tcp_connections += 1;
        let mut msgs = VecDeque::new();
        let port;
        if kind < 55 {
            self.report.http += 1;
            port = 80;
            for i in 0..self.rng.range(1, 4) {
                let body = self.rng.range(500, 120_000) as usize;
                let req = format!(
                    "GET /static/{i}/page-{r:x}.html?session={} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Kuroko-Bench\r\nAccept: */*\r\n\r\n",
                    r % 9973
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\n\r\n"
                );
                msgs.push_back((0, Msg::Bytes(req.into_bytes())));
                msgs.push_back((1, Msg::Bytes(head.into_bytes())));
                msgs.push_back((1, Msg::Filler(body)));
            }
        } else if kind < 90 {
            self.report.tls += 1;
            port = 443;
            msgs.push_back((0, Msg::Bytes(client_hello(host))));
            msgs.push_back((1, Msg::Bytes(server_hello())));
            msgs.push_back((0, Msg::Filler(self.rng.range(200, 2000) as usize)));
            msgs.push_back((1, Msg::Filler(self.rng.range(5_000, 400_000) as usize)));
        } else {
            self.report.bulk += 1;
            port = 5001;
            msgs.push_back((0, Msg::Filler(self.rng.range(500_000, 4_000_000) as usize)));
        }
        self.tcp_conv(client, (server_ip, port), msgs)
    }

    /// One HTTP GET answered with a 0.2–60 kB body ([`Mix::HttpFiles`]).
    fn http_download(
        &mut self,
        client: ([u8; 4], u16),
        server_ip: [u8; 4],
        host: &str,
        r: u64,
    ) -> Conv {
        self.report.tcp_connections += 1;
        self.report.http += 1;
        let body = self.rng.range(200, 60_000) as usize;
        let req = format!(
            "GET /download/{r:x}.bin HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Kuroko-Bench\r\nAccept: */*\r\n\r\n"
        );
        let head = format!(
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\n\r\n"
        );
        let mut msgs = VecDeque::new();
        msgs.push_back((0, Msg::Bytes(req.into_bytes())));
        msgs.push_back((1, Msg::Bytes(head.into_bytes())));
        msgs.push_back((1, Msg::Filler(body)));
        self.tcp_conv(client, (server_ip, 80), msgs)
    }

    /// One short session of [`Mix::SmallSessions`].
    fn small_session(&mut self, r: u64) -> Conv {
        let r2 = self.rng.next();
        let c = r2 % SMALL_CLIENTS;
        let mut client = ([10, 1 + (c >> 8) as u8, c as u8, 0], self.next_port);
        client.0[3] = (r2 >> 16) as u8 % 4 + 10;
        let s = (r2 >> 24) % SMALL_SERVERS;
        let internal_server = [10, 2 + (s >> 8) as u8, s as u8, 10];
        // Public addresses (not in the default internal networks), thousands of them.
        let external = |x: u64| [45 + (x % 40) as u8, (x >> 8) as u8, (x >> 16) as u8, 7];
        let inside = (r2 >> 40) % 100 < 45;
        let server_ip = if inside {
            // Some clients of the internal servers come from outside (exposed services).
            if (r2 >> 48) % 100 < 15 {
                client.0 = external(r2 >> 20);
            }
            internal_server
        } else {
            external(r2 >> 32)
        };
        let host = HOSTS[(r >> 32) as usize % HOSTS.len()];
        let kind = r % 100;
        if kind < 25 {
            self.report.dns += 1;
            let id = (r >> 40) as u16;
            let name = format!("h{:x}.{host}", (r >> 20) % 50_000);
            let resolver = if kind < 18 {
                [10, 0, 0, 53]
            } else {
                [8, 8, 8, 8]
            };
            return Conv::Dns {
                client,
                server: resolver,
                query: dns_msg(id, &name, None),
                answer: dns_msg(id, &name, Some(server_ip)),
                step: 0,
            };
        }
        const SERVERS: [&str; 6] = [
            "nginx/1.18.0 (Ubuntu)",
            "Apache/2.4.57 (Debian)",
            "Microsoft-IIS/10.0",
            "nginx/1.25.3",
            "Apache/2.4.41 (Ubuntu)",
            "lighttpd/1.4.69",
        ];
        const AGENTS: [&str; 4] = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "curl/7.88.1",
            "Microsoft-CryptoAPI/10.0",
        ];
        const SSH: [&str; 4] = [
            "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
            "SSH-2.0-OpenSSH_7.4",
            "SSH-2.0-dropbear_2022.83",
        ];
        const SMTP: [&str; 3] = [
            "220 mail.corp.example ESMTP Postfix (Debian/GNU)",
            "220 mx.example.net ESMTP Exim 4.96 Mon, 20 Nov 2025 01:00:00 +0000",
            "220 smtp.example.org Microsoft ESMTP MAIL Service ready",
        ];
        self.report.tcp_connections += 1;
        let v = (r >> 44) as usize;
        let mut msgs = VecDeque::new();
        let say = |m: &mut VecDeque<(usize, Msg)>, dir: usize, b: &[u8]| {
            m.push_back((dir, Msg::Bytes(b.to_vec())))
        };
        let port = if kind < 55 {
            self.report.http += 1;
            let body = self.rng.range(50, 800) as usize;
            say(
                &mut msgs,
                0,
                format!(
                    "GET /api/v1/item/{:x}?q={} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: */*\r\n\r\n",
                    r >> 16,
                    r % 997,
                    AGENTS[v % AGENTS.len()]
                )
                .as_bytes(),
            );
            say(
                &mut msgs,
                1,
                format!(
                    "HTTP/1.1 200 OK\r\nServer: {}\r\nContent-Type: application/json\r\nContent-Length: {body}\r\n\r\n",
                    SERVERS[v % SERVERS.len()]
                )
                .as_bytes(),
            );
            msgs.push_back((1, Msg::Filler(body)));
            80
        } else if kind < 80 {
            self.report.tls += 1;
            let sni = format!("s{:x}.{host}", (r >> 20) % 20_000);
            msgs.push_back((0, Msg::Bytes(client_hello(&sni))));
            msgs.push_back((1, Msg::Bytes(server_hello())));
            msgs.push_back((0, Msg::Filler(self.rng.range(100, 1200) as usize)));
            msgs.push_back((1, Msg::Filler(self.rng.range(200, 3000) as usize)));
            443
        } else if kind < 88 {
            self.report.banners += 1;
            say(
                &mut msgs,
                1,
                format!("{}\r\n", SSH[v % SSH.len()]).as_bytes(),
            );
            say(&mut msgs, 0, b"SSH-2.0-OpenSSH_9.6\r\n");
            22
        } else if kind < 95 {
            self.report.banners += 1;
            say(
                &mut msgs,
                1,
                format!("{}\r\n", SMTP[v % SMTP.len()]).as_bytes(),
            );
            say(&mut msgs, 0, b"EHLO client.corp.example\r\n");
            say(
                &mut msgs,
                1,
                b"250-mail.corp.example\r\n250-STARTTLS\r\n250 SIZE 10240000\r\n",
            );
            say(&mut msgs, 0, b"QUIT\r\n");
            say(&mut msgs, 1, b"221 2.0.0 Bye\r\n");
            25
        } else {
            self.report.banners += 1;
            say(&mut msgs, 1, b"\xff\xfd\x18Ubuntu 22.04.3 LTS\r\nlogin: ");
            say(&mut msgs, 0, b"operator\r\n");
            say(&mut msgs, 1, b"Password: ");
            23
        };
        self.tcp_conv(client, (server_ip, port), msgs)
    }

    fn tcp<W: Write>(
        &mut self,
        out: &mut PcapWriter<W>,
        ts: i64,
        c: &TcpConv,
        dir: usize,
        flags: &str,
        payload: &[u8],
    ) -> io::Result<()> {
        let (src, dst, smac, dmac) = if dir == 0 {
            (c.client, c.server, CMAC, SMAC)
        } else {
            (c.server, c.client, SMAC, CMAC)
        };
        let mut b = PacketBuilder::ethernet2(smac, dmac)
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, c.seq[dir], 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(c.seq[1 - dir]);
        }
        if flags.contains('F') {
            b = b.fin();
        }
        if flags.contains('P') {
            b = b.psh();
        }
        self.frame.clear();
        b.write(&mut self.frame, payload)
            .map_err(io::Error::other)?;
        self.emit(out, ts)
    }

    fn emit<W: Write>(&mut self, out: &mut PcapWriter<W>, ts: i64) -> io::Result<()> {
        out.packet(ts, &self.frame)?;
        self.report.packets += 1;
        self.report.bytes += self.frame.len() as u64 + 16;
        Ok(())
    }

    /// Emits the next packet of `conv`; returns false when it is finished.
    fn step<W: Write>(
        &mut self,
        out: &mut PcapWriter<W>,
        ts: i64,
        conv: &mut Conv,
    ) -> io::Result<bool> {
        match conv {
            Conv::Dns {
                client,
                server,
                query,
                answer,
                step,
            } => {
                let (src, dst, sp, dp, smac, dmac, payload) = if *step == 0 {
                    (client.0, *server, client.1, 53, CMAC, SMAC, &*query)
                } else {
                    (*server, client.0, 53, client.1, SMAC, CMAC, &*answer)
                };
                self.frame.clear();
                PacketBuilder::ethernet2(smac, dmac)
                    .ipv4(src, dst, 64)
                    .udp(sp, dp)
                    .write(&mut self.frame, payload)
                    .map_err(io::Error::other)?;
                self.emit(out, ts)?;
                *step += 1;
                Ok(*step < 2)
            }
            Conv::Tcp(c) => {
                match c.stage {
                    0 => {
                        self.tcp(out, ts, c, 0, "S", &[])?;
                        c.seq[0] = c.seq[0].wrapping_add(1);
                        c.stage = 1;
                    }
                    1 => {
                        self.tcp(out, ts, c, 1, "SA", &[])?;
                        c.seq[1] = c.seq[1].wrapping_add(1);
                        c.stage = 2;
                    }
                    2 => {
                        self.tcp(out, ts, c, 0, "A", &[])?;
                        c.stage = 3;
                    }
                    3 => {
                        let Some((dir, msg)) = c.msgs.front() else {
                            c.stage = 4;
                            return Ok(true);
                        };
                        let dir = *dir;
                        if c.unacked >= 2 {
                            self.tcp(out, ts, c, 1 - dir, "A", &[])?;
                            c.unacked = 0;
                            return Ok(true);
                        }
                        let (len, total) = match msg {
                            Msg::Bytes(b) => ((b.len() - c.sent).min(MSS), b.len()),
                            Msg::Filler(n) => ((*n - c.sent).min(MSS), *n),
                        };
                        let payload: Vec<u8> = match msg {
                            Msg::Bytes(b) => b[c.sent..c.sent + len].to_vec(),
                            Msg::Filler(_) => {
                                let off = (self.rng.next() as usize) % (self.filler.len() - MSS);
                                self.filler[off..off + len].to_vec()
                            }
                        };
                        let last = c.sent + len >= total;
                        self.tcp(out, ts, c, dir, if last { "PA" } else { "A" }, &payload)?;
                        c.seq[dir] = c.seq[dir].wrapping_add(len as u32);
                        c.sent += len;
                        c.unacked += 1;
                        if last {
                            c.msgs.pop_front();
                            c.sent = 0;
                            c.unacked = 2; // the receiver acknowledges the end of a message
                            if c.msgs.front().is_some_and(|(d, _)| *d != dir) {
                                c.unacked = 0;
                            }
                        }
                    }
                    4 => {
                        self.tcp(out, ts, c, 0, "FA", &[])?;
                        c.seq[0] = c.seq[0].wrapping_add(1);
                        c.stage = 5;
                    }
                    5 => {
                        self.tcp(out, ts, c, 1, "FA", &[])?;
                        c.seq[1] = c.seq[1].wrapping_add(1);
                        c.stage = 6;
                    }
                    _ => {
                        self.tcp(out, ts, c, 0, "A", &[])?;
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }
}

/// Writes a pcap of mixed traffic to `out`.
pub fn generate<W: Write>(out: W, params: &Params) -> io::Result<Report> {
    let mut out = PcapWriter::new(out)?;
    let mut rng = Rng(params.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let filler: Vec<u8> = (0..1 << 20).map(|_| rng.next() as u8).collect();
    let mut g = Gen {
        mix: params.mix,
        rng,
        filler,
        next_port: 10000,
        report: Report::default(),
        frame: Vec::with_capacity(2048),
    };
    let mut convs: Vec<Conv> = (0..params.concurrency.max(1))
        .map(|_| g.new_conv())
        .collect();
    let mut ts = params.start_ns;
    let mut i = 0usize;
    while g.report.bytes < params.target_bytes {
        let idx = i % convs.len();
        i = i.wrapping_add(1 + (g.rng.next() % 3) as usize);
        ts += params.gap_ns;
        if !g.step(&mut out, ts, &mut convs[idx])? {
            convs[idx] = g.new_conv();
        }
    }
    // Finish every conversation so that the pcap ends cleanly.
    for c in &mut convs {
        loop {
            ts += params.gap_ns;
            if !g.step(&mut out, ts, c)? {
                break;
            }
        }
    }
    out.into_inner().flush()?;
    Ok(g.report)
}
