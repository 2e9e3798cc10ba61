//! Credential lifecycle: login, issuing tokens, rotation, and revoking a session tree.
//!
//! Handlers and the CLI both call these, so each rule lives once. Revocation follows one
//! order everywhere: first the durable revocation record (the commit point — from then on the
//! in-memory check refuses the session and every JWT carrying its `sid`), then the clean-up of
//! refresh families and the session row.

use std::net::IpAddr;

use serde::Serialize;
use tessera_core::access::{self, AccessClaims};
use tessera_core::device;
use tessera_core::opaque::{OpaqueToken, TokenKind, random_id};
use tessera_core::refresh::{self, RefreshFamily};
use tessera_core::revocation::Revocation;
use tessera_core::session::{Session, SessionKind};
use tessera_store::{RotateOutcome, Successor, User};

use crate::error::ApiError;
use crate::state::{AppState, Metrics};

/// `client_id` of tokens issued to Tessera's own first-party apps (no registered client).
pub const FIRST_PARTY_CLIENT: &str = "first-party";

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string().into())
}

/// Normalises a username: trimmed, lower-case; 3–64 of `a-z 0-9 . _ - @`.
///
/// # Errors
/// `InvalidRequest` if it does not fit.
pub fn normalize_username(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim().to_lowercase();
    let ok_len = (3..=64).contains(&name.chars().count());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok_len && ok_chars {
        Ok(name)
    } else {
        Err(ApiError::InvalidRequest(
            "username must be 3-64 characters of a-z, 0-9, '.', '_', '-', '@'".into(),
        ))
    }
}

/// Registers a user after checking the password policy.
///
/// # Errors
/// `InvalidRequest`, `WeakPassword`, `UsernameTaken`, or a store failure.
pub async fn register(
    state: &AppState,
    username: &str,
    password: String,
    is_admin: bool,
) -> Result<User, ApiError> {
    let username = normalize_username(username)?;
    tessera_core::password::check_policy(&username, &password)
        .map_err(|e| ApiError::WeakPassword(e.to_string()))?;
    let user = User {
        id: random_id().map_err(internal)?,
        username,
        password_hash: state.hash_password(password).await?,
        is_admin,
        created_at: state.now(),
    };
    match state.store.create_user(&user).await {
        Ok(()) => Ok(user),
        Err(tessera_store::StoreError::Conflict(_)) => Err(ApiError::UsernameTaken),
        Err(e) => Err(e.into()),
    }
}

