//! Who is calling: the session cookie, a bearer session token, or a bearer access JWT — and,
//! for cookie-authenticated writes, the CSRF defence — as extractors a handler asks for.
//!
//! Design decision: a handler gets a credential only through [`Authenticated`], which runs the
//! CSRF checks itself whenever the request method is unsafe and the credential is the cookie.
//! A route therefore *cannot* accept a cookie-authenticated write without them; a test walks
//! every route of the router to prove it. Cookie login, which has no session yet, asks for
//! [`SameOrigin`] instead.
//!
//! A JWT is checked with memory only (signature against the cached key ring, claims, the
//! in-memory revocation list); a session costs one store read. Either way every failure becomes
//! the same `invalid_token` answer; the reason goes to the debug log.
//!
//! CSRF: the cookie is sent by browsers on cross-site requests, so a cookie-authenticated write
//! must prove it comes from our own pages: `Sec-Fetch-Site: cross-site` and a foreign `Origin`
//! are refused, and the `X-CSRF-Token` header must carry the session's CSRF token — an HMAC of
//! the session token, so it is never stored and cannot be computed without the cookie.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use tessera_core::access::{self, AccessClaims};
use tessera_core::opaque::{OpaqueToken, TokenKind};
use tessera_core::revocation::RevocationSubject;
use tessera_core::session::Session;

use crate::dpop;
use crate::error::ApiError;
use crate::extract::{Scheme, authorization, session_cookie, single_header};
use crate::metrics::AuthOutcome;
use crate::service;
use crate::state::AppState;

/// The header a cookie-authenticated write must carry the CSRF token in.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
const CSRF_PURPOSE: &str = "tessera csrf v1";

/// How the caller authenticated.
#[derive(Debug)]
pub enum Credential {
    /// The `__Host-tessera_session` cookie.
    Cookie {
        /// The session.
        session: Session,
        /// The session token, kept to derive and check the CSRF token.
        token: OpaqueToken,
    },
    /// `Authorization: Bearer tss_…`.
    BearerSession {
        /// The session.
        session: Session,
    },
    /// `Authorization: Bearer <access JWT>`.
    Jwt(AccessClaims),
}

impl Credential {
    /// The user.
    #[must_use]
    pub fn user_id(&self) -> &str {
        match self {
            Self::Cookie { session, .. } | Self::BearerSession { session } => &session.user_id,
            Self::Jwt(c) => &c.sub,
        }
    }

    /// The login session the credential belongs to, if any.
    #[must_use]
    pub fn sid(&self) -> Option<&str> {
        match self {
            Self::Cookie { session, .. } | Self::BearerSession { session } => Some(&session.id),
            Self::Jwt(c) => c.sid.as_deref(),
        }
    }

    /// `"session"` or `"jwt"`, as `/v1/userinfo` reports it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cookie { .. } | Self::BearerSession { .. } => "session",
            Self::Jwt(_) => "jwt",
        }
    }
}

/// The request's credential, authenticated — and, for a cookie-authenticated request with an
/// unsafe method, CSRF-checked (`require_csrf`). The only way a handler gets a [`Credential`].
#[derive(Debug)]
pub struct Authenticated(pub Credential);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = authenticate(state, parts).await?;
        if !is_safe(&parts.method) {
            require_csrf(state, &parts.headers, &credential)?;
        }
        Ok(Self(credential))
    }
}

/// An administrator: a user marked admin (`tessera users create --admin`) and not disabled,
/// authenticated exactly as [`Authenticated`] — CSRF checks included for a cookie. Anyone
/// else authenticated gets `403`; a credential that is not a user's (a client's own token)
/// too.
#[derive(Debug)]
pub struct Admin(pub Credential);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(credential) = Authenticated::from_request_parts(parts, state).await?;
        require_admin(state, credential.user_id()).await?;
        Ok(Self(credential))
    }
}

