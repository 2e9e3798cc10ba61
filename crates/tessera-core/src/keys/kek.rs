//! Sealing signing keys at rest under a key-encryption key (KEK).
//!
//! Design decision: a store only ever holds a private key sealed with AES-256-GCM under a
//! 256-bit KEK that never enters the store, so a copied database alone gives up no key
//! material. Each seal draws a fresh random 96-bit nonce, and the key's `kid` is bound as
//! associated data, so a sealed secret moved onto another key's row does not open. The sealed
//! form starts with [`SEALED_PREFIX`] (a format version), which is how records written before
//! sealing existed (plain PKCS#8 DER or raw HMAC bytes) are told apart and migrated.
//!
//! This module is pure: the caller obtains the KEK (file, environment) and passes it in.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::KeyRecord;

/// Bytes of a KEK.
pub const KEK_LEN: usize = 32;

/// What every sealed secret starts with: a magic and the format version (1). Eight bytes, so
/// a random legacy HMAC secret is mistaken for a sealed one with probability 2⁻⁶⁴.
pub const SEALED_PREFIX: &[u8] = b"TSKEK\x00\x01\x00";

/// Why a KEK could not be made or used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KekError {
    /// The KEK text is not standard base64 of exactly 32 bytes.
    #[error("a KEK must be 32 bytes, written as standard base64 (e.g. `openssl rand -base64 32`)")]
    Malformed,
    /// The random generator or the cipher failed.
    #[error("sealing failed")]
    Seal,
    /// The sealed secret does not open under this KEK for this kid: the KEK is wrong, or the
    /// bytes were altered or moved from another key.
    #[error(
        "signing key {kid:?} does not open under this KEK (wrong KEK, or the stored key was altered)"
    )]
    Open {
        /// The key that did not open.
        kid: String,
    },
}

/// A key-encryption key. Zeroized on drop; `Debug` redacts it.
#[derive(Clone)]
pub struct Kek(Zeroizing<[u8; KEK_LEN]>);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A new KEK from the OS CSPRNG.
    ///
    /// # Errors
    /// [`KekError::Seal`] if the random generator fails.
    pub fn generate() -> Result<Self, KekError> {
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| KekError::Seal)?;
        Ok(Self(bytes))
    }

    /// A KEK from its 32 bytes.
    ///
    /// # Errors
    /// [`KekError::Malformed`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KekError> {
        let array: [u8; KEK_LEN] = bytes.try_into().map_err(|_| KekError::Malformed)?;
        Ok(Self(Zeroizing::new(array)))
    }

    /// A KEK from standard base64 (surrounding whitespace, such as a file's final newline,
    /// is ignored).
    ///
    /// # Errors
    /// [`KekError::Malformed`] if the text is not base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, KekError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| KekError::Malformed)?,
        );
        Self::from_bytes(&bytes)
    }

    /// The KEK as standard base64, for writing a KEK file.
    #[must_use]
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    fn cipher(&self) -> Result<LessSafeKey, KekError> {
        UnboundKey::new(&AES_256_GCM, self.0.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| KekError::Seal)
    }

    /// Seals `secret` for key `kid`: [`SEALED_PREFIX`] ‖ nonce ‖ ciphertext ‖ tag.
    ///
    /// # Errors
    /// [`KekError::Seal`] if the random generator or the cipher fails.
    pub fn seal(&self, kid: &str, secret: &[u8]) -> Result<Vec<u8>, KekError> {
        let cipher = self.cipher()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KekError::Seal)?;
        // The plaintext copy is encrypted in place; only ciphertext is left in it afterwards.
        let mut buf = secret.to_vec();
        cipher
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buf,
            )
            .map_err(|_| KekError::Seal)?;
        let mut out = Vec::with_capacity(SEALED_PREFIX.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(SEALED_PREFIX);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens what [`Kek::seal`] sealed for `kid`.
    ///
    /// # Errors
    /// [`KekError::Open`] if `stored` is not sealed, or not under this KEK for this kid, or
    /// was altered.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let refused = || KekError::Open {
            kid: kid.to_owned(),
        };
        let body = stored.strip_prefix(SEALED_PREFIX).ok_or_else(refused)?;
        if body.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .cipher()?
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| refused())?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }

    /// `record` with its secret sealed; a record already sealed is returned as it is.
    ///
    /// # Errors
    /// [`KekError::Seal`] if sealing fails.
    pub fn seal_record(&self, record: &KeyRecord) -> Result<KeyRecord, KekError> {
        let mut sealed = record.clone();
        if !is_sealed(&record.secret) {
            sealed.secret = Zeroizing::new(self.seal(&record.kid, &record.secret)?);
        }
        Ok(sealed)
    }

    /// `record` with its secret opened, as [`super::KeyRing::from_records`] needs it. A
    /// legacy plain record is returned as it is (the server seals those at startup).
    ///
    /// # Errors
    /// [`KekError::Open`] if a sealed secret does not open under this KEK.
    pub fn open_record(&self, record: &KeyRecord) -> Result<KeyRecord, KekError> {
        let mut opened = record.clone();
        if is_sealed(&record.secret) {
            opened.secret = self.open(&record.kid, &record.secret)?;
        }
        Ok(opened)
    }
}

