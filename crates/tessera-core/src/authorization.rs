//! The authorization-code grant's rules (OAuth 2.1 §4.1 with RFC 7636 PKCE), without I/O.
//!
//! Design decisions:
//! - PKCE is required and only `S256` exists: a request without a challenge, or with `plain`,
//!   is refused (OAuth 2.1 §4.1.1; `plain` protects nothing once the request leaks).
//! - Redirect URIs match the registration exactly, byte for byte: no prefix, no wildcard, no
//!   normalisation (OAuth 2.1 §2.3.1) — the one rule that keeps a code from being sent to an
//!   attacker's URL.
//! - A code is a `tac_` opaque token ([`crate::opaque`]); stores keep only its hash. The
//!   session id its tokens will carry is chosen when the code is made, so a second redemption
//!   can end what the first one issued even if the first is still in flight.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::client::{ClientId, ClientRecord, Scope};
use crate::time::UnixTime;

/// How long a code may wait for its redemption, in seconds.
pub const CODE_TTL_SECS: i64 = 60;
/// The longest `state` a request may carry (it comes back in a URL).
pub const MAX_STATE_LEN: usize = 512;

const VERIFIER_MIN: usize = 43;
const VERIFIER_MAX: usize = 128;
/// base64url (unpadded) of a SHA-256 digest.
const CHALLENGE_LEN: usize = 43;

/// Why a PKCE parameter is refused. Every variant is `invalid_request` (or `invalid_grant`
/// at the token endpoint); the message says which rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// No `code_challenge`.
    #[error("code_challenge is required (PKCE, S256)")]
    Missing,
    /// A method other than `S256`, `plain` included.
    #[error("code_challenge_method must be S256")]
    Method,
    /// Not 43 base64url characters.
    #[error("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")]
    Challenge,
    /// Not 43–128 unreserved characters (RFC 7636 §4.1).
    #[error("code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~")]
    Verifier,
    /// The verifier does not hash to the challenge.
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// An `S256` code challenge (RFC 7636 §4.2): base64url(SHA-256(verifier)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Reads the request's `code_challenge` and `code_challenge_method`. The method defaults to
    /// `plain` in RFC 7636, so a missing method is refused like `plain`.
    ///
    /// # Errors
    /// [`PkceError::Missing`], [`PkceError::Method`] or [`PkceError::Challenge`].
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge
            .filter(|c| !c.is_empty())
            .ok_or(PkceError::Missing)?;
        if method != Some("S256") {
            return Err(PkceError::Method);
        }
        let well_formed = challenge.len() == CHALLENGE_LEN
            && URL_SAFE_NO_PAD
                .decode(challenge)
                .is_ok_and(|d| d.len() == digest::SHA256_OUTPUT_LEN);
        if !well_formed {
            return Err(PkceError::Challenge);
        }
        Ok(Self(challenge.to_owned()))
    }

    /// The challenge as sent (and stored).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks `verifier` against the challenge, in constant time.
    ///
    /// # Errors
    /// [`PkceError::Verifier`] for a malformed verifier, [`PkceError::Mismatch`] otherwise.
    pub fn verify(&self, verifier: &str) -> Result<(), PkceError> {
        let unreserved =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if !(VERIFIER_MIN..=VERIFIER_MAX).contains(&verifier.len())
            || !verifier.bytes().all(unreserved)
        {
            return Err(PkceError::Verifier);
        }
        let hashed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
        if bool::from(hashed.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(PkceError::Mismatch)
        }
    }
}

/// What an authorization request may fail on, split by whether the client may be told through
/// its redirect URI (RFC 6749 §4.1.2.1). The first two never redirect: the redirect URI is not
/// known to be the client's, so the user gets an error page instead of an open redirect.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No such client.
    #[error("unknown client")]
    UnknownClient,
    /// The redirect URI is missing or is not one the client registered.
    #[error("the redirect_uri is not registered for this client")]
    RedirectUri,
    /// `response_type` is not `code` (redirected as `unsupported_response_type`).
    #[error("response_type must be code")]
    ResponseType,
    /// A malformed or missing parameter, PKCE included (redirected as `invalid_request`).
    #[error("{0}")]
    Invalid(&'static str),
    /// A scope the client may not have (redirected as `invalid_scope`).
    #[error("the requested scope is not allowed for this client")]
    Scope,
}

impl RequestError {
    /// Whether the error goes back to the client through its (verified) redirect URI.
    #[must_use]
    pub fn redirects(&self) -> bool {
        !matches!(self, Self::UnknownClient | Self::RedirectUri)
    }

