//! RFC 9068 access tokens: short-lived JWTs with `typ: at+jwt`, signed by the key ring's
//! current key and verified against the whole ring.
//!
//! Design decision: verification is a closed list of checks on top of the strict JOSE layer —
//! the `typ` must say "access token" (so an ID token or any other JWT signed by the same key is
//! never accepted as one), the `kid` must name a trusted key, time claims must be JSON integers
//! and the clock leeway is capped at [`MAX_LEEWAY_SECS`] whatever the configuration says.

use serde_json::Value;

use crate::jose::{self, JoseError, SigningKey, VerifyingKey};
use crate::keys::KeyRing;
use crate::time::UnixTime;

pub mod cache;

/// The `typ` header of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The largest clock leeway honoured, in seconds.
pub const MAX_LEEWAY_SECS: i64 = 60;

/// The claims of a Tessera access token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessClaims {
    /// Issuer: the server's public base URL.
    pub iss: String,
    /// Subject: the user id (or the client id for client credentials).
    pub sub: String,
    /// Audience: the one resource the token is for.
    pub aud: String,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    pub nbf: UnixTime,
    /// Unique token id, for the revocation list.
    pub jti: String,
    /// The login session the token derives from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    pub client_id: String,
    /// The user's name, for convenience of resource servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The proof-of-possession key the token is bound to (RFC 9449 §6.1); absent for a
    /// bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound access token (RFC 7800 §3.1, RFC 9449 §6.1): the JWK
/// SHA-256 thumbprint of the key every proof presenting the token must be signed with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Confirmation {
    /// base64url(SHA-256) of the key's RFC 7638 canonical JWK.
    pub jkt: String,
}

/// What a verifier expects of every access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// The required `iss`.
    pub issuer: String,
    /// The audience this verifier serves; must be (in) the token's `aud`.
    pub audience: String,
    /// Clock leeway in seconds; negative counts as 0, more than [`MAX_LEEWAY_SECS`] as that.
    pub leeway_secs: i64,
}

/// Why an access token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The JWS itself was refused (signature, key, header, encoding, `typ`).
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A claim is missing or has the wrong JSON type.
    #[error("bad claims: {0}")]
    BadClaims(&'static str),
}

/// Signs `claims` as an access token with `key` (header `{"alg","kid","typ":"at+jwt"}`).
///
/// # Errors
/// As [`SigningKey::sign_compact`].
pub fn issue(key: &SigningKey, claims: &AccessClaims) -> Result<String, JoseError> {
    let payload = serde_json::to_value(claims).map_err(|_| JoseError::BadJson)?;
    key.sign_compact(ACCESS_TOKEN_TYP, &payload)
}

/// Verifies an access token against the ring and the policy at time `now`.
///
/// # Errors
/// [`AccessError::Jose`] for anything the JOSE layer refuses, a missing or unknown `kid`
/// ([`JoseError::UnknownKey`]), a `typ` other than `at+jwt` / `application/at+jwt` or a
/// nested-JWT `cty` ([`JoseError::WrongType`]); the other variants for claim checks.
pub fn verify(
    token: &str,
    ring: &KeyRing,
    policy: &AccessPolicy,
    now: UnixTime,
) -> Result<AccessClaims, AccessError> {
    verify_except(token, ring, |_| false, policy, now)
}

/// [`verify`], treating every key for which `refused(kid)` holds as unknown: how a verifier
/// applies an emergency key revocation it has heard of before its key ring is reloaded.
///
/// # Errors
/// As [`verify`].
pub fn verify_except(
    token: &str,
    ring: &KeyRing,
    refused: impl Fn(&str) -> bool,
    policy: &AccessPolicy,
    now: UnixTime,
) -> Result<AccessClaims, AccessError> {
    verify_with(
        token,
        |kid| {
            if refused(kid) {
                None
            } else {
                ring.verifier(kid)
            }
        },
        policy,
        now,
    )
}

/// Verifies an access token with keys found by `lookup(kid)`: the one verification both the
/// issuer (its private [`KeyRing`], through [`verify_except`]) and resource servers (public
/// keys from the JWKS, [`crate::keys::PublicKeySet`]) run. A token without a `kid` is refused
/// before `lookup` is asked; `lookup` returning `None` refuses the token as signed by an
/// unknown key.
///
/// # Errors
/// As [`verify`].
pub fn verify_with<'k>(
    token: &str,
    lookup: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
    policy: &AccessPolicy,
    now: UnixTime,
) -> Result<AccessClaims, AccessError> {
    let verified = jose::verify_compact(token, |kid| kid.and_then(lookup))?;
    let typ_ok = verified.header().typ.as_deref().is_some_and(|typ| {
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
    });
    // `cty: JWT` declares a nested JWT: its payload is another token, not claims (RFC 7519
    // §5.2, §7.2 step 8). An access token is never nested, so such a token is not one.
    let nested = verified.header().cty.as_deref().is_some_and(|cty| {
        cty.eq_ignore_ascii_case("JWT") || cty.eq_ignore_ascii_case("application/jwt")
    });
    if !typ_ok || nested {
        return Err(JoseError::WrongType.into());
    }
    check_claims(verified.payload(), policy, now)
}

