//! Guessable HMAC secrets: does a commonly used secret verify an `HS256`/`HS384`/`HS512` JWT?
//!
//! Design decision: the list is a small seed file (`weak_secrets.txt`, written for Tessera from
//! well-known defaults, no copied list) plus Tessera's own common-password blocklist, expanded
//! in code (common words × case × digits 0–99) one candidate at a time into a reused buffer.
//! Nothing is precomputed or allocated per candidate; each costs one HMAC. An offline tool
//! holding the token already has nothing to hide from timing, but `hmac::verify` is used
//! anyway because it is the one comparison aws-lc-rs offers.

use std::fmt::Write as _;
use std::ops::ControlFlow;

use aws_lc_rs::hmac;

use crate::jose::b64;

/// The seed file, compiled in so the binary needs no data file at run time.
const SEEDS: &str = include_str!("weak_secrets.txt");
/// The section whose lines are expanded with case and digit variants.
const WORD_SECTION: &str = "common word";
/// Digits appended to common words: 0 to this, inclusive.
const MAX_SUFFIX: u8 = 99;

/// Where a guessed secret comes from, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A section of the seed file, by name (e.g. "documented example", "common password").
    Seed(&'static str),
    /// Tessera's own blocklist of common passwords.
    PasswordBlocklist,
    /// A common word, as written, Capitalised or UPPER-CASE.
    CommonWord,
    /// A common word (lower-case or Capitalised) with digits 0–99 appended.
    CommonWordDigits,
}

impl Source {
    /// Human description for reports.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Seed(name) => name,
            Self::PasswordBlocklist => "common password (Tessera's password blocklist)",
            Self::CommonWord => "common word",
            Self::CommonWordDigits => "common word + digits",
        }
    }
}

/// A secret from the list that verifies the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeakSecret {
    /// The secret, exactly as it verified.
    pub secret: String,
    /// Where it comes from.
    pub source: Source,
}

/// Capitalises the first character (ASCII words only; others are left as they are).
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_uppercase().to_string() + chars.as_str()
    })
}

/// Offers every candidate, in list order, to `visit` until it breaks.
fn for_each_candidate(mut visit: impl FnMut(&str, Source) -> ControlFlow<()>) -> ControlFlow<()> {
    for common in COMMON_PASSWORDS {
        visit(common, Source::PasswordBlocklist)?;
    }
    let mut section = "";
    let mut buffer = String::new();
    for line in SEEDS.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name;
            continue;
        }
        if section != WORD_SECTION {
            visit(line, Source::Seed(section))?;
            continue;
        }
        let capital = capitalised(line);
        for form in [line, capital.as_str(), line.to_ascii_uppercase().as_str()] {
            visit(form, Source::CommonWord)?;
        }
        for form in [line, capital.as_str()] {
            for digits in 0..=MAX_SUFFIX {
                buffer.clear();
                // Writing to a String cannot fail.
                let _ = write!(buffer, "{form}{digits}");
                visit(&buffer, Source::CommonWordDigits)?;
            }
        }
    }
    ControlFlow::Continue(())
}

/// How many candidates [`find`] tries at most.
#[must_use]
pub fn candidate_count() -> usize {
    let mut count = 0usize;
    let _ = for_each_candidate(|_, _| {
        count += 1;
        ControlFlow::Continue(())
    });
    count
}

/// Tries every candidate as the HMAC secret of the compact JWS `token` whose header says
/// `alg` (`HS256`, `HS384` or `HS512`; anything else, or a signature of the wrong length,
/// gives `None` at once). Returns the first secret that verifies.
#[must_use]
pub fn find(alg: &str, token: &str) -> Option<WeakSecret> {
    let (algorithm, tag_len) = match alg {
        "HS256" => (hmac::HMAC_SHA256, 32),
        "HS384" => (hmac::HMAC_SHA384, 48),
        "HS512" => (hmac::HMAC_SHA512, 64),
        _ => return None,
    };
    let (signing_input, signature) = token.rsplit_once('.')?;
    let tag = b64::decode(signature).ok()?;
    if tag.len() != tag_len {
        return None;
    }
    let mut found = None;
    let _ = for_each_candidate(|secret, source| {
        let key = hmac::Key::new(algorithm, secret.as_bytes());
        if hmac::verify(&key, signing_input.as_bytes(), &tag).is_ok() {
            found = Some(WeakSecret {
                secret: secret.to_owned(),
                source,
            });
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// Commonly used long passwords (the password policy's former blocklist; its guessability
/// estimate now refuses these by pattern), tried as HMAC secrets too.
const COMMON_PASSWORDS: &[&str] = &[
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(alg: hmac::Algorithm, name: &str, secret: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(format!(r#"{{"alg":"{name}","typ":"JWT"}}"#).as_bytes()),
            b64::encode(br#"{"sub":"alice"}"#)
        );
        let tag = hmac::sign(&hmac::Key::new(alg, secret), input.as_bytes());
        format!("{input}.{}", b64::encode(tag.as_ref()))
    }

    #[test]
    fn finds_documented_defaults_words_with_digits_and_blocklisted_passwords() {
        for (secret, source) in [
            ("secret", Source::Seed("documented example")),
            ("your-256-bit-secret", Source::Seed("documented example")),
            ("keyboard cat", Source::Seed("documented example")),
            ("123456", Source::Seed("common password")),
            ("Dragon", Source::CommonWord),
            ("TOKEN", Source::CommonWord),
            ("admin99", Source::CommonWordDigits),
            ("Summer7", Source::CommonWordDigits),
            ("correcthorsebatterystaple", Source::PasswordBlocklist),
        ] {
            let token = hs(hmac::HMAC_SHA256, "HS256", secret.as_bytes());
            let found = find("HS256", &token).unwrap();
            assert_eq!(found.secret, secret);
            assert_eq!(found.source, source, "{secret}");
        }
        let token = hs(hmac::HMAC_SHA512, "HS512", b"your-512-bit-secret");
        assert_eq!(find("HS512", &token).unwrap().secret, "your-512-bit-secret");
        let token = hs(hmac::HMAC_SHA384, "HS384", b"changeme");
        assert_eq!(find("HS384", &token).unwrap().secret, "changeme");
    }

    #[test]
    fn a_random_key_or_a_mismatched_alg_finds_nothing() {
        let mut random = [0u8; 32];
        aws_lc_rs::rand::fill(&mut random).unwrap();
        assert_eq!(
            find("HS256", &hs(hmac::HMAC_SHA256, "HS256", &random)),
            None
        );
        // A 256-bit tag offered as HS512 is the wrong length: no work is done.
        assert_eq!(
            find("HS512", &hs(hmac::HMAC_SHA256, "HS256", b"secret")),
            None
        );
        assert_eq!(
            find("EdDSA", &hs(hmac::HMAC_SHA256, "HS256", b"secret")),
            None
        );
        assert_eq!(find("HS256", "a.b.!!"), None);
    }

    #[test]
    fn the_list_has_thousands_of_candidates() {
        let count = candidate_count();
        assert!((5_000..20_000).contains(&count), "{count}");
    }
}
