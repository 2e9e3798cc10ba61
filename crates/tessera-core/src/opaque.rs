//! Opaque credentials: session tokens (`tss_`), refresh tokens (`trt_`) and OAuth client
//! secrets (`tcs_`, wrapped by [`crate::client::ClientSecret`]).
//!
//! A token is `prefix || base64url(32 random bytes) || checksum`, where the checksum is the first
//! 4 bytes of SHA-256 over everything before it. The prefix lets secret scanners recognise a
//! leaked token; the checksum lets a malformed or mistyped token be refused without a store
//! lookup. Stores only ever see [`TokenHash`] (SHA-256 of the whole token): a stolen database
//! yields no usable credential.

use aws_lc_rs::{digest, hmac, rand::SecureRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const SECRET_BYTES: usize = 32;
const BODY_CHARS: usize = 43; // base64url of 32 bytes, unpadded
const CHECKSUM_CHARS: usize = 6; // base64url of 4 bytes, unpadded
const PREFIX_CHARS: usize = 4;
/// Length of every opaque token, in ASCII characters.
pub const TOKEN_LEN: usize = PREFIX_CHARS + BODY_CHARS + CHECKSUM_CHARS;

pub use crate::token::TokenKind;

/// Why a string is not a well-formed opaque token.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpaqueError {
    /// Wrong length, prefix or alphabet.
    #[error("malformed token")]
    Malformed,
    /// The checksum does not match.
    #[error("token checksum mismatch")]
    BadChecksum,
    /// The operating system's random generator failed.
    #[error("random generator failure")]
    Rng,
}

/// An opaque token in its secret form. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken {
    kind: TokenKind,
    raw: Zeroizing<String>,
}

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OpaqueToken({}<redacted>)",
            self.kind.prefix().unwrap_or_default()
        )
    }
}

fn checksum(head: &str) -> [u8; CHECKSUM_CHARS] {
    let d = digest::digest(&digest::SHA256, head.as_bytes());
    let four = d.as_ref().get(..4).unwrap_or_default();
    let mut out = [0u8; CHECKSUM_CHARS];
    // 4 bytes are always 6 unpadded base64url characters: the buffer is exactly their size.
    let _ = URL_SAFE_NO_PAD.encode_slice(four, &mut out);
    out
}

impl OpaqueToken {
    /// A fresh token with 256 bits from the OS CSPRNG.
    ///
    /// # Errors
    /// [`OpaqueError::Rng`] if the system generator fails; [`OpaqueError::Malformed`] for
    /// [`TokenKind::Jwt`], which is not an opaque kind.
    pub fn generate(kind: TokenKind) -> Result<Self, OpaqueError> {
        let prefix = kind.prefix().ok_or(OpaqueError::Malformed)?;
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        aws_lc_rs::rand::SystemRandom::new()
            .fill(secret.as_mut())
            .map_err(|_| OpaqueError::Rng)?;
        let mut raw = String::with_capacity(TOKEN_LEN);
        raw.push_str(prefix);
        raw.push_str(&URL_SAFE_NO_PAD.encode(secret.as_ref()));
        let sum = checksum(&raw);
        // base64url characters are ASCII.
        raw.extend(sum.iter().map(|&b| char::from(b)));
        Ok(Self {
            kind,
            raw: Zeroizing::new(raw),
        })
    }

    /// Parses a token of the expected kind, checking shape and checksum (no store needed).
    ///
    /// # Errors
    /// [`OpaqueError::Malformed`] or [`OpaqueError::BadChecksum`].
    pub fn parse(kind: TokenKind, s: &str) -> Result<Self, OpaqueError> {
        if s.len() != TOKEN_LEN || !kind.prefix().is_some_and(|p| s.starts_with(p)) {
            return Err(OpaqueError::Malformed);
        }
        let alphabet_ok = s
            .bytes()
            .skip(PREFIX_CHARS)
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !alphabet_ok {
            return Err(OpaqueError::Malformed);
        }
        let (head, sum) = s.split_at(PREFIX_CHARS + BODY_CHARS);
        // The body must be canonical base64url (no padding, no stray trailing bits) of 32 bytes,
        // decoded into a buffer on the stack (this runs on every request with a session).
        let body = head.get(PREFIX_CHARS..).unwrap_or_default();
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        if !URL_SAFE_NO_PAD
            .decode_slice(body, secret.as_mut_slice())
            .is_ok_and(|n| n == SECRET_BYTES)
        {
            return Err(OpaqueError::Malformed);
        }
        if !bool::from(checksum(head).ct_eq(sum.as_bytes())) {
            return Err(OpaqueError::BadChecksum);
        }
        Ok(Self {
            kind,
            raw: Zeroizing::new(s.to_owned()),
        })
    }

