//! The OAuth2 endpoints: `/oauth/token` (RFC 6749 password and refresh grants) and
//! `/oauth/revoke` (RFC 7009). Both take JSON or form bodies.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::opaque::{OpaqueToken, TokenKind};

use crate::auth::verify_jwt;
use crate::error::ApiError;
use crate::extract::{ClientIp, Input, device_cookie, user_agent};
use crate::service;
use crate::state::AppState;

/// Every parameter any grant uses; each grant checks its own.
#[derive(Deserialize)]
pub(super) struct TokenRequest {
    grant_type: String,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

fn required(v: Option<String>, name: &'static str) -> Result<String, ApiError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::InvalidRequest(format!("missing parameter {name}").into()))
}

/// Validates an RFC 6749 §3.3 scope: space-separated tokens of printable ASCII except `"` and `\`.
fn scope(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let ok = raw.len() <= 1024
        && raw.split(' ').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        });
    if ok {
        Ok(Some(raw))
    } else {
        Err(ApiError::InvalidRequest("malformed scope".into()))
    }
}

/// `POST /oauth/token`.
pub(super) async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Input(req): Input<TokenRequest>,
) -> Result<Response, ApiError> {
    let body = match req.grant_type.as_str() {
        "password" => {
            let username = required(req.username, "username")?;
            let password = required(req.password, "password")?;
            let scope = scope(req.scope)?;
            let user = service::login(&state, &username, password, ip, device_cookie(&headers))
                .await
                .map_err(|e| match e {
                    ApiError::InvalidCredentials => {
                        ApiError::InvalidGrant("unknown user or wrong password")
                    }
                    other => other,
                })?;
            service::start_app_session(&state, &user, scope, user_agent(&headers), ip).await?
        }
        "refresh_token" => {
            service::refresh(&state, &required(req.refresh_token, "refresh_token")?).await?
        }
        _ => return Err(ApiError::UnsupportedGrantType),
    };
    let mut resp = Json(body).into_response();
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

/// `POST /oauth/revoke`. First-party tokens need no client authentication. Per RFC 7009 §2.2 an
/// invalid or unknown token is not an error: the answer is 200 either way, so this endpoint
/// cannot be used to test whether a token is live.
pub(super) async fn revoke(
    State(state): State<AppState>,
    Input(req): Input<RevokeRequest>,
) -> Result<Response, ApiError> {
    let token = req.token.as_str();
    if token.is_empty() {
        return Err(ApiError::InvalidRequest("missing parameter token".into()));
    }
    if let Ok(refresh) = OpaqueToken::parse(TokenKind::Refresh, token) {
        // Revoking a refresh token logs the app session out, access tokens included.
        if let Some((family, _)) = state.store.family_by_token(&refresh.hash()).await? {
            service::revoke_session_tree(&state, &family.sid).await?;
        }
    } else if let Ok(session) = OpaqueToken::parse(TokenKind::Session, token) {
        if let Some(s) = state.store.session_by_token(&session.hash()).await? {
            service::revoke_session_tree(&state, &s.id).await?;
        }
    } else if let Ok(claims) = verify_jwt(&state, token).await {
        service::revoke_access(&state, &claims).await?;
    }
    Ok(StatusCode::OK.into_response())
}
