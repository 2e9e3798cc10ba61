//! Passwords: the NIST SP 800-63B policy and Argon2id hashing.
//!
//! Policy follows SP 800-63B-4 §3.1.1.2 for passwords used as a single factor: at least 15
//! characters, at least 64 accepted, no composition rules, and a blocklist of commonly used and
//! context-specific values. Hashing uses Argon2id with the OWASP Password Storage Cheat Sheet
//! parameters (19 MiB, 2 iterations, 1 lane). Hashing is CPU-bound: the server runs it off the
//! async runtime. [`PasswordHasher::verify_absent`] burns the same work for an unknown user, so a
//! login cannot tell "no such user" from "wrong password" by its timing.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::SecureRandom;

/// Minimum length in characters (SP 800-63B-4, single-factor passwords).
pub const MIN_CHARS: usize = 15;
/// Maximum length in characters; long enough for any passphrase, short enough to bound work.
pub const MAX_CHARS: usize = 256;

/// Commonly used passwords of at least [`MIN_CHARS`] characters, compared case-insensitively.
/// Shorter common passwords are already refused by length.
pub(crate) const COMMON: &[&str] = &[
    "123456789012345",
    "1234567890123456",
    "12345678901234567890",
    "111111111111111",
    "000000000000000",
    "passwordpassword",
    "password1234567",
    "password12345678",
    "password123456789",
    "qwertyuiopasdfg",
    "qwertyuiopasdfghjkl",
    "qwertyuiopasdfghjklzxcvbnm",
    "1q2w3e4r5t6y7u8i",
    "1qaz2wsx3edc4rfv",
    "zaq12wsxcde34rfv",
    "iloveyouiloveyou",
    "letmeinletmein1",
    "abcdefghijklmnop",
    "abc123abc123abc",
    "correcthorsebatterystaple",
    "correct horse battery staple",
    "trustno1trustno1",
    "welcome123456789",
    "changemechangeme",
    "administrator123",
    "adminadminadmin",
    "superman12345678",
    "football12345678",
    "baseball12345678",
    "monkey1234567890",
    "dragon1234567890",
    "sunshine12345678",
    "princess12345678",
    "starwars12345678",
    "whatever12345678",
    "qazwsxedcrfvtgb",
    "asdfghjklasdfgh",
    "zxcvbnmzxcvbnm1",
    "p@ssw0rdp@ssw0rd",
    "passw0rdpassw0rd",
];

/// Why a proposed password is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("password must be at least {MIN_CHARS} characters")]
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    #[error("password must be at most {MAX_CHARS} characters")]
    TooLong,
    /// On the list of commonly used passwords.
    #[error("password is too common")]
    Common,
    /// Contains the username, or is one character repeated.
    #[error("password is too easy to guess from context")]
    Contextual,
}

/// Checks a new password against the policy (never against composition rules).
///
/// # Errors
/// The first rule the password breaks.
pub fn check_policy(username: &str, password: &str) -> Result<(), PasswordPolicyError> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordPolicyError::TooLong);
    }
    let lower = password.to_lowercase();
    if COMMON.iter().any(|c| *c == lower) {
        return Err(PasswordPolicyError::Common);
    }
    let mut it = password.chars();
    let first = it.next();
    if it.all(|c| Some(c) == first) {
        return Err(PasswordPolicyError::Contextual);
    }
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(PasswordPolicyError::Contextual);
    }
    Ok(())
}

/// Hashing failed (bad parameters, a corrupt stored hash, or the random generator).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Argon2id with fixed parameters, plus a dummy hash for unknown users.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    dummy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", self.argon.params())
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// OWASP parameters: Argon2id, m = 19 MiB, t = 2, p = 1.
    ///
    /// # Errors
    /// If the dummy hash cannot be made (random generator failure).
    pub fn owasp() -> Result<Self, HashError> {
        Self::with_cost(19 * 1024, 2)
    }

    /// Custom memory (KiB) and iteration cost. Lower costs are for tests only.
    ///
    /// # Errors
    /// If the parameters are invalid or the random generator fails.
    pub fn with_cost(memory_kib: u32, iterations: u32) -> Result<Self, HashError> {
        let params =
            Params::new(memory_kib, iterations, 1, None).map_err(|e| HashError(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut me = Self {
            argon,
            dummy: String::new(),
        };
        let mut filler = [0u8; 24];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut filler)
            .map_err(|_| HashError("random generator failure".into()))?;
        me.dummy = me.hash(&String::from_utf8_lossy(&filler))?;
        Ok(me)
    }

    /// Hashes a password into a PHC string with a fresh 128-bit salt.
    ///
    /// # Errors
    /// If the random generator or Argon2 fails.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| HashError("random generator failure".into()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Whether `password` matches the stored PHC hash. A corrupt hash never matches.
    #[must_use]
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        PasswordHash::new(phc)
            .is_ok_and(|h| self.argon.verify_password(password.as_bytes(), &h).is_ok())
    }

    /// Does the work of [`PasswordHasher::verify`] for a user that does not exist, and fails.
    pub fn verify_absent(&self, password: &str) {
        let _ = self.verify(password, &self.dummy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_is_length_and_blocklist_not_composition() {
        assert_eq!(
            check_policy("alice", "short"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(
            check_policy("alice", &"ab".repeat(200)),
            Err(PasswordPolicyError::TooLong)
        );
        assert_eq!(
            check_policy("alice", "PasswordPassword"),
            Err(PasswordPolicyError::Common)
        );
        assert_eq!(
            check_policy("alice", "aaaaaaaaaaaaaaaaaaaa"),
            Err(PasswordPolicyError::Contextual)
        );
        assert_eq!(
            check_policy("alice", "my name is alice ok"),
            Err(PasswordPolicyError::Contextual)
        );
        // all lower case, no digits or symbols: fine, composition rules are not used.
        assert_eq!(check_policy("alice", "plum tractor velvet ocean"), Ok(()));
        // characters, not bytes, are counted.
        assert_eq!(check_policy("alice", "ééééééééééééééf"), Ok(()));
    }

    #[test]
    fn hash_and_verify() {
        let h = PasswordHasher::with_cost(64, 1).unwrap();
        let phc = h.hash("plum tractor velvet ocean").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("plum tractor velvet ocean", &phc));
        assert!(!h.verify("plum tractor velvet oceaN", &phc));
        assert!(!h.verify("anything", "not a hash"));
        h.verify_absent("anything");
    }

    #[test]
    fn owasp_parameters() {
        let h = PasswordHasher::owasp().unwrap();
        let phc = h.hash("plum tractor velvet ocean").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    }
}
