//! The commands of the setup shell.

use crate::backoff::{self, Backoff};
use crate::credential::{self, CredentialError};
use crate::lineedit::{Input, LineEditor};
use crate::system::System;
use crate::token;
use kuroko_board::{Hardware, Profile};
use kuroko_model::config::{Budget, Config, parse_net};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Wrong passwords before the shell gives up (the console then shows the login again).
pub const MAX_LOGIN_ATTEMPTS: u32 = 3;
/// Pause after a wrong password, so guessing over a serial line is slow.
pub const LOGIN_DELAY: Duration = Duration::from_secs(2);
/// Where `export` mounts the USB stick (tmpfs /run: nothing stays after a reboot).
pub const USB_MOUNTPOINT: &str = "/run/kuroko-usb";
/// Longest self-test.
pub const MAX_SELFTEST_SECS: u64 = 300;
/// Bytes written by the disk part of the self-test.
pub const SELFTEST_DISK_BYTES: usize = 64 << 20;

pub const COMMANDS: &[(&str, &str)] = &[
    ("help", "this list"),
    (
        "hardware",
        "NICs (driver, link), CPUs, NUMA nodes, disks; checks the board profile",
    ),
    ("show", "show config | show ports"),
    (
        "set",
        "set capture IF[,IF] | management IF | address CIDR [GW]|dhcp | time RFC3339 | ntp SERVER[,SERVER]|off | timezone ZONE | site NAME | internal CIDR[,CIDR] | vpn CIDR[,CIDR]|none | board NAME|FILE | recipient AGE_PUBKEY",
    ),
    (
        "disk",
        "disk prepare: create the packet store on the data disk",
    ),
    (
        "selftest",
        "selftest [SECONDS]: packets on each capture port, disk write speed, clock, the children's privileges, file modes",
    ),
    (
        "status",
        "capture health, disk use, retention, analyzer lag",
    ),
    (
        "export",
        "export [MOUNTPOINT]: findings bundle to a USB stick, encrypted to the recipient (export plaintext [MOUNTPOINT]: in clear)",
    ),
    ("password", "change the technician password"),
    (
        "factory-reset",
        "erase the captured data (overwritten), the configuration and the credential",
    ),
    (
        "decommission",
        "decommission [MOUNTPOINT]: before the box leaves the site: erase all data irrecoverably, certificate of erasure to the USB stick",
    ),
    (
        "update",
        "update FILE [allow-downgrade]: install a signed update bundle from the USB stick into the other root slot (tried at the next boot, rolled back if it does not come up) | update status",
    ),
    (
        "reboot",
        "restart the box (after `update`: boots the new slot)",
    ),
    ("exit", "log out"),
];

const SET_KEYS: &[&str] = &[
    "capture",
    "management",
    "address",
    "time",
    "ntp",
    "timezone",
    "site",
    "internal",
    "vpn",
    "board",
    "recipient",
];

/// The consultant's age public key (`set recipient`), beside the credential.
fn recipient_path(credential: &Path) -> PathBuf {
    credential.with_file_name("consultant.age")
}

/// An age X25519 recipient as `age-keygen -y` prints it: `age1` + 58 bech32 characters.
fn looks_like_age_recipient(s: &str) -> bool {
    const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    s.len() == 62 && s.starts_with("age1") && s[4..].chars().all(|c| BECH32.contains(c))
}

/// Where the shell keeps and finds things.
#[derive(Clone, Debug)]
pub struct Paths {
    pub config: PathBuf,
    pub credential: PathBuf,
    /// Root of the `/sys` tree for hardware discovery.
    pub sys: PathBuf,
}

pub struct Shell<'a, S: System, R: Read, W: Write> {
    paths: Paths,
    system: &'a mut S,
    ed: LineEditor<R, W>,
}

enum Flow {
    Continue,
    Logout,
}

/// The outcome of [`Shell::check_with_backoff`].
enum Check {
    Passed,
    /// Too many wrong entries.
    Refused,
    /// The input ended.
    Ended,
    Failed(CredentialError),
}

fn complete(typed: &str) -> Vec<String> {
    let words: Vec<&str> = typed.split_whitespace().collect();
    let trailing_space = typed.ends_with(' ');
    match (words.as_slice(), trailing_space) {
        ([], _) | ([_], false) => {
            let w = words.first().copied().unwrap_or("");
            COMMANDS
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| c.starts_with(w))
                .map(String::from)
                .collect()
        }
        (["set"], true) | (["set", _], false) => {
            let w = if trailing_space { "" } else { words[1] };
            SET_KEYS
                .iter()
                .filter(|k| k.starts_with(w))
                .map(|k| format!("set {k}"))
                .collect()
        }
        (["show"], true) | (["show", _], false) => {
            let w = if trailing_space { "" } else { words[1] };
            ["config", "ports"]
                .iter()
                .filter(|k| k.starts_with(w))
                .map(|k| format!("show {k}"))
                .collect()
        }
        _ => Vec::new(),
    }
}

