//! DPoP proofs (RFC 9449): the signed JWT a client sends with each request to show it holds
//! the private key an access (or refresh) token is bound to.
//!
//! The one design decision: **a proof's key is only ever the public key in its own header,
//! and a proof proves nothing until every rule of RFC 9449 §4.3 has passed.** [`verify_proof`]
//! returns a [`VerifiedProof`] (private fields, made nowhere else) carrying the key's RFC 7638
//! thumbprint; whether that thumbprint is the one a token is bound to, and whether the proof's
//! `jti` was seen before, are the caller's checks — the first is [`VerifiedProof::check_bound_to`],
//! the second needs shared state ([`VerifiedProof::replay_key`] says what to remember and
//! until when). Only EdDSA and ES256 keys are accepted: `none`, HMAC (a shared secret proves
//! nothing about a client) and RSA are refused before any cryptography runs.

use aws_lc_rs::digest;
use serde_json::{Map, Value, json};

use crate::jose::{self, Algorithm, JoseError, Jwk, SigningKey, VerifyingKey, b64};
use crate::time::UnixTime;

/// The `typ` header every proof carries (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";
/// How old a proof's `iat` may be, in seconds.
pub const MAX_PROOF_AGE_SECS: i64 = 60;
/// How far in the future a proof's `iat` may be (clock skew), in seconds.
pub const PROOF_LEEWAY_SECS: i64 = 5;
/// The longest `jti` accepted, in bytes: enough for any random identifier, small enough that
/// a replay cache entry stays small.
pub const MAX_JTI_BYTES: usize = 128;
/// The longest `nonce` accepted, in bytes.
pub const MAX_NONCE_BYTES: usize = 256;
/// The algorithms a proof may be signed with, as discovery advertises them.
pub const PROOF_ALGORITHMS: [Algorithm; 2] = [Algorithm::EdDSA, Algorithm::ES256];
/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4): a proof whose
/// `jwk` carries any of them is refused, since its sender has published its secret.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused. One variant per rule, for the log; the outside world hears
/// `invalid_dpop_proof` (or `invalid_token`) whatever the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The JWS itself was refused (encoding, JSON, signature).
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// `typ` is not `dpop+jwt`.
    #[error("typ is not dpop+jwt")]
    WrongType,
    /// `alg` is not EdDSA or ES256 (this covers `none` and every HMAC algorithm).
    #[error("proof algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The header has no usable `jwk`.
    #[error("missing or malformed jwk header")]
    MissingKey,
    /// The `jwk` header holds private key material.
    #[error("jwk header contains private key material")]
    PrivateKey,
    /// A claim is missing, mistyped or too long.
    #[error("bad claim: {0}")]
    BadClaim(&'static str),
    /// `htm` is not the request's method.
    #[error("htm does not match the request method")]
    WrongMethod,
    /// `htu` is not the request's URL.
    #[error("htu does not match the request URL")]
    WrongUrl,
    /// `ath` is missing or is not the hash of the presented access token.
    #[error("ath does not match the access token")]
    WrongAccessTokenHash,
    /// `iat` is older than [`MAX_PROOF_AGE_SECS`].
    #[error("proof is stale")]
    Stale,
    /// `iat` is further in the future than [`PROOF_LEEWAY_SECS`].
    #[error("proof issued in the future")]
    FromTheFuture,
    /// The proof's key is not the one the token is bound to.
    #[error("proof key does not match the token binding")]
    KeyMismatch,
    /// The URL given as the request's (or as `htu`) is not an absolute http(s) URL.
    #[error("not an absolute http(s) URL")]
    BadUrl,
}

/// What the request a proof must match looks like. `Debug` never prints the access token.
#[derive(Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method, exactly (`"POST"`, `"GET"`).
    pub method: &'a str,
    /// The request's public URL (query and fragment are ignored).
    pub url: &'a str,
    /// The access token presented with the proof, whose hash `ath` must be; `None` at the
    /// token endpoint, where no access token is presented.
    pub access_token: Option<&'a str>,
}

impl std::fmt::Debug for ProofRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("access_token", &self.access_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// A proof that passed every rule of [`verify_proof`]. Only that function makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    jkt: String,
    jti: String,
    iat: UnixTime,
    nonce: Option<String>,
}

impl VerifiedProof {
    /// The RFC 7638 thumbprint of the key that signed the proof: what `cnf.jkt` binds to.
    #[must_use]
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The proof's `nonce`, if it carried one (RFC 9449 §8).
    #[must_use]
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The proof's `iat`.
    #[must_use]
    pub fn iat(&self) -> UnixTime {
        self.iat
    }

