//! What a page asks of a request: the signed-in user ([`PageSession`]), and for every form
//! post the CSRF proof — [`SessionForm`] once signed in, [`SignInForm`] before a session exists.
//!
//! Design decision: a page handler can only read a form through one of these two extractors,
//! and both run the same origin checks as the API's cookie writes (`Sec-Fetch-Site:
//! cross-site`, a foreign or `null` `Origin`) *and* demand the hidden `csrf_token` field:
//! the session's CSRF token (an HMAC of the session token) once signed in; before that, the
//! value of the `__Host-tessera_csrf` cookie set by the form's own page (a double-submit token
//! that a foreign page can neither read nor, thanks to the `__Host-` prefix, plant). A route
//! table walk (`pages::route_table`) proves no page write does without them.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use tessera_core::opaque::OpaqueToken;
use tessera_core::session::Session;

use super::PageError;
use super::return_to::ReturnTo;
use crate::auth::{self, check_csrf_token, check_origin, cookie_session};
use crate::error::ApiError;
use crate::extract::{MAX_BODY_BYTES, cookie};
use crate::state::AppState;

/// The pre-session CSRF cookie of the sign-in and registration forms.
pub const FORM_COOKIE: &str = "__Host-tessera_csrf";

/// Length of a pre-session CSRF token: 16 bytes in unpadded base64url.
const FORM_TOKEN_LEN: usize = 22;

/// The signed-in user of a page: the session cookie, checked like every credential. Without a
/// live session the page answers `303` to `/login?return_to=<this page>`.
#[derive(Debug)]
pub struct PageSession {
    /// The session.
    pub session: Session,
    /// Its token, to derive the forms' CSRF token.
    pub token: OpaqueToken,
}

impl PageSession {
    /// The CSRF token the page's forms carry.
    #[must_use]
    pub fn csrf_token(&self) -> String {
        auth::csrf_token(&self.token)
    }
}

impl FromRequestParts<AppState> for PageSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        signed_in(parts, state).await
    }
}

async fn signed_in(parts: &Parts, state: &AppState) -> Result<PageSession, PageError> {
    let here = || {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/account", |p| p.as_str());
        PageError::SignIn(ReturnTo::parse(path))
    };
    match cookie_session(state, &parts.headers).await {
        Ok(Some((session, token))) => Ok(PageSession { session, token }),
        Ok(None) | Err(ApiError::InvalidToken | ApiError::Unauthenticated) => Err(here()),
        Err(e) => Err(PageError::Api(e)),
    }
}

/// A form posted by a signed-in user, CSRF-checked: the origin checks, then the `csrf_token`
/// field against the session's. Nothing is read from the body before the origin checks pass.
#[derive(Debug)]
pub struct SessionForm<T> {
    /// Who posted it.
    pub signed_in: PageSession,
    /// The form's other fields.
    pub fields: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for SessionForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (parts, body) = req.into_parts();
        check_origin(state, &parts.headers)?;
        let signed_in = signed_in(&parts, state).await?;
        let (sent, fields) = read_form::<T>(&parts.headers, body).await?;
        check_csrf_token(&signed_in.token, &sent)?;
        Ok(Self { signed_in, fields })
    }
}

/// A sign-in or registration form, posted before any session exists: the origin checks, then
/// the `csrf_token` field against the [`FORM_COOKIE`] its page set.
#[derive(Debug)]
pub struct SignInForm<T> {
    /// The pre-session CSRF token it carried (to show the form again with it).
    pub csrf: String,
    /// The form's other fields.
    pub fields: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for SignInForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (parts, body) = req.into_parts();
        check_origin(state, &parts.headers)?;
        let expected = form_cookie(&parts.headers)
            .ok_or(ApiError::Csrf("missing or repeated form cookie"))?
            .to_owned();
        let (sent, fields) = read_form::<T>(&parts.headers, body).await?;
        if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Self {
                csrf: expected,
                fields,
            })
        } else {
            Err(ApiError::Csrf("wrong CSRF token").into())
        }
    }
}

/// The pre-session CSRF token, if exactly one well-formed cookie carries it.
#[must_use]
pub fn form_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, FORM_COOKIE)
        .ok()
        .flatten()
        .filter(|v| v.len() == FORM_TOKEN_LEN && URL_SAFE_NO_PAD.decode(v).is_ok())
}

/// A fresh pre-session CSRF token (128 random bits, base64url).
///
/// # Errors
/// `Internal` if the system's random source fails.
pub fn new_form_token() -> Result<String, ApiError> {
    tessera_core::opaque::random_id().map_err(|e| ApiError::Internal(e.to_string().into()))
}

/// An `application/x-www-form-urlencoded` body, bounded: its single `csrf_token` and the rest
/// as `T`.
async fn read_form<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(String, T), PageError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(ApiError::UnsupportedMediaType.into());
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let malformed = |_| ApiError::InvalidRequest("malformed form body".into());
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(malformed)?;
    let mut tokens = pairs.into_iter().filter(|(k, _)| k == "csrf_token");
    let sent = match (tokens.next(), tokens.next()) {
        (Some((_, v)), None) => v,
        (None, _) => return Err(ApiError::Csrf("missing csrf_token field").into()),
        (Some(_), Some(_)) => return Err(ApiError::Csrf("repeated csrf_token field").into()),
    };
    let fields = serde_urlencoded::from_bytes(&bytes).map_err(malformed)?;
    Ok((sent, fields))
}
