//! Registered OAuth clients: the record a store keeps, the client's secret, its scopes and its
//! redirect URIs, and the rules a registration must pass.
//!
//! Design decision: a confidential client's secret is an opaque token of its own kind (`tcs_`,
//! [`TokenKind::ClientSecret`]), made and checked by [`crate::opaque`] exactly like session and
//! refresh tokens — 256 random bits, base64url, a checksum — so secret scanners and
//! `tessera token inspect` recognise it, a mistyped secret is refused before any comparison,
//! and a store keeps only its SHA-256 ([`TokenHash`]). The secret exists in clear only in the
//! value [`NewClient::register`] returns, to be shown once.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use subtle::ConstantTimeEq;

use crate::opaque::{OpaqueError, OpaqueToken, TokenHash, TokenKind, random_id};
use crate::time::UnixTime;

/// Longest client name, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// Longest client id, in characters.
pub const ID_MAX_CHARS: usize = 64;
/// Longest scope string, in bytes (the token endpoint's bound on a requested scope).
pub const SCOPE_MAX_LEN: usize = 1024;
/// Longest redirect URI, in bytes.
pub const REDIRECT_URI_MAX_LEN: usize = 2048;

/// Why a registration (or a part of one) is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The name is empty, too long, has surrounding spaces or control characters.
    #[error(
        "client name must be 1-{NAME_MAX_CHARS} characters, without control characters or \
         surrounding spaces"
    )]
    Name,
    /// The id is not of the accepted form.
    #[error("client id must be 1-{ID_MAX_CHARS} characters of A-Z, a-z, 0-9, '-', '_'")]
    Id,
    /// The scope is malformed.
    #[error(transparent)]
    Scope(#[from] InvalidScope),
    /// A redirect URI is refused, for the reason given.
    #[error("redirect URI {uri:?} {reason}")]
    RedirectUri {
        /// The URI as given.
        uri: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The same redirect URI is listed twice.
    #[error("redirect URI {0:?} is listed twice")]
    DuplicateRedirectUri(String),
    /// A public client with a secret hash.
    #[error("a public client has no secret")]
    PublicWithSecret,
    /// A confidential client without a secret hash.
    #[error("a confidential client needs a secret")]
    ConfidentialWithoutSecret,
    /// The operating system's random generator failed.
    #[error("random generator failure")]
    Rng,
}

impl From<OpaqueError> for ClientError {
    fn from(_: OpaqueError) -> Self {
        // `generate` of an opaque kind fails only when the generator does.
        Self::Rng
    }
}

/// A client's public identifier: random (128 bits, base64url) when Tessera makes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// A fresh random id.
    ///
    /// # Errors
    /// [`ClientError::Rng`] if the system generator fails.
    pub fn generate() -> Result<Self, ClientError> {
        random_id().map(Self).map_err(ClientError::from)
    }

    /// Checks an id given from outside (a request, the command line, a store row): 1 to
    /// [`ID_MAX_CHARS`] characters of the base64url alphabet, so it needs no escaping in a URL,
    /// a form or a log line.
    ///
    /// # Errors
    /// [`ClientError::Id`] if it is not of that form.
    pub fn parse(s: &str) -> Result<Self, ClientError> {
        let ok = (1..=ID_MAX_CHARS).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ClientError::Id)
        }
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A scope string is not of RFC 6749 §3.3's form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "scope must be scope tokens separated by single spaces, each of printable ASCII except '\"' \
     and '\\', at most {SCOPE_MAX_LEN} bytes in all"
)]
pub struct InvalidScope;

