//! Open sessions on the live path (issue 15): `kuroko capture` on the mirror port and
//! `kuroko analyze --follow` as on the appliance, an SSH-like session to an outside server
//! held open for ~15 s. Before it ends it must be searchable as `state:open` (a provisional
//! record) with its `ssh_external` finding and its alert; the analyzer is killed with
//! SIGKILL between the provisional and the final record and started again; after the close
//! the search returns the session once, closed, and the finding and the alert counted it
//! once. Beside it, a VPN client's upload of 3 MB (over a 2 MB `large_upload`) held open:
//! `vpn_large_upload` is reported while the upload's connection is still open, once, and
//! still once after it closes.

use kuroko_tests::kuroko::{DataDir, binary, parse_jsonl, site_config};
use kuroko_tests::proc::{Server, signal_pid, wait_until};
use kuroko_tests::site::{EXT, MIRROR_IFACE, PC, Site, VPN};
use std::time::Duration;

const SSH_SERVER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 22)); s.listen(4)
while True:
    c, _ = s.accept()
    c.sendall(b"SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5\r\n")
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(b"\0" * len(d))
    except Exception:
        pass
    c.close()
"#;

/// Holds the session until the file `argv[2]` exists (or 120 s), a line a second.
const SSH_CLIENT: &str = r#"
import os, socket, sys, time
c = socket.create_connection((sys.argv[1], 22), timeout=5)
c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n"); c.recv(512)
end = time.time() + 120
while time.time() < end and not os.path.exists(sys.argv[2]):
    c.sendall(b"\0" * 64); c.recv(4096); time.sleep(1)
c.close()
"#;

/// Reads and discards what each client sends.
const SINK: &str = r#"
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(4)
def drain(c):
    while c.recv(65536): pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
"#;

/// Uploads 3 MB at once, then holds the connection until the file `argv[3]` exists (or
/// 120 s), a byte a second.
const UPLOAD: &str = r#"
import os, socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.sendall(b"x" * 3_000_000)
end = time.time() + 120
while time.time() < end and not os.path.exists(sys.argv[3]):
    c.sendall(b"x"); time.sleep(1)
c.close()
"#;

#[test]
fn a_long_session_is_searchable_while_open_and_counted_once_across_a_kill_9() {
    let kuroko = binary().unwrap_or_else(|e| panic!("{e:#}"));
    let site = Site::new().unwrap_or_else(|e| panic!("{e:#}"));
    let data = DataDir::new(
        "live-open",
        &format!(
            "{}\n[[alerts.conditions]]\nname = \"ssh-out\"\nquery = \"protocol:ssh AND server:{}\"\n",
            site_config("Asia/Tokyo").replace("large_upload = \"100MB\"", "large_upload = \"2MB\""),
            EXT.ip
        ),
    )
    .expect("data directory");
    let work = site.work_dir().to_path_buf();
    std::fs::write(work.join("sshd.py"), SSH_SERVER).unwrap();
    std::fs::write(work.join("ssh.py"), SSH_CLIENT).unwrap();
    std::fs::write(work.join("sink.py"), SINK).unwrap();
    std::fs::write(work.join("upload.py"), UPLOAD).unwrap();
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
    let _sink = site
        .serve(
            EXT,
            "upload-sink",
            "tcp",
            8443,
            &["python3", &s(&work.join("sink.py")), EXT.ip, "8443"],
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
    let analyzer = |n: usize| {
        Server::spawn(
            "kuroko-analyze-follow",
            "",
            // Normal priority: on a busy machine an idle-priority analyzer (the default
            // while a capture writes) may not run for a minute, and this test is about
            // what it writes, not about its scheduling.
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
            &work.join(format!("analyzer-{n}.log")),
        )
        .expect("kuroko analyze --follow starts")
    };
    let mut follow = analyzer(0);

    let done = work.join("ssh-done");
    let mut client = site
        .spawn(
            PC,
            "ssh-like-client",
            &["python3", &s(&work.join("ssh.py")), EXT.ip, &s(&done)],
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut upload = site
        .spawn(
            VPN,
            "vpn-upload",
            &[
                "python3",
                &s(&work.join("upload.py")),
                EXT.ip,
                "8443",
                &s(&done),
            ],
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let vpn_upload = || {
        data.findings()
            .unwrap_or_default()
            .iter()
            .filter(|f| f["rule"] == "vpn_large_upload" && f["client"] == VPN.ip)
            .map(|f| f["count"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let query = format!("protocol:ssh AND server:{}", EXT.ip);
    let open_query = format!("{query} AND state:open");
    let ssh_external = || {
        data.findings()
            .unwrap_or_default()
            .iter()
            .filter(|f| f["rule"] == "ssh_external" && f["server"] == EXT.ip)
            .map(|f| f["count"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let alerts = || {
        std::fs::read_to_string(data.dir.join("alerts").join("alerts.jsonl"))
            .ok()
            .and_then(|t| parse_jsonl(&t).ok())
            .unwrap_or_default()
            .iter()
            .filter(|a| a["condition"] == "ssh-out")
            .count()
    };
    // Searchable as open, with its finding and its alert, while the client still holds it.
    wait_until(
        "the open session's record, finding and alert",
        Duration::from_secs(60),
        || {
            std::thread::sleep(Duration::from_millis(300));
            data.search(&open_query).is_ok_and(|v| v.len() == 1)
                && ssh_external() == 1
                && alerts() == 1
                && vpn_upload() == 1
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\nvpn_large_upload: {}\n{}",
            vpn_upload(),
            follow.log_text()
        )
    });
    client
        .ensure_running()
        .expect("the session is still open while it is searchable as open");
    upload
        .ensure_running()
        .expect("the upload is still open while its finding is reported");
    let open = data.search(&open_query).unwrap();
    assert_eq!(open[0]["open"], true, "{open:?}");

    // kill -9 between the provisional record and the final one, then start again.
    signal_pid(follow.pid(), libc::SIGKILL);
    follow.stop();
    let mut follow = analyzer(1);
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(&done, b"").unwrap();
    wait_until("the clients to close", Duration::from_secs(30), || {
        client.ensure_running().is_err() && upload.ensure_running().is_err()
    })
    .unwrap();
    let upload_query = format!("client:{} AND server:{}", VPN.ip, EXT.ip);
    wait_until("the final records", Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_millis(300));
        data.search(&query)
            .is_ok_and(|v| v.len() == 1 && v[0]["open"] != true)
            && data
                .search(&upload_query)
                .is_ok_and(|v| v.len() == 1 && v[0]["open"] != true)
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", follow.log_text()));
    follow.stop_with(libc::SIGINT);
    capture.stop_with(libc::SIGINT);

    let found = data.search(&query).unwrap();
    assert_eq!(found.len(), 1, "one session: {found:#?}");
    assert_eq!(
        found[0]["id"], open[0]["id"],
        "the final record replaced the open one"
    );
    assert!(data.search(&open_query).unwrap().is_empty());
    assert_eq!(ssh_external(), 1, "the finding counts the session once");
    assert_eq!(alerts(), 1, "the alert fired once for the session");
    assert_eq!(vpn_upload(), 1, "the upload counts once after it closed");
    let closed = data.search(&format!("{query} AND state:closed")).unwrap();
    assert_eq!(closed.len(), 1);
}
