//! The console's users: name, role, Argon2id password hash, language, API token hash and
//! the failed-login state, in one JSON file (`<data>/web/users.json`, mode 0600).
//!
//! Every read-modify-write holds an exclusive `flock` on `users.lock` beside it, so the
//! server and `kuroko user …` never lose each other's changes; writes are atomic
//! (temp file, fsync, rename). The server re-reads the file per request, so a user removed
//! or a password changed on the command line takes effect at once (sessions of a removed
//! user stop working; a password change ends the user's other sessions).

use kuroko_model::config::write_atomic as write_private;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Consecutive wrong passwords after which an account locks.
pub const LOCK_AFTER_FAILURES: u32 = 5;
/// First lock period; it doubles with every further failure, up to [`MAX_LOCK_SECS`].
pub const FIRST_LOCK_SECS: i64 = 60;
/// Longest lock period (an admin can unlock at once with `kuroko user passwd`).
pub const MAX_LOCK_SECS: i64 = 3600;
/// Longest user name (it appears in the audit log and on every page).
pub const MAX_NAME_LEN: usize = 32;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search and findings; no payload downloads.
    Viewer,
    /// Search, packet/file downloads, conditions.
    Analyst,
    /// Everything, plus users and the audit log.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// `$argon2id$…` (the same hashing as the technician credential of `kuroko setup`).
    pub phc: String,
    /// `ja` or `en`.
    #[serde(default = "default_lang")]
    pub lang: String,
    /// SHA-256 (hex) of the user's API token, if one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// Consecutive failed logins.
    #[serde(default)]
    pub failed: u32,
    /// Unix seconds until which logins are refused.
    #[serde(default)]
    pub locked_until: i64,
    /// Bumped on every password change and when the user is disabled: sessions made
    /// before it end.
    #[serde(default)]
    pub generation: u64,
    /// Switched off by an admin: no login, no API token, sessions ended.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// The password is a one-time one (printed by `kuroko user add --one-time`, or set by
    /// an admin): after login only the password change answers until it is changed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub must_change: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_lang() -> String {
    "ja".into()
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    pub users: Vec<User>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged ({message}); restore it from a backup or remove it and add the users again"
    )]
    Damaged { path: PathBuf, message: String },
    #[error("no user named `{0}` (see `kuroko user list`)")]
    NoSuchUser(String),
    #[error("a user named `{0}` exists already (use `kuroko user passwd` to change the password)")]
    Exists(String),
    #[error(
        "`{0}` is not a valid user name: 1 to {MAX_NAME_LEN} characters of a-z, A-Z, 0-9, `.`, `_`, `-`"
    )]
    BadName(String),
    #[error("{0}")]
    Password(#[from] kuroko_setup::credential::CredentialError),
    #[error(
        "the last enabled admin cannot be removed, demoted or disabled; add another admin first"
    )]
    LastAdmin,
}

