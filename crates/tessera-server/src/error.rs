//! The one place where failures become HTTP responses.
//!
//! Every error leaves as an OAuth2-style body, `{"error": "<code>", "error_description": "…"}`,
//! with a fitting 4xx status (RFC 6749 §5.2, RFC 6750 §3). Security failures collapse to one
//! outward answer ("invalid token") while the log records the real reason; internal details
//! (store errors) are logged and never sent. A 5xx only ever means the server or its store
//! failed, never that the input was bad.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_store::StoreError;

/// An error answer of the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed (400 `invalid_request`).
    #[error("invalid request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// A grant (password, refresh token) was refused (400 `invalid_grant`).
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// Client authentication failed: unknown client, wrong secret, or none where one is
    /// needed (401 `invalid_client`, `WWW-Authenticate: Basic`; RFC 6749 §5.2).
    #[error("invalid client")]
    InvalidClient,
    /// The client may not use this grant (400 `unauthorized_client`).
    #[error("unauthorized client: {0}")]
    UnauthorizedClient(&'static str),
    /// Token exchange asked for an audience this server does not issue for (400
    /// `invalid_target`, RFC 8693 §2.2.2).
    #[error("invalid target")]
    InvalidTarget,
    /// The requested scope exceeds what the client may be granted (400 `invalid_scope`).
    #[error("invalid scope")]
    InvalidScope,
    /// The `grant_type` is not one this server takes (400 `unsupported_grant_type`).
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// The proposed password breaks the policy (400 `weak_password`).
    #[error("weak password: {0}")]
    WeakPassword(String),
    /// No credentials were presented (401, `WWW-Authenticate` without an error code).
    #[error("authentication required")]
    Unauthenticated,
    /// The presented credential is not valid, for whatever reason (401 `invalid_token`).
    #[error("invalid token")]
    InvalidToken,
    /// Username or password wrong, or the user does not exist: one answer for both (401).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A cookie-authenticated write failed the CSRF defence (403).
    #[error("csrf: {0}")]
    Csrf(&'static str),
    /// Authenticated, but not allowed: an admin route for a user who is not one (403).
    #[error("forbidden")]
    Forbidden,
    /// The thing named does not exist, or is not the caller's (404).
    #[error("not found")]
    NotFound,
    /// The HTTP method is not allowed on this path (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The username is taken (409).
    #[error("username taken")]
    UsernameTaken,
    /// The body is larger than the server accepts (413).
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body's media type is not JSON or a form (415).
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Too many attempts; retry after the given seconds (429).
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the next attempt may succeed.
        retry_after: u64,
    },
    /// Too much password-hashing work is queued; retry after the given seconds (503).
    #[error("overloaded")]
    Overloaded {
        /// Seconds to wait before retrying.
        retry_after: u64,
    },
    /// The store is unreachable (503); the credential may be fine.
    #[error("store unavailable")]
    Unavailable(#[source] StoreError),
    /// A server-side failure (500); details are logged only.
    #[error("internal error: {0}")]
    Internal(Cow<'static, str>),
}

/// The `error` member of every error body: RFC 6749 §5.2 and RFC 6750 §3 codes, and
/// Tessera's own for what OAuth2 has no code for. The OpenAPI description lists exactly these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_grant`
    InvalidGrant,
    /// `invalid_client`
    InvalidClient,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `invalid_target`
    InvalidTarget,
    /// `invalid_scope`
    InvalidScope,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `weak_password`
    WeakPassword,
    /// `unauthenticated`
    Unauthenticated,
    /// `invalid_token`
    InvalidToken,
    /// `invalid_credentials`
    InvalidCredentials,
    /// `csrf_rejected`
    CsrfRejected,
    /// `forbidden`
    Forbidden,
    /// `not_found`
    NotFound,
    /// `method_not_allowed`
    MethodNotAllowed,
    /// `username_taken`
    UsernameTaken,
    /// `slow_down`
    SlowDown,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `server_error`
    ServerError,
}

/// Every error answer's body: `{"error": "<code>", "error_description": "…"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, as a code a client can act on.
    pub error: ErrorCode,
    /// For the developer reading it; never a secret or an internal detail.
    pub error_description: Cow<'static, str>,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable(e),
            other => Self::Internal(Cow::Owned(error_chain(&other))),
        }
    }
}

/// The error and all its sources, for the log.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

