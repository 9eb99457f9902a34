//! Every screen rendered from a fixed state with ratatui's TestBackend and compared exactly
//! with the pinned text in `tests/screens/` (80x24 for the serial console, 160x48 for the
//! front-panel monitor). After an intended change of a screen, regenerate with
//! `KUROKO_BLESS=1 cargo test -p kuroko-console --test screens` and review the diff.

use kuroko_console::app::{App, Key, Screen};
use kuroko_console::snapshot::*;
use kuroko_model::finding::Lang;
use kuroko_model::session::{Endpoint, Http, SessionRecord};
use kuroko_model::{Category, Finding, Risk, Timestamp};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::PathBuf;

const T0: i64 = 1_763_425_800_000_000_000; // 2025-11-18T00:30:00Z = 09:30 JST

fn secs(s: i64) -> Timestamp {
    Timestamp(T0 + s * 1_000_000_000)
}

#[allow(clippy::too_many_arguments)]
fn finding(
    id: &str,
    rule: &str,
    title: &str,
    risk: Risk,
    v: u8,
    t: u8,
    client: Option<&str>,
    server: Option<&str>,
    count: u64,
) -> Finding {
    Finding {
        id: id.into(),
        rule: rule.into(),
        title: title.into(),
        category: Category::LateralMovement,
        attack: vec!["T1021".into()],
        client: client.map(Into::into),
        server: server.map(Into::into),
        first_seen: secs(-3600),
        last_seen: secs(-60),
        count,
        vulnerability: v,
        threat: t,
        risk,
        countermeasures: vec!["Disable Telnet".into(), "Use SSH".into()],
        evidence: vec!["1-0-3".into(), "1-0-9".into()],
        signals: vec![],
        override_reason: None,
        override_source: None,
        note: None,
        volume: Default::default(),
    }
}

fn snapshot(at: i64, packets: u64, bytes: u64) -> Snapshot {
    Snapshot {
        taken_at: secs(at),
        site: "Tokyo HQ".into(),
        capture: CaptureHealth {
            running: true,
            heartbeat_age_s: Some(0.4),
            interfaces: vec![
                InterfaceHealth {
                    name: "eth1".into(),
                    link_up: Some(true),
                    gone: false,
                    coalesced: 0,
                    packets,
                    bytes,
                    drops: Drops { kernel: 0, nic: 0, backpressure: 12, before_rebind: 4, truncated: 3 },
                },
                InterfaceHealth {
                    name: "eth2".into(),
                    link_up: Some(false),
                    gone: false,
                    coalesced: 0,
                    packets: 0,
                    bytes: 0,
                    drops: Drops::default(),
                },
            ],
            core_load: vec![(1, 23.0)],
            writer_backlog: Some(WriterBacklog {
                bytes_in_flight: 3 << 19,
                blocks_in_flight: 3,
                bytes_buffered: 256 << 10,
                pool_bytes: Some(16 << 20),
                age_s: 0.3,
            }),
            write_mode: Some("io_uring O_DIRECT".into()),
        },
        analyzer: AnalyzerHealth { running: true, lag_bytes: Some(3 << 20), lag_s: Some(4.0), sessions: 12_345 },
        alarms: vec![],
        disk: DiskInfo {
            ring_used: 1536 << 20,
            ring_budget: 2048 << 20,
            segments_used: 24,
            segments_total: 32,
            oldest: Some(secs(-2 * 86400)),
            newest: Some(secs(at)),
            bytes_written: bytes,
            bytes_written_live: true,
            evidence_used: 10 << 20,
            evidence_budget: 1 << 30,
            files_used: 200 << 20,
            files_budget: 1 << 30,
            fs_free: 40 << 30,
            fs_total: 100 << 30,
            health: DataDisksHealth {
                device: Some("dm-0".into()),
                fs_type: Some("ext4".into()),
                fs_errors: Some(0),
                disks: vec![
                    // A SATA disk that reports everything, with I/O errors.
                    DiskHealth {
                        name: "sda".into(),
                        model: Some("ST4000NM0035".into()),
                        size_bytes: Some(4_000_787_030_016),
                        rotational: Some(true),
                        read_only: Some(false),
                        state: Some("running".into()),
                        state_ok: Some(true),
                        io_errors: Some(17),
                        io_timeouts: Some(2),
                        temperature_c: Some(41.0),
                        in_flight: Some(1),
                        utilization: Some(0.12),
                        nvme: None,
                    },
                    // A disk that exposes nothing.
                    DiskHealth {
                        name: "vdb".into(),
                        ..Default::default()
                    },
                ],
                note: None,
            },
        },
        findings: vec![
            finding("f1", "ssh_external", "SSH to an outside server", Risk::A, 3, 3, Some("10.10.1.10"), Some("203.0.113.50"), 4),
            finding("f2", "telnet_use", "Telnet in use", Risk::C, 2, 2, Some("10.10.1.10"), Some("10.10.2.20"), 17),
            finding("f3", "bad_reputation_ip", "Contact with bad-reputation address", Risk::B, 3, 2, None, Some("198.51.100.7"), 1200),
        ],
        alerts: AlertsInfo {
            conditions: vec![AlertCondition {
                name: "443, 80以外のCONNECT".into(),
                severity: "warning".into(),
                query: "(protocol:http OR protocol:https) AND NOT(url:(\":443\" \":80\")) AND (method:CONNECT)".into(),
                comment: String::new(),
                hits: 3,
            }],
            recent: vec![AlertHit {
                time: secs(-120),
                condition: "443, 80以外のCONNECT".into(),
                severity: "warning".into(),
                session_id: "1-0-7".into(),
                summary: "10.10.1.10 CONNECT mtalk.google.com:5228 403".into(),
            }],
        },
        warnings: vec![],
        web: None,
        open: OpenSessions {
            total: Some(2),
            sessions: open_sessions(at),
            error: None,
        },
        assets: assets(),
    }
}

