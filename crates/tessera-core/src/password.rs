//! Passwords: the NIST SP 800-63B policy and Argon2id hashing.
//!
//! Policy follows SP 800-63B-4 §3.1.1.2 for passwords used as a single factor: at least 15
//! characters, at least 64 accepted, no composition rules, and a check against commonly used,
//! breached and context-specific values: the zxcvbn estimator (its frequency lists of leaked
//! passwords, words, names and keyboard patterns, with the username as context) must put the
//! password out of reach of an online attacker. Hashing uses Argon2id with the OWASP Password
//! Storage Cheat Sheet parameters (19 MiB, 2 iterations, 1 lane). Hashing is CPU-bound: the
//! server runs it off the async runtime. [`PasswordHasher::verify_absent`] burns the same work
//! for an unknown user, so a login cannot tell "no such user" from "wrong password" by its
//! timing.
//!
//! Every password is NFKC-normalised ([`normalise`]) before it is counted, checked, hashed or
//! verified (SP 800-63B §5.1.1.2), so the same password typed on keyboards or input methods
//! that compose characters differently (`é` as U+00E9 or as `e` + U+0301) is the same password.

use std::borrow::Cow;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::SecureRandom;
use unicode_normalization::{IsNormalized, UnicodeNormalization as _, is_nfkc_quick};
use zeroize::Zeroizing;

/// Minimum length in characters (SP 800-63B-4, single-factor passwords).
pub const MIN_CHARS: usize = 15;
/// Maximum length in characters; long enough for any passphrase, short enough to bound work.
pub const MAX_CHARS: usize = 256;

/// Most characters accepted *before* normalisation. NFKC may shorten a string (a base letter
/// and its combining mark become one character) or lengthen it (a ligature becomes letters),
/// so [`MAX_CHARS`] is enforced on the normalised form; this looser bound, checked first,
/// only keeps the normalisation work itself bounded.
const MAX_RAW_CHARS: usize = 4 * MAX_CHARS;

/// The lowest zxcvbn score accepted: 3 is "safely unguessable: moderate protection from an
/// offline slow-hash scenario" (more than 10^8 guesses), well past any online attack the login
/// throttle lets through, and reached by ordinary passphrases of three or four words.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// How many characters (of the NFKC form) the guessability estimate looks at. zxcvbn's work
/// grows faster than the square of the length (every substring is looked up in every list,
/// once per plausible l33t substitution): measured here with optimisations, 100 characters
/// (its own cap) cost up to 0.5 s, 64 at most about 0.1 s (a string dense in l33t symbols;
/// 0.5 to 2 ms for an ordinary passphrase), against about 40 ms for one OWASP Argon2 hash.
/// Judging a prefix can only refuse more: a password whose first 64 characters are easy to
/// guess is refused whatever follows, and 64 hard-to-guess characters are strong enough.
pub const ESTIMATED_CHARS: usize = 64;

/// Context-specific words, given to zxcvbn as if the user had typed them elsewhere (it ranks
/// them as the likeliest dictionary words): the service's own name (SP 800-63B names "the name
/// of the service" among values to refuse), and famous passphrases that are in every cracking
/// list but that zxcvbn's frequency lists, built from single words and leaked passwords, score
/// as strong.
const CONTEXT: &[&str] = &[
    "tessera",
    "correcthorsebatterystaple",
    "correct horse battery staple",
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
    /// Easy to guess: a commonly used or breached password, a common word or name by itself,
    /// a keyboard pattern, a repetition or sequence. The text is the estimator's reason, fit
    /// to show to the user.
    #[error("password is too easy to guess: {0}")]
    Guessable(String),
    /// Contains the username, or is one character repeated.
    #[error("password is too easy to guess from context")]
    Contextual,
}

/// The NFKC normal form of `password`, borrowed when it is already normalised (the common
/// case: ASCII always is).
///
/// Every use of a password in this module goes through here, so the policy's count, the hash
/// and the verification all see the same characters.
#[must_use]
pub fn normalise(password: &str) -> Cow<'_, str> {
    // The quick check answers most strings (all ASCII) without allocating; `Maybe` needs the
    // full normalisation to tell.
    if is_nfkc_quick(password.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(password);
    }
    let normal: String = password.nfkc().collect();
    if normal == password {
        Cow::Borrowed(password)
    } else {
        Cow::Owned(normal)
    }
}

