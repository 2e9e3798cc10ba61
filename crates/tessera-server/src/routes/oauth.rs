//! The OAuth2 endpoints: `/oauth/token` (RFC 6749) and `/oauth/revoke` (RFC 7009). Both take
//! JSON or form bodies.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::Input;
use crate::service::{self, ClientContext, TokenRequest};
use crate::state::AppState;

/// `POST /oauth/token`.
pub(super) async fn token(
    State(state): State<AppState>,
    client: ClientContext,
    Input(req): Input<TokenRequest>,
) -> Result<Response, ApiError> {
    let granted = service::token(&state, req, &client).await?;
    let mut resp = Json(&granted.body).into_response();
    super::set_device_cookie(&mut resp, granted.device_cookie);
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// `{"token", "token_type_hint"}` (RFC 7009 §2.1).
#[derive(Deserialize)]
pub(super) struct RevokeRequest {
    token: String,
    #[serde(rename = "token_type_hint")]
    _hint: Option<String>,
}

/// `POST /oauth/revoke`. First-party tokens need no client authentication; the answer is 200
/// whether or not the token was live (RFC 7009 §2.2).
pub(super) async fn revoke(
    State(state): State<AppState>,
    Input(req): Input<RevokeRequest>,
) -> Result<Response, ApiError> {
    if req.token.is_empty() {
        return Err(ApiError::InvalidRequest("missing parameter token".into()));
    }
    service::revoke_token(&state, &req.token).await?;
    Ok(StatusCode::OK.into_response())
}