/// Why a login was refused (the page shows the same words for both, the audit log not).
#[derive(Debug, PartialEq, Eq)]
pub enum LoginRefused {
    /// Unknown user or wrong password.
    BadCredentials,
    /// Too many failures: refused until this unix time.
    Locked { until: i64 },
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The user file of a web directory and its lock.
#[derive(Clone, Debug)]
pub struct UserStore {
    path: PathBuf,
    lock: PathBuf,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl UserStore {
    pub fn new(web_dir: &Path) -> UserStore {
        UserStore {
            path: web_dir.join("users.json"),
            lock: web_dir.join("users.lock"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> UserError {
        UserError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The users as stored now (an absent file: no users).
    pub fn load(&self) -> Result<UserFile, UserError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| UserError::Damaged {
                path: self.path.clone(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UserFile::default()),
            Err(e) => Err(self.io(e)),
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<User>, UserError> {
        Ok(self.load()?.users.into_iter().find(|u| u.name == name))
    }

    /// Runs `f` on the users under the lock and stores the result when `f` succeeds.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut UserFile) -> Result<T, UserError>,
    ) -> Result<T, UserError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let lockfile = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| self.io(e))?;
        let _guard = nix::fcntl::Flock::lock(lockfile, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| self.io(e.into()))?;
        let mut file = self.load()?;
        let before = file.clone();
        let out = f(&mut file)?;
        if file != before {
            let mut text = serde_json::to_vec_pretty(&file).expect("users serialize");
            text.push(b'\n');
            write_private(&self.path, &text).map_err(|e| self.io(e))?;
        }
        Ok(out)
    }

    pub fn add(&self, name: &str, role: Role, password: &str, lang: &str) -> Result<(), UserError> {
        if !valid_name(name) {
            return Err(UserError::BadName(name.into()));
        }
        let phc = kuroko_setup::credential::hash(password)?;
        self.update(|f| {
            if f.users.iter().any(|u| u.name == name) {
                return Err(UserError::Exists(name.into()));
            }
            f.users.push(User {
                name: name.into(),
                role,
                phc,
                lang: if lang == "en" {
                    "en".into()
                } else {
                    "ja".into()
                },
                token_sha256: None,
                failed: 0,
                locked_until: 0,
                generation: 0,
                disabled: false,
                must_change: false,
            });
            Ok(())
        })
    }

    /// Sets a new password (clears a lockout, ends the user's sessions).
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), UserError> {
        self.set_password_as(name, password, false)
    }

    /// Sets a one-time password: the user must change it at the next login.
    pub fn set_one_time_password(&self, name: &str, password: &str) -> Result<(), UserError> {
        self.set_password_as(name, password, true)
    }

    fn set_password_as(&self, name: &str, password: &str, one_time: bool) -> Result<(), UserError> {
        let phc = kuroko_setup::credential::hash(password)?;
        self.update(|f| {
            let u = find(f, name)?;
            u.must_change = one_time;
            u.phc = phc;
            u.failed = 0;
            u.locked_until = 0;
            u.generation += 1;
            Ok(())
        })
    }

    pub fn remove(&self, name: &str) -> Result<(), UserError> {
        self.update(|f| {
            let u = find(f, name)?.clone();
            if u.role == Role::Admin && !u.disabled && is_last_admin(f, name) {
                return Err(UserError::LastAdmin);
            }
            f.users.retain(|x| x.name != name);
            Ok(())
        })
    }

    /// Changes a user's role; the last enabled admin cannot be demoted.
    pub fn set_role(&self, name: &str, role: Role) -> Result<(), UserError> {
        self.update(|f| {
            let u = find(f, name)?.clone();
            if u.role == Role::Admin && role != Role::Admin && is_last_admin(f, name) {
                return Err(UserError::LastAdmin);
            }
            find(f, name)?.role = role;
            Ok(())
        })
    }

    /// Switches a user off (ends its sessions, refuses its logins and token) or on again;
    /// the last enabled admin cannot be switched off.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), UserError> {
        self.update(|f| {
            let u = find(f, name)?.clone();
            if disabled && u.role == Role::Admin && is_last_admin(f, name) {
                return Err(UserError::LastAdmin);
            }
            let u = find(f, name)?;
            if u.disabled != disabled {
                u.disabled = disabled;
                u.generation += 1;
            }
            Ok(())
        })
    }

    pub fn set_lang(&self, name: &str, lang: &str) -> Result<(), UserError> {
        self.update(|f| {
            find(f, name)?.lang = if lang == "en" {
                "en".into()
            } else {
                "ja".into()
            };
            Ok(())
        })
    }

    /// Issues a new API token for `name` (the old one stops working); returns it.
    pub fn new_token(&self, name: &str) -> Result<String, UserError> {
        let token = crate::random_hex(32);
        let digest = sha256_hex(token.as_bytes());
        self.update(|f| {
            find(f, name)?.token_sha256 = Some(digest);
            Ok(())
        })?;
        Ok(token)
    }

    /// The user whose API token this is.
    pub fn by_token(&self, token: &str) -> Result<Option<User>, UserError> {
        let digest = sha256_hex(token.as_bytes());
        Ok(self
            .load()?
            .users
            .into_iter()
            .find(|u| !u.disabled && u.token_sha256.as_deref().is_some_and(|t| ct_eq(t, &digest))))
    }

    /// Checks a login; counts failures and locks the account after
    /// [`LOCK_AFTER_FAILURES`] of them in a row. The lock is persisted, so restarting the
    /// server does not reset it.
    pub fn check_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Result<User, LoginRefused>, UserError> {
        let Some(user) = self.get(name)? else {
            // Same cost as a real check, so timing does not tell which names exist.
            let _ = kuroko_setup::credential::verify_phc(DUMMY_PHC, password);
            return Ok(Err(LoginRefused::BadCredentials));
        };
        if user.disabled {
            let _ = kuroko_setup::credential::verify_phc(DUMMY_PHC, password);
            return Ok(Err(LoginRefused::BadCredentials));
        }
        let t = now();
        if user.locked_until > t {
            return Ok(Err(LoginRefused::Locked {
                until: user.locked_until,
            }));
        }
        let ok = kuroko_setup::credential::verify_phc(&user.phc, password).unwrap_or(false);
        self.update(|f| {
            let u = find(f, name)?;
            if ok {
                u.failed = 0;
                u.locked_until = 0;
                Ok(Ok(u.clone()))
            } else {
                u.failed = u.failed.saturating_add(1);
                if u.failed >= LOCK_AFTER_FAILURES {
                    let doublings = (u.failed - LOCK_AFTER_FAILURES).min(6);
                    let secs = (FIRST_LOCK_SECS << doublings).min(MAX_LOCK_SECS);
                    u.locked_until = t + secs;
                    Ok(Err(LoginRefused::Locked {
                        until: u.locked_until,
                    }))
                } else {
                    Ok(Err(LoginRefused::BadCredentials))
                }
            }
        })
    }
}

/// A valid Argon2id hash of a random password, checked against for unknown user names.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3xGJ8ABf1gkBIrr9l4Ovj0D/i6q8lTCoBfZ8ZHzPVD0";

/// `name` is the only enabled admin.
fn is_last_admin(f: &UserFile, name: &str) -> bool {
    !f.users
        .iter()
        .any(|x| x.name != name && x.role == Role::Admin && !x.disabled)
}

fn find<'a>(f: &'a mut UserFile, name: &str) -> Result<&'a mut User, UserError> {
    f.users
        .iter_mut()
        .find(|u| u.name == name)
        .ok_or_else(|| UserError::NoSuchUser(name.into()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Compares two secrets without an early exit.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_persists_and_password_change_clears_it() {
        let tmp = tempfile::tempdir().unwrap();
        let s = UserStore::new(tmp.path());
        s.add("ana", Role::Analyst, "correct horse", "en").unwrap();
        assert!(matches!(
            s.add("ana", Role::Viewer, "x", "ja"),
            Err(UserError::Password(_)) | Err(UserError::Exists(_))
        ));
        for i in 1..LOCK_AFTER_FAILURES {
            assert_eq!(
                s.check_login("ana", "wrong").unwrap().unwrap_err(),
                LoginRefused::BadCredentials,
                "{i}"
            );
        }
        assert!(matches!(
            s.check_login("ana", "wrong").unwrap(),
            Err(LoginRefused::Locked { .. })
        ));
        // The right password is refused while locked, also by a fresh store (persisted).
        let s2 = UserStore::new(tmp.path());
        assert!(matches!(
            s2.check_login("ana", "correct horse").unwrap(),
            Err(LoginRefused::Locked { .. })
        ));
        s2.set_password("ana", "battery staple").unwrap();
        assert!(s2.check_login("ana", "battery staple").unwrap().is_ok());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            !std::fs::read_to_string(s.path())
                .unwrap()
                .contains("battery")
        );
    }

    #[test]
    fn names_and_last_admin() {
        let tmp = tempfile::tempdir().unwrap();
        let s = UserStore::new(tmp.path());
        assert!(matches!(
            s.add("../x", Role::Admin, "correct horse", "ja"),
            Err(UserError::BadName(_))
        ));
        s.add("root", Role::Admin, "correct horse", "ja").unwrap();
        assert!(matches!(s.remove("root"), Err(UserError::LastAdmin)));
        let t = s.new_token("root").unwrap();
        assert_eq!(s.by_token(&t).unwrap().unwrap().name, "root");
        assert!(s.by_token("nope").unwrap().is_none());
    }
}
