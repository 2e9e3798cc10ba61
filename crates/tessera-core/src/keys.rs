//! The key ring: every signing key the issuer knows, with its place in the rotation
//! (`next` → `current` → `retiring` → `retired`, or `revoked`), and the JWKS it publishes. How keys move
//! between those places is [`lifecycle`].
//!
//! Design decision: status, not time, decides what a key may do. Exactly one `current` key
//! signs; `next`, `current` and `retiring` keys verify and are published (so verifiers learn a
//! key before it signs and keep it until its tokens have expired); a `retired` key (its tokens
//! have all expired) and a `revoked` key (emergency revocation) are dropped entirely — they
//! neither verify nor are published.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::jose::{Algorithm, JoseError, Jwk, SigningKey, VerifyingKey, b64, json};
use crate::time::UnixTime;

pub mod kek;
pub mod lifecycle;

/// Where a key stands in its rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Published and verifying, not yet signing: verifiers learn it before it is used.
    Next,
    /// The one key that signs new tokens.
    Current,
    /// No longer signs; still verifies and is published until its tokens expire.
    Retiring,
    /// Every token it signed has expired: never verifies, never published, kept for the record.
    Retired,
    /// Withdrawn: never verifies, never published.
    Revoked,
}

impl KeyStatus {
    /// The stored name (`next`, `current`, `retiring`, `retired`, `revoked`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
        }
    }

    /// Parses a stored name exactly.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Next,
            Self::Current,
            Self::Retiring,
            Self::Retired,
            Self::Revoked,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Whether keys in this status verify tokens and appear in the JWKS.
    #[must_use]
    pub fn is_trusted(self) -> bool {
        matches!(self, Self::Next | Self::Current | Self::Retiring)
    }
}

/// A key as persisted by a store. `Debug` redacts the secret.
#[derive(Clone)]
pub struct KeyRecord {
    /// Key id (random, base64url).
    pub kid: String,
    /// The key's one algorithm.
    pub alg: Algorithm,
    /// Place in the rotation.
    pub status: KeyStatus,
    /// When the key was created.
    pub created_at: UnixTime,
    /// When the key entered its status: the clock of the schedule
    /// ([`lifecycle::Schedule`]) — a `current` key signs for the rotation period from here,
    /// a `retiring` key retires once every token it signed has expired, counted from here.
    pub status_since: UnixTime,
    /// In a store: the secret sealed under the KEK ([`kek::Kek::seal_record`]), or, in a
    /// record written before sealing existed, the plain secret. Opened
    /// ([`kek::Kek::open_record`]): PKCS#8 DER (asymmetric) or raw HMAC key bytes; see
    /// [`SigningKey::from_secret`].
    pub secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field("status_since", &self.status_since)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One trusted key of the ring.
#[derive(Debug)]
struct Entry {
    status: KeyStatus,
    signing: SigningKey,
    verifying: VerifyingKey,
}

/// The loaded, trusted keys: the signer and the verifiers, in record order.
#[derive(Debug)]
pub struct KeyRing {
    entries: Vec<Entry>,
}

impl KeyRing {
    /// Loads a ring from stored records. Retired and revoked records are skipped without touching their
    /// secrets.
    ///
    /// # Errors
    /// Any key-loading error of [`SigningKey::from_secret`]; [`JoseError::DuplicateKid`] if two
    /// records share a `kid`; [`JoseError::InvalidKeyRing`] if more than one is `current`.
    pub fn from_records(records: &[KeyRecord]) -> Result<Self, JoseError> {
        let mut entries: Vec<Entry> = Vec::with_capacity(records.len());
        let mut seen: Vec<&str> = Vec::with_capacity(records.len());
        for record in records {
            if seen.contains(&record.kid.as_str()) {
                return Err(JoseError::DuplicateKid);
            }
            seen.push(&record.kid);
            if !record.status.is_trusted() {
                continue;
            }
            let signing = SigningKey::from_secret(record.alg, record.kid.clone(), &record.secret)?;
            let verifying = signing.verifying_key();
            entries.push(Entry {
                status: record.status,
                signing,
                verifying,
            });
        }
        if entries
            .iter()
            .filter(|e| e.status == KeyStatus::Current)
            .count()
            > 1
        {
            return Err(JoseError::InvalidKeyRing("more than one current key"));
        }
        Ok(Self { entries })
    }

