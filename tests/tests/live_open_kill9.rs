//! Issue 15: `kill -9` of the analyzer between a session's provisional (`open`) records and
//! its final record, at seeded random points, several times in one run.
//!
//! `kuroko capture` on the mirror port and `kuroko analyze --follow` (a child process) as on
//! the appliance. One SSH-like session to an outside server is held open while the analyzer
//! is killed with SIGKILL and started again at random moments (after its provisional records
//! were published, during the replay of a restart, around the session's close); short SSH
//! sessions from a second PC close in between. Afterwards every session is exactly once, as
//! its final record: once final in the session log (no provisional record after it, none
//! left without one), once and closed in search, counted once by its finding and its alert,
//! and once in the report's session total. The seed is printed; `KT_SEED=N` repeats a run.

use kuroko_tests::kuroko::{DataDir, binary, parse_jsonl, site_config};
use kuroko_tests::proc::{Server, signal_pid, wait_until};
use kuroko_tests::site::{EXT, MIRROR_IFACE, PC, PC2, Site};
use std::collections::BTreeMap;
use std::time::Duration;

const SSH_SERVER: &str = r#"
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 22)); s.listen(16)
def serve(c):
    c.sendall(b"SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5\r\n")
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(b"\0" * len(d))
    except Exception:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Holds the session until the file `argv[2]` exists (or 120 s), a line a second.
const LONG_CLIENT: &str = r#"
import os, socket, sys, time
c = socket.create_connection((sys.argv[1], 22), timeout=5)
c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n"); c.recv(512)
end = time.time() + 120
while time.time() < end and not os.path.exists(sys.argv[2]):
    c.sendall(b"\0" * 64); c.recv(4096); time.sleep(0.5)
c.close()
"#;

/// `argv[2]` short sessions, one every ~1.5 s.
const SHORT_CLIENTS: &str = r#"
import socket, sys, time
for i in range(int(sys.argv[2])):
    c = socket.create_connection((sys.argv[1], 22), timeout=5)
    c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n"); c.recv(512)
    c.sendall(b"\0" * 64); c.recv(4096)
    c.close()
    time.sleep(1.5)
"#;

const SHORT_SESSIONS: usize = 6;

struct Rng(u64);
impl Rng {
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo + self.0 % (hi - lo).max(1))
    }
}