/// Two sessions still open at `at`: an SSH session for 2 h 05 m with its last packet 3 s
/// ago, and an upload over TLS for 45 s, stalled for 20 s (issue 15).
fn open_sessions(at: i64) -> Vec<SessionRecord> {
    let mut ssh = SessionRecord::new(
        "1-0-40".into(),
        secs(at - 7500),
        "tcp",
        Endpoint::new("10.10.1.10".parse().unwrap(), 52000),
        Endpoint::new("203.0.113.9".parse().unwrap(), 22),
    );
    ssh.protocol = "ssh".into();
    ssh.end = secs(at - 3);
    ssh.bytes_up = 1_234_567;
    ssh.bytes_down = 98_765_432;
    ssh.packets = 123_456;
    ssh.open = true;
    let mut up = SessionRecord::new(
        "1-0-41".into(),
        secs(at - 45),
        "tcp",
        Endpoint::new("10.8.0.23".parse().unwrap(), 61000),
        Endpoint::new("198.51.100.20".parse().unwrap(), 443),
    );
    up.protocol = "tls".into();
    up.end = secs(at - 20);
    up.bytes_up = 734_003_200;
    up.bytes_down = 52_000;
    up.packets = 510_000;
    up.open = true;
    vec![up, ssh]
}

/// Three inside hosts: an old sshd (vulnerable), a TNS listener (unknown), a PC.
fn assets() -> Vec<AssetRow> {
    let sw = |text: &str, verdict: Option<&str>, cves: &[&str]| AssetSoftware {
        text: text.into(),
        verdict: verdict.map(String::from),
        cves: cves.iter().map(|c| c.to_string()).collect(),
    };
    vec![
        // A remote worker's PC, on the VPN: `(VPN)` beside its address.
        AssetRow {
            ip: "10.8.0.23".into(),
            vpn: true,
            name: Some("pc-tanaka".into()),
            services: vec![],
            software: vec![],
        },
        AssetRow {
            ip: "10.10.2.15".into(),
            vpn: false,
            name: Some("db01".into()),
            services: vec!["1521/tcp oracle".into()],
            software: vec![sw(
                "Oracle TNS listener Version 19.0.0.0.0",
                Some("unknown"),
                &["CVE-2012-1675"],
            )],
        },
        AssetRow {
            ip: "10.10.2.20".into(),
            vpn: false,
            name: Some("filesrv01".into()),
            services: vec!["22/tcp ssh".into(), "445/tcp smb".into()],
            software: vec![
                sw(
                    "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
                    Some("vulnerable"),
                    &["CVE-2024-6387"],
                ),
                sw("SMB 3.1.1", None, &[]),
            ],
        },
    ]
}