/// A set of scope tokens (RFC 6749 §3.3): order and repetition carry no meaning, so they are
/// kept sorted and once each. `Display` writes the canonical space-separated form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses `scope-token *( SP scope-token )`, each token `1*( %x21 / %x23-5B / %x5D-7E )`.
    /// The empty string is the empty set (no scope); anything else with an empty token — a
    /// leading, trailing or doubled space — is refused.
    ///
    /// # Errors
    /// [`InvalidScope`] if `s` is not of that form or longer than [`SCOPE_MAX_LEN`].
    pub fn parse(s: &str) -> Result<Self, InvalidScope> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        if s.len() > SCOPE_MAX_LEN {
            return Err(InvalidScope);
        }
        let mut tokens = BTreeSet::new();
        for token in s.split(' ') {
            if token.is_empty() || !token.bytes().all(is_scope_char) {
                return Err(InvalidScope);
            }
            tokens.insert(token.to_owned());
        }
        Ok(Self(tokens))
    }

    /// Whether there is no token.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `token` is in the set.
    #[must_use]
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// Whether every token of `self` is in `other` (a request within what a client may ask).
    #[must_use]
    pub fn is_subset(&self, other: &Self) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, token) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Scope {
    type Err = InvalidScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `%x21 / %x23-5B / %x5D-7E`: printable ASCII except space, `"` and `\`.
fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

/// A confidential client's secret in clear: a `tcs_` opaque token. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(OpaqueToken);

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

impl ClientSecret {
    /// A fresh secret: 256 bits from the OS CSPRNG.
    ///
    /// # Errors
    /// [`OpaqueError::Rng`] if the system generator fails.
    pub fn generate() -> Result<Self, OpaqueError> {
        OpaqueToken::generate(TokenKind::ClientSecret).map(Self)
    }

    /// Parses a presented secret, checking its prefix, shape and checksum.
    ///
    /// # Errors
    /// [`OpaqueError::Malformed`] or [`OpaqueError::BadChecksum`].
    pub fn parse(s: &str) -> Result<Self, OpaqueError> {
        OpaqueToken::parse(TokenKind::ClientSecret, s).map(Self)
    }

    /// The secret string, for handing to the client's operator exactly once.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The hash a store keeps in place of the secret.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        self.0.hash()
    }

    /// Whether this secret's hash is `stored`, compared in constant time.
    #[must_use]
    pub fn matches(&self, stored: &TokenHash) -> bool {
        self.hash().ct_eq(stored).into()
    }
}

/// A registered client, as a store keeps it. `Debug` redacts the secret hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The public identifier (`client_id`).
    pub id: ClientId,
    /// A human name, for consent screens and the operator.
    pub name: String,
    /// The scopes the client may be granted.
    pub scope: Scope,
    /// The redirect URIs a request may name, compared exactly; empty for a client that never
    /// redirects (client credentials).
    pub redirect_uris: Vec<String>,
    /// A public client (a browser or native app) cannot keep a secret and has none.
    pub public: bool,
    /// Made by the operator of this server: no consent screen.
    pub first_party: bool,
    /// Its tokens must be bound to a DPoP key (RFC 9449).
    pub dpop: bool,
    /// SHA-256 of a confidential client's secret; `None` for a public client.
    pub secret_hash: Option<TokenHash>,
    /// Registration time.
    pub created_at: UnixTime,
}

impl fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scope", &self.scope.to_string())
            .field("redirect_uris", &self.redirect_uris)
            .field("public", &self.public)
            .field("first_party", &self.first_party)
            .field("dpop", &self.dpop)
            .field(
                "secret_hash",
                &if self.secret_hash.is_some() {
                    "<redacted>"
                } else {
                    "none"
                },
            )
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl ClientRecord {
    /// Checks the rules every stored client follows: a valid name, absolute redirect URIs
    /// without fragment (`https`, or `http` on a loopback host) listed once each, and a secret
    /// hash exactly when the client is confidential.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ClientError> {
        check_name(&self.name)?;
        for (i, uri) in self.redirect_uris.iter().enumerate() {
            check_redirect_uri(uri).map_err(|reason| ClientError::RedirectUri {
                uri: uri.clone(),
                reason,
            })?;
            if self
                .redirect_uris
                .iter()
                .take(i)
                .any(|earlier| earlier == uri)
            {
                return Err(ClientError::DuplicateRedirectUri(uri.clone()));
            }
        }
        match (self.public, self.secret_hash.is_some()) {
            (true, true) => Err(ClientError::PublicWithSecret),
            (false, false) => Err(ClientError::ConfidentialWithoutSecret),
            _ => Ok(()),
        }
    }

    /// The client as operators see it (the CLI's `clients list`, the admin API): everything
    /// but the secret hash.
    #[must_use]
    pub fn listing(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.id.as_str(),
            "name": self.name,
            "scope": self.scope.to_string(),
            "redirect_uris": self.redirect_uris,
            "public": self.public,
            "first_party": self.first_party,
            "dpop": self.dpop,
            "created_at": self.created_at,
        })
    }

    /// Whether `presented` is this client's secret. A public client has none, and a string
    /// that is not a well-formed `tcs_` secret is refused before any comparison; otherwise the
    /// hashes are compared in constant time.
    #[must_use]
    pub fn verify_secret(&self, presented: &str) -> bool {
        match (&self.secret_hash, ClientSecret::parse(presented)) {
            (Some(stored), Ok(secret)) => secret.matches(stored),
            _ => false,
        }
    }
}

/// What an operator asks for when registering a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewClient {
    /// A human name; surrounding spaces are trimmed.
    pub name: String,
    /// The scopes the client may be granted.
    pub scope: Scope,
    /// Its exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// A public client: no secret.
    pub public: bool,
    /// Made by the operator of this server.
    pub first_party: bool,
    /// Tokens bound to a DPoP key.
    pub dpop: bool,
}

impl NewClient {
    /// Makes the record to store: a fresh id and, for a confidential client, a fresh secret
    /// whose hash the record keeps. The secret is returned to be shown once; nothing else
    /// holds it.
    ///
    /// # Errors
    /// The first rule of [`ClientRecord::validate`] broken, or [`ClientError::Rng`].
    pub fn register(
        self,
        now: UnixTime,
    ) -> Result<(ClientRecord, Option<ClientSecret>), ClientError> {
        let secret = if self.public {
            None
        } else {
            Some(ClientSecret::generate()?)
        };
        let record = ClientRecord {
            id: ClientId::generate()?,
            name: self.name.trim().to_owned(),
            scope: self.scope,
            redirect_uris: self.redirect_uris,
            public: self.public,
            first_party: self.first_party,
            dpop: self.dpop,
            secret_hash: secret.as_ref().map(ClientSecret::hash),
            created_at: now,
        };
        record.validate()?;
        Ok((record, secret))
    }
}

fn check_name(name: &str) -> Result<(), ClientError> {
    let ok = (1..=NAME_MAX_CHARS).contains(&name.chars().count())
        && name.trim() == name
        && !name.chars().any(char::is_control);
    if ok { Ok(()) } else { Err(ClientError::Name) }
}

/// The characters RFC 3986 allows anywhere in a URI: unreserved, reserved and `%`.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// A redirect URI's host, as far as the loopback rule needs to know it.
enum Host<'a> {
    Name(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Host<'_> {
    /// RFC 8252 §7.3: a native app's loopback redirect may use `http`.
    fn is_loopback(&self) -> bool {
        match self {
            Self::Name(name) => name.eq_ignore_ascii_case("localhost"),
            Self::V4(ip) => ip.is_loopback(),
            Self::V6(ip) => ip.is_loopback(),
        }
    }
}

/// Checks one redirect URI (RFC 6749 §3.1.2, RFC 8252 §7.3); the reason completes "redirect
/// URI … ". Deliberately narrower than RFC 3986: a registered URI is compared exactly, so
/// anything unusual (user information, an empty port, a non-IP host with odd characters) is
/// refused rather than interpreted.
fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.len() > REDIRECT_URI_MAX_LEN {
        return Err("is longer than 2048 bytes");
    }
    if !uri.bytes().all(is_uri_char) {
        return Err(
            "has a character no URI holds (space, control, non-ASCII, or one of \"<>\\^`{|})",
        );
    }
    if !percent_escapes_are_whole(uri) {
        return Err("has a '%' not followed by two hex digits");
    }
    if uri.contains('#') {
        return Err("has a fragment");
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err("is not absolute (scheme://host/...)");
    };
    let http = scheme.eq_ignore_ascii_case("http");
    if !http && !scheme.eq_ignore_ascii_case("https") {
        return Err("must use https (or http on a loopback host)");
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    if authority.contains('@') {
        return Err("has user information");
    }
    let host = parse_authority(authority)?;
    if http && !host.is_loopback() {
        return Err("uses http on a host that is not loopback (127.0.0.0/8, [::1], localhost)");
    }
    Ok(())
}

fn percent_escapes_are_whole(uri: &str) -> bool {
    let bytes = uri.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit))
    })
}

/// `host [":" port]`, the host a DNS name or an IP literal.
fn parse_authority(authority: &str) -> Result<Host<'_>, &'static str> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (literal, after) = bracketed
            .split_once(']')
            .ok_or("has an unclosed IPv6 literal")?;
        let ip = literal
            .parse::<Ipv6Addr>()
            .map_err(|_| "has an invalid IPv6 literal")?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or("has junk after its host")?),
        };
        (Host::V6(ip), port)
    } else {
        let (name, port) = match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        if name.is_empty() {
            return Err("has no host");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err("has a host that is neither a DNS name nor an IP address");
        }
        let host = name.parse::<Ipv4Addr>().map_or(Host::Name(name), Host::V4);
        (host, port)
    };
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u16>().is_err() {
            return Err("has an invalid port");
        }
    }
    Ok(host)
}

#[cfg(test)]
mod tests;