/// Checks a new password against the policy (never against composition rules).
///
/// Lengths are counted in characters of the NFKC form (what is hashed). The guessability
/// estimate looks at the first [`ESTIMATED_CHARS`] characters only: about a millisecond for
/// an ordinary passphrase, about 0.1 s at worst (see there). The server runs this check in
/// its bounded hashing queue, like a hash.
///
/// # Errors
/// The first rule the password breaks.
pub fn check_policy(username: &str, password: &str) -> Result<(), PasswordPolicyError> {
    // Bound the work of normalising before doing it.
    if password.chars().count() > MAX_RAW_CHARS {
        return Err(PasswordPolicyError::TooLong);
    }
    let password = Zeroizing::new(normalise(password).into_owned());
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordPolicyError::TooLong);
    }
    let mut it = password.chars();
    let first = it.next();
    if it.all(|c| Some(c) == first) {
        return Err(PasswordPolicyError::Contextual);
    }
    let lower = Zeroizing::new(password.to_lowercase());
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(PasswordPolicyError::Contextual);
    }
    let mut context = CONTEXT.to_vec();
    if !username.is_empty() {
        context.push(username);
    }
    let judged: Zeroizing<String> =
        Zeroizing::new(password.chars().take(ESTIMATED_CHARS).collect());
    let estimate = zxcvbn::zxcvbn(&judged, &context);
    if estimate.score() < MIN_SCORE {
        return Err(PasswordPolicyError::Guessable(reason(&estimate)));
    }
    Ok(())
}