impl<'a, S: System, R: Read, W: Write> Shell<'a, S, R, W> {
    pub fn new(paths: Paths, system: &'a mut S, ed: LineEditor<R, W>) -> Self {
        Shell { paths, system, ed }
    }

    fn say(&mut self, text: &str) -> io::Result<()> {
        let out = self.ed.out();
        for line in text.lines() {
            write!(out, "{line}\r\n")?;
        }
        out.flush()
    }

    fn config(&self) -> Result<Config, String> {
        if self.paths.config.exists() {
            Config::load(&self.paths.config).map_err(|e| e.to_string())
        } else {
            Ok(Config::default())
        }
    }

    /// Validates and saves a changed config atomically; says so.
    fn save(&mut self, config: &Config, what: &str) -> io::Result<bool> {
        match config.save(&self.paths.config) {
            Ok(()) => {
                self.say(&format!("saved: {what}"))?;
                Ok(true)
            }
            Err(e) => {
                self.say(&format!("not saved: {e}"))?;
                Ok(false)
            }
        }
    }

    /// Login (or, on a box without a credential, the unit's setup token and a new
    /// password), then the command loop. Returns when the technician logs out or the input
    /// ends.
    pub fn run(&mut self) -> io::Result<()> {
        self.say("Kuroko network blackbox - technician setup")?;
        if !credential::is_set(&self.paths.credential) {
            let token_path = token::path_for(&self.paths.credential);
            match token::state(&token_path) {
                token::State::Present => {}
                st => {
                    self.say(&format!(
                        "This unit's setup token ({}) is {}: the box cannot be claimed with a password. The way out is recovery, which erases the captured data and the configuration.",
                        token_path.display(),
                        if st == token::State::Missing { "missing" } else { "damaged" }
                    ))?;
                    return self.recover_damaged_credential();
                }
            }
            self.say(
                "This box is not claimed yet. Type the setup token printed on the unit's label.",
            )?;
            match self.check_with_backoff("setup token: ", "Wrong setup token.", &|t| {
                token::verify(&token_path, t)
            })? {
                Check::Passed => {}
                Check::Ended => return Ok(()),
                Check::Refused => {
                    return self.say("Too many wrong setup tokens.");
                }
                Check::Failed(e) => return self.say(&e.to_string()),
            }
            self.say("No technician password is set yet. Choose one now (at least 8 characters).")?;
            if !self.choose_password()? {
                return Ok(());
            }
        } else {
            let cred = self.paths.credential.clone();
            match self.check_with_backoff("password: ", "Wrong password.", &|pw| {
                credential::verify(&cred, pw)
            })? {
                Check::Passed => {}
                Check::Ended => return Ok(()),
                Check::Refused => return self.say("Too many wrong passwords."),
                Check::Failed(e @ CredentialError::Damaged(_)) => {
                    self.say(&e.to_string())?;
                    return self.recover_damaged_credential();
                }
                Check::Failed(e) => return self.say(&e.to_string()),
            }
        }
        self.command_loop()
    }

    /// Up to [`MAX_LOGIN_ATTEMPTS`] tries of a secret (the password, or the setup token on
    /// a box not claimed yet), each wrong one counted in the persistent back-off beside the
    /// credential (a respawn or a reboot does not start the count over).
    fn check_with_backoff(
        &mut self,
        prompt: &str,
        wrong: &str,
        verify: &dyn Fn(&str) -> Result<bool, CredentialError>,
    ) -> io::Result<Check> {
        let backoff_path = backoff::path_for(&self.paths.credential);
        for _ in 0..MAX_LOGIN_ATTEMPTS {
            let mut bo = Backoff::load(&backoff_path);
            let wait = bo.wait_secs(self.system.now());
            if wait > 0 {
                self.say(&format!(
                    "{} wrong entries: wait {wait} s for the next try.",
                    bo.failures
                ))?;
                self.system.sleep(Duration::from_secs(wait as u64));
            }
            let Input::Line(secret) = self.ed.read_line(prompt, false, &|_| Vec::new())? else {
                return Ok(Check::Ended);
            };
            match verify(&secret) {
                Ok(true) => {
                    let _ = Backoff::clear(&backoff_path);
                    return Ok(Check::Passed);
                }
                Ok(false) => {
                    if let Err(e) = bo.record_failure(&backoff_path, self.system.now()) {
                        self.say(&format!("(cannot record the wrong entry: {e})"))?;
                    }
                    self.system.sleep(LOGIN_DELAY);
                    self.say(wrong)?;
                }
                Err(e) => return Ok(Check::Failed(e)),
            }
        }
        Ok(Check::Refused)
    }

    /// Asks for a new password twice until it is set; false when the input ended.
    fn choose_password(&mut self) -> io::Result<bool> {
        loop {
            let Input::Line(a) = self
                .ed
                .read_line("new password: ", false, &|_| Vec::new())?
            else {
                return Ok(false);
            };
            let Input::Line(b) = self.ed.read_line("again: ", false, &|_| Vec::new())? else {
                return Ok(false);
            };
            if a != b {
                self.say("The two entries differ; try again.")?;
                continue;
            }
            match credential::set(&self.paths.credential, &a) {
                Ok(()) => {
                    self.say("Password set.")?;
                    return Ok(true);
                }
                Err(e) => self.say(&format!("{e}"))?,
            }
        }
    }