/// The admin rule, for [`Admin`] and the admin page: a user marked admin and not disabled.
///
/// # Errors
/// `Forbidden` for anyone else; a store failure.
pub(crate) async fn require_admin(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let admin = state
        .store
        .user_by_id(user_id)
        .await?
        .is_some_and(|u| u.is_admin && !u.disabled);
    if admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// A request that passed the origin checks of `check_origin`: for cookie login, which must
/// not be triggered by a foreign page (login CSRF) but has no session to derive a token from.
#[derive(Debug)]
pub struct SameOrigin;

/// The headers the origin checks read, for the OpenAPI description of every route that runs
/// them (cookie login, and every cookie-authenticated write through [`Authenticated`]).
impl utoipa::IntoParams for SameOrigin {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, schema::Type};
        let header = |name: &str, description: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        };
        vec![
            header(
                "Origin",
                "When present on a cookie login or cookie-authenticated write, it must name the request's own `Host` or a trusted origin; otherwise 403 `csrf_rejected`.",
            ),
            header(
                "Sec-Fetch-Site",
                "`cross-site` is refused with 403 `csrf_rejected` on cookie logins and cookie-authenticated writes.",
            ),
        ]
    }
}

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check_origin(state, &parts.headers)?;
        Ok(Self)
    }
}

/// RFC 9110 §9.2.1: methods that only read. Everything else is a write.
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// A refused credential: the answer, and the reason counted at `/metrics`.
type Refusal = (AuthOutcome, ApiError);

/// The outcome of a failure that is not the credential's fault (the store).
fn failed(e: ApiError) -> Refusal {
    (AuthOutcome::Unavailable, e)
}

/// Authenticates the request by `Authorization` header, else by cookie, and counts the
/// outcome.
async fn authenticate(state: &AppState, parts: &Parts) -> Result<Credential, ApiError> {
    let result = identify(state, parts).await;
    let outcome = match &result {
        Ok(Credential::Jwt(_)) => AuthOutcome::OkJwt,
        Ok(Credential::BearerSession { .. }) => AuthOutcome::OkSession,
        Ok(Credential::Cookie { .. }) => AuthOutcome::OkCookie,
        Err((outcome, _)) => *outcome,
    };
    state.metrics.auth.record(outcome);
    result.map_err(|(_, e)| e)
}

/// An access JWT bound to a DPoP key (`cnf.jkt`) is only accepted as `DPoP <token>` with a
/// valid proof by that key for this very request; presented as `Bearer`, it is refused
/// (RFC 9449 §7.2), as is an unbound token or a session token presented as `DPoP` — nothing
/// binds it to the proof.
async fn identify(state: &AppState, parts: &Parts) -> Result<Credential, Refusal> {
    let headers = &parts.headers;
    if let Some((scheme, token)) =
        authorization(headers).map_err(|e| (AuthOutcome::Malformed, e))?
    {
        let wrong_scheme = || (AuthOutcome::Invalid, ApiError::DpopTokenRefused);
        if TokenKind::of(token) == Some(TokenKind::Session) {
            if scheme == Scheme::Dpop {
                return Err(wrong_scheme());
            }
            let (session, _) = session_why(state, token).await?;
            return Ok(Credential::BearerSession { session });
        }
        let claims = jwt_why(state, token, &state.access_policy).await?;
        match (scheme, claims.cnf.as_ref()) {
            (Scheme::Bearer, None) => {}
            (Scheme::Dpop, Some(cnf)) => {
                dpop::check_resource_proof(state, parts, token, &cnf.jkt)
                    .await
                    .map_err(|e| match e {
                        e @ ApiError::Unavailable(_) => failed(e),
                        e => (AuthOutcome::Invalid, e),
                    })?;
            }
            (Scheme::Bearer, Some(_)) | (Scheme::Dpop, None) => {
                tracing::debug!(jti = %claims.jti, ?scheme, "token presented with the wrong scheme");
                return Err(wrong_scheme());
            }
        }
        return Ok(Credential::Jwt(claims));
    }
    match session_cookie(headers).map_err(|e| (AuthOutcome::Malformed, e))? {
        Some(raw) => {
            let (session, token) = session_why(state, raw).await?;
            Ok(Credential::Cookie { session, token })
        }
        None => Err((AuthOutcome::Missing, ApiError::Unauthenticated)),
    }
}

