//! `cargo xtask demo`: the README's main job — real traffic → live capture → analysis →
//! findings, on this machine, with no setup.
//!
//! It installs missing Debian packages, builds `kuroko`, builds the test site of
//! `kuroko-tests` (network namespaces: a bridge "switch" with a mirror port, office hosts,
//! outside hosts on documentation addresses), starts `kuroko capture` live on the mirror
//! port, runs scenarios with real clients and servers that trip several rules, stops the
//! capture with SIGINT, analyzes, and shows `status`, `findings`, a NetRAPTOR-style search
//! and a pcap export read back by tshark. The data directory stays for the user to explore.
//!
//! Every step reports itself; a failing step is printed with its reason and the demo goes
//! on where that still makes sense, then exits non-zero — it never reports success for a
//! step that did not happen. Namespaces and processes are removed on every exit path,
//! including Ctrl-C (first Ctrl-C stops the scenarios; cleanup follows).

use crate::util::{is_root, root};
use anyhow::{Context, bail};
use kuroko_tests::proc::Server;
use kuroko_tests::scenarios::Scenario;
use kuroko_tests::site::{MIRROR_IFACE, Site};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Data directory for the demo's capture (replaced if it exists).
    #[arg(long, default_value = "demo-data")]
    pub data: PathBuf,
    /// Do not open the console at the end (it opens when the demo runs on a terminal).
    #[arg(long)]
    pub no_console: bool,
    /// Only these scenarios (names as `kuroko-scenario list` prints them).
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
}

/// The rules each demo scenario is made to trip (checked after the analysis).
fn expected_rules(s: Scenario) -> &'static [&'static str] {
    match s {
        Scenario::Telnet => &["telnet_use"],
        Scenario::SshExternal => &["ssh_external"],
        Scenario::SshInternal => &["openssh_outdated"],
        Scenario::FtpInternal => &["ftp_default_port_internal"],
        Scenario::FtpExternal => &["ftp_default_port_external"],
        Scenario::ConnectNonStandard => &["http_connect_nonstandard_port"],
        Scenario::ExploitAttempts => &["public_app_exploit_attempt"],
        Scenario::FortinetOutside => &["fortinet_login_exposed"],
        Scenario::PhishingMail => &["phishing_mail"],
        Scenario::BadReputation => &["bad_reputation_ip"],
        Scenario::WinRm => &["winrm_use"],
        Scenario::Oracle => &["oracle_traffic"],
        _ => &[],
    }
}

/// The scenarios the demo runs, and what each shows.
const DEMO: [(Scenario, &str); 13] = [
    (
        Scenario::Office,
        "ordinary office traffic: web, DNS, TLS, mail",
    ),
    (Scenario::Telnet, "Telnet login to the file server"),
    (Scenario::SshExternal, "SSH to an outside server"),
    (
        Scenario::SshInternal,
        "SSH to the file server (Debian OpenSSH 9.2p1 < 9.8p1)",
    ),
    (Scenario::FtpInternal, "FTP between inside hosts on port 21"),
    (Scenario::FtpExternal, "FTP to an outside server on port 21"),
    (
        Scenario::ConnectNonStandard,
        "HTTP CONNECT to mtalk.google.com:5228 via the proxy",
    ),
    (
        Scenario::ExploitAttempts,
        "exploit attempts from outside on the public web server",
    ),
    (
        Scenario::FortinetOutside,
        "FortiGate SSL-VPN login page served to an outside client",
    ),
    (
        Scenario::PhishingMail,
        "phishing mail impersonating a bank, with invoice.pdf.exe",
    ),
    (
        Scenario::BadReputation,
        "an inside PC talks to an address on the DROP list",
    ),
    (Scenario::WinRm, "WinRM (POST /wsman on 5985)"),
    (
        Scenario::Oracle,
        "Oracle TNS connect to the database listener",
    ),
];

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Step bookkeeping: what ran, what failed and why.
#[derive(Default)]
struct Steps {
    failed: Vec<String>,
}

