//! Administrator credentials: Argon2id password hashes in PHC string form
//! (`$argon2id$v=19$m=...,t=...,p=...$SALT$HASH`), never plain text.
//!
//! `appliance.toml` stores the PHC strings; [`hash_password`] (and the `acm-hash-password`
//! binary) makes them.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use password_hash::{rand_core::OsRng, PasswordHash, SaltString};

/// Why a password could not be hashed or a credential store built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The hashing parameters or salt were refused by Argon2.
    #[error("cannot hash password: {0}")]
    Hash(String),
    /// A stored hash is not a valid PHC string.
    #[error("user {user}: stored password hash is not a valid PHC string: {reason}")]
    BadHash {
        /// Which user.
        user: String,
        /// What the parser said.
        reason: String,
    },
    /// The same user name appears twice.
    #[error("user {0} is defined twice")]
    DuplicateUser(String),
}

/// Argon2 cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
}

impl Cost {
    /// The argon2 crate's recommended defaults (19 MiB, 2 passes).
    pub const DEFAULT: Cost = Cost { memory_kib: 19 * 1024, iterations: 2 };
    /// Cheap parameters for tests only.
    pub const TEST: Cost = Cost { memory_kib: 64, iterations: 1 };
}

/// Hashes a password with a fresh random salt and default cost.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    hash_with_salt_string(password, &salt, Cost::DEFAULT)
}

/// Hashes a password with a given salt (at least 8 bytes) and cost: deterministic.
pub fn hash_password_with(password: &str, salt: &[u8], cost: Cost) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    hash_with_salt_string(password, &salt, cost)
}

fn hash_with_salt_string(password: &str, salt: &SaltString, cost: Cost) -> Result<String, AuthError> {
    let params =
        argon2::Params::new(cost.memory_kib, cost.iterations, 1, None).map_err(|e| AuthError::Hash(e.to_string()))?;
    let a = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    a.hash_password(password.as_bytes(), salt).map(|h| h.to_string()).map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// The users who may log in, with their password hashes.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    users: Vec<(String, String)>,
    /// PHC hash of the enable password (`None`: `enable` asks for none).
    pub enable_secret: Option<String>,
}

impl Credentials {
    /// Builds the store, checking every hash parses and names are unique.
    pub fn new(
        users: impl IntoIterator<Item = (String, String)>,
        enable_secret: Option<String>,
    ) -> Result<Credentials, AuthError> {
        let mut out = Credentials { users: Vec::new(), enable_secret };
        for (user, hash) in users {
            if let Err(e) = PasswordHash::new(&hash) {
                return Err(AuthError::BadHash { user, reason: e.to_string() });
            }
            if out.users.iter().any(|(u, _)| *u == user) {
                return Err(AuthError::DuplicateUser(user));
            }
            out.users.push((user, hash));
        }
        if let Some(h) = &out.enable_secret {
            if let Err(e) = PasswordHash::new(h) {
                return Err(AuthError::BadHash { user: "enable".into(), reason: e.to_string() });
            }
        }
        Ok(out)
    }

    /// Whether `user` exists and `password` is theirs.
    /// An unknown user costs one hash verification too, so response time does not tell which
    /// user names exist.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.iter().find(|(u, _)| u == user) {
            Some((_, h)) => verify_password(h, password),
            None => {
                if let Some((_, h)) = self.users.first() {
                    let _ = verify_password(h, password);
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password_with("acm-lab", b"saltsalt", Cost::TEST).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("acm-lab"));
        assert!(verify_password(&h, "acm-lab"));
        assert!(!verify_password(&h, "acm-lab "));
        assert!(!verify_password("garbage", "acm-lab"));
        let h2 = hash_password_with("acm-lab", b"othersalt", Cost::TEST).unwrap();
        assert_ne!(h, h2, "salted");
    }

    #[test]
    fn credentials() {
        let h = hash_password_with("pw", b"saltsalt", Cost::TEST).unwrap();
        let c = Credentials::new([("admin".to_string(), h.clone())], None).unwrap();
        assert!(c.verify("admin", "pw"));
        assert!(!c.verify("admin", "px"));
        assert!(!c.verify("root", "pw"));
        assert!(Credentials::new([("a".to_string(), "nope".to_string())], None).is_err());
        assert!(matches!(
            Credentials::new([("a".into(), h.clone()), ("a".into(), h)], None),
            Err(AuthError::DuplicateUser(_))
        ));
    }
}