    /// The documented way out of a damaged credential (no lockout, no way around it to
    /// the data): erase the captured data, the configuration and the credential, then set
    /// a new password.
    fn recover_damaged_credential(&mut self) -> io::Result<()> {
        self.say(
            "Recovery erases every captured packet, session and finding on the data disk, the configuration and the technician password; then a new password is set.",
        )?;
        let Input::Line(confirm) = self
            .ed
            .read_line("type ERASE to recover: ", true, &|_| Vec::new())?
        else {
            return Ok(());
        };
        if confirm.trim() != "ERASE" {
            return self.say("Nothing erased; the serial login stays closed until recovery.");
        }
        let data = PathBuf::from(self.data_dir());
        if let Err(e) = self.system.erase_data(&data) {
            return self.say(&format!("recovery stopped, nothing else erased: {e}"));
        }
        for p in [
            self.paths.config.clone(),
            self.paths.credential.clone(),
            backoff::path_for(&self.paths.credential),
        ] {
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != io::ErrorKind::NotFound
            {
                return self.say(&format!("cannot remove {}: {e}", p.display()));
            }
        }
        self.say("Erased. Choose the new technician password (at least 8 characters).")?;
        if self.choose_password()? {
            self.command_loop()
        } else {
            Ok(())
        }
    }

    fn command_loop(&mut self) -> io::Result<()> {
        self.say("Type `help` for the commands; Tab completes.")?;
        loop {
            match self.ed.read_line("kuroko> ", true, &complete)? {
                Input::Eof => return Ok(()),
                Input::Idle => {
                    self.say("Logged out: idle.")?;
                    return Ok(());
                }
                Input::Interrupted => continue,
                Input::Line(line) => {
                    let line = line.trim().to_string();
                    if line.is_empty() {
                        continue;
                    }
                    if let Flow::Logout = self.command(&line)? {
                        self.say("Logged out.")?;
                        return Ok(());
                    }
                }
            }
        }
    }

