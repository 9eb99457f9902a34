//! `kuroko user add|passwd|list|remove|token`: the web console's users (`kuroko-web`'s user
//! file in `<data>/web/users.json`). Passwords are read from standard input (one line; not
//! echoed on a terminal), never from the command line where `ps` would show them. Every
//! change is written to the console's audit log as done by the local user.

use super::DataArgs;
use kuroko_web::users::{Role, UserStore};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Add a user (password from standard input).
    Add {
        name: String,
        #[command(flatten)]
        data: DataArgs,
        /// admin (users, audit log), analyst (search, downloads, conditions), viewer
        /// (search and findings, no downloads).
        #[arg(long, value_parser = ["admin", "analyst", "viewer"])]
        role: String,
        /// Page language.
        #[arg(long, default_value = "ja", value_parser = ["ja", "en"])]
        lang: String,
        /// Generate a one-time password, print it on standard output (instead of reading
        /// one from standard input); the user must change it at the first login.
        #[arg(long)]
        one_time: bool,
    },
    /// Set a new password (also unlocks a locked account and ends its sessions).
    Passwd {
        name: String,
        #[command(flatten)]
        data: DataArgs,
        /// Generate a one-time password and print it (changed at the next login).
        #[arg(long)]
        one_time: bool,
    },
    /// List the users.
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user.
    Remove {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Issue a new API token for scripts (`Authorization: Bearer TOKEN`); the old one stops
    /// working.
    Token {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// A one-time password: 16 characters of an alphabet without look-alikes (about 90 bits).
fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPRSTUVWXYZ23456789";
    kuroko_web::random_bytes(16)
        .iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

fn read_password(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let saved = if tty {
        eprint!("{prompt}: ");
        let _ = std::io::stderr().flush();
        let t = nix::sys::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &t {
            let mut quiet = t.clone();
            quiet
                .local_flags
                .remove(nix::sys::termios::LocalFlags::ECHO);
            let _ =
                nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet);
        }
        t
    } else {
        None
    };
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    r?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        anyhow::bail!("no password given on standard input");
    }
    Ok(pw)
}

fn store(data: &DataArgs) -> UserStore {
    UserStore::new(&kuroko_web::web_dir(&data.data))
}

/// The local user a command-line change is recorded for (`sudo`'s caller when there is one).
pub fn local_user() -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".into());
    format!("cli:{who}")
}

/// Writes a command-line change to the web console's audit log (the one trail of every
/// change to users and conditions, whichever way it was made).
pub fn record(data: &DataArgs, action: &str, detail: serde_json::Value) -> anyhow::Result<()> {
    let actor = kuroko_web::audit::Actor {
        user: &local_user(),
        addr: "local".into(),
    };
    kuroko_web::audit::AuditLog::new(&kuroko_web::web_dir(&data.data))
        .append(&actor, action, detail)
        .map_err(|e| {
            anyhow::anyhow!("the change was made but the audit log cannot be written: {e}")
        })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Add {
            name,
            data,
            role,
            lang,
            one_time,
        } => {
            let role = Role::parse(&role).expect("clap checked the role");
            let pw = if one_time {
                one_time_password()
            } else {
                read_password("password")?
            };
            let users = store(&data);
            users.add(&name, role, &pw, &lang)?;
            if one_time {
                users.set_one_time_password(&name, &pw)?;
                println!("{pw}");
            }
            record(
                &data,
                "user_add",
                json!({"user": name, "role": role.as_str()}),
            )?;
            eprintln!("user `{name}` added ({})", role.as_str());
        }
        Action::Passwd {
            name,
            data,
            one_time,
        } => {
            if one_time {
                let pw = one_time_password();
                store(&data).set_one_time_password(&name, &pw)?;
                println!("{pw}");
            } else {
                let pw = read_password("new password")?;
                store(&data).set_password(&name, &pw)?;
            }
            record(&data, "user_passwd", json!({"user": name}))?;
            eprintln!("password of `{name}` changed");
        }
        Action::Remove { name, data } => {
            store(&data).remove(&name)?;
            record(&data, "user_remove", json!({"user": name}))?;
            eprintln!("user `{name}` removed");
        }
        Action::Token { name, data } => {
            let token = store(&data).new_token(&name)?;
            record(&data, "user_token", json!({"user": name}))?;
            println!("{token}");
        }
        Action::List { data, json } => {
            let now = chrono::Utc::now().timestamp();
            for u in store(&data).load()?.users {
                let locked = u.locked_until > now;
                if json {
                    println!(
                        "{}",
                        json!({"name": u.name, "role": u.role.as_str(), "lang": u.lang, "locked": locked, "failed_logins": u.failed, "token": u.token_sha256.is_some()})
                    );
                } else {
                    println!(
                        "{:<20} {:<8} {:<3}{}",
                        u.name,
                        u.role.as_str(),
                        u.lang,
                        if locked { "  LOCKED" } else { "" }
                    );
                }
            }
        }
    }
    Ok(())
}
