//! The authorization-code flow (OAuth 2.1 §4.1 with PKCE): the authorization request, the
//! user's decision, and the code's redemption at the token endpoint.
//!
//! Each authorization is its own node of the user's session tree: an app session (with its
//! refresh family, owned by the client) whose id is chosen when the code is made. So the app's
//! tokens carry that `sid`, revoking the node ends that app's tokens only, and a password change
//! or "sign out everywhere" ends it with every other session of the user. A second redemption
//! of a code revokes the node the first redemption made — even one still being made, since
//! the `sid` revocation is recorded before anything can carry it.

use tessera_core::authorization::{
    AuthorizationCode, CODE_TTL_SECS, RequestParams, ValidRequest, check_request,
};
use tessera_core::client::{ClientId, ClientRecord, Scope};
use tessera_core::opaque::{OpaqueToken, TokenKind, random_id};
use tessera_store::{Redemption, User};

use super::access::Binding;
use super::grants::{AppSession, TokenResponse, open_app_session};
use super::sessions::revoke_session_tree;
use super::{ClientContext, internal};
use crate::error::ApiError;
use crate::state::AppState;

/// What to do with an authorization request.
#[derive(Debug)]
pub enum Authorize {
    /// Send the browser to this URL: the client's redirect URI with a code or an error.
    Redirect(String),
    /// Ask the user first (a client that is not first-party).
    Consent(Consent),
}

/// What the consent page shows and sends back.
#[derive(Debug)]
pub struct Consent {
    /// The client's display name.
    pub client_name: String,
    /// The scope the client asks for.
    pub scope: Scope,
    /// The client's id and the request as sent, for the form's hidden fields.
    pub client_id: String,
    /// See `client_id`.
    pub params: RequestParams,
}

/// The user's answer on the consent page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Issue a code.
    Allow,
    /// Tell the client `access_denied`.
    Deny,
}

/// The client named by a request; an unknown (or malformed) id is an error page.
async fn client(state: &AppState, client_id: Option<&str>) -> Result<ClientRecord, ApiError> {
    let unknown = || ApiError::InvalidRequest("unknown client_id".into());
    let id = ClientId::parse(client_id.ok_or_else(unknown)?).map_err(|_| unknown())?;
    state.store.client(&id).await?.ok_or_else(unknown)
}

/// Checks a request; an error the client may be told about comes back as a redirect, any
/// other (unknown client, unregistered redirect URI) as an error for the user's eyes only.
async fn checked(
    state: &AppState,
    client_id: Option<&str>,
    params: &RequestParams,
) -> Result<Result<(ClientRecord, ValidRequest), String>, ApiError> {
    let client = client(state, client_id).await?;
    match check_request(&client, params) {
        Ok(valid) => Ok(Ok((client, valid))),
        Err(e) if e.redirects() => {
            let uri = params.redirect_uri.as_deref().unwrap_or_default();
            Ok(Err(redirect_to(
                state,
                uri,
                &[("error", e.code()), ("error_description", &e.to_string())],
                params.state.as_deref(),
            )))
        }
        Err(e) => Err(ApiError::InvalidRequest(e.to_string().into())),
    }
}

/// `redirect_uri` with `params`, `state` and `iss` (RFC 9207) added to its query.
fn redirect_to(
    state: &AppState,
    redirect_uri: &str,
    params: &[(&str, &str)],
    request_state: Option<&str>,
) -> String {
    let mut pairs: Vec<(&str, &str)> = params.to_vec();
    if let Some(s) = request_state.filter(|s| !s.is_empty()) {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &state.config.issuer));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{query}")
}

/// `GET /oauth/authorize` for a signed-in user: a first-party client gets its code at once,
/// any other client needs the user's consent.
///
/// # Errors
/// `InvalidRequest` for an unknown client or an unregistered redirect URI (shown to the user,
/// never redirected); a store failure.
pub async fn authorize(
    state: &AppState,
    user_id: &str,
    client_id: Option<&str>,
    params: RequestParams,
) -> Result<Authorize, ApiError> {
    let (client, valid) = match checked(state, client_id, &params).await? {
        Ok(ok) => ok,
        Err(redirect) => return Ok(Authorize::Redirect(redirect)),
    };
    if client.first_party {
        let user = user(state, user_id).await?;
        return issue_code(state, &user, &client, &valid)
            .await
            .map(Authorize::Redirect);
    }
    Ok(Authorize::Consent(Consent {
        client_name: client.name,
        scope: valid.scope,
        client_id: client.id.to_string(),
        params,
    }))
}