    /// Refuses the proof unless its key is the one `jkt` names.
    ///
    /// # Errors
    /// [`DpopError::KeyMismatch`].
    pub fn check_bound_to(&self, jkt: &str) -> Result<(), DpopError> {
        if self.jkt == jkt {
            Ok(())
        } else {
            Err(DpopError::KeyMismatch)
        }
    }

    /// What a replay cache must remember, and until when, so the proof is accepted once:
    /// a fixed-size key (base64url SHA-256 over the key thumbprint and the `jti`, so one
    /// client's `jti`s cannot collide with another's) and the first instant at which the proof
    /// is too old to be accepted anyway.
    #[must_use]
    pub fn replay_key(&self) -> (String, UnixTime) {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(b"tessera dpop jti v1\0");
        context.update(self.jkt.as_bytes());
        context.update(b"\0");
        context.update(self.jti.as_bytes());
        (
            b64::encode(context.finish().as_ref()),
            self.iat.plus(MAX_PROOF_AGE_SECS + 1),
        )
    }
}

/// `base64url(SHA-256(token))`: the `ath` claim for an access token (RFC 9449 §4.2).
#[must_use]
pub fn access_token_hash(token: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// The JWK SHA-256 thumbprint (RFC 7638 §3) of a public key: SHA-256 over the required
/// members in lexicographic order with no whitespace, base64url-encoded. RFC 8037 §2 gives
/// the members for `OKP` keys. `None` for an HMAC key, which has no public form.
#[must_use]
pub fn thumbprint(key: &VerifyingKey) -> Option<String> {
    let jwk = key.public_jwk()?;
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or_default();
    // Every value is base64url or a fixed curve/type name, so none needs JSON escaping.
    let canonical = match member("kty") {
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e"),
            member("n")
        ),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv"),
            member("x"),
            member("y")
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            member("crv"),
            member("x")
        ),
        _ => return None,
    };
    Some(b64::encode(
        digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref(),
    ))
}

/// `scheme://host[:port]/path` of an absolute http(s) URL, normalised as RFC 9449 §4.3
/// point 9 asks (RFC 3986 §6.2.2 and §6.2.3: lower-case scheme and host, default port
/// dropped, empty path as `/`), without query or fragment.
///
/// # Errors
/// [`DpopError::BadUrl`] for anything that is not an absolute http(s) URL with a host, or
/// that carries user information.
pub fn normalize_htu(text: &str) -> Result<String, DpopError> {
    let url = url::Url::parse(text).map_err(|_| DpopError::BadUrl)?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(DpopError::BadUrl);
    }
    let host = url.host_str().unwrap_or_default();
    Ok(match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    })
}

/// The header members a proof must have, read strictly.
struct ProofHeader {
    alg: Algorithm,
    key: VerifyingKey,
}

fn parse_header(token: &str) -> Result<ProofHeader, DpopError> {
    let encoded = token
        .split_once('.')
        .map(|(header, _)| header)
        .ok_or(JoseError::Malformed(
            "a compact JWS has exactly three segments",
        ))?;
    let (mut typ, mut alg, mut jwk) = (None, None, None);
    jose::json::parse_members(&b64::decode(encoded)?, |name, value| match name {
        "typ" => typ = Some(value),
        "alg" => alg = Some(value),
        "jwk" => jwk = Some(value),
        _ => {}
    })?;
    // RFC 9449 §4.3 point 4: `typ` is compared exactly; the media-type prefix is not a
    // second spelling of it here.
    if typ.as_ref().and_then(Value::as_str) != Some(DPOP_TYP) {
        return Err(DpopError::WrongType);
    }
    let alg = alg
        .as_ref()
        .and_then(Value::as_str)
        .and_then(Algorithm::parse)
        .filter(|alg| PROOF_ALGORITHMS.contains(alg))
        .ok_or(DpopError::AlgorithmNotAllowed)?;
    let Some(Value::Object(members)) = jwk else {
        return Err(DpopError::MissingKey);
    };
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(DpopError::PrivateKey);
    }
    if !matches!(
        members.get("kty").and_then(Value::as_str),
        Some("OKP" | "EC")
    ) {
        return Err(DpopError::AlgorithmNotAllowed);
    }
    let jwk = Jwk::from_value(Value::Object(members)).map_err(|_| DpopError::MissingKey)?;
    let key = VerifyingKey::from_jwk(&jwk)?;
    if key.alg() != alg {
        return Err(JoseError::AlgorithmMismatch.into());
    }
    Ok(ProofHeader { alg, key })
}

fn claim_string(claims: &mut Map<String, Value>, name: &'static str) -> Result<String, DpopError> {
    match claims.remove(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(DpopError::BadClaim(name)),
    }
}

