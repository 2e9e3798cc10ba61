//! The refresh grant (RFC 6749 §6): rotation with one grace retry, reuse detection that ends
//! the whole session tree, the owner client's rule and the DPoP binding of the family.

use tessera_core::audit::EventKind;
use tessera_core::client::{ClientId, ClientRecord};
use tessera_core::dpop::VerifiedProof;
use tessera_core::opaque::{OpaqueToken, TokenKind};
use tessera_core::refresh;
use tessera_store::{RotateOutcome, Successor};

use super::access::{issue_access, token_type};
use super::grants::{FIRST_PARTY_CLIENT, TokenResponse};
use super::sessions::revoke_family_tree;
use super::{ClientContext, audit, internal, revoke_session, use_session};
use crate::error::ApiError;
use crate::state::{AppState, Metrics};

/// Whether `registered` (the client the request authenticated or named) may use a refresh
/// token of `owner`'s family.
async fn check_owner(
    state: &AppState,
    owner: Option<&str>,
    registered: Option<&ClientRecord>,
) -> Result<(), ApiError> {
    let foreign = || ApiError::InvalidGrant("refresh token was issued to another client");
    match (owner, registered) {
        (None, None) => Ok(()),
        (None, Some(c)) if c.first_party => Ok(()),
        (None, Some(_)) => Err(ApiError::UnauthorizedClient(
            "only first-party clients may use first-party refresh tokens",
        )),
        (Some(owner), Some(c)) if c.id.as_str() == owner => Ok(()),
        (Some(_), Some(_)) => Err(foreign()),
        (Some(owner), None) => {
            let id = ClientId::parse(owner).map_err(|_| foreign())?;
            match state.store.client(&id).await? {
                Some(c) if c.public => Ok(()),
                Some(_) => Err(ApiError::InvalidClient),
                None => Err(foreign()),
            }
        }
    }
}

fn refused_grant() -> ApiError {
    ApiError::InvalidGrant("refresh token is invalid, expired or revoked")
}

/// The refresh grant: rotate, or replay the successor within the grace window; reuse of a
/// retired token revokes the whole session tree.
///
/// Every check that can fail — the family's session, its user, a signing key — runs before
/// the rotation, which is the commit point: a refresh answered with an error (a store down,
/// say) has not spent the token, so the client's retry with the same token works and is
/// never mistaken for reuse.
///
/// A family bound to a DPoP key (`jkt`) refreshes only with a proof by that key, checked
/// before the rotation; the new access token is bound to the proof's key whenever a proof
/// came.
///
/// The token answers only to the client it was issued to: a confidential owner must
/// authenticate as itself, a public owner may name itself or nothing, and a first-party token
/// takes no client or a first-party one.
///
/// # Errors
/// `InvalidGrant` for any refused token (one answer whatever the reason), `UnauthorizedClient`
/// for another client's token, `InvalidDpopProof` for a bound family without a proof by its
/// key, or a store failure.
pub async fn refresh(
    state: &AppState,
    presented: &str,
    client: &ClientContext,
    proof: Option<&VerifiedProof>,
    registered: Option<&ClientRecord>,
) -> Result<TokenResponse, ApiError> {
    let presented = OpaqueToken::parse(TokenKind::Refresh, presented)
        .map_err(|_| ApiError::InvalidGrant("malformed refresh token"))?;
    let (family, _) = state
        .store
        .family_by_token(&presented.hash())
        .await?
        .ok_or_else(refused_grant)?;
    if family.revoked_at.is_some() {
        // A family is revoked only with its whole tree (logout, reset, reuse). If the session
        // outlived it, that cascade failed half-way (reuse committed by `rotate`, then the
        // store gave way): finish it now, so a retry never leaves the tree standing.
        if let Some(session) = state.store.session_by_id(&family.sid).await? {
            tracing::warn!(family = %family.id, sid = %family.sid, "finishing the revocation of a revoked family's session tree");
            revoke_session(state, &session).await?;
        }
        return Err(refused_grant());
    }
    check_owner(state, family.client_id.as_deref(), registered).await?;
    // The tree is cut at the root: a dead session refuses its family's tokens. (A family
    // expired on its own is refused, and a retired token detected as reuse, by the rotation.)
    let session = state
        .store
        .session_by_id(&family.sid)
        .await?
        .ok_or_else(refused_grant)?;
    if let Some(bound) = family.jkt.as_deref() {
        proof
            .ok_or(ApiError::InvalidDpopProof(
                "this refresh token is DPoP-bound: send a proof by its key",
            ))?
            .check_bound_to(bound)
            .map_err(|_| {
                ApiError::InvalidDpopProof("the proof is not by the refresh token's key")
            })?;
    }
    use_session(state, session).await.map_err(|e| match e {
        ApiError::InvalidToken => refused_grant(),
        other => other,
    })?;
    // A disabled user's tree was revoked when they were disabled; refusing here as well
    // covers a refresh that raced the disable between its flag and its revocations.
    let username = match state.store.user_by_id(&family.user_id).await? {
        Some(u) if u.disabled => return Err(refused_grant()),
        user => user.map(|u| u.username),
    };
    if state.key_ring().current().is_none() {
        return Err(internal("no current signing key"));
    }
    // The successor is offered up front, sealed under the presented token, so rotation is a
    // single atomic store call.
    let candidate = OpaqueToken::generate(TokenKind::Refresh).map_err(internal)?;
    let successor = Successor {
        hash: candidate.hash(),
        sealed: refresh::seal_successor(&presented, &candidate).map_err(internal)?,
    };
    let outcome = state
        .store
        .rotate(
            &presented.hash(),
            state.now(),
            state.config.refresh_grace_secs,
            &successor,
        )
        .await?;
    let (family, next) = match outcome {
        RotateOutcome::Rotated(family) => {
            Metrics::inc(&state.metrics.refresh_rotations);
            (family, candidate)
        }
        RotateOutcome::GraceRetry { family, sealed } => {
            // The one replay a rotation allows (a client that lost the response); logged and
            // counted, since a thief holding the previous token looks the same.
            Metrics::inc(&state.metrics.refresh_grace_replays);
            tracing::warn!(family = %family.id, sid = %family.sid, "refresh token replayed within the grace window");
            let next = refresh::open_successor(&presented, &sealed).map_err(|_| refused_grant())?;
            (family, next)
        }
        RotateOutcome::Reused(family) => {
            Metrics::inc(&state.metrics.refresh_reuse_detected);
            tracing::warn!(family = %family.id, sid = %family.sid, "refresh token reuse: revoking the session tree");
            revoke_family_tree(state, &family).await?;
            let detail = format!(
                "refresh family {} (session {}) revoked",
                family.id, family.sid
            );
            audit::record_for(
                state,
                EventKind::RefreshReuse,
                &family.user_id,
                client.ip,
                detail,
            )
            .await;
            return Err(refused_grant());
        }
        RotateOutcome::Refused => return Err(refused_grant()),
    };
    let client = family.client_id.as_deref().unwrap_or(FIRST_PARTY_CLIENT);
    let jkt = proof.map(VerifiedProof::jkt);
    let access_token = issue_access(
        state,
        &family.user_id,
        username.as_deref(),
        Some(&family.sid),
        family.scope.as_deref(),
        client,
        jkt,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: token_type(jkt),
        expires_in: state.config.access_ttl_secs,
        refresh_token: Some(next.expose_secret().to_owned()),
        scope: family.scope,
        issued_token_type: None,
    })
}
