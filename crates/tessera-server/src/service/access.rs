//! Minting access tokens: the claims of a new access JWT (RFC 9068), optionally bound to a
//! DPoP key, signed with the current key — the one place access tokens are made.

use tessera_core::access::{self, AccessClaims, Confirmation};
use tessera_core::opaque::random_id;

use super::internal;
use crate::error::ApiError;
use crate::state::{AppState, Metrics};

/// `token_type` of a token response: `DPoP` for a token bound to a key (RFC 9449 §5),
/// `Bearer` otherwise.
#[must_use]
pub fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { "DPoP" } else { "Bearer" }
}

/// What a new login's tokens are bound to: the proof's key thumbprint for the access token,
/// and for the refresh family when its client cannot authenticate itself.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Binding<'a> {
    pub access: Option<&'a str>,
    pub refresh: Option<&'a str>,
}

/// Mints an access JWT (RFC 9068) signed with the current key: a bearer token, or one bound
/// to the DPoP key `jkt` (`cnf.jkt`) when one is given.
///
/// # Errors
/// If there is no current key or signing fails.
pub fn issue_access(
    state: &AppState,
    user_id: &str,
    username: Option<&str>,
    sid: Option<&str>,
    scope: Option<&str>,
    client_id: &str,
    jkt: Option<&str>,
) -> Result<String, ApiError> {
    let now = state.now();
    let claims = AccessClaims {
        iss: state.config.issuer.clone(),
        sub: user_id.to_owned(),
        aud: state.config.audience.clone(),
        exp: now.plus(state.config.access_ttl_secs),
        iat: now,
        nbf: now,
        jti: random_id().map_err(internal)?,
        sid: sid.map(str::to_owned),
        scope: scope.map(str::to_owned),
        client_id: client_id.to_owned(),
        username: username.map(str::to_owned),
        cnf: jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        }),
    };
    sign_access(state, &claims)
}

/// Signs `claims` with the current key: the one place access tokens are minted.
///
/// # Errors
/// If there is no current key or signing fails.
pub(super) fn sign_access(state: &AppState, claims: &AccessClaims) -> Result<String, ApiError> {
    let ring = state.key_ring();
    let key = ring
        .current()
        .ok_or_else(|| internal("no current signing key"))?;
    let jwt = access::issue(key, claims).map_err(internal)?;
    Metrics::inc(&state.metrics.access_tokens_issued);
    Ok(jwt)
}