    fn command(&mut self, line: &str) -> io::Result<Flow> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["help"] | ["?"] => {
                let text: String = COMMANDS
                    .iter()
                    .map(|(c, h)| format!("{c:<14}{h}\n"))
                    .collect();
                self.say(&text)?;
            }
            ["hardware"] => self.hardware()?,
            ["show", "config"] => match self.config() {
                Ok(c) => {
                    let text = toml::to_string_pretty(&c).unwrap_or_default();
                    self.say(&text)?;
                }
                Err(e) => self.say(&e)?,
            },
            ["show", "ports"] => self.ports()?,
            ["set", key, rest @ ..] => self.set(key, rest)?,
            ["disk", "prepare"] => self.disk_prepare()?,
            ["selftest"] => self.selftest(10)?,
            ["selftest", secs] => match secs.parse::<u64>() {
                Ok(s) if (1..=MAX_SELFTEST_SECS).contains(&s) => self.selftest(s)?,
                _ => self.say(&format!("selftest takes 1 to {MAX_SELFTEST_SECS} seconds"))?,
            },
            ["status"] => {
                let data = self.data_dir();
                self.kuroko(&["status", "--data", &data])?
            }
            ["findings"] => {
                let data = self.data_dir();
                self.kuroko(&["findings", "--data", &data])?
            }
            ["export"] => self.export(None, false)?,
            ["export", "plaintext"] => self.export(None, true)?,
            ["export", "plaintext", to] => self.export(Some(to), true)?,
            ["export", to] => self.export(Some(to), false)?,
            ["password"] => self.password()?,
            ["factory-reset"] => self.factory_reset()?,
            ["decommission"] => return self.decommission(None),
            ["decommission", to] => return self.decommission(Some(to)),
            ["update", "status"] => {
                let p = self.update_paths();
                self.say(crate::update::status(&p).trim_end())?
            }
            ["update", file] => self.update(file, false)?,
            ["update", file, "allow-downgrade"] => self.update(file, true)?,
            ["reboot"] => match self.system.reboot() {
                Ok(_) => {
                    self.say("Rebooting.")?;
                    return Ok(Flow::Logout);
                }
                Err(e) => self.say(&format!("cannot reboot: {e}"))?,
            },
            ["exit"] | ["logout"] | ["quit"] => return Ok(Flow::Logout),
            _ => self.say(&format!("unknown command `{line}`; type `help`"))?,
        }
        Ok(Flow::Continue)
    }

    /// The partition of the USB stick plugged in (`/dev/sdb1`, or the whole device when it
    /// has no partition table): the first removable disk of `/sys/block` with a medium that
    /// is not a floppy (`fd*`: the qemu board and many PCs have a controller, and the kernel
    /// calls its drive removable) or an optical drive (`sr*`).
    fn usb_stick(&self) -> Option<PathBuf> {
        let hw = kuroko_board::Hardware::from_sys(&self.paths.sys);
        let disk = hw.disks.iter().find(|d| {
            d.removable
                && d.size_bytes > 0
                && !d.name.starts_with("fd")
                && !d.name.starts_with("sr")
        })?;
        let part = format!("{}1", disk.name);
        let has_part = self
            .paths
            .sys
            .join("block")
            .join(&disk.name)
            .join(&part)
            .exists();
        Some(PathBuf::from("/dev").join(if has_part { &part } else { &disk.name }))
    }

    /// `export` without a MOUNTPOINT: the bundle goes to the stick plugged in
    /// ([`Self::on_usb_stick`]). With no removable disk, a stick mounted by other means is
    /// looked for (`kuroko export --usb`).
    fn export(&mut self, to: Option<&str>, plaintext: bool) -> io::Result<()> {
        if to.is_none() && self.usb_stick().is_some() {
            return self
                .on_usb_stick(|shell, dir| shell.export_to(Some(dir), plaintext))
                .map(|_| ());
        }
        self.export_to(to, plaintext)
    }

    /// Runs `work` with the stick plugged in mounted on [`USB_MOUNTPOINT`] (nosuid, nodev,
    /// noexec: `hardening::USB_MOUNT_OPTIONS`), then syncs and unmounts it, also when the
    /// work failed: the one way the shell writes to a stick (`export`, `decommission`).
    /// Returns `None` when there is no stick or it cannot be mounted (said on the terminal),
    /// else what `work` returned.
    fn on_usb_stick<T>(
        &mut self,
        work: impl FnOnce(&mut Self, &str) -> io::Result<T>,
    ) -> io::Result<Option<T>> {
        let Some(dev) = self.usb_stick() else {
            self.say("no USB stick is plugged in")?;
            return Ok(None);
        };
        let dir = Path::new(USB_MOUNTPOINT);
        if let Err(e) = self
            .system
            .mount(&dev, dir, kuroko_board::hardening::USB_MOUNT_OPTIONS)
        {
            self.say(&format!(
                "cannot mount the USB stick {}: {e}",
                dev.display()
            ))?;
            return Ok(None);
        }
        self.say(&format!(
            "USB stick {} mounted on {USB_MOUNTPOINT}",
            dev.display()
        ))?;
        let done = work(self, USB_MOUNTPOINT);
        match self.system.unmount(dir) {
            Ok(_) => self.say("USB stick synced and unmounted: it can be removed.")?,
            Err(e) => self.say(&format!(
                "cannot unmount the USB stick ({e}): do not remove it yet; power the box off before removing it"
            ))?,
        }
        done.map(Some)
    }

    fn update_paths(&self) -> crate::update::UpdatePaths {
        crate::update::UpdatePaths::appliance(
            self.paths.config.parent().unwrap_or(Path::new("/config")),
        )
    }

    /// `update FILE`: the bundle FILE on the USB stick (a name on the stick, not a path) is
    /// verified whole, then written to the slot that is not running
    /// ([`crate::update::apply`]); the outcome goes to the update log.
    fn update(&mut self, file: &str, allow_downgrade: bool) -> io::Result<()> {
        if file.is_empty() || file.contains('/') || file.starts_with('.') {
            return self.say(
                "update takes the bundle's file name on the USB stick (e.g. kuroko-update-2.kub)",
            );
        }
        let p = self.update_paths();
        let now = self.system.now();
        let policy = crate::update::Policy { allow_downgrade };
        let file = file.to_string();
        let done = self.on_usb_stick(|shell, dir| {
            let path = Path::new(dir).join(&file);
            // The console as it goes; a failed write to it does not stop the update.
            let r = crate::update::apply(&p, &path, policy, &mut |l| {
                let _ = shell.say(l);
            });
            Ok(r)
        })?;
        let Some(result) = done else {
            return Ok(());
        };
        match result {
            Ok(slot) => {
                crate::update::log(
                    &p,
                    now,
                    &format!("update {file}: written to slot {slot}, on trial from the next boot"),
                );
                self.say(&format!(
                    "Update written to slot {slot} and verified: `reboot` to start it (rolled back by itself if it does not come up)."
                ))
            }
            Err(e) => {
                crate::update::log(&p, now, &format!("update {file}: refused: {e}"));
                self.say(&format!("update refused: {e}"))
            }
        }
    }

    /// The bundle for the stick: encrypted to the recipient set at setup; in clear only
    /// when asked for by name (`export plaintext`), which `kuroko export` logs.
    fn export_to(&mut self, to: Option<&str>, plaintext: bool) -> io::Result<()> {
        let data = self.data_dir();
        let mut args = vec!["export".to_string(), "--data".into(), data];
        match to {
            Some(t) => args.extend(["--to".to_string(), t.to_string()]),
            None => args.push("--usb".into()),
        }
        if plaintext {
            args.push("--plaintext".into());
        } else {
            let key = std::fs::read_to_string(recipient_path(&self.paths.credential))
                .unwrap_or_default()
                .trim()
                .to_string();
            if key.is_empty() {
                return self.say(
                    "No recipient set: `set recipient age1…` with the consultant's age public key first (or `export plaintext` for a bundle in clear).",
                );
            }
            args.extend(["--recipient".to_string(), key]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.kuroko(&refs)
    }

    fn data_dir(&self) -> String {
        self.config()
            .map(|c| c.storage.data_dir.display().to_string())
            .unwrap_or_else(|_| Config::default().storage.data_dir.display().to_string())
    }

    fn kuroko(&mut self, args: &[&str]) -> io::Result<()> {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if self.paths.config.exists() {
            a.push("--config".into());
            a.push(self.paths.config.display().to_string());
        }
        match self.system.kuroko(&a) {
            Ok(out) => self.say(out.trim_end()),
            Err(e) => self.say(&e),
        }
    }

    /// The management port: the config's, else the board profile's.
    fn management_port(&self, config: &Config) -> Option<String> {
        let m = config.management.interface.trim();
        if !m.is_empty() {
            return Some(m.to_string());
        }
        match self.profile(config) {
            Some(Ok(p)) => p.management_nic().map(|n| n.name.clone()),
            _ => None,
        }
    }

    fn profile(&self, config: &Config) -> Option<Result<Profile, String>> {
        crate::boot::load_profile(&config.management.board)
    }

    fn hardware(&mut self) -> io::Result<()> {
        let hw = Hardware::from_sys(&self.paths.sys);
        let mut text = String::from("NICs:\n");
        for n in &hw.nics {
            text.push_str(&format!(
                "  {:<12} {:<12} {:<18} {}{}\n",
                n.name,
                n.driver.as_deref().unwrap_or("virtual"),
                n.mac.as_deref().unwrap_or("-"),
                match n.carrier {
                    Some(true) => "link up",
                    Some(false) => "NO LINK",
                    None => n.operstate.as_str(),
                },
                n.speed_mbps
                    .map(|s| format!(" {s} Mb/s"))
                    .unwrap_or_default()
            ));
        }
        text.push_str(&format!(
            "CPUs: {}\n",
            hw.cpus
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ));
        for (node, cpus) in &hw.numa {
            text.push_str(&format!(
                "  NUMA node {node}: {}\n",
                cpus.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        text.push_str("Disks:\n");
        for d in &hw.disks {
            text.push_str(&format!(
                "  {:<10} {:>10} {}{}\n",
                d.name,
                kuroko_model::units::format_bytes(d.size_bytes),
                if d.removable { "removable " } else { "" },
                d.model.as_deref().unwrap_or("")
            ));
        }
        let config = self.config().unwrap_or_default();
        match self.profile(&config) {
            None => text.push_str("Board profile: none set (set board NAME)\n"),
            Some(Err(e)) => text.push_str(&format!("Board profile: {e}\n")),
            Some(Ok(p)) => {
                let found = kuroko_board::check(&p, &hw);
                if found.is_empty() {
                    text.push_str(&format!(
                        "Board profile {}: matches this machine\n",
                        p.board.name
                    ));
                } else {
                    text.push_str(&format!(
                        "Board profile {}: does not match:\n",
                        p.board.name
                    ));
                    for m in found {
                        text.push_str(&format!(
                            "  {} {}\n",
                            if m.fatal { "ERROR" } else { "note" },
                            m.message
                        ));
                    }
                }
            }
        }
        self.say(&text)
    }

    fn ports(&mut self) -> io::Result<()> {
        let c = self.config().unwrap_or_default();
        let hw = Hardware::from_sys(&self.paths.sys);
        let routes = self.system.default_routes();
        let mut text = String::new();
        for n in &hw.nics {
            let role = if c.capture.interfaces.contains(&n.name) {
                "capture"
            } else if c.management.interface == n.name {
                "management"
            } else {
                "-"
            };
            let link = match n.carrier {
                Some(true) => "link up",
                Some(false) => "NO LINK",
                None => n.operstate.as_str(),
            };
            text.push_str(&format!("  {:<12} {:<11} {link}\n", n.name, role));
            // What the port holds on the network: a capture port must hold nothing (no
            // address, no route), whatever the mirrored wire sends it.
            let addrs = self.system.addresses(&n.name);
            let mut held = if addrs.is_empty() {
                "no address".to_string()
            } else {
                addrs.join(" ")
            };
            for r in routes.iter().filter(|r| r.iface == n.name) {
                match r.via {
                    Some(gw) => held.push_str(&format!(", default route via {gw}")),
                    None => held.push_str(", default route"),
                }
            }
            text.push_str(&format!("  {:<12} {held}\n", ""));
        }
        self.say(&text)
    }

    fn set(&mut self, key: &str, args: &[&str]) -> io::Result<()> {
        let mut c = match self.config() {
            Ok(c) => c,
            Err(e) => return self.say(&format!("the current config cannot be read: {e}")),
        };
        let value = args.join(" ");
        if value.is_empty() {
            return self.say(&format!("set {key} needs a value; type `help`"));
        }
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let hw = Hardware::from_sys(&self.paths.sys);
        match key {
            "capture" => {
                let ifs = list(&value);
                if let Some(missing) = ifs.iter().find(|i| hw.nic(i).is_none()) {
                    return self.say(&format!(
                        "no NIC named {missing}; this machine has: {}",
                        hw.describe_nics()
                    ));
                }
                let mgmt = self.management_port(&c);
                if let Some(m) = mgmt.filter(|m| ifs.contains(m)) {
                    return self.say(&format!(
                        "{m} is the management port: capture on it would silence it (its address, ARP and everything it sends go off); choose another port or `set management` first"
                    ));
                }
                c.capture.interfaces = ifs;
                if self.save(&c, "capture ports")? {
                    self.say(
                        "Capture uses the new ports when it restarts (kuroko run restarts it).",
                    )?;
                }
            }
            "management" => {
                if hw.nic(&value).is_none() {
                    return self.say(&format!(
                        "no NIC named {value}; this machine has: {}",
                        hw.describe_nics()
                    ));
                }
                c.management.interface = value;
                self.save(&c, "management port")?;
            }
            "address" => {
                let cidr = args[0].to_string();
                let gw = args.get(1).map(|g| g.to_string());
                let dhcp = cidr.eq_ignore_ascii_case(crate::boot::DHCP);
                if !dhcp && (!cidr.contains('/') || parse_net(&cidr).is_err()) {
                    return self.say(&format!(
                        "`{cidr}` is not an address with its prefix (e.g. 192.0.2.10/24), or `dhcp`"
                    ));
                }
                if let Some(g) = gw
                    .as_deref()
                    .filter(|g| g.parse::<std::net::IpAddr>().is_err())
                {
                    return self.say(&format!("`{g}` is not a gateway address (e.g. 192.0.2.1)"));
                }
                c.management.address = if dhcp {
                    crate::boot::DHCP.to_string()
                } else {
                    cidr.clone()
                };
                c.management.gateway = gw.clone().unwrap_or_default();
                if c.management.interface.is_empty() {
                    return self.say("set management IF first");
                }
                if dhcp {
                    if self.save(&c, "management address (DHCP)")? {
                        self.say("DHCP on the management port starts at the next boot.")?;
                    }
                } else if self.save(&c, "management address")? {
                    let iface = c.management.interface.clone();
                    match self.system.set_address(&iface, &cidr, gw.as_deref()) {
                        Ok(done) => self.say(&format!("applied: {done}"))?,
                        Err(e) => self.say(&format!("saved, but not applied: {e}"))?,
                    }
                }
            }
            "time" => match kuroko_model::Timestamp::parse_rfc3339(&value) {
                Ok(t) => {
                    let secs = t.nanos() / 1_000_000_000;
                    match self.system.set_clock(secs) {
                        Ok(_) => self.say(&format!("clock set to {}", t.to_rfc3339()))?,
                        Err(e) => self.say(&format!("clock not set: {e}"))?,
                    }
                }
                Err(e) => self.say(&e)?,
            },
            "ntp" => {
                c.management.ntp = if value == "off" {
                    Vec::new()
                } else {
                    list(&value)
                };
                if self.save(&c, "NTP servers")? {
                    let servers = c.management.ntp.clone();
                    match self.system.set_ntp(&servers) {
                        Ok(done) => self.say(&format!("applied: {done}"))?,
                        Err(e) => self.say(&format!("saved, but not applied: {e}"))?,
                    }
                }
            }
            "timezone" => {
                c.site.timezone = value;
                self.save(&c, "time zone (detections and reports use it from now on)")?;
            }
            "site" => {
                c.site.name = value;
                self.save(&c, "site name")?;
            }
            "internal" => {
                let nets = list(&value);
                if let Some(bad) = nets.iter().find(|n| parse_net(n).is_err()) {
                    return self.say(&format!(
                        "`{bad}` is not an address or CIDR (e.g. 10.0.0.0/8)"
                    ));
                }
                c.site.internal_networks = nets;
                self.save(&c, "internal networks")?;
            }
            "vpn" => {
                c.site.vpn_pools = if value == "none" {
                    Vec::new()
                } else {
                    list(&value)
                };
                self.save(&c, "VPN pools")?;
            }
            "board" => {
                c.management.board = value;
                match self.profile(&c) {
                    Some(Err(e)) => self.say(&e)?,
                    _ => {
                        self.save(&c, "board profile")?;
                    }
                }
            }
            "recipient" => {
                if !looks_like_age_recipient(&value) {
                    return self.say(&format!(
                        "`{value}` is not an age public key (age1… , 62 characters; `age-keygen -y key.txt` prints it)"
                    ));
                }
                let p = recipient_path(&self.paths.credential);
                match kuroko_model::config::write_atomic(&p, format!("{value}\n").as_bytes()) {
                    Ok(()) => self.say("Recipient saved: bundles are encrypted to it.")?,
                    Err(e) => self.say(&format!("not saved: {}: {e}", p.display()))?,
                }
            }
            other => self.say(&format!(
                "cannot set `{other}`; one of: {}",
                SET_KEYS.join(", ")
            ))?,
        }
        Ok(())
    }

    fn disk_prepare(&mut self) -> io::Result<()> {
        let c = match self.config() {
            Ok(c) => c,
            Err(e) => return self.say(&e),
        };
        let data = c.storage.data_dir.clone();
        if let Err(e) = std::fs::create_dir_all(&data) {
            return self.say(&format!("cannot create {}: {e}", data.display()));
        }
        let budget = match c.storage.budget() {
            Ok(Budget::Bytes(b)) => b,
            Ok(Budget::Percent(p)) => match kuroko_ring::filesystem_size(&data) {
                Ok(fs) => (fs as f64 * p / 100.0) as u64,
                Err(e) => {
                    return self.say(&format!(
                        "cannot size the file system of {}: {e}",
                        data.display()
                    ));
                }
            },
            Err(e) => return self.say(&e),
        };
        let opts = kuroko_ring::StoreOptions {
            budget,
            segment_size: c.storage.segment_size_bytes().unwrap_or(64 << 20),
            preallocate: kuroko_ring::Preallocate::All,
            ..Default::default()
        };
        self.say(&format!(
            "Preparing the packet store in {} ({} budget)...",
            data.display(),
            kuroko_model::units::format_bytes(budget)
        ))?;
        match kuroko_ring::SegmentWriter::open(&data, &opts).and_then(|w| w.close()) {
            Ok(_) => self.say("Packet store ready."),
            Err(e) => self.say(&format!("disk prepare failed: {e}")),
        }
    }

    fn selftest(&mut self, secs: u64) -> io::Result<()> {
        let c = self.config().unwrap_or_default();
        let mut failed = 0;
        // 1. Packets on every capture port.
        if c.capture.interfaces.is_empty() {
            self.say("FAIL capture: no capture port set (set capture IF)")?;
            failed += 1;
        }
        let before: Vec<Option<u64>> = c
            .capture
            .interfaces
            .iter()
            .map(|i| self.system.rx_packets(i))
            .collect();
        if !c.capture.interfaces.is_empty() {
            self.say(&format!(
                "Counting packets on {} for {secs} s...",
                c.capture.interfaces.join(", ")
            ))?;
            self.system.sleep(Duration::from_secs(secs));
        }
        for (i, b) in c.capture.interfaces.clone().iter().zip(before) {
            match (b, self.system.rx_packets(i)) {
                (Some(b), Some(a)) if a > b => {
                    self.say(&format!("ok   {i}: {} packets in {secs} s", a - b))?
                }
                (Some(_), Some(_)) => {
                    failed += 1;
                    self.say(&format!(
                        "FAIL {i}: no packets in {secs} s; check the mirror port and its cable"
                    ))?
                }
                _ => {
                    failed += 1;
                    self.say(&format!(
                        "FAIL {i}: cannot read its counters (is it present?)"
                    ))?
                }
            }
        }
        // 2. Disk write speed where the packets go.
        let data = c.storage.data_dir.clone();
        match disk_speed(&data) {
            Ok(mbs) => self.say(&format!(
                "ok   disk: {mbs:.0} MB/s written and synced in {}",
                data.display()
            ))?,
            Err(e) => {
                failed += 1;
                self.say(&format!("FAIL disk: {e}"))?
            }
        }
        // 3. The clock: packets are stamped with it.
        let now = self.system.now();
        let year = kuroko_model::Timestamp(now.saturating_mul(1_000_000_000)).to_rfc3339();
        if (1_704_067_200..4_102_444_800).contains(&now) {
            self.say(&format!("ok   clock: {year}"))?;
        } else {
            failed += 1;
            self.say(&format!(
                "FAIL clock: {year} is not plausible; set time or ntp"
            ))?;
        }
        // 4. What the running children hold (kuroko run drops them to its user).
        let children = self.system.kuroko_children();
        if !children.iter().any(|c| c.role == "capture")
            || !children.iter().any(|c| c.role == "analyze")
        {
            failed += 1;
            self.say("FAIL privilege: capture and the analyzer are not both running")?;
        }
        for c in &children {
            match c.judge() {
                Ok(line) => self.say(&format!("ok   privilege {line}"))?,
                Err(line) => {
                    failed += 1;
                    self.say(&format!("FAIL privilege {line}"))?
                }
            }
        }
        // 5. Who else could read what the box recorded and its configuration.
        let config_dir = self
            .paths
            .config
            .parent()
            .unwrap_or(Path::new("/config"))
            .to_path_buf();
        let m = crate::privcheck::modes(&[data.as_path(), config_dir.as_path()]);
        let roots = format!("{} and {}", data.display(), config_dir.display());
        if m.open.is_empty() {
            self.say(&format!(
                "ok   file modes: {} files and directories under {roots}, none open to others{}",
                m.checked,
                if m.truncated {
                    " (stopped at the limit)"
                } else {
                    ""
                }
            ))?;
        } else {
            failed += 1;
            let shown: Vec<String> = m
                .open
                .iter()
                .take(5)
                .map(|(p, mode)| format!("{} {mode:04o}", p.display()))
                .collect();
            self.say(&format!(
                "FAIL file modes: {} of {} entries under {roots} are open to others: {}{}",
                m.open.len(),
                m.checked,
                shown.join(", "),
                if m.open.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ))?;
        }
        self.say(&if failed == 0 {
            "Self-test passed.".to_string()
        } else {
            format!("Self-test: {failed} problem(s).")
        })
    }

    fn password(&mut self) -> io::Result<()> {
        let Input::Line(old) = self
            .ed
            .read_line("current password: ", false, &|_| Vec::new())?
        else {
            return Ok(());
        };
        if !credential::verify(&self.paths.credential, &old).unwrap_or(false) {
            return self.say("Wrong password; unchanged.");
        }
        let Input::Line(a) = self
            .ed
            .read_line("new password: ", false, &|_| Vec::new())?
        else {
            return Ok(());
        };
        let Input::Line(b) = self.ed.read_line("again: ", false, &|_| Vec::new())? else {
            return Ok(());
        };
        if a != b {
            return self.say("The two entries differ; unchanged.");
        }
        match credential::set(&self.paths.credential, &a) {
            Ok(()) => self.say("Password changed."),
            Err(e) => self.say(&e.to_string()),
        }
    }

    /// Before the box leaves the site: `kuroko decommission` (every data file overwritten,
    /// then removed; configuration and credential too), its progress on this terminal, the
    /// certificate of erasure on the stick. The shell logs out afterwards: there is no
    /// credential left.
    fn decommission(&mut self, to: Option<&str>) -> io::Result<Flow> {
        self.say(
            "Decommission erases irrecoverably every captured packet, session, file, mail and finding on the data disk, the configuration and the technician password, and writes a certificate of erasure to the USB stick.",
        )?;
        let Input::Line(confirm) =
            self.ed
                .read_line("type DECOMMISSION to erase: ", true, &|_| Vec::new())?
        else {
            return Ok(Flow::Continue);
        };
        if confirm.trim() != "DECOMMISSION" {
            self.say("Cancelled; nothing erased.")?;
            return Ok(Flow::Continue);
        }
        let args = vec![
            "decommission".to_string(),
            "--data".into(),
            self.data_dir(),
            "--config".into(),
            self.paths.config.display().to_string(),
            "--credential".into(),
            self.paths.credential.display().to_string(),
            "--stop".into(),
            "--yes".into(),
        ];
        // The certificate goes to the mount point named, else to the stick plugged in
        // (mounted for it, unmounted after), else to a stick mounted by other means.
        let run = |shell: &mut Self, to: Option<&str>| -> io::Result<bool> {
            let mut args = args.clone();
            match to {
                Some(t) => args.extend(["--to".to_string(), t.to_string()]),
                None => args.push("--usb".into()),
            }
            match shell.system.kuroko_live(&args) {
                Ok(()) => Ok(true),
                Err(e) => {
                    shell.say(&format!("decommission stopped: {e}"))?;
                    Ok(false)
                }
            }
        };
        let done = if to.is_none() && self.usb_stick().is_some() {
            self.on_usb_stick(|shell, dir| run(shell, Some(dir)))?
                .unwrap_or(false)
        } else {
            run(self, to)?
        };
        if !done {
            return Ok(Flow::Continue);
        }
        self.say("Decommissioned: no customer data is left on this box. Power it off.")?;
        Ok(Flow::Logout)
    }

    fn factory_reset(&mut self) -> io::Result<()> {
        self.say(
            "This erases every captured packet, session and finding (overwritten, not only deleted), the configuration and the technician password.",
        )?;
        let Input::Line(confirm) = self
            .ed
            .read_line("type RESET to confirm: ", true, &|_| Vec::new())?
        else {
            return Ok(());
        };
        if confirm.trim() != "RESET" {
            return self.say("Cancelled.");
        }
        let data = PathBuf::from(self.data_dir());
        if let Err(e) = self.system.erase_data(&data) {
            return self.say(&format!("factory reset stopped, nothing else erased: {e}"));
        }
        for p in [
            self.paths.config.clone(),
            self.paths.credential.clone(),
            backoff::path_for(&self.paths.credential),
        ] {
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != io::ErrorKind::NotFound
            {
                return self.say(&format!("cannot remove {}: {e}", p.display()));
            }
        }
        self.say("Factory reset done. Log in again to set a new password.")
    }
}

/// Writes and syncs [`SELFTEST_DISK_BYTES`] in `dir`; MB/s.
fn disk_speed(dir: &Path) -> Result<f64, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(".selftest");
    let buf = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let result = (|| -> io::Result<()> {
        let mut f = std::fs::File::create(&path)?;
        for _ in 0..SELFTEST_DISK_BYTES / buf.len() {
            f.write_all(&buf)?;
        }
        f.sync_all()
    })();
    let secs = start.elapsed().as_secs_f64().max(1e-6);
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(SELFTEST_DISK_BYTES as f64 / 1e6 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion() {
        assert_eq!(complete("har"), vec!["hardware"]);
        assert_eq!(complete("set t"), vec!["set time", "set timezone"]);
        assert_eq!(complete("show c"), vec!["show config"]);
        assert!(complete("set time 2026").is_empty());
    }
}