/// Why zxcvbn scored a password low, in words for the user: its warning ("This is a very
/// common password."), else its first suggestion, else a general hint.
fn reason(estimate: &zxcvbn::Entropy) -> String {
    let feedback = estimate.feedback();
    feedback
        .and_then(zxcvbn::feedback::Feedback::warning)
        .map(|w| w.to_string())
        .or_else(|| {
            feedback
                .and_then(|f| f.suggestions().first())
                .map(ToString::to_string)
        })
        .unwrap_or_else(|| "Add another word or two. Uncommon words are better.".to_owned())
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

    /// Hashes the NFKC form of a password ([`normalise`]) into a PHC string with a fresh
    /// 128-bit salt.
    ///
    /// # Errors
    /// If the random generator or Argon2 fails.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| HashError("random generator failure".into()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
        let password = normalise(password);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Whether `password` matches the stored PHC hash. A corrupt hash never matches.
    ///
    /// The NFKC form ([`normalise`]) is tried first. Hashes made before passwords were
    /// normalised hold the raw bytes as typed, so when normalising changed the password and
    /// the NFKC form does not match, the raw form is tried too: an existing user whose password
    /// NFKC changes can still log in as they always typed it. That second Argon2 run is paid
    /// only by such passwords (almost all are already NFKC, ASCII always) and only on a miss.
    #[must_use]
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let matches = |p: &str| self.argon.verify_password(p.as_bytes(), &hash).is_ok();
        match normalise(password) {
            Cow::Borrowed(same) => matches(same),
            Cow::Owned(normal) => matches(&Zeroizing::new(normal)) || matches(password),
        }
    }

    /// Does the work of [`PasswordHasher::verify`] for a user that does not exist, and fails:
    /// the same one or two Argon2 runs a wrong password for a real user costs.
    pub fn verify_absent(&self, password: &str) {
        let _ = self.verify(password, &self.dummy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_is_length_and_guessability_not_composition() {
        assert_eq!(
            check_policy("alice", "short"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(
            check_policy("alice", &"ab".repeat(200)),
            Err(PasswordPolicyError::TooLong)
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
        assert_eq!(check_policy("alice", "ééèçàùâêîôûëïüÿ"), Ok(()));
    }

    #[test]
    fn common_and_patterned_passwords_are_refused_with_a_reason() {
        for weak in [
            "passwordpassword",
            "PasswordPassword",
            "123456789012345",
            "qwertyuiopasdfgh",
            "iloveyouiloveyou",
            "correcthorsebatterystaple",
            "correct horse battery staple",
            "tesseratesseratessera",
            "abcdefghijklmnop",
            "1q2w3e4r5t6y7u8i",
            "p@ssw0rdp@ssw0rd",
            "football12345678",
        ] {
            match check_policy("alice", weak) {
                Err(PasswordPolicyError::Guessable(why)) => {
                    assert!(!why.is_empty(), "{weak}");
                    let shown = PasswordPolicyError::Guessable(why).to_string();
                    assert!(
                        shown.starts_with("password is too easy to guess: "),
                        "{shown}"
                    );
                }
                other => panic!("{weak}: {other:?}"),
            }
        }
    }

    #[test]
    fn ordinary_passphrases_pass() {
        for good in [
            "plum tractor velvet ocean",
            "violet tugboat anagram 1987",
            "purple monkey dishwasher 42",
            "another fine passphrase",
            "Zürich tram at 7 o'clock",
        ] {
            assert_eq!(check_policy("alice", good), Ok(()), "{good}");
        }
    }

    #[test]
    fn the_username_counts_as_context() {
        // Refused as a substring, and the estimator is told the name too.
        assert_eq!(
            check_policy("tractor", "plum tractor velvet ocean"),
            Err(PasswordPolicyError::Contextual)
        );
    }

    #[test]
    fn length_is_counted_after_nfkc() {
        // 15 base letters each followed by a combining acute: 30 characters typed, 15 after
        // NFKC composes them.
        let decomposed: String = "pumaswingclerky"
            .chars()
            .flat_map(|c| [c, '\u{301}'])
            .collect();
        assert_eq!(decomposed.chars().count(), 30);
        assert_eq!(normalise(&decomposed).chars().count(), 15);
        assert_eq!(check_policy("alice", &decomposed), Ok(()));
        // 14 letters + combining marks: 28 characters typed, too short once normalised.
        let short: String = "pumaswingclerk"
            .chars()
            .flat_map(|c| [c, '\u{301}'])
            .collect();
        assert_eq!(
            check_policy("alice", &short),
            Err(PasswordPolicyError::TooShort)
        );
        // A ligature grows: U+FB01 "ﬁ" is "fi"; 130 of them are 260 characters, over the cap.
        assert_eq!(
            check_policy("alice", &"\u{FB01}".repeat(130)),
            Err(PasswordPolicyError::TooLong)
        );
        // Normalisation work is bounded before it is done.
        assert_eq!(
            check_policy("alice", &"e\u{301}".repeat(600)),
            Err(PasswordPolicyError::TooLong)
        );
    }

    #[test]
    fn normalise_borrows_what_is_already_nfkc() {
        assert!(matches!(normalise("plain ascii"), Cow::Borrowed(_)));
        assert!(matches!(normalise("caf\u{e9}"), Cow::Borrowed(_)));
        assert_eq!(normalise("cafe\u{301}"), "caf\u{e9}");
        // Compatibility forms fold too: full-width letters, ligatures.
        assert_eq!(normalise("\u{FF21}\u{FB01}"), "Afi");
    }

    #[test]
    fn composed_and_decomposed_forms_are_one_password() {
        let h = PasswordHasher::with_cost(64, 1).unwrap();
        let composed = "caf\u{e9} tractor velvet ocean";
        let decomposed = "cafe\u{301} tractor velvet ocean";
        assert_ne!(composed, decomposed);
        for (set, typed) in [
            (composed, decomposed),
            (decomposed, composed),
            (composed, composed),
            (decomposed, decomposed),
        ] {
            let phc = h.hash(set).unwrap();
            assert!(h.verify(typed, &phc), "set {set:?}, typed {typed:?}");
            assert!(!h.verify("cafe tractor velvet ocean", &phc));
        }
    }

    #[test]
    fn a_legacy_hash_of_the_raw_form_still_verifies() {
        let h = PasswordHasher::with_cost(64, 1).unwrap();
        let decomposed = "cafe\u{301} tractor velvet ocean";
        // What `hash` did before normalisation: Argon2 over the bytes as typed.
        let legacy = {
            let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
            h.argon
                .hash_password(decomposed.as_bytes(), &salt)
                .unwrap()
                .to_string()
        };
        assert!(h.verify(decomposed, &legacy));
        // Only the raw form as it was hashed: the composed form never was.
        assert!(!h.verify("caf\u{e9} tractor velvet ocean", &legacy));
        assert!(!h.verify("cafe tractor velvet ocean", &legacy));
    }

    #[test]
    #[ignore = "a measurement, not a check: cargo test -p tessera-core -- --ignored --nocapture"]
    fn measure_policy_cost() {
        let inputs = [
            "plum tractor velvet ocean".to_owned(),
            "passwordpassword".to_owned(),
            "x9!".repeat(85),
            "violet tugboat anagram 1987 ".repeat(9),
            "e\u{301}".repeat(512),
            "4@8(6310!|7+$5%2".repeat(16),
        ];
        for input in &inputs {
            let start = std::time::Instant::now();
            let rounds = 20u32;
            for _ in 0..rounds {
                let _ = check_policy("alice", input);
            }
            let each = start.elapsed() / rounds;
            println!("{} chars: {each:?} per check", input.chars().count());
        }
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
