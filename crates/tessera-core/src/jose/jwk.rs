//! JSON Web Keys (RFC 7517/7518/8037) and the public half of a signing key.
//!
//! Design decision: a [`VerifyingKey`] carries exactly one [`Algorithm`], fixed when it is
//! built — from the JWK's `alg` if present, otherwise from its type and curve — and the raw
//! signature check never consults anything the token says. Private members of a JWK (`d`, `p`,
//! …) are never even deserialised; only the public part, or the `k` of an HMAC key, is kept.

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents,
};
use aws_lc_rs::{digest, hmac};
use serde_json::{Value, json};
use zeroize::Zeroize as _;

use super::{Algorithm, JoseError, b64, json};

/// Smallest HMAC key Tessera accepts, in bytes (256 bits, RFC 7518 §3.2).
pub(crate) const MIN_HMAC_KEY_BYTES: usize = 32;
/// Smallest RSA modulus Tessera accepts, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// Length of an Ed25519 signature and of a JOSE ES256 (`r || s`) signature.
const FIXED_SIG_BYTES: usize = 64;
/// Length of an HMAC-SHA-256 tag.
const HS256_TAG_BYTES: usize = 32;

/// A parsed JSON Web Key: the members Tessera uses, as base64url text. Private asymmetric
/// members are not read; the symmetric `k` is redacted from `Debug` and wiped on drop.
#[derive(Clone, Default, serde::Deserialize)]
pub struct Jwk {
    /// Key type: `OKP`, `EC`, `RSA` or `oct`.
    pub kty: String,
    /// Curve, for `OKP` (`Ed25519`) and `EC` (`P-256`).
    #[serde(default)]
    pub crv: Option<String>,
    /// Public x coordinate (`EC`) or public key (`OKP`).
    #[serde(default)]
    pub x: Option<String>,
    /// Public y coordinate (`EC`).
    #[serde(default)]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(default)]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default)]
    pub e: Option<String>,
    /// Symmetric key value (`oct`). Secret.
    #[serde(default)]
    pub k: Option<String>,
    /// The algorithm the key is meant for, if the JWK says.
    #[serde(default)]
    pub alg: Option<String>,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Public key use; only `sig` is accepted when present.
    #[serde(default, rename = "use")]
    pub key_use: Option<String>,
    /// Permitted operations (RFC 7517 §4.3); when present it must include `verify`. An array
    /// of distinct strings: anything else is refused when the JWK is parsed.
    #[serde(default)]
    pub key_ops: Option<Vec<String>>,
}

impl Jwk {
    /// Parses a JWK from strict JSON (no duplicate members).
    ///
    /// # Errors
    /// [`JoseError::BadJson`] / [`JoseError::DuplicateKey`] for bad JSON or mistyped members,
    /// [`JoseError::Malformed`] for a `key_ops` with duplicates.
    pub fn from_json(text: &str) -> Result<Self, JoseError> {
        Self::from_value(json::parse(text.as_bytes())?)
    }

    /// Builds a JWK from an already parsed JSON value (e.g. one member of a JWKS).
    ///
    /// # Errors
    /// [`JoseError::BadJson`] if the value is not an object with string members (or a
    /// `key_ops` that is not an array of strings); [`JoseError::Malformed`] if `key_ops` names an operation twice (RFC 7517 §4.3 forbids
    /// it: a list that repeats itself was not written by a careful issuer).
    pub fn from_value(value: Value) -> Result<Self, JoseError> {
        // `null` would deserialise as "absent" and lift the restriction; only an array counts.
        if value.get("key_ops").is_some_and(|ops| !ops.is_array()) {
            return Err(JoseError::BadJson);
        }
        let jwk: Self = serde_json::from_value(value).map_err(|_| JoseError::BadJson)?;
        if let Some(ops) = &jwk.key_ops {
            let mut seen = std::collections::BTreeSet::new();
            if !ops.iter().all(|op| seen.insert(op.as_str())) {
                return Err(JoseError::Malformed("key_ops names an operation twice"));
            }
        }
        Ok(jwk)
    }

