//! Accounts: registration, password login with its throttle, and password change.

use std::net::IpAddr;

use tessera_core::audit::EventKind;
use tessera_core::device;
use tessera_core::opaque::random_id;
use tessera_core::username::Username;
use tessera_store::User;

use super::{ClientContext, audit, internal, revoke_user};
use crate::auth::Credential;
use crate::error::ApiError;
use crate::state::{AppState, HashPriority, Metrics};

/// Parses a username by the one rule ([`Username::parse`]).
fn username(raw: &str) -> Result<Username, ApiError> {
    Username::parse(raw).map_err(|e| ApiError::InvalidRequest(e.to_string().into()))
}

/// Checks a new password against the policy and hashes it: the one way a password is set.
async fn new_password_hash(
    state: &AppState,
    username: &Username,
    password: String,
    client: &ClientContext,
) -> Result<String, ApiError> {
    let source = hashing_source(client);
    state
        .hash_new_password(username.as_str().to_owned(), password, source.as_deref())
        .await
}

/// The address a request's Argon2 work is accounted to in the hashing queue.
fn hashing_source(client: &ClientContext) -> Option<String> {
    client.ip.map(|ip| ip_key("hash", ip))
}

/// Registers a user after checking the password policy.
///
/// # Errors
/// `InvalidRequest`, `WeakPassword`, `UsernameTaken`, `RateLimited`, `Overloaded`, or a store
/// failure.
pub async fn register(
    state: &AppState,
    username_raw: &str,
    password: String,
    is_admin: bool,
    client: &ClientContext,
) -> Result<User, ApiError> {
    let name = username(username_raw)?;
    // Counted per address before any work, whatever the outcome (a `409 taken` included).
    if let Some(ip) = client.ip {
        let limit = [(ip_key("register", ip), state.config.register_limit_per_ip)];
        if let Err(e) = reserve(state, &limit).await {
            Metrics::inc(&state.metrics.registrations_throttled);
            return Err(e);
        }
    }
    let user = User {
        id: random_id().map_err(internal)?,
        password_hash: new_password_hash(state, &name, password, client).await?,
        username: name.into_string(),
        is_admin,
        created_at: state.now(),
        credential_epoch: 0,
        disabled: false,
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

/// The key an address is throttled under: an IPv4 address alone, an IPv6 address by its /64
/// (one subscriber's allocation, which an attacker can rotate through freely).
fn ip_key(kind: &str, ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{kind}:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{kind}:{v4}"),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{kind}:{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

/// Counts one attempt against every key *before* the work it limits, so a burst of concurrent
/// attempts cannot all pass one check: each racer gets its own count, and only `limit` of them
/// can be within it. An attempt refused here is taken back again (it did no work).
async fn reserve(state: &AppState, limits: &[(String, u32)]) -> Result<(), ApiError> {
    let mut retry_after = None;
    for (key, limit) in limits {
        let (count, left) = state
            .attempts
            .hit(key, state.config.login_window_secs)
            .await?;
        if count > *limit {
            retry_after = retry_after.max(Some(u64::try_from(left.max(1)).unwrap_or(1)));
        }
    }
    match retry_after {
        None => Ok(()),
        Some(retry_after) => {
            for (key, _) in limits {
                state.attempts.refund(key).await?;
            }
            Err(ApiError::RateLimited { retry_after })
        }
    }
}

/// Checks a username and password, throttled per client IP (IPv6: per /64) and per account.
/// Unknown users and wrong passwords take the same time and give the same answer.
///
/// Every attempt is counted before the password is checked; a success takes its count back
/// from the IP (a busy office behind one address is never throttled for logging in) and clears
/// the account's, but never clears the IP's failures — logging in to one's own account does
/// not buy more guesses at others.
///
/// A genuine device cookie for this account (see [`tessera_core::device`]) moves the throttle
/// from the account and IP to that one device, so failures piled on the account by others
/// never lock its owner out of a browser or app they have logged in from before.
///
/// A disabled user is refused exactly like a wrong password. Every refusal is audited
/// (`login_failed` with its reason: `throttled`, `unknown_user`, `bad_password`,
/// `disabled`); success is audited by the flow that starts the session.
///
/// # Errors
/// `InvalidCredentials`, `RateLimited`, `Overloaded`, or a store failure.
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
    let device = name.as_ref().and_then(|n| {
        client
            .device_cookie
            .as_deref()
            .and_then(|c| device::verify(&state.key_ring(), c, n.as_str()))
    });
    let ip_limit = client
        .ip
        .map(|ip| (ip_key("ip", ip), cfg.login_limit_per_ip));
    let owner_limits: Vec<(String, u32)> = match &device {
        Some(id) => vec![(format!("device:{id}"), cfg.login_limit_per_account)],
        None => name
            .iter()
            .map(|n| (format!("user:{n}"), cfg.login_limit_per_account))
            .chain(ip_limit.clone())
            .collect(),
    };
    if let Err(e) = reserve(state, &owner_limits).await {
        Metrics::inc(&state.metrics.logins_throttled);
        if matches!(e, ApiError::RateLimited { .. }) {
            let known = match &name {
                Some(n) => state.store.user_by_name(n.as_str()).await.ok().flatten(),
                None => None,
            };
            let user = known.as_ref().map(|u| u.username.as_str());
            audit::record(state, EventKind::LoginFailed, user, client.ip, "throttled").await;
        }
        return Err(e);
    }
    let user = match &name {
        Some(n) => state.store.user_by_name(n.as_str()).await?,
        None => None,
    };
    let priority = if device.is_some() {
        HashPriority::KnownDevice
    } else {
        HashPriority::Normal
    };
    let source = hashing_source(client);
    let checked = state
        .verify_password(
            password,
            user.as_ref().map(|u| u.password_hash.clone()),
            priority,
            source.as_deref(),
        )
        .await;
    let ok = match checked {
        Ok(ok) => ok,
        Err(e) => {
            // Nothing was verified (the queue was full): the attempt is taken back, so a flood
            // refused by the queue does not push the account towards its lock-out.
            for (key, _) in &owner_limits {
                state.attempts.refund(key).await?;
            }
            return Err(e);
        }
    };
    // A disabled user's right password is refused like a wrong one, counters included: the
    // caller learns nothing; the audit log has the reason.
    let refusal = match &user {
        None => Some("unknown_user"),
        Some(_) if !ok => Some("bad_password"),
        Some(u) if u.disabled => Some("disabled"),
        Some(_) => None,
    };
    match (user, refusal) {
        (Some(user), None) => {
            for (key, _) in &owner_limits {
                if Some(key) == ip_limit.as_ref().map(|(k, _)| k) {
                    state.attempts.refund(key).await?;
                } else {
                    state.attempts.reset(key).await?;
                }
            }
            Metrics::inc(&state.metrics.logins_ok);
            Ok(user)
        }
        (user, reason) => {
            Metrics::inc(&state.metrics.logins_failed);
            // The name someone typed is recorded only when it is a user's: a password typed
            // into the username field must not end up in the log.
            let name = user.as_ref().map(|u| u.username.as_str());
            let reason = reason.unwrap_or("bad_password");
            audit::record(state, EventKind::LoginFailed, name, client.ip, reason).await;
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// A fresh device cookie for `user`, after a successful login (`None` if no key can sign it).
#[must_use]
pub fn device_cookie(state: &AppState, user: &User) -> Option<String> {
    device::issue(&state.key_ring(), &user.username)
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
    let hash = new_password_hash(state, &name, new_password, client).await?;
    // Every credential dies *before* the hash changes: if the store gives way after the new
    // hash is written, the client cannot redo the change (its `current_password` is no longer
    // current), so a revocation left for afterwards could be lost for good. The second pass
    // catches logins that verified the old password in between (see `confirm_login`).
    let first = revoke_user(state, &user.id, None).await?;
    state.store.set_password_hash(&user.id, &hash).await?;
    let ended = first.saturating_add(revoke_user(state, &user.id, None).await?);
    let detail = format!("every credential revoked; {ended} session(s) ended");
    audit::record(
        state,
        EventKind::PasswordChanged,
        Some(&user.username),
        client.ip,
        detail,
    )
    .await;
    Ok(())
}
