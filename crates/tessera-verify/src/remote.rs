//! Talking to Tessera: discovery, the JWKS, the revocation catch-up list and the stream.
//!
//! Design decision: every URL is built from the issuer (or from discovery) and then has its
//! origin replaced by the server's ([`Endpoints::rewrite`]) — `jwks_uri` included — so a
//! verifier told to reach Tessera at an internal address never follows a document to another
//! host, and redirects are not followed at all.

use std::fmt;
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderValue};
use reqwest::{Client, Response, StatusCode, Url};
use serde_json::Value;
use tessera_core::keys::PublicKeySet;
use tessera_core::revocation::Revocation;

use crate::Error;

/// Largest discovery document or JWKS read, in bytes.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Largest catch-up revocation list read, in bytes.
const MAX_REVOCATIONS_BYTES: usize = 64 * 1024 * 1024;
/// Bound on each one-shot request (discovery, JWKS, catch-up); the stream has its own idle bound.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The URLs fetched, all on the server's origin.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints {
    pub(crate) jwks: Url,
    pub(crate) revocations: Url,
    pub(crate) stream: Url,
}

impl Endpoints {
    /// `url` with its scheme, host and port replaced by `origin`'s.
    pub(crate) fn rewrite(url: &Url, origin: &Url) -> Url {
        let mut out = origin.clone();
        out.set_path(url.path());
        out.set_query(url.query());
        out
    }
}

/// The issuer as a URL, with a helper to name a path below it.
pub(crate) struct Issuer {
    text: String,
}

impl Issuer {
    pub(crate) fn new(issuer: &str) -> Result<(Self, Url), Error> {
        let url = Url::parse(issuer).map_err(|e| Error::Config(format!("issuer: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::Config("issuer must be an http(s) URL".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Config("issuer has a query or fragment".into()));
        }
        Ok((
            Self {
                text: issuer.trim_end_matches('/').to_owned(),
            },
            url,
        ))
    }

    /// `{issuer}{path}`, on `origin`.
    pub(crate) fn at(&self, path: &str, origin: &Url) -> Result<Url, Error> {
        let url = Url::parse(&format!("{}{path}", self.text))
            .map_err(|e| Error::Config(format!("issuer path: {e}")))?;
        Ok(Endpoints::rewrite(&url, origin))
    }
}

/// A server origin: `scheme://host[:port]`, nothing else.
pub(crate) fn origin(server: &str) -> Result<Url, Error> {
    let url = Url::parse(server).map_err(|e| Error::Config(format!("server: {e}")))?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if bare {
        Ok(url)
    } else {
        Err(Error::Config(
            "server must be an origin: http(s)://host[:port]".into(),
        ))
    }
}

/// The HTTP client with the resource server's client credentials.
#[derive(Clone)]
pub(crate) struct Remote {
    http: Client,
    /// RFC 6749 §2.3.1: id and secret are form-urlencoded before HTTP Basic encodes them.
    client_id: String,
    client_secret: String,
    pub(crate) endpoints: Endpoints,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

/// What a catch-up returned.
pub(crate) struct CatchUp {
    pub(crate) cursor: String,
    pub(crate) revocations: Vec<Revocation>,
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Remote {
    pub(crate) fn client() -> Result<Client, Error> {
        Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))
    }

    pub(crate) fn new(
        http: Client,
        client_id: &str,
        client_secret: &str,
        endpoints: Endpoints,
    ) -> Self {
        Self {
            http,
            client_id: form_encode(client_id),
            client_secret: form_encode(client_secret),
            endpoints,
        }
    }

    /// Fetches the discovery document at `url` and returns its `jwks_uri`, after checking
    /// that it names `issuer` (OpenID Connect Discovery §4.3).
    pub(crate) async fn discover(http: &Client, url: Url, issuer: &str) -> Result<Url, Error> {
        let what = "discovery";
        let response = http
            .get(url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| Error::http(what, &e))?;
        let body = read_json(what, response, MAX_DOCUMENT_BYTES).await?;
        if body.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(Error::Protocol {
                what,
                detail: "the document's issuer is not the configured issuer".into(),
            });
        }
        let jwks_uri = body
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Protocol {
                what,
                detail: "no jwks_uri".into(),
            })?;
        Url::parse(jwks_uri).map_err(|e| Error::Protocol {
            what,
            detail: format!("jwks_uri: {e}"),
        })
    }

