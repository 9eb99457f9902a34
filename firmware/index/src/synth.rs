//! Deterministic synthetic sessions for the benchmark and the tests.
//!
//! The mix imitates an office link: mostly TLS and DNS, some HTTP (a few CONNECTs through a
//! proxy, to various ports), a little mail, SSH and FTP; a few thousand internal clients,
//! tens of thousands of servers, host names from a pool with random subdomains, URLs with
//! random paths (mostly unique, as on real links). Time advances evenly from `start_ns`.

use kuroko_model::session::{Attachment, Dns, Endpoint, Ftp, FtpFile, Http, Mail, Ssh, Tls};
use kuroko_model::{SessionRecord, Timestamp};
use std::net::{IpAddr, Ipv4Addr};

/// A small fast PRNG (xorshift64*), so runs are reproducible without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

const TLDS: &[&str] = &["com", "co.jp", "jp", "net", "org", "io"];
const WORDS: &[&str] = &[
    "google",
    "microsoft",
    "office",
    "yahoo",
    "amazon",
    "apple",
    "zoom",
    "slack",
    "github",
    "cdn",
    "static",
    "api",
    "mail",
    "login",
    "update",
    "news",
    "shop",
    "cloud",
    "box",
    "line",
];
const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Version/17.1 Safari/605.1.15",
    "Microsoft-CryptoAPI/10.0",
    "curl/8.5.0",
    "Windows-Update-Agent/10.0.10011.16384",
];
const SUBJECTS: &[&str] = &[
    "quarterly report",
    "meeting minutes",
    "invoice 2026-11",
    "【重要】パスワード変更のお願い",
    "shipping notice",
    "re: project plan",
];
const CTYPES: &[&str] = &[
    "text/html",
    "application/json",
    "image/png",
    "application/octet-stream",
    "text/css",
];

fn host(rng: &mut Rng) -> String {
    let base = format!("{}{}", rng.pick(WORDS), rng.below(250));
    let tld = rng.pick(TLDS);
    match rng.below(3) {
        0 => format!("{base}.{tld}"),
        1 => format!("{}.{base}.{tld}", rng.pick(WORDS)),
        _ => format!("s{}.{}.{base}.{tld}", rng.below(100), rng.pick(WORDS)),
    }
}