/// Checks a username and password, throttled per client IP and per account. Unknown users
/// and wrong passwords take the same time and give the same answer.
///
/// A genuine device cookie for this account (see [`tessera_core::device`]) moves the throttle
/// from the account and IP to that one device, so failures piled on the account by others
/// never lock its owner out of a browser they have logged in from before.
///
/// # Errors
/// `InvalidCredentials`, `RateLimited`, or a store failure.
pub async fn login(
    state: &AppState,
    username: &str,
    password: String,
    ip: Option<IpAddr>,
    device_cookie: Option<&str>,
) -> Result<User, ApiError> {
    let cfg = &state.config;
    // Capped so a hostile 16 KiB "username" cannot bloat the counters; no real name is longer.
    let name: String = username.trim().to_lowercase().chars().take(64).collect();
    let user_key = format!("user:{name}");
    let device = device_cookie.and_then(|c| device::verify(&state.key_ring(), c, &name));
    let limits: Vec<(String, u32)> = match &device {
        Some(id) => vec![(format!("device:{id}"), cfg.login_limit_per_account)],
        None => ip
            .map(|ip| (format!("ip:{ip}"), cfg.login_limit_per_ip))
            .into_iter()
            .chain([(user_key.clone(), cfg.login_limit_per_account)])
            .collect(),
    };
    for (key, limit) in &limits {
        let (count, left) = state.attempts.peek(key).await?;
        if count >= *limit {
            Metrics::inc(&state.metrics.logins_throttled);
            return Err(ApiError::RateLimited {
                retry_after: u64::try_from(left.max(1)).unwrap_or(1),
            });
        }
    }
    let user = state.store.user_by_name(&name).await?;
    let ok = state
        .verify_password(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    match user {
        Some(user) if ok => {
            for (key, _) in &limits {
                state.attempts.reset(key).await?;
            }
            state.attempts.reset(&user_key).await?;
            Metrics::inc(&state.metrics.logins_ok);
            Ok(user)
        }
        _ => {
            // Only failures count: a busy office behind one address is never throttled for
            // logging in successfully.
            for (key, _) in &limits {
                state.attempts.hit(key, cfg.login_window_secs).await?;
            }
            Metrics::inc(&state.metrics.logins_failed);
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// Starts a browser session; returns it with its token (to be set as the cookie).
///
/// # Errors
/// A store or random-generator failure.
pub async fn start_browser_session(
    state: &AppState,
    user: &User,
    user_agent: Option<String>,
    ip: Option<IpAddr>,
) -> Result<(Session, OpaqueToken), ApiError> {
    let token = OpaqueToken::generate(TokenKind::Session).map_err(internal)?;
    let mut session = Session::new(
        random_id().map_err(internal)?,
        Some(token.hash()),
        user.id.clone(),
        SessionKind::Browser,
        state.now(),
        &state.config.sessions,
    );
    session.user_agent = user_agent;
    session.ip = ip.map(|ip| ip.to_string());
    state.store.create_session(&session).await?;
    Ok((session, token))
}

/// The token endpoint's success body (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token, when one is issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scope, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Mints an access JWT (RFC 9068) signed with the current key.
///
/// # Errors
/// If there is no current key or signing fails.
pub fn issue_access(
    state: &AppState,
    user_id: &str,
    username: Option<&str>,
    sid: Option<&str>,
    scope: Option<&str>,
    client_id: &str,
) -> Result<String, ApiError> {
    let now = state.now();
    let claims = AccessClaims {
        iss: state.config.issuer.clone(),
        sub: user_id.to_owned(),
        aud: state.config.audience.clone(),
        exp: now.plus(state.config.access_ttl_secs),
        iat: now,
        nbf: now,
        jti: random_id().map_err(internal)?,
        sid: sid.map(str::to_owned),
        scope: scope.map(str::to_owned),
        client_id: client_id.to_owned(),
        username: username.map(str::to_owned),
    };
    let ring = state.key_ring();
    let key = ring
        .current()
        .ok_or_else(|| internal("no current signing key"))?;
    let jwt = access::issue(key, &claims).map_err(internal)?;
    Metrics::inc(&state.metrics.access_tokens_issued);
    Ok(jwt)
}

/// The password grant: a new app session owning a new refresh family, and an access token.
///
/// # Errors
/// A store, key or random-generator failure.
pub async fn start_app_session(
    state: &AppState,
    user: &User,
    scope: Option<String>,
    user_agent: Option<String>,
    ip: Option<IpAddr>,
) -> Result<TokenResponse, ApiError> {
    let now = state.now();
    let mut session = Session::new(
        random_id().map_err(internal)?,
        None,
        user.id.clone(),
        SessionKind::App,
        now,
        &state.config.sessions,
    );
    session.user_agent = user_agent;
    session.ip = ip.map(|ip| ip.to_string());
    let refresh_token = OpaqueToken::generate(TokenKind::Refresh).map_err(internal)?;
    let family = RefreshFamily {
        id: random_id().map_err(internal)?,
        user_id: user.id.clone(),
        sid: session.id.clone(),
        client_id: None,
        scope: scope.clone(),
        created_at: now,
        expires_at: session.expires_at,
        generation: 0,
        rotated_at: None,
        sealed_successor: None,
        revoked_at: None,
    };
    state.store.create_session(&session).await?;
    state
        .store
        .create_family(&family, &refresh_token.hash())
        .await?;
    let access_token = issue_access(
        state,
        &user.id,
        Some(&user.username),
        Some(&session.id),
        scope.as_deref(),
        FIRST_PARTY_CLIENT,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.config.access_ttl_secs,
        refresh_token: Some(refresh_token.expose_secret().to_owned()),
        scope,
    })
}

/// The refresh grant: rotate, or replay the successor within the grace window; reuse of a
/// retired token revokes the whole session tree.
///
/// # Errors
/// `InvalidGrant` for any refused token (one answer whatever the reason), or a store failure.
pub async fn refresh(state: &AppState, presented: &str) -> Result<TokenResponse, ApiError> {
    let refused = refused_grant();
    let presented = OpaqueToken::parse(TokenKind::Refresh, presented)
        .map_err(|_| ApiError::InvalidGrant("malformed refresh token"))?;
    // The successor is offered up front, sealed under the presented token, so rotation is a
    // single atomic store call.
    let candidate = OpaqueToken::generate(TokenKind::Refresh).map_err(internal)?;
    let successor = Successor {
        hash: candidate.hash(),
        sealed: refresh::seal_successor(&presented, &candidate).map_err(internal)?,
    };
    let now = state.now();
    let outcome = state
        .store
        .rotate(
            &presented.hash(),
            now,
            state.config.refresh_grace_secs,
            &successor,
        )
        .await?;
    let (family, next) = match outcome {
        RotateOutcome::Rotated(family) => {
            Metrics::inc(&state.metrics.refresh_rotations);
            (family, candidate)
        }
        RotateOutcome::GraceRetry { family, sealed } => {
            let next = refresh::open_successor(&presented, &sealed).map_err(|_| refused_grant())?;
            (family, next)
        }
        RotateOutcome::Reused(family) => {
            Metrics::inc(&state.metrics.refresh_reuse_detected);
            tracing::warn!(family = %family.id, sid = %family.sid, "refresh token reuse: revoking the session tree");
            revoke_session_tree(state, &family.sid).await?;
            return Err(refused);
        }
        RotateOutcome::Refused => return Err(refused),
    };
    // The family is fine; its session must be too (the tree is cut at the root).
    let session = state.store.session_by_id(&family.sid).await?;
    let Some(session) = session.filter(|s| s.check(now, &state.config.sessions).is_ok()) else {
        return Err(refused);
    };
    if state
        .is_session_revoked(&session.id, &session.user_id)
        .await?
    {
        return Err(refused);
    }
    if session.needs_touch(now, &state.config.sessions) {
        state.store.touch_session(&session.id, now).await?;
    }
    let username = state
        .store
        .user_by_id(&family.user_id)
        .await?
        .map(|u| u.username);
    let client = family.client_id.as_deref().unwrap_or(FIRST_PARTY_CLIENT);
    let access_token = issue_access(
        state,
        &family.user_id,
        username.as_deref(),
        Some(&family.sid),
        family.scope.as_deref(),
        client,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.config.access_ttl_secs,
        refresh_token: Some(next.expose_secret().to_owned()),
        scope: family.scope,
    })
}

fn refused_grant() -> ApiError {
    ApiError::InvalidGrant("refresh token is invalid, expired or revoked")
}

/// Revokes a login session and everything derived from it: its access tokens (by `sid`),
/// its refresh families, and the session itself.
///
/// # Errors
/// A store failure; if the revocation record was written, the tree is already dead.
pub async fn revoke_session_tree(state: &AppState, sid: &str) -> Result<(), ApiError> {
    let now = state.now();
    let expires_at = now.plus(state.config.access_horizon_secs());
    state
        .record_revocation(Revocation::Session {
            sid: sid.to_owned(),
            expires_at,
        })
        .await?;
    state.store.revoke_families_of_session(sid, now).await?;
    state.store.delete_session(sid).await?;
    Ok(())
}

/// Revokes every credential of a user (password change, admin action): a per-user cutoff
/// for access tokens without a session, then every session tree. `keep` spares one session.
///
/// # Errors
/// A store failure.
pub async fn revoke_user(
    state: &AppState,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, ApiError> {
    let now = state.now();
    if keep.is_none() {
        let expires_at = now.plus(state.config.access_horizon_secs());
        state
            .record_revocation(Revocation::User {
                user_id: user_id.to_owned(),
                not_before: now,
                expires_at,
            })
            .await?;
    }
    let mut count = 0;
    for s in state.store.sessions_of_user(user_id).await? {
        if Some(s.id.as_str()) != keep {
            revoke_session_tree(state, &s.id).await?;
            count += 1;
        }
    }
    Ok(count)
}

/// Revokes one access token by `jti` until it expires.
///
/// # Errors
/// A store failure.
pub async fn revoke_access(state: &AppState, claims: &AccessClaims) -> Result<(), ApiError> {
    state
        .record_revocation(Revocation::Token {
            jti: claims.jti.clone(),
            expires_at: claims.exp.plus(state.config.leeway_secs),
        })
        .await
}
