//! Human passwords (the tool password, login accounts): argon2id with the crate's default
//! parameters (19 MiB, t=2), PHC strings. Machine-generated secrets never come here —
//! SHA-256 is right for those (see [`crate::token`]).
//!
//! A verification takes 19 MiB and tens of milliseconds of a core, and anyone on the
//! network can ask the sign-in pages for one: the server runs them a few at a time
//! ([`crate::sync::Gate`], `AppState::password_gate`).

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest password accepted for accounts and the tool password.
pub const MIN_LEN: usize = 8;

/// Why a password was refused or could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is too short: use at least {MIN_LEN} characters")]
    TooShort,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Hash `password` to an argon2id PHC string with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `phc` (false for a malformed hash too).
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_rejects() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct hors", &h));
        assert!(!verify("x", "not a hash"));
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
    }
}
