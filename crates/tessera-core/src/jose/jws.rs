//! Compact JWS (RFC 7515 §7.1): parsing under the strict rules, and verification that can
//! only succeed through a pinned [`VerifyingKey`].
//!
//! Design decision: [`VerifiedJws`] has private fields and is only made by [`verify_compact`],
//! so code holding one knows the signature was checked ("parse, don't validate"). The header's
//! `alg` is only ever *compared* with the key's algorithm; it never selects the algorithm.

use std::ops::Range;

use serde_json::{Map, Value};

use super::{Algorithm, JoseError, MAX_TOKEN_BYTES, VerifyingKey, b64, json};

/// The protected header of a verified JWS: the members Tessera reads. Members that point at
/// other keys (`jku`, `x5u`, `jwk`, `x5c`, `x5t`) are ignored and not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The algorithm named by the header (equal to the verifying key's).
    pub alg: Algorithm,
    /// Key id.
    pub kid: Option<String>,
    /// Media type of the whole JWS (e.g. `at+jwt`).
    pub typ: Option<String>,
    /// Media type of the payload.
    pub cty: Option<String>,
}

/// A JWS whose signature has been checked. Only [`verify_compact`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedJws {
    header: Header,
    /// The decoded segments' bytes; the payload is `decoded[payload]`.
    decoded: Vec<u8>,
    payload: Range<usize>,
}

impl VerifiedJws {
    /// The verified protected header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The verified payload bytes.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        self.decoded.get(self.payload.clone()).unwrap_or_default()
    }

    /// The payload as a strict JSON object (UTF-8, no duplicate members).
    ///
    /// # Errors
    /// [`JoseError::BadJson`] or [`JoseError::DuplicateKey`].
    pub fn payload_json(&self) -> Result<Map<String, Value>, JoseError> {
        json::parse_object(self.payload())
    }
}

/// The three segments of a compact JWS, after the size and shape checks.
struct Segments<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header '.' payload`, the signing input.
    signing_input: &'a str,
}

/// Size bound first, then exactly three segments with a non-empty header. The payload may be
/// empty (RFC 7515 allows any octet sequence, including none); callers that need claims refuse
/// it when they parse them, since an empty payload is not a JSON object.
fn split(token: &str) -> Result<Segments<'_>, JoseError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JoseError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed(
            "a compact JWS has exactly three segments",
        ));
    };
    if header.is_empty() {
        return Err(JoseError::Malformed("empty header segment"));
    }
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .ok_or(JoseError::Malformed("segments"))?;
    Ok(Segments {
        header,
        payload,
        signature,
        signing_input,
    })
}

fn optional_string(value: Option<Value>) -> Result<Option<String>, JoseError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::Malformed("header member is not a string")),
    }
}

/// Parses the header strictly (no duplicate members at any depth) and applies the header
/// rules, reading only the members Tessera uses; the others are parsed, checked and dropped.
/// The rules run after the whole header parsed, in a fixed order: `crit`, `b64`, `alg`,
/// then the types of `kid`, `typ`, `cty`.
fn parse_header(bytes: &[u8]) -> Result<Header, JoseError> {
    let (mut crit, mut b64) = (false, false);
    let (mut alg, mut kid, mut typ, mut cty) = (None, None, None, None);
    json::parse_members(bytes, |name, value| match name {
        "crit" => crit = true,
        "b64" => b64 = true,
        "alg" => alg = Some(value),
        "kid" => kid = Some(value),
        "typ" => typ = Some(value),
        "cty" => cty = Some(value),
        _ => {}
    })?;
    if crit {
        return Err(JoseError::UnsupportedCritical);
    }
    if b64 {
        return Err(JoseError::UnsupportedHeader("b64"));
    }
    let alg = match alg {
        Some(Value::String(name)) => {
            Algorithm::parse(&name).ok_or(JoseError::UnsupportedAlgorithm)?
        }
        Some(_) => return Err(JoseError::Malformed("alg is not a string")),
        None => return Err(JoseError::Malformed("missing alg")),
    };
    Ok(Header {
        alg,
        kid: optional_string(kid)?,
        typ: optional_string(typ)?,
        cty: optional_string(cty)?,
    })
}

/// Verifies a compact JWS.
///
/// `lookup` maps the header's `kid` (`None` if absent) to a key; the key's pinned algorithm must
/// equal the header's `alg`. Checks, in order: size, segments, canonical base64url, strict JSON
/// header, `crit`/`b64`/`alg` rules, key lookup, algorithm pin, signature. The payload is any
/// octet sequence, possibly empty: whether it must be claims is the caller's rule.
///
/// # Errors
/// The first rule broken, as a [`JoseError`].
pub fn verify_compact<'k>(
    token: &str,
    lookup: impl FnOnce(Option<&str>) -> Option<&'k VerifyingKey>,
) -> Result<VerifiedJws, JoseError> {
    let segments = split(token)?;
    if segments.signature.is_empty() {
        return Err(JoseError::Malformed("empty signature segment"));
    }
    // All three segments decode into one buffer: one allocation per token, not three. The
    // decoder reserves up to 3 bytes per started group of 4 characters, per segment.
    let mut decoded = Vec::with_capacity(token.len() / 4 * 3 + 12);
    let header = b64::decode_into(segments.header, &mut decoded)?;
    let payload = b64::decode_into(segments.payload, &mut decoded)?;
    let signature = b64::decode_into(segments.signature, &mut decoded)?;
    let part = |range: &Range<usize>| decoded.get(range.clone()).unwrap_or_default();
    let header = parse_header(part(&header))?;
    let key = lookup(header.kid.as_deref()).ok_or(JoseError::UnknownKey)?;
    if key.alg() != header.alg {
        return Err(JoseError::AlgorithmMismatch);
    }
    key.verify_signature(segments.signing_input.as_bytes(), part(&signature))?;
    Ok(VerifiedJws {
        header,
        decoded,
        payload,
    })
}

/// Decodes a compact JWS **without verifying anything but its encoding**, for inspection tools
/// only. Returns `(header, payload)`. The signature segment may be empty (so unsigned tokens can
/// be shown and flagged); base64url and JSON must still be strict and the payload must be JSON.
///
/// # Errors
/// [`JoseError::TooLarge`], [`JoseError::Malformed`], [`JoseError::BadBase64`],
/// [`JoseError::BadJson`], [`JoseError::DuplicateKey`].
pub fn decode_unverified_dangerously(token: &str) -> Result<(Value, Value), JoseError> {
    let segments = split(token)?;
    if !segments.signature.is_empty() {
        b64::decode(segments.signature)?;
    }
    let header = Value::Object(json::parse_object(&b64::decode(segments.header)?)?);
    let payload = json::parse(&b64::decode(segments.payload)?)?;
    Ok((header, payload))
}

/// Assembles `header.payload.signature` for a header and payload produced by this crate.
pub(crate) fn signing_input(header: &Value, payload: &Value) -> Result<String, JoseError> {
    let header = serde_json::to_vec(header).map_err(|_| JoseError::BadJson)?;
    let payload = serde_json::to_vec(payload).map_err(|_| JoseError::BadJson)?;
    Ok(format!(
        "{}.{}",
        b64::encode(&header),
        b64::encode(&payload)
    ))
}