    /// The kind of this token.
    #[must_use]
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The secret string, for handing to the client exactly once.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.raw
    }

    /// The hash under which stores keep this token.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        let d = digest::digest(&digest::SHA256, self.raw.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenHash(out)
    }

    /// A 256-bit value derived from this token for one `purpose` (HMAC-SHA256 keyed by the
    /// token). Used for the CSRF token of a session and for sealing a refresh successor: only
    /// the holder of the token can compute it, and it reveals nothing about the token.
    #[must_use]
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.raw.as_bytes());
        let tag = hmac::sign(&key, purpose.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// SHA-256 of an opaque token: the only form in which a store sees it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lower-case hex, the form used as a store key.
    #[must_use]
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Parses the hex form written by [`TokenHash::to_hex`].
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        // `from_str_radix` would take a leading `+`; a stored hash is plain hex, nothing else.
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

/// Constant time, for comparing a presented credential's hash with a stored one outside a
/// store lookup (a client secret against its record): `==` may stop at the first difference.
impl ConstantTimeEq for TokenHash {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash is not a credential, but a short form keeps logs readable.
        write!(
            f,
            "TokenHash({}…)",
            self.to_hex().get(..12).unwrap_or_default()
        )
    }
}

/// A random public identifier (128 bits, base64url), for session ids, family ids and `jti`s.
///
/// # Errors
/// [`OpaqueError::Rng`] if the system generator fails.
pub fn random_id() -> Result<String, OpaqueError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| OpaqueError::Rng)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_shape() {
        for kind in TokenKind::OPAQUE {
            let t = OpaqueToken::generate(kind).unwrap();
            assert_eq!(t.expose_secret().len(), TOKEN_LEN);
            assert!(t.expose_secret().starts_with(kind.prefix().unwrap()));
            let back = OpaqueToken::parse(kind, t.expose_secret()).unwrap();
            assert_eq!(back.hash(), t.hash());
        }
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        for kind in TokenKind::OPAQUE {
            let t = OpaqueToken::generate(kind).unwrap();
            for other in TokenKind::OPAQUE.into_iter().filter(|&k| k != kind) {
                assert_eq!(
                    OpaqueToken::parse(other, t.expose_secret()),
                    Err(OpaqueError::Malformed),
                    "{kind:?} parsed as {other:?}"
                );
            }
        }
    }

    #[test]
    fn hashes_compare_in_constant_time_as_equality() {
        let a = OpaqueToken::generate(TokenKind::ClientSecret)
            .unwrap()
            .hash();
        let b = OpaqueToken::generate(TokenKind::ClientSecret)
            .unwrap()
            .hash();
        assert!(bool::from(a.ct_eq(&a)));
        assert!(!bool::from(a.ct_eq(&b)));
    }

    #[test]
    fn any_single_character_change_is_refused() {
        let t = OpaqueToken::generate(TokenKind::Session).unwrap();
        let s = t.expose_secret().to_owned();
        for i in PREFIX_CHARS..s.len() {
            let mut bytes = s.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let m = String::from_utf8(bytes).unwrap();
            assert!(
                OpaqueToken::parse(TokenKind::Session, &m).is_err(),
                "mutation at {i} accepted"
            );
        }
    }

    #[test]
    fn malformed_inputs_are_refused() {
        for bad in [
            "",
            "tss_",
            "tss_!!!",
            &"tss_".repeat(20),
            "TSS_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(
                OpaqueToken::parse(TokenKind::Session, bad).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let t = OpaqueToken::generate(TokenKind::Session).unwrap();
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(&t.expose_secret()[4..]));
    }

    #[test]
    fn hash_hex_round_trip() {
        let h = OpaqueToken::generate(TokenKind::Session).unwrap().hash();
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(TokenHash::from_hex("zz"), None);
        // Regression (found by fuzzing): a `+` in a hex pair is not hex.
        let plus = format!("+f{}", &h.to_hex()[2..]);
        assert_eq!(TokenHash::from_hex(&plus), None);
    }

    #[test]
    fn derivations_differ_by_purpose() {
        let t = OpaqueToken::generate(TokenKind::Session).unwrap();
        assert_ne!(*t.derive("a"), *t.derive("b"));
        assert_eq!(*t.derive("a"), *t.derive("a"));
    }
}
