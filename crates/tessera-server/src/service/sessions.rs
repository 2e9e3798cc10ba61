//! Login sessions: starting one, the liveness rule every use of a session goes through, the
//! session list, and revoking a session tree or all of a user's.

use std::collections::HashMap;

use tessera_core::audit::EventKind;
use tessera_core::client::ClientId;
use tessera_core::opaque::{OpaqueToken, TokenKind, random_id};
use tessera_core::refresh::RefreshFamily;
use tessera_core::revocation::Revocation;
use tessera_core::session::{Session, SessionKind};
use tessera_core::time::UnixTime;
use tessera_store::User;

use super::{ClientContext, audit, device_cookie, internal, login, register};
use crate::auth::Credential;
use crate::error::ApiError;
use crate::state::AppState;

/// A new session row for `user`, described by the client it came from.
pub(super) fn new_session(
    state: &AppState,
    user: &User,
    token: Option<&OpaqueToken>,
    kind: SessionKind,
    client: &ClientContext,
) -> Result<Session, ApiError> {
    let mut session = Session::new(
        random_id().map_err(internal)?,
        token.map(OpaqueToken::hash),
        user.id.clone(),
        kind,
        state.now(),
        &state.config.sessions,
    );
    session.user_agent.clone_from(&client.user_agent);
    session.ip = client.ip.map(|ip| ip.to_string());
    Ok(session)
}

/// A browser session just started, and what the browser is to keep of it.
pub struct BrowserSession {
    /// The stored session.
    pub session: Session,
    /// Its token: the session cookie's value.
    pub token: OpaqueToken,
    /// A fresh device cookie for the user (`None` if no key can sign one): from now on this
    /// browser is throttled on its own.
    pub device_cookie: Option<String>,
}

/// Starts a browser session for `user`, who has just proved who they are.
///
/// # Errors
/// `InvalidCredentials` if a credential reset raced the login (`confirm_login`); a store or
/// random-generator failure.
pub async fn start_browser_session(
    state: &AppState,
    user: &User,
    client: &ClientContext,
) -> Result<BrowserSession, ApiError> {
    let token = OpaqueToken::generate(TokenKind::Session).map_err(internal)?;
    let session = new_session(state, user, Some(&token), SessionKind::Browser, client)?;
    state.store.create_session(&session).await?;
    confirm_login(state, user, &session.id, client, "cookie").await?;
    Ok(BrowserSession {
        session,
        token,
        device_cookie: device_cookie(state, user),
    })
}

/// Signs a browser in with a password: the throttled check ([`login`]), then
/// [`start_browser_session`]. The one sign-in flow of the API and the sign-in page.
///
/// # Errors
/// As [`login`] and [`start_browser_session`].
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: String,
    client: &ClientContext,
) -> Result<(User, BrowserSession), ApiError> {
    let user = login(state, username, password, client).await?;
    let browser = start_browser_session(state, &user, client).await?;
    Ok((user, browser))
}

/// Registers a user ([`register`], no administrator) and signs the browser in: the
/// registration page's flow.
///
/// # Errors
/// As [`register`] and [`start_browser_session`].
pub async fn sign_up(
    state: &AppState,
    username: &str,
    password: String,
    client: &ClientContext,
) -> Result<(User, BrowserSession), ApiError> {
    let user = register(state, username, password, false, client).await?;
    let browser = start_browser_session(state, &user, client).await?;
    Ok((user, browser))
}

/// Keeps a session just created for `user` only if no action ended the user's credentials
/// since the password was checked (the user's credential epoch is unchanged, and the user is
/// not disabled). Such an action raises the epoch *before* it lists the sessions to revoke
/// (disabling raises it in the same write that sets the flag), so a login racing it is
/// caught either by that list or here — never by neither.
///
/// The login is audited either way: `login` (`via` says how) or `login_failed`.
///
/// # Errors
/// `InvalidCredentials` (after revoking the new session) if the epoch moved; a store failure.
pub(super) async fn confirm_login(
    state: &AppState,
    user: &User,
    sid: &str,
    client: &ClientContext,
    via: &str,
) -> Result<(), ApiError> {
    let now = state.store.user_by_id(&user.id).await?;
    if now
        .as_ref()
        .is_some_and(|u| u.credential_epoch == user.credential_epoch && !u.disabled)
    {
        let detail = format!("{via}; session {sid}");
        audit::record(
            state,
            EventKind::Login,
            Some(&user.username),
            client.ip,
            detail,
        )
        .await;
        return Ok(());
    }
    tracing::info!(user = %user.id, sid, "login lost a race with a credential reset: session revoked");
    revoke_session_tree(state, sid).await?;
    let reason = if now.is_some_and(|u| u.disabled) {
        "disabled"
    } else {
        "credentials_reset"
    };
    audit::record(
        state,
        EventKind::LoginFailed,
        Some(&user.username),
        client.ip,
        reason,
    )
    .await;
    Err(ApiError::InvalidCredentials)
}

