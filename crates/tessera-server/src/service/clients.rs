//! Flows of registered clients: authenticating one, registering and deleting one, the
//! `client_credentials` grant, and introspection (RFC 7662).

use serde_json::{Map, Value, json};
use tessera_core::client::{ClientId, ClientRecord, ClientSecret, NewClient, Scope};
use tessera_core::revocation::Revocation;
use tessera_core::token::TokenKind;

use crate::auth::{check_session, verify_jwt_any_audience};
use crate::client_auth::ClientCredentials;
use crate::error::ApiError;
use crate::state::AppState;

use super::audit::{Actor, record_admin_action};
use tessera_core::audit::EventKind;

use super::access::{issue_access, token_type};
use super::grants::TokenResponse;

/// The registered, confidential client these credentials name, if the secret is right.
///
/// # Errors
/// `InvalidClient` for an unknown or malformed id, a public client (it has no secret to
/// authenticate with), a missing or wrong secret; a store failure.
pub async fn authenticate_client(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<ClientRecord, ApiError> {
    let id = ClientId::parse(&credentials.id).map_err(|_| ApiError::InvalidClient)?;
    let client = state
        .store
        .client(&id)
        .await?
        .ok_or(ApiError::InvalidClient)?;
    let secret = credentials.secret.as_ref().ok_or(ApiError::InvalidClient)?;
    if client.verify_secret(secret) {
        Ok(client)
    } else {
        Err(ApiError::InvalidClient)
    }
}

/// The public client a request names by `client_id` alone (RFC 6749 §3.2.1): it has no secret
/// to prove it, so only grants made for public clients accept this.
///
/// # Errors
/// `InvalidClient` unless the id names a public client; a store failure.
pub async fn identify_public_client(state: &AppState, id: &str) -> Result<ClientRecord, ApiError> {
    let id = ClientId::parse(id).map_err(|_| ApiError::InvalidClient)?;
    match state.store.client(&id).await? {
        Some(client) if client.public => Ok(client),
        _ => Err(ApiError::InvalidClient),
    }
}

/// The client a revocation or introspection request names: one authenticated by its secret,
/// or — where `public` allows it (revocation, RFC 7009 §2.1) — a public client named by
/// `client_id` alone. Then the token must be there: a client that fails to authenticate is
/// told so first, whatever else is wrong.
///
/// # Errors
/// `InvalidClient` as [`authenticate_client`] and [`identify_public_client`] say;
/// `InvalidRequest` without a token; a store failure.
pub(super) async fn requesting_client(
    state: &AppState,
    credentials: Option<ClientCredentials>,
    public: bool,
    token: &str,
) -> Result<Option<ClientRecord>, ApiError> {
    let client = match credentials {
        Some(c) if public && c.secret.is_none() => {
            Some(identify_public_client(state, &c.id).await?)
        }
        Some(c) => Some(authenticate_client(state, &c).await?),
        None => None,
    };
    if token.is_empty() {
        return Err(ApiError::InvalidRequest("missing parameter token".into()));
    }
    Ok(client)
}

/// Registers a client; returns it and, for a confidential client, its secret (shown once).
///
/// # Errors
/// `InvalidRequest` naming the rule a field breaks; a store failure.
pub async fn register_client(
    state: &AppState,
    new: NewClient,
    actor: &Actor,
) -> Result<(ClientRecord, Option<ClientSecret>), ApiError> {
    let (record, secret) = new
        .register(state.now())
        .map_err(|e| ApiError::InvalidRequest(e.to_string().into()))?;
    state.store.insert_client(&record).await?;
    let what = format!(
        "registered client {} ({:?}, {})",
        record.id.as_str(),
        record.name,
        if record.public {
            "public"
        } else {
            "confidential"
        }
    );
    record_admin_action(state, actor, EventKind::ClientCreated, None, &what).await;
    Ok((record, secret))
}

/// Every registered client, oldest first.
///
/// # Errors
/// A store failure.
pub async fn clients(state: &AppState) -> Result<Vec<ClientRecord>, ApiError> {
    Ok(state.store.clients().await?)
}

/// Deletes a client and ends its tokens (every token issued to it: its own, and those it
/// holds for users); returns whether the client existed.
///
/// The revocation is recorded before the registration goes — so a deletion that fails half
/// way leaves the client known and the admin's retry finds it — and again after, with its
/// cutoff five minutes (`IN_FLIGHT_SECS`) ahead: a grant that authenticated the client just
/// before the deletion may sign its token just after it, and that token must die too. Client
/// ids are random and never reused, so a cutoff in the future touches no other client; and no
/// grant needs to read the registration again after committing its own writes, where a store
/// failure would answer 503 for a refresh token already spent.
///
/// # Errors
/// A store failure.
pub async fn delete_client(
    state: &AppState,
    id: &ClientId,
    actor: &Actor,
) -> Result<bool, ApiError> {
    let Some(client) = state.store.client(id).await? else {
        return Ok(false);
    };
    revoke_client_tokens(state, id, 1).await?;
    let existed = state.store.delete_client(id).await?;
    revoke_client_tokens(state, id, IN_FLIGHT_SECS).await?;
    let what = format!("deleted client {} ({:?})", id.as_str(), client.name);
    record_admin_action(state, actor, EventKind::ClientDeleted, None, &what).await;
    Ok(existed)
}

/// How long a grant may take from authenticating its client to signing the token, many times
/// over: every step between is a store call bounded by the store's own timeouts (a few
/// seconds) or CPU work.
const IN_FLIGHT_SECS: i64 = 300;

/// Revokes every token issued to the client — its own (`sub`) and those it holds for users
/// (`client_id`) — up to `ahead` seconds from now.
async fn revoke_client_tokens(state: &AppState, id: &ClientId, ahead: i64) -> Result<(), ApiError> {
    let not_before = state.now().plus(ahead);
    state
        .record_revocation(Revocation::User {
            user_id: id.as_str().to_owned(),
            not_before,
            expires_at: not_before.plus(state.config.access_horizon_secs()),
        })
        .await
}

/// `grant_type=client_credentials` (RFC 6749 §4.4): an access token for the client itself
/// (`sub` = `client_id`, no `sid`, no refresh token), with the requested scope — every scope
/// the client may be granted when none is asked for.
///
/// A client deleted while this runs gets a token that is already revoked ([`delete_client`]).
///
/// # Errors
/// `InvalidClient` without credentials; `InvalidScope` for a scope beyond the client's; a
/// store failure.
pub async fn client_credentials(
    state: &AppState,
    client: Option<&ClientRecord>,
    requested: Option<&str>,
    jkt: Option<&str>,
) -> Result<TokenResponse, ApiError> {
    let client = client.ok_or(ApiError::InvalidClient)?;
    let scope = match requested.filter(|s| !s.is_empty()) {
        Some(raw) => {
            let asked = Scope::parse(raw)
                .map_err(|_| ApiError::InvalidRequest("malformed scope".into()))?;
            if !asked.is_subset(&client.scope) {
                return Err(ApiError::InvalidScope);
            }
            asked
        }
        None => client.scope.clone(),
    };
    let scope = (!scope.is_empty()).then(|| scope.to_string());
    let id = client.id.as_str();
    let access = issue_access(state, id, None, None, scope.as_deref(), id, jkt)?;
    Ok(TokenResponse {
        access_token: access,
        token_type: token_type(jkt),
        expires_in: state.config.access_ttl_secs,
        refresh_token: None,
        scope,
        issued_token_type: None,
    })
}

/// RFC 7662 introspection: the live token's facts, or `{"active": false}` for anything else
/// (expired, revoked, forged, unknown, a refresh token). Introspection is itself
/// client-authenticated (`credentials`), so answering it reveals nothing to a stranger.
///
/// # Errors
/// `InvalidClient` unless a confidential client authenticates; `InvalidRequest` without a
/// token; `Unavailable` when revocation state cannot be known (feed and store down):
/// `active:true` could then be a lie, and `active:false` would log people out for an outage.
pub async fn introspect(
    state: &AppState,
    token: &str,
    credentials: Option<ClientCredentials>,
) -> Result<Value, ApiError> {
    requesting_client(state, credentials, false, token)
        .await?
        .ok_or(ApiError::InvalidClient)?;
    let inactive = || json!({ "active": false });
    let facts = match TokenKind::of(token) {
        Some(TokenKind::Jwt) => match verify_jwt_any_audience(state, token).await {
            Ok(c) => {
                let mut m = Map::new();
                m.insert("active".into(), true.into());
                let jkt = c.cnf.map(|cnf| cnf.jkt);
                m.insert("token_type".into(), token_type(jkt.as_deref()).into());
                m.insert("iss".into(), c.iss.into());
                m.insert("sub".into(), c.sub.into());
                m.insert("aud".into(), c.aud.into());
                m.insert("exp".into(), c.exp.0.into());
                m.insert("iat".into(), c.iat.0.into());
                m.insert("jti".into(), c.jti.into());
                m.insert("client_id".into(), c.client_id.into());
                for (k, v) in [("sid", c.sid), ("scope", c.scope), ("username", c.username)] {
                    if let Some(v) = v {
                        m.insert(k.into(), v.into());
                    }
                }
                if let Some(jkt) = jkt {
                    m.insert("cnf".into(), json!({ "jkt": jkt }));
                }
                Value::Object(m)
            }
            Err(e @ ApiError::Unavailable(_)) => return Err(e),
            Err(_) => inactive(),
        },
        Some(TokenKind::Session) => match check_session(state, token).await {
            Ok((session, _)) => {
                let username = state
                    .store
                    .user_by_id(&session.user_id)
                    .await?
                    .map(|u| u.username);
                let mut m = json!({
                    "active": true,
                    "token_type": "session",
                    "iss": state.config.issuer,
                    "sub": session.user_id,
                    "sid": session.id,
                    "iat": session.created_at,
                    "exp": session.expires_at,
                });
                if let (Some(obj), Some(name)) = (m.as_object_mut(), username) {
                    obj.insert("username".into(), name.into());
                }
                m
            }
            Err(e @ ApiError::Unavailable(_)) => return Err(e),
            Err(_) => inactive(),
        },
        _ => inactive(),
    };
    Ok(facts)
}
