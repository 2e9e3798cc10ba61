//! RFC 7009 token revocation, and the revocation of one access token that it and logout use.

use tessera_core::access::AccessClaims;
use tessera_core::opaque::{OpaqueToken, TokenKind};
use tessera_core::revocation::Revocation;

use super::clients::requesting_client;
use super::grants::FIRST_PARTY_CLIENT;
use super::revoke_session;
use super::sessions::revoke_family_tree;
use crate::auth::verify_jwt_any_audience;
use crate::client_auth::ClientCredentials;
use crate::error::ApiError;
use crate::state::AppState;

/// RFC 7009 revocation of whatever token was presented: a refresh or session token ends its
/// login session's whole tree, an access JWT is revoked by `jti`. An invalid or unknown token
/// is not an error (§2.2), so revocation cannot be used to test whether a token is live.
/// An access token issued to a registered client needs that client, authenticated
/// (`credentials`; a public client may name itself by `client_id` alone).
///
/// # Errors
/// `InvalidClient` for credentials that do not check out; `InvalidRequest` without a token;
/// `UnauthorizedClient` for another client's token; a store failure, or `Unavailable` when a
/// JWT's revocation state cannot be checked.
pub async fn revoke_token(
    state: &AppState,
    token: &str,
    credentials: Option<ClientCredentials>,
) -> Result<(), ApiError> {
    let client = requesting_client(state, credentials, true, token).await?;
    match TokenKind::of(token) {
        Some(TokenKind::Refresh) => {
            if let Ok(refresh) = OpaqueToken::parse(TokenKind::Refresh, token) {
                if let Some((family, _)) = state.store.family_by_token(&refresh.hash()).await? {
                    revoke_family_tree(state, &family).await?;
                }
            }
        }
        Some(TokenKind::Session) => {
            if let Ok(session) = OpaqueToken::parse(TokenKind::Session, token) {
                if let Some(s) = state.store.session_by_token(&session.hash()).await? {
                    revoke_session(state, &s).await?;
                }
            }
        }
        Some(TokenKind::Jwt) => match verify_jwt_any_audience(state, token).await {
            // A token issued to a registered client is revoked only by that client,
            // authenticated (RFC 7009 §2.1); first-party tokens need no client.
            Ok(claims)
                if claims.client_id != FIRST_PARTY_CLIENT
                    && client
                        .as_ref()
                        .is_none_or(|c| c.id.as_str() != claims.client_id) =>
            {
                return Err(ApiError::UnauthorizedClient(
                    "the token was issued to another client",
                ));
            }
            Ok(claims) => revoke_access(state, &claims).await?,
            // Revocation state unknown (feed and store down): answering 200 would claim a
            // revocation that did not happen.
            Err(e @ ApiError::Unavailable(_)) => return Err(e),
            Err(_) => {}
        },
        // A client secret is no token of RFC 7009: it ends with the client's registration. A
        // code is no token either: it dies on first use or after a minute.
        Some(TokenKind::ClientSecret | TokenKind::AuthorizationCode) | None => {}
    }
    Ok(())
}

/// Revokes one access token by `jti` until it expires — or, past
/// `revocations_per_user` in a window, with one per-user cutoff that kills this token and every
/// older one of the user: each entry is held by every instance, so one account must not be able
/// to grow the list without bound. (Sessions and refresh tokens live on; apps refresh.)
///
/// # Errors
/// A store failure.
pub async fn revoke_access(state: &AppState, claims: &AccessClaims) -> Result<(), ApiError> {
    // Counting is only an economy: with the counters unreachable the revocation itself must
    // still happen, one entry for the one token.
    let count = match state
        .attempts
        .hit(
            &format!("revoke:{}", claims.sub),
            state.config.login_window_secs,
        )
        .await
    {
        Ok((count, _)) => count,
        Err(e) => {
            tracing::warn!(error = %crate::error::error_chain(&e), "revocation counter unavailable");
            0
        }
    };
    let revocation = if count > state.config.revocations_per_user {
        let now = state.now();
        Revocation::User {
            user_id: claims.sub.clone(),
            // `iat < not_before` revokes: this token's own second included.
            not_before: now.max(claims.iat.plus(1)),
            expires_at: now.plus(state.config.access_horizon_secs()),
        }
    } else {
        Revocation::Token {
            jti: claims.jti.clone(),
            expires_at: claims.exp.plus(state.config.leeway_secs),
        }
    };
    state.record_revocation(revocation).await
}
