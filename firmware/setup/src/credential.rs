//! The technician credential: an Argon2id hash in a file readable by root only.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::io::Read;
use std::path::Path;

/// Shortest password accepted (the serial port is physical access, but not nothing).
pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the password must have at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("cannot read or write the credential file {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the technician credential {0} is damaged, so no password can be checked; the way out is recovery, which erases the captured data (type ERASE below)"
    )]
    Damaged(std::path::PathBuf),
}

fn salt() -> Result<SaltString, CredentialError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| CredentialError::Io {
            path: "/dev/urandom".into(),
            source,
        })?;
    SaltString::encode_b64(&bytes).map_err(|e| CredentialError::Hash(e.to_string()))
}

/// The PHC string of `password` (`$argon2id$v=19$…`).
pub fn hash(password: &str) -> Result<String, CredentialError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(CredentialError::TooShort);
    }
    Argon2::default()
        .hash_password(password.as_bytes(), &salt()?)
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::Hash(e.to_string()))
}

/// Stores the hash of `password` at `path` (mode 0600, atomically).
pub fn set(path: &Path, password: &str) -> Result<(), CredentialError> {
    use std::os::unix::fs::PermissionsExt;
    let phc = hash(password)?;
    let io = |source| CredentialError::Io {
        path: path.to_path_buf(),
        source,
    };
    kuroko_model::config::write_atomic(path, format!("{phc}\n").as_bytes()).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)
}

pub fn is_set(path: &Path) -> bool {
    path.exists()
}

/// Whether `password` matches the stored credential.
pub fn verify(path: &Path, password: &str) -> Result<bool, CredentialError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    verify_phc(text.trim(), password).ok_or_else(|| CredentialError::Damaged(path.to_path_buf()))
}

/// Whether `password` matches the PHC string `phc` (from [`hash`]); `None` if `phc` is not a
/// valid hash. Shared with the web console's user file, so both hash alike.
pub fn verify_phc(phc: &str, password: &str) -> Option<bool> {
    let parsed = PasswordHash::new(phc).ok()?;
    Some(
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_verify_and_no_clear_text() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("credential");
        assert!(matches!(set(&p, "short"), Err(CredentialError::TooShort)));
        set(&p, "correct horse").unwrap();
        let stored = std::fs::read_to_string(&p).unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains("correct horse"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(verify(&p, "correct horse").unwrap());
        assert!(!verify(&p, "correct horsE").unwrap());
        std::fs::write(&p, "garbage").unwrap();
        assert!(matches!(verify(&p, "x"), Err(CredentialError::Damaged(_))));
    }
}
