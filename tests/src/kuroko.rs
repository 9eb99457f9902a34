//! Driving the `kuroko` binary as a user would: import, analyze, findings, search.
//!
//! The binary is found (and built once per test process when it is missing) in the
//! workspace's target directory, honouring `CARGO_TARGET_DIR`; `KUROKO_BIN` overrides it.
//! Output is read through the contract's JSONL forms, not through Rust types, so these tests
//! check what scripts and users actually see.

use anyhow::{Context, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Upper bound for one `kuroko` command in a test (the 150 MB upload takes the longest).
const COMMAND_TIMEOUT_SECS: u32 = 600;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The `kuroko` binary: `$KUROKO_BIN`, else `cargo build -p kuroko` once per process and
/// `<target>/debug/kuroko`.
pub fn binary() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KUROKO_BIN") {
        return Ok(PathBuf::from(p));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "kuroko"])
        .current_dir(workspace_root())
        .status()
        .context("cannot run cargo to build the kuroko binary")?;
    if !status.success() {
        bail!("`cargo build -p kuroko` failed ({status}): the kuroko binary does not build");
    }
    let bin = target_dir().join("debug").join("kuroko");
    if !bin.is_file() {
        bail!("built kuroko but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// The Kuroko config for the test site: its internal networks and VPN pool, the DROP-style
/// fixture list, the allow-listed SSH server, business hours in `timezone`.
pub fn site_config(timezone: &str) -> String {
    let drop_list = workspace_root().join("tests/fixtures/reputation/drop.txt");
    format!(
        "[site]\ntimezone = \"{timezone}\"\ninternal_networks = {internal:?}\n\
         vpn_pools = [\"{vpn}\"]\nbusiness_hours = \"mon-fri 09:00-18:00\"\n\n\
         [intel]\nreputation_lists = [\"{drop}\"]\nallowed_ssh_servers = [\"{allowed}\"]\n\n\
         [detect]\nlarge_upload = \"100MB\"\n",
        internal = crate::site::INTERNAL_NETWORKS,
        vpn = crate::site::VPN_POOL,
        drop = drop_list.display(),
        allowed = crate::site::EXT_ALLOWED.ip,
    )
}

/// A Kuroko data directory with its config file, removed when dropped.
pub struct DataDir {
    pub dir: PathBuf,
    pub config: PathBuf,
    keep: bool,
}

impl DataDir {
    /// A fresh data directory under the system temp dir, with `config_toml` as its config.
    pub fn new(name: &str, config_toml: &str) -> anyhow::Result<DataDir> {
        let base = std::env::temp_dir().join(format!("kt-{}-data-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base)
            .with_context(|| format!("cannot create {}", base.display()))?;
        let config = base.join("kuroko.toml");
        std::fs::write(&config, config_toml)?;
        Ok(DataDir {
            dir: base.join("data"),
            config,
            keep: std::env::var_os("KT_KEEP").is_some(),
        })
    }

    /// Runs `kuroko <sub> --data DIR --config FILE <args>`; fails with its stderr.
    pub fn kuroko(&self, sub: &str, args: &[&str]) -> anyhow::Result<String> {
        let bin = binary()?;
        let (data, config) = (
            self.dir.to_str().context("data path is not UTF-8")?,
            self.config.to_str().context("config path is not UTF-8")?,
        );
        let mut argv = vec![sub, "--data", data, "--config", config];
        argv.extend_from_slice(args);
        let bin_s = bin.to_str().context("binary path is not UTF-8")?;
        let mut full = vec![bin_s];
        full.extend_from_slice(&argv);
        let out = crate::proc::run_in("", &full, COMMAND_TIMEOUT_SECS)?;
        if !out.status.success() {
            bail!(
                "`kuroko {}` failed ({}): {}",
                argv.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn import(&self, pcap: &Path) -> anyhow::Result<()> {
        self.kuroko(
            "import",
            &[pcap.to_str().context("pcap path is not UTF-8")?],
        )
        .map(drop)
    }

    pub fn analyze(&self) -> anyhow::Result<()> {
        self.kuroko("analyze", &[]).map(drop)
    }

    /// `kuroko findings --format jsonl`, parsed.
    pub fn findings(&self) -> anyhow::Result<Vec<Value>> {
        parse_jsonl(&self.kuroko("findings", &["--format", "jsonl"])?)
    }

    /// `kuroko findings --format jsonl --lang en`, parsed: titles and signals worded in
    /// English (the default is the site's language, Japanese), for tests that assert on
    /// the words of a signal.
    pub fn findings_en(&self) -> anyhow::Result<Vec<Value>> {
        parse_jsonl(&self.kuroko("findings", &["--format", "jsonl", "--lang", "en"])?)
    }

    /// `kuroko search --format jsonl QUERY`, parsed.
    pub fn search(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        parse_jsonl(&self.kuroko("search", &["--format", "jsonl", "--limit", "10000", query])?)
    }

    /// Every session of the session log (`DIR/sessions/*.jsonl`), in file order.
    pub fn session_log(&self) -> anyhow::Result<Vec<Value>> {
        let dir = self.dir.join("sessions");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("no session log at {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            if f.extension().is_some_and(|e| e == "jsonl") {
                out.extend(parse_jsonl(&std::fs::read_to_string(&f)?)?);
            }
        }
        Ok(out)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if !self.keep
            && let Some(parent) = self.dir.parent()
        {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// One JSON value a line; blank lines ignored.
/// A session id without its store's sequence band: ids start with the segment's sequence
/// number in hex, and every store numbers its segments from its own random `seq_base` (a
/// multiple of 2^32, ring/FORMAT.md), so the same traffic imported into two data dirs gets
/// ids that differ in that band only. Compare ids across data dirs through this.
pub fn store_relative_id(id: &str) -> String {
    match id.split_once('-') {
        Some((seg, rest)) => match u64::from_str_radix(seg, 16) {
            Ok(seq) => format!("{:x}-{rest}", seq & 0xffff_ffff),
            Err(_) => id.to_string(),
        },
        None => id.to_string(),
    }
}

pub fn parse_jsonl(text: &str) -> anyhow::Result<Vec<Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("not a JSON line: {l}")))
        .collect()
}

/// One CSV line split into fields (RFC 4180 quoting).
pub fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}
