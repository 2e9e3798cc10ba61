//! The axum side: [`VerifiedToken`], an extractor that answers for bad tokens by itself.
//!
//! Design decision: the [`Verifier`] travels in the request extensions (put there by
//! [`Verifier::layer`]), not in the router state, so the extractor works with any state type
//! and one layer line is all a router needs. The `Authorization` scheme is parsed into a
//! [`Scheme`] and handed with the `DPoP` header, the method and the path to
//! [`Verifier::verify_presentation`], which applies RFC 9449's rules for bound tokens.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::access::AccessClaims;

use crate::{Presentation, Verifier, VerifyError};

/// An `Authorization` scheme that carries an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449): a token bound to a key, with a proof in the `DPoP` header.
    DPoP,
}

impl Scheme {
    /// Splits an `Authorization` value into its scheme (case-insensitive) and token.
    #[must_use]
    pub fn parse(value: &str) -> Option<(Self, &str)> {
        let (scheme, token) = value.split_once(' ')?;
        let token = token.trim_start_matches(' ');
        if token.is_empty() || token.contains(' ') {
            return None;
        }
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            Self::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            Self::DPoP
        } else {
            return None;
        };
        Some((scheme, token))
    }
}

/// The claims of a verified access token: take it as a handler argument, and requests
/// without a valid token never reach the handler.
#[derive(Clone, Debug)]
pub struct VerifiedToken(pub AccessClaims);

/// Why [`VerifiedToken`] refused a request, and the answer it gives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRejection {
    /// No `Authorization` header, or one in no scheme this crate accepts.
    #[error("no usable access token")]
    Missing,
    /// The token was refused (`401`, or `503` for [`VerifyError::Stale`]).
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The router has no [`Verifier::layer`]: a programming error, answered `500`.
    #[error("no Verifier in the request extensions; add `.layer(verifier.layer())`")]
    NoVerifier,
}

fn token(headers: &HeaderMap) -> Option<(Scheme, &str)> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None; // two credentials: refuse rather than pick one
    }
    Scheme::parse(value.to_str().ok()?)
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = TokenRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verifier = parts
            .extensions
            .get::<Verifier>()
            .ok_or(TokenRejection::NoVerifier)?;
        let (scheme, token) = token(&parts.headers).ok_or(TokenRejection::Missing)?;
        let mut proofs = parts.headers.get_all("dpop").iter();
        let proof = match (proofs.next(), proofs.next()) {
            (None, _) => None,
            (Some(value), None) => Some(value.to_str().map_err(|_| VerifyError::MissingProof)?),
            (Some(_), Some(_)) => return Err(VerifyError::MissingProof.into()),
        };
        let presented = Presentation {
            scheme,
            token,
            proof,
            method: parts.method.as_str(),
            path: parts.uri.path(),
        };
        Ok(Self(verifier.verify_presentation(&presented)?))
    }
}

impl IntoResponse for TokenRejection {
    fn into_response(self) -> Response {
        let json = |status, error: &str| {
            let mut response = (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                format!(r#"{{"error":"{error}"}}"#),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        };
        match self {
            Self::Verify(VerifyError::Stale) => {
                let mut response = json(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            Self::NoVerifier => {
                tracing::error!("{self}");
                json(StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
            Self::Verify(
                ref e @ (VerifyError::WrongScheme
                | VerifyError::MissingProof
                | VerifyError::Proof(_)
                | VerifyError::Replayed
                | VerifyError::NoPublicUrl),
            ) => {
                tracing::debug!(reason = %e, "DPoP presentation refused");
                let error = if matches!(e, VerifyError::WrongScheme | VerifyError::NoPublicUrl) {
                    "invalid_token"
                } else {
                    "invalid_dpop_proof"
                };
                let mut response = json(StatusCode::UNAUTHORIZED, error);
                let algs = tessera_core::dpop::PROOF_ALGORITHMS
                    .map(|a| a.as_str())
                    .join(" ");
                let challenge = format!(r#"DPoP error="{error}", algs="{algs}""#);
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            Self::Missing | Self::Verify(_) => {
                tracing::debug!(reason = %self, "access token refused");
                let mut response = json(StatusCode::UNAUTHORIZED, "invalid_token");
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#),
                );
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_parsed_not_hardcoded() {
        assert_eq!(Scheme::parse("Bearer abc"), Some((Scheme::Bearer, "abc")));
        assert_eq!(Scheme::parse("bearer  abc"), Some((Scheme::Bearer, "abc")));
        assert_eq!(Scheme::parse("DPoP abc"), Some((Scheme::DPoP, "abc")));
        for bad in ["Bearer", "Bearer ", "Basic abc", "Bearer a b", "abc"] {
            assert_eq!(Scheme::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        assert_eq!(token(&headers), Some((Scheme::Bearer, "a")));
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(token(&headers), None);
    }
}