    /// Whether this JWK may be used to verify signatures: `use`, when present, must be `sig`,
    /// and `key_ops`, when present, must include `verify`. Checked by
    /// [`VerifyingKey::from_jwk`], so every verifier built from a JWK obeys the issuer's
    /// restrictions rather than only the key's type.
    ///
    /// # Errors
    /// [`JoseError::KeyUseForbidden`] naming the member that forbids verification.
    pub fn check_may_verify(&self) -> Result<(), JoseError> {
        if self.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(JoseError::KeyUseForbidden("\"use\" is not \"sig\""));
        }
        if self
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return Err(JoseError::KeyUseForbidden(
                "\"key_ops\" does not include \"verify\"",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("crv", &self.crv)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("use", &self.key_use)
            .field("key_ops", &self.key_ops)
            .field("k", &self.k.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Drop for Jwk {
    fn drop(&mut self) {
        if let Some(k) = self.k.as_mut() {
            k.zeroize();
        }
    }
}

/// The verification material, per key family.
#[derive(Clone)]
enum Material {
    /// Ed25519 public key (32 bytes) and its parsed form.
    Ed25519 { x: Vec<u8>, key: ParsedPublicKey },
    /// P-256 public point coordinates and the parsed uncompressed point.
    P256 {
        x: Vec<u8>,
        y: Vec<u8>,
        key: ParsedPublicKey,
    },
    /// RSA modulus and exponent (big-endian, no leading zeros) and the parsed key.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        key: ParsedPublicKey,
    },
    /// HMAC-SHA-256 key; never published. Boxed: the aws-lc context is large. `tag` is a
    /// SHA-256 of the secret under a fixed label, so the fingerprint never holds the secret.
    Hmac { key: Box<hmac::Key>, tag: Vec<u8> },
}

/// A key that checks signatures for exactly one pinned [`Algorithm`].
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Algorithm,
    kid: Option<String>,
    material: Material,
    /// SHA-256 over the algorithm and the key material: what tells two keys apart when a
    /// cached verification must still name the key it was made with (a `kid` alone could
    /// be reused for other material by a reloaded ring or a refetched JWKS).
    fingerprint: [u8; 32],
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn member<'a>(value: Option<&'a String>, what: &'static str) -> Result<&'a str, JoseError> {
    value.map(String::as_str).ok_or(JoseError::Malformed(what))
}

fn exact_len(bytes: Vec<u8>, len: usize) -> Result<Vec<u8>, JoseError> {
    if bytes.len() == len {
        Ok(bytes)
    } else {
        Err(JoseError::InvalidKey)
    }
}

fn pinned(
    declared: Option<Algorithm>,
    default: Algorithm,
    allowed: &[Algorithm],
) -> Result<Algorithm, JoseError> {
    let alg = declared.unwrap_or(default);
    if allowed.contains(&alg) {
        Ok(alg)
    } else {
        Err(JoseError::AlgorithmMismatch)
    }
}

impl VerifyingKey {
    /// Builds a verifying key from a JWK. The algorithm is the JWK's `alg` if present (it must
    /// suit the key type), otherwise inferred: `OKP`/`Ed25519` → EdDSA, `EC`/`P-256` → ES256,
    /// `RSA` → RS256, `oct` → HS256.
    ///
    /// # Errors
    /// [`JoseError::UnsupportedAlgorithm`] for an unknown `alg`, [`JoseError::AlgorithmMismatch`]
    /// if `alg` does not suit the key, [`JoseError::KeyTooShort`] for HMAC keys under 32 bytes or
    /// RSA moduli under 2048 bits, [`JoseError::KeyUseForbidden`] if `use` or `key_ops` forbid
    /// verifying, [`JoseError::UnsupportedKey`] for other key types or curves,
    /// [`JoseError::InvalidKey`] / [`JoseError::BadBase64`] for bad material.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        let declared = match jwk.alg.as_deref() {
            Some(name) => Some(Algorithm::parse(name).ok_or(JoseError::UnsupportedAlgorithm)?),
            None => None,
        };
        jwk.check_may_verify()?;
        let kid = jwk.kid.clone();
        match jwk.kty.as_str() {
            "OKP" => {
                if jwk.crv.as_deref() != Some("Ed25519") {
                    return Err(JoseError::UnsupportedKey("OKP curve other than Ed25519"));
                }
                let alg = pinned(declared, Algorithm::EdDSA, &[Algorithm::EdDSA])?;
                let x = exact_len(b64::decode(member(jwk.x.as_ref(), "JWK x")?)?, 32)?;
                Ok(Self::assemble(alg, kid, Material::ed25519(x)?))
            }
            "EC" => {
                if jwk.crv.as_deref() != Some("P-256") {
                    return Err(JoseError::UnsupportedKey("EC curve other than P-256"));
                }
                let alg = pinned(declared, Algorithm::ES256, &[Algorithm::ES256])?;
                let x = exact_len(b64::decode(member(jwk.x.as_ref(), "JWK x")?)?, 32)?;
                let y = exact_len(b64::decode(member(jwk.y.as_ref(), "JWK y")?)?, 32)?;
                Ok(Self::assemble(alg, kid, Material::p256(x, y)?))
            }
            "RSA" => {
                let alg = pinned(
                    declared,
                    Algorithm::RS256,
                    &[Algorithm::RS256, Algorithm::PS256],
                )?;
                let n = b64::decode(member(jwk.n.as_ref(), "JWK n")?)?;
                let e = b64::decode(member(jwk.e.as_ref(), "JWK e")?)?;
                Ok(Self::assemble(alg, kid, Material::rsa(alg, n, e)?))
            }
            "oct" => {
                let alg = pinned(declared, Algorithm::HS256, &[Algorithm::HS256])?;
                let k = zeroize::Zeroizing::new(b64::decode(member(jwk.k.as_ref(), "JWK k")?)?);
                Ok(Self::assemble(alg, kid, Material::hmac(&k)?))
            }
            _ => Err(JoseError::UnsupportedKey("unknown kty")),
        }
    }

    /// Builds an HMAC verifying key from raw secret bytes (at least 32).
    pub(crate) fn hmac(kid: Option<String>, secret: &[u8]) -> Result<Self, JoseError> {
        Ok(Self::assemble(
            Algorithm::HS256,
            kid,
            Material::hmac(secret)?,
        ))
    }

    /// Builds an Ed25519 verifying key from the 32-byte public key.
    pub(crate) fn ed25519(kid: Option<String>, x: &[u8]) -> Result<Self, JoseError> {
        Ok(Self::assemble(
            Algorithm::EdDSA,
            kid,
            Material::ed25519(x.to_vec())?,
        ))
    }

    /// Builds an ES256 verifying key from an uncompressed SEC1 point (`04 || x || y`).
    pub(crate) fn p256(kid: Option<String>, point: &[u8]) -> Result<Self, JoseError> {
        match point.split_first() {
            Some((4, xy)) if xy.len() == 64 => {
                let (x, y) = xy.split_at(32);
                Ok(Self::assemble(
                    Algorithm::ES256,
                    kid,
                    Material::p256(x.to_vec(), y.to_vec())?,
                ))
            }
            _ => Err(JoseError::InvalidKey),
        }
    }

    /// Builds an RSA verifying key for RS256 or PS256 from modulus and exponent.
    pub(crate) fn rsa(
        alg: Algorithm,
        kid: Option<String>,
        n: &[u8],
        e: &[u8],
    ) -> Result<Self, JoseError> {
        Ok(Self::assemble(
            alg,
            kid,
            Material::rsa(alg, n.to_vec(), e.to_vec())?,
        ))
    }

    fn assemble(alg: Algorithm, kid: Option<String>, material: Material) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(b"tessera verifying key v1\0");
        context.update(alg.as_str().as_bytes());
        let parts: [&[u8]; 2] = match &material {
            Material::Ed25519 { x, .. } => [x, &[]],
            Material::P256 { x, y, .. } => [x, y],
            Material::Rsa { n, e, .. } => [n, e],
            Material::Hmac { tag, .. } => [tag, &[]],
        };
        for part in parts {
            // Length-prefixed, so (n, e) cannot be re-split into another key's parts.
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(context.finish().as_ref());
        Self {
            alg,
            kid,
            material,
            fingerprint,
        }
    }

    /// The key's fingerprint: equal for two keys exactly when their algorithm and material
    /// are equal. For an HMAC key it is derived from a one-way digest of the secret, never
    /// the secret itself.
    #[must_use]
    pub(crate) fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// The one algorithm this key verifies.
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public JWK (with `kid`, `alg` and `use: "sig"`), or `None` for an HMAC key, whose
    /// only material is the secret.
    #[must_use]
    pub fn public_jwk(&self) -> Option<Value> {
        let mut jwk = match &self.material {
            Material::Ed25519 { x, .. } => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(x)})
            }
            Material::P256 { x, y, .. } => {
                json!({"kty": "EC", "crv": "P-256", "x": b64::encode(x), "y": b64::encode(y)})
            }
            Material::Rsa { n, e, .. } => {
                json!({"kty": "RSA", "n": b64::encode(n), "e": b64::encode(e)})
            }
            Material::Hmac { .. } => return None,
        };
        if let Some(map) = jwk.as_object_mut() {
            map.insert("alg".into(), self.alg.as_str().into());
            map.insert("use".into(), "sig".into());
            if let Some(kid) = &self.kid {
                map.insert("kid".into(), kid.clone().into());
            }
        }
        Some(jwk)
    }

    /// Checks `signature` over `signing_input` with the pinned algorithm, including the JOSE
    /// length rules (Ed25519 and ES256 signatures are exactly 64 bytes, HS256 tags 32).
    /// HMAC tags are compared in constant time by aws-lc-rs.
    ///
    /// # Errors
    /// [`JoseError::BadSignature`] if the signature does not verify.
    pub fn verify_signature(
        &self,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), JoseError> {
        let ok = match &self.material {
            Material::Ed25519 { key, .. } | Material::P256 { key, .. } => {
                signature.len() == FIXED_SIG_BYTES
                    && key.verify_sig(signing_input, signature).is_ok()
            }
            Material::Rsa { key, .. } => key.verify_sig(signing_input, signature).is_ok(),
            Material::Hmac { key, .. } => {
                signature.len() == HS256_TAG_BYTES
                    && hmac::verify(key, signing_input, signature).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(JoseError::BadSignature)
        }
    }
}

