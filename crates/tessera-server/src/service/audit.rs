//! Writing and reading the audit log: the security events of every flow.
//!
//! Design decision: an audit write never decides an action's outcome. Events are written
//! after the action committed (a revocation is durable, a session confirmed), and a failed
//! write — the store down — is logged at `error` level with the whole event, then the flow
//! carries on: refusing a revocation or a logout because the log could not be written would
//! leave credentials alive, which is worse than a gap in the log. Nothing secret is ever
//! passed in: events carry usernames, addresses, public ids (session, key, client) and fixed
//! reason words, never a password, token, secret or hash.

use std::net::IpAddr;

use tessera_core::audit::EventKind;
use tessera_core::time::UnixTime;
use tessera_store::{AuditEvent, AuditQuery, AuditRecord};

use super::ClientContext;
use crate::auth::Credential;
use crate::error::{ApiError, error_chain};
use crate::state::AppState;

/// Who performs an administrative action: an admin through the API, or the operator at the
/// CLI (which works on the store directly).
#[derive(Clone, Debug)]
pub enum Actor {
    /// An authenticated admin.
    Admin {
        /// The admin's user id.
        user_id: String,
        /// Where the request came from.
        ip: Option<IpAddr>,
    },
    /// `tessera …` on the command line.
    Operator,
}

impl Actor {
    /// The admin behind a request.
    #[must_use]
    pub fn admin(credential: &Credential, client: &ClientContext) -> Self {
        Self::Admin {
            user_id: credential.user_id().to_owned(),
            ip: client.ip,
        }
    }

    fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Admin { ip, .. } => *ip,
            Self::Operator => None,
        }
    }
}

/// Appends an event, best effort (see the module docs).
pub(crate) async fn record(
    state: &AppState,
    kind: EventKind,
    user: Option<&str>,
    ip: Option<IpAddr>,
    detail: impl Into<String>,
) {
    let event = AuditEvent {
        at: state.now(),
        kind,
        user: user.map(str::to_owned),
        ip: ip.map(|ip| ip.to_string()),
        detail: detail.into(),
    };
    if let Err(e) = state.store.append_event(&event).await {
        tracing::error!(
            error = %error_chain(&e),
            kind = %event.kind,
            user = event.user.as_deref(),
            ip = event.ip.as_deref(),
            detail = %event.detail,
            at = event.at.0,
            "audit event not stored"
        );
    }
}

/// [`record`] for a user known by id: the username is looked up (events name users as
/// people know them). A user that cannot be read is recorded by id in the detail.
pub(crate) async fn record_for(
    state: &AppState,
    kind: EventKind,
    user_id: &str,
    ip: Option<IpAddr>,
    detail: impl Into<String>,
) {
    let detail = detail.into();
    match state.store.user_by_id(user_id).await {
        Ok(Some(user)) => record(state, kind, Some(&user.username), ip, detail).await,
        Ok(None) | Err(_) => {
            let detail = format!("{detail} (user id {user_id})");
            record(state, kind, None, ip, detail.trim_start()).await;
        }
    }
}

/// Records what an administrator did: an `admin` event naming the admin (or `operator` in
/// the detail for the CLI).
pub(crate) async fn record_admin(state: &AppState, actor: &Actor, what: &str) {
    match actor {
        Actor::Admin { user_id, ip } => {
            record_for(state, EventKind::Admin, user_id, *ip, what).await;
        }
        Actor::Operator => {
            record(
                state,
                EventKind::Admin,
                None,
                None,
                format!("operator (cli): {what}"),
            )
            .await;
        }
    }
}

/// Records `kind` for a target user and the `admin` event for the actor who caused it.
pub(crate) async fn record_admin_action(
    state: &AppState,
    actor: &Actor,
    kind: EventKind,
    target: Option<&str>,
    what: &str,
) {
    record(state, kind, target, actor.ip(), what).await;
    record_admin(state, actor, what).await;
}

/// The events a query selects, newest first.
///
/// # Errors
/// A store failure.
pub async fn audit_events(
    state: &AppState,
    query: &AuditQuery,
) -> Result<Vec<AuditRecord>, ApiError> {
    Ok(state.store.events(query).await?)
}

/// Deletes events older than the retention setting (`audit_retention_secs`); returns how
/// many. Run by the maintenance sweep.
pub(crate) async fn prune(state: &AppState, now: UnixTime) -> Result<u64, ApiError> {
    let cutoff = now.plus(-state.config.audit_retention_secs);
    Ok(state.store.prune_events(cutoff).await?)
}