fn session() -> SessionRecord {
    let mut s = SessionRecord::new(
        "1-0-7".into(),
        secs(-120),
        "tcp",
        Endpoint {
            ip: "10.10.1.10".parse().unwrap(),
            port: 51000,
            mac: Some("00:e0:4c:ab:10:4a".into()),
        },
        Endpoint::new("192.0.2.100".parse().unwrap(), 3128),
    );
    s.protocol = "http".into();
    s.end = secs(-119);
    s.bytes_up = 220;
    s.bytes_down = 512;
    s.packets = 9;
    s.http = Some(Http {
        method: Some("CONNECT".into()),
        host: Some("mtalk.google.com".into()),
        url: Some("mtalk.google.com:5228".into()),
        status: Some(403),
        content_type: Some("text/html".into()),
        user: Some("alice".into()),
        ..Default::default()
    });
    s
}

/// The same CONNECT from a remote worker on the VPN (`[site] vpn_pools` 10.8.0.0/24).
fn vpn_session() -> SessionRecord {
    let mut s = session();
    s.id = "1-0-8".into();
    s.start = secs(-90);
    s.end = secs(-89);
    s.client = Endpoint::new("10.8.0.23".parse().unwrap(), 61022);
    if let Some(h) = s.http.as_mut() {
        h.user = None;
    }
    s
}

fn app(lang: Lang, ascii: bool) -> App {
    let mut app = App::new(lang, ascii);
    app.tz = chrono_tz::Asia::Tokyo;
    app.vpn = kuroko_model::config::VpnPools::new(vec![
        kuroko_model::config::parse_net("10.8.0.0/24").unwrap(),
    ]);
    for (i, (p, b)) in [
        (0u64, 0u64),
        (1000, 900_000),
        (2500, 2_000_000),
        (5000, 4_200_000),
        (6000, 5_000_000),
    ]
    .iter()
    .enumerate()
    {
        app.update(snapshot(i as i64, *p, *b));
    }
    app.now = secs(5);
    app
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| kuroko_console::ui::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..w {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            line.push_str(sym);
            skip = unicode_width::UnicodeWidthStr::width(sym).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/screens")
        .join(format!("{name}.txt"));
    if std::env::var_os("KUROKO_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with KUROKO_BLESS=1 to create it)",
            path.display()
        )
    });
    assert_eq!(got, want, "screen {name} differs from {}", path.display());
}

/// English prose on a Japanese screen (`english_words` per line), less the fixture's own
/// data (the login user, the disk names, the kernel's disk state, a query's field name);
/// one entry per offending line.
fn english_on(name: &str, screen: &str) -> Vec<String> {
    // Captured data in the fixture: a user name, disk names, a state word, a field name, and
    // the TNS listener's own banner on the assets screen.
    const DATA: [&str; 6] = ["alice", "vda", "vdb", "running", "url", "listener"];
    screen
        .lines()
        .filter_map(|line| {
            let words: Vec<String> = kuroko_detect::signals::english_words(line)
                .into_iter()
                .filter(|w| !DATA.contains(&w.as_str()))
                .collect();
            (!words.is_empty()).then(|| format!("{name}: {words:?} in `{}`", line.trim()))
        })
        .collect()
}