/// The origin an authorization request would send the browser back to — its redirect URI,
/// registered for its client, with a code or an error — or `None` for a request that only
/// shows an error page (unknown client, unregistered redirect URI) or whose redirect URI has
/// no origin a CSP can name (a custom scheme). A sign-in form that leads to the request must
/// let its post's redirects reach that origin (`form-action` governs them too).
///
/// # Errors
/// A store failure.
pub async fn redirect_origin(
    state: &AppState,
    client_id: Option<&str>,
    params: &RequestParams,
) -> Result<Option<String>, ApiError> {
    let to = match checked(state, client_id, params).await {
        Ok(Ok((_, valid))) => valid.redirect_uri,
        Ok(Err(redirect)) => redirect,
        Err(ApiError::InvalidRequest(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let origin = url::Url::parse(&to).ok().map(|u| u.origin());
    Ok(origin
        .filter(url::Origin::is_tuple)
        .map(|o| o.ascii_serialization()))
}

/// `POST /oauth/authorize`: the consent form's answer. The hidden fields are checked again
/// from scratch (they came back through the browser).
///
/// # Errors
/// As [`authorize`].
pub async fn decide(
    state: &AppState,
    user_id: &str,
    client_id: Option<&str>,
    params: RequestParams,
    decision: Decision,
) -> Result<String, ApiError> {
    let (client, valid) = match checked(state, client_id, &params).await? {
        Ok(ok) => ok,
        Err(redirect) => return Ok(redirect),
    };
    match decision {
        Decision::Deny => Ok(redirect_to(
            state,
            &valid.redirect_uri,
            &[("error", "access_denied")],
            valid.state.as_deref(),
        )),
        Decision::Allow => {
            let user = user(state, user_id).await?;
            issue_code(state, &user, &client, &valid).await
        }
    }
}

async fn user(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(ApiError::InvalidToken)
}

/// Stores a fresh code and returns the redirect that delivers it.
async fn issue_code(
    state: &AppState,
    user: &User,
    client: &ClientRecord,
    valid: &ValidRequest,
) -> Result<String, ApiError> {
    let token = OpaqueToken::generate(TokenKind::AuthorizationCode).map_err(internal)?;
    let now = state.now();
    let code = AuthorizationCode {
        client_id: client.id.clone(),
        redirect_uri: valid.redirect_uri.clone(),
        user_id: user.id.clone(),
        credential_epoch: user.credential_epoch,
        sid: random_id().map_err(internal)?,
        scope: valid.scope.clone(),
        challenge: valid.challenge.clone(),
        created_at: now,
        expires_at: now.plus(CODE_TTL_SECS),
    };
    state.store.insert_code(&token.hash(), &code).await?;
    Ok(redirect_to(
        state,
        &valid.redirect_uri,
        &[("code", token.expose_secret())],
        valid.state.as_deref(),
    ))
}

/// The parameters of the `authorization_code` grant.
pub struct Redeem {
    /// The `tac_` code.
    pub code: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The PKCE verifier.
    pub code_verifier: String,
}

fn refused(why: &'static str) -> ApiError {
    ApiError::InvalidGrant(why)
}

/// The `authorization_code` grant: redeems a code once, for `client`, into a new app session
/// owned by the client (access JWT + refresh token, bound to a DPoP key as `binding` says). A
/// second redemption revokes what the first issued.
///
/// # Errors
/// `InvalidGrant` for any refused code, or a store failure.
pub async fn redeem(
    state: &AppState,
    client: &ClientRecord,
    request: Redeem,
    ctx: &ClientContext,
    binding: Binding<'_>,
) -> Result<TokenResponse, ApiError> {
    let presented = OpaqueToken::parse(TokenKind::AuthorizationCode, &request.code)
        .map_err(|_| refused("malformed authorization code"))?;
    let now = state.now();
    let code = match state.store.redeem_code(&presented.hash(), now).await? {
        None => return Err(refused("unknown or expired authorization code")),
        Some(Redemption::Again(code)) => {
            tracing::warn!(client = %code.client_id, sid = %code.sid, "authorization code reused: revoking what it issued");
            revoke_session_tree(state, &code.sid).await?;
            return Err(refused("authorization code already used"));
        }
        Some(Redemption::First(code)) => code,
    };
    code.redeem(&client.id, &request.redirect_uri, &request.code_verifier, now)
        .map_err(|e| {
            tracing::info!(client = %client.id, reason = %e, "authorization code refused");
            refused("authorization code is invalid, expired, or was issued to another client or redirect_uri")
        })?;
    let user = state
        .store
        .user_by_id(&code.user_id)
        .await?
        .ok_or_else(|| refused("the user no longer exists"))?;
    // The epoch of the consent, not today's: a credential reset since then refuses the code
    // here or, racing the session's creation, in `open_app_session`.
    if user.credential_epoch != code.credential_epoch {
        return Err(refused(
            "the user's credentials were reset since the authorization",
        ));
    }
    let scope = (!code.scope.is_empty()).then(|| code.scope.to_string());
    open_app_session(
        state,
        &user,
        AppSession {
            sid: Some(code.sid),
            client_id: Some(client.id.as_str()),
            scope,
        },
        ctx,
        binding,
    )
    .await
    .map_err(|e| match e {
        ApiError::InvalidCredentials => refused("the user's credentials were reset"),
        other => other,
    })
}