/// Whether a stored secret is in the sealed format (else it is a legacy plain secret).
#[must_use]
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::Algorithm;
    use crate::keys::{KeyRing, KeyStatus};
    use crate::time::UnixTime;

    fn record() -> KeyRecord {
        KeyRing::generate_record(Algorithm::EdDSA, KeyStatus::Current, UnixTime(1)).unwrap()
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_the_secret() {
        let kek = Kek::generate().unwrap();
        let plain = record();
        let sealed = kek.seal_record(&plain).unwrap();
        assert!(is_sealed(&sealed.secret) && !is_sealed(&plain.secret));
        assert!(
            !sealed
                .secret
                .windows(plain.secret.len())
                .any(|w| w == plain.secret.as_slice())
        );
        // Random nonce: sealing twice gives different bytes.
        assert_ne!(
            kek.seal(&plain.kid, &plain.secret).unwrap(),
            kek.seal(&plain.kid, &plain.secret).unwrap()
        );
        // Sealing is idempotent on an already sealed record.
        assert_eq!(
            kek.seal_record(&sealed).unwrap().secret.as_slice(),
            sealed.secret.as_slice()
        );
        let opened = kek.open_record(&sealed).unwrap();
        assert_eq!(opened.secret.as_slice(), plain.secret.as_slice());
        assert!(
            KeyRing::from_records(&[opened])
                .unwrap()
                .current()
                .is_some()
        );
    }

    #[test]
    fn wrong_kek_fails() {
        let sealed = Kek::generate().unwrap().seal_record(&record()).unwrap();
        let other = Kek::generate().unwrap();
        assert_eq!(
            other.open_record(&sealed).unwrap_err(),
            KekError::Open {
                kid: sealed.kid.clone()
            }
        );
    }

    #[test]
    fn wrong_kid_as_associated_data_fails() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal_record(&record()).unwrap();
        assert!(kek.open("another-kid", &sealed.secret).is_err());
        let mut moved = record();
        moved.secret = sealed.secret.clone();
        assert!(kek.open_record(&moved).is_err());
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal_record(&record()).unwrap();
        for at in [
            SEALED_PREFIX.len(),
            SEALED_PREFIX.len() + NONCE_LEN,
            sealed.secret.len() - 1,
        ] {
            let mut bytes = sealed.secret.to_vec();
            if let Some(b) = bytes.get_mut(at) {
                *b ^= 1;
            }
            assert!(kek.open(&sealed.kid, &bytes).is_err(), "flip at {at}");
        }
        let short = &sealed.secret[..SEALED_PREFIX.len() + 4];
        assert!(kek.open(&sealed.kid, short).is_err());
        assert!(
            kek.open(&sealed.kid, &sealed.secret[..sealed.secret.len() - 1])
                .is_err()
        );
    }

    #[test]
    fn legacy_plain_records_pass_through_open_record() {
        let kek = Kek::generate().unwrap();
        let plain = record();
        assert_eq!(
            kek.open_record(&plain).unwrap().secret.as_slice(),
            plain.secret.as_slice()
        );
        assert!(kek.open(&plain.kid, &plain.secret).is_err());
    }

    #[test]
    fn kek_text_form_and_debug() {
        let kek = Kek::generate().unwrap();
        let again = Kek::from_base64(&format!("{}\n", kek.to_base64().as_str())).unwrap();
        let sealed = kek.seal("k", b"secret").unwrap();
        assert_eq!(again.open("k", &sealed).unwrap().as_slice(), b"secret");
        assert_eq!(
            Kek::from_base64("c2hvcnQ=").unwrap_err(),
            KekError::Malformed
        );
        assert_eq!(
            Kek::from_base64("not base64!").unwrap_err(),
            KekError::Malformed
        );
        assert_eq!(format!("{kek:?}"), "Kek(<redacted>)");
        assert!(!format!("{kek:?}").contains(kek.to_base64().as_str()));
    }
}
