//! The per-unit setup token: what it takes to claim a fresh or reset box at the serial
//! port (set the first technician password).
//!
//! Why: without it, whoever reaches the serial port first on a box without a technician
//! credential (new, after a factory reset, or with `technician.hash` deleted offline) sets
//! the password and can export the previous customer's findings. The token is made when
//! the unit is provisioned (`kuroko setup --provision-token LABEL`; `cargo xtask image`
//! does it for the qemu board and writes the label file beside the image), printed on the
//! unit's label, and kept on the config disk only as an Argon2id hash (`setup.token`
//! beside the credential, mode 0600): reading the config disk does not reveal it.
//!
//! Format: 20 characters of Crockford's base32 (100 bits), shown as four groups of five
//! (`K7QX2-M9TVA-4HJPR-WC3ZN`). What the technician types is normalised first (case,
//! dashes and spaces, O→0, I/L→1), so a label read aloud over the phone still works.
//!
//! A box whose token file is missing or damaged cannot be claimed with a password: the
//! documented recovery erases the captured data and the configuration first
//! (`shell::Shell::recover`). Factory reset, recovery and decommission keep the token
//! (it belongs to the unit, like its serial number).

use crate::credential::{self, CredentialError};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a token (5 bits each: 100 bits).
pub const TOKEN_CHARS: usize = 20;

/// The token file beside the credential.
pub fn path_for(credential: &Path) -> PathBuf {
    credential.with_file_name("setup.token")
}

/// A new random token, grouped for the label.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; TOKEN_CHARS];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect();
    Ok(chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// What the technician typed, in the canonical form that is hashed.
pub fn normalise(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            u => u,
        })
        .collect()
}

/// Stores the hash of `token` at `path` (mode 0600, atomically).
pub fn store(path: &Path, token: &str) -> Result<(), CredentialError> {
    credential::set(path, &normalise(token))
}

/// Makes a new token for the unit: its hash to `path`, the token itself returned (for the
/// label). An existing token is replaced.
pub fn provision(path: &Path) -> Result<String, CredentialError> {
    let token = generate().map_err(|source| CredentialError::Io {
        path: "/dev/urandom".into(),
        source,
    })?;
    store(path, &token)?;
    Ok(token)
}

/// Whether the token file holds a usable hash.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    Present,
    Missing,
    Damaged,
}

pub fn state(path: &Path) -> State {
    match std::fs::read_to_string(path) {
        Ok(t) if credential::verify_phc(t.trim(), "").is_some() => State::Present,
        Ok(_) => State::Damaged,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::Missing,
        Err(_) => State::Damaged,
    }
}

/// Whether `typed` is the unit's token.
pub fn verify(path: &Path, typed: &str) -> Result<bool, CredentialError> {
    credential::verify(path, &normalise(typed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_as_typed_from_the_label_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("setup.token");
        assert_eq!(state(&p), State::Missing);
        let t = provision(&p).unwrap();
        assert_eq!(t.len(), TOKEN_CHARS + 3);
        assert_eq!(state(&p), State::Present);
        assert!(verify(&p, &t).unwrap());
        assert!(verify(&p, &t.to_lowercase().replace('-', " ")).unwrap());
        assert!(!verify(&p, "K7QX2-M9TVA-4HJPR-WC3ZN").unwrap());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            !text.contains(&t.replace('-', "")),
            "the token is stored in clear"
        );
        std::fs::write(&p, "garbage\n").unwrap();
        assert_eq!(state(&p), State::Damaged);
    }

    #[test]
    fn typing_normalises_look_alike_characters() {
        assert_eq!(normalise("ko7q-il 2"), "K07Q112");
    }
}
