//! Which client is calling: RFC 6749 §2.3.1 client authentication, with the secret in HTTP
//! Basic (`client_secret_basic`) or in the body (`client_secret_post`).
//!
//! Design decision: the credentials are only *read* here; whether they are right is the
//! service's [`crate::service::authenticate_client`], the one place a secret is checked. A
//! handler of a POST endpoint takes [`BasicCredentials`] and its body's `client_id` /
//! `client_secret`, and [`ClientCredentials::from_request`] refuses a request that uses both
//! methods at once (RFC 6749 §2.3). Endpoints without a body (the revocation list and stream)
//! take [`AuthenticatedClient`], which requires Basic and a confidential client.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tessera_core::client::ClientRecord;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::extract::single_header;
use crate::service;
use crate::state::AppState;

/// A client id and, for a confidential client, its secret, as presented. `Debug` redacts the
/// secret.
pub struct ClientCredentials {
    /// The `client_id`.
    pub id: String,
    /// The `client_secret`, if one was sent.
    pub secret: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ClientCredentials {
    /// The credentials of a request that may carry them in Basic or in its body; `None` if
    /// it carries none.
    ///
    /// # Errors
    /// `InvalidRequest` if both methods are used, or a secret comes without an id.
    pub fn from_request(
        basic: BasicCredentials,
        body_id: Option<String>,
        body_secret: Option<String>,
    ) -> Result<Option<Self>, ApiError> {
        let body_id = body_id.filter(|s| !s.is_empty());
        let body_secret = body_secret.filter(|s| !s.is_empty());
        match (basic.0, body_id, body_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::InvalidRequest(
                "use one client authentication method, not Basic and the body both".into(),
            )),
            (Some(basic), None, None) => Ok(Some(basic)),
            (None, Some(id), secret) => Ok(Some(Self {
                id,
                secret: secret.map(Zeroizing::new),
            })),
            (None, None, Some(_)) => Err(ApiError::InvalidRequest(
                "client_secret without client_id".into(),
            )),
            (None, None, None) => Ok(None),
        }
    }
}

/// `Authorization: Basic` client credentials, if the request carries them.
#[derive(Debug)]
pub struct BasicCredentials(pub Option<ClientCredentials>);

impl<S: Send + Sync> FromRequestParts<S> for BasicCredentials {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = single_header(&parts.headers, header::AUTHORIZATION)
            .map_err(|_| ApiError::InvalidClient)?
        else {
            return Ok(Self(None));
        };
        let Some((scheme, encoded)) = value.split_once(' ') else {
            return Err(ApiError::InvalidClient);
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            // Another scheme (a bearer token) is not client authentication.
            return Ok(Self(None));
        }
        parse_basic(encoded.trim()).map(|c| Self(Some(c)))
    }
}

/// Decodes `base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(encoded: &str) -> Result<ClientCredentials, ApiError> {
    let decoded = Zeroizing::new(
        STANDARD
            .decode(encoded)
            .map_err(|_| ApiError::InvalidClient)?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| ApiError::InvalidClient)?;
    let (id, secret) = text.split_once(':').ok_or(ApiError::InvalidClient)?;
    let id = form_decode(id).ok_or(ApiError::InvalidClient)?;
    let secret = form_decode(secret).ok_or(ApiError::InvalidClient)?;
    if id.is_empty() {
        return Err(ApiError::InvalidClient);
    }
    Ok(ClientCredentials {
        id: id.to_string(),
        secret: (!secret.is_empty()).then(|| secret.clone()),
    })
}

/// `application/x-www-form-urlencoded` decoding of one value.
fn form_decode(part: &str) -> Option<Zeroizing<String>> {
    if part.contains(['&', '=']) {
        return None;
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={part}")).ok()?;
    let [(_, value)] = <[_; 1]>::try_from(pairs).ok()?;
    Some(Zeroizing::new(value))
}

/// A confidential client that authenticated with HTTP Basic.
#[derive(Debug)]
pub struct AuthenticatedClient(pub ClientRecord);

impl FromRequestParts<AppState> for AuthenticatedClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let BasicCredentials(credentials) =
            BasicCredentials::from_request_parts(parts, state).await?;
        let credentials = credentials.ok_or(ApiError::InvalidClient)?;
        service::authenticate_client(state, &credentials)
            .await
            .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        STANDARD.encode(format!("{id}:{secret}"))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let c = parse_basic(&basic("my%20app", "tcs_a%2Bb")).unwrap();
        assert_eq!(c.id, "my app");
        assert_eq!(c.secret.unwrap().as_str(), "tcs_a+b");
        let public = parse_basic(&basic("spa", "")).unwrap();
        assert!(public.secret.is_none());
    }

    #[test]
    fn malformed_basic_credentials_are_invalid_client() {
        for bad in [
            "!!!".to_owned(),
            STANDARD.encode("no-colon"),
            basic("", "secret"),
            basic("a&b=c", "s"),
            STANDARD.encode([0xff, b':', b'x']),
        ] {
            assert!(
                matches!(parse_basic(&bad), Err(ApiError::InvalidClient)),
                "{bad}"
            );
        }
    }

    #[test]
    fn one_method_at_a_time() {
        let both = ClientCredentials::from_request(
            BasicCredentials(Some(parse_basic(&basic("a", "s")).unwrap())),
            Some("a".into()),
            None,
        );
        assert!(matches!(both, Err(ApiError::InvalidRequest(_))));
        let orphan =
            ClientCredentials::from_request(BasicCredentials(None), None, Some("s".into()));
        assert!(matches!(orphan, Err(ApiError::InvalidRequest(_))));
        let post = ClientCredentials::from_request(
            BasicCredentials(None),
            Some("a".into()),
            Some("s".into()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (post.id.as_str(), post.secret.unwrap().as_str()),
            ("a", "s")
        );
        assert!(
            ClientCredentials::from_request(BasicCredentials(None), None, None)
                .unwrap()
                .is_none()
        );
    }
}
