//! Request parsing that never lets bad input through as anything but a clear 4xx.
//!
//! [`Input`] takes a JSON or form-encoded body (the OAuth2 endpoints must accept both) into a
//! typed struct, bounded in size, and maps every failure to an [`ApiError`]. Header helpers
//! parse the session cookie and the `Authorization` header strictly: a header that appears
//! twice, or is not ASCII, is refused rather than guessed at.
//!
//! The client's address is decided here and nowhere else ([`client_ip`], through the
//! [`ClientIp`] and [`ClientContext`] extractors): the socket's peer, unless that peer is a
//! configured trusted proxy, in which case the forwarding headers are walked from the right —
//! the end the proxies wrote — past the trusted hops. A header a client wrote can only name
//! addresses to the left of what the proxies appended, so it is never reached while the chain
//! still names an untrusted hop; and a value that cannot be read ends the walk at the last
//! trusted hop instead of letting it pick an address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::net::IpNet;
use crate::service::ClientContext;
use crate::state::AppState;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Name of the session cookie. The `__Host-` prefix makes browsers insist on `Secure`,
/// `Path=/` and no `Domain`, so a sibling subdomain cannot plant or overwrite it.
pub const SESSION_COOKIE: &str = "__Host-tessera_session";

/// A query string decoded into a typed struct; any failure (an unknown or repeated
/// parameter, a number that does not parse) is a 400 `invalid_request`.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Self)
            .map_err(|e| ApiError::InvalidRequest(format!("malformed query string: {e}").into()))
    }
}

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

/// The most forwarding-chain entries examined for one request. A chain has one entry per
/// proxy, and a handful is already a deep chain; past this many the walk stops at the trusted
/// hop it has reached, so a long header costs no more than this.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// The client's address: the socket's peer, or, when the peer is a trusted proxy, the client
/// the forwarding headers name ([`client_ip`]). `None` only without a socket (in-process calls).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(peer.map(|peer| {
            client_ip(peer, &parts.headers, &state.config().trusted_proxies)
        })))
    }
}

impl FromRequestParts<AppState> for ClientContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        Ok(Self {
            ip,
            user_agent: user_agent(&parts.headers),
            device_cookie: device_cookie(&parts.headers).map(str::to_owned),
        })
    }
}

/// The client's address, for throttling and the session list: the one rule.
///
/// If `peer` (the socket's) is in none of the `trusted` networks, it is the client and the
/// headers are not read at all. Otherwise the forwarding chain — RFC 7239 `Forwarded`'s `for=`
/// parameters if that header is present, else `X-Forwarded-For` — is walked from the right,
/// skipping addresses in trusted networks; the first untrusted address is the client. If every
/// address is trusted, the leftmost is. An entry that is not an address (malformed, `unknown`,
/// an obfuscated `_name`, an element without `for=`, a line that is not ASCII) ends the walk at
/// the last trusted hop reached, as does reaching [`MAX_FORWARDED_HOPS`] entries. Empty list
/// elements are skipped (RFC 9110 §5.6.1). IPv4-mapped IPv6 addresses are given as IPv4.
#[must_use]
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    if headers.contains_key(header::FORWARDED) {
        walk(
            peer,
            entries(headers, header::FORWARDED).map(|e| e.map_or(Hop::End, forwarded_hop)),
            is_trusted,
        )
    } else {
        walk(
            peer,
            entries(headers, X_FORWARDED_FOR).map(|e| e.map_or(Hop::End, xff_hop)),
            is_trusted,
        )
    }
}

/// `X-Forwarded-For`: not in `http`'s list of standard headers.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One entry of a forwarding chain, as the walk needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    /// The address a proxy received the request from.
    Addr(IpAddr),
    /// An empty list element: no hop.
    Empty,
    /// Not an address: nothing further left can be believed.
    End,
}

/// From the last trusted hop reached (first the peer), takes hops right to left until one is
/// not trusted.
fn walk(
    peer: IpAddr,
    hops: impl Iterator<Item = Hop>,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    let mut last_trusted = peer;
    for hop in hops.take(MAX_FORWARDED_HOPS) {
        match hop {
            Hop::Empty => {}
            Hop::End => return last_trusted,
            Hop::Addr(ip) => {
                let ip = ip.to_canonical();
                if !is_trusted(ip) {
                    return ip;
                }
                last_trusted = ip;
            }
        }
    }
    last_trusted
}