#[test]
fn kill_9_between_provisional_and_final_records_leaves_each_session_once() {
    let seed = kuroko_tests::seed::from_env();
    eprintln!("KT_SEED={seed}");
    let mut rng = Rng(seed);
    let kuroko = binary().unwrap_or_else(|e| panic!("{e:#}"));
    let site = Site::new().unwrap_or_else(|e| panic!("{e:#}"));
    let data = DataDir::new(
        "live-open-kill9",
        &format!(
            "{}\n[analyzer]\nopen_record_after = \"2s\"\nopen_record_every = \"1s\"\n\n\
             [[alerts.conditions]]\nname = \"ssh-out\"\nquery = \"protocol:ssh AND server:{}\"\n",
            site_config("Asia/Tokyo"),
            EXT.ip
        ),
    )
    .expect("data directory");
    let work = site.work_dir().to_path_buf();
    for (name, text) in [
        ("sshd.py", SSH_SERVER),
        ("long.py", LONG_CLIENT),
        ("short.py", SHORT_CLIENTS),
    ] {
        std::fs::write(work.join(name), text).unwrap();
    }
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (k, d, c) = (s(&kuroko), s(&data.dir), s(&data.config));
    let _sshd = site
        .serve(
            EXT,
            "sshd-like",
            "tcp",
            22,
            &["python3", &s(&work.join("sshd.py")), EXT.ip],
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut capture = Server::spawn(
        "kuroko-capture",
        site.switch_ns(),
        &[
            &k,
            "capture",
            "--iface",
            MIRROR_IFACE,
            "--data",
            &d,
            "--config",
            &c,
        ],
        &work.join("capture.log"),
    )
    .expect("kuroko capture starts");
    let stats = data.dir.join("stats");
    wait_until("kuroko capture to start", Duration::from_secs(30), || {
        capture.ensure_running().is_err() || stats.exists()
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", capture.log_text()));
    std::thread::sleep(Duration::from_millis(300));
    let mut runs = 0;
    let mut analyzer = || {
        runs += 1;
        Server::spawn(
            "kuroko-analyze-follow",
            "",
            // Normal priority: this test is about what it writes, not its scheduling.
            &[
                &k,
                "analyze",
                "--follow",
                "--foreground-priority",
                "--data",
                &d,
                "--config",
                &c,
            ],
            &work.join(format!("analyzer-{runs}.log")),
        )
        .expect("kuroko analyze --follow starts")
    };
    let mut follow = analyzer();
    let mut kill_and_restart = |follow: &mut Server, what: &str| {
        signal_pid(follow.pid(), libc::SIGKILL);
        follow.stop();
        eprintln!("SIGKILL {what}");
        *follow = analyzer();
    };

    let done = work.join("long-done");
    let mut long = site
        .spawn(
            PC,
            "long-ssh-client",
            &["python3", &s(&work.join("long.py")), EXT.ip, &s(&done)],
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut short = site
        .spawn(
            PC2,
            "short-ssh-clients",
            &[
                "python3",
                &s(&work.join("short.py")),
                EXT.ip,
                &SHORT_SESSIONS.to_string(),
            ],
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let long_query = format!("protocol:ssh AND client:{} AND server:{}", PC.ip, EXT.ip);
    // The long session's provisional record published (searchable as open).
    wait_until(
        "the long session searchable as open",
        Duration::from_secs(60),
        || {
            std::thread::sleep(Duration::from_millis(200));
            data.search(&format!("{long_query} AND state:open"))
                .is_ok_and(|v| v.len() == 1)
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", follow.log_text()));
    // While it is open: kills at random moments, some during a restart's replay.
    for i in 0..4 {
        std::thread::sleep(rng.millis(100, 2500));
        kill_and_restart(&mut follow, &format!("while open ({i})"));
    }
    long.ensure_running()
        .expect("the long session is still open after the kills");
    // Around the close: the final record written but perhaps not yet published.
    std::fs::write(&done, b"").unwrap();
    for i in 0..2 {
        std::thread::sleep(rng.millis(50, 1500));
        kill_and_restart(&mut follow, &format!("around the close ({i})"));
    }
    wait_until("the clients to end", Duration::from_secs(60), || {
        long.ensure_running().is_err() && short.ensure_running().is_err()
    })
    .unwrap();
    let ssh_query = format!("protocol:ssh AND server:{}", EXT.ip);
    wait_until(
        "every session final in search",
        Duration::from_secs(90),
        || {
            std::thread::sleep(Duration::from_millis(300));
            data.search(&ssh_query)
                .is_ok_and(|v| v.len() == 1 + SHORT_SESSIONS && v.iter().all(|r| r["open"] != true))
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\n{:#?}\n{}",
            data.search(&ssh_query),
            follow.log_text()
        )
    });
    follow.stop_with(libc::SIGINT);
    capture.stop_with(libc::SIGINT);

    // Session log: each session has exactly one final record, after all of its provisional
    // ones, and none is left provisional only.
    let log = data.session_log().expect("session log");
    let mut finals: BTreeMap<String, usize> = BTreeMap::new();
    let mut open_after_final = Vec::new();
    let mut open_ids = std::collections::BTreeSet::new();
    for r in &log {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        if r["open"] == true {
            if finals.contains_key(&id) {
                open_after_final.push(id.clone());
            }
            open_ids.insert(id);
        } else {
            *finals.entry(id).or_default() += 1;
        }
    }
    let twice: Vec<_> = finals.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "final records written twice: {twice:?}");
    assert!(
        open_after_final.is_empty(),
        "provisional records after their final record: {open_after_final:?}"
    );
    let unfinished: Vec<_> = open_ids
        .iter()
        .filter(|id| !finals.contains_key(*id))
        .collect();
    assert!(
        unfinished.is_empty(),
        "sessions left provisional: {unfinished:?}"
    );
    let ssh_final: Vec<_> = log
        .iter()
        .filter(|r| r["open"] != true && r["protocol"] == "ssh" && r["server"]["ip"] == EXT.ip)
        .collect();
    assert_eq!(ssh_final.len(), 1 + SHORT_SESSIONS, "{ssh_final:#?}");
    let long_id = ssh_final
        .iter()
        .find(|r| r["client"]["ip"] == PC.ip)
        .map(|r| r["id"].clone())
        .expect("the long session's final record");
    assert!(
        open_ids.contains(long_id.as_str().unwrap()),
        "the long session had provisional records (else this test tested nothing)"
    );

    // Search: once each, closed.
    let found = data.search(&ssh_query).unwrap();
    assert_eq!(found.len(), 1 + SHORT_SESSIONS, "{found:#?}");
    assert!(
        data.search(&format!("{ssh_query} AND state:open"))
            .unwrap()
            .is_empty()
    );
    let long_found = data.search(&long_query).unwrap();
    assert_eq!(long_found.len(), 1);
    assert_eq!(long_found[0]["id"], long_id);

    // Findings: the long session once, each short session once.
    let findings = data.findings().unwrap();
    let count = |client: &str| {
        findings
            .iter()
            .filter(|f| f["rule"] == "ssh_external" && f["client"] == client)
            .map(|f| f["count"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        count(PC.ip),
        1,
        "the long session counted once: {findings:#?}"
    );
    assert_eq!(count(PC2.ip), SHORT_SESSIONS as u64, "{findings:#?}");

    // Alerts: once per session.
    let alerts = std::fs::read_to_string(data.dir.join("alerts").join("alerts.jsonl"))
        .ok()
        .and_then(|t| parse_jsonl(&t).ok())
        .unwrap_or_default();
    let mut per_session: BTreeMap<String, usize> = BTreeMap::new();
    for a in alerts.iter().filter(|a| a["condition"] == "ssh-out") {
        *per_session
            .entry(a["session"]["id"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_session.len(), 1 + SHORT_SESSIONS, "{alerts:#?}");
    assert!(per_session.values().all(|n| *n == 1), "{per_session:?}");

    // Report: the session total counts each session once.
    let html = work.join("report.html");
    data.kuroko("report", &["--out", &s(&html)])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains(&format!("id=\"total-sessions\"><b>{}</b>", finals.len())),
        "the report's session total is not the {} sessions of the log",
        finals.len()
    );
}
