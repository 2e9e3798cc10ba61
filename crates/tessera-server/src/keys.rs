//! Carrying out a signing-key lifecycle plan ([`tessera_core::keys::lifecycle`]) on the store.
//!
//! Design decision: [`apply`] is the one place plans meet the store, and it applies the steps
//! one by one, in the plan's order, each a single store write — no transaction across them.
//! The order is what keeps running instances safe while the steps land (see the lifecycle
//! module); a failure part-way leaves a state the next rotation or revocation can continue
//! from. Key revocations go through [`AppState::record_revocation`], so they reach every
//! instance on the store's feed.

use tessera_core::keys::lifecycle::Step;
use tessera_store::StoreError;

use crate::error::ApiError;
use crate::state::AppState;

/// Why applying a plan stopped part-way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Storing a key or its status failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing a new key failed.
    #[error(transparent)]
    Seal(#[from] tessera_core::keys::kek::KekError),
    /// Recording a key revocation failed.
    #[error("{0}")]
    Revocation(ApiError),
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Store(e) => e.into(),
            ApplyError::Revocation(e) => e,
            ApplyError::Seal(e) => ApiError::Internal(e.to_string().into()),
        }
    }
}

/// Applies `steps` to the store behind `state`, in order, stopping at the first failure.
///
/// The store's answer to a status change for an unknown key (`false`) is not an error: plans
/// only name keys read from the store, and keys are never deleted.
///
/// # Errors
/// The first step that fails.
pub async fn apply(state: &AppState, steps: &[Step]) -> Result<(), ApplyError> {
    for step in steps {
        match step {
            // Keys are generated plain in the pure core; they are sealed here, on their way
            // into the store, so no path can store one unsealed.
            Step::Insert(record) => state.store().insert_key(&state.seal(record)?).await?,
            Step::SetStatus { kid, status } => {
                state.store().set_key_status(kid, *status).await?;
            }
            Step::RecordRevocation(revocation) => state
                .record_revocation(revocation.clone())
                .await
                .map_err(ApplyError::Revocation)?,
        }
    }
    Ok(())
}
