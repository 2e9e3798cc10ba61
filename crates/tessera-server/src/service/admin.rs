//! What administrators do — find and disable users, see and end their sessions, rotate and
//! revoke signing keys — for the admin API and the CLI alike, each action audited.

use tessera_core::audit::EventKind;
use tessera_core::keys::lifecycle::{
    self, KeyRevocation, LifecycleError, Rotation, Schedule, Upkeep,
};
use tessera_core::session::Session;
use tessera_core::time::UnixTime;
use tessera_store::User;

use super::audit::{Actor, record, record_admin_action};
use super::{active_sessions, revoke_session, revoke_user};
use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

/// The most users one search returns.
pub const MAX_USER_PAGE: u32 = 200;
/// The longest search fragment taken (a username's longest).
const MAX_FRAGMENT: usize = 64;

/// Users whose name contains `fragment` (trimmed and lower-cased, as names are stored),
/// ordered by name, at most `limit` (capped at [`MAX_USER_PAGE`]).
///
/// # Errors
/// `InvalidRequest` for a fragment longer than a username can be; a store failure.
pub async fn find_users(
    state: &AppState,
    fragment: &str,
    limit: u32,
) -> Result<Vec<User>, ApiError> {
    let fragment = fragment.trim().to_lowercase();
    if fragment.chars().count() > MAX_FRAGMENT {
        return Err(ApiError::InvalidRequest(
            format!("query is longer than {MAX_FRAGMENT} characters").into(),
        ));
    }
    Ok(state
        .store
        .search_users(&fragment, limit.min(MAX_USER_PAGE))
        .await?)
}