impl Material {
    fn ed25519(x: Vec<u8>) -> Result<Self, JoseError> {
        let key = ParsedPublicKey::new(&ED25519, &x).map_err(|_| JoseError::InvalidKey)?;
        Ok(Self::Ed25519 { x, key })
    }

    fn p256(x: Vec<u8>, y: Vec<u8>) -> Result<Self, JoseError> {
        let mut point = Vec::with_capacity(65);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .map_err(|_| JoseError::InvalidKey)?;
        Ok(Self::P256 { x, y, key })
    }

    fn rsa(alg: Algorithm, n: Vec<u8>, e: Vec<u8>) -> Result<Self, JoseError> {
        if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
            return Err(JoseError::InvalidKey);
        }
        if n.len() < MIN_RSA_MODULUS_BYTES {
            return Err(JoseError::KeyTooShort);
        }
        let params = match alg {
            Algorithm::RS256 => &RSA_PKCS1_2048_8192_SHA256,
            Algorithm::PS256 => &RSA_PSS_2048_8192_SHA256,
            _ => return Err(JoseError::AlgorithmMismatch),
        };
        let key = RsaPublicKeyComponents { n: &n, e: &e }
            .to_parsed_public_key(params)
            .map_err(|_| JoseError::InvalidKey)?;
        Ok(Self::Rsa { n, e, key })
    }

    fn hmac(secret: &[u8]) -> Result<Self, JoseError> {
        if secret.len() < MIN_HMAC_KEY_BYTES {
            return Err(JoseError::KeyTooShort);
        }
        let mut labelled = digest::Context::new(&digest::SHA256);
        labelled.update(b"tessera hmac key tag v1\0");
        labelled.update(secret);
        Ok(Self::Hmac {
            key: Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret)),
            tag: labelled.finish().as_ref().to_vec(),
        })
    }
}