impl ApiError {
    /// The status, code and outward description: the one table (the pages show it too).
    pub(crate) fn parts(&self) -> (StatusCode, ErrorCode, Cow<'static, str>) {
        use ErrorCode as C;
        use StatusCode as S;
        match self {
            Self::InvalidRequest(d) => (S::BAD_REQUEST, C::InvalidRequest, d.clone()),
            Self::InvalidGrant(d) => (S::BAD_REQUEST, C::InvalidGrant, Cow::Borrowed(*d)),
            Self::InvalidClient => (
                S::UNAUTHORIZED,
                C::InvalidClient,
                "client authentication failed".into(),
            ),
            Self::UnauthorizedClient(d) => {
                (S::BAD_REQUEST, C::UnauthorizedClient, Cow::Borrowed(*d))
            }
            Self::InvalidTarget => (
                S::BAD_REQUEST,
                C::InvalidTarget,
                "the audience is not one this server issues tokens for".into(),
            ),
            Self::InvalidScope => (
                S::BAD_REQUEST,
                C::InvalidScope,
                "the scope exceeds what the client may be granted".into(),
            ),
            Self::UnsupportedGrantType => (
                S::BAD_REQUEST,
                C::UnsupportedGrantType,
                format!(
                    "grant_type must be one of: {}",
                    crate::service::GrantType::supported().join(", ")
                )
                .into(),
            ),
            Self::WeakPassword(d) => (S::BAD_REQUEST, C::WeakPassword, Cow::Owned(d.clone())),
            Self::Unauthenticated => (
                S::UNAUTHORIZED,
                C::Unauthenticated,
                "authentication required".into(),
            ),
            Self::InvalidToken => (
                S::UNAUTHORIZED,
                C::InvalidToken,
                "the credential is invalid".into(),
            ),
            Self::InvalidCredentials => (
                S::UNAUTHORIZED,
                C::InvalidCredentials,
                "unknown user or wrong password".into(),
            ),
            Self::Csrf(d) => (S::FORBIDDEN, C::CsrfRejected, Cow::Borrowed(*d)),
            Self::Forbidden => (
                S::FORBIDDEN,
                C::Forbidden,
                "this needs an administrator".into(),
            ),
            Self::NotFound => (S::NOT_FOUND, C::NotFound, "no such resource".into()),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                C::MethodNotAllowed,
                "method not allowed here".into(),
            ),
            Self::UsernameTaken => (
                S::CONFLICT,
                C::UsernameTaken,
                "that username is taken".into(),
            ),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                C::InvalidRequest,
                "request body too large".into(),
            ),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                C::InvalidRequest,
                "send application/json or application/x-www-form-urlencoded".into(),
            ),
            Self::RateLimited { .. } => (
                S::TOO_MANY_REQUESTS,
                C::SlowDown,
                "too many attempts; retry later".into(),
            ),
            Self::Overloaded { .. } => (
                S::SERVICE_UNAVAILABLE,
                C::TemporarilyUnavailable,
                "too many password checks in progress; retry later".into(),
            ),
            Self::Unavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                C::TemporarilyUnavailable,
                "the credential store is unavailable".into(),
            ),
            Self::Internal(_) => (
                S::INTERNAL_SERVER_ERROR,
                C::ServerError,
                "internal error".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(detail) => tracing::error!(%detail, "internal error"),
            Self::Unavailable(e) => tracing::warn!(error = %error_chain(e), "store unavailable"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let (status, code, description) = self.parts();
        let body = ErrorBody {
            error: code,
            error_description: description,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Self::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tessera\""),
                );
            }
            Self::InvalidToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tessera\", error=\"invalid_token\""),
                );
            }
            Self::InvalidClient => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tessera\""),
                );
            }
            Self::RateLimited { retry_after } | Self::Overloaded { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant once; the match makes a new variant a compile error here until it is
    /// listed, so its code cannot escape the check below.
    fn every_variant() -> Vec<ApiError> {
        let all = vec![
            ApiError::InvalidRequest("x".into()),
            ApiError::InvalidGrant("x"),
            ApiError::InvalidClient,
            ApiError::UnauthorizedClient("x"),
            ApiError::InvalidScope,
            ApiError::InvalidTarget,
            ApiError::Forbidden,
            ApiError::UnsupportedGrantType,
            ApiError::WeakPassword("x".into()),
            ApiError::Unauthenticated,
            ApiError::InvalidToken,
            ApiError::InvalidCredentials,
            ApiError::Csrf("x"),
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::UsernameTaken,
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType,
            ApiError::RateLimited { retry_after: 1 },
            ApiError::Overloaded { retry_after: 1 },
            ApiError::Unavailable(StoreError::Unavailable("down".into())),
            ApiError::Internal("x".into()),
        ];
        for e in &all {
            match e {
                ApiError::InvalidRequest(_)
                | ApiError::InvalidGrant(_)
                | ApiError::InvalidClient
                | ApiError::UnauthorizedClient(_)
                | ApiError::InvalidScope
                | ApiError::InvalidTarget
                | ApiError::Forbidden
                | ApiError::UnsupportedGrantType
                | ApiError::WeakPassword(_)
                | ApiError::Unauthenticated
                | ApiError::InvalidToken
                | ApiError::InvalidCredentials
                | ApiError::Csrf(_)
                | ApiError::NotFound
                | ApiError::MethodNotAllowed
                | ApiError::UsernameTaken
                | ApiError::PayloadTooLarge
                | ApiError::UnsupportedMediaType
                | ApiError::RateLimited { .. }
                | ApiError::Overloaded { .. }
                | ApiError::Unavailable(_)
                | ApiError::Internal(_) => {}
            }
        }
        all
    }

    /// schemathesis (scripts/interop) once found codes the server sent missing from the
    /// hand-kept description; now the schema is generated from [`ErrorCode`], and this checks
    /// every variant's code really is in the generated document.
    #[test]
    fn the_generated_error_schema_lists_every_error_code_the_server_sends() {
        let doc = serde_json::to_value(crate::routes::openapi::document())
            .expect("the document serialises");
        let documented = &doc["components"]["schemas"]["ErrorCode"]["enum"];
        for e in every_variant() {
            let (status, code, _) = e.parts();
            let code = serde_json::to_value(code).expect("a code serialises");
            assert!(
                documented
                    .as_array()
                    .is_some_and(|codes| codes.contains(&code)),
                "{status} {code} is sent but not documented"
            );
        }
    }
}
