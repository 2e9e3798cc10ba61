//! The key ring: every signing key the issuer knows, with its place in the rotation
//! (`next` → `current` → `retiring` → `retired`, or `revoked`), and the JWKS it publishes. How keys move
//! between those places is [`lifecycle`].
//!
//! Design decision: status, not time, decides what a key may do. Exactly one `current` key
//! signs; `next`, `current` and `retiring` keys verify and are published (so verifiers learn a
//! key before it signs and keep it until its tokens have expired); a `retired` key (its tokens
//! have all expired) and a `revoked` key (emergency revocation) are dropped entirely — they
//! neither verify nor are published.

use std::fmt;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::jose::{Algorithm, JoseError, SigningKey, VerifyingKey, b64};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::verify_compact;

    const T0: UnixTime = UnixTime(1_700_000_000);

    fn record(alg: Algorithm, status: KeyStatus) -> KeyRecord {
        KeyRing::generate_record(alg, status, T0).unwrap()
    }

    #[test]
    fn status_names_round_trip() {
        for s in [
            KeyStatus::Next,
            KeyStatus::Current,
            KeyStatus::Retiring,
            KeyStatus::Retired,
            KeyStatus::Revoked,
        ] {
            assert_eq!(KeyStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(KeyStatus::parse("Current"), None);
    }

    #[test]
    fn generated_records_have_random_kids_and_redacted_debug() {
        let a = record(Algorithm::EdDSA, KeyStatus::Current);
        let b = record(Algorithm::EdDSA, KeyStatus::Current);
        assert_ne!(a.kid, b.kid);
        assert_eq!(b64::decode(&a.kid).unwrap().len(), 16);
        let text = format!("{a:?}");
        assert!(
            text.contains("<redacted>") && !text.contains(&format!("{:?}", a.secret.as_slice()))
        );
    }

    #[test]
    fn rotation_statuses_decide_what_keys_do() {
        let next = record(Algorithm::EdDSA, KeyStatus::Next);
        let current = record(Algorithm::EdDSA, KeyStatus::Current);
        let retiring = record(Algorithm::ES256, KeyStatus::Retiring);
        let revoked = record(Algorithm::EdDSA, KeyStatus::Revoked);
        let retired = record(Algorithm::EdDSA, KeyStatus::Retired);
        let hmac = record(Algorithm::HS256, KeyStatus::Retiring);
        let ring = KeyRing::from_records(&[
            next.clone(),
            current.clone(),
            retiring.clone(),
            revoked.clone(),
            retired.clone(),
            hmac.clone(),
        ])
        .unwrap();
        assert_eq!(ring.current().unwrap().kid(), current.kid);
        for r in [&next, &current, &retiring, &hmac] {
            assert_eq!(ring.verifier(&r.kid).unwrap().alg(), r.alg);
        }
        assert!(ring.verifier(&revoked.kid).is_none());
        assert!(ring.verifier(&retired.kid).is_none());
        assert!(ring.verifier("nope").is_none());

        let jwks = ring.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(
            kids,
            [
                next.kid.as_str(),
                current.kid.as_str(),
                retiring.kid.as_str()
            ]
        );
        for k in jwks["keys"].as_array().unwrap() {
            assert!(k.get("d").is_none() && k.get("k").is_none());
        }

        // A token signed by a key that is later revoked no longer verifies.
        let token = ring
            .current()
            .unwrap()
            .sign_compact("JWT", &json!({}))
            .unwrap();
        assert!(verify_compact(&token, |kid| kid.and_then(|k| ring.verifier(k))).is_ok());
        let mut revoked_now = current.clone();
        revoked_now.status = KeyStatus::Revoked;
        let ring2 = KeyRing::from_records(&[next, revoked_now, retiring]).unwrap();
        assert!(ring2.current().is_none());
        let res = verify_compact(&token, |kid| kid.and_then(|k| ring2.verifier(k)));
        assert!(matches!(res, Err(JoseError::UnknownKey)));
    }

    #[test]
    fn inconsistent_rings_are_refused() {
        let a = record(Algorithm::EdDSA, KeyStatus::Current);
        let b = record(Algorithm::EdDSA, KeyStatus::Current);
        assert!(matches!(
            KeyRing::from_records(&[a.clone(), b]),
            Err(JoseError::InvalidKeyRing(_))
        ));
        let mut dup = record(Algorithm::EdDSA, KeyStatus::Next);
        dup.kid = a.kid.clone();
        assert!(matches!(
            KeyRing::from_records(&[a.clone(), dup]),
            Err(JoseError::DuplicateKid)
        ));
        let mut short = record(Algorithm::HS256, KeyStatus::Next);
        short.secret = Zeroizing::new(vec![1; 16]);
        assert!(matches!(
            KeyRing::from_records(&[short]),
            Err(JoseError::KeyTooShort)
        ));
        let mut wrong = a;
        wrong.alg = Algorithm::ES256;
        assert!(matches!(
            KeyRing::from_records(&[wrong]),
            Err(JoseError::InvalidKey)
        ));
    }
}
