//! The web console over real HTTPS (`kuroko web` driven with `curl`), on a data dir filled
//! by importing a pcap written here: three HTTP sessions, one of them a CONNECT to port
//! 5228 that the NetRAPTOR CONNECT query must find, two that it must not; for the pages of
//! the other issues' data a fourth, to an internal web server announcing a vulnerable
//! Apache with a page the content index holds, a provisional record of a session still
//! open and a latched alarm.
//!
//! Faults provoked: requests without a session, another user's cookie, a POST without the
//! CSRF token or from another origin, path traversal and injection in parameters, plain
//! HTTP on the TLS port, a viewer downloading packets, five wrong passwords, and an edited
//! audit log line, a `body:` query, markup-like text in a snippet, a viewer and a forged
//! POST acknowledging alarms, removing the last admin, a one-time password at the first
//! login in the browser. Each asserts on what the server answered and what is on disk.

use kuroko_tests::kuroko::{DataDir, binary};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CONNECT_QUERY: &str =
    r#"(protocol:http OR protocol:https) AND NOT(url:(":443" ":80")) AND (method:CONNECT)"#;

// ---- a small pcap writer: Ethernet/IPv4/TCP with real checksums -------------------------

fn csum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

struct Pcap {
    out: Vec<u8>,
    t_us: u64,
}

impl Pcap {
    fn new(start_unix: u64) -> Pcap {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        Pcap {
            out,
            t_us: start_unix * 1_000_000,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&src.1.to_be_bytes());
        tcp.extend_from_slice(&dst.1.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.0);
        pseudo.extend_from_slice(&dst.0);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&tcp);
        let c = csum(&pseudo, 0);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&src.0);
        ip.extend_from_slice(&dst.0);
        let c = csum(&ip, 0);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut frame = vec![
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x00, 0xe0, 0x4c, 0xab, 0x10, 0x4a, 0x08, 0x00,
        ];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&tcp);
        self.t_us += 1000;
        self.out
            .extend_from_slice(&((self.t_us / 1_000_000) as u32).to_le_bytes());
        self.out
            .extend_from_slice(&((self.t_us % 1_000_000) as u32).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&frame);
    }

    /// A whole TCP connection: handshake, one request, one response, FIN both ways.
    fn http(&mut self, client: ([u8; 4], u16), server: ([u8; 4], u16), req: &str, resp: &str) {
        let (mut c, mut s) = (1000u32, 5000u32);
        self.tcp(client, server, c, 0, 0x02, b"");
        self.tcp(server, client, s, c + 1, 0x12, b"");
        c += 1;
        s += 1;
        self.tcp(client, server, c, s, 0x10, b"");
        self.tcp(client, server, c, s, 0x18, req.as_bytes());
        c += req.len() as u32;
        self.tcp(server, client, s, c, 0x18, resp.as_bytes());
        s += resp.len() as u32;
        self.tcp(client, server, c, s, 0x11, b"");
        self.tcp(server, client, s, c + 1, 0x11, b"");
        self.tcp(client, server, c + 1, s + 1, 0x10, b"");
    }
}

fn fixture_pcap(path: &Path, extra: bool) {
    let mut p = Pcap::new(1_781_000_000);
    let pc = [192, 168, 0, 10];
    let proxy = [192, 168, 0, 100];
    let denied = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n";
    p.http(
        (pc, 40001),
        (proxy, 8080),
        "CONNECT mtalk.google.com:5228 HTTP/1.1\r\nHost: mtalk.google.com:5228\r\n\r\n",
        denied,
    );
    p.http(
        (pc, 40002),
        (proxy, 8080),
        "CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n",
        "HTTP/1.1 200 Connection established\r\n\r\n",
    );
    p.http(
        (pc, 40003),
        (proxy, 8080),
        "GET http://www.example.org/index.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi",
    );
    if extra {
        // An internal web server announcing a vulnerable Apache (the asset inventory) and
        // serving a page whose text the content index holds, with markup-like text in it
        // that the snippet must show as text.
        p.http(
            (pc, 40004),
            ([192, 168, 0, 20], 80),
            "GET /plan.html HTTP/1.1\r\nHost: intra.example.lan\r\n\r\n",
            &format!(
                "HTTP/1.1 200 OK\r\nServer: Apache/2.4.49 (Unix)\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{PLAN_HTML}",
                PLAN_HTML.len()
            ),
        );
    }
    std::fs::write(path, p.out).unwrap();
}

/// The page of the extra fixture: its text has `&lt;b&gt;` (markup as text once decoded).
const PLAN_HTML: &str = "<html><body><p>The quarterly budget &lt;b&gt;bold&lt;/b&gt; plan for the site.</p></body></html>";

// ---- the server and an HTTPS client -------------------------------------------------------