fn all_screens(lang: Lang, ascii: bool, tag: &str) {
    let mut english = Vec::new();
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut a = app(lang, ascii);
        // Findings come from detections' store in the console's language.
        for f in &mut a.snapshot.as_mut().unwrap().findings {
            f.title = kuroko_detect::RuleId::parse(&f.rule)
                .unwrap()
                .info()
                .title(lang)
                .to_string();
        }
        for screen in Screen::ALL {
            a.screen = screen;
            if screen == Screen::Search {
                a.search.input = "method:CONNECT".into();
                a.on_search_result(Ok(SearchResult {
                    query: "method:CONNECT".into(),
                    total: Some(2),
                    sessions: vec![vpn_session(), session()],
                    snippets: Default::default(),
                }));
            }
            let name = format!("{tag}-{:?}-{w}x{h}", screen).to_lowercase();
            let text = render(&a, w, h);
            if lang == Lang::Ja {
                english.extend(english_on(&name, &text));
            }
            check(&name, &text);
        }
        // The selected session's detail pane too.
        a.screen = Screen::Search;
        a.on_key(Key::Enter);
        let name = format!("{tag}-search-detail-{w}x{h}");
        let text = render(&a, w, h);
        if lang == Lang::Ja {
            english.extend(english_on(&name, &text));
        }
    }
    assert!(
        english.is_empty(),
        "English prose on the Japanese console:\n{}",
        english.join("\n")
    );
}

#[test]
fn english_ascii_screens() {
    all_screens(Lang::En, true, "en-ascii");
}

#[test]
fn japanese_screens() {
    all_screens(Lang::Ja, false, "ja");
}

#[test]
fn detail_panes_help_and_stale_marker() {
    let mut a = app(Lang::En, true);
    a.on_key(Key::Char('3'));
    a.on_key(Key::Down);
    a.on_key(Key::Enter);
    check("en-ascii-detections-detail-80x24", &render(&a, 80, 24));
    a.on_key(Key::Char('4'));
    a.on_search_result(Ok(SearchResult {
        query: "x".into(),
        total: Some(1),
        sessions: vec![session()],
        snippets: Default::default(),
    }));
    a.on_key(Key::Enter);
    check("en-ascii-search-detail-80x24", &render(&a, 80, 24));
    // A content match: the passage under the session's detail, the match marked.
    let mut with_snippet = SearchResult {
        query: "body:\"口座が凍結\"".into(),
        total: Some(1),
        sessions: vec![session()],
        ..Default::default()
    };
    with_snippet.snippets.insert(
        session().id,
        (
            "body".into(),
            "…お客様の[口座が凍結]されました。\x1b[2J".into(),
        ),
    );
    a.on_search_result(Ok(with_snippet));
    a.on_key(Key::Enter);
    let screen = render(&a, 160, 48);
    assert!(
        screen.contains("body: …お客様の[口座が凍結]されました。"),
        "{screen}"
    );
    assert!(
        !screen.contains('\x1b'),
        "no escape from the wire reaches the screen"
    );
    a.on_search_result(Ok(SearchResult {
        query: "x".into(),
        total: Some(1),
        sessions: vec![session()],
        snippets: Default::default(),
    }));
    a.on_key(Key::Enter);
    a.on_key(Key::Char('?'));
    check("en-ascii-help-80x24", &render(&a, 80, 24));
    a.on_key(Key::Esc);
    a.on_key(Key::Char('1'));
    // Writer gauges the capture stopped publishing are marked stale on their own line.
    let mut b = a
        .snapshot
        .as_ref()
        .unwrap()
        .capture
        .writer_backlog
        .clone()
        .unwrap();
    b.age_s = 7.0;
    a.snapshot.as_mut().unwrap().capture.writer_backlog = Some(b);
    let screen = render(&a, 80, 24);
    let line = screen
        .lines()
        .find(|l| l.contains("Writer backlog"))
        .unwrap();
    assert!(line.contains("1.8 MiB *STALE 7s*"), "{line}");
    a.now = secs(60);
    let stale = render(&a, 80, 24);
    assert!(stale.lines().next().unwrap().contains("*STALE*"), "{stale}");
    check("en-ascii-health-stale-80x24", &stale);
}