    /// Generates a new key record with a random `kid` (16 bytes from the OS CSPRNG,
    /// base64url).
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if randomness or key generation fails.
    pub fn generate_record(
        alg: Algorithm,
        status: KeyStatus,
        now: UnixTime,
    ) -> Result<KeyRecord, JoseError> {
        let mut id = [0u8; 16];
        SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| JoseError::Crypto)?;
        let kid = b64::encode(&id);
        let key = SigningKey::generate(alg, kid.clone())?;
        Ok(KeyRecord {
            kid,
            alg,
            status,
            created_at: now,
            status_since: now,
            secret: key.secret_bytes_dangerously(),
        })
    }

    /// The one key that signs new tokens, if the ring has one.
    #[must_use]
    pub fn current(&self) -> Option<&SigningKey> {
        self.entries
            .iter()
            .find(|e| e.status == KeyStatus::Current)
            .map(|e| &e.signing)
    }

    /// The verifier for `kid` if it is `next`, `current` or `retiring` (never `revoked`).
    #[must_use]
    pub fn verifier(&self, kid: &str) -> Option<&VerifyingKey> {
        self.entries
            .iter()
            .find(|e| e.signing.kid() == kid)
            .map(|e| &e.verifying)
    }

    /// The secret of a trusted key, for deriving keys for other purposes (never for output).
    #[must_use]
    pub fn secret_of(&self, kid: &str) -> Option<Zeroizing<Vec<u8>>> {
        self.entries
            .iter()
            .find(|e| e.signing.kid() == kid)
            .map(|e| e.signing.secret_bytes_dangerously())
    }

    /// The status of a trusted key.
    #[must_use]
    pub fn status(&self, kid: &str) -> Option<KeyStatus> {
        self.entries
            .iter()
            .find(|e| e.signing.kid() == kid)
            .map(|e| e.status)
    }

    /// The published key set `{"keys": [...]}`: public JWKs of the `next`, `current` and
    /// `retiring` asymmetric keys. HMAC keys and private members never appear.
    #[must_use]
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .entries
            .iter()
            .filter_map(|e| e.verifying.public_jwk())
            .collect();
        json!({ "keys": keys })
    }
}

/// The public keys a resource server trusts: `kid` → [`VerifyingKey`], read from the issuer's
/// JWKS document `{"keys": [...]}` through the one JWK parser ([`Jwk::from_value`],
/// [`VerifyingKey::from_jwk`]).
///
/// Design decision: the document is taken whole or not at all. Every member must be an
/// asymmetric key that may verify (`use`/`key_ops`, [`Jwk::check_may_verify`]) and carries a
/// `kid` of its own; one bad member refuses the set, so a verifier keeps the set it had
/// rather than quietly trusting part of a document it does not understand.
#[derive(Clone, Debug, Default)]
pub struct PublicKeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl PublicKeySet {
    /// Parses a JWKS document from strict JSON (no duplicate member names anywhere).
    ///
    /// # Errors
    /// As [`PublicKeySet::from_jwks`], plus [`JoseError::BadJson`] /
    /// [`JoseError::DuplicateKey`] for text that is not strict JSON.
    pub fn from_jwks_json(text: &[u8]) -> Result<Self, JoseError> {
        Self::from_jwks(json::parse(text)?)
    }

    /// Builds the set from a parsed JWKS document.
    ///
    /// # Errors
    /// [`JoseError::BadJson`] if the document is not an object with a `keys` array;
    /// [`JoseError::Malformed`] for a key without `kid`; [`JoseError::DuplicateKid`] if two
    /// keys share a `kid`; [`JoseError::UnsupportedKey`] for a symmetric key (a published
    /// HMAC key would let anyone sign); any error of [`Jwk::from_value`] or
    /// [`VerifyingKey::from_jwk`] (including [`JoseError::KeyUseForbidden`]).
    pub fn from_jwks(document: Value) -> Result<Self, JoseError> {
        let Value::Object(mut document) = document else {
            return Err(JoseError::BadJson);
        };
        let Some(Value::Array(members)) = document.remove("keys") else {
            return Err(JoseError::BadJson);
        };
        let mut keys = HashMap::with_capacity(members.len());
        for member in members {
            let jwk = Jwk::from_value(member)?;
            let key = VerifyingKey::from_jwk(&jwk)?;
            if key.alg().is_symmetric() {
                return Err(JoseError::UnsupportedKey("symmetric key in a JWKS"));
            }
            let kid = key
                .kid()
                .ok_or(JoseError::Malformed("JWKS key without kid"))?
                .to_owned();
            if keys.insert(kid, key).is_some() {
                return Err(JoseError::DuplicateKid);
            }
        }
        Ok(Self { keys })
    }

    /// The key for `kid`, if the set has one.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// The key ids in the set (in no particular order).
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests;
