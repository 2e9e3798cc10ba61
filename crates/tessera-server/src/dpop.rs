//! DPoP (RFC 9449) at Tessera's own endpoints: reading the `DPoP` header, checking a proof
//! against the request it came with, and spending its `jti` once across every instance.
//!
//! Design decision: **`htu` is compared with the endpoint's public URL, built from the
//! issuer, never with the URL the request arrived on.** Behind a proxy (or a load balancer
//! terminating TLS) the socket sees another scheme, host or port than the client did; the
//! issuer is what the client was told to call, so it is what the client signs. A proof's
//! `jti` is remembered in the store's [`tessera_store::ReplayStore`] — Redis when configured,
//! so a proof replayed at another instance is refused too — keyed by a digest of the key
//! thumbprint and the `jti`, until the proof is too old to pass the `iat` check anyway.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use tessera_core::dpop::{self, ProofRequest, VerifiedProof};

use crate::error::ApiError;
use crate::extract::single_header;
use crate::state::AppState;

/// The request header carrying a proof.
pub const DPOP_HEADER: HeaderName = HeaderName::from_static("dpop");

/// The `algs` of a `WWW-Authenticate: DPoP` challenge and discovery's
/// `dpop_signing_alg_values_supported`.
#[must_use]
pub fn signing_algs() -> Vec<&'static str> {
    dpop::PROOF_ALGORITHMS.map(|a| a.as_str()).to_vec()
}

/// The public URL of the endpoint a request was made to: the issuer followed by the path.
#[must_use]
pub fn public_url(state: &AppState, parts: &Parts) -> String {
    format!("{}{}", state.config.issuer, parts.uri.path())
}

/// The `DPoP` header's value, if there is exactly one; a repeated or non-ASCII header is a
/// malformed proof.
fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    single_header(headers, DPOP_HEADER).map_err(|_| "the DPoP header must appear once")
}

/// Checks `proof` for the request (`method`, `url`, the access token it presents, if any)
/// and spends its `jti`. A refused proof becomes `refuse(reason)`; a replay store that cannot
/// answer fails closed (`Unavailable`).
///
/// # Errors
/// `refuse(…)` for a proof that breaks any rule or was seen before; `Unavailable` or
/// `Internal` from the store.
pub async fn accept_proof(
    state: &AppState,
    proof: &str,
    request: &ProofRequest<'_>,
    refuse: fn(&'static str) -> ApiError,
) -> Result<VerifiedProof, ApiError> {
    let now = state.now();
    let verified = dpop::verify_proof(proof, request, now).map_err(|e| {
        tracing::debug!(reason = %e, "DPoP proof refused");
        refuse("the DPoP proof is invalid")
    })?;
    let (key, expires_at) = verified.replay_key();
    if !state.store.remember_once(&key, expires_at, now).await? {
        tracing::warn!("DPoP proof replayed");
        return Err(refuse("the DPoP proof was already used"));
    }
    Ok(verified)
}

/// The proof sent to the token endpoint, checked (RFC 9449 §4.3, no `ath`) and spent:
/// `None` when the request has no `DPoP` header. A bad proof is `400 invalid_dpop_proof`
/// (RFC 9449 §5).
#[derive(Debug)]
pub struct TokenEndpointProof(pub Option<VerifiedProof>);

impl FromRequestParts<AppState> for TokenEndpointProof {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let proof = proof_header(&parts.headers).map_err(ApiError::InvalidDpopProof)?;
        let Some(proof) = proof else {
            return Ok(Self(None));
        };
        let url = public_url(state, parts);
        let request = ProofRequest {
            method: parts.method.as_str(),
            url: &url,
            access_token: None,
        };
        accept_proof(state, proof, &request, ApiError::InvalidDpopProof)
            .await
            .map(|p| Self(Some(p)))
    }
}

/// At a resource: checks the proof that must come with a DPoP-bound access token `token`
/// (`Authorization: DPoP <token>`), bound to `jkt`. Every failure is `401 invalid_dpop_proof`
/// with a `WWW-Authenticate: DPoP` challenge (RFC 9449 §7.1).
///
/// # Errors
/// `DpopProofRefused`, or a store failure.
pub async fn check_resource_proof(
    state: &AppState,
    parts: &Parts,
    token: &str,
    jkt: &str,
) -> Result<(), ApiError> {
    let refuse = |_| ApiError::DpopProofRefused;
    let proof = proof_header(&parts.headers)
        .map_err(refuse)?
        .ok_or(ApiError::DpopProofRefused)?;
    let url = public_url(state, parts);
    let request = ProofRequest {
        method: parts.method.as_str(),
        url: &url,
        access_token: Some(token),
    };
    let verified = accept_proof(state, proof, &request, refuse).await?;
    verified.check_bound_to(jkt).map_err(|e| {
        tracing::debug!(reason = %e, "DPoP proof by another key");
        ApiError::DpopProofRefused
    })
}