#[test]
fn odd_data_never_panics() {
    let mut a = App::new(Lang::Ja, false);
    for (w, h) in [(10u16, 3u16), (20, 6), (80, 24), (300, 100)] {
        for s in Screen::ALL {
            a.screen = s;
            render(&a, w, h);
        }
    }
    let mut snap = Snapshot::default();
    snap.capture.interfaces = (0..50)
        .map(|i| InterfaceHealth {
            name: format!("インターフェース{i}"),
            packets: u64::MAX,
            bytes: u64::MAX,
            ..Default::default()
        })
        .collect();
    snap.disk.ring_budget = 0;
    snap.disk.ring_used = u64::MAX;
    snap.disk.health.device = Some("ディスク".repeat(40));
    snap.disk.health.fs_errors = Some(u64::MAX);
    snap.disk.health.disks = (0..50)
        .map(|i| DiskHealth {
            name: format!("nvme{i}n1{}", "x".repeat(200)),
            model: Some("モデル".repeat(50)),
            size_bytes: Some(u64::MAX),
            state: Some(String::new()),
            state_ok: Some(false),
            io_errors: Some(u64::MAX),
            temperature_c: Some(f64::NAN),
            utilization: Some(f64::INFINITY),
            nvme: Some(NvmeHealth {
                critical_warning: 0xff,
                available_spare: 255,
                spare_threshold: 255,
                percentage_used: 255,
                bytes_read: u64::MAX,
                bytes_written: u64::MAX,
                power_cycles: u64::MAX,
                power_on_hours: u64::MAX,
                unsafe_shutdowns: u64::MAX,
                media_errors: u64::MAX,
                error_log_entries: u64::MAX,
            }),
            ..Default::default()
        })
        .collect();
    snap.capture.writer_backlog = Some(WriterBacklog {
        bytes_in_flight: u64::MAX,
        bytes_buffered: u64::MAX,
        pool_bytes: Some(1),
        age_s: f64::NAN,
        ..Default::default()
    });
    snap.open = OpenSessions {
        total: Some(u64::MAX),
        sessions: (0..300)
            .map(|i| {
                let mut s = open_sessions(0)[i % 2].clone();
                s.start = Timestamp(i64::MAX - i as i64);
                s.bytes_up = u64::MAX;
                s
            })
            .collect(),
        error: None,
    };
    a.update(snap);
    for s in Screen::ALL {
        a.screen = s;
        render(&a, 80, 24);
        render(&a, 20, 6);
    }
}

/// The 通信中 screen when the index cannot be read yet, and when nothing is open.
#[test]
fn open_sessions_screen_without_an_index_and_with_none_open() {
    let mut a = app(Lang::En, true);
    a.on_key(Key::Char('6'));
    assert_eq!(a.screen, Screen::Open);
    let snap = a.snapshot.as_mut().unwrap();
    snap.open = OpenSessions {
        error: Some("no session index yet (kuroko analyze has not run)".into()),
        ..Default::default()
    };
    let screen = render(&a, 80, 24);
    assert!(screen.contains("no session index yet"), "{screen}");
    a.snapshot.as_mut().unwrap().open = OpenSessions::default();
    check("en-ascii-open-none-80x24", &render(&a, 80, 24));
}

/// Two NVMe drives under the data directory: a healthy one, and a worn one whose SMART log
/// raises a critical warning and counts media errors (its problems reach Health as the
/// feeder words them from the board's `problems()`).
fn nvme_app(lang: Lang, ascii: bool) -> App {
    let mut a = app(lang, ascii);
    let snap = a.snapshot.as_mut().unwrap();
    snap.disk.health = DataDisksHealth {
        device: Some("nvme0n1p2".into()),
        fs_type: Some("ext4".into()),
        fs_errors: Some(0),
        disks: vec![
            DiskHealth {
                name: "nvme0n1".into(),
                model: Some("Samsung SSD 980 PRO 2TB".into()),
                size_bytes: Some(2_000_398_934_016),
                rotational: Some(false),
                read_only: Some(false),
                state: Some("live".into()),
                state_ok: Some(true),
                temperature_c: Some(44.85),
                in_flight: Some(0),
                utilization: Some(0.31),
                nvme: Some(NvmeHealth {
                    critical_warning: 0,
                    available_spare: 100,
                    spare_threshold: 10,
                    percentage_used: 3,
                    bytes_read: 4_000_000_000_000,
                    bytes_written: 12_300_000_000_000,
                    power_cycles: 41,
                    power_on_hours: 5123,
                    unsafe_shutdowns: 2,
                    media_errors: 0,
                    error_log_entries: 9,
                }),
                ..Default::default()
            },
            DiskHealth {
                name: "nvme1n1".into(),
                model: Some("WDC PC SN530".into()),
                size_bytes: Some(512_110_190_592),
                rotational: Some(false),
                read_only: Some(false),
                state: Some("live".into()),
                state_ok: Some(true),
                temperature_c: Some(71.0),
                in_flight: Some(2),
                utilization: Some(0.88),
                nvme: Some(NvmeHealth {
                    critical_warning: 0b0000_0011,
                    available_spare: 4,
                    spare_threshold: 10,
                    percentage_used: 97,
                    bytes_read: 900_000_000_000,
                    bytes_written: 611_000_000_000_000,
                    power_cycles: 1200,
                    power_on_hours: 26_280,
                    unsafe_shutdowns: 117,
                    media_errors: 12,
                    error_log_entries: 340,
                }),
                ..Default::default()
            },
        ],
        note: None,
    };
    snap.warnings = vec![
        "disk nvme1n1: NVMe critical warning: spare below threshold, temperature".into(),
        "disk nvme1n1: 97% of rated wear used".into(),
        "disk nvme1n1: 12 media and data integrity errors".into(),
    ];
    a
}