/// Verifies an access JWT: signature, claims, revocation — in memory, unless the revocation
/// feed is down. A token verified before skips the signature and decoding (the state's
/// [`tessera_core::access::cache::VerifiedCache`]) but never the time, key or revocation
/// checks.
///
/// # Errors
/// `InvalidToken`, whatever the reason; `Unavailable` if revocation cannot be checked.
pub async fn verify_jwt(state: &AppState, token: &str) -> Result<AccessClaims, ApiError> {
    verify_jwt_with(state, token, &state.access_policy).await
}

/// [`verify_jwt`] for a token meant for any audience this server issues for — its own, or
/// one token exchange may target (`--audience`): what introspection, which answers for every
/// resource server, accepts. The audience is read from the token only to pick the policy; the
/// policy then checks it like any other claim.
///
/// # Errors
/// As [`verify_jwt`].
pub async fn verify_jwt_any_audience(
    state: &AppState,
    token: &str,
) -> Result<AccessClaims, ApiError> {
    let exchanged = tessera_core::jose::decode_unverified_dangerously(token)
        .ok()
        .and_then(|(_, claims)| claims.get("aud")?.as_str().map(str::to_owned))
        .filter(|aud| *aud != state.access_policy.audience && state.config.accepts_audience(aud));
    match exchanged {
        Some(audience) => {
            let policy = access::AccessPolicy {
                audience,
                ..state.access_policy.clone()
            };
            verify_jwt_with(state, token, &policy).await
        }
        None => verify_jwt(state, token).await,
    }
}

async fn verify_jwt_with(
    state: &AppState,
    token: &str,
    policy: &access::AccessPolicy,
) -> Result<AccessClaims, ApiError> {
    jwt_why(state, token, policy).await.map_err(|(_, e)| e)
}

/// [`verify_jwt_with`], saying why a token was refused.
async fn jwt_why(
    state: &AppState,
    token: &str,
    policy: &access::AccessPolicy,
) -> Result<AccessClaims, Refusal> {
    let claims = {
        let ring = state.key_ring();
        // Asked on every call, cached token or not: a key revoked or gone from the ring
        // stops its tokens at once.
        let lookup = |kid: &str| {
            if state.revocations.is_key_revoked(kid) {
                None
            } else {
                ring.verifier(kid)
            }
        };
        let verified = state
            .access_cache
            .verify_with(token, lookup, policy, state.now());
        verified.map_err(|e| {
            tracing::debug!(reason = %e, "access token refused");
            let outcome = match e {
                access::AccessError::Expired => AuthOutcome::Expired,
                // The only unknown key the lookup makes up is a revoked one.
                access::AccessError::Jose(tessera_core::jose::JoseError::UnknownKey)
                    if jwt_kid(token).is_some_and(|kid| state.revocations.is_key_revoked(&kid)) =>
                {
                    AuthOutcome::Revoked
                }
                _ => AuthOutcome::Invalid,
            };
            (outcome, ApiError::InvalidToken)
        })?
    };
    let subject = RevocationSubject {
        jti: &claims.jti,
        sid: claims.sid.as_deref(),
        sub: &claims.sub,
        client_id: Some(&claims.client_id),
        iat: claims.iat,
    };
    if state.is_revoked(subject, token).await.map_err(failed)? {
        tracing::debug!(jti = %claims.jti, "revoked access token refused");
        return Err((AuthOutcome::Revoked, ApiError::InvalidToken));
    }
    Ok(claims)
}

