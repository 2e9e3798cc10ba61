//! The OAuth2 endpoints: `/oauth/token` (RFC 6749), `/oauth/revoke` (RFC 7009) and
//! `/oauth/introspect` (RFC 7662). All take JSON or form bodies, and client authentication by
//! HTTP Basic or by body fields.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::client_auth::{BasicCredentials, ClientCredentials};
use crate::dpop::TokenEndpointProof;
use crate::error::ApiError;
use crate::extract::Input;
use crate::routes::openapi::shapes::Introspection;
use crate::routes::openapi::{
    BadRequest, InvalidClient, PayloadTooLarge, RateLimited, TokenError, Unavailable,
    UnsupportedMediaType,
};
use crate::service::{self, ClientContext, TokenRequest, TokenResponse};
use crate::state::AppState;

/// Issue tokens (RFC 6749).
///
/// Grants: `password` (first-party login: a new app session, an access JWT and a refresh
/// token), `refresh_token` (rotates: the presented token is retired and a successor returned;
/// a retry within the grace window returns the same successor; later reuse revokes the whole
/// session tree), `client_credentials` (a confidential client's token for itself) and token
/// exchange (RFC 8693: a session token or access JWT for an audience-bound access JWT).
/// First-party apps need no client credentials. Form-encoded and JSON bodies are both
/// accepted.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    operation_id = "token",
    security((), ("clientBasic" = [])),
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof (RFC 9449): the issued access token is bound to its key (`token_type: DPoP`), and so is the refresh token of a client without a secret. Required for clients registered with `dpop`, and to refresh a bound refresh token.")),
    request_body(content(
        (TokenRequest = "application/x-www-form-urlencoded"),
        (TokenRequest = "application/json")
    )),
    responses(
        (status = 200, description = "Tokens issued (RFC 6749 §5.1).", body = TokenResponse,
            headers(
                ("Cache-Control" = String, description = "`no-store`"),
                ("Pragma" = String, description = "`no-cache`"),
            )),
        (status = 400, response = TokenError),
        (status = 401, response = InvalidClient),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn token(
    State(state): State<AppState>,
    client: ClientContext,
    basic: BasicCredentials,
    TokenEndpointProof(proof): TokenEndpointProof,
    Input(req): Input<TokenRequest>,
) -> Result<Response, ApiError> {
    let granted = service::token(&state, req, basic, &client, proof).await?;
    let mut resp = Json(&granted.body).into_response();
    super::set_device_cookie(&mut resp, granted.device_cookie);
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// `{"token", "token_type_hint"}` (RFC 7009 §2.1, RFC 7662 §2.1), and optionally the
/// client's credentials (`client_secret_post`).
#[derive(Deserialize, ToSchema)]
#[schema(as = RevokeRequest)]
pub(super) struct TokenQuery {
    #[schema(min_length = 1)]
    token: String,
    /// Accepted and ignored: the token's form says what it is.
    #[serde(rename = "token_type_hint")]
    _hint: Option<String>,
    /// client_secret_post: the client id (instead of Basic).
    client_id: Option<String>,
    /// client_secret_post: the client secret.
    #[schema(format = Password)]
    client_secret: Option<String>,
}

impl TokenQuery {
    /// The token, and the client credentials sent with it (Basic or `client_secret_post`).
    fn into_parts(
        self,
        basic: BasicCredentials,
    ) -> Result<(String, Option<ClientCredentials>), ApiError> {
        let credentials =
            ClientCredentials::from_request(basic, self.client_id, self.client_secret)?;
        Ok((self.token, credentials))
    }
}

/// Revoke a token (RFC 7009).
///
/// Takes a refresh token (logs its app session out, access tokens included), a session token
/// (logs that session out), or an access JWT (revoked by `jti` until it expires). First-party
/// tokens need no client authentication; a client's tokens are revoked only by that client.
/// An unknown or invalid token is not an error: the answer is 200 either way (RFC 7009 §2.2),
/// so the endpoint cannot be used to test whether a token is live.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    operation_id = "revoke",
    security((), ("clientBasic" = [])),
    request_body(content(
        (TokenQuery = "application/x-www-form-urlencoded"),
        (TokenQuery = "application/json")
    )),
    responses(
        (status = 200, description = "Revoked, or there was nothing to revoke. Empty body."),
        (status = 400, response = BadRequest),
        (status = 401, response = InvalidClient),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    basic: BasicCredentials,
    Input(req): Input<TokenQuery>,
) -> Result<Response, ApiError> {
    let (token, credentials) = req.into_parts(basic)?;
    service::revoke_token(&state, &token, credentials).await?;
    Ok(StatusCode::OK.into_response())
}

/// Introspect a token (RFC 7662).
///
/// Client authentication required (Basic or body). A live access JWT or session token:
/// `active: true` with `sub`, `client_id`, `scope`, `exp`, `iat`, `iss`, `aud`, `jti`, `sid`,
/// `username`, `token_type` where the token has them; anything else (expired, revoked,
/// forged, unknown, a refresh token): `{"active": false}`.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    operation_id = "introspect",
    security(("clientBasic" = []), ()),
    request_body(content(
        (TokenQuery = "application/x-www-form-urlencoded"),
        (TokenQuery = "application/json")
    )),
    responses(
        (status = 200, description = "The token's state.", body = Introspection),
        (status = 400, response = BadRequest),
        (status = 401, response = InvalidClient),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn introspect(
    State(state): State<AppState>,
    basic: BasicCredentials,
    Input(req): Input<TokenQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (token, credentials) = req.into_parts(basic)?;
    Ok(Json(
        service::introspect(&state, &token, credentials).await?,
    ))
}