#[test]
fn nvme_smart_on_disk_and_health() {
    let mut a = nvme_app(Lang::En, true);
    a.screen = Screen::Disk;
    let disk = render(&a, 80, 24);
    let find = |s: &str, what: &str| -> String {
        s.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in\n{s}"))
            .to_string()
    };
    assert!(
        find(&disk, "wear 3% used")
            .contains("wear 3% used  spare 100% (threshold 10%)  media errors 0"),
        "{disk}"
    );
    assert!(
        find(&disk, "written 12.3 TB").contains("unsafe shutdowns 2  written 12.3 TB  5,123 h on")
    );
    // A wide screen has it on one line.
    let wide = render(&a, 160, 48);
    assert!(find(&wide, "wear 3% used").contains(
        "wear 3% used  spare 100% (threshold 10%)  media errors 0  unsafe shutdowns 2  written 12.3 TB  5,123 h on"
    ));
    // The healthy drive is not flagged; the worn one is, with its warning bits in words.
    assert!(find(&disk, "nvme0n1  1.8 TiB").contains("|              nvme0n1 "));
    assert!(find(&disk, "nvme1n1  477 GiB").contains("!nvme1n1"));
    assert!(
        find(&disk, "!CRITICAL").contains("!CRITICAL: spare below threshold, temperature"),
        "{disk}"
    );
    assert!(find(&disk, "!wear 97% used").contains("!spare 4% (threshold 10%)"));
    assert!(disk.contains("!media errors 12"), "{disk}");
    assert!(
        !disk.contains("SMART log"),
        "both drives expose their log:\n{disk}"
    );
    check("en-ascii-disk-nvme-80x24", &disk);
    check("en-ascii-disk-nvme-160x48", &wide);
    a.screen = Screen::Health;
    let health = render(&a, 80, 24);
    assert!(
        health
            .contains("! disk nvme1n1: NVMe critical warning: spare below threshold, temperature"),
        "{health}"
    );
    check("en-ascii-health-nvme-80x24", &health);

    let mut ja = nvme_app(Lang::Ja, false);
    ja.screen = Screen::Disk;
    let disk = render(&ja, 80, 24);
    assert!(
        disk.contains("!重大警告: 予備領域が閾値未満, 温度異常"),
        "{disk}"
    );
    assert!(
        disk.contains("寿命消費 3%  予備領域 100% (閾値 10%)"),
        "{disk}"
    );
    check("ja-disk-nvme-80x24", &disk);
    check("ja-disk-nvme-160x48", &render(&ja, 160, 48));

    // A critical warning alone (bits the spec added later, or undefined ones) still flags
    // the disk, with the unknown bits named by number.
    let snap = a.snapshot.as_mut().unwrap();
    let n = snap.disk.health.disks[0].nvme.as_mut().unwrap();
    n.critical_warning = 0b1010_0000;
    a.screen = Screen::Disk;
    let disk = render(&a, 80, 24);
    assert!(
        find(&disk, "nvme0n1  1.8 TiB").contains("!nvme0n1"),
        "{disk}"
    );
    assert!(
        disk.contains("!CRITICAL: persistent memory read-only, bit 7"),
        "{disk}"
    );
}