/// Why a stored session is not alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dead {
    /// Past its idle or absolute limit.
    Expired,
    /// Its `sid` is revoked.
    Revoked,
}

/// The liveness rule, the one place it is written: a stored session is alive while it is
/// within its idle and absolute limits and its `sid` has not been revoked.
async fn liveness(state: &AppState, session: &Session) -> Result<Result<(), Dead>, ApiError> {
    if let Err(e) = session.check(state.now(), &state.config.sessions) {
        tracing::debug!(sid = %session.id, reason = %e, "session refused");
        return Ok(Err(Dead::Expired));
    }
    if state
        .is_session_revoked(&session.id, &session.user_id)
        .await?
    {
        return Ok(Err(Dead::Revoked));
    }
    Ok(Ok(()))
}

async fn is_live(state: &AppState, session: &Session) -> Result<bool, ApiError> {
    Ok(liveness(state, session).await?.is_ok())
}

/// Uses a stored session — authenticating with it, or refreshing a token derived from it:
/// refuses it unless it is alive, and records the use (at most once per touch interval).
///
/// # Errors
/// `InvalidToken` if it is not alive, or a store failure.
pub async fn use_session(state: &AppState, session: Session) -> Result<Session, ApiError> {
    try_use_session(state, session)
        .await?
        .map_err(|_| ApiError::InvalidToken)
}

/// [`use_session`], saying why a session that is not alive was refused.
///
/// # Errors
/// A store failure.
pub async fn try_use_session(
    state: &AppState,
    mut session: Session,
) -> Result<Result<Session, Dead>, ApiError> {
    if let Err(dead) = liveness(state, &session).await? {
        return Ok(Err(dead));
    }
    let now = state.now();
    if session.needs_touch(now, &state.config.sessions) {
        state.store.touch_session(&session.id, now).await?;
        session.last_seen = now;
    }
    Ok(Ok(session))
}

/// The user's live sessions, oldest first.
///
/// # Errors
/// A store failure.
pub async fn active_sessions(state: &AppState, user_id: &str) -> Result<Vec<Session>, ApiError> {
    let mut live = Vec::new();
    for s in state.store.sessions_of_user(user_id).await? {
        if is_live(state, &s).await? {
            live.push(s);
        }
    }
    Ok(live)
}

/// The names of the apps among `sessions` (the clients app authorizations were granted to),
/// by client id; a client deleted meanwhile has none.
///
/// # Errors
/// A store failure.
pub async fn app_names(
    state: &AppState,
    sessions: &[Session],
) -> Result<HashMap<String, String>, ApiError> {
    let mut names = HashMap::new();
    for id in sessions.iter().filter_map(|s| s.client_id.as_deref()) {
        if names.contains_key(id) {
            continue;
        }
        let Ok(client_id) = ClientId::parse(id) else {
            continue;
        };
        if let Some(client) = state.store.client(&client_id).await? {
            names.insert(id.to_owned(), client.name);
        }
    }
    Ok(names)
}

/// Revokes a login session and everything derived from it — its access tokens (by `sid`), its
/// refresh families, and the session itself — looking the session up for its end of life.
///
/// # Errors
/// A store failure; if the revocation record was written, the tree is already dead.
pub async fn revoke_session_tree(state: &AppState, sid: &str) -> Result<(), ApiError> {
    match state.store.session_by_id(sid).await? {
        Some(session) => revoke_session(state, &session).await,
        None => revoke_tree(state, sid, None, None).await,
    }
}

/// [`revoke_session_tree`] for a session the caller already holds (no second lookup).
///
/// # Errors
/// A store failure; if the revocation record was written, the tree is already dead.
pub async fn revoke_session(state: &AppState, session: &Session) -> Result<(), ApiError> {
    revoke_tree(
        state,
        &session.id,
        Some(session.expires_at),
        Some(&session.user_id),
    )
    .await
}

/// [`revoke_session_tree`] from one of the tree's refresh families: a family ends with its
/// session (its `expires_at` is the session's), so no lookup is needed.
///
/// # Errors
/// A store failure; if the revocation record was written, the tree is already dead.
pub(super) async fn revoke_family_tree(
    state: &AppState,
    family: &RefreshFamily,
) -> Result<(), ApiError> {
    revoke_tree(
        state,
        &family.sid,
        Some(family.expires_at),
        Some(&family.user_id),
    )
    .await
}