impl Steps {
    fn run<T>(&mut self, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> Option<T> {
        if interrupted() {
            self.failed.push(format!("{name}: skipped (interrupted)"));
            return None;
        }
        eprintln!("\n==> {name}");
        let t = Instant::now();
        match f() {
            Ok(v) => {
                eprintln!("    ok ({:.1}s)", t.elapsed().as_secs_f64());
                Some(v)
            }
            Err(e) => {
                eprintln!("    FAILED: {e:#}");
                self.failed.push(format!("{name}: {e:#}"));
                None
            }
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !is_root() {
        bail!(
            "the demo creates network namespaces and captures on raw sockets: run it as root \
             (e.g. `sudo -E cargo xtask demo`)"
        );
    }
    // SAFETY: installing a handler that only stores to an atomic is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let data = if args.data.is_absolute() {
        args.data.clone()
    } else {
        root().join(&args.data)
    };
    let selected: Vec<(Scenario, &str)> = if args.scenarios.is_empty() {
        DEMO.to_vec()
    } else {
        args.scenarios
            .iter()
            .map(|n| {
                let s = Scenario::from_name(n)
                    .with_context(|| format!("no scenario named {n:?} (kuroko-scenario list)"))?;
                let what = DEMO.iter().find(|(d, _)| *d == s).map_or("", |(_, w)| *w);
                Ok((s, what))
            })
            .collect::<anyhow::Result<_>>()?
    };

    let mut steps = Steps::default();
    steps.run(
        "install missing Debian packages (.ci/packages.txt)",
        crate::deps::install,
    );
    let Some(kuroko) = steps.run("build kuroko", || crate::util::build_kuroko(false)) else {
        bail!("the demo needs the kuroko binary; the build failed (see above)");
    };
    let config = data.with_extension("toml");
    steps
        .run("prepare the data directory and config", || {
            prepare(&data, &config)
        })
        .context("cannot prepare the demo's data directory")?;

    let site = steps.run(
        "build the test site (switch with mirror port, 13 hosts in network namespaces)",
        Site::new,
    );
    if let Some(site) = &site {
        live_capture(&mut steps, site, &kuroko, &data, &config, &selected);
    }
    drop(site); // namespaces and every process in them are gone from here on
    if interrupted() {
        eprintln!(
            "\ninterrupted: site removed; the data captured so far is in {}",
            data.display()
        );
    }

    let k = |sub: &str, extra: &[&str]| -> anyhow::Result<()> {
        let mut c = Command::new(&kuroko);
        c.arg(sub)
            .arg("--data")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(extra);
        show(&mut c)
    };
    steps.run("kuroko analyze (sessions, index, detections)", || {
        k("analyze", &[])
    });
    steps.run("kuroko status", || k("status", &[]));
    steps.run("kuroko findings", || k("findings", &[]));
    steps.run("check: every rule the scenarios trip has a finding", || {
        check_rules(&kuroko, &data, &config, &selected)
    });
    let netraptor =
        "(protocol:http OR protocol:https) AND NOT(url:(\":443\" \":80\")) AND (method:CONNECT)";
    steps.run(&format!("kuroko search '{netraptor}'"), || {
        k("search", &[netraptor])
    });
    let out = data.with_file_name("demo-connect.pcap");
    let out_s = out.to_string_lossy().into_owned();
    let exported = steps.run(
        "kuroko pcap --query 'method:CONNECT' (the CONNECT sessions' packets)",
        || k("pcap", &["--query", "method:CONNECT", "-w", &out_s]),
    );
    if exported.is_some() {
        steps.run("tshark -r (Wireshark reads the export)", || {
            show(Command::new("tshark").args(["-r", &out_s, "-c", "12"]))
        });
    }

    let d = data.display();
    let c = config.display();
    eprintln!("\nThe demo's data stays in {d} (config {c}). Try:");
    eprintln!("  {} console --data {d} --config {c}", kuroko.display());
    eprintln!(
        "  {} search --data {d} --config {c} 'protocol:telnet OR protocol:ftp'",
        kuroko.display()
    );
    eprintln!(
        "  {} findings --data {d} --config {c} --format jsonl",
        kuroko.display()
    );
    eprintln!(
        "  {} report --data {d} --config {c} --out demo-report.html",
        kuroko.display()
    );
    web_console_access(&kuroko, &data, &config);
    let on_terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !args.no_console && on_terminal && !interrupted() {
        eprintln!("\nopening the console on the demo's data (q quits)...");
        std::thread::sleep(Duration::from_secs(2));
        steps.run("kuroko console", || k("console", &[]));
    }
    if steps.failed.is_empty() {
        eprintln!("\ndemo complete: every step succeeded");
        Ok(())
    } else {
        eprintln!("\n{} step(s) failed:", steps.failed.len());
        for f in &steps.failed {
            eprintln!("  - {f}");
        }
        bail!("the demo did not complete every step (see above)")
    }
}

/// A fresh data directory (the previous demo's is replaced) and the demo's config.
fn prepare(data: &Path, config: &Path) -> anyhow::Result<()> {
    if data.exists() {
        std::fs::remove_dir_all(data)
            .with_context(|| format!("cannot remove the previous demo data {}", data.display()))?;
    }
    let drop_list = root().join("tests/fixtures/reputation/drop.txt");
    let toml = format!(
        "# Written by `cargo xtask demo` for the test site's addresses.\n\
         [site]\nname = \"Kuroko demo site\"\ntimezone = \"Asia/Tokyo\"\n\
         internal_networks = {internal:?}\nvpn_pools = [\"{vpn}\"]\n\
         business_hours = \"mon-fri 09:00-18:00\"\n\n\
         [intel]\nreputation_lists = [\"{drop}\"]\nallowed_ssh_servers = [\"198.51.100.22\"]\n\n\
         [storage]\nbudget = \"1GiB\"\nsegment_size = \"64MiB\"\n",
        internal = kuroko_tests::site::INTERNAL_NETWORKS,
        vpn = kuroko_tests::site::VPN_POOL,
        drop = drop_list.display()
    );
    std::fs::write(config, toml).with_context(|| format!("cannot write {}", config.display()))?;
    eprintln!("    data {}  config {}", data.display(), config.display());
    Ok(())
}

/// `kuroko capture` on the mirror port while the scenarios run; stopped with SIGINT.
fn live_capture(
    steps: &mut Steps,
    site: &Site,
    kuroko: &Path,
    data: &Path,
    config: &Path,
    scenarios: &[(Scenario, &str)],
) {
    let log = site.work_dir().join("kuroko-capture.log");
    let capture = steps.run(
        &format!("start kuroko capture --iface {MIRROR_IFACE} (in the switch namespace)"),
        || {
            let (k, d, c) = (
                kuroko.to_string_lossy().into_owned(),
                data.to_string_lossy().into_owned(),
                config.to_string_lossy().into_owned(),
            );
            let mut srv = Server::spawn(
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
                &log,
            )?;
            // Ready when the live stats page exists (capture opened the ring and the socket).
            let stats = data.join("stats");
            kuroko_tests::proc::wait_until(
                "kuroko capture to start",
                Duration::from_secs(30),
                || srv.ensure_running().is_err() || stats.exists(),
            )?;
            srv.ensure_running()?;
            std::thread::sleep(Duration::from_millis(500));
            Ok(srv)
        },
    );
    let Some(mut capture) = capture else { return };
    let n = scenarios.len();
    for (i, (s, what)) in scenarios.iter().enumerate() {
        steps.run(
            &format!("[{}/{n}] scenario {}: {what}", i + 1, s.name()),
            || s.run(site),
        );
    }
    steps.run("stop kuroko capture (SIGINT)", || {
        std::thread::sleep(Duration::from_millis(500));
        let status = capture.stop_with(libc::SIGINT);
        let text = capture.log_text();
        for line in text
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            eprintln!("    | {line}");
        }
        match status {
            Some(st) if st.success() => Ok(()),
            Some(st) => bail!("kuroko capture exited with {st}"),
            None => bail!("kuroko capture did not stop on SIGINT and was killed"),
        }
    });
}

/// Compares the rules in `kuroko findings --format jsonl` with the scenarios' rules.
fn check_rules(
    kuroko: &Path,
    data: &Path,
    config: &Path,
    scenarios: &[(Scenario, &str)],
) -> anyhow::Result<()> {
    let out = Command::new(kuroko)
        .arg("findings")
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(["--format", "jsonl"])
        .output()
        .context("cannot run kuroko findings")?;
    if !out.status.success() {
        bail!(
            "kuroko findings failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let fired: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|f| f["rule"].as_str().map(str::to_string))
        .collect();
    let mut missing = Vec::new();
    for (s, _) in scenarios {
        for rule in expected_rules(*s) {
            let hit = fired.iter().any(|f| f == rule);
            eprintln!(
                "    {} {rule:<36} ({})",
                if hit { "fired " } else { "MISSING" },
                s.name()
            );
            if !hit {
                missing.push(*rule);
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} expected rule(s) did not fire: {}",
            missing.len(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// Runs a command with its output on the terminal; fails when it fails.
fn show(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = shell_words(cmd);
    eprintln!("    $ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// The command as a user would type it into a shell (arguments quoted where needed).
fn shell_words(cmd: &Command) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints how to reach the web console on the demo's data: the command, the URL, a fresh
/// one-time password for `admin` (changed at the first login; `kuroko user add
/// --one-time`, or `user passwd --one-time` when the demo ran before) and the certificate
/// fingerprint to compare with the browser's.
fn web_console_access(kuroko: &Path, data: &Path, config: &Path) {
    let run = |args: &[&str]| -> Option<String> {
        let out = Command::new(kuroko)
            .args(args)
            .arg("--data")
            .arg(data)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let password = run(&["user", "add", "admin", "--role", "admin", "--one-time"])
        .or_else(|| run(&["user", "passwd", "admin", "--one-time"]));
    let fingerprint = Command::new(kuroko)
        .args([
            "web",
            "--fingerprint",
            "--listen",
            "127.0.0.1:8443",
            "--data",
        ])
        .arg(data)
        .arg("--config")
        .arg(config)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    eprintln!("\nThe web console on the demo's data:");
    eprintln!(
        "  {} web --data {} --config {} --listen 127.0.0.1:8443",
        kuroko.display(),
        data.display(),
        config.display()
    );
    eprintln!("  then open https://127.0.0.1:8443/");
    match password {
        Some(p) => eprintln!(
            "  user admin, one-time password {p} (you choose a new one at the first login)"
        ),
        None => eprintln!("  (could not set a one-time admin password: see `kuroko user --help`)"),
    }
    match fingerprint {
        Some(f) => eprintln!("  certificate SHA-256 fingerprint {f} (compare with the browser's)"),
        None => {
            eprintln!("  (could not read the certificate: `kuroko web --fingerprint` says why)")
        }
    }
}