/// Alarms on the first screen at 80x24: latched ones in reverse video, counted in the title
/// on every screen, acknowledged ones with who and when (en and ja).
#[test]
fn alarms_on_health_screen() {
    use kuroko_console::alarms::{Ack, Alarm, AlarmDetail, AlarmKind, AlarmState};
    for (lang, tag) in [(Lang::En, "en"), (Lang::Ja, "ja")] {
        let mut a = app(lang, true);
        let mut s = snapshot(5, 6000, 5_000_000);
        s.alarms = vec![
            AlarmState {
                alarm: Alarm {
                    kind: AlarmKind::InterfaceGone,
                    subject: "eth2".into(),
                    occurrence: "1:1".into(),
                    active: true,
                    since: Some(secs(2)),
                    detail: AlarmDetail::InterfaceGone {
                        times: 1,
                        tenths: 30,
                        missed: 0,
                    },
                },
                acked: None,
            },
            AlarmState {
                alarm: Alarm {
                    kind: AlarmKind::DiskWriteErrors,
                    subject: "store".into(),
                    occurrence: "3".into(),
                    active: true,
                    since: None,
                    detail: AlarmDetail::DiskWriteErrors {
                        writes: 3,
                        packets: 120,
                    },
                },
                acked: None,
            },
            AlarmState {
                alarm: Alarm {
                    kind: AlarmKind::LinkDown,
                    subject: "eth1".into(),
                    occurrence: "1:1".into(),
                    active: false,
                    since: None,
                    detail: AlarmDetail::LinkDown {
                        times: 1,
                        tenths: 20,
                    },
                },
                acked: Some(Ack {
                    who: "console on /dev/tty1".into(),
                    at: secs(4),
                }),
            },
        ];
        a.update(s);
        a.now = secs(5);
        let health = render(&a, 80, 24);
        assert!(health.contains("!! "), "{health}");
        if lang == Lang::Ja {
            // The details of the latched alarms are Japanese too (issue 22), not only
            // their kinds: no lower-case English word on those lines.
            for l in health.lines().filter(|l| l.contains("!! ")) {
                let english: Vec<&str> = l
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_lowercase()))
                    .collect();
                assert!(
                    english.is_empty(),
                    "English in a ja alarm: {english:?} in {l}"
                );
            }
        }
        check(&format!("{tag}-alarms-health-80x24"), &health);
        a.screen = Screen::Disk;
        let disk = render(&a, 80, 24);
        assert!(disk.lines().next().unwrap().contains(" 2!"), "{disk}");
        // `a` acknowledges (the source does the writing) and shows Health.
        a.on_key(kuroko_console::app::Key::Char('a'));
        assert!(a.take_ack_request());
        assert_eq!(a.screen, Screen::Health);
    }
}

#[test]
fn web_console_fingerprint_on_health() {
    use kuroko_console::snapshot::WebConsole;
    let fp: Vec<String> = (0u8..32).map(|b| format!("{:02X}", b * 7)).collect();
    let fp = fp.join(":");
    for lang in [Lang::En, Lang::Ja] {
        let mut a = app(lang, true);
        let mut s = snapshot(5, 6000, 5_000_000);
        s.web = Some(WebConsole {
            url: "https://192.0.2.10:8443/".into(),
            fingerprint: Some(fp.clone()),
        });
        a.update(s);
        a.now = secs(5);
        let health = render(&a, 80, 24);
        assert!(health.contains("https://192.0.2.10:8443/"), "{health}");
        // The whole fingerprint, in two halves of 16 bytes.
        assert!(health.contains(&fp[..47]), "{health}");
        assert!(health.contains(&fp[48..]), "{health}");
        let mut s = snapshot(6, 6000, 5_000_000);
        s.web = Some(WebConsole {
            url: "https://192.0.2.10:8443/".into(),
            fingerprint: None,
        });
        a.update(s);
        let health = render(&a, 80, 24);
        assert!(health.contains("https://192.0.2.10:8443/"), "{health}");
    }
}
