//! Signing keys: generation from the OS CSPRNG, loading from persisted secrets, and compact
//! JWS signing.
//!
//! Design decision: a [`SigningKey`] is one algorithm, one `kid` and one secret, and carries
//! its own [`VerifyingKey`]; the secret only leaves through the loudly named
//! [`SigningKey::secret_bytes_dangerously`], and `Debug` shows `kid` and `alg` only.

use std::fmt;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::jwk::MIN_HMAC_KEY_BYTES;
use super::{Algorithm, JoseError, MAX_TOKEN_BYTES, VerifyingKey, b64, jws};

/// The private half, per key family.
enum Signer {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    /// Boxed: the aws-lc HMAC context is much larger than the other variants.
    Hmac(Box<hmac::Key>),
}

/// A private signing key pinned to one [`Algorithm`] and one `kid`.
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    signer: Signer,
    secret: Zeroizing<Vec<u8>>,
    verifying: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key from the OS CSPRNG: Ed25519, P-256, RSA-2048 (RS256 and PS256) or
    /// 32 random bytes for HS256.
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the crypto library fails.
    pub fn generate(alg: Algorithm, kid: String) -> Result<Self, JoseError> {
        let secret = match alg {
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(|_| JoseError::Crypto)?;
                Zeroizing::new(
                    pair.to_pkcs8()
                        .map_err(|_| JoseError::Crypto)?
                        .as_ref()
                        .to_vec(),
                )
            }
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| JoseError::Crypto)?;
                Zeroizing::new(
                    pair.to_pkcs8v1()
                        .map_err(|_| JoseError::Crypto)?
                        .as_ref()
                        .to_vec(),
                )
            }
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| JoseError::Crypto)?;
                let der = pair.as_der().map_err(|_| JoseError::Crypto)?;
                Zeroizing::new(der.as_ref().to_vec())
            }
            Algorithm::HS256 => {
                let mut bytes = Zeroizing::new(vec![0u8; MIN_HMAC_KEY_BYTES]);
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| JoseError::Crypto)?;
                bytes
            }
        };
        Self::from_secret(alg, kid, &secret)
    }

    /// Loads a key from its persisted secret: PKCS#8 DER for the asymmetric algorithms, the raw
    /// key bytes (at least 32) for HS256.
    ///
    /// # Errors
    /// [`JoseError::KeyTooShort`] for short HMAC keys or RSA moduli under 2048 bits,
    /// [`JoseError::InvalidKey`] if the DER does not hold a key of the algorithm's type.
    pub fn from_secret(alg: Algorithm, kid: String, secret: &[u8]) -> Result<Self, JoseError> {
        let vkid = Some(kid.clone());
        let (signer, verifying) = match alg {
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(secret).map_err(|_| JoseError::InvalidKey)?;
                let verifying = VerifyingKey::ed25519(vkid, pair.public_key().as_ref())?;
                (Signer::Ed25519(pair), verifying)
            }
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, secret)
                    .map_err(|_| JoseError::InvalidKey)?;
                let verifying = VerifyingKey::p256(vkid, pair.public_key().as_ref())?;
                (Signer::P256(pair), verifying)
            }
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = RsaKeyPair::from_pkcs8(secret).map_err(|_| JoseError::InvalidKey)?;
                let public = pair.public_key();
                let verifying = VerifyingKey::rsa(
                    alg,
                    vkid,
                    public.modulus().big_endian_without_leading_zero(),
                    public.exponent().big_endian_without_leading_zero(),
                )?;
                (Signer::Rsa(pair), verifying)
            }
            Algorithm::HS256 => {
                let verifying = VerifyingKey::hmac(vkid, secret)?;
                (
                    Signer::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
                    verifying,
                )
            }
        };
        Ok(Self {
            alg,
            kid,
            signer,
            secret: Zeroizing::new(secret.to_vec()),
            verifying,
        })
    }

    /// The persisted form of the secret (PKCS#8 DER, or raw HMAC key). Only for storing the key;
    /// never log or send it.
    #[must_use]
    pub fn secret_bytes_dangerously(&self) -> Zeroizing<Vec<u8>> {
        self.secret.clone()
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id placed in every header this key signs.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The matching verifying key (same `kid` and algorithm).
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying.clone()
    }

    /// Signs `payload` as a compact JWS whose header is exactly `{"alg","kid","typ"}`.
    ///
    /// # Errors
    /// [`JoseError::TooLarge`] if the token would exceed [`MAX_TOKEN_BYTES`] (a token this crate
    /// would itself refuse is never issued), [`JoseError::Crypto`] if signing fails.
    pub fn sign_compact(&self, typ: &str, payload: &Value) -> Result<String, JoseError> {
        let header = json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": typ});
        self.sign_with_header(&header, payload)
    }

    /// Signs `payload` under a header the caller writes whole — for JWTs whose header carries
    /// more than `{"alg","kid","typ"}`, such as a DPoP proof's `jwk`. The header's `alg` is
    /// not checked against this key: a header that lies makes a token no verifier accepts.
    ///
    /// # Errors
    /// As [`SigningKey::sign_compact`].
    pub fn sign_with_header(&self, header: &Value, payload: &Value) -> Result<String, JoseError> {
        let input = jws::signing_input(header, payload)?;
        let signature = self.sign_raw(input.as_bytes())?;
        let token = format!("{input}.{}", b64::encode(&signature));
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JoseError::TooLarge);
        }
        Ok(token)
    }

    /// Signs arbitrary `payload` bytes (possibly empty) as a compact JWS whose header is exactly
    /// `{"alg","kid"}`, for JOSE tooling and tests. Having no `typ`, the result can never be
    /// taken for an access token (those need `typ: at+jwt`), so this cannot mint credentials.
    ///
    /// # Errors
    /// As [`SigningKey::sign_compact`].
    pub fn sign_bytes(&self, payload: &[u8]) -> Result<String, JoseError> {
        let header = json!({"alg": self.alg.as_str(), "kid": self.kid});
        let header = serde_json::to_vec(&header).map_err(|_| JoseError::BadJson)?;
        let input = format!("{}.{}", b64::encode(&header), b64::encode(payload));
        let signature = self.sign_raw(input.as_bytes())?;
        let token = format!("{input}.{}", b64::encode(&signature));
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JoseError::TooLarge);
        }
        Ok(token)
    }

    /// The raw signature (JOSE encoding) over `input`.
    pub(crate) fn sign_raw(&self, input: &[u8]) -> Result<Vec<u8>, JoseError> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ed25519(pair) => Ok(pair.sign(input).as_ref().to_vec()),
            Signer::P256(pair) => Ok(pair
                .sign(&rng, input)
                .map_err(|_| JoseError::Crypto)?
                .as_ref()
                .to_vec()),
            Signer::Rsa(pair) => {
                let padding = if self.alg == Algorithm::PS256 {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &rng, input, &mut signature)
                    .map_err(|_| JoseError::Crypto)?;
                Ok(signature)
            }
            Signer::Hmac(key) => Ok(hmac::sign(key, input).as_ref().to_vec()),
        }
    }
}
