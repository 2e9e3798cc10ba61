//! Token exchange (RFC 8693): a login — a session token or an access JWT — swapped for a
//! short-lived access JWT bound to another audience (a service that accepts only tokens meant
//! for it).
//!
//! The new token keeps the subject's `sid`, so ending that login (logout, reuse detection, a
//! password change) kills it with everything else of the login, on every instance and at
//! every resource server; and it never outlives the subject. It can only narrow: the same
//! user, a scope no wider than the subject's, one audience the server is configured for.

use tessera_core::access::{AccessClaims, Confirmation};
use tessera_core::client::{ClientRecord, Scope};
use tessera_core::dpop::VerifiedProof;
use tessera_core::opaque::random_id;
use tessera_core::time::UnixTime;
use tessera_core::token::TokenKind;

use super::access::{sign_access, token_type};
use super::grants::{FIRST_PARTY_CLIENT, TokenResponse};
use super::internal;
use crate::auth::{check_session, verify_jwt};
use crate::error::ApiError;
use crate::state::AppState;

/// The token type Tessera exchanges and issues: an access token (a `tss_` session token or an
/// access JWT as subject; an access JWT issued).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The parameters of an exchange.
pub struct Exchange {
    /// The token being exchanged.
    pub subject_token: String,
    /// Its type: must be [`ACCESS_TOKEN_TYPE`].
    pub subject_token_type: String,
    /// The audience asked for (default: the issuer).
    pub audience: Option<String>,
    /// The scope asked for (default: the subject's).
    pub scope: Option<String>,
}

/// Who the subject token speaks for.
struct Subject {
    user_id: String,
    username: Option<String>,
    sid: Option<String>,
    scope: Option<String>,
    client_id: String,
    /// When the subject stops being valid; the new token must not outlive it.
    ends_at: UnixTime,
    /// The DPoP key a bound subject token is bound to.
    jkt: Option<String>,
}

async fn subject(state: &AppState, token: &str) -> Result<Subject, ApiError> {
    let dead = || ApiError::InvalidGrant("subject_token is not a live session or access token");
    let live = |e: ApiError| match e {
        e @ ApiError::Unavailable(_) => e,
        _ => dead(),
    };
    match TokenKind::of(token) {
        Some(TokenKind::Session) => {
            let (session, _) = check_session(state, token).await.map_err(live)?;
            // Like refresh: a disabled user's sessions are revoked, and refused here too.
            let username = match state.store.user_by_id(&session.user_id).await? {
                Some(u) if u.disabled => return Err(dead()),
                user => user.map(|u| u.username),
            };
            Ok(Subject {
                ends_at: session.dead_at(&state.config.sessions),
                user_id: session.user_id,
                username,
                sid: Some(session.id),
                scope: None,
                client_id: FIRST_PARTY_CLIENT.to_owned(),
                jkt: None,
            })
        }
        Some(TokenKind::Jwt) => {
            let c = verify_jwt(state, token).await.map_err(live)?;
            Ok(Subject {
                user_id: c.sub,
                username: c.username,
                sid: c.sid,
                scope: c.scope,
                client_id: c.client_id,
                ends_at: c.exp,
                jkt: c.cnf.map(|cnf| cnf.jkt),
            })
        }
        _ => Err(dead()),
    }
}

/// Exchanges a live subject token for an access JWT for `request.audience`. When a client
/// authenticated, the new token is that client's (`client_id`); otherwise it keeps the
/// subject's. A DPoP-bound subject token is only exchanged with a proof by its key (else a
/// stolen bound token could be swapped for a bearer one); with a proof, the new token is
/// bound to the proof's key.
///
/// # Errors
/// `InvalidRequest` for another `subject_token_type`; `InvalidTarget` for an audience the
/// server is not configured for; `InvalidGrant` for a subject that is not live; `InvalidScope`
/// for a scope wider than the subject's; `Unavailable` when the subject's revocation state
/// cannot be known.
pub async fn exchange(
    state: &AppState,
    client: Option<&ClientRecord>,
    request: Exchange,
    proof: Option<&VerifiedProof>,
) -> Result<TokenResponse, ApiError> {
    if request.subject_token_type != ACCESS_TOKEN_TYPE {
        return Err(ApiError::InvalidRequest(
            format!("subject_token_type must be {ACCESS_TOKEN_TYPE}").into(),
        ));
    }
    let audience = match request.audience {
        Some(aud) if state.config.accepts_audience(&aud) => aud,
        Some(_) => return Err(ApiError::InvalidTarget),
        None => state.config.audience.clone(),
    };
    let subject = subject(state, &request.subject_token).await?;
    if let Some(bound) = subject.jkt.as_deref() {
        proof
            .ok_or(ApiError::InvalidDpopProof(
                "a DPoP-bound subject token needs a proof by its key",
            ))?
            .check_bound_to(bound)
            .map_err(|_| {
                ApiError::InvalidDpopProof("the proof is not by the subject token's key")
            })?;
    }
    let jkt = proof.map(|p| p.jkt().to_owned());
    let scope = narrowed(subject.scope.as_deref(), request.scope.as_deref())?;
    let now = state.now();
    let exp = subject.ends_at.min(now.plus(state.config.access_ttl_secs));
    if exp <= now {
        return Err(ApiError::InvalidGrant("the subject token has expired"));
    }
    let claims = AccessClaims {
        iss: state.config.issuer.clone(),
        sub: subject.user_id,
        aud: audience,
        exp,
        iat: now,
        nbf: now,
        jti: random_id().map_err(internal)?,
        sid: subject.sid,
        scope: scope.clone(),
        client_id: client.map_or(subject.client_id, |c| c.id.as_str().to_owned()),
        username: subject.username,
        cnf: jkt.map(|jkt| Confirmation { jkt }),
    };
    let access_token = sign_access(state, &claims)?;
    Ok(TokenResponse {
        access_token,
        token_type: token_type(claims.cnf.as_ref().map(|c| c.jkt.as_str())),
        expires_in: exp.since(now),
        refresh_token: None,
        scope,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

/// The scope of the new token: the requested one if it is within the subject's, else the
/// subject's own.
fn narrowed(subject: Option<&str>, requested: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(requested) = requested else {
        return Ok(subject.map(str::to_owned));
    };
    let malformed = |_| ApiError::InvalidRequest("malformed scope".into());
    let asked = Scope::parse(requested).map_err(malformed)?;
    let held = Scope::parse(subject.unwrap_or_default()).map_err(malformed)?;
    if asked.is_subset(&held) {
        Ok((!asked.is_empty()).then(|| asked.to_string()))
    } else {
        Err(ApiError::InvalidScope)
    }
}
