//! The OAuth2 endpoints: `/oauth/token` (RFC 6749), `/oauth/revoke` (RFC 7009) and
//! `/oauth/introspect` (RFC 7662). All take JSON or form bodies, and client authentication by
//! HTTP Basic or by body fields.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::client_auth::{BasicCredentials, ClientCredentials};
use crate::error::ApiError;
use crate::extract::Input;
use crate::service::{self, ClientContext, TokenRequest};
use crate::state::AppState;

/// `POST /oauth/token`.
pub(super) async fn token(
    State(state): State<AppState>,
    client: ClientContext,
    basic: BasicCredentials,
    Input(req): Input<TokenRequest>,
) -> Result<Response, ApiError> {
    let granted = service::token(&state, req, basic, &client).await?;
    let mut resp = Json(&granted.body).into_response();
    super::set_device_cookie(&mut resp, granted.device_cookie);
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// `{"token", "token_type_hint"}` (RFC 7009 §2.1, RFC 7662 §2.1), and optionally the
/// client's credentials (`client_secret_post`).
#[derive(Deserialize)]
pub(super) struct TokenQuery {
    token: String,
    #[serde(rename = "token_type_hint")]
    _hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl TokenQuery {
    /// The token, and the client if the request authenticated one.
    async fn parse(
        self,
        state: &AppState,
        basic: BasicCredentials,
    ) -> Result<(String, Option<tessera_core::client::ClientRecord>), ApiError> {
        let credentials =
            ClientCredentials::from_request(basic, self.client_id, self.client_secret)?;
        let client = match credentials {
            Some(c) => Some(service::authenticate_client(state, &c).await?),
            None => None,
        };
        if self.token.is_empty() {
            return Err(ApiError::InvalidRequest("missing parameter token".into()));
        }
        Ok((self.token, client))
    }
}

/// `POST /oauth/revoke`. First-party tokens need no client authentication; the answer is 200
/// whether or not the token was live (RFC 7009 §2.2).
pub(super) async fn revoke(
    State(state): State<AppState>,
    basic: BasicCredentials,
    Input(req): Input<TokenQuery>,
) -> Result<Response, ApiError> {
    let (token, client) = req.parse(&state, basic).await?;
    service::revoke_token(&state, &token, client.as_ref()).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /oauth/introspect` (RFC 7662): client authentication required.
pub(super) async fn introspect(
    State(state): State<AppState>,
    basic: BasicCredentials,
    Input(req): Input<TokenQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (token, client) = req.parse(&state, basic).await?;
    client.ok_or(ApiError::InvalidClient)?;
    Ok(Json(service::introspect(&state, &token).await?))
}