/// Verifies a DPoP proof for `request` at time `now` (RFC 9449 §4.3): one compact JWS with
/// `typ: dpop+jwt`, `alg` EdDSA or ES256, a public `jwk` header with no private member,
/// signed by that key; claims `jti` (1 to [`MAX_JTI_BYTES`] bytes), `htm` equal to the
/// method, `htu` equal to the URL once both are normalised ([`normalize_htu`]), `iat` no
/// older than [`MAX_PROOF_AGE_SECS`] and no further ahead than [`PROOF_LEEWAY_SECS`], and,
/// when an access token is presented, `ath` equal to its [`access_token_hash`]. A `nonce`,
/// if present, is returned for the caller to judge.
///
/// # Errors
/// The first rule broken, as a [`DpopError`].
pub fn verify_proof(
    proof: &str,
    request: &ProofRequest<'_>,
    now: UnixTime,
) -> Result<VerifiedProof, DpopError> {
    if proof.len() > jose::MAX_TOKEN_BYTES {
        return Err(JoseError::TooLarge.into());
    }
    let header = parse_header(proof)?;
    let verified = jose::verify_compact(proof, |_| Some(&header.key))?;
    debug_assert_eq!(verified.header().alg, header.alg);
    let mut claims = verified.payload_json()?;
    let jti = claim_string(&mut claims, "jti")?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(DpopError::BadClaim("jti"));
    }
    if claim_string(&mut claims, "htm")? != request.method {
        return Err(DpopError::WrongMethod);
    }
    let htu = claim_string(&mut claims, "htu")?;
    if normalize_htu(&htu).map_err(|_| DpopError::WrongUrl)? != normalize_htu(request.url)? {
        return Err(DpopError::WrongUrl);
    }
    let iat = match claims.remove("iat") {
        Some(Value::Number(n)) => n.as_i64().map(UnixTime),
        _ => None,
    }
    .ok_or(DpopError::BadClaim("iat"))?;
    if iat < now.plus(-MAX_PROOF_AGE_SECS) {
        return Err(DpopError::Stale);
    }
    if iat > now.plus(PROOF_LEEWAY_SECS) {
        return Err(DpopError::FromTheFuture);
    }
    if let Some(token) = request.access_token {
        let ath = claim_string(&mut claims, "ath").map_err(|_| DpopError::WrongAccessTokenHash)?;
        let expected = access_token_hash(token);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            ath.as_bytes(),
            expected.as_bytes(),
        )) {
            return Err(DpopError::WrongAccessTokenHash);
        }
    }
    let nonce = match claims.remove("nonce") {
        None => None,
        Some(Value::String(n)) if !n.is_empty() && n.len() <= MAX_NONCE_BYTES => Some(n),
        Some(_) => return Err(DpopError::BadClaim("nonce")),
    };
    let jkt = thumbprint(&header.key).ok_or(DpopError::MissingKey)?;
    Ok(VerifiedProof {
        jkt,
        jti,
        iat,
        nonce,
    })
}

/// What a client puts in a proof ([`sign_proof`]).
#[derive(Clone, Copy, Debug)]
pub struct ProofClaims<'a> {
    /// A fresh unique identifier.
    pub jti: &'a str,
    /// The request's method.
    pub htm: &'a str,
    /// The request's URL.
    pub htu: &'a str,
    /// Issued at.
    pub iat: UnixTime,
    /// The access token the proof presents, hashed into `ath`.
    pub access_token: Option<&'a str>,
    /// A nonce the server asked for.
    pub nonce: Option<&'a str>,
}

/// Signs a proof with `key` (EdDSA or ES256): the client side of [`verify_proof`], for
/// Tessera's own tools and tests.
///
/// # Errors
/// [`DpopError::AlgorithmNotAllowed`] for any other key, [`DpopError::Jose`] if signing fails.
pub fn sign_proof(key: &SigningKey, claims: &ProofClaims<'_>) -> Result<String, DpopError> {
    if !PROOF_ALGORITHMS.contains(&key.alg()) {
        return Err(DpopError::AlgorithmNotAllowed);
    }
    let mut jwk = key
        .verifying_key()
        .public_jwk()
        .ok_or(DpopError::MissingKey)?;
    if let Some(members) = jwk.as_object_mut() {
        members.remove("kid");
    }
    let header = json!({"typ": DPOP_TYP, "alg": key.alg().as_str(), "jwk": jwk});
    let mut payload = json!({
        "jti": claims.jti,
        "htm": claims.htm,
        "htu": claims.htu,
        "iat": claims.iat.0,
    });
    if let Some(members) = payload.as_object_mut() {
        if let Some(token) = claims.access_token {
            members.insert("ath".into(), access_token_hash(token).into());
        }
        if let Some(nonce) = claims.nonce {
            members.insert("nonce".into(), nonce.into());
        }
    }
    Ok(key.sign_with_header(&header, &payload)?)
}

#[cfg(test)]
mod tests;