    /// The RFC 6749 §4.1.2.1 `error` code of a redirected error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::ResponseType => "unsupported_response_type",
            Self::Scope => "invalid_scope",
            Self::UnknownClient | Self::RedirectUri | Self::Invalid(_) => "invalid_request",
        }
    }
}

/// The parameters of an authorization request, as sent (`GET /oauth/authorize`, or the
/// consent form's hidden fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestParams {
    /// `response_type`.
    pub response_type: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `code_challenge`.
    pub code_challenge: Option<String>,
    /// `code_challenge_method`.
    pub code_challenge_method: Option<String>,
    /// `state`, returned untouched.
    pub state: Option<String>,
    /// `scope`; default: everything the client may have.
    pub scope: Option<String>,
}

/// A checked authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRequest {
    /// The redirect URI, one of the client's.
    pub redirect_uri: String,
    /// The PKCE challenge.
    pub challenge: CodeChallenge,
    /// `state`, if sent.
    pub state: Option<String>,
    /// The scope granted if the user agrees (a subset of the client's).
    pub scope: Scope,
}

/// Checks an authorization request against the client's registration. The redirect URI is
/// checked first: until it is known to be the client's, no error may be sent there.
///
/// # Errors
/// A [`RequestError`]; see [`RequestError::redirects`].
pub fn check_request(
    client: &ClientRecord,
    params: &RequestParams,
) -> Result<ValidRequest, RequestError> {
    let redirect_uri = params
        .redirect_uri
        .as_deref()
        .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
        .ok_or(RequestError::RedirectUri)?;
    if params.response_type.as_deref() != Some("code") {
        return Err(RequestError::ResponseType);
    }
    let state = params.state.clone().filter(|s| !s.is_empty());
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(RequestError::Invalid("state is too long"));
    }
    let challenge = CodeChallenge::parse(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )
    .map_err(|e| {
        RequestError::Invalid(match e {
            PkceError::Missing => "code_challenge is required (PKCE, S256)",
            PkceError::Method => "code_challenge_method must be S256",
            _ => "malformed code_challenge",
        })
    })?;
    let scope = match params.scope.as_deref().filter(|s| !s.is_empty()) {
        None => client.scope.clone(),
        Some(raw) => {
            let asked = Scope::parse(raw).map_err(|_| RequestError::Invalid("malformed scope"))?;
            if !asked.is_subset(&client.scope) {
                return Err(RequestError::Scope);
            }
            asked
        }
    };
    Ok(ValidRequest {
        redirect_uri: redirect_uri.to_owned(),
        challenge,
        state,
        scope,
    })
}

/// An issued authorization code, as stored (under the hash of its `tac_` token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The redirect URI it was sent to; the token request must name the same.
    pub redirect_uri: String,
    /// The user who agreed.
    pub user_id: String,
    /// The user's credential epoch when they agreed: a password change, "sign out everywhere"
    /// or a disable since then raises it, and the code no longer redeems.
    pub credential_epoch: i64,
    /// The session id the tokens of this code will carry (chosen now; see the module docs).
    pub sid: String,
    /// The granted scope.
    pub scope: Scope,
    /// The PKCE challenge.
    pub challenge: CodeChallenge,
    /// Issue time.
    pub created_at: UnixTime,
    /// End of its single use.
    pub expires_at: UnixTime,
}

/// Why a code redemption is refused (all `invalid_grant` outwardly, RFC 6749 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedeemError {
    /// Past its lifetime.
    #[error("the code has expired")]
    Expired,
    /// Issued to another client.
    #[error("the code was issued to another client")]
    Client,
    /// Issued for another redirect URI.
    #[error("redirect_uri differs from the authorization request's")]
    RedirectUri,
    /// PKCE failed.
    #[error(transparent)]
    Pkce(#[from] PkceError),
}

impl AuthorizationCode {
    /// The checks of a first redemption (RFC 6749 §4.1.3, RFC 7636 §4.6): the code's client,
    /// redirect URI, lifetime and PKCE verifier.
    ///
    /// # Errors
    /// A [`RedeemError`].
    pub fn redeem(
        &self,
        client_id: &ClientId,
        redirect_uri: &str,
        verifier: &str,
        now: UnixTime,
    ) -> Result<(), RedeemError> {
        if &self.client_id != client_id {
            return Err(RedeemError::Client);
        }
        if self.redirect_uri != redirect_uri {
            return Err(RedeemError::RedirectUri);
        }
        if now >= self.expires_at {
            return Err(RedeemError::Expired);
        }
        self.challenge.verify(verifier)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
