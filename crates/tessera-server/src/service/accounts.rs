//! Accounts: registration, password login with its throttle, and password change.

use tessera_core::device;
use tessera_core::opaque::random_id;
use tessera_core::username::Username;
use tessera_store::User;

use super::{ClientContext, internal, revoke_user};
use crate::auth::Credential;
use crate::error::ApiError;
use crate::state::{AppState, Metrics};

/// Parses a username by the one rule ([`Username::parse`]).
fn username(raw: &str) -> Result<Username, ApiError> {
    Username::parse(raw).map_err(|e| ApiError::InvalidRequest(e.to_string().into()))
}

/// Checks a new password against the policy and hashes it: the one way a password is set.
async fn new_password_hash(
    state: &AppState,
    username: &Username,
    password: String,
) -> Result<String, ApiError> {
    tessera_core::password::check_policy(username.as_str(), &password)
        .map_err(|e| ApiError::WeakPassword(e.to_string()))?;
    state.hash_password(password).await
}

/// Registers a user after checking the password policy.
///
/// # Errors
/// `InvalidRequest`, `WeakPassword`, `UsernameTaken`, or a store failure.
pub async fn register(
    state: &AppState,
    username_raw: &str,
    password: String,
    is_admin: bool,
) -> Result<User, ApiError> {
    let name = username(username_raw)?;
    let user = User {
        id: random_id().map_err(internal)?,
        password_hash: new_password_hash(state, &name, password).await?,
        username: name.into_string(),
        is_admin,
        created_at: state.now(),
    };
    match state.store.create_user(&user).await {
        Ok(()) => Ok(user),
        Err(tessera_store::StoreError::Conflict(_)) => Err(ApiError::UsernameTaken),
        Err(e) => Err(e.into()),
    }
}

/// The user with this id.
///
/// # Errors
/// `InvalidToken` if there is none (a credential outlived its user), or a store failure.
pub async fn user(state: &AppState, id: &str) -> Result<User, ApiError> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or(ApiError::InvalidToken)
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
    username_raw: &str,
    password: String,
    client: &ClientContext,
) -> Result<User, ApiError> {
    let cfg = &state.config;
    // A name that could never have been registered has no account to throttle (nor to find),
    // but costs the same work and gets the same answer.
    let name = Username::parse(username_raw).ok();
    let user_key = name.as_ref().map(|n| format!("user:{n}"));
    let device = name.as_ref().and_then(|n| {
        client
            .device_cookie
            .as_deref()
            .and_then(|c| device::verify(&state.key_ring(), c, n.as_str()))
    });
    let limits: Vec<(String, u32)> = match &device {
        Some(id) => vec![(format!("device:{id}"), cfg.login_limit_per_account)],
        None => client
            .ip
            .map(|ip| (format!("ip:{ip}"), cfg.login_limit_per_ip))
            .into_iter()
            .chain(user_key.clone().map(|k| (k, cfg.login_limit_per_account)))
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
    let user = match &name {
        Some(n) => state.store.user_by_name(n.as_str()).await?,
        None => None,
    };
    let ok = state
        .verify_password(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    match user {
        Some(user) if ok => {
            for (key, _) in &limits {
                state.attempts.reset(key).await?;
            }
            if let Some(key) = &user_key {
                state.attempts.reset(key).await?;
            }
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

/// Changes the caller's password — the current one is checked with the same throttle as a
/// login, so a stolen session is no password oracle — and revokes every credential of the
/// user, the caller's own included.
///
/// # Errors
/// `InvalidRequest` if the current password is wrong, `WeakPassword`, `RateLimited`, or a
/// store failure.
pub async fn change_password(
    state: &AppState,
    credential: &Credential,
    current_password: String,
    new_password: String,
    client: &ClientContext,
) -> Result<(), ApiError> {
    let user = user(state, credential.user_id()).await?;
    login(state, &user.username, current_password, client)
        .await
        .map_err(|e| match e {
            ApiError::InvalidCredentials => {
                ApiError::InvalidRequest("current_password is wrong".into())
            }
            other => other,
        })?;
    let name = username(&user.username)?;
    let hash = new_password_hash(state, &name, new_password).await?;
    state.store.set_password_hash(&user.id, &hash).await?;
    revoke_user(state, &user.id, None).await?;
    Ok(())
}