/// The user with this id, for an admin: `NotFound` if there is none.
async fn target(state: &AppState, user_id: &str) -> Result<User, ApiError> {
    state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Disables a user: marks them disabled (their logins are refused from now on, with the
/// answer a wrong password gets) and ends every credential they hold — the same cascade as a
/// password change: the credential epoch moves with the flag, in one write, so a login whose
/// password check is in flight cannot keep its session; a per-user cutoff ends their access
/// tokens; every session tree is revoked, each revocation pushed to every instance. A
/// disabled admin is no admin. Returns the user as now stored and how many sessions ended.
///
/// # Errors
/// `NotFound` for an unknown user; `InvalidRequest` when an admin names themselves (they
/// would lock themselves out); a store failure (retrying is safe: every step is idempotent).
pub async fn disable_user(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
) -> Result<(User, usize), ApiError> {
    if matches!(actor, Actor::Admin { user_id: me, .. } if me == user_id) {
        return Err(ApiError::InvalidRequest(
            "an admin cannot disable themselves".into(),
        ));
    }
    let user = target(state, user_id).await?;
    if !state.store.disable_user(&user.id).await? {
        return Err(ApiError::NotFound);
    }
    let ended = revoke_user(state, &user.id, None).await?;
    record_admin_action(
        state,
        actor,
        EventKind::UserDisabled,
        Some(&user.username),
        &format!("disabled user {}; {ended} session(s) ended", user.username),
    )
    .await;
    let user = target(state, user_id).await?;
    Ok((user, ended))
}

/// A user's live sessions, oldest first.
///
/// # Errors
/// `NotFound` for an unknown user; a store failure.
pub async fn user_sessions(state: &AppState, user_id: &str) -> Result<Vec<Session>, ApiError> {
    let user = target(state, user_id).await?;
    active_sessions(state, &user.id).await
}

/// Ends any user's session by its id, with everything derived from it (its refresh families
/// and access tokens), the revocation pushed to every instance.
///
/// # Errors
/// `NotFound` for an unknown session; a store failure.
pub async fn end_session(state: &AppState, actor: &Actor, sid: &str) -> Result<(), ApiError> {
    let session = state
        .store
        .session_by_id(sid)
        .await?
        .ok_or(ApiError::NotFound)?;
    revoke_session(state, &session).await?;
    let owner = state.store.user_by_id(&session.user_id).await?;
    let name = owner.as_ref().map(|u| u.username.as_str());
    record_admin_action(
        state,
        actor,
        EventKind::SessionRevoked,
        name,
        &format!(
            "ended session {sid} of {}",
            name.unwrap_or(session.user_id.as_str())
        ),
    )
    .await;
    Ok(())
}

/// Revokes every credential of a user without disabling them (`tessera users revoke`).
///
/// # Errors
/// `NotFound` for an unknown user; a store failure.
pub async fn revoke_user_credentials(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
) -> Result<usize, ApiError> {
    let user = target(state, user_id).await?;
    let ended = revoke_user(state, &user.id, None).await?;
    record_admin_action(
        state,
        actor,
        EventKind::SessionRevoked,
        Some(&user.username),
        &format!(
            "revoked every credential of {}; {ended} session(s) ended",
            user.username
        ),
    )
    .await;
    Ok(ended)
}

/// One step of the two-phase rotation: publish a `next` key; or, once it has been published
/// long enough (or with `force`), make it current (the old current key keeps verifying as
/// `retiring`) and publish a new `next`, retiring an older `retiring` key first — once its
/// tokens have expired, or early with `force` — so the JWKS never holds more than three keys.
/// The one rotation flow, for the API and the CLI.
///
/// # Errors
/// `InvalidRequest` if the `next` key is too fresh or a `retiring` key's tokens still live,
/// and `force` is not set; a store failure; `Internal` if another writer changed the keys
/// meanwhile (run it again).
pub async fn rotate_keys(
    state: &AppState,
    actor: &Actor,
    force: bool,
) -> Result<Rotation, ApiError> {
    let schedule = state.config().key_schedule();
    let plan = match lifecycle::rotate(&state.store.keys().await?, state.now(), force, &schedule) {
        Ok(plan) => plan,
        Err(
            e @ (LifecycleError::NextTooFresh { .. } | LifecycleError::RetiringKeyPending { .. }),
        ) => {
            return Err(ApiError::InvalidRequest(
                format!("{e}; run it again later, or force it").into(),
            ));
        }
        Err(e) => return Err(ApiError::Internal(e.to_string().into())),
    };
    keys::apply(state, &plan.steps).await?;
    reload_keys(state).await;
    let what = match &plan.outcome {
        Rotation::Published { next } => format!("published next key {next}"),
        Rotation::Promoted {
            current,
            retiring,
            next,
            retired,
        } => format!(
            "key {current} signs (retiring {}); published next key {next}{}",
            retiring.as_deref().unwrap_or("none"),
            if retired.is_empty() {
                String::new()
            } else {
                format!("; retired {}", retired.join(", "))
            }
        ),
    };
    record_admin_action(state, actor, EventKind::KeyRotated, None, &what).await;
    Ok(plan.outcome)
}

/// Emergency revocation of a signing key: it stops verifying everywhere at once (the
/// revocation goes out on the feed), and if it was signing, another key takes over.
///
/// # Errors
/// `InvalidRequest` for an unknown or already revoked key; a store failure.
pub async fn revoke_key(
    state: &AppState,
    actor: &Actor,
    kid: &str,
) -> Result<KeyRevocation, ApiError> {
    let plan = lifecycle::revoke(&state.store.keys().await?, kid, state.now())
        .map_err(|e| ApiError::InvalidRequest(e.to_string().into()))?;
    keys::apply(state, &plan.steps).await?;
    reload_keys(state).await;
    let what = match &plan.outcome.successor {
        Some(next) => format!("revoked key {}; key {next} signs", plan.outcome.kid),
        None => format!("revoked key {}", plan.outcome.kid),
    };
    record_admin_action(state, actor, EventKind::KeyRevoked, None, &what).await;
    Ok(plan.outcome)
}

/// A signing key as administrators see it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySummary {
    /// The key id.
    pub kid: String,
    /// The JWS algorithm (`EdDSA`, `ES256`, …).
    pub alg: &'static str,
    /// `next`, `current`, `retiring`, `retired` or `revoked`.
    pub status: &'static str,
    /// When the key was made.
    pub created_at: UnixTime,
    /// When it entered its status.
    pub status_since: UnixTime,
    /// When `schedule` next changes its status (`None` for retired and revoked keys).
    pub next_change_at: Option<UnixTime>,
}

/// Every signing key, any status, with when `schedule` next changes it: what `tessera keys
/// list` prints and the admin page shows.
///
/// # Errors
/// A store failure.
pub async fn signing_keys(
    state: &AppState,
    schedule: &Schedule,
) -> Result<Vec<KeySummary>, ApiError> {
    let records = state.store.keys().await?;
    Ok(records
        .iter()
        .map(|k| KeySummary {
            kid: k.kid.clone(),
            alg: k.alg.as_str(),
            status: k.status.as_str(),
            created_at: k.created_at,
            status_since: k.status_since,
            next_change_at: schedule.next_change(k, &records),
        })
        .collect())
}

async fn reload_keys(state: &AppState) {
    if let Err(e) = state.reload_keys().await {
        tracing::warn!(error = %e, "reloading keys after an operator's change failed");
    }
}

/// Records a change the rotation schedule made by itself (every instance runs it; only the
/// one that applied the change records it).
pub(crate) async fn record_scheduled(state: &AppState, outcome: &Upkeep) {
    let (kind, what) = match outcome {
        Upkeep::Published { next } => (
            EventKind::KeyRotated,
            format!("schedule: published next key {next}"),
        ),
        Upkeep::Promoted { current, retiring } => (
            EventKind::KeyRotated,
            format!(
                "schedule: key {current} signs (retiring {})",
                retiring.as_deref().unwrap_or("none")
            ),
        ),
        Upkeep::Retired { kid } => (
            EventKind::KeyRotated,
            format!("schedule: retired key {kid}"),
        ),
    };
    record(state, kind, None, None, what).await;
}
