//! Least privilege of `kuroko run`'s children (issue 21): started as root on a test config
//! with `--user nobody`, the analyzer runs as that user with no capability at all,
//! NoNewPrivs and a seccomp filter; capture runs as that user too, with NoNewPrivs and
//! seccomp, and at most the capabilities it needs (CAP_NET_RAW, CAP_NET_ADMIN, CAP_IPC_LOCK,
//! CAP_SYS_NICE). Read from /proc/PID/status of each child while it runs; capture still
//! captures (its stats say running). No kuroko process can leave a core dump (RLIMIT_CORE
//! 0) and the children are not dumpable (their memory holds customer traffic).

use kuroko_capture::{CaptureState, StatsReader};
use kuroko_tests::netns::{Netns, veth};
use kuroko_tests::proc::{Server, wait_until};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_SYS_NICE.
const CAPTURE_CAPS: u64 = (1 << 12) | (1 << 13) | (1 << 14) | (1 << 23);

/// `kuroko <sub>` children of `parent`: subcommand -> pid.
fn children(parent: u32) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(sub) = args.get(1)
            && (sub == "capture" || sub == "analyze")
        {
            out.insert(sub.clone(), pid);
        }
    }
    out
}

fn status(pid: u32) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// `soft hard` of "Max core file size" in /proc/PID/limits.
fn core_limit(pid: u32) -> Option<String> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))?;
    let v: Vec<&str> = line["Max core file size".len()..]
        .split_whitespace()
        .collect();
    Some(format!("{} {}", v.first()?, v.get(1)?))
}