/// Session number `i` (ids `s<i>`), starting at `start_ns`, `step_ns` apart.
pub fn session(i: u64, start_ns: i64, step_ns: i64) -> SessionRecord {
    let mut rng = Rng::new(i + 1);
    let t = start_ns + step_ns.saturating_mul(i as i64);
    let client_ip = IpAddr::V4(Ipv4Addr::new(
        10,
        (rng.below(8)) as u8,
        (rng.below(250)) as u8,
        1 + rng.below(250) as u8,
    ));
    let server_ip = if rng.below(10) == 0 {
        IpAddr::V4(Ipv4Addr::new(
            192,
            168,
            rng.below(4) as u8,
            1 + rng.below(50) as u8,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            20 + rng.below(180) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
            1 + rng.below(250) as u8,
        ))
    };
    let roll = rng.below(1000);
    let (proto, transport, port): (&str, &str, u16) = match roll {
        0..=549 => ("tls", "tcp", 443),
        550..=749 => ("dns", "udp", 53),
        750..=869 => ("http", "tcp", 80),
        870..=873 => ("http", "tcp", 8080), // proxy (CONNECTs)
        874..=893 => ("smtp", "tcp", 25),
        894..=903 => ("ssh", "tcp", 22),
        904..=908 => ("ftp", "tcp", 21),
        909..=959 => ("tcp", "tcp", 1024 + rng.below(40000) as u16),
        _ => ("udp", "udp", 1024 + rng.below(40000) as u16),
    };
    let mut client = Endpoint::new(client_ip, 1024 + rng.below(60000) as u16);
    client.mac = Some(format!(
        "00:1b:21:{:02x}:{:02x}:{:02x}",
        rng.below(256),
        rng.below(256),
        rng.below(256)
    ));
    let server = Endpoint::new(server_ip, port);
    let mut r = SessionRecord::new(format!("s{i}"), Timestamp(t), transport, client, server);
    r.protocol = proto.to_string();
    r.end = Timestamp(t + (rng.below(30_000_000_000)) as i64);
    let size = 10u64.pow(1 + rng.below(6) as u32);
    r.bytes_up = rng.below(size) + 40;
    r.bytes_down = rng.below(size * 10) + 40;
    r.packets = 2 + (r.bytes_up + r.bytes_down) / 1000;
    r.span.first_segment = i / 20_000;
    r.span.last_segment = r.span.first_segment;
    match proto {
        "tls" => {
            r.tls = Some(Tls {
                sni: Some(host(&mut rng)),
                version: Some(
                    if rng.below(4) == 0 {
                        "TLSv1.2"
                    } else {
                        "TLSv1.3"
                    }
                    .into(),
                ),
                ja3: Some(format!(
                    "{:032x}",
                    rng.below(200) as u128 * 0x1234_5678_9abc_def1
                )),
                ja4: Some(format!(
                    "t13d{:04}h2_{:012x}_{:012x}",
                    rng.below(100),
                    rng.below(50),
                    rng.below(50)
                )),
                ..Default::default()
            });
        }
        "dns" => {
            r.dns = Some(Dns {
                query: Some(host(&mut rng)),
                qtype: Some("A".into()),
                rcode: Some("NOERROR".into()),
                answers: vec![format!(
                    "{}.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256),
                    rng.below(256)
                )],
                ..Default::default()
            });
        }
        "http" => {
            let h = host(&mut rng);
            let (method, url, status) = if port == 8080 {
                let p = [443u16, 443, 443, 80, 5228, 8443, 22][rng.below(7) as usize];
                (
                    "CONNECT".to_string(),
                    format!("{h}:{p}"),
                    if p == 443 { 200 } else { 403 },
                )
            } else {
                let m = if rng.below(5) == 0 { "POST" } else { "GET" };
                (
                    m.to_string(),
                    format!("{h}/{}/{:x}.html", rng.pick(WORDS), rng.next_u64() >> 20),
                    [200u16, 200, 200, 304, 404, 500][rng.below(6) as usize],
                )
            };
            r.http = Some(Http {
                method: Some(method),
                host: Some(h),
                url: Some(url),
                status: Some(status),
                user_agent: Some(rng.pick(UAS).to_string()),
                content_type: Some(rng.pick(CTYPES).to_string()),
                query: (rng.below(4) == 0)
                    .then(|| format!("id={}&q={}", rng.below(10000), rng.pick(WORDS))),
                ..Default::default()
            });
        }
        "smtp" => {
            let n = rng.below(3);
            r.mail = Some(Mail {
                from: Some(format!("{}@{}", rng.pick(WORDS), host(&mut rng))),
                to: (0..=n)
                    .map(|k| format!("user{}@example.co.jp", (k + rng.below(300))))
                    .collect(),
                subject: Some(rng.pick(SUBJECTS).to_string()),
                attachments: if rng.below(3) == 0 {
                    vec![Attachment {
                        name: format!("doc{}.pdf", rng.below(1000)),
                        bytes: rng.below(1_000_000),
                        sha256: Some(format!("{:064x}", rng.next_u64() as u128 * 7919)),
                        content_type: Some("application/pdf".into()),
                    }]
                } else {
                    Vec::new()
                },
                ..Default::default()
            });
        }
        "ssh" => {
            r.ssh = Some(Ssh {
                client_version: Some("SSH-2.0-OpenSSH_9.6".into()),
                server_version: Some(format!(
                    "SSH-2.0-OpenSSH_{}.{}",
                    7 + rng.below(3),
                    rng.below(10)
                )),
            });
        }
        "ftp" => {
            r.ftp = Some(Ftp {
                user: Some(format!("user{}", rng.below(20))),
                commands: vec!["USER x".into(), "PASS ****".into()],
                files: vec![FtpFile {
                    name: format!("backup{}.tar", rng.below(100)),
                    direction: "upload".into(),
                    bytes: r.bytes_up,
                    sha256: None,
                    ..Default::default()
                }],
                control_session: None,
                banner: None,
            });
        }
        _ => {}
    }
    r
}
