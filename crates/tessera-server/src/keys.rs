//! Carrying out a signing-key lifecycle plan ([`tessera_core::keys::lifecycle`]) on the store,
//! and the server's own rotation schedule.
//!
//! Design decision: [`apply`] is the one place plans meet the store, and it applies the steps
//! one by one, in the plan's order, each a single conditional store write — no transaction
//! across them. The order is what keeps running instances safe while the steps land (see the
//! lifecycle module); the conditions are what make instances agree: a step whose condition no
//! longer holds means another writer changed the keys first, and the plan stops there
//! ([`ApplyError::Contended`]). A failure part-way leaves a state the next rotation, revocation
//! or upkeep can continue from. Key revocations go through [`AppState::record_revocation`], so
//! they reach every instance on the store's feed.

use tessera_core::keys::kek::KekError;
use tessera_core::keys::lifecycle::{self, Step, Upkeep};
use tessera_store::StoreError;

use crate::error::ApiError;
use crate::state::AppState;

/// Why applying a plan stopped part-way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Another writer changed the keys between the plan and this step (a key left the status
    /// the plan found it in, or a `next` key was published meanwhile). Nothing from this
    /// step on was applied; planning again from the store continues correctly.
    #[error("the signing keys changed while this change was applied; nothing more was done")]
    Contended,
    /// Storing a key or its status failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing a new key failed.
    #[error(transparent)]
    Seal(#[from] KekError),
    /// A stored key does not open under this instance's KEK (the keys were re-wrapped under
    /// another while it ran): it writes no new key, which the store's KEK could not open.
    #[error("{0}; this instance changes no signing key until it is restarted with the store's KEK")]
    ForeignKek(KekError),
    /// Planning the change failed.
    #[error(transparent)]
    Plan(#[from] lifecycle::LifecycleError),
    /// Recording a key revocation failed.
    #[error("{0}")]
    Revocation(ApiError),
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Store(e) => e.into(),
            ApplyError::Revocation(e) => e,
            other => ApiError::Internal(other.to_string().into()),
        }
    }
}

/// Applies `steps` to the store behind `state`, in order, stopping at the first that fails
/// or whose condition no longer holds.
///
/// # Errors
/// [`ApplyError::Contended`] if another writer changed the keys first; otherwise the first
/// step that fails.
pub async fn apply(state: &AppState, steps: &[Step]) -> Result<(), ApplyError> {
    if steps.iter().any(|step| matches!(step, Step::Insert(_))) {
        kek_opens_the_store(state).await?;
    }
    let store = state.store();
    for step in steps {
        let applied = match step {
            // Keys are generated plain in the pure core; they are sealed here, on their way
            // into the store, so no path can store one unsealed.
            Step::Insert(record) => store.insert_key_if_vacant(&state.seal(record)?).await,
            Step::SetStatus { kid, from, to } => {
                store.set_key_status(kid, *from, *to, state.now()).await
            }
            Step::RecordRevocation(revocation) => {
                state
                    .record_revocation(revocation.clone())
                    .await
                    .map_err(ApplyError::Revocation)?;
                Ok(true)
            }
        };
        match applied {
            Ok(true) => {}
            // A second current or next key refused by a unique index: lost to another writer.
            Ok(false) | Err(StoreError::Conflict("key status")) => {
                return Err(ApplyError::Contended);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Opens every stored key under this instance's KEK before a new key is sealed with it: an
/// instance still running with the old KEK after a `keys rewrap` would otherwise publish a key
/// that no instance restarted with the new KEK can open, and the store would then open under
/// neither. Status changes alone need no KEK, so revoking a key that is not signing still works.
async fn kek_opens_the_store(state: &AppState) -> Result<(), ApplyError> {
    let stored = state.store().keys().await?;
    state.open_all(&stored).map_err(ApplyError::ForeignKek)?;
    Ok(())
}

/// Runs the rotation schedule ([`lifecycle::upkeep`]) once: applies the change it asks for
/// now, if any, and reloads the keys when something changed. Every instance calls this on
/// its maintenance tick; when several plan the same change, one applies it and the others
/// get `Ok(None)`.
///
/// # Errors
/// If reading the keys, planning or applying fails.
pub async fn run_schedule(state: &AppState) -> Result<Option<Upkeep>, ApplyError> {
    let records = state.store().keys().await?;
    let Some(plan) = lifecycle::upkeep(&records, state.now(), &state.config().key_schedule())?
    else {
        return Ok(None);
    };
    match apply(state, &plan.steps).await {
        Ok(()) => {}
        Err(ApplyError::Contended) => {
            tracing::debug!(?plan.outcome, "another instance changed the keys first");
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    tracing::info!(?plan.outcome, "signing key schedule");
    crate::service::record_scheduled(state, &plan.outcome).await;
    if let Err(e) = state.reload_keys().await {
        tracing::warn!(error = %e, "reloading keys after a scheduled change failed");
    }
    Ok(Some(plan.outcome))
}
