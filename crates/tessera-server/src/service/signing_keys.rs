//! The signing keys as an administrator reads them: each key's place in the rotation, and
//! when the schedule will next act.

use tessera_core::keys::KeyStatus;
use tessera_core::time::UnixTime;

use crate::error::ApiError;
use crate::state::AppState;

/// One signing key, without its secret.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Its algorithm (`EdDSA`, …).
    pub alg: String,
    /// Place in the rotation.
    pub status: KeyStatus,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it entered its status.
    pub status_since: UnixTime,
}

/// The keys and the rotation schedule.
#[derive(Clone, Debug)]
pub struct KeySchedule {
    /// Every stored key, newest first.
    pub keys: Vec<KeyInfo>,
    /// The automatic rotation period, in seconds.
    pub rotation_secs: i64,
    /// When the current key is due to be replaced by the schedule.
    pub next_rotation: Option<UnixTime>,
}

/// The stored signing keys (no secret leaves this function) and the schedule's next rotation.
///
/// # Errors
/// A store failure.
pub async fn signing_keys(state: &AppState) -> Result<KeySchedule, ApiError> {
    let mut keys: Vec<KeyInfo> = state
        .store
        .keys()
        .await?
        .into_iter()
        .map(|k| KeyInfo {
            kid: k.kid,
            alg: k.alg.as_str().to_owned(),
            status: k.status,
            created_at: k.created_at,
            status_since: k.status_since,
        })
        .collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    let rotation_secs = state.config.key_rotation_secs;
    let next_rotation = keys
        .iter()
        .find(|k| k.status == KeyStatus::Current)
        .map(|k| k.status_since.plus(rotation_secs));
    Ok(KeySchedule {
        keys,
        rotation_secs,
        next_rotation,
    })
}
