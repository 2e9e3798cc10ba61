//! Strict JOSE: compact JWS (RFC 7515), JWK (RFC 7517) and the algorithms Tessera accepts.
//!
//! The one design decision: **the key decides the algorithm, never the token.** A
//! [`VerifyingKey`] is pinned to exactly one [`Algorithm`] when it is built; a token whose
//! header names any other algorithm is refused before any cryptography runs. There is no
//! `none` algorithm anywhere in this code, HMAC keys shorter than 256 bits cannot be built,
//! header parameters that point at other keys (`jku`, `x5u`, `jwk`, `x5c`, `x5t`) are never
//! read, `crit` and `b64` are refused, and every encoding is checked for its one canonical form
//! (base64url without padding or stray bits, JSON without duplicate member names) so that one
//! token has exactly one meaning. All cryptography is aws-lc-rs.

pub mod b64;
pub mod json;
mod jwk;
mod jws;
mod signing;

#[cfg(test)]
mod tests;

pub use jwk::{Jwk, VerifyingKey};
pub use jws::{Header, VerifiedJws, decode_unverified_dangerously, verify_compact};
pub use signing::SigningKey;

/// The largest compact token, in bytes, that is even looked at. Checked before any splitting or
/// decoding, so hostile input costs at most this much work.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// A JWS algorithm Tessera can verify (RFC 7518 §3.1, RFC 8037 §3.1).
///
/// There is deliberately no `none` variant: an unsigned token cannot be represented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037). The default: small keys and the smallest signatures.
    EdDSA,
    /// ECDSA on P-256 with SHA-256, signature as 64 bytes `r || s`.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit modulus or larger.
    RS256,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, 32-byte salt), 2048-bit modulus or larger.
    PS256,
    /// HMAC with SHA-256, with a key of at least 32 bytes.
    HS256,
}

impl Algorithm {
    /// Every supported algorithm, in order of preference.
    pub const ALL: [Self; 5] = [
        Self::EdDSA,
        Self::ES256,
        Self::RS256,
        Self::PS256,
        Self::HS256,
    ];

    /// The JOSE name (`"EdDSA"`, `"ES256"`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::HS256 => "HS256",
        }
    }

    /// Parses a JOSE algorithm name exactly (case-sensitive). `none` in any spelling, and every
    /// algorithm Tessera does not implement, gives `None`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == s)
    }

    /// Whether the algorithm is symmetric (the verifier holds the signing secret).
    #[must_use]
    pub fn is_symmetric(self) -> bool {
        matches!(self, Self::HS256)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token, key or JOSE structure was refused. One variant per reason, so callers can log
/// the reason while answering the outside world with a single "invalid token".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The token is longer than [`MAX_TOKEN_BYTES`].
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// The structure is wrong (segment count, empty segment, missing or mistyped member…).
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A segment or key member is not canonical unpadded base64url.
    #[error("not canonical base64url")]
    BadBase64,
    /// A header, payload or JWK is not valid UTF-8 JSON of the expected shape.
    #[error("invalid JSON")]
    BadJson,
    /// A JSON object names the same member twice.
    #[error("duplicate JSON member name")]
    DuplicateKey,
    /// The header's `alg` is not one Tessera implements (this includes every spelling of `none`).
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The header's `alg` differs from the algorithm pinned to the key.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// No key is known for the token's `kid` (or the token has no `kid` and one is required).
    #[error("unknown key")]
    UnknownKey,
    /// The header carries `crit`; Tessera understands no extensions.
    #[error("critical header extensions are not supported")]
    UnsupportedCritical,
    /// The header carries a parameter Tessera refuses (`b64`).
    #[error("unsupported header parameter: {0}")]
    UnsupportedHeader(&'static str),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The `typ` header is not the expected one (e.g. an ID token offered as an access token).
    #[error("wrong token type")]
    WrongType,
    /// The key is too short to be safe (HMAC < 256 bits, RSA < 2048 bits).
    #[error("key too short")]
    KeyTooShort,
    /// The key is of a type, curve or use Tessera does not support.
    #[error("unsupported key: {0}")]
    UnsupportedKey(&'static str),
    /// The JWK's `use` or `key_ops` says it must not verify signatures (RFC 7517 §4.2, §4.3).
    #[error("key must not be used to verify: {0}")]
    KeyUseForbidden(&'static str),
    /// Key material was rejected by the crypto library (bad encoding, point not on the curve…).
    #[error("invalid key material")]
    InvalidKey,
    /// Two keys in one key ring share a `kid`.
    #[error("duplicate key id")]
    DuplicateKid,
    /// The key ring's records are inconsistent (e.g. two current keys).
    #[error("invalid key ring: {0}")]
    InvalidKeyRing(&'static str),
    /// The crypto library failed (randomness, signing); not caused by input.
    #[error("cryptographic operation failed")]
    Crypto,
}
