//! A dovecot (IMAP and POP3) of the test's own: config, runtime, state, log and one
//! mailbox under a directory of the site's work dir, started with `dovecot -F -c CONF`
//! (never the system service). One user with a plain password in a passwd-file; mails
//! are delivered by writing them into the Maildir's `new/`.

use anyhow::{Context, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The uid dovecot's mail processes run as (`nobody`): not root, above `first_valid_uid`.
pub const MAIL_UID: u32 = 65534;

/// What the instance serves.
pub struct DovecotConfig<'a> {
    /// Address to listen on (IMAP 143, POP3 110).
    pub listen: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    /// Certificate and key paths for STARTTLS/STLS; none: `ssl = no`.
    pub tls: Option<(&'a str, &'a str)>,
    /// Mails in the user's Maildir `new/`: (file name, the whole message).
    pub mails: &'a [(&'a str, &'a [u8])],
}

/// Writes the config and the mailbox under `dir`; returns the config path.
pub fn write(dir: &Path, c: &DovecotConfig<'_>) -> anyhow::Result<PathBuf> {
    let home = dir.join("home").join(c.user).join("Maildir");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(home.join(d))?;
    }
    for (name, mail) in c.mails {
        std::fs::write(home.join("new").join(name), mail)?;
    }
    std::fs::write(
        dir.join("passwd"),
        format!("{}:{{PLAIN}}{}\n", c.user, c.password),
    )?;
    let status = Command::new("chown")
        .args(["-R", &format!("{MAIL_UID}:{MAIL_UID}")])
        .arg(dir.join("home"))
        .status()
        .context("cannot run chown")?;
    ensure!(status.success(), "chown of the mailbox failed");
    std::fs::create_dir_all(dir.join("state"))?;
    let d = dir.to_str().context("utf-8 path")?;
    let ssl = match c.tls {
        Some((cert, key)) => format!("ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"),
        None => "ssl = no\n".to_string(),
    };
    let conf = dir.join("dovecot.conf");
    std::fs::write(
        &conf,
        format!(
            "protocols = imap pop3\n\
             listen = {ip}\n\
             base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             {ssl}\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             mail_location = maildir:~/Maildir\n\
             pop3_uidl_format = %08Xu%08Xv\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={MAIL_UID} gid={MAIL_UID} home={d}/home/%u\n}}\n",
            ip = c.listen
        ),
    )?;
    Ok(conf)
}

/// The instance's log (for a failing test's message).
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
}

/// Starts the instance `conf` (from [`write`]) in the foreground on `host`, as a site
/// server (stopped by pid when dropped), once IMAP answers on port 143.
pub fn serve(
    site: &crate::site::Site,
    host: crate::site::Host,
    conf: &Path,
) -> anyhow::Result<crate::proc::Server> {
    let conf = conf.to_str().context("utf-8 path")?;
    site.serve(
        host,
        "dovecot",
        "tcp",
        143,
        &["/usr/sbin/dovecot", "-F", "-c", conf],
    )
}