/// The one revocation order: the durable `sid` record first (the commit point), then the
/// clean-up. The record is kept until the session itself would have ended (`session_end`), and
/// at least until every access token it could match has expired: if the clean-up fails, the
/// record alone keeps the session dead for as long as the session row could be presented.
///
/// Such a lasting record is held by every instance, so `owner`'s are counted
/// ([`lasting_allowed`]); past the budget the order turns round: the clean-up first (the
/// session row's deletion is then the commit point, and a failure before it leaves the
/// session alive for the retry), then a record that lasts only as long as the session's
/// access tokens (if that write fails, those tokens live out their minutes unless a retry
/// presents one of them).
/// `owner` is `None` for the bulk revocations of a credential reset, which a user cannot
/// repeat faster than they can log in.
pub(super) async fn revoke_tree(
    state: &AppState,
    sid: &str,
    session_end: Option<UnixTime>,
    owner: Option<&str>,
) -> Result<(), ApiError> {
    let now = state.now();
    let horizon = now.plus(state.config.access_horizon_secs());
    let expires_at = session_end.map_or(horizon, |end| end.max(horizon));
    let over_budget = match owner {
        Some(user) if expires_at > horizon => !lasting_allowed(state, user).await,
        _ => false,
    };
    if over_budget {
        end_rows(state, sid, now).await?;
        return record_session_revocation(state, sid, horizon).await;
    }
    record_session_revocation(state, sid, expires_at).await?;
    end_rows(state, sid, now).await
}

/// Whether one more of `user`'s session revocations may be kept for the session's whole life:
/// `revocations_per_user` of them within the longest session lifetime, so that an account
/// looping login and logout cannot grow every instance's list without bound. An unreachable
/// counter allows it (the order that never revives a session).
async fn lasting_allowed(state: &AppState, user: &str) -> bool {
    let policy = &state.config.sessions;
    let window = policy.browser_absolute_secs.max(policy.app_absolute_secs);
    match state
        .attempts
        .hit(&format!("revoke-session:{user}"), window)
        .await
    {
        Ok((count, _)) => count <= state.config.revocations_per_user,
        Err(e) => {
            tracing::warn!(error = %crate::error::error_chain(&e), "revocation counter unavailable");
            true
        }
    }
}

async fn record_session_revocation(
    state: &AppState,
    sid: &str,
    expires_at: UnixTime,
) -> Result<(), ApiError> {
    state
        .record_revocation(Revocation::Session {
            sid: sid.to_owned(),
            expires_at,
        })
        .await
}

/// Ends a session's rows: its refresh families, then the session itself.
async fn end_rows(state: &AppState, sid: &str, now: UnixTime) -> Result<(), ApiError> {
    state.store.revoke_families_of_session(sid, now).await?;
    state.store.delete_session(sid).await?;
    Ok(())
}

/// Logs out the login session a credential belongs to (and everything derived from it).
///
/// # Errors
/// `InvalidToken` for a JWT without a session (nothing to log out), or a store failure.
pub async fn logout(
    state: &AppState,
    credential: &Credential,
    client: &ClientContext,
) -> Result<(), ApiError> {
    let sid = match credential {
        Credential::Cookie { session, .. } | Credential::BearerSession { session } => {
            revoke_session(state, session).await?;
            &session.id
        }
        Credential::Jwt(claims) => {
            let sid = claims.sid.as_deref().ok_or(ApiError::InvalidToken)?;
            revoke_session_tree(state, sid).await?;
            sid
        }
    };
    let detail = format!("session {sid}");
    audit::record_for(
        state,
        EventKind::Logout,
        credential.user_id(),
        client.ip,
        detail,
    )
    .await;
    Ok(())
}

/// Revokes one of the user's own sessions by its id.
///
/// # Errors
/// `NotFound` for another user's session id and a non-existent one alike, or a store failure.
pub async fn revoke_own_session(
    state: &AppState,
    user_id: &str,
    sid: &str,
    client: &ClientContext,
) -> Result<(), ApiError> {
    match state.store.session_by_id(sid).await? {
        Some(s) if s.user_id == user_id => revoke_session(state, &s).await?,
        _ => return Err(ApiError::NotFound),
    }
    let detail = format!("session {sid}, by its owner");
    audit::record_for(state, EventKind::SessionRevoked, user_id, client.ip, detail).await;
    Ok(())
}

/// "Sign out everywhere else": revokes every session of the caller but the one the
/// credential belongs to ([`revoke_user`] sparing it); returns how many ended.
///
/// # Errors
/// `InvalidToken` for a credential bound to no session; a store failure.
pub async fn sign_out_others(
    state: &AppState,
    credential: &Credential,
    client: &ClientContext,
) -> Result<usize, ApiError> {
    let keep = credential.sid().ok_or(ApiError::InvalidToken)?;
    let user_id = credential.user_id();
    let ended = revoke_user(state, user_id, Some(keep)).await?;
    let detail = format!("every other session ({ended}), by their owner");
    audit::record_for(state, EventKind::SessionRevoked, user_id, client.ip, detail).await;
    Ok(ended)
}

/// Revokes every credential of a user (password change, admin action, sign out everywhere):
/// raises the user's credential epoch, records a per-user cutoff for access tokens without a
/// session, then revokes every session tree. `keep` spares one session (and the cutoff).
///
/// # Errors
/// A store failure.
pub async fn revoke_user(
    state: &AppState,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, ApiError> {
    // First, so a login in flight (its password checked under the old epoch) cannot create a
    // session after the list below was taken and survive (see `confirm_login`).
    state.store.bump_credential_epoch(user_id).await?;
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
            revoke_tree(state, &s.id, Some(s.expires_at), None).await?;
            count += 1;
        }
    }
    Ok(count)
}