#[test]
fn run_children_are_unprivileged_confined_and_capture_still_captures() -> anyhow::Result<()> {
    let ns = Netns::create("pv")?;
    let peer = Netns::create("pvp")?;
    ns.disable_ipv6()?;
    peer.disable_ipv6()?;
    let _v = veth(Some(&peer), "vpeer", Some(&ns), "vcap", 1500)?;
    let dir = tempfile::tempdir()?;
    // `nobody` must reach the data directory and the config through the test's temp dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let data = dir.path().join("data");
    let config = dir.path().join("kuroko.toml");
    std::fs::write(
        &config,
        "[capture]\ninterfaces = [\"vcap\"]\nring_size = \"4MiB\"\n\n[storage]\nbudget = \"64MiB\"\nsegment_size = \"4MiB\"\n",
    )?;
    let bin = kuroko_tests::kuroko::binary()?;
    let log = dir.path().join("run.log");
    let mut run = Server::spawn(
        "kuroko run",
        ns.name(),
        &[
            bin.to_str().unwrap(),
            "run",
            "--config",
            config.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--no-console",
            "--user",
            "nobody",
            "--duration",
            "60",
        ],
        &log,
    )?;
    let nobody = std::fs::read_to_string("/etc/passwd")?
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .and_then(|l| l.split(':').nth(2).map(str::to_string))
        .expect("a nobody user");
    wait_until("capture to run", Duration::from_secs(60), || {
        StatsReader::open(&data).is_ok_and(|r| r.snapshot().state == CaptureState::Running)
    })
    .map_err(|e| {
        let logs = std::fs::read_to_string(data.join("logs/capture.log")).unwrap_or_default();
        e.context(format!("{}\n{logs}", run.log_text()))
    })?;
    wait_until("both children", Duration::from_secs(30), || {
        children(run.pid()).len() == 2
    })
    .map_err(|e| e.context(run.log_text()))?;
    let kids = children(run.pid());
    let analyzer = status(kids["analyze"]);
    let capture = status(kids["capture"]);
    // Once capture runs, no thread of it holds a capability any more (capabilities are
    // per thread: the main thread and helper threads must drop them too).
    let mut thread_caps = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{}/task", kids["capture"]))?.flatten() {
        let st: BTreeMap<String, String> = std::fs::read_to_string(t.path().join("status"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect();
        for k in ["CapEff", "CapPrm"] {
            let v = st.get(k).map(String::as_str).unwrap_or("0");
            if u64::from_str_radix(v, 16).unwrap_or(1) != 0 {
                thread_caps.push(format!(
                    "{} ({}) {k} {v}",
                    t.file_name().to_string_lossy(),
                    st.get("Name").map(String::as_str).unwrap_or("?")
                ));
            }
        }
    }
    // No core dumps: RLIMIT_CORE 0 in every kuroko process, and not dumpable, which the
    // kernel shows by giving /proc/PID to root although the process runs as `nobody`. A
    // child sets both first thing in main, so right after its exec (a restarted analyzer)
    // it may not have yet: the final state is what is checked.
    let dump_problems = || {
        let mut out = Vec::new();
        for (name, pid) in [
            ("run", run.pid()),
            ("capture", kids["capture"]),
            ("analyze", kids["analyze"]),
        ] {
            let core = core_limit(pid);
            if core.as_deref() != Some("0 0") {
                out.push(format!("{name}: core size limit {core:?}"));
            }
            let owner = std::fs::metadata(format!("/proc/{pid}/status"))
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
                .unwrap_or(u32::MAX);
            if name != "run" && owner != 0 {
                out.push(format!(
                    "{name}: dumpable (/proc/{pid} owned by uid {owner})"
                ));
            }
        }
        out
    };
    let dumps = match wait_until(
        "no dumpable kuroko process",
        Duration::from_secs(10),
        || dump_problems().is_empty(),
    ) {
        Ok(()) => Vec::new(),
        Err(_) => dump_problems(),
    };
    run.ensure_running()?;
    let _ = run.stop_with(libc::SIGINT);

    let uid = |s: &BTreeMap<String, String>| {
        s.get("Uid")
            .map(|u| u.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let cap = |s: &BTreeMap<String, String>, k: &str| {
        u64::from_str_radix(s.get(k).map(String::as_str).unwrap_or("ffff"), 16).unwrap()
    };
    assert_eq!(
        uid(&analyzer),
        vec![nobody.clone(); 4],
        "analyzer: {analyzer:?}"
    );
    for k in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(cap(&analyzer, k), 0, "analyzer {k}: {analyzer:?}");
    }
    assert_eq!(analyzer["NoNewPrivs"], "1");
    assert_eq!(analyzer["Seccomp"], "2", "seccomp filter mode");
    assert_eq!(uid(&capture), vec![nobody; 4], "capture: {capture:?}");
    for k in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            cap(&capture, k) & !CAPTURE_CAPS,
            0,
            "capture {k}: {capture:?}"
        );
    }
    assert_eq!(capture["NoNewPrivs"], "1");
    assert_eq!(capture["Seccomp"], "2");
    assert!(dumps.is_empty(), "core dumps possible: {dumps:?}");
    assert!(
        thread_caps.is_empty(),
        "capture threads still holding capabilities while running: {thread_caps:?}"
    );
    // Landlock confines the children's writes to the data directory (tested in the
    // privilege module); capture's port silencing still writes its sysctls through it. (A
    // kernel without cls_matchall, as on CI's, warns about the egress drop: not refused.)
    let capture_log = std::fs::read_to_string(data.join("logs/capture.log"))?;
    assert!(
        !capture_log.contains("Permission denied"),
        "capture was refused a write: {capture_log}"
    );
    // Everything under the data directory now belongs to that user, owner-only.
    let meta = std::fs::metadata(data.join("logs"))?;
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta).to_string(),
        uid(&analyzer)[0]
    );
    Ok(())
}

#[test]
fn run_refuses_a_missing_user_unless_root_children_are_allowed() -> anyhow::Result<()> {
    // In a namespace of its own: were the check missing, nothing on the host is touched.
    let ns = Netns::create("pvm")?;
    ns.run(&[
        "ip", "link", "add", "vdum", "type", "veth", "peer", "name", "vdump",
    ])?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("kuroko.toml");
    std::fs::write(&config, "[capture]\ninterfaces = [\"vdum\"]\n")?;
    let bin = kuroko_tests::kuroko::binary()?;
    let out = kuroko_tests::proc::run_in(
        ns.name(),
        &[
            bin.to_str().unwrap(),
            "run",
            "--config",
            config.to_str().unwrap(),
            "--data",
            dir.path().join("data").to_str().unwrap(),
            "--no-console",
            "--user",
            "kuroko-no-such-user",
            "--duration",
            "1",
        ],
        60,
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {err}");
    assert!(
        err.contains("user `kuroko-no-such-user` does not exist")
            && err.contains("--allow-root-children"),
        "{err}"
    );
    Ok(())
}
