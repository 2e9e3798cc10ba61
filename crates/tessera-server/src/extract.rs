//! Request parsing that never lets bad input through as anything but a clear 4xx.
//!
//! [`Input`] takes a JSON or form-encoded body (the OAuth2 endpoints must accept both) into a
//! typed struct, bounded in size, and maps every failure to an [`ApiError`]. Header helpers
//! parse the session cookie and the `Authorization` header strictly: a header that appears
//! twice, or is not ASCII, is refused rather than guessed at.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::service::ClientContext;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Name of the session cookie. The `__Host-` prefix makes browsers insist on `Secure`,
/// `Path=/` and no `Domain`, so a sibling subdomain cannot plant or overwrite it.
pub const SESSION_COOKIE: &str = "__Host-tessera_session";

/// A request body decoded from JSON or `application/x-www-form-urlencoded`.
#[derive(Debug)]
pub struct Input<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let media = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        let bytes: Bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        let value = match media.as_deref() {
            Some("application/json") => serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::InvalidRequest(format!("malformed JSON body: {e}").into())
            })?,
            Some("application/x-www-form-urlencoded") => serde_urlencoded::from_bytes(&bytes)
                .map_err(|e| {
                    ApiError::InvalidRequest(format!("malformed form body: {e}").into())
                })?,
            _ => return Err(ApiError::UnsupportedMediaType),
        };
        Ok(Self(value))
    }
}

/// The client's address as seen on the socket (no proxy headers are trusted).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        Ok(Self {
            ip,
            user_agent: user_agent(&parts.headers),
            device_cookie: device_cookie(&parts.headers).map(str::to_owned),
        })
    }
}

/// The single value of a header that must not repeat.
///
/// # Errors
/// `InvalidRequest` if the header repeats or is not visible ASCII.
pub fn single_header(
    headers: &HeaderMap,
    name: header::HeaderName,
) -> Result<Option<&str>, ApiError> {
    let mut values = headers.get_all(&name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidRequest(
            format!("{name} header repeated").into(),
        ));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| ApiError::InvalidRequest(format!("{name} header is not ASCII").into()))
}

/// The credential in `Authorization: Bearer <token>`, if that header is present.
///
/// # Errors
/// `InvalidToken` if the header is present but is not a well-formed bearer credential.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) =
        single_header(headers, header::AUTHORIZATION).map_err(|_| ApiError::InvalidToken)?
    else {
        return Ok(None);
    };
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(ApiError::InvalidToken);
    }
    Ok(Some(token))
}

/// The value of the session cookie, if one was sent.
///
/// # Errors
/// `InvalidToken` if the cookie appears more than once (a sign of cookie tossing).
pub fn session_cookie(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    cookie(headers, SESSION_COOKIE).map_err(|RepeatedCookie| ApiError::InvalidToken)
}

/// The device cookie, if exactly one was sent (a repeated one counts as none: it only ever
/// grants an exemption, so ignoring it is the safe reading).
#[must_use]
pub fn device_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, tessera_core::device::DEVICE_COOKIE)
        .ok()
        .flatten()
}

/// A cookie that must appear once appeared more than once.
#[derive(Debug, thiserror::Error)]
#[error("cookie repeated")]
pub struct RepeatedCookie;

/// The value of cookie `name`.
///
/// # Errors
/// [`RepeatedCookie`]: the caller decides what a repeat means.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, RepeatedCookie> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((n, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if n == name {
                if found.is_some() {
                    return Err(RepeatedCookie);
                }
                found = Some(v.trim_matches('"'));
            }
        }
    }
    Ok(found)
}

/// `User-Agent`, truncated to a sane length for display.
#[must_use]
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    Some(ua.chars().take(256).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_parsing_is_strict() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h).unwrap(), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h).unwrap(), Some("abc"));
        for bad in ["Basic abc", "Bearer", "Bearer ", "Bearer a b", "bearerabc"] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert!(bearer(&h).is_err(), "{bad}");
        }
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(bearer(&h).is_err(), "repeated header");
    }

    #[test]
    fn duplicate_session_cookies_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-tessera_session=x"),
        );
        assert_eq!(session_cookie(&h).unwrap(), Some("x"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-tessera_session=y"),
        );
        assert!(session_cookie(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("tessera_session=x; other=2"),
        );
        assert_eq!(session_cookie(&h).unwrap(), None);
    }
}