/// The comma-separated entries of every `name` line, last line's last entry first; `None` for
/// a line that is not ASCII.
///
/// The split ignores quotes on purpose: a quote opened in the part a client wrote must not
/// swallow the entries proxies appended after it. (No `for=` value legitimately holds a comma.)
fn entries(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = Option<&str>> {
    headers.get_all(name).into_iter().rev().flat_map(|line| {
        let text = line.to_str().ok();
        let unreadable = text.is_none().then_some(None);
        text.into_iter()
            .flat_map(|t| t.rsplit(','))
            .map(Some)
            .chain(unreadable)
    })
}

/// Optional whitespace around list elements and parameters (RFC 9110 §5.6.3).
const OWS: [char; 2] = [' ', '\t'];

/// One `X-Forwarded-For` entry: an address, perhaps with a port.
fn xff_hop(entry: &str) -> Hop {
    let entry = entry.trim_matches(OWS);
    if entry.is_empty() {
        return Hop::Empty;
    }
    node(entry).map_or(Hop::End, Hop::Addr)
}

/// One RFC 7239 `Forwarded` element (`for=…;proto=…;by=…`): its `for` node.
fn forwarded_hop(element: &str) -> Hop {
    let element = element.trim_matches(OWS);
    if element.is_empty() {
        return Hop::Empty;
    }
    let mut found = None;
    for pair in element.split(';').map(|p| p.trim_matches(OWS)) {
        if pair.is_empty() {
            continue;
        }
        let Some((name, value)) = pair.split_once('=') else {
            return Hop::End;
        };
        if name.eq_ignore_ascii_case("for") {
            // RFC 7239 §4: a parameter appears at most once per element; two are ambiguous.
            if found.is_some() {
                return Hop::End;
            }
            found = Some(value);
        }
    }
    found
        .and_then(unquote)
        .and_then(node)
        .map_or(Hop::End, Hop::Addr)
}

/// A `token` or `quoted-string` value. A node (address, port, `unknown`, obfuscated name)
/// never needs a quoted-pair, so a backslash or inner quote makes the value unreadable.
fn unquote(value: &str) -> Option<&str> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    (!inner.contains(['"', '\\'])).then_some(inner)
}

/// An RFC 7239 node as an address: `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::17]`,
/// `[2001:db8::17]:4711`, or a bare IPv6 address (which some proxies send). `unknown` and
/// obfuscated identifiers (`_hidden`) are not addresses: `None`.
fn node(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = v6.parse().ok()?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(is_port))
            .then_some(IpAddr::V6(ip));
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    let (v4, port) = node.rsplit_once(':')?;
    let ip: Ipv4Addr = v4.parse().ok()?;
    is_port(port).then_some(IpAddr::V4(ip))
}

/// RFC 7239 `node-port`: up to five digits, or an obfuscated `_port`.
fn is_port(port: &str) -> bool {
    let digits = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
    let obfuscated = port.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    digits || obfuscated
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

/// How a token was presented in `Authorization` (RFC 6750 §2.1, RFC 9449 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer <token>`.
    Bearer,
    /// `DPoP <token>`: a bound token, with a proof in the `DPoP` header.
    Dpop,
}

/// The credential in `Authorization: Bearer <token>` or `Authorization: DPoP <token>`, if
/// that header is present, with its scheme (matched case-insensitively, RFC 9110 §11.1).
///
/// # Errors
/// `InvalidToken` if the header is present but is not a well-formed credential of either
/// scheme.
pub fn authorization(headers: &HeaderMap) -> Result<Option<(Scheme, &str)>, ApiError> {
    let Some(value) =
        single_header(headers, header::AUTHORIZATION).map_err(|_| ApiError::InvalidToken)?
    else {
        return Ok(None);
    };
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::InvalidToken)?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(ApiError::InvalidToken);
    };
    if token.is_empty() || token.contains(' ') {
        return Err(ApiError::InvalidToken);
    }
    Ok(Some((scheme, token)))
}

/// The credential in `Authorization: Bearer <token>`, if that header is present.
///
/// # Errors
/// `InvalidToken` if the header is present but is not a well-formed bearer credential.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match authorization(headers)? {
        None => Ok(None),
        Some((Scheme::Bearer, token)) => Ok(Some(token)),
        Some((Scheme::Dpop, _)) => Err(ApiError::InvalidToken),
    }
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
mod tests;