    pub(crate) async fn jwks(&self) -> Result<PublicKeySet, Error> {
        let what = "JWKS";
        let response = self
            .http
            .get(self.endpoints.jwks.clone())
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| Error::http(what, &e))?;
        let body = read_bounded(what, ok(what, response)?, MAX_DOCUMENT_BYTES).await?;
        PublicKeySet::from_jwks_json(&body).map_err(Error::Jwks)
    }

    /// `GET /v1/revocations[?since=cursor]`. Any entry that is not a revocation refuses the
    /// whole answer: a list the verifier cannot read whole is not a known state.
    pub(crate) async fn catch_up(&self, since: Option<&str>) -> Result<CatchUp, Error> {
        let what = "revocations";
        let mut url = self.endpoints.revocations.clone();
        if let Some(cursor) = since {
            url.query_pairs_mut().append_pair("since", cursor);
        }
        let response = self
            .http
            .get(url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| Error::http(what, &e))?;
        let body = read_json(what, response, MAX_REVOCATIONS_BYTES).await?;
        let protocol = |detail: &str| Error::Protocol {
            what,
            detail: detail.to_owned(),
        };
        let cursor = body
            .get("cursor")
            .and_then(Value::as_str)
            .ok_or_else(|| protocol("no cursor"))?
            .to_owned();
        let revocations = body
            .get("revocations")
            .and_then(Value::as_array)
            .ok_or_else(|| protocol("no revocations array"))?
            .iter()
            .map(|wire| {
                Revocation::from_wire(wire).ok_or_else(|| protocol("unreadable revocation"))
            })
            .collect::<Result<_, _>>()?;
        Ok(CatchUp {
            cursor,
            revocations,
        })
    }

    /// Opens the revocation stream, resuming after `cursor`.
    pub(crate) async fn stream(&self, cursor: &str) -> Result<Response, Error> {
        let what = "revocation stream";
        let mut request = self
            .http
            .get(self.endpoints.stream.clone())
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        if let Ok(value) = HeaderValue::from_str(cursor) {
            request = request.header("last-event-id", value);
        }
        let response = request.send().await.map_err(|e| Error::http(what, &e))?;
        let response = ok(what, response)?;
        let event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if event_stream {
            Ok(response)
        } else {
            Err(Error::Protocol {
                what,
                detail: "not text/event-stream".into(),
            })
        }
    }
}

fn ok(what: &'static str, response: Response) -> Result<Response, Error> {
    let status = response.status();
    if status == StatusCode::OK {
        Ok(response)
    } else {
        Err(Error::Status {
            what,
            status: status.as_u16(),
        })
    }
}

async fn read_bounded(
    what: &'static str,
    mut response: Response,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::http(what, &e))? {
        if body.len() + chunk.len() > limit {
            return Err(Error::Protocol {
                what,
                detail: format!("body larger than {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_json(what: &'static str, response: Response, limit: usize) -> Result<Value, Error> {
    let body = read_bounded(what, ok(what, response)?, limit).await?;
    tessera_core::jose::json::parse(&body).map_err(|_| Error::Protocol {
        what,
        detail: "not a strict JSON document".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_lands_on_the_server_origin() {
        let server = origin("http://127.0.0.1:9000").unwrap();
        let (issuer, _) = Issuer::new("https://auth.example/tenant/").unwrap();
        assert_eq!(
            issuer.at("/v1/revocations", &server).unwrap().as_str(),
            "http://127.0.0.1:9000/tenant/v1/revocations"
        );
        let jwks = Url::parse("https://cdn.example:8443/keys/jwks.json?v=2").unwrap();
        assert_eq!(
            Endpoints::rewrite(&jwks, &server).as_str(),
            "http://127.0.0.1:9000/keys/jwks.json?v=2"
        );
        for bad in [
            "http://h/path",
            "ftp://h",
            "http://u:p@h",
            "http://h/?q",
            "not a url",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
        assert!(Issuer::new("https://auth.example/?x=1").is_err());
    }

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }
}
