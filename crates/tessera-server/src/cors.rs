//! CORS for single-page apps served from other origins: only the origins an operator listed
//! (`--cors-origin`) get CORS headers.
//!
//! Design decision: **an allowlist of exact origins, echoed, never a pattern or `*`.** A
//! listed origin's request gets `Access-Control-Allow-Origin` set to exactly its `Origin`,
//! with credentials allowed; any other origin gets no CORS header at all, so the browser
//! keeps the answer from its page. `Vary: Origin` is on every response, so a cache never
//! hands one origin's answer to another. Origins are parsed when the server starts
//! ([`CorsOrigin::parse`]): `scheme://host[:port]` only, no path, never `*` or `null` (the
//! origin of sandboxed frames and `file:` pages, which any attacker can produce).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// How long a browser may cache a preflight's answer, in seconds.
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 600;
/// The methods the API uses.
const ALLOWED_METHODS: &str = "GET, POST, DELETE";
/// The request headers a cross-origin page may send.
const ALLOWED_HEADERS: &str = "Authorization, DPoP, Content-Type, X-CSRF-Token";
/// The response headers a cross-origin page may read.
const EXPOSED_HEADERS: &str = "DPoP-Nonce, WWW-Authenticate";

/// One origin allowed to make CORS requests, in its serialised form (lower-case scheme and
/// host, no default port). Only [`CorsOrigin::parse`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsOrigin(String);

impl CorsOrigin {
    /// Parses `http(s)://host[:port]` (a trailing `/` is tolerated), refusing `*`, `null`,
    /// paths, queries, fragments and user information.
    ///
    /// # Errors
    /// A sentence saying what is wrong with `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = |why: &str| Err(format!("CORS origin {text:?}: {why}"));
        if text == "*" || text.eq_ignore_ascii_case("null") {
            return refuse("list each origin exactly; `*` and `null` are never allowed");
        }
        let Ok(url) = url::Url::parse(text) else {
            return refuse("not scheme://host[:port]");
        };
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return refuse("must be http(s)://host[:port]");
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return refuse("an origin has no path, query or fragment");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("an origin has no user information");
        }
        Ok(Self(url.origin().ascii_serialization()))
    }

    /// The serialised origin, as browsers send it in `Origin`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The request's `Origin`, if it is exactly one listed origin.
fn listed<'a>(headers: &'a HeaderMap, allowed: &[CorsOrigin]) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(header::ORIGIN).iter();
    let origin = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let text = origin.to_str().ok()?;
    allowed.iter().any(|o| o.0 == text).then_some(origin)
}

/// What CORS makes of one request: its `Origin` if listed, and whether it is a preflight.
pub(crate) struct Cors {
    origin: Option<HeaderValue>,
    preflight: bool,
}

impl Cors {
    /// Reads the request's `Origin` against the allowlist.
    pub(crate) fn of(state: &AppState, req: &Request) -> Self {
        Self {
            origin: listed(req.headers(), &state.config.cors_origins).cloned(),
            preflight: req.method() == Method::OPTIONS
                && req
                    .headers()
                    .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD),
        }
    }

    /// The answer to a listed origin's preflight (`204`), which no route sees.
    pub(crate) fn preflight_answer(&self) -> Option<Response> {
        if !(self.preflight && self.origin.is_some()) {
            return None;
        }
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(PREFLIGHT_MAX_AGE_SECS),
        );
        Some(resp)
    }

    /// Adds `Vary: Origin` to every answer, and the CORS headers to a listed origin's.
    pub(crate) fn decorate(self, resp: &mut Response) {
        let h = resp.headers_mut();
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            if !self.preflight {
                h.insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(EXPOSED_HEADERS),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_exact_scheme_host_port() {
        for (text, origin) in [
            ("https://app.example", "https://app.example"),
            ("https://App.Example:443/", "https://app.example"),
            ("http://localhost:5173", "http://localhost:5173"),
        ] {
            assert_eq!(CorsOrigin::parse(text).unwrap().as_str(), origin);
        }
        for bad in [
            "*",
            "null",
            "NULL",
            "app.example",
            "https://app.example/spa",
            "https://app.example?x",
            "https://app.example#x",
            "https://user@app.example",
            "ftp://app.example",
            "file:///tmp",
            "",
        ] {
            assert!(CorsOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