struct Server {
    child: Child,
    port: u16,
    data: DataDir,
    tmp: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn add_user(data: &DataDir, name: &str, role: &str, pw: &str) {
    let mut c = Command::new(binary().unwrap())
        .args([
            "user", "add", name, "--role", role, "--lang", "en", "--data",
        ])
        .arg(&data.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(c.stdin.take().unwrap(), "{pw}").unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(name: &str) -> Server {
    start_with(name, false, |_| {})
}

/// [`start`] on the fixture with the extra internal web server (`extra`) when asked;
/// `prepare` changes the data dir after the analysis, before the console starts.
fn start_with(name: &str, extra: bool, prepare: fn(&DataDir)) -> Server {
    let data = DataDir::new(name, "[site]\ntimezone = \"Asia/Tokyo\"\n").unwrap();
    let tmp = std::env::temp_dir().join(format!("kt-{}-{name}-client", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let pcap = tmp.join("fixture.pcap");
    fixture_pcap(&pcap, extra);
    data.import(&pcap).unwrap();
    data.analyze().unwrap();
    prepare(&data);
    add_user(&data, "admin", "admin", "admin-password-1");
    add_user(&data, "ana", "analyst", "analyst-password-1");
    add_user(&data, "vic", "viewer", "viewer-password-1");
    let port = free_port();
    let mut child = Command::new(binary().unwrap())
        .args(["web", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data.dir)
        .arg("--config")
        .arg(&data.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut fingerprint = String::new();
    for _ in 0..4 {
        let Some(Ok(l)) = lines.next() else { break };
        if let Some(f) = l.strip_prefix("kuroko web: certificate SHA-256 fingerprint ") {
            fingerprint = f.to_string();
            break;
        }
    }
    assert_eq!(fingerprint.len(), 95, "no fingerprint line from kuroko web");
    Server {
        child,
        port,
        data,
        tmp,
    }
}

struct Resp {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// `curl` with the given cookie jar (a file per user) and extra arguments.
    fn curl(&self, jar: Option<&str>, args: &[&str]) -> Resp {
        let body = self.tmp.join("body");
        let head = self.tmp.join("head");
        let mut c = Command::new("curl");
        c.args(["-sk", "--max-time", "20", "-o"])
            .arg(&body)
            .arg("-D")
            .arg(&head);
        c.args(["-w", "%{http_code}"]);
        if let Some(j) = jar {
            let j = self.tmp.join(j);
            c.arg("-b").arg(&j).arg("-c").arg(&j);
        }
        c.args(args);
        let out = c.output().expect("curl runs");
        let status = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        Resp {
            status,
            headers: std::fs::read_to_string(&head).unwrap_or_default(),
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    fn get(&self, jar: Option<&str>, path: &str) -> Resp {
        self.curl(jar, &[&self.url(path)])
    }

    fn post(&self, jar: Option<&str>, path: &str, csrf: Option<&str>, body: &str) -> Resp {
        let mut args = vec![
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            body,
        ];
        let h;
        if let Some(t) = csrf {
            h = format!("X-CSRF-Token: {t}");
            args.extend(["-H", &h]);
        }
        let url = self.url(path);
        args.push(&url);
        self.curl(jar, &args)
    }

    /// Logs `user` in with the jar of the same name; returns the CSRF token.
    fn login(&self, user: &str, pw: &str) -> String {
        let r = self.post(
            Some(user),
            "/api/login",
            None,
            &format!(r#"{{"user":"{user}","password":"{pw}"}}"#),
        );
        assert_eq!(
            r.status,
            200,
            "login {user}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["csrf"].as_str().unwrap().to_string()
    }

    fn search(&self, jar: &str, q: &str) -> Resp {
        self.curl(
            Some(jar),
            &[
                "-G",
                "--data-urlencode",
                &format!("q={q}"),
                &self.url("/api/search"),
            ],
        )
    }

    fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.data.dir.join("web/audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[test]
fn web_console_security_and_search_over_https() {
    let s = start("web");

    // TLS only: plain HTTP on the port gets a redirect to https and no page.
    let plain = Command::new("curl")
        .args(["-s", "--max-time", "10", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://127.0.0.1:{}/api/me", s.port))
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.starts_with("HTTP/1.1 308"),
        "plain HTTP answered: {plain}"
    );
    assert!(
        plain.contains(&format!("Location: https://127.0.0.1:{}/", s.port)),
        "{plain}"
    );

    // Without a session: only the login page and static assets answer.
    let login_page = s.get(None, "/login");
    assert_eq!(login_page.status, 200);
    for (h, want) in [
        ("content-security-policy", "default-src 'self'"),
        ("strict-transport-security", "max-age="),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        let v = login_page.header(h).unwrap_or_default();
        assert!(v.contains(want), "{h}: `{v}`");
    }
    let page = String::from_utf8_lossy(&login_page.body).to_string();
    assert!(
        !page.contains("<script>") && !page.contains("http://") && !page.contains("https://"),
        "inline or external script in the login page"
    );
    assert_eq!(s.get(None, "/static/app.js").status, 200);
    assert_eq!(
        s.get(None, "/").status,
        303,
        "the app page without a session must send to /login"
    );
    for path in [
        "/api/me",
        "/api/search?q=*",
        "/api/audit",
        "/api/sessions/x",
        "/api/sessions/x/pcap",
        "/api/assets",
        "/api/open",
        "/api/alarms",
        "/nonexistent",
        "/static/../users.json",
    ] {
        let r = s.get(None, path);
        assert!(
            matches!(r.status, 401 | 404),
            "{path} answered {} without a session",
            r.status
        );
        assert!(!String::from_utf8_lossy(&r.body).contains("phc"), "{path}");
    }
    let r = s.curl(
        None,
        &["--path-as-is", &s.url("/static/..%2f..%2fweb%2fusers.json")],
    );
    assert_eq!(r.status, 404, "traversal in a static name");
    let r = s.post(None, "/api/logout", None, "{}");
    assert_eq!(r.status, 401);

    // Logins; cookies are HttpOnly, Secure, SameSite=Strict.
    let admin_csrf = s.login("admin", "admin-password-1");
    let cookie = std::fs::read_to_string(s.tmp.join("admin")).unwrap();
    assert!(
        cookie.contains("#HttpOnly_") && cookie.contains("TRUE"),
        "cookie jar: {cookie}"
    );
    let r = s.post(
        Some("admin2"),
        "/api/login",
        None,
        r#"{"user":"admin","password":"admin-password-1"}"#,
    );
    let sc = r.header("set-cookie").unwrap();
    assert!(
        sc.contains("HttpOnly") && sc.contains("Secure") && sc.contains("SameSite=Strict"),
        "{sc}"
    );
    let id = sc.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(id.len(), 64, "session id is 256 bits as hex");
    let ana_csrf = s.login("ana", "analyst-password-1");
    let _vic_csrf = s.login("vic", "viewer-password-1");

    // One user's cookie acts as that user only: the viewer's cookie with the analyst's
    // CSRF token cannot change anything, and /api/me says who the cookie belongs to.
    assert_eq!(s.get(Some("vic"), "/api/me").json()["user"], "vic");
    let r = s.post(
        Some("vic"),
        "/api/lang",
        Some(&ana_csrf),
        r#"{"lang":"ja"}"#,
    );
    assert_eq!(r.status, 403, "another user's CSRF token was accepted");
    assert_eq!(
        s.get(Some("vic"), "/api/audit").status,
        403,
        "viewer reads the audit log"
    );
    assert_eq!(
        s.get(Some("ana"), "/api/audit").status,
        403,
        "analyst reads the audit log"
    );

    // CSRF: a POST without the token, with a wrong one, or from another origin fails.
    assert_eq!(
        s.post(Some("ana"), "/api/lang", None, r#"{"lang":"ja"}"#)
            .status,
        403
    );
    assert_eq!(
        s.post(Some("ana"), "/api/lang", Some("00"), r#"{"lang":"ja"}"#)
            .status,
        403
    );
    let evil = s.curl(
        Some("ana"),
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            &format!("X-CSRF-Token: {ana_csrf}"),
            "-H",
            "Origin: https://evil.example",
            "--data",
            r#"{"lang":"ja"}"#,
            &s.url("/api/lang"),
        ],
    );
    assert_eq!(evil.status, 403, "cross-origin POST accepted");
    assert_eq!(
        s.post(
            Some("ana"),
            "/api/lang",
            Some(&ana_csrf),
            r#"{"lang":"ja"}"#
        )
        .status,
        200
    );

    // The NetRAPTOR CONNECT query finds exactly the CONNECT to port 5228.
    let r = s.search("ana", CONNECT_QUERY);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["total"], 1, "{j}");
    let hit = &j["hits"][0];
    assert_eq!(hit["http"]["method"], "CONNECT");
    assert!(
        hit["http"]["url"].as_str().unwrap().contains("5228"),
        "{hit}"
    );
    let sid = hit["id"].as_str().unwrap().to_string();
    assert_eq!(s.search("ana", "*").json()["total"], 3);
    // Paging and both orders.
    let asc: Vec<String> = s
        .curl(
            Some("ana"),
            &[
                "-G",
                "--data-urlencode",
                "q=*",
                "-d",
                "order=asc",
                "-d",
                "limit=2",
                &s.url("/api/search"),
            ],
        )
        .json()["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["start"].as_str().unwrap().to_string())
        .collect();
    let desc: Vec<String> = s
        .curl(
            Some("ana"),
            &[
                "-G",
                "--data-urlencode",
                "q=*",
                "-d",
                "order=desc",
                "-d",
                "offset=1",
                "-d",
                "limit=2",
                &s.url("/api/search"),
            ],
        )
        .json()["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["start"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(asc.len(), 2);
    assert!(asc[0] < asc[1], "asc order {asc:?}");
    assert_eq!(
        desc,
        vec![asc[1].clone(), asc[0].clone()],
        "desc page 2 vs asc page 1"
    );

    // A malformed query: 400 with the column.
    let r = s.search("ana", "method:CONNECT AND (");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "query");
    assert!(r.json()["column"].as_u64().unwrap() >= 20, "{}", r.json());

    // Injection and traversal in parameters: refused, nothing leaks.
    for bad in [
        "../../web/users.json",
        "..%2F..%2Fetc%2Fpasswd",
        "x'OR'1'='1",
        "%3Cscript%3E",
        "a%00b",
    ] {
        for suffix in ["", "/pcap"] {
            let r = s.curl(
                Some("ana"),
                &[
                    "--path-as-is",
                    &s.url(&format!("/api/sessions/{bad}{suffix}")),
                ],
            );
            assert!(matches!(r.status, 400 | 404), "{bad}{suffix}: {}", r.status);
            let b = String::from_utf8_lossy(&r.body);
            assert!(!b.contains("argon2") && !b.contains("root:"), "{bad}: {b}");
        }
    }
    for bad in ["order=up", "offset=-1", "limit=x"] {
        let r = s.curl(
            Some("ana"),
            &[
                "-G",
                "--data-urlencode",
                "q=*",
                "-d",
                bad,
                &s.url("/api/search"),
            ],
        );
        assert_eq!(r.status, 400, "{bad}");
    }

    // Detail and pcap: the analyst downloads a pcap of the session; the viewer gets 403.
    let r = s.get(Some("ana"), &format!("/api/sessions/{sid}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["client"]["port"], 40001);
    let r = s.get(Some("vic"), &format!("/api/sessions/{sid}/pcap"));
    assert_eq!(r.status, 403, "viewer downloaded packets");
    let r = s.get(Some("ana"), &format!("/api/sessions/{sid}/pcap"));
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    let pcap = s.tmp.join("session.pcap");
    std::fs::write(&pcap, &r.body).unwrap();
    let ts = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&pcap)
        .args([
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "http.request.method",
        ])
        .output()
        .expect("tshark (in .ci/packages.txt) reads the download");
    assert!(
        ts.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&ts.stderr)
    );
    let text = String::from_utf8_lossy(&ts.stdout);
    assert_eq!(
        text.lines().count(),
        8,
        "the 8 packets of the CONNECT session:\n{text}"
    );
    assert!(text.contains("CONNECT"), "{text}");
    assert!(
        text.lines()
            .all(|l| l.contains("40001") || l.contains("8080")),
        "{text}"
    );

    // Findings: the CONNECT to 5228 is graded, with countermeasures and its evidence session.
    let r = s.get(Some("vic"), "/api/findings");
    assert_eq!(r.status, 200);
    let f = r.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "http_connect_nonstandard_port")
        .cloned()
        .unwrap_or_else(|| panic!("no CONNECT finding: {}", r.json()));
    assert!(
        f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == sid.as_str()),
        "{f}"
    );
    assert!(!f["countermeasures"].as_array().unwrap().is_empty(), "{f}");

    // Five wrong passwords lock the account: then even the right one is refused.
    for i in 0..5 {
        let r = s.post(
            None,
            "/api/login",
            None,
            r#"{"user":"vic","password":"wrong"}"#,
        );
        assert!(matches!(r.status, 401 | 429), "attempt {i}: {}", r.status);
    }
    let r = s.post(
        None,
        "/api/login",
        None,
        r#"{"user":"vic","password":"viewer-password-1"}"#,
    );
    assert_eq!(r.status, 429, "locked account logged in");
    let users = std::fs::read_to_string(s.data.dir.join("web/users.json")).unwrap();
    assert!(users.contains("\"locked_until\""), "lock not persisted");

    // Logout ends the session.
    assert_eq!(
        s.post(Some("ana"), "/api/logout", Some(&ana_csrf), "{}")
            .status,
        200
    );
    assert_eq!(s.get(Some("ana"), "/api/me").status, 401);

    // The audit log holds every action in order, verifies, and shows it to the admin.
    let lines = s.audit_lines();
    let actions: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["user"].as_str().unwrap().to_string(),
                l["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("admin", "login"),
        ("admin", "login"),
        ("ana", "login"),
        ("vic", "login"),
        ("ana", "search"),
        ("ana", "search"),
        ("ana", "search"),
        ("ana", "search"),
        ("ana", "search"),
    ];
    let logins: Vec<_> = actions
        .iter()
        .filter(|(u, _)| !u.starts_with("cli:"))
        .take(want.len())
        .cloned()
        .collect();
    assert_eq!(
        logins,
        want.iter()
            .map(|(u, a)| (u.to_string(), a.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        lines.iter().find(|l| l["action"] == "search").unwrap()["detail"]["query"],
        CONNECT_QUERY
    );
    let tail: Vec<&str> = actions
        .iter()
        .rev()
        .take(10)
        .rev()
        .map(|(_, a)| a.as_str())
        .collect();
    assert!(
        tail.ends_with(&[
            "session_view",
            "pcap_download",
            "findings_view",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "logout"
        ]),
        "{tail:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["addr"] == "127.0.0.1" || l["addr"] == "local")
    );
    let r = s.get(Some("admin"), "/api/audit?action=pcap_download");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["verify"]["ok"], true);
    assert_eq!(r.json()["entries"].as_array().unwrap().len(), 1);
    let _ = admin_csrf;
    let verify = |s: &Server| {
        Command::new(binary().unwrap())
            .args(["web", "--audit-verify", "--data"])
            .arg(&s.data.dir)
            .output()
            .unwrap()
    };
    assert!(verify(&s).status.success());

    // An edited line breaks the chain at that line.
    let path = s.data.dir.join("web/audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"user\":\"ana\"", "\"user\":\"eve\"", 1),
    )
    .unwrap();
    let out = verify(&s);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("BROKEN at line"));
    assert_eq!(
        s.get(Some("admin"), "/api/audit").json()["verify"]["ok"],
        false
    );
}

/// New traffic after the first analysis: a GET to www.example.org (which the condition the
/// test adds must catch) and a CONNECT to port 5229 (which the shipped condition would catch
/// if it were on).
fn later_pcap(path: &Path) {
    let mut p = Pcap::new(1_781_000_600);
    let pc = [192, 168, 0, 11];
    let proxy = [192, 168, 0, 100];
    p.http(
        (pc, 41001),
        (proxy, 8080),
        "GET http://www.example.org/new.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi",
    );
    p.http(
        (pc, 41002),
        (proxy, 8080),
        "CONNECT chat.example.net:5229 HTTP/1.1\r\nHost: chat.example.net:5229\r\n\r\n",
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    );
    std::fs::write(path, p.out).unwrap();
}

fn alert_lines(data: &DataDir) -> Vec<Value> {
    std::fs::read_to_string(data.dir.join("alerts/alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn condition<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
}

/// 条件リスト over HTTPS: roles, CSRF, the parser's error with its column, the one store the
/// alert engine reads (a new condition fires on the next traffic, a switched-off shipped one
/// does not), read-only config/shipped conditions, a damaged store left alone, the audit.
/// Then レポート: HTML and PDF downloads for a viewer, audited; bad parameters refused.
#[test]
fn web_console_conditions_and_report() {
    let s = start("web-cond");
    let store = s.data.dir.join("alerts/conditions.json");
    let shipped = "443, 80以外のCONNECT";
    let ana = s.login("ana", "analyst-password-1");
    let vic = s.login("vic", "viewer-password-1");

    // The shipped CONNECT condition is listed with the hit the first analysis raised.
    let list = s.get(Some("vic"), "/api/conditions");
    assert_eq!(list.status, 200);
    let list = list.json();
    let c = condition(&list, shipped).expect("shipped condition listed");
    assert_eq!(c["source"], "shipped");
    assert_eq!(c["enabled"], true);
    assert_eq!(c["hits"], 1, "{c}");
    assert!(
        c["last_fired_local"].as_str().unwrap().starts_with("2026/"),
        "{c}"
    );

    let draft = r#"{"name":"example.org","query":"host:www.example.org","severity":"critical","comment":"watch"}"#;
    // A viewer may not change conditions; a forged POST without the token changes nothing.
    assert_eq!(
        s.post(Some("vic"), "/api/conditions", Some(&vic), draft)
            .status,
        403
    );
    let r = s.post(Some("ana"), "/api/conditions", None, draft);
    assert_eq!((r.status, r.json()["error"].as_str()), (403, Some("csrf")));
    assert!(!store.exists(), "a refused change wrote the store");
    // A query that does not parse: the parser's message and column, nothing stored.
    let bad = s.post(
        Some("ana"),
        "/api/conditions",
        Some(&ana),
        r#"{"name":"broken","query":"method:CONNECT AND (","severity":"warning"}"#,
    );
    assert_eq!(bad.status, 400);
    let col = s.search("ana", "method:CONNECT AND (").json()["column"].clone();
    assert_eq!(bad.json()["error"], "query");
    assert_eq!(bad.json()["column"], col, "{}", bad.json());
    let r = s.post(
        Some("ana"),
        "/api/conditions",
        Some(&ana),
        r#"{"name":"x","query":"*","severity":"urgent"}"#,
    );
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("severity"))
    );
    let r = s.post(
        Some("ana"),
        "/api/conditions",
        Some(&ana),
        &format!(r#"{{"name":"{shipped}","query":"*"}}"#),
    );
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("name")));
    assert!(!store.exists());

    // Create; switch the shipped one off.
    let r = s.post(Some("ana"), "/api/conditions", Some(&ana), draft);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let enc = "443%2C%2080%E4%BB%A5%E5%A4%96%E3%81%AECONNECT";
    let r = s.post(
        Some("ana"),
        &format!("/api/conditions/{enc}/enabled"),
        Some(&ana),
        r#"{"enabled":false}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Shipped conditions are edited in the firmware, not here.
    let r = s.post(
        Some("ana"),
        &format!("/api/conditions/{enc}"),
        Some(&ana),
        r#"{"name":"mine","query":"*"}"#,
    );
    assert_eq!(r.status, 409);
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(on_disk["conditions"][0]["name"], "example.org");
    assert_eq!(on_disk["conditions"][0]["registrant"], "ana");
    assert_eq!(on_disk["disabled"][0], shipped);

    // New traffic, analyzed while the console runs: the new condition fires on the new
    // GET only (not on the older example.org session), the switched-off one does not fire
    // on the new CONNECT.
    let before = alert_lines(&s.data).len();
    let later = s.tmp.join("later.pcap");
    later_pcap(&later);
    s.data.import(&later).unwrap();
    s.data.analyze().unwrap();
    let alerts = alert_lines(&s.data);
    let new: Vec<&Value> = alerts[before..].iter().collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["condition"], "example.org");
    assert_eq!(new[0]["severity"], "critical");
    assert_eq!(new[0]["session"]["url"], "www.example.org/new.html");
    let list = s.get(Some("vic"), "/api/conditions").json();
    let c = condition(&list, "example.org").unwrap();
    assert_eq!(
        (c["hits"].as_u64(), c["enabled"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(c["registrant"], "ana");
    assert!(c["last_fired_local"].is_string());
    assert_eq!(condition(&list, shipped).unwrap()["enabled"], false);

    // Edit: a bad query leaves it as it was; a good edit is stored.
    let r = s.post(
        Some("ana"),
        &format!("/api/conditions/{id}"),
        Some(&ana),
        r#"{"name":"example.org","query":"host:(","severity":"critical"}"#,
    );
    assert_eq!(r.status, 400);
    let r = s.post(
        Some("ana"),
        &format!("/api/conditions/{id}"),
        Some(&ana),
        r#"{"name":"example.org GET","query":"host:www.example.org AND method:GET","severity":"info","enabled":false}"#,
    );
    assert_eq!(r.status, 200);
    let list = s.get(Some("ana"), "/api/conditions").json();
    let c = condition(&list, "example.org GET").unwrap();
    assert_eq!(
        (c["severity"].as_str(), c["enabled"].as_bool()),
        (Some("info"), Some(false))
    );
    // Traversal and control characters in the id are refused.
    let r = s.curl(
        Some("ana"),
        &[
            "-X",
            "DELETE",
            "-H",
            &format!("X-CSRF-Token: {ana}"),
            "--path-as-is",
            &s.url("/api/conditions/..%2F..%2Fweb%2Fusers.json"),
        ],
    );
    assert_eq!(r.status, 404);
    // Delete: a viewer may not; the analyst may.
    let del = |jar: &str, token: &str| {
        s.curl(
            Some(jar),
            &[
                "-X",
                "DELETE",
                "-H",
                &format!("X-CSRF-Token: {token}"),
                &s.url(&format!("/api/conditions/{id}")),
            ],
        )
    };
    assert_eq!(del("vic", &vic).status, 403);
    assert_eq!(del("ana", &ana).status, 200);
    assert!(
        condition(
            &s.get(Some("ana"), "/api/conditions").json(),
            "example.org GET"
        )
        .is_none()
    );
    let r = s.post(
        Some("ana"),
        &format!("/api/conditions/{enc}/enabled"),
        Some(&ana),
        r#"{"enabled":true}"#,
    );
    assert_eq!(r.status, 200);

    // A damaged store is shown and left alone: a change is refused (not a change: no audit
    // line), the file stays.
    std::fs::write(&store, b"{not json").unwrap();
    let list = s.get(Some("ana"), "/api/conditions").json();
    assert!(
        list["store_error"]
            .as_str()
            .unwrap()
            .contains("does not parse"),
        "{list}"
    );
    assert!(condition(&list, shipped).is_some());
    let r = s.post(Some("ana"), "/api/conditions", Some(&ana), draft);
    assert_eq!(r.status, 500);
    assert_eq!(std::fs::read(&store).unwrap(), b"{not json");

    // Every change is in the audit log, in order, with who did it.
    let got: Vec<String> = s
        .audit_lines()
        .iter()
        .filter(|l| l["user"] == "ana" && l["action"].as_str().unwrap().starts_with("condition_"))
        .map(|l| l["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "condition_create",
            "condition_disable",
            "condition_edit",
            "condition_delete",
            "condition_enable",
        ],
        "{got:?}"
    );

    // レポート: a viewer downloads it as HTML (en) and PDF (ja); both audited.
    let r = s.get(Some("vic"), "/api/report?lang=en&format=html");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("-en.html\""),
        "{:?}",
        r.header("content-disposition")
    );
    let html = String::from_utf8_lossy(&r.body);
    assert!(
        html.contains("<html") && html.contains("CONNECT"),
        "not the report"
    );
    assert_eq!(r.header("x-kuroko-bad-sessions").as_deref(), Some("0"));
    let r = s.get(Some("vic"), "/api/report?lang=ja&format=pdf");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body.starts_with(b"%PDF-"), "not a PDF");
    for bad in ["lang=xx", "format=docx", "lang=../../etc"] {
        assert_eq!(
            s.get(Some("vic"), &format!("/api/report?{bad}")).status,
            400,
            "{bad}"
        );
    }
    assert_eq!(s.get(None, "/api/report").status, 401);
    let reports: Vec<Value> = s
        .audit_lines()
        .into_iter()
        .filter(|l| l["action"] == "report_download")
        .collect();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0]["user"], "vic");
    assert_eq!(reports[0]["detail"]["format"], "html");
    assert_eq!(reports[1]["detail"]["lang"], "ja");

    // 統計: the report's environment content (its totals equal the search count), the
    // index's top hosts, and the status sections of `kuroko status`.
    let r = s.get(Some("vic"), "/api/stats?lang=en");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let stats = r.json();
    let sessions = s.data.search("*").unwrap().len();
    let env = stats["environment"].as_array().unwrap();
    let svgs = env.iter().filter(|b| b["kind"] == "svg").count();
    assert!(svgs >= 2, "{env:?}");
    assert!(env.iter().filter(|b| b["kind"] == "svg").all(|b| {
        let svg = b["svg"].as_str().unwrap();
        svg.starts_with("<svg") && !svg.contains("<script")
    }));
    let protocols = env.iter().find(|b| b["kind"] == "table").unwrap();
    let total = protocols["rows"].as_array().unwrap().last().unwrap();
    assert_eq!(total[1], sessions.to_string(), "{protocols}");
    let top = stats["top_hosts"].as_array().unwrap().last().unwrap();
    assert_eq!(
        top["rows"][0][0], "192.168.0.100",
        "the proxy moved the most: {top}"
    );
    assert_eq!(top["rows"][0][2], sessions.to_string());
    let status_json: Value =
        serde_json::from_str(&s.data.kuroko("status", &["--format", "json"]).unwrap()).unwrap();
    let store = stats["status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "store")
        .expect("store section");
    let packets = status_json["store"]["stored_packets"].as_u64().unwrap();
    assert!(
        store["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[1].as_str().unwrap().contains(&packets.to_string())),
        "{store}"
    );
    assert_eq!(s.get(Some("vic"), "/api/stats?lang=xx").status, 400);
    assert_eq!(s.get(None, "/api/stats").status, 401);

    // ユーザ管理: admin only, CSRF, every change audited; a disabled user's session ends
    // and its logins fail; the last admin cannot be demoted or disabled.
    let adm = s.login("admin", "admin-password-1");
    assert_eq!(s.get(Some("ana"), "/api/users").status, 403);
    let newbie = r#"{"name":"newbie","role":"viewer","password":"newbie-password-1","lang":"en"}"#;
    assert_eq!(
        s.post(Some("ana"), "/api/users", Some(&ana), newbie).status,
        403
    );
    assert_eq!(
        s.post(Some("admin"), "/api/users", None, newbie).status,
        403
    );
    let r = s.post(
        Some("admin"),
        "/api/users",
        Some(&adm),
        r#"{"name":"newbie","role":"viewer","password":"short"}"#,
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("password"))
    );
    assert_eq!(
        s.post(Some("admin"), "/api/users", Some(&adm), newbie)
            .status,
        201
    );
    s.login("newbie", "newbie-password-1");
    let r = s.post(
        Some("admin"),
        "/api/users/newbie",
        Some(&adm),
        r#"{"role":"analyst"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(s.get(Some("newbie"), "/api/me").json()["role"], "analyst");
    let r = s.post(
        Some("admin"),
        "/api/users/newbie",
        Some(&adm),
        r#"{"disabled":true}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        s.get(Some("newbie"), "/api/me").status,
        401,
        "session of a disabled user"
    );
    let r = s.post(
        Some("newbie"),
        "/api/login",
        None,
        r#"{"user":"newbie","password":"newbie-password-1"}"#,
    );
    assert_eq!(r.status, 401, "login of a disabled user");
    let r = s.post(
        Some("admin"),
        "/api/users/newbie",
        Some(&adm),
        r#"{"disabled":false}"#,
    );
    assert_eq!(r.status, 200);
    s.login("newbie", "newbie-password-1");
    let r = s.post(
        Some("admin"),
        "/api/users/newbie",
        Some(&adm),
        r#"{"password":"reset-password-2"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        s.get(Some("newbie"), "/api/me").status,
        401,
        "reset ends sessions"
    );
    // The admin's reset is a one-time password: nothing but the change answers until then.
    let nb = s.login("newbie", "reset-password-2");
    assert_eq!(s.get(Some("newbie"), "/api/me").json()["must_change"], true);
    let r = s.search("newbie", "*");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("password_change_required"))
    );
    let r = s.post(
        Some("newbie"),
        "/api/password",
        Some(&nb),
        r#"{"old":"reset-password-2","new":"reset-password-2"}"#,
    );
    assert_eq!(r.status, 400, "the same password again");
    let r = s.post(
        Some("newbie"),
        "/api/password",
        Some(&nb),
        r#"{"old":"reset-password-2","new":"own-password-3"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["must_change"], false);
    assert_eq!(s.search("newbie", "*").status, 200);
    for body in [r#"{"role":"viewer"}"#, r#"{"disabled":true}"#] {
        let r = s.post(Some("admin"), "/api/users/admin", Some(&adm), body);
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (409, Some("last_admin")),
            "{body}"
        );
    }
    // `kuroko user add --one-time` (the demo's first admin): a printed one-time password;
    // `kuroko status` shows the certificate fingerprint `kuroko web` serves.
    let out = Command::new(binary().unwrap())
        .args([
            "user",
            "add",
            "boss",
            "--role",
            "admin",
            "--one-time",
            "--data",
        ])
        .arg(&s.data.dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let once = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(once.len(), 16, "{once}");
    s.login("boss", &once);
    assert_eq!(s.get(Some("boss"), "/api/me").json()["must_change"], true);
    assert_eq!(s.get(Some("boss"), "/api/users").status, 403);
    let fp = s.data.kuroko("web", &["--fingerprint"]).unwrap();
    let st: Value =
        serde_json::from_str(&s.data.kuroko("status", &["--format", "json"]).unwrap()).unwrap();
    assert_eq!(st["web"]["fingerprint"].as_str(), Some(fp.trim()));
    assert!(s.data.kuroko("status", &[]).unwrap().contains(fp.trim()));
    // 診断結果 with the consultant's overrides and notes of site.toml, as the report has them.
    let before = s.get(Some("vic"), "/api/findings").json();
    let f = before["findings"][0].clone();
    assert_eq!(f["risk"], "C", "{before}");
    assert!(f["override_source"].is_null());
    std::fs::write(
        s.data.dir.join("site.toml"),
        format!(
            "[overrides.{}]\nvulnerability = 3\nthreat = 3\nreason = \"policy forbids tunnels\"\n\n[notes]\n\"{}\" = \"seen at the customer\"\n",
            f["rule"].as_str().unwrap(),
            f["id"].as_str().unwrap()
        ),
    )
    .unwrap();
    let after = s.get(Some("vic"), "/api/findings").json();
    let g = &after["findings"][0];
    assert_eq!(
        (
            g["risk"].as_str(),
            g["original_risk"].as_str(),
            g["override_source"].as_str()
        ),
        (Some("A"), Some("C"), Some("site_file")),
        "{after}"
    );
    assert_eq!(g["override_reason"], "policy forbids tunnels");
    assert_eq!(g["note"], "seen at the customer");
    // A site file that does not parse is said, the findings still show.
    std::fs::write(s.data.dir.join("site.toml"), "[overrides\n").unwrap();
    let bad = s.get(Some("vic"), "/api/findings").json();
    assert!(bad["site_error"].is_string(), "{bad}");
    assert_eq!(bad["findings"][0]["risk"], "C");

    let users = s.get(Some("admin"), "/api/users").json();
    let nb = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "newbie")
        .unwrap();
    assert_eq!(
        (nb["role"].as_str(), nb["disabled"].as_bool()),
        (Some("analyst"), Some(false))
    );
    assert!(!String::from_utf8_lossy(&serde_json::to_vec(&users).unwrap()).contains("argon2"));
    let got: Vec<String> = s
        .audit_lines()
        .iter()
        .filter(|l| l["user"] == "admin" && l["action"].as_str().unwrap().starts_with("user_"))
        .map(|l| {
            format!(
                "{} {}",
                l["action"].as_str().unwrap(),
                l["detail"]["user"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "user_add newbie",
            "user_change_failed newbie",
            "user_add newbie",
            "user_role newbie",
            "user_disable newbie",
            "user_enable newbie",
            "user_passwd newbie",
            "user_role admin",
            "user_change_failed admin",
            "user_disable admin",
            "user_change_failed admin",
        ],
        "{got:?}"
    );
    assert!(
        Command::new(binary().unwrap())
            .args(["web", "--audit-verify", "--data"])
            .arg(&s.data.dir)
            .status()
            .unwrap()
            .success()
    );
}

/// Screenshots land here (kept as CI artifacts): `$KT_ARTIFACTS/web`, else the target dir.
/// A session still in progress, as the analyzer of `kuroko run` writes it (a provisional
/// record, `open: true`, started two minutes ago: an import never leaves one), appended to
/// the session log and published; and a link-down alarm latched in the alarm log, as the
/// front panel records one.
fn open_session_and_alarm(data: &DataDir) {
    let dir = data.dir.join("sessions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let last = files.last().unwrap();
    let text = std::fs::read_to_string(last).unwrap();
    let mut rec: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let now = chrono::Utc::now();
    let ts =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    rec["id"] = Value::from(OPEN_ID);
    rec["open"] = Value::from(true);
    rec["start"] = Value::from(ts(now - chrono::Duration::seconds(120)));
    rec["end"] = Value::from(ts(now - chrono::Duration::seconds(2)));
    let line = format!("{}\n", serde_json::to_string(&rec).unwrap());
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    f.write_all(line.as_bytes()).unwrap();
    let published = dir.join("published");
    if published.exists() {
        let num: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let len = f.metadata().unwrap().len();
        std::fs::write(&published, format!("{num} {len}\n")).unwrap();
    }
    let alarms = data.dir.join("alarms");
    std::fs::create_dir_all(&alarms).unwrap();
    std::fs::write(
        alarms.join("log.jsonl"),
        r#"{"event":"raised","at":"2026-12-07T00:00:00Z","kind":"link_down","subject":"eth1","occurrence":"1:1","detail":"down 1x, 3.0 s in all"}
"#,
    )
    .unwrap();
}

/// The id of the provisional record [`open_session_and_alarm`] writes.
const OPEN_ID: &str = "open-session-1";

/// The pages of the other issues' data: 資産 (asset inventory), content search with
/// snippets, 通信中 (open sessions) and 警報 (alarms with acknowledgment).
///
/// Faults provoked: a `body:` query the console answered from the session index alone (it
/// matched nothing: content terms are the content index's), a filter with control
/// characters, a viewer and a forged POST acknowledging alarms, the page's own refreshes
/// filling the audit log.
#[test]
fn web_console_assets_content_open_alarms() {
    let s = start_with("web-pages", true, open_session_and_alarm);
    s.login("admin", "admin-password-1");
    let vic = s.login("vic", "viewer-password-1");
    // 資産: the internal web server with its vulnerable Apache, its evidence session.
    let r = s.get(Some("vic"), "/api/assets");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    let host = j["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["ip"] == "192.168.0.20")
        .unwrap_or_else(|| panic!("{j}"))
        .clone();
    let sw = &host["software"][0];
    assert!(
        sw["text"].as_str().unwrap().contains("Apache/2.4.49"),
        "{host}"
    );
    assert_eq!(sw["worst"], "vulnerable", "{host}");
    let web_sid = s
        .search("vic", "server:192.168.0.20 AND state:closed")
        .json()["hits"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sw["session"], web_sid.as_str(), "{host}");
    assert_eq!(host["services"][0]["port"], 80, "{host}");
    // The same hosts as `kuroko assets`.
    let cli = kuroko_tests::kuroko::parse_jsonl(
        &s.data.kuroko("assets", &["--format", "jsonl"]).unwrap(),
    )
    .unwrap();
    assert_eq!(cli.len(), j["hosts"].as_array().unwrap().len());
    let filtered = |q: &str| {
        s.curl(
            Some("vic"),
            &[
                "-G",
                "--data-urlencode",
                &format!("q={q}"),
                &s.url("/api/assets"),
            ],
        )
    };
    let f = filtered("cve-2021-41773").json();
    assert_eq!(f["hosts"].as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f["hosts"][0]["ip"], "192.168.0.20");
    assert_eq!(
        filtered("no-such-thing").json()["hosts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(filtered("a\u{1}b").status, 400);
    assert_eq!(s.get(None, "/api/assets").status, 401);

    // Content search: the page's hit with the matched words marked, the markup-like text
    // as text, the object and session named.
    let r = s.search("vic", r#"body:"quarterly budget""#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["total"], 1, "{j}");
    let hit = &j["hits"][0];
    assert_eq!(hit["id"], web_sid.as_str());
    let segs = hit["snippet"]["segments"].as_array().unwrap();
    let marked: Vec<&str> = segs
        .iter()
        .filter(|g| g["hit"] == true)
        .map(|g| g["text"].as_str().unwrap())
        .collect();
    assert!(!marked.is_empty(), "{hit}");
    assert!(
        marked
            .iter()
            .all(|m| m.to_lowercase().contains("quarterly") || m.to_lowercase().contains("budget")),
        "{marked:?}"
    );
    let whole: String = segs.iter().map(|g| g["text"].as_str().unwrap()).collect();
    assert!(whole.contains("<b>bold</b>"), "{whole}");
    // `content:` too, and the same count as `kuroko search`.
    let cli = s
        .data
        .kuroko("search", &["--count", r#"content:"quarterly budget""#])
        .unwrap();
    assert_eq!(cli.trim(), "1");
    assert_eq!(
        s.search("vic", r#"content:"quarterly budget""#).json()["total"],
        1
    );

    // `finding:` terms as `kuroko search` resolves them (the finding's evidence sessions).
    let findings = s.get(Some("vic"), "/api/findings").json();
    let fid = findings["findings"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no finding: {findings}"))
        .to_string();
    let q = format!("finding:{fid}");
    let cli = s.data.kuroko("search", &["--count", &q]).unwrap();
    let web = s.search("vic", &q).json();
    assert!(cli.trim().parse::<u64>().unwrap() > 0, "{cli}");
    assert_eq!(web["total"].to_string(), cli.trim(), "{web}");
    // A finding that does not exist: the CLI's error, without a caret column.
    let r = s.search("vic", "finding:F-no-such");
    if r.status == 400 {
        assert_eq!(r.json()["error"], "query", "{}", r.json());
    }

    // 通信中: only the session still open, with how long it has been open.
    let audit_before = s.audit_lines().len();
    let r = s.get(Some("vic"), "/api/open");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["total"], 1, "{j}");
    assert_eq!(j["hits"][0]["id"], OPEN_ID);
    assert_eq!(j["hits"][0]["open"], true);
    assert!(j["hits"][0]["open_for_s"].as_u64().unwrap() >= 120, "{j}");
    for _ in 0..3 {
        assert_eq!(s.get(Some("vic"), "/api/open?auto=true").json()["total"], 1);
    }
    // The first view is audited, the refreshes are not.
    let new: Vec<Value> = s.audit_lines()[audit_before..].to_vec();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["detail"]["query"], "state:open");

    // 警報: latched until an analyst or admin acknowledges; a viewer and a forged POST
    // cannot; the acknowledgment is in the alarm log (who) and the audit log.
    let a = s.get(Some("vic"), "/api/alarms").json();
    assert_eq!(a["latched"], 1, "{a}");
    assert_eq!(a["may_acknowledge"], false);
    let log = s.data.dir.join("alarms/log.jsonl");
    let log_before = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        s.post(Some("vic"), "/api/alarms/ack", Some(&vic), "{}")
            .status,
        403
    );
    assert_eq!(
        s.post(Some("admin"), "/api/alarms/ack", None, "{}").status,
        403
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), log_before);
    let admin_csrf = s.get(Some("admin"), "/api/me").json()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.post(Some("admin"), "/api/alarms/ack", Some(&admin_csrf), "{}");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["acknowledged"], 1);
    let ack: Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ack["event"], "ack");
    assert_eq!(ack["who"], "web:admin@127.0.0.1");
    let a = s.get(Some("vic"), "/api/alarms").json();
    assert_eq!(a["latched"], 0, "{a}");
    // An acknowledged alarm that is over leaves the list, as on the front panel.
    assert!(
        a["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["latched"] == false),
        "{a}"
    );
    let last = s.audit_lines().last().unwrap().clone();
    assert_eq!(last["action"], "alarm_ack");
    assert_eq!(last["detail"]["alarms"][0], "link_down/eth1");

    // Removing users: not by a viewer, not without the CSRF token, never the last admin.
    let delete = |jar: &str, csrf: Option<&str>, name: &str| {
        let h = format!("X-CSRF-Token: {}", csrf.unwrap_or(""));
        s.curl(
            Some(jar),
            &[
                "-X",
                "DELETE",
                "-H",
                &h,
                &s.url(&format!("/api/users/{name}")),
            ],
        )
    };
    assert_eq!(delete("vic", Some(&vic), "admin").status, 403);
    assert_eq!(delete("admin", None, "vic").status, 403);
    let r = delete("admin", Some(&admin_csrf), "admin");
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"], "last_admin");
    let users = std::fs::read_to_string(s.data.dir.join("web/users.json")).unwrap();
    assert!(
        users.contains("\"vic\"") && users.contains("\"admin\""),
        "{users}"
    );
    let r = delete("admin", Some(&admin_csrf), "vic");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Its session ends with it.
    assert_eq!(s.get(Some("vic"), "/api/me").status, 401);
    let tail: Vec<String> = s.audit_lines()[s.audit_lines().len() - 3..]
        .iter()
        .map(|l| l["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tail, ["user_remove", "user_change_failed", "user_remove"]);
}

fn artifact_dir() -> PathBuf {
    let base = std::env::var_os("KT_ARTIFACTS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join("web-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn web_console_in_a_real_browser() {
    let s = start_with("web-browser", true, open_session_and_alarm);
    let out = artifact_dir();
    let script = kuroko_tests::kuroko::workspace_root().join("tests/fixtures/web_browser.py");
    let r = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(s.url(""))
        .args(["admin", "admin-password-1", CONNECT_QUERY])
        .arg(&out)
        .output()
        .expect("python3 with selenium (python3-selenium, chromium-driver in .ci/packages.txt)");
    assert!(
        r.status.success(),
        "browser: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let seen: Value = serde_json::from_slice(r.stdout.trim_ascii()).unwrap();
    s.login("admin", "admin-password-1");
    for lang in ["ja", "en"] {
        // The NetRAPTOR CONNECT query: exactly the CONNECT to 5228.
        let rows = seen[format!("rows_{lang}")].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{lang}: {seen}");
        assert!(rows[0].as_str().unwrap().contains("CONNECT"), "{seen}");
        assert!(seen[format!("hits_{lang}")].as_str().unwrap().contains('1'));
        // The caret sits under the column the parser reported.
        let col = s.search("admin", "method:CONNECT AND (").json()["column"]
            .as_u64()
            .unwrap();
        assert_eq!(seen[format!("caret_{lang}")].as_u64(), Some(col), "{seen}");
        assert!(
            seen[format!("detail_{lang}")]
                .as_str()
                .unwrap()
                .contains("40001")
        );
        // 条件リスト: the caret of a bad query, the new condition listed beside the shipped one.
        assert_eq!(
            seen[format!("cond_caret_{lang}")].as_u64(),
            Some(col),
            "{seen}"
        );
        let rows = seen[format!("conditions_{lang}")].as_array().unwrap();
        assert!(
            rows.iter().any(|r| r.as_str().unwrap().contains("CONNECT")),
            "{seen}"
        );
        assert!(
            rows.iter()
                .any(|r| r.as_str().unwrap().contains(&format!("browser-{lang}"))),
            "{seen}"
        );
        // Content search: the phrase marked, the markup-like text as text, no element
        // but the marks.
        let marks = seen[format!("snippet_marks_{lang}")].as_array().unwrap();
        assert!(!marks.is_empty(), "{seen}");
        assert!(
            seen[format!("snippet_text_{lang}")]
                .as_str()
                .unwrap()
                .contains("<b>bold</b>"),
            "{seen}"
        );
        assert!(
            seen[format!("snippet_elements_{lang}")]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t == "mark"),
            "{seen}"
        );
        // 資産: the filter keeps the vulnerable server; its evidence opens its session.
        let hosts = seen[format!("assets_hosts_{lang}")].as_array().unwrap();
        assert_eq!(hosts.len(), 1, "{seen}");
        assert!(
            hosts[0].as_str().unwrap().contains("192.168.0.20"),
            "{seen}"
        );
        assert!(
            seen[format!("assets_vuln_{lang}")][0]
                .as_str()
                .unwrap()
                .contains("CVE-2021-41773"),
            "{seen}"
        );
        assert!(
            seen[format!("assets_evidence_{lang}")]
                .as_str()
                .unwrap()
                .contains("Apache/2.4.49")
                || seen[format!("assets_evidence_{lang}")]
                    .as_str()
                    .unwrap()
                    .contains("plan.html"),
            "{seen}"
        );
        // 通信中: the one open session, open for two minutes at least.
        let open = seen[format!("open_rows_{lang}")].as_array().unwrap();
        assert_eq!(open.len(), 1, "{seen}");
        let open_for = seen[format!("open_for_{lang}")][0].as_str().unwrap();
        assert!(
            open_for.starts_with("0:02") || open_for.starts_with("0:03"),
            "{seen}"
        );
        assert!(
            seen[format!("stats_charts_{lang}")].as_u64().unwrap() >= 5,
            "{seen}"
        );
        assert!(
            seen[format!("report_{lang}")]
                .as_str()
                .unwrap()
                .ends_with(&format!("-{lang}.html")),
            "{seen}"
        );
    }
    // ユーザ管理 in the browser: ana removed (gone from the user file, its login refused),
    // the last admin kept, vic forced to change its one-time password first.
    assert_eq!(
        seen["users_after_remove"],
        serde_json::json!(["admin", "vic"]),
        "{seen}"
    );
    assert!(
        seen["remove_last_admin"]
            .as_str()
            .unwrap()
            .contains("admin"),
        "{seen}"
    );
    let users = std::fs::read_to_string(s.data.dir.join("web/users.json")).unwrap();
    assert!(!users.contains("\"ana\""), "{users}");
    assert!(users.contains("\"admin\""), "{users}");
    let r = s.post(
        Some("ana"),
        "/api/login",
        None,
        r#"{"user":"ana","password":"analyst-password-1"}"#,
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        seen["must_change_nav"].as_array().unwrap().len(),
        1,
        "{seen}"
    );
    assert_eq!(seen["must_change_assets"], false, "{seen}");
    assert!(
        seen["after_change_nav"].as_array().unwrap().len() > 5,
        "{seen}"
    );
    s.login("vic", "viewer-new-pass-2");
    // 警報: one latched in the header until the browser acknowledged it.
    assert!(
        seen["alarm_badge_ja"].as_str().unwrap().ends_with(" 1"),
        "{seen}"
    );
    assert_eq!(seen["alarm_badge_after_ack"], "Alarms 0", "{seen}");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(s.data.dir.join("alerts/conditions.json")).unwrap())
            .unwrap();
    assert_eq!(stored["conditions"][1]["name"], "browser-en");
    assert_eq!(stored["conditions"][1]["registrant"], "admin");
    assert!(
        seen["chain_en"].as_str().unwrap().contains("intact"),
        "{seen}"
    );
    for f in [
        "login-ja",
        "results-ja",
        "results-en",
        "detail-ja",
        "detail-en",
        "audit-en",
        "password-ja",
        "conditions-ja",
        "conditions-en",
        "conditions-error-ja",
        "report-ja",
        "report-en",
        "stats-ja",
        "stats-en",
        "users-ja",
        "users-en",
        "content-ja",
        "content-en",
        "assets-ja",
        "assets-filtered-en",
        "open-ja",
        "open-en",
        "alarms-ja",
        "alarms-acked-en",
        "users-remove-en",
        "must-change-en",
    ] {
        assert!(
            out.join(format!("{f}.png")).metadata().unwrap().len() > 1000,
            "{f}"
        );
    }
    // The pcap the browser downloaded is read by tshark: the CONNECT session's packets.
    let ts = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(out.join("browser.pcap"))
        .args(["-T", "fields", "-e", "http.request.method"])
        .output()
        .unwrap();
    assert!(
        ts.status.success(),
        "{}",
        String::from_utf8_lossy(&ts.stderr)
    );
    assert!(String::from_utf8_lossy(&ts.stdout).contains("CONNECT"));
    // Each browser action is in the audit log, in order, and the chain verifies.
    let actions: Vec<String> = s
        .audit_lines()
        .iter()
        .filter(|l| l["user"] == "admin")
        .map(|l| l["action"].as_str().unwrap().to_string())
        .collect();
    let want = [
        "login",
        "search",
        "search",
        "session_view",
        "pcap_download",
        "condition_create",
        "report_download",
        "search",
        "search",
        "session_view",
        "pcap_download",
        "search",
        "assets_view",
        "alarm_ack",
        "user_remove",
        "user_remove",
        "user_change_failed",
        "user_passwd",
        "logout",
    ];
    let got: Vec<&str> = actions.iter().map(String::as_str).collect();
    let mut it = got.iter();
    for w in want {
        assert!(it.any(|a| *a == w), "{w} missing in order: {got:?}");
    }
    assert!(
        Command::new(binary().unwrap())
            .args(["web", "--audit-verify", "--data"])
            .arg(&s.data.dir)
            .status()
            .unwrap()
            .success()
    );
}