/// The `kid` of a JWS header, read without trusting it (only to name a refusal's reason).
fn jwt_kid(token: &str) -> Option<String> {
    let (header, _) = tessera_core::jose::decode_unverified_dangerously(token).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

/// Looks up a session token and uses the session ([`service::use_session`]).
///
/// # Errors
/// `InvalidToken` if malformed, unknown, expired, idle or revoked.
pub async fn check_session(
    state: &AppState,
    raw: &str,
) -> Result<(Session, OpaqueToken), ApiError> {
    session_why(state, raw).await.map_err(|(_, e)| e)
}

/// [`check_session`], saying why a session token was refused.
async fn session_why(state: &AppState, raw: &str) -> Result<(Session, OpaqueToken), Refusal> {
    let token = OpaqueToken::parse(TokenKind::Session, raw).map_err(|e| {
        tracing::debug!(reason = %e, "session token refused before lookup");
        (AuthOutcome::Malformed, ApiError::InvalidToken)
    })?;
    // Always asked of the store: a logout on any instance deletes the row before it answers,
    // so the next use anywhere is refused at once (an in-process cache could only be as
    // fresh as the revocation feed, milliseconds behind).
    let session = state
        .store
        .session_by_token(&token.hash())
        .await
        .map_err(|e| failed(e.into()))?
        .ok_or((AuthOutcome::UnknownSession, ApiError::InvalidToken))?;
    match service::try_use_session(state, session)
        .await
        .map_err(failed)?
    {
        Ok(session) => Ok((session, token)),
        Err(service::Dead::Expired) => Err((AuthOutcome::Expired, ApiError::InvalidToken)),
        Err(service::Dead::Revoked) => Err((AuthOutcome::Revoked, ApiError::InvalidToken)),
    }
}

/// The CSRF token of a session.
#[must_use]
pub fn csrf_token(session_token: &OpaqueToken) -> String {
    URL_SAFE_NO_PAD.encode(session_token.derive(CSRF_PURPOSE).as_ref())
}

/// Refuses requests a browser marks as cross-site, or whose `Origin` is neither this
/// request's own (`Host`) nor a trusted one. Applies to every cookie-authenticated write and
/// to cookie login (so a foreign page cannot log a victim into the attacker's account).
///
/// # Errors
/// `Csrf` when refused.
pub(crate) fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let bad = |_| ApiError::Csrf("malformed fetch metadata");
    if let Some(site) =
        single_header(headers, HeaderName::from_static("sec-fetch-site")).map_err(bad)?
    {
        if site.eq_ignore_ascii_case("cross-site") {
            return Err(ApiError::Csrf("cross-site request refused"));
        }
    }
    let Some(origin) = single_header(headers, header::ORIGIN).map_err(bad)? else {
        return Ok(());
    };
    let host = single_header(headers, header::HOST).map_err(bad)?;
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    let same_host = matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
    let trusted = state
        .config
        .trusted_origins
        .iter()
        .any(|t| t.eq_ignore_ascii_case(origin))
        || origin.eq_ignore_ascii_case(&state.config.issuer);
    if same_host || trusted {
        Ok(())
    } else {
        Err(ApiError::Csrf("cross-origin request refused"))
    }
}

/// For a cookie-authenticated write: the origin checks plus the `X-CSRF-Token` header.
/// Bearer credentials are not sent by browsers on their own, so they need neither.
///
/// # Errors
/// `Csrf` when refused.
fn require_csrf(
    state: &AppState,
    headers: &HeaderMap,
    credential: &Credential,
) -> Result<(), ApiError> {
    let Credential::Cookie { token, .. } = credential else {
        return Ok(());
    };
    check_origin(state, headers)?;
    let sent = single_header(headers, CSRF_HEADER)
        .map_err(|_| ApiError::Csrf("malformed CSRF token"))?
        .ok_or(ApiError::Csrf("missing X-CSRF-Token header"))?;
    check_csrf_token(token, sent)
}

/// Whether `sent` is the CSRF token of the session `token` (compared in constant time): the
/// one check behind the `X-CSRF-Token` header and the pages' hidden `csrf_token` field.
///
/// # Errors
/// `Csrf` when it is not.
pub(crate) fn check_csrf_token(token: &OpaqueToken, sent: &str) -> Result<(), ApiError> {
    if bool::from(sent.as_bytes().ct_eq(csrf_token(token).as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Csrf("wrong CSRF token"))
    }
}

/// The session of the cookie alone (the pages know no other credential): `None` without one,
/// `InvalidToken` for a cookie that is not a live session.
///
/// # Errors
/// `InvalidToken`, or `Unavailable` when the store cannot answer.
pub(crate) async fn cookie_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(Session, OpaqueToken)>, ApiError> {
    match session_cookie(headers)? {
        Some(raw) => check_session(state, raw).await.map(Some),
        None => Ok(None),
    }
}