/// The claim rules of [`verify_with`] on the payload of a JWS **whose signature and header
/// were already checked** (on its own it proves nothing about who wrote the payload): strict
/// JSON, every required claim present with its JSON type, issuer, audience and time.
///
/// # Errors
/// As the claim checks of [`verify`]: [`AccessError::Jose`] for JSON the strict parser
/// refuses, the other variants for claims.
pub fn check_claims(
    payload: &[u8],
    policy: &AccessPolicy,
    now: UnixTime,
) -> Result<AccessClaims, AccessError> {
    // Every member this token type defines, moved out of the parser as it reads them; the
    // rules below run once the whole payload parsed, as they would over a map.
    let mut slots: [Option<Value>; CLAIMS.len()] = Default::default();
    jose::json::parse_members(payload, |name, value| {
        if let Some(slot) = CLAIMS
            .iter()
            .position(|c| *c == name)
            .and_then(|at| slots.get_mut(at))
        {
            *slot = Some(value);
        }
    })?;
    let [
        iss,
        sub,
        aud,
        exp,
        iat,
        nbf,
        jti,
        sid,
        scope,
        client_id,
        username,
        cnf,
    ] = slots;
    let iss = string(iss, "iss")?;
    let aud = audience(aud, &policy.audience)?;
    let parsed = AccessClaims {
        sub: string(sub, "sub")?,
        exp: numeric_date(exp.as_ref(), "exp")?,
        iat: numeric_date(iat.as_ref(), "iat")?,
        nbf: numeric_date(nbf.as_ref(), "nbf")?,
        jti: string(jti, "jti")?,
        sid: optional_string(sid, "sid")?,
        scope: optional_string(scope, "scope")?,
        client_id: string(client_id, "client_id")?,
        username: optional_string(username, "username")?,
        cnf: confirmation(cnf)?,
        iss,
        aud: policy.audience.clone(),
    };
    if parsed.iss != policy.issuer {
        return Err(AccessError::WrongIssuer);
    }
    if !aud {
        return Err(AccessError::WrongAudience);
    }
    check_times(&parsed, policy, now)?;
    Ok(parsed)
}

/// The time rules of [`verify_with`]: `exp`, `nbf` and `iat` against `now` with the policy's
/// (capped) leeway. Split out because they are the part of a verification that changes with
/// the clock alone, so a cached verification ([`cache::VerifiedCache`]) runs them again on
/// every use.
fn check_times(
    claims: &AccessClaims,
    policy: &AccessPolicy,
    now: UnixTime,
) -> Result<(), AccessError> {
    let leeway = policy.leeway_secs.clamp(0, MAX_LEEWAY_SECS);
    if claims.exp <= now.plus(-leeway) {
        return Err(AccessError::Expired);
    }
    if claims.nbf > now.plus(leeway) {
        return Err(AccessError::NotYetValid);
    }
    if claims.iat > now.plus(leeway) {
        return Err(AccessError::IssuedInFuture);
    }
    Ok(())
}

/// The claims [`check_claims`] reads, in the order of its slots.
const CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "sid",
    "scope",
    "client_id",
    "username",
    "cnf",
];

fn string(value: Option<Value>, name: &'static str) -> Result<String, AccessError> {
    optional_string(value, name)?.ok_or(AccessError::BadClaims(name))
}

fn optional_string(
    value: Option<Value>,
    name: &'static str,
) -> Result<Option<String>, AccessError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AccessError::BadClaims(name)),
    }
}

/// `cnf`, when present, is an object whose `jkt` is a string; a `cnf` naming only other
/// confirmation methods is refused, since this verifier could not honour them.
fn confirmation(value: Option<Value>) -> Result<Option<Confirmation>, AccessError> {
    match value {
        None => Ok(None),
        Some(Value::Object(mut members)) => match members.remove("jkt") {
            Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(Confirmation { jkt })),
            _ => Err(AccessError::BadClaims("cnf")),
        },
        Some(_) => Err(AccessError::BadClaims("cnf")),
    }
}

/// A NumericDate that must be a non-negative JSON integer (no strings, floats or exponents).
fn numeric_date(value: Option<&Value>, name: &'static str) -> Result<UnixTime, AccessError> {
    match value {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n
            .as_i64()
            .filter(|v| *v >= 0)
            .map(UnixTime)
            .ok_or(AccessError::BadClaims(name)),
        _ => Err(AccessError::BadClaims(name)),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3); true if it holds `expected`.
fn audience(value: Option<Value>, expected: &str) -> Result<bool, AccessError> {
    match value {
        Some(Value::String(aud)) => Ok(aud == expected),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut found = false;
            for item in items {
                match item {
                    Value::String(aud) => found |= aud == expected,
                    _ => return Err(AccessError::BadClaims("aud")),
                }
            }
            Ok(found)
        }
        _ => Err(AccessError::BadClaims("aud")),
    }
}

#[cfg(test)]
mod tests;
