//! Usernames: the one rule that turns what a person typed into the name stored and looked up.
//!
//! Design decision: registration, login, throttling and the CLI all go through
//! [`Username::parse`], so "Alice " and "alice" are one account everywhere, and a name that
//! could never have been registered is known before any store lookup.

use std::fmt;

/// Shortest accepted username, in characters.
pub const MIN_CHARS: usize = 3;
/// Longest accepted username, in characters.
pub const MAX_CHARS: usize = 64;

/// A normalised username: trimmed, lower-case, 3–64 of `a-z 0-9 . _ - @`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

/// The input cannot be a username.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("username must be 3-64 characters of a-z, 0-9, '.', '_', '-', '@'")]
pub struct InvalidUsername;

impl Username {
    /// Normalises `raw` (trim, lower-case) and checks the result.
    ///
    /// # Errors
    /// [`InvalidUsername`] if it does not fit the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidUsername> {
        let name = raw.trim().to_lowercase();
        let ok_len = (MIN_CHARS..=MAX_CHARS).contains(&name.chars().count());
        let ok_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if ok_len && ok_chars {
            Ok(Self(name))
        } else {
            Err(InvalidUsername)
        }
    }

    /// The normalised name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalised name, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Username;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Username::parse("  Alice@Example.org ").unwrap().as_str(),
            "alice@example.org"
        );
    }

    #[test]
    fn refuses_what_could_never_be_registered() {
        for bad in ["", "ab", "a b", "ali/ce", "ålice", &"a".repeat(65), "   "] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Username::parse(&"a".repeat(64)).is_ok());
    }
}
